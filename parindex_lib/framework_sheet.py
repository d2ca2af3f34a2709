"""Scoring sheets: the criteria table that a decision annexes, as a framework.

Provinces publish their criteria sets as a table in the annex of a decision
("Bảng chấm điểm", "Bộ tiêu chí"): one row per field, criterion and
subcriterion, the hierarchy given by the numbering, and the maximum points of
each row. This module reads that layout (xlsx or csv) into a
:class:`~parindex_lib.framework.Framework` and writes a framework back in the
same layout.

The layout
----------
Title rows (merged or not) may come first; they are skipped, except that the
title becomes the framework's name and a line such as "(Kèm theo Quyết định
số .../QĐ-UBND ...)" or "Căn cứ: ..." its legal basis. Then a header row with
at least these columns, matched case- and diacritics-insensitively:

=========================  ===========================================
column                     also recognised
=========================  ===========================================
STT                        TT, Số TT, Mã, Mã tiêu chí, Code
Nội dung (tiêu chí)        Lĩnh vực/tiêu chí..., Tên tiêu chí, Content
Điểm tối đa                Thang điểm, Điểm chuẩn, Điểm, Max points
=========================  ===========================================

and optionally "Điểm điều tra XHH" (survey points), "Hướng dẫn chấm"
(guidance), "Tài liệu kiểm chứng" (evidence), "Tên tiếng Anh" (name_en),
"Hướng dẫn chấm (tiếng Anh)" (guidance_en) and "Các mức điểm" (rubric, one
level a line: ``0,5 | Đúng hạn | On time``). Other columns (self-scores,
notes) are ignored.

Numbering gives the hierarchy: either dotted codes ``1``, ``1.1``,
``1.1.1`` (kept as the node codes), or Roman / Arabic / letter ``I``, ``1``,
``a`` (variants ``I.``, ``1.``, ``1)``, ``a)``, ``(a)``), converted to the
codes ``1``, ``1.1``, ``1.1.1`` by position. Letters under dotted codes sit
one level below the last dotted row. Points may use a decimal comma. A parent
whose points are blank or ``x`` gets the sum of its children. A row "Tổng
cộng" / "TỔNG ĐIỂM" gives the declared total and ends the table. A leaf with
points in the survey column is assessed by survey; in a sheet without that
column, so is a leaf whose content (or an ancestor's) mentions "điều tra xã
hội học". A row without a number and without points continues the guidance
of the row above.

Not carried by the layout: ``declared_children``, and leaves assessed as
``computed`` (they come back as ``self``).
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from .errors import FrameworkError
from .framework import Framework, framework_from_nodes
from .numbers import parse_number
from .safety import check_file, escape_formula, unescape_formula

__all__ = ["SHEET_COLUMNS", "read_framework_sheet", "write_framework_sheet"]

#: Column headers written by :func:`write_framework_sheet`, by role, in order.
SHEET_COLUMNS = {
    "code": "STT",
    "content": "Nội dung (tiêu chí)",
    "points": "Điểm tối đa",
    "survey": "Điểm điều tra XHH",
    "guidance": "Hướng dẫn chấm",
    "evidence": "Tài liệu kiểm chứng",
    "name_en": "Tên tiếng Anh",
    "guidance_en": "Hướng dẫn chấm (tiếng Anh)",
    "rubric": "Các mức điểm",
}

_TOTAL_LABEL = "TỔNG CỘNG"
_LEGAL_PREFIX = "Căn cứ: "
_HEADER_SCAN = 50
_TOL = 1e-9
_NUMBERING = ("a number such as 1, 1.1, 1.1.1, or I, 1, a "
              "(also written I., 1., 1), a), (a))")


# -- text helpers -------------------------------------------------------------

def _fold(text: Any) -> str:
    """Lower-case ASCII words: NFC, no diacritics, đ -> d, punctuation -> space."""
    s = unicodedata.normalize("NFD", unicodedata.normalize("NFC", str(text)))
    s = "".join(ch for ch in s if unicodedata.category(ch) != "Mn")
    s = s.replace("đ", "d").replace("Đ", "D").casefold()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", s).split())


def _text(value: Any) -> str:
    """A cell as text (NFC, stripped); numbers without a trailing .0."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() else format(value, ".15g")
    if isinstance(value, int):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return unicodedata.normalize("NFC", str(value)).strip()


