"""``make chaos``: the fault-injection run. Kill pipeline stages at random moments, start pairs of the same
stage at once, and check that a rerun gives exactly the clean run's tables and that opted-out people never
leave.

    python -m bench.chaos [--persons 300] [--kills 8] [--pairs 4] [--seed N] [--stages ingest,identity,tags]

A small population is landed for two days; day 1 goes through ingest, identity and tags once (the base).
Day 2 then runs cleanly once, stage by stage, in worker processes (``python -m bench.chaos worker ...``),
keeping a copy of the lake before and after each stage. Then, for each trial, on a fresh copy of the lake
before a stage:

- **kill**: the stage starts and gets SIGKILL after a random delay (seeded; the seed is printed). Tables the
  killed run changed that differ from the clean result and are not marked half-written (readers would see
  them without being refused) count as *partial states visible*. The stage is rerun; any table of the stage
  that then differs from the clean run is a *bad rerun*, and the difference in rows *lost or doubled rows*.
- **pair**: two workers of the stage start 0 to 0.5 s apart; each either finishes or is refused by the other's
  lease. The tables must equal the clean run's.

Last, the consent cases on a copy after tags: a rule audience is made, opt-outs for some of its members are
ingested afterwards (dated later), and a pack is exported: every identifier of an opted-out person found
in the pack counts as *leaked*; then a consent batch fails and an export without override must be refused
(an export that goes through counts its opted-out identifiers as leaked too).

Compared per table, after dropping what differs by design between two correct runs: times (``*_at``,
``seconds``), run and model ids, encrypted columns (a fresh IV per value), file paths under the data root,
and the quality results log. Prints a table: runs, kills, partial states visible, bad reruns, lost or
doubled rows, leaked opted-out identifiers. Target: all zeros.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cdp.run import REFUSED  # a worker refused by another run's lease exits as the CLI and the jobs do

D1, D2 = _dt.date(2026, 11, 1), _dt.date(2026, 11, 2)
STAGE_TABLES = {
    "identity": (
        "gold.id_vertices",
        "gold.id_edges",
        "gold.id_pruned_edges",
        "gold.oneid_map",
        "gold.oneid_changes",
        "gold.identity_report",
    ),
    "tags": ("gold.tags", "gold.profile", "gold.tag_stats", "gold.models"),
}
SIDE_TABLES = ("gold.quality_results", "gold.ingest_runs", "vault.identifiers")
"""Append-only logs and lookups written beside a stage: compared after a rerun, not counted as partial."""
VOLATILE = {
    "gold.ingest_runs": ("run_id", "started_at", "seconds", "files_json", "message"),
    "gold.models": ("model_id", "trained_at", "path"),
    "gold.tag_stats": ("built_at", "detail"),
    "gold.identity_report": ("detail",),
}
"""Columns that differ between two correct runs, per table (besides times, ids and encrypted values)."""
_PATH = re.compile(r"\S*/(landing|lake|packs)/")
"""A path under a data root (each trial has its own copy)."""


# ---- worker: one stage for one date, in its own process --------------------------------------------------


def _worker(stage: str, dt: str, data_root: str) -> int:
    from cdp.engine import get_spark
    from cdp.leases import LeaseError
    from cdp.settings import Settings

    settings = Settings.from_env().with_data_root(data_root)
    spark = get_spark(settings)
    try:
        if stage == "ingest":
            from jobs import ingest
            from schemas import load_sources

            for source in sorted(load_sources(settings.contract_paths)):
                try:
                    ingest.run(spark, settings, source, dt)
                except ingest.IngestError as exc:
                    print(f"ingest {source}: {exc}")
        elif stage == "identity":
            from jobs import identity

            identity.run(spark, settings, dt)
        elif stage == "tags":
            from jobs import tags

            tags.run(spark, settings, dt)
        else:
            raise SystemExit(f"unknown stage {stage}")
    except LeaseError as exc:
        print(f"refused: {exc}")
        return REFUSED
    return 0


# ---- the driver --------------------------------------------------------------------------------------------


@dataclass
class Tally:
    runs: int = 0
    kills: int = 0
    partial_visible: int = 0
    partial_refused: int = 0
    partial_hidden: int = 0
    bad_reruns: int = 0
    lost_or_doubled: int = 0
    leaked: int = 0
    refusals: int = 0
    notes: list[str] = field(default_factory=list)


def _run_worker(stage: str, dt: _dt.date, data_root: Path, *, wait: bool = True) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.chaos",
            "worker",
            stage,
            "--dt",
            dt.isoformat(),
            "--data-root",
            str(data_root),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "CDP_LEASE_WAIT": "0"},
    )
    if wait:
        proc.wait()
    return proc


def _stage_tables(stage: str, lake_root: Path) -> list[str]:
    if stage != "ingest":
        return list(STAGE_TABLES[stage])
    out = []
    for layer in ("bronze", "quarantine", "silver"):
        folder = lake_root / layer
        out += [f"{layer}.{p.name}" for p in sorted(folder.iterdir())] if folder.is_dir() else []
    return out


def _frame(lake_root: Path, table: str):
    """The table as sorted rows of text, without what differs between two correct runs; None when absent."""
    from deltalake import DeltaTable

    layer, name = table.split(".")
    path = lake_root / layer / name
    if not DeltaTable.is_deltatable(str(path)):
        return None
    df = DeltaTable(str(path)).to_pandas()
    drop = set(VOLATILE.get(table, ()))
    drop |= {c for c in df.columns if c.endswith("_at") or c in ("seconds", "run_id", "_batch_id")}
    if layer in ("bronze", "quarantine"):  # direct PII and raw lines: encrypted with a fresh IV per value
        from schemas import load_sources

        contract = load_sources().get(name)
        drop |= {"_raw"} | {c.name for c in (contract.columns if contract else ()) if c.pii == "direct"}
    if table == "vault.identifiers":
        drop |= {c for c in df.columns if c not in ("id_type",)}
    kept = df.drop(columns=sorted(drop & set(df.columns)))
    if table == "gold.identity_report":  # the run's duration is one of the report's metrics
        kept = kept[kept["dimension"] != "seconds"]
    rows = [
        tuple(_PATH.sub(r"<root>/\1/", str(v)) for v in r) for r in kept.itertuples(index=False, name=None)
    ]
    return sorted(rows), list(kept.columns)


def _versions(lake_root: Path, tables: list[str]) -> dict[str, int | None]:
    from deltalake import DeltaTable

    out = {}
    for t in tables:
        layer, name = t.split(".")
        path = str(lake_root / layer / name)
        out[t] = DeltaTable(path).version() if DeltaTable.is_deltatable(path) else None
    return out


def compare_tables(trial: Path, clean: Path, tables: list[str], tally: Tally, label: str) -> bool:
    """Whether each table of the data root ``trial`` equals the clean run's (:func:`_frame`); counts and
    prints the differences into ``tally``."""
    ok = True
    for t in tables:
        got, want = _frame(trial / "lake", t), _frame(clean / "lake", t)
        if got == want:
            continue
        ok = False
        n_got = len(got[0]) if got else 0
        n_want = len(want[0]) if want else 0
        tally.lost_or_doubled += abs(n_got - n_want)
        tally.notes.append(f"{label}: {t} differs from the clean run ({n_got:,} rows vs {n_want:,})")
        print(f"  ! {tally.notes[-1]}", flush=True)
        if got and want and n_got == n_want:
            diff = [(a, b) for a, b in zip(got[0], want[0], strict=True) if a != b][:2]
            print(f"    columns {got[1]}\n    first differences (rerun, clean): {diff}", flush=True)
    return ok


def _copy(src: Path, dst: Path) -> Path:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    return dst


def _partial(trial: Path, before: Path, clean: Path, tables: list[str], tally: Tally) -> None:
    """Count the tables a killed run changed that differ from the clean result, and whether readers would
    see that change: a dead holder's mark sends them to the table's last complete version (the one before
    the killed run), or refuses the table when the killed run created it."""
    from cdp.leases import PartialTableError, readable_version

    was, now = _versions(before / "lake", tables), _versions(trial / "lake", tables)
    for t in tables:
        if now[t] == was[t] or _frame(trial / "lake", t) == _frame(clean / "lake", t):
            continue
        try:
            shown = readable_version(trial / "lake", t)
        except PartialTableError:
            tally.partial_refused += 1
            continue
        if shown is not None and shown == was[t]:
            tally.partial_hidden += 1
        else:
            tally.partial_visible += 1
            read = now[t] if shown is None else shown
            tally.notes.append(f"partial state visible: {t} (readers read version {read})")


def _consent_cases(base: Path, work: Path, tally: Tally, spark_settings) -> None:
    """Late opt-outs and a failed consent batch against exports (in this process, on the session engine)."""
    import uuid

    from pyspark.sql import functions as F

    from audiences.packs import read_pack_lines
    from cdp.engine import get_spark
    from cdp.lake import Lake
    from jobs import audiences, ingest
    from jobs.audiences.context import AudienceContext, ConsentNotAppliedError

    root = _copy(base, work / "consent" / "data")
    settings = spark_settings.with_data_root(root)
    import dataclasses

    settings = dataclasses.replace(settings, min_pack_size=5)
    spark = get_spark(settings)
    lake = Lake(spark, settings.lake_root)
    day = lake.latest_dt("gold.profile")
    audiences.create(
        spark, settings, {"name": "members", "rule": {"tag": "is_member", "value": True}}, dt=day
    )
    ids = (
        lake.read("gold.oneid_map")
        .where(F.col("dt") == F.lit(day))
        .withColumn("oneid", F.col("oneid").cast("string"))
    )
    members = lake.read("gold.audience_members").select("oneid")
    phones = ids.where(F.col("id_type") == "phone").select("oneid").distinct()
    mids = ids.where(F.col("id_type") == "member_id").select("oneid", F.col("id_value").alias("m"))
    people = members.join(phones, "oneid").join(mids, "oneid").orderBy("oneid").limit(8).collect()
    later = day + _dt.timedelta(days=1)
    folder = Path(settings.landing_root) / "consent" / f"dt={later}"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"{uuid.uuid5(uuid.NAMESPACE_OID, r.m)},{r.m},,all,opt_out,{later} 09:00:00" for r in people]
    header = "record_id,member_id,phone,purpose,status,updated_at"
    (folder / "late.csv").write_text("\n".join([header, *rows]) + "\n")
    ingest.run(spark, settings, "consent", later)
    opted = {r.oneid for r in people}
    hashes = AudienceContext(spark, settings, lake).platform_hashes()
    phone_ids = ids.where((F.col("id_type") == "phone") & F.col("oneid").isin(*opted)).select(
        "id_type", "id_value"
    )
    banned = {r.md5 for r in hashes.join(phone_ids, ["id_type", "id_value"]).collect() if r.md5}

    def leaked_by_export() -> int:
        m = audiences.export(spark, settings, "members", "tencent", id_types=["phone"])
        lines = next(v for k, v in read_pack_lines(Path(m.path)).items() if "hash_mobile_phone" in k)
        return len(banned & set(lines))

    tally.runs += 2
    tally.leaked += leaked_by_export()
    bad = [f"x{i},{r.m},,all,opt_out,not-a-time" for i, r in enumerate(people)]
    (folder / "late.csv").write_text("\n".join([header, *bad]) + "\n")
    with contextlib.suppress(ingest.IngestError):  # held back: every row is unreadable
        ingest.run(spark, settings, "consent", later)
    try:
        tally.leaked += leaked_by_export()
        tally.notes.append("an export went through while a consent batch was not applied")
    except ConsentNotAppliedError:
        tally.refusals += 1


def _clean_run(
    args: argparse.Namespace,
    work: Path,
    base: Path,
    settings,
    before: dict[str, Path],
    after: dict[str, Path],
    tally: Tally,
) -> dict[str, float]:
    """Land two days, run day 1 (the base), then day 2 stage by stage with copies before and after each."""
    from demo import generate

    generate(Path(settings.landing_root), Path(settings.truth_root), persons=args.persons, start=D1, days=2,
             history_days=args.history_days, seed=7)  # fmt: skip
    for stage in ("ingest", "identity", "tags"):
        proc = _run_worker(stage, D1, base)
        tally.runs += 1
        if proc.returncode:
            raise SystemExit(f"base {stage} {D1} failed:\n{proc.stdout.read()[-3000:]}")
    durations: dict[str, float] = {}
    clean = _copy(base, work / "clean" / "data")
    for stage in ("ingest", "identity", "tags"):
        _copy(clean, before[stage])
        started = time.monotonic()
        proc = _run_worker(stage, D2, clean)
        durations[stage] = time.monotonic() - started
        tally.runs += 1
        if proc.returncode:
            raise SystemExit(f"clean {stage} {D2} failed:\n{proc.stdout.read()[-3000:]}")
        _copy(clean, after[stage])
        print(f"  clean {stage} {D2}: {durations[stage]:.1f} s", flush=True)
    return durations


def _drive(args: argparse.Namespace) -> Tally:
    from cdp.settings import Settings

    rng = random.Random(args.seed)
    work = Path(args.work or tempfile.mkdtemp(prefix="cdp-chaos-"))
    tally = Tally()
    base = work / "base" / "data"
    settings = Settings.from_env().with_data_root(base)
    print(f"chaos: seed {args.seed}, {args.persons} persons, work folder {work}", flush=True)
    stages = [s for s in args.stages.split(",") if s]
    before = {stage: work / f"before_{stage}" / "data" for stage in ("ingest", "identity", "tags")}
    after = {stage: work / f"after_{stage}" / "data" for stage in ("ingest", "identity", "tags")}
    saved = work / "durations.json"
    if args.reuse and saved.is_file():  # the base and the clean run of an earlier --keep run
        durations = json.loads(saved.read_text())
        print(f"  reusing the clean run in {work}: {durations}", flush=True)
    else:
        durations = _clean_run(args, work, base, settings, before, after, tally)
        saved.write_text(json.dumps(durations))

    for i in range(args.kills):
        stage = stages[i % len(stages)]
        trial = _copy(before[stage], work / "trial" / "data")
        tables = _stage_tables(stage, after[stage] / "lake")
        delay = rng.uniform(1.0, max(1.5, durations[stage] - 0.5))
        proc = _run_worker(stage, D2, trial, wait=False)
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
            tally.kills += 1
        proc.wait()
        tally.runs += 1
        _partial(trial, before[stage], after[stage], tables, tally)
        rerun = _run_worker(stage, D2, trial)
        tally.runs += 1
        ok = rerun.returncode == 0 and compare_tables(
            trial, after[stage], [*tables, *SIDE_TABLES[2:]], tally, f"kill {i}"
        )
        tally.bad_reruns += 0 if ok else 1
        print(f"  kill {i}: {stage} after {delay:.1f} s{'' if killed else ' (had finished)'}: "
              f"rerun {'ok' if ok else 'BAD'}", flush=True)  # fmt: skip

    for i in range(args.pairs):
        stage = stages[i % len(stages)]
        trial = _copy(before[stage], work / "trial" / "data")
        tables = _stage_tables(stage, after[stage] / "lake")
        first = _run_worker(stage, D2, trial, wait=False)
        time.sleep(rng.uniform(0.0, 0.5))
        second = _run_worker(stage, D2, trial, wait=False)
        codes = [first.wait(), second.wait()]
        tally.runs += 2
        tally.refusals += codes.count(REFUSED)
        ok = all(c in (0, REFUSED) for c in codes) and compare_tables(
            trial, after[stage], tables, tally, f"pair {i}"
        )
        if not ok:
            tally.bad_reruns += 1
        print(f"  pair {i}: {stage}: exit codes {codes}: {'ok' if ok else 'BAD'}", flush=True)

    if not args.no_consent:
        _consent_cases(after["tags"], work, tally, settings)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return tally


def _print(tally: Tally, seed: int) -> None:
    rows = [
        ("runs", tally.runs),
        ("kills", tally.kills),
        ("partial states visible", tally.partial_visible),
        ("bad reruns", tally.bad_reruns),
        ("lost or doubled rows", tally.lost_or_doubled),
        ("leaked opted-out identifiers", tally.leaked),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"\nchaos (seed {seed})")
    for k, v in rows:
        print(f"  {k:<{width}}  {v:>6,}")
    print(f"  ({tally.partial_hidden} partial states read at their last complete version and "
          f"{tally.partial_refused} refused to readers until the rerun; "
          f"{tally.refusals} runs refused by a lease or by consent)")  # fmt: skip
    for note in tally.notes:
        print(f"  ! {note}")


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.chaos`` (the driver), or ``... worker <stage> --dt D --data-root X`` (one stage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["worker"]:
        w = argparse.ArgumentParser(prog="bench.chaos worker")
        w.add_argument("stage")
        w.add_argument("--dt", required=True)
        w.add_argument("--data-root", required=True)
        a = w.parse_args(argv[1:])
        return _worker(a.stage, a.dt, a.data_root)
    p = argparse.ArgumentParser(prog="bench.chaos", description=__doc__.splitlines()[0])
    p.add_argument("--persons", type=int, default=300)
    p.add_argument("--history-days", type=int, default=365)  # so the predictive models train
    p.add_argument("--kills", type=int, default=8)
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--stages", default="ingest,identity,tags")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--work", help="work folder (a temporary one by default)")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--no-consent", action="store_true")
    p.add_argument("--reuse", action="store_true", help="reuse the clean run kept in --work by --keep")
    args = p.parse_args(argv)
    args.seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    os.environ.setdefault("CDP_PII_KEY", "chaos-only-pii-key")
    tally = _drive(args)
    _print(tally, args.seed)
    bad = tally.partial_visible + tally.bad_reruns + tally.lost_or_doubled + tally.leaked
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
