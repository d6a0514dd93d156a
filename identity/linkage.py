"""Probabilistic record linkage (Fellegi-Sunter, estimated without labels) for records without strong
identifiers: two CRM exports of the same people with typos, swapped day and month, missing values, a name
in characters in one and in pinyin in the other, and no shared key.

The stage is ``DataFrame -> DataFrame`` like the rest of ``identity/``; ``jobs.identity`` reads the
records, checkpoints between the steps and feeds the accepted pairs into the identity graph, where they
meet the same over-merge guards as every other link.

1. ``prepare_records`` normalises the attributes of ``(source, record_key, <attribute>...)`` records in a
   pandas UDF: names become sorted lower-case tokens, Chinese characters converted to pinyin (张晓伟 and
   "Xiaowei Zhang" both read ``xiaowei zhang``); dates ``YYYYMMDD``; digits only for ``digits`` columns.
   It adds the blocking keys of the model (``with_blocking_keys``).
2. ``candidate_pairs`` pairs records that share a blocking key (never every record with every other);
   a key value held by more than ``max_block_size`` records (a common name alone) is skipped.
3. ``compare_pairs`` computes each pair's comparison vector (a level per comparison: exact,
   Jaro-Winkler or Levenshtein thresholds, date-part swaps, ``-1`` when a side is missing) with rapidfuzz
   in a pandas UDF; the values never leave the UDF: the result holds only the levels.
4. ``estimate`` fits the model on the driver from the counts of comparison vectors (a few hundred rows):
   ``u`` from random record pairs (``random_pairs``), ``m`` by expectation-maximisation per blocking rule,
   leaving out the comparisons a rule blocks on (as Splink does), and the prior among candidate pairs.
5. ``score_pairs`` adds the match weight (log2 Bayes factor sum with the term-frequency adjustment of
   exact matches on common values), the match probability and the deciding comparison.

``waterfall`` explains one pair's weight comparison by comparison. Nothing here reads or writes a table.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from identity.rules import Comparison, ProbabilisticRules

Transform = Callable[[DataFrame], DataFrame]

UID = "uid"
"""A record's identity in the stage: ``<source>\\u001f<record_key>``; pairs are ordered ``uid_l < uid_r``."""

_SEP = "\u001f"
_CJK = re.compile(r"[\u3400-\u9fff]")
_NOT_WORD = re.compile(r"[^a-z\s]+")
_NOT_DIGIT = re.compile(r"\D+")
_DATE = re.compile(r"^\s*(\d{4})\D?(\d{1,2})\D?(\d{1,2})")


# ---- normalisation (pure Python, inside pandas UDFs) -------------------------------------------------------


def normalize_name(value: object) -> str | None:
    """A person's name as sorted lower-case ASCII tokens: Chinese characters in pinyin (surname one token,
    given name one token), accents dropped; None when nothing is left.

    >>> normalize_name("张晓伟"), normalize_name("Xiaowei ZHANG"), normalize_name("Zhang Xiao-Wei")
    ('xiaowei zhang', 'xiaowei zhang', 'xiaowei zhang')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    if not text:
        return None
    if _CJK.search(text):
        from pypinyin import lazy_pinyin

        chars = [c for c in text if not c.isspace()]
        # Chinese names write the surname first: one syllable (two for the few compound surnames is rarer
        # than the noise it would cost to guess), the given name after it.
        syllables = lazy_pinyin("".join(chars))
        tokens = [syllables[0], "".join(syllables[1:])] if len(syllables) > 1 else syllables
    else:
        ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
        ascii_text = ascii_text.replace("-", "").replace("'", "")
        tokens = _NOT_WORD.sub(" ", ascii_text).split()
    tokens = sorted(t.lower() for t in tokens if t)
    return " ".join(tokens) or None


def normalize_date(value: object) -> str | None:
    """A date as ``YYYYMMDD`` from ``YYYY-MM-DD``, ``YYYY/M/D`` or ``YYYYMMDD``; None when unreadable."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    m = _DATE.match(str(value))
    if not m:
        return None
    y, mo, d = m.groups()
    # A swapped day/month (13-31 in the month) is kept as written: the swap level compares it.
    if not (1 <= int(mo) <= 12 and 1 <= int(d) <= 31) and not (1 <= int(d) <= 12 and 1 <= int(mo) <= 31):
        return None
    return f"{y}{int(mo):02d}{int(d):02d}"


