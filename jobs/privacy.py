"""Erase a person (PIPL right to deletion) from the lake and the packs, and keep them out afterwards.

    request: identifiers (TYPE:VALUE), OneIDs, or a file of either
      -> the leases of every lake table, vault.erasures and every audience's packs, for the whole erasure
         (refused beside a running stage or export, or while a dead run's table is not rerun)
      -> normalised, keyed hash -> gold.oneid_map (every dt): the person's OneIDs and identifiers
                                                                             (identity.erasure)
      -> their line in every destination's form, from vault.identifiers before it is erased
                                                                             (audiences.erasure)
      -> every Delta table of the lake (bronze, silver, gold, quarantine, vault): the person's rows, found
         from the contracts and column names (bronze and quarantine decrypted and normalised), removed with
         MERGE ... WHEN MATCHED THEN DELETE under the table's lock; the values travel as data, so the
         commit log never holds them
      -> packs under packs_root rewritten without the person's lines
      -> vacuum: with CDP_ERASURE_RETENTION_HOURS=0 at once, else by 'cdp privacy vacuum' once the retention
         has passed: files of older versions deleted, a checkpoint written and older log versions expired
         (their file statistics can hold min/max values)
      -> vault.erasures: request id, time, author, erasure digests, counts (never an identifier)

    ingest (jobs.ingest): checked rows holding an erased identifier are dropped before bronze, quarantine,
      silver and the vault, and counted (suppress_erased), unless a consent grant for it newer than the
      erasure arrived. A batch already landed is not rewritten in bronze; a new batch of a Parquet source
      writes bronze from the parsed rows, before this check (a known gap).

Not covered: the landing folders (the sources' deliveries, kept and expired upstream; a rerun of them does
not bring the person back), pickled tag models under <lake>/models (aggregates, retrained daily), and
copies of packs already uploaded to ad platforms (the report names the packs that held the person).

Run as ``cdp privacy erase`` / ``cdp privacy vacuum``.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import re
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from audiences.erasure import build_person_lines, erase_from_pack
from audiences.packs import PackStore
from cdp.lake import Lake, silver_table
from cdp.leases import Holder
from cdp.run import lease_in_place
from cdp.settings import Settings
from identity.erasure import (
    MATCH_SCHEMA,
    ONEID,
    ErasureError,
    ErasureRequest,
    ErasureTargets,
    RowMatch,
    build_grant_digests,
    build_person_identifiers,
    build_request_identifiers,
    build_stored_matches,
    direct_id_types,
    erasure_digest,
    oneid_digest,
    still_erased,
    stored_match,
    table_match,
    with_erased_flag,
)
from schemas import SourceContract, load_sources

if TYPE_CHECKING:
    from collections.abc import Callable

ERASURES = "vault.erasures"
MAP = "gold.oneid_map"
CONSENT_SOURCE = "consent"
_LOG_FILE = re.compile(r"^(\d{20})\.(json|crc|checkpoint(\.\d+\.\d+)?\.parquet)$")


@dataclass
class ErasureReport:
    """What one erasure removed (or, in a dry run, would remove)."""

    request_id: str
    dry_run: bool
    oneids: int = 0
    identifiers: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    packs: dict[str, int] = field(default_factory=dict)
    vacuumed: dict[str, int] = field(default_factory=dict)
    retention_hours: int = 168
    requested_at: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).replace(tzinfo=None))

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    def summary(self) -> list[str]:
        verb = "would remove" if self.dry_run else "removed"
        lines = [
            f"erasure {self.request_id}: {self.oneids} OneID(s), {self.identifiers} identifier(s); "
            f"{verb} {self.rows:,} row(s) in {len(self.tables)} table(s) and "
            f"{sum(self.packs.values()):,} line(s) in {len(self.packs)} pack(s)"
        ]
        if not self.dry_run:
            files = sum(self.vacuumed.values())
            lines.append(
                f"vacuumed {files} file(s) at once (retention 0)"
                if self.retention_hours == 0
                else f"old file versions are vacuumed by 'cdp privacy vacuum' after {self.retention_hours} h"
            )
        return lines


# ---- who --------------------------------------------------------------------------------------------------


def resolve(
    spark: SparkSession, lake: Lake, request: ErasureRequest, sources: dict[str, SourceContract], key: str
) -> tuple[ErasureTargets, set[str]]:
    """The person's OneIDs and identifiers, and the keyed hashes of the identifiers the request named.

    Raises:
        ErasureError: a named identifier does not normalise.
    """
    direct = direct_id_types(sources.values())
    typed = spark.createDataFrame(list(request.identifiers), "id_type string, value string")
    named = typed.transform(build_request_identifiers(key, direct)).collect()
    bad = [f"{r['id_type']} #{i}" for i, r in enumerate(named, start=1) if r["normalized"] is None]
    if bad:
        raise ErasureError(f"identifier(s) {', '.join(bad)} do not normalise; check the type and the value")
    rows = spark.createDataFrame(
        [(r["id_type"], r["id_value"]) for r in named], "id_type string, id_value string"
    )
    if lake.exists(MAP):
        oneid_map = lake.read(MAP).select("id_type", "id_value", "oneid", "dt")
    else:
        oneid_map = spark.createDataFrame([], "id_type string, id_value string, oneid long, dt date")
    person = rows.transform(build_person_identifiers(oneid_map, request.oneids, key, direct)).collect()
    targets = ErasureTargets.from_rows(person, direct)
    targets = ErasureTargets(targets.oneids | set(request.oneids), targets.values, targets.keyed, direct)
    return targets, {r["keyed"] for r in named}


def _person_lines(spark: SparkSession, settings: Settings, targets: ErasureTargets) -> set[str]:
    """Every pack line the person can have, computed while the vault still holds their values."""
    from jobs.audiences.context import AudienceContext

    rows = [(t, v) for t, values in targets.values.items() for v in values]
    if not rows:
        return set()
    ids = spark.createDataFrame(rows, "id_type string, id_value string")
    with_hashes = AudienceContext.open(spark, settings).with_platform_hashes()
    return {r["line"] for r in ids.transform(build_person_lines(with_hashes)).collect()}


# ---- where ------------------------------------------------------------------------------------------------


def _match(lake: Lake, table: str, targets: ErasureTargets, sources: dict[str, SourceContract], key: str):
    layer, _, name = table.partition(".")
    if layer in ("bronze", "quarantine"):
        contract = sources.get(name)
        if contract is None:
            return None
        found = lake.read(table).transform(build_stored_matches(contract, targets, key, layer)).collect()
        return stored_match(found)
    return table_match(table, lake.read(table).columns, targets, sources.values())


def _ref(lake: Lake, table: str) -> str:
    return "delta.`" + lake.path(table).replace("`", "``") + "`"


def _erase_rows(lake: Lake, table: str, match: RowMatch, dry_run: bool) -> int:
    """Count the matched rows and, unless ``dry_run``, delete them in one MERGE under the table's lock."""
    source = lake.spark.createDataFrame(list(match.values), MATCH_SCHEMA)
    target = lake.read(table).alias("t")
    rows = target.join(source.alias("s"), F.expr(match.condition), "left_semi").count()
    if rows and not dry_run:
        view = f"_cdp_erase_{uuid.uuid4().hex}"
        source.createOrReplaceTempView(view)
        try:
            with lake.lock(table):
                lake.spark.sql(
                    f"MERGE INTO {_ref(lake, table)} AS t USING {view} AS s ON {match.condition} "
                    "WHEN MATCHED THEN DELETE"
                ).collect()
        finally:
            lake.spark.catalog.dropTempView(view)
    return rows


