"""Bad landed files, end to end on the engine and real Delta tables: every landed file is ingested or
reported with a reason (and a failed run when data was not taken), CSV is parsed by record, JSON by value,
Parquet by column name and with every timestamp unit, sentinel texts are missing values, decimals are never
rounded, dedup keeps the record that landed last, and quarantine shows the masked value behind a reason.

Each test lands a few tiny files of one small contract and runs one ingest over all of them."""

from __future__ import annotations

import bz2
import dataclasses
import datetime
import json
import os
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdp.access import policy_for
from cdp.lake import Lake
from jobs.ingest import IngestError, run

DT = "2026-11-01"
CONTRACTS = {
    "shop_orders": """
kind: source
name: shop_orders
description: Orders of a test shop, as CSV.
party: 1P
entity: shop_orders
format: csv
event_time: order_time
keys: [order_id]
max_bad_share: 1.0
columns:
  - {name: order_id, type: string, required: true}
  - {name: order_time, type: timestamp, required: true}
  - {name: phone, type: string, id_type: phone, pii: direct, required: true}
  - {name: amount, type: "decimal(10,2)"}
  - {name: note, type: string}
""",
    "shop_events": """
kind: source
name: shop_events
description: App events of a test shop, as JSON.
party: 1P
entity: shop_events
format: jsonl
event_time: event_time
keys: [event_id]
max_bad_share: 1.0
columns:
  - {name: event_id, type: string, required: true}
  - {name: event_time, type: timestamp, required: true}
  - {name: page, type: string}
""",
    "shop_ads": """
kind: source
name: shop_ads
description: Ad delivery logs of a test shop, as Parquet.
party: 2P
entity: shop_ads
format: parquet
event_time: event_time
keys: [log_id]
max_bad_share: 1.0
columns:
  - {name: log_id, type: string, required: true}
  - {name: event_time, type: timestamp, required: true}
  - {name: cost, type: double}
""",
}
ORDERS_HEADER = "order_id,order_time,phone,amount,note"
PHONE = "13812345678"
T = "2026-11-01 10:00:00"


@pytest.fixture()
def env(settings, tmp_path: Path, spark):
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    for name, text in CONTRACTS.items():
        (contracts / f"{name}.yaml").write_text(text, encoding="utf-8")
    s = dataclasses.replace(
        settings.with_data_root(tmp_path / "data"), pii_key="unit-test-key", contract_paths=(str(contracts),)
    )
    return s, Lake(spark, s.lake_root)


def land(s, source: str, name: str, data: str | bytes, folder: str = f"dt={DT}", age: int = 0) -> Path:
    """Write one landed file; ``age`` seconds before now is its landing (modification) time."""
    path = Path(s.landing_root) / source / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    stamp = datetime.datetime.now().timestamp() - age
    os.utime(path, (stamp, stamp))
    return path


def test_every_csv_file_is_taken_or_reported_and_records_are_checked_by_value(spark, env) -> None:
    s, lake = env
    orders = [
        ORDERS_HEADER,
        f'o1,{T},{PHONE},10.00,"line one\nline two, with a comma"',  # one record over two lines
        f"null,{T},{PHONE},1,",  # sentinel texts are missing values
        f"N/A,{T},{PHONE},1,",
        f"o2,{T},{PHONE},10.005,",  # three decimals for decimal(10,2): not rounded to 10.01
        f"o3,{T},100 1234 5678,1,",  # not a phone number: shown masked in quarantine
        f"o4,{T},{PHONE},1,-",  # an optional '-' is no value
        f"o5,{T},{PHONE},2.00,zz sent first",  # the same key twice without order_by: the later record wins
        f"o5,{T},{PHONE},3.00,aa sent again",
        f"o8,{T},{PHONE},8,{'long ' * 40_000}",  # a 200 KB field is a value, not a malformed line
    ]
    land(s, "shop_orders", "orders.csv", "\n".join(orders) + "\n", age=60)
    land(s, "shop_orders", "more.csv.bz2", bz2.compress(f"{ORDERS_HEADER}\no6,{T},{PHONE},6,\n".encode()))
    land(s, "shop_orders", "_x.csv", f"{ORDERS_HEADER}\no7,{T},{PHONE},7,\n")
    notes = land(s, "shop_orders", "notes.txt", "o8,not data\n")
    misnamed = land(
        s, "shop_orders", "late.csv", f"{ORDERS_HEADER}\no9,{T},{PHONE},9,\n", folder="dt=2026-11-1"
    )

    with pytest.raises(IngestError, match="2 file\\(s\\) refused") as caught:
        run(spark, s, "shop_orders", DT)
    report = caught.value.report
    assert {r["file"] for r in report.rejected_files} == {str(notes), str(misnamed.parent)}
    assert "rename it" in report.message and "dt=2026-11-01" in report.message
    assert report.balanced and report.rows_in == 11  # records, not lines
    assert report.reasons == {
        "bad_scale:amount": 1,
        "invalid_identifier:phone": 1,
        "missing_required:order_id": 2,
    }
    silver = {r.order_id: r for r in lake.read("silver.shop_orders").collect()}
    assert set(silver) == {"o1", "o4", "o5", "o6", "o7", "o8"}
    assert len(silver["o8"].note) == 200_000 - 1
    assert silver["o1"].note == "line one\nline two, with a comma"
    assert silver["o4"].note is None
    assert (silver["o5"].note, silver["o5"].amount) == ("aa sent again", Decimal("3.00"))
    run_row = lake.read("gold.ingest_runs").collect()
    assert [(r.status, r.rows_in) for r in run_row] == [("rejected_files", 11)]

    # quarantine names the column and the value, masked by its PII class; the raw line stays encrypted
    assert policy_for("admin").can_read("quarantine.shop_orders")
    details = sorted(d for r in lake.read("quarantine.shop_orders").collect() for d in r._details)
    assert details == ["bad_scale:amount=10.005", "invalid_identifier:phone=100****5678"]
    text = json.dumps([r.asDict() for r in lake.read("quarantine.shop_orders").collect()], default=str)
    assert "1234 5678" not in text and PHONE not in text
    # no plaintext copy (the joined and decompressed files) is left in the scratch space
    assert not [p for p in Path(s.data_root, "_scratch").rglob("*") if p.is_file()]


