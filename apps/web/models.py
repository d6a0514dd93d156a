"""Response models of the API, for its OpenAPI document (what ad-ops scripts can rely on), and
:func:`jsonable`, which turns the domain packages' values into plain JSON. Extra fields are allowed: the
domain packages may add figures without breaking clients."""

from __future__ import annotations

import datetime as _dt
import decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_LOOKALIKE_SIZE = 50_000_000
"""The largest lookalike a request may ask for: ``jobs.audiences.lookalikes.MAX_LOOKALIKE_SIZE`` (a test keeps
them equal; the routes do not import the engine-side module)."""

Count = int | str | None
"""A count of people as the API shows it: the number from the minimum group size k up
(``CDP_MIN_GROUP_SIZE``), else the text ``"< k"``; a count that would give a smaller group away is null."""


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorOut(BaseModel):
    detail: str = Field(description="Why the request was refused, written for the person who sent it")


class EstimateOut(_Out):
    size: Count = Field(description='Consented people the rule selects ("< k" below the minimum group size)')
    population: int = Field(description="People in the profile of that date")
    opted_out: Count = Field(description="People the rule selects who opted out (not counted in size)")
    share: float | None = Field(description="size / population; null when the size is below k")
    dt: str = Field(description="Profile date used")
    seconds: float


class AudienceOut(_Out):
    audience_id: str
    version: int
    name: str
    kind: str = Field(description="rule, engagement, seed or lookalike")
    dt: str
    size: Count = Field(description='People in the version ("< k" below the minimum group size)')
    opted_out: Count
    id_type_counts: dict[str, Count] = Field(
        description="People with at least one identifier of each ID type"
    )
    created_at: str
    created_by: str
    definition: str = Field(description="The rule (JSON text)")


class AudienceListOut(BaseModel):
    audiences: list[AudienceOut]


class SizePoint(BaseModel):
    version: int
    dt: str
    label: str
    size: Count


class AudiencePageOut(BaseModel):
    audience: AudienceOut
    versions: list[AudienceOut] = Field(description="Newest first")
    sizes: list[SizePoint] = Field(description="Size of each version, oldest first")


class TaskOut(_Out):
    task_id: str
    kind: str
    owner: str
    status: str = Field(description="queued, running, done or failed")
    progress: float = Field(description="0..1")
    message: str
    result: Any = Field(default=None, description="The task's result once done (lookalike: the new audience)")
    error: str | None = None


class ManifestOut(_Out):
    pack_id: str = Field(description="<audience_id>/v<version>/<destination>; use it to download the zip")
    audience_id: str
    audience_name: str
    version: int
    destination: str
    id_types: dict[str, dict[str, Any]] = Field(
        description="Per ID type: platform type, lines, people, skipped"
    )
    people: int
    lines: int
    skipped: int
    opted_out_removed: int
    min_pack_size: int
    files: list[dict[str, Any]] = Field(description="Zipped ID files with line counts and SHA-256 checksums")
    created_at: str
    created_by: str


class SqlOut(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = Field(description="More rows existed than the limit")
    seconds: float


def jsonable(value: Any) -> Any:
    """Dates, decimals and numpy scalars as plain JSON values (dicts and lists converted throughout)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    if isinstance(value, bytes):
        return value.hex()
    return value
