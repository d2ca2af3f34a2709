"""The results app: rankings, field heatmap, distribution, unit profile, deductions.

Pick the year, the level (overall index, field, criterion, subcriterion),
the unit kind and the region. The ranking table shows each unit's points,
index (%), rank among units of its kind (as ``parindex results --kind``),
the change since the year before ("tăng 3 bậc") and its group in colour.
Figures are drawn with seaborn on a plain matplotlib ``Figure`` (no global
pyplot state) and can be downloaded as PNG or SVG; the table as xlsx.
"""

from __future__ import annotations

import io
import math
from typing import Any

import ipywidgets as W
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from parindex_lib.exporting import write_table  # noqa: E402
from parindex_lib.framework import Framework  # noqa: E402
from parindex_lib.ranking import deductions  # noqa: E402
from parindex_lib.results import RESULTS_TABLE_COLUMNS, ResultsCache, session_results  # noqa: E402

from .base import XLSX, App, download_link, esc, html_table  # noqa: E402

__all__ = ["ResultsApp", "ResultsModel", "rank_change_text"]

_DESC = {"description_width": "initial"}


def rank_change_text(change: Any, tr) -> tuple[str, str]:
    """The rank change as words ("tăng 3 bậc") and its CSS class."""
    if change is None or change is pd.NA or (isinstance(change, float) and math.isnan(change)):
        return "–", ""
    n = int(change)
    if n > 0:
        return tr("results.rank_up_1" if n == 1 else "results.rank_up", n=n), "pi-up"
    if n < 0:
        return tr("results.rank_down_1" if n == -1 else "results.rank_down", n=-n), "pi-down"
    return tr("results.rank_same"), ""


class ResultsModel:
    """The results of one tenant, as the library's :class:`~parindex_lib.results.ResultsCache` keeps them.

    Every read asks the cache, which recomputes when the tenant's data
    changed: a colleague's save or an appraisal shows at the next refresh.

    Parameters
    ----------
    session_factory
        A callable returning a context-managed tenant session.
    """

    def __init__(self, session_factory: Any):
        self._session = session_factory
        self.cache = ResultsCache()
        with self._session() as s:
            self.units = self.cache.units(s)
            self.assessments = self.cache.assessments(s)
        self.years = sorted(self.assessments["year"].astype(int).unique().tolist(), reverse=True)
        self.kinds = [k for k in ("ministry", "province", "department", "district", "commune")
                      if k in set(self.units["kind"])]

    def results(self, year: int, kind: str | None) -> pd.DataFrame:
        """Every level's results for ``year`` among units of ``kind`` (ranks as the command line gives them)."""
        with self._session() as s:
            res = self.cache.results(s, year=int(year), level=None, kind=kind)
            self.units = self.cache.units(s)
            self.assessments = self.cache.assessments(s)
        return res

    def framework_of(self, res: pd.DataFrame) -> Framework | None:
        """The framework of the shown results (the first one when several)."""
        if res.empty:
            return None
        a = self.assessments
        shown = a[(a["year"] == int(res["year"].iloc[0])).to_numpy(bool)
                  & a["unit_code"].astype(str).isin(set(res["unit_code"].astype(str))).to_numpy(bool)]
        if shown.empty:
            return None
        with self._session() as s:
            return self.cache.framework(s, str(shown["framework_id"].iloc[0]))

    def regions(self, kind: str | None) -> list[str]:
        units = self.units if kind is None else self.units[self.units["kind"] == kind]
        return sorted(str(r) for r in units["region"].dropna().unique() if str(r).strip())

    def view(self, year: int, kind: str | None, level: str, node: str | None, region: str | None) -> pd.DataFrame:
        """The rows of one node for the chosen units, in rank order (columns of ``parindex results``)."""
        res = self.results(year, kind)
        code = "total" if level == "index" else node
        rows = res[(res["node_code"].astype(str) == str(code)).to_numpy(bool)]
        if region:
            keep = set(self.units.loc[self.units["region"] == region, "code"].astype(str))
            rows = rows[rows["unit_code"].astype(str).isin(keep).to_numpy(bool)]
        return rows.reset_index(drop=True)[RESULTS_TABLE_COLUMNS]


