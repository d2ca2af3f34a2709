"""The apps in a real browser: Debian's Chromium driving a real Voilà server.

Each test opens an app as a person would, types and clicks, then checks
what the page shows and what the store holds. Screenshots of each app go to
``tests/artifacts/``.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from browser_support import (
    APPRAISE_UNIT,
    DRAFT_UNIT,
    FRAMEWORK,
    IMPORT_UNIT,
    REFUSE_UNIT,
    TENANT,
    USER,
    XSS_CODE,
    XSS_NAME,
    YEAR,
    message_text,
    open_app,
    screenshot,
)

pytestmark = pytest.mark.browser


def open_field(page, index: int = 0) -> None:
    """Open one field's section of the tree."""
    page.locator(".pi-fields .jupyter-widget-Collapse-header").nth(index).click()


def wait_message(page, text: str, timeout: int = 30_000) -> str:
    try:
        page.locator(".pi-message").get_by_text(text).first.wait_for(timeout=timeout)
    except Exception as exc:
        raise AssertionError(f"no message {text!r}; the app shows {message_text(page)!r}") from exc
    return message_text(page)


def scores(session, unit: str):
    return session.scores(year=YEAR, unit_codes=[unit]).set_index("node_code")


# -- index ------------------------------------------------------------------------

def test_index_lists_the_apps(page, voila):
    open_app(page, voila, "index", ".pi-app-list a")
    links = page.locator(".pi-app-list a")
    assert links.count() == 6
    assert page.locator(".pi-app-list").get_by_text("Tự đánh giá, chấm điểm").is_visible()
    screenshot(page, "index")


# -- self-assessment ------------------------------------------------------------------

def test_scores_entered_and_saved_survive_a_reload(page, voila, store):
    open_app(page, voila, "self_assessment", ".pi-fields", f"?unit={DRAFT_UNIT}&year={YEAR}")
    open_field(page, 0)
    page.locator(".pi-score-1-1-1 select").select_option(label="Ban hành đúng hạn (0,5)")
    page.locator(".pi-explanation-1-1-1 textarea").fill("Kế hoạch số 12/KH-SNV")
    page.locator(".pi-score-1-1-3 input").fill("0,25")
    page.locator(".pi-evidence-1-1-3 input").fill("https://example.invalid/kinh-phi.pdf")
    page.locator(".pi-evidence-1-1-3 input").press("Tab")
    page.locator(".pi-total").get_by_text("0,75 / 100").wait_for()
    page.locator(".pi-explanation-1-1-1 textarea").press("Tab")
    page.locator(".pi-save").click()
    wait_message(page, "Đã lưu 2 ô")
    assert "Đã lưu lúc" in page.locator(".pi-save-status").inner_text()
    screenshot(page, "self_assessment")
    with store.session(tenant=TENANT, user=USER) as s:
        rows = scores(s, DRAFT_UNIT)
    assert rows.loc["1.1.1", "self_score"] == 0.5 and rows.loc["1.1.3", "self_score"] == 0.25
    assert rows.loc["1.1.1", "explanation"] == "Kế hoạch số 12/KH-SNV"

    page.reload(wait_until="domcontentloaded", timeout=90_000)
    page.wait_for_selector(".pi-fields", state="visible", timeout=90_000)
    assert "0,75 / 100" in page.locator(".pi-total").inner_text()
    open_field(page, 0)
    assert page.locator(".pi-score-1-1-3 input").input_value() == "0,25"
    assert page.locator(".pi-score-1-1-1 select option:checked").inner_text().replace("\xa0", " ") == "Ban hành đúng hạn (0,5)"
    assert page.locator(".pi-evidence-1-1-3 input").input_value() == "https://example.invalid/kinh-phi.pdf"
    assert "0,75 / 9,5" in page.locator(".pi-fields .jupyter-widget-Collapse-header").first.inner_text()


@pytest.mark.parametrize("typed", ["0,75", "-1", "mười"])
def test_values_over_the_maximum_negative_or_text_are_refused_and_nothing_stored(page, voila, store, typed):
    open_app(page, voila, "self_assessment", ".pi-fields", f"?unit={REFUSE_UNIT}&year={YEAR}")
    open_field(page, 0)
    page.locator(".pi-score-1-1-3 input").fill(typed)
    page.locator(".pi-explanation-1-1-3 textarea").fill("giải trình")
    page.locator(".pi-explanation-1-1-3 textarea").press("Tab")
    page.locator(".pi-error-1-1-3 .pi-inline-error").wait_for()
    page.locator(".pi-save").click()
    text = wait_message(page, "Chưa lưu")
    assert "1.1.3" in text
    assert page.locator(".pi-message .pi-failures").is_visible()
    near = page.locator(".pi-message-near")
    assert "1.1.3" in near.inner_text()  # also beside the Save button, at the bottom of a long form
    if typed == "-1":
        near.scroll_into_view_if_needed()
        screenshot(page, "self_assessment_refused")
    with store.session(tenant=TENANT, user=USER) as s:
        assert "1.1.3" not in scores(s, REFUSE_UNIT).index


