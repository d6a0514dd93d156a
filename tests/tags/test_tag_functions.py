"""RFM scores, segments and value tiers against a hand-computed fixture; aggregate tags over a tiny view."""

from __future__ import annotations

import datetime

from pyspark.sql import functions as F

from cdp.testing import assert_df_equal
from tags import load_catalog
from tags.build import derived_tags, source_tags, to_long
from tags.catalog import TagDefinition

RFM = ["rfm_r_score", "rfm_f_score", "rfm_m_score", "rfm_segment", "value_tier"]
# oneid, r_365d (days since last purchase), purchases and spend in 365 days. Means: R 71, F 3.6, M 370.
FIXTURE = [
    (1, 5, 6, 600.0),
    (2, 10, 4, 300.0),
    (3, 40, 1, 100.0),
    (4, 100, 2, 800.0),
    (5, 200, 5, 50.0),
    (6, None, 0, 0.0),
]
# By hand: R desc by days, F and M asc, score = ceil(5 * cume_dist); H/L against the buyers' mean.
EXPECTED = [
    (1, 5, 5, 4, "重要价值", "high"),  # R H (5 <= 71), F H (6 >= 3.6), M H (600 >= 370); 14
    (2, 4, 3, 3, "一般价值", "mid"),  # H H L; 10
    (3, 3, 1, 2, "一般发展", "low"),  # H L L; 6
    (4, 2, 2, 5, "重要挽留", "mid"),  # L L H; 9
    (5, 1, 4, 1, "一般保持", "low"),  # L H L; 6
    (6, None, None, None, None, "low"),  # no purchase in 365 days
]


def rfm_frame(spark):
    return spark.createDataFrame(
        FIXTURE, "oneid long, r_365d long, purchase_count_365d long, purchase_amount_365d double"
    )


def test_rfm_scores_segments_and_value_tiers_match_the_hand_computed_fixture(spark) -> None:
    catalog = load_catalog([])
    actual = rfm_frame(spark).transform(derived_tags([catalog[t] for t in RFM])).select("oneid", *RFM)
    expected = spark.createDataFrame(
        EXPECTED,
        "oneid long, rfm_r_score long, rfm_f_score long, rfm_m_score long, "
        "rfm_segment string, value_tier string",
    )
    assert_df_equal(actual, expected, order_by=["oneid"])


def test_rfm_segment_split_by_median_is_configurable(spark) -> None:
    base = load_catalog([])["rfm_segment"]
    median = TagDefinition.model_validate(
        base.model_dump(by_alias=True) | {"params": {**base.params, "split": "median"}}
    )
    got = {r["oneid"]: r["rfm_segment"] for r in rfm_frame(spark).transform(derived_tags([median])).collect()}
    # Medians: R 40 days, F 4, M 300.
    assert got == {1: "重要价值", 2: "重要价值", 3: "一般发展", 4: "重要挽留", 5: "一般保持", 6: None}


def test_aggregate_tags_share_one_pass_and_complex_values_get_their_own(spark) -> None:
    catalog = load_catalog([])
    tags = [
        catalog[t] for t in ("purchase_count_30d", "r_30d", "purchase_amount_365d", "price_band_preference")
    ]
    orders = spark.createDataFrame(
        [
            (1, "o1", "paid", 3, 100.0, 100.0),
            (1, "o2", "paid", 50, 700.0, 700.0),
            (1, "o3", "refunded", 1, 999.0, 999.0),
            (2, "o4", "paid", 400, 20.0, 20.0),
        ],
        "oneid long, order_id string, status string, days_ago int, amount double, unit_price double",
    ).withColumn("as_of", F.lit(datetime.date(2026, 11, 1)))
    population = spark.createDataFrame([(1,), (2,), (3,)], "oneid long")
    actual = source_tags(population, {"orders": orders}, tags)
    expected = spark.createDataFrame(
        [(1, 1, 3, 800.0, "mid"), (2, 0, None, 0.0, None), (3, 0, None, 0.0, None)],
        "oneid long, purchase_count_30d long, r_30d long, purchase_amount_365d double, "
        "price_band_preference string",
    )
    assert_df_equal(actual, expected, order_by=["oneid"])
    long = to_long(actual, ["purchase_count_30d", "r_30d"])
    assert sorted(tuple(r) for r in long.collect()) == [
        ("1", "purchase_count_30d", "1"),
        ("1", "r_30d", "3"),
        ("2", "purchase_count_30d", "0"),
        ("3", "purchase_count_30d", "0"),
    ]


