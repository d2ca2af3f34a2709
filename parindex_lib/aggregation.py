"""Roll-up: leaf points summed to criteria, fields and the total.

Scores arrive in the long form (one row per unit, year and leaf, see
``docs/architecture.md``). :func:`roll_up` turns them into one row per
unit, year and node of the framework, plus one ``"total"`` row per unit and
year, with the points, the maximum, the index (%) and the coverage.

The computation is vectorised over the whole table: units, years and leaf
codes become integer positions, the leaf points fill a dense
``(unit-year) x leaf`` matrix, and every node's sum is a product with the
fixed ``leaf x node`` ancestry matrix of the framework. No Python loop runs
per unit or per node.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import ValidationError
from .framework import Framework

__all__ = [
    "RESULT_COLUMNS",
    "SCORE_COLUMNS",
    "TOTAL_CODE",
    "RESULT_LEVELS",
    "leaf_points",
    "roll_up",
]

#: Columns of :func:`roll_up`'s result, in order.
RESULT_COLUMNS = ["unit_code", "year", "node_code", "level", "points", "max_points", "index_pct", "coverage"]
#: Numeric columns of the scores that feed the points (each may be absent).
SCORE_COLUMNS = ("self_score", "appraised_score", "survey_points")
#: ``node_code`` of the total row.
TOTAL_CODE = "total"
#: Levels of result rows, the total first.
RESULT_LEVELS = ("index", "field", "criterion", "subcriterion")

#: Decimals kept in results: removes floating noise (0.1 + 0.2 -> 0.3).
DECIMALS = 9
_KEYS = ("unit_code", "year", "node_code")
_SHOWN = 20


# -- helpers ------------------------------------------------------------------

def _float_column(scores: pd.DataFrame, name: str) -> np.ndarray:
    """A numeric score column as float64 (all NaN when absent)."""
    if name not in scores.columns:
        return np.full(len(scores), np.nan)
    col = scores[name]
    if isinstance(col.dtype, np.dtype) and col.dtype.kind in "fiu":
        return np.asarray(col, dtype="float64")
    try:
        if col.dtype.kind not in "fiu":
            col = pd.to_numeric(col)
        return col.to_numpy("float64", na_value=np.nan)  # nullable Float64 / Int64 too
    except (TypeError, ValueError):
        bad = col[pd.to_numeric(col, errors="coerce").isna() & col.notna()]
        raise ValidationError(f"scores column {name} must hold numbers", [
            {"row": None, "column": name, "value": v,
             "expected": "a number (parse text with parindex_lib.numbers first)"}
            for v in pd.unique(bad.to_numpy(object))[:_SHOWN]]) from None


def _codes(values: pd.Series, *, sort: bool = True) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and unique values of a column (fast path for categoricals).

    The codes are ``-1`` for missing values.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.cat
        if not sort or cat.ordered:
            return cat.codes.to_numpy(), cat.categories
        cats = cat.categories
        order = np.argsort(np.asarray(cats, dtype=object), kind="stable") if len(cats) else np.arange(0)
        remap = np.empty(len(cats), dtype=np.int64)
        remap[order] = np.arange(len(cats))
        codes = cat.codes.to_numpy().astype(np.int64)
        codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
        return codes, cats[order]
    if values.dtype.kind in "OT" or isinstance(values.dtype, pd.StringDtype):
        # long tables are usually grouped by unit: hash only the first row of each run of equal values
        arr = values.to_numpy(object)
        change = np.empty(len(arr), dtype=bool)
        change[:1] = True
        try:
            np.not_equal(arr[1:], arr[:-1], out=change[1:])
        except TypeError:  # pd.NA cannot be compared: hash every row
            change[1:] = True
        heads = np.flatnonzero(change)
        if len(heads) <= len(arr) // 4:
            head_codes, uniques = pd.factorize(values.iloc[heads], sort=sort)
            return np.repeat(head_codes, np.diff(np.append(heads, len(arr)))), pd.Index(uniques)
    codes, uniques = pd.factorize(values, sort=sort)
    return codes, pd.Index(uniques)


def leaf_points(scores: pd.DataFrame) -> np.ndarray:
    """The points of each score row, as in ``docs/architecture.md``.

    ``appraised_score`` where present, else ``self_score``, plus
    ``survey_points``; NaN when none of them is present (missing is never
    zero).

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``self_score``, ``appraised_score``, ``survey_points`` (each
        may be absent, meaning not entered).

    Returns
    -------
    numpy.ndarray
        float64, one value per row of ``scores``.
    """
    selfs = _float_column(scores, "self_score")
    appraised = _float_column(scores, "appraised_score")
    survey = _float_column(scores, "survey_points")
    base = np.where(np.isnan(appraised), selfs, appraised)
    return np.where(np.isnan(base), survey, np.where(np.isnan(survey), base, base + survey))


def _check_scores(scores: pd.DataFrame, framework: Framework) -> None:
    fails = [{"column": c, "value": None, "expected": f"a column {c} in the scores (long form)"}
             for c in _KEYS if c not in scores.columns]
    if not any(c in scores.columns for c in SCORE_COLUMNS):
        fails.append({"column": ", ".join(SCORE_COLUMNS), "value": None,
                      "expected": "at least one of the score columns self_score, appraised_score, survey_points"})
    if fails:
        raise ValidationError("scores do not have the columns of the long form", fails)
    if "framework_id" in scores.columns:
        ids = scores["framework_id"]
        other = pd.unique(ids[ids != framework.id].to_numpy(object))
        if len(other):
            raise ValidationError(f"scores carry other frameworks than {framework.id}", [
                {"column": "framework_id", "value": v,
                 "expected": f"{framework.id} (roll up each framework on its own, "
                             "or use parindex_lib.results.results_table with a mapping of frameworks)"}
                for v in other[:_SHOWN]])


def _ancestry(framework: Framework) -> tuple[np.ndarray, np.ndarray]:
    """The leaf x result-node incidence matrix and the leaves' node positions.

    Column 0 is the total; column ``k + 1`` is node ``k`` of
    ``framework.nodes`` (tree order). ``A[i, j] == 1`` when leaf ``i`` is
    node ``j`` or lies under it.
    """
    nodes = framework.nodes
    codes = nodes["code"].to_numpy(object)
    parent = pd.Index(codes).get_indexer(nodes["parent_code"].to_numpy(object))
    leaf_pos = np.flatnonzero(nodes["is_leaf"].to_numpy(bool))
    anc = np.zeros((len(leaf_pos), len(codes) + 1))
    anc[:, 0] = 1.0
    rows = np.arange(len(leaf_pos))
    cur = leaf_pos.copy()
    while (cur >= 0).any():  # one step per depth level
        live = cur >= 0
        anc[rows[live], cur[live] + 1] = 1.0
        cur = np.where(live, parent[np.maximum(cur, 0)], -1)
    return anc, leaf_pos


def _empty_result() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype="float64") for c in RESULT_COLUMNS})
    out["unit_code"] = pd.Categorical([])
    out["year"] = out["year"].astype("int64")
    out["node_code"] = pd.Categorical([])
    out["level"] = pd.Categorical([], categories=list(RESULT_LEVELS))
    return out


def _capped_sum(scores: pd.DataFrame, name: str, uy: np.ndarray, n_uy: int, cap: float | None) -> np.ndarray:
    """Per unit-year sum of a bonus/penalty column, capped; zeros without a cap."""
    if name not in scores.columns or cap is None:
        return np.zeros(n_uy)
    vals = _float_column(scores, name)
    neg = np.flatnonzero(vals < 0)
    if len(neg):
        raise ValidationError(f"negative {name} in the scores", [
            {"row": None, "column": name, "value": float(vals[i]),
             "expected": f"{name} as a number of points >= 0 (unit {scores['unit_code'].iloc[i]}, "
                         f"year {scores['year'].iloc[i]}, node {scores['node_code'].iloc[i]})"} for i in neg[:_SHOWN]])
    total = np.bincount(uy, weights=np.nan_to_num(vals, nan=0.0), minlength=n_uy)
    return np.minimum(total, float(cap))


# -- the roll-up ----------------------------------------------------------------

def roll_up(scores: pd.DataFrame, framework: Framework) -> pd.DataFrame:
    """Sum leaf points to every node and the total, per unit and year.

    Parameters
    ----------
    scores : pandas.DataFrame
        The long form, one row per unit, year and leaf: ``unit_code``,
        ``year``, ``node_code`` and any of ``self_score``,
        ``appraised_score``, ``survey_points`` (absent columns mean not
        entered), optionally ``bonus``, ``penalty`` and ``framework_id``
        (which must then equal ``framework.id``). Other columns are ignored.
    framework : Framework
        A scorable framework (every max_points and child known).

    Returns
    -------
    pandas.DataFrame
        One row per unit, year and node, plus one ``"total"`` row per unit
        and year; rows sorted by ``unit_code``, ``year``, then the total and
        the nodes in tree order. Columns, in order:

        ``unit_code`` (categorical of str), ``year`` (int64),
        ``node_code`` (categorical of str: ``"total"`` then the framework's
        codes), ``level`` (categorical: index, field, criterion,
        subcriterion), ``points`` (float, NaN when no leaf under the node
        has points), ``max_points`` (float), ``index_pct`` (points /
        max_points x 100; NaN when max_points is 0), ``coverage`` (share
        0..1 of the node's max_points held by leaves that have points; for
        a node worth 0 points, the share of its leaves that have points).

    Notes
    -----
    - A leaf's points are ``appraised_score`` where present, else
      ``self_score``, plus ``survey_points``; NaN when none is present.
      Missing is never zero: a parent's points are the sum of its
      children's *known* points, and ``coverage`` says how much is known.
    - Every unit and year present in ``scores`` gets a row for every node,
      even for leaves without a score row.
    - ``bonus`` and ``penalty`` (points >= 0) are summed per unit and year,
      capped at ``framework.bonus_cap`` / ``framework.penalty_cap``, and
      added to / subtracted from the total only, so the total's
      ``index_pct`` may exceed 100. They apply only to a total that has
      points (a unit-year without any scored leaf keeps a NaN total). A
      framework whose cap is None allows no bonus (or penalty): the column
      is ignored here, whatever it holds.
    - Results are rounded to 9 decimals to remove floating noise, so
      ``0.1 + 0.2`` is stored as ``0.3``.

    Raises
    ------
    FrameworkIncompleteError
        When the framework cannot score (names the nodes).
    ValidationError
        Missing columns; node codes that are not leaves of the framework
        (each named); more than one row for the same unit, year and leaf;
        non-numeric scores; negative bonus or penalty; rows of another
        framework.
    """
    framework.require_scorable()
    _check_scores(scores, framework)
    nodes = framework.nodes
    if TOTAL_CODE in set(nodes["code"]):
        raise ValidationError(f"framework {framework.id} uses the reserved code {TOTAL_CODE!r}", [
            {"column": "code", "value": TOTAL_CODE,
             "expected": "node codes other than 'total' (kept for the index row)"}])
    if len(scores) == 0:
        return _empty_result()

    anc, leaf_pos = _ancestry(framework)
    n_leaves, n_res = anc.shape
    leaf_codes = pd.Index(nodes["code"].to_numpy(object)[leaf_pos])

    # leaf position of every score row, refusing unknown codes
    node_codes, node_uniques = _codes(scores["node_code"], sort=False)
    node_uniques_str = pd.Index([str(v) for v in node_uniques], dtype=object)
    map_leaf = leaf_codes.get_indexer(node_uniques_str)
    missing_code = (node_codes < 0).any()
    bad: list[str] = []
    if (map_leaf < 0).any() or missing_code:
        used = np.bincount(node_codes[node_codes >= 0], minlength=len(node_uniques)) > 0
        bad = node_uniques_str[(map_leaf < 0) & used].tolist() + (["<missing>"] if missing_code else [])
        non_leaf = set(nodes.loc[~nodes["is_leaf"], "code"])
    if bad:
        raise ValidationError(f"scores name nodes that are not leaves of framework {framework.id}", [
            {"column": "node_code", "value": c,
             "expected": (f"scores on the leaves under {c}, not on {c} itself" if c in non_leaf
                          else f"a leaf code of framework {framework.id}")} for c in bad])
    leaf = map_leaf[node_codes]

    # unit-year position of every score row
    unit_codes, unit_uniques = _codes(scores["unit_code"], sort=True)
    years = scores["year"]
    if years.isna().any() or unit_codes.min() < 0:
        raise ValidationError("scores have rows without a unit or a year", [
            {"column": c, "value": None, "expected": "a value on every row"}
            for c, bad in (("unit_code", unit_codes.min() < 0), ("year", years.isna().any())) if bad])
    try:
        year_f = years.to_numpy("float64")
        bad_years = pd.unique(years[np.floor(year_f) != year_f].to_numpy(object))
    except (TypeError, ValueError):
        bad_years = pd.unique(years[pd.to_numeric(years, errors="coerce").isna()].to_numpy(object))
    if len(bad_years):
        raise ValidationError("scores have years that are not whole numbers", [
            {"column": "year", "value": v, "expected": "a year such as 2024"} for v in bad_years[:_SHOWN]])
    year = year_f.astype("int64")
    y0 = int(year.min())
    span = int(year.max()) - y0 + 1
    uy_key = unit_codes.astype(np.int64) * span + (year - y0)
    if len(unit_uniques) * span <= 4 * len(scores) + (1 << 16):
        present = np.zeros(len(unit_uniques) * span, dtype=bool)
        present[uy_key] = True
        uy_keys = np.flatnonzero(present)  # sorted: by unit code, then year
        slot = np.cumsum(present) - 1
        uy = slot[uy_key]
    else:
        uy_keys, uy = np.unique(uy_key, return_inverse=True)
    n_uy = len(uy_keys)

    flat = uy.astype(np.int64) * n_leaves + leaf
    counts = np.bincount(flat, minlength=n_uy * n_leaves)
    if counts.max() > 1:
        dup = np.flatnonzero(counts > 1)
        raise ValidationError("scores have more than one row for the same unit, year and leaf", [
            {"column": "unit_code, year, node_code",
             "value": f"{unit_uniques[uy_keys[k // n_leaves] // span]}, {y0 + uy_keys[k // n_leaves] % span}, "
                      f"{leaf_codes[k % n_leaves]}",
             "expected": f"one row (found {counts[k]})"} for k in dup[:_SHOWN]]
            + ([{"value": f"... {len(dup) - _SHOWN} more", "expected": "one row each"}] if len(dup) > _SHOWN else []))

    pts = np.full(n_uy * n_leaves, np.nan)
    pts[flat] = leaf_points(scores)
    pts = pts.reshape(n_uy, n_leaves)
    known = ~np.isnan(pts)
    leaf_max = nodes["max_points"].to_numpy("float64")[leaf_pos]

    sums = np.where(known, pts, 0.0) @ anc
    n_known = known.astype(np.float64) @ anc
    covered = (known * leaf_max) @ anc
    points = np.where(n_known > 0, sums, np.nan)

    bonus = _capped_sum(scores, "bonus", uy, n_uy, framework.bonus_cap)
    penalty = _capped_sum(scores, "penalty", uy, n_uy, framework.penalty_cap)
    points[:, 0] += bonus - penalty

    max_points = np.concatenate([[float(framework.max_points)], nodes["max_points"].to_numpy("float64")])
    positive = max_points > 0
    safe_max = np.where(positive, max_points, 1.0)
    # the four float columns, written straight into one block (rows = columns)
    block = np.empty((4, n_uy, n_res))
    np.round(points, DECIMALS, out=block[0])
    block[1] = np.round(max_points, DECIMALS)
    np.divide(points, safe_max, out=block[2])
    block[2] *= 100.0
    block[2][:, ~positive] = np.nan
    np.round(block[2], DECIMALS, out=block[2])
    np.divide(covered, safe_max, out=block[3])
    if not positive.all():  # a node worth 0 points: the share of its leaves scored
        zero = ~positive
        block[3][:, zero] = n_known[:, zero] / anc.sum(axis=0)[zero]
    np.round(block[3], DECIMALS, out=block[3])

    level_names = np.concatenate([["index"], nodes["level"].to_numpy(object)])
    level_codes = pd.Index(RESULT_LEVELS).get_indexer(level_names).astype(np.int8)
    code_type = np.int16 if n_res < 32_000 else np.int32
    out = pd.DataFrame(block.reshape(4, -1).T, columns=RESULT_COLUMNS[4:], copy=False)
    out.insert(0, "unit_code", pd.Categorical.from_codes(np.repeat(uy_keys // span, n_res), categories=unit_uniques))
    out.insert(1, "year", np.repeat(uy_keys % span + y0, n_res))
    out.insert(2, "node_code", pd.Categorical.from_codes(np.tile(np.arange(n_res, dtype=code_type), n_uy),
                                                         categories=pd.Index([TOTAL_CODE, *map(str, nodes["code"])])))
    out.insert(3, "level", pd.Categorical.from_codes(np.tile(level_codes, n_uy), categories=list(RESULT_LEVELS)))
    return out

