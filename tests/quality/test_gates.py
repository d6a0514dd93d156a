"""Quality gates: suite files checked without an engine, identifier formats against the normalisers, and the
gates on real Delta tables: a batch that passes and one that fails a critical expectation (nothing published,
the downstream stage not run), warnings recorded, parameters from the previous dt and the contract, the
standalone ``cdp quality run`` and the Data Docs."""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from typer.testing import CliRunner

from cdp.lake import Lake
from quality import (
    ID_FORMATS,
    QualityGateError,
    SuiteError,
    build_docs,
    derive_suite,
    gate,
    gate_tables,
    load_suite,
    validate,
    validate_table,
)
from quality.catalog import PACKAGED_DIR
from schemas import load_sources

DT1, DT2 = "2026-11-01", "2026-11-02"
MEMBERS = (
    "member_id,name,phone,email,gender,birth_date,province,city,register_channel,register_time,"
    "membership_level,points,wechat_openid,wechat_unionid,updated_at"
)
CONSENT = "record_id,member_id,phone,purpose,status,updated_at"


def member(mid: str, gender: str = "F", updated: str = "2026-10-30 10:00:00") -> str:
    return (
        f"{mid},张伟,138 1234 5678,zhang.wei@qq.com,{gender},1990-05-01,上海,上海,app,2025-01-01 09:00:00,"
        f"gold,120,oAbCdEfGhIjKlMnOpQrStUvWxYz1,,{updated}"
    )


def land(s, source: str, dt: str, header: str, lines: list[str]) -> None:
    folder = Path(s.landing_root) / source / f"dt={dt}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{source}.csv").write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")


def results(lake: Lake, table: str) -> list:
    return lake.read("gold.quality_results").filter(F.col("table_name") == table).collect()


@pytest.fixture()
def env(settings, tmp_path: Path, spark):
    s = dataclasses.replace(settings.with_data_root(tmp_path / "data"), pii_key="quality-test-key")
    return s, Lake(spark, s.lake_root)


# ---- suite files, no engine -----------------------------------------------------------------------------


def test_every_suite_file_is_valid_states_severities_and_covers_its_contract() -> None:
    files = sorted(PACKAGED_DIR.glob("*.json"))
    assert files
    for path in files:
        raw = json.loads(path.read_text(encoding="utf-8"))
        assert all(e.get("severity") in ("critical", "warning") for e in raw["expectations"]), path
        plan = load_suite(path.stem)
        assert plan.path == path and plan.table == raw["meta"]["table"] == path.stem
    for source in load_sources().values():
        for table in (f"bronze.{source.name}", f"quarantine.{source.name}", f"silver.{source.entity}"):
            plan = load_suite(table)
            assert plan.path is not None, f"{table} has no suite file"
            for expected in derive_suite(table)["expectations"]:
                same = [
                    e
                    for e in plan.expectations
                    if (e["type"], e["kwargs"], e["severity"])
                    == (expected["type"], expected["kwargs"], expected["severity"])
                ]
                assert same, f"{plan.path} lacks {expected['type']} {expected['kwargs']} from the contract"


def test_suite_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    def write(name: str, data: object) -> None:
        (tmp_path / f"{name}.json").write_text(json.dumps(data) if not isinstance(data, str) else data)

    nn = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}}
    write("silver.members", {"name": "silver.members", "expectations": [nn]})
    with pytest.raises(SuiteError, match=r"silver\.members\.json: expectations\[0\].*severity: None"):
        load_suite("silver.members", extra=[tmp_path])
    row_count = {
        "type": "expect_table_row_count_to_be_between",
        "kwargs": {"min_value": {"$PARAMETER": "yesterday_rows * 0.5"}},
        "severity": "warning",
    }
    write(
        "silver.orders", {"name": "silver.orders", "meta": {"dt_column": "_dt"}, "expectations": [row_count]}
    )
    with pytest.raises(SuiteError, match=r"unknown \$PARAMETER name\(s\) \['yesterday_rows'\]"):
        load_suite("silver.orders", extra=[tmp_path])
    write("silver.events", "{not json")
    with pytest.raises(SuiteError, match=r"silver\.events\.json: not valid JSON"):
        load_suite("silver.events", extra=[tmp_path])
    write("silver.consent", {"name": "silver.members", "expectations": [nn | {"severity": "critical"}]})
    with pytest.raises(SuiteError, match=r"name the file silver\.members\.json"):
        load_suite("silver.consent", extra=[tmp_path])
    with pytest.raises(SuiteError, match=r"no suite for gold\.nothing"):
        load_suite("gold.nothing")