def _has(folded: str, *phrases: str) -> bool:
    return any(re.search(rf"(^| ){re.escape(p)}( |$)", folded) for p in phrases)


# -- header ---------------------------------------------------------------------

def _role(header: str) -> str | None:
    """The role of one header cell, or None for columns parindex ignores."""
    h = _fold(header)
    if not h:
        return None
    english = _has(h, "tieng anh", "english", "en")
    if _has(h, "huong dan", "guidance", "cach cham") and english:
        return "guidance_en"
    if english:
        return "name_en"
    if _has(h, "huong dan", "cach cham", "phuong phap cham", "cach tinh diem", "guidance"):
        return "guidance"
    if _has(h, "kiem chung", "evidence"):
        return "evidence"
    if _has(h, "muc diem", "rubric"):
        return "rubric"
    if _has(h, "xhh", "xa hoi hoc", "dieu tra", "survey"):
        return "survey"
    if _has(h, "diem toi da", "thang diem", "diem chuan", "so diem toi da", "max points", "max_points") or h in {"diem", "points"}:
        return "points"
    if h in {"stt", "tt", "so tt", "so thu tu", "ma", "ma so", "ma tieu chi", "code", "no", "ky hieu"}:
        return "code"
    if _has(h, "noi dung", "tieu chi", "linh vuc", "ten", "content", "criterion", "criteria", "name vi"):
        return "content"
    return None


def _find_header(grid: list[list[Any]]) -> tuple[int, dict[str, int]] | None:
    """(row index, {role: column index}) of the first header row, or None."""
    for r, row in enumerate(grid[:_HEADER_SCAN]):
        roles: dict[str, int] = {}
        for c, cell in enumerate(row):
            role = _role(_text(cell))
            if role and role not in roles:
                roles[role] = c
        if {"code", "content"} <= roles.keys() and ("points" in roles or "survey" in roles):
            return r, roles
    return None


# -- numbering ------------------------------------------------------------------

_DOTTED = re.compile(r"^\(?(\d+(?:\.\d+)*)[.)]?$")
_ROMAN = re.compile(r"^\(?([IVX]+)[.)]?$")
_ROMAN_OK = re.compile(r"^X{0,3}(IX|IV|V?I{0,3})$")
_LETTER = re.compile(r"^\(?([a-zđ])[.)]?$")
_BULLET = re.compile(r"^[-+*•–—]+$")


def _numbering(token: str) -> tuple[str, Any] | None:
    """("dotted", "1.2") | ("roman", "II") | ("letter", "b") | ("bullet", "-") | None."""
    t = re.sub(r"\s+", "", token)
    if m := _DOTTED.match(t):
        return "dotted", m.group(1)
    if (m := _ROMAN.match(t)) and _ROMAN_OK.match(m.group(1)):
        return "roman", m.group(1)
    if m := _LETTER.match(t):
        return "letter", m.group(1)
    if _BULLET.match(t):
        return "bullet", t
    return None


# -- points ---------------------------------------------------------------------

_X = object()


def _points(value: Any) -> Any:
    """float (NaN when blank), the marker _X for "x", or raise ValueError."""
    if isinstance(value, str):
        s = value.strip()
        if s.casefold() == "x":
            return _X
        if s in {"-", "–", "—"}:
            return math.nan
        return parse_number(s)
    if value is None:
        return math.nan
    if hasattr(value, "isoformat"):
        raise ValueError(f"{value!r} is a date")
    return parse_number(value)


_KEY_ROLE = {"code": "code", "name_vi": "content", "max_points": "points", "name_en": "name_en",
             "guidance_vi": "guidance", "guidance_en": "guidance_en", "rubric": "rubric",
             "evidence_required": "evidence", "assessed_by": "survey"}
_YES = {"co", "x", "yes", "true", "1", "bat buoc", "can"}
_NO = {"khong", "no", "false", "0", "khong bat buoc", "khong can"}
_SURVEY_TEXT = re.compile(r"dieu tra (xa hoi hoc|xhh)")
_TOTAL_TEXT = re.compile(r"^(tong cong|tong diem|tong so diem)( |$)|^(tong|cong|tong so)$")


