"""Right to deletion (PIPL art. 47): who an erasure request names, which rows of each lake table are theirs,
and the digests an erasure is recorded and enforced with.

    request: TYPE:VALUE identifiers, OneIDs, or a file of either         (parse_request, load_request_file)
      -> normalised by ID type; keyed hash; the form gold.oneid_map holds  (build_request_identifiers)
      -> every OneID those identifiers had in any snapshot of gold.oneid_map, and every identifier of those
         OneIDs in that snapshot                                           (build_person_identifiers)
      -> ErasureTargets on the driver: OneIDs, identifiers in map form and as keyed hashes
      -> per table, the person's rows as a join with a small source of values       (table_match)
           silver/gold/vault: by column, from the contracts and names: identifier columns of the source
             contracts (pseudonymous ones normalised, direct ones as ``<col>_hash``), ``oneid`` and
             ``*_oneid``, and every ``<x>_type``/``<x>_value`` pair (``id_type``/``id_value``, the edge
             endpoints ``src_``/``dst_``, pruned hubs ``hub_``): a new source or table is covered
             without code;
           bronze/quarantine: their values are as landed and direct PII is encrypted with a random IV, so the
             rows are found by decrypting, normalising and keyed-hashing (build_stored_matches) and deleted
             by their exact stored values (stored_match)
      -> erasure digests (build_erasure_digest, erasure_digest): a second keyed hash of the keyed hash, under
         a key derived for this purpose, recorded in vault.erasures and checked at ingest
         (with_erased_flag) unless a consent grant newer than the erasure arrived (build_grant_digests).

An erasure record never holds an identifier, not even the keyed hash the lake joins on: a copy of
vault.erasures cannot be joined to silver, gold or the identifier vault. Everything here is a pure
transform or a plan; the job ``jobs.privacy`` reads, deletes, vacuums and records.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from identity.normalize import NORMALIZERS
from identity.pii import build_decrypted, build_keyed_hash
from schemas import SourceContract
from schemas.contract import ID_TYPES

Transform = Callable[[DataFrame], DataFrame]

ONEID = "oneid"
"""The ``id_type`` of a OneID in a request file and in an erasure record."""
GRANT_STATUS = "opt_in"
"""The consent status that, newer than an erasure, lets an erased identifier back in."""
_ERASURE_LABEL = b"cdp/erasure/v1"
_SAFE_LITERAL = re.compile(r"^[0-9A-Za-z+/=_.@:\-]*$")


class ErasureError(ValueError):
    """An erasure request names nothing, an unknown ID type, a value that does not normalise, or an unreadable
    file; the message says which and how to fix it."""


# ---- the request ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureRequest:
    """What an erasure request names.

    Attributes:
        identifiers: ``(id_type, value as typed)`` pairs.
        oneids: OneIDs.
    """

    identifiers: tuple[tuple[str, str], ...] = ()
    oneids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.identifiers and not self.oneids:
            raise ErasureError(
                "the erasure request names nobody: give --identifier TYPE:VALUE, --oneid or --file"
            )


def _one(text: str, where: str) -> tuple[str, str]:
    # Messages name the entry and the type, never the value: it is a person's identifier.
    id_type, sep, value = text.strip().partition(":")
    id_type, value = id_type.strip().lower(), value.strip()
    if not sep or not value:
        raise ErasureError(f"{where}: not TYPE:VALUE (e.g. phone:13812345678, oneid:42)")
    if id_type != ONEID and id_type not in ID_TYPES:
        raise ErasureError(f"{where}: unknown ID type {id_type!r}; use oneid or one of {', '.join(ID_TYPES)}")
    if id_type == ONEID and not value.isdigit():
        raise ErasureError(f"{where}: a OneID is a number")
    return id_type, value


def parse_request(
    identifiers: Iterable[str] = (), oneids: Iterable[str | int] = (), *, where: str = "--identifier"
) -> ErasureRequest:
    """Validate what a request names into an :class:`ErasureRequest`.

    Args:
        identifiers: ``TYPE:VALUE`` texts (``oneid:42`` also names a OneID).
        oneids: OneIDs.
        where: what the texts come from, for messages (entries are numbered from 1).

    Raises:
        ErasureError: a malformed text, an unknown ID type, a OneID that is not a number, or nothing named;
            the message names the entry, never its value.
    """
    texts = [f"{ONEID}:{o}" for o in oneids] + list(identifiers)
    ids, ones = [], []
    for i, text in enumerate(texts, start=1):
        id_type, value = _one(str(text), f"{where} #{i}")
        if id_type == ONEID:
            ones.append(int(value))
        else:
            ids.append((id_type, value))
    return ErasureRequest(tuple(dict.fromkeys(ids)), tuple(dict.fromkeys(ones)))


def load_request_file(path: str | Path) -> list[str]:
    """The ``TYPE:VALUE`` lines of a request file (blank lines and ``#`` comments skipped).

    Raises:
        ErasureError: the file cannot be read.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ErasureError(f"{path}: cannot read the request file: {exc.strerror}") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def direct_id_types(sources: Iterable[SourceContract]) -> frozenset[str]:
    """ID types some source holds as direct PII: silver and ``gold.oneid_map`` hold them as keyed hashes."""
    return frozenset(c.id_type for s in sources for c in s.columns if c.id_type and c.pii == "direct")


def _normalized_any(id_type: Column, value: Column) -> Column:
    types = list(NORMALIZERS)
    first = F.when(id_type == types[0], NORMALIZERS[types[0]](value))
    return reduce(lambda acc, t: acc.when(id_type == t, NORMALIZERS[t](value)), types[1:], first)


def _map_form(id_type: Column, normalized: Column, keyed: Column, direct: frozenset[str]) -> Column:
    return F.when(id_type.isin(*direct), keyed).otherwise(normalized) if direct else normalized


def build_request_identifiers(key: str, direct: frozenset[str]) -> Transform:
    """A transform of ``(id_type, value)`` as typed to ``(id_type, value, normalized, id_value, keyed)``:
    ``id_value`` in the form ``gold.oneid_map`` holds (keyed hash for direct types), ``keyed`` the keyed hash
    of the normalised value for every type; NULLs when the value does not normalise."""

    def transform(df: DataFrame) -> DataFrame:
        normalized = _normalized_any(F.col("id_type"), F.col("value"))
        keyed = build_keyed_hash(normalized, key)
        return df.select(
            "id_type",
            "value",
            normalized.alias("normalized"),
            _map_form(F.col("id_type"), normalized, keyed, direct).alias("id_value"),
            keyed.alias("keyed"),
        )

    return transform


def build_person_identifiers(
    oneid_map: DataFrame, oneids: Sequence[int], key: str, direct: frozenset[str]
) -> Transform:
    """A transform of request identifiers (``id_type``, ``id_value``; :func:`build_request_identifiers`) to
    the person's identifiers ``(id_type, id_value, keyed, oneid)``.

    A snapshot (``dt``) of ``gold.oneid_map`` in which a named identifier or OneID appears contributes that
    OneID and every identifier it held then; one hop only, so a OneID that merged with someone else later
    does not pull in that person. Named identifiers the map never saw are kept (``oneid`` NULL).

    Args:
        oneid_map: every snapshot of ``gold.oneid_map`` (``id_type``, ``id_value``, ``oneid``, ``dt``).
        oneids: OneIDs the request names.
        key: the deployment's secret.
        direct: :func:`direct_id_types`.
    """

    def transform(request: DataFrame) -> DataFrame:
        named = request.where(F.col("id_value").isNotNull()).select("id_type", "id_value")
        hits = oneid_map.join(named, ["id_type", "id_value"]).select("dt", "oneid")
        if oneids:
            hits = hits.unionByName(
                oneid_map.where(F.col("oneid").isin(*[int(o) for o in oneids])).select("dt", "oneid")
            )
        mapped = oneid_map.join(hits.distinct(), ["dt", "oneid"]).select(
            "id_type", "id_value", F.col("oneid").cast("long").alias("oneid")
        )
        ids = mapped.unionByName(named.select("*", F.lit(None).cast("long").alias("oneid"))).distinct()
        hashed = build_keyed_hash(F.col("id_value"), key)
        keyed = (
            F.when(F.col("id_type").isin(*direct), F.col("id_value")).otherwise(hashed) if direct else hashed
        )
        return ids.select("id_type", "id_value", keyed.alias("keyed"), "oneid")

    return transform


@dataclass(frozen=True)
class ErasureTargets:
    """One person's OneIDs and identifiers, on the driver (a person has a handful).

    Attributes:
        oneids: their OneIDs.
        values: ID type -> values in the form ``gold.oneid_map`` holds (normalised; keyed hash for direct
            types).
        keyed: ID type -> keyed hashes of the normalised values (what silver's ``<col>_hash`` and the
            identifier vault hold).
        direct: the direct ID types (:func:`direct_id_types`).
    """

    oneids: frozenset[int] = frozenset()
    values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    keyed: Mapping[str, frozenset[str]] = field(default_factory=dict)
    direct: frozenset[str] = frozenset()

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping], direct: frozenset[str]) -> ErasureTargets:
        """Collect rows of :func:`build_person_identifiers` (``id_type``, ``id_value``, ``keyed``,
        ``oneid``)."""
        oneids, values, keyed = set(), {}, {}
        for r in rows:
            if r["oneid"] is not None:
                oneids.add(int(r["oneid"]))
            values.setdefault(r["id_type"], set()).add(r["id_value"])
            keyed.setdefault(r["id_type"], set()).add(r["keyed"])
        return cls(
            frozenset(oneids),
            {t: frozenset(v) for t, v in values.items()},
            {t: frozenset(v) for t, v in keyed.items()},
            direct,
        )

    @property
    def empty(self) -> bool:
        return not self.oneids and not self.values

    def normalized(self, id_type: str) -> frozenset[str]:
        """Normalised values of a pseudonymous ID type (direct types are only known as keyed hashes)."""
        return frozenset() if id_type in self.direct else self.values.get(id_type, frozenset())

    def any_form(self, id_type: str) -> frozenset[str]:
        """Every stored form of an ID type's values: the map form and the keyed hash."""
        return self.values.get(id_type, frozenset()) | self.keyed.get(id_type, frozenset())

    def count(self) -> int:
        return sum(len(v) for v in self.values.values())


