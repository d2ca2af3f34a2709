"""The evidence pack: what it shows is what the library computes, nothing escapes, nothing is fetched."""

from __future__ import annotations

import io
import re

import numpy as np
import openpyxl
import pandas as pd
import pytest

from parindex_lib import planning as P
from parindex_lib import reporting as R
from parindex_lib.correlation import correlate
from parindex_lib.errors import ParindexError, ValidationError
from parindex_lib.results import results_table
from parindex_lib.store import Store
from widgets.testing import self_scores

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(2)>'
UNIT_XSS = "<b onmouseover=alert(3)>Sở Xấu</b>"


@pytest.fixture
def store(sqlite_url, small_framework):
    store = Store(sqlite_url)
    store.create_tenant("t1", "Sở Nội vụ thử", admin_user="ana")
    store.add_shared_framework(small_framework)
    units = pd.DataFrame({"code": ["D1", "D2", "D3", "D4", "X1"],
                          "name": ["Sở Tư pháp", "Sở Y tế", UNIT_XSS, "Sở Xây dựng", "Xã An Lợi"],
                          "kind": ["department"] * 4 + ["commune"]})
    with store.session(tenant="t1", user="ana") as s:
        s.upsert_units(units)
        for code, share, before in (("D1", 0.5, 0.6), ("D2", 0.7, 0.5), ("D3", 0.9, 0.9), ("D4", 0.6, 0.7),
                                    ("X1", 1.0, 1.0)):
            s.write_scores(self_scores(small_framework, code, 2023, before), framework_id=small_framework.id,
                           source="test")
            s.write_scores(self_scores(small_framework, code, 2024, share), framework_id=small_framework.id,
                           source="test")
        P.save_action(s, "D1", 2024, "1.2", action=HOSTILE, owner="=HYPERLINK(\"http://x\")", deadline="2025-06-30",
                      gap=1.5)
    yield store
    store.dispose()


@pytest.fixture
def study():
    rng = np.random.default_rng(11)
    n = 30
    base = rng.normal(size=n)
    wide = pd.DataFrame({"province_code": [f"{i:02d}" for i in range(n)], "year": 2024,
                         "PAR:total": base + rng.normal(scale=0.3, size=n),
                         "PAR:field1": base + rng.normal(scale=0.8, size=n),
                         "PAR:field2": rng.normal(size=n),
                         "PCI:total": base + rng.normal(scale=0.5, size=n),
                         "SIPAS:total": base + rng.normal(scale=0.5, size=n)})
    return correlate(wide, ["PAR:total", "PAR:field1", "PAR:field2"], ["PCI:total", "SIPAS:total"])


def parsed_tags(page: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every start tag of a page and its attributes, as a browser's parser sees them."""
    from html.parser import HTMLParser

    found: list[tuple[str, list[tuple[str, str]]]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, [(a, v or "") for a, v in attrs]))

    Collect().feed(page)
    return found


def expected_results(store, small_framework):
    with store.session(tenant="t1", user="ana") as s:
        scores = s.scores(year=[2023, 2024])
        units = s.units()
    return results_table(scores, small_framework, units, year=2024, level=None, kind="department"), units


def test_the_pack_holds_what_the_planning_functions_compute(store, small_framework, study):
    res, units = expected_results(store, small_framework)
    with store.session(tenant="t1", user="ana") as s:
        pack = R.collect_evidence(s, "D1", 2024, correlation=study, association_y="PCI:total",
                                  association_source="test study")
    lost = P.points_lost(res, "D1", 2024, level="leaf", framework=small_framework)
    pd.testing.assert_frame_equal(pack.points_lost, lost)
    assoc = P.association_by_field(study, y="PCI:total")
    assert pack.associations == assoc and set(assoc) == {"total", "1", "2"}
    pd.testing.assert_frame_equal(pack.priorities, P.priority(lost, assoc))
    # communes are not compared with departments
    assert pack.kind == "department" and pack.units == 4
    # the profile: median and best index (%) of each field, recomputed
    fields = res[res["level"] == "field"]
    med = fields.groupby(fields["node_code"].astype(str), observed=True)["index_pct"].median()
    best = fields.groupby(fields["node_code"].astype(str), observed=True)["index_pct"].max()
    prof = pack.profile.set_index("node_code")
    for f in ("1", "2"):
        assert prof.loc[f, "median_index_pct"] == pytest.approx(med[f])
        assert prof.loc[f, "best_index_pct"] == pytest.approx(best[f])
    total = res[(res["node_code"] == "total") & (res["unit_code"] == "D1")].iloc[0]
    assert prof.loc["total", "points"] == total["points"] and prof.loc["total", "rank"] == total["rank"] == 4
    # default targets: the top group (D1 is not in it) and one place up
    goals = [(g["goal"], g["group"], g["rank"]) for g in pack.targets]
    assert goals == [("group", "A", None), ("rank", None, 3)]
    for g in pack.targets:
        again = P.target(res, "D1", 2024, framework=small_framework,
                         **({"group": g["group"]} if g["goal"] == "group" else {"rank": g["rank"]}))
        assert again["points_needed"] == g["points_needed"]
        pd.testing.assert_frame_equal(again["nodes"], g["nodes"])
    assert pack.action_plan["action"].tolist() == [HOSTILE]


