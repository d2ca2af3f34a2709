"""Numbers written the Vietnamese way and the English way."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, strategies as st

from parindex_lib.numbers import format_number, parse_number, to_number_series


@pytest.mark.parametrize("text, expected", [
    ("85,63", 85.63), ("85.63", 85.63), ("1.234,5", 1234.5), ("1,234.5", 1234.5),
    (" 9,5 ", 9.5), ("\u00a09,5", 9.5), ("0", 0.0), ("-0,25", -0.25), ("1.234.567,89", 1234567.89),
    ("100", 100.0), (".5", 0.5), ("2e1", 20.0), (7, 7.0), (2.5, 2.5),
])
def test_parse_number_accepts_both_styles(text, expected):
    assert parse_number(text) == pytest.approx(expected, abs=0)


@pytest.mark.parametrize("blank", [None, "", "   ", float("nan"), pd.NA])
def test_blank_is_nan_not_zero(blank):
    assert math.isnan(parse_number(blank))


@pytest.mark.parametrize("bad", ["abc", "1,2,3", "85,63%", "inf", "nan", "1..2", float("inf"), True, "1 2,5.3"])
def test_parse_number_refuses_what_is_not_one_number(bad):
    with pytest.raises(ValueError):
        parse_number(bad)


def test_series_marks_bad_cells_and_keeps_blanks():
    numbers, bad = to_number_series(pd.Series(["85,63", None, "x", 3, "1.234,5"], dtype=object))
    assert bad.tolist() == [False, False, True, False, False]
    assert numbers[0] == 85.63 and math.isnan(numbers[1]) and math.isnan(numbers[2])
    assert numbers[3] == 3.0 and numbers[4] == 1234.5


def test_numeric_series_with_inf_is_bad():
    numbers, bad = to_number_series(pd.Series([1.0, float("inf"), float("nan")]))
    assert bad.tolist() == [False, True, False]
    assert numbers[0] == 1.0 and math.isnan(numbers[1])


@given(st.decimals(min_value=-10**6, max_value=10**6, places=2, allow_nan=False, allow_infinity=False))
def test_format_then_parse_round_trips(value):
    x = float(value)
    for lang in ("vi", "en"):
        assert parse_number(format_number(x, lang)) == pytest.approx(x, abs=1e-9)


def test_format_vietnamese():
    assert format_number(85.63) == "85,63"
    assert format_number(1234.5, decimals=1) == "1.234,5"
    assert format_number(1234.5, "en", decimals=1) == "1,234.5"
