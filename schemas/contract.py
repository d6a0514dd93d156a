"""Contract models: what a source file or a lake table must look like.

Contracts are data (YAML files next to this module); this module only validates them into typed models.
Loading never needs a SparkSession, and every error names the file, the field and the fix.
"""

from __future__ import annotations

import codecs
import datetime as _dt
import functools
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

ID_TYPES = (
    "phone",
    "email",
    "imei",
    "oaid",
    "idfa",
    "android_id",
    "wechat_openid",
    "wechat_unionid",
    "member_id",
    "cookie",
)
"""Identifier types the pipeline normalises and resolves into OneIDs."""

PII_CLASSES = ("none", "pseudonymous", "quasi", "direct")
"""none: not personal; pseudonymous: device/account IDs; quasi: re-identifying in combination (birth date);
direct: identifies a person on its own (name, phone, email) and never reaches silver in plain text."""

PARTIES = ("1P", "2P", "3P")
FORMATS = ("csv", "jsonl", "parquet")
FORMAT_OPTIONS = {
    "csv": ("delimiter", "header", "dateFormat", "timestampFormat", "encoding"),
    "jsonl": ("dateFormat", "timestampFormat", "encoding"),
    "parquet": ("dateFormat", "timestampFormat"),
}
"""The ``format_options`` each format honours; any other key is refused when the contract loads."""
WHITESPACE = "whitespace"
NULL_VALUES = ("null", "NULL", "Null", "None", "N/A", "n/a", "-")
"""Texts a source column reads as missing unless the contract sets ``null_values``."""
"""``delimiter: whitespace``: fields are separated by runs of spaces and tabs, without quoting."""
ENTITIES_DIR = Path(__file__).resolve().parent / "entities"

_SCALARS = {
    "string": "string",
    "int": "int",
    "long": "bigint",
    "double": "double",
    "float": "float",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}
