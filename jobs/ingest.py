"""Ingest one source for one logical date: landed files -> bronze, quarantine and silver Delta tables.

    landing/<source>/dt=YYYY-MM-DD/*
        -> bronze.<source>       as landed (text columns) + lineage, direct PII encrypted
        -> quarantine.<source>   rejected rows: raw line and reasons
        -> silver.<entity>       typed, normalised, PII hashed, deduplicated
        -> vault.identifiers     new phones and emails, encrypted (exports hash them for ad platforms)
        -> gold.ingest_runs      one row per run: files, row balance, reasons
        -> gold.quality_results  the quality gate's results on bronze, quarantine and the silver candidates

Steps, one function each around the run's context (``cdp.run.RunContext``): land (check the files) ->
parse (and map the file's fields to the contract's columns) -> check (type, reasons) -> write bronze ->
write quarantine -> dedup (silver candidates, row balance) -> audit -> publish. The files are parsed once,
into the one scratch checkpoint of the checked rows (Sail has no cache); the silver candidates are the other,
as the audit and the merge both read them.

Write-audit-publish: the rows bound for silver are written to the run's scratch, validated with the suites
of ``quality/suites`` and merged only when no critical expectation fails. The scratch folder is the run's
own and is removed when the run ends, also on error.

Idempotent: bronze and quarantine replace the date's partition; silver is merged by the contract's keys
(latest ``order_by`` wins, otherwise first wins) and the vault only gains identifiers it lacks, so rerunning
a date or re-landing the same file leaves the tables as they were. The batch id and each file's ingest time
derive from the files themselves.

Run as ``cdp ingest <source> --dt YYYY-MM-DD`` or ``python -m jobs.ingest <source> --dt YYYY-MM-DD``
(also under spark-submit).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NoReturn

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.lake import bronze_table, quarantine_table, silver_table
from cdp.run import RunContext, union_all
from cdp.settings import Settings
from ingest.landing import (
    LINE_BREAK,
    LandedFile,
    LandingError,
    check_file,
    describe,
    find_files,
    json_keys_drift,
    landing_dir,
    misnamed_folders,
    schema_drift,
    unmatched_files,
    unmatched_reason,
)
from ingest.protect import (
    DETAILS,
    VAULT,
    protect_bronze_pii,
    protect_direct_pii,
    vault_columns,
    vault_identifiers,
    with_checked_rows,
)
from ingest.rows import (
    EXTRA,
    KEYS,
    MALFORMED,
    POSITION,
    RAW,
    RAW_FIELDS,
    REASONS,
    build_raw_line,
    from_parquet,
    latest_per_key,
    parse_lines,
    reason_counts,
    with_mapped_columns,
)
from jobs.privacy import suppress_erased
from quality.gates import QualityGateError, gate_ingest
from schemas import SILVER_SOURCE, ContractError, SourceContract, load_source, load_sources

LINEAGE = ["_source_file", "_batch_id", "_ingested_at"]
LANDED = "_landed_"
"""Prefix of the typed checkpoint's copies of a text record's columns as landed, for bronze."""


class IngestError(RuntimeError):
    """The run could not publish its batch: too many bad rows, files refused as a whole, or a failed critical
    expectation of the quality gate."""

    def __init__(self, message: str, report: IngestReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class IngestReport:
    """What one run did; also the row written to ``gold.ingest_runs``."""

    source: str
    dt: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    party: str = ""
    batch_id: str = ""
    status: str = "ok"
    files: list[dict] = field(default_factory=list)
    rejected_files: list[dict] = field(default_factory=list)
    rows_in: int = 0
    silver_written: int = 0
    duplicates: int = 0
    quarantined: int = 0
    held_back: int = 0
    erased: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    rejected_ids: dict[str, int] = field(default_factory=dict)
    drift: dict[str, dict] = field(default_factory=dict)
    started_at: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).replace(tzinfo=None))
    seconds: float = 0.0
    message: str = ""
    steps: dict[str, float] = field(default_factory=dict)
    quality_seconds: float = 0.0

    @property
    def bad_share(self) -> float:
        return self.quarantined / self.rows_in if self.rows_in else 0.0

    @property
    def balanced(self) -> bool:
        """rows in = silver written + duplicates + quarantined (+ good rows held back by a failed run)."""
        return self.rows_in == (
            self.silver_written + self.duplicates + self.quarantined + self.held_back + self.erased
        )

    def balance_line(self) -> str:
        sign = "=" if self.balanced else "!="
        return (
            f"{self.source} {self.dt}: rows in {self.rows_in:,} {sign} silver {self.silver_written:,} "
            f"+ duplicates {self.duplicates:,} + quarantined {self.quarantined:,}"
            + (f" + held back {self.held_back:,}" if self.held_back else "")
            + (f" + erased {self.erased:,} (dropped: erased persons)" if self.erased else "")
            + f" ({self.bad_share:.2%} bad)"
        )

    def as_row(self) -> dict:
        return {
            "run_id": self.run_id,
            "source": self.source,
            "party": self.party,
            "batch_id": self.batch_id,
            "status": self.status,
            "files": len(self.files),
            "files_json": json.dumps(self.files),
            "rejected_files_json": json.dumps(self.rejected_files),
            "rows_in": self.rows_in,
            "silver_written": self.silver_written,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "held_back": self.held_back,
            "bad_share": self.bad_share,
            "reasons_json": json.dumps(self.reasons),
            "rejected_ids_json": json.dumps(self.rejected_ids),
            "drift_json": json.dumps(self.drift),
            "started_at": self.started_at,
            "seconds": self.seconds,
            "message": "; ".join(
                m
                for m in (self.message, self.erased and f"{self.erased} rows of erased persons dropped")
                if m
            ),
            "dt": _dt.date.fromisoformat(self.dt),
        }


def _batch_id(source: str, dt: _dt.date, files: list[LandedFile]) -> str:
    digest = hashlib.sha256(f"{source}|{dt.isoformat()}|".encode())
    for f in sorted(files, key=lambda f: f.path.name):
        digest.update(f"{f.path.name}:{f.sha256};".encode())
    return digest.hexdigest()[:16]


@dataclass
class _Batch:
    """One run's checked files of one source, and what every step of the run needs to know about them."""

    ctx: RunContext
    contract: SourceContract
    key: str
    report: IngestReport
    files: list[LandedFile]
    ingested_at: _dt.datetime = field(
        default_factory=lambda: _dt.datetime.now(_dt.UTC).replace(tzinfo=None, microsecond=0)
    )
    landed_before: bool = False

    @property
    def bronze(self) -> str:
        return bronze_table(self.contract.name)

    @property
    def quarantine(self) -> str:
        return quarantine_table(self.contract.name)

    @property
    def silver(self) -> str:
        return silver_table(self.contract.entity)


