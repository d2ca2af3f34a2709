"""Correlation studies, every statistic against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import given, settings, strategies as st
from scipy import stats
from statsmodels.stats.multitest import multipletests

from parindex_lib.correlation import (
    LAGGED_COLUMNS,
    PARTIAL_COLUMNS,
    RESULT_COLUMNS,
    SIPAS_NOTE,
    benjamini_hochberg,
    bootstrap_indices,
    correlate,
    lagged_correlate,
    partial_correlate,
    study_variables,
)
from parindex_lib.errors import ValidationError
from parindex_lib.external import load_shipped
from parindex_lib.provinces import province_table, region_of

CODES = province_table("old")["province_code"].tolist()


def _long(seed=0, years=(2021, 2022), missing=0.0):
    """A long table over the 63 provinces with correlated PAR, PCI, PAPI and SIPAS."""
    rng = np.random.default_rng(seed)
    rows = []
    for year in years:
        base = rng.normal(size=63)
        spec = {
            ("PAR", "total"): 85 + 3 * base + rng.normal(size=63),
            ("PAR", "field1"): np.round(90 + 5 * base + 3 * rng.normal(size=63)),  # ties on purpose
            ("PAR", "field8"): 80 + 4 * rng.normal(size=63),
            ("PCI", "total"): 65 + 2 * base + 2 * rng.normal(size=63),
            ("PCI", "entry_costs"): 7 + rng.normal(size=63),
            ("PAPI", "total"): 43 + rng.normal(size=63),
            ("SIPAS", "total"): 82 + 2 * base + rng.normal(size=63),
            ("PCI", "rank"): np.arange(1, 64, dtype=float),
        }
        for (index, comp), values in spec.items():
            values = values.astype(float).copy()
            if missing:
                values[rng.random(63) < missing] = np.nan
            for code, v in zip(CODES, values):
                rows.append({"province_code": code, "year": year, "index": index, "component": comp, "value": v})
    return pd.DataFrame(rows)


def _pair(long, year, a, b):
    """Independent pairing by code with pandas merge (not the library's to_wide)."""
    def one(label):
        index, comp = label.split(":")
        d = long[(long["year"] == year) & (long["index"] == index) & (long["component"] == comp)]
        return d[["province_code", "value"]].rename(columns={"value": label})
    m = one(a).merge(one(b), on="province_code").dropna().sort_values("province_code")
    return m[a].to_numpy(), m[b].to_numpy()


def test_columns_pairs_and_default_variables():
    res = correlate(_long(), n_boot=0)
    assert list(res.columns) == RESULT_COLUMNS
    xs = ["PAR:total", "PAR:field1", "PAR:field8"]
    ys = ["PCI:total", "PCI:entry_costs", "PAPI:total", "SIPAS:total"]
    assert res["x"].unique().tolist() == xs and res["y"].unique().tolist() == ys  # ranks left out
    assert len(res) == 3 * 4 * 2 and res["year"].unique().tolist() == [2021, 2022]
    assert study_variables(_long(), "PCI") == ["PCI:total", "PCI:entry_costs"]
    assert study_variables(_long(), ["PCI:rank"]) == ["PCI:rank"]


@pytest.mark.parametrize("method, fn", [("pearson", stats.pearsonr), ("spearman", stats.spearmanr),
                                        ("kendall", stats.kendalltau)])
def test_r_and_p_against_scipy_with_pairwise_missing(method, fn):
    long = _long(1, missing=0.15)
    res = correlate(long, method=method, n_boot=0)
    for row in res.itertuples(index=False):
        x, y = _pair(long, row.year, row.x, row.y)
        expected = fn(x, y)
        assert row.n == len(x)
        assert row.r == pytest.approx(expected.statistic, abs=1e-12)
        assert row.p == pytest.approx(expected.pvalue, rel=1e-9)


def test_pearson_ci_is_fisher_z_as_scipy_computes_it():
    long = _long(2)
    res = correlate(long, method="pearson", ci=0.9)
    for row in res.itertuples(index=False):
        x, y = _pair(long, row.year, row.x, row.y)
        ci = stats.pearsonr(x, y).confidence_interval(0.9)
        assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high), abs=1e-12)
        assert row.ci_method == "fisher_z"


