"""Display scales of stamps: astropy ``ImageNormalize`` objects fitted on finite pixels only.

A stamp's padding and blank pixels are NaN in a cube. The Fink service turns them into 0
before it stretches, so a small stamp on a large canvas pulls the sigmoid's mean and the
percentile cut levels towards 0. Here the levels come from the finite pixels alone, and the
NaN pixels stay masked: matplotlib draws them in the colormap's "bad" colour.

The norms are :class:`astropy.visualization.ImageNormalize` objects, so that a colorbar
reads in the cube's units. They are made with ``clip=False``, because astropy drops the
mask of a masked array when it clips; the stretches clip instead (:class:`ClippedStretch`).
The Fink sigmoid is written as an astropy stretch (:class:`SigmoidStretch`) between the
levels ``mean -/+ 3 std``.

This module imports astropy: it is imported only when something is drawn.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from astropy.visualization import BaseStretch, ImageNormalize

from finkcube.stretch import astropy_stretch, check_percentiles

__all__ = [
    "MAX_SAMPLES",
    "SIGMOID_SPAN",
    "ClippedStretch",
    "SharedLevels",
    "SigmoidStretch",
    "finite_values",
    "stamp_norm",
]

#: The most finite values a shared scale keeps for its percentiles (:class:`SharedLevels`).
MAX_SAMPLES: Final = 2_000_000
#: The sigmoid's norm spans ``mean -/+ SIGMOID_SPAN * std``: 5 % to 95 % of the colormap.
SIGMOID_SPAN: Final = 3.0


class SigmoidStretch(BaseStretch):
    """The Fink service's sigmoid, ``1 / (1 + exp(-(v - mean) / std))``, as an astropy stretch.

    Its input is ``x = (v - vmin) / (vmax - vmin)`` with ``vmin, vmax = mean -/+ span *
    std``, so ``(v - mean) / std = span * (2 x - 1)``. Values outside ``[0, 1]`` are valid:
    the sigmoid never leaves ``(0, 1)``.
    """

    def __init__(self, span: float = SIGMOID_SPAN) -> None:
        super().__init__()
        self.span = float(span)

    def __call__(self, values: Any, clip: bool = True, out: Any = None) -> np.ndarray:
        z = self.span * (2.0 * np.asarray(values, dtype=np.float64) - 1.0)
        result = 1.0 / (1.0 + np.exp(-z))
        return _returned(result, out)

    @property
    def inverse(self) -> BaseStretch:
        """The logit that undoes the sigmoid (matplotlib's colorbar needs it)."""
        return _LogitStretch(self.span)


def _returned(result: np.ndarray, out: Any) -> np.ndarray:
    """``result``, written into ``out`` when given (astropy's ``out=`` convention)."""
    if out is None:
        return result
    out[...] = result
    return np.asarray(out)


class _LogitStretch(BaseStretch):
    """The sigmoid's inverse, clamped to ``[0, 1]``: a colorbar then spans the two levels.

    Unclamped, the ends of the colormap (0 and 1) would map to infinite values.
    """

    def __init__(self, span: float) -> None:
        super().__init__()
        self.span = span

    def __call__(self, values: Any, clip: bool = True, out: Any = None) -> np.ndarray:
        edge = 1.0 / (1.0 + np.exp(self.span))  # the sigmoid at x = 0
        y = np.clip(np.asarray(values, dtype=np.float64), edge, 1.0 - edge)
        result = (np.log(y / (1.0 - y)) / self.span + 1.0) / 2.0
        return _returned(result, out)

    @property
    def inverse(self) -> BaseStretch:
        return SigmoidStretch(self.span)


class ClippedStretch(BaseStretch):
    """An astropy stretch that always clips its input to ``[0, 1]`` first.

    :class:`~astropy.visualization.ImageNormalize` calls its stretch with ``clip=False``;
    without clipping, ``PowerStretch`` would square values below the lower level into bright
    pixels, and ``sqrt``/``log`` would return NaN for them.
    """

    def __init__(self, stretch: BaseStretch) -> None:
        super().__init__()
        self.stretch = stretch

    def __call__(self, values: Any, clip: bool = True, out: Any = None) -> np.ndarray:
        return np.asarray(self.stretch(values, clip=True, out=out))

    @property
    def inverse(self) -> BaseStretch:
        """The inverse of the wrapped stretch (clipped as well)."""
        return ClippedStretch(self.stretch.inverse)


def finite_values(image: np.ndarray) -> np.ndarray:
    """Return the finite pixels of ``image`` as a flat float64 array (NaN and inf left out)."""
    values = np.asarray(image, dtype=np.float64).ravel()
    return values[np.isfinite(values)]


def stamp_norm(
    values: np.ndarray, stretch: str = "sigmoid", pmin: float = 0.5, pmax: float = 99.5
) -> ImageNormalize:
    """Return the display norm of the Fink ``stretch`` fitted on the finite ``values`` only.

    Parameters
    ----------
    values : numpy.ndarray
        Pixels of one stamp, or of every stamp that shares the scale; non-finite values are
        ignored.
    stretch : {"sigmoid", "linear", "sqrt", "power", "log"}
        ``sigmoid``: the mean and standard deviation of the finite values; the others: cut
        levels at their ``pmin`` and ``pmax`` percentiles, then astropy's stretch.
    pmin, pmax : float
        Percentiles of the cut levels (no effect for ``sigmoid``).

    Returns
    -------
    astropy.visualization.ImageNormalize
        ``clip=False`` (masks survive); without finite values, or with a flat image, a norm
        that maps that one value to the middle (``sigmoid``) or the bottom (others) of the
        colormap, as :func:`finkcube.stretch.stretch_image` does.

    Examples
    --------
    >>> import numpy as np
    >>> norm = stamp_norm(np.array([0.0, 1.0, 2.0, np.nan]), "linear", 0, 100)
    >>> norm(np.array([0.0, 1.0, 2.0, 3.0])).tolist()
    [0.0, 0.5, 1.0, 1.0]
    """
    levels = SharedLevels(stretch, pmin, pmax, total=np.size(values))
    levels.add(values)
    return levels.norm()


class SharedLevels:
    """The levels of one scale shared by many stamps, fed a block of stamps at a time.

    Memory stays bounded whatever the number of stamps: the sigmoid's mean and standard
    deviation are accumulated exactly (Chan's parallel update of the mean and the sum of
    squared deviations); for the percentile stretches at most ``max_samples`` finite values
    are kept, every ``k``-th of each block, with ``k = ceil(total / max_samples)`` (``k = 1``,
    every value, for up to ``max_samples`` pixels: a grid of stamps is exact).

    Parameters
    ----------
    stretch : str
        The Fink stretch.
    pmin, pmax : float
        Percentiles of the cut levels.
    total : int
        How many pixels (finite or not) will be added, all blocks together.
    max_samples : int
        The most values kept for the percentiles.
    """

    def __init__(
        self, stretch: str, pmin: float, pmax: float, total: int, max_samples: int = MAX_SAMPLES
    ) -> None:
        self.stretch = stretch
        self.pmin, self.pmax = check_percentiles(pmin, pmax)
        self.step = max(1, -(-int(total) // max_samples))
        self.count, self.mean, self.m2 = 0, 0.0, 0.0
        self.samples: list[np.ndarray] = []

    def add(self, values: np.ndarray) -> None:
        """Take the finite pixels of ``values`` (any shape) into the levels."""
        finite = finite_values(values)
        if not finite.size:
            return
        if self.stretch != "sigmoid":
            self.samples.append(finite[:: self.step])
            return
        n, mean = finite.size, float(finite.mean())
        m2 = float(((finite - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta**2 * self.count * n / total
        self.count = total

    def norm(self) -> ImageNormalize:
        """Return the norm of the values added so far (see :func:`stamp_norm`)."""
        if self.stretch == "sigmoid":
            std = float(np.sqrt(self.m2 / self.count)) if self.count else 0.0
            if std == 0.0 or not np.isfinite(std):
                std = 1.0  # a flat stamp: every pixel at the sigmoid's midpoint
            return ImageNormalize(
                vmin=self.mean - SIGMOID_SPAN * std,
                vmax=self.mean + SIGMOID_SPAN * std,
                stretch=SigmoidStretch(SIGMOID_SPAN),
                clip=False,
            )
        from astropy.visualization import AsymmetricPercentileInterval

        vmin = vmax = 0.0
        if self.samples:
            values = np.concatenate(self.samples)
            limits = AsymmetricPercentileInterval(self.pmin, self.pmax).get_limits(values)
            vmin, vmax = float(limits[0]), float(limits[1])
        if vmax <= vmin:
            vmax = vmin + 1.0  # no range: the one value maps to 0, as the service draws it black
        return ImageNormalize(
            vmin=vmin, vmax=vmax, stretch=ClippedStretch(astropy_stretch(self.stretch)),
            clip=False,
        )  # fmt: skip
