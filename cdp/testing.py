"""Helpers for tests of DataFrame transforms, here and in projects that add their own tags or sources."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def assert_df_equal(actual: DataFrame, expected: DataFrame, *, order_by: list[str] | None = None) -> None:
    """Compare two DataFrames whole (column names and rows), ignoring row order.

    Raises:
        AssertionError: with both row lists when they differ.
    """
    assert actual.columns == expected.columns, f"columns differ: {actual.columns} != {expected.columns}"
    key = order_by or actual.columns
    got = [tuple(r) for r in actual.orderBy(*key).collect()]
    want = [tuple(r) for r in expected.orderBy(*key).collect()]
    assert got == want, f"rows differ:\n got  {got}\n want {want}"