def run(
    spark: SparkSession,
    settings: Settings,
    source: str,
    dt: str | _dt.date,
    *,
    folder: str | Path | None = None,
) -> IngestReport:
    """Ingest the files of ``source`` for logical date ``dt``.

    Args:
        spark: the engine session.
        settings: lake and landing locations, PII key.
        source: the source contract name.
        dt: the logical date, a ``datetime.date`` or ``YYYY-MM-DD``.
        folder: read files from here instead of ``<landing>/<source>/dt=<dt>``.

    Returns:
        The run report (also appended to ``gold.ingest_runs``).

    Raises:
        IngestError: the bad-row share passed the contract's ``max_bad_share`` or a critical expectation
            failed (silver untouched, results in ``gold.quality_results``), or some files were refused as a
            whole (the others were ingested).
        ContractError, LandingError, SettingsError: configuration problems, with the file or setting named.
    """
    ctx = RunContext.open(spark, settings, dt, stage="ingest")
    contract = load_source(source, extra=settings.contract_paths)
    key = settings.require_pii_key()
    report = IngestReport(
        source=source, dt=ctx.dt.isoformat(), run_id=ctx.run_id, party=contract.party, steps=ctx.steps
    )
    own = (bronze_table(contract.name), quarantine_table(contract.name), silver_table(contract.entity))
    rerun = f"cdp ingest {source} --dt {ctx.dt}"  # one writer per table: the leases, held for the whole run
    lease = ctx.lease(*own, job=f"ingest {source}", rerun=rerun)
    with lease, ctx.scratch_space(), _logged_failure(ctx, report):
        batch = _land(ctx, contract, key, report, folder)
        if batch is None:
            return report
        parsed = _parse(batch)
        typed, report.erased, drop_erased = suppress_erased(
            ctx.lake, contract, key, _check(batch, parsed), settings.contract_paths
        )
        ctx.step("parse+typed")
        _write_bronze(batch, parsed if drop_erased is None else parsed.transform(drop_erased), typed)
        _write_quarantine(batch, typed)
        ctx.step("bronze+quarantine")
        candidates = _dedup(batch, typed)
        _audit(batch, candidates)
        _write_vault(batch, typed)
        # Publish to silver: latest wins by order_by, otherwise the first row of a key stays.
        order = contract.order_by
        ctx.lake.upsert(batch.silver, candidates, contract.silver_keys, newer=order, update=bool(order))
        ctx.step("merge")
    if report.rejected_files:
        report.status = "rejected_files"
        report.message = "; ".join(r["reason"] for r in report.rejected_files)
    _finish(ctx, report)
    if report.rejected_files:
        raise IngestError(f"{len(report.rejected_files)} file(s) refused: {report.message}", report)
    return report


