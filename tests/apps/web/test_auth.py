"""Token store of the web service: tokens are shown once and stored hashed, roles are checked, tokens from
the environment, revocation seen by a running service, and malformed files or specs named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.web.auth import TokenError, TokenStore


def test_create_authenticate_revoke(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "web" / "tokens.json", env={})
    assert not store.has_tokens()
    token = store.create("marketer", name="alice")
    stored = (tmp_path / "web" / "tokens.json").read_text()
    assert token not in stored and json.loads(stored)["tokens"][0]["role"] == "marketer"
    assert (tmp_path / "web" / "tokens.json").stat().st_mode & 0o777 == 0o600
    principal = store.authenticate(token)
    assert principal is not None and principal.name == "alice" and principal.role == "marketer"
    assert store.authenticate("cdp_wrong") is None and store.authenticate(None) is None
    # A second store (the CLI) revokes; the first (the running service) notices the file changed.
    TokenStore(tmp_path / "web" / "tokens.json", env={}).revoke(principal.token_id)
    assert store.authenticate(token) is None


def test_roles_and_env_tokens(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="role 'boss'"):
        TokenStore(tmp_path / "t.json", env={}).create("boss")
    store = TokenStore(tmp_path / "t.json", env={"CDP_WEB_TOKENS": "analyst:abcdefghijklmnop0123:bob"})
    principal = store.authenticate("abcdefghijklmnop0123")
    assert principal is not None and (principal.role, principal.name, principal.source) == (
        "analyst",
        "bob",
        "env",
    )
    with pytest.raises(TokenError, match="CDP_WEB_TOKENS item 1"):
        TokenStore(tmp_path / "t.json", env={"CDP_WEB_TOKENS": "admin:short"})
    with pytest.raises(TokenError, match="no token with id"):
        store.revoke("nope")


def test_malformed_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "t.json"
    bad.write_text('{"tokens": [{"id": "x", "role": "admin"}]}')
    with pytest.raises(TokenError, match=str(bad)):
        TokenStore(bad, env={})


def test_tasks_are_matched_by_token_id_not_by_name(tmp_path: Path) -> None:
    """Two tokens may carry the same holder name; a task is seen only through the token that started it."""
    import time

    from apps.web.tasks import TaskRunner

    store = TokenStore(tmp_path / "tokens.json", env={})
    first = store.authenticate(store.create("marketer", name="twin"))
    second = store.authenticate(store.create("marketer", name="twin"))
    assert first and second and first.name == second.name and first.token_id != second.token_id
    runner = TaskRunner()
    try:
        task = runner.submit("echo", (first.token_id, first.name), lambda: "secret")
        deadline = time.monotonic() + 10
        while task.status != "done":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert runner.get(task.task_id, first.token_id) is task and runner.list(first.token_id) == [task]
        assert runner.get(task.task_id, second.token_id) is None and runner.list(second.token_id) == []
        assert runner.get(task.task_id) is task and runner.list() == [task]  # admins see every task
    finally:
        runner.shutdown()
