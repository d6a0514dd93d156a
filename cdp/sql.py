"""Analyst SQL over the lake: the Delta tables a role may read, as read-only views named ``<layer>.<name>``,
in a sandbox.

``cdp sql`` and the web API's SQL endpoint use DuckDB over delta-rs snapshots rather than the Spark engine:

- a query answers in milliseconds with no engine to start (starting embedded Sail and planning through
  Spark Connect costs seconds per statement, which an interactive shell cannot afford);
- each view reads one consistent Delta snapshot through ``deltalake`` (Arrow dataset, partition pruning
  and column projection pushed down), so analysts never hold a writer lock or touch the pipeline's session;
- DuckDB has no Delta writer here: nothing an analyst types can commit to a lake table.

Both paths run the same sandbox, whoever types the query (``cdp.access`` decides what each role sees):

- views only for the tables the role may read, each over an Arrow dataset narrowed to the columns the role
  may read (the dataset's own registration name is random and holds no more than the view);
- no file, network or extension access (``enable_external_access``, extension auto-install and auto-load
  off, no spill directory, no Python replacement scans), and the configuration locked;
- exactly one statement, and it must be a query (``SELECT``, ``WITH``, ``FROM``, ``VALUES``, ``DESCRIBE``,
  ``SUMMARIZE``, ``SHOW``); ``SET``, ``PRAGMA``, ``ATTACH``, ``COPY``, ``INSTALL``/``LOAD``, DDL and DML are
  refused before DuckDB sees them;
- a time limit (``Settings.sql_timeout_seconds``) that interrupts the query, and a row limit
  (``Settings.sql_max_rows``) on what comes back.

The same SQL dialect questions (``date_trunc``, ``count(DISTINCT ...)``, window functions) mostly agree with
Spark SQL; where they differ, DuckDB's documentation is the reference.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cdp.access import AccessError, TablePolicy, policy_for
from cdp.settings import Settings

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

LAYERS = ("bronze", "silver", "gold", "quarantine", "vault")
FORMATS = ("table", "csv", "parquet", "json")

# Applied once the views exist. No spill directory first (without external access it cannot be changed),
# lock_configuration last, so nothing a query does can undo the others.
SANDBOX = (
    "SET temp_directory = ''",
    "SET enable_external_access = false",
    "SET allow_community_extensions = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET python_enable_replacements = false",
    "SET lock_configuration = true",
)


class SqlError(ValueError):
    """A query failed (syntax, unknown table or column, time limit) or was refused by the sandbox (more than
    one statement, not a query, file or network access), or its result cannot be written."""


class SqlRefused(SqlError):
    """The sandbox refused the query: several statements, not a query, or file, network or extension
    access."""


class SqlAccessError(SqlRefused):
    """The query reads a table or a column the caller's role may not read; the message says which and why.

    Attributes:
        status: the HTTP status a service answers with.
    """

    status = 403


@dataclass(frozen=True)
class SqlResult:
    """The rows of one query and what it cost.

    Attributes:
        table: the result as a ``pyarrow.Table`` (at most the row limit).
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


_TABLE_NAME = re.compile(rf"^({'|'.join(LAYERS)})\.[a-z0-9_]+$")
_MISSING_COLUMN = re.compile(r'column (?:named )?"([^"]+)"')


def _mentions(sql: str, table: str) -> bool:
    """Whether the query text names ``table`` (``gold.x``, ``gold . "x"``, or inside a string literal)."""
    layer, name = table.split(".", 1)
    return re.search(rf'\b{layer}\s*\.\s*"?{name}\b', sql, re.IGNORECASE) is not None


