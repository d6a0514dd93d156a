"""The lake catalog: table names -> Delta paths under one lake root, and the only place that reads and
writes lake tables.

Tables are named ``<layer>.<name>`` with layer ``bronze``, ``silver``, ``gold``, ``quarantine`` or ``vault``
and live at ``<lake root>/<layer>/<name>``. ``vault`` holds encrypted identifiers and is never readable by
analyst SQL (``cdp.access``). Writes go through the engine (Sail or Spark) with ``format("delta")``
and SQL ``MERGE INTO`` / ``DELETE``; maintenance (compaction, vacuum, history) goes through delta-rs
(``deltalake``) on the same paths, because Sail has no ``OPTIMIZE``/``VACUUM``/``DESCRIBE HISTORY``.

Sail does not detect conflicting Delta commits: callers must never write one table from two places at once.
A run holds the lease of every table it writes (``Lake.lease``, :mod:`cdp.leases`). Reading a table whose
last writer died half-way reads the table's last complete version, the one it had before that run, so a
stage's tables show the last complete run together; a table that run created raises ``PartialTableError``
naming the run to repeat.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas import SILVER_SOURCE, SourceContract, TableContract, load_tables

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from cdp.settings import Settings

log = logging.getLogger(__name__)

LAYERS = ("bronze", "silver", "gold", "quarantine", "vault")


class LakeError(ValueError):
    """A table name, a write or a read does not fit the lake or the table's contract."""


def parse_dt(dt: str | _dt.date) -> _dt.date:
    """Parse a logical date given as ``YYYY-MM-DD``.

    Raises:
        LakeError: the value is not a valid date.
    """
    if isinstance(dt, _dt.date):
        return dt
    try:
        return _dt.date.fromisoformat(dt)
    except ValueError:
        raise LakeError(f"dt {dt!r} is not a date; use YYYY-MM-DD") from None


def split_table_name(table: str) -> tuple[str, str]:
    """Split ``layer.name`` and check both parts.

    Raises:
        LakeError: the layer is unknown or the name is malformed.
    """
    layer, sep, name = table.partition(".")
    if not sep or layer not in LAYERS or not name or not name.replace("_", "").isalnum():
        raise LakeError(f"table {table!r} must be <layer>.<name> with layer one of {', '.join(LAYERS)}")
    return layer, name


def bronze_table(source: str) -> str:
    """The bronze table of a source: its rows as landed (``bronze.<source>``)."""
    return f"bronze.{source}"


def quarantine_table(source: str) -> str:
    """The quarantine table of a source: its rejected rows with reasons (``quarantine.<source>``)."""
    return f"quarantine.{source}"


def silver_table(entity: str) -> str:
    """The silver table of an entity (``silver.<entity>``); several sources may feed one entity."""
    return f"silver.{entity}"


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


