"""The OneID components core: stable vertex ids for identifiers, and connected components by large-star /
small-star, checked whole on hand-made graphs and against scipy on random ones."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

from cdp.run import parquet_checkpoint
from cdp.testing import assert_df_equal
from identity.components import ComponentsError, assign_vertex_ids, connected_components

EDGES = "src long, dst long"
LABELS = "vertex long, component long"
IDS = "id_type string, id_value string"
VIDS = "id_type string, id_value string, vid long"


@pytest.fixture()
def checkpoint(spark, tmp_path):
    return parquet_checkpoint(spark, tmp_path / "scratch")


def components(spark, checkpoint, pairs, **kwargs):
    return connected_components(spark.createDataFrame(pairs, EDGES), checkpoint, **kwargs)


def test_chain_given_in_mixed_directions(spark, checkpoint) -> None:
    got, rounds = components(spark, checkpoint, [(4, 3), (2, 3), (1, 2)])
    assert_df_equal(got, spark.createDataFrame([(1, 1), (2, 1), (3, 1), (4, 1)], LABELS))
    assert 1 <= rounds <= 3


def test_star_whose_centre_is_not_the_minimum(spark, checkpoint) -> None:
    got, _ = components(spark, checkpoint, [(5, 9), (5, 3), (1, 5), (5, 7)])
    assert_df_equal(got, spark.createDataFrame([(v, 1) for v in (1, 3, 5, 7, 9)], LABELS))


def test_two_components_with_duplicates_and_self_loops(spark, checkpoint) -> None:
    pairs = [
        (10, 11),
        (11, 10),
        (10, 11),
        (12, 11),
        (12, 12),
        (20, 30),
        (30, 25),
        (25, 25),
        (40, 40),  # a vertex seen only in a self-loop is its own component
        (None, 50),  # an edge with a missing end says nothing
    ]
    got, _ = components(spark, checkpoint, pairs)
    expected = [(10, 10), (11, 10), (12, 10), (20, 20), (25, 20), (30, 20), (40, 40)]
    assert_df_equal(got, spark.createDataFrame(expected, LABELS))


def test_graph_that_is_already_stars_takes_no_round(spark, checkpoint) -> None:
    got, rounds = components(spark, checkpoint, [(2, 1), (3, 1), (7, 5)])
    assert_df_equal(got, spark.createDataFrame([(1, 1), (2, 1), (3, 1), (5, 5), (7, 5)], LABELS))
    assert rounds == 0


def test_vertex_hanging_from_two_minima_joins_them(spark, checkpoint) -> None:
    # No vertex here is both above and below another, yet 1 and 2 are one component through 3.
    got, rounds = components(spark, checkpoint, [(3, 1), (3, 2), (4, 2)])
    assert_df_equal(got, spark.createDataFrame([(v, 1) for v in (1, 2, 3, 4)], LABELS))
    assert rounds >= 1


def test_no_edges(spark, checkpoint) -> None:
    got, rounds = components(spark, checkpoint, [])
    assert got.collect() == [] and rounds == 0
    assert got.columns == ["vertex", "component"]


@pytest.mark.parametrize("shuffled", [False, True])
def test_long_path_takes_few_rounds(spark, checkpoint, shuffled) -> None:
    # Label propagation would need ~200 rounds on this path; large/small-star needs O(log n).
    order = np.random.default_rng(3).permutation(200) if shuffled else np.arange(200)
    pairs = [(int(a), int(b)) for a, b in itertools.pairwise(order)]
    got, rounds = components(spark, checkpoint, pairs)
    assert_df_equal(got, spark.createDataFrame([(v, 0) for v in range(200)], LABELS))
    assert rounds <= 20


def test_every_round_is_checkpointed(spark, checkpoint) -> None:
    labels: list[str] = []

    def recording(df, label):
        labels.append(label)
        return checkpoint(df, label)

    _, rounds = components(spark, recording, [(i, i + 1) for i in range(30)])
    steps = [f"round_{n}_{step}" for n in range(1, rounds + 1) for step in ("large", "small")]
    assert rounds > 1 and labels == ["edges", *steps]


def test_max_rounds_exceeded_is_an_error(spark, checkpoint) -> None:
    with pytest.raises(ComponentsError, match="did not converge in 1 rounds"):
        components(spark, checkpoint, [(i, i + 1) for i in range(50)], max_rounds=1)


def test_edges_without_src_or_dst_are_refused(spark, checkpoint) -> None:
    with pytest.raises(ValueError, match="missing"):
        connected_components(spark.createDataFrame([(1, 2)], "a long, dst long"), checkpoint)


def _min_vertex_labels(src: np.ndarray, dst: np.ndarray) -> list[tuple[int, int]]:
    """scipy's components of the same edges, relabelled by each component's smallest vertex."""
    vertices, index = np.unique(np.concatenate([src, dst]), return_inverse=True)
    n = len(vertices)
    graph = coo_matrix((np.ones(len(src)), (index[: len(src)], index[len(src) :])), shape=(n, n))
    _, labels = scipy_components(graph, directed=False)
    smallest = np.full(labels.max() + 1, np.iinfo(np.int64).max)
    np.minimum.at(smallest, labels, vertices)
    return sorted(zip(vertices.tolist(), smallest[labels].tolist(), strict=True))


@pytest.mark.parametrize(("seed", "vertices", "edges"), [(1, 3000, 2000), (2, 5000, 4500), (3, 1000, 3000)])
def test_random_graphs_agree_with_scipy(spark, checkpoint, seed, vertices, edges) -> None:
    # Sparse graphs with many small and a few large components, on ids spread over a wide range.
    rng = np.random.default_rng(seed)
    ids = rng.choice(10**12, size=vertices, replace=False)
    src, dst = ids[rng.integers(0, vertices, edges)], ids[rng.integers(0, vertices, edges)]
    got, rounds = components(spark, checkpoint, list(zip(src.tolist(), dst.tolist(), strict=True)))
    assert [tuple(r) for r in got.orderBy("vertex").collect()] == _min_vertex_labels(src, dst)
    assert rounds <= 20


def test_new_identifiers_are_numbered_densely_in_order(spark) -> None:
    ids = spark.createDataFrame(
        [("phone", "b"), ("email", "z"), ("phone", "a"), ("phone", "b"), ("device", None), (None, "x")], IDS
    )
    # With one bucket the numbering is the global (id_type, id_value) order.
    expected = [("email", "z", 1), ("phone", "a", 2), ("phone", "b", 3)]
    assert_df_equal(assign_vertex_ids(ids, buckets=1), spark.createDataFrame(expected, VIDS))


def test_vertex_ids_are_unique_dense_and_deterministic(spark) -> None:
    values = [(t, f"{t}-{i}") for t in ("phone", "email", "device") for i in range(300)]
    first = assign_vertex_ids(spark.createDataFrame(values + values[:50], IDS))
    again = assign_vertex_ids(spark.createDataFrame(list(reversed(values)), IDS))
    rows = sorted(tuple(r) for r in first.collect())
    assert rows == sorted(tuple(r) for r in again.collect())
    assert sorted(r[2] for r in rows) == list(range(1, len(values) + 1))
    assert sorted(r[:2] for r in rows) == sorted(values)


def test_existing_ids_are_kept_and_new_ones_come_above_the_max(spark) -> None:
    existing = spark.createDataFrame(
        [("phone", "a", 10), ("phone", "b", 40), ("email", "retired", 70)], VIDS
    )  # the retired identifier's id stays taken
    values = [("phone", "a"), ("phone", "b")] + [("email", f"e{i}") for i in range(200)]
    got = {r[:2]: r[2] for r in assign_vertex_ids(spark.createDataFrame(values, IDS), existing).collect()}
    assert set(got) == set(values)
    assert (got[("phone", "a")], got[("phone", "b")]) == (10, 40)
    new = sorted(v for k, v in got.items() if k[0] == "email")
    assert new == list(range(71, 271))


def test_empty_existing_map_starts_at_one(spark) -> None:
    existing = spark.createDataFrame([], VIDS)
    got = assign_vertex_ids(spark.createDataFrame([("phone", "a")], IDS), existing, buckets=1)
    assert_df_equal(got, spark.createDataFrame([("phone", "a", 1)], VIDS))
