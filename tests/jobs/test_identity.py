"""Identity resolution on real landed files, real ingest and real Delta tables: shared-device pruning and its
audit, junk identifiers, OneID survival through a merge and a split between two dates, reruns, explain,
and the quality targets on a generated demo population."""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections import Counter
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from cdp.lake import Lake
from jobs import identity, ingest

DT1, DT2 = "2026-11-01", "2026-11-02"
MEMBERS_HEADER = (
    "member_id,name,phone,email,gender,birth_date,province,city,register_channel,register_time,"
    "membership_level,points,wechat_openid,wechat_unionid,updated_at"
)
KEY = "identity-test-key"
# Device ids (OAIDs as dashed UUIDs): A's phone, the family tablet, B's phone, B's second phone.
A_PHONE = "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
TABLET = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"
B_PHONE = "0a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9"
B_OTHER = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
JUNK_OAID = "00000000-0000-0000-0000-000000000000"
A_OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz1"


@pytest.fixture()
def env(settings, tmp_path: Path, spark):
    s = dataclasses.replace(settings.with_data_root(tmp_path / "data"), pii_key=KEY)
    return s, Lake(spark, s.lake_root)


def land(s, source: str, dt: str, name: str, text: str) -> None:
    folder = Path(s.landing_root) / source / f"dt={dt}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def member(mid: str, phone: str, openid: str = "", updated_at: str = "2026-10-30 10:00:00") -> str:
    row = {
        "member_id": mid,
        "name": "张伟",
        "phone": phone,
        "email": "",
        "gender": "F",
        "birth_date": "1990-05-01",
        "province": "上海",
        "city": "上海",
        "register_channel": "app",
        "register_time": "2025-01-01 09:00:00",
        "membership_level": "gold",
        "points": "120",
        "wechat_openid": openid,
        "wechat_unionid": "",
        "updated_at": updated_at,
    }
    return ",".join(row[c] for c in MEMBERS_HEADER.split(","))


def event(eid: str, dt: str, member_id: str | None = None, **ids: str) -> str:
    row = {"event_id": eid, "event_time": f"{dt} 10:00:00", "channel": "app", "event_type": "app_open"}
    return json.dumps(row | ({"member_id": member_id} if member_id else {}) | ids)


def ingest_day(spark, s, dt: str, events: list[str], members: list[str] | None = None) -> None:
    if members:
        land(s, "crm_members", dt, "m.csv", "\n".join([MEMBERS_HEADER, *members]) + "\n")
        ingest.run(spark, s, "crm_members", dt)
    land(s, "events", dt, "e.jsonl", "\n".join(events) + "\n")
    ingest.run(spark, s, "events", dt)


def oneid_of(lake: Lake, dt: str) -> dict[tuple[str, str], int]:
    snap = lake.read("gold.oneid_map").where(F.col("dt") == F.lit(datetime.date.fromisoformat(dt)))
    return {(r["id_type"], r["id_value"]): r["oneid"] for r in snap.collect()}


def day_rows(lake: Lake, table: str, dt: str) -> list[tuple]:
    df = lake.read(table).where(F.col("dt") == F.lit(datetime.date.fromisoformat(dt))).drop("dt")
    return sorted(tuple(r) for r in df.collect())


