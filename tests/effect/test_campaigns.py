"""Campaign registrations validated into a plan without an engine: every error names the field and the fix."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from effect import Campaign, CampaignError, PackRef, holdout_score, parse_pack, plan_campaign
from effect.holdout import control_oneids

GOOD = {
    "campaign_id": "OE-2026-11-A",
    "media": "OceanEngine",
    "pack": "interested_not_bought/v2/oceanengine",
    "start": "2026-11-02",
    "end": "2026-11-08",
    "budget": 5000,
    "holdout": 0.1,
}


def test_a_registration_becomes_a_campaign_plan() -> None:
    c = plan_campaign(GOOD)
    assert c == Campaign(
        "OE-2026-11-A",
        "oceanengine",
        PackRef("interested_not_bought", 2, "oceanengine"),
        dt.date(2026, 11, 2),
        dt.date(2026, 11, 8),
        5000.0,
        0.1,
        7,
    )
    assert c.window_end == dt.date(2026, 11, 15)
    row = c.to_row()
    assert row["audience_id"] == "interested_not_bought" and row["holdout_share"] == 0.1
    assert Campaign.from_row(row) == dataclasses.replace(c, name="OE-2026-11-A")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"media": "myspace"}, r"media: unknown media 'myspace'; use one of oceanengine"),
        ({"end": "2026-11-01"}, r"end 2026-11-01 is before start 2026-11-02; swap them"),
        ({"holdout": 0.8}, r"holdout: Input should be less than or equal to 0.5"),
        ({"budget": -1}, r"budget: Input should be greater than or equal to 0"),
        ({"campaign_id": "bad id!"}, r"campaign_id: use the platform's campaign id"),
        ({"colour": "red"}, r"colour: unknown field; use campaign_id, media, pack"),
        ({"pack": "interested_not_bought/oceanengine"}, r"use <audience>/v<N>/<destination>"),
    ],
)
def test_a_bad_registration_names_the_field_and_the_fix(change: dict, message: str) -> None:
    with pytest.raises(CampaignError, match=message):
        plan_campaign(GOOD | change)


def test_a_missing_field_is_named() -> None:
    doc = {k: v for k, v in GOOD.items() if k != "start"}
    with pytest.raises(CampaignError, match="start: Field required"):
        plan_campaign(doc)


def test_pack_references() -> None:
    assert parse_pack("a_b/v12/tencent/") == PackRef("a_b", 12, "tencent")
    assert str(parse_pack("x/v1/csv")) == "x/v1/csv"
    with pytest.raises(CampaignError):
        parse_pack("x/v0/csv")


def test_the_holdout_is_stable_per_campaign_and_close_to_its_share() -> None:
    people = [str(i) for i in range(20_000)]
    control = control_oneids(people, "C1", 0.1)
    assert control == control_oneids(reversed(people), "C1", 0.1)  # order does not matter: a hash
    assert 0.09 < len(control) / len(people) < 0.11
    assert control != control_oneids(people, "C2", 0.1)  # another campaign holds out other people
    assert control_oneids(people, "C1", 0.05) < control  # a smaller share keeps a subset out
    # people stored as control before stay out even when the share is lowered to zero
    assert control_oneids(people, "C1", 0.0, already=["7", "8"]) == {"7", "8"}
    assert all(0 <= holdout_score(p, "C1") < 1 for p in people[:100])


def test_the_python_and_spark_holdout_scores_agree(spark) -> None:
    from pyspark.sql import functions as F

    from effect import build_holdout_score

    people = [(str(i),) for i in (1, 42, 123456789, 9_000_000_000)]
    df = spark.createDataFrame(people, "oneid string").select(
        "oneid", build_holdout_score(F.col("oneid"), "OE-1").alias("score")
    )
    for r in df.collect():
        assert r["score"] == pytest.approx(holdout_score(r["oneid"], "OE-1"), abs=1e-12)


def test_scheduled_exports_carry_a_campaign_and_its_holdout() -> None:
    from audiences.errors import RuleError
    from audiences.spec import parse_audience

    doc = {
        "name": "x",
        "rule": {"all": [{"tag": "gender", "op": "=", "value": "F"}]},
        "exports": [
            {"destination": "oceanengine", "campaign_id": "OE-1", "holdout": 0.1},
            {"destination": "csv"},
        ],
    }
    spec = parse_audience(doc)
    assert (spec.exports[0].campaign_id, spec.exports[0].holdout) == ("OE-1", 0.1)
    assert spec.exports[1].campaign_id is None
    assert spec.document()["exports"][0] == {
        "destination": "oceanengine",
        "id_types": [],
        "campaign_id": "OE-1",
        "holdout": 0.1,
    }
    with pytest.raises(RuleError, match=r"exports\[0\].holdout needs the campaign_id"):
        parse_audience(doc | {"exports": [{"destination": "csv", "holdout": 0.1}]})
