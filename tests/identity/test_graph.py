"""The identity graph: rules validation (no engine), identifier tuples from silver rows, shared-identifier
detection and star edges with their pruned links, checked whole on small inline tables."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from cdp.run import parquet_checkpoint
from cdp.testing import assert_df_equal
from identity.components import assign_vertex_ids, connected_components
from identity.graph import (
    find_hubs,
    find_person_hubs,
    identifier_links,
    person_anchors,
    person_links,
    record_identifiers,
    star_edges,
    with_record_ids,
    with_vertex_ids,
)
from identity.rules import RULES_FILE, IdentityRules, RulesError, SourcePlan, load_rules, plan_sources
from schemas import load_sources

PRIORITY = "[member_id, wechat_unionid, wechat_openid, phone, email, imei, idfa, oaid, android_id, cookie]"
T1, T2 = datetime.datetime(2026, 11, 1, 8), datetime.datetime(2026, 11, 1, 9)
SHARED = "shared_device: 2 member_id > 1"


def write_rules(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(body, encoding="utf-8")
    return path


# ---- rules (no engine) ----------------------------------------------------------------------------------


def test_packaged_rules_are_valid_and_plan_every_source() -> None:
    rules = load_rules()
    assert rules.rank("member_id") == 0
    plans = {p.source: p for p in plan_sources(rules, load_sources())}
    # every source with an identifier column (creator_stats describes creators, not people: no plan)
    assert set(plans) == {n for n, s in load_sources().items() if s.identifier_columns}
    crm = plans["crm_members"]
    assert crm.table == "silver.members" and crm.attributes is None  # attribute links are off by default
    assert [c for c, _, _ in crm.identifiers] == [
        "member_id",
        "wechat_unionid",
        "wechat_openid",
        "phone_hash",
        "email_hash",
    ]


def test_unknown_id_type_in_a_limit_names_file_and_field(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path,
        f"priority: {PRIORITY}\nlimits:\n  - name: shared_device\n    id_types: [oaid]\n"
        "    max_links: {member_idd: 1}\n",
    )
    with pytest.raises(RulesError) as err:
        load_rules(path)
    assert f"{path}: limits[0] (shared_device).max_links.member_idd" in str(err.value)


def test_priority_must_list_every_type_once(tmp_path: Path) -> None:
    path = write_rules(tmp_path, "priority: [member_id, phone, phone]\n")
    with pytest.raises(RulesError, match=r"priority: list every ID type exactly once; repeated: \['phone'\]"):
        load_rules(path)


def test_unknown_field_and_bad_limit_are_reported_together(tmp_path: Path) -> None:
    path = write_rules(tmp_path, f"priority: {PRIORITY}\nmax_degre: 10\nmax_component_size: 0\n")
    with pytest.raises(RulesError) as err:
        load_rules(path)
    message = str(err.value)
    assert "max_degre: unknown field" in message
    assert "max_component_size: Input should be greater than or equal to 1" in message


def test_attribute_rule_on_a_missing_column_names_file_and_field(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path,
        f"priority: {PRIORITY}\nattribute_links:\n  - name: name_birth\n    source: crm_members\n"
        "    columns: [name, birth_date]\n",
    )
    rules = load_rules(path)
    with pytest.raises(RulesError) as err:
        plan_sources(rules, load_sources(), rules_path=path)
    assert f"{path}: attribute_links[0] (name_birth).columns: silver.members has no column 'name'" in str(
        err.value
    )


def test_person_limit_must_count_person_types(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path,
        f"priority: {PRIORITY}\nperson_types: [member_id]\nperson_limit:\n  id_types: [oaid]\n"
        "  max_links: {wechat_openid: 1}\n",
    )
    with pytest.raises(RulesError, match=r"person_limit.max_links counts identifiers of persons; add"):
        load_rules(path)


def test_missing_rules_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read identity rules"):
        load_rules(tmp_path / "nope.yaml")
    assert RULES_FILE.name == "rules.yaml"


# ---- graph ----------------------------------------------------------------------------------------------

EVENTS = SourcePlan(
    source="events",
    table="silver.events",
    identifiers=(("member_id", "member_id", 4), ("oaid", "oaid", 705), ("android_id", "android_id", 807)),
    time_column="event_time",
)
TUPLES = "source string, ids array<struct<id_type:string,id_value:string,rank:int>>, first_seen timestamp, "
TUPLES += "last_seen timestamp, records long"
EDGES = (
    "src_type string, src_value string, dst_type string, dst_value string, source string, "
    "first_seen timestamp, last_seen timestamp, records long"
)


def events(spark, rows):
    return spark.createDataFrame(
        rows, "event_id string, member_id string, oaid string, android_id string, event_time timestamp"
    )


def test_record_identifiers_keeps_distinct_tuples_in_star_order(spark) -> None:
    silver = events(
        spark,
        [
            ("e1", "M1", "o1", None, T1),
            ("e2", "M1", "o1", None, T2),  # same tuple: one row, 2 records
            ("e3", None, "o2", "a2", T1),
            ("e4", " ", None, "", T1),  # blanks only: no identifier, no tuple
        ],
    )
    got = silver.transform(record_identifiers(EVENTS))
    want = spark.createDataFrame(
        [
            ("events", [("member_id", "M1", 4), ("oaid", "o1", 705)], T1, T2, 2),
            ("events", [("oaid", "o2", 705), ("android_id", "a2", 807)], T1, T1, 1),
        ],
        TUPLES,
    )
    assert_df_equal(got.orderBy("first_seen"), want, order_by=["records"])


def tuples(spark, rows):
    """Tuples from lists of (id_type, id_value); ranks follow the packaged priority."""
    rules = load_rules()
    data = [
        ("events", [(t, v, rules.rank(t) * 100 + i) for i, (t, v) in enumerate(ids)], T1, T2, 1)
        for ids in rows
    ]
    return with_record_ids(spark.createDataFrame(data, TUPLES))


def test_a_device_seen_with_two_member_ids_is_shared(spark, tmp_path) -> None:
    records = tuples(
        spark,
        [
            [("member_id", "MA"), ("oaid", "tablet")],
            [("member_id", "MB"), ("oaid", "tablet")],
            [("member_id", "MA"), ("oaid", "phone_a")],
            [("member_id", "MA"), ("phone", "pa")],
        ],
    )
    hubs = find_hubs(identifier_links(records), load_rules())
    want = spark.createDataFrame(
        [("oaid", "tablet", 2, "shared_device: 2 member_id > 1")],
        "id_type string, id_value string, degree long, reason string",
    )
    assert_df_equal(hubs, want)


def test_a_device_whose_persons_hold_two_member_ids_is_shared(spark, tmp_path) -> None:
    # The tablet is seen with the mother's member id and with the son's openid only; the son's openid is
    # bound to his own member id in the CRM. No per-type limit breaks, but the persons do.
    # B's phone is seen with his member id and with his openid that no CRM record binds: one member id.
    records = tuples(
        spark,
        [
            [("member_id", "MOM"), ("oaid", "tablet")],
            [("wechat_openid", "o_son"), ("oaid", "tablet")],
            [("member_id", "SON"), ("wechat_openid", "o_son")],
            [("member_id", "B"), ("oaid", "b_phone")],
            [("wechat_openid", "o_b"), ("oaid", "b_phone")],
        ],
    )
    rules = load_rules()
    links = identifier_links(records)
    hubs = find_hubs(links, rules)
    assert hubs.count() == 0
    ids = records.select(F.explode("ids").alias("i")).select("i.id_type", "i.id_value").distinct()
    vertices = assign_vertex_ids(ids)
    person_edges = with_vertex_ids(person_links(links, hubs, rules), vertices)
    labels, _ = connected_components(
        person_edges.select(F.col("src_vid").alias("src"), F.col("dst_vid").alias("dst")),
        parquet_checkpoint(spark, tmp_path / "rounds"),
    )
    persons = person_anchors(vertices, labels, hubs, rules)
    got = {(r["id_value"], r["reason"]) for r in find_person_hubs(hubs, links, persons, rules).collect()}
    assert got == {("tablet", "shared_between_persons: persons hold 2 member_id > 1")}


def test_any_identifier_over_max_degree_is_shared(spark) -> None:
    rules = IdentityRules(priority=load_rules().priority, max_degree=3)
    records = tuples(spark, [[("cookie", "c0"), ("member_id", f"M{i}")] for i in range(4)])
    got = {(r["id_value"], r["reason"]) for r in find_hubs(identifier_links(records), rules).collect()}
    assert got == {("c0", "max_degree: 4 linked > 3")}


def test_star_edges_centre_on_the_strongest_identifier_that_is_not_shared(spark) -> None:
    records = tuples(
        spark,
        [
            # the tablet would rank below the member id anyway; the android id hangs from the member id
            [("member_id", "MA"), ("oaid", "tablet"), ("android_id", "aa")],
            [("member_id", "MB"), ("oaid", "tablet")],
            # the shared imei would be the centre; the star moves to the next identifier
            [("imei", "junk"), ("oaid", "ob"), ("android_id", "ab")],
        ],
    )
    hubs = spark.createDataFrame(
        [("oaid", "tablet", 2, SHARED), ("imei", "junk", 60, "max_degree")],
        "id_type string, id_value string, degree long, reason string",
    )
    edges, pruned = star_edges(records, hubs)
    assert_df_equal(
        edges,
        spark.createDataFrame(
            [
                ("member_id", "MA", "android_id", "aa", "events", T1, T2, 1),
                ("oaid", "ob", "android_id", "ab", "events", T1, T2, 1),
            ],
            EDGES,
        ),
    )
    assert_df_equal(
        pruned,
        spark.createDataFrame(
            [
                ("member_id", "MA", "oaid", "tablet", "events", "oaid", "tablet", SHARED, T1, T2, 1),
                ("member_id", "MB", "oaid", "tablet", "events", "oaid", "tablet", SHARED, T1, T2, 1),
                ("imei", "junk", "oaid", "ob", "events", "imei", "junk", "max_degree", T1, T2, 1),
            ],
            "src_type string, src_value string, dst_type string, dst_value string, source string, "
            "hub_type string, hub_value string, reason string, first_seen timestamp, last_seen timestamp, "
            "records long",
        ),
    )


def test_attribute_links_join_records_only_when_enabled(spark, tmp_path) -> None:
    body = (
        f"priority: {PRIORITY}\nattribute_links:\n  - name: name_birth\n    source: crm_members\n"
        "    columns: [name_hash, birth_date]\n    enabled: {enabled}\n"
    )
    members = spark.createDataFrame(
        [
            ("M1", "h_zhang", datetime.date(1990, 5, 1), T1),
            ("M2", "h_zhang", datetime.date(1990, 5, 1), T2),
            ("M3", "h_zhang", None, T2),  # incomplete attributes make no link
        ],
        "member_id string, name_hash string, birth_date date, updated_at timestamp",
    )
    for enabled, linked in (("false", False), ("true", True)):
        path = write_rules(tmp_path, body.replace("{enabled}", enabled))
        rules = load_rules(path)
        plan = next(
            p for p in plan_sources(rules, load_sources(), rules_path=path) if p.source == "crm_members"
        )
        plan = SourcePlan(
            plan.source, plan.table, (("member_id", "member_id", 0),), "updated_at", plan.attributes
        )
        records = with_record_ids(members.transform(record_identifiers(plan, key="k")))
        edges, _ = star_edges(records, find_hubs(identifier_links(records), rules))
        pairs = {(r["src_value"], r["dst_type"]) for r in edges.collect()}
        assert (pairs == {("M1", "attribute:name_birth"), ("M2", "attribute:name_birth")}) is linked
        assert linked or not pairs
