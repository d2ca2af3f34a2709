"""The text catalogues: one per language, same keys, same fields; numbers both ways."""

from __future__ import annotations

import math
import re
import string

import pytest

from parindex_lib import i18n
from parindex_lib.i18n import catalogue, keys, number, read_number, t

FIELD = re.compile(r"{(\w+)}")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_the_same_keys():
    assert keys("vi") == keys("en")
    assert len(keys("vi")) > 100


def test_every_text_takes_the_same_fields_in_both_languages():
    vi, en = catalogue("vi"), catalogue("en")
    differ = {k: (_fields(vi[k]), _fields(en[k])) for k in vi if _fields(vi[k]) != _fields(en[k])}
    assert differ == {}


def test_no_text_is_empty():
    for lang in ("vi", "en"):
        assert [k for k, v in catalogue(lang).items() if not v.strip()] == []


def test_vietnamese_is_the_default_and_english_the_switch():
    assert t("common.saved_at", time="10:42") == "Đã lưu lúc 10:42"
    assert t("common.saved_at", "en", time="10:42") == "Saved at 10:42"
    assert t("results.rank_up", n=3) == "tăng 3 bậc"
    assert t("results.rank_down", n=2) == "giảm 2 bậc"
    assert t("results.rank_up", "en-GB", n=3) == "up 3 places"


def test_floats_in_texts_use_the_language_decimal_mark():
    assert t("self.total", points=85.63, max=100.0) == "Tổng điểm tự chấm: 85,63 / 100"
    assert t("self.total", "en", points=85.63, max=100.0) == "Total self score: 85.63 / 100"


def test_missing_key_shows_itself_and_does_not_break(caplog):
    assert t("no.such.key") == "no.such.key"
    assert "no.such.key" in caplog.text


@pytest.mark.parametrize("value,vi,en", [
    (85.63, "85,63", "85.63"), (9.5, "9,5", "9.5"), (10.0, "10", "10"), (1234.5, "1.234,5", "1,234.5"),
    (0.25, "0,25", "0.25"), (-0.0, "0", "0"),
])
def test_numbers_are_shown_with_a_decimal_comma_in_vietnamese(value, vi, en):
    assert number(value, "vi") == vi
    assert number(value, "en") == en


def test_missing_numbers_show_as_a_dash():
    assert number(None) == number(math.nan) == "–"


@pytest.mark.parametrize("text,value", [("85,63", 85.63), ("85.63", 85.63), (" 9,5 ", 9.5), ("1.234,5", 1234.5)])
def test_numbers_are_accepted_either_way(text, value):
    assert read_number(text) == value


def test_text_that_is_not_a_number_is_refused():
    with pytest.raises(ValueError):
        read_number("mười")


def test_the_library_never_imports_ipywidgets():
    src = (i18n.LOCALE_DIR.parent / "i18n.py").read_text(encoding="utf-8")
    assert "ipywidgets" not in src.replace("never imports ipywidgets", "")
