"""Local Airflow in one command (``cdp airflow up`` / ``make airflow``): Airflow standalone with SQLite
metadata under the data root, this repository's DAGs, and a local ``sail spark server`` wired in as the
``cdp_spark`` Spark Connect connection, so tasks run on the same engine the demo uses.

``cdp airflow demo`` runs ``cdp_daily`` for the demo dates through Airflow itself (``dag.test()``: the
scheduler's dependency, retry and XCom logic in one process, tasks on the embedded engine), one date after
the other as the DAG's ``max_active_runs=1`` does.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from cdp.settings import Settings
from runners.orchestration import SPARK_CONN_ID

REPO = Path(__file__).resolve().parents[1]


def airflow_env(settings: Settings, spark_port: int | None) -> dict[str, str]:
    """Environment for Airflow processes: home under the data root, the repo's dags/, no examples, and the
    Spark Connect connection when a local Sail server is used."""
    env = {
        "AIRFLOW_HOME": str(Path(settings.data_root) / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "CDP_DATA_ROOT": settings.data_root,
    }
    if spark_port:
        conn = {"conn_type": "spark_connect", "host": "127.0.0.1", "port": spark_port}
        env[f"AIRFLOW_CONN_{SPARK_CONN_ID.upper()}"] = json.dumps(conn)
    return env


def _wait_for_port(port: int, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the Sail Spark Connect server did not listen on port {port} within {seconds:.0f} s")


def up(settings: Settings, *, spark_port: int = 50051, embedded: bool = False) -> int:
    """Run Airflow standalone in the foreground until Ctrl+C; returns its exit code.

    Args:
        settings: data locations (the lake, landing files and Airflow home live under ``data_root``).
        spark_port: port of the local ``sail spark server`` started alongside.
        embedded: run tasks on an in-process engine instead of a shared local Sail server.
    """
    settings.ensure_local_pii_key()
    bin_dir = Path(sys.executable).parent
    server = None
    if not embedded:
        server = subprocess.Popen(
            [str(bin_dir / "sail"), "spark", "server", "--ip", "127.0.0.1", "--port", str(spark_port)]
        )
        _wait_for_port(spark_port)
    env = {**os.environ, **airflow_env(settings, None if embedded else spark_port)}
    env.pop("SPARK_REMOTE", None)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"  # standalone starts `airflow` subcommands
    try:
        return subprocess.call([str(bin_dir / "airflow"), "standalone"], env=env)
    except KeyboardInterrupt:
        return 0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


def migrate(settings: Settings) -> None:
    """Create or upgrade the SQLite metadata database under ``<data root>/airflow``.

    Raises:
        RuntimeError: ``airflow db migrate`` failed; its last output lines are in the message.
    """
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, **airflow_env(settings, None)}
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [str(bin_dir / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed: {(proc.stderr or proc.stdout)[-2000:]}")


def run_daily(settings: Settings, dates: list[_dt.date], *, dag_id: str = "cdp_daily") -> list[dict]:
    """Run ``dag_id`` for each logical date in order through Airflow's ``dag.test()`` in this process.

    The Airflow home, DAG folder and data root are set in this process's environment first (Airflow reads
    its configuration when first imported), and the metadata database is migrated. Stops at the first
    date whose run fails: later dates build on it.

    Returns:
        One dict per date run: ``dt``, ``state`` and the state of each task.
    """
    env = airflow_env(settings, None)
    os.environ.update(env)
    os.environ.pop("SPARK_REMOTE", None)
    migrate(settings)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(env["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    dag = bag.dags[dag_id]
    out = []
    for day in dates:
        run = dag.test(logical_date=_dt.datetime(day.year, day.month, day.day, tzinfo=_dt.UTC))
        tasks: dict[str, str] = {}
        for ti in run.get_task_instances():
            name = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            tasks[name] = str(ti.state)
        out.append({"dt": day.isoformat(), "state": str(run.state), "tasks": tasks})
        if str(run.state) != "success":
            break
    return out
