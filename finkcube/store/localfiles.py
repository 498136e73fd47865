"""The local-disk half of :class:`~finkcube.store.location.Store`'s batched file I/O.

Plain file calls: fsspec's per-file overhead would be most of the cost of a small chunk.
Every function takes full paths and is safe against another process of the same store
removing an emptied folder meanwhile (the step is made again, up to :data:`ATTEMPTS` times).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping

__all__ = ["ATTEMPTS", "link_files", "read_files", "write_aside", "write_files"]

#: How many times a write is tried while other writers keep removing its emptied folder.
ATTEMPTS = 10


def _make_folder(folder: str) -> None:
    """``os.makedirs(folder, exist_ok=True)``, where a folder another process removed between
    the ``mkdir`` and its check (``makedirs`` then raises ``FileExistsError`` for a path
    that no longer exists) reads as ``FileNotFoundError``: the caller makes it again."""
    try:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:
        if os.path.isdir(folder):  # made again by another process meanwhile
            return
        if os.path.lexists(folder):  # a file where the folder should be: a real error
            raise
        raise FileNotFoundError(errno.ENOENT, "removed while it was made", folder) from None


def read_files(paths: Mapping[str, str]) -> dict[str, bytes]:
    """Read ``{key: path}``; the bytes by key, missing files left out."""
    found = {}
    for key, path in paths.items():
        try:
            with open(path, "rb") as file:
                found[key] = file.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            continue
    return found


def write_files(files: Iterable[tuple[str, bytes]]) -> None:
    """Write each ``(path, bytes)``, its folders made as needed (one plain write each)."""
    made: set[str] = set()
    for path, data in files:
        folder = os.path.dirname(path)
        for attempt in range(ATTEMPTS):
            try:
                if folder not in made:
                    _make_folder(folder)  # a parent may go in the middle
                    made.add(folder)
                with open(path, "wb") as file:
                    file.write(data)
                break
            except FileNotFoundError:
                made.discard(folder)
                if attempt == ATTEMPTS - 1:
                    raise


def write_aside(path: str, folder: str, make: Callable[[str], None]) -> None:
    """Make the file ``path`` whole with ``make(partial)`` in ``folder``, then rename it over
    ``path``: a kill never leaves ``path`` half made, and what it leaves (a file named
    ``partial-*``) is never inside a Zarr node. ``folder`` is removed once empty."""
    for attempt in range(ATTEMPTS):
        partial = os.path.join(folder, f"partial-{uuid.uuid4().hex}")  # versions.ASIDE
        try:
            _make_folder(os.path.dirname(path))
            _make_folder(folder)
            make(partial)
            os.replace(partial, path)
            return
        except FileNotFoundError:
            if attempt == ATTEMPTS - 1:
                raise
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
            with contextlib.suppress(OSError):  # not empty: other writes in flight
                os.rmdir(folder)


def _link(source: str, target: str) -> None:
    """A hard link ``target`` to ``source``, or a copy where links are not to be had."""
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copyfile(source, target)


def link_files(pairs: Iterable[tuple[str, str]], folder: str) -> None:
    """Make each ``(source, target)`` path a hard link (or copy) of its source, replacing the
    target whole (:func:`write_aside`): no byte is copied where links are to be had."""
    for source, target in pairs:
        write_aside(target, folder, functools.partial(_link, source))
