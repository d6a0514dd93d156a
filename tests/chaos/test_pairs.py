"""Pairs of the same run, the second started while the first holds its lease, as real ``cdp`` processes
on a copy of the demo lake (the short version of ``make chaos``'s pairs): ``cdp identity run``,
``cdp tags build`` and ``cdp audience export``.
One of each pair writes, the other is refused by its lease with one line and exit code 3 (``REFUSED``), and
afterwards the tables equal a clean run's (``bench.chaos.compare_tables``: the demo lake's own build of the
date) and the pack a clean export's."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F

from audiences.packs import PackStore, read_pack_lines
from bench.chaos import STAGE_TABLES, Tally, compare_tables
from cdp.lake import Lake
from cdp.leases import recorded_holder
from cdp.run import REFUSED
from jobs import audiences

pytestmark = pytest.mark.slow

CDP = str(Path(sys.executable).parent / "cdp")
REPO = Path(__file__).resolve().parents[2]
REFUSAL = re.compile(
    r"^\S+ is being written by .+ \((run \w+, )?pid \d+ on .+\); try again when it has finished; "
)


COUNTED = {"gold.tags"}
"""Compared by row count only: its ~250,000 rows take seconds to compare whole (``make chaos`` does)."""


def _rows(data_root: Path, table: str) -> int:
    layer, name = table.split(".")
    return DeltaTable(str(data_root / "lake" / layer / name)).to_pyarrow_table().num_rows


def _pair(root: Path, held: str, *args: str) -> list[subprocess.CompletedProcess]:
    """Run ``cdp <args>`` twice so that the second starts while the first holds the lease ``held``.

    Started at the same moment, the two overlapped only by luck: a fast run (a pack export takes about a
    second here) could end before the other had started, and then both wrote. So the first is frozen
    (SIGSTOP) once its lease file names it, the second runs to its end, then the first is let go (SIGCONT).
    A frozen process keeps its lock, as a slow one would."""
    env = {**os.environ, "CDP_LEASE_WAIT": "0"}

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            [CDP, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env
        )

    first = start()
    deadline = time.monotonic() + 300
    while first.poll() is None and time.monotonic() < deadline:
        holder = recorded_holder(root / "lake", held)
        if holder is not None and holder.pid == first.pid:
            break
        time.sleep(0.005)
    assert first.poll() is None, f"{args}: the first run ended before it was seen holding {held}"
    os.kill(first.pid, signal.SIGSTOP)
    try:
        second = start()
        outs = [(second, second.communicate(timeout=600))]
    finally:
        os.kill(first.pid, signal.SIGCONT)
    outs.insert(0, (first, first.communicate(timeout=600)))
    return [subprocess.CompletedProcess(p.args, p.returncode, o, e) for p, (o, e) in outs]


def _one_ran_one_refused(runs: list[subprocess.CompletedProcess], what: str) -> None:
    codes = sorted(r.returncode for r in runs)
    assert codes == [0, REFUSED], (what, [(r.returncode, r.stderr[-2000:]) for r in runs])
    refused = next(r for r in runs if r.returncode == REFUSED)
    assert "Traceback" not in refused.stderr
    lines = [line for line in refused.stderr.splitlines() if line.strip() and "sail" not in line.lower()]
    assert len(lines) == 1 and REFUSAL.match(lines[0]), (what, lines)


def test_pairs_of_identity_tags_and_export_one_writes_one_is_refused_and_the_tables_are_clean(
    spark, demo_lake, copy_demo_lake, tmp_path: Path
) -> None:
    s = copy_demo_lake(tmp_path / "data")
    root, clean = Path(s.data_root), Path(demo_lake.settings.data_root)
    dt = demo_lake.dt
    audiences.create(spark, s, {"name": "members", "rule": {"tag": "is_member", "value": True}})

    for stage, args in (("identity", ("identity", "run")), ("tags", ("tags", "build"))):
        held = STAGE_TABLES[stage][0]
        _one_ran_one_refused(_pair(root, held, *args, "--dt", dt, "--data-root", str(root)), stage)
        tally = Tally()
        whole = [t for t in STAGE_TABLES[stage] if t not in COUNTED]
        assert compare_tables(root, clean, whole, tally, f"{stage} pair"), tally.notes
        for table in set(STAGE_TABLES[stage]) & COUNTED:
            assert _rows(root, table) == _rows(clean, table), table

    export = ("audience", "export", "members", "--destination", "csv", "--min-size", "10")
    _one_ran_one_refused(_pair(root, "pack.members", *export, "--data-root", str(root)), "export")
    store = PackStore(s.packs_root)
    assert [m["version"] for m in store.manifests("members")] == [1]
    logged = Lake(spark, s.lake_root).read("gold.audience_exports").where(F.col("audience_id") == "members")
    assert logged.count() == 1
    folder = store.folder("members", 1, "csv")
    paired = read_pack_lines(folder)
    audiences.export(spark, s, "members", "csv", version=1, min_size=10)  # a clean export of the same pack
    assert paired == read_pack_lines(folder) and sum(len(v) for v in paired.values()) > 0