@dataclass
class _Row:
    row: int                       # spreadsheet row (1-based)
    depth: int
    code: str
    parent: "_Row | None"
    name_vi: str
    points: float
    marked_x: bool
    survey: float
    survey_text: bool
    letter: bool = False
    name_en: str = ""
    guidance_vi: str = ""
    guidance_en: str = ""
    evidence: bool | None = None
    rubric: list[dict] | None = None
    children: list["_Row"] = field(default_factory=list)


# -- reading --------------------------------------------------------------------

def read_framework_sheet(
    path: str | Path,
    *,
    sheet: str | int | None = None,
    id: str | None = None,
    name_vi: str | None = None,
    level: str | None = None,
    years: Iterable[int] = (),
    max_points: float | None = None,
    **meta: Any,
) -> Framework:
    """Read a scoring sheet (the layout of the module docstring) as a framework.

    Parameters
    ----------
    path
        An ``.xlsx`` workbook (read with python-calamine) or a ``.csv``
        file (UTF-8, with or without BOM, or Windows-1258; comma, semicolon
        or tab separated). The file is first checked by
        :func:`parindex_lib.safety.check_file` (size, legacy ``.xls``,
        renamed files, zip and XML bombs).
    sheet
        Sheet name or 0-based index; by default the first sheet with a
        header row.
    id
        The framework id; by default made from the file name.
    name_vi
        The framework's name; by default the title row above the header
        (the row mentioning "tiêu chí" or "chỉ số"), else the file name.
    level
        One of ministry, province, department, district, commune; by default
        guessed from the title ("cấp tỉnh", "sở, ban, ngành", "cấp huyện",
        "cấp xã", "cấp bộ"), else province.
    years
        The years the framework applies to.
    max_points
        The declared total; by default the "Tổng cộng" row, else the sum of
        the fields, else 100.
    **meta
        Other framework keys (name_en, legal_basis, kinds, status, bands,
        bonus_cap, penalty_cap, survey_points, sources, notes,
        declared_counts), as in the YAML format or as
        :class:`~parindex_lib.framework.Framework` attributes. By default
        ``status`` is complete when every node's points are known (else
        incomplete), ``survey_points`` is the sum of the survey leaves and
        ``legal_basis`` comes from the title rows.

    Returns
    -------
    Framework

    Raises
    ------
    FileRefused
        When the safety check refuses the file.
    FrameworkError
        (a :class:`~parindex_lib.errors.ValidationError`) listing every bad
        row: ``file``, ``sheet``, ``row`` (as numbered in the spreadsheet),
        ``column`` (the header as written), ``value`` and ``expected``, for
        unreadable numbering, numbering that skips a level, points that are
        not numbers, parents whose children do not add up, and a total that
        is not the sum of the fields.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from parindex_lib.framework import load_framework
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.xlsx"
    >>> _ = write_framework_sheet(load_framework("demo_department_2024"), path)
    >>> fw = read_framework_sheet(path, id="demo_copy")
    >>> fw.counts(), fw.max_points, fw.level, fw.survey_points
    ({'field': 8, 'criterion': 37, 'subcriterion': 88}, 100.0, 'department', 25.0)
    """
    path = Path(path)
    fname = path.name
    sheets = _read_grids(path, sheet)
    found = None
    for sheet_name, grid in sheets:
        hdr = _find_header(grid)
        if hdr is not None:
            found = sheet_name, grid, hdr
            break
    if found is None:
        raise FrameworkError(f"{fname}: no scoring table found", [
            {"file": fname, "sheet": s, "row": None, "column": None,
             "value": _first_texts(g), "expected": "a header row with the columns STT, Nội dung (tiêu chí) and "
             f"Điểm tối đa within the first {_HEADER_SCAN} rows"} for s, g in sheets] or [
            {"file": fname, "expected": "a workbook with at least one sheet"}])
    sheet_name, grid, (hrow, roles) = found
    headers = {role: _text(grid[hrow][c]) for role, c in roles.items()}
    fails: list[dict] = []

    def fail(row: int | None, role: str | None, value: Any, expected: str) -> None:
        fails.append({"file": fname, "sheet": sheet_name, "row": row,
                      "column": headers.get(role, role) if role else None,
                      "value": value, "expected": expected})

    title, legal = _titles(grid[:hrow])
    kinds = (_numbering(_text(_cell(r, roles["code"]))) for r in grid[hrow + 1:])
    roman = any(k is not None and k[0] == "roman" for k in kinds)
    nodes: list[_Row] = []
    stack: list[_Row] = []
    total: float | None = None
    total_row: int | None = None
    for i in range(hrow + 1, len(grid)):
        raw = grid[i]
        rownum = i + 1
        get = lambda role: _cell(raw, roles[role]) if role in roles else None  # noqa: E731
        code_txt = _text(get("code"))
        content = _text(get("content"))
        if not any(_text(v) for v in raw):
            continue
        if _is_column_numbers(code_txt, content):
            continue
        pts = _read_cell_points(get("points"), rownum, "points", fail) if "points" in roles else math.nan
        srv = _read_cell_points(get("survey"), rownum, "survey", fail) if "survey" in roles else math.nan
        num = _numbering(code_txt) if code_txt else None
        if (not code_txt or num is None) and (_TOTAL_TEXT.match(_fold(content)) or _TOTAL_TEXT.match(_fold(code_txt))):
            value = pts if isinstance(pts, float) and not math.isnan(pts) else srv
            total = value if isinstance(value, float) and not math.isnan(value) else None
            total_row = rownum
            if nodes:
                break
            continue
        has_points = (pts is _X) or (isinstance(pts, float) and not math.isnan(pts)) or (
            isinstance(srv, float) and not math.isnan(srv))
        if not code_txt or (num is not None and num[0] == "bullet"):
            if has_points:
                fail(rownum, "code", code_txt, _NUMBERING + " on a row that carries points")
            elif content and nodes:
                prev = nodes[-1]
                prev.guidance_vi = f"{prev.guidance_vi}\n{content}".strip() if prev.guidance_vi else content
            continue
        if num is None:
            fail(rownum, "code", code_txt, _NUMBERING)
            continue
        kind, val = num
        if kind == "roman":
            depth = 1
        elif kind == "dotted":
            depth = val.count(".") + 1 + (1 if roman else 0)
        elif roman:
            depth = 3
        else:
            above = next((n for n in reversed(stack) if not n.letter), None)
            depth = above.depth + 1 if above else 1
        if depth > len(stack) + 1:
            want = "a field number (1 or I)" if not stack else f"a number one level below {stack[-1].code} at most"
            fail(rownum, "code", code_txt, f"{want}: numbering may not skip a level")
            continue
        if depth > 3:
            fail(rownum, "code", code_txt, "at most three levels: field, criterion, subcriterion")
            continue
        parent = stack[depth - 2] if depth > 1 else None
        siblings = parent.children if parent else [n for n in nodes if n.depth == 1]
        if kind == "dotted" and not roman:
            code = val
            if parent is not None and not code.startswith(parent.code + "."):
                fail(rownum, "code", code_txt, f"a number under its parent {parent.code} (such as {parent.code}.1)")
                continue
        else:
            code = f"{parent.code}.{len(siblings) + 1}" if parent else str(len(siblings) + 1)
        survey_text = "survey" not in roles and bool(_SURVEY_TEXT.search(_fold(content)))
        node = _Row(row=rownum, depth=depth, code=code, parent=parent, name_vi=content,
                    points=math.nan if pts is _X else pts, marked_x=pts is _X,
                    survey=math.nan if srv is _X else srv, survey_text=survey_text, letter=kind == "letter")
        if not content:
            fail(rownum, "content", content, f"the name of node {code}")
        node.name_en = _text(get("name_en"))
        node.guidance_vi = _text(get("guidance"))
        node.guidance_en = _text(get("guidance_en"))
        ev = _text(get("evidence"))
        if ev:
            folded = _fold(ev)
            if folded in _YES:
                node.evidence = True
            elif folded in _NO:
                node.evidence = False
            else:
                node.evidence = True
                extra = f"Tài liệu kiểm chứng: {ev}"
                node.guidance_vi = f"{node.guidance_vi}\n{extra}" if node.guidance_vi else extra
        rub = _text(get("rubric"))
        if rub:
            node.rubric = _parse_rubric(rub, rownum, fail)
        if parent:
            parent.children.append(node)
        nodes.append(node)
        del stack[depth - 1:]
        stack.append(node)

    _check_codes(nodes, fail)
    _resolve_points(nodes, fail)
    fields = [n for n in nodes if n.depth == 1]
    fsum = sum(n.points for n in fields) if fields and all(not math.isnan(n.points) for n in fields) else None
    if total is not None and fsum is not None and abs(total - fsum) > _TOL:
        fail(total_row, "points", total, f"the sum of the fields ({_show(fsum)})")
    if max_points is not None and total is not None and abs(float(max_points) - total) > _TOL:
        fail(total_row, "points", total, f"the declared total max_points={_show(max_points)}")
    if not nodes and not fails:
        fail(hrow + 1, "code", None, "at least one numbered row below the header")
    if fails:
        raise FrameworkError(f"scoring sheet {fname} has problems", fails)

    declared = float(max_points) if max_points is not None else total if total is not None else fsum if fsum is not None else 100.0
    survey_leaves = [n for n in nodes if not n.children and _is_survey(n)]
    data = _meta(meta)
    data.setdefault("legal_basis", legal)
    if "survey_points" not in data and survey_leaves and all(not math.isnan(n.points) for n in survey_leaves):
        data["survey_points"] = _num(sum(n.points for n in survey_leaves))
    complete = all(not math.isnan(n.points) for n in nodes)
    data.setdefault("status", "complete" if complete else "incomplete")
    lvl = level or _guess_level(title)
    table = _node_table(nodes)
    try:
        return framework_from_nodes(
            table, source=fname, id=id or _slug(path.stem), name_vi=name_vi or title or path.stem,
            level=lvl, years=list(years), max_points=_num(declared), **data)
    except FrameworkError as exc:
        # node positions -> spreadsheet rows, YAML keys -> the sheet's headers
        rows = [n.row for n in nodes]
        remapped = exc.failures.copy()
        remapped["sheet"] = sheet_name
        on_node = [isinstance(r, int) and 0 <= r < len(rows) for r in remapped["row"]]
        remapped["column"] = [
            headers.get(_KEY_ROLE.get(c), c) if node else c for c, node in zip(remapped["column"], on_node)]
        remapped["row"] = [rows[r] if node else r for r, node in zip(remapped["row"], on_node)]
        raise FrameworkError(f"scoring sheet {fname} has problems", remapped) from None


