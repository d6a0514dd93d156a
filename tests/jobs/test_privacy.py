"""Erasure (PIPL right to deletion) on a copy of the demo lake: a person named by one phone number is removed
from every table, every remaining file version, the commit logs and the packs; other people stay; a dry run
changes nothing; reruns of the old landing files do not bring the person back, and a newer consent grant
lets that phone in again."""

from __future__ import annotations

import base64
import csv
import datetime
import hashlib
import hmac
import io
import os
import shutil
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdp.lake import Lake

KEY = "test-only-pii-key"
EVERYONE = {"any": [{"tag": "is_member", "value": True}, {"not": {"tag": "is_member", "value": True}}]}
DESTINATIONS = ("tencent", "oceanengine", "google", "meta", "csv")


def keyed(value: str) -> str:
    return hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


def forms(id_type: str, value: str) -> set[str]:
    """Every form a normalised identifier can take in the lake or a pack: as is, upper/lower case, a phone's
    national and country-code digits, their md5 and sha256, and the keyed hash."""
    plain = {value, value.lower(), value.upper()}
    if id_type == "phone":
        plain |= {value[3:], value.lstrip("+")}
    digests = {h(p.encode()).hexdigest() for p in plain for h in (hashlib.md5, hashlib.sha256)}
    return plain | digests | {keyed(value)}


def _decrypt(value: str, aes) -> str | None:
    try:
        blob = base64.b64decode(value, validate=True)
        return aes.decrypt(blob[:12], blob[12:], None).decode("utf-8")
    except Exception:
        return None


def leaks(data_root: Path, needles: dict[str, str], oneids: set[str]) -> set[tuple[str, str]]:
    """Where any needle is found: every Parquet file under the lake root (all versions still on disk; values
    of bronze, quarantine and vault also decrypted), every commit-log file, every pack file; OneIDs in any
    ``*oneid*`` column."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from identity.pii import encryption_key

    aes = AESGCM(encryption_key(KEY))
    found = set()

    def check(where: str, text: str) -> None:
        found.update((where, what) for n, what in needles.items() if n in text)

    lake = data_root / "lake"
    for folder, _, names in os.walk(lake):
        for name in names:
            path = Path(folder, name)
            where = "/".join(path.relative_to(lake).parts[:2])
            if name.endswith(".parquet"):
                table = pq.read_table(path)
                for col in table.column_names:
                    values = table.column(col).to_pylist()
                    if "oneid" in col and oneids & {str(v) for v in values}:
                        found.add((f"{where}:{col}", "oneid"))
                    if not pa.types.is_string(table.column(col).type):
                        continue
                    for v in {v for v in values if v}:
                        check(f"{where}:{col}", v)
                        if len(v) >= 40 and where.split("/")[0] in ("bronze", "quarantine", "vault"):
                            plain = _decrypt(v, aes)
                            if plain:
                                check(f"{where}:{col} decrypted", plain)
            elif "_delta_log" in path.parts:
                check(f"{where}:log", path.read_text(errors="ignore"))
    for folder, _, names in os.walk(data_root / "packs"):
        for name in names:
            path = Path(folder, name)
            if name.endswith(".zip"):
                with zipfile.ZipFile(path) as zf:
                    for entry in zf.namelist():
                        check(f"pack {entry}", zf.read(entry).decode("utf-8"))
            else:
                check(f"pack {name}", path.read_text(errors="ignore"))
    return found


def _files(root: Path) -> set[tuple[str, int, int]]:
    out = set()
    for folder, _, names in os.walk(root):
        for name in names:
            st = Path(folder, name).stat()
            out.add((str(Path(folder, name).relative_to(root)), st.st_size, st.st_mtime_ns))
    return out


def _quarantined_people(s, truth) -> list[tuple[int, str]]:
    """Persons with a quarantined orders or members row (their raw line decrypted) and the phone in it."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from deltalake import DeltaTable

    from identity.pii import encryption_key

    aes = AESGCM(encryption_key(KEY))
    phones = {
        v[3:]: p
        for v, p, t in zip(truth.id_value, truth.person_id, truth.id_type, strict=True)
        if t == "phone"
    }
    people = []
    for source in ("crm_members", "orders"):
        for raw in DeltaTable(f"{s.lake_root}/quarantine/{source}").to_pandas()["_raw"]:
            line = (_decrypt(raw, aes) or "").replace(" ", "")
            people += [(p, "+86" + phone) for phone, p in phones.items() if phone in line]
    return list(dict.fromkeys(people))


def _pick_person(s, truth) -> tuple[str, int, list[tuple[str, str]]]:
    """A person with a quarantined row whose phone's OneID also holds an email, a member id and a device
    id: the phone (E.164), the OneID, and the OneID's identifiers in clear (``id_type``, value)."""
    from deltalake import DeltaTable

    oneid_map = DeltaTable(f"{s.lake_root}/gold/oneid_map").to_pandas()
    clear = {
        keyed(v): v for v, t in zip(truth.id_value, truth.id_type, strict=True) if t in ("phone", "email")
    }
    for person, phone in _quarantined_people(s, truth):
        if truth[truth.person_id == person].shared.any():
            continue
        hit = oneid_map[oneid_map.id_value == keyed(phone)]
        if hit.empty:
            continue
        oneid = int(hit.oneid.iloc[0])
        mine = oneid_map[oneid_map.oneid == oneid][["id_type", "id_value"]].drop_duplicates()
        types = set(mine.id_type)
        if {"email", "member_id"} <= types and types & {"oaid", "android_id", "idfa", "imei"}:
            values = [(t, clear.get(v, v)) for t, v in zip(mine.id_type, mine.id_value, strict=True)]
            return phone, oneid, values
    raise AssertionError("no suitable person in the demo population")


