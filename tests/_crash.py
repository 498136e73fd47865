"""A test harness that kills a real ``finkcube`` command at its k-th file operation.

Run as a script by ``tests/test_crash_points.py``: ``python tests/_crash.py JOBS.json``.
It imports finkcube once, then for each job forks a child that patches the file system
calls the command makes (local disk: ``open`` for writing, ``os.replace``/``rename``,
``os.remove``/``unlink``/``rmdir``; S3: the mutating calls of s3fs), runs
``finkcube.cli.main(argv)`` and ends with ``os._exit(9)`` (no cleanup, no ``finally``, as
``kill -9``) just before its k-th operation under the store; a write that is the k-th
operation is torn: half its bytes land first. With ``k = 0`` the child runs to the end
and writes how many operations it made and the modules it imported, which later runs
import before forking (``"warm"``), so that each child starts as a warm process would.
Nothing of this is in finkcube itself: it is the test's, like a debugger's breakpoint.

The spec is ``{"jobs": [JOB, ...], "warm": [MODULE, ...]}``, each job
``{"argv": [...], "root": PATH_OR_S3_PREFIX, "k": K, "count": FILE}``; the parent prints
one JSON list of the children's exit statuses.
"""

from __future__ import annotations

import builtins
import json
import os
import sys
from typing import Any

#: s3fs calls that change a bucket.
_S3_WRITES = {"put_object", "delete_object", "delete_objects", "copy_object",
              "create_multipart_upload", "upload_part", "complete_multipart_upload"}  # fmt: skip


class _Counter:
    def __init__(self, root: str, k: int) -> None:
        self.root, self.k, self.seen = root, k, 0

    def hit(self, path: Any) -> bool:
        """Count an operation on ``path``; True when it is the one to die at."""
        if not isinstance(path, str | os.PathLike) or not os.fspath(path).startswith(self.root):
            return False
        self.seen += 1
        return self.seen == self.k


def _die() -> None:
    os._exit(9)


class _Torn:
    """A file object whose first write lands half, then the process dies."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def write(self, data: bytes) -> int:
        self._file.write(data[: len(data) // 2])
        self._file.flush()
        _die()
        return 0  # pragma: no cover

    def __enter__(self) -> _Torn:
        return self

    def __exit__(self, *args: Any) -> None:
        self._file.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def _patch_local(counter: _Counter) -> None:
    real_open = builtins.open

    def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        writing = any(c in mode for c in "wax+")
        if writing and counter.hit(file):
            return _Torn(real_open(file, mode, *args, **kwargs))
        return real_open(file, mode, *args, **kwargs)

    builtins.open = open_

    def wrap(name: str) -> None:
        real = getattr(os, name)

        def call(path: Any, *args: Any, **kwargs: Any) -> Any:
            # shutil.rmtree passes bare names with dir_fd: those are under the store too.
            target = os.path.join(counter.root, "x") if "dir_fd" in kwargs else path
            if counter.hit(target):
                _die()
            return real(path, *args, **kwargs)

        setattr(os, name, call)

    for name in ("replace", "rename", "remove", "unlink", "rmdir"):
        wrap(name)


def _patch_s3(counter: _Counter) -> None:
    import s3fs

    real = s3fs.S3FileSystem._call_s3

    async def call(self: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        if method in _S3_WRITES:
            key = kwargs.get("Key")  # delete_objects names its keys in a list: the store's
            if counter.hit(f"{kwargs.get('Bucket', '')}/{key}" if key else counter.root):
                _die()
        return await real(self, method, *args, **kwargs)

    s3fs.S3FileSystem._call_s3 = call


def _child(job: dict[str, Any]) -> None:
    from finkcube.cli import main

    root = job["root"]
    counter = _Counter(root.removeprefix("s3://"), int(job["k"]))
    if root.startswith("s3://"):
        _patch_s3(counter)
    else:
        _patch_local(counter)
    try:
        code = main(job["argv"])
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 99
    if counter.k == 0:
        with builtins.open(job["count"], "w") as file:
            json.dump({"ops": counter.seen, "modules": sorted(sys.modules)}, file)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    import importlib
    import threading

    with open(sys.argv[1]) as file:
        spec = json.load(file)
    import finkcube.cli  # noqa: F401  (once, before forking: each child starts warm)

    for name in spec.get("warm", []):  # what a counting run imported: children start warm
        if not name.startswith("_") and name != "__main__":
            try:
                importlib.import_module(name)
            except Exception:
                continue
    if threading.active_count() != 1:
        raise SystemExit("an import started a thread: forking would not be safe")
    statuses = []
    for job in spec["jobs"]:
        pid = os.fork()
        if pid == 0:
            _child(job)
        _, status = os.waitpid(pid, 0)
        statuses.append(os.waitstatus_to_exitcode(status))
    print(json.dumps(statuses))


if __name__ == "__main__":
    main()
