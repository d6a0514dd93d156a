"""Typed errors of the audience domain. Every message is written for the marketer who typed the rule or
clicked the button: it names what is wrong and how to fix it, so the CLI and the web app show it as is."""

from __future__ import annotations


class AudienceError(ValueError):
    """Base class: an audience cannot be estimated, created, expanded or exported as asked."""


class RuleError(AudienceError):
    """A rule is malformed: unknown operator, wrong value type, bad nesting (the message names the path)."""


class UnknownTagError(RuleError):
    """A rule names a tag that is not a column of the profile."""


class UnknownAudienceError(AudienceError):
    """No audience (or no such version) with this id."""


class SeedTooSmallError(AudienceError):
    """A lookalike seed has fewer consented, profiled members than the minimum."""


class PackTooSmallError(AudienceError):
    """A pack would hold fewer people than the minimum pack size (k-anonymity)."""


class DestinationError(AudienceError):
    """An unknown destination, or an ID type the destination does not accept."""


class SeedListError(AudienceError):
    """An uploaded identifier list cannot be read (missing file, unknown ID type, nothing matched)."""


class MissingDataError(AudienceError):
    """A table the operation needs (gold.profile, gold.oneid_map, ...) has no data for the date asked."""


class UnknownPackError(AudienceError):
    """No pack with this id (``<audience_id>/v<version>/<destination>``) under the packs root."""