def test_tables_in_hand_give_the_same_pack_as_a_session(store, small_framework):
    res, units = expected_results(store, small_framework)
    with store.session(tenant="t1", user="ana") as s:
        from_session = R.collect_evidence(s, "D2", 2024)
        plan = P.action_plan(s, "D2", 2024)
    from_tables = R.build_evidence_pack(res, small_framework, units, "D2", 2024, action_plan=plan)
    for name in ("profile", "points_lost", "priorities"):
        pd.testing.assert_frame_equal(getattr(from_session, name), getattr(from_tables, name))
    html = R.evidence_pack_html({"results": res, "framework": small_framework, "units": units}, "D2", 2024)
    assert "Sở Y tế" in html
    with pytest.raises(ValidationError, match="another unit or year"):
        R.evidence_pack_html(from_tables, "D1", 2024)
    with pytest.raises(ValidationError, match="tables missing"):
        R.evidence_pack_html({"results": res}, "D2", 2024)


def test_the_html_is_self_contained_and_escapes_every_text(store, study):
    with store.session(tenant="t1", user="ana") as s:
        page = R.evidence_pack_html(s, "D3", 2024, correlation=study)  # D3 is the unit named like HTML
        plan_page = R.evidence_pack_html(s, "D1", 2024)
    for html in (page, plan_page):
        tags = parsed_tags(html)
        assert {"script", "iframe", "object", "embed", "link", "b"}.isdisjoint(t for t, _ in tags)
        assert not [a for _, attrs in tags for a, _ in attrs if a.startswith("on")]  # no event handler anywhere
        assert not [v for _, attrs in tags for a, v in attrs if a in ("src", "href") and not v.startswith("data:")]
        assert "<link" not in html and "@import" not in html
        images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
        assert images and all(len(i) > 1000 for i in images)
    assert "&lt;b onmouseover=alert(3)&gt;Sở Xấu&lt;/b&gt;" in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(2)&gt;" in plan_page
    # D3 is the best unit: nothing to recover, so no priority figure; D1 has one, and no study was given
    assert re.findall(r'<figure class="fig-(\w+)"', page) == ["profile", "correlation"]
    assert re.findall(r'<figure class="fig-(\w+)"', plan_page) == ["profile", "priority"]


def test_the_html_shows_the_formula_targets_plan_and_numbers_in_vietnamese_and_english(store, small_framework):
    res, _ = expected_results(store, small_framework)
    with store.session(tenant="t1", user="ana") as s:
        pack = R.collect_evidence(s, "D1", 2024, goals=[{"rank": 1}])
    vi = R.evidence_pack_html(pack)
    en = R.evidence_pack_html(pack, lang="en")
    assert vi.startswith("<!DOCTYPE html>") and '<html lang="vi">' in vi and '<html lang="en">' in en
    assert "Hồ sơ minh chứng cải thiện Chỉ số CCHC" in vi and "Evidence pack for improving the PAR INDEX" in en
    assert "ưu tiên = điểm có thể gỡ × (1 + trọng số × độ liên hệ)" in vi
    assert "priority = recoverable × (1 + weight × association)" in en
    tot = res[res["node_code"] == "total"].set_index("unit_code")["points"]
    needed = tot["D3"] - tot["D1"]
    assert pack.targets[0]["points_needed"] == pytest.approx(needed)
    vi_needed = f"{needed:.2f}".rstrip("0").rstrip(".").replace(".", ",")
    assert f"cần thêm {vi_needed} điểm" in vi
    assert f"{f'{needed:.2f}'.rstrip('0').rstrip('.')} more points are needed" in en
    assert "Kế hoạch hành động" in vi and "2025-06-30" in vi and "Đã lên kế hoạch" in vi and "Planned" in en
    assert "Tổng điểm " in vi and "xếp hạng 4/4" in vi and "ranked 4 of 4" in en
    # no correlation given: no correlation section, no SIPAS caveat
    assert "6. Tương quan" not in vi and "SIPAS là một phần" not in vi


