"""The PNG rendering of ``/api/v1/cutouts``, step for step as the Fink service does it.

NaN pixels become 0; the stretch maps the stamp to [0, 1] (``sigmoid`` by default; the
other stretches use the service's own cut levels, so ``pmin`` and ``pmax`` are parsed but
change nothing, as on the service); an optional 5x5 kernel smooths the result; a
matplotlib colormap gives RGBA pixels, else the image stays grey (``L``); values become
8-bit by truncation. Row 0 of the stamp is the top row of the PNG.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from finkcube.names import (
    COLORMAP_OPTION,
    KERNEL_OPTION,
    PMAX_OPTION,
    PMIN_OPTION,
    STRETCH_OPTION,
)
from finkcube.stretch import convolve_image, fink_cut_levels, stretch_image

__all__ = ["render_png"]


def render_png(data: np.ndarray, options: Mapping[str, Any]) -> bytes:
    """Render a stamp as the service's PNG.

    Parameters
    ----------
    data : numpy.ndarray
        The 2-D data plane.
    options : mapping
        The request fields: ``stretch``, ``pmin``, ``pmax``, ``convolution_kernel``,
        ``colormap`` (each optional).

    Returns
    -------
    bytes
        The PNG file.

    Raises
    ------
    Exception
        Whatever the service would fail on (unknown stretch, kernel or colormap, a
        non-numeric percentile, a stamp whose centre lies below its lower cut level): the
        emulator answers those with a 500, like the service.

    Examples
    --------
    >>> import numpy as np
    >>> render_png(np.eye(4, dtype=np.float32), {})[:4]
    b'\\x89PNG'
    """
    from PIL import Image

    array = np.nan_to_num(np.asarray(data, dtype=np.float64))
    stretch = options.get(STRETCH_OPTION, "sigmoid")
    if stretch == "sigmoid":
        array = stretch_image(array, "sigmoid")
    elif stretch is not None:
        # The service parses the percentiles, then passes its own cut levels.
        float(options.get(PMIN_OPTION, 0.5))
        float(options.get(PMAX_OPTION, 99.5))
        vmin, vmax = fink_cut_levels(array)
        array = stretch_image(array, str(stretch), vmin=vmin, vmax=vmax)
    if KERNEL_OPTION in options:
        array = convolve_image(array, str(options[KERNEL_OPTION]))
    if COLORMAP_OPTION in options:
        import matplotlib

        colormap = matplotlib.colormaps[str(options[COLORMAP_OPTION])]
        pixels = np.uint8(colormap(np.clip(array, 0.0, 1.0)) * 255)
    else:
        pixels = np.uint8(np.clip(array, 0.0, 1.0) * 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
