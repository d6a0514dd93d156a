"""Landing folders: find the files of one source and date, and check each file before the engine reads it.

The check is one streaming pass per file on the machine running the job: it computes the SHA-256 (the
batch id is derived from it, so re-ingesting the same files is recognised), reads the CSV header, sniffs the
declared format, and finds lines that are not valid UTF-8. Sail's text reader fails a whole file on one
invalid byte, so such lines are cut out here, into a sanitised copy, and handed to quarantine with their
line number; nothing is dropped silently.

What the engine cannot read as landed is normalised into a copy in the run's staging folder, checked on the
driver first: ``.bz2`` files are decompressed; CSV records with line breaks inside quoted fields are joined
into one line (the breaks kept as :data:`LINE_BREAK`, restored by the reader), so the balance counts
records; a JSON document (pretty-printed, concatenated objects, or an array of objects) becomes JSON lines;
Parquet is decoded once (a corrupt body is refused by name) and timestamps in nanoseconds are written in
microseconds, which every engine reads. Files beside the matching ones that are not the source's, and date
folders whose name means this date but is not ``dt=YYYY-MM-DD``, are reported (:func:`unmatched_files`,
:func:`misnamed_folders`), never skipped without a word.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import datetime as _dt
import fnmatch
import gzip
import hashlib
import io
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from schemas import WHITESPACE, SourceContract

EXTENSIONS = {
    "csv": (".csv", ".csv.gz", ".tsv", ".tsv.gz"),
    "jsonl": (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson"),
    "parquet": (".parquet",),
}
CHUNK = 1 << 20
COMPRESSED = (".gz", ".bz2")
"""Compressed text files: ``.gz`` is read by the engine as it is, ``.bz2`` through a decompressed copy."""
LINE_BREAK = "\ue000"
"""Stands for a line feed inside a quoted CSV field in a joined copy (a private-use character)."""
_JOIN_LIMIT = 1 << 20  # an unclosed quote joins at most this many characters, then the record is malformed
_DATE_FOLDER = re.compile(r"^(?:dt=)?(\d{4})[-_./]?(\d{1,2})[-_./]?(\d{1,2})$", re.IGNORECASE)


class LandingError(ValueError):
    """A landed file cannot be ingested as a whole; the message names the file and the fix."""


@dataclass
class LandedFile:
    """One checked file.

    Attributes:
        path: the file as landed.
        read_path: what the engine reads: ``path``, or a sanitised copy without undecodable lines.
        sha256: checksum of the landed bytes.
        size: size in bytes.
        header: column names of a CSV header or a Parquet schema, lower-cased (None for JSON lines).
        header_line: the CSV header line as written (without a byte-order mark).
        bad_lines: ``(line number, text with undecodable bytes escaped)`` of lines that were cut out.
        joined: whether ``read_path`` joins CSV records that span lines (line feeds as :data:`LINE_BREAK`).
    """

    path: Path
    read_path: Path
    sha256: str
    size: int
    header: list[str] | None = None
    header_line: str | None = None
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    joined: bool = False


def landing_dir(landing_root: str | Path, contract: SourceContract, dt: _dt.date | str) -> Path:
    """The folder holding one date's files of a source: ``<root>/<source>/dt=YYYY-MM-DD``."""
    return Path(landing_root) / contract.landing_folder / f"dt={dt}"


def matches(name: str, contract: SourceContract) -> bool:
    """Whether a file name is one of the source's files: the contract's ``pattern`` (or its ``.gz`` for
    text formats), else an extension of the declared format; case-insensitive."""
    name = name.lower()
    if contract.pattern:
        pattern = contract.pattern.lower()
        text = contract.format != "parquet"
        return fnmatch.fnmatchcase(name, pattern) or (
            text and any(fnmatch.fnmatchcase(name, pattern + z) for z in COMPRESSED)
        )
    extensions = EXTENSIONS[contract.format]
    if contract.format != "parquet":
        extensions += tuple(e + ".bz2" for e in extensions if not e.endswith(".gz"))
    return name.endswith(extensions)


