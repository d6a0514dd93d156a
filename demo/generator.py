"""Entry point of the demo generator: simulate a population and write landing files and truth.

Landing layout: ``<landing_dir>/<source>/dt=YYYY-MM-DD/<source>-YYYY-MM-DD-<part>.<ext>``.
The first landing day also carries history (CRM snapshot, ``history_days`` of orders and
consent, 30 days of events / ad logs / engagements, full 3P snapshots); later days carry
increments. The truth (never read by the pipeline) goes to ``truth_dir``:
``persons.parquet``, ``identifiers.parquet``, ``future_purchases.parquet``, ``bad_rows.json`` and
``generation.json`` (the arguments).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from time import perf_counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from demo import activity, feeds
from demo.badrows import BadRowInjector
from demo.contracts import EXTENSIONS, load_contracts
from demo.population import (
    EPOCH,
    Devices,
    Population,
    Timeline,
    build_population,
    identifiers_table,
    persons_table,
    stream,
)
from demo.strings import HEX_LOWER, SECONDS_PER_DAY, digits, random_chars, to_arrow
from demo.writers import MAX_PART_ROWS, DayWriter, Landing

SOURCE_KEYS = {name: i for i, name in enumerate(EXTENSIONS)}


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate` wrote.

    Attributes:
        persons: Number of simulated people.
        dates: Landing days written.
        rows: Rows (lines) written per source over all days, bad rows included.
        files: Landing files written, in writing order.
        seconds: Wall-clock duration.
    """

    persons: int
    dates: list[date]
    rows: dict[str, int]
    files: list[Path]
    seconds: float


def generate(
    landing_dir: Path,
    truth_dir: Path,
    *,
    persons: int = 20_000,
    start: date = date(2026, 11, 1),
    days: int = 2,
    history_days: int = 365,
    seed: int = 42,
    bad_row_rate: float = 0.002,
    progress: Callable[[str], None] | None = None,
    creators: int = 0,
) -> GenerationSummary:
    """Simulate a customer population and write daily landing files plus the ground truth.

    The output is a pure function of the arguments: the same arguments give byte-identical
    files. Existing files with the same names are overwritten; other files are left alone.

    Args:
        landing_dir: Folder receiving one sub-folder per source.
        truth_dir: Folder receiving the ground truth (kept apart from the landing zone).
        persons: Number of simulated people.
        start: First landing day.
        days: Number of landing days.
        history_days: Days of order and consent history delivered with the first day.
        seed: Random seed.
        bad_row_rate: Bad rows added per good row and source (0 disables them).
        progress: Optional callback receiving short progress messages.
        creators: Creators of the ``creator_stats`` and ``creator_content`` sources (``demo.creators``); 0
            writes neither.

    Returns:
        A summary of what was written.

    Raises:
        ValueError: If an argument is out of range.
    """
    if persons < 1 or days < 1 or history_days < 0 or not 0 <= bad_row_rate < 1:
        raise ValueError("need persons >= 1, days >= 1, history_days >= 0 and 0 <= bad_row_rate < 1")
    began = perf_counter()
    say = progress or (lambda _message: None)
    landing_dir, truth_dir = Path(landing_dir), Path(truth_dir)
    truth_dir.mkdir(parents=True, exist_ok=True)
    timeline = Timeline.of(start, days, history_days)
    dates = [start + timedelta(days=i) for i in range(days)]

    people, devices = build_population(persons, timeline, seed)
    say(f"population: {persons:,} persons, {devices.m:,} devices")
    pq.write_table(persons_table(people), truth_dir / "persons.parquet", compression="zstd")
    pq.write_table(identifiers_table(people, devices), truth_dir / "identifiers.parquet", compression="zstd")
    say("truth: persons and identifiers written")

    bad_rows = BadRowInjector(bad_row_rate)
    landing = Landing(
        landing_dir,
        load_contracts(),
        bad_rows,
        lambda source, day, batch: stream(seed, 90, SOURCE_KEYS[source], day.toordinal(), batch),
    )
    try:
        _write_crm(landing, people, timeline, dates, seed)
        say("crm_members written")
        orders = activity.simulate_orders(people, timeline, seed)
        _write_orders(landing, people, orders, timeline, dates, seed)
        future = activity.future_purchases(people, orders, timeline)
        pq.write_table(future, truth_dir / "future_purchases.parquet", compression="zstd")
        say(f"orders written ({len(orders.order_seq):,} lines simulated incl. future)")
        del orders
        _write_consent(landing, people, timeline, dates, seed)
        say("consent written")
        _write_behaviour(landing, people, devices, timeline, seed, say)
        _write_third_party(landing, people, devices, dates, seed)
        say("dmp_segments and demographics written")
    finally:
        landing.finish()
    if creators:
        from demo.creators import write_creators

        files, rows = write_creators(
            landing_dir, truth_dir, start=start, days=days, creators=creators, seed=seed
        )
        landing.files.extend(files)
        landing.rows.update(rows)
        say(f"creator_stats and creator_content written ({creators:,} creators)")
    (truth_dir / "bad_rows.json").write_text(json.dumps(bad_rows.counts, indent=2) + "\n", encoding="utf-8")
    # The arguments, so later simulations (demo.campaigns) rebuild the same people and their future orders.
    arguments = {"persons": persons, "start": start.isoformat(), "days": days, "history_days": history_days,
                 "seed": seed, "bad_row_rate": bad_row_rate}  # fmt: skip
    (truth_dir / "generation.json").write_text(json.dumps(arguments, indent=2) + "\n", encoding="utf-8")
    seconds = perf_counter() - began
    say(f"done: {sum(landing.rows.values()):,} rows in {len(landing.files)} files, {seconds:.1f} s")
    return GenerationSummary(persons, dates, dict(landing.rows), list(landing.files), seconds)