@contextmanager
def _logged_failure(ctx: RunContext, report: IngestReport) -> Iterator[None]:
    """Turn an engine error inside the run into a logged run (status ``failed``) and one clear line.

    Raises:
        IngestError: the engine failed; the message names the files of the batch and the error's first line.
    """
    try:
        yield
    except PySparkException as exc:
        first = next((line for line in str(exc).strip().splitlines() if line.strip()), type(exc).__name__)
        files = ", ".join(f["file"] for f in report.files) or "no files"
        report.status = "failed"
        report.message = f"the engine could not read or write the batch ({files}): {first[:300]}"
        report.held_back, report.silver_written = report.silver_written, 0
        with suppress(PySparkException):  # without a run log the error below still says what failed
            _finish(ctx, report)
        raise IngestError(f"{report.message}; fix or remove the file and rerun", report) from None


def _land(
    ctx: RunContext, contract: SourceContract, key: str, report: IngestReport, folder: str | Path | None
) -> _Batch | None:
    """Check the landed files; None (the run logged) when none can be ingested.

    Raises:
        IngestError: every file was refused as a whole.
    """
    staging = Path(ctx.scratch) / "staging"  # normalised copies of files the engine cannot read as landed
    if not folder:  # a folder named for this date but not dt=YYYY-MM-DD would be skipped without a word
        for misnamed in misnamed_folders(ctx.settings.landing_root, contract, ctx.dt):
            reason = (
                f"{misnamed}: folder not read: its name means {ctx.dt} but is not dt={ctx.dt}; move its "
                f"files to {landing_dir(ctx.settings.landing_root, contract, ctx.dt)}"
            )
            report.rejected_files.append({"file": str(misnamed), "reason": reason})
    folder = Path(folder) if folder else landing_dir(ctx.settings.landing_root, contract, ctx.dt)
    files: list[LandedFile] = []
    found = find_files(folder, contract)
    for path in unmatched_files(folder, contract) if found else []:
        report.rejected_files.append({"file": str(path), "reason": unmatched_reason(path, contract)})
    for path in found:
        try:
            files.append(check_file(path, contract, staging))
        except LandingError as exc:
            report.rejected_files.append({"file": str(path), "reason": str(exc)})
    report.files = json.loads(describe(files))
    if not files:
        report.status = "rejected_files" if report.rejected_files else "no_files"
        report.message = "; ".join(r["reason"] for r in report.rejected_files) or f"no files in {folder}"
        _finish(ctx, report)
        if report.rejected_files:
            raise IngestError(f"every file refused: {report.message}", report)
        return None
    report.batch_id = _batch_id(contract.name, ctx.dt, files)
    batch = _Batch(ctx, contract, key, report, files)
    batch.landed_before = _batch_landed(batch)
    return batch


