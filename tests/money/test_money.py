"""opendip.money: yuan ↔ fen at the edges, half-up ties (away from zero), negatives, errors.

Every expected value is worked out by hand; the ties are chosen so that banker's rounding
(half-even) or truncation would give a different answer.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from opendip.money import FEN_PER_YUAN, MoneyError, fen_to_yuan, format_yuan, round_fen, yuan_to_fen


def test_fen_per_yuan():
    assert FEN_PER_YUAN == 100


@pytest.mark.parametrize(
    "text,fen",
    [
        ("0", 0),
        ("0.01", 1),
        ("1", 100),
        ("12.34", 1234),
        ("1234567.89", 123456789),
        ("  56.70 ", 5670),
        ("1,234.56", 123456),  # thousands separator
        ("1，234.56", 123456),  # full-width comma
        ("-12.34", -1234),
        ("-0.01", -1),
        ("1e2", 10000),
    ],
)
def test_yuan_to_fen_exact(text, fen):
    assert yuan_to_fen(text) == fen


@pytest.mark.parametrize(
    "text,fen",
    [
        # ties at the third decimal: half up (away from zero); half-even would give the
        # even neighbour, truncation the lower one
        ("0.005", 1),  # half-even: 0
        ("0.015", 2),  # half-even: 2, truncation: 1
        ("0.025", 3),  # half-even: 2
        ("1.125", 113),  # half-even: 112
        ("2.675", 268),  # as a binary float 2.675 is below the tie; exact text is not
        ("-0.005", -1),  # away from zero; half-even: 0
        ("-0.025", -3),  # half-even: -2
        ("-1.125", -113),
        # just off the tie
        ("0.0049", 0),
        ("0.0051", 1),
        ("-0.0049", 0),
        ("-0.0051", -1),
        ("0.0049999999", 0),
    ],
)
def test_yuan_to_fen_rounds_half_up_at_the_third_decimal(text, fen):
    assert yuan_to_fen(text) == fen


def test_yuan_to_fen_accepts_int_decimal_and_float_without_binary_error():
    assert yuan_to_fen(7) == 700
    assert yuan_to_fen(-7) == -700
    assert yuan_to_fen(Decimal("0.125")) == 13
    assert yuan_to_fen(Decimal("-0.125")) == -13
    # floats go through repr: 0.1 + 0.2 is 0.30000000000000004 → 30 fen, and 2.675 (stored as
    # 2.67499999999999982236431605997495353221893310546875) is read as its shortest repr 2.675
    assert yuan_to_fen(0.1 + 0.2) == 30
    assert yuan_to_fen(2.675) == 268
    assert yuan_to_fen(1.005) == 101


@pytest.mark.parametrize("bad", ["", "abc", "12.3.4", "元", "nan", "NaN", "inf", "-Infinity", None])
def test_yuan_to_fen_refuses_non_amounts_in_chinese(bad):
    with pytest.raises(MoneyError, match="不是有效金额"):
        yuan_to_fen(bad)


def test_money_error_is_a_value_error():
    assert issubclass(MoneyError, ValueError)


@pytest.mark.parametrize(
    "fen,yuan",
    [
        (0, "0.00"),
        (1, "0.01"),
        (10, "0.10"),
        (100, "1.00"),
        (123456789, "1234567.89"),
        (-1, "-0.01"),
        (-1234, "-12.34"),
    ],
)
def test_fen_to_yuan_exact_two_decimals(fen, yuan):
    out = fen_to_yuan(fen)
    assert out == Decimal(yuan)
    assert str(out) == yuan  # exactly two decimals, never 1E+2 or 0.1


def test_fen_to_yuan_accepts_numpy_like_ints():
    class Int64Like(int):
        pass

    assert fen_to_yuan(Int64Like(250)) == Decimal("2.50")
    assert fen_to_yuan(True) == Decimal("0.01")


@pytest.mark.parametrize("fen", [0, 1, 99, 100, 101, 123456789, -1, -99, -100, -987654321])
def test_yuan_fen_round_trip(fen):
    assert yuan_to_fen(fen_to_yuan(fen)) == fen
    assert yuan_to_fen(str(fen_to_yuan(fen))) == fen
    assert yuan_to_fen(format_yuan(fen)) == fen


@pytest.mark.parametrize(
    "fen,text",
    [
        (0, "0.00"),
        (5, "0.05"),
        (99999, "999.99"),
        (100000, "1,000.00"),
        (1234567, "12,345.67"),
        (123456789012, "1,234,567,890.12"),
        (-1234567, "-12,345.67"),
    ],
)
def test_format_yuan(fen, text):
    assert format_yuan(fen) == text


@pytest.mark.parametrize(
    "value,fen",
    [
        ("0.5", 1),  # half-even: 0
        ("1.5", 2),
        ("2.5", 3),  # half-even: 2
        ("125000.5", 125001),  # half-even: 125000
        ("0.4999999", 0),
        ("0.5000001", 1),
        ("-0.5", -1),  # away from zero; half-even: 0
        ("-2.5", -3),  # half-even: -2
        ("-0.4999999", 0),
        ("7", 7),
        ("-7", -7),
    ],
)
def test_round_fen_half_up_away_from_zero(value, fen):
    out = round_fen(Decimal(value))
    assert out == fen
    assert type(out) is int
