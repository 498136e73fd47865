"""The only code that joins the service and the store: plan, fetch, assemble, write, report.

:func:`build_store` and :func:`update_store` plan the work (:mod:`~finkcube.pipeline.plan`:
which objects, which sources, as :class:`~finkcube.pipeline.jobs.Job` values) and hand the
jobs to one loop (:mod:`~finkcube.pipeline.run`: fetch on the client's bounded pool
(:mod:`~finkcube.pipeline.fetch`), assemble or merge, write), run on this process's threads
or as one task per object on a dask.distributed cluster (:mod:`~finkcube.pipeline.executors`).
Results come back as a :class:`BuildReport` (:mod:`~finkcube.pipeline.report`).
"""

from finkcube.pipeline.build import build_cube, build_store
from finkcube.pipeline.report import BuildReport, ObjectResult
from finkcube.pipeline.select import Selection, find
from finkcube.pipeline.update import update_store

__all__ = [
    "BuildReport",
    "ObjectResult",
    "Selection",
    "build_cube",
    "build_store",
    "find",
    "update_store",
]