# -- import wizard -----------------------------------------------------------------------

def _filled_template(session, tmp_path: Path, bad: bool) -> Path:
    from parindex_lib.importing import score_template

    fw = session.framework(FRAMEWORK)
    units = session.units()
    path = tmp_path / "template.xlsx"
    score_template(fw, units[units["code"] == IMPORT_UNIT], YEAR, path)
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    header_row = next(r for r in range(1, 10) if ws.cell(r, 1).value == "unit_code")
    header = [c.value for c in ws[header_row]]
    row = header_row + 1
    assert ws.cell(row, 1).value == IMPORT_UNIT
    leaves = fw.leaves.set_index("code")
    for col, code in enumerate(header, start=1):
        if code in leaves.index:
            node = leaves.loc[code]
            value = float(node["max_points"])
            ws.cell(row, col).value = value
    if bad:
        col = header.index("1.1.3") + 1
        ws.cell(row, col).value = 9  # the maximum is 0.5
    out = tmp_path / ("diem_sai.xlsx" if bad else "diem_dung.xlsx")
    wb.save(out)
    return out


def test_import_with_one_bad_cell_writes_nothing_and_the_fixed_file_writes_all(page, voila, session, tmp_path):
    open_app(page, voila, "import_wizard", ".pi-import-upload", f"?year={YEAR}")
    bad = _filled_template(session, tmp_path, bad=True)
    with page.expect_file_chooser() as chooser:
        page.locator(".pi-import-upload").click()
    chooser.value.set_files(str(bad))
    text = wait_message(page, "chưa ghi gì", timeout=60_000)
    rows = page.locator(".pi-message .pi-failures tbody tr")
    assert rows.count() == 1
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[0] == "diem_sai.xlsx" and "1.1.3" in cells and "9" in cells
    assert page.locator(".pi-confirm").is_disabled()
    screenshot(page, "import_wizard_refused")
    assert session.scores(year=YEAR, unit_codes=[IMPORT_UNIT]).empty

    good = _filled_template(session, tmp_path, bad=False)
    with page.expect_file_chooser() as chooser:
        page.locator(".pi-import-upload").click()
    chooser.value.set_files(str(good))
    wait_message(page, "Tệp hợp lệ", timeout=60_000)
    assert page.locator(".pi-preview table").is_visible()
    page.locator(".pi-confirm").click()
    wait_message(page, "Đã ghi", timeout=60_000)
    screenshot(page, "import_wizard")
    written = session.scores(year=YEAR, unit_codes=[IMPORT_UNIT])
    fw = session.framework(FRAMEWORK)
    self_leaves = fw.leaves[fw.leaves["assessed_by"] != "survey"]
    assert written["self_score"].notna().sum() == len(self_leaves)
    assert written.set_index("node_code").loc["1.1.3", "self_score"] == 0.5


# -- appraisal ---------------------------------------------------------------------------

def test_appraisal_needs_a_reason_to_adjust(page, voila, store):
    open_app(page, voila, "appraisal", ".pi-fields", f"?unit={APPRAISE_UNIT}&year={YEAR}")
    open_field(page, 0)
    with store.session(tenant=TENANT, user=USER) as s:
        self_score = float(scores(s, APPRAISE_UNIT).loc["1.1.3", "self_score"])
    new = 0.0 if self_score > 0 else 0.5
    page.locator(".pi-appraised-1-1-3 input").fill(str(new).replace(".", ","))
    page.locator(".pi-save-appraisal").click()
    text = wait_message(page, "Chưa lưu")
    assert "1.1.3" in text and "appraisal_reason" in text
    with store.session(tenant=TENANT, user=USER) as s:
        assert scores(s, APPRAISE_UNIT)["appraised_score"].isna().all()
    page.locator(".pi-reason-1-1-3 textarea").fill("Chưa có quyết định bố trí kinh phí")
    page.locator(".pi-reason-1-1-3 textarea").press("Tab")
    page.locator(".pi-save-appraisal").click()
    wait_message(page, "Đã lưu 1 ô thẩm định")
    screenshot(page, "appraisal")
    with store.session(tenant=TENANT, user=USER) as s:
        row = scores(s, APPRAISE_UNIT).loc["1.1.3"]
    assert row["appraised_score"] == new and row["appraisal_reason"] == "Chưa có quyết định bố trí kinh phí"


