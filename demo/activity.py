"""Behaviour simulation: orders, app/web/mini-program events, ad delivery and KOL engagement.

All behaviour is driven by the latent traits in :class:`~demo.population.Population`
and restricted to each person's active window ``[active_from, churned_at)``. Orders are
simulated once for the whole calendar (history, landing days and the future window);
events, ad logs and engagements are simulated one day at a time. Builders return Arrow
tables whose text columns already hold the raw (noisy) values written to landing files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from demo import reference as ref
from demo.noise import case_variants, imei_variants, phone_variants, set_junk, with_junk
from demo.population import Devices, Population, Timeline, categorical, stream
from demo.strings import (
    HEX_LOWER,
    SECONDS_PER_DAY,
    cents_to_text,
    civil_from_days,
    const,
    date_matrix,
    digits,
    int_to_text,
    random_chars,
    take_text,
    timestamp_matrix,
    to_arrow,
    uuid_matrix,
)

HOUR_WEIGHTS = np.array(
    [
        [1.2, 0.7, 0.4, 0.25, 0.2, 0.25, 0.5, 1.0, 1.6, 2.0, 2.3, 2.4],  # 00:00-11:59
        [2.6, 2.4, 2.2, 2.2, 2.3, 2.4, 2.6, 3.0, 3.6, 4.0, 3.6, 2.4],  # 12:00-23:59
    ]
).ravel()
HOUR_P = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
EVENT_TYPES: tuple[str, ...] = (
    "app_open",
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "follow",
    "share",
    "review",
)
EVENT_TYPE_P = np.array([0.0, 0.22, 0.45, 0.12, 0.09, 0.04, 0.04, 0.04])
EV = {name: i for i, name in enumerate(EVENT_TYPES)}
LOGIN_SHARE = np.array([0.6, 0.35, 0.55])  # app, web, mini-program sessions with member_id


def day_weight(days: np.ndarray) -> np.ndarray:
    """Relative shopping intensity per day: weekends and e-commerce festivals (11.11, 6.18, ...)."""
    days = np.asarray(days, dtype=np.int64)
    _, month, day = civil_from_days(days)
    weight = 1.0 + 0.12 * ((days + 3) % 7 >= 5)
    for m, d_from, d_to, factor in (
        (11, 11, 11, 3.5),
        (11, 10, 10, 1.7),
        (11, 1, 1, 1.8),
        (11, 2, 9, 1.2),
        (6, 18, 18, 2.5),
        (6, 1, 17, 1.15),
        (12, 12, 12, 1.6),
        (3, 8, 8, 1.5),
        (5, 20, 20, 1.3),
        (2, 14, 14, 1.3),
    ):
        weight = np.where((month == m) & (day >= d_from) & (day <= d_to), weight * factor, weight)
    return weight


def time_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after midnight following the daily activity profile (evening peak)."""
    return rng.choice(24, size=n, p=HOUR_P) * 3600 + rng.integers(0, 3600, n)


def ts_text(seconds: np.ndarray) -> pa.StringArray:
    """Format seconds as ``YYYY-MM-DD HH:MM:SS`` strings."""
    return to_arrow(timestamp_matrix(seconds))


def uuid_text(rng: np.random.Generator, n: int) -> pa.StringArray:
    """``n`` random lower-case UUID strings (record keys)."""
    return to_arrow(uuid_matrix(rng, n))


def member_id_text(
    people: Population,
    persons: np.ndarray,
    valid: np.ndarray,
    rng: np.random.Generator,
    lower_share: float = 0.02,
) -> pa.StringArray:
    """Raw member ids of ``persons`` (null where not ``valid``); a few typed in lower case."""
    ids = np.full(len(persons), b"", dtype="S10")
    ids[valid] = people.member_ids(persons[valid])
    return to_arrow(case_variants(rng, ids, valid, lower_share, upper=False), valid)


def phone_text(
    values: np.ndarray, valid: np.ndarray, rng: np.random.Generator, junk_share: float = 0.0
) -> pa.StringArray:
    """Raw phone numbers: canonical digits reformatted in places, optionally some test numbers."""
    raw = phone_variants(rng, values, valid)
    raw, valid = with_junk(rng, raw, valid, np.ones(len(values), bool), junk_share, ref.JUNK_PHONES)
    return to_arrow(raw, valid)


def active_mask(people: Population, persons: np.ndarray, when: np.ndarray) -> np.ndarray:
    """Whether each person is an active customer at the given time."""
    return (when >= people.active_from[persons]) & (when < people.churned_at[persons])


