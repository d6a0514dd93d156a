"""A curious insider against the web API (issue 17): every way a marketer could single out one person with the
audience tools, played against the test lake with a minimum group size of 10 (tests/apps/web/conftest.py).

- a seed list of one phone number: no size, no audience, no insight, and the same answer whether the phone is
  known or not; a longer list is matched in memory and leaves nothing behind, and no answer holds a path;
- an estimate that picks out one person (a device id, a unique combination of tags) says "< 10", not 1 or 0;
- insight cells, tag distributions and overlaps below 10 people are hidden, and what would give them away;
- a lookalike of 100,000,000 people, of 0 people or of more people than the lake holds is refused at once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pyspark.sql import functions as F

pytestmark = pytest.mark.slow

K = 10
HIDDEN = f"< {K}"
UNKNOWN_PHONE = "+8613900000000"


@pytest.fixture(scope="module")
def client(web_lake):
    assert web_lake.settings.min_group_size == K
    with TestClient(web_lake.app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def marketer(web_lake):
    return {"Authorization": f"Bearer {web_lake.tokens['marketer']}"}


@pytest.fixture(scope="module")
def lake(web_lake):
    from cdp.lake import Lake

    return Lake(web_lake.app.state.web.spark, web_lake.settings.lake_root)


@pytest.fixture(scope="module")
def known_phones(web_lake, lake) -> list[str]:
    """Plain phone numbers of the generated people that the OneID map knows (by their keyed hash)."""
    import pandas as pd

    key = web_lake.settings.pii_key
    known = {r.id_value for r in lake.read("gold.oneid_map").where(F.col("id_type") == "phone").collect()}
    truth = pd.read_parquet(Path(web_lake.settings.truth_root) / "identifiers.parquet")
    phones = sorted({p for p in truth[truth.id_type == "phone"]["id_value"] if keyed(key, p) in known})
    assert keyed(key, UNKNOWN_PHONE) not in known and len(phones) > 3 * K
    return phones


@pytest.fixture(scope="module")
def one_person(lake) -> dict:
    """A rule that selects exactly one person of the profile, under 30: a unique (province, age, gender)."""
    profile = lake.read("gold.profile").where(F.col("age") < 30)
    keys = ["province", "age", "gender"]
    row = (
        profile.where(F.col("province").isNotNull() & F.col("gender").isNotNull())
        .groupBy(*keys)
        .count()
        .where(F.col("count") == 1)
        .orderBy(*keys)
        .first()
    )
    assert row is not None
    return {"all": [{"tag": t, "op": "=", "value": row[t]} for t in keys]}


def keyed(key: str, value: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def hidden_or_at_least_k(count) -> bool:
    """A count the API may show: a number from k up, "< k", or null (withheld)."""
    return count is None or count == HIDDEN or (isinstance(count, int) and count >= K)


def files_under(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            stat = path.stat()
            out[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return out


def no_path_in(response, web_lake) -> None:
    text = response.text
    for fragment in (
        str(web_lake.settings.data_root),
        str(Path(web_lake.settings.data_root).parent),
        "uploads",
    ):
        assert fragment not in text, (fragment, text[:500])


def seed(client, headers, name: str, lines: list[str], id_type: str = "phone"):
    return client.post(
        "/api/audiences/seed",
        json={"name": name, "id_type": id_type, "identifiers": "\n".join(lines)},
        headers=headers,
    )


# ---- seed lists ------------------------------------------------------------------------------------------


def test_a_seed_of_one_phone_gives_no_size_no_audience_and_no_answer_about_the_phone(
    client, marketer, web_lake, known_phones
) -> None:
    before = {a["audience_id"] for a in client.get("/api/audiences", headers=marketer).json()["audiences"]}
    known = seed(client, marketer, "one known phone", [known_phones[0]])
    unknown = seed(client, marketer, "one known phone", [UNKNOWN_PHONE])
    assert known.status_code == unknown.status_code == 422, known.text
    assert known.json() == unknown.json()  # the same words whether the phone is in the CDP or not
    detail = known.json()["detail"]
    assert f"fewer than {K}" in detail and known_phones[0] not in detail
    no_path_in(known, web_lake)
    # Fewer than k known phones, with unknown ones around them: the same answer again.
    few = seed(client, marketer, "one known phone", [*known_phones[: K - 1], UNKNOWN_PHONE, "junk"])
    assert few.status_code == 422 and few.json() == known.json()
    after = {a["audience_id"] for a in client.get("/api/audiences", headers=marketer).json()["audiences"]}
    assert after == before  # nothing saved, so no insight to ask for
    r = client.get("/api/audiences/one_known_phone/insight", headers=marketer)
    assert r.status_code == 404


def test_a_seed_list_is_matched_in_memory_and_leaves_no_file_and_no_path(
    client, marketer, web_lake, known_phones
) -> None:
    root = Path(web_lake.settings.data_root)
    before = files_under(root)
    phones = known_phones[: 2 * K]
    r = seed(client, marketer, "privacy seed", [*phones, UNKNOWN_PHONE, "not a phone"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["kind"] == "seed" and hidden_or_at_least_k(body["size"])
    assert body["match"]["lines"] == len(phones) + 2 and body["match"]["matched"] == len(phones)
    assert body["match"]["unmatched"] == HIDDEN and body["match"]["invalid"] == HIDDEN
    assert "path" not in body["match"] and "path" not in body["definition"]
    no_path_in(r, web_lake)
    for url in ("/api/audiences", "/api/audiences/privacy_seed"):
        page = client.get(url, headers=marketer)
        assert page.status_code == 200 and "privacy_seed" in page.text
        no_path_in(page, web_lake)
    assert not (root / "web" / "uploads").exists()
    changed = [p for p, stat in files_under(root).items() if before.get(p) != stat]
    for path in changed:
        data = Path(path).read_bytes()
        assert not any(p.encode() in data or p[3:].encode() in data for p in phones[:5]), path


# ---- estimates, saved sizes, insight, overlap ------------------------------------------------------------


def test_an_estimate_of_one_person_says_less_than_k(client, marketer, lake, one_person) -> None:
    r = client.post("/api/audiences/estimate", json={"rule": one_person}, headers=marketer)
    assert r.status_code == 200, r.text
    est = r.json()
    assert (est["size"], est["opted_out"], est["share"]) == (HIDDEN, HIDDEN, None)
    assert est["population"] > 1000
    nobody = {"tag": "age", "op": ">=", "value": 500}
    zero = client.post("/api/audiences/estimate", json={"rule": nobody}, headers=marketer).json()
    keys = ("size", "opted_out", "share", "population")
    assert [zero[k] for k in keys] == [est[k] for k in keys]  # one person and nobody read the same
    # One device id: refused as a filter on an identifier, or "< k", never 1.
    oaid = (
        lake.read("silver.events")
        .where(F.col("oaid").isNotNull())
        .groupBy("oaid")
        .count()
        .orderBy(F.col("count").desc(), "oaid")
        .first()["oaid"]
    )
    device = {"behaviour": {"source": "events", "within_days": 3650, "where": {"oaid": oaid}}}
    r = client.post("/api/audiences/estimate", json={"rule": device}, headers=marketer)
    assert r.status_code == 422 or (r.status_code == 200 and r.json()["size"] == HIDDEN), r.text


def test_a_saved_audience_of_one_person_has_no_size_no_insight_and_no_overlap(
    client, marketer, one_person
) -> None:
    r = client.post("/api/audiences", json={"name": "Single person", "rule": one_person}, headers=marketer)
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved["size"] == HIDDEN and all(n == HIDDEN for n in saved["id_type_counts"].values())
    page = client.get("/api/audiences/single_person", headers=marketer).json()
    assert page["audience"]["size"] == HIDDEN and [s["size"] for s in page["sizes"]] == [HIDDEN]
    listed = client.get("/api/audiences", headers=marketer).json()["audiences"]
    assert next(a for a in listed if a["audience_id"] == "single_person")["size"] == HIDDEN

    r = client.get("/api/audiences/single_person/insight", headers=marketer)
    assert r.status_code == 422 and f"fewer than {K}" in r.json()["detail"], r.text

    for a, b in (("members_30", "single_person"), ("single_person", "members_30")):
        o = client.get(f"/api/audiences/{a}/overlap", params={"other": b}, headers=marketer).json()
        sizes = (o["size_a"], o["size_b"])
        assert HIDDEN in sizes and any(isinstance(n, int) and n >= K for n in sizes), o
        assert o["both"] == HIDDEN and o["either"] is None
        assert o["jaccard"] is None and o["share_of_a"] is None and o["share_of_b"] is None


def test_overlap_withholds_the_intersection_when_one_side_minus_it_is_small(
    client, marketer, one_person
) -> None:
    """members_30 and members_30 plus one younger person: the intersection would single that person out.

    The two sizes themselves still differ by one (a differencing attack the minimum group size alone does
    not stop; see the issue)."""
    plus_one = {"any": [{"tag": "age", "op": ">=", "value": 30}, one_person]}
    r = client.post(
        "/api/audiences", json={"name": "Members 30 plus one", "rule": plus_one}, headers=marketer
    )
    assert r.status_code == 201, r.text
    o = client.get(
        "/api/audiences/members_30/overlap", params={"other": "members_30_plus_one"}, headers=marketer
    ).json()
    extra = o["size_b"] - o["size_a"]
    assert extra in (0, 1), o  # 0 when that person opted out
    if extra:
        assert o["both"] is None and o["either"] is None and o["share_of_a"] is None
        assert o["share_of_b"] is None and o["jaccard"] is None
    else:
        assert o["both"] == o["size_a"]
    same = client.get("/api/audiences/members_30/overlap", params={"other": "members_30"}, headers=marketer)
    assert same.json()["both"] == same.json()["size_a"]  # nobody outside: a group of zero, shown


def test_insight_hides_cells_below_k_with_their_share_and_tgi(client, marketer, web_lake) -> None:
    from jobs import audiences as job

    ins = client.get("/api/audiences/members_30/insight", headers=marketer).json()
    assert ins["size"] >= K and ins["tgi"]
    assert all(hidden_or_at_least_k(t["people"]) for t in ins["id_types"])
    # Every row, not only the 60 the page shows.
    full = job.insight(web_lake.app.state.web.spark, web_lake.settings, "members_30")
    rows = [
        {
            "audience_count": r.audience_count,
            "share": r.audience_share,
            "population_count": r.population_count,
            "base_share": r.population_share,
            "tgi": r.tgi,
        }
        for r in full.rows
    ]
    for r in [*ins["tgi"], *rows]:
        assert hidden_or_at_least_k(r["audience_count"]) and hidden_or_at_least_k(r["population_count"]), r
        if not isinstance(r["audience_count"], int):
            assert r["share"] is None and r["tgi"] is None
        if not isinstance(r["population_count"], int):
            assert r["base_share"] is None and r["tgi"] is None
    assert any(r["audience_count"] == HIDDEN for r in rows)  # the test lake has rare values
    first_hidden = next(i for i, r in enumerate(rows) if r["tgi"] is None)
    assert all(r["tgi"] is None for r in rows[first_hidden:])  # hidden rows last: their place tells nothing


def test_tag_distributions_hide_groups_below_k(client, marketer) -> None:
    tags = client.get("/api/tags", headers=marketer).json()["tags"]
    seen_hidden = False
    for t in tags:
        d = client.get(f"/api/tags/{t['id']}", headers=marketer).json()
        stats = d["stats"]
        if "people" in stats:
            assert hidden_or_at_least_k(stats["people"]), (t["id"], stats)
            if not isinstance(stats["people"], int):
                assert stats["coverage"] is None
        numeric = [x["value"] for x in stats["distribution"]][:1] == ["min"]
        for x in [] if numeric else stats["distribution"]:
            assert hidden_or_at_least_k(x["count"]), (t["id"], x)
            seen_hidden |= not isinstance(x["count"], int)
    assert seen_hidden  # some tag of the test lake has a value fewer than 10 people hold


# ---- lookalike sizes -------------------------------------------------------------------------------------


def test_lookalike_sizes_out_of_range_are_refused_at_once(client, marketer) -> None:
    def tasks() -> int:
        return len(client.get("/api/tasks", headers=marketer).json()["tasks"])

    queued = tasks()
    for size in (100_000_000, 0, -5):
        r = client.post("/api/audiences/members_30/lookalike", json={"size": size}, headers=marketer)
        assert r.status_code == 422 and "size" in r.json()["detail"], r.text
    r = client.post("/api/audiences/members_30/lookalike", json={"size": 1_000_000}, headers=marketer)
    assert r.status_code == 422 and "ask for at most" in r.json()["detail"], r.text
    assert tasks() == queued  # refused before any task was queued


def test_the_lookalike_bounds_of_the_api_and_the_job_agree() -> None:
    from apps.web.models import MAX_LOOKALIKE_SIZE
    from jobs.audiences.lookalikes import MAX_LOOKALIKE_SIZE as JOB_MAX

    assert MAX_LOOKALIKE_SIZE == JOB_MAX < 100_000_000
