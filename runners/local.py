"""The pipeline as a list of stages, run in order for each logical date by ``cdp demo`` and ``cdp bench``.

Airflow DAGs call the same job entry points one task at a time; this runner is the single-process path for
laptops, demos and benchmarks.
"""

from __future__ import annotations

import datetime as _dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cdp.measure import StageResult, measure
from cdp.settings import Settings

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Stage:
    """One pipeline stage for one logical date: ``run(spark, settings, dt, result)`` fills ``result``."""

    name: str
    run: Callable[..., None]


def _ingest_all(spark, settings: Settings, dt: _dt.date, result: StageResult) -> None:
    """Ingest every source contract for one date, ``settings.ingest_parallel`` sources at a time, as the daily
    DAG's mapped ingest tasks run side by side: each source writes its own tables (its leases say so) and the
    shared run logs under their lock. The largest landings start first, so the small ones fill the gaps.
    Every source runs even when one fails; the first failure is raised afterwards.

    Raises:
        IngestError: a source could not publish its batch (the others did).
    """
    from concurrent.futures import ThreadPoolExecutor

    from ingest.landing import landing_dir
    from jobs import ingest
    from schemas import load_sources

    contracts = load_sources(settings.contract_paths)

    def landed_bytes(name: str) -> int:
        folder = landing_dir(settings.landing_root, contracts[name], dt)
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.is_dir() else 0

    order = sorted(contracts, key=lambda name: (-landed_bytes(name), name))
    with ThreadPoolExecutor(max_workers=settings.ingest_parallel, thread_name_prefix="ingest") as pool:
        futures = {name: pool.submit(ingest.run, spark, settings, name, dt) for name in order}
    reports, failures = [], []
    for name in sorted(futures):
        try:
            reports.append(futures[name].result())
        except ingest.IngestError as exc:
            reports.append(exc.report)
            failures.append(exc)
    result.rows_in = sum(r.rows_in for r in reports)
    result.rows_out = sum(r.silver_written for r in reports)
    result.extra = {
        "balance": [r.balance_line() for r in reports],
        "per_source": [
            {
                "source": r.source,
                "rows_in": r.rows_in,
                "silver_written": r.silver_written,
                "quarantined": r.quarantined,
                "seconds": r.seconds,
                "rows_per_s": round(r.rows_in / r.seconds) if r.seconds else None,
            }
            for r in reports
        ],
    }
    if failures:
        raise failures[0]


def _identity(spark, settings: Settings, dt: _dt.date, result: StageResult) -> None:
    """Resolve identities into stable OneIDs for one date."""
    from jobs import identity

    report = identity.run(spark, settings, dt)
    result.rows_in = sum(report.identifiers.values())
    result.rows_out = report.oneids
    result.extra = {"balance": report.summary(), "rounds": report.rounds, "steps": report.steps}


def _tags(spark, settings: Settings, dt: _dt.date, result: StageResult) -> None:
    """Build every tag layer for one date (gold.tags, gold.profile, gold.tag_stats, gold.models)."""
    from jobs import tags

    report = tags.run(spark, settings, dt)
    result.rows_in = report.oneids
    result.rows_out = report.values
    result.extra = {
        "balance": report.summary(),
        "steps": report.steps,
        "models": {
            t: [m["metric"], m["metric_value"], m["baseline_value"]] for t, m in report.models.items()
        },
    }


def _audiences(spark, settings: Settings, dt: _dt.date, result: StageResult) -> None:
    """Store the consent opt-outs of the date, re-evaluate rule audiences, write their scheduled packs."""
    from jobs import audiences

    report = audiences.refresh(spark, settings, dt)
    result.rows_in = report.optouts
    result.rows_out = len(report.refreshed)
    result.extra = {"balance": report.lines(), "exports": report.exports, "refused": report.refused}


def _effect(spark, settings: Settings, dt: _dt.date, result: StageResult) -> None:
    """Measure every registered campaign up to the date and attribute the orders (gold.effect_*)."""
    from jobs import effect

    report = effect.run(spark, settings, dt)
    result.rows_in = report.delivery_rows
    result.rows_out = report.attributed_orders
    result.extra = {"balance": report.lines()}


def _creators(spark, settings: Settings, dt: _dt.date, result: StageResult) -> None:
    """Creator features, creator audience TGI and the high-potential model (gold.creator_*)."""
    from jobs import creators

    report = creators.build(spark, settings, dt)
    result.rows_in = report.creators
    result.rows_out = report.audience_rows
    result.extra = {"balance": report.summary(), "steps": report.steps}


DEMO_AUDIENCES = Path(__file__).resolve().parent.parent / "audiences" / "examples"
"""Audience definitions the demo creates after its first date (rule audiences with scheduled packs)."""


def demo_audiences(spark, settings: Settings, dt: _dt.date, folder: Path = DEMO_AUDIENCES) -> list[str]:
    """Create the example audiences on the profile of ``dt`` and write their scheduled packs now; every later
    date's audiences stage refreshes them (a new version each) and writes their packs again.

    Returns:
        One line per audience and pack for the console; a pack below the minimum size is reported, not raised.
    """
    from audiences.errors import PackTooSmallError
    from jobs import audiences

    lines = []
    for path in sorted(folder.glob("*.yaml")):
        v = audiences.create(spark, settings, str(path), dt=dt, created_by="demo")
        lines.append(f"audience {v.audience_id}@{v.version}: {v.size:,} people ({v.opted_out:,} opted out)")
        for schedule in v.definition.get("exports") or []:
            try:
                m = audiences.export(
                    spark,
                    settings,
                    v.audience_id,
                    schedule["destination"],
                    version=v.version,
                    id_types=schedule.get("id_types"),
                    created_by="demo",
                )
                lines.append(f"  pack {m.destination}: {m.people:,} people, {m.lines:,} lines -> {m.path}")
            except PackTooSmallError as exc:
                lines.append(f"  pack {schedule['destination']} refused: {exc}")
    return lines + demo_campaigns(spark, settings, dt)


