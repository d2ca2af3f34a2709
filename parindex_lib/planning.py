"""Improvement planning: points lost, priorities, targets and the action plan.

For one unit and year, the results say where points were lost; this module
turns them into a plan.

- :func:`points_lost`: per node, the points lost (``max_points - points``)
  and the gaps to the median and to the best unit of the same kind.
- :func:`priority`: which nodes to work on first, combining the points a
  unit can realistically recover (its gap to the best unit, never more than
  it lost) with how strongly the node's field moves with an external index
  (PCI, PAPI, SIPAS) in a correlation study. The formula is
  :data:`PRIORITY_FORMULA`.
- :func:`target`: the points needed to reach a rank or a group, given the
  other units' current scores, and the nodes that could provide them.
- :func:`save_action`, :func:`delete_action`, :func:`action_plan`: the
  editable action plan (node, gap, action, owner, deadline, status) kept in
  the store, versioned and audited like scores.

Every table function takes the results of
:func:`parindex_lib.results.results_table` (or
:func:`parindex_lib.aggregation.roll_up`), all levels, for the unit and the
units it is compared with, and returns a new DataFrame.

Examples
--------
Three departments scored on one node worth 4 points:

>>> res = pd.DataFrame({"unit_code": ["D1", "D2", "D3"], "year": 2024, "node_code": "1.1",
...                     "level": "criterion", "points": [1.0, 2.5, 3.5], "max_points": 4.0})
>>> lost = points_lost(res, "D1", 2024, level="criterion")
>>> lost[["points_lost", "median_points", "best_points", "gap_to_median", "gap_to_best"]].values.tolist()
[[3.0, 2.5, 3.5, 1.5, 2.5]]
>>> priority(lost, {"1": 0.6})[["recoverable", "association", "priority"]].values.tolist()
[[2.5, 0.6, 4.0]]
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert, select, update

from . import models as m
from .errors import AccessDenied, ConflictError, NotFound, ValidationError
from .framework import DEFAULT_BANDS, Framework
from .store import _changes, _row_conflict

__all__ = [
    "POINTS_LOST_COLUMNS",
    "PRIORITY_COLUMNS",
    "TARGET_NODE_COLUMNS",
    "ACTION_PLAN_COLUMNS",
    "ACTION_STATUSES",
    "PLAN_WRITERS",
    "PRIORITY_FORMULA",
    "DEFAULT_WEIGHT",
    "points_lost",
    "association_by_field",
    "priority",
    "target",
    "may_plan",
    "save_action",
    "delete_action",
    "action_plan",
]

#: Columns of :func:`points_lost`, in order.
POINTS_LOST_COLUMNS = ["unit_code", "year", "node_code", "level", "name_vi", "max_points", "points", "points_lost",
                       "median_points", "best_points", "gap_to_median", "gap_to_best"]
#: Columns of :func:`priority`, in order.
PRIORITY_COLUMNS = POINTS_LOST_COLUMNS + ["recoverable", "association", "priority"]
#: Columns of the ``nodes`` table of :func:`target`, in order.
TARGET_NODE_COLUMNS = ["node_code", "level", "name_vi", "max_points", "points", "best_points", "recoverable",
                       "cumulative"]
#: Columns of :func:`action_plan`, in order.
ACTION_PLAN_COLUMNS = ["id", "unit_code", "year", "node_code", "gap", "action", "owner", "deadline", "status",
                       "version", "updated_by", "updated_at"]
#: Statuses of an action, in their usual order.
ACTION_STATUSES = ("planned", "in_progress", "done", "dropped")
#: Roles that write action plans: admins for every unit, editors for their own units.
PLAN_WRITERS = ("admin", "editor")
#: Weight of the association in :func:`priority` by default.
DEFAULT_WEIGHT = 1.0
#: The priority formula, as shown in the apps and the evidence pack.
PRIORITY_FORMULA = ("priority = recoverable × (1 + weight × association); "
                    "recoverable = max(0, min(best_points − points, max_points − points)); "
                    "association = |r| of the node's field with the chosen external index (0 when not measured)")

_DECIMALS = 9
_TOL = 1e-9
_SHOWN = 20
_LEVELS = ("index", "field", "criterion", "subcriterion")
_ACTION_MAX = 4000
_OWNER_MAX = 200
_FIELD_LABEL = re.compile(r"^(?:PAR:)?(?:field)?(\d+)$")


# -- the table (revision 0003) ---------------------------------------------------------

action_plans = m.action_plans


# -- helpers -------------------------------------------------------------------------------

def _require(results: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if not isinstance(results, pd.DataFrame):
        raise ValidationError(f"a results table is needed to {what}", [
            {"value": type(results).__name__, "expected": "a DataFrame from results_table or roll_up"}])
    missing = [c for c in columns if c not in results.columns]
    if missing:
        raise ValidationError(f"results lack columns needed to {what}", [
            {"column": c, "value": None, "expected": f"a column {c} (see parindex_lib.results.results_table)"}
            for c in missing])


def _code_key(code: str) -> tuple:
    """Sort key of node codes in tree order without a framework: total, then 1, 1.1, 1.1.1, 1.2, 2..."""
    if code == "total":
        return (0,)
    return (1, *[(int(p), "") if p.isdigit() else (10**9, p) for p in code.split(".")])


def _tree_order(codes: Iterable[str], framework: Framework | None) -> np.ndarray:
    codes = [str(c) for c in codes]
    if framework is not None:
        pos = {"total": -1, **{str(c): i for i, c in enumerate(framework.nodes["code"])}}
        return np.array([pos.get(c, 10**9) for c in codes], dtype=np.int64)
    ranked = {c: i for i, c in enumerate(sorted(set(codes), key=_code_key))}
    return np.array([ranked[c] for c in codes], dtype=np.int64)


def _peers(results: pd.DataFrame, unit_code: str, year: int, kind: str | None,
           units: pd.DataFrame | None) -> pd.DataFrame:
    """The rows of ``year`` for the unit and the units it is compared with (same kind, same framework)."""
    year = int(year)
    rows = results[(results["year"] == year).to_numpy(bool)]
    ucode = rows["unit_code"].astype(str)
    mine = (ucode == str(unit_code)).to_numpy(bool)
    if not mine.any():
        present = sorted(set(results.loc[(results["unit_code"].astype(str) == str(unit_code)).to_numpy(bool),
                                         "year"].astype(int)))
        raise ValidationError(f"no results for unit {unit_code} in {year}", [
            {"column": "unit_code, year", "value": f"{unit_code}, {year}",
             "expected": ("a year with results for this unit: " + ", ".join(map(str, present))) if present
             else "a unit_code present in the results"}])
    if "framework_id" in rows.columns:
        fid = rows.loc[mine, "framework_id"].astype(str).iloc[0]
        rows = rows[(rows["framework_id"].astype(str) == fid).to_numpy(bool)]
        ucode = rows["unit_code"].astype(str)
    if kind is not None:
        if "kind" in rows.columns:
            kinds = rows["kind"].astype(str)
        elif units is not None and {"code", "kind"} <= set(units.columns):
            kinds = ucode.map(dict(zip(units["code"].astype(str), units["kind"].astype(str))))
        else:
            raise ValidationError("comparing units of one kind needs their kinds", [
                {"column": "kind", "value": kind,
                 "expected": "a kind column in the results, or units= (the units table with code and kind)"}])
        own = kinds[(ucode == str(unit_code)).to_numpy(bool)]
        if (own != kind).any():
            raise ValidationError(f"unit {unit_code} is not of kind {kind}", [
                {"column": "kind", "value": kind, "expected": f"the kind of unit {unit_code}: {own.iloc[0]}"}])
        rows = rows[(kinds == kind).to_numpy(bool)]
    return rows


def _level_mask(rows: pd.DataFrame, level: str | None, framework: Framework | None) -> np.ndarray:
    allowed = (*_LEVELS, "leaf", None)
    if level not in allowed:
        raise ValidationError("unknown level", [
            {"column": "level", "value": level, "expected": "one of " + ", ".join(map(str, allowed))}])
    if level is None:
        return np.ones(len(rows), dtype=bool)
    if level == "leaf":
        if framework is None:
            raise ValidationError("the leaf level needs the framework", [
                {"column": "framework", "value": None, "expected": "framework= (its leaves are where scores are entered)"}])
        leaves = set(framework.nodes.loc[framework.nodes["is_leaf"], "code"].astype(str))
        return rows["node_code"].astype(str).isin(leaves).to_numpy(bool)
    return (rows["level"].astype(str) == level).to_numpy(bool)


def _names(framework: Framework | None, rows: pd.DataFrame) -> dict[str, Any]:
    if framework is not None:
        return {"total": framework.name_vi, **dict(zip(framework.nodes["code"].astype(str), framework.nodes["name_vi"]))}
    if "name_vi" in rows.columns:
        return dict(zip(rows["node_code"].astype(str), rows["name_vi"]))
    return {}


def _round(values: Any) -> np.ndarray:
    return np.round(np.asarray(values, dtype="float64"), _DECIMALS)


# -- points lost -------------------------------------------------------------------------------

def points_lost(results: pd.DataFrame, unit_code: str, year: int, *, level: str | None = "subcriterion",
                kind: str | None = None, framework: Framework | None = None,
                units: pd.DataFrame | None = None) -> pd.DataFrame:
    """Points lost per node by one unit, beside the median and the best unit of its kind.

    Parameters
    ----------
    results : pandas.DataFrame
        :func:`parindex_lib.results.results_table` or
        :func:`parindex_lib.aggregation.roll_up` with every level needed:
        ``unit_code``, ``year``, ``node_code``, ``level``, ``points``,
        ``max_points`` (``framework_id`` when several frameworks are mixed:
        the unit is then compared only with units on its own framework).
        Every unit in ``results`` for ``year`` is a comparison unit unless
        ``kind`` narrows them.
    unit_code, year
        The unit and the assessment year.
    level : str, optional
        ``"subcriterion"`` (default), ``"criterion"``, ``"field"``,
        ``"index"`` (the total), ``"leaf"`` (every leaf, whatever its depth;
        needs ``framework``) or None (every level).
    kind : str, optional
        Compare only with units of this kind (the unit must be of it); the
        kinds come from a ``kind`` column of ``results`` or from ``units``.
        Pass ``results_table(..., kind=...)`` and leave this None to get the
        same comparison set as the published ranking.
    framework : Framework, optional
        Gives ``name_vi`` and the tree order; without it, names come from a
        ``name_vi`` column of ``results`` when there is one.
    units : pandas.DataFrame, optional
        The units table (``code``, ``kind``), for ``kind``.

    Returns
    -------
    pandas.DataFrame
        One row per node of the unit at ``level``. Columns, in order:
        ``unit_code``, ``year``, ``node_code``, ``level``, ``name_vi``,
        ``max_points``, ``points`` (the unit's), ``points_lost``
        (``max_points - points``), ``median_points`` and ``best_points``
        (median and highest points on the node among the comparison units,
        the unit included, units without points left out), ``gap_to_median``
        (``median_points - points``: negative when the unit is above the
        median) and ``gap_to_best`` (``best_points - points``, >= 0).
        Sorted by ``points_lost`` descending, ties in tree order; nodes the
        unit has no points on (nothing is known to be lost) last.

    Raises
    ------
    ValidationError
        Missing columns, no results for the unit in ``year``, an unknown
        level, a unit of another kind than ``kind``.
    """
    _require(results, ["unit_code", "year", "node_code", "level", "points", "max_points"], "list points lost")
    rows = _peers(results, unit_code, year, kind, units)
    rows = rows[_level_mask(rows, level, framework)]
    node = rows["node_code"].astype(str).to_numpy(object)
    pts = rows["points"].to_numpy("float64", na_value=np.nan)
    frame = pd.DataFrame({"node": node, "points": pts})
    stats = frame.groupby("node", sort=False)["points"].agg(["median", "max"])
    mine = rows[(rows["unit_code"].astype(str) == str(unit_code)).to_numpy(bool)]
    codes = mine["node_code"].astype(str).to_numpy(object)
    own = mine["points"].to_numpy("float64", na_value=np.nan)
    mx = mine["max_points"].to_numpy("float64", na_value=np.nan)
    med = stats["median"].reindex(codes).to_numpy("float64")
    best = stats["max"].reindex(codes).to_numpy("float64")
    names = _names(framework, rows)
    out = pd.DataFrame({
        "unit_code": str(unit_code),
        "year": np.full(len(mine), int(year), dtype="int64"),
        "node_code": codes,
        "level": mine["level"].astype(str).to_numpy(object),
        "name_vi": [names.get(c) for c in codes],
        "max_points": mx,
        "points": own,
        "points_lost": _round(mx - own),
        "median_points": _round(med),
        "best_points": _round(best),
        "gap_to_median": _round(med - own),
        "gap_to_best": _round(best - own),
    })
    out["_tree"] = _tree_order(codes, framework)
    out = out.sort_values(["points_lost", "_tree"], ascending=[False, True], na_position="last", kind="stable")
    return out.drop(columns="_tree").reset_index(drop=True)[POINTS_LOST_COLUMNS]


# -- priority ---------------------------------------------------------------------------------------

def _field_key(label: Any) -> str | None:
    """``"PAR:field3"``, ``"field3"``, ``"3"``, 3 -> ``"3"``; ``"PAR:total"``, ``"total"`` -> ``"total"``."""
    text = str(label).strip()
    if text in ("total", "PAR:total"):
        return "total"
    hit = _FIELD_LABEL.match(text)
    return hit.group(1) if hit else None


def association_by_field(correlations: pd.DataFrame, *, y: str | Sequence[str] | None = None,
                         alpha: float | None = None) -> dict[str, float]:
    """The strength of association of each PAR field, from a correlation study.

    Parameters
    ----------
    correlations : pandas.DataFrame
        The table of :func:`parindex_lib.correlation.correlate` (``x``,
        ``y``, ``r``; ``p_adj`` with ``alpha``). Rows pairing a PAR field
        (``PAR:field3``) or the PAR total with another variable count, with
        PAR on either side.
    y : str or list of str, optional
        Keep only pairs with these other variables (``"PCI:total"``); None
        keeps all.
    alpha : float, optional
        Count only coefficients with ``p_adj < alpha`` (the others give 0).

    Returns
    -------
    dict of str to float
        Field code (``"3"``, or ``"total"``) -> the largest ``|r|`` over the
        pairs kept (finite ``r`` only). Fields without any finite
        coefficient are absent.

    Examples
    --------
    >>> corr = pd.DataFrame({"x": ["PAR:field1", "PAR:field1", "PAR:field3"], "y": ["PCI:total", "PAPI:total",
    ...                      "PCI:total"], "r": [0.2, -0.5, float("nan")], "p_adj": [0.01, 0.2, None]})
    >>> association_by_field(corr), association_by_field(corr, alpha=0.05), association_by_field(corr, y="PCI:total")
    ({'1': 0.5}, {'1': 0.2}, {'1': 0.2})
    """
    _require(correlations, ["x", "y", "r"], "measure associations")
    if alpha is not None and "p_adj" not in correlations.columns:
        raise ValidationError("alpha needs adjusted p-values", [
            {"column": "p_adj", "value": None, "expected": "the p_adj column of correlate()"}])
    keep_y = None if y is None else ({y} if isinstance(y, str) else set(y))
    out: dict[str, float] = {}
    for rec in correlations.itertuples(index=False):
        x_lab, y_lab = str(rec.x), str(rec.y)
        if not x_lab.startswith("PAR:") and y_lab.startswith("PAR:"):
            x_lab, y_lab = y_lab, x_lab
        if not x_lab.startswith("PAR:") or y_lab.startswith("PAR:"):
            continue
        if keep_y is not None and y_lab not in keep_y:
            continue
        key = _field_key(x_lab)
        r = float(rec.r) if rec.r is not None and not pd.isna(rec.r) else math.nan
        if key is None or not math.isfinite(r):
            continue
        strength = abs(r)
        if alpha is not None:
            p = getattr(rec, "p_adj")
            if p is None or pd.isna(p) or float(p) >= alpha:
                strength = 0.0
        out[key] = max(out.get(key, 0.0), strength)
    return out


def _associations(associations: Mapping[Any, float] | pd.DataFrame | None) -> dict[str, float]:
    if associations is None:
        return {}
    if isinstance(associations, pd.DataFrame):
        return association_by_field(associations)
    out: dict[str, float] = {}
    fails = []
    for k, v in associations.items():
        key = _field_key(k)
        try:
            value = abs(float(v))
        except (TypeError, ValueError):
            value = math.nan
        if key is None:
            fails.append({"column": "associations", "value": k,
                          "expected": "a field code ('3', 'field3', 'PAR:field3') or 'total'"})
        elif not (math.isfinite(value) and value <= 1 + _TOL):
            fails.append({"column": f"associations[{k}]", "value": v, "expected": "|r|, a number from 0 to 1"})
        else:
            out[key] = min(value, 1.0)
    if fails:
        raise ValidationError("associations not understood", fails)
    return out


def priority(points_lost_table: pd.DataFrame, associations: Mapping[Any, float] | pd.DataFrame | None = None, *,
             weight: float = DEFAULT_WEIGHT) -> pd.DataFrame:
    """Rank nodes by the points a unit can recover, weighted by association with an external index.

    The formula (:data:`PRIORITY_FORMULA`)::

        recoverable = max(0, min(best_points - points, max_points - points))
        priority    = recoverable * (1 + weight * association)

    ``recoverable`` is what the best unit of the same kind shows to be
    achievable on the node, never more than the unit lost there.
    ``association`` is the strength of the association found by a
    correlation study between the node's field (``PAR:field3`` for nodes
    ``3``, ``3.1``, ``3.1.2``; the PAR total for the ``total`` row) and an
    external index: ``|r|``, from 0 to 1; 0 when nothing was measured, so
    that without associations ``priority == recoverable``. With ``weight =
    1`` a node of a field with ``|r| = 0.6`` counts 1.6 times its
    recoverable points. Associations measured between provinces are only
    an indication for a province's own departments or communes, and an
    association is not a cause.

    Parameters
    ----------
    points_lost_table : pandas.DataFrame
        The table of :func:`points_lost`.
    associations : mapping or pandas.DataFrame, optional
        Field code (``"3"``, ``"field3"``, ``"PAR:field3"``, ``"total"``) ->
        ``r`` or ``|r|``; or a table of
        :func:`parindex_lib.correlation.correlate`, read with
        :func:`association_by_field` (filter it to the external variable
        that matters first, or call that function with ``y=``).
    weight : float
        How much the association counts (>= 0; 0 ignores it).

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`points_lost` followed by ``recoverable``,
        ``association`` (the value used, 0 when none) and ``priority``;
        sorted by ``priority`` descending, ties in the order given; nodes
        the unit has no points on (``recoverable`` NaN) last.

    Raises
    ------
    ValidationError
        Missing columns, a negative or non-finite weight, associations
        outside 0..1 or with keys that are not fields.

    Examples
    --------
    Hand-worked: node 2.1 (max 3) scored 1, best unit 2.5, field 2 has
    ``r = -0.5``: recoverable = min(2.5 - 1, 3 - 1) = 1.5, priority = 1.5 x
    (1 + 2 x 0.5) = 3.

    >>> t = pd.DataFrame({"unit_code": "D1", "year": 2024, "node_code": ["1.1", "2.1"], "level": "criterion",
    ...                   "name_vi": None, "max_points": [2.0, 3.0], "points": [0.5, 1.0], "points_lost": [1.5, 2.0],
    ...                   "median_points": [1.0, 2.0], "best_points": [2.0, 2.5], "gap_to_median": [0.5, 1.0],
    ...                   "gap_to_best": [1.5, 1.5]})
    >>> priority(t, {"2": -0.5}, weight=2)[["node_code", "recoverable", "association", "priority"]].values.tolist()
    [['2.1', 1.5, 0.5, 3.0], ['1.1', 1.5, 0.0, 1.5]]
    """
    _require(points_lost_table, POINTS_LOST_COLUMNS, "compute priorities")
    try:
        w = float(weight)
    except (TypeError, ValueError):
        w = math.nan
    if not (math.isfinite(w) and w >= 0):
        raise ValidationError("bad weight for the association", [
            {"column": "weight", "value": weight, "expected": "a number >= 0 (1 by default; 0 ignores associations)"}])
    assoc = _associations(associations)
    out = points_lost_table[POINTS_LOST_COLUMNS].copy()
    pts = out["points"].to_numpy("float64", na_value=np.nan)
    gap_best = out["best_points"].to_numpy("float64", na_value=np.nan) - pts
    headroom = out["max_points"].to_numpy("float64", na_value=np.nan) - pts
    with np.errstate(invalid="ignore"):
        rec = np.maximum(0.0, np.fmin(gap_best, headroom))
    rec[np.isnan(pts) | (np.isnan(gap_best) & np.isnan(headroom))] = np.nan
    fields = [_field_key(c) if str(c) == "total" else str(c).split(".")[0] for c in out["node_code"]]
    a = np.array([assoc.get(f, 0.0) if f is not None else 0.0 for f in fields], dtype="float64")
    out["recoverable"] = _round(rec)
    out["association"] = a
    out["priority"] = _round(rec * (1.0 + w * a))
    out["_pos"] = np.arange(len(out))
    out = out.sort_values(["priority", "_pos"], ascending=[False, True], na_position="last", kind="stable")
    return out.drop(columns="_pos").reset_index(drop=True)[PRIORITY_COLUMNS]


# -- target -------------------------------------------------------------------------------------------

def _bands(framework: Framework | None, bands: Sequence[tuple[str, float]] | None) -> list[tuple[str, float]]:
    if bands is not None:
        return [(str(g), float(p)) for g, p in bands]
    if framework is not None:
        return [(str(g), float(p)) for g, p in framework.bands]
    return [(str(g), float(p)) for g, p in DEFAULT_BANDS]


def target(results: pd.DataFrame, unit_code: str, year: int, *, rank: int | None = None, group: str | None = None,
           kind: str | None = None, framework: Framework | None = None, units: pd.DataFrame | None = None,
           level: str | None = None, bands: Sequence[tuple[str, float]] | None = None) -> dict[str, Any]:
    """Points a unit needs to reach rank ``k`` or a group, and the nodes that could provide them.

    The other units' current totals are taken as they are. Ranks follow
    :func:`parindex_lib.ranking.rank` (points descending, ties share the
    best rank), so rank ``k`` is reached with as many points as the
    ``k``-th best of the *other* units: then at most ``k - 1`` units are
    strictly ahead. A group is reached when the index (%) meets the band's
    minimum (A: 90), i.e. with ``min_pct / 100 x max_points`` points.

    The nodes are taken by ``recoverable`` points (see :func:`priority`:
    the gap to the best unit of the same kind, capped by the points lost),
    largest first, until their sum covers the points needed.

    Parameters
    ----------
    results : pandas.DataFrame
        As :func:`points_lost`, with the ``total`` rows (level ``index``)
        and the nodes' level.
    unit_code, year
        The unit and the assessment year.
    rank : int, optional
        The rank to reach (1 = first). Give ``rank`` or ``group``.
    group : str, optional
        The group to reach (``"A"``), from the framework's bands (or
        ``bands``; default A 90, B 80, C 70).
    kind, framework, units
        As :func:`points_lost`.
    level : str, optional
        The nodes offered: default ``"leaf"`` with a framework (where scores
        are entered), else ``"subcriterion"``.
    bands : sequence of (str, float), optional
        ``(group, min_pct)`` overriding the framework's.

    Returns
    -------
    dict
        ``unit_code``, ``year``, ``goal`` (``"rank"`` or ``"group"``),
        ``rank`` and ``group`` (the one asked, the other None),
        ``points`` (the unit's total), ``max_points``, ``index_pct``,
        ``current_rank`` (among the comparison units), ``units`` (how many
        are ranked), ``target_points`` (the total to reach),
        ``target_index_pct``, ``points_needed`` (>= 0; 0 when the goal is
        already met), ``reachable`` (the points needed are no more than the
        points lost in all: ``max_points - points``), ``recoverable_total``
        (the sum of the nodes' recoverable points), ``met_by_recoverable``
        (that sum covers the need), and ``nodes``: a DataFrame with columns
        ``node_code``, ``level``, ``name_vi``, ``max_points``, ``points``,
        ``best_points``, ``recoverable``, ``cumulative`` (running sum): the
        nodes in the order taken, up to the one that covers the need (all
        nodes with recoverable points when they do not suffice; none when
        nothing is needed).

    Raises
    ------
    ValidationError
        Neither or both of ``rank`` and ``group``, a rank < 1, an unknown
        group, no total for the unit, and everything :func:`points_lost`
        refuses.

    Examples
    --------
    Totals 70, 80, 85 and 90 points of 100: the unit at 70 needs 15 points
    to be ranked 2nd (tied with the unit at 85) and 20 to reach group A.

    >>> res = pd.DataFrame({"unit_code": ["U1", "U2", "U3", "U4"], "year": 2024, "node_code": "total",
    ...                     "level": "index", "points": [70.0, 80.0, 85.0, 90.0], "max_points": 100.0})
    >>> t = target(res, "U1", 2024, rank=2, level="index")
    >>> t["current_rank"], t["target_points"], t["points_needed"], t["reachable"]
    (4, 85.0, 15.0, True)
    >>> target(res, "U1", 2024, group="A", level="index")["points_needed"]
    20.0
    """
    if (rank is None) == (group is None):
        raise ValidationError("choose one goal", [
            {"column": "rank, group", "value": f"{rank}, {group}", "expected": "either a rank k or a group (e.g. 'A')"}])
    _require(results, ["unit_code", "year", "node_code", "level", "points", "max_points"], "set a target")
    peers = _peers(results, unit_code, year, kind, units)
    totals = peers[(peers["node_code"].astype(str) == "total").to_numpy(bool)]
    ucode = totals["unit_code"].astype(str)
    mine = totals[(ucode == str(unit_code)).to_numpy(bool)]
    p = float(mine["points"].iloc[0]) if len(mine) else math.nan
    if not len(mine) or not math.isfinite(p):
        raise ValidationError(f"unit {unit_code} has no total in {year}", [
            {"column": "points", "value": None, "expected": "results with the 'total' row (level index) scored"}])
    max_points = float(mine["max_points"].iloc[0])
    others = totals.loc[(ucode != str(unit_code)).to_numpy(bool), "points"].to_numpy("float64", na_value=np.nan)
    others = np.sort(others[np.isfinite(others)])[::-1]
    current_rank = int(1 + np.sum(np.round(others - p, _DECIMALS) > 0))
    if rank is not None:
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
            raise ValidationError("bad rank", [{"column": "rank", "value": rank, "expected": "an integer >= 1"}])
        k = int(rank)
        goal_points = float(others[k - 1]) if k <= len(others) else -math.inf
        goal, group_out, rank_out = "rank", None, k
    else:
        bands = _bands(framework, bands)
        lows = {g: v for g, v in bands}
        if str(group) not in lows:
            raise ValidationError("unknown group", [
                {"column": "group", "value": group, "expected": "one of " + ", ".join(g for g, _ in bands)}])
        goal_points = lows[str(group)] / 100.0 * max_points
        goal, group_out, rank_out = "group", str(group), None
    needed = float(np.round(max(0.0, goal_points - p), _DECIMALS))
    target_points = float(np.round(max(goal_points, p), _DECIMALS))
    if level is None:
        level = "leaf" if framework is not None else "subcriterion"
    table = priority(points_lost(peers, unit_code, year, level=level, framework=framework))
    order = table.assign(_pos=np.arange(len(table))).sort_values(
        ["recoverable", "_pos"], ascending=[False, True], na_position="last", kind="stable")
    order = order[(order["recoverable"] > _TOL).to_numpy(bool)]
    cumulative = _round(np.cumsum(order["recoverable"].to_numpy("float64")))
    recoverable_total = float(cumulative[-1]) if len(cumulative) else 0.0
    if needed <= _TOL:
        take = 0
    else:
        covered = np.flatnonzero(cumulative >= needed - _TOL)
        take = int(covered[0]) + 1 if len(covered) else len(order)
    nodes = order.iloc[:take].assign(cumulative=cumulative[:take])
    nodes = nodes.reset_index(drop=True)[TARGET_NODE_COLUMNS]
    return {
        "unit_code": str(unit_code), "year": int(year), "goal": goal, "rank": rank_out, "group": group_out,
        "points": p, "max_points": max_points,
        "index_pct": float(np.round(p / max_points * 100, _DECIMALS)) if max_points > 0 else math.nan,
        "current_rank": current_rank, "units": int(len(others) + 1),
        "target_points": target_points,
        "target_index_pct": float(np.round(target_points / max_points * 100, _DECIMALS)) if max_points > 0
        else math.nan,
        "points_needed": needed, "reachable": bool(needed <= max_points - p + _TOL),
        "recoverable_total": recoverable_total, "met_by_recoverable": bool(recoverable_total >= needed - _TOL),
        "nodes": nodes,
    }


# -- the action plan (stored) -------------------------------------------------------------------

def may_plan(role: str, unit_codes: Iterable[str] | None, unit_code: str) -> bool:
    """Whether a member may change a unit's action plan: admins any unit, editors their own units.

    Appraisers, analysts and researchers read plans only.

    Examples
    --------
    >>> may_plan("admin", None, "S01"), may_plan("editor", ["S01"], "S01"), may_plan("editor", ["S02"], "S01")
    (True, True, False)
    >>> may_plan("analyst", None, "S01")
    False
    """
    if role == "admin":
        return True
    return role == "editor" and unit_codes is not None and str(unit_code) in {str(c) for c in unit_codes}


def _require_plan_writer(session: Any, unit_code: str) -> None:
    if not may_plan(session.role, session.unit_codes, unit_code):
        role = session.role or "no member"
        if session.role == "editor":
            mine = ", ".join(sorted(session.unit_codes or [])) or "none"
            why = f"unit {unit_code} is not one of your units ({mine})"
        else:
            why = f"a{'n' if role[:1] in 'aeiou' else ''} {role} reads action plans only (admins and editors write them)"
        raise AccessDenied(f"{session.user!r} ({role}) may not change the action plan of unit {unit_code}: {why}")


def _blank(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _clean_action(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Checked column values of an action; every problem at once."""
    import unicodedata

    from .numbers import parse_number

    clean: dict[str, Any] = {}
    fails: list[dict[str, Any]] = []

    def text(name: str, limit: int, required: bool) -> None:
        if name not in values:
            return
        v = values[name]
        if _blank(v):
            if required:
                fails.append({"column": name, "value": v, "expected": "a description of the action"})
            clean[name] = None
            return
        s = unicodedata.normalize("NFC", str(v)).strip()
        if "\x00" in s:  # PostgreSQL cannot store it
            fails.append({"column": name, "value": s.replace("\x00", "\\x00")[:40],
                          "expected": "text without the NUL character (shown here as \\x00)"})
        elif len(s) > limit:
            fails.append({"column": name, "value": s[:40] + "...", "expected": f"at most {limit} characters"})
        clean[name] = s

    text("action", _ACTION_MAX, True)
    text("owner", _OWNER_MAX, False)
    if "gap" in values:
        v = values["gap"]
        try:
            x = math.nan if _blank(v) else (float(v) if isinstance(v, (int, float, np.integer, np.floating))
                                            else parse_number(v))
        except (TypeError, ValueError):
            x = -1.0
        if _blank(v):
            clean["gap"] = None
        elif not (math.isfinite(x) and x >= 0):
            fails.append({"column": "gap", "value": v, "expected": "points >= 0 (e.g. 0,5), or blank"})
        else:
            clean["gap"] = float(np.round(x, _DECIMALS))
    if "deadline" in values:
        v = values["deadline"]
        try:
            if _blank(v):
                clean["deadline"] = None
            elif isinstance(v, (dt.datetime, pd.Timestamp)):
                clean["deadline"] = v.date() if hasattr(v, "date") else v
            elif isinstance(v, dt.date):
                clean["deadline"] = v
            else:
                clean["deadline"] = dt.date.fromisoformat(str(v).strip()[:10])
        except (TypeError, ValueError):
            fails.append({"column": "deadline", "value": v, "expected": "a date, e.g. 2025-06-30, or blank"})
    if "status" in values:
        v = values["status"]
        if v not in ACTION_STATUSES:
            fails.append({"column": "status", "value": v, "expected": "one of " + ", ".join(ACTION_STATUSES)})
        else:
            clean["status"] = v
    return clean, fails



_VALUE_FIELDS = ("node_code", "gap", "action", "owner", "deadline", "status")


def save_action(session: Any, unit_code: str, year: int, node_code: str | None = None, *, action: Any = None,
                owner: Any = None, deadline: Any = None, gap: Any = None, status: str | None = None,
                action_id: int | None = None, expected_version: int = 0, reason: str | None = None) -> dict[str, Any]:
    """Add an action to a unit's plan, or change one, refusing if someone changed it since you read it.

    A new action (``action_id`` None) needs ``node_code`` and ``action``;
    a change (``action_id`` and the ``expected_version`` you read from
    :func:`action_plan`) writes every value given: the row is updated with
    one ``UPDATE ... WHERE version = expected_version``, so of two people
    who read the same version the second gets a :class:`ConflictError`
    naming the first one's value, and saves again with
    ``expected_version = error.current_version`` to overwrite deliberately.
    Every changed value is written to the audit log.

    When changing an action, a value left None stays as stored and an
    empty text clears it (``owner=""``, ``deadline=""``, ``gap=""``).

    Parameters
    ----------
    session : TenantSession
        The tenant and the user (admins change every unit's plan, editors
        their own units'; other roles read only).
    unit_code, year
        The unit and the assessment year whose results the plan answers
        (the unit must have an assessment that year).
    node_code : str
        A node of that assessment's framework, or ``"total"``.
    action : str
        What will be done (required, at most 4,000 characters).
    owner : str, optional
        Who is responsible (at most 200 characters).
    deadline : date or ISO text, optional
    gap : float, optional
        The points the action aims to recover (>= 0; text such as
        ``"0,5"`` is read).
    status : str, optional
        One of :data:`ACTION_STATUSES` (a new action: ``"planned"`` by
        default).
    action_id : int, optional
        The action to change; None adds one.
    expected_version : int
        The version you read (0 for a new action).
    reason : str, optional
        Recorded in the audit log.

    Returns
    -------
    dict
        ``id`` and ``version`` of the saved row (the version is unchanged
        when every value was already stored).

    Raises
    ------
    ValidationError
        Bad values (each named), a node not in the framework.
    ConflictError
        The stored version differs from ``expected_version``.
    NotFound
        No such unit or assessment in the tenant, or no such action (of
        this unit and year).
    AccessDenied
        The session's role does not write this unit's plan.
    """
    from .store import _now  # the store's clock (UTC, aware)

    unit_code = str(unit_code).strip()
    given: dict[str, Any] = {"node_code": node_code, "action": action, "owner": owner, "deadline": deadline,
                             "gap": gap, "status": status}
    if action_id is None:
        given["status"] = "planned" if status is None else status
    else:  # a change writes the values given: None leaves a value as it is, "" clears it
        given = {k: v for k, v in given.items() if v is not None}
    clean, fails = _clean_action(given)
    if "node_code" in given:
        code = "" if _blank(given["node_code"]) else str(given["node_code"]).strip()
        if not code:
            fails.append({"column": "node_code", "value": given["node_code"], "expected": "a node code, e.g. 1.2.3"})
        clean["node_code"] = code
    if isinstance(expected_version, bool) or not isinstance(expected_version, (int, np.integer)) or expected_version < 0:
        fails.append({"column": "expected_version", "value": expected_version,
                      "expected": "the version you read (0 for a new action)"})
    if isinstance(reason, str) and "\x00" in reason:
        fails.append({"column": "reason", "value": reason.replace("\x00", "\\x00"),
                      "expected": "text without the NUL character (shown here as \\x00)"})
    if fails:
        raise ValidationError(f"action for unit {unit_code}, {year} refused", fails)
    expected_version = int(expected_version)
    t = action_plans

    def body(conn: Any) -> dict[str, Any]:
        a = session._assessment_row(conn, unit_code, year)
        _require_plan_writer(session, a.unit_code)
        if "node_code" in clean:
            fw = session._fw(a)
            codes = {"total", *fw.nodes["code"].astype(str)}
            if clean["node_code"] not in codes:
                raise ValidationError(f"action for unit {a.unit_code}, {a.year} refused", [
                    {"column": "node_code", "value": clean["node_code"],
                     "expected": f"a node of framework {fw.id} (e.g. {fw.nodes['code'].iloc[0]}) or 'total'"}])
        now = _now()
        if action_id is None:
            if expected_version != 0:
                raise ValidationError("a new action starts at version 0", [
                    {"column": "expected_version", "value": expected_version,
                     "expected": "0, or the action_id of the action to change"}])
            row = {"tenant_id": session.tenant, "unit_code": a.unit_code, "year": int(a.year), "version": 1,
                   "updated_by": session.user, "updated_at": now, **clean}
            new_id = conn.execute(insert(t).values(**row).returning(t.c.id)).scalar_one()
            shown = {k: clean.get(k) for k in _VALUE_FIELDS}
            row_key = f"{a.unit_code}/{a.year}/{clean['node_code']}/{new_id}"
            session._audit(conn, _changes("action_plans", row_key, None, shown, "insert", 1), reason, now)
            return {"id": int(new_id), "version": 1}
        key = [t.c.tenant_id == session.tenant, t.c.id == int(action_id), t.c.unit_code == a.unit_code,
               t.c.year == int(a.year)]
        cur = conn.execute(select(t).where(*key)).first()
        if cur is None:
            raise NotFound(f"no action #{action_id} in the plan of unit {a.unit_code}, {a.year} "
                           f"(removed meanwhile?) in tenant {session.tenant!r}")
        what = f"action #{cur.id} of unit {a.unit_code}, {a.year}, node {cur.node_code}"
        if cur.version != expected_version:
            raise _row_conflict(what, clean, cur)
        diff = _changes("action_plans", f"{a.unit_code}/{a.year}/{cur.node_code}/{cur.id}", cur._mapping, clean,
                        "update", expected_version + 1)
        if not diff:
            return {"id": int(cur.id), "version": expected_version}
        changed = {d["field"]: clean[d["field"]] for d in diff}
        res = conn.execute(update(t).where(*key, t.c.version == expected_version).values(
            version=expected_version + 1, updated_by=session.user, updated_at=now, **changed))
        if res.rowcount != 1:
            raise _row_conflict(what, clean, conn.execute(select(t).where(*key)).first())
        session._audit(conn, diff, reason, now)
        return {"id": int(cur.id), "version": expected_version + 1}

    return session._run(body, write=True)


def delete_action(session: Any, unit_code: str, year: int, action_id: int, *, expected_version: int,
                  reason: str | None = None) -> None:
    """Remove an action from a unit's plan (audited), refusing if it changed since you read it.

    Raises
    ------
    ConflictError
        The stored version differs from ``expected_version``.
    NotFound
        No such unit, assessment or action in the tenant.
    AccessDenied
        The session's role does not write this unit's plan.
    """
    from .store import _now

    if isinstance(reason, str) and "\x00" in reason:
        raise ValidationError(f"removal of action #{action_id} refused", [
            {"column": "reason", "value": reason.replace("\x00", "\\x00"),
             "expected": "text without the NUL character (shown here as \\x00)"}])
    t = action_plans

    def body(conn: Any) -> None:
        a = session._assessment_row(conn, str(unit_code).strip(), year)
        _require_plan_writer(session, a.unit_code)
        key = [t.c.tenant_id == session.tenant, t.c.id == int(action_id), t.c.unit_code == a.unit_code,
               t.c.year == int(a.year)]
        cur = conn.execute(select(t).where(*key)).first()
        if cur is None:
            raise NotFound(f"no action #{action_id} in the plan of unit {a.unit_code}, {a.year} in tenant "
                           f"{session.tenant!r}")
        if cur.version != int(expected_version):
            raise ConflictError(f"action #{cur.id} of unit {a.unit_code}, {a.year}, node {cur.node_code}", "version",
                                int(expected_version), cur.version, cur.version, cur.updated_by)
        res = conn.execute(delete(t).where(*key, t.c.version == cur.version))
        if res.rowcount != 1:
            latest = conn.execute(select(t).where(*key)).first()
            raise ConflictError(f"action #{cur.id} of unit {a.unit_code}, {a.year}", "version", cur.version,
                                None if latest is None else latest.version,
                                -1 if latest is None else latest.version, None if latest is None else latest.updated_by)
        now = _now()
        shown = {k: cur._mapping[k] for k in _VALUE_FIELDS}
        session._audit(conn, _changes("action_plans", f"{a.unit_code}/{a.year}/{cur.node_code}/{cur.id}", shown, shown,
                                      "delete", cur.version), reason, now)

    session._run(body, write=True)


def action_plan(session: Any, unit_code: str, year: int) -> pd.DataFrame:
    """A unit's action plan for one assessment year.

    Parameters
    ----------
    session : TenantSession
        Any member of the tenant reads plans.
    unit_code, year
        The unit (it must exist in the tenant) and the year.

    Returns
    -------
    pandas.DataFrame
        Columns, in order: ``id`` (int64), ``unit_code``, ``year`` (int64),
        ``node_code``, ``gap`` (float, NaN when not given), ``action``,
        ``owner`` (None when not given), ``deadline`` (datetime.date or
        None), ``status``, ``version`` (int64), ``updated_by``,
        ``updated_at`` (UTC); in the order the actions were added.

    Raises
    ------
    NotFound
        No such unit in the tenant (another tenant's codes included).
    """
    t = action_plans
    code = str(unit_code).strip()
    from .store import _year

    try:
        y = _year(year)
    except ValueError as exc:
        raise ValidationError("bad year", [{"column": "year", "value": year, "expected": str(exc)}]) from None

    def body(conn: Any) -> list:
        session._unit_row(conn, code)
        return conn.execute(select(*[t.c[c] for c in ACTION_PLAN_COLUMNS]).where(
            t.c.tenant_id == session.tenant, t.c.unit_code == code, t.c.year == y).order_by(t.c.id)).all()

    rows = session._run(body, write=False)
    df = pd.DataFrame([tuple(r) for r in rows], columns=ACTION_PLAN_COLUMNS)
    df["id"] = df["id"].astype("int64")
    df["year"] = df["year"].astype("int64")
    df["version"] = df["version"].astype("int64")
    df["gap"] = pd.to_numeric(df["gap"]).astype("float64")
    df["deadline"] = df["deadline"].astype(object)
    for c in ("unit_code", "node_code", "action", "status", "updated_by"):
        df[c] = df[c].astype(object)
    df["owner"] = df["owner"].astype(object)
    df["updated_at"] = pd.to_datetime(df["updated_at"], utc=True) if len(df) else \
        pd.Series([], dtype="datetime64[us, UTC]")
    return df
