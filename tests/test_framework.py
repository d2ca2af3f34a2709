"""Frameworks: the shipped files, every validation rule, and the YAML round trip.

The demo's sums are checked independently of the loader, with exact
fractions over the raw YAML; the official sets against the numbers of their
sources (copied here by hand from the field-level tables).
"""

from __future__ import annotations

import copy
import math
import re
from fractions import Fraction

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parindex_lib.errors import FAILURE_COLUMNS, FrameworkError, FrameworkIncompleteError, ValidationError
from parindex_lib.framework import (
    FRAMEWORK_DIR,
    Framework,
    framework_from_dict,
    framework_to_dict,
    framework_to_yaml,
    load_framework,
    read_framework_yaml,
    shipped_framework_paths,
    shipped_frameworks,
)

SHIPPED = ["bnv_2948_2017_ministry", "bnv_2948_2017_province", "bnv_876_2022_ministry",
           "bnv_876_2022_province", "demo_department_2024"]


# -- the shipped frameworks ---------------------------------------------------------

def test_every_shipped_framework_loads():
    assert sorted(shipped_framework_paths()) == SHIPPED
    loaded = shipped_frameworks()
    assert sorted(loaded) == SHIPPED
    for fid, fw in loaded.items():
        assert isinstance(fw, Framework)
        assert fw.id == fid
        assert fw.max_points == 100
        assert fw.name_vi and fw.name_en and fw.notes
        if fw.status != "demo":
            assert fw.status == "incomplete"
            assert fw.sources, fid
            assert all(s.get("title") for s in fw.sources)
            assert not fw.scorable


def test_892_place_holder_explains_the_import():
    text = (FRAMEWORK_DIR / "bnv_892_2024" / "README.md").read_text(encoding="utf-8")
    assert "892/QĐ-BNV" in text and "5 December 2024" in text and "2024-2030" in text
    assert "parindex framework import" in text
    assert "STT" in text and "Điểm tối đa" in text


def test_876_province_records_what_is_known():
    fw = load_framework("bnv_876_2022_province")
    assert fw.level == "province" and fw.years == (2022, 2023)
    assert fw.legal_basis == "Quyết định 876/QĐ-BNV ngày 10/11/2022"
    assert fw.survey_points == 32
    assert dict(fw.declared_counts) == {"field": 8, "criterion": 37, "subcriterion": 88}
    assert fw.fields["code"].tolist() == [str(i) for i in range(1, 9)]
    assert fw.node("1")["max_points"] == 9.5
    assert fw.fields["max_points"].iloc[1:].isna().all()
    assert "30.5" in fw.notes and "2024" in fw.notes and "unverified" in fw.notes
    assert fw.node("8")["name_vi"].startswith("Tác động")


def test_876_ministry_declares_criteria_per_field():
    fw = load_framework("bnv_876_2022_ministry")
    assert fw.level == "ministry" and fw.survey_points == 31.5
    assert dict(fw.declared_counts) == {"field": 7, "criterion": 38, "subcriterion": 97}
    assert fw.fields["declared_children"].tolist() == [7, 9, 6, 4, 6, 3, 3]
    assert sum(fw.fields["declared_children"]) == 38
    assert fw.fields["max_points"].isna().all()
    assert fw.node("7")["name_vi"] == "Xây dựng và phát triển Chính phủ điện tử, Chính phủ số"


@pytest.mark.parametrize("fid, maxima, n_criteria, counts", [
    ("bnv_2948_2017_province", [10, 10, 14.5, 11, 16, 7, 16, 15.5], [6, 4, 5, 4, 9, 3, 5, 3],
     {"field": 8, "subcriterion": 81}),
    ("bnv_2948_2017_ministry", [12, 17, 16, 13, 17, 7.5, 17.5], [6, 6, 5, 4, 8, 3, 5],
     {"field": 7, "criterion": 37, "subcriterion": 79}),
])
def test_2948_field_tables_match_the_source(fid, maxima, n_criteria, counts):
    fw = load_framework(fid)
    assert fw.fields["max_points"].tolist() == maxima
    assert sum(Fraction(str(m)) for m in maxima) == 100
    assert fw.fields["declared_children"].tolist() == n_criteria
    assert dict(fw.declared_counts) == counts
    assert fw.unknown_points() == []