def test_the_sipas_caveat_stands_beside_any_par_sipas_result(store, study):
    with store.session(tenant="t1", user="ana") as s:
        with_sipas = R.evidence_pack_html(s, "D2", 2024, correlation=study)
        only_pci = R.evidence_pack_html(s, "D2", 2024, correlation=study[study["y"] == "PCI:total"], lang="en")
    assert "6. Tương quan với chỉ số bên ngoài" in with_sipas
    assert "SIPAS là một phần của lĩnh vực 8" in with_sipas
    assert "6. Correlation with external indices" in only_pci and "SIPAS is part of PAR field 8" not in only_pci


def test_the_workbook_has_every_table_unrounded_and_the_figures(store, study, tmp_path):
    with store.session(tenant="t1", user="ana") as s:
        pack = R.collect_evidence(s, "D1", 2024, correlation=study, association_y="PCI:total")
    data = R.evidence_pack_xlsx(pack)
    path = tmp_path / "pack.xlsx"
    assert R.evidence_pack_xlsx(pack, path=path) is None and path.stat().st_size > 10_000
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Tổng quan", "Kết quả", "Điểm bị trừ", "Ưu tiên", "Mục tiêu", "Kế hoạch hành động",
                             "Tương quan", "Hình"]
    lost = wb["Điểm bị trừ"]
    head = [c.value for c in lost[1]]
    assert head[:5] == ["Mã", "Nội dung", "Điểm tối đa", "Điểm", "Điểm bị trừ"]
    rows = list(lost.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == pack.points_lost["node_code"].tolist()
    assert [r[4] for r in rows] == pytest.approx(pack.points_lost["points_lost"].tolist())
    prio = list(wb["Ưu tiên"].iter_rows(min_row=2, values_only=True))
    assert [r[5] for r in prio] == pytest.approx(pack.priorities["priority"].tolist())
    plan = list(wb["Kế hoạch hành động"].iter_rows(min_row=2, values_only=True))
    assert plan[0][3] == HOSTILE and plan[0][4] == "'=HYPERLINK(\"http://x\")"  # text, never a formula
    summary = [r for r in wb["Tổng quan"].iter_rows(values_only=True)]
    assert any(r[0] == "Công thức ưu tiên" and r[1].startswith("ưu tiên = ") for r in summary)
    corr = list(wb["Tương quan"].iter_rows(min_row=2, values_only=True))
    assert [r[5] for r in corr] == pytest.approx(study["r"].tolist())
    assert len(wb["Hình"]._images) == 3
    en = openpyxl.load_workbook(io.BytesIO(R.evidence_pack_xlsx(pack, lang="en")))
    assert en.sheetnames[:3] == ["Summary", "Results", "Points lost"]


def test_pdf_is_printed_by_chromium_or_refused_clearly(store, monkeypatch, tmp_path):
    with store.session(tenant="t1", user="ana") as s:
        pack = R.collect_evidence(s, "D1", 2024)
    monkeypatch.setenv("PARINDEX_CHROMIUM", str(tmp_path / "no-such-chromium"))
    assert R.pdf_available() is None
    with pytest.raises(ParindexError, match="apt-get install chromium"):
        R.evidence_pack_pdf(pack)
    monkeypatch.delenv("PARINDEX_CHROMIUM")
    if R.pdf_available() is None:
        pytest.skip("no Chromium here: the PDF path is checked only for its refusal")
    out = tmp_path / "pack.pdf"
    R.evidence_pack_pdf(pack, path=out, lang="en")
    assert out.read_bytes().startswith(b"%PDF-") and out.stat().st_size > 20_000
