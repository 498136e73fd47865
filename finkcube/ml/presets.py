"""Preprocessing presets of published stamp classifiers, and the per-image normalisations.

A :class:`Preset` fixes what :func:`finkcube.ml.export` makes of each epoch: the channels
(``"Kind/plane"`` names, in order), the side, whether NaN-mask channels are appended, and a
normalisation: a plain function taking float32 stamps ``(..., channel, y, x)`` with NaN where
a pixel is blank or padding, and returning an array of the same shape. The built-in presets
reproduce the preprocessing of three published models (each cited below); a user adds one
with :func:`register_preset`.

- ``"alerce"``: ALeRCE's Rubin stamp classifier (Carrasco-Davis et al. 2021, AJ 162, 231):
  31 px; science, template, difference; :func:`alerce_normalise`; three NaN-mask channels;
- ``"rubin-reliability"``: Rubin's reliability model (``lsst/meas_transiNet``): 51 px;
  difference, science, template; :func:`reliability_normalise` (NaN -> 0);
- ``"btsbot"``: BTSbot (Rehemtulla et al. 2024, ApJ 972, 7): 63 px; science, template,
  difference; :func:`btsbot_normalise` (L2 norm per cutout, NaN -> 0).

The normalisations work per image and channel (the two last axes), so they apply to one
sample ``(channel, y, x)`` as well as to a batch ``(n, channel, y, x)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from finkcube.errors import InputError
from finkcube.names import KINDS, PLANES

__all__ = [
    "NORMALISERS",
    "PRESETS",
    "Preset",
    "alerce_normalise",
    "btsbot_normalise",
    "channel_names",
    "fill_nan",
    "minmax_normalise",
    "parse_channel",
    "register_preset",
    "reliability_normalise",
    "robust_normalise",
]

Normaliser = Callable[[np.ndarray], np.ndarray]

#: The separator of a channel name: ``"Difference/data"`` is kind Difference, plane data.
CHANNEL_SEP: Final = "/"


def parse_channel(name: str) -> tuple[str, str]:
    """Return ``(kind, plane)`` of a channel name such as ``"Difference/data"``.

    A bare kind (``"Science"``) means its data plane.

    Raises
    ------
    InputError
        For an unknown kind or plane.

    Examples
    --------
    >>> parse_channel("Template/variance"), parse_channel("Science")
    (('Template', 'variance'), ('Science', 'data'))
    """
    kind, _, plane = str(name).partition(CHANNEL_SEP)
    plane = plane or PLANES[0]
    if kind not in KINDS or plane not in PLANES:
        raise InputError(
            f"bad channel {name!r}: expected KIND/PLANE with KIND among {KINDS} "
            f"and PLANE among {PLANES}, e.g. 'Difference/data'"
        )
    return kind, plane


def channel_names(channels: Sequence[str]) -> tuple[str, ...]:
    """Return the channels as canonical ``"Kind/plane"`` names, checked and distinct."""
    names = tuple(CHANNEL_SEP.join(parse_channel(c)) for c in channels)
    if not names or len(set(names)) != len(names):
        raise InputError(f"channels must be distinct and at least one, got {list(channels)}")
    return names


def _flat(x: np.ndarray) -> np.ndarray:
    """``x`` as float64 with its images flattened: ``(..., y * x)``."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(*x.shape[:-2], -1)


def _nanreduce(func: Callable[..., np.ndarray], flat: np.ndarray, *args: float) -> np.ndarray:
    """``func(flat, *args, axis=-1)`` ignoring NaN, NaN for an image without a finite pixel."""
    finite = np.isfinite(flat)
    some = finite.any(axis=-1)
    safe = np.where(some[..., None], np.where(finite, flat, np.nan), 0.0)
    return np.where(some, func(safe, *args, axis=-1), np.nan)


