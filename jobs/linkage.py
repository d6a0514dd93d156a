"""The probabilistic step of ``cdp identity run`` (and ``cdp identity link``): records without strong
identifiers -> scored pairs -> edges of the identity graph.

    silver.<entity> (the source's rows, record key and non-direct attributes)
    bronze.<source> (direct PII, encrypted: decrypted here, inside the run's scratch only)
        -> identity.linkage.link          prepare, block, compare, EM, score      (run scratch)
        -> pair tuples                     accepted pairs as 2-identifier records  -> the graph's records
        -> gold.id_match_pairs             pairs at p >= 0.5: weight, deciding comparison, levels (no value)
        -> gold.linkage_model              m, u and weight per comparison level, the prior

The graph treats an accepted pair like a record holding both record keys (source ``probabilistic:<name>``),
so the same over-merge guards apply: a record linked to more than ``max_links`` records of one source is
treated as shared and its links are pruned with the reason. The two audit tables are written with the rest
of the run, after the gate (``jobs.identity.run``).

Privacy: the normalised names, phones and addresses exist only in the run's scratch Parquet, removed when
the run ends; the audit tables hold record keys (hidden from analysts like every ``<x>_value``), levels and
weights, never a value.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.lake import bronze_table, silver_table
from cdp.run import RunContext, union_all
from identity.linkage import THRESHOLDS, UID, Linkage, level_labels, link
from identity.normalize import NORMALIZERS
from identity.pii import build_decrypted
from identity.rules import IdentityRules, LinkagePlan, ProbabilisticRules
from schemas import SourceContract
from schemas.contract import SILVER_SOURCE

MATCH_PAIRS, LINKAGE_MODEL = "gold.id_match_pairs", "gold.linkage_model"
AUDIT_FLOOR = 0.5
"""Scored pairs at or above this match probability are kept in ``gold.id_match_pairs``."""


class LinkageError(RuntimeError):
    """Probabilistic linkage cannot run: a source's attributes are not readable; the message says why."""


@dataclass
class LinkageReport:
    """What the probabilistic step found (rows ``linkage`` of ``gold.identity_report``)."""

    records: int = 0
    candidates: int = 0
    accepted: int = 0
    threshold: float = 0.0
    prior: float = 0.0
    by_threshold: dict[str, int] = field(default_factory=dict)
    weights: dict[str, int] = field(default_factory=dict)
    skipped_blocks: dict[str, int] = field(default_factory=dict)
    parameters: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def rows(self) -> list[tuple[str, str, float, object]]:
        """``(metric, dimension, value, detail)`` rows for ``gold.identity_report``."""
        out = [
            ("linkage", "records", self.records, None),
            ("linkage", "candidate_pairs", self.candidates, None),
            ("linkage", "accepted_pairs", self.accepted, {"threshold": self.threshold}),
            ("linkage", "prior", self.prior, None),
            ("linkage", "seconds", self.seconds, {"skipped_blocks": self.skipped_blocks}),
        ]
        out += [("linkage_accepted_at", t, n, None) for t, n in self.by_threshold.items()]
        out += [("linkage_weight", b, n, None) for b, n in self.weights.items()]
        out += [
            ("linkage_parameter", f"{p['comparison']}:{p['level']}", p["weight"], p) for p in self.parameters
        ]
        return out

    def summary(self) -> list[str]:
        """Human-readable lines: counts, pairs per threshold, the score distribution, m and u."""
        lines = [
            f"  probabilistic linkage: {self.records:,} records, {self.candidates:,} candidate pairs, "
            f"{self.accepted:,} accepted at p >= {self.threshold:g} (prior {self.prior:.2e}), "
            f"{self.seconds:.1f} s",
            "  pairs accepted per threshold: "
            + ", ".join(f"{t}: {n:,}" for t, n in self.by_threshold.items()),
            "  match weight distribution: " + ", ".join(f"{b}: {n:,}" for b, n in self.weights.items()),
        ]
        if self.skipped_blocks:
            lines.append(f"  blocking keys skipped (over max_block_size): {self.skipped_blocks}")
        for p in self.parameters:
            if p["comparison"] == "prior":
                continue
            lines.append(
                f"    {p['comparison']:<12} {p['level']:<22} m {p['m']:.4f}  u {p['u']:.5f}  "
                f"weight {p['weight']:+.2f}"
            )
        return lines


