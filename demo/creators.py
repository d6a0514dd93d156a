"""Demo creators (达人/KOL): daily account statistics for the ``creator_stats`` source, and their truth.

The first ``len(reference.CREATOR_IDS)`` creators are the ones people engage with in ``kol_engagement``
(their audiences lean to the latent segments of ``reference.CREATOR_SEGMENT``); the rest exist only in the
marketplace statistics, as most creators a brand could book do.

Follower trajectories: every creator grows (or shrinks) at a slow base rate; about a quarter have a
"breakout" spell. During a spell the creator's content is suddenly shared and liked much more (the
engagement and share rates jump at once), and the follower growth follows ``FOLLOW_LAG`` days later, then
fades. So a creator whose spell just started shows strong engagement but little follower growth yet, and a
creator whose spell is ending still shows strong past growth: the situation where a model beats "largest
now" and "grew most in the last 30 days".

Landing: on the first landing day, ``history_days`` of snapshots up to that day; later days one snapshot.
Contents (``creator_content``): the first ``CONTENT_CREATORS`` creators publish about one content every
other day; each has ``CONTENT_LIFE`` days of cumulative statistics, and viral ones (a higher share rate from
day one) keep being watched longer.

Truth (never read by the pipeline): ``creators.parquet`` (segment, breakout onset, price),
``creator_followers.parquet`` (followers per creator and day, through ``FUTURE_DAYS`` after the last
landing day), from which a test computes the true follower growth of the next 30 days, and
``creator_contents.parquet`` (each content's final engagement).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from demo import reference as ref
from demo.population import EPOCH, FUTURE_DAYS, stream

SOURCE = "creator_stats"
DEFAULT_CREATORS = 300
DEMO_MIN_CREATORS = 100
"""The demo runners generate one creator per 50 persons and at least this many."""
HISTORY_DAYS = 180
FOLLOW_LAG = 12
CONTENT_SOURCE = "creator_content"
CONTENT_CREATORS = 100
"""Creators whose contents are reported per content (the first ones: every engagement creator among them)."""
CONTENT_DAYS = 75
"""Days of publications before the first landing day with per-content statistics."""
CONTENT_LIFE = 14
"""Days of statistics per content (day 0 = the publication day); the last one is its final engagement."""
"""Days between a breakout's engagement jump and its follower growth."""
_STREAM_KEY = 97


def _day(day: int) -> date:
    return EPOCH + timedelta(days=int(day))


