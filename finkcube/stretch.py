"""The stretches of the Fink cutout PNG endpoint, so that plots look like the service's PNGs.

The Fink cutout service renders a PNG in four steps: blank (NaN) pixels become 0, the image
is stretched to [0, 1], an optional kernel smooths it, and a colormap (or plain grey) turns
it into 8-bit pixels. This module holds the first three steps so that finkcube's plots and
its emulator render a stamp the way the service does.

* ``linear``, ``sqrt``, ``power`` (exponent 2) and ``log`` (``a = 1000``) are
  :mod:`astropy.visualization` stretches, as on the service: the cut levels ``[vmin, vmax]``
  map to ``[0, 1]`` (:class:`~astropy.visualization.ManualInterval`, clipping), then the
  stretch applies. The levels are the ``pmin`` and ``pmax`` percentiles of the stamp
  (:class:`~astropy.visualization.AsymmetricPercentileInterval`) unless given explicitly.
* ``sigmoid`` (the default) is the service's own: ``1 / (1 + exp(-(x - mean) / std))`` over
  the whole stamp; cut levels play no part.
* :func:`fink_cut_levels` gives the cut levels the service really uses for the other
  stretches, whatever ``pmin`` and ``pmax`` say.
* :func:`convolve_image` smooths with the service's 5x5 :mod:`astropy.convolution` kernels.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from finkcube.errors import InputError
from finkcube.names import CONVOLUTION_KERNELS, STRETCHES

if TYPE_CHECKING:
    from astropy.visualization import BaseStretch

__all__ = [
    "astropy_stretch",
    "check_percentiles",
    "convolve_image",
    "fink_cut_levels",
    "stretch_image",
]

#: Exponent of the ``power`` stretch (the service's ``PowerStretch``).
POWER_EXPONENT = 2.0
#: Parameter ``a`` of the ``log`` stretch (the service's ``LogStretch``, astropy's default).
LOG_A = 1000.0
#: Side of the service's convolution kernels, in pixels.
KERNEL_SIDE = 5


def check_percentiles(pmin: float, pmax: float) -> tuple[float, float]:
    """Return ``(pmin, pmax)`` as floats, or raise InputError unless ``0 <= pmin < pmax <= 100``."""
    try:
        low, high = float(pmin), float(pmax)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"invalid percentiles pmin={pmin!r}, pmax={pmax!r}: expected numbers"
        ) from exc
    if not (math.isfinite(low) and math.isfinite(high) and 0.0 <= low < high <= 100.0):
        raise InputError(
            f"invalid percentiles pmin={pmin!r}, pmax={pmax!r}: expected 0 <= pmin < pmax <= 100"
        )
    return low, high


def astropy_stretch(stretch: str) -> BaseStretch:
    """Return the :mod:`astropy.visualization` stretch of a non-sigmoid Fink stretch name.

    ``linear`` (and any other name but the three below) gives ``LinearStretch``.
    """
    from astropy.visualization import LinearStretch, LogStretch, PowerStretch, SqrtStretch

    if stretch == "sqrt":
        return SqrtStretch()
    if stretch == "power":
        return PowerStretch(POWER_EXPONENT)
    if stretch == "log":
        return LogStretch(LOG_A)
    return LinearStretch()


def _sigmoid(image: np.ndarray) -> np.ndarray:
    # Hand-written: astropy.visualization has no sigmoid stretch, and this is the service's
    # own formula (mean and standard deviation of the whole stamp), needed to match its PNGs.
    std = float(image.std())
    if std == 0.0 or not math.isfinite(std):
        # A flat stamp: every pixel sits at the mean, the sigmoid's midpoint.
        return np.full(image.shape, 0.5)
    return 1.0 / (1.0 + np.exp(-(image - image.mean()) / std))


def stretch_image(
    data: np.ndarray,
    stretch: str = "sigmoid",
    pmin: float = 0.5,
    pmax: float = 99.5,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
) -> np.ndarray:
    """Stretch an image to [0, 1] the way the Fink cutout service does.

    ``sigmoid`` is the service's own formula, written here because no library has it;
    the other stretches are :mod:`astropy.visualization`'s, applied between cut levels with
    clipping. Equal cut levels (a flat stamp) give an image of zeros.

    Parameters
    ----------
    data : numpy.ndarray
        The image (any shape, usually a 2-D stamp); NaN and infinite pixels count as 0.
    stretch : str, optional
        One of ``sigmoid`` (default), ``linear``, ``sqrt``, ``power``, ``log``.
    pmin, pmax : float, optional
        Percentiles (0 to 100) of the lower and upper cut levels, used by every stretch but
        ``sigmoid`` when ``vmin`` / ``vmax`` are not given.
    vmin, vmax : float, optional
        Explicit cut levels; each one given replaces its percentile.

    Returns
    -------
    numpy.ndarray
        float64 values in [0, 1], of the shape of ``data``.

    Raises
    ------
    InputError
        For an unknown stretch, percentiles outside 0..100 or with ``pmin >= pmax``, or cut
        levels with ``vmin > vmax``.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.array([[0.0, 1.0], [2.0, np.nan]])
    >>> stretch_image(image, "linear", vmin=0.0, vmax=2.0).tolist()
    [[0.0, 0.5], [1.0, 0.0]]
    >>> stretch_image(image).round(3).tolist()
    [[0.288, 0.575], [0.819, 0.288]]
    """
    if stretch not in STRETCHES:
        raise InputError(f"unknown stretch {stretch!r}: expected one of {', '.join(STRETCHES)}")
    low_p, high_p = check_percentiles(pmin, pmax)
    image = np.nan_to_num(np.asarray(data, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if stretch == "sigmoid":
        return _sigmoid(image)
    if image.size == 0:
        return image
    from astropy.visualization import AsymmetricPercentileInterval, ManualInterval

    if vmin is None or vmax is None:
        p_low, p_high = AsymmetricPercentileInterval(low_p, high_p).get_limits(image)
        vmin = p_low if vmin is None else vmin
        vmax = p_high if vmax is None else vmax
    low, high = float(vmin), float(vmax)
    if low > high:
        raise InputError(f"invalid cut levels vmin={low} > vmax={high}: expected vmin <= vmax")
    if low == high:
        # No range to map: astropy would divide by zero; the service draws such a stamp black.
        return np.zeros(image.shape)
    transform = astropy_stretch(stretch) + ManualInterval(low, high)
    return np.asarray(transform(image, clip=True), dtype=np.float64)


def fink_cut_levels(data: np.ndarray) -> tuple[float, float]:
    """Return the cut levels the Fink service uses for its non-sigmoid PNG stretches.

    The service takes ``vmin`` as the stamp's minimum plus 0.2 times its median absolute
    deviation, and ``vmax`` as the central pixel, whatever ``pmin`` and ``pmax`` say. This
    rule is the service's own (no library has it); it is written here so that the emulator
    draws the same PNGs. For a stamp whose central pixel lies below ``vmin`` (a negative
    difference) the service fails.

    Parameters
    ----------
    data : numpy.ndarray
        A 2-D stamp; NaN and infinite pixels count as 0.

    Returns
    -------
    (float, float)
        ``(vmin, vmax)``.

    Raises
    ------
    InputError
        When ``data`` is not a non-empty 2-D array.

    Examples
    --------
    >>> import numpy as np
    >>> fink_cut_levels(np.arange(9.0).reshape(3, 3))
    (0.4, 4.0)
    """
    from astropy.stats import median_absolute_deviation

    image = np.nan_to_num(np.asarray(data, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if image.ndim != 2 or image.size == 0:
        raise InputError(f"expected a non-empty 2-D stamp, got shape {image.shape}")
    rows, cols = image.shape
    vmax = float(image[rows // 2, cols // 2])
    vmin = float(image.min() + 0.2 * median_absolute_deviation(image))
    return vmin, vmax


def convolve_image(data: np.ndarray, kernel: str) -> np.ndarray:
    """Smooth an image with the service's ``gauss`` or ``box`` kernel.

    Both are :mod:`astropy.convolution` kernels, 5x5 and normalised: a Gaussian of standard
    deviation 1 pixel, or a box of width 1 pixel (linearly interpolated); edges are extended.

    Parameters
    ----------
    data : numpy.ndarray
        A 2-D image (usually already stretched); NaN and infinite pixels are interpolated
        over.
    kernel : str
        ``gauss`` or ``box``.

    Returns
    -------
    numpy.ndarray
        float64 image of the same shape.

    Raises
    ------
    InputError
        For an unknown kernel.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((5, 5))
    >>> image[2, 2] = 1.0
    >>> float(convolve_image(image, "box")[2, 2])
    0.25
    """
    if kernel not in CONVOLUTION_KERNELS:
        raise InputError(
            f"unknown convolution kernel {kernel!r}: expected one of "
            f"{', '.join(CONVOLUTION_KERNELS)}"
        )
    from astropy.convolution import Box2DKernel, Gaussian2DKernel, convolve

    if kernel == "gauss":
        weights = Gaussian2DKernel(1, x_size=KERNEL_SIDE, y_size=KERNEL_SIDE)
    else:
        weights = Box2DKernel(1, x_size=KERNEL_SIDE, y_size=KERNEL_SIDE)
    image = np.array(data, dtype=np.float64, copy=True)
    image[np.isinf(image)] = np.nan
    return np.asarray(convolve(image, weights, boundary="extend"), dtype=np.float64)
