"""The tag catalog validates without an engine: the packaged catalog, and clear errors for bad definitions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from schemas import load_tables
from tags import LAYERS, CatalogError, load_catalog, load_definitions, plan_catalog

REQUIRED = {
    "raw": [
        "gender",
        "age_band",
        "city",
        "city_tier",
        "register_channel",
        "membership_level",
        "income_band",
        "lifetime_order_count",
        "lifetime_amount",
        "device_os",
        "device_brand",
    ],
    "fact": [
        "r_30d",
        "r_90d",
        "r_365d",
        "purchase_count_30d",
        "purchase_count_90d",
        "purchase_count_365d",
        "purchase_amount_30d",
        "purchase_amount_365d",
        "active_days_30d",
        "app_active_days_30d",
        "web_active_days_30d",
        "miniprogram_active_days_30d",
        "purchase_count_skincare_90d",
        "ad_impressions_30d",
        "ad_clicks_30d",
        "ad_conversions_30d",
        "kol_engagements_30d",
    ],
    "model": [
        "rfm_r_score",
        "rfm_f_score",
        "rfm_m_score",
        "rfm_segment",
        "value_tier",
        "category_preference",
        "price_band_preference",
        "inferred_gender",
        "inferred_gender_confidence",
        "aipl_stage",
    ],
    "predictive": ["purchase_propensity_30d", "churn_probability", "expected_value_90d", "high_potential"],
}

GOOD = {
    "id": "orders_7d",
    "name_zh": "近7天订单数",
    "name_en": "Orders in 7 days",
    "layer": "fact",
    "type": "long",
    "description": "Paid orders in the last 7 days.",
    "owner": "tests",
    "from": "orders",
    "where": "days_ago < 7",
    "value": "count(DISTINCT order_id)",
}


def write(folder: Path, name: str, data: object) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_packaged_catalog_has_the_required_tags_in_dependency_order() -> None:
    catalog = load_catalog([])
    assert len(catalog) >= 40
    for layer, ids in REQUIRED.items():
        for tag_id in ids:
            assert catalog[tag_id].layer == layer, tag_id
    seen: set[str] = set()
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    for tag in catalog.tags:
        assert set(tag.dependencies) <= seen, tag.id  # built after what it uses
        assert all(rank[catalog[d].layer] <= rank[tag.layer] for d in tag.dependencies)
        seen.add(tag.id)


def test_tags_derived_from_others_are_found_through_every_layer() -> None:
    """What a lookalike must leave out with the tags that define its seed: everything computed from them."""
    catalog = load_catalog([])
    derived = catalog.derived(["gender", "not_a_tag"])
    assert {"inferred_gender", "inferred_gender_confidence"} <= set(derived)
    assert "gender" not in derived and "age_band" not in derived
    assert derived == [t.id for t in catalog.tags if t.id in derived]  # build order
    for tag_id in derived:  # each one reads gender or another derived tag
        assert {"gender", *derived} & set(catalog[tag_id].dependencies), tag_id
    assert catalog.derived(["purchase_count_365d"])  # facts feed the RFM model tags
    assert catalog.derived([]) == []


def test_profile_contract_file_matches_the_catalog() -> None:
    from jobs.tags import profile_contract

    packaged = load_tables()["gold.profile"]
    derived = profile_contract(load_catalog([]))
    assert [(c.name, c.type) for c in packaged.columns] == [(c.name, c.type) for c in derived.columns]


def test_a_new_tag_is_one_file_in_an_extra_folder(tmp_path: Path) -> None:
    write(tmp_path, "orders_7d.yaml", GOOD)
    catalog = load_catalog([tmp_path])
    assert catalog["orders_7d"].sources == ["orders"]
    assert "count(DISTINCT order_id) FILTER" not in catalog["orders_7d"].definition


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"id": "Orders-7d"}, "must be snake_case"),
        ({"layer": "gold"}, "layer: Input should be"),
        ({"type": "int"}, "type: Input should be"),
        ({"from": "shops"}, "unknown view 'shops'"),
        ({"expr": "1"}, "exactly one of"),
        ({"value": None}, "needs both 'from'"),
        ({"depends_on": ["gender"]}, "cannot depend on other tags"),
    ],
)
def test_bad_definitions_name_the_file_the_tag_and_the_field(
    tmp_path: Path, change: dict, message: str
) -> None:
    data = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    path = write(tmp_path, "bad.yaml", data)
    with pytest.raises(CatalogError) as exc:
        load_definitions(path)
    assert str(path) in str(exc.value) and message in str(exc.value)


def expr_tag(tag_id: str, layer: str, deps: list[str], expr: str) -> dict:
    return {
        **{k: v for k, v in GOOD.items() if k not in ("from", "where", "value")},
        "id": tag_id,
        "layer": layer,
        "depends_on": deps,
        "expr": expr,
    }


def test_upward_dependencies_cycles_and_undeclared_uses_are_refused(tmp_path: Path) -> None:
    base = load_definitions(write(tmp_path, "good.yaml", GOOD))
    upward = load_definitions(write(tmp_path, "up.yaml", expr_tag("x", "fact", ["value_tier"], "value_tier")))
    with pytest.raises(CatalogError, match="layers depend only downward"):
        plan_catalog(list(load_catalog([]).tags) + upward)
    cycle = load_definitions(
        write(
            tmp_path,
            "cycle.yaml",
            {"tags": [expr_tag("a", "model", ["b"], "b + 1"), expr_tag("b", "model", ["a"], "a")]},
        )
    )
    with pytest.raises(CatalogError, match=r"dependency cycle (a -> b -> a|b -> a -> b)"):
        plan_catalog(base + cycle)
    sneaky = load_definitions(
        write(tmp_path, "s.yaml", expr_tag("c", "model", ["orders_7d"], "orders_7d + r_30d"))
    )
    with pytest.raises(CatalogError, match="uses r_30d without declaring it"):
        plan_catalog(list(load_catalog([]).tags) + base + sneaky)
    unknown = load_definitions(write(tmp_path, "u.yaml", expr_tag("d", "model", ["nope"], "nope")))
    with pytest.raises(CatalogError, match="depends on unknown tag 'nope'"):
        plan_catalog(base + unknown)
    dup = load_definitions(write(tmp_path, "dup.yaml", GOOD))
    with pytest.raises(CatalogError, match="already defined"):
        plan_catalog(base + dup)


def test_cli_list_show_validate_without_an_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.cli.common import console
    from apps.cli.main import app

    # Rich fixes a console's width from COLUMNS when it is made (pytest-xdist workers set COLUMNS=80), so the
    # COLUMNS given to the runner below may come too late: the table needs its width to show every column.
    monkeypatch.setattr(console, "width", 250)
    runner = CliRunner()
    env = {"CDP_DATA_ROOT": str(tmp_path), "COLUMNS": "250"}
    out = runner.invoke(app, ["tags", "validate"], env=env)
    assert out.exit_code == 0 and "tag catalog OK" in out.output
    out = runner.invoke(app, ["tags", "list"], env=env)
    assert out.exit_code == 0 and "rfm_segment" in out.output and "never" in out.output
    out = runner.invoke(app, ["tags", "show", "rfm_segment"], env=env)
    assert out.exit_code == 0 and "重要价值" in out.output and "silver.orders" not in out.output
    out = runner.invoke(app, ["tags", "show", "no_such_tag"], env=env)
    assert out.exit_code == 1 and "no tag 'no_such_tag'" in out.output
    bad = tmp_path / "bad_tags"
    bad.mkdir()
    write(bad, "x.yaml", {**GOOD, "from": "shops"})
    out = runner.invoke(app, ["tags", "validate"], env=env | {"CDP_TAG_PATH": str(bad)})
    assert out.exit_code == 2 and "x.yaml" in out.output and "unknown view 'shops'" in out.output