def _parse(batch: _Batch) -> DataFrame:
    """Every file read into the common shape with lineage, lazily: the typed checkpoint is the one copy
    (Sail has no cache); schema drift per file goes to the report."""
    known = _file_ingest_times(batch)
    # Landing order for dedup: files by modification time (then name), records in file order.
    landed = sorted(batch.files, key=lambda f: (f.path.stat().st_mtime_ns, f.path.name))
    rank = {f.path: i for i, f in enumerate(landed)}
    parts = []
    for f in batch.files:
        df = read_file(batch.ctx.spark, batch.contract, f).select(
            "*",
            F.lit(str(f.path)).alias("_source_file"),
            F.lit(batch.report.batch_id).alias("_batch_id"),
            F.lit(known.get(str(f.path), batch.ingested_at)).cast("timestamp").alias("_ingested_at"),
            (F.lit(rank[f.path] << 48).cast("long") + F.monotonically_increasing_id()).alias(POSITION),
        )
        parts.append(df)
        if f.header is not None:  # JSON lines: from the keys of their lines, once checked (_check)
            _report_drift(batch, str(f.path), schema_drift(batch.contract, f.header))
    return union_all(_common_raw_fields(parts))


def _report_drift(batch: _Batch, file: str, drift: dict[str, list[str]]) -> None:
    if drift["new_columns"] or drift["missing_optional"]:
        batch.report.drift[file] = drift


def _common_raw_fields(parts: list[DataFrame]) -> list[DataFrame]:
    """Parquet files with other columns (or the same in another case) give ``_raw_fields`` structs of other
    types, which no union takes: each is widened to every field of the batch (NULL where a file has none,
    which the raw line as JSON leaves out)."""
    if len(parts) < 2 or RAW_FIELDS not in parts[0].columns:
        return parts
    names = [part.schema[RAW_FIELDS].dataType.fieldNames() for part in parts]
    every = list(dict.fromkeys(n for fields in names for n in fields))
    if all(fields == every for fields in names):
        return parts
    return [
        part.withColumn(
            RAW_FIELDS,
            F.struct(
                *[
                    (F.col(RAW_FIELDS).getField(n) if n in fields else F.lit(None).cast("string")).alias(n)
                    for n in every
                ]
            ),
        )
        for part, fields in zip(parts, names, strict=True)
    ]


def read_file(spark: SparkSession, contract: SourceContract, landed: LandedFile) -> DataFrame:
    """Read one checked file into the common shape, its fields mapped to the contract's columns: ``_raw``
    (``_raw_fields`` for Parquet), contract columns as text, ``_extra``, ``_malformed``.

    Raises:
        ContractError: a column's ``expr:`` cannot run on the engine (an unknown function or field), found
            by analysing the plan before any row is read.
    """
    try:  # classic Spark analyses each step as it is built, Spark Connect when asked for the schema
        if contract.format == "parquet":
            read = (
                spark.read.parquet(str(landed.read_path))
                .transform(from_parquet(contract.input_fields))
                .transform(with_mapped_columns(contract))
            )
        else:
            lines = spark.read.text(str(landed.read_path)).select(
                F.regexp_replace(F.col("value"), "^\ufeff", "").alias(RAW)  # a byte-order mark is no data
            )
            if landed.joined:  # a record's line breaks inside quotes, kept as LINE_BREAK in the copy
                lines = lines.select(F.regexp_replace(F.col(RAW), LINE_BREAK, "\n").alias(RAW))
            lines = lines.filter(F.trim(F.regexp_replace(F.col(RAW), "\ufeff", "")) != "")
            read = lines.transform(parse_lines(contract, landed.header, landed.header_line))
        if any(c.expr for c in contract.columns):
            read.schema  # noqa: B018 - analysis only: an expression the engine cannot run fails here
    except PySparkException as exc:
        exprs = "; ".join(f"{c.name}: {c.expr}" for c in contract.columns if c.expr)
        if not exprs:
            raise
        raise ContractError(
            f"source {contract.name}: the file cannot be mapped by the contract's expr: ({exprs}): "
            f"{str(exc).strip().splitlines()[0]}"
        ) from None
    return read


