"""``make bench``: generate populations of given sizes and time every stage that exists, printing a table
of stage, rows in/out, seconds and peak memory. Figures, not pass/fail: speed targets live here, not in
tests."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

from cdp.measure import results_table
from cdp.settings import Settings
from runners.local import generate_population, run_stages


def machine() -> str:
    """A one-line description of the machine the figures come from."""
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}"
    )


def per_source_table(stage: str, rows: list[dict]) -> Table:
    """Ingest throughput per source: rows in, rows to silver, seconds, rows per second."""
    table = Table(
        title=f"{stage}: per source",
        caption="sources run CDP_INGEST_PARALLEL at a time (default 2): their seconds overlap",
    )
    for col in ("source", "rows in", "to silver", "quarantined", "seconds", "rows/s"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for r in rows:
        table.add_row(
            r["source"],
            f"{r['rows_in']:,}",
            f"{r['silver_written']:,}",
            f"{r['quarantined']:,}",
            f"{r['seconds']:.1f}",
            f"{r['rows_per_s'] or 0:,}",
        )
    return table


def quality_tables(n: int, suites: list[dict], shares: list[dict]) -> tuple[Table, Table]:
    """Validation time per table, and each gate's share of the stage it guards."""
    per_table = Table(title=f"{n:,} persons: validation per table (suite on the date's rows)")
    for col in ("table", "rows", "expectations", "seconds", "passed"):
        per_table.add_column(col, justify="left" if col == "table" else "right")
    for r in suites:
        per_table.add_row(
            r["table"], f"{r['rows']:,}", str(r["expectations"]), f"{r['seconds']:.2f}", str(r["passed"])
        )
    gates = Table(title=f"{n:,} persons: quality gates' share of their stage")
    for col in ("stage", "dt", "tables", "gate s", "stage s", "share"):
        gates.add_column(col, justify="left" if col in ("stage", "tables") else "right")
    for r in shares:
        gates.add_row(
            r["stage"],
            r["dt"],
            str(len(r["tables"])),
            f"{r['gate_seconds']:.2f}",
            f"{r['stage_seconds']:.1f}" if r["stage_seconds"] else "?",
            f"{r['share']:.1%}" if r["share"] is not None else "?",
        )
    return per_table, gates


def _quality_figures(run_settings: Settings, dates: list[_dt.date], results: list) -> tuple[list, list]:
    from bench.quality import stage_gate_shares, time_suites
    from cdp.engine import get_spark
    from cdp.lake import Lake

    spark = get_spark(run_settings)
    lake = Lake(spark, run_settings.lake_root)
    shares = stage_gate_shares(lake, dates, {r.stage: r.seconds for r in results})
    return time_suites(spark, run_settings, dates[-1]), shares


def _component_figures(
    run_settings: Settings, day: _dt.date, n: int, data_root: Path, console: Console
) -> dict[str, object]:
    """Connected components on the date's kept OneID edges (gold.id_edges): this package's Spark rounds
    against scipy (the single-machine floor) and networkx (up to 100k persons: slow and memory-hungry)."""
    from pyspark.sql import functions as F

    from bench.components import bench_components
    from cdp.engine import get_spark
    from cdp.lake import Lake

    spark = get_spark(run_settings)
    edges = (
        Lake(spark, run_settings.lake_root)
        .read("gold.id_edges")
        .where(F.col("dt") == F.lit(day))
        .select(F.col("src_vid").alias("src"), F.col("dst_vid").alias("dst"))
        .distinct()
        .toPandas()  # a benchmark input: the three implementations get the same edge list
    )
    scratch = data_root / f"components_{n}"
    shutil.rmtree(scratch, ignore_errors=True)
    figures = bench_components(spark, edges, scratch, with_networkx=n <= 100_000)
    table = Table(title=f"{n:,} persons: connected components on gold.id_edges ({day})")
    for col in ("edges", "vertices", "components", "Spark s", "rounds", "scipy s", "networkx s",
                "Spark/scipy", "Spark/networkx", "agree"):  # fmt: skip
        table.add_column(col, justify="right")
    keys = ("edges", "vertices", "components", "spark_seconds", "spark_rounds", "scipy_seconds",
            "networkx_seconds", "spark_over_scipy", "spark_over_networkx", "agrees")  # fmt: skip

    def cell(value: object) -> str:
        if value is None:
            return "-"
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)

    table.add_row(*(cell(figures[k]) for k in keys))
    console.print(table)
    return figures


def _model_figures(run_settings: Settings, day: _dt.date, n: int, console: Console) -> list[dict]:
    """Each predictive model's holdout AUC beside the BG/NBD benchmark's and the baseline's (recency for the
    purchase propensity), from the date's gold.models rows."""
    from pyspark.sql import functions as F

    from cdp.engine import get_spark
    from cdp.lake import Lake

    lake = Lake(get_spark(run_settings), run_settings.lake_root)
    if not lake.exists("gold.models"):
        return []
    models = lake.read("gold.models").where(F.col("dt") == F.lit(day))
    names = ("tag_id", "algorithm", "metric", "metric_value", "btyd_auc", "baseline_value", "holdout_rows")
    rows = [r.asDict() for r in models.select(*names, "metrics").orderBy("tag_id").collect()]
    for r in rows:  # the trained model's own value, also when BG/NBD ranked the holdout better and scores
        r["trained_value"] = json.loads(r.pop("metrics") or "{}").get("model_auc", r["metric_value"])
    table = Table(title=f"{n:,} persons: predictive models on the holdout ({day}), against BG/NBD")
    for col in ("tag", "published", "metric", "trained model", "BG/NBD AUC", "baseline", "holdout rows",
                "model - BG/NBD"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("tag", "published", "metric") else "right")

    def cell(value: float | None) -> str:
        return "-" if value is None or value != value else f"{value:.3f}"

    for r in rows:
        both = r["btyd_auc"] is not None and r["trained_value"] is not None
        gap = r["trained_value"] - r["btyd_auc"] if both else None
        table.add_row(
            r["tag_id"], r["algorithm"], r["metric"], cell(r["trained_value"]), cell(r["btyd_auc"]),
            cell(r["baseline_value"]), f"{r['holdout_rows']:,}", cell(gap),
        )  # fmt: skip
    console.print(table)
    return rows


