"""Animations of a cube: the stamps of each epoch in turn, saved as GIF (or MP4).

One frame per epoch, one panel per kind, with the epoch's time and band in the panel
titles. As in :func:`finkcube.viz.plot.plot_stamps`, NaN pixels are "no data" (masked, in
their own colour), each kind has one scale over all the frames by default (with a colorbar),
and stamps whose WCS is known carry an N/E compass.

Frames are written one at a time, so that memory does not grow with their number: the
stamps are read a block of epochs at a time, each frame is drawn on one reused figure,
turned into a palette image and its GIF bytes written at once, with Pillow's frame encoder
(:func:`PIL.GifImagePlugin.getheader` and :func:`~PIL.GifImagePlugin.getdata`).
``Image.save(append_images=...)`` would keep every frame until the end (matplotlib's
``PillowWriter`` too, as RGBA). MP4 goes through matplotlib's ``FFMpegWriter``, which pipes
each frame to the ``ffmpeg`` program.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import numpy as np

from finkcube.errors import InputError
from finkcube.names import DATA_PLANE, KINDS
from finkcube.viz.figure import (
    CELL,
    COLORBAR_HEIGHT,
    TIME,
    EpochSelection,
    check_kinds,
    check_scale,
    check_stretch,
    cube_epochs,
    epoch_labels,
    get_colormap,
    load_stamps,
    new_figure,
    stamp_title,
    units_label,
)

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.artist import Artist
    from matplotlib.colors import Colormap
    from PIL import Image

__all__ = ["ANIMATION_SUFFIXES", "BLOCK_EPOCHS", "animate", "gif_palette"]

logger = logging.getLogger(__name__)

#: File suffixes :func:`animate` writes.
ANIMATION_SUFFIXES: Final = (".gif", ".mp4")
#: Epochs read from the cube at a time while writing frames.
BLOCK_EPOCHS: Final = 64


def gif_palette(colormap: Colormap) -> Image.Image:
    """Return the one palette of a GIF's frames: the colormap and the figure's other colours.

    224 colours of the colormap, 28 greys (text, frames, their anti-aliasing), the "no data"
    colour and the compass's. Every frame maps onto it (nearest colour, no dithering): a
    stamp's pixels are colormap entries, so they stay within a level of what matplotlib
    drew, and one global colour table serves the whole file.
    """
    from matplotlib.colors import to_rgb
    from PIL import Image

    from finkcube.viz.compass import COMPASS_COLOR

    ramp: np.ndarray = np.asarray(colormap(np.linspace(0.0, 1.0, 224)))[:, :3]
    greys = np.repeat(np.linspace(0.0, 1.0, 28)[:, None], 3, axis=1)
    marks = np.array([to_rgb(tuple(colormap.get_bad())), to_rgb(COMPASS_COLOR)])
    colours = np.vstack([ramp, greys, marks])
    entries = np.round(colours * 255).astype(np.uint8)
    palette = Image.new("P", (1, 1))
    palette.putpalette(entries.ravel().tolist() + [0] * (3 * (256 - len(entries))))
    return palette


class _GifStream:
    """A GIF written frame by frame: each frame's bytes go to the file as it comes."""

    def __init__(self, fp: IO[bytes], fps: float, palette: Image.Image) -> None:
        self._fp = fp
        self._duration = max(10, round(1000.0 / fps))  # GIF delays are in 1/100 s
        self._palette = palette
        self._started = False

    def add(self, rgb: np.ndarray) -> None:
        from PIL import GifImagePlugin, Image

        frame = Image.fromarray(rgb).quantize(palette=self._palette, dither=Image.Dither.NONE)
        if not self._started:
            header, _ = GifImagePlugin.getheader(frame, None, {"loop": 0})
            self._fp.write(b"".join(header))
            self._started = True
        self._fp.write(b"".join(GifImagePlugin.getdata(frame, duration=self._duration)))

    def close(self) -> None:
        self._fp.write(b";")  # the GIF trailer (what Pillow's own save() writes last)


