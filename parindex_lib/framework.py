"""Frameworks: the criteria trees (field -> criterion -> subcriterion) as data.

A framework is read from YAML (format in ``data/frameworks/README.md``),
validated as a whole, and kept in memory as a flat table of nodes, one row
per node in tree order, with a ``parent_code`` column.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .errors import FrameworkError, FrameworkIncompleteError
from .numbers import parse_number

__all__ = [
    "LEVELS",
    "UNIT_KINDS",
    "ASSESSED_BY",
    "DEFAULT_BANDS",
    "NODE_COLUMNS",
    "Framework",
    "load_framework",
    "read_framework_yaml",
    "framework_from_dict",
    "framework_from_nodes",
    "framework_to_dict",
    "framework_to_yaml",
    "shipped_framework_paths",
    "shipped_frameworks",
    "FRAMEWORK_DIR",
]

#: Node levels by depth.
LEVELS = {1: "field", 2: "criterion", 3: "subcriterion"}
#: Kinds of unit, which are also the levels a framework is written for.
UNIT_KINDS = ("ministry", "province", "department", "district", "commune")
ASSESSED_BY = ("self", "survey", "computed")
STATUSES = ("complete", "incomplete", "demo")
#: Default group bands: (group, minimum index_pct).
DEFAULT_BANDS: tuple[tuple[str, float], ...] = (("A", 90.0), ("B", 80.0), ("C", 70.0))
#: Columns of :attr:`Framework.nodes`, in order.
NODE_COLUMNS = [
    "code", "parent_code", "level", "depth", "position", "name_vi", "name_en",
    "max_points", "assessed_by", "guidance_vi", "guidance_en",
    "evidence_required", "rubric", "declared_children", "is_leaf", "notes",
]

FRAMEWORK_DIR = Path(__file__).resolve().parent.parent / "data" / "frameworks"
_ID = re.compile(r"^[a-z0-9_]+$")
_TOL = 1e-9


@dataclass(frozen=True)
class Framework:
    """A criteria tree and its scoring rules.

    Attributes
    ----------
    id, name_vi, name_en, legal_basis : str
    level : str
        One of :data:`UNIT_KINDS`: the level the framework is written for.
    kinds : tuple of str
        The unit kinds it scores (defaults to ``(level,)``).
    declared_counts : tuple of (str, int)
        Node counts per level stated by the source, e.g. ``(("field", 8),
        ("criterion", 37), ("subcriterion", 88))``; a difference with the
        nodes given makes the framework incomplete.
    years : tuple of int
    max_points : float
        The declared total (100 for the national sets).
    status : str
        complete, incomplete or demo.
    bands : tuple of (str, float)
        Group and minimum index_pct, highest first.
    bonus_cap, penalty_cap, survey_points : float or None
    sources : tuple of dict
    notes : str
    nodes : pandas.DataFrame
        One row per node in tree order with the columns of
        :data:`NODE_COLUMNS` (see ``docs/architecture.md``).
    """

    id: str
    name_vi: str
    level: str
    max_points: float
    nodes: pd.DataFrame = field(repr=False, compare=False)
    name_en: str = ""
    legal_basis: str = ""
    years: tuple[int, ...] = ()
    status: str = "complete"
    bands: tuple[tuple[str, float], ...] = DEFAULT_BANDS
    bonus_cap: float | None = None
    penalty_cap: float | None = None
    survey_points: float | None = None
    sources: tuple[dict, ...] = ()
    notes: str = ""
    kinds: tuple[str, ...] = ()
    declared_counts: tuple[tuple[str, int], ...] = ()

    # -- views -----------------------------------------------------------
    @property
    def leaves(self) -> pd.DataFrame:
        """The leaf nodes (where scores are entered), in tree order."""
        return self.nodes[self.nodes["is_leaf"]]

    @property
    def fields(self) -> pd.DataFrame:
        """The depth-1 nodes."""
        return self.nodes[self.nodes["depth"] == 1]

    def node(self, code: str) -> pd.Series:
        """One node by code; KeyError naming the code when absent."""
        hit = self.nodes[self.nodes["code"] == code]
        if hit.empty:
            raise KeyError(f"framework {self.id} has no node {code!r}")
        return hit.iloc[0]

    def name(self, lang: str = "vi") -> str:
        """The framework's name in ``lang`` (falls back to Vietnamese)."""
        return (self.name_en or self.name_vi) if lang == "en" else self.name_vi

    def counts(self) -> dict[str, int]:
        """Number of nodes per level, e.g. ``{"field": 8, ...}``."""
        return {lvl: int((self.nodes["level"] == lvl).sum()) for lvl in LEVELS.values()}

    def unknown_points(self) -> list[str]:
        """Codes of nodes whose max_points is unknown."""
        return self.nodes.loc[self.nodes["max_points"].isna(), "code"].tolist()

    def missing_children(self) -> list[str]:
        """Nodes whose source declares children that are not given.

        Returns codes, plus ``"<level>s: declared N, given M"`` entries where
        the framework's ``declared_counts`` differ from the tree.
        """
        n_children = self.nodes["parent_code"].value_counts()
        declared = self.nodes["declared_children"]
        have = self.nodes["code"].map(n_children).fillna(0)
        mask = declared.notna() & (declared != have)
        out = self.nodes.loc[mask, "code"].tolist()
        counts = self.counts()
        plural = {"field": "fields", "criterion": "criteria", "subcriterion": "subcriteria"}
        for lvl, n in self.declared_counts:
            if counts.get(lvl, 0) != n:
                out.append(f"{plural[lvl]}: declared {n}, given {counts.get(lvl, 0)}")
        return out

    @property
    def scorable(self) -> bool:
        """True when every node's points and children are known."""
        return not self.unknown_points() and not self.missing_children()

    def require_scorable(self) -> None:
        """Raise :class:`FrameworkIncompleteError` unless the tree can be scored."""
        unknown = self.unknown_points()
        if unknown:
            raise FrameworkIncompleteError(self.id, unknown, "unknown max_points on nodes")
        missing = self.missing_children()
        if missing:
            raise FrameworkIncompleteError(self.id, missing, "children declared by the source but not given under nodes")

    def group_of(self, index_pct: float) -> str | None:
        """The group (A, B, C...) of one index_pct, None below the lowest band."""
        if index_pct is None or (isinstance(index_pct, float) and math.isnan(index_pct)):
            return None
        for group, low in self.bands:
            if index_pct >= low - _TOL:
                return group
        return None

    def replace(self, **changes: Any) -> "Framework":
        """A copy with some attributes changed (frameworks never mutate)."""
        return dataclasses.replace(self, **changes)


