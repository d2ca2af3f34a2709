"""environment.yml (conda) and pyproject.toml (pip) list the same dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# PyPI name -> conda-forge name where they differ.
CONDA_NAME = {"psycopg[binary]": "psycopg"}


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^([A-Za-z0-9_.\-\[\]]+)\s*(.*)$", req.strip())
    assert m, req
    return m.group(1).lower(), m.group(2).replace(" ", "")


def _pyproject(path: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    data = tomllib.loads(path.read_text())
    reqs = data["project"]["dependencies"] + data["project"]["optional-dependencies"]["dev"]
    out = {}
    for req in reqs:
        name, spec = _split(req)
        out[CONDA_NAME.get(name, name)] = spec
    return out


def _environment(path: Path = ROOT / "environment.yml") -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    out = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-e") or item.split(">")[0].split("=")[0] in {"python", "pip"}:
                continue
            name, spec = _split(item)
            out[name] = spec
    return out


def drift(py: dict[str, str], env: dict[str, str]) -> list[str]:
    """Every difference between the two lists, as sentences."""
    out = [f"{k} only in pyproject.toml" for k in sorted(set(py) - set(env))]
    out += [f"{k} only in environment.yml" for k in sorted(set(env) - set(py))]
    out += [f"{k}: pyproject {py[k]!r}, environment.yml {env[k]!r}" for k in sorted(set(py) & set(env)) if py[k] != env[k]]
    return out


def test_same_packages_and_bounds():
    assert drift(_pyproject(), _environment()) == []


def test_conda_channel_is_conda_forge_only():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]


def test_drift_is_detected(tmp_path):
    """The check fails on a dropped package and on a changed bound."""
    text = (ROOT / "environment.yml").read_text()
    changed = text.replace("  - seaborn>=0.13\n", "").replace("pandas>=2.2", "pandas>=2.1")
    assert changed != text
    (tmp_path / "environment.yml").write_text(changed)
    assert drift(_pyproject(), _environment(tmp_path / "environment.yml")) == [
        "seaborn only in pyproject.toml", "pandas: pyproject '>=2.2', environment.yml '>=2.1'"]
