"""From silver records to OneIDs: which silver columns hold identifiers, the OneIDs behind each record, the
behaviour sets a rule asks for ("added to cart in the last 7 days"), and the platform match hashes kept in
silver for phones and emails.

Silver keeps pseudonymous identifiers (device ids, openids, member ids) in their normalised form and direct
identifiers (phones, emails) only as ``<col>_hash`` (the keyed hash ``gold.oneid_map`` joins on) plus the
unsalted platform hashes (``<col>_md5``, ``<col>_sha256``, ``_sha256_e164``, ``_sha256_cc``) and a mask.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from audiences.rules import Behaviour
from cdp import lake
from schemas import SourceContract

Transform = Callable[[DataFrame], DataFrame]
PLATFORM_HASH_FORMS = ("md5", "sha256", "sha256_e164", "sha256_cc")
"""Platform hash columns silver keeps per direct identifier (phones have all four, emails md5 and sha256)."""


def silver_table(contract: SourceContract) -> str:
    """The silver table of a source (``silver.<entity>``)."""
    return lake.silver_table(contract.entity)


def identifier_columns(contract: SourceContract) -> dict[str, str]:
    """Silver column -> ID type for every identifier of a source; direct PII is reached via its keyed hash."""
    out = {}
    for col in contract.columns:
        if col.id_type:
            out[f"{col.name}_hash" if col.pii == "direct" else col.name] = col.id_type
    return out


def _identifiers(contract: SourceContract, silver: DataFrame) -> Column:
    """An array of (id_type, id_value) structs of one silver record, NULLs removed."""
    pairs = [
        F.struct(F.lit(t).alias("id_type"), F.col(f"`{c}`").cast("string").alias("id_value"))
        for c, t in identifier_columns(contract).items()
        if c in silver.columns
    ]
    return F.filter(F.array(*pairs), lambda p: p["id_value"].isNotNull())


def build_record_oneids(contract: SourceContract, oneid_map: DataFrame, key: str = "_record") -> Transform:
    """A transform of a silver table to ``(<key>, oneid)``: the OneIDs reached by each record's identifiers.

    Args:
        contract: the source contract of the silver table.
        oneid_map: one snapshot of ``gold.oneid_map`` (``id_type``, ``id_value``, ``oneid``).
        key: the name of the record key column produced (a struct of the contract's key columns).
    """

    def transform(silver: DataFrame) -> DataFrame:
        ids = silver.select(
            F.struct(*[F.col(f"`{k}`") for k in contract.keys]).alias(key),
            F.explode(_identifiers(contract, silver)).alias("_id"),
        ).select(key, F.col("_id.id_type").alias("id_type"), F.col("_id.id_value").alias("id_value"))
        mapped = oneid_map.select("id_type", "id_value", F.col("oneid").cast("string").alias("oneid"))
        return ids.join(mapped, ["id_type", "id_value"]).select(key, "oneid").distinct()

    return transform


def build_behaviour_set(
    contract: SourceContract, behaviour: Behaviour, oneid_map: DataFrame, dt: _dt.date
) -> Transform:
    """A transform of the source's silver table to the OneIDs meeting one behaviour condition at ``dt``.

    The window is the ``within_days`` calendar days ending with ``dt`` (inclusive), on the contract's event
    time; a person meets the condition with at least ``min_count`` distinct records.

    Returns:
        A transform giving ``(oneid, records)``, one row per OneID.
    """
    start = dt - _dt.timedelta(days=behaviour.within_days - 1)
    end = dt + _dt.timedelta(days=1)

    def transform(silver: DataFrame) -> DataFrame:
        when = F.col(f"`{contract.event_time}`")
        cond = (when >= F.lit(start).cast("timestamp")) & (when < F.lit(end).cast("timestamp"))
        for column, values in behaviour.where:
            cond = cond & F.col(f"`{column}`").isin(*values)
        records = silver.where(cond).transform(build_record_oneids(contract, oneid_map))
        return (
            records.groupBy("oneid")
            .agg(F.count("*").alias("records"))
            .where(F.col("records") >= behaviour.min_count)
        )

    return transform


def build_platform_hashes(contract: SourceContract) -> Transform:
    """A transform of a silver table to the platform hashes of its direct identifiers, one row per keyed hash:
    ``(id_type, id_value, md5, sha256, sha256_e164, sha256_cc, masked)``; absent forms are NULL."""
    direct = [c for c in contract.columns if c.pii == "direct" and c.id_type]

    def transform(silver: DataFrame) -> DataFrame | None:
        parts = []
        for col in direct:
            if f"{col.name}_hash" not in silver.columns:
                continue

            def form(name: str, col=col) -> Column:
                c = f"{col.name}_{name}"
                return (F.col(f"`{c}`") if c in silver.columns else F.lit(None).cast("string")).alias(name)

            parts.append(
                silver.where(F.col(f"`{col.name}_hash`").isNotNull()).select(
                    F.lit(col.id_type).alias("id_type"),
                    F.col(f"`{col.name}_hash`").alias("id_value"),
                    *[form(f) for f in PLATFORM_HASH_FORMS],
                    form("masked"),
                )
            )
        if not parts:
            return None
        out = parts[0]
        for p in parts[1:]:
            out = out.unionByName(p)
        return out

    return transform
