"""``make bench`` figures for audiences on a built population: estimate latency, create time, lookalike
train + score time, and export time of a pack of (up to) 100,000 members; and the lake they run on at a
given number of profiles, made by replicating a built population's profiles."""

from __future__ import annotations

import datetime as _dt
import math
import shutil
import statistics
import time
from pathlib import Path
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
        figures["lookalike_eval_seconds"] = res.evaluation.seconds  # part of the train seconds
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
        f"lookalike (seed {res.seed_size:,}; train {res.train_seconds:.0f} s incl. evaluation "
        f"{figures.get('lookalike_eval_seconds', 0):.0f} s, score {res.score_seconds:.0f} s)",
        f"{figures['lookalike_seconds']:.1f}",
        f"{res.audience.size:,}",
    )
    table.add_row(f"export tencent ({m.lines:,} lines)", f"{figures['export_seconds']:.1f}", f"{m.people:,}")
    console.print(table)
    if res.evaluation is not None:
        for line in res.evaluation.lines():
            console.print(line)
    return figures


def replicate_profiles(source: Settings, target: Settings, profiles: int) -> int:
    """Make a lake of at least ``profiles`` profiles for the audience benchmark from a built one.

    The source lake is copied without its audiences, and ``gold.profile`` and ``gold.oneid_map`` are
    repeated ``k`` times, copy ``i`` under OneIDs shifted by ``i * 10**12``. Identifiers are not changed, so
    a pack's lines repeat across copies (the export deduplicates them) and tag distributions are the
    source's. Used where a real population of that size cannot be built (``make bench`` at 1M persons
    needs more memory than 24 GiB in the tags stage on the embedded engine).

    Returns:
        The number of copies.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable, write_deltalake

    src, dst = Path(source.lake_root), Path(target.lake_root)
    base_profiles = DeltaTable(str(src / "gold" / "profile")).to_pyarrow_table()
    copies = max(1, math.ceil(profiles / max(base_profiles.num_rows, 1)))
    shutil.rmtree(target.data_root, ignore_errors=True)
    skip = {"audiences", "audience_members", "audience_exports", "profile", "oneid_map"}
    shutil.copytree(src, dst, ignore=lambda folder, names: [n for n in names if n in skip])
    if source.pii_key_file.exists():
        shutil.copy2(source.pii_key_file, target.pii_key_file)
    for table, base in (
        ("profile", base_profiles),
        ("oneid_map", DeltaTable(str(src / "gold" / "oneid_map")).to_pyarrow_table()),
    ):
        column = base.schema.get_field_index("oneid")
        kind = base.schema.field("oneid").type
        parts = [
            base.set_column(
                column, "oneid", pc.cast(pc.add(pc.cast(base["oneid"], pa.int64()), i * 10**12), kind)
            )
            for i in range(copies)
        ]
        write_deltalake(str(dst / "gold" / table), pa.concat_tables(parts), partition_by=["dt"])
    return copies
