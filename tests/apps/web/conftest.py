"""One small real lake for the web tests: a copy of the session's demo lake (demo population -> ingest ->
identity -> tags, tests/conftest.py) plus one rule audience made through jobs.audiences; tokens for each role;
the app on the shared engine."""

from __future__ import annotations

import dataclasses

import pytest

DT = "2026-11-01"
# The pipeline's k-anonymity, seed and group-size minimums are meant for real populations; the test population
# is small. A minimum group size of 10 still makes a group of one (test_privacy_groups.py's attacks) small.
LIMITS = {"min_pack_size": 50, "min_seed_size": 20, "min_group_size": 10}


@dataclasses.dataclass
class WebLake:
    settings: object
    tokens: dict[str, str]
    app: object


@pytest.fixture(scope="session")
def web_lake(spark, demo_lake, copy_demo_lake, tmp_path_factory: pytest.TempPathFactory):
    from apps.web import TokenStore, create_app
    from jobs import audiences

    assert demo_lake.dt == DT
    root = tmp_path_factory.mktemp("web")
    # The web tests save audiences and write packs: they get their own copy of the lake.
    s = copy_demo_lake(root / "data", **LIMITS)
    audiences.create(
        spark,
        s,
        {"name": "Members 30+", "rule": {"all": [{"tag": "age", "op": ">=", "value": 30}]}},
        created_by="fixture",
    )
    store = TokenStore(root / "tokens.json", env={})
    tokens = {role: store.create(role, name=f"{role}-test") for role in ("admin", "marketer", "analyst")}
    yield WebLake(s, tokens, create_app(s, tokens=store, spark=spark))


@pytest.fixture(scope="module")
def client(web_lake):
    """A test client of the app (server exceptions come back as 500 responses, as a user would see them)."""
    from fastapi.testclient import TestClient

    with TestClient(web_lake.app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def auth(web_lake):
    """The Authorization header of a role's test token."""
    return lambda role: {"Authorization": f"Bearer {web_lake.tokens[role]}"}