@pytest.mark.parametrize("method, fn", [("spearman", stats.spearmanr), ("kendall", stats.kendalltau)])
def test_bootstrap_ci_equals_a_naive_loop_over_the_same_resamples(method, fn):
    long = _long(3, years=(2021,), missing=0.1)
    res = correlate(long, x=["PAR:field1", "PAR:total"], y=["PCI:total", "SIPAS:total"], method=method,
                    n_boot=300, seed=7)
    for row in res.itertuples(index=False):
        x, y = _pair(long, row.year, row.x, row.y)
        idx = bootstrap_indices(len(x), 300, 7)
        with np.errstate(all="ignore"):
            dist = np.array([fn(x[i], y[i]).statistic for i in idx])
        dist = dist[np.isfinite(dist)]
        lo, hi = np.percentile(dist, [2.5, 97.5])
        assert (row.ci_low, row.ci_high) == pytest.approx((lo, hi), abs=1e-10)


@pytest.mark.parametrize("method, fn", [("spearman", stats.spearmanr), ("kendall", stats.kendalltau)])
def test_bootstrap_ci_equals_scipy_bootstrap_with_the_same_seed(method, fn):
    """scipy.stats.bootstrap(paired=True) draws its resamples as bootstrap_indices does."""
    rng = np.random.default_rng(11)
    x = np.round(rng.normal(size=40), 1)  # ties
    y = np.round(x + rng.normal(size=40), 1)
    res = correlate(pd.DataFrame({"x": x, "y": y}), "x", "y", method=method, n_boot=1000, seed=3).iloc[0]
    ref = stats.bootstrap((x, y), lambda a, b: fn(a, b).statistic, paired=True, vectorized=False,
                          n_resamples=1000, method="percentile", random_state=np.random.default_rng(3))
    assert res["ci_low"] == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert res["ci_high"] == pytest.approx(ref.confidence_interval.high, abs=1e-12)


def test_bootstrap_is_reproducible_with_a_seed_and_independent_of_other_pairs():
    long = _long(4)
    a = correlate(long, method="kendall", n_boot=500, seed=3)
    b = correlate(long, method="kendall", n_boot=500, seed=3)
    pd.testing.assert_frame_equal(a, b)
    c = correlate(long, method="kendall", n_boot=500, seed=4)
    assert not np.allclose(a["ci_low"], c["ci_low"])
    alone = correlate(long, x="PAR:total", y="PCI:total", year=2022, method="kendall", n_boot=500, seed=3)
    row = a[(a["x"] == "PAR:total") & (a["y"] == "PCI:total") & (a["year"] == 2022)].iloc[0]
    assert alone.iloc[0]["ci_low"] == row["ci_low"] and alone.iloc[0]["ci_high"] == row["ci_high"]


def test_benjamini_hochberg_against_statsmodels():
    long = _long(5, missing=0.2)
    res = correlate(long, n_boot=0)
    expected = multipletests(res["p"], method="fdr_bh")[1]
    np.testing.assert_allclose(res["p_adj"], expected, rtol=1e-12)
    p = np.array([0.2, np.nan, 0.001, 0.04, 0.04, 0.9])
    ok = np.isfinite(p)
    got = benjamini_hochberg(p)
    np.testing.assert_allclose(got[ok], multipletests(p[ok], method="fdr_bh")[1], rtol=1e-12)
    assert np.isnan(got[1])