def find_files(folder: Path, contract: SourceContract) -> list[Path]:
    """The files of the contract's pattern or declared format in ``folder`` (recursively), sorted by name.

    Raises:
        LandingError: the folder has files but none that match.
    """
    if not folder.is_dir():
        return []
    candidates = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    wanted = [p for p in candidates if matches(p.name, contract)]
    others = [p.name for p in unmatched_files(folder, contract)]
    if others and not wanted:
        looked_for = (
            f"pattern: {contract.pattern!r}"
            if contract.pattern
            else f"format: {contract.format} ({', '.join(EXTENSIONS[contract.format])})"
        )
        raise LandingError(
            f"{folder}: no {contract.format} files for source {contract.name} (found "
            f"{', '.join(others[:5])}); the contract declares {looked_for}. Rename the files or set "
            f"pattern: (e.g. '*.txt') in the contract of {contract.name}"
        )
    return wanted


def unmatched_files(folder: Path, contract: SourceContract) -> list[Path]:
    """The files in ``folder`` (recursively) that are not the source's by their name, sorted: hidden files
    (``.*``) and markers (``_*``, such as ``_SUCCESS``) left out."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith((".", "_")) and not matches(p.name, contract)
    )


def unmatched_reason(path: Path, contract: SourceContract) -> str:
    """Why a file beside the source's files was not read, and what to do."""
    looked_for = (
        f"pattern: {contract.pattern!r}"
        if contract.pattern
        else f"format: {contract.format} ({', '.join(EXTENSIONS[contract.format])}, or .gz/.bz2 of text)"
    )
    return (
        f"{path}: not read: its name is not a file of source {contract.name} (the contract declares "
        f"{looked_for}); rename it or convert it, or move it out of the landing folder"
    )


def folder_date(name: str) -> _dt.date | None:
    """The date a folder name means (``dt=2026-11-2``, ``dt=20261102``, ``2026-11-02``), or None."""
    m = _DATE_FOLDER.match(name)
    try:
        return _dt.date(int(m[1]), int(m[2]), int(m[3])) if m else None
    except ValueError:
        return None


def misnamed_folders(landing_root: str | Path, contract: SourceContract, dt: _dt.date) -> list[Path]:
    """Folders of the source whose name means ``dt`` but is not ``dt=YYYY-MM-DD``: their files are not
    read, so they are reported."""
    parent = Path(landing_root) / contract.landing_folder
    if not parent.is_dir():
        return []
    wanted = f"dt={dt.isoformat()}"
    return sorted(
        p for p in parent.iterdir() if p.is_dir() and p.name != wanted and folder_date(p.name) == dt
    )


def _open_bytes(path: Path) -> io.BufferedIOBase:
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith(".bz2"):
        return bz2.open(path, "rb")
    return path.open("rb")


def _plain_name(path: Path) -> str:
    name = path.name
    for suffix in COMPRESSED:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _lines(path: Path) -> Iterator[bytes]:
    try:
        with _open_bytes(path) as fh:
            yield from fh
    except (OSError, EOFError, ValueError) as exc:  # truncated or corrupt gzip or bzip2
        raise LandingError(f"{path}: cannot be read ({exc}); re-export or re-transfer the file") from exc


