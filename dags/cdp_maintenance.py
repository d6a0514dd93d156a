"""
### cdp_maintenance: compaction, vacuum and a history report for every lake table

Once a week:

0. **erasure_vacuum**: the tables of every `cdp privacy erase` request whose retention
   (`CDP_ERASURE_RETENTION_HOURS`) has passed are vacuumed down to the erasure, log versions included.
1. **list_tables**: every Delta table under the lake root (read when the run starts).
2. **compact** (one mapped task per table): small files rewritten into larger ones (delta-rs
   `optimize.compact`; Sail has no `OPTIMIZE`).
3. **vacuum** (per table, after its compaction): files that no version of the last **7 days** needs are
   deleted (delta-rs `vacuum`, retention 168 hours: time travel over a week and readers still on an older
   version keep working; the lake refuses anything shorter).
4. **history_report**: commits of the last 7 days per table (operations, rows written), written to
   `<data root>/maintenance/history-<ds>.json` and returned in the task's XCom.

Each compaction and vacuum holds the table's locks (`runners.orchestration.writing` and the lake lock), so it
waits for a `cdp_daily` task writing the same table and never commits at the same time (Sail and delta-rs
do not detect each other's conflicting commits). Reruns are safe: compaction of a compact table and a
vacuum with nothing to delete change nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task


@dag(
    dag_id="cdp_maintenance",
    schedule="0 3 * * 0",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "data-engineering",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=1),
    },
    tags=["cdp", "maintenance"],
    doc_md=__doc__,
)
def cdp_maintenance():
    @task(execution_timeout=timedelta(minutes=30))
    def erasure_vacuum() -> dict:
        from runners.orchestration import vacuum_erasures

        return vacuum_erasures()

    @task(execution_timeout=timedelta(minutes=5))
    def list_tables() -> list[str]:
        from runners.orchestration import list_tables as tables

        return tables()

    @task(map_index_template="{{ table }}")
    def compact(table: str) -> str:
        from airflow.sdk import get_current_context

        from runners.orchestration import compact_table

        get_current_context()["table"] = table
        compact_table(table)
        return table

    @task(map_index_template="{{ table }}")
    def vacuum(table: str) -> dict:
        from airflow.sdk import get_current_context

        from runners.orchestration import vacuum_table

        get_current_context()["table"] = table
        return vacuum_table(table)

    @task(execution_timeout=timedelta(minutes=15))
    def history_report(tables: list[str], ds: str | None = None) -> dict:
        from runners.orchestration import history_report as report

        return report(list(tables), ds)

    tables = list_tables()
    erasure_vacuum() >> tables
    vacuumed = vacuum.expand(table=compact.expand(table=tables))
    vacuumed >> history_report(tables)


cdp_maintenance()
