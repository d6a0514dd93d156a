"""The effect stage at the bench's size: campaigns on packs of a rule audience, simulated by the demo's
platform (:mod:`demo.campaigns`) on the day after the bench's dates, ingested, then the daily effect stage
timed (seconds, CPU-seconds, peak memory) with the lift it measured beside the simulation's truth."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cdp.measure import measure, results_table
from cdp.settings import Settings

AUDIENCE = {"name": "bench_members", "rule": {"all": [{"tag": "is_member", "op": "=", "value": True}]}}
CAMPAIGNS = (
    # campaign id, media (= destination), holdout, true effect
    ("OE-BENCH-1", "oceanengine", 0.1, 0.05),
    ("TX-BENCH-1", "tencent", 0.2, 0.02),
)


def effect_bench(spark, settings: Settings, day: _dt.date, console: Console) -> dict[str, Any]:
    """Register the bench campaigns (packs written with their holdout), simulate them on ``day + 1``, ingest
    that day's delivery logs, orders and events, and time ``jobs.effect.run`` for it.

    Returns:
        The figures: stage timings, and per campaign the measured incremental purchasers with their interval
        and the truth.
    """
    from demo.campaigns import CampaignSpec, simulate_campaign
    from jobs import audiences, effect, ingest

    nxt = day + _dt.timedelta(days=1)
    results, truths = [], {}
    with measure("effect: register (packs with holdout)") as r:
        v = audiences.create(spark, settings, AUDIENCE, dt=day, created_by="bench")
        for campaign_id, media, holdout, _ in CAMPAIGNS:
            effect.register(
                spark,
                settings,
                {
                    "campaign_id": campaign_id,
                    "media": media,
                    "pack": f"{v.audience_id}/v{v.version}/{media}",
                    "start": nxt,
                    "end": nxt,
                    "holdout": holdout,
                    "attribution_window_days": 0,
                    "budget": 10_000,
                },
                registered_by="bench",
            )
        r.rows_in = v.size
    results.append(r)
    with measure("effect: simulate campaigns") as r:
        for campaign_id, media, _, true_effect in CAMPAIGNS:
            spec = CampaignSpec(
                campaign_id,
                media,
                Path(settings.packs_root) / v.audience_id / f"v{v.version}" / media,
                nxt,
                nxt,
                true_effect=true_effect,
                window_days=0,
            )
            truths[campaign_id] = simulate_campaign(
                Path(settings.landing_root), Path(settings.truth_root), spec
            )
        r.rows_out = sum(t.impressions for t in truths.values())
    results.append(r)
    with measure(f"effect: ingest {nxt}") as r:
        for source in ("ad_delivery", "orders", "events"):
            ingest.run(spark, settings, source, nxt)
    results.append(r)
    with measure(f"effect {nxt}") as r:
        report = effect.run(spark, settings, nxt)
        r.rows_in, r.rows_out = report.delivery_rows, report.attributed_orders
    results.append(r)
    console.print(results_table("effect stage with the bench's campaigns", results))
    table = Table(title="measured lift against the simulation's truth (incremental purchasers)")
    for col in ("campaign", "pack members", "held out", "measured", "95% CI", "truth", "covered"):
        table.add_column(col, justify="left" if col == "campaign" else "right")
    lifts = {x["campaign_id"]: x for x in report.lifts if x["metric"] == "conversion_rate"}
    out: dict[str, Any] = {"stages": [x.__dict__ for x in results], "campaigns": {}}
    for campaign_id, t in truths.items():
        x = lifts.get(campaign_id) or {}
        low, high = x.get("incremental_ci_low"), x.get("incremental_ci_high")
        covered = low is not None and low <= t.true_incremental_purchasers <= high
        table.add_row(
            campaign_id,
            f"{x.get('treatment_n', 0):,}",
            f"{x.get('control_n', 0):,}",
            f"{x.get('incremental') or 0:,.0f}",
            f"{low or 0:,.0f} to {high or 0:,.0f}",
            f"{t.true_incremental_purchasers:,}",
            str(covered),
        )
        out["campaigns"][campaign_id] = {
            "measured": x.get("incremental"),
            "ci": [low, high],
            "truth": t.true_incremental_purchasers,
            "covered": covered,
        }
    console.print(table)
    return out