def simulate(creators: int, first_day: int, last_day: int, seed: int) -> dict[str, np.ndarray]:
    """Daily statistics of ``creators`` creators from ``first_day`` to ``last_day`` (day numbers, inclusive).

    Returns:
        Arrays: per creator (``creator_id``, ``name``, ``platform``, ``category``, ``segment``, ``onset``)
        and per creator x day (``followers``, ``posts``, ``views``, ``likes``, ``comments``, ``shares``,
        ``price``), days along axis 1.
    """
    rng = stream(seed, _STREAM_KEY)
    n_ref = len(ref.CREATOR_IDS)
    n = max(creators, n_ref)
    days = np.arange(first_day, last_day + 1)
    platform = np.concatenate([ref.CREATOR_PLATFORM, rng.integers(0, len(ref.PLATFORMS), n - n_ref)])
    focus = [ref.CATEGORIES[int(np.argmax(row))] for row in ref.CREATOR_FOCUS]
    category = np.array(focus + list(rng.choice(ref.CATEGORIES, n - n_ref)), dtype=object)
    segment = np.array(
        [ref.LATENT_SEGMENTS[s] if s >= 0 else "" for s in ref.CREATOR_SEGMENT] + [""] * (n - n_ref),
        dtype=object,
    )
    ids = np.array([f"KOL{1001 + i}" for i in range(n)], dtype=object)
    names = np.concatenate([ref.CREATOR_NAMES, np.array([f"达人{1001 + i}" for i in range(n_ref, n)])])

    followers0 = np.exp(rng.normal(np.log(150_000), 1.3, n)).clip(2_000, 20_000_000)
    base = rng.normal(0.0012, 0.0012, n)  # daily growth; a few shrink
    # Breakouts: a quarter of the creators, onsets spread over the whole window and the next month.
    breakout = rng.random(n) < 0.25
    onset = np.where(breakout, rng.integers(first_day + 20, last_day + 25, n), 10**7)
    spell = rng.integers(25, 70, n)
    strength = rng.uniform(0.012, 0.03, n)

    def heat(t: np.ndarray) -> np.ndarray:
        since = t[None, :] - onset[:, None]
        on = (since >= 0) & (since < spell[:, None])
        after = since >= spell[:, None]
        fade = np.exp(-np.maximum(since - spell[:, None], 0) / 10.0)
        return np.where(on, 1.0, np.where(after, fade, 0.0))

    hot = heat(days)
    lagged = heat(days - FOLLOW_LAG)
    rate = base[:, None] + strength[:, None] * lagged + rng.normal(0, 0.0006, (n, len(days)))
    followers = followers0[:, None] * np.exp(np.cumsum(rate, axis=1))
    post_rate = rng.uniform(0.15, 1.2, n)
    posts = rng.poisson(post_rate[:, None] * (1 + 0.5 * hot))
    reach = rng.uniform(0.02, 0.12, n)
    views = rng.poisson(followers * reach[:, None] * (1 + 2.5 * hot) * (0.4 + posts.clip(0, 3) / 2))
    like_rate = rng.uniform(0.02, 0.05, n)[:, None] * (1 + 0.8 * hot)
    likes = rng.binomial(views, like_rate.clip(0, 1))
    comments = rng.binomial(views, (like_rate / 8).clip(0, 1))
    share_rate = rng.uniform(0.002, 0.006, n)[:, None] * (1 + 3.0 * hot)
    shares = rng.binomial(views, share_rate.clip(0, 1))
    platform_price = np.array([1.0, 0.8, 0.7, 0.6])[platform]
    # The list price follows the followers of last month: tomorrow's creator still sells at today's price.
    price_base = 0.02 * followers0**0.9 * platform_price * rng.uniform(0.7, 1.3, n)
    monthly = followers[:, np.maximum(np.arange(len(days)) - 30, 0)] / followers0[:, None]
    price = np.round(np.maximum(price_base[:, None] * monthly**0.9, 300.0), -1)
    return {
        "creator_id": ids,
        "name": names,
        "platform": platform,
        "category": category,
        "segment": segment,
        "onset": onset,
        "days": days,
        "followers": np.round(followers).astype(np.int64),
        "posts": posts.astype(np.int32),
        "views": views.astype(np.int64),
        "likes": likes.astype(np.int64),
        "comments": comments.astype(np.int64),
        "shares": shares.astype(np.int64),
        "price": price,
    }


