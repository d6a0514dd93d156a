"""The one Spark session factory. Job code asks for a session here and never cares which engine answers.

Three modes, chosen by settings (``CDP_ENGINE`` / ``SPARK_REMOTE``), with the same job code in each:

- ``embedded`` (default): a Sail Spark Connect server started in this process on a free loopback port;
  Delta tables on local disk. Nothing to start by hand. With ``CDP_ENGINE_MEMORY`` its memory is bounded by
  a pool (``Settings.engine_memory_mb``) past which sorts and aggregates spill to temporary files.
- ``remote``: any Spark Connect server at ``SPARK_REMOTE=sc://host:port`` (Spark 4 with Delta, or
  ``sail spark server`` on another machine).
- ``classic``: a JVM Spark session, as under ``spark-submit`` with ``delta-spark`` on the classpath; the
  active session is reused when there is one.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import TYPE_CHECKING

from cdp.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# Delta configuration for classic Spark. Under spark-submit pass it with --conf; for a local classic session
# with delta-spark jars available, set CDP_CLASSIC_DELTA=1 (Settings.classic_delta) and the factory adds it.
DELTA_CLASSIC_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

# The largest single message a Spark Connect session accepts from the engine. The client's default (128 MiB)
# is smaller than one Arrow batch Sail sends for a 1M-person audience pack (196 MB measured), so results
# that size failed with gRPC RESOURCE_EXHAUSTED; the driver holds such a result anyway.
RESULT_MESSAGE_LIMIT = 2**31 - 1

_lock = threading.Lock()
_server = None  # the in-process Sail server, started once per process


def _session_conf(settings: Settings) -> dict[str, str]:
    return {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
    }


def embedded_engine_env(settings: Settings) -> dict[str, str]:
    """Sail's settings (``SAIL_*`` variables) for the in-process server: a fair memory pool of
    ``settings.engine_memory_mb`` (none when 0), so that sorts, aggregates and joins spill to temporary
    files (the system's temporary folder unless ``SAIL_RUNTIME__TEMPORARY_FILES__PATHS`` says) instead of
    growing the process past it. Operators that cannot spill fail with "Resources exhausted" past the pool.
    """
    if settings.engine_memory_mb <= 0:
        return {}
    return {
        "SAIL_RUNTIME__MEMORY_POOL__TYPE": "fair",
        "SAIL_RUNTIME__MEMORY_POOL__FAIR__MAX_SIZE": str(settings.engine_memory_mb * 2**20),
    }


def memory_pool_hint(exc: BaseException) -> str | None:
    """One line for an engine error that ran out of the embedded engine's memory pool, or None: which
    setting to raise. (An operator that cannot spill, such as the build side of a hash join, fails past the
    pool instead of growing the process.)"""
    text = str(exc)
    if "memory pool" not in text or not ("Resources exhausted" in text or "Failed to allocate" in text):
        return None
    first = next((line for line in text.splitlines() if "memory pool" in line), text).strip()
    return (
        f"the engine ran out of its memory pool: {first[:300]}; raise CDP_ENGINE_MEMORY (e.g. 8g), or set it "
        "to 0 for no pool, and rerun"
    )


def embedded_server_url(settings: Settings | None = None) -> str:
    """Start the in-process Sail server if needed and return its ``sc://`` URL.

    The server reads its settings from ``SAIL_*`` environment variables when it starts: those of
    :func:`embedded_engine_env` are set first, except any the environment already has (they win).
    """
    global _server
    with _lock:
        if _server is None or not _server.running:
            from pysail.spark import SparkConnectServer

            for key, value in embedded_engine_env(settings or Settings.from_env()).items():
                os.environ.setdefault(key, value)
            server = SparkConnectServer(ip="127.0.0.1", port=0)
            server.start(background=True)
            atexit.register(server.stop)
            _server = server
            log.info("started embedded Sail Spark Connect server on %s:%s", *server.listening_address)
        host, port = _server.listening_address
    return f"sc://{host}:{port}"


def get_spark(
    settings: Settings | None = None, *, mode: str | None = None, app_name: str = "cdp"
) -> SparkSession:
    """Return a SparkSession for the configured engine mode.

    Args:
        settings: where to read the engine mode from; ``Settings.from_env()`` when omitted.
        mode: overrides ``settings.engine`` (``embedded``, ``remote`` or ``classic``).
        app_name: the application name shown by the engine.

    Returns:
        A Spark Connect session (embedded, remote) or a classic JVM session, with the session time zone
        set to UTC so that timestamps mean the same on every engine.

    Raises:
        ValueError: the mode is unknown, or remote mode has no ``SPARK_REMOTE``.
    """
    from pyspark.sql import SparkSession

    settings = settings or Settings.from_env()
    mode = mode or settings.engine
    conf = _session_conf(settings)
    if mode == "embedded":
        return _connect(embedded_server_url(settings), conf)
    if mode == "remote":
        if not settings.spark_remote:
            raise ValueError("remote mode needs SPARK_REMOTE=sc://host:port")
        return _connect(settings.spark_remote, conf)
    if mode == "classic":
        active = SparkSession.getActiveSession()
        if active is not None:
            return active
        builder = SparkSession.builder.appName(app_name)
        if settings.spark_master:
            builder = builder.master(settings.spark_master)
        conf |= {"spark.ui.enabled": "false"}
        if settings.classic_delta:
            conf |= DELTA_CLASSIC_CONF
    else:
        raise ValueError(f"unknown engine mode {mode!r}: use embedded, remote or classic")
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _connect(url: str, conf: dict[str, str]) -> SparkSession:
    """A Spark Connect session at ``url`` that accepts result messages up to ``RESULT_MESSAGE_LIMIT``
    (what ``SparkSession.builder.remote(url)`` does, with the channel's receive limit raised)."""
    from pyspark.sql.connect.client import DefaultChannelBuilder
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"  # as pyspark's own builder does for a remote session
    channel = DefaultChannelBuilder(
        url, channelOptions=[("grpc.max_receive_message_length", RESULT_MESSAGE_LIMIT)]
    )
    return ConnectSession.builder.channelBuilder(channel).config(map=conf).getOrCreate()


def describe(spark: SparkSession) -> str:
    """A one-line description of the engine behind a session, for logs and ``cdp engine``."""
    kind = (
        "Spark Connect" if type(spark).__module__.startswith("pyspark.sql.connect") else "classic JVM Spark"
    )
    return f"{kind} {spark.version}"
