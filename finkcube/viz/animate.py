"""Animations of a cube: the stamps of every epoch in turn, saved as GIF (or MP4).

One frame per epoch, one panel per kind, each stamp stretched on its own as in
:func:`finkcube.plot.plot_stamps`, with the epoch's time and band in the panel titles.
GIFs are written with Pillow (always available); MP4 needs the ``ffmpeg`` program.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from finkcube.errors import InputError
from finkcube.names import DATA_PLANE, KINDS
from finkcube.viz.figure import (
    CELL,
    TIME,
    EpochSelection,
    check_cube,
    check_kinds,
    check_stretch,
    display_image,
    epoch_labels,
    get_colormap,
    load_stamps,
    new_figure,
    select_epochs,
    stamp_title,
)

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.colors import Colormap

__all__ = ["ANIMATION_SUFFIXES", "animate"]

logger = logging.getLogger(__name__)

#: File suffixes :func:`animate` writes.
ANIMATION_SUFFIXES: Final = (".gif", ".mp4")


def animate(
    ds: xr.Dataset,
    path: str | Path,
    *,
    epochs: EpochSelection = None,
    kinds: Sequence[str] = KINDS,
    plane: str = DATA_PLANE,
    fps: int = 4,
    stretch: str = "sigmoid",
    cmap: str | Colormap = "gray",
    pmin: float = 0.5,
    pmax: float = 99.5,
    dpi: int = 100,
) -> Path:
    """Write an animation of a cube's stamps through time.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube.
    path : str or pathlib.Path
        ``.gif`` (Pillow) or ``.mp4`` (needs ``ffmpeg`` on the ``PATH``).
    epochs : int, slice, sequence of int or None
        The frames, by position along ``time``; None: every epoch, in time order.
    kinds : sequence of str
        The panels of each frame.
    plane : str
        The plane to show.
    fps : int
        Frames per second.
    stretch, cmap, pmin, pmax
        As in :func:`finkcube.plot.plot_stamps`.
    dpi : int
        Pixels per inch: a frame is ``len(kinds) * 2.0 * dpi`` by ``2.5 * dpi`` pixels.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        For another suffix, MP4 without ffmpeg, or a bad selection or option.
    """
    from matplotlib.animation import FFMpegWriter, PillowWriter, writers

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATION_SUFFIXES:
        raise InputError(f"cannot animate to {path.name}: use one of {ANIMATION_SUFFIXES}")
    if suffix == ".mp4" and not writers.is_available("ffmpeg"):
        raise InputError("writing MP4 needs the ffmpeg program: install it, or write a .gif")
    cube = check_cube(ds)
    n_epochs = cube.sizes[TIME]
    positions = select_epochs(n_epochs, epochs, max_rows=n_epochs)
    kinds = check_kinds(kinds)
    check_stretch(stretch)
    colormap = get_colormap(cmap)
    stamps = load_stamps(ds, positions, kinds, plane)
    times, bands = epoch_labels(ds, positions)

    fig = new_figure((len(kinds) * CELL[0], CELL[1]), pyplot=False)
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    images = []
    for ax in axes:
        images.append(ax.imshow(stamps[0, 0], origin="lower", cmap=colormap, vmin=0, vmax=1))
        ax.set_xticks([])
        ax.set_yticks([])
    writer = PillowWriter(fps=fps) if suffix == ".gif" else FFMpegWriter(fps=fps)
    with writer.saving(fig, str(path), dpi):
        for frame, (time, band) in enumerate(zip(times, bands, strict=True)):
            for col, (ax, image) in enumerate(zip(axes, images, strict=True)):
                image.set_data(display_image(stamps[frame, col], stretch, pmin, pmax))
                ax.set_title(stamp_title(kinds[col], float(time), band), fontsize=8)
            writer.grab_frame()
    logger.info("wrote %s (%d frames)", path, len(positions))
    return path
