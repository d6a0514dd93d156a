"""Analyst SQL over the lake (``cdp.sql``, ``cdp sql``) and its one access policy (``cdp.access``): views
named <layer>.<name> over Delta tables written with delta-rs, outputs to the screen, CSV, JSON and Parquet,
the interactive shell, and the attacks of a curious insider played through ``LakeSQL`` and through the CLI:
each must fail with a reason, and a test fails if one works again.

The web API's side of the same sandbox is in tests/apps/web/test_sql.py."""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdp.access import ROLES, AccessError, policy_for
from cdp.sql import LakeSQL, SqlAccessError, SqlError, SqlRefused, write_result

DAY = datetime.date(2026, 11, 1)
SECRET = "0123456789abcdef-the-pii-key"
SLOW = "SELECT sum(hash(range)) FROM range(100000000000)"  # 10^11 hashes: minutes, not a shortcut


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with one small table per kind of rule: analyst tables with hidden columns, the admin-only
    audit log, bronze and quarantine, the vault, a table that is not Delta, and the PII key file."""
    from deltalake import write_deltalake

    root = tmp_path_factory.mktemp("sqldata")
    lake = root / "lake"
    tables = {
        "silver/orders": pa.table(
            {
                "order_id": ["o1", "o2", "o3", "o4"],
                "member_id": ["M1", "M2", None, "M4"],
                "phone_hash": ["h1", None, "h3", "h4"],
                "phone_masked": ["138****0001", None, "139****0003", "137****0004"],
                "phone_md5": ["d1", None, "d3", "d4"],
                "channel": ["app", "web", "app", "小程序"],
                "amount": [10.0, 20.5, 30.0, 5.0],
                "dt": [DAY, DAY, DAY + datetime.timedelta(days=1), DAY],
            }
        ),
        "silver/members": pa.table(
            {"member_id": ["M1"], "birth_date": [datetime.date(1990, 1, 2)], "city": ["上海市"], "_dt": [DAY]}
        ),
        "gold/oneid_map": pa.table(
            {"id_type": ["phone", "oaid"], "id_value": ["h1", "6d89-a0"], "oneid": [7, 8], "dt": [DAY, DAY]}
        ),
        "gold/audit_log": pa.table(
            {"event_id": ["e1"], "actor": ["ana"], "action": ["sql"], "detail_json": ["{}"], "dt": [DAY]}
        ),
        "gold/quality_results": pa.table(
            {"table_name": ["silver.events"], "success": [False], "observed_value": ["e.g. ['bad-oaid']"]}
        ),
        "bronze/orders": pa.table({"order_id": ["o1"], "phone": ["ciphertext"], "dt": [DAY]}),
        "quarantine/orders": pa.table({"_raw": ["o9,13800000009"], "_reasons": ["bad_type:amount"]}),
        "vault/identifiers": pa.table({"id_type": ["phone"], "id_value": ["h1"], "encrypted": ["AES..."]}),
    }
    for path, table in tables.items():
        write_deltalake(lake / path, table, partition_by=["dt"] if path == "silver/orders" else None)
    (lake / "gold" / "not_delta").mkdir(parents=True)
    (root / ".pii_key").write_text(SECRET)
    return root


@pytest.fixture()
def analyst_sql(data_root: Path):
    with LakeSQL(data_root / "lake", role="analyst", timeout_seconds=2) as lake_sql:
        yield lake_sql


@pytest.fixture()
def admin_sql(data_root: Path):
    with LakeSQL(data_root / "lake", role="admin", timeout_seconds=2) as lake_sql:
        yield lake_sql


# ---- the policy (no engine, no DuckDB) ---------------------------------------------------------------------


def test_policy_tables_per_role() -> None:
    tables = [
        "bronze.orders",
        "gold.audit_log",
        "gold.oneid_map",
        "gold.profile",
        "quarantine.orders",
        "silver.orders",
        "vault.identifiers",
    ]
    assert policy_for("admin").visible_tables(tables) == [t for t in tables if not t.startswith("vault.")]
    for role in ("analyst", "marketer"):
        assert policy_for(role).visible_tables(tables) == ["gold.oneid_map", "gold.profile", "silver.orders"]
        assert "admins only" in policy_for(role).table_refusal("gold.audit_log")
    assert "encrypted" in policy_for("admin").table_refusal("vault.identifiers")
    assert set(ROLES) == {"admin", "marketer", "analyst"}
    with pytest.raises(AccessError, match="role 'guest'"):
        policy_for("guest")
    with pytest.raises(AccessError, match="admins only"):
        policy_for("analyst").columns("gold.audit_log", ["event_id"])


def test_policy_columns_follow_the_contracts() -> None:
    analyst, admin = policy_for("analyst"), policy_for("admin")
    members = [
        "member_id",
        "name_hash",
        "name_masked",
        "phone_hash",
        "phone_md5",
        "phone_sha256",
        "phone_sha256_e164",
        "phone_sha256_cc",
        "phone_masked",
        "email_sha256",
        "gender",
        "birth_date",
        "city",
        "wechat_openid",
        "wechat_unionid",
        "_dt",
    ]
    assert analyst.columns("silver.members", members) == ["name_hash", "phone_hash", "gender", "city", "_dt"]
    assert admin.columns("silver.members", members) == members
    events = ["event_id", "oaid", "idfa", "android_id", "imei", "cookie_id", "wechat_openid", "os", "sku"]
    assert analyst.columns("silver.events", events) == ["event_id", "os", "sku"]
    assert analyst.columns("gold.oneid_map", ["id_type", "id_value", "vid", "oneid", "dt"]) == [
        "id_type",
        "vid",
        "oneid",
        "dt",
    ]
    edges = ["src_vid", "src_type", "src_value", "dst_type", "dst_value", "hub_type", "hub_value", "reason"]
    assert analyst.columns("gold.id_pruned_edges", edges) == [
        "src_vid",
        "src_type",
        "dst_type",
        "hub_type",
        "reason",
    ]
    # "metric_value" has no "metric_type" beside it: a number, not an identifier.
    assert analyst.columns("gold.tag_stats", ["metric", "metric_value", "value"]) == [
        "metric",
        "metric_value",
        "value",
    ]
    assert "identifier" in analyst.hidden_columns("silver.events", events)["cookie_id"]


def test_policy_covers_a_new_source_without_code() -> None:
    from schemas import SourceContract

    loyalty = SourceContract.model_validate(
        {
            "kind": "source",
            "name": "loyalty_app",
            "description": "a new source",
            "party": "1P",
            "entity": "loyalty_visits",
            "format": "csv",
            "event_time": "visit_time",
            "keys": ["visit_id"],
            "columns": [
                {"name": "visit_id", "type": "string"},
                {"name": "visit_time", "type": "timestamp"},
                {"name": "card_no", "type": "string", "id_type": "member_id", "pii": "pseudonymous"},
                {"name": "home_address", "type": "string", "pii": "direct"},
                {"name": "postcode", "type": "string", "pii": "quasi"},
            ],
        }
    )
    policy = policy_for("analyst", sources={"loyalty_app": loyalty}, tables={})
    columns = ["visit_id", "visit_time", "card_no", "home_address_hash", "home_address_masked", "postcode"]
    assert policy.columns("silver.loyalty_visits", columns) == ["visit_id", "visit_time", "home_address_hash"]


# ---- LakeSQL ----------------------------------------------------------------------------------------------


def test_views_per_layer_and_queries(analyst_sql: LakeSQL) -> None:
    assert analyst_sql.tables == ["gold.oneid_map", "gold.quality_results", "silver.members", "silver.orders"]
    result = analyst_sql.query(
        "SELECT channel, sum(amount) AS revenue FROM silver.orders WHERE dt = DATE '2026-11-01' "
        "GROUP BY channel ORDER BY channel;"
    )
    assert result.rows() == [
        {"channel": "app", "revenue": 10.0},
        {"channel": "web", "revenue": 20.5},
        {"channel": "小程序", "revenue": 5.0},
    ]
    joined = analyst_sql.query(
        "SELECT count(*) AS n FROM silver.orders o JOIN gold.oneid_map m ON m.oneid > 0"
    )
    assert joined.rows() == [{"n": 8}]
    limited = analyst_sql.query("SELECT * FROM silver.orders", limit=2)
    assert limited.table.num_rows == 2 and limited.truncated
    assert dict(analyst_sql.describe("silver.orders"))["amount"] == "DOUBLE"
    assert analyst_sql.query("WITH t AS (SELECT 1 AS x) SELECT x FROM t").rows() == [{"x": 1}]


def test_errors_name_the_problem(analyst_sql: LakeSQL, data_root: Path) -> None:
    with pytest.raises(SqlError, match="nope"):
        analyst_sql.query("SELECT * FROM silver.nope")
    with pytest.raises(SqlError, match="empty query"):
        analyst_sql.query("  ;")
    with pytest.raises(SqlError, match="syntax"):
        analyst_sql.query("SELEC 1")
    with pytest.raises(SqlError, match="unknown table"):
        analyst_sql.describe("gold.missing")
    with pytest.raises(SqlError, match=r"<layer>\.<name>"):
        LakeSQL(data_root / "lake", tables=["orders"])
    with pytest.raises(SqlError, match="role 'guest'"):
        LakeSQL(data_root / "lake", role="guest")


ESCAPES = [
    ("SELECT * FROM read_csv('/etc/passwd')", "disabled"),
    ("SELECT * FROM read_text('{root}/.pii_key')", "disabled"),
    ("SELECT * FROM read_blob('{root}/.pii_key')", "disabled"),
    ("SELECT * FROM glob('{root}/*')", "disabled"),
    ("SELECT * FROM read_parquet('https://example.com/x.parquet')", "disabled"),
    ("COPY (SELECT 1) TO '{out}'", "COPY statement is refused"),
    ("EXPORT DATABASE '{root}/export'", "refused"),
    ("ATTACH '{root}/new.duckdb' AS side", "ATTACH statement is refused"),
    ("ATTACH ':memory:' AS side", "ATTACH statement is refused"),
    ("INSTALL httpfs", "LOAD statement is refused"),
    ("LOAD httpfs", "LOAD statement is refused"),
    ("SELECT 1; SELECT 2", "one statement at a time"),
    ("SELECT 1; COPY (SELECT 1) TO '{out}'", "one statement at a time"),
    ("DROP VIEW silver.orders", "DROP statement is refused"),
    ("CREATE OR REPLACE VIEW silver.orders AS SELECT 1 AS amount", "CREATE statement is refused"),
    ("CREATE TABLE t AS SELECT 1", "CREATE statement is refused"),
    ("SET enable_external_access = true", "SET statement is refused"),
    ("RESET lock_configuration", "SET statement is refused"),
    ("PRAGMA enable_profiling", "PRAGMA statement is refused"),
    ("CALL pragma_version()", "CALL statement is refused"),
    ("SELECT * FROM query('DROP VIEW silver.orders')", "SELECT"),
]


@pytest.mark.parametrize("role", ["analyst", "admin"])
def test_sandbox_refuses_every_escape(role: str, data_root: Path, tmp_path: Path) -> None:
    """Admins too: the sandbox is the same for every role, only the policy differs."""
    out = tmp_path / "x.csv"
    with LakeSQL(data_root / "lake", role=role) as lake_sql:
        for attack, reason in ESCAPES:
            sql = attack.format(root=data_root, out=out)
            with pytest.raises(SqlError, match=reason) as caught:
                lake_sql.query(sql)
            assert SECRET not in str(caught.value), sql
        assert not out.exists() and not (data_root / "new.duckdb").exists()
        assert not (data_root / "export").exists()
        # The views survived, and the configuration is still locked.
        assert lake_sql.query("SELECT count(*) AS n FROM silver.orders").rows() == [{"n": 4}]
        settings = lake_sql.con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
            "'lock_configuration', 'autoinstall_known_extensions', 'autoload_known_extensions', "
            "'allow_community_extensions', 'python_enable_replacements')"
        ).fetchall()
        assert dict(settings) == {
            "enable_external_access": "false",
            "lock_configuration": "true",
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
            "allow_community_extensions": "false",
            "python_enable_replacements": "false",
        }
    assert isinstance(_refusal(data_root, "SELECT * FROM read_csv('/etc/passwd')"), SqlRefused)


def _refusal(data_root: Path, sql: str) -> SqlError:
    with LakeSQL(data_root / "lake") as lake_sql, pytest.raises(SqlError) as caught:
        lake_sql.query(sql)
    return caught.value


def test_registered_datasets_show_no_more_than_their_views(analyst_sql: LakeSQL) -> None:
    """The Arrow datasets behind the views are registered under random names, which a query can list: each
    must hold only the columns the role may read, and the tables the role may not read are not there."""
    listed = analyst_sql.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")
    raw = listed.table.column("table_name").to_pylist()
    assert len(raw) == len(analyst_sql.tables)
    hidden = {"member_id", "phone_masked", "phone_md5", "birth_date", "id_value", "observed_value"}
    for name in raw:
        columns = set(analyst_sql.query(f'SELECT * FROM "{name}" LIMIT 0').table.column_names)
        assert not columns & hidden, (name, columns)
    with pytest.raises(SqlError, match="member_id"):
        analyst_sql.query(f'SELECT member_id FROM "{raw[0]}"')
    for guess in ("_delta_gold__audit_log", "_delta_silver__orders", "_lake_gold__audit_log"):
        with pytest.raises(SqlError, match="does not exist"):
            analyst_sql.query(f'SELECT * FROM "{guess}"')
    views = analyst_sql.query("SELECT sql FROM duckdb_views() WHERE NOT internal").table.column("sql")
    assert not any("audit_log" in v or "bronze" in v or "vault" in v for v in views.to_pylist())


def test_python_objects_are_not_queryable(analyst_sql: LakeSQL) -> None:
    secret_rows = pa.table({"phone": ["13800000000"]})  # noqa: F841 - a replacement scan would find it
    with pytest.raises(SqlError, match="secret_rows"):
        analyst_sql.query("SELECT * FROM secret_rows")


@pytest.mark.parametrize("role", ["analyst", "marketer"])
def test_audit_log_bronze_quarantine_and_vault_are_refused(role: str, data_root: Path) -> None:
    with LakeSQL(data_root / "lake", role=role) as lake_sql:
        assert not {"gold.audit_log", "bronze.orders", "quarantine.orders", "vault.identifiers"} & set(
            lake_sql.tables
        )
        for sql, words in [
            ("SELECT * FROM gold.audit_log", "gold.audit_log is readable by admins only"),
            ('select actor from GOLD . "audit_log"', "admins only"),
            ("SELECT * FROM query_table('gold.audit_log')", "admins only"),
            ("SELECT phone FROM bronze.orders", "bronze tables"),
            ("SELECT * FROM quarantine.orders", "quarantine tables"),
            ("SELECT * FROM vault.identifiers", "encrypted identifiers"),
        ]:
            with pytest.raises(SqlAccessError, match=words):
                lake_sql.query(sql)
        with pytest.raises(SqlAccessError, match="admins only"):
            lake_sql.describe("gold.audit_log")


def test_admin_reads_the_audit_log_but_never_the_vault(admin_sql: LakeSQL) -> None:
    assert admin_sql.query("SELECT actor FROM gold.audit_log").rows() == [{"actor": "ana"}]
    assert admin_sql.query("SELECT phone FROM bronze.orders").rows() == [{"phone": "ciphertext"}]
    assert admin_sql.query("SELECT member_id FROM silver.orders WHERE order_id = 'o1'").rows() == [
        {"member_id": "M1"}
    ]
    assert "vault.identifiers" not in admin_sql.tables
    with pytest.raises(SqlAccessError, match="encrypted identifiers"):
        admin_sql.query("SELECT encrypted FROM vault.identifiers")


def test_hidden_columns_are_refused(analyst_sql: LakeSQL) -> None:
    assert analyst_sql.query("SELECT * FROM silver.orders LIMIT 1").table.column_names == [
        "order_id",
        "phone_hash",
        "channel",
        "amount",
        "dt",
    ]
    assert [n for n, _ in analyst_sql.describe("silver.members")] == ["city", "_dt"]
    for sql, column in [
        ("SELECT member_id FROM silver.orders", "member_id"),
        ("SELECT o.phone_masked FROM silver.orders o", "phone_masked"),
        ("SELECT count(DISTINCT phone_md5) FROM silver.orders", "phone_md5"),
        ("SELECT birth_date FROM silver.members", "birth_date"),
        ("SELECT id_value FROM gold.oneid_map WHERE id_type = 'oaid'", "id_value"),
        ("SELECT observed_value FROM gold.quality_results", "observed_value"),
    ]:
        with pytest.raises(SqlAccessError, match=f"column {column} of .* is hidden from role analyst"):
            analyst_sql.query(sql)
    # Keyed hashes and OneIDs stay: they join and count, and nobody outside the lake can compute them.
    assert analyst_sql.query("SELECT count(DISTINCT phone_hash) AS n FROM silver.orders").rows() == [{"n": 3}]


def test_time_limit_stops_a_slow_query(analyst_sql: LakeSQL) -> None:
    for slow in (
        SLOW,
        "SELECT count(*) FROM range(100000) a, range(100000) b WHERE (a.range * b.range) % 7 = 3",
    ):
        start = time.perf_counter()
        with pytest.raises(SqlError, match="exceeded 2 s"):
            analyst_sql.query(slow)
        assert time.perf_counter() - start < 10
    assert analyst_sql.query("SELECT 42 AS x").rows() == [{"x": 42}]


def test_row_limit_caps_every_query(data_root: Path) -> None:
    with LakeSQL(data_root / "lake", max_rows=3) as lake_sql:
        capped = lake_sql.query("SELECT * FROM range(100)")
        assert capped.table.num_rows == 3 and capped.truncated
        asked_more = lake_sql.query("SELECT * FROM range(100)", limit=50)
        assert asked_more.table.num_rows == 3 and asked_more.truncated
        exact = lake_sql.query("SELECT * FROM range(3)")
        assert exact.table.num_rows == 3 and not exact.truncated


def test_write_result_formats(analyst_sql: LakeSQL, tmp_path: Path) -> None:
    table = analyst_sql.query("SELECT order_id, amount FROM silver.orders ORDER BY order_id").table
    assert pq.read_table(write_result(table, "parquet", tmp_path / "o.parquet")).num_rows == 4
    assert write_result(table, "csv", tmp_path / "o.csv").read_text().splitlines()[0] == '"order_id","amount"'
    assert '"order_id": "o1"' in write_result(table, "json", tmp_path / "o.jsonl").read_text()
    with pytest.raises(SqlError, match="format"):
        write_result(table, "xlsx", tmp_path / "o.xlsx")


# ---- cdp sql ----------------------------------------------------------------------------------------------


def _cdp(data_root: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None):
    """``cdp sql ...`` in this process (the CLI's own code path, without a second interpreter start)."""
    from typer.testing import CliRunner

    from apps.cli.main import app

    result = CliRunner().invoke(app, ["sql", *args, "--data-root", str(data_root)], input=stdin, env=env)
    result.returncode = result.exit_code
    return result


def test_cli_one_shot_outputs(data_root: Path, tmp_path: Path) -> None:
    out = _cdp(data_root, "SELECT channel, count(*) AS n FROM silver.orders GROUP BY 1 ORDER BY 1")
    assert out.returncode == 0, out.stderr
    assert "小程序" in out.stdout and "3 rows" in out.stderr
    csv = _cdp(data_root, "SELECT order_id FROM silver.orders ORDER BY 1", "--format", "csv")
    assert csv.stdout.splitlines() == ['"order_id"', '"o1"', '"o2"', '"o3"', '"o4"']
    target = tmp_path / "out.parquet"
    assert _cdp(data_root, "SELECT * FROM silver.orders", "--output", str(target)).returncode == 0
    assert pq.read_table(target).column_names == ["order_id", "phone_hash", "channel", "amount", "dt"]
    bad = _cdp(data_root, "SELECT * FROM gold.nothing")
    assert bad.returncode == 1 and "nothing" in bad.stderr and "Traceback" not in bad.stderr
    assert _cdp(data_root, "SELECT 1", "--format", "xml").returncode == 2


def test_cli_refuses_the_attacks(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    for attack, reason in ESCAPES:
        result = _cdp(data_root, attack.format(root=data_root, out=out), "--role", "admin")
        assert result.returncode == 1, (attack, result.stdout)
        assert reason in result.stderr and "Traceback" not in result.stderr, (attack, result.stderr)
        assert SECRET not in result.stdout + result.stderr
    assert not out.exists()


def test_cli_roles(data_root: Path) -> None:
    refused = _cdp(data_root, "SELECT * FROM gold.audit_log")
    assert refused.returncode == 1 and "admins only" in refused.stderr
    marketer = _cdp(data_root, "SELECT * FROM gold.audit_log", "--role", "marketer")
    assert marketer.returncode == 1 and "admins only" in marketer.stderr
    hidden = _cdp(data_root, "SELECT member_id FROM silver.orders")
    assert hidden.returncode == 1 and "hidden from role analyst" in hidden.stderr
    admin = _cdp(data_root, "SELECT actor FROM gold.audit_log", "--role", "admin", "--format", "csv")
    assert admin.returncode == 0 and admin.stdout.splitlines() == ['"actor"', '"ana"']
    assert _cdp(data_root, "SELECT 1", "--role", "root").returncode == 2


def test_cli_time_and_row_limits(data_root: Path, tmp_path: Path) -> None:
    limits = {"CDP_SQL_TIMEOUT": "1", "CDP_SQL_MAX_ROWS": "5"}
    slow = _cdp(data_root, SLOW, env=limits)
    assert slow.returncode == 1 and "exceeded 1 s" in slow.stderr
    assert _cdp(data_root, "SELECT 1", "--limit", "6", env=limits).returncode == 2
    target = tmp_path / "range.csv"
    written = _cdp(data_root, "SELECT * FROM range(100)", "--output", str(target), env=limits)
    assert written.returncode == 0 and "more rows exist" in written.stderr
    assert len(target.read_text().splitlines()) == 1 + 5
    screen = _cdp(data_root, "SELECT * FROM range(100)", "--format", "csv", "--limit", "5", env=limits)
    assert len(screen.stdout.splitlines()) == 1 + 5


def test_cli_shell(data_root: Path) -> None:
    script = "\n".join(
        [
            ".tables",
            ".schema silver.orders",
            ".schema gold.audit_log",
            "SELECT count(*) AS n",
            "  FROM silver.orders;",
            "SELECT * FROM x;",
            "DROP VIEW silver.orders;",
            "SELECT count(*) AS m FROM silver.orders;",
            ".quit",
        ]
    )
    out = _cdp(data_root, stdin=script)
    assert out.returncode == 0, out.stderr
    assert "gold.oneid_map" in out.stdout and "amount" in out.stdout and "│ 4 │" in out.stdout
    assert "gold.audit_log" not in out.stdout and "bronze" not in out.stdout and "member_id" not in out.stdout
    assert "admins only" in out.stderr and "Catalog Error" in out.stderr and "DROP statement" in out.stderr
    assert out.stdout.count("│ 4 │") == 2


def test_cli_lake_show_never_prints_the_vault(data_root: Path) -> None:
    """``cdp lake show`` is the operator's command (an admin's access), and the vault is for nobody's eyes."""
    from typer.testing import CliRunner

    from apps.cli.main import app

    out = CliRunner().invoke(app, ["lake", "show", "vault.identifiers", "--data-root", str(data_root)])
    assert out.exit_code == 1 and "encrypted identifiers" in out.stderr and "AES" not in out.stdout
