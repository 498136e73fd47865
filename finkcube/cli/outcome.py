"""How a command ends: exit statuses and the one line written on stderr for each failure.

A command's exception becomes exactly one line, so that a script reading stderr (or a person)
sees what was wrong and what to do, never a traceback:

- :class:`~finkcube.errors.InputError` and :class:`~finkcube.errors.NotFoundError` (a refused
  store included): ``finkcube: error: ...``, exit 2, the user must act;
- any other :class:`~finkcube.errors.FinkcubeError`: ``finkcube: error: ...``, exit 1;
- a raw :class:`OSError` (disk full, permission denied), or a cloud SDK's error (no
  credentials, an endpoint that does not answer): the path and the reason, exit 1;
- anything else is a bug: ``finkcube: internal error: ...``, exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from finkcube.errors import (
    FinkcubeError,
    InputError,
    NotFoundError,
    printable,
    redact_text,
    storage_failure,
)

if TYPE_CHECKING:
    from finkcube.pipeline.build import BuildReport

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "classify",
    "one_line",
    "report_failures",
    "show_warning",
    "unknown_message",
]

#: Exit statuses: success, a failure while working, a usage or input error, Ctrl-C.
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

#: How many unknown ids an error line names before it only counts the others.
_NAMED_IDS = 5


def one_line(text: object) -> str:
    """Return ``str(text)`` on one line, safe to print on a terminal.

    Whitespace runs (newlines, CR too) become one space, the other control characters
    (escape sequences, BEL) are escaped, and the credentials of any URL are hidden: a
    message may quote what a server sent, or the URL the user gave.

    Parameters
    ----------
    text : object
        A message, an exception.

    Returns
    -------
    str
        The text on a single line.

    Examples
    --------
    >>> one_line("bad reply:\\n  <html>")
    'bad reply: <html>'
    >>> print(one_line("refused: \\x1b[2Jgone\\x07 at https://me:pw@host"))
    refused: \\x1b[2Jgone\\x07 at https://me:***@host
    """
    return printable(redact_text(" ".join(str(text).split())))


def _target(args: argparse.Namespace) -> str | None:
    """The path the command works on (``--out``, ``-o``, else ``STORE``), if it has one."""
    for name in ("out", "output", "store"):
        value = getattr(args, name, None)
        if value is not None:
            return str(value)
    return None


def _os_error_message(exc: OSError, args: argparse.Namespace) -> str:
    """One line for an :class:`OSError` that escaped: the path, the reason, what to check.

    Examples
    --------
    >>> exc = OSError(28, "No space left on device", "/data/s.zarr/zarr.json")
    >>> _os_error_message(exc, argparse.Namespace(out="/data/s.zarr"))[:60]
    '/data/s.zarr/zarr.json: No space left on device (check the p'
    >>> _os_error_message(OSError("disk I/O failed"), argparse.Namespace(out="s.zarr"))
    'OSError: disk I/O failed (while working on s.zarr)'
    >>> _os_error_message(OSError(98, "Address already in use"), argparse.Namespace())
    'Address already in use'
    """
    described = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    reason = exc.strerror or described
    if exc.filename is not None:
        path = str(exc.filename)
        if exc.filename2 is not None:
            path += f" -> {exc.filename2}"
        text = f"{path}: {reason} (check the path, its permissions and the free space)"
    else:
        target = _target(args)
        text = f"{reason} (while working on {target})" if target else reason
    return one_line(text)


def classify(exc: Exception, args: argparse.Namespace) -> tuple[int, str]:
    """Return the exit status and the stderr line for an exception a command raised.

    Parameters
    ----------
    exc : Exception
        What the command raised.
    args : argparse.Namespace
        The parsed command line (its path names an :class:`OSError` that has none).

    Returns
    -------
    (int, str)
        The exit status and one line starting with ``finkcube:``.

    Examples
    --------
    >>> from finkcube.errors import StoreRefusedError
    >>> classify(StoreRefusedError("x is not a finkcube store"), argparse.Namespace())
    (2, 'finkcube: error: x is not a finkcube store')
    >>> classify(RuntimeError("oops"), argparse.Namespace())[1][:40]
    'finkcube: internal error: RuntimeError: '
    """
    # InputError first: a refused store is both an InputError and a StoreError.
    if isinstance(exc, InputError | NotFoundError):
        return EXIT_USAGE, f"finkcube: error: {one_line(exc)}"
    if isinstance(exc, FinkcubeError):
        return EXIT_FAILURE, f"finkcube: error: {one_line(exc)}"
    if isinstance(exc, OSError):
        return EXIT_FAILURE, f"finkcube: error: {_os_error_message(exc, args)}"
    reason = storage_failure(exc)
    if reason is not None:
        target = _target(args)
        where = f"{target}: " if target else ""
        return EXIT_FAILURE, f"finkcube: error: {one_line(where + reason)}"
    return EXIT_FAILURE, (
        f"finkcube: internal error: {type(exc).__name__}: {one_line(exc)} "
        "(a bug: please report it; -vv shows the traceback)"
    )


def show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Print a warning as one ``finkcube: warning: ...`` line (a ``warnings.showwarning``),
    above any progress bar.

    Parameters
    ----------
    message, category, filename, lineno, file, line
        As for :func:`warnings.showwarning`; only ``message`` is printed.
    """
    from tqdm import tqdm

    tqdm.write(f"finkcube: warning: {one_line(message)}", file=sys.stderr)


def unknown_message(ids: Sequence[int]) -> str:
    """Return one line naming the objects the service lists no source for.

    Parameters
    ----------
    ids : sequence of int
        The unknown diaObjectIds.

    Returns
    -------
    str
        The first few ids and how many more.

    Examples
    --------
    >>> unknown_message([1, 2, 3, 4, 5, 6, 7])[32:69]
    'diaObjectIds 1, 2, 3, 4, 5 and 2 more'
    """
    named = ", ".join(str(i) for i in ids[:_NAMED_IDS])
    more = f" and {len(ids) - _NAMED_IDS} more" if len(ids) > _NAMED_IDS else ""
    noun = "diaObjectId" if len(ids) == 1 else "diaObjectIds"
    return f"the service lists no source for {noun} {named}{more}: unknown object? check the id"


def report_failures(report: BuildReport) -> int:
    """Print the failed objects of a build or update, one line each (unknown ones together).

    Parameters
    ----------
    report : BuildReport
        What the build or update did.

    Returns
    -------
    int
        0 when nothing failed, 2 when every failure is an unknown object, else 1.
    """
    failed = report.failed
    unknown = [r.object_id for r in failed if r.not_found]
    for result in failed:
        if not result.not_found:
            print(
                f"finkcube: diaObjectId {result.object_id} failed: {one_line(result.error)}",
                file=sys.stderr,
            )
    if unknown:
        print(f"finkcube: error: {unknown_message(unknown)}", file=sys.stderr)
    if not failed:
        return EXIT_OK
    return EXIT_USAGE if len(unknown) == len(failed) else EXIT_FAILURE
