"""roll_up checked against a hand-worked example and a plain-Python recomputation."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parindex_lib.aggregation import RESULT_COLUMNS, leaf_points, roll_up
from parindex_lib.errors import FrameworkIncompleteError, ValidationError
from parindex_lib.framework import Framework, framework_from_nodes, read_framework_yaml

NAN = math.nan

# A tiny framework, worth 10 points:
#   1   field (6)     1.1 criterion (4): 1.1.1 (2), 1.1.2 (2)
#                     1.2 criterion (2), a leaf (no subcriteria)
#   2   field (4)     2.1 criterion (4): 2.1.1 (1), 2.1.2 (3, survey)
# bonus capped at 1, penalty at 0.5.
HAND_YAML = """
id: hand
name_vi: Bộ tiêu chí thử
level: department
max_points: 10
bonus_cap: 1
penalty_cap: 0.5
nodes:
  - {code: "1", name_vi: Lĩnh vực 1, max_points: 6, children: [
      {code: "1.1", name_vi: Tiêu chí 1.1, max_points: 4, children: [
         {code: "1.1.1", name_vi: TP 1.1.1, max_points: 2},
         {code: "1.1.2", name_vi: TP 1.1.2, max_points: 2}]},
      {code: "1.2", name_vi: Tiêu chí 1.2, max_points: 2}]}
  - {code: "2", name_vi: Lĩnh vực 2, max_points: 4, children: [
      {code: "2.1", name_vi: Tiêu chí 2.1, max_points: 4, children: [
         {code: "2.1.1", name_vi: TP 2.1.1, max_points: 1},
         {code: "2.1.2", name_vi: TP 2.1.2, max_points: 3, assessed_by: survey}]}]}