def linkage_records(
    ctx: RunContext, plan: LinkagePlan, contract: SourceContract, key: str
) -> DataFrame | None:
    """The source's records up to dt: ``(source, record_key, <attribute>...)`` as strings; None when the
    source has no silver table yet.

    Non-direct attributes come from silver; direct PII (names, phones, addresses) from the latest bronze
    row of each record, decrypted here.

    Raises:
        LinkageError: a direct-PII attribute of a source whose bronze keeps none (``bronze_pii: exclude``).
    """
    table = silver_table(contract.entity)
    if not ctx.lake.exists(table):
        return None
    rows = ctx.read_up_to(table)
    if SILVER_SOURCE in rows.columns:
        rows = rows.where(F.col(SILVER_SOURCE) == plan.source)
    record = F.col(f"`{plan.record_id}`").cast("string")
    plain = {a: c for a, c in plan.columns.items() if c not in plan.direct}
    out = rows.select(
        F.lit(plan.source).alias("source"),
        record.alias("record_key"),
        *[F.col(f"`{c}`").cast("string").alias(a) for a, c in plain.items()],
    ).where(F.col("record_key").isNotNull())
    direct = {a: c for a, c in plan.columns.items() if c in plan.direct}
    if direct:
        if contract.bronze_pii == "exclude":
            raise LinkageError(
                f"source {plan.source} keeps no direct PII in bronze (bronze_pii: exclude), so "
                f"{sorted(direct.values())} cannot be compared; set bronze_pii: encrypt in its contract or "
                "remove those columns from probabilistic.sources in the identity rules"
            )
        bronze = ctx.read_up_to(bronze_table(plan.source), column="dt")
        order = [F.col("_ingested_at").desc()]
        if plan.order_by and plan.order_by in bronze.columns:
            order.insert(0, F.col(f"`{plan.order_by}`").desc_nulls_last())
        ordering = [c for c in ("_ingested_at", plan.order_by) if c and c in bronze.columns]
        bronze_key = F.col(f"`{plan.record_id}`").cast("string")
        if plan.record_type in NORMALIZERS:  # silver holds an ID-typed key normalised (a member id)
            bronze_key = NORMALIZERS[plan.record_type](bronze_key)
        latest = (
            bronze.select(
                bronze_key.alias("record_key"),
                *[F.col(f"`{c}`").alias(f"_enc_{a}") for a, c in direct.items()],
                *[F.col(f"`{c}`") for c in ordering],
            )
            .withColumn("_n", F.row_number().over(Window.partitionBy("record_key").orderBy(*order)))
            .where(F.col("_n") == 1)
            .select("record_key", *[build_decrypted(F.col(f"_enc_{a}"), key).alias(a) for a in direct])
        )
        out = out.join(latest, on="record_key", how="left")
    return out.select("source", "record_key", *plan.columns)