def _cell(row: list[Any], c: int) -> Any:
    return row[c] if c < len(row) else None


def _is_column_numbers(code: str, content: str) -> bool:
    """The row "(1) (2) (3)" or "A B 1 2" that some sheets put under the header."""
    pat = re.compile(r"^\(?([0-9]+|[A-Za-z])\)?$")
    a, b = pat.match(code), pat.match(content)
    if not (a and b):
        return False
    x, y = a.group(1), b.group(1)
    if x.isdigit() and y.isdigit():
        return int(y) == int(x) + 1
    return x.isalpha() and y.isalpha() and ord(y.upper()) == ord(x.upper()) + 1


def _read_cell_points(value: Any, rownum: int, role: str, fail) -> Any:
    try:
        return _points(value)
    except ValueError:
        fail(rownum, role, value, "a number of points such as 2 or 1,5 (or x on a row whose children carry the points)")
        return math.nan


def _parse_rubric(text: str, rownum: int, fail) -> list[dict] | None:
    levels = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        try:
            p = parse_number(parts[0])
            if math.isnan(p):
                raise ValueError
        except ValueError:
            fail(rownum, "rubric", line, "one level a line: points | label | English label (e.g. 0,5 | Chậm | Late)")
            continue
        label_vi = parts[1] if len(parts) > 1 else ""
        label_en = parts[2] if len(parts) > 2 else label_vi
        levels.append({"points": _num(p), "label_vi": label_vi, "label_en": label_en})
    return levels or None


