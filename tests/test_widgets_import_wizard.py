"""The import wizard without a browser: a real template, filled, uploaded, checked, written."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re

import openpyxl
import pytest

from widgets.import_wizard import ImportWizardApp
from widgets.testing import ADMIN, TENANT, small_env, small_store


@pytest.fixture
def store(sqlite_url, small_framework):
    return small_store(sqlite_url, small_framework)


@pytest.fixture
def app(store, sqlite_url):
    return ImportWizardApp(small_env(sqlite_url), store=store)


def upload(name, data):
    return ({"name": name, "type": "", "size": len(data), "content": memoryview(data),
             "last_modified": dt.datetime.now(dt.timezone.utc)},)


def template(app) -> openpyxl.Workbook:
    app._make.click()
    link = app._template.value
    assert 'download="mau_diem_small_test_2024_wide.xlsx"' in link
    return openpyxl.load_workbook(io.BytesIO(base64.b64decode(re.search(r'base64,([^"]+)"', link).group(1))))


def as_bytes(wb) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def d01(store):
    with store.session(tenant=TENANT, user=ADMIN) as s:
        return s.scores(year=2024, unit_codes=["D01"])


def test_a_file_with_bad_cells_shows_every_one_and_writes_nothing(app, store):
    wb = template(app)
    ws = wb.active
    assert [c.value for c in ws[4]][:4] == ["unit_code", "unit_name", "year", "1.1.1"]
    ws["D5"], ws["E5"], ws["F5"], ws["G5"] = 1, "1,5", 7, "hai"  # F5 over the maximum, G5 text
    ws["E6"] = -1
    app._upload.value = upload("diem_2024.xlsx", as_bytes(wb))
    html = app._message.value
    assert "Tệp có 3 lỗi: chưa ghi gì" in html
    for cell in (">5<", ">6<", ">7<", ">hai<", ">-1<"):
        assert cell in html
    assert "diem_2024.xlsx" in html and app._confirm.disabled
    app._confirm.click()
    assert d01(store).empty


def test_the_fixed_file_writes_everything_in_one_go(app, store):
    wb = template(app)
    ws = wb.active
    ws["D5"], ws["E5"], ws["F5"], ws["G5"] = 1, "1,5", 4, 2
    app._upload.value = upload("diem_2024.xlsx", as_bytes(wb))
    assert "Tệp hợp lệ" in app._message.value and "1,5" in app._preview.value
    assert not app._confirm.disabled
    app._confirm.click()
    assert app._progress.value == 100 and "Đã ghi" in app._message.value
    got = d01(store).set_index("node_code")["self_score"].to_dict()
    assert got == {"1.1.1": 1.0, "1.1.2": 1.5, "1.2": 4.0, "2.2": 2.0}
    assert app._confirm.disabled  # written once


def test_csv_files_are_accepted(app, store):
    text = "unit_code,year,node_code,self_score\nD01,2024,1.2,\"3,5\"\nD01,2024,2.2,1\n"
    app._upload.value = upload("diem.csv", text.encode("utf-8"))
    app._confirm.click()
    assert d01(store).set_index("node_code")["self_score"].to_dict() == {"1.2": 3.5, "2.2": 1.0}


def test_a_file_that_is_not_a_spreadsheet_is_refused(app, store):
    app._upload.value = upload("diem.xlsx", b"MZ\x90\x00not a workbook")
    assert "pi-msg-error" in app._message.value and app._confirm.disabled
    assert d01(store).empty


def test_only_admins_may_import(store, sqlite_url):
    with store.session(tenant=TENANT, user=ADMIN) as s:
        s.set_member("hoa", "appraiser")
    app = ImportWizardApp(small_env(sqlite_url, user="hoa"), store=store)
    assert not app.ready and "hoa" in app._message.value


def test_english(app):
    app._lang.value = "en"
    assert app._confirm.description == "Write all" and "Step 1" in app._step1.value


def test_the_failure_table_speaks_the_apps_language(app, store):
    """The library's English "expected" texts and message are shown in Vietnamese, and in English after the switch."""
    wb = template(app)
    ws = wb.active
    ws["F5"] = 7  # leaf 1.2, max 5 points
    data = as_bytes(wb)
    app._upload.value = upload("diem_2024.xlsx", data)
    html = app._message.value
    assert "Tệp có 1 lỗi: chưa ghi gì. Sửa tệp rồi nạp lại. Tệp diem_2024.xlsx có lỗi; chưa nhập gì." in html
    assert "tối đa 5 điểm (điểm tối đa của tiêu chí 1.2)" in html
    assert "max_points of node" not in html and "nothing was imported" not in html
    app._lang.value = "en"
    app._upload.value = upload("diem_2024_en.xlsx", data)
    html = app._message.value
    assert "at most 5 points (max_points of node 1.2)" in html and "tối đa 5 điểm" not in html
    assert d01(store).empty
