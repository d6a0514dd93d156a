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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

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


RECORD_PREFIX = "record:"
"""Records of a probabilistic source without an ID-typed record column are vertices ``record:<source>``."""

BLOCKING_FUNCTIONS = ("first3", "last4", "year", "initials")
"""``attribute.<function>`` parts of a blocking rule (see ``identity.linkage.build_blocking_key``)."""

_DEFAULT_THRESHOLDS = {"jaro_winkler": [0.92, 0.8], "levenshtein": [1, 2], "exact": [], "date": []}


class Comparison(_Strict):
    """How two records' values of one attribute compare: a ladder of levels, strongest first.

    ``levels``: ``exact`` (exact / else), ``jaro_winkler`` (exact, then similarity >= each threshold),
    ``levenshtein`` (exact, then edit distance <= each threshold), ``date`` (exact, day and month swapped,
    one digit off, same year). A missing value on either side is its own level with weight 0.
    ``tf_adjust``: exact matches on rare values weigh more, on common ones (王伟, Zhang Wei) less.
    """

    attribute: str
    levels: Literal["exact", "jaro_winkler", "levenshtein", "date"] = "jaro_winkler"
    thresholds: list[float] | None = None
    tf_adjust: bool = False

    @model_validator(mode="after")
    def _thresholds(self) -> Comparison:
        if self.thresholds is None:
            object.__setattr__(self, "thresholds", list(_DEFAULT_THRESHOLDS[self.levels]))
        elif self.levels in ("exact", "date") and self.thresholds:
            raise ValueError(f"levels {self.levels!r} take no thresholds; remove them")
        elif self.levels == "jaro_winkler" and any(not 0 < t < 1 for t in self.thresholds):
            raise ValueError("jaro_winkler thresholds are similarities between 0 and 1, e.g. [0.92, 0.8]")
        elif self.levels == "levenshtein" and any(t < 1 or t != int(t) for t in self.thresholds):
            raise ValueError("levenshtein thresholds are edit distances >= 1, e.g. [1, 2]")
        return self

    @property
    def name(self) -> str:
        return self.attribute


class ProbabilisticSource(_Strict):
    """One source taking part in probabilistic linkage: its record column and which of its columns hold
    each attribute (contract column names; direct PII is decrypted from bronze inside the run only)."""

    source: str
    record_id: str
    columns: dict[str, str] = Field(min_length=1)


class EmSettings(_Strict):
    """Expectation-maximisation: iterations per blocking rule, random pairs for ``u``, the seed."""

    max_iterations: Positive = 25
    u_pairs: Positive = 200_000
    seed: int = 42


