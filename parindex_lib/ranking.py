"""Ranks, groups, year-on-year change and deductions of roll-up results.

All verbs take a results table in the form of
:func:`parindex_lib.aggregation.roll_up` (one row per unit, year and node)
and return a new table with columns added; nothing is changed in place.

- :func:`rank`: 1..N per year and node, points descending, ties sharing
  the best rank (1, 2, 2, 4), units without points unranked.
- :func:`add_rank_change`: change of points and of rank since the
  previous year ("tăng 3 bậc" is ``rank_change == 3``).
- :func:`add_group`: the group (A, B, C...) from a framework's bands.
- :func:`deductions`: points lost per node, largest first.

The work is vectorised: groups become integer ids and every rank comes
from one sort of the whole table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .aggregation import DECIMALS, RESULT_LEVELS, _codes
from .errors import ValidationError
from .framework import DEFAULT_BANDS, Framework

__all__ = [
    "rank",
    "add_rank_change",
    "add_group",
    "deductions",
    "DEDUCTION_COLUMNS",
    "GROUP_DEDUCTION_COLUMNS",
]

#: Columns of :func:`deductions` for one unit, in order.
DEDUCTION_COLUMNS = ["unit_code", "year", "node_code", "level", "name_vi", "max_points", "points",
                     "points_lost", "index_pct"]
#: Columns of :func:`deductions` for a whole group of units, in order.
GROUP_DEDUCTION_COLUMNS = ["year", "node_code", "level", "name_vi", "max_points", "units", "mean_points",
                           "mean_points_lost", "total_points_lost", "index_pct"]

_TOL = 1e-9
_SHOWN = 20


def _require(results: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in results.columns]
    if missing:
        raise ValidationError(f"results lack columns needed to {what}", [
            {"column": c, "value": None, "expected": f"a column {c} (see parindex_lib.aggregation.roll_up)"}
            for c in missing])


def _key_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Codes 0..n-1 of one grouping column (-1 for missing), and n."""
    if values.dtype.kind in "iu" and len(values):
        arr = values.to_numpy()
        low, high = int(arr.min()), int(arr.max())
        if high - low <= 4 * len(arr) + 1024:
            return arr.astype(np.int64) - low, high - low + 1
    codes, uniques = _codes(values, sort=False)
    return codes, len(uniques)


def _group_ids(frame: pd.DataFrame, keys: Sequence[str]) -> tuple[np.ndarray, int]:
    """Compact int64 ids 0..G-1 for the combinations of ``keys``, and G.

    Missing values form their own group.
    """
    n = len(frame)
    gid = np.zeros(n, dtype=np.int64)
    size = 1
    for key in keys:
        codes, k = _key_codes(frame[key])
        k += 1
        if size * k >= 2**62:
            gid, size = _compact(gid, size)
        gid = gid * k + (codes.astype(np.int64) + 1)  # -1 (missing) -> 0
        size *= k
    return _compact(gid, size)


