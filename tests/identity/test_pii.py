"""PII protection columns: keyed hashes equal Python's HMAC, platform hashes equal hashlib, masks, and the
bronze cipher round trip (and its compatibility with Spark's ``aes_encrypt`` layout)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyspark.sql import functions as F

from cdp.testing import assert_df_equal
from identity import (
    build_decrypted,
    build_encrypted,
    build_keyed_hash,
    build_masked,
    build_md5,
    build_sha256,
    encryption_key,
    platform_hash_columns,
)

VALUES = [
    "+8613812345678",
    "zhang.wei@qq.com",
    "张伟",
    "王小明 Wang",
    "emoji 🙂 and ß",
    "",
    "x" * 200,
    None,
]
KEYS = ["test-only-pii-key", "密钥-with-unicode", "k", "a" * 64, "b" * 65, "long " * 40]


def table(spark, values: list[str | None]):
    return spark.createDataFrame(list(enumerate(values)), "i int, v string")


@pytest.mark.parametrize("key", KEYS)
def test_keyed_hash_equals_python_hmac(spark, key: str) -> None:
    df = table(spark, VALUES)
    actual = df.select("i", build_keyed_hash(F.col("v"), key).alias("h"))
    want = [
        (i, None if v is None else hmac.new(key.encode(), v.encode(), hashlib.sha256).hexdigest())
        for i, v in enumerate(VALUES)
    ]
    assert_df_equal(actual, spark.createDataFrame(want, "i int, h string"), order_by=["i"])


def test_keyed_hash_depends_on_the_key(spark) -> None:
    df = table(spark, ["13812345678"])
    row = df.select(build_keyed_hash(F.col("v"), "key-1"), build_keyed_hash(F.col("v"), "key-2")).first()
    assert row[0] != row[1]


def test_keyed_hash_of_a_number_hashes_its_text(spark) -> None:
    df = spark.createDataFrame([(13812345678,)], "v bigint")
    got = df.select(build_keyed_hash(F.col("v"), "k")).first()[0]
    assert got == hmac.new(b"k", b"13812345678", hashlib.sha256).hexdigest()


@pytest.mark.parametrize("build", [build_keyed_hash, build_encrypted, build_decrypted])
def test_empty_key_is_refused(build) -> None:
    with pytest.raises(ValueError, match="PII key is empty"):
        build(F.col("v"), "")


def test_platform_hashes_equal_hashlib(spark) -> None:
    df = table(spark, VALUES)
    actual = df.select("i", build_md5(F.col("v")).alias("md5"), build_sha256(F.col("v")).alias("sha256"))
    want = [
        (i, None, None)
        if v is None
        else (i, hashlib.md5(v.encode()).hexdigest(), hashlib.sha256(v.encode()).hexdigest())
        for i, v in enumerate(VALUES)
    ]
    assert_df_equal(actual, spark.createDataFrame(want, "i int, md5 string, sha256 string"), order_by=["i"])


def test_platform_hash_columns_are_the_forms_each_platform_matches_on(spark) -> None:
    """Chinese platforms: the 11-digit number; Google: E.164; Meta: the digits with country code."""
    df = spark.createDataFrame(
        [("+8613812345678", "phone"), ("+14155552671", "phone"), ("zhang.wei@qq.com", "email")],
        "v string, t string",
    )
    for value, id_type in [(r.v, r.t) for r in df.collect()]:
        cols = platform_hash_columns(F.col("v"), id_type)
        got = df.where(F.col("v") == value).select(*[c.alias(n) for n, c in cols.items()]).first().asDict()
        if id_type == "phone":
            national = value[3:] if value.startswith("+86") else value[1:]
            want = {
                "md5": hashlib.md5(national.encode()).hexdigest(),
                "sha256": hashlib.sha256(national.encode()).hexdigest(),
                "sha256_e164": hashlib.sha256(value.encode()).hexdigest(),
                "sha256_cc": hashlib.sha256(value[1:].encode()).hexdigest(),
            }
        else:
            md5, sha = hashlib.md5(value.encode()).hexdigest(), hashlib.sha256(value.encode()).hexdigest()
            want = {"md5": md5, "sha256": sha, "sha256_e164": None, "sha256_cc": None}
        assert got == want, value


MASKS = {
    "phone": [
        ("+8613812345678", "138****5678"),
        ("+8619912340000", "199****0000"),
        ("13812345678", "138****5678"),
        ("+14155552671", "+1****2671"),
        ("+442079460958", "+44****0958"),
        ("+85291234567", "+852****4567"),
        ("+861065529988", "+86****9988"),  # a Chinese landline keeps the country code only
        ("02079460958", "****0958"),
        ("123", "****"),
        (None, None),
    ],
    "email": [
        ("zhang.wei@qq.com", "zh***@qq.com"),
        ("john@gmail.com", "jo***@gmail.com"),
        ("abc@163.com", "ab***@163.com"),
        ("jo@qq.com", "j***@qq.com"),
        ("j@qq.com", "***@qq.com"),
        ("张三丰@qq.com", "张三***@qq.com"),
        ("not-an-email", "***"),
        (None, None),
    ],
    "name": [
        ("张伟", "张*"),
        ("张小明", "张**"),
        ("欧阳娜娜", "欧***"),
        ("John", "J***"),
        ("J", "*"),
        ("", "*"),
        (None, None),
    ],
    "imei": [
        ("490154203237518", "4901****7518"),
        ("a10000009296f2", "a100****96f2"),
        (None, None),
    ],
    "member_id": [
        ("VIP-2024_0001", "VIP-****0001"),
        ("M00012345", "M000****2345"),
        ("M0001234", "M0****"),
        ("M001", "****"),
        (None, None),
    ],
    "idfa": [("6D92078A-8246-4BA4-AE5B-76104861E7DC", "6D92****E7DC")],
    "wechat_openid": [("oAbCdEfGhIjKlMnOpQrStUvWxYz1", "oAbC****xYz1")],
}


@pytest.mark.parametrize("kind", list(MASKS))
def test_masks(spark, kind: str) -> None:
    cases = MASKS[kind]
    df = spark.createDataFrame([(i, v, m) for i, (v, m) in enumerate(cases)], "i int, v string, m string")
    actual = df.select("i", build_masked(F.col("v"), kind).alias("masked"))
    expected = df.select("i", F.col("m").alias("masked"))
    assert_df_equal(actual, expected, order_by=["i"])


def test_unknown_mask_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot mask 'ssn'"):
        build_masked(F.col("v"), "ssn")


def test_encryption_round_trip(spark) -> None:
    key = "test-only-pii-key"
    df = table(spark, VALUES)
    encrypted = df.select("i", "v", build_encrypted(F.col("v"), key).alias("c"))
    decrypted = encrypted.select("i", build_decrypted(F.col("c"), key).alias("v"))
    assert_df_equal(decrypted, df, order_by=["i"])
    rows = {r.i: r.c for r in encrypted.collect()}
    assert rows[len(VALUES) - 1] is None
    for i, v in enumerate(VALUES[:-1]):
        assert v not in base64.b64decode(rows[i]).decode("latin-1") or v == ""
        assert len(base64.b64decode(rows[i])) == 12 + len(v.encode()) + 16  # IV + ciphertext + GCM tag


def test_encryption_is_randomised(spark) -> None:
    df = table(spark, ["13812345678", "13812345678"])
    got = [r.c for r in df.select(build_encrypted(F.col("v"), "k").alias("c")).collect()]
    assert got[0] != got[1]


def test_ciphertext_has_the_layout_of_spark_aes_encrypt() -> None:
    # Spark's documented example: base64(aes_encrypt('Spark', 'abcdefghijklmnop')) with GCM (the default).
    blob = base64.b64decode("4A5jOAh9FNGwoMeuJukfllrLdHEZxA2DyuSQAWz77dfn")
    assert AESGCM(b"abcdefghijklmnop").decrypt(blob[:12], blob[12:], None) == b"Spark"


def test_values_written_by_spark_aes_encrypt_decrypt(spark) -> None:
    key = "test-only-pii-key"
    cipher = AESGCM(encryption_key(key))
    iv = b"\x01" * 12
    written = base64.b64encode(iv + cipher.encrypt(iv, "张伟".encode(), None)).decode()
    df = spark.createDataFrame([(written,)], "c string")
    assert df.select(build_decrypted(F.col("c"), key)).first()[0] == "张伟"


def test_derived_key_is_aes_256_and_separate_from_the_secret() -> None:
    key = encryption_key("test-only-pii-key")
    assert len(key) == 32
    assert key == hmac.new(b"test-only-pii-key", b"cdp/bronze-pii/aes-256-gcm/v1", hashlib.sha256).digest()
    assert encryption_key("another-key") != key


def test_wrong_key_fails_instead_of_returning_null(spark) -> None:
    df = table(spark, ["13812345678"])
    encrypted = df.select(build_encrypted(F.col("v"), "right-key").alias("c"))
    with pytest.raises(Exception, match="InvalidTag"):
        encrypted.select(build_decrypted(F.col("c"), "wrong-key")).collect()


CLASSIC = """
import hashlib, hmac
from pyspark.sql import functions as F
from cdp.engine import get_spark
from identity import build_decrypted, build_encrypted, build_keyed_hash, build_phone, encryption_key

