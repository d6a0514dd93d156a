"""Landing folders without an engine: which files of a date are found, what the check of one file reports
(checksum, header, lines cut out for bad encoding), which files are refused as a whole, and schema drift."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.landing import (
    LandedFile,
    LandingError,
    check_file,
    describe,
    find_files,
    json_keys_drift,
    landing_dir,
    schema_drift,
)
from schemas import SourceContract


def contract(fmt: str = "csv", **extra) -> SourceContract:
    return SourceContract.model_validate(
        {
            "kind": "source",
            "name": "shop_orders",
            "description": "orders of a test shop",
            "party": "1P",
            "entity": "orders",
            "format": fmt,
            "event_time": "order_time",
            "keys": ["order_id"],
            "columns": [
                {"name": "order_id", "type": "string", "required": True},
                {"name": "order_time", "type": "timestamp", "required": True},
                {"name": "amount", "type": "double"},
                {"name": "coupon", "type": "string"},
            ],
        }
        | extra
    )


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_landing_dir_is_the_source_folder_and_the_date() -> None:
    assert landing_dir("/land", contract(), datetime.date(2026, 11, 1)) == Path(
        "/land/shop_orders/dt=2026-11-01"
    )
    assert landing_dir("/land", contract(landing="orders_ftp"), "2026-11-01") == Path(
        "/land/orders_ftp/dt=2026-11-01"
    )


def test_find_files_lists_the_declared_format_recursively_and_skips_hidden_files(tmp_path: Path) -> None:
    for name in ("b.csv", "a.CSV.gz", "sub/c.csv", ".hidden.csv", "_SUCCESS", "notes.txt"):
        write(tmp_path / name, b"x")
    assert find_files(tmp_path, contract()) == [
        tmp_path / "a.CSV.gz",
        tmp_path / "b.csv",
        tmp_path / "sub/c.csv",
    ]
    assert find_files(tmp_path / "missing", contract()) == []


def test_find_files_refuses_a_folder_with_only_other_formats(tmp_path: Path) -> None:
    write(tmp_path / "orders.jsonl", b"{}")
    with pytest.raises(LandingError, match=r"no csv files for source shop_orders \(found orders.jsonl\)"):
        find_files(tmp_path, contract())


def test_check_csv_reads_the_header_and_checksums_the_landed_bytes(tmp_path: Path) -> None:
    data = "\ufeffOrder_ID, Order_Time ,amount\no1,2026-11-01 10:00:00,1.5\n".encode()
    path = write(tmp_path / "land/o.csv", data)
    got = check_file(path, contract(), tmp_path / "staging")
    assert got == LandedFile(
        path=path,
        read_path=path,
        sha256=sha(data),
        size=len(data),
        header=["order_id", "order_time", "amount"],
        header_line="Order_ID, Order_Time ,amount",
    )
    assert not (tmp_path / "staging").exists()


def test_check_cuts_undecodable_lines_into_a_sanitised_copy(tmp_path: Path) -> None:
    text = b"order_id,order_time\no1,2026-11-01 10:00:00\no2,caf\xe9\no3,2026-11-01 11:00:00\n"
    data = gzip.compress(text)
    path = write(tmp_path / "land/o.csv.gz", data)
    got = check_file(path, contract(), tmp_path / "staging")
    clean = tmp_path / "staging" / sha(data)[:16] / "o.csv"
    assert got == LandedFile(
        path=path,
        read_path=clean,
        sha256=sha(data),
        size=len(data),
        header=["order_id", "order_time"],
        header_line="order_id,order_time",
        bad_lines=[(3, "o2,caf\\xe9")],
    )
    assert clean.read_bytes() == b"order_id,order_time\no1,2026-11-01 10:00:00\no3,2026-11-01 11:00:00\n"


@pytest.mark.parametrize(
    ("fmt", "name", "data", "message"),
    [
        ("csv", "o.csv", b"order_id,amount\no1,1\n", r"required column\(s\) order_time missing; the file has "
         r"order_id, amount\. Fix the export or the contract of source shop_orders"),
        ("csv", "o.csv", b'{"order_id": "o1"}\n', "not a comma-separated file with a header row"),
        ("jsonl", "o.jsonl", b"order_id,order_time\n", r"not JSON lines \(the first line does not start"),
        ("parquet", "o.parquet", b"PAR1 not really", "not a Parquet file"),
        ("csv", "o.csv.gz", gzip.compress(b"order_id,order_time\n", mtime=0)[:-6], "cannot be read"),
    ],
)  # fmt: skip
def test_check_refuses_a_file_that_cannot_be_ingested_as_a_whole(
    tmp_path: Path, fmt: str, name: str, data: bytes, message: str
) -> None:
    path = write(tmp_path / name, data)
    with pytest.raises(LandingError, match=message) as caught:
        check_file(path, contract(fmt), tmp_path / "staging")
    assert str(caught.value).startswith(str(path))


def test_check_parquet_takes_the_header_from_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "o.parquet"
    pq.write_table(pa.table({"Order_ID": ["o1"], "order_time": ["2026-11-01 10:00:00"], "extra": [1]}), path)
    got = check_file(path, contract("parquet"), tmp_path / "staging")
    data = path.read_bytes()
    assert got == LandedFile(
        path=path,
        read_path=path,
        sha256=sha(data),
        size=len(data),
        header=["order_id", "order_time", "extra"],
    )
    pq.write_table(pa.table({"order_id": ["o1"]}), path)
    with pytest.raises(LandingError, match=r"required column\(s\) order_time missing"):
        check_file(path, contract("parquet"), tmp_path / "staging")


def test_jsonl_is_checked_by_its_first_line_only(tmp_path: Path) -> None:
    data = b'{"order_id": "o1"}\nnot json\n'
    path = write(tmp_path / "o.jsonl", data)
    got = check_file(path, contract("jsonl"), tmp_path / "staging")
    assert got == LandedFile(path=path, read_path=path, sha256=sha(data), size=len(data))


def test_schema_drift_reports_new_columns_and_missing_optional_ones() -> None:
    assert schema_drift(contract(), ["order_id", "order_time", "channel"]) == {
        "new_columns": ["channel"],
        "missing_optional": ["amount", "coupon"],
    }
    assert schema_drift(contract(), ["order_id", "order_time", "amount", "coupon"]) == {
        "new_columns": [],
        "missing_optional": [],
    }


def test_json_keys_drift_leaves_missing_required_keys_to_the_row_checks() -> None:
    assert json_keys_drift(contract("jsonl"), {"order_id", "amount", "z_new", "a_new"}) == {
        "new_columns": ["a_new", "z_new"],
        "missing_optional": ["coupon"],
    }


def test_describe_lists_name_size_and_checksum() -> None:
    files = [LandedFile(path=Path("/l/a.csv"), read_path=Path("/s/a.csv"), sha256="ab", size=3)]
    assert json.loads(describe(files)) == [{"file": "/l/a.csv", "bytes": 3, "sha256": "ab"}]
