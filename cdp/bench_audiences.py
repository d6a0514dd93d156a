"""``make bench`` figures for audiences on a built population: estimate latency, create time, lookalike
train + score time, and export time of a pack of (up to) 100,000 members."""

from __future__ import annotations

import datetime as _dt
import statistics
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from cdp.settings import Settings

RULE = {
    "all": [
        {"tag": "is_member", "op": "=", "value": True},
        {
            "any": [
                {"tag": "purchase_count_90d", "op": ">=", "value": 1},
                {"tag": "active_days_30d", "op": ">=", "value": 2},
            ]
        },
    ]
}
SEED_RULE = {"tag": "purchase_count_90d", "op": ">=", "value": 2}
PACK_MEMBERS = 100_000


def audience_bench(spark, settings: Settings, dt: _dt.date, console: Console) -> dict[str, Any]:
    """Time the audience operations on the lake of ``settings`` and print a table.

    Returns:
        The figures (seconds, sizes, the lookalike's evaluation headline).
    """
    from jobs import audiences as job

    figures: dict[str, Any] = {}
    job.estimate(spark, settings, RULE, dt)  # warm-up: the first query plans and opens the table
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        est = job.estimate(spark, settings, RULE, dt)
        runs.append(time.perf_counter() - t)
    figures["estimate_seconds_median"] = round(statistics.median(runs), 3)
    figures["estimate_size"], figures["population"] = est.size, est.population

    t = time.perf_counter()
    v = job.create(spark, settings, {"name": "bench rule", "rule": RULE}, dt=dt, created_by="bench")
    figures["create_seconds"], figures["create_size"] = round(time.perf_counter() - t, 2), v.size

    job.create(spark, settings, {"name": "bench seed", "rule": SEED_RULE}, dt=dt, created_by="bench")
    size = min(PACK_MEMBERS, est.population // 2)
    t = time.perf_counter()
    res = job.lookalike(spark, settings, "bench_seed", size=size, name="bench lookalike", created_by="bench")
    figures["lookalike_seconds"] = round(time.perf_counter() - t, 2)
    figures["lookalike_train_seconds"], figures["lookalike_score_seconds"] = (
        res.train_seconds,
        res.score_seconds,
    )
    figures["lookalike_seed"], figures["lookalike_size"] = res.seed_size, res.audience.size
    if res.evaluation is not None:
        figures["lookalike_lift_1pct"] = {
            "model": round(res.evaluation.model.lift["1%"], 2),
            "centroid": round(res.evaluation.centroid.lift["1%"], 2),
            "logistic": round(res.evaluation.logistic.lift["1%"], 2),
        }

    t = time.perf_counter()
    m = job.export(spark, settings, "bench_lookalike", "tencent", min_size=1, created_by="bench")
    figures["export_seconds"], figures["export_people"], figures["export_lines"] = (
        round(time.perf_counter() - t, 2),
        m.people,
        m.lines,
    )

    table = Table(title=f"audiences on {est.population:,} profiles")
    table.add_column("operation")
    table.add_column("seconds", justify="right")
    table.add_column("size", justify="right")
    table.add_row("estimate (median of 5)", f"{figures['estimate_seconds_median']:.2f}", f"{est.size:,}")
    table.add_row("create", f"{figures['create_seconds']:.1f}", f"{v.size:,}")
    table.add_row(
        f"lookalike (seed {res.seed_size:,}; train {res.train_seconds:.0f} s incl. evaluation, "
        f"score {res.score_seconds:.0f} s)",
        f"{figures['lookalike_seconds']:.1f}",
        f"{res.audience.size:,}",
    )
    table.add_row(f"export tencent ({m.lines:,} lines)", f"{figures['export_seconds']:.1f}", f"{m.people:,}")
    console.print(table)
    if res.evaluation is not None:
        for line in res.evaluation.lines():
            console.print(line)
    return figures
