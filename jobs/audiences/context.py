"""What every audience operation shares: one session, the settings, the lake, and the readers of the tables
audiences are made from, each at the latest date on or before the one asked for.

    gold.profile      (latest dt <= day) -> profile(day): one row per OneID, oneid as string, column types
    gold.oneid_map    (latest dt <= day) -> oneid_map(day): (id_type, id_value, oneid)
    gold.consent_optouts (dt = day), else silver consent + gold.oneid_map -> optouts(day): (oneid)
    vault.identifiers (decrypted) + silver masks -> with_platform_hashes(): identifiers -> md5/sha256 forms,
        mask; platform_hashes(): the same for every identifier in the vault (seed lists of digests)
    gold.audience_members (audience_id, version) -> version_members(...)

The operations (:mod:`jobs.audiences.registry`, ``definitions``, ``insights``, ``lookalikes``, ``exports``,
``daily``) open one :class:`AudienceContext` at their entry point and pass it inward.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from audiences.consent import build_optouts
from audiences.errors import MissingDataError
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
        """Opted-out OneIDs (``oneid``) at ``dt``: the snapshot the refresh stored, else computed now."""
        if self.lake.exists(OPTOUTS):
            stored = self.lake.read(OPTOUTS).where(F.col("dt") == F.lit(dt))
            if stored.limit(1).count():
                return stored.select("oneid")
        return self.compute_optouts(dt).select("oneid")

    def compute_optouts(self, dt: _dt.date) -> DataFrame:
        """``(oneid, purposes, since)`` of every OneID opted out at ``dt``, from the consent silver table;
        empty when the deployment has no consent source or no OneID map yet."""
        contract = self.sources.get(CONSENT_SOURCE)
        empty = self.spark.createDataFrame([], "oneid string, purposes string, since timestamp")
        if contract is None or not self.lake.exists(silver_table(contract)) or not self.lake.exists(MAP):
            return empty
        consent = self.lake.read(silver_table(contract))
        return consent.transform(build_optouts(contract, self.oneid_map(dt), dt))

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
                masks.append(self.lake.read(table).transform(build_masks(contract)))
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