def _counts(spark, s) -> dict[str, int]:
    lake = Lake.from_settings(spark, s)
    return {t: lake.read(t).count() for t in lake.tables()}


@pytest.fixture(scope="module")
def erased(spark, copy_demo_lake, tmp_path_factory):
    """The demo lake copied, one audience of everyone exported to every destination, then one person erased by
    their phone number (retention 0) after a dry run."""
    from identity.erasure import parse_request
    from jobs import audiences
    from jobs.privacy import erase

    root = tmp_path_factory.mktemp("erasure") / "data"
    s = copy_demo_lake(root, min_pack_size=50, min_seed_size=20, erasure_retention_hours=0)
    audiences.create(spark, s, {"name": "everyone", "rule": EVERYONE}, created_by="test")
    for destination in DESTINATIONS:
        audiences.export(spark, s, "everyone", destination, min_size=50)
    truth = pq.read_table(root / "truth" / "identifiers.parquet").to_pandas()
    phone, oneid, identifiers = _pick_person(s, truth)
    needles = {f: t for t, v in identifiers for f in forms(t, v)}
    oneids = {str(oneid)}
    before_leaks = leaks(root, needles, oneids)
    before = _counts(spark, s)
    files = _files(root)
    request = parse_request([f"phone:{phone[3:5]} {phone[5:]}"])  # as a person would type it
    dry = erase(spark, s, request, dry_run=True)
    dry_files = _files(root)
    report = erase(spark, s, request, requested_by="dpo")
    return {
        "s": s,
        "root": root,
        "phone": phone,
        "needles": needles,
        "oneids": oneids,
        "before_leaks": before_leaks,
        "before": before,
        "after": _counts(spark, s),
        "dry": dry,
        "dry_changed": files ^ dry_files,
        "report": report,
        "identifiers": identifiers,
    }


@pytest.mark.slow
def test_the_person_was_everywhere_before(erased) -> None:
    where = {w.split(":")[0].split(" ")[0] for w, _ in erased["before_leaks"]}
    assert {"silver/members", "gold/oneid_map", "vault/identifiers", "pack"} <= where
    assert any(w.startswith("quarantine/") for w in where), where
    assert any(w.startswith("bronze/") for w in where), where
    assert erased["oneids"]


@pytest.mark.slow
def test_a_dry_run_changes_nothing_and_counts_the_same(erased) -> None:
    dry, report = erased["dry"], erased["report"]
    assert erased["dry_changed"] == set()
    assert dry.dry_run and dry.tables == report.tables and dry.packs == report.packs
    assert dry.rows > 0


@pytest.mark.slow
def test_no_file_log_version_or_pack_holds_the_person_after_the_vacuum(erased) -> None:
    report = erased["report"]
    assert report.oneids >= 1 and report.identifiers >= 4
    assert {"silver.members", "gold.oneid_map", "gold.tags", "vault.identifiers"} <= set(report.tables)
    assert any(t.startswith("quarantine.") for t in report.tables)
    assert report.packs and all(n > 0 for n in report.packs.values())
    assert sum(report.vacuumed.values()) >= len(report.tables)
    assert leaks(erased["root"], erased["needles"], erased["oneids"]) == set()


@pytest.mark.slow
def test_other_people_stay(erased) -> None:
    before, after, removed = erased["before"], erased["after"], erased["report"].tables
    for table, n in before.items():
        if table == "vault.erasures":
            continue
        assert after[table] == n - removed.get(table, 0), table
    # A person is a handful of rows per table (tags: one row per tag).
    assert all(n <= 200 for n in removed.values()), removed
    assert after["gold.oneid_map"] > 1000


@pytest.mark.slow
def test_the_request_is_recorded_without_any_identifier(spark, erased) -> None:
    from identity.erasure import erasure_digest

    lake = Lake.from_settings(spark, erased["s"])
    rows = lake.read("vault.erasures").collect()
    assert {r.request_id for r in rows} == {erased["report"].request_id}
    assert {r.requested_by for r in rows} == {"dpo"}
    phone = erased["phone"]
    named = [r for r in rows if r.named]
    assert [(r.id_type, r.id_digest) for r in named] == [("phone", erasure_digest(keyed(phone), KEY))]
    assert {"oneid", "phone", "email", "member_id"} <= {r.id_type for r in rows}
    assert all(r.vacuumed_at is not None and r.retention_hours == 0 for r in rows)
    # The leak scan above found none of the person's forms in vault.erasures either.


