"""One small real lake for the web tests, built once: demo population -> ingest -> identity -> tags, plus
one rule audience made through jobs.audiences; tokens for each role; the app on the shared engine."""

from __future__ import annotations

import dataclasses
import datetime
import os
from pathlib import Path

import pytest

DT = "2026-11-01"
KEY = "web-test-key"
# The pipeline's k-anonymity and seed minimums are meant for real populations; the test population is small.
LIMITS = {"CDP_MIN_PACK_SIZE": "50", "CDP_MIN_SEED_SIZE": "20"}


@dataclasses.dataclass
class WebLake:
    settings: object
    tokens: dict[str, str]
    app: object


@pytest.fixture(scope="session")
def web_lake(spark, tmp_path_factory: pytest.TempPathFactory):
    from apps.web import TokenStore, create_app
    from demo import generate
    from jobs import audiences, identity, ingest
    from jobs import tags as tags_job
    from schemas import load_sources

    saved = {k: os.environ.get(k) for k in LIMITS}
    os.environ.update(LIMITS)
    root = tmp_path_factory.mktemp("web")
    from cdp.settings import Settings

    s = dataclasses.replace(
        Settings.from_env({"CDP_SHUFFLE_PARTITIONS": "2"}).with_data_root(root / "data"), pii_key=KEY
    )
    generate(
        Path(s.landing_root),
        Path(s.truth_root),
        persons=800,
        start=datetime.date.fromisoformat(DT),
        days=1,
        history_days=60,
        seed=11,
    )
    for source in sorted(load_sources()):
        ingest.run(spark, s, source, DT)
    identity.run(spark, s, DT)
    # Predictive tags need 180 days of history; the web tests need tags, not trained models.
    tags_job.run(spark, s, DT, layers=["raw", "fact", "model"])
    audiences.create(
        spark,
        s,
        {"name": "Members 30+", "rule": {"all": [{"tag": "age", "op": ">=", "value": 30}]}},
        created_by="fixture",
    )
    store = TokenStore(root / "tokens.json", env={})
    tokens = {role: store.create(role, name=f"{role}-test") for role in ("admin", "marketer", "analyst")}
    yield WebLake(s, tokens, create_app(s, tokens=store, spark=spark))
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
