"""Quality gates between stages (write-audit-publish): validate what a stage wrote or is about to publish
with the table's expectation suite, record every result in ``gold.quality_results``, and stop the publish
when a critical expectation fails. Warnings are recorded and let the stage go on.

Suites run on the engine's DataFrames through Great Expectations' Spark datasource (a whole-DataFrame batch),
so every metric is a Spark aggregate computed where the data is: over Spark Connect (embedded Sail, a remote
server) as on classic Spark. Only results (counts, a few example values) come back to the driver.

A suite whose ``meta.gate`` is ``sql`` is validated at a stage's gate by :func:`validate_sql` instead: its
column and row-count checks in one aggregation pass, each uniqueness check and referential query counted
once, with GE's outcomes. The identity and tag tables use it (``gold.tags``: one row per OneID and tag;
``gold.oneid_map``: 18 expectations, 5.3 s with GE's one metric query per expectation, 0.8 s in one pass at
100k persons), and so do the packaged bronze, quarantine and silver suites at the ingest gate; ``cdp quality
run`` still validates every table with GE.

The ingest job calls :func:`gate_ingest` before its MERGE into silver; later stages (identity, tags,
audiences) call :func:`gate_tables` with the batches they are about to publish; ``cdp quality run`` calls
:func:`validate_table` on a published table.
"""

from __future__ import annotations

import ast
import datetime as _dt
import json
import operator
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyspark.errors import PySparkException
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from cdp.lake import Lake, bronze_table, parse_dt, quarantine_table, silver_table
from quality.catalog import SuiteError, SuitePlan, load_suite

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from schemas import SourceContract

RESULTS_TABLE = "gold.quality_results"
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 10}
"""Counts, observed values and up to 10 example unexpected values per expectation (never the rows)."""

_DATASOURCE = "lake"
_context = None
_gx_lock = threading.RLock()
"""GE's context, datasource and suite-parameter parser are not thread-safe: validations of one process
(threads of a web app, parallel tasks in one worker) run one at a time; processes run in parallel."""


class QualityGateError(RuntimeError):
    """A critical expectation failed: the stage must not publish. ``results`` holds every validation."""

    def __init__(self, message: str, results: list[GateResult]) -> None:
        super().__init__(message)
        self.results = results


@dataclass
class Outcome:
    """The result of one expectation, as recorded in ``gold.quality_results``."""

    position: int
    expectation: str
    column: str | None
    kwargs: dict[str, Any]
    severity: str
    success: bool
    observed: str
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    element_count: int | None = None
    exception: str | None = None
    result_json: str = "{}"

    def describe(self) -> str:
        """``expectation(column)``, for messages."""
        return f"{self.expectation}({self.column})" if self.column else self.expectation


@dataclass
class GateResult:
    """One validation of one table for one logical date."""

    table: str
    dt: _dt.date
    stage: str
    suite: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    validated_at: _dt.datetime = field(
        default_factory=lambda: _dt.datetime.now(_dt.UTC).replace(tzinfo=None, microsecond=0)
    )
    seconds: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[Outcome]:
        """Failed critical expectations: any of them stops the publish."""
        return [o for o in self.outcomes if not o.success and o.severity == "critical"]

    @property
    def warnings(self) -> list[Outcome]:
        """Failed expectations that are only recorded."""
        return [o for o in self.outcomes if not o.success and o.severity != "critical"]

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        """One line: table, dt, verdict and counts."""
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"{self.table} {self.dt.isoformat()}: {verdict} - {len(self.outcomes)} expectations, "
            f"{len(self.failures)} critical failed, {len(self.warnings)} warnings"
            + (f", {len(self.skipped)} skipped" if self.skipped else "")
            + f" ({self.seconds:.2f} s)"
        )

    def rows(self) -> list[dict[str, Any]]:
        """The rows of ``gold.quality_results`` for this validation."""
        return [
            {
                "run_id": self.run_id,
                "table_name": self.table,
                "stage": self.stage,
                "suite": self.suite,
                "position": o.position,
                "expectation": o.expectation,
                "column_name": o.column,
                "kwargs_json": json.dumps(o.kwargs, default=str, ensure_ascii=False),
                "severity": o.severity,
                "success": o.success,
                "observed_value": o.observed,
                "unexpected_count": o.unexpected_count,
                "unexpected_percent": o.unexpected_percent,
                "element_count": o.element_count,
                "exception": o.exception,
                "gate_passed": self.passed,
                "validated_at": self.validated_at,
                "seconds": self.seconds,
                "result_json": o.result_json,
                "dt": self.dt,
            }
            for o in self.outcomes
        ]


