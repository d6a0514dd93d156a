"""Ingestion on real landed files and real Delta tables: every bad-input class, idempotency, late files,
deduplication within and across batches, the row balance, schema drift and PII protection."""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from cdp.lake import Lake
from ingest.landing import LandingError
from jobs.ingest import IngestError, run

DT1, DT2 = "2026-11-01", "2026-11-02"
MEMBERS_HEADER = (
    "member_id,name,phone,email,gender,birth_date,province,city,register_channel,register_time,"
    "membership_level,points,wechat_openid,wechat_unionid,updated_at"
)
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz1"


def member(mid: str, phone: str = "138 1234 5678", updated: str = "2026-10-30 10:00:00", **kw: str) -> str:
    row = {
        "member_id": mid,
        "name": "张伟",
        "phone": phone,
        "email": " Zhang.Wei@QQ.com ",
        "gender": "F",
        "birth_date": "1990-05-01",
        "province": "上海",
        "city": "上海",
        "register_channel": "app",
        "register_time": "2025-01-01 09:00:00",
        "membership_level": "gold",
        "points": "120",
        "wechat_openid": OPENID,
        "wechat_unionid": "",
        "updated_at": updated,
    } | kw
    return ",".join(row[c] for c in MEMBERS_HEADER.split(","))


@pytest.fixture()
def env(settings, tmp_path: Path, spark):
    s = settings.with_data_root(tmp_path / "data")
    s = dataclasses.replace(s, pii_key="unit-test-key")
    return s, Lake(spark, s.lake_root)


def land(s, source: str, dt: str, name: str, text: str | bytes, gz: bool = False) -> Path:
    folder = Path(s.landing_root) / source / f"dt={dt}"
    folder.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    path = folder / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def rows(lake: Lake, table: str) -> list[tuple]:
    df = lake.read(table)
    return sorted(tuple(r) for r in df.select(sorted(df.columns)).collect())


def test_csv_members_to_bronze_silver_with_pii_protected(spark, env) -> None:
    s, lake = env
    land(
        s,
        "crm_members",
        DT1,
        "m.csv",
        "\n".join([MEMBERS_HEADER, member("m001"), member("M002", phone="+86-139-0000-1111")]) + "\n",
    )
    report = run(spark, s, "crm_members", DT1)
    assert (report.rows_in, report.silver_written, report.duplicates, report.quarantined) == (2, 2, 0, 0)
    assert report.balanced
    silver = lake.read("silver.members")
    assert "phone" not in silver.columns and "email" not in silver.columns and "name" not in silver.columns
    got = {r.member_id: r for r in silver.collect()}
    assert set(got) == {"M001", "M002"}
    assert got["M001"].phone_masked == "138****5678"
    # no unkeyed digest an analyst could reverse: the platform hashes are computed at export from the vault
    assert not [c for c in silver.columns if "md5" in c or "sha" in c]
    assert not {hashlib.md5(b"13812345678").hexdigest(), hashlib.sha256(b"zhang.wei@qq.com").hexdigest()} & {
        v for r in silver.collect() for v in r.asDict().values()
    }
    vault = lake.read("vault.identifiers")
    assert sorted((r.id_type, r.id_value) for r in vault.collect()) == sorted(
        [
            ("phone", got["M001"].phone_hash),
            ("phone", got["M002"].phone_hash),
            ("email", got["M001"].email_hash),
        ]
    )
    vault_text = json.dumps([r.asDict() for r in vault.collect()], default=str)
    assert "13812345678" not in vault_text and "qq.com" not in vault_text
    assert got["M001"].birth_date.isoformat() == "1990-05-01" and got["M001"].points == 120
    assert got["M001"]._source_file.endswith("m.csv") and got["M001"]._batch_id == report.batch_id
    # bronze keeps the record as landed but never the plain phone, email or name
    bronze = lake.read("bronze.crm_members").collect()
    assert len(bronze) == 2
    text = json.dumps([r.asDict() for r in bronze], default=str, ensure_ascii=False)
    assert "1234 5678" not in text and "qq.com" not in text.lower() and "张伟" not in text
    run_row = lake.read("gold.ingest_runs").collect()[0]
    assert (run_row.source, run_row.rows_in, run_row.status) == ("crm_members", 2, "ok")


