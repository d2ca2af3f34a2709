"""The published results table: roll-up, ranks, change since last year, groups.

:func:`results_table` is what a province publishes: per unit and node, the
points, the index (%), the rank, the places gained or lost since the year
before and the group, for one or several frameworks at once.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from .aggregation import RESULT_LEVELS, _codes, roll_up
from .errors import ValidationError
from .framework import Framework
from .ranking import add_group, add_rank_change, rank

__all__ = ["RESULTS_TABLE_COLUMNS", "UNIT_COLUMNS", "results_table", "session_results"]

#: Columns of :func:`results_table`, in order.
RESULTS_TABLE_COLUMNS = ["unit_code", "unit_name", "year", "node_code", "level", "points", "max_points",
                         "index_pct", "rank", "rank_change", "group", "coverage"]
#: Columns of the units table.
UNIT_COLUMNS = ["code", "name", "kind", "parent_code", "region"]
_SHOWN = 20


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate result frames, keeping categorical columns categorical."""
    if len(frames) == 1:
        return frames[0]
    out = pd.concat(frames, ignore_index=True)
    for col in frames[0].columns:
        if all(isinstance(f[col].dtype, pd.CategoricalDtype) for f in frames) \
                and not isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = union_categoricals([f[col] for f in frames], ignore_order=True)
    return out


def _check_units(units: pd.DataFrame, kind: str | None) -> pd.DataFrame:
    need = ["code", "name"] + (["kind"] if kind is not None else [])
    missing = [c for c in need if c not in units.columns]
    if missing:
        raise ValidationError("the units table lacks columns", [
            {"column": c, "value": None, "expected": f"a column {c} ({', '.join(UNIT_COLUMNS)})"} for c in missing])
    dup = units.loc[units["code"].duplicated(), "code"].unique().tolist()
    if dup:
        raise ValidationError("the units table has repeated codes", [
            {"column": "code", "value": c, "expected": "each unit once"} for c in dup[:_SHOWN]])
    return units.set_index(units["code"].astype(str))


