"""``make bench`` for tags: the tag build timed per layer, and the same fact-tag aggregation on the embedded
engine and on classic local JVM Spark (parquet in and out, as classic has no Delta here), with the ratio.

The classic run happens in a subprocess (a Python process cannot hold a classic session next to Spark
Connect ones): ``python -m bench.tags classic <folder>``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cdp.lake import silver_table
from cdp.measure import StageResult, measure
from cdp.settings import Settings

FACT_VIEWS = ("orders", "events", "ad_events", "kol_engagement")


def time_layers(spark, settings: Settings, dt: _dt.date) -> list[StageResult]:
    """Rebuild each layer of ``dt`` alone (lower layers recomputed in memory) and time it."""
    from jobs import tags

    results = []
    for layer in ("raw", "fact", "model", "predictive"):
        with measure(f"tags {layer}") as result:
            report = tags.run(spark, settings, dt, [layer])
        result.rows_in, result.rows_out = report.oneids, len(report.tags)
        results.append(result)
    return results


def export_fact_inputs(spark, settings: Settings, dt: _dt.date, folder: Path) -> None:
    """Write the population and the as-of views the fact tags read to parquet under ``folder``."""
    from pyspark.sql import functions as F

    from cdp.lake import Lake
    from jobs.tags import MAP, view_specs
    from tags import load_catalog
    from tags.views import as_of_view, population, referenced_columns, with_oneid

    lake = Lake(spark, settings.lake_root)
    snapshot = lake.read(MAP).where(F.col("dt") == F.lit(dt))
    population(snapshot).write.mode("overwrite").parquet(str(folder / "population"))
    specs = view_specs(settings)
    fact = [t for t in load_catalog([]).layer("fact") if t.kind in ("aggregate", "query")]
    definitions = " ".join(t.model_dump_json() for t in fact)
    queries = [t.query for t in fact if t.kind == "query" and t.query]
    for view in FACT_VIEWS:
        silver = lake.read(silver_table(view)).where(F.col("_dt") <= F.lit(dt))
        keyed = silver.transform(with_oneid(specs[view], snapshot))
        # Only the columns the fact tags read, as the tags job keeps (the join holds fewer columns).
        kept = referenced_columns(specs[view], keyed.columns, definitions, queries)
        keyed = keyed if kept is None else keyed.select(*[f"`{c}`" for c in kept])
        keyed.transform(as_of_view(specs[view], dt)).write.mode("overwrite").parquet(str(folder / view))


def fact_aggregation(spark, folder: Path) -> float:
    """Seconds to compute every fact tag from the exported views and write them as parquet."""
    from tags import load_catalog
    from tags.build import source_tags

    catalog = load_catalog([])
    fact = [t for t in catalog.layer("fact") if t.kind in ("aggregate", "query")]
    views = {v: spark.read.parquet(str(folder / v)) for v in FACT_VIEWS}
    start = time.perf_counter()
    source_tags(spark.read.parquet(str(folder / "population")), views, fact).write.mode("overwrite").parquet(
        str(folder / "out")
    )
    return time.perf_counter() - start


def classic_fact_aggregation(folder: Path) -> float | None:
    """The same aggregation on classic local JVM Spark in a subprocess; None when it cannot start."""
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    env |= {"CDP_ENGINE": "classic", "CDP_SPARK_MASTER": f"local[{os.cpu_count() or 1}]"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.tags", "classic", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)["seconds"]
    return None


def tag_bench(spark, settings: Settings, dt: _dt.date, console: Console) -> dict[str, object]:
    """Per-layer timings and the fact aggregation on both engines for one population; prints two tables."""
    layers = time_layers(spark, settings, dt)
    folder = Path(settings.data_root) / "_bench_tags"
    export_fact_inputs(spark, settings, dt, folder)
    sail = fact_aggregation(spark, folder)
    classic = classic_fact_aggregation(folder)
    table = Table(title=f"tag build per layer, {dt}")
    for col in ("layer", "OneIDs", "tags", "seconds", "peak MB"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for r in layers:
        table.add_row(r.stage, f"{r.rows_in:,}", str(r.rows_out), f"{r.seconds:.1f}", f"{r.peak_rss_mb:,.0f}")
    console.print(table)
    ratio = classic / sail if classic and sail else None
    console.print(
        f"fact tags from parquet: embedded {sail:.1f} s, classic JVM Spark "
        + (f"{classic:.1f} s, classic/embedded {ratio:.2f}x" if classic else "did not start")
    )
    return {
        "layers": [r.__dict__ for r in layers],
        "fact_seconds_embedded": sail,
        "fact_seconds_classic": classic,
        "classic_over_embedded": ratio,
    }


def main(argv: list[str]) -> int:
    """``python -m bench.tags classic <folder>``: time the fact aggregation on this process's engine."""
    from cdp.engine import get_spark

    if len(argv) != 2 or argv[0] != "classic":
        print("usage: python -m bench.tags classic <folder>", file=sys.stderr)
        return 2
    spark = get_spark(Settings.from_env(), mode="classic")
    print(json.dumps({"seconds": fact_aggregation(spark, Path(argv[1]))}))
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
