"""The correlation explorer: PAR INDEX fields against PCI, PAPI and SIPAS.

Pick the PAR figures (the published ones, or this organisation's own results
when it scores provinces), the index to compare with (its total, or all its
sub-indices), the method, one year, each year or the years pooled, and
whether to remove the SIPAS part from the PAR total (SIPAS is part of PAR
field 8). The study is :func:`parindex_lib.correlation.correlate`, run with a
progress bar; the table shows n, r, the confidence interval, p and the
Benjamini-Hochberg adjusted p per pair, with every caveat; the heatmap and a
scatter plot of any pair can be downloaded, as can the table (csv, xlsx).
"""

from __future__ import annotations

import io
import math
import os
from typing import Any

import ipywidgets as W
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from parindex_lib.correlation import METHODS, SIPAS_NOTE, correlate  # noqa: E402
from parindex_lib.errors import ValidationError  # noqa: E402
from parindex_lib.exporting import write_table  # noqa: E402
from parindex_lib.external import load_external  # noqa: E402
from parindex_lib.figures import correlation_heatmap, figure_bytes, scatter_fit  # noqa: E402
from parindex_lib.i18n import read_number  # noqa: E402
from parindex_lib.results import ResultsCache  # noqa: E402

from .base import XLSX, App, download_link, esc, html_table  # noqa: E402

__all__ = ["CorrelationApp", "CorrelationModel"]

_DESC = {"description_width": "initial"}
#: Indices to compare with (the PAR INDEX is always the x side).
OTHER_INDICES = ("PCI", "PAPI", "SIPAS")


def external_directory() -> str:
    """Where imported reference files are kept (``PARINDEX_EXTERNAL_DIR``, as ``parindex external import``)."""
    return os.environ.get("PARINDEX_EXTERNAL_DIR", "var/external")


class CorrelationModel:
    """The data of a correlation study and the last result.

    Parameters
    ----------
    session_factory
        A callable returning a context-managed tenant session (for the
        tenant's own province results).
    directory
        Folder of imported reference data (default :func:`external_directory`).
    """

    def __init__(self, session_factory: Any, directory: str | None = None):
        self._session = session_factory
        self.reference = load_external(directory or external_directory())
        self.cache = ResultsCache()
        with self._session() as s:
            units = self.cache.units(s)
        self.provinces = units[units["kind"] == "province"][["code", "name"]]
        self._tenant_par: tuple[Any, pd.DataFrame] | None = None
        self.result: pd.DataFrame | None = None
        self.data: pd.DataFrame | None = None

    @property
    def has_tenant_provinces(self) -> bool:
        return len(self.provinces) > 0

    def tenant_par(self) -> pd.DataFrame:
        """This organisation's PAR results for its provinces, in the long format (read again when its data changed)."""
        from parindex_lib.external import par_from_results

        with self._session() as s:
            res = self.cache.results(s, level=None, kind="province")
            units = self.cache.units(s)
        if self._tenant_par is None or self._tenant_par[0] != self.cache.stamp:
            self.provinces = units[units["kind"] == "province"][["code", "name"]]
            par = par_from_results(res, province_codes=dict(zip(self.provinces["code"].astype(str),
                                                                self.provinces["name"])))
            self._tenant_par = (self.cache.stamp, par)
        return self._tenant_par[1]

    def study_data(self, source: str) -> pd.DataFrame:
        """The long table studied: the reference data, with the tenant's PAR instead of the published one."""
        if source == "tenant":
            other = self.reference[self.reference["index"] != "PAR"]
            return pd.concat([other, self.tenant_par()], ignore_index=True)
        return self.reference

    def years(self, source: str) -> list[int]:
        data = self.study_data(source)
        par = data[(data["index"] == "PAR") & data["value"].notna()]
        return sorted(int(y) for y in par["year"].unique())

    def run(self, *, source: str, index: str | None, components: bool, method: str, year: Any, n_boot: int,
            seed: int, exclude_sipas: bool, sipas_part: str, sipas_part_max: float | None,
            progress: Any = None) -> pd.DataFrame:
        """Run the study (see :func:`parindex_lib.correlation.correlate`) and keep its result."""
        data = self.study_data(source)
        others = OTHER_INDICES if index is None else (index,)
        if components:
            y: Any = list(others)
        else:
            present = set(data["index"] + ":" + data["component"])
            y = [f"{i}:total" for i in others if f"{i}:total" in present]
        self.data = data
        self.result = correlate(data, "PAR", y, method=method, year=year, n_boot=n_boot, seed=seed,
                                exclude_sipas_part=exclude_sipas, sipas_part=sipas_part,
                                sipas_part_max=sipas_part_max, progress=progress)
        return self.result


