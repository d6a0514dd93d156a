"""Landing folders: find the files of one source and date, and check each file before the engine reads it.

The check is one streaming pass per file on the machine running the job: it computes the SHA-256 (the
batch id is derived from it, so re-ingesting the same files is recognised), reads the CSV header, sniffs the
declared format, and finds lines that are not valid UTF-8. Sail's text reader fails a whole file on one
invalid byte, so such lines are cut out here, into a sanitised copy, and handed to quarantine with their
line number; nothing is dropped silently.
"""

from __future__ import annotations

import codecs
import csv
import datetime as _dt
import fnmatch
import gzip
import hashlib
import io
import json
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
    """

    path: Path
    read_path: Path
    sha256: str
    size: int
    header: list[str] | None = None
    header_line: str | None = None
    bad_lines: list[tuple[int, str]] = field(default_factory=list)


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
        return fnmatch.fnmatchcase(name, pattern) or (text and fnmatch.fnmatchcase(name, pattern + ".gz"))
    return name.endswith(EXTENSIONS[contract.format])


def find_files(folder: Path, contract: SourceContract) -> list[Path]:
    """The files of the contract's pattern or declared format in ``folder`` (recursively), sorted by name.

    Raises:
        LandingError: the folder has files but none that match.
    """
    if not folder.is_dir():
        return []
    candidates = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
    wanted = [p for p in candidates if matches(p.name, contract)]
    others = [p.name for p in candidates if p not in wanted]
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


def _open_bytes(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")


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
    except (OSError, EOFError) as exc:  # truncated or corrupt gzip
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
    except (OSError, EOFError) as exc:
        raise LandingError(f"{path}: cannot be read ({exc}); re-export or re-transfer the file") from exc
    return False


def _sanitise(path: Path, staging: Path, encoding: str = "utf-8") -> tuple[Path, list[tuple[int, str]]]:
    """Copy ``path`` as UTF-8 without its undecodable lines (read in ``encoding``); return the copy and the
    lines cut out."""
    staging.mkdir(parents=True, exist_ok=True)
    clean = staging / (path.name.removesuffix(".gz") if path.name.endswith(".gz") else path.name)
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
        import pyarrow.parquet as pq

        landed.header = [n.lower() for n in pq.read_schema(path).names]
        _require_columns(path, contract, landed.header)
        return landed
    encoding = contract.encoding
    # The engine reads UTF-8 only: files in another encoding are read through a transcoded copy.
    if encoding != "utf-8" or _undecodable(path, encoding):
        landed.read_path, landed.bad_lines = _sanitise(path, staging / sha[:16], encoding)
    first = _first_line(landed.read_path)
    if contract.format == "jsonl":
        if first and not first.lstrip().startswith("{"):
            raise LandingError(
                f"{path}: not JSON lines (the first line does not start with '{{'); the "
                f"contract of {contract.name} declares format: jsonl"
            )
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
        return landed
    header = [h.lower() for h in header]
    if first.lstrip().startswith(("{", "[")) or (len(header) == 1 and len(contract.input_fields) > 1):
        raise LandingError(
            f"{path}: not a {separator}-separated file with a header row (first line {first[:80]!r}); "
            f"the contract of {contract.name} declares format: csv with delimiter {separator}; set "
            "format_options.delimiter (or header: false with fields:) to match the file"
        )
    _require_columns(path, contract, header)
    landed.header, landed.header_line = header, first
    return landed


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
