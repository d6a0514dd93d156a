"""Destinations of audience packs (人群包) and the one place where identifiers leave the system: members ->
consent filter -> identifiers of the requested ID types -> each destination's normalisation and hashing.

Per destination and ID type (as the platforms document their customer-file uploads):

===========  ============  ===================================================================================
destination  ID type       line
===========  ============  ===================================================================================
tencent      phone         HASH_MOBILE_PHONE: md5 of the 11-digit Chinese mobile number
(腾讯广告)    imei          HASH_IMEI: md5 of the 14/15-digit IMEI (MEID hex in lower case)
             idfa          HASH_IDFA: md5 of the upper-case dashed IDFA
             oaid          HASH_OAID: md5 of the OAID as delivered (lower case)
             wechat_openid WECHAT_OPENID: the openid as is (uploaded with the mini-program's app id)
oceanengine  phone         手机号-MD5 (data_type 17): md5 of the 11-digit Chinese mobile number
(巨量引擎)    imei          IMEI-MD5 (11): md5 of the lower-case IMEI
             idfa          IDFA-MD5 (12): md5 of the upper-case IDFA
             oaid          OAID-MD5 (16): md5 of the OAID
google       phone         Phone: SHA-256 of the E.164 number (``+8613812345678``)
(Customer    email         Email: SHA-256 of the trimmed lower-case address
Match)       idfa          Mobile Device ID: the IDFA itself (Google wants device ids unhashed)
meta         phone         phone: SHA-256 of the digits with country code, no ``+`` (``8613812345678``)
             email         email: SHA-256 of the trimmed lower-case address
             idfa          madid: the IDFA in lower case, unhashed (as Meta asks for mobile advertiser ids)
csv          any           sha256: SHA-256 of the canonical value (phones E.164), for internal tools
===========  ============  ===================================================================================

Silver never holds a raw phone or email, nor an unkeyed digest of one (a phone's md5 beside its mask gives
the number back), so phone and email lines are hashed at export time from ``vault.identifiers``: the
encrypted normalised values of the audience's members are decrypted and hashed in the destination's form
(:func:`audiences.sources.with_platform_hashes`); masks come from silver. Device ids are hashed here from
their normalised form. A device id that arrived already hashed is passed on when it is an md5 and the
destination wants an md5. An identifier that cannot be put in the destination's form (a non-Chinese phone for
a Chinese platform, a phone that arrived hashed, a sha256 where an md5 is needed) is skipped with a reason and
counted in the manifest; it never fails the pack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from audiences.errors import DestinationError
from audiences.sources import HASH_COLUMNS

Transform = Callable[[DataFrame], DataFrame]
MB = 1024 * 1024

# Reasons an identifier is skipped (manifest keys).
ARRIVED_HASHED = "arrived_hashed"
NOT_CN_MOBILE = "not_cn_mobile"
WRONG_HASH = "hashed_with_other_algorithm"
INVALID = "invalid_format"
NO_PLATFORM_HASH = "no_platform_hash"

_CN_MOBILE_MASK = r"^1[3-9][0-9]\*{4}[0-9]{4}$"
_ANY_PHONE_MASK = r"^(1[3-9][0-9]|\+[0-9]{1,3})\*{4}[0-9]{4}$"
_MD5 = "^[0-9a-f]{32}$"
_SHA256 = "^[0-9a-f]{64}$"


@dataclass(frozen=True)
class Line:
    """How one ID type becomes lines for one destination."""

    platform_type: str
    """The platform's name for the file's ID type (``HASH_IMEI``, ``IMEI-MD5``, ``Phone``...)."""
    build: Callable[[], tuple[Column, Column]]
    """Returns (line, skip reason) over the identifier columns; the line is NULL when a reason is set."""
    header: str | None = None
    hashed: bool = field(kw_only=True)
    """Whether the lines are digests (md5/sha256) rather than the identifier itself. Only an admin may export
    or download a pack with unhashed lines (the web app reads this); every line states it."""


@dataclass(frozen=True)
class Destination:
    """An ad platform (or plain CSV) and its file rules.

    Attributes:
        name: the destination's name in commands and paths.
        label: a display name.
        lines: ID type -> how its lines are made.
        extension: ``txt`` (one id per line) or ``csv`` (a header line, then one id per line).
        max_file_bytes: the largest uncompressed file; hex digests compress, so a zip of one such file also
            stays under the platform's zip limit.
        min_size: the platform's own minimum audience size (informational; the pipeline's k-anonymity minimum
            applies on top).
    """

    name: str
    label: str
    lines: dict[str, Line]
    extension: str
    max_file_bytes: int
    note: str = ""

    @property
    def id_types(self) -> tuple[str, ...]:
        return tuple(self.lines)


# ---- identifier columns -----------------------------------------------------------------------------------
# The columns of the frame built by build_member_identifiers: id_type, id_value (normalised device id, or a
# lower-case digest when it arrived hashed; keyed hash for phones and emails), md5, sha256, sha256_e164,
# sha256_cc (platform hashes computed from the vault), masked (from silver); phones and emails only.


def _v() -> Column:
    return F.col("id_value")


def _when_ok(line: Column, reasons: list[tuple[Column, str]]) -> tuple[Column, Column]:
    reason = F.lit(None).cast("string")
    for cond, name in reversed(reasons):
        reason = F.when(F.coalesce(cond, F.lit(True)), F.lit(name)).otherwise(reason)
    return F.when(reason.isNull(), line), reason


def _phone(form: str, mask: str, not_ok: str) -> Callable[[], tuple[Column, Column]]:
    def build() -> tuple[Column, Column]:
        masked = F.col("masked")
        return _when_ok(
            F.col(form),
            [
                (masked.isNull(), NO_PLATFORM_HASH),
                (~masked.rlike(r"^(1[3-9][0-9]|\+[0-9]{1,3})\*{4}[0-9]{4}$"), ARRIVED_HASHED),
                (~masked.rlike(mask), not_ok),
                (F.col(form).isNull(), NO_PLATFORM_HASH),
            ],
        )

    return build


def _email(form: str) -> Callable[[], tuple[Column, Column]]:
    def build() -> tuple[Column, Column]:
        masked = F.col("masked")
        return _when_ok(
            F.col(form),
            [
                (masked.isNull() | F.col(form).isNull(), NO_PLATFORM_HASH),
                (~masked.contains("@"), ARRIVED_HASHED),
            ],
        )

    return build


def _device_md5(
    canonical: Callable[[Column], Column], pattern: str, digests: bool = True
) -> Callable[[], tuple[Column, Column]]:
    """md5 of the canonical form. With ``digests``, an md5 digest that arrived as such passes and a sha256
    digest cannot be used; without (OAIDs, which may themselves be 32 or 64 hex), every value is hashed."""

    def build() -> tuple[Column, Column]:
        v = _v()
        if not digests:
            return _when_ok(F.md5(canonical(v)), [(~v.rlike(pattern), INVALID)])
        line = F.when(v.rlike(_MD5), v).otherwise(F.md5(canonical(v)))
        return _when_ok(
            line, [(v.rlike(_SHA256), WRONG_HASH), (~(v.rlike(_MD5) | v.rlike(pattern)), INVALID)]
        )

    return build


def _device_raw(canonical: Callable[[Column], Column], pattern: str) -> Callable[[], tuple[Column, Column]]:
    """The id itself (platforms that want device ids unhashed); digests cannot be turned back."""

    def build() -> tuple[Column, Column]:
        v = _v()
        return _when_ok(
            canonical(v), [(v.rlike(_MD5) | v.rlike(_SHA256), ARRIVED_HASHED), (~v.rlike(pattern), INVALID)]
        )

    return build


def _plain_sha256(pattern: str | None = None) -> Callable[[], tuple[Column, Column]]:
    def build() -> tuple[Column, Column]:
        v = _v()
        reasons = [(v.rlike(_MD5), WRONG_HASH)]
        if pattern:
            reasons.append((~(v.rlike(_SHA256) | v.rlike(pattern)), INVALID))
        return _when_ok(F.when(v.rlike(_SHA256), v).otherwise(F.sha2(v, 256)), reasons)

    return build


def _oaid_sha256() -> tuple[Column, Column]:
    v = _v()
    return _when_ok(F.sha2(v, 256), [(~v.rlike(_OAID), INVALID)])


_IMEI = "^([0-9]{14,15}|[0-9a-f]{14})$"
_IDFA = "^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$"
_OAID = "^[0-9a-f-]{16,64}$"
_OPENID = "^[0-9A-Za-z_-]{6,64}$"


def _same(c: Column) -> Column:
    return c


DESTINATIONS: dict[str, Destination] = {
    d.name: d
    for d in (
        Destination(
            "tencent",
            "腾讯广告 (Tencent Ads / 广点通) customer file audience",
            {
                "phone": Line(
                    "HASH_MOBILE_PHONE", _phone("md5", _CN_MOBILE_MASK, NOT_CN_MOBILE), hashed=True
                ),
                "imei": Line("HASH_IMEI", _device_md5(F.lower, _IMEI), hashed=True),
                "idfa": Line("HASH_IDFA", _device_md5(F.upper, _IDFA), hashed=True),
                "oaid": Line("HASH_OAID", _device_md5(F.lower, _OAID, digests=False), hashed=True),
                "wechat_openid": Line("WECHAT_OPENID", _device_raw(_same, _OPENID), hashed=False),
            },
            "txt",
            100 * MB,
            "txt, one id per line, one ID type per file, zipped; a zip of at most 100 MB per upload",
        ),
        Destination(
            "oceanengine",
            "巨量引擎 (Oceanengine) DMP 人群包",
            {
                "phone": Line("MOBILE_MD5", _phone("md5", _CN_MOBILE_MASK, NOT_CN_MOBILE), hashed=True),
                "imei": Line("IMEI_MD5", _device_md5(F.lower, _IMEI), hashed=True),
                "idfa": Line("IDFA_MD5", _device_md5(F.upper, _IDFA), hashed=True),
                "oaid": Line("OAID_MD5", _device_md5(F.lower, _OAID, digests=False), hashed=True),
            },
            "txt",
            100 * MB,
            "txt, one id per line, one data type per file (IMEI-MD5 11, IDFA-MD5 12, OAID-MD5 16, "
            "手机号-MD5 17), zipped",
        ),
        Destination(
            "google",
            "Google Ads Customer Match",
            {
                "phone": Line("Phone", _phone("sha256_e164", _ANY_PHONE_MASK, INVALID), "Phone", hashed=True),
                "email": Line("Email", _email("sha256"), "Email", hashed=True),
                "idfa": Line("Mobile Device ID", _device_raw(_same, _IDFA), "Mobile Device ID", hashed=False),
            },
            "csv",
            100 * MB,
            "CSV with English headers; contact info hashed with SHA-256 (phones in E.164); "
            "device ids unhashed",
        ),
        Destination(
            "meta",
            "Meta custom audience (customer list)",
            {
                "phone": Line("PHONE", _phone("sha256_cc", _ANY_PHONE_MASK, INVALID), "phone", hashed=True),
                "email": Line("EMAIL", _email("sha256"), "email", hashed=True),
                "idfa": Line("MADID", _device_raw(F.lower, _IDFA), "madid", hashed=False),
            },
            "csv",
            100 * MB,
            "CSV; phone as digits with country code (no +) and email lower-case, SHA-256; MADID lower-case",
        ),
        Destination(
            "csv",
            "CSV of SHA-256 hashes (internal tools)",
            {
                "phone": Line(
                    "phone_sha256", _phone("sha256_e164", _ANY_PHONE_MASK, INVALID), "sha256", hashed=True
                ),
                "email": Line("email_sha256", _email("sha256"), "sha256", hashed=True),
                "imei": Line("imei_sha256", _plain_sha256(_IMEI), "sha256", hashed=True),
                "idfa": Line("idfa_sha256", _plain_sha256(_IDFA), "sha256", hashed=True),
                "oaid": Line("oaid_sha256", _oaid_sha256, "sha256", hashed=True),
                "android_id": Line(
                    "android_id_sha256", _plain_sha256("^[0-9a-f]{16}$"), "sha256", hashed=True
                ),
                "wechat_openid": Line("wechat_openid_sha256", _plain_sha256(), "sha256", hashed=True),
                "wechat_unionid": Line("wechat_unionid_sha256", _plain_sha256(), "sha256", hashed=True),
            },
            "csv",
            100 * MB,
            "CSV with a sha256 header, one hash per line",
        ),
    )
}
"""Every destination by name."""


def get_destination(name: str) -> Destination:
    """The destination called ``name``.

    Raises:
        DestinationError: no such destination.
    """
    try:
        return DESTINATIONS[name.lower()]
    except KeyError:
        raise DestinationError(
            f"unknown destination {name!r}; use one of {', '.join(DESTINATIONS)}"
        ) from None


def validate_id_types(destination: Destination, id_types: list[str] | None) -> list[str]:
    """The ID types to export: those asked for, or all the destination accepts.

    Raises:
        DestinationError: an ID type the destination does not accept.
    """
    if not id_types:
        return list(destination.id_types)
    wrong = [t for t in id_types if t not in destination.lines]
    if wrong:
        raise DestinationError(
            f"{destination.name} does not accept ID type(s) {', '.join(wrong)}; "
            f"it accepts {', '.join(destination.id_types)}"
        )
    return list(dict.fromkeys(id_types))


def build_member_identifiers(
    oneid_map: DataFrame, platform_hashes: Transform | None, id_types: list[str]
) -> Transform:
    """A transform of members (``oneid``) to their identifiers of ``id_types`` with the platform hashes.

    Args:
        oneid_map: one snapshot of ``gold.oneid_map``.
        platform_hashes: adds the platform hashes and the mask to identifiers
            (:func:`audiences.sources.with_platform_hashes` over ``vault.identifiers`` and the silver masks),
            applied to the members' identifiers only, so only their vault rows are decrypted; None when
            there is no vault (phone and email lines are then skipped as ``no_platform_hash``).
        id_types: the ID types wanted.

    Returns:
        A transform giving ``(oneid, id_type, id_value, md5, sha256, sha256_e164, sha256_cc, masked)``.
    """

    def transform(members: DataFrame) -> DataFrame:
        ids = (
            oneid_map.where(F.col("id_type").isin(*id_types))
            .select(F.col("oneid").cast("string").alias("oneid"), "id_type", "id_value")
            .join(members.select(F.col("oneid").cast("string").alias("oneid")).distinct(), "oneid")
        )
        if platform_hashes is None:
            return ids.select("*", *[F.lit(None).cast("string").alias(f) for f in HASH_COLUMNS])
        return ids.transform(platform_hashes).select("oneid", "id_type", "id_value", *HASH_COLUMNS)

    return transform


def build_pack_lines(destination: Destination, id_types: list[str]) -> Transform:
    """A transform of member identifiers (:func:`build_member_identifiers`) to pack lines.

    Returns:
        A transform giving ``(oneid, id_type, platform_type, line, reason)``: ``line`` is the value written to
        the destination's file, NULL when the identifier is skipped for ``reason``.
    """

    def transform(identifiers: DataFrame) -> DataFrame:
        # One projection with a branch per ID type, not a union of one filtered copy per type: the engine
        # would run the identifiers' joins and decryption once per copy, side by side (a 600k-member pack
        # of five types grew one process past 24 GB at 1M persons; the identifiers alone took 1.4 GB).
        id_type = F.col("id_type")
        platform_type, line, reason = F.lit(None).cast("string"), F.lit(None), F.lit(None)
        for t in reversed(id_types):
            spec = destination.lines[t]
            t_line, t_reason = spec.build()
            platform_type = F.when(id_type == t, F.lit(spec.platform_type)).otherwise(platform_type)
            line = F.when(id_type == t, t_line).otherwise(line)
            reason = F.when(id_type == t, t_reason).otherwise(reason)
        return identifiers.where(id_type.isin(*id_types)).select(
            "oneid",
            "id_type",
            platform_type.cast("string").alias("platform_type"),
            line.cast("string").alias("line"),
            reason.cast("string").alias("reason"),
        )

    return transform
