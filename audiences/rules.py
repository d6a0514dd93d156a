"""The audience rule DSL: parse a rule (JSON or YAML, already loaded into Python objects) into a validated
plan, check it against the profile's columns and the source contracts, and build the Spark ``Column`` that
selects the audience from ``gold.profile``.

A rule is a tree of nodes::

    {"all": [node, ...]}                       every node holds (AND)
    {"any": [node, ...]}                       at least one holds (OR)
    {"not": node}                              the node does not hold
    {"tag": "gender", "op": "=", "value": "F"}  a condition on one profile column (a tag)
    {"behaviour": {"source": "events", "within_days": 7, "where": {"event_type": ["add_to_cart"]},
                   "min_count": 1}}            at least min_count records of a source in the last N days
    {"engaged": {"creators": ["kol_001"], "campaigns": ["cmp_9"], "within_days": 30}}
                                               engaged with creators (2P KOL data) or campaigns (ad logs)

Operators: ``=``, ``!=``, ``in``, ``not_in``, ``between`` (inclusive, ``[low, high]``), ``>``, ``>=``, ``<``,
``<=``, ``contains`` (substring of a string tag, element of an array tag), ``is_null``, ``not_null``.

A person without a value for a tag satisfies no condition on it except ``is_null``; ``not`` turns that
"no" into "yes" (``{"not": {"tag": "gender", "op": "=", "value": "F"}}`` includes unknown gender, while
``{"tag": "gender", "op": "!=", "value": "F"}`` does not).

Parsing needs no SparkSession; tag names are checked against the columns of the profile actually built
(``validate_rule(rule, profile_columns)``), so no tag name is hard-coded here. A rule holds at most
``MAX_RULE_NODES`` nodes nested at most ``MAX_RULE_DEPTH`` groups deep, and the conditions of a group are
combined as a balanced tree: a plan travels to the engine as nested protobuf messages, whose depth is limited.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from audiences.errors import RuleError, UnknownTagError

OPERATORS = ("=", "!=", "in", "not_in", "between", ">", ">=", "<", "<=", "contains", "is_null", "not_null")
_ALIASES = {"==": "=", "eq": "=", "ne": "!=", "<>": "!=", "not in": "not_in", "gte": ">=", "gt": ">",
            "lte": "<=", "lt": "<"}  # fmt: skip
MAX_WITHIN_DAYS = 3650
ENGAGED_AD_EVENTS = ("click", "conversion")
"""Ad-log events that count as engaging with a campaign (an impression alone is not engagement)."""
KOL_SOURCE, ADS_SOURCE = "kol_engagement", "ad_delivery"
MAX_RULE_NODES = 200
"""Conditions, behaviours and groups in one rule (a rule past this size is a script, not a segment)."""
MAX_RULE_DEPTH = 8
"""Groups (all / any / not) nested inside one another."""
_LONG = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class Condition:
    """``tag op value`` on one profile column."""

    tag: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class Behaviour:
    """At least ``min_count`` records of ``source`` whose event time is in the ``within_days`` days up to
    and including ``dt``, and whose columns match ``where`` (column -> allowed values)."""

    source: str
    within_days: int
    where: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    min_count: int = 1


@dataclass(frozen=True)
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Union[Condition, Behaviour, All, AnyOf, Not]  # noqa: UP007 (a runtime alias used in isinstance)


@dataclass(frozen=True)
class Rule:
    """A parsed rule: the tree, and the original document (stored with every audience version)."""

    root: Node
    document: Any = field(compare=False, default=None)

    def tags(self) -> list[str]:
        """Profile columns the rule reads, in order of first use (excluded from lookalike features)."""
        out: list[str] = []
        for node in _walk(self.root):
            if isinstance(node, Condition) and node.tag not in out:
                out.append(node.tag)
        return out

    def behaviours(self) -> list[Behaviour]:
        """Behaviour nodes, each once, in order of first use (``behaviour_column(i)`` refers to them)."""
        out: list[Behaviour] = []
        for node in _walk(self.root):
            if isinstance(node, Behaviour) and node not in out:
                out.append(node)
        return out

    def to_json(self) -> str:
        """The rule as canonical JSON (what ``gold.audiences`` stores)."""
        return json.dumps(to_document(self.root), ensure_ascii=False, sort_keys=True)


def _walk(node: Node):
    yield node
    if isinstance(node, (All, AnyOf)):
        for item in node.items:
            yield from _walk(item)
    elif isinstance(node, Not):
        yield from _walk(node.item)


# ---- parsing -----------------------------------------------------------------------------------------------


def load_rule_text(text: str, origin: str = "rule") -> Any:
    """Read a rule given as JSON or YAML text, or as the path of a ``.json``/``.yaml`` file.

    Raises:
        RuleError: the file cannot be read or the text is neither JSON nor YAML.
    """
    candidate = text.strip()
    if candidate and not candidate.startswith(("{", "[")) and len(candidate) < 4096:
        path = Path(candidate).expanduser()
        if path.suffix.lower() in (".json", ".yaml", ".yml"):
            if not path.is_file():
                raise RuleError(f"rule file {path} does not exist")
            return load_rule_text(path.read_text(encoding="utf-8"), str(path))
    try:
        return json.loads(candidate)
    except json.JSONDecodeError:
        pass
    try:
        doc = yaml.safe_load(candidate)
    except yaml.YAMLError as exc:
        raise RuleError(f"{origin}: neither JSON nor YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise RuleError(
            f"{origin}: a rule is a JSON object such as "
            '{"all": [{"tag": "gender", "op": "=", "value": "F"}]}'
        )
    return doc


def parse_rule(document: Any) -> Rule:
    """Parse a rule document (dicts and lists, as loaded from JSON or YAML) into a :class:`Rule`.

    Args:
        document: the rule; a bare list is read as ``{"all": [...]}``.

    Returns:
        The parsed rule (not yet checked against a profile: see :func:`validate_rule`).

    Raises:
        RuleError: the document is malformed; the message gives the path of the bad node
            (``rule.all[1].value``) and the fix.
    """
    if isinstance(document, list):
        document = {"all": document}
    root = _parse(document, "rule")
    _check_size(root)
    return Rule(root, document)


def _check_size(root: Node) -> None:
    """Refuse rules too big or too deeply nested to send to the engine."""
    nodes = sum(1 for _ in _walk(root))
    if nodes > MAX_RULE_NODES:
        raise RuleError(
            f"rule: {nodes} nodes; a rule holds at most {MAX_RULE_NODES} conditions and groups. "
            "Use in / not_in for lists of values, or split it into audiences"
        )
    depth = _depth(root)
    if depth > MAX_RULE_DEPTH:
        raise RuleError(
            f"rule: groups nested {depth} deep; at most {MAX_RULE_DEPTH} all / any / not inside one another"
        )


def _depth(node: Node) -> int:
    if isinstance(node, (All, AnyOf)):
        return 1 + max(_depth(n) for n in node.items)
    if isinstance(node, Not):
        return 1 + _depth(node.item)
    return 0


def _parse(doc: Any, path: str) -> Node:
    if path.count(".") > MAX_RULE_DEPTH:  # before recursing further: a hostile rule may nest thousands deep
        raise RuleError(f"{path}: at most {MAX_RULE_DEPTH} all / any / not inside one another")
    if not isinstance(doc, Mapping):
        raise RuleError(
            f"{path}: expected an object (all / any / not / tag / behaviour / engaged), got {doc!r}"
        )
    keys = set(doc)
    if keys & {"all", "and"}:
        _only(doc, path, keys & {"all", "and"})
        items = doc.get("all", doc.get("and"))
        return All(_items(items, f"{path}.all"))
    if keys & {"any", "or"}:
        _only(doc, path, keys & {"any", "or"})
        items = doc.get("any", doc.get("or"))
        return AnyOf(_items(items, f"{path}.any"))
    if "not" in keys:
        _only(doc, path, {"not"})
        return Not(_parse(doc["not"], f"{path}.not"))
    if "tag" in keys:
        return _condition(doc, path)
    if "behaviour" in keys or "behavior" in keys:
        _only(doc, path, keys & {"behaviour", "behavior"})
        return _behaviour(doc.get("behaviour", doc.get("behavior")), f"{path}.behaviour")
    if "engaged" in keys:
        _only(doc, path, {"engaged"})
        return _engaged(doc["engaged"], f"{path}.engaged")
    raise RuleError(
        f"{path}: unknown node with keys {sorted(keys)}; use one of all, any, not, tag, behaviour, engaged"
    )


def _only(doc: Mapping, path: str, allowed: set[str]) -> None:
    extra = sorted(set(doc) - allowed)
    if extra or len(allowed) != 1:
        raise RuleError(
            f"{path}: a node has exactly one of all / any / not / behaviour / engaged; found {sorted(doc)}"
        )


def _items(items: Any, path: str) -> tuple[Node, ...]:
    if not isinstance(items, list) or not items:
        raise RuleError(f"{path}: expected a non-empty list of nodes")
    return tuple(_parse(item, f"{path}[{i}]") for i, item in enumerate(items))


def _condition(doc: Mapping, path: str) -> Condition:
    extra = sorted(set(doc) - {"tag", "op", "value"})
    if extra:
        raise RuleError(f"{path}: unknown field(s) {extra} in a condition; use tag, op, value")
    tag = doc["tag"]
    if not isinstance(tag, str) or not tag:
        raise RuleError(f"{path}.tag: expected a tag name, got {tag!r}")
    op = str(doc.get("op", "=")).strip().lower()
    op = _ALIASES.get(op, op)
    if op not in OPERATORS:
        raise RuleError(f"{path}.op: unknown operator {doc.get('op')!r}; use one of {', '.join(OPERATORS)}")
    value = doc.get("value")
    if op in ("is_null", "not_null"):
        if value is not None:
            raise RuleError(f"{path}.value: {op} takes no value")
    elif op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise RuleError(f'{path}.value: {op} needs a non-empty list, e.g. ["a", "b"]')
        if any(v is None or isinstance(v, (list, dict)) for v in value):
            raise RuleError(f"{path}.value: {op} takes a list of plain values (no null, lists or objects)")
        value = tuple(value)
    elif op == "between":
        if not isinstance(value, list) or len(value) != 2 or any(v is None for v in value):
            raise RuleError(f"{path}.value: between needs [low, high]")
        value = tuple(value)
        _check_range(value, f"{path}.value")
    elif value is None or isinstance(value, (list, dict)):
        raise RuleError(
            f"{path}.value: {op} needs one plain value (a string, a number, true/false or a date)"
        )
    return Condition(tag, op, value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_number(value: Any, path: str) -> None:
    """Numbers a Spark literal can hold: finite, and whole numbers within a 64-bit integer."""
    if isinstance(value, float) and not math.isfinite(value):
        raise RuleError(f"{path}: {value!r} is not a finite number")
    if isinstance(value, int) and not _LONG[0] <= value <= _LONG[1]:
        raise RuleError(f"{path}: {value} is out of range; whole numbers go up to {_LONG[1]:,}")


def _check_range(value: tuple[Any, Any], path: str) -> None:
    """``[low, high]`` with low <= high, both numbers or both dates."""
    low, high = value
    if _is_number(low) and _is_number(high):
        for v in value:
            _check_number(v, path)
    elif isinstance(low, str) and isinstance(high, str):
        try:
            low, high = (_dt.date.fromisoformat(v[:10]) for v in value)
        except ValueError:
            return  # not dates: the check against the tag's type names the problem
    else:
        raise RuleError(f"{path}: between needs two numbers or two dates, got {list(value)!r}")
    if low > high:
        raise RuleError(f"{path}: between needs [low, high] with low <= high, got {list(value)!r}")


def _positive_int(doc: Mapping, key: str, path: str, default: int | None, upper: int) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise RuleError(f"{path}.{key}: expected a whole number from 1 to {upper}, got {value!r}")
    return value


def _behaviour(doc: Any, path: str) -> Behaviour:
    if not isinstance(doc, Mapping):
        raise RuleError(f"{path}: expected an object with source, within_days, where, min_count")
    extra = sorted(set(doc) - {"source", "within_days", "where", "min_count"})
    if extra:
        raise RuleError(f"{path}: unknown field(s) {extra}; use source, within_days, where, min_count")
    source = doc.get("source")
    if not isinstance(source, str) or not source:
        raise RuleError(f"{path}.source: name the source contract (e.g. events, orders, kol_engagement)")
    where = doc.get("where") or {}
    if not isinstance(where, Mapping):
        raise RuleError(f"{path}.where: expected an object column -> value or list of values")
    pairs = []
    for column, values in sorted(where.items()):
        values = values if isinstance(values, list) else [values]
        if not values or any(v is None or isinstance(v, (list, dict)) for v in values):
            raise RuleError(f"{path}.where.{column}: expected a value or a non-empty list of plain values")
        pairs.append((str(column), tuple(values)))
    return Behaviour(
        source=source,
        within_days=_positive_int(doc, "within_days", path, None, MAX_WITHIN_DAYS),
        where=tuple(pairs),
        min_count=_positive_int(doc, "min_count", path, 1, 10**6),
    )


def _engaged(doc: Any, path: str) -> Node:
    if not isinstance(doc, Mapping):
        raise RuleError(f"{path}: expected an object with creators and/or campaigns and within_days")
    allowed = {"creators", "campaigns", "actions", "platforms", "ad_events", "within_days", "min_count"}
    extra = sorted(set(doc) - allowed)
    if extra:
        raise RuleError(f"{path}: unknown field(s) {extra}; use {', '.join(sorted(allowed))}")

    def strings(key: str) -> tuple[str, ...]:
        values = doc.get(key) or []
        values = values if isinstance(values, list) else [values]
        if any(not isinstance(v, str) or not v for v in values):
            raise RuleError(f"{path}.{key}: expected a list of ids (strings)")
        return tuple(values)

    creators, campaigns = strings("creators"), strings("campaigns")
    if not creators and not campaigns:
        raise RuleError(f"{path}: name at least one creator (creators) or campaign (campaigns)")
    days = _positive_int(doc, "within_days", path, 30, MAX_WITHIN_DAYS)
    count = _positive_int(doc, "min_count", path, 1, 10**6)
    nodes: list[Node] = []
    if creators:
        where = [("creator_id", creators)]
        if strings("actions"):
            where.append(("action", strings("actions")))
        if strings("platforms"):
            where.append(("platform", strings("platforms")))
        nodes.append(Behaviour(KOL_SOURCE, days, tuple(sorted(where)), count))
    if campaigns:
        events = strings("ad_events") or ENGAGED_AD_EVENTS
        nodes.append(Behaviour(ADS_SOURCE, days, (("campaign_id", campaigns), ("event_type", events)), count))
    return nodes[0] if len(nodes) == 1 else AnyOf(tuple(nodes))


def to_document(node: Node) -> Any:
    """The canonical document of a node (``engaged`` is stored expanded into its behaviours)."""
    if isinstance(node, All):
        return {"all": [to_document(n) for n in node.items]}
    if isinstance(node, AnyOf):
        return {"any": [to_document(n) for n in node.items]}
    if isinstance(node, Not):
        return {"not": to_document(node.item)}
    if isinstance(node, Behaviour):
        return {
            "behaviour": {
                "source": node.source,
                "within_days": node.within_days,
                "where": {c: list(v) for c, v in node.where},
                "min_count": node.min_count,
            }
        }
    out: dict[str, Any] = {"tag": node.tag, "op": node.op}
    if node.value is not None:
        out["value"] = list(node.value) if isinstance(node.value, tuple) else node.value
    return out


# ---- validation against the profile and the sources --------------------------------------------------------

_NUMERIC = ("tinyint", "smallint", "int", "bigint", "long", "integer", "float", "double")


def _kind(spark_type: str) -> str:
    t = spark_type.lower()
    if t in _NUMERIC or t.startswith("decimal"):
        return "number"
    if t in ("string", "boolean", "date", "timestamp"):
        return t
    if t.startswith("array<"):
        return "array"
    return "other"


def _check_value(value: Any, kind: str, path: str) -> None:
    if kind == "number":
        if not _is_number(value):
            raise RuleError(f"{path}: the tag is numeric; use a number, got {value!r}")
        _check_number(value, path)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise RuleError(f"{path}: the tag is true/false; use true or false, got {value!r}")
    elif kind in ("date", "timestamp"):
        try:
            _dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            raise RuleError(f"{path}: the tag is a date; use YYYY-MM-DD, got {value!r}") from None
    elif kind in ("string", "array") and (not isinstance(value, (str, int)) or isinstance(value, bool)):
        raise RuleError(f"{path}: the tag holds text; use a string, got {value!r}")


def _unknown_tag(tag: str, columns: Sequence[str], path: str) -> UnknownTagError:
    close = difflib.get_close_matches(tag, list(columns), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return UnknownTagError(
        f"{path}: unknown tag {tag!r}{hint} (see 'cdp tags list' for the tags in the profile)"
    )


def validate_rule(
    rule: Rule, profile_columns: Mapping[str, str], sources: Mapping[str, Any] | None = None
) -> Rule:
    """Check every condition against the profile's columns and every behaviour against the source contracts.

    Args:
        rule: the parsed rule.
        profile_columns: column name -> Spark type name of ``gold.profile`` (read from its schema).
        sources: source contracts by name (``schemas.load_sources()``); behaviours are not checked when None.

    Returns:
        The same rule.

    Raises:
        UnknownTagError: a condition names a column the profile does not have.
        RuleError: an operator does not fit the tag's type, a value has the wrong type, or a behaviour names
            an unknown source or column.
    """
    columns = {c: t for c, t in profile_columns.items() if c not in ("oneid", "dt")}
    _validate(rule.root, "rule", columns, sources)
    return rule


def _validate(node: Node, path: str, columns: Mapping[str, str], sources: Mapping[str, Any] | None) -> None:
    if isinstance(node, (All, AnyOf)):
        for i, item in enumerate(node.items):
            _validate(item, f"{path}.{'all' if isinstance(node, All) else 'any'}[{i}]", columns, sources)
    elif isinstance(node, Not):
        _validate(node.item, f"{path}.not", columns, sources)
    elif isinstance(node, Condition):
        if node.tag not in columns:
            raise _unknown_tag(node.tag, list(columns), f"{path}.tag")
        kind = _kind(columns[node.tag])
        if node.op == "contains" and kind not in ("string", "array"):
            raise RuleError(
                f"{path}.op: contains works on text and list tags; {node.tag} is {columns[node.tag]}"
            )
        if node.op in (">", ">=", "<", "<=", "between") and kind not in ("number", "date", "timestamp"):
            raise RuleError(
                f"{path}.op: {node.op} compares numbers or dates; {node.tag} is {columns[node.tag]} "
                "(use = or in for categories)"
            )
        if node.op in ("is_null", "not_null"):
            return
        values = node.value if isinstance(node.value, tuple) else (node.value,)
        for v in values:
            _check_value(v, kind, f"{path}.value")
    elif isinstance(node, Behaviour) and sources is not None:
        contract = sources.get(node.source)
        if contract is None:
            raise RuleError(
                f"{path}.behaviour.source: unknown source {node.source!r}; "
                f"use one of {', '.join(sorted(sources))}"
            )
        names = {c.name: c for c in contract.columns}
        for column, _ in node.where:
            spec = names.get(column)
            if spec is None:
                raise RuleError(
                    f"{path}.behaviour.where.{column}: source {node.source} has no column {column!r}; "
                    f"columns: {', '.join(names)}"
                )
            if spec.pii == "direct":
                raise RuleError(
                    f"{path}.behaviour.where.{column}: {column} is personal data and cannot be filtered on"
                )
        if not contract.identifier_columns:
            raise RuleError(
                f"{path}.behaviour.source: {node.source} has no identifier column to reach a OneID"
            )


# ---- Spark columns ----------------------------------------------------------------------------------------


def behaviour_column(index: int) -> str:
    """The name of the boolean column a job adds to the profile for the rule's ``index``-th behaviour."""
    return f"_behaviour_{index}"