# ---- identifier formats on the engine -------------------------------------------------------------------


def test_id_formats_accept_what_the_normalisers_produce(spark) -> None:
    from identity.normalize import NORMALIZERS

    raw = {
        "phone": ["138 1234 5678", "+44 20 7946 0958", "E10ADC3949BA59ABBE56E057F20F883E"],
        "email": [" Zhang.Wei@QQ.com "],
        "imei": ["86-123456-789012-3", "A1000012345678"],
        "oaid": ["ABCDEF01-2345-6789-ABCD-EF0123456789", "1234abcd5678ef90"],
        "idfa": ["abcdef01-2345-6789-abcd-ef0123456789", "e10adc3949ba59abbe56e057f20f883e"],
        "android_id": ["3c9f5e2a1b4d6e7", "9F3C5E2A1B4D6E70"],
        "wechat_openid": ["oAbCdEfGhIjKlMnOpQrStUvWxYz1"],
        "wechat_unionid": ["o6_bmasdasdsad6_2sgVt7hMZOPfL"],
        "member_id": ["m001", " vip-2024_07 "],
        "cookie": ["0123456789abcdef0123456789abcdef"],
    }
    rows = [(t, v) for t, values in raw.items() for v in values]
    df = spark.createDataFrame(rows, "id_type string, raw string")
    checks = [
        F.when(F.col("id_type") == t, F.struct(NORMALIZERS[t](F.col("raw")).alias("v"))) for t in ID_FORMATS
    ]
    got = df.select("id_type", "raw", F.coalesce(*checks)["v"].alias("v"))
    got = got.select(
        "id_type", "raw", "v", *[F.col("v").rlike(p).alias(t) for t, p in ID_FORMATS.items()]
    ).collect()
    for r in got:
        assert r["v"] is not None, r
        assert r[r["id_type"]], f"{r['id_type']} {r['v']!r} does not match {ID_FORMATS[r['id_type']]}"
    # raw forms are not canonical
    assert not [r for r in got if r["raw"] == "138 1234 5678" and r["phone"] and r["v"] == r["raw"]]


# ---- the ingest gate ------------------------------------------------------------------------------------


def test_ingest_gate_passes_records_results_and_warnings(spark, env) -> None:
    from jobs import ingest

    s, lake = env
    land(s, "crm_members", DT1, MEMBERS, [member("M001"), member("M002"), member("M003", gender="X")])
    report = ingest.run(spark, s, "crm_members", DT1)
    assert report.status == "ok" and report.silver_written == 3 and report.quality_seconds > 0
    assert report.steps["counts"] <= report.steps["quality"] <= report.steps["merge"]
    silver = results(lake, "silver.members")
    assert silver and all(r.gate_passed and r.stage == "ingest crm_members" for r in silver)
    assert {r.table_name for r in lake.read("gold.quality_results").collect()} == {
        "bronze.crm_members",
        "quarantine.crm_members",
        "silver.members",
    }
    (gender,) = [r for r in silver if r.column_name == "gender"]
    assert (gender.success, gender.severity, gender.unexpected_count) == (False, "warning", 1)
    assert '"X"' in gender.observed_value
    assert all(r.success for r in silver if r.severity == "critical")
    # the quarantine share is held to the contract: at most 3 rows x 5%, i.e. no row (counts are integers)
    (share,) = [
        r for r in results(lake, "quarantine.crm_members") if r.expectation.startswith("expect_table")
    ]
    assert share.success and json.loads(share.kwargs_json)["max_value"] == 0

    # no earlier dt: the row-count change is skipped, then compared on the next date
    def row_count_change() -> list:
        return [r for r in results(lake, "bronze.crm_members") if "row_count" in r.expectation]

    assert row_count_change() == []
    land(
        s,
        "crm_members",
        DT2,
        MEMBERS,
        [member(f"N{i:03d}", updated="2026-11-01 10:00:00") for i in range(20)],
    )
    ingest.run(spark, s, "crm_members", DT2)
    (change,) = row_count_change()
    assert (change.success, change.severity, change.observed_value) == (
        False,
        "warning",
        "20 (expected 0..15)",  # GE truncates row-count bounds to integers
    )
    assert lake.read("silver.members").count() == 23  # a warning does not stop the publish


