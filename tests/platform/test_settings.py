"""Settings come from the environment with laptop defaults and clear errors."""

from __future__ import annotations

import pytest

from cdp.settings import Settings, SettingsError


def test_defaults_live_under_data(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert s.engine == "embedded"
    assert s.lake_root == str(tmp_path / "data" / "lake")
    assert s.packs_root == str(tmp_path / "data" / "packs")


def test_spark_remote_selects_remote_mode() -> None:
    s = Settings.from_env({"SPARK_REMOTE": "sc://spark.example:15002"})
    assert (s.engine, s.spark_remote) == ("remote", "sc://spark.example:15002")


def test_overrides_and_object_store_uris() -> None:
    s = Settings.from_env({"CDP_LAKE_ROOT": "s3://bucket/lake/", "CDP_PACKS_ROOT": "/srv/packs"})
    assert s.lake_root == "s3://bucket/lake"
    assert s.packs_root == "/srv/packs"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CDP_ENGINE": "spark"}, "use one of embedded, remote, classic"),
        ({"CDP_ENGINE": "remote"}, "needs SPARK_REMOTE"),
        ({"CDP_SHUFFLE_PARTITIONS": "many"}, "positive integer"),
    ],
)
def test_bad_settings_fail_clearly(env, message) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
