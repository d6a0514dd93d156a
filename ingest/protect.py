"""Silver-side identifier handling: normalise every identifier column by its ID type, replace direct PII by
keyed hashes and masked display forms, and put the direct identifiers, encrypted, in the vault.

Silver and gold never hold a raw phone number, email or name, nor any unkeyed digest of one: only
- ``<col>_hash``: HMAC-SHA256 with the deployment's secret key, for joining and identity resolution;
- ``<col>_masked``: a display form such as ``138****5678``.
An unsalted md5/SHA-256 of a phone beside its mask leaves about 10^4 candidates to try, so the digests ad
platforms match on are computed only at export time, from ``vault.identifiers`` (one row per ID type and keyed
hash, the normalised value AES-256-GCM encrypted), which :func:`vault_identifiers` fills from the same
normalised rows when the contract sets ``vault``.
Pseudonymous identifiers (device IDs, openids, member IDs) stay in silver in their normalised form.

Quarantine says what to fix without showing a person: ``_details`` holds each reason with the value that
broke it, masked by the column's PII class (:func:`build_shown_value`), e.g.
``invalid_identifier:phone=138****5678``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from identity.normalize import NORMALIZERS
from identity.pii import build_encrypted, build_keyed_hash, build_masked
from ingest.rows import REASONS, with_reason, with_typed_columns
from schemas import ColumnSpec, SourceColumn, SourceContract

Transform = Callable[[DataFrame], DataFrame]
VAULT = "vault.identifiers"
DETAILS = "_details"
"""Quarantine: each reason of a row with the offending value masked by its PII class (``reason=value``)."""
_TEXT = "_text"
_SHOWN_LENGTH = 80  # a value shown in a detail is cut to this many characters


def build_shown_value(column: SourceColumn, text: Column) -> Column:
    """A column's text as quarantine may show it to the engineer who fixes the file: masked by its PII
    class (direct: ``138****5678``, ``jo***@qq.com``, ``张*``; pseudonymous: ``abcd****6789``; quasi:
    ``****``), or as it is, cut to 80 characters, when it is not personal."""
    if column.pii == "direct":
        if column.id_type == "phone":  # the digits, so a phone written with spaces or dashes masks alike
            return build_masked(F.regexp_replace(text, "[^0-9+]", ""), "phone")
        return build_masked(text, column.id_type or "name")
    if column.pii == "pseudonymous" or column.id_type:
        return build_masked(text, column.id_type or "member_id")
    if column.pii == "quasi":
        return F.when(text.isNotNull(), F.lit("****"))
    return F.substring(text, 1, _SHOWN_LENGTH)


def build_reason_details(contract: SourceContract) -> Column:
    """The ``_details`` of a checked row (needs ``_reasons`` and the struct ``_text`` of the columns' text
    before typing): ``<reason>=<shown value>`` for each reason about a value; empty for good rows."""
    parts: list[Column] = []
    for col in contract.columns:
        kinds = ["bad_type"]
        if col.spark_type.startswith("decimal"):
            kinds.append("bad_scale")
        if col.spark_type in ("date", "timestamp"):
            kinds.append("impossible_time")
        if col.id_type:
            kinds.append("invalid_identifier")
        shown = build_shown_value(col, F.col(_TEXT)[col.name])
        for kind in kinds:
            reason = f"{kind}:{col.name}"
            parts.append(F.when(F.array_contains(REASONS, reason), F.concat_ws("=", F.lit(reason), shown)))
    found = F.filter(F.array(*parts), lambda d: d.isNotNull())
    return F.when(F.size(REASONS) > 0, found).otherwise(F.array().cast("array<string>"))


def _direct_columns(col: ColumnSpec, value: Column, key: str) -> dict[str, Column]:
    """Silver columns that replace one direct-PII column: its keyed hash and its mask, nothing reversible."""
    name = col.name
    if col.id_type is None:  # a name or free text: keyed hash of the trimmed lower-case value, and a mask
        clean = F.nullif(F.trim(value), F.lit(""))
        return {
            f"{name}_hash": build_keyed_hash(F.lower(clean), key),
            f"{name}_masked": build_masked(clean, "name"),
        }
    return {f"{name}_hash": build_keyed_hash(value, key), f"{name}_masked": build_masked(value, col.id_type)}


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


def with_checked_rows(contract: SourceContract, dt: _dt.date, *, details: bool = False) -> Transform:
    """Parsed (and mapped) rows typed by the contract, identifier columns normalised, and
    ``invalid_identifier:<col>`` added to ``_reasons`` for each required identifier that did not normalise:
    what ingest routes to silver or quarantine, and what ``cdp contracts preview`` shows. With ``details``,
    ``_details`` says which value broke each reason, masked (:func:`build_reason_details`)."""

    def transform(df: DataFrame) -> DataFrame:
        if details:
            df = df.withColumn(
                _TEXT, F.struct(*[F.col(f"`{c.name}`").alias(c.name) for c in contract.columns])
            )
        typed = df.transform(with_typed_columns(contract, dt)).transform(
            with_normalized_identifiers(contract)
        )
        reasons = F.col(REASONS)
        for name in contract.identifier_columns:
            if contract.column(name).required:
                reasons = with_reason(
                    reasons, F.array_contains("_rejected_ids", name), f"invalid_identifier:{name}"
                )
        typed = typed.withColumn(REASONS, reasons)
        if details:
            typed = typed.withColumn(DETAILS, build_reason_details(contract)).drop(_TEXT)
        return typed

    return transform


def protect_direct_pii(contract: SourceContract, key: str) -> Transform:
    """Replace every direct-PII column by its keyed hash and masked form."""

    def transform(df: DataFrame) -> DataFrame:
        out: list[Column] = []
        for name in df.columns:
            spec = next((c for c in contract.columns if c.name == name), None)
            if spec is not None and spec.pii == "direct":
                out += [c.alias(n) for n, c in _direct_columns(spec, F.col(f"`{name}`"), key).items()]
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


def vault_columns(contract: SourceContract) -> dict[str, str]:
    """Column -> ID type of the direct identifiers (phones, emails) a source writes to the vault; empty when
    the contract sets ``vault: false``."""
    if not contract.vault:
        return {}
    return {c.name: c.id_type for c in contract.columns if c.pii == "direct" and c.id_type}


def vault_identifiers(
    contract: SourceContract, key: str, dt: _dt.date, known: DataFrame | None = None
) -> Transform:
    """A transform of normalised rows (:func:`with_normalized_identifiers`, before
    :func:`protect_direct_pii`) to new rows of ``vault.identifiers``: ``(id_type, id_value, encrypted, source,
    first_dt)``, one per distinct direct identifier, ``id_value`` being the keyed hash silver and
    ``gold.oneid_map`` hold.

    Values are deduplicated before they are hashed and encrypted, and those ``known`` already holds are left
    out, so a batch encrypts each new identifier once and a rerun adds nothing.

    Args:
        contract: the source contract (:func:`vault_columns` says which columns go to the vault).
        key: the deployment's secret: keyed hash and AES key.
        dt: the logical date of the run (``first_dt``).
        known: the vault's current rows (``id_type``, ``id_value``), or None when it is empty.
    """
    columns = vault_columns(contract)

    def transform(rows: DataFrame) -> DataFrame:
        pairs = [
            F.struct(F.lit(t).alias("id_type"), F.col(f"`{c}`").cast("string").alias("value"))
            for c, t in columns.items()
        ]
        if not pairs:
            pairs = [
                F.struct(
                    F.lit(None).cast("string").alias("id_type"), F.lit(None).cast("string").alias("value")
                )
            ]
        values = (
            rows.select(F.explode(F.array(*pairs)).alias("_p"))
            .select("_p.id_type", "_p.value")
            .where(F.col("value").isNotNull())
            .distinct()
            .withColumn("id_value", build_keyed_hash(F.col("value"), key))
        )
        if known is not None:
            values = values.join(known.select("id_type", "id_value"), ["id_type", "id_value"], "left_anti")
        return values.select(
            "id_type",
            "id_value",
            build_encrypted(F.col("value"), key).alias("encrypted"),
            F.lit(contract.name).alias("source"),
            F.lit(dt).alias("first_dt"),
        )

    return transform
