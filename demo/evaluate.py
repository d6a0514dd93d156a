"""Lookalike quality on the demo population's ground truth: seeds drawn from a truth segment (mothers of young
children, young trendsetters, premium skincare), part of each hidden and recovered from the population.
For tests, ``make bench`` and the README figures; the pipeline never reads the truth.

    truth identifiers.parquet -> keyed hash of phones and emails (identity.pii) -> gold.oneid_map (dt)
        -> each person's primary OneID; truth persons.parquet -> segment members as OneIDs
    gold.profile (dt) -> features without the segment's defining tags -> hide-and-recover per seed size
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from audiences.lookalike import Evaluation, combine, evaluate, feature_columns, fit_feature_spec, make_encoder
from identity.pii import build_keyed_hash
from jobs.audiences.context import AudienceContext
from jobs.audiences.lookalikes import tags_and_derived

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

    from cdp.settings import Settings

SEGMENT_DEFINING_TAGS: dict[str, tuple[str, ...]] = {
    # The latent traits each demo segment is drawn from (demo/population.py), as profile tags: they are
    # left out of the model so that hide-and-recover measures lookalike, not the rule that made the segment.
    "seg_mom_baby": ("gender", "tp_gender", "tp_gender_confidence", "age", "age_band", "tp_age_band",
                     "tp_age_band_confidence"),
    "seg_young_trendsetter": ("age", "age_band", "tp_age_band", "tp_age_band_confidence", "city_tier",
                              "tp_city_tier", "city", "province"),
    "seg_premium_skincare": ("income_band", "gender", "tp_gender", "tp_gender_confidence", "age", "age_band",
                             "tp_age_band", "tp_age_band_confidence"),
}  # fmt: skip
KEYED_TYPES = ("phone", "email")
"""ID types the lake holds as keyed hashes (direct PII)."""


@dataclass
class TruthEvaluation:
    """Hide-and-recover on a demo segment, per seed size."""

    segment: str
    population: int
    segment_oneids: int
    excluded: list[str]
    by_seed_size: dict[int, Evaluation]

    def lines(self) -> list[str]:
        """A line on the segment, then each seed size's evaluation."""
        out = [
            f"{self.segment}: {self.segment_oneids:,} OneIDs of {self.population:,} "
            f"({self.segment_oneids / max(self.population, 1):.1%}); excluded {', '.join(self.excluded)}"
        ]
        for evaluation in self.by_seed_size.values():
            out += evaluation.lines()
        return out


def _truth_oneids(ctx: AudienceContext, day: _dt.date) -> pd.DataFrame:
    """Each demo person's primary OneID: the OneID holding most of the person's unshared identifiers.

    Other OneIDs of a person (a lone cookie, an ad-log device never seen with a login) stay in the population
    as non-members: a marketer's known segment is made of identified customers, not of such fragments.
    """
    truth = ctx.spark.read.parquet(str(Path(ctx.settings.truth_root) / "identifiers.parquet"))
    key = ctx.settings.require_pii_key()
    value = F.when(F.col("id_type").isin(*KEYED_TYPES), build_keyed_hash(F.col("id_value"), key)).otherwise(
        F.col("id_value")
    )
    ids = truth.where(~F.col("shared")).select("id_type", value.alias("id_value"), "person_id")
    joined = ctx.oneid_map(day).join(ids, ["id_type", "id_value"])
    votes = joined.groupBy("oneid", "person_id").agg(F.count(F.lit(1)).alias("n")).toPandas()
    # Ties broken by id, so the same lake gives the same segment on every run.
    owner = votes.sort_values(["oneid", "n", "person_id"], ascending=[True, False, True]).drop_duplicates(
        "oneid"
    )
    primary = owner.sort_values(["person_id", "n", "oneid"], ascending=[True, False, True]).drop_duplicates(
        "person_id"
    )
    return primary.assign(oneid=primary["oneid"].astype(str))[["oneid", "person_id"]]


def evaluate_on_truth(
    spark: SparkSession,
    settings: Settings,
    segment: str,
    *,
    seed_sizes: tuple[int, ...] = (100, 1_000, 10_000),
    splits: int = 3,
    draws: int = 1,
    dt: _dt.date | None = None,
    random_state: int = 7,
) -> TruthEvaluation:
    """Lookalike quality on a demo population: seeds drawn from a ground-truth segment, 30 % of each hidden,
    recovered from the rest of the population; the segment's defining tags are excluded.

    Seed sizes larger than the segment allows are skipped. ``draws`` seeds of each size are drawn and their
    figures averaged (with 100 members, which 100 matters more than how they are split).

    Args:
        spark: the session.
        settings: the lake and the demo truth (``settings.truth_root``) it was built from, and its PII key.
        segment: a boolean column of the truth ``persons.parquet`` (``seg_mom_baby``...).
        seed_sizes: seed sizes to evaluate.
        splits: hide-and-recover splits per seed.
        draws: seeds drawn per size.
        dt: the profile date; the latest when omitted.
        random_state: seeds the draws and the splits.

    Returns:
        The evaluation per seed size.

    Raises:
        MissingDataError: no profile or OneID map on or before ``dt``.
    """
    import numpy as np
    import pandas as pd

    ctx = AudienceContext.open(spark, settings)
    profile = ctx.profile(dt)
    persons = pd.read_parquet(Path(settings.truth_root) / "persons.parquet", columns=["person_id", segment])
    owners = _truth_oneids(ctx, profile.dt).merge(persons, on="person_id")
    in_segment = set(owners.loc[owners[segment], "oneid"])
    defining = tags_and_derived(SEGMENT_DEFINING_TAGS.get(segment, ()))
    excluded = [c for c in defining if c in profile.columns]
    kinds = feature_columns(profile.columns, excluded)
    # In OneID order: the engine returns rows in any order, and seeds are drawn by position.
    pdf = profile.frame.select("oneid", *kinds).toPandas().sort_values("oneid", ignore_index=True)
    spec = fit_feature_spec(pdf, kinds, profile.dt)
    x = make_encoder(spec)(pdf)
    members_idx = np.flatnonzero(pdf["oneid"].isin(in_segment).to_numpy())
    rng = np.random.default_rng(random_state)
    results: dict[int, Evaluation] = {}
    for size in seed_sizes:
        if size > len(members_idx):
            continue
        runs = []
        for draw in range(draws):
            chosen = rng.choice(members_idx, size=size, replace=False)
            is_seed = np.zeros(len(pdf), bool)
            is_seed[chosen] = True
            runs.append(evaluate(
                x[chosen], x, is_seed, spec, population=len(pdf), splits=splits, excluded=excluded,
                random_state=random_state + draw, with_lightgbm_alone=True,
            ))  # fmt: skip
        results[size] = combine(runs)
    return TruthEvaluation(segment, len(pdf), len(members_idx), excluded, results)