def test_missing_values_are_counted_never_filled():
    wide = pd.DataFrame({"province_code": ["01", "02", "04", "06", "08", "10", "11"],
                         "a": [1, 2, np.nan, 4, 5, 6, np.nan], "b": [2, np.nan, 3, 5, 4, 7, np.nan]})
    row = correlate(wide, "a", "b").iloc[0]
    assert (row["n"], row["n_missing_x"], row["n_missing_y"]) == (4, 1, 1)
    assert row["r"] == pytest.approx(stats.pearsonr([1, 4, 5, 6], [2, 5, 4, 7]).statistic)


def test_too_few_pairs_and_no_variation_give_nan_with_a_note():
    wide = pd.DataFrame({"a": [1.0, 2, 3, np.nan, 5], "b": [1.0, 2, 3, 4, np.nan], "c": [3.0] * 5})
    res = correlate(wide, "a", ["b", "c"])
    assert res["r"].isna().all()
    assert "fewer than 4 complete pairs" in res.loc[0, "note"]
    assert "c has no variation" in res.loc[1, "note"]


def test_par_sipas_rows_say_that_sipas_is_part_of_field8():
    res = correlate(_long(), n_boot=0)
    sipas = res[res["y"] == "SIPAS:total"]
    assert len(sipas) and sipas["note"].str.contains(SIPAS_NOTE, regex=False).all()
    assert not res[res["y"] != "SIPAS:total"]["note"].str.contains("SIPAS").any()


def test_exclude_sipas_part_uses_total_minus_field8_points_and_says_so():
    long = _long(6)
    res = correlate(long, x="PAR:total", y="SIPAS:total", year=2021, exclude_sipas_part=True, sipas_part_max=12.0)
    row = res.iloc[0]
    assert row["x"] == "PAR:total_minus_field8"
    assert "PAR total minus PAR:field8" in row["note"] and "12" in row["note"]
    assert SIPAS_NOTE not in row["note"]  # the built-in part is removed
    t, f8 = _pair(long, 2021, "PAR:total", "PAR:field8")
    codes = sorted(long["province_code"].unique())
    sipas = long[(long["year"] == 2021) & (long["index"] == "SIPAS")].set_index("province_code").loc[codes, "value"]
    adjusted = t - f8 * 12.0 / 100
    assert row["r"] == pytest.approx(stats.pearsonr(adjusted, sipas.to_numpy()).statistic, abs=1e-12)
    by_year = correlate(long, x="PAR:total", y="SIPAS:total", exclude_sipas_part=True,
                        sipas_part_max={2021: 12.0, 2022: 10.0})
    assert by_year["x"].unique().tolist() == ["PAR:total_minus_field8"]
    approx = correlate(long, x="PAR:total", y="PCI:total", year=2021, exclude_sipas_part=True, sipas_part="SIPAS",
                       sipas_part_max=10)
    assert approx.iloc[0]["x"] == "PAR:total_minus_SIPAS_part" and "approximation" in approx.iloc[0]["note"]
    with pytest.raises(ValidationError):
        correlate(long, exclude_sipas_part=True)  # the points of the part are required
    with pytest.raises(ValidationError):
        correlate(long, exclude_sipas_part=True, sipas_part_max={2021: 12.0})  # 2022 missing


def test_pooled_and_chosen_years():
    long = _long(7)
    pooled = correlate(long, x="PAR:total", y="PCI:total", year="pooled")
    row = pooled.iloc[0]
    assert row["year"] == "pooled" and row["n"] == 126 and "pooled over years 2021, 2022" in row["note"]
    wide = long.assign(label=long["index"] + ":" + long["component"])
    a = wide[wide["label"] == "PAR:total"].sort_values(["year", "province_code"])["value"].to_numpy()
    b = wide[wide["label"] == "PCI:total"].sort_values(["year", "province_code"])["value"].to_numpy()
    assert row["r"] == pytest.approx(stats.pearsonr(a, b).statistic, abs=1e-12)
    assert correlate(long, year=2022, n_boot=0)["year"].unique().tolist() == [2022]
    with pytest.raises(ValidationError):
        correlate(long, year=2019)
    with pytest.raises(ValidationError):
        correlate(long, method="distance")
    with pytest.raises(ValidationError) as info:
        correlate(long, x=["PAR:field9", "PAR:total"], y="XYZ")
    assert info.value.failures["value"].tolist() == ["PAR:field9", "XYZ"]


