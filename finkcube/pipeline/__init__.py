"""The only code that joins the service and the store: plan, fetch, assemble, write, report.

:func:`build_store` and :func:`update_store` plan the work (:mod:`~finkcube.pipeline.plan`) and
hand it to one loop (:mod:`~finkcube.pipeline.run`), on this process's threads or on a
dask.distributed cluster (:mod:`~finkcube.pipeline.executors`).
"""

from finkcube.pipeline.build import BuildReport, ObjectResult, build_cube, build_store
from finkcube.pipeline.update import update_store

__all__ = ["BuildReport", "ObjectResult", "build_cube", "build_store", "update_store"]
