"""Request authentication and role checks for the API routes (FastAPI dependencies), and the client address
recorded with each audited action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from apps.web.auth import Principal

bearer = HTTPBearer(
    auto_error=False,
    description="A token from `cdp serve --init-tokens` or `cdp token create --role ROLE`.",
)


def require(*roles: str) -> Callable[..., Principal]:
    """A dependency that returns the caller's principal, or answers 401 (no or unknown token) or 403 (a
    role outside ``roles``; any role when ``roles`` is empty)."""

    def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Principal:
        principal = request.app.state.tokens.authenticate(credentials.credentials if credentials else None)
        if principal is None:
            raise HTTPException(
                401,
                "missing or unknown token: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if roles and principal.role not in roles:
            raise HTTPException(
                403, f"role {principal.role} may not do this; it needs one of: {', '.join(roles)}"
            )
        request.state.principal = principal
        return principal

    return dependency


ANY = require()
EDITORS = require("admin", "marketer")
EXPORTERS = require("admin", "marketer")
SQL_USERS = require("admin", "analyst")
ADMINS = require("admin")


def client_of(request: Request) -> str | None:
    """The client address, for the audit log."""
    return request.client.host if request.client else None
