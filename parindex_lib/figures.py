"""Figures of the studies: correlation heatmap, scatter with fit, coefficient plot.

Figures are :class:`matplotlib.figure.Figure` objects drawn on the Agg
canvas, never through pyplot's global state, so they are safe in a server
(Voilà) and never open a window; seaborn draws on their axes. seaborn is
imported when a figure is drawn, not with this module, because importing
seaborn imports ipywidgets when it is installed (for ``seaborn.widgets``),
and the library itself must not pull in widgets. Save them with
:func:`save_figure` (png or svg, by extension) or get the bytes with
:func:`figure_bytes` for a widget or a report.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from .errors import ValidationError

__all__ = [
    "FORMATS",
    "significance_marks",
    "correlation_heatmap",
    "scatter_fit",
    "coefficient_plot",
    "save_figure",
    "figure_bytes",
]

#: File formats of :func:`save_figure`.
FORMATS = ("png", "svg")
_MARKS_NOTE = "* p_adj < 0.05   ** p_adj < 0.01   *** p_adj < 0.001 (Benjamini-Hochberg)"


def _sns():
    import seaborn

    return seaborn


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def significance_marks(p: Any) -> str:
    """Stars for an (adjusted) p-value.

    Examples
    --------
    >>> [significance_marks(p) for p in (0.0004, 0.004, 0.04, 0.4, float("nan"))]
    ['***', '**', '*', '', '']
    """
    try:
        p = float(p)
    except (TypeError, ValueError):
        return ""
    if math.isnan(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def correlation_heatmap(results: pd.DataFrame, *, value: str = "r", title: str | None = None,
                        annotate: bool = True) -> Figure:
    """Heatmap of a correlation study, one panel per year, with significance marks.

    Parameters
    ----------
    results
        The table of :func:`parindex_lib.correlation.correlate` (columns
        ``x``, ``y``, ``year``, ``method``, ``value``, ``p_adj``), one method.
    value
        The column coloured (``"r"``).
    title
        Figure title (default: the method).
    annotate
        Write the value and the stars (on ``p_adj``) in every cell.

    Returns
    -------
    matplotlib.figure.Figure
        x variables as rows, y variables as columns, colour from -1 to 1;
        empty cells where the coefficient is NaN. A footnote explains the
        stars.

    Raises
    ------
    ValidationError
        When columns are missing, the table mixes methods, or is empty.
    """
    need = ["x", "y", "year", "method", value, "p_adj"]
    missing = [c for c in need if c not in results.columns]
    if missing or results.empty:
        raise ValidationError("a correlation table is needed", [
            {"column": c, "expected": "the columns of correlate()"} for c in missing or ["x"]])
    methods = list(dict.fromkeys(results["method"]))
    if len(methods) > 1:
        raise ValidationError("one method per heatmap", [{"column": "method", "value": ", ".join(methods),
                                                          "expected": "filter the table to one method"}])
    years = list(dict.fromkeys(results["year"].tolist()))
    xs = list(dict.fromkeys(results["x"]))
    ys = list(dict.fromkeys(results["y"]))
    longest_x = max(len(str(v)) for v in xs)
    longest_y = max(len(str(v)) for v in ys)
    width = min(2.5 + 0.08 * longest_x + 0.55 * len(ys) * len(years), 40)
    height = min(2.0 + 0.45 * len(xs) + 0.08 * longest_y, 30)
    sns = _sns()
    fig = _new_figure(width, height)
    axes = fig.subplots(1, len(years), squeeze=False, sharey=True)[0]
    for k, (ax, year) in enumerate(zip(axes, years)):
        part = results[results["year"].astype(str) == str(year)]
        grid = part.pivot_table(index="x", columns="y", values=value, aggfunc="first", dropna=False)
        grid = grid.reindex(index=xs, columns=ys).astype(float)
        padj = part.pivot_table(index="x", columns="y", values="p_adj", aggfunc="first", dropna=False)
        padj = padj.reindex(index=xs, columns=ys)
        labels = np.full(grid.shape, "", dtype=object)
        if annotate:
            for i in range(grid.shape[0]):
                for j in range(grid.shape[1]):
                    v = grid.iat[i, j]
                    if np.isfinite(v):
                        labels[i, j] = f"{v:.2f}\n{significance_marks(padj.iat[i, j])}".rstrip()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)  # seaborn's own use of Colormap.set_bad
            sns.heatmap(grid, ax=ax, vmin=-1, vmax=1, center=0, cmap="RdBu_r",
                        annot=labels if annotate else False, fmt="", annot_kws={"fontsize": 7},
                        cbar=k == len(years) - 1, linewidths=0.5, linecolor="white",
                        mask=~np.isfinite(grid.to_numpy()))
        ax.set_title("pooled" if str(year) == "pooled" else str(year) if year is not None else "")
        ax.set_xlabel("")
        ax.set_ylabel("PAR INDEX" if k == 0 and all(str(v).startswith("PAR:") for v in xs) else "")
        ax.tick_params(axis="x", labelrotation=90, labelsize=7)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(title or f"{methods[0].capitalize()} correlation")
    fig.supxlabel(_MARKS_NOTE, fontsize=7)
    return fig


def _scatter_table(data: pd.DataFrame, x: str, y: str, label: str | None, year: Any) -> pd.DataFrame:
    if {"index", "component", "value"} <= set(data.columns):
        from .external import to_wide

        unit = "province_code" if "province_code" in data.columns else "unit_code"
        wide = to_wide(data if "year" in data.columns else data.assign(year=0), unit=unit)
        if label and label in data.columns:
            names = data.drop_duplicates(unit).set_index(unit)[label]
            wide[label] = wide[unit].map(names)
    else:
        wide = data.copy()
    missing = [c for c in (x, y) if c not in wide.columns]
    if missing:
        raise ValidationError("variables not in the data", [
            {"column": c, "expected": "a variable of the data, e.g. 'PAR:total' or a column name"} for c in missing])
    if year is not None and "year" in wide.columns:
        wide = wide[wide["year"] == int(year)]
    return wide.dropna(subset=[x, y])


def scatter_fit(data: pd.DataFrame, x: str, y: str, *, label: str | None = "province_name", year: Any = None,
                title: str | None = None) -> Figure:
    """Scatter of two variables with a least-squares line, its 95% band and unit labels.

    Parameters
    ----------
    data
        Long (variables ``"INDEX:component"``, labels from
        ``province_name``) or wide data.
    x, y
        The variables.
    label
        Column whose text labels each point (None: no labels).
    year
        One year; None keeps all rows (coloured by year when there are
        several).
    title
        Default: "y against x".

    Returns
    -------
    matplotlib.figure.Figure
        The subtitle gives n and Pearson's r of the points shown.
    """
    tab = _scatter_table(data, x, y, label, year)
    if len(tab) < 2:
        raise ValidationError("too few points to draw", [{"column": f"{x}, {y}", "value": len(tab),
                                                          "expected": "at least 2 units with both values"}])
    sns = _sns()
    fig = _new_figure(7, 5.5)
    ax = fig.subplots()
    several = "year" in tab.columns and tab["year"].nunique() > 1
    sns.scatterplot(data=tab, x=x, y=y, ax=ax, hue="year" if several else None,
                    palette="viridis" if several else None, s=30)
    sns.regplot(data=tab, x=x, y=y, ax=ax, scatter=False, ci=95, color="0.3", line_kws={"linewidth": 1})
    if label and label in tab.columns:
        for xv, yv, text in zip(tab[x], tab[y], tab[label]):
            if isinstance(text, str) and text:
                ax.annotate(text, (xv, yv), xytext=(3, 3), textcoords="offset points", fontsize=6, alpha=0.8)
    r = stats.pearsonr(tab[x], tab[y]).statistic if len(tab) > 2 and tab[x].nunique() > 1 and tab[y].nunique() > 1 \
        else float("nan")
    ax.set_title(f"n = {len(tab)}, Pearson r = {r:.2f}" if np.isfinite(r) else f"n = {len(tab)}", fontsize=9)
    fig.suptitle(title or f"{y} against {x}")
    return fig


def coefficient_plot(tidy: pd.DataFrame, *, drop: Sequence[str] = ("Intercept",), drop_year_effects: bool = True,
                     title: str | None = None) -> Figure:
    """Estimates with their confidence intervals, one line per term.

    Parameters
    ----------
    tidy
        The tidy table of :func:`parindex_lib.regression.panel_ols`
        (``term``, ``estimate``, ``ci_low``, ``ci_high``; ``se_type`` and
        ``n`` used in the subtitle when present).
    drop
        Terms left out (the intercept by default).
    drop_year_effects
        Leave out the ``year[...]`` terms.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    need = ["term", "estimate", "ci_low", "ci_high"]
    missing = [c for c in need if c not in tidy.columns]
    if missing:
        raise ValidationError("a tidy regression table is needed", [
            {"column": c, "expected": "the columns of panel_ols()"} for c in missing])
    tab = tidy[~tidy["term"].isin(drop)]
    if drop_year_effects:
        tab = tab[~tab["term"].str.startswith("year[")]
    if tab.empty:
        raise ValidationError("no term to draw", [{"column": "term", "expected": "a term besides those dropped"}])
    sns = _sns()
    fig = _new_figure(6.5, 1.5 + 0.4 * len(tab))
    ax = fig.subplots()
    pos = np.arange(len(tab))[::-1]
    ax.errorbar(tab["estimate"], pos, xerr=[tab["estimate"] - tab["ci_low"], tab["ci_high"] - tab["estimate"]],
                fmt="o", color=sns.color_palette()[0], ecolor="0.4", capsize=3)
    ax.axvline(0, color="0.6", linewidth=0.8, linestyle="--")
    ax.set_yticks(pos, tab["term"].tolist())
    ax.set_xlabel("estimate (confidence interval)")
    sub = []
    if "n" in tab.columns:
        sub.append(f"n = {int(tab['n'].iloc[0])}")
    if "se_type" in tab.columns:
        sub.append(f"SE: {tab['se_type'].iloc[0]}")
    if sub:
        ax.set_title(", ".join(sub), fontsize=9)
    fig.suptitle(title or "Coefficients")
    return fig


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 150) -> Path:
    """Write a figure as png or svg, chosen by the file extension.

    Parameters
    ----------
    fig
        The figure.
    path
        Ends in ``.png`` or ``.svg``.
    dpi
        Resolution of png files.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValidationError
        For another extension.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValidationError("figures are saved as png or svg", [
            {"file": path.name, "value": path.suffix, "expected": ".png or .svg"}])
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight")
    return path


def figure_bytes(fig: Figure, format: str = "png", *, dpi: int = 150) -> bytes:
    """The figure as png or svg bytes (for an image widget or an HTML report)."""
    if format not in FORMATS:
        raise ValidationError("figures are rendered as png or svg", [
            {"column": "format", "value": format, "expected": "'png' or 'svg'"}])
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format=format, dpi=dpi, bbox_inches="tight")
    return buf.getvalue()
