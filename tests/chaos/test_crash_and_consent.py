"""Crashes, concurrent runs and consent on copies of the demo lake, with real processes:

- a consent ingest killed at a seeded step, then killed again right after its silver commit, leaves silver
  marked half-written: readers see the stage's tables at their last complete version, exports refuse, naming
  the rerun; the rerun gives the clean run's tables and the clean run's row balance;
- a CLI run beside a run holding the tables' leases (a DAG task) is refused with one line, tables untouched;
- opt-outs ingested after an audience version was made never reach its pack; a consent batch that failed
  stops every export until it is fixed, or an admin overrides it (audited).
"""

from __future__ import annotations

import datetime
import json
import os
import random
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from audiences.packs import read_pack_lines
from cdp.lake import Lake
from cdp.leases import Holder, lease
from cdp.run import REFUSED
from jobs import audiences as job
from jobs import ingest
from jobs.audiences.context import AudienceContext, ConsentNotAppliedError

DAY2, DAY3 = "2026-11-02", "2026-11-03"
CDP = str(Path(sys.executable).parent / "cdp")
REPO = Path(__file__).resolve().parents[2]
HEADER = "record_id,member_id,phone,purpose,status,updated_at"
STAGE_TABLES = ("bronze.consent", "silver.consent")
"""Tables of the consent ingest that hold rows before the kill (both existed before this date's run)."""
EARLY_STEPS = ("parse+typed", "bronze+quarantine", "candidates", "counts", "quality")
"""Steps of an ingest run before its silver commit (``RunContext.step`` names)."""


def _people_with_phone_and_member_id(spark, lake: Lake, audience: str, n: int) -> list[tuple[str, str]]:
    """``(oneid, member_id)`` of ``n`` members of the audience's version 1 who have a phone."""
    members = lake.read("gold.audience_members").where(F.col("audience_id") == audience).select("oneid")
    ids = lake.read("gold.oneid_map").withColumn("oneid", F.col("oneid").cast("string"))
    phones = ids.where(F.col("id_type") == "phone").select("oneid").distinct()
    member_ids = ids.where(F.col("id_type") == "member_id").select("oneid", F.col("id_value").alias("m"))
    rows = members.join(phones, "oneid").join(member_ids, "oneid").orderBy("oneid").limit(n).collect()
    return [(r.oneid, r.m) for r in rows]


def _land_consent(settings, dt: str, rows: list[str], name: str = "consent_late.csv") -> None:
    folder = Path(settings.landing_root) / "consent" / f"dt={dt}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")


def _optouts(member_ids: list[str], when: str = "2026-11-02 09:00:00") -> list[str]:
    return [f"{uuid.uuid5(uuid.NAMESPACE_OID, m)},{m},,all,opt_out,{when}" for m in member_ids]


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CDP, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
        timeout=300,
    )


def _table(lake: Lake, table: str, drop: tuple[str, ...] = ()) -> list[tuple]:
    df = lake.read(table)
    cols = sorted(c for c in df.columns if c not in drop)
    root = str(Path(lake.root).parent)  # the data root: landing paths differ between the copies
    return sorted(tuple(str(v).replace(root, "<root>") for v in r) for r in df.select(*cols).collect())


@pytest.fixture(scope="module")
def lakes(spark, copy_demo_lake, tmp_path_factory):
    """A clean copy and a crash copy of the demo lake, each with an audience made before the late opt-outs."""
    out = []
    for name in ("clean", "crash"):
        s = copy_demo_lake(tmp_path_factory.mktemp(name) / "data", min_pack_size=10)
        job.create(spark, s, {"name": "members", "rule": {"tag": "is_member", "value": True}})
        out.append((s, Lake(spark, s.lake_root)))
    return out


