"""Panel OLS against numpy and against hand-written robust covariance formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from parindex_lib.errors import ValidationError
from parindex_lib.provinces import province_table
from parindex_lib.regression import TIDY_COLUMNS, panel_ols

CODES = province_table("old")["province_code"].tolist()


def _panel(seed=0, years=(2021, 2022, 2023)):
    rng = np.random.default_rng(seed)
    rows = []
    effect = rng.normal(size=63)
    for i, year in enumerate(years):
        f3 = 80 + 5 * rng.normal(size=63)
        f7 = 70 + 6 * rng.normal(size=63)
        pci = 20 + 0.3 * f3 + 0.1 * f7 + 1.5 * i + 2 * effect + rng.normal(size=63) * (1 + (f3 > 80))
        pci[rng.random(63) < 0.05] = np.nan
        for code, a, b, c in zip(CODES, f3, f7, pci):
            rows += [{"province_code": code, "year": year, "index": "PAR", "component": "field3", "value": a},
                     {"province_code": code, "year": year, "index": "PAR", "component": "field7", "value": b},
                     {"province_code": code, "year": year, "index": "PCI", "component": "total", "value": c}]
    return pd.DataFrame(rows)


def _design(long, years):
    w = long.assign(label=long["index"] + ":" + long["component"]).pivot(
        index=["province_code", "year"], columns="label", values="value").reset_index()
    w.columns = ["province_code", "year", "f3", "f7", "pci"]
    w = w.dropna().sort_values(["year", "province_code"]).reset_index(drop=True)
    cols = [np.ones(len(w)), w["f3"].to_numpy(), w["f7"].to_numpy()]
    cols += [(w["year"] == yr).to_numpy(float) for yr in years[1:]]
    return w, np.column_stack(cols), w["pci"].to_numpy()


def test_pooled_panel_with_year_effects_and_province_clusters():
    years = (2021, 2022, 2023)
    long = _panel(1, years)
    tidy, result = panel_ols(long, "PCI:total", ["PAR:field3", "PAR:field7"])
    assert list(tidy.columns) == TIDY_COLUMNS
    assert tidy["term"].tolist() == ["Intercept", "year[2022]", "year[2023]", "PAR:field3", "PAR:field7"]
    w, X, y = _design(long, years)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    est = dict(zip(tidy["term"], tidy["estimate"]))
    np.testing.assert_allclose([est["Intercept"], est["PAR:field3"], est["PAR:field7"], est["year[2022]"],
                                est["year[2023]"]], beta, rtol=1e-9)
    # Cluster-robust covariance written out: (X'X)^-1 sum_g X_g'u_g u_g'X_g (X'X)^-1, small-sample factor.
    u = y - X @ beta
    bread = np.linalg.inv(X.T @ X)
    meat = np.zeros((X.shape[1], X.shape[1]))
    groups = w["province_code"].to_numpy()
    for g in np.unique(groups):
        s = X[groups == g].T @ u[groups == g]
        meat += np.outer(s, s)
    n, k, G = len(y), X.shape[1], len(np.unique(groups))
    V = bread @ meat @ bread * G / (G - 1) * (n - 1) / (n - k)
    se = np.sqrt(np.diag(V))
    got_se = dict(zip(tidy["term"], tidy["std_error"]))
    np.testing.assert_allclose([got_se["Intercept"], got_se["PAR:field3"], got_se["PAR:field7"],
                                got_se["year[2022]"], got_se["year[2023]"]], se, rtol=1e-9)
    t3 = beta[1] / se[1]
    row = tidy.set_index("term").loc["PAR:field3"]
    assert row["p"] == pytest.approx(2 * stats.t.sf(abs(t3), G - 1), rel=1e-9)
    q = stats.t.ppf(0.975, G - 1)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((beta[1] - q * se[1], beta[1] + q * se[1]), rel=1e-9)
    assert set(tidy["n"]) == {n} and set(tidy["se_type"]) == {f"cluster(province_code, G={G})"}
    r2 = 1 - (u @ u) / ((y - y.mean()) @ (y - y.mean()))
    assert tidy["r2"].iloc[0] == pytest.approx(r2, rel=1e-9)
    assert result.nobs == n


def test_single_year_uses_hc3():
    long = _panel(2, (2024,))
    tidy, _ = panel_ols(long, "PCI:total", ["PAR:field3", "PAR:field7"])
    assert set(tidy["se_type"]) == {"HC3"}
    assert tidy["term"].tolist() == ["Intercept", "PAR:field3", "PAR:field7"]
    _, X, y = _design(long, (2024,))
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    u = y - X @ beta
    bread = np.linalg.inv(X.T @ X)
    h = np.einsum("ij,jk,ik->i", X, bread, X)
    V = bread @ (X.T * (u ** 2 / (1 - h) ** 2)) @ X @ bread
    np.testing.assert_allclose(tidy["estimate"], beta, rtol=1e-9)
    np.testing.assert_allclose(tidy["std_error"], np.sqrt(np.diag(V)), rtol=1e-9)
    t = beta / np.sqrt(np.diag(V))
    np.testing.assert_allclose(tidy["p"], 2 * stats.t.sf(np.abs(t), len(y) - X.shape[1]), rtol=1e-8)


def test_without_clusters_or_year_effects():
    long = _panel(3)
    tidy, _ = panel_ols(long, "PCI:total", "PAR:field3", cluster=None, year_fe=False)
    assert tidy["term"].tolist() == ["Intercept", "PAR:field3"] and set(tidy["se_type"]) == {"HC3"}


def test_input_errors_name_the_offender():
    long = _panel(4)
    with pytest.raises(ValidationError):
        panel_ols(long, "PAR", "PCI:total")  # PAR names two variables here
    with pytest.raises(ValidationError) as info:
        panel_ols(long, "PCI:total", ["PAR:field9"])
    assert "PAR:field9" in str(info.value)
    with pytest.raises(ValidationError):
        panel_ols(long, "PCI:total", "PAR:field3", cluster="district")
    with pytest.raises(ValidationError):
        panel_ols(long[long["province_code"].isin(["01", "02"])], "PCI:total", ["PAR:field3", "PAR:field7"])
