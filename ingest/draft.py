"""Draft a source contract from a sample file, for ``cdp contracts new``: onboard a source by contract alone.

Reads at most a few thousand lines of a landed-looking file, without an engine, and guesses what a contract
needs: the format (CSV with its delimiter, tab- or whitespace-separated text, JSON lines, Parquet; gzip by its
magic bytes), whether the first row is a header, column names, a type per column with its date or timestamp
pattern when not ISO, which columns are never empty, which columns hold identifiers (by name and by value
shape) with their ``id_type`` and PII class, the keys and the event time. :func:`contract_yaml` writes the
draft in the style of ``schemas/sources/*.yaml``, with a ``# guessed:`` comment on every inference and a
``TODO`` where the engineer must decide. Renamed fields become ``from:``, non-ISO dates ``format:``, epoch
numbers an ``expr:``; a canonical entity (``schemas/entities``) gives the columns' types and classes.

    sample file --read_sample--> Sample --draft_contract--> ContractDraft --contract_yaml--> YAML text
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as _dt
import gzip
import io
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.landing import EXTENSIONS
from schemas import WHITESPACE, EntityContract, load_entities, load_sources, spark_type

SAMPLE_LINES = 2000
"""Data lines read from the sample (plus a header line)."""
_MAX_LINE = 1 << 20
_MAJORITY = 0.9  # share of values that must show an identifier's shape, or of lines with the usual width
_TYPE_SHARE = 0.95  # share of values that must parse as a type; the others are bad rows
_NULLS = frozenset({"", "null", "NULL", "\\N", "None", "NaN", "nan", "N/A", "NA"})
_GZIP, _PARQUET, _ZIP = b"\x1f\x8b", b"PAR1", b"PK\x03\x04"


class DraftError(ValueError):
    """The sample cannot be drafted from (missing, empty, unreadable or of an unknown kind); the message
    names the file and what to do."""


@dataclass(frozen=True)
class Sample:
    """What was read from the sample file.

    Attributes:
        path: the sample file.
        format: ``csv``, ``jsonl`` or ``parquet`` (the contract formats).
        gzip: the file is gzip-compressed (by its magic bytes, whatever its name).
        encoding: the text encoding that decoded the sample (None for Parquet).
        delimiter: the field separator of delimited text.
        whitespace: fields are separated by spaces or tabs (``delimiter: whitespace``), without quoting.
        header: the first line is a header.
        names: the file's own column names (header, JSON keys, Parquet schema), else None.
        rows: the data rows, each a list of values (strings for text; Python values for JSON and Parquet).
        file_types: contract types declared by the file itself (Parquet schema), by position.
        guesses: why the format, delimiter and header were guessed as they were.
    """

    path: Path
    format: str
    gzip: bool = False
    encoding: str | None = "utf-8"
    delimiter: str | None = None
    whitespace: bool = False
    header: bool = False
    names: list[str] | None = None
    rows: list[list[Any]] = field(default_factory=list)
    file_types: list[str | None] | None = None
    guesses: dict[str, str] = field(default_factory=dict)


@dataclass
class ColumnDraft:
    """One guessed column.

    Attributes:
        name: the contract column name (lower_snake_case).
        index: the column's position in the sample; None for a column the sample lacks.
        type: the guessed contract type.
        required: never empty in the sample.
        id_type: the guessed identifier type.
        pii: the guessed PII class.
        date_format: a Spark datetime pattern, or ``epoch_seconds``/``epoch_millis``, when not ISO.
        source: the file's own name for the column when it differs (``from:``).
        canonical: the column belongs to a canonical entity, which gives its type, ID type and PII class.
        guesses: why each inference was made (``# guessed:`` comments).
    """

    name: str
    index: int | None = None
    type: str = "string"
    required: bool = False
    id_type: str | None = None
    pii: str = "none"
    date_format: str | None = None
    source: str | None = None
    canonical: bool = False
    guesses: list[str] = field(default_factory=list)


@dataclass
class ContractDraft:
    """A drafted source contract: the sample, the guessed columns, keys and event time.

    Attributes:
        fields: the positional field names of a file without a header.
        unmapped: sample columns a canonical entity has no column for (written as comments).
        guesses: why ``keys`` and ``event_time`` were chosen.
    """

    name: str
    entity: str
    sample: Sample
    columns: list[ColumnDraft]
    keys: list[str]
    event_time: str
    fields: list[str] | None = None
    unmapped: list[ColumnDraft] = field(default_factory=list)
    guesses: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- reading


def _head_lines(path: Path, gz: bool, max_lines: int) -> list[bytes]:
    opener: Callable[..., Any] = gzip.open if gz else open
    lines: list[bytes] = []
    try:
        with opener(path, "rb") as fh:
            for raw in itertools.islice(fh, max_lines + 1):
                lines.append(raw[:_MAX_LINE])
    except (OSError, EOFError) as exc:  # a truncated gzip still yields the lines before the damage
        if not lines:
            raise DraftError(f"{path}: cannot be read ({exc}); re-export or re-transfer the file") from exc
        lines = lines[:-1]
    return lines


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    for encoding in ("utf-8", "gb18030"):
        try:
            decoder = codecs.getincrementaldecoder(encoding)()
            return decoder.decode(data, final=False), encoding
        except UnicodeDecodeError:
            continue
    raise DraftError(f"{path}: text is neither UTF-8 nor GB18030; convert the sample to UTF-8")


def read_sample(path: str | Path, max_lines: int = SAMPLE_LINES) -> Sample:
    """Read the first ``max_lines`` rows of a sample file and guess its format, delimiter and header.

    Args:
        path: a CSV/TSV/whitespace-separated text, JSON lines or Parquet file, gzip-compressed or not.
        max_lines: data rows to read at most.

    Returns:
        The sample with its guessed layout and rows.

    Raises:
        DraftError: the file is missing, empty, unreadable, or a kind no contract format covers.
    """
    path = Path(path)
    if path.is_dir():
        raise DraftError(f"{path}: a folder; give the path of one sample file in it")
    if not path.is_file():
        raise DraftError(f"{path}: no such file; give the path of a sample file")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if not magic:
        raise DraftError(f"{path}: the file is empty; draft from a sample with at least one row")
    if magic == _PARQUET:
        return _read_parquet(path, max_lines)
    if magic == _ZIP:
        raise DraftError(
            f"{path}: a ZIP archive (or an Excel workbook); unpack it or export the sheet as CSV"
        )
    gz = magic.startswith(_GZIP)
    lines = _head_lines(path, gz, max_lines)
    text, encoding = _decode(path, b"".join(lines))
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise DraftError(f"{path}: the file is empty; draft from a sample with at least one row")
    first = text.lstrip()[:1]
    if first == "[":
        raise DraftError(f"{path}: a JSON array; land it as JSON lines, one object per line")
    sample = _read_jsonl(path, text) if first == "{" else _read_delimited(path, text)
    guesses = dict(sample.guesses)
    if gz:
        guesses["gzip"] = "gzip-compressed (magic bytes)"
    if encoding != "utf-8":
        guesses["encoding"] = f"text is {encoding.upper()} (GBK), not UTF-8"
    return dataclasses.replace(sample, gzip=gz, encoding=encoding, guesses=guesses)


def _read_parquet(path: Path, max_lines: int) -> Sample:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        batch = next(pf.iter_batches(batch_size=max_lines), None)
    except Exception as exc:  # pyarrow raises several types for a damaged footer
        raise DraftError(f"{path}: not a readable Parquet file ({exc}); re-export it") from exc
    schema = pf.schema_arrow
    columns = [batch.column(i).to_pylist() for i in range(len(schema))] if batch is not None else []
    rows = [list(r) for r in zip(*columns, strict=True)] if columns else []
    return Sample(
        path=path,
        format="parquet",
        encoding=None,
        header=True,
        names=list(schema.names),
        rows=rows,
        file_types=[_arrow_type(f.type) for f in schema],
        guesses={"format": "Parquet (magic bytes); types from the file's schema"},
    )


def _arrow_type(t: Any) -> str | None:
    import pyarrow as pa

    checks: list[tuple[Callable[[Any], bool], str]] = [
        (pa.types.is_boolean, "boolean"),
        (lambda x: pa.types.is_integer(x) and x.bit_width <= 32 and not pa.types.is_uint32(x), "int"),
        (pa.types.is_integer, "long"),
        (pa.types.is_floating, "double"),
        (pa.types.is_date, "date"),
        (pa.types.is_timestamp, "timestamp"),
        (lambda x: pa.types.is_string(x) or pa.types.is_large_string(x), "string"),
    ]
    for check, name in checks:
        if check(t):
            return name
    if pa.types.is_decimal(t):
        return f"decimal({min(t.precision, 38)},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = _arrow_type(t.value_type)
        return f"array<{inner}>" if inner and "<" not in inner else None
    return None  # structs, maps, binary: the engineer decides


def _read_jsonl(path: Path, text: str) -> Sample:
    records, bad = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(value, dict):
            records.append(value)
        else:
            bad += 1
    if not records or bad > 0.1 * (len(records) + bad):
        raise DraftError(f"{path}: starts like JSON but most lines are not JSON objects; land JSON lines")
    names = list(dict.fromkeys(k for r in records for k in r))
    why = f"JSON lines ({len(records)} objects"
    why += f"; {bad} lines not JSON objects, maybe truncated)" if bad else ")"
    return Sample(
        path=path,
        format="jsonl",
        header=True,
        names=names,
        rows=[[r.get(k) for k in names] for r in records],
        guesses={"format": why},
    )


def _records(text: str, delimiter: str) -> list[list[str]]:
    return [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r]


def _field_count(records: list[list[str]]) -> int:
    """The number of fields of nearly every record (a few ragged lines are bad rows, the last one may be cut
    short by the sample), or 0 when records differ or hold one field."""
    if not records:
        return 0
    counts = Counter(len(r) for r in records)
    width, n = counts.most_common(1)[0]
    return width if width > 1 and n >= _MAJORITY * len(records) else 0


def _guess_delimiter(text: str) -> tuple[str, bool, str]:
    """(delimiter, whitespace-separated, why)."""
    try:
        sniffed = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
    except csv.Error:
        sniffed = None
    order = [sniffed] if sniffed else []
    order += [d for d in (",", ";", "\t", "|") if d != sniffed]
    for d in order:
        if n := _field_count(_records(text, d)):
            how = "csv.Sniffer" if d == sniffed else "the same field count on every line"
            return d, False, f"{_DELIMITER_NAMES[d]}-separated ({how}; {n} fields a line)"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if n := _field_count([ln.split() for ln in lines]):
        single = all(ln.split(" ") == ln.split() for ln in lines)
        how = "single spaces" if single else "runs of spaces or tabs"
        return " ", True, f"whitespace-separated ({how}; {n} fields a line)"
    return ",", False, "one column only, or lines with differing field counts: check the delimiter"


_DELIMITER_NAMES = {",": "comma", ";": "semicolon (;)", "\t": "tab", "|": "pipe (|)", " ": "space"}


def _read_delimited(path: Path, text: str) -> Sample:
    delimiter, runs, why = _guess_delimiter(text)
    if delimiter == " ":
        records = [ln.split() for ln in text.splitlines() if ln.strip()]
    else:
        records = _records(text, delimiter)
    header, header_why = _guess_header(records, text, delimiter)
    width = _field_count(records) or max(len(r) for r in records)
    names = [c.strip() for c in records[0][:width]] + [""] * (width - len(records[0])) if header else None
    rows = records[1:] if header else records
    rows = [[c.strip() for c in r[:width]] + [""] * (width - len(r)) for r in rows]
    return Sample(
        path=path,
        format="csv",
        delimiter=delimiter,
        whitespace=runs,
        header=header,
        names=names,
        rows=rows,
        guesses={"format": why, "header": header_why},
    )


def _guess_header(records: list[list[str]], text: str, delimiter: str) -> tuple[bool, str]:
    first, rest = records[0], records[1:]
    cells = [c.strip() for c in first]
    if any(not c for c in cells):
        return False, "no header (the first row has empty cells)"
    if any(_looks_like_value(c) for c in cells):
        return False, "no header (the first row holds numbers, dates or identifiers)"
    if not rest:
        return True, "header (a single row of names)"
    for i, cell in enumerate(cells):
        below = [r[i].strip() for r in rest if i < len(r) and r[i].strip() not in _NULLS]
        if below and _infer_text_type(below, "")[0] != "string":
            return True, f"header (the first row is text over typed values, e.g. {cell!r})"
    try:
        sniffed = csv.Sniffer().has_header(text[:65536]) if delimiter != " " else False
    except (csv.Error, ValueError):
        sniffed = False
    unseen = all(cells[i] not in {r[i].strip() for r in rest if i < len(r)} for i in range(len(cells)))
    if unseen and len(rest) > 1 and all(_NAME_LIKE.match(c) for c in cells) and any(map(_known_name, cells)):
        return True, "header (first-row names, some familiar, that never recur below)"
    if sniffed:
        return True, "header (csv.Sniffer.has_header)"
    return False, "no header (the first row looks like data)"


_NAME_LIKE = re.compile(r"^[^\W\d][\w .()/-]{0,63}$")


def _known_name(cell: str) -> bool:
    """Whether a cell reads like a familiar column name (phone, 城市, order_id, created_at, ...)."""
    name = column_name(cell, 0)
    if name in _CHINESE_NAMES.values() or name in _FAMILIAR:
        return True
    patterns = (_ID_NAME, _TIME_NAME, _MONEY_NAME, _PERSON_NAME, *(rx for rx, _ in _NAME_ID_TYPES))
    return any(rx.search(name) for rx in patterns)


_FAMILIAR = frozenset(
    [
        "status",
        "type",
        "channel",
        "source",
        "category",
        "brand",
        "model",
        "os",
        "page",
        "sku",
        "qty",
        "quantity",
        "level",
        "score",
        "count",
        "tag",
        "gender",
        "age",
        "country",
        "language",
        "remark",
        "note",
        "comment",
        "title",
        "url",
        "ip",
        "version",
    ]
)


def _looks_like_value(cell: str) -> bool:
    if _NUMBER.match(cell) or _value_id_type([cell], "") or _date_pattern([cell]):
        return True
    return cell.lower() in ("true", "false")


# ---------------------------------------------------------------------------------------- column names

_CHINESE_NAMES = {
    "姓名": "name",
    "名字": "name",
    "客户姓名": "customer_name",
    "会员姓名": "member_name",
    "手机": "phone",
    "手机号": "phone",
    "手机号码": "phone",
    "电话": "phone",
    "联系电话": "phone",
    "电话号码": "phone",
    "邮箱": "email",
    "电子邮箱": "email",
    "邮件": "email",
    "会员号": "member_id",
    "会员id": "member_id",
    "会员编号": "member_id",
    "会员卡号": "member_id",
    "客户号": "customer_id",
    "客户编号": "customer_id",
    "客户id": "customer_id",
    "用户id": "user_id",
    "性别": "gender",
    "生日": "birth_date",
    "出生日期": "birth_date",
    "出生年份": "birth_year",
    "更新日期": "updated_at",
    "客户编码": "customer_id",
    "会员编码": "member_id",
    "年龄": "age",
    "省份": "province",
    "省": "province",
    "城市": "city",
    "市": "city",
    "区县": "district",
    "地址": "address",
    "收货地址": "address",
    "订单号": "order_id",
    "订单编号": "order_id",
    "金额": "amount",
    "订单金额": "amount",
    "实付金额": "paid_amount",
    "数量": "quantity",
    "商品名称": "product_name",
    "时间": "time",
    "日期": "date",
    "下单时间": "order_time",
    "支付时间": "pay_time",
    "注册时间": "register_time",
    "注册日期": "register_date",
    "更新时间": "updated_at",
    "创建时间": "created_at",
    "积分": "points",
    "会员等级": "membership_level",
    "等级": "level",
    "渠道": "channel",
    "门店": "store",
    "身份证": "id_card",
    "身份证号": "id_card",
}
_CHINESE_PARTS = (
    ("手机", "phone"),
    ("电话", "phone"),
    ("邮箱", "email"),
    ("姓名", "name"),
    ("会员", "member_id"),
    ("客户", "customer_id"),
    ("时间", "time"),
    ("日期", "date"),
    ("金额", "amount"),
)


def column_name(header: str, position: int) -> str:
    """A lower_snake_case contract name for a file's column name (``col_<position>`` when none fits).

    Args:
        header: the name in the file (a CSV header cell, a JSON key, a Parquet field); may be Chinese.
        position: the column's 1-based position.
    """
    text = header.strip()
    if text.lower() in _CHINESE_NAMES:
        return _CHINESE_NAMES[text.lower()]
    if not text.isascii():
        return next((name for part, name in _CHINESE_PARTS if part in text), f"col_{position}")
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", text).lower()
    snake = re.sub(r"[^a-z0-9]+", "_", snake).strip("_")
    if not snake:
        return f"col_{position}"
    return snake if snake[0].isalpha() else f"col_{snake}"


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


# ------------------------------------------------------------------------------------------------ types

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INT = re.compile(r"^[+-]?\d+$")
_DECIMAL = re.compile(r"^[+-]?\d*\.(\d+)$")
_ISO_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$")
_INT32 = 2**31
_INT64 = 2**63
_EPOCH_SECONDS = (946_684_800, 4_102_444_800)  # 2000-01-01 .. 2100-01-01
_TIME_NAME = re.compile(r"(time|date|_at$|^ts$|_ts$|^ts_|timestamp|day|dt$|时间|日期)")
_ID_NAME = re.compile(r"(id$|_no$|^no$|number|code|key|uuid|编号|号$)")
_POSITIONAL = re.compile(r"^col_\d+$")
_MONEY_NAME = re.compile(r"(amount|price|fee|cost|total|revenue|gmv|paid|金额|价)")

# (regex, strptime format, Spark pattern (None: ISO, read without a pattern), contract type)
_DATE_PATTERNS: tuple[tuple[re.Pattern[str], str, str | None, str], ...] = tuple(
    (re.compile(rx), py, spark, kind)
    for rx, py, spark, kind in (
        (r"^\d{4}-\d{2}-\d{2}$", "%Y-%m-%d", None, "date"),
        (r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", "%Y-%m-%d %H:%M:%S", "yyyy-MM-dd HH:mm:ss", "timestamp"),
        (
            r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$",
            "%Y-%m-%d %H:%M:%S.%f",
            "yyyy-MM-dd HH:mm:ss.SSS",
            "timestamp",
        ),
        (r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$", "%Y-%m-%d %H:%M", "yyyy-MM-dd HH:mm", "timestamp"),
        (r"^\d{8}$", "%Y%m%d", "yyyyMMdd", "date"),
        (r"^\d{14}$", "%Y%m%d%H%M%S", "yyyyMMddHHmmss", "timestamp"),
        (r"^\d{4}/\d{2}/\d{2}$", "%Y/%m/%d", "yyyy/MM/dd", "date"),
        (r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}$", "%Y/%m/%d %H:%M:%S", "yyyy/MM/dd HH:mm:ss", "timestamp"),
        (r"^\d{4}/\d{1,2}/\d{1,2}$", "%Y/%m/%d", "yyyy/M/d", "date"),
        (r"^\d{4}-\d{1,2}-\d{1,2}$", "%Y-%m-%d", "yyyy-M-d", "date"),
        (r"^\d{2}\.\d{2}\.\d{4}$", "%d.%m.%Y", "dd.MM.yyyy", "date"),
        (r"^\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}$", "%d.%m.%Y %H:%M:%S", "dd.MM.yyyy HH:mm:ss", "timestamp"),
        (r"^\d{2}/\d{2}/\d{4}$", "%d/%m/%Y", "dd/MM/yyyy", "date"),
        (r"^\d{2}/\d{2}/\d{4}$", "%m/%d/%Y", "MM/dd/yyyy", "date"),
        (r"^\d{4}年\d{1,2}月\d{1,2}日$", "%Y年%m月%d日", "yyyy年M月d日", "date"),
    )
)


def _parses_one(value: str, fmt: str) -> bool:
    try:
        return 1900 <= _dt.datetime.strptime(value, fmt).year <= 2100
    except ValueError:
        return False


def _parses(values: Sequence[str], fmt: str) -> bool:
    return all(_parses_one(v, fmt) for v in values)


def _iso_timestamp(value: str) -> bool:
    if not _ISO_TS.match(value):
        return False
    try:
        _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _fitting(values: Sequence[str], test: Callable[[str], Any]) -> list[str] | None:
    """The values passing ``test`` when nearly all do (the rest are bad rows for quarantine), else None."""
    fit = [v for v in values if test(v)]
    return fit if fit and len(fit) >= _TYPE_SHARE * len(values) else None


def _date_pattern(values: Sequence[str]) -> tuple[str, str | None, list[str]] | None:
    """(contract type, Spark pattern or None for ISO, the values that parse) when nearly every value is a
    date or timestamp of one pattern."""
    if fit := _fitting(values, _iso_timestamp):
        return "timestamp", None, fit
    for rx, py, spark, kind in _DATE_PATTERNS:
        if fit := _fitting(values, lambda v, rx=rx, py=py: rx.match(v) and _parses_one(v, py)):
            return kind, spark, fit
    return None


def _misfits(values: Sequence[str], fit: Sequence[str]) -> str:
    """A note on the values that do not parse as the guessed type, with a few examples."""
    if len(fit) == len(values):
        return ""
    good = set(fit)
    bad = [v for v in values if v not in good]
    examples = ", ".join(repr(v) for v in list(dict.fromkeys(bad))[:3])
    return f"; {len(bad)} of {len(values)} values do not parse (bad rows for quarantine), e.g. {examples}"


def _infer_text_type(values: Sequence[str], name: str) -> tuple[str, str | None, str]:
    """(contract type, date pattern, why) for a column's non-empty text values; a type holds when nearly
    every value parses as it (the few others are bad rows, named in the why)."""
    if not values:
        return "string", None, "string (no values in the sample)"
    if fit := _fitting(values, lambda v: v.lower() in ("true", "false")):
        return "boolean", None, "boolean (true/false)" + _misfits(values, fit)
    ints = _fitting(values, _INT.match)
    id_named = bool(_ID_NAME.search(name)) and not _TIME_NAME.search(name)
    if ints and any(len(v.lstrip("+-")) > 1 and v.lstrip("+-").startswith("0") for v in ints):
        return "string", None, "string (digits with leading zeros: a code)"
    if not id_named and (found := _date_pattern(values)):
        kind, pattern, fit = found
        why = f"{kind} {pattern}" if pattern else f"{kind} (ISO)"
        if pattern == "dd/MM/yyyy" and _parses(fit, "%m/%d/%Y"):
            why += ", or MM/dd/yyyy: no day above 12 tells them apart"
        return kind, pattern, why + _misfits(values, fit)
    time_named = bool(_TIME_NAME.search(name) or _POSITIONAL.match(name)) or not name
    if ints and time_named and not id_named:
        lo, hi = _EPOCH_SECONDS
        if fit := _fitting(values, lambda v: _INT.match(v) and len(v) == 10 and lo <= int(v) < hi):
            return "timestamp", "epoch_seconds", "timestamp (10-digit epoch seconds)" + _misfits(values, fit)
        if fit := _fitting(
            values, lambda v: _INT.match(v) and len(v) == 13 and lo * 1000 <= int(v) < hi * 1000
        ):
            return (
                "timestamp",
                "epoch_millis",
                "timestamp (13-digit epoch milliseconds)" + _misfits(values, fit),
            )
    if ints:
        biggest = max(abs(int(v)) for v in ints)
        if biggest < _INT32:
            return "int", None, "int" + _misfits(values, ints)
        if biggest < _INT64:
            return "long", None, "long (beyond int)" + _misfits(values, ints)
        return "string", None, "string (integers beyond long: an identifier?)"
    if nums := _fitting(values, _NUMBER.match):
        scales = {len(m.group(1)) for v in nums if (m := _DECIMAL.match(v))}
        exact = all(_INT.match(v) or _DECIMAL.match(v) for v in nums)
        if exact and scales and max(scales) <= 4 and (_MONEY_NAME.search(name) or len(scales) == 1):
            scale = max(scales)
            digits = max(len(v.lstrip("+-").split(".")[0]) for v in nums)
            precision = min(38, max(18, digits + scale))
            why = f"decimal ({scale} decimal places throughout)"
            return f"decimal({precision},{scale})", None, why + _misfits(values, nums)
        return "double", None, "double" + _misfits(values, nums)
    return "string", None, "string"


# ------------------------------------------------------------------------------------------ identifiers

_PHONE = re.compile(r"^(\+?86)?1[3-9]\d{9}$")
_INTL_PHONE = re.compile(r"^\+[1-9]\d{7,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_IMEI = re.compile(r"^\d{15}$")
_UUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")
_ANDROID_ID = re.compile(r"^[0-9a-fA-F]{16}$")
_OPENID = re.compile(r"^o[A-Za-z0-9_-]{27}$")
_MD5 = re.compile(r"^[0-9a-fA-F]{32}$|^[0-9a-fA-F]{64}$")

# (name regex, id_type), tried in order on the contract name and the file's own name
_NAME_ID_TYPES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rx), t)
    for rx, t in (
        (r"(phone|mobile|msisdn|^tel|_tel$|手机|电话)", "phone"),
        (r"(e_?mail|邮箱|邮件)", "email"),
        (r"imei", "imei"),
        (r"oaid", "oaid"),
        (r"idfa", "idfa"),
        (r"android_?id", "android_id"),
        (r"union_?id", "wechat_unionid"),
        (r"open_?id", "wechat_openid"),
        (r"(cookie|visitor|^vid$|client_?id|^cid$)", "cookie"),
        (r"^(member|customer|cust|user|uid|vip|会员|客户|用户)(_?(id|no|code|number|card))?$", "member_id"),
        (
            r"(member|customer|cust|user|vip|会员|客户|用户).*(id|no|code|number|card|号|编号|卡)$",
            "member_id",
        ),
    )
)
_PERSON_NAME = re.compile(
    r"^((full|real|customer|member|contact|cust|user|receiver)_)?name$|姓名|收货人|联系人"
)
_ID_CARD = re.compile(r"(id_?card|身份证)")
_QUASI = re.compile(r"(birth|生日|出生|address|地址)")
_DEVICE_NAME = re.compile(r"(device|^did$|ad_?id|gaid|oaid|idfa|android|设备)")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _share(values: Sequence[str], test: Callable[[str], bool]) -> float:
    return sum(1 for v in values if test(v)) / len(values) if values else 0.0


def _value_id_type(values: Sequence[str], name: str) -> tuple[str, str] | None:
    """(id_type, why) when most values have an identifier's shape."""

    def compact(v: str) -> str:
        return re.sub(r"[\s()-]", "", v)

    if _share(values, lambda v: bool(_PHONE.match(compact(v)))) >= _MAJORITY:
        return "phone", "Chinese mobile numbers (1[3-9] + 9 digits, optional +86)"
    if _share(values, lambda v: bool(_INTL_PHONE.match(compact(v)))) >= _MAJORITY:
        return "phone", "international phone numbers (+country code)"
    if _share(values, lambda v: bool(_EMAIL.match(v))) >= _MAJORITY:
        return "email", "e-mail addresses"
    if _share(values, lambda v: bool(_IMEI.match(v)) and _luhn(v)) >= _MAJORITY:
        return "imei", "15 digits passing the Luhn check"
    if _share(values, lambda v: bool(_OPENID.match(v))) >= _MAJORITY:
        return "wechat_openid", "'o' + 27 characters"
    # UUIDs and 16-hex strings are also event, order and trace ids: only a device-ish or a positional name
    device_ok = bool(_DEVICE_NAME.search(name)) or not _ID_NAME.search(name)
    if device_ok and _share(values, lambda v: bool(_UUID.match(v))) >= _MAJORITY:
        if all(v == v.upper() for v in values):
            return "idfa", "upper-case UUIDs (iOS IDFA); lower-case would be OAID"
        return "oaid", "lower-case UUIDs (Android OAID); upper-case would be IDFA"
    if device_ok and _share(values, lambda v: bool(_ANDROID_ID.match(v))) >= _MAJORITY:
        return "android_id", "16 hexadecimal characters"
    return None


def _plausible(id_type: str, type_name: str, values: Sequence[str]) -> bool:
    """Whether a column named like an identifier may hold one: text or whole numbers, and for phones and
    emails at least half the values of their shape (mobile_os is not a phone, email_verified no email)."""
    if type_name not in ("string", "int", "long"):
        return False
    if not values or id_type not in ("phone", "email"):
        return True
    shape = _ANY_PHONE if id_type == "phone" else _HAS_AT
    return _share(values, lambda v: bool(shape.match(v)) or bool(_MD5.match(v))) >= 0.5


_ANY_PHONE = re.compile(r"^[+(]?[\d()\s-]{7,20}$")
_HAS_AT = re.compile(r"^[^@\s]+@\S+$")


def _identify(col: ColumnDraft, values: Sequence[str]) -> None:
    """Set the column's id_type and PII class from its names and values."""
    names = [col.name, (col.source or "").lower()]
    by_name = next((t for rx, t in _NAME_ID_TYPES for n in names if n and rx.search(n)), None)
    by_value = _value_id_type(values, col.name) if values else None
    person = any(_PERSON_NAME.search(n) for n in names if n)
    if by_name == "member_id" and person:
        by_name = None  # customer_name is a name, not an id
    if by_name and not _plausible(by_name, col.type, values):
        col.guesses.append(f"not {by_name}, though the name suggests it: the values do not look like one")
        by_name = None
    if by_value and (by_name in (None, "member_id") or by_name == by_value[0]):
        col.id_type = by_value[0]
        col.guesses.append(f"{col.id_type}: values look like {by_value[1]}")
    elif by_name:
        col.id_type = by_name
        note = f"{by_name} by the column name"
        if values and _share(values, lambda v: bool(_MD5.match(v))) >= _MAJORITY:
            note += "; the values look like MD5/SHA-256 digests, not plain identifiers: check"
        col.guesses.append(note)
    if col.id_type:
        col.pii = "direct" if col.id_type in ("phone", "email") else "pseudonymous"
    elif person or _ID_CARD.search(" ".join(names)):
        col.pii = "direct"
        col.guesses.append("a person's name or ID card number by the column name: direct PII")
    elif _QUASI.search(" ".join(names)):
        col.pii = "quasi"
        col.guesses.append("birth date or address by the column name: quasi-identifying")


# ------------------------------------------------------------------------------------------------ draft


def _source_name(path: Path) -> str:
    stem = path.name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json", ".parquet", ".dat", ".log"):
        stem = stem.removesuffix(suffix)
    name = column_name(stem, 0)
    return "new_source" if name == "col_0" else name


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _column(sample: Sample, i: int, name: str) -> ColumnDraft:
    raw = [r[i] if i < len(r) else None for r in sample.rows]
    present = [v for v in raw if v is not None and not (isinstance(v, str) and v.strip() in _NULLS)]
    source = sample.names[i] if sample.names else None
    # landing matches file fields to contract fields case-insensitively: Phone needs no from:
    col = ColumnDraft(name=name, index=i, source=source if source and source.lower() != name else None)
    texts = [_text(v) for v in present]
    declared = sample.file_types[i] if sample.file_types else None
    if sample.file_types is not None and declared != "string":
        col.type = declared or "string"
        why = (
            f"{col.type} from the Parquet schema"
            if declared
            else "string (nested Parquet type: decide)"
            if present
            else "string (no values in the sample)"
        )
    elif present and all(isinstance(v, bool) for v in present):
        col.type, why = "boolean", "boolean (JSON true/false)"
    elif present and all(isinstance(v, dict | list) for v in present):
        col.type, why = (
            "string",
            "string (nested JSON kept as text: pick fields with expr:, or keep)",
        )
    else:
        col.type, col.date_format, why = _infer_text_type(texts, name)
    col.guesses.append(why)
    _identify(col, texts)
    if col.id_type or col.pii == "direct":
        if col.type != "string":
            col.guesses.append(f"read as string: identifiers keep their digits (not {col.type})")
        col.type, col.date_format = "string", None
    col.required = bool(raw) and len(present) == len(raw)
    if col.required:
        col.guesses.append(f"required: never empty in {len(raw):,} rows")
    return col


def _guess_keys(sample: Sample, cols: list[ColumnDraft], event_time: str) -> tuple[list[str], str]:
    n = len(sample.rows)
    cells = {
        c.name: [
            _text(r[c.index]) if c.index < len(r) and r[c.index] is not None else "" for r in sample.rows
        ]
        for c in cols
        if c.index is not None
    }

    def duplicates(names: Sequence[str]) -> int | None:
        """Rows repeating an earlier key, or None when too many rows lack a value; rows lacking one are bad
        rows (quarantined), not evidence against the key."""
        keys = [k for k in zip(*(cells[name] for name in names), strict=True) if all(x.strip() for x in k)]
        return len(keys) - len(set(keys)) if len(keys) >= _MAJORITY * n else None

    def rank(c: ColumnDraft) -> int:
        # a row id (order_id, hit_id) or the member id of a member master before a device or cookie id
        if _ID_NAME.search(c.name) and c.id_type in (None, "member_id"):
            return 0
        return 2 if c.id_type else 1

    # direct identifiers never key silver (it holds them only as keyed hashes); floats and flags never key
    usable = [
        c
        for c in sorted(cols, key=rank)
        if c.name in cells
        and c.pii != "direct"
        and (c.type in ("string", "int", "long") or "decimal" in c.type)
    ]
    names = [c.name for c in usable]
    id_like = [c.name for c in usable if rank(c) == 0]
    times = [
        c.name for c in cols if c.name == event_time and c.type in ("date", "timestamp") and c.name in cells
    ]
    pairs = [*((a, t) for a in names for t in times if a != t), *itertools.combinations(names, 2)]
    # an exact key first; then one with a few repeats, which dedup resolves (the latest row per key wins)
    for candidates, tolerance in (([(c,) for c in names], 0), ([(c,) for c in id_like], 0.05), (pairs, 0)):
        for key in candidates:
            dupes = duplicates(key)
            if dupes is not None and dupes <= tolerance * n:
                how = (
                    "unique" if not dupes else f"unique but for {dupes} repeats (dedup keeps the latest row)"
                )
                return list(key), f"{how} in the {n:,} sample rows"
    for key in pairs:
        dupes = duplicates(key)
        if dupes is not None and dupes <= 0.05 * n:
            return list(key), f"together unique but for {dupes} repeats in the {n:,} sample rows"
    return [
        cols[0].name
    ], "TODO: no column or pair is unique in the sample; name the columns that identify a row"


def _guess_event_time(cols: list[ColumnDraft]) -> tuple[str, str]:
    for kind in ("timestamp", "date"):
        for c in cols:
            if c.type == kind and c.pii != "quasi":
                return c.name, f"the first {kind} column"
    return cols[0].name, "TODO: no date or time column found; event_time must name the column dating a row"


def _fit_entity(
    cols: list[ColumnDraft], entity: EntityContract
) -> tuple[list[ColumnDraft], list[ColumnDraft]]:
    """(columns of the canonical entity, sample columns it has no place for)."""
    canon = {c.name: c for c in entity.columns}
    by_id_type = {c.id_type: c.name for c in entity.columns if c.id_type}
    taken = {c.name for c in cols}
    kept, unmapped = [], []
    for col in cols:
        want = canon.get(col.name)
        if want is None and by_id_type.get(col.id_type) not in (None, *taken):
            # an openid column named openid fills the entity's wechat_openid: same identifier type
            want = canon[by_id_type[col.id_type]]  # type: ignore[index]
            col.guesses.append(f"{want.name} of entity {entity.name}: the same id_type")
            col.source, col.name = col.source or col.name, want.name
            taken.add(want.name)
        if want is None:
            unmapped.append(col)
            continue
        if spark_type(col.type) != want.spark_type:
            fmt = f" with format {col.date_format}" if col.date_format else ""
            col.guesses.append(
                f"TODO: the sample looks like {col.type}{fmt}; entity {entity.name} says {want.type}"
            )
            if want.type not in ("date", "timestamp"):
                col.date_format = None
        col.type, col.id_type, col.pii, col.canonical = want.type, want.id_type, want.pii, True
        kept.append(col)
    have = {c.name for c in kept}
    for want in entity.columns:
        if want.required and want.name not in have and want.type in ("date", "timestamp"):
            # the entity's required time column is most likely the sample's first of that type
            fits = (want.type, "date") if want.type == "timestamp" else (want.type,)
            spare = next((c for c in unmapped if c.type in fits), None)
            if spare is not None:
                unmapped.remove(spare)
                spare.guesses.append(f"{want.name} of entity {entity.name}: the first unmapped {spare.type}")
                spare.source, spare.name, spare.canonical = spare.source or spare.name, want.name, True
                spare.type, spare.id_type, spare.pii = want.type, want.id_type, want.pii
                kept.append(spare)
                have.add(want.name)
        if want.required and want.name not in have:
            kept.append(
                ColumnDraft(
                    name=want.name,
                    type=want.type,
                    source="TODO",
                    canonical=True,
                    guesses=[
                        f"TODO: entity {entity.name} requires {want.name}: name the file's field in from:, "
                        "or give expr:, const: or default:"
                    ],
                )
            )
    return kept, unmapped


def draft_contract(
    path: str | Path,
    *,
    name: str | None = None,
    entity: str | None = None,
    max_lines: int = SAMPLE_LINES,
) -> ContractDraft:
    """Draft a source contract from a sample file.

    Args:
        path: the sample file.
        name: the source name; the file name, lower_snake_case, when omitted.
        entity: the silver table; the source name when omitted (a TODO in the YAML). A canonical entity
            (``schemas/entities``) gives the columns: sample columns it lacks become comments, and the
            required ones the sample lacks become TODOs.
        max_lines: data rows to read at most.

    Returns:
        The draft, every inference with its reason.

    Raises:
        DraftError: the file is missing, empty, unreadable or of an unknown kind, or ``name`` or ``entity``
            is not lower_snake_case.
    """
    for what, value in (("--name", name), ("--entity", entity)):
        if value is not None and not _SNAKE.match(value):
            raise DraftError(f"{what} {value!r} must be lower_snake_case (letters, digits, _)")
    sample = read_sample(path, max_lines)
    source = name or _source_name(sample.path)
    width = len(sample.names) if sample.names else max((len(r) for r in sample.rows), default=0)
    if not width:
        raise DraftError(f"{sample.path}: no columns found; draft from a sample with at least one row")
    if sample.names:
        names = _unique_names([column_name(h, i + 1) for i, h in enumerate(sample.names)])
    else:
        names = [f"col_{i + 1}" for i in range(width)]
    cols = [_column(sample, i, n) for i, n in enumerate(names)]
    unmapped: list[ColumnDraft] = []
    canonical = load_entities().get(entity or source)
    if canonical is not None:
        cols, unmapped = _fit_entity(cols, canonical)
    event_time, et_why = _guess_event_time(cols)
    keys, keys_why = _guess_keys(sample, cols, event_time)
    if canonical is not None and (shared := _entity_keys(canonical.name, {c.name for c in cols})):
        keys, keys_why = shared
    return ContractDraft(
        name=source,
        entity=entity or source,
        sample=sample,
        columns=cols,
        keys=keys,
        event_time=event_time,
        fields=None if sample.names else names,
        unmapped=unmapped,
        guesses={"event_time": et_why, "keys": keys_why},
    )


def _entity_keys(entity: str, columns: set[str]) -> tuple[list[str], str] | None:
    """The keys the packaged sources of a canonical entity use, when this draft has those columns: every
    source of an entity writes the same silver table, merged on its keys."""
    for source in load_sources([]).values():
        if source.entity == entity and set(source.keys) <= columns:
            return list(source.keys), f"the keys of {source.name}, a packaged source of entity {entity}"
    return None


# ------------------------------------------------------------------------------------------------- YAML

_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"})


def _scalar(value: Any) -> str:
    """A YAML flow scalar: plain when unambiguous, else a JSON string (which is valid YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    text = str(value)
    plain = re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", text) and text.lower() not in _YAML_WORDS
    return text if plain else json.dumps(text, ensure_ascii=False)


def _flow(pairs: list[tuple[str, Any]]) -> str:
    return "{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in pairs) + "}"


def _format_lines(draft: ContractDraft) -> list[str]:
    s = draft.sample
    why = "; ".join(v for k, v in s.guesses.items() if k in ("format", "gzip", "encoding"))
    lines = [f"format: {s.format}  # guessed: {why}"]
    options: list[tuple[str, Any]] = []
    if s.format == "csv":
        delimiter = WHITESPACE if s.whitespace else "tab" if s.delimiter == "\t" else s.delimiter
        options = [("delimiter", delimiter), ("header", s.header)]
    if s.encoding not in (None, "utf-8"):
        options.append(("encoding", s.encoding))
    if options:
        lines.append(f"format_options: {_flow(options)}  # guessed: {s.guesses.get('header', 'encoding')}")
    if draft.fields:
        lines.append(f"fields: {_scalar(draft.fields)}  # guessed: named by position")
    wanted = EXTENSIONS.get(s.format, ())
    if not s.path.name.lower().endswith(wanted):
        stem = s.path.name.removesuffix(".gz") if s.path.name.endswith(".gz") else s.path.name
        suffix = Path(stem).suffix
        if suffix:
            lines.append(f'pattern: "*{suffix}"  # guessed: files end like the sample (.gz copies too)')
        else:
            lines.append("# TODO: the sample's name has no ending; set pattern: to match the files as landed")
    return lines


def _epoch_expr(col: ColumnDraft) -> str:
    field_name = col.source or col.name
    unit = "seconds" if col.date_format == "epoch_seconds" else "millis"
    return f"timestamp_{unit}(CAST(`{field_name}` AS BIGINT))"


def _column_line(col: ColumnDraft) -> str:
    pairs: list[tuple[str, Any]] = [("name", col.name)]
    if not col.canonical:
        pairs.append(("type", col.type))
    if col.required:
        pairs.append(("required", True))
    if not col.canonical and col.id_type:
        pairs.append(("id_type", col.id_type))
    if not col.canonical and col.pii != "none":
        pairs.append(("pii", col.pii))
    if col.date_format in ("epoch_seconds", "epoch_millis"):
        pairs.append(("expr", _epoch_expr(col)))
    else:
        if col.source:
            pairs.append(("from", col.source))
        if col.date_format:
            pairs.append(("format", col.date_format))
    notes = ["type, id_type and pii from the entity", *col.guesses] if col.canonical else col.guesses
    return f"  - {_flow(pairs)}  # guessed: {'; '.join(notes)}"


def contract_yaml(draft: ContractDraft) -> str:
    """Write a draft as contract YAML in the style of ``schemas/sources``, every guess commented.

    Args:
        draft: the drafted contract.

    Returns:
        The YAML text, loadable by ``schemas.load_contract`` once saved as ``<name>.yaml``.
    """
    s = draft.sample
    if draft.entity in load_entities():
        entity = (
            f"entity: {draft.entity}  # canonical entity (schemas/entities/{draft.entity}.yaml): it gives "
            "the columns' types, ID types and PII classes"
        )
    else:
        entity = (
            f"entity: {draft.entity}  # TODO: decide the silver table silver.<entity>: a canonical entity "
            f"({', '.join(load_entities())}), which the tags read, or a new one"
        )
    lines = [
        f"# Draft source contract from the sample {s.path.name} ({len(s.rows):,} data rows read), "
        "by `cdp contracts new`.",
        "# Every `guessed:` comment is an inference from the sample: check each one, settle every TODO, then",
        "# put this file in a contract folder (schemas/sources/ or a folder of CDP_CONTRACT_PATH) and run",
        f"# `cdp contracts validate {draft.name}.yaml`.",
        "kind: source",
        f"name: {draft.name}",
        'description: "TODO: what this source holds, who sends it and how often"',
        "party: 1P  # TODO: decide: 1P (our own data), 2P (a partner's first-party data) or 3P (bought)",
        entity,
        *_format_lines(draft),
        f"event_time: {draft.event_time}  # guessed: {draft.guesses['event_time']}",
        f"keys: {_scalar(draft.keys)}  # guessed: {draft.guesses['keys']}",
        "max_bad_share: 0.05",
        "columns:",
        *(_column_line(c) for c in draft.columns),
    ]
    if draft.unmapped:
        lines.append(
            f"  # entity {draft.entity} has no column for these sample columns (map them or drop them):"
        )
        lines += [f"  #{_column_line(c)[1:]}" for c in draft.unmapped]
    return "\n".join(lines) + "\n"
