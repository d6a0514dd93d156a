"""Master data and snapshot feeds: CRM members, consent records and the 3P device feeds.

CRM profile fields are drawn once per member so that the first-day snapshot and later
incremental exports agree. The 3P feeds (DMP segments, demographics) are drawn once as a
full snapshot; later days re-deliver a small refreshed share of its rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from demo import reference as ref
from demo.activity import device_columns, member_id_text, phone_text, ts_text, uuid_text
from demo.noise import email_variants, with_junk
from demo.population import Devices, Population, Timeline, stream
from demo.strings import SECONDS_PER_DAY, date_matrix, float_to_text, int_to_text, take_text, to_arrow

LEVEL_POINTS = np.array([2_000, 8_000, 20_000])
LEVELS: tuple[str, ...] = ("normal", "silver", "gold", "platinum")
REFRESH_SHARE = 0.02
"""Share of 3P snapshot rows re-delivered on each later landing day."""
PROFILE_UPDATE_SHARE = 0.01
"""Share of existing members whose CRM profile is updated (re-exported) each later day."""


@dataclass
class CrmProfiles:
    """Per-person CRM fields as captured at registration (only meaningful for members)."""

    name: pa.StringArray
    gender: pa.StringArray
    birth_known: np.ndarray
    city_suffix: np.ndarray
    email_recorded: np.ndarray
    wechat_bound: np.ndarray
    points_factor: np.ndarray


def crm_profiles(people: Population, seed: int) -> CrmProfiles:
    """Draw the static CRM fields of everyone (used for members only)."""
    rng = stream(seed, 30)
    n = people.n
    surname = take_text(ref.SURNAMES, rng.choice(len(ref.SURNAMES), size=n, p=ref.SURNAME_P))
    given_f, given_m = ref.GIVEN_F, ref.GIVEN_M
    first = pc.if_else(
        pa.array(people.female),
        take_text(given_f, rng.integers(0, len(given_f), n)),
        take_text(given_m, rng.integers(0, len(given_m), n)),
    )
    second = pc.if_else(
        pa.array(people.female),
        take_text(given_f, rng.integers(0, len(given_f), n)),
        take_text(given_m, rng.integers(0, len(given_m), n)),
    )
    second = pc.if_else(pa.array(rng.random(n) < 0.55), second, "")
    gender_code = np.where(people.female, 1, 0) + np.select(
        [rng.random(n) < 0.07, rng.random(n) < 0.025], [2, 4], 0
    )
    gender_code = np.minimum(gender_code, 4)
    return CrmProfiles(
        name=pc.binary_join_element_wise(surname, first, second, ""),
        gender=take_text(("M", "F", "男", "女", "U"), gender_code, rng.random(n) > 0.01),
        birth_known=rng.random(n) < 0.75,
        city_suffix=rng.random(n) < 0.6,
        email_recorded=(people.email != b"") & (rng.random(n) < 0.85),
        wechat_bound=people.has_openid & (rng.random(n) < 0.7),
        points_factor=rng.uniform(0.5, 1.5, n),
    )


def crm_table(
    people: Population,
    profiles: CrmProfiles,
    persons: np.ndarray,
    updated_at: np.ndarray,
    rng: np.random.Generator,
) -> pa.Table:
    """Raw ``crm_members`` rows for ``persons`` (members) as exported at ``updated_at``."""
    index = pa.array(persons)
    months = (np.minimum(updated_at, people.churned_at[persons]) - people.active_from[persons]) / (
        30 * SECONDS_PER_DAY
    )
    points = (
        people.purchase_rate[persons] * np.maximum(months, 0) * 260 * profiles.points_factor[persons]
    ).astype(np.int64)
    email_ok = profiles.email_recorded[persons]
    email = email_variants(rng, people.email[persons], email_ok)
    email, email_ok = with_junk(rng, email, email_ok, ~email_ok, 0.03, ref.JUNK_EMAILS)
    city = take_text(ref.CITY_NAMES, people.city[persons])
    bound = profiles.wechat_bound[persons]
    unionid = people.unionid[persons]
    return pa.table(
        {
            "member_id": to_arrow(people.member_ids(persons)),
            "name": profiles.name.take(index),
            "phone": phone_text(people.phone[persons], people.has_phone[persons], rng, junk_share=0.004),
            "email": to_arrow(email, email_ok),
            "gender": profiles.gender.take(index),
            "birth_date": to_arrow(date_matrix(people.birth_day[persons]), profiles.birth_known[persons]),
            "province": take_text(ref.CITY_PROVINCES, people.city[persons]),
            "city": pc.if_else(
                pa.array(profiles.city_suffix[persons]), pc.binary_join_element_wise(city, "市", ""), city
            ),
            "register_channel": take_text(ref.CHANNELS, people.register_channel[persons]),
            "register_time": ts_text(people.active_from[persons]),
            "membership_level": take_text(LEVELS, np.searchsorted(LEVEL_POINTS, points, side="right")),
            "points": int_to_text(points),
            "wechat_openid": to_arrow(people.openid[persons], bound),
            "wechat_unionid": to_arrow(unionid, bound & (unionid != b"")),
            "updated_at": ts_text(updated_at),
        }
    )


def crm_rows_for_day(
    people: Population, timeline: Timeline, day: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Which members are exported on ``day`` and with which ``updated_at``, sorted by time.

    The first landing day exports everyone registered up to its end; later days export that
    day's registrations plus a small share of profile updates.
    """
    day_start, day_end = day * SECONDS_PER_DAY, (day + 1) * SECONDS_PER_DAY
    member = people.is_member
    if day == timeline.start_day:
        persons = np.flatnonzero(member & (people.active_from < day_end))
        updated = people.active_from[persons] + (
            rng.random(len(persons)) * (day_end - 1 - people.active_from[persons])
        ).astype(np.int64)
    else:
        new = np.flatnonzero(member & (people.active_from >= day_start) & (people.active_from < day_end))
        old = np.flatnonzero(
            member & (people.active_from < day_start) & (rng.random(people.n) < PROFILE_UPDATE_SHARE)
        )
        persons = np.concatenate([new, old])
        updated = np.concatenate(
            [
                np.minimum(people.active_from[new] + rng.integers(0, 600, len(new)), day_end - 1),
                day_start + rng.integers(0, SECONDS_PER_DAY, len(old)),
            ]
        )
    order = np.argsort(updated, kind="stable")
    return persons[order], updated[order]


