"""The web SQL endpoints (``GET /api/sql/tables``, ``POST /api/sql``) on the web tests' copy of the demo lake:
the same sandbox and access rules as ``cdp sql`` (tests/platform/test_sql_sandbox.py plays them on
``LakeSQL`` and the CLI). Every attack of a curious insider is answered 4xx with the reason and audited as
refused; the audit log is readable by admins only, through SQL too; the time and row limits hold."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from web_checks import refused as _refused

pytestmark = pytest.mark.slow

SLOW = "SELECT count(*) FROM range(100000) a, range(100000) b WHERE (a.range * b.range) % 7 = 3"


def _sql(client, auth, role: str, query: str, **body):
    return client.post("/api/sql", json={"query": query, **body}, headers=auth(role))


def _audit(web_lake, client, auth) -> list[dict]:
    web_lake.app.state.web.audit.flush()
    return client.get("/api/audit", params={"action": "sql", "limit": 1000}, headers=auth("admin")).json()[
        "rows"
    ]


ATTACKS = [
    ("SELECT * FROM read_csv('/etc/passwd')", "disabled"),
    ("SELECT * FROM read_text('{root}/.pii_key')", "disabled"),
    ("COPY (SELECT 1) TO '{root}/x.csv'", "COPY statement is refused"),
    ("ATTACH ':memory:' AS side", "ATTACH statement is refused"),
    ("INSTALL httpfs", "LOAD statement is refused"),
    ("LOAD httpfs", "LOAD statement is refused"),
    ("SELECT 1; SELECT 2", "one statement at a time"),
    ("DROP VIEW gold.profile", "DROP statement is refused"),
    ("CREATE OR REPLACE VIEW gold.profile AS SELECT 1 AS oneid", "CREATE statement is refused"),
    ("SET enable_external_access = true", "SET statement is refused"),
    ("RESET lock_configuration", "SET statement is refused"),
    ("PRAGMA enable_profiling", "PRAGMA statement is refused"),
]


@pytest.mark.parametrize("role", ["analyst", "admin"])
def test_sql_attacks_are_refused_and_audited(web_lake, client, auth, role: str) -> None:
    root = web_lake.settings.data_root
    for attack, reason in ATTACKS:
        _refused(_sql(client, auth, role, attack.format(root=root)), 422, reason)
    assert not (Path(root) / "x.csv").exists()
    # The views are untouched: the page is read-only.
    out = client.post(
        "/api/sql", json={"query": "SELECT count(*) AS n FROM gold.profile"}, headers=auth(role)
    )
    assert out.status_code == 200 and out.json()["rows"][0][0] > 0
    refusals = [r for r in _audit(web_lake, client, auth) if r["status"] == "refused" and r["role"] == role]
    texts = " ".join(r["detail_json"] or "" for r in refusals)
    assert "/etc/passwd" in texts and "DROP VIEW" in texts and "one statement at a time" in texts


def test_sql_tables_show_what_the_role_may_read(client, auth) -> None:
    analyst = {
        t["table"]: [c["name"] for c in t["columns"]]
        for t in client.get("/api/sql/tables", headers=auth("analyst")).json()["tables"]
    }
    assert {"gold.oneid_map", "gold.profile", "silver.orders"} <= set(analyst)
    assert not [
        t for t in analyst if t.startswith(("bronze.", "quarantine.", "vault.")) or t == "gold.audit_log"
    ]
    assert "id_value" not in analyst["gold.oneid_map"] and "oneid" in analyst["gold.oneid_map"]
    assert "member_id" not in analyst["silver.orders"] and "phone_hash" in analyst["silver.orders"]
    assert not [
        c for c in analyst["silver.members"] if c.endswith("_masked") or c in ("birth_date", "member_id")
    ]
    admin = {t["table"] for t in client.get("/api/sql/tables", headers=auth("admin")).json()["tables"]}
    assert any(t.startswith("bronze.") for t in admin) and not any(t.startswith("vault.") for t in admin)
    _refused(client.get("/api/sql/tables", headers=auth("marketer")), 403)


def test_audit_log_through_sql_is_for_admins_only(web_lake, client, auth) -> None:
    assert client.post("/api/sql", json={"query": "SELECT 1"}, headers=auth("analyst")).status_code == 200
    web_lake.app.state.web.audit.flush()  # gold.audit_log exists from here on
    for query in ("SELECT * FROM gold.audit_log", "SELECT * FROM query_table('gold.audit_log')"):
        _refused(_sql(client, auth, "analyst", query), 403, "gold.audit_log", "admins only")
    _refused(_sql(client, auth, "marketer", "SELECT * FROM gold.audit_log"), 403)
    rows = client.post(
        "/api/sql", json={"query": "SELECT actor, action FROM gold.audit_log"}, headers=auth("admin")
    ).json()["rows"]
    assert ["analyst-test", "sql"] in rows
    _refused(_sql(client, auth, "admin", "SELECT * FROM vault.identifiers"), 403, "encrypted identifiers")


def test_hidden_columns_are_refused(client, auth) -> None:
    for query, column in [
        ("SELECT member_id FROM silver.orders", "member_id"),
        ("SELECT id_value FROM gold.oneid_map WHERE id_type = 'oaid'", "id_value"),
        ("SELECT oaid FROM silver.events", "oaid"),
        ("SELECT phone_masked FROM silver.members", "phone_masked"),
    ]:
        _refused(_sql(client, auth, "analyst", query), 403, column, "hidden from role analyst")
    assert _sql(client, auth, "admin", "SELECT member_id FROM silver.orders LIMIT 1").status_code == 200


def test_time_and_row_limits(web_lake, client, auth, monkeypatch: pytest.MonkeyPatch) -> None:
    web = web_lake.app.state.web
    monkeypatch.setattr(
        web, "settings", dataclasses.replace(web.settings, sql_timeout_seconds=2, sql_max_rows=5)
    )
    start = time.perf_counter()
    _refused(_sql(client, auth, "analyst", SLOW), 422, "exceeded 2 s")
    assert time.perf_counter() - start < 15
    out = _sql(client, auth, "analyst", "SELECT * FROM range(100)", limit=50).json()
    assert len(out["rows"]) == 5 and out["truncated"]
