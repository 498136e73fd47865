"""The tabular replies of ``/api/v1/sources``: json, csv, votable, parquet.

The service builds a pandas DataFrame and writes it with ``to_json(orient="records")``,
``to_csv(index=False)``, astropy's VOTable writer or ``to_parquet``. The emulator writes
the same shapes without pandas: JSON records (compact, ids as integers, ``null`` for
missing values), CSV with a header row (missing values empty), a VOTable 1.4 document and,
only when pyarrow is importable, Parquet.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

__all__ = ["CONTENT_TYPES", "parquet_available", "write_table"]

#: Content-Type of each output format, as the service sets it.
CONTENT_TYPES = {
    "json": "application/json",
    "csv": "application/csv",
    "votable": "votable",
    "parquet": "parquet",
}


def parquet_available() -> bool:
    """Whether the emulator can write Parquet (pyarrow importable)."""
    return importlib.util.find_spec("pyarrow") is not None


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


def _votable(rows: Sequence[dict[str, Any]], names: list[str]) -> bytes:
    from astropy.io import votable
    from astropy.io.votable.exceptions import W03
    from astropy.table import MaskedColumn, Table

    columns = []
    for name in names:
        values = [row.get(name) for row in rows]
        present = [v for v in values if v is not None]
        mask = [v is None for v in values]
        sample = present[0] if present else 0.0
        data: np.ndarray
        if isinstance(sample, bool):
            data = np.array([bool(v) for v in values])
        elif isinstance(sample, int):
            data = np.array([0 if v is None else v for v in values], dtype=np.int64)
        elif isinstance(sample, float):
            data = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        else:
            data = np.array(["" if v is None else str(v) for v in values], dtype=str)
        columns.append(MaskedColumn(data, name=name, mask=mask))
    with warnings.catch_warnings():
        # W03: "r:band" is not a valid XML ID, so astropy derives the ID "r_band" and says
        # so; the name keeps the colon, which is what the service sends.
        warnings.simplefilter("ignore", W03)
        document = votable.from_table(Table(columns))
    buffer = io.BytesIO()
    votable.writeto(document, buffer)
    return buffer.getvalue()


def _parquet(rows: Sequence[dict[str, Any]], names: list[str]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([{n: row.get(n) for n in names} for row in rows])
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def write_table(rows: Sequence[dict[str, Any]], output_format: str) -> bytes:
    """Write source records in one of the service's tabular formats.

    Parameters
    ----------
    rows : sequence of dict
        The records, all with the same columns (in order).
    output_format : str
        ``json``, ``csv``, ``votable`` or ``parquet``.

    Returns
    -------
    bytes
        The reply body.

    Raises
    ------
    ValueError
        For another format.
    ImportError
        For ``parquet`` when pyarrow is missing.

    Examples
    --------
    >>> write_table([{"r:diaSourceId": 170094456272322680, "r:band": None}], "json")
    b'[{"r:diaSourceId":170094456272322680,"r:band":null}]'
    >>> write_table([{"r:diaSourceId": 1, "r:band": None}], "csv").decode().splitlines()
    ['r:diaSourceId,r:band', '1,']
    """
    names = _columns(rows)
    if output_format == "json":
        # Like pandas' to_json: compact, 64-bit ints exact, NaN written as null.
        return orjson.dumps(list(rows))
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([_csv_value(row.get(n)) for n in names] for row in rows)
        return buffer.getvalue().encode()
    if output_format == "votable":
        return _votable(rows, names)
    if output_format == "parquet":
        return _parquet(rows, names)
    raise ValueError(f"unknown output format {output_format!r}")
