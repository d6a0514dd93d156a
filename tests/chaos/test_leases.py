"""Leases and run-scoped scratch across real processes: a second writer is refused with one line naming the
first, a holder killed with SIGKILL leaves its tables marked half-written until a rerun takes the lease, and
the scratch of a killed run (plaintext checkpoints) is removed at the next start while a live run's stays.
No engine: these are the platform's file locks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cdp.leases import Holder, LeaseError, PartialTableError, dead_holder, lease, readable_version
from cdp.run import sweep_scratch

HOLD = """
import sys, time
from cdp.leases import Holder, lease
root, names = sys.argv[1], sys.argv[2].split(",")
me = Holder(job="tags", dt="2026-11-01", run_id="r1", rerun="cdp tags build --dt 2026-11-01")
with lease(root, names, me):
    print("held", flush=True)
    time.sleep(60)
"""

OWN_SCRATCH = """
import fcntl, os, sys, time
from pathlib import Path
folder = Path(sys.argv[1]); folder.mkdir(parents=True)
(folder / "typed").mkdir(); (folder / "typed" / "part-0.parquet").write_text("13812345678 plaintext")
fd = os.open(folder / ".owner", os.O_RDWR | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def _start(script: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_a_second_writer_is_refused_and_a_killed_holder_leaves_its_tables_marked(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    holder = _start(HOLD, str(root), "gold.profile,gold.tags")
    try:
        assert readable_version(root, "gold.tags") is None  # a live writer: readers read the latest
        me = Holder(job="tags", dt="2026-11-01")
        with pytest.raises(LeaseError) as refused, lease(root, ["gold.tags"], me, wait=0):
            pytest.fail("two writers of gold.tags at once")
        message = str(refused.value)
        assert "\n" not in message and message.startswith("gold.tags is being written by tags 2026-11-01")
        assert f"pid {holder.pid}" in message and "CDP_LEASE_WAIT" in message
    finally:
        _kill(holder)
    # Killed half-way: the tables are marked until a run takes their leases again. This holder recorded no
    # complete version (tables it created), so readers are refused, with the run to repeat.
    assert dead_holder(root, "gold.tags").pid == holder.pid
    with pytest.raises(PartialTableError, match=r"gold.profile may be half-written: tags 2026-11-01 .*"):
        readable_version(root, "gold.profile")
    with pytest.raises(PartialTableError, match=r"rerun it \(cdp tags build --dt 2026-11-01\) first"):
        readable_version(root, "gold.tags")
    with lease(root, ["gold.tags", "gold.profile"], Holder(job="tags", dt="2026-11-01")) as dead:
        assert sorted(dead) == ["gold.profile", "gold.tags"] and dead["gold.tags"].pid == holder.pid
        assert readable_version(root, "gold.tags") is None  # the repairing run reads its own tables
    assert readable_version(root, "gold.tags") is None
    assert dead_holder(root, "gold.profile") is None


HOLD_AT = """
import json, sys, time
from cdp.leases import Holder, lease
root, versions = sys.argv[1], json.loads(sys.argv[2])
me = Holder(job="tags", dt="2026-11-02", rerun="cdp tags build --dt 2026-11-02")
with lease(root, list(versions), me, base_version=versions.get):
    print("held", flush=True)
    time.sleep(60)
"""


def test_readers_of_a_killed_runs_tables_get_the_last_complete_versions_also_after_a_killed_rerun(
    tmp_path: Path,
) -> None:
    root = tmp_path / "lake"
    first = _start(HOLD_AT, str(root), json.dumps({"gold.profile": 22, "gold.tags": 19}))
    _kill(first)
    # Each table at the version it had when the killed run took its lease.
    assert readable_version(root, "gold.tags") == 19 and readable_version(root, "gold.profile") == 22
    # A rerun killed too: the last complete versions are still the first run's bases, not the rerun's.
    second = _start(HOLD_AT, str(root), json.dumps({"gold.profile": 60, "gold.tags": 50}))
    assert readable_version(root, "gold.tags") is None  # a live writer
    _kill(second)
    assert readable_version(root, "gold.tags") == 19 and readable_version(root, "gold.profile") == 22
    with lease(root, ["gold.profile", "gold.tags"], Holder(job="tags"), base_version=lambda n: 99):
        pass  # a rerun that finishes clears the marks: the latest version is complete
    assert readable_version(root, "gold.tags") is None and readable_version(root, "gold.profile") is None


def test_leases_are_reentrant_in_a_thread_and_exclusive_between_threads(tmp_path: Path) -> None:
    me = Holder(job="export aud")
    errors: list[str] = []
    with lease(tmp_path, ["pack.aud"], me), lease(tmp_path, ["pack.aud"], me):  # nested jobs
        worker = threading.Thread(
            target=lambda: errors.append(_refusal(tmp_path, me)),
        )
        worker.start()
        worker.join()
    assert errors and errors[0].startswith("pack.aud is being written by export aud")
    with lease(tmp_path, ["pack.aud"], me, wait=0):  # released by the outer block
        pass


def _refusal(root: Path, me: Holder) -> str:
    try:
        with lease(root, ["pack.aud"], me, wait=0):
            return "taken twice"
    except LeaseError as exc:
        return str(exc)


def test_a_waiting_run_gets_the_lease_when_the_holder_ends(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    holder = _start(HOLD, str(root), "gold.tags")
    threading.Timer(1.0, lambda: os.kill(holder.pid, signal.SIGTERM)).start()
    started = time.monotonic()
    with lease(root, ["gold.tags"], Holder(job="tags"), wait=30):
        waited = time.monotonic() - started
    holder.wait(timeout=10)
    assert 0.5 < waited < 20


def test_the_scratch_of_a_killed_run_goes_at_the_next_start_and_a_live_one_stays(tmp_path: Path) -> None:
    base = tmp_path / "_scratch"
    dead, live = base / "ingest" / "2026-11-01" / "run_dead", base / "ingest" / "2026-11-01" / "run_live"
    killed = _start(OWN_SCRATCH, str(dead))
    _kill(killed)
    running = _start(OWN_SCRATCH, str(live))
    legacy = base / "staging" / "abc" / "orders.csv"  # an older layout, left by a finished run
    legacy.parent.mkdir(parents=True)
    legacy.write_text("plaintext")
    os.utime(legacy, (time.time() - 3600, time.time() - 3600))
    try:
        removed = sweep_scratch(base)
        assert not dead.exists() and live.exists() and not legacy.exists()
        assert sorted(removed) == sorted([str(dead), str(legacy)])
    finally:
        _kill(running)
    assert sweep_scratch(base) == [str(live)]


def test_analyst_sql_on_a_killed_runs_table_sees_its_last_complete_version(tmp_path: Path) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    from cdp.sql import LakeSQL

    root = tmp_path / "lake"
    path = str(root / "gold" / "tag_stats")
    write_deltalake(path, pa.table({"tag": ["a"], "n": [1]}))  # version 0: a complete run
    killed = _start(HOLD_AT, str(root), json.dumps({"gold.tag_stats": 0}))
    write_deltalake(path, pa.table({"tag": ["b"], "n": [2]}), mode="append")  # the run's half
    _kill(killed)
    with LakeSQL(root, role="analyst", tables=["gold.tag_stats"]) as sql:
        assert sql.query("SELECT tag FROM gold.tag_stats").rows() == [{"tag": "a"}]