def _chunks(index: np.ndarray) -> Iterator[np.ndarray]:
    """Split an index array into pieces of at most one part."""
    for begin in range(0, len(index), MAX_PART_ROWS):
        yield index[begin : begin + MAX_PART_ROWS]


def _day(day: int) -> date:
    """Calendar date of a day number."""
    return EPOCH + timedelta(days=day)


def _write_crm(
    landing: Landing, people: Population, timeline: Timeline, dates: list[date], seed: int
) -> None:
    """CRM members: full snapshot on the first day, new registrations and updates later."""
    profiles = feeds.crm_profiles(people, seed)
    for i, day in enumerate(dates):
        rng = stream(seed, 50, i)
        persons, updated = feeds.crm_rows_for_day(people, timeline, timeline.start_day + i, rng)
        writer = landing.open("crm_members", day)
        for chunk in _chunks(np.arange(len(persons))):
            writer.add(feeds.crm_table(people, profiles, persons[chunk], updated[chunk], rng))
        writer.close()


def _write_orders(
    landing: Landing,
    people: Population,
    orders: activity.Orders,
    timeline: Timeline,
    dates: list[date],
    seed: int,
) -> None:
    """Orders: history plus the first day on the first day, then one day at a time."""
    next_seq = [orders.n_orders]

    def rekey(copies: pa.Table, _rng: np.random.Generator) -> pa.Table:
        seq = np.arange(next_seq[0], next_seq[0] + copies.num_rows)
        next_seq[0] += copies.num_rows
        prefix = pc.utf8_slice_codeunits(copies["order_id"].combine_chunks(), 0, 9)
        new_id = pc.binary_join_element_wise(prefix, to_arrow(digits(seq, 9)), "")
        return copies.set_column(copies.column_names.index("order_id"), "order_id", new_id)

    order_day = orders.time // SECONDS_PER_DAY
    for i, day in enumerate(dates):
        rng = stream(seed, 51, i)
        d = timeline.start_day + i
        lines = np.flatnonzero(
            (order_day >= timeline.history_from if i == 0 else order_day >= d) & (order_day <= d)
        )
        writer = landing.open("orders", day, rekey)
        for chunk in _chunks(lines):
            writer.add(activity.order_table(people, orders, chunk, rng))
        writer.close()


