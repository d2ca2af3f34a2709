"""The correlation explorer and the improvement planner without a browser.

What the apps show is checked against the library (correlate, scipy, the
planning functions), and what they save against the store.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import re
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from scipy import stats

from parindex_lib import planning as P
from parindex_lib.correlation import correlate
from parindex_lib.external import load_external, to_wide
from parindex_lib.framework import read_framework_yaml
from parindex_lib.results import results_table
from widgets.correlation_app import CorrelationApp
from widgets.planner_app import PlannerApp
from widgets.testing import ADMIN, TENANT, XSS_NAME, self_scores, small_env, small_store


def _shared():
    # tests/conftest.py by path: a plain "import conftest" could find tests/browser/conftest.py
    spec = importlib.util.spec_from_file_location("_tests_conftest", Path(__file__).with_name("conftest.py"))
    shared = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shared)
    return shared


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('research') / 'r.sqlite'}"
    store = small_store(url, read_framework_yaml(_shared().SMALL_FRAMEWORK_YAML, "small_test.yaml"))
    with store.session(tenant=TENANT, user=ADMIN) as s:
        s.set_member("vy", "analyst")
        s.set_member("eve", "editor", ["D03"])
    return store, url


def rows(html: str) -> list[list[str]]:
    body = html.split("<tbody>")[1]
    return [re.findall(r"<td[^>]*>(.*?)</td>", tr) for tr in body.split("</tr>")[:-1]]


def links(html: str) -> dict[str, bytes]:
    return {name: base64.b64decode(data) for name, data in
            re.findall(r'download="([^"]+)" href="data:[^;]+;base64,([A-Za-z0-9+/=]+)"', html)}


def vi(x: float, decimals: int = 3) -> str:
    return f"{x:.{decimals}f}".rstrip("0").rstrip(".").replace(".", ",")


# -- the correlation explorer -------------------------------------------------------------------

@pytest.fixture
def corr_app(built):
    store, url = built
    return CorrelationApp(small_env(url), store=store)


def test_the_explorer_offers_the_published_figures_years_and_methods(corr_app):
    assert corr_app.ready and corr_app._message.value == ""
    assert [v for _, v in corr_app._source.options] == ["reference"]  # the tenant scores no province
    years = [v for _, v in corr_app._year.options]
    assert years[:2] == ["pooled", "each"] and 2024 in years and corr_app._year.value == "pooled"
    assert [v for _, v in corr_app._method.options] == ["pearson", "spearman", "kendall"]
    assert corr_app._index.label == "PCI, PAPI và SIPAS"
    assert "Chưa có kết quả" in corr_app._table.value


def test_a_pooled_study_shows_the_librarys_numbers_with_progress(corr_app):
    corr_app._index.value = "PCI"
    corr_app._method.value = "spearman"
    corr_app._n_boot.value = 300
    corr_app._run.click()
    expect = correlate(load_external(), "PAR", ["PCI:total"], method="spearman", year="pooled", n_boot=300)
    assert f"Xong: {len(expect)} cặp biến, 1 hệ số" in corr_app._message.value
    assert corr_app._progress.value == corr_app._progress.max == len(expect)
    finite = expect[np.isfinite(expect["r"])]
    shown = rows(corr_app._table.value)
    assert [(r[0], r[1], r[3]) for r in shown] == [(x, y, str(n)) for x, y, n in
                                                   zip(finite["x"], finite["y"], finite["n"])]
    assert [r[4] for r in shown] == [vi(v) for v in finite["r"]]
    assert shown[0][5] == f"[{vi(finite['ci_low'].iloc[0])}; {vi(finite['ci_high'].iloc[0])}]"
    # the coefficient is scipy's on the provinces with both values
    wide = to_wide(load_external())
    both = wide[["PAR:total", "PCI:total"]].dropna()
    assert finite["r"].iloc[0] == pytest.approx(stats.spearmanr(both["PAR:total"], both["PCI:total"]).statistic)
    missing = len(expect) - len(finite)
    assert f"{missing} cặp không đủ số liệu" in corr_app._notes.value
    assert "SIPAS là một phần" not in corr_app._notes.value


def test_sipas_results_carry_the_caveat_and_the_part_can_be_removed(corr_app):
    corr_app._index.value = "SIPAS"
    corr_app._n_boot.value = 0
    corr_app._run.click()
    assert "SIPAS là một phần của lĩnh vực 8" in corr_app._notes.value
    corr_app._exclude.value = True
    corr_app._run.click()  # the points of the part are required: shown, not raised
    assert "pi-msg-error" in corr_app._message.value and "sipas_part_max" in corr_app._message.value
    corr_app._sipas_max.value = "mười"
    corr_app._run.click()
    assert "pi-msg-error" in corr_app._message.value and "mười" in corr_app._message.value
    corr_app._sipas_max.value = "15,5"
    corr_app._run.click()
    assert "Xong" in corr_app._message.value
    assert "PAR:total_minus_field8" in set(corr_app.model.result["x"])
    assert "PAR:total" not in set(corr_app.model.result["x"])


def test_heatmap_scatter_and_downloads(corr_app):
    corr_app._index.value = "PAPI"
    corr_app._n_boot.value = 0
    corr_app._run.click()
    got = links(corr_app._exports.value)
    assert set(got) == {"correlation_pearson_pooled.csv", "correlation_pearson_pooled.xlsx"}
    csv = pd.read_csv(io.BytesIO(got["correlation_pearson_pooled.csv"]), encoding="utf-8-sig")
    assert csv["r"].to_numpy() == pytest.approx(corr_app.model.result["r"].to_numpy(), nan_ok=True)
    corr_app._tabs.selected_index = 1
    assert corr_app._heatmap.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert {n.rsplit(".", 1)[-1] for n in links(corr_app._exports.value)} == {"csv", "xlsx", "png", "svg"}
    corr_app._tabs.selected_index = 2
    assert corr_app._scatter_x.value.startswith("PAR:") and corr_app._scatter_y.value.startswith("PAPI:")
    assert corr_app._scatter.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert corr_app._message.value.startswith('<div class="pi-msg-info"')


def test_the_explorer_in_english(built):
    store, url = built
    app = CorrelationApp(small_env(url, lang="en"), store=store)
    assert "Correlation of the PAR INDEX" in app._title.value and app._run.description == "Run the analysis"
    app._lang.value = "vi"
    assert app._run.description == "Chạy phân tích"


PROVINCES = {"P01": "Hà Nội", "P79": "TP.HCM", "P48": "Đà Nẵng", "P31": "Hải Phòng", "P22": "Quảng Ninh",
             "P74": "Bình Dương", "P27": "Bắc Ninh", "P80": "Long An"}


def test_a_national_tenants_own_par_replaces_the_published_one(tmp_path):
    yaml_text = _shared().SMALL_FRAMEWORK_YAML.replace("id: small_test", "id: small_province").replace(
        "kinds: [department, commune]", "kinds: [province]").replace("level: department", "level: province")
    fw = read_framework_yaml(yaml_text, "small_province.yaml")
    from parindex_lib.store import Store

    url = f"sqlite:///{tmp_path / 'n.sqlite'}"
    store = Store(url)
    store.create_tenant("nat", "Bộ Nội vụ (thử)", admin_user="ana")
    store.add_shared_framework(fw)
    rng = np.random.default_rng(5)
    with store.session(tenant="nat", user="ana") as s:
        s.upsert_units(pd.DataFrame({"code": list(PROVINCES), "name": list(PROVINCES.values()), "kind": "province"}))
        for code in PROVINCES:
            s.write_scores(self_scores(fw, code, 2024, float(rng.uniform(0.5, 1.0))), framework_id=fw.id,
                           source="test")
    app = CorrelationApp(Environment_for(url, "nat"), store=store)
    assert [v for _, v in app._source.options] == ["reference", "tenant"]
    app._source.value = "tenant"
    assert [v for _, v in app._year.options] == ["pooled", "each", 2024]
    app._index.value = "PAPI"
    app._year.value = 2024
    app._n_boot.value = 0
    app._run.click()
    data = app.model.data
    par = data[data["index"] == "PAR"]
    assert set(par["source_url"]) == {"tenant assessment"} and par["year"].unique().tolist() == [2024]
    res = app.model.result.set_index(["x", "y"])
    wide = to_wide(data)
    both = wide[wide["year"] == 2024][["PAR:total", "PAPI:total"]].dropna()
    assert len(both) >= 4
    assert res.loc[("PAR:total", "PAPI:total"), "r"] == pytest.approx(
        stats.pearsonr(both["PAR:total"], both["PAPI:total"]).statistic)
    store.dispose()


def Environment_for(url: str, tenant: str):
    from widgets.base import Environment

    return Environment(db=url, tenant=tenant, user="ana", lang="vi", query={})


# -- the improvement planner ---------------------------------------------------------------------

def results_of(store, year=2024):
    with store.session(tenant=TENANT, user=ADMIN) as s:
        scores = s.scores(year=[year - 1, year])
        fw = s.framework("small_test")
        units = s.units()
    return results_table(scores, fw, units, year=year, level=None, kind="department"), fw


@pytest.fixture
def planner(built):
    store, url = built
    return PlannerApp(small_env(url, unit="D02", year="2024"), store=store)


def test_points_lost_are_the_librarys_against_the_median_and_best_of_the_kind(planner, built):
    assert planner.ready and planner._message.value == ""
    assert planner._unit.value == "D02" and planner._year.value == 2024
    res, fw = results_of(built[0])
    lost = P.points_lost(res, "D02", 2024, level="leaf", framework=fw)
    shown = rows(planner._lost.value)
    assert [r[0] for r in shown] == lost["node_code"].tolist()
    assert [r[4] for r in shown] == [vi(v) if v == v else "–" for v in lost["points_lost"]]
    assert [r[6] for r in shown] == [vi(v) for v in lost["best_points"]]
    assert "xếp hạng 1/2" in planner._summary.value  # D02 leads D03; D01 has no scores
    assert planner._profile.value[:8] == b"\x89PNG\r\n\x1a\n"
    # the unit named like HTML is plain text in the unit picker's label
    assert any(XSS_NAME in label for label, _ in planner._unit.options)


def test_priorities_show_the_formula_and_the_librarys_order(planner, built):
    planner._tabs.selected_index = 1
    assert "ưu tiên = điểm có thể gỡ × (1 + trọng số × độ liên hệ)" in planner._formula.value
    assert "Chưa dùng độ liên hệ" in planner._formula.value
    assert planner._assoc.label == "Không dùng (độ liên hệ = 0)"  # a choice shown, not an empty box
    res, fw = results_of(built[0])
    pr = P.priority(P.points_lost(res, "D03", 2024, level="leaf", framework=fw))
    planner._unit.value = "D03"
    assert [r[0] for r in rows(planner._priorities.value)] == pr["node_code"].tolist()
    assert [r[5] for r in rows(planner._priorities.value)] == [vi(v) for v in pr["priority"]]


def test_associations_with_an_external_index_weight_the_priorities(planner):
    planner._unit.value = "D03"
    planner._tabs.selected_index = 1
    planner._assoc.value = "PCI:total"
    planner._weight.value = 2.0
    pack = planner._current_pack()
    assert pack.associations and set(pack.associations) <= {"total", *map(str, range(1, 9))}
    assert "Nguồn: PCI:total, Pearson, gộp các năm" in planner._formula.value
    assert "giữa các tỉnh" in planner._formula.value and "pi-msg-warning" in planner._formula.value
    expect = P.priority(pack.points_lost, pack.associations, weight=2.0)
    pd.testing.assert_frame_equal(pack.priorities, expect)


def test_the_target_simulator(planner, built):
    res, fw = results_of(built[0])
    planner._unit.value = "D03"
    planner._tabs.selected_index = 2
    planner._goal.value = "rank"
    planner._rank_k.value = 1
    t = P.target(res, "D03", 2024, rank=1, framework=fw)
    assert t["points_needed"] > 0
    assert f"Đạt hạng 1: cần thêm {vi(t['points_needed'], 2)} điểm" in planner._target.value
    assert [r[0] for r in rows(planner._target.value)] == t["nodes"]["node_code"].tolist()
    planner._goal.value = "group"
    planner._group.value = "A"
    ta = P.target(res, "D03", 2024, group="A", framework=fw)
    assert planner._rank_k.layout.display == "none"
    assert f"Đạt nhóm A: cần thêm {vi(ta['points_needed'], 2)} điểm" in planner._target.value


def test_an_action_is_saved_survives_a_reload_and_a_conflict_is_shown(built):
    store, url = built
    app = PlannerApp(small_env(url, unit="D03", year="2024"), store=store)
    app._tabs.selected_index = 3
    assert app._plan_pick.label == "— Hành động mới —" and app._node.value is not None and app._gap.value != ""
    top = app._node.value
    app._action.value = "<i>Rà soát</i> hồ sơ & báo cáo"
    app._owner.value = "Văn phòng Sở"
    app._save.click()
    assert "Đã lưu hành động #" in app._message.value
    with store.session(tenant=TENANT, user=ADMIN) as s:
        plan = P.action_plan(s, "D03", 2024)
    saved = plan.iloc[-1]
    assert (saved["node_code"], saved["action"], saved["owner"], saved["version"]) == \
        (top, "<i>Rà soát</i> hồ sơ & báo cáo", "Văn phòng Sở", 1)
    # a new page shows it, escaped
    again = PlannerApp(small_env(url, unit="D03", year="2024"), store=store)
    again._tabs.selected_index = 3
    assert "&lt;i&gt;Rà soát&lt;/i&gt; hồ sơ &amp; báo cáo" in again._plan_table.value
    assert "<i>" not in again._plan_table.value
    # two pages edit the same action: the second to save sees the first one's value
    action_id = int(saved["id"])
    app._plan_pick.value = action_id
    again._plan_pick.value = action_id
    again._owner.value = "Phòng Tổng hợp"
    again._save.click()
    assert "phiên bản 2" in again._message.value
    app._status.value = "in_progress"
    app._owner.value = "Văn phòng"
    app._save.click()
    assert "pi-msg-warning" in app._message.value and "Phòng Tổng hợp" in app._message.value
    with store.session(tenant=TENANT, user=ADMIN) as s:
        assert P.action_plan(s, "D03", 2024).set_index("id").loc[action_id, "owner"] == "Phòng Tổng hợp"
    app._save.click()  # saving again overwrites, knowingly
    assert "phiên bản 3" in app._message.value
    with store.session(tenant=TENANT, user=ADMIN) as s:
        row = P.action_plan(s, "D03", 2024).set_index("id").loc[action_id]
    assert (row["owner"], row["status"]) == ("Văn phòng", "in_progress")
    app._delete.click()
    assert f"Đã xoá hành động #{action_id}" in app._message.value
    with store.session(tenant=TENANT, user=ADMIN) as s:
        assert action_id not in set(P.action_plan(s, "D03", 2024)["id"])


def test_read_only_roles_see_the_plan_and_cannot_write_it(built):
    store, url = built
    with store.session(tenant=TENANT, user=ADMIN) as s:
        P.save_action(s, "D02", 2024, "1.2", action="Báo cáo đúng hạn")
    analyst = PlannerApp(small_env(url, user="vy", unit="D02", year="2024"), store=store)
    analyst._tabs.selected_index = 3
    assert "Báo cáo đúng hạn" in analyst._plan_table.value
    assert analyst._save.disabled and analyst._action.disabled
    assert "chỉ được xem" in analyst._readonly.value
    before = len(P.action_plan(store.session(tenant=TENANT, user=ADMIN), "D02", 2024))
    analyst._action.value = "thử ghi"
    analyst._node.value = "1.2"
    analyst._save.click()  # a browser can click a disabled button: the library refuses
    assert "pi-msg-error" in analyst._message.value and "reads action plans only" in analyst._message.value
    assert len(P.action_plan(store.session(tenant=TENANT, user=ADMIN), "D02", 2024)) == before
    editor = PlannerApp(small_env(url, user="eve", unit="D02", year="2024"), store=store)
    assert editor._save.disabled
    editor._unit.value = "D03"
    assert not editor._save.disabled


def test_the_evidence_pack_downloads(planner, built):
    with built[0].session(tenant=TENANT, user=ADMIN) as s:
        P.save_action(s, "D02", 2024, "2.2", action="<script>alert(1)</script> đúng hạn", owner="=1+1")
    planner._unit.value = "D02"
    planner._tabs.selected_index = 4
    planner._make.click()
    assert "Hồ sơ minh chứng đã sẵn sàng" in planner._message.value
    got = links(planner._downloads.value)
    assert {"ho_so_minh_chung_D02_2024_vi.html", "ho_so_minh_chung_D02_2024_vi.xlsx"} <= set(got)
    page = got["ho_so_minh_chung_D02_2024_vi.html"].decode("utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page
    wb = openpyxl.load_workbook(io.BytesIO(got["ho_so_minh_chung_D02_2024_vi.xlsx"]))
    plan = list(wb["Kế hoạch hành động"].iter_rows(min_row=2, values_only=True))
    assert ["'=1+1"] == [r[4] for r in plan if r[3] and "<script>" in r[3]]
    from parindex_lib.reporting import pdf_available

    if pdf_available():
        assert got["ho_so_minh_chung_D02_2024_vi.pdf"].startswith(b"%PDF-")
    else:
        assert "Chromium" in planner._downloads.value
    planner._lang.value = "en"
    assert planner._make.description == "Make the evidence pack" and planner._downloads.value == ""


def test_the_planner_in_english(built):
    store, url = built
    app = PlannerApp(small_env(url, lang="en", unit="D02", year="2024"), store=store)
    assert "Improvement planning" in app._title.value
    assert "Total " in app._summary.value and "ranked 1 of 2" in app._summary.value
    app._tabs.selected_index = 1
    assert "priority = recoverable × (1 + weight × association)" in app._formula.value