def test_2948_province_notes_the_38_or_39_criteria():
    fw = load_framework("bnv_2948_2017_province")
    assert "criterion" not in dict(fw.declared_counts)
    assert "38" in fw.notes and "39" in fw.notes


@pytest.mark.parametrize("fid, first_codes", [
    ("bnv_876_2022_province", ["2", "3", "4", "5", "6", "7", "8"]),
    ("bnv_876_2022_ministry", ["1", "2", "3", "4", "5", "6", "7"]),
])
def test_unknown_points_refuse_to_score_naming_the_nodes(fid, first_codes):
    fw = load_framework(fid)
    with pytest.raises(FrameworkIncompleteError) as info:
        fw.require_scorable()
    assert info.value.codes == first_codes
    assert info.value.framework_id == fid
    assert "parindex framework import" in str(info.value)


@pytest.mark.parametrize("fid, declared", [
    ("bnv_2948_2017_province", "subcriteria: declared 81, given 0"),
    ("bnv_2948_2017_ministry", "subcriteria: declared 79, given 0"),
])
def test_missing_children_refuse_to_score_naming_the_nodes(fid, declared):
    fw = load_framework(fid)
    with pytest.raises(FrameworkIncompleteError) as info:
        fw.require_scorable()
    codes = info.value.codes
    assert codes[: len(fw.fields)] == fw.fields["code"].tolist()
    assert declared in codes


# -- the demo, checked with exact fractions over the raw YAML ----------------------

@pytest.fixture(scope="module")
def demo_raw() -> dict:
    return yaml.safe_load((FRAMEWORK_DIR / "demo_department_2024.yaml").read_text(encoding="utf-8"))


def _walk(nodes, depth=1, parent=None):
    for n in nodes:
        yield n, depth, parent
        yield from _walk(n.get("children") or [], depth + 1, n)


def test_demo_shape_and_exact_sums(demo_raw):
    nodes = list(_walk(demo_raw["nodes"]))
    by_depth = {d: [n for n, dd, _ in nodes if dd == d] for d in (1, 2, 3)}
    assert [len(by_depth[d]) for d in (1, 2, 3)] == [8, 37, 88]
    assert max(d for _, d, _ in nodes) == 3
    pts = {n["code"]: Fraction(str(n["max_points"])) for n, _, _ in nodes}
    for n, depth, parent in nodes:
        code = n["code"]
        assert re.fullmatch(r"\d+(\.\d+){%d}" % (depth - 1), code), code
        if parent is not None:
            assert code.rsplit(".", 1)[0] == parent["code"]
        assert (pts[code] * 4).denominator == 1, f"{code}: points in quarters"
        kids = n.get("children") or []
        if kids:
            assert sum(pts[k["code"]] for k in kids) == pts[code], code
    assert sum(pts[n["code"]] for n in by_depth[1]) == 100 == Fraction(demo_raw["max_points"])
    assert pts["1"] == Fraction(19, 2)
    assert any(p.denominator == 2 for p in pts.values()) and any(p.denominator == 4 for p in pts.values())


def test_demo_survey_rubrics_and_guidance(demo_raw):
    nodes = [n for n, _, _ in _walk(demo_raw["nodes"])]
    leaves = [n for n in nodes if not n.get("children")]
    survey = [n for n in leaves if n.get("assessed_by") == "survey"]
    survey_total = sum(Fraction(str(n["max_points"])) for n in survey)
    assert 20 <= survey_total <= 32
    assert survey_total == Fraction(str(demo_raw["survey_points"]))
    field8 = [n for n in survey if n["code"].startswith("8")]
    field8_pts = Fraction(str(demo_raw["nodes"][7]["max_points"]))
    assert sum(Fraction(str(n["max_points"])) for n in field8) > field8_pts / 2
    assert {n.get("assessed_by", "self") for n in leaves} == {"self", "survey"}
    for n in leaves:
        assert n.get("guidance_vi") and n.get("guidance_en"), n["code"]
        assert n.get("name_en"), n["code"]
    rubric = [n for n in nodes if n.get("rubric")]
    assert 12 <= len(rubric) <= 20
    for n in rubric:
        levels = [Fraction(str(lv["points"])) for lv in n["rubric"]]
        assert max(levels) == Fraction(str(n["max_points"])) and min(levels) == 0
    assert any(">90%" in n["guidance_vi"] for n in leaves)
    assert any("Ban hành đúng hạn" in n["guidance_vi"] for n in leaves)


