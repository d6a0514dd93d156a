"""Creator rankings on the demo truth: does the match put the creators whose audience truly leans to a
segment first, and does the potential model find the creators that truly grow fastest next month?
For tests and ``make bench``; the pipeline never reads the truth.

    truth persons.parquet (segment) + identifiers.parquet -> gold.oneid_map -> the segment's OneIDs
        -> jobs.creators.match_target -> precision@n of the truly leaning creators (demo.reference),
           against ranking by followers and by engaged audience size
    truth creator_followers.parquet -> growth over the 30 days after dt
        -> gold.creator_potential -> precision@k against "current followers" and "last 30 days growth"
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from pyspark.sql import functions as F

from cdp.lake import Lake
from creators import precision_at_k, top_k
from demo import reference as ref
from identity.pii import build_keyed_hash
from jobs import creators as creator_jobs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from cdp.settings import Settings

SEGMENTS = {"young": "seg_young_trendsetter", "premium": "seg_premium_skincare", "mom": "seg_mom_baby"}
KEYED_TYPES = ("phone", "email")


def segment_oneids(spark: SparkSession, settings: Settings, segment: str, dt: _dt.date) -> DataFrame:
    """Every OneID reached by an unshared identifier of a person of the truth segment (``young``,
    ``premium``, ``mom``), on the OneID map of ``dt``."""
    truth = Path(settings.truth_root)
    persons = pd.read_parquet(truth / "persons.parquet", columns=["person_id", SEGMENTS[segment]])
    members = spark.createDataFrame(
        persons.loc[persons[SEGMENTS[segment]], ["person_id"]].astype({"person_id": "int64"})
    )
    ids = spark.read.parquet(str(truth / "identifiers.parquet")).where(~F.col("shared"))
    key = settings.require_pii_key()
    value = F.when(F.col("id_type").isin(*KEYED_TYPES), build_keyed_hash(F.col("id_value"), key)).otherwise(
        F.col("id_value")
    )
    ids = ids.select("id_type", value.alias("id_value"), F.col("person_id").cast("long").alias("person_id"))
    lake = Lake.from_settings(spark, settings)
    oneid_map = lake.read_dt("gold.oneid_map", lake.latest_dt("gold.oneid_map", on_or_before=dt))
    return (
        oneid_map.select("id_type", "id_value", F.col("oneid").cast("string").alias("oneid"))
        .join(ids.join(members, "person_id"), ["id_type", "id_value"])
        .select("oneid")
        .distinct()
    )


@dataclass
class MatchOnTruth:
    """Precision@n of the creators truly leaning to a segment (n of them), per ranking."""

    segment: str
    leaning: list[str]
    precision: dict[str, float]
    ranking: list[str]

    def lines(self) -> list[str]:
        p = self.precision
        return [
            f"match {self.segment}: precision@{len(self.leaning)} of the truly leaning creators = "
            f"{p['match']:.2f} (by followers {p['followers']:.2f}, by engaged audience {p['engaged']:.2f})"
        ]


def match_on_truth(spark: SparkSession, settings: Settings, segment: str, dt: _dt.date) -> MatchOnTruth:
    """Rank creators for the truth segment's OneIDs and score the ranking against the leaning creators."""
    target = segment_oneids(spark, settings, segment, dt)
    _, ranked, _ = creator_jobs.match_target(spark, settings, target, dt=dt)
    leaning = set(ref.CREATOR_IDS[ref.LATENT_SEGMENTS.index(segment) == ref.CREATOR_SEGMENT].tolist())
    ids = [m.creator_id for m in ranked]
    truth = [1.0 if c in leaning else 0.0 for c in ids]
    n = len(leaning)
    followers = [float(m.followers or 0) for m in ranked]
    engaged = [float(m.engaged) for m in ranked]
    order = [float(len(ids) - i) for i in range(len(ids))]
    precision = {
        "match": precision_at_k(truth, order, n),
        "followers": precision_at_k(truth, followers, n),
        "engaged": precision_at_k(truth, engaged, n),
    }
    return MatchOnTruth(segment, sorted(leaning), precision, ids)


@dataclass
class PotentialOnTruth:
    """Precision@k of the true top growers over the 30 days after dt, per ranking."""

    k: int
    precision: dict[str, float]

    def lines(self) -> list[str]:
        p = self.precision
        return [
            f"potential: precision@{self.k} of the true top growers of the next 30 days = "
            f"{p['model']:.2f} (current followers {p['current_followers']:.2f}, "
            f"last 30 days growth {p['growth_last_30d']:.2f})"
        ]


def potential_on_truth(spark: SparkSession, settings: Settings, dt: _dt.date) -> PotentialOnTruth:
    """Score ``gold.creator_potential`` of ``dt`` against the truth's follower growth of the next 30 days."""
    followers = pd.read_parquet(Path(settings.truth_root) / "creator_followers.parquet")
    now = followers[followers["day"] == dt].set_index("creator_id")["followers"]
    later = followers[followers["day"] == dt + _dt.timedelta(days=30)].set_index("creator_id")["followers"]
    growth = later / now - 1
    lake = Lake.from_settings(spark, settings)
    scored = lake.read_dt("gold.creator_potential", dt).toPandas().set_index("creator_id")
    truth = growth.reindex(scored.index).to_numpy()
    k = top_k(len(scored))
    precision = {
        "model": precision_at_k(truth, scored["predicted_growth_30d"], k),
        "current_followers": precision_at_k(truth, scored["followers"], k),
        "growth_last_30d": precision_at_k(truth, scored["growth_30d"], k),
    }
    return PotentialOnTruth(k, precision)


@dataclass
class ContentOnTruth:
    """The live contents of a date against their true final engagement: model vs extrapolation."""

    contents: int
    k: int
    precision: dict[str, float]
    median_ape: dict[str, float]

    def lines(self) -> list[str]:
        p, e = self.precision, self.median_ape
        return [
            f"content signal on {self.contents:,} live contents: precision@{self.k} of the true top contents "
            f"{p['model']:.2f} (extrapolation {p['extrapolation']:.2f}), median error {e['model']:.0%} "
            f"(extrapolation {e['extrapolation']:.0%})"
        ]


def content_on_truth(spark: SparkSession, settings: Settings, dt: _dt.date) -> ContentOnTruth:
    """Score ``gold.creator_content`` of ``dt`` against the truth's final engagement of each live content."""
    import numpy as np

    truth = pd.read_parquet(Path(settings.truth_root) / "creator_contents.parquet").set_index("content_id")
    lake = Lake.from_settings(spark, settings)
    scored = lake.read_dt("gold.creator_content", dt).toPandas().set_index("content_id")
    final = truth["final_engagements"].reindex(scored.index).to_numpy(dtype=float)
    k = top_k(len(scored))
    guesses = {
        "model": scored["predicted_final_engagements"].to_numpy(dtype=float),
        "extrapolation": scored["extrapolated_final_engagements"].to_numpy(dtype=float),
    }
    return ContentOnTruth(
        len(scored),
        k,
        {n: precision_at_k(final, g, k) for n, g in guesses.items()},
        {n: float(np.median(np.abs(g - final) / np.maximum(final, 1))) for n, g in guesses.items()},
    )