def test_distinct_counts_in_two_levels_equal_count_distinct_filter_in_one_pass(spark) -> None:
    base = load_catalog([])["purchase_count_30d"].model_dump(by_alias=True)
    tags = [
        TagDefinition.model_validate(base | {"id": tag_id, "value": value, "where": where, "default": 0})
        for tag_id, value, where in [
            ("paid", "count(DISTINCT order_id)", "status = 'paid'"),
            ("recent", "count(DISTINCT order_id)", "days_ago < 30 AND status <> 'refunded'"),
            ("every", "COUNT( distinct order_id )", None),
            ("days", "count(DISTINCT days_ago)", "status = 'paid'"),
            ("amount", "sum(amount)", "status = 'paid'"),
        ]
    ]
    # NULLs in the distinct key (order_id, days_ago) and in the where (status, days_ago); repeated keys
    # whose rows disagree on the where; a OneID whose only rows have a NULL key.
    orders = spark.createDataFrame(
        [
            (1, "o1", "paid", 3, 10.0),
            (1, "o1", "refunded", 3, 10.0),
            (1, "o2", None, 40, 5.0),
            (1, None, "paid", 3, 1.0),
            (1, "o3", "paid", None, 2.0),
            (2, "o4", None, None, 7.0),
            (2, "o4", "paid", 50, 7.0),
            (3, None, "paid", None, 9.0),
            (4, "o5", "refunded", 1, 3.0),
        ],
        "oneid long, order_id string, status string, days_ago int, amount double",
    )
    population = spark.createDataFrame([(i,) for i in range(1, 6)], "oneid long")
    one_pass = orders.groupBy("oneid").agg(
        *[F.expr(f"{t.value} FILTER (WHERE {t.where})" if t.where else t.value).alias(t.id) for t in tags]
    )
    expected = population.join(one_pass, "oneid", "left").select(
        "oneid", *[F.coalesce(F.col(t.id), F.lit(0)).cast(t.spark_type).alias(t.id) for t in tags]
    )
    actual = source_tags(population, {"orders": orders}, tags)
    assert_df_equal(actual, expected, order_by=["oneid"])
    assert {r["oneid"]: (r["paid"], r["recent"], r["every"]) for r in actual.collect()}[3] == (0, 0, 0)


def test_category_preference_is_the_top_paid_spend_and_a_tie_goes_to_the_greater_name(spark) -> None:
    from tags.build import registered_views

    tag = load_catalog([])["category_preference"]
    orders = spark.createDataFrame(
        [
            (1, "paid", 10, "skincare", 100.0),
            (1, "paid", 20, "makeup", 60.0),
            (1, "paid", 30, "makeup", 50.0),  # makeup 110 > skincare 100
            (2, "paid", 5, "baby", 80.0),
            (2, "paid", 6, "mens", 80.0),  # a tie: the greater name
            (2, "refunded", 5, "wellness", 999.0),  # not paid
            (3, "paid", 400, "haircare", 10.0),  # more than 365 days ago
            (3, "paid", 1, None, 10.0),  # no category
        ],
        "oneid long, status string, days_ago int, category string, amount double",
    )
    population = spark.createDataFrame([(i,) for i in range(1, 5)], "oneid long")
    with registered_views(spark, {"orders": orders}):
        actual = source_tags(population, {"orders": orders}, [tag])
        got = {r["oneid"]: r["category_preference"] for r in actual.collect()}
    assert got == {1: "makeup", 2: "mens", 3: None, 4: None}
