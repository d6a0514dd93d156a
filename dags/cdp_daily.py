"""
### cdp_daily: the CDP pipeline for one logical date

One run per day (`ds` = the logical date), each stage behind a quality gate:

1. **list_sources**: the source contracts in `schemas/sources` (read at run time: a new contract file adds a
   source without touching this DAG).
2. **ingest** (one mapped task per source, in parallel): landed files of that date -> `bronze.<source>`,
   `quarantine.<source>`, `silver.<entity>`. Each task writes only its own source's tables (held under a
   task lock), and gates them itself (write, validate, publish): silver is merged only when the suites of
   bronze, quarantine and the silver candidates pass. The shared run logs `gold.ingest_runs` and
   `gold.quality_results` are appended under the table's lake lock, one commit at a time.
3. **check_ingest**: the gate of the whole stage, the date's `gold.ingest_runs` (row balance of every
   source, statuses).
4. **resolve_identity**: `gold.oneid_map`, `gold.oneid_changes`, `gold.identity_report` (and the graph
   tables); validated before anything is written.
5. **tags_raw -> tags_fact -> tags_model -> tags_predictive**: the tag catalog layer by layer into
   `gold.tags`, `gold.profile`, `gold.tag_stats`.
6. **check_tags**: the suites of `gold.tags`, `gold.profile`, `gold.tag_stats` (keys, every OneID in
   `gold.oneid_map`, tag coverage within bounds, row counts against the previous date).
7. **refresh_audiences**: every rule audience re-evaluated on the new profile (a new version in
   `gold.audience_members`) and its **scheduled exports** written as packs (人群包).
- **measure_effect** (after refresh_audiences): every registered campaign measured up to the date (cost
  figures, funnel, incremental lift against its holdout, attribution of the orders) into `gold.effect_*` and
  `gold.attribution`; bad input reported in `gold.effect_issues`.
8. **build_creators**: creator features, creator audience TGI and the high-potential
   model (`gold.creator_*`); it returns without writing when no creator statistics were ingested.

A failed critical expectation fails its task at once (no retries: the data must change first), so the
date's later stages do not run and the tables they would write keep their previous content. Warnings are
recorded in `gold.quality_results` (`cdp quality docs` renders them) and do not stop the run. Stages whose
job is not installed yet (tags, audiences) are skipped.

**Idempotent and backfill-safe**: every task replaces its date's data, so clearing a task or backfilling a
range gives the same tables as one clean run. Identity builds on the previous date's OneIDs, so dates run
**in order**: `max_active_runs=1` and `depends_on_past` on `resolve_identity` and the stages after it.

**Assets**: each stage publishes the tables it writes as Airflow Assets (`cdp://lake/<layer>/<table>`),
so DAGs that need a table can be scheduled on it. The engine is chosen by the `cdp_spark` connection
(type *Spark Connect*: a Sail server or a Spark 4 cluster); without it the tasks use the embedded Sail
engine. The same jobs run under `spark-submit` or `cdp <stage>`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task


def _table(name: str) -> Asset:
    layer, _, table = name.partition(".")
    return Asset(name=name, uri=f"cdp://lake/{layer}/{table}", group="cdp_lake")


# The layers' assets stand for every table of the layer that a mapped ingest task writes (sources are
# read from contracts at run time, so the DAG cannot name their tables).
BRONZE, QUARANTINE, SILVER = (Asset(name=f"{x}.*", uri=f"cdp://lake/{x}", group="cdp_lake") for x in
                              ("bronze", "quarantine", "silver"))  # fmt: skip
INGEST_RUNS = _table("gold.ingest_runs")
IDENTITY = [_table(t) for t in ("gold.oneid_map", "gold.oneid_changes", "gold.identity_report")]
TAGS = [_table(t) for t in ("gold.tags", "gold.profile", "gold.tag_stats")]
AUDIENCES = [_table(t) for t in ("gold.audiences", "gold.audience_members", "gold.audience_exports")]
CREATORS = [_table(t) for t in ("gold.creator_features", "gold.creator_audience", "gold.creator_potential")]
TAG_LAYERS = ("raw", "fact", "model", "predictive")
EFFECT = [_table(t) for t in ("gold.effect_summary", "gold.effect_lift", "gold.attribution")]

DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "execution_timeout": timedelta(hours=1),
}
IN_ORDER = {"depends_on_past": True}


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
    @task(execution_timeout=timedelta(minutes=5))
    def list_sources() -> list[str]:
        from runners.orchestration import list_sources as sources

        return sources()

    @task(outlets=[BRONZE, QUARANTINE, SILVER, INGEST_RUNS], map_index_template="{{ source }}")
    def ingest(source: str, ds: str | None = None) -> dict:
        from airflow.sdk import get_current_context

        from runners.orchestration import ingest_source

        get_current_context()["source"] = source  # names the mapped task in the UI
        return ingest_source(source, ds)

    @task(execution_timeout=timedelta(minutes=15))
    def check_ingest(results: list[dict], ds: str | None = None) -> dict:
        from runners.orchestration import check_tables

        return {"sources": len(list(results))} | check_tables(["gold.ingest_runs"], ds, stage="ingest")

    @task(outlets=IDENTITY, execution_timeout=timedelta(hours=2), **IN_ORDER)
    def resolve_identity(ds: str | None = None) -> dict:
        from runners.orchestration import resolve_identity as resolve

        return resolve(ds)

    @task(outlets=TAGS, execution_timeout=timedelta(hours=2), **IN_ORDER)
    def build_tags(layer: str, ds: str | None = None) -> dict:
        from runners.orchestration import build_tags as build

        return build(ds, layer)

    @task(execution_timeout=timedelta(minutes=30), **IN_ORDER)
    def check_tags(ds: str | None = None) -> dict:
        from runners.orchestration import check_tables

        return check_tables(["gold.tags", "gold.profile", "gold.tag_stats"], ds, stage="tags")

    @task(outlets=CREATORS, execution_timeout=timedelta(hours=1), **IN_ORDER)
    def build_creators(ds: str | None = None) -> dict:
        from runners.orchestration import build_creators as build

        return build(ds)

    @task(outlets=EFFECT, execution_timeout=timedelta(hours=1), **IN_ORDER)
    def measure_effect(ds: str | None = None) -> dict:
        from runners.orchestration import measure_effect as measure

        return measure(ds)

    @task(outlets=AUDIENCES, execution_timeout=timedelta(hours=2), **IN_ORDER)
    def refresh_audiences(ds: str | None = None) -> dict:
        from runners.orchestration import refresh_audiences as refresh

        return refresh(ds)

    ingested = ingest.expand(source=list_sources())
    previous = resolve_identity()
    check_ingest(ingested) >> previous
    for layer in TAG_LAYERS:
        current = build_tags.override(task_id=f"tags_{layer}")(layer)
        previous >> current
        previous = current
    audiences = refresh_audiences()
    previous >> check_tags() >> audiences >> build_creators()

    audiences >> measure_effect()


cdp_daily()