def _check_codes(nodes: list[_Row], fail) -> None:
    seen: dict[str, list[_Row]] = {}
    for n in nodes:
        seen.setdefault(n.code, []).append(n)
    for code, rows in seen.items():
        if len(rows) > 1:
            for n in rows[1:]:
                fail(n.row, "code", code, f"a unique number (already used on row {rows[0].row})")


def _resolve_points(nodes: list[_Row], fail) -> None:
    """Fill blank/x parents with their children's sum; check given parents."""
    for n in reversed(nodes):
        if not n.children:
            if n.marked_x:
                fail(n.row, "points", "x", f"points for node {n.code}: x only marks a row whose children carry the points")
            elif not math.isnan(n.survey) and n.survey > 0:
                if math.isnan(n.points):
                    n.points = n.survey
                elif abs(n.points - n.survey) > _TOL:
                    fail(n.row, "survey", n.survey, f"the survey points of leaf {n.code} equal to its maximum "
                         f"({_show(n.points)}); split a mixed row into a self-assessed and a survey-assessed subcriterion")
            continue
        kids = [k.points for k in n.children]
        if any(math.isnan(k) for k in kids):
            continue
        ksum = sum(kids)
        if math.isnan(n.points):
            n.points = ksum
        elif abs(n.points - ksum) > _TOL:
            detail = " + ".join(f"{k.code} {_show(k.points)}" for k in n.children)
            fail(n.row, "points", _show(n.points), f"the sum of the points of node {n.code}'s children: {detail} = {_show(ksum)}")


