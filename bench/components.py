"""Benchmark of the OneID connected-components core: the Spark implementation against scipy and networkx
on the same edge list, and a generator of identity-like graphs to run it on. Figures, not pass/fail."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

from cdp.run import parquet_checkpoint
from identity.components import connected_components

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

HUB_SHARE = 0.02
"""Hub vertices (a shared device, a family phone, a store's wifi) as a share of all identifier vertices."""


def random_identity_graph(n_persons: int, seed: int) -> pd.DataFrame:
    """An identity-like graph: each person has 2 to 6 identifiers linked as a small random tree, and hub
    vertices (about 2% of identifiers) each link one identifier of 2 to 4 random persons.

    Vertex ids are a random permutation of ``0..V-1``, so that ids say nothing about the structure.

    Args:
        n_persons: how many persons to generate.
        seed: the random seed; the same seed gives the same graph.

    Returns:
        ``(src int64, dst int64)``, one row per edge.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 7, n_persons)
    n_ids = int(sizes.sum())
    starts = np.cumsum(sizes) - sizes  # each person's first identifier
    first = np.repeat(starts, sizes)  # for each identifier, its person's first identifier
    local = np.arange(n_ids) - first
    child = np.flatnonzero(local > 0)
    # A random earlier identifier of the same person as parent makes every person a random tree.
    tree_parent = first[child] + np.floor(rng.random(len(child)) * local[child]).astype(np.int64)

    n_hubs = max(1, round(HUB_SHARE * n_ids))
    links = rng.integers(2, 5, n_hubs)
    hub = n_ids + np.repeat(np.arange(n_hubs), links)
    person = rng.integers(0, n_persons, len(hub))
    member = starts[person] + np.floor(rng.random(len(hub)) * sizes[person]).astype(np.int64)

    relabel = rng.permutation(n_ids + n_hubs).astype(np.int64)
    src = relabel[np.concatenate([child, hub])]
    dst = relabel[np.concatenate([tree_parent, member])]
    return pd.DataFrame({"src": src, "dst": dst})


def _scipy_labels(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and their min-vertex component labels, from scipy's connected components."""
    vertices, index = np.unique(np.concatenate([src, dst]), return_inverse=True)
    n = len(vertices)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (index[: len(src)], index[len(src) :])), (n, n))
    _, labels = scipy_components(graph.tocsr(), directed=False)
    smallest = np.full(labels.max() + 1, np.iinfo(np.int64).max)
    np.minimum.at(smallest, labels, vertices)
    return vertices, smallest[labels]


def bench_components(
    spark: SparkSession, edges_pdf: pd.DataFrame, scratch: Path, *, with_networkx: bool = True
) -> dict[str, object]:
    """Time connected components on one edge list with Spark (this package), scipy and networkx.

    Spark is timed from reading the edges as Parquet to writing the ``(vertex, component)`` labels as
    Parquet; scipy from the edge arrays to the same min-vertex labels; networkx from building the graph to
    listing its components. Outside the timings, the Spark labels are checked against scipy's and the
    component counts against networkx's.

    Args:
        spark: the session to run on.
        edges_pdf: ``(src, dst)`` integer edges.
        scratch: an empty folder for the edges, checkpoints and results.
        with_networkx: also time networkx (slow and memory-hungry on millions of edges).

    Returns:
        Edge, vertex and component counts, seconds per implementation, Spark rounds, the ratios of Spark's
        time to the others', and whether all three agree.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    edges_path = scratch / "edges"
    edges_path.mkdir(exist_ok=True)
    edges_pdf[["src", "dst"]].astype("int64").to_parquet(edges_path / "part-0.parquet", index=False)
    src, dst = edges_pdf["src"].to_numpy(np.int64), edges_pdf["dst"].to_numpy(np.int64)

    started = time.perf_counter()
    labels, rounds = connected_components(
        spark.read.parquet(str(edges_path)), parquet_checkpoint(spark, scratch / "checkpoints")
    )
    labels.write.mode("overwrite").parquet(str(scratch / "components"))
    spark_seconds = time.perf_counter() - started

    started = time.perf_counter()
    vertices, expected = _scipy_labels(src, dst)
    scipy_seconds = time.perf_counter() - started

    networkx_seconds = None
    if with_networkx:
        started = time.perf_counter()
        graph = nx.Graph()
        graph.add_edges_from(zip(src.tolist(), dst.tolist(), strict=True))
        networkx_components = sum(1 for _ in nx.connected_components(graph))
        networkx_seconds = time.perf_counter() - started
        del graph

    got = pd.read_parquet(scratch / "components").sort_values("vertex")
    agrees = bool(
        len(got) == len(vertices)
        and np.array_equal(got["vertex"].to_numpy(), vertices)
        and np.array_equal(got["component"].to_numpy(), expected)
    )
    n_components = len(np.unique(expected))
    return {
        "edges": len(edges_pdf),
        "vertices": len(vertices),
        "components": n_components,
        "spark_seconds": round(spark_seconds, 3),
        "spark_rounds": rounds,
        "scipy_seconds": round(scipy_seconds, 3),
        "networkx_seconds": None if networkx_seconds is None else round(networkx_seconds, 3),
        "spark_over_scipy": round(spark_seconds / scipy_seconds, 1),
        "spark_over_networkx": None
        if networkx_seconds is None
        else round(spark_seconds / networkx_seconds, 2),
        "agrees": agrees and (networkx_seconds is None or networkx_components == n_components),
    }
