"""Alert files as Fink's Data Transfer service writes them, from the emulator's catalog.

Each packet follows the real sample's Avro schema (read from the packaged sample file's
header): its ``diaSource`` is the catalog's record of the source, its three ``cutout*``
fields the FITS files the emulator serves for it, every other field null (or empty where
the schema allows no null). :func:`write_alerts` draws a test set (many objects, many
epochs, every stamp side from 30 to 102 pixels, null cutouts, solar-system alerts) and
writes it as Avro (fastavro) or Parquet (pyarrow, the same fields as Arrow types), in time
order as a night's transfer would be, a fixed number of packets per file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from finkcube.emulator.alerts import sample_alerts_path
from finkcube.emulator.catalog import Catalog
from finkcube.errors import InputError
from finkcube.names import KINDS, MAX_SIDE, MIN_SIDE, RUBIN_PREFIX, TIME_COLUMN

__all__ = ["alert_packets", "alert_schema", "write_alert_file", "write_alerts"]

FileFormat = Literal["avro", "parquet"]
_PRIMITIVE_BLANKS: dict[str, Any] = {
    "long": 0, "int": 0, "double": 0.0, "float": 0.0, "boolean": False, "string": "",
    "bytes": b"",
}  # fmt: skip
#: First diaSourceId of the generated solar-system alerts (diaObjectId 0 or null).
_SSO_BASE = 9 * 10**18


def alert_schema() -> dict[str, Any]:
    """Return the Avro schema of the packaged real sample (a dict, as fastavro reads it)."""
    import fastavro

    with sample_alerts_path().open("rb") as stream:
        schema = fastavro.reader(stream).writer_schema
    assert isinstance(schema, dict)
    return dict(schema)


def _blank(kind: Any) -> Any:
    """The empty value of an Avro type: null where allowed, else zero, empty or a blank record."""
    if isinstance(kind, list):
        return None if "null" in kind else _blank(kind[0])
    if isinstance(kind, dict):
        if kind["type"] == "record":
            return {f["name"]: _blank(f["type"]) for f in kind["fields"]}
        return {"array": [], "map": {}}.get(kind["type"], _blank(kind["type"]))
    return _PRIMITIVE_BLANKS.get(kind)


def _source_fields(schema: Mapping[str, Any]) -> list[str]:
    field = next(f for f in schema["fields"] if f["name"] == "diaSource")
    return [f["name"] for f in field["type"]["fields"]]


def alert_packets(
    catalog: Catalog,
    object_ids: Iterable[int],
    *,
    null_every: int = 0,
    solar_system: int = 0,
) -> list[dict[str, Any]]:
    """Return one packet per source of the given objects, in time order.

    Parameters
    ----------
    catalog : Catalog
        Where the records and FITS files come from (as the emulator serves them).
    object_ids : iterable of int
        Objects of ``catalog``.
    null_every : int, optional
        Make the Template cutout of every ``null_every``-th packet null (0: none).
    solar_system : int, optional
        Add this many solar-system alerts (diaObjectId 0, or null for every other one).

    Examples
    --------
    >>> catalog = Catalog(seed=1)
    >>> packets = alert_packets(catalog, [catalog.named("small")], solar_system=1)
    >>> len(packets), packets[0]["cutoutScience"][:6]
    (6, b'SIMPLE')
    """
    schema = alert_schema()
    names = _source_fields(schema)
    blank = {f["name"]: _blank(f["type"]) for f in schema["fields"]}
    rows = [r for oid in object_ids for r in catalog.records(oid)]
    if solar_system and rows:
        for i in range(solar_system):
            row = dict(rows[i % len(rows)])
            fits = {k: catalog.fits(int(row[RUBIN_PREFIX + "diaSourceId"]), k) for k in KINDS}
            row.update({RUBIN_PREFIX + "diaSourceId": _SSO_BASE + i, "fits": fits})
            row[RUBIN_PREFIX + "diaObjectId"] = None if i % 2 else 0
            row[RUBIN_PREFIX + "ssObjectId"] = 10**15 + i
            rows.append(row)
    rows.sort(key=lambda r: (float(r[RUBIN_PREFIX + TIME_COLUMN]), r[RUBIN_PREFIX + "diaSourceId"]))
    packets = []
    for n, row in enumerate(rows, start=1):
        source_id = int(row[RUBIN_PREFIX + "diaSourceId"])
        fits = row.get("fits") or {k: catalog.fits(source_id, k) for k in KINDS}
        packet = dict(blank)
        packet["diaSourceId"] = source_id
        packet["diaSource"] = {name: row.get(RUBIN_PREFIX + name) for name in names}
        packet.update({"cutout" + kind: fits[kind] for kind in KINDS})
        if null_every and n % null_every == 0:
            packet["cutoutTemplate"] = None
        packets.append(packet)
    return packets


def _arrow_type(kind: Any) -> Any:
    """The Arrow type of an Avro type (unions with null are nullable fields)."""
    import pyarrow as pa

    if isinstance(kind, list):
        return _arrow_type(next(k for k in kind if k != "null"))
    if isinstance(kind, dict):
        if kind["type"] == "record":
            return pa.struct([(f["name"], _arrow_type(f["type"])) for f in kind["fields"]])
        if kind["type"] == "array":
            return pa.list_(_arrow_type(kind["items"]))
        if kind["type"] == "map":
            return pa.map_(pa.string(), _arrow_type(kind["values"]))
        return _arrow_type(kind["type"])
    return {
        "long": pa.int64(), "int": pa.int32(), "double": pa.float64(), "float": pa.float32(),
        "boolean": pa.bool_(), "string": pa.string(), "bytes": pa.binary(), "enum": pa.string(),
        "fixed": pa.binary(),
    }[kind]  # fmt: skip


def write_alert_file(
    path: str | os.PathLike[str],
    packets: Sequence[Mapping[str, Any]],
    *,
    codec: str = "deflate",
    row_group_size: int = 16,
) -> Path:
    """Write packets to one Avro or Parquet file (by the name's ending), in the sample's schema.

    Parameters
    ----------
    path : str or path
        ``*.avro`` or ``*.parquet``.
    packets : sequence of mapping
        From :func:`alert_packets` (or read from a real file).
    codec : str, optional
        The Avro codec (the sample's ``deflate`` by default).
    row_group_size : int, optional
        Rows per Parquet row group.

    Raises
    ------
    InputError
        For another file name ending.
    """
    target = Path(path)
    schema = alert_schema()
    if target.suffix == ".avro":
        import fastavro

        with target.open("wb") as stream:
            fastavro.writer(stream, fastavro.parse_schema(schema), packets, codec=codec)
    elif target.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = pa.schema([(f["name"], _arrow_type(f["type"])) for f in schema["fields"]])
        table = pa.Table.from_pylist(list(packets), schema=arrow)
        pq.write_table(table, target, row_group_size=row_group_size)
    else:
        raise InputError(f"{str(target)!r}: expected a name ending in .avro or .parquet")
    return target


def write_alerts(
    directory: str | os.PathLike[str],
    *,
    objects: int = 10,
    sources: tuple[int, int] = (2, 6),
    per_file: int = 50,
    file_format: FileFormat = "avro",
    null_every: int = 11,
    solar_system: int = 3,
    seed: int = 0,
) -> list[Path]:
    """Generate alerts of many objects and write them as alert files in ``directory``.

    Every object gets ``sources`` epochs of 30 to 40 pixels plus one late epoch whose side
    runs through 30 to 102 over the objects (all sides once there are 73 objects or more);
    packets are in time order, ``per_file`` a file (``alerts-0000.avro``, ...).

    Parameters
    ----------
    directory : str or path
        Created if needed.
    objects : int
        Number of objects.
    sources : (int, int)
        Range of epochs per object, besides the late one.
    per_file : int
        Packets per file.
    file_format : {"avro", "parquet"}
        The files' format.
    null_every, solar_system
        As for :func:`alert_packets`.
    seed : int
        Seed of every id, record and pixel (the same seed writes the same alerts).

    Returns
    -------
    list of Path
        The files, in order.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     [p.name for p in write_alerts(tmp, objects=2, per_file=100)]
    ['alerts-0000.avro']
    """
    if file_format not in ("avro", "parquet"):
        raise InputError(f"invalid format {file_format!r}: expected avro or parquet")
    if objects < 1 or per_file < 1:
        raise InputError("objects and per_file must be positive")
    catalog = Catalog(seed=seed)
    ids = catalog.bulk_objects(objects, sources)
    for i, oid in enumerate(ids):
        catalog.add_sources(oid, 1, older=True, side=MIN_SIDE + i % (MAX_SIDE - MIN_SIDE + 1))
    packets = alert_packets(catalog, ids, null_every=null_every, solar_system=solar_system)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    return [
        write_alert_file(out / f"alerts-{n:04d}.{file_format}", packets[start : start + per_file])
        for n, start in enumerate(range(0, len(packets), per_file))
    ]
