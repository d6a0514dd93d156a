"""Identifier normalisation on messy real-world values: each ID type's table of raw value -> canonical value
(None = rejected) is run through the engine and compared whole."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from pyspark.sql import Column
from pyspark.sql import functions as F

from cdp.testing import assert_df_equal
from identity import (
    JUNK_VALUES,
    NORMALIZERS,
    build_android_id,
    build_cookie,
    build_email,
    build_hash_kind,
    build_idfa,
    build_imei,
    build_member_id,
    build_normalized,
    build_oaid,
    build_phone,
    build_wechat_openid,
    build_wechat_unionid,
)
from schemas.contract import ID_TYPES

MD5_EMPTY = hashlib.md5(b"").hexdigest()
SHA256_EMPTY = hashlib.sha256(b"").hexdigest()
PHONE_MD5 = hashlib.md5(b"13812345678").hexdigest()
PHONE_SHA256 = hashlib.sha256(b"13812345678").hexdigest()
IDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz1"

# Values every ID type rejects.
SHARED_JUNK = [
    (None, None),
    ("", None),
    ("   ", None),
    ("\u3000", None),
    ("unknown", None),
    ("NULL", None),
    ("None", None),
    ("nan", None),
    ("undefined", None),
    ("-", None),
    ("0", None),
    (" N/A ", None),
]

PHONES = [
    ("13812345678", "+8613812345678"),
    ("138 1234 5678", "+8613812345678"),
    ("138-1234-5678", "+8613812345678"),
    ("+86 13812345678", "+8613812345678"),
    ("+86-139-0000-1111", "+8613900001111"),
    ("+8613812345678", "+8613812345678"),
    ("0086 13812345678", "+8613812345678"),
    ("008613812345678", "+8613812345678"),
    ("8613812345678", "+8613812345678"),
    ("(+86) 138.1234.5678", "+8613812345678"),
    ("１３８１２３４５６７８", "+8613812345678"),  # full-width digits
    ("＋８６ １３８－１２３４－５６７８", "+8613812345678"),  # full-width plus and dashes
    (" tel:+8615012345678 ", "+8615012345678"),
    ("19912345678", "+8619912345678"),
    ("+1 415 555 2671", "+14155552671"),
    ("+44 20 7946 0958", "+442079460958"),
    ("0044 20 7946 0958", "+442079460958"),
    ("010-6552 9988", "+861065529988"),  # Beijing landline
    ("0755-86013388", "+8675586013388"),  # Shenzhen landline
    ("+86 755 8601 3388", "+8675586013388"),
    ("13800138000", None),  # China Mobile's number, typed as a placeholder
    ("+86 138 0013 8000", None),
    ("12345678901", None),
    ("11111111111", None),
    ("00000000000", None),
    ("13900000000", None),
    ("1381234567", None),  # 10 digits
    ("12812345678", None),  # no mobile starts 12
    ("138123456789", None),  # 12 digits
    ("138abcd5678", None),
    ("+1 111 111 1111", None),
    ("not a phone", None),
]

EMAILS = [
    (" Zhang.Wei@QQ.com ", "zhang.wei@qq.com"),
    ("JOHN@GMAIL.COM", "john@gmail.com"),
    ("john＠163.com", "john@163.com"),  # full-width at sign
    ("mailto:a.b@corp.cn", "a.b@corp.cn"),
    ("user+tag@sub.domain.com.cn", "user+tag@sub.domain.com.cn"),
    ("li_na-1990@126.com", "li_na-1990@126.com"),
    ("no-at-sign.com", None),
    ("a@@b.com", None),
    ("a@b@c.com", None),
    ("john@localhost", None),
    ("john doe@gmail.com", None),
    (".john@qq.com", None),
    ("john..doe@qq.com", None),
    ("john@qq..com", None),
    ("john@.com", None),
    ("john@qq.", None),
    ("test@test.com", None),
    ("null@null.com", None),
    ("a@a.com", None),
    ("noemail@163.com", None),
    ("NoEmail@qq.com", None),
    ("someone@example.com", None),
]

IMEIS = [
    ("490154203237518", "490154203237518"),
    ("49 015420 323751 8", "490154203237518"),
    ("49-015420-323751-8", "490154203237518"),
    ("IMEI:490154203237518", "490154203237518"),
    ("imei: 490154203237518", "490154203237518"),
    ("IMEI：４９０１５４２０３２３７５１８", "490154203237518"),  # full-width colon and digits
    ("49015420323751", "49015420323751"),  # 14 digits, no check digit
    ("A10000009296F2", "a10000009296f2"),  # MEID
    ("meid:a10000009296f2", "a10000009296f2"),
    ("000000000000000", None),
    ("111111111111111", None),
    ("AAAAAAAAAAAAAA", None),
    ("123456789012345", None),
    ("4901542032375", None),  # 13 digits
    ("4901542032375189", None),  # 16 digits
    ("A1000000929", None),
    ("G10000009296F2", None),
    ("abcdefabcdefab1", None),  # 15 characters must be digits
]

IDFAS = [
    (IDFA, IDFA),
    (IDFA.lower(), IDFA),
    (f" {IDFA} ", IDFA),
    (IDFA.replace("-", ""), IDFA),
    (IDFA.replace("-", "").lower(), IDFA),
    ("00000000-0000-0000-0000-000000000000", None),  # limited ad tracking
    ("00000000000000000000000000000000", None),
    ("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", None),
    ("6D92078A-8246-4BA4-AE5B", None),
    ("6D92078A-82464BA4-AE5B-76104861E7DC", None),
    ("{6D92078A-8246-4BA4-AE5B-76104861E7DC}", None),
    ("ZZ92078A-8246-4BA4-AE5B-76104861E7DC", None),
    ("6D92078A-8246-4BA4-AE5B-76104861E7DC0", None),
]

OAID_UUID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
OAIDS = [
    (OAID_UUID, OAID_UUID),
    (OAID_UUID.upper(), OAID_UUID),
    (f"  {OAID_UUID}  ", OAID_UUID),
    ("1234abcd5678ef90", "1234abcd5678ef90"),  # 16 hex
    ("ABCDEF0123456789" * 4, "abcdef0123456789" * 4),  # 64 hex
    (PHONE_MD5, PHONE_MD5),  # 32 hex: an opaque id either way
    ("00000000-0000-0000-0000-000000000000", None),
    ("0000000000000000", None),
    ("0" * 64, None),
    (MD5_EMPTY, None),
    ("1234abcd5678ef9", None),  # 15 hex
    ("g234abcd5678ef90", None),
    ("a" * 65, None),
    ("a1b2c3d4-e5f6-4a7b-8c9d", None),
]

ANDROID_IDS = [
    ("1a2b3c4d5e6f7a8b", "1a2b3c4d5e6f7a8b"),
    (" 1A2B3C4D5E6F7A8B ", "1a2b3c4d5e6f7a8b"),
    ("0123456789ABCDEF", "0123456789abcdef"),
    ("123456789abcdef", "0123456789abcdef"),  # 15 digits: Long.toHexString dropped the leading zero
    ("１ａ２ｂ３ｃ４ｄ５ｅ６ｆ７ａ８ｂ", "1a2b3c4d5e6f7a8b"),
    ("9774d56d682e549c", None),  # the Android 2.2 bug value
    ("9774D56D682E549C", None),
    ("0000000000000000", None),
    ("000000000000000", None),
    ("ffffffffffffffff", None),
    ("1a2b3c4d5e6f7a", None),
    ("1a2b3c4d5e6f7a8b9", None),
    ("1a2b-3c4d-5e6f-7a8b", None),
    ("xyz", None),
]

WECHAT_IDS = [
    (OPENID, OPENID),
    (f" {OPENID} ", OPENID),
    ("o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"),
    ("oTYpG5g-0aB1cD2eF3gH4iJ5kL6m", "oTYpG5g-0aB1cD2eF3gH4iJ5kL6m"),
    ("o" + "AbCd" * 5, "o" + "AbCd" * 5),  # 21 characters: lenient length
    ("oXYZ", None),
    ("oAbC dEfGhIjKlMnOpQrStUvWxYz1", None),
    ("oAbC.dEfGhIjKlMnOpQrStUvWxYz1", None),
    ("o" * 28, None),
    ("x" * 41, None),
    ("微信用户oAbCdEfGhIjKlMnOpQrStUvWx", None),
]

MEMBER_IDS = [
    ("m001", "M001"),
    (" M001 ", "M001"),
    ("vip-2024_0001", "VIP-2024_0001"),
    ("ＭＥＭ１２３", "MEM123"),
    ("A" * 64, "A" * 64),
    ("test", None),
    ("TEST", None),
    ("000", None),
    ("ab", None),
    ("M 001", None),
    ("M.001", None),
    ("会员001", None),
    ("A" * 65, None),
]

COOKIES = [
    ("ck.1a2b3c4d", "ck.1a2b3c4d"),
    ("GA1.2.123456789.1700000000", "GA1.2.123456789.1700000000"),
    (" AbC-def_123 ", "AbC-def_123"),
    ("x" * 7 + "y", "x" * 7 + "y"),
    ("short", None),
    ("aaaaaaaaaaaa", None),
    ("has space 12345", None),
    ("cookie=abc12345", None),
    ("c" * 127 + "d" * 2, None),
]

CASES: dict[str, tuple[Callable[[Column], Column], list[tuple[str | None, str | None]]]] = {
    "phone": (build_phone, PHONES),
    "email": (build_email, EMAILS),
    "imei": (build_imei, IMEIS),
    "idfa": (build_idfa, IDFAS),
    "oaid": (build_oaid, OAIDS),
    "android_id": (build_android_id, ANDROID_IDS),
    "wechat_openid": (build_wechat_openid, WECHAT_IDS),
    "wechat_unionid": (build_wechat_unionid, WECHAT_IDS),
    "member_id": (build_member_id, MEMBER_IDS),
    "cookie": (build_cookie, COOKIES),
}


def check(spark, build: Callable[[Column], Column], cases: list[tuple[str | None, str | None]]) -> None:
    """Run ``build`` over the raw values and compare (row, raw, result) with the expected table."""
    data = [(i, raw, want) for i, (raw, want) in enumerate(cases)]
    df = spark.createDataFrame(data, "i int, raw string, want string")
    actual = df.select("i", "raw", build(F.col("raw")).alias("value"))
    expected = df.select("i", "raw", F.col("want").alias("value"))
    assert_df_equal(actual, expected, order_by=["i"])


@pytest.mark.parametrize("id_type", list(CASES))
def test_normalizer(spark, id_type: str) -> None:
    build, cases = CASES[id_type]
    check(spark, build, cases + SHARED_JUNK)


def test_every_shared_placeholder_is_rejected_by_every_id_type(spark) -> None:
    values = sorted(JUNK_VALUES) + [v.upper() for v in JUNK_VALUES] + [f" {v}\t" for v in JUNK_VALUES]
    df = spark.createDataFrame([(v,) for v in values], "raw string")
    got = df.select(*[build_normalized(F.col("raw"), t).alias(t) for t in ID_TYPES]).collect()
    assert [tuple(r) for r in got] == [(None,) * len(ID_TYPES)] * len(values)


def test_phone_with_another_default_region(spark) -> None:
    check(
        spark,
        lambda c: build_phone(c, default_region="US"),
        [
            ("(415) 555-2671", "+14155552671"),
            ("+86 138 1234 5678", "+8613812345678"),
            ("0086 13812345678", "+8613812345678"),
            ("13812345678", None),  # a bare 11-digit number is not Chinese outside CN
            ("020 7946 0958", None),
        ],
    )


def test_hash_kind(spark) -> None:
    check(
        spark,
        build_hash_kind,
        [
            (PHONE_MD5, "md5"),
            (PHONE_MD5.upper(), "md5"),
            (f" {PHONE_SHA256} ", "sha256"),
            (PHONE_SHA256.upper(), "sha256"),
            (PHONE_MD5[:-1], None),
            (PHONE_MD5 + "0", None),
            (PHONE_MD5[:-1] + "g", None),
            (IDFA, None),
            ("13812345678", None),
            (None, None),
        ],
    )


HASHED = [
    (PHONE_MD5, PHONE_MD5),
    (PHONE_MD5.upper(), PHONE_MD5),
    (f" {PHONE_SHA256.upper()} ", PHONE_SHA256),
    (MD5_EMPTY, None),  # md5 of an empty string is a placeholder, not a person
    (SHA256_EMPTY, None),
    (hashlib.md5(b"null").hexdigest(), None),
    ("0" * 32, None),
]


@pytest.mark.parametrize("id_type", ["phone", "email", "imei"])
def test_hashed_values_are_kept_as_lower_case_digests(spark, id_type: str) -> None:
    raw_cases = {"phone": PHONES[:3], "email": EMAILS[:3], "imei": IMEIS[:3]}[id_type]
    check(spark, lambda c: build_normalized(c, id_type), raw_cases + HASHED + SHARED_JUNK)


def test_hashed_idfa_is_told_from_an_idfa_without_dashes_by_case(spark) -> None:
    idfa_md5 = hashlib.md5(IDFA.encode()).hexdigest()
    check(
        spark,
        lambda c: build_normalized(c, "idfa"),
        [
            (IDFA, IDFA),
            (IDFA.lower(), IDFA),
            (IDFA.replace("-", ""), IDFA),  # upper-case 32 hex: an IDFA written without dashes
            (idfa_md5, idfa_md5),  # lower-case 32 hex: an md5
            (hashlib.sha256(IDFA.encode()).hexdigest().upper(), hashlib.sha256(IDFA.encode()).hexdigest()),
            (MD5_EMPTY, None),
            ("00000000-0000-0000-0000-000000000000", None),
            ("unknown", None),
            (None, None),
        ],
    )


def test_oaid_keeps_hex_values_as_opaque_ids(spark) -> None:
    check(spark, lambda c: build_normalized(c, "oaid"), OAIDS + SHARED_JUNK)


def test_normalizers_cover_every_id_type() -> None:
    assert list(NORMALIZERS) == list(ID_TYPES)


def test_unknown_id_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown id_type 'mac'"):
        build_normalized(F.col("x"), "mac")


@pytest.mark.parametrize("id_type", ["android_id", "wechat_openid", "wechat_unionid", "member_id", "cookie"])
def test_dispatch_of_types_without_hashed_form(spark, id_type: str) -> None:
    _, cases = CASES[id_type]
    # Digests are not kept as such for these types: wechat ids refuse them (64 hex is too long anyway),
    # member ids and cookies are opaque and take them as ids.
    hashed = {
        "android_id": [(PHONE_MD5, None), (PHONE_SHA256, None)],
        "wechat_openid": [(PHONE_MD5, None), (PHONE_SHA256, None)],
        "wechat_unionid": [(PHONE_MD5, None), (PHONE_SHA256, None)],
        "member_id": [(PHONE_MD5, PHONE_MD5.upper()), (PHONE_SHA256, PHONE_SHA256.upper())],
        "cookie": [(PHONE_MD5, PHONE_MD5), (PHONE_SHA256, PHONE_SHA256)],
    }[id_type]
    check(spark, lambda c: build_normalized(c, id_type), cases + hashed + SHARED_JUNK)
