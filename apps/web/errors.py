"""Errors of the web service and the HTTP status each one answers with.

Domain errors (an unknown audience, a lake without the data an action needs, an invalid rule or SQL query)
carry messages written for the person who sent the request: the app turns them into ``{"detail": reason}``
answers, and background tasks report them as their error. Anything else is an internal error.
"""

from __future__ import annotations


class WebError(ValueError):
    """A request the service refuses with a reason (unknown tag or pack, forbidden ID type)."""

    status = 422


class NotFound(WebError):
    """The tag, pack or other object named in the request does not exist."""

    status = 404


class Forbidden(WebError):
    """The caller's role may not do this with this object (a marketer and an unhashed pack)."""

    status = 403


def expected_errors() -> tuple[type[BaseException], ...]:
    """Domain errors whose message is meant for the user (shown as a 4xx reason or a task's error)."""
    from cdp.lake import LakeError
    from cdp.leases import LeaseError, PartialTableError
    from cdp.sql import SqlError

    errors: list[type[BaseException]] = [LakeError, LeaseError, PartialTableError, SqlError, WebError]
    try:
        from audiences.errors import AudienceError

        errors.append(AudienceError)
    except ImportError:  # the audience package is optional for the SQL and catalog endpoints
        pass
    try:
        from tags.catalog import CatalogError

        errors.append(CatalogError)
    except ImportError:
        pass
    return tuple(errors)


def status_of(exc: BaseException) -> int:
    """The HTTP status of a domain error: 404 for things that do not exist, 409 for missing upstream data and
    for tables another run is writing or left half-written (try again later), 422 for everything the caller
    can fix in the request."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    name = type(exc).__name__
    if name == "UnknownAudienceError":
        return 404
    if name in ("MissingDataError", "CatalogError", "LeaseError", "PartialTableError"):
        return 409
    return 422
