"""Bad landed files before the engine reads them: which files and folders are reported, and the normalised
copies the engine reads instead (CSV records joined, JSON documents as lines, Parquet timestamps in
microseconds and UTC); plus an engine error inside a run, which is logged and said in one line."""

from __future__ import annotations

import bz2
import dataclasses
import datetime
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.errors import PySparkException

from ingest.landing import (
    LINE_BREAK,
    LandingError,
    check_file,
    find_files,
    folder_date,
    misnamed_folders,
    unmatched_files,
)
from jobs import ingest
from schemas import SourceContract


def contract(fmt: str = "csv") -> SourceContract:
    return SourceContract.model_validate(
        {
            "kind": "source",
            "name": "shop_orders",
            "description": "orders of a test shop",
            "party": "1P",
            "entity": "shop_orders",
            "format": fmt,
            "event_time": "order_time",
            "keys": ["order_id"],
            "columns": [
                {"name": "order_id", "type": "string", "required": True},
                {"name": "order_time", "type": "timestamp", "required": True},
                {"name": "note", "type": "string"},
            ],
        }
    )


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_folders_meaning_the_date_and_files_of_other_names_are_reported(tmp_path: Path) -> None:
    assert [folder_date(n) for n in ("dt=2026-11-2", "dt=20261102", "2026-11-02", "dt=2026-13-02", "x")] == [
        datetime.date(2026, 11, 2),
        datetime.date(2026, 11, 2),
        datetime.date(2026, 11, 2),
        None,
        None,
    ]
    for folder in ("dt=2026-11-02", "dt=2026-11-2", "dt=20261102", "dt=2026-11-03"):
        (tmp_path / "shop_orders" / folder).mkdir(parents=True)
    found = misnamed_folders(tmp_path, contract(), datetime.date(2026, 11, 2))
    assert [p.name for p in found] == ["dt=2026-11-2", "dt=20261102"]

    day = tmp_path / "day"
    for name in ("a.csv", "b.csv.bz2", "_x.csv", "notes.txt", "c.json.bz2", "_SUCCESS", ".DS_Store"):
        write(day / name, b"x")
    assert [p.name for p in find_files(day, contract())] == ["_x.csv", "a.csv", "b.csv.bz2"]
    assert [p.name for p in unmatched_files(day, contract())] == ["c.json.bz2", "notes.txt"]


def test_csv_records_over_several_lines_are_joined_and_bz2_is_decompressed(tmp_path: Path) -> None:
    text = 'order_id,order_time,note\no1,t,"two\nlines"\no2,t,"a ""quote""\r\nand a break",x\no3,t,\n'
    landed = check_file(
        write(tmp_path / "_o.csv.bz2", bz2.compress(text.encode())), contract(), tmp_path / "s"
    )
    assert landed.joined and not landed.read_path.name.startswith("_")
    lines = landed.read_path.read_bytes().decode("utf-8").split("\n")
    assert [line.replace(LINE_BREAK, "\n") for line in lines] == [
        "order_id,order_time,note",
        'o1,t,"two\nlines"',
        'o2,t,"a ""quote""\r\nand a break",x',
        "o3,t,",
        "",
    ]
    # a quote that never closes into a record joins nothing: its lines stay malformed one by one
    unclosed = check_file(
        write(tmp_path / "u.csv", 'order_id,order_time\no1,"t\no2,t\n'), contract(), tmp_path
    )
    assert not unclosed.joined and unclosed.read_path == tmp_path / "u.csv"


def test_json_documents_become_json_lines_and_bad_json_is_refused_by_line(tmp_path: Path) -> None:
    records = [{"order_id": "o1", "amount": 10.50}, {"order_id": "o2", "tags": ["a"]}, 3]
    landed = check_file(
        write(tmp_path / "a.json", json.dumps(records, indent=2)), contract("jsonl"), tmp_path
    )
    assert landed.read_path.read_text(encoding="utf-8").splitlines() == [
        '{"order_id": "o1", "amount": "10.5"}',
        '{"order_id": "o2", "tags": ["a"]}',
        "3",
    ]
    with pytest.raises(LandingError, match=r"b.json: not valid JSON \(line 4, column 1"):
        check_file(write(tmp_path / "b.json", '{\n  "order_id": "o1"\n\n'), contract("jsonl"), tmp_path)


def test_parquet_nanoseconds_and_zones_are_read_through_a_copy_and_a_corrupt_body_is_refused(
    tmp_path: Path,
) -> None:
    nine = datetime.datetime(2026, 11, 1, 9)
    table = pa.table(
        {
            "ORDER_ID": ["o1"],
            "order_time": pa.array([nine], pa.timestamp("ns")),
            "zoned": pa.array([nine], pa.timestamp("ms", tz="UTC")).cast(
                pa.timestamp("ms", tz="Asia/Shanghai")
            ),
        }
    )
    pq.write_table(table, tmp_path / "o.parquet")
    landed = check_file(tmp_path / "o.parquet", contract("parquet"), tmp_path / "s")
    assert landed.header == ["order_id", "order_time", "zoned"]
    copy = pq.read_table(landed.read_path)
    assert copy.schema.field("order_time").type == pa.timestamp("us")
    assert copy.schema.field("zoned").type == pa.timestamp("ms", tz="UTC")
    assert copy.column("zoned").to_pylist()[0].replace(tzinfo=None) == nine

    pq.write_table(pa.table({"order_id": ["o1"] * 100, "order_time": ["t"] * 100}), tmp_path / "c.parquet")
    body = bytearray((tmp_path / "c.parquet").read_bytes())
    body[8:120] = b"\xff" * 112
    (tmp_path / "c.parquet").write_bytes(bytes(body))
    with pytest.raises(LandingError, match=r"c\.parquet: a corrupt Parquet file"):
        check_file(tmp_path / "c.parquet", contract("parquet"), tmp_path / "s")


def test_an_engine_error_inside_a_run_is_logged_and_one_line(spark, settings, tmp_path, monkeypatch) -> None:
    s = dataclasses.replace(settings.with_data_root(tmp_path / "data"), pii_key="unit-test-key")
    write(Path(s.landing_root) / "orders" / "dt=2026-11-01" / "o.csv", "order_id\no1\n")

    def broken(batch):
        raise PySparkException(
            message="Object at location x/parsed/part-0 not found\n  at frame 1\n  at frame 2"
        )

    monkeypatch.setattr(ingest, "_land", lambda ctx, *a: _fake_batch(ctx, *a))
    monkeypatch.setattr(ingest, "_parse", broken)
    with pytest.raises(ingest.IngestError, match="the engine could not read or write the batch") as caught:
        ingest.run(spark, s, "orders", "2026-11-01")
    assert "\n" not in str(caught.value) and "not found" in str(caught.value)
    from cdp.lake import Lake

    row = Lake(spark, s.lake_root).read("gold.ingest_runs").first()
    assert row.status == "failed" and "not found" in row.message


def _fake_batch(ctx, contract, key, report, folder):
    report.files = [{"file": "o.csv", "bytes": 1, "sha256": "x"}]
    return ingest._Batch(ctx, contract, key, report, [])
