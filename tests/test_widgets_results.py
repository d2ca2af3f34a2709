"""The results app without a browser: ranks as the library computes them, figures, exports."""

from __future__ import annotations

import base64
import io
import re

import pandas as pd
import pytest

from parindex_lib.results import results_table
from widgets.results import ResultsApp
from widgets.testing import ADMIN, TENANT, small_env, small_store


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    import importlib.util
    from pathlib import Path

    from parindex_lib.framework import read_framework_yaml

    # tests/conftest.py by path: a plain "import conftest" could find tests/browser/conftest.py
    spec = importlib.util.spec_from_file_location("_tests_conftest", Path(__file__).with_name("conftest.py"))
    shared = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shared)
    url = f"sqlite:///{tmp_path_factory.mktemp('results') / 'r.sqlite'}"
    store = small_store(url, read_framework_yaml(shared.SMALL_FRAMEWORK_YAML, "small_test.yaml"))
    return store, url


@pytest.fixture
def app(built):
    store, url = built
    return ResultsApp(small_env(url), store=store)


def table_rows(html: str) -> list[list[str]]:
    body = html.split("<tbody>")[1]
    return [re.findall(r"<td[^>]*>(.*?)</td>", tr) for tr in body.split("</tr>")[:-1]]


def expected(store, kind="department", level="index"):
    with store.session(tenant=TENANT, user=ADMIN) as s:
        scores = s.scores(year=[2023, 2024])
        fws = {f: s.framework(f) for f in scores["framework_id"].unique()}
        units = s.units()
    res = results_table(scores, fws, units, year=2024, level=level, kind=kind)
    return res


def test_the_ranking_table_shows_the_librarys_ranks_among_units_of_a_kind(app, built):
    rows = table_rows(app._table.value)
    exp = expected(built[0])
    assert [(r[1], r[0]) for r in rows] == [(str(c), str(int(k))) for c, k in zip(exp["unit_code"], exp["rank"])]
    assert [r[1] for r in rows] == ["D02", "D03"]
    assert "Xếp hạng trong số các đơn vị cùng loại (Sở, ban, ngành)" in app._note.value


def test_rank_change_is_written_out_and_groups_are_coloured(app):
    html = app._table.value
    assert '<td class="pi-up">tăng 1 bậc</td>' in html and '<td class="pi-down">giảm 1 bậc</td>' in html
    assert re.search(r'<td class="pi-group-(A|B|C|none)">', html)


def test_unit_names_are_escaped(app):
    assert "&lt;img src=x onerror=alert(1)&gt;" in app._table.value and "<img" not in app._table.value


def test_field_level_ranks_per_chosen_field(app, built):
    app._level.value = "field"
    assert app._node.layout.display is None and app._node.value == "1"
    exp = expected(built[0], level="field")
    exp = exp[exp["node_code"] == "1"]
    assert [r[1] for r in table_rows(app._table.value)] == exp["unit_code"].astype(str).tolist()


def test_kind_and_region_filter(app):
    app._kind.value = "commune"
    assert [v for _, v in app._region.options] == ["", "Vùng núi"]
    app._region.value = "Vùng núi"
    assert [r[1] for r in table_rows(app._table.value)] == ["X001"]


@pytest.mark.parametrize("tab,widget", [(1, "_heatmap"), (2, "_distribution"), (3, "_profile")])
def test_figures_are_drawn_and_offered_as_png_and_svg(app, tab, widget):
    app._tabs.selected_index = tab
    assert bytes(getattr(app, widget).value).startswith(b"\x89PNG")
    links = app._exports.value
    assert "pi-export-png" in links and "pi-export-svg" in links and "data:image/svg+xml;base64," in links


def test_the_table_downloads_as_xlsx_with_the_same_ranks(app, built):
    link = re.search(r'class="pi-download pi-export-xlsx" download="([^"]+)" href="data:[^;]+;base64,([^"]+)"',
                     app._exports.value)
    assert link.group(1) == "results_2024_department_index.xlsx"
    df = pd.read_excel(io.BytesIO(base64.b64decode(link.group(2))), engine="openpyxl")
    exp = expected(built[0])
    assert df["unit_code"].tolist() == exp["unit_code"].astype(str).tolist()
    assert df["rank"].tolist() == exp["rank"].astype(int).tolist()


def test_deductions_for_the_group_and_for_one_unit(app):
    app._tabs.selected_index = 4
    assert "Điểm bị trừ bình quân" in app._deductions.value
    app._deduction_scope.value = "D03"
    assert "Điểm bị trừ" in app._deductions.value and "1.2" in app._deductions.value


def test_english(app):
    app._lang.value = "en"
    assert "up 1 place<" in app._table.value and "down 1 place<" in app._table.value
    assert app._tabs.titles[1] == "Heatmap" and app._kind.options[0][0] == "Departments"


def test_a_refresh_shows_what_another_session_saved(sqlite_url, small_framework):
    """Results follow the tenant's data: a colleague's save shows at the next refresh, without a reload."""
    from parindex_lib.store import Store

    store = small_store(sqlite_url, small_framework)
    app = ResultsApp(small_env(sqlite_url), store=store)
    assert [r[1] for r in table_rows(app._table.value)] == ["D02", "D03"]
    colleague = Store(sqlite_url)  # another person's kernel: its own store and session
    with colleague.session(tenant=TENANT, user=ADMIN) as s:
        s.save_score("D01", 2024, "1.2", expected_version=0, self_score=5, explanation="x", reason="test")
    colleague.dispose()
    assert [r[1] for r in table_rows(app._table.value)] == ["D02", "D03"]  # nothing changes by itself
    app.refresh()
    rows = table_rows(app._table.value)
    assert [r[1] for r in rows] == ["D02", "D03", "D01"]
    exp = expected(store)
    assert [(r[1], r[0]) for r in rows] == [(str(c), str(int(k))) for c, k in zip(exp["unit_code"], exp["rank"])]
