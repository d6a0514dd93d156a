"""The rule DSL: parsing and validation without an engine, then the Spark column on a small profile."""

from __future__ import annotations

import datetime

import pytest

from audiences import RuleError, UnknownTagError, parse_rule, validate_rule
from audiences.rules import (
    MAX_RULE_DEPTH,
    MAX_RULE_NODES,
    Behaviour,
    build_rule_column,
    load_rule_text,
    to_document,
)
from audiences.spec import audience_id_of, parse_audience
from schemas import load_sources

COLUMNS = {
    "oneid": "string",
    "dt": "date",
    "gender": "string",
    "age_band": "string",
    "city": "string",
    "purchase_count_30d": "bigint",
    "monetary_90d": "double",
    "is_member": "boolean",
    "last_order_date": "date",
    "interests": "array<string>",
}


def test_nested_rule_parses_and_keeps_its_document() -> None:
    rule = parse_rule(
        {
            "all": [
                {"tag": "gender", "op": "=", "value": "F"},
                {
                    "any": [
                        {"tag": "age_band", "op": "in", "value": ["18-24", "25-34"]},
                        {"not": {"tag": "city", "op": "=", "value": "上海"}},
                    ]
                },
                {"tag": "monetary_90d", "op": "between", "value": [100, 500]},
                {"behaviour": {"source": "events", "within_days": 7, "where": {"event_type": "add_to_cart"}}},
            ]
        }
    )
    assert rule.tags() == ["gender", "age_band", "city", "monetary_90d"]
    assert rule.behaviours() == [Behaviour("events", 7, (("event_type", ("add_to_cart",)),), 1)]
    validate_rule(rule, COLUMNS, load_sources())
    again = parse_rule(to_document(rule.root))
    assert again.root == rule.root and again.to_json() == rule.to_json()


def test_engaged_expands_into_behaviours() -> None:
    rule = parse_rule({"engaged": {"creators": ["kol_1"], "campaigns": ["c9"], "within_days": 14}})
    assert rule.behaviours() == [
        Behaviour("kol_engagement", 14, (("creator_id", ("kol_1",)),), 1),
        Behaviour("ad_delivery", 14, (("campaign_id", ("c9",)), ("event_type", ("click", "conversion"))), 1),
    ]
    validate_rule(rule, COLUMNS, load_sources())


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"tag": "gender", "op": "~", "value": "F"}, "rule.op: unknown operator '~'"),
        ({"tag": "gender", "op": "in", "value": "F"}, "rule.value: in needs a non-empty list"),
        ({"all": []}, "rule.all: expected a non-empty list"),
        (
            {"all": [{"tag": "gender", "value": "F"}, {"foo": 1}]},
            "rule.all[1]: unknown node with keys ['foo']",
        ),
        ({"tag": "monetary_90d", "op": "between", "value": [1]}, "between needs [low, high]"),
        ({"behaviour": {"source": "events"}}, "within_days: expected a whole number"),
        ({"engaged": {"within_days": 3}}, "name at least one creator"),
        ({"any": [{"tag": "gender", "value": "F"}], "all": []}, "exactly one of"),
        ("gender = F", "expected an object"),
    ],
)
def test_malformed_rules_name_the_path_and_the_fix(doc, message) -> None:
    with pytest.raises(RuleError, match=None) as err:
        parse_rule(doc)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("doc", "error", "message"),
    [
        ({"tag": "gendr", "value": "F"}, UnknownTagError, "unknown tag 'gendr'; did you mean gender"),
        ({"tag": "monetary_90d", "op": ">=", "value": "lots"}, RuleError, "the tag is numeric"),
        ({"tag": "gender", "op": ">", "value": "F"}, RuleError, "use = or in for categories"),
        ({"tag": "is_member", "value": "yes"}, RuleError, "use true or false"),
        ({"tag": "last_order_date", "op": ">=", "value": "last week"}, RuleError, "use YYYY-MM-DD"),
        ({"tag": "purchase_count_30d", "op": "contains", "value": 1}, RuleError, "contains works on text"),
        ({"behaviour": {"source": "nope", "within_days": 3}}, RuleError, "unknown source 'nope'"),
        (
            {"behaviour": {"source": "events", "within_days": 3, "where": {"colour": "red"}}},
            RuleError,
            "no column 'colour'",
        ),
        (
            {"behaviour": {"source": "orders", "within_days": 3, "where": {"phone": "1"}}},
            RuleError,
            "personal data",
        ),
    ],
)
def test_validation_against_the_profile_and_the_sources(doc, error, message) -> None:
    with pytest.raises(error) as err:
        validate_rule(parse_rule(doc), COLUMNS, load_sources())
    assert message in str(err.value)