def fill_nan(x: np.ndarray, value: float = 0.0) -> np.ndarray:
    """Return ``x`` (float32) with NaN and infinities replaced by ``value``."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(np.isfinite(x), x, np.float32(value)).astype(np.float32)


def alerce_normalise(x: np.ndarray) -> np.ndarray:
    """ALeRCE's per-image scaling: ``(x - min|x|) / (p99|x| - min|x|)``, clipped to [-2, 2].

    The minimum and the 99th percentile are those of the image's absolute values (NaN,
    infinite and ``|x| > 1e10`` pixels ignored, 1e-8 added to the denominator), then NaN
    and infinities become 0, as in ALeRCE's Rubin stamp classifier (the stamp classifier of
    Carrasco-Davis et al. 2021, AJ 162, 231, retrained on Rubin alerts; its preprocessing:
    ``normalize_stamps`` in alercebroker/pipeline, ``training/stamp_classifier``).
    """
    flat = _flat(x)
    absolute = np.abs(flat)
    absolute[~(absolute <= 1e10)] = np.nan  # NaN, inf and huge values are left out
    low = _nanreduce(np.nanmin, absolute)[..., None, None]
    high = _nanreduce(np.nanpercentile, absolute, 99.0)[..., None, None]
    with np.errstate(invalid="ignore"):
        out = np.clip((np.asarray(x, np.float64) - low) / (high - low + 1e-8), -2.0, 2.0)
    return fill_nan(out)


def btsbot_normalise(x: np.ndarray) -> np.ndarray:
    """BTSbot's per-image scaling: NaN -> 0, then division by the image's L2 (Frobenius) norm.

    As in Rehemtulla et al. 2024, ApJ 972, 7 (BTSbot); an all-zero image stays zero.
    """
    filled = fill_nan(x).astype(np.float64)
    norm = np.sqrt(np.sum(filled**2, axis=(-2, -1), keepdims=True))
    return (filled / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def reliability_normalise(x: np.ndarray) -> np.ndarray:
    """Rubin's reliability model's input: the stamps as they are, NaN -> 0.

    As ``RBTransiNetTask`` of the Rubin Science Pipelines (``lsst/meas_transiNet``) feeds
    its CNN: 51 x 51 cutouts stacked difference, science, template, ``np.nan_to_num``'d.
    """
    return np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0)


def minmax_normalise(x: np.ndarray) -> np.ndarray:
    """Each image to [0, 1]: ``(x - min) / (max - min)`` over its finite pixels (NaN kept)."""
    flat = _flat(x)
    low = _nanreduce(np.nanmin, flat)[..., None, None]
    span = _nanreduce(np.nanmax, flat)[..., None, None] - low
    span = np.where(np.isfinite(span) & (span > 0), span, 1.0)
    return ((np.asarray(x, np.float64) - low) / span).astype(np.float32)


def robust_normalise(x: np.ndarray) -> np.ndarray:
    """Each image to ``(x - median) / (1.4826 x MAD)`` over its finite pixels (NaN kept)."""
    flat = _flat(x)
    centre = _nanreduce(np.nanmedian, flat)
    mad = _nanreduce(np.nanmedian, np.abs(flat - centre[..., None]))
    scale = 1.482602218505602 * mad
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    out = (np.asarray(x, np.float64) - centre[..., None, None]) / scale[..., None, None]
    return out.astype(np.float32)


#: The per-image normalisations ``export(normalise=NAME)`` knows.
NORMALISERS: Final[dict[str, Normaliser]] = {
    "minmax": minmax_normalise,
    "robust": robust_normalise,
    "l2": btsbot_normalise,
    "alerce": alerce_normalise,
}


@dataclass(frozen=True, slots=True)
class Preset:
    """What a training set is made of: channels, side, normalisation, mask channels.

    Attributes
    ----------
    name : str
        The registry name.
    size : int
        The side of every stamp, centre-cropped or NaN-padded as the cubes are.
    channels : tuple of str
        ``"Kind/plane"`` names, in the order of the ``channel`` axis.
    normalise : callable or None
        ``f(x) -> y`` on float32 ``(..., channel, y, x)`` (NaN where blank), same shape.
    mask : bool
        Append one channel per channel, 1.0 where its pixel was NaN before normalising.
    reference : str
        Where the preprocessing comes from.
    """

    name: str
    size: int
    channels: tuple[str, ...]
    normalise: Normaliser | None = None
    mask: bool = False
    reference: str = ""


#: The presets :func:`finkcube.ml.export` knows, by name; :func:`register_preset` adds one.
PRESETS: dict[str, Preset] = {}


def register_preset(
    name: str,
    *,
    size: int,
    channels: Sequence[str],
    normalise: Normaliser | None = None,
    mask: bool = False,
    reference: str = "",
) -> Preset:
    """Add (or replace) a preset of :data:`PRESETS` and return it.

    Parameters
    ----------
    name : str
        The name ``export(preset=...)`` and ``finkcube export --preset`` take.
    size : int
        The stamps' side in pixels.
    channels : sequence of str
        ``"Kind/plane"`` names (a bare kind is its data plane), in order.
    normalise : callable, optional
        ``f(x) -> y``, float32 ``(..., channel, y, x)`` in and out; NaN left in ``y``
        become the export's ``fill``.
    mask : bool
        Append a NaN-mask channel per channel.
    reference : str
        The paper or code the preprocessing reproduces.

    Examples
    --------
    >>> p = register_preset("diff-only", size=21, channels=["Difference"])
    >>> p.channels, PRESETS["diff-only"].size
    (('Difference/data',), 21)
    >>> del PRESETS["diff-only"]
    """
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InputError(f"a preset's size must be a positive integer, got {size!r}")
    if normalise is not None and not callable(normalise):
        raise InputError(f"a preset's normalise must be a function, got {normalise!r}")
    preset = Preset(str(name), size, channel_names(channels), normalise, bool(mask), reference)
    PRESETS[preset.name] = preset
    return preset


register_preset(
    "alerce",
    size=31,
    channels=["Science", "Template", "Difference"],
    normalise=alerce_normalise,
    mask=True,
    reference="ALeRCE Rubin stamp classifier (Carrasco-Davis et al. 2021, AJ 162, 231)",
)
register_preset(
    "rubin-reliability",
    size=51,
    channels=["Difference", "Science", "Template"],
    normalise=reliability_normalise,
    reference="Rubin's reliability model (lsst/meas_transiNet: 51 px, difference, "
    "science, template, NaN -> 0)",
)
register_preset(
    "btsbot",
    size=63,
    channels=["Science", "Template", "Difference"],
    normalise=btsbot_normalise,
    reference="BTSbot (Rehemtulla et al. 2024, ApJ 972, 7)",
)
