"""
### cdp_audience_export: one audience pack (人群包) on demand

Triggered by a marketer (Trigger DAG w/ config in the UI) or by the API, with params:

| param | meaning |
|---|---|
| `audience` | the audience id (`cdp audience list`) |
| `destination` | `tencent` (腾讯广告), `oceanengine` (巨量引擎), `google`, `meta` or `csv` |
| `id_types` | ID types to include (e.g. `["phone", "oaid"]`); empty for every type the destination takes |
| `version` | the audience version; empty for the latest |

The task calls the audiences job's export (`jobs.audiences.export`): members are consent-filtered again with
the latest consent, identifiers are put in the destination's form and hashing, and the pack is written to
`<packs root>/<audience>/v<version>/<destination>/` with a manifest (counts, checksums) and logged in
`gold.audience_exports`. An unknown audience or destination, an ID type the destination does not take, or a
pack below the minimum size (k-anonymity) fails the run at once with the reason (no retries). Several
exports may run at once: each writes its own pack folder, and the export log is appended under its lock.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, task

PACKS = Asset(name="audience_packs", uri="cdp://packs", group="cdp_packs")
EXPORTS = Asset(name="gold.audience_exports", uri="cdp://lake/gold/audience_exports", group="cdp_lake")


@dag(
    dag_id="cdp_audience_export",
    schedule=None,
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    default_args={
        "owner": "marketing-ops",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(minutes=30),
    },
    params={
        "audience": Param(type="string", minLength=1, description="Audience id (cdp audience list)."),
        "destination": Param("csv", type="string", description="tencent, oceanengine, google, meta or csv."),
        "id_types": Param([], type="array", items={"type": "string"}, description="ID types; empty for all."),
        "version": Param(None, type=["null", "integer"], description="Version; empty for the latest."),
    },
    tags=["cdp", "audience", "on-demand"],
    doc_md=__doc__,
)
def cdp_audience_export():
    @task(outlets=[PACKS, EXPORTS])
    def export_pack(params: dict | None = None) -> dict:
        from runners.orchestration import export_audience

        p = params or {}
        return export_audience(p["audience"], p["destination"], p.get("id_types"), p.get("version"))

    export_pack()


cdp_audience_export()
