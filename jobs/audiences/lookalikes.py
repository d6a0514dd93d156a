"""Lookalike expansion of a seed audience, as a job: read the seed and the profile, train on the driver, score
everyone on the engine, keep the top, write the result as a new audience with its evaluation.

    gold.audience_members (seed version) -> consent filter -> seed OneIDs (at least settings.min_seed_size)
    gold.profile (dt) -> features (the seed rule's tags and tags derived from them left out)
        -> seed rows + uniform population sample to the driver (OneID order)
        -> hide-and-recover evaluation on a bounded sub-sample of those rows (it retrains per split)
        -> cross-fitted model, trained once on all driver rows
        -> scores with mapInPandas -> consent filter -> top N -> new audience version
    N between 1 and the consented, profiled people left to choose from (at most MAX_LOOKALIKE_SIZE), else
    refused before any training

The models and the evaluation are :mod:`audiences.lookalike`; this module reads, samples and writes.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pyspark.sql import functions as F

from audiences.consent import without_optouts
from audiences.errors import AudienceError, SeedTooSmallError
from audiences.insight import public_count
from audiences.lookalike import (
    TREES_FROM,
    CrossFitted,
    Evaluation,
    build_scores,
    evaluate,
    feature_columns,
    fit_feature_spec,
    fold_of,
    make_encoder,
    train_crossfit,
)
from audiences.rules import parse_rule
from audiences.spec import AudienceSpec
from cdp.lake import parse_dt
from jobs.audiences.context import AudienceContext, ProfileSnapshot
from jobs.audiences.registry import AudienceVersion, find_ref, write_version

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from cdp.settings import Settings

SAMPLE_ROWS = 200_000
"""Population rows brought to the driver for lookalike training and evaluation."""
SEED_ROWS = 50_000
"""Seed rows brought to the driver at most."""
EVAL_ROWS = 50_000
"""Population rows the hide-and-recover evaluation trains and ranks on at most, a uniform sub-sample of the
driver sample: every split retrains the cross-fitted model, so the evaluation's cost is bounded here."""
EVAL_SEED_ROWS = 10_000
MAX_LOOKALIKE_SIZE = 50_000_000
"""The largest lookalike anyone may ask for, whatever the population: a bound on a typing slip."""
"""Seed rows the evaluation uses at most, a uniform sub-sample weighted back to the seed: the 70 % of them
that train are still in the blend regime of the largest seeds (``audiences.lookalike.TREES_LEAD_FROM``)."""


@dataclass
class LookalikeResult:
    """The new audience, its evaluation (None when not asked for), the seed size and the time spent."""

    audience: AudienceVersion
    evaluation: Evaluation | None
    seed_size: int
    train_seconds: float
    score_seconds: float


@dataclass
class _Seed:
    """A seed ready for training: its version, consented OneIDs and the features it is learned on."""

    version: AudienceVersion
    profile: ProfileSnapshot
    optouts: DataFrame
    ids: DataFrame
    excluded: list[str]
    kinds: dict[str, str]
    size: int

    @property
    def features(self) -> DataFrame:
        """``oneid`` and the feature columns of the whole profile."""
        return self.profile.frame.select("oneid", *self.kinds)


@dataclass
class _Trained:
    model: CrossFitted
    feature_names: list[str]
    evaluation: Evaluation | None


def tags_and_derived(tags: Sequence[str]) -> list[str]:
    """The given tags and every catalog tag computed from them, in order, without repeats.

    A lookalike of a seed made by a rule on ``gender`` must not learn ``inferred_gender`` instead.
    """
    from tags.catalog import load_catalog

    return list(dict.fromkeys([*tags, *load_catalog().derived(tags)]))