def test_ingest_gate_failure_publishes_nothing_and_stops_the_downstream_stages(spark, env) -> None:
    from jobs import ingest
    from jobs.ingest import IngestError
    from runners.local import run_stages

    s, lake = env
    land(s, "consent", DT1, CONSENT, ["r1,M001,,all,opt_out,2026-10-31 08:00:00"])
    ingest.run(spark, s, "consent", DT1)
    before = sorted(tuple(r) for r in lake.read("silver.consent").collect())
    # "maybe" is a valid string, so the row passes the contract, but consent filtering cannot apply it
    land(
        s,
        "consent",
        DT2,
        CONSENT,
        ["r1,M001,,all,opt_in,2026-11-01 09:00:00", "r2,M002,,ads,maybe,2026-11-01 09:00:00"],
    )
    with pytest.raises(IngestError, match="critical expectation") as exc:
        run_stages(s, [datetime.date.fromisoformat(DT2)], only=["ingest", "identity"])
    assert exc.value.report.status == "failed_quality" and exc.value.report.held_back == 2
    assert exc.value.report.balanced
    assert sorted(tuple(r) for r in lake.read("silver.consent").collect()) == before  # r1 still opt_out
    assert lake.read("bronze.consent").filter(F.col("dt") == DT2).count() == 2  # written, as landed
    # every source of the date ran, as the daily DAG's mapped ingest tasks do; only consent failed
    run = {r.source: r.status for r in lake.read("gold.ingest_runs").filter(F.col("dt") == DT2).collect()}
    assert run.pop("consent") == "failed_quality"
    assert set(run) == set(load_sources()) - {"consent"} and set(run.values()) == {"no_files"}
    failed = [r for r in results(lake, "silver.consent") if not r.success]
    assert [(r.column_name, r.severity, r.gate_passed) for r in failed] == [("status", "critical", False)]
    assert '"maybe"' in failed[0].observed_value
    # the stages after the failed ingest did not run for this date
    assert not lake.exists("gold.oneid_map")


# ---- generic gates for later stages ---------------------------------------------------------------------


def test_gate_on_a_staged_table_publishes_only_when_it_passes(spark, lake) -> None:
    day = datetime.date.fromisoformat(DT1)
    oneid_map = spark.createDataFrame(
        [
            ("phone", "a1" * 32, 1, 10),
            ("oaid", "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", 2, 10),
            ("member_id", "M001", 3, 11),
        ],
        "id_type string, id_value string, vid long, oneid long",
    ).withColumn("dt", F.lit(day))
    passed = gate(lake, "gold.oneid_map", oneid_map, DT1, stage="identity")
    assert (
        passed.passed
        and passed.skipped
        == ["expect_table_row_count_to_be_between: no value yet for previous_row_count"] * 2
    )
    lake.replace_dt("gold.oneid_map", oneid_map.drop("dt"), day)  # publish after the audit

    # a change pointing at a OneID that is not in the map: the referential check stops the publish
    changes = spark.createDataFrame(
        [("merged", 12, 10, 1), ("merged", 13, 99, 2)],
        "change_type string, old_oneid long, new_oneid long, identifiers long",
    ).withColumn("dt", F.lit(day))
    with pytest.raises(QualityGateError, match=r"gold\.oneid_changes unexpected_rows_expectation: 1") as exc:
        gate(lake, "gold.oneid_changes", changes, DT1, stage="identity")
        lake.replace_dt("gold.oneid_changes", changes.drop("dt"), day)
    assert not lake.exists("gold.oneid_changes")
    (result,) = exc.value.results
    assert [o.severity for o in result.failures] == ["critical"]
    recorded = lake.read("gold.quality_results").filter(~F.col("success")).collect()
    assert [(r.table_name, r.gate_passed) for r in recorded] == [("gold.oneid_changes", False)]

    # duplicated identifiers in a new snapshot fail the key check; row count is compared with the last dt
    dupes = oneid_map.unionByName(oneid_map.limit(1)).withColumn("dt", F.lit(datetime.date(2026, 11, 2)))
    failed = validate(lake, load_suite("gold.oneid_map"), dupes, DT2, stage="identity")
    assert [(o.expectation, o.column) for o in failed.failures] == [
        ("expect_compound_columns_to_be_unique", "id_type,id_value"),
        ("expect_column_values_to_be_unique", "vid"),
    ]
    assert failed.parameters["previous_row_count"] == 3 and not failed.skipped


