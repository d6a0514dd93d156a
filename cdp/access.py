"""Who may read which lake table and column: the one access policy of the web API, the web SQL page and
``cdp sql`` (``cdp.sql.LakeSQL`` builds its views from it; ``cdp lake show`` asks it before printing rows).

The threat is a curious insider with a legitimate login: nothing an analyst or a marketer can read may be
turned back into a person outside the lake, or used to find the rows of a person they already know. The
rules follow from the contracts in ``schemas/`` (a column's ``id_type`` and ``pii`` class), so a new source
or table is covered without code.

Tables, per role:

- ``vault.*`` (encrypted direct identifiers) is readable by nobody through a query, admins included: it is
  read only by the pack export that decrypts it.
- ``gold.audit_log`` is readable by admins only (the same rule as ``/api/audit``): it names who looked at
  what, and quotes the SQL people typed.
- ``bronze.*`` (raw lines, direct PII encrypted) and ``quarantine.*`` (rejected raw values, possibly a
  phone in the wrong column) are admin only.
- every other ``silver.*`` and ``gold.*`` table is readable by every role.

Columns hidden from marketers and analysts (admins see every column of the tables they may read):

- identifier values that point to one person outside the platform: every column a source contract declares
  with an ``id_type`` (member ID, device IDs, openids, cookie; phones and emails never reach silver in
  plain text), every column named after an ID type, and every column a table contract marks with an
  ``id_type`` or a ``pii`` class other than ``none``; the ``<x>_value`` column of a ``<x>_type`` /
  ``<x>_value`` pair (``gold.oneid_map.id_value``, ``gold.id_vertices.id_value``, the edges' ``src_value``,
  ``dst_value`` and ``hub_value``), which holds device IDs and member IDs in plain text;
- quasi-identifiers of the sources (``birth_date``): with city and gender an exact birth date narrows to
  one person; ``gold.profile`` carries the age and the age band for analysis;
- masks (``*_masked``, ``138****5678``, ``蔡*``): a mask leaves about 10^4 candidate phone numbers in the
  world, but anyone who knows a person's phone finds the few lake rows with that mask, which is exactly the
  look-up this policy forbids; analysis needs no mask, the keyed hash joins and counts;
- unkeyed digests (``*_md5``, ``*_sha256``, ``*_sha256_e164``, ``*_sha256_cc``): anyone can hash the 10^9
  phone numbers and reverse them; ingest no longer writes them to silver, this rule keeps an old table or a
  new source from bringing them back;
- ``gold.quality_results.observed_value`` and ``result_json``: a failed regex expectation quotes up to three
  offending values, which may be device IDs.

Kept visible: ``oneid`` and ``vid`` (numbers that exist only inside the lake), and keyed hashes
(``*_hash``, HMAC-SHA256 with the deployment's secret key): without the key nobody can compute the hash of
a phone they know, nor reverse one they read, and they still join and count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from schemas import ID_TYPES, SourceContract, TableContract, load_sources, load_tables

ROLES = ("admin", "marketer", "analyst")
"""Roles of the web service's tokens and of ``cdp sql --role``."""

ADMIN_ONLY_LAYERS = ("bronze", "quarantine")
ADMIN_ONLY_TABLES = ("gold.audit_log",)
NEVER_READABLE_LAYERS = ("vault",)

_UNKEYED_DIGEST = re.compile(r"_(md5|sha256|sha256_e164|sha256_cc)$")
_MASK = re.compile(r"_masked$")
_TYPED_VALUE = re.compile(r"^(?P<stem>.+)_value$")
# Free-text columns that quote sample values of other columns (quality/gates.py keeps up to three
# unexpected values of a failed expectation, e.g. a malformed OAID).
_QUOTES_VALUES = {"gold.quality_results": ("observed_value", "result_json")}


class AccessError(ValueError):
    """An unknown role, or a table or column the role may not read; the message says which and why."""


def check_role(role: str) -> str:
    """The role itself when it is one of :data:`ROLES`.

    Raises:
        AccessError: the role is unknown.
    """
    if role not in ROLES:
        raise AccessError(f"role {role!r}: use one of {', '.join(ROLES)}")
    return role