def pick_device(
    people: Population, persons: np.ndarray, rng: np.random.Generator, tablet_share: float
) -> np.ndarray:
    """A device used by each person: one of their phones or, sometimes, the family tablet."""
    own = people.device_start[persons] + (rng.random(len(persons)) * people.device_count[persons]).astype(
        np.int64
    )
    tablet = people.tablet[persons]
    return np.where((tablet >= 0) & (rng.random(len(persons)) < tablet_share), tablet, own)


def device_columns(
    devices: Devices,
    dev: np.ndarray,
    when: np.ndarray,
    rng: np.random.Generator,
    *,
    fields: tuple[str, ...],
    imei_share: float = 1.0,
    android_id_share: float = 1.0,
    junk_share: float = 0.0,
    variant_share: float = 0.0,
) -> dict[str, pa.Array]:
    """Raw device identifier columns for rows observed on devices ``dev`` at times ``when``.

    Device-level junk (all-zero OAID, limited-ad-tracking IDFA, the buggy Android id) is always
    applied; ``junk_share`` of rows additionally carry only junk ids, and ``variant_share`` of
    values come in a non-canonical case or format.

    Args:
        devices: Device table.
        dev: Device index per row.
        when: Observation time per row (selects ids before/after an app reinstall).
        rng: Random generator.
        fields: Which of ``oaid``, ``idfa``, ``android_id``, ``imei`` to produce.
        imei_share: Share of rows on IMEI-bearing devices that carry the IMEI.
        android_id_share: Share of Android rows that carry the Android id.
        junk_share: Share of rows whose ids are all junk.
        variant_share: Share of values with case/format variants.

    Returns:
        Column name to Arrow string array.
    """
    n = len(dev)
    ios = devices.ios[dev]
    android = ~ios
    junk = rng.random(n) < junk_share
    oaid, android_id = devices.ids_at(dev, when)
    out: dict[str, pa.Array] = {}
    if "oaid" in fields:
        values, valid = set_junk(
            oaid, android.copy(), android & (devices.oaid_zero[dev] | junk), ref.JUNK_OAID
        )
        values = case_variants(
            rng, values, android & ~devices.oaid_zero[dev] & ~junk, variant_share, upper=True
        )
        out["oaid"] = to_arrow(values, valid)
    if "idfa" in fields:
        values, valid = set_junk(
            devices.idfa[dev], ios.copy(), ios & (devices.idfa_lat[dev] | junk), ref.JUNK_IDFA
        )
        values = case_variants(
            rng, values, ios & ~devices.idfa_lat[dev] & ~junk, 2 * variant_share, upper=False
        )
        out["idfa"] = to_arrow(values, valid)
    if "android_id" in fields:
        valid = android & (rng.random(n) < android_id_share)
        values, valid = set_junk(
            android_id, valid, valid & (devices.android_id_junk[dev] | junk), ref.JUNK_ANDROID_ID
        )
        values = case_variants(
            rng, values, valid & ~devices.android_id_junk[dev] & ~junk, variant_share, upper=True
        )
        out["android_id"] = to_arrow(values, valid)
    if "imei" in fields:
        imei = devices.imei[dev]
        valid = (imei != b"") & (rng.random(n) < imei_share)
        values = imei_variants(rng, imei, valid & ~junk, variant_share)
        values, valid = with_junk(rng, values, valid, android & junk, 1.0, ref.JUNK_IMEIS[:2])
        out["imei"] = to_arrow(values, valid)
    return out


def _null(n: int) -> pa.Array:
    """``n`` null strings."""
    return pa.nulls(n, pa.string())