def run_linkage(
    ctx: RunContext,
    rules: IdentityRules,
    plans: list[LinkagePlan],
    sources: dict[str, SourceContract],
    key: str,
) -> tuple[DataFrame | None, Linkage | None, LinkageReport]:
    """Score the records of the probabilistic sources and return the accepted pairs as identifier tuples.

    Returns:
        ``(tuples, linkage, report)``: ``tuples`` in the form of ``identity.graph.record_identifiers``
        (source ``probabilistic:<name>``), None when no source has records yet.
    """
    model = rules.probabilistic
    report = LinkageReport(threshold=model.threshold)
    parts = [r for p in plans if (r := linkage_records(ctx, p, sources[p.source], key)) is not None]
    if not parts:
        return None, None, report
    started = ctx.elapsed()
    records = union_all(parts, allow_missing=True)
    result = link(records, model, ctx.checkpoint)
    _fill(report, result, model)
    types = {p.source: p.record_type for p in plans}
    kind = _record_type(types)
    ranks = {t: rules.rank(t) * 100 for t in set(types.values())}
    rank = None
    for t, r in ranks.items():
        rank = (
            F.when(F.col("_type") == t, F.lit(r))
            if rank is None
            else rank.when(F.col("_type") == t, F.lit(r))
        )
    ends = result.prepared.select(UID, "record_key", kind.alias("_type")).select(
        UID, "record_key", "_type", rank.cast("int").alias("_rank")
    )
    pairs = _with_ends(result.accepted(model.threshold).select("uid_l", "uid_r"), ends)
    seen = F.lit(_dt.datetime.combine(ctx.dt, _dt.time())).cast("timestamp")
    # Shaped exactly like identity.graph.record_identifiers (non-NULL types and ranks, filtered array):
    # Sail refuses a union of structs that differ only in nullability.
    ids = F.filter(
        F.array(
            *[
                F.struct(
                    F.coalesce(F.col(f"{s}_type"), F.lit("")).alias("id_type"),
                    F.col(f"{s}_key").alias("id_value"),
                    F.coalesce(F.col(f"{s}_rank") + offset, F.lit(0)).cast("int").alias("rank"),
                )
                for s, offset in (("l", 0), ("r", 1))
            ]
        ),
        lambda i: i["id_value"].isNotNull(),
    )
    tuples = pairs.select(
        F.lit(model.edge_source).alias("source"),
        ids.alias("ids"),
        seen.alias("first_seen"),
        seen.alias("last_seen"),
        F.lit(1).cast("long").alias("records"),
    )
    report.seconds = round(ctx.elapsed() - started, 3)
    ctx.step("linkage")
    return tuples, result, report


def _with_ends(pairs: DataFrame, ends: DataFrame) -> DataFrame:
    """Pairs ``(uid_l, uid_r, ...)`` with each record's type, key and rank as ``l_*`` and ``r_*``."""
    for side in ("l", "r"):
        pairs = pairs.join(
            ends.select(
                F.col(UID).alias(f"uid_{side}"),
                F.col("record_key").alias(f"{side}_key"),
                F.col("_type").alias(f"{side}_type"),
                F.col("_rank").alias(f"{side}_rank"),
            ),
            on=f"uid_{side}",
        )
    return pairs


def _fill(report: LinkageReport, result: Linkage, model: ProbabilisticRules) -> None:
    """The report's small figures: a few rows each reach the driver."""
    report.records, report.candidates = result.records, result.candidates
    report.prior, report.skipped_blocks = result.fitted.prior, result.skipped_blocks
    p = F.col("match_probability")
    counts = result.scored.agg(
        *[F.sum(F.when(p >= t, 1).otherwise(0)).alias(f"t{i}") for i, t in enumerate(THRESHOLDS)],
        F.sum(F.when(p >= model.threshold, 1).otherwise(0)).alias("accepted"),
    ).collect()[0]
    report.by_threshold = {f"{t:g}": int(counts[f"t{i}"] or 0) for i, t in enumerate(THRESHOLDS)}
    report.accepted = int(counts["accepted"] or 0)
    bucket = F.least(F.greatest(F.floor(F.col("match_weight") / 5) * 5, F.lit(-20)), F.lit(30)).cast("int")
    hist = result.scored.groupBy(bucket.alias("b")).count().orderBy("b").collect()
    report.weights = {f"{r['b']}..{r['b'] + 5}": int(r["count"]) for r in hist}
    report.parameters = model_rows(result, model)


def model_rows(result: Linkage, model: ProbabilisticRules) -> list[dict]:
    """The fitted parameters as rows of ``gold.linkage_model`` (without ``dt``)."""
    fitted = result.fitted
    rows = [
        {
            "comparison": "prior",
            "level": "prior",
            "level_index": -1,
            "m": None,
            "u": None,
            "weight": fitted.prior_weight,
        }
    ]
    for c in model.comparisons:
        for k, label in enumerate(level_labels(c)):
            m, u = float(fitted.m[c.name][k]), float(fitted.u[c.name][k])
            rows.append(
                {
                    "comparison": c.name,
                    "level": label,
                    "level_index": k,
                    "m": m,
                    "u": u,
                    "weight": math.log2(m / u),
                }
            )
    return rows