# ---- which rows of a table ------------------------------------------------------------------------------


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True)
class RowMatch:
    """The person's rows of one table, as a join of the table (alias ``t``) with a small source of values
    (alias ``s``, columns ``k``, ``v``; :data:`MATCH_SCHEMA`).

    The values travel as data, never in SQL text: a Delta ``MERGE ... WHEN MATCHED THEN DELETE`` records its
    condition in the table's commit log, which must not hold the identifiers being erased.

    Attributes:
        condition: the join condition, e.g. ``(s.k = 'm0' AND t.`phone_hash` = s.v) OR ...``.
        values: the ``(k, v)`` source rows.
        columns: ``k`` -> the column it matches, for reports.
    """

    condition: str
    values: tuple[tuple[str, str], ...]
    columns: Mapping[str, str] = field(default_factory=dict)


MATCH_SCHEMA = "k string, v string"
"""The schema of a :class:`RowMatch` source."""


class _Clauses:
    """Builds a :class:`RowMatch` one column (and value set) at a time."""

    def __init__(self) -> None:
        self.sql: list[str] = []
        self.values: list[tuple[str, str]] = []
        self.columns: dict[str, str] = {}

    def add(self, column: str, values: Iterable[str], *, cast: bool = False, guard: str = "") -> None:
        values = sorted({str(v) for v in values if v is not None})
        if not values:
            return
        k = f"m{len(self.sql)}"
        ref = f"t.{_quote(column)}"
        ref = f"CAST({ref} AS STRING)" if cast else ref
        self.sql.append(f"(s.k = '{k}' AND {guard}{ref} = s.v)")
        self.values += [(k, v) for v in values]
        self.columns[k] = column

    def match(self) -> RowMatch | None:
        if not self.sql:
            return None
        return RowMatch(" OR ".join(self.sql), tuple(self.values), dict(self.columns))


