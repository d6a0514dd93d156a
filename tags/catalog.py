"""The tag catalog: declarative tag definitions (YAML files in ``tags/catalog/``) validated into a build plan.

A tag is one definition; a file holds one tag (a mapping) or a small group (``tags: [...]``). Adding a tag
is adding a file: no pipeline code changes. Loading needs no SparkSession and every error names the file,
the tag and the fix. The kinds of definition:

- ``from`` + ``value`` (+ ``where``): a Spark SQL aggregate over one base view (``members``, ``orders``,
  ``events``, ``ad_events``, ``kol_engagement``, ``demographics``, ``dmp_segments``), grouped by OneID.
- ``query``: a full Spark SQL query over the base views returning ``oneid, value``.
- ``expr``: a Spark SQL expression (window functions allowed) over other tags, named by their tag ids.
- ``function`` + ``params``: a packaged model function (``rfm_score``, ``rfm_segment``).
- ``model``: a predictive model trained on other tags (scikit-learn / LightGBM), see ``ModelSpec``.

Layers depend only downward (raw < fact < model < predictive; a tag may use tags of its own layer or
below), and the plan orders tags by their declared dependencies, refusing cycles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cdp.settings import Settings

PACKAGED_DIR = Path(__file__).resolve().parent / "catalog"
LAYERS = ("raw", "fact", "model", "predictive")
LAYER_NAMES_ZH = {"raw": "原始标签", "fact": "事实标签", "model": "模型标签", "predictive": "预测标签"}
VALUE_TYPES = {"string": "string", "long": "bigint", "double": "double", "boolean": "boolean", "date": "date"}
VIEWS = {
    "members": "silver.members",
    "orders": "silver.orders",
    "events": "silver.events",
    "ad_events": "silver.ad_events",
    "kol_engagement": "silver.kol_engagement",
    "demographics": "silver.demographics",
    "dmp_segments": "silver.dmp_segments",
}
"""Base views a definition may read, and the silver table behind each."""
FUNCTIONS = ("rfm_score", "rfm_segment")
ALGORITHMS = ("lightgbm", "logistic_regression", "random_forest")
_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED = {"oneid", "dt", "as_of", "value"}


class CatalogError(ValueError):
    """A tag definition is invalid, or the catalog as a whole is (duplicates, cycles, upward dependencies)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelSpec(_Strict):
    """The label of a predictive model: an aggregate over a base view in the ``horizon_days`` after the
    cutoff (OneIDs without rows get ``default``)."""

    from_: str = Field(alias="from")
    value: str
    where: str | None = None
    default: Any = 0

    @field_validator("from_")
    @classmethod
    def _view(cls, v: str) -> str:
        if v not in VIEWS:
            raise ValueError(f"unknown view {v!r}; use one of {', '.join(VIEWS)}")
        return v


class ModelSpec(_Strict):
    """How a predictive tag is trained (time-based holdout) and scored.

    Training uses two windows before ``dt``: features as of ``dt - 2h`` with labels in the following ``h``
    days train the model; features as of ``dt - h`` with labels up to ``dt`` are the holdout, where the
    metrics come from; the model is then refit on the holdout window and scores features as of ``dt``.
    """

    task: Literal["classification", "regression"]
    algorithm: Literal[ALGORITHMS] = "lightgbm"  # type: ignore[valid-type]
    features: list[str] = Field(min_length=1)
    label: LabelSpec
    horizon_days: int = Field(ge=1, le=366)
    population: str | None = None
    """Optional SQL predicate over the features: only these OneIDs are trained and scored (null elsewhere)."""
    baseline: str | None = None
    """A feature whose plain value is the baseline score (e.g. ``-r_365d`` style: use ``baseline_sign``)."""
    baseline_sign: Literal[1, -1] = 1
    sample_rows: int = Field(default=200_000, ge=100)
    params: dict[str, Any] = Field(default_factory=dict)