def simulate_contents(
    sim: dict[str, np.ndarray], first_publish: int, last_publish: int, seed: int
) -> dict[str, np.ndarray]:
    """Contents of the first :data:`CONTENT_CREATORS` creators published between two day numbers, with
    cumulative daily statistics over :data:`CONTENT_LIFE` days.

    A content's early engagement is its audience reach times its quality; how long it keeps being watched
    depends on its virality, which also shows early as a higher share rate: the situation where the first
    days' shape predicts the final engagement better than scaling the first days by a constant.

    Returns:
        Per content: ``content_id``, ``creator``, ``published`` (day number), and per content x day of life
        the cumulative ``views``, ``likes``, ``comments``, ``shares`` (days along axis 1).
    """
    rng = stream(seed, _STREAM_KEY, 1)
    n = min(CONTENT_CREATORS, len(sim["creator_id"]))
    days = np.arange(first_publish, last_publish + 1)
    counts = rng.poisson(0.5, (n, len(days)))
    creator = np.repeat(np.repeat(np.arange(n), len(days)), counts.reshape(-1))
    published = np.repeat(np.tile(days, n), counts.reshape(-1))
    m = len(creator)
    virality = rng.beta(1.2, 3.0, m)
    quality = rng.lognormal(0.0, 0.6, m)
    col = np.clip(published - sim["days"][0], 0, sim["followers"].shape[1] - 1)
    base = sim["followers"][creator, col] * rng.uniform(0.01, 0.05, n)[creator] * quality
    decay = np.clip(1.0 - 1.3 * virality + rng.normal(0, 0.05, m), 0.05, 1.2)
    life = np.arange(CONTENT_LIFE)
    daily_views = rng.poisson(base[:, None] * np.exp(-decay[:, None] * life[None, :]))
    like_rate = rng.uniform(0.02, 0.05, n)[creator] * (1 + virality)
    likes = rng.binomial(daily_views, np.clip(like_rate[:, None], 0, 1))
    comments = rng.binomial(daily_views, np.clip(like_rate[:, None] / 8, 0, 1))
    shares = rng.binomial(daily_views, np.clip(0.003 * (1 + 6 * virality)[:, None], 0, 1))
    seq = np.arange(m)
    return {
        "content_id": np.array(
            [f"CT{1001 + c:04d}{s:06d}" for c, s in zip(creator, seq, strict=True)], dtype=object
        ),
        "creator": creator,
        "published": published,
        "views": np.cumsum(daily_views, axis=1),
        "likes": np.cumsum(likes, axis=1),
        "comments": np.cumsum(comments, axis=1),
        "shares": np.cumsum(shares, axis=1),
    }


def content_table(
    sim: dict[str, np.ndarray], contents: dict[str, np.ndarray], day: int, *, history: bool
) -> pa.Table:
    """Rows of ``creator_content`` landed on day number ``day``: the snapshot of that day of every content
    alive on it, or with ``history`` every snapshot up to it."""
    age = day - contents["published"]
    rows, ages = [], []
    for d in range(CONTENT_LIFE):
        alive = np.flatnonzero(age >= d) if history else np.flatnonzero(age == d)
        rows.append(alive)
        ages.append(np.full(len(alive), d))
    who, life = np.concatenate(rows), np.concatenate(ages)
    order = np.lexsort((life, who))
    who, life = who[order], life[order]
    published = contents["published"][who]
    return pa.table(
        {
            "content_id": pa.array(contents["content_id"][who], pa.string()),
            "creator_id": pa.array(sim["creator_id"][contents["creator"][who]], pa.string()),
            "published_date": pa.array([_day(p) for p in published], pa.date32()),
            "snapshot_date": pa.array(
                [_day(p + a) for p, a in zip(published, life, strict=True)], pa.date32()
            ),
            "views": pa.array(contents["views"][who, life]),
            "likes": pa.array(contents["likes"][who, life]),
            "comments": pa.array(contents["comments"][who, life]),
            "shares": pa.array(contents["shares"][who, life]),
        }
    )


def stats_table(sim: dict[str, np.ndarray], columns: slice) -> pa.Table:
    """Rows of ``creator_stats`` for the day positions ``columns`` (contract column order)."""
    n = len(sim["creator_id"])
    days = sim["days"][columns]
    who = np.repeat(np.arange(n), len(days))
    when = np.tile(days, n)

    def cells(name: str) -> np.ndarray:
        return sim[name][:, columns].reshape(-1)

    return pa.table(
        {
            "snapshot_date": pa.array([_day(d) for d in when], pa.date32()),
            "creator_id": pa.array(sim["creator_id"][who], pa.string()),
            "creator_name": pa.array(sim["name"][who], pa.string()),
            "platform": pa.array(np.array(ref.PLATFORMS, dtype=object)[sim["platform"][who]], pa.string()),
            "category": pa.array(sim["category"][who], pa.string()),
            "followers": pa.array(cells("followers")),
            "posts": pa.array(cells("posts")),
            "views": pa.array(cells("views")),
            "likes": pa.array(cells("likes")),
            "comments": pa.array(cells("comments")),
            "shares": pa.array(cells("shares")),
            "price_per_post": pa.array(cells("price")),
        }
    )