def test_every_bad_input_class_goes_to_quarantine_with_its_reason(spark, env) -> None:
    s, lake = env
    good = [member(f"M{i:03d}") for i in range(200)]
    bad = [
        member("", phone="13800001111"),  # missing required member_id
        member("M900", points="12,5x"),  # unquoted comma: wrong field count
        member("M901", points="12x5"),  # unparseable number
        member("M902", updated="2099-01-01 00:00:00"),  # impossible (future) timestamp
        member("M903", updated="2026-13-45 25:61:00"),  # not a timestamp at all
        member("M904", updated="1900-01-01 00:00:00"),  # impossible (too old) timestamp
        'M905,"unclosed,13800001111',  # malformed line
        member("test"),  # junk member id (required identifier)
    ]
    body = ("\n".join([MEMBERS_HEADER, *good, *bad]) + "\n").encode()
    body += member("M906", name="NAME").encode().replace(b"NAME", b"\xd5\xc5\xce\xb0") + b"\n"  # GBK bytes
    land(s, "crm_members", DT1, "m.csv", body)
    report = run(spark, s, "crm_members", DT1)
    assert report.balanced
    assert report.rows_in == 209 and report.quarantined == 9 and report.silver_written == 200
    assert report.reasons == {
        "bad_encoding": 1,
        "bad_type:points": 1,
        "bad_type:updated_at": 1,
        "impossible_time:updated_at": 2,
        "invalid_identifier:member_id": 1,
        "malformed_line": 2,
        "missing_required:member_id": 1,
    }
    q = lake.read("quarantine.crm_members")
    assert q.count() == 9
    assert set(q.columns) >= {"_raw", "_reasons", "_source_file", "_batch_id", "_ingested_at", "dt"}


def test_bad_share_above_threshold_fails_and_leaves_silver_untouched(spark, env) -> None:
    s, lake = env
    land(s, "crm_members", DT1, "a.csv", "\n".join([MEMBERS_HEADER, member("M001")]) + "\n")
    run(spark, s, "crm_members", DT1)
    before = rows(lake, "silver.members")
    land(
        s,
        "crm_members",
        DT2,
        "b.csv",
        "\n".join(
            [
                MEMBERS_HEADER,
                member("M002", phone="13900002222", updated="2026-11-01 10:00:00"),
                member("M003", points="x"),
                member("M004", points="y"),
            ]
        )
        + "\n",
    )
    with pytest.raises(IngestError, match="above max_bad_share") as exc:
        run(spark, s, "crm_members", DT2)
    assert exc.value.report.balanced and exc.value.report.held_back == 1
    assert rows(lake, "silver.members") == before
    assert lake.read("vault.identifiers").count() == 2  # M002's identifiers are held back with its row
    assert lake.read("quarantine.crm_members").filter(F.col("dt") == DT2).count() == 2


def test_rerun_and_same_file_twice_are_idempotent(spark, env) -> None:
    s, lake = env
    text = "\n".join([MEMBERS_HEADER, member("M001"), member("M002"), member("M001")]) + "\n"
    land(s, "crm_members", DT1, "a.csv", text)
    first = run(spark, s, "crm_members", DT1)
    assert (first.silver_written, first.duplicates) == (2, 1)
    tables = ("bronze.crm_members", "silver.members", "quarantine.crm_members", "vault.identifiers")
    snapshot = {t: rows(lake, t) for t in tables}
    again = run(spark, s, "crm_members", DT1)
    assert again.batch_id == first.batch_id
    assert (again.silver_written, again.duplicates) == (0, 3) and again.balanced
    land(s, "crm_members", DT2, "copy-of-a.csv", text)  # the same export landed again the next day
    copy = run(spark, s, "crm_members", DT2)
    assert copy.silver_written == 0
    for table, before in snapshot.items():
        if table == "bronze.crm_members":
            continue  # bronze keeps what landed on each date, as landed
        assert rows(lake, table) == before, table
    day1 = lake.read("bronze.crm_members").filter(F.col("dt") == DT1)
    assert (
        sorted(tuple(r) for r in day1.select(sorted(day1.columns)).collect())
        == snapshot["bronze.crm_members"]
    )
    assert lake.read("bronze.crm_members").filter(F.col("dt") == DT2).count() == 3
    assert lake.read("gold.ingest_runs").count() == 3


