"""Access tokens and roles of the web service.

Three roles, from most to least powerful where packs are concerned:

- ``admin``: everything, including packs with raw identifiers, the audit log and SQL;
- ``marketer``: tag catalog, audiences (estimate, save, insight, overlap, lookalike) and packs of hashed
  identifiers only, never raw PII;
- ``analyst``: read the catalog and audiences, and SQL over the lake; no exports.

Tokens are random strings handed out once; the token file keeps only their SHA-256, so a leaked file does
not leak a token. Tokens may also come from the environment (``CDP_WEB_TOKENS="role:token[:name],..."``,
read by ``Settings.from_env`` into ``Settings.web_tokens``), for deployments that inject secrets.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from cdp.access import ROLES  # the roles and what each may read: cdp.access
from cdp.settings import Settings

ENV_TOKENS = "CDP_WEB_TOKENS"


class TokenError(ValueError):
    """A token file or a token specification is unusable."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's id, holder name and role."""

    token_id: str
    name: str
    role: str
    created: str = ""
    source: str = "file"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise TokenError(f"role {role!r}: use one of {', '.join(ROLES)}")
    return role


class TokenStore:
    """Hashed tokens in a JSON file (mode 600) plus tokens from ``CDP_WEB_TOKENS``.

    Args:
        path: the token file; created on the first ``create``.
        env: an environment mapping to take ``CDP_WEB_TOKENS`` from (through ``Settings.from_env``);
            the process environment when omitted. Ignored when ``spec`` is given.
        spec: the injected tokens themselves, ``role:token[:name],...`` (``Settings.web_tokens``).

    Raises:
        TokenError: the file or the injected tokens are malformed.
    """

    def __init__(
        self, path: str | Path, env: dict[str, str] | None = None, *, spec: str | None = None
    ) -> None:
        self.path = Path(path)
        self._env_entries: list[tuple[str, Principal]] = []
        if spec is None:
            spec = Settings.from_env(env).web_tokens
        for i, item in enumerate(p.strip() for p in (spec or "").split(",") if p.strip()):
            role, sep, rest = item.partition(":")
            token, _, name = rest.partition(":")
            if not sep or len(token) < 16:
                raise TokenError(
                    f"{ENV_TOKENS} item {i + 1}: write role:token[:name] with a token of 16+ characters"
                )
            principal = Principal(f"env{i + 1}", name or f"{role}-env{i + 1}", _check_role(role), "", "env")
            self._env_entries.append((_digest(token), principal))
        self._load()

    @classmethod
    def from_settings(cls, settings: Settings, path: str | Path | None = None) -> TokenStore:
        """The store at ``path``, ``settings.web_tokens_file`` (``CDP_WEB_TOKENS_FILE``) or
        ``<data root>/web/tokens.json``, with the tokens injected in ``settings.web_tokens``."""
        if path is None:
            path = settings.web_tokens_file or Path(settings.data_root) / "web" / "tokens.json"
        return cls(path, spec=settings.web_tokens or "")

    def _mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    def _load(self) -> None:
        self._entries: list[dict] = []
        self._loaded_mtime = self._mtime()
        if not self.path.is_file():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = data["tokens"]
            for e in entries:
                _check_role(e["role"])
                if not all(isinstance(e.get(k), str) for k in ("id", "sha256", "name")):
                    raise KeyError("id, sha256 and name")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TokenError(f"token file {self.path} is unreadable ({exc}); fix or delete it") from None
        self._entries = entries

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"tokens": self._entries}, indent=2), encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(self.path)

    def create(self, role: str, *, name: str | None = None) -> str:
        """Create a token for ``role``, store its hash and return the token (shown once).

        Raises:
            TokenError: the role is unknown.
        """
        _check_role(role)
        self._load()
        token = f"cdp_{secrets.token_urlsafe(32)}"
        token_id = secrets.token_hex(4)
        self._entries.append(
            {
                "id": token_id,
                "name": name or f"{role}-{token_id}",
                "role": role,
                "sha256": _digest(token),
                "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            }
        )
        self._save()
        return token

    def revoke(self, token_id: str) -> None:
        """Remove a token from the file.

        Raises:
            TokenError: no token in the file has that id.
        """
        self._load()
        kept = [e for e in self._entries if e["id"] != token_id]
        if len(kept) == len(self._entries):
            raise TokenError(f"no token with id {token_id!r} in {self.path}")
        self._entries = kept
        self._save()

    def list(self) -> list[Principal]:
        """Every token's principal (file tokens first), without token values."""
        out = [Principal(e["id"], e["name"], e["role"], e.get("created", ""), "file") for e in self._entries]
        return out + [p for _, p in self._env_entries]

    def has_tokens(self) -> bool:
        return bool(self._entries or self._env_entries)

    def authenticate(self, token: str | None) -> Principal | None:
        """The principal of ``token``, or None when it is missing or unknown (constant-time comparison)."""
        if not token:
            return None
        if self._mtime() != self._loaded_mtime:
            self._load()  # a token created or revoked by the CLI while the service runs
        digest = _digest(token)
        found = None
        for e in self._entries:
            if hmac.compare_digest(e["sha256"], digest):
                found = Principal(e["id"], e["name"], e["role"], e.get("created", ""), "file")
        for d, principal in self._env_entries:
            if hmac.compare_digest(d, digest):
                found = principal
        return found

    def reload(self) -> None:
        """Re-read the token file (a token created or revoked by the CLI while the service runs)."""
        self._load()