class TagDefinition(_Strict):
    """One tag of the catalog."""

    id: str
    name_zh: str
    name_en: str
    layer: Literal[LAYERS]  # type: ignore[valid-type]
    type: Literal[tuple(VALUE_TYPES)]  # type: ignore[valid-type]
    description: str
    owner: str
    refresh: str = "daily"
    depends_on: list[str] = Field(default_factory=list)
    from_: str | None = Field(default=None, alias="from")
    value: str | None = None
    where: str | None = None
    default: Any = None
    query: str | None = None
    expr: str | None = None
    function: Literal[FUNCTIONS] | None = None  # type: ignore[valid-type]
    params: dict[str, Any] = Field(default_factory=dict)
    model: ModelSpec | None = None
    source_file: str = ""

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v) or v in _RESERVED:
            raise ValueError(
                f"tag id {v!r} must be snake_case ascii (a-z, 0-9, _), start with a letter, at most 63 "
                f"characters, and not one of {sorted(_RESERVED)}"
            )
        return v

    @field_validator("from_")
    @classmethod
    def _view(cls, v: str | None) -> str | None:
        if v is not None and v not in VIEWS:
            raise ValueError(f"unknown view {v!r}; use one of {', '.join(VIEWS)}")
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> TagDefinition:
        kinds = {
            "from/value": self.from_ is not None or self.value is not None,
            "query": self.query is not None,
            "expr": self.expr is not None,
            "function": self.function is not None,
            "model": self.model is not None,
        }
        chosen = [k for k, on in kinds.items() if on]
        if len(chosen) != 1:
            raise ValueError(
                f"define the tag by exactly one of from+value, query, expr, function or model "
                f"(found {chosen or 'none'})"
            )
        if chosen == ["from/value"] and (self.from_ is None or self.value is None):
            raise ValueError("an aggregate tag needs both 'from' (a base view) and 'value' (an aggregate)")
        if self.where is not None and self.from_ is None:
            raise ValueError("'where' only applies to a from+value tag")
        if self.kind in ("aggregate", "query") and self.depends_on:
            raise ValueError("aggregate and query tags read base views; they cannot depend on other tags")
        if self.kind in ("expr", "function") and not self.depends_on:
            raise ValueError(f"an {self.kind} tag must list the tags it uses in 'depends_on'")
        if self.kind == "query" and not re.search(r"\bas\s+value\b", self.query or "", re.IGNORECASE):
            raise ValueError("a query tag must return the columns 'oneid' and '... AS value'")
        if self.kind == "model":
            if self.layer != "predictive":
                raise ValueError("a model-trained tag belongs to the predictive layer")
            if self.type not in ("double", "boolean", "long"):
                raise ValueError("a model tag's type is double (probability or value)")
        return self

    @property
    def kind(self) -> str:
        """``aggregate``, ``query``, ``expr``, ``function`` or ``model``."""
        if self.from_ is not None:
            return "aggregate"
        for k in ("query", "expr", "function", "model"):
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated definitions always have a kind")

    @property
    def spark_type(self) -> str:
        return VALUE_TYPES[self.type]

    @property
    def dependencies(self) -> list[str]:
        """Tags this one reads: ``depends_on`` plus, for a model, its features."""
        deps = list(self.depends_on)
        if self.model is not None:
            deps += [f for f in self.model.features if f not in deps]
        return deps

    @property
    def sources(self) -> list[str]:
        """The base views (and so silver tables) this tag reads directly."""
        if self.kind == "aggregate":
            return [self.from_]  # type: ignore[list-item]
        if self.kind == "query":
            return [v for v in VIEWS if re.search(rf"\b{v}\b", self.query or "")]
        if self.kind == "model":
            return [self.model.label.from_]  # type: ignore[union-attr]
        return []

    @property
    def definition(self) -> str:
        """The definition in one line, for ``cdp tags show``."""
        if self.kind == "aggregate":
            where = f" WHERE {self.where}" if self.where else ""
            return f"SELECT oneid, {self.value} FROM {self.from_}{where} GROUP BY oneid"
        if self.kind == "query":
            return " ".join((self.query or "").split())
        if self.kind == "expr":
            return " ".join((self.expr or "").split())
        if self.kind == "function":
            return f"{self.function}({', '.join(f'{k}={v}' for k, v in self.params.items())})"
        m = self.model
        assert m is not None
        return f"{m.algorithm} {m.task}, horizon {m.horizon_days} d, features {', '.join(m.features)}"


