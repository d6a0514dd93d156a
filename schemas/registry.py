"""Finds contract files: the packaged ``schemas/sources`` and ``schemas/tables``, plus any folders named in
``CDP_CONTRACT_PATH`` (``Settings.contract_paths``). A new source is one new file in one of these folders; no
code changes. Source contracts come back resolved against their canonical entity (``schemas/entities``,
:func:`schemas.contract.load_entities`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cdp.settings import Settings
from schemas.contract import (
    Contract,
    ContractError,
    EntityContract,
    SourceContract,
    TableContract,
    load_contract,
    load_entities,
)

__all__ = ["contract_dirs", "load_entities", "load_source", "load_sources", "load_tables"]

PACKAGED_DIR = Path(__file__).resolve().parent


def contract_dirs(extra: Iterable[str | Path] | None = None) -> list[Path]:
    """Folders searched for contracts, packaged first.

    Args:
        extra: more folders; ``Settings.from_env().contract_paths`` (``CDP_CONTRACT_PATH``) when omitted.

    Raises:
        SettingsError: ``extra`` is omitted and the environment holds an unusable setting.
    """
    if extra is None:
        extra = Settings.from_env().contract_paths
    return [PACKAGED_DIR / "sources", PACKAGED_DIR / "tables", *(Path(p) for p in extra)]


def _load_all(dirs: list[Path]) -> list[Contract]:
    contracts: dict[tuple[str, str], tuple[Contract, Path]] = {}
    for folder in dirs:
        if folder.parent == PACKAGED_DIR and not folder.is_dir():
            continue
        if not folder.is_dir():
            raise ContractError(f"{folder}: contract folder does not exist (check CDP_CONTRACT_PATH)")
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            contract = load_contract(path)
            if isinstance(contract, EntityContract):
                raise ContractError(f"{path}: kind: entity; canonical entities live in schemas/entities only")
            key = (contract.kind, contract.name)
            if key in contracts:
                raise ContractError(
                    f"{path}: {contract.kind} {contract.name!r} is already defined in "
                    f"{contracts[key][1]}; remove one of them"
                )
            contracts[key] = (contract, path)
    return [c for c, _ in contracts.values()]


def load_sources(extra: Iterable[str | Path] | None = None) -> dict[str, SourceContract]:
    """Every source contract by name.

    Raises:
        ContractError: a contract file is invalid or a name is defined twice.
    """
    found = _load_all(contract_dirs(extra))
    return {c.name: c for c in found if isinstance(c, SourceContract)}


def load_source(name: str, extra: Iterable[str | Path] | None = None) -> SourceContract:
    """The source contract called ``name``.

    Raises:
        ContractError: no such source, or a contract file is invalid.
    """
    sources = load_sources(extra)
    if name not in sources:
        raise ContractError(
            f"no source contract named {name!r}; known sources: {', '.join(sorted(sources))}. "
            "Add schemas/sources/<name>.yaml to define one."
        )
    return sources[name]


def load_tables(extra: Iterable[str | Path] | None = None) -> dict[str, TableContract]:
    """Every table contract by qualified name (``gold.oneid_map``)."""
    found = _load_all(contract_dirs(extra))
    return {c.name: c for c in found if isinstance(c, TableContract)}
