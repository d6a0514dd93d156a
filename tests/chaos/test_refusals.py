"""Runs refused by another run's lease, with real processes and a real lake: a job started as
``python -m jobs.<job>`` beside a run holding its tables prints one line and exits with ``REFUSED`` (no
traceback); maintenance (compaction, vacuum) and an erasure take the leases of the tables they write, so they
refuse beside a stage writing the same table, and the table is untouched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cdp.lake import Lake
from cdp.leases import Holder, LeaseError, PartialTableError, dead_holder, lease
from cdp.run import REFUSED

REPO = Path(__file__).resolve().parents[2]
DT = "2026-11-01"
HOLD = """
import sys, time
from cdp.leases import Holder, lease
me = Holder(job="tags", dt="2026-11-01", rerun="cdp tags build --dt 2026-11-01")
with lease(sys.argv[1], [sys.argv[2]], me):
    print("held", flush=True)
    time.sleep(60)
"""


def _refusal_lines(stderr: str) -> list[str]:
    """stderr without the engine's own log lines."""
    return [line for line in stderr.splitlines() if line.strip() and "sail" not in line.lower()]


def test_a_job_module_beside_a_running_one_exits_refused_with_one_line(tmp_path: Path) -> None:
    holder = Holder(job="tags", dt=DT, run_id="dagtask")
    env = {**os.environ, "CDP_DATA_ROOT": str(tmp_path), "CDP_LEASE_WAIT": "0"}
    with lease(tmp_path / "lake", ["gold.tags"], holder):  # what a DAG task holds while it runs
        refused = subprocess.run(
            [sys.executable, "-m", "jobs.tags", "--dt", DT],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            timeout=300,
        )
    assert "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert refused.returncode == REFUSED, refused.stderr[-3000:]
    assert _refusal_lines(refused.stderr) == [
        f"gold.tags is being written by tags {DT} (run dagtask, pid {os.getpid()} on {holder.host}, since "
        f"{holder.started} UTC); try again when it has finished; set CDP_LEASE_WAIT=<seconds> to wait for it"
    ]


def _hold(root: str, table: str) -> subprocess.Popen:
    """A process holding the lease of ``table``, as a running stage does."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, root, table], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_maintenance_and_erasure_refuse_beside_a_stage_and_on_a_half_written_table(
    spark, settings, tmp_path
) -> None:
    from identity.erasure import parse_request
    from jobs import maintenance, privacy

    s = settings.with_data_root(tmp_path / "data")
    lake = Lake(spark, s.lake_root)
    rows = spark.createDataFrame(
        [(1, "gender", "F"), (2, "gender", "M")], "oneid long, tag_id string, value string"
    )
    for _ in range(2):  # two small files to compact
        rows.write.format("delta").mode("append").save(lake.path("gold.tags"))
    before = lake.version("gold.tags")
    stage = _hold(lake.root, "gold.tags")
    try:
        calls = {
            "compact": lambda: maintenance.compact(lake, "gold.tags"),
            "vacuum": lambda: maintenance.vacuum(lake, "gold.tags", retention_hours=168, dry_run=False),
            "erase": lambda: privacy.erase(spark, s, parse_request(["phone:13812345678"])),
        }
        for what, call in calls.items():
            with pytest.raises(LeaseError) as refused:
                call()
            message = str(refused.value)
            assert "\n" not in message, what
            assert message.startswith("gold.tags is being written by tags 2026-11-01"), (what, message)
            assert f"pid {stage.pid}" in message, (what, message)
        assert maintenance.vacuum(lake, "gold.tags") == []  # a dry run only reads
    finally:
        os.kill(stage.pid, signal.SIGKILL)
        stage.wait(timeout=10)
    assert lake.version("gold.tags") == before
    # The stage died half-way: maintenance must not take its lease (that would clear the mark unrepaired).
    with pytest.raises(PartialTableError, match=r"rerun it \(cdp tags build --dt 2026-11-01\) first"):
        maintenance.compact(lake, "gold.tags")
    assert dead_holder(lake.root, "gold.tags") is not None
    with lease(lake.root, ["gold.tags"], Holder(job="tags", dt=DT)):  # the stage's rerun
        pass
    assert maintenance.compact(lake, "gold.tags")["numFilesRemoved"] >= 2
    assert lake.read("gold.tags").count() == 4


HOLD_ERASURE = """
import sys, time
from cdp.lake import Lake
from cdp.leases import Holder
from cdp.run import lease_in_place
lake = Lake(None, sys.argv[1])
me = Holder(job="privacy erase r1", rerun="cdp privacy erase (the same request)")
with lease_in_place(lake, [sys.argv[2]], me, fall_back=False, reruns="privacy erase"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_killed_erasure_never_sends_readers_back_to_the_persons_rows_and_its_rerun_takes_over(
    spark, tmp_path
) -> None:
    lake = Lake(spark, str(tmp_path / "lake"))
    person = spark.createDataFrame([(1, "13812345678")], "oneid long, phone string")
    person.write.format("delta").save(lake.path("silver.members"))  # version 0 holds the person
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_ERASURE, lake.root, "silver.members"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    lake.delete("silver.members", "oneid = 1")  # the erasure's first change, then it dies
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    # Readers are refused, not sent back to version 0, which still holds the person.
    with pytest.raises(PartialTableError, match=r"privacy erase r1 .* rerun it \(cdp privacy erase"):
        lake.read("silver.members")
    # Another erasure is the rerun (its request repeats the dead one's or covers it): it takes over.
    from cdp.run import lease_in_place

    with lease_in_place(
        lake, ["silver.members"], Holder(job="privacy erase r2"), fall_back=False, reruns="privacy erase"
    ):
        pass
    assert lake.read("silver.members").count() == 0