# -- reading ----------------------------------------------------------------

def _opt_float(value: Any) -> float:
    if value is None:
        return math.nan
    return parse_number(value)


def framework_from_dict(data: dict, source: str = "<dict>") -> Framework:
    """Build and validate a framework from the YAML structure.

    Parameters
    ----------
    data
        The parsed YAML mapping (see ``data/frameworks/README.md``).
    source
        The file name used in error messages.

    Returns
    -------
    Framework

    Raises
    ------
    FrameworkError
        Listing every problem found (file, row = node position, column =
        key, value, expected).
    """
    fails: list[dict] = []

    def fail(row: Any, column: str, value: Any, expected: str) -> None:
        fails.append({"file": source, "row": row, "column": column, "value": value, "expected": expected})

    if not isinstance(data, dict):
        raise FrameworkError(f"{source} is not a framework", [
            {"file": source, "value": type(data).__name__, "expected": "a YAML mapping with id, name_vi, level, max_points, nodes"}])

    fid = data.get("id")
    if not isinstance(fid, str) or not _ID.match(fid):
        fail(None, "id", fid, "an identifier of lower-case letters, digits and _")
    if not data.get("name_vi"):
        fail(None, "name_vi", data.get("name_vi"), "the framework's Vietnamese name")
    level = data.get("level")
    if level not in UNIT_KINDS:
        fail(None, "level", level, "one of " + ", ".join(UNIT_KINDS))
    status = data.get("status", "complete")
    if status not in STATUSES:
        fail(None, "status", status, "one of " + ", ".join(STATUSES))
    try:
        total = _opt_float(data.get("max_points", 100))
    except ValueError:
        total = math.nan
        fail(None, "max_points", data.get("max_points"), "a number (the declared total, e.g. 100)")
    years = data.get("years") or []
    if not isinstance(years, (list, tuple)) or not all(
            isinstance(y, int) and not isinstance(y, bool) and 1990 <= y <= 2100 for y in years):
        fail(None, "years", years, "a list of years such as [2023, 2024]")
        years = []
    bands_raw = data.get("bands")
    bands: list[tuple[str, float]] = list(DEFAULT_BANDS)
    if bands_raw is not None:
        bands = []
        for b in bands_raw if isinstance(bands_raw, (list, tuple)) else [bands_raw]:
            if isinstance(b, (list, tuple)) and len(b) == 2:
                b = {"group": b[0], "min_pct": b[1]}
            try:
                bands.append((str(b["group"]), float(parse_number(b["min_pct"]))))
            except (KeyError, TypeError, ValueError):
                fail(None, "bands", b, "{group: A, min_pct: 90}")
        lows = [b[1] for b in bands]
        if lows != sorted(lows, reverse=True) or any(not 0 <= x <= 100 for x in lows):
            fail(None, "bands", bands_raw, "bands with min_pct between 0 and 100, highest first")
        if len({b[0] for b in bands}) != len(bands):
            fail(None, "bands", bands_raw, "distinct group names")
    caps = {}
    for key in ("bonus_cap", "penalty_cap", "survey_points"):
        raw = data.get(key)
        try:
            caps[key] = None if raw is None else parse_number(raw)
            if caps[key] is not None and caps[key] < 0:
                raise ValueError
        except ValueError:
            caps[key] = None
            fail(None, key, raw, "a number of points >= 0, or nothing")

    rows: list[dict] = []

    def walk(items: Any, parent: str | None, depth: int) -> None:
        if items is None:
            return
        if not isinstance(items, list):
            fail(len(rows), "children" if parent else "nodes", items, "a list of nodes")
            return
        for item in items:
            pos = len(rows)
            if not isinstance(item, dict):
                fail(pos, "node", item, "a mapping with code, name_vi, max_points")
                continue
            code = item.get("code")
            code = None if code is None else str(code).strip()
            if not code:
                fail(pos, "code", item.get("code"), "a node code such as 1, 1.2 or 1.2.3")
                code = f"?{pos}"
            elif parent is not None and not code.startswith(parent + "."):
                fail(pos, "code", code, f"a code under its parent, starting with '{parent}.'")
            if depth > 3:
                fail(pos, "code", code, "at most three levels: field, criterion, subcriterion")
            name_vi = item.get("name_vi")
            if not name_vi:
                fail(pos, "name_vi", name_vi, f"a Vietnamese name for node {code}")
            try:
                mp = _opt_float(item.get("max_points"))
                if not math.isnan(mp) and mp < 0:
                    fail(pos, "max_points", item.get("max_points"), f"points >= 0 for node {code}")
            except ValueError:
                mp = math.nan
                fail(pos, "max_points", item.get("max_points"), f"a number of points for node {code}")
            children = item.get("children") or []
            assessed = item.get("assessed_by") or ("computed" if children else "self")
            if assessed not in ASSESSED_BY:
                fail(pos, "assessed_by", assessed, "one of " + ", ".join(ASSESSED_BY))
            evidence = item.get("evidence_required")
            if evidence is None:
                evidence = assessed == "self" and not children
            rubric = None
            if item.get("rubric") is not None:
                levels = []
                for lv in item["rubric"] if isinstance(item["rubric"], (list, tuple)) else [item["rubric"]]:
                    if isinstance(lv, (list, tuple)) and len(lv) == 3:
                        lv = {"points": lv[0], "label_vi": lv[1], "label_en": lv[2]}
                    try:
                        p = parse_number(lv["points"])
                        if math.isnan(p):
                            raise ValueError
                        levels.append((p, str(lv.get("label_vi", "")), str(lv.get("label_en", lv.get("label_vi", "")))))
                    except (KeyError, TypeError, ValueError):
                        fail(pos, "rubric", lv, "{points: 1, label_vi: ..., label_en: ...}")
                if levels:
                    pts = [p for p, _, _ in levels]
                    if not math.isnan(mp) and (min(pts) < 0 or max(pts) > mp + _TOL):
                        fail(pos, "rubric", pts, f"rubric points between 0 and {mp:g} for node {code}")
                    elif not math.isnan(mp) and abs(max(pts) - mp) > _TOL:
                        fail(pos, "rubric", pts, f"a best rubric level equal to max_points {mp:g} for node {code}")
                    rubric = tuple(sorted(levels, key=lambda t: -t[0]))
                if children:
                    fail(pos, "rubric", "rubric", f"no rubric on node {code}, which has children (rubrics belong on leaves)")
            declared = item.get("declared_children")
            if declared is not None and (not isinstance(declared, int) or isinstance(declared, bool) or declared < 0):
                fail(pos, "declared_children", declared, "a whole number >= 0")
                declared = None
            rows.append({
                "code": code, "parent_code": parent, "level": LEVELS.get(depth, f"level{depth}"),
                "depth": depth, "position": pos, "name_vi": str(name_vi or ""),
                "name_en": str(item.get("name_en") or ""), "max_points": mp,
                "assessed_by": assessed, "guidance_vi": str(item.get("guidance_vi") or ""),
                "guidance_en": str(item.get("guidance_en") or ""),
                "evidence_required": bool(evidence), "rubric": rubric,
                "declared_children": declared, "is_leaf": not children, "notes": str(item.get("notes") or ""),
            })
            unknown_keys = set(item) - {
                "code", "name_vi", "name_en", "max_points", "assessed_by", "guidance_vi", "guidance_en",
                "evidence_required", "rubric", "declared_children", "children", "notes"}
            for k in sorted(unknown_keys):
                fail(pos, k, item[k], "only the keys documented in data/frameworks/README.md")
            walk(children, code, depth + 1)

    kinds = data.get("kinds") or ([level] if level in UNIT_KINDS else [])
    if not isinstance(kinds, (list, tuple)) or any(k not in UNIT_KINDS for k in kinds):
        fail(None, "kinds", kinds, "a list of unit kinds from " + ", ".join(UNIT_KINDS))
        kinds = []
    declared_counts = data.get("declared_counts") or {}
    if isinstance(declared_counts, (list, tuple)):
        declared_counts = dict(declared_counts)
    if not isinstance(declared_counts, dict) or any(
            k not in LEVELS.values() or not isinstance(v, int) or v < 0 for k, v in declared_counts.items()):
        fail(None, "declared_counts", declared_counts, "a mapping such as {field: 8, criterion: 37, subcriterion: 88}")
        declared_counts = {}

    nodes_raw = data.get("nodes")
    if not nodes_raw:
        fail(None, "nodes", nodes_raw, "a list of fields (depth 1 nodes)")
    walk(nodes_raw, None, 1)
    nodes = _nodes_frame(rows)
    fails.extend(_check_tree(nodes, total, source))
    if fails:
        raise FrameworkError(f"framework {source} has problems", fails)
    return Framework(
        id=fid, name_vi=str(data["name_vi"]), name_en=str(data.get("name_en") or ""),
        legal_basis=str(data.get("legal_basis") or ""), level=level, years=tuple(years),
        max_points=total, status=status, bands=tuple(bands),
        bonus_cap=caps["bonus_cap"], penalty_cap=caps["penalty_cap"], survey_points=caps["survey_points"],
        sources=tuple(data.get("sources") or ()), notes=str(data.get("notes") or ""), nodes=nodes,
        kinds=tuple(kinds), declared_counts=tuple(declared_counts.items()),
    )