def test_json_documents_are_parsed_by_value(spark, env) -> None:
    s, lake = env
    pretty = [
        {"event_id": "e1", "event_time": T, "page": "home"},
        {"event_id": "e2", "event_time": T, "page": ["a", "b"]},  # an array is no text
        {"event_id": "e3", "event_time": T, "page": {"name": "cart"}},  # nor is an object
        {"event_id": "None", "event_time": T},
    ]
    land(s, "shop_events", "pretty.json", json.dumps(pretty, indent=2))
    land(s, "shop_events", "objects.json", json.dumps({"event_id": "e4", "event_time": T}, indent=2) * 2)
    lines = [{"event_id": "e5", "event_time": T, "page": "[not json]"}, {"event_id": "e6", "event_time": T}]
    land(s, "shop_events", "bom.jsonl", "\ufeff" + "\n".join(json.dumps(e) for e in lines) + "\n")
    # one key in two files: the file that landed last wins, whatever its text
    land(s, "shop_events", "later.jsonl", json.dumps({"event_id": "e7", "event_time": T, "page": "zz new"}))
    land(
        s,
        "shop_events",
        "early.jsonl",
        json.dumps({"event_id": "e7", "event_time": T, "page": "aa old"}),
        age=120,
    )

    report = run(spark, s, "shop_events", DT)
    assert report.balanced and report.status == "ok"
    assert (report.rows_in, report.duplicates, report.quarantined) == (10, 2, 3)
    assert report.reasons == {"bad_type:page": 2, "missing_required:event_id": 1}
    silver = {r.event_id: r.page for r in lake.read("silver.shop_events").collect()}
    assert silver == {"e1": "home", "e4": None, "e5": "[not json]", "e6": None, "e7": "zz new"}


def test_parquet_names_any_case_every_timestamp_unit_and_a_corrupt_body_refused(spark, env) -> None:
    s, lake = env
    folder = Path(s.landing_root) / "shop_ads" / f"dt={DT}"
    folder.mkdir(parents=True)
    nine = datetime.datetime(2026, 11, 1, 9)
    pq.write_table(
        pa.table(
            {
                "LOG_ID": ["l1", "l2"],
                "Event_Time": pa.array([nine, nine], pa.timestamp("ns")),
                "COST": [0.5, 1.5],
            }
        ),
        folder / "upper_ns.parquet",
    )
    shanghai = pa.array([nine], pa.timestamp("ns")).cast(pa.timestamp("ns", tz="Asia/Shanghai"))
    pq.write_table(pa.table({"log_id": ["l3"], "event_time": shanghai}), folder / "tz.parquet")
    corrupt = folder / "corrupt.parquet"
    pq.write_table(pa.table({"log_id": [f"x{i}" for i in range(200)]}), corrupt)
    body = bytearray(corrupt.read_bytes())
    body[8:200] = b"\xff" * 192  # the footer is intact, the first page is not
    corrupt.write_bytes(bytes(body))

    with pytest.raises(IngestError, match="corrupt Parquet") as caught:
        run(spark, s, "shop_ads", DT)
    report = caught.value.report
    assert [r["file"] for r in report.rejected_files] == [str(corrupt)]
    assert report.balanced and (report.rows_in, report.silver_written, report.quarantined) == (3, 3, 0)
    silver = {r.log_id: (r.event_time, r.cost) for r in lake.read("silver.shop_ads").collect()}
    assert silver == {"l1": (nine, 0.5), "l2": (nine, 1.5), "l3": (nine, None)}
    assert [r.status for r in lake.read("gold.ingest_runs").collect()] == ["rejected_files"]


def test_a_quarantine_table_from_before_details_gains_the_column_at_its_next_write(spark, env) -> None:
    s, lake = env
    day1 = "2026-10-31"
    land(
        s,
        "shop_orders",
        "a.csv",
        f"{ORDERS_HEADER}\na1,{T},{PHONE},1,\na2,{T},100 1234 5678,1,\n",
        f"dt={day1}",
    )
    run(spark, s, "shop_orders", day1)
    # The table as it was written before quarantine carried _details.
    table = "quarantine.shop_orders"
    lake.overwrite(table, lake.read(table).drop("_details"), partition_by=["dt"])
    assert "_details" not in lake.read(table).columns

    land(s, "shop_orders", "b.csv", f"{ORDERS_HEADER}\nb1,{T},{PHONE},1,\nb2,{T},{PHONE},10.005,\n")
    report = run(spark, s, "shop_orders", DT)
    assert report.quarantined == 1 and report.balanced
    rows = lake.read(table).collect()
    assert [c for c in lake.read(table).columns if not c.startswith("_raw")][:2] == ["_reasons", "_details"]
    got = sorted((str(r.dt), list(r._reasons), r._details) for r in rows)
    assert got == [
        (day1, ["invalid_identifier:phone"], None),  # kept; its value was never recorded
        (DT, ["bad_scale:amount"], ["bad_scale:amount=10.005"]),
    ]
