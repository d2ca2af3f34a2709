"""The appraisal app without a browser."""

from __future__ import annotations

import pytest

from widgets.appraisal import AppraisalApp
from widgets.testing import ADMIN, TENANT, small_env, small_store


@pytest.fixture
def store(sqlite_url, small_framework):
    return small_store(sqlite_url, small_framework)


@pytest.fixture
def app(store, sqlite_url):
    a = AppraisalApp(small_env(sqlite_url, unit="D03", year="2024"), store=store)
    a._fields.selected_index = 0
    return a


def stored(store, unit="D03", year=2024):
    with store.session(tenant=TENANT, user=ADMIN) as s:
        return s.scores(year=year, unit_codes=[unit]).set_index("node_code")


def test_self_score_and_evidence_sit_beside_the_appraised_score(app):
    side = app._leaf["1.2"]["unit_side"].value
    assert "Tự chấm:</b> 3" in side and "https://example.invalid/kiem-chung" in side
    assert app._totals.value.count("12") == 2  # self 12, appraised 12 before any change
    assert app._leaf["1.2"]["score"].description == "Điểm thẩm định"


def test_an_adjustment_without_a_reason_is_refused_and_nothing_stored(app, store):
    app._leaf["1.2"]["score"].value = "2"
    assert "11" in app._totals.value
    app._save_appraisal = app._save
    app._save.click()
    assert "pi-msg-error" in app._message.value and "Lý do thẩm định (appraisal_reason)" in app._message.value
    assert stored(store).loc["1.2", "appraised_score"] != stored(store).loc["1.2", "appraised_score"]  # NaN


def test_an_adjustment_with_a_reason_is_stored_with_its_round(app, store):
    app._leaf["1.2"]["score"].value = "2"
    app._leaf["1.2"]["reason"].value = "Thiếu báo cáo quý IV"
    app._save.click()
    row = stored(store).loc["1.2"]
    assert row["appraised_score"] == 2.0 and row["appraisal_reason"] == "Thiếu báo cáo quý IV"
    assert int(row["appraisal_round"]) == 1
    assert "Đã lưu 1 ô thẩm định" in app._message.value


def test_accepting_the_self_score_needs_no_reason(app, store):
    app._accept.click()
    assert app._leaf["1.2"]["score"].value == "3"
    app._save.click()
    assert stored(store).loc["1.2", "appraised_score"] == 3.0


@pytest.mark.parametrize("typed", ["9", "-1", "ba"])
def test_appraised_scores_past_the_limits_are_refused(app, store, typed):
    app._leaf["1.2"]["score"].value = typed
    app._leaf["1.2"]["reason"].value = "lý do"
    app._save.click()
    assert "pi-msg-error" in app._message.value
    assert stored(store).loc["1.2", "appraised_score"] != stored(store).loc["1.2", "appraised_score"]


def test_bonus_and_penalty_stay_within_the_caps(app, store):
    app._bonus.value = "2,5"
    app._save.click()
    assert "pi-msg-error" in app._message.value and "bonus" in app._message.value
    app._bonus.value = "1,5"
    app._penalty.value = "1"
    app._bonus_reason.value = "Sáng kiến cấp tỉnh"
    app._save.click()
    rows = stored(store)
    assert rows["bonus"].sum() == 1.5 and rows["penalty"].sum() == 1.0
    assert "12,5" in app._totals.value


def test_the_second_round_shows_the_units_explanation(store, sqlite_url):
    with store.session(tenant=TENANT, user=ADMIN) as s:
        v = int(stored(store).loc["1.2", "version"])
        v = s.save_score("D03", 2024, "1.2", expected_version=v, appraised_score=2, appraisal_reason="Thiếu",
                         appraisal_round=1)
        s.save_score("D03", 2024, "1.2", expected_version=v, unit_response="Đã bổ sung <b>báo cáo</b>")
    app = AppraisalApp(small_env(sqlite_url, unit="D03"), store=store)
    assert app._round.value == 2
    app._fields.selected_index = 0
    assert "Đã bổ sung &lt;b&gt;báo cáo&lt;/b&gt;" in app._leaf["1.2"]["unit_side"].value
    app._leaf["1.2"]["score"].value = "3"
    app._leaf["1.2"]["reason"].value = "Chấp nhận giải trình"
    app._save.click()
    assert int(stored(store).loc["1.2", "appraisal_round"]) == 2


def test_approve_locks_and_the_history_lists_the_changes(app, store):
    app._leaf["1.2"]["score"].value = "2"
    app._leaf["1.2"]["reason"].value = "Thiếu báo cáo"
    app._save.click()
    app._approve.click()
    with store.session(tenant=TENANT, user=ADMIN) as s:
        assert s.assessment("D03", 2024)["status"] == "appraised"
    assert app._save.disabled and app._leaf["1.2"]["score"].disabled
    app._leaf["1.2"]["score"].value = "1"  # sent anyway
    app._leaf["1.2"]["reason"].value = "x"
    app._save.click()
    assert "appraised" in app._message.value and stored(store).loc["1.2", "appraised_score"] == 2.0
    app._history_box.selected_index = 0
    history = app._history.value
    assert "Điểm thẩm định (appraised_score)" in history and "Thiếu báo cáo" in history and "submitted" in history


def test_only_appraisers_and_admins_may_appraise(store, sqlite_url):
    with store.session(tenant=TENANT, user=ADMIN) as s:
        s.set_member("eve", "editor", ["D01"])
        s.set_member("hoa", "appraiser")
    assert not AppraisalApp(small_env(sqlite_url, user="eve"), store=store).ready
    assert AppraisalApp(small_env(sqlite_url, user="hoa"), store=store).ready


def test_a_draft_cannot_be_appraised(store, sqlite_url):
    app = AppraisalApp(small_env(sqlite_url, unit="D01"), store=store)
    assert app._save.disabled and "pi-locked" in app._status.value


def test_english(app):
    app._lang.value = "en"
    assert app._leaf["1.2"]["score"].description == "Appraised score"
    assert "Self score:</b> 3" in app._leaf["1.2"]["unit_side"].value
    assert app._approve.description == "Approve and lock"
