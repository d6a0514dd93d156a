"""Expectation suites: one Great Expectations 1.x suite file per lake table, checked into a plan before any
engine starts.

A suite lives in ``quality/suites/<layer>.<name>.json`` (GE 1.x suite JSON: ``name``, ``expectations``,
``meta``). Conventions on top of the GE format:

- every expectation states its ``severity`` (GE's own field): ``critical`` stops the stage's publish,
  ``warning`` and ``info`` are recorded and let it go on;
- ``meta.dt_column`` names the column that holds the logical date (``dt``, or ``_dt`` in silver), so a run
  validates one date and compares it with the previous one;
- ``meta.source`` names the source contract the table comes from (for ``max_bad_share`` and ``rows_in``);
- ``meta.references`` maps a view name to another lake table, readable by SQL expectations
  (``unexpected_rows_expectation``) for referential checks;
- parameters (``{"$PARAMETER": "previous_row_count * 0.2"}``) are filled at run time from
  :data:`PARAMETERS`; an expectation whose parameter has no value yet (the first dt) is skipped.

A table without a suite file gets one derived from its contract (keys, required columns, identifier
formats), so a new source is still one contract file; ``cdp quality suite <table>`` prints it as a starting
point for a file. Folders in ``CDP_SUITE_PATH`` are searched before the packaged ``quality/suites``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdp.lake import bronze_table, quarantine_table, silver_table
from cdp.settings import Settings
from schemas import SILVER_SOURCE, SourceContract, TableContract, load_sources, load_tables

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite

PACKAGED_DIR = Path(__file__).resolve().parent / "suites"
SEVERITIES = ("critical", "warning", "info")

PARAMETERS: dict[str, str] = {
    "previous_row_count": "rows of the latest earlier dt of the same table (needs meta.dt_column)",
    "rows_in": "records read by the ingest run of meta.source for the dt",
    "max_bad_share": "max_bad_share of the source contract meta.source",
    "id_types": "ID types the identity graph may hold: ID_TYPES plus the attribute:<name> types of the "
    "enabled attribute rules (given by the identity job; ID_TYPES alone otherwise)",
}
"""Parameters a suite may use in ``$PARAMETER`` expressions, with where their value comes from."""

ID_FORMATS: dict[str, str] = {
    "phone": r"^(?:\+[1-9][0-9]{6,14}|[0-9a-f]{32}|[0-9a-f]{64})$",
    "email": r"^(?:[^@ ]+@[^@ ]+\.[^@ ]+|[0-9a-f]{32}|[0-9a-f]{64})$",
    "imei": r"^(?:[0-9]{14,15}|[0-9a-f]{14}|[0-9a-f]{32}|[0-9a-f]{64})$",
    "oaid": r"^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,64})$",
    "idfa": r"^(?:[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}|[0-9a-f]{32}|[0-9a-f]{64})$",
    "android_id": r"^[0-9a-f]{16}$",
    "wechat_openid": r"^[A-Za-z0-9_-]{20,40}$",
    "wechat_unionid": r"^[A-Za-z0-9_-]{20,40}$",
    "member_id": r"^[A-Z0-9_-]{3,64}$",
    "cookie": r"^[A-Za-z0-9._-]{8,128}$",
}
"""The canonical form of each ID type after ``identity.normalize`` (md5/sha256 digests where partners send
hashed phones, emails, IMEIs or IDFAs). ASCII classes only: the same pattern means the same on Java (classic
Spark) and Rust (Sail) regex engines."""

KEYED_HASH = r"^[0-9a-f]{64}$"
"""A ``<column>_hash`` keyed hash (HMAC-SHA256 hex), which replaces direct PII in silver."""

LINEAGE = ("_source_file", "_batch_id", "_ingested_at")
SOURCE = SILVER_SOURCE

_NAME_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?!\s*\()")
_VIEW_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class SuiteError(ValueError):
    """A suite file is missing, unreadable or invalid. The message names the file and the field."""


@dataclass(frozen=True)
class SuitePlan:
    """A checked suite: what to validate for one table and how.

    Attributes:
        table: the lake table (``layer.name``).
        data: the suite in GE 1.x JSON form.
        path: the suite file, or None when the suite was derived from the table's contract.
        dt_column: the column holding the logical date, when the table has one.
        source: the source contract the table comes from, when it does.
        references: view name -> lake table, for SQL expectations that look at another table.
    """

    table: str
    data: dict[str, Any]
    path: Path | None = None
    dt_column: str | None = None
    source: str | None = None
    references: dict[str, str] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        """Where the suite comes from: its file, or ``derived from the contract``."""
        return str(self.path) if self.path else "derived from the contract"

    @property
    def expectations(self) -> list[dict[str, Any]]:
        return self.data["expectations"]

    def parameters_of(self, expectation: dict[str, Any]) -> set[str]:
        """The parameter names an expectation's ``$PARAMETER`` expressions use."""
        return _parameter_names(expectation.get("kwargs", {}))

    @property
    def parameters(self) -> set[str]:
        """Every parameter name the suite uses."""
        return set().union(set(), *(self.parameters_of(e) for e in self.expectations))

    def expectation_suite(self, keep: Iterable[int] | None = None) -> ExpectationSuite:
        """A fresh GE ``ExpectationSuite`` with the expectations at positions ``keep`` (all when None)."""
        from great_expectations.core import ExpectationSuite

        wanted = set(range(len(self.expectations))) if keep is None else set(keep)
        data = {**self.data, "expectations": [e for i, e in enumerate(self.expectations) if i in wanted]}
        return ExpectationSuite(**json.loads(json.dumps(data)))