def _is_survey(n: _Row) -> bool:
    if not math.isnan(n.survey) and n.survey > 0:
        return True
    p: _Row | None = n
    while p is not None:
        if p.survey_text:
            return True
        p = p.parent
    return False


def _node_table(nodes: list[_Row]) -> pd.DataFrame:
    recs = []
    for n in nodes:
        leaf = not n.children
        rec = {"code": n.code, "parent_code": n.parent.code if n.parent else None, "name_vi": n.name_vi,
               "name_en": n.name_en, "max_points": n.points, "guidance_vi": n.guidance_vi,
               "guidance_en": n.guidance_en, "assessed_by": None, "evidence_required": n.evidence,
               "rubric": n.rubric}
        if leaf:
            rec["assessed_by"] = "survey" if _is_survey(n) else "self"
        recs.append(rec)
    cols = ["code", "parent_code", "name_vi", "name_en", "max_points", "assessed_by",
            "guidance_vi", "guidance_en", "evidence_required", "rubric"]
    return pd.DataFrame(recs, columns=cols, dtype=object)


def _meta(meta: dict) -> dict:
    """Framework keys given as Framework attributes -> the YAML shapes."""
    out = dict(meta)
    if "kinds" in out and out["kinds"] is not None:
        out["kinds"] = list(out["kinds"])
    if isinstance(out.get("declared_counts"), (tuple, list)):
        out["declared_counts"] = dict(out["declared_counts"])
    if out.get("bands") is not None:
        out["bands"] = [b if isinstance(b, dict) else {"group": b[0], "min_pct": b[1]} for b in out["bands"]]
    if out.get("sources") is not None:
        out["sources"] = [dict(s) for s in out["sources"]]
    return out


_NOT_TITLE = re.compile(r"^(cong hoa xa hoi chu nghia viet nam|doc lap tu do hanh phuc|phu luc( [0-9a-z]+)?"
                        r"|bieu mau( .*)?|mau( so)?( .*)?|so [0-9].*)$")


def _titles(rows: list[list[Any]]) -> tuple[str, str]:
    """(title, legal basis) from the cells above the header."""
    legal = ""
    rest = []
    for t in (_text(v) for row in rows for v in row):
        f = _fold(t)
        if not f:
            continue
        if re.match(r"^(ban hanh )?kem theo|^can cu", f):
            if not legal:
                legal = re.sub(r"^\(?\s*(ban hành kèm theo|kèm theo|căn cứ)\s*:?\s*", "", t, flags=re.I).strip()
                if t.startswith("("):
                    legal = re.sub(r"\)\s*$", "", legal).strip()
        elif not _NOT_TITLE.match(f):
            rest.append(t)
    title = next((t for t in rest if _has(_fold(t), "tieu chi", "chi so", "bang diem", "cham diem")), rest[0] if rest else "")
    return title, legal


def _guess_level(title: str) -> str:
    f = _fold(title)
    hits = []
    for lvl, phrases in (("ministry", ("cap bo", "bo co quan ngang bo")),
                         ("province", ("cap tinh",)),
                         ("department", ("so ban nganh", "cap so", "co quan chuyen mon")),
                         ("district", ("cap huyen", "quan huyen")),
                         ("commune", ("cap xa", "xa phuong"))):
        for p in phrases:
            m = re.search(rf"(^| ){p}( |$)", f)
            if m:
                hits.append((m.start(), lvl))
    return min(hits)[1] if hits else "province"