class CorrelationApp(App):
    """Correlations of PAR INDEX fields with the external indices."""

    title_key = "correlation.title"
    app_class = "pi-correlation"
    TABS = ("table", "heatmap", "scatter")

    def build(self) -> None:
        self.model = CorrelationModel(self.session)
        self._heat_fig = None
        self._scatter_fig = None
        self._source = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="360px"))
        self._source.add_class("pi-source")
        self._index = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="280px"))
        self._index.add_class("pi-index-choice")
        self._components = W.Checkbox(value=False, indent=False, layout=W.Layout(width="auto"))
        self._components.add_class("pi-components")
        self._method = W.Dropdown(options=[(m.capitalize() if m != "kendall" else "Kendall (tau-b)", m)
                                           for m in METHODS], style=_DESC, layout=W.Layout(width="220px"))
        self._method.add_class("pi-method")
        self._year = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="220px"))
        self._year.add_class("pi-year")
        self._exclude = W.Checkbox(value=False, indent=False, layout=W.Layout(width="auto"))
        self._exclude.add_class("pi-exclude-sipas")
        self._sipas_part = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="260px"))
        self._sipas_part.add_class("pi-sipas-part")
        self._sipas_max = W.Text(value="", style=_DESC, layout=W.Layout(width="260px"))
        self._sipas_max.add_class("pi-sipas-max")
        self._n_boot = W.BoundedIntText(value=2000, min=0, max=20000, step=500, style=_DESC,
                                        layout=W.Layout(width="260px"))
        self._n_boot.add_class("pi-n-boot")
        self._seed = W.BoundedIntText(value=0, min=0, max=2**31 - 1, style=_DESC, layout=W.Layout(width="200px"))
        self._seed.add_class("pi-seed")
        self._run = self.button("pi-run", "primary", "play")
        self._progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="320px"))
        self._progress.add_class("pi-progress")
        self._progress_text = W.HTML()
        self._progress_text.add_class("pi-progress-text")
        self._notes = W.HTML()
        self._notes.add_class("pi-notes")
        self._table = W.HTML()
        self._table.add_class("pi-corr-table")
        self._heatmap = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self._heatmap.add_class("pi-corr-heatmap")
        self._scatter_x = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="320px"))
        self._scatter_x.add_class("pi-scatter-x")
        self._scatter_y = W.Dropdown(options=[], style=_DESC, layout=W.Layout(width="360px"))
        self._scatter_y.add_class("pi-scatter-y")
        self._scatter = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self._scatter.add_class("pi-corr-scatter")
        self._exports = W.HTML()
        self._exports.add_class("pi-exports")
        self._tabs = W.Tab(children=[
            W.VBox([self._table]),
            W.VBox([self._heatmap]),
            W.VBox([W.HBox([self._scatter_x, self._scatter_y]), self._scatter]),
        ])
        self._tabs.add_class("pi-tabs")
        row1 = W.HBox([self._source, self._index, self._components, self._method, self._year],
                      layout=W.Layout(flex_flow="row wrap", align_items="center"))
        row2 = W.HBox([self._exclude, self._sipas_part, self._sipas_max],
                      layout=W.Layout(flex_flow="row wrap", align_items="center"))
        row3 = W.HBox([self._n_boot, self._seed, self._run, self._progress, self._progress_text],
                      layout=W.Layout(flex_flow="row wrap", align_items="center"))
        for row in (row1, row2, row3):
            row.add_class("pi-filters")
        self._body.children = [row1, row2, row3, self._notes, self._tabs, self._exports]
        self._set_options()
        method = self.env.param("method")
        if method in METHODS:
            self._method.value = method
        self.on_change(self._source, self._on_source)
        self.on_change(self._exclude, lambda change: None)
        for w in (self._scatter_x, self._scatter_y):
            self.on_change(w, self._on_scatter)
        self.on_change(self._tabs, lambda change: None, names="selected_index")
        self.on_click(self._run, self._on_run)

    # -- options ------------------------------------------------------------------------
    def _set_options(self) -> None:
        source = self._source.value or "reference"
        sources = [(self.tr("correlation.source_reference"), "reference")]
        if self.model.has_tenant_provinces:
            sources.append((self.tr("correlation.source_tenant"), "tenant"))
        self._source.options = sources
        self._source.value = source if source in [v for _, v in sources] else "reference"
        index = self._index.value or ""
        # "" rather than None: a Dropdown shows no selection for the value None
        self._index.options = [(self.tr("correlation.index_all"), "")] + [(i, i) for i in OTHER_INDICES]
        self._index.value = index
        part = self._sipas_part.value or "field8"
        self._sipas_part.options = [(self.tr("correlation.sipas_part_field8"), "field8"),
                                    (self.tr("correlation.sipas_part_sipas"), "SIPAS")]
        self._sipas_part.value = part
        self._set_years()

    def _set_years(self) -> None:
        current = self._year.value
        years = self.model.years(self._source.value or "reference")
        options = [(self.tr("correlation.year_pooled"), "pooled"), (self.tr("correlation.year_each"), "each")]
        options += [(str(y), y) for y in sorted(years, reverse=True)]
        self._year.options = options
        wanted = self.env.param("year")
        values = [v for _, v in options]
        if current in values:
            self._year.value = current
        elif wanted is not None and wanted.isdigit() and int(wanted) in values:
            self._year.value = int(wanted)
        else:
            self._year.value = "pooled"

    def translate(self) -> None:
        self._source.description = self.tr("correlation.source")
        self._index.description = self.tr("correlation.index")
        self._components.description = self.tr("correlation.components")
        self._method.description = self.tr("correlation.method")
        self._year.description = self.tr("correlation.year")
        self._exclude.description = self.tr("correlation.exclude_sipas")
        self._sipas_part.description = self.tr("correlation.sipas_part")
        self._sipas_max.description = self.tr("correlation.sipas_part_max")
        self._n_boot.description = self.tr("correlation.n_boot")
        self._seed.description = self.tr("correlation.seed")
        self._run.description = self.tr("correlation.run")
        self._progress.description = self.tr("correlation.progress")
        self._scatter_x.description = self.tr("correlation.scatter_x")
        self._scatter_y.description = self.tr("correlation.scatter_y")
        self._tabs.titles = tuple(self.tr(f"correlation.tab_{k}") for k in self.TABS)
        self._set_options()

    # -- events ---------------------------------------------------------------------------
    def _on_source(self, change: dict) -> None:
        with self.syncing():
            self._set_years()

    def _on_scatter(self, change: dict) -> None:
        self._render_scatter()

    def _on_progress(self, done: int, total: int) -> None:
        self._progress.max = max(int(total), 1)
        self._progress.value = int(done)
        self._progress_text.value = f"<span>{esc(self.tr('correlation.running', done=done, total=total))}</span>"

    def _on_run(self) -> None:
        self.clear_message()
        sipas_max = None
        if self._exclude.value:
            text = (self._sipas_max.value or "").strip()
            try:
                sipas_max = read_number(text) if text else None
            except ValueError:
                raise ValidationError("the points of the SIPAS part are a number", [
                    {"column": "sipas_part_max", "value": text,
                     "expected": "the maximum points of field 8 (or of its SIPAS criterion), e.g. 15,5"}]) from None
            if sipas_max is not None and not (math.isfinite(sipas_max) and sipas_max > 0):
                raise ValidationError("the points of the SIPAS part are a number", [
                    {"column": "sipas_part_max", "value": text, "expected": "a number of points > 0"}])
        year = self._year.value
        self._progress.value = 0
        self._progress_text.value = ""
        res = self.model.run(source=self._source.value, index=self._index.value or None, components=self._components.value,
                             method=self._method.value, year=None if year == "each" else year,
                             n_boot=int(self._n_boot.value), seed=int(self._seed.value),
                             exclude_sipas=bool(self._exclude.value), sipas_part=self._sipas_part.value,
                             sipas_part_max=sipas_max, progress=self._on_progress)
        finite = int(np.isfinite(res["r"].to_numpy("float64", na_value=np.nan)).sum())
        self._progress.value = self._progress.max
        self._progress_text.value = ""
        self.show_info(self.tr("correlation.done", n=len(res), finite=finite))
        with self.syncing():
            self._set_scatter_options()
        self._heat_fig = None
        self._scatter_fig = None

    # -- rendering ---------------------------------------------------------------------------
    def refresh(self) -> None:
        res = self.model.result
        if res is None or res.empty:
            self._table.value = f"<p>{esc(self.tr('correlation.no_rows'))}</p>"
            self._notes.value = ""
            self._exports.value = ""
            return
        self._render_notes(res)
        self._render_table(res)
        tab = self.TABS[self._tabs.selected_index or 0]
        if tab == "heatmap":
            self._render_heatmap(res)
        elif tab == "scatter":
            self._render_scatter()
        self._render_exports(res, tab)

    def _render_notes(self, res: pd.DataFrame) -> None:
        notes = []
        if res["note"].astype(str).str.contains(SIPAS_NOTE, regex=False).any():
            notes.append(f'<div class="pi-msg-warning pi-sipas-note">{esc(self.tr("report.sipas_caveat"))}</div>')
        missing = int((~np.isfinite(res["r"].to_numpy("float64", na_value=np.nan))).sum())
        if missing:
            notes.append(f'<p class="pi-missing-note">{esc(self.tr("correlation.missing_note", n=missing))}</p>')
        notes.append(f'<p class="pi-caveat">{esc(self.tr("report.correlation_caveat"))}</p>')
        self._notes.value = "".join(notes)

    def _render_table(self, res: pd.DataFrame) -> None:
        finite = np.isfinite(res["r"].to_numpy("float64", na_value=np.nan))
        shown = res[finite]
        ci = [f"[{self.num(lo, 3)}; {self.num(hi, 3)}]" for lo, hi in zip(shown["ci_low"], shown["ci_high"])]
        table = pd.DataFrame({
            "x": shown["x"].astype(str), "y": shown["y"].astype(str),
            "year": shown["year"].map(lambda v: "" if v is None else str(v)),
            "n": shown["n"].astype(int).astype(str), "r": shown["r"].astype(float), "ci": ci,
            "p": shown["p"].astype(float), "p_adj": shown["p_adj"].astype(float),
            "missing": [f"{a}/{b}" for a, b in zip(shown["n_missing_x"], shown["n_missing_y"])],
            "note": shown["note"].astype(str)})
        heads = [self.tr(f"correlation.col_{k}") for k in ("x", "y", "year", "n", "r", "ci", "p", "p_adj", "missing",
                                                          "note")]
        fmt = {"r": lambda v: self.num(v, 3), "p": lambda v: _p(v, self.lang), "p_adj": lambda v: _p(v, self.lang)}
        self._table.value = html_table(table, headers=heads, css_class="pi-table pi-correlation-table",
                                       formatters=fmt, lang=self.lang, max_rows=300)

    def _set_scatter_options(self) -> None:
        res = self.model.result
        finite = res[np.isfinite(res["r"].to_numpy("float64", na_value=np.nan))] if res is not None else None
        if finite is None or finite.empty:
            self._scatter_x.options, self._scatter_y.options = [], []
            return
        finite = finite[~finite["x"].astype(str).str.startswith("PAR:total_minus")]  # not a column of the data
        if finite.empty:
            self._scatter_x.options, self._scatter_y.options = [], []
            return
        best = finite.iloc[np.argmax(np.abs(finite["r"].to_numpy("float64")))]
        xs = list(dict.fromkeys(finite["x"].astype(str)))
        ys = list(dict.fromkeys(finite["y"].astype(str)))
        self._scatter_x.options = [(v, v) for v in xs]
        self._scatter_y.options = [(v, v) for v in ys]
        self._scatter_x.value = str(best["x"])
        self._scatter_y.value = str(best["y"])

    def _render_heatmap(self, res: pd.DataFrame) -> None:
        if self._heat_fig is None:
            finite = np.isfinite(res["r"].to_numpy("float64", na_value=np.nan))
            keep = set(res.loc[finite, "x"])
            part = res[res["x"].isin(keep)]
            if part.empty:
                self._heatmap.value = b""
                return
            self._heat_fig = correlation_heatmap(part, title=self.tr("report.correlation_title",
                                                                     method=self._method.value))
        self._heatmap.value = figure_bytes(self._heat_fig, "png", dpi=96)

    def _render_scatter(self) -> None:
        x, y = self._scatter_x.value, self._scatter_y.value
        data = self.model.data
        if not x or not y or data is None:
            self._scatter.value = b""
            return
        year = self._year.value
        self._scatter_fig = scatter_fit(data, x, y, year=year if isinstance(year, int) else None)
        self._scatter.value = figure_bytes(self._scatter_fig, "png", dpi=96)

    def _render_exports(self, res: pd.DataFrame, tab: str) -> None:
        stem = f"correlation_{self._method.value}_{self._year.value}"
        links = []
        csv = io.BytesIO()
        write_table(res, csv, "csv")
        links.append(download_link(csv.getvalue(), f"{stem}.csv", "text/csv", self.tr("correlation.export_csv"),
                                   css_class="pi-download pi-export-csv"))
        xlsx = io.BytesIO()
        write_table(res, xlsx, "xlsx", sheet_name="correlation")
        links.append(download_link(xlsx.getvalue(), f"{stem}.xlsx", XLSX, self.tr("correlation.export_xlsx"),
                                   css_class="pi-download pi-export-xlsx"))
        fig = self._heat_fig if tab == "heatmap" else self._scatter_fig if tab == "scatter" else None
        if fig is not None:
            links.append(download_link(figure_bytes(fig, "png"), f"{stem}_{tab}.png", "image/png",
                                       self.tr("correlation.export_png"), css_class="pi-download pi-export-png"))
            links.append(download_link(figure_bytes(fig, "svg"), f"{stem}_{tab}.svg", "image/svg+xml",
                                       self.tr("correlation.export_svg"), css_class="pi-download pi-export-svg"))
        self._exports.value = "".join(links)


def _p(value: Any, lang: str) -> str:
    """A p-value as people read it: 3 significant digits, ``< 0,001`` below."""
    from parindex_lib.i18n import number

    try:
        x = float(value)
    except (TypeError, ValueError):
        return "–"
    if math.isnan(x):
        return "–"
    if x < 0.001:
        return "< " + number(0.001, lang, 3)
    return number(x, lang, 3)