def table_match(
    table: str, columns: Iterable[str], targets: ErasureTargets, sources: Iterable[SourceContract]
) -> RowMatch | None:
    """The person's rows in a silver, gold or vault table, found from its columns:

    - in ``silver.<entity>``, the identifier columns of every source feeding it (pseudonymous ones
      normalised, direct ones as ``<col>_hash``);
    - in any table, ``oneid`` and ``*_oneid`` columns, and every ``<x>_type``/``<x>_value`` pair
      (``id_type``/``id_value``, ``src_``/``dst_`` edge endpoints, ``hub_``), in map form or keyed hash.

    Args:
        table: ``layer.name``.
        columns: the table's columns.
        targets: the person.
        sources: every source contract.

    Returns:
        The match, or None when the table has no column that can hold the person.
    """
    cols, clauses = set(columns), _Clauses()
    layer, _, name = table.partition(".")
    for source in sources if layer == "silver" else ():
        if source.entity != name:
            continue
        for col in source.columns:
            if col.id_type and col.pii == "direct" and f"{col.name}_hash" in cols:
                clauses.add(f"{col.name}_hash", targets.keyed.get(col.id_type, ()))
            elif col.id_type and col.pii != "direct" and col.name in cols:
                clauses.add(col.name, targets.normalized(col.id_type))
    for c in sorted(cols):
        if c == ONEID or c.endswith(f"_{ONEID}"):
            clauses.add(c, [str(o) for o in targets.oneids], cast=True)
        if c.endswith("_type") and f"{c[:-5]}_value" in cols:
            for id_type in sorted(targets.values):
                if _SAFE_LITERAL.match(id_type):
                    guard = f"t.{_quote(c)} = '{id_type}' AND "
                    clauses.add(f"{c[:-5]}_value", targets.any_form(id_type), cast=True, guard=guard)
    return clauses.match()


