"""Synthetic patients: stable ids across stays and years, a stable insurance pool, and no
accidental readmissions (only the injected split admissions are close stays)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from opendip.synth.frame import Frame

_SCRAMBLE = np.uint64(0x9E3779B97F4B)
_MIX = np.uint64(0xBF58476D1CE4E5B9)
#: Share of adults insured as employees (职工); children are always residents (居民).
EMPLOYEE_SHARE_ADULTS = 0.215
#: Keys of re-identified patients start above every natural key (< 2**24):
#: 2**24 + year slot * 2**23 + row, unique across rows and years (rows < 2**23 a year).
FRESH_KEY_BASE = 1 << 24
FRESH_ROWS_PER_YEAR = 1 << 23

#: A region's year is generated in blocks (`opendip.synth.region`). Block 0 uses the keys
#: above (a one-block region is what it always was); block b ≥ 1 has its own population:
#: its keys are BLOCK_KEY_BASE + (b - 1) * BLOCK_KEY_SPAN + a local key, the local key being
#: a natural key (< 2**24) or FRESH_KEY_BASE + (year % BLOCK_FRESH_YEARS) * BLOCK_FRESH_ROWS
#: + row (rows < BLOCK_FRESH_ROWS a block). Same block index → same population every year,
#: so patients still return across years; blocks never share a patient. Keys stay below
#: 2**47 (the close-stay sort key shifts them by 17 bits; the id scramble is mod 2**48).
BLOCK_KEY_BASE = 1 << 44
BLOCK_KEY_SPAN = 1 << 28
BLOCK_FRESH_YEARS = 1 << 7
BLOCK_FRESH_ROWS = 1 << 20
MAX_BLOCKS = ((1 << 47) - BLOCK_KEY_BASE) // BLOCK_KEY_SPAN


def block_key_offset(block: int) -> int:
    """What block `block` adds to its local patient keys (0 for block 0)."""
    if not 0 <= block < MAX_BLOCKS:
        raise ValueError(f"block {block} outside 0..{MAX_BLOCKS - 1}")
    return 0 if block == 0 else BLOCK_KEY_BASE + (block - 1) * BLOCK_KEY_SPAN


def fresh_key_base(year: int, block: int = 0) -> tuple[int, int]:
    """(first fresh local key of the year's block, how many rows it may re-identify)."""
    if block == 0:
        return FRESH_KEY_BASE + (year % (1 << 20)) * FRESH_ROWS_PER_YEAR, FRESH_ROWS_PER_YEAR
    return FRESH_KEY_BASE + (year % BLOCK_FRESH_YEARS) * BLOCK_FRESH_ROWS, BLOCK_FRESH_ROWS


def patient_keys(
    sex: np.ndarray, birth: np.ndarray, county: np.ndarray, k: np.ndarray
) -> np.ndarray:
    """Same (sex, birth date, county, k) → same person: a natural key below 2**24."""
    days = birth.astype("datetime64[D]").astype(np.int64) + 40_000
    return (((days * 2 + (sex == "2")) * 16 + county) * 4 + k).astype(np.uint64)


def patient_ids(keys: np.ndarray) -> pa.Array:
    """'P' + 15 digits; a bijective scramble (odd multiplier mod 2**48) hides the key."""
    scrambled = (keys.astype(np.uint64) * _SCRAMBLE) % np.uint64(1 << 48)
    digits = pc.utf8_lpad(pc.cast(pa.array(scrambled), pa.string()), 15, "0")
    return pc.binary_join_element_wise("P", digits, "")


def is_employee(keys: np.ndarray, age: np.ndarray) -> np.ndarray:
    """A person's pool is stable across stays: derived from the key, adults only."""
    mixed = (keys.astype(np.uint64) * _MIX) >> np.uint64(40)
    return ((mixed % np.uint64(10_000)) < int(EMPLOYEE_SHARE_ADULTS * 10_000)) & (age >= 18)


#: Columns of the stays `separate_close_stays` looks at.
STAY_COLUMNS = ("patient_key", "admit_date", "discharge_date", "combo")


def separate_close_stays(
    frame: Frame,
    year: int,
    protected_pairs: np.ndarray,
    window_days: int,
    previous: Frame | None = None,
    max_rounds: int = 8,
    block: int = 0,
) -> int:
    """Give a fresh identity to stays that accidentally fall within `window_days` of (or
    overlap) another stay of the same patient, so that every close readmission in the data
    is an injected, labelled one.

    `protected_pairs` is an (m, 2) array of row pairs meant to be close (split admissions);
    planned chemotherapy series (combo < 0) keep their rhythm. `previous` holds the
    STAY_COLUMNS of earlier years' stays (never changed), so that a January stay is not an
    accidental readmission after a December one. `block` picks the fresh keys' range (local
    keys of that block, see `fresh_key_base`). Returns the number of stays re-identified.
    """
    n = len(frame["patient_key"])
    fresh_base, limit = fresh_key_base(year, block)
    if n >= limit:
        raise ValueError(f"at most {limit - 1} cases a block, got {n}")
    before = previous or {c: frame[c][:0] for c in STAY_COLUMNS}
    m = len(before["patient_key"])
    stays = {c: np.concatenate([before[c], frame[c]]) for c in STAY_COLUMNS}
    partner = np.full(m + n, -1, np.int64)
    if len(protected_pairs):
        partner[m + protected_pairs[:, 0]] = m + protected_pairs[:, 1]
        partner[m + protected_pairs[:, 1]] = m + protected_pairs[:, 0]
    chemo = stays["combo"] < 0
    keep = chemo | (partner >= 0)  # rows whose id must not change
    keep[:m] = True
    window = np.timedelta64(window_days, "D")
    moved = 0
    for _ in range(max_rounds):
        pid = stays["patient_key"]
        # one uint64 sort key: patient key (< 2**40) then admission day (< 2**17 after 1970)
        day = np.clip(
            stays["admit_date"].astype("datetime64[D]").astype(np.int64), 0, (1 << 17) - 1
        )
        order = np.argsort((pid << np.uint64(17)) | day.astype(np.uint64))
        prev, nxt = order[:-1], order[1:]
        close = (pid[prev] == pid[nxt]) & (
            stays["admit_date"][nxt] - stays["discharge_date"][prev] <= window
        )
        close &= (partner[prev] != nxt) & ~(chemo[prev] & chemo[nxt])
        close &= ~(keep[prev] & keep[nxt])
        victim = np.unique(np.where(keep[nxt], prev, nxt)[close])
        if not len(victim):
            break
        stays["patient_key"][victim] = np.uint64(fresh_base) + (victim - m).astype(np.uint64)
        moved += len(victim)
    frame["patient_key"] = stays["patient_key"][m:]
    return moved
