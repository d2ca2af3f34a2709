"""The self-assessment app without a browser: set values as the browser would, click, check the store."""

from __future__ import annotations

import datetime as dt

import pytest

from widgets.self_assessment import SelfAssessmentApp
from widgets.testing import ADMIN, TENANT, XSS_NAME, small_env, small_store

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def store(sqlite_url, small_framework):
    return small_store(sqlite_url, small_framework)


@pytest.fixture
def app(store, sqlite_url):
    a = SelfAssessmentApp(small_env(sqlite_url, unit="D01", year="2024"), store=store)
    a._fields.selected_index = 0  # field 1: leaves 1.1.1 (rubric), 1.1.2, 1.2
    return a


def stored(store, unit="D01", year=2024):
    with store.session(tenant=TENANT, user=ADMIN) as s:
        df = s.scores(year=year, unit_codes=[unit])
    return df.set_index("node_code")


def upload(name, data):
    return ({"name": name, "type": "", "size": len(data), "content": memoryview(data),
             "last_modified": dt.datetime.now(dt.timezone.utc)},)


def test_opens_the_sheet_with_sections_per_field(app):
    assert app.sheet is not None and app.sheet.unit_code == "D01"
    assert len(app._fields.children) == 2
    assert app._fields.titles[0].startswith("1. Công tác chỉ đạo")
    assert set(app._leaf) == {"1.1.1", "1.1.2", "1.2"}
    assert "Tối đa 2 điểm" in app._leaf["1.1.2"]["head"].value
    assert "Đúng hạn (1)" in [label for label, _ in app._leaf["1.1.1"]["score"].options]


def test_totals_follow_typing_with_either_decimal_mark(app):
    app._leaf["1.1.2"]["score"].value = "1,5"
    app._leaf["1.2"]["score"].value = "2.25"
    app._leaf["1.1.1"]["score"].value = 0.5
    assert app._total.value == "Tổng điểm tự chấm: 4,25 / 20"
    assert app._fields.titles[0].endswith("4,25 / 8")
    assert "2 / 3" in app._crit["1.1"].value


def test_save_writes_through_the_store_and_a_new_visit_shows_the_values(app, store, sqlite_url):
    app._leaf["1.1.2"]["score"].value = "1,5"
    app._leaf["1.1.2"]["evidence"].value = "https://example.invalid/kh-2024.pdf"
    app._leaf["1.2"]["score"].value = "4"
    app._leaf["1.2"]["explanation"].value = "Đã gửi 4/5 báo cáo đúng hạn"
    app._leaf["1.1.1"]["score"].value = 1.0
    app._leaf["1.1.1"]["explanation"].value = "Kế hoạch số 12/KH"
    app._save.click()
    assert "Đã lưu 3 ô lúc" in app._message.value
    assert "Đã lưu lúc" in app._save_status.value
    rows = stored(store)
    assert rows.loc["1.1.2", "self_score"] == 1.5 and rows.loc["1.2", "self_score"] == 4.0
    assert rows.loc["1.2", "explanation"] == "Đã gửi 4/5 báo cáo đúng hạn"
    again = SelfAssessmentApp(small_env(sqlite_url, unit="D01", year="2024"), store=store)
    again._fields.selected_index = 0
    assert again._leaf["1.1.2"]["score"].value == "1,5"
    assert again._leaf["1.1.1"]["score"].value == 1.0
    assert again._total.value == "Tổng điểm tự chấm: 6,5 / 20"


@pytest.mark.parametrize("typed", ["2,5", "-1", "mười", "1e9", "nan"])
def test_values_past_the_limits_are_refused_with_a_message_and_nothing_is_stored(app, store, typed):
    # The browser can send any text to the input: the server refuses it.
    app._leaf["1.1.2"]["score"].value = typed
    app._leaf["1.1.2"]["explanation"].value = "giải trình"
    assert app._total.value == "Tổng điểm tự chấm: – / 20"
    app._save.click()
    assert "pi-msg-error" in app._message.value and "1.1.2" in app._message.value
    assert "1.1.2" not in stored(store).index


