"""Erasure in packs already written (人群包): the lines one person has in every destination's form, and packs
rewritten without them.

    the person's identifiers (id_type, id_value) + platform hashes and masks (the export's
    ``with_platform_hashes``, from the vault, before the erasure deletes the vault rows)
      -> their line in every destination and ID type            (build_person_lines)
      -> every pack under the packs root: zips rewritten without those lines, the manifest's counts and
         checksums updated, the erasure noted in the manifest    (erase_from_pack)

A pack is rewritten rather than deleted: the other people of the audience stay deliverable, and the lines of
the erased person, which are all the pack holds about them, are gone. Copies already uploaded to an ad
platform are outside the lake; the erasure report lists the packs that held the person, so that the operator
can replace those uploads. Future packs leave the person out because the audience members, the OneID map
and the vault no longer hold them.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from audiences.export import DESTINATIONS, Destination, build_pack_lines, get_destination
from audiences.packs import MANIFEST, write_private
from audiences.sources import HASH_COLUMNS

Transform = Callable[[DataFrame], DataFrame]


def build_person_lines(
    with_hashes: Transform | None, destinations: Iterable[Destination] = DESTINATIONS.values()
) -> Transform:
    """A transform of one person's identifiers (``id_type``, ``id_value`` as in ``gold.oneid_map``) to every
    line they can have in a pack: ``(destination, id_type, line)``, distinct.

    Args:
        with_hashes: adds the platform hashes and the mask (``AudienceContext.with_platform_hashes``); None
            when there is no vault (phone and email lines cannot be formed, so no pack holds them).
        destinations: the destinations whose forms are computed (all by default).
    """

    def transform(ids: DataFrame) -> DataFrame:
        base = ids.select(F.lit("0").alias("oneid"), "id_type", "id_value").distinct()
        if with_hashes is None:
            full = base.select("*", *[F.lit(None).cast("string").alias(c) for c in HASH_COLUMNS])
        else:
            full = base.transform(with_hashes).select("oneid", "id_type", "id_value", *HASH_COLUMNS)
        parts = []
        for dest in destinations:
            lines = full.transform(build_pack_lines(dest, list(dest.id_types)))
            parts.append(
                lines.where(F.col("line").isNotNull()).select(
                    F.lit(dest.name).alias("destination"), "id_type", "line"
                )
            )
        out = parts[0]
        for p in parts[1:]:
            out = out.unionByName(p)
        # Concatenated (not cast) so that the engine hands back plain strings, never Arrow string views.
        return out.distinct().select(
            *[F.concat(F.col(c), F.lit("")).alias(c) for c in ("destination", "id_type", "line")]
        )

    return transform


@dataclass
class PackErasure:
    """What erasing one person did to one pack.

    Attributes:
        folder: the pack folder.
        lines_removed: lines taken out, over all its files.
        files: the zips rewritten.
    """

    folder: Path
    lines_removed: int = 0
    files: list[str] = field(default_factory=list)


def _rewrite_zip(zip_path: Path, name: str, header: str | None, drop: set[str]) -> tuple[int, dict] | None:
    """Rewrite one zipped ID file without the lines in ``drop``; None when it holds none of them."""
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.getinfo(name)
        rows = zf.read(name).decode("utf-8").splitlines()
    head, body = (rows[:1], rows[1:]) if header is not None and rows[:1] == [header] else ([], rows)
    kept = [line for line in body if line not in drop]
    if len(kept) == len(body):
        return None
    data = "".join(f"{line}\n" for line in head + kept).encode("utf-8")
    entry = zipfile.ZipInfo(name, date_time=info.date_time)
    entry.compress_type = zipfile.ZIP_DEFLATED
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(entry, data)
    blob = buffer.getvalue()
    tmp = zip_path.with_name(zip_path.name + ".erasing")
    write_private(tmp, blob)
    tmp.replace(zip_path)
    stats = {
        "lines": len(kept),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "zip_bytes": len(blob),
        "zip_sha256": hashlib.sha256(blob).hexdigest(),
    }
    return len(body) - len(kept), stats


def erase_from_pack(
    folder: str | Path, lines: Iterable[str], request_id: str, *, dry_run: bool = False
) -> PackErasure:
    """Rewrite the pack in ``folder`` without ``lines`` (one person's lines, :func:`build_person_lines`).

    Each zip holding any of the lines is rewritten (same entry name and time stamp, owner-only), its
    manifest entry gets the new counts and checksums, the pack's ``lines`` and ``people`` drop, and the
    manifest lists the erasure (request id, time, lines removed). Packs without the lines are left alone.

    Args:
        folder: the pack folder (``manifest.json`` and the zips).
        lines: the lines to take out.
        request_id: the erasure request, noted in the manifest.
        dry_run: only count.

    Returns:
        What was (or would be) removed.
    """
    folder = Path(folder)
    drop = set(lines)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    result = PackErasure(folder)
    try:
        dest = get_destination(manifest.get("destination", ""))
    except ValueError:
        dest = None
    removed_types = set()
    for entry in manifest.get("files", []):
        spec = dest.lines.get(entry.get("id_type")) if dest else None
        header = spec.header if spec else None
        zip_path = folder / entry["zip"]
        if dry_run:
            with zipfile.ZipFile(zip_path) as zf:
                n = sum(1 for line in zf.read(entry["name"]).decode("utf-8").splitlines() if line in drop)
            if n:
                result.lines_removed += n
                result.files.append(entry["zip"])
            continue
        done = _rewrite_zip(zip_path, entry["name"], header, drop)
        if done is None:
            continue
        n, stats = done
        entry.update(stats)
        result.lines_removed += n
        result.files.append(entry["zip"])
        removed_types.add(entry.get("id_type"))
        counts = manifest.get("id_types", {}).get(entry.get("id_type"))
        if isinstance(counts, dict) and "lines" in counts:
            counts["lines"] = max(0, int(counts["lines"]) - n)
    if result.lines_removed and not dry_run:
        manifest["lines"] = max(0, int(manifest.get("lines", 0)) - result.lines_removed)
        manifest["people"] = max(0, int(manifest.get("people", 0)) - 1)
        for id_type in removed_types:
            counts = manifest.get("id_types", {}).get(id_type)
            if isinstance(counts, dict) and "people" in counts:
                counts["people"] = max(0, int(counts["people"]) - 1)
        manifest.setdefault("erasures", []).append(
            {
                "request_id": request_id,
                "at": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
                "lines_removed": result.lines_removed,
            }
        )
        manifest.pop("pack_id", None)
        text = json.dumps(manifest, ensure_ascii=False, indent=2, default=str) + "\n"
        write_private(folder / MANIFEST, text.encode("utf-8"))
    return result
