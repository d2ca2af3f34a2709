"""The curated public API: every name resolves, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import parindex_lib


def test_every_public_name_resolves():
    for name in parindex_lib.__all__:
        assert getattr(parindex_lib, name) is not None, name


def test_importing_the_package_loads_no_heavy_module():
    code = ("import sys, parindex_lib; parindex_lib.Store; "
            "print(sorted(m for m in ('statsmodels', 'matplotlib', 'seaborn', 'scipy', 'ipywidgets', 'voila') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_library_never_imports_the_ui():
    from pathlib import Path
    import re

    root = Path(parindex_lib.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if re.search(r"^\s*(import|from)\s+(ipywidgets|widgets|voila)\b", p.read_text(encoding="utf-8"), re.M)]
    assert offenders == []
