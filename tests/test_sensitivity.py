"""Rank sensitivity: hand-worked cases and a loop written independently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from parindex_lib.errors import ValidationError
from parindex_lib.sensitivity import SENSITIVITY_COLUMNS, aggregate, rank_sensitivity


def _points(seed=0, units=12, fields=8):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(units):
        level = rng.uniform(75, 95)
        for f in range(1, fields + 1):
            rows.append({"unit_code": f"D{u:02d}", "field": str(f),
                         "index_pct": float(np.clip(level + rng.normal(0, 6), 1, 100))})
    return pd.DataFrame(rows)


def test_columns_and_hand_worked_nominal_ranks():
    fp = pd.DataFrame({"unit_code": ["A", "A", "B", "B", "C", "C"], "field": ["1", "2"] * 3,
                       "index_pct": [90.0, 70.0, 80.0, 80.0, 60.0, 100.0]})
    out = rank_sensitivity(fp, n=500, weight_spread=0.0, methods=("arithmetic",))
    assert list(out.columns) == SENSITIVITY_COLUMNS
    # equal weights: A 80, B 80, C 80 -> all tie at rank 1
    assert out["nominal_rank"].tolist() == [1, 1, 1]
    weighted = rank_sensitivity(fp, n=500, weight_spread=0.0, methods=("arithmetic",), weights={"1": 3, "2": 1})
    # weights 3:1 -> A 85, B 80, C 70
    assert weighted[["unit_code", "nominal_rank", "median_rank", "rank_low", "rank_high", "mean_abs_shift"]] \
        .values.tolist() == [["A", 1, 1.0, 1, 1, 0.0], ["B", 2, 2.0, 2, 2, 0.0], ["C", 3, 3.0, 3, 3, 0.0]]


def test_geometric_aggregation_by_hand():
    # B is balanced (80, 80), A unbalanced (100, 60): arithmetic ties, geometric favours B (80 > 77.46)
    fp = pd.DataFrame({"unit_code": ["A", "A", "B", "B"], "field": ["1", "2"] * 2,
                       "index_pct": [100.0, 60.0, 80.0, 80.0]})
    geo = rank_sensitivity(fp, n=10, weight_spread=0.0, methods=("geometric",), nominal_method="geometric")
    assert geo["unit_code"].tolist() == ["B", "A"] and geo["nominal_rank"].tolist() == [1, 2]
    assert aggregate(np.array([[100.0, 60.0]]), np.array([[0.5, 0.5]]), "geometric")[0, 0] == pytest.approx(
        np.sqrt(6000))
    mixed = rank_sensitivity(fp, n=10, weight_spread=0.0, methods=("arithmetic", "geometric"))
    a = mixed.set_index("unit_code").loc["A"]
    assert (a["nominal_rank"], a["rank_low"], a["rank_high"]) == (1, 1, 2)  # tie under arithmetic, 2nd geometric


def test_against_an_independent_loop_over_the_same_draws():
    fp = _points(1)
    out = rank_sensitivity(fp, n=300, weight_spread=0.3, seed=5, interval=0.8).set_index("unit_code")
    units = list(dict.fromkeys(fp["unit_code"]))
    fields = list(dict.fromkeys(fp["field"]))
    X = fp.pivot(index="unit_code", columns="field", values="index_pct").loc[units, fields].to_numpy()
    rng = np.random.default_rng(5)
    U = rng.uniform(0.7, 1.3, size=(300, len(fields)))
    all_ranks = []
    for method in ("arithmetic", "geometric"):
        for u in U:
            w = u / u.sum()
            score = [sum(w[j] * X[i, j] for j in range(len(fields))) if method == "arithmetic"
                     else float(np.prod([X[i, j] ** w[j] for j in range(len(fields))])) for i in range(len(units))]
            all_ranks.append(stats.rankdata([-s for s in score], method="min"))
    R = np.array(all_ranks)
    nominal = stats.rankdata(-X.mean(axis=1), method="min")
    for i, u in enumerate(units):
        row = out.loc[u]
        assert row["nominal_rank"] == nominal[i]
        assert row["median_rank"] == np.median(R[:, i])
        assert row["rank_low"] == np.quantile(R[:, i], 0.1, method="lower")
        assert row["rank_high"] == np.quantile(R[:, i], 0.9, method="higher")
        assert row["mean_abs_shift"] == pytest.approx(np.abs(R[:, i] - nominal[i]).mean())


def test_reproducible_sorted_and_per_year():
    fp = _points(2)
    a = rank_sensitivity(fp, seed=3)
    pd.testing.assert_frame_equal(a, rank_sensitivity(fp, seed=3))
    assert a["nominal_rank"].is_monotonic_increasing
    assert (a["rank_low"] <= a["median_rank"]).all() and (a["median_rank"] <= a["rank_high"]).all()
    both = pd.concat([fp.assign(year=2023), _points(3).assign(year=2024)])
    out = rank_sensitivity(both, n=100)
    assert list(out.columns) == ["year"] + SENSITIVITY_COLUMNS
    assert out["year"].value_counts().to_dict() == {2023: 12, 2024: 12}


def test_a_dominating_unit_stays_first():
    fp = _points(4)
    fp.loc[fp["unit_code"] == "D00", "index_pct"] = 100.0
    top = rank_sensitivity(fp, n=300, weight_spread=0.5).iloc[0]
    assert (top["unit_code"], top["rank_low"], top["rank_high"], top["mean_abs_shift"]) == ("D00", 1, 1, 0.0)


def test_missing_values_and_bad_options_are_listed():
    fp = _points(5, units=3, fields=3)
    broken = fp.drop(index=[0, 4]).copy()
    with pytest.raises(ValidationError) as info:
        rank_sensitivity(broken)
    assert sorted(info.value.failures["value"]) == ["D00 field 1", "D01 field 2"]
    with pytest.raises(ValidationError):
        rank_sensitivity(fp, methods=("harmonic",))
    with pytest.raises(ValidationError):
        rank_sensitivity(fp, weight_spread=1.5)
    with pytest.raises(ValidationError) as info:
        rank_sensitivity(fp, weights={"1": 1, "2": 1, "9": 1})
    assert set(info.value.failures["value"]) == {"9", "3"}