def _json_drift(batch: _Batch, checked: DataFrame) -> None:
    """The drift report of each JSON-lines file, from the keys its lines had: one line of each distinct key
    set (``_keys``, hashed when the fields were parsed; a file's lines share a few) parsed again for them."""
    # Sail cluster codec: json_object_keys cannot be shipped to cluster workers; the keys come from a parsed
    # map instead (on Sail, none from an object with a number beyond double range, such as 1e400, whose
    # fields do not parse either).
    sets = checked.where(F.col(KEYS).isNotNull()).groupBy("_source_file", KEYS).agg(F.first(RAW).alias(RAW))
    names = F.map_keys(F.from_json(F.col(RAW), "map<string,string>"))
    keys = sets.select("_source_file", F.explode(names).alias("k")).distinct()
    found: dict[str, set[str]] = {str(f.path): set() for f in batch.files if f.header is None}
    for row in keys.where(F.col("k") != "").limit(1000 * max(len(found), 1)).collect():
        found.setdefault(row["_source_file"], set()).add(row["k"])
    for file, seen in found.items():
        _report_drift(batch, file, json_keys_drift(batch.contract, seen))


def _file_ingest_times(batch: _Batch) -> dict[str, _dt.datetime]:
    """When each file of this date was first ingested, so reruns keep the same ``_ingested_at``."""
    if not batch.ctx.lake.exists(batch.bronze):
        return {}
    rows = (
        batch.ctx.read_dt(batch.bronze)
        .groupBy("_source_file")
        .agg(F.min("_ingested_at").alias("t"))
        .collect()
    )
    return {r["_source_file"]: r["t"] for r in rows}


def _batch_landed(batch: _Batch) -> bool:
    """Whether a previous run already wrote this exact batch to bronze and quarantine."""
    if not batch.ctx.lake.exists("gold.ingest_runs"):
        return False
    runs = batch.ctx.read_dt("gold.ingest_runs").filter(
        (F.col("source") == batch.contract.name) & (F.col("batch_id") == batch.report.batch_id)
    )
    return runs.limit(1).count() > 0


def _write_bronze(batch: _Batch, parsed: DataFrame, typed: DataFrame) -> None:
    """Every parsed record as landed, direct PII encrypted. Encryption uses a fresh IV per value, so a batch
    already landed (same files, same batch id) is not rewritten: reruns leave bronze as it was.

    Text files are parsed once: their records as landed come from the typed checkpoint; Parquet files are
    read again, which costs less than carrying a copy of every value."""
    if batch.landed_before:
        return
    columns = [c.name for c in batch.contract.columns]
    if RAW_FIELDS in parsed.columns:
        rows, landed = parsed, [F.col(f"`{c}`") for c in columns]
    else:
        rows, landed = typed, [F.col(f"`{LANDED}{c}`").alias(c) for c in columns]
    bronze = (
        rows.filter(~F.col(MALFORMED))
        .select(*landed, EXTRA, *LINEAGE)
        .transform(protect_bronze_pii(batch.contract, batch.key))
    )
    batch.ctx.lake.replace_dt(batch.bronze, bronze, batch.ctx.dt)


def _check(batch: _Batch, parsed: DataFrame) -> DataFrame:
    """Type, check and normalise every record; ``_reasons`` says why a row breaks the contract. The one
    checkpoint of the parsed rows: quarantine, the counts and dedup read it (Sail has no cache)."""
    contract = batch.contract
    if RAW_FIELDS not in parsed.columns:  # keep the text as landed for bronze (see _write_bronze)
        parsed = parsed.select("*", *[F.col(f"`{c.name}`").alias(LANDED + c.name) for c in contract.columns])
    checked = with_checked_rows(contract, batch.ctx.dt, details=True)
    typed = batch.ctx.checkpoint(parsed.transform(checked), "typed")
    if KEYS in typed.columns:
        _json_drift(batch, typed)
    return typed


def _write_quarantine(batch: _Batch, typed: DataFrame) -> None:
    """Rejected rows and undecodable lines to quarantine with their reasons; counts to the report."""
    ctx, report = batch.ctx, batch.report
    bad_lines = [(text, f"{f.path}:{number}") for f in batch.files for number, text in f.bad_lines]
    encoding = ctx.spark.createDataFrame(bad_lines or [], "_raw string, _source_file string").select(
        RAW,
        F.array(F.lit("bad_encoding")).alias(REASONS),
        F.array().cast("array<string>").alias(DETAILS),
        "_source_file",
        F.lit(report.batch_id).alias("_batch_id"),
        F.lit(batch.ingested_at).cast("timestamp").alias("_ingested_at"),
    )
    raw = build_raw_line(typed.columns).alias(RAW)
    bad = typed.filter(F.size(REASONS) > 0).select(raw, REASONS, DETAILS, *LINEAGE)
    rejected = union_all([bad, encoding])
    if not batch.landed_before:
        _with_details_column(batch)
        ctx.lake.replace_dt(
            batch.quarantine, rejected.transform(protect_bronze_pii(batch.contract, batch.key, RAW)), ctx.dt
        )
    quarantined = ctx.read_dt(batch.quarantine)
    report.quarantined = quarantined.count()
    report.reasons = reason_counts(quarantined)


