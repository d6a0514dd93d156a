"""Identity resolution rules: the validated form of ``identity/rules.yaml`` and the plan of what to read.

The rules say which identifier is the centre of a record's star (``priority``), when an identifier counts
as shared and loses its links (``max_degree``, ``limits``, and ``person_limit``: linked to persons who hold
together too many member ids, a person being what ``person_types`` identifiers link up to among themselves),
when a OneID raises an alert
(``max_component_size``, ``max_per_oneid``) and which sources may link records by personal attributes
(``attribute_links``, off by default; a source may have several, each making its own ID type
``attribute:<name>``). ``load_rules`` validates the file and ``plan_sources`` checks the
rules against the source contracts, so both fail before any engine starts, naming the file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cdp.lake import silver_table
from schemas import ID_TYPES, SourceContract
from schemas.contract import error_location, read_yaml_mapping

RULES_FILE = Path(__file__).resolve().parent / "rules.yaml"
"""The packaged rules, used when no other file is given."""

ATTRIBUTE_PREFIX = "attribute:"
"""Identifiers made from personal attributes have the ID type ``attribute:<rule name>``."""

IdType = Literal[ID_TYPES]  # type: ignore[valid-type]
Positive = Annotated[int, Field(ge=1)]


class RulesError(ValueError):
    """The rules file is missing, unreadable or invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LimitRule(_Strict):
    """Identifiers of ``id_types`` linked to more than ``max_links[t]`` distinct identifiers of type ``t``
    are shared; ``name`` is the reason written to the audit table."""

    name: str
    id_types: list[IdType] = Field(min_length=1)
    max_links: dict[IdType, Positive] = Field(min_length=1)


class PersonLimit(_Strict):
    """Identifiers of ``id_types`` are shared when the persons they are linked to hold together more than
    ``max_links[t]`` identifiers of type ``t`` (a person has one member id: a tablet linked to two persons
    holding two member ids is shared even when it was seen with only one of them)."""

    name: str = "shared_between_persons"
    id_types: list[IdType] = Field(min_length=1)
    max_links: dict[IdType, Positive] = Field(min_length=1)


class AttributeRule(_Strict):
    """Link records of one source by an exact match of personal attributes (e.g. name hash + birth date)."""

    name: str
    source: str
    columns: list[str] = Field(min_length=1)
    enabled: bool = False
    max_links: dict[IdType, Positive] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.replace("_", "").isalnum() or not v.islower():
            raise ValueError(f"{v!r} must be lower_snake_case")
        return v

    @property
    def id_type(self) -> str:
        """The ID type of the identifiers this rule makes."""
        return ATTRIBUTE_PREFIX + self.name


class IdentityRules(_Strict):
    """Every rule of identity resolution; see ``identity/rules.yaml`` for their meaning."""

    priority: list[IdType]
    person_types: list[IdType] = Field(default_factory=list)
    person_limit: PersonLimit | None = None
    max_degree: Positive = 50
    max_component_size: Positive = 50
    max_per_oneid: dict[IdType, Positive] = Field(default_factory=dict)
    limits: list[LimitRule] = Field(default_factory=list)
    attribute_links: list[AttributeRule] = Field(default_factory=list)

    @field_validator("priority")
    @classmethod
    def _every_type_once(cls, v: list[str]) -> list[str]:
        dupes = sorted({t for t in v if v.count(t) > 1})
        missing = [t for t in ID_TYPES if t not in v]
        if dupes or missing:
            raise ValueError(
                f"list every ID type exactly once; repeated: {dupes or 'none'}, missing: {missing or 'none'}"
            )
        return v

    @model_validator(mode="after")
    def _unique(self) -> IdentityRules:
        if self.person_limit is not None:
            both = sorted(set(self.person_limit.id_types) & set(self.person_types))
            if both:
                raise ValueError(
                    "person_limit.id_types are identifiers seen with persons, not person_types; "
                    f"remove {both} from one of them"
                )
            held = sorted(set(self.person_limit.max_links) - set(self.person_types))
            if held:
                raise ValueError(
                    f"person_limit.max_links counts identifiers of persons; add {held} to person_types"
                )
        seen: dict[str, str] = {}
        for rule in self.limits:
            for t in rule.id_types:
                if t in seen:
                    raise ValueError(
                        f"id type {t} is limited by both {seen[t]!r} and {rule.name!r}; keep one"
                    )
                seen[t] = rule.name
        names = [r.name for r in self.attribute_links]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"attribute_links names must be unique; repeated: {dupes}")
        return self

    @property
    def id_types(self) -> list[str]:
        """Every ID type the graph can hold: ``ID_TYPES`` in star order, then the ``attribute:<name>`` types
        of the enabled attribute rules (what the gate of ``gold.oneid_map`` accepts)."""
        return [*self.priority, *(r.id_type for r in self.attribute_links if r.enabled)]

    def rank(self, id_type: str) -> int:
        """Position of ``id_type`` in the star order (0 is the strongest); attribute identifiers come last."""
        if id_type in self.priority:
            return self.priority.index(id_type)
        names = [r.id_type for r in self.attribute_links]
        return len(self.priority) + names.index(id_type)

    def link_limits(self) -> list[tuple[str, str, int, str]]:
        """Every per-type limit as ``(id_type, linked_type, max_links, reason)``."""
        out = [
            (t, linked, n, rule.name)
            for rule in self.limits
            for t in rule.id_types
            for linked, n in rule.max_links.items()
        ]
        out += [
            (r.id_type, linked, n, r.name)
            for r in self.attribute_links
            if r.enabled
            for linked, n in r.max_links.items()
        ]
        return out


