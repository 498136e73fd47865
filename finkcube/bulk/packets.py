"""Reading alert packets from Avro (fastavro) and Parquet (pyarrow) files, in two passes.

:func:`scan_file` reads only the ids of every row (``diaSource.diaObjectId`` and
``diaSource.diaSourceId``): Avro through a reader schema that projects the packets onto
those two fields, so fastavro skips the cutouts and the rest instead of building them;
Parquet by reading just those two nested columns. :func:`read_packets` then reads chosen
rows in full (their ``diaSource`` and three cutout FITS byte strings): Avro block by block,
a block with none of the rows skipped undecoded; Parquet row group by row group, a group with
none of the rows not read at all. What a pass holds in memory is the rows asked for, not the
file.

A file that cannot be read, or whose packets are not Rubin alerts, raises
:class:`~finkcube.errors.DecodeError` naming the file.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from finkcube.bulk.files import AlertFile
from finkcube.errors import DecodeError, InputError
from finkcube.names import KINDS, OBJECT_ID, SOURCE_ID

__all__ = ["FileIndex", "Packet", "read_packets", "scan_file"]

#: The field of a packet that holds its own source, and the prefix of its cutout fields.
SOURCE_FIELD = "diaSource"
CUTOUT_PREFIX = "cutout"
_ERRORS = (OSError, ValueError, TypeError, KeyError, IndexError, EOFError)


@dataclass(frozen=True, slots=True)
class FileIndex:
    """The ids of every row of one file, in row order.

    Attributes
    ----------
    url : str
        The file.
    object_ids : numpy.ndarray
        int64 diaObjectIds, 0 where null or 0 (solar-system alerts).
    source_ids : numpy.ndarray
        int64 diaSourceIds.
    """

    url: str
    object_ids: np.ndarray
    source_ids: np.ndarray


@dataclass(frozen=True, slots=True)
class Packet:
    """One alert read in full: its row, its ``diaSource`` and its cutouts' FITS bytes."""

    row: int
    source: Mapping[str, Any]
    cutouts: Mapping[str, bytes | None]


@contextmanager
def _reading(file: AlertFile) -> Iterator[None]:
    """Turn any failure to read ``file`` into one DecodeError naming it."""
    try:
        yield
    except (DecodeError, InputError):
        raise
    except ImportError as exc:
        raise InputError(
            f"reading {file.url} needs pyarrow: pip install 'finkcube[parquet]'"
        ) from exc
    except _ERRORS as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DecodeError(f"alert file {file.url} cannot be read: {detail}") from exc
    except Exception as exc:  # pyarrow.ArrowException and fastavro's own errors
        if type(exc).__module__.split(".")[0] not in ("pyarrow", "fastavro"):
            raise
        raise DecodeError(f"alert file {file.url} cannot be read: {exc}") from exc


def _not_alerts(file: AlertFile, why: str) -> DecodeError:
    return DecodeError(f"alert file {file.url} does not hold Rubin alert packets: {why}")


