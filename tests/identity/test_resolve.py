"""Stable OneIDs: numbering, survival through merges and splits, the change log, and the scoring of a map
against a truth, on small inline tables compared whole."""

from __future__ import annotations

import pytest

from cdp.testing import assert_df_equal
from identity.evaluate import score, truth_identifiers
from identity.resolve import assign_oneids, number_in_order, oneid_changes

COMPONENTS = "vid long, component long"
RANKED = "vid long, component long, rank int"
MAP = "vid long, oneid long"
CHANGES = "change_type string, old_oneid long, new_oneid long, identifiers long"


def oneids(spark, components, previous=None, base=0, schema=COMPONENTS):
    prev = None if previous is None else spark.createDataFrame(previous, MAP)
    got = assign_oneids(spark.createDataFrame(components, schema), prev, base=base, buckets=3)
    return {r["vid"]: r["oneid"] for r in got.collect()}


def test_number_in_order_is_dense_and_ordered_across_buckets(spark) -> None:
    values = [3, 1000, 7, 42, 999, 500, 501, 2]
    df = spark.createDataFrame([(v,) for v in values], "c long")
    got = number_in_order(df, "c", 10, buckets=4)
    want = spark.createDataFrame([(v, 11 + i) for i, v in enumerate(sorted(values))], "c long, number long")
    assert_df_equal(got, want)


def test_first_run_numbers_components_by_their_oldest_identifier(spark) -> None:
    got = oneids(spark, [(5, 5), (9, 5), (2, 2), (7, 2), (4, 4)])
    assert got == {2: 1, 7: 1, 4: 2, 5: 3, 9: 3}


def test_merge_keeps_the_oldest_oneid(spark) -> None:
    previous = [(1, 10), (2, 10), (3, 11), (4, 12)]
    got = oneids(spark, [(1, 1), (2, 1), (3, 1), (4, 4), (5, 4)], previous, base=12)
    assert got == {1: 10, 2: 10, 3: 10, 4: 12, 5: 12}  # 11 merged into 10; 5 joined 12
    changes = oneid_changes(
        spark.createDataFrame(previous, MAP), spark.createDataFrame(list(got.items()), MAP)
    )
    assert_df_equal(changes, spark.createDataFrame([("merged", 11, 10, 1)], CHANGES))


def test_split_keeps_the_oneid_with_the_oldest_part_and_numbers_the_rest_above_every_issued_id(spark) -> None:
    previous = [(1, 10), (2, 10), (3, 10), (4, 11)]
    # 11 was the largest in the map, but 15 was issued and retired before: new ids start at 16
    got = oneids(spark, [(1, 1), (2, 2), (3, 2), (4, 4)], previous, base=15)
    assert got == {1: 10, 2: 16, 3: 16, 4: 11}
    changes = oneid_changes(
        spark.createDataFrame(previous, MAP), spark.createDataFrame(list(got.items()), MAP)
    )
    assert_df_equal(changes, spark.createDataFrame([("split", 10, 16, 2)], CHANGES))


def test_the_strongest_identifier_anchors_the_oneid_through_a_split(spark) -> None:
    # vid 1 is a tablet (rank 7) seen before the member id (vid 2, rank 0); when the tablet is pruned
    # away, the member keeps the person's OneID and the tablet gets a new one
    previous = [(1, 10), (2, 10), (3, 10)]
    ranked = [
        (
            1,
            1,
            7,
        ),
        (2, 2, 0),
        (3, 2, 3),
    ]
    assert oneids(spark, ranked, previous, base=10, schema=RANKED) == {1: 11, 2: 10, 3: 10}
    unranked = [(v, c) for v, c, _ in ranked]
    assert oneids(spark, unranked, previous, base=10) == {1: 10, 2: 11, 3: 11}


def test_merge_and_split_at_once_and_retirement(spark) -> None:
    # 10 = {1, 2} and 11 = {3, 4}; now {1} alone, {2, 3} together, 4 joins {5}; 12 = {6} disappears
    previous = [(1, 10), (2, 10), (3, 11), (4, 11), (6, 12)]
    current = [(1, 1), (2, 2), (3, 2), (4, 4), (5, 4)]
    got = oneids(spark, current, previous, base=12)
    assert got == {1: 10, 2: 11, 3: 11, 4: 13, 5: 13}
    changes = oneid_changes(
        spark.createDataFrame(previous, MAP), spark.createDataFrame(list(got.items()), MAP)
    )
    want = [("split", 10, 11, 1), ("split", 11, 13, 1), ("retired", 12, None, 1)]
    assert_df_equal(changes, spark.createDataFrame(want, CHANGES))


def test_same_inputs_give_the_same_oneids(spark) -> None:
    previous = [(1, 10), (2, 10), (3, 11)]
    current = [(1, 1), (2, 2), (3, 1), (8, 8), (9, 8)]
    assert oneids(spark, current, previous, base=11) == oneids(spark, current, previous, base=11)


# ---- scoring ----------------------------------------------------------------------------------------------

TRUTH = "id_type string, id_value string, person_id long, shared boolean"
PREDICTED = "id_type string, id_value string, vid long, oneid long"


def test_score_counts_pairs_and_leaves_shared_identifiers_out(spark) -> None:
    truth = spark.createDataFrame(
        [
            ("member_id", "A", 1, False),
            ("oaid", "a1", 1, False),
            ("oaid", "a2", 1, False),
            ("member_id", "B", 2, False),
            ("oaid", "b1", 2, False),
            ("idfa", "tab", 1, True),
            ("idfa", "tab", 2, True),
            ("phone", "+8613812345678", 2, False),
        ],
        TRUTH,
    )
    predicted = spark.createDataFrame(
        [
            ("member_id", "A", 1, 100),
            ("oaid", "a1", 2, 100),
            ("oaid", "a2", 3, 101),  # person 1 split
            ("member_id", "B", 4, 100),  # person 2 over-merged into person 1's OneID
            ("oaid", "b1", 5, 102),
            ("idfa", "tab", 6, 103),  # shared, kept apart
            ("email", "x@y.z", 7, 104),  # not in the truth
        ],
        PREDICTED,
    )
    result = score(predicted, truth_identifiers(truth, "k"))
    # true pairs: (A,a1), (A,a2), (a1,a2), (B,b1) = 4; predicted: (A,a1), (A,B), (a1,B) = 3; correct: 1
    assert (result.true_pairs, result.predicted_pairs, result.correct_pairs) == (4, 3, 1)
    assert result.precision == pytest.approx(1 / 3) and result.recall == pytest.approx(1 / 4)
    assert (result.persons, result.scored_identifiers, result.unknown_identifiers) == (2, 5, 1)
    assert result.shared_identifiers == 1 and result.shared_kept_apart == 1.0
    assert result.over_merged_share == 1.0 and result.split_share == 1.0