# ---- Great Expectations on the engine's DataFrames ------------------------------------------------------


def _gx_context():
    """One ephemeral GE context per process: suites come from files, results go to the lake."""
    global _context
    if _context is None:
        import great_expectations as gx

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = {"globally": False}
        _context = context
    return _context


def _batch(df: DataFrame, asset: str):
    """A GE batch over the whole of ``df``, computed by the session that owns ``df``."""
    context = _gx_context()
    spark = df.sparkSession
    try:
        source = context.data_sources.get(_DATASOURCE)
    except KeyError:
        source = None
    # GE would otherwise look for a session itself (getOrCreate); pinning the DataFrame's own session keeps
    # metrics and SQL expectations on the engine that holds the data (Connect or classic). persist is off:
    # Sail ignores it and the callers' inputs are already materialised.
    if source is None or source._spark is not spark:
        if source is not None:
            context.data_sources.delete(_DATASOURCE)
        source = context.data_sources.add_spark(name=_DATASOURCE, persist=False)
        source._spark = spark
    try:
        data_asset = source.get_asset(asset)
    except LookupError:
        data_asset = source.add_dataframe_asset(name=asset)
    try:
        definition = data_asset.get_batch_definition("whole")
    except KeyError:
        definition = data_asset.add_batch_definition_whole_dataframe("whole")
    return definition.get_batch(batch_parameters={"dataframe": df})


@contextmanager
def _reference_views(
    lake: Lake, plan: SuitePlan, staged: Mapping[str, DataFrame] | None = None
) -> Iterator[None]:
    """Register the tables a suite's SQL expectations refer to as temporary views for the block: the batch
    a stage is about to publish when ``staged`` holds it, else the published table."""
    staged = staged or {}
    for view, table in plan.references.items():
        (staged[table] if table in staged else lake.read(table)).createOrReplaceTempView(view)
    try:
        yield
    finally:
        for view in plan.references:
            lake.spark.catalog.dropTempView(view)


def _column_of(kwargs: Mapping[str, Any]) -> str | None:
    if kwargs.get("column"):
        return str(kwargs["column"])
    if kwargs.get("column_list"):
        return ",".join(kwargs["column_list"])
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    return None


def _bounds(kwargs: Mapping[str, Any]) -> str:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is None and high is None:
        return ""

    def show(v: Any) -> str:
        return "" if v is None else f"{v:,.6g}" if isinstance(v, int | float) else str(v)

    return f" (expected {show(low)}..{show(high)})"


def _observed(result: Mapping[str, Any], kwargs: Mapping[str, Any]) -> str:
    """The observed value in words: the value (with the bounds it was held to), or the unexpected rows."""
    if "observed_value" in result:
        value = result["observed_value"]
        text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
        return text + _bounds(kwargs)
    if result.get("unexpected_count") is not None:
        shown = result.get("partial_unexpected_list") or []
        examples = f"; e.g. {json.dumps(shown[:3], default=str, ensure_ascii=False)}" if shown else ""
        return (
            f"{result['unexpected_count']:,} of {result.get('element_count') or 0:,} unexpected "
            f"({result.get('unexpected_percent') or 0:.3g}%){examples}"
        )
    return ""


def _outcome(position: int, severity: str, validation) -> Outcome:
    config = validation.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    result = validation.result or {}
    info = validation.exception_info or {}
    exception = info.get("exception_message") if info.get("raised_exception") else None
    return Outcome(
        position=position,
        expectation=config.type,
        column=_column_of(kwargs),
        kwargs=kwargs,
        severity=severity,
        success=bool(validation.success),
        observed=f"error: {exception}" if exception else _observed(result, kwargs),
        unexpected_count=result.get("unexpected_count"),
        unexpected_percent=result.get("unexpected_percent"),
        element_count=result.get("element_count"),
        exception=exception,
        result_json=json.dumps(validation.to_json_dict(), default=str, ensure_ascii=False),
    )


def previous_row_count(lake: Lake, table: str, dt_column: str, dt: str | _dt.date) -> int | None:
    """Rows of ``table`` on the latest date before ``dt`` in ``dt_column``; None when there is none."""
    previous = lake.latest_dt(table, before=parse_dt(dt), column=dt_column)
    if previous is None:
        return None
    return lake.read(table).filter(F.col(dt_column) == F.lit(previous)).count()