def _erase_packs(settings: Settings, lines: set[str], request_id: str, dry_run: bool) -> dict[str, int]:
    store = PackStore(settings.packs_root)
    out = {}
    if not lines or not store.root.is_dir():
        return out
    for manifest in store.root.glob("*/v*/*/manifest.json"):
        done = erase_from_pack(manifest.parent, lines, request_id, dry_run=dry_run)
        if done.lines_removed:
            out[store.pack_id(manifest.parent)] = done.lines_removed
    return out


# ---- vacuum -----------------------------------------------------------------------------------------------


def vacuum_table(lake: Lake, table: str, retention_hours: int) -> int:
    """Delete the files older versions of ``table`` need once ``retention_hours`` have passed, write a
    checkpoint, and expire the log versions before it (their file statistics hold min/max values).

    Returns:
        The data files deleted.
    """
    from deltalake import DeltaTable

    with lake.lock(table):
        delta = DeltaTable(lake.path(table))
        removed = delta.vacuum(
            retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False
        )
        delta = DeltaTable(lake.path(table))
        delta.create_checkpoint()
        version = delta.version()
        log = Path(lake.path(table)) / "_delta_log"
        for path in log.iterdir():
            m = _LOG_FILE.match(path.name.lstrip("."))
            if m and int(m.group(1)) < version:
                path.unlink()
    return len(removed)


