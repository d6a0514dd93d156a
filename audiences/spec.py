"""Audience definitions: what a user writes (a YAML/JSON file or a JSON string) validated into a plan, with no
SparkSession needed.

A definition is either a bare rule (see :mod:`audiences.rules`) or a document::

    name: young_makeup_lovers            # the audience id is this name in lower_snake_case
    description: 18-27, makeup buyers, engaged with beauty creators
    rule: {all: [...]}                   # a rule audience (re-evaluated for every new dt), or
    seed: {path: phones.csv, id_type: phone}   # an uploaded identifier list (plain or md5/sha256), or
    engaged: {creators: [kol_001], within_days: 30}   # an engagement audience (a rule in short form)
    exports:                             # optional: packs written after every refresh
      - {destination: tencent, id_types: [phone, oaid]}
      - {destination: oceanengine, campaign_id: OE-2026-11-A, holdout: 0.1}   # a campaign's packs
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from audiences.errors import RuleError
from audiences.rules import Rule, load_rule_text, parse_rule

KINDS = ("rule", "engagement", "seed", "lookalike")
_TOP_KEYS = {"name", "kind", "description", "rule", "seed", "engaged", "exports"}  # kind: as stored


@dataclass(frozen=True)
class SeedList:
    """An uploaded list of identifiers: a text/CSV file with one identifier per line (first column)."""

    path: str
    id_type: str


@dataclass(frozen=True)
class ExportSchedule:
    """A pack to write for every new version of the audience."""

    destination: str
    id_types: tuple[str, ...] = ()
    campaign_id: str | None = None
    """The campaign the packs are for: its control group (``holdout``) is kept out (effect analysis)."""
    holdout: float = 0.0


@dataclass(frozen=True)
class AudienceSpec:
    """A validated audience definition."""

    name: str
    kind: str
    description: str = ""
    rule: Rule | None = None
    seed: SeedList | None = None
    exports: tuple[ExportSchedule, ...] = ()

    @property
    def audience_id(self) -> str:
        return audience_id_of(self.name)

    def document(self) -> dict[str, Any]:
        """The canonical definition stored with every version."""
        doc: dict[str, Any] = {"name": self.name, "kind": self.kind, "description": self.description}
        if self.rule is not None:
            from audiences.rules import to_document

            doc["rule"] = to_document(self.rule.root)
        if self.seed is not None:
            doc["seed"] = {"path": self.seed.path, "id_type": self.seed.id_type}
        if self.exports:
            doc["exports"] = [
                {"destination": e.destination, "id_types": list(e.id_types)}
                | ({"campaign_id": e.campaign_id, "holdout": e.holdout} if e.campaign_id else {})
                for e in self.exports
            ]
        return doc


def audience_id_of(name: str) -> str:
    """The id of an audience named ``name``: lower_snake_case ASCII, or ``aud_<hash>`` for other scripts."""
    slug = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
    if not slug or not re.match(r"^[a-z]", slug):
        slug = f"aud_{hashlib.sha256(name.encode()).hexdigest()[:10]}" + (f"_{slug}" if slug else "")
    return slug[:64]


def parse_audience(document: Any, *, name: str | None = None, description: str = "") -> AudienceSpec:
    """Validate a definition document (or a bare rule, then ``name`` is needed).

    Raises:
        RuleError: the document is malformed (unknown fields, no name, both a rule and a seed...).
    """
    if isinstance(document, dict) and (set(document) & {"rule", "seed", "engaged"}) and "tag" not in document:
        extra = sorted(set(document) - _TOP_KEYS)
        if extra:
            raise RuleError(
                f"audience definition: unknown field(s) {extra}; use {', '.join(sorted(_TOP_KEYS))}"
            )
        bodies = [k for k in ("rule", "seed", "engaged") if k in document]
        if len(bodies) != 1:
            raise RuleError(f"audience definition: give exactly one of rule, seed, engaged (found {bodies})")
        name = name or document.get("name")
        description = description or str(document.get("description") or "")
        exports = _exports(document.get("exports"))
        if not name or not isinstance(name, str):
            raise RuleError("audience definition: name is missing; add name: <audience name> or pass --name")
        if "seed" in document:
            seed = document["seed"]
            if not isinstance(seed, dict) or not seed.get("path") or not seed.get("id_type"):
                raise RuleError(
                    "audience definition: seed needs path and id_type "
                    "(e.g. {path: phones.csv, id_type: phone})"
                )
            extra = sorted(set(seed) - {"path", "id_type"})
            if extra:
                raise RuleError(f"audience definition: seed has unknown field(s) {extra}; use path, id_type")
            return AudienceSpec(
                name,
                "seed",
                description,
                seed=SeedList(str(seed["path"]), str(seed["id_type"])),
                exports=exports,
            )
        if "engaged" in document:
            rule = parse_rule({"engaged": document["engaged"]})
            return AudienceSpec(name, "engagement", description, rule=rule, exports=exports)
        return AudienceSpec(name, "rule", description, rule=parse_rule(document["rule"]), exports=exports)
    if not name:
        raise RuleError("a bare rule needs a name for the audience (--name)")
    rule = parse_rule(document)
    kind = "engagement" if isinstance(document, dict) and set(document) == {"engaged"} else "rule"
    return AudienceSpec(name, kind, description, rule=rule)


def _exports(value: Any) -> tuple[ExportSchedule, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RuleError("audience definition: exports is a list of {destination, id_types}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not item.get("destination"):
            raise RuleError(f"audience definition: exports[{i}] needs a destination")
        ids = item.get("id_types") or []
        if not isinstance(ids, list):
            raise RuleError(f"audience definition: exports[{i}].id_types is a list of ID types")
        campaign, holdout = item.get("campaign_id"), item.get("holdout", 0.0)
        if holdout and not campaign:
            raise RuleError(f"audience definition: exports[{i}].holdout needs the campaign_id it is kept for")
        if not isinstance(holdout, int | float) or not 0 <= holdout <= 0.5:
            raise RuleError(f"audience definition: exports[{i}].holdout is a share from 0 to 0.5")
        out.append(
            ExportSchedule(
                str(item["destination"]),
                tuple(str(t) for t in ids),
                str(campaign) if campaign else None,
                float(holdout),
            )
        )
    return tuple(out)


def load_audience(text: str, *, name: str | None = None, description: str = "") -> AudienceSpec:
    """Read a definition from a file path or JSON/YAML text and validate it."""
    return parse_audience(load_rule_text(text), name=name, description=description)