@dataclass
class ConsentRecords:
    """All consent changes from the start of history to the last landing day, sorted by time."""

    person: np.ndarray
    time: np.ndarray
    purpose: np.ndarray
    opt_out: np.ndarray


def consent_records(people: Population, timeline: Timeline) -> ConsentRecords:
    """Opt-ins at registration, opt-outs and re-opt-ins (the truth is in ``persons.parquet``)."""
    lo, hi = timeline.history_from * SECONDS_PER_DAY, timeline.end_day * SECONDS_PER_DAY
    member = people.is_member
    registered = member & (people.active_from >= lo) & (people.active_from < hi)
    parts = [
        (registered, people.active_from + 30, np.full(people.n, 2), False),
        (
            member & (people.optout_at >= lo) & (people.optout_at < hi),
            people.optout_at,
            people.optout_purpose,
            True,
        ),
        (
            member & (people.optin_again_at >= lo) & (people.optin_again_at < hi),
            people.optin_again_at,
            people.optout_purpose,
            False,
        ),
    ]
    person = np.concatenate([np.flatnonzero(mask) for mask, _, _, _ in parts])
    time = np.concatenate([t[mask] for mask, t, _, _ in parts])
    purpose = np.concatenate([p[mask] for mask, _, p, _ in parts])
    opt_out = np.concatenate([np.full(int(mask.sum()), flag) for mask, _, _, flag in parts])
    order = np.argsort(time, kind="stable")
    return ConsentRecords(person[order], time[order], purpose[order], opt_out[order])


def consent_table(
    people: Population, records: ConsentRecords, rows: np.ndarray, rng: np.random.Generator
) -> pa.Table:
    """Raw ``consent`` rows (SMS unsubscribes carry only the phone number)."""
    n = len(rows)
    person = records.person[rows]
    has_phone = people.has_phone[person]
    sms = records.opt_out[rows] & has_phone & (rng.random(n) < 0.3)
    with_phone = has_phone & (sms | (rng.random(n) < 0.4))
    return pa.table(
        {
            "record_id": uuid_text(rng, n),
            "member_id": member_id_text(people, person, ~sms, rng),
            "phone": phone_text(np.where(with_phone, people.phone[person], b""), with_phone, rng),
            "purpose": take_text(("marketing", "ads", "all"), records.purpose[rows]),
            "status": take_text(("opt_in", "opt_out"), records.opt_out[rows].astype(int)),
            "updated_at": ts_text(records.time[rows]),
        }
    )


@dataclass
class DmpSnapshot:
    """The full DMP segment snapshot: one row per (device, segment)."""

    device: np.ndarray
    segment: np.ndarray
    provider: np.ndarray
    signal: np.ndarray


def dmp_snapshot(people: Population, devices: Devices, seed: int) -> DmpSnapshot:
    """Draw device segment memberships correlated with the latent segments and affinities."""
    rng = stream(seed, 40)
    covered = np.flatnonzero(rng.random(devices.m) < 0.42)
    p = devices.owner[covered]
    aff = people.affinity[p]
    c = ref.CAT
    prob = np.column_stack(
        [
            0.04 + 0.6 * (aff[:, c["skincare"]] + aff[:, c["makeup"]]) * people.female[p],
            0.03 + 0.7 * aff[:, c["skincare"]] + 0.2 * people.seg_premium_skincare[p],
            0.03 + 0.45 * people.seg_premium_skincare[p] + 0.1 * (people.income[p] >= 2),
            0.02 + 0.55 * people.seg_mom_baby[p],
            0.03 + 0.45 * people.seg_young_trendsetter[p],
            0.02 + 0.6 * aff[:, c["mens"]],
            0.02 + 0.6 * aff[:, c["fragrance"]],
            0.03 + 0.3 * ((people.age[p] >= 22) & (people.age[p] <= 32) & (people.tier[p] <= 1)),
            0.02 + 0.5 * aff[:, c["wellness"]],
        ]
    )
    row, segment = np.nonzero(rng.random(prob.shape) < prob)
    provider = rng.choice(len(ref.DMP_PROVIDERS), size=len(covered), p=[0.7, 0.3])
    return DmpSnapshot(covered[row], segment, provider[row], prob[row, segment])


