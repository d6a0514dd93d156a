"""Great Expectations Data Docs from ``gold.quality_results``: the HTML site a data engineer opens to see
each validation, its expectations, observed values and example unexpected values.

The results table is the record; the site is rebuilt from it into a GE file context under the data root (never
the repository), so validations written by any process or machine (Airflow tasks, ``cdp quality run``) show
up, and the site can be deleted and rebuilt at will.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from collections import defaultdict
from contextlib import suppress
from pathlib import Path
from typing import Any

from pyspark.sql import functions as F

from cdp.lake import Lake, LakeError
from quality.catalog import SuiteError, load_suite
from quality.gates import RESULTS_TABLE

_COLUMNS = (
    "run_id",
    "table_name",
    "stage",
    "suite",
    "position",
    "gate_passed",
    "validated_at",
    "result_json",
    "dt",
)


def build_docs(
    lake: Lake, folder: str | Path, *, days: int | None = 30, contract_paths: tuple[str, ...] = ()
) -> Path:
    """Render the validations recorded in ``gold.quality_results`` as GE Data Docs.

    Args:
        lake: the lake holding ``gold.quality_results``.
        folder: where the GE project (``gx/``) and its site are written; replaced on every build.
        days: only validations of the latest ``days`` logical dates (all when None).
        contract_paths: extra contract folders (suites derived for new sources).

    Returns:
        The site's ``index.html``.

    Raises:
        LakeError: no validation has been recorded yet.
    """
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    if not lake.exists(RESULTS_TABLE):
        raise LakeError(f"{RESULTS_TABLE} does not exist yet: run a stage or 'cdp quality run' first")
    results = lake.read(RESULTS_TABLE).select(*_COLUMNS)
    if days is not None:
        latest = results.agg(F.max("dt").alias("d")).first()["d"]
        if latest is not None:
            results = results.filter(F.col("dt") > F.lit(latest - _dt.timedelta(days=days)))
    runs: dict[str, list[Any]] = defaultdict(list)
    for row in results.collect():  # results of a few dates: a few rows per expectation and validation
        runs[row["run_id"]].append(row)

    root = Path(folder).resolve()
    shutil.rmtree(root / "gx", ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=root)
    context.variables.progress_bars = {"globally": False}
    for table in sorted({r["table_name"] for rows in runs.values() for r in rows}):
        with suppress(SuiteError):  # a suite gone or broken since: its past validations still render
            context.suites.add(load_suite(table, contract_paths=contract_paths).expectation_suite())
    for rows in runs.values():
        rows.sort(key=lambda r: r["position"])
        first = rows[0]
        outcomes = [ExpectationValidationResult(**json.loads(r["result_json"])) for r in rows]
        passed = sum(1 for o in outcomes if o.success)
        day = first["dt"].isoformat()
        verdict = "passed" if first["gate_passed"] else "FAILED"
        run_id = RunIdentifier(
            # The run name becomes a folder of the site: no spaces.
            run_name=f"{day}.{first['stage'].replace(' ', '-')}.{verdict}",
            run_time=first["validated_at"].replace(tzinfo=_dt.UTC),
        )
        suite_result = ExpectationSuiteValidationResult(
            success=passed == len(outcomes),
            results=outcomes,
            suite_name=first["table_name"],
            statistics={
                "evaluated_expectations": len(outcomes),
                "successful_expectations": passed,
                "unsuccessful_expectations": len(outcomes) - passed,
                "success_percent": 100.0 * passed / len(outcomes) if outcomes else None,
            },
            meta={
                "great_expectations_version": gx.__version__,
                "run_id": run_id,
                "batch_spec": {
                    "data_asset_name": first["table_name"],
                    "dt": day,
                    "stage": first["stage"],
                    "suite": first["suite"],
                    "gate": verdict,
                },
                "batch_markers": {},
            },
        )
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=first["table_name"]),
            run_id=run_id,
            batch_identifier=f"{first['table_name']}-{day}-{first['run_id']}",
        )
        context.validation_results_store.set(key, suite_result)
    context.build_data_docs()
    return root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
