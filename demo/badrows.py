"""Deliberately bad rows: contract violations mixed into the landing files.

Bad rows are extra copies of randomly chosen good rows (with a fresh key where the source
has a generated key), each broken in exactly one way, so the good rows stay complete and
nothing derived from the truth depends on them. Kinds:

* ``missing_required`` - a required column is null;
* ``bad_number`` - a numeric column holds an unparseable value such as ``12,5x``;
* ``bad_timestamp`` - the event-time column is impossible (year 2099 or 1900, or
  ``2026-13-45 25:61:00``);
* ``malformed_json`` - a JSON line is truncated (JSON-lines sources only).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from demo.contracts import Contract

KINDS: tuple[str, ...] = ("missing_required", "bad_number", "bad_timestamp", "malformed_json")
MALFORMED = "__malformed"
"""Helper column marking rows whose JSON line is to be truncated."""
BAD_NUMBERS: tuple[str, ...] = ("12,5x", "1.2.3", "abc")
BAD_TIMES = (np.datetime64("2099-12-31T23:59:59", "s"), np.datetime64("1900-01-01T00:00:00", "s"))

Rekey = Callable[[pa.Table, np.random.Generator], pa.Table]
"""Gives copied rows fresh key values."""


def applicable_kinds(contract: Contract) -> tuple[str, ...]:
    """The kinds of bad rows a source can carry."""
    usable = {
        "missing_required": True,
        "bad_number": not contract.parquet and any(c.numeric for c in contract.columns),
        "bad_timestamp": True,
        "malformed_json": contract.jsonl,
    }
    return tuple(kind for kind in KINDS if usable[kind])


class BadRowInjector:
    """Adds bad rows to batches at a fixed rate and counts them per source and kind."""

    def __init__(self, rate: float) -> None:
        """Create an injector.

        Args:
            rate: Expected bad rows per good row (0 disables them).
        """
        self.rate = rate
        self.counts: dict[str, dict[str, int]] = {}

    def register(self, contract: Contract) -> None:
        """Start counting for a source (all its kinds at zero)."""
        self.counts.setdefault(contract.name, {kind: 0 for kind in applicable_kinds(contract)})

    def inject(
        self, table: pa.Table, contract: Contract, rng: np.random.Generator, rekey: Rekey | None
    ) -> pa.Table:
        """Return ``table`` with bad rows inserted right after the rows they were copied from.

        Args:
            table: Good rows (text columns for CSV/JSON sources, typed for Parquet).
            contract: The source contract.
            rng: Random generator for this batch.
            rekey: Optional function giving the copies fresh keys.

        Returns:
            The rows, plus a boolean ``__malformed`` column for JSON-lines sources.
        """
        self.register(contract)
        n = table.num_rows
        k = int(rng.binomial(n, self.rate)) if self.rate > 0 and n else 0
        source = np.sort(rng.integers(0, n, k)) if k else np.zeros(0, np.int64)
        copies = table.take(pa.array(source))
        if rekey is not None and k:
            copies = rekey(copies, rng)
        kinds = applicable_kinds(contract)
        kind = rng.integers(0, len(kinds), k)
        for i, name in enumerate(kinds):
            self.counts[contract.name][name] += int((kind == i).sum())
        copies = self._break(
            copies, contract, rng, np.array(kinds, dtype=object)[kind] if k else np.zeros(0, object)
        )
        if contract.jsonl:
            table = table.append_column(MALFORMED, pa.array(np.zeros(n, bool)))
            copies = copies.append_column(
                MALFORMED, pa.array(np.asarray(kind == kinds.index("malformed_json")))
            )
        if not k:
            return table
        order = np.argsort(np.concatenate([2 * np.arange(n), 2 * source + 1]), kind="stable")
        return pa.concat_tables([table, copies]).take(pa.array(order))

    @staticmethod
    def _break(copies: pa.Table, contract: Contract, rng: np.random.Generator, kind: np.ndarray) -> pa.Table:
        """Apply each row's kind of damage to the copied rows."""
        k = copies.num_rows
        columns = {name: copies[name] for name in copies.column_names}
        required = [c.name for c in contract.columns if c.required]
        which = rng.integers(0, len(required), k)
        for i, name in enumerate(required):
            hit = pa.array((kind == "missing_required") & (which == i))
            columns[name] = pc.if_else(hit, pa.scalar(None, columns[name].type), columns[name])
        numeric = [c.name for c in contract.columns if c.numeric]
        if numeric and not contract.parquet:
            which = rng.integers(0, len(numeric), k)
            bad = pa.array(
                np.array(BAD_NUMBERS, dtype=object)[rng.integers(0, len(BAD_NUMBERS), k)], pa.string()
            )
            for i, name in enumerate(numeric):
                columns[name] = pc.if_else(
                    pa.array((kind == "bad_number") & (which == i)), bad, columns[name]
                )
        time_col = contract.event_time
        hit = pa.array(kind == "bad_timestamp")
        style = rng.integers(0, 3, k)
        current = columns[time_col]
        if contract.parquet:
            bad = pa.array(np.where(style % 2 == 0, BAD_TIMES[0], BAD_TIMES[1])).cast(current.type)
        elif contract.column(time_col).type == "date":
            bad = pc.if_else(
                pa.array(style == 2),
                pa.scalar("2026-13-45"),
                pc.binary_join_element_wise(
                    pa.array(np.where(style == 0, "2099", "1900"), pa.string()),
                    pc.utf8_slice_codeunits(current, 4),
                    "",
                ),
            )
        else:
            bad = pc.if_else(
                pa.array(style == 2),
                pa.scalar("2026-13-45 25:61:00"),
                pc.binary_join_element_wise(
                    pa.array(np.where(style == 0, "2099", "1900"), pa.string()),
                    pc.utf8_slice_codeunits(current, 4),
                    "",
                ),
            )
        columns[time_col] = pc.if_else(hit, bad, current)
        return pa.table(columns)