@pytest.mark.slow  # several stage runs: over 5 s of its own
def test_shared_device_split_merge_junk_audit_and_reruns(spark, env) -> None:
    s, lake = env
    # Day 1: A on her phone and on the family tablet; B on his phone; B's second phone used anonymously;
    # both members once with the all-zero OAID an SDK sends when ad tracking is off.
    ingest_day(
        spark,
        s,
        DT1,
        [
            event("e1", DT1, "M0A", oaid=A_PHONE),
            event("e2", DT1, "M0A", oaid=TABLET),
            event("e3", DT1, "M0B", oaid=B_PHONE),
            event("e4", DT1, oaid=B_OTHER),
            event("e5", DT1, "M0A", oaid=JUNK_OAID),
            event("e6", DT1, "M0B", oaid=JUNK_OAID),
        ],
        members=[member("M0A", "138 1234 0001", A_OPENID), member("M0B", "+86-138-1234-0002")],
    )
    r1 = identity.run(spark, s, DT1)
    day1 = oneid_of(lake, DT1)
    a, b = day1[("member_id", "M0A")], day1[("member_id", "M0B")]
    assert a != b
    assert day1[("oaid", A_PHONE)] == day1[("oaid", TABLET)] == day1[("wechat_openid", A_OPENID)] == a
    assert day1[("oaid", B_PHONE)] == b and day1[("oaid", B_OTHER)] not in (a, b)
    assert all(v != JUNK_OAID for _, v in day1)  # junk never becomes an identifier
    assert sorted(t for t, _ in day1).count("phone") == 2  # phones are there, as keyed hashes only
    assert not any(v.startswith(("138", "+86")) for _, v in day1)
    # OneIDs 1, 2, 3 for the three components (5, 3 and 1 identifiers), in the order of their oldest vid
    assert sorted(Counter(day1.values()).values()) == [1, 3, 5] and set(day1.values()) == {1, 2, 3}
    assert r1.previous_dt is None and r1.new_oneids == 3
    assert day_rows(lake, "gold.oneid_changes", DT1) == []
    assert not lake.exists("gold.id_pruned_edges") or day_rows(lake, "gold.id_pruned_edges", DT1) == []

    # Day 2: B logs in on the tablet (now shared by two member ids) and on his second phone; A's CRM record
    # is re-exported unchanged but newer, so silver moves it to _dt = DT2.
    ingest_day(
        spark,
        s,
        DT2,
        [event("e7", DT2, "M0B", oaid=TABLET), event("e8", DT2, "M0B", oaid=B_OTHER)],
        members=[member("M0A", "138 1234 0001", A_OPENID, updated_at="2026-11-02 08:00:00")],
    )
    r2 = identity.run(spark, s, DT2)
    day2 = oneid_of(lake, DT2)
    # A keeps her OneID: the tablet split away (the member id anchors it), and gets a new OneID
    assert day2[("member_id", "M0A")] == day2[("oaid", A_PHONE)] == a
    tablet = day2[("oaid", TABLET)]
    assert tablet == 4 and tablet not in (a, b)
    # B's second phone merged into B; the older (smaller) of the two OneIDs survived
    survivor = min(b, day1[("oaid", B_OTHER)])
    assert day2[("member_id", "M0B")] == day2[("oaid", B_OTHER)] == survivor
    merged = max(b, day1[("oaid", B_OTHER)])
    moved = 1 if survivor == b else 3  # the identifiers of the retired OneID
    assert day_rows(lake, "gold.oneid_changes", DT2) == [
        ("merged", merged, survivor, moved),
        ("split", a, 4, 1),
    ]
    assert r2.previous_dt == DT1 and r2.changes == {"merged": 1, "split": 1}

    # The audit table keeps every pruned link of the tablet, with the reason; the report lists the hub.
    pruned = lake.read("gold.id_pruned_edges").where(F.col("dt") == F.lit(datetime.date(2026, 11, 2)))
    got = {(r["src_value"], r["hub_value"], r["reason"], r["source"]) for r in pruned.collect()}
    reason = "shared_between_persons: persons hold 2 member_id > 1; shared_device: 2 member_id > 1"
    assert got == {("M0A", TABLET, reason, "events"), ("M0B", TABLET, reason, "events")}
    report = lake.read("gold.identity_report").where(F.col("metric") == "pruned_hub").collect()
    assert [(r["dimension"], json.loads(r["detail"])["reason"]) for r in report] == [
        (f"oaid:{TABLET}", reason)
    ]

    # Reruns give the same snapshots: the same date again, and day 1 after day 2 was written.
    maps = {dt: day_rows(lake, "gold.oneid_map", dt) for dt in (DT1, DT2)}
    changes = day_rows(lake, "gold.oneid_changes", DT2)
    assert not identity.run(spark, s, DT2).kept  # the latest date is recomputed
    kept = identity.run(spark, s, DT1)  # DT2 built on DT1: kept, even though silver moved A's record to DT2
    assert kept.kept and kept.oneids == r1.oneids and kept.identifiers == r1.identifiers
    assert {dt: day_rows(lake, "gold.oneid_map", dt) for dt in (DT1, DT2)} == maps
    assert day_rows(lake, "gold.oneid_changes", DT2) == changes
    assert lake.read("gold.id_vertices").count() == len(day2)  # vertex ids were not issued twice

    # explain finds A from her phone typed in another format, with the records linking her identifiers.
    out = identity.explain(spark, s, "13812340001", id_type="phone")
    assert out.oneid == a and out.dt == DT2
    assert {(e["dst_type"], e["table"]) for e in out.edges} >= {
        ("phone", "silver.members"),
        ("oaid", "silver.events"),
    }
    assert any(p["hub_value"] == TABLET for p in out.pruned)