class ProbabilisticRules(_Strict):
    """Fellegi-Sunter linkage of records without strong identifiers (``identity.linkage``)."""

    enabled: bool = False
    name: str = "person"
    attributes: dict[str, Literal["name", "date", "digits", "text"]] = Field(min_length=1)
    sources: list[ProbabilisticSource] = Field(min_length=1)
    comparisons: list[Comparison] = Field(min_length=1)
    blocking: list[list[str]] = Field(min_length=1)
    threshold: float = Field(0.9, gt=0, lt=1)
    max_block_size: Positive = 1000
    max_links: Positive = 3
    em: EmSettings = Field(default_factory=EmSettings)

    @model_validator(mode="after")
    def _consistent(self) -> ProbabilisticRules:
        known = sorted(self.attributes)
        for c in self.comparisons:
            if c.attribute not in self.attributes:
                raise ValueError(f"comparison on {c.attribute!r}: not an attribute; use one of {known}")
        names = [c.name for c in self.comparisons]
        if len(set(names)) != len(names):
            raise ValueError("compare each attribute once")
        for rule in self.blocking:
            if not rule:
                raise ValueError("a blocking rule lists at least one attribute")
            for part in rule:
                attr, _, fn = part.partition(".")
                if attr not in self.attributes:
                    raise ValueError(f"blocking part {part!r}: unknown attribute; use one of {known}")
                if fn and fn not in BLOCKING_FUNCTIONS:
                    raise ValueError(
                        f"blocking part {part!r}: use attribute or attribute."
                        f"{{{','.join(BLOCKING_FUNCTIONS)}}}"
                    )
        for s in self.sources:
            extra = sorted(set(s.columns) - set(self.attributes))
            if extra:
                raise ValueError(f"source {s.source}: columns for unknown attributes {extra}; use {known}")
        if len({s.source for s in self.sources}) != len(self.sources):
            raise ValueError("list each source once")
        return self

    def attribute_kind(self, attribute: str) -> str:
        return self.attributes[attribute]

    @property
    def edge_source(self) -> str:
        """The ``source`` of the graph edges this linkage makes."""
        return f"probabilistic:{self.name}"


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
    probabilistic: ProbabilisticRules | None = None
    _record_types: dict[str, str] = PrivateAttr(default_factory=dict)

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
        return [
            *self.priority,
            *(r.id_type for r in self.attribute_links if r.enabled),
            *(self.probabilistic_types if self.linkage_enabled else []),
        ]

    @property
    def linkage_enabled(self) -> bool:
        """Whether probabilistic linkage is declared and enabled."""
        return self.probabilistic is not None and self.probabilistic.enabled

    def record_type(self, source: str) -> str:
        """The vertex ID type of a probabilistic source's records (see ``probabilistic_types``)."""
        return self._record_types.get(source, RECORD_PREFIX + source)

    @property
    def probabilistic_types(self) -> list[str]:
        """The ``record:<source>`` ID types of probabilistic sources whose record column has no ID type
        (``plan_sources`` records the others; before it, every source is assumed to have none)."""
        if self.probabilistic is None:
            return []
        types = [
            self._record_types.get(s.source, RECORD_PREFIX + s.source) for s in self.probabilistic.sources
        ]
        return [t for t in dict.fromkeys(types) if t.startswith(RECORD_PREFIX)]

    def rank(self, id_type: str) -> int:
        """Position of ``id_type`` in the star order (0 is the strongest); attribute identifiers come last."""
        if id_type in self.priority:
            return self.priority.index(id_type)
        names = [r.id_type for r in self.attribute_links]
        if id_type in names:
            return len(self.priority) + names.index(id_type)
        return len(self.priority) + len(names) + self.probabilistic_types.index(id_type)

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
        if self.linkage_enabled:
            # A record linked to more records of one source than max_links is ambiguous (a template
            # record, a household): its probabilistic links are pruned like a shared device's.
            types = self.probabilistic_types
            out += [
                (t, linked, self.probabilistic.max_links, f"{self.probabilistic.edge_source}")
                for t in types
                for linked in types
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
    # Records of enabled probabilistic sources are vertices of their own (record:<source>) unless their
    # record column is already an identifier.
    linked = plan_linkage(rules, sources, rules_path=rules_path) if rules.linkage_enabled else []
    records = {p.source: p for p in linked}
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
        link = records.get(name)
        if link is not None and link.record_type.startswith(RECORD_PREFIX):
            position = next(i for i, c in enumerate(contract.columns) if c.name == link.record_id)
            ids.append((link.record_id, link.record_type, rules.rank(link.record_type) * 100 + position))
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


@dataclass(frozen=True)
class LinkagePlan:
    """What probabilistic linkage reads from one source.

    Attributes:
        source: the source contract name.
        record_id: the column identifying a record; ``record_type`` is its vertex ID type.
        record_type: the contract's ID type of that column, else ``record:<source>``.
        columns: ``{attribute: contract column}``.
        direct: the contract columns among them that are direct PII (encrypted in bronze, absent from
            silver): they are decrypted inside the run only.
        order_by: the contract column ordering a record's versions (the latest one is compared).
    """

    source: str
    record_id: str
    record_type: str
    columns: dict[str, str]
    direct: tuple[str, ...]
    order_by: str | None


def plan_linkage(
    rules: IdentityRules, sources: dict[str, SourceContract], *, rules_path: str | Path | None = None
) -> list[LinkagePlan]:
    """Check the probabilistic sources against their contracts and say what to read (empty when the
    linkage is off). Also records on ``rules`` the vertex ID type of each source's records.

    Raises:
        RulesError: an unknown source or column, naming the file and the field.
    """
    model = rules.probabilistic
    if model is None:
        return []
    where = Path(rules_path) if rules_path else RULES_FILE
    plans = []
    for i, src in enumerate(model.sources):
        field = f"probabilistic.sources[{i}]"
        contract = sources.get(src.source)
        if contract is None:
            raise RulesError(
                f"{where}: {field}.source: no source contract named {src.source!r}; "
                f"known sources: {', '.join(sorted(sources))}"
            )
        by_name = {c.name: c for c in contract.columns}
        for label, col in [
            ("record_id", src.record_id),
            *((f"columns.{a}", c) for a, c in src.columns.items()),
        ]:
            if col not in by_name:
                raise RulesError(
                    f"{where}: {field}.{label}: source {src.source} has no column {col!r}; "
                    f"use one of {', '.join(by_name)}"
                )
        if by_name[src.record_id].pii == "direct":
            raise RulesError(
                f"{where}: {field}.record_id: {src.record_id!r} is direct PII; use the source's record key"
            )
        record_type = by_name[src.record_id].id_type or RECORD_PREFIX + src.source
        rules._record_types[src.source] = record_type
        plans.append(
            LinkagePlan(
                source=src.source,
                record_id=src.record_id,
                record_type=record_type,
                columns=dict(src.columns),
                direct=tuple(c for c in src.columns.values() if by_name[c].pii == "direct"),
                order_by=contract.order_by,
            )
        )
    return plans
