"""Contracts: one declarative YAML file per source (``sources/``), per lake table (``tables/``) and per
canonical entity (``entities/``: the silver tables every source of that entity fills and the tags read).

Other packages use the loaders and models exported here; the YAML files are the contracts themselves.
"""

from schemas.contract import (
    FORMAT_OPTIONS,
    FORMATS,
    ID_TYPES,
    PARTIES,
    PII_CLASSES,
    SILVER_SOURCE,
    WHITESPACE,
    ColumnSpec,
    Contract,
    ContractError,
    EntityColumn,
    EntityContract,
    SourceColumn,
    SourceContract,
    TableContract,
    entity_problems,
    expression_fields,
    load_contract,
    load_entities,
    resolve_source,
    source_warnings,
    spark_type,
)
from schemas.registry import contract_dirs, load_source, load_sources, load_tables

__all__ = [
    "FORMATS",
    "FORMAT_OPTIONS",
    "ID_TYPES",
    "PARTIES",
    "PII_CLASSES",
    "SILVER_SOURCE",
    "WHITESPACE",
    "ColumnSpec",
    "Contract",
    "ContractError",
    "EntityColumn",
    "EntityContract",
    "SourceColumn",
    "SourceContract",
    "TableContract",
    "contract_dirs",
    "entity_problems",
    "expression_fields",
    "load_contract",
    "load_entities",
    "load_source",
    "load_sources",
    "load_tables",
    "resolve_source",
    "source_warnings",
    "spark_type",
]
