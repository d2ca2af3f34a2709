"""The correlation explorer and the improvement planner in a real browser.

Debian's Chromium drives the Voilà server of ``conftest.py`` (the demo store
with the published PAR, PCI, PAPI and SIPAS figures): a correlation is run
and its table read; in the planner an action is added, the page reloaded and
the action found again, in the page and in the store; the evidence pack is
downloaded and read.
"""

from __future__ import annotations

import io
import math

import openpyxl
import pytest

from browser_support import TENANT, USER, YEAR, message_text, open_app, screenshot

pytestmark = pytest.mark.browser

PLAN_UNIT = "S05"


def _vi(x: float, decimals: int = 3) -> str:
    return f"{x:.{decimals}f}".rstrip("0").rstrip(".").replace(".", ",")


def tab(page, index: int) -> None:
    page.locator(".pi-tabs .lm-TabBar-tab").nth(index).click()


def test_a_correlation_is_run_and_its_table_shown(page, voila):
    from parindex_lib.correlation import correlate
    from parindex_lib.external import load_external

    open_app(page, voila, "correlation", ".pi-run")
    page.locator(".pi-index-choice select").select_option(label="PCI")
    page.locator(".pi-n-boot input").fill("0")
    page.locator(".pi-n-boot input").press("Tab")
    page.locator(".pi-run").click()
    page.locator(".pi-correlation-table tbody tr").first.wait_for(timeout=120_000)
    assert "Xong:" in message_text(page)
    expect = correlate(load_external(), "PAR", ["PCI:total"], method="pearson", year="pooled", n_boot=0)
    finite = expect[expect["r"].map(lambda v: not math.isnan(v))]
    cells = page.locator(".pi-correlation-table tbody tr").first.locator("td").all_inner_texts()
    assert cells[:5] == [finite["x"].iloc[0], finite["y"].iloc[0], "pooled", str(finite["n"].iloc[0]),
                         _vi(finite["r"].iloc[0])]
    assert page.locator(".pi-correlation-table tbody tr").count() == len(finite)
    page.locator(".pi-export-csv").wait_for()
    screenshot(page, "correlation")
    tab(page, 1)
    page.wait_for_function("document.querySelector('.pi-corr-heatmap').naturalWidth > 100", timeout=60_000)
    page.locator(".pi-export-svg").wait_for()
    screenshot(page, "correlation_heatmap")


def test_sipas_results_say_that_sipas_is_part_of_par(page, voila):
    open_app(page, voila, "correlation", ".pi-run")
    page.locator(".pi-index-choice select").select_option(label="SIPAS")
    page.locator(".pi-run").click()
    page.locator(".pi-sipas-note").wait_for(timeout=120_000)
    assert "SIPAS là một phần của lĩnh vực 8" in page.locator(".pi-sipas-note").inner_text()


def test_an_action_added_in_the_planner_survives_a_reload(page, voila, store):
    from parindex_lib.planning import action_plan

    query = f"?unit={PLAN_UNIT}&year={YEAR}"
    open_app(page, voila, "planner", ".pi-points-lost-table", query)
    assert "xếp hạng" in page.locator(".pi-summary").inner_text()
    tab(page, 1)
    page.locator(".pi-formula-text").get_by_text("ưu tiên = điểm có thể gỡ", exact=False).wait_for()
    tab(page, 3)
    page.locator(".pi-plan-action textarea").wait_for()
    node = page.locator(".pi-plan-node select").input_value().split(" — ")[0]  # options show "code — name"
    assert node  # the top priority is proposed
    page.locator(".pi-plan-action textarea").fill("Giao chỉ tiêu <b>cụ thể</b> cho từng phòng")
    page.locator(".pi-plan-owner input").fill("Văn phòng Sở")
    page.locator(".pi-plan-owner input").press("Tab")
    page.locator(".pi-plan-deadline input").fill("2025-06-30")
    page.locator(".pi-plan-deadline input").press("Tab")
    page.locator(".pi-plan-save").click()
    page.locator(".pi-message").get_by_text("Đã lưu hành động #").wait_for(timeout=30_000)
    with store.session(tenant=TENANT, user=USER) as s:
        plan = action_plan(s, PLAN_UNIT, YEAR)
    row = plan.iloc[-1]
    assert (row["node_code"], row["action"], row["owner"], str(row["deadline"])) == \
        (node, "Giao chỉ tiêu <b>cụ thể</b> cho từng phòng", "Văn phòng Sở", "2025-06-30")
    screenshot(page, "planner_plan")

    page.reload(wait_until="domcontentloaded")
    page.locator(".pi-points-lost-table").wait_for(timeout=90_000)
    tab(page, 3)
    table = page.locator(".pi-plan-rows")
    table.get_by_text("Giao chỉ tiêu <b>cụ thể</b> cho từng phòng", exact=True).wait_for()
    assert page.locator(".pi-plan-rows b").count() == 0  # shown as text, not markup
    assert "2025-06-30" in table.inner_text()


def test_the_evidence_pack_downloads(page, voila, tmp_path):
    open_app(page, voila, "planner", ".pi-points-lost-table", f"?unit={PLAN_UNIT}&year={YEAR}")
    tab(page, 4)
    page.locator(".pi-make-report").click()
    page.locator(".pi-report-html").wait_for(timeout=120_000)
    with page.expect_download() as got:
        page.locator(".pi-report-html").click()
    html_path = tmp_path / "pack.html"
    got.value.save_as(html_path)
    text = html_path.read_text(encoding="utf-8")
    assert got.value.suggested_filename == f"ho_so_minh_chung_{PLAN_UNIT}_{YEAR}_vi.html"
    assert "Hồ sơ minh chứng cải thiện Chỉ số CCHC" in text and "<script" not in text
    assert "data:image/png;base64," in text
    with page.expect_download() as got_x:
        page.locator(".pi-report-xlsx").click()
    xlsx_path = tmp_path / "pack.xlsx"
    got_x.value.save_as(xlsx_path)
    wb = openpyxl.load_workbook(io.BytesIO(xlsx_path.read_bytes()))
    assert "Ưu tiên" in wb.sheetnames and "Kế hoạch hành động" in wb.sheetnames
    screenshot(page, "planner_report")
    # the downloaded page opens in the browser on its own (nothing to fetch)
    page.goto(html_path.as_uri())
    page.get_by_text("1. Kết quả của đơn vị").wait_for()
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 100)")
