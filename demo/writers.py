"""Landing-file writers: daily folders, parts of at most 500k rows, CSV / JSON lines / Parquet.

Text files are serialised with Arrow compute kernels (no per-row Python) and written
byte-for-byte deterministically: gzip headers carry no timestamp or file name. Compression
and disk writes run on a background thread while the next batch is being simulated.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from demo.badrows import MALFORMED, BadRowInjector, Rekey
from demo.contracts import Contract

MAX_PART_ROWS = 500_000
GZIP_LEVEL = 1
PARQUET_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us"),
    "double": pa.float64(),
    "date": pa.date32(),
    "int": pa.int32(),
    "long": pa.int64(),
}
_TRUNCATE_AT = (17, 41, 83)


def _byte_table(chars: bytes) -> np.ndarray:
    """A 256-entry lookup table flagging the given byte values."""
    table = np.zeros(256, dtype=bool)
    table[list(chars)] = True
    return table


_CSV_SPECIAL = _byte_table(b'",\r\n')
_JSON_SPECIAL = _byte_table(bytes(range(32)) + b'"\\')


def _contains(values: pa.StringArray, special: np.ndarray) -> bool:
    """Whether any value of the array contains one of the flagged bytes (fast buffer scan)."""
    data = values.buffers()[2]
    return data is not None and bool(special[np.frombuffer(data, dtype=np.uint8)].any())


def _csv_field(values: pa.StringArray) -> pa.StringArray:
    """Quote CSV values that contain a comma, quote or line break (nulls stay empty)."""
    if not _contains(values, _CSV_SPECIAL):
        return values
    special = pc.match_substring_regex(values, r'[",\r\n]')
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
    return pc.if_else(special, quoted, values)


def _json_escape(values: pa.StringArray) -> pa.StringArray:
    """Escape backslashes, quotes and control characters for JSON string literals."""
    if not _contains(values, _JSON_SPECIAL):
        return values
    values = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    for code in range(32):
        values = pc.replace_substring(values, chr(code), f"\\u{code:04x}")
    return values


def _contiguous(lines: pa.StringArray) -> pa.Buffer:
    """The concatenation of all values of a string array (zero copy)."""
    if len(lines) == 0:
        return pa.py_buffer(b"")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return lines.buffers()[2][int(offsets[0]) : int(offsets[-1])]


def csv_bytes(table: pa.Table, contract: Contract) -> list[pa.Buffer]:
    """Serialise a text table as CSV: header row, comma separated, empty field = null."""
    header = pa.py_buffer((",".join(contract.names) + "\n").encode())
    if table.num_rows == 0:
        return [header]
    fields = [pc.fill_null(_csv_field(table[name].combine_chunks()), "") for name in contract.names]
    fields[-1] = pc.binary_join_element_wise(fields[-1], "\n", "")
    lines = pc.binary_join_element_wise(*fields, ",")
    return [header, _contiguous(lines)]


def jsonl_bytes(table: pa.Table, contract: Contract) -> list[pa.Buffer]:
    """Serialise a text table as JSON lines (keys in contract order, null for missing values).

    Rows flagged in the ``__malformed`` column are truncated mid-object.
    """
    if table.num_rows == 0:
        return []
    parts: list[pa.Array | str] = []
    for i, name in enumerate(contract.names):
        quoted = pc.binary_join_element_wise('"', _json_escape(table[name].combine_chunks()), '"', "")
        parts += [('{"' if i == 0 else ',"') + name + '":', pc.fill_null(quoted, "null")]
    lines = pc.binary_join_element_wise(*parts, "}\n", "")
    if MALFORMED in table.column_names:
        malformed = table[MALFORMED].combine_chunks()
        cut = np.arange(table.num_rows) % len(_TRUNCATE_AT)
        for i, stop in enumerate(_TRUNCATE_AT):
            hit = pc.and_(malformed, pa.array(cut == i))
            lines = pc.if_else(
                hit, pc.binary_join_element_wise(pc.utf8_slice_codeunits(lines, 0, stop), "\n", ""), lines
            )
    return [_contiguous(lines)]


def _write_bytes(path: Path, data: list[pa.Buffer], gzip: bool) -> None:
    """Write the concatenated buffers to ``path``, optionally gzip-compressed without a timestamp."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if gzip else None
    with open(path, "wb") as handle:
        for buffer in data:
            handle.write(compressor.compress(memoryview(buffer)) if compressor else memoryview(buffer))
        if compressor:
            handle.write(compressor.flush())


def _write_parquet(path: Path, table: pa.Table) -> None:
    """Write a Parquet file deterministically."""
    pq.write_table(table, path, compression="zstd")