@pytest.mark.slow  # several stage runs: over 5 s of its own
def test_cli_explain_and_unknown_identifier(spark, env, monkeypatch) -> None:
    from typer.testing import CliRunner

    from apps.cli.main import app

    s, _ = env
    ingest_day(spark, s, DT1, [event("e1", DT1, "M0A", oaid=A_PHONE)], members=[member("M0A", "13812340001")])
    identity.run(spark, s, DT1)
    runner = CliRunner()
    environment = {"CDP_PII_KEY": KEY, "CDP_DATA_ROOT": s.data_root}
    out = runner.invoke(app, ["identity", "explain", "+86 138-1234-0001"], env=environment)
    assert out.exit_code == 0, out.output
    assert "OneID 1 (2026-11-01): +86 138-1234-0001 as phone" in out.output
    out = runner.invoke(app, ["identity", "explain", "M999"], env=environment)
    assert out.exit_code == 1


@pytest.mark.slow
def test_quality_targets_on_a_generated_population(spark, demo_lake) -> None:
    # The session's demo lake (tests/conftest.py): a generated population ingested and resolved on DT1.
    s, report = demo_lake.settings, demo_lake.identity
    assert demo_lake.dt == DT1
    assert report.hubs > 0 and report.alerts == []
    result = identity.evaluate(spark, s, DT1)
    assert result.persons > 2_000 and result.shared_identifiers > 0
    assert result.precision >= 0.99, result
    assert result.recall_linkable >= 0.95, result
    assert result.over_merged_share <= 0.01, result
    # Many pairs of one person never meet in a record (an anonymous cookie, an ad-log device): plain recall
    # is bounded by the data, not by the rules.
    assert 0.5 <= result.recall <= result.recall_linkable, result


# ---- the identity gate (write, validate, publish) ---------------------------------------------------------