_DECIMAL = re.compile(r"^decimal\((\d{1,2}),\s*(\d{1,2})\)$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ContractError(ValueError):
    """A contract file is missing, unreadable or invalid. The message names the file and the field."""


def spark_type(type_name: str) -> str:
    """Translate a contract type to a Spark SQL DDL type.

    Args:
        type_name: ``string``, ``int``, ``long``, ``double``, ``float``, ``boolean``, ``date``, ``timestamp``,
            ``decimal(p,s)``, ``array<T>`` or ``map<string,T>``.

    Returns:
        The Spark DDL type, e.g. ``bigint`` for ``long``.

    Raises:
        ValueError: the type is not one of the above.
    """
    t = type_name.strip().lower()
    if t in _SCALARS:
        return _SCALARS[t]
    if m := _DECIMAL.match(t):
        precision, scale = int(m.group(1)), int(m.group(2))
        if not 1 <= precision <= 38 or scale > precision:
            raise ValueError(
                f"decimal({precision},{scale}) needs 1 <= precision <= 38 and scale <= precision"
            )
        return f"decimal({precision},{scale})"
    if t.startswith("array<") and t.endswith(">"):
        return f"array<{spark_type(t[6:-1])}>"
    if t.startswith("map<string,") and t.endswith(">"):
        return f"map<string,{spark_type(t[11:-1])}>"
    raise ValueError(
        f"unknown type {type_name!r}; use one of {', '.join(_SCALARS)}, decimal(p,s), "
        "array<T> or map<string,T>"
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    """One column of a source file or a table."""

    name: str
    type: str
    required: bool = False
    id_type: Literal[ID_TYPES] | None = None  # type: ignore[valid-type]
    pii: Literal[PII_CLASSES] = "none"  # type: ignore[valid-type]
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"column name {v!r} must be lower_snake_case (letters, digits, _)")
        return v

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        spark_type(v)
        return v.strip().lower()

    @model_validator(mode="after")
    def _identifiers_are_strings(self) -> ColumnSpec:
        if self.id_type and self.type not in (None, "string"):
            raise ValueError(
                f"identifier column {self.name!r} (id_type {self.id_type}) must have type string"
            )
        if self.pii == "direct" and self.type not in (None, "string"):
            raise ValueError(f"direct PII column {self.name!r} must have type string")
        return self

    @property
    def spark_type(self) -> str:
        """The Spark DDL type of this column."""
        if self.type is None:
            raise ValueError(f"column {self.name!r} has no type (its entity is not canonical)")
        return spark_type(self.type)


_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_EXPR_NAME = re.compile(r"`([^`]+)`|(?<![\w.])([^\W\d]\w*)(\s*\()?")
_SQL_WORDS = frozenset(
    [
        "and",
        "or",
        "not",
        "null",
        "true",
        "false",
        "case",
        "when",
        "then",
        "else",
        "end",
        "as",
        "is",
        "in",
        "like",
        "rlike",
        "ilike",
        "between",
        "distinct",
        "interval",
        "cast",
        "string",
        "int",
        "bigint",
        "long",
        "double",
        "float",
        "decimal",
        "boolean",
        "div",
        "escape",
    ]
)
Scalar = str | int | float | bool


def expression_fields(expr: str) -> list[str]:
    """The names an SQL expression may read as file fields: backticked names and bare identifiers that are
    neither function calls nor SQL words (a name that is no field of the file reads as NULL)."""
    found: list[str] = []
    for quoted, bare, call in _EXPR_NAME.findall(_STRING_LITERAL.sub("''", expr)):
        name = quoted or ("" if call or bare.lower() in _SQL_WORDS else bare)
        if name and name not in found:
            found.append(name)
    return found


class SourceColumn(ColumnSpec):
    """One column of a source contract and how it is made from the file (all optional: by default the file
    field of the same name, as text). ``from``/``expr``/``const`` choose the value, then ``map`` translates
    it, ``default`` fills it when empty, and ``format``/``timezone`` say how a date or timestamp is read.
    With a canonical entity, ``type``, ``id_type`` and ``pii`` come from the entity when omitted."""

    type: str | None = None  # type: ignore[assignment]
    from_: str | None = Field(default=None, alias="from", description="the file's field name when it differs")
    expr: str | None = Field(default=None, description="a Spark SQL expression over the file's fields")
    const: Scalar | None = Field(default=None, description="a constant value (const: null for none)")
    map: dict[Scalar, Scalar | None] = Field(default_factory=dict, description="value -> canonical value")
    format: str | None = Field(default=None, description="date/timestamp pattern, e.g. yyyyMMdd")
    timezone: str | None = Field(default=None, description="the time zone of the values, converted to UTC")
    default: Scalar | None = Field(default=None, description="the value when the field is empty")

    @model_validator(mode="after")
    def _mapping(self) -> SourceColumn:
        chosen = [k for k in ("from", "expr", "const") if self._given(k)]
        if len(chosen) > 1:
            raise ValueError(f"column {self.name!r} sets {' and '.join(chosen)}; keep one of them")
        if self.expr is not None and not self.expr.strip():
            raise ValueError(f"column {self.name!r} has an empty expr")
        base = spark_type(self.type) if self.type else None
        if self.format is not None and base not in (None, "date", "timestamp"):
            raise ValueError(f"format applies to date and timestamp columns; {self.name!r} is {self.type}")
        if self.timezone is not None:
            if base not in (None, "timestamp"):
                raise ValueError(f"timezone applies to timestamp columns; {self.name!r} is {self.type}")
            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown timezone {self.timezone!r}; use an IANA name such as Asia/Shanghai or UTC"
                ) from None
        return self

    def _given(self, key: str) -> bool:
        field_name = "from_" if key == "from" else key
        return field_name in self.model_fields_set and (
            key == "const" or getattr(self, field_name) is not None
        )

    @property
    def source_field(self) -> str | None:
        """The file field read as it is (``from`` or the column's own name); None for ``expr``/``const``."""
        if self.expr is not None or self._given("const"):
            return None
        return self.from_ or self.name

    @property
    def is_constant(self) -> bool:
        """Whether the column is a constant (``const:``, possibly null)."""
        return self._given("const")

    @property
    def mapped(self) -> bool:
        """Whether the column is anything but the file field of its own name, as text."""
        return self.source_field != self.name or bool(self.map) or self.default is not None


