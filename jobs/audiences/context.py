"""What every audience operation shares: one session, the settings, the lake, and the readers of the tables
audiences are made from, each at the latest date on or before the one asked for.

    gold.profile      (latest dt <= day) -> profile(day): one row per OneID, oneid as string, column types
    gold.oneid_map    (latest dt <= day) -> oneid_map(day): (id_type, id_value, oneid)
    silver consent (every record ingested so far) + gold.oneid_map (day and latest)
        + gold.consent_optouts (dt = day) -> optouts(day): (oneid), the opt-outs known now
    gold.ingest_runs (source consent) + the consent lease -> consent_refusal(): why exports must wait
    vault.identifiers (decrypted) + silver masks -> with_platform_hashes(): identifiers -> md5/sha256 forms,
        mask; platform_hashes(): the same for every identifier in the vault (seed lists of digests)
    gold.audience_members (audience_id, version) -> version_members(...)

The operations (:mod:`jobs.audiences.registry`, ``definitions``, ``insights``, ``lookalikes``, ``exports``,
``daily``) open one :class:`AudienceContext` at their entry point and pass it inward.

Consent fails closed: every audience version and every pack removes the opt-outs known when it is made (read
then from silver consent, not only the day's stored snapshot), and an export is refused while a consent
batch is not applied (its ingest failed, held rows back, or died half-way) unless an admin overrides it with
a reason, which is written to ``gold.audit_log`` (:func:`guarded_export`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import getpass
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from pyspark.sql import Window
from pyspark.sql import functions as F

from audiences.consent import build_optouts
from audiences.errors import AudienceError, MissingDataError
from audiences.sources import build_masks, silver_table, with_platform_hashes
from cdp.lake import Lake, parse_dt
from cdp.run import union_all
from schemas import SourceContract, load_sources

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from audiences.sources import Transform
    from cdp.run import RunContext
    from cdp.settings import Settings

PROFILE, MAP = "gold.profile", "gold.oneid_map"
AUDIENCES, MEMBERS, EXPORTS, OPTOUTS = (
    "gold.audiences",
    "gold.audience_members",
    "gold.audience_exports",
    "gold.consent_optouts",
)
VAULT = "vault.identifiers"
CONSENT_SOURCE = "consent"
"""The source whose silver table holds the opt-in / opt-out records."""
RUNS, AUDIT = "gold.ingest_runs", "gold.audit_log"
APPLIED = ("ok", "no_files")
"""Ingest run statuses after which a consent batch is applied in full."""
KNOWN_NOW = _dt.date(9999, 1, 1)
"""The date that lets every consent record ingested so far count, whatever its time."""

T = TypeVar("T")


class ConsentNotAppliedError(AudienceError):
    """A consent batch is not applied (its ingest failed or died): exports wait until it is fixed."""


def as_day(dt: str | _dt.date | None) -> _dt.date | None:
    """A date given at the edge (``YYYY-MM-DD`` text, a date, or nothing for "the latest") as a date or None.

    Raises:
        LakeError: the text is not a date.
    """
    return parse_dt(dt) if dt else None


@dataclass(frozen=True)
class ProfileSnapshot:
    """One date of ``gold.profile``.

    Attributes:
        frame: the rows, ``oneid`` cast to string.
        columns: column name -> Spark type (``bigint``, ``string``, ``array<string>``...), as stored.
        dt: the profile date.
    """

    frame: DataFrame
    columns: dict[str, str]
    dt: _dt.date


@dataclass
class AudienceContext:
    """The session, settings and lake of one audience operation, and the readers it needs.

    Attributes:
        spark: the session that runs every read and write.
        settings: the deployment's settings (packs root, PII key, minimum sizes).
        lake: the lake catalog at ``settings.lake_root``.
    """

    spark: SparkSession
    settings: Settings
    lake: Lake

    @classmethod
    def open(cls, spark: SparkSession, settings: Settings) -> AudienceContext:
        """A context on the lake of ``settings``."""
        return cls(spark, settings, Lake.from_settings(spark, settings))

    @classmethod
    def of_run(cls, run: RunContext) -> AudienceContext:
        """A context sharing the session, settings and lake of a stage run (the daily refresh)."""
        return cls(run.spark, run.settings, run.lake)

    @cached_property
    def sources(self) -> dict[str, SourceContract]:
        """The source contracts of the deployment (packaged and ``settings.contract_paths``)."""
        return load_sources(self.settings.contract_paths)

    def latest_dt(self, table: str, dt: _dt.date | None = None) -> _dt.date:
        """The latest date of ``table`` on or before ``dt`` (the latest of all when ``dt`` is None).

        Raises:
            MissingDataError: the table does not exist or holds no such date.
        """
        if not self.lake.exists(table):
            raise MissingDataError(f"{table} does not exist yet; run the pipeline stage that builds it first")
        found = self.lake.latest_dt(table, on_or_before=dt)
        if found is None:
            raise MissingDataError(
                f"{table} has no data on or before {dt}; run the pipeline for that date first"
            )
        return found

    def profile(self, dt: _dt.date | None) -> ProfileSnapshot:
        """The profile at the latest date on or before ``dt``.

        Raises:
            MissingDataError: no profile on or before ``dt``.
        """
        day = self.latest_dt(PROFILE, dt)
        df = self.lake.read(PROFILE).where(F.col("dt") == F.lit(day))
        columns = {f.name: f.dataType.simpleString() for f in df.schema.fields}
        return ProfileSnapshot(df.withColumn("oneid", F.col("oneid").cast("string")), columns, day)

    def oneid_map(self, dt: _dt.date | None) -> DataFrame:
        """``(id_type, id_value, oneid)`` of the OneID map at the latest date on or before ``dt``.

        Raises:
            MissingDataError: no map on or before ``dt``.
        """
        day = self.latest_dt(MAP, dt)
        return self.lake.read(MAP).where(F.col("dt") == F.lit(day)).select("id_type", "id_value", "oneid")

    def optouts(self, dt: _dt.date) -> DataFrame:
        """Opted-out OneIDs (``oneid``) for an operation on ``dt``: the opt-outs known now, not only the ones
        the day's refresh stored. Every consent record ingested so far counts (an opt-out ingested after the
        refresh, or dated after ``dt``, still removes the person), mapped through the OneID map of ``dt``
        and the latest one; the stored snapshot of ``dt`` is added, so nobody it removed comes back."""
        parts = [self.compute_optouts(dt, known_now=True).select("oneid")]
        if self.lake.exists(MAP) and self.lake.latest_dt(MAP) != self.lake.latest_dt(MAP, on_or_before=dt):
            parts.append(self.compute_optouts(None, known_now=True).select("oneid"))
        if self.lake.exists(OPTOUTS):
            parts.append(self.lake.read(OPTOUTS).where(F.col("dt") == F.lit(dt)).select("oneid"))
        return union_all(parts).distinct()

    def compute_optouts(self, dt: _dt.date | None, *, known_now: bool = False) -> DataFrame:
        """``(oneid, purposes, since)`` of every OneID opted out at ``dt`` (with ``known_now``: by every
        record ingested so far), through the OneID map of ``dt`` (the latest when None), from the consent
        silver table; empty when the deployment has no consent source or no OneID map yet."""
        contract = self.sources.get(CONSENT_SOURCE)
        empty = self.spark.createDataFrame([], "oneid string, purposes string, since timestamp")
        if contract is None or not self.lake.exists(silver_table(contract)) or not self.lake.exists(MAP):
            return empty
        consent = self.lake.read_silver(contract)
        cut = KNOWN_NOW if known_now or dt is None else dt
        return consent.transform(build_optouts(contract, self.oneid_map(dt), cut))

    def consent_refusal(self) -> str | None:
        """Why the opt-outs known now may miss some, or None: a consent ingest that died half-way, or the
        latest run of a date of the consent source that did not apply its batch in full (failed threshold or
        quality gate, refused files)."""
        from cdp.leases import dead_holder

        contract = self.sources.get(CONSENT_SOURCE)
        if contract is None:
            return None
        dead = dead_holder(self.lake.root, silver_table(contract))
        if dead is not None:
            return f"the consent ingest {dead.describe()} stopped before it finished; rerun it ({dead.rerun})"
        if not self.lake.exists(RUNS):
            return None
        latest = Window.partitionBy("dt").orderBy(F.col("started_at").desc())
        failed = (
            self.lake.read(RUNS)
            .where(F.col("source") == contract.name)
            .withColumn("_n", F.row_number().over(latest))
            .where((F.col("_n") == 1) & ~F.col("status").isin(*APPLIED))
            .orderBy("dt")
            .select("dt", "status", "message")
            .collect()
        )
        if not failed:
            return None
        first = failed[0]
        return (
            f"the consent batch of {first['dt']} is not applied ({first['status']}: {first['message']})"
            + (f" nor those of {len(failed) - 1} more date(s)" if len(failed) > 1 else "")
            + f"; fix the file and rerun cdp ingest {contract.name} --dt {first['dt']}"
        )

    def check_consent(self, what: str, *, override: str | None = None, by: str | None = None) -> None:
        """Refuse ``what`` (an export) while a consent batch is not applied, unless ``override`` gives an
        admin's reason: then the override is written to ``gold.audit_log`` and the export goes on.

        Raises:
            ConsentNotAppliedError: a consent batch is not applied and there is no override.
        """
        why = self.consent_refusal()
        if why is None:
            return
        if not (override or "").strip():
            raise ConsentNotAppliedError(
                f"{what} refused: {why}. Opt-outs in that batch would leak. An admin may override with "
                "--consent-override '<reason>' (audited)"
            )
        self._audit_override(what, why, (override or "").strip(), by or getpass.getuser())

    def _audit_override(self, what: str, why: str, reason: str, by: str) -> None:
        now = _dt.datetime.now(_dt.UTC).replace(tzinfo=None, microsecond=0)
        row: dict[str, Any] = {c.name: None for c in self.lake.contracts[AUDIT].columns}
        row |= {
            "event_id": uuid.uuid4().hex[:16],
            "at": now,
            "actor": by,
            "role": "admin",
            "action": "consent_override",
            "status": "ok",
            "detail_json": json.dumps({"export": what, "consent": why, "reason": reason}, ensure_ascii=False),
            "dt": now.date(),
        }
        with self.lake.lock(AUDIT):
            self.lake.append(AUDIT, self.spark.createDataFrame([row], self.lake.contracts[AUDIT].ddl))

    def with_platform_hashes(self) -> Transform | None:
        """A transform adding the platform hashes (decrypted from ``vault.identifiers``, for the identifiers
        given only) and the silver masks to ``(id_type, id_value)`` rows, or None when there is no vault
        (:func:`audiences.sources.with_platform_hashes`)."""
        if not self.lake.exists(VAULT):
            return None
        masks = []
        for contract in self.sources.values():
            table = silver_table(contract)
            if any(c.pii == "direct" and c.id_type for c in contract.columns) and self.lake.exists(table):
                masks.append(self.lake.read_silver(contract).transform(build_masks(contract)))
        return with_platform_hashes(
            self.lake.read(VAULT), union_all(masks) if masks else None, self.settings.require_pii_key()
        )

    def platform_hashes(self) -> DataFrame | None:
        """``(id_type, id_value, md5, sha256, sha256_e164, sha256_cc, masked)`` of every identifier in the
        vault, computed now (seed lists of digests are matched on them), or None when there is no vault."""
        add = self.with_platform_hashes()
        if add is None:
            return None
        return self.lake.read(VAULT).select("id_type", "id_value").transform(add)

    def version_members(self, audience_id: str, version: int) -> DataFrame:
        """The stored rows of one audience version in ``gold.audience_members`` (before today's consent)."""
        return self.lake.read(MEMBERS).where(
            (F.col("audience_id") == audience_id) & (F.col("version") == version)
        )


def guarded_export(export: Callable[..., T]) -> Callable[..., T]:
    """Wrap the export entry point ``export(spark, settings, audience_id, destination, ...)``: one export of
    an audience at a time (the lease ``pack.<audience_id>``, so two never write one pack folder), and refused
    while a consent batch is not applied unless ``consent_override='<reason>'`` is given (audited, see
    :meth:`AudienceContext.check_consent`).

    Raises:
        ConsentNotAppliedError: a consent batch is not applied and there is no override.
        cdp.leases.LeaseError: another export of the audience is running.
    """

    @functools.wraps(export)
    def wrapper(
        spark: SparkSession,
        settings: Settings,
        audience_id: str,
        destination: str,
        *args: Any,
        consent_override: str | None = None,
        **kwargs: Any,
    ) -> T:
        from cdp.leases import Holder

        ctx = AudienceContext.open(spark, settings)
        what = f"export of {audience_id} to {destination}"
        holder = Holder(job=f"export {audience_id}", rerun=f"cdp audience export {audience_id}")
        with ctx.lake.lease([f"pack.{audience_id}"], holder):
            ctx.check_consent(what, override=consent_override, by=kwargs.get("created_by"))
            return export(spark, settings, audience_id, destination, *args, **kwargs)

    return wrapper
