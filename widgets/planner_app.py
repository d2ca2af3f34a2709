"""The improvement planner: from a unit's results to an action plan and an evidence pack.

Pick a unit and a year. The app shows the points lost per criterion beside
the median and the best unit of the same kind, the priorities (the formula
is shown: :data:`parindex_lib.planning.PRIORITY_FORMULA`), optionally
weighted by the association of each field with PCI, PAPI or SIPAS measured
between provinces on the published figures, a target simulator (the points
needed for rank k or a group, and the criteria that could provide them),
the action plan kept in the store (saved with its version: a change made
meanwhile by someone else is shown, never overwritten silently) and the
evidence pack to download (HTML, xlsx, and PDF when the server has
Chromium). Every number comes from :mod:`parindex_lib.planning` and
:mod:`parindex_lib.reporting`; the app holds no rule of its own.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import ipywidgets as W
import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402

from parindex_lib import planning, reporting  # noqa: E402
from parindex_lib.errors import ConflictError  # noqa: E402
from parindex_lib.framework import Framework  # noqa: E402
from parindex_lib.results import ResultsCache  # noqa: E402

from .base import XLSX, App, download_link, esc, html_table  # noqa: E402

__all__ = ["PlannerApp", "PlannerModel"]

_DESC = {"description_width": "initial"}
#: The plan picker's value for a new action (stored actions have ids from 1).
NEW_ACTION = 0
#: External variables the priorities can be weighted by.
ASSOCIATION_CHOICES = ("PCI:total", "PAPI:total", "SIPAS:total")


class PlannerModel:
    """The tenant's units, results and associations, computed by the library.

    Results come from the library's :class:`~parindex_lib.results.ResultsCache`,
    which recomputes them when the tenant's data changed.

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
            self.role, self.unit_codes = s.role, s.unit_codes
        have = set(self.assessments["unit_code"].astype(str))
        self.planned_units = self.units[self.units["code"].astype(str).isin(have)].reset_index(drop=True)
        self._corr: dict[str, tuple[pd.DataFrame, str]] = {}

    def years(self, unit: str | None) -> list[int]:
        rows = self.assessments[self.assessments["unit_code"].astype(str) == str(unit)]
        return sorted(rows["year"].astype(int).tolist(), reverse=True)

    def kind(self, unit: str) -> str:
        return str(self.units.set_index(self.units["code"].astype(str)).loc[str(unit), "kind"])

    def framework(self, unit: str, year: int) -> Framework:
        row = self.assessments[(self.assessments["unit_code"].astype(str) == str(unit))
                               & (self.assessments["year"] == int(year))]
        with self._session() as s:
            return self.cache.framework(s, str(row["framework_id"].iloc[0]))

    def results(self, unit: str, year: int) -> pd.DataFrame:
        """Every level's results of ``year`` among the units of the unit's kind on its framework."""
        fw = self.framework(unit, year)
        with self._session() as s:
            res = self.cache.results(s, year=int(year), level=None, kind=self.kind(unit), framework_id=fw.id)
            self.units = self.cache.units(s)
        return res

    @property
    def stamp(self) -> Any:
        """The state of the tenant's data the last results belong to (see :class:`ResultsCache`)."""
        return self.cache.stamp

    def correlation(self, y: str, lang: str) -> tuple[pd.DataFrame, str]:
        """PAR (total and fields) against ``y`` between provinces, Pearson, pooled: the study and its description."""
        if y not in self._corr:
            from parindex_lib.correlation import reference_study
            from parindex_lib.external import load_external

            from .correlation_app import external_directory

            study = reference_study(pooled=True, method="pearson", x="PAR", y=[y], n_boot=0,
                                    directory=external_directory())
            data = load_external(external_directory())
            index = y.split(":")[0]
            years = sorted(set(data.loc[(data["index"] == "PAR") & data["value"].notna(), "year"])
                           & set(data.loc[(data["index"] == index) & data["value"].notna(), "year"]))
            self._corr[y] = (study, ", ".join(str(int(v)) for v in years))
        study, years = self._corr[y]
        from parindex_lib.i18n import t

        return study, t("planner.association_source", lang, y=y, years=years)

    def plan(self, unit: str, year: int) -> pd.DataFrame:
        with self._session() as s:
            return planning.action_plan(s, unit, year)

    def may_plan(self, unit: str) -> bool:
        return planning.may_plan(self.role, self.unit_codes, unit)


