"""Simulated people, their latent traits, identifiers and devices (the hidden truth).

Everything is held in column arrays (one entry per person or per device) so that
populations of millions are built with vectorised NumPy code. Times are integer
seconds since 1970-01-01 on the naive China wall clock; days are days since the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from demo import reference as ref
from demo.strings import (
    HEX_LOWER,
    HEX_UPPER,
    OPENID_ALPHABET,
    SECONDS_PER_DAY,
    arrow_to_fixed,
    const,
    digits,
    int_to_text,
    random_chars,
    take_text,
    to_arrow,
    to_fixed,
    uuid_matrix,
)

NEVER = np.int64(2**62)
"""Sentinel time for events that never happen (no churn, no reinstall, ...)."""
BEHAVIOUR_LOOKBACK_DAYS = 30
"""Days of events/ads/engagements before ``start`` delivered with the first drop."""
FUTURE_DAYS = 30
"""Days after the last landing day simulated for ``future_purchases``."""
ACQUISITION_YEARS = 5
"""People became customers uniformly over this many years before ``start``."""
EPOCH = date(1970, 1, 1)


def stream(seed: int, *keys: int) -> np.random.Generator:
    """An independent random generator for one stage, derived from the run seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


@dataclass(frozen=True)
class Timeline:
    """The simulated calendar, in days since the epoch.

    Attributes:
        start_day: First landing day.
        days: Number of landing days.
        history_days: Days of order/consent history delivered with the first drop.
    """

    start_day: int
    days: int
    history_days: int

    @classmethod
    def of(cls, start: date, days: int, history_days: int) -> Timeline:
        """Build a timeline from calendar dates."""
        return cls((start - EPOCH).days, days, history_days)

    @property
    def history_from(self) -> int:
        """First day of order and consent history."""
        return self.start_day - self.history_days

    @property
    def behaviour_from(self) -> int:
        """First day of behaviour (events, ads, engagements) delivered."""
        return self.start_day - BEHAVIOUR_LOOKBACK_DAYS

    @property
    def end_day(self) -> int:
        """Day after the last landing day."""
        return self.start_day + self.days

    @property
    def future_end(self) -> int:
        """Day after the simulated future window."""
        return self.end_day + FUTURE_DAYS


@dataclass
class Population:
    """Per-person latent traits and identifiers (arrays indexed by person position)."""

    person_id: np.ndarray
    female: np.ndarray
    birth_day: np.ndarray
    age: np.ndarray
    city: np.ndarray
    tier: np.ndarray
    income: np.ndarray
    household_id: np.ndarray
    household_size: np.ndarray
    is_member: np.ndarray
    member_no: np.ndarray
    register_channel: np.ndarray
    channel_pref: np.ndarray
    affinity: np.ndarray
    price_sensitivity: np.ndarray
    purchase_rate: np.ndarray
    session_rate: np.ndarray
    active_from: np.ndarray
    churned_at: np.ndarray
    ad_exposure: np.ndarray
    ad_responsiveness: np.ndarray
    media_pref: np.ndarray
    kol_affinity: np.ndarray
    platform_pref: np.ndarray
    seg_premium_skincare: np.ndarray
    seg_young_trendsetter: np.ndarray
    seg_mom_baby: np.ndarray
    phone: np.ndarray
    phone2: np.ndarray
    email: np.ndarray
    openid: np.ndarray
    unionid: np.ndarray
    cookie: np.ndarray
    cookie2: np.ndarray
    cookie_switch: np.ndarray
    device_start: np.ndarray
    device_count: np.ndarray
    tablet: np.ndarray
    optout_at: np.ndarray
    optout_purpose: np.ndarray
    optin_again_at: np.ndarray

    @property
    def n(self) -> int:
        """Number of people."""
        return len(self.person_id)

    @property
    def has_phone(self) -> np.ndarray:
        """Whether the person has a (primary) mobile number."""
        return self.phone != b""

    @property
    def has_openid(self) -> np.ndarray:
        """Whether the person uses the brand's WeChat mini-program."""
        return self.openid != b""

    def member_ids(self, index: np.ndarray) -> np.ndarray:
        """Canonical member ids (``M`` + 9 digits) of members at ``index`` as an ``S10`` array."""
        return to_fixed(np.hstack([const("M", len(index)), digits(self.member_no[index], 9)]))


