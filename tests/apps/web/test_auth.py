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
