"""Ranks, change since last year, groups and deductions, checked by hand and against scipy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

from parindex_lib.aggregation import roll_up
from parindex_lib.errors import ValidationError
from parindex_lib.framework import Framework, read_framework_yaml
from parindex_lib.ranking import (
    DEDUCTION_COLUMNS,
    GROUP_DEDUCTION_COLUMNS,
    add_group,
    add_rank_change,
    deductions,
    rank,
)

NAN = math.nan

FRAMEWORK_YAML = """
id: small
name_vi: Bộ nhỏ
level: department
max_points: 10
nodes:
  - {code: "1", name_vi: Lĩnh vực 1, max_points: 6, children: [
      {code: "1.1", name_vi: TP 1.1, max_points: 4},
      {code: "1.2", name_vi: TP 1.2, max_points: 2}]}
  - {code: "2", name_vi: Lĩnh vực 2, max_points: 4}
"""


def small_framework() -> Framework:
    return read_framework_yaml(FRAMEWORK_YAML, "small.yaml")


def results_frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["unit_code", "year", "node_code", "points", "index_pct"])


def rank_of(frame: pd.DataFrame) -> dict:
    return {(u, y, n): (None if pd.isna(r) else int(r))
            for u, y, n, r in frame[["unit_code", "year", "node_code", "rank"]].itertuples(index=False)}


# -- ranks ----------------------------------------------------------------------

def test_ties_share_the_best_rank():
    res = results_frame([("A", 2024, "total", 90, 90), ("B", 2024, "total", 85, 85), ("C", 2024, "total", 85, 85),
                         ("D", 2024, "total", 80, 80), ("E", 2024, "total", NAN, NAN)])
    out = rank(res)
    assert out["rank"].tolist()[:4] == [1, 2, 2, 4]
    assert pd.isna(out["rank"].iloc[4])
    assert out["rank"].dtype == "Int64"
    assert "rank" not in res.columns  # a new table, the input is unchanged


def test_float_noise_does_not_break_a_tie():
    res = results_frame([("A", 2024, "1", 0.1 + 0.2, NAN), ("B", 2024, "1", 0.3, NAN), ("C", 2024, "1", 0.2, NAN)])
    assert rank(res)["rank"].tolist() == [1, 1, 3]


def test_ranks_per_year_and_node_and_within_groups():
    res = results_frame([
        ("A", 2023, "total", 50, 50), ("B", 2023, "total", 60, 60),
        ("A", 2024, "total", 70, 70), ("B", 2024, "total", 40, 40), ("C", 2024, "total", 55, 55),
        ("A", 2024, "1", 1, NAN), ("B", 2024, "1", 3, NAN), ("C", 2024, "1", 2, NAN)])
    got = rank_of(rank(res))
    assert got[("B", 2023, "total")] == 1 and got[("A", 2023, "total")] == 2
    assert [got[(u, 2024, "total")] for u in "ABC"] == [1, 3, 2]
    assert [got[(u, 2024, "1")] for u in "ABC"] == [3, 1, 2]
    units = pd.DataFrame({"code": ["A", "B", "C"], "name": ["a", "b", "c"], "kind": ["department", "district",
                                                                                    "department"]})
    got = rank_of(rank(res, within=["kind"], units=units))
    assert [got[(u, 2024, "total")] for u in "ABC"] == [1, 1, 2]
    with pytest.raises(ValidationError, match="units table"):
        rank(res, within=["kind"])


def test_rank_on_roll_up_output_with_categoricals():
    fw = small_framework()
    scores = pd.DataFrame({"unit_code": ["X", "Y", "Z", "X"], "year": 2024, "node_code": ["1.1", "1.1", "2", "2"],
                           "self_score": [4.0, 3.0, 4.0, 4.0]})
    out = rank(roll_up(scores, fw))
    got = rank_of(out.astype({"unit_code": str, "node_code": str}))
    assert [got[(u, 2024, "total")] for u in "XYZ"] == [1, 3, 2]
    assert [got[(u, 2024, "1.1")] for u in "XYZ"] == [1, 2, None]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["total", "1", "2"]),
                          st.one_of(st.just(NAN), st.integers(-4, 12).map(lambda k: k / 4))),
                min_size=1, max_size=60))
def test_ranks_match_scipy_min_method(rows):
    res = results_frame([(f"U{i}", 2020 + y, n, p, NAN) for i, (y, n, p) in enumerate(rows)])
    out = rank(res)
    for _, grp in out.groupby(["year", "node_code"]):
        known = grp[grp["points"].notna()]
        want = rankdata(-known["points"].to_numpy(), method="min").astype(int)
        assert known["rank"].astype(int).tolist() == want.tolist()
        assert grp.loc[grp["points"].isna(), "rank"].isna().all()


def test_wide_range_of_points_uses_the_two_key_sort():
    res = results_frame([("A", 1, "n", 1e12, NAN), ("B", 1, "n", -1e12, NAN), ("C", 1, "n", 1e12, NAN),
                         ("D", 2, "n", 0.5, NAN), ("E", 2, "n", 0.75, NAN)])
    assert rank(res)["rank"].tolist() == [1, 3, 1, 2, 1]


# -- change since last year ------------------------------------------------------

def test_rank_change_and_points_change_by_hand():
    res = results_frame([
        ("A", 2022, "total", 70, NAN), ("B", 2022, "total", 80, NAN), ("C", 2022, "total", 90, NAN),
        ("A", 2023, "total", 95, NAN), ("B", 2023, "total", 85, NAN), ("C", 2023, "total", NAN, NAN),
        ("A", 2025, "total", 60, NAN), ("B", 2025, "total", 50, NAN)])
    out = add_rank_change(rank(res)).set_index(["unit_code", "year"])
    # 2022: C 1, B 2, A 3; 2023: A 1, B 2, C unranked
    assert out.loc[("A", 2023), "rank_change"] == 2  # "tăng 2 bậc"
    assert out.loc[("B", 2023), "rank_change"] == 0
    assert pd.isna(out.loc[("C", 2023), "rank_change"])  # no rank this year
    assert out.loc[("A", 2023), "points_change"] == 25
    assert math.isnan(out.loc[("C", 2023), "points_change"])
    assert pd.isna(out.loc[("A", 2022), "rank_change"])  # no previous year
    assert pd.isna(out.loc[("A", 2025), "rank_change"])  # 2024 missing: never across a gap
    assert math.isnan(out.loc[("A", 2025), "points_change"])


def test_rank_change_matches_a_merge_on_random_data():
    rng = np.random.default_rng(5)
    rows = [(f"U{u}", y, n, float(rng.integers(0, 8)) if rng.random() > 0.1 else NAN, NAN)
            for u in range(30) for y in (2021, 2022, 2024) for n in ("total", "1", "2") if rng.random() > 0.1]
    out = add_rank_change(rank(results_frame(rows)))
    prev = out[["unit_code", "year", "node_code", "rank", "points"]].assign(year=out["year"] + 1)
    merged = out.merge(prev, on=["unit_code", "year", "node_code"], how="left", suffixes=("", "_prev"))
    want_rank = merged["rank_prev"] - merged["rank"]
    want_points = merged["points"] - merged["points_prev"]
    pd.testing.assert_series_equal(merged["rank_change"], want_rank, check_names=False)
    np.testing.assert_allclose(merged["points_change"], want_points, equal_nan=True)


def test_duplicate_rows_refused_for_rank_change():
    res = rank(results_frame([("A", 2022, "total", 1, NAN), ("A", 2022, "total", 2, NAN)]))
    with pytest.raises(ValidationError, match="more than one row"):
        add_rank_change(res)


def test_rank_change_needs_rank():
    with pytest.raises(ValidationError) as err:
        add_rank_change(results_frame([("A", 2022, "total", 1, NAN)]))
    assert err.value.failures["column"].tolist() == ["rank"]


# -- groups -------------------------------------------------------------------------

def test_groups_follow_the_bands():
    res = results_frame([(u, 2024, "total", p, p) for u, p in
                         [("A", 95), ("B", 90), ("C", 89.99), ("D", 80), ("E", 70),
                          ("F", 69.99), ("G", NAN), ("H", 90 - 1e-12)]])
    out = add_group(res, small_framework())
    want = [small_framework().group_of(p) for p in res["index_pct"]]
    assert [None if pd.isna(g) else g for g in out["group"]] == want == ["A", "A", "B", "B", "C", None, None, "A"]
    other = add_group(res, [("Xuất sắc", 95), ("Tốt", 85)])
    assert [None if pd.isna(g) else g for g in other["group"]][:4] == ["Xuất sắc", "Tốt", "Tốt", None]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.just(NAN), st.floats(-10, 120)), min_size=1, max_size=40))
def test_groups_match_group_of(values):
    fw = small_framework()
    res = pd.DataFrame({"index_pct": values})
    got = [None if pd.isna(g) else g for g in add_group(res, fw)["group"]]
    assert got == [fw.group_of(v) for v in values]


def test_bands_must_be_sorted():
    with pytest.raises(ValidationError):
        add_group(pd.DataFrame({"index_pct": [1.0]}), [("B", 80), ("A", 90)])


# -- deductions -----------------------------------------------------------------------

def deduction_results() -> pd.DataFrame:
    fw = small_framework()
    scores = pd.DataFrame({"unit_code": ["X", "X", "X", "Y", "Y"], "year": 2024,
                           "node_code": ["1.1", "1.2", "2", "1.1", "1.2"],
                           "self_score": [1.0, 2.0, 3.5, 4.0, 0.5]})
    return roll_up(scores, fw)


def test_deductions_for_one_unit():
    out = deductions(deduction_results(), small_framework(), unit_code="X", year=2024, level="leaf")
    assert list(out.columns) == DEDUCTION_COLUMNS
    assert out["node_code"].tolist() == ["1.1", "2", "1.2"]
    assert out["points_lost"].tolist() == [3.0, 0.5, 0.0]
    assert out["name_vi"].tolist() == ["TP 1.1", "Lĩnh vực 2", "TP 1.2"]
    assert out["index_pct"].tolist() == [25.0, 87.5, 100.0]
    fields = deductions(deduction_results(), small_framework(), unit_code="Y", level="field")
    # field 2 not scored: nothing known to be lost, listed last
    assert fields["node_code"].tolist() == ["1", "2"] and fields["points_lost"].tolist()[0] == 1.5
    assert math.isnan(fields["points_lost"].iloc[1])


def test_deductions_for_the_group():
    out = deductions(deduction_results(), small_framework(), year=2024, level="criterion")
    assert list(out.columns) == GROUP_DEDUCTION_COLUMNS
    got = out.set_index("node_code")
    assert got.loc["1.1", "mean_points_lost"] == 1.5 and got.loc["1.1", "total_points_lost"] == 3.0
    assert got.loc["1.2", "mean_points_lost"] == 0.75 and got.loc["1.2", "units"] == 2
    assert got.loc["1.1", "index_pct"] == 62.5
    assert out["node_code"].tolist() == ["1.1", "1.2"]


def test_deductions_refuse_unknown_unit_and_level():
    with pytest.raises(ValidationError):
        deductions(deduction_results(), small_framework(), unit_code="nobody")
    with pytest.raises(ValidationError):
        deductions(deduction_results(), small_framework(), level="sector")


def test_unbalanced_groups_use_the_general_sort():
    rng = np.random.default_rng(2)
    sizes = {"big": 6000, "a": 1, "b": 2}
    rows = [(f"U{i}", 2024, node, float(rng.integers(0, 40)) / 4, NAN)
            for node, k in sizes.items() for i in range(k)]
    out = rank(results_frame(rows))
    for _, grp in out.groupby("node_code"):
        assert grp["rank"].astype(int).tolist() == rankdata(-grp["points"].to_numpy(), method="min").tolist()