def _parameter_names(value: Any) -> set[str]:
    if isinstance(value, dict):
        if "$PARAMETER" in value:
            return set(_NAME_TOKEN.findall(str(value["$PARAMETER"])))
        return set().union(set(), *(_parameter_names(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(set(), *(_parameter_names(v) for v in value))
    return set()


def suite_dirs(extra: Iterable[str | Path] | None = None) -> list[Path]:
    """Folders searched for suite files: ``extra`` first, then the packaged one.

    Args:
        extra: suite folders; ``Settings.from_env().suite_paths`` (``CDP_SUITE_PATH``) when omitted.
    """
    if extra is None:
        extra = Settings.from_env().suite_paths
    return [*(Path(p) for p in extra), PACKAGED_DIR]


def suite_file(table: str, extra: Iterable[str | Path] | None = None) -> Path | None:
    """The suite file of ``table``, or None when no folder has one."""
    for folder in suite_dirs(extra):
        path = folder / f"{table}.json"
        if path.is_file():
            return path
    return None


def check_suite(data: Any, where: str, table: str | None = None) -> SuitePlan:
    """Check a suite's JSON content against the conventions above and GE's own models.

    Args:
        data: the parsed JSON.
        where: the file (or origin) named in errors.
        table: the table the suite must be for; its ``name`` when omitted.

    Raises:
        SuiteError: a field is missing or invalid; the message names the file, the field and the fix.
    """
    from cdp.lake import LakeError, split_table_name

    if not isinstance(data, dict):
        raise SuiteError(f"{where}: a suite is a JSON object with name, expectations and meta")
    name = data.get("name")
    table = table or name
    if name != table:
        raise SuiteError(
            f"{where}: name: {name!r} differs from the table {table!r}; name the file {name}.json"
        )
    try:
        split_table_name(str(table))
    except LakeError as exc:
        raise SuiteError(f"{where}: name: {exc}") from None
    meta = data.get("meta") or {}
    if not isinstance(meta, dict):
        raise SuiteError(f"{where}: meta must be an object")
    expectations = data.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        raise SuiteError(f"{where}: expectations: a suite needs a non-empty list of expectations")
    references = meta.get("references") or {}
    for view, ref in references.items():
        if not _VIEW_NAME.match(view):
            raise SuiteError(f"{where}: meta.references: view name {view!r} must be lower_snake_case")
        try:
            split_table_name(str(ref))
        except LakeError as exc:
            raise SuiteError(f"{where}: meta.references.{view}: {exc}") from None
    dt_column = meta.get("dt_column")
    for i, exp in enumerate(expectations):
        label = f"{where}: expectations[{i}] ({exp.get('type') if isinstance(exp, dict) else exp!r})"
        if not isinstance(exp, dict) or "type" not in exp:
            raise SuiteError(f"{label}: an expectation is an object with type, kwargs and severity")
        if exp.get("severity") not in SEVERITIES:
            raise SuiteError(
                f"{label}: severity: {exp.get('severity')!r}; state one of {', '.join(SEVERITIES)} "
                "(critical stops the publish, warning is recorded)"
            )
        unknown = _parameter_names(exp.get("kwargs", {})) - set(PARAMETERS)
        if unknown:
            raise SuiteError(
                f"{label}: unknown $PARAMETER name(s) {sorted(unknown)}; use {', '.join(PARAMETERS)}"
            )
        if "previous_row_count" in _parameter_names(exp.get("kwargs", {})) and not dt_column:
            raise SuiteError(f"{label}: previous_row_count needs meta.dt_column, the table's date column")
    plan = SuitePlan(
        table=str(table),
        data=data,
        dt_column=dt_column,
        source=meta.get("source"),
        references=dict(references),
    )
    try:
        plan.expectation_suite()
    except Exception as exc:  # GE raises pydantic and its own errors for bad expectation kwargs
        raise SuiteError(f"{where}: not a valid Great Expectations suite: {exc}") from None
    return plan


def load_suite(
    table: str, extra: Iterable[str | Path] | None = None, contract_paths: Iterable[str | Path] = ()
) -> SuitePlan:
    """The checked suite of ``table``: its file, or one derived from its contract.

    Args:
        table: ``layer.name``.
        extra: more suite folders; ``Settings.suite_paths`` (``CDP_SUITE_PATH``) when omitted.
        contract_paths: extra contract folders (``Settings.contract_paths``) for derived suites.

    Raises:
        SuiteError: the file is invalid, or there is neither a file nor a contract to derive one from.
    """
    path = suite_file(table, extra)
    if path is None:
        data = derive_suite(table, contract_paths)
        plan = check_suite(data, f"derived suite of {table}", table)
        return plan
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read suite file: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}: not valid JSON: {exc}") from None
    plan = check_suite(data, str(path), table)
    return SuitePlan(**{**plan.__dict__, "path": path})


def suite_tables(contract_paths: Iterable[str | Path] = ()) -> list[str]:
    """Every table that has a suite: the packaged files plus bronze, quarantine and silver of each source."""
    names = {p.stem for folder in suite_dirs() if folder.is_dir() for p in folder.glob("*.json")}
    for source in load_sources(contract_paths).values():
        names |= {bronze_table(source.name), quarantine_table(source.name), silver_table(source.entity)}
    return sorted(names)


# ---- suites derived from contracts ----------------------------------------------------------------------


def _exp(type_: str, severity: str, why: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": type_, "kwargs": kwargs, "meta": {"why": why}, "severity": severity}


def _not_null(column: str, why: str, severity: str = "critical") -> dict[str, Any]:
    return _exp("expect_column_values_to_not_be_null", severity, why, column=column)


def _unique(keys: list[str], why: str) -> dict[str, Any]:
    if len(keys) == 1:
        return _exp("expect_column_values_to_be_unique", "critical", why, column=keys[0])
    return _exp("expect_compound_columns_to_be_unique", "critical", why, column_list=list(keys))


def _row_count_change(low: float, high: float) -> dict[str, Any]:
    return _exp(
        "expect_table_row_count_to_be_between",
        "warning",
        f"row count within {low:g}x-{high:g}x of the previous dt",
        min_value={"$PARAMETER": f"previous_row_count * {low:g}"},
        max_value={"$PARAMETER": f"previous_row_count * {high:g}"},
    )


def silver_columns(contract: SourceContract) -> list[str]:
    """The columns of ``silver.<entity>``: lineage and the source's name, contract columns with direct PII
    replaced by its keyed hash and mask (see ``ingest.protect``; never an unkeyed digest), and ``_dt``."""
    out = list(LINEAGE)
    for c in contract.columns:
        if c.pii != "direct":
            out.append(c.name)
        else:
            out += [f"{c.name}_hash", f"{c.name}_masked"]
    return [*out, SOURCE, "_dt"]


def _silver_suite(contract: SourceContract) -> dict[str, Any]:
    table = silver_table(contract.entity)
    exps = [
        _exp(
            "expect_table_columns_to_match_set",
            "critical",
            "the contract's columns, with direct PII only as keyed hashes and masks",
            column_set=silver_columns(contract),
            exact_match=True,
        )
    ]
    why = f"required by the contract {contract.name}"  # a direct-PII column reaches silver as its hash
    exps += [
        _not_null(f"{c}_hash" if contract.column(c).pii == "direct" else c, why)
        for c in contract.required_columns
    ]
    exps.append(_unique(contract.silver_keys, "the MERGE key of silver: one row per source and key"))
    for col, id_type in contract.identifier_columns.items():
        spec = contract.column(col)
        if spec.pii == "direct":
            exps.append(
                _exp(
                    "expect_column_values_to_match_regex",
                    "critical",
                    f"{id_type} reaches silver only as a keyed hash",
                    column=f"{col}_hash",
                    regex=KEYED_HASH,
                )
            )
        else:
            exps.append(
                _exp(
                    "expect_column_values_to_match_regex",
                    "critical",
                    f"normalised {id_type}",
                    column=col,
                    regex=ID_FORMATS[id_type],
                )
            )
    exps += [_not_null(c, "lineage") for c in (*LINEAGE, SOURCE, "_dt")]
    return {
        "name": table,
        "meta": {"table": table, "source": contract.name, "dt_column": "_dt"},
        "expectations": exps,
    }


def _bronze_suite(contract: SourceContract) -> dict[str, Any]:
    table = bronze_table(contract.name)
    return {
        "name": table,
        "meta": {"table": table, "source": contract.name, "dt_column": "dt"},
        "expectations": [*(_not_null(c, "lineage") for c in LINEAGE), _row_count_change(0.2, 5)],
    }


def _quarantine_suite(contract: SourceContract) -> dict[str, Any]:
    table = quarantine_table(contract.name)
    return {
        "name": table,
        "meta": {"table": table, "source": contract.name, "dt_column": "dt"},
        "expectations": [
            _exp(
                "expect_table_row_count_to_be_between",
                "critical",
                "share of quarantined rows at most the contract's max_bad_share",
                min_value=0,
                max_value={"$PARAMETER": "rows_in * max_bad_share"},
            ),
            _exp(
                "unexpected_rows_expectation",
                "critical",
                "every quarantined row says why",
                unexpected_rows_query=(
                    "SELECT _source_file FROM {batch} WHERE _reasons IS NULL OR size(_reasons) = 0"
                ),
            ),
            _not_null("_source_file", "lineage"),
            _not_null("_batch_id", "lineage"),
        ],
    }


def _table_suite(contract: TableContract) -> dict[str, Any]:
    exps = [_not_null(c.name, "required by the table contract") for c in contract.columns if c.required]
    if contract.keys:
        exps.append(_unique(contract.keys, "the table's key"))
    dt_column = "dt" if "dt" in contract.partition_by else None
    if not exps:
        exps.append(_exp("expect_table_row_count_to_be_between", "warning", "not empty", min_value=1))
    meta = {"table": contract.name} | ({"dt_column": dt_column} if dt_column else {})
    return {"name": contract.name, "meta": meta, "expectations": exps}


def derive_suite(table: str, contract_paths: Iterable[str | Path] = ()) -> dict[str, Any]:
    """A suite for ``table`` built from its contract: required columns, keys, identifier formats, lineage,
    the quarantine threshold and the row count against the previous dt.

    Raises:
        SuiteError: no contract describes ``table``.
    """
    layer, _, name = table.partition(".")
    sources = load_sources(contract_paths)
    for contract in sources.values():
        if layer == "silver" and contract.entity == name:
            return _silver_suite(contract)
        if name == contract.name and layer in ("bronze", "quarantine"):
            return _bronze_suite(contract) if layer == "bronze" else _quarantine_suite(contract)
    tables = load_tables(contract_paths)
    if table in tables:
        return _table_suite(tables[table])
    raise SuiteError(
        f"no suite for {table}: add quality/suites/{table}.json (or a file in CDP_SUITE_PATH); no source or "
        "table contract describes it, so none can be derived"
    )
