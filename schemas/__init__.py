"""Contracts: one declarative YAML file per source (``sources/``) and per lake table (``tables/``).

Other packages use the loaders and models exported here; the YAML files are the contracts themselves.
"""

from schemas.contract import (
    FORMATS,
    ID_TYPES,
    PARTIES,
    PII_CLASSES,
    ColumnSpec,
    Contract,
    ContractError,
    SourceContract,
    TableContract,
    load_contract,
    spark_type,
)
from schemas.registry import contract_dirs, load_source, load_sources, load_tables

__all__ = [
    "FORMATS",
    "ID_TYPES",
    "PARTIES",
    "PII_CLASSES",
    "ColumnSpec",
    "Contract",
    "ContractError",
    "SourceContract",
    "TableContract",
    "contract_dirs",
    "load_contract",
    "load_source",
    "load_sources",
    "load_tables",
    "spark_type",
]
