"""End to end through Airflow's own dag.test(): cdp_daily for two consecutive dates on a small demo
population (ingest, gates, identity, the four tag layers, audience refresh with a scheduled pack), a rerun of
the first date, which must change nothing, and a date whose identity gate fails, which stops the later stages
and publishes nothing."""

from __future__ import annotations

import json

import pendulum
import pytest
from pyspark.sql import functions as F

from cdp.lake import Lake
from cdp.settings import Settings

DT1, DT2, DT3 = (pendulum.datetime(2026, 11, d, tz="UTC") for d in (1, 2, 3))
AUDIENCE = {
    "name": "dag_test_women",
    "rule": {"all": [{"tag": "gender", "op": "=", "value": "F"}]},
    "exports": [{"destination": "tencent", "id_types": ["oaid", "imei"]}],
}


def _snapshot(lake: Lake, table: str, day) -> list[tuple]:
    df = lake.read(table).where(F.col("dt") == F.lit(day.date())).drop("dt")
    return sorted(tuple(r) for r in df.collect())


def _states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.usefixtures("airflow_db")
def test_cdp_daily_two_dates_rerun_and_a_failed_gate(dagbag, spark, tmp_path, monkeypatch) -> None:
    from demo import generate
    from jobs import audiences
    from quality.catalog import PACKAGED_DIR

    monkeypatch.setenv("CDP_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("CDP_PII_KEY", "dag-test-key")
    monkeypatch.setenv("CDP_MIN_PACK_SIZE", "20")
    settings = Settings.from_env()
    generate(
        tmp_path / "landing",
        tmp_path / "truth",
        persons=400,
        days=2,
        history_days=60,
        seed=3,
        start=DT1.date(),
    )
    dag = dagbag.dags["cdp_daily"]
    run = dag.test(logical_date=DT1)
    assert run.state == "success", _states(run)
    # A marketer saves an audience with a scheduled Tencent pack; the next daily run refreshes and exports it.
    audiences.create(spark, settings, AUDIENCE, dt=DT1.date())
    run = dag.test(logical_date=DT2)
    assert run.state == "success", _states(run)
    lake = Lake(spark, settings.lake_root)

    # ingest: every source on both dates, each gated
    runs = lake.read("gold.ingest_runs")
    # creator_stats and creator_content log "no files" (no creators generated)
    assert runs.select("source").distinct().count() == 10
    assert runs.count() == 20
    gates = lake.read("gold.quality_results").select("stage", "table_name", "dt", "gate_passed").distinct()
    assert gates.where("stage = 'identity'").count() == 6  # map, changes, report on two dates
    assert gates.where("stage = 'ingest' AND table_name = 'gold.ingest_runs'").count() == 2
    assert gates.where(~F.col("gate_passed")).count() == 0

    # identity: a snapshot per date; an identifier keeps its OneID unless a recorded change moved it
    maps = {
        day: dict(((t, v), o) for t, v, _, o in _snapshot(lake, "gold.oneid_map", day)) for day in (DT1, DT2)
    }
    assert len(maps[DT1]) > 1_000 and len(maps[DT2]) >= len(maps[DT1])
    moved = {maps[DT1][k] for k in maps[DT1] if k in maps[DT2] and maps[DT2][k] != maps[DT1][k]}
    changed = {
        r.old_oneid for r in lake.read("gold.oneid_changes").where(F.col("dt") == DT2.date()).collect()
    }
    assert moved <= changed
    kept = sum(maps[DT2].get(k) == o for k, o in maps[DT1].items())
    assert kept / len(maps[DT1]) >= 0.98

    # tags: every layer on both dates, a profile row per OneID of the map, gated
    for day in (DT1, DT2):
        oneids = lake.read("gold.oneid_map").where(F.col("dt") == day.date()).select("oneid").distinct()
        profile = lake.read("gold.profile").where(F.col("dt") == day.date())
        assert profile.count() == oneids.count() > 0
        layers = lake.read("gold.tag_stats").where(F.col("dt") == day.date()).select("layer").distinct()
        assert {r.layer for r in layers.collect()} == {"raw", "fact", "model", "predictive"}
    assert gates.where("stage LIKE 'tags%'").select("table_name", "dt").distinct().count() == 6

    # audiences: DT2 made a new version of the saved audience and wrote its scheduled pack
    versions = {(r.version, r.dt) for r in lake.read("gold.audiences").collect()}
    assert versions == {(1, DT1.date()), (2, DT2.date())}
    manifest = json.loads(
        (tmp_path / "packs" / "dag_test_women" / "v2" / "tencent" / "manifest.json").read_text()
    )
    assert manifest["people"] >= 20 and manifest["lines"] > 0

    # a rerun of the first date changes nothing
    tables = [
        t for t in lake.tables() if t.split(".")[0] in ("silver", "gold") and t != "gold.quality_results"
    ]
    silver_rows = {t: lake.read(t).count() for t in tables if t.startswith("silver.")}
    by_date = ("gold.oneid_map", "gold.oneid_changes", "gold.id_edges", "gold.tags", "gold.profile")
    before = {t: _snapshot(lake, t, DT1) for t in by_date}
    audience_rows = sorted(tuple(r) for r in lake.read("gold.audiences").drop("created_at").collect())
    exports = lake.read("gold.audience_exports").count()
    rerun = dag.test(logical_date=DT1)
    assert rerun.state == "success", _states(rerun)
    assert {t: lake.read(t).count() for t in silver_rows} == silver_rows
    assert {t: _snapshot(lake, t, DT1) for t in by_date} == before
    assert sorted(tuple(r) for r in lake.read("gold.audiences").drop("created_at").collect()) == audience_rows
    assert lake.read("gold.audience_exports").count() == exports
    latest = (
        lake.read("gold.ingest_runs").where(F.col("dt") == DT1.date()).orderBy(F.col("started_at").desc())
    )
    assert all(r.silver_written == 0 for r in latest.limit(8).collect())

    # DT3 under a suite that allows no OneID above 2 identifiers: the identity gate fails, the tag and
    # audience stages do not run, and no identity table gets a DT3 snapshot
    strict = json.loads((PACKAGED_DIR / "gold.identity_report.json").read_text(encoding="utf-8"))
    for e in strict["expectations"]:
        if e["severity"] == "critical" and e["type"] == "expect_column_max_to_be_between":
            e["kwargs"]["max_value"] = 2
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "gold.identity_report.json").write_text(json.dumps(strict), encoding="utf-8")
    monkeypatch.setenv("CDP_SUITE_PATH", str(tmp_path / "suites"))
    versions = {t: lake.version(t) for t in tables if t.startswith("gold.") and t != "gold.ingest_runs"}
    failed = dag.test(logical_date=DT3)
    states = _states(failed)
    assert failed.state == "failed"
    assert states["resolve_identity"] == "failed"
    assert states["tags_raw"] == states["refresh_audiences"] == "upstream_failed"
    assert {t: lake.version(t) for t in versions} == versions
    assert (
        lake.read("gold.quality_results")
        .where(
            (F.col("dt") == DT3.date()) & (F.col("table_name") == "gold.identity_report") & ~F.col("success")
        )
        .count()
        == 1
    )