def stored_match(matches: Iterable[Mapping]) -> RowMatch | None:
    """The person's rows of a bronze or quarantine table by the exact stored values found by
    :func:`build_stored_matches` (``column``, ``value`` rows)."""
    by_column: dict[str, set[str]] = {}
    for m in matches:
        by_column.setdefault(m["column"], set()).add(m["value"])
    clauses = _Clauses()
    for column, values in sorted(by_column.items()):
        clauses.add(column, values)
    return clauses.match()


def _matches(value: Column, id_type: str, targets: ErasureTargets, key: str) -> Column | None:
    """Whether a value as landed is one of the person's identifiers of ``id_type``."""
    normalized = NORMALIZERS[id_type](value)
    if id_type in targets.direct:
        keyed = targets.keyed.get(id_type)
        return build_keyed_hash(normalized, key).isin(*sorted(keyed)) if keyed else None
    plain = targets.normalized(id_type)
    return normalized.isin(*sorted(plain)) if plain else None


def _tokens(text: Column) -> Column:
    """The field values of a raw line: a JSON object's values, else the comma-separated fields unquoted."""
    json_values = F.map_values(F.from_json(text, "map<string,string>"))
    fields = F.split(text, ",")
    return F.when(F.trim(text).startswith("{"), json_values).otherwise(fields)


