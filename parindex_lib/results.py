"""The published results table: roll-up, ranks, change since last year, groups.

:func:`results_table` is what a province publishes: per unit and node, the
points, the index (%), the rank, the places gained or lost since the year
before and the group, for one or several frameworks at once.
:func:`session_results` reads them from a tenant's store, and
:class:`ResultsCache` keeps them while the tenant's data is unchanged (the
apps' source of results).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from .aggregation import RESULT_LEVELS, _codes, roll_up
from .errors import ValidationError
from .framework import Framework
from .ranking import add_group, add_rank_change, rank

__all__ = ["RESULTS_TABLE_COLUMNS", "UNIT_COLUMNS", "ResultsCache", "results_table", "session_results"]

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


def session_results(session, *, year: int | None = None, level: str | None = "index", kind: str | None = None,
                    framework_id: str | None = None) -> pd.DataFrame:
    """:func:`results_table` for a tenant session's store.

    Reads the scores of ``year`` and of the year before (for the rank
    change), or of every year, the frameworks they use and the tenant's
    units.

    Parameters
    ----------
    session : parindex_lib.store.TenantSession
    year : int, optional
        One year (default: every year).
    level, kind
        As :func:`results_table`.
    framework_id : str, optional
        Only the units scored on this framework (in ``year`` and the year
        before).

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`RESULTS_TABLE_COLUMNS`.
    """
    return _session_results(session, session.framework, year=year, level=level, kind=kind,
                            framework_id=framework_id, units=session.units())


def _session_results(session, framework: Callable[[str], Framework], *, year: int | None, level: str | None,
                     kind: str | None, framework_id: str | None, units: pd.DataFrame) -> pd.DataFrame:
    scores = session.scores(year=None if year is None else [int(year) - 1, int(year)])
    if framework_id is not None:
        scores = scores[(scores["framework_id"].astype(str) == str(framework_id)).to_numpy(bool)]
    frameworks = {fid: framework(fid) for fid in pd.unique(scores["framework_id"].astype(str))}
    return results_table(scores, frameworks, units, year=None if year is None else int(year), level=level, kind=kind)


class ResultsCache:
    """A tenant's results, units and assessments, kept while the tenant's data is unchanged.

    Every call first reads the session's data stamp
    (:meth:`parindex_lib.store.TenantSession.data_stamp`): while it, the
    store, the tenant and the user are those the kept tables were read
    under, the kept tables are returned; otherwise everything kept is
    dropped and read again, so a colleague's save, an appraisal or an
    import is seen at the next call. One cache serves one person; the apps
    keep one each.

    Parameters
    ----------
    size : int
        How many results tables to keep (the least recently used goes first).

    Attributes
    ----------
    stamp : tuple or None
        The store, tenant, user and data stamp the kept tables belong to
        (None before the first call); what the caller keeps derived from the
        tables is valid while it is unchanged.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from parindex_lib.store import Store
    >>> store = Store(pathlib.Path(tempfile.mkdtemp()) / "par.sqlite")
    >>> _ = store.create_tenant("hn", "Sở Nội vụ Hà Nội", admin_user="lan")
    >>> cache = ResultsCache()
    >>> with store.session(tenant="hn", user="lan") as s:
    ...     before = cache.stamp, list(cache.units(s)["code"])
    ...     _ = s.upsert_units(pd.DataFrame({"code": ["D01"], "name": ["Sở Tư pháp"], "kind": ["department"]}))
    ...     after = list(cache.units(s)["code"])  # the data changed: read again
    >>> before[0] is None, before[1], after
    (True, [], ['D01'])
    >>> store.dispose()
    """

    def __init__(self, size: int = 16):
        self.size = int(size)
        self.stamp: tuple | None = None
        self._tables: OrderedDict[tuple, pd.DataFrame] = OrderedDict()
        self._units: pd.DataFrame | None = None
        self._assessments: pd.DataFrame | None = None
        self._frameworks: dict[str, Framework] = {}

    def _sync(self, session) -> None:
        """Drop the kept tables when the session's store, tenant, user or data differ from theirs."""
        stamp = (session.store, session.tenant, session.user, session.data_stamp())
        if stamp != self.stamp:
            self._tables.clear()
            self._units = self._assessments = None
            if self.stamp is None or self.stamp[:2] != stamp[:2]:
                self._frameworks.clear()  # a framework in use never changes: kept per store and tenant
            self.stamp = stamp

    def _framework(self, session, framework_id: str) -> Framework:
        if framework_id not in self._frameworks:
            self._frameworks[framework_id] = session.framework(framework_id)
        return self._frameworks[framework_id]

    def results(self, session, *, year: int | None = None, level: str | None = "index", kind: str | None = None,
                framework_id: str | None = None) -> pd.DataFrame:
        """:func:`session_results`, computed once per state of the tenant's data.

        Parameters
        ----------
        session : parindex_lib.store.TenantSession
        year, level, kind, framework_id
            As :func:`session_results`.

        Returns
        -------
        pandas.DataFrame
            The columns of :data:`RESULTS_TABLE_COLUMNS` (a copy: the caller
            may change it).
        """
        self._sync(session)
        key = (None if year is None else int(year), level, kind, None if framework_id is None else str(framework_id))
        if key in self._tables:
            self._tables.move_to_end(key)
        else:
            self._tables[key] = _session_results(
                session, lambda fid: self._framework(session, fid), year=key[0], level=level, kind=kind,
                framework_id=key[3], units=self._kept_units(session))
            while len(self._tables) > self.size:
                self._tables.popitem(last=False)
        return self._tables[key].copy()

    def _kept_units(self, session) -> pd.DataFrame:
        if self._units is None:
            self._units = session.units()
        return self._units

    def units(self, session) -> pd.DataFrame:
        """The tenant's units (:meth:`parindex_lib.store.TenantSession.units`), kept as the results are."""
        self._sync(session)
        return self._kept_units(session).copy()

    def assessments(self, session) -> pd.DataFrame:
        """The tenant's assessments (:meth:`parindex_lib.store.TenantSession.assessments`), kept as the results are."""
        self._sync(session)
        if self._assessments is None:
            self._assessments = session.assessments()
        return self._assessments.copy()

    def framework(self, session, framework_id: str) -> Framework:
        """A framework by id (:meth:`parindex_lib.store.TenantSession.framework`), kept per store and tenant.

        A framework that assessments use cannot change (the store refuses),
        so no data stamp is read.
        """
        if self.stamp is None or self.stamp[:2] != (session.store, session.tenant):
            self._sync(session)
        return self._framework(session, str(framework_id))