def _with_details_column(batch: _Batch) -> None:
    """Give a quarantine table written before quarantine carried ``_details`` that column, once, empty for
    its rows (their values were not kept): Sail evolves no schema on a partition's replacement, so the table
    is rewritten with the column after ``_reasons``, as a new table has it."""
    lake, table = batch.ctx.lake, batch.quarantine
    if not lake.exists(table):
        return
    old = lake.read(table)
    columns = old.columns
    if DETAILS in columns:
        return
    at = columns.index(REASONS) + 1 if REASONS in columns else len(columns)
    empty = F.lit(None).cast("array<string>").alias(DETAILS)
    lake.overwrite(table, old.select(*columns[:at], empty, *columns[at:]), partition_by=["dt"])


def _dedup(batch: _Batch, typed: DataFrame) -> DataFrame:
    """The silver candidates (good rows, PII protected, one row per key; checkpointed) and the row balance."""
    ctx, contract, report = batch.ctx, batch.contract, batch.report
    good = typed.filter(F.size(REASONS) == 0)
    ids = good.select(F.explode("_rejected_ids").alias("c")).groupBy("c").count().collect()
    report.rejected_ids = {r["c"]: r["count"] for r in ids}
    candidates = (
        good.transform(latest_per_key(contract.keys, contract.order_by or None))
        .drop(REASONS, MALFORMED, "_rejected_ids", RAW, RAW_FIELDS, EXTRA, DETAILS, KEYS)
        .drop(*[LANDED + c.name for c in contract.columns])
        .transform(protect_direct_pii(contract, batch.key))
        .withColumn(SILVER_SOURCE, F.lit(contract.name))
        .withColumn("_dt", F.lit(ctx.dt))
    )
    candidates = ctx.checkpoint(candidates, "candidates")
    ctx.step("candidates")
    report.rows_in = typed.count() + sum(len(f.bad_lines) for f in batch.files) + report.erased
    n_good = report.rows_in - report.quarantined - report.erased
    n_candidates = candidates.count()
    already = _already_in_silver(batch, candidates)
    report.duplicates = (n_good - n_candidates) + already
    report.silver_written = n_candidates - already
    ctx.step("counts")
    return candidates


def _write_vault(batch: _Batch, typed: DataFrame) -> None:
    """Add the batch's new direct identifiers, encrypted, to ``vault.identifiers`` (before silver, so every
    keyed hash silver publishes can be exported). Reads the checked rows' normalised values; insert-only
    under the table's lock: identifiers already there are skipped before encryption, a rerun adds nothing."""
    if not vault_columns(batch.contract):
        return
    lake = batch.ctx.lake
    good = typed.filter(F.size(REASONS) == 0)
    with lake.lock(VAULT):
        known = lake.read(VAULT) if lake.exists(VAULT) else None
        lake.append(VAULT, good.transform(vault_identifiers(batch.contract, batch.key, batch.ctx.dt, known)))


def _already_in_silver(batch: _Batch, candidates: DataFrame) -> int:
    """Candidates that will not change silver: their key is there with the same or a newer version."""
    if not batch.ctx.lake.exists(batch.silver):
        return 0
    _with_source_column(batch)
    keys, order = batch.contract.silver_keys, batch.contract.order_by
    existing = batch.ctx.lake.read(batch.silver).select(*keys, *([order] if order else []), "_batch_id")
    cond = [candidates[k].eqNullSafe(existing[k]) for k in keys]
    joined = candidates.alias("s").join(existing.alias("t"), on=cond, how="inner")
    if order:
        joined = joined.filter(F.col(f"s.{order}") <= F.col(f"t.{order}"))
    if not batch.landed_before:  # written by an attempt of this batch that died unlogged: count as written
        joined = joined.filter(~F.col("t._batch_id").eqNullSafe(F.lit(batch.report.batch_id)))
    return joined.count()


