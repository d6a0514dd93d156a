"""Audiences on a real lake: a generated demo population through ingest -> identity -> tags, then estimate,
create (rule, engagement, seed list), insight, overlap, lookalike, export packs with consent and k-anonymity,
refresh for a new date, the CLI, and the lookalike quality target against the demo ground truth."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import hmac
import json
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from audiences import (
    AudienceError,
    PackTooSmallError,
    RuleError,
    SeedListError,
    SeedTooSmallError,
    UnknownAudienceError,
    UnknownTagError,
)
from audiences.insight import GroupTooSmallError, public_count, public_coverage
from audiences.packs import read_pack_lines
from cdp.lake import Lake
from jobs import audiences as job
from jobs.audiences.context import AudienceContext
from jobs.audiences.registry import AudienceExistsError

DT1, DT2 = "2026-11-01", "2026-11-02"
# The session's PII key (tests/conftest.py), which the shared demo lake is keyed with.
KEY = "test-only-pii-key"
FEMALE_BUYERS = {
    "all": [{"tag": "gender", "value": "F"}, {"tag": "purchase_count_90d", "op": ">=", "value": 1}]
}


def keyed(value: str) -> str:
    return hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


# Every test reads a built lake: the shared demo lake, or its own larger population.
pytestmark = pytest.mark.slow


def build_population(spark, settings, root: Path, persons: int, dates: list[str]):
    from demo import generate
    from jobs import identity, ingest, tags
    from schemas import load_sources

    s = dataclasses.replace(settings.with_data_root(root), pii_key=KEY)
    generate(
        Path(s.landing_root),
        Path(s.truth_root),
        persons=persons,
        start=datetime.date.fromisoformat(dates[0]),
        days=len(dates),
        history_days=90,
        seed=11,
    )
    for dt in dates:
        for source in sorted(load_sources()):
            ingest.run(spark, s, source, dt)
        identity.run(spark, s, dt)
        tags.run(spark, s, dt, layers=["raw", "fact", "model"])  # predictive tags need 180+ days of history
    return s


@pytest.fixture(scope="module")
def env(spark, demo_lake, copy_demo_lake, tmp_path_factory):
    """A copy of the session's demo lake (tests/conftest.py) that this module's tests create audiences in, one
    after the other."""
    assert demo_lake.dt == DT1 and demo_lake.settings.pii_key == KEY
    s = copy_demo_lake(tmp_path_factory.mktemp("audiences") / "data")
    return s, Lake(spark, s.lake_root)


def optouts_on(spark, settings, lake: Lake, day: datetime.date):
    """``(oneid, purposes, since)`` of the OneIDs opted out at ``day``, computed from the consent table."""
    return AudienceContext(spark, settings, lake).compute_optouts(day)


def members_of(lake: Lake, audience_id: str, version: int) -> set[str]:
    df = lake.read("gold.audience_members").where(
        (F.col("audience_id") == audience_id) & (F.col("version") == version)
    )
    return {r.oneid for r in df.select("oneid").collect()}


def test_estimate_create_insight_overlap_and_consent(spark, env) -> None:
    s, lake = env
    est = job.estimate(spark, s, FEMALE_BUYERS)
    assert 0 < est.size < est.population and est.dt == DT1
    assert job.estimate(spark, s, json.dumps(FEMALE_BUYERS)).size == est.size  # JSON text, same answer

    v = job.create(spark, s, {"name": "Female buyers", "rule": FEMALE_BUYERS}, created_by="tester")
    assert (v.audience_id, v.version, v.kind, v.size, v.created_by) == (
        "female_buyers",
        1,
        "rule",
        est.size,
        "tester",
    )
    assert public_count(v.opted_out, 50) == est.opted_out
    assert v.id_type_counts["phone"] > 0
    # The profile agrees: every member is a woman with a purchase, and nobody who opted out is in.
    profile = lake.read("gold.profile").where(F.col("dt") == F.lit(datetime.date(2026, 11, 1)))
    wanted = {
        r.oneid
        for r in profile.where((F.col("gender") == "F") & (F.col("purchase_count_90d") >= 1)).collect()
    }
    optouts = (
        {r.oneid for r in lake.read("gold.consent_optouts").collect()}
        if lake.exists("gold.consent_optouts")
        else set()
    )
    optouts |= {r.oneid for r in optouts_on(spark, s, lake, datetime.date(2026, 11, 1)).collect()}
    got = members_of(lake, "female_buyers", 1)
    assert optouts and got == wanted - optouts and len(got) == v.size

    # Saving a name that exists asks for a new version explicitly; a name differing in punctuation only
    # is another audience with its own id (it once became version 2 of this one).
    with pytest.raises(AudienceExistsError, match="new_version"):
        job.create(spark, s, {"name": "Female buyers", "rule": FEMALE_BUYERS}, new_version=False)
    again = job.create(spark, s, {"name": "Female buyers", "rule": FEMALE_BUYERS}, new_version=True)
    assert again.version == 2 and job.show(spark, s, "female_buyers", 1).size == v.size  # versions kept
    other = job.create(spark, s, {"name": "female-buyers", "rule": FEMALE_BUYERS}, new_version=False)
    assert other.audience_id.startswith("female_buyers_") and other.version == 1
    assert job.show(spark, s, "female-buyers").audience_id == other.audience_id  # found by its name
    assert [
        x.version for x in job.list_audiences(spark, s, all_versions=True) if x.audience_id == "female_buyers"
    ] == [1, 2]

    ins = job.insight(spark, s, "female_buyers")
    top = {(r.tag, r.value): r for r in ins.rows}
    assert top[("gender", "F")].audience_share == 1.0 and top[("gender", "F")].tgi > 100
    assert ins.rows[0].tgi > 100 and ins.coverage == public_coverage(v.id_type_counts, v.size, 50)
    shown = [r for r in ins.rows if r.tgi is not None]
    assert shown == sorted(
        shown, key=lambda r: -(r.audience_share * __import__("math").log(r.tgi / 100)) if r.tgi > 0 else 1
    )
    # Values fewer than 50 members hold (CDP_MIN_GROUP_SIZE) show "< 50", without share or TGI, at the end.
    hidden = ins.rows[len(shown) :]
    assert hidden and all(r.tgi is None and r.audience_share is None for r in hidden)
    assert all(r.audience_count in ("< 50", None) or r.population_count in ("< 50", None) for r in hidden)
    assert all(isinstance(r.audience_count, int) and r.audience_count >= 50 for r in shown)

    job.create(spark, s, {"name": "members", "rule": {"tag": "is_member", "value": True}})
    o = job.overlap(spark, s, "female_buyers@1", "members")
    assert (
        o.both <= min(o.a_size, o.b_size) and o.either == o.a_size + o.b_size - o.both and o.a_size == v.size
    )

    # A rule that picks out one person: its estimate says "< 50", like a rule that picks out nobody; an
    # audience that small is saved but has no insight, and its overlap hides the intersection.
    keys = ["gender", "age", "province"]
    person = (
        profile.where(F.col("gender").isNotNull() & F.col("age").isNotNull() & F.col("province").isNotNull())
        .groupBy(*keys)
        .count()
        .where(F.col("count") == 1)
        .orderBy(*keys)
        .first()
    )
    one = {"all": [{"tag": t, "value": person[t]} for t in keys]}
    nobody = {"tag": "age", "op": ">=", "value": 500}
    for rule in (one, nobody):
        est = job.estimate(spark, s, rule)
        assert (est.size, est.opted_out, est.share) == ("< 50", "< 50", None), rule
    job.create(spark, s, {"name": "one person", "rule": one})
    with pytest.raises(GroupTooSmallError, match="fewer than 50 people"):
        job.insight(spark, s, "one_person")
    o = job.overlap(spark, s, "female_buyers@1", "one_person")
    assert (o.a_size, o.b_size, o.both, o.either, o.jaccard) == (v.size, "< 50", "< 50", None, None)


def test_errors_are_typed_and_say_what_to_do(spark, env) -> None:
    s, _ = env
    with pytest.raises(UnknownTagError, match="unknown tag 'gendre'; did you mean gender"):
        job.estimate(spark, s, {"tag": "gendre", "value": "F"})
    with pytest.raises(RuleError, match="between needs"):
        job.estimate(spark, s, {"tag": "age", "op": "between", "value": [1]})
    with pytest.raises(UnknownAudienceError, match="no audience 'nobody'"):
        job.show(spark, s, "nobody")


def test_behaviour_engagement_and_seed_lists(spark, env) -> None:
    s, lake = env
    kol = lake.read("silver.kol_engagement")
    creator = kol.groupBy("creator_id").count().orderBy(F.col("count").desc()).first()["creator_id"]
    v = job.create(spark, s, {"name": "kol fans", "engaged": {"creators": [creator], "within_days": 30}})
    assert v.kind == "engagement" and v.size > 0
    both = {
        "all": [{"engaged": {"creators": [creator], "within_days": 30}}, {"tag": "is_member", "value": True}]
    }
    small = job.estimate(spark, s, both).size
    assert small == "< 50" or small <= v.size
    carts = {
        "behaviour": {
            "source": "events",
            "within_days": 30,
            "where": {"event_type": "add_to_cart"},
            "min_count": 2,
        }
    }
    assert 50 <= job.estimate(spark, s, carts).size < job.estimate(spark, s, {"not": carts}).size

    # A seed list of phones as a CRM team would upload it: formatted, md5-hashed, junk and unknown numbers.
    truth = pd.read_parquet(Path(s.truth_root) / "identifiers.parquet")
    known = {r.id_value for r in lake.read("gold.oneid_map").where(F.col("id_type") == "phone").collect()}
    phones = [p for p in truth[truth.id_type == "phone"]["id_value"] if keyed(p) in known][:60]
    lines = ["phone"] + [p[3:6] + " " + p[6:10] + " " + p[10:] for p in phones[:30]]
    lines += [hashlib.md5(p[3:].encode()).hexdigest().upper() for p in phones[30:]]
    lines += ["not a phone", "13900000000", "+86 199 0000 1234"]
    seed_file = Path(s.data_root) / "seed.csv"
    seed_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    v = job.create(spark, s, {"name": "crm upload", "seed": {"path": str(seed_file), "id_type": "phone"}})
    counts = v.details["seed_list"]
    assert (counts["invalid"], counts["matched"], counts["unmatched"]) == (2, 60, 1), counts
    assert v.kind == "seed" and 40 <= v.size <= counts["matched"]
    # The version names the list, never where it was: the file name only.
    assert (
        counts["name"] == "seed.csv" and "path" not in counts and v.definition["seed"]["path"] == "seed.csv"
    )
    assert str(s.data_root) not in json.dumps([v.definition, v.details])

    # Fewer than 50 people matched (CDP_MIN_GROUP_SIZE): refused with one message, whether one phone is
    # known, unknown, or hidden among unknown ones; from memory as from a file.
    answers = set()
    for values in ([phones[0]], ["13900000000"], [phones[0], *(f"1390000{i:04d}" for i in range(100))]):
        with pytest.raises(SeedListError, match="matched fewer than 50 people") as refused:
            job.create(
                spark, s, {"name": "one phone", "seed": {"path": "x", "id_type": "phone"}}, seed_values=values
            )
        answers.add(str(refused.value))
    seed_file.write_text(phones[0] + "\n", encoding="utf-8")
    with pytest.raises(SeedListError) as refused:
        job.create(spark, s, {"name": "one phone", "seed": {"path": str(seed_file), "id_type": "phone"}})
    answers.add(str(refused.value))
    assert len(answers) == 1 and phones[0] not in answers.pop()
    assert "one_phone" not in {a.audience_id for a in job.list_audiences(spark, s)}


def test_lookalike_and_its_evaluation(spark, env) -> None:
    s, lake = env
    job.create(
        spark, s, {"name": "baby buyers", "rule": {"tag": "purchase_count_baby_90d", "op": ">=", "value": 1}}
    )
    res = job.lookalike(spark, s, "baby_buyers", size=300, splits=2)
    out = res.audience
    assert out.kind == "lookalike" and out.size <= 300 and out.size >= 290
    seed = members_of(lake, "baby_buyers", 1)
    got = lake.read("gold.audience_members").where(F.col("audience_id") == out.audience_id).toPandas()
    assert not (set(got.oneid) & seed) and got.score.notna().all()
    optouts = {r.oneid for r in optouts_on(spark, s, lake, datetime.date(2026, 11, 1)).collect()}
    assert optouts and not set(got.oneid) & optouts
    ev = res.evaluation
    assert (
        ev is not None
        and "purchase_count_baby_90d" in ev.excluded
        and "purchase_count_baby_90d" not in out.details["features"]
    )
    assert ev.model.lift["1%"] > 1 and 0.5 < ev.model.auc <= 1
    assert out.details["evaluation"]["model"]["lift"]["1%"] == ev.model.lift["1%"]
    # The same lake gives the same lookalike (rows reach the driver in any order; the model does not).
    again = job.lookalike(spark, s, "baby_buyers", size=300, splits=2, name="baby buyers again")
    members_again = lake.read("gold.audience_members").where(F.col("audience_id") == "baby_buyers_again")
    assert set(members_again.toPandas().oneid) == set(got.oneid)
    assert again.evaluation is not None and again.evaluation.model == ev.model

    job.create(spark, s, {"name": "tiny", "rule": {"tag": "purchase_count_90d", "op": ">=", "value": 10**6}})
    with pytest.raises(SeedTooSmallError, match="a lookalike needs at least 50"):
        job.lookalike(spark, s, "tiny", size=100)
    # Sizes out of range are refused before any training, with the reason.
    for size, words in (
        (0, "between 1 and"),
        (10**8, "between 1 and 50,000,000"),
        (10**7, "ask for at most"),
    ):
        with pytest.raises(AudienceError, match=words):
            job.lookalike(spark, s, "baby_buyers", size=size)
    with pytest.raises(AudienceError, match="ask for at most"):
        job.lookalike(spark, s, "baby_buyers", top_percent=100)


def test_lookalike_evaluates_on_a_bounded_sample_and_trains_once(spark, env, monkeypatch) -> None:
    """Every split of the evaluation retrains the model, so a job evaluates on at most ``EVAL_ROWS`` sample
    rows and ``EVAL_SEED_ROWS`` seed members (weighted back to the seed) and trains its own model once, on
    every row it brought to the driver."""
    from jobs.audiences import lookalikes

    s, _ = env
    job.create(
        spark, s, {"name": "recent buyers", "rule": {"tag": "purchase_count_90d", "op": ">=", "value": 1}}
    )
    monkeypatch.setattr(lookalikes, "EVAL_ROWS", 1_000)
    monkeypatch.setattr(lookalikes, "EVAL_SEED_ROWS", 200)
    production = []
    train = lookalikes.train_crossfit

    def counted(x_seed, x_unlabelled, *args, **kwargs):
        production.append((len(x_seed), len(x_unlabelled)))
        return train(x_seed, x_unlabelled, *args, **kwargs)

    monkeypatch.setattr(lookalikes, "train_crossfit", counted)
    res = job.lookalike(spark, s, "recent_buyers", size=100, splits=1)
    ev = res.evaluation
    assert ev is not None and (ev.splits, ev.sampled, ev.seed_size) == (1, 1_000, res.seed_size)
    assert any("evaluated on 200 seed and 1,000 sample rows" in n for n in ev.notes), ev.notes
    assert len(production) == 1 and production[0][0] == res.seed_size > 200
    assert production[0][1] > 1_000  # the model is trained on the whole driver sample, not the evaluation's


def test_export_packs_with_consent_and_minimum_size(spark, env) -> None:
    s, lake = env
    job.create(spark, s, {"name": "everyone with a phone", "rule": {"tag": "is_member", "value": True}})
    with pytest.raises(PackTooSmallError, match="the minimum is 1,000"):
        job.export(spark, s, "everyone_with_a_phone", "tencent", id_types=["phone"], min_size=10**6)
    m = job.export(spark, s, "everyone_with_a_phone", "tencent", id_types=["phone", "oaid"], min_size=100)
    folder = Path(s.packs_root) / "everyone_with_a_phone" / "v1" / "tencent"
    assert m.path == str(folder) and (folder / "manifest.json").is_file()
    saved = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert (
        saved["audience_id"] == "everyone_with_a_phone" and saved["rule"]
        if "rule" in saved
        else saved["definition"]["rule"]
    )
    assert saved["lines"] == m.lines == sum(f["lines"] for f in saved["files"])
    lines = read_pack_lines(folder)
    phones = next(v for k, v in lines.items() if "hash_mobile_phone" in k)
    assert len(phones) == m.id_types["phone"]["lines"] and all(len(x) == 32 for x in phones)
    # No line of an opted-out person: their phones' md5 (from silver) never appear.
    opted = optouts_on(spark, s, lake, datetime.date(2026, 11, 1)).select(F.col("oneid").alias("_o"))
    opted_ids = (
        lake.read("gold.oneid_map")
        .join(opted, F.col("oneid").cast("string") == F.col("_o"))
        .select("id_type", "id_value")
    )
    hashes = AudienceContext(spark, s, lake).platform_hashes()
    banned = {r.md5 for r in hashes.join(opted_ids, ["id_type", "id_value"]).collect() if r.md5}
    assert banned and not banned & set(phones)
    rows = lake.read("gold.audience_exports").collect()
    assert [(r.audience_id, r.destination, r.lines) for r in rows] == [
        ("everyone_with_a_phone", "tencent", m.lines)
    ]


def test_refresh_for_a_new_date_and_the_cli(spark, env, tmp_path) -> None:
    from typer.testing import CliRunner

    from apps.cli.main import app
    from jobs import identity, tags

    s, _ = env
    job.create(
        spark,
        s,
        {
            "name": "scheduled",
            "rule": FEMALE_BUYERS,
            "exports": [{"destination": "csv", "id_types": ["phone"]}],
        },
    )
    identity.run(spark, s, DT2)  # no new files: the same people on the next date
    tags.run(spark, s, DT2, layers=["raw", "fact", "model"])
    report = job.refresh(spark, s, DT2)
    refreshed = {r.split("@")[0] for r in report.refreshed}
    assert "scheduled" in refreshed
    assert all(
        job.show(spark, s, a).kind in ("rule", "engagement") for a in refreshed
    )  # not seed lists, lookalikes
    assert any("scheduled" in line for line in report.refused + report.exports)
    latest = job.show(spark, s, "scheduled")
    assert latest.dt == DT2 and latest.version == 2 and job.show(spark, s, "scheduled", 1).dt == DT1

    runner = CliRunner()
    environment = {"CDP_PII_KEY": KEY, "CDP_DATA_ROOT": s.data_root, "CDP_MIN_PACK_SIZE": "50"}
    out = runner.invoke(app, ["audience", "estimate", json.dumps(FEMALE_BUYERS)], env=environment)
    assert out.exit_code == 0 and "people (" in out.output, out.output

    def said(args: list[str], code: int = 0) -> str:
        """The CLI's output on one line (the console wraps long lines)."""
        out = runner.invoke(app, ["audience", *args], env=environment)
        assert out.exit_code == code, (args, out.output)
        return " ".join(out.output.split())

    tiny = said(["estimate", '{"tag": "age", "op": ">=", "value": 500}'])
    assert "< 50 people (– of" in tiny and "< 50 more match" in tiny, tiny
    assert "fewer than 50 people" in said(["insight", "one_person"], 1)
    assert "one_person@2: < 50; both < 50" in said(["overlap", "female_buyers", "one_person"])  # refreshed
    assert "between 1 and 50,000,000" in said(["lookalike", "female_buyers", "--size", "100000000"], 1)
    out = runner.invoke(app, ["audience", "estimate", '{"tag": "gendre", "value": "F"}'], env=environment)
    assert out.exit_code == 1 and "did you mean gender" in out.output
    rule = tmp_path / "rule.yaml"
    rule.write_text("name: cli women\nrule:\n  tag: gender\n  value: F\n", encoding="utf-8")
    out = runner.invoke(app, ["audience", "create", str(rule)], env=environment)
    assert out.exit_code == 0 and "cli_women v1" in out.output, out.output
    for args in (
        ["list"],
        ["show", "cli_women"],
        ["insight", "cli_women", "--top", "5"],
        ["overlap", "cli_women", "female_buyers"],
    ):
        out = runner.invoke(app, ["audience", *args], env=environment)
        assert out.exit_code == 0, (args, out.output)
    out = runner.invoke(
        app,
        ["audience", "export", "cli_women", "--destination", "meta", "--id-types", "phone,email"],
        env=environment,
    )
    assert out.exit_code == 0 and "cli_women v1 -> meta" in out.output, out.output
    out = runner.invoke(app, ["audience", "export", "cli_women", "--destination", "tiktok"], env=environment)
    assert out.exit_code == 1 and "unknown destination 'tiktok'" in out.output
    out = runner.invoke(app, ["audience", "create", str(rule)], env=environment)
    assert out.exit_code == 1 and "--new-version" in out.output, out.output
    out = runner.invoke(app, ["audience", "create", str(rule), "--new-version"], env=environment)
    assert out.exit_code == 0 and "cli_women v2" in out.output, out.output


