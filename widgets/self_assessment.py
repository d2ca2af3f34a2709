"""The self-assessment app: a unit scores itself, leaf by leaf, with evidence.

The framework tree shows as collapsible sections (one per field, criteria
inside, built when first opened); each leaf shows its maximum points and the
scoring guidance, a score input (text that accepts ``0,5`` and ``0.5``, or a
choice of the rubric's levels), an evidence link, evidence files and an
explanation. Survey-based leaves are read-only. Totals per criterion, field
and overall follow every keystroke. Saving writes the changed leaves with
their row versions; a conflict with another editor shows both values.
Submitting locks the sheet; a deadline locks it too.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import ipywidgets as W
import pandas as pd

from . import policy
from .base import css_code, esc, local_time, make
from .sheet import blank
from .sheet_app import SheetApp

__all__ = ["SelfAssessmentApp"]

SELF_FIELDS = ("self_score", "explanation", "evidence")
RESPONSE_FIELDS = ("unit_response",)
_DESC = {"description_width": "150px"}


class SelfAssessmentApp(SheetApp):
    """Self-assessment of one unit's scoring sheet for one year."""

    title_key = "self.title"
    app_class = "pi-self-assessment"

    # -- construction --------------------------------------------------------------
    def build(self) -> None:
        self._start_sheet_state()
        self._confirm_submit = False
        self._selection: tuple[str | None, int | None] = (None, None)
        with self.session() as s:
            units = s.units()
            role, codes = s.role, s.unit_codes
            assessments = s.assessments()
        self._units = policy.editable_units(role, codes, units).reset_index(drop=True)
        self._assessments = assessments[assessments["unit_code"].isin(self._units["code"])]

        self._unit = W.Dropdown(options=[], value=None, style=_DESC, layout=W.Layout(width="460px"))
        self._unit.add_class("pi-unit")
        self._year = W.Dropdown(options=[], value=None, style={"description_width": "60px"},
                                layout=W.Layout(width="160px"))
        self._year.add_class("pi-year")
        self._status = W.HTML()
        self._status.add_class("pi-status")
        self._total = W.HTML()
        self._total.add_class("pi-total")
        self._fields = W.Accordion(children=[], selected_index=None)
        self._jump = self.field_picker(self._fields)
        self._fields.add_class("pi-fields")
        self._save = self.button("pi-save", "primary", "save")
        self._submit = self.button("pi-submit", "warning", "lock")
        self._save_status = W.HTML()
        self._save_status.add_class("pi-save-status")
        self._conflicts = W.VBox()
        self._conflicts.add_class("pi-conflicts")
        pickers = W.HBox([self._unit, self._year], layout=W.Layout(flex_flow="row wrap", align_items="center"))
        actions = W.HBox([self._save, self._submit, self._save_status],
                         layout=W.Layout(align_items="center", flex_flow="row wrap"))
        actions.add_class("pi-actions")
        self._body.children = [pickers, self._status, self._total, self._conflicts, self._jump, self._fields,
                               self._message_near, actions]

        self._unit.options = [(f"{c} — {n}", c) for c, n in zip(self._units["code"], self._units["name"])]
        self.on_change(self._unit, self._on_unit)
        self.on_change(self._year, self._on_year)
        self.on_change(self._fields, self._on_field_opened, names="selected_index")
        self.on_click(self._save, self._on_save)
        self.on_click(self._submit, self._on_submit)

        unit = self.env.param("unit")
        if unit not in set(self._units["code"]):
            unit = self._units["code"].iloc[0] if len(self._units) == 1 else None
        if unit is not None:
            self._unit.value = unit
            self._fill_years(unit)
            year = self.env.param("year")
            years = [y for _, y in self._year.options]
            if year is not None and year.isdigit() and int(year) in years:
                self._year.value = int(year)
            self._open(self._unit.value, self._year.value)

    def _fill_years(self, unit: str | None) -> None:
        rows = self._assessments[self._assessments["unit_code"] == unit]
        years = sorted(rows["year"].astype(int).tolist(), reverse=True)
        self._year.options = [(str(y), y) for y in years]
        self._year.value = years[0] if years else None

    # -- events -----------------------------------------------------------------------
    def _on_unit(self, change: dict) -> None:
        if self._switch_refused(change):
            return
        with self.syncing():
            self._fill_years(change["new"])
        self._open(self._unit.value, self._year.value)

    def _on_year(self, change: dict) -> None:
        if self._switch_refused(change):
            return
        self._open(self._unit.value, self._year.value)

    def _open(self, unit: str | None, year: int | None) -> None:
        self.clear_message()
        self._confirm_submit = False
        if self._load_sheet(unit, year) is None:
            return
        self._selection = (unit, int(year))
        self._build_tree()

    def _on_input(self, code: str, name: str, change: dict) -> None:
        if self.sheet is None:
            return
        value = change["new"]
        self.sheet.set(code, name, None if value == "" and name == "self_score" else value)
        self._confirm_submit = False

    def _on_upload(self, code: str, change: dict) -> None:
        files = change["new"]
        if not files or self.sheet is None:
            return
        sheet = self.sheet
        with self.session() as s:
            sheet.assessment = s.assessment(sheet.unit_code, sheet.year)
            policy.require_open_sheet(sheet.assessment)
            names = []
            for f in files:
                s.add_evidence(sheet.unit_code, sheet.year, code, name=str(f["name"]), content=bytes(f["content"]),
                               media_type=f.get("type") or None)
                names.append(str(f["name"]))
            sheet.evidence = s.evidence(sheet.unit_code, sheet.year)
        with self.syncing():
            self._leaf[code]["upload"].value = ()
        self.show_info(self.tr("self.evidence_added", name=", ".join(names), code=code))

    def _on_save(self) -> None:
        sheet = self.sheet
        if sheet is None:
            self.show_warning(self.tr("self.need_unit"))
            return
        if not sheet.changed():
            self.show_info(self.tr("self.nothing_to_save"))
            return
        with self.session() as s:
            sheet.assessment = s.assessment(sheet.unit_code, sheet.year)
            if self._responding():
                report = sheet.save(s, RESPONSE_FIELDS)
            else:
                policy.require_open_sheet(sheet.assessment)
                report = sheet.save(s, SELF_FIELDS,
                                    check=lambda rows: policy.missing_explanations(rows, sheet.framework))
        self._show_report(report)

    def _show_report(self, report: Any) -> None:
        self._show_save_report(report, "self.saved", lambda _: self.show_warning(self.tr("self.conflict_title")))
        self._show_conflicts()

    def _show_conflicts(self) -> None:
        sheet = self.sheet
        rows = []
        if sheet is not None:
            for code, exc in sheet.conflicts.items():
                mine = self.button(f"pi-keep-mine-{css_code(code)}", description=self.tr("self.keep_mine"))
                theirs = self.button(f"pi-keep-theirs-{css_code(code)}", description=self.tr("self.keep_theirs"))
                self.on_click(mine, functools.partial(self._resolve, code, True))
                self.on_click(theirs, functools.partial(self._resolve, code, False))
                text = self.tr("self.conflict_row", code=code, field=exc.field, yours=self._shown(exc.yours),
                               theirs=self._shown(exc.theirs), who=exc.changed_by or "?")
                rows.append(W.HBox([W.HTML(f'<div class="pi-msg-warning">{esc(text)}</div>'), mine, theirs],
                                   layout=W.Layout(align_items="center", flex_flow="row wrap")))
        self._conflicts.children = rows

    def _resolve(self, code: str, mine: bool) -> None:
        sheet = self.sheet
        if sheet is None:
            return
        with self.session() as s:
            if mine:
                fields = RESPONSE_FIELDS if self._responding() else SELF_FIELDS
                report = sheet.keep_mine(s, code, fields)
                if not report.ok:
                    self._show_report(report)
                    return
            else:
                sheet.keep_theirs(s, code)
                self._apply_leaf_state(code)
        self._show_conflicts()
        self.show_info(self.tr("self.conflict_resolved", code=code))

    def _on_submit(self) -> None:
        sheet = self.sheet
        if sheet is None:
            self.show_warning(self.tr("self.need_unit"))
            return
        if sheet.changed():
            self.show_warning(self.tr("self.unsaved", n=len(sheet.changed())))
            return
        if not self._confirm_submit:
            self._confirm_submit = True
            self.show_warning(self.tr("self.confirm_submit"))
            return
        self._confirm_submit = False
        with self.session() as s:
            sheet.assessment = s.assessment(sheet.unit_code, sheet.year)
            policy.require_open_sheet(sheet.assessment)
            sheet.assessment = s.set_status(sheet.unit_code, sheet.year, "submitted",
                                            reason="self-assessment submitted",
                                            expected_version=int(sheet.assessment["version"]))
            self._assessments = s.assessments()
        self.show_info(self.tr("self.submitted"))

    # -- the tree -------------------------------------------------------------------------
    def _build_tree(self) -> None:
        sheet = self.sheet
        assert sheet is not None
        self._leaf.clear()
        self._crit.clear()
        self._built_fields = set()
        fields = sheet.framework.fields
        with self.syncing():
            self._fields.selected_index = None
            self._fields.children = [make(W.VBox, f"pi-field-{css_code(code)}", layout=W.Layout(width="100%"))
                                     for code in fields["code"]]
        self._field_codes = fields["code"].astype(str).tolist()
        self.set_field_options(self._jump, sheet.framework)

    def _tree_totals(self) -> dict[str, tuple[float, float]]:
        assert self.sheet is not None
        return self.sheet.totals()

    def _leaf_row_maker(self) -> Callable[[str], W.Widget]:
        answerable = self._adjusted_now()  # once per field, not per leaf
        return lambda code: self._leaf_row(code, answerable)

    def _leaf_state(self, code: str, answerable: set[str] | None = None) -> dict[str, dict[str, Any]]:
        """Every trait of one leaf's widgets, from the sheet, the language and the lock.

        Widgets are created with this state (ipywidgets drops updates sent
        while the browser is still creating a new widget's model) and later
        brought in line with it by :meth:`_apply_leaf_state`.
        """
        sheet = self.sheet
        assert sheet is not None
        node = sheet.node(code)
        en = self.lang == "en"
        name = (node["name_en"] or node["name_vi"]) if en else node["name_vi"]
        guidance = (node["guidance_en"] or node["guidance_vi"]) if en else node["guidance_vi"]
        head = (f'<div class="pi-leaf-title">{esc(code)}. {esc(name)}</div>'
                f'<div>{esc(self.tr("self.max", max=float(node["max_points"])))}</div>')
        if guidance:
            head += (f'<details class="pi-guidance"><summary>{esc(self.tr("self.guidance"))}</summary>'
                     f"{esc(guidance)}</details>")
        state: dict[str, dict[str, Any]] = {"head": {"value": head}, "error": {"value": self._error_html(code)}}
        if node["assessed_by"] != "self":
            survey = sheet.stored_value(code, "survey_points")
            key = "self.survey_readonly" if node["assessed_by"] == "survey" else "self.computed_readonly"
            state["readonly"] = {"value": f'<span class="pi-readonly">{esc(self.tr(key, points=self.num(survey)))}</span>'}
            return state
        lock = policy.lock_reason(sheet.assessment) is not None
        value = sheet.value(code, "self_score")
        if node["rubric"]:
            options: list[tuple[str, Any]] = [(self.tr("self.rubric_choose"), "")]  # "": none chosen (None shows empty)
            for points, label_vi, label_en in node["rubric"]:
                text = (label_en or label_vi) if en else label_vi
                options.append((f"{text} ({self.num(points)})", float(points)))
            try:
                x = float(value)
            except (TypeError, ValueError):
                x = math.nan
            chosen = next((v for _, v in options if v != "" and not math.isnan(x) and abs(v - x) < 1e-9), "")
            state["score"] = {"description": self.tr("self.score"), "options": options, "value": chosen,
                              "disabled": lock}
        else:
            state["score"] = {"description": self.tr("self.score"), "placeholder": self.tr("self.score_placeholder"),
                              "value": self._as_text(value), "disabled": lock}
        state["evidence"] = {"description": self.tr("self.evidence_link"),
                             "placeholder": self.tr("self.evidence_link_placeholder"),
                             "value": self._as_text(sheet.value(code, "evidence")), "disabled": lock}
        state["upload"] = {"description": self.tr("self.evidence_upload"), "disabled": lock}
        state["explanation"] = {"description": self.tr("self.explanation"),
                                "placeholder": self.tr("self.explanation_placeholder"),
                                "value": self._as_text(sheet.value(code, "explanation")), "disabled": lock}
        files = sheet.files(code)
        names = ", ".join(str(n) for n in files["name"]) if len(files) else ""
        state["files"] = {"value": f'<span class="pi-files">{esc(self.tr("self.evidence_files", names=names))}</span>'
                          if names else ""}
        shown, editable, html = self._appraisal_view(code, answerable)
        state["appraisal"] = {"value": html}
        state["unit_response"] = {"description": self.tr("appraisal.unit_response"),
                                  "value": self._as_text(sheet.value(code, "unit_response")),
                                  "disabled": not editable, "display": None if shown else "none"}
        return state

    def _error_html(self, code: str) -> str:
        sheet = self.sheet
        if sheet is None or sheet.node(code)["assessed_by"] != "self":
            return ""
        return self._number_problem_html(code, "self_score")

    def _adjusted_now(self) -> set[str]:
        """Leaves the unit may answer now (explanation round), computed once per refresh."""
        return set(self._adjusted()) if self._responding() else set()

    def _appraisal_view(self, code: str, answerable: set[str] | None = None) -> tuple[bool, bool, str]:
        """Whether the appraisal and the response box show, whether the response is editable, the HTML."""
        sheet = self.sheet
        assert sheet is not None
        adjusted = code in (answerable if answerable is not None else self._adjusted_now())
        answered = not blank(sheet.stored_value(code, "unit_response"))
        if not (adjusted or (sheet.status != "draft" and answered)):
            return False, False, ""
        a = sheet.stored_value(code, "appraised_score")
        reason = sheet.stored_value(code, "appraisal_reason")
        html = (f'<div class="pi-msg-warning">{esc(self.tr("appraisal.appraised_score"))}: '
                f'{esc(self.num(a))} — {esc(self.tr("appraisal.reason"))}: '
                f'{esc("" if blank(reason) else reason)}</div>')
        return True, adjusted, html

    def _leaf_row(self, code: str, answerable: set[str] | None = None) -> W.Widget:
        cls = css_code(code)
        state = self._leaf_state(code, answerable)
        parts: dict[str, W.Widget] = {
            "head": make(W.HTML, f"pi-leaf-head-{cls}", **state["head"]),
            "error": make(W.HTML, f"pi-error-{cls}", **state["error"]),
        }
        right: list[W.Widget] = []
        if "readonly" in state:
            parts["readonly"] = make(W.HTML, f"pi-readonly-{cls}", **state["readonly"])
            right.append(parts["readonly"])
        else:
            if "options" in state["score"]:
                score = make(W.Dropdown, f"pi-score-{cls}", style=_DESC, layout=W.Layout(width="95%"), **state["score"])
            else:
                score = make(W.Text, f"pi-score-{cls}", style=_DESC, layout=W.Layout(width="330px"),
                             continuous_update=True, **state["score"])
            response_state = dict(state["unit_response"])
            display = response_state.pop("display")
            parts.update(
                score=score,
                evidence=make(W.Text, f"pi-evidence-{cls}", style=_DESC, layout=W.Layout(width="95%"),
                              continuous_update=False, **state["evidence"]),
                upload=make(W.FileUpload, f"pi-upload-{cls}", accept=".pdf,.doc,.docx,.xls,.xlsx,.odt,.ods,.png,.jpg,.jpeg",
                            multiple=False, layout=W.Layout(width="auto"), **state["upload"]),
                files=make(W.HTML, f"pi-files-{cls}", **state["files"]),
                explanation=make(W.Textarea, f"pi-explanation-{cls}", style=_DESC,
                                 layout=W.Layout(width="95%", height="52px"), continuous_update=False,
                                 **state["explanation"]),
                appraisal=make(W.HTML, f"pi-appraisal-{cls}", **state["appraisal"]),
                unit_response=make(W.Textarea, f"pi-response-{cls}", style=_DESC,
                                   layout=W.Layout(width="95%", height="52px", display=display),
                                   continuous_update=False, **response_state),
            )
            right += [score, parts["evidence"], W.HBox([parts["upload"], parts["files"]],
                                                       layout=W.Layout(align_items="center")),
                      parts["explanation"], parts["appraisal"], parts["unit_response"]]
            for name in ("evidence", "explanation", "unit_response"):
                self.on_change(parts[name], functools.partial(self._on_input, code, name))
            self.on_change(score, functools.partial(self._on_input, code, "self_score"))
            self.on_change(parts["upload"], functools.partial(self._on_upload, code))
        row = make(W.HBox, "pi-leaf", f"pi-leaf-{cls}",
                   children=[W.VBox([parts["head"], parts["error"]], layout=W.Layout(width="46%")),
                             W.VBox(right, layout=W.Layout(width="54%"))], layout=W.Layout(width="100%"))
        parts["row"] = row
        self._leaf[code] = parts
        return row

    def _as_text(self, value: Any) -> str:
        if value is None or value is pd.NA:
            return ""
        if isinstance(value, float):
            return "" if math.isnan(value) else self.num(value, 4)
        return str(value)

    # -- language and refresh -----------------------------------------------------------------
    def translate(self) -> None:
        self._translate_pickers()
        self._save.description = self.tr("self.save")
        self._submit.description = self.tr("self.submit")
        for code in list(self._leaf):
            self._apply_leaf_state(code)
        self._show_conflicts()

    def _responding(self) -> bool:
        """True in the explanation round: submitted, with round-1 adjustments to answer."""
        sheet = self.sheet
        if sheet is None or sheet.status != "submitted":
            return False
        return bool(self._adjusted())

    def _adjusted(self) -> list[str]:
        sheet = self.sheet
        if sheet is None:
            return []
        out = []
        for code, rec in sheet.stored.items():
            a, s_ = rec.get("appraised_score"), rec.get("self_score")
            rnd = rec.get("appraisal_round")
            if rnd is None or rnd is pd.NA or (isinstance(rnd, float) and math.isnan(rnd)) or int(rnd) != 1:
                continue
            if a is None or (isinstance(a, float) and math.isnan(a)):
                continue
            if s_ is None or (isinstance(s_, float) and math.isnan(s_)) or abs(float(a) - float(s_)) > 1e-9:
                out.append(code)
        return out

    def refresh(self) -> None:
        sheet = self.sheet
        show = sheet is not None
        for w in (self._save, self._submit):
            w.layout.display = None if show else "none"
        if sheet is None:
            self._status.value = (f'<div class="pi-msg-warning">{esc(self.tr("self.no_units"))}</div>'
                                  if self._units.empty else f"<p>{esc(self.tr('self.need_unit'))}</p>")
            self._total.value = ""
            return
        lock = policy.lock_reason(sheet.assessment)
        responding = self._responding()
        status_bits = [self.tr("self.status", status=self.tr(f"statuses.{sheet.status}"))]
        deadline = sheet.assessment.get("deadline")
        if deadline is not None and not pd.isna(deadline):
            local = local_time(pd.Timestamp(deadline).to_pydatetime())
            status_bits.append(self.tr("self.deadline", deadline=local.strftime("%d/%m/%Y %H:%M")))
        html = " · ".join(esc(b) for b in status_bits)
        if sheet.framework.status == "demo":
            html += f' <span class="pi-demo-badge">{esc(self.tr("common.demo_badge"))}</span>'
        html = f'<div>{esc(sheet.unit_code)} — {esc(sheet.unit.get("name"))}</div><div>{html}</div>'
        if lock is not None and not responding:
            key = "self.locked_status" if lock[0] == "status" else "self.locked_deadline"
            text = self.tr(key, status=self.tr(f"statuses.{lock[1]}") if lock[0] == "status" else "",
                           deadline=lock[1])
            html += f'<div class="pi-msg-warning pi-locked" role="status">{esc(text)}</div>'
        self._status.value = html
        totals = sheet.totals()
        points, mx = totals.get("total", (math.nan, sheet.framework.max_points))
        self._total.value = esc(self.tr("self.total", points=float(points), max=float(mx)))
        self._show_tree_totals(totals)
        locked_self = lock is not None
        answerable = self._adjusted_now()
        for code, parts in self._leaf.items():
            parts["error"].value = self._error_html(code)
            if "score" not in parts:
                continue
            if sheet.number_problem(code, "self_score") is None:
                parts["score"].remove_class("pi-invalid")
            else:
                parts["score"].add_class("pi-invalid")
            for name in ("score", "evidence", "upload", "explanation"):
                parts[name].disabled = locked_self
            files = sheet.files(code)
            names = ", ".join(str(n) for n in files["name"]) if len(files) else ""
            parts["files"].value = (f'<span class="pi-files">{esc(self.tr("self.evidence_files", names=names))}</span>'
                                    if names else "")
            shown, editable, html = self._appraisal_view(code, answerable)
            parts["appraisal"].value = html
            parts["unit_response"].layout.display = None if shown else "none"
            parts["unit_response"].disabled = not editable
        self._save.disabled = locked_self and not responding
        self._submit.disabled = locked_self
        if self._confirm_submit:
            self._submit.description = self.tr("self.confirm_submit").split(".")[0]
        else:
            self._submit.description = self.tr("self.submit")
        n = len(sheet.changed())
        if n:
            self._save_status.value = f'<span role="status">{esc(self.tr("self.unsaved", n=n))}</span>'
        elif sheet.saved_at is not None:
            self._save_status.value = (f'<span role="status">'
                                       f'{esc(self.tr("common.saved_at", time=local_time(sheet.saved_at).strftime("%H:%M")))}</span>')
        else:
            self._save_status.value = ""