def test_rule_text_json_yaml_and_files(tmp_path) -> None:
    assert load_rule_text('{"tag": "gender", "value": "F"}') == {"tag": "gender", "value": "F"}
    assert load_rule_text("tag: gender\nvalue: F\n") == {"tag": "gender", "value": "F"}
    path = tmp_path / "r.yaml"
    path.write_text("all:\n  - {tag: gender, value: F}\n", encoding="utf-8")
    assert load_rule_text(str(path)) == {"all": [{"tag": "gender", "value": "F"}]}
    with pytest.raises(RuleError, match="does not exist"):
        load_rule_text(str(tmp_path / "missing.json"))


def test_audience_definitions() -> None:
    spec = parse_audience(
        {
            "name": "Young Makeup Lovers",
            "rule": {"tag": "gender", "value": "F"},
            "exports": [{"destination": "tencent"}],
        }
    )
    assert (spec.audience_id, spec.kind, spec.exports[0].destination) == (
        "young_makeup_lovers",
        "rule",
        "tencent",
    )
    assert parse_audience({"name": "kol fans", "engaged": {"creators": ["k1"]}}).kind == "engagement"
    assert (
        parse_audience({"name": "vip", "seed": {"path": "x.csv", "id_type": "phone"}}).seed.id_type == "phone"
    )
    with pytest.raises(RuleError, match="exactly one of rule, seed, engaged"):
        parse_audience(
            {"name": "x", "rule": {"tag": "a", "value": 1}, "seed": {"path": "p", "id_type": "phone"}}
        )
    with pytest.raises(RuleError, match="needs a name"):
        parse_audience({"tag": "gender", "value": "F"})
    assert audience_id_of("高价值女性").startswith("aud_")


def test_rule_column_on_a_small_profile(spark) -> None:
    rows = [
        (
            "1",
            "F",
            "25-34",
            "上海",
            3,
            250.0,
            True,
            datetime.date(2026, 10, 30),
            ["makeup", "skincare"],
            True,
        ),
        ("2", "M", "25-34", "北京", 0, 0.0, False, None, [], False),
        ("3", None, "18-24", None, None, None, None, None, None, None),
        ("4", "F", "45-54", "北京", 12, 2000.0, True, datetime.date(2026, 9, 1), ["baby"], False),
    ]
    schema = (
        "oneid string, gender string, age_band string, city string, purchase_count_30d bigint, "
        "monetary_90d double, is_member boolean, last_order_date date, interests array<string>, "
        "_behaviour_0 boolean"
    )
    profile = spark.createDataFrame(rows, schema)

    def select(doc) -> list[str]:
        rule = validate_rule(parse_rule(doc), COLUMNS)
        return sorted(
            r.oneid for r in profile.where(build_rule_column(rule, COLUMNS)).select("oneid").collect()
        )

    assert select({"tag": "gender", "op": "=", "value": "F"}) == ["1", "4"]
    assert select({"tag": "gender", "op": "!=", "value": "F"}) == ["2"]  # unknown gender is not "not F"
    assert select({"not": {"tag": "gender", "op": "=", "value": "F"}}) == ["2", "3"]  # ... but is "not (F)"
    assert select({"tag": "monetary_90d", "op": "between", "value": [100, 2000]}) == ["1", "4"]
    assert select({"tag": "purchase_count_30d", "op": ">=", "value": 3}) == ["1", "4"]
    assert select({"tag": "age_band", "op": "not_in", "value": ["25-34"]}) == ["3", "4"]
    assert select({"tag": "interests", "op": "contains", "value": "baby"}) == ["4"]
    assert select({"tag": "city", "op": "contains", "value": "北"}) == ["2", "4"]
    assert select({"tag": "last_order_date", "op": ">=", "value": "2026-10-01"}) == ["1"]
    assert select({"tag": "is_member", "op": "=", "value": True}) == ["1", "4"]
    assert select({"tag": "gender", "op": "is_null"}) == ["3"]
    assert select(
        {
            "any": [
                {"all": [{"tag": "gender", "value": "F"}, {"tag": "city", "value": "北京"}]},
                {"tag": "age_band", "value": "18-24"},
            ]
        }
    ) == ["3", "4"]
    # A behaviour node reads the flag column the job joins in.
    assert select(
        {"all": [{"tag": "is_member", "value": True}, {"behaviour": {"source": "events", "within_days": 7}}]}
    ) == ["1"]
    # The largest and the deepest rule allowed reach the engine: a group's conditions are combined as a
    # balanced tree (chained one inside another, 50 of them passed Spark Connect's protobuf nesting limit).
    many = [
        {"tag": "purchase_count_30d", "op": "!=", "value": i} for i in range(100, 100 + MAX_RULE_NODES - 1)
    ]
    assert select({"all": many}) == ["1", "2", "4"]
    assert select({"any": many}) == ["1", "2", "4"]
    deep: dict = {"tag": "gender", "value": "F"}
    for i in range(MAX_RULE_DEPTH):  # gender = F, nested 8 groups deep
        other = {"tag": "city", "value": "x"}
        deep = {"all": [deep, {"not": other}]} if i % 2 else {"any": [deep, other]}
    assert select(deep) == ["1", "4"]


