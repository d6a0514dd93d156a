"""Benchmark of probabilistic linkage on attribute-only records (``demo.persons_noisy``): this project's
Fellegi-Sunter stage on the engine (``identity.linkage.link``) next to Splink on DuckDB, on the same records
in the same run, with candidate pairs, seconds, peak memory and pairwise quality. Figures, not pass/fail.

Each side runs in its own subprocess so that its peak RSS is its own (the embedded engine runs in-process).
Splink reads the records already normalised (names in pinyin, dates as YYYY-MM-DD); that normalisation is
timed apart (``normalise s``), while this project's stage normalises inside its run.

    python -m bench.linkage --records 100000 [1000000] [--out figures.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

SEED = 7
RECORDS_PER_PERSON = 1.5  # the exports hold about 0.8 and 0.7 of the population


def _prepare(folder: Path, records: int) -> dict:
    """Generate the records, the truth pairs and Splink's normalised input under ``folder``."""
    import pandas as pd

    from demo.persons_noisy import generate_exports, true_pairs
    from identity.linkage import normalize_date, normalize_digits, normalize_name, normalize_text

    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    raw, truth = generate_exports(int(records / RECORDS_PER_PERSON), seed=SEED)
    raw.to_parquet(folder / "records.parquet", index=False)
    true_pairs(raw, truth).to_parquet(folder / "pairs.parquet", index=False)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    norm = pd.DataFrame({"unique_id": raw["source"] + "\u001f" + raw["record_key"]})
    norm["name"] = [normalize_name(v) for v in raw["name"].astype(object)]
    dates = [normalize_date(v) for v in raw["birth_date"].astype(object)]
    norm["birth_date"] = [f"{d[:4]}-{d[4:6]}-{d[6:]}" if d else None for d in dates]
    norm["phone"] = [normalize_digits(v) for v in raw["phone"].astype(object)]
    norm["address"] = [normalize_text(v) for v in raw["address"].astype(object)]
    norm["postcode"] = [normalize_digits(v) for v in raw["postcode"].astype(object)]
    norm["name_initials"] = [
        "".join(t[0] for t in n.split()) if isinstance(n, str) else None for n in norm["name"]
    ]
    norm["birth_year"] = [d[:4] if d else None for d in dates]
    norm.to_parquet(folder / "normalised.parquet", index=False)
    return {
        "records": len(raw),
        "generate_s": round(generated, 1),
        "normalise_s": round(time.perf_counter() - started, 1),
    }


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _ours(folder: Path) -> dict:
    """This project's stage on the embedded engine, with the demo's linkage rules."""
    import pandas as pd

    from cdp.engine import get_spark
    from cdp.run import parquet_checkpoint
    from cdp.settings import Settings
    from demo.persons_noisy import LINKAGE_RULES
    from identity.linkage import link, score_linkage
    from identity.rules import load_rules

    settings = Settings.from_env().with_data_root(folder / "engine")
    spark = get_spark(settings)
    model = load_rules(LINKAGE_RULES).probabilistic
    started = time.perf_counter()
    records = spark.read.parquet(str(folder / "records.parquet"))
    result = link(records, model, parquet_checkpoint(spark, folder / "engine" / "scratch"))
    accepted = result.accepted(model.threshold).select("uid_l", "uid_r").toPandas()
    seconds = time.perf_counter() - started
    scores = score_linkage(accepted, pd.read_parquet(folder / "pairs.parquet"))
    return {
        "candidates": result.candidates,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(_peak_mb()),
        **scores.as_dict(),
    }


