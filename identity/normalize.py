"""Identifier normalisation: one ``Column -> Column`` function per ID type, turning what source systems
deliver into the canonical value the identity graph joins on, or NULL when the value is invalid or junk.

Every function first applies the same cleaning: full-width characters become half-width (``１３８``,
``＠``, ``＋`` from Chinese input methods), surrounding whitespace (including the ideographic space) is
removed, and placeholder values shared by all types (``unknown``, ``null``, ``-``, ``0``...) become NULL.

Canonical forms:

=================  ==============================================================================
``phone``          E.164 (``+8613812345678``)
``email``          lower case (``zhang.wei@qq.com``)
``imei``           14-15 digits, or a 14-hex MEID in lower case
``idfa``           upper-case dashed UUID (``6D92078A-8246-4BA4-AE5B-76104861E7DC``)
``oaid``           lower case, as delivered (dashed UUID or 16-64 hex)
``android_id``     16 lower-case hex
``wechat_*``       trimmed, case preserved
``member_id``      upper case
``cookie``         trimmed, case preserved
=================  ==============================================================================

Regular expressions use explicit ASCII classes (``[0-9]``, never ``\\d``, ``\\s`` or ``\\w``): Java
(classic Spark) gives those an ASCII meaning and Rust (Sail) a Unicode one. Sail's regex engine has no
back-references, so "one character repeated" is spelled out as an alternation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F

# Full-width ASCII (U+FF01..U+FF5E) and the ideographic space, mapped to their half-width forms.
_FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
_HALF_WIDTH = "".join(chr(c) for c in range(0x21, 0x7F)) + " "
# Literal whitespace characters (not \s, whose meaning differs between engines).
_WS = " \t\r\n\f\x0b\u00a0\u2007\u200b\u202f\u3000\ufeff"
_EDGE_WS = f"^[{_WS}]+|[{_WS}]+$"

JUNK_VALUES: frozenset[str] = frozenset(
    {
        "",
        "-",
        "--",
        "0",
        "?",
        "(null)",
        "<null>",
        "[]",
        "{}",
        "n/a",
        "na",
        "nan",
        "nil",
        "none",
        "null",
        "undefined",
        "unknown",
    }
)
"""Placeholders that mean "no value" for every ID type (compared case-insensitively after trimming)."""

# md5 / sha256 of the placeholders: a source that hashes before sending turns "" or "null" into these.
_JUNK_HASHES = sorted(
    {hashlib.md5(v.encode()).hexdigest() for v in JUNK_VALUES}
    | {hashlib.sha256(v.encode()).hexdigest() for v in JUNK_VALUES}
)


def _same_char(alphabet: str) -> str:
    """A regex matching a string made of one character of ``alphabet`` repeated (no back-references)."""
    return "^(?:" + "|".join(f"{c}+" for c in alphabet) + ")$"


_SAME_DIGIT = _same_char("0123456789")
_SAME_HEX = _same_char("0123456789abcdef")
_SAME_HEX_DASHED = "^(?:" + "|".join(f"[{c}-]+" for c in "0123456789abcdef") + ")$"
_SAME_ALNUM = "(?i)" + _same_char("0123456789abcdefghijklmnopqrstuvwxyz_") + "|^(?:\\.+|-+)$"


def _clean(col: Column) -> Column:
    """Half-width, trimmed string, NULL for shared placeholders."""
    value = F.regexp_replace(F.translate(col.cast("string"), _FULL_WIDTH, _HALF_WIDTH), _EDGE_WS, "")
    return F.when(~F.lower(value).isin(*JUNK_VALUES), value)


def _unless(value: Column, junk: Column) -> Column:
    """``value``, or NULL where ``junk`` holds (a NULL ``junk`` keeps the value)."""
    return F.when(~F.coalesce(junk, F.lit(False)), value)


# --- phone -------------------------------------------------------------------------------------------------

_PHONE_SEPARATORS = "[ \t\\-.()\\[\\]/_\u2010\u2011\u2012\u2013\u2014\u2015]"
_CN_MOBILE = "1[3-9][0-9]{9}"
_PHONE_JUNK_NATIONAL = ("13800138000", "12345678901", "01234567890", "10000000000")
# Numbers like 13900000000: placeholders typed into mandatory form fields, not issued to subscribers.
_PHONE_JUNK_PATTERN = "^1[3-9][0-9]0{8}$"


def _phone_udf(region: str) -> Callable[[Column], Column]:
    """A vectorised UDF giving the E.164 form of valid, non-placeholder numbers (else NULL) with
    ``phonenumbers``.

    Made at call time because ``pandas_udf`` picks the Spark Connect or the classic implementation from
    the session that exists then. The function body imports what it needs and refers to nothing in this
    package, so that cloudpickle ships it by value: executors need ``phonenumbers`` and ``pandas``, not
    this package.
    """
    junk_national = frozenset(_PHONE_JUNK_NATIONAL)
    junk_pattern = _PHONE_JUNK_PATTERN

    def parse_phones(values: pd.Series) -> pd.Series:
        import re

        import phonenumbers

        def e164(value: str) -> str | None:
            try:
                number = phonenumbers.parse(value, region)
            except phonenumbers.NumberParseException:
                return None
            if not phonenumbers.is_valid_number(number):
                return None
            national = str(number.national_number)
            if number.country_code == 86 and (national in junk_national or re.match(junk_pattern, national)):
                return None
            if len(set(national)) == 1:
                return None
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

        out = pd.Series(None, index=values.index, dtype=object)
        present = values.dropna()  # fast-path rows arrive as NULL: no Python work for them
        if len(present):
            out[present.index] = [e164(v) for v in present]
        return out

    return F.pandas_udf(parse_phones, "string")


def build_phone(col: Column, default_region: str = "CN") -> Column:
    """Normalise a phone number to E.164.

    Chinese mobile numbers (the bulk of the data) take a fast path in Spark expressions: separators
    (spaces, dashes, dots, brackets) and a ``+86``, ``0086`` or ``86`` prefix are removed, and 11 digits
    starting ``1[3-9]`` become ``+86`` + the digits. Anything else that looks like a number (international
    numbers, Chinese landlines such as ``010-6552 9988``) goes to a vectorised pandas UDF using
    ``phonenumbers``, which keeps valid numbers only.

    Args:
        col: the raw phone number.
        default_region: ISO region for numbers without a country code. The bare-11-digit and bare ``86``
            prefix fast path applies only when it is ``CN``; ``+86`` and ``0086`` always do.

    Returns:
        The E.164 string, or NULL when the number is invalid or a known test or placeholder number
        (``13800138000``, ``12345678901``, one digit repeated...).
    """
    cleaned = _clean(col)
    stripped = F.regexp_replace(F.regexp_replace(cleaned, "(?i)^tel:", ""), _PHONE_SEPARATORS, "")
    prefix = "(?:\\+86|0086|86)?" if default_region.upper() == "CN" else "(?:\\+86|0086)"
    mobile = F.regexp_extract(stripped, f"^{prefix}({_CN_MOBILE})$", 1)
    mobile_junk = (
        mobile.isin(*_PHONE_JUNK_NATIONAL) | mobile.rlike(_PHONE_JUNK_PATTERN) | mobile.rlike(_SAME_DIGIT)
    )
    fast = F.when((mobile != "") & ~mobile_junk, F.concat(F.lit("+86"), mobile))
    to_library = (
        (mobile == "")
        & stripped.rlike("^\\+?[0-9]{5,20}$")
        & ~F.regexp_replace(stripped, "^\\+", "").rlike(_SAME_DIGIT)
    )
    # The UDF is referenced once (a column expression is a tree: every reference would run it again) and
    # gets NULL for the fast-path rows; it applies the placeholder rules itself.
    return F.coalesce(fast, _phone_udf(default_region)(F.when(to_library, stripped)))


# --- email -------------------------------------------------------------------------------------------------

# Local part: no whitespace, no leading, trailing or doubled dot; domain: dot-separated non-empty labels.
_EMAIL = "^[^@ \t.]+(?:\\.[^@ \t.]+)*@[^@ \t.]+(?:\\.[^@ \t.]+)+$"
_EMAIL_JUNK_LOCAL = (
    "test",
    "noemail",
    "no-email",
    "no_email",
    "nomail",
    "no",
    "none",
    "null",
    "nan",
    "unknown",
    "undefined",
    "email",
    "xxx",
    "a",
)
_EMAIL_JUNK_DOMAIN = (
    "test.com",
    "null.com",
    "none.com",
    "noemail.com",
    "example.com",
    "example.org",
    "example.net",
    "email.com",
    "xxx.com",
    "a.com",
)


def build_email(col: Column) -> Column:
    """Normalise an email address: trimmed, lower case, ``mailto:`` removed.

    The syntax check is deliberately basic (exactly one ``@``, no whitespace, a dot inside the domain):
    stricter rules reject real addresses, and a wrong address only fails to match.

    Args:
        col: the raw email address.

    Returns:
        The lower-case address, or NULL when malformed or a placeholder (``test@test.com``,
        ``noemail@163.com``, ``a@a.com``, any ``@example.com``...).
    """
    value = F.regexp_replace(F.lower(_clean(col)), "^mailto:", "")
    local = F.substring_index(value, "@", 1)
    domain = F.substring_index(value, "@", -1)
    junk = local.isin(*_EMAIL_JUNK_LOCAL) | domain.isin(*_EMAIL_JUNK_DOMAIN)
    return _unless(F.when(value.rlike(_EMAIL), value), junk)


# --- device ids --------------------------------------------------------------------------------------------

_IMEI_JUNK = ("123456789012345", "12345678901234", "012345678901234", "01234567890123")


def build_imei(col: Column) -> Column:
    """Normalise an IMEI (14-15 digits) or MEID (14 hex digits, lower case).

    Spaces, dashes, slashes and an ``IMEI:`` / ``MEID:`` label are removed. The Luhn check digit is not
    verified: many sources send the 14-digit body without it.

    Args:
        col: the raw IMEI or MEID.

    Returns:
        The digits (or lower-case hex MEID), or NULL when malformed or junk (one character repeated,
        ``123456789012345``...).
    """
    value = F.lower(_clean(col))
    value = F.regexp_replace(value, "^(?:imei|meid|esn)[ \t]*[:=#]?[ \t]*", "")
    value = F.regexp_replace(value, "[ \t\\-/.]", "")
    valid = F.when(value.rlike("^(?:[0-9]{14,15}|[0-9a-f]{14})$"), value)
    return _unless(valid, value.isin(*_IMEI_JUNK) | value.rlike(_SAME_HEX))


_UUID_HEX = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def build_idfa(col: Column) -> Column:
    """Normalise an Apple IDFA to the upper-case dashed UUID form iOS reports.

    Lower case and the 32-hex form without dashes are accepted.

    Args:
        col: the raw IDFA.

    Returns:
        The upper-case ``8-4-4-4-12`` UUID, or NULL when malformed or the all-zero value that iOS
        reports when the user limits ad tracking.
    """
    value = F.lower(_clean(col))
    valid = F.when(value.rlike(f"^(?:{_UUID_HEX}|[0-9a-f]{{32}})$"), F.regexp_replace(value, "-", ""))
    dashed = F.regexp_replace(F.upper(valid), "^(.{8})(.{4})(.{4})(.{4})(.{12})$", "$1-$2-$3-$4-$5")
    return _unless(dashed, valid.rlike(_SAME_HEX))


def build_oaid(col: Column) -> Column:
    """Normalise an OAID (the Chinese Android advertising id of the MSA alliance) to lower case.

    Vendors format OAIDs differently (a dashed UUID on Huawei, 16 or 64 hex on others), so the value is
    kept as delivered, only lower-cased: it is an opaque id.

    Args:
        col: the raw OAID.

    Returns:
        The lower-case OAID, or NULL when it is neither a dashed UUID nor 16-64 hex, is all zeros (what
        the SDK returns when the user turned ad tracking off) or is the md5/sha256 of a placeholder.
    """
    value = F.lower(_clean(col))
    valid = F.when(value.rlike(f"^(?:{_UUID_HEX}|[0-9a-f]{{16,64}})$"), value)
    return _unless(valid, value.rlike(_SAME_HEX_DASHED) | value.isin(*_JUNK_HASHES))


_ANDROID_ID_JUNK = ("9774d56d682e549c",)


def build_android_id(col: Column) -> Column:
    """Normalise an Android ID to 16 lower-case hex digits.

    Android ID is a 64-bit number; Android before 8.0 wrote it with ``Long.toHexString``, which drops a
    leading zero, so about one device in sixteen reports 15 digits. Those are left-padded with ``0`` to
    the canonical 16 digits; shorter values are rejected as truncated.

    Args:
        col: the raw Android ID.

    Returns:
        The 16-hex id, or NULL when malformed, all one character, or ``9774d56d682e549c`` (the value
        shared by many devices because of an Android 2.2 bug).
    """
    value = F.lower(_clean(col))
    valid = F.when(value.rlike("^[0-9a-f]{15,16}$"), F.lpad(value, 16, "0"))
    return _unless(valid, valid.isin(*_ANDROID_ID_JUNK) | valid.rlike(_SAME_HEX))


# --- account ids -------------------------------------------------------------------------------------------

_WECHAT_ID = "^[A-Za-z0-9_-]{20,40}$"


def _wechat_id(col: Column) -> Column:
    value = _clean(col)
    # 32 lower-case hex is an md5 digest that a partner sent in place of the id, never an openid.
    junk = value.rlike(_SAME_ALNUM) | value.rlike("^[0-9a-f]{32}$")
    return _unless(F.when(value.rlike(_WECHAT_ID), value), junk)


def build_wechat_openid(col: Column) -> Column:
    """Normalise a WeChat openid (per official account or mini program).

    Openids are 28 characters of ``[A-Za-z0-9_-]`` starting with ``o``; any 20-40 characters of that
    alphabet are accepted so that ids from other WeChat surfaces are not lost. Case is significant.

    Args:
        col: the raw openid.

    Returns:
        The trimmed openid, or NULL when malformed, one character repeated or an md5 hex digest.
    """
    return _wechat_id(col)


def build_wechat_unionid(col: Column) -> Column:
    """Normalise a WeChat unionid (per WeChat Open Platform account); same format rules as openids.

    Args:
        col: the raw unionid.

    Returns:
        The trimmed unionid, or NULL when malformed, one character repeated or an md5 hex digest.
    """
    return _wechat_id(col)


_MEMBER_JUNK = ("NULL", "TEST", "NONE", "UNKNOWN", "DEFAULT")


def build_member_id(col: Column) -> Column:
    """Normalise a loyalty member id: trimmed, upper case, 3-64 of ``[A-Z0-9_-]``.

    Args:
        col: the raw member id.

    Returns:
        The upper-case id, or NULL when malformed, a placeholder (``test``...) or all zeros.
    """
    value = F.upper(_clean(col))
    valid = F.when(value.rlike("^[A-Z0-9_-]{3,64}$"), value)
    return _unless(valid, value.isin(*_MEMBER_JUNK) | value.rlike("^0+$"))


def build_cookie(col: Column) -> Column:
    """Normalise a first-party web cookie id: trimmed, 8-128 of ``[A-Za-z0-9._-]``, case preserved.

    Args:
        col: the raw cookie id.

    Returns:
        The cookie id, or NULL when malformed or one character repeated.
    """
    value = _clean(col)
    valid = F.when(value.rlike("^[A-Za-z0-9._-]{8,128}$"), value)
    return _unless(valid, value.rlike(_SAME_ALNUM))


# --- values that arrive hashed -----------------------------------------------------------------------------


def build_hash_kind(col: Column) -> Column:
    """Tell whether a value is already an md5 or sha256 hex digest.

    Args:
        col: a raw identifier value.

    Returns:
        ``md5`` for 32 hex digits, ``sha256`` for 64 (either case, surrounding spaces ignored), else NULL.
    """
    value = F.lower(_clean(col))
    return (
        F.when(value.rlike("^[0-9a-f]{32}$"), F.lit("md5"))
        .when(value.rlike("^[0-9a-f]{64}$"), F.lit("sha256"))
        .otherwise(F.lit(None).cast("string"))
    )


def _hashed(col: Column) -> Column:
    """The lower-case digest of an already hashed value; NULL for digests of placeholders or one
    character repeated."""
    value = F.lower(_clean(col))
    return _unless(value, value.isin(*_JUNK_HASHES) | value.rlike(_SAME_HEX))


def _or_hashed(
    build: Callable[[Column], Column], is_hash: Callable[[Column], Column]
) -> Callable[[Column], Column]:
    def normalize(col: Column) -> Column:
        return F.when(is_hash(col), _hashed(col)).otherwise(build(col))

    normalize.__name__ = f"{build.__name__}_or_hashed"
    normalize.__doc__ = f"{build.__name__}, keeping md5/sha256 hex digests as lower-case digests."
    return normalize


def _any_hash(col: Column) -> Column:
    return build_hash_kind(col).isNotNull()


def _idfa_hash(col: Column) -> Column:
    # An IDFA without dashes is also 32 hex. iOS reports IDFAs in upper case, while md5 hex digests are
    # lower case by convention (md5() in Spark, Hive, MySQL, Python): 32 hex with a lower-case letter is
    # taken for an md5, 32 upper-case hex for an IDFA written without dashes.
    value = _clean(col)
    return (build_hash_kind(col) == "sha256") | (value.rlike("^[0-9a-f]{32}$") & value.rlike("[a-f]"))


NORMALIZERS: dict[str, Callable[[Column], Column]] = {
    "phone": _or_hashed(build_phone, _any_hash),
    "email": _or_hashed(build_email, _any_hash),
    "imei": _or_hashed(build_imei, _any_hash),
    # An OAID may itself be 32 or 64 hex: it is an opaque id, kept lower-case whether or not it was hashed,
    # which is what a digest normalises to anyway.
    "oaid": build_oaid,
    "idfa": _or_hashed(build_idfa, _idfa_hash),
    "android_id": build_android_id,
    "wechat_openid": build_wechat_openid,
    "wechat_unionid": build_wechat_unionid,
    "member_id": build_member_id,
    "cookie": build_cookie,
}
"""The normaliser for each ID type, as applied to identifier columns by the ingest job. For ``phone``,
``email``, ``imei`` and ``idfa`` an md5/sha256 hex digest (as 2P/3P partners send) is kept as a lower-case
digest instead of being rejected."""


def build_normalized(col: Column, id_type: str) -> Column:
    """Normalise an identifier by its ID type (see :data:`NORMALIZERS`).

    Args:
        col: the raw identifier.
        id_type: one of ``schemas.ID_TYPES``.

    Returns:
        The canonical value, a lower-case md5/sha256 digest when a hashed phone, email, IMEI or IDFA
        arrived, or NULL when invalid or junk.

    Raises:
        ValueError: ``id_type`` is not a known ID type.
    """
    try:
        normalize = NORMALIZERS[id_type]
    except KeyError:
        raise ValueError(f"unknown id_type {id_type!r}: use one of {', '.join(NORMALIZERS)}") from None
    return normalize(col)
