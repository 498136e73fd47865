"""Names, literals and limits of finkcube: the one place these strings are spelled.

Every other module imports its dimension names, cutout kinds, plane names, reply keys
and API paths from here, so that a rename is a one-line change.
"""

from __future__ import annotations

import math
from typing import Final, Literal

#: The three cutouts of every alert, in the order of the cube's ``kind`` axis.
KINDS: Final = ("Science", "Template", "Difference")
#: Dimensions of the cube's ``cutout`` variable, in order.
DIMS: Final = ("time", "kind", "y", "x", "plane")
#: Dimensions of the PSF variable (``planes="all"`` only).
PSF_DIMS: Final = ("time", "kind", "psf_y", "psf_x")
#: The per-pixel planes: ``data`` (every cube), ``variance`` and ``mask`` (FITS only).
DATA_PLANE: Final = "data"
VARIANCE_PLANE: Final = "variance"
MASK_PLANE: Final = "mask"
#: Per-pixel planes a Rubin cutout FITS file can hold, in the order of the ``plane`` axis.
PLANES: Final = (DATA_PLANE, VARIANCE_PLANE, MASK_PLANE)
#: The data variable of a cube.
CUTOUT_VAR: Final = "cutout"
#: The PSF variable of a cube built with ``planes="all"``.
PSF_VAR: Final = "psf"
#: The variable holding each epoch's and kind's WCS header cards (``planes="all"``).
WCS_VAR: Final = "wcs_header"
#: The time coordinate's source column.
TIME_COLUMN: Final = "midpointMjdTai"
#: Rubin's id columns: the per-epoch ``diaSourceId`` coordinate and the object's id (an
#: attribute of the cube and the name of its store group).
SOURCE_ID: Final = "diaSourceId"
OBJECT_ID: Final = "diaObjectId"
#: The per-epoch band coordinate.
BAND: Final = "band"
#: Per-epoch coordinates of the cube's own: each stamp's side before padding or cropping, and
#: whether it was centre-cropped to the canvas; per epoch and kind, the PSF's side (0: none).
SIDE: Final = "side"
CROPPED: Final = "cropped"
PSF_SIDE: Final = "psf_side"
#: Cube attributes: the diaSourceIds left out for want of cutouts (decimal strings), and each
#: source column's coordinate name and JSON type.
MISSING_ATTR: Final = "missing_diaSourceIds"
COLUMNS_ATTR: Final = "source_columns"

#: Aligned cubes (``align="sky"``): the resampled stamps and PSFs (their own ``ay``/``ax``
#: grid), the attribute with the grid's FITS WCS cards, and the accepted ``align`` values.
ALIGNED_VAR: Final = "aligned"
ALIGNED_PSF_VAR: Final = "aligned_psf"
ALIGNED_DIMS: Final = ("time", "kind", "ay", "ax", "plane")
ALIGNED_WCS_ATTR: Final = "aligned_wcs"
ALIGN_ARGS: Final = ("sky",)
#: Per-epoch quality coordinates: NaN fraction per kind, the source's offset from the canvas
#: centre (pixels), and whether a stamp was cut at a detector edge.
NAN_FRACTION: Final = "nan_fraction"
OFFSET_X: Final = "offset_x"
OFFSET_Y: Final = "offset_y"
EDGE: Final = "edge"

#: Names of the FITS extensions of a Rubin cutout file (CCDData serialisation): the
#: uncertainty (variance), the mask and the PSF image.
UNCERT_EXTNAME: Final = "UNCERT"
MASK_EXTNAME: Final = "MASK"
PSF_EXTNAME: Final = "PSFIMAGE"

Kind = Literal["Science", "Template", "Difference"]
KindArg = Literal["Science", "Template", "Difference", "All"]
OutputFormat = Literal["array", "FITS", "PNG"]
PlanesArg = Literal["data", "all"]
Stretch = Literal["sigmoid", "linear", "sqrt", "power", "log"]

KIND_ALL: Final = "All"
KIND_ARGS: Final = (*KINDS, KIND_ALL)
OUTPUT_FORMATS: Final = ("array", "FITS", "PNG")
SOURCE_OUTPUT_FORMATS: Final = ("json", "csv", "parquet", "votable")
STRETCHES: Final = ("sigmoid", "linear", "sqrt", "power", "log")
CONVOLUTION_KERNELS: Final = ("gauss", "box")
#: The fields of a PNG cutout request that shape the picture (each optional).
STRETCH_OPTION: Final = "stretch"
COLORMAP_OPTION: Final = "colormap"
PMIN_OPTION: Final = "pmin"
PMAX_OPTION: Final = "pmax"
KERNEL_OPTION: Final = "convolution_kernel"
PNG_OPTIONS: Final = (STRETCH_OPTION, COLORMAP_OPTION, PMIN_OPTION, PMAX_OPTION, KERNEL_OPTION)
PLANES_ARGS: Final = ("data", "all")

