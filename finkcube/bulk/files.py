"""Finding alert files: paths, folders and globs, local or any fsspec URL, as one sorted list.

Data Transfer (fink-client) writes alert packets to Avro or Parquet files, often in a tree
of folders; the livestream consumer saves Avro. :func:`find_alert_files` turns what a user
names into the files to read, each an :class:`AlertFile` with its format taken from its
name. The list is sorted by URL, so that an ingest reads files in one canonical order
whatever order they were named in.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from finkcube.errors import InputError, storage_failure

__all__ = ["FORMATS", "AlertFile", "find_alert_files"]

Format = Literal["avro", "parquet"]
#: File name endings of each format (lower case).
FORMATS: dict[str, Format] = {".avro": "avro", ".parquet": "parquet", ".parq": "parquet"}
_GLOB = set("*?[")


@dataclass(frozen=True, slots=True)
class AlertFile:
    """One alert file to read.

    Attributes
    ----------
    url : str
        A local absolute path or an fsspec URL.
    format : {"avro", "parquet"}
        Taken from the name's ending.
    options : mapping
        fsspec storage options (credentials: never printed).
    """

    url: str
    format: Format
    options: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def open(self) -> IO[bytes]:
        """Open the file for reading (binary), through fsspec."""
        import fsspec

        return fsspec.open(self.url, "rb", **dict(self.options)).open()


def _format_of(path: str) -> Format | None:
    lowered = path.lower()
    return next((fmt for end, fmt in FORMATS.items() if lowered.endswith(end)), None)


def _expand(given: str, options: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """The files ``given`` names, each with whether it was named explicitly."""
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(given, **dict(options))
    local = "://" not in given and "::" not in given

    def name(found: str) -> str:
        return os.path.abspath(found) if local else str(fs.unstrip_protocol(found))

    if _GLOB & set(path):
        return [(name(p), False) for p in fs.glob(path) if fs.isfile(p)]
    if fs.isdir(path):
        return [(name(p), False) for p in fs.find(path)]
    if fs.isfile(path):
        return [(name(path), True)]
    return []


def find_alert_files(
    paths: Iterable[str | os.PathLike[str]],
    storage_options: Mapping[str, Any] | None = None,
) -> list[AlertFile]:
    """Resolve paths, folders and globs into the alert files to read, sorted by URL.

    A folder is searched recursively for ``*.avro``, ``*.parquet`` and ``*.parq`` files
    (other files are ignored); a glob keeps the matches with those endings; a file named
    explicitly must have one of them.

    Parameters
    ----------
    paths : iterable of str or path
        Local paths or fsspec URLs (``s3://bucket/night/*.parquet``).
    storage_options : mapping, optional
        Passed to fsspec for URLs.

    Returns
    -------
    list of AlertFile
        Each file once, sorted by URL.

    Raises
    ------
    InputError
        When no path is given, a path matches no alert file, or a file named explicitly
        is neither Avro nor Parquet.

    Examples
    --------
    >>> from finkcube.emulator.alerts import sample_alerts_path
    >>> [f.format for f in find_alert_files([sample_alerts_path()])]
    ['avro']
    """
    options = dict(storage_options or {})
    given = [os.fspath(p) for p in paths]
    if not given:
        raise InputError("no alert file given: pass Avro or Parquet files, folders or globs")
    found: dict[str, AlertFile] = {}
    for text in given:
        try:
            matches = _expand(text, options)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot list {text!r}: {exc}") from exc
        except Exception as exc:
            reason = storage_failure(exc)
            if reason is None:
                raise
            raise InputError(f"cannot list {text!r}: {reason}") from exc
        kept = 0
        for url, explicit in matches:
            fmt = _format_of(url)
            if fmt is None:
                if explicit:
                    raise InputError(
                        f"{text!r} is not an alert file: expected a name ending in "
                        f"{', '.join(FORMATS)}"
                    )
                continue
            found.setdefault(url, AlertFile(url, fmt, options))
            kept += 1
        if not kept:
            raise InputError(f"{text!r} matches no alert file ({', '.join(FORMATS)})")
    return [found[url] for url in sorted(found)]