@dataclass
class Devices:
    """Phones and shared family tablets (arrays indexed by device position)."""

    owner: np.ndarray
    is_tablet: np.ndarray
    ios: np.ndarray
    model: np.ndarray
    app_version: np.ndarray
    oaid: np.ndarray
    oaid2: np.ndarray
    android_id: np.ndarray
    android_id2: np.ndarray
    reinstall_at: np.ndarray
    imei: np.ndarray
    idfa: np.ndarray
    oaid_zero: np.ndarray
    android_id_junk: np.ndarray
    idfa_lat: np.ndarray
    tablet_users: np.ndarray
    tablet_user_device: np.ndarray

    @property
    def m(self) -> int:
        """Number of devices."""
        return len(self.owner)

    @cached_property
    def brand_model(self) -> tuple[pa.StringArray, pa.StringArray]:
        """Brand and model names of every device."""
        names = (
            [b for b, _ in ref.ANDROID_MODELS]
            + ["Apple"] * len(ref.IOS_MODELS)
            + [b for b, _ in ref.TABLET_MODELS]
        )
        models = [m for _, m in ref.ANDROID_MODELS] + list(ref.IOS_MODELS) + [m for _, m in ref.TABLET_MODELS]
        code = np.where(
            self.is_tablet,
            len(ref.ANDROID_MODELS) + len(ref.IOS_MODELS) + self.model,
            np.where(self.ios, len(ref.ANDROID_MODELS) + self.model, self.model),
        )
        return take_text(names, code), take_text(models, code)

    def ids_at(self, index: np.ndarray, when: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The oaid and Android id of devices ``index`` at times ``when`` (after reinstalls)."""
        new = when >= self.reinstall_at[index]
        return (
            np.where(new, self.oaid2[index], self.oaid[index]),
            np.where(new, self.android_id2[index], self.android_id[index]),
        )


def categorical(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Draw one category per row of a ``(n, k)`` matrix of non-negative weights."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), weights.shape[1] - 1)


def _dirichlet(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """Row-wise Dirichlet draws for a ``(n, k)`` matrix of concentration parameters."""
    g = rng.standard_gamma(alpha)
    return (g / g.sum(axis=1, keepdims=True)).astype(np.float32)


def unique_ints(rng: np.random.Generator, n: int, high: int, exclude: tuple[int, ...] = ()) -> np.ndarray:
    """``n`` distinct random integers in ``[0, high)`` avoiding ``exclude``, in random order."""
    draw = rng.choice(high, size=n + len(exclude), replace=False)
    return draw[~np.isin(draw, np.array(exclude, dtype=np.int64))][:n].astype(np.int64)


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct CN mobile numbers (11 digits) as an ``S11`` array, never a placeholder-like number.

    Test numbers (``13800138000``) and ``1xx00000000`` are excluded: pipelines treat them as junk.
    """
    prefixes = ref.PHONE_PREFIXES
    junk = [int(p) for p in ref.JUNK_PHONES if int(p) // 10**8 in prefixes]
    exclude = {int(np.searchsorted(prefixes, j // 10**8)) * 10**8 + j % 10**8 for j in junk}
    exclude |= {i * 10**8 for i in range(len(prefixes))}
    code = unique_ints(rng, n, len(prefixes) * 10**8, exclude=tuple(sorted(exclude)))
    number = prefixes[code // 10**8] * 10**8 + code % 10**8
    return to_fixed(digits(number, 11))


def luhn_digit(payload: np.ndarray) -> np.ndarray:
    """Luhn check digit (as an ASCII code) for an ``(n, 14)`` matrix of ASCII digits."""
    d = payload.astype(np.int64) - 48
    doubled = d[:, 1::2] * 2
    total = d[:, 0::2].sum(axis=1) + (doubled // 10 + doubled % 10).sum(axis=1)
    return ((10 - total % 10) % 10 + 48).astype(np.uint8)


def _imeis(rng: np.random.Generator, n: int, meid_share: float = 0.08) -> np.ndarray:
    """Distinct IMEIs with a valid Luhn digit, a few replaced by 14-hex MEIDs (upper case)."""
    code = unique_ints(rng, n, len(ref.IMEI_TACS) * 10**6)
    payload = digits(ref.IMEI_TACS[code // 10**6] * 10**6 + code % 10**6, 14)
    out = np.hstack([payload, luhn_digit(payload)[:, None]])
    meid = rng.random(n) < meid_share
    body = np.hstack([const("A0", int(meid.sum())), random_chars(rng, int(meid.sum()), 12, HEX_UPPER)])
    result = to_fixed(out).astype("S15")
    result[meid] = to_fixed(body)
    return result


def _hex_ids(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """``n`` random lower-case hexadecimal strings of ``width`` characters as an ``S<width>`` array."""
    return to_fixed(random_chars(rng, n, width, HEX_LOWER))


def _oaids(rng: np.random.Generator, n: int) -> np.ndarray:
    """OAIDs in the styles seen in the wild: UUID-like, 16 hex or 64 hex (lower case)."""
    style = rng.choice(3, size=n, p=[0.7, 0.2, 0.1])
    out = to_fixed(uuid_matrix(rng, n)).astype("S64")
    out[style == 1] = _hex_ids(rng, int((style == 1).sum()), 16)
    out[style == 2] = _hex_ids(rng, int((style == 2).sum()), 64)
    return out


def _wechat_ids(rng: np.random.Generator, n: int, app_prefix: str) -> np.ndarray:
    """WeChat ids: 28 characters, a per-app prefix starting with ``o`` then random base64url."""
    body = random_chars(rng, n, 28 - len(app_prefix), OPENID_ALPHABET)
    return to_fixed(np.hstack([const(app_prefix, n), body]))


def _emails(rng: np.random.Generator, n: int) -> np.ndarray:
    """Distinct lower-case emails as ``S40``: QQ numbers at qq.com, two pinyin syllables + digits elsewhere.

    Syllable pairs never concatenate ambiguously, so distinct (pair, number) codes give distinct addresses.
    """
    domain = rng.choice(len(ref.EMAIL_DOMAINS), size=n, p=ref.EMAIL_DOMAIN_P)
    qq_number = unique_ints(rng, n, 10**10 - 10**5) + 10**5
    syllables = len(ref.PINYIN)
    code = unique_ints(rng, n, syllables * syllables * 10**4)
    pair = code // 10**4
    local = pc.binary_join_element_wise(
        take_text(ref.PINYIN, pair // syllables),
        take_text(ref.PINYIN, pair % syllables),
        int_to_text(code % 10**4),
        "",
    )
    local = pc.if_else(pa.array(domain == 0), int_to_text(qq_number), local)
    return arrow_to_fixed(pc.binary_join_element_wise(local, take_text(ref.EMAIL_DOMAINS, domain), "@"), 40)


def _times_in(
    rng: np.random.Generator, first_day: np.ndarray | int, last_day: np.ndarray | int, n: int
) -> np.ndarray:
    """Uniform random times (seconds) between the starts of ``first_day`` and ``last_day``."""
    lo = np.asarray(first_day, dtype=np.int64) * SECONDS_PER_DAY
    hi = np.asarray(last_day, dtype=np.int64) * SECONDS_PER_DAY
    return lo + (rng.random(n) * (hi - lo)).astype(np.int64)


def build_population(n: int, timeline: Timeline, seed: int) -> tuple[Population, Devices]:
    """Simulate ``n`` people with latent traits, identifiers and devices.

    Each step draws from its own random stream in a fixed order, so a seed gives the same population.

    Args:
        n: Number of people.
        timeline: Simulated calendar.
        seed: Run seed.

    Returns:
        The people and their devices.
    """
    rng = stream(seed, 1)
    traits = _demographics(rng, n, timeline)
    traits |= _segments(rng, n, traits)
    traits |= _commerce(rng, n, traits, timeline)
    traits |= _media(rng, n, traits)
    identifiers = _identifiers(stream(seed, 2), n, traits, timeline)
    consent = _consent(stream(seed, 3), n, traits, timeline)
    people = Population(
        person_id=np.arange(1, n + 1, dtype=np.int64),
        **{k: v for k, v in traits.items() if not k.startswith("_")},
        **identifiers,
        device_start=np.zeros(n, np.int64),
        device_count=np.zeros(n, np.int64),
        tablet=np.full(n, -1, np.int64),
        **consent,
    )
    return people, _build_devices(people, timeline, stream(seed, 4))


def _demographics(rng: np.random.Generator, n: int, timeline: Timeline) -> dict[str, np.ndarray]:
    """Households (sharing a city, sizes 1-4), gender, age, birth day and income band."""
    sizes = rng.choice(4, size=n, p=[0.45, 0.30, 0.17, 0.08]) + 1
    n_households = int(np.searchsorted(np.cumsum(sizes), n)) + 1
    household_id = np.repeat(np.arange(n_households), sizes[:n_households])[:n]
    household_size = np.bincount(household_id)[household_id]
    city = rng.choice(len(ref.CITIES), size=n_households, p=ref.CITY_WEIGHTS)[household_id]
    tier = ref.CITY_TIER[city]

    female = rng.random(n) < 0.72
    age_group = rng.choice(5, size=n, p=[0.22, 0.38, 0.22, 0.12, 0.06])
    age_hi = np.array([25, 35, 45, 55, 71])[age_group]
    age = ref.AGE_RANGE_LOWER[age_group] + (rng.random(n) * (age_hi - ref.AGE_RANGE_LOWER[age_group])).astype(
        int
    )
    birth_day = timeline.start_day - (age * 365.25).astype(np.int64) - rng.integers(1, 365, n)

    u_income = rng.random(n)
    u_income = np.where(
        age < 23, u_income * 0.75, np.where((age >= 30) & (age < 50), 0.12 + 0.88 * u_income, u_income)
    )
    income = (u_income[:, None] > np.cumsum(ref.INCOME_BY_TIER, axis=1)[tier]).sum(axis=1).clip(0, 3)
    return {
        "female": female,
        "birth_day": birth_day,
        "age": age,
        "city": city,
        "tier": tier,
        "income": income,
        "household_id": household_id,
        "household_size": household_size,
    }


def _segments(rng: np.random.Generator, n: int, t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The three latent segments (the lookalike truth) and the category affinities they tilt."""
    female, age, income, tier, household_size = (
        t["female"],
        t["age"],
        t["income"],
        t["tier"],
        t["household_size"],
    )
    seg_premium = (income >= 2) & (age >= 28) & (age <= 55) & (rng.random(n) < np.where(female, 0.6, 0.2))
    seg_young = (age <= 27) & (tier <= 2) & (rng.random(n) < 0.55)
    seg_mom = (
        female
        & (age >= 24)
        & (age <= 40)
        & (household_size >= 2)
        & (rng.random(n) < np.where(household_size >= 3, 0.7, 0.35))
    )

    alpha = np.tile(np.array([3.0, 2.2, 0.8, 1.2, 1.2, 0.3, 0.3, 0.7]), (n, 1))
    male = ~female
    alpha[male, ref.CAT["mens"]] *= 10
    alpha[male, ref.CAT["makeup"]] *= 0.15
    alpha[male, ref.CAT["skincare"]] *= 0.6
    alpha[seg_premium, ref.CAT["skincare"]] *= 2.5
    alpha[seg_premium, ref.CAT["fragrance"]] *= 2.0
    alpha[seg_young, ref.CAT["makeup"]] *= 2.5
    alpha[seg_young, ref.CAT["fragrance"]] *= 1.5
    alpha[seg_mom, ref.CAT["baby"]] *= 12
    alpha[seg_mom, ref.CAT["bodycare"]] *= 1.5
    alpha[age >= 45, ref.CAT["wellness"]] *= 3
    return {
        "seg_premium_skincare": seg_premium,
        "seg_young_trendsetter": seg_young,
        "seg_mom_baby": seg_mom,
        "affinity": _dirichlet(rng, alpha),
    }


def _commerce(
    rng: np.random.Generator, n: int, t: dict[str, np.ndarray], timeline: Timeline
) -> dict[str, np.ndarray]:
    """Membership, price sensitivity, purchase and session rates, channels, activity span and churn."""
    female, age, income = t["female"], t["age"], t["income"]
    seg_premium, seg_young, seg_mom = t["seg_premium_skincare"], t["seg_young_trendsetter"], t["seg_mom_baby"]
    price_sensitivity = np.clip(
        0.78 - 0.17 * income + rng.normal(0, 0.12, n) - 0.15 * seg_premium + 0.05 * seg_young, 0.02, 0.98
    ).astype(np.float32)
    is_member = rng.random(n) < 0.52 + 0.1 * female + 0.05 * (income >= 2)
    log_rate = (
        np.log(0.08)
        + 1.3 * rng.standard_normal(n)
        + 0.45 * is_member
        + 0.25 * seg_premium
        + 0.15 * seg_mom
        - 0.2 * price_sensitivity
    )
    purchase_rate = np.minimum(np.exp(log_rate), 8.0).astype(np.float32)

    has_openid = rng.random(n) < 0.75
    young = age < 30
    channel_alpha = np.column_stack(
        [
            1.2 + 1.0 * young,
            0.6 + 0.3 * (age >= 35),
            (1.0 + 0.4 * seg_mom) * has_openid + 1e-3,
            0.7 + 1.3 * (age >= 45),
        ]
    )
    channel_pref = _dirichlet(rng, channel_alpha * 2)
    channel_pref[~has_openid, 2] = 0.0
    channel_pref /= channel_pref.sum(axis=1, keepdims=True)
    register_channel = categorical(rng, channel_pref)
    digital = 1.0 - channel_pref[:, 3]
    session_rate = (digital * (0.07 + 0.4 * purchase_rate**0.7) * rng.gamma(2.0, 0.5, n)).astype(np.float32)

    acquired_from = timeline.start_day - 365 * ACQUISITION_YEARS
    active_from = _times_in(rng, acquired_from, timeline.end_day, n)
    rate_rank = np.argsort(np.argsort(purchase_rate)) / max(n - 1, 1)
    tenure = rng.exponential(4 * 365 * SECONDS_PER_DAY * (0.5 + rate_rank))
    churned_at = active_from + tenure.astype(np.int64)
    churned_at = np.where(churned_at < timeline.future_end * SECONDS_PER_DAY, churned_at, NEVER)
    return {
        "is_member": is_member,
        "register_channel": register_channel,
        "channel_pref": channel_pref,
        "price_sensitivity": price_sensitivity,
        "purchase_rate": purchase_rate,
        "session_rate": session_rate,
        "active_from": active_from,
        "churned_at": churned_at,
        "_has_openid": has_openid,
    }


def _media(rng: np.random.Generator, n: int, t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ad exposure and responsiveness, media and platform preferences, creator (KOL) affinity."""
    female, age, tier = t["female"], t["age"], t["tier"]
    young = age < 30
    ad_exposure = (
        rng.gamma(1.2, 1 / 1.2, n) * np.where(age < 35, 1.0, np.where(age < 45, 0.75, 0.55))
    ).astype(np.float32)
    ad_responsiveness = (rng.beta(2.0, 100.0, n) * np.where(young, 1.3, 1.0)).astype(np.float32)
    media_pref = _dirichlet(
        rng,
        np.column_stack(
            [2.0 + 1.0 * young, np.full(n, 2.0), 1.0 + 1.5 * (tier >= 3), 0.5 + 1.0 * (age >= 40)]
        )
        * 2,
    )
    kol_affinity = (
        rng.gamma(0.8, 1 / 0.8, n)
        * (
            0.08
            + 0.25 * t["seg_young_trendsetter"]
            + 0.15 * t["seg_mom_baby"]
            + 0.08 * t["seg_premium_skincare"]
            + 0.05 * female
        )
    ).astype(np.float32)
    platform_pref = _dirichlet(
        rng,
        np.column_stack(
            [
                np.full(n, 2.5),
                np.where(female & (age < 40), 2.5, 0.8),
                np.where(age < 30, 1.5, 0.3),
                np.full(n, 1.0),
            ]
        ),
    )
    return {
        "ad_exposure": ad_exposure,
        "ad_responsiveness": ad_responsiveness,
        "media_pref": media_pref,
        "kol_affinity": kol_affinity,
        "platform_pref": platform_pref,
    }


def _identifiers(
    ids: np.random.Generator, n: int, t: dict[str, np.ndarray], timeline: Timeline
) -> dict[str, np.ndarray]:
    """Phones (some people have two), emails, member numbers, WeChat ids and browser cookies."""
    is_member, has_openid = t["is_member"], t["_has_openid"]
    has_phone = ids.random(n) < np.where(is_member, 0.95, 0.70)
    two_phones = has_phone & (ids.random(n) < 0.06)
    all_phones = _phones(ids, int(has_phone.sum() + two_phones.sum()))
    phone = np.full(n, b"", dtype="S11")
    phone[has_phone] = all_phones[: has_phone.sum()]
    phone2 = np.full(n, b"", dtype="S11")
    phone2[two_phones] = all_phones[has_phone.sum() :]
    has_email = ids.random(n) < np.where(is_member, 0.5, 0.25)
    email = np.full(n, b"", dtype="S40")
    email[has_email] = _emails(ids, int(has_email.sum()))
    member_no = np.full(n, -1, dtype=np.int64)
    member_no[is_member] = unique_ints(ids, int(is_member.sum()), 9 * 10**8) + 10**8
    openid = np.full(n, b"", dtype="S28")
    openid[has_openid] = _wechat_ids(ids, int(has_openid.sum()), "oX3kq")
    has_unionid = has_openid & (ids.random(n) < 0.6)
    unionid = np.full(n, b"", dtype="S28")
    unionid[has_unionid] = _wechat_ids(ids, int(has_unionid.sum()), "oCmW5")
    cookie = _hex_ids(ids, n, 32)
    two_cookies = ids.random(n) < 0.3
    cookie2 = np.where(two_cookies, _hex_ids(ids, n, 32), cookie)
    cookie_switch = np.where(two_cookies, _times_in(ids, timeline.behaviour_from, timeline.end_day, n), NEVER)
    return {
        "member_no": member_no,
        "phone": phone,
        "phone2": phone2,
        "email": email,
        "openid": openid,
        "unionid": unionid,
        "cookie": cookie,
        "cookie2": cookie2,
        "cookie_switch": cookie_switch,
    }


def _consent(
    consent: np.random.Generator, n: int, t: dict[str, np.ndarray], timeline: Timeline
) -> dict[str, np.ndarray]:
    """Members who opt out (some opt in again later), when, and for which purpose."""
    opts_out = t["is_member"] & (consent.random(n) < 0.03)
    optout_at = np.where(
        opts_out,
        _times_in(
            consent,
            np.maximum(t["active_from"] // SECONDS_PER_DAY + 1, timeline.history_from),
            timeline.future_end,
            n,
        ),
        NEVER,
    )
    optout_purpose = consent.integers(0, 3, n)
    back_in = opts_out & (consent.random(n) < 0.15)
    optin_again_at = np.where(
        back_in, optout_at + (consent.random(n) * 60 * SECONDS_PER_DAY).astype(np.int64), NEVER
    )
    return {"optout_at": optout_at, "optout_purpose": optout_purpose, "optin_again_at": optin_again_at}


def _build_devices(people: Population, timeline: Timeline, rng: np.random.Generator) -> Devices:
    """Give every person 1-2 phones and some households a shared tablet (fills person links)."""
    n = people.n
    count = 1 + (rng.random(n) < 0.2)
    owner = np.repeat(np.arange(n), count)
    people.device_count[:] = count
    people.device_start[:] = np.cumsum(count) - count
    n_phones = len(owner)

    first_member = np.r_[True, people.household_id[1:] != people.household_id[:-1]]
    heads = np.flatnonzero(first_member & (people.household_size >= 2))
    heads = heads[rng.random(len(heads)) < 0.18]
    tablet_index = n_phones + np.arange(len(heads))
    tablet_of_household = np.full(people.household_id.max() + 1, -1, dtype=np.int64)
    tablet_of_household[people.household_id[heads]] = tablet_index
    people.tablet[:] = tablet_of_household[people.household_id]
    tablet_users = np.flatnonzero(people.tablet >= 0)

    m = n_phones + len(heads)
    is_tablet = np.arange(m) >= n_phones
    owner = np.concatenate([owner, heads])
    p_ios = 0.16 + 0.1 * people.income + 0.1 * (people.tier == 0)
    tablet_model = rng.integers(0, len(ref.TABLET_MODELS), m)
    ios = np.where(is_tablet, ref.TABLET_IS_IOS[tablet_model], rng.random(m) < p_ios[owner])
    model = np.where(
        is_tablet,
        tablet_model,
        np.where(
            ios,
            rng.integers(0, len(ref.IOS_MODELS), m),
            rng.choice(len(ref.ANDROID_MODELS), size=m, p=ref.ANDROID_MODEL_P),
        ),
    )
    app_version = rng.choice(len(ref.APP_VERSIONS), size=m, p=[0.04, 0.06, 0.1, 0.2, 0.3, 0.3])

    android = ~ios
    oaid = np.where(android, _oaids(rng, m), b"")
    android_id = np.where(android, _hex_ids(rng, m, 16), b"")
    reinstall = android & (rng.random(m) < 0.14)
    reinstall_at = np.where(reinstall, _times_in(rng, timeline.behaviour_from, timeline.end_day, m), NEVER)
    oaid2 = np.where(reinstall, _oaids(rng, m), oaid)
    android_id2 = np.where(reinstall, _hex_ids(rng, m, 16), android_id)
    has_imei = android & ~is_tablet & (rng.random(m) < 0.4)
    imei = np.full(m, b"", dtype="S15")
    imei[has_imei] = _imeis(rng, int(has_imei.sum()))
    idfa = np.where(ios, to_fixed(uuid_matrix(rng, m, upper=True)), b"")
    return Devices(
        owner=owner,
        is_tablet=is_tablet,
        ios=ios,
        model=model,
        app_version=app_version,
        oaid=oaid,
        oaid2=oaid2,
        android_id=android_id,
        android_id2=android_id2,
        reinstall_at=reinstall_at,
        imei=imei,
        idfa=idfa,
        oaid_zero=android & (rng.random(m) < 0.02),
        android_id_junk=android & (rng.random(m) < 0.01),
        idfa_lat=ios & (rng.random(m) < 0.06),
        tablet_users=tablet_users,
        tablet_user_device=people.tablet[tablet_users],
    )


def persons_table(people: Population) -> pa.Table:
    """The ``persons.parquet`` truth table: demographics, latent traits and segments."""

    def ts(values: np.ndarray) -> pa.Array:
        return pa.array(values.astype("datetime64[s]"), mask=values == NEVER)

    member = people.is_member
    member_id = np.full(people.n, b"", dtype="S10")
    member_id[member] = people.member_ids(np.flatnonzero(member))
    columns: dict[str, pa.Array] = {
        "person_id": pa.array(people.person_id),
        "gender": take_text(("M", "F"), people.female.astype(int)),
        "birth_date": pa.array(people.birth_day.astype("datetime64[D]")),
        "age": pa.array(people.age.astype(np.int16)),
        "province": take_text(ref.CITY_PROVINCES, people.city),
        "city": take_text(ref.CITY_NAMES, people.city),
        "city_tier": take_text(ref.TIERS, people.tier),
        "income_band": take_text(ref.INCOME_BANDS, people.income),
        "household_id": pa.array(people.household_id + 1),
        "household_size": pa.array(people.household_size.astype(np.int8)),
        "is_member": pa.array(member),
        "member_id": to_arrow(member_id, member),
        "register_channel": take_text(ref.CHANNELS, people.register_channel),
        "preferred_channel": take_text(ref.CHANNELS, people.channel_pref.argmax(axis=1)),
    }
    for i, name in enumerate(ref.CHANNELS):
        columns[f"channel_share_{name}"] = pa.array(people.channel_pref[:, i])
    for i, name in enumerate(ref.CATEGORIES):
        columns[f"affinity_{name}"] = pa.array(people.affinity[:, i])
    columns.update(
        {
            "price_sensitivity": pa.array(people.price_sensitivity),
            "purchase_rate": pa.array(people.purchase_rate),
            "session_rate": pa.array(people.session_rate),
            "active_from": ts(people.active_from),
            "churned_at": ts(people.churned_at),
            "ad_exposure": pa.array(people.ad_exposure),
            "ad_responsiveness": pa.array(people.ad_responsiveness),
            "kol_affinity": pa.array(people.kol_affinity),
            "seg_premium_skincare": pa.array(people.seg_premium_skincare),
            "seg_young_trendsetter": pa.array(people.seg_young_trendsetter),
            "seg_mom_baby": pa.array(people.seg_mom_baby),
            "opt_out_at": ts(people.optout_at),
            "opt_out_purpose": take_text(
                ("marketing", "ads", "all"), people.optout_purpose, people.optout_at != NEVER
            ),
            "opt_in_again_at": ts(people.optin_again_at),
        }
    )
    return pa.table(columns)


def identifiers_table(people: Population, devices: Devices) -> pa.Table:
    """The ``identifiers.parquet`` truth table (canonical values, one row per identifier and person).

    Junk values (all-zero OAID/IDFA, the buggy Android id, test phones) never appear.
    """
    parts: list[tuple[str, pa.Array, np.ndarray, np.ndarray]] = []

    def add(id_type: str, values: np.ndarray, persons: np.ndarray, shared: np.ndarray | None = None) -> None:
        flags = np.zeros(len(persons), bool) if shared is None else shared
        parts.append((id_type, to_arrow(values), persons, flags))

    n = np.arange(people.n)
    for values in (people.phone, people.phone2):
        has = values != b""
        add(
            "phone",
            to_fixed(np.hstack([const("+86", int(has.sum())), values[has].view(np.uint8).reshape(-1, 11)])),
            n[has],
        )
    has_email = people.email != b""
    add("email", people.email[has_email], n[has_email])
    member = np.flatnonzero(people.is_member)
    add("member_id", people.member_ids(member), member)
    add("wechat_openid", people.openid[people.has_openid], n[people.has_openid])
    has_union = people.unionid != b""
    add("wechat_unionid", people.unionid[has_union], n[has_union])
    add("cookie", people.cookie, n)
    second = people.cookie2 != people.cookie
    add("cookie", people.cookie2[second], n[second])

    # Device identifiers, once per device user; tablets are shared by their household.
    dev = np.concatenate([np.arange(len(devices.owner))[~devices.is_tablet], devices.tablet_user_device])
    users = np.concatenate([devices.owner[~devices.is_tablet], devices.tablet_users])
    shared = devices.is_tablet[dev]
    imei = devices.imei[dev]
    keep = imei != b""
    add("imei", np.char.lower(imei[keep]), users[keep], shared[keep])
    keep = (devices.idfa[dev] != b"") & ~devices.idfa_lat[dev]
    add("idfa", devices.idfa[dev][keep], users[keep], shared[keep])
    for values in (devices.oaid, devices.oaid2):
        keep = (values[dev] != b"") & ~devices.oaid_zero[dev]
        if values is devices.oaid2:
            keep &= devices.reinstall_at[dev] != NEVER
        add("oaid", values[dev][keep], users[keep], shared[keep])
    for values in (devices.android_id, devices.android_id2):
        keep = (values[dev] != b"") & ~devices.android_id_junk[dev]
        if values is devices.android_id2:
            keep &= devices.reinstall_at[dev] != NEVER
        add("android_id", values[dev][keep], users[keep], shared[keep])

    return pa.table(
        {
            "id_type": pa.chunked_array(
                [pa.repeat(pa.scalar(t), len(p)) for t, _, p, _ in parts], pa.string()
            ),
            "id_value": pa.chunked_array([a for _, a, _, _ in parts], pa.string()),
            "person_id": pa.array(np.concatenate([people.person_id[p] for _, _, p, _ in parts])),
            "shared": pa.array(np.concatenate([s for _, _, _, s in parts])),
        }
    ).combine_chunks()
