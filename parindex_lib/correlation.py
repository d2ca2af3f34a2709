"""Correlation studies: PAR INDEX fields against PCI, PAPI and SIPAS.

Every function takes ``data`` in either form:

* the **long** table of :mod:`.external` (columns ``province_code`` or
  ``unit_code``, ``year``, ``index``, ``component``, ``value``); variables
  are then named ``"INDEX:component"`` (``"PAR:field3"``, ``"PCI:total"``),
  and a bare index name (``"PAPI"``) means all its components except ranks;
* a **wide** table, one row per unit (and year), one column per variable;
  variables are column names.

Missing values are never filled: each pair uses the units that have both
values (pairwise-complete), and the result says how many units had only one
of the two (``n_missing_x``, ``n_missing_y``).

Confidence intervals: Fisher's z for Pearson; a seeded percentile bootstrap
for Spearman and Kendall, computed for all resamples at once with numpy (see
:func:`bootstrap_indices` for how resamples are drawn, so that they can be
reproduced independently). p-values come from :mod:`scipy.stats` and are
corrected for multiple testing with Benjamini-Hochberg over every row of the
returned table (the *family*).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .errors import ValidationError
from .external import INDICES, to_wide

__all__ = [
    "METHODS",
    "RESULT_COLUMNS",
    "LAGGED_COLUMNS",
    "PARTIAL_COLUMNS",
    "SIPAS_NOTE",
    "correlate",
    "lagged_correlate",
    "partial_correlate",
    "benjamini_hochberg",
    "bootstrap_indices",
    "study_variables",
    "reference_study",
]

#: Correlation methods, by name.
METHODS = ("pearson", "spearman", "kendall")
#: Columns of :func:`correlate`, in order.
RESULT_COLUMNS = ["x", "y", "year", "method", "n", "r", "ci_low", "ci_high", "p", "p_adj",
                  "n_missing_x", "n_missing_y", "ci_method", "note"]
#: Columns of :func:`lagged_correlate`, in order.
LAGGED_COLUMNS = ["x", "y", "year", "year_y", "method", "n", "r", "ci_low", "ci_high", "p", "p_adj",
                  "n_missing_x", "n_missing_y", "ci_method", "note"]
#: Columns of :func:`partial_correlate`, in order.
PARTIAL_COLUMNS = ["x", "y", "year", "covar", "method", "n", "k", "r", "ci_low", "ci_high", "p", "p_adj",
                   "n_missing_x", "n_missing_y", "note"]
#: Said beside every PAR-SIPAS result.
SIPAS_NOTE = ("SIPAS is part of PAR field 8 (about 10 of 100 points in 2020): part of this association is "
              "built in; see exclude_sipas_part")
_PCI_TOP30_NOTE = ("from 2023 VCCI publishes PCI for the top 30 provinces only: a selected, restricted range "
                   "that weakens correlations")
_PROGRESS_CHUNK = 32  # pairs bootstrapped between two progress calls
_POOLED_NOTE = "pooled over years {years}: the same province appears several times; p and CI assume independence"


# --------------------------------------------------------------------------- helpers


def benjamini_hochberg(p: Iterable[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate).

    Parameters
    ----------
    p
        p-values; NaN stays NaN and is not counted in the family.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same order: ``min(1, min_{j>=i} p_(j) m / j)``.

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, 0.03, float("nan")]).round(4).tolist()
    [0.03, 0.04, 0.04, nan]
    """
    arr = np.asarray(list(p), dtype=float)
    out = np.full(arr.shape, np.nan)
    ok = np.isfinite(arr)
    m = int(ok.sum())
    if m == 0:
        return out
    ps = arr[ok]
    order = np.argsort(ps, kind="stable")
    scaled = ps[order] * m / np.arange(1, m + 1)
    scaled = np.minimum.accumulate(scaled[::-1])[::-1]
    adj = np.empty(m)
    adj[order] = np.minimum(scaled, 1.0)
    out[ok] = adj
    return out


def bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    """The resamples used for a pair of ``n`` complete observations.

    Each pair is resampled afresh with ``numpy.random.default_rng(seed)``:
    resample ``b`` takes the observations ``idx[b]`` (in the order of the
    pair's complete rows: for long data sorted by year, then unit; for wide
    data as given). A pair's interval
    therefore does not depend on which other pairs are in the study. These
    are the resamples ``scipy.stats.bootstrap(..., paired=True,
    method="percentile", random_state=numpy.random.default_rng(seed))``
    draws, so the intervals equal scipy's for the same seed.

    Returns
    -------
    numpy.ndarray
        Integers of shape ``(n_boot, n)``.
    """
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