def dmp_table(
    devices: Devices, snap: DmpSnapshot, rows: np.ndarray, day: int, rng: np.random.Generator
) -> pa.Table:
    """Raw ``dmp_segments`` rows of snapshot ``rows`` delivered on ``day``."""
    n = len(rows)
    signal = snap.signal[rows]
    score = rng.beta(1.5 + 8 * signal, 3.0, n)
    ids = device_columns(
        devices,
        snap.device[rows],
        np.full(n, day * SECONDS_PER_DAY),
        rng,
        fields=("oaid", "idfa", "imei"),
        imei_share=0.5,
        junk_share=0.025,
        variant_share=0.02,
    )
    codes = [code for code, _ in ref.DMP_SEGMENTS]
    names = [name for _, name in ref.DMP_SEGMENTS]
    return pa.table(
        {
            "provider": take_text(ref.DMP_PROVIDERS, snap.provider[rows]),
            **ids,
            "segment_code": take_text(codes, snap.segment[rows]),
            "segment_name": take_text(names, snap.segment[rows]),
            "score": float_to_text(score, 3),
            "snapshot_date": to_arrow(date_matrix(np.full(n, day))),
        }
    )


@dataclass
class DemographicSnapshot:
    """The full demographics snapshot: one inferred profile per covered device."""

    device: np.ndarray
    gender: np.ndarray
    age_range: np.ndarray
    income: np.ndarray
    tier: np.ndarray
    correct: np.ndarray


def demographic_snapshot(people: Population, devices: Devices, seed: int) -> DemographicSnapshot:
    """Infer device demographics with roughly 80 % accuracy per field (-1 = not provided)."""
    rng = stream(seed, 41)
    device = np.flatnonzero(rng.random(devices.m) < 0.4)
    p = devices.owner[device]
    n = len(device)

    def noisy(
        true: np.ndarray, levels: int, accuracy: float, missing: float, adjacent: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        right = rng.random(n) < accuracy
        if adjacent:
            wrong = np.clip(true + rng.choice([-1, 1], n), 0, levels - 1)
            wrong = np.where(wrong == true, true + np.where(true == 0, 1, -1), wrong)
        else:
            wrong = (true + rng.integers(1, levels, n)) % levels
        value = np.where(right, true, wrong)
        return np.where(rng.random(n) < missing, -1, value), right

    true_age = np.searchsorted(ref.AGE_RANGE_LOWER, people.age[p], side="right") - 1
    gender, g_ok = noisy(people.female[p].astype(np.int64), 2, 0.82, 0.05, False)
    age, a_ok = noisy(true_age, len(ref.AGE_RANGES), 0.78, 0.05, True)
    income, i_ok = noisy(people.income[p].astype(np.int64), 4, 0.75, 0.08, True)
    tier, t_ok = noisy(people.tier[p].astype(np.int64), len(ref.TIERS), 0.85, 0.03, False)
    correct = (g_ok.astype(int) + a_ok + i_ok + t_ok) / 4
    return DemographicSnapshot(device, gender, age, income, tier, correct)


def demographics_table(
    devices: Devices, snap: DemographicSnapshot, rows: np.ndarray, day: int, rng: np.random.Generator
) -> pa.Table:
    """Raw ``demographics`` rows of snapshot ``rows`` delivered on ``day``."""
    n = len(rows)
    confidence = np.clip(0.3 + 0.55 * snap.correct[rows] + rng.normal(0, 0.08, n), 0.05, 0.99)
    ids = device_columns(
        devices,
        snap.device[rows],
        np.full(n, day * SECONDS_PER_DAY),
        rng,
        fields=("oaid", "idfa", "imei"),
        imei_share=0.5,
        junk_share=0.025,
        variant_share=0.02,
    )

    def field(values: np.ndarray, labels: tuple[str, ...]) -> pa.StringArray:
        v = values[rows]
        return take_text(labels, np.maximum(v, 0), v >= 0)

    return pa.table(
        {
            "provider": take_text((ref.DEMO_PROVIDER,), np.zeros(n, np.int64)),
            **ids,
            "gender": field(snap.gender, ("M", "F")),
            "age_range": field(snap.age_range, ref.AGE_RANGES),
            "income_band": field(snap.income, ref.INCOME_BANDS),
            "city_tier": field(snap.tier, ref.TIERS),
            "confidence": float_to_text(confidence, 3),
            "snapshot_date": to_arrow(date_matrix(np.full(n, day))),
        }
    )


def refresh_rows(total: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the snapshot rows re-delivered in a later day's refresh."""
    return np.flatnonzero(rng.random(total) < REFRESH_SHARE)
