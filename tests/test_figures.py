"""Figures: drawn on the Agg canvas, marks from p_adj, saved as png and svg."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from parindex_lib.correlation import correlate
from parindex_lib.errors import ValidationError
from parindex_lib.external import load_shipped
from parindex_lib.figures import (
    coefficient_plot,
    correlation_heatmap,
    figure_bytes,
    save_figure,
    scatter_fit,
    significance_marks,
)
from parindex_lib.regression import panel_ols


def _results():
    rows = []
    for year in (2021, 2022):
        for x, y, r, p in [("PAR:total", "PCI:total", 0.61, 0.0004), ("PAR:total", "PAPI:total", 0.32, 0.03),
                           ("PAR:field1", "PCI:total", 0.1, 0.6), ("PAR:field1", "PAPI:total", np.nan, np.nan)]:
            rows.append({"x": x, "y": y, "year": year, "method": "spearman", "r": r, "p_adj": p})
    return pd.DataFrame(rows)


def test_significance_marks_follow_the_adjusted_p():
    assert [significance_marks(p) for p in (0.0009, 0.001, 0.009, 0.01, 0.049, 0.05, None)] == \
        ["***", "**", "**", "*", "*", "", ""]


def test_heatmap_has_one_panel_per_year_and_stars_from_p_adj():
    fig = correlation_heatmap(_results())
    assert isinstance(fig, Figure)
    heat_axes = [ax for ax in fig.axes if ax.get_title() in ("2021", "2022")]
    assert len(heat_axes) == 2
    texts = [t.get_text() for t in heat_axes[0].texts]
    assert "0.61\n***" in texts and "0.32\n*" in texts and "0.10" in texts
    assert len(texts) == 3  # the NaN cell stays empty
    with pytest.raises(ValidationError):
        correlation_heatmap(pd.concat([_results(), _results().assign(method="pearson")]))


def test_heatmap_of_a_real_study(tmp_path):
    res = correlate(load_shipped(), x="PAR:total", y=["PCI", "PAPI:total"], year=2021, n_boot=0)
    fig = correlation_heatmap(res)
    out = save_figure(fig, tmp_path / "heat.svg")
    assert out.read_text("utf-8").lstrip().startswith("<?xml") and "<svg" in out.read_text("utf-8")


def test_scatter_with_fit_and_province_labels(tmp_path):
    fig = scatter_fit(load_shipped(), "PAR:total", "PCI:total", year=2021)
    ax = fig.axes[0]
    labels = {t.get_text() for t in ax.texts}
    assert {"Quảng Ninh", "Hải Phòng", "Bà Rịa - Vũng Tàu"} <= labels
    assert ax.get_title().startswith("n = 13")
    png = save_figure(fig, tmp_path / "scatter.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wide = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [2.0, 1, 4, 3], "name": list("ABCD")})
    assert {t.get_text() for t in scatter_fit(wide, "a", "b", label="name").axes[0].texts} == set("ABCD")
    with pytest.raises(ValidationError):
        scatter_fit(wide, "a", "zzz")


def test_coefficient_plot_leaves_out_intercept_and_year_effects():
    rng = np.random.default_rng(0)
    wide = pd.DataFrame({"province_code": [f"{i:02d}" for i in range(30)] * 2, "year": [2021] * 30 + [2022] * 30,
                         "a": rng.normal(size=60), "b": rng.normal(size=60)})
    wide["y"] = wide["a"] + rng.normal(size=60)
    tidy, _ = panel_ols(wide, "y", ["a", "b"])
    fig = coefficient_plot(tidy)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]
    assert "cluster(province_code, G=30)" in fig.axes[0].get_title()
    assert figure_bytes(fig, "svg").lstrip().startswith(b"<?xml")


def test_only_png_and_svg():
    with pytest.raises(ValidationError):
        save_figure(correlation_heatmap(_results()), "heat.pdf")
    with pytest.raises(ValidationError):
        figure_bytes(correlation_heatmap(_results()), "jpg")


MY_MODULES = ["provinces", "external", "correlation", "regression", "sensitivity", "figures"]


@pytest.mark.parametrize("name", MY_MODULES)
def test_the_library_imports_no_widgets_and_never_shows(name):
    """Static check of the imports: no ipywidgets/voila/IPython, no pyplot, seaborn only inside functions."""
    import ast
    from pathlib import Path

    import parindex_lib

    source = (Path(parindex_lib.__file__).parent / f"{name}.py").read_text("utf-8")
    tree = ast.parse(source)
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
    assert not [m for m in imported if m.split(".")[0] in ("ipywidgets", "voila", "IPython")]
    assert "matplotlib.pyplot" not in imported and ".show(" not in source
    top = [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]
    top += [n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module]
    assert "seaborn" not in top


def test_figures_use_the_agg_canvas():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    assert isinstance(correlation_heatmap(_results()).canvas, FigureCanvasAgg)