def _nodes_frame(rows: list[dict]) -> pd.DataFrame:
    nodes = pd.DataFrame(rows, columns=NODE_COLUMNS)
    nodes = nodes.astype({"depth": "int64", "position": "int64", "max_points": "float64",
                          "evidence_required": "bool", "is_leaf": "bool"})
    nodes["code"] = nodes["code"].astype(object)
    nodes["parent_code"] = nodes["parent_code"].astype(object).where(nodes["parent_code"].notna(), None)
    nodes["rubric"] = nodes["rubric"].astype(object)
    nodes["declared_children"] = nodes["declared_children"].astype("Int64")
    return nodes


def _check_tree(nodes: pd.DataFrame, total: float, source: str) -> list[dict]:
    """Duplicate codes and sums, vectorised over the flat node table."""
    fails: list[dict] = []
    dup = nodes[nodes["code"].duplicated(keep=False)]
    for code, grp in dup.groupby("code", sort=False):
        fails.append({"file": source, "row": ", ".join(map(str, grp["position"])), "column": "code",
                      "value": code, "expected": f"a unique code (used {len(grp)} times)"})
    children = nodes[nodes["parent_code"].notna()]
    sums = children.groupby("parent_code", sort=False)["max_points"].agg(
        lambda s: s.sum() if s.notna().all() else math.nan)
    parents = nodes.drop_duplicates("code").set_index("code")
    for code, child_sum in sums.items():
        own = parents.at[code, "max_points"] if code in parents.index else math.nan
        if math.isnan(child_sum) or math.isnan(own):
            continue
        if abs(child_sum - own) > _TOL:
            kids = children.loc[children["parent_code"] == code, ["code", "max_points"]]
            detail = " + ".join(f"{c} {p:g}" for c, p in kids.itertuples(index=False))
            fails.append({"file": source, "row": int(parents.at[code, "position"]), "column": "max_points",
                          "value": float(own), "expected": f"the sum of its children's points for node {code}: {detail} = {child_sum:g}"})
    fields = nodes[nodes["depth"] == 1]
    if not math.isnan(total) and len(fields) and fields["max_points"].notna().all():
        fsum = fields["max_points"].sum()
        if abs(fsum - total) > _TOL:
            fails.append({"file": source, "row": None, "column": "max_points", "value": total,
                          "expected": f"the declared total to equal the sum of the fields ({fsum:g})"})
    return fails


