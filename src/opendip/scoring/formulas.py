"""The scoring and money formulas as fractions of integers (see `exact`).

Each function returns (numerator, denominator) and works unchanged on Python ints (single
case) and on Ibis DECIMAL(38, 0) columns (batch): both paths call these same functions, then
divide once with half-up rounding. Notation: scores in units of 10**-4 (B4, A4, K4 are base
score, auxiliary and hospital coefficients × 10**4), costs in fen, the cost ratio
cost/mean = rN / rD, policy multiples as exact fractions (Hp/Hq high, hp/hq excess share).
"""

from __future__ import annotations

from typing import Any

#: 10**8: B4 × A4 is the adjusted base score × 10**8.
BA_SCALE = 10**8
COEF_SCALE = 10**4


def normal(ba: Any) -> tuple[Any, Any]:
    """Base score × auxiliary coefficient."""
    return ba, BA_SCALE


def low_proportional(ba: Any, r_num: Any, r_den: Any) -> tuple[Any, Any]:
    """base × aux × cost/mean."""
    return ba * r_num, r_den * BA_SCALE


def high_add_excess(
    ba: Any, r_num: Any, r_den: Any, hp: Any, hq: Any, sp: int, sq: int
) -> tuple[Any, Any]:
    """base × aux × (1 + (cost/mean − high) × share)."""
    return (
        ba * (r_den * hq * sq + (r_num * hq - hp * r_den) * sp),
        r_den * hq * sq * BA_SCALE,
    )


def high_folded(
    ba: Any, r_num: Any, r_den: Any, hp: Any, hq: Any, sp: int, sq: int, k4: Any
) -> tuple[Any, Any]:
    """base × aux × (hospital coefficient + (cost/mean − high) × share)."""
    return (
        ba * (k4 * r_den * hq * sq + (r_num * hq - hp * r_den) * sp * COEF_SCALE),
        r_den * hq * sq * BA_SCALE * COEF_SCALE,
    )


def bed_day(per_day4: Any, los: Any, a4: Any) -> tuple[Any, Any]:
    """score per day × bed days × aux."""
    return per_day4 * los * a4, BA_SCALE


def fallback(cost: Any, fp: int, fq: int, bp: int, bq: int, all_mean_fen: int) -> tuple[Any, Any]:
    """fraction × cost / all-case mean × base score (基准分值)."""
    return cost * fp * bp, fq * all_mean_fen * bq


def settled(case_units: Any, k4: Any) -> tuple[Any, Any]:
    """case score × hospital coefficient."""
    return case_units * k4, COEF_SCALE


def amount_fen(settled_units: Any, pv_units: Any, score_decimals: int, pv_decimals: int):
    """settled score × point value (yuan per point) in fen."""
    return settled_units * pv_units * 100, 10 ** (score_decimals + pv_decimals)


def above(lhs: Any, rhs: Any, inclusive: bool) -> Any:
    """lhs > rhs, or lhs ≥ rhs for an inclusive threshold (ints or Ibis values)."""
    return lhs >= rhs if inclusive else lhs > rhs


def below(lhs: Any, rhs: Any, inclusive: bool) -> Any:
    """lhs < rhs, or lhs ≤ rhs for an inclusive threshold (ints or Ibis values)."""
    return lhs <= rhs if inclusive else lhs < rhs


def rounded_ratio(r_num: Any, r_den: Any, decimals: int, div: Any) -> tuple[Any, Any]:
    """The cost ratio rounded half up to `decimals` (`div` = the half-up divider of the path)."""
    return div(r_num * 10**decimals, r_den), 10**decimals