def test_pci_top30_years_carry_a_note():
    long = _long(8, years=(2022, 2023))
    res = correlate(long, x="PAR:total", y="PCI:total", n_boot=0)
    assert not res.loc[res["year"] == 2022, "note"].str.contains("top 30").any()
    assert res.loc[res["year"] == 2023, "note"].str.contains("top 30").all()


def test_lagged_correlation_pairs_year_t_with_t_plus_1():
    long = _long(9, years=(2021, 2022, 2023))
    res = lagged_correlate(long, x="PAR:total", y="PCI:total", lag=1, method="spearman", n_boot=200)
    assert list(res.columns) == LAGGED_COLUMNS
    assert res[["year", "year_y"]].values.tolist() == [[2021, 2022], [2022, 2023]]
    par = long[(long["index"] == "PAR") & (long["component"] == "total") & (long["year"] == 2021)]
    pci = long[(long["index"] == "PCI") & (long["component"] == "total") & (long["year"] == 2022)]
    m = par.merge(pci, on="province_code")
    assert res.iloc[0]["r"] == pytest.approx(stats.spearmanr(m["value_x"], m["value_y"]).statistic, abs=1e-12)
    assert "1 year(s) after" in res.iloc[0]["note"]
    assert "top 30" in res.iloc[1]["note"]  # PCI measured in 2023
    pooled = lagged_correlate(long, x="PAR:total", y="PCI:total", year="pooled", n_boot=0)
    assert pooled.iloc[0]["n"] == 126


def _residual_corr(x, y, Z):
    rx = x - Z @ np.linalg.lstsq(Z, x, rcond=None)[0]
    ry = y - Z @ np.linalg.lstsq(Z, y, rcond=None)[0]
    return rx @ ry / np.sqrt((rx @ rx) * (ry @ ry))


def test_partial_correlation_controlling_for_region_independently():
    long = _long(10, years=(2021,), missing=0.1)
    res = partial_correlate(long, x="PAR:total", y=["PCI:total", "PAPI:total"], covar="region", year=2021)
    assert list(res.columns) == PARTIAL_COLUMNS
    for row in res.itertuples(index=False):
        x, y = _pair(long, 2021, row.x, row.y)
        codes = _pair_codes(long, 2021, row.x, row.y)
        regions = region_of(codes).to_numpy()
        levels = sorted(set(regions))
        Z = np.column_stack([np.ones(len(x))] + [(regions == lv).astype(float) for lv in levels[1:]])
        assert row.k == len(levels) - 1
        assert row.r == pytest.approx(_residual_corr(x, y, Z), abs=1e-12)
        # The same test through a regression written separately: t of x in y ~ x + C(region).
        fit = smf.ols("y ~ x + C(region)", pd.DataFrame({"x": x, "y": y, "region": regions})).fit()
        assert row.p == pytest.approx(fit.pvalues["x"], rel=1e-8)
        assert row.n == len(x)


def test_region_is_refused_for_the_merged_provinces_of_2025():
    """Codes of 2025 are the 34 merged provinces: no old region is given to them."""
    long = _long(10, years=(2024, 2025), missing=0.0)
    ok = partial_correlate(long, x="PAR:total", y="PCI:total", covar="region", year=2024)
    assert len(ok) == 1 and ok.iloc[0]["n"] > 0
    with pytest.raises(ValidationError, match="regions are shipped for the 63 pre-2025 provinces only") as err:
        partial_correlate(long, x="PAR:total", y="PCI:total", covar="region")
    assert err.value.failures["value"].str.endswith(" in 2025").all()
    assert set(err.value.failures["column"]) == {"year"}