def _check_refs(columns: list[ColumnSpec], refs: dict[str, list[str]]) -> None:
    names = [c.name for c in columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate column names: {', '.join(dupes)}")
    for field_name, wanted in refs.items():
        for ref in wanted:
            if ref not in names:
                raise ValueError(
                    f"{field_name} names column {ref!r}, which is not among the columns ({', '.join(names)})"
                )


SILVER_SOURCE = "_source"
"""The silver column naming the source contract a row came from (several sources may feed one entity)."""


class SourceContract(_Strict):
    """How files of one source look and how they become bronze, silver and quarantine tables."""

    kind: Literal["source"]
    name: str
    description: str
    party: Literal[PARTIES]  # type: ignore[valid-type]
    entity: str = Field(description="silver table name: silver.<entity>")
    format: Literal[FORMATS]  # type: ignore[valid-type]
    format_options: dict[str, str | int | bool] = Field(default_factory=dict)
    landing: str | None = Field(default=None, description="landing folder name; the source name by default")
    event_time: str
    keys: list[str] = Field(min_length=1)
    order_by: str | None = Field(default=None, description="latest row per key wins; event_time by default")
    max_bad_share: Annotated[float, Field(ge=0.0, le=1.0)] = 0.05
    bronze_pii: Literal["encrypt", "exclude"] = "encrypt"
    vault: bool = Field(
        default=True,
        validation_alias=AliasChoices("vault", "platform_hashes"),
        description="write the normalised direct identifiers (phones, emails), encrypted, to "
        "vault.identifiers, from which pack exports compute the unsalted MD5/SHA-256 ad platforms match on; "
        "false keeps them out of packs. Silver never holds those digests (the older name platform_hashes "
        "is read as this field)",
    )
    pattern: str | None = Field(
        default=None, description="file name pattern such as '*.txt' (a '.gz' of it is read too); by format"
    )
    fields: list[str] | None = Field(
        default=None, description="the file's fields in order, for files without a header row"
    )
    null_values: list[str] = Field(
        default_factory=lambda: list(NULL_VALUES),
        description="texts (compared after trimming) that mean a missing value in a column without an "
        "id_type, so a required one is quarantined as missing; [] reads every text as a value",
    )
    columns: list[SourceColumn] = Field(min_length=1)

    @field_validator("name", "entity")
    @classmethod
    def _names(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"{v!r} must be lower_snake_case")
        return v

    @model_validator(mode="after")
    def _refs(self) -> SourceContract:
        _check_refs(
            self.columns,
            {
                "event_time": [self.event_time],
                "keys": self.keys,
                "order_by": [self.order_by] if self.order_by else [],
            },
        )
        return self

    @model_validator(mode="after")
    def _options(self) -> SourceContract:
        allowed = FORMAT_OPTIONS[self.format]
        for key, value in self.format_options.items():
            if key not in allowed:
                raise ValueError(
                    f"format_options.{key} is not supported for format {self.format}; use "
                    f"{', '.join(allowed)}"
                )
            if key in ("dateFormat", "timestampFormat", "encoding", "delimiter") and not isinstance(
                value, str
            ):
                raise ValueError(f"format_options.{key} must be text")
        if "header" in self.format_options and not isinstance(self.format_options["header"], bool):
            raise ValueError("format_options.header must be true or false")
        delimiter = self.format_options.get("delimiter", ",")
        if delimiter not in ("tab", WHITESPACE) and (len(delimiter) != 1 or delimiter in '"\r\n'):
            raise ValueError(
                f"format_options.delimiter {delimiter!r} must be one character (not a quote or a line "
                "break), tab, or whitespace (runs of spaces and tabs)"
            )
        if "encoding" in self.format_options:
            try:
                codecs.lookup(str(self.format_options["encoding"]))
            except LookupError:
                raise ValueError(
                    f"format_options.encoding {self.format_options['encoding']!r} is unknown; use e.g. "
                    "utf-8, gb18030 or gbk"
                ) from None
        if not self.has_header and not self.fields:
            raise ValueError("format_options.header: false needs fields: the file's field names in order")
        if self.fields is not None and self.has_header:
            raise ValueError(
                "fields: names the columns of a file without a header; set format_options.header: false"
            )
        if self.fields is not None and len({f.lower() for f in self.fields}) != len(self.fields):
            raise ValueError("fields: names a field twice")
        return self

    @property
    def silver_keys(self) -> list[str]:
        """The key of a row in ``silver.<entity>``: the source's name (``_source``) and the contract's keys,
        so several sources may feed one entity without their keys colliding."""
        return [SILVER_SOURCE, *self.keys]

    @property
    def delimiter(self) -> str:
        """The CSV field separator: one character, or ``whitespace``."""
        value = str(self.format_options.get("delimiter", ","))
        return "\t" if value == "tab" else value

    @property
    def has_header(self) -> bool:
        """Whether a CSV file starts with a header row (``format_options.header``, true by default)."""
        return self.format != "csv" or self.format_options.get("header", True) is not False

    @property
    def date_format(self) -> str | None:
        """The contract-wide pattern of date columns (``format_options.dateFormat``)."""
        return self.format_options.get("dateFormat")  # type: ignore[return-value]

    @property
    def timestamp_format(self) -> str | None:
        """The contract-wide pattern of timestamp columns (``format_options.timestampFormat``)."""
        return self.format_options.get("timestampFormat")  # type: ignore[return-value]

    @property
    def encoding(self) -> str:
        """The text encoding of the files (UTF-8 unless ``format_options.encoding``)."""
        return codecs.lookup(str(self.format_options.get("encoding", "utf-8"))).name

    @property
    def input_fields(self) -> list[str]:
        """The file fields the parser extracts: every column's ``from`` (or own name) and the fields its
        ``expr`` reads, in column order."""
        found: list[str] = []
        for c in self.columns:
            wanted = [c.source_field] if c.source_field else expression_fields(c.expr) if c.expr else []
            found += [f for f in wanted if f not in found]
        return found

    @property
    def required_fields(self) -> dict[str, str]:
        """File field -> the required column read from it (without a default); a file lacking one is
        refused."""
        return {
            c.source_field: c.name
            for c in self.columns
            if c.required and c.source_field and c.default is None
        }

    @property
    def mapped(self) -> bool:
        """Whether any column is made other than by reading the file field of its own name."""
        return any(c.mapped for c in self.columns)

    @property
    def landing_folder(self) -> str:
        """The folder under the landing root where this source's files are dropped."""
        return self.landing or self.name

    @property
    def required_columns(self) -> list[str]:
        """Columns without which a row is quarantined."""
        return [c.name for c in self.columns if c.required]

    @property
    def identifier_columns(self) -> dict[str, str]:
        """Column name -> ID type, for every identifier column."""
        return {c.name: c.id_type for c in self.columns if c.id_type}

    def column(self, name: str) -> SourceColumn:
        """The column called ``name``; ``KeyError`` when there is none."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"source {self.name} has no column {name!r}")


class TableContract(_Strict):
    """The schema and keys of one lake table (``<layer>.<name>``)."""

    kind: Literal["table"]
    name: str
    description: str
    partition_by: list[str] = Field(default_factory=list)
    keys: list[str] = Field(default_factory=list)
    columns: list[ColumnSpec] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _qualified(cls, v: str) -> str:
        layer, _, table = v.partition(".")
        if layer not in ("bronze", "silver", "gold", "quarantine", "vault") or not _NAME.match(table):
            raise ValueError(
                f"table name {v!r} must be <layer>.<name> with layer bronze, silver, gold, quarantine or "
                "vault and a lower_snake_case name"
            )
        return v

    @model_validator(mode="after")
    def _refs(self) -> TableContract:
        _check_refs(self.columns, {"partition_by": self.partition_by, "keys": self.keys})
        return self

    @property
    def ddl(self) -> str:
        """The table's schema as a Spark DDL string (``name type, ...``)."""
        return ", ".join(f"{c.name} {c.spark_type}" for c in self.columns)


class EntityColumn(ColumnSpec):
    """One canonical column of an entity: what it means and in which unit."""

    unit: str = ""


class EntityContract(_Strict):
    """A canonical entity: the columns of ``silver.<name>`` that the tags and the identity graph read,
    whatever the source. A source contract whose ``entity`` is canonical must produce every required
    column."""

    kind: Literal["entity"]
    name: str
    description: str
    read_by: list[str] = Field(default_factory=list, description="what reads silver.<name>")
    columns: list[EntityColumn] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"{v!r} must be lower_snake_case")
        return v

    @model_validator(mode="after")
    def _refs(self) -> EntityContract:
        _check_refs(self.columns, {})  # type: ignore[arg-type]
        if any(c.type is None for c in self.columns):
            raise ValueError("every canonical column needs a type")
        return self

    @property
    def required_columns(self) -> list[str]:
        """Columns every source of this entity must produce."""
        return [c.name for c in self.columns if c.required]