spark = get_spark(mode="classic")
key = "test-only-pii-key"
aes_key = F.lit(bytearray(encryption_key(key)))
df = spark.createDataFrame([("138 1234 5678",), ("+44 20 7946 0958",), ("张伟",), (None,)], "v string")
out = df.select(
    "v",
    build_phone(F.col("v")).alias("phone"),
    build_keyed_hash(F.col("v"), key).alias("h"),
    build_encrypted(F.col("v"), key).alias("c"),
    F.base64(F.aes_encrypt(F.col("v"), aes_key, F.lit("GCM"))).alias("spark_c"),
).select(
    "v",
    "phone",
    "h",
    F.aes_decrypt(F.unbase64("c"), aes_key, F.lit("GCM")).cast("string").alias("spark_reads_ours"),
    build_decrypted(F.col("spark_c"), key).alias("we_read_spark"),
)
for r in out.collect():
    want = None if r.v is None else hmac.new(key.encode(), r.v.encode(), hashlib.sha256).hexdigest()
    assert r.h == want, (r.v, r.h)
    assert r.spark_reads_ours == r.v and r.we_read_spark == r.v, r
    print(r.v, r.phone)
"""


@pytest.mark.slow
@pytest.mark.classic
def test_classic_spark_computes_the_same_and_reads_the_ciphertext() -> None:
    """The same columns on a local JVM Spark (in a subprocess: a classic session cannot share a process
    with Spark Connect ones), with Spark's own aes_decrypt/aes_encrypt on the other side of the cipher."""
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED")}
    env |= {"CDP_ENGINE": "classic", "CDP_SPARK_MASTER": "local[1]", "PYSPARK_PYTHON": sys.executable}
    proc = subprocess.run(
        [sys.executable, "-c", CLASSIC], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == [
        "138 1234 5678 +8613812345678",
        "+44 20 7946 0958 +442079460958",
        "张伟 None",
        "None None",
    ]
