"""Exact integer arithmetic for money and scores, in Ibis and in Python.

DuckDB turns DECIMAL ÷ DECIMAL into DOUBLE, and Ibis refuses to mix decimal scales, so every
formula here is written as a fraction of integers (DECIMAL(38, 0) in SQL, `int` in Python)
and divided once, with `div_half_up`: an estimate in DOUBLE, corrected exactly with integer
multiplication, then rounded half away from zero. Exact for quotients below 2**50 (about
1e15: score units or fen, far above any real value). The Python twin gives the same integers.
"""

from __future__ import annotations

from decimal import Decimal

import ibis
import ibis.expr.types as ir

#: SQL type of every intermediate integer (DuckDB and Spark both have DECIMAL(38, 0)).
HUGE = "decimal(38, 0)"


def big(value: ir.Value | int) -> ir.DecimalValue:
    """An integer column or constant as DECIMAL(38, 0)."""
    if isinstance(value, ir.Value):
        return value.cast(HUGE)
    return ibis.literal(Decimal(int(value)), type=HUGE)


def _floor_div(num: ir.DecimalValue, den: ir.DecimalValue) -> ir.IntegerValue:
    """floor(num / den) for num ≥ 0, den > 0, exactly."""
    q0 = (num.cast("float64") / den.cast("float64")).floor().cast("int64")
    rem = num - q0.cast(HUGE) * den
    return q0 + ibis.cases((rem < 0, -1), (rem >= den, 1), else_=0)


def div_half_up(num: ir.Value, den: ir.Value) -> ir.IntegerValue:
    """round(num / den), halves rounded up (toward +∞), as int64; den must be > 0.

    Every quantity OpenDIP rounds is ≥ 0 (scores, amounts, shares of amounts), where this is
    the usual ROUND_HALF_UP; the Python twin uses the very same integer formula.
    """
    num = big(num)
    den = big(den)
    return _floor_div(num * 2 + den, den * 2)


def py_div_half_up(num: int, den: int) -> int:
    """Python twin of `div_half_up`: floor((2·num + den) / (2·den))."""
    if den <= 0:
        raise ZeroDivisionError("denominator must be positive")
    return (num * 2 + den) // (den * 2)


def ratio(value: Decimal | int) -> tuple[int, int]:
    """An exact Decimal as (numerator, denominator) integers."""
    num, den = Decimal(value).as_integer_ratio()
    return int(num), int(den)


def scaled(value: Decimal, decimals: int) -> int:
    """`value` × 10**decimals as an exact int; raises ValueError if that is not whole."""
    out = Decimal(value).scaleb(decimals)
    if out != out.to_integral_value():
        raise ValueError(f"{value} has more than {decimals} decimals")
    return int(out)


def units_to_decimal(units: ir.IntegerValue, decimals: int, sql_type: str) -> ir.DecimalValue:
    """Integer units of 10**-decimals as a decimal column of `sql_type` (scale ≥ decimals)."""
    scale = int(sql_type.split(",")[1].strip(" )"))
    # units as DECIMAL(18 − s, 0) times the constant 10**-s: DuckDB multiplies in 64 bits,
    # exactly (units cast to DECIMAL(38, s) first made a 128-bit product costing ≈ 0.5 µs a
    # row, the most expensive step of scoring: docs/benchmarks.md); the constant is typed
    # DECIMAL(38, s) so that the result is always cast to `sql_type`, on Spark too. Units
    # from 10**(18 − s) up (scores of 10**10 points) fail the cast.
    whole = f"decimal({18 - scale}, 0)"
    step = ibis.literal(Decimal(1).scaleb(-scale), type=f"decimal(38, {scale})")
    shifted = units if scale == decimals else units * 10 ** (scale - decimals)
    return (shifted.cast(whole) * step).cast(sql_type)


def decimal_to_units(value: ir.DecimalValue, scale: int) -> ir.IntegerValue:
    """A decimal column with `scale` decimals as integer units of 10**-scale.

    Through DECIMAL(17 − s, s) so that the product with 10**s stays a 64-bit DECIMAL(18, s)
    (a 128-bit product cost ≈ 0.13 µs a row, several times per case); values from
    10**(17 − 2s) up (10**9 at 4 decimals) fail the cast."""
    narrow = f"decimal({17 - scale}, {scale})"
    return (value.cast(narrow) * 10**scale).cast("int64")


def floor_div(num: ir.Value, den: ir.Value) -> ir.IntegerValue:
    """floor(num / den) for num ≥ 0, den > 0, exactly, as int64."""
    return _floor_div(big(num), big(den))