def test_a_rubric_accepts_only_its_levels(app):
    from traitlets import TraitError

    with pytest.raises(TraitError):
        app._leaf["1.1.1"]["score"].value = 0.7


def test_an_inline_message_names_the_limit_while_typing(app):
    app._leaf["1.1.2"]["score"].value = "2,5"
    assert "Điểm 2,5 nằm ngoài khoảng từ 0 đến 2." in app._leaf["1.1.2"]["error"].value
    app._leaf["1.1.2"]["score"].value = "x"
    assert "không phải là số" in app._leaf["1.1.2"]["error"].value
    app._leaf["1.1.2"]["score"].value = "2"
    assert app._leaf["1.1.2"]["error"].value == ""


def test_an_explanation_is_required_without_evidence(app, store):
    app._leaf["1.1.2"]["score"].value = "1"
    app._leaf["1.2"]["score"].value = "3"
    app._leaf["1.2"]["evidence"].value = "https://example.invalid/bc.pdf"
    app._save.click()
    msg = app._message.value
    assert "Đã lưu 1 ô" in msg and "1.1.2" in msg and "Giải trình (explanation)" in msg
    rows = stored(store)
    assert "1.2" in rows.index and "1.1.2" not in rows.index


def test_evidence_files_are_stored_and_listed_and_bad_files_refused(app, store):
    app._leaf["1.2"]["upload"].value = upload("bao_cao.pdf", PDF)
    assert "bao_cao.pdf" in app._leaf["1.2"]["files"].value
    with store.session(tenant=TENANT, user=ADMIN) as s:
        assert s.evidence("D01", 2024)["name"].tolist() == ["bao_cao.pdf"]
    app._leaf["1.2"]["upload"].value = upload("virus.exe", b"MZ\x90\x00")
    assert "pi-msg-error" in app._message.value and "virus.exe" in app._message.value
    # a file counts as evidence: no explanation needed
    app._leaf["1.2"]["score"].value = "5"
    app._save.click()
    assert stored(store).loc["1.2", "self_score"] == 5.0


def test_a_conflict_shows_both_values_and_lets_the_person_choose(store, sqlite_url):
    first = SelfAssessmentApp(small_env(sqlite_url, unit="D01"), store=store)
    second = SelfAssessmentApp(small_env(sqlite_url, unit="D01"), store=store)
    for a, value in ((first, "1"), (second, "2")):
        a._fields.selected_index = 0
        a._leaf["1.1.2"]["score"].value = value
        a._leaf["1.1.2"]["explanation"].value = "x"
    first._save.click()
    second._save.click()
    assert "pi-msg-warning" in second._message.value
    text = second._conflicts.children[0].children[0].value
    assert "của bạn 2" in text and "ana: 1" in text
    mine = second._conflicts.children[0].children[1]
    assert "pi-keep-mine-1-1-2" in mine._dom_classes
    mine.click()
    assert stored(store).loc["1.1.2", "self_score"] == 2.0 and second._conflicts.children == ()
    # the first editor now conflicts and takes the other value
    first._leaf["1.1.2"]["score"].value = "0,5"
    first._save.click()
    first._conflicts.children[0].children[2].click()
    assert first._leaf["1.1.2"]["score"].value == "2"
    assert stored(store).loc["1.1.2", "self_score"] == 2.0


def test_submit_locks_the_sheet(app, store):
    app._leaf["1.2"]["score"].value = "3"
    app._leaf["1.2"]["explanation"].value = "x"
    app._submit.click()
    assert "chưa lưu" in app._message.value  # unsaved work first
    app._save.click()
    app._submit.click()
    assert "xác nhận" in app._message.value  # asks to confirm
    app._submit.click()
    with store.session(tenant=TENANT, user=ADMIN) as s:
        assert s.assessment("D01", 2024)["status"] == "submitted"
    assert app._leaf["1.2"]["score"].disabled and app._save.disabled
    # a value sent anyway is refused on the server
    app.sheet.set("1.2", "self_score", "1")
    app._save.click()  # a disabled button can still be "clicked" by a crafted message
    assert "submitted" in app._message.value
    assert stored(store).loc["1.2", "self_score"] == 3.0