class LakeSQL:
    """A sandboxed DuckDB connection with one view per lake table the role may read.

    Args:
        lake_root: the lake root (local folder, or an object-store URI when ``tables`` is given).
        role: whose rules apply (``cdp.access.ROLES``): the tables and columns the views show.
        policy: the rules themselves, instead of ``policy_for(role)``.
        tables: names to consider (``layer.name``); every table under a local root when omitted. Tables the
            role may not read are left out either way.
        timeout_seconds: a query running longer is interrupted (``Settings.sql_timeout_seconds``).
        max_rows: most rows one query returns, whatever limit the caller asks for
            (``Settings.sql_max_rows``).
        memory_limit: DuckDB's memory limit, e.g. ``"2GB"``.

    Raises:
        SqlError: a named table is malformed, or the role is unknown.
    """

    def __init__(
        self,
        lake_root: str | Path,
        *,
        role: str = "analyst",
        policy: TablePolicy | None = None,
        tables: Iterable[str] | None = None,
        timeout_seconds: float = Settings.sql_timeout_seconds,
        max_rows: int = Settings.sql_max_rows,
        memory_limit: str | None = None,
    ) -> None:
        import duckdb

        self.root = str(lake_root).rstrip("/")
        try:
            self.policy = policy or policy_for(role)
        except AccessError as exc:
            raise SqlError(str(exc)) from None
        self.role = self.policy.role
        self.timeout_seconds = timeout_seconds
        self.max_rows = max_rows
        names = sorted(tables) if tables is not None else _local_tables(self.root)
        for name in names:
            if not _TABLE_NAME.match(name):
                raise SqlError(f"table {name!r} must be <layer>.<name> with layer one of {', '.join(LAYERS)}")
        self.refused: dict[str, str] = {
            n: r for n in names if (r := self.policy.table_refusal(n)) is not None
        }
        self.hidden: dict[str, dict[str, str]] = {}
        self.tables: list[str] = []
        self.skipped: dict[str, str] = {}
        self.con: duckdb.DuckDBPyConnection = duckdb.connect(":memory:")
        if memory_limit:
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        for layer in LAYERS:
            self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")
        for name in names:
            if name not in self.refused:
                self._register(name)
        for statement in SANDBOX:
            self.con.execute(statement)

    @classmethod
    def from_settings(cls, settings: Settings, role: str, **kwargs) -> LakeSQL:
        """A connection over ``settings.lake_root`` with the settings' time and row limits.

        Args:
            settings: where the lake is, and ``sql_timeout_seconds`` / ``sql_max_rows``.
            role: whose rules apply.
            **kwargs: more :class:`LakeSQL` arguments (``tables``, ``memory_limit``).
        """
        return cls(
            settings.lake_root,
            role=role,
            timeout_seconds=settings.sql_timeout_seconds,
            max_rows=settings.sql_max_rows,
            **kwargs,
        )

    def _register(self, name: str) -> None:
        """One view ``layer."name"`` over the table's snapshot, narrowed to the role's columns."""
        import pyarrow as pa
        from deltalake import DeltaTable

        from cdp.leases import readable_version

        layer, table = name.split(".", 1)
        try:
            # A table whose last writer died half-way shows its last complete version (cdp.leases).
            version = readable_version(self.root, name)
            dataset = DeltaTable(f"{self.root}/{layer}/{table}", version=version).to_pyarrow_dataset()
        except Exception as exc:  # one unreadable table must not hide the others
            self.skipped[name] = str(exc).splitlines()[0]
            return
        all_columns = dataset.schema.names
        visible = self.policy.columns(name, all_columns)
        self.hidden[name] = self.policy.hidden_columns(name, all_columns)
        if not visible:
            self.skipped[name] = f"no column of it is readable by role {self.role}"
            return
        if len(visible) < len(all_columns):
            # The dataset itself reads only these columns: its registration name, though random, is
            # queryable, and must show no more than the view.
            dataset = dataset.replace_schema(pa.schema([dataset.schema.field(c) for c in visible]))
        arrow_name = f"_lake_{secrets.token_hex(12)}"
        self.con.register(arrow_name, dataset)
        self.con.execute(f'CREATE VIEW {layer}."{table}" AS SELECT * FROM "{arrow_name}"')
        self.tables.append(name)

    def validate_query(self, sql: str) -> str:
        """The one query in ``sql``, refused unless it is exactly one read-only statement.

        Raises:
            SqlError: empty, or a syntax error.
            SqlRefused: several statements, or not a query.
        """
        import duckdb

        if not sql.strip().rstrip(";").strip():
            raise SqlError("empty query")
        try:
            statements = self.con.extract_statements(sql)
        except duckdb.Error as exc:
            raise SqlError(_first_lines(str(exc))) from None
        if len(statements) != 1:
            raise SqlRefused(f"one statement at a time: this text holds {len(statements)}")
        kind = statements[0].type
        if kind != duckdb.StatementType.SELECT:
            raise SqlRefused(
                f"only queries run here (SELECT, WITH, FROM, DESCRIBE ...): the lake is read-only to SQL and "
                f"a {kind.name} statement is refused"
            )
        return statements[0].query

    def query(self, sql: str, *, limit: int | None = None) -> SqlResult:
        """Run one query and return its rows.

        Args:
            sql: one read-only statement (views are named ``silver.orders``, ``gold.oneid_map`` ...).
            limit: keep at most this many rows (the result reports whether more existed); never more than
                ``max_rows``.

        Raises:
            SqlError: the statement failed (DuckDB's message, first lines only) or ran longer than
                ``timeout_seconds``.
            SqlRefused: the sandbox refused it (several statements, not a query, file or network access).
            SqlAccessError: it names a table or a column the role may not read.
        """
        import duckdb
        import pyarrow as pa

        statement = self.validate_query(sql)
        cap = self.max_rows if limit is None else max(0, min(limit, self.max_rows))
        done, timed_out = threading.Event(), threading.Event()

        def watchdog() -> None:
            if done.wait(self.timeout_seconds):
                return
            timed_out.set()
            while not done.is_set():  # again until it stops: an interrupt may land between two operators
                self.con.interrupt()
                done.wait(0.1)

        start = time.perf_counter()
        watcher = threading.Thread(target=watchdog, name="sql-time-limit", daemon=True)
        watcher.start()
        try:
            reader = self.con.sql(statement).to_arrow_reader(min(max(cap, 1), 100_000))
            batches, n = [], 0
            for batch in reader:
                batches.append(batch)
                n += batch.num_rows
                if n > cap:
                    break
            reader.close()
            table = pa.Table.from_batches(batches, schema=reader.schema)
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            if not timed_out.is_set():
                raise self._explain(sql, exc) from None
        finally:
            done.set()
            watcher.join()
        if timed_out.is_set():
            raise SqlError(
                f"query exceeded {self.timeout_seconds:g} s and was stopped "
                "(the SQL time limit, CDP_SQL_TIMEOUT)"
            )
        return SqlResult(table.slice(0, cap), table.num_rows > cap, time.perf_counter() - start)

    def _explain(self, sql: str, exc: Exception) -> SqlError:
        """DuckDB's error, or the access rule behind it when the query names a table or a column the role
        may not read (DuckDB only knows that they do not exist)."""
        import duckdb

        message = _first_lines(str(exc))
        if isinstance(exc, duckdb.PermissionException):
            return SqlRefused(message)
        if not isinstance(exc, duckdb.CatalogException | duckdb.BinderException):
            return SqlError(message)
        for table, reason in self.refused.items():
            if _mentions(sql, table):
                return SqlAccessError(f"role {self.role} may not read {table}: {reason}")
        if m := _MISSING_COLUMN.search(message):
            column = m.group(1)
            hidden_in = [t for t, cols in self.hidden.items() if column in cols]
            named = [t for t in hidden_in if _mentions(sql, t)] or hidden_in
            if named:
                reason = self.hidden[named[0]][column]
                return SqlAccessError(
                    f"column {column} of {named[0]} is hidden from role {self.role}: {reason}"
                )
        return SqlError(message)

    def describe(self, table: str) -> list[tuple[str, str]]:
        """Column names and DuckDB types of a registered table (the columns the role may read).

        Raises:
            SqlError: the table is not registered.
            SqlAccessError: the role may not read it.
        """
        if table in self.refused:
            raise SqlAccessError(f"role {self.role} may not read {table}: {self.refused[table]}")
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