def _compact(gid: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """Renumber ids to 0..G-1 (keeping their order when the range is small)."""
    if size <= 4 * len(gid) + 1024:
        present = np.zeros(size, dtype=bool)
        present[gid] = True
        new = np.cumsum(present) - 1
        return new[gid], int(present.sum())
    codes, uniques = pd.factorize(gid)
    return codes.astype(np.int64), len(uniques)


def _min_rank_desc(points: np.ndarray, gid: np.ndarray, n_groups: int) -> pd.arrays.IntegerArray:
    """Ranks 1..N within each group, highest points first, ties at the best rank.

    Points are compared at 9 decimals (the precision of the roll-up), so
    floating noise never breaks a tie. NaN gets no rank.

    When the groups have similar sizes (the usual case: every unit in every
    year and node), rows are laid out as a groups x units matrix (a counting
    sort on the group id) and each row is sorted on a packed integer key
    (quantised points, then position), which is much faster than one
    argsort of the whole table. Otherwise one lexsort on (group, points).
    """
    n = len(points)
    rank = np.zeros(n, dtype=np.int64)
    valid = ~np.isnan(points)
    if not valid.any():
        return pd.arrays.IntegerArray(rank, ~valid)
    hi, lo = float(np.nanmax(points)), float(np.nanmin(points))
    finite = np.isfinite(hi - lo)
    width = int(np.rint((hi - lo) * 10**DECIMALS)) + 1 if finite else 0
    sizes = np.bincount(gid, minlength=n_groups)
    m = int(sizes.max())
    local_bits = max(1, (m - 1).bit_length())
    if finite and n_groups * m <= 2 * n + 4096 and width.bit_length() + local_bits <= 62:
        order = np.argsort(gid.astype(np.int16) if n_groups < 2**15 else gid, kind="stable")
        g_sorted = gid[order]
        starts = np.cumsum(sizes) - sizes
        local = np.arange(n, dtype=np.int64) - starts[g_sorted]
        q = np.rint((hi - points[order]) * 10**DECIMALS)
        q[np.isnan(q)] = width  # unranked: after every real value
        packed = np.full((n_groups, m), np.iinfo(np.int64).max, dtype=np.int64)
        packed[g_sorted, local] = (q.astype(np.int64) << local_bits) | local
        del q, local, g_sorted
        packed.sort(axis=1)
        sq = packed >> local_bits
        new_run = np.ones(packed.shape, dtype=bool)
        np.not_equal(sq[:, 1:], sq[:, :-1], out=new_run[:, 1:])
        run_start = np.maximum.accumulate(np.where(new_run, np.arange(m, dtype=np.int64), 0), axis=1)
        real = sq < width
        cells = np.flatnonzero(real.ravel())
        rows = order[starts[cells // m] + (packed.ravel()[cells] & ((1 << local_bits) - 1))]
        rank[rows] = run_start.ravel()[cells] + 1
        return pd.arrays.IntegerArray(rank, ~valid)
    # very wide range of points or unbalanced groups: one sort on the two keys
    idx = np.flatnonzero(valid)
    q = np.round(points[idx], DECIMALS)
    g = gid[idx]
    order = np.lexsort((-q, g))
    sg = g[order]
    sq = q[order]
    new_group = np.empty(len(sg), dtype=bool)
    new_group[0] = True
    np.not_equal(sg[1:], sg[:-1], out=new_group[1:])
    new_run = new_group.copy()
    new_run[1:] |= sq[1:] != sq[:-1]
    pos = np.arange(len(sg), dtype=np.int64)
    run_start = np.maximum.accumulate(np.where(new_run, pos, 0))
    group_start = np.maximum.accumulate(np.where(new_group, pos, 0))
    rank[idx[order]] = run_start - group_start + 1
    return pd.arrays.IntegerArray(rank, ~valid)


def rank(results: pd.DataFrame, by: Sequence[str] = ("year", "node_code"), within: Sequence[str] | None = None,
         *, units: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rank units by points within each year and node.

    Parameters
    ----------
    results : pandas.DataFrame
        At least ``unit_code``, ``points`` and the ``by`` columns (the
        output of :func:`parindex_lib.aggregation.roll_up`).
    by : sequence of str
        Columns whose combination forms one ranking (default: each year
        and node). Add ``framework_id`` when several frameworks are mixed.
    within : sequence of str, optional
        Extra grouping columns, e.g. ``("kind",)`` to rank departments
        against departments, or ``("parent_code",)``, ``("region",)``.
        Columns absent from ``results`` are looked up in ``units`` by
        ``unit_code``.
    units : pandas.DataFrame, optional
        The units table (``code`` and the ``within`` columns); needed
        only for ``within`` columns that ``results`` lacks.

    Returns
    -------
    pandas.DataFrame
        ``results`` with a column ``rank`` added (nullable Int64): 1..N per
        group, points descending, ties share the best rank (1, 2, 2, 4: the
        "min" method); units whose points are NaN get no rank (``<NA>``)
        and are not counted. Points are compared at 9 decimals. The
        ``within`` columns looked up in ``units`` are added too.
    """
    keys = list(by) + list(within or ())
    _require(results, ["unit_code", "points", *[k for k in by]], "rank")
    out = results.copy(deep=False)
    lookup = [k for k in (within or ()) if k not in out.columns]
    if lookup:
        if units is None:
            raise ValidationError("rank needs the units table for the grouping columns", [
                {"column": c, "value": None, "expected": "a column of the results, or units=<table with code and it>"}
                for c in lookup])
        _require(units, ["code", *lookup], "look up the grouping columns")
        table = units.drop_duplicates("code").set_index("code")
        for col in lookup:
            out[col] = out["unit_code"].map(table[col])
            if isinstance(out[col].dtype, pd.CategoricalDtype):
                out[col] = out[col].astype(table[col].dtype)
    gid, n_groups = _group_ids(out, keys)
    out["rank"] = _min_rank_desc(out["points"].to_numpy("float64", na_value=np.nan), gid, n_groups)
    return out


def add_rank_change(results: pd.DataFrame) -> pd.DataFrame:
    """Change of points and rank since the previous year, per unit and node.

    Parameters
    ----------
    results : pandas.DataFrame
        Columns ``unit_code``, ``year``, ``node_code``, ``points``,
        ``rank`` (from :func:`rank`), one row per unit, year and node.

    Returns
    -------
    pandas.DataFrame
        ``results`` with two columns added: ``points_change`` (float: this
        year's points minus the previous year's) and ``rank_change``
        (nullable Int64: the previous year's rank minus this year's, so a
        positive value means the unit moved up, "tăng 3 bậc" = 3). Both are
        missing when the unit has no row for that node in ``year - 1``
        (the comparison is with the calendar year before, never across a
        gap) or either value is missing.

    Raises
    ------
    ValidationError
        When a unit, year and node appears on more than one row.
    """
    _require(results, ["unit_code", "year", "node_code", "points", "rank"], "compute the change since last year")
    out = results.copy(deep=False)
    n = len(out)
    if n == 0:
        out["points_change"] = pd.Series(dtype="float64")
        out["rank_change"] = pd.Series(dtype="Int64")
        return out
    ucode, uuniq = _codes(out["unit_code"], sort=False)
    ncode, nuniq = _codes(out["node_code"], sort=False)
    year = out["year"].to_numpy("int64")
    y0 = int(year.min())
    span = int(year.max()) - y0 + 2  # one spare slot, so year - 1 never reaches another unit-node
    n_nodes = len(nuniq) + 1
    key = ((ucode.astype(np.int64) + 1) * n_nodes + (ncode.astype(np.int64) + 1)) * span + (year - y0 + 1)
    size = (len(uuniq) + 1) * n_nodes * span
    rows = np.arange(n, dtype=np.int64)
    if size <= 4 * n + (1 << 20):
        slot = np.full(size, -1, dtype=np.int32 if n < 2**31 else np.int64)
        slot[key] = rows
        dup = slot[key] != rows
        prev = slot[key - 1]
    else:
        index = pd.Index(key)
        dup = index.duplicated(keep=False)
        prev = index.get_indexer(key - 1) if not dup.any() else None
    if dup.any():
        first = np.flatnonzero(dup)[:_SHOWN]
        raise ValidationError("results have more than one row for the same unit, year and node", [
            {"column": "unit_code, year, node_code",
             "value": f"{out['unit_code'].iloc[i]}, {year[i]}, {out['node_code'].iloc[i]}",
             "expected": "one row (rank frameworks or kinds apart before the change since last year)"}
            for i in first])
    has_prev = prev >= 0
    safe = np.where(has_prev, prev, 0)
    points = out["points"].to_numpy("float64", na_value=np.nan)
    out["points_change"] = np.where(has_prev, np.round(points - points[safe], DECIMALS), np.nan)
    ranks = out["rank"].astype("Int64")
    values = ranks.to_numpy("int64", na_value=0)
    no_rank = ranks.isna().to_numpy(bool)
    missing = no_rank | ~has_prev | no_rank[safe]
    out["rank_change"] = pd.arrays.IntegerArray(np.where(missing, 0, values[safe] - values), missing)
    return out


def add_group(results: pd.DataFrame, bands: Sequence[tuple[str, float]] | Framework = DEFAULT_BANDS) -> pd.DataFrame:
    """The group (A, B, C...) of every row, from its ``index_pct``.

    Parameters
    ----------
    results : pandas.DataFrame
        A column ``index_pct``.
    bands : sequence of (str, float), or Framework
        ``(group, min_pct)`` highest first, or a framework whose ``bands``
        are used (default A >= 90, B >= 80, C >= 70).

    Returns
    -------
    pandas.DataFrame
        ``results`` with a column ``group`` added (categorical of the band
        names, missing below the lowest band or without an index). Every
        row gets the group of its own ``index_pct``: the published group is
        the one on the ``"total"`` row; on a field's row it is the field's
        component index read on the same bands. Same rule as
        :meth:`Framework.group_of` (``index_pct >= min_pct``, with a
        1e-9 tolerance).
    """
    _require(results, ["index_pct"], "assign groups")
    if isinstance(bands, Framework):
        bands = bands.bands
    names = [str(g) for g, _ in bands]
    lows = np.array([float(low) for _, low in bands])
    if np.any(np.diff(lows) > 0):
        raise ValidationError("group bands must be sorted highest first", [
            {"column": "bands", "value": list(bands), "expected": "(group, min_pct) pairs with min_pct descending"}])
    pct = results["index_pct"].to_numpy("float64", na_value=np.nan)
    met = np.searchsorted(lows[::-1] - _TOL, pct, side="right")  # how many bands' minimum is met
    codes = np.where(np.isnan(pct) | (met == 0), -1, len(lows) - met)
    out = results.copy(deep=False)
    out["group"] = pd.Categorical.from_codes(codes, categories=names)
    return out


def deductions(results: pd.DataFrame, framework: Framework, *, unit_code: str | None = None,
               year: int | None = None, level: str | None = "subcriterion") -> pd.DataFrame:
    """Points lost per node (max_points - points), largest first.

    Parameters
    ----------
    results : pandas.DataFrame
        Output of :func:`parindex_lib.aggregation.roll_up` (or
        :func:`parindex_lib.results.results_table`) for ``framework``:
        ``unit_code``, ``year``, ``node_code``, ``level``, ``points``,
        ``max_points``.
    framework : Framework
        Gives the node names.
    unit_code : str, optional
        One unit; None for the whole group of units in ``results``.
    year : int, optional
        One year; None keeps every year (rows carry ``year``).
    level : str, optional
        ``"field"``, ``"criterion"``, ``"subcriterion"``, ``"index"``,
        ``"leaf"`` (every leaf, whatever its depth) or None for every
        level.

    Returns
    -------
    pandas.DataFrame
        For one unit, columns in order: ``unit_code``, ``year``,
        ``node_code``, ``level``, ``name_vi``, ``max_points``, ``points``,
        ``points_lost``, ``index_pct``; sorted by ``points_lost``
        descending (ties in tree order), nodes without points (not
        scored: nothing is known to be lost) last.

        For the group (``unit_code=None``), one row per year and node:
        ``year``, ``node_code``, ``level``, ``name_vi``, ``max_points``,
        ``units`` (units with points on the node), ``mean_points``,
        ``mean_points_lost``, ``total_points_lost`` (over those units),
        ``index_pct`` (of the mean points); sorted by ``mean_points_lost``
        descending.
    """
    _require(results, ["unit_code", "year", "node_code", "level", "points", "max_points"], "list deductions")
    allowed = (*RESULT_LEVELS, "leaf", None)
    if level not in allowed:
        raise ValidationError("unknown level for deductions", [
            {"column": "level", "value": level, "expected": "one of " + ", ".join(map(str, allowed))}])
    mask = np.ones(len(results), dtype=bool)
    if unit_code is not None:
        mask &= (results["unit_code"] == unit_code).to_numpy(bool)
        if not mask.any():
            raise ValidationError("no results for that unit", [
                {"column": "unit_code", "value": unit_code, "expected": "a unit_code present in the results"}])
    if year is not None:
        mask &= (results["year"] == year).to_numpy(bool)
    nodes = framework.nodes
    if level == "leaf":
        mask &= results["node_code"].isin(nodes.loc[nodes["is_leaf"], "code"]).to_numpy(bool)
    elif level is not None:
        mask &= (results["level"] == level).to_numpy(bool)
    sub = results.loc[mask, ["unit_code", "year", "node_code", "level", "points", "max_points"]]
    codes = pd.Index(["total", *nodes["code"].astype(str)])
    names = pd.Series([framework.name_vi, *nodes["name_vi"]], index=codes)
    node_str = sub["node_code"].astype(str).to_numpy(object)
    order_in_tree = codes.get_indexer(node_str)
    name = names.to_numpy(object)[np.maximum(order_in_tree, 0)]
    name = np.where(order_in_tree >= 0, name, None)
    lost = np.round(sub["max_points"].to_numpy("float64") - sub["points"].to_numpy("float64", na_value=np.nan),
                    DECIMALS)
    if unit_code is not None:
        out = pd.DataFrame({
            "unit_code": sub["unit_code"].to_numpy(object), "year": sub["year"].to_numpy(),
            "node_code": node_str, "level": sub["level"].astype(str).to_numpy(object), "name_vi": name,
            "max_points": sub["max_points"].to_numpy("float64"),
            "points": sub["points"].to_numpy("float64", na_value=np.nan), "points_lost": lost,
        })
        with np.errstate(divide="ignore", invalid="ignore"):
            out["index_pct"] = np.round(np.where(out["max_points"] > 0, out["points"] / out["max_points"] * 100,
                                                 np.nan), DECIMALS)
        out["_tree"] = order_in_tree
        out = out.sort_values(["year", "points_lost", "_tree"], ascending=[True, False, True],
                              na_position="last", kind="stable")
        return out.drop(columns="_tree").reset_index(drop=True)[DEDUCTION_COLUMNS]

    frame = pd.DataFrame({"year": sub["year"].to_numpy(), "_tree": order_in_tree, "node_code": node_str,
                          "points": sub["points"].to_numpy("float64", na_value=np.nan), "lost": lost,
                          "max_points": sub["max_points"].to_numpy("float64")})
    agg = frame.groupby(["year", "_tree", "node_code"], sort=True, observed=True).agg(
        max_points=("max_points", "first"), units=("points", "count"), mean_points=("points", "mean"),
        mean_points_lost=("lost", "mean"), total_points_lost=("lost", "sum")).reset_index()
    agg.loc[agg["units"] == 0, "total_points_lost"] = np.nan
    levels = pd.Series(["index", *nodes["level"]], index=codes)
    agg["level"] = levels.to_numpy(object)[agg["_tree"].clip(lower=0)]
    agg["name_vi"] = names.to_numpy(object)[agg["_tree"].clip(lower=0)]
    with np.errstate(divide="ignore", invalid="ignore"):
        agg["index_pct"] = np.where(agg["max_points"] > 0, agg["mean_points"] / agg["max_points"] * 100, np.nan)
    for col in ("mean_points", "mean_points_lost", "total_points_lost", "index_pct"):
        agg[col] = agg[col].round(DECIMALS)
    agg["units"] = agg["units"].astype("int64")
    agg = agg.sort_values(["year", "mean_points_lost", "_tree"], ascending=[True, False, True],
                          na_position="last", kind="stable")
    return agg.reset_index(drop=True)[GROUP_DEDUCTION_COLUMNS]
