"""Campaign simulation: what an ad platform and the brand's shops would record after a pack (人群包) is
uploaded, with a known true effect, so the effect analysis can be checked against the truth.

The loop is the one a marketer runs: the pipeline exports a pack with a holdout (the control group is
kept out of the pack by the export, never seen here), the platform matches the pack's hashed lines to its
users, delivers the campaign to part of them, and some of the people it reached buy *because of the ad*.
This module plays the platform and the world:

    pack zips (hashed lines)  -- matched to the people whose identifiers hash to them (truth identifiers)
        -> reached people (``reach`` of the matched, each through one of their devices)
        -> ad_delivery rows: impressions (about ``impressions_per_person`` over the campaign days), clicks
           (``ctr``), cost (``cpm`` per 1,000 impressions), the platform's conversions (clickers who bought,
           and some who did not: platforms over-claim), keyed by device, ``campaign_id`` set
        -> events rows: a landing-page view for each click, an add-to-cart before each caused order
        -> orders rows: each reached person buys with the added probability ``true_effect`` (an order
           under their member id, or their phone for non-members), within three days of the first exposure
    the world's own orders for days after the generator's landing days (the generator simulates them for
    its future window; ``generation.json`` of the truth folder rebuilds the same people and orders), so
    treatment and control keep their natural purchases
    truth/campaigns/<campaign_id>.json: people matched, reached, caused purchasers and, the figure the lift
        estimates, the true incremental purchasers: pack members who bought in the window only because of
        the ad (a caused order and no natural one in the window), with their orders and revenue

Landing files go to the day they happen (``<source>/dt=<day>/<source>-<day>-campaign-<id>.<ext>``): the
daily ingest picks them up like any other file. Only people with a member id or a phone are caused to buy
(an order without either cannot be told apart by anyone, the truth included). Deterministic for a seed.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from demo import activity
from demo import reference as ref
from demo.population import EPOCH, Timeline, build_population
from demo.strings import SECONDS_PER_DAY

MD5_FORMS = {
    "phone": lambda v: hashlib.md5(v.removeprefix("+86").encode()).hexdigest(),
    "imei": lambda v: hashlib.md5(v.lower().encode()).hexdigest(),
    "idfa": lambda v: hashlib.md5(v.upper().encode()).hexdigest(),
    "oaid": lambda v: hashlib.md5(v.lower().encode()).hexdigest(),
}
"""How the md5 platforms (tencent, oceanengine) hash each ID type (as :mod:`audiences.export` writes them)."""
SHA256_FORMS = {
    t: (lambda v: hashlib.sha256(v.encode()).hexdigest()) for t in ("phone", "imei", "idfa", "oaid")
}
FORMS = {"tencent": MD5_FORMS, "oceanengine": MD5_FORMS, "csv": SHA256_FORMS}
DEVICE_TYPES = ("oaid", "idfa", "imei")
AD_SCHEMA = pa.schema(
    [(c, pa.string()) for c in ("log_id",)]
    + [("event_time", pa.timestamp("us"))]
    + [
        (c, pa.string())
        for c in (
            "media",
            "campaign_id",
            "adgroup_id",
            "creative_id",
            "event_type",
            "imei",
            "oaid",
            "idfa",
            "android_id",
            "os",
        )
    ]
    + [("cost", pa.float64())]
)
ORDER_COLUMNS = (
    "order_id",
    "line_no",
    "member_id",
    "phone",
    "order_time",
    "channel",
    "store_id",
    "sku",
    "category",
    "quantity",
    "unit_price",
    "amount",
    "status",
)


@dataclass(frozen=True)
class CampaignSpec:
    """One simulated campaign on one pack.

    Attributes:
        campaign_id: the platform's campaign id.
        media: the platform.
        pack: the pack folder (``<packs root>/<audience>/v<N>/<destination>``).
        start, end: first and last day of delivery.
        true_effect: the probability that a reached person buys because of the ad.
        reach: the share of matched people the platform reaches.
        impressions_per_person: mean impressions per reached person over the campaign.
        ctr: click-through rate per impression.
        cpm: cost per 1,000 impressions (CNY).
        window_days: the attribution window after ``end`` (the truth counts natural orders up to its end).
        seed: random seed.
    """

    campaign_id: str
    media: str
    pack: Path
    start: date
    end: date
    true_effect: float = 0.1
    reach: float = 0.8
    impressions_per_person: float = 4.0
    ctr: float = 0.03
    cpm: float = 40.0
    window_days: int = 3
    seed: int = 11


@dataclass
class CampaignTruth:
    """What the simulation did (``truth/campaigns/<campaign_id>.json``)."""

    campaign_id: str
    media: str
    pack: str
    start: str
    end: str
    window_end: str
    true_effect: float
    pack_lines: int = 0
    matched_people: int = 0
    reached_people: int = 0
    impressions: int = 0
    clicks: int = 0
    platform_conversions: int = 0
    cost: float = 0.0
    caused_purchasers: int = 0
    true_incremental_purchasers: int = 0
    """Pack members who bought in the window only because of the ad: what the conversion lift estimates."""
    true_incremental_orders: int = 0
    true_incremental_revenue: float = 0.0
    world_order_days: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def read_pack_lines(folder: Path) -> tuple[dict, dict[str, set[str]]]:
    """The manifest of a pack and its lines per ID type (from the zipped ID files)."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    lines: dict[str, set[str]] = {}
    for f in manifest.get("files") or []:
        with zipfile.ZipFile(folder / f["zip"]) as z:
            text = z.read(f["name"]).decode("utf-8").splitlines()
        header = (manifest["id_types"].get(f["id_type"]) or {}).get("platform_type")
        rows = text[1:] if folder.name in ("csv", "google", "meta") and text else text
        lines.setdefault(f["id_type"], set()).update(x for x in rows if x and x != header)
    return manifest, lines


