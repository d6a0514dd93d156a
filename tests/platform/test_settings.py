"""Settings come from the environment with laptop defaults and clear errors."""

from __future__ import annotations

import os

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
        ({"CDP_ENGINE_MEMORY": "lots"}, "size in MiB or like 4g"),
        ({"CDP_ENGINE_MEMORY": "-1"}, "0 .no pool. or more"),
    ],
)
def test_bad_settings_fail_clearly(env, message) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_engine_catalog_and_web_settings_come_from_the_environment(tmp_path) -> None:
    sep = os.pathsep
    s = Settings.from_env(
        {
            "CDP_SPARK_MASTER": "local[2]",
            "CDP_CLASSIC_DELTA": "1",
            "CDP_CONTRACT_PATH": f"/c1{sep}{sep}/c2",
            "CDP_SUITE_PATH": "/suites",
            "CDP_TAG_PATH": f"/t1{sep}/t2",
            "CDP_WEB_TOKENS": "admin:abcdefghijklmnop0123:ops",
            "CDP_WEB_TOKENS_FILE": str(tmp_path / "tokens.json"),
        }
    )
    assert (s.spark_master, s.classic_delta) == ("local[2]", True)
    assert (s.contract_paths, s.suite_paths, s.tag_paths) == (("/c1", "/c2"), ("/suites",), ("/t1", "/t2"))
    assert s.web_tokens == "admin:abcdefghijklmnop0123:ops"
    assert s.web_tokens_file == str(tmp_path / "tokens.json")
    assert "abcdefghijklmnop0123" not in repr(s)  # an injected secret stays out of logs
    assert s.with_data_root(tmp_path / "other").tag_paths == ("/t1", "/t2")


def test_engine_catalog_and_web_settings_default_to_nothing() -> None:
    s = Settings.from_env({"CDP_CLASSIC_DELTA": "yes"})  # only "1" turns the Delta conf on, as before
    assert (s.spark_master, s.classic_delta) == (None, False)
    assert (s.contract_paths, s.suite_paths, s.tag_paths) == ((), (), ())
    assert (s.web_tokens, s.web_tokens_file) == (None, None)


def test_loaders_take_their_folders_from_the_settings(tmp_path, monkeypatch) -> None:
    from quality.catalog import suite_dirs
    from schemas import contract_dirs
    from tags.catalog import catalog_dirs

    monkeypatch.setenv("CDP_CONTRACT_PATH", str(tmp_path / "contracts"))
    monkeypatch.setenv("CDP_SUITE_PATH", str(tmp_path / "suites"))
    monkeypatch.setenv("CDP_TAG_PATH", str(tmp_path / "tags"))
    assert contract_dirs()[-1] == tmp_path / "contracts"
    assert suite_dirs()[0] == tmp_path / "suites"
    assert catalog_dirs()[-1] == tmp_path / "tags"
    assert contract_dirs([])[-1].name == "tables" and catalog_dirs([]) == catalog_dirs(())


def test_web_token_store_takes_file_and_tokens_from_the_settings(tmp_path) -> None:
    from apps.web.auth import TokenStore

    s = Settings.from_env(
        {
            "CDP_DATA_ROOT": str(tmp_path / "data"),
            "CDP_WEB_TOKENS": "analyst:abcdefghijklmnop0123:bob",
            "CDP_WEB_TOKENS_FILE": str(tmp_path / "tokens.json"),
        }
    )
    store = TokenStore.from_settings(s)
    assert store.path == tmp_path / "tokens.json"
    assert store.authenticate("abcdefghijklmnop0123").name == "bob"
    plain = TokenStore.from_settings(Settings.from_env({"CDP_DATA_ROOT": str(tmp_path / "data")}))
    assert plain.path == tmp_path / "data" / "web" / "tokens.json" and not plain.has_tokens()


@pytest.mark.parametrize(
    ("value", "mib"),
    [("4g", 4096), ("1.5G", 1536), ("3000m", 3000), ("3000MB", 3000), ("2500", 2500), ("0", 0)],
)
def test_engine_memory_is_a_size_in_mebibytes(value, mib) -> None:
    assert Settings.from_env({"CDP_ENGINE_MEMORY": value}).engine_memory_mb == mib


def test_the_engine_has_no_memory_pool_unless_asked() -> None:
    assert Settings.from_env({}).engine_memory_mb == 0
