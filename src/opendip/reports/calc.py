"""Exact arithmetic shared by the report builders: rates, per-case means, CMI.

Money is integer fen; a rate or a mean of a non-money quantity is a Decimal rounded half up
(4 places for rates and CMI, 2 for days). A denominator of zero gives None ("—"), never 0.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

Q4 = Decimal("0.0001")
Q2 = Decimal("0.01")


def rate(num: int | Decimal, den: int | Decimal, places: Decimal = Q4) -> Decimal | None:
    """num ÷ den rounded half up (4 places by default); None when den is 0."""
    if not den:
        return None
    return (Decimal(num) / Decimal(den)).quantize(places, rounding=ROUND_HALF_UP)


def per_case(fen: int, n: int) -> int | None:
    """A per-case mean in whole fen, half up (works for negative amounts too)."""
    if not n:
        return None
    return int((Decimal(fen) / n).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def change(value: int | Decimal | None, previous: int | Decimal | None) -> Decimal | None:
    """Relative change value ÷ previous − 1 (4 places); None without a comparable base."""
    if value is None or not previous:
        return None
    return rate(Decimal(value) - Decimal(previous), previous)


def cmi(score_sum: Decimal | int, n: int, base_score: Decimal) -> Decimal | None:
    """Case-mix index: Σ case score ÷ cases ÷ the directory's base score (4 places)."""
    if not n or not base_score:
        return None
    return (Decimal(score_sum) / n / base_score).quantize(Q4, rounding=ROUND_HALF_UP)