def vacuum_due(spark: SparkSession, settings: Settings, now: _dt.datetime | None = None) -> dict[str, int]:
    """Vacuum the tables of every erasure whose retention has passed and that is not vacuumed yet, then mark
    the erasures vacuumed.

    Args:
        spark: the session.
        settings: the lake root.
        now: the time the retention is measured to (the clock by default).

    Returns:
        Files deleted per table.
    """
    lake = Lake.from_settings(spark, settings)
    if not lake.exists(ERASURES):
        return {}
    now = now or _dt.datetime.now(_dt.UTC).replace(tzinfo=None)
    records = lake.read(ERASURES)
    pending = (
        records.where(F.col("vacuumed_at").isNull())
        .select("request_id", "requested_at", "retention_hours", "tables_json")
        .distinct()
        .collect()
    )
    due = [r for r in pending if r["requested_at"] + _dt.timedelta(hours=r["retention_hours"]) <= now]
    if not due:
        return {}
    out: dict[str, int] = {}
    tables = sorted({t for r in due for t in json.loads(r["tables_json"] or "{}")} - {ERASURES})
    holder = Holder(job="privacy vacuum", rerun="cdp privacy vacuum")
    # One run at a time, and never beside a stage writing one of the tables (Sail does not see the commit).
    with lease_in_place(lake, [*tables, ERASURES], holder):
        clock = _dt.datetime.now(_dt.UTC).replace(tzinfo=None)
        for table in tables:
            if lake.exists(table):
                # Keep what was removed after the newest due erasure (readers and time travel of later
                # commits); the erasure's own removals are older than that and go.
                since = max(r["requested_at"] for r in due if table in json.loads(r["tables_json"] or "{}"))
                hours = max(0, int((clock - since).total_seconds() // 3600))
                out[table] = vacuum_table(lake, table, hours)
        done = records.where(F.col("request_id").isin(*[r["request_id"] for r in due])).withColumn(
            "vacuumed_at", F.lit(now).cast("timestamp")
        )
        with lake.lock(ERASURES):
            lake.upsert(ERASURES, done, ["request_id", "id_type", "id_digest"])
    return out


# ---- the erasure ------------------------------------------------------------------------------------------


def _record(lake: Lake, report: ErasureReport, targets: ErasureTargets, named: set[str], key: str, by: str):
    """Append the request to ``vault.erasures``: erasure digests of every identifier and OneID, no value."""
    vacuumed = report.requested_at if report.retention_hours == 0 else None
    common = (report.request_id, report.requested_at, by)
    tail = (json.dumps(report.tables), json.dumps(report.packs), report.retention_hours, vacuumed)
    rows = [
        (*common, id_type, erasure_digest(k, key), k in named, *tail)
        for id_type, keyed in sorted(targets.keyed.items())
        for k in sorted(keyed)
    ]
    rows += [(*common, ONEID, oneid_digest(o, key), False, *tail) for o in sorted(targets.oneids)]
    df = lake.spark.createDataFrame(rows, lake.contracts[ERASURES].ddl)
    with lake.lock(ERASURES):
        lake.append(ERASURES, df)


def erase(
    spark: SparkSession,
    settings: Settings,
    request: ErasureRequest,
    *,
    dry_run: bool = False,
    requested_by: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ErasureReport:
    """Erase the person a request names from every lake table and pack (see the module doc).

    Args:
        spark: the session.
        settings: lake and packs roots, PII key, ``erasure_retention_hours``.
        request: what the request names (:func:`identity.erasure.parse_request`).
        dry_run: count what would be removed; change nothing, record nothing.
        requested_by: the author recorded (the OS user by default).
        progress: called with the name of each table as it is searched.

    Returns:
        The report: rows removed per table, lines per pack, files vacuumed.

    Raises:
        ErasureError: a named identifier does not normalise.
        SettingsError: no PII key.
        cdp.leases.LeaseError: a run writes one of the lake's tables or packs (nothing was changed).
        cdp.leases.PartialTableError: a run that died left a table half-written; rerun it first.
    """
    key = settings.require_pii_key()
    lake = Lake.from_settings(spark, settings)
    sources = load_sources(settings.contract_paths)
    report = ErasureReport(uuid.uuid4().hex[:16], dry_run, retention_hours=settings.erasure_retention_hours)
    # The person may be in any table or pack: hold them all, before the first read, so no stage writes the
    # person back meanwhile and a second erasure waits for this one. A dry run changes nothing.
    holder = Holder(job=f"privacy erase {report.request_id}", rerun="cdp privacy erase (the same request)")
    # Should it die half-way, readers are refused until the rerun, never sent back to a version that still
    # holds the person (fall_back=False).
    leases = lease_in_place(lake, _writes(lake, settings), holder, fall_back=False, reruns="privacy erase")
    with nullcontext() if dry_run else leases:
        return _erase(spark, settings, lake, sources, key, request, report, requested_by, progress)


def _writes(lake: Lake, settings: Settings) -> list[str]:
    """What an erasure may change: every lake table, the erasure log, and the packs of every audience."""
    packs = PackStore(settings.packs_root).root
    audiences = {m.parents[2].name for m in packs.glob("*/v*/*/manifest.json")} if packs.is_dir() else set()
    return [*lake.tables(), ERASURES, *(f"pack.{a}" for a in sorted(audiences))]


def _erase(
    spark: SparkSession,
    settings: Settings,
    lake: Lake,
    sources: dict[str, SourceContract],
    key: str,
    request: ErasureRequest,
    report: ErasureReport,
    requested_by: str | None,
    progress: Callable[[str], None] | None,
) -> ErasureReport:
    dry_run = report.dry_run
    targets, named = resolve(spark, lake, request, sources, key)
    report.oneids, report.identifiers = len(targets.oneids), targets.count()
    lines = _person_lines(spark, settings, targets)
    for table in lake.tables():
        if table == ERASURES:
            continue
        if progress:
            progress(table)
        match = _match(lake, table, targets, sources, key)
        rows = _erase_rows(lake, table, match, dry_run) if match else 0
        if rows:
            report.tables[table] = rows
    report.packs = _erase_packs(settings, lines, report.request_id, dry_run)
    if dry_run:
        return report
    if report.retention_hours == 0:
        report.vacuumed = {t: vacuum_table(lake, t, 0) for t in report.tables}
    _record(lake, report, targets, named, key, requested_by or getpass.getuser())
    return report


# ---- no resurrection --------------------------------------------------------------------------------------


def erased_in_force(
    lake: Lake,
    key: str,
    sources: dict[str, SourceContract],
    batch: tuple[SourceContract, DataFrame] | None = None,
) -> dict[str, set[str]]:
    """ID type -> erasure digests still in force: erased, and no consent grant newer than the erasure (in
    the consent silver table, or among the good rows of ``batch``: checked rows of the consent source being
    ingested, identifiers normalised in clear)."""
    if not lake.exists(ERASURES):
        return {}
    grants = []
    consent = sources.get(CONSENT_SOURCE)
    if consent is not None and lake.exists(silver_table(consent.entity)):
        grants.append(lake.read_silver(consent).transform(build_grant_digests(consent, key)))
    if batch is not None and batch[0].name == CONSENT_SOURCE:
        rows = batch[1].where(F.size("_reasons") == 0) if "_reasons" in batch[1].columns else batch[1]
        grants.append(rows.transform(build_grant_digests(batch[0], key, form="typed")))
    union = None
    for g in grants:
        union = g if union is None else union.unionByName(g)
    out: dict[str, set[str]] = {}
    for r in still_erased(lake.read(ERASURES), union).collect():
        out.setdefault(r["id_type"], set()).add(r["id_digest"])
    return out


def suppress_erased(
    lake: Lake, contract: SourceContract, key: str, rows: DataFrame, contract_paths: tuple[str, ...] = ()
) -> tuple[DataFrame, int, Callable[[DataFrame], DataFrame] | None]:
    """Ingest's checked rows without those holding an erased identifier still in force, how many were
    dropped, and the same filter for records as landed (bronze of text files is written from them), or
    None when nothing was dropped. Free when nobody was erased; otherwise one more pass over the rows to
    count them.

    Args:
        lake: the lake (``vault.erasures``, the consent silver table).
        contract: the source of the rows.
        key: the deployment's secret.
        rows: checked rows (typed, identifier columns normalised, direct ones still in clear).
        contract_paths: extra contract folders (``Settings.contract_paths``), to find the consent source.
    """
    if not lake.exists(ERASURES):
        return rows, 0, None
    erased = erased_in_force(lake, key, load_sources(contract_paths), (contract, rows))
    if not erased:
        return rows, 0, None
    flagged = rows.transform(with_erased_flag(contract, key, erased, form="typed"))
    dropped = flagged.where(F.col("_erased")).count()
    if not dropped:
        return rows, 0, None

    def drop_landed(landed: DataFrame) -> DataFrame:
        flag = with_erased_flag(contract, key, erased, form="landed")
        return landed.transform(flag).where(~F.col("_erased")).drop("_erased")

    return flagged.where(~F.col("_erased")).drop("_erased"), dropped, drop_landed
