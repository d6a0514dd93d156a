"""``cdp token`` and ``cdp serve`` as an operator uses them: tokens created once and listed without their
values, ``cdp serve`` refusing to start without tokens, then serving the API and the UI on localhost."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from typer.testing import CliRunner

from apps.cli.main import app

CDP = str(Path(sys.executable).parent / "cdp")


def test_token_create_list_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(
        app, ["token", "create", "--role", "marketer", "--name", "alice", "--data-root", str(tmp_path)]
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("cdp_")
    listed = runner.invoke(app, ["token", "list", "--data-root", str(tmp_path)])
    assert "alice" in listed.stdout and "marketer" in listed.stdout and token not in listed.stdout
    stored = json.loads((tmp_path / "web" / "tokens.json").read_text())["tokens"]
    assert token not in json.dumps(stored)
    bad = runner.invoke(app, ["token", "create", "--role", "boss", "--data-root", str(tmp_path)])
    assert bad.exit_code == 2 and "boss" in bad.stderr
    revoked = runner.invoke(app, ["token", "revoke", stored[0]["id"], "--data-root", str(tmp_path)])
    assert revoked.exit_code == 0
    assert runner.invoke(app, ["token", "revoke", "nope", "--data-root", str(tmp_path)]).exit_code == 2


def _get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_serve_needs_tokens_then_serves(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "CDP_WEB_"))}
    no_tokens = subprocess.run(
        [CDP, "serve", "--data-root", str(tmp_path)], capture_output=True, text=True, env=env, timeout=60
    )
    assert no_tokens.returncode == 2 and "--init-tokens" in no_tokens.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [CDP, "serve", "--init-tokens", "--port", str(port), "--data-root", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        tokens = {}
        while len(tokens) < 3:
            role, token = proc.stdout.readline().split()
            tokens[role] = token
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(base + "/api/health")[0] == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline, "cdp serve did not answer"
                time.sleep(0.2)
        assert _get(base + "/api/me")[0] == 401
        status, me = _get(base + "/api/me", tokens["analyst"])
        assert status == 200 and me["role"] == "analyst"
        assert _get(base + "/openapi.json")[1]["info"]["title"] == "CDP audiences"
        with urllib.request.urlopen(base + "/", timeout=5) as r:
            assert "/static/app.js" in r.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