@pytest.mark.slow  # several stage runs: over 5 s of its own
def test_identity_gate_publishes_only_what_passes_and_stops_the_downstream_stage(
    spark, env, tmp_path: Path, monkeypatch
) -> None:
    from quality import QualityGateError
    from quality.catalog import PACKAGED_DIR
    from runners import local as pipeline

    s, lake = env
    ingest_day(
        spark,
        s,
        DT1,
        [event("e1", DT1, "M0A", oaid=A_PHONE), event("e2", DT1, "M0B", oaid=B_PHONE)],
        [member("M0A", "13812345678", A_OPENID), member("M0B", "13912345678")],
    )
    identity.run(spark, s, DT1)
    audits = lake.read("gold.quality_results").where(F.col("stage") == "identity").collect()
    assert {r.table_name for r in audits} == {identity.MAP, identity.CHANGES, identity.REPORT}
    assert all(r.gate_passed for r in audits)

    # DT2 under a suite that allows no OneID above 2 identifiers: A (member, phone, openid, two devices)
    # breaks it, so nothing of DT2 is published and the next stage does not run.
    ingest_day(spark, s, DT2, [event("e3", DT2, "M0A", oaid=TABLET)])
    tables = [
        identity.VERTICES,
        identity.EDGES,
        identity.PRUNED,
        identity.MAP,
        identity.CHANGES,
        identity.REPORT,
    ]
    versions = {t: lake.version(t) for t in tables}
    strict = json.loads((PACKAGED_DIR / "gold.identity_report.json").read_text(encoding="utf-8"))
    (bound,) = [
        e
        for e in strict["expectations"]
        if e["severity"] == "critical" and e["type"] == "expect_column_max_to_be_between"
    ]
    bound["kwargs"]["max_value"] = 2
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "gold.identity_report.json").write_text(json.dumps(strict), encoding="utf-8")
    monkeypatch.setenv("CDP_SUITE_PATH", str(suites))
    downstream: list = []
    monkeypatch.setattr(
        pipeline,
        "stages",
        lambda: [
            pipeline.Stage("identity", pipeline._identity),
            pipeline.Stage("tags", lambda *args: downstream.append(args)),
        ],
    )
    with pytest.raises(QualityGateError, match=r"gold\.identity_report expect_column_max_to_be_between"):
        pipeline.run_stages(s, [datetime.date.fromisoformat(DT2)])
    assert downstream == []
    assert {t: lake.version(t) for t in tables} == versions
    assert day_rows(lake, identity.MAP, DT2) == []
    failed = (
        lake.read("gold.quality_results")
        .where((F.col("dt") == F.lit(datetime.date.fromisoformat(DT2))) & ~F.col("success"))
        .collect()
    )
    assert [(r.table_name, r.severity, r.gate_passed) for r in failed] == [
        (identity.REPORT, "critical", False)
    ]
    assert failed[0].observed_value == "5.0 (expected ..2)"  # A: member, phone, openid, two devices

    # with the packaged suite the same date passes and is published
    monkeypatch.delenv("CDP_SUITE_PATH")
    identity.run(spark, s, DT2)
    assert oneid_of(lake, DT2)[("member_id", "M0A")] == oneid_of(lake, DT1)[("member_id", "M0A")]


TWO_ATTRIBUTE_RULES = """
attribute_links:
  - name: name_birth_date
    source: crm_members
    columns: [name_hash, birth_date]
    enabled: true
  - name: name_city
    source: crm_members
    columns: [name_hash, city]
    enabled: true
"""


def rules_with_two_attribute_links(tmp_path: Path) -> Path:
    """The packaged rules with two enabled attribute-link rules on the CRM source."""
    from identity.rules import RULES_FILE

    head = RULES_FILE.read_text(encoding="utf-8").split("\nattribute_links:")[0]
    path = tmp_path / "rules.yaml"
    path.write_text(head + "\n" + TWO_ATTRIBUTE_RULES, encoding="utf-8")
    return path


def test_several_attribute_rules_on_one_source_are_planned(tmp_path: Path) -> None:
    from identity.rules import load_rules, plan_sources
    from schemas import ID_TYPES, load_sources

    path = rules_with_two_attribute_links(tmp_path)
    rules = load_rules(path)
    crm = next(p for p in plan_sources(rules, load_sources(), rules_path=path) if p.source == "crm_members")
    assert [r.id_type for r in crm.attributes] == ["attribute:name_birth_date", "attribute:name_city"]
    # The gate accepts every ID type and the types the rules create, nothing else.
    assert set(rules.id_types) == {*ID_TYPES, "attribute:name_birth_date", "attribute:name_city"}


@pytest.mark.slow  # ingest and a full identity run
def test_two_attribute_rules_on_one_source_publish(spark, env, tmp_path: Path) -> None:
    s, lake = env
    ingest_day(
        spark,
        s,
        DT1,
        [event("e1", DT1, "M0A", oaid=A_PHONE)],
        members=[member("M0A", "138 1234 0001", A_OPENID)],
    )
    report = identity.run(spark, s, DT1, rules_path=rules_with_two_attribute_links(tmp_path))
    assert report.dt == DT1
    day1 = oneid_of(lake, DT1)
    types = {t for t, _ in day1}
    assert {"attribute:name_birth_date", "attribute:name_city"} <= types
    a = day1[("member_id", "M0A")]
    assert {v for (t, _), v in day1.items() if t.startswith("attribute:")} == {a}
    assert day1[("oaid", A_PHONE)] == a