def build_stored_matches(
    contract: SourceContract, targets: ErasureTargets, key: str, layer: str
) -> Transform:
    """A transform of ``bronze.<source>`` or ``quarantine.<source>`` to the stored values of the person's
    rows: ``(column, value)`` pairs, for :func:`stored_match`.

    Bronze keeps identifier columns as landed: pseudonymous ones are normalised here and compared, encrypted
    direct ones are decrypted, normalised and keyed-hashed; the ciphertext (a fresh IV per value) then names
    exactly the rows. Quarantine keeps the raw line (encrypted when the source has direct PII): each field
    of the line is tried as each ID type of the source, and the stored line names the row.

    Args:
        contract: the source contract.
        targets: the person.
        key: the deployment's secret (decryption and keyed hashes).
        layer: ``bronze`` or ``quarantine``.
    """
    encrypted = contract.bronze_pii == "encrypt" and any(c.pii == "direct" for c in contract.columns)

    def bronze(df: DataFrame) -> DataFrame:
        parts = []
        for col in contract.columns:
            if not col.id_type or col.name not in df.columns:
                continue
            if col.pii == "direct" and not encrypted:
                continue  # blanked at the door (bronze_pii: exclude)
            value = F.col(_quote(col.name))
            plain = build_decrypted(value, key) if col.pii == "direct" else value
            cond = _matches(plain, col.id_type, targets, key)
            if cond is not None:
                parts.append(
                    df.where(value.isNotNull() & cond).select(
                        F.lit(col.name).alias("column"), value.cast("string").alias("value")
                    )
                )
        return _union(df, parts)

    def quarantine(df: DataFrame) -> DataFrame:
        if "_raw" not in df.columns:
            return _union(df, [])
        raw = F.col("_raw")
        plain = build_decrypted(raw, key) if encrypted else raw
        lines = df.where(raw.isNotNull()).select(raw.alias("value"), plain.alias("_plain"))
        fields = lines.select("value", F.explode(_tokens(F.col("_plain"))).alias("_t")).select(
            "value", F.regexp_replace(F.trim(F.col("_t")), r'^"|"$', "").alias("_t")
        )
        conds = [
            _matches(F.col("_t"), t, targets, key) for t in sorted(set(contract.identifier_columns.values()))
        ]
        conds = [c for c in conds if c is not None]
        if not conds:
            return _union(df, [])
        hit = reduce(lambda a, b: a | b, conds)
        return fields.where(hit).select(F.lit("_raw").alias("column"), "value").distinct()

    return bronze if layer == "bronze" else quarantine


def _union(df: DataFrame, parts: list[DataFrame]) -> DataFrame:
    if not parts:
        return df.limit(0).select(F.lit("").alias("column"), F.lit("").alias("value"))
    return reduce(lambda a, b: a.unionByName(b), parts).distinct()


# ---- the erasure record and the ingest check --------------------------------------------------------------


def erasure_key(key: str) -> str:
    """The key of erasure digests, derived from the deployment's secret: ``HMAC-SHA256(secret, label)``
    as hex, so an erasure digest is never the keyed hash the lake joins on."""
    if not key:
        raise ValueError("the PII key is empty: set CDP_PII_KEY or run 'cdp init-key'")
    return hmac.new(key.encode("utf-8"), _ERASURE_LABEL, hashlib.sha256).hexdigest()


def erasure_digest(keyed: str, key: str) -> str:
    """The erasure digest of a keyed hash (:func:`identity.pii.build_keyed_hash` of the normalised value),
    on the driver; equal to :func:`build_erasure_digest`."""
    return hmac.new(erasure_key(key).encode("utf-8"), keyed.encode("utf-8"), hashlib.sha256).hexdigest()


def oneid_digest(oneid: int, key: str) -> str:
    """The erasure digest of a OneID (of the keyed hash of its decimal text)."""
    keyed = hmac.new(key.encode("utf-8"), str(int(oneid)).encode("utf-8"), hashlib.sha256).hexdigest()
    return erasure_digest(keyed, key)


def build_erasure_digest(keyed: Column, key: str) -> Column:
    """The erasure digest of a keyed-hash column (see :func:`erasure_digest`)."""
    return build_keyed_hash(keyed, erasure_key(key))


FORMS = ("silver", "typed", "landed")
"""How rows hold identifiers: ``silver`` (pseudonymous ones normalised, direct ones only as ``<col>_hash``),
``typed`` (every identifier column normalised in clear: ingest's checked rows, before PII protection) or
``landed`` (every column as the file had it: the text records bronze keeps)."""


