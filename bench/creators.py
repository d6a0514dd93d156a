"""``make bench``: creator figures on a benchmark population (its creator build is timed as a stage by
``runners.local``): a creator match for a target audience, and each ranking against the demo truth.

    gold.profile (women) -> jobs.creators.match_target (engagers computed in the query) -> seconds
    demo truth -> potential model and match precision against their baselines (demo.creators_eval)
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from rich.console import Console
from rich.table import Table

from cdp.lake import Lake
from cdp.settings import Settings


def creator_bench(spark: SparkSession, settings: Settings, dt: _dt.date, console: Console) -> dict[str, Any]:
    """Time a creator match and score the creator rankings on the truth; print one table.

    Returns:
        The figures (seconds, precisions), for the bench report.
    """
    from demo.creators_eval import content_on_truth, match_on_truth, potential_on_truth
    from jobs import creators

    lake = Lake.from_settings(spark, settings)
    profile = lake.read_dt("gold.profile", lake.latest_dt("gold.profile", on_or_before=dt))
    target = profile.where(F.col("gender") == "F").select("oneid")
    started = time.perf_counter()
    _, ranked, totals = creators.match_target(spark, settings, target, dt=dt)
    match_seconds = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    young = match_on_truth(spark, settings, "young", dt)
    truth_seconds = round(time.perf_counter() - started, 2)
    potential = potential_on_truth(spark, settings, dt)
    content = content_on_truth(spark, settings, dt) if lake.exists("gold.creator_content") else None
    creators_total = lake.read_dt("gold.creator_features", dt).count()
    table = Table(
        title=f"creators on {dt}: {creators_total:,} creators, {len(ranked)} with an engaged audience"
    )
    for col in ("figure", "value", "baselines"):
        table.add_column(col)
    table.add_row("match seconds (women)", f"{match_seconds}", f"target {totals['target_population']:,}")
    table.add_row("match young on truth seconds", f"{truth_seconds}", "")
    rows = (
        (f"match precision@{len(young.leaning)} (young)", young.precision["match"], young.precision),
        (f"potential precision@{potential.k}", potential.precision["model"], potential.precision),
    )
    if content is not None:
        rows += ((f"content precision@{content.k} (live)", content.precision["model"], content.precision),)
    for name, value, base in rows:
        others = ", ".join(f"{k} {v:.2f}" for k, v in base.items() if k not in ("match", "model"))
        table.add_row(name, f"{value:.2f}", others)
    console.print(table)
    return {
        "creators": creators_total,
        "engaged_creators": len(ranked),
        "match_seconds": match_seconds,
        "match_young": young.precision,
        "potential": potential.precision,
        "potential_k": potential.k,
        "content": None
        if content is None
        else {"precision": content.precision, "median_ape": content.median_ape},
    }
