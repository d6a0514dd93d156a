"""``cdp engine``: show which Spark engine the settings select (``cdp.engine``), or run a Sail Spark Connect
server in the foreground for jobs to reach through ``SPARK_REMOTE``."""

from __future__ import annotations

import typer

from apps.cli.common import console, settings_for

app = typer.Typer(
    name="engine",
    help="The Spark engine: show it, or run a Sail Spark Connect server.",
    no_args_is_help=True,
)


@app.command("info")
def engine_info() -> None:
    """Start (or connect to) the configured engine and print what it is."""
    from cdp.engine import describe, get_spark

    settings = settings_for()
    spark = get_spark(settings)
    console.print(f"mode {settings.engine}: {describe(spark)}; lake at {settings.lake_root}")


@app.command("server")
def engine_server(port: int = 50051, ip: str = "127.0.0.1") -> None:
    """Run a Sail Spark Connect server in the foreground (point jobs at it with SPARK_REMOTE)."""
    from pysail.spark import SparkConnectServer

    server = SparkConnectServer(ip=ip, port=port)
    console.print(f"Sail Spark Connect server on sc://{ip}:{port} (Ctrl+C stops it)")
    server.start(background=False)