def _undecodable(path: Path, encoding: str = "utf-8") -> bool:
    """Whether any line of the file is not valid in ``encoding`` (fast path: decode whole chunks)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with _open_bytes(path) as fh:
            while chunk := fh.read(CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return True
    except (OSError, EOFError, ValueError) as exc:
        raise LandingError(f"{path}: cannot be read ({exc}); re-export or re-transfer the file") from exc
    return False


def _sanitise(path: Path, staging: Path, encoding: str = "utf-8") -> tuple[Path, list[tuple[int, str]]]:
    """Copy ``path`` as UTF-8 without its undecodable lines (read in ``encoding``); return the copy and the
    lines cut out."""
    staging.mkdir(parents=True, exist_ok=True)
    clean = staging / _plain_name(path)
    bad: list[tuple[int, str]] = []
    with clean.open("wb") as out:
        for number, raw in enumerate(_lines(path), start=1):
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                bad.append((number, raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace")))
                continue
            out.write(raw if encoding == "utf-8" else text.encode("utf-8"))
    return clean, bad


def _first_line(path: Path) -> str:
    for raw in _lines(path):
        return raw.decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r\n")
    return ""


def check_file(path: Path, contract: SourceContract, staging: Path) -> LandedFile:
    """Checksum, sniff and (if needed) sanitise one landed file.

    Args:
        path: the landed file.
        contract: its source contract.
        staging: a scratch folder for sanitised copies.

    Raises:
        LandingError: the file is not in the declared format, or a CSV lacks a required column.
    """
    landed = _check_file(path, contract, staging)
    if landed.read_path.name.startswith(("_", ".")):  # engines skip such names as hidden, even when named
        copy = staging / landed.sha256[:16] / "visible" / f"f{landed.read_path.name}"
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(landed.read_path, copy)
        landed.read_path = copy
    return landed


def _check_file(path: Path, contract: SourceContract, staging: Path) -> LandedFile:
    sha, size = _sha256(path)
    landed = LandedFile(path=path, read_path=path, sha256=sha, size=size)
    if contract.format == "parquet":
        with path.open("rb") as fh:
            head = fh.read(4)
            fh.seek(max(size - 4, 0))
            tail = fh.read(4)
        if head != b"PAR1" or tail != b"PAR1":
            raise LandingError(
                f"{path}: not a Parquet file (no PAR1 magic bytes); the contract of "
                f"{contract.name} declares format: parquet"
            )
        landed.header, landed.read_path = _check_parquet(path, staging / sha[:16])
        _require_columns(path, contract, landed.header)
        return landed
    encoding = contract.encoding
    # The engine reads UTF-8 only: files in another encoding are read through a transcoded copy, and it
    # reads no bzip2.
    if encoding != "utf-8" or path.name.lower().endswith(".bz2") or _undecodable(path, encoding):
        landed.read_path, landed.bad_lines = _sanitise(path, staging / sha[:16], encoding)
    first = _first_line(landed.read_path)
    if contract.format == "jsonl":
        start = first.lstrip()
        if first and not start.startswith(("{", "[")):
            raise LandingError(
                f"{path}: not JSON lines (the first line does not start with '{{'); the "
                f"contract of {contract.name} declares format: jsonl"
            )
        if start.startswith("[") or (start and not _is_json_object(start)):
            landed.read_path = _json_document_to_lines(path, landed.read_path, staging / sha[:16] / "json")
        return landed
    header = split_header(first, contract.delimiter) if first else []
    separator = {WHITESPACE: "whitespace", "\t": "tab", ",": "comma"}.get(contract.delimiter)
    separator = separator or repr(contract.delimiter)
    if not contract.has_header:
        fields = contract.fields or []
        if first.lstrip().startswith(("{", "[")) or (len(header) != len(fields)):
            raise LandingError(
                f"{path}: the first line has {len(header)} {separator}-separated field(s), the contract of "
                f"{contract.name} lists {len(fields)} in fields: (first line {first[:80]!r}); fix "
                "fields: or format_options.delimiter"
            )
        landed.header = [f.lower() for f in fields]
        return _joined(landed, contract, staging / sha[:16] / "joined")
    header = [h.lower() for h in header]
    if first.lstrip().startswith(("{", "[")) or (len(header) == 1 and len(contract.input_fields) > 1):
        raise LandingError(
            f"{path}: not a {separator}-separated file with a header row (first line {first[:80]!r}); "
            f"the contract of {contract.name} declares format: csv with delimiter {separator}; set "
            "format_options.delimiter (or header: false with fields:) to match the file"
        )
    _require_columns(path, contract, header)
    landed.header, landed.header_line = header, first
    return _joined(landed, contract, staging / sha[:16] / "joined")


def _joined(landed: LandedFile, contract: SourceContract, staging: Path) -> LandedFile:
    """The file read through a copy with its multi-line CSV records joined, when it has any (quoting
    does not apply to whitespace-separated files)."""
    if contract.delimiter != WHITESPACE:
        joined = _join_quoted_line_breaks(landed.read_path, staging, contract.delimiter)
        if joined is not None:
            landed.read_path, landed.joined = joined, True
    return landed


def _check_parquet(path: Path, staging: Path) -> tuple[list[str], Path]:
    """The lower-cased column names of a Parquet file and the path the engine reads: the file itself, or a
    copy with nanosecond timestamps in microseconds and zoned ones in UTC. Every row group is decoded once,
    so a corrupt body is refused here rather than failing the engine's read of the whole batch.

    Raises:
        LandingError: the footer or a row group cannot be decoded.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        # Engines read microseconds, and some show a zoned time in its zone: instants go to UTC.
        nanos = [
            i
            for i, f in enumerate(schema)
            if pa.types.is_timestamp(f.type) and (f.type.unit == "ns" or f.type.tz not in (None, "UTC"))
        ]
        target = schema
        for i in nanos:
            zone = "UTC" if schema.field(i).type.tz else None
            unit = "us" if schema.field(i).type.unit == "ns" else schema.field(i).type.unit
            target = target.set(i, schema.field(i).with_type(pa.timestamp(unit, tz=zone)))
        clean = staging / path.name
        writer = None
        if nanos:
            staging.mkdir(parents=True, exist_ok=True)
            writer = pq.ParquetWriter(clean, target)
        try:
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group)
                if writer is not None:
                    writer.write_table(table.cast(target, safe=False))
        finally:
            if writer is not None:
                writer.close()
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LandingError(
            f"{path}: a corrupt Parquet file ({reason}); re-export or re-transfer the file"
        ) from None
    return [n.lower() for n in schema.names], clean if nanos else path


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _json_document_to_lines(path: Path, read_path: Path, staging: Path) -> Path:
    """A JSON document (pretty-printed or concatenated objects, or arrays of objects) as JSON lines, one
    value per line: an array's items are records; a value that is not an object stays a (malformed) line.
    Decimal numbers keep their text. The document is read whole: meant for small files.

    Raises:
        LandingError: the text is not valid JSON (the line and column are named).
    """
    text = b"".join(_lines(read_path)).decode("utf-8", "replace").lstrip("\ufeff")
    decoder = json.JSONDecoder(parse_float=str)
    records: list[object] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            break
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise LandingError(
                f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); fix the file "
                "(format: jsonl reads JSON lines, or a JSON document or array of objects)"
            ) from None
        records += value if isinstance(value, list) else [value]
    staging.mkdir(parents=True, exist_ok=True)
    clean = staging / (_plain_name(path).rsplit(".", 1)[0] + ".jsonl")
    with clean.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return clean