@dataclass(frozen=True)
class TablePolicy:
    """What one role may read: tables by name, and the columns hidden in each.

    Build it with :func:`policy_for`; the fields are the contract facts the rules need.

    Attributes:
        role: ``admin``, ``marketer`` or ``analyst``.
        identifier_columns: column names that hold a pseudonymous identifier in some source, plus the ID
            type names themselves.
        source_columns: per source-derived table (``bronze.<source>``, ``silver.<entity>``,
            ``quarantine.<source>``), columns hidden because the contract marks them direct or quasi PII.
        table_columns: per table contract, columns marked with an ``id_type`` or a ``pii`` class.
    """

    role: str
    identifier_columns: frozenset[str] = frozenset()
    source_columns: Mapping[str, frozenset[str]] = field(default_factory=dict)
    table_columns: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def table_refusal(self, table: str) -> str | None:
        """Why the role may not read ``table`` (``layer.name``), or None when it may."""
        layer = table.partition(".")[0]
        if layer in NEVER_READABLE_LAYERS:
            return f"{table} holds encrypted identifiers and is not readable through queries"
        if self.is_admin:
            return None
        if table in ADMIN_ONLY_TABLES:
            return f"{table} is readable by admins only"
        if layer in ADMIN_ONLY_LAYERS:
            return f"{layer} tables hold raw source lines and are readable by admins only"
        return None

    def can_read(self, table: str) -> bool:
        """Whether the role may read ``table`` (``layer.name``) at all."""
        return self.table_refusal(table) is None

    def visible_tables(self, all_tables: Iterable[str]) -> list[str]:
        """The tables of ``all_tables`` the role may read, sorted."""
        return sorted(t for t in all_tables if self.can_read(t))

    def column_refusal(self, table: str, column: str, all_columns: Iterable[str] = ()) -> str | None:
        """Why ``column`` of ``table`` is hidden from the role, or None when it is visible.

        Args:
            table: ``layer.name``.
            column: the column name.
            all_columns: every column of the table (a ``<x>_value`` column is an identifier when the
                table also has ``<x>_type``).
        """
        if self.is_admin:
            return None
        if column in self.identifier_columns:
            return "an identifier that points to one person outside the lake"
        if column in self.source_columns.get(table, ()) or column in self.table_columns.get(table, ()):
            return "personal data by its contract (direct, quasi or pseudonymous PII)"
        if (m := _TYPED_VALUE.match(column)) and f"{m['stem']}_type" in set(all_columns):
            return f"the identifier value of {m['stem']}_type (device IDs and member IDs in plain text)"
        if _UNKEYED_DIGEST.search(column):
            return "an unkeyed digest anyone can reverse by hashing every candidate"
        if _MASK.search(column):
            return "a mask that finds the rows of a person whose identifier one knows"
        if column in _QUOTES_VALUES.get(table, ()):
            return "may quote sample identifier values"
        return None

    def columns(self, table: str, all_columns: Iterable[str]) -> list[str]:
        """The columns of ``table`` the role may read, in the table's order.

        Raises:
            AccessError: the role may not read the table at all.
        """
        if (reason := self.table_refusal(table)) is not None:
            raise AccessError(reason)
        names = list(all_columns)
        return [c for c in names if self.column_refusal(table, c, names) is None]

    def hidden_columns(self, table: str, all_columns: Iterable[str]) -> dict[str, str]:
        """Column -> reason, for every column of ``table`` hidden from the role."""
        names = list(all_columns)
        return {c: r for c in names if (r := self.column_refusal(table, c, names)) is not None}


def _source_rules(sources: Iterable[SourceContract]) -> tuple[set[str], dict[str, frozenset[str]]]:
    identifiers: set[str] = set(ID_TYPES)
    per_table: dict[str, frozenset[str]] = {}
    for source in sources:
        identifiers |= {c.name for c in source.columns if c.id_type and c.pii != "direct"}
        personal = frozenset(c.name for c in source.columns if c.pii in ("direct", "quasi"))
        for table in (f"bronze.{source.name}", f"quarantine.{source.name}", f"silver.{source.entity}"):
            per_table[table] = per_table.get(table, frozenset()) | personal
    return identifiers, per_table


def policy_for(
    role: str,
    *,
    sources: Mapping[str, SourceContract] | None = None,
    tables: Mapping[str, TableContract] | None = None,
) -> TablePolicy:
    """The access policy of ``role``, from the source and table contracts.

    Args:
        role: one of :data:`ROLES`.
        sources: source contracts by name; every contract (``schemas.load_sources``) when omitted.
        tables: table contracts by qualified name; every contract (``schemas.load_tables``) when omitted.

    Raises:
        AccessError: the role is unknown.
        ContractError: a contract file is invalid.
    """
    check_role(role)
    if role == "admin":
        return TablePolicy(role)
    identifiers, per_source_table = _source_rules(
        (sources if sources is not None else load_sources()).values()
    )
    per_table = {
        name: frozenset(c.name for c in contract.columns if c.id_type or c.pii != "none")
        for name, contract in (tables if tables is not None else load_tables()).items()
    }
    return TablePolicy(role, frozenset(identifiers), per_source_table, per_table)
