"""The web service: API (OpenAPI documented) and web UI for marketers, SQL for analysts, in one process.

``create_app(settings, tokens=..., spark=...)`` builds the FastAPI application; ``cdp serve`` runs it.
"""

from apps.web.app import create_app
from apps.web.auth import ROLES, Principal, TokenError, TokenStore

__all__ = ["ROLES", "Principal", "TokenError", "TokenStore", "create_app"]