def _literal(value: Any, kind: str):
    from pyspark.sql import functions as F

    if kind in ("date", "timestamp"):
        return F.lit(_dt.date.fromisoformat(str(value)[:10]))
    return F.lit(value)


def build_rule_column(rule: Rule, profile_columns: Mapping[str, str]):
    """The boolean ``Column`` that selects the audience from the profile (never NULL).

    Behaviour nodes read the boolean columns named by :func:`behaviour_column`, which the caller adds to the
    profile (``jobs.audiences`` joins the behaviour sets computed by :mod:`audiences.behaviour`).

    Args:
        rule: a rule that passed :func:`validate_rule`.
        profile_columns: column name -> Spark type name of the profile.
    """
    behaviours = rule.behaviours()
    return _column(rule.root, profile_columns, behaviours)


def _balanced(columns: list, combine):
    """``combine`` the columns pairwise as a balanced tree: ``(a & b) & (c & d)``, not ``((a & b) & c) & d``,
    so a group of n conditions nests log2(n) deep in the plan sent to the engine, not n deep."""
    while len(columns) > 1:
        pairs = [combine(columns[i], columns[i + 1]) for i in range(0, len(columns) - 1, 2)]
        columns = pairs + (columns[-1:] if len(columns) % 2 else [])
    return columns[0]