def normalize_text(value: object) -> str | None:
    """Free text (a city, a street): lower case, accents and punctuation dropped, single spaces."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = unicodedata.normalize("NFKC", str(value)).lower()
    text = re.sub(r"[^\w\s]+", " ", text)
    text = " ".join(text.split())
    return text or None


def normalize_digits(value: object) -> str | None:
    """Digits only (a phone, a postcode, an ID number); None when there are none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = _NOT_DIGIT.sub("", str(value))
    return text or None


NORMALIZE_BY_KIND: dict[str, Callable[[object], str | None]] = {
    "name": normalize_name,
    "date": normalize_date,
    "digits": normalize_digits,
    "text": normalize_text,
}


# ---- comparison levels -------------------------------------------------------------------------------------


def level_labels(comparison: Comparison) -> list[str]:
    """The comparison's levels, strongest first; a pair's level is its index here, ``-1`` when missing."""
    if comparison.levels == "exact":
        return ["exact", "else"]
    if comparison.levels == "date":
        return ["exact", "day_month_swapped", "one_digit", "same_year", "else"]
    if comparison.levels == "levenshtein":
        return ["exact", *[f"levenshtein<={int(t)}" for t in comparison.thresholds], "else"]
    return ["exact", *[f"jaro_winkler>={t:g}" for t in comparison.thresholds], "else"]


def _first_token_last(value: str) -> str:
    """``"chen chzobin"`` -> ``"chzobin chen"`` (a string without a space is returned as is)."""
    head, sep, rest = value.partition(" ")
    return f"{rest} {head}" if sep else value


def compare_values(comparison: Comparison, left: pd.Series, right: pd.Series) -> np.ndarray:
    """The level of each pair of normalised values (vectorised with rapidfuzz; ``-1`` when a side is NULL).

    Args:
        comparison: which ladder of levels to use.
        left, right: normalised values, aligned.

    Returns:
        An ``int8`` array of level indexes (see ``level_labels``).
    """
    from rapidfuzz.distance import JaroWinkler, Levenshtein
    from rapidfuzz.process import cpdist

    n = len(left)
    labels = level_labels(comparison)
    out = np.full(n, len(labels) - 1, dtype=np.int8)
    if n == 0:
        return out
    # Column-wise pandas string operations and rapidfuzz's cpdist: no Python loop per pair.
    left = pd.Series(left, dtype="object").reset_index(drop=True)
    right = pd.Series(right, dtype="object").reset_index(drop=True)
    missing = (left.isna() | right.isna()).to_numpy()
    a = left.where(~missing, "").astype(object)
    b = right.where(~missing, "").astype(object)
    exact = (a == b).to_numpy()

    def distance(x: pd.Series, y: pd.Series, scorer) -> np.ndarray:
        return cpdist(x.tolist(), y.tolist(), scorer=scorer, workers=1)

    if comparison.levels == "exact":
        out[exact] = 0
    elif comparison.levels == "date":
        lev = distance(a, b, Levenshtein.distance)
        sa, sb = a.astype(str), b.astype(str)  # Arrow-backed strings slice fast
        year = (sa.str[:4] == sb.str[:4]).to_numpy()
        swapped = year & (sa.str[4:6] == sb.str[6:8]).to_numpy() & (sa.str[6:8] == sb.str[4:6]).to_numpy()
        out[year & ~exact] = 3
        out[(lev <= 1) & ~exact] = 2
        out[swapped & ~exact] = 1
        out[exact] = 0
    elif comparison.levels == "levenshtein":
        lev = distance(a, b, Levenshtein.distance)
        for i, t in reversed(list(enumerate(comparison.thresholds, start=1))):
            out[lev <= t] = i
        out[exact] = 0
    else:
        jw = distance(a, b, JaroWinkler.normalized_similarity)
        # Names are sorted tokens, so a typo can change the order ("chen chaobin" vs "chen chzobin" sort
        # differently): the right side with its first token moved last counts too.
        flipped = pd.Series([_first_token_last(v) for v in b.tolist()], index=b.index, dtype=object)
        turned = (flipped != b).to_numpy()
        if turned.any():
            jw[turned] = np.maximum(
                jw[turned], distance(a[turned], flipped[turned], JaroWinkler.normalized_similarity)
            )
        for i, t in reversed(list(enumerate(comparison.thresholds, start=1))):
            out[jw >= t] = i
        out[exact] = 0
    out[missing] = -1
    return out