@dataclass(frozen=True)
class Catalog:
    """Validated tags in build order (every tag after the tags it depends on)."""

    tags: tuple[TagDefinition, ...]

    def __getitem__(self, tag_id: str) -> TagDefinition:
        for t in self.tags:
            if t.id == tag_id:
                return t
        raise CatalogError(f"no tag {tag_id!r} in the catalog; 'cdp tags list' shows the tags")

    def __contains__(self, tag_id: object) -> bool:
        return any(t.id == tag_id for t in self.tags)

    def __len__(self) -> int:
        return len(self.tags)

    @property
    def ids(self) -> list[str]:
        return [t.id for t in self.tags]

    def layer(self, *layers: str) -> list[TagDefinition]:
        """Tags of the given layers, in build order."""
        return [t for t in self.tags if t.layer in layers]

    def closure(self, tag_ids: Iterable[str]) -> list[TagDefinition]:
        """The given tags and everything they depend on, in build order."""
        wanted: set[str] = set()
        todo = list(tag_ids)
        while todo:
            tag = self[todo.pop()]
            if tag.id not in wanted:
                wanted.add(tag.id)
                todo += tag.dependencies
        return [t for t in self.tags if t.id in wanted]

    def derived(self, tag_ids: Iterable[str]) -> list[str]:
        """Tags computed, directly or through other tags, from any of the given ones (not the given ones
        themselves), in build order; ids the catalog does not know are ignored."""
        tainted = {t for t in tag_ids if t in self}
        out: list[str] = []
        for tag in self.tags:  # build order: a tag comes after everything it depends on
            if tag.id not in tainted and tainted.intersection(tag.dependencies):
                tainted.add(tag.id)
                out.append(tag.id)
        return out


