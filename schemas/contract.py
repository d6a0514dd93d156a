"""Contract models: what a source file or a lake table must look like.

Contracts are data (YAML files next to this module); this module only validates them into typed models.
Loading never needs a SparkSession, and every error names the file, the field and the fix.
"""

from __future__ import annotations

import re
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
        if self.id_type and self.type != "string":
            raise ValueError(
                f"identifier column {self.name!r} (id_type {self.id_type}) must have type string"
            )
        if self.pii == "direct" and self.type != "string":
            raise ValueError(f"direct PII column {self.name!r} must have type string")
        return self

    @property
    def spark_type(self) -> str:
        """The Spark DDL type of this column."""
        return spark_type(self.type)


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
    columns: list[ColumnSpec] = Field(min_length=1)

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

    def column(self, name: str) -> ColumnSpec:
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


Contract = SourceContract | TableContract


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
    model = {"source": SourceContract, "table": TableContract}.get(kind)
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
    return contract
