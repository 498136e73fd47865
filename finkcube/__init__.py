"""finkcube: analysis-ready cubes of the image cutouts of Rubin alerts served by Fink.

The public API is listed in ``__all__``; everything else is internal. Importing finkcube
registers the ``ds.fink`` xarray accessor.
"""

from __future__ import annotations

from finkcube import accessor as _accessor  # noqa: F401  (registers ds.fink)
from finkcube._version import __version__
from finkcube.cube.assemble import epoch_wcs
from finkcube.errors import (
    BadRequestError,
    CubeError,
    DecodeError,
    FinkcubeError,
    FinkcubeWarning,
    IncompleteCubeError,
    InputError,
    InvalidIdError,
    NotFoundError,
    ServiceError,
    StoreError,
    StoreRefusedError,
    TransportError,
)
from finkcube.ml.dataset import CubeDataset
from finkcube.ml.training import export
from finkcube.pipeline import (
    BuildReport,
    ObjectResult,
    Selection,
    build_cube,
    build_store,
    find,
    update_store,
)
from finkcube.pipeline.ingest import IngestReport, ingest
from finkcube.service.client import FinkClient
from finkcube.store import StoreView, iter_cutouts, list_objects, open_cube, open_store

__all__ = [
    "BadRequestError",
    "BuildReport",
    "CubeDataset",
    "CubeError",
    "DecodeError",
    "FinkClient",
    "FinkcubeError",
    "FinkcubeWarning",
    "IncompleteCubeError",
    "IngestReport",
    "InputError",
    "InvalidIdError",
    "NotFoundError",
    "ObjectResult",
    "Selection",
    "ServiceError",
    "StoreError",
    "StoreRefusedError",
    "StoreView",
    "TransportError",
    "__version__",
    "build_cube",
    "build_store",
    "epoch_wcs",
    "export",
    "find",
    "ingest",
    "iter_cutouts",
    "list_objects",
    "open_cube",
    "open_store",
    "update_store",
]
