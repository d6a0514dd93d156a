"""End to end on a copy of the demo lake: a campaign registered on a pack exported with a holdout, simulated
by the platform with a known true effect (demo.campaigns), its delivery logs and orders ingested, and the
effect run: the measured lift's interval holds the generator's truth; the control never reaches a pack of the
campaign; a campaign whose pack was never exported is reported."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import functions as F

from cdp.lake import Lake

DAY = dt.date(2026, 11, 2)
MEMBERS = {"name": "members_retarget", "rule": {"all": [{"tag": "is_member", "op": "=", "value": True}]}}


@dataclass
class Measured:
    settings: Any
    audience: str
    pack: str
    registration: Any
    truth: Any
    report: Any


@pytest.fixture(scope="module")
def measured(spark, copy_demo_lake, tmp_path_factory: pytest.TempPathFactory) -> Measured:
    """The loop once: audience -> campaign registered with a 30% holdout (pack written) -> a second campaign
    whose pack is not exported yet -> the platform's simulation -> ingest of the day -> effect run."""
    from demo.campaigns import CampaignSpec, simulate_campaign
    from jobs import audiences, effect, ingest

    s = copy_demo_lake(tmp_path_factory.mktemp("effect") / "data", min_pack_size=100, min_group_size=10)
    v = audiences.create(spark, s, MEMBERS, dt=dt.date(2026, 11, 1))
    pack = f"{v.audience_id}/v{v.version}/oceanengine"
    registration = {
        "campaign_id": "OE-E2E-1",
        "media": "oceanengine",
        "pack": pack,
        "start": DAY,
        "end": DAY,
        "budget": 300,
        "holdout": 0.3,
        "attribution_window_days": 0,
    }
    reg = effect.register(spark, s, registration, registered_by="test")
    effect.register(
        spark,
        s,
        registration
        | {
            "campaign_id": "TC-LATER",
            "media": "tencent",
            "pack": f"{v.audience_id}/v{v.version}/tencent",
            "holdout": 0.0,
        },
        export_pack=False,
    )
    truth = simulate_campaign(
        Path(s.landing_root),
        Path(s.truth_root),
        CampaignSpec(
            "OE-E2E-1",
            "oceanengine",
            Path(s.packs_root) / pack,
            DAY,
            DAY,
            true_effect=0.15,
            window_days=0,
            seed=3,
        ),
    )
    for source in ("ad_delivery", "orders", "events"):
        ingest.run(spark, s, source, DAY)
    return Measured(s, v.audience_id, pack, reg, truth, effect.run(spark, s, DAY))


@pytest.mark.slow
@pytest.mark.e2e
def test_the_measured_lift_holds_the_truth_and_the_costs_add_up(measured: Measured) -> None:
    reg, truth, report = measured.registration, measured.truth, measured.report
    assert reg.exported and reg.control > 100 and reg.people > 500
    manifest = json.loads((Path(measured.settings.packs_root) / measured.pack / "manifest.json").read_text())
    assert manifest["holdout"] == {"campaign_id": "OE-E2E-1", "share": 0.3, "control_people": reg.control}
    assert truth.reached_people > 500 and truth.true_incremental_purchasers > 50

    summary = next(x for x in report.summaries if x["campaign_id"] == "OE-E2E-1")
    assert (summary["impressions"], summary["clicks"]) == (truth.impressions, truth.clicks)
    assert summary["cost"] == pytest.approx(truth.cost, abs=0.05)
    assert summary["cpm"] == pytest.approx(summary["cost"] / summary["impressions"] * 1000)
    assert summary["members"] == reg.people and summary["control"] == reg.control
    assert summary["exposed"] >= summary["clicked"] > 0 and summary["purchased"] > 0
    lifts = {(x["campaign_id"], x["metric"]): x for x in report.lifts}
    conv = lifts[("OE-E2E-1", "conversion_rate")]
    assert conv["incremental_ci_low"] <= truth.true_incremental_purchasers <= conv["incremental_ci_high"], (
        conv
    )
    assert conv["incremental_ci_low"] > 0 and conv["p_value"] < 0.01
    revenue = lifts[("OE-E2E-1", "revenue_per_person")]
    assert revenue["incremental_ci_low"] <= truth.true_incremental_revenue <= revenue["incremental_ci_high"]
    assert "caused about" in conv["sentence"]


