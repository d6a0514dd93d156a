"""``cdp tags``: the tag catalog (list, show, validate the definitions in ``tags/catalog`` and the folders
of ``CDP_TAG_PATH``, no engine) and tag builds for a date (``jobs.tags``: gold.tags, gold.profile,
gold.tag_stats)."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from apps.cli.common import DataRoot, console, date_option, fail, settings_for
from cdp.settings import Settings

app = typer.Typer(
    name="tags",
    help="Tag catalog and tag builds: list, show, validate, build gold.tags / gold.profile / gold.tag_stats.",
    no_args_is_help=True,
    add_completion=False,
)
LIST_COLUMNS = ("tag", "名称", "name", "layer", "type", "owner", "sources", "refresh", "coverage", "last run")


def _catalog(settings: Settings):
    """The validated tag catalog, or exit 2 naming the file and field at fault."""
    from tags import CatalogError, load_catalog

    try:
        return load_catalog(settings.tag_paths)
    except CatalogError as exc:
        raise fail(f"tag catalog: {exc}", 2) from None


def _latest_stats(settings: Settings, tag_ids: list[str] | None = None) -> dict[str, dict]:
    """The latest ``gold.tag_stats`` row per tag, read with delta-rs (no engine); empty without a lake."""
    from deltalake import DeltaTable

    from cdp.leases import readable_version

    path = f"{settings.lake_root}/gold/tag_stats"
    try:
        if not DeltaTable.is_deltatable(path):
            return {}
        version = readable_version(settings.lake_root, "gold.tag_stats")  # a dead run's commits: skipped
        rows = DeltaTable(path, version=version).to_pyarrow_table().to_pylist()
    except Exception:  # an unreadable or remote lake: the catalog is still worth showing
        return {}
    out: dict[str, dict] = {}
    for r in rows:
        if (tag_ids is None or r["tag_id"] in tag_ids) and (
            r["tag_id"] not in out or r["dt"] > out[r["tag_id"]]["dt"]
        ):
            out[r["tag_id"]] = r
    return out


@app.command("list")
def list_tags(
    layer: Annotated[
        str | None, typer.Option(help="Only this layer: raw, fact, model or predictive.")
    ] = None,
    data_root: DataRoot = None,
) -> None:
    """Every tag: id, names, layer, type, owner, sources, refresh, coverage and last run."""
    from tags.catalog import LAYER_NAMES_ZH, VIEWS

    settings = settings_for(data_root)
    catalog = _catalog(settings)
    stats = _latest_stats(settings)
    table = Table(title=f"tag catalog: {len(catalog)} tags")
    for col in LIST_COLUMNS:
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


@app.command()
def show(tag: str, data_root: DataRoot = None) -> None:
    """One tag: its definition, dependencies and latest statistics (and model metrics)."""
    from tags import CatalogError
    from tags.catalog import LAYER_NAMES_ZH, VIEWS

    settings = settings_for(data_root)
    catalog = _catalog(settings)
    try:
        t = catalog[tag]
    except CatalogError as exc:
        raise fail(exc) from None
    s = _latest_stats(settings, [t.id]).get(t.id)
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
    lines += _stats_lines(s) if s else ["  last run:    never (cdp tags build --dt YYYY-MM-DD)"]
    for line in lines:
        console.print(Text(line))


def _stats_lines(s: dict) -> list[str]:
    """A tag's latest statistics (and its model's holdout metric) as ``show`` prints them."""
    lines = [
        f"  last run:    {s['dt']} (built {s['built_at']:%Y-%m-%d %H:%M} UTC)",
        f"  coverage:    {s['coverage']:.1%} of {s['population']:,} OneIDs"
        + (f" (change {s['coverage_change']:+.1%})" if s["coverage_change"] is not None else ""),
        f"  distribution: {s['distribution']}",
    ]
    if s["changed_share"] is not None:
        lines.append(f"  changed since {s['previous_dt']}: {s['changed_share']:.1%} of OneIDs")
    if s["metric"]:
        detail = json.loads(s["detail"] or "{}")
        btyd = detail.get("metrics", {}).get("btyd_auc")
        lines.append(
            f"  holdout {s['metric']}: {s['metric_value']:.4f} (baseline {s['baseline_value']:.4f}"
            + (f"; BG/NBD {btyd:.4f}" if isinstance(btyd, float) and btyd == btyd else "")
            + f"); model {detail.get('model_id')}"
        )
    return lines


@app.command()
def validate() -> None:
    """Check every definition (fields, kinds, dependencies, layers, cycles) without starting an engine."""
    catalog = _catalog(settings_for())
    counts = {layer: len(catalog.layer(layer)) for layer in ("raw", "fact", "model", "predictive")}
    console.print(
        Text(
            f"tag catalog OK: {len(catalog)} tags (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")"
        )
    )


@app.command()
def build(
    dt: Annotated[_dt.date, date_option("Logical date (YYYY-MM-DD); its OneID map must exist.")],
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
    from quality.gates import QualityGateError
    from tags import CatalogError

    settings = settings_for(data_root)
    catalog = _catalog(settings)
    try:
        report = job.run(get_spark(settings), settings, dt, layer or None, catalog=catalog, rebuild=rebuild)
    except (CatalogError, job.TagsError, LakeError, QualityGateError) as exc:
        raise fail(exc) from None
    for line in report.summary():
        console.print(Text(line))