def _row_digests(
    contract: SourceContract, columns: Sequence[str], key: str, form: str
) -> list[tuple[str, Column]]:
    """``(id_type, erasure digest)`` of each identifier column of rows in ``form`` (:data:`FORMS`)."""
    if form not in FORMS:
        raise ValueError(f"form {form!r}: use one of {', '.join(FORMS)}")
    out = []
    for col in contract.columns:
        if not col.id_type:
            continue
        if col.pii == "direct" and form == "silver":
            if f"{col.name}_hash" not in columns:
                continue
            keyed = F.col(_quote(f"{col.name}_hash"))
        elif col.name in columns:
            value = F.col(_quote(col.name))
            if form == "landed":
                value = NORMALIZERS[col.id_type](value.cast("string"))
            keyed = build_keyed_hash(value, key)
        else:
            continue
        out.append((col.id_type, build_erasure_digest(keyed, key)))
    return out


def build_grant_digests(contract: SourceContract, key: str, *, form: str = "silver") -> Transform:
    """A transform of consent rows (in ``form``, :data:`FORMS`) to the grants they hold:
    ``(id_type, id_digest, granted_at)`` for every identifier of a row whose ``status`` is ``opt_in``."""

    def transform(df: DataFrame) -> DataFrame:
        digests = _row_digests(contract, df.columns, key, form)
        if not digests or "status" not in df.columns or contract.event_time not in df.columns:
            none = F.lit(None).cast("string")
            return df.where(F.lit(False)).select(
                none.alias("id_type"),
                none.alias("id_digest"),
                F.lit(None).cast("timestamp").alias("granted_at"),
            )
        pairs = F.array(*[F.struct(F.lit(t).alias("id_type"), d.alias("id_digest")) for t, d in digests])
        grants = df.where(F.lower(F.trim(F.col("status"))) == GRANT_STATUS).select(
            F.expr(f"try_cast({_quote(contract.event_time)} AS timestamp)").alias("granted_at"),
            F.explode(pairs).alias("_p"),
        )
        return grants.where(F.col("_p.id_digest").isNotNull() & F.col("granted_at").isNotNull()).select(
            F.col("_p.id_type").alias("id_type"), F.col("_p.id_digest").alias("id_digest"), "granted_at"
        )

    return transform


def still_erased(erasures: DataFrame, grants: DataFrame | None) -> DataFrame:
    """Erased identifiers not let back in: erasure records (``id_type``, ``id_digest``, ``requested_at``)
    without a consent grant of the same identifier newer than the erasure; ``(id_type, id_digest)``."""
    records = erasures.where(F.col("id_type") != ONEID).select("id_type", "id_digest", "requested_at")
    if grants is not None:
        newest = grants.groupBy("id_type", "id_digest").agg(F.max("granted_at").alias("granted_at"))
        records = records.join(newest, ["id_type", "id_digest"], "left").where(
            F.col("granted_at").isNull() | (F.col("granted_at") <= F.col("requested_at"))
        )
    return records.select("id_type", "id_digest").distinct()


def with_erased_flag(
    contract: SourceContract, key: str, erased: Mapping[str, Iterable[str]], *, form: str = "silver"
) -> Transform:
    """A transform adding ``_erased``: whether a row (in ``form``, :data:`FORMS`) holds an
    identifier of an erased person (``erased``: ID type -> erasure digests in force, :func:`still_erased`)."""
    wanted = {t: sorted(set(v)) for t, v in erased.items() if v}

    def transform(df: DataFrame) -> DataFrame:
        conds = [d.isin(*wanted[t]) for t, d in _row_digests(contract, df.columns, key, form) if t in wanted]
        flag = F.coalesce(reduce(lambda a, b: a | b, conds), F.lit(False)) if conds else F.lit(False)
        return df.withColumn("_erased", flag)

    return transform
