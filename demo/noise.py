"""Raw-value noise: format variants, case changes and junk identifiers.

Canonical identifier values live in :mod:`demo.population`; the functions here turn
them into what source systems actually deliver. They work on NumPy ``S`` arrays; the rows
to consider are given as boolean masks, and junk helpers also update a validity mask.
"""

from __future__ import annotations

import numpy as np

from demo.strings import const, to_fixed

Raw = tuple[np.ndarray, np.ndarray]
"""A raw column: NumPy ``S`` values and a validity mask (``False`` = null)."""


def _widen(values: np.ndarray, width: int) -> np.ndarray:
    """Copy ``values`` to an ``S`` dtype at least ``width`` bytes wide."""
    return values.astype(f"S{max(width, values.dtype.itemsize)}")


def _pick(rng: np.random.Generator, mask: np.ndarray, share: float) -> np.ndarray:
    """Indices of a random ``share`` of the rows where ``mask`` holds."""
    return np.flatnonzero(mask & (rng.random(len(mask)) < share))


def phone_variants(
    rng: np.random.Generator, phones: np.ndarray, rows: np.ndarray, share: float = 0.28
) -> np.ndarray:
    """Reformat a share of the 11-digit mobile numbers in ``rows`` as typed in other systems.

    Variants: ``138 1234 5678``, ``138-1234-5678``, ``+86 13812345678``, ``+8613812345678``,
    ``008613812345678`` and ``+86-13812345678``.
    """
    out = _widen(phones, 16)
    picked = _pick(rng, rows, share)
    d = phones[picked].view(np.uint8).reshape(-1, 11)
    k = len(picked)
    variants = [
        np.hstack([d[:, :3], const(" ", k), d[:, 3:7], const(" ", k), d[:, 7:]]),
        np.hstack([d[:, :3], const("-", k), d[:, 3:7], const("-", k), d[:, 7:]]),
        np.hstack([const("+86 ", k), d]),
        np.hstack([const("+86", k), d]),
        np.hstack([const("0086", k), d]),
        np.hstack([const("+86-", k), d]),
    ]
    choice = rng.choice(len(variants), size=k, p=[0.25, 0.18, 0.2, 0.14, 0.11, 0.12])
    for i, matrix in enumerate(variants):
        out[picked[choice == i]] = to_fixed(matrix[choice == i])
    return out


def email_variants(rng: np.random.Generator, emails: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Upper/mixed case, surrounding spaces and a few domain typos in the emails in ``rows``."""
    out = _widen(emails, emails.dtype.itemsize + 2)
    upper = _pick(rng, rows, 0.06)
    out[upper] = np.char.upper(out[upper])
    title = _pick(rng, rows, 0.04)
    out[title] = np.char.capitalize(out[title])
    spaced = _pick(rng, rows, 0.03)
    out[spaced] = np.char.add(np.char.add(b" ", out[spaced]), b" ")
    typo = _pick(rng, rows, 0.005)
    if len(typo):
        for right, wrong in ((b"qq.com", b"qq.con"), (b"163.com", b"163.cm"), (b"gmail.com", b"gmial.com")):
            out[typo] = np.char.replace(out[typo], right, wrong)
    return out


def case_variants(
    rng: np.random.Generator, values: np.ndarray, rows: np.ndarray, share: float, upper: bool
) -> np.ndarray:
    """Change the case (``upper`` or lower) of a share of the values in ``rows``."""
    out = values.copy()
    picked = _pick(rng, rows, share)
    out[picked] = np.char.upper(out[picked]) if upper else np.char.lower(out[picked])
    return out


def imei_variants(
    rng: np.random.Generator, imeis: np.ndarray, rows: np.ndarray, share: float = 0.03
) -> np.ndarray:
    """Write a share of the 15-digit IMEIs in ``rows`` in the grouped ``AA BBBBBB CCCCCC D`` form."""
    out = _widen(imeis, 18)
    picked = _pick(rng, rows & (np.char.str_len(imeis) == 15), share)
    d = imeis[picked].view(np.uint8).reshape(-1, 15)
    space = const(" ", len(picked))
    out[picked] = to_fixed(np.hstack([d[:, :2], space, d[:, 2:8], space, d[:, 8:14], space, d[:, 14:]]))
    return out


def with_junk(
    rng: np.random.Generator,
    values: np.ndarray,
    valid: np.ndarray,
    rows: np.ndarray,
    share: float,
    junk: tuple[str, ...],
) -> Raw:
    """Replace a share of the rows in boolean mask ``rows`` by junk placeholder values.

    Args:
        rng: Random generator.
        values: Raw values.
        valid: Validity mask (``False`` = null).
        rows: Candidate rows.
        share: Share of candidate rows replaced.
        junk: Placeholder values, chosen uniformly (``""`` is an empty, non-null string).

    Returns:
        The raw column with junk values.
    """
    width = max(1, *(len(j) for j in junk))
    out = _widen(values, width)
    picked = _pick(rng, rows, share)
    choices = np.array([j.encode() for j in junk], dtype=f"S{width}")
    out[picked] = choices[rng.integers(0, len(junk), len(picked))]
    new_valid = valid.copy()
    new_valid[picked] = True
    return out, new_valid


def set_junk(values: np.ndarray, valid: np.ndarray, rows: np.ndarray, junk: str) -> Raw:
    """Set the rows in boolean mask ``rows`` to one junk value."""
    out = _widen(values, len(junk))
    out[rows] = junk.encode()
    return out, valid | rows