class _Resamples:
    """Bootstrap distributions of Spearman's rho or Kendall's tau-b, all resamples at once.

    ``C[b, k]`` is the number of times observation ``k`` is drawn in resample
    ``b``; all pairs given share the same complete observations, and what
    depends on one variable only is computed once and kept.

    * Spearman: the rank of observation ``k`` in resample ``b`` (average
      ties) is the count of drawn values below it plus (count equal + 1) / 2;
      rho is the count-weighted Pearson correlation of those ranks, whose
      mean is (n + 1) / 2.
    * Kendall: tau-b = 0.5 c' S c / sqrt((n0 - n1)(n0 - n2)), with ``S`` the
      matrix of sign(x_k - x_l) sign(y_k - y_l), ``n0 = n(n-1)/2`` and
      ``n1``, ``n2`` the drawn pairs tied in x and in y. The quadratic forms of
      many pairs are one matrix product (exact in float32 for n < 4096:
      integer sums below 2^24).
    """

    def __init__(self, n: int, n_boot: int, seed: int):
        self.idx = bootstrap_indices(n, n_boot, seed)
        self.n, self.n_boot = n, n_boot
        self._rows = np.arange(n_boot)[:, None]
        flat = (self.idx + n * self._rows).ravel()
        self.C = np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(float)
        self._dtype = np.float32 if n < 4096 else np.float64
        self._Cd = self.C.astype(self._dtype)
        self._cache: dict[tuple[str, str], Any] = {}

    def _drawn_per_value(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, g = np.unique(v, return_inverse=True)
        u = int(g.max()) + 1
        E = np.bincount((g[self.idx] + u * self._rows).ravel(), minlength=self.n_boot * u).reshape(self.n_boot, u)
        return g, E.astype(float)

    def _spearman_prep(self, name: str, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = ("s", name)
        if key not in self._cache:
            g, E = self._drawn_per_value(v)
            rank_u = np.cumsum(E, axis=1) - E + (E + 1.0) / 2.0
            D = rank_u[:, g] - (self.n + 1) / 2.0
            self._cache[key] = (D, np.einsum("bk,bk,bk->b", self.C, D, D))
        return self._cache[key]

    def _kendall_prep(self, name: str, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = ("k", name)
        if key not in self._cache:
            _, E = self._drawn_per_value(v)
            sign = np.sign(v[:, None] - v[None, :]).astype(self._dtype)
            self._cache[key] = (sign, (E * (E - 1.0) / 2.0).sum(axis=1))
        return self._cache[key]

    def distributions(self, method: str, values: Mapping[str, np.ndarray],
                      pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Shape ``(len(pairs), n_boot)``; NaN for resamples without variation."""
        out = np.full((len(pairs), self.n_boot), np.nan)
        n = self.n
        if method == "spearman":
            for i, (xv, yv) in enumerate(pairs):
                Dx, SSx = self._spearman_prep(xv, values[xv])
                Dy, SSy = self._spearman_prep(yv, values[yv])
                den = np.sqrt(SSx * SSy)
                num = np.einsum("bk,bk,bk->b", self.C, Dx, Dy)
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[i] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
            return out
        n0 = n * (n - 1) / 2.0
        chunk = max(1, min(len(pairs), int(4e6 // (n * n)), int(2e7 // (self.n_boot * n))))
        for lo in range(0, len(pairs), chunk):
            part = pairs[lo:lo + chunk]
            preps = [(self._kendall_prep(xv, values[xv]), self._kendall_prep(yv, values[yv])) for xv, yv in part]
            A = np.stack([px[0] * py[0] for px, py in preps])  # (P, n, n)
            R = (self._Cd @ A.transpose(1, 0, 2).reshape(n, len(part) * n)).reshape(self.n_boot, len(part), n)
            num = 0.5 * np.einsum("bpk,bk->pb", R, self._Cd).astype(np.float64)
            for j, (px, py) in enumerate(preps):
                den = np.sqrt(np.clip((n0 - px[1]) * (n0 - py[1]), 0, None))
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[lo + j] = np.where(den > 0, num[j] / np.where(den > 0, den, 1.0), np.nan)
        return out


def _fisher_ci(r: float, n: int, ci: float, k: int = 0) -> tuple[float, float]:
    if not np.isfinite(r) or n - 3 - k < 1:
        return math.nan, math.nan
    if abs(r) >= 1:
        return r, r
    z = math.atanh(r)
    se = 1.0 / math.sqrt(n - 3 - k)
    q = stats.norm.ppf(0.5 + ci / 2.0)
    return math.tanh(z - q * se), math.tanh(z + q * se)


def _scipy_corr(method: str, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "pearson":
            res = stats.pearsonr(x, y)
            return float(res.statistic), float(res.pvalue)
        if method == "spearman":
            res = stats.spearmanr(x, y)
            return float(res.statistic), float(res.pvalue)
        res = stats.kendalltau(x, y)
        return float(res.statistic), float(res.pvalue)


# --------------------------------------------------------------------------- data preparation


def _unit_column(data: pd.DataFrame, unit: str | None) -> str | None:
    if unit is not None:
        if unit not in data.columns:
            raise ValidationError("the unit column is missing", [
                {"column": unit, "expected": "a column naming the unit (province_code or unit_code)"}])
        return unit
    for c in ("province_code", "unit_code"):
        if c in data.columns:
            return c
    return None


def _is_long(data: pd.DataFrame) -> bool:
    return {"index", "component", "value"} <= set(data.columns)


def _prepare(data: pd.DataFrame, unit: str | None) -> tuple[pd.DataFrame, str | None]:
    if not isinstance(data, pd.DataFrame):
        raise ValidationError("data must be a DataFrame", [{"value": type(data).__name__,
                                                            "expected": "a pandas DataFrame, long or wide"}])
    u = _unit_column(data, unit)
    if _is_long(data):
        if u is None:
            raise ValidationError("long data needs a unit column", [
                {"column": "province_code", "expected": "province_code or unit_code"}])
        long = data if "year" in data.columns else data.assign(year=0)
        return to_wide(long, unit=u), u
    return data.copy(), u


def _is_rank(label: str) -> bool:
    comp = label.split(":", 1)[-1]
    return comp == "rank" or comp.endswith("_rank")


def study_variables(data: pd.DataFrame, spec: str | Sequence[str], *, unit: str | None = None) -> list[str]:
    """The variables a specification names, in order.

    Parameters
    ----------
    data
        Long or wide data (see the module docstring).
    spec
        A variable (``"PCI:total"`` or a wide column name), an index name
        (``"PAPI"``: its components except ranks, total first), or a list of
        them.

    Returns
    -------
    list of str

    Raises
    ------
    ValidationError
        Naming every specification that matches nothing, with the variables
        available.
    """
    wide, u = _prepare(data, unit)
    return _resolve(wide, spec, u)


def _resolve(wide: pd.DataFrame, spec: str | Sequence[str], unit: str | None) -> list[str]:
    items = [spec] if isinstance(spec, str) else list(spec)
    available = [c for c in wide.columns if c not in (unit, "year") and pd.api.types.is_numeric_dtype(wide[c])]
    out: list[str] = []
    fails = []
    for s in items:
        if s in available:
            out.append(s)
        elif str(s).upper() in INDICES and any(c.startswith(f"{str(s).upper()}:") for c in available):
            out += [c for c in available if c.startswith(f"{str(s).upper()}:") and not _is_rank(c)]
        else:
            fails.append({"column": "variables", "value": s,
                          "expected": "one of " + ", ".join(available[:60]) + (" ..." if len(available) > 60 else "")})
    if fails:
        raise ValidationError("variables not in the data", fails)
    return list(dict.fromkeys(out))


def _resolve_xy(wide: pd.DataFrame, x: Any, y: Any, unit: str | None) -> tuple[list[str], list[str]]:
    fails = []
    out = []
    for spec in (x, y):
        try:
            out.append(_resolve(wide, spec, unit))
        except ValidationError as e:
            fails.append(e.failures)
            out.append([])
    if fails:
        raise ValidationError("variables not in the data", pd.concat(fails, ignore_index=True))
    return out[0], out[1]


def _sipas_adjust(wide: pd.DataFrame, labels: list[str], sipas_part: str,
                  sipas_part_max: float | Mapping[int, float] | None) -> tuple[pd.DataFrame, list[str], str]:
    """Replace PAR:total by PAR total minus its SIPAS part."""
    part_col = {"field8": "PAR:field8", "SIPAS": "SIPAS:total"}.get(sipas_part)
    if part_col is None:
        raise ValidationError("unknown SIPAS part", [{"column": "sipas_part", "value": sipas_part,
                                                      "expected": "'field8' or 'SIPAS'"}])
    if sipas_part_max is None:
        raise ValidationError("the points of the SIPAS part are needed", [
            {"column": "sipas_part_max", "expected": (
                "the maximum points of field 8 (or of the SIPAS criterion) in the year's framework, "
                "a number or {year: points}; frameworks differ by year, so there is no default")}])
    fails = [{"column": c, "expected": "this variable in the data"} for c in ("PAR:total", part_col)
             if c not in wide.columns]
    if fails:
        raise ValidationError("PAR total minus its SIPAS part needs both variables", fails)
    if isinstance(sipas_part_max, Mapping):
        mx = wide["year"].map(lambda yr: sipas_part_max.get(int(yr), np.nan)).astype(float)
        missing = sorted(set(int(v) for v in wide.loc[mx.isna(), "year"]))
        if missing:
            raise ValidationError("sipas_part_max lacks years", [
                {"column": "sipas_part_max", "value": yr, "expected": "the points of the SIPAS part that year"}
                for yr in missing])
        shown = ", ".join(f"{k}: {v:g}" for k, v in sorted(sipas_part_max.items()))
    else:
        mx = float(sipas_part_max)
        shown = f"{mx:g}"
    name = "PAR:total_minus_field8" if sipas_part == "field8" else "PAR:total_minus_SIPAS_part"
    wide = wide.copy()
    wide[name] = wide["PAR:total"] - wide[part_col] * mx / 100.0
    how = (f"{name} = PAR total minus {part_col} x ({shown}) / 100 points: the SIPAS part removed"
           + ("" if sipas_part == "field8" else " (approximation: SIPAS % times the points of its criterion)"))
    return wide, [name if v == "PAR:total" else v for v in labels], how


def _year_groups(wide: pd.DataFrame, year: Any) -> list[tuple[Any, np.ndarray]]:
    if "year" not in wide.columns:
        if year not in (None, "pooled"):
            raise ValidationError("the data has no year column", [{"column": "year", "value": year,
                                                                   "expected": "None or 'pooled'"}])
        return [(None, np.ones(len(wide), dtype=bool))]
    years = wide["year"].to_numpy()
    present = sorted(set(int(v) for v in years))
    if year is None:
        return [(y, years == y) for y in present]
    if isinstance(year, str):
        if year != "pooled":
            raise ValidationError("year is a year, a list of years, None or 'pooled'", [
                {"column": "year", "value": year, "expected": "e.g. 2024 or 'pooled'"}])
        return [("pooled", np.ones(len(wide), dtype=bool))]
    wanted = [int(year)] if np.isscalar(year) else [int(v) for v in year]
    missing = [y for y in wanted if y not in present]
    if missing:
        raise ValidationError("years not in the data", [
            {"column": "year", "value": y, "expected": "one of " + ", ".join(map(str, present))} for y in missing])
    return [(y, years == y) for y in wanted]


def _check_method(method: str, allowed: Sequence[str] = METHODS) -> str:
    if method not in allowed:
        raise ValidationError("unknown correlation method", [{"column": "method", "value": method,
                                                              "expected": "one of " + ", ".join(allowed)}])
    return method


def _group_years(wide: pd.DataFrame, mask: np.ndarray) -> set[int]:
    return set(int(v) for v in wide.loc[mask, "year"].unique()) if "year" in wide.columns else set()


def _pair_notes(xv: str, yv: str, label: Any, years: set[int], y_shift: int = 0) -> list[str]:
    """Caveats of a pair; ``years`` are the years of x in the group."""
    notes = []
    names = (xv, yv)
    par = [v for v in names if v.startswith("PAR:")]
    if par and any(v.startswith("SIPAS:") for v in names) and not all(v.startswith("PAR:total_minus") for v in par):
        notes.append(SIPAS_NOTE)
    pci_years = (years if xv.startswith("PCI:") else set()) | (
        {v + y_shift for v in years} if yv.startswith("PCI:") else set())
    if any(yr >= 2023 for yr in pci_years):
        notes.append(_PCI_TOP30_NOTE)
    if label == "pooled":
        notes.append(_POOLED_NOTE.format(years=", ".join(map(str, sorted(years)))))
    return notes


# --------------------------------------------------------------------------- the engine


def _run(wide: pd.DataFrame, pairs: list[tuple[str, str, str]], groups: list[tuple[Any, np.ndarray]], *,
         method: str, n_boot: int, seed: int, ci: float, min_n: int, extra_note: str | None,
         progress: Callable[[int, int], Any] | None, y_shift: int = 0) -> list[dict[str, Any]]:
    """pairs: (x column, y column, y label); returns result rows without p_adj."""
    rows: list[dict[str, Any]] = []
    total = len(pairs) * len(groups)
    done = 0
    ci_method = ("fisher_z" if method == "pearson"
                 else f"bootstrap percentile ({n_boot} resamples, seed {seed})" if n_boot > 0 else "none")
    for label, gmask in groups:
        sub = wide.loc[gmask]
        arrays = {c: sub[c].to_numpy(dtype=float) for c in set(p[0] for p in pairs) | set(p[1] for p in pairs)}
        years = _group_years(sub, np.ones(len(sub), dtype=bool))
        buckets: dict[bytes, list[tuple[dict[str, Any], str, str, list[str]]]] = {}
        group_rows = []
        for xv, yv, ylabel in pairs:
            x, y = arrays[xv], arrays[yv]
            fx, fy = np.isfinite(x), np.isfinite(y)
            ok = fx & fy
            n = int(ok.sum())
            row = {"x": xv, "y": ylabel, "year": label, "method": method, "n": n, "r": math.nan,
                   "ci_low": math.nan, "ci_high": math.nan, "p": math.nan,
                   "n_missing_x": int((~fx & fy).sum()), "n_missing_y": int((fx & ~fy).sum()),
                   "ci_method": ci_method}
            notes = _pair_notes(xv, ylabel, label, years, y_shift)
            if extra_note and ("PAR:total_minus" in xv or "PAR:total_minus" in ylabel):
                notes.append(extra_note)
            xs, ys = x[ok], y[ok]
            group_rows.append((row, notes))
            if n < min_n:
                notes.append(f"fewer than {min_n} complete pairs")
                continue
            if np.ptp(xs) == 0 or np.ptp(ys) == 0:
                notes.append(f"{xv if np.ptp(xs) == 0 else ylabel} has no variation")
                continue
            r, p = _scipy_corr(method, xs, ys)
            row["r"], row["p"] = r, p
            if method == "pearson":
                row["ci_low"], row["ci_high"] = _fisher_ci(r, n, ci)
            elif n_boot > 0:
                buckets.setdefault(ok.tobytes(), []).append((row, xv, yv, notes))
        finished = len(group_rows) - sum(len(b) for b in buckets.values())
        done += finished
        if progress is not None and finished:
            progress(done, total)
        for key, members in buckets.items():
            ok = np.frombuffer(key, dtype=bool)
            resamples = _Resamples(int(ok.sum()), n_boot, seed)
            for lo in range(0, len(members), _PROGRESS_CHUNK):
                part = members[lo:lo + _PROGRESS_CHUNK]
                values = {v: arrays[v][ok] for m in part for v in (m[1], m[2])}
                dists = resamples.distributions(method, values, [(m[1], m[2]) for m in part])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are reported below
                    bounds = np.nanpercentile(dists, [50 * (1 - ci), 50 * (1 + ci)], axis=1)
                for (row, _, _, notes), dist, lo_, hi_ in zip(part, dists, bounds[0], bounds[1]):
                    bad = int(np.isnan(dist).sum())
                    if bad == len(dist):
                        notes.append("no resample had variation in both variables")
                        continue
                    row["ci_low"], row["ci_high"] = float(lo_), float(hi_)
                    if bad:
                        notes.append(f"{bad} of {len(dist)} resamples without variation left out of the CI")
                done += len(part)
                if progress is not None:
                    progress(done, total)
        for row, notes in group_rows:
            row["note"] = "; ".join(notes)
            rows.append(row)
    return rows


def _finish(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=columns)
    out["p_adj"] = benjamini_hochberg(out["p"].to_numpy())
    out = out[columns]
    out["n"] = out["n"].astype("int64")
    for c in ("n_missing_x", "n_missing_y"):
        if c in out.columns:
            out[c] = out[c].astype("int64")
    return out.reset_index(drop=True)


def correlate(data: pd.DataFrame, x: str | Sequence[str] = "PAR", y: str | Sequence[str] = ("PCI", "PAPI", "SIPAS"),
              *, method: str = "pearson", year: Any = None, n_boot: int = 2000, seed: int = 0, ci: float = 0.95,
              min_n: int = 4, exclude_sipas_part: bool = False, sipas_part: str = "field8",
              sipas_part_max: float | Mapping[int, float] | None = None, unit: str | None = None,
              progress: Callable[[int, int], Any] | None = None) -> pd.DataFrame:
    """Correlate every x variable with every y variable, by year or pooled.

    Parameters
    ----------
    data
        Long or wide data (see the module docstring).
    x, y
        Variables or index names; default PAR (total and fields) against
        PCI, PAPI and SIPAS (totals and components, ranks left out).
    method
        ``"pearson"``, ``"spearman"`` or ``"kendall"`` (tau-b).
    year
        None: each year separately; a year or list of years; ``"pooled"``:
        all rows together (province-years treated as independent, said in
        ``note``).
    n_boot, seed
        Bootstrap resamples and seed for the Spearman and Kendall intervals
        (``n_boot=0``: no interval).
    ci
        Confidence level.
    min_n
        Fewest complete pairs for a coefficient (below: NaN and a note).
    exclude_sipas_part
        Replace ``PAR:total`` by PAR total minus its SIPAS part, named
        ``PAR:total_minus_field8`` (or ``PAR:total_minus_SIPAS_part``), and
        say how in ``note``.
    sipas_part
        ``"field8"``: subtract field 8 (``PAR:field8`` index % x
        ``sipas_part_max`` / 100 points); ``"SIPAS"``: subtract
        ``SIPAS:total`` % x ``sipas_part_max`` / 100 (an approximation of the
        SIPAS criterion's points).
    sipas_part_max
        Points of that part in the year's framework: a number or
        ``{year: points}``. Required with ``exclude_sipas_part``.
    unit
        The unit column (default ``province_code`` or ``unit_code``).
    progress
        Called as ``progress(done, total)`` after each pair.

    Returns
    -------
    pandas.DataFrame
        One row per pair and year (year, then x, then y order), columns:

        ``x``, ``y`` (str), ``year`` (int, ``"pooled"``, or None without a
        year column), ``method``, ``n`` (complete pairs), ``r``,
        ``ci_low``, ``ci_high``, ``p`` (scipy.stats, two-sided), ``p_adj``
        (Benjamini-Hochberg over all rows), ``n_missing_x`` (units with y but
        no x), ``n_missing_y`` (units with x but no y), ``ci_method``,
        ``note`` (caveats: the SIPAS part of PAR, PCI's top-30 coverage,
        pooling, too few pairs; "" when none).

    Examples
    --------
    >>> wide = pd.DataFrame({"a": [1.0, 2, 3, 4, 5], "b": [2.0, 1, 4, 3, 5]})
    >>> res = correlate(wide, "a", "b", method="spearman", n_boot=200)
    >>> res[["x", "y", "n"]].values.tolist(), round(res["r"].item(), 4)
    ([['a', 'b', 5]], 0.8)
    """
    method = _check_method(method)
    wide, u = _prepare(data, unit)
    xs, ys = _resolve_xy(wide, x, y, u)
    how = None
    if exclude_sipas_part:
        wide, xs, how = _sipas_adjust(wide, xs, sipas_part, sipas_part_max)
        ys = [("PAR:total_minus_field8" if sipas_part == "field8" else "PAR:total_minus_SIPAS_part")
              if v == "PAR:total" else v for v in ys]
    groups = _year_groups(wide, year)
    pairs = [(a, b, b) for a in xs for b in ys if a != b]
    rows = _run(wide, pairs, groups, method=method, n_boot=n_boot, seed=seed, ci=ci, min_n=min_n,
                extra_note=how, progress=progress)
    return _finish(rows, RESULT_COLUMNS)


def lagged_correlate(data: pd.DataFrame, x: str | Sequence[str] = "PAR",
                     y: str | Sequence[str] = ("PCI", "PAPI", "SIPAS"), *, lag: int = 1, method: str = "pearson",
                     year: Any = None, n_boot: int = 2000, seed: int = 0, ci: float = 0.95, min_n: int = 4,
                     unit: str | None = None, progress: Callable[[int, int], Any] | None = None) -> pd.DataFrame:
    """Correlate x in year t with y in year t + lag (PAR now, the other index later).

    Parameters
    ----------
    data, x, y, method, n_boot, seed, ci, min_n, unit, progress
        As :func:`correlate`.
    lag
        Years between x and y (1: PAR 2022 against PCI 2023).
    year
        The years t of x: None (every t whose t + lag is in the data), a
        year or list, or ``"pooled"``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LAGGED_COLUMNS`: those of :func:`correlate` with
        ``year_y`` (t + lag, or ``"pooled"``) after ``year``; the units are
        matched by code across the two years (use codes of one era).

    Examples
    --------
    >>> wide = pd.DataFrame({"province_code": ["01", "02", "04", "06"] * 2, "year": [2021] * 4 + [2022] * 4,
    ...                      "a": [1.0, 2, 3, 4, 9, 9, 9, 9], "b": [0.0, 0, 0, 0, 1, 2, 4, 3]})
    >>> res = lagged_correlate(wide, "a", "b", method="spearman", n_boot=0)
    >>> res[["year", "year_y", "n"]].values.tolist(), round(res["r"].item(), 4)
    ([[2021, 2022, 4]], 0.8)
    """
    method = _check_method(method)
    if int(lag) != lag or lag == 0:
        raise ValidationError("lag is a non-zero whole number of years", [{"column": "lag", "value": lag,
                                                                          "expected": "e.g. 1"}])
    wide, u = _prepare(data, unit)
    if u is None or "year" not in wide.columns:
        raise ValidationError("lagged correlation needs a unit and a year column", [
            {"column": "province_code / year", "expected": "both columns"}])
    xs, ys = _resolve_xy(wide, x, y, u)
    left = wide[[u, "year"] + xs]
    right = wide[[u, "year"] + ys].copy()
    right["year"] = right["year"] - int(lag)
    right.columns = [u, "year"] + [f"{v}\u0001lag" for v in ys]
    lagged = left.merge(right, on=[u, "year"], how="outer").sort_values(["year", u]).reset_index(drop=True)
    present_x = set(int(v) for v in wide["year"])
    valid = sorted(t for t in present_x if t + int(lag) in present_x)
    if year is None:
        if not valid:
            raise ValidationError("no year t with data in t + lag", [
                {"column": "year", "value": sorted(present_x), "expected": f"years t and t + {lag}"}])
        groups = [(t, lagged["year"].to_numpy() == t) for t in valid]
    elif year == "pooled":
        groups = [("pooled", lagged["year"].isin(valid).to_numpy())]
    else:
        groups = _year_groups(lagged, year)
    pairs = [(a, f"{b}\u0001lag", b) for a in xs for b in ys]
    rows = _run(lagged, pairs, groups, method=method, n_boot=n_boot, seed=seed, ci=ci, min_n=min_n,
                extra_note=None, progress=progress, y_shift=int(lag))
    for r in rows:
        r["year_y"] = "pooled" if r["year"] == "pooled" else int(r["year"]) + int(lag)
        r["note"] = "; ".join(filter(None, [f"y measured {lag} year(s) after x", r["note"]]))
    return _finish(rows, LAGGED_COLUMNS)


def partial_correlate(data: pd.DataFrame, x: str | Sequence[str] = "PAR", y: str | Sequence[str] = ("PCI", "PAPI"),
                      covar: str | Sequence[str] = "region", *, method: str = "pearson", year: Any = None,
                      ci: float = 0.95, min_n: int = 4, unit: str | None = None,
                      progress: Callable[[int, int], Any] | None = None) -> pd.DataFrame:
    """Partial correlation of x and y controlling for covariates (default: region).

    Both variables are residualised on an intercept and the covariates by
    least squares, and the residuals are correlated. Text covariates (and
    ``region`` and ``year``) enter as dummies (one level left out); numbers
    as they are. For Spearman, x and y are ranked first. The test uses
    ``t = r sqrt(dof / (1 - r^2))`` with ``dof = n - 2 - k`` (``k`` the
    covariate columns), which equals the t of x in the regression of y on x
    and the covariates; the CI is Fisher's z with ``se = 1 / sqrt(n - 3 - k)``.

    Parameters
    ----------
    data, x, y, year, ci, min_n, unit, progress
        As :func:`correlate`.
    covar
        Column names; ``"region"`` is added from the province codes
        (:func:`parindex_lib.provinces.region_of`, the six socio-economic
        regions of the 63 pre-2025 provinces) when the data has no such
        column; refused for rows of years from 2025 (merged provinces).
    method
        ``"pearson"`` or ``"spearman"``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PARTIAL_COLUMNS`: ``x``, ``y``, ``year``, ``covar``
        (the covariates, joined by "+"), ``method``, ``n``, ``k`` (covariate
        columns after dummy coding), ``r``, ``ci_low``, ``ci_high``, ``p``,
        ``p_adj`` (Benjamini-Hochberg over all rows), ``n_missing_x``,
        ``n_missing_y``, ``note``.
    """
    method = _check_method(method, ("pearson", "spearman"))
    wide, u = _prepare(data, unit)
    covars = [covar] if isinstance(covar, str) else list(covar)
    groups = _year_groups(wide, year)
    for c in covars:
        if c not in wide.columns:
            if c == "region" and u == "province_code":
                from .provinces import region_of

                # only the rows of the years studied; codes of years from 2025 (the merged provinces)
                # are refused, never given the region of the old province with the same code
                used = np.logical_or.reduce([np.asarray(m, dtype=bool) for _, m in groups]) if groups else \
                    np.zeros(len(wide), dtype=bool)
                wide["region"] = pd.Series(np.nan, index=wide.index, dtype=object)
                if used.any():
                    rows_used = wide.loc[used]
                    years = rows_used["year"].tolist() if "year" in wide.columns else None
                    wide.loc[used, "region"] = region_of(rows_used["province_code"], year=years).to_numpy()
            else:
                raise ValidationError("covariate not in the data", [
                    {"column": c, "expected": "a column of the data (region is added for province codes)"}])
    xs, ys = _resolve_xy(wide, x, y, u)
    xs = [v for v in xs if v not in covars]
    ys = [v for v in ys if v not in covars]
    total = len(xs) * len(ys) * len(groups)
    done = 0
    rows = []
    for label, gmask in groups:
        sub = wide.loc[gmask].reset_index(drop=True)
        years = _group_years(sub, np.ones(len(sub), dtype=bool))
        cov_ok = np.ones(len(sub), dtype=bool)
        parts = []
        for c in covars:
            col = sub[c]
            if c in ("region", "year") or not pd.api.types.is_numeric_dtype(col):
                cov_ok &= col.notna().to_numpy()
                parts.append(("cat", c))
            else:
                cov_ok &= np.isfinite(col.to_numpy(dtype=float))
                parts.append(("num", c))
        for xv in xs:
            for yv in ys:
                if xv == yv:
                    continue
                xa, ya = sub[xv].to_numpy(dtype=float), sub[yv].to_numpy(dtype=float)
                fx, fy = np.isfinite(xa) & cov_ok, np.isfinite(ya) & cov_ok
                ok = fx & fy
                n = int(ok.sum())
                row = {"x": xv, "y": yv, "year": label, "covar": "+".join(covars), "method": method, "n": n,
                       "k": 0, "r": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p": math.nan,
                       "n_missing_x": int((~np.isfinite(xa) & np.isfinite(ya)).sum()),
                       "n_missing_y": int((np.isfinite(xa) & ~np.isfinite(ya)).sum())}
                notes = _pair_notes(xv, yv, label, years)
                dropped = int((np.isfinite(xa) & np.isfinite(ya) & ~cov_ok).sum())
                if dropped:
                    notes.append(f"{dropped} unit(s) without covariates left out")
                cols = [np.ones(n)]
                for kind, c in parts:
                    if kind == "num":
                        cols.append(sub.loc[ok, c].to_numpy(dtype=float))
                    else:
                        d = pd.get_dummies(sub.loc[ok, c].astype(str), drop_first=True, dtype=float)
                        cols += [d[k].to_numpy() for k in d.columns]
                Z = np.column_stack(cols)
                k = int(np.linalg.matrix_rank(Z)) - 1
                row["k"] = k
                dof = n - 2 - k
                if n < min_n or dof < 1:
                    notes.append(f"too few complete units (n={n}) for {k} covariate column(s)")
                else:
                    xs_, ys_ = xa[ok], ya[ok]
                    if method == "spearman":
                        xs_, ys_ = stats.rankdata(xs_), stats.rankdata(ys_)
                    rx = xs_ - Z @ np.linalg.lstsq(Z, xs_, rcond=None)[0]
                    ry = ys_ - Z @ np.linalg.lstsq(Z, ys_, rcond=None)[0]
                    sx, sy = np.sqrt(rx @ rx), np.sqrt(ry @ ry)
                    if sx < 1e-12 * max(1.0, np.abs(xs_).max()) or sy < 1e-12 * max(1.0, np.abs(ys_).max()):
                        notes.append("no variation left after the covariates")
                    else:
                        r = float(np.clip(rx @ ry / (sx * sy), -1.0, 1.0))
                        row["r"] = r
                        if abs(r) < 1:
                            t = r * math.sqrt(dof / (1 - r * r))
                            row["p"] = float(2 * stats.t.sf(abs(t), dof))
                        else:
                            row["p"] = 0.0
                        row["ci_low"], row["ci_high"] = _fisher_ci(r, n, ci, k)
                row["note"] = "; ".join(notes)
                rows.append(row)
                done += 1
                if progress is not None:
                    progress(done, total)
    return _finish(rows, PARTIAL_COLUMNS)


def reference_study(*, year: int | None = None, pooled: bool = False, method: str = "pearson",
                    x: str | Sequence[str] = "PAR", y: str | Sequence[str] = ("PCI", "PAPI", "SIPAS"),
                    n_boot: int = 2000, seed: int = 0, directory: Any = None,
                    par: pd.DataFrame | None = None,
                    progress: Callable[[int, int], Any] | None = None) -> pd.DataFrame:
    """The study behind ``parindex correlate``: the reference data, optionally with a tenant's PAR.

    Parameters
    ----------
    year
        One year; None: every year separately.
    pooled
        Pool all years (``year`` must then be None).
    method, x, y, n_boot, seed, progress
        As :func:`correlate`.
    directory
        Folder of imported reference data
        (:func:`parindex_lib.external.load_external`).
    par
        PAR figures in the long format (e.g. from
        :func:`parindex_lib.external.par_from_results`) that replace the
        published PAR rows of the same province, year and component.

    Returns
    -------
    pandas.DataFrame
        The table of :func:`correlate` (its first ten columns are ``x``,
        ``y``, ``year``, ``method``, ``n``, ``r``, ``ci_low``, ``ci_high``,
        ``p``, ``p_adj``).
    """
    from .external import LONG_COLUMNS, load_external

    if pooled and year is not None:
        raise ValidationError("choose a year or pooled, not both", [
            {"column": "year", "value": year, "expected": "no year with --pooled"}])
    data = load_external(directory)
    if par is not None:
        keep = [c for c in LONG_COLUMNS if c in par.columns]
        data = pd.concat([data, par[keep]], ignore_index=True).drop_duplicates(
            ["province_code", "year", "index", "component"], keep="last")
    return correlate(data, x, y, method=method, year="pooled" if pooled else year, n_boot=n_boot, seed=seed,
                     progress=progress)
