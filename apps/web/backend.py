"""What the web routes do, in terms of the pipeline's own packages: the tag catalog (``tags``), audiences
(``jobs.audiences`` and ``audiences``), packs (``audiences.export`` destinations, pack folders written by
``jobs.audiences``) and the audit log. Nothing here reimplements a rule, an estimate, an insight or an export;
it calls them, checks access rules that only the web service has (hashed packs for marketers) and shapes the
answers as JSON.

Every function takes the application's :class:`apps.web.state.WebState` first; this module never imports the
app or the routes. Its errors (``WebError``, ``NotFound``, ``Forbidden``) live in :mod:`apps.web.errors`.
"""

from __future__ import annotations

import json
import math
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apps.web.errors import Forbidden, NotFound, WebError

if TYPE_CHECKING:
    from apps.web.auth import Principal
    from apps.web.state import WebState


# ---- tags ------------------------------------------------------------------------------------------------


def _catalog(web: WebState):
    """The tag catalog (``tags.catalog.load_catalog``), loaded again only when a definition file changes:
    parsing and validating every YAML file takes ~0.2 s, too slow for search-as-you-type."""
    from tags.catalog import catalog_dirs, load_catalog

    folders = catalog_dirs(web.settings.tag_paths)
    files = sorted(p for d in folders if d.is_dir() for p in [*d.glob("*.yaml"), *d.glob("*.yml")])
    signature = tuple((str(p), p.stat().st_mtime_ns) for p in files)
    return web.cached("tag_catalog", signature, lambda: load_catalog(web.settings.tag_paths))


