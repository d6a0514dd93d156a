"""Campaigns tied to packs: a registration validated into a plan before anything touches the lake.

A campaign is what a marketer runs on one ad platform with one audience pack (人群包)::

    campaign_id: OE-2026-11-A        # the platform's id: delivery logs carry it in campaign_id
    media: oceanengine               # the platform the pack was uploaded to
    pack: interested_not_bought/v1/oceanengine    # <audience>/v<version>/<destination>
    budget: 5000                     # CNY, optional
    start: 2026-11-02
    end: 2026-11-08
    holdout: 0.1                     # share of the audience kept out of the pack as a control group
    attribution_window_days: 7       # purchases up to this many days after the end still count

:func:`plan_campaign` validates such a document (strict: unknown keys are refused) into a frozen
:class:`Campaign`, naming the field and the fix on any error. No SparkSession is needed.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from effect.errors import CampaignError

MEDIA = ("oceanengine", "tencent", "kuaishou", "baidu", "google", "meta", "weibo", "xiaohongshu", "other")
"""Platforms a campaign may run on (the ``media`` column of the delivery logs)."""
MAX_HOLDOUT = 0.5
"""A larger control group than this would leave most of the audience unreached."""
_PACK = re.compile(r"^(?P<audience>[^/\s]+)/v(?P<version>[1-9][0-9]*)/(?P<destination>[a-z]+)$")
_CAMPAIGN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


@dataclass(frozen=True)
class PackRef:
    """Which pack a campaign used: an audience version exported for one destination."""

    audience_id: str
    version: int
    destination: str

    def __str__(self) -> str:
        return f"{self.audience_id}/v{self.version}/{self.destination}"


def parse_pack(text: str) -> PackRef:
    """``<audience>/v<N>/<destination>`` (the pack's folder under the packs root) as a :class:`PackRef`.

    Raises:
        CampaignError: the text is not of that form.
    """
    m = _PACK.match(str(text).strip().strip("/"))
    if not m:
        raise CampaignError(
            f"pack {text!r}: use <audience>/v<N>/<destination>, e.g. interested_not_bought/v1/oceanengine "
            "(the folder of the pack under the packs root)"
        )
    return PackRef(m["audience"], int(m["version"]), m["destination"])


class _CampaignDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    campaign_id: str
    media: str
    pack: str
    start: _dt.date
    end: _dt.date
    budget: float | None = Field(default=None, ge=0)
    holdout: float = Field(default=0.0, ge=0.0, le=MAX_HOLDOUT)
    attribution_window_days: int = Field(default=7, ge=0, le=90)
    name: str | None = None

    @field_validator("campaign_id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _CAMPAIGN_ID.match(v):
            raise ValueError("use the platform's campaign id: letters, digits and _ . : - (at most 64)")
        return v

    @field_validator("media")
    @classmethod
    def _media(cls, v: str) -> str:
        v = v.lower()
        if v not in MEDIA:
            raise ValueError(f"unknown media {v!r}; use one of {', '.join(MEDIA)}")
        return v

    @model_validator(mode="after")
    def _dates(self) -> _CampaignDoc:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}; swap them")
        return self


@dataclass(frozen=True)
class Campaign:
    """A validated campaign registration (see the module doc).

    Attributes:
        campaign_id: the platform's campaign id (``campaign_id`` of the delivery logs).
        media: the platform.
        pack: the pack the campaign used.
        start: first day of delivery.
        end: last day of delivery.
        budget: the budget in CNY, or None.
        holdout: share of the audience kept out of the pack as a control group (0: no control).
        attribution_window_days: days after ``end`` in which purchases still count.
        name: a display name (the campaign id when omitted).
    """

    campaign_id: str
    media: str
    pack: PackRef
    start: _dt.date
    end: _dt.date
    budget: float | None = None
    holdout: float = 0.0
    attribution_window_days: int = 7
    name: str | None = None

    @property
    def window_end(self) -> _dt.date:
        """The last day whose purchases count for the campaign."""
        return self.end + _dt.timedelta(days=self.attribution_window_days)

    def to_row(self) -> dict[str, Any]:
        """The campaign as a ``gold.campaigns`` row (without the registration time and author)."""
        row = asdict(self)
        row.pop("pack")
        return row | {
            "name": self.name or self.campaign_id,
            "audience_id": self.pack.audience_id,
            "version": self.pack.version,
            "destination": self.pack.destination,
            "start_date": row.pop("start"),
            "end_date": row.pop("end"),
            "holdout_share": row.pop("holdout"),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Campaign:
        """A campaign from its ``gold.campaigns`` row."""
        return cls(
            campaign_id=row["campaign_id"],
            media=row["media"],
            pack=PackRef(row["audience_id"], int(row["version"]), row["destination"]),
            start=row["start_date"],
            end=row["end_date"],
            budget=None if row.get("budget") is None else float(row["budget"]),
            holdout=float(row.get("holdout_share") or 0.0),
            attribution_window_days=int(row.get("attribution_window_days") or 0),
            name=row.get("name"),
        )


def plan_campaign(document: dict[str, Any]) -> Campaign:
    """Validate a campaign registration (see the module doc) into a :class:`Campaign`.

    Raises:
        CampaignError: a field is missing, unknown or out of range; the message names it and the fix.
    """
    try:
        doc = _CampaignDoc.model_validate(document)
    except ValidationError as exc:
        reasons = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ())) or "campaign"
            msg = str(e.get("msg", "")).removeprefix("Value error, ")
            if e.get("type") == "extra_forbidden":
                msg = f"unknown field; use {', '.join(_CampaignDoc.model_fields)}"
            reasons.append(f"{where}: {msg}")
        raise CampaignError("campaign: " + "; ".join(reasons)) from None
    pack = parse_pack(doc.pack)
    return Campaign(
        campaign_id=doc.campaign_id,
        media=doc.media,
        pack=pack,
        start=doc.start,
        end=doc.end,
        budget=doc.budget,
        holdout=doc.holdout,
        attribution_window_days=doc.attribution_window_days,
        name=doc.name,
    )