def test_demo_says_it_is_a_demo():
    fw = load_framework("demo_department_2024")
    assert fw.status == "demo"
    assert fw.name_vi.startswith("[DEMO] ") and fw.name_en.startswith("[DEMO] ")
    assert "KHÔNG phải bộ tiêu chí chính thức" in fw.notes
    assert "NOT an official framework" in fw.notes
    assert fw.level == "department" and fw.kinds == ("department", "commune")
    assert fw.years == (2022, 2023, 2024)
    assert (fw.bonus_cap, fw.penalty_cap) == (2, 3)
    assert fw.counts() == {"field": 8, "criterion": 37, "subcriterion": 88}
    fw.require_scorable()
    assert fw.scorable


# -- every validation rule -----------------------------------------------------------

def _base() -> dict:
    return {
        "id": "t", "name_vi": "Thử", "level": "department", "max_points": 10, "years": [2024],
        "nodes": [
            {"code": "1", "name_vi": "LV 1", "max_points": 6, "children": [
                {"code": "1.1", "name_vi": "TC 1.1", "max_points": 4, "children": [
                    {"code": "1.1.1", "name_vi": "TP 1.1.1", "max_points": 1,
                     "rubric": [{"points": 1, "label_vi": "Có"}, {"points": 0, "label_vi": "Không"}]},
                    {"code": "1.1.2", "name_vi": "TP 1.1.2", "max_points": 3}]},
                {"code": "1.2", "name_vi": "TC 1.2", "max_points": 2}]},
            {"code": "2", "name_vi": "LV 2", "max_points": 4, "children": [
                {"code": "2.1", "name_vi": "TC 2.1", "max_points": 4, "assessed_by": "survey"}]},
        ],
    }


def _leaf(d: dict) -> dict:
    return d["nodes"][0]["children"][0]["children"][0]


def _set(path, value):
    def mutate(d):
        target = d
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
    return mutate


