"""Money is fen (int64) inside OpenDIP; yuan with two decimals only at the edges.

Rounding rule (documented in docs/data-contract.md): half away from zero
(ROUND_HALF_UP on the magnitude), applied once, where a yuan amount or a
score × point-value product becomes fen.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FEN_PER_YUAN = 100


class MoneyError(ValueError):
    """A text that is not an amount of money."""


def yuan_to_fen(value: str | int | float | Decimal) -> int:
    """Parse a yuan amount exactly into fen, rounding half up at the third decimal."""
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value).strip().replace(",", "").replace("，", ""))
    except InvalidOperation as exc:
        raise MoneyError(f"不是有效金额: {value!r}") from exc
    if not amount.is_finite():
        raise MoneyError(f"不是有效金额: {value!r}")
    return int((amount * FEN_PER_YUAN).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def fen_to_yuan(fen: int) -> Decimal:
    """Exact yuan value of an amount in fen, two decimals."""
    return (Decimal(int(fen)) / FEN_PER_YUAN).quantize(Decimal("0.01"))


def format_yuan(fen: int) -> str:
    """Human form with thousands separators: 1234567 → '12,345.67'."""
    return f"{fen_to_yuan(fen):,.2f}"


def round_fen(value: Decimal) -> int:
    """Round an exact fen amount (a Decimal) to whole fen, half up."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