# ---- standalone runs and Data Docs -----------------------------------------------------------------------


@pytest.mark.slow  # six suite runs and two docs builds: over 5 s of its own
def test_quality_run_and_docs_on_published_tables(spark, env, tmp_path: Path) -> None:
    from apps.cli.main import app
    from jobs import ingest

    s, lake = env
    land(s, "crm_members", DT1, MEMBERS, [member("M001"), member("M002")])
    ingest.run(spark, s, "crm_members", DT1)
    runner = CliRunner()

    def cdp(*args: str):
        return runner.invoke(app, [*args, "--data-root", s.data_root], env={"CDP_PII_KEY": "x"})

    for table in ("silver.members", "bronze.crm_members", "quarantine.crm_members", "gold.ingest_runs"):
        out = cdp("quality", "run", table, "--dt", DT1)
        assert out.exit_code == 0, (table, out.output)
        assert "passed" in out.output
    # the standalone quarantine check reads rows_in from the run log and the threshold from the contract
    quarantine = validate_table(lake, "quarantine.crm_members", DT1, record=False)
    assert quarantine.parameters == {"rows_in": 2, "max_bad_share": 0.05} and not quarantine.skipped

    # a published table that breaks its key: exit 1 and the failure recorded
    lake.append("silver.members", lake.read("silver.members").filter(F.col("member_id") == "M001"))
    out = cdp("quality", "run", "silver.members", "--dt", DT1)
    assert out.exit_code == 1 and "FAILED" in out.output
    latest = lake.read("gold.quality_results").filter(~F.col("gate_passed")).collect()
    assert {(r.expectation, r.column_name, r.unexpected_count) for r in latest if not r.success} == {
        ("expect_compound_columns_to_be_unique", "_source,member_id", 2)
    }
    assert cdp("quality", "run", "silver.nothing", "--dt", DT1).exit_code == 2

    index = build_docs(lake, tmp_path / "docs")
    assert index.is_file()
    pages = list((index.parent / "validations" / "silver" / "members").rglob("*.html"))
    assert len(pages) == 3  # the ingest gate and two standalone runs
    (failed,) = [p for p in pages if "cdp-quality-run.FAILED" in str(p)]
    assert "compound columns must be unique together" in failed.read_text(encoding="utf-8")
    out = cdp("quality", "docs", "--output", str(tmp_path / "docs2"))
    assert out.exit_code == 0 and "index.html" in out.output


