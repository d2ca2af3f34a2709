"""The import wizard: template, upload, check, then write all or nothing.

1. Download the blank template of a framework for the tenant's units.
2. Upload the filled file (xlsx or csv).
3. The library reads and checks the whole file (:func:`parindex_lib.importing.read_scores`);
   every bad cell is listed in one table, or a preview of the values shows.
4. Confirm: the values are written in one transaction
   (:meth:`parindex_lib.store.TenantSession.write_scores`), all or nothing.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import ipywidgets as W
import pandas as pd

from parindex_lib.errors import AccessDenied, ValidationError
from parindex_lib.i18n import library_text
from parindex_lib.importing import read_scores, score_template

from . import policy
from .base import XLSX, App, download_link, esc, html_table

__all__ = ["ImportWizardApp"]

_DESC = {"description_width": "initial"}
_PREVIEW_ROWS = 15


def _safe_name(name: str) -> str:
    """A file name for the temporary copy: letters, digits, dot, dash, underscore."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(name)).name).strip("._") or "upload"
    return stem[-120:]


class ImportWizardApp(App):
    """Import scores from a file, validated as a whole and written all or nothing."""

    title_key = "import.title"
    app_class = "pi-import"

    def build(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="parindex-import-"))
        self._path: Path | None = None
        self._file_name: str | None = None
        self._scores: pd.DataFrame | None = None
        with self.session() as s:
            if not policy.may_use(s.role, "import_wizard"):
                raise AccessDenied(self.tr("common.no_access", user=self.identity.user))
            self._units = s.units()
            table = s.frameworks()
            self._frameworks = {}
            for fid in table["framework_id"]:
                fw = s.framework(fid)
                if fw.scorable:
                    self._frameworks[str(fid)] = fw
            self._assessment_years = sorted(s.assessments()["year"].astype(int).unique().tolist())
        self._step1 = W.HTML()
        self._step2 = W.HTML()
        self._step3 = W.HTML()
        self._step4 = W.HTML()
        self._framework = W.Dropdown(options=[(f"{fid} — {fw.name_vi}"[:90], fid) for fid, fw in self._frameworks.items()],
                                     style=_DESC, layout=W.Layout(width="520px"))
        self._framework.add_class("pi-framework")
        self._year = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="160px"))
        self._year.add_class("pi-year")
        self._layout = W.ToggleButtons(options=[("wide", "wide"), ("long", "long")], value="wide",
                                       style={"button_width": "80px", "description_width": "initial"})
        self._layout.add_class("pi-layout")
        self._make = self.button("pi-make-template", "", "file-excel-o")
        self._template = W.HTML()
        self._template.add_class("pi-template")
        self._upload = W.FileUpload(accept=".xlsx,.csv", multiple=False)
        self._upload.add_class("pi-import-upload")
        self._file = W.HTML()
        self._file.add_class("pi-file")
        self._check = self.button("pi-check", "", "search")
        self._progress = W.IntProgress(value=0, min=0, max=100, style=_DESC, layout=W.Layout(width="420px"))
        self._progress.add_class("pi-progress")
        self._preview = W.HTML()
        self._preview.add_class("pi-preview")
        self._confirm = self.button("pi-confirm", "success", "database")
        self._body.children = [
            self._step1, W.HBox([self._framework, self._year, self._layout],
                                layout=W.Layout(flex_flow="row wrap", align_items="center")),
            W.HBox([self._make, self._template], layout=W.Layout(align_items="center")),
            self._step2, W.HBox([self._upload, self._file], layout=W.Layout(align_items="center")),
            self._step3, W.HBox([self._check, self._progress], layout=W.Layout(align_items="center")),
            self._preview,
            self._step4, W.HBox([self._confirm]),
        ]
        self._fill_years()
        wanted = self.env.param("year")
        if wanted and wanted.isdigit() and int(wanted) in [v for _, v in self._year.options]:
            self._year.value = int(wanted)
        self.on_change(self._framework, self._on_framework)
        self.on_change(self._year, self._on_year)
        self.on_change(self._upload, self._on_upload)
        self.on_click(self._make, self._on_make)
        self.on_click(self._check, self._on_check)
        self.on_click(self._confirm, self._on_confirm)

    def release(self) -> None:
        """Remove the folder of uploaded files (before the app is built for another tenant)."""
        shutil.rmtree(getattr(self, "_dir", ""), ignore_errors=True)

    def __del__(self) -> None:  # pragma: no cover - best effort
        self.release()

    @property
    def framework(self):
        return self._frameworks.get(self._framework.value)

    def _fill_years(self) -> None:
        fw = self.framework
        years = list(fw.years) if fw is not None and fw.years else self._assessment_years
        self._year.options = [(str(y), int(y)) for y in sorted(years, reverse=True)]
        used = [y for y in self._assessment_years if y in years]
        if used:
            self._year.value = max(used)
        elif self._year.options:
            self._year.value = self._year.options[0][1]

    def _units_for(self, fw) -> pd.DataFrame:
        kinds = set(fw.kinds or (fw.level,))
        return self._units[self._units["kind"].isin(kinds)]

    # -- events ------------------------------------------------------------------------
    def _on_framework(self, change: dict) -> None:
        with self.syncing():
            self._fill_years()
        self._reset_check()

    def _on_year(self, change: dict) -> None:
        self._reset_check()

    def _reset_check(self) -> None:
        self._scores = None
        self._preview.value = ""
        self._template.value = ""
        self._progress.value = 0
        self.clear_message()

    def _on_make(self) -> None:
        fw = self.framework
        if fw is None:
            return
        units = self._units_for(fw)
        name = f"mau_diem_{fw.id}_{self._year.value}_{self._layout.value}.xlsx"
        path = self._dir / name
        score_template(fw, units, int(self._year.value), path, layout=self._layout.value)
        data = path.read_bytes()
        path.unlink(missing_ok=True)
        info = self.tr("import.template_ready", units=len(units), leaves=int((fw.leaves["assessed_by"] != "survey").sum()))
        self._template.value = (download_link(data, name, XLSX, self.tr("import.download_template", name=name),
                                              css_class="pi-download pi-template-link")
                                + f"<span>{esc(info)}</span>")

    def _on_upload(self, change: dict) -> None:
        files = change["new"]
        if not files:
            return
        f = files[0]
        self._reset_check()
        if self._path is not None:
            self._path.unlink(missing_ok=True)
        self._file_name = str(f["name"])
        self._path = self._dir / _safe_name(self._file_name)
        data = bytes(f["content"])
        self._path.write_bytes(data)
        with self.syncing():
            self._upload.value = ()
        self._file.value = f'<span>{esc(self.tr("import.file_received", name=self._file_name, size=self._size(len(data))))}</span>'
        self._progress.value = 10
        self._on_check()

    def _size(self, n: int) -> str:
        if n >= 1024 * 1024:
            return f"{self.num(n / 1048576, 1)} MB"
        return f"{self.num(n / 1024, 1)} KB"

    def _on_check(self) -> None:
        fw = self.framework
        self._scores = None
        self._preview.value = ""
        if self._path is None or fw is None:
            self.show_warning(self.tr("import.no_file"))
            return
        self._progress.value = 20
        try:
            scores = read_scores(self._path, fw, self._units, year=int(self._year.value))
        except ValidationError as exc:
            self._progress.value = 0
            # The person knows the file by the name they uploaded, not by the temporary copy's.
            failures = exc.failures.copy()
            failures["file"] = failures["file"].map(lambda v: self._file_name if v == self._path.name else v)
            message = library_text(exc.message.replace(self._path.name, self._file_name or ""), self.lang)
            self.show_error(ValidationError(self.tr("import.invalid", n=len(failures)) + " " + message, failures))
            return
        self._progress.value = 60
        self._scores = scores
        units = scores["unit_code"].nunique()
        shown = scores.head(_PREVIEW_ROWS)
        cols = [c for c in ("unit_code", "year", "node_code", "self_score", "appraised_score", "survey_points",
                            "evidence", "explanation") if c in shown.columns]
        table = html_table(shown[cols], headers=[self.column_label(c) for c in cols],
                           css_class="pi-table pi-preview-table", lang=self.lang,
                           formatters={"year": lambda v: str(int(v))})
        self._preview.value = (f"<p>{esc(self.tr('import.preview', n=len(shown), total=len(scores)))}</p>{table}")
        self.show_info(self.tr("import.valid", n=len(scores), units=units))

    def _on_confirm(self) -> None:
        fw = self.framework
        if self._scores is None or fw is None:
            self.show_warning(self.tr("import.no_file"))
            return
        self._progress.value = 70
        with self.session() as s:
            result = s.write_scores(self._scores, framework_id=fw.id, source=f"import: {self._file_name}")
        self._progress.value = 100
        n = int(result.get("rows", len(self._scores))) if isinstance(result, dict) else len(self._scores)
        self._scores = None
        self.show_info(self.tr("import.written", n=n, file=self._file_name or ""))

    # -- language and refresh ------------------------------------------------------------
    def translate(self) -> None:
        self._step1.value = f"<h3>{esc(self.tr('import.step_template'))}</h3>"
        self._step2.value = f"<h3>{esc(self.tr('import.step_upload'))}</h3>"
        self._step3.value = f"<h3>{esc(self.tr('import.step_preview'))}</h3>"
        self._step4.value = f"<h3>{esc(self.tr('import.step_confirm'))}</h3>"
        self._framework.description = self.tr("import.framework")
        self._year.description = self.tr("common.year")
        self._layout.description = self.tr("import.layout")
        self._layout.options = [(self.tr("import.layout_wide"), "wide"), (self.tr("import.layout_long"), "long")]
        self._layout.tooltips = [self.tr("import.layout_help")] * 2
        self._make.description = self.tr("import.make_template")
        self._upload.description = self.tr("import.upload")
        self._check.description = self.tr("import.check")
        self._confirm.description = self.tr("import.confirm")
        self._progress.description = self.tr("import.progress")

    def refresh(self) -> None:
        self._confirm.disabled = self._scores is None
        self._check.disabled = self._path is None
