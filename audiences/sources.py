"""From silver records to OneIDs: which silver columns hold identifiers, the OneIDs behind each record, the
behaviour sets a rule asks for ("added to cart in the last 7 days"), and the platform match hashes of phones
and emails, computed when they are needed from the vault.

Silver keeps pseudonymous identifiers (device ids, openids, member ids) in their normalised form and direct
identifiers (phones, emails) only as ``<col>_hash`` (the keyed hash ``gold.oneid_map`` joins on) and a mask
(``<col>_masked``). The unsalted digests ad platforms match on (:data:`identity.pii.PLATFORM_HASH_FORMS`) are
never stored: :func:`with_platform_hashes` decrypts the ``vault.identifiers`` rows of the identifiers asked
for and hashes them there and then.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from audiences.rules import Behaviour
from cdp import lake
from identity.pii import PLATFORM_HASH_FORMS, build_decrypted, platform_hash_columns
from schemas import SourceContract

Transform = Callable[[DataFrame], DataFrame]
HASH_COLUMNS = (*PLATFORM_HASH_FORMS, "masked")
"""The columns :func:`with_platform_hashes` adds: the platform digests and the mask."""


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


def build_masks(contract: SourceContract) -> Transform:
    """A transform of a silver table to the masks of its direct identifiers, one row per record and
    identifier: ``(id_type, id_value, masked)``, ``id_value`` the keyed hash; no rows when there are none."""
    direct = [c for c in contract.columns if c.pii == "direct" and c.id_type]

    def transform(silver: DataFrame) -> DataFrame:
        pairs = [
            F.struct(
                F.lit(c.id_type).alias("id_type"),
                F.col(f"`{c.name}_hash`").alias("id_value"),
                F.col(f"`{c.name}_masked`").alias("masked"),
            )
            for c in direct
            if f"{c.name}_hash" in silver.columns and f"{c.name}_masked" in silver.columns
        ]
        if not pairs:
            none = F.lit(None).cast("string")
            return silver.where(F.lit(False)).select(
                none.alias("id_type"), none.alias("id_value"), none.alias("masked")
            )
        return (
            silver.select(F.explode(F.array(*pairs)).alias("_m"))
            .select("_m.id_type", "_m.id_value", "_m.masked")
            .where(F.col("id_value").isNotNull())
        )

    return transform


def with_platform_hashes(vault: DataFrame | None, masks: DataFrame | None, key: str | None) -> Transform:
    """A transform of identifiers (``id_type``, ``id_value``: keyed hashes for phones and emails) adding the
    platform digests of :data:`identity.pii.PLATFORM_HASH_FORMS` and the mask; NULL where there are none.

    Only the vault rows of the identifiers given are decrypted (AES-256-GCM,
    :func:`identity.pii.build_decrypted`), and their digests live in the query alone: nothing reversible is
    written. Device ids and other pseudonymous identifiers get NULLs (destinations hash them from
    ``id_value``).

    Args:
        vault: ``vault.identifiers`` (``id_type``, ``id_value``, ``encrypted``), or None when there is none.
        masks: ``(id_type, id_value, masked)`` from silver (:func:`build_masks`), or None.
        key: the deployment's secret the vault was encrypted with; needed when ``vault`` is given.

    Raises:
        ValueError: ``vault`` is given without a key.
    """
    if vault is not None and not key:
        raise ValueError("decrypting vault.identifiers needs the PII key: set CDP_PII_KEY")

    def transform(ids: DataFrame) -> DataFrame:
        out = ids
        wanted = ids.select("id_type", "id_value").distinct()
        if vault is None:
            out = out.select("*", *[F.lit(None).cast("string").alias(f) for f in PLATFORM_HASH_FORMS])
        else:
            rows = wanted.join(vault.select("id_type", "id_value", "encrypted"), ["id_type", "id_value"])
            # Decrypted once per identifier in its own projection, then hashed in every form.
            plain = rows.dropDuplicates(["id_type", "id_value"]).select(
                "id_type", "id_value", build_decrypted(F.col("encrypted"), key).alias("_plain")
            )
            phone = platform_hash_columns(F.col("_plain"), "phone")
            other = platform_hash_columns(F.col("_plain"), "email")
            is_phone = F.col("id_type") == "phone"
            digests = plain.select(
                "id_type",
                "id_value",
                *[F.when(is_phone, phone[f]).otherwise(other[f]).alias(f) for f in PLATFORM_HASH_FORMS],
            )
            out = out.join(digests, ["id_type", "id_value"], "left")
        if masks is None:
            return out.withColumn("masked", F.lit(None).cast("string"))
        shown = (
            masks.join(wanted, ["id_type", "id_value"])
            .groupBy("id_type", "id_value")
            .agg(F.max("masked").alias("masked"))
        )
        return out.join(shown, ["id_type", "id_value"], "left")

    return transform