def _pair_codes(long, year, a, b):
    def one(label):
        index, comp = label.split(":")
        d = long[(long["year"] == year) & (long["index"] == index) & (long["component"] == comp)]
        return d[["province_code", "value"]].rename(columns={"value": label})
    return one(a).merge(one(b), on="province_code").dropna().sort_values("province_code")["province_code"]


def test_partial_spearman_ranks_first_and_numeric_covariates_enter_as_is():
    rng = np.random.default_rng(12)
    wide = pd.DataFrame({"x": rng.normal(size=40), "z": rng.normal(size=40)})
    wide["y"] = wide["x"] + wide["z"] + rng.normal(size=40)
    row = partial_correlate(wide, "x", "y", covar="z", method="spearman").iloc[0]
    Z = np.column_stack([np.ones(40), wide["z"]])
    assert row["r"] == pytest.approx(_residual_corr(stats.rankdata(wide["x"]), stats.rankdata(wide["y"]), Z))
    assert row["k"] == 1


def test_progress_is_reported_up_to_the_total():
    calls = []
    correlate(_long(), method="spearman", n_boot=100, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (24, 24)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_the_shipped_data_study_runs_with_honest_counts():
    ext = load_shipped()
    res = correlate(ext, x="PAR:total", y=["PCI:total", "SIPAS:total"], year=2021, method="spearman", n_boot=500)
    pci = res[res["y"] == "PCI:total"].iloc[0]
    x, y = _pair(ext, 2021, "PAR:total", "PCI:total")
    assert pci["n"] == len(x) == 13  # the 13 PAR 2021 totals published; PCI 2021 covers all 63
    assert pci["r"] == pytest.approx(stats.spearmanr(x, y).statistic)
    par_only = ext[(ext["year"] == 2021) & (ext["index"] == "PAR") & (ext["component"] == "total")]["value"]
    assert pci["n"] + pci["n_missing_y"] == par_only.notna().sum()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(-50, 50), st.floats(-50, 50)), min_size=6, max_size=30))
def test_rank_results_are_invariant_to_monotone_transforms(points):
    wide = pd.DataFrame(points, columns=["x", "y"]).round(1)
    for method in ("spearman", "kendall"):
        a = correlate(wide, "x", "y", method=method, n_boot=50).iloc[0]
        b = correlate(wide.assign(x=np.exp(wide["x"] / 10)), "x", "y", method=method, n_boot=50).iloc[0]
        for col in ("r", "ci_low", "ci_high"):
            assert (math.isnan(a[col]) and math.isnan(b[col])) or a[col] == pytest.approx(b[col], abs=1e-9)
        if not math.isnan(a["r"]):
            assert -1 - 1e-12 <= a["r"] <= 1 + 1e-12
            if not math.isnan(a["ci_low"]):
                assert a["ci_low"] <= a["ci_high"]


def test_reference_study_is_the_cli_table_and_takes_a_tenants_par():
    from parindex_lib.correlation import reference_study

    res = reference_study(year=2021, method="spearman", n_boot=200)
    assert list(res.columns[:10]) == ["x", "y", "year", "method", "n", "r", "ci_low", "ci_high", "p", "p_adj"]
    assert set(res["year"]) == {2021}
    pooled = reference_study(pooled=True, x="PAPI:total", y="PCI:total", n_boot=0)
    assert pooled["year"].tolist() == ["pooled"]
    par = pd.DataFrame({"province_code": CODES, "province_name": "", "year": 2022, "index": "PAR",
                        "component": "total", "value": np.linspace(80, 95, 63)})
    mine = reference_study(year=2022, x="PAR:total", y="PAPI:total", par=par, n_boot=0)
    assert mine.iloc[0]["n"] == 61  # PAPI 2022 totals: 61 provinces
    with pytest.raises(ValidationError):
        reference_study(year=2021, pooled=True)