def test_stage_gate_checks_references_against_staged_batches_and_publishes_all_or_nothing(
    spark, lake
) -> None:
    """gate_tables, the helper later stages call: a referential check between two tables of one stage
    reads the staged batch; one failure stops the publish of every table of the stage."""
    day = datetime.date.fromisoformat(DT1)
    oneid_map = spark.createDataFrame(
        [("member_id", "M001", 1, 10), ("member_id", "M002", 2, 11)],
        "id_type string, id_value string, vid long, oneid long",
    ).withColumn("dt", F.lit(day))
    changes = spark.createDataFrame(
        [("merged", 12, 10, 1)], "change_type string, old_oneid long, new_oneid long, identifiers long"
    ).withColumn("dt", F.lit(day))

    def report(
        singletons: int, largest: int = 3, id_types: tuple[str, ...] = ("member_id", "phone")
    ) -> DataFrame:
        rows = [
            ("oneids", "all", 100.0),
            ("component_size", "1", float(singletons)),
            ("largest_component", "10", float(largest)),
            *[("identifiers", t, 60.0) for t in id_types],
        ]
        return spark.createDataFrame(rows, "metric string, dimension string, value double").select(
            "metric", "dimension", "value", F.lit(None).cast("string").alias("detail"), F.lit(day).alias("dt")
        )

    # the map is not published yet: the changes are checked against the staged map
    staged = {"gold.oneid_map": oneid_map, "gold.oneid_changes": changes, "gold.identity_report": report(45)}
    results = gate_tables(lake, staged, DT1, stage="identity")
    assert [r.table for r in results] == list(staged) and all(r.passed and not r.warnings for r in results)

    # identity report bounds: singleton share and the largest component, each critical past a hard bound
    # and a warning past the usual range
    checks = {
        (45, 3): ([], []),
        (90, 3): ([], ["unexpected_rows_expectation"]),
        (97, 3): (["unexpected_rows_expectation"], ["unexpected_rows_expectation"]),
        (45, 80): ([], ["expect_column_max_to_be_between"]),
        (45, 900): (["expect_column_max_to_be_between"], ["expect_column_max_to_be_between"]),
    }
    plan = load_suite("gold.identity_report")
    for (singletons, largest), (critical, warnings) in checks.items():
        result = validate(lake, plan, report(singletons, largest), DT1, stage="test")
        assert [o.expectation for o in result.failures] == critical, (singletons, largest)
        assert [o.expectation for o in result.warnings] == warnings, (singletons, largest)
    # with one ID type nothing can link: all singletons is what such a source gives, not a broken join
    one_type = validate(lake, plan, report(100, 1, ("member_id",)), DT1, stage="test")
    assert one_type.failures == [] and [o.expectation for o in one_type.warnings] == [
        "unexpected_rows_expectation"
    ]

    # a change pointing at a OneID missing from the staged map: nothing of the stage is published
    bad = changes.unionByName(changes.withColumn("new_oneid", F.lit(99)))
    with pytest.raises(QualityGateError, match=r"gold\.oneid_changes unexpected_rows_expectation") as exc:
        gate_tables(lake, {**staged, "gold.oneid_changes": bad}, DT1, stage="identity")
        for table, df in staged.items():
            lake.replace_dt(table, df.drop("dt"), day)
    assert [r.passed for r in exc.value.results] == [True, False, True]
    assert lake.tables() == ["gold.quality_results"]


def test_tags_gate_passes_and_fails_on_referential_and_coverage_checks(spark, lake) -> None:
    """The suites the tags stage is gated with: every OneID in gold.tags exists in the map of the date, and
    tag coverage stays within bounds; a failure publishes nothing."""
    day = datetime.date.fromisoformat(DT1)
    oneid_map = spark.createDataFrame(
        [("member_id", "M001", 1, 10), ("member_id", "M002", 2, 11)],
        "id_type string, id_value string, vid long, oneid long",
    )
    lake.replace_dt("gold.oneid_map", oneid_map, day)
    tags = spark.createDataFrame(
        [("10", "gender", "F"), ("10", "rfm_segment", "champion"), ("11", "gender", "M")],
        "oneid string, tag_id string, value string",
    ).withColumn("dt", F.lit(day))
    # A predictive tag whose model was not trained (too little history) is NULL everywhere: a warning only.
    stats = spark.createDataFrame(
        [
            ("gender", "raw", 2, 2, 1.0),
            ("rfm_segment", "model", 2, 1, 0.5),
            ("churn", "predictive", 2, 0, 0.0),
        ],
        "tag_id string, layer string, population long, non_null long, coverage double",
    ).select(
        "*",
        F.lit(None).cast("double").alias("coverage_change"),
        F.lit(None).cast("string").alias("metric"),
        F.lit(None).cast("string").alias("coverage_warning"),
        F.lit(day).alias("dt"),
    )
    passed = gate_tables(lake, {"gold.tags": tags, "gold.tag_stats": stats}, DT1, stage="tags")
    assert all(r.passed for r in passed)
    warned = {o.expectation for r in passed for o in r.outcomes if not o.success}
    assert warned == {"unexpected_rows_expectation"}

    stray = tags.unionByName(tags.limit(1).withColumn("oneid", F.lit("99")))
    empty = stats.unionByName(stats.limit(1).select("tag_id", F.lit("fact").alias("layer"), "population",
                                                    F.lit(0).cast("long").alias("non_null"),
                                                    F.lit(0.0).alias("coverage"), "coverage_change", "metric",
                                                    "coverage_warning", "dt")
                              .withColumn("tag_id", F.lit("never_set")))  # fmt: skip
    with pytest.raises(QualityGateError) as exc:
        gate_tables(lake, {"gold.tags": stray, "gold.tag_stats": empty}, DT1, stage="tags")
        lake.replace_dt("gold.tags", stray.drop("dt"), day)
    failed = {(r.table, o.expectation) for r in exc.value.results for o in r.failures}
    assert failed == {
        ("gold.tags", "unexpected_rows_expectation"),  # OneID 99 is not in the map
        ("gold.tag_stats", "unexpected_rows_expectation"),  # a tag no OneID has
    }
    assert not lake.exists("gold.tags")