def load_rules(path: str | Path | None = None) -> IdentityRules:
    """Read and validate a rules file.

    Args:
        path: a YAML rules file; the packaged ``identity/rules.yaml`` when omitted.

    Returns:
        The validated rules.

    Raises:
        RulesError: the file cannot be read or parsed, or a field is invalid; the message names the file,
            the field and the fix.
    """
    path = Path(path) if path else RULES_FILE
    data = read_yaml_mapping(
        path, RulesError, "identity rules", "identity rules are a YAML mapping with at least a priority list"
    )
    try:
        return IdentityRules.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field; remove it or check its spelling"
            elif err["type"] == "missing":
                msg = "required field is missing"
            elif err["type"] == "literal_error":
                msg = f"unknown id type; use one of {', '.join(ID_TYPES)}"
            lines.append(f"{path}: {error_location(err['loc'], data)}: {msg}")
        raise RulesError("\n".join(lines)) from None


@dataclass(frozen=True)
class SourcePlan:
    """What identity resolution reads from one source's silver table.

    Attributes:
        source: the source contract name (written as ``source`` on edges).
        table: the silver table, ``silver.<entity>``.
        identifiers: ``(silver column, id_type, rank)`` in star order; direct-PII identifiers are read
            from their keyed hash ``<column>_hash``.
        time_column: the contract's event time, for first and last seen.
        attributes: the enabled attribute rules of this source in file order, each making one identifier
            of its own ID type; None when the source has none (a single rule is accepted and kept as a
            one-rule tuple).
    """

    source: str
    table: str
    identifiers: tuple[tuple[str, str, int], ...]
    time_column: str
    attributes: tuple[AttributeRule, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.attributes, AttributeRule):
            object.__setattr__(self, "attributes", (self.attributes,))
        elif self.attributes is not None and not self.attributes:
            object.__setattr__(self, "attributes", None)


def _silver_columns(contract: SourceContract) -> list[str]:
    out = []
    for c in contract.columns:
        out.append(f"{c.name}_hash" if c.pii == "direct" else c.name)
    return out


def plan_sources(
    rules: IdentityRules, sources: dict[str, SourceContract], *, rules_path: str | Path | None = None
) -> list[SourcePlan]:
    """Decide which silver columns feed the identity graph, and check the rules against the contracts.

    Args:
        rules: validated rules.
        sources: every source contract by name (``schemas.load_sources()``).
        rules_path: the rules file, named in errors.

    Returns:
        One plan per source with at least one identifier column (or an enabled attribute rule), by name.

    Raises:
        RulesError: an attribute rule names an unknown source or a column its silver table lacks.
    """
    where = Path(rules_path) if rules_path else RULES_FILE
    by_source: dict[str, list[AttributeRule]] = {}
    for i, rule in enumerate(rules.attribute_links):
        field = f"attribute_links[{i}] ({rule.name})"
        contract = sources.get(rule.source)
        if contract is None:
            raise RulesError(
                f"{where}: {field}.source: no source contract named {rule.source!r}; "
                f"known sources: {', '.join(sorted(sources))}"
            )
        have = _silver_columns(contract)
        for col in rule.columns:
            if col not in have:
                raise RulesError(
                    f"{where}: {field}.columns: silver.{contract.entity} has no column {col!r} "
                    f"(direct PII is kept as <column>_hash); use one of {', '.join(have)}"
                )
        if rule.enabled:
            by_source.setdefault(rule.source, []).append(rule)
    plans = []
    for name in sorted(sources):
        contract = sources[name]
        ids = []
        for position, col in enumerate(contract.columns):
            if col.id_type:
                silver = f"{col.name}_hash" if col.pii == "direct" else col.name
                ids.append((silver, col.id_type, rules.rank(col.id_type) * 100 + position))
        if ids or name in by_source:
            plans.append(
                SourcePlan(
                    source=name,
                    table=silver_table(contract.entity),
                    identifiers=tuple(sorted(ids, key=lambda c: c[2])),
                    time_column=contract.event_time,
                    attributes=tuple(by_source[name]) if name in by_source else None,
                )
            )
    return plans
