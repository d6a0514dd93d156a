"""PII protection columns: keyed hashes for joining, unsalted hashes for ad-platform matching, display masks,
and encryption of the direct-PII values kept in bronze and in the vault.

All functions take a normalised value (see :mod:`identity.normalize`) and return NULL for NULL.

- ``build_keyed_hash``: HMAC-SHA256 with the deployment's secret, computed with Spark built-ins. It is the
  join key of silver and gold: without the secret, nobody can test a guessed phone number against it.
- ``build_md5`` / ``build_sha256`` and ``platform_hash_columns``: what Tencent, ByteDance, Alibaba, Google
  and Meta match audiences on. A phone has about 10^4 candidates per mask, so these unkeyed digests are
  never stored: exports compute them from the vault's encrypted values (``build_decrypted``).
- ``build_masked``: ``138****5678``, ``jo***@qq.com``, ``张*``, for screens and reports.
- ``build_encrypted`` / ``build_decrypted``: AES-256-GCM, written in the exact layout of Spark's
  ``aes_encrypt(value, key, 'GCM')`` (12-byte IV, ciphertext, 16-byte tag), base64-encoded. Sail 0.7 only
  evaluates ``aes_encrypt``/``aes_decrypt`` on literal inputs (a column input fails with "Expr requires a
  single value"), so the cipher runs in a pandas UDF with the ``cryptography`` package. On classic Spark a
  value can also be read with ``aes_decrypt(unbase64(c), <derived key>, 'GCM')``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import pandas as pd
import phonenumbers
from pyspark.sql import Column
from pyspark.sql import functions as F

from schemas.contract import ID_TYPES

_BLOCK = 64  # SHA-256 block size in bytes, the HMAC key length after padding (RFC 2104)


def _secret(key: str) -> bytes:
    if not isinstance(key, str) or not key:
        raise ValueError(
            "the PII key is empty: set CDP_PII_KEY to a long random secret, or run 'cdp init-key'"
        )
    return key.encode("utf-8")


def _utf8(col: Column) -> Column:
    return F.encode(col.cast("string"), "UTF-8")


def build_keyed_hash(col: Column, key: str) -> Column:
    """HMAC-SHA256 of the UTF-8 value with a secret key, as lower-case hex.

    Equal to ``hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()``. The padded inner and
    outer keys are computed here and enter the plan as binary literals, so the engine only runs ``sha2``
    and ``concat`` (RFC 2104: ``H((K ^ opad) || H((K ^ ipad) || m))``).

    Args:
        col: the value to hash (cast to string).
        key: the deployment's secret.

    Returns:
        64 lower-case hex characters, or NULL for NULL.

    Raises:
        ValueError: the key is empty.
    """
    secret = _secret(key)
    if len(secret) > _BLOCK:
        secret = hashlib.sha256(secret).digest()
    secret = secret.ljust(_BLOCK, b"\x00")
    inner_key = bytes(b ^ 0x36 for b in secret)
    outer_key = bytes(b ^ 0x5C for b in secret)
    inner = F.sha2(F.concat(F.unhex(F.lit(inner_key.hex())), _utf8(col)), 256)
    return F.sha2(F.concat(F.unhex(F.lit(outer_key.hex())), F.unhex(inner)), 256)


def build_md5(col: Column) -> Column:
    """Unsalted md5 of the UTF-8 value, lower-case hex (ad-platform matching).

    Args:
        col: the normalised value.

    Returns:
        32 lower-case hex characters, or NULL for NULL.
    """
    return F.md5(_utf8(col))


def build_sha256(col: Column) -> Column:
    """Unsalted SHA-256 of the UTF-8 value, lower-case hex (ad-platform matching).

    Args:
        col: the normalised value.

    Returns:
        64 lower-case hex characters, or NULL for NULL.
    """
    return F.sha2(_utf8(col), 256)


PLATFORM_HASH_FORMS = ("md5", "sha256", "sha256_e164", "sha256_cc")
"""The unkeyed digests ad platforms match on (phones have all four, other ID types md5 and sha256)."""


def platform_hash_columns(value: Column, id_type: str) -> dict[str, Column]:
    """The digests of :data:`PLATFORM_HASH_FORMS` of one normalised identifier, as platforms expect them.

    Phones (E.164): Chinese platforms hash the 11-digit national number (``md5``, ``sha256``), Google the
    E.164 string (``sha256_e164``), Meta the digits with country code (``sha256_cc``). Other ID types:
    ``md5`` and ``sha256`` of the value, the phone forms NULL.

    Args:
        value: the normalised value (decrypted from the vault; never stored next to these digests).
        id_type: the value's ID type.

    Returns:
        Form name -> lower-case hex digest column, for every name of :data:`PLATFORM_HASH_FORMS`.
    """
    if id_type != "phone":
        none = F.lit(None).cast("string")
        return {
            "md5": build_md5(value),
            "sha256": build_sha256(value),
            "sha256_e164": none,
            "sha256_cc": none,
        }
    digits = F.regexp_replace(value, r"^\+", "")
    national = F.when(value.startswith("+86"), F.substring(value, 4, 11)).otherwise(digits)
    return {
        "md5": build_md5(national),
        "sha256": build_sha256(national),
        "sha256_e164": build_sha256(value),
        "sha256_cc": build_sha256(digits),
    }


# --- masks -------------------------------------------------------------------------------------------------

# Country calling codes form a prefix code, so at most one alternative matches the start of an E.164 number.
_COUNTRY_CODE = "|".join(
    sorted((str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE), key=lambda c: (-len(c), c))
)
MASK_KINDS = ("phone", "email", "name", *(t for t in ID_TYPES if t not in ("phone", "email")))
"""What :func:`build_masked` accepts: the ID types and ``name``."""


def _stars(col: Column) -> Column:
    """One ``*`` per character."""
    return F.regexp_replace(col, "(?s).", "*")


def _mask_phone(value: Column) -> Column:
    cn_mobile = F.regexp_extract(value, "^(?:\\+86)?(1[0-9]{10})$", 1)
    country = F.regexp_extract(value, f"^\\+({_COUNTRY_CODE})[0-9]{{4,}}$", 1)
    digits = F.regexp_replace(value, "[^0-9]", "")
    return (
        F.when(
            cn_mobile != "",
            F.concat(F.substring(cn_mobile, 1, 3), F.lit("****"), F.substring(cn_mobile, -4, 4)),
        )
        .when(country != "", F.concat(F.lit("+"), country, F.lit("****"), F.substring(value, -4, 4)))
        .when(F.length(digits) > 4, F.concat(F.lit("****"), F.substring(digits, -4, 4)))
        .when(value.isNotNull(), F.lit("****"))
    )


def _mask_email(value: Column) -> Column:
    at = F.instr(value, "@")
    local = F.substring_index(value, "@", 1)
    domain = F.substring(value, at + 1, 1 << 20)
    shown = F.least(F.lit(2), F.length(local) - 1)  # a 1- or 2-character local part is not shown whole
    return F.when(
        at > 1,
        F.concat(F.substring(local, F.lit(1), shown), F.lit("***@"), domain),
    ).when(value.isNotNull(), F.lit("***"))


def _mask_name(value: Column) -> Column:
    return F.when(
        F.length(value) > 1, F.concat(F.substring(value, 1, 1), _stars(F.substring(value, 2, 1 << 20)))
    ).when(value.isNotNull(), F.lit("*"))


def _mask_id(value: Column) -> Column:
    n = F.length(value)
    return (
        F.when(n > 8, F.concat(F.substring(value, 1, 4), F.lit("****"), F.substring(value, -4, 4)))
        .when(n > 4, F.concat(F.substring(value, 1, 2), F.lit("****")))
        .when(value.isNotNull(), F.lit("****"))
    )


def build_masked(col: Column, id_type: str) -> Column:
    """A display form that hides most of a value.

    ========================  ============================================================================
    ``phone`` (E.164)         ``+8613812345678`` -> ``138****5678``; other countries keep the country code
                              and the last 4 digits: ``+14155552671`` -> ``+1****2671``
    ``email``                 first 2 characters of the local part: ``john@qq.com`` -> ``jo***@qq.com``
    ``name``                  first character, one ``*`` per other character: ``张*``, ``J***``
    other ID types            first 4 + ``****`` + last 4; values of 8 characters or fewer show less
    ========================  ============================================================================

    Args:
        col: the normalised value.
        id_type: one of :data:`MASK_KINDS`.

    Returns:
        The masked string, or NULL for NULL.

    Raises:
        ValueError: ``id_type`` is not one of :data:`MASK_KINDS`.
    """
    if id_type not in MASK_KINDS:
        raise ValueError(f"cannot mask {id_type!r}: use one of {', '.join(MASK_KINDS)}")
    value = col.cast("string")
    if id_type == "phone":
        return _mask_phone(value)
    if id_type == "email":
        return _mask_email(value)
    if id_type == "name":
        return _mask_name(value)
    return _mask_id(value)


# --- encryption (bronze, vault) ----------------------------------------------------------------------------

_KEY_LABEL = b"cdp/bronze-pii/aes-256-gcm/v1"


def encryption_key(key: str) -> bytes:
    """The 32-byte AES-256 key derived from the deployment's secret: ``HMAC-SHA256(secret, label)``.

    The label separates this key from the HMAC join key, so the secret is never used twice for different
    purposes. Pass the result to Spark's ``aes_decrypt`` to read bronze values on classic Spark.

    Raises:
        ValueError: the key is empty.
    """
    return hmac.new(_secret(key), _KEY_LABEL, hashlib.sha256).digest()


# The UDF bodies import what they need and refer to nothing in this package, so that cloudpickle ships them
# by value (a class such as AESGCM captured from here does not survive pickling to a classic Python worker).


def _encrypt_udf(aes_key: bytes) -> Callable[[Column], Column]:
    def encrypt(values: pd.Series) -> pd.Series:
        import base64
        import os

        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        cipher = AESGCM(aes_key)

        def one(value: object) -> str | None:
            if not isinstance(value, str):  # pandas hands NULLs over as None or NaN
                return None
            iv = os.urandom(12)  # a fresh 96-bit IV per value, as Spark's aes_encrypt does in GCM mode
            return base64.b64encode(iv + cipher.encrypt(iv, value.encode("utf-8"), None)).decode("ascii")

        return pd.Series([one(v) for v in values], index=values.index, dtype=object)

    return F.pandas_udf(encrypt, "string")


def _decrypt_udf(aes_key: bytes) -> Callable[[Column], Column]:
    def decrypt(values: pd.Series) -> pd.Series:
        import base64

        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        cipher = AESGCM(aes_key)

        def one(value: object) -> str | None:
            if not isinstance(value, str):
                return None
            blob = base64.b64decode(value)
            return cipher.decrypt(blob[:12], blob[12:], None).decode("utf-8")

        return pd.Series([one(v) for v in values], index=values.index, dtype=object)

    return F.pandas_udf(decrypt, "string")


def build_encrypted(col: Column, key: str) -> Column:
    """Encrypt a value with AES-256-GCM for bronze and vault storage; base64 text of IV + ciphertext + tag.

    Each value gets a fresh random IV, so equal inputs give different outputs; join on
    :func:`build_keyed_hash` instead. The layout is Spark's ``aes_encrypt(value, key, 'GCM')``.

    Args:
        col: the value to encrypt (cast to string).
        key: the deployment's secret; the AES key is :func:`encryption_key` of it.

    Returns:
        The base64 ciphertext, or NULL for NULL.

    Raises:
        ValueError: the key is empty.
    """
    return _encrypt_udf(encryption_key(key))(col.cast("string"))


def build_decrypted(col: Column, key: str) -> Column:
    """Decrypt a value written by :func:`build_encrypted` (or by Spark's ``aes_encrypt`` in GCM mode with
    :func:`encryption_key` as the key).

    Args:
        col: the base64 ciphertext.
        key: the deployment's secret used to encrypt.

    Returns:
        The plain UTF-8 text, or NULL for NULL. A wrong key or a damaged value fails the query
        (``InvalidTag``) rather than returning NULL, as Spark's ``aes_decrypt`` does.

    Raises:
        ValueError: the key is empty.
    """
    return _decrypt_udf(encryption_key(key))(col.cast("string"))