#: Prefix of the Rubin alert columns in ``/api/v1/sources`` records.
RUBIN_PREFIX: Final = "r:"
#: Prefix of the Fink added-value columns.
FINK_PREFIX: Final = "f:"
#: Prefix of the keys of an ``output-format=array`` cutout reply.
CUTOUT_KEY_PREFIX: Final = "b:cutout"

SOURCES_PATH: Final = "/api/v1/sources"
CUTOUTS_PATH: Final = "/api/v1/cutouts"
#: The endpoints that find objects: aggregates, forced photometry, cone search, tags, names.
OBJECTS_PATH: Final = "/api/v1/objects"
FP_PATH: Final = "/api/v1/fp"
CONESEARCH_PATH: Final = "/api/v1/conesearch"
TAGS_PATH: Final = "/api/v1/tags"
RESOLVER_PATH: Final = "/api/v1/resolver"
#: The Fink tags the API serves (``/api/v1/tags``); others are Livestream-only.
TAGS: Final = (
    "extragalactic_lt20mag_candidate",
    "extragalactic_new_candidate",
    "hostless_candidate",
    "in_tns",
    "most_likely_sn",
    "sn_near_galaxy_candidate",
)
#: The name resolvers of ``/api/v1/resolver``.
RESOLVERS: Final = ("simbad", "ssodnet", "tns")
#: The largest cone-search radius the service accepts, in arcseconds (5 degrees).
MAX_CONE_RADIUS_ARCSEC: Final = 18_000.0
#: The id of a forced-photometry measurement, and of a visit.
FORCED_SOURCE_ID: Final = "diaForcedSourceId"
VISIT: Final = "visit"
#: The column a cone search adds: the separation from the centre, in degrees.
SEPARATION_COLUMN: Final = "v:separation_degree"
DEFAULT_URL: Final = "https://api.lsst.fink-portal.org"
URL_ENV: Final = "FINKCUBE_URL"

#: Cutout sides are the footprint's bounding box clamped to this range.
MIN_SIDE: Final = 30
MAX_SIDE: Final = 102

#: Source columns finkcube asks for by default (``r:`` prefix on the wire).
DEFAULT_COLUMNS: Final = (
    SOURCE_ID,
    OBJECT_ID,
    TIME_COLUMN,
    BAND,
    "psfFlux",
    "psfFluxErr",
    "snr",
    "ra",
    "dec",
    "bboxSize",
)
#: Columns finkcube always needs, whatever the user asks for.
REQUIRED_COLUMNS: Final = (SOURCE_ID, OBJECT_ID, TIME_COLUMN, BAND)


def cutout_key(kind: str) -> str:
    """Return the key of ``kind`` in an ``output-format=array`` reply.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.

    Returns
    -------
    str
        ``"b:cutout" + kind``.

    Examples
    --------
    >>> cutout_key("Science")
    'b:cutoutScience'
    """
    return CUTOUT_KEY_PREFIX + kind


def rubin_column(name: str) -> str:
    """Return ``name`` with the ``r:`` family prefix, added only if missing.

    Examples
    --------
    >>> rubin_column("band"), rubin_column("r:band")
    ('r:band', 'r:band')
    """
    return name if ":" in name else RUBIN_PREFIX + name


def bare_column(name: str) -> str:
    """Return ``name`` without its family prefix (``r:``, ``f:``, ...).

    Examples
    --------
    >>> bare_column("r:psfFlux")
    'psfFlux'
    """
    return name.split(":", 1)[1] if ":" in name else name


#: Raw bytes of canvas per chunk along ``time`` of the stamp variables (``cutout``, ``psf``,
#: ``aligned``, ``aligned_psf``): in a store, and in a cube assembled lazily.
CHUNK_BYTES: Final = 4 * 2**20


def time_chunk(shape: tuple[int, ...], itemsize: int) -> int:
    """How many epochs one chunk of a stamp variable of ``shape`` holds (:data:`CHUNK_BYTES`).

    Examples
    --------
    >>> time_chunk((1200, 3, 40, 40, 3), 4), time_chunk((2, 3, 40, 40, 1), 4)
    (72, 2)
    """
    epoch = itemsize * int(math.prod(shape[1:]))
    return max(1, min(shape[0], CHUNK_BYTES // max(epoch, 1)))
