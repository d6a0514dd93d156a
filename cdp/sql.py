"""Analyst SQL over the lake: every Delta table registered as a read-only view named ``<layer>.<name>``.

``cdp sql`` and the web API's SQL endpoint use DuckDB over delta-rs snapshots rather than the Spark engine:

- a query answers in milliseconds with no engine to start (starting embedded Sail and planning through
  Spark Connect costs seconds per statement, which an interactive shell cannot afford);
- each view reads one consistent Delta snapshot through ``deltalake`` (Arrow dataset, partition pruning
  and column projection pushed down), so analysts never hold a writer lock or touch the pipeline's session;
- DuckDB has no Delta writer here: nothing an analyst types can commit to a lake table.

The same SQL dialect questions (``date_trunc``, ``count(DISTINCT ...)``, window functions) mostly agree with
Spark SQL; where they differ, DuckDB's documentation is the reference.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

LAYERS = ("bronze", "silver", "gold", "quarantine")
FORMATS = ("table", "csv", "parquet", "json")


class SqlError(ValueError):
    """A query failed (syntax, unknown table or column) or its result cannot be written."""


@dataclass(frozen=True)
class SqlResult:
    """The rows of one query and what it cost.

    Attributes:
        table: the result as a ``pyarrow.Table`` (at most ``limit`` rows when a limit was given).
        truncated: more rows existed than the limit.
        seconds: wall time of the query.
    """

    table: pa.Table
    truncated: bool
    seconds: float

    def rows(self) -> list[dict]:
        """The result as a list of dicts (JSON-ready values left to the caller)."""
        return self.table.to_pylist()


def _local_tables(root: str) -> list[str]:
    found = []
    for layer in LAYERS:
        folder = Path(root) / layer
        if folder.is_dir():
            found += [f"{layer}.{p.name}" for p in folder.iterdir() if (p / "_delta_log").is_dir()]
    return sorted(found)


_TABLE_NAME = re.compile(r"^(bronze|silver|gold|quarantine)\.[a-z0-9_]+$")


class LakeSQL:
    """A DuckDB connection with one view per lake table.

    Args:
        lake_root: the lake root (local folder, or an object-store URI when ``tables`` is given).
        tables: names to register (``layer.name``); every table under a local root when omitted.
        sandbox: forbid DuckDB's own file and network access (``read_csv('/etc/...')``, ``COPY ... TO``,
            extension downloads) once the views exist; used by the web service, where the person typing the
            query is not the person running the process.
        memory_limit: DuckDB's memory limit, e.g. ``"2GB"``.

    Raises:
        SqlError: a named table is malformed or not a Delta table.
    """

    def __init__(
        self,
        lake_root: str | Path,
        *,
        tables: Iterable[str] | None = None,
        sandbox: bool = False,
        memory_limit: str | None = None,
    ) -> None:
        import duckdb
        from deltalake import DeltaTable

        self.root = str(lake_root).rstrip("/")
        names = sorted(tables) if tables is not None else _local_tables(self.root)
        self.con: duckdb.DuckDBPyConnection = duckdb.connect(":memory:")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.tables: list[str] = []
        self.skipped: dict[str, str] = {}
        for layer in LAYERS:
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")
        for name in names:
            if not _TABLE_NAME.match(name):
                raise SqlError(f"table {name!r} must be <layer>.<name> with layer one of {', '.join(LAYERS)}")
            layer, table = name.split(".", 1)
            try:
                dataset = DeltaTable(f"{self.root}/{layer}/{table}").to_pyarrow_dataset()
            except Exception as exc:  # one unreadable table must not hide the others
                self.skipped[name] = str(exc).splitlines()[0]
                continue
            arrow_name = f"_delta_{layer}__{table}"
            self.con.register(arrow_name, dataset)
            self.con.execute(f'CREATE VIEW {layer}."{table}" AS SELECT * FROM "{arrow_name}"')
            self.tables.append(name)
        if sandbox:
            self.con.execute("SET enable_external_access = false")
            self.con.execute("SET lock_configuration = true")

    def query(self, sql: str, *, limit: int | None = None) -> SqlResult:
        """Run one SQL statement and return its rows.

        Args:
            sql: the statement (views are named ``bronze.orders``, ``gold.oneid_map`` ...).
            limit: keep at most this many rows (the result reports whether more existed).

        Raises:
            SqlError: the statement failed; the message is DuckDB's, first lines only.
        """
        import duckdb

        sql = sql.strip().rstrip(";").strip()
        if not sql:
            raise SqlError("empty query")
        start = time.perf_counter()
        try:
            relation = self.con.sql(sql)
            if relation is None:  # a statement without rows (SET, CREATE VIEW in this session)
                import pyarrow as pa

                return SqlResult(pa.table({}), False, time.perf_counter() - start)
            if limit is not None:
                reader = relation.fetch_record_batch(rows_per_batch=min(max(limit, 1), 100_000))
                batches, n = [], 0
                for batch in reader:
                    batches.append(batch)
                    n += batch.num_rows
                    if n > limit:
                        break
                import pyarrow as pa

                table = pa.Table.from_batches(batches, schema=reader.schema)
                truncated = table.num_rows > limit
                table = table.slice(0, limit)
            else:
                table = relation.to_arrow_table()
                truncated = False
        except duckdb.Error as exc:
            raise SqlError(_first_lines(str(exc))) from None
        return SqlResult(table, truncated, time.perf_counter() - start)

    def describe(self, table: str) -> list[tuple[str, str]]:
        """Column names and DuckDB types of a registered table.

        Raises:
            SqlError: the table is not registered.
        """
        if table not in self.tables:
            raise SqlError(f"unknown table {table!r}; registered: {', '.join(self.tables) or 'none'}")
        layer, name = table.split(".", 1)
        rows = self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [layer, name],
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> LakeSQL:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first_lines(message: str, n: int = 6) -> str:
    lines = [line for line in message.splitlines() if line.strip()]
    return "\n".join(lines[:n])


def write_result(table: pa.Table, fmt: str, output: str | Path) -> Path:
    """Write a query result to ``output`` as CSV, Parquet or JSON lines.

    Raises:
        SqlError: the format is unknown or the file cannot be written.
    """
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            pacsv.write_csv(table, path)
        elif fmt == "parquet":
            pq.write_table(table, path)
        elif fmt == "json":
            import json

            with path.open("w", encoding="utf-8") as fh:
                for row in table.to_pylist():
                    fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        else:
            raise SqlError(f"format {fmt!r}: use csv, parquet or json for a file")
    except OSError as exc:
        raise SqlError(f"cannot write {path}: {exc}") from None
    return path