DEMO_CAMPAIGNS = (
    # (campaign id, media, audience, destination, holdout, true effect: the chance a reached person buys
    # because of the ad); packs for the platforms the simulation plays (demo.campaigns: md5 platforms)
    ("OE-DEMO-MEMBERS", "oceanengine", "demo_members", "oceanengine", 0.2, 0.05),
    ("TX-DEMO-INTEREST", "tencent", "interested_not_bought", "tencent", 0.2, 0.06),
    ("OE-DEMO-IMPORTANT", "oceanengine", "important_customers", "oceanengine", 0.2, 0.02),
)
DEMO_MEMBERS = {
    "name": "demo_members",
    "description": "Every member, retargeted on Oceanengine (the demo's measured campaign)",
    "rule": {"all": [{"tag": "is_member", "op": "=", "value": True}]},
}


def demo_campaigns(spark, settings: Settings, dt: _dt.date) -> list[str]:
    """Register the demo campaigns on the example audiences' packs (written again with a holdout) and
    simulate them on the demo's later dates (:mod:`demo.campaigns`): the daily effect stage measures them.

    Returns:
        One line per campaign for the console; nothing when the demo has a single date.
    """
    import json

    from audiences.errors import AudienceError
    from demo.campaigns import CampaignSpec, simulate_campaign
    from jobs import audiences, effect

    args = json.loads((Path(settings.truth_root) / "generation.json").read_text(encoding="utf-8"))
    last = _dt.date.fromisoformat(args["start"]) + _dt.timedelta(days=int(args["days"]) - 1)
    if last <= dt:
        return []
    lines = []
    v = audiences.create(spark, settings, DEMO_MEMBERS, dt=dt, created_by="demo")
    lines.append(f"audience {v.audience_id}@{v.version}: {v.size:,} people")
    for campaign_id, media, audience, destination, holdout, true_effect in DEMO_CAMPAIGNS:
        try:
            v = audiences.show(spark, settings, audience)
            pack = f"{v.audience_id}/v{v.version}/{destination}"
            start = dt + _dt.timedelta(days=1)
            doc = {"campaign_id": campaign_id, "media": media, "pack": pack, "start": start, "end": last,
                   "budget": 2000, "holdout": holdout, "attribution_window_days": 0}  # fmt: skip
            reg = effect.register(spark, settings, doc, registered_by="demo")
        except AudienceError as exc:
            lines.append(f"campaign {campaign_id} not registered: {exc}")
            continue
        truth = simulate_campaign(
            Path(settings.landing_root), Path(settings.truth_root),
            CampaignSpec(campaign_id, media, Path(settings.packs_root) / pack, doc["start"], last,
                         true_effect=true_effect, window_days=0),
        )  # fmt: skip
        lines += reg.lines()
        lines.append(
            f"  simulated: {truth.reached_people:,} reached, {truth.impressions:,} impressions, cost "
            f"{truth.cost:,.2f}; truth: {truth.true_incremental_purchasers:,} incremental purchasers"
        )
    return lines


def stages() -> list[Stage]:
    """The stages that exist, in pipeline order (ingest -> identity -> tags -> audiences -> packs)."""
    return [
        Stage("ingest", _ingest_all),
        Stage("identity", _identity),
        Stage("tags", _tags),
        Stage("audiences", _audiences),
        Stage("creators", _creators),
        Stage("effect", _effect),
    ]


def generate_population(
    settings: Settings,
    *,
    persons: int,
    days: int,
    start: _dt.date,
    seed: int,
    history_days: int,
    progress: Progress | None = None,
) -> StageResult:
    """Write a fresh demo population into the landing and truth folders of ``settings``."""
    from demo import generate
    from demo.creators import DEMO_MIN_CREATORS

    for folder in (settings.landing_root, settings.truth_root):
        shutil.rmtree(folder, ignore_errors=True)
    with measure("generate") as result:
        summary = generate(
            Path(settings.landing_root),
            Path(settings.truth_root),
            persons=persons,
            start=start,
            days=days,
            history_days=history_days,
            seed=seed,
            progress=progress,
            creators=max(DEMO_MIN_CREATORS, persons // 50),
        )
        result.rows_in = persons
        result.rows_out = sum(summary.rows.values())
        result.extra = {"rows": dict(summary.rows), "dates": [d.isoformat() for d in summary.dates]}
    return result


def run_stages(
    settings: Settings,
    dates: list[_dt.date],
    *,
    progress: Progress | None = None,
    only: list[str] | None = None,
) -> list[StageResult]:
    """Run every stage for each date in order, on the engine chosen by ``settings``.

    Returns:
        One result per stage and date, in the order run.
    """
    todo = [s for s in stages() if only is None or s.name in only]
    if not todo:
        return []
    from cdp.engine import get_spark

    spark = get_spark(settings)
    results = []
    for day in dates:
        for stage in todo:
            if progress:
                progress(f"{stage.name} {day.isoformat()}")
            with measure(f"{stage.name} {day.isoformat()}") as result:
                stage.run(spark, settings, day, result)
            results.append(result)
    return results
