"""Source contracts (``schemas/sources/*.yaml``) as seen by the demo generator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

CONTRACT_DIR = Path(__file__).resolve().parents[2] / "schemas" / "sources"
"""Where the source contracts live in the repository."""
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


def load_contracts(directory: Path = CONTRACT_DIR) -> dict[str, Contract]:
    """Load the contracts of the sources the generator writes.

    Args:
        directory: Folder with one ``<source>.yaml`` per source.

    Returns:
        Source name to contract, in :data:`EXTENSIONS` order.
    """
    contracts = {}
    for name in EXTENSIONS:
        spec = yaml.safe_load((directory / f"{name}.yaml").read_text(encoding="utf-8"))
        columns = tuple(
            Column(c["name"], str(c["type"]), bool(c.get("required", False))) for c in spec["columns"]
        )
        contracts[name] = Contract(name, columns, spec["event_time"])
    return contracts