def _rekey_uuid(column: str) -> Callable[[pa.Table, np.random.Generator], pa.Table]:
    """A rekey function giving copied rows a fresh UUID in ``column``."""

    def rekey(copies: pa.Table, rng: np.random.Generator) -> pa.Table:
        return copies.set_column(
            copies.column_names.index(column), column, activity.uuid_text(rng, copies.num_rows)
        )

    return rekey


def _rekey_log_id(copies: pa.Table, rng: np.random.Generator) -> pa.Table:
    """Give copied ad-log rows a fresh 32-hex ``log_id``."""
    new_id = to_arrow(random_chars(rng, copies.num_rows, 32, HEX_LOWER))
    return copies.set_column(copies.column_names.index("log_id"), "log_id", new_id)


def _write_consent(
    landing: Landing, people: Population, timeline: Timeline, dates: list[date], seed: int
) -> None:
    """Consent records: history plus the first day on the first day, then one day at a time."""
    records = feeds.consent_records(people, timeline)
    record_day = records.time // SECONDS_PER_DAY
    for i, day in enumerate(dates):
        d = timeline.start_day + i
        rows = np.flatnonzero((record_day <= d) if i == 0 else (record_day == d))
        landing.write(
            "consent",
            day,
            feeds.consent_table(people, records, rows, stream(seed, 52, i)),
            _rekey_uuid("record_id"),
        )


def _write_behaviour(
    landing: Landing,
    people: Population,
    devices: Devices,
    timeline: Timeline,
    seed: int,
    say: Callable[[str], None],
) -> None:
    """Events, ad logs and KOL engagements, simulated day by day (the look-back goes to day one)."""
    builders = {
        "events": (activity.events_table, _rekey_uuid("event_id")),
        "ad_delivery": (activity.ads_table, _rekey_log_id),
        "kol_engagement": (activity.kol_table, _rekey_uuid("engagement_id")),
    }
    writers: dict[str, DayWriter] = {}
    current: date | None = None
    for day in range(timeline.behaviour_from, timeline.end_day):
        landing_day = _day(max(day, timeline.start_day))
        if landing_day != current:
            for writer in writers.values():
                writer.close()
            writers = {s: landing.open(s, landing_day, rekey) for s, (_, rekey) in builders.items()}
            current = landing_day
        for source, (build, _) in builders.items():
            writers[source].add(build(people, devices, day, stream(seed, 60 + SOURCE_KEYS[source], day)))
        say(f"events, ad_delivery, kol_engagement: {_day(day).isoformat()} simulated")
    for writer in writers.values():
        writer.close()


def _write_third_party(
    landing: Landing, people: Population, devices: Devices, dates: list[date], seed: int
) -> None:
    """3P feeds: full snapshots on the first day, small refreshes later."""
    dmp = feeds.dmp_snapshot(people, devices, seed)
    demo = feeds.demographic_snapshot(people, devices, seed)
    for i, day in enumerate(dates):
        d = (day - EPOCH).days
        rng = stream(seed, 53, i)
        dmp_rows = np.arange(len(dmp.device)) if i == 0 else feeds.refresh_rows(len(dmp.device), rng)
        writer = landing.open("dmp_segments", day)
        for chunk in _chunks(dmp_rows):
            writer.add(feeds.dmp_table(devices, dmp, chunk, d, rng))
        writer.close()
        demo_rows = np.arange(len(demo.device)) if i == 0 else feeds.refresh_rows(len(demo.device), rng)
        writer = landing.open("demographics", day)
        for chunk in _chunks(demo_rows):
            writer.add(feeds.demographics_table(devices, demo, chunk, d, rng))
        writer.close()
