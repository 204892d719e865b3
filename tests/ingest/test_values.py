"""Value normalisation: money, dates, months, numbers, codes, lists, coded values."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendip.codes import normalise_code
from opendip.ingest.export import fen_to_yuan_text
from opendip.ingest.values import (
    DIAGNOSIS_SHAPE,
    PROCEDURE_SHAPE,
    allowed_text,
    clean_text,
    map_values,
    normalise_codes,
    parse_code,
    parse_code_list,
    parse_date,
    parse_decimal,
    parse_int,
    parse_money,
    parse_month,
)


def _s(values: list[str | None]) -> pa.Array:
    return pa.array(values, pa.string())


def _money(values: list[str | None]) -> list[int | None]:
    return parse_money(_s(values))[0].to_pylist()


# --- money -------------------------------------------------------------------------------


def test_money_forms_to_fen() -> None:
    assert _money(["1234.5", "1,234.56", "12", "0.07", ".5", "¥1234.56", "￥8", "1234.56元"]) == [
        123450, 123456, 1200, 7, 50, 123456, 800, 123456,
    ]  # fmt: skip


def test_money_beyond_two_decimals_rounds_half_up_on_the_third() -> None:
    assert _money(["0.125", "0.1249", "0.1251", "0.135", "1,234.565", "0.004", "0.005"]) == [
        13, 12, 13, 14, 123457, 0, 1,
    ]  # fmt: skip


def test_money_refuses_what_is_not_an_amount() -> None:
    values, bad = parse_money(_s(["abc", "1,2", "12,34.5", "1e3", "1.2.3", "-", "", None]))
    assert values.to_pylist() == [None] * 8
    assert bad.to_pylist() == [True, True, True, True, True, True, True, False]


def test_money_negative_is_parsed_so_that_validation_can_refuse_it() -> None:
    assert _money(["-50.00", "-0.125"]) == [-5000, -13]


@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=10**13))
def test_money_round_trip_through_yuan_text(fen: int) -> None:
    text = fen_to_yuan_text(pa.array([fen], pa.int64())).to_pylist()[0]
    grouped = f"{fen // 100:,}.{fen % 100:02d}"
    assert _money([text, grouped]) == [fen, fen]


@settings(max_examples=300)
@given(st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False))
def test_money_matches_decimal_half_up(amount: Decimal) -> None:
    expected = int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    text = f"{amount:f}"
    # alone (Arrow's cast when it applies) and next to a bad value (the general path)
    assert _money([text]) == [expected]
    assert _money([text, "bad"]) == [expected, None]


# --- dates and months --------------------------------------------------------------------


def test_date_forms() -> None:
    texts = [
        "2026-01-05", "2026/1/5", "2026.1.5", "20260105", "2026年1月5日", "2026年1月5",
        "2026-01-05 10:30:00", "2026-01-05T08:00", "2026/1/5 8:00", "20260105103000",
    ]  # fmt: skip
    dates, bad = parse_date(_s(texts))
    assert dates.to_pylist() == [dt.date(2026, 1, 5)] * len(texts)
    assert not any(bad.to_pylist())


def test_impossible_and_malformed_dates_are_bad() -> None:
    texts = ["2026-02-30", "2026-02-29", "2026-13-01", "2026-1-5x", "26-01-05", "2026115", "x"]
    dates, bad = parse_date(_s([*texts, None]))
    assert dates.to_pylist() == [None] * (len(texts) + 1)
    assert bad.to_pylist() == [True] * len(texts) + [False]
    assert parse_date(_s(["2028-02-29"]))[0].to_pylist() == [dt.date(2028, 2, 29)]


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_every_date_form_gives_the_same_date(day: dt.date) -> None:
    forms = [
        day.isoformat(),
        f"{day.year}/{day.month}/{day.day}",
        day.strftime("%Y%m%d"),
        f"{day.year}年{day.month}月{day.day}日",
        f"{day.isoformat()} 23:59:59",
    ]
    assert parse_date(_s(forms))[0].to_pylist() == [day] * len(forms)
    assert parse_date(_s([day.isoformat(), "bad"]))[0].to_pylist() == [day, None]


def test_month_forms() -> None:
    texts = ["2026-05", "202605", "2026/5", "2026.05", "2026年5月", "2026-05-31", "20260501"]
    months, bad = parse_month(_s([*texts, "2026-13", "202613", "May", None]))
    assert months.to_pylist() == ["2026-05"] * len(texts) + [None] * 4
    assert bad.to_pylist() == [False] * len(texts) + [True, True, True, False]


# --- numbers -----------------------------------------------------------------------------


def test_whole_numbers() -> None:
    values, bad = parse_int(
        _s(["45", "45.0", "0045", "-3", "45.5", "x", "40000", None]), pa.int16()
    )
    assert values.type == pa.int16()
    assert values.to_pylist() == [45, 45, 45, -3, None, None, None, None]
    assert bad.to_pylist() == [False, False, False, False, True, True, True, False]


def test_decimals_respect_the_column_scale() -> None:
    type_ = pa.decimal128(8, 4)
    values, bad = parse_decimal(_s(["0.05", "1234", "-0.1", "0.00005", "12345", "x"]), type_)
    assert (
        values.to_pylist()
        == [Decimal("0.0500"), Decimal("1234.0000"), Decimal("-0.1000")] + [None] * 3
    )
    assert bad.to_pylist() == [False, False, False, True, True, True]


# --- codes -------------------------------------------------------------------------------


def test_code_normalisation() -> None:
    got = normalise_codes(
        _s(["ｋ３５．８００Ｘ００１", " i10.X00 ", "47.0100X001", "k35。8", "", None])
    )
    assert got.to_pylist() == ["K35.800x001", "I10.x00", "47.0100x001", "K35.8", None, None]


_CODE_CHARS = "ABCIKMXaxik0123456789. \u3000。ＫＸｘ１２．"


@given(st.text(alphabet=_CODE_CHARS, max_size=14))
def test_code_normalisation_agrees_with_opendip_codes(text: str) -> None:
    assert normalise_codes(_s([text])).to_pylist() == [normalise_code(text)]


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("K35", True), ("K35.8", True), ("K35.800", True), ("K35.800x001", True),
        ("I10.x00", True), ("I10.x00x002", True), ("G63.2*", True), ("M8140/3", True),
        ("K3", False), ("35.8", False), ("K35.", False), ("K35.800x01", False),
        ("KK35", False), ("BAD-CODE", False), ("K35.80000", False),
    ],
)  # fmt: skip
def test_diagnosis_shape(code: str, ok: bool) -> None:
    values, bad = parse_code(_s([code]), DIAGNOSIS_SHAPE)
    assert bad.to_pylist() == [not ok]
    assert values.to_pylist() == [code if ok else None]


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("47", True), ("47.0", True), ("47.01", True), ("47.0100", True), ("47.0100x001", True),
        ("00.6600x002", True), ("4", False), ("470", False), ("47.01000", False),
        ("K35.8", False), ("47.", False),
    ],
)  # fmt: skip
def test_procedure_shape(code: str, ok: bool) -> None:
    assert parse_code(_s([code]), PROCEDURE_SHAPE)[1].to_pylist() == [not ok]


def test_code_lists_split_on_every_separator() -> None:
    text = _s(["I10.x00|e11.900;K35.8；Z51.1,J18.9，N39.0、R50.9 A09.9", "｜I10.x00｜", "", None])
    values, bad = parse_code_list(text, DIAGNOSIS_SHAPE)
    assert values.to_pylist() == [
        ["I10.x00", "E11.900", "K35.8", "Z51.1", "J18.9", "N39.0", "R50.9", "A09.9"],
        ["I10.x00"],
        [],
        [],
    ]
    assert bad.to_pylist() == [False] * 4


def test_a_list_with_one_malformed_code_is_bad() -> None:
    values, bad = parse_code_list(_s(["47.0100|XYZ", "47.01"]), PROCEDURE_SHAPE)
    assert bad.to_pylist() == [True, False]
    assert values.to_pylist()[1] == ["47.01"]


# --- coded values and text ---------------------------------------------------------------


def test_coded_values_are_mapped() -> None:
    insurance = map_values("insurance_type", _s(["职工", "310", "Employee", "居民", "390", "学生"]))
    assert insurance.to_pylist() == [
        "employee", "employee", "employee", "resident", "resident", "学生",
    ]  # fmt: skip
    sex = map_values("sex", _s(["男", "1", "M", "女", "2", "f", "未知", None]))
    assert sex.to_pylist() == ["1", "1", "1", "2", "2", "2", "0", None]
    discharge = map_values("discharge_method", _s(["01", "医嘱转院", "死亡", "9"]))
    assert discharge.to_pylist() == ["1", "2", "5", "9"]
    level = map_values("level", _s(["三级甲等", "二级", "一级", "未定级"]))
    assert level.to_pylist() == ["tertiary", "secondary", "primary", "unrated"]
    assert map_values("ownership", _s(["公立", "民营"])).to_pylist() == ["public", "private"]
    assert map_values("department", _s(["普外科"])).to_pylist() == ["普外科"]


def test_allowed_values_are_shown_in_chinese() -> None:
    assert (
        allowed_text("insurance_type", ("employee", "resident"))
        == "职工（employee）、居民（resident）"
    )
    assert allowed_text("sex", ("1", "2")) == "1 男、2 女"
    assert allowed_text("other", ("a",)) == "a"


def test_clean_text_trims_and_nulls_blanks() -> None:
    got = clean_text(_s([" a ", "\u3000b\u00a0", "  ", "", None]))
    assert got.to_pylist() == ["a", "b", None, None, None]
