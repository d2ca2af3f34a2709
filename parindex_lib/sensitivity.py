"""Sensitivity of ranks to the field weights and the aggregation method (the COINr idea).

A published rank rests on choices: how much each field weighs and how field
indices are combined. :func:`rank_sensitivity` perturbs those choices at
random (Monte Carlo) and reports, per unit, the interval its rank moves in.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .errors import ValidationError

__all__ = ["AGGREGATIONS", "SENSITIVITY_COLUMNS", "rank_sensitivity", "aggregate"]

#: Aggregation methods, by name.
AGGREGATIONS = ("arithmetic", "geometric")
#: Columns of :func:`rank_sensitivity`, in order (``year`` first when the input has years).
SENSITIVITY_COLUMNS = ["unit_code", "nominal_rank", "median_rank", "rank_low", "rank_high", "mean_abs_shift"]


def aggregate(values: np.ndarray, weights: np.ndarray, method: str) -> np.ndarray:
    """Combine field indices with weights, for many weight sets at once.

    Parameters
    ----------
    values
        ``(units, fields)`` field indices (>= 0).
    weights
        ``(scenarios, fields)`` weights, each row summing to 1.
    method
        ``"arithmetic"``: sum of w x; ``"geometric"``: product of x ** w (0
        when any field is 0).

    Returns
    -------
    numpy.ndarray
        ``(scenarios, units)`` scores.

    Examples
    --------
    >>> aggregate(np.array([[4.0, 9.0]]), np.array([[0.5, 0.5]]), "geometric")
    array([[6.]])
    """
    if method == "arithmetic":
        return weights @ values.T
    if method == "geometric":
        with np.errstate(divide="ignore"):
            logs = np.log(values)
        return np.exp(weights @ logs.T)
    raise ValidationError("unknown aggregation method", [{"column": "methods", "value": method,
                                                          "expected": "one of " + ", ".join(AGGREGATIONS)}])


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Rank 1 = highest score; ties share the best (smallest) rank."""
    return stats.rankdata(-scores, method="min", axis=-1)


def rank_sensitivity(field_points: pd.DataFrame, *, n: int = 1000, weight_spread: float = 0.25,
                     methods: Sequence[str] = AGGREGATIONS, seed: int = 0,
                     weights: Mapping[str, float] | None = None, nominal_method: str = "arithmetic",
                     interval: float = 0.90, unit: str = "unit_code") -> pd.DataFrame:
    """How far each unit's rank moves when field weights and aggregation change.

    Every scenario draws each field's weight uniformly in ``nominal x [1 -
    spread, 1 + spread]`` and renormalises them to sum to 1; each weight draw
    is evaluated under every method in ``methods``, giving ``n x
    len(methods)`` scenarios. Draws: ``numpy.random.default_rng(seed)
    .uniform(1 - spread, 1 + spread, size=(n, fields))``, fields in order of
    first appearance. Ranks: 1 = best, ties share the best rank.

    Parameters
    ----------
    field_points
        Columns ``unit_code``, ``field``, ``index_pct`` (the field index in
        %), and optionally ``year`` (each year is studied separately). Every
        unit needs every field.
    n
        Weight draws.
    weight_spread
        Relative perturbation of each weight, 0 <= spread < 1.
    methods
        Aggregation methods to draw over (:data:`AGGREGATIONS`).
    seed
        Seed of the draws.
    weights
        Nominal weight per field (for example the field maxima, which
        reproduce the official total); default equal weights.
    nominal_method
        The method of the nominal rank.
    interval
        Coverage of ``rank_low`` .. ``rank_high`` (default the 5th to 95th
        percentiles of the scenario ranks, as whole ranks: the lower one
        rounded down, the upper one rounded up).
    unit
        The unit column (``unit_code``; ``province_code`` for provinces); the
        result names its first column the same way.

    Returns
    -------
    pandas.DataFrame
        One row per unit (per year), sorted by nominal rank, columns
        (``year``), ``unit_code``, ``nominal_rank``, ``median_rank``,
        ``rank_low``, ``rank_high``, ``mean_abs_shift`` (mean absolute
        difference between scenario and nominal rank).

    Raises
    ------
    ValidationError
        Listing missing or duplicated unit-field values, negative values,
        unknown fields in ``weights``, bad methods or spread.

    Examples
    --------
    >>> fp = pd.DataFrame({"unit_code": ["A", "A", "B", "B"], "field": ["1", "2", "1", "2"],
    ...                    "index_pct": [90.0, 70.0, 80.0, 79.0]})
    >>> rank_sensitivity(fp, n=200, methods=("arithmetic",))[["unit_code", "nominal_rank"]].values.tolist()
    [['A', 1], ['B', 2]]
    """
    need = [unit, "field", "index_pct"]
    missing = [c for c in need if c not in field_points.columns]
    if missing:
        raise ValidationError("field points lack columns", [
            {"column": c, "expected": "columns " + ", ".join(need)} for c in missing])
    methods = tuple(methods)
    bad = [m for m in methods + (nominal_method,) if m not in AGGREGATIONS]
    if bad or not methods:
        raise ValidationError("unknown aggregation method", [
            {"column": "methods", "value": m, "expected": "one of " + ", ".join(AGGREGATIONS)} for m in bad or [None]])
    if not (0 <= weight_spread < 1):
        raise ValidationError("weight_spread is a fraction", [{"column": "weight_spread", "value": weight_spread,
                                                               "expected": "0 <= spread < 1"}])
    if int(n) < 1:
        raise ValidationError("n is the number of draws", [{"column": "n", "value": n, "expected": ">= 1"}])
    if not (0 < interval < 1):
        raise ValidationError("interval is a coverage", [{"column": "interval", "value": interval,
                                                          "expected": "between 0 and 1, e.g. 0.9"}])
    has_year = "year" in field_points.columns
    frames = []
    groups = field_points.groupby("year", sort=True) if has_year else [(None, field_points)]
    for year, fp in groups:
        res = _one(fp, unit, int(n), float(weight_spread), methods, int(seed), weights, nominal_method, interval)
        if has_year:
            res.insert(0, "year", year)
        frames.append(res)
    return pd.concat(frames, ignore_index=True)


