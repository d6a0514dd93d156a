"""The pack store without an engine: where a pack lives, finding one by id (never outside the root), listing
manifests newest first, the files a pack is delivered as; and which destination lines are hashed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audiences.errors import UnknownPackError
from audiences.export import DESTINATIONS
from audiences.packs import PackStore


def plant(store: PackStore, audience_id: str, version: int, destination: str, created_at: str) -> Path:
    folder = store.folder(audience_id, version, destination)
    folder.mkdir(parents=True)
    manifest = {"audience_id": audience_id, "version": version, "destination": destination,
                "created_at": created_at, "path": str(folder)}  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (folder / f"{audience_id}_v{version}_{destination}_phone_001.zip").write_bytes(b"zip")
    return folder


@pytest.fixture()
def store(tmp_path: Path) -> PackStore:
    store = PackStore(tmp_path / "packs")
    plant(store, "vip", 1, "tencent", "2026-11-01T08:00:00+00:00")
    plant(store, "vip", 2, "meta", "2026-11-02T08:00:00+00:00")
    plant(store, "lapsed", 1, "csv", "2026-11-03T08:00:00+00:00")
    return store


def test_a_pack_lives_under_audience_version_and_destination(tmp_path: Path) -> None:
    store = PackStore(tmp_path / "packs")
    folder = store.folder("vip", 3, "tencent")
    assert folder == tmp_path / "packs" / "vip" / "v3" / "tencent"
    assert store.pack_id(folder) == "vip/v3/tencent"


def test_find_returns_the_folder_of_an_existing_pack(store: PackStore) -> None:
    assert store.find("/vip/v2/meta/") == store.folder("vip", 2, "meta").resolve()


@pytest.mark.parametrize(
    ("pack_id", "message"),
    [
        ("vip/v1", "a pack id is <audience_id>/v<version>/<destination>"),
        ("vip/1/tencent", "a pack id is <audience_id>/v<version>/<destination>"),
        ("vip/v1/../../lapsed", "a pack id is <audience_id>/v<version>/<destination>"),
        ("vip/v9/tencent", "no pack 'vip/v9/tencent'$"),
    ],
)
def test_find_refuses_malformed_ids_and_missing_packs(store: PackStore, pack_id: str, message: str) -> None:
    with pytest.raises(UnknownPackError, match=message):
        store.find(pack_id)


def test_find_never_leaves_the_root_through_a_link(store: PackStore, tmp_path: Path) -> None:
    outside = PackStore(tmp_path / "elsewhere")
    plant(outside, "secret", 1, "csv", "2026-11-01T00:00:00+00:00")
    (store.root / "secret").symlink_to(outside.root / "secret")
    with pytest.raises(UnknownPackError, match="no pack 'secret/v1/csv'"):
        store.find("secret/v1/csv")


def test_manifests_newest_first_with_their_pack_ids_and_skip_unreadable_ones(store: PackStore) -> None:
    broken = store.folder("broken", 1, "csv")
    broken.mkdir(parents=True)
    (broken / "manifest.json").write_text("{not json", encoding="utf-8")
    assert [m["pack_id"] for m in store.manifests()] == ["lapsed/v1/csv", "vip/v2/meta", "vip/v1/tencent"]
    assert [m["pack_id"] for m in store.manifests("vip")] == ["vip/v2/meta", "vip/v1/tencent"]
    assert PackStore(store.root / "nothing here").manifests() == []


def test_read_manifest_and_files_of_a_pack(store: PackStore) -> None:
    folder = store.find("vip/v1/tencent")
    (folder / "notes.txt").write_text("not part of the pack", encoding="utf-8")
    manifest = store.read_manifest(folder)
    assert (manifest["pack_id"], manifest["audience_id"], manifest["version"]) == ("vip/v1/tencent", "vip", 1)
    assert [p.name for p in store.files(folder)] == ["manifest.json", "vip_v1_tencent_phone_001.zip"]


def test_only_lines_a_platform_wants_in_clear_are_unhashed() -> None:
    unhashed = {(d.name, t) for d in DESTINATIONS.values() for t, line in d.lines.items() if not line.hashed}
    assert unhashed == {("tencent", "wechat_openid"), ("google", "idfa"), ("meta", "idfa")}


def _manifest(audience_id: str = "vip", version: int = 1, destination: str = "google"):
    from audiences.packs import Manifest

    return Manifest(
        audience_id, "VIP", version, "2026-11-01", destination, destination, {}, {}, 2, 2, 0, 0, 1
    )


def test_packs_are_written_owner_only_and_raw_packs_say_admin_only(tmp_path: Path) -> None:
    """An admin's pack of raw IDFAs once landed 0644 in 0755 folders: every folder of a pack is 0700, every
    file 0600, and a pack with an unhashed ID type is marked admin-only in its manifest."""
    from audiences.packs import write_pack

    google = DESTINATIONS["google"]
    raw = next(t for t, line in google.lines.items() if not line.hashed)
    hashed = next(t for t, line in google.lines.items() if line.hashed)
    store = PackStore(tmp_path / "packs")
    folder = store.folder("vip", 1, "google")
    lines = {
        (raw, google.lines[raw].platform_type): ["a", "b"],
        (hashed, google.lines[hashed].platform_type): ["c"],
    }
    manifest = write_pack(folder, google, lines, _manifest())
    for path in [folder, folder.parent, folder.parent.parent]:
        assert path.stat().st_mode & 0o777 == 0o700, path
    assert [p.name for p in store.files(folder)] and all(
        p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir()
    )
    data = store.read_manifest(folder)
    assert data["admin_only"] is True and data["raw_id_types"] == [raw] == manifest.raw_id_types

    only_hashed = write_pack(
        store.folder("vip", 2, "google"),
        google,
        {k: v for k, v in lines.items() if k[0] == hashed},
        _manifest(version=2),
    )
    assert only_hashed.admin_only is False and only_hashed.raw_id_types == []