def test_the_one_pass_sql_gate_gives_the_outcomes_of_great_expectations(spark, lake) -> None:
    """gold.tags is gated in one SQL pass (meta.gate: sql): NULLs, regex misses, OneIDs missing from the
    map and the row count against the previous dt come out as GE finds them, with the suite's severities."""
    from quality.gates import validate, validate_sql

    day = datetime.date.fromisoformat(DT2)
    lake.replace_dt(
        "gold.oneid_map",
        spark.createDataFrame(
            [("member_id", "M1", 1, 10)], "id_type string, id_value string, vid long, oneid long"
        ),
        day,
    )
    previous = spark.createDataFrame(
        [("10", "gender", "F")] * 10, "oneid string, tag_id string, value string"
    )
    lake.replace_dt("gold.tags", previous, datetime.date.fromisoformat(DT1))
    batch = spark.createDataFrame(
        [
            ("10", "gender", "F"),
            ("10", "Bad-Tag", None),
            (None, "city", "x"),
            ("99", "city", "y"),
            ("0", "a", "b"),
        ],
        "oneid string, tag_id string, value string",
    ).withColumn("dt", F.lit(day))
    plan = load_suite("gold.tags")
    assert plan.data["meta"]["gate"] == "sql"
    sql = validate_sql(lake, plan, batch, DT2, stage="test")
    ge = validate(lake, plan, batch, DT2, stage="test")

    def outcomes(result):
        return [
            (o.position, o.expectation, o.severity, o.success, o.unexpected_count) for o in result.outcomes
        ]

    assert outcomes(sql) == outcomes(ge)
    checks = [o for o in sql.outcomes if o.expectation != "expect_table_row_count_to_be_between"]
    assert {o.describe(): o.success for o in checks} == {
        "expect_column_values_to_not_be_null(oneid)": False,
        "expect_column_values_to_not_be_null(tag_id)": True,
        "expect_column_values_to_not_be_null(value)": False,
        "expect_column_values_to_match_regex(oneid)": False,
        "expect_column_values_to_match_regex(tag_id)": False,
        "unexpected_rows_expectation": False,  # 99 and 0 are not in the map (the NULL neither)
    }
    # 5 rows after 10: above a fifth (critical), below 0.7 of the previous dt (a warning)
    assert [o.severity for o in sql.outcomes if o.expectation == "expect_table_row_count_to_be_between"] == [
        "critical",
        "warning",
    ]
    assert [o.success for o in sql.outcomes if o.expectation == "expect_table_row_count_to_be_between"] == [
        True,
        False,
    ]
    regex = next(o for o in sql.outcomes if o.describe() == "expect_column_values_to_match_regex(tag_id)")
    assert "Bad-Tag" in regex.observed and regex.unexpected_count == 1


