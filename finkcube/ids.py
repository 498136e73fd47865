"""Validation of Rubin identifiers (``diaObjectId``, ``diaSourceId``).

Ids are positive 64-bit integers written in decimal. They are checked before any request
is sent and before they become store paths.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable

from finkcube.errors import InputError, InvalidIdError

__all__ = ["MAX_OBJECTS_FILE_BYTES", "load_objects_file", "parse_id", "parse_ids",
           "read_objects_file"]  # fmt: skip

#: The largest objects file read (64 MiB: some three million ids).
MAX_OBJECTS_FILE_BYTES = 64 * 2**20

_DECIMAL = re.compile(r"[0-9]{1,19}")
_INT64_MAX = 2**63 - 1


def parse_id(value: object, *, what: str = "diaObjectId") -> int:
    """Return ``value`` as a positive 64-bit integer id, or raise :class:`InvalidIdError`.

    Parameters
    ----------
    value : int or str
        The id, as an ``int`` or a decimal string (surrounding blanks allowed).
    what : str, optional
        The id's name, used in the error message.

    Returns
    -------
    int
        The id.

    Raises
    ------
    InvalidIdError
        When ``value`` is not a positive decimal integer of at most 19 digits that fits
        in a signed 64-bit integer.

    Examples
    --------
    >>> parse_id("313761043604045880")
    313761043604045880
    >>> parse_id("12a")
    Traceback (most recent call last):
    ...
    finkcube.errors.InvalidIdError: invalid diaObjectId '12a': expected a positive decimal integer of at most 19 digits
    """  # noqa: E501
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        number = None
    if number is None or not 0 < number <= _INT64_MAX:
        raise InvalidIdError(
            f"invalid {what} {value!r}: expected a positive decimal integer of at most 19 digits"
        )
    return number


def parse_ids(values: Iterable[object], *, what: str = "diaObjectId") -> list[int]:
    """Validate many ids at once, keeping their order and dropping repeats.

    Examples
    --------
    >>> parse_ids(["3", 1, "3"])
    [3, 1]
    """
    return list(dict.fromkeys(parse_id(v, what=what) for v in values))


def read_objects_file(text: str, *, name: str = "objects file") -> list[int]:
    """Parse an objects file: one diaObjectId per line, blank lines and ``#`` comments ignored.

    Parameters
    ----------
    text : str
        The file's content.
    name : str, optional
        The file's name, used in error messages.

    Returns
    -------
    list of int
        The ids, in file order, without repeats.

    Raises
    ------
    InputError
        Naming the file and line of the first malformed entry.

    Examples
    --------
    >>> read_objects_file("# mine\\n313761043604045880\\n\\n12  # note\\n")
    [313761043604045880, 12]
    >>> read_objects_file("\\ufeff12\\n")
    [12]
    """
    ids: list[int] = []
    text = text.removeprefix("\ufeff")  # a UTF-8 byte order mark, as some editors write
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            ids.append(parse_id(entry))
        except InvalidIdError as exc:
            raise InputError(f"{name}, line {number}: {exc}") from exc
    return list(dict.fromkeys(ids))


def load_objects_file(path: str | os.PathLike[str]) -> list[int]:
    """Read and parse an objects file (see :func:`read_objects_file`).

    Parameters
    ----------
    path : str or path-like
        The file: a regular file of UTF-8 text (a byte order mark allowed), at most
        :data:`MAX_OBJECTS_FILE_BYTES`.

    Returns
    -------
    list of int
        The ids, in file order, without repeats.

    Raises
    ------
    InputError
        When the file cannot be read, is not a regular file (a device, a pipe, a folder:
        ``/dev/zero`` would never end), is too large, is not UTF-8 (the message names the
        line), or holds a malformed entry.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise InputError(f"objects file {name} is not a regular file: give a text file")
            if info.st_size > MAX_OBJECTS_FILE_BYTES:
                raise InputError(
                    f"objects file {name} is {info.st_size} bytes, over the "
                    f"{MAX_OBJECTS_FILE_BYTES // 2**20} MiB limit: split it"
                )
            content = file.read(MAX_OBJECTS_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or exc
        raise InputError(f"cannot read objects file {name}: {reason}") from exc
    if len(content) > MAX_OBJECTS_FILE_BYTES:
        raise InputError(f"objects file {name} grew over the limit while read: split it")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{name}, line {line}: not UTF-8 text (byte {content[exc.start]:#04x}): "
            "save the file as UTF-8, one diaObjectId a line"
        ) from exc
    return read_objects_file(text, name=name)