def read_framework_yaml(text: str, source: str = "<text>") -> Framework:
    """Parse YAML text and validate it as a framework.

    Raises
    ------
    FrameworkError
        For YAML syntax errors too (with the line).
    """
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise FrameworkError(f"{source} is not valid YAML", [{
            "file": source, "row": None if mark is None else mark.line + 1, "column": "yaml",
            "value": str(getattr(exc, "problem", exc)) + ("" if mark is None else f" (line {mark.line + 1}, character {mark.column + 1})"),
            "expected": "valid YAML (see data/frameworks/README.md)"}]) from None
    return framework_from_dict(data, source)


def load_framework(path: str | Path) -> Framework:
    """Read and validate a framework YAML file.

    Parameters
    ----------
    path
        A ``.yaml`` file in the format of ``data/frameworks/README.md``, or the
        id of a shipped framework.

    Returns
    -------
    Framework

    Examples
    --------
    >>> fw = load_framework("demo_department_2024")
    >>> fw.counts()
    {'field': 8, 'criterion': 37, 'subcriterion': 88}
    """
    p = Path(path)
    if not p.exists() and _ID.match(str(path)):
        p = FRAMEWORK_DIR / f"{path}.yaml"
    if not p.exists():
        known = ", ".join(sorted(shipped_framework_paths()))
        raise FrameworkError(f"framework {path} not found", [{
            "file": str(path), "value": str(path), "expected": f"a YAML file, or one of the shipped frameworks: {known}"}])
    return read_framework_yaml(p.read_text(encoding="utf-8"), p.name)