def match_people(
    destination: str, lines: dict[str, set[str]], identifiers: pa.Table
) -> dict[int, tuple[str, str]]:
    """Person id -> the identifier ``(id_type, value)`` through which the platform matched them (as a platform
    matches hashes), a device in preference: the platform serves the campaign on it.

    Raises:
        ValueError: a destination whose hashing the simulation does not play.
    """
    forms = FORMS.get(destination)
    if forms is None:
        raise ValueError(f"cannot simulate destination {destination!r}; use one of {', '.join(FORMS)}")
    matched: dict[int, tuple[str, str]] = {}
    ids = identifiers.to_pydict()
    for id_type, value, person, shared in zip(
        ids["id_type"], ids["id_value"], ids["person_id"], ids["shared"], strict=True
    ):
        if shared or id_type not in forms or id_type not in lines:
            continue
        if forms[id_type](value) in lines[id_type]:
            p = int(person)
            if p not in matched or (matched[p][0] not in DEVICE_TYPES and id_type in DEVICE_TYPES):
                matched[p] = (id_type, value)
    return matched


def _devices(identifiers: pa.Table) -> dict[int, tuple[str, str]]:
    """Person id -> one own device ``(id_type, value)`` (OAID first, then IDFA, IMEI)."""
    out: dict[int, tuple[str, str]] = {}
    ids = identifiers.to_pydict()
    rank = {t: i for i, t in enumerate(DEVICE_TYPES)}
    for id_type, value, person, shared in zip(
        ids["id_type"], ids["id_value"], ids["person_id"], ids["shared"], strict=True
    ):
        if shared or id_type not in rank:
            continue
        p = int(person)
        if p not in out or rank[id_type] < rank[out[p][0]]:
            out[p] = (id_type, value)
    return out


def _ts(day: date, seconds: np.ndarray) -> list[datetime]:
    base = datetime(day.year, day.month, day.day)
    return [base + timedelta(seconds=int(s)) for s in seconds]