Contract = SourceContract | TableContract | EntityContract


def read_yaml_mapping(path: Path, error: type[Exception], what: str, shape: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping; ``error`` names the file and the problem (``what`` the file is,
    ``shape`` what it should look like)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{path}: {shape}")
    return data


def error_location(loc: tuple[Any, ...], data: Any) -> str:
    """Render a pydantic error location as ``columns[2] (phone).type`` (items named by their ``name``)."""
    out, node = "", data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            item = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(item, dict) and "name" in item:
                out += f" ({item['name']})"
            node = item
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(file)"


def load_contract(path: str | Path) -> Contract:
    """Read and validate one contract file.

    Args:
        path: a YAML file whose ``kind`` is ``source`` or ``table``.

    Returns:
        The validated contract.

    Raises:
        ContractError: the file cannot be read or parsed, or a field is invalid; the message names the file,
            the field and what to do.
    """
    path = Path(path)
    data = read_yaml_mapping(
        path, ContractError, "contract file", "a contract is a YAML mapping with kind: source or kind: table"
    )
    kind = data.get("kind")
    model = {"source": SourceContract, "table": TableContract, "entity": EntityContract}.get(kind)
    if model is None:
        raise ContractError(f"{path}: kind: {kind!r} is unknown; set kind: source or kind: table")
    try:
        contract = model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field; remove it or check its spelling"
            elif err["type"] == "missing":
                msg = "required field is missing"
            lines.append(f"{path}: {error_location(err['loc'], data)}: {msg}")
        raise ContractError("\n".join(lines)) from None
    stem = path.name.removesuffix(".yaml").removesuffix(".yml")
    if contract.name != stem:
        raise ContractError(
            f"{path}: name: {contract.name!r} differs from the file name; name the file {contract.name}.yaml"
        )
    if isinstance(contract, SourceContract):
        return resolve_source(contract, path)
    return contract


@functools.cache
def _packaged_entities() -> dict[str, EntityContract]:
    found = {}
    for path in sorted(ENTITIES_DIR.glob("*.yaml")):
        entity = load_contract(path)
        if not isinstance(entity, EntityContract):
            raise ContractError(f"{path}: kind: {entity.kind}; schemas/entities holds kind: entity only")
        found[entity.name] = entity
    return found


def load_entities() -> dict[str, EntityContract]:
    """The canonical entities of ``schemas/entities``, by name.

    Raises:
        ContractError: an entity file is invalid.
    """
    return dict(_packaged_entities())


def entity_problems(contract: SourceContract, entity: EntityContract, where: str) -> list[str]:
    """What keeps a source from producing its canonical entity: missing required columns, columns the entity
    lacks, types, ID types or PII classes that differ. Each line starts with ``where`` (the contract file)."""
    canon = {c.name: c for c in entity.columns}
    given = {c.name: c for c in contract.columns}
    problems = []
    missing = [n for n in entity.required_columns if n not in given]
    if missing:
        problems.append(
            f"{where}: columns: entity {entity.name} needs the canonical column(s) {', '.join(missing)}, "
            "which the contract does not produce; add each with from: (the file's field), expr:, const: "
            f"or default: (see schemas/entities/{entity.name}.yaml)"
        )
    for i, c in enumerate(contract.columns):
        at = f"{where}: columns[{i}] ({c.name})"
        if c.name not in canon:
            problems.append(
                f"{at}: entity {entity.name} has no column {c.name!r}; use one of {', '.join(canon)} "
                "(a file field that only feeds an expr: needs no column)"
            )
            continue
        want = canon[c.name]
        if c.type is not None and spark_type(c.type) != want.spark_type:
            problems.append(
                f"{at}.type: {c.type} differs from the canonical {want.type} of {entity.name}.{c.name}; "
                f"remove type: (the entity gives it) or set type: {want.type}"
            )
        for attr in ("id_type", "pii"):
            if attr in c.model_fields_set and getattr(c, attr) != getattr(want, attr):
                problems.append(
                    f"{at}.{attr}: {getattr(c, attr)} differs from the canonical {getattr(want, attr)} of "
                    f"{entity.name}.{c.name}; remove {attr}: (the entity gives it)"
                )
    return problems


def _castable(value: Scalar, type_name: str) -> bool:
    """Whether a constant or default can be cast to a contract type (dates and timestamps in ISO form)."""
    text = str(value).strip()
    kind = spark_type(type_name)
    try:
        if kind in ("int", "bigint"):
            int(text)
        elif kind in ("double", "float") or kind.startswith("decimal"):
            float(text)
        elif kind == "boolean":
            return text.lower() in ("true", "false", "1", "0")
        elif kind == "date":
            _dt.date.fromisoformat(text)
        elif kind == "timestamp":
            _dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _value_problems(contract: SourceContract, where: str, types: dict[str, str] | None = None) -> list[str]:
    """Constants and defaults that cannot be cast to their column's type (``types``: the canonical ones)."""
    problems = []
    for i, c in enumerate(contract.columns):
        kind = (types or {}).get(c.name) or c.type
        patterned = {"date": contract.date_format, "timestamp": contract.timestamp_format}
        if kind in patterned and (c.format or patterned[kind]):
            continue  # read with a pattern: left to the row checks
        for key in ("const", "default"):
            value = getattr(c, key)
            if value is not None and kind and not _castable(value, kind):
                problems.append(
                    f"{where}: columns[{i}] ({c.name}).{key}: {value!r} is not a {kind}; every row would "
                    f"be quarantined as bad_type:{c.name}"
                )
    return problems


def resolve_source(contract: SourceContract, path: str | Path = "") -> SourceContract:
    """The source with its canonical entity applied: columns in the entity's order, each typed, classified and
    described by the entity unless the source says more; optional canonical columns the source does not
    list are NULL (``const: null``). A source of an unknown entity is
    returned as it is, and then every column needs a type.

    Raises:
        ContractError: the source cannot produce its entity (every problem named with file and field).
    """
    where = str(path) or f"source {contract.name}"
    entity = load_entities().get(contract.entity)
    if entity is None:
        untyped = [f"{where}: columns[{i}] ({c.name}).type: required field is missing (entity "
                   f"{contract.entity!r} is not canonical, so no type comes from it)"
                   for i, c in enumerate(contract.columns) if c.type is None]  # fmt: skip
        if untyped or (untyped := _value_problems(contract, where)):
            raise ContractError("\n".join(untyped))
        return contract
    problems = entity_problems(contract, entity, where)
    if problems:
        raise ContractError("\n".join(problems))
    given = {c.name: c for c in contract.columns}
    columns = []
    for want in entity.columns:
        c = given.get(want.name) or SourceColumn(name=want.name, type=want.type, const=None)
        columns.append(
            c.model_copy(
                update={
                    "type": want.type,
                    "id_type": want.id_type,
                    "pii": want.pii,
                    "required": c.required or want.required,
                    "description": c.description or want.description,
                }
            )
        )
    if problems := _value_problems(contract, where, {c.name: c.type for c in entity.columns}):
        raise ContractError("\n".join(problems))
    return contract.model_copy(update={"columns": columns})


def source_warnings(contract: SourceContract) -> list[str]:
    """Things that load but deserve a look: an entity that is not canonical (no tag reads it)."""
    if contract.entity in load_entities():
        return []
    return [
        f"source {contract.name}: entity {contract.entity!r} is not canonical "
        f"({', '.join(load_entities())}): "
        f"silver.{contract.entity} is written, but no tag reads it"
    ]
