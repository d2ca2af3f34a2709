"""What the two scoring-sheet apps do alike: open a sheet, build its tree, show totals and saves.

:class:`SheetApp` is the base of :class:`widgets.self_assessment.SelfAssessmentApp`
and :class:`widgets.appraisal.AppraisalApp`. Both show one unit's
:class:`~widgets.sheet.Sheet` for one year as collapsible sections (one per
field, criteria inside, built when first opened), follow every change in the
totals, and report a save the same way. What each app writes, which checks
it asks of :mod:`widgets.policy` and what it shows per leaf stay in the app.

A subclass creates, in :meth:`build`, ``self._unit`` and ``self._year``
(dropdowns), ``self._fields`` (the accordion), ``self._jump`` (its
:meth:`~widgets.base.App.field_picker`) and ``self._save_status``, and sets
``self._field_codes`` when it builds a sheet's tree. It provides
``_leaf_state(code)`` (every trait of one leaf's widgets), ``_leaf_row(code)``
and :meth:`_tree_totals`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import ipywidgets as W

from parindex_lib.errors import ValidationError

from .base import App, esc, local_time, make
from .sheet import SaveReport, Sheet, field_layout

__all__ = ["SheetApp"]


class SheetApp(App):
    """Base of the apps that edit one scoring sheet (see the module's description)."""

    sheet: Sheet | None = None

    @classmethod
    def warm_up(cls, session: Any) -> None:
        assessments = session.assessments()
        if len(assessments):
            first = assessments.iloc[-1]
            Sheet.load(session, str(first["unit_code"]), int(first["year"])).totals()

    def _start_sheet_state(self) -> None:
        """No sheet yet; no leaf or criterion widgets, no field built."""
        self.sheet = None
        self._leaf: dict[str, dict[str, W.Widget]] = {}
        self._crit: dict[str, W.HTML] = {}
        self._built_fields: set[int] = set()
        self._field_codes: list[str] = []

    def has_unsaved_changes(self) -> bool:
        """Whether the open sheet holds edits not saved yet."""
        return self.sheet is not None and bool(self.sheet.changed())

    # -- choosing the sheet ----------------------------------------------------------
    def _switch_refused(self, change: dict) -> bool:
        """Undo a change of unit or year while edits are unsaved (the person's work is never dropped)."""
        if self.sheet is None or not self.sheet.changed():
            return False
        with self.syncing():
            change["owner"].value = change["old"]
        self.show_warning(self.tr("self.unsaved", n=len(self.sheet.changed())))
        return True

    def _load_sheet(self, unit: str | None, year: int | None) -> Sheet | None:
        """Read the sheet of ``unit`` and ``year``; without either, no sheet and an empty tree."""
        if unit is None or year is None:
            self.sheet = None
            self._fields.children = []
            return None
        with self.session() as s:
            self.sheet = Sheet.load(s, unit, int(year))
        return self.sheet

    # -- the tree ----------------------------------------------------------------------
    def _tree_totals(self) -> dict[str, tuple[float, float]]:
        """The points the criterion headings and field titles show (see :meth:`widgets.sheet.Sheet.totals`)."""
        raise NotImplementedError

    def _leaf_row_maker(self) -> Callable[[str], W.Widget]:
        """The function that makes one leaf's row while a field is built."""
        return self._leaf_row

    def _on_field_opened(self, change: dict) -> None:
        index = change["new"]
        if index is not None:
            self._build_field(index)

    def _build_field(self, index: int) -> None:
        """Create the rows of one field's section, once (criterion headings and leaf rows, in tree order)."""
        if index in self._built_fields or self.sheet is None:
            return
        totals = self._tree_totals()
        leaf_row = self._leaf_row_maker()
        rows: list[W.Widget] = []
        for kind, code in field_layout(self.sheet.framework, self._field_codes[index]):
            if kind == "criterion":
                head = make(W.HTML, "pi-criterion", value=self._crit_html(code, totals))
                self._crit[code] = head
                rows.append(head)
            else:
                rows.append(leaf_row(code))
        with self.syncing():
            self._fields.children[index].children = rows
            self._built_fields.add(index)

    def _crit_html(self, code: str, totals: dict[str, tuple[float, float]]) -> str:
        sheet = self.sheet
        assert sheet is not None
        node = sheet.framework.node(code)
        p, m = totals.get(code, (math.nan, float(node["max_points"])))
        name = (node["name_en"] or node["name_vi"]) if self.lang == "en" else node["name_vi"]
        return (f'<h3 class="pi-criterion-title">{esc(code)}. {esc(name)} — '
                f'{esc(self.num(p))} / {esc(self.num(m))}</h3>')

    def _show_tree_totals(self, totals: dict[str, tuple[float, float]]) -> None:
        """The points of ``totals`` in the field titles and the criterion headings built so far."""
        assert self.sheet is not None
        en = self.lang == "en"
        titles = []
        for rec in self.sheet.framework.fields.itertuples(index=False):
            p, m = totals.get(str(rec.code), (math.nan, rec.max_points))
            name = (rec.name_en or rec.name_vi) if en else rec.name_vi
            titles.append(self.tr("self.field_total", code=rec.code, name=name, points=float(p), max=float(m)))
        self._fields.titles = tuple(titles)
        for code, head in self._crit.items():
            head.value = self._crit_html(code, totals)

    # -- leaves ---------------------------------------------------------------------------
    def _apply_leaf_state(self, code: str) -> None:
        """Bring one leaf's widgets in line with ``_leaf_state`` (language, values, lock)."""
        parts = self._leaf.get(code)
        if parts is None or self.sheet is None:
            return
        with self.syncing():
            for key, traits in self._leaf_state(code).items():
                widget = parts[key]
                traits = dict(traits)
                if "display" in traits:
                    widget.layout.display = traits.pop("display")
                if "options" in traits:
                    widget.options = traits.pop("options")
                for name, value in traits.items():
                    setattr(widget, name, value)

    def _number_problem_html(self, code: str, name: str) -> str:
        """The message beside a typed number that cannot count (display only: the store decides on save)."""
        sheet = self.sheet
        problem = None if sheet is None else sheet.number_problem(code, name)
        if problem is None:
            return ""
        return f'<div class="pi-inline-error" role="alert">{esc(self.tr(problem[0], **problem[1]))}</div>'

    def _shown(self, value: Any) -> str:
        """A value of a conflict as the person reads it."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return self.num(value)
        return "–" if value is None else str(value)

    # -- saving ------------------------------------------------------------------------------
    def _show_save_report(self, report: SaveReport, saved_key: str, on_conflicts: Callable[[SaveReport], None],
                          on_saved: Callable[[], None] | None = None) -> None:
        """Show what one save did: the time beside the buttons, then the refusals, the conflicts or the count.

        Parameters
        ----------
        saved_key
            The catalogue key of "n saved at time" (``n`` and ``time``).
        on_conflicts
            Shows the report's conflicts (when no value was refused).
        on_saved
            Runs after a save that wrote something, before the message.
        """
        time = local_time(report.at).strftime("%H:%M")
        if report.saved:
            self._save_status.value = f'<span role="status">{esc(self.tr("common.saved_at", time=time))}</span>'
            if on_saved is not None:
                on_saved()
        if not report.failures.empty:
            text = self.tr("self.not_saved_invalid", n=len(report.failures))
            if report.saved:
                text = self.tr(saved_key, n=len(report.saved), time=time) + " " + text
            self.show_error(ValidationError(text, report.failures), row_label=self.tr("appraisal.col_row"))
        elif report.conflicts:
            on_conflicts(report)
        else:
            self.show_info(self.tr(saved_key, n=len(report.saved), time=time))

    # -- language ------------------------------------------------------------------------------
    def _translate_pickers(self) -> None:
        """The field picker's choices and the unit and year labels in the app's language."""
        if self.sheet is not None:
            self.set_field_options(self._jump, self.sheet.framework)
        self._unit.description = self.tr("common.unit")
        self._year.description = self.tr("common.year")