"""


def hand_framework() -> Framework:
    return read_framework_yaml(HAND_YAML, "hand.yaml")


def hand_scores() -> pd.DataFrame:
    cols = ["unit_code", "year", "node_code", "self_score", "appraised_score", "survey_points", "bonus", "penalty"]
    rows = [
        # A 2023: appraisal overrides self; 0.1 + 0.2 must give 0.3; bonus 1.2 capped at 1
        ("A", 2023, "1.1.1", 2, 1.5, NAN, 0.6, 0.3),
        ("A", 2023, "1.1.2", 1, NAN, NAN, 0.6, NAN),
        ("A", 2023, "1.2", 2, 2, NAN, NAN, NAN),
        ("A", 2023, "2.1.1", 0.1, NAN, NAN, NAN, NAN),
        ("A", 2023, "2.1.2", NAN, NAN, 0.2, NAN, NAN),
        # B 2023: 1.1.1 entered empty, 1.2 has no row at all
        ("B", 2023, "1.1.1", NAN, NAN, NAN, NAN, NAN),
        ("B", 2023, "1.1.2", NAN, 2, NAN, NAN, NAN),
        ("B", 2023, "2.1.1", 1, NAN, NAN, NAN, NAN),
        ("B", 2023, "2.1.2", NAN, NAN, 3, NAN, NAN),
        # A and B 2024 tie at 8; C 2024 scores 0 on one leaf only
        ("A", 2024, "1.1.1", 2, NAN, NAN, NAN, NAN),
        ("A", 2024, "1.1.2", 2, NAN, NAN, NAN, NAN),
        ("A", 2024, "1.2", 2, NAN, NAN, NAN, NAN),
        ("A", 2024, "2.1.1", 1, NAN, NAN, NAN, NAN),
        ("A", 2024, "2.1.2", NAN, NAN, 1, NAN, NAN),
        ("B", 2024, "1.1.1", 2, NAN, NAN, NAN, NAN),
        ("B", 2024, "1.1.2", 2, NAN, NAN, NAN, NAN),
        ("B", 2024, "1.2", 1, NAN, NAN, NAN, NAN),
        ("B", 2024, "2.1.1", 1, NAN, NAN, NAN, NAN),
        ("B", 2024, "2.1.2", NAN, NAN, 2, NAN, NAN),
        ("C", 2024, "1.2", 0, NAN, NAN, NAN, NAN),
    ]
    return pd.DataFrame(rows, columns=cols)


# Worked by hand: (unit, year, node) -> (points, max_points, index_pct, coverage)
HAND_EXPECTED = {
    ("A", 2023, "total"): (5.5, 10, 55.0, 1.0),     # 4.5 + 0.3 + min(1.2, 1) - 0.3
    ("A", 2023, "1"): (4.5, 6, 75.0, 1.0),
    ("A", 2023, "1.1"): (2.5, 4, 62.5, 1.0),
    ("A", 2023, "1.1.1"): (1.5, 2, 75.0, 1.0),
    ("A", 2023, "1.1.2"): (1.0, 2, 50.0, 1.0),
    ("A", 2023, "1.2"): (2.0, 2, 100.0, 1.0),
    ("A", 2023, "2"): (0.3, 4, 7.5, 1.0),
    ("A", 2023, "2.1"): (0.3, 4, 7.5, 1.0),
    ("A", 2023, "2.1.1"): (0.1, 1, 10.0, 1.0),
    ("A", 2023, "2.1.2"): (0.2, 3, 0.2 / 3 * 100, 1.0),
    ("B", 2023, "total"): (6.0, 10, 60.0, 0.6),
    ("B", 2023, "1"): (2.0, 6, 2 / 6 * 100, 2 / 6),
    ("B", 2023, "1.1"): (2.0, 4, 50.0, 0.5),
    ("B", 2023, "1.1.1"): (NAN, 2, NAN, 0.0),
    ("B", 2023, "1.1.2"): (2.0, 2, 100.0, 1.0),
    ("B", 2023, "1.2"): (NAN, 2, NAN, 0.0),
    ("B", 2023, "2"): (4.0, 4, 100.0, 1.0),
    ("B", 2023, "2.1"): (4.0, 4, 100.0, 1.0),
    ("B", 2023, "2.1.1"): (1.0, 1, 100.0, 1.0),
    ("B", 2023, "2.1.2"): (3.0, 3, 100.0, 1.0),
    ("A", 2024, "total"): (8.0, 10, 80.0, 1.0),
    ("A", 2024, "1"): (6.0, 6, 100.0, 1.0),
    ("A", 2024, "2"): (2.0, 4, 50.0, 1.0),
    ("B", 2024, "total"): (8.0, 10, 80.0, 1.0),
    ("B", 2024, "1"): (5.0, 6, 5 / 6 * 100, 1.0),
    ("B", 2024, "2"): (3.0, 4, 75.0, 1.0),
    ("C", 2024, "total"): (0.0, 10, 0.0, 0.2),
    ("C", 2024, "1"): (0.0, 6, 0.0, 2 / 6),
    ("C", 2024, "1.1"): (NAN, 4, NAN, 0.0),
    ("C", 2024, "1.2"): (0.0, 2, 0.0, 1.0),
    ("C", 2024, "2"): (NAN, 4, NAN, 0.0),
}


def same(a: float, b: float, tol: float = 1e-9) -> bool:
    if isinstance(a, float) and math.isnan(a) or isinstance(b, float) and math.isnan(b):
        return (isinstance(a, float) and math.isnan(a)) and (isinstance(b, float) and math.isnan(b))
    return abs(float(a) - float(b)) <= tol


def by_key(result: pd.DataFrame) -> dict:
    return {(str(u), int(y), str(n)): (p, m, i, c) for u, y, n, p, m, i, c in result[
        ["unit_code", "year", "node_code", "points", "max_points", "index_pct", "coverage"]].itertuples(index=False)}


# -- the hand-worked example ----------------------------------------------------

def test_hand_worked_example():
    out = roll_up(hand_scores(), hand_framework())
    assert list(out.columns) == RESULT_COLUMNS
    got = by_key(out)
    for key, expected in HAND_EXPECTED.items():
        assert all(same(g, e) for g, e in zip(got[key], expected)), (key, got[key], expected)
    # 5 unit-years (A 2023, B 2023, A 2024, B 2024, C 2024) x (9 nodes + total)
    assert len(out) == 5 * 10
    assert out["level"].astype(str).tolist()[:10] == [
        "index", "field", "criterion", "subcriterion", "subcriterion", "criterion", "field", "criterion",
        "subcriterion", "subcriterion"]


def test_rows_are_sorted_and_total_first():
    out = roll_up(hand_scores().sample(frac=1, random_state=3), hand_framework())
    keys = list(zip(out["unit_code"].astype(str), out["year"]))
    assert keys == sorted(keys)
    assert out["node_code"].astype(str).tolist()[:10] == [
        "total", "1", "1.1", "1.1.1", "1.1.2", "1.2", "2", "2.1", "2.1.1", "2.1.2"]


def test_floating_noise_is_rounded_away():
    out = roll_up(hand_scores(), hand_framework())
    row = out[(out["unit_code"] == "A") & (out["year"] == 2023) & (out["node_code"] == "2.1")]
    assert row["points"].iloc[0] == 0.3  # exactly, not 0.30000000000000004
    assert str(row["points"].iloc[0]) == "0.3"


def test_leaf_points_rule():
    frame = pd.DataFrame({"self_score": [1, 1, NAN, NAN, 2, NAN],
                          "appraised_score": [0.5, NAN, 0.25, NAN, NAN, NAN],
                          "survey_points": [NAN, NAN, NAN, 3, 1, NAN]})
    np.testing.assert_array_equal(leaf_points(frame), [0.5, 1, 0.25, 3, 3, NAN])
    # absent columns mean nothing entered
    np.testing.assert_array_equal(leaf_points(pd.DataFrame({"survey_points": [1.0, NAN]})), [1.0, NAN])


def test_bonus_and_penalty_without_caps_are_ignored():
    fw = hand_framework().replace(bonus_cap=None, penalty_cap=None)
    out = by_key(roll_up(hand_scores(), fw))
    assert same(out[("A", 2023, "total")][0], 4.8)


def test_penalty_capped():
    scores = hand_scores()
    scores.loc[0, "penalty"] = 7.0
    out = by_key(roll_up(scores, hand_framework()))
    assert same(out[("A", 2023, "total")][0], 4.8 + 1 - 0.5)


def test_categorical_input_gives_the_same_numbers():
    scores = hand_scores()
    cat = scores.assign(unit_code=scores["unit_code"].astype("category"),
                        node_code=pd.Categorical(scores["node_code"], categories=["2.1.2", "1.2", "1.1.1", "2.1.1",
                                                                                  "1.1.2", "9"]))
    pd.testing.assert_frame_equal(roll_up(cat, hand_framework()), roll_up(scores, hand_framework()))


def test_empty_scores():
    out = roll_up(hand_scores().iloc[:0], hand_framework())
    assert list(out.columns) == RESULT_COLUMNS and len(out) == 0


def test_framework_id_must_match():
    scores = hand_scores().assign(framework_id="hand")
    assert len(roll_up(scores, hand_framework())) == 50
    scores.loc[3, "framework_id"] = "other"
    with pytest.raises(ValidationError) as err:
        roll_up(scores, hand_framework())
    assert "other" in err.value.failures["value"].tolist()


# -- refusals ---------------------------------------------------------------------

def test_incomplete_framework_is_refused_naming_nodes():
    nodes = hand_framework().nodes.copy()
    nodes.loc[nodes["code"].isin(["1.1.2", "1.1", "1"]), "max_points"] = NAN
    fw = framework_from_nodes(nodes, id="gaps", name_vi="Thiếu điểm", level="department", max_points=10)
    with pytest.raises(FrameworkIncompleteError) as err:
        roll_up(hand_scores(), fw)
    assert set(err.value.codes) == {"1", "1.1", "1.1.2"}
    assert "1.1.2" in str(err.value)


def test_unknown_and_non_leaf_codes_are_named():
    scores = hand_scores()
    scores.loc[2, "node_code"] = "9.9"
    scores.loc[4, "node_code"] = "1.1"
    scores.loc[5, "node_code"] = "7"
    with pytest.raises(ValidationError) as err:
        roll_up(scores, hand_framework())
    failures = err.value.failures
    assert sorted(failures["value"]) == ["1.1", "7", "9.9"]
    assert set(failures["column"]) == {"node_code"}
    assert "leaves under 1.1" in str(err.value)


def test_duplicate_rows_are_refused():
    scores = pd.concat([hand_scores(), hand_scores().iloc[[3]]], ignore_index=True)
    with pytest.raises(ValidationError, match="more than one row") as err:
        roll_up(scores, hand_framework())
    assert "A, 2023, 2.1.1" in err.value.failures["value"].iloc[0]


def test_missing_columns_and_text_scores_are_refused():
    with pytest.raises(ValidationError) as err:
        roll_up(hand_scores().drop(columns=["year"]), hand_framework())
    assert err.value.failures["column"].tolist() == ["year"]
    with pytest.raises(ValidationError):
        roll_up(hand_scores()[["unit_code", "year", "node_code"]], hand_framework())
    text = hand_scores().astype({"self_score": object})
    text.loc[0, "self_score"] = "hai"
    with pytest.raises(ValidationError) as err:
        roll_up(text, hand_framework())
    assert "hai" in err.value.failures["value"].tolist()


def test_negative_bonus_is_refused():
    scores = hand_scores()
    scores.loc[1, "bonus"] = -1
    with pytest.raises(ValidationError, match="negative bonus"):
        roll_up(scores, hand_framework())


def test_zero_point_node_coverage_counts_leaves():
    nodes = pd.DataFrame({"code": ["1", "1.1", "1.2", "2"], "parent_code": [None, "1", "1", None],
                          "name_vi": ["a", "b", "c", "d"], "max_points": [0.0, 0.0, 0.0, 5.0]})
    fw = framework_from_nodes(nodes, id="zero", name_vi="z", level="commune", max_points=5)
    scores = pd.DataFrame({"unit_code": ["U", "U"], "year": [2024, 2024], "node_code": ["1.1", "2"],
                           "self_score": [0.0, 5.0]})
    got = by_key(roll_up(scores, fw))
    assert same(got[("U", 2024, "1")][3], 0.5) and math.isnan(got[("U", 2024, "1")][2])
    assert same(got[("U", 2024, "total")][3], 1.0)


# -- an independent recomputation on random data ---------------------------------

def random_framework(rng: np.random.Generator, *, bonus_cap: float | None = 2.0,
                     penalty_cap: float | None = 1.5) -> Framework:
    rows = []
    for f in range(1, rng.integers(1, 4) + 1):
        rows.append({"code": f"{f}", "parent_code": None, "name_vi": f"F{f}", "max_points": 0.0})
        for c in range(1, rng.integers(1, 4) + 1):
            rows.append({"code": f"{f}.{c}", "parent_code": f"{f}", "name_vi": f"C{f}.{c}", "max_points": 0.0})
            for s in range(1, rng.integers(0, 4) + 1):
                rows.append({"code": f"{f}.{c}.{s}", "parent_code": f"{f}.{c}", "name_vi": "S", "max_points": 0.0})
    nodes = pd.DataFrame(rows)
    is_leaf = ~nodes["code"].isin(nodes["parent_code"])
    nodes.loc[is_leaf, "max_points"] = rng.integers(1, 13, is_leaf.sum()) / 4
    for depth in (2, 1):  # parents' maxima from their children
        for i, row in nodes.iterrows():
            if not is_leaf[i] and row["code"].count(".") == depth - 1:
                nodes.loc[i, "max_points"] = nodes.loc[nodes["parent_code"] == row["code"], "max_points"].sum()
    total = nodes.loc[nodes["parent_code"].isna(), "max_points"].sum()
    return framework_from_nodes(nodes, id="rand", name_vi="R", level="commune", max_points=float(total),
                                bonus_cap=bonus_cap, penalty_cap=penalty_cap)


def random_scores(rng: np.random.Generator, fw: Framework, n_units: int = 6, years=(2022, 2023)) -> pd.DataFrame:
    recs = []
    for u in range(n_units):
        for y in years:
            for code, mx in fw.leaves[["code", "max_points"]].itertuples(index=False):
                if rng.random() < 0.15:
                    continue  # no row
                def val(p):
                    return NAN if rng.random() < p else float(rng.integers(0, int(mx * 20) + 1)) / 20
                recs.append({"unit_code": f"U{u}", "year": y, "node_code": code, "self_score": val(0.3),
                             "appraised_score": val(0.5), "survey_points": val(0.8), "bonus": val(0.7) / 2,
                             "penalty": val(0.8) / 3})
    return pd.DataFrame(recs)


def plain_roll_up(scores: pd.DataFrame, fw: Framework) -> dict:
    """The contract written with loops and exact fractions."""
    def frac(x):
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else Fraction(x)
    nodes = fw.nodes.to_dict("records")
    parent = {n["code"]: n["parent_code"] for n in nodes}
    leaves = [n["code"] for n in nodes if n["is_leaf"]]
    under = {n["code"]: [leaf for leaf in leaves if leaf == n["code"] or _is_under(leaf, n["code"], parent)]
             for n in nodes}
    under["total"] = leaves
    maxima = {n["code"]: Fraction(n["max_points"]) for n in nodes}
    maxima["total"] = Fraction(fw.max_points)
    leaf_max = {leaf: maxima[leaf] for leaf in leaves}
    out = {}
    for (u, y), grp in scores.groupby(["unit_code", "year"]):
        pts = {}
        bonus = penalty = Fraction(0)
        for r in grp.to_dict("records"):
            base = frac(r["appraised_score"])
            if base is None:
                base = frac(r["self_score"])
            survey = frac(r["survey_points"])
            if base is None and survey is None:
                value = None
            else:
                value = (base or 0) + (survey or 0)
            pts[r["node_code"]] = value
            bonus += frac(r.get("bonus", NAN)) or 0
            penalty += frac(r.get("penalty", NAN)) or 0
        for code, leaf_list in under.items():
            known = [pts[leaf] for leaf in leaf_list if pts.get(leaf) is not None]
            total = sum(known, Fraction(0)) if known else None
            if code == "total" and total is not None:
                if fw.bonus_cap is not None:
                    total += min(bonus, Fraction(fw.bonus_cap))
                if fw.penalty_cap is not None:
                    total -= min(penalty, Fraction(fw.penalty_cap))
            covered = sum((leaf_max[leaf] for leaf in leaf_list if pts.get(leaf) is not None), Fraction(0))
            mx = maxima[code]
            out[(u, y, code)] = (
                NAN if total is None else float(total), float(mx),
                NAN if total is None else float(total / mx * 100), float(covered / mx))
    return out


def _is_under(leaf: str, code: str, parent: dict) -> bool:
    p = parent[leaf]
    while p is not None:
        if p == code:
            return True
        p = parent[p]
    return False


@pytest.mark.parametrize("seed", range(8))
def test_matches_plain_python_recomputation(seed):
    rng = np.random.default_rng(seed)
    fw = random_framework(rng, bonus_cap=[None, 2.0][seed % 2], penalty_cap=[1.5, None][seed % 2])
    scores = random_scores(rng, fw)
    got = by_key(roll_up(scores, fw))
    want = plain_roll_up(scores, fw)
    assert set(got) == set(want)
    for key, w in want.items():
        assert all(same(g, e) for g, e in zip(got[key], w)), (key, got[key], w)


# -- properties -------------------------------------------------------------------

@st.composite
def framework_and_scores(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    fw = random_framework(rng, bonus_cap=draw(st.sampled_from([None, 0.0, 1.0, 2.5])),
                          penalty_cap=draw(st.sampled_from([None, 0.0, 1.0])))
    leaves = fw.leaves[["code", "max_points"]].to_records(index=False)
    n_units = draw(st.integers(1, 4))
    cell = st.one_of(st.just(NAN), st.integers(0, 60).map(lambda k: k / 20))
    recs = []
    for u in range(n_units):
        for y in draw(st.sets(st.sampled_from([2021, 2022, 2023]), min_size=1, max_size=2)):
            for code, mx in leaves:
                if draw(st.booleans()) and draw(st.booleans()):
                    continue
                recs.append({"unit_code": f"U{u}", "year": y, "node_code": code,
                             "self_score": min(draw(cell), mx), "appraised_score": min(draw(cell), mx),
                             "survey_points": draw(cell), "bonus": draw(cell), "penalty": draw(cell)})
    cols = ["unit_code", "year", "node_code", "self_score", "appraised_score", "survey_points", "bonus", "penalty"]
    return fw, pd.DataFrame(recs, columns=cols)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(framework_and_scores())
def test_properties(data):
    fw, scores = data
    out = roll_up(scores, fw)
    if scores.empty:
        assert out.empty
        return
    nodes = fw.nodes
    res = out.assign(node_code=out["node_code"].astype(str), unit_code=out["unit_code"].astype(str))
    key = res.set_index(["unit_code", "year", "node_code"])
    # children's points sum to the parent's; NaN only when every child is NaN
    kids = res.merge(nodes[["code", "parent_code"]], left_on="node_code", right_on="code")
    kids = kids[kids["parent_code"].notna()]
    summed = kids.groupby(["unit_code", "year", "parent_code"])["points"].sum(min_count=1)
    parent = key.loc[summed.index.rename(["unit_code", "year", "node_code"]), "points"].to_numpy()
    np.testing.assert_allclose(parent, summed.to_numpy(), atol=1e-8, equal_nan=True)
    # total = sum of fields + capped bonus - capped penalty
    fields = res[res["level"] == "field"].groupby(["unit_code", "year"])["points"].sum(min_count=1)
    extra = scores.groupby(["unit_code", "year"])[["bonus", "penalty"]].sum()
    bonus = np.minimum(extra["bonus"], fw.bonus_cap) if fw.bonus_cap is not None else 0 * extra["bonus"]
    penalty = np.minimum(extra["penalty"], fw.penalty_cap) if fw.penalty_cap is not None else 0 * extra["penalty"]
    want = (fields + bonus.reindex(fields.index) - penalty.reindex(fields.index))
    total = res[res["node_code"] == "total"].set_index(["unit_code", "year"])["points"].reindex(fields.index)
    np.testing.assert_allclose(total.to_numpy(), want.to_numpy(), atol=1e-8, equal_nan=True)
    # coverage in [0, 1]; 1 exactly when every leaf below is scored
    assert out["coverage"].between(0, 1).all()
    assert ((out["coverage"] == 0) == out["points"].isna()).all()
    # NaN never becomes 0: an unscored leaf stays NaN
    pts = pd.Series(leaf_points(scores), index=pd.MultiIndex.from_frame(
        scores[["unit_code", "year", "node_code"]].astype({"year": "int64"})))
    leaf_rows = key.loc[pts.index, "points"]
    assert (leaf_rows.isna().to_numpy() == pts.isna().to_numpy()).all()
    np.testing.assert_allclose(leaf_rows.to_numpy(), np.round(pts.to_numpy(), 9), equal_nan=True)
    full = res.merge(res[res["coverage"] == 1][["unit_code", "year", "node_code"]])
    assert full["points"].notna().all()


@settings(max_examples=30, deadline=None)
@given(framework_and_scores())
def test_coverage_is_one_when_every_leaf_is_scored(data):
    fw, _ = data
    leaves = fw.leaves["code"].tolist()
    scores = pd.DataFrame({"unit_code": "U", "year": 2024, "node_code": leaves,
                           "self_score": fw.leaves["max_points"].to_numpy() / 2})
    out = roll_up(scores, fw)
    assert (out["coverage"] == 1).all()
    assert (out["index_pct"] == 50).all()


@pytest.mark.parametrize("dtype", ["str", "string", "category", object])
def test_code_columns_of_any_string_dtype(dtype):
    scores = hand_scores()
    want = roll_up(scores, hand_framework())
    typed = scores.astype({"unit_code": dtype, "node_code": dtype})
    got = roll_up(typed, hand_framework())
    pd.testing.assert_frame_equal(got.astype({"unit_code": str, "node_code": str}),
                                  want.astype({"unit_code": str, "node_code": str}))
    if dtype == "string":  # pd.NA as a missing unit is refused, not compared
        typed.loc[3, "unit_code"] = pd.NA
        with pytest.raises(ValidationError, match="without a unit"):
            roll_up(typed, hand_framework())


def test_nullable_number_columns():
    scores = hand_scores()
    nullable = scores.astype({"self_score": "Float64", "appraised_score": "Float64", "bonus": "Float64"})
    pd.testing.assert_frame_equal(roll_up(nullable, hand_framework()), roll_up(scores, hand_framework()))
    ints = hand_scores().iloc[[9, 10, 11]].assign(self_score=[2, 2, 2]).astype({"self_score": "Int64"})
    assert by_key(roll_up(ints, hand_framework()))[("A", 2024, "1")][0] == 6.0


def test_years_must_be_whole_numbers():
    scores = hand_scores().astype({"year": "float64"})
    assert len(roll_up(scores, hand_framework())) == 50
    scores.loc[2, "year"] = 2023.5
    with pytest.raises(ValidationError) as err:
        roll_up(scores, hand_framework())
    assert err.value.failures["value"].tolist() == [2023.5]
    text = hand_scores().astype({"year": object})
    text.loc[0, "year"] = "năm nay"
    with pytest.raises(ValidationError, match="whole numbers"):
        roll_up(text, hand_framework())