class Lake:
    """Delta tables under one root, read and written through one Spark session.

    Args:
        spark: the session that runs reads and writes.
        root: the lake root, a local folder or an object-store URI (``s3://bucket/lake``).
        contracts: table contracts by name; the packaged ``schemas/tables`` when omitted. A table with a
            contract is written with exactly the contract's columns, in order, cast to its types.
    """

    def __init__(
        self, spark: SparkSession, root: str | Path, contracts: dict[str, TableContract] | None = None
    ) -> None:
        self.spark = spark
        self.root = str(Path(root).resolve()) if _is_local(str(root)) else str(root).rstrip("/")
        self.contracts = load_tables() if contracts is None else contracts

    @classmethod
    def from_settings(cls, spark: SparkSession, settings: Settings) -> Lake:
        """The lake at ``settings.lake_root``."""
        return cls(spark, settings.lake_root)

    # ---- naming ---------------------------------------------------------------------------------------

    def path(self, table: str) -> str:
        """The storage path of ``table`` (``gold.oneid_map`` -> ``<root>/gold/oneid_map``)."""
        layer, name = split_table_name(table)
        return f"{self.root}/{layer}/{name}"

    def _sql_ref(self, table: str) -> str:
        return "delta.`" + self.path(table).replace("`", "``") + "`"

    def exists(self, table: str) -> bool:
        """Whether ``table`` is a Delta table with at least one commit."""
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.path(table))

    def tables(self) -> list[str]:
        """Every Delta table under the lake root, as ``layer.name``, sorted. Local roots only."""
        if not _is_local(self.root):
            raise LakeError("listing tables needs a local lake root; name the table instead")
        found = []
        for layer in LAYERS:
            folder = Path(self.root) / layer
            if folder.is_dir():
                found += [f"{layer}.{p.name}" for p in folder.iterdir() if (p / "_delta_log").is_dir()]
        return sorted(found)

    # ---- reads ----------------------------------------------------------------------------------------

    def latest_dt(
        self,
        table: str,
        *,
        before: _dt.date | None = None,
        on_or_before: _dt.date | None = None,
        column: str = "dt",
    ) -> _dt.date | None:
        """The latest value of the date column ``column`` of ``table``, optionally bounded.

        Args:
            table: ``layer.name``.
            before: only dates strictly before this one.
            on_or_before: only dates on or before this one.
            column: the date column.

        Returns:
            The date, or None when the table does not exist or holds no such date.
        """
        if not self.exists(table):
            return None
        from pyspark.sql import functions as F

        df = self.read(table)
        if before is not None:
            df = df.where(F.col(column) < F.lit(before))
        if on_or_before is not None:
            df = df.where(F.col(column) <= F.lit(on_or_before))
        return df.agg(F.max(column)).collect()[0][0]

    def read(self, table: str, *, version: int | None = None) -> DataFrame:
        """Read ``table``, at its latest complete version or at ``version`` (time travel). The latest complete
        version is the latest one unless the table's last writer died half-way (:meth:`readable_version`).

        Raises:
            LakeError: the table does not exist.
            cdp.leases.PartialTableError: the writer that died created the table; nothing complete to read.
        """
        if not self.exists(table):
            raise LakeError(
                f"table {table} does not exist at {self.path(table)}; run the stage that writes it"
            )
        if version is None:
            version = self.readable_version(table)
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", int(version))
        return reader.load(self.path(table))

    def readable_version(self, table: str) -> int | None:
        """None to read ``table`` at its latest version; else the version to read instead: its last writer
        died half-way, and every table that run held shows the run before it, together (:mod:`cdp.leases`).

        Raises:
            cdp.leases.PartialTableError: the writer that died created the table; nothing complete to read.
        """
        from cdp.leases import readable_version

        version = readable_version(self.root, table)
        if version is not None:
            log.warning(
                "%s: its last writer stopped half-way; reading version %d, the last complete one, until the "
                "run is repeated",
                table,
                version,
            )
        return version

    def read_silver(self, source: SourceContract) -> DataFrame:
        """The rows of ``silver.<entity>`` that one source wrote (:meth:`read_source`).

        Raises:
            LakeError: the table does not exist.
        """
        return self.read_source(silver_table(source.entity), source.name)

    def read_source(self, table: str, source: str) -> DataFrame:
        """The rows of a silver table that one source wrote: several sources may feed one entity, and each
        row names its source in ``_source`` (a table written before that column existed is taken whole).

        Raises:
            LakeError: the table does not exist.
        """
        from pyspark.sql import functions as F

        df = self.read(table)
        return df.where(F.col(SILVER_SOURCE) == source) if SILVER_SOURCE in df.columns else df

    def read_dt(self, table: str, dt: str | _dt.date, *, column: str = "dt") -> DataFrame:
        """The rows of one logical date of ``table`` (one partition of a ``dt``-partitioned table).

        Raises:
            LakeError: the table does not exist, or ``dt`` is not a date.
        """
        from pyspark.sql import functions as F

        return self.read(table).where(F.col(column) == F.lit(parse_dt(dt)))

    # ---- writes ---------------------------------------------------------------------------------------

    def conform(self, table: str, df: DataFrame) -> DataFrame:
        """Select and cast ``df`` to the contract of ``table``; unchanged when the table has no contract.

        Raises:
            LakeError: ``df`` lacks contract columns or has columns the contract does not declare.
        """
        contract = self.contracts.get(table)
        if contract is None:
            return df
        from pyspark.sql import functions as F

        have = set(df.columns)
        want = [c.name for c in contract.columns]
        missing = [c for c in want if c not in have]
        extra = sorted(have - set(want))
        if missing or extra:
            raise LakeError(
                f"write to {table} does not match its contract: missing columns {missing}, "
                f"undeclared columns {extra}"
            )
        return df.select(*[F.col(c.name).cast(c.spark_type).alias(c.name) for c in contract.columns])

    def _partitions(self, table: str, default: Sequence[str] = ()) -> list[str]:
        contract = self.contracts.get(table)
        return list(contract.partition_by) if contract and contract.partition_by else list(default)

    def _writer(self, table: str, df: DataFrame, mode: str, partition_by: Sequence[str] = ()):
        writer = self.conform(table, df).write.format("delta").mode(mode)
        parts = self._partitions(table, partition_by)
        if parts:
            writer = writer.partitionBy(*parts)
        return writer

    def append(self, table: str, df: DataFrame, *, merge_schema: bool = False) -> None:
        """Append rows to ``table``, creating it on first write.

        Args:
            table: ``layer.name``.
            df: rows to add.
            merge_schema: allow new columns (schema drift reported upstream).
        """
        writer = self._writer(table, df, "append")
        if merge_schema:
            writer = writer.option("mergeSchema", "true")
        writer.save(self.path(table))

    def overwrite(self, table: str, df: DataFrame, *, partition_by: Sequence[str] = ()) -> None:
        """Replace the whole content (and schema) of ``table`` in one commit (older versions stay readable);
        partitioned by its contract's columns, else by ``partition_by``."""
        writer = self._writer(table, df, "overwrite", partition_by)
        writer.option("overwriteSchema", "true").save(self.path(table))

    def replace_dt(self, table: str, df: DataFrame, dt: str | _dt.date, *, column: str = "dt") -> None:
        """Replace one logical date of a ``dt``-partitioned table atomically; rerunning gives the same table.

        The ``dt`` column of ``df`` is set to ``dt`` so that no row can land in another date.

        Args:
            table: ``layer.name``.
            df: the complete content of that date.
            dt: the logical date (``YYYY-MM-DD``).
            column: the partition column.
        """
        from pyspark.sql import functions as F

        dt = parse_dt(dt)
        df = df.withColumn(column, F.lit(dt))
        writer = self._writer(table, df, "overwrite", [column])
        if self.exists(table):
            # Sail refuses replaceWhere on a table without commits, so the first write creates the table.
            writer = writer.option("replaceWhere", f"{column} = DATE'{dt.isoformat()}'")
        writer.save(self.path(table))

    def upsert(
        self, table: str, df: DataFrame, keys: Sequence[str], *, newer: str | None = None, update: bool = True
    ) -> None:
        """Insert new rows and update matching ones with SQL ``MERGE INTO`` on null-safe equality of ``keys``.

        ``df`` must hold at most one row per key. Creates the table on first write.

        Args:
            table: ``layer.name``.
            df: the incoming rows.
            keys: the columns that identify a row.
            newer: update a matching row only when the incoming value of this column is greater
                (latest wins; a rerun with the same rows changes nothing).
            update: when False, matching rows are left alone (first wins; insert only).
        """
        if not keys:
            raise LakeError(f"upsert into {table} needs at least one key column")
        df = self.conform(table, df)
        if not self.exists(table):
            self._writer(table, df, "overwrite").save(self.path(table))
            return
        view = f"_cdp_src_{uuid.uuid4().hex}"
        df.createOrReplaceTempView(view)
        on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        matched = ""
        if update:
            condition = f" AND s.`{newer}` > t.`{newer}`" if newer else ""
            matched = f"WHEN MATCHED{condition} THEN UPDATE SET * "
        try:
            self.spark.sql(
                f"MERGE INTO {self._sql_ref(table)} AS t USING {view} AS s ON {on} "
                f"{matched}WHEN NOT MATCHED THEN INSERT *"
            ).collect()
        finally:
            self.spark.catalog.dropTempView(view)

    @contextmanager
    def lock(self, table: str) -> Iterator[None]:
        """Hold an exclusive lock on ``table`` for the block, across processes on this machine.

        Sail does not detect conflicting Delta commits, so tables written by several tasks of one run (run
        logs, quality results) are written under this lock. Local lake roots only; on an object store each
        such table must have a single writer.
        """
        if not _is_local(self.root):
            yield
            return
        folder = Path(self.root) / "_locks"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / f"{table}.lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextmanager
    def lease(
        self, tables: Sequence[str], holder: Any, *, wait: float | None = None, fall_back: bool = True
    ) -> Iterator[dict]:
        """Hold the leases of ``tables`` for a whole run: no other run (another process, a DAG task beside a
        CLI run) writes them meanwhile, and a run that dies holding them is known to the next one
        (:mod:`cdp.leases`). Yields the dead holders found (table -> ``cdp.leases.Holder``).

        Args:
            tables: what the run writes.
            holder: who runs.
            wait: seconds to wait for a busy lease (``CDP_LEASE_WAIT`` when omitted).
            fall_back: should the run die half-way, readers read each table's version from before the run
                (the default); False for a run whose earlier versions must not be read again, such as an
                erasure: readers are then refused until it is rerun.

        Raises:
            cdp.leases.LeaseError: another live run holds one of them after ``wait`` seconds.
        """
        from cdp.leases import lease

        base = self._version_if_table if fall_back else None
        with lease(self.root, tables, holder, wait=wait, base_version=base) as dead:
            yield dead

    def _version_if_table(self, name: str) -> int | None:
        """The latest version of the table ``name``, or None: no such table, or not a table name."""
        try:
            return self.version(name) if self.exists(name) else None
        except (LakeError, ValueError):
            return None

    def delete(self, table: str, where: str) -> None:
        """Delete the rows of ``table`` matching the SQL predicate ``where``."""
        self.spark.sql(f"DELETE FROM {self._sql_ref(table)} WHERE {where}").collect()

    # ---- maintenance through delta-rs -------------------------------------------------------------------

    def _delta(self, table: str):
        from deltalake import DeltaTable

        if not self.exists(table):
            raise LakeError(f"table {table} does not exist at {self.path(table)}")
        return DeltaTable(self.path(table))

    def version(self, table: str) -> int:
        """The latest committed version of ``table``."""
        return self._delta(table).version()

    def history(self, table: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits of ``table``, newest first (version, timestamp, operation, parameters, metrics)."""
        return self._delta(table).history(limit)

    def compact(self, table: str) -> dict[str, Any]:
        """Rewrite small files into larger ones (delta-rs ``optimize.compact``); returns its metrics."""
        return self._delta(table).optimize.compact()

    def vacuum(self, table: str, *, retention_hours: int = 168, dry_run: bool = True) -> list[str]:
        """Remove files no longer referenced by versions younger than ``retention_hours``.

        Args:
            table: ``layer.name``.
            retention_hours: keep files needed by versions newer than this (7 days by default, so time
                travel and readers in flight keep working); below 168 hours requires ``dry_run`` or a
                deliberate override by the caller through delta-rs.
            dry_run: only list what would be removed.

        Returns:
            The files removed (or that would be removed).
        """
        if retention_hours < 168 and not dry_run:
            raise LakeError(
                "vacuum retention below 168 hours can break time travel and running readers; "
                "use a dry run to inspect or keep the 7-day default"
            )
        return self._delta(table).vacuum(
            retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=False
        )

    def to_arrow(self, table: str, *, version: int | None = None):
        """Read ``table`` with delta-rs into a ``pyarrow.Table``, without the engine (small tables only); at
        its latest complete version unless ``version`` is given (:meth:`read`)."""
        from deltalake import DeltaTable

        if version is None:
            version = self.readable_version(table)
        return DeltaTable(self.path(table), version=version).to_pyarrow_table()