class DayWriter:
    """Collects one source's rows for one landing day and writes them in parts."""

    def __init__(self, landing: Landing, contract: Contract, day: date, rekey: Rekey | None) -> None:
        """Create a writer (use :meth:`Landing.open`)."""
        self._landing = landing
        self._contract = contract
        self._day = day
        self._rekey = rekey
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._parts = 0
        self._batches = 0
        self.folder = landing.root / contract.name / f"dt={day.isoformat()}"
        self.folder.mkdir(parents=True, exist_ok=True)

    def add(self, table: pa.Table) -> None:
        """Add good rows (bad rows are mixed in here); writes full parts as they fill up."""
        names = set(table.column_names)
        if names != set(self._contract.names):
            raise ValueError(
                f"{self._contract.name}: columns {sorted(names ^ set(self._contract.names))} "
                "do not match the contract"
            )
        rng = self._landing.batch_rng(self._contract.name, self._day, self._batches)
        self._batches += 1
        table = self._landing.bad_rows.inject(self._conform(table), self._contract, rng, self._rekey)
        self._pending.append(table)
        self._pending_rows += table.num_rows
        while self._pending_rows >= MAX_PART_ROWS:
            combined = pa.concat_tables(self._pending)
            self._emit(combined.slice(0, MAX_PART_ROWS))
            rest = combined.slice(MAX_PART_ROWS)
            self._pending, self._pending_rows = [rest], rest.num_rows

    def close(self) -> None:
        """Write the remaining rows (an empty part if the day has no rows at all)."""
        if self._pending_rows or not self._parts:
            self._emit(pa.concat_tables(self._pending) if self._pending else self._conform(self._empty()))
        self._pending, self._pending_rows = [], 0

    def _conform(self, table: pa.Table) -> pa.Table:
        """Order columns as in the contract and check/cast their types."""
        table = table.select(self._contract.names)
        if self._contract.parquet:
            return table.cast(pa.schema([(c.name, PARQUET_TYPES[c.type]) for c in self._contract.columns]))
        wrong = [f.name for f in table.schema if f.type != pa.string()]
        if wrong:
            raise TypeError(f"{self._contract.name}: text columns expected, got {wrong}")
        return table

    def _empty(self) -> pa.Table:
        """A table with the contract's columns and no rows."""
        if self._contract.parquet:
            return pa.table({c.name: pa.array([], PARQUET_TYPES[c.type]) for c in self._contract.columns})
        return pa.table({name: pa.array([], pa.string()) for name in self._contract.names})

    def _emit(self, table: pa.Table) -> None:
        """Serialise one part and hand it to the background writer."""
        contract = self._contract
        path = self.folder / f"{contract.name}-{self._day.isoformat()}-{self._parts:03d}.{contract.extension}"
        self._parts += 1
        if contract.parquet:
            self._landing.submit(path, table.num_rows, contract.name, lambda: _write_parquet(path, table))
            return
        data = jsonl_bytes(table, contract) if contract.jsonl else csv_bytes(table, contract)
        gzip = contract.extension.endswith(".gz")
        self._landing.submit(path, table.num_rows, contract.name, lambda: _write_bytes(path, data, gzip))


class Landing:
    """The landing folder: opens day writers and tracks written files and rows."""

    def __init__(
        self,
        root: Path,
        contracts: dict[str, Contract],
        bad_rows: BadRowInjector,
        rng_for: Callable[[str, date, int], np.random.Generator],
    ) -> None:
        """Create the landing writer.

        Args:
            root: Landing directory.
            contracts: Source contracts by name.
            bad_rows: Bad-row injector shared by all sources.
            rng_for: Random generator for (source, day, batch number).
        """
        self.root = root
        self.contracts = contracts
        self.bad_rows = bad_rows
        self.batch_rng = rng_for
        self.files: list[Path] = []
        self.rows: dict[str, int] = {name: 0 for name in contracts}
        self._executor = ThreadPoolExecutor(max_workers=1)
        self._futures: list[Future[None]] = []
        for contract in contracts.values():
            bad_rows.register(contract)

    def open(self, source: str, day: date, rekey: Rekey | None = None) -> DayWriter:
        """Start writing ``source`` for landing ``day``."""
        return DayWriter(self, self.contracts[source], day, rekey)

    def write(self, source: str, day: date, table: pa.Table, rekey: Rekey | None = None) -> None:
        """Write ``table`` as ``source``'s complete drop for ``day``."""
        writer = self.open(source, day, rekey)
        writer.add(table)
        writer.close()

    def submit(self, path: Path, rows: int, source: str, job: Callable[[], None]) -> None:
        """Queue a file write; at most two writes are in flight to bound memory."""
        self.files.append(path)
        self.rows[source] += rows
        self._futures.append(self._executor.submit(job))
        while len(self._futures) > 2:
            self._futures.pop(0).result()

    def finish(self) -> None:
        """Wait for all writes and surface any error."""
        while self._futures:
            self._futures.pop(0).result()
        self._executor.shutdown()