@pytest.mark.slow
def test_reruns_do_not_bring_the_person_back_until_a_new_consent(spark, erased) -> None:
    from jobs import identity, ingest
    from jobs.privacy import erased_in_force
    from schemas import load_sources

    s, dt = erased["s"], "2026-11-01"
    dropped = {}
    for source in sorted(load_sources()):
        report = ingest.run(spark, s, source, dt)
        assert report.balanced, report.balance_line()
        dropped[source] = report.erased
    identity.run(spark, s, dt)
    assert sum(dropped.values()) > 0, dropped
    # The rerun numbers OneIDs afresh, so the erased OneID's number may now name someone else: the check is
    # that none of the person's identifiers, hashes or forms came back.
    assert leaks(erased["root"], erased["needles"], set()) == set()

    # The same deliveries landed again as a new batch (the next date): neither bronze nor silver keeps the
    # person (bronze of text files is written from the records as landed, filtered the same way).
    again = datetime.date.fromisoformat(dt) + datetime.timedelta(days=1)
    for source in sorted(load_sources()):
        landed = Path(s.landing_root) / source / f"dt={dt}"
        if landed.is_dir():
            shutil.copytree(landed, Path(s.landing_root) / source / f"dt={again}")
            report = ingest.run(spark, s, source, again.isoformat())
            assert report.balanced, report.balance_line()
    assert leaks(erased["root"], erased["needles"], set()) == set()

    # A consent grant for the phone, newer than the erasure, lets that phone (only) in again.
    phone = erased["phone"]
    now = datetime.datetime.now(datetime.UTC)
    later = now.date()
    folder = Path(s.landing_root) / "consent" / f"dt={later}"
    folder.mkdir(parents=True)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["record_id", "member_id", "phone", "purpose", "status", "updated_at"])
    when = (now + datetime.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    writer.writerow(["C-NEW-GRANT", "", phone[3:], "marketing", "opt_in", when])
    (folder / "consent-new.csv").write_text(text.getvalue(), encoding="utf-8")
    report = ingest.run(spark, s, "consent", later)
    assert report.erased == 0 and report.silver_written == 1, report.balance_line()
    lake = Lake.from_settings(spark, s)
    row = lake.read("silver.consent").where("record_id = 'C-NEW-GRANT'").collect()
    assert [r.phone_hash for r in row] == [keyed(phone)]
    in_force = erased_in_force(lake, KEY, load_sources())
    from identity.erasure import erasure_digest

    assert erasure_digest(keyed(phone), KEY) not in in_force.get("phone", set())
    member_id = next(v for t, v in erased["identifiers"] if t == "member_id")
    assert erasure_digest(keyed(member_id), KEY) in in_force["member_id"]


@pytest.mark.slow
def test_the_cli_erases_from_a_file_and_vacuums_once_the_retention_has_passed(
    spark, copy_demo_lake, tmp_path
) -> None:
    from typer.testing import CliRunner

    from apps.cli.main import app
    from jobs.privacy import vacuum_due

    s = copy_demo_lake(tmp_path / "data", erasure_retention_hours=1)
    lake = Lake.from_settings(spark, s)
    row = lake.read("gold.oneid_map").where("id_type = 'oaid'").orderBy("id_value").first()
    request = tmp_path / "request.txt"
    request.write_text(f"# one person\noaid:{row.id_value.upper()}\n", encoding="utf-8")
    env = {"CDP_PII_KEY": KEY, "CDP_ERASURE_RETENTION_HOURS": "1"}
    root = ["--data-root", str(s.data_root)]
    runner = CliRunner()
    dry = runner.invoke(app, ["privacy", "erase", "--file", str(request), "--dry-run", *root], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would remove" in dry.output and "gold.oneid_map" in dry.output
    assert lake.read("gold.oneid_map").where(f"oneid = {row.oneid}").count() > 0
    out = runner.invoke(app, ["privacy", "erase", "--oneid", str(row.oneid), *root], env=env)
    assert out.exit_code == 0, out.output
    assert "removed" in out.output and "gold.oneid_map" in out.output and "after 1 h" in out.output
    assert lake.read("gold.oneid_map").where(f"oneid = {row.oneid}").count() == 0
    # Within the retention the old versions stay (time travel, readers in flight); after it they go.
    log = Path(lake.path("gold.oneid_map")) / "_delta_log"
    assert len(list(log.glob("*.json"))) > 1
    vacuum = runner.invoke(app, ["privacy", "vacuum", *root], env=env)
    assert vacuum.exit_code == 0 and "no erasure due" in vacuum.output
    later = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(hours=2)
    done = vacuum_due(spark, s, now=later)
    assert done["gold.oneid_map"] >= 1
    assert [p.name for p in log.glob("*.json")] == [f"{lake.version('gold.oneid_map'):020d}.json"]
    assert all(r.vacuumed_at is not None for r in lake.read("vault.erasures").collect())
    assert lake.read("gold.oneid_map").count() > 1000  # still readable from its checkpoint
    bad = runner.invoke(app, ["privacy", "erase", "--identifier", "fax:123", *root], env=env)
    assert bad.exit_code == 2 and "unknown ID type 'fax'" in bad.output