# ---- DataFrame steps ---------------------------------------------------------------------------------------


def _prepared_schema(model: ProbabilisticRules) -> str:
    cols = [f"`{a}` string" for a in model.attributes]
    return ", ".join([f"{UID} string", "source string", "record_key string", *cols])


def prepare_records(model: ProbabilisticRules) -> Transform:
    """Normalise the attributes of ``(source, record_key, <attribute>...)`` records (pandas UDF) and add
    ``uid`` and the blocking keys ``_block0``, ``_block1``... (NULL when a part is missing).

    The normalised values exist only in the run's scratch; the job never writes them to a table.
    """
    kinds = {a: model.attribute_kind(a) for a in model.attributes}

    def normalise(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            out = pd.DataFrame(
                {
                    UID: pdf["source"].astype(str) + _SEP + pdf["record_key"].astype(str),
                    "source": pdf["source"],
                    "record_key": pdf["record_key"],
                }
            )
            for attr, kind in kinds.items():
                fn = NORMALIZE_BY_KIND[kind]
                out[attr] = [fn(v) for v in pdf[attr].astype(object).where(pdf[attr].notna(), None)]
            yield out

    def transform(records: DataFrame) -> DataFrame:
        cols = [F.col("source").cast("string"), F.col("record_key").cast("string")]
        cols += [F.col(f"`{a}`").cast("string").alias(a) for a in model.attributes]
        prepared = records.select(*cols).mapInPandas(normalise, _prepared_schema(model))
        return prepared.select(
            "*", *[build_blocking_key(rule).alias(f"_block{i}") for i, rule in enumerate(model.blocking)]
        )

    return transform


def _key_part(part: str) -> Column:
    """One part of a blocking rule: ``attribute`` or ``attribute.first3|last4|year|initials``."""
    attr, _, fn = part.partition(".")
    col = F.col(f"`{attr}`")
    if fn == "":
        return col
    if fn == "first3":
        return F.substring(col, 1, 3)
    if fn == "last4":
        return F.substring(col, -4, 4)
    if fn == "year":
        return F.substring(col, 1, 4)
    if fn == "initials":  # the first letter of each name token, e.g. "xiaowei zhang" -> "xz"
        return F.regexp_replace(F.concat(F.lit(" "), col), r" (\w)\w*", "$1")
    raise ValueError(f"unknown blocking function {fn!r}")  # load_rules rejects it first


def build_blocking_key(rule: list[str]) -> Column:
    """The blocking key of one rule: its parts joined, NULL when any part is missing."""
    parts = [_key_part(p) for p in rule]
    complete = F.lit(True)
    for p in parts:
        complete = complete & p.isNotNull() & (p != "")
    return F.when(complete, F.concat_ws(_SEP, *parts))


def candidate_pairs(model: ProbabilisticRules) -> Transform:
    """Pairs of prepared records that share at least one blocking key: ``(uid_l, uid_r)`` once each,
    ``uid_l < uid_r``. Key values held by more than ``model.max_block_size`` records are skipped: a block
    of n records makes n(n-1)/2 pairs, and such a value (a very common name alone) tells little."""

    def transform(prepared: DataFrame) -> DataFrame:
        parts = []
        for i in range(len(model.blocking)):
            key = f"_block{i}"
            keyed = prepared.select(UID, F.col(key).alias("_k")).where(F.col("_k").isNotNull())
            sizes = keyed.groupBy("_k").agg(F.count(F.lit(1)).alias("_n"))
            kept = keyed.join(sizes.where(F.col("_n") <= model.max_block_size).select("_k"), on="_k")
            left = kept.select("_k", F.col(UID).alias("uid_l"))
            right = kept.select("_k", F.col(UID).alias("uid_r"))
            parts.append(
                left.join(right, on="_k").where(F.col("uid_l") < F.col("uid_r")).select("uid_l", "uid_r")
            )
        out = parts[0]
        for p in parts[1:]:
            out = out.unionByName(p)
        return out.distinct()

    return transform


def random_pairs(prepared: DataFrame, pairs: int, seed: int) -> DataFrame:
    """About ``pairs`` random pairs of distinct records, ``(uid_l, uid_r)``, for estimating ``u``: nearly
    all of them are non-matches, so the share agreeing at each level is the chance agreement."""
    n = max(prepared.count(), 2)
    # Each record draws a bucket; records of one bucket are paired: buckets of size s give s^2 pairs.
    per_bucket = max(int(math.sqrt(pairs / max(n / 50, 1))), 2)
    buckets = max(n // per_bucket, 1)
    sides = []
    for side, salt in (("l", 0), ("r", 1)):
        sides.append(
            prepared.select(
                F.col(UID).alias(f"uid_{side}"),
                F.floor(F.rand(seed + salt) * buckets).cast("long").alias("_bucket"),
            )
        )
    joined = sides[0].join(sides[1], on="_bucket").where(F.col("uid_l") != F.col("uid_r"))
    return joined.select("uid_l", "uid_r").limit(pairs)


def compare_pairs(model: ProbabilisticRules) -> Callable[[DataFrame, DataFrame], DataFrame]:
    """Comparison vectors of pairs: ``(uid_l, uid_r, _in0.._inB, g_<comparison>...)``.

    ``_in<i>`` says whether the pair shares blocking key ``i`` (EM leaves out, per blocking rule, the
    comparisons that rule blocks on); ``g_<name>`` is the level index (``-1`` missing).
    """
    comparisons = model.comparisons
    gammas = [f"g_{c.name}" for c in comparisons]
    blocks = [f"_in{i}" for i in range(len(model.blocking))]
    schema = T.StructType(
        [T.StructField("uid_l", T.StringType()), T.StructField("uid_r", T.StringType())]
        + [T.StructField(b, T.BooleanType()) for b in blocks]
        + [T.StructField(g, T.ByteType()) for g in gammas]
    )

    def levels(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            out = pdf[["uid_l", "uid_r", *blocks]].copy()
            for c, g in zip(comparisons, gammas, strict=True):
                out[g] = compare_values(c, pdf[f"l_{c.attribute}"], pdf[f"r_{c.attribute}"])
            yield out

    def transform(pairs: DataFrame, prepared: DataFrame) -> DataFrame:
        attrs = sorted({c.attribute for c in comparisons})
        keys = [f"_block{i}" for i in range(len(model.blocking))]
        side = {
            s: prepared.select(
                F.col(UID).alias(f"uid_{s}"),
                *[F.col(f"`{a}`").alias(f"{s}_{a}") for a in attrs],
                *[F.col(k).alias(f"{s}{k}") for k in keys],
            )
            for s in ("l", "r")
        }
        joined = pairs.join(side["l"], on="uid_l").join(side["r"], on="uid_r")
        flags = [
            F.coalesce(F.col(f"l{k}") == F.col(f"r{k}"), F.lit(False)).alias(b)
            for k, b in zip(keys, blocks, strict=True)
        ]
        values = [F.col(f"{s}_{a}") for a in attrs for s in ("l", "r")]
        return joined.select("uid_l", "uid_r", *flags, *values).mapInPandas(levels, schema)

    return transform


def vector_counts(vectors: DataFrame, model: ProbabilisticRules) -> pd.DataFrame:
    """The number of pairs per comparison vector and blocking flags (small: it reaches the driver)."""
    cols = [f"_in{i}" for i in range(len(model.blocking))] + [f"g_{c.name}" for c in model.comparisons]
    rows = vectors.groupBy(*cols).agg(F.count(F.lit(1)).alias("n")).collect()
    return pd.DataFrame([r.asDict() for r in rows], columns=[*cols, "n"])


# ---- estimation (driver side, on vector counts) ------------------------------------------------------------


@dataclass
class LinkageModel:
    """Estimated parameters: per comparison, ``m`` and ``u`` per level; the prior match share among the
    candidate pairs; term frequencies are joined at scoring time.

    Attributes:
        m: ``{comparison: [m per level]}``, level order of ``level_labels`` (``else`` last).
        u: the same for ``u``.
        prior: the chance that two random records match (``lambda``).
        iterations: EM iterations per blocking rule.
    """

    m: dict[str, list[float]]
    u: dict[str, list[float]]
    prior: float
    iterations: dict[str, int] = field(default_factory=dict)

    def weight(self, comparison: str, level: int) -> float:
        """The log2 Bayes factor of a level (0 for a missing value)."""
        if level < 0:
            return 0.0
        return math.log2(self.m[comparison][level] / self.u[comparison][level])

    @property
    def prior_weight(self) -> float:
        return math.log2(self.prior / (1 - self.prior))


_FLOOR = 1e-6
_PSEUDO_PAIRS = 1.0
"""Every level is credited one (expected) pair: a level EM never saw in matches gets a small ``m`` instead
of zero, so one unusual value (a birth date off by a year) costs a few bits, not 25."""


def _proportions(counts: pd.DataFrame, gamma: str, levels: int, weights: np.ndarray) -> list[float]:
    g = counts[gamma].to_numpy()
    out = np.array([weights[g == k].sum() for k in range(levels)], dtype=float) + _PSEUDO_PAIRS
    return list(out / out.sum())


def estimate_u(random_counts: pd.DataFrame, model: ProbabilisticRules) -> dict[str, list[float]]:
    """``u`` per comparison level: the level shares among random pairs (missing values left out)."""
    n = random_counts["n"].to_numpy(dtype=float)
    return {
        c.name: _proportions(random_counts, f"g_{c.name}", len(level_labels(c)), n) for c in model.comparisons
    }


def _default_m(levels: int) -> list[float]:
    # A start that favours the strongest levels; EM moves away from it within a few iterations.
    raw = np.array([0.9 * 0.5**k for k in range(levels)])
    return list(raw / raw.sum())


def _em(
    counts: pd.DataFrame,
    comparisons: list[Comparison],
    u: dict[str, list[float]],
    m: dict[str, list[float]],
    prior: float,
    max_iterations: int,
    tolerance: float = 1e-5,
) -> tuple[dict[str, list[float]], float, int]:
    """Fit ``m`` and the prior of ``comparisons`` on vector counts, ``u`` held fixed."""
    n = counts["n"].to_numpy(dtype=float)
    g = {c.name: counts[f"g_{c.name}"].to_numpy() for c in comparisons}
    it = 0
    for it in range(1, max_iterations + 1):  # noqa: B007 (the count is returned)
        log_m = np.full(len(n), math.log(prior))
        log_u = np.full(len(n), math.log(1 - prior))
        for c in comparisons:
            gi = g[c.name]
            present = gi >= 0
            idx = np.where(present, gi, 0)
            log_m += np.where(present, np.log(np.asarray(m[c.name]))[idx], 0.0)
            log_u += np.where(present, np.log(np.asarray(u[c.name]))[idx], 0.0)
        p = 1 / (1 + np.exp(np.clip(log_u - log_m, -700, 700)))
        w = n * p
        new_prior = min(max(w.sum() / n.sum(), _FLOOR), 1 - _FLOOR)
        new_m = {c.name: _proportions(counts, f"g_{c.name}", len(m[c.name]), w) for c in comparisons}
        delta = max(
            abs(new_prior - prior),
            *(abs(a - b) for c in comparisons for a, b in zip(new_m[c.name], m[c.name], strict=True)),
        )
        m, prior = new_m, new_prior
        if delta < tolerance:
            break
    return m, prior, it


def estimate(
    counts: pd.DataFrame,
    u: dict[str, list[float]],
    model: ProbabilisticRules,
    total_pairs: float | None = None,
) -> LinkageModel:
    """Estimate ``m`` by EM without labels, Splink's way: per blocking rule, on the pairs that rule makes,
    leaving out the comparisons of the attributes it blocks on (every such pair agrees on them, so they
    say nothing there); each comparison's ``m`` is the mean over the rules that estimated it. Then the
    prior of two random records matching.

    Args:
        counts: ``vector_counts`` of the candidate pairs.
        u: ``estimate_u``.
        model: the comparisons and blocking rules.
        total_pairs: every pair of records, n(n-1)/2, for the prior; the candidate pairs when omitted.

    Returns:
        The fitted model.
    """
    sums: dict[str, list[np.ndarray]] = {c.name: [] for c in model.comparisons}
    iterations: dict[str, int] = {}
    for i, rule in enumerate(model.blocking):
        blocked = {p.partition(".")[0] for p in rule}
        free = [c for c in model.comparisons if c.attribute not in blocked]
        mine = counts[counts[f"_in{i}"].astype(bool)]
        if not free or mine.empty:
            continue
        m0 = {c.name: _default_m(len(level_labels(c))) for c in free}
        m, _, iterations[" & ".join(rule)] = _em(mine, free, u, m0, 0.1, model.em.max_iterations)
        for c in free:
            sums[c.name].append(np.asarray(m[c.name]))
    m_final = {
        c.name: list(np.mean(sums[c.name], axis=0)) if sums[c.name] else _default_m(len(level_labels(c)))
        for c in model.comparisons
    }
    # The prior: the chance that two records taken at random match (Splink's
    # probability_two_random_records_match), not the share of matches among candidates. Candidates already
    # agree on a blocking key, and their comparison of it counts that evidence: a prior among candidates
    # would count it twice. Matches outside every block are taken as none: expected matches are the sum of
    # the candidates' match probabilities under the prior, a fixed point found by iterating.
    n = counts["n"].to_numpy(dtype=float)
    total = max(float(total_pairs or n.sum()), n.sum())
    bf = np.zeros(len(n))
    for c in model.comparisons:
        gi = counts[f"g_{c.name}"].to_numpy()
        present = gi >= 0
        idx = np.where(present, gi, 0)
        ratio = np.log(np.asarray(m_final[c.name]))[idx] - np.log(np.asarray(u[c.name]))[idx]
        bf += np.where(present, ratio, 0.0)
    prior = min(max(0.5 * n.sum() / total, _FLOOR / total), 0.5)
    for _ in range(500):
        odds = np.exp(np.clip(bf + math.log(prior / (1 - prior)), -700, 700))
        new = min(max(float((n * odds / (1 + odds)).sum() / total), 1e-12), 1 - _FLOOR)
        if abs(new - prior) <= 1e-6 * prior:
            break
        prior = new
    return LinkageModel(m=m_final, u=u, prior=prior, iterations=iterations)


# ---- scoring -----------------------------------------------------------------------------------------------


def term_frequencies(prepared: DataFrame, model: ProbabilisticRules) -> dict[str, DataFrame]:
    """Per comparison with ``tf_adjust``: ``(value, tf)``, the share of records holding each value."""
    out = {}
    for c in model.comparisons:
        if not c.tf_adjust:
            continue
        present = prepared.where(F.col(f"`{c.attribute}`").isNotNull())
        total = present.count()
        out[c.name] = (
            present.groupBy(F.col(f"`{c.attribute}`").alias("value"))
            .agg(F.count(F.lit(1)).alias("n"))
            .select("value", (F.col("n") / F.lit(float(max(total, 1)))).alias("tf"))
        )
    return out


def _lookup(values: list[float], level: Column) -> Column:
    """The value of ``values`` at index ``level`` (0 for a missing level, -1); one flat CASE WHEN."""
    cases = None
    for k, v in enumerate(values):
        hit = level == k
        cases = F.when(hit, F.lit(float(v))) if cases is None else cases.when(hit, F.lit(float(v)))
    return cases.otherwise(F.lit(0.0))


def score_pairs(
    vectors: DataFrame,
    fitted: LinkageModel,
    model: ProbabilisticRules,
    prepared: DataFrame | None = None,
    tf: dict[str, DataFrame] | None = None,
) -> DataFrame:
    """Match weight and probability of each compared pair.

    Args:
        vectors: ``compare_pairs`` output.
        fitted: the estimated model.
        model: the comparisons.
        prepared: the prepared records, needed with ``tf`` (the value of an exact match is looked up there).
        tf: ``term_frequencies``; an exact match on a value rarer than ``u`` says more, a common one less:
            ``log2(u_exact / tf(value))`` is added (Splink's term-frequency adjustment).

    Returns:
        ``(uid_l, uid_r, g_<comparison>..., w_<comparison>..., match_weight, match_probability,
        deciding)``: ``deciding`` is the comparison and level that added the most weight, e.g.
        ``name:exact``.
    """
    out = vectors
    weights = []
    for c in model.comparisons:
        g = F.col(f"g_{c.name}")
        w = [math.log2(mv / uv) for mv, uv in zip(fitted.m[c.name], fitted.u[c.name], strict=True)]
        col = _lookup(w, g)
        if tf and c.name in tf and prepared is not None:
            value = prepared.select(
                F.col(UID).alias("uid_l"), F.col(f"`{c.attribute}`").alias(f"_v_{c.name}")
            )
            out = out.join(value, on="uid_l", how="left").join(
                tf[c.name].select(F.col("value").alias(f"_v_{c.name}"), F.col("tf").alias(f"_tf_{c.name}")),
                on=f"_v_{c.name}",
                how="left",
            )
            u_exact = fitted.u[c.name][0]
            adjust = F.log2(F.lit(u_exact) / F.greatest(F.col(f"_tf_{c.name}"), F.lit(1e-9)))
            col = col + F.when((g == 0) & F.col(f"_tf_{c.name}").isNotNull(), adjust).otherwise(F.lit(0.0))
        weights.append((c, col.alias(f"w_{c.name}")))
    base = [c for c in vectors.columns]
    scored = out.select(*base, *[w for _, w in weights])
    total = F.lit(fitted.prior_weight)
    for c, _ in weights:
        total = total + F.col(f"w_{c.name}")
    labels = {c.name: level_labels(c) for c in model.comparisons}
    # The deciding comparison: the largest weight; its level's label comes from the level index.
    best = (
        F.greatest(*[F.col(f"w_{c.name}") for c in model.comparisons])
        if len(model.comparisons) > 1
        else (F.col(f"w_{model.comparisons[0].name}"))
    )
    deciding = None
    for c in model.comparisons:
        label = None
        for k, name in enumerate(labels[c.name]):
            hit = F.col(f"g_{c.name}") == k
            label = (
                F.when(hit, F.lit(f"{c.name}:{name}"))
                if label is None
                else label.when(hit, F.lit(f"{c.name}:{name}"))
            )
        hit = F.col(f"w_{c.name}") == best
        deciding = F.when(hit, label) if deciding is None else deciding.when(hit, label)
    return scored.select(
        "*",
        total.alias("match_weight"),
        (F.lit(1.0) / (F.lit(1.0) + F.pow(F.lit(2.0), -total))).alias("match_probability"),
        deciding.alias("deciding"),
    )


THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)
"""Match probabilities the report counts accepted pairs at."""


def waterfall(
    fitted: LinkageModel,
    model: ProbabilisticRules,
    levels: dict[str, int],
    tf_adjust: dict[str, float] | None = None,
) -> list[dict]:
    """One pair's match weight, step by step: the prior, then each comparison's level, ``m``, ``u`` and
    weight (plus its term-frequency adjustment), with the running total and probability.

    Args:
        fitted: the estimated model.
        model: the comparisons.
        levels: ``{comparison: level index}`` (``-1`` missing).
        tf_adjust: ``{comparison: added weight}`` for exact matches adjusted by term frequency.

    Returns:
        Rows ``{step, level, m, u, weight, cumulative, probability}``, the prior first.
    """
    total = fitted.prior_weight
    rows = [
        {
            "step": "prior",
            "level": "",
            "m": None,
            "u": None,
            "weight": total,
            "cumulative": total,
            "probability": 1 / (1 + 2**-total),
        }
    ]
    for c in model.comparisons:
        k = levels.get(c.name, -1)
        w = fitted.weight(c.name, k) + (tf_adjust or {}).get(c.name, 0.0)
        total += w
        rows.append(
            {
                "step": c.name,
                "level": "missing" if k < 0 else level_labels(c)[k],
                "m": None if k < 0 else fitted.m[c.name][k],
                "u": None if k < 0 else fitted.u[c.name][k],
                "weight": w,
                "cumulative": total,
                "probability": 1 / (1 + 2**-total),
            }
        )
    return rows


# ---- the whole stage ---------------------------------------------------------------------------------------


@dataclass
class Linkage:
    """The result of ``link``: the scored candidate pairs and what the report shows.

    Attributes:
        scored: ``score_pairs`` of every candidate pair (checkpointed).
        prepared: the prepared records (``uid``, ``source``, ``record_key``, normalised attributes).
        fitted: the estimated model.
        candidates: the number of candidate pairs.
        records: the number of records.
        skipped_blocks: per blocking rule, key values skipped for holding more than ``max_block_size``.
    """

    scored: DataFrame
    prepared: DataFrame
    fitted: LinkageModel
    candidates: int
    records: int
    skipped_blocks: dict[str, int] = field(default_factory=dict)

    def accepted(self, threshold: float) -> DataFrame:
        """The pairs at or above ``threshold`` match probability."""
        return self.scored.where(F.col("match_probability") >= threshold)


def link(
    records: DataFrame, model: ProbabilisticRules, checkpoint: Callable[[DataFrame, str], DataFrame]
) -> Linkage:
    """Prepare, block, compare, estimate and score: the probabilistic stage on ``(source, record_key,
    <attribute>...)`` records.

    Args:
        records: one row per record, attributes as typed (strings).
        model: the ``probabilistic`` section of the rules.
        checkpoint: materialises an intermediate result (``RunContext.checkpoint`` or
            ``cdp.run.parquet_checkpoint``); the prepared records (normalised values) live there only.

    Returns:
        The scored candidate pairs and the fitted model.
    """
    prepared = checkpoint(records.transform(prepare_records(model)), "linkage_prepared")
    n = prepared.count()
    skipped = {}
    for i, rule in enumerate(model.blocking):
        big = (
            prepared.where(F.col(f"_block{i}").isNotNull())
            .groupBy(f"_block{i}")
            .count()
            .where(F.col("count") > model.max_block_size)
            .count()
        )
        if big:
            skipped[" & ".join(rule)] = big
    pairs = checkpoint(prepared.transform(candidate_pairs(model)), "linkage_pairs")
    compare = compare_pairs(model)
    vectors = checkpoint(compare(pairs, prepared), "linkage_vectors")
    randoms = compare(random_pairs(prepared, model.em.u_pairs, model.em.seed), prepared)
    u = estimate_u(vector_counts(randoms, model), model)
    fitted = estimate(vector_counts(vectors, model), u, model, total_pairs=n * (n - 1) / 2)
    tf = {
        name: checkpoint(frame, f"linkage_tf_{name}")
        for name, frame in term_frequencies(prepared, model).items()
    }
    scored = checkpoint(score_pairs(vectors, fitted, model, prepared, tf), "linkage_scored")
    return Linkage(
        scored=scored,
        prepared=prepared,
        fitted=fitted,
        candidates=scored.count(),
        records=n,
        skipped_blocks=skipped,
    )


# ---- evaluation against a truth ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkageScores:
    """Pairwise quality of linked record pairs against the truth.

    ``recall_sharing`` counts only the true pairs that share at least one attribute value (after
    normalisation): a pair of records with nothing in common cannot be found from the data.
    """

    predicted_pairs: int
    true_pairs: int
    sharing_pairs: int
    correct_pairs: int
    precision: float
    recall: float
    recall_sharing: float
    f1: float

    def as_dict(self) -> dict[str, float | int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _ordered(frame: pd.DataFrame) -> set[tuple[str, str]]:
    return {(a, b) if a < b else (b, a) for a, b in zip(frame["uid_l"], frame["uid_r"], strict=True)}


def score_linkage(predicted: pd.DataFrame, truth_pairs: pd.DataFrame) -> LinkageScores:
    """Score predicted record pairs.

    Args:
        predicted: ``(uid_l, uid_r)`` pairs said to be one person (either order).
        truth_pairs: ``(uid_l, uid_r, shares_attribute)``: every pair of records of one person.

    Returns:
        Precision, recall, recall over the pairs sharing an attribute, F1 (with the latter).
    """
    pred = _ordered(predicted)
    true = _ordered(truth_pairs)
    sharing = _ordered(truth_pairs[truth_pairs["shares_attribute"].astype(bool)])
    correct = len(pred & true)
    precision = correct / len(pred) if pred else 1.0
    recall = correct / len(true) if true else 1.0
    recall_sharing = len(pred & sharing) / len(sharing) if sharing else 1.0
    f1 = 2 * precision * recall_sharing / (precision + recall_sharing) if precision + recall_sharing else 0.0
    return LinkageScores(
        predicted_pairs=len(pred),
        true_pairs=len(true),
        sharing_pairs=len(sharing),
        correct_pairs=correct,
        precision=round(precision, 6),
        recall=round(recall, 6),
        recall_sharing=round(recall_sharing, 6),
        f1=round(f1, 6),
    )


def cluster_pairs(clusters: pd.DataFrame) -> pd.DataFrame:
    """Every pair of records in one cluster (a OneID): ``(uid, cluster)`` -> ``(uid_l, uid_r)``."""
    rows = []
    for _, group in clusters.groupby("cluster")["uid"]:
        members = sorted(group)
        rows += [(a, b) for i, a in enumerate(members) for b in members[i + 1 :]]
    return pd.DataFrame(rows, columns=["uid_l", "uid_r"])