def test_the_sql_gate_of_the_identity_and_tag_tables_finds_what_great_expectations_finds(spark, lake) -> None:
    """The map, the changes, the identity report and the tag stats are gated in one SQL pass too: sets,
    bounds, maxima, uniqueness (every row of a repeated value, as GE counts) and checks under a row
    condition give GE's outcomes, also on an empty batch."""
    from quality.gates import validate, validate_sql

    day = datetime.date.fromisoformat(DT2)
    email = "a" * 64
    batch = spark.createDataFrame(
        [
            ("member_id", "M0001", 1, 10),
            ("member_id", "M0001", 2, 10),  # a repeated identifier, and vid 2 twice
            ("email", email, 2, 11),
            ("email", "not-a-hash", 3, 0),  # a regex miss under its row condition, a OneID below 1
            ("fax", "123", 4, 12),  # an ID type outside the set
            ("phone", None, 5, None),
        ],
        "id_type string, id_value string, vid long, oneid long",
    ).withColumn("dt", F.lit(day))
    stats = spark.createDataFrame(
        [("a", "raw", 1.5, 10, None), ("a", "bad", 0.5, 0, None), ("b", "fact", 0.2, 10, 0.5)],
        "tag_id string, layer string, coverage double, population long, coverage_change double",
    ).withColumns(
        {
            "coverage_warning": F.lit(None).cast("string"),
            "metric": F.lit(None).cast("string"),
            "dt": F.lit(day),
        }
    )

    def outcomes(result):
        return [
            (o.position, o.expectation, o.severity, o.success, o.unexpected_count) for o in result.outcomes
        ]

    report = spark.createDataFrame(
        [("oneids", "all", 0.0), ("largest_component", "all", 60.0), ("bogus", None, None)],
        "metric string, dimension string, value double",
    ).withColumn("dt", F.lit(day))
    no_component = report.where("metric <> 'largest_component'")
    changes = spark.createDataFrame(
        [("merged", 1, 2, 3), ("renamed", None, None, 1)],
        "change_type string, old_oneid long, new_oneid long, identifiers long",
    ).withColumn("dt", F.lit(day))
    lake.replace_dt("gold.oneid_map", batch.drop("dt"), day)  # what the changes refer to
    parameters = {"id_types": ["member_id", "email", "phone"]}
    batches = [
        ("gold.oneid_map", batch),
        ("gold.tag_stats", stats),
        ("gold.identity_report", report),
        ("gold.identity_report", no_component),
        ("gold.oneid_changes", changes),
        ("gold.oneid_changes", changes.limit(0)),
    ]
    for table, df in batches:
        plan = load_suite(table)
        assert plan.data["meta"]["gate"] == "sql"
        sql = validate_sql(lake, plan, df, DT2, stage="test", parameters=parameters)
        ge = validate(lake, plan, df, DT2, stage="test", parameters=parameters)
        assert outcomes(sql) == outcomes(ge), table
        assert [o.observed for o in sql.outcomes if "max" in o.expectation] == [
            o.observed for o in ge.outcomes if "max" in o.expectation
        ]


def _broken(spark, df: DataFrame, plan, rows: int = 300) -> DataFrame:
    """``rows`` rows of ``df`` with one row broken against each expectation of ``plan`` (a row each): a
    NULL, a string off the pattern or outside the set, a number just outside the bounds, a key repeated
    from the next row, a quarantined row without a reason."""
    from decimal import Decimal

    from pyspark.sql.types import DecimalType, StringType, StructField, StructType

    data = [r.asDict() for r in df.limit(rows).collect()]
    assert data, plan.table
    data = [dict(data[i % len(data)]) for i in range(max(len(data), len(plan.expectations) + 2))]
    types = {f.name: f.dataType for f in df.schema.fields}
    for i, exp in enumerate(plan.expectations):
        row, kwargs, kind = data[i], exp["kwargs"], exp["type"]
        column = kwargs.get("column")
        if kind == "expect_column_values_to_not_be_null":
            row[column] = None
        elif kind in ("expect_column_values_to_match_regex", "expect_column_values_to_be_in_set"):
            if isinstance(types[column], StringType):
                row[column] = "not a valid value!"
        elif kind == "expect_column_values_to_be_between":
            low, high = kwargs.get("min_value"), kwargs.get("max_value")
            value = low - 1 if low is not None else high + 1
            row[column] = (
                Decimal(value) if isinstance(types[column], DecimalType) else type(row[column] or 0)(value)
            )
        elif kind == "expect_compound_columns_to_be_unique":
            row.update({c: data[i + 1][c] for c in kwargs["column_list"]})
        elif kind == "unexpected_rows_expectation" and "_reasons" in row:
            row["_reasons"] = []
    schema = StructType([StructField(f.name, f.dataType, True) for f in df.schema.fields])  # NULLs allowed
    return spark.createDataFrame(data, schema)