def _column(node: Node, columns: Mapping[str, str], behaviours: list[Behaviour]):
    from pyspark.sql import functions as F

    if isinstance(node, All):
        return _balanced([_column(n, columns, behaviours) for n in node.items], lambda a, b: a & b)
    if isinstance(node, AnyOf):
        return _balanced([_column(n, columns, behaviours) for n in node.items], lambda a, b: a | b)
    if isinstance(node, Not):
        return ~_column(node.item, columns, behaviours)
    if isinstance(node, Behaviour):
        return F.coalesce(F.col(behaviour_column(behaviours.index(node))), F.lit(False))
    kind = _kind(columns[node.tag])
    col = F.col(f"`{node.tag}`")
    if kind in ("date", "timestamp"):
        col = col.cast("date")
    op, value = node.op, node.value
    if op == "is_null":
        return col.isNull()
    if op == "not_null":
        return col.isNotNull()
    if op == "contains":
        cond = F.array_contains(col, value) if kind == "array" else F.instr(col, str(value)) > 0
    elif op in ("in", "not_in"):
        cond = col.isin(*[_literal(v, kind) for v in value])
        cond = cond if op == "in" else ~cond
    elif op == "between":
        cond = col.between(_literal(value[0], kind), _literal(value[1], kind))
    else:
        lit = _literal(value, kind)
        cond = {"=": col == lit, "!=": col != lit, ">": col > lit, ">=": col >= lit, "<": col < lit,
                "<=": col <= lit}[op]  # fmt: skip
    return F.coalesce(cond, F.lit(False))
