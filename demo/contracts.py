"""Source contracts (``schemas/sources/*.yaml``, loaded and validated by ``schemas``) as seen by the demo
generator: column names, types and required flags, and the landing file extension of each source."""

from __future__ import annotations

from dataclasses import dataclass

from schemas import load_source

EXTENSIONS: dict[str, str] = {
    "crm_members": "csv",
    "orders": "csv.gz",
    "events": "jsonl.gz",
    "consent": "csv",
    "ad_delivery": "parquet",
    "kol_engagement": "jsonl",
    "dmp_segments": "csv",
    "demographics": "csv.gz",
}
"""Landing file extension per source."""
NUMERIC_TYPES = ("int", "long", "double", "decimal")


@dataclass(frozen=True)
class Column:
    """One contract column."""

    name: str
    type: str
    required: bool

    @property
    def numeric(self) -> bool:
        """Whether values must parse as numbers."""
        return self.type.startswith(NUMERIC_TYPES)


@dataclass(frozen=True)
class Contract:
    """The parts of a source contract the generator needs."""

    name: str
    columns: tuple[Column, ...]
    event_time: str

    @property
    def names(self) -> list[str]:
        """Column names in contract order."""
        return [c.name for c in self.columns]

    @property
    def extension(self) -> str:
        """Landing file extension (without the dot)."""
        return EXTENSIONS[self.name]

    @property
    def parquet(self) -> bool:
        """Whether the landing files are Parquet."""
        return self.extension == "parquet"

    @property
    def jsonl(self) -> bool:
        """Whether the landing files are JSON lines."""
        return self.extension.startswith("jsonl")

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        return next(c for c in self.columns if c.name == name)


def load_contracts() -> dict[str, Contract]:
    """Load the contracts of the sources the generator writes.

    Returns:
        Source name to contract, in :data:`EXTENSIONS` order.
    """
    contracts = {}
    for name in EXTENSIONS:
        spec = load_source(name, extra=[])
        columns = tuple(Column(c.name, c.type, c.required) for c in spec.columns)
        contracts[name] = Contract(name, columns, spec.event_time)
    return contracts