class _Writer:
    """Rows per source and day, written once at the end as one file per source and day."""

    def __init__(self, landing: Path, campaign_id: str) -> None:
        self.landing, self.tag = landing, re.sub(r"[^0-9A-Za-z]+", "_", campaign_id)
        self.rows: dict[tuple[str, date], list[dict]] = {}

    def add(self, source: str, day: date, row: dict) -> None:
        self.rows.setdefault((source, day), []).append(row)

    def write(self) -> list[str]:
        files = []
        for (source, day), rows in sorted(self.rows.items()):
            folder = self.landing / source / f"dt={day.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"{source}-{day.isoformat()}-campaign-{self.tag}"
            if source == "ad_delivery":
                path = folder / f"{stem}.parquet"
                pq.write_table(pa.Table.from_pylist(rows, AD_SCHEMA), path)
            elif source == "orders":
                path = folder / f"{stem}.csv"
                table = pa.Table.from_pylist(rows, pa.schema([(c, pa.string()) for c in ORDER_COLUMNS]))
                pcsv.write_csv(table, path, pcsv.WriteOptions(quoting_style="none"))
            else:
                path = folder / f"{stem}.jsonl"
                path.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows), encoding="utf-8")
            files.append(str(path))
        return files


def _people(truth_dir: Path) -> dict[int, dict]:
    persons = pq.read_table(truth_dir / "persons.parquet", columns=["person_id", "member_id"]).to_pydict()
    phones: dict[int, str] = {}
    ids = pq.read_table(truth_dir / "identifiers.parquet").to_pydict()
    for id_type, value, person in zip(ids["id_type"], ids["id_value"], ids["person_id"], strict=True):
        if id_type == "phone":
            phones.setdefault(int(person), value.removeprefix("+86"))
    return {
        int(p): {"member_id": m, "phone": phones.get(int(p))}
        for p, m in zip(persons["person_id"], persons["member_id"], strict=True)
    }


def world_orders(
    landing_dir: Path, truth_dir: Path, through: date
) -> tuple[list[str], dict[int, list[tuple]]]:
    """Write the world's own orders for days after the generator's landing days up to ``through`` (the
    generator simulated them for its future window; its arguments in ``generation.json`` rebuild them).

    Returns:
        The days written, and person id -> their natural ``(time, amount)`` orders from the generator's
        first landing day on (for the truth).
    """
    args = json.loads((truth_dir / "generation.json").read_text(encoding="utf-8"))
    start = date.fromisoformat(args["start"])
    timeline = Timeline.of(start, int(args["days"]), int(args["history_days"]))
    people, _ = build_population(int(args["persons"]), timeline, int(args["seed"]))
    orders = activity.simulate_orders(people, timeline, int(args["seed"]))
    day_of = orders.time // SECONDS_PER_DAY
    natural: dict[int, list[tuple]] = {}
    paid = ~orders.refunded
    for i in np.flatnonzero((day_of >= timeline.start_day) & paid):
        natural.setdefault(int(people.person_id[orders.person[i]]), []).append(
            (int(orders.time[i]), orders.quantity[i] * orders.unit_cents[i] / 100)
        )
    written = []
    last = min((through - EPOCH).days, timeline.future_end - 1)
    for d in range(timeline.end_day, last + 1):
        lines = np.flatnonzero(day_of == d)
        day = EPOCH + timedelta(days=d)
        folder = landing_dir / "orders" / f"dt={day.isoformat()}"
        path = folder / f"orders-{day.isoformat()}-world.csv"
        if path.exists():
            written.append(day.isoformat())
            continue
        folder.mkdir(parents=True, exist_ok=True)
        table = activity.order_table(people, orders, lines, np.random.default_rng(d))
        pcsv.write_csv(table, path, pcsv.WriteOptions(quoting_style="none"))
        written.append(day.isoformat())
    return written, natural


