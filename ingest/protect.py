"""Silver-side identifier handling: normalise every identifier column by its ID type and replace direct PII
by keyed hashes, platform match hashes and masked display forms, as each source contract declares.

Silver and gold never hold a raw phone number, email or name: only
- ``<col>_hash``: HMAC-SHA256 with the deployment's secret key, for joining and identity resolution;
- ``<col>_md5``, ``<col>_sha256`` (and for phones ``_sha256_e164``, ``_sha256_cc``): the unsalted hashes ad
  platforms match on, when the contract sets ``platform_hashes``;
- ``<col>_masked``: a display form such as ``138****5678``.
Pseudonymous identifiers (device IDs, openids, member IDs) stay in silver in their normalised form.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from identity.normalize import NORMALIZERS
from identity.pii import build_encrypted, build_keyed_hash, build_masked, build_md5, build_sha256
from schemas import ColumnSpec, SourceContract

Transform = Callable[[DataFrame], DataFrame]


def _phone_forms(e164: Column) -> dict[str, Column]:
    """Hash inputs ad platforms use for phones: Chinese platforms hash the 11-digit national number,
    Google the E.164 string, Meta the digits with country code."""
    digits = F.regexp_replace(e164, r"^\+", "")
    national = F.when(e164.startswith("+86"), F.substring(e164, 4, 11)).otherwise(digits)
    return {
        "md5": build_md5(national),
        "sha256": build_sha256(national),
        "sha256_e164": build_sha256(e164),
        "sha256_cc": build_sha256(digits),
    }


def _direct_columns(col: ColumnSpec, value: Column, key: str, platform_hashes: bool) -> dict[str, Column]:
    """Silver columns that replace one direct-PII column."""
    name = col.name
    if col.id_type is None:  # a name or free text: keyed hash of the trimmed lower-case value, and a mask
        clean = F.nullif(F.trim(value), F.lit(""))
        return {
            f"{name}_hash": build_keyed_hash(F.lower(clean), key),
            f"{name}_masked": build_masked(clean, "name"),
        }
    out = {f"{name}_hash": build_keyed_hash(value, key)}
    if platform_hashes:
        if col.id_type == "phone":
            out |= {f"{name}_{form}": c for form, c in _phone_forms(value).items()}
        else:
            out |= {f"{name}_md5": build_md5(value), f"{name}_sha256": build_sha256(value)}
    out[f"{name}_masked"] = build_masked(value, col.id_type)
    return out


def with_normalized_identifiers(contract: SourceContract) -> Transform:
    """Replace each identifier column by its normalised value (NULL when invalid or junk) and add
    ``_rejected_ids``: the identifier columns whose non-empty value did not normalise."""

    def transform(df: DataFrame) -> DataFrame:
        normalized = {
            name: NORMALIZERS[id_type](F.col(f"`{name}`"))
            for name, id_type in contract.identifier_columns.items()
        }
        rejected = (
            F.filter(
                F.array(
                    *[
                        F.when(F.col(f"`{n}`").isNotNull() & v.isNull(), F.lit(n))
                        for n, v in normalized.items()
                    ]
                ),
                lambda x: x.isNotNull(),
            )
            if normalized
            else F.array().cast("array<string>")
        )
        return df.select(
            *[normalized[c].alias(c) if c in normalized else F.col(f"`{c}`") for c in df.columns],
            rejected.alias("_rejected_ids"),
        )

    return transform


def protect_direct_pii(contract: SourceContract, key: str) -> Transform:
    """Replace every direct-PII column by its keyed hash, platform hashes and masked form."""

    def transform(df: DataFrame) -> DataFrame:
        out: list[Column] = []
        for name in df.columns:
            spec = next((c for c in contract.columns if c.name == name), None)
            if spec is not None and spec.pii == "direct":
                out += [
                    c.alias(n)
                    for n, c in _direct_columns(
                        spec, F.col(f"`{name}`"), key, contract.platform_hashes
                    ).items()
                ]
            else:
                out.append(F.col(f"`{name}`"))
        return df.select(*out)

    return transform


def protect_bronze_pii(contract: SourceContract, key: str, raw_column: str | None = None) -> Transform:
    """Encrypt (or blank out, per ``bronze_pii``) the direct-PII columns of bronze rows, and the raw line
    when one is kept, so that plain personal data never rests in the lake."""
    direct = [c.name for c in contract.columns if c.pii == "direct"]

    def transform(df: DataFrame) -> DataFrame:
        if not direct:
            return df
        targets = [c for c in (*direct, raw_column) if c and c in df.columns]
        if contract.bronze_pii == "exclude":
            return df.select(
                *[
                    F.lit(None).cast("string").alias(c) if c in targets else F.col(f"`{c}`")
                    for c in df.columns
                ]
            )
        return df.select(
            *[
                build_encrypted(F.col(f"`{c}`"), key).alias(c) if c in targets else F.col(f"`{c}`")
                for c in df.columns
            ]
        )

    return transform