def _ingest_rows_in(lake: Lake, source: str, day: _dt.date) -> int | None:
    """Records read by the latest ingest run of ``source`` for ``day`` (``gold.ingest_runs``)."""
    if not lake.exists("gold.ingest_runs"):
        return None
    row = (
        lake.read("gold.ingest_runs")
        .filter((F.col("dt") == F.lit(day)) & (F.col("source") == source) & (F.col("rows_in") > 0))
        .orderBy(F.col("started_at").desc())
        .select("rows_in")
        .first()
    )
    return None if row is None else int(row["rows_in"])


def suite_parameters(
    lake: Lake,
    plan: SuitePlan,
    dt: str | _dt.date,
    given: Mapping[str, Any] | None = None,
    contract_paths: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Values of the parameters ``plan`` uses: ``given`` first, the rest looked up in the lake and contracts.

    A value is None when it does not exist yet (no earlier dt, no ingest run); expectations using it are
    skipped.
    """
    from schemas import ID_TYPES, load_source

    day = parse_dt(dt)
    values = dict(given or {})
    needed = plan.parameters - set(values)
    if "previous_row_count" in needed:
        values["previous_row_count"] = previous_row_count(lake, plan.table, str(plan.dt_column), day)
    if "rows_in" in needed:
        values["rows_in"] = _ingest_rows_in(lake, plan.source, day) if plan.source else None
    if "max_bad_share" in needed:
        values["max_bad_share"] = (
            load_source(plan.source, extra=contract_paths).max_bad_share if plan.source else None
        )
    if "id_types" in needed:
        values["id_types"] = list(ID_TYPES)  # the identity job gives its rules' attribute types too
    return values


def _runnable(
    lake: Lake,
    plan: SuitePlan,
    dt: str | _dt.date,
    stage: str,
    parameters: Mapping[str, Any] | None,
    contract_paths: tuple[str, ...],
) -> tuple[GateResult, dict[str, Any], list[int]]:
    """The empty result of a validation, the evaluated parameters, and the positions of the expectations
    that can run (those whose parameters all have a value; the others are recorded as skipped)."""
    day = parse_dt(dt)
    values = suite_parameters(lake, plan, day, parameters, contract_paths)
    result = GateResult(table=plan.table, dt=day, stage=stage, suite=plan.origin, parameters=values)
    keep = []
    for i, exp in enumerate(plan.expectations):
        missing = sorted(n for n in plan.parameters_of(exp) if values.get(n) is None)
        if missing:
            result.skipped.append(f"{exp['type']}: no value yet for {', '.join(missing)}")
        else:
            keep.append(i)
    return result, values, keep


def validate(
    lake: Lake,
    plan: SuitePlan,
    df: DataFrame,
    dt: str | _dt.date,
    *,
    stage: str,
    parameters: Mapping[str, Any] | None = None,
    contract_paths: tuple[str, ...] = (),
    staged: Mapping[str, DataFrame] | None = None,
) -> GateResult:
    """Validate ``df`` with the suite ``plan`` on the engine; nothing is recorded or raised.

    Args:
        lake: the lake (parameter look-ups and referenced tables).
        plan: the table's suite (:func:`quality.catalog.load_suite`).
        df: the batch: a table's rows for one dt, or the rows a stage is about to publish.
        dt: the logical date.
        stage: who validates (``ingest crm_members``, ``cdp quality run``), recorded with the results.
        parameters: known parameter values; the others are looked up (:func:`suite_parameters`).
        contract_paths: extra contract folders.
        staged: batches of other tables not yet published (table -> DataFrame); a referential check on
            one of them reads the batch instead of the published table.

    Returns:
        The outcome of every expectation that could run, and the skipped ones with the reason.
    """
    result, values, keep = _runnable(lake, plan, dt, stage, parameters, contract_paths)
    if not keep:
        return result
    suite = plan.expectation_suite(keep)
    # Positions travel in meta: GE may return results in another order than the suite's.
    for position, expectation in zip(keep, suite.expectations, strict=True):
        expectation.meta = {**(expectation.meta or {}), "position": position}
    start = time.perf_counter()
    with _gx_lock, _reference_views(lake, plan, staged):
        validation = _batch(df, plan.table).validate(
            suite,
            result_format=RESULT_FORMAT,
            expectation_parameters={k: v for k, v in values.items() if v is not None},
        )
    result.seconds = round(time.perf_counter() - start, 3)
    for r in validation.results:
        position = int(r.expectation_config.meta["position"])
        result.outcomes.append(_outcome(position, plan.expectations[position]["severity"], r))
    result.outcomes.sort(key=lambda o: o.position)
    return result


# ---- one SQL pass for long tables (meta.gate = "sql") ----------------------------------------------------

SQL_TYPES = (
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_unique",
    "expect_compound_columns_to_be_unique",
    "expect_column_max_to_be_between",
    "expect_table_row_count_to_be_between",
    "expect_table_columns_to_match_set",
    "unexpected_rows_expectation",
)
"""The expectation types :func:`validate_sql` proves; a ``meta.gate: sql`` suite may use only these."""

_EXAMPLES = RESULT_FORMAT["partial_unexpected_count"]
"""Unexpected values fetched per failed column check, as GE's ``partial_unexpected_list``."""

_NO_SCAN = (
    "expect_table_row_count_to_be_between",
    "expect_table_columns_to_match_set",
    "unexpected_rows_expectation",
)
"""Types with no column aggregate of their own: the row count, the schema, a query counted on its own."""

_ARITHMETIC = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _parameter_value(value: Any, values: Mapping[str, Any]) -> Any:
    """A kwarg with its ``{"$PARAMETER": "previous_row_count * 0.2"}`` evaluated (numbers, names, + - * /)."""
    if not (isinstance(value, dict) and "$PARAMETER" in value):
        return value

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            return _ARITHMETIC[type(node.op)](ev(node.left), ev(node.right))
        raise SuiteError(f"$PARAMETER {value['$PARAMETER']!r}: only numbers, parameters and + - * /")

    return ev(ast.parse(str(value["$PARAMETER"]), mode="eval"))


def _sql_plan_checked(plan: SuitePlan) -> None:
    for i, exp in enumerate(plan.expectations):
        if exp["type"] not in SQL_TYPES:
            raise SuiteError(
                f"{plan.origin}: expectations[{i}].type: {exp['type']} cannot run in the one-pass SQL gate "
                f"(meta.gate: sql); use one of {', '.join(SQL_TYPES)} or remove meta.gate"
            )


def _spark_columns(schema: StructType, parent: str = "") -> list[str]:
    """The column names GE's Spark ``table.columns`` lists: every field, and the fields of a struct as
    ``parent.child`` (a name with a dot in backticks)."""
    names = []
    for f in schema.fields:
        name = f.name if "." not in f.name or f.name.startswith("`") else f"`{f.name}`"
        names.append(parent + name)
        if isinstance(f.dataType, StructType):
            names += _spark_columns(f.dataType, f"{parent}{f.name}.")
    return names


def _absent(kwargs: Mapping[str, Any], columns: list[str]) -> str | None:
    """Why a column check cannot run on a batch with ``columns``: the columns it names that are not there."""
    named = kwargs.get("column_list") or ([kwargs["column"]] if kwargs.get("column") else [])
    missing = [c for c in named if c not in columns]
    return f"column(s) not in the batch: {', '.join(missing)}" if missing else None


def _unexpected(exp: Mapping[str, Any], values: Mapping[str, Any]) -> Column:
    """The rows a column check counts as unexpected (before its row condition): NULL; a non-NULL value not
    matching the pattern, outside the set or outside the bounds (inclusive). NULL compares to NULL, which
    ``count_if`` and ``where`` skip, as GE skips NULLs."""
    kwargs = exp["kwargs"]
    col = F.col(kwargs["column"])
    if exp["type"] == "expect_column_values_to_not_be_null":
        return col.isNull()
    if exp["type"] == "expect_column_values_to_match_regex":
        return ~col.rlike(kwargs["regex"])
    if exp["type"] == "expect_column_values_to_be_in_set":
        return ~col.isin(*[F.lit(v) for v in _parameter_value(kwargs["value_set"], values)])
    low, high = (_parameter_value(kwargs.get(k), values) for k in ("min_value", "max_value"))
    outside = F.lit(False)
    outside = outside if low is None else outside | (col < F.lit(low))
    return outside if high is None else outside | (col > F.lit(high))


def _any_not_null(columns: list[str]) -> Column:
    """Rows where a value or combination counts for GE's uniqueness: not all of it NULL."""
    present = F.lit(False)
    for c in columns:
        present = present | F.col(c).isNotNull()
    return present


def _row_condition(kwargs: dict) -> Column:
    """The rows a column check holds on: its ``row_condition`` (Spark SQL), applied first as in GE."""
    return F.expr(kwargs["row_condition"]) if kwargs.get("row_condition") else F.lit(True)


def validate_sql(
    lake: Lake,
    plan: SuitePlan,
    df: DataFrame,
    dt: str | _dt.date,
    *,
    stage: str,
    parameters: Mapping[str, Any] | None = None,
    contract_paths: tuple[str, ...] = (),
    staged: Mapping[str, DataFrame] | None = None,
) -> GateResult:
    """Validate ``df`` with the suite ``plan`` in one aggregation pass (and one count per referential query)
    instead of GE; the outcomes are recorded like :func:`validate`'s, with the same severities.

    Column checks count their unexpected rows as GE does: NULLs; non-NULL values not matching the regex
    (among the rows of a Spark ``row_condition``), outside the set or the bounds (inclusive); rows whose
    value (or combination, unless all of it is NULL) occurs more than once, one grouped count per
    uniqueness check; a check passes when none is found, or when at most ``1 - mostly`` of the rows it
    considers are (GE's ``mostly``). Row counts compare ``count(*)`` with the evaluated parameters truncated
    to integers as GE does (bounds inclusive); the schema check compares ``df``'s column names (struct
    fields as ``parent.child``) with ``column_set``, extra columns failing only an ``exact_match`` (GE's
    default), with GE's ``details.mismatched``; an ``unexpected_rows_expectation`` counts the rows its
    query returns (``{batch}`` is ``df``). As in GE, a check on a column the batch lacks, or a query that
    fails, is a failed check with the error, and the others still run. Examples of unexpected values (up to
    GE's 10) are fetched only for a check that found some.

    Args: as :func:`validate`.

    Raises:
        SuiteError: the suite uses an expectation type outside :data:`SQL_TYPES`.
    """
    _sql_plan_checked(plan)
    result, values, keep = _runnable(lake, plan, dt, stage, parameters, contract_paths)
    start = time.perf_counter()
    columns = _spark_columns(df.schema)
    # GE fails a check on a column the batch lacks (and goes on with the others): so does this pass
    errors = {i: e for i in keep if (e := _absent(plan.expectations[i]["kwargs"], columns))}
    counts: dict[str, Any] = {"_columns": columns, "_errors": errors}
    aggs = [F.count(F.lit(1)).alias("_rows")]
    for i in keep:
        exp = plan.expectations[i]
        kwargs = exp["kwargs"]
        if exp["type"] in _NO_SCAN or i in errors:
            continue
        where = _row_condition(kwargs)
        if kwargs.get("row_condition"):
            aggs.append(F.count_if(where).alias(f"_rows{i}"))
        if exp["type"] == "expect_compound_columns_to_be_unique":
            # GE's percentage base: the combinations not all NULL
            aggs.append(F.count_if(where & _any_not_null(kwargs["column_list"])).alias(f"_n{i}"))
            continue
        col = F.col(kwargs["column"])
        if exp["type"] != "expect_column_values_to_not_be_null":  # GE's percentage base: non-NULL values
            aggs.append(F.count_if(where & col.isNotNull()).alias(f"_n{i}"))
        if exp["type"] == "expect_column_max_to_be_between":
            aggs.append(F.max(F.when(where, col)).alias(f"_max{i}"))
        elif exp["type"] != "expect_column_values_to_be_unique":
            aggs.append(F.count_if(where & _unexpected(exp, values)).alias(f"_bad{i}"))
    counts |= df.agg(*aggs).collect()[0].asDict()
    for i in keep:
        exp = plan.expectations[i]
        kwargs = exp["kwargs"]
        unique = ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")
        if exp["type"] in unique and i not in errors:
            key = kwargs.get("column_list") or [kwargs["column"]]
            # GE's unexpected rows: every row of a value (combination) seen more than once; a combination
            # is skipped only when all of it is NULL.
            rows = df.where(_row_condition(kwargs) & _any_not_null(key))
            duplicated = rows.groupBy(*key).count().where(F.col("count") > 1)
            counts[f"_bad{i}"] = duplicated.agg(F.sum("count")).first()[0] or 0
            if counts[f"_bad{i}"]:  # GE's examples: the value (a dict of a combination) of each such row
                seen = duplicated.limit(_EXAMPLES).collect()
                shown = [r[key[0]] if len(key) == 1 else {c: r[c] for c in key} for r in seen]
                counts[f"_ex{i}"] = [v for v, r in zip(shown, seen, strict=True) for _ in range(r["count"])]
    with _reference_views(lake, plan, staged):
        view = f"_batch_{uuid.uuid4().hex[:8]}"
        df.createOrReplaceTempView(view)
        try:
            for i in keep:
                exp = plan.expectations[i]
                if exp["type"] == "unexpected_rows_expectation":
                    query = exp["kwargs"]["unexpected_rows_query"].replace("{batch}", view)
                    try:
                        found = lake.spark.sql(f"SELECT count(*) AS n FROM ({query}) q").first()
                        counts[f"_bad{i}"] = found["n"]
                    except PySparkException as exc:  # GE records a query that fails as a failed check
                        errors[i] = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        finally:
            lake.spark.catalog.dropTempView(view)
    for i in keep:
        result.outcomes.append(_sql_outcome(i, plan.expectations[i], counts, values, df))
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def _sql_outcome(
    position: int, exp: Mapping[str, Any], counts: Mapping[str, Any], values: Mapping[str, Any], df: DataFrame
) -> Outcome:
    kwargs = dict(exp["kwargs"])
    rows = int(counts["_rows"])
    result: dict[str, Any]
    error = counts["_errors"].get(position)
    if error:
        success, result = False, {}
    elif exp["type"] == "expect_table_row_count_to_be_between":
        # GE holds the row count to integer bounds: an evaluated 0.6 is 0
        low, high = (
            int(v) if isinstance(v, float) else v
            for v in (_parameter_value(kwargs.get(k), values) for k in ("min_value", "max_value"))
        )
        kwargs |= {"min_value": low, "max_value": high}
        success = (low is None or rows >= low) and (high is None or rows <= high)
        result = {"observed_value": rows}
    elif exp["type"] == "expect_table_columns_to_match_set":
        # GE's schema check: names compared as a set; extra columns fail only an exact match (the default)
        expected = set(_parameter_value(kwargs.get("column_set"), values) or ())
        actual = set(counts["_columns"])
        extra, missing = sorted(actual - expected), sorted(expected - actual)
        exact = _parameter_value(kwargs.get("exact_match", True), values)
        success = not missing and not (extra and exact)
        result = {"observed_value": sorted(actual)}
        if extra or missing:
            mismatched = {"unexpected": extra, "missing": missing}
            result["details"] = {"mismatched": {k: v for k, v in mismatched.items() if v}}
    elif exp["type"] == "unexpected_rows_expectation":
        bad = int(counts[f"_bad{position}"])
        success, result = bad == 0, {"observed_value": f"{bad:,} unexpected rows"}
    elif exp["type"] == "expect_column_max_to_be_between":
        low, high = (_parameter_value(kwargs.get(k), values) for k in ("min_value", "max_value"))
        kwargs |= {"min_value": low, "max_value": high}
        top = counts[f"_max{position}"]
        # GE fails a max it cannot compute (no row meets the condition, every value NULL).
        success = top is not None and (low is None or top >= low) and (high is None or top <= high)
        result = {"observed_value": top}
    else:
        bad = int(counts[f"_bad{position}"])
        column = kwargs.get("column")
        for k in ("value_set", "min_value", "max_value"):
            if k in kwargs:
                kwargs[k] = _parameter_value(kwargs[k], values)
        # GE's percentage: of every row for a NULL check, of the non-NULL values for the others; the rows
        # of a row_condition are the rows checked.
        base = int(counts.get(f"_n{position}", rows))
        rows = int(counts.get(f"_rows{position}", rows))
        # GE's mostly: the share of the rows considered (every row for a NULL check, the non-NULL values
        # or combinations for the others) that is expected; vacuously true when none is considered
        considered = rows if exp["type"] == "expect_column_values_to_not_be_null" else base
        mostly = _parameter_value(kwargs.get("mostly", 1), values)
        success = not rows or not considered or (considered - bad) / considered >= mostly
        # GE's examples of unexpected values, fetched only when there are some
        examples: list[Any] = []
        if bad and exp["type"] == "expect_column_values_to_not_be_null":
            examples = [None] * min(bad, _EXAMPLES)
        elif bad and f"_ex{position}" in counts:
            examples = counts[f"_ex{position}"][:_EXAMPLES]
        elif bad:
            wrong = df.where(_row_condition(kwargs) & _unexpected(exp, values)).select(column)
            examples = [r[0] for r in wrong.limit(_EXAMPLES).collect()]
        result = {
            "element_count": rows,
            "unexpected_count": bad,
            "unexpected_percent": 100.0 * bad / base if base else None,
            "partial_unexpected_list": examples,
        }
        # GE counts no single-column value in an empty batch, or when no row meets the row condition; it
        # counts 0 repeated combinations
        if not rows and exp["type"] != "expect_compound_columns_to_be_unique":
            result["unexpected_count"] = None
    return Outcome(
        position=position,
        expectation=exp["type"],
        column=_column_of(kwargs),
        kwargs=kwargs,
        severity=exp["severity"],
        success=success,
        observed=f"error: {error}" if error else _observed(result, kwargs),
        unexpected_count=result.get("unexpected_count"),
        unexpected_percent=result.get("unexpected_percent"),
        element_count=result.get("element_count"),
        exception=error,
        result_json=json.dumps(
            {
                "success": success,
                "expectation_config": {"type": exp["type"], "kwargs": kwargs},
                "result": result,
            }
            | ({"exception_info": {"raised_exception": True, "exception_message": error}} if error else {}),
            default=str,
            ensure_ascii=False,
        ),
    )


def write_results(lake: Lake, results: list[GateResult]) -> None:
    """Append the results to ``gold.quality_results`` in one commit, under the table's lock (several tasks
    of one run write it, and Sail does not detect conflicting commits)."""
    rows = [row for r in results for row in r.rows()]
    if not rows:
        return
    df = lake.spark.createDataFrame(rows, lake.contracts[RESULTS_TABLE].ddl)
    with lake.lock(RESULTS_TABLE):
        lake.append(RESULTS_TABLE, df)


def validate_gate(results: list[GateResult]) -> None:
    """Raise when any validation failed a critical expectation.

    Raises:
        QualityGateError: naming each failed expectation with its observed value.
    """
    failed = [(r, o) for r in results for o in r.failures]
    if failed:
        lines = "; ".join(f"{r.table} {o.describe()}: {o.observed}" for r, o in failed)
        raise QualityGateError(f"{len(failed)} critical expectation(s) failed: {lines}", results)


def gate_tables(
    lake: Lake,
    batches: Mapping[str, DataFrame],
    dt: str | _dt.date,
    *,
    stage: str,
    parameters: Mapping[str, Any] | None = None,
    contract_paths: tuple[str, ...] = (),
) -> list[GateResult]:
    """The gate of a stage that publishes several tables: validate every batch the stage is about to
    publish with its table's suite, record all results in one commit, and stop on a critical failure.

    Write-audit-publish: the stage first writes its output where nothing downstream reads it (a
    checkpoint or scratch table), calls this gate, and publishes only when it returns. A referential
    check between two tables of the same stage (``meta.references`` naming a table in ``batches``)
    reads the staged batch, so ``gold.profile`` can be checked against the ``gold.tags`` it is published
    with; references to other tables read the published table (``gold.tags`` -> ``gold.oneid_map``).
    A suite with ``meta.gate: sql`` is validated by :func:`validate_sql` (one pass, no GE), the others by GE.

    Example (a tags layer)::

        tags = checkpoint(build_tags(...), "tags")          # write
        gate_tables(lake, {"gold.tags": tags.withColumn("dt", F.lit(day))}, day, stage="tags fact")
        lake.replace_dt("gold.tags", tags, day)             # publish

    Args:
        lake: the lake.
        batches: table (``layer.name``) -> the rows about to be published for ``dt``, with the suite's
            ``meta.dt_column`` set to ``dt`` when the suite names one.
        dt: the logical date.
        stage: who validates (``identity``, ``tags fact``), recorded with the results.
        parameters: known parameter values; the others are looked up (:func:`suite_parameters`).
        contract_paths: extra contract folders.

    Returns:
        One validation per table, in the order given (also appended to ``gold.quality_results``).

    Raises:
        SuiteError: a table has no valid suite (checked for every table before any validation runs).
        QualityGateError: a critical expectation failed; the stage must not publish any of the tables.
    """
    return _gate_batches(
        lake, batches, dt, stage=stage, parameters=parameters, contract_paths=contract_paths, staged=batches
    )


def _gate_batches(
    lake: Lake,
    batches: Mapping[str, DataFrame],
    dt: str | _dt.date,
    *,
    stage: str,
    parameters: Mapping[str, Any] | None,
    contract_paths: tuple[str, ...],
    staged: Mapping[str, DataFrame] | None,
) -> list[GateResult]:
    """Every gate's path: load each table's suite (all checked before any runs), validate each batch with
    :func:`validate_sql` or GE as its ``meta.gate`` says, record all results in one commit, and raise on a
    critical failure. ``staged``: the batches referential checks read instead of the published tables."""
    day = parse_dt(dt)
    plans = {table: load_suite(table, contract_paths=contract_paths) for table in batches}
    for plan in plans.values():
        if _gate_of(plan) == "sql":
            _sql_plan_checked(plan)
    results = [
        (validate_sql if _gate_of(plans[table]) == "sql" else validate)(
            lake,
            plans[table],
            df,
            day,
            stage=stage,
            parameters=parameters,
            contract_paths=contract_paths,
            staged=staged,
        )
        for table, df in batches.items()
    ]
    write_results(lake, results)
    validate_gate(results)
    return results


def _gate_of(plan: SuitePlan) -> str:
    """How a stage's gate validates the table: ``ge`` (the default) or ``sql`` (:func:`validate_sql`).

    Raises:
        SuiteError: ``meta.gate`` is something else.
    """
    gate = (plan.data.get("meta") or {}).get("gate", "ge")
    if gate not in ("ge", "sql"):
        raise SuiteError(f"{plan.origin}: meta.gate: {gate!r} is not ge or sql")
    return gate


def gate(
    lake: Lake,
    table: str,
    df: DataFrame,
    dt: str | _dt.date,
    *,
    stage: str,
    parameters: Mapping[str, Any] | None = None,
    contract_paths: tuple[str, ...] = (),
) -> GateResult:
    """Validate the batch a stage is about to publish to one table, record the results, and stop on a
    critical failure (:func:`gate_tables` for one table).

    Call it between the write (to scratch or a staging table) and the publish.

    Raises:
        QualityGateError: a critical expectation failed; the caller must not publish.
    """
    (result,) = gate_tables(
        lake, {table: df}, dt, stage=stage, parameters=parameters, contract_paths=contract_paths
    )
    return result


def gate_ingest(
    lake: Lake,
    contract: SourceContract,
    dt: str | _dt.date,
    candidates: DataFrame,
    *,
    rows_in: int,
    contract_paths: tuple[str, ...] = (),
) -> list[GateResult]:
    """The ingest gate: the date's ``bronze`` and ``quarantine`` partitions and the silver candidates (the
    rows about to be merged), each with its table's suite, by :func:`validate_sql` when the suite's
    ``meta.gate`` is ``sql`` (the packaged ingest suites), else by GE. Referential checks read published
    tables (bronze and quarantine are already written; the candidates are not silver yet).

    Args:
        lake: the lake.
        contract: the source contract.
        dt: the logical date.
        candidates: the rows about to be merged into ``silver.<entity>``.
        rows_in: records read by this run (the quarantine share's denominator).
        contract_paths: extra contract folders.

    Returns:
        The three validations (also appended to ``gold.quality_results``).

    Raises:
        SuiteError: a table has no valid suite (checked before any validation runs).
        QualityGateError: a critical expectation failed; silver must not be updated.
    """
    day = parse_dt(dt)
    batches: dict[str, DataFrame] = {}
    for table in (bronze_table(contract.name), quarantine_table(contract.name)):
        if lake.exists(table):
            batches[table] = lake.read(table).filter(F.col("dt") == F.lit(day))
    batches[silver_table(contract.entity)] = candidates
    return _gate_batches(
        lake,
        batches,
        day,
        stage=f"ingest {contract.name}",
        parameters={"rows_in": rows_in, "max_bad_share": contract.max_bad_share},
        contract_paths=contract_paths,
        staged=None,
    )


def validate_table(
    lake: Lake,
    table: str,
    dt: str | _dt.date,
    *,
    whole_table: bool = False,
    record: bool = True,
    stage: str = "cdp quality run",
    contract_paths: tuple[str, ...] = (),
) -> GateResult:
    """Validate a published table: the rows of one dt (``meta.dt_column``), or the whole table.

    Args:
        lake: the lake.
        table: ``layer.name``.
        dt: the logical date (the rows validated, and the date the results are filed under).
        whole_table: validate every row, not only the date's.
        record: append the results to ``gold.quality_results``.
        stage: recorded with the results.
        contract_paths: extra contract folders.

    Raises:
        LakeError: the table does not exist.
        SuiteError: the table has no valid suite.
    """
    day = parse_dt(dt)
    plan = load_suite(table, contract_paths=contract_paths)
    df = lake.read(table)
    if plan.dt_column and not whole_table:
        df = df.filter(F.col(plan.dt_column) == F.lit(day))
    result = validate(lake, plan, df, day, stage=stage, contract_paths=contract_paths)
    if record:
        write_results(lake, [result])
    return result