# -- results -------------------------------------------------------------------------------

def _cli_ranks(store_url: str) -> list[tuple[str, str]]:
    exe = Path(sys.executable).with_name("parindex")
    out = subprocess.run([str(exe), "--db", store_url, "--tenant", TENANT, "--user", USER, "results",
                          "--year", str(YEAR), "--level", "index", "--kind", "department", "--format", "csv"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "PARINDEX_DEBUG": ""})
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    return [(r["unit_code"], r["rank"]) for r in rows]


def test_the_ranking_shows_the_same_ranks_as_the_command_line(page, voila, store_url):
    open_app(page, voila, "results", ".pi-ranking-table", f"?year={YEAR}&kind=department")
    rows = page.locator(".pi-ranking-table tbody tr")
    shown = [(r.locator("td.pi-unit-code").inner_text(), r.locator("td.pi-rank").inner_text())
             for r in rows.all()]
    screenshot(page, "results")
    cli = _cli_ranks(store_url)
    assert shown == [(c, r if r else "–") for c, r in cli]
    assert page.locator(".pi-ranking-table .pi-up").count() + page.locator(".pi-ranking-table .pi-down").count() > 0


def test_heatmap_tab_draws_the_figure(page, voila):
    open_app(page, voila, "results", ".pi-ranking-table", f"?year={YEAR}&kind=department")
    page.locator(".pi-tabs .lm-TabBar-tab").nth(1).click()
    page.locator(".pi-heatmap").wait_for()
    page.wait_for_function("document.querySelector('.pi-heatmap').naturalWidth > 100", timeout=60_000)
    page.locator(".pi-export-svg").wait_for()
    screenshot(page, "results_heatmap")


def test_a_unit_named_like_html_shows_as_text(page, voila):
    open_app(page, voila, "results", ".pi-ranking-table", f"?year={YEAR}&kind=department")
    assert page.locator(".pi-ranking-table").get_by_text(XSS_NAME, exact=True).count() == 1
    assert page.locator(".pi-app img[src='x']").count() == 0
    open_app(page, voila, "self_assessment", ".pi-status", f"?unit={XSS_CODE}&year={YEAR}")
    assert XSS_NAME in page.locator(".pi-status").inner_text()
    assert page.locator(".pi-app img[src='x']").count() == 0
    page.wait_for_timeout(500)  # give an injected handler the time to fire (the page fixture fails on a dialog)


def test_the_english_switch(page, voila):
    open_app(page, voila, "results", ".pi-ranking-table", f"?year={YEAR}&kind=department")
    page.locator(".pi-lang button").get_by_text("English").click()
    page.locator(".pi-ranking-table th").get_by_text("Rank", exact=True).wait_for()
    assert "PAR INDEX results and rankings" in page.locator(".pi-title").inner_text()
    table = page.locator(".pi-ranking-table").inner_text()
    assert "place" in table and "bậc" not in table
    screenshot(page, "results_english")
    open_app(page, voila, "self_assessment", ".pi-fields", f"?unit={DRAFT_UNIT}&year={YEAR}&lang=en")
    assert "Total self score" in page.locator(".pi-total").inner_text()
    assert page.locator(".pi-save").inner_text().strip() == "Save"


def test_usable_on_a_1366_by_768_screen_with_labels_on_every_input(page, voila):
    open_app(page, voila, "self_assessment", ".pi-fields", f"?unit={DRAFT_UNIT}&year={YEAR}")
    open_field(page, 0)
    page.locator(".pi-score-1-1-3 input").wait_for()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('.pi-app input, .pi-app select, .pi-app textarea')]
        .filter(e => e.type !== 'file' && e.offsetParent !== null)
        .filter(e => !(e.labels && e.labels.length && e.labels[0].innerText.trim()) && !e.getAttribute('aria-label'))
        .map(e => e.outerHTML.slice(0, 80))""")
    assert unlabelled == []
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement && document.activeElement.tagName")
    assert focused in ("BUTTON", "INPUT", "SELECT", "TEXTAREA", "A", "SUMMARY")
    # section headers take no focus: the field picker (a select) opens any field from the keyboard
    picker = page.locator(".pi-open-field select")
    picker.focus()
    picker.select_option(index=2)
    page.locator(".pi-score-2-1-1, .pi-score-2-1-2").first.wait_for()