def framework_from_nodes(nodes: pd.DataFrame, *, source: str = "<table>", **meta: Any) -> Framework:
    """Build and validate a framework from a flat node table.

    Parameters
    ----------
    nodes
        Columns ``code``, ``parent_code``, ``name_vi``, ``max_points`` and
        optionally ``name_en``, ``assessed_by``, ``guidance_vi``,
        ``guidance_en``, ``evidence_required``, ``rubric``, in tree order.
    **meta
        The framework's own keys (id, name_vi, level, years, max_points...).
    """
    by_parent: dict[Any, list[dict]] = {}
    for rec in nodes.to_dict("records"):
        item = {k: v for k, v in rec.items() if k in {
            "code", "name_vi", "name_en", "max_points", "assessed_by", "guidance_vi", "guidance_en",
            "evidence_required", "rubric", "declared_children", "notes"} and not _blank(v)}
        item["code"] = str(rec["code"])
        parent = rec.get("parent_code")
        by_parent.setdefault(None if _blank(parent) else str(parent), []).append(item)

    def tree(parent: str | None) -> list[dict]:
        out = []
        for item in by_parent.get(parent, []):
            kids = tree(item["code"])
            if kids:
                item = {**item, "children": kids}
            out.append(item)
        return out

    return framework_from_dict({**meta, "nodes": tree(None)}, source)


