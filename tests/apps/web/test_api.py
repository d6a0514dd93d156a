"""The web API on a real small lake (demo population -> ingest -> identity -> tags -> audiences): every
endpoint with each role, auth failures (no token, wrong token, wrong role), bad input answered with a 4xx and
a reason, the hashed-only rule for marketers, and the audit rows of exports and downloads."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from web_checks import refused

pytestmark = pytest.mark.slow

WOMEN = {"all": [{"tag": "gender", "op": "=", "value": "F"}]}


def ok(response, status: int = 200):
    assert response.status_code == status, response.text
    return response.json()


PROTECTED = [
    ("GET", "/api/me", None),
    ("GET", "/api/tags", None),
    ("GET", "/api/tags/gender", None),
    ("POST", "/api/audiences/estimate", {"rule": WOMEN}),
    ("GET", "/api/audiences", None),
    ("POST", "/api/audiences", {"name": "x", "rule": WOMEN}),
    ("GET", "/api/audiences/members_30", None),
    ("GET", "/api/audiences/members_30/insight", None),
    ("GET", "/api/audiences/members_30/overlap?other=members_30", None),
    ("POST", "/api/audiences/members_30/lookalike", {"size": 10}),
    ("POST", "/api/audiences/seed", {"name": "s", "id_type": "phone", "identifiers": "1"}),
    ("GET", "/api/destinations", None),
    ("POST", "/api/audiences/members_30/packs", {"destination": "csv", "id_types": ["phone"]}),
    ("GET", "/api/packs", None),
    ("GET", "/api/packs/members_30/v1/csv/manifest", None),
    ("GET", "/api/packs/members_30/v1/csv/download", None),
    ("GET", "/api/tasks", None),
    ("GET", "/api/tasks/abc", None),
    ("GET", "/api/sql/tables", None),
    ("POST", "/api/sql", {"query": "SELECT 1"}),
    ("GET", "/api/audit", None),
]


def test_every_endpoint_needs_a_valid_token(client) -> None:
    for method, path, body in PROTECTED:
        for headers in ({}, {"Authorization": "Bearer cdp_not_a_token"}, {"Authorization": "Basic eDp5"}):
            r = client.request(method, path, json=body, headers=headers)
            refused(r, 401, "token")
            assert r.headers.get("www-authenticate") == "Bearer"


def test_session_health_ui_and_openapi(client, auth) -> None:
    assert ok(client.get("/api/health")) == {"status": "ok"}
    me = ok(client.get("/api/me", headers=auth("marketer")))
    assert me["role"] == "marketer" and "packs.raw" not in me["permissions"]
    assert "sql" in ok(client.get("/api/me", headers=auth("analyst")))["permissions"]
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text and "//cdn" not in page.text
    for asset in ("app.js", "charts.js", "style.css", "favicon.svg"):
        r = client.get(f"/static/{asset}")
        assert r.status_code == 200 and "http://" not in r.text.replace("http://www.w3.org", "")
    spec = ok(client.get("/openapi.json"))
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    documented = set(spec["paths"])
    for _, path, _ in PROTECTED:
        route = (
            path.split("?")[0]
            .replace("members_30/v1/csv", "{pack_id}")
            .replace("members_30", "{audience_id}")
        )
        route = route.replace("/tags/gender", "/tags/{tag_id}").replace("/tasks/abc", "/tasks/{task_id}")
        assert route in documented, route
    assert client.get("/docs").status_code == 200


def test_tag_catalog(client, auth) -> None:
    everything = ok(client.get("/api/tags", headers=auth("analyst")))
    assert everything["total"] == len(everything["tags"]) > 20
    assert {x["layer"] for x in everything["layers"]} == {"raw", "fact", "model", "predictive"}
    zh = ok(client.get("/api/tags", params={"q": "性别"}, headers=auth("marketer")))["tags"]
    assert {t["id"] for t in zh} >= {"gender", "tp_gender"}
    en = ok(client.get("/api/tags", params={"q": "gender", "layer": "raw"}, headers=auth("marketer")))["tags"]
    assert {t["id"] for t in en} >= {"gender"} and all(t["layer"] == "raw" for t in en)
    assert all(0 <= t["coverage"] <= 1 for t in everything["tags"] if t["coverage"] is not None)
    facts = ok(client.get("/api/tags", params={"layer": "fact"}, headers=auth("marketer")))["tags"]
    assert facts and all(t["layer"] == "fact" for t in facts)
    refused(client.get("/api/tags", params={"layer": "gold"}, headers=auth("marketer")), 422, "layer")
    gender = ok(client.get("/api/tags/gender", headers=auth("marketer")))
    assert gender["tag"]["name_zh"] == "性别" and gender["stats"]["coverage"] > 0
    assert {d["value"] for d in gender["stats"]["distribution"]} <= {"F", "M"}
    age = ok(client.get("/api/tags/age", headers=auth("marketer")))
    assert [d["value"] for d in age["stats"]["distribution"]][:2] == ["min", "p25"]
    refused(client.get("/api/tags/no_such_tag", headers=auth("marketer")), 404, "no_such_tag")


def test_estimate_and_bad_rules(client, auth) -> None:
    started = time.perf_counter()
    est = ok(client.post("/api/audiences/estimate", json={"rule": WOMEN}, headers=auth("marketer")))
    seconds = time.perf_counter() - started
    assert 0 < est["size"] < est["population"] and est["dt"] == "2026-11-01"
    print(f"estimate through the API: {seconds:.3f} s (engine {est['seconds']} s)")
    either = {"any": [WOMEN, {"tag": "age", "op": ">=", "value": 30}]}
    wider = ok(client.post("/api/audiences/estimate", json={"rule": either}, headers=auth("analyst")))
    assert wider["size"] >= est["size"]
    cases = [
        ({"rule": {"all": [{"tag": "gendr", "op": "=", "value": "F"}]}}, ["unknown tag 'gendr'", "gender"]),
        ({"rule": {"all": [{"tag": "gender", "op": "~", "value": "F"}]}}, ["unknown operator"]),
        ({"rule": {"all": [{"tag": "age", "op": ">", "value": "old"}]}}, ["numeric"]),
        ({"rule": {"whatever": []}}, ["unknown node"]),
        ({"rule": {}}, ["empty"]),
        ({"rule": "gender=F"}, ["rule"]),
        ({"rules": WOMEN}, ["rule"]),
    ]
    for body, words in cases:
        refused(client.post("/api/audiences/estimate", json=body, headers=auth("marketer")), 422, *words)
    r = client.post(
        "/api/audiences/estimate",
        content=b"{not json",
        headers=auth("marketer") | {"Content-Type": "application/json"},
    )
    refused(r, 422)


def test_save_versions_and_read_audiences(client, auth) -> None:
    refused(
        client.post("/api/audiences", json={"name": "W", "rule": WOMEN}, headers=auth("analyst")),
        403,
        "analyst",
    )
    refused(
        client.post("/api/audiences", json={"name": "", "rule": WOMEN}, headers=auth("marketer")), 422, "name"
    )
    bad = {"name": "Bad", "rule": {"all": [{"tag": "nope", "op": "=", "value": 1}]}}
    refused(client.post("/api/audiences", json=bad, headers=auth("marketer")), 422, "nope")
    created = ok(
        client.post("/api/audiences", json={"name": "Women", "rule": WOMEN}, headers=auth("marketer")), 201
    )
    assert (
        created["audience_id"] == "women"
        and created["version"] == 1
        and created["created_by"] == "marketer-test"
    )
    again = {"name": "ignored", "audience_id": "women", "rule": WOMEN}
    v2 = ok(client.post("/api/audiences", json=again, headers=auth("admin")), 201)
    assert (v2["audience_id"], v2["version"], v2["name"]) == ("women", 2, "Women")
    listed = ok(client.get("/api/audiences", headers=auth("analyst")))["audiences"]
    assert {"women", "members_30"} <= {a["audience_id"] for a in listed}
    page = ok(client.get("/api/audiences/women", headers=auth("analyst")))
    assert [v["version"] for v in page["versions"]] == [2, 1]
    assert [s["size"] for s in page["sizes"]] == [created["size"], v2["size"]]
    refused(client.get("/api/audiences/nobody", headers=auth("analyst")), 404, "nobody")


def test_insight_and_overlap(client, auth) -> None:
    ins = ok(client.get("/api/audiences/members_30/insight", headers=auth("marketer")))
    assert ins["size"] > 0 and ins["population"] >= ins["size"] and ins["tgi"]
    assert all({"tag", "value", "tgi", "share", "base_share"} <= set(r) for r in ins["tgi"])
    assert {t["id_type"] for t in ins["id_types"]} >= {"member_id"}
    ok(client.get("/api/audiences/members_30/insight", params={"version": 1}, headers=auth("analyst")))
    refused(
        client.get("/api/audiences/members_30/insight?version=9", headers=auth("analyst")), 404, "version"
    )
    refused(
        client.get("/api/audiences/members_30/insight?version=x", headers=auth("analyst")), 422, "version"
    )
    both = ok(
        client.get("/api/audiences/members_30/overlap", params={"other": "women"}, headers=auth("analyst"))
    )
    assert 0 < both["both"] <= min(both["size_a"], both["size_b"]) and 0 < both["jaccard"] < 1
    refused(
        client.get("/api/audiences/members_30/overlap?other=ghost", headers=auth("analyst")), 404, "ghost"
    )
    refused(client.get("/api/audiences/members_30/overlap", headers=auth("analyst")), 422, "other")


def test_lookalike_task(client, auth) -> None:
    refused(client.post("/api/audiences/women/lookalike", json={"size": 50}, headers=auth("analyst")), 403)
    refused(
        client.post("/api/audiences/women/lookalike", json={"size": 0}, headers=auth("marketer")), 422, "size"
    )
    refused(
        client.post("/api/audiences/ghost/lookalike", json={"size": 50}, headers=auth("marketer")),
        404,
        "ghost",
    )
    task = ok(client.post("/api/audiences/women/lookalike", json={"size": 60}, headers=auth("marketer")), 202)
    deadline = time.monotonic() + 240
    while task["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, task
        time.sleep(0.5)
        task = ok(client.get(f"/api/tasks/{task['task_id']}", headers=auth("marketer")))
    assert task["status"] == "done", task
    result = task["result"]
    assert result["kind"] == "lookalike" and 0 < result["size"] <= 60
    assert result["evaluation"]["scorers"]["model"]["auc"] > 0.5
    assert {"centroid", "logistic"} <= set(result["evaluation"]["scorers"])
    mine = ok(client.get("/api/tasks", headers=auth("marketer")))["tasks"]
    assert task["task_id"] in {t["task_id"] for t in mine}
    assert ok(client.get("/api/tasks", headers=auth("analyst")))["tasks"] == []
    refused(client.get(f"/api/tasks/{task['task_id']}", headers=auth("analyst")), 404)
    ok(client.get(f"/api/tasks/{task['task_id']}", headers=auth("admin")))


def test_seed_list_upload(client, auth, web_lake) -> None:
    from cdp.lake import Lake

    lake = Lake(web_lake.app.state.web.spark, web_lake.settings.lake_root)
    member_ids = [
        r["id_value"] for r in lake.read("gold.oneid_map").where("id_type = 'member_id'").limit(30).collect()
    ]
    text = "\n".join([*member_ids, "", "garbage line!!", "'; DROP TABLE x"])
    body = {"name": "Uploaded members", "id_type": "member_id", "identifiers": text}
    seeded = ok(client.post("/api/audiences/seed", json=body, headers=auth("marketer")), 201)
    assert seeded["kind"] == "seed" and seeded["size"] > 0
    assert (
        seeded["match"]["matched"] == len(set(member_ids)) and seeded["match"]["lines"] == len(member_ids) + 2
    )
    junk = {"name": "Junk", "id_type": "phone", "identifiers": "hello\nworld\n12"}
    refused(client.post("/api/audiences/seed", json=junk, headers=auth("marketer")), 422, "matched")
    wrong = {"name": "Junk", "id_type": "fax", "identifiers": "1"}
    refused(client.post("/api/audiences/seed", json=wrong, headers=auth("marketer")), 422, "fax")
    empty = {"name": "Junk", "id_type": "phone", "identifiers": "\n\n"}
    refused(client.post("/api/audiences/seed", json=empty, headers=auth("marketer")), 422, "empty")
    refused(client.post("/api/audiences/seed", json=body, headers=auth("analyst")), 403)


def test_packs_export_download_and_audit(client, auth) -> None:
    dests = {
        d["name"]: d for d in ok(client.get("/api/destinations", headers=auth("marketer")))["destinations"]
    }
    tencent = {t["id_type"]: t for t in dests["tencent"]["id_types"]}
    assert tencent["phone"]["allowed"] and not tencent["wechat_openid"]["allowed"]
    admin_view = ok(client.get("/api/destinations", headers=auth("admin")))["destinations"]
    assert all(t["allowed"] for d in admin_view for t in d["id_types"])

    body = {"destination": "tencent", "id_types": ["phone", "oaid"]}
    refused(client.post("/api/audiences/women/packs", json=body, headers=auth("analyst")), 403)
    manifest = ok(client.post("/api/audiences/women/packs", json=body, headers=auth("marketer")), 201)
    assert manifest["pack_id"] == "women/v2/tencent" and manifest["people"] >= 50 and "path" not in manifest
    assert set(manifest["id_types"]) == {"phone", "oaid"} and manifest["created_by"] == "marketer-test"
    raw = {"destination": "tencent", "id_types": ["phone", "wechat_openid"]}
    refused(
        client.post("/api/audiences/women/packs", json=raw, headers=auth("marketer")), 403, "wechat_openid"
    )
    refused(
        client.post(
            "/api/audiences/women/packs",
            json={"destination": "myspace", "id_types": ["phone"]},
            headers=auth("marketer"),
        ),
        422,
        "myspace",
    )
    refused(
        client.post(
            "/api/audiences/women/packs",
            json={"destination": "google", "id_types": ["imei"]},
            headers=auth("marketer"),
        ),
        422,
        "imei",
    )
    refused(
        client.post(
            "/api/audiences/women/packs",
            json={"destination": "csv", "id_types": []},
            headers=auth("marketer"),
        ),
        422,
    )
    tiny = {"name": "Tiny", "rule": {"all": [{"tag": "age", "op": ">=", "value": 99}]}}
    ok(client.post("/api/audiences", json=tiny, headers=auth("marketer")), 201)
    refused(
        client.post(
            "/api/audiences/tiny/packs",
            json={"destination": "csv", "id_types": ["phone"]},
            headers=auth("marketer"),
        ),
        422,
        "minimum",
    )
    # An admin may export raw identifiers; a marketer may not download that pack.
    admin_pack = ok(
        client.post(
            "/api/audiences/women/packs",
            json={"destination": "google", "id_types": ["phone", "idfa"]},
            headers=auth("admin"),
        ),
        201,
    )

    packs = ok(client.get("/api/packs", headers=auth("analyst")))["packs"]
    assert {"women/v2/tencent", "women/v2/google"} <= {p["pack_id"] for p in packs}
    assert (
        ok(client.get("/api/packs", params={"audience_id": "tiny"}, headers=auth("analyst")))["packs"] == []
    )
    shown = ok(client.get("/api/packs/women/v2/tencent/manifest", headers=auth("analyst")))
    assert shown["lines"] == manifest["lines"]
    refused(client.get("/api/packs/women/v9/tencent/manifest", headers=auth("analyst")), 404)
    refused(client.get("/api/packs/women/v2/../../../etc/manifest", headers=auth("analyst")), 404)

    refused(client.get("/api/packs/women/v2/tencent/download", headers=auth("analyst")), 403)
    r = client.get("/api/packs/women/v2/tencent/download", headers=auth("marketer"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as bundle:
        names = bundle.namelist()
        assert "manifest.json" in names and len([n for n in names if n.endswith(".zip")]) == len(
            manifest["files"]
        )
        inner = zipfile.ZipFile(io.BytesIO(bundle.read(next(n for n in names if "hash_mobile_phone" in n))))
        lines = inner.read(inner.namelist()[0]).decode().split()
        assert lines and all(len(x) == 32 and int(x, 16) >= 0 for x in lines)  # md5 hex, never a phone number
    refused(
        client.get(f"/api/packs/{admin_pack['pack_id']}/download", headers=auth("marketer")), 403, "unhashed"
    )
    assert (
        client.get(f"/api/packs/{admin_pack['pack_id']}/download", headers=auth("admin")).status_code == 200
    )

    refused(client.get("/api/audit", headers=auth("marketer")), 403)
    rows = ok(client.get("/api/audit", params={"limit": 100}, headers=auth("admin")))["rows"]
    exports = [r for r in rows if r["action"] == "pack_export" and r["status"] == "ok"]
    assert {(r["actor"], r["pack_id"]) for r in exports} >= {("marketer-test", "women/v2/tencent")}
    ours = next(r for r in exports if r["pack_id"] == "women/v2/tencent")
    assert (
        ours["rows"] == manifest["lines"] and ours["id_types"] == "phone,oaid" and ours["role"] == "marketer"
    )
    downloads = [r for r in rows if r["action"] == "pack_download"]
    assert {(r["actor"], r["status"]) for r in downloads} >= {
        ("marketer-test", "ok"),
        ("marketer-test", "refused"),
        ("admin-test", "ok"),
    }
    assert all(r["bytes"] > 0 for r in downloads if r["status"] == "ok")
    refusals = {r["detail_json"] for r in rows if r["action"] == "pack_export" and r["status"] == "refused"}
    assert any("minimum" in d for d in refusals) and any("wechat_openid" in d for d in refusals)
    only = ok(client.get("/api/audit", params={"action": "pack_download"}, headers=auth("admin")))["rows"]
    assert only and {r["action"] for r in only} == {"pack_download"}


def test_an_export_beside_a_running_one_is_refused_with_409_and_one_line(client, auth, web_lake) -> None:
    from apps.web.errors import status_of
    from cdp.leases import Holder, PartialTableError, lease

    body = {"destination": "csv", "id_types": ["phone"]}
    other = Holder(job="export members_30", run_id="dagtask")
    with lease(web_lake.settings.lake_root, ["pack.members_30"], other):  # an export running elsewhere
        detail = refused(
            client.post("/api/audiences/members_30/packs", json=body, headers=auth("admin")),
            409,
            f"pack.members_30 is being written by export members_30 (run dagtask, pid {other.pid}",
        )
    assert "\n" not in detail
    assert status_of(PartialTableError("gold.tags may be half-written")) == 409
    rows = ok(client.get("/api/audit", params={"action": "pack_export"}, headers=auth("admin")))["rows"]
    assert any(r["status"] == "refused" and "is being written by" in r["detail_json"] for r in rows)


def test_sql_for_analysts(client, auth) -> None:
    tables = ok(client.get("/api/sql/tables", headers=auth("analyst")))["tables"]
    assert {"gold.oneid_map", "gold.profile", "silver.orders"} <= {t["table"] for t in tables}
    refused(client.get("/api/sql/tables", headers=auth("marketer")), 403)
    query = {"query": "SELECT id_type, count(*) AS n FROM gold.oneid_map GROUP BY 1 ORDER BY 1", "limit": 3}
    out = ok(client.post("/api/sql", json=query, headers=auth("analyst")))
    assert out["columns"] == ["id_type", "n"] and len(out["rows"]) == 3 and out["truncated"]
    refused(client.post("/api/sql", json=query, headers=auth("marketer")), 403)
    refused(client.post("/api/sql", json={"query": "SELEC 1"}, headers=auth("analyst")), 422, "syntax")
    refused(
        client.post(
            "/api/sql", json={"query": "SELECT * FROM read_csv('/etc/passwd')"}, headers=auth("admin")
        ),
        422,
    )
    refused(
        client.post("/api/sql", json={"query": "SELECT 1", "limit": 0}, headers=auth("analyst")), 422, "limit"
    )
    rows = ok(client.get("/api/audit", params={"action": "sql"}, headers=auth("admin")))["rows"]
    assert any(r["actor"] == "analyst-test" and r["rows"] == 3 for r in rows)