def _record_type(types: dict[str, str]) -> Column:
    """The vertex ID type of a record from its ``source`` column (one flat CASE WHEN)."""
    kind = None
    for source, t in types.items():
        hit = F.col("source") == source
        kind = F.when(hit, F.lit(t)) if kind is None else kind.when(hit, F.lit(t))
    return kind


def _waterfall_steps(model: ProbabilisticRules) -> list[Column]:
    """Per comparison, ``{comparison, level, weight}`` of a scored pair: the audit's waterfall."""
    steps = []
    for c in model.comparisons:
        level = F.lit("missing")
        for k, name in enumerate(level_labels(c)):
            level = F.when(F.col(f"g_{c.name}") == k, F.lit(name)).otherwise(level)
        steps.append(
            F.struct(
                F.lit(c.name).alias("comparison"),
                level.alias("level"),
                F.round(f"w_{c.name}", 4).alias("weight"),
            )
        )
    return steps


def audit_tables(
    ctx: RunContext, rules: IdentityRules, result: Linkage, report: LinkageReport, vertices: DataFrame
) -> dict[str, DataFrame]:
    """The staged rows of ``gold.id_match_pairs`` and ``gold.linkage_model`` for this date."""
    model = rules.probabilistic
    types = {s.source: rules.record_type(s.source) for s in model.sources}
    kind = _record_type(types)
    ends = result.prepared.select(UID, "record_key", kind.alias("_type"), F.lit(0).alias("_rank"))
    steps = _waterfall_steps(model)
    kept = result.scored.where(F.col("match_probability") >= AUDIT_FLOOR)
    pairs = _with_ends(kept, ends)
    vid = vertices.select("id_type", "id_value", "vid")
    out = (
        pairs.select(
            F.col("l_type").alias("src_type"),
            F.col("l_key").alias("src_value"),
            F.col("r_type").alias("dst_type"),
            F.col("r_key").alias("dst_value"),
            F.lit(model.edge_source).alias("source"),
            "match_weight",
            "match_probability",
            (F.col("match_probability") >= model.threshold).alias("accepted"),
            "deciding",
            F.to_json(F.array(*steps)).alias("comparisons"),
        )
        .join(
            vid.select(
                F.col("id_type").alias("src_type"),
                F.col("id_value").alias("src_value"),
                F.col("vid").alias("src_vid"),
            ),
            on=["src_type", "src_value"],
            how="left",
        )
        .join(
            vid.select(
                F.col("id_type").alias("dst_type"),
                F.col("id_value").alias("dst_value"),
                F.col("vid").alias("dst_vid"),
            ),
            on=["dst_type", "dst_value"],
            how="left",
        )
    )
    dated = F.lit(ctx.dt).alias("dt")
    pairs_out = out.select(
        "src_vid",
        "src_type",
        "src_value",
        "dst_vid",
        "dst_type",
        "dst_value",
        "source",
        "match_weight",
        "match_probability",
        "accepted",
        "deciding",
        "comparisons",
        dated,
    )
    model_df = ctx.spark.createDataFrame(
        [r | {"dt": ctx.dt} for r in report.parameters], ctx.lake.contracts[LINKAGE_MODEL].ddl
    )
    return {MATCH_PAIRS: ctx.checkpoint(pairs_out, "match_pairs"), LINKAGE_MODEL: model_df}


def waterfall_rows(pair: dict, model_rows_: list[dict]) -> list[dict]:
    """One audited pair's waterfall: the prior, then each comparison's level, m, u and weight (term-frequency
    adjustment included) with the running total and probability."""
    params = {(r["comparison"], r["level"]): r for r in model_rows_}
    prior = next(r["weight"] for r in model_rows_ if r["comparison"] == "prior")
    total = prior
    out = [
        {
            "step": "prior",
            "level": "",
            "m": None,
            "u": None,
            "weight": prior,
            "cumulative": total,
            "probability": 1 / (1 + 2**-total),
        }
    ]
    for step in json.loads(pair["comparisons"]):
        p = params.get((step["comparison"], step["level"]), {})
        total += step["weight"]
        out.append(
            {
                "step": step["comparison"],
                "level": step["level"],
                "m": p.get("m"),
                "u": p.get("u"),
                "weight": step["weight"],
                "cumulative": total,
                "probability": 1 / (1 + 2**-total),
            }
        )
    return out


