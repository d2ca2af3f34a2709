"""The appraisal app: the council reviews self scores and sets the appraised score.

Per leaf, the unit's self score, evidence (link and files), explanation and
any further explanation (after round 1) sit beside the appraised score and
the reason; an appraised score that differs from the self score needs a
reason. Round 1, the unit's explanation, then round 2. Bonus and penalty
points are kept within the framework's caps (the store refuses more).
Approving locks the sheet. The history comes from the audit log.
"""

from __future__ import annotations

import functools
from typing import Any

import ipywidgets as W
import pandas as pd

from parindex_lib.errors import AccessDenied

from . import policy
from .base import css_code, esc, html_table, local_time, make
from .sheet import SaveReport, blank
from .sheet_app import SheetApp

__all__ = ["AppraisalApp"]

APPRAISAL_FIELDS = ("appraised_score", "appraisal_reason", "bonus", "penalty")
_DESC = {"description_width": "130px"}


class AppraisalApp(SheetApp):
    """Appraisal of one unit's submitted scoring sheet."""

    title_key = "appraisal.title"
    app_class = "pi-appraisal"

    def build(self) -> None:
        self._start_sheet_state()
        with self.session() as s:
            role = s.role
            if not policy.may_use(role, "appraisal"):
                raise AccessDenied(self.tr("common.no_access", user=self.identity.user))
            units = s.units()
            self._assessments = s.assessments()
        self._units = units.set_index("code")
        codes = [c for c in units["code"] if c in set(self._assessments["unit_code"])]
        self._unit = W.Dropdown(options=[(f"{c} — {self._units.loc[c, 'name']}", c) for c in codes], value=None,
                                style=_DESC, layout=W.Layout(width="460px"))
        self._unit.add_class("pi-unit")
        self._year = W.Dropdown(options=[], style={"description_width": "60px"}, layout=W.Layout(width="160px"))
        self._year.add_class("pi-year")
        self._round = W.ToggleButtons(options=[("1", 1), ("2", 2)], value=1, style={"button_width": "60px"})
        self._round.add_class("pi-round")
        self._status = W.HTML()
        self._status.add_class("pi-status")
        self._totals = W.HTML()
        self._totals.add_class("pi-totals")
        self._fields = W.Accordion(children=[], selected_index=None)
        self._jump = self.field_picker(self._fields)
        self._fields.add_class("pi-fields")
        self._bonus = W.Text(style={"description_width": "initial"}, layout=W.Layout(width="300px"))
        self._bonus.add_class("pi-bonus")
        self._penalty = W.Text(style={"description_width": "initial"}, layout=W.Layout(width="300px"))
        self._penalty.add_class("pi-penalty")
        self._bonus_reason = W.Text(style=_DESC, layout=W.Layout(width="560px"))
        self._bonus_reason.add_class("pi-bonus-reason")
        self._save = self.button("pi-save-appraisal", "primary", "save")
        self._accept = self.button("pi-accept-all", "", "check")
        self._approve = self.button("pi-approve", "success", "lock")
        self._save_status = W.HTML()
        self._save_status.add_class("pi-save-status")
        self._history = W.HTML()
        self._history.add_class("pi-history")
        self._history_box = W.Accordion(children=[self._history], selected_index=None)
        self._history_box.add_class("pi-history-box")
        self._conflicts = W.HTML()
        self._conflicts.add_class("pi-conflicts")
        pickers = W.HBox([self._unit, self._year, self._round],
                         layout=W.Layout(flex_flow="row wrap", align_items="center"))
        extras = W.VBox([W.HBox([self._bonus, self._penalty], layout=W.Layout(flex_flow="row wrap")),
                         self._bonus_reason])
        extras.add_class("pi-bonus-penalty")
        actions = W.HBox([self._save, self._accept, self._approve, self._save_status],
                         layout=W.Layout(flex_flow="row wrap", align_items="center"))
        self._body.children = [pickers, self._status, self._totals, self._conflicts, self._jump, self._fields, extras,
                               self._message_near, actions,
                               self._history_box]
        self.on_change(self._unit, self._on_pick)
        self.on_change(self._year, self._on_pick)
        self.on_change(self._fields, self._on_field_opened, names="selected_index")
        self.on_change(self._history_box, self._on_history, names="selected_index")
        self.on_change(self._round, lambda change: None)
        for name, w in (("bonus", self._bonus), ("penalty", self._penalty)):
            self.on_change(w, functools.partial(self._on_sheet_input, name))
        self.on_click(self._save, self._on_save)
        self.on_click(self._accept, self._on_accept)
        self.on_click(self._approve, self._on_approve)

        unit = self.env.param("unit")
        if unit not in codes:
            submitted = self._assessments[self._assessments["status"] == "submitted"]["unit_code"].tolist()
            unit = submitted[0] if submitted else (codes[0] if codes else None)
        if unit is not None:
            self._unit.value = unit
            self._fill_years(unit)
            year = self.env.param("year")
            if year and year.isdigit() and int(year) in [v for _, v in self._year.options]:
                self._year.value = int(year)
            self._open()

    def _fill_years(self, unit: str) -> None:
        rows = self._assessments[self._assessments["unit_code"] == unit]
        years = sorted(rows["year"].astype(int).tolist(), reverse=True)
        self._year.options = [(str(y), y) for y in years]
        submitted = rows[rows["status"] == "submitted"]["year"].astype(int).tolist()
        self._year.value = max(submitted) if submitted else (years[0] if years else None)

    # -- events ---------------------------------------------------------------------
    def _on_pick(self, change: dict) -> None:
        if self._switch_refused(change):
            return
        if change["owner"] is self._unit:
            with self.syncing():
                self._fill_years(change["new"])
        self._open()

    def _open(self) -> None:
        self.clear_message()
        unit, year = self._unit.value, self._year.value
        self._leaf.clear()
        self._crit.clear()
        self._built_fields = set()
        self._history.value = ""
        sheet = self._load_sheet(unit, year)
        if sheet is None:
            return
        answered = any(not blank(r.get("unit_response")) for r in sheet.stored.values())
        with self.syncing():
            self._round.value = 2 if answered else 1
            fields = sheet.framework.fields
            self._field_codes = fields["code"].astype(str).tolist()
            self.set_field_options(self._jump, sheet.framework)
            self._fields.selected_index = None
            self._fields.children = [W.VBox(layout=W.Layout(width="100%")) for _ in self._field_codes]
            anchor = sheet.anchor()
            self._bonus.value = self._as_text(sheet.value(anchor, "bonus"))
            self._penalty.value = self._as_text(sheet.value(anchor, "penalty"))
            self._bonus_reason.value = ""
            self._history_box.selected_index = None

    def _on_history(self, change: dict) -> None:
        if change["new"] is not None:
            self._load_history()

    def _on_input(self, code: str, name: str, change: dict) -> None:
        if self.sheet is not None:
            self.sheet.set(code, name, change["new"])

    def _on_sheet_input(self, name: str, change: dict) -> None:
        if self.sheet is not None:
            self.sheet.set(self.sheet.anchor(), name, change["new"])

    def _on_accept(self) -> None:
        sheet = self.sheet
        if sheet is None:
            return
        for code in sheet.leaves.index:
            if sheet.node(code)["assessed_by"] != "self":
                continue
            if blank(sheet.value(code, "appraised_score")) and not blank(sheet.value(code, "self_score")):
                sheet.set(code, "appraised_score", sheet.stored_value(code, "self_score"))
        for code in self._leaf:
            self._apply_leaf_state(code)

    def _on_save(self) -> None:
        sheet = self.sheet
        if sheet is None:
            self.show_warning(self.tr("appraisal.need_unit"))
            return
        if not sheet.changed():
            self.show_info(self.tr("self.nothing_to_save"))
            return
        round_ = int(self._round.value)
        bonus_reason = self._bonus_reason.value.strip() or None
        anchor = sheet.anchor()

        def reason(code: str) -> str | None:
            text = sheet.value(code, "appraisal_reason")
            if code == anchor and bonus_reason:
                return bonus_reason
            return None if blank(text) else str(text)

        def extra(code: str) -> dict[str, Any]:
            draft = sheet.drafts.get(code, {})
            return {"appraisal_round": round_} if ("appraised_score" in draft or "appraisal_reason" in draft) else {}

        with self.session() as s:
            sheet.assessment = s.assessment(sheet.unit_code, sheet.year)
            policy.require_appraisable(sheet.assessment)
            report = sheet.save(s, APPRAISAL_FIELDS, reason=reason, extra=extra, check=policy.missing_reasons)
        self._show_save_report(report, "appraisal.saved", self._take_theirs, on_saved=self._history_outdated)

    def _history_outdated(self) -> None:
        self._history.value = ""
        if self._history_box.selected_index is not None:
            self._load_history()

    def _take_theirs(self, report: SaveReport) -> None:
        """Show both values of each conflict and take the stored one (the appraiser can type theirs again)."""
        sheet = self.sheet
        assert sheet is not None
        lines = "".join(
            f"<li>{esc(self.tr('self.conflict_row', code=c, field=e.field, yours=self._shown(e.yours), theirs=self._shown(e.theirs), who=e.changed_by or '?'))}</li>"
            for c, e in report.conflicts.items())
        self.show_warning(self.tr("self.conflict_title"), f"<ul>{lines}</ul>")
        with self.session() as s:
            for code in list(report.conflicts):
                sheet.keep_theirs(s, code)
                self._apply_leaf_state(code)

    def _on_approve(self) -> None:
        sheet = self.sheet
        if sheet is None:
            return
        if sheet.changed():
            self.show_warning(self.tr("self.unsaved", n=len(sheet.changed())))
            return
        with self.session() as s:
            sheet.assessment = s.assessment(sheet.unit_code, sheet.year)
            policy.require_appraisable(sheet.assessment)
            sheet.assessment = s.set_status(sheet.unit_code, sheet.year, "appraised", reason="appraisal approved",
                                            expected_version=int(sheet.assessment["version"]))
            self._assessments = s.assessments()
        self.show_info(self.tr("appraisal.approved"))

    def _load_history(self) -> None:
        sheet = self.sheet
        if sheet is None:
            return
        with self.session() as s:
            log = s.audit(300, unit_code=sheet.unit_code, year=sheet.year)
        prefix = f"{sheet.unit_code}/{sheet.year}"
        if log.empty:
            self._history.value = f"<p>{esc(self.tr('appraisal.history_empty'))}</p>"
            return
        shown = pd.DataFrame({
            "at": [local_time(pd.Timestamp(t).to_pydatetime()).strftime("%d/%m/%Y %H:%M") for t in log["at"]],
            "user": log["user_name"].astype(object),
            "row": [k[len(prefix) + 1:] or "—" for k in log["row_key"].astype(str)],
            "field": [self.column_label(str(f)) if f is not None and f == f else "" for f in log["field"]],
            "old": log["old_value"].astype(object),
            "new": log["new_value"].astype(object),
            "reason": log["reason"].astype(object),
        })
        heads = [self.tr(f"appraisal.col_{c}") for c in ("at", "user", "row", "field", "old", "new", "reason")]
        self._history.value = html_table(shown, headers=heads, css_class="pi-table pi-history-table", lang=self.lang)

    # -- leaves ---------------------------------------------------------------------------
    def _leaf_state(self, code: str) -> dict[str, dict[str, Any]]:
        """Every trait of one leaf's widgets (widgets are created with it; see :func:`widgets.base.make`)."""
        sheet = self.sheet
        assert sheet is not None
        node = sheet.node(code)
        name = (node["name_en"] or node["name_vi"]) if self.lang == "en" else node["name_vi"]
        state: dict[str, dict[str, Any]] = {
            "head": {"value": f'<div class="pi-leaf-title">{esc(code)}. {esc(name)}</div>'
                              f'<div>{esc(self.tr("self.max", max=float(node["max_points"])))}</div>'},
            "unit_side": {"value": self._unit_side(code)},
        }
        if node["assessed_by"] == "self":
            locked = sheet.status != "submitted"
            state["score"] = {"description": self.tr("appraisal.appraised_score"),
                              "value": self._as_text(sheet.value(code, "appraised_score")), "disabled": locked}
            state["reason"] = {"description": self.tr("appraisal.reason"),
                               "placeholder": self.tr("appraisal.reason_placeholder"),
                               "value": self._as_text(sheet.value(code, "appraisal_reason")), "disabled": locked}
            state["error"] = {"value": self._error_html(code)}
        return state

    def _error_html(self, code: str) -> str:
        return self._number_problem_html(code, "appraised_score")

    def _leaf_row(self, code: str) -> W.Widget:
        cls = css_code(code)
        state = self._leaf_state(code)
        parts: dict[str, W.Widget] = {"head": make(W.HTML, f"pi-leaf-head-{cls}", **state["head"]),
                                      "unit_side": make(W.HTML, f"pi-self-{cls}", **state["unit_side"])}
        right: list[W.Widget] = []
        if "score" in state:
            parts["score"] = make(W.Text, f"pi-appraised-{cls}", style=_DESC, layout=W.Layout(width="300px"),
                                  continuous_update=True, **state["score"])
            parts["reason"] = make(W.Textarea, f"pi-reason-{cls}", style=_DESC,
                                   layout=W.Layout(width="95%", height="48px"), continuous_update=False,
                                   **state["reason"])
            parts["error"] = make(W.HTML, f"pi-error-{cls}", **state["error"])
            right = [parts["score"], parts["reason"], parts["error"]]
            self.on_change(parts["score"], functools.partial(self._on_input, code, "appraised_score"))
            self.on_change(parts["reason"], functools.partial(self._on_input, code, "appraisal_reason"))
        row = make(W.HBox, "pi-leaf", f"pi-leaf-{cls}",
                   children=[W.VBox([parts["head"]], layout=W.Layout(width="28%")),
                             W.VBox([parts["unit_side"]], layout=W.Layout(width="32%")),
                             W.VBox(right, layout=W.Layout(width="40%"))], layout=W.Layout(width="100%"))
        self._leaf[code] = parts
        return row

    def _appraised_totals(self) -> dict[str, tuple[float, float]]:
        assert self.sheet is not None
        return self.sheet.totals(("self_score", "appraised_score", "survey_points", "bonus", "penalty"))

    def _tree_totals(self) -> dict[str, tuple[float, float]]:
        return self._appraised_totals()

    def _unit_side(self, code: str) -> str:
        sheet = self.sheet
        assert sheet is not None
        node = sheet.node(code)
        if node["assessed_by"] == "survey":
            return (f'<span class="pi-readonly">'
                    f'{esc(self.tr("self.survey_readonly", points=self.num(sheet.stored_value(code, "survey_points"))))}'
                    "</span>")
        rec = sheet.stored.get(code, {})
        links = [] if blank(rec.get("evidence")) else [str(rec.get("evidence"))]
        files = sheet.files(code)
        names = [str(n) for n in files["name"]] if len(files) else []
        evidence = ", ".join(links + names) or self.tr("appraisal.no_evidence")
        parts = [f'<div><b>{esc(self.tr("appraisal.self_score"))}:</b> {esc(self.num(rec.get("self_score")))}</div>',
                 f'<div><b>{esc(self.tr("appraisal.evidence"))}:</b> {esc(evidence)}</div>']
        if not blank(rec.get("explanation")):
            parts.append(f'<div><b>{esc(self.tr("appraisal.explanation"))}:</b> {esc(rec.get("explanation"))}</div>')
        if not blank(rec.get("unit_response")):
            parts.append(f'<div class="pi-msg-warning"><b>{esc(self.tr("appraisal.unit_response"))}:</b> '
                         f'{esc(rec.get("unit_response"))}</div>')
        return "".join(parts)

    def _as_text(self, value: Any) -> str:
        if blank(value):
            return ""
        if isinstance(value, float):
            return self.num(value, 4)
        return str(value)

    # -- language and refresh -------------------------------------------------------------------
    def translate(self) -> None:
        self._translate_pickers()
        self._round.description = self.tr("appraisal.round")
        self._round.tooltips = [self.tr("appraisal.round_1"), self.tr("appraisal.round_2")]
        self._save.description = self.tr("appraisal.save")
        self._accept.description = self.tr("appraisal.accept_all")
        self._approve.description = self.tr("appraisal.approve")
        self._bonus_reason.description = self.tr("appraisal.bonus_reason")
        self._history_box.titles = (self.tr("appraisal.history"),)
        for code in list(self._leaf):
            self._apply_leaf_state(code)
        if self._history.value:
            self._load_history()

    def refresh(self) -> None:
        sheet = self.sheet
        if sheet is None:
            self._status.value = f"<p>{esc(self.tr('appraisal.need_unit'))}</p>"
            self._totals.value = ""
            return
        fw = sheet.framework
        self._bonus.description = (self.tr("appraisal.bonus_cap", cap=float(fw.bonus_cap)) if fw.bonus_cap is not None
                                   else self.tr("appraisal.bonus"))
        self._penalty.description = (self.tr("appraisal.penalty_cap", cap=float(fw.penalty_cap))
                                     if fw.penalty_cap is not None else self.tr("appraisal.penalty"))
        html = (f'<div>{esc(sheet.unit_code)} — {esc(sheet.unit.get("name"))}</div>'
                f'<div>{esc(self.tr("self.status", status=self.tr("statuses." + sheet.status)))}')
        if fw.status == "demo":
            html += f' <span class="pi-demo-badge">{esc(self.tr("common.demo_badge"))}</span>'
        html += "</div>"
        editable = sheet.status == "submitted"
        if not editable:
            html += f'<div class="pi-msg-warning pi-locked">{esc(self.tr("self.locked_status", status=self.tr("statuses." + sheet.status)))}</div>'
        self._status.value = html
        self_totals = sheet.totals(("self_score", "survey_points"))
        appraised = self._appraised_totals()
        self._totals.value = (f'<div class="pi-total">{esc(self.tr("appraisal.total_self", points=self_totals["total"][0]))}'
                              f' · {esc(self.tr("appraisal.total_appraised", points=appraised["total"][0]))}</div>')
        self._show_tree_totals(appraised)
        for code, parts in self._leaf.items():
            if "score" not in parts:
                continue
            parts["error"].value = self._error_html(code)
            parts["score"].disabled = not editable
            parts["reason"].disabled = not editable
        for w in (self._bonus, self._penalty, self._bonus_reason, self._save, self._accept, self._approve, self._round):
            w.disabled = not editable
        n = len(sheet.changed())
        if n:
            self._save_status.value = f'<span role="status">{esc(self.tr("self.unsaved", n=n))}</span>'