def _latest_stats(web: WebState) -> dict[str, dict[str, Any]]:
    """The latest ``gold.tag_stats`` row of every tag (delta-rs read, cached per table version)."""
    from deltalake import DeltaTable

    from cdp.leases import PartialTableError, readable_version

    path = f"{web.settings.lake_root}/gold/tag_stats"
    if not DeltaTable.is_deltatable(path):
        return {}
    try:  # the last complete version when a tags run died half-way (cdp.leases)
        table = DeltaTable(path, version=readable_version(web.settings.lake_root, "gold.tag_stats"))
    except PartialTableError:
        return {}

    def load() -> dict[str, dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for row in table.to_pyarrow_table().to_pylist():
            have = latest.get(row["tag_id"])
            if have is None or row["dt"] > have["dt"]:
                latest[row["tag_id"]] = row
        return latest

    return web.cached("tag_stats", f"{path}@{table.version()}", load)


def _distribution(stats: dict[str, Any] | None, k: int) -> list[dict[str, Any]]:
    """Top values with counts (each below the minimum group size ``k`` shown as ``"< k"``, and withheld
    when the rest of the tag's people would give one away), or the numeric summary as labelled bars (none
    when fewer than ``k`` people hold a value: quantiles of a few people are their values)."""
    from audiences.insight import public_count, public_counts

    if not stats or not stats.get("distribution"):
        return []
    try:
        dist = json.loads(stats["distribution"])
    except (TypeError, ValueError):
        return []
    if (
        isinstance(dist, dict)
        and set(dist) >= {"min", "max"}
        and all(v is None or isinstance(v, (int, float)) for v in dist.values())
    ):
        if not isinstance(public_count(stats.get("non_null"), k), int):
            return []
        order = ("min", "p25", "p50", "p75", "mean", "max")
        return [{"value": q, "count": dist[q]} for q in order if dist.get(q) is not None]
    if isinstance(dist, dict):
        items = sorted(dist.items(), key=lambda kv: -(kv[1] or 0))
        shown = public_counts([int(v or 0) for _, v in items], stats.get("non_null"), k)
        return [{"value": value, "count": n} for (value, _), n in zip(items, shown, strict=True)]
    return []


def _people(stats: dict[str, Any], k: int) -> tuple[int | str | None, float | None]:
    """The people holding a value of a tag and the coverage, as they may be shown: ``"< k"`` and no
    coverage below ``k``, both withheld when fewer than ``k`` people (but some) hold no value."""
    from audiences.insight import public_count

    people = public_count(stats.get("non_null"), k)
    missing = int(stats.get("population") or 0) - int(stats.get("non_null") or 0)
    if not isinstance(people, int):
        return people, None
    if 0 < missing < k:
        return None, None
    return people, stats.get("coverage")


def _tag_summary(tag, stats: dict[str, Any] | None, k: int) -> dict[str, Any]:
    from tags.catalog import LAYER_NAMES_ZH

    return {
        "id": tag.id,
        "name_zh": tag.name_zh,
        "name_en": tag.name_en,
        "layer": tag.layer,
        "layer_zh": LAYER_NAMES_ZH.get(tag.layer, ""),
        "type": tag.type,
        "description": tag.description,
        "owner": tag.owner,
        "refresh": tag.refresh,
        "coverage": _people(stats, k)[1] if stats else None,
        "dt": stats.get("dt") if stats else None,
    }


def list_tags(web: WebState, *, q: str | None = None, layer: str | None = None) -> dict[str, Any]:
    """Tags matching ``q`` (id, English or Chinese name, description) and ``layer``, with their coverage.

    Raises:
        WebError: the layer is unknown.
    """
    from tags.catalog import LAYER_NAMES_ZH, LAYERS

    if layer and layer not in LAYERS:
        raise WebError(f"unknown layer {layer!r}; use one of {', '.join(LAYERS)}")
    catalog = _catalog(web)
    stats = _latest_stats(web)
    needle = (q or "").strip().lower()
    out = []
    for tag in catalog.tags:
        if layer and tag.layer != layer:
            continue
        text = " ".join((tag.id, tag.name_en, tag.name_zh, tag.description)).lower()
        if needle and needle not in text:
            continue
        out.append(_tag_summary(tag, stats.get(tag.id), web.settings.min_group_size))
    layers = [
        {"layer": name, "name_zh": LAYER_NAMES_ZH[name], "tags": len(catalog.layer(name))} for name in LAYERS
    ]
    return {"tags": out, "total": len(catalog), "layers": layers}


def get_tag(web: WebState, tag_id: str) -> dict[str, Any]:
    """One tag's definition and its latest statistics; counts below ``settings.min_group_size`` are
    ``"< k"`` (``audiences.insight.public_count``).

    Raises:
        NotFound: no such tag in the catalog.
    """
    catalog = _catalog(web)
    if tag_id not in catalog:
        raise NotFound(f"no tag {tag_id!r} in the catalog")
    tag = catalog[tag_id]
    row = _latest_stats(web).get(tag_id)
    k = web.settings.min_group_size
    summary = _tag_summary(tag, row, k)
    summary.update(definition=tag.definition, kind=tag.kind, depends_on=tag.dependencies, sources=tag.sources)
    stats: dict[str, Any] = {"coverage": None, "distribution": []}
    if row:
        people, coverage = _people(row, k)
        stats = {
            "dt": row["dt"],
            "coverage": coverage,
            "people": people,
            "population": row["population"],
            "distinct_values": row.get("distinct_values"),
            "coverage_change": row.get("coverage_change"),
            "changed_share": row.get("changed_share"),
            "metric": row.get("metric"),
            "metric_value": row.get("metric_value"),
            "distribution": _distribution(row, k),
        }
    return {"tag": summary, "stats": stats}


# ---- audiences (jobs.audiences does the work) -------------------------------------------------------------


def _rule_document(rule: Any) -> Any:
    """The rule as sent by the client; parsing and validation are ``audiences.rules``' job."""
    if isinstance(rule, dict) and not rule:
        raise WebError("the rule is empty: add at least one condition")
    return rule


def estimate(web: WebState, rule: Any, *, dt: str | None = None) -> dict[str, Any]:
    """The consented size of a rule's audience (``jobs.audiences.estimate``): ``"< k"`` below the minimum
    group size, and then no share."""
    from jobs import audiences as job

    started = time.perf_counter()
    est = job.estimate(web.spark, web.settings, _rule_document(rule), dt)
    return {
        "size": est.size,
        "population": est.population,
        "opted_out": est.opted_out,
        "share": est.share,
        "dt": est.dt,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _without_paths(definition: dict[str, Any]) -> dict[str, Any]:
    """A stored definition without the seed list's file: older versions recorded where it was kept."""
    seed = definition.get("seed")
    if not isinstance(seed, dict):
        return definition
    return {**definition, "seed": {"id_type": seed.get("id_type")}}


def _public_details(details: dict[str, Any], k: int) -> dict[str, Any]:
    """Kind-specific facts of a version with its seed-list counts in public form and no path."""
    from audiences.insight import public_count

    out = dict(details or {})
    seed_list = out.get("seed_list")
    if isinstance(seed_list, dict):
        out["seed_list"] = {
            key: public_count(n, k) if key in ("matched", "unmatched", "invalid") else n
            for key, n in seed_list.items()
            if key not in ("path", "name")
        }
    return out


def _version_dict(v, k: int) -> dict[str, Any]:
    """A version as any role may see it: counts below the minimum group size ``k`` as ``"< k"``, no path."""
    from audiences.insight import public_count, public_coverage

    definition = _without_paths(v.definition)
    return {
        "audience_id": v.audience_id,
        "version": v.version,
        "name": v.name,
        "kind": v.kind,
        "description": v.description,
        "dt": v.dt,
        "size": public_count(v.size, k),
        "opted_out": public_count(v.opted_out, k),
        "id_type_counts": public_coverage(v.id_type_counts, v.size, k),
        "created_at": v.created_at,
        "created_by": v.created_by,
        "definition": json.dumps(definition.get("rule") or definition, ensure_ascii=False),
        "details": _public_details(v.details, k),
    }


def list_audiences(web: WebState) -> dict[str, Any]:
    from jobs import audiences as job

    k = web.settings.min_group_size
    out = [_version_dict(v, k) for v in job.list_audiences(web.spark, web.settings)]
    for item in out:
        item.pop("details", None)
    out.sort(key=lambda a: a["created_at"], reverse=True)
    return {"audiences": out}


def get_audience(web: WebState, audience_id: str) -> dict[str, Any]:
    """The latest version, every version, and the size of each version over time."""
    from audiences.insight import public_count
    from jobs import audiences as job

    latest = job.show(web.spark, web.settings, audience_id)
    versions = [
        v
        for v in job.list_audiences(web.spark, web.settings, all_versions=True)
        if v.audience_id == latest.audience_id
    ]
    versions.sort(key=lambda v: v.version)
    k = web.settings.min_group_size
    return {
        "audience": _version_dict(latest, k),
        "versions": [_version_dict(v, k) for v in reversed(versions)],
        "sizes": [
            {
                "version": v.version,
                "dt": v.dt,
                "label": f"v{v.version} {v.dt}",
                "size": public_count(v.size, k),
            }
            for v in versions
        ],
    }


def create_audience(
    web: WebState,
    *,
    name: str,
    rule: Any,
    description: str,
    audience_id: str | None,
    dt: str | None,
    principal: Principal,
    new_version: bool = False,
) -> dict[str, Any]:
    """Save a rule as an audience: a new audience, or a new version of ``audience_id`` or of the audience
    named ``name`` when ``new_version`` is asked for.

    Raises:
        AudienceExistsError: ``name`` exists and no new version was asked for (409).
        UnknownAudienceError: ``audience_id`` is unknown, or a new version of an unknown name was asked for.
    """
    from jobs import audiences as job

    if audience_id:
        name, new_version = job.show(web.spark, web.settings, audience_id).name, True
    v = job.create(
        web.spark,
        web.settings,
        {"name": name, "description": description, "rule": _rule_document(rule)},
        dt=dt,
        created_by=principal.name,
        new_version=new_version,
    )
    return _version_dict(v, web.settings.min_group_size)


def seed_audience(
    web: WebState, *, name: str, id_type: str, text: str, principal: Principal
) -> dict[str, Any]:
    """An audience from an uploaded identifier list; garbage lines are counted as invalid, not fatal.

    The list is matched in memory and never written to disk; the answer counts matches only from the minimum
    group size up, and a list matching fewer people is refused with the same message whether it matched
    some or none (it never tells whether one identifier is known).

    Raises:
        SeedListError: unknown ID type, no identifier in the text, or fewer than ``min_group_size`` matched.
    """
    from audiences.errors import SeedListError
    from audiences.seeds import validate_seed_id_type
    from jobs import audiences as job
    from jobs.audiences.definitions import seed_values

    validate_seed_id_type(id_type)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise SeedListError("the seed list is empty: paste one identifier per line")
    v = job.create(
        web.spark,
        web.settings,
        {"name": name, "seed": {"path": "web upload", "id_type": id_type}},
        created_by=principal.name,
        seed_values=seed_values(lines),
    )
    out = _version_dict(v, web.settings.min_group_size)
    out["match"] = {"lines": len(lines), **out["details"].get("seed_list", {})}
    return out


def insight(web: WebState, audience_id: str, *, version: int | None = None) -> dict[str, Any]:
    """TGI rows (defining traits first) and ID-type coverage (``jobs.audiences.insight``); counts below the
    minimum group size are ``"< k"`` (or null when withheld) with no share or TGI."""
    from audiences.insight import public_share
    from jobs import audiences as job

    ins = job.insight(web.spark, web.settings, audience_id, version, top=60)
    return {
        "audience_id": ins.audience_id,
        "version": ins.version,
        "dt": ins.dt,
        "size": ins.size,
        "population": ins.population,
        "tgi": [
            {
                "tag": r.tag,
                "value": r.value,
                "tgi": r.tgi,
                "share": r.audience_share,
                "base_share": r.population_share,
                "audience_count": r.audience_count,
                "population_count": r.population_count,
            }
            for r in ins.rows
        ],
        "id_types": [
            {"id_type": t, "people": n, "share": public_share(n, ins.size)}
            for t, n in sorted(ins.coverage.items(), key=lambda kv: -kv[1] if isinstance(kv[1], int) else 1)
        ],
        "seconds": ins.seconds,
    }


def overlap(web: WebState, audience_id: str, other: str) -> dict[str, Any]:
    """Sizes, intersection and union of two audiences; groups below the minimum group size are ``"< k"``,
    and a count that would give one away is null."""
    from jobs import audiences as job

    o = job.overlap(web.spark, web.settings, audience_id, other)
    return {
        "a": o.a,
        "b": o.b,
        "size_a": o.a_size,
        "size_b": o.b_size,
        "both": o.both,
        "either": o.either,
        "jaccard": o.jaccard,
        "share_of_a": o.share_of_a,
        "share_of_b": o.share_of_b,
    }


def check_lookalike(web: WebState, audience_id: str, size: int, *, version: int | None = None) -> None:
    """Refuse at once (before a task is queued) an unknown seed audience, one below the minimum seed size, or
    a size the lookalike could not fill (``jobs.audiences.lookalikes.check_size``); the job checks again.

    Raises:
        UnknownAudienceError: no such audience or version.
        SeedTooSmallError: the seed version holds fewer people than ``settings.min_seed_size``.
        AudienceError: the size is below 1, above the maximum, or above the consented people left.
    """
    from audiences.errors import SeedTooSmallError
    from jobs import audiences as job
    from jobs.audiences.lookalikes import check_size

    seed = job.show(web.spark, web.settings, audience_id, version)
    minimum = web.settings.min_seed_size
    if seed.size < minimum:
        raise SeedTooSmallError(
            f"seed {seed.audience_id}@{seed.version} has fewer than {minimum:,} people, the least a "
            "lookalike needs. Widen the seed audience."
        )
    check_size(web.spark, web.settings, f"{seed.audience_id}@{seed.version}", size)


def lookalike(
    web: WebState,
    audience_id: str,
    *,
    size: int,
    version: int | None,
    name: str | None,
    principal: Principal,
    progress=None,
) -> dict[str, Any]:
    """Run ``jobs.audiences.lookalike`` (in a background task) and return the new audience and evaluation.

    ``jobs.audiences.lookalike`` reports no intermediate steps, so progress is elapsed time against a rough
    expectation, never reaching 100 % before the job returns.
    """
    from jobs import audiences as job

    seed = f"{audience_id}@{version}" if version else audience_id
    done = threading.Event()

    def heartbeat() -> None:
        started = time.perf_counter()
        while not done.wait(0.5):
            elapsed = time.perf_counter() - started
            if progress:
                progress(0.95 * (1 - math.exp(-elapsed / 20)), f"training and scoring ({elapsed:.0f} s)")

    ticker = threading.Thread(target=heartbeat, daemon=True)
    ticker.start()
    try:
        result = job.lookalike(web.spark, web.settings, seed, size=size, name=name, created_by=principal.name)
    finally:
        done.set()
    out = _version_dict(result.audience, web.settings.min_group_size)
    out["seed_size"] = result.seed_size
    out["train_seconds"] = result.train_seconds
    out["score_seconds"] = result.score_seconds
    out["evaluation"] = _evaluation_summary(result.evaluation)
    return out


def _evaluation_summary(evaluation) -> dict[str, Any] | None:
    """The headline figures of a lookalike evaluation (the whole report stays in the version's details)."""
    if evaluation is None:
        return None
    full = evaluation.as_dict()
    out: dict[str, Any] = {
        "seed_size": full["seed_size"],
        "hidden_share": full["hidden_share"],
        "splits": full["splits"],
        "features": full["features"],
    }
    # Hide-and-recover figures per scorer: the trained model against the centroid and logistic baselines.
    out["scorers"] = {
        scorer: {"auc": m["auc"], "lift": m["lift"], "recall": m["recall"], "precision": m["precision"]}
        for scorer in ("model", "centroid", "logistic", "lightgbm")
        if (m := full.get(scorer))
    }
    return out


# ---- destinations and the hashed-only rule --------------------------------------------------------------


def allowed_id_types(destination, principal: Principal) -> list[str]:
    """ID types of ``destination`` that ``principal`` may export (admins: all; others: those whose lines the
    destination states are hashed, ``audiences.export.Line.hashed``)."""
    return [t for t, line in destination.lines.items() if principal.role == "admin" or line.hashed]


def destinations(web: WebState, principal: Principal) -> dict[str, Any]:
    from audiences.export import DESTINATIONS

    out = []
    for d in DESTINATIONS.values():
        allowed = set(allowed_id_types(d, principal))
        out.append(
            {
                "name": d.name,
                "label": d.label,
                "note": d.note,
                "extension": d.extension,
                "id_types": [
                    {
                        "id_type": t,
                        "platform_type": line.platform_type,
                        "hashed": line.hashed,
                        "allowed": t in allowed,
                    }
                    for t, line in d.lines.items()
                ],
            }
        )
    return {"destinations": out}


# ---- packs -----------------------------------------------------------------------------------------------


def _packs(web: WebState):
    """The pack store the audiences job writes to (``audiences.packs.PackStore``)."""
    from audiences.packs import PackStore

    return PackStore(web.settings.packs_root)


def _pack_folder(web: WebState, pack_id: str) -> Path:
    """The folder of ``pack_id`` (``<audience_id>/v<version>/<destination>``), never outside the packs root.

    Raises:
        NotFound: no pack with that id.
    """
    from audiences.errors import UnknownPackError

    try:
        return _packs(web).find(pack_id)
    except UnknownPackError as exc:
        raise NotFound(str(exc)) from None


def _client_manifest(data: dict[str, Any]) -> dict[str, Any]:
    data.pop("path", None)  # a server path is no business of the client
    return data


def list_packs(web: WebState, *, audience_id: str | None = None) -> dict[str, Any]:
    out = []
    for data in _packs(web).manifests(audience_id):
        data = _client_manifest(data)
        data.pop("definition", None)
        data["files"] = len(data.get("files") or [])
        out.append(data)
    return {"packs": out}


def pack_manifest(web: WebState, pack_id: str) -> dict[str, Any]:
    return _client_manifest(_packs(web).read_manifest(_pack_folder(web, pack_id)))


def _check_pack_access(manifest: dict[str, Any], principal: Principal) -> None:
    """Marketers may only take packs whose every ID file holds hashes (and never one marked admin-only)."""
    if principal.role == "admin":
        return
    if manifest.get("admin_only"):
        raise Forbidden(
            f"this pack holds unhashed identifiers ({', '.join(manifest.get('raw_id_types') or [])}); "
            "only an admin may download it"
        )
    from audiences.export import get_destination

    destination = get_destination(manifest["destination"])
    allowed = set(allowed_id_types(destination, principal))
    raw = sorted({f["id_type"] for f in manifest.get("files", [])} - allowed)
    if raw:
        raise Forbidden(
            f"this pack holds unhashed identifiers ({', '.join(raw)}); only an admin may download it"
        )


def pack_zip(web: WebState, pack_id: str, *, principal: Principal, client: str | None) -> Path:
    """One zip of the pack (its ID zips and ``manifest.json``) in a temporary file, after an audit row.

    Raises:
        NotFound: no such pack.
        Forbidden: the pack holds unhashed identifiers and the caller is not an admin (audited as refused).
    """
    folder = _pack_folder(web, pack_id)
    manifest = _client_manifest(_packs(web).read_manifest(folder))
    audit = {
        "audience_id": manifest.get("audience_id"),
        "audience_version": manifest.get("version"),
        "pack_id": manifest["pack_id"],
        "destination": manifest.get("destination"),
        "id_types": sorted(manifest.get("id_types") or {}),
        "client": client,
    }
    try:
        _check_pack_access(manifest, principal)
    except Forbidden as exc:
        web.audit.record(principal, "pack_download", status="refused", detail={"reason": str(exc)}, **audit)
        raise
    name = f"{manifest.get('audience_id')}_v{manifest.get('version')}_{manifest.get('destination')}.zip"
    tmp = Path(tempfile.mkdtemp(prefix="cdp-pack-")) / name
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:  # the ID files are zipped already
        for path in _packs(web).files(folder):
            zf.write(path, path.name)
    web.audit.record(
        principal,
        "pack_download",
        rows=manifest.get("lines"),
        bytes_sent=tmp.stat().st_size,
        detail={"people": manifest.get("people"), "files": len(manifest.get("files") or [])},
        **audit,
    )
    return tmp


def export_pack(
    web: WebState,
    audience_id: str,
    *,
    destination: str,
    id_types: list[str],
    version: int | None,
    principal: Principal,
    client: str | None,
) -> dict[str, Any]:
    """Write a pack with ``jobs.audiences.export`` after the role check, and audit it (refusals too).

    Raises:
        Forbidden: a marketer asked for an ID type the destination takes unhashed.
        DestinationError, PackTooSmallError, UnknownAudienceError: from ``jobs.audiences.export``.
        cdp.leases.LeaseError: another export of the audience is running (answered 409).
    """
    from audiences.errors import AudienceError
    from audiences.export import get_destination
    from cdp.leases import LeaseError
    from jobs import audiences as job

    audit = {
        "audience_id": audience_id,
        "audience_version": version,
        "destination": destination,
        "id_types": id_types,
        "client": client,
    }
    try:
        dest = get_destination(destination)
        raw = [t for t in id_types if t in dest.lines and t not in allowed_id_types(dest, principal)]
        if raw:
            raise Forbidden(
                f"{dest.name} takes {', '.join(raw)} unhashed; a {principal.role} may export hashed ID types "
                f"only: {', '.join(allowed_id_types(dest, principal))}"
            )
        manifest = job.export(
            web.spark,
            web.settings,
            audience_id,
            destination,
            version=version,
            id_types=id_types,
            created_by=principal.name,
        )
    except (AudienceError, WebError, LeaseError) as exc:
        web.audit.record(principal, "pack_export", status="refused", detail={"reason": str(exc)}, **audit)
        raise
    store = _packs(web)
    pack_id = store.pack_id(manifest.path)
    web.audit.record(
        principal,
        "pack_export",
        rows=manifest.lines,
        pack_id=pack_id,
        detail={
            "people": manifest.people,
            "skipped": manifest.skipped,
            "opted_out_removed": manifest.opted_out_removed,
            "per_id_type": {t: c.get("lines") for t, c in manifest.id_types.items()},
        },
        **(audit | {"audience_id": manifest.audience_id, "audience_version": manifest.version}),
    )
    return _client_manifest(store.read_manifest(manifest.path))