# ---- explain a pair, evaluate ------------------------------------------------------------------------------


def explain_pair(spark, settings, first: str, second: str, *, dt=None) -> dict:
    """The audited pair of two record keys and its waterfall of match weights.

    Args:
        spark: the engine session.
        settings: the lake location.
        first, second: record keys as in the source (``customer_no``), or ``<id_type>:<key>``.
        dt: the date; the latest of ``gold.id_match_pairs`` when omitted.

    Returns:
        ``{dt, pair, waterfall}``; ``pair`` is None when the two records were not a candidate pair scored at
        p >= 0.5 (no blocking rule put them together, or their weight was low).

    Raises:
        LinkageError: no probabilistic linkage has run yet.
    """
    from cdp.lake import Lake, parse_dt

    lake = Lake.from_settings(spark, settings)
    if not lake.exists(MATCH_PAIRS) or not lake.exists(LINKAGE_MODEL):
        raise LinkageError(f"{MATCH_PAIRS} does not exist yet; run cdp identity link --dt YYYY-MM-DD first")
    day = lake.latest_dt(MATCH_PAIRS) if dt is None else parse_dt(dt)
    if day is None:
        raise LinkageError(f"{MATCH_PAIRS} is empty; run cdp identity link --dt YYYY-MM-DD first")

    def match(side: str, value: str):
        id_type, sep, key = value.rpartition(":")
        cond = F.col(f"{side}_value") == (key if sep else value)
        return cond & (F.col(f"{side}_type") == id_type) if sep else cond

    pairs = lake.read_dt(MATCH_PAIRS, day)
    found = (
        pairs.where(
            (match("src", first) & match("dst", second)) | (match("src", second) & match("dst", first))
        )
        .limit(1)
        .collect()
    )
    params = [r.asDict() for r in lake.read_dt(LINKAGE_MODEL, day).collect()]
    if not found:
        return {"dt": day.isoformat(), "pair": None, "waterfall": []}
    pair = found[0].asDict()
    return {"dt": day.isoformat(), "pair": pair, "waterfall": waterfall_rows(pair, params)}


def evaluate_linkage(spark, settings, dt, *, truth_path=None) -> dict:
    """Score the probabilistic stage alone (its accepted pairs) and the whole graph (pairs of records in
    one OneID) against the demo truth of attribute-only records (``demo.persons_noisy``).

    Returns:
        ``{"probabilistic": LinkageScores, "graph": LinkageScores}``; empty when there is no truth file or
        no linkage on that date.
    """
    from pathlib import Path

    import pandas as pd

    from cdp.lake import Lake, parse_dt
    from identity.linkage import cluster_pairs, score_linkage
    from identity.rules import RECORD_PREFIX

    lake = Lake.from_settings(spark, settings)
    path = Path(truth_path) if truth_path else Path(settings.truth_root) / "linkage_pairs.parquet"
    day = parse_dt(dt)
    if not path.exists() or not lake.exists(MATCH_PAIRS):
        return {}
    truth = pd.read_parquet(path)
    sep = "\u001f"
    record = F.col("id_type").startswith(RECORD_PREFIX)
    uid = F.concat(F.substring_index(F.col("id_type"), ":", -1), F.lit(sep), F.col("id_value"))
    clusters = (
        lake.read_dt("gold.oneid_map", day)
        .where(record)
        .select(uid.alias("uid"), F.col("oneid").alias("cluster"))
    ).toPandas()
    accepted = lake.read_dt(MATCH_PAIRS, day).where(
        F.col("accepted") & F.col("src_type").startswith(RECORD_PREFIX)
    )

    def side(s: str):
        return F.concat(F.substring_index(F.col(f"{s}_type"), ":", -1), F.lit(sep), F.col(f"{s}_value"))

    stage = accepted.select(side("src").alias("uid_l"), side("dst").alias("uid_r")).toPandas()
    return {
        "probabilistic": score_linkage(stage, truth),
        "graph": score_linkage(cluster_pairs(clusters), truth),
    }
