"""The daily stages on Sail in cluster mode: a ``sail spark server`` started with ``SAIL_MODE=local-cluster``
(the cluster job runner, a driver and workers in one process, exchanging shuffle data over RPC) on a free
port, and the same job code as every other mode, reached through ``SPARK_REMOTE``.

The stages run in a subprocess: this pytest process already holds the embedded session as its default Spark
Connect session, and ``getOrCreate`` would hand that one back instead of connecting to the cluster.

How local-cluster mode is configured: Sail's configuration reference (``mode``: ``local``, ``local-cluster``,
``kubernetes-cluster``; ``cluster.worker_initial_count``, ``cluster.worker_task_slots``,
``execution.default_parallelism``), set through ``SAIL_*`` environment variables as described in
https://docs.lakesail.com/sail/latest/guide/configuration/ (source: lakehq/sail
``crates/sail-common/src/config/application.yaml``).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from demo import generate

BIN = Path(sys.executable).parent
DT = "2026-11-01"
PERSONS = 400

# Two workers on the 2-core CI machine; parallelism set explicitly, as Sail's reference recommends for cluster
# mode (the driver's core count need not match the workers'). Sail 0.7.2 runs the pipelined stages of a job
# as one task region, every partition at once, and refuses a region larger than the workers' task slots
# ("task region requires N worker task slots"): identity's records (a union of every silver table) need 16
# here, so each worker has 16 slots (Sail's default is 8).
CLUSTER_ENV = {
    "SAIL_MODE": "local-cluster",
    "SAIL_CLUSTER__WORKER_INITIAL_COUNT": "2",
    "SAIL_CLUSTER__WORKER_MAX_COUNT": "2",  # the default 0 means no limit: a worker per 16 slots needed
    "SAIL_CLUSTER__WORKER_TASK_SLOTS": "16",
    "SAIL_EXECUTION__DEFAULT_PARALLELISM": "2",
    "RUST_LOG": "info",  # the worker start-up lines below are logged at info level
}

STAGES = """
import json, sys
from cdp.engine import describe, get_spark
from cdp.lake import Lake
from cdp.settings import Settings
from jobs import audiences, identity, ingest, tags
from schemas import load_sources

dt = sys.argv[1]
settings = Settings.from_env()
spark = get_spark(settings)
reports = [ingest.run(spark, settings, s, dt) for s in sorted(load_sources(settings.contract_paths))]
ids = identity.run(spark, settings, dt)
built = tags.run(spark, settings, dt, ["raw", "fact", "model"])
refreshed = audiences.refresh(spark, settings, dt)
lake = Lake.from_settings(spark, settings)
print(json.dumps({
    "engine": settings.engine,
    "describe": describe(spark),
    "ingest": [
        {"source": r.source, "balanced": r.balanced, "rows_in": r.rows_in, "silver": r.silver_written,
         "line": r.balance_line()}
        for r in reports
    ],
    "oneids": ids.oneids,
    "oneid_map": lake.read_dt("gold.oneid_map", dt).select("oneid").distinct().count(),
    "tag_oneids": built.oneids,
    "profile": lake.read_dt("gold.profile", dt).count(),
    "optouts": refreshed.optouts,
}))
"""


# Sail 0.7.2 serialises each physical plan for its workers with a codec that names the functions it can
# encode (lakehq/sail ``crates/sail-execution/src/proto/codec.rs``, ``try_encode_udf``); in cluster mode
# only, a plan with any other function fails with the message below. Plain DataFusion built-ins (``nullif``,
# ``btrim``, ``regexp_replace``, ``lower``...) reach the workers, except inside the Parquet scan the
# optimiser builds under a Delta write, and ``json_object_keys`` never does: ingest uses portable forms
# instead (``ingest.rows``: ``is_json_object``, ``trimmed_or_null``, ``stripped_or_null``).
GAP = re.compile(r"ExtendedScalarUdf: no UDF found for (\w+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert server.poll() is None, "the Sail server exited at start-up"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"no Sail server on port {port} after {timeout} s")


@pytest.mark.slow
@pytest.mark.e2e
def test_daily_stages_on_sail_local_cluster(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(
        data / "landing",
        data / "truth",
        persons=PERSONS,
        start=datetime.date.fromisoformat(DT),
        days=1,
        history_days=365,
        seed=7,
    )
    port = free_port()
    log_path = tmp_path / "sail-server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(BIN / "sail"), "spark", "server", "--ip", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **CLUSTER_ENV},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        wait_for_port(port, server)
        # Only this test's settings: no engine, root or remote of the caller's environment leaks in.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CDP_", "SPARK_"))}
        env |= {
            "SPARK_REMOTE": f"sc://127.0.0.1:{port}",
            "CDP_DATA_ROOT": str(data),
            "CDP_SHUFFLE_PARTITIONS": "2",
            "CDP_PII_KEY": os.environ["CDP_PII_KEY"],
        }
        proc = subprocess.run(
            [sys.executable, "-c", STAGES, DT],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=Path(__file__).resolve().parents[2],
        )
        gap = GAP.search(proc.stderr) if proc.returncode else None
        if gap:
            pytest.fail(
                f"a stage uses {gap.group(1)}, which Sail cannot ship to its cluster workers; use a portable "
                f"form (see GAP above):\n{proc.stderr[-4000:]}"
            )
        assert proc.returncode == 0, proc.stderr[-4000:]
    finally:
        server.terminate()
        server.wait(timeout=30)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    log_text = log_path.read_text()

    # The jobs ran on the cluster: the remote engine, served by workers the cluster driver started.
    assert out["engine"] == "remote" and out["describe"].startswith("Spark Connect 4.")
    workers = set(re.findall(r"worker (\d+) is available", log_text))
    assert len(workers) >= 2, log_text[-3000:]

    # Ingest keeps its row balance for every source; every OneID of identity is in the map and has a profile
    # row; the refresh stored the consent source's opt-outs (3 on this population).
    assert out["ingest"] and all(r["balanced"] for r in out["ingest"]), [r["line"] for r in out["ingest"]]
    assert sum(r["silver"] for r in out["ingest"]) > 0
    assert out["oneids"] == out["oneid_map"] > 0
    assert out["profile"] == out["tag_oneids"] == out["oneids"]
    assert out["optouts"] > 0
