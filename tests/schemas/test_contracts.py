"""Contract validation: every packaged contract loads, and bad contracts fail with the file and field named.
No engine is started here."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import ContractError, load_contract, load_source, load_sources, load_tables, spark_type

GOOD = """
kind: source
name: pos_sales
description: POS export
party: 1P
entity: pos_sales
format: csv
event_time: sold_at
keys: [receipt_no]
columns:
  - {name: receipt_no, type: string, required: true}
  - {name: phone, type: string, id_type: phone, pii: direct}
  - {name: sold_at, type: timestamp, required: true}
  - {name: total, type: "decimal(12,2)"}
"""


def write(tmp_path: Path, text: str, name: str = "pos_sales.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_sources_cover_the_mission() -> None:
    sources = load_sources()
    assert {
        "crm_members",
        "orders",
        "events",
        "consent",
        "ad_delivery",
        "kol_engagement",
        "dmp_segments",
        "demographics",
    } <= set(sources)
    assert {s.party for s in sources.values()} == {"1P", "2P", "3P"}
    assert sources["crm_members"].identifier_columns["phone"] == "phone"
    assert sources["events"].identifier_columns["cookie_id"] == "cookie"


def test_packaged_tables_load() -> None:
    for name, table in load_tables().items():
        assert table.name == name
        assert table.ddl


def test_the_vault_table_is_a_table_of_the_vault_layer() -> None:
    vault = load_tables()["vault.identifiers"]
    assert vault.keys == ["id_type", "id_value"]
    assert [c.name for c in vault.columns] == ["id_type", "id_value", "encrypted", "source", "first_dt"]


def test_sources_write_direct_identifiers_to_the_vault_unless_told_not_to(tmp_path: Path) -> None:
    assert load_contract(write(tmp_path, GOOD)).vault is True
    assert load_contract(write(tmp_path, GOOD + "vault: false\n")).vault is False
    # The older name of the setting still loads, with the same meaning (no platform hashes leave in packs).
    assert load_contract(write(tmp_path, GOOD + "platform_hashes: false\n")).vault is False
    assert all(s.vault for s in load_sources().values())


def test_good_contract_loads(tmp_path: Path) -> None:
    c = load_contract(write(tmp_path, GOOD))
    assert c.name == "pos_sales"
    assert c.required_columns == ["receipt_no", "sold_at"]
    assert c.column("total").spark_type == "decimal(12,2)"
    assert c.landing_folder == "pos_sales"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "type: timestamp, required",
            "type: timestmp, required",
            "columns[2] (sold_at).type: unknown type 'timestmp'",
        ),
        ("id_type: phone", "id_type: telephone", "columns[1] (phone).id_type"),
        ("party: 1P", "party: 4P", "party"),
        ("keys: [receipt_no]", "keys: [receipt]", "keys names column 'receipt'"),
        ("event_time: sold_at", "event_time: sold", "event_time names column 'sold'"),
        ("format: csv", "format: xlsx", "format"),
        ("entity: pos_sales", "entity: pos_sales\nowner: me", "owner: unknown field"),
        (
            '{name: total, type: "decimal(12,2)"}',
            "{name: total, type: long, id_type: member_id}",
            "must have type string",
        ),
    ],
)
def test_bad_contract_names_file_and_field(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ContractError) as err:
        load_contract(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_name_must_match_file(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="differs from the file name"):
        load_contract(write(tmp_path, GOOD, "other.yaml"))


def test_unparseable_yaml_and_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="not valid YAML"):
        load_contract(write(tmp_path, "kind: [source"))
    with pytest.raises(ContractError, match="kind: 'view' is unknown"):
        load_contract(write(tmp_path, GOOD.replace("kind: source", "kind: view")))


def test_extra_contract_folder_adds_a_source_without_code(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    assert load_source("pos_sales", extra=[tmp_path]).party == "1P"
    with pytest.raises(ContractError, match="known sources"):
        load_source("nope", extra=[tmp_path])


def test_duplicate_source_is_refused(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("name: pos_sales", "name: orders"), "orders.yaml")
    with pytest.raises(ContractError, match="already defined"):
        load_sources(extra=[tmp_path])


@pytest.mark.parametrize(
    ("given", "ddl"),
    [
        ("long", "bigint"),
        ("decimal(12,2)", "decimal(12,2)"),
        ("array<string>", "array<string>"),
        ("map<string,double>", "map<string,double>"),
    ],
)
def test_spark_type(given: str, ddl: str) -> None:
    assert spark_type(given) == ddl


def test_spark_type_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="unknown type"):
        spark_type("varchar")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("format: csv", "format: csv\nformat_options: {quote: x}", "format_options.quote is not supported"),
        ("format: csv", "format: csv\nformat_options: {delimiter: ';;'}", "must be one character"),
        ("format: csv", "format: csv\nformat_options: {header: false}", "header: false needs fields:"),
        ("format: csv", "format: csv\nfields: [a, b]", "set format_options.header: false"),
        ("format: csv", "format: csv\nformat_options: {encoding: klingon}", "encoding 'klingon' is unknown"),
        ("format: csv", "format: jsonl\nformat_options: {delimiter: ';'}", "not supported for format jsonl"),
        ("{name: receipt_no, type: string, required: true}",
         "{name: receipt_no, type: string, required: true, from: a, const: b}", "sets from and const"),
        ('{name: total, type: "decimal(12,2)"}', '{name: total, type: "decimal(12,2)", format: yyyyMMdd}',
         "format applies to date and timestamp columns"),
        ("type: timestamp, required: true", "type: timestamp, required: true, timezone: Mars/Base",
         "unknown timezone 'Mars/Base'"),
        ("{name: total, type: \"decimal(12,2)\"}", "{name: total, from: x}",
         "columns[3] (total).type: required field is missing"),
        ('{name: total, type: "decimal(12,2)"}', '{name: total, type: "decimal(12,2)", default: free}',
         "columns[3] (total).default: 'free' is not a decimal(12,2)"),
    ],
)  # fmt: skip
def test_bad_mapping_or_format_options_name_file_and_field(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ContractError) as err:
        load_contract(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_mapping_and_format_options_load(tmp_path: Path) -> None:
    text = GOOD.replace(
        "format: csv",
        "format: csv\nformat_options: {delimiter: tab, dateFormat: yyyyMMdd}\npattern: '*.tsv'",
    ).replace(
        '{name: total, type: "decimal(12,2)"}', '{name: total, type: "decimal(12,2)", from: Sum, default: 0}'
    )
    c = load_contract(write(tmp_path, text))
    assert (c.delimiter, c.date_format, c.pattern, c.has_header) == ("\t", "yyyyMMdd", "*.tsv", True)
    assert c.input_fields == ["receipt_no", "phone", "sold_at", "Sum"] and c.mapped
    assert c.column("total").source_field == "Sum"