def catalog_dirs(extra: Iterable[str | Path] | None = None) -> list[Path]:
    """Folders searched for tag definitions: the packaged ``tags/catalog`` then the ``extra`` ones.

    Args:
        extra: more folders; ``Settings.from_env().tag_paths`` (``CDP_TAG_PATH``) when omitted.
    """
    if extra is None:
        extra = Settings.from_env().tag_paths
    return [PACKAGED_DIR, *(Path(p) for p in extra)]


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def load_definitions(path: str | Path) -> list[TagDefinition]:
    """Read one definition file (one tag, or ``tags: [...]``).

    Raises:
        CatalogError: the file is unreadable or a definition is invalid (file, tag and field named).
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: cannot read tag definitions: {exc}") from exc
    items = data["tags"] if isinstance(data, dict) and set(data) == {"tags"} else [data]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise CatalogError(f"{path}: expected one tag definition (a mapping) or 'tags:' with a list of them")
    out = []
    for n, item in enumerate(items):
        name = item.get("id", f"#{n + 1}")
        try:
            out.append(TagDefinition.model_validate({**item, "source_file": str(path)}))
        except ValidationError as exc:
            problems = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors())
            raise CatalogError(f"{path}: tag {name}: {problems}") from None
    return out


def _referenced_tags(tag: TagDefinition, known: set[str]) -> set[str]:
    text = " ".join(filter(None, [tag.expr, *[str(v) for v in tag.params.values()]]))
    return {w for w in _WORD.findall(text) if w in known} - {tag.id}


def plan_catalog(definitions: list[TagDefinition]) -> Catalog:
    """Check the catalog as a whole and order it by dependencies.

    Raises:
        CatalogError: duplicate ids, unknown or undeclared dependencies, a dependency on a higher layer,
            or a cycle (the cycle is named).
    """
    by_id: dict[str, TagDefinition] = {}
    for tag in definitions:
        if tag.id in by_id:
            raise CatalogError(
                f"{tag.source_file}: tag {tag.id} is already defined in {by_id[tag.id].source_file}; "
                "remove one of them"
            )
        by_id[tag.id] = tag
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    for tag in definitions:
        for dep in tag.dependencies:
            if dep not in by_id:
                raise CatalogError(f"{tag.source_file}: tag {tag.id} depends on unknown tag {dep!r}")
            if rank[by_id[dep].layer] > rank[tag.layer]:
                raise CatalogError(
                    f"{tag.source_file}: tag {tag.id} ({tag.layer}) depends on {dep} "
                    f"({by_id[dep].layer}); layers depend only downward (raw < fact < model < predictive)"
                )
        missing = sorted(_referenced_tags(tag, set(by_id)) - set(tag.dependencies))
        if missing:
            raise CatalogError(
                f"{tag.source_file}: tag {tag.id} uses {', '.join(missing)} without declaring it; "
                f"add it to depends_on"
            )
        if tag.function:
            _check_function(tag, by_id)
    order: list[TagDefinition] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(tag_id: str, path: list[str]) -> None:
        if state.get(tag_id) == 2:
            return
        if state.get(tag_id) == 1:
            cycle = [*path[path.index(tag_id) :], tag_id]
            raise CatalogError(
                f"{by_id[tag_id].source_file}: dependency cycle {' -> '.join(cycle)}; break it"
            )
        state[tag_id] = 1
        for dep in by_id[tag_id].dependencies:
            visit(dep, [*path, tag_id])
        state[tag_id] = 2
        order.append(by_id[tag_id])

    # Layer by layer, then by id, so that the order is stable and readable.
    for tag in sorted(definitions, key=lambda t: (rank[t.layer], t.id)):
        visit(tag.id, [])
    return Catalog(tuple(order))


def _check_function(tag: TagDefinition, by_id: dict[str, TagDefinition]) -> None:
    need = {"rfm_score": {"of", "order"}, "rfm_segment": {"recency", "frequency", "monetary"}}[tag.function]
    allowed = need | {"rfm_score": {"bins", "scope"}, "rfm_segment": {"split", "scope"}}[tag.function]
    params = set(tag.params)
    if not need <= params or not params <= allowed:
        raise CatalogError(
            f"{tag.source_file}: tag {tag.id}: {tag.function} needs params {sorted(need)} "
            f"(optional {sorted(allowed - need)}); got {sorted(params)}"
        )
    for key in need - {"order"}:
        ref = tag.params[key]
        if ref not in tag.depends_on:
            raise CatalogError(f"{tag.source_file}: tag {tag.id}: params.{key}={ref!r} is not in depends_on")
    if tag.function == "rfm_score" and tag.params["order"] not in ("asc", "desc"):
        raise CatalogError(f"{tag.source_file}: tag {tag.id}: params.order must be asc or desc")
    if tag.function == "rfm_segment" and tag.params.get("split", "mean") not in ("mean", "median"):
        raise CatalogError(f"{tag.source_file}: tag {tag.id}: params.split must be mean or median")


def load_catalog(extra: Iterable[str | Path] | None = None) -> Catalog:
    """Every tag definition from the catalog folders, validated and ordered.

    Args:
        extra: more folders of definitions; ``Settings.tag_paths`` (``CDP_TAG_PATH``) when omitted.

    Raises:
        CatalogError: a file or the catalog as a whole is invalid.
    """
    definitions: list[TagDefinition] = []
    for folder in catalog_dirs(extra):
        if not folder.is_dir():
            raise CatalogError(f"{folder}: tag definition folder does not exist (check CDP_TAG_PATH)")
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            definitions += load_definitions(path)
    return plan_catalog(definitions)