def _check_target(size: int | None, top_percent: float | None) -> None:
    if (size is None) == (top_percent is None):
        raise AudienceError("give either --size N or --top-percent P for a lookalike")
    if size is not None and not 1 <= size <= MAX_LOOKALIKE_SIZE:
        raise AudienceError(
            f"a lookalike size must be between 1 and {MAX_LOOKALIKE_SIZE:,} people; {size:,} was asked for"
        )
    if top_percent is not None and not 0 < top_percent <= 100:
        raise AudienceError(f"top-percent must be above 0 and at most 100; {top_percent:g} was asked for")


def _room(seed: _Seed, *, include_seed: bool) -> tuple[int, int]:
    """The people in the profile, and the consented ones a lookalike may choose from (one query)."""
    flags = seed.profile.frame.select("oneid").join(
        seed.optouts.select("oneid").distinct().withColumn("_o", F.lit(1)), "oneid", "left"
    )
    flags = flags.join(seed.ids.withColumn("_s", F.lit(1)), "oneid", "left")
    eligible = F.col("_o").isNull() if include_seed else F.col("_o").isNull() & F.col("_s").isNull()
    room = F.sum(F.when(eligible, 1).otherwise(0)).alias("room")
    row = flags.agg(F.count("*").alias("n"), room).collect()[0]
    return int(row["n"]), int(row["room"] or 0)


def _check_room(keep: int, room: int, seed: _Seed, *, include_seed: bool) -> None:
    """Raises AudienceError when ``keep`` people are more than the lookalike can choose from."""
    if keep > room:
        others = "consented, profiled people" + ("" if include_seed else " outside the seed")
        raise AudienceError(
            f"a lookalike of {keep:,} people is larger than the {room:,} {others} on {seed.profile.dt}; "
            f"ask for at most {room:,}"
        )
    if keep < 1:
        raise AudienceError("the lookalike would hold nobody; ask for a larger size or top-percent")


def _shown(count: int, k: int) -> str:
    shown = public_count(count, k)
    return f"{shown:,}" if isinstance(shown, int) else shown


def _prepare_seed(ctx: AudienceContext, seed: str, dt: _dt.date | None, exclude_tags: Sequence[str]) -> _Seed:
    """The seed's consented, profiled members and the features left after the exclusions.

    Raises:
        AudienceError: no feature is left.
        SeedTooSmallError: fewer members than ``settings.min_seed_size``.
    """
    sv = find_ref(ctx, seed)
    profile = ctx.profile(dt or parse_dt(sv.dt))
    optouts = ctx.optouts(profile.dt)
    ids = (
        ctx.version_members(sv.audience_id, sv.version)
        .select("oneid")
        .distinct()
        .transform(without_optouts(optouts))
    )
    rule_tags = parse_rule(sv.definition["rule"]).tags() if sv.definition.get("rule") else []
    excluded = tags_and_derived([*rule_tags, *exclude_tags])
    kinds = feature_columns(profile.columns, excluded)
    if not kinds:
        raise AudienceError("no profile tags are left as features after the exclusions; exclude fewer tags")
    size = profile.frame.select("oneid", *kinds).join(ids, "oneid").count()
    minimum = ctx.settings.min_seed_size
    if size < minimum:
        raise SeedTooSmallError(
            f"seed {sv.audience_id}@{sv.version} has {_shown(size, ctx.settings.min_group_size)} consented "
            f"members with a profile on "
            f"{profile.dt}; a lookalike needs at least {minimum:,}. Widen the seed audience."
        )
    return _Seed(sv, profile, optouts, ids, excluded, kinds, size)


