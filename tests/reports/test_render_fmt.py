"""Formatting of report values: hand-computed, exact (Decimal), half up at .5 boundaries."""

from __future__ import annotations

from decimal import Decimal

import pytest

from opendip.reports.render.fmt import DASH, MINUS, fmt_change, fmt_value, fmt_wan


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (305_500_000, "3,055,000.00"),  # 3,055,000 元
        (123_456_789, "1,234,567.89"),
        (0, "0.00"),
        (5, "0.05"),
        (-8_400_000, f"{MINUS}84,000.00"),
        (-5, f"{MINUS}0.05"),
        (Decimal("12345.5"), "123.46"),  # 123.455 元 → half up
        (Decimal("-12345.5"), f"{MINUS}123.46"),  # half away from zero
        (Decimal("12344.5"), "123.45"),  # 123.445 → 123.45 (banker's would keep .44)
        ("1234", "12.34"),  # numeric text
    ],
)
def test_money_in_yuan(value, expected) -> None:
    assert fmt_value(value, "fen") == expected


@pytest.mark.parametrize(
    ("fen", "expected"),
    [
        (305_500_000, "305.50"),
        (1_234_500, "1.23"),  # 1.2345 万元
        (1_235_000, "1.24"),  # 1.235 万元: half up
        (-1_235_000, f"{MINUS}1.24"),
        (12_345_678_900_000, "12,345,678.90"),
        (None, DASH),
    ],
)
def test_money_in_wan(fen, expected) -> None:
    assert fmt_wan(fen) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0.933549"), "93.35%"),
        (Decimal("0.93355"), "93.36%"),  # 93.355 → half up
        (Decimal("0.12345"), "12.35%"),  # banker's rounding would give 12.34
        (Decimal("-0.2819"), f"{MINUS}28.19%"),
        (Decimal("1"), "100.00%"),
        (Decimal("0"), "0.00%"),
        (Decimal("-0.000049"), "0.00%"),  # no "−0.00%"
        (0.1, "10.00%"),  # a float goes through its repr, exactly
    ],
)
def test_ratio_as_percent(value, expected) -> None:
    assert fmt_value(value, "ratio") == expected


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (12345, "count", "12,345"),
        (0, "count", "0"),
        (1_234_567, "days", "1,234,567"),
        (Decimal("8.50"), "days", "8.50"),  # a mean keeps its decimals
        (Decimal("1.0857"), "coefficient", "1.0857"),
        (Decimal("760.0000"), "score", "760.0000"),  # as the builder quantized it
        (760, "score", "760"),
        (Decimal("12345.6"), "score", "12,345.6"),
        (Decimal("1E+2"), "score", "100"),  # never exponent notation
        (Decimal("0.98765432"), "point_value", "0.987654"),  # at most 6 places, half up
        (Decimal("0.9876545"), "point_value", "0.987655"),
        ("拉萨", "text", "拉萨"),
        ("不适用", "count", "不适用"),  # text in a numeric column is shown as it is
    ],
)
def test_other_units(value, unit, expected) -> None:
    assert fmt_value(value, unit) == expected


@pytest.mark.parametrize(
    "unit", ["fen", "ratio", "count", "days", "score", "point_value", "coefficient", "text"]
)
def test_missing_value_is_a_dash(unit) -> None:
    assert fmt_value(None, unit) == "—"


@pytest.mark.parametrize(
    ("value", "previous", "unit", "expected"),
    [
        (Decimal("0.9335"), Decimal("0.9215"), "ratio", "+1.20个百分点"),
        (Decimal("0.9215"), Decimal("0.9335"), "ratio", f"{MINUS}1.20个百分点"),
        (Decimal("0.9335"), Decimal("0.9335"), "ratio", "0.00个百分点"),
        (Decimal("0.05"), Decimal("0"), "ratio", "+5.00个百分点"),  # points need no base
        (Decimal("0.93355"), Decimal("0.9"), "ratio", "+3.36个百分点"),  # 3.355 half up
        (873, 1000, "fen", f"{MINUS}12.70%"),
        (1031, 1000, "count", "+3.10%"),
        (305_500_000, 270_000_000, "fen", "+13.15%"),  # 13.148148…%
        (12345, 11000, "count", "+12.23%"),  # 12.2272…%
        (20001, 20000, "count", "+0.01%"),  # exactly 0.005% → half up
        (-50, -100, "fen", "+50.00%"),  # a loss halved is an improvement
        (250_000_000, 100_000_000, "fen", "+150.00%"),
        (5, 0, "count", DASH),  # no relative change from zero
        (5, None, "count", DASH),
        (None, 5, "count", DASH),
        ("甲", "乙", "text", DASH),
    ],
)
def test_change(value, previous, unit, expected) -> None:
    assert fmt_change(value, previous, unit) == expected


def test_large_relative_change_has_separators() -> None:
    assert fmt_change(1_000_000, 1, "count") == "+99,999,900.00%"
