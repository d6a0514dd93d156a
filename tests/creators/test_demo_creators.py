"""The demo creators (``demo.creators``): landing files that match the creator_stats contract, history on the
first day and one snapshot a day later, deterministic bytes, and the truth the creator tests score against."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import itertools
from pathlib import Path

import pandas as pd

from demo import generate
from demo import reference as ref
from demo.creators import write_creators
from schemas import load_sources

START = dt.date(2026, 11, 1)


def _rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _digest(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def test_creator_files_follow_the_contract_and_the_truth_covers_the_future(tmp_path: Path) -> None:
    files, rows = write_creators(
        tmp_path / "l", tmp_path / "t", start=START, days=2, creators=50, history_days=60
    )
    again, _ = write_creators(
        tmp_path / "l2", tmp_path / "t2", start=START, days=2, creators=50, history_days=60
    )
    assert _digest(files) == _digest(again)
    other, _ = write_creators(tmp_path / "l3", tmp_path / "t3", start=START, days=2, creators=50, seed=1)
    assert _digest(other) != _digest(files)
    stats = [p for p in files if p.parts[-3] == "creator_stats"]
    assert [p.parent.name for p in stats] == ["dt=2026-11-01", "dt=2026-11-02"]
    first, second = (_rows(p) for p in stats)
    assert list(first[0]) == [c.name for c in load_sources()["creator_stats"].columns]
    assert len(first) == 50 * 60 and len(second) == 50 and rows["creator_stats"] == len(first) + len(second)
    assert {r["snapshot_date"] for r in second} == {"2026-11-02"}
    assert max(r["snapshot_date"] for r in first) == "2026-11-01"
    # the engagement creators come first, with their reference names and platforms
    assert first[0]["creator_id"] == ref.CREATOR_IDS[0] and first[0]["creator_name"] == ref.CREATOR_NAMES[0]

    contents = [p for p in files if p.parts[-3] == "creator_content"]
    history, day2 = (_rows(p) for p in contents)
    assert list(history[0]) == [c.name for c in load_sources()["creator_content"].columns]
    assert rows["creator_content"] == len(history) + len(day2)
    assert {r["snapshot_date"] for r in day2} == {"2026-11-02"}
    life = {}
    for r in history:
        life.setdefault(r["content_id"], []).append(int(r["likes"]))
    assert all(a <= b for likes in life.values() for a, b in itertools.pairwise(likes))  # cumulative
    assert max(len(v) for v in life.values()) == 14

    truth = pd.read_parquet(tmp_path / "t" / "creators.parquet")
    assert len(truth) == 50 and truth["engaged"].sum() == len(ref.CREATOR_IDS)
    assert set(truth.loc[truth["engaged"], "segment"]) == {"premium", "young", "mom", ""}
    assert truth["breakout_onset"].notna().sum() > 5
    finals = pd.read_parquet(tmp_path / "t" / "creator_contents.parquet")
    assert set(finals["content_id"]) >= set(life)
    followers = pd.read_parquet(tmp_path / "t" / "creator_followers.parquet")
    assert followers["day"].max() == START + dt.timedelta(days=1 + 30)
    assert (followers["followers"] > 0).all()


def test_generate_writes_creators_when_asked(tmp_path: Path) -> None:
    # without ``creators`` the generator writes exactly what it did before (tests/demo checks every source)
    summary = generate(
        tmp_path / "l", tmp_path / "t", persons=60, start=START, days=1, history_days=5, seed=3, creators=40
    )
    assert summary.rows["creator_stats"] == 40 * 180 and summary.rows["creator_content"] > 0
    landed = sorted(p.parts[-3] for p in summary.files if p.parts[-3].startswith("creator_"))
    assert landed == ["creator_content", "creator_stats"]
    assert (tmp_path / "t" / "creator_followers.parquet").exists()
