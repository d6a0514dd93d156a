"""End to end through Airflow's own dag.test(): cdp_daily for two consecutive dates on a small demo
population, then a rerun of the first date, which must change nothing."""

from __future__ import annotations

import pendulum
import pytest

from cdp.lake import Lake
from cdp.settings import Settings


@pytest.mark.e2e
@pytest.mark.slow
def test_cdp_daily_two_dates_and_rerun(dagbag, spark, tmp_path, monkeypatch) -> None:
    from cdp.demo import generate

    monkeypatch.setenv("CDP_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("CDP_PII_KEY", "dag-test-key")
    settings = Settings.from_env()
    generate(
        tmp_path / "landing",
        tmp_path / "truth",
        persons=400,
        days=2,
        history_days=60,
        seed=3,
        start=pendulum.date(2026, 11, 1),
    )
    dag = dagbag.dags["cdp_daily"]
    for day in (1, 2):
        run = dag.test(logical_date=pendulum.datetime(2026, 11, day, tz="UTC"))
        assert run.state == "success"
    lake = Lake(spark, settings.lake_root)
    runs = lake.read("gold.ingest_runs")
    assert runs.select("source").distinct().count() == 8
    assert runs.count() == 16
    snapshot = {t: lake.version(t) for t in lake.tables() if t.startswith("silver.")}
    silver_rows = {t: lake.read(t).count() for t in snapshot}

    rerun = dag.test(logical_date=pendulum.datetime(2026, 11, 1, tz="UTC"))
    assert rerun.state == "success"
    assert {t: lake.read(t).count() for t in snapshot} == silver_rows
    latest = (
        lake.read("gold.ingest_runs").filter("dt = DATE'2026-11-01'").orderBy("started_at", ascending=False)
    )
    assert all(r.silver_written == 0 for r in latest.limit(8).collect())
