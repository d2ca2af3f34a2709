"""Panel regressions of an external index on PAR INDEX fields (statsmodels OLS).

The model is ordinary least squares with year fixed effects, written with the
statsmodels formula API; standard errors are clustered by province when
several years are pooled, and HC3 (heteroskedasticity-robust) for a single
year. The tidy table is for reports; the statsmodels result is returned too,
for experts.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import pandas as pd
import statsmodels.formula.api as smf

from .correlation import _prepare, _resolve
from .errors import ValidationError

__all__ = ["TIDY_COLUMNS", "panel_ols"]

#: Columns of the tidy table of :func:`panel_ols`, in order.
TIDY_COLUMNS = ["term", "estimate", "std_error", "t", "p", "ci_low", "ci_high", "n", "r2", "se_type"]


def panel_ols(data: pd.DataFrame, y: str, x: str | Sequence[str], *, year_fe: bool = True,
              cluster: str | None = "province_code", ci: float = 0.95, unit: str | None = None
              ) -> tuple[pd.DataFrame, Any]:
    """OLS of ``y`` on ``x`` with year fixed effects and robust standard errors.

    Rows with a missing ``y`` or ``x`` are left out (listwise); ``n`` says
    how many were used.

    Parameters
    ----------
    data
        Long or wide data (as :func:`parindex_lib.correlation.correlate`).
    y
        One variable, e.g. ``"PCI:total"``.
    x
        Variables or index names, e.g. ``["PAR:field3", "PAR:field7"]``.
    year_fe
        Add year dummies (``C(year)``) when the data span several years.
    cluster
        Column whose values are the clusters (default the province code);
        used when several years are pooled. None: HC3 throughout.
    ci
        Confidence level of ``ci_low``, ``ci_high``.
    unit
        The unit column (default ``province_code`` or ``unit_code``).

    Returns
    -------
    tidy : pandas.DataFrame
        One row per term, columns ``term`` (``Intercept``, the x variables,
        ``year[2022]``...), ``estimate``, ``std_error``, ``t``, ``p``
        (t distribution: residual degrees of freedom for HC3, clusters - 1
        for clustered errors), ``ci_low``, ``ci_high``, ``n``, ``r2``,
        ``se_type`` (``"HC3"`` or ``"cluster(province_code, G=63)"``).
    result : statsmodels.regression.linear_model.RegressionResultsWrapper
        The fitted model (its variables are renamed ``y``, ``x0``, ``x1``...;
        ``result.model.data.frame`` holds the rows used).

    Raises
    ------
    ValidationError
        Unknown variables, ``y`` naming several variables, a missing cluster
        column, or too few rows for the terms.

    Examples
    --------
    >>> wide = pd.DataFrame({"province_code": ["01", "02", "04", "06", "08"], "year": 2024,
    ...                      "PCI:total": [60.0, 62, 65, 63, 70], "PAR:total": [80.0, 82, 86, 85, 90]})
    >>> tidy, result = panel_ols(wide, "PCI:total", "PAR:total")
    >>> tidy[["term", "n", "se_type"]].values.tolist()
    [['Intercept', 5, 'HC3'], ['PAR:total', 5, 'HC3']]
    >>> float(round(tidy.loc[1, "estimate"], 4))  # 57 / 59.2 by hand
    0.9628
    """
    wide, u = _prepare(data, unit)
    ys = _resolve(wide, y, u)
    if len(ys) != 1:
        raise ValidationError("y names one variable", [{"column": "y", "value": y,
                                                        "expected": "one variable, e.g. 'PCI:total'"}])
    xs = [v for v in _resolve(wide, x, u) if v != ys[0]]
    if not xs:
        raise ValidationError("no x variable", [{"column": "x", "value": x, "expected": "at least one variable"}])
    names = {ys[0]: "y", **{v: f"x{i}" for i, v in enumerate(xs)}}
    frame = wide[[c for c in names]].rename(columns=names)
    has_year = "year" in wide.columns
    if has_year:
        frame["year"] = wide["year"].astype(int).to_numpy()
    if cluster is not None:
        if cluster not in wide.columns:
            raise ValidationError("the cluster column is missing", [
                {"column": cluster, "expected": "a column of the data (province_code by default), or cluster=None"}])
        frame["_cluster"] = wide[cluster].astype(str).to_numpy()
    frame = frame.dropna(subset=list(names.values())).reset_index(drop=True)
    n_years = frame["year"].nunique() if has_year else 1
    formula = "y ~ " + " + ".join(names[v] for v in xs)
    if year_fe and n_years > 1:
        formula += " + C(year)"
    k = len(xs) + 1 + (n_years - 1 if year_fe and n_years > 1 else 0)
    if len(frame) <= k + 1:
        raise ValidationError("too few complete rows for the model", [
            {"column": "n", "value": len(frame), "expected": f"more than {k + 1} rows for {k} terms"}])
    model = smf.ols(formula, data=frame)
    if n_years > 1 and cluster is not None:
        codes = pd.factorize(frame["_cluster"])[0]
        n_clusters = int(codes.max()) + 1
        result = model.fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)
        se_type = f"cluster({cluster}, G={n_clusters})"
    else:
        result = model.fit(cov_type="HC3", use_t=True)
        se_type = "HC3"
    conf = result.conf_int(alpha=1 - ci)
    back = {v: k for k, v in names.items()}
    terms = []
    for t in result.params.index:
        m = re.fullmatch(r"C\(year\)\[T\.(\d+)\]", t)
        terms.append(f"year[{m.group(1)}]" if m else back.get(t, t))
    tidy = pd.DataFrame({
        "term": terms, "estimate": result.params.to_numpy(), "std_error": result.bse.to_numpy(),
        "t": result.tvalues.to_numpy(), "p": result.pvalues.to_numpy(), "ci_low": conf.iloc[:, 0].to_numpy(),
        "ci_high": conf.iloc[:, 1].to_numpy(), "n": int(result.nobs), "r2": float(result.rsquared),
        "se_type": se_type}, columns=TIDY_COLUMNS)
    return tidy, result
