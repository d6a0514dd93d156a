"""
### cdp_daily: the CDP pipeline for one logical date

One run per day (`ds` = the logical date):

1. **list_sources**: the source contracts in `schemas/sources` (read at run time: a new contract file adds a
   source without touching this DAG).
2. **ingest** (one mapped task per source, in parallel): landed files of that date -> `bronze.<source>`,
   `quarantine.<source>`, `silver.<entity>`, a row in `gold.ingest_runs`. Each source writes its own tables;
   the shared run log is written under a lock (Sail does not detect conflicting Delta commits).

Every task is idempotent for its logical date: clearing a task or backfilling a range gives the same tables
as one clean run. The engine is chosen by the `cdp_spark` connection (type *Spark Connect*); without it
the tasks use the embedded Sail engine.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task

DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "execution_timeout": timedelta(hours=2),
}

SILVER = Asset("cdp://lake/silver")


@dag(
    dag_id="cdp_daily",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["cdp", "daily"],
    doc_md=__doc__,
)
def cdp_daily():
    @task
    def list_sources() -> list[str]:
        from cdp.orchestration import list_sources as sources

        return sources()

    @task(outlets=[SILVER])
    def ingest(source: str, ds: str | None = None) -> dict:
        from cdp.orchestration import ingest_source

        return ingest_source(source, ds)

    ingest.expand(source=list_sources())


cdp_daily()