def test_the_deadline_locks_the_sheet(store, sqlite_url):
    with store.session(tenant=TENANT, user=ADMIN) as s:
        s.set_deadline("D01", 2024, "2020-01-31", reason="test")
    app = SelfAssessmentApp(small_env(sqlite_url, unit="D01"), store=store)
    assert "Đã quá hạn tự chấm" in app._status.value and app._save.disabled
    app._fields.selected_index = 0
    assert app._leaf["1.2"]["score"].disabled
    app.sheet.set("1.2", "self_score", "1")
    app.guard(app._on_save)()
    assert "deadline" in app._message.value
    assert "1.2" not in stored(store).index


def test_switching_units_with_unsaved_changes_is_refused(app):
    app._leaf["1.2"]["score"].value = "3"
    app._unit.value = "D03"
    assert app._unit.value == "D01" and "1 ô chưa lưu" in app._message.value


def test_an_editor_sees_only_their_units(store, sqlite_url):
    with store.session(tenant=TENANT, user=ADMIN) as s:
        s.set_member("eve", "editor", ["D03"])
        s.set_member("vy", "analyst")
    app = SelfAssessmentApp(small_env(sqlite_url, user="eve"), store=store)
    assert [v for _, v in app._unit.options] == ["D03"] and app.sheet.unit_code == "D03"
    none = SelfAssessmentApp(small_env(sqlite_url, user="vy"), store=store)
    assert none._unit.options == () and "không được giao đơn vị" in none._status.value


def test_a_unit_named_like_html_shows_as_text(store, sqlite_url):
    app = SelfAssessmentApp(small_env(sqlite_url, unit="D02"), store=store)
    assert "&lt;img src=x onerror=alert(1)&gt;" in app._status.value and "<img" not in app._status.value
    assert any(XSS_NAME in label for label, _ in app._unit.options)  # option text, never HTML


def test_the_english_switch_changes_every_text_and_the_decimal_mark(app):
    app._leaf["1.1.2"]["score"].value = "1,5"
    app._lang.value = "en"
    assert app._total.value == "Total self score: 1.5 / 20"
    assert app._leaf["1.1.2"]["score"].description == "Self score"
    assert "Max 2 points" in app._leaf["1.1.2"]["head"].value
    assert app._save.description == "Save" and app._unit.description == "Unit"
    assert "Chậm (0.5)" in [label for label, _ in app._leaf["1.1.1"]["score"].options]  # no English label: Vietnamese


def test_the_unit_answers_round_one_adjustments(store, sqlite_url):
    with store.session(tenant=TENANT, user=ADMIN) as s:
        v = int(s.scores(year=2024, unit_codes=["D02"]).set_index("node_code").loc["1.2", "version"])
        s.save_score("D02", 2024, "1.2", expected_version=v, appraised_score=2, appraisal_reason="Thiếu báo cáo quý",
                     appraisal_round=1)
    app = SelfAssessmentApp(small_env(sqlite_url, unit="D02"), store=store)
    app._fields.selected_index = 0
    assert "Thiếu báo cáo quý" in app._leaf["1.2"]["appraisal"].value
    response = app._leaf["1.2"]["unit_response"]
    assert not response.disabled and app._leaf["1.2"]["score"].disabled
    response.value = "Đã bổ sung báo cáo quý IV"
    app._save.click()
    assert stored(store, "D02").loc["1.2", "unit_response"] == "Đã bổ sung báo cáo quý IV"


def test_a_field_opens_from_the_keyboard_reachable_picker(app):
    assert [label for label, _ in app._jump.options][1].startswith("1. Công tác chỉ đạo")
    app._jump.value = 1
    assert app._fields.selected_index == 1 and "2.2" in app._leaf
    app._fields.selected_index = 0
    assert app._jump.value == 0
