"""Store and file-system failures turned into one-line :class:`~finkcube.errors.StoreError`.

What fails under a store (a full disk, a permission, a corrupt ``zarr.json``, a chunk that
does not decode) surfaces from fsspec, zarr, numpy or numcodecs as a raw ``OSError``,
``ValueError``, ``KeyError`` or ``RuntimeError``, and from a cloud SDK (botocore: no
credentials, an endpoint that does not answer) as that SDK's own errors. The public store
functions wrap their work in :func:`failures`, so that a user (and the CLI, exit 1) gets a
``StoreError`` saying which store, what was being done and why, with a hint for the usual
causes. finkcube's own errors (an ``InputError`` the user must fix, a ``NotFoundError``)
pass through unchanged.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

from finkcube.errors import FinkcubeError, StoreError, storage_failure

__all__ = ["FAILURES", "failures", "one_line"]

#: What a store's libraries raise when the store, not the caller, is at fault.
FAILURES = (OSError, ValueError, KeyError, EOFError, RuntimeError)
#: Builtin errors that are programming errors, never store failures.
_NOT_FAILURES = (NotImplementedError, RecursionError)

_HINTS = {
    errno.ENOSPC: "the disk is full: free some space",
    errno.EDQUOT: "the disk quota is spent",
    errno.EACCES: "check the permissions",
    errno.EPERM: "check the permissions",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOENT: "it was removed while in use?",
}


def one_line(exc: BaseException) -> str:
    """The reason an error gives, on one line, with a hint for the usual OS errors."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror if not exc.filename else f"{exc.strerror}: {exc.filename}"
        hint = _HINTS.get(exc.errno or 0)
        text = f"{text} ({hint})" if hint else text
    elif isinstance(exc, KeyError):
        text = f"missing {exc.args[0]!r}" if exc.args else "missing entry"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


@contextlib.contextmanager
def failures(url: str, doing: str) -> Iterator[None]:
    """Re-raise a store failure met while ``doing`` as a one-line StoreError.

    Parameters
    ----------
    url : str
        The store, as the user gave it.
    doing : str
        What was being done (``"writing cube 42"``), for the message.

    Examples
    --------
    >>> with failures("/data/cubes.zarr", "writing cube 42"):
    ...     raise OSError(errno.ENOSPC, "No space left on device")
    Traceback (most recent call last):
    ...
    finkcube.errors.StoreError: /data/cubes.zarr: writing cube 42 failed: No space left on device (the disk is full: free some space)
    """  # noqa: E501
    try:
        yield
    except FinkcubeError:
        raise
    except _NOT_FAILURES:
        raise
    except Exception as exc:
        reason = one_line(exc) if isinstance(exc, FAILURES) else storage_failure(exc)
        if reason is None:
            raise
        raise StoreError(f"{url}: {doing} failed: {reason}") from exc
