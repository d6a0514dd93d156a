"""Writing a pack (人群包) to disk: ID files in the destination's format, split to its size limit, zipped,
and a
``manifest.json`` with the audience, version, rule, counts per ID type, skipped identifiers by reason, lines,
checksums, creation time and author.

Layout: ``<packs root>/<audience_id>/v<version>/<destination>/`` holding one zip per ID file
(``<audience_id>_v<version>_<destination>_<platform type>_<part>.zip`` with the ``.txt``/``.csv`` inside) and
``manifest.json``. The lines arrive already consent-filtered, normalised and hashed
(:mod:`audiences.export`); this module only lays them out. Local pack roots only.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import shutil
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audiences.export import Destination


@dataclass
class PackFile:
    """One zipped ID file of a pack."""

    zip: str
    name: str
    id_type: str
    platform_type: str
    lines: int
    bytes: int
    sha256: str
    zip_bytes: int
    zip_sha256: str


@dataclass
class Manifest:
    """What a pack holds; written as ``manifest.json`` next to the zips."""

    audience_id: str
    audience_name: str
    version: int
    dt: str
    destination: str
    destination_label: str
    definition: Any
    id_types: dict[str, dict[str, Any]]
    people: int
    lines: int
    skipped: int
    opted_out_removed: int
    min_pack_size: int
    files: list[PackFile] = field(default_factory=list)
    created_at: str = ""
    created_by: str = ""
    path: str = ""
    format_note: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, default=str)


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()


def split_lines(lines: list[str], max_bytes: int, header: str | None = None) -> list[list[str]]:
    """Split sorted lines into files of at most ``max_bytes`` (UTF-8, a newline after each line, the header
    repeated at the top of every file)."""
    head = len(header.encode()) + 1 if header else 0
    parts: list[list[str]] = []
    current: list[str] = []
    size = head
    for line in lines:
        n = len(line.encode()) + 1
        if current and size + n > max_bytes:
            parts.append(current)
            current, size = [], head
        current.append(line)
        size += n
    if current or not parts:
        parts.append(current)
    return parts


def _text(lines: list[str], header: str | None) -> bytes:
    body = "".join(f"{line}\n" for line in ([header] if header else []) + lines)
    return body.encode("utf-8")


def write_pack(
    folder: str | Path,
    destination: Destination,
    lines_by_type: Mapping[tuple[str, str], Iterable[str]],
    manifest: Manifest,
    *,
    max_file_bytes: int | None = None,
    when: _dt.datetime | None = None,
) -> Manifest:
    """Write the zips and the manifest of one pack into ``folder`` (emptied first: a rerun replaces it).

    Args:
        folder: ``<packs root>/<audience_id>/v<version>/<destination>``.
        destination: the destination (file extension, headers, size limit).
        lines_by_type: (id_type, platform_type) -> the distinct lines of that ID type.
        manifest: the manifest to complete with the files and write.
        max_file_bytes: overrides the destination's file size limit (tests, stricter platforms).
        when: the time stamped into zip entries (the manifest's creation time by default).

    Returns:
        The manifest, with its files and path filled in.
    """
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    limit = max_file_bytes or destination.max_file_bytes
    stamp = (when or _dt.datetime.now(_dt.UTC)).timetuple()[:6]
    files = []
    for (id_type, platform_type), lines in sorted(lines_by_type.items()):
        spec = destination.lines[id_type]
        ordered = sorted(set(lines))
        if not ordered:
            continue
        for i, part in enumerate(split_lines(ordered, limit, spec.header), start=1):
            prefix = f"{manifest.audience_id}_v{manifest.version}_{destination.name}"
            stem = f"{prefix}_{_slug(platform_type)}_{i:03d}"
            name = f"{stem}.{destination.extension}"
            data = _text(part, spec.header)
            zip_path = folder / f"{stem}.zip"
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zipfile.ZipFile(zip_path, "w") as zf:
                zf.writestr(info, data)
            blob = zip_path.read_bytes()
            files.append(
                PackFile(
                    zip=zip_path.name,
                    name=name,
                    id_type=id_type,
                    platform_type=platform_type,
                    lines=len(part),
                    bytes=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    zip_bytes=len(blob),
                    zip_sha256=hashlib.sha256(blob).hexdigest(),
                )
            )
    manifest.files = files
    manifest.path = str(folder)
    manifest.format_note = destination.note
    (folder / "manifest.json").write_text(manifest.to_json() + "\n", encoding="utf-8")
    return manifest


def read_pack_lines(folder: str | Path) -> dict[str, list[str]]:
    """The lines of every file of a pack, by file name inside the zips (for tests and checks)."""
    out = {}
    for zip_path in sorted(Path(folder).glob("*.zip")):
        with zipfile.ZipFile(zip_path) as zf:
            for name in zf.namelist():
                out[name] = zf.read(name).decode("utf-8").splitlines()
    return out