def test_balanced_combination_nests_log2_deep() -> None:
    from audiences.rules import _balanced

    def depth(x) -> int:
        return 0 if isinstance(x, str) else 1 + max(depth(x[0]), depth(x[1]))

    combined = _balanced([str(i) for i in range(500)], lambda a, b: (a, b))
    assert depth(combined) == 9  # ceil(log2(500)), not 499

    def leaves(x) -> list[str]:
        return [x] if isinstance(x, str) else leaves(x[0]) + leaves(x[1])

    assert leaves(combined) == [str(i) for i in range(500)]  # order kept


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"all": [{"tag": "gender", "value": "F"}] * 500}, "501 nodes; a rule holds at most 200"),
        ({"any": [{"tag": "gender", "value": "F"}] * MAX_RULE_NODES}, "at most 200"),
        ({"tag": "monetary_90d", "op": "between", "value": [1e40, -1]}, r"low <= high, got \[1e\+40, -1\]"),
        ({"tag": "monetary_90d", "op": "between", "value": [float("nan"), 1]}, "not a finite number"),
        ({"tag": "monetary_90d", "op": "between", "value": [1, float("inf")]}, "not a finite number"),
        ({"tag": "last_order_date", "op": "between", "value": ["2026-02-01", "2026-01-01"]}, "low <= high"),
        ({"tag": "monetary_90d", "op": "between", "value": [1, "2026-01-01"]}, "two numbers or two dates"),
        ({"tag": "purchase_count_30d", "op": "between", "value": [0, 10**30]}, "out of range"),
    ],
)
def test_oversized_rules_and_bad_ranges_are_refused_with_a_reason(doc, message) -> None:
    with pytest.raises(RuleError, match=message):
        parse_rule(doc)


def test_deep_nesting_is_refused_before_recursing() -> None:
    doc: dict = {"tag": "gender", "value": "F"}
    for _ in range(5000):  # deeper than Python's recursion limit
        doc = {"not": doc}
    with pytest.raises(RuleError, match=f"at most {MAX_RULE_DEPTH} all / any / not"):
        parse_rule(doc)
    inside = {"tag": "gender", "value": "F"}
    for _ in range(MAX_RULE_DEPTH + 1):
        inside = {"all": [inside]}
    with pytest.raises(RuleError, match="at most"):
        parse_rule(inside)


@pytest.mark.parametrize("value", [float("inf"), 10**20])
def test_values_a_literal_cannot_hold_are_refused(value) -> None:
    with pytest.raises(RuleError, match=r"finite|out of range"):
        validate_rule(parse_rule({"tag": "monetary_90d", "op": ">", "value": value}), COLUMNS)
