"""The evidence pack: one unit's results, losses, priorities, targets and plan, as a report.

An evidence pack gathers, for one unit and year, what a Department of Home
Affairs needs to write an improvement plan: the unit's results beside the
median and the best unit of its kind, the points lost per node, the
priorities (formula :data:`parindex_lib.planning.PRIORITY_FORMULA`, shown in
the report), the targets (points needed for a rank or a group, and the
nodes that could provide them), the action plan kept in the store and, when
one is given, the correlation study behind the associations, with its
caveats.

- :func:`collect_evidence` reads everything from a tenant session;
  :func:`build_evidence_pack` does the same from tables already in hand.
- :func:`evidence_pack_html`: a self-contained HTML page (figures embedded
  as base64 PNG, styles inline, no script, nothing fetched; every text
  escaped).
- :func:`evidence_pack_xlsx`: the same tables in a workbook, one sheet each,
  and the figures on a sheet of their own.
- :func:`evidence_pack_pdf`: the HTML printed to PDF by a headless Chromium
  when one is installed (:func:`pdf_available`).

Text comes from the locale catalogues (:func:`parindex_lib.i18n.t`):
Vietnamese by default, English with ``lang="en"``.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import planning
from .errors import ParindexError, ValidationError
from .exporting import XLSX_TEXT_LIMIT, write_xlsx_value, xlsx_cell
from .framework import Framework
from .i18n import normalise_lang, number, t

__all__ = [
    "EvidencePack",
    "collect_evidence",
    "build_evidence_pack",
    "evidence_pack_html",
    "evidence_pack_xlsx",
    "evidence_pack_pdf",
    "pdf_available",
    "profile_figure",
    "priority_figure",
    "correlation_figure",
    "PROFILE_COLUMNS",
]

#: Columns of :attr:`EvidencePack.profile`, in order.
PROFILE_COLUMNS = ["node_code", "level", "name_vi", "name_en", "points", "max_points", "index_pct", "rank",
                   "rank_change", "group", "median_index_pct", "best_index_pct"]
_SHOWN_ROWS = 25
_CORR_SHOWN = 60


@dataclass(frozen=True)
class EvidencePack:
    """Everything an evidence pack shows, computed once.

    Attributes
    ----------
    unit_code, unit_name : str
    year : int
    kind : str or None
        The unit's kind; the comparison units are those of this kind.
    units : int
        How many units of the kind have a total that year (the ranking's N).
    framework_id, framework_name_vi, framework_name_en, framework_status : str
    profile : pandas.DataFrame
        The total and each field, columns :data:`PROFILE_COLUMNS` (the
        median and best index (%) among the units of the kind).
    points_lost : pandas.DataFrame
        :func:`parindex_lib.planning.points_lost` at the leaves.
    priorities : pandas.DataFrame
        :func:`parindex_lib.planning.priority` of those, with ``weight``.
    weight : float
    associations : dict of str to float
        Field code -> ``|r|`` used for the priorities (empty: none).
    association_source : str
        How the associations were measured (shown beside the formula).
    targets : list of dict
        :func:`parindex_lib.planning.target` results.
    action_plan : pandas.DataFrame or None
        :func:`parindex_lib.planning.action_plan`.
    correlation : pandas.DataFrame or None
        A table of :func:`parindex_lib.correlation.correlate`.
    node_names_en : dict of str to str
        English node names (for ``lang="en"``).
    generated_at : datetime.datetime
    """

    unit_code: str
    unit_name: str
    year: int
    kind: str | None
    units: int
    framework_id: str
    framework_name_vi: str
    framework_name_en: str
    framework_status: str
    profile: pd.DataFrame
    points_lost: pd.DataFrame
    priorities: pd.DataFrame
    weight: float
    associations: dict[str, float]
    association_source: str
    targets: list[dict[str, Any]]
    action_plan: pd.DataFrame | None = None
    correlation: pd.DataFrame | None = None
    node_names_en: dict[str, str] = field(default_factory=dict)
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    #: Figures already drawn, by language and the tables they show (filled by the writers).
    figure_cache: dict = field(default_factory=dict, compare=False, repr=False)


# -- building the pack -----------------------------------------------------------------------------

def _default_goals(profile: pd.DataFrame, framework: Framework) -> list[dict[str, Any]]:
    total = profile[profile["node_code"] == "total"]
    goals: list[dict[str, Any]] = []
    if total.empty:
        return goals
    top = str(framework.bands[0][0]) if framework.bands else "A"
    if total["group"].iloc[0] != top:
        goals.append({"group": top})
    current = total["rank"].iloc[0]
    if current is not None and not pd.isna(current) and int(current) > 1:
        goals.append({"rank": int(current) - 1})
    return goals


def build_evidence_pack(results: pd.DataFrame, framework: Framework, units: pd.DataFrame, unit_code: str, year: int,
                        *, action_plan: pd.DataFrame | None = None, correlation: pd.DataFrame | None = None,
                        associations: Mapping[str, float] | None = None, association_y: str | Sequence[str] | None = None,
                        association_source: str = "", weight: float = planning.DEFAULT_WEIGHT,
                        goals: Sequence[Mapping[str, Any]] | None = None) -> EvidencePack:
    """An evidence pack from tables already computed.

    Parameters
    ----------
    results : pandas.DataFrame
        :func:`parindex_lib.results.results_table` with every level
        (``level=None``) for ``year``, ranked among the units of the unit's
        kind (``kind=``); rows of other kinds are left out here.
    framework : Framework
        The unit's framework that year.
    units : pandas.DataFrame
        The units table (``code``, ``name``, ``kind``).
    unit_code, year
        The unit and the year.
    action_plan : pandas.DataFrame, optional
        :func:`parindex_lib.planning.action_plan`.
    correlation : pandas.DataFrame, optional
        A correlation study to show (and to read associations from when
        ``associations`` is None: :func:`parindex_lib.planning.association_by_field`
        with ``y=association_y``).
    associations : mapping, optional
        Field code -> ``r``, as :func:`parindex_lib.planning.priority`.
    association_y : str or list of str, optional
        The external variables whose association counts.
    association_source : str
        One line saying where the associations come from.
    weight : float
        The weight of the association in the priority.
    goals : sequence of mapping, optional
        Targets to compute, e.g. ``[{"rank": 3}, {"group": "A"}]``; default:
        the top group when the unit is not in it, and one place up.

    Returns
    -------
    EvidencePack

    Raises
    ------
    ValidationError
        A unit without results that year, and everything the planning
        functions refuse.
    """
    codes = units["code"].astype(str)
    if str(unit_code) not in set(codes):
        raise ValidationError("unknown unit", [{"column": "unit_code", "value": unit_code,
                                                "expected": "a code of the units table"}])
    urow = units[codes == str(unit_code)].iloc[0]
    kind = str(urow["kind"]) if "kind" in units.columns and not pd.isna(urow["kind"]) else None
    res = results[(results["year"] == int(year)).to_numpy(bool)]
    if kind is not None:
        same = set(codes[(units["kind"].astype(str) == kind).to_numpy(bool)])
        res = res[res["unit_code"].astype(str).isin(same).to_numpy(bool)]
    lost = planning.points_lost(res, unit_code, year, level="leaf", framework=framework)
    if associations is None and correlation is not None and len(correlation):
        assoc = planning.association_by_field(correlation, y=association_y)
    else:
        assoc = {str(k): abs(float(v)) for k, v in (associations or {}).items()}
    prio = planning.priority(lost, assoc, weight=weight)
    profile = _profile(res, unit_code, framework)
    targets = [planning.target(res, unit_code, year, framework=framework, **dict(g))
               for g in (goals if goals is not None else _default_goals(profile, framework))]
    n_units = int(((res["node_code"].astype(str) == "total") & res["points"].notna()).sum())
    names_en = {str(c): (str(e) if isinstance(e, str) and e.strip() else str(v))
                for c, v, e in zip(framework.nodes["code"], framework.nodes["name_vi"], framework.nodes["name_en"])}
    names_en["total"] = framework.name_en or framework.name_vi
    return EvidencePack(
        unit_code=str(unit_code), unit_name=str(urow.get("name", unit_code)), year=int(year), kind=kind,
        units=n_units, framework_id=framework.id, framework_name_vi=framework.name_vi,
        framework_name_en=framework.name_en or framework.name_vi, framework_status=framework.status,
        profile=profile, points_lost=lost, priorities=prio, weight=float(weight), associations=dict(assoc),
        association_source=str(association_source or ""), targets=targets,
        action_plan=None if action_plan is None else action_plan.copy(),
        correlation=None if correlation is None else correlation.copy(), node_names_en=names_en)


def _profile(res: pd.DataFrame, unit_code: str, framework: Framework) -> pd.DataFrame:
    rows = res[res["level"].astype(str).isin(["index", "field"]).to_numpy(bool)]
    node = rows["node_code"].astype(str)
    stats = pd.DataFrame({"node": node, "pct": rows["index_pct"].to_numpy("float64", na_value=np.nan)}).groupby(
        "node", sort=False)["pct"].agg(["median", "max"])
    mine = rows[(rows["unit_code"].astype(str) == str(unit_code)).to_numpy(bool)]
    codes = mine["node_code"].astype(str).tolist()
    nv = {"total": framework.name_vi, **dict(zip(framework.nodes["code"].astype(str), framework.nodes["name_vi"]))}
    ne = {"total": framework.name_en or framework.name_vi,
          **{str(c): (e if isinstance(e, str) and e.strip() else v)
             for c, v, e in zip(framework.nodes["code"], framework.nodes["name_vi"], framework.nodes["name_en"])}}
    out = pd.DataFrame({
        "node_code": codes,
        "level": mine["level"].astype(str).tolist(),
        "name_vi": [nv.get(c) for c in codes],
        "name_en": [ne.get(c) for c in codes],
        "points": mine["points"].to_numpy("float64", na_value=np.nan),
        "max_points": mine["max_points"].to_numpy("float64", na_value=np.nan),
        "index_pct": mine["index_pct"].to_numpy("float64", na_value=np.nan),
        "rank": mine["rank"].astype("Int64").to_numpy(object) if "rank" in mine.columns else None,
        "rank_change": mine["rank_change"].astype("Int64").to_numpy(object) if "rank_change" in mine.columns
        else None,
        "group": mine["group"].astype(object).to_numpy(object) if "group" in mine.columns else None,
        "median_index_pct": stats["median"].reindex(codes).to_numpy("float64"),
        "best_index_pct": stats["max"].reindex(codes).to_numpy("float64"),
    })
    out["rank"] = [None if v is None or v is pd.NA else int(v) for v in out["rank"]]
    out["rank_change"] = [None if v is None or v is pd.NA else int(v) for v in out["rank_change"]]
    out["group"] = [v if isinstance(v, str) else None for v in out["group"]]
    order = {"total": -1, **{str(c): i for i, c in enumerate(framework.nodes["code"])}}
    out = out.assign(_o=[order.get(c, 10**9) for c in codes]).sort_values("_o", kind="stable").drop(columns="_o")
    return out.reset_index(drop=True)[PROFILE_COLUMNS]


def collect_evidence(session: Any, unit_code: str, year: int, *, correlation: pd.DataFrame | None = None,
                     associations: Mapping[str, float] | None = None, association_y: str | Sequence[str] | None = None,
                     association_source: str = "", weight: float = planning.DEFAULT_WEIGHT,
                     goals: Sequence[Mapping[str, Any]] | None = None) -> EvidencePack:
    """An evidence pack read from a tenant session.

    Reads the units, the scores of ``year`` and the year before, the unit's
    framework and its action plan; ranks the unit among the units of its
    kind, as ``parindex results --kind`` does. Other parameters as
    :func:`build_evidence_pack`.

    Raises
    ------
    NotFound
        No such unit or assessment in the tenant.
    """
    from .results import results_table

    units = session.units()
    info = session.assessment(unit_code, year)
    fw = session.framework(info["framework_id"])
    kind_of = dict(zip(units["code"].astype(str), units["kind"].astype(str)))
    kind = kind_of.get(str(unit_code))
    scores = session.scores(year=[int(year) - 1, int(year)])
    scores = scores[(scores["framework_id"].astype(str) == fw.id).to_numpy(bool)]
    res = results_table(scores, fw, units, year=int(year), level=None, kind=kind)
    plan = planning.action_plan(session, unit_code, year)
    return build_evidence_pack(res, fw, units, unit_code, year, action_plan=plan, correlation=correlation,
                               associations=associations, association_y=association_y,
                               association_source=association_source, weight=weight, goals=goals)


def _pack(source: Any, unit_code: str | None, year: int | None, options: Mapping[str, Any]) -> EvidencePack:
    if isinstance(source, EvidencePack):
        if (unit_code is not None and str(unit_code) != source.unit_code) or \
                (year is not None and int(year) != source.year):
            raise ValidationError("the evidence pack is for another unit or year", [
                {"column": "unit_code, year", "value": f"{unit_code}, {year}",
                 "expected": f"{source.unit_code}, {source.year} (or None)"}])
        return source
    if unit_code is None or year is None:
        raise ValidationError("an evidence pack needs a unit and a year", [
            {"column": "unit_code, year", "value": f"{unit_code}, {year}", "expected": "both"}])
    if isinstance(source, Mapping):
        need = ["results", "framework", "units"]
        missing = [k for k in need if k not in source]
        if missing:
            raise ValidationError("tables missing for the evidence pack", [
                {"column": k, "value": None, "expected": "results (results_table, every level), framework, units"}
                for k in missing])
        extra = {k: v for k, v in source.items() if k not in need}
        return build_evidence_pack(source["results"], source["framework"], source["units"], unit_code, year,
                                   **{**extra, **options})
    if hasattr(source, "scores") and hasattr(source, "units"):
        return collect_evidence(source, unit_code, year, **options)
    raise ValidationError("an evidence pack is made from a tenant session, tables or a pack", [
        {"value": type(source).__name__, "expected": "a TenantSession, a mapping of tables or an EvidencePack"}])


# -- text helpers ------------------------------------------------------------------------------------

def _esc(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def _num(value: Any, lang: str, decimals: int = 2) -> str:
    if value is None or value is pd.NA:
        return "–"
    return number(value, lang, decimals)


def _name(pack: EvidencePack, code: str, name_vi: Any, lang: str) -> str:
    if lang == "en":
        return pack.node_names_en.get(str(code)) or ("" if name_vi is None else str(name_vi))
    return "" if name_vi is None or (isinstance(name_vi, float) and math.isnan(name_vi)) else str(name_vi)


def _rank_change(value: Any, lang: str) -> str:
    if value is None or value is pd.NA:
        return "–"
    n = int(value)
    if n > 0:
        return t("results.rank_up_1" if n == 1 else "results.rank_up", lang, n=n)
    if n < 0:
        return t("results.rank_down_1" if n == -1 else "results.rank_down", lang, n=-n)
    return t("results.rank_same", lang)


def _goal_text(goal: Mapping[str, Any], lang: str) -> str:
    if goal["goal"] == "rank":
        return t("report.goal_rank", lang, k=goal["rank"])
    return t("report.goal_group", lang, group=goal["group"])


def _target_sentence(goal: Mapping[str, Any], lang: str) -> str:
    name = _goal_text(goal, lang)
    if goal["points_needed"] <= 1e-9:
        return t("report.target_met", lang, goal=name)
    text = t("report.target_need", lang, goal=name, needed=float(goal["points_needed"]),
             target=float(goal["target_points"]), points=float(goal["points"]))
    if not goal["reachable"]:
        text += " " + t("report.target_unreachable", lang)
    elif not goal["met_by_recoverable"]:
        text += " " + t("report.target_beyond_best", lang, recoverable=float(goal["recoverable_total"]))
    return text


# -- figures -------------------------------------------------------------------------------------------

def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _short(text: str, n: int = 42) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def profile_figure(pack: EvidencePack, lang: str = "vi") -> Figure | None:
    """Index (%) of each field: the unit, the median and the best unit of its kind."""
    fields = pack.profile[pack.profile["level"] == "field"]
    if fields.empty:
        return None
    labels = [_short(f"{c}. {_name(pack, c, n, lang)}", 34) for c, n in zip(fields["node_code"], fields["name_vi"])]
    pos = np.arange(len(fields))
    fig = _figure(9.5, 4.2)
    ax = fig.subplots()
    w = 0.27
    ax.bar(pos - w, fields["index_pct"], w, label=t("report.series_unit", lang), color="#0b4f8a")
    ax.bar(pos, fields["median_index_pct"], w, label=t("report.series_median", lang), color="#9e9e9e")
    ax.bar(pos + w, fields["best_index_pct"], w, label=t("report.series_best", lang), color="#2e7d32")
    ax.set_xticks(pos, labels, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel(t("report.col_index_pct", lang))
    low = np.nanmin(fields[["index_pct", "median_index_pct", "best_index_pct"]].to_numpy("float64"))
    ax.set_ylim(max(0.0, math.floor((low - 10) / 10) * 10) if np.isfinite(low) else 0.0, 102)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(t("report.profile_title", lang), fontsize=10)
    return fig


def priority_figure(pack: EvidencePack, lang: str = "vi", top: int = 15) -> Figure | None:
    """The nodes of highest priority: recoverable points and priority."""
    pr = pack.priorities[pack.priorities["priority"] > 0].head(top)
    if pr.empty:
        return None
    pr = pr.iloc[::-1]
    labels = [_short(f"{c} {_name(pack, c, n, lang)}", 40) for c, n in zip(pr["node_code"], pr["name_vi"])]
    pos = np.arange(len(pr))
    fig = _figure(8.5, 1.2 + 0.32 * len(pr))
    ax = fig.subplots()
    ax.barh(pos + 0.2, pr["priority"], 0.4, label=t("report.col_priority", lang), color="#b35806")
    ax.barh(pos - 0.2, pr["recoverable"], 0.4, label=t("report.col_recoverable", lang), color="#0b4f8a")
    ax.set_yticks(pos, labels, fontsize=7)
    ax.set_xlabel(t("common.points", lang))
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(t("report.priority_title", lang), fontsize=10)
    return fig


def correlation_figure(pack: EvidencePack, lang: str = "vi") -> Figure | None:
    """The correlation heatmap of the study shown, when it has coefficients."""
    corr = pack.correlation
    if corr is None or corr.empty or not np.isfinite(corr["r"].to_numpy("float64", na_value=np.nan)).any():
        return None
    from .figures import correlation_heatmap

    method = str(corr["method"].iloc[0])
    part = corr[corr["method"] == method]
    keep_x = part.groupby("x")["r"].apply(lambda s: np.isfinite(s.to_numpy("float64", na_value=np.nan)).any())
    part = part[part["x"].isin(keep_x[keep_x].index)]
    return correlation_heatmap(part, title=t("report.correlation_title", lang, method=method))


def _figures(pack: EvidencePack, lang: str) -> list[tuple[str, str, bytes]]:
    """(key, caption, png) of every figure the pack has, drawn once per language and tables."""
    cache_key = (lang, id(pack.profile), id(pack.priorities), id(pack.correlation))
    if cache_key not in pack.figure_cache:
        out = []
        for key, fn in (("profile", profile_figure), ("priority", priority_figure),
                        ("correlation", correlation_figure)):
            fig = fn(pack, lang)
            if fig is not None:
                out.append((key, t(f"report.figure_{key}", lang), _png(fig)))
        pack.figure_cache.clear()
        pack.figure_cache[cache_key] = out
    return pack.figure_cache[cache_key]


# -- tables for people --------------------------------------------------------------------------------------

def _tables(pack: EvidencePack, lang: str) -> dict[str, pd.DataFrame]:
    """The pack's tables with translated headings, in the order shown (values unrounded)."""
    col = lambda k: t(f"report.col_{k}", lang)  # noqa: E731
    prof = pack.profile
    out: dict[str, pd.DataFrame] = {}
    out["results"] = pd.DataFrame({
        col("node"): prof["node_code"], col("name"): [_name(pack, c, n, lang) for c, n in
                                                        zip(prof["node_code"], prof["name_vi"])],
        col("points"): prof["points"], col("max_points"): prof["max_points"], col("index_pct"): prof["index_pct"],
        col("rank"): prof["rank"], col("rank_change"): [_rank_change(v, lang) for v in prof["rank_change"]],
        col("group"): prof["group"], col("median_index_pct"): prof["median_index_pct"],
        col("best_index_pct"): prof["best_index_pct"]})
    lost = pack.points_lost
    out["points_lost"] = pd.DataFrame({
        col("node"): lost["node_code"], col("name"): [_name(pack, c, n, lang) for c, n in
                                                        zip(lost["node_code"], lost["name_vi"])],
        col("max_points"): lost["max_points"], col("points"): lost["points"], col("points_lost"): lost["points_lost"],
        col("median_points"): lost["median_points"], col("best_points"): lost["best_points"],
        col("gap_to_median"): lost["gap_to_median"], col("gap_to_best"): lost["gap_to_best"]})
    pr = pack.priorities
    out["priorities"] = pd.DataFrame({
        col("node"): pr["node_code"], col("name"): [_name(pack, c, n, lang) for c, n in
                                                      zip(pr["node_code"], pr["name_vi"])],
        col("points_lost"): pr["points_lost"], col("recoverable"): pr["recoverable"],
        col("association"): pr["association"], col("priority"): pr["priority"]})
    rows = []
    for g in pack.targets:
        for rec in g["nodes"].itertuples(index=False):
            rows.append({col("goal"): _goal_text(g, lang), col("points_needed"): g["points_needed"],
                         col("node"): rec.node_code, col("name"): _name(pack, rec.node_code, rec.name_vi, lang),
                         col("points"): rec.points, col("best_points"): rec.best_points,
                         col("recoverable"): rec.recoverable, col("cumulative"): rec.cumulative})
        if g["nodes"].empty:
            rows.append({col("goal"): _goal_text(g, lang), col("points_needed"): g["points_needed"]})
    out["targets"] = pd.DataFrame(rows, columns=[col(k) for k in ("goal", "points_needed", "node", "name", "points",
                                                                  "best_points", "recoverable", "cumulative")])
    plan = pack.action_plan if pack.action_plan is not None else pd.DataFrame(columns=planning.ACTION_PLAN_COLUMNS)
    names = dict(zip(pack.points_lost["node_code"], pack.points_lost["name_vi"]))
    out["action_plan"] = pd.DataFrame({
        col("node"): plan["node_code"].astype(object),
        col("name"): [_name(pack, c, names.get(c), lang) for c in plan["node_code"]],
        col("gap"): pd.to_numeric(plan["gap"]).astype("float64"), col("action"): plan["action"].astype(object),
        col("owner"): plan["owner"].astype(object),
        col("deadline"): [None if d is None or (isinstance(d, float) and math.isnan(d)) else str(d)
                          for d in plan["deadline"]],
        col("status"): [t(f"report.status_{s}", lang) for s in plan["status"]]})
    if pack.correlation is not None:
        c = pack.correlation
        keep = [k for k in ("x", "y", "year", "method", "n", "r", "ci_low", "ci_high", "p", "p_adj", "n_missing_x",
                            "n_missing_y", "note") if k in c.columns]
        table = c[keep].copy()
        table["year"] = table["year"].astype(object).map(lambda v: "" if v is None else str(v))
        table.columns = [col(f"corr_{k}") for k in keep]
        out["correlation"] = table
    return out


def _sipas_involved(corr: pd.DataFrame | None) -> bool:
    if corr is None or corr.empty:
        return False
    labels = pd.concat([corr["x"].astype(str), corr["y"].astype(str)])
    return labels.str.startswith("SIPAS:").any() and labels.str.startswith("PAR:").any()


# -- HTML --------------------------------------------------------------------------------------------

_CSS = """
body { font-family: "Noto Sans", "DejaVu Sans", Arial, sans-serif; color: #1a1a1a; margin: 24px; font-size: 13px; }
h1 { color: #0b4f8a; font-size: 22px; margin: 0 0 4px; }
h2 { color: #0b4f8a; font-size: 17px; border-bottom: 2px solid #0b4f8a; padding-bottom: 2px; margin-top: 26px; }
h3 { font-size: 14px; margin: 14px 0 4px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 12px; }
th, td { border: 1px solid #c4c4c4; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eef2f7; }
td.num { text-align: right; white-space: nowrap; }
.meta { color: #3d3d3d; }
.demo { background: #fff4ce; color: #5c4300; border: 1px solid #c9a227; padding: 2px 8px; display: inline-block; }
.formula { background: #f3f6fa; border-left: 4px solid #0b4f8a; padding: 6px 10px; font-family: monospace; }
.caveat { background: #fff4ce; border-left: 4px solid #c9a227; padding: 6px 10px; margin: 6px 0; }
figure { margin: 8px 0 14px; } figure img { max-width: 100%; } figcaption { color: #3d3d3d; font-size: 12px; }
.group-A { background: #c8e6c9; } .group-B { background: #cfe3fb; } .group-C { background: #fff0b3; }
@media print { h2 { page-break-after: avoid; } table, figure { page-break-inside: avoid; } }
"""


def _html_table(df: pd.DataFrame, lang: str, *, max_rows: int | None = None, css: str = "") -> str:
    if df.empty:
        return f"<p class=\"meta\">{_esc(t('report.none', lang))}</p>"
    shown = df if max_rows is None else df.head(max_rows)
    head = "".join(f'<th scope="col">{_esc(c)}</th>' for c in shown.columns)
    body = []
    for rec in shown.itertuples(index=False):
        cells = []
        for v in rec:
            if isinstance(v, (float, np.floating)) or (isinstance(v, (int, np.integer)) and not isinstance(v, bool)):
                cells.append(f'<td class="num">{_esc(_num(v, lang, 3))}</td>')
            else:
                cells.append(f"<td>{_esc(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if max_rows is not None and len(df) > max_rows:
        more = f"<p class=\"meta\">{_esc(t('report.more_rows', lang, n=len(df) - max_rows))}</p>"
    return f'<table class="{_esc(css)}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{more}'


def evidence_pack_html(source: Any, unit_code: str | None = None, year: int | None = None, *, lang: str = "vi",
                       **options: Any) -> str:
    """The evidence pack as one self-contained HTML page.

    Parameters
    ----------
    source
        A :class:`~parindex_lib.store.TenantSession` (read with
        :func:`collect_evidence`), a mapping of tables (``results``,
        ``framework``, ``units``, and any keyword of
        :func:`build_evidence_pack`) or an :class:`EvidencePack`.
    unit_code, year
        The unit and year (may be None with a pack).
    lang
        ``"vi"`` (default) or ``"en"``.
    **options
        Passed to :func:`collect_evidence` / :func:`build_evidence_pack`
        (``correlation``, ``association_y``, ``weight``, ``goals``...).

    Returns
    -------
    str
        An HTML document (UTF-8): figures as base64 PNG, styles inline, no
        script and no address to fetch. Every name, action and note is
        escaped.
    """
    lang = normalise_lang(lang)
    pack = _pack(source, unit_code, year, options)
    tables = _tables(pack, lang)
    figs = {key: (caption, png) for key, caption, png in _figures(pack, lang)}

    def figure(key: str) -> str:
        if key not in figs:
            return ""
        caption, png = figs[key]
        data = base64.b64encode(png).decode("ascii")
        return (f'<figure class="fig-{key}"><img alt="{_esc(caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{_esc(caption)}</figcaption></figure>")

    total = pack.profile[pack.profile["node_code"] == "total"]
    fw_name = pack.framework_name_en if lang == "en" else pack.framework_name_vi
    kind = t(f"kinds.{pack.kind}", lang) if pack.kind else "–"
    parts = [f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_esc(t('report.title', lang))} — {_esc(pack.unit_code)} {pack.year}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{_esc(t('report.title', lang))}</h1>",
             f'<p class="unit"><strong>{_esc(pack.unit_name)}</strong> ({_esc(pack.unit_code)}) · '
             f"{_esc(t('report.year', lang, year=pack.year))}</p>",
             f'<p class="meta">{_esc(t("report.framework", lang, name=fw_name, id=pack.framework_id))} · '
             f'{_esc(t("report.compared_with", lang, n=pack.units, kind=kind))} · '
             f'{_esc(t("report.generated", lang, date=pack.generated_at.date().isoformat()))}</p>']
    if pack.framework_status == "demo":
        parts.append(f'<p class="demo">{_esc(t("report.demo", lang))}</p>')

    parts.append(f"<h2>{_esc(t('report.section_results', lang))}</h2>")
    if not total.empty:
        r = total.iloc[0]
        rank = "–" if r["rank"] is None else str(r["rank"])
        parts.append("<p>" + _esc(t("report.summary", lang, points=float(r["points"]), max=float(r["max_points"]),
                                     index=float(r["index_pct"]), rank=rank, n=pack.units,
                                     group=r["group"] or "–", change=_rank_change(r["rank_change"], lang)))
                     + "</p>")
    parts.append(_html_table(tables["results"], lang, css="results"))
    parts.append(figure("profile"))

    parts.append(f"<h2>{_esc(t('report.section_points_lost', lang))}</h2>")
    parts.append(f"<p>{_esc(t('report.points_lost_intro', lang))}</p>")
    parts.append(_html_table(tables["points_lost"], lang, max_rows=_SHOWN_ROWS, css="points-lost"))

    parts.append(f"<h2>{_esc(t('report.section_priorities', lang))}</h2>")
    parts.append(f'<p class="formula">{_esc(t("report.formula", lang))}</p>')
    parts.append(f"<p>{_esc(t('report.weight', lang, weight=pack.weight))} ")
    if pack.associations:
        shown = ", ".join(f"{k}: {_num(v, lang, 2)}" for k, v in sorted(pack.associations.items()))
        parts.append(_esc(t("report.associations", lang, values=shown, source=pack.association_source or "–")))
    else:
        parts.append(_esc(t("report.no_associations", lang)))
    parts.append("</p>")
    parts.append(f'<p class="caveat">{_esc(t("report.association_caveat", lang))}</p>')
    parts.append(_html_table(tables["priorities"], lang, max_rows=_SHOWN_ROWS, css="priorities"))
    parts.append(figure("priority"))

    parts.append(f"<h2>{_esc(t('report.section_targets', lang))}</h2>")
    if not pack.targets:
        parts.append(f"<p>{_esc(t('report.no_targets', lang))}</p>")
    for g in pack.targets:
        parts.append(f"<h3>{_esc(_goal_text(g, lang))}</h3><p>{_esc(_target_sentence(g, lang))}</p>")
        sub = tables["targets"][tables["targets"][t("report.col_goal", lang)] == _goal_text(g, lang)]
        sub = sub.dropna(subset=[t("report.col_node", lang)])
        if len(sub):
            parts.append(_html_table(sub.drop(columns=[t("report.col_goal", lang), t("report.col_points_needed", lang)]),
                                     lang, css="target-nodes"))

    parts.append(f"<h2>{_esc(t('report.section_action_plan', lang))}</h2>")
    parts.append(_html_table(tables["action_plan"], lang, css="action-plan"))

    if pack.correlation is not None:
        parts.append(f"<h2>{_esc(t('report.section_correlation', lang))}</h2>")
        if _sipas_involved(pack.correlation):
            parts.append(f'<p class="caveat sipas">{_esc(t("report.sipas_caveat", lang))}</p>')
        parts.append(f'<p class="caveat">{_esc(t("report.correlation_caveat", lang))}</p>')
        corr = tables["correlation"]
        r_col = t("report.col_corr_r", lang)
        finite = corr[pd.to_numeric(corr[r_col], errors="coerce").notna()]
        if len(finite) < len(corr):
            parts.append(f'<p class="meta">{_esc(t("report.correlation_missing", lang, n=len(corr) - len(finite)))}</p>')
        parts.append(_html_table(finite, lang, max_rows=_CORR_SHOWN, css="correlation"))
        parts.append(figure("correlation"))
        parts.append(f'<p class="meta">{_esc(t("report.sources", lang))}</p>')
    parts.append(f'<p class="meta">{_esc(t("report.footer", lang))}</p></body></html>')
    return "\n".join(p for p in parts if p)


# -- xlsx -------------------------------------------------------------------------------------------------

def _cell(v: Any) -> Any:
    return xlsx_cell(v, limit=XLSX_TEXT_LIMIT)


def evidence_pack_xlsx(source: Any, unit_code: str | None = None, year: int | None = None,
                       path: str | os.PathLike | IO[bytes] | None = None, *, lang: str = "vi",
                       **options: Any) -> bytes | None:
    """The evidence pack as an Excel workbook: one sheet per table, and the figures.

    Parameters
    ----------
    source, unit_code, year, lang, **options
        As :func:`evidence_pack_html`.
    path
        A file path or a binary stream; None returns the bytes.

    Returns
    -------
    bytes or None
        The workbook when ``path`` is None.

    Notes
    -----
    Sheets: a summary (the unit, the framework, the priority formula, the
    targets in words), then results, points lost, priorities, targets,
    action plan, the correlation study when given, and the figures
    (``insert_image``). Text cells are protected against formula injection;
    numbers stay numbers (unrounded), blanks stay blank.
    """
    import xlsxwriter

    lang = normalise_lang(lang)
    pack = _pack(source, unit_code, year, options)
    tables = _tables(pack, lang)
    buf = io.BytesIO() if path is None else None
    target = buf if buf is not None else (str(path) if isinstance(path, (str, os.PathLike)) else path)
    wb = xlsxwriter.Workbook(target, {"strings_to_formulas": False, "strings_to_numbers": False,
                                      "strings_to_urls": False, "nan_inf_to_errors": False,
                                      **({"in_memory": True} if not isinstance(target, str) else {})})
    try:
        bold = wb.add_format({"bold": True})
        head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
        wrap = wb.add_format({"text_wrap": True, "valign": "top"})
        ws = wb.add_worksheet(t("report.sheet_summary", lang)[:31])
        fw_name = pack.framework_name_en if lang == "en" else pack.framework_name_vi
        lines = [(t("report.title", lang), None),
                 (t("report.col_unit", lang), f"{pack.unit_code} {pack.unit_name}"),
                 (t("common.year", lang), pack.year),
                 (t("report.col_framework", lang), f"{pack.framework_id} {fw_name}"),
                 (t("report.col_units", lang), pack.units),
                 (t("report.col_formula", lang), t("report.formula", lang)),
                 (t("report.col_weight", lang), pack.weight),
                 (t("report.col_association_source", lang), pack.association_source or "–")]
        lines += [(_goal_text(g, lang), _target_sentence(g, lang)) for g in pack.targets]
        if pack.framework_status == "demo":
            lines.append((t("report.demo", lang), None))
        if _sipas_involved(pack.correlation):
            lines.append((t("report.sipas_caveat", lang), None))
        ws.set_column(0, 0, 34)
        ws.set_column(1, 1, 100, wrap)
        for i, (k, v) in enumerate(lines):
            ws.write_string(i, 0, _cell(k), bold)
            v = _cell(v)
            if isinstance(v, str):
                ws.write_string(i, 1, v)
            elif v is not None:
                ws.write_number(i, 1, v)
        for key in ("results", "points_lost", "priorities", "targets", "action_plan", "correlation"):
            if key not in tables:
                continue
            df = tables[key]
            sh = wb.add_worksheet(t(f"report.sheet_{key}", lang)[:31])
            for j, c in enumerate(df.columns):
                sh.write_string(0, j, _cell(c), head)
                width = 46 if df[c].dtype == object and df[c].astype(str).str.len().max() > 30 else 14
                sh.set_column(j, j, width, wrap if width > 14 else None)
            sh.freeze_panes(1, 0)
            for i, rec in enumerate(df.itertuples(index=False), start=1):
                for j, v in enumerate(rec):
                    write_xlsx_value(sh, i, j, _cell(v))
        figs = _figures(pack, lang)
        if figs:
            sh = wb.add_worksheet(t("report.sheet_figures", lang)[:31])
            row = 0
            for key, caption, png in figs:
                sh.write_string(row, 0, _cell(caption), bold)
                sh.insert_image(row + 1, 0, f"{key}.png", {"image_data": io.BytesIO(png), "x_scale": 0.8,
                                                         "y_scale": 0.8, "object_position": 3})
                height = int.from_bytes(png[20:24], "big") * 0.8  # from the PNG header (IHDR)
                row += 3 + int(height / 20)
    finally:
        wb.close()
    return buf.getvalue() if buf is not None else None


# -- PDF -------------------------------------------------------------------------------------------------------

_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def pdf_available() -> str | None:
    """The Chromium (or Chrome) executable that prints PDFs, or None.

    ``PARINDEX_CHROMIUM`` names it explicitly; otherwise the usual names are
    looked up on ``PATH``.
    """
    given = os.environ.get("PARINDEX_CHROMIUM")
    if given:
        return given if os.path.isfile(given) and os.access(given, os.X_OK) else None
    for name in _CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def evidence_pack_pdf(source: Any, unit_code: str | None = None, year: int | None = None,
                      path: str | os.PathLike | None = None, *, lang: str = "vi", timeout: float = 120.0,
                      **options: Any) -> bytes | None:
    """The evidence pack's HTML printed to PDF by a headless Chromium.

    Parameters
    ----------
    source, unit_code, year, lang, **options
        As :func:`evidence_pack_html`; ``source`` may also be the HTML text
        itself.
    path
        Where to write the PDF; None returns the bytes.
    timeout
        Seconds Chromium may take.

    Raises
    ------
    ParindexError
        When no Chromium is installed (install Debian's ``chromium`` or set
        ``PARINDEX_CHROMIUM``; the HTML and xlsx packs need nothing), or
        when it fails.
    """
    exe = pdf_available()
    if exe is None:
        raise ParindexError("a PDF needs a Chromium browser, which is not installed here: install Debian's "
                            "chromium (apt-get install chromium) or set PARINDEX_CHROMIUM to a Chrome executable; "
                            "the HTML and xlsx evidence packs need nothing more")
    page = source if isinstance(source, str) else evidence_pack_html(source, unit_code, year, lang=lang, **options)
    with tempfile.TemporaryDirectory(prefix="parindex-pdf-") as tmp:
        src = Path(tmp) / "pack.html"
        out = Path(tmp) / "pack.pdf"
        src.write_text(page, encoding="utf-8")
        args = [exe, "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-extensions", "--no-pdf-header-footer",
                f"--user-data-dir={Path(tmp) / 'profile'}", f"--print-to-pdf={out}", src.as_uri()]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        try:
            proc = subprocess.run(args, capture_output=True, timeout=timeout, check=False,
                                  env={**os.environ, "HOME": tmp})
        except subprocess.TimeoutExpired:
            raise ParindexError(f"Chromium did not print the PDF within {timeout:g} s") from None
        if not out.is_file() or out.stat().st_size == 0:
            tail = proc.stderr.decode("utf-8", "replace")[-600:]
            raise ParindexError(f"Chromium could not print the PDF (exit {proc.returncode}): {tail}")
        data = out.read_bytes()
    if path is None:
        return data
    Path(path).write_bytes(data)
    return None