def _progress(enabled: bool | None, total: int) -> Any:
    """A tqdm bar over frames, or None (``enabled=None``: only when stderr is a terminal)."""
    if enabled is None:
        enabled = os.isatty(2)
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="frames", unit="frame", leave=False)


def _shared_norms(
    ds: xr.Dataset, positions: list[int], kinds: list[str], plane: str, opts: dict[str, Any]
) -> list[Any]:
    """One norm per kind over every frame, reading a block of epochs at a time."""
    from finkcube.viz.scale import SharedLevels

    total = len(positions) * ds.sizes["y"] * ds.sizes["x"]
    levels = [SharedLevels(opts["stretch"], opts["pmin"], opts["pmax"], total) for _ in kinds]
    for start in range(0, len(positions), BLOCK_EPOCHS):
        stamps = load_stamps(ds, positions[start : start + BLOCK_EPOCHS], kinds, plane)
        for col, level in enumerate(levels):
            level.add(stamps[:, col])
    return [level.norm() for level in levels]


def animate(
    ds: xr.Dataset,
    path: str | Path,
    *,
    epochs: EpochSelection = None,
    kinds: Sequence[str] = KINDS,
    plane: str = DATA_PLANE,
    fps: float = 4,
    stretch: str = "sigmoid",
    cmap: str | Colormap = "gray",
    pmin: float = 0.5,
    pmax: float = 99.5,
    scale: str = "shared",
    compass: bool = True,
    dpi: int = 100,
    progress: bool | None = False,
) -> Path:
    """Write an animation of a cube's stamps through time, one frame at a time.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube.
    path : str or pathlib.Path
        ``.gif`` (Pillow) or ``.mp4`` (needs ``ffmpeg`` on the ``PATH``).
    epochs : int, slice, sequence of int, TimeRange or None
        The frames, by position along ``time`` or by MJD; None: every epoch, in time order.
    kinds : sequence of str
        The panels of each frame.
    plane : str
        The plane to show.
    fps : float
        Frames per second (a GIF keeps delays in hundredths of a second).
    stretch, cmap, pmin, pmax, scale, compass
        As in :func:`finkcube.viz.plot.plot_stamps`: ``scale="shared"`` keeps one scale per
        kind over all the frames, with a colorbar below each panel.
    dpi : int
        Pixels per inch: a frame is ``len(kinds) * 2.0 * dpi`` by ``2.5 * dpi`` pixels
        (``+ 0.7 * dpi`` for the colorbars).
    progress : bool or None
        A progress bar over the frames, on stderr (None: only when stderr is a terminal).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        For another suffix, MP4 without ffmpeg, or a bad selection or option.
    """
    from matplotlib.animation import writers

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATION_SUFFIXES:
        raise InputError(f"cannot animate to {path.name}: use one of {ANIMATION_SUFFIXES}")
    if suffix == ".mp4" and not writers.is_available("ffmpeg"):
        raise InputError("writing MP4 needs the ffmpeg program: install it, or write a .gif")
    if not (isinstance(fps, int | float) and 0 < fps <= 100):
        raise InputError(f"fps must be a number in (0, 100], got {fps!r}")
    positions = cube_epochs(ds, epochs, max_rows=ds.sizes[TIME])
    kinds = check_kinds(kinds)
    check_stretch(stretch)
    shared = check_scale(scale) == "shared"
    colormap = get_colormap(cmap)
    opts = {"stretch": stretch, "pmin": pmin, "pmax": pmax, "scale": scale}
    norms = _shared_norms(ds, positions, kinds, plane, opts) if shared else None

    frames = _Frames(ds, kinds, plane, colormap, norms, compass, opts, dpi)
    bar = _progress(progress, len(positions))
    try:
        if suffix == ".gif":
            try:
                with path.open("wb") as fp:
                    stream = _GifStream(fp, fps, gif_palette(colormap))
                    for rgb in frames.draw(positions, bar):
                        stream.add(rgb)
                    stream.close()
            except BaseException:
                if path.is_file():  # not /dev/full and the like
                    path.unlink()  # no half-written GIF left behind
                raise
        else:
            from matplotlib.animation import FFMpegWriter

            writer = FFMpegWriter(fps=fps)  # type: ignore[arg-type]  # ffmpeg takes any rate
            with writer.saving(frames.fig, str(path), dpi):
                for _ in frames.draw(positions, bar):
                    writer.grab_frame()
    finally:
        if bar is not None:
            bar.close()
    logger.info("wrote %s (%d frames)", path, len(positions))
    return path


