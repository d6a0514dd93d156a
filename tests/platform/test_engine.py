"""The session factory in its three modes: embedded Sail (in-process), remote (a `sail spark server` this
test starts on a free port) and classic local JVM Spark running a pure transform (no Delta there).

Remote and classic run in a subprocess: a Python process holds one default Spark session, and a classic
JVM session cannot share a process with Spark Connect ones."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cdp.engine import describe, get_spark
from cdp.settings import Settings

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_python(code: str, env: dict[str, str | None], timeout: int = 240) -> str:
    """Run ``code`` in a fresh interpreter; a ``None`` value removes that variable."""
    merged = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=merged, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_embedded_is_spark_connect_in_utc(spark) -> None:
    assert describe(spark).startswith("Spark Connect 4.")
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.range(10).selectExpr("sum(id) AS s").first()["s"] == 45


def test_a_result_batch_past_the_grpc_default_of_128_mib_reaches_the_driver(spark) -> None:
    # One Arrow batch of 140 rows x 1 MB is one message of about 140 MB: the Spark Connect client refuses
    # such a message by default ("Decompressed message larger than max"); a 1M-person pack was one.
    big = spark.range(140).selectExpr("id", "repeat('x', 1000000) AS payload").toPandas()
    assert len(big) == 140 and big["payload"].str.len().min() == 1_000_000


def test_embedded_factory_reuses_one_server(settings) -> None:
    from cdp import engine

    get_spark(settings, mode="embedded")
    first = engine.embedded_server_url()
    assert engine.embedded_server_url() == first


def test_unknown_mode_is_refused(settings) -> None:
    with pytest.raises(ValueError, match="unknown engine mode"):
        get_spark(settings, mode="gpu")


def test_embedded_engine_env_is_a_fair_pool_of_the_setting(settings) -> None:
    from dataclasses import replace

    from cdp.engine import embedded_engine_env

    env = embedded_engine_env(replace(settings, engine_memory_mb=3072))
    assert env == {
        "SAIL_RUNTIME__MEMORY_POOL__TYPE": "fair",
        "SAIL_RUNTIME__MEMORY_POOL__FAIR__MAX_SIZE": str(3072 * 2**20),
    }
    assert embedded_engine_env(replace(settings, engine_memory_mb=0)) == {}


SORT = """
from cdp.engine import get_spark
spark = get_spark()
rows = "SELECT row_number() OVER (ORDER BY u) AS n FROM (SELECT uuid() AS u FROM range(2000000))"
try:
    print("sorted", spark.sql(f"SELECT max(n) AS n FROM ({rows})").first()["n"])
except Exception as exc:
    print("failed:", str(exc).splitlines()[0])
"""


@pytest.mark.parametrize(
    ("env", "expected"),
    [  # 2M random keys do not fit a 64 MiB pool: the sort spills to temporary files, or fails without them
        (
            {"CDP_ENGINE_MEMORY": "64m", "SAIL_RUNTIME__TEMPORARY_FILES__MAX_SIZE": "0"},
            "failed: Memory Exhausted",
        ),
        ({"CDP_ENGINE_MEMORY": "64m"}, "sorted 2000000"),
        (
            {"CDP_ENGINE_MEMORY": "0", "SAIL_RUNTIME__TEMPORARY_FILES__MAX_SIZE": "0"},
            "sorted 2000000",
        ),  # no pool
        (  # a pool chosen by SAIL_* variables wins over the setting
            {
                "CDP_ENGINE_MEMORY": "64m",
                "SAIL_RUNTIME__MEMORY_POOL__TYPE": "unbounded",
                "SAIL_RUNTIME__TEMPORARY_FILES__MAX_SIZE": "0",
            },
            "sorted 2000000",
        ),
    ],
)
def test_the_embedded_server_sorts_within_its_memory_pool(env, expected) -> None:
    unset = {k: None for k in os.environ if k.startswith("SAIL_RUNTIME__")}
    out = run_python(SORT, {**unset, "SPARK_REMOTE": None, "CDP_ENGINE": None, **env})
    assert out.strip().splitlines()[-1].startswith(expected), out


CLIENT = """
from cdp.engine import get_spark, describe
from pyspark.sql import functions as F
spark = get_spark()
df = spark.createDataFrame([(1, " A@QQ.com "), (2, None)], "id long, email string")
print(describe(spark), df.select(F.lower(F.trim("email")).alias("e")).first()["e"])
"""


@pytest.mark.slow
def test_remote_mode_against_a_sail_server(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "sail"), "spark", "server", "--ip", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        out = run_python(CLIENT, {"SPARK_REMOTE": f"sc://127.0.0.1:{port}", "CDP_ENGINE": None})
        assert out.strip() == "Spark Connect 4.0.1 a@qq.com"
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert Settings.from_env({"SPARK_REMOTE": f"sc://127.0.0.1:{port}"}).engine == "remote"


@pytest.mark.slow
@pytest.mark.classic
def test_classic_local_jvm_runs_the_same_transform() -> None:
    out = run_python(
        CLIENT,
        {
            "CDP_ENGINE": "classic",
            "CDP_SPARK_MASTER": "local[1]",
            "SPARK_REMOTE": None,
            "SPARK_CONNECT_MODE_ENABLED": None,
        },
    )
    assert out.strip().splitlines()[-1] == "classic JVM Spark 4.0.1 a@qq.com"


def test_an_engine_error_past_the_memory_pool_gets_a_one_line_hint() -> None:
    from cdp.engine import memory_pool_hint

    error = RuntimeError(
        "Resources exhausted: Failed to allocate additional 1886.5 MB for ExternalSorter[0] with 0.0 B "
        "already allocated for this reservation - 1362.0 MB remain available for the total memory pool: "
        "fair(pool_size: 4.0 GB)"
    )
    hint = memory_pool_hint(error)
    assert hint is not None and "\n" not in hint
    assert hint.startswith("the engine ran out of its memory pool: Resources exhausted: Failed to allocate")
    assert "CDP_ENGINE_MEMORY" in hint
    assert memory_pool_hint(RuntimeError("table or view not found: gold.tags")) is None
