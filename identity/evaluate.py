"""Quality of identity resolution against a ground truth ``identifier -> person`` (the demo population's
``identifiers.parquet``): pairwise precision, recall and F1 over identifier pairs, and the shares of
over-merged and split persons.

What is scored:

- **Scored identifiers** are those both in the OneID map and in the truth. Truth identifiers the lake
  never saw cannot be resolved and are left out; map identifiers the truth does not know (a typo in an
  email that normalised to another valid address) are counted as ``unknown_identifiers`` only.
- **Shared identifiers** (a family tablet: ``shared`` in the truth, or one value under several persons)
  belong to no single person. They are left out of the pairwise scores; ``shared_kept_apart`` reports the
  share of them whose OneID holds no identifier of any person, i.e. that were correctly not merged.
- **Pairs**: a pair of scored identifiers is *true* when both belong to one person and *predicted* when
  both have one OneID. Precision = true & predicted / predicted, recall = true & predicted / true.
- **Linkable recall**: many pairs of one person never meet in any record (an anonymous web cookie and an
  ad-log device id of a non-member), so no resolver can link them from the data. ``recall_linkable``
  counts only the true pairs that the records connect through that person's own identifiers (connected
  in the evidence graph, pruned links included, restricted to the person's non-shared identifiers): what
  the rules could have linked and what they lost. ``recall`` stays the plain figure over all true pairs.
- **Over-merged persons**: persons with an identifier in a OneID that also holds another person's
  identifier. **Split persons**: persons whose identifiers are in more than one OneID
  (``split_linkable_share``: split although the records connect them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from identity.components import Checkpoint, connected_components
from identity.pii import build_keyed_hash

HASHED_TYPES = ("phone", "email")
"""ID types that silver keeps only as a keyed hash (direct PII)."""


@dataclass(frozen=True)
class Evaluation:
    """Scores of one OneID map against the truth (see the module docstring for definitions)."""

    persons: int
    scored_identifiers: int
    unknown_identifiers: int
    shared_identifiers: int
    shared_kept_apart: float
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    precision: float
    recall: float
    f1: float
    linkable_pairs: int
    recall_linkable: float
    f1_linkable: float
    over_merged_share: float
    split_share: float
    split_linkable_share: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def meets(self, precision: float, recall: float) -> bool:
        """Whether precision and linkable recall reach the targets."""
        return self.precision >= precision and self.recall_linkable >= recall


def truth_identifiers(truth: DataFrame, key: str, hashed_types: tuple[str, ...] = HASHED_TYPES) -> DataFrame:
    """The truth in the lake's terms: phones and emails keyed-hashed like silver, shared values flagged.

    Args:
        truth: ``(id_type, id_value, person_id, shared)`` with canonical values (E.164 phones, lower-case
            emails), one row per identifier and person.
        key: the PII key the lake was built with.
        hashed_types: ID types stored as keyed hashes.

    Returns:
        ``(id_type, id_value, person_id, shared)``, one row per identifier; ``person_id`` is NULL for a
        shared identifier (flagged shared, or listed under several persons).
    """
    value = F.when(F.col("id_type").isin(*hashed_types), build_keyed_hash(F.col("id_value"), key)).otherwise(
        F.col("id_value")
    )
    rows = truth.select(
        "id_type", value.alias("id_value"), "person_id", F.coalesce("shared", F.lit(False)).alias("shared")
    )
    per_id = rows.groupBy("id_type", "id_value").agg(
        F.countDistinct("person_id").alias("persons"),
        F.max(F.col("shared").cast("int")).alias("flag"),
        F.min("person_id").alias("person_id"),
    )
    shared = (F.col("persons") > 1) | (F.col("flag") == 1)
    return per_id.select(
        "id_type",
        "id_value",
        F.when(~shared, F.col("person_id")).alias("person_id"),
        shared.alias("shared"),
    )


def linkable_groups(
    truth: DataFrame, vertices: DataFrame, evidence: DataFrame, checkpoint: Checkpoint
) -> DataFrame:
    """Group each person's identifiers by what the records connect through that person's own identifiers.

    Args:
        truth: ``truth_identifiers`` output.
        vertices: ``(id_type, id_value, vid)`` of the run.
        evidence: every link seen, kept or pruned: ``(src_vid, dst_vid)``.
        checkpoint: cuts lineage in the components rounds.

    Returns:
        ``(vid, link_group long)`` for every non-shared truth identifier in ``vertices``.
    """
    owned = vertices.join(truth.where(~F.col("shared")), on=["id_type", "id_value"]).select(
        "vid", "person_id"
    )
    src = owned.select(F.col("vid").alias("src_vid"), F.col("person_id").alias("p1"))
    dst = owned.select(F.col("vid").alias("dst_vid"), F.col("person_id").alias("p2"))
    same = (
        evidence.select("src_vid", "dst_vid")
        .join(src, on="src_vid")
        .join(dst, on="dst_vid")
        .where(F.col("p1") == F.col("p2"))
        .select(F.col("src_vid").alias("src"), F.col("dst_vid").alias("dst"))
    )
    labels, _ = connected_components(same, checkpoint)
    return owned.join(labels.withColumnRenamed("vertex", "vid"), on="vid", how="left").select(
        "vid", F.coalesce("component", "vid").alias("link_group")
    )


def _pairs(df: DataFrame, keys: list[str]) -> DataFrame:
    """Sum of n(n-1)/2 over the groups of ``keys``, as one row ``pairs``."""
    n = F.col("n")
    return (
        df.groupBy(*keys)
        .agg(F.count(F.lit(1)).alias("n"))
        .agg(F.coalesce(F.sum(n * (n - 1) / 2), F.lit(0)).cast("long").alias("pairs"))
    )


def _one(df: DataFrame) -> int:
    return int(df.collect()[0][0] or 0)


def _ratio(a: float, b: float, empty: float = 1.0) -> float:
    return a / b if b else empty


def score(predicted: DataFrame, truth: DataFrame, groups: DataFrame | None = None) -> Evaluation:
    """Score a OneID map against the truth.

    Args:
        predicted: ``(id_type, id_value, vid, oneid)``, the OneID map of one run.
        truth: ``truth_identifiers`` output.
        groups: ``linkable_groups`` output; without it linkable recall equals recall.

    Returns:
        The scores; only a handful of aggregated rows reach the driver.
    """
    joined = predicted.select("id_type", "id_value", "vid", "oneid").join(
        truth, on=["id_type", "id_value"], how="left"
    )
    scored = joined.where(F.col("person_id").isNotNull())
    if groups is not None:
        scored = scored.join(groups, on="vid", how="left").withColumn(
            "link_group", F.coalesce("link_group", "vid")
        )
    else:
        scored = scored.withColumn("link_group", F.lit(0).cast("long"))

    n_scored = scored.count()
    unknown = _one(joined.where(F.col("shared").isNull()).agg(F.count(F.lit(1))))
    true_pairs = _one(_pairs(scored, ["person_id"]))
    predicted_pairs = _one(_pairs(scored, ["oneid"]))
    correct = _one(_pairs(scored, ["oneid", "person_id"]))
    linkable = _one(_pairs(scored, ["person_id", "link_group"]))
    correct_linkable = _one(_pairs(scored, ["person_id", "link_group", "oneid"]))

    per_oneid = scored.groupBy("oneid").agg(F.countDistinct("person_id").alias("owners"))
    per_person = (
        scored.join(per_oneid, on="oneid")
        .groupBy("person_id")
        .agg(
            F.countDistinct("oneid").alias("oneids"),
            F.max("owners").alias("owners"),
        )
    )
    split_linkable = (
        scored.groupBy("person_id", "link_group")
        .agg(F.countDistinct("oneid").alias("oneids"))
        .where(F.col("oneids") > 1)
        .select("person_id")
        .distinct()
    )
    persons, split, over = per_person.agg(
        F.count(F.lit(1)),
        F.count(F.when(F.col("oneids") > 1, 1)),
        F.count(F.when(F.col("owners") > 1, 1)),
    ).collect()[0]
    n_split_linkable = split_linkable.count()

    # A shared identifier is kept apart when its OneID holds no identifier owned by a person.
    owned_oneids = scored.select("oneid").distinct().withColumn("owned", F.lit(True))
    shared = joined.where(F.col("shared")).join(owned_oneids, on="oneid", how="left")
    n_shared, apart = shared.agg(F.count(F.lit(1)), F.count(F.when(F.col("owned").isNull(), 1))).collect()[0]

    precision = _ratio(correct, predicted_pairs)
    recall = _ratio(correct, true_pairs)
    recall_linkable = _ratio(correct_linkable, linkable)

    def f1(p: float, r: float) -> float:
        return 2 * p * r / (p + r) if p + r else 0.0

    return Evaluation(
        persons=int(persons),
        scored_identifiers=n_scored,
        unknown_identifiers=unknown,
        shared_identifiers=int(n_shared),
        shared_kept_apart=_ratio(apart, n_shared),
        true_pairs=true_pairs,
        predicted_pairs=predicted_pairs,
        correct_pairs=correct,
        precision=precision,
        recall=recall,
        f1=f1(precision, recall),
        linkable_pairs=linkable,
        recall_linkable=recall_linkable,
        f1_linkable=f1(precision, recall_linkable),
        over_merged_share=_ratio(over, persons, 0.0),
        split_share=_ratio(split, persons, 0.0),
        split_linkable_share=_ratio(n_split_linkable, persons, 0.0),
    )