def _driver_rows(seed: _Seed, population: int, sample_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seed rows (at most ``SEED_ROWS``) and a uniform population sample flagged ``_seed``, in OneID order:
    the engine returns rows in any order, and the same lake must give the same model."""
    seed_rows = seed.features.join(seed.ids, "oneid")
    if seed.size > SEED_ROWS:
        seed_rows = seed_rows.sample(fraction=min(1.0, SEED_ROWS / seed.size), seed=7)
    flagged = seed.features.join(seed.ids.withColumn("_seed", F.lit(True)), "oneid", "left")
    fraction = min(1.0, sample_rows / max(population, 1))
    sample = flagged.sample(fraction=fraction, seed=11) if fraction < 1 else flagged
    return (
        seed_rows.toPandas().sort_values("oneid", ignore_index=True),
        sample.toPandas().sort_values("oneid", ignore_index=True),
    )


def _train(
    seed: _Seed, population: int, *, sample_rows: int, evaluation: bool, splits: int | None
) -> _Trained:
    """Evaluate (hide and recover) when asked, then fit the cross-fitted model on the whole seed."""
    seed_pdf, sample_pdf = _driver_rows(seed, population, sample_rows)
    is_seed = sample_pdf["_seed"].fillna(False).astype(bool).to_numpy()
    spec = fit_feature_spec(sample_pdf, seed.kinds, seed.profile.dt)
    encode = make_encoder(spec)
    x_seed, x_sample = encode(seed_pdf), encode(sample_pdf)
    report = None
    if evaluation:
        report = _evaluate(x_seed, x_sample, is_seed, spec, seed, population, splits)
    unlabelled = ~is_seed
    folds = fold_of(sample_pdf.loc[unlabelled, "oneid"])
    model = train_crossfit(x_seed, x_sample[unlabelled], folds, spec)
    return _Trained(model, spec["names"], report)


def _subsample(rows: int, most: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of a uniform sub-sample of at most ``most`` of ``rows`` rows, in their order."""
    return np.arange(rows) if rows <= most else np.sort(rng.choice(rows, size=most, replace=False))


def _evaluate(
    x_seed: np.ndarray,
    x_sample: np.ndarray,
    is_seed: np.ndarray,
    spec: dict[str, Any],
    seed: _Seed,
    population: int,
    splits: int | None,
) -> Evaluation:
    """Hide and recover on at most :data:`EVAL_ROWS` sample rows and :data:`EVAL_SEED_ROWS` seed rows,
    weighted back to the population and the seed; the production model is trained separately, once.

    By default three splits below ``TREES_FROM`` seed members, where the blend has no fitting loop and a
    split's 30 hidden members make its figures swing, and one split above, where a split retrains trees
    and a regression and hides hundreds of members."""
    if splits is None:
        splits = 3 if seed.size < TREES_FROM else 1
    rng = np.random.default_rng(17)
    rows = _subsample(len(x_sample), EVAL_ROWS, rng)
    seed_rows = _subsample(len(x_seed), EVAL_SEED_ROWS, rng)
    report = evaluate(
        x_seed[seed_rows],
        x_sample[rows],
        is_seed[rows],
        spec,
        population=population,
        seed_population=seed.size,
        splits=splits,
        excluded=seed.excluded,
    )
    if len(rows) < len(x_sample) or len(seed_rows) < seed.size:
        report.notes.append(
            f"evaluated on {len(seed_rows):,} seed and {len(rows):,} sample rows, weighted back to the seed "
            f"and the population; the model is trained once, on {len(x_seed):,} seed and "
            f"{int((~is_seed).sum()):,} other rows"
        )
    return report


def _top_scored(seed: _Seed, model: CrossFitted, keep: int, *, include_seed: bool) -> DataFrame:
    """The ``keep`` consented OneIDs with the highest scores (``oneid``, ``score``), ties by OneID."""
    scores = seed.features.mapInPandas(build_scores(model), "oneid string, score double")
    candidates = scores if include_seed else scores.join(seed.ids, "oneid", "left_anti")
    return (
        candidates.transform(without_optouts(seed.optouts))
        .orderBy(F.col("score").desc(), F.col("oneid"))
        .limit(keep)
    )


def _details(
    seed: _Seed, trained: _Trained, size: int | None, top_percent: float | None, include_seed: bool
) -> dict[str, Any]:
    sv = seed.version
    return {
        "seed": {"audience_id": sv.audience_id, "version": sv.version, "members": seed.size},
        "size": size,
        "top_percent": top_percent,
        "include_seed": include_seed,
        "excluded_tags": seed.excluded,
        "features": trained.feature_names,
        "evaluation": trained.evaluation.as_dict() if trained.evaluation else None,
    }


def check_size(
    spark: SparkSession,
    settings: Settings,
    seed: str,
    size: int,
    *,
    include_seed: bool = False,
    dt: _dt.date | None = None,
) -> None:
    """Refuse at once a lookalike of ``size`` people that :func:`lookalike` would refuse (for the web app,
    before it queues a background task).

    Raises:
        UnknownAudienceError: no such seed audience.
        SeedTooSmallError: fewer consented, profiled seed members than ``settings.min_seed_size``.
        AudienceError: ``size`` below 1, above ``MAX_LOOKALIKE_SIZE`` or above the consented, profiled
            people left to choose from.
    """
    _check_target(size, None)
    prepared = _prepare_seed(AudienceContext.open(spark, settings), seed, dt, ())
    _, room = _room(prepared, include_seed=include_seed)
    _check_room(size, room, prepared, include_seed=include_seed)


def lookalike(
    spark: SparkSession,
    settings: Settings,
    seed: str,
    *,
    size: int | None = None,
    top_percent: float | None = None,
    name: str | None = None,
    exclude_tags: list[str] | tuple[str, ...] = (),
    include_seed: bool = False,
    evaluation: bool = True,
    splits: int | None = None,
    dt: _dt.date | None = None,
    created_by: str | None = None,
    sample_rows: int = SAMPLE_ROWS,
) -> LookalikeResult:
    """Expand a seed audience: train on the seed against the population, score everyone, keep the top.

    Args:
        spark: the session.
        settings: the deployment's settings (``min_seed_size``).
        seed: the seed audience (``id`` or ``id@version``).
        size: people to keep (besides the seed); or ``top_percent`` of the population.
        top_percent: the share of the population to keep, in percent.
        name: the new audience's name (``<seed>_lookalike`` by default).
        exclude_tags: tags left out of the features, on top of those the seed's rule reads.
        include_seed: also put the seed members in the new audience.
        evaluation: run the hide-and-recover evaluation and store it with the version.
        splits: random splits of the evaluation (by default three for seeds under 300, else one).
        dt: the profile date; the seed version's dt by default.
        created_by: the author recorded (the OS user by default).
        sample_rows: population rows brought to the driver.

    Returns:
        The new audience version, the evaluation, the seed size and the training and scoring times.

    Raises:
        SeedTooSmallError: fewer consented, profiled seed members than ``settings.min_seed_size``.
        AudienceError: neither or both of ``size`` and ``top_percent``; a size below 1, above
            ``MAX_LOOKALIKE_SIZE`` or above the consented, profiled people left to choose from.
    """
    started = time.perf_counter()
    _check_target(size, top_percent)
    ctx = AudienceContext.open(spark, settings)
    prepared = _prepare_seed(ctx, seed, dt, exclude_tags)
    population, room = _room(prepared, include_seed=include_seed)
    keep = size if size is not None else round(population * float(top_percent) / 100)
    _check_room(keep, room, prepared, include_seed=include_seed)
    t0 = time.perf_counter()
    trained = _train(prepared, population, sample_rows=sample_rows, evaluation=evaluation, splits=splits)
    train_seconds = time.perf_counter() - t0

    t1 = time.perf_counter()
    chosen = _top_scored(prepared, trained.model, keep, include_seed=include_seed)
    sv = prepared.version
    spec = AudienceSpec(
        name or f"{sv.audience_id}_lookalike", "lookalike", f"lookalike of {sv.audience_id}@{sv.version}"
    )
    details = _details(prepared, trained, size, top_percent, include_seed)
    day = prepared.profile.dt
    out = write_version(
        ctx, spec, chosen, prepared.optouts, day, details=details, created_by=created_by, started=started
    )
    score_seconds = round(time.perf_counter() - t1, 2)
    return LookalikeResult(out, trained.evaluation, prepared.size, round(train_seconds, 2), score_seconds)
