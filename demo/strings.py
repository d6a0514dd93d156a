"""Vectorised string building for millions of rows.

Fixed-width ASCII strings are built as ``(n, width)`` ``uint8`` matrices of character
codes and converted to Arrow string arrays without per-row Python work. Variable-width
strings use NumPy ``S`` arrays (trailing NUL bytes are dropped on conversion) or Arrow
compute kernels.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEX_LOWER = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
HEX_UPPER = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
OPENID_ALPHABET = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", dtype=np.uint8
)
SECONDS_PER_DAY = 86_400


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers.

    Args:
        values: Integer array of shape ``(n,)``; values must fit in ``width`` digits.
        width: Number of digits.

    Returns:
        ``uint8`` matrix of shape ``(n, width)`` with ASCII digit codes.
    """
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((np.asarray(values, dtype=np.int64)[:, None] // powers) % 10 + 48).astype(np.uint8)


def const(text: str, n: int) -> np.ndarray:
    """A constant ASCII string repeated as an ``(n, len(text))`` matrix."""
    row = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.broadcast_to(row, (n, len(row)))


def random_chars(rng: np.random.Generator, n: int, width: int, alphabet: np.ndarray) -> np.ndarray:
    """Random characters from ``alphabet`` as an ``(n, width)`` matrix."""
    return alphabet[rng.integers(0, len(alphabet), size=(n, width), dtype=np.uint8)]


def uuid_matrix(rng: np.random.Generator, n: int, upper: bool = False) -> np.ndarray:
    """Random version-4 UUIDs (8-4-4-4-12) as an ``(n, 36)`` matrix."""
    alphabet = HEX_UPPER if upper else HEX_LOWER
    raw = random_chars(rng, n, 32, alphabet)
    raw[:, 12] = ord("4")
    raw[:, 16] = alphabet[8 + rng.integers(0, 4, size=n, dtype=np.uint8)]
    dash = const("-", n)
    return np.hstack(
        [raw[:, :8], dash, raw[:, 8:12], dash, raw[:, 12:16], dash, raw[:, 16:20], dash, raw[:, 20:]]
    )


def to_fixed(matrix: np.ndarray) -> np.ndarray:
    """View an ``(n, w)`` character matrix as a NumPy ``S<w>`` array of length ``n``."""
    matrix = np.ascontiguousarray(matrix, dtype=np.uint8)
    return matrix.view(f"S{matrix.shape[1]}").ravel()


def to_arrow(values: np.ndarray, valid: np.ndarray | None = None) -> pa.StringArray:
    """Convert a NumPy ``S`` array or character matrix to an Arrow string array.

    Args:
        values: ``S`` array (trailing NULs are stripped) or ``(n, w)`` ``uint8`` matrix.
        valid: Optional boolean mask; ``False`` entries become null.

    Returns:
        Arrow ``string`` array.
    """
    if values.dtype == np.uint8:
        n, width = values.shape
        data = np.ascontiguousarray(values).tobytes()
        offsets = np.arange(0, n * width + 1, width, dtype=np.int32)
        arr = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
        if valid is not None:
            arr = pc.if_else(pa.array(valid), arr, pa.scalar(None, pa.string()))
        return arr
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    return pa.array(values, type=pa.binary(), mask=mask).cast(pa.string())


def arrow_to_fixed(values: pa.StringArray, width: int) -> np.ndarray:
    """Convert an ASCII Arrow string array without nulls to a NumPy ``S<width>`` array."""
    if len(values) == 0:
        return np.zeros(0, dtype=f"S{width}")
    padded = pc.utf8_rpad(values, width=width, padding="\0")
    if pc.max(pc.binary_length(padded)).as_py() != width:
        raise ValueError(f"values longer than {width} characters")
    offsets, data = padded.buffers()[1:3]
    start = np.frombuffer(offsets, dtype=np.int32, count=1, offset=padded.offset * 4)[0]
    return np.frombuffer(data, dtype=f"S{width}", count=len(padded), offset=int(start)).copy()


def take_text(
    choices: np.ndarray | list[str] | tuple[str, ...], index: np.ndarray, valid: np.ndarray | None = None
) -> pa.StringArray:
    """Look up (possibly non-ASCII) strings by index into an Arrow string array."""
    arr = pa.array(list(choices), type=pa.string()).take(pa.array(np.asarray(index, dtype=np.int64)))
    if valid is not None:
        arr = pc.if_else(pa.array(valid), arr, pa.scalar(None, pa.string()))
    return arr


def civil_from_days(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert days since 1970-01-01 to (year, month, day) arrays (proleptic Gregorian)."""
    z = np.asarray(days, dtype=np.int64) + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day


def date_matrix(days: np.ndarray) -> np.ndarray:
    """Format days since the epoch as ``YYYY-MM-DD`` in an ``(n, 10)`` matrix."""
    year, month, day = civil_from_days(days)
    dash = const("-", len(year))
    return np.hstack([digits(year, 4), dash, digits(month, 2), dash, digits(day, 2)])


def timestamp_matrix(seconds: np.ndarray) -> np.ndarray:
    """Format seconds since the epoch as ``YYYY-MM-DD HH:MM:SS`` in an ``(n, 19)`` matrix."""
    seconds = np.asarray(seconds, dtype=np.int64)
    days, sod = np.divmod(seconds, SECONDS_PER_DAY)
    colon = const(":", len(seconds))
    return np.hstack(
        [
            date_matrix(days),
            const(" ", len(seconds)),
            digits(sod // 3600, 2),
            colon,
            digits(sod // 60 % 60, 2),
            colon,
            digits(sod % 60, 2),
        ]
    )


def cents_to_text(cents: np.ndarray) -> pa.StringArray:
    """Format integer cents as a decimal string with two decimals (``1234`` -> ``12.34``)."""
    cents = np.asarray(cents, dtype=np.int64)
    whole = pc.cast(pa.array(cents // 100), pa.string())
    frac = to_arrow(digits(cents % 100, 2))
    return pc.binary_join_element_wise(whole, frac, ".")


def int_to_text(values: np.ndarray) -> pa.StringArray:
    """Format integers as decimal strings."""
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def float_to_text(values: np.ndarray, decimals: int) -> pa.StringArray:
    """Format floats rounded to ``decimals`` places (shortest round-trip representation)."""
    return pc.cast(pa.array(np.round(np.asarray(values, dtype=np.float64), decimals)), pa.string())