class _Records:
    """The CSV grammar of one delimiter (as ``ingest.rows`` parses a line), checked one line at a time:
    whether a line opens a quoted field it does not close, and whether a line continuing such a field
    closes it (ending the record), leaves it open, or breaks the record."""

    def __init__(self, delimiter: str) -> None:
        d = re.escape(delimiter)
        field = f'"(?:[^"]|"")*"|[^{d}"\\r\\n][^{d}\\r\\n]*|'
        quoted = '(?:[^"]|"")*'
        self.complete = re.compile(f"(?:{field})(?:{d}(?:{field}))*\\r*")
        self.opens = re.compile(f'(?:(?:{field}){d})*"{quoted}')
        self.inside = re.compile(quoted)
        self.closing = re.compile(f'{quoted}"')
        self.tail_complete = re.compile(f"(?:{d}(?:{field}))*\\r*")
        self.tail_opens = re.compile(f'(?:{d}(?:{field}))*{d}"{quoted}')

    def opened(self, line: str) -> bool:
        """Whether the line starts a record that continues on the next line (an odd number of quotes first:
        a quote inside an unquoted field before the opening one is too rare to pay a regex on every line)."""
        return (
            line.count('"') % 2 == 1
            and not self.complete.fullmatch(line)
            and bool(self.opens.fullmatch(line))
        )

    def then(self, line: str) -> str:
        """A line read inside an open quoted field: ``open`` (still inside), ``done`` (the record ends
        here) or ``broken`` (text after a closing quote: not a record)."""
        if self.inside.fullmatch(line):
            return "open"
        rest = line[self.closing.match(line).end() :]  # type: ignore[union-attr]
        if self.tail_complete.fullmatch(rest):
            return "done"
        return "open" if self.tail_opens.fullmatch(rest) else "broken"