class PlannerApp(App):
    """Points lost, priorities, targets, the action plan and the evidence pack of one unit and year."""

    title_key = "planner.title"
    app_class = "pi-planner"
    TABS = ("points_lost", "priorities", "target", "plan", "report")

    def build(self) -> None:
        self.model = PlannerModel(self.session)
        self._pack: reporting.EvidencePack | None = None
        self._pack_key: tuple | None = None
        self._editing: tuple[int | None, int] = (None, 0)
        self._plan_rows = pd.DataFrame(columns=planning.ACTION_PLAN_COLUMNS)
        self._unit = W.Dropdown(options=[], value=None, style=_DESC, layout=W.Layout(width="440px"))
        self._unit.add_class("pi-unit")
        self._year = W.Dropdown(options=[], value=None, style=_DESC, layout=W.Layout(width="150px"))
        self._year.add_class("pi-year")
        self._assoc = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="330px"))
        self._assoc.add_class("pi-association")
        self._weight = W.BoundedFloatText(value=planning.DEFAULT_WEIGHT, min=0, max=100, step=0.5, style=_DESC,
                                          layout=W.Layout(width="240px"))
        self._weight.add_class("pi-weight")
        self._summary = W.HTML()
        self._summary.add_class("pi-summary")
        self._profile = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self._profile.add_class("pi-profile")
        self._lost = W.HTML()
        self._lost.add_class("pi-points-lost")
        self._formula = W.HTML()
        self._formula.add_class("pi-formula")
        self._priorities = W.HTML()
        self._priorities.add_class("pi-priorities")
        self._goal = W.ToggleButtons(options=[], style={"button_width": "110px"})
        self._goal.add_class("pi-goal")
        self._rank_k = W.BoundedIntText(value=1, min=1, max=10_000, style=_DESC, layout=W.Layout(width="200px"))
        self._rank_k.add_class("pi-rank-k")
        self._group = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="200px"))
        self._group.add_class("pi-group")
        self._target = W.HTML()
        self._target.add_class("pi-target")
        # the action plan form
        self._plan_table = W.HTML()
        self._plan_table.add_class("pi-plan-table")
        self._plan_pick = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="560px"))
        self._plan_pick.add_class("pi-plan-pick")
        self._node = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="560px"))
        self._node.add_class("pi-plan-node")
        self._gap = W.Text(style=_DESC, layout=W.Layout(width="220px"))
        self._gap.add_class("pi-plan-gap")
        self._action = W.Textarea(style=_DESC, layout=W.Layout(width="560px", height="70px"))
        self._action.add_class("pi-plan-action")
        self._owner = W.Text(style=_DESC, layout=W.Layout(width="400px"))
        self._owner.add_class("pi-plan-owner")
        self._deadline = W.DatePicker(style=_DESC, layout=W.Layout(width="260px"))
        self._deadline.add_class("pi-plan-deadline")
        self._status = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="260px"))
        self._status.add_class("pi-plan-status")
        self._save = self.button("pi-plan-save", "primary", "save")
        self._delete = self.button("pi-plan-delete", "danger", "trash")
        self._readonly = W.HTML()
        self._readonly.add_class("pi-readonly")
        # the evidence pack
        self._make = self.button("pi-make-report", "primary", "file")
        self._downloads = W.HTML()
        self._downloads.add_class("pi-report-links")

        form = W.VBox([self._plan_pick, self._node, W.HBox([self._gap, self._deadline, self._status]),
                       self._action, self._owner, W.HBox([self._save, self._delete]), self._readonly])
        form.add_class("pi-plan-form")
        self._tabs = W.Tab(children=[
            W.VBox([self._summary, self._profile, self._lost]),
            W.VBox([self._formula, self._priorities]),
            W.VBox([W.HBox([self._goal, self._rank_k, self._group], layout=W.Layout(align_items="center")),
                    self._target]),
            W.VBox([self._plan_table, form]),
            W.VBox([self._make, self._downloads]),
        ])
        self._tabs.add_class("pi-tabs")
        pickers = W.HBox([self._unit, self._year, self._assoc, self._weight],
                         layout=W.Layout(flex_flow="row wrap", align_items="center"))
        pickers.add_class("pi-filters")
        self._body.children = [pickers, self._tabs]

        units = self.model.planned_units
        self._unit.options = [(f"{c} — {n}", str(c)) for c, n in zip(units["code"], units["name"])]
        wanted = self.env.param("unit")
        if wanted in set(units["code"].astype(str)):
            self._unit.value = wanted
        elif len(units):
            self._unit.value = str(units["code"].iloc[0])
        self._fill_years()
        year = self.env.param("year")
        if year and year.isdigit() and int(year) in [v for _, v in self._year.options]:
            self._year.value = int(year)
        self._set_options()
        self._load_plan()
        self.on_change(self._unit, self._on_unit)
        self.on_change(self._year, self._on_year)
        for w in (self._assoc, self._weight, self._goal, self._rank_k, self._group):
            self.on_change(w, self._on_option)
        self.on_change(self._tabs, self._on_option, names="selected_index")
        self.on_change(self._plan_pick, self._on_pick)
        self.on_click(self._save, self._on_save)
        self.on_click(self._delete, self._on_delete)
        self.on_click(self._make, self._on_make)

    # -- options -------------------------------------------------------------------------
    def _fill_years(self) -> None:
        years = self.model.years(self._unit.value)
        self._year.options = [(str(y), y) for y in years]
        self._year.value = years[0] if years else None

    def _set_options(self) -> None:
        assoc = self._assoc.value or ""
        # "" (and action 0 below) rather than None: a Dropdown shows no selection for the value None
        self._assoc.options = [(self.tr("planner.association_none"), "")] + [(v, v) for v in ASSOCIATION_CHOICES]
        self._assoc.value = assoc
        goal = self._goal.value or "group"
        self._goal.options = [(self.tr("planner.goal_group"), "group"), (self.tr("planner.goal_rank"), "rank")]
        self._goal.value = goal
        status = self._status.value or "planned"
        self._status.options = [(self.tr(f"report.status_{s}"), s) for s in planning.ACTION_STATUSES]
        self._status.value = status
        if self._unit.value and self._year.value:
            fw = self.model.framework(self._unit.value, self._year.value)
            group = self._group.value
            self._group.options = [(str(g), str(g)) for g, _ in fw.bands]
            self._group.value = group if group in [str(g) for g, _ in fw.bands] else str(fw.bands[0][0])
            self._set_node_options(fw)

    def _set_node_options(self, fw: Framework) -> None:
        en = self.lang == "en"
        current = self._node.value
        options = [(f"total — {fw.name(self.lang)}"[:100], "total")]
        options += [(f"{c} — {(ne or nv) if en else nv}"[:100], str(c))
                    for c, nv, ne in zip(fw.nodes["code"], fw.nodes["name_vi"], fw.nodes["name_en"])]
        self._node.options = options
        self._node.value = current if current in [v for _, v in options] else None

    def translate(self) -> None:
        self._unit.description = self.tr("planner.unit")
        self._year.description = self.tr("planner.year")
        self._assoc.description = self.tr("planner.association_index")
        self._weight.description = self.tr("planner.weight")
        self._goal.description = self.tr("planner.goal")
        self._rank_k.description = self.tr("planner.rank_k")
        self._group.description = self.tr("planner.group")
        self._plan_pick.description = self.tr("planner.plan_pick")
        self._node.description = self.tr("planner.node")
        self._gap.description = self.tr("planner.gap")
        self._action.description = self.tr("planner.action")
        self._owner.description = self.tr("planner.owner")
        self._deadline.description = self.tr("planner.deadline")
        self._status.description = self.tr("planner.status")
        self._save.description = self.tr("planner.save")
        self._delete.description = self.tr("planner.delete")
        self._make.description = self.tr("planner.report_make")
        self._tabs.titles = tuple(self.tr(f"planner.tab_{k}") for k in self.TABS)
        self._pack_key = None  # names and captions follow the language
        self._downloads.value = ""
        self._set_options()
        self._set_pick_options()

    # -- events ------------------------------------------------------------------------------
    def _on_unit(self, change: dict) -> None:
        with self.syncing():
            self._fill_years()
            self._set_options()
        self._after_selection()

    def _on_year(self, change: dict) -> None:
        with self.syncing():
            self._set_options()
        self._after_selection()

    def _after_selection(self) -> None:
        self.clear_message()
        self._downloads.value = ""
        self._load_plan()

    def _on_option(self, change: dict) -> None:
        if change.get("owner") in (self._assoc, self._weight):
            self._downloads.value = ""

    def _on_pick(self, change: dict) -> None:
        self.clear_message()
        with self.syncing():
            self._fill_form(change["new"])

    def _values(self) -> dict[str, Any]:
        return {"node_code": self._node.value, "action": self._action.value, "owner": self._owner.value,
                "deadline": self._deadline.value or "", "gap": self._gap.value, "status": self._status.value}

    def _on_save(self) -> None:
        unit, year = self._unit.value, self._year.value
        action_id, version = self._editing
        values = self._values()
        try:
            with self.session() as s:
                saved = planning.save_action(s, unit, year, action_id=action_id, expected_version=version, **values)
        except ConflictError as exc:
            self._editing = (action_id, exc.current_version)  # saving again overwrites, knowingly
            self.show_warning(self.tr("planner.conflict", who=exc.changed_by or "?", id=action_id, field=exc.field,
                                      theirs=_shown(exc.theirs), yours=_shown(exc.yours)))
            self._load_plan(keep_form=True)
            return
        self._editing = (saved["id"], saved["version"])
        self._load_plan(keep_form=True)
        with self.syncing():
            self._plan_pick.value = saved["id"]
        self._downloads.value = ""
        self.show_info(self.tr("planner.saved", id=saved["id"], version=saved["version"]))

    def _on_delete(self) -> None:
        action_id, version = self._editing
        if action_id is None:
            return
        with self.session() as s:
            planning.delete_action(s, self._unit.value, self._year.value, action_id, expected_version=version)
        self._load_plan()
        self._downloads.value = ""
        self.show_info(self.tr("planner.deleted", id=action_id))

    def _on_make(self) -> None:
        pack = self._current_pack(with_plan=True)
        stem = f"ho_so_minh_chung_{pack.unit_code}_{pack.year}_{self.lang}"
        page = reporting.evidence_pack_html(pack, lang=self.lang)
        links = [download_link(page.encode("utf-8"), f"{stem}.html", "text/html",
                               self.tr("planner.download_html"), css_class="pi-download pi-report-html"),
                 download_link(reporting.evidence_pack_xlsx(pack, lang=self.lang), f"{stem}.xlsx", XLSX,
                               self.tr("planner.download_xlsx"), css_class="pi-download pi-report-xlsx")]
        if reporting.pdf_available():
            links.append(download_link(reporting.evidence_pack_pdf(page), f"{stem}.pdf", "application/pdf",
                                       self.tr("planner.download_pdf"), css_class="pi-download pi-report-pdf"))
        else:
            links.append(f'<p class="pi-readonly">{esc(self.tr("planner.pdf_missing"))}</p>')
        self._downloads.value = "".join(links)
        self.show_info(self.tr("planner.report_ready"))

    # -- the plan -------------------------------------------------------------------------------
    def _load_plan(self, keep_form: bool = False) -> None:
        unit, year = self._unit.value, self._year.value
        if unit is None or year is None:
            self._plan_rows = pd.DataFrame(columns=planning.ACTION_PLAN_COLUMNS)
        else:
            self._plan_rows = self.model.plan(unit, year)
        with self.syncing():
            self._set_pick_options()
            if not keep_form:
                self._plan_pick.value = NEW_ACTION
                self._fill_form(None)
        writable = unit is not None and self.model.may_plan(unit)
        for w in (self._node, self._gap, self._action, self._owner, self._deadline, self._status, self._save,
                  self._delete):
            w.disabled = not writable
        self._readonly.value = "" if writable else f"<p>{esc(self.tr('planner.readonly'))}</p>"

    def _set_pick_options(self) -> None:
        current = self._plan_pick.value
        options = [(self.tr("planner.plan_new"), NEW_ACTION)]
        for rec in self._plan_rows.itertuples(index=False):
            options.append((f"#{rec.id} {rec.node_code} — {str(rec.action)[:60]}", int(rec.id)))
        self._plan_pick.options = options
        self._plan_pick.value = current if current in [v for _, v in options] else NEW_ACTION

    def _fill_form(self, action_id: int | None) -> None:
        if not action_id:
            self._editing = (None, 0)
            top = self._top_priority()
            self._node.value = top[0] if top and top[0] in [v for _, v in self._node.options] else None
            self._gap.value = self.num(top[1]) if top else ""
            self._action.value = ""
            self._owner.value = ""
            self._deadline.value = None
            self._status.value = "planned"
            self._delete.layout.display = "none"
            return
        row = self._plan_rows[self._plan_rows["id"] == action_id].iloc[0]
        self._editing = (int(row["id"]), int(row["version"]))
        self._node.value = str(row["node_code"]) if str(row["node_code"]) in [v for _, v in self._node.options] \
            else None
        self._gap.value = "" if pd.isna(row["gap"]) else self.num(row["gap"])
        self._action.value = str(row["action"])
        self._owner.value = "" if row["owner"] is None or pd.isna(row["owner"]) else str(row["owner"])
        self._deadline.value = row["deadline"] if isinstance(row["deadline"], dt.date) else None
        self._status.value = str(row["status"])
        self._delete.layout.display = None

    def _top_priority(self) -> tuple[str, float] | None:
        pack = self._current_pack()
        if pack is None:
            return None
        pr = pack.priorities
        pr = pr[pr["priority"] > 0]
        taken = set(self._plan_rows["node_code"].astype(str))
        free = pr[~pr["node_code"].astype(str).isin(taken)]
        rec = (free if len(free) else pr).head(1)
        if rec.empty:
            return None
        return str(rec["node_code"].iloc[0]), float(rec["recoverable"].iloc[0])

    # -- computing ----------------------------------------------------------------------------------
    def _current_pack(self, with_plan: bool = False) -> reporting.EvidencePack | None:
        unit, year = self._unit.value, self._year.value
        if unit is None or year is None:
            return None
        assoc, weight = self._assoc.value or None, float(self._weight.value)
        res = self.model.results(unit, year)  # recomputed when the tenant's data changed
        key = (unit, int(year), assoc, weight, self.lang, self.model.stamp)
        if self._pack is None or self._pack_key != key:
            fw = self.model.framework(unit, year)
            corr, source = (self.model.correlation(assoc, self.lang) if assoc else (None, ""))
            self._pack = reporting.build_evidence_pack(res, fw, self.model.units, unit, int(year), correlation=corr,
                                                       association_y=assoc, association_source=source,
                                                       weight=weight, goals=[])
            self._pack_key = key
            self._profile_png = None
        if with_plan:
            from dataclasses import replace

            fw = self.model.framework(unit, year)
            res = self.model.results(unit, year)
            goals = reporting._default_goals(self._pack.profile, fw)
            chosen = {"rank": int(self._rank_k.value)} if self._goal.value == "rank" else {"group": self._group.value}
            if chosen not in goals:
                goals.append(chosen)
            targets = [planning.target(res, unit, int(year), framework=fw, **g) for g in goals]
            return replace(self._pack, action_plan=self.model.plan(unit, year), targets=targets)
        return self._pack

    # -- rendering ------------------------------------------------------------------------------------
    def refresh(self) -> None:
        pack = self._current_pack()
        if pack is None:
            self._summary.value = f"<p>{esc(self.tr('planner.no_units'))}</p>"
            for w in (self._lost, self._priorities, self._target, self._plan_table, self._formula):
                w.value = ""
            return
        tab = self.TABS[self._tabs.selected_index or 0]
        if tab == "points_lost":
            self._render_points_lost(pack)
        elif tab == "priorities":
            self._render_priorities(pack)
        elif tab == "target":
            self._render_target(pack)
        elif tab == "plan":
            self._render_plan(pack)

    def _name(self, pack: reporting.EvidencePack, code: Any, name_vi: Any) -> str:
        return reporting._name(pack, str(code), name_vi, self.lang)

    def _render_points_lost(self, pack: reporting.EvidencePack) -> None:
        total = pack.profile[pack.profile["node_code"] == "total"]
        if len(total):
            r = total.iloc[0]
            self._summary.value = "<p>" + esc(self.tr(
                "report.summary", points=float(r["points"]), max=float(r["max_points"]), index=float(r["index_pct"]),
                rank="–" if r["rank"] is None else str(r["rank"]), n=pack.units, group=r["group"] or "–",
                change=reporting._rank_change(r["rank_change"], self.lang))) + "</p>" + \
                f"<p>{esc(self.tr('report.points_lost_intro'))}</p>"
        if getattr(self, "_profile_png", None) is None:
            fig = reporting.profile_figure(pack, self.lang)
            self._profile_png = reporting._png(fig, dpi=90) if fig is not None else b""
        self._profile.value = self._profile_png
        lost = pack.points_lost
        shown = pd.DataFrame({"node_code": lost["node_code"],
                              "name": [self._name(pack, c, n) for c, n in zip(lost["node_code"], lost["name_vi"])],
                              "max_points": lost["max_points"], "points": lost["points"],
                              "points_lost": lost["points_lost"], "median_points": lost["median_points"],
                              "best_points": lost["best_points"], "gap_to_median": lost["gap_to_median"],
                              "gap_to_best": lost["gap_to_best"]})
        heads = [self.tr(f"report.col_{k}") for k in ("node", "name", "max_points", "points", "points_lost",
                                                     "median_points", "best_points", "gap_to_median", "gap_to_best")]
        self._lost.value = html_table(shown, headers=heads, css_class="pi-table pi-points-lost-table", lang=self.lang,
                                      max_rows=40)

    def _render_priorities(self, pack: reporting.EvidencePack) -> None:
        parts = [f'<p class="pi-formula-text"><code>{esc(self.tr("report.formula"))}</code></p>',
                 f"<p>{esc(self.tr('report.weight', weight=pack.weight))} "]
        if pack.associations:
            values = ", ".join(f"{k}: {self.num(v)}" for k, v in sorted(pack.associations.items()))
            parts.append(esc(self.tr("report.associations", values=values, source=pack.association_source)))
        elif self._assoc.value:
            parts.append(esc(self.tr("planner.associations_none_found", y=self._assoc.value)))
        else:
            parts.append(esc(self.tr("report.no_associations")))
        parts.append("</p>")
        if self._assoc.value:
            parts.append(f'<div class="pi-msg-warning">{esc(self.tr("report.association_caveat"))}</div>')
            if self._assoc.value.startswith("SIPAS"):
                parts.append(f'<div class="pi-msg-warning pi-sipas-note">{esc(self.tr("report.sipas_caveat"))}</div>')
        self._formula.value = "".join(parts)
        pr = pack.priorities
        shown = pd.DataFrame({"node_code": pr["node_code"],
                              "name": [self._name(pack, c, n) for c, n in zip(pr["node_code"], pr["name_vi"])],
                              "points_lost": pr["points_lost"], "recoverable": pr["recoverable"],
                              "association": pr["association"], "priority": pr["priority"]})
        heads = [self.tr(f"report.col_{k}") for k in ("node", "name", "points_lost", "recoverable", "association",
                                                     "priority")]
        self._priorities.value = html_table(shown, headers=heads, css_class="pi-table pi-priority-table",
                                            lang=self.lang, max_rows=40)

    def _render_target(self, pack: reporting.EvidencePack) -> None:
        goal = self._goal.value
        self._rank_k.layout.display = None if goal == "rank" else "none"
        self._group.layout.display = None if goal == "group" else "none"
        unit, year = self._unit.value, int(self._year.value)
        fw = self.model.framework(unit, year)
        self._rank_k.max = max(pack.units, 1)
        kwargs = {"rank": int(self._rank_k.value)} if goal == "rank" else {"group": self._group.value}
        result = planning.target(self.model.results(unit, year), unit, year, framework=fw, **kwargs)
        text = reporting._target_sentence(result, self.lang)
        nodes = result["nodes"]
        table = ""
        if len(nodes):
            shown = pd.DataFrame({"node_code": nodes["node_code"],
                                  "name": [self._name(pack, c, n) for c, n in zip(nodes["node_code"],
                                                                                  nodes["name_vi"])],
                                  "points": nodes["points"], "best_points": nodes["best_points"],
                                  "recoverable": nodes["recoverable"], "cumulative": nodes["cumulative"]})
            heads = [self.tr(f"report.col_{k}") for k in ("node", "name", "points", "best_points", "recoverable",
                                                         "cumulative")]
            table = html_table(shown, headers=heads, css_class="pi-table pi-target-table", lang=self.lang)
        self._target.value = f'<p class="pi-target-text">{esc(text)}</p>{table}'

    def _render_plan(self, pack: reporting.EvidencePack) -> None:
        plan = self._plan_rows
        if plan.empty:
            self._plan_table.value = f"<p>{esc(self.tr('report.none'))}</p>"
            return
        names = dict(zip(pack.points_lost["node_code"], pack.points_lost["name_vi"]))
        shown = pd.DataFrame({
            "id": [f"#{i}" for i in plan["id"]], "node_code": plan["node_code"],
            "name": [self._name(pack, c, names.get(c)) for c in plan["node_code"]],
            "gap": pd.to_numeric(plan["gap"]).astype(float), "action": plan["action"], "owner": plan["owner"],
            "deadline": [str(d) if isinstance(d, dt.date) else "" for d in plan["deadline"]],
            "status": [self.tr(f"report.status_{s}") for s in plan["status"]],
            "updated_by": plan["updated_by"]})
        heads = ["#"] + [self.tr(f"report.col_{k}") for k in ("node", "name", "gap", "action", "owner", "deadline",
                                                             "status")] + [self.tr("appraisal.col_user")]
        self._plan_table.value = html_table(shown, headers=heads, css_class="pi-table pi-plan-rows", lang=self.lang)


def _shown(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return str(value)
