"""One writer per table: parallel tasks of one run write the shared run logs through the same code the DAG's
tasks run, and no commit is lost; maintenance waits for a task writing the same table."""

from __future__ import annotations

import datetime
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from pyspark.sql import functions as F

from cdp.lake import Lake
from cdp.settings import Settings
from quality.gates import RESULTS_TABLE, GateResult, Outcome, write_results

DT = "2026-11-01"


@pytest.mark.slow
def test_parallel_ingest_tasks_of_one_run_lose_no_commit(spark, tmp_path, monkeypatch) -> None:
    from demo import generate
    from runners import orchestration

    monkeypatch.setenv("CDP_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("CDP_PII_KEY", "parallel-test-key")
    settings = Settings.from_env()
    generate(
        tmp_path / "landing",
        tmp_path / "truth",
        persons=150,
        days=1,
        history_days=5,
        seed=5,
        start=datetime.date.fromisoformat(DT),
        creators=20,  # so that creator_stats and creator_content land files too
    )
    sources = orchestration.list_sources()
    assert len(sources) == 10
    # every source at once, as the mapped ingest tasks run: each appends to gold.ingest_runs and
    # gold.quality_results, the tables every task of the run shares
    with ThreadPoolExecutor(max_workers=len(sources)) as pool:
        results = list(pool.map(lambda s: orchestration.ingest_source(s, DT), sources))
    assert sorted(r["source"] for r in results) == sources
    lake = Lake(spark, settings.lake_root)
    runs = lake.read("gold.ingest_runs").collect()
    assert sorted(r.source for r in runs) == sources
    gates = lake.read(RESULTS_TABLE).select("run_id", "table_name").distinct().collect()
    assert len(gates) == 3 * len(sources)  # bronze, quarantine and silver of each source
    assert lake.version("gold.ingest_runs") == len(sources) - 1  # one commit per task, none overwritten


def test_parallel_result_writers_land_every_row(spark, lake) -> None:
    n = 12
    day = datetime.date.fromisoformat(DT)

    def result(i: int) -> GateResult:
        outcome = Outcome(0, "expect_table_row_count_to_be_between", None, {}, "warning", True, str(i))
        return GateResult(f"silver.t{i}", day, f"task {i}", "test", run_id=f"run{i:02d}", outcomes=[outcome])

    with ThreadPoolExecutor(max_workers=n) as pool:
        list(pool.map(lambda i: write_results(lake, [result(i)]), range(n)))
    rows = lake.read(RESULTS_TABLE).select("run_id").collect()
    assert sorted(r.run_id for r in rows) == [f"run{i:02d}" for i in range(n)]
    assert lake.version(RESULTS_TABLE) == n - 1


def test_maintenance_waits_for_the_task_writing_the_table(spark, tmp_path, monkeypatch) -> None:
    from runners import orchestration

    monkeypatch.setenv("CDP_DATA_ROOT", str(tmp_path))
    settings = Settings.from_env()
    lake = Lake(spark, settings.lake_root)
    for i in range(3):  # three small commits to compact
        lake.append("silver.things", spark.range(i * 10, i * 10 + 10).withColumn("dt", F.lit(DT)))
    order = []
    holding = threading.Event()

    def task() -> None:
        with orchestration.writing(settings, ["silver.things"]):
            holding.set()
            time.sleep(1.0)
            order.append("task")

    writer = threading.Thread(target=task)
    writer.start()
    holding.wait(10)
    out = orchestration.compact_table("silver.things")
    order.append("compact")
    writer.join()
    assert order == ["task", "compact"]
    assert out["files_removed"] >= 3 and out["files_added"] >= 1
    assert lake.read("silver.things").count() == 30
    vacuumed = orchestration.vacuum_table("silver.things")
    assert vacuumed == {"table": "silver.things", "files_removed": 0, "retention_hours": 168}  # all younger
    report = orchestration.history_report(["silver.things"], "2026-11-01T00:00:00+00:00", days=100_000)
    assert report["tables"]["silver.things"]["commits"] == 4
    assert set(report["tables"]["silver.things"]["operations"]) >= {"OPTIMIZE"}
