"""Writes the golden pack files from the platforms' documented rules, in plain Python (hashlib), independently
of the Spark code under test. Run it only when a rule changes, and review the diff line by line:

    .venv/bin/python tests/audiences/golden/make_golden.py
"""

from __future__ import annotations

import hashlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Canonical identifiers of the three test people (see tests/audiences/test_export.py). Person 3's phone,
# email, IMEI and IDFA arrived already hashed (md5/sha256 digests), and their OAID is 32 hex.
PHONES = ["+8613812345678", "+14155552671"]  # person 3: a digest
EMAILS = ["zhang.wei@qq.com", "jo@example.com"]  # person 3: a digest
IMEIS = ["861234567890123", "a000002c9060f7"]  # person 3: a sha256 digest
IMEI_SHA256 = hashlib.sha256(b"860000000000001").hexdigest()
IDFAS = ["6D92078A-8246-4BA4-AE5B-76104861E7DC", "FF1999CD-7177-4937-A474-74937A102630"]
IDFA_MD5 = "5d41402abc4b2a76b9719d911017c592"  # person 3's IDFA, arrived as an md5
OAIDS = [
    "a1b2c3d4-e5f6-4711-8899-aabbccddeeff",
    "f0e1d2c3-b4a5-4697-8877-665544332211",
    "0123456789abcdef0123456789abcdef",
]
OPENID = "oX3kqAbCdEfGhIjKlMnOpQrStUv1"


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def cn_national(e164: str) -> str | None:
    return e164[3:] if e164.startswith("+86") and len(e164) == 14 else None


FILES: dict[str, dict[str, tuple[str | None, list[str]]]] = {
    # Tencent: phone = md5 of the 11 digits; IMEI md5 after lower-casing; IDFA md5 after upper-casing (the
    # documented example FF1999CD-... -> 2c010ed9...); an md5 that arrived as such is passed on.
    "tencent": {
        "hash_mobile_phone.txt": (None, [md5(n) for p in PHONES if (n := cn_national(p))]),
        "hash_imei.txt": (None, [md5(i.lower()) for i in IMEIS]),
        "hash_idfa.txt": (None, [md5(i.upper()) for i in IDFAS] + [IDFA_MD5]),
        "hash_oaid.txt": (None, [md5(o) for o in OAIDS]),
        "wechat_openid.txt": (None, [OPENID]),
    },
    "oceanengine": {
        "mobile_md5.txt": (None, [md5(n) for p in PHONES if (n := cn_national(p))]),
        "imei_md5.txt": (None, [md5(i.lower()) for i in IMEIS]),
        "idfa_md5.txt": (None, [md5(i.upper()) for i in IDFAS] + [IDFA_MD5]),
        "oaid_md5.txt": (None, [md5(o) for o in OAIDS]),
    },
    # Google Customer Match: E.164 then SHA-256; email lower-case then SHA-256; device ids unhashed.
    "google": {
        "phone.csv": ("Phone", [sha256(p) for p in PHONES]),
        "email.csv": ("Email", [sha256(e) for e in EMAILS]),
        "mobile_device_id.csv": ("Mobile Device ID", list(IDFAS)),
    },
    # Meta: digits with country code (no +) then SHA-256; email lower-case SHA-256; MADID lower-case,
    # unhashed.
    "meta": {
        "phone.csv": ("phone", [sha256(p.lstrip("+")) for p in PHONES]),
        "email.csv": ("email", [sha256(e) for e in EMAILS]),
        "madid.csv": ("madid", [i.lower() for i in IDFAS]),
    },
    "csv": {
        "phone_sha256.csv": ("sha256", [sha256(p) for p in PHONES]),
        "email_sha256.csv": ("sha256", [sha256(e) for e in EMAILS]),
        "imei_sha256.csv": ("sha256", [sha256(i) for i in IMEIS] + [IMEI_SHA256]),
        "idfa_sha256.csv": ("sha256", [sha256(i) for i in IDFAS]),
        "oaid_sha256.csv": ("sha256", [sha256(o) for o in OAIDS]),
        "wechat_openid_sha256.csv": ("sha256", [sha256(OPENID)]),
    },
}


def main() -> None:
    for destination, files in FILES.items():
        folder = HERE / destination
        folder.mkdir(exist_ok=True)
        for name, (header, lines) in files.items():
            text = "".join(f"{x}\n" for x in ([header] if header else []) + sorted(set(lines)))
            (folder / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