def _previous_stages(path: Path) -> dict[str, dict] | None:
    """The stage figures of the last bench of the same size (by stage name), or None on a first run."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _save_stages(path: Path, results: list) -> None:
    """Keep this run's stage figures for the next bench of the same size to compare with."""
    figures: dict[str, object] = {
        r.stage: {"seconds": r.seconds, "cpu_seconds": r.cpu_seconds, "peak_rss_mb": r.peak_rss_mb}
        for r in results
    }
    figures["_when"] = _dt.datetime.now().isoformat(timespec="seconds")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=1))


def run_bench(
    settings: Settings,
    sizes: list[int],
    *,
    days: int,
    data_root: Path,
    console: Console,
    audience_profiles: int | None = None,
) -> dict[str, object]:
    """Run generation and every stage for each population size and print one table per size; with
    ``audience_profiles``, also time the audience operations on a lake of that many profiles replicated
    from the last population (:func:`bench.audiences.replicate_profiles`).

    Returns:
        The figures as a JSON-ready dict.
    """
    report: dict[str, object] = {"machine": machine(), "engine": settings.engine, "runs": []}
    console.print(f"machine: {report['machine']}; engine: {settings.engine}")
    start = _dt.date(2026, 11, 1)
    for n in sizes:
        shutil.rmtree(data_root / f"persons_{n}", ignore_errors=True)  # every figure from an empty lake
        run_settings = settings.with_data_root(data_root / f"persons_{n}")
        run_settings.ensure_local_pii_key()
        with console.status(f"{n:,} persons") as status:
            gen = generate_population(
                run_settings,
                persons=n,
                days=days,
                start=start,
                seed=7,
                history_days=365,
                progress=lambda m, n=n: status.update(f"{n:,} persons: generate: {m}"),
            )
            dates = [start + _dt.timedelta(days=i) for i in range(days)]
            results = [
                gen,
                *run_stages(
                    run_settings, dates, progress=lambda m, n=n: status.update(f"{n:,} persons: {m}")
                ),
            ]
        last_run = data_root / f"last_run_{n}.json"
        previous = _previous_stages(last_run)
        console.print(results_table(f"{n:,} persons, {days} day(s)", results, previous))
        if previous is not None:
            console.print(f"previous figures: {last_run} ({previous.get('_when', 'unknown time')})")
        _save_stages(last_run, results)
        for r in results:
            if r.extra.get("per_source"):
                console.print(per_source_table(r.stage, r.extra["per_source"]))
        from bench.tags import tag_bench
        from cdp.engine import get_spark

        with console.status(f"{n:,} persons: tag build per layer, fact tags on classic Spark"):
            tag_figures = tag_bench(get_spark(run_settings), run_settings, dates[-1], console)
        tag_figures["models"] = _model_figures(run_settings, dates[-1], n, console)
        from bench.audiences import audience_bench

        with console.status(f"{n:,} persons: estimate, create, lookalike, export"):
            audience_figures = audience_bench(get_spark(run_settings), run_settings, dates[-1], console)
        from bench.effect import effect_bench

        with console.status(f"{n:,} persons: campaigns on packs, simulated, and the effect stage"):
            effect_figures = effect_bench(get_spark(run_settings), run_settings, dates[-1], console)
        from bench.creators import creator_bench

        with console.status(f"{n:,} persons: creator match, creator rankings on the truth"):
            creator_figures = creator_bench(get_spark(run_settings), run_settings, dates[-1], console)
        with console.status(f"{n:,} persons: connected components on the OneID edges, scipy, networkx"):
            component_figures = _component_figures(run_settings, dates[-1], n, data_root, console)
        with console.status(f"{n:,} persons: timing the quality suites"):
            suites, shares = _quality_figures(run_settings, dates, results)
        for table in quality_tables(n, suites, shares):
            console.print(table)
        report["runs"].append(
            {
                "persons": n,
                "stages": [r.__dict__ for r in results],
                "validation": suites,
                "gate_shares": shares,
                "tags": tag_figures,
                "audiences": audience_figures,
                "effect": effect_figures,
                "creators": creator_figures,
                "components": component_figures,
            }
        )
    if audience_profiles and sizes:
        from bench.audiences import audience_bench, replicate_profiles
        from cdp.engine import get_spark

        source = settings.with_data_root(data_root / f"persons_{sizes[-1]}")
        target = settings.with_data_root(data_root / f"profiles_{audience_profiles}")
        with console.status(f"{audience_profiles:,} profiles: replicating, then audience operations"):
            copies = replicate_profiles(source, target, audience_profiles)
            console.print(f"{copies} copies of the {sizes[-1]:,}-person profiles (identifiers repeat)")
            figures = audience_bench(get_spark(target), target, start + _dt.timedelta(days=days - 1), console)
        report["audiences_replicated"] = {"copies": copies, "from_persons": sizes[-1], **figures}
    return report
