"""Seed lists: an uploaded list of identifiers (phones, emails, device ids; plain or already md5/sha256
hashed) matched to OneIDs.

Plain values are normalised like at ingest (``identity.normalize``); phones and emails then become the keyed
hash ``gold.oneid_map`` holds. Hashed phones and emails are matched through the platform hashes computed
from the encrypted ``vault.identifiers`` at match time (md5/sha256 of the 11-digit number, sha256 of E.164
or of the digits with country code; md5/sha256 of the email). Hashed device ids are matched against
md5/sha256 of the known ids (IMEI lower-case, IDFA upper-case, as the platforms hash them).
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from audiences.errors import SeedListError
from identity.normalize import NORMALIZERS, build_hash_kind
from identity.pii import build_keyed_hash

Transform = Callable[[DataFrame], DataFrame]
SEED_ID_TYPES = tuple(NORMALIZERS)
_DEVICE_CANONICAL: dict[str, Callable[[Column], Column]] = {
    "imei": F.lower,
    "idfa": F.upper,
    "oaid": F.lower,
    "android_id": F.lower,
}


def validate_seed_id_type(id_type: str) -> str:
    """Raises SeedListError for an unknown ID type."""
    if id_type not in SEED_ID_TYPES:
        raise SeedListError(
            f"unknown ID type {id_type!r} for a seed list; use one of {', '.join(SEED_ID_TYPES)}"
        )
    return id_type


def build_seed_matches(
    id_type: str, oneid_map: DataFrame, platform_hashes: DataFrame | None, key: str
) -> Transform:
    """A transform of raw seed values (column ``value``) to ``(value, status, oneid)``.

    ``status`` is ``matched``, ``unmatched`` (a valid identifier no OneID holds) or ``invalid`` (blank,
    junk or malformed); a value matching several OneIDs gives several rows.

    Args:
        id_type: the ID type of every value of the list.
        oneid_map: one snapshot of ``gold.oneid_map``.
        platform_hashes: keyed hash -> platform hashes (phones and emails), or None.
        key: the deployment's secret for keyed hashes.
    """
    validate_seed_id_type(id_type)
    mapped = oneid_map.where(F.col("id_type") == id_type).select(
        "id_value", F.col("oneid").cast("string").alias("oneid")
    )

    def transform(seed: DataFrame) -> DataFrame:
        raw = seed.select(F.col("value").cast("string").alias("value")).distinct()
        kind = build_hash_kind(F.col("value"))
        digest = F.lower(F.trim(F.col("value")))
        norm = NORMALIZERS[id_type](F.col("value"))
        if id_type in ("phone", "email"):
            plain = raw.where(kind.isNull()).select("value", build_keyed_hash(norm, key).alias("id_value"))
            matched = plain.join(mapped, "id_value", "left").select(
                "value", "oneid", F.col("id_value").isNull().alias("_bad")
            )
            hashed = raw.where(kind.isNotNull()).select("value", digest.alias("_digest"))
            if platform_hashes is not None:
                forms = platform_hashes.where(F.col("id_type") == id_type)
                long = (
                    forms.select(
                        "id_value",
                        F.explode(F.array("md5", "sha256", "sha256_e164", "sha256_cc")).alias("_digest"),
                    )
                    .where(F.col("_digest").isNotNull())
                    .distinct()
                )
                hashed = hashed.join(long, "_digest", "left").join(mapped, "id_value", "left")
                hashed = hashed.select("value", "oneid", F.lit(False).alias("_bad"))
            else:
                hashed = hashed.select(
                    "value", F.lit(None).cast("string").alias("oneid"), F.lit(False).alias("_bad")
                )
            out = matched.unionByName(hashed)
        elif id_type in _DEVICE_CANONICAL:
            canonical = _DEVICE_CANONICAL[id_type]
            plain = raw.select("value", norm.alias("id_value"))
            direct = plain.join(mapped, "id_value", "left").select(
                "value", "oneid", F.col("id_value").isNull().alias("_bad")
            )
            known = mapped.select(
                "oneid",
                F.explode(
                    F.array(F.md5(canonical(F.col("id_value"))), F.sha2(canonical(F.col("id_value")), 256))
                ).alias("_digest"),
            )
            hashed = (
                raw.where(kind.isNotNull())
                .select("value", digest.alias("_digest"))
                .join(known, "_digest", "inner")
                .select("value", "oneid", F.lit(False).alias("_bad"))
            )
            out = direct.unionByName(hashed)
        else:
            plain = raw.select("value", norm.alias("id_value"))
            out = plain.join(mapped, "id_value", "left").select(
                "value", "oneid", F.col("id_value").isNull().alias("_bad")
            )
        # A value matched by one route and not another keeps only its matches.
        best = out.groupBy("value").agg(
            F.max(F.col("oneid").isNotNull().cast("int")).alias("_any"),
            F.min(F.col("_bad").cast("int")).alias("_allbad"),
        )
        return (
            out.join(best, "value")
            .where(F.col("oneid").isNotNull() | (F.col("_any") == 0))
            .select(
                "value",
                F.when(F.col("oneid").isNotNull(), F.lit("matched"))
                .when(F.col("_allbad") == 1, F.lit("invalid"))
                .otherwise(F.lit("unmatched"))
                .alias("status"),
                "oneid",
            )
            .distinct()
        )

    return transform