class _Frames:
    """The frames of an animation, drawn on one figure, a block of epochs at a time.

    What changes from frame to frame (the images, the titles, the compass) is drawn with
    matplotlib's blitting: the rest of the figure (axes, colorbars) is drawn once, kept as a
    background, restored before each frame.
    """

    def __init__(
        self, ds: xr.Dataset, kinds: list[str], plane: str, colormap: Colormap,
        norms: list[Any] | None, compass: bool, opts: dict[str, Any], dpi: int,
    ) -> None:  # fmt: skip
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        self.ds, self.kinds, self.plane, self.norms = ds, kinds, plane, norms
        self.compass, self.opts = compass, opts
        height = CELL[1] + (COLORBAR_HEIGHT if norms is not None else 0.0)
        self.fig = fig = new_figure((len(kinds) * CELL[0], height), pyplot=False)
        fig.set_dpi(dpi)
        self.canvas = FigureCanvasAgg(fig)
        self.axes = fig.subplots(1, len(kinds), squeeze=False)[0]
        blank = np.ma.masked_all((ds.sizes["y"], ds.sizes["x"]))
        self.images = []
        for col, ax in enumerate(self.axes):
            norm = norms[col] if norms is not None else None
            image = ax.imshow(blank, origin="lower", cmap=colormap, norm=norm,
                              interpolation="nearest", animated=True)  # fmt: skip
            self.images.append(image)
            # Two lines of title, so that the layout leaves them room.
            ax.set_title(stamp_title(kinds[col], 0.0, "?"), fontsize=8, animated=True)
            ax.set_xticks([])
            ax.set_yticks([])
            if norms is not None:
                bar = fig.colorbar(image, ax=ax, location="bottom", aspect=18, pad=0.02)
                bar.set_label(units_label(ds, kinds[col], plane), fontsize=8)
                bar.ax.tick_params(labelsize=7)
                bar.ax.locator_params(nbins=4)
        self.canvas.draw()  # lays the figure out and draws all but the animated artists
        fig.set_layout_engine("none")  # keep that layout
        self.background = self.canvas.copy_from_bbox(fig.bbox)

    def draw(self, positions: list[int], bar: Any) -> Iterator[np.ndarray]:
        """Yield each frame's RGB pixels (the figure's canvas holds the frame meanwhile)."""
        from finkcube.viz.compass import draw_compass, stamp_wcs
        from finkcube.viz.scale import stamp_norm

        opts = self.opts
        for start in range(0, len(positions), BLOCK_EPOCHS):
            block = positions[start : start + BLOCK_EPOCHS]
            stamps = load_stamps(self.ds, block, self.kinds, self.plane)
            times, bands = epoch_labels(self.ds, block)
            for row, position in enumerate(block):
                self.canvas.restore_region(self.background)
                compass_marks: list[Artist] = []
                for col, (ax, image) in enumerate(zip(self.axes, self.images, strict=True)):
                    stamp = np.ma.masked_invalid(stamps[row, col])
                    image.set_data(stamp)
                    if self.norms is None:
                        image.set_norm(stamp_norm(stamp, opts["stretch"], opts["pmin"],
                                                  opts["pmax"]))  # fmt: skip
                    ax.title.set_text(stamp_title(self.kinds[col], float(times[row]), bands[row]))
                    marks: list[Artist] = [image, ax.title]
                    wcs = stamp_wcs(self.ds, position, self.kinds[col]) if self.compass else None
                    if wcs is not None:
                        marks += draw_compass(ax, wcs, stamp.shape)
                    for mark in marks:
                        ax.draw_artist(mark)
                    compass_marks += marks[2:]
                yield np.asarray(self.canvas.buffer_rgba())[..., :3]
                for mark in compass_marks:
                    mark.remove()  # each epoch has its own compass
                if bar is not None:
                    bar.update(1)