def _slug(stem: str) -> str:
    s = "_".join(_fold(stem).split())
    return s or "imported_framework"


def _first_texts(grid: list[list[Any]]) -> str:
    out = [_text(v) for row in grid[:5] for v in row if _text(v)]
    return " | ".join(out[:6])


def _read_grids(path: Path, sheet: str | int | None) -> list[tuple[str | None, list[list[Any]]]]:
    fname = path.name
    kind = check_file(path)
    if kind == "csv":
        if sheet not in (None, 0):
            raise FrameworkError(f"{fname} has no sheets", [{"file": fname, "value": sheet,
                                                            "expected": "no sheet for a csv file"}])
        return [(None, _read_csv(path))]
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_path(str(path))
    except (CalamineError, OSError, ValueError) as exc:
        raise FrameworkError(f"{fname} cannot be read", [{"file": fname, "value": str(exc),
                                                         "expected": "a readable .xlsx workbook"}]) from None
    try:
        names = list(wb.sheet_names)
        if sheet is None:
            chosen = names
        elif isinstance(sheet, int):
            if not 0 <= sheet < len(names):
                raise FrameworkError(f"{fname} has no sheet {sheet}", [{"file": fname, "sheet": sheet, "value": sheet,
                                                                       "expected": f"a sheet index below {len(names)}"}])
            chosen = [names[sheet]]
        else:
            want = unicodedata.normalize("NFC", sheet)
            match = [n for n in names if unicodedata.normalize("NFC", n) == want] or [
                n for n in names if _fold(n) == _fold(want)]
            if not match:
                raise FrameworkError(f"{fname} has no sheet {sheet}", [{"file": fname, "sheet": sheet, "value": sheet,
                                                                       "expected": "one of the sheets " + ", ".join(names)}])
            chosen = match[:1]
        return [(n, wb.get_sheet_by_name(n).to_python(skip_empty_area=False)) for n in chosen]
    finally:
        wb.close()


def _read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "cp1258"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    sample = text[:20000]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
        delim = dialect.delimiter
    except csv.Error:
        delim = ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delim))
    return [[unescape_formula(c) for c in r] for r in rows]


# -- writing --------------------------------------------------------------------

