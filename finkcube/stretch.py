"""The stretches of the Fink cutout PNG endpoint, as pure numpy functions.

The Fink LSST API renders a PNG cutout in four steps: blank (NaN) pixels become 0, the
image is stretched to [0, 1], an optional kernel smooths it, and a colormap (or plain grey)
turns it into 8-bit pixels. This module holds the first three steps so that finkcube's
plots and its emulator render a stamp the way the service does.

* ``sigmoid`` (the default): ``1 / (1 + exp(-(x - mean) / std))`` over the whole stamp;
  cut levels play no part.
* ``linear``, ``sqrt``, ``power`` (exponent 2) and ``log`` (``log(1000 x + 1) / log(1001)``)
  map the cut levels ``[vmin, vmax]`` to ``[0, 1]``, clip, then apply the stretch. The levels
  are the ``pmin`` and ``pmax`` percentiles of the stamp unless given explicitly;
  :func:`fink_cut_levels` gives the levels the real service uses.
"""

from __future__ import annotations

import math

import numpy as np

from finkcube.errors import InputError
from finkcube.names import CONVOLUTION_KERNELS, STRETCHES

__all__ = ["convolve_image", "fink_cut_levels", "stretch_image"]

#: Exponent of the ``power`` stretch (astropy's ``PowerStretch`` as the service calls it).
POWER_EXPONENT = 2.0
#: Parameter ``a`` of the ``log`` stretch (astropy's ``LogStretch`` default).
LOG_A = 1000.0


def _check_percentiles(pmin: float, pmax: float) -> tuple[float, float]:
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


def _sigmoid(image: np.ndarray) -> np.ndarray:
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

    Parameters
    ----------
    data : numpy.ndarray
        The image (any shape, usually a 2-D stamp); NaN pixels count as 0.
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
    low_p, high_p = _check_percentiles(pmin, pmax)
    image = np.nan_to_num(np.asarray(data, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if stretch == "sigmoid":
        return _sigmoid(image)
    if image.size == 0:
        return image
    low = float(np.percentile(image, low_p)) if vmin is None else float(vmin)
    high = float(np.percentile(image, high_p)) if vmax is None else float(vmax)
    if low > high:
        raise InputError(f"invalid cut levels vmin={low} > vmax={high}: expected vmin <= vmax")
    if low == high:
        return np.zeros(image.shape)
    scaled = np.clip((image - low) / (high - low), 0.0, 1.0)
    if stretch == "sqrt":
        scaled = np.sqrt(scaled)
    elif stretch == "power":
        scaled = scaled**POWER_EXPONENT
    elif stretch == "log":
        scaled = np.log(LOG_A * scaled + 1.0) / math.log(LOG_A + 1.0)
    return np.clip(np.nan_to_num(scaled), 0.0, 1.0)


def fink_cut_levels(data: np.ndarray) -> tuple[float, float]:
    """Return the cut levels the Fink service uses for its non-sigmoid PNG stretches.

    The service takes ``vmin`` as the stamp's minimum plus 0.2 times its median absolute
    deviation, and ``vmax`` as the central pixel, whatever ``pmin`` and ``pmax`` say. For a
    stamp whose central pixel lies below ``vmin`` (a negative difference) the service fails.

    Parameters
    ----------
    data : numpy.ndarray
        A 2-D stamp; NaN pixels count as 0.

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
    image = np.nan_to_num(np.asarray(data, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if image.ndim != 2 or image.size == 0:
        raise InputError(f"expected a non-empty 2-D stamp, got shape {image.shape}")
    centre = len(image) // 2
    vmax = float(image[centre, centre])
    vmin = float(image.min() + 0.2 * np.median(np.abs(image - np.median(image))))
    return vmin, vmax


def convolve_image(data: np.ndarray, kernel: str) -> np.ndarray:
    """Smooth an image with the service's ``gauss`` or ``box`` kernel.

    Both kernels are 5x5 and normalised: a Gaussian of standard deviation 1 pixel, or a box
    of width 1 pixel (linearly interpolated); edges are extended.

    Parameters
    ----------
    data : numpy.ndarray
        A 2-D image (usually already stretched); NaN pixels are interpolated over.
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

    smooth = 1
    if kernel == "gauss":
        weights = Gaussian2DKernel(smooth, x_size=smooth * 5, y_size=smooth * 5)
    else:
        weights = Box2DKernel(smooth, x_size=smooth * 5, y_size=smooth * 5)
    image = np.array(data, dtype=np.float64, copy=True)
    image[np.isinf(image)] = np.nan
    return np.asarray(convolve(image, weights, boundary="extend"), dtype=np.float64)
