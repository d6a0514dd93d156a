"""Ingest one source for one logical date: landed files -> bronze, quarantine and silver Delta tables.

    landing/<source>/dt=YYYY-MM-DD/*
        -> bronze.<source>       as landed (text columns) + lineage, direct PII encrypted
        -> quarantine.<source>   rejected rows: raw line and reasons
        -> silver.<entity>       typed, normalised, PII hashed, deduplicated
        -> gold.ingest_runs      one row per run: files, row balance, reasons
        -> gold.quality_results  the quality gate's results on bronze, quarantine and the silver candidates

Write-audit-publish: the rows bound for silver are written to scratch, validated with the suites of
``quality/suites`` and merged only when no critical expectation fails.

Idempotent: bronze and quarantine replace the date's partition; silver is merged by the contract's keys
(latest ``order_by`` wins, otherwise first wins), so rerunning a date or re-landing the same file leaves the
tables as they were. The batch id and each file's ingest time derive from the files themselves.

Run as ``cdp ingest <source> --dt YYYY-MM-DD`` or ``python -m jobs.ingest <source> --dt YYYY-MM-DD``
(also under spark-submit).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NoReturn

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.lake import Lake, parse_dt
from cdp.settings import Settings
from ingest.landing import (
    LandedFile,
    LandingError,
    check_file,
    describe,
    find_files,
    json_keys_drift,
    landing_dir,
    schema_drift,
)
from ingest.protect import protect_bronze_pii, protect_direct_pii, with_normalized_identifiers
from ingest.rows import (
    EXTRA,
    MALFORMED,
    RAW,
    REASONS,
    from_parquet,
    latest_per_key,
    parse_csv,
    parse_jsonl,
    reason_counts,
    with_reason,
    with_typed_columns,
)
from quality.gates import QualityGateError, gate_ingest
from schemas import SourceContract, load_source

LINEAGE = ["_source_file", "_batch_id", "_ingested_at"]


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
        return self.rows_in == self.silver_written + self.duplicates + self.quarantined + self.held_back

    def balance_line(self) -> str:
        sign = "=" if self.balanced else "!="
        return (
            f"{self.source} {self.dt}: rows in {self.rows_in:,} {sign} silver {self.silver_written:,} "
            f"+ duplicates {self.duplicates:,} + quarantined {self.quarantined:,}"
            + (f" + held back {self.held_back:,}" if self.held_back else "")
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
            "message": self.message,
            "dt": _dt.date.fromisoformat(self.dt),
        }


def _batch_id(source: str, dt: str, files: list[LandedFile]) -> str:
    digest = hashlib.sha256(f"{source}|{dt}|".encode())
    for f in sorted(files, key=lambda f: f.path.name):
        digest.update(f"{f.path.name}:{f.sha256};".encode())
    return digest.hexdigest()[:16]


def _read_file(spark: SparkSession, contract: SourceContract, landed: LandedFile) -> DataFrame:
    """Read one checked file into the common shape: ``_raw``, contract columns as text, ``_extra``,
    ``_malformed``."""
    names = [c.name for c in contract.columns]
    if contract.format == "parquet":
        return spark.read.parquet(str(landed.read_path)).transform(from_parquet(names))
    lines = spark.read.text(str(landed.read_path)).withColumnRenamed("value", RAW)
    lines = lines.filter(F.trim(F.regexp_replace(F.col(RAW), "\ufeff", "")) != "")
    if contract.format == "jsonl":
        return lines.transform(parse_jsonl(names))
    not_header = F.regexp_replace(F.col(RAW), "^\ufeff", "") != F.lit(landed.header_line)
    return lines.filter(not_header).transform(parse_csv(landed.header or [], names))


def _file_ingest_times(lake: Lake, table: str, dt: _dt.date) -> dict[str, _dt.datetime]:
    """When each file of this date was first ingested, so reruns keep the same ``_ingested_at``."""
    if not lake.exists(table):
        return {}
    rows = (
        lake.read(table)
        .filter(F.col("dt") == F.lit(dt))
        .groupBy("_source_file")
        .agg(F.min("_ingested_at").alias("t"))
        .collect()
    )
    return {r["_source_file"]: r["t"] for r in rows}


def _checkpoint(spark: SparkSession, df: DataFrame, path: Path) -> DataFrame:
    """Write ``df`` to scratch Parquet and read it back: later steps reuse it without recomputing (Sail
    ignores ``cache()``). The schema is passed back explicitly because an empty result writes no files."""
    schema = df.schema
    df.write.mode("overwrite").parquet(str(path))
    return spark.read.schema(schema).parquet(str(path))


def _batch_landed(lake: Lake, source: str, dt: _dt.date, batch_id: str) -> bool:
    """Whether a previous run already wrote this exact batch to bronze and quarantine."""
    if not lake.exists("gold.ingest_runs"):
        return False
    runs = lake.read("gold.ingest_runs").filter(
        (F.col("dt") == F.lit(dt)) & (F.col("source") == source) & (F.col("batch_id") == batch_id)
    )
    return runs.limit(1).count() > 0


def _scratch(settings: Settings, source: str, batch_id: str) -> Path:
    return Path(settings.data_root) / "_scratch" / "ingest" / source / batch_id


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
        dt: the logical date (``YYYY-MM-DD``).
        folder: read files from here instead of ``<landing>/<source>/dt=<dt>``.

    Returns:
        The run report (also appended to ``gold.ingest_runs``).

    Raises:
        IngestError: the bad-row share passed the contract's ``max_bad_share`` or a critical expectation
            failed (silver untouched, results in ``gold.quality_results``), or some files were refused as a
            whole (the others were ingested).
        ContractError, LandingError, SettingsError: configuration problems, with the file or setting named.
    """
    t0 = time.perf_counter()
    day = parse_dt(dt)
    contract = load_source(source, extra=settings.contract_paths)
    key = settings.require_pii_key()
    lake = Lake(spark, settings.lake_root)
    report = IngestReport(source=source, dt=day.isoformat(), party=contract.party)
    bronze, quarantine, silver = f"bronze.{source}", f"quarantine.{source}", f"silver.{contract.entity}"

    folder = Path(folder) if folder else landing_dir(settings.landing_root, contract, report.dt)
    paths = find_files(folder, contract)
    landed: list[LandedFile] = []
    scratch_root = Path(settings.data_root) / "_scratch" / "staging" / source / report.dt
    for path in paths:
        try:
            landed.append(check_file(path, contract, scratch_root))
        except LandingError as exc:
            report.rejected_files.append({"file": str(path), "reason": str(exc)})
    report.files = json.loads(describe(landed))
    if not landed:
        report.status = "rejected_files" if report.rejected_files else "no_files"
        report.message = "; ".join(r["reason"] for r in report.rejected_files) or f"no files in {folder}"
        _finish(lake, report, t0)
        if report.rejected_files:
            raise IngestError(f"every file refused: {report.message}", report)
        return report
    report.batch_id = _batch_id(source, report.dt, landed)

    # 1. Parse every file once into a scratch table (Sail has no cache; later steps read it back).
    known = _file_ingest_times(lake, bronze, day)
    now = _dt.datetime.now(_dt.UTC).replace(tzinfo=None, microsecond=0)
    parts = []
    for f in landed:
        df = _read_file(spark, contract, f).select(
            "*",
            F.lit(str(f.path)).alias("_source_file"),
            F.lit(report.batch_id).alias("_batch_id"),
            F.lit(known.get(str(f.path), now)).cast("timestamp").alias("_ingested_at"),
        )
        parts.append(df)
        drift = (
            schema_drift(contract, f.header)
            if f.header is not None
            else json_keys_drift(contract, _json_keys(df))
        )
        if drift["new_columns"] or drift["missing_optional"]:
            report.drift[str(f.path)] = drift
    parsed = parts[0]
    for df in parts[1:]:
        parsed = parsed.unionByName(df)
    scratch = _scratch(settings, source, report.batch_id)
    parsed = _checkpoint(spark, parsed, scratch / "parsed")

    # 2. Bronze: every parsed record as landed, direct PII encrypted. Encryption uses a fresh IV per value,
    # so a batch already landed (same files, same batch id) is not rewritten: reruns leave bronze as it was.
    landed_before = _batch_landed(lake, source, day, report.batch_id)
    columns = [c.name for c in contract.columns]
    bronze_df = (
        parsed.filter(~F.col(MALFORMED))
        .select(*columns, EXTRA, *LINEAGE)
        .transform(protect_bronze_pii(contract, key))
    )
    if not landed_before:
        lake.replace_dt(bronze, bronze_df, day)

    # 3. Type, check and normalise; rejected rows to quarantine with their reasons.
    typed = parsed.transform(with_typed_columns(contract, day)).transform(
        with_normalized_identifiers(contract)
    )
    reasons = F.col(REASONS)
    for name in contract.identifier_columns:
        if contract.column(name).required:
            reasons = with_reason(
                reasons, F.array_contains("_rejected_ids", name), f"invalid_identifier:{name}"
            )
    typed = _checkpoint(spark, typed.withColumn(REASONS, reasons), scratch / "typed")
    report.steps["parse+bronze"] = round(time.perf_counter() - t0, 2)
    bad_lines = [(text, f"{f.path}:{number}") for f in landed for number, text in f.bad_lines]
    encoding = spark.createDataFrame(bad_lines or [], "_raw string, _source_file string").select(
        RAW,
        F.array(F.lit("bad_encoding")).alias(REASONS),
        "_source_file",
        F.lit(report.batch_id).alias("_batch_id"),
        F.lit(now).cast("timestamp").alias("_ingested_at"),
    )
    rejected = (
        typed.filter(F.size(REASONS) > 0)
        .select(RAW, REASONS, *LINEAGE)
        .unionByName(encoding)
        .transform(protect_bronze_pii(contract, key, raw_column=RAW))
    )
    if not landed_before:
        lake.replace_dt(quarantine, rejected, day)
    q = lake.read(quarantine).filter(F.col("dt") == F.lit(day))
    report.quarantined = q.count()
    report.reasons = reason_counts(q)
    report.steps["typed+quarantine"] = round(time.perf_counter() - t0, 2)

    # 4. Silver candidates: good rows, PII protected, one row per key.
    good = typed.filter(F.size(REASONS) == 0)
    ids = good.select(F.explode("_rejected_ids").alias("c")).groupBy("c").count().collect()
    report.rejected_ids = {r["c"]: r["count"] for r in ids}
    order = contract.order_by
    candidates = (
        good.transform(latest_per_key(contract.keys, order or None))
        .drop(REASONS, MALFORMED, "_rejected_ids", RAW, EXTRA)
        .transform(protect_direct_pii(contract, key))
        .withColumn("_dt", F.lit(day))
    )
    candidates = _checkpoint(spark, candidates, scratch / "candidates")
    report.steps["candidates"] = round(time.perf_counter() - t0, 2)
    n_parsed = parsed.count()
    report.rows_in = n_parsed + len(bad_lines)
    n_good = report.rows_in - report.quarantined
    n_candidates = candidates.count()
    already = _already_in_silver(lake, silver, candidates, contract)
    report.duplicates = (n_good - n_candidates) + already
    report.silver_written = n_candidates - already

    if report.bad_share > contract.max_bad_share:
        _hold_back(
            lake,
            report,
            t0,
            scratch,
            "failed_threshold",
            f"{report.bad_share:.2%} of rows quarantined, above max_bad_share "
            f"{contract.max_bad_share:.2%} of {source}; silver not updated. Inspect quarantine.{source}",
        )

    # 5. Audit: the suites of bronze, quarantine and silver on this batch before anything reaches silver.
    report.steps["counts"] = round(time.perf_counter() - t0, 2)
    try:
        audits = gate_ingest(
            lake, contract, day, candidates, rows_in=report.rows_in, contract_paths=settings.contract_paths
        )
    except QualityGateError as exc:
        _hold_back(
            lake,
            report,
            t0,
            scratch,
            "failed_quality",
            f"{exc}; silver not updated. See gold.quality_results or 'cdp quality docs'",
            cause=exc,
        )
    report.quality_seconds = round(sum(a.seconds for a in audits), 3)
    report.steps["quality"] = round(time.perf_counter() - t0, 2)

    # 6. Publish to silver: latest wins by order_by, otherwise the first row of a key stays.
    lake.upsert(silver, candidates, contract.keys, newer=order, update=bool(order))
    report.steps["merge"] = round(time.perf_counter() - t0, 2)
    shutil.rmtree(scratch, ignore_errors=True)
    if report.rejected_files:
        report.status = "rejected_files"
        report.message = "; ".join(r["reason"] for r in report.rejected_files)
    _finish(lake, report, t0)
    if report.rejected_files:
        raise IngestError(f"{len(report.rejected_files)} file(s) refused: {report.message}", report)
    return report


