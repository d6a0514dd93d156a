"""Audiences: the rule DSL, seed lists, engagement audiences, consent filtering, insight (TGI) and overlap,
lookalike expansion with its offline evaluation, and packs (人群包) for ad platforms.

Pure DataFrame and driver-side code; ``jobs.audiences`` reads and writes the lake and is the API the CLI,
the pipeline and the web app call.
"""

from audiences.consent import BLOCKING_PURPOSES, build_optouts, without_optouts
from audiences.errors import (
    AudienceError,
    DestinationError,
    MissingDataError,
    PackTooSmallError,
    RuleError,
    SeedListError,
    SeedTooSmallError,
    UnknownAudienceError,
    UnknownPackError,
    UnknownTagError,
)
from audiences.export import (
    DESTINATIONS,
    Destination,
    build_member_identifiers,
    build_pack_lines,
    get_destination,
)
from audiences.rules import OPERATORS, Rule, build_rule_column, load_rule_text, parse_rule, validate_rule
from audiences.spec import AudienceSpec, audience_id_of, load_audience, parse_audience

__all__ = [
    "BLOCKING_PURPOSES",
    "DESTINATIONS",
    "OPERATORS",
    "AudienceError",
    "AudienceSpec",
    "Destination",
    "DestinationError",
    "MissingDataError",
    "PackTooSmallError",
    "Rule",
    "RuleError",
    "SeedListError",
    "SeedTooSmallError",
    "UnknownAudienceError",
    "UnknownPackError",
    "UnknownTagError",
    "audience_id_of",
    "build_member_identifiers",
    "build_optouts",
    "build_pack_lines",
    "build_rule_column",
    "get_destination",
    "load_audience",
    "load_rule_text",
    "parse_audience",
    "parse_rule",
    "validate_rule",
    "without_optouts",
]
