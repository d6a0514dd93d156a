"""Drafting a source contract from a sample file (``cdp contracts new``): the guessed layout, types, date
formats and identifiers of small samples written here, the draft loading as a contract, and the command's
output and exit codes. No engine starts."""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import random
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ingest.draft import DraftError, column_name, contract_yaml, draft_contract, read_sample
from schemas import SourceContract, load_contract

FOREIGN = Path(__file__).resolve().parents[1] / "fixtures" / "foreign"


def _imei(rng: random.Random) -> str:
    """A 15-digit number with a valid Luhn check digit."""
    body = "35" + "".join(str(rng.randint(0, 9)) for _ in range(12))
    for check in "0123456789":
        digits = body + check
        total = sum(
            (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d for i, d in enumerate(map(int, digits[::-1]))
        )
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


def _loads(draft_text: str, tmp_path: Path, name: str) -> SourceContract:
    path = tmp_path / "contracts" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(draft_text, encoding="utf-8")
    contract = load_contract(path)
    assert isinstance(contract, SourceContract)
    return contract


def _columns(draft) -> dict:
    return {c.name: c for c in draft.columns}


@pytest.fixture
def whitespace_txt(tmp_path: Path) -> Path:
    """A headerless, space-separated partner export: member code, phone, yyyyMMdd date, points, IMEI."""
    rng = random.Random(7)
    path = tmp_path / "partner_members.txt"
    lines = [
        f"M{1000 + i}  1{rng.choice('3456789')}{rng.randint(10**8, 10**9 - 1)}  "
        f"2024{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}  {rng.randint(0, 5000)}  {_imei(rng)}"
        for i in range(40)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def semicolon_csv(tmp_path: Path) -> Path:
    """A ;-separated CRM export with Chinese headers and phones written several ways."""
    path = tmp_path / "store_crm.csv"
    rows = ["会员号;姓名;手机号;注册时间;金额;城市;备注"]
    for i in range(30):
        phone = [f"+86 138{i:08d}", f"139{i:08d}", f"+86-137{i:08d}"][i % 3]
        note = "" if i % 4 else "vip"
        rows.append(
            f"V{i:05d};张{i};{phone};2024-03-{i % 28 + 1:02d} 10:{i % 60:02d}:00;{i * 3}.50;上海;{note}"
        )
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def clicks_gz(tmp_path: Path) -> Path:
    """Gzip JSON lines clickstream without a .gz name: camelCase keys, epoch seconds, device ids, openids."""
    rng = random.Random(3)
    path = tmp_path / "clickstream.log"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for i in range(50):
            record = {
                "eventId": f"evt-{i:04d}",
                "ts": 1_717_000_000 + i * 61,
                "oaid": str(_uuid(rng)).lower(),
                "idfa": str(_uuid(rng)).upper(),
                "androidId": f"{rng.getrandbits(64):016x}",
                "openid": "o" + "".join(rng.choice("abcdefghijkLMNOPQ0123456789_-") for _ in range(27)),
                "page": f"/p/{i % 5}",
                "props": {"ref": "ad"},
            }
            fh.write(json.dumps(record) + "\n")
    return path


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@pytest.fixture
def orders_parquet(tmp_path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "shop_orders.parquet"
    n = 20
    table = pa.table(
        {
            "order_id": [f"O{i}" for i in range(n)],
            "member_id": pa.array([100 + i for i in range(n)], pa.int64()),
            "qty": pa.array([i % 3 + 1 for i in range(n)], pa.int32()),
            "amount": pa.array([i * 1.5 for i in range(n)], pa.float64()),
            "order_time": [_dt.datetime(2024, 1, 1, i) for i in range(n)],
            "order_day": [_dt.date(2024, 1, 1 + i) for i in range(n)],
            "email": [f"u{i}@example.com" for i in range(n)],
        }
    )
    pq.write_table(table, path)
    return path


# --------------------------------------------------------------------------------------------- samples


def test_whitespace_text_without_header_with_yyyymmdd_dates(whitespace_txt: Path, tmp_path: Path) -> None:
    draft = draft_contract(whitespace_txt)
    s = draft.sample
    assert (s.format, s.whitespace, s.header, s.gzip) == ("csv", True, False, False)
    cols = _columns(draft)
    assert list(cols) == ["col_1", "col_2", "col_3", "col_4", "col_5"]
    assert (cols["col_3"].type, cols["col_3"].date_format) == ("date", "yyyyMMdd")
    assert cols["col_4"].type == "int"
    assert (cols["col_2"].type, cols["col_2"].id_type, cols["col_2"].pii) == ("string", "phone", "direct")
    assert (cols["col_5"].id_type, cols["col_5"].pii) == ("imei", "pseudonymous")
    assert all(c.required for c in draft.columns)
    assert draft.event_time == "col_3"
    assert draft.keys == ["col_1"]

    text = contract_yaml(draft)
    assert "# guessed:" in text and "TODO" in text
    contract = _loads(text, tmp_path, draft.name)
    assert contract.format_options == {"delimiter": "whitespace", "header": False}
    assert contract.fields == ["col_1", "col_2", "col_3", "col_4", "col_5"]
    assert contract.pattern == "*.txt"
    assert contract.column("col_3").format == "yyyyMMdd"
    assert contract.identifier_columns == {"col_2": "phone", "col_5": "imei"}


def test_semicolon_csv_with_chinese_headers_and_phones(semicolon_csv: Path, tmp_path: Path) -> None:
    draft = draft_contract(semicolon_csv)
    s = draft.sample
    assert (s.format, s.delimiter, s.header) == ("csv", ";", True)
    cols = _columns(draft)
    assert list(cols) == ["member_id", "name", "phone", "register_time", "amount", "city", "col_7"]
    assert (cols["phone"].source, cols["phone"].id_type, cols["phone"].pii) == ("手机号", "phone", "direct")
    assert (cols["name"].pii, cols["name"].id_type) == ("direct", None)
    assert (cols["member_id"].id_type, cols["member_id"].pii) == ("member_id", "pseudonymous")
    assert (cols["register_time"].type, cols["register_time"].date_format) == (
        "timestamp",
        "yyyy-MM-dd HH:mm:ss",
    )
    assert cols["amount"].type == "decimal(18,2)"
    assert cols["col_7"].required is False and cols["phone"].required is True
    assert (draft.keys, draft.event_time) == (["member_id"], "register_time")

    contract = _loads(contract_yaml(draft), tmp_path, draft.name)
    assert contract.format_options == {"delimiter": ";", "header": True}
    assert contract.column("phone").from_ == "手机号"
    assert contract.column("register_time").format == "yyyy-MM-dd HH:mm:ss"
    assert contract.keys == ["member_id"]


def test_the_csv_draft_fits_a_canonical_entity(semicolon_csv: Path, tmp_path: Path) -> None:
    draft = draft_contract(semicolon_csv, name="store_crm", entity="members")
    assert [c.name for c in draft.unmapped] == ["amount", "col_7"]
    text = contract_yaml(draft)
    assert "  # - {name: amount" in text
    contract = _loads(text, tmp_path, "store_crm")
    assert contract.entity == "members"
    assert contract.column("phone").id_type == "phone"  # the entity's classification
    assert contract.column("updated_at").from_ == "TODO"  # a required canonical column the sample lacks


def test_gzip_json_lines_clickstream(clicks_gz: Path, tmp_path: Path) -> None:
    draft = draft_contract(clicks_gz, name="clickstream")
    s = draft.sample
    assert (s.format, s.gzip) == ("jsonl", True)
    cols = _columns(draft)
    assert cols["event_id"].source == "eventId"
    assert (cols["ts"].type, cols["ts"].date_format) == ("timestamp", "epoch_seconds")
    assert {n: c.id_type for n, c in cols.items() if c.id_type} == {
        "oaid": "oaid",
        "idfa": "idfa",
        "android_id": "android_id",
        "openid": "wechat_openid",
    }
    assert all(cols[n].pii == "pseudonymous" for n in ("oaid", "idfa", "android_id", "openid"))
    assert cols["props"].type == "string"
    assert (draft.keys, draft.event_time) == (["event_id"], "ts")

    contract = _loads(contract_yaml(draft), tmp_path, "clickstream")
    assert contract.format == "jsonl"
    assert contract.column("ts").expr == "timestamp_seconds(CAST(`ts` AS BIGINT))"
    assert contract.pattern == "*.log"  # a gzip file named .log: its files must still be found


def test_parquet_types_come_from_the_schema(orders_parquet: Path, tmp_path: Path) -> None:
    draft = draft_contract(orders_parquet, entity="shop_orders")
    cols = _columns(draft)
    assert {n: c.type for n, c in cols.items()} == {
        "order_id": "string",
        "member_id": "string",  # an identifier, though stored as long
        "qty": "int",
        "amount": "double",
        "order_time": "timestamp",
        "order_day": "date",
        "email": "string",
    }
    assert (cols["member_id"].id_type, cols["email"].id_type, cols["email"].pii) == (
        "member_id",
        "email",
        "direct",
    )
    assert (draft.keys, draft.event_time) == (["order_id"], "order_time")
    contract = _loads(contract_yaml(draft), tmp_path, "shop_orders")
    assert contract.format == "parquet" and contract.format_options == {}


def test_parquet_draft_for_the_canonical_orders_entity_loads(orders_parquet: Path, tmp_path: Path) -> None:
    draft = draft_contract(orders_parquet, entity="orders")
    contract = _loads(contract_yaml(draft), tmp_path, draft.name)
    assert contract.entity == "orders"
    assert "email" in {c.name for c in draft.unmapped}


# ------------------------------------------------------------------------------------ single guesses


@pytest.mark.parametrize(
    ("values", "kind", "pattern"),
    [
        (["2024-01-05", "2023-12-31"], "date", None),
        (["2024/01/05", "2023/12/31"], "date", "yyyy/MM/dd"),
        (["05.01.2024", "31.12.2023"], "date", "dd.MM.yyyy"),
        (["20240105", "20231231"], "date", "yyyyMMdd"),
        (["2024-01-05 08:00:00", "2023-12-31 23:59:59"], "timestamp", "yyyy-MM-dd HH:mm:ss"),
        (["2024-01-05T08:00:00Z", "2023-12-31T23:59:59+08:00"], "timestamp", None),
        (["1717000000000", "1717000061000"], "timestamp", "epoch_millis"),
        (["1717000000", "1717000061"], "timestamp", "epoch_seconds"),
    ],
)
def test_date_and_timestamp_patterns(
    tmp_path: Path, values: list[str], kind: str, pattern: str | None
) -> None:
    path = tmp_path / "s.csv"
    path.write_text("id,event_time\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    col = _columns(draft_contract(path))["event_time"]
    assert (col.type, col.date_format) == (kind, pattern)


def test_imei_needs_the_luhn_check(tmp_path: Path) -> None:
    rng = random.Random(1)
    good = [_imei(rng) for _ in range(10)]
    bad = [g[:-1] + str((int(g[-1]) + 1) % 10) for g in good]
    path = tmp_path / "d.csv"
    path.write_text("a,b\n" + "".join(f"{g},{b}\n" for g, b in zip(good, bad, strict=True)))
    cols = _columns(draft_contract(path))
    assert (cols["a"].id_type, cols["b"].id_type) == ("imei", None)
    assert cols["b"].type == "long"


def test_a_name_alone_does_not_make_an_identifier(tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(
        "user_id,mobile_os,email_verified,customer_name\n"
        + "".join(f"u{i},{('ios', 'android')[i % 2]},{str(i % 2 == 0).lower()},李{i}\n" for i in range(10))
    )
    cols = _columns(draft_contract(path))
    assert (cols["user_id"].id_type, cols["user_id"].pii) == ("member_id", "pseudonymous")
    assert (cols["mobile_os"].id_type, cols["mobile_os"].pii) == (None, "none")
    assert (cols["email_verified"].id_type, cols["email_verified"].type) == (None, "boolean")
    assert (cols["customer_name"].id_type, cols["customer_name"].pii) == (None, "direct")


def test_tab_separated_text_and_a_header_over_text_only_columns(tmp_path: Path) -> None:
    path = tmp_path / "cities.tsv"
    path.write_text("province\tcity\n广东\t深圳\n浙江\t杭州\n江苏\t南京\n")
    draft = draft_contract(path)
    assert (draft.sample.delimiter, draft.sample.header) == ("\t", True)
    contract = _loads(contract_yaml(draft), tmp_path, draft.name)
    assert contract.format_options == {"delimiter": "tab", "header": True}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("手机号", "phone"),
        ("客户手机号码", "phone"),
        ("userID", "user_id"),
        ("Order Date", "order_date"),
        ("备注", "col_3"),
    ],
)
def test_column_names_from_headers(header: str, expected: str) -> None:
    assert column_name(header, 3) == expected


def test_a_key_is_a_pair_when_no_column_is_unique(tmp_path: Path) -> None:
    path = tmp_path / "lines.csv"
    path.write_text("order_id,line_no,sku\nA,1,x\nA,2,y\nB,1,x\n")
    assert draft_contract(path).keys == ["order_id", "line_no"]


def test_a_ragged_line_does_not_hide_the_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "pipes.csv"
    rows = [f"{i}|2024-01-{i + 1:02d}|ok" for i in range(20)]
    rows[5] += "|stray"
    path.write_text("id|day|status\n" + "\n".join(rows) + "\n")
    draft = draft_contract(path)
    assert (draft.sample.delimiter, draft.sample.header) == ("|", True)
    assert [c.name for c in draft.columns] == ["id", "day", "status"]
    assert _columns(draft)["day"].type == "date"


def test_unusable_samples_raise_a_draft_error(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with gzip.open(tmp_path / "empty.csv.gz", "wb"):
        pass
    (tmp_path / "array.json").write_text('[{"a": 1}]')
    for name, words in (
        ("missing.csv", "no such file"),
        ("empty.csv", "empty"),
        ("empty.csv.gz", "empty"),
        ("array.json", "JSON lines"),
    ):
        with pytest.raises(DraftError, match=words):
            read_sample(tmp_path / name)


def _foreign(name: str) -> Path:
    path = FOREIGN / name
    assert path.is_file(), f"the checked-in sample {name} is missing from tests/fixtures/foreign"
    return path


def test_the_foreign_crm_export(tmp_path: Path) -> None:
    """GB18030, ';'-separated, Chinese headers, a ragged line and a bad birth year and date."""
    draft = draft_contract(_foreign("crm_export.csv"))
    s = draft.sample
    assert (s.encoding, s.delimiter, s.header) == ("gb18030", ";", True)
    cols = _columns(draft)
    assert (cols["phone"].source, cols["phone"].id_type) == ("手机号码", "phone")
    assert (cols["customer_id"].source, cols["customer_id"].id_type) == ("客户编号", "member_id")
    assert (cols["updated_at"].type, cols["updated_at"].date_format) == ("date", "yyyy/MM/dd")
    assert (cols["birth_year"].type, cols["birth_year"].pii) == ("int", "quasi")
    assert "'19x0'" in " ".join(cols["birth_year"].guesses)  # the bad value is named, the type still holds
    assert draft.keys == ["customer_id"]
    members = draft_contract(_foreign("crm_export.csv"), entity="members")
    contract = _loads(contract_yaml(members), tmp_path, "crm_export")
    assert contract.format_options["encoding"] == "gb18030"
    assert (contract.column("member_id").from_, contract.keys) == ("客户编号", ["member_id"])


def test_the_foreign_pos_transactions(tmp_path: Path) -> None:
    """Whitespace-separated (spaces and tabs), no header, YYYYMMDD dates, a few bad and repeated lines."""
    draft = draft_contract(_foreign("pos_transactions.txt"))
    s = draft.sample
    assert (s.whitespace, s.header) == (True, False)
    cols = _columns(draft)
    assert [(c.name, c.type, c.date_format) for c in draft.columns] == [
        ("col_1", "string", None),
        ("col_2", "date", "yyyyMMdd"),
        ("col_3", "int", None),
        ("col_4", "decimal(18,2)", None),
    ]
    assert cols["col_1"].required and not cols["col_4"].required  # one line lacks the total
    assert (draft.keys, draft.event_time) == (["col_1", "col_2"], "col_2")
    orders = draft_contract(_foreign("pos_transactions.txt"), entity="orders")
    contract = _loads(contract_yaml(orders), tmp_path, "pos_transactions")
    assert contract.fields == ["col_1", "col_2", "col_3", "col_4"]
    assert (contract.column("order_time").from_, contract.column("order_time").format) == (
        "col_2",
        "yyyyMMdd",
    )
    assert contract.keys == ["order_id", "line_no"]  # the keys every source of silver.orders merges on


def test_the_foreign_clickstream(tmp_path: Path) -> None:
    """Gzip JSON lines with a truncated line, a bad timestamp, repeated hits and its own names."""
    draft = draft_contract(_foreign("clickstream.jsonl.gz"))
    s = draft.sample
    assert (s.format, s.gzip) == ("jsonl", True)
    cols = _columns(draft)
    assert (cols["ts"].type, cols["ts"].date_format) == ("timestamp", None)
    assert (cols["visitor"].id_type, cols["member_no"].id_type) == ("cookie", "member_id")
    assert (draft.keys, draft.event_time) == (["hit_id"], "ts")
    events = draft_contract(_foreign("clickstream.jsonl.gz"), entity="events")
    contract = _loads(contract_yaml(events), tmp_path, "clickstream")
    assert contract.column("cookie_id").from_ == "visitor"
    assert contract.column("event_time").from_ == "ts"


# ------------------------------------------------------------------------------------------------- CLI


def _cli(*args: str):
    from apps.cli.main import app

    return CliRunner().invoke(app, ["contracts", "new", *args])


def test_cli_prints_a_draft_that_loads(semicolon_csv: Path, tmp_path: Path) -> None:
    result = _cli(str(semicolon_csv), "--name", "store_crm")
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.stdout)
    assert data["name"] == "store_crm" and data["format_options"] == {"delimiter": ";", "header": True}
    _loads(result.stdout, tmp_path, "store_crm")


def test_cli_writes_output(whitespace_txt: Path, tmp_path: Path) -> None:
    out = tmp_path / "drafts" / "partner_members.yaml"
    result = _cli(str(whitespace_txt), "--output", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert load_contract(out).name == "partner_members"
    again = _cli(str(whitespace_txt), "--output", str(out))
    assert again.exit_code == 2 and "--force" in again.stderr
    assert _cli(str(whitespace_txt), "--output", str(out), "--force").exit_code == 0


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_cli_exits_2_with_one_line_for_an_unusable_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "sample.csv"
    if kind == "empty":
        path.write_text("")
    result = _cli(str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--name", "Bad-Name"], "lower_snake_case"),
        (["--output", "draft.txt"], "ends in .yaml"),
        (["--name", "a", "--output", "b.yaml"], "use a.yaml"),
    ],
)
def test_cli_exits_2_for_bad_options(
    semicolon_csv: Path, tmp_path: Path, args: list[str], words: str
) -> None:
    args = [str(tmp_path / a) if a.endswith((".txt", ".yaml")) else a for a in args]
    result = _cli(str(semicolon_csv), *args)
    assert result.exit_code == 2
    assert words in result.stderr