CASES = {
    # id: (mutation, failing column, words of the expected text)
    "not an id": (_set(["id"], "Bad Id"), "id", "lower-case"),
    "no name": (_set(["name_vi"], ""), "name_vi", "Vietnamese name"),
    "bad level": (_set(["level"], "county"), "level", "ministry, province"),
    "bad status": (_set(["status"], "final"), "status", "complete, incomplete, demo"),
    "total not a number": (_set(["max_points"], "trăm"), "max_points", "declared total"),
    "bad years": (_set(["years"], [2024, "next"]), "years", "list of years"),
    "band without min": (_set(["bands"], [{"group": "A"}]), "bands", "{group: A, min_pct: 90}"),
    "bands ascending": (_set(["bands"], [{"group": "A", "min_pct": 70}, {"group": "B", "min_pct": 90}]),
                        "bands", "highest first"),
    "bands twice": (_set(["bands"], [{"group": "A", "min_pct": 90}, {"group": "A", "min_pct": 80}]),
                    "bands", "distinct group names"),
    "negative cap": (_set(["bonus_cap"], -1), "bonus_cap", ">= 0"),
    "cap not a number": (_set(["penalty_cap"], "ba"), "penalty_cap", ">= 0"),
    "bad kinds": (_set(["kinds"], ["department", "village"]), "kinds", "unit kinds"),
    "bad declared_counts": (_set(["declared_counts"], {"leaf": 3}), "declared_counts", "{field: 8"),
    "no nodes": (_set(["nodes"], []), "nodes", "list of fields"),
    "children not a list": (_set(["nodes", 1, "children"], {"code": "2.1"}), "children", "list of nodes"),
    "node not a mapping": (_set(["nodes", 1, "children"], ["2.1"]), "node", "mapping"),
    "no code": (_set(["nodes", 1, "code"], None), "code", "node code"),
    "bad code prefix": (_set(["nodes", 1, "children", 0, "code"], "3.1"), "code", "starting with '2.'"),
    "four levels": (_set(["nodes", 1, "children", 0, "children"], [
        {"code": "2.1.1", "name_vi": "x", "max_points": 4,
         "children": [{"code": "2.1.1.1", "name_vi": "y", "max_points": 4}]}]), "code", "three levels"),
    "node without name": (_set(["nodes", 0, "children", 1, "name_vi"], None), "name_vi", "node 1.2"),
    "negative points": (_set(["nodes", 0, "children", 1, "max_points"], -2), "max_points", ">= 0"),
    "points not a number": (_set(["nodes", 0, "children", 1, "max_points"], "hai"), "max_points", "number of points"),
    "bad assessed_by": (_set(["nodes", 1, "children", 0, "assessed_by"], "council"), "assessed_by", "self, survey, computed"),
    "rubric level without points": (lambda d: _leaf(d)["rubric"].append({"label_vi": "?"}), "rubric", "{points: 1"),
    "rubric out of range": (lambda d: _leaf(d)["rubric"].append({"points": 2, "label_vi": "Quá"}), "rubric", "between 0 and 1"),
    "rubric best below max": (lambda d: _leaf(d).update(rubric=[{"points": 0.5, "label_vi": "Nửa"}]), "rubric", "best rubric level"),
    "rubric on a parent": (_set(["nodes", 0, "rubric"], [{"points": 6, "label_vi": "Đủ"}]), "rubric", "rubrics belong on leaves"),
    "bad declared_children": (_set(["nodes", 0, "declared_children"], -1), "declared_children", "whole number"),
    "unknown key": (_set(["nodes", 0, "weight"], 2), "weight", "only the keys documented"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_rule_reports_its_failure(case):
    mutate, column, expected = CASES[case]
    data = copy.deepcopy(_base())
    mutate(data)
    with pytest.raises(FrameworkError) as info:
        read_framework_yaml(yaml.safe_dump(data, allow_unicode=True), "case.yaml")
    table = info.value.failures
    assert list(table.columns) == FAILURE_COLUMNS
    hits = table[table["column"] == column]
    assert len(hits) >= 1, table
    assert any(expected in e for e in hits["expected"]), hits["expected"].tolist()
    assert (table["file"] == "case.yaml").all()
    assert isinstance(info.value, ValidationError)


def test_the_base_case_is_valid():
    fw = framework_from_dict(_base())
    assert fw.scorable and fw.counts() == {"field": 2, "criterion": 3, "subcriterion": 2}


def test_duplicate_codes_name_every_position():
    data = _base()
    data["nodes"][0]["children"][1]["code"] = "1.1"
    with pytest.raises(FrameworkError) as info:
        framework_from_dict(data, "dup.yaml")
    row = info.value.failures.query("column == 'code'").iloc[0]
    assert row["value"] == "1.1" and row["row"] == "1, 4"
    assert "used 2 times" in row["expected"]


def test_parent_sum_mismatch_shows_the_sum():
    data = _base()
    data["nodes"][0]["children"][0]["max_points"] = 5
    data["nodes"][0]["max_points"] = 7
    data["max_points"] = 11
    with pytest.raises(FrameworkError) as info:
        framework_from_dict(data, "sum.yaml")
    table = info.value.failures
    assert len(table) == 1
    assert table.iloc[0]["row"] == 1 and table.iloc[0]["value"] == 5.0
    assert "1.1.1 1 + 1.1.2 3 = 4" in table.iloc[0]["expected"]


def test_total_mismatch():
    data = _base()
    data["max_points"] = 100
    with pytest.raises(FrameworkError) as info:
        framework_from_dict(data, "total.yaml")
    table = info.value.failures
    assert len(table) == 1 and table.iloc[0]["column"] == "max_points"
    assert "sum of the fields (10)" in table.iloc[0]["expected"]


def test_unknown_points_load_but_refuse_to_score():
    data = _base()
    data["nodes"][0]["children"][1]["max_points"] = None
    data["nodes"][0]["max_points"] = None
    fw = framework_from_dict(data)
    assert fw.unknown_points() == ["1", "1.2"]
    with pytest.raises(FrameworkIncompleteError) as info:
        fw.require_scorable()
    assert info.value.codes == ["1", "1.2"]


def test_declared_children_and_counts_make_it_incomplete():
    data = _base()
    data["nodes"][1]["children"][0]["declared_children"] = 3
    data["declared_counts"] = {"field": 2, "criterion": 3, "subcriterion": 5}
    fw = framework_from_dict(data)
    assert fw.missing_children() == ["2.1", "subcriteria: declared 5, given 2"]
    with pytest.raises(FrameworkIncompleteError) as info:
        fw.require_scorable()
    assert info.value.codes == ["2.1", "subcriteria: declared 5, given 2"]


def test_not_a_mapping():
    with pytest.raises(FrameworkError) as info:
        read_framework_yaml("- just\n- a list\n", "list.yaml")
    assert info.value.failures.iloc[0]["value"] == "list"


def test_yaml_syntax_error_gives_the_line():
    text = "id: t\nname_vi: Thử\nnodes:\n  - code: \"1\"\n    name_vi: [unclosed\n    max_points: 1\n"
    with pytest.raises(FrameworkError) as info:
        read_framework_yaml(text, "broken.yaml")
    table = info.value.failures
    assert len(table) == 1
    assert table.iloc[0]["file"] == "broken.yaml"
    assert table.iloc[0]["row"] == 6
    assert "valid YAML" in table.iloc[0]["expected"]
    assert "broken.yaml" in str(info.value)


def test_missing_file_lists_the_shipped_ids(tmp_path):
    with pytest.raises(FrameworkError) as info:
        load_framework(tmp_path / "nowhere.yaml")
    assert "demo_department_2024" in info.value.failures.iloc[0]["expected"]


def test_three_errors_give_three_rows():
    data = _base()
    data["level"] = "county"                              # 1: bad level
    data["nodes"][0]["children"][1]["code"] = "1.1"       # 2: duplicate code
    data["nodes"][1]["children"][0]["max_points"] = 3     # 3: 2.1 (3) != field 2 (4)
    with pytest.raises(FrameworkError) as info:
        read_framework_yaml(yaml.safe_dump(data, allow_unicode=True), "three.yaml")
    table = info.value.failures
    assert len(table) == 3, table
    assert sorted(table["column"]) == ["code", "level", "max_points"]
    assert "(3 problems)" in str(info.value)


# -- YAML round trip -----------------------------------------------------------------

_WORDS = st.sampled_from(["Kế hoạch", "CCHC", "một cửa", "yes", "null", "1.5", "a: b", "# x", "- y",
                          "\"q\"", "'s'", "Đánh giá", "100%", "tỷ lệ >90%", "ĐT XHH", "~", "on"])
_TEXT = st.lists(_WORDS, min_size=1, max_size=4).map(" ".join)
_POINTS = st.one_of(st.integers(0, 40).map(lambda k: k / 4), st.integers(0, 50).map(lambda k: k / 10))


@st.composite
def _trees(draw, depth=1, prefix="", max_children=4):
    n = draw(st.integers(1 if depth == 1 else 0, max_children))
    out = []
    for i in range(1, n + 1):
        code = f"{prefix}{i}"
        node = {"code": code, "name_vi": draw(_TEXT)}
        if draw(st.booleans()):
            node["name_en"] = draw(_TEXT)
        kids = draw(_trees(depth + 1, code + ".", 3)) if depth < 3 else []
        if kids:
            node["children"] = kids
            node["max_points"] = math.fsum(k["max_points"] for k in kids)
            if draw(st.booleans()):
                node["declared_children"] = len(kids)
        else:
            node["max_points"] = draw(_POINTS)
            node["assessed_by"] = draw(st.sampled_from(["self", "survey", "computed"]))
            if draw(st.booleans()):
                node["evidence_required"] = draw(st.booleans())
            if draw(st.booleans()):
                node["guidance_vi"] = draw(_TEXT)
                node["guidance_en"] = draw(_TEXT)
            if draw(st.booleans()):
                low = draw(st.lists(st.integers(0, 3).map(lambda k: node["max_points"] * k / 4), max_size=3))
                node["rubric"] = [{"points": p, "label_vi": draw(_TEXT), "label_en": draw(_TEXT)}
                                  for p in [node["max_points"], *low]]
        out.append(node)
    return out


@st.composite
def _framework_dicts(draw):
    nodes = draw(_trees())
    total = math.fsum(n["max_points"] for n in nodes)
    data = {"id": draw(st.from_regex(r"[a-z0-9_]{1,12}", fullmatch=True)), "name_vi": draw(_TEXT),
            "level": draw(st.sampled_from(["ministry", "province", "department", "district", "commune"])),
            "max_points": total, "status": draw(st.sampled_from(["complete", "incomplete", "demo"])),
            "years": draw(st.lists(st.integers(1995, 2050), max_size=3)), "nodes": nodes}
    if draw(st.booleans()):
        data["name_en"] = draw(_TEXT)
        data["legal_basis"] = draw(_TEXT)
        data["notes"] = draw(_TEXT)
        data["sources"] = [{"title": draw(_TEXT), "url": "https://example.org/a?b=1"}]
    if draw(st.booleans()):
        data["bonus_cap"] = draw(_POINTS)
        data["penalty_cap"] = draw(_POINTS)
        data["survey_points"] = draw(_POINTS)
    if draw(st.booleans()):
        data["bands"] = [{"group": "A", "min_pct": 85.5}, {"group": "B", "min_pct": 60}]
    if draw(st.booleans()):
        data["kinds"] = draw(st.lists(st.sampled_from(["department", "district", "commune"]),
                                      min_size=1, max_size=3, unique=True))
    if draw(st.booleans()):
        fw = framework_from_dict(data)
        data["declared_counts"] = {k: v for k, v in fw.counts().items() if v}
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_framework_dicts())
def test_yaml_round_trip_keeps_every_node(data):
    fw = framework_from_dict(data, "random.yaml")
    back = read_framework_yaml(framework_to_yaml(fw), "back.yaml")
    assert back == fw
    pd.testing.assert_frame_equal(back.nodes, fw.nodes)
    assert framework_to_dict(back) == framework_to_dict(fw)


def test_round_trip_of_every_shipped_framework():
    for fw in shipped_frameworks().values():
        back = read_framework_yaml(framework_to_yaml(fw), f"{fw.id}.yaml")
        assert back == fw
        pd.testing.assert_frame_equal(back.nodes, fw.nodes)


def test_a_frameworks_own_node_table_rebuilds_it():
    """framework_from_nodes accepts the in-memory shapes (rubric tuples, tuples of years, kinds, bands)."""
    from parindex_lib.framework import framework_from_nodes

    fw = load_framework("demo_department_2024")
    again = framework_from_nodes(fw.nodes, id=fw.id, name_vi=fw.name_vi, level=fw.level, max_points=fw.max_points,
                                 years=fw.years, kinds=fw.kinds, bands=fw.bands, declared_counts=fw.declared_counts,
                                 bonus_cap=fw.bonus_cap, penalty_cap=fw.penalty_cap)
    pd.testing.assert_frame_equal(again.nodes, fw.nodes)
    assert (again.years, again.kinds, again.bands) == (fw.years, fw.kinds, fw.bands)
    assert again.leaves["rubric"].notna().sum() == 16


def test_booleans_are_not_years():
    with pytest.raises(FrameworkError) as info:
        read_framework_yaml("id: t\nname_vi: T\nlevel: commune\nmax_points: 1\nyears: [true]\n"
                            "nodes: [{code: '1', name_vi: A, max_points: 1}]\n")
    assert info.value.failures["column"].tolist() == ["years"]