def _splink(folder: Path) -> dict:
    """Splink 5 on DuckDB with the same blocking rules, comparable comparisons, u from random pairs, the
    prior from a deterministic rule, m by EM per blocking rule, and the same threshold."""
    import duckdb
    import pandas as pd
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    from demo.persons_noisy import LINKAGE_RULES
    from identity.linkage import score_linkage
    from identity.rules import load_rules

    model = load_rules(LINKAGE_RULES).probabilistic
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET threads TO 1")  # the engine side runs single-threaded UDFs on a shared machine too
    db = DuckDBAPI(connection=con)
    data = db.register(pd.read_parquet(folder / "normalised.parquet"))
    blocking = [
        block_on("name"),
        block_on("birth_date"),
        block_on("phone"),
        block_on("name_initials", "birth_year"),
        block_on("postcode"),
    ]
    settings = SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=blocking,
        comparisons=[
            cl.JaroWinklerAtThresholds("name", [0.92, 0.85]).configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("birth_date", input_is_string=True),
            cl.LevenshteinAtThresholds("phone", [1, 2]),
            cl.JaroWinklerAtThresholds("address", [0.9]),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(data, settings, log_level="WARNING")
    linker.training.estimate_probability_two_random_records_match(
        [block_on("name", "birth_date")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=model.em.u_pairs, seed=model.em.seed)
    for rule in (block_on("name"), block_on("birth_date"), block_on("postcode")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predicted = linker.inference.predict(threshold_match_probability=model.threshold).as_pandas_dataframe()
    seconds = time.perf_counter() - started
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    # Not timed: Splink's own count of the pairs its blocking rules generate.
    counted = count_comparisons_from_blocking_rules(
        data, blocking_rules=blocking, link_type="dedupe_only", record_sample_proportion=1.0
    )
    pairs = predicted.rename(columns={"unique_id_l": "uid_l", "unique_id_r": "uid_r"})[["uid_l", "uid_r"]]
    scores = score_linkage(pairs, pd.read_parquet(folder / "pairs.parquet"))
    return {
        "candidates": int(counted[-1]["cumulative_comparison_count"]),
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(_peak_mb()),
        **scores.as_dict(),
    }


def _child(side: str, folder: Path) -> dict:
    """Run one side in a fresh interpreter and read its figures."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.linkage", "--side", side, "--folder", str(folder)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(lines[-1])


def linkage_bench(sizes: list[int], data_root: Path, console=None) -> list[dict]:
    """Both sides at each size; prints a table when ``console`` is given.

    Returns:
        One dict per size: ``records``, generation figures, ``ours`` and ``splink`` figures and ``ratio``
        (our seconds / Splink's).
    """
    from rich.table import Table

    runs = []
    for n in sizes:
        folder = data_root / f"linkage_{n}"
        prepared = _prepare(folder, n)
        ours, splink = _child("ours", folder), _child("splink", folder)
        ratio = (
            round(ours["seconds"] / splink["seconds"], 2)
            if "seconds" in ours and "seconds" in splink
            else None
        )
        runs.append({**prepared, "ours": ours, "splink": splink, "ratio": ratio})
    if console is not None:
        table = Table(title="probabilistic linkage, attribute-only records (ours: engine; Splink: DuckDB)")
        cols = ("records", "side", "candidate pairs", "seconds", "peak RSS MB", "precision", "recall*", "F1")
        for c in cols:
            table.add_column(c, justify="left" if c == "side" else "right")
        for r in runs:
            for side in ("ours", "splink"):
                f = r[side]
                if "error" in f:
                    table.add_row(f"{r['records']:,}", side, f["error"][:60], "", "", "", "", "")
                    continue
                table.add_row(
                    f"{r['records']:,}",
                    side,
                    f"{f['candidates']:,}",
                    f"{f['seconds']:.1f}",
                    f"{f['peak_rss_mb']:,}",
                    f"{f['precision']:.4f}",
                    f"{f['recall_sharing']:.4f}",
                    f"{f['f1']:.4f}",
                )
            table.add_row("", "ratio ours/Splink", "", f"{r['ratio']}" if r["ratio"] else "-", "", "", "", "")
        console.print(table)
        console.print(
            "recall*: of the true pairs sharing at least one attribute; Splink's input normalised "
            f"beforehand ({', '.join(str(r['normalise_s']) + ' s' for r in runs)})"
        )
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000])
    parser.add_argument("--data-root", type=Path, default=Path("data/bench"))
    parser.add_argument("--out", type=Path, help="write the figures as JSON")
    parser.add_argument("--side", choices=["ours", "splink"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        figures = _ours(args.folder) if args.side == "ours" else _splink(args.folder)
        print(json.dumps(figures))
        return 0
    from rich.console import Console

    runs = linkage_bench(args.records, args.data_root, Console())
    if args.out:
        args.out.write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