def test_latest_wins_across_batches_and_late_files_are_taken_in(spark, env) -> None:
    s, lake = env
    land(
        s,
        "crm_members",
        DT1,
        "a.csv",
        "\n".join([MEMBERS_HEADER, member("M001", membership_level="silver")]) + "\n",
    )
    run(spark, s, "crm_members", DT1)
    land(
        s,
        "crm_members",
        DT2,
        "b.csv",
        "\n".join([MEMBERS_HEADER, member("M001", membership_level="gold", updated="2026-11-01 08:00:00")])
        + "\n",
    )
    run(spark, s, "crm_members", DT2)
    # a late file for the first date, with an older version of M001 and a new member
    land(
        s,
        "crm_members",
        DT1,
        "late.csv",
        "\n".join(
            [
                MEMBERS_HEADER,
                member("M001", membership_level="normal", updated="2026-10-01 08:00:00"),
                member("M007"),
            ]
        )
        + "\n",
    )
    late = run(spark, s, "crm_members", DT1)
    assert (late.silver_written, late.duplicates) == (1, 2)  # M007 new; M001 twice older than silver
    got = {r.member_id: r.membership_level for r in lake.read("silver.members").collect()}
    assert got == {"M001": "gold", "M007": "gold"}


def test_jsonl_gz_and_parquet_sources(spark, env) -> None:
    s, lake = env
    events = [
        {
            "event_id": "e1",
            "event_time": "2026-11-01 10:00:00",
            "channel": "app",
            "event_type": "app_open",
            "oaid": "ABCDEF01-2345-6789-ABCD-EF0123456789",
            "member_id": "m001",
            "new_field": 1,
        },
        {
            "event_id": "e2",
            "event_time": "2026-11-01 10:05:00",
            "channel": "web",
            "event_type": "page_view",
            "cookie_id": "0123456789abcdef0123456789abcdef",
        },
    ]
    more = [
        {"event_id": f"x{i}", "event_time": "2026-11-01 11:00:00", "channel": "app", "event_type": "app_open"}
        for i in range(30)
    ]
    text = "\n".join(json.dumps(e) for e in events + more) + '\n{"event_id": "e3", "event_time": \n'
    land(s, "events", DT1, "e.jsonl.gz", text, gz=True)
    report = run(spark, s, "events", DT1)
    assert (report.rows_in, report.silver_written, report.quarantined) == (33, 32, 1)
    assert report.reasons == {"malformed_line": 1}
    assert next(iter(report.drift.values()))["new_columns"] == ["new_field"]
    ev = {r.event_id: r for r in lake.read("silver.events").collect()}
    assert ev["e1"].oaid == "abcdef01-2345-6789-abcd-ef0123456789" and ev["e1"].member_id == "M001"
    bronze = {r.event_id: r for r in lake.read("bronze.events").collect()}
    assert json.loads(bronze["e1"]._extra) == {"new_field": "1"}

    n = 40  # l0 good, l1 junk IDFA, l2 no log id (required): 1 bad row in 40 stays under the 5% threshold
    table = pa.table(
        {
            "log_id": ["l0", "l1", None] + [f"x{i}" for i in range(n - 3)],
            "event_time": pa.array([datetime.datetime(2026, 11, 1, 9)] * n, pa.timestamp("us")),
            "media": ["tencent"] * n,
            "campaign_id": ["c1"] * n,
            "event_type": ["impression", "click"] * (n // 2),
            "idfa": ["abcdef01-2345-6789-abcd-ef0123456789", "00000000-0000-0000-0000-000000000000"]
            + [None] * (n - 2),
            "cost": [0.1] * n,
        }
    )
    folder = Path(s.landing_root) / "ad_delivery" / f"dt={DT1}"
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "ad.parquet")
    report = run(spark, s, "ad_delivery", DT1)
    assert (report.rows_in, report.silver_written, report.quarantined) == (40, 39, 1)
    assert report.rejected_ids == {"idfa": 1}  # the all-zero IDFA is junk, nulled and counted
    assert report.drift[str(folder / "ad.parquet")]["missing_optional"]  # imei, oaid, ... absent
    ads = {r.log_id: r.idfa for r in lake.read("silver.ad_events").filter("log_id LIKE 'l%'").collect()}
    assert ads == {"l0": "ABCDEF01-2345-6789-ABCD-EF0123456789", "l1": None}