def _deliver(
    spec: CampaignSpec,
    rng: np.random.Generator,
    reached: list[int],
    devices: dict,
    out: _Writer,
    truth: CampaignTruth,
) -> dict[int, tuple[int, bool]]:
    """Impressions, clicks and cost of the reached people; returns person -> (first exposure, clicked)."""
    days = (spec.end - spec.start).days + 1
    first: dict[int, tuple[int, bool]] = {}
    for p in reached:
        n = max(1, int(rng.poisson(spec.impressions_per_person)))
        day_index = np.sort(rng.integers(0, days, n))
        seconds = np.sort(rng.integers(8 * 3600, 23 * 3600, n))
        clicked = False
        id_type, value = devices[p]
        for k in range(n):
            day = spec.start + timedelta(days=int(day_index[k]))
            when = _ts(day, np.array([seconds[k]]))[0]
            t = int((when - datetime(1970, 1, 1)).total_seconds())
            first.setdefault(p, (t, False))
            row = {
                "log_id": f"{spec.campaign_id}-{p}-{k}",
                "event_time": when,
                "media": spec.media,
                "campaign_id": spec.campaign_id,
                "adgroup_id": f"{spec.campaign_id}-AG1",
                "creative_id": None,
                "event_type": "impression",
                "imei": None,
                "oaid": None,
                "idfa": None,
                "android_id": None,
                "os": "ios" if id_type == "idfa" else "android",
                "cost": round(spec.cpm / 1000 * float(rng.lognormal(0, 0.2)), 4),
            }
            row[id_type] = value
            out.add("ad_delivery", day, row)
            truth.impressions += 1
            truth.cost += row["cost"]
            if rng.random() < spec.ctr:
                click = dict(
                    row,
                    log_id=row["log_id"] + "-c",
                    event_type="click",
                    cost=0.0,
                    event_time=when + timedelta(seconds=int(rng.integers(2, 60))),
                )
                out.add("ad_delivery", day, click)
                out.add(
                    "events",
                    day,
                    {
                        "event_id": click["log_id"] + "-pv",
                        "event_time": click["event_time"] + timedelta(seconds=5),
                        "channel": "app",
                        "event_type": "product_view",
                        id_type: value,
                        "os": row["os"],
                        "page": "campaign_landing",
                    },
                )
                truth.clicks += 1
                clicked = True
        first[p] = (first[p][0], clicked)
    return first


def simulate_campaign(landing_dir: Path, truth_dir: Path, spec: CampaignSpec) -> CampaignTruth:
    """Simulate one campaign on a pack (see the module doc) and write its landing files and truth.

    Args:
        landing_dir: the landing root (one folder per source).
        truth_dir: the generator's truth folder (persons, identifiers, generation.json); the campaign's
            truth goes to ``campaigns/<campaign_id>.json`` under it.
        spec: the campaign.

    Returns:
        The truth, also written as JSON.
    """
    landing_dir, truth_dir = Path(landing_dir), Path(truth_dir)
    rng = np.random.default_rng([spec.seed, int(hashlib.md5(spec.campaign_id.encode()).hexdigest()[:8], 16)])
    window_end = spec.end + timedelta(days=spec.window_days)
    manifest, lines = read_pack_lines(Path(spec.pack))
    truth = CampaignTruth(
        spec.campaign_id,
        spec.media,
        str(spec.pack),
        spec.start.isoformat(),
        spec.end.isoformat(),
        window_end.isoformat(),
        spec.true_effect,
        pack_lines=sum(map(len, lines.values())),
    )
    identifiers = pq.read_table(truth_dir / "identifiers.parquet")
    matched = match_people(manifest["destination"], lines, identifiers)
    # served on the matched device, or (matched by phone) on one of the person's own devices
    devices = _devices(identifiers) | {p: m for p, m in matched.items() if m[0] in DEVICE_TYPES}
    truth.matched_people = len(matched)
    candidates = sorted(p for p in matched if p in devices)
    reached = [p for p in candidates if rng.random() < spec.reach]
    truth.reached_people = len(reached)
    out = _Writer(landing_dir, spec.campaign_id)
    first = _deliver(spec, rng, reached, devices, out, truth)
    truth.world_order_days, natural = world_orders(landing_dir, truth_dir, window_end)
    _buy(spec, rng, first, _people(truth_dir), natural, devices, out, truth)
    truth.cost = round(truth.cost, 2)
    truth.files = out.write()
    folder = truth_dir / "campaigns"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{spec.campaign_id}.json").write_text(
        json.dumps(asdict(truth), indent=2) + "\n", encoding="utf-8"
    )
    return truth