def _blank(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v == ""


# -- writing ----------------------------------------------------------------

def framework_to_dict(fw: Framework) -> dict:
    """The YAML structure of a framework (inverse of :func:`framework_from_dict`)."""
    by_parent: dict[Any, list[dict]] = {}
    for rec in fw.nodes.to_dict("records"):
        item: dict[str, Any] = {"code": rec["code"], "name_vi": rec["name_vi"]}
        if rec["name_en"]:
            item["name_en"] = rec["name_en"]
        item["max_points"] = None if math.isnan(rec["max_points"]) else _num(rec["max_points"])
        default_assessed = "computed" if not rec["is_leaf"] else "self"
        if rec["assessed_by"] != default_assessed:
            item["assessed_by"] = rec["assessed_by"]
        if bool(rec["evidence_required"]) != (rec["assessed_by"] == "self" and rec["is_leaf"]):
            item["evidence_required"] = bool(rec["evidence_required"])
        for k in ("guidance_vi", "guidance_en"):
            if rec[k]:
                item[k] = rec[k]
        if rec["rubric"]:
            item["rubric"] = [{"points": _num(p), "label_vi": lv, "label_en": le} for p, lv, le in rec["rubric"]]
        if rec["declared_children"] is not None and not pd.isna(rec["declared_children"]):
            item["declared_children"] = int(rec["declared_children"])
        if rec.get("notes"):
            item["notes"] = rec["notes"]
        by_parent.setdefault(rec["parent_code"], []).append(item)

    def tree(parent: str | None) -> list[dict]:
        out = []
        for item in by_parent.get(parent, []):
            kids = tree(item["code"])
            if kids:
                item["children"] = kids
            out.append(item)
        return out

    data: dict[str, Any] = {"id": fw.id, "name_vi": fw.name_vi}
    if fw.name_en:
        data["name_en"] = fw.name_en
    if fw.legal_basis:
        data["legal_basis"] = fw.legal_basis
    data["level"] = fw.level
    if fw.kinds and tuple(fw.kinds) != (fw.level,):
        data["kinds"] = list(fw.kinds)
    if fw.years:
        data["years"] = list(fw.years)
    data["max_points"] = _num(fw.max_points)
    data["status"] = fw.status
    if fw.survey_points is not None:
        data["survey_points"] = _num(fw.survey_points)
    if tuple(fw.bands) != DEFAULT_BANDS:
        data["bands"] = [{"group": g, "min_pct": _num(m)} for g, m in fw.bands]
    for key in ("bonus_cap", "penalty_cap"):
        if getattr(fw, key) is not None:
            data[key] = _num(getattr(fw, key))
    if fw.declared_counts:
        data["declared_counts"] = dict(fw.declared_counts)
    if fw.sources:
        data["sources"] = [dict(s) for s in fw.sources]
    if fw.notes:
        data["notes"] = fw.notes
    data["nodes"] = tree(None)
    return data


def _num(x: float) -> int | float:
    x = float(x)
    return int(x) if x.is_integer() else x


def framework_to_yaml(fw: Framework) -> str:
    """YAML text of a framework; reading it back gives an equal tree."""
    return yaml.safe_dump(framework_to_dict(fw), allow_unicode=True, sort_keys=False, width=100)


# -- shipped frameworks -----------------------------------------------------

def shipped_framework_paths() -> dict[str, Path]:
    """Shipped framework files by id (``data/frameworks/*.yaml``)."""
    return {p.stem: p for p in sorted(FRAMEWORK_DIR.glob("*.yaml"))}


def shipped_frameworks() -> dict[str, Framework]:
    """Every shipped framework, loaded and validated, by id."""
    out = {}
    for stem, path in shipped_framework_paths().items():
        fw = load_framework(path)
        out[fw.id] = fw
    return out

