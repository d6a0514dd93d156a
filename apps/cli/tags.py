"""``cdp tags``: the tag catalog and tag builds (gold.tags, gold.profile, gold.tag_stats)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

tags_app = typer.Typer(
    help="Tag catalog and tag builds: list, show, validate, build gold.tags / gold.profile / gold.tag_stats.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True, soft_wrap=True)
DataRoot = Annotated[Path | None, typer.Option(help="Put lake, packs, landing and truth under this folder.")]


def _fail(message: object, code: int = 1) -> typer.Exit:
    err.print(Text(str(message), style="red"))
    return typer.Exit(code)


def _catalog():
    from tags import CatalogError, load_catalog

    try:
        return load_catalog()
    except CatalogError as exc:
        raise _fail(f"tag catalog: {exc}", 2) from None


def _settings(data_root: Path | None):
    from cdp.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise _fail(f"settings: {exc}", 2) from None
    return settings.with_data_root(data_root) if data_root else settings


def _latest_stats(settings, tag_ids: list[str] | None = None) -> dict[str, dict]:
    """The latest ``gold.tag_stats`` row per tag, read with delta-rs (no engine); empty without a lake."""
    from deltalake import DeltaTable

    path = f"{settings.lake_root}/gold/tag_stats"
    try:
        if not DeltaTable.is_deltatable(path):
            return {}
        rows = DeltaTable(path).to_pyarrow_table().to_pylist()
    except Exception:  # an unreadable or remote lake: the catalog is still worth showing
        return {}
    out: dict[str, dict] = {}
    for r in rows:
        if (tag_ids is None or r["tag_id"] in tag_ids) and (
            r["tag_id"] not in out or r["dt"] > out[r["tag_id"]]["dt"]
        ):
            out[r["tag_id"]] = r
    return out


@tags_app.command("list")
def list_tags(
    layer: Annotated[
        str | None, typer.Option(help="Only this layer: raw, fact, model or predictive.")
    ] = None,
    data_root: DataRoot = None,
) -> None:
    """Every tag: id, names, layer, type, owner, sources, refresh, coverage and last run."""
    from tags.catalog import LAYER_NAMES_ZH, VIEWS

    catalog = _catalog()
    stats = _latest_stats(_settings(data_root))
    table = Table(title=f"tag catalog: {len(catalog)} tags")
    for col in (
        "tag",
        "名称",
        "name",
        "layer",
        "type",
        "owner",
        "sources",
        "refresh",
        "coverage",
        "last run",
    ):
        table.add_column(col, justify="right" if col == "coverage" else "left")
    for t in catalog.tags:
        if layer and t.layer != layer:
            continue
        s = stats.get(t.id)
        table.add_row(
            t.id,
            t.name_zh,
            t.name_en,
            f"{t.layer} {LAYER_NAMES_ZH[t.layer]}",
            t.type,
            t.owner,
            ", ".join(VIEWS[v] for v in t.sources) or ", ".join(t.dependencies[:3]),
            t.refresh,
            f"{s['coverage']:.1%}" if s else "",
            s["dt"].isoformat() if s else "never",
        )
    console.print(table)


@tags_app.command()
def show(tag: str, data_root: DataRoot = None) -> None:
    """One tag: its definition, dependencies and latest statistics (and model metrics)."""
    from tags import CatalogError
    from tags.catalog import LAYER_NAMES_ZH, VIEWS

    catalog = _catalog()
    try:
        t = catalog[tag]
    except CatalogError as exc:
        raise _fail(exc) from None
    s = _latest_stats(_settings(data_root), [t.id]).get(t.id)
    lines = [
        f"{t.id}: {t.name_zh} / {t.name_en}",
        f"  layer:       {t.layer} ({LAYER_NAMES_ZH[t.layer]})",
        f"  type:        {t.type}",
        f"  owner:       {t.owner}",
        f"  refresh:     {t.refresh}",
        f"  sources:     {', '.join(VIEWS[v] for v in t.sources) or '-'}",
        f"  depends on:  {', '.join(t.dependencies) or '-'}",
        f"  defined in:  {t.source_file}",
        f"  description: {' '.join(t.description.split())}",
        f"  definition:  {t.definition}",
    ]
    if s:
        lines += [
            f"  last run:    {s['dt']} (built {s['built_at']:%Y-%m-%d %H:%M} UTC)",
            f"  coverage:    {s['coverage']:.1%} of {s['population']:,} OneIDs"
            + (f" (change {s['coverage_change']:+.1%})" if s["coverage_change"] is not None else ""),
            f"  distribution: {s['distribution']}",
        ]
        if s["changed_share"] is not None:
            lines.append(f"  changed since {s['previous_dt']}: {s['changed_share']:.1%} of OneIDs")
        if s["metric"]:
            detail = json.loads(s["detail"] or "{}")
            lines.append(
                f"  holdout {s['metric']}: {s['metric_value']:.4f} (baseline {s['baseline_value']:.4f}); "
                f"model {detail.get('model_id')}"
            )
    else:
        lines.append("  last run:    never (cdp tags build --dt YYYY-MM-DD)")
    for line in lines:
        console.print(Text(line))


@tags_app.command()
def validate() -> None:
    """Check every definition (fields, kinds, dependencies, layers, cycles) without starting an engine."""
    catalog = _catalog()
    counts = {layer: len(catalog.layer(layer)) for layer in ("raw", "fact", "model", "predictive")}
    console.print(
        Text(
            f"tag catalog OK: {len(catalog)} tags (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")"
        )
    )


@tags_app.command()
def build(
    dt: Annotated[str, typer.Option(help="Logical date (YYYY-MM-DD); its OneID map must exist.")],
    layer: Annotated[
        list[str] | None,
        typer.Option(help="Rebuild only this layer (repeatable): raw, fact, model, predictive."),
    ] = None,
    rebuild: Annotated[
        bool, typer.Option(help="Recompute a date a later date's profile already followed (a backfill).")
    ] = False,
    data_root: DataRoot = None,
) -> None:
    """Build gold.tags, gold.profile and gold.tag_stats (and the model registry) for one date."""
    from cdp.engine import get_spark
    from cdp.lake import LakeError
    from jobs import tags as job
    from tags import CatalogError

    settings = _settings(data_root)
    catalog = _catalog()
    try:
        report = job.run(get_spark(settings), settings, dt, layer or None, catalog=catalog, rebuild=rebuild)
    except (CatalogError, job.TagsError, LakeError) as exc:
        raise _fail(exc) from None
    for line in report.summary():
        console.print(Text(line))