def _buy(
    spec: CampaignSpec,
    rng: np.random.Generator,
    first: dict[int, tuple[int, bool]],
    people: dict[int, dict],
    natural: dict[int, list[tuple]],
    devices: dict,
    out: _Writer,
    truth: CampaignTruth,
) -> None:
    """Caused orders of the reached people (with their add-to-cart events) and the platform's conversions."""
    start_s = int((datetime.combine(spec.start, datetime.min.time()) - datetime(1970, 1, 1)).total_seconds())
    end_s = start_s + ((spec.end - spec.start).days + 1 + spec.window_days) * SECONDS_PER_DAY
    for n, (p, (t0, clicked)) in enumerate(sorted(first.items())):
        who = people.get(p) or {}
        if not (who.get("member_id") or who.get("phone")) or rng.random() >= spec.true_effect:
            if clicked and rng.random() < 0.2:  # the platform claims a conversion it did not cause
                _conversion(spec, p, t0, devices, out, truth)
            continue
        # within three days of the first exposure, and before the window closes
        t = t0 + int(rng.integers(600, max(601, min(3 * SECONDS_PER_DAY, end_s - 1 - t0))))
        when = datetime(1970, 1, 1) + timedelta(seconds=t)
        sku = int(rng.integers(0, len(ref.SKU_IDS)))
        cents = int(ref.SKU_PRICE_CENTS[sku])
        category = ref.CATEGORIES[int(np.searchsorted(ref.SKU_OFFSET, sku, side="right") - 1)]
        order_id = f"OC{when:%Y%m%d}{_digits(spec.campaign_id)}{n:06d}"
        out.add(
            "orders",
            when.date(),
            {
                "order_id": order_id,
                "line_no": "1",
                "member_id": who.get("member_id"),
                "phone": None if who.get("member_id") else who.get("phone"),
                "order_time": when.isoformat(sep=" "),
                "channel": "app",
                "store_id": None,
                "sku": ref.SKU_IDS[sku],
                "category": category,
                "quantity": "1",
                "unit_price": f"{cents / 100:.2f}",
                "amount": f"{cents / 100:.2f}",
                "status": "paid",
            },
        )
        id_type, value = devices[p]
        out.add(
            "events",
            when.date(),
            {
                "event_id": f"{order_id}-cart",
                "event_time": when - timedelta(minutes=3),
                "channel": "app",
                "event_type": "add_to_cart",
                id_type: value,
                "sku": ref.SKU_IDS[sku],
                "category": category,
            },
        )
        truth.caused_purchasers += 1
        truth.true_incremental_orders += 1
        truth.true_incremental_revenue = round(truth.true_incremental_revenue + cents / 100, 2)
        if not any(start_s <= s < end_s for s, _ in natural.get(p, [])):
            truth.true_incremental_purchasers += 1
        if clicked:
            _conversion(spec, p, min(t, end_s - 61), devices, out, truth)


def _digits(text: str) -> str:
    """Nine digits fixed by ``text`` (order ids of different campaigns never collide in practice)."""
    return f"{int(hashlib.md5(text.encode()).hexdigest()[:12], 16) % 10**9:09d}"


def _conversion(
    spec: CampaignSpec, p: int, t: int, devices: dict, out: _Writer, truth: CampaignTruth
) -> None:
    when = datetime(1970, 1, 1) + timedelta(seconds=t + 60)
    id_type, value = devices[p]
    row = {
        "log_id": f"{spec.campaign_id}-{p}-conv",
        "event_time": when,
        "media": spec.media,
        "campaign_id": spec.campaign_id,
        "adgroup_id": f"{spec.campaign_id}-AG1",
        "creative_id": None,
        "event_type": "conversion",
        "imei": None,
        "oaid": None,
        "idfa": None,
        "android_id": None,
        "os": "ios" if id_type == "idfa" else "android",
        "cost": 0.0,
    }
    row[id_type] = value
    out.add("ad_delivery", when.date(), row)
    truth.platform_conversions += 1
