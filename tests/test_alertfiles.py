"""Generated alert files (``finkcube.emulator.alertfiles``): the real sample's schema, every
stamp side, null cutouts, solar-system alerts; Parquet holding the same packets as Avro."""

from __future__ import annotations

import io
from pathlib import Path

import fastavro
import pyarrow.parquet as pq
from astropy.io import fits

from finkcube.emulator.alertfiles import write_alerts
from finkcube.emulator.alerts import sample_alerts_path


def _avro(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        with path.open("rb") as stream:
            rows.extend(fastavro.reader(stream))
    return rows


def test_generated_alerts_follow_the_sample_schema_and_cover_every_side(tmp_path: Path) -> None:
    paths = write_alerts(tmp_path, objects=73, sources=(1, 1), per_file=60, seed=1)
    with sample_alerts_path().open("rb") as stream:
        sample_schema = fastavro.reader(stream).writer_schema
    for path in paths:
        with path.open("rb") as stream:
            assert fastavro.reader(stream).writer_schema == sample_schema
    packets = _avro(paths)
    sides = set()
    for p in packets:
        raw = p["cutoutScience"]
        with fits.open(io.BytesIO(raw)) as hdul:
            sides.add(hdul[0].data.shape[0])
            assert {"UNCERT", "PSFIMAGE"} <= {h.name for h in hdul}
    assert sides == set(range(30, 103))
    objects = [p["diaSource"]["diaObjectId"] for p in packets]
    assert {0, None} <= set(objects)
    assert len(set(objects) - {0, None}) == 73
    assert any(p["cutoutTemplate"] is None for p in packets)
    times = [p["diaSource"]["midpointMjdTai"] for p in packets]
    assert times == sorted(times)


def test_parquet_holds_the_same_packets_as_avro(tmp_path: Path) -> None:
    avro = _avro(write_alerts(tmp_path / "a", objects=3, seed=2))
    paths = write_alerts(tmp_path / "p", objects=3, seed=2, file_format="parquet")
    rows = [r for p in paths for r in pq.read_table(p).to_pylist()]
    assert len(rows) == len(avro)
    for a, b in zip(avro, rows, strict=True):
        assert a["diaSource"] == b["diaSource"]
        assert [a["cutout" + k] for k in ("Science", "Template", "Difference")] == [
            b["cutout" + k] for k in ("Science", "Template", "Difference")
        ]