def _with_source_column(batch: _Batch) -> None:
    """Give a silver table written before silver carried ``_source`` that column, once, so its rows keep
    their keys: each row is named by the landing folder of its ``_source_file`` among the sources of the
    entity; a row no source's folder explains stops the run (its source can no longer be told)."""
    lake, table = batch.ctx.lake, batch.silver
    old = lake.read(table)
    columns = old.columns
    if SILVER_SOURCE in columns:
        return
    name = F.lit(None).cast("string")
    for source in load_sources(batch.ctx.settings.contract_paths).values():
        if source.entity == batch.contract.entity:
            folder = f"/{source.landing or source.name}/dt="
            name = F.when(F.col("_source_file").contains(folder), F.lit(source.name)).otherwise(name)
    named = old.withColumn(SILVER_SOURCE, name)
    unknown = named.where(F.col(SILVER_SOURCE).isNull()).count()
    if unknown:
        raise IngestError(
            f"{table} was written before silver named each row's source, and {unknown:,} of its rows come "
            f"from no landing folder of a source of entity {batch.contract.entity}: move {lake.path(table)} "
            "away and re-ingest each source's dates",
            batch.report,
        )
    lake.overwrite(table, named.select(*columns[:-1], SILVER_SOURCE, columns[-1]))


def _audit(batch: _Batch, candidates: DataFrame) -> None:
    """The bad-row share against the contract's bound, then the suites of bronze, quarantine and silver on
    this batch, before anything reaches silver.

    Raises:
        IngestError: too many rows were quarantined, or a critical expectation failed (nothing published;
            the results are in gold.quality_results).
    """
    ctx, contract, report = batch.ctx, batch.contract, batch.report
    if report.bad_share > contract.max_bad_share:
        _hold_back(
            ctx,
            report,
            "failed_threshold",
            f"{report.bad_share:.2%} of rows quarantined, above max_bad_share "
            f"{contract.max_bad_share:.2%} of {contract.name}; silver not updated. Inspect "
            f"{batch.quarantine}",
        )
    try:
        audits = gate_ingest(
            ctx.lake,
            contract,
            ctx.dt,
            candidates,
            rows_in=report.rows_in,
            contract_paths=ctx.settings.contract_paths,
        )
    except QualityGateError as exc:
        _hold_back(
            ctx,
            report,
            "failed_quality",
            f"{exc}; silver not updated. See gold.quality_results or 'cdp quality docs'",
            cause=exc,
        )
    report.quality_seconds = round(sum(a.seconds for a in audits), 3)
    ctx.step("quality")


def _hold_back(
    ctx: RunContext, report: IngestReport, status: str, message: str, cause: Exception | None = None
) -> NoReturn:
    """End the run without publishing: good rows count as held back and the run is logged."""
    report.status, report.message = status, message
    report.held_back, report.silver_written = report.silver_written, 0
    _finish(ctx, report)
    raise IngestError(message, report) from cause


def _finish(ctx: RunContext, report: IngestReport) -> IngestReport:
    report.seconds = round(ctx.elapsed(), 3)
    row = ctx.spark.createDataFrame([report.as_row()], ctx.lake.contracts["gold.ingest_runs"].ddl)
    with ctx.lake.lock("gold.ingest_runs"):
        ctx.lake.append("gold.ingest_runs", row)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point for spark-submit and ``python -m jobs.ingest``."""
    from cdp.engine import get_spark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("--dt", required=True)
    parser.add_argument("--folder", help="read files from this folder instead of the landing folder")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        report = run(get_spark(settings), settings, args.source, args.dt, folder=args.folder)
    except IngestError as exc:
        print(exc.report.balance_line())
        print(f"FAILED: {exc}")
        return 1
    print(report.balance_line())
    print(json.dumps({k: v for k, v in asdict(report).items() if k in ("reasons", "rejected_ids", "drift")}))
    return 0


if __name__ == "__main__":
    from cdp.run import exit_with

    exit_with(main)
