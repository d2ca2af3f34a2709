"""What the self-assessment and appraisal apps share (widgets.sheet_app, widgets.sheet.blank), in both apps."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from widgets.appraisal import AppraisalApp
from widgets.base import XLSX
from widgets.self_assessment import SelfAssessmentApp
from widgets.sheet import blank
from widgets.sheet_app import SheetApp
from widgets.testing import ADMIN, TENANT, small_env, small_store


@pytest.fixture
def store(sqlite_url, small_framework):
    return small_store(sqlite_url, small_framework)


def stored(store, unit, year=2024):
    with store.session(tenant=TENANT, user=ADMIN) as s:
        return s.scores(year=year, unit_codes=[unit]).set_index("node_code")


@pytest.mark.parametrize("value", [None, pd.NA, math.nan, "", "   ", "\t\n"])
def test_blank_values(value):
    assert blank(value)


@pytest.mark.parametrize("value", [0, 0.0, "0", " x ", False])
def test_values_that_are_not_blank(value):
    assert not blank(value)


def test_both_sheet_apps_share_the_base_and_the_xlsx_type_is_the_standard_one():
    assert issubclass(SelfAssessmentApp, SheetApp) and issubclass(AppraisalApp, SheetApp)
    assert XLSX == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.mark.parametrize("cls, unit, field, typed", [
    (SelfAssessmentApp, "D01", "score", "1"),
    (AppraisalApp, "D03", "score", "2"),
])
def test_a_field_builds_once_with_criterion_headings_and_leaves_in_tree_order(store, sqlite_url, cls, unit, field,
                                                                                typed):
    app = cls(small_env(sqlite_url, unit=unit, year="2024"), store=store)
    assert app._leaf == {} and app._crit == {}
    app._fields.selected_index = 0
    rows = app._fields.children[0].children
    assert "pi-criterion" in rows[0]._dom_classes and "1.1." in rows[0].value
    assert [c for c in app._leaf] == ["1.1.1", "1.1.2", "1.2"]
    first = app._leaf["1.2"][field]
    app._fields.selected_index = None
    app._fields.selected_index = 0  # opened again: the same widgets
    assert app._leaf["1.2"][field] is first and app._fields.children[0].children == rows
    assert app._built_fields == {0}


@pytest.mark.parametrize("cls, unit", [(SelfAssessmentApp, "D01"), (AppraisalApp, "D03")])
def test_field_titles_and_criterion_headings_follow_the_typed_points(store, sqlite_url, cls, unit):
    app = cls(small_env(sqlite_url, unit=unit, year="2024"), store=store)
    app._fields.selected_index = 0
    app._leaf["1.1.2"]["score"].value = "0"
    app._leaf["1.2"]["score"].value = "0"
    title = app._fields.titles[0]
    heading = app._crit["1.1"].value
    app._leaf["1.1.2"]["score"].value = "1,5"
    assert app._fields.titles[0] != title and app._crit["1.1"].value != heading
    assert "pi-criterion-title" in heading


@pytest.mark.parametrize("cls, unit, field, code_field", [
    (SelfAssessmentApp, "D01", "score", "self_score"),
    (AppraisalApp, "D03", "score", "appraised_score"),
])
def test_the_inline_message_names_the_limit_in_both_apps(store, sqlite_url, cls, unit, field, code_field):
    app = cls(small_env(sqlite_url, unit=unit, year="2024"), store=store)
    app._fields.selected_index = 0
    app._leaf["1.1.2"][field].value = "2,5"
    assert "Điểm 2,5 nằm ngoài khoảng từ 0 đến 2." in app._leaf["1.1.2"]["error"].value
    assert 'role="alert"' in app._leaf["1.1.2"]["error"].value
    app._leaf["1.1.2"][field].value = "1"
    assert app._leaf["1.1.2"]["error"].value == ""


def test_the_appraisal_refuses_to_switch_units_or_years_with_unsaved_changes(store, sqlite_url):
    app = AppraisalApp(small_env(sqlite_url, unit="D03", year="2024"), store=store)
    app._fields.selected_index = 0
    app._leaf["1.2"]["score"].value = "2"
    app._unit.value = "D02"
    assert app._unit.value == "D03" and app.sheet.unit_code == "D03" and "1 ô chưa lưu" in app._message.value
    app._year.value = 2023
    assert app._year.value == 2024 and app.sheet.year == 2024
    assert app.sheet.value("1.2", "appraised_score") == "2"  # the work is kept


def test_an_appraisal_conflict_shows_both_values_and_takes_the_stored_one(store, sqlite_url):
    first = AppraisalApp(small_env(sqlite_url, unit="D03", year="2024"), store=store)
    second = AppraisalApp(small_env(sqlite_url, unit="D03", year="2024"), store=store)
    for a, value in ((first, "1"), (second, "2")):
        a._fields.selected_index = 0
        a._leaf["1.2"]["score"].value = value
        a._leaf["1.2"]["reason"].value = f"lý do {value}"
    first._save.click()
    second._save.click()
    message = second._message.value
    assert "pi-msg-warning" in message and "<li>" in message and "2" in message and "ana: 1" in message
    assert second._leaf["1.2"]["score"].value == "1" and not second.sheet.changed()
    assert stored(store, "D03").loc["1.2", "appraised_score"] == 1.0


@pytest.mark.parametrize("cls, unit, key", [(SelfAssessmentApp, "D01", "Đã lưu 1 ô lúc"),
                                            (AppraisalApp, "D03", "Đã lưu 1 ô thẩm định lúc")])
def test_a_save_reports_its_count_and_time_and_a_partial_save_names_both(store, sqlite_url, cls, unit, key):
    app = cls(small_env(sqlite_url, unit=unit, year="2024"), store=store)
    app._fields.selected_index = 0
    second = "explanation" if cls is SelfAssessmentApp else "reason"
    app._leaf["1.2"]["score"].value = "2"
    app._leaf["1.2"][second].value = "có lý do"
    app._save.click()
    assert key in app._message.value and "pi-msg-info" in app._message.value
    assert "Đã lưu lúc" in app._save_status.value
    app._leaf["1.2"]["score"].value = "1"
    app._leaf["1.1.2"]["score"].value = "9"
    app._save.click()
    assert "pi-msg-error" in app._message.value and key in app._message.value
    assert "Chưa lưu: 1 ô chưa hợp lệ." in app._message.value
