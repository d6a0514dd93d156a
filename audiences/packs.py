"""The pack store (人群包 on disk): where a pack lives, writing one, listing packs, reading a manifest and a
pack's files. The audiences job writes packs and the web app lists and serves them, both through this module.

A pack holds ID files in the destination's format, split to its size limit, zipped, and a ``manifest.json``
with the audience, version, rule, counts per ID type, skipped identifiers by reason, lines, checksums,
creation time and author.

Layout: ``<packs root>/<audience_id>/v<version>/<destination>/`` holding one zip per ID file
(``<audience_id>_v<version>_<destination>_<platform type>_<part>.zip`` with the ``.txt``/``.csv`` inside) and
``manifest.json``; the pack id is the folder relative to the root. The lines arrive already
consent-filtered, normalised and hashed (:mod:`audiences.export`); this module only lays them out. Local
pack roots only.

Packs are written for their owner alone (folders 0700, files 0600): they hold identifiers of real people. A
pack with any unhashed ID type (a destination that takes device ids raw) says ``"admin_only": true`` in its
manifest, with the raw ID types, and only admins may take it out of the service.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import re
import shutil
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audiences.errors import UnknownPackError
from audiences.export import Destination

MANIFEST = "manifest.json"
FOLDER_MODE, FILE_MODE = 0o700, 0o600


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
    admin_only: bool = False
    raw_id_types: list[str] = field(default_factory=list)
    holdout: dict[str, Any] | None = None
    """For a pack exported for a campaign: ``campaign_id``, ``share`` and ``control_people`` kept out."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, default=str)


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()


def make_private_folder(folder: Path, levels: int = 1) -> None:
    """Create ``folder`` (and missing parents) and make it and its ``levels - 1`` parents owner-only."""
    folder.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    for path in [folder, *folder.parents][:levels]:
        path.chmod(FOLDER_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a file only its owner may read (created 0600: never readable by others, not even for
    the moment between writing and a chmod)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(FILE_MODE)  # an existing file keeps its old mode through O_CREAT


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
    make_private_folder(folder, levels=3)  # <audience_id>/v<version>/<destination>
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
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as zf:
                zf.writestr(info, data)
            blob = buffer.getvalue()
            write_private(zip_path, blob)
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
    manifest.raw_id_types = sorted({f.id_type for f in files if not destination.lines[f.id_type].hashed})
    manifest.admin_only = bool(manifest.raw_id_types)
    write_private(folder / MANIFEST, (manifest.to_json() + "\n").encode("utf-8"))
    return manifest


def read_pack_lines(folder: str | Path) -> dict[str, list[str]]:
    """The lines of every file of a pack, by file name inside the zips (for tests and checks)."""
    out = {}
    for zip_path in sorted(Path(folder).glob("*.zip")):
        with zipfile.ZipFile(zip_path) as zf:
            for name in zf.namelist():
                out[name] = zf.read(name).decode("utf-8").splitlines()
    return out


class PackStore:
    """The packs under one root, laid out ``<root>/<audience_id>/v<version>/<destination>/``.

    Args:
        root: the packs root (``settings.packs_root``), a local folder.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder(self, audience_id: str, version: int, destination: str) -> Path:
        """Where the pack of an audience version for a destination is written."""
        return self.root / audience_id / f"v{version}" / destination

    def pack_id(self, folder: str | Path) -> str:
        """The id of the pack in ``folder``: ``<audience_id>/v<version>/<destination>``."""
        return Path(folder).resolve().relative_to(self.root.resolve()).as_posix()

    def find(self, pack_id: str) -> Path:
        """The folder of an existing pack, never outside the root.

        Raises:
            UnknownPackError: a malformed id, or no pack with that id.
        """
        root = self.root.resolve()
        parts = [p for p in pack_id.strip("/").split("/") if p]
        if len(parts) != 3 or any(p in (".", "..") for p in parts) or not parts[1].startswith("v"):
            raise UnknownPackError(
                f"no pack {pack_id!r}: a pack id is <audience_id>/v<version>/<destination>"
            )
        folder = (root / Path(*parts)).resolve()
        if not folder.is_relative_to(root) or not (folder / MANIFEST).is_file():
            raise UnknownPackError(f"no pack {pack_id!r}")
        return folder

    def read_manifest(self, folder: str | Path) -> dict[str, Any]:
        """The manifest of the pack in ``folder`` as written, plus its ``pack_id``.

        Raises:
            OSError: no readable manifest.
            ValueError: the manifest is not JSON.
        """
        data = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
        data["pack_id"] = self.pack_id(folder)
        return data

    def manifests(self, audience_id: str | None = None) -> list[dict[str, Any]]:
        """The manifests of every pack (of one audience when given), newest first; unreadable ones skipped."""
        root = self.root.resolve()
        out = []
        if root.is_dir():
            for path in root.glob(f"*/v*/*/{MANIFEST}"):
                try:
                    data = self.read_manifest(path.parent)
                except (OSError, ValueError):
                    continue
                if not audience_id or data.get("audience_id") == audience_id:
                    out.append(data)
        out.sort(key=lambda m: m.get("created_at") or "", reverse=True)
        return out

    def files(self, folder: str | Path) -> list[Path]:
        """The files a pack is delivered as: its ID zips and ``manifest.json``, by name."""
        return [
            p
            for p in sorted(Path(folder).iterdir())
            if p.is_file() and (p.suffix == ".zip" or p.name == MANIFEST)
        ]
