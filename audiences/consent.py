"""Consent: who opted out, as OneIDs, and the one filter every audience member list, lookalike result and
pack passes through.

The consent source (1P, ``schemas/sources/consent.yaml``) holds opt-in / opt-out records per member id or
phone and purpose. For each identifier and purpose the latest record up to ``dt`` counts; a OneID is opted
out when the latest record of any of its identifiers for a blocking purpose is an opt-out. By default every
purpose blocks (``marketing``, ``ads`` and ``all``): an audience is a marketing use, and a person who said
"no marketing" is not targeted with ads either. An opt-in again later lifts the opt-out for that purpose.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from audiences.sources import identifier_columns
from schemas import SourceContract

Transform = Callable[[DataFrame], DataFrame]
BLOCKING_PURPOSES = ("marketing", "ads", "all")
"""Purposes whose opt-out removes a person from audiences and packs."""
OPT_OUT = "opt_out"
OPT_IN_SPELLINGS = ("optin", "in", "granted", "grant", "yes", "y", "true", "subscribed", "consented")
"""Statuses that grant consent, compared in lower case without separators (``OPT-IN``, ``Opt In``).
Consent fails closed: any other status of a record (``OPT-OUT``, ``withdrawn``, a typo) blocks like an
opt-out, so a spelling nobody foresaw never lets an opted-out person through."""


def build_optouts(
    contract: SourceContract,
    oneid_map: DataFrame,
    dt: _dt.date,
    purposes: Sequence[str] = BLOCKING_PURPOSES,
) -> Transform:
    """A transform of the consent silver table to the opted-out OneIDs at ``dt``.

    Args:
        contract: the consent source contract (its identifier columns say how records reach OneIDs).
        oneid_map: one snapshot of ``gold.oneid_map``.
        dt: records updated before the end of this date count.
        purposes: purposes whose opt-out blocks; ``all`` always blocks.

    Returns:
        A transform giving ``(oneid, purposes, since)``: one row per opted-out OneID, the blocking purposes
        (comma-separated, sorted) and the time of the latest opt-out.
    """
    blocking = sorted({*(p.lower() for p in purposes), "all"})
    ids = identifier_columns(contract)
    end = dt + _dt.timedelta(days=1)

    def transform(consent: DataFrame) -> DataFrame:
        present = {c: t for c, t in ids.items() if c in consent.columns}
        records = consent.where(F.col(f"`{contract.event_time}`") < F.lit(end).cast("timestamp")).select(
            F.lower(F.trim(F.col("purpose"))).alias("purpose"),
            F.when(
                F.lower(F.regexp_replace(F.col("status"), "[^A-Za-z]", "")).isin(*OPT_IN_SPELLINGS), "opt_in"
            )
            .otherwise(OPT_OUT)
            .alias("status"),
            F.col(f"`{contract.event_time}`").alias("updated_at"),
            F.explode(
                F.filter(
                    F.array(
                        *[
                            F.struct(
                                F.lit(t).alias("id_type"), F.col(f"`{c}`").cast("string").alias("id_value")
                            )
                            for c, t in present.items()
                        ]
                    ),
                    lambda p: p["id_value"].isNotNull(),
                )
            ).alias("_id"),
        )
        records = records.select(
            "purpose",
            "status",
            "updated_at",
            F.col("_id.id_type").alias("id_type"),
            F.col("_id.id_value").alias("id_value"),
        )
        latest = Window.partitionBy("id_type", "id_value", "purpose").orderBy(F.col("updated_at").desc())
        out = (
            records.withColumn("_n", F.row_number().over(latest))
            .where((F.col("_n") == 1) & (F.col("status") == OPT_OUT) & F.col("purpose").isin(*blocking))
            .join(
                oneid_map.select("id_type", "id_value", F.col("oneid").cast("string").alias("oneid")),
                ["id_type", "id_value"],
            )
        )
        return out.groupBy("oneid").agg(
            F.array_join(F.array_sort(F.collect_set("purpose")), ",").alias("purposes"),
            F.max("updated_at").alias("since"),
        )

    return transform


def without_optouts(optouts: DataFrame) -> Transform:
    """Remove opted-out OneIDs from any DataFrame with a ``oneid`` column. The one consent filter: member
    lists, estimates, lookalike results and packs all pass through it."""

    def transform(df: DataFrame) -> DataFrame:
        return df.join(optouts.select(F.col("oneid").cast("string").alias("oneid")), "oneid", "left_anti")

    return transform