class ResultsApp(App):
    """Results and rankings of the tenant's units."""

    title_key = "results.title"
    app_class = "pi-results"
    TABS = ("ranking", "heatmap", "distribution", "profile", "deductions")

    @classmethod
    def warm_up(cls, session: Any) -> None:
        years = session.assessments()["year"]
        if len(years):
            session_results(session, year=int(years.max()), level=None)
        fig = Figure(figsize=(2, 2))
        sns.heatmap(pd.DataFrame([[1.0]]), ax=fig.subplots())
        fig.savefig(io.BytesIO(), format="png")

    def build(self) -> None:
        self.model = ResultsModel(self.session)
        self._figures: dict[str, Figure | None] = {}
        self._year = W.Dropdown(options=[(str(y), y) for y in self.model.years], style=_DESC,
                                layout=W.Layout(width="140px"))
        self._year.add_class("pi-year")
        self._level = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="260px"))
        self._level.add_class("pi-level")
        self._node = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="420px", display="none"))
        self._node.add_class("pi-node")
        self._kind = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="240px"))
        self._kind.add_class("pi-kind")
        self._region = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="240px"))
        self._region.add_class("pi-region")
        self._note = W.HTML()
        self._note.add_class("pi-note")
        self._table = W.HTML()
        self._table.add_class("pi-ranking")
        self._heatmap = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self._heatmap.add_class("pi-heatmap")
        self._distribution = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self._distribution.add_class("pi-distribution")
        self._profile_unit = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="460px"))
        self._profile_unit.add_class("pi-profile-unit")
        self._profile = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self._profile.add_class("pi-profile")
        self._deduction_scope = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="460px"))
        self._deduction_scope.add_class("pi-deduction-scope")
        self._deductions = W.HTML()
        self._deductions.add_class("pi-deductions")
        self._exports = W.HTML()
        self._exports.add_class("pi-exports")
        self._tabs = W.Tab(children=[
            W.VBox([self._note, self._table]),
            W.VBox([self._heatmap]),
            W.VBox([self._distribution]),
            W.VBox([self._profile_unit, self._profile]),
            W.VBox([self._deduction_scope, self._deductions]),
        ])
        self._tabs.add_class("pi-tabs")
        filters = W.HBox([self._year, self._level, self._node, self._kind, self._region],
                         layout=W.Layout(flex_flow="row wrap", align_items="center"))
        filters.add_class("pi-filters")
        self._body.children = [filters, self._tabs, self._exports]

        if self.model.years:
            wanted = self.env.param("year")
            self._year.value = int(wanted) if wanted and wanted.isdigit() and int(wanted) in self.model.years \
                else self.model.years[0]
        self._set_kind_options()
        kind = self.env.param("kind")
        if kind in self.model.kinds:
            self._kind.value = kind
        self._set_level_options()
        self._set_region_options()
        for w in (self._year, self._level, self._node, self._kind, self._region, self._profile_unit,
                  self._deduction_scope):
            self.on_change(w, self._on_filter)
        self.on_change(self._tabs, self._on_filter, names="selected_index")

    # -- options -----------------------------------------------------------------
    def _set_kind_options(self) -> None:
        current = self._kind.value
        self._kind.options = [(self.tr(f"kinds.{k}"), k) for k in self.model.kinds]
        if current in self.model.kinds:
            self._kind.value = current
        elif self.model.kinds:
            self._kind.value = self.model.kinds[0]

    def _set_level_options(self) -> None:
        current = self._level.value or "index"
        self._level.options = [(self.tr(f"levels.{lv}"), lv) for lv in ("index", "field", "criterion", "subcriterion")]
        self._level.value = current

    def _set_region_options(self) -> None:
        current = self._region.value
        regions = self.model.regions(self._kind.value)
        # "" rather than None: ipywidgets shows a None value as an empty choice
        self._region.options = [(self.tr("common.all"), "")] + [(r, r) for r in regions]
        self._region.value = current if current in regions else ""

    def _set_node_options(self, fw: Framework | None) -> None:
        level = self._level.value
        if level == "index" or fw is None:
            self._node.layout.display = "none"
            return
        nodes = fw.nodes[fw.nodes["level"] == level]
        en = self.lang == "en"
        options = [(f"{c} {(ne or nv) if en else nv}"[:90], str(c))
                   for c, nv, ne in zip(nodes["code"], nodes["name_vi"], nodes["name_en"])]
        current = self._node.value
        self._node.options = options
        self._node.value = current if current in [v for _, v in options] else (options[0][1] if options else None)
        self._node.layout.display = None

    # -- events -----------------------------------------------------------------------
    def _on_filter(self, change: dict) -> None:
        owner = change.get("owner")
        if owner is self._kind:
            with self.syncing():
                self._set_region_options()
        self.clear_message()

    def translate(self) -> None:
        self._year.description = self.tr("common.year")
        self._level.description = self.tr("common.level")
        self._node.description = self.tr("results.col_node")
        self._kind.description = self.tr("common.kind")
        self._region.description = self.tr("common.region")
        self._profile_unit.description = self.tr("results.profile_unit")
        self._deduction_scope.description = self.tr("results.deductions_scope")
        self._tabs.titles = tuple(self.tr(f"results.tab_{t}") for t in self.TABS)
        self._set_kind_options()
        self._set_level_options()
        self._set_region_options()

    # -- rendering ----------------------------------------------------------------------
    def refresh(self) -> None:
        year, kind = self._year.value, self._kind.value
        if year is None:
            self._note.value = f"<p>{esc(self.tr('results.no_results'))}</p>"
            return
        res = self.model.results(year, kind)
        fw = self.model.framework_of(res)
        with self.syncing():
            self._set_node_options(fw)
        view = self.model.view(year, kind, self._level.value, self._node.value, self._region.value or None)
        self._view = view
        self._render_table(view, kind)
        with self.syncing():
            self._set_unit_options(view)
        tab = self.TABS[self._tabs.selected_index or 0]
        figure = None
        if tab == "heatmap":
            figure = self._render_heatmap(res, fw)
        elif tab == "distribution":
            figure = self._render_distribution(res)
        elif tab == "profile":
            figure = self._render_profile(res, fw)
        elif tab == "deductions":
            self._render_deductions(res, fw)
        self._render_exports(view, tab, figure)

    def _set_unit_options(self, view: pd.DataFrame) -> None:
        options = [(f"{c} — {n}", str(c)) for c, n in zip(view["unit_code"].astype(str), view["unit_name"])]
        for dd, extra in ((self._profile_unit, []), (self._deduction_scope, [(self.tr("results.deductions_all"), "")])):
            current = dd.value
            dd.options = extra + options
            values = [v for _, v in dd.options]
            dd.value = current if current in values else (values[0] if values else None)

    def _render_table(self, view: pd.DataFrame, kind: str | None) -> None:
        if view.empty:
            self._note.value = f"<p>{esc(self.tr('results.no_results'))}</p>"
            self._table.value = ""
            return
        note = self.tr("results.count", n=len(view))
        if kind:
            note += ". " + self.tr("results.ranked_among", kind=self.tr(f"kinds.{kind}"))
        self._note.value = f"<p>{esc(note)}</p>"
        shown = pd.DataFrame({
            "rank": view["rank"].astype("object"),
            "unit_code": view["unit_code"].astype(str),
            "unit_name": view["unit_name"].astype(object),
            "points": view["points"].astype(float),
            "max_points": view["max_points"].astype(float),
            "index_pct": view["index_pct"].astype(float),
            "rank_change": view["rank_change"].astype("object"),
            "group": view["group"].astype(object),
            "coverage": view["coverage"].astype(float) * 100,
        })
        heads = [self.tr(f"results.col_{c}") for c in
                 ("rank", "unit_code", "unit_name", "points", "max_points", "index_pct", "change", "group", "coverage")]

        def rank_text(v: Any) -> str:
            return "–" if v is None or v is pd.NA else str(int(v))

        def group_class(v: Any) -> str:
            return f"pi-group-{v}" if isinstance(v, str) and v.isalnum() and len(v) <= 3 else "pi-group-none"

        def change_class(v: Any) -> str:
            return rank_change_text(v, self.tr)[1]

        self._table.value = html_table(
            shown, headers=heads, css_class="pi-table pi-ranking-table", lang=self.lang,
            formatters={"rank": rank_text, "rank_change": lambda v: rank_change_text(v, self.tr)[0],
                        "group": lambda v: "–" if not isinstance(v, str) else v,
                        "coverage": lambda v: self.num(v, 0)},
            cell_class={"group": group_class, "rank_change": change_class, "unit_code": lambda v: "pi-unit-code",
                        "rank": lambda v: "pi-rank"})

    # -- figures ---------------------------------------------------------------------------
    def _png(self, fig: Figure) -> bytes:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
        return buf.getvalue()

    def _units_shown(self, res: pd.DataFrame) -> pd.DataFrame:
        region = self._region.value
        if region:
            keep = set(self.model.units.loc[self.model.units["region"] == region, "code"].astype(str))
            res = res[res["unit_code"].astype(str).isin(keep).to_numpy(bool)]
        return res

    def _field_names(self, fw: Framework | None) -> dict[str, str]:
        if fw is None:
            return {}
        en = self.lang == "en"
        return {str(c): f"{c}. {((ne or nv) if en else nv)}"[:38]
                for c, nv, ne in zip(fw.fields["code"], fw.fields["name_vi"], fw.fields["name_en"])}

    def _render_heatmap(self, res: pd.DataFrame, fw: Framework | None) -> Figure | None:
        res = self._units_shown(res)
        fields = res[(res["level"] == "field").to_numpy(bool)]
        if fields.empty:
            self._heatmap.value = b""
            return None
        names = self._field_names(fw)
        order = res[(res["node_code"] == "total").to_numpy(bool)].sort_values("rank")["unit_code"].astype(str).tolist()
        grid = fields.assign(unit=fields["unit_code"].astype(str), node=fields["node_code"].astype(str)).pivot_table(
            index="unit", columns="node", values="index_pct", aggfunc="first", observed=True)
        grid = grid.reindex(index=[u for u in order if u in grid.index])
        grid.columns = [names.get(c, c) for c in grid.columns]
        fig = Figure(figsize=(12, max(3.0, 0.28 * len(grid) + 2)))
        ax = fig.subplots()
        sns.heatmap(grid, ax=ax, cmap="RdYlGn", vmin=50, vmax=100, annot=len(grid) <= 40, fmt=".0f",
                    cbar_kws={"label": self.tr("results.col_index_pct")}, linewidths=0.3)
        ax.set_title(self.tr("results.heatmap_title"))
        ax.set_xlabel(self.tr("results.heatmap_x"))
        ax.set_ylabel(self.tr("results.heatmap_y"))
        ax.tick_params(axis="x", labelrotation=35)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        self._heatmap.value = self._png(fig)
        return fig

    def _render_distribution(self, res: pd.DataFrame) -> Figure | None:
        res = self._units_shown(res)
        total = res[(res["node_code"] == "total").to_numpy(bool)]
        if total.empty:
            self._distribution.value = b""
            return None
        fig = Figure(figsize=(9, 4.2))
        ax = fig.subplots()
        data = total.assign(group=total["group"].astype(object).fillna("–"))
        sns.histplot(data=data, x="index_pct", hue="group", multiple="stack", binwidth=1, ax=ax,
                     palette={"A": "#2e7d32", "B": "#1565c0", "C": "#c9a227", "–": "#b71c1c"},
                     hue_order=[g for g in ("A", "B", "C", "–") if g in set(data["group"])])
        ax.set_title(self.tr("results.distribution_title", year=int(self._year.value)))
        ax.set_xlabel(self.tr("results.distribution_x"))
        ax.set_ylabel(self.tr("results.distribution_y"))
        self._distribution.value = self._png(fig)
        return fig

    def _render_profile(self, res: pd.DataFrame, fw: Framework | None) -> Figure | None:
        unit = self._profile_unit.value
        fields = res[(res["level"] == "field").to_numpy(bool)]
        if unit is None or fields.empty:
            self._profile.value = b""
            return None
        total = res[(res["node_code"] == "total").to_numpy(bool)].sort_values("rank")
        best = str(total["unit_code"].iloc[0])
        names = self._field_names(fw)
        f = fields.assign(node=fields["node_code"].astype(str), unit=fields["unit_code"].astype(str))
        median = f.groupby("node", observed=True)["index_pct"].median()
        mine = f[f["unit"] == unit].set_index("node")["index_pct"]
        top = f[f["unit"] == best].set_index("node")["index_pct"]
        nodes = [n for n in median.index]
        long = pd.concat([
            pd.DataFrame({"field": [names.get(n, n) for n in nodes], "index_pct": mine.reindex(nodes).to_numpy(),
                          "series": self.tr("results.profile_this")}),
            pd.DataFrame({"field": [names.get(n, n) for n in nodes], "index_pct": median.reindex(nodes).to_numpy(),
                          "series": self.tr("results.profile_median")}),
            pd.DataFrame({"field": [names.get(n, n) for n in nodes], "index_pct": top.reindex(nodes).to_numpy(),
                          "series": self.tr("results.profile_best", unit=best)}),
        ], ignore_index=True)
        fig = Figure(figsize=(11, 4.6))
        ax = fig.subplots()
        sns.barplot(data=long, x="field", y="index_pct", hue="series", ax=ax,
                    palette=["#0b4f8a", "#9e9e9e", "#2e7d32"])
        name = self.model.units.set_index("code")["name"].get(unit, unit)
        ax.set_title(self.tr("results.profile_title", unit=f"{unit} {name}")[:110])
        ax.set_xlabel("")
        ax.set_ylabel(self.tr("results.col_index_pct"))
        low = np.nanmin(long["index_pct"].to_numpy("float64")) if long["index_pct"].notna().any() else 0.0
        ax.set_ylim(max(0.0, math.floor((low - 10) / 10) * 10), 102)
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        ax.legend(loc="lower right", fontsize=8)
        self._profile.value = self._png(fig)
        return fig

    def _render_deductions(self, res: pd.DataFrame, fw: Framework | None) -> None:
        if fw is None or res.empty:
            self._deductions.value = ""
            return
        unit = self._deduction_scope.value or None
        shown_res = self._units_shown(res)
        table = deductions(shown_res, fw, unit_code=unit, year=int(self._year.value), level="leaf")
        en = self.lang == "en"
        names = dict(zip(fw.nodes["code"].astype(str), fw.nodes["name_en"] if en else fw.nodes["name_vi"]))
        names_vi = dict(zip(fw.nodes["code"].astype(str), fw.nodes["name_vi"]))
        if unit is not None:
            cols = ["node_code", "max_points", "points", "points_lost", "index_pct"]
            heads = ["results.col_node", "results.col_max_points", "results.col_points", "results.col_points_lost",
                     "results.col_index_pct"]
        else:
            cols = ["node_code", "max_points", "units", "mean_points_lost", "index_pct"]
            heads = ["results.col_node", "results.col_max_points", "results.col_units",
                     "results.col_mean_points_lost", "results.col_index_pct"]
        shown = table[cols].head(25).copy()
        shown.insert(1, "name", [names.get(str(c)) or names_vi.get(str(c), "") for c in shown["node_code"]])
        headers = [self.tr(heads[0]), self.tr("results.col_name")] + [self.tr(h) for h in heads[1:]]
        self._deductions.value = html_table(shown, headers=headers, css_class="pi-table pi-deductions-table",
                                            lang=self.lang, formatters={"units": lambda v: str(int(v))})

    def _render_exports(self, view: pd.DataFrame, tab: str, figure: Figure | None) -> None:
        links = []
        if not view.empty:
            buf = io.BytesIO()
            write_table(view, buf, "xlsx", sheet_name="results")
            name = f"results_{self._year.value}_{self._kind.value or 'all'}_{self._level.value}.xlsx"
            links.append(download_link(buf.getvalue(), name, XLSX, self.tr("results.export_xlsx"),
                                       css_class="pi-download pi-export-xlsx"))
        if figure is not None:
            svg = io.BytesIO()
            figure.savefig(svg, format="svg", bbox_inches="tight")
            png = self._png(figure)
            stem = f"{tab}_{self._year.value}"
            links.append(download_link(png, f"{stem}.png", "image/png", self.tr("results.export_png"),
                                       css_class="pi-download pi-export-png"))
            links.append(download_link(svg.getvalue(), f"{stem}.svg", "image/svg+xml", self.tr("results.export_svg"),
                                       css_class="pi-download pi-export-svg"))
        self._exports.value = "".join(links)