def test_the_sql_gate_of_the_ingest_suites_finds_what_great_expectations_finds(spark, demo_lake) -> None:
    """bronze, quarantine and silver are gated in one SQL pass at ingest (the demo lake was built through
    it): on the rows of two sources broken against each expectation, empty, and with a column missing or
    one too many, every expectation passes or fails as in GE, the schema check with GE's mismatch details,
    ``mostly`` (one bad row in 300 passes 0.99) and row counts with GE's integer bounds."""
    from quality.gates import validate, validate_sql
    from schemas import load_source

    lake = Lake(spark, demo_lake.settings.lake_root)
    day = datetime.date.fromisoformat(demo_lake.dt)

    def outcomes(result):
        return [
            (o.position, o.expectation, o.severity, o.success, o.unexpected_count) for o in result.outcomes
        ]

    def details(result):
        return [
            (o.observed, json.loads(o.result_json)["result"].get("details"))
            for o in result.outcomes
            if o.expectation == "expect_table_columns_to_match_set"
        ]

    for source in ("orders", "events"):
        entity = load_source(source).entity
        batches = []
        for table in (f"bronze.{source}", f"quarantine.{source}", f"silver.{entity}"):
            plan = load_suite(table)
            assert plan.data["meta"]["gate"] == "sql", table
            rows = lake.read(table).filter(F.col(plan.dt_column) == F.lit(day))
            batches.append((plan, _broken(spark, rows, plan)))
        silver_plan, silver = batches[-1]
        required = next(e["kwargs"]["column"] for e in silver_plan.expectations if "not_be_null" in e["type"])
        batches += [
            (silver_plan, silver.limit(0)),
            (silver_plan, silver.drop(required)),
            (silver_plan, silver.withColumn("extra_column", F.lit(1))),
        ]
        # 300 bronze rows against 0.2x..5x of 1,503: at least 300.6, which GE truncates to 300 (passes);
        # quarantine at most 20 x 0.1 = 2 rows (fails)
        parameters = {"previous_row_count": 5 * 300 + 3, "rows_in": 20, "max_bad_share": 0.1}
        sql = []
        for plan, df in batches:
            sql.append(validate_sql(lake, plan, df, day, stage="test", parameters=parameters))
            ge = validate(lake, plan, df, day, stage="test", parameters=parameters)
            assert outcomes(sql[-1]) == outcomes(ge), plan.table
            assert details(sql[-1]) == details(ge), plan.table
        bronze, quarantine, broken, empty, missing, extra = sql
        assert not bronze.passed and not quarantine.passed and not broken.passed and empty.passed
        assert [o.success for o in bronze.outcomes if "row_count" in o.expectation] == [True]
        assert [o.success for o in quarantine.outcomes if "row_count" in o.expectation] == [False]
        assert all(not o.success for o in broken.outcomes if "not_be_null" in o.expectation)
        # one bad row in 300: a failure, unless the check allows 1% (orders' quantity, amount and status)
        assert [o.success for o in broken.outcomes if o.unexpected_count == 1] == [
            bool(o.kwargs.get("mostly")) for o in broken.outcomes if o.unexpected_count == 1
        ]
        assert any(o.kwargs.get("mostly") for o in broken.outcomes) == (source == "orders")
        (schema,) = [o for o in missing.outcomes if o.expectation == "expect_table_columns_to_match_set"]
        assert not schema.success
        assert json.loads(schema.result_json)["result"]["details"] == {"mismatched": {"missing": [required]}}
        assert any(o.exception and required in o.exception for o in missing.failures)
        (schema,) = [o for o in extra.outcomes if o.expectation == "expect_table_columns_to_match_set"]
        assert not schema.success and '"extra_column"' in schema.observed