def test_files_that_are_not_the_declared_format_are_refused_by_name(spark, env) -> None:
    s, _ = env
    bad = land(s, "events", DT1, "e.jsonl", "event_id,event_time\n1,2026-11-01 10:00:00\n")
    with pytest.raises(IngestError, match="not JSON lines") as exc:
        run(spark, s, "events", DT1)
    assert str(bad) in str(exc.value)
    land(s, "ad_delivery", DT1, "ad.parquet", "log_id,event_time\n")
    with pytest.raises(IngestError, match="not a Parquet file"):
        run(spark, s, "ad_delivery", DT1)


def test_missing_required_column_refuses_that_file_and_ingests_the_others(spark, env) -> None:
    s, lake = env
    land(s, "crm_members", DT1, "good.csv", "\n".join([MEMBERS_HEADER, member("M001")]) + "\n")
    header = MEMBERS_HEADER.replace(",updated_at", "")
    broken = land(s, "crm_members", DT1, "broken.csv", header + "\nM002,x\n")
    with pytest.raises(IngestError, match="updated_at missing") as exc:
        run(spark, s, "crm_members", DT1)
    assert str(broken) in str(exc.value)
    assert [r.member_id for r in lake.read("silver.members").collect()] == ["M001"]
    assert lake.read("gold.ingest_runs").first().status == "rejected_files"


def test_schema_drift_is_reported_not_fatal(spark, env) -> None:
    s, lake = env
    header = MEMBERS_HEADER.replace(",points", "") + ",vip_note"
    line = member("M001").split(",")
    del line[MEMBERS_HEADER.split(",").index("points")]
    land(s, "crm_members", DT1, "d.csv", header + "\n" + ",".join(line) + ",likes tea\n")
    report = run(spark, s, "crm_members", DT1)
    (drift,) = report.drift.values()
    assert drift == {"new_columns": ["vip_note"], "missing_optional": ["points"]}
    assert report.silver_written == 1
    assert lake.read("silver.members").first().points is None


def test_no_files_is_logged_not_an_error(spark, env) -> None:
    s, _ = env
    report = run(spark, s, "consent", DT1)
    assert (report.status, report.rows_in) == ("no_files", 0)


def test_missing_landing_folder_with_wrong_extension_is_clear(env, spark) -> None:
    s, _ = env
    land(s, "orders", DT1, "orders.xlsx", "not csv")
    with pytest.raises(LandingError, match="no csv files"):
        run(spark, s, "orders", DT1)


def test_a_new_source_is_one_contract_file_and_no_code(spark, env, tmp_path: Path) -> None:
    s, lake = env
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "pos_receipts.yaml").write_text(
        """
kind: source
name: pos_receipts
description: Receipts exported from a store POS system.
party: 1P
entity: pos_receipts
format: csv
event_time: sold_at
keys: [receipt_no]
columns:
  - {name: receipt_no, type: string, required: true}
  - {name: mobile, type: string, id_type: phone, pii: direct}
  - {name: sold_at, type: timestamp, required: true}
  - {name: total, type: "decimal(10,2)"}
""",
        encoding="utf-8",
    )
    s = dataclasses.replace(s, contract_paths=(str(contracts),))
    land(
        s,
        "pos_receipts",
        DT1,
        "export.csv",
        "receipt_no,mobile,sold_at,total\nR1,0086 138-1234-5678,2026-10-31 20:15:00,99.50\n",
    )
    report = run(spark, s, "pos_receipts", DT1)
    assert (report.rows_in, report.silver_written) == (1, 1)
    row = lake.read("silver.pos_receipts").first()
    assert row.mobile_masked == "138****5678" and str(row.total) == "99.50"
