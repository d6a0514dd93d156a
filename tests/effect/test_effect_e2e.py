"""End to end on a copy of the demo lake: a campaign registered on a pack exported with a holdout, simulated
by the platform with a known true effect (demo.campaigns), its delivery logs and orders ingested, and the
effect run: the measured lift's interval holds the generator's truth; the control never reaches a pack of the
campaign; a campaign whose pack was never exported is reported."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from cdp.lake import Lake

DAY = dt.date(2026, 11, 2)
MEMBERS = {"name": "members_retarget", "rule": {"all": [{"tag": "is_member", "op": "=", "value": True}]}}


@pytest.mark.slow
@pytest.mark.e2e
def test_register_export_simulate_ingest_measure(spark, copy_demo_lake, tmp_path: Path) -> None:
    from demo.campaigns import CampaignSpec, simulate_campaign
    from jobs import audiences, effect, ingest

    s = copy_demo_lake(tmp_path / "data", min_pack_size=100)
    v = audiences.create(spark, s, MEMBERS, dt=dt.date(2026, 11, 1))
    pack = f"{v.audience_id}/v{v.version}/oceanengine"
    registration = {"campaign_id": "OE-E2E-1", "media": "oceanengine", "pack": pack, "start": DAY, "end": DAY,
                    "budget": 300, "holdout": 0.3, "attribution_window_days": 0}  # fmt: skip
    reg = effect.register(spark, s, registration, registered_by="test")
    assert reg.exported and reg.control > 100 and reg.people > 500
    manifest = json.loads((Path(s.packs_root) / pack / "manifest.json").read_text())
    assert manifest["holdout"] == {"campaign_id": "OE-E2E-1", "share": 0.3, "control_people": reg.control}
    # a campaign registered before its pack is exported: reported until it is
    effect.register(spark, s, registration | {"campaign_id": "TC-LATER", "media": "tencent",
                    "pack": f"{v.audience_id}/v{v.version}/tencent", "holdout": 0.0}, export_pack=False)  # fmt: skip

    truth = simulate_campaign(
        Path(s.landing_root), Path(s.truth_root),
        CampaignSpec("OE-E2E-1", "oceanengine", Path(s.packs_root) / pack, DAY, DAY, true_effect=0.15,
                     window_days=0, seed=3),
    )  # fmt: skip
    assert truth.reached_people > 500 and truth.true_incremental_purchasers > 50
    for source in ("ad_delivery", "orders", "events"):
        ingest.run(spark, s, source, DAY)
    report = effect.run(spark, s, DAY)

    summary = next(x for x in report.summaries if x["campaign_id"] == "OE-E2E-1")
    assert (summary["impressions"], summary["clicks"]) == (truth.impressions, truth.clicks)
    assert summary["cost"] == pytest.approx(truth.cost, abs=0.05)
    assert summary["cpm"] == pytest.approx(summary["cost"] / summary["impressions"] * 1000)
    assert summary["members"] == reg.people and summary["control"] == reg.control
    assert summary["exposed"] >= summary["clicked"] > 0 and summary["purchased"] > 0
    lifts = {(x["campaign_id"], x["metric"]): x for x in report.lifts}
    conv = lifts[("OE-E2E-1", "conversion_rate")]
    assert conv["incremental_ci_low"] <= truth.true_incremental_purchasers <= conv["incremental_ci_high"], conv
    assert conv["incremental_ci_low"] > 0 and conv["p_value"] < 0.01
    revenue = lifts[("OE-E2E-1", "revenue_per_person")]
    assert revenue["incremental_ci_low"] <= truth.true_incremental_revenue <= revenue["incremental_ci_high"]
    assert "caused about" in conv["sentence"]
    kinds = {(i["kind"], i["campaign_id"]) for i in report.issues}
    assert ("campaign_without_pack", "TC-LATER") in kinds
    assert any(k == "unknown_campaign" for k, _ in kinds)  # the demo's other campaigns, not registered

    lake = Lake(spark, s.lake_root)
    for table in ("gold.effect_daily", "gold.effect_lift", "gold.effect_aipl", "gold.attribution", "gold.effect_issues"):
        assert lake.read(table).where(F.col("dt") == F.lit(DAY)).limit(1).count() == 1, table
    models = {r[0] for r in lake.read("gold.attribution").select("model").distinct().collect()}
    assert models == {"last_touch", "first_touch", "linear", "time_decay", "markov"}
    shown = effect.report(spark, s, v.audience_id)  # by audience: both campaigns
    assert {c["campaign_id"] for c in shown["campaigns"]} == {"OE-E2E-1", "TC-LATER"}

    # The control never leaks into a later pack of the same campaign, even with a smaller share.
    groups = lake.read("gold.campaign_holdouts")
    control = {r[0] for r in groups.where("arm = 'control'").select("oneid").collect()}
    audiences.export(spark, s, v.audience_id, "oceanengine", version=v.version, min_size=100,
                     campaign_id="OE-E2E-1", holdout=0.1)  # fmt: skip
    again = lake.read("gold.campaign_holdouts")
    assert {r[0] for r in again.where("arm = 'control'").select("oneid").collect()} >= control
    assert not control & {r[0] for r in again.where("arm = 'treatment'").select("oneid").collect()}
