"""Probabilistic linkage: normalisation and comparison levels (pure Python), the rules section (no engine),
EM on vector counts, the stage on a small noisy population (the issue's targets), and one run from landed
files through ingest, linkage and every identity gate."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from identity.linkage import (
    compare_values,
    estimate,
    level_labels,
    normalize_date,
    normalize_name,
    score_linkage,
    waterfall,
)
from identity.rules import Comparison, IdentityRules, ProbabilisticRules, RulesError, load_rules

MODEL = {
    "enabled": True,
    "attributes": {"name": "name", "birth_date": "date", "phone": "digits", "city": "text"},
    "sources": [{"source": "store_customers", "record_id": "customer_no", "columns": {"name": "name"}}],
    "comparisons": [
        {"attribute": "name", "levels": "jaro_winkler", "thresholds": [0.92, 0.85], "tf_adjust": True},
        {"attribute": "birth_date", "levels": "date"},
        {"attribute": "phone", "levels": "levenshtein", "thresholds": [1, 2]},
        {"attribute": "city", "levels": "exact"},
    ],
    "blocking": [["name"], ["birth_date"], ["phone"], ["name.initials", "birth_date.year"]],
}


# ---- pure Python ------------------------------------------------------------------------------------------


def test_names_in_characters_and_pinyin_normalise_alike():
    assert normalize_name("张晓伟") == "xiaowei zhang"
    assert normalize_name("Xiaowei ZHANG") == "xiaowei zhang"
    assert normalize_name("zhang xiao-wei") == "xiaowei zhang"
    assert normalize_name("  ") is None
    assert normalize_name(None) is None


def test_dates_normalise_and_keep_a_swapped_day_month():
    assert normalize_date("1990-03-05") == "19900305"
    assert normalize_date("1990/3/5") == "19900305"
    assert normalize_date("1990-25-03") == "19902503"  # swapped: compared by the date levels
    assert normalize_date("garbage") is None


def test_comparison_levels():
    date = Comparison(attribute="d", levels="date")
    left = pd.Series(["19900305", "19900305", "19900305", "19900305", "19900305", None])
    right = pd.Series(["19900305", "19900503", "19900306", "19901211", "19851211", "19900305"])
    got = [level_labels(date)[k] if k >= 0 else "missing" for k in compare_values(date, left, right)]
    assert got == ["exact", "day_month_swapped", "one_digit", "same_year", "else", "missing"]

    name = Comparison(attribute="n", levels="jaro_winkler", thresholds=[0.92, 0.8])
    got = compare_values(
        name,
        pd.Series(["xiaowei zhang", "xiaowei zhang", "wei wang"]),
        pd.Series(["xiaowei zhang", "xiaowie zhang", "li na"]),
    )
    assert list(got) == [0, 1, 3]

    phone = Comparison(attribute="p", levels="levenshtein")
    got = compare_values(phone, pd.Series(["13800138000", "13800138000"]), pd.Series(["13800138001", "139"]))
    assert list(got) == [1, 3]


def test_rules_section_is_validated_without_an_engine():
    ProbabilisticRules.model_validate(MODEL)
    bad = dict(MODEL, blocking=[["name.soundex"]])
    with pytest.raises(ValueError, match=r"blocking part 'name\.soundex'"):
        ProbabilisticRules.model_validate(bad)
    bad = dict(MODEL, comparisons=[{"attribute": "email"}])
    with pytest.raises(ValueError, match="not an attribute"):
        ProbabilisticRules.model_validate(bad)


def test_rules_file_errors_name_the_field(tmp_path):
    text = (load_rules.__globals__["RULES_FILE"]).read_text()
    path = tmp_path / "rules.yaml"
    path.write_text(text.replace("levels: date}", "levels: date, thresholds: [1]}"))
    with pytest.raises(RulesError, match=r"rules.yaml: probabilistic.comparisons.1.*take no thresholds"):
        load_rules(path)


def test_gates_accept_the_record_types_of_enabled_linkage():
    rules = load_rules()
    assert rules.probabilistic is not None and not rules.linkage_enabled
    on = rules.model_copy(update={"probabilistic": ProbabilisticRules.model_validate(MODEL)})
    assert isinstance(on, IdentityRules)
    assert "record:store_customers" in on.id_types
    assert ("record:store_customers", "record:store_customers", 3, "probabilistic:person") in on.link_limits()


def test_em_recovers_m_from_vector_counts():
    """Two comparisons, one blocking rule per comparison: matches agree on both 90% of the time,
    non-matches 1% (u known); EM finds m and the share of matches without labels."""
    model = ProbabilisticRules.model_validate(
        dict(
            MODEL,
            attributes={"a": "text", "b": "text", "c": "text"},
            sources=[{"source": "s", "record_id": "k", "columns": {"a": "a"}}],
            comparisons=[{"attribute": x, "levels": "exact"} for x in ("a", "b", "c")],
            blocking=[["a"], ["b"]],
        )
    )
    rng = np.random.default_rng(1)
    rows = []
    for match, n in ((True, 3000), (False, 3000)):
        p = 0.9 if match else 0.01
        g = (rng.random((n, 3)) >= p).astype(int)  # 0 = exact, 1 = else
        rows.append(pd.DataFrame(g, columns=["g_a", "g_b", "g_c"]))
    pairs = pd.concat(rows)
    pairs["_in0"] = pairs["g_a"] == 0
    pairs["_in1"] = pairs["g_b"] == 0
    counts = pairs.groupby(["_in0", "_in1", "g_a", "g_b", "g_c"]).size().rename("n").reset_index()
    u = {x: [0.01, 0.99] for x in ("a", "b", "c")}
    fitted = estimate(counts, u, model)
    for x in ("a", "b", "c"):
        assert fitted.m[x][0] == pytest.approx(0.9, abs=0.04)
    steps = waterfall(fitted, model, {"a": 0, "b": 0, "c": -1})
    assert [s["step"] for s in steps] == ["prior", "a", "b", "c"]
    assert steps[-1]["level"] == "missing" and steps[-1]["weight"] == 0
    assert steps[-1]["cumulative"] == pytest.approx(sum(s["weight"] for s in steps))


def test_score_linkage_counts_pairs_either_way_round():
    truth = pd.DataFrame({"uid_l": ["a", "a", "b"], "uid_r": ["b", "c", "c"], "shares_attribute": [1, 1, 0]})
    predicted = pd.DataFrame({"uid_l": ["b", "a"], "uid_r": ["a", "d"]})
    s = score_linkage(predicted, truth)
    assert (s.correct_pairs, s.precision, s.recall_sharing) == (1, 0.5, 0.5)


# ---- on the engine ----------------------------------------------------------------------------------------


def test_linkage_meets_the_targets_on_a_noisy_population(spark, tmp_path):
    """800 persons, two exports (characters vs pinyin, typos, swapped dates, missing fields, moves):
    precision >= 0.99 and recall >= 0.95 of the true pairs sharing an attribute, without labels."""
    from cdp.run import parquet_checkpoint
    from demo.persons_noisy import generate_exports, true_pairs
    from identity.linkage import link

    records, truth = generate_exports(800, seed=3)
    model = load_rules(
        load_rules.__globals__["RULES_FILE"].parents[1] / "demo/linkage_sources/identity_rules.yaml"
    )
    frame = spark.createDataFrame(records.astype(object).where(records.notna(), None))
    result = link(frame, model.probabilistic, parquet_checkpoint(spark, tmp_path / "scratch"))
    n = len(records)
    assert result.candidates < n * (n - 1) / 2 / 50  # blocking: a small fraction of all pairs
    accepted = result.accepted(model.probabilistic.threshold).select("uid_l", "uid_r").toPandas()
    scores = score_linkage(accepted, true_pairs(records, truth))
    assert scores.precision >= 0.99, scores
    assert scores.recall_sharing >= 0.95, scores
    # The audit holds levels and weights, never a value.
    assert set(result.scored.columns) >= {"match_weight", "match_probability", "deciding"}
    assert not any(c.startswith(("l_", "r_")) for c in result.scored.columns)


def test_linkage_publishes_through_every_gate(spark, settings, tmp_path):
    """Land two attribute-only exports, ingest them, run identity with the linkage: the run publishes,
    the audit names the deciding comparison and holds no name, the waterfall adds up, evaluation scores
    the stage and the graph."""
    import jobs.identity as identity
    import jobs.ingest as ingest
    import jobs.linkage as linkage
    from cdp.lake import Lake
    from demo.persons_noisy import LINKAGE_RULES, LINKAGE_SOURCES, SOURCES, write_exports

    s = dataclasses.replace(
        settings.with_data_root(tmp_path / "data"), contract_paths=(str(LINKAGE_SOURCES),)
    )
    dt = "2026-11-01"
    written = write_exports(s.landing_root, s.truth_root, dt, persons=300, seed=5)
    for source in SOURCES:
        ingest.run(spark, s, source, dt)
    report = identity.run(spark, s, dt, rules_path=LINKAGE_RULES)
    assert report.linkage is not None and report.linkage.accepted > 100
    assert report.identifiers.keys() == {"record:store_customers", "record:web_customers"}
    lake = Lake.from_settings(spark, s)
    pairs = lake.read_dt("gold.id_match_pairs", dt).toPandas()
    assert pairs["accepted"].sum() == report.linkage.accepted
    assert pairs["deciding"].str.match(r"^(name|birth_date|phone|address):").all()
    names = set(pd.read_csv(written["store_customers"])["name"].dropna())
    assert not any(n in text for text in pairs["comparisons"] for n in names)
    best = pairs.sort_values("match_weight").iloc[-1]
    out = linkage.explain_pair(spark, s, best["src_value"], best["dst_value"], dt=dt)
    assert out["waterfall"][-1]["cumulative"] == pytest.approx(best["match_weight"], abs=1e-3)
    assert len(json.loads(best["comparisons"])) == 4
    scores = linkage.evaluate_linkage(spark, s, dt)
    assert scores["probabilistic"].precision >= 0.99 and scores["graph"].precision >= 0.99
    assert scores["graph"].recall_sharing >= 0.9


def test_audit_record_keys_are_hidden_from_analysts():
    from cdp.access import policy_for
    from schemas import load_tables

    columns = [c.name for c in load_tables()["gold.id_match_pairs"].columns]
    hidden = policy_for("analyst").hidden_columns("gold.id_match_pairs", columns)
    assert set(hidden) == {"src_value", "dst_value"}