@pytest.mark.slow
@pytest.mark.e2e
def test_bad_input_and_the_gold_tables(spark, measured: Measured) -> None:
    from jobs import effect

    kinds = {(i["kind"], i["campaign_id"]) for i in measured.report.issues}
    assert ("campaign_without_pack", "TC-LATER") in kinds
    assert any(k == "unknown_campaign" for k, _ in kinds)  # the demo's other campaigns, not registered
    lake = Lake(spark, measured.settings.lake_root)
    for table in (
        "gold.effect_daily",
        "gold.effect_lift",
        "gold.effect_aipl",
        "gold.attribution",
        "gold.effect_issues",
    ):
        assert lake.read(table).where(F.col("dt") == F.lit(DAY)).limit(1).count() == 1, table
    models = {r[0] for r in lake.read("gold.attribution").select("model").distinct().collect()}
    assert models == {"last_touch", "first_touch", "linear", "time_decay", "markov"}
    shown = effect.report(spark, measured.settings, measured.audience)  # by audience: both campaigns
    assert {c["campaign_id"] for c in shown["campaigns"]} == {"OE-E2E-1", "TC-LATER"}


@pytest.mark.slow
@pytest.mark.e2e
def test_the_report_through_the_api_and_the_cli(spark, measured: Measured, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from apps.cli.main import app as cli
    from apps.web import TokenStore, create_app

    store = TokenStore(tmp_path / "tokens.json", env={})
    marketer = {"Authorization": f"Bearer {store.create('marketer', name='m')}"}
    with TestClient(create_app(measured.settings, tokens=store, spark=spark)) as client:
        assert client.get("/api/campaigns").status_code == 401
        campaigns = client.get("/api/campaigns", headers=marketer).json()["campaigns"]
        assert {c["campaign_id"] for c in campaigns} == {"OE-E2E-1", "TC-LATER"}
        r = client.get("/api/effect/OE-E2E-1", params={"compare": "TC-LATER"}, headers=marketer).json()
        first, second = r["reports"]
        assert first["summary"][0]["impressions"] == measured.truth.impressions
        assert {x["metric"] for x in first["lift"]} == {"conversion_rate", "revenue_per_person"}
        assert second["summary"][0]["campaign_id"] == "TC-LATER"
        assert client.get("/api/effect/nothing", headers=marketer).status_code == 404
        bad = client.post(
            "/api/campaigns",
            headers=marketer,
            json={
                "campaign_id": "X",
                "media": "myspace",
                "pack": measured.pack,
                "start": "2026-11-02",
                "end": "2026-11-03",
            },
        )
        assert bad.status_code == 422 and "unknown media" in bad.json()["detail"]
    out = CliRunner().invoke(
        cli, ["effect", "report", "OE-E2E-1", "--data-root", measured.settings.data_root]
    )
    assert out.exit_code == 0, out.output
    assert "CPM" in out.output and "caused about" in out.output


@pytest.mark.slow
@pytest.mark.e2e
def test_the_control_never_leaks_into_a_later_pack_of_the_campaign(spark, measured: Measured) -> None:
    from jobs import audiences

    lake = Lake(spark, measured.settings.lake_root)
    groups = lake.read("gold.campaign_holdouts")
    control = {r[0] for r in groups.where("arm = 'control'").select("oneid").collect()}
    audiences.export(
        spark,
        measured.settings,
        measured.audience,
        "oceanengine",
        min_size=100,
        campaign_id="OE-E2E-1",
        holdout=0.1,
    )  # a smaller share: the stored control stays out
    again = lake.read("gold.campaign_holdouts")
    assert {r[0] for r in again.where("arm = 'control'").select("oneid").collect()} >= control
    assert not control & {r[0] for r in again.where("arm = 'treatment'").select("oneid").collect()}