def _projection(file: AlertFile, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The writer's schema cut down to ``diaSource.{diaObjectId, diaSourceId}``."""
    fields = {f["name"]: f for f in schema.get("fields", [])}
    if SOURCE_FIELD not in fields:
        raise _not_alerts(file, f"no {SOURCE_FIELD} field")
    declared = fields[SOURCE_FIELD]["type"]
    branches = declared if isinstance(declared, list) else [declared]
    records = [b for b in branches if isinstance(b, dict) and b.get("type") == "record"]
    if not records:
        raise _not_alerts(file, f"{SOURCE_FIELD} is not a record")
    keep = [f for f in records[0]["fields"] if f["name"] in (SOURCE_ID, OBJECT_ID)]
    if SOURCE_ID not in {f["name"] for f in keep}:
        raise _not_alerts(file, f"{SOURCE_FIELD} has no {SOURCE_ID}")
    cut = {**records[0], "fields": keep}
    kind = [cut if b is records[0] else b for b in branches] if isinstance(declared, list) else cut
    return {**schema, "fields": [{**fields[SOURCE_FIELD], "type": kind}]}


def _ids(file: AlertFile, pairs: Sequence[tuple[Any, Any]]) -> FileIndex:
    for row, (_, source_id) in enumerate(pairs):
        if source_id is None:
            raise _not_alerts(file, f"row {row} has no {SOURCE_ID}")
    objects = np.array([int(o or 0) for o, _ in pairs], dtype=np.int64)
    sources = np.array([int(s) for _, s in pairs], dtype=np.int64)
    return FileIndex(file.url, objects, sources)


def scan_file(file: AlertFile) -> FileIndex:
    """Read the diaObjectId and diaSourceId of every row of an alert file.

    Raises
    ------
    DecodeError
        When the file cannot be read or holds no Rubin alert packets (the message names
        the file).
    """
    with _reading(file), file.open() as stream:
        if file.format == "avro":
            import fastavro

            schema = fastavro.reader(stream).writer_schema
            if not isinstance(schema, dict):
                raise _not_alerts(file, "its schema is not a record")
            stream.seek(0)
            reader = fastavro.reader(stream, reader_schema=_projection(file, schema))
            pairs: list[tuple[Any, Any]] = []
            for record in reader:
                source = record[SOURCE_FIELD] if isinstance(record, dict) else None
                if not isinstance(source, dict):
                    raise _not_alerts(file, f"row {len(pairs)} has no {SOURCE_FIELD}")
                pairs.append((source.get(OBJECT_ID), source.get(SOURCE_ID)))
            return _ids(file, pairs)
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(stream)
        names = parquet.schema_arrow.names
        if SOURCE_FIELD not in names:
            raise _not_alerts(file, f"no {SOURCE_FIELD} column")
        wanted = [f"{SOURCE_FIELD}.{SOURCE_ID}", f"{SOURCE_FIELD}.{OBJECT_ID}"]
        column = parquet.read(columns=wanted).column(SOURCE_FIELD).combine_chunks()
        objects = column.field(OBJECT_ID).to_pylist()
        sources = column.field(SOURCE_ID).to_pylist()
        return _ids(file, list(zip(objects, sources, strict=True)))


def _packet(file: AlertFile, row: int, record: Any) -> Packet:
    source = record.get(SOURCE_FIELD) if isinstance(record, dict) else None
    if not isinstance(source, dict):
        raise _not_alerts(file, f"row {row} has no {SOURCE_FIELD}")
    cutouts = {kind: record.get(CUTOUT_PREFIX + kind) for kind in KINDS}
    return Packet(row, source, cutouts)


def read_packets(file: AlertFile, rows: Sequence[int]) -> Iterator[Packet]:
    """Read the given rows of an alert file in full, in row order.

    Parameters
    ----------
    file : AlertFile
        The file.
    rows : sequence of int
        Row numbers (from :func:`scan_file`), ascending, each once.

    Raises
    ------
    DecodeError
        When the file cannot be read (the message names the file).
    """
    wanted = list(rows)
    if not wanted:
        return
    with _reading(file), file.open() as stream:
        if file.format == "avro":
            import fastavro

            start, i = 0, 0
            for block in fastavro.block_reader(stream):
                end = start + block.num_records
                if wanted[i] < end:  # the block holds a wanted row: decode it
                    for offset, record in enumerate(block):
                        if start + offset == wanted[i]:
                            yield _packet(file, wanted[i], record)
                            i += 1
                            if i == len(wanted):
                                return
                start = end
            raise _not_alerts(file, f"row {wanted[i]} is past its end")
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(stream)
        columns = [SOURCE_FIELD, *(CUTOUT_PREFIX + kind for kind in KINDS)]
        start = 0
        for group in range(parquet.num_row_groups):
            end = start + parquet.metadata.row_group(group).num_rows
            first, last = bisect.bisect_left(wanted, start), bisect.bisect_left(wanted, end)
            if first < last:
                table = parquet.read_row_group(group, columns=columns)
                local = [row - start for row in wanted[first:last]]
                for row, record in zip(
                    wanted[first:last], table.take(local).to_pylist(), strict=True
                ):
                    yield _packet(file, row, record)
            start = end
        if wanted[-1] >= start:
            raise _not_alerts(file, f"row {wanted[-1]} is past its end")