def _json_keys(df: DataFrame) -> set[str]:
    rows = df.select(F.explode(F.json_object_keys(RAW)).alias("k")).distinct().limit(1000).collect()
    return {r["k"] for r in rows}


def _already_in_silver(lake: Lake, silver: str, candidates: DataFrame, contract: SourceContract) -> int:
    """Candidates that will not change silver: their key is there with the same or a newer version."""
    if not lake.exists(silver):
        return 0
    keys = contract.keys
    existing = lake.read(silver).select(*keys, *([contract.order_by] if contract.order_by else []))
    cond = [candidates[k].eqNullSafe(existing[k]) for k in keys]
    joined = candidates.alias("s").join(existing.alias("t"), on=cond, how="inner")
    if contract.order_by:
        joined = joined.filter(F.col(f"s.{contract.order_by}") <= F.col(f"t.{contract.order_by}"))
    return joined.count()


def _hold_back(
    lake: Lake,
    report: IngestReport,
    t0: float,
    scratch: Path,
    status: str,
    message: str,
    cause: Exception | None = None,
) -> NoReturn:
    """End the run without publishing: good rows count as held back, the run is logged, scratch removed."""
    report.status, report.message = status, message
    report.held_back, report.silver_written = report.silver_written, 0
    _finish(lake, report, t0)
    shutil.rmtree(scratch, ignore_errors=True)
    raise IngestError(message, report) from cause


def _finish(lake: Lake, report: IngestReport, t0: float) -> IngestReport:
    report.seconds = round(time.perf_counter() - t0, 3)
    row = lake.spark.createDataFrame([report.as_row()], lake.contracts["gold.ingest_runs"].ddl)
    with lake.lock("gold.ingest_runs"):
        lake.append("gold.ingest_runs", row)
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
    raise SystemExit(main())