def write_framework_sheet(framework: Framework, path: str | Path) -> Path:
    """Write a framework in the scoring-sheet layout (xlsx or csv).

    Parameters
    ----------
    framework
        Any framework (unknown points are left blank).
    path
        Ends in ``.xlsx`` (written with xlsxwriter) or ``.csv`` (UTF-8 with
        BOM, comma separated).

    Returns
    -------
    pathlib.Path
        ``path``. The file has a title row (the name), a "Căn cứ: ..." row
        when the framework has a legal basis, a blank row, the header (see
        :data:`SHEET_COLUMNS`), one row per node in tree order with the codes
        ``1``, ``1.1``, ``1.1.1``, and a "TỔNG CỘNG" row. Reading it back with
        :func:`read_framework_sheet` gives the same nodes.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".xlsx", ".csv"}:
        raise FrameworkError(f"cannot write {path.name}", [{"file": path.name, "value": path.suffix,
                                                           "expected": "a file name ending in .xlsx or .csv"}])
    header, body, total = _sheet_rows(framework)
    titles = [[framework.name_vi]]
    if framework.legal_basis:
        titles.append([_LEGAL_PREFIX + framework.legal_basis])
    titles.append([])
    if suffix == ".csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        for r in titles + [header] + [[escape_formula(_csv_cell(v)) for v in r] for r, _ in body] + [[_csv_cell(v) for v in total]]:
            w.writerow(r)
        path.write_text(buf.getvalue(), encoding="utf-8-sig", newline="")
        return path
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path))
    try:
        ws = wb.add_worksheet("Bộ tiêu chí")
        bold = wb.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        title_fmt = wb.add_format({"bold": True, "align": "center", "text_wrap": True, "font_size": 13})
        head_fmt = wb.add_format({"bold": True, "align": "center", "valign": "vcenter", "text_wrap": True,
                                  "border": 1, "bg_color": "#DDEBF7"})
        fmts = {1: wb.add_format({"bold": True, "text_wrap": True, "valign": "top", "border": 1}),
                2: wb.add_format({"bold": True, "italic": True, "text_wrap": True, "valign": "top", "border": 1}),
                3: wb.add_format({"text_wrap": True, "valign": "top", "border": 1})}
        ncol = len(header)
        for r, row in enumerate(titles):
            if row:
                if ncol > 1:
                    ws.merge_range(r, 0, r, ncol - 1, row[0], title_fmt)
                else:
                    ws.write_string(r, 0, row[0], title_fmt)
        hr = len(titles)
        for c, h in enumerate(header):
            ws.write_string(hr, c, h, head_fmt)
        for i, (row, depth) in enumerate(body, start=hr + 1):
            fmt = fmts.get(depth, fmts[3])
            for c, v in enumerate(row):
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    ws.write_number(i, c, v, fmt)
                else:
                    ws.write_string(i, c, "" if v is None else str(v), fmt)
        tr = hr + 1 + len(body)
        for c, v in enumerate(total):
            if isinstance(v, (int, float)):
                ws.write_number(tr, c, v, bold)
            elif v:
                ws.write_string(tr, c, v, bold)
        widths = {"code": 8, "content": 60, "points": 10, "survey": 10, "guidance": 50, "evidence": 14,
                  "name_en": 45, "guidance_en": 45, "rubric": 36}
        roles = [r for r, h in SHEET_COLUMNS.items() if h in header]
        for c, role in enumerate(roles):
            ws.set_column(c, c, widths[role])
        ws.freeze_panes(hr + 1, 2)
    finally:
        wb.close()
    return path


def _sheet_rows(fw: Framework) -> tuple[list[str], list[tuple[list[Any], int]], list[Any]]:
    nodes = fw.nodes
    leaves = nodes[nodes["is_leaf"]]
    survey_leaf = leaves["assessed_by"] == "survey"
    roles = ["code", "content", "points", "survey"]
    if (nodes["guidance_vi"] != "").any():
        roles.append("guidance")
    roles.append("evidence")
    if (nodes["name_en"] != "").any():
        roles.append("name_en")
    if (nodes["guidance_en"] != "").any():
        roles.append("guidance_en")
    if nodes["rubric"].notna().any():
        roles.append("rubric")
    header = [SHEET_COLUMNS[r] for r in roles]

    # survey points below each node (for information on parent rows)
    survey_pts: dict[str, float] = {}
    for rec in leaves[survey_leaf].itertuples(index=False):
        code = rec.code
        while code is not None:
            survey_pts[code] = survey_pts.get(code, 0.0) + float(rec.max_points)
            code = nodes.loc[nodes["code"] == code, "parent_code"].iloc[0]
    body = []
    for rec in nodes.to_dict("records"):
        mp = rec["max_points"]
        values = {
            "code": rec["code"],
            "content": rec["name_vi"],
            "points": None if math.isnan(mp) else _num(mp),
            "survey": _num(survey_pts[rec["code"]]) if rec["code"] in survey_pts and not math.isnan(survey_pts[rec["code"]]) else None,
            "guidance": rec["guidance_vi"],
            "evidence": ("Có" if rec["evidence_required"] else "Không") if rec["is_leaf"] else ("Có" if rec["evidence_required"] else ""),
            "name_en": rec["name_en"],
            "guidance_en": rec["guidance_en"],
            "rubric": "\n".join(f"{_vn(p)} | {lv} | {le}" for p, lv, le in rec["rubric"]) if rec["rubric"] else "",
        }
        body.append(([values[r] for r in roles], int(rec["depth"])))
    total_vals = {"code": "", "content": _TOTAL_LABEL, "points": _num(fw.max_points),
                  "survey": _num(sum(survey_pts.get(c, 0.0) for c in nodes.loc[nodes["depth"] == 1, "code"])) if survey_pts else None}
    total = [total_vals.get(r, "") for r in roles]
    return header, body, total


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return _show(v)
    return str(v)


def _num(x: float) -> int | float:
    x = float(x)
    return int(x) if x.is_integer() else x


def _show(x: float) -> str:
    return format(float(x), "g") if float(x) != int(float(x)) else str(int(float(x)))


def _vn(x: float) -> str:
    return _show(x).replace(".", ",")