def _join_quoted_line_breaks(read_path: Path, staging: Path, delimiter: str) -> Path | None:
    """A copy of a CSV file whose records with line breaks inside quoted fields are joined into one line
    (each line feed written as :data:`LINE_BREAK`), or None when no record spans lines. A quote that is not
    closed into a whole record (by the end of the file, or within :data:`_JOIN_LIMIT` characters) joins
    nothing: its lines stay as they are, one malformed record each, as before."""
    grammar = _Records(delimiter)
    lines = _lines(read_path)
    if not any(
        raw.count(b'"') % 2 and grammar.opened(raw.decode("utf-8", "replace").rstrip("\n")) for raw in lines
    ):
        return None
    staging.mkdir(parents=True, exist_ok=True)
    clean = staging / _plain_name(read_path)
    joins = 0
    with clean.open("w", encoding="utf-8", newline="") as out:
        pending: list[str] = []  # the lines of a record still inside a quoted field
        size = 0

        def settle(final: bool) -> None:
            """Write what ``pending`` holds that can be decided; keep an open record when not final."""
            nonlocal pending, size, joins
            while pending:
                if not grammar.opened(pending[0]):
                    out.write(pending.pop(0) + "\n")
                    continue
                size = len(pending[0])
                for k in range(1, len(pending)):
                    size += len(pending[k]) + 1
                    state = grammar.then(pending[k])
                    if state == "done":
                        out.write(LINE_BREAK.join(pending[: k + 1]) + "\n")
                        joins += 1
                        pending = pending[k + 1 :]
                        break
                    if state == "broken" or size > _JOIN_LIMIT:
                        out.write(pending.pop(0) + "\n")
                        break
                else:
                    if not final:
                        return
                    out.write(pending.pop(0) + "\n")

        for raw in _lines(read_path):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if not pending:
                if grammar.opened(line):
                    pending, size = [line], len(line)
                else:
                    out.write(line + "\n")
                continue
            pending.append(line)
            size += len(line) + 1
            state = grammar.then(line)
            if state == "done":
                out.write(LINE_BREAK.join(pending) + "\n")
                joins += 1
                pending = []
            elif state == "broken" or size > _JOIN_LIMIT:
                settle(final=False)  # the first line stands alone; the others are read again
        settle(final=True)
    if not joins:
        clean.unlink()
        return None
    return clean


def split_header(line: str, delimiter: str) -> list[str]:
    """The trimmed field names of a header row in this dialect (``whitespace``: runs of spaces and tabs)."""
    if delimiter == WHITESPACE:
        return line.split()
    return [h.strip() for h in next(csv.reader([line], delimiter=delimiter))]


def _require_columns(path: Path, contract: SourceContract, header: list[str]) -> None:
    lower = {h.lower() for h in header}
    missing = [
        name if name == field else f"{name} (file field {field!r})"
        for field, name in contract.required_fields.items()
        if field.lower() not in lower
    ]
    if missing:
        raise LandingError(
            f"{path}: required column(s) {', '.join(missing)} missing; the file has "
            f"{', '.join(header)}. Fix the export or the contract of source {contract.name} (map the "
            "column with from:, expr: or default:)"
        )


def schema_drift(contract: SourceContract, header: list[str]) -> dict[str, list[str]]:
    """Fields a file has that the contract does not read, and optional fields it reads that the file
    lacks."""
    declared = [f.lower() for f in [*contract.input_fields, *(contract.fields or [])]]
    return {
        "new_columns": [h for h in header if h.lower() not in declared],
        "missing_optional": [
            f for f in contract.input_fields if f.lower() not in {h.lower() for h in header}
        ],
    }


def json_keys_drift(contract: SourceContract, keys: set[str]) -> dict[str, list[str]]:
    """The same drift report for JSON lines, from the set of keys seen in a file."""
    declared = contract.input_fields
    required = set(contract.required_fields)
    return {
        "new_columns": sorted(keys - set(declared)),
        "missing_optional": [f for f in declared if f not in keys and f not in required],
    }


def describe(files: list[LandedFile]) -> str:
    """A JSON list of the files of a batch (name, size, checksum) for the run log."""
    return json.dumps([{"file": str(f.path), "bytes": f.size, "sha256": f.sha256} for f in files])
