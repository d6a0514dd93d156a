"""Data quality: row-level contract checks at ingestion (``ingest.rows``) and Great Expectations gates
between stages: one suite file per lake table in ``quality/suites``, validated on the engine's DataFrames,
results in ``gold.quality_results`` and rendered as Data Docs."""

from quality.catalog import (
    ID_FORMATS,
    PARAMETERS,
    SEVERITIES,
    SuiteError,
    SuitePlan,
    derive_suite,
    load_suite,
    suite_tables,
)
from quality.docs import build_docs
from quality.gates import (
    RESULTS_TABLE,
    GateResult,
    Outcome,
    QualityGateError,
    gate,
    gate_ingest,
    gate_tables,
    validate,
    validate_gate,
    validate_table,
    write_results,
)

__all__ = [
    "ID_FORMATS",
    "PARAMETERS",
    "RESULTS_TABLE",
    "SEVERITIES",
    "GateResult",
    "Outcome",
    "QualityGateError",
    "SuiteError",
    "SuitePlan",
    "build_docs",
    "derive_suite",
    "gate",
    "gate_ingest",
    "gate_tables",
    "load_suite",
    "suite_tables",
    "validate",
    "validate_gate",
    "validate_table",
    "write_results",
]