def pick_sku(
    rng: np.random.Generator, people: Population, persons: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A category (by affinity) and a SKU within it (price point by price sensitivity) per row."""
    category = categorical(rng, people.affinity[persons])
    sensitivity = people.price_sensitivity[persons]
    position = rng.beta(0.6 + 2 * (1 - sensitivity), 0.6 + 2 * sensitivity)
    within = np.minimum((position * ref.SKU_COUNT[category]).astype(np.int64), ref.SKU_COUNT[category] - 1)
    return category, ref.SKU_OFFSET[category] + within


@dataclass
class Orders:
    """Simulated order lines over the whole calendar (arrays indexed by line)."""

    order_seq: np.ndarray
    person: np.ndarray
    time: np.ndarray
    line_no: np.ndarray
    channel: np.ndarray
    member: np.ndarray
    phone: np.ndarray
    store: np.ndarray
    sku: np.ndarray
    quantity: np.ndarray
    unit_cents: np.ndarray
    refunded: np.ndarray

    @property
    def n_orders(self) -> int:
        """Number of distinct orders."""
        return int(self.order_seq.max()) + 1 if len(self.order_seq) else 0


def simulate_orders(people: Population, timeline: Timeline, seed: int) -> Orders:
    """Simulate every order from the start of history to the end of the future window.

    Purchases follow a per-person Poisson process with rate ``purchase_rate`` (per 30 days)
    modulated by :func:`day_weight`; categories follow affinities, price points follow price
    sensitivity, channels follow the channel preference.

    Args:
        people: Population.
        timeline: Calendar.
        seed: Run seed.

    Returns:
        Order lines sorted by time.
    """
    rng = stream(seed, 10)
    first, last = timeline.history_from, timeline.future_end
    weight = day_weight(np.arange(first, last))
    cum = np.concatenate([[0.0], np.cumsum(weight)])

    def cum_at(seconds: np.ndarray) -> np.ndarray:
        x = np.clip(seconds / SECONDS_PER_DAY, first, last) - first
        k = np.minimum(x.astype(np.int64), len(weight) - 1)
        return cum[k] + (x - k) * weight[k]

    lo, hi = cum_at(people.active_from), cum_at(people.churned_at)
    counts = rng.poisson(people.purchase_rate / 30.0 * (hi - lo))
    person = np.repeat(np.arange(people.n), counts)
    u = lo[person] + rng.random(len(person)) * (hi - lo)[person]
    day = np.minimum(np.searchsorted(cum, u, side="right") - 1, len(weight) - 1)
    time = (first + day) * SECONDS_PER_DAY + time_of_day(rng, len(person))
    keep = active_mask(people, person, time)
    person, time = person[keep], time[keep]
    order = np.argsort(time, kind="stable")
    person, time = person[order], time[order]
    n_orders = len(person)

    channel = categorical(rng, people.channel_pref[person])
    member_order = people.is_member[person] & (rng.random(n_orders) < 0.9)
    has_phone = people.has_phone[person]
    second = people.phone2[person] != b""
    use_second = second & np.where(
        member_order, False, rng.random(n_orders) < np.where(people.is_member[person], 0.7, 0.5)
    )
    phone = np.where(use_second, people.phone2[person], people.phone[person])
    with_phone = np.where(member_order, has_phone & (rng.random(n_orders) < 0.3), has_phone)
    phone = np.where(with_phone, phone, b"")
    channel = np.where(~member_order & ~with_phone, 3, channel)
    tier = people.tier[person]
    store = np.where(
        channel == 3,
        people.city[person] * 100 + (rng.random(n_orders) * ref.STORES_PER_TIER[tier]).astype(np.int64),
        -1,
    )
    refunded = rng.random(n_orders) < 0.03
    sale_day = day_weight(time // SECONDS_PER_DAY) > 1.5

    lines = rng.choice(3, size=n_orders, p=[0.75, 0.2, 0.05]) + 1
    o = np.repeat(np.arange(n_orders), lines)
    line_no = np.arange(len(o)) - np.repeat(np.cumsum(lines) - lines, lines) + 1
    p = person[o]
    _, sku = pick_sku(rng, people, p)
    discount = rng.choice(4, size=len(o), p=[0.55, 0.25, 0.15, 0.05]) * 0.1 + 0.1 * (
        sale_day[o] & (rng.random(len(o)) < 0.6)
    )
    unit_cents = (np.round(ref.SKU_PRICE_CENTS[sku] * (1 - discount) / 10) * 10).astype(np.int64)
    quantity = rng.choice(4, size=len(o), p=[0.82, 0.13, 0.04, 0.01]) + 1
    return Orders(
        order_seq=o,
        person=p,
        time=time[o],
        line_no=line_no,
        channel=channel[o],
        member=member_order[o],
        phone=phone[o],
        store=store[o],
        sku=sku,
        quantity=quantity,
        unit_cents=unit_cents,
        refunded=refunded[o],
    )


def order_table(people: Population, orders: Orders, lines: np.ndarray, rng: np.random.Generator) -> pa.Table:
    """Raw ``orders`` rows for the order lines at ``lines``."""
    n = len(lines)
    seq = orders.order_seq[lines]
    time = orders.time[lines]
    person = orders.person[lines]
    phone = orders.phone[lines]
    category = np.searchsorted(ref.SKU_OFFSET, orders.sku[lines], side="right") - 1
    store = orders.store[lines]
    in_store = store >= 0
    amount = orders.quantity[lines] * orders.unit_cents[lines]
    return pa.table(
        {
            "order_id": order_ids(time, seq),
            "line_no": int_to_text(orders.line_no[lines]),
            "member_id": member_id_text(people, person, orders.member[lines], rng),
            "phone": phone_text(phone, phone != b"", rng),
            "order_time": ts_text(time),
            "channel": take_text(ref.CHANNELS, orders.channel[lines]),
            "store_id": to_arrow(np.hstack([const("ST", n), digits(np.maximum(store, 0), 4)]), in_store),
            "sku": take_text(ref.SKU_IDS, orders.sku[lines]),
            "category": take_text(ref.CATEGORIES, category),
            "quantity": int_to_text(orders.quantity[lines]),
            "unit_price": cents_to_text(orders.unit_cents[lines]),
            "amount": cents_to_text(amount),
            "status": take_text(("paid", "refunded"), orders.refunded[lines].astype(int)),
        }
    )


def order_ids(time: np.ndarray, seq: np.ndarray) -> pa.StringArray:
    """Order ids ``O`` + order date (``YYYYMMDD``) + 9-digit global sequence number."""
    date = date_matrix(time // SECONDS_PER_DAY)
    return to_arrow(
        np.hstack([const("O", len(seq)), date[:, 0:4], date[:, 5:7], date[:, 8:10], digits(seq, 9)])
    )


def future_purchases(people: Population, orders: Orders, timeline: Timeline) -> pa.Table:
    """Per person: orders and net amount (CNY, refunds excluded) in the 30 days after the landing days."""
    future = orders.time >= timeline.end_day * SECONDS_PER_DAY
    first_line = future & (orders.line_no == 1)
    purchases = np.bincount(orders.person[first_line], minlength=people.n)
    paid = future & ~orders.refunded
    cents = np.bincount(
        orders.person[paid], weights=orders.quantity[paid] * orders.unit_cents[paid], minlength=people.n
    )
    return pa.table(
        {
            "person_id": pa.array(people.person_id),
            "purchases": pa.array(purchases.astype(np.int32)),
            "amount": pa.array(np.round(cents / 100, 2)),
        }
    )


def events_table(people: Population, devices: Devices, day: int, rng: np.random.Generator) -> pa.Table:
    """Raw ``events`` rows for one day: sessions on the app, the web site and the mini-program."""
    day_start = day * SECONDS_PER_DAY
    intensity = np.sqrt(day_weight(np.array([day])))[0]
    sessions = rng.poisson(people.session_rate * intensity)
    person = np.repeat(np.arange(people.n), sessions)
    start = day_start + time_of_day(rng, len(person))
    keep = active_mask(people, person, start)
    person, start = person[keep], start[keep]
    n_sessions = len(person)
    channel = categorical(rng, people.channel_pref[person, :3])
    logged_in = people.is_member[person] & (rng.random(n_sessions) < LOGIN_SHARE[channel])
    dev = np.where(channel == 0, pick_device(people, person, rng, 0.3), people.device_start[person])
    desktop = (channel == 1) & (rng.random(n_sessions) < 0.55)
    web_os = np.where(desktop, rng.integers(0, 2, n_sessions), 2 + devices.ios[dev])

    length = np.minimum(rng.geometric(0.3, n_sessions), 12)
    s = np.repeat(np.arange(n_sessions), length)
    pos = np.arange(len(s)) - np.repeat(np.cumsum(length) - length, length)
    n = len(s)
    p = person[s]
    ch = channel[s]
    time = start[s] + pos * 35 + rng.integers(0, 35, n)
    opening = np.where(ch == 0, EV["app_open"], EV["page_view"])
    kind = np.where(pos == 0, opening, rng.choice(len(EVENT_TYPES), size=n, p=EVENT_TYPE_P))
    to_cart = (kind == EV["product_view"]) & (
        rng.random(n) < np.minimum(0.3, 0.04 + 0.12 * people.purchase_rate[p])
    )
    kind = np.where(to_cart, EV["add_to_cart"], kind)
    has_sku = np.isin(kind, [EV[k] for k in ("product_view", "add_to_cart", "share", "review")])
    category_page = (kind == EV["page_view"]) & (pos > 0)
    has_category = has_sku | category_page | (kind == EV["search"])
    category, sku = pick_sku(rng, people, p)
    sku_text = take_text(ref.SKU_IDS, sku)
    category_text = take_text(ref.CATEGORIES, category)
    page = take_text(
        ("home", "search", "brand"), np.select([kind == EV["search"], kind == EV["follow"]], [1, 2], 0)
    )
    page = pc.if_else(
        pa.array(category_page), pc.binary_join_element_wise("category/", category_text, ""), page
    )
    page = pc.if_else(pa.array(has_sku), pc.binary_join_element_wise("product/", sku_text, ""), page)

    app, web, mini = ch == 0, ch == 1, ch == 2
    d = dev[s]
    ids = device_columns(
        devices, d, time, rng, fields=("oaid", "idfa", "android_id", "imei"), variant_share=0.01
    )
    app_mask = pa.array(app)
    for name in ids:
        ids[name] = pc.if_else(app_mask, ids[name], _null(n))
    junk_imei, junk_valid = with_junk(
        rng,
        np.full(n, b"", "S15"),
        np.zeros(n, bool),
        app & ~devices.ios[d] & (devices.imei[d] == b""),
        0.1,
        (*ref.JUNK_IMEIS, ""),
    )
    ids["imei"] = pc.coalesce(ids["imei"], to_arrow(junk_imei, junk_valid))
    cookie = np.where(time >= people.cookie_switch[p], people.cookie2[p], people.cookie[p])
    brand, model = devices.brand_model
    dev_index = pa.array(d)
    os_name = take_text(ref.WEB_OS, np.where(web, web_os[s], 2 + devices.ios[d]))
    table = pa.table(
        {
            "event_id": uuid_text(rng, n),
            "event_time": ts_text(time),
            "channel": take_text(ref.CHANNELS, ch),
            "event_type": take_text(EVENT_TYPES, kind),
            "member_id": member_id_text(people, p, logged_in[s], rng),
            **ids,
            "cookie_id": to_arrow(cookie, web),
            "wechat_openid": to_arrow(people.openid[p], mini),
            "os": os_name,
            "device_brand": pc.if_else(pa.array(web), _null(n), brand.take(dev_index)),
            "device_model": pc.if_else(pa.array(web), _null(n), model.take(dev_index)),
            "app_version": take_text(ref.APP_VERSIONS, devices.app_version[d], app),
            "page": page,
            "sku": pc.if_else(pa.array(has_sku), sku_text, _null(n)),
            "category": pc.if_else(pa.array(has_category), category_text, _null(n)),
        }
    )
    return table.take(pa.array(np.argsort(time, kind="stable")))


def ads_table(people: Population, devices: Devices, day: int, rng: np.random.Generator) -> pa.Table:
    """Raw ``ad_delivery`` rows for one day: impressions, clicks and conversions per device."""
    day_start = day * SECONDS_PER_DAY
    intensity = np.sqrt(day_weight(np.array([day])))[0]
    person = np.repeat(np.arange(people.n), rng.poisson(people.ad_exposure * intensity))
    time = day_start + time_of_day(rng, len(person))
    keep = active_mask(people, person, time)
    person, time = person[keep], time[keep]
    n_imp = len(person)
    media = categorical(rng, people.media_pref[person])
    affinity = people.affinity[person][:, ref.CAMPAIGN_CAT]
    campaign = categorical(rng, ref.CAMPAIGN_MEDIA.T[media] * (0.25 + affinity))
    match = affinity[np.arange(n_imp), campaign]
    click = rng.random(n_imp) < people.ad_responsiveness[person] * (0.3 + 4 * match)
    convert = click & (
        rng.random(n_imp) < (0.03 + 0.25 * match) * np.minimum(1.0, people.purchase_rate[person] + 0.2)
    )
    dev = pick_device(people, person, rng, 0.1)
    adgroup = campaign * ref.ADGROUPS_PER_CAMPAIGN + rng.integers(0, ref.ADGROUPS_PER_CAMPAIGN, n_imp)
    creative = adgroup * ref.CREATIVES_PER_ADGROUP + rng.integers(0, ref.CREATIVES_PER_ADGROUP, n_imp)

    rows = np.concatenate([np.arange(n_imp), np.flatnonzero(click), np.flatnonzero(convert)])
    kind = np.repeat([0, 1, 2], [n_imp, int(click.sum()), int(convert.sum())])
    when = time[rows] + np.select(
        [kind == 1, kind == 2], [rng.integers(2, 90, len(rows)), rng.integers(120, 3600, len(rows))], 0
    )
    when = np.minimum(when, day_start + SECONDS_PER_DAY - 1)
    order = np.lexsort((kind, when))
    rows, kind, when = rows[order], kind[order], when[order]
    n = len(rows)
    c = campaign[rows]
    cost = np.select([kind == 0, kind == 1], [ref.CAMPAIGN_CPM[c] / 1000, ref.CAMPAIGN_CPC[c]], 0.0)
    cost = np.round(cost * rng.lognormal(0, 0.2, n), 4)
    ids = device_columns(
        devices,
        dev[rows],
        when,
        rng,
        fields=("oaid", "idfa", "android_id", "imei"),
        imei_share=0.6,
        android_id_share=0.3,
        junk_share=0.025,
        variant_share=0.05,
    )
    return pa.table(
        {
            "log_id": to_arrow(random_chars(rng, n, 32, HEX_LOWER)),
            "event_time": pa.array(when.astype("datetime64[s]")).cast(pa.timestamp("us")),
            "media": take_text(ref.MEDIA, media[rows]),
            "campaign_id": take_text(ref.CAMPAIGN_IDS, c),
            "adgroup_id": to_arrow(np.hstack([const("AG", n), digits(100000 + adgroup[rows], 6)])),
            "creative_id": to_arrow(np.hstack([const("CR", n), digits(1000000 + creative[rows], 7)])),
            "event_type": take_text(("impression", "click", "conversion"), kind),
            **ids,
            "os": take_text(("android", "ios"), devices.ios[dev[rows]].astype(int)),
            "cost": pa.array(cost),
        }
    )


def kol_table(people: Population, devices: Devices, day: int, rng: np.random.Generator) -> pa.Table:
    """Raw ``kol_engagement`` rows for one day: engagement with creator content per device."""
    day_start = day * SECONDS_PER_DAY
    intensity = np.sqrt(day_weight(np.array([day])))[0]
    person = np.repeat(np.arange(people.n), rng.poisson(people.kol_affinity * intensity))
    time = day_start + time_of_day(rng, len(person))
    keep = active_mask(people, person, time)
    person, time = person[keep], time[keep]
    order = np.argsort(time, kind="stable")
    person, time = person[order], time[order]
    n = len(person)
    segment_match = np.column_stack(
        [
            people.seg_premium_skincare[person],
            people.seg_young_trendsetter[person],
            people.seg_mom_baby[person],
        ]
    )
    boost = 1 + 3 * segment_match[:, np.maximum(ref.CREATOR_SEGMENT, 0)] * (ref.CREATOR_SEGMENT >= 0)
    weights = (
        (0.03 + people.affinity[person] @ ref.CREATOR_FOCUS.T)
        * people.platform_pref[person][:, ref.CREATOR_PLATFORM]
        * boost
    )
    creator = categorical(rng, weights)
    matched = boost[np.arange(n), creator] > 1
    action_w = np.tile(ref.KOL_ACTION_P, (n, 1))
    action_w[:, 4:] *= np.where(matched, 2.0, 1.0)[:, None]
    action = categorical(rng, action_w)
    platform = ref.CREATOR_PLATFORM[creator]
    content = rng.integers(0, ref.CONTENTS_PER_CREATOR, n)
    dev = pick_device(people, person, rng, 0.15)
    ids = device_columns(
        devices,
        dev,
        time,
        rng,
        fields=("oaid", "idfa", "android_id"),
        android_id_share=0.5,
        junk_share=0.02,
        variant_share=0.02,
    )
    openid = (action == 6) & people.has_openid[person] & (rng.random(n) < 0.7)
    return pa.table(
        {
            "engagement_id": uuid_text(rng, n),
            "event_time": ts_text(time),
            "platform": take_text(ref.PLATFORMS, platform),
            "creator_id": take_text(ref.CREATOR_IDS, creator),
            "creator_name": take_text(ref.CREATOR_NAMES, creator),
            "content_id": to_arrow(
                np.hstack([const("CT", n), digits(1001 + creator, 4), digits(content, 5)])
            ),
            "content_type": take_text(
                [t for types in ref.PLATFORM_CONTENT_TYPES for t in types], platform * 2 + (content % 5 == 0)
            ),
            "action": take_text(ref.KOL_ACTIONS, action),
            **ids,
            "wechat_openid": to_arrow(people.openid[person], openid),
        }
    )