def write_creators(
    landing_dir: Path,
    truth_dir: Path,
    *,
    start: date,
    days: int = 1,
    creators: int = DEFAULT_CREATORS,
    history_days: int = HISTORY_DAYS,
    seed: int = 42,
) -> tuple[list[Path], dict[str, int]]:
    """Write the ``creator_stats`` and ``creator_content`` landing files of ``days`` landing days from
    ``start``, and the truth.

    Args:
        landing_dir: the landing root (``<landing>/creator_stats/dt=YYYY-MM-DD/``).
        truth_dir: the truth folder.
        start: first landing day.
        days: landing days.
        creators: creators simulated (at least the engagement creators of the reference).
        history_days: days of snapshots delivered with the first landing day (the first day included).
        seed: random seed; the same arguments give the same bytes.

    Returns:
        The landing files written and the rows written per source.
    """
    if creators < 1 or days < 1 or history_days < 1:
        raise ValueError("need creators >= 1, days >= 1 and history_days >= 1")
    first_landing = (start - EPOCH).days
    first = first_landing - history_days + 1
    last = first_landing + days - 1
    sim = simulate(creators, first, last + FUTURE_DAYS, seed)
    contents = simulate_contents(sim, max(first, first_landing - CONTENT_DAYS + 1), last, seed)
    written, rows = [], {SOURCE: 0, CONTENT_SOURCE: 0}
    for i in range(days):
        day = first_landing + i
        lo = 0 if i == 0 else day - first
        folder = Path(landing_dir) / SOURCE / f"dt={_day(day).isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{SOURCE}-{_day(day).isoformat()}-000.csv"
        table = stats_table(sim, slice(lo, day - first + 1))
        pacsv.write_csv(table, path)
        written.append(path)
        rows[SOURCE] += table.num_rows
        folder = Path(landing_dir) / CONTENT_SOURCE / f"dt={_day(day).isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{CONTENT_SOURCE}-{_day(day).isoformat()}-000.csv"
        table = content_table(sim, contents, day, history=i == 0)
        pacsv.write_csv(table, path)
        written.append(path)
        rows[CONTENT_SOURCE] += table.num_rows
    truth = Path(truth_dir)
    truth.mkdir(parents=True, exist_ok=True)
    n = len(sim["creator_id"])
    pq.write_table(
        pa.table(
            {
                "creator_id": pa.array(sim["creator_id"], pa.string()),
                "segment": pa.array(sim["segment"], pa.string()),
                "category": pa.array(sim["category"], pa.string()),
                "breakout_onset": pa.array(
                    [_day(d) if d < 10**6 else None for d in sim["onset"]], pa.date32()
                ),
                "engaged": pa.array(np.arange(n) < len(ref.CREATOR_IDS)),
            }
        ),
        truth / "creators.parquet",
    )
    n_days = len(sim["days"])
    pq.write_table(
        pa.table(
            {
                "creator_id": pa.array(np.repeat(sim["creator_id"], n_days), pa.string()),
                "day": pa.array([_day(d) for d in np.tile(sim["days"], n)], pa.date32()),
                "followers": pa.array(sim["followers"].reshape(-1)),
            }
        ),
        truth / "creator_followers.parquet",
    )
    final = contents["likes"][:, -1] + contents["comments"][:, -1] + contents["shares"][:, -1]
    pq.write_table(
        pa.table(
            {
                "content_id": pa.array(contents["content_id"], pa.string()),
                "published_date": pa.array([_day(p) for p in contents["published"]], pa.date32()),
                "final_engagements": pa.array(final),
            }
        ),
        truth / "creator_contents.parquet",
    )
    return written, rows