def test_a_kill_after_the_silver_commit_is_repaired_by_the_rerun_with_the_clean_run_log(spark, lakes) -> None:
    (clean_s, clean), (crash_s, crash) = lakes
    people = _people_with_phone_and_member_id(spark, clean, "members", 6)
    for s in (clean_s, crash_s):
        _land_consent(s, DAY2, _optouts([m for _, m in people]))
    expected = ingest.run(spark, clean_s, "consent", DAY2)
    assert expected.silver_written == len(people) and expected.balanced

    # A kill at a seeded step (print the seed: CDP_CHAOS_SEED=<seed> replays it), then the repair is killed
    # too, right after its silver commit (the case where the rerun used to log "silver 0 + duplicates 6").
    complete = {t: (crash.version(t), _table(crash, t, ("_ingested_at",))) for t in STAGE_TABLES}
    seed = int(os.environ.get("CDP_CHAOS_SEED") or random.SystemRandom().randrange(10**6))
    step = random.Random(seed).choice(EARLY_STEPS)
    print(f"chaos seed {seed}: first kill at ingest:{step}")
    for at in (step, "merge"):
        args = ("ingest", "consent", "--dt", DAY2, "--data-root", str(crash_s.data_root))
        killed = _cli(*args, CDP_CHAOS_KILL_AT=f"ingest:{at}")
        assert killed.returncode == -9, f"seed {seed}: {killed.stderr[-2000:]}"
    # Half-written: silver and bronze are ahead of the run log. Readers see every table of the stage at its
    # last complete version, the one before the first killed run; exports refuse, naming the fix.
    for t, (version, rows) in complete.items():
        assert crash.version(t) > version or t != "silver.consent", "the kill came after the silver commit"
        assert crash.readable_version(t) == version, t
        assert _table(crash, t, ("_ingested_at",)) == rows, t
    with pytest.raises(ConsentNotAppliedError, match="stopped before it finished"):
        job.export(spark, crash_s, "members", "tencent", id_types=["phone"])
    leftover = list(Path(crash_s.data_root, "_scratch").glob("ingest/*/*"))
    assert leftover, "the killed run's scratch should still be there before the next start"

    rerun = ingest.run(spark, crash_s, "consent", DAY2)
    assert rerun.balance_line() == expected.balance_line()
    assert not any(p.exists() for p in leftover), "the next start removes a killed run's scratch"
    assert _table(crash, "silver.consent", ("_ingested_at",)) == _table(
        clean, "silver.consent", ("_ingested_at",)
    )
    plain = ("_ingested_at", "phone")  # phone is encrypted with a fresh IV per value
    assert _table(crash, "bronze.consent", plain) == _table(clean, "bronze.consent", plain)
    assert crash.read("vault.identifiers").count() == clean.read("vault.identifiers").count()
    runs = ("status", "rows_in", "silver_written", "duplicates", "quarantined", "held_back")
    for lake in (clean, crash):
        got = lake.read("gold.ingest_runs").where(F.col("dt") == F.lit(datetime.date(2026, 11, 2)))
        assert [tuple(r) for r in got.select(*runs).collect()] == [("ok", 6, 6, 0, 0, 0)]


def test_a_cli_run_beside_a_running_one_is_refused_in_one_line(lakes) -> None:
    _, (crash_s, crash) = lakes
    before = crash.version("silver.consent")
    holder = Holder(job="ingest consent", dt=DAY2, run_id="dagtask")
    with lease(crash.root, ["silver.consent"], holder):  # what a DAG task holds while it runs
        refused = _cli("ingest", "consent", "--dt", DAY2, "--data-root", str(crash_s.data_root))
    assert refused.returncode == REFUSED and "Traceback" not in refused.stderr
    lines = [line for line in refused.stderr.splitlines() if line.strip() and "sail" not in line]
    assert lines == [
        f"silver.consent is being written by ingest consent {DAY2} (run dagtask, pid {os.getpid()} on "
        f"{holder.host}, since {holder.started} UTC); try again when it has finished; set "
        "CDP_LEASE_WAIT=<seconds> to wait for it"
    ]
    assert crash.version("silver.consent") == before


def test_late_optouts_never_reach_a_pack_and_a_failed_consent_batch_stops_exports(spark, lakes) -> None:
    (s, lake), _ = lakes  # the clean copy: its late opt-outs were ingested after the audience was made
    people = _people_with_phone_and_member_id(spark, lake, "members", 6)
    opted = {oneid for oneid, _ in people}
    hashes = AudienceContext(spark, s, lake).platform_hashes()
    phone_ids = (
        lake.read("gold.oneid_map")
        .where((F.col("id_type") == "phone") & F.col("oneid").cast("string").isin(*opted))
        .select("id_type", "id_value")
    )
    banned = {r.md5 for r in hashes.join(phone_ids, ["id_type", "id_value"]).collect() if r.md5}
    assert len(banned) >= len(opted)

    m = job.export(spark, s, "members", "tencent", id_types=["phone"])
    phones = next(v for k, v in read_pack_lines(Path(m.path)).items() if "hash_mobile_phone" in k)
    assert phones and not banned & set(phones), "an opt-out ingested after the version leaked into its pack"

    # A consent batch held back (every row unreadable): exports refuse until it is fixed or overridden.
    _land_consent(s, DAY3, [f"r{i},{mid},,all,opt_out,not-a-time" for i, (_, mid) in enumerate(people)])
    with pytest.raises(ingest.IngestError):
        ingest.run(spark, s, "consent", DAY3)
    with pytest.raises(ConsentNotAppliedError, match=r"consent batch of 2026-11-03 is not applied"):
        job.export(spark, s, "members", "tencent", id_types=["phone"])
    job.export(spark, s, "members", "tencent", id_types=["phone"], consent_override="regulator deadline")
    audit = lake.read("gold.audit_log").where(F.col("action") == "consent_override").collect()
    assert len(audit) == 1 and json.loads(audit[0].detail_json)["reason"] == "regulator deadline"
    _land_consent(s, DAY3, _optouts([m for _, m in people], "2026-11-03 09:00:00"))  # the fixed file
    ingest.run(spark, s, "consent", DAY3)
    job.export(spark, s, "members", "tencent", id_types=["phone"])