def _one(fp: pd.DataFrame, unit: str, n: int, spread: float, methods: tuple[str, ...], seed: int,
         weights: Mapping[str, float] | None, nominal_method: str, interval: float) -> pd.DataFrame:
    fields = list(dict.fromkeys(fp["field"].astype(str)))
    units = list(dict.fromkeys(fp[unit].astype(str)))
    fp = fp.assign(field=fp["field"].astype(str), **{unit: fp[unit].astype(str)})
    fails = []
    dup = fp[fp.duplicated([unit, "field"], keep=False)]
    for u, f in dup[[unit, "field"]].drop_duplicates().itertuples(index=False):
        fails.append({"column": "index_pct", "value": f"{u} field {f}", "expected": "one value per unit and field"})
    table = fp.drop_duplicates([unit, "field"]).pivot(index=unit, columns="field", values="index_pct")
    table = table.reindex(index=units, columns=fields)
    values = table.to_numpy(dtype=float)
    for i, j in zip(*np.nonzero(~np.isfinite(values))):
        fails.append({"column": "index_pct", "value": f"{units[i]} field {fields[j]}",
                      "expected": "a value: every unit needs every field (missing is never 0)"})
    for i, j in zip(*np.nonzero(np.isfinite(values) & (values < 0))):
        fails.append({"column": "index_pct", "value": f"{units[i]} field {fields[j]}: {values[i, j]}",
                      "expected": "a field index >= 0"})
    if weights is not None:
        for f in set(map(str, weights)) - set(fields):
            fails.append({"column": "weights", "value": f, "expected": "a field of the data: " + ", ".join(fields)})
        for f in fields:
            if f not in {str(k) for k in weights}:
                fails.append({"column": "weights", "value": f, "expected": "a nominal weight for this field"})
            elif not float({str(k): v for k, v in weights.items()}[f]) > 0:
                fails.append({"column": "weights", "value": f, "expected": "a positive weight"})
    if fails:
        raise ValidationError("field points cannot be aggregated", fails)
    w0 = (np.array([float({str(k): v for k, v in weights.items()}[f]) for f in fields]) if weights is not None
          else np.ones(len(fields)))
    w0 = w0 / w0.sum()
    nominal = _ranks(aggregate(values, w0[None, :], nominal_method))[0]
    rng = np.random.default_rng(seed)
    draws = w0[None, :] * rng.uniform(1 - spread, 1 + spread, size=(n, len(fields)))
    draws /= draws.sum(axis=1, keepdims=True)
    ranks = np.vstack([_ranks(aggregate(values, draws, m)) for m in methods])  # (n * methods, units)
    lo_q, hi_q = (1 - interval) / 2, (1 + interval) / 2
    out = pd.DataFrame({
        unit: units, "nominal_rank": nominal.astype(int),
        "median_rank": np.median(ranks, axis=0),
        "rank_low": np.quantile(ranks, lo_q, axis=0, method="lower").astype(int),
        "rank_high": np.quantile(ranks, hi_q, axis=0, method="higher").astype(int),
        "mean_abs_shift": np.abs(ranks - nominal[None, :]).mean(axis=0)}, columns=[unit] + SENSITIVITY_COLUMNS[1:])
    return out.sort_values(["nominal_rank", unit], kind="stable").reset_index(drop=True)