@pytest.mark.slow
def test_lookalike_quality_on_the_demo_truth(spark, settings, tmp_path) -> None:
    """Hide-and-recover on a ground-truth segment (mothers of young children), gender and age tags and every
    tag computed from them excluded, seeds of 1,000 OneIDs with 30 % hidden, figures averaged over three seed
    draws. Target: lift@1% >= 5 and above the centroid and logistic-regression baselines.

    Seeds of 100 and 10,000 need a larger population than a test builds (30 hidden members of a 100 seed
    among 20k OneIDs swing lift@1% by several points from draw to draw): ``make bench`` and the README
    report them."""
    from demo.evaluate import evaluate_on_truth

    s = build_population(spark, settings, tmp_path, 12_000, [DT1])
    result = evaluate_on_truth(spark, s, "seg_mom_baby", seed_sizes=(1_000,), splits=3, draws=3)
    print("\n".join(result.lines()))
    assert {"inferred_gender", "inferred_age_band"} <= set(result.excluded)
    ev = result.by_seed_size[1_000]
    assert ev.splits == 9, result.lines()
    assert ev.model.lift["1%"] >= 5, result.lines()
    assert ev.model.lift["1%"] > ev.centroid.lift["1%"], result.lines()
    assert ev.model.lift["1%"] > ev.logistic.lift["1%"], result.lines()
    assert ev.model.auc > max(ev.centroid.auc, ev.logistic.auc), result.lines()