def results_table(scores: pd.DataFrame, frameworks: Mapping[str, Framework] | Framework, units: pd.DataFrame, *,
                  year: int | None = None, level: str | None = "index", kind: str | None = None) -> pd.DataFrame:
    """Points, index, rank, change since last year and group per unit and node.

    Parameters
    ----------
    scores : pandas.DataFrame
        The long form (see :func:`parindex_lib.aggregation.roll_up`), with a
        ``framework_id`` column naming each row's framework; without it,
        ``frameworks`` must hold exactly one framework.
    frameworks : mapping of str to Framework, or Framework
        The frameworks by id.
    units : pandas.DataFrame
        Columns ``code``, ``name``, ``kind``, ``parent_code``, ``region``
        (``kind`` needed when filtering by kind). Every ``unit_code`` of the
        scores must be listed.
    year : int, optional
        Keep one year (the change since the year before is still computed
        from that year's results).
    level : str, optional
        ``"index"`` (the total rows, default), ``"field"``, ``"criterion"``,
        ``"subcriterion"``, or None for every level.
    kind : str, optional
        Keep only units of this kind (e.g. ``"department"``) and rank them
        among themselves. Without it, units are ranked among all units
        scored on the same framework in the same year.

    Returns
    -------
    pandas.DataFrame
        One row per unit, year and node, sorted by framework, year, the
        total and nodes in tree order, then rank (unranked last) and
        ``unit_code``. Columns, in order: ``unit_code``, ``unit_name``,
        ``year`` (int64), ``node_code``, ``level``, ``points``,
        ``max_points``, ``index_pct``, ``rank`` (Int64, 1..N per
        framework, year and node, ties share the best rank),
        ``rank_change`` (Int64, the previous year's rank minus this year's:
        positive = moved up; missing without a result for ``year - 1``;
        matched by unit and node code, also when the unit's framework
        changed between the two years),
        ``group`` (from the framework's bands, on every row from that row's
        ``index_pct``), ``coverage`` (0..1). ``unit_code``, ``node_code``,
        ``level`` and ``group`` are categorical.

    Raises
    ------
    ValidationError
        Unknown framework ids, unit codes not in ``units``, a bad
        ``level``, and everything :func:`roll_up` refuses.
    FrameworkIncompleteError
        When a framework used by the scores cannot score.
    """
    if isinstance(frameworks, Framework):
        frameworks = {frameworks.id: frameworks}
    if level not in (*RESULT_LEVELS, None):
        raise ValidationError("unknown level for the results table", [
            {"column": "level", "value": level, "expected": "one of index, field, criterion, subcriterion, or None"}])
    table = _check_units(units, kind)
    if "unit_code" not in scores.columns:
        raise ValidationError("scores do not have the columns of the long form", [
            {"column": "unit_code", "value": None, "expected": "a column unit_code in the scores (long form)"}])

    unit_col = scores["unit_code"]
    if isinstance(unit_col.dtype, pd.CategoricalDtype):
        used = np.unique(unit_col.cat.codes.to_numpy())
        present = pd.Index(unit_col.cat.categories[used[used >= 0]].astype(str))
    else:
        present = pd.Index(pd.unique(unit_col.dropna().to_numpy(object))).astype(str)
    unknown = present[table.index.get_indexer(present) < 0]
    if len(unknown):
        raise ValidationError("scores name units that are not in the units table", [
            {"column": "unit_code", "value": c, "expected": "a code listed in the units table"}
            for c in unknown[:_SHOWN]]
            + ([{"column": "unit_code", "value": f"... {len(unknown) - _SHOWN} more", "expected": "codes listed"}]
               if len(unknown) > _SHOWN else []))

    if kind is not None:
        keep = table.index[(table["kind"] == kind).to_numpy(bool)]
        scores = scores[unit_col.astype(str).isin(keep).to_numpy(bool)
                        if not isinstance(unit_col.dtype, pd.CategoricalDtype) else unit_col.isin(keep).to_numpy(bool)]

    if "framework_id" in scores.columns:
        ids = pd.unique(scores["framework_id"].astype(str).to_numpy(object))
        bad = [i for i in ids if i not in frameworks]
        if bad:
            raise ValidationError("scores name frameworks that were not given", [
                {"column": "framework_id", "value": i, "expected": "one of " + ", ".join(sorted(frameworks))}
                for i in bad])
        fid_col = scores["framework_id"].astype(str)
        parts = [(fid, scores[(fid_col == fid).to_numpy(bool)]) for fid in frameworks if fid in set(ids)]
    elif len(frameworks) == 1:
        parts = [(next(iter(frameworks)), scores)]
    else:
        raise ValidationError("scores need a framework_id column when several frameworks are given", [
            {"column": "framework_id", "value": None, "expected": "the id of each row's framework: "
             + ", ".join(sorted(frameworks))}])

    frames = []
    for fid, part in parts:
        fw = frameworks[fid]
        rolled = roll_up(part.drop(columns="framework_id", errors="ignore"), fw)  # the mapping's key decides
        if year is not None:  # the year and the one before, for the change
            rolled = rolled[rolled["year"].isin([year - 1, year]).to_numpy(bool)]
        if level is not None:
            rolled = rolled[(rolled["level"] == level).to_numpy(bool)]
        rolled = add_group(rolled, fw)
        rolled.insert(0, "framework_id", pd.Categorical.from_codes(
            np.full(len(rolled), len(frames), dtype=np.int16), categories=[f for f, _ in parts]))
        frames.append(rolled)
    if not frames:
        return _empty()
    res = _concat(frames)
    res = rank(res, by=("framework_id", "year", "node_code"))
    res = add_rank_change(res)
    if year is not None:
        res = res[(res["year"] == year).to_numpy(bool)]
    res = res.copy()
    names = table["name"]
    res["unit_name"] = res["unit_code"].map(names).astype(object) if len(res) else pd.Series(dtype=object)
    ranks = res["rank"].to_numpy("float64", na_value=np.inf)
    node_pos = _codes(res["node_code"], sort=False)[0]
    unit_pos = _codes(res["unit_code"], sort=True)[0]
    order = np.lexsort((unit_pos, ranks, node_pos, res["year"].to_numpy(), res["framework_id"].cat.codes.to_numpy()))
    res = res.iloc[order].reset_index(drop=True)
    return res[RESULTS_TABLE_COLUMNS]


def _empty() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype="float64") for c in RESULTS_TABLE_COLUMNS})
    for c in ("unit_code", "node_code", "level", "group"):
        out[c] = pd.Categorical([])
    out["unit_name"] = out["unit_name"].astype(object)
    out["year"] = out["year"].astype("int64")
    out["rank"] = out["rank"].astype("Int64")
    out["rank_change"] = out["rank_change"].astype("Int64")
    return out


def session_results(session, *, year: int, level: str | None = "index", kind: str | None = None) -> pd.DataFrame:
    """:func:`results_table` for one year of a tenant session's store.

    Reads the scores of ``year`` and of the year before (for the rank
    change), the frameworks they use and the tenant's units.

    Parameters
    ----------
    session : parindex_lib.store.TenantSession
    year, level, kind
        As :func:`results_table`.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`RESULTS_TABLE_COLUMNS`.
    """
    scores = session.scores(year=[int(year) - 1, int(year)])
    frameworks = {fid: session.framework(fid) for fid in pd.unique(scores["framework_id"].astype(str))}
    return results_table(scores, frameworks, session.units(), year=int(year), level=level, kind=kind)
