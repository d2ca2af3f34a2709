"""Score files: reading self-assessment tables from Excel and CSV.

Civil servants fill their scores in a spreadsheet, in one of two layouts:

*long*
    one row per unit, year and node: ``unit_code``, ``year``, ``node_code``,
    ``self_score``, ``appraised_score``, ``survey_points``, ``evidence``,
    ``explanation`` (and optionally ``bonus``, ``penalty``), and on the
    sheets appraisal councils return ``appraisal_reason`` (the council's
    reason for an appraised score that differs from the self score),
    ``unit_response`` (the unit's response to the appraisal) and
    ``appraisal_round`` (1, 2, ...);
*wide*
    one row per unit: ``unit_code`` [, ``unit_name``] [, ``year``], then one
    column per leaf code such as ``1.2.3``. A wide row holds one score per
    leaf and has no room for a text per leaf, so reasons and unit responses
    come in the long layout only; an ``appraisal_round`` column gives the
    round of every score on its row.

Headers may be written in Vietnamese or English, with or without accents
("Mã đơn vị", "ma_don_vi", "Unit code" all mean ``unit_code``), under any
number of title rows; "Lý do điều chỉnh", "Ý kiến thẩm định" and "Reason"
all mean ``appraisal_reason``, "Giải trình của đơn vị" and "Unit response"
``unit_response``, "Vòng thẩm định" ``appraisal_round``. Numbers may use a
decimal comma; text is read as Unicode NFC, and text holding a NUL character
is refused. :func:`read_scores` checks the whole file against the framework
and the tenant's units and reports every problem at once in one failure
table; nothing is clamped or dropped. :func:`score_template` writes the
blank sheet to fill in (:func:`parindex_lib.exporting.write_appraisal_sheet`
the sheet for appraisers).

The table :func:`read_scores` returns carries the appraisal columns only
when the file has them, so that
:meth:`parindex_lib.store.TenantSession.write_scores` applies the appraisal
rule (an appraised score that differs from the self score needs an
``appraisal_reason``) to files with a reason column, and files without one
import as before.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import difflib
import io
import math
import os
import re
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import FAILURE_COLUMNS, FileRefused, ValidationError
from .framework import Framework
from .numbers import parse_number
from .safety import MAX_BYTES, check_file, escape_formula, unescape_formula

__all__ = [
    "LONG_COLUMNS",
    "APPRAISAL_COLUMNS",
    "SCORE_FIELDS",
    "HEADER_ALIASES",
    "TableInfo",
    "header_key",
    "canonical_header",
    "read_table",
    "read_scores",
    "score_template",
]

#: Columns of the long form of scores, in order (see ``docs/architecture.md``).
LONG_COLUMNS = [
    "unit_code", "year", "node_code", "self_score", "appraised_score", "survey_points",
    "bonus", "penalty", "explanation", "evidence",
]
#: The per-leaf score columns.
SCORE_FIELDS = ("self_score", "appraised_score", "survey_points")
_EXTRA_FIELDS = ("bonus", "penalty")
_TEXT_FIELDS = ("explanation", "evidence")
#: Columns read from the sheets appraisal councils return, in order; :func:`read_scores` adds
#: those the file has after :data:`LONG_COLUMNS`.
APPRAISAL_COLUMNS = ("appraisal_reason", "unit_response", "appraisal_round")
_APPRAISAL_TEXT = ("appraisal_reason", "unit_response")

#: Header spellings accepted for each column, as :func:`header_key` keys
#: (lower case, no accents, ``_`` between words).
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "unit_code": ("unit_code", "ma_don_vi", "ma_dv", "ma_co_quan", "ma_co_quan_don_vi", "unit_id", "unit"),
    "unit_name": ("unit_name", "ten_don_vi", "don_vi", "ten_co_quan", "ten_co_quan_don_vi", "co_quan_don_vi"),
    "year": ("year", "nam", "nam_danh_gia", "nam_cham_diem"),
    "node_code": ("node_code", "ma_tieu_chi", "ma", "ma_tc", "criterion_code", "ma_tieu_chi_thanh_phan"),
    "node_name": ("node_name", "ten_tieu_chi", "noi_dung", "noi_dung_tieu_chi", "tieu_chi", "name_vi"),
    "max_points": ("max_points", "diem_toi_da", "toi_da"),
    "self_score": ("self_score", "diem_tu_cham", "diem_tu_danh_gia", "tu_cham", "tu_cham_diem",
                   "diem_tu_cham_diem", "diem_don_vi_tu_cham", "diem_tu_danh_gia_cua_don_vi"),
    "appraised_score": ("appraised_score", "diem_tham_dinh", "tham_dinh", "diem_sau_tham_dinh",
                        "diem_hoi_dong_tham_dinh"),
    "survey_points": ("survey_points", "diem_dieu_tra_xhh", "diem_dieu_tra_xa_hoi_hoc", "diem_xhh",
                      "dieu_tra_xhh", "diem_dieu_tra"),
    "evidence": ("evidence", "tai_lieu_kiem_chung", "tlkc", "tai_lieu"),
    "explanation": ("explanation", "giai_trinh", "thuyet_minh", "noi_dung_giai_trinh"),
    "appraisal_reason": ("appraisal_reason", "reason", "adjustment_reason", "reason_for_adjustment",
                         "appraisal_comment", "ly_do", "ly_do_dieu_chinh", "ly_do_dieu_chinh_diem",
                         "ly_do_tham_dinh", "ly_do_thay_doi", "ly_do_thay_doi_diem", "ly_do_tru_diem",
                         "y_kien_tham_dinh", "y_kien_hoi_dong_tham_dinh", "nhan_xet_tham_dinh"),
    "unit_response": ("unit_response", "response", "unit_reply", "giai_trinh_cua_don_vi", "don_vi_giai_trinh",
                      "y_kien_giai_trinh_cua_don_vi", "y_kien_cua_don_vi", "y_kien_don_vi", "phan_hoi",
                      "phan_hoi_cua_don_vi", "y_kien_phan_hoi", "giai_trinh_sau_tham_dinh"),
    "appraisal_round": ("appraisal_round", "round", "vong", "vong_tham_dinh", "lan_tham_dinh"),
    "bonus": ("bonus", "diem_thuong", "diem_cong"),
    "penalty": ("penalty", "diem_tru"),
    "row_number": ("stt", "so_thu_tu", "no"),
}
_KEY_TO_CANONICAL = {alias: canon for canon, aliases in HEADER_ALIASES.items() for alias in aliases}
# Columns that only help the person filling the sheet; read_scores ignores them quietly.
_INFORMATIONAL = {"unit_name", "node_name", "max_points", "row_number"}
_HEADER_SCAN = 50
_HEADER_CODE = re.compile(r"^(\d+(?:\.\d+)*)\.?(?:$|[\s\-–:)(])")
_TOL = 1e-9
_SUGGEST = 100  # unknown codes that get nearest-code suggestions (difflib is slow on long lists)
_EXPECT_NUMBER = "a number of points such as 1 or 0,5 (not text, NaN or inf)"
_EXPECT_ROUND = "an appraisal round: a whole number 1, 2, ... (Vòng thẩm định)"
# as the store says it (parindex_lib.store refuses the same text)
_EXPECT_NO_NUL = "text without the NUL character (shown here as \\x00), which the database cannot store"


# -- headers ----------------------------------------------------------------

def header_key(text: Any) -> str:
    """The matching key of a header: NFC, no accents, lower case, ``_`` between words.

    Examples
    --------
    >>> header_key("Mã đơn vị")
    'ma_don_vi'
    >>> header_key("  Unit  code ")
    'unit_code'
    >>> header_key("Điểm\\ntự chấm (*)")
    'diem_tu_cham'
    """
    s = unicodedata.normalize("NFC", _cell_text(text)).replace("đ", "d").replace("Đ", "D")
    s = "".join(ch for ch in unicodedata.normalize("NFD", s) if not unicodedata.combining(ch))
    return re.sub(r"[^0-9a-z]+", "_", s.lower()).strip("_")


def canonical_header(text: Any) -> str | None:
    """The column a header stands for (``"unit_code"``...), None when not recognised.

    Examples
    --------
    >>> canonical_header("Điểm thẩm định")
    'appraised_score'
    >>> canonical_header("Tài liệu kiểm chứng")
    'evidence'
    >>> canonical_header("Lý do điều chỉnh"), canonical_header("Giải trình của đơn vị")
    ('appraisal_reason', 'unit_response')
    >>> canonical_header("1.2.3") is None
    True
    """
    return _KEY_TO_CANONICAL.get(header_key(text))


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _header_text(value: Any) -> str:
    return " ".join(unicodedata.normalize("NFC", _cell_text(value)).split())


def _column_letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


# -- reading tables ---------------------------------------------------------

@dataclass(frozen=True)
class TableInfo:
    """Where a table was read from and how.

    Attributes
    ----------
    file : str
        The file's name (as failure tables show it).
    path : str
    kind : str
        ``"xlsx"`` or ``"csv"``, from the content.
    sheet : str or None
        The sheet read (None for CSV).
    sheet_names : tuple of str
    header_row : int or None
        1-based row number of the header row, None when the file has no rows.
    headers : tuple of str
        The header texts as written (NFC, spaces collapsed), left to right;
        an empty header is shown as ``"column F"``.
    columns : tuple of str
        The DataFrame's column names (the headers, made unique).
    canonical : dict
        DataFrame column -> recognised column name (``unit_code``...).
    encoding, delimiter : str or None
        For CSV files.
    warnings : tuple of str
        Things the reader did that the person should know (e.g. an encoding
        guessed).
    """

    file: str
    path: str
    kind: str
    sheet: str | None
    sheet_names: tuple[str, ...]
    header_row: int | None
    headers: tuple[str, ...]
    columns: tuple[str, ...]
    canonical: dict[str, str] = field(default_factory=dict)
    encoding: str | None = None
    delimiter: str | None = None
    warnings: tuple[str, ...] = ()


def read_table(
    path: str | Path,
    *,
    sheet: str | int | None = None,
    required: Sequence[str] = ("unit_code",),
    max_bytes: int = MAX_BYTES,
) -> tuple[pd.DataFrame, TableInfo]:
    """Read the table of a score file as raw cells, below its title rows.

    The file is first checked by :func:`parindex_lib.safety.check_file`.
    The header row is the first row (of the first 50) holding every
    ``required`` column under any accepted spelling (see
    :data:`HEADER_ALIASES`); rows above it (titles, merged or not) are
    skipped. Without such a row, the first non-empty row is the header.

    Parameters
    ----------
    path
        A ``.xlsx`` workbook (read with python-calamine; formulas give their
        saved values) or a CSV file (UTF-8 with or without BOM, UTF-16 with
        BOM; otherwise TCVN3, Windows-1258 or cp1252 with a warning; delimiter
        ``,`` ``;`` tab or ``|``, sniffed).
    sheet
        Sheet name or 0-based index; None: the first sheet whose rows hold
        the required columns, else the first sheet.
    required
        Canonical names that identify the header row.
    max_bytes
        Largest accepted file size.

    Returns
    -------
    table : pandas.DataFrame
        One column per header (object dtype; text, numbers, booleans or
        dates as stored), indexed by the 1-based spreadsheet row number
        (named ``row``); blank rows are left out. Cells of merged ranges
        below the header repeat the range's value; Excel error cells
        (``#N/A``...) hold their error text and formulas without a saved
        value hold ``"=formula ..."`` so that they are never taken as blank.
    info : TableInfo

    Raises
    ------
    FileRefused
        For files refused by the safety check or unreadable.
    ValidationError
        For a sheet that does not exist, or a CSV row the csv module cannot
        read (strict): a quote never closed (it would swallow every later
        row into one cell), text after a closing quote, or a cell over
        ``csv.field_size_limit()`` (131,072 characters); the failure names
        the row and the cell.
    """
    p = Path(path)
    kind = check_file(p, max_bytes=max_bytes)
    req = tuple(required)
    warnings: list[str] = []
    encoding = delimiter = None
    if kind == "xlsx":
        rows, sheet_name, sheet_names = _xlsx_rows(p, sheet, req)
    else:
        if sheet not in (None, 0):
            raise ValidationError(f"file {p.name} is a CSV file and has no sheets", [{
                "file": p.name, "sheet": str(sheet), "value": sheet, "expected": "no sheet name for a CSV file"}])
        rows, encoding, delimiter = _csv_rows(p, warnings, req)
        sheet_name, sheet_names = None, ()
    return _frame(rows, p, kind, sheet_name, sheet_names, req, encoding, delimiter, warnings)


def _frame(rows: list[list], p: Path, kind: str, sheet_name: str | None, sheet_names: tuple[str, ...],
           required: tuple[str, ...], encoding: str | None, delimiter: str | None,
           warnings: list[str]) -> tuple[pd.DataFrame, TableInfo]:
    h = _find_header(rows, required)
    if h is None:
        empty = pd.DataFrame(index=pd.Index([], name="row", dtype="int64"))
        return empty, TableInfo(p.name, str(p), kind, sheet_name, sheet_names, None, (), (), {}, encoding,
                                delimiter, tuple(warnings))
    width = max(len(r) for r in rows[h:])
    grid = np.empty((len(rows) - h, width), dtype=object)
    grid[:] = ""
    for i, r in enumerate(rows[h:]):
        grid[i, :len(r)] = r
    header_cells = grid[0]
    body = grid[1:]
    rownums = np.arange(h + 2, h + 2 + len(body))
    if len(body):
        blank = _blank_mask(body)
        keep_rows = ~blank.all(axis=1)
        keep_cols = ~(blank.all(axis=0) & np.array([_header_text(c) == "" for c in header_cells]))
    else:
        keep_rows = np.zeros(0, dtype=bool)
        keep_cols = np.array([_header_text(c) != "" for c in header_cells])
    headers, columns, canonical = [], [], {}
    seen: dict[str, int] = {}
    for j in np.flatnonzero(keep_cols):
        text = _header_text(header_cells[j]) or f"column {_column_letter(int(j))}"
        headers.append(text)
        name = text
        if name in seen:
            seen[name] += 1
            name = f"{text} ({seen[text]})"
        else:
            seen[name] = 1
        columns.append(name)
        canon = canonical_header(text)
        if canon:
            canonical[name] = canon
    table = pd.DataFrame(body[keep_rows][:, keep_cols], columns=columns,
                         index=pd.Index(rownums[keep_rows], name="row"), dtype=object)
    info = TableInfo(p.name, str(p), kind, sheet_name, sheet_names, h + 1, tuple(headers), tuple(columns),
                     canonical, encoding, delimiter, tuple(warnings))
    return table, info


def _blank_mask(grid: np.ndarray) -> np.ndarray:
    """True where a cell is empty (None, NaN or empty text)."""
    if grid.size == 0:
        return np.zeros(grid.shape, dtype=bool)
    return pd.isna(grid) | (grid == "")


def _header_index(rows: list[list], required: tuple[str, ...]) -> int | None:
    """The first of the first 50 rows holding every required column, or None."""
    if not required:
        return None
    for i, row in enumerate(rows[:_HEADER_SCAN]):
        found = {canonical_header(t) for t in (_header_text(c) for c in row) if t}
        if set(required) <= found:
            return i
    return None


def _find_header(rows: list[list], required: tuple[str, ...]) -> int | None:
    """The header row: by its required columns, else the first non-empty row."""
    h = _header_index(rows, required)
    if h is not None:
        return h
    for i, row in enumerate(rows):
        if any(_header_text(c) for c in row):
            return i
    return None


# -- xlsx -------------------------------------------------------------------

def _xlsx_rows(p: Path, sheet: str | int | None, required: tuple[str, ...]) -> tuple[list[list], str, tuple[str, ...]]:
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_path(str(p))
    except Exception as exc:  # calamine raises several types for damaged workbooks
        raise FileRefused(f"file {p.name} refused: it could not be read as a workbook", [{
            "file": p.name, "value": str(exc), "expected": "a workbook saved by Excel or LibreOffice as .xlsx"}]) from None
    try:
        meta = [m for m in wb.sheets_metadata if str(m.typ).endswith("WorkSheet")]
        names = tuple(m.name for m in meta) or tuple(wb.sheet_names)
        visible = [m.name for m in meta if str(m.visible).endswith(".Visible")] or list(names)
        loaded = {}
        if sheet is None:
            chosen = None
            for name in visible:
                loaded[name] = wb.get_sheet_by_name(name)
                probe = loaded[name].to_python(skip_empty_area=False, nrows=_HEADER_SCAN)
                if _header_index(probe, required) is not None:
                    chosen = name
                    break
            chosen = chosen or (visible[0] if visible else None)
        elif isinstance(sheet, int):
            chosen = names[sheet] if -len(names) <= sheet < len(names) else None
        else:
            chosen = sheet if sheet in names else None
        if chosen is None:
            raise ValidationError(f"file {p.name} has no sheet {sheet!r}", [{
                "file": p.name, "sheet": None if sheet is None else str(sheet), "value": sheet,
                "expected": "one of the sheets " + ", ".join(names) if names else "a workbook with a worksheet"}])
        ws = loaded.get(chosen) or wb.get_sheet_by_name(chosen)
        rows = ws.to_python(skip_empty_area=False)
        merged = ws.merged_cell_ranges or []
    except CalamineError as exc:
        raise FileRefused(f"file {p.name} refused: it could not be read as a workbook", [{
            "file": p.name, "value": str(exc), "expected": "a workbook saved by Excel or LibreOffice as .xlsx"}]) from None
    finally:
        wb.close()
    rows = [list(r) for r in rows]
    _mark_nan_cells(rows)
    _mark_hidden_cells(p, chosen, rows)
    if merged:
        h = _find_header(rows, required)
        _fill_merged(rows, merged, below=-1 if h is None else h)
    return rows, chosen, names


def _mark_nan_cells(rows: list[list]) -> None:
    """Number cells holding NaN become the text "NaN", so that they are reported, not taken as blank.

    python-calamine reads ``<v>NaN</v>`` as a float NaN, which every check
    below would take for an empty cell; infinities (``INF``, ``1e309``) stay
    numbers, which are refused as not finite.
    """
    for row in rows:
        for j, v in enumerate(row):
            if v != v:
                row[j] = "NaN"


def _fill_merged(rows: list[list], merged: Iterable, below: int) -> None:
    """Repeat the value of each merged range below the header in all its cells."""
    for (r0, c0), (r1, c1) in merged:
        if r0 <= below or r0 >= len(rows):
            continue
        value = rows[r0][c0] if c0 < len(rows[r0]) else ""
        for r in range(r0, min(r1, len(rows) - 1) + 1):
            row = rows[r]
            if len(row) <= c1:
                row.extend([""] * (c1 + 1 - len(row)))
            for c in range(c0, c1 + 1):
                if (r, c) != (r0, c0):
                    row[c] = value


_R_ATTR = re.compile(rb"""\br\s*=\s*["']([A-Z]+)(\d+)["']""")
_ERROR_CELL = re.compile(rb"""<c\b([^>]*\bt\s*=\s*["']e["'][^>]*)>(.*?)</c>""", re.S)
_FORMULA_CELL = re.compile(rb"""<c\b([^>]*?)(?<!/)>\s*(<f\b.*?)</c>""", re.S)
_V_TEXT = re.compile(rb"<v>([^<]*)</v>")
_F_TEXT = re.compile(rb"<f\b[^>]*>([^<]*)</f>")


def _mark_hidden_cells(p: Path, sheet: str, rows: list[list]) -> None:
    """Put error cells and formulas without a saved value back into the grid.

    python-calamine reads both as empty text; they must not look blank.
    """
    try:
        with zipfile.ZipFile(p) as zf:
            part = _sheet_part(zf, sheet)
            if part is None:
                return
            data = zf.read(part)
    except (KeyError, zipfile.BadZipFile, ET.ParseError):
        return
    marks: dict[tuple[int, int], str] = {}
    if b'"e"' in data or b"'e'" in data:
        for m in _ERROR_CELL.finditer(data):
            ref = _R_ATTR.search(m.group(1))
            v = _V_TEXT.search(m.group(2))
            if ref:
                marks[_ref_index(ref)] = (v.group(1).decode("utf-8", "replace") if v else "#ERROR")
    if b"<f" in data:
        for m in _FORMULA_CELL.finditer(data):
            v = _V_TEXT.search(m.group(2))
            if v and v.group(1).strip():
                continue
            ref = _R_ATTR.search(m.group(1))
            if ref and _ref_index(ref) not in marks:
                f = _F_TEXT.search(m.group(2))
                text = f.group(1).decode("utf-8", "replace") if f and f.group(1) else "(shared formula)"
                marks[_ref_index(ref)] = f"={text} (formula without a saved value: open and save the file in Excel)"
    for (r, c), text in marks.items():
        while len(rows) <= r:
            rows.append([])
        row = rows[r]
        if len(row) <= c:
            row.extend([""] * (c + 1 - len(row)))
        if row[c] in ("", None):
            row[c] = text


def _ref_index(m: re.Match) -> tuple[int, int]:
    col = 0
    for ch in m.group(1):
        col = col * 26 + (ch - 64)
    return int(m.group(2)) - 1, col - 1


def _sheet_part(zf: zipfile.ZipFile, sheet: str) -> str | None:
    ns_main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    ns_rel = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
    wb = ET.fromstring(zf.read("xl/workbook.xml"))
    rid = None
    for el in wb.iter(f"{ns_main}sheet"):
        if el.get("name") == sheet:
            rid = el.get(f"{ns_rel}id")
    if rid is None:
        return None
    rels = ET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    for el in rels:
        if el.get("Id") == rid:
            target = el.get("Target", "")
            return target.lstrip("/") if target.startswith("/") else "xl/" + target
    return None


# -- csv --------------------------------------------------------------------

# TCVN3 = TCVN 5712:1993, the "ABC" code of the .VnTime fonts: one byte per Vietnamese letter with
# its marks. Bytes 0x80-0xFF as the standard defines them (0xA1-0xFE: lower-case letters, the seven
# base capitals and five combining tone marks; 0x80-0x9F and the gaps: capitals with tones, VN1 only).
# The standard also puts capitals on control bytes 0x01-0x17; those stay control characters here.
# Capitals typed in a ".VnTimeH" font use the lower-case bytes and so arrive lower-case.
_TCVN3_TO_UNICODE: dict[int, str] = {
    0x80: "\u00c0", 0x81: "\u1ea2", 0x82: "\u00c3", 0x83: "\u00c1", 0x84: "\u1ea0", 0x85: "\u1eb6", 0x86: "\u1eac", 0x87: "\u00c8",
    0x88: "\u1eba", 0x89: "\u1ebc", 0x8A: "\u00c9", 0x8B: "\u1eb8", 0x8C: "\u1ec6", 0x8D: "\u00cc", 0x8E: "\u1ec8", 0x8F: "\u0128",
    0x90: "\u00cd", 0x91: "\u1eca", 0x92: "\u00d2", 0x93: "\u1ece", 0x94: "\u00d5", 0x95: "\u00d3", 0x96: "\u1ecc", 0x97: "\u1ed8",
    0x98: "\u1edc", 0x99: "\u1ede", 0x9A: "\u1ee0", 0x9B: "\u1eda", 0x9C: "\u1ee2", 0x9D: "\u00d9", 0x9E: "\u1ee6", 0x9F: "\u0168",
    0xA1: "\u0102", 0xA2: "\u00c2", 0xA3: "\u00ca", 0xA4: "\u00d4", 0xA5: "\u01a0", 0xA6: "\u01af", 0xA7: "\u0110",
    0xA8: "\u0103", 0xA9: "\u00e2", 0xAA: "\u00ea", 0xAB: "\u00f4", 0xAC: "\u01a1", 0xAD: "\u01b0", 0xAE: "\u0111", 0xAF: "\u1eb0",
    0xB0: "\u0300", 0xB1: "\u0309", 0xB2: "\u0303", 0xB3: "\u0301", 0xB4: "\u0323", 0xB5: "\u00e0", 0xB6: "\u1ea3", 0xB7: "\u00e3",
    0xB8: "\u00e1", 0xB9: "\u1ea1", 0xBA: "\u1eb2", 0xBB: "\u1eb1", 0xBC: "\u1eb3", 0xBD: "\u1eb5", 0xBE: "\u1eaf", 0xBF: "\u1eb4",
    0xC0: "\u1eae", 0xC1: "\u1ea6", 0xC2: "\u1ea8", 0xC3: "\u1eaa", 0xC4: "\u1ea4", 0xC5: "\u1ec0", 0xC6: "\u1eb7", 0xC7: "\u1ea7",
    0xC8: "\u1ea9", 0xC9: "\u1eab", 0xCA: "\u1ea5", 0xCB: "\u1ead", 0xCC: "\u00e8", 0xCD: "\u1ec2", 0xCE: "\u1ebb", 0xCF: "\u1ebd",
    0xD0: "\u00e9", 0xD1: "\u1eb9", 0xD2: "\u1ec1", 0xD3: "\u1ec3", 0xD4: "\u1ec5", 0xD5: "\u1ebf", 0xD6: "\u1ec7", 0xD7: "\u00ec",
    0xD8: "\u1ec9", 0xD9: "\u1ec4", 0xDA: "\u1ebe", 0xDB: "\u1ed2", 0xDC: "\u0129", 0xDD: "\u00ed", 0xDE: "\u1ecb", 0xDF: "\u00f2",
    0xE0: "\u1ed4", 0xE1: "\u1ecf", 0xE2: "\u00f5", 0xE3: "\u00f3", 0xE4: "\u1ecd", 0xE5: "\u1ed3", 0xE6: "\u1ed5", 0xE7: "\u1ed7",
    0xE8: "\u1ed1", 0xE9: "\u1ed9", 0xEA: "\u1edd", 0xEB: "\u1edf", 0xEC: "\u1ee1", 0xED: "\u1edb", 0xEE: "\u1ee3", 0xEF: "\u00f9",
    0xF0: "\u1ed6", 0xF1: "\u1ee7", 0xF2: "\u0169", 0xF3: "\u00fa", 0xF4: "\u1ee5", 0xF5: "\u1eeb", 0xF6: "\u1eed", 0xF7: "\u1eef",
    0xF8: "\u1ee9", 0xF9: "\u1ef1", 0xFA: "\u1ef3", 0xFB: "\u1ef7", 0xFC: "\u1ef9", 0xFD: "\u00fd", 0xFE: "\u1ef5", 0xFF: "\u1ed0",
}

_TONES = "\u0300\u0301\u0303\u0309\u0323"
# every letter of the Vietnamese alphabet that carries a mark, NFC, both cases
_VI_MARKED = frozenset(
    unicodedata.normalize("NFC", base + tone) for base in "aăâeêioôơuưyAĂÂEÊIOÔƠUƯY" for tone in ("", *_TONES)
) - frozenset("aeiouyAEIOUY") | frozenset("đĐ")
_WORD = re.compile(r"[^\W\d_]+")


def _vietnamese_fit(text: str) -> tuple[int, int]:
    """(words that read as Vietnamese with marks, characters or words that do not) in NFC text."""
    good = bad = 0
    for word in _WORD.findall(text):
        marked = [c for c in word if not c.isascii()]
        if not marked:
            continue
        tones = sum(c in _TONES for c in unicodedata.normalize("NFD", word))
        if tones <= 1 and all(c in _VI_MARKED for c in marked):
            good += 1
        else:
            bad += 1
    # symbols, marks left on their own, and other stray characters outside words
    bad += sum(1 for c in text if not c.isascii() and not c.isalpha() and not c.isspace())
    return good, bad


def _tcvn3(raw: bytes) -> str:
    # one byte, one character: Latin-1 keeps every byte's value, the table replaces 0x80-0xFF
    return unicodedata.normalize("NFC", raw.decode("latin-1").translate(_TCVN3_TO_UNICODE))


def _decode(raw: bytes, name: str, warnings: list[str]) -> tuple[str, str]:
    if raw.startswith(codecs.BOM_UTF8):
        try:
            return raw[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise FileRefused(f"file {name} refused: it starts with a UTF-8 mark but is not UTF-8", [{
                "file": name, "value": f"byte {exc.start + 3}", "expected": "a CSV file saved as CSV UTF-8"}]) from None
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise FileRefused(f"file {name} refused: it starts with a UTF-16 mark but is not UTF-16", [{
                "file": name, "value": "UTF-16 byte-order mark", "expected": "a CSV file saved as CSV UTF-8"}]) from None
    if b"\x00" in raw[:4096]:
        sample = raw[:4096]
        enc = "utf-16-le" if sample[1::2].count(0) > sample[0::2].count(0) else "utf-16-be"
        try:
            text = raw.decode(enc)
            warnings.append(f"{name}: no byte-order mark; read as {enc.upper()}")
            return text, enc
        except UnicodeDecodeError:
            pass
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    for enc, label in (("cp1258", "Windows-1258 (Vietnamese)"), ("cp1252", "Windows-1252 (Western)"),
                       ("latin-1", "Latin-1")):
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        # TCVN3 has no marker: take it when it reads as clearly more Vietnamese, with fewer stray symbols
        # (Windows-1258 shows TCVN3's letters as "§ ® ¸ µ ¶ ·"; TCVN3 shows Windows-1258's as two tones a word)
        # (judged on the first 64 KiB; both codes are one byte a character)
        sample = raw[:65536]
        good, bad = _vietnamese_fit(_tcvn3(sample))
        other_good, other_bad = _vietnamese_fit(unicodedata.normalize("NFC", sample.decode(enc, "replace")))
        if good > other_good and bad < other_bad:
            warnings.append(f"{name} is not UTF-8; read as TCVN3 (ABC, .VnTime fonts): check the accents, "
                            "or save the file again as CSV UTF-8")
            return _tcvn3(raw), "tcvn3"
        warnings.append(f"{name} is not UTF-8; read as {label}: check the accents, "
                        "or save the file again as CSV UTF-8")
        return text, enc
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def _csv_rows(p: Path, warnings: list[str], required: tuple[str, ...] = ()) -> tuple[list[list], str, str]:
    text, encoding = _decode(p.read_bytes(), p.name, warnings)
    delimiter = _sniff_delimiter(text)
    # strict: a quote never closed (which would swallow every later row into one cell) or text after a
    # closing quote is an error, not a guess
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list] = []
    lines = 0  # lines read up to the end of the last whole row
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return rows, encoding, delimiter
        except csv.Error as exc:
            raise _csv_error(p.name, text, delimiter, rows, lines, required, exc) from None
        rows.append(row)
        lines = reader.line_num


def _csv_error(name: str, text: str, delimiter: str, rows: list[list], lines: int, required: tuple[str, ...],
               exc: csv.Error) -> ValidationError:
    """The failure table of a CSV row the csv module cannot read: its row, cell and what is wrong."""
    row = len(rows) + 1
    start = sum(len(line) for _, line in zip(range(lines), io.StringIO(text, newline="")))
    limit = csv.field_size_limit()
    found = _csv_problem(text, start, delimiter, limit)
    column = None
    if found is None:
        value, expected = str(exc), "a CSV file as Excel saves it (File > Save As > CSV UTF-8)"
        why = f"row {row} cannot be read as CSV ({exc})"
    else:
        index, at, problem = found
        h = _find_header(rows, required)
        header = rows[h] if h is not None else []
        column = (_header_text(header[index]) if index < len(header) else "") or f"column {_column_letter(index)}"
        first = re.split("[\r\n]", text[at:at + 60], maxsplit=1)[0]
        snippet = first + ("..." if len(first) == 60 and len(text) - at > 60 else "")
        if problem == "unclosed":
            rest = text[at:]
            breaks = rest.count("\n") + rest.count("\r") - rest.count("\r\n")
            value = f"{first}... (runs on over {breaks:,} line breaks to the end of the file)"
            expected = ("balanced quotes: the quote that opens this cell is never closed, so every line after it "
                        "would be read into this one cell; close the quote or remove it")
            why = f"row {row} opens a quote that is never closed"
        elif problem == "after quote":
            value = snippet
            expected = ('a cell quoted whole: text follows its closing quote; inside a quoted cell write a quote '
                        'twice ("") or remove the quotes')
            why = f"row {row} has text after a closing quote"
        else:
            value = f"{snippet} ({problem:,} characters)"
            expected = f"a cell of at most {limit:,} characters"
            why = f"row {row} has a cell of {problem:,} characters, over the limit of {limit:,}"
    return ValidationError(f"file {name} cannot be read as CSV: {why}", [{
        "file": name, "sheet": None, "row": row, "column": column, "value": value, "expected": expected}])


def _csv_problem(text: str, start: int, delimiter: str, limit: int) -> tuple[int, int, Any] | None:
    """The first cell of the CSV row at ``start`` the csv module refuses (strict, doubled quotes).

    Returns (0-based cell index, where the cell starts, problem): ``"unclosed"``
    for a quote never closed, ``"after quote"`` for text after a closing
    quote, or the cell's length when it is over ``limit``; None when the row
    looks fine.
    """
    n = len(text)
    ends = re.compile("[" + re.escape(delimiter) + "\r\n]")
    pos, index = start, 0
    while True:
        at = pos
        if pos < n and text[pos] == '"':
            i = pos + 1
            while True:
                q = text.find('"', i)
                if q < 0:
                    return index, at, "unclosed"
                if text.startswith('"', q + 1):  # a doubled quote inside the cell
                    i = q + 2
                    continue
                break
            pos = q + 1
            if q - at - 1 > limit:
                return index, at, q - at - 1
            if pos < n and text[pos] not in (delimiter, "\r", "\n"):
                return index, at, "after quote"
        else:
            m = ends.search(text, pos)
            pos = m.start() if m else n
            if pos - at > limit:
                return index, at, pos - at
        if pos >= n or text[pos] in "\r\n":
            return None
        pos += 1
        index += 1


def _sniff_delimiter(text: str) -> str:
    """The delimiter that best splits the header and keeps rows the same width."""
    sample = text[:65536]
    if len(text) > 65536 and "\n" in sample:
        sample = sample[:sample.rindex("\n")]
    best, best_score = ",", None
    for d in (",", ";", "\t", "|"):
        try:
            rows = list(csv.reader(io.StringIO(sample, newline=""), delimiter=d))[:200]
        except csv.Error:
            continue
        widths = [len(r) for r in rows if any(c.strip() for c in r)]
        recognised = max((sum(1 for c in r if canonical_header(c) or _HEADER_CODE.match(c.strip()))
                          for r in rows[:_HEADER_SCAN]), default=0)
        multi = [w for w in widths if w > 1]
        mode = max(set(multi), key=multi.count) if multi else 1
        consistent = sum(1 for w in widths if w == mode) if multi else 0
        score = (recognised, consistent, mode)
        if best_score is None or score > best_score:
            best, best_score = d, score
    return best


# -- reading scores ---------------------------------------------------------

class _Failures:
    """Collects failure rows; cells in bulk as arrays, others one by one."""

    def __init__(self, file: str, sheet: str | None):
        self.file, self.sheet = file, sheet
        self.single: list[dict] = []
        self.bulk: list[pd.DataFrame] = []

    def add(self, row: Any, column: Any, value: Any, expected: str, pos: int = -1) -> None:
        self.single.append({"file": self.file, "sheet": self.sheet, "row": row, "column": column,
                            "value": value, "expected": expected, "_pos": pos})

    def add_cells(self, rows: np.ndarray, columns: Any, values: np.ndarray, expected: Any, pos: Any) -> None:
        n = len(rows)
        if n == 0:
            return
        self.bulk.append(pd.DataFrame({
            "file": [self.file] * n, "sheet": [self.sheet] * n,
            "row": np.asarray(rows, dtype=object), "column": _as_object(columns, n),
            "value": _as_object(values, n), "expected": _as_object(expected, n), "_pos": np.broadcast_to(pos, n),
        }))

    def __bool__(self) -> bool:
        return bool(self.single) or bool(self.bulk)

    def table(self) -> pd.DataFrame:
        parts = [pd.DataFrame(self.single, columns=FAILURE_COLUMNS + ["_pos"])] if self.single else []
        parts += self.bulk
        out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FAILURE_COLUMNS + ["_pos"])
        key = pd.to_numeric(out["row"], errors="coerce").fillna(-1)
        out = out.assign(_row=key.to_numpy()).sort_values(["_row", "_pos"], kind="stable")
        out = out[FAILURE_COLUMNS].astype(object).reset_index(drop=True)
        out["row"] = [None if (r is None or (isinstance(r, float) and math.isnan(r))) else int(r) for r in out["row"]]
        return out


def _as_object(values: Any, n: int) -> np.ndarray:
    if isinstance(values, (list, tuple, np.ndarray, pd.Series)):
        arr = np.empty(n, dtype=object)
        arr[:] = list(values)
        return arr
    arr = np.empty(n, dtype=object)
    arr[:] = [values] * n
    return arr


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes and uniques of cells, with booleans kept apart from 0 and 1."""
    values = np.asarray(values, dtype=object)
    is_bool = np.fromiter((type(v) is bool or type(v) is np.bool_ for v in values), dtype=bool, count=len(values))
    if is_bool.any():
        values = values.copy()
        values[is_bool] = np.array(["TRUE" if v else "FALSE" for v in values[is_bool]], dtype=object)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, np.asarray(uniques, dtype=object), is_bool


def _numbers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parse cells as numbers: float array (NaN for blanks) and a mask of bad cells."""
    n = len(values)
    if n == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    codes, uniques, is_bool = _factorize(values)
    parsed = np.full(len(uniques), np.nan)
    bad_u = np.zeros(len(uniques), dtype=bool)
    for i, u in enumerate(uniques):
        if isinstance(u, str) and u in ("TRUE", "FALSE"):
            bad_u[i] = True
            continue
        try:
            parsed[i] = parse_number(u)
        except (ValueError, TypeError):
            bad_u[i] = True
    has = codes >= 0
    out = np.where(has, parsed[np.where(has, codes, 0)], np.nan)
    bad = has & bad_u[np.where(has, codes, 0)]
    return out, bad | is_bool


def _texts(values: np.ndarray, *, code: bool = False) -> np.ndarray:
    """Cells as clean text: NFC, stripped, escaping undone; codes also lose spaces and a final dot."""
    n = len(values)
    if n == 0:
        return np.empty(0, dtype=object)
    codes, uniques, _ = _factorize(values)
    clean = np.empty(len(uniques) + 1, dtype=object)
    for i, u in enumerate(uniques):
        clean[i] = _clean_text(u, code=code)
    clean[-1] = ""
    return clean[codes]


def _clean_text(value: Any, *, code: bool = False) -> str:
    s = unicodedata.normalize("NFC", _cell_text(value)).strip()
    s = unescape_formula(s)
    if code:
        s = re.sub(r"\s+", "", s).rstrip(".")
    return s


def _years(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year cells: int array (0 where missing), blank mask, bad mask."""
    codes, uniques, is_bool = _factorize(values)
    yu = np.zeros(len(uniques), dtype=np.int64)
    bad_u = np.zeros(len(uniques), dtype=bool)
    blank_u = np.zeros(len(uniques), dtype=bool)
    for i, u in enumerate(uniques):
        try:
            x = parse_number(u)
        except (ValueError, TypeError):
            bad_u[i] = True
            continue
        if math.isnan(x):
            blank_u[i] = True
        elif not float(x).is_integer() or not 1990 <= x <= 2100:
            bad_u[i] = True
        else:
            yu[i] = int(x)
    has = codes >= 0
    idx = np.where(has, codes, 0)
    years = np.where(has, yu[idx], 0)
    blank = ~has | blank_u[idx]
    bad = (has & bad_u[idx]) | is_bool
    return years, blank & ~bad, bad


def _rounds(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Appraisal round cells: float array of whole numbers >= 1 (NaN for blanks and bad cells), bad mask."""
    num, bad = _numbers(values)
    has = ~bad & ~np.isnan(num)
    ok = np.zeros(len(num), dtype=bool)
    ok[has] = (num[has] >= 1) & (num[has] <= 2**31 - 1) & (num[has] == np.floor(num[has]))
    bad = bad | (has & ~ok)
    return np.where(bad, np.nan, num), bad


def _nearest(code: str, known_sorted: list[str], lower_map: dict[str, list[str]]) -> list[str]:
    """Up to three known codes close to ``code``: same letters in another case, then
    difflib's closest, then the neighbours sharing the longest prefix."""
    hits = list(lower_map.get(code.lower(), []))
    for h in difflib.get_close_matches(code, known_sorted, n=3, cutoff=0.5):
        if h not in hits:
            hits.append(h)
    if len(hits) < 3:
        at = bisect.bisect_left(known_sorted, code)
        lo = max(0, at - 3)
        near = [(-len(os.path.commonprefix([k, code])), abs(lo + i - at), k)
                for i, k in enumerate(known_sorted[lo:at + 3])]
        hits += [k for p, _, k in sorted(near) if p < 0 and k not in hits]
    return hits[:3]


def read_scores(
    path: str | Path,
    framework: Framework,
    units: pd.DataFrame,
    *,
    year: int | None = None,
    sheet: str | int | None = None,
    max_bytes: int = MAX_BYTES,
    wide_score: str = "self_score",
    progress: Callable[[int, int], Any] | None = None,
) -> pd.DataFrame:
    """Read and check a score file, long or wide, against a framework.

    Parameters
    ----------
    path
        A ``.xlsx`` or CSV file (see :func:`read_table`), in the long layout
        (a ``node_code`` column) or the wide layout (one column per leaf
        code, e.g. ``1.2.3``, optionally followed by the node's name).
        Appraisal columns (:data:`APPRAISAL_COLUMNS`) are read in the long
        layout; the wide layout reads an ``appraisal_round`` column (the
        round of every score on its row) and refuses an ``appraisal_reason``
        or ``unit_response`` column that holds text, since one text per
        unit row cannot say which leaf's score it is about.
    framework
        The framework the scores are for; it must be scorable.
    units
        The tenant's units: at least a column ``code``.
    year
        The year being imported: used when the file has no year column,
        and checked against it when it has one.
    sheet
        Sheet name or 0-based index (xlsx); None: the first sheet with a
        ``unit_code`` header.
    max_bytes
        Largest accepted file size.
    wide_score
        Which score the cells of a wide sheet hold: ``"self_score"``
        (default), ``"appraised_score"`` or ``"survey_points"``.
    progress
        Called as ``progress(done, total)`` at a few coarse steps: ``(0,
        3)`` before reading, ``(1, 3)`` once the file is read, ``(2, 3)``
        once every cell is checked (before the failure table of the cells'
        problems, if any, is raised) and ``(3, 3)`` when the table is
        built. An exception it raises stops the import.

    Returns
    -------
    pandas.DataFrame
        The long form, columns :data:`LONG_COLUMNS` in order: ``unit_code``
        (str), ``year`` (int64), ``node_code`` (str), ``self_score``,
        ``appraised_score``, ``survey_points``, ``bonus``, ``penalty``
        (float64, NaN = not entered), ``explanation``, ``evidence`` (str,
        ``""`` when none); then, only when the file has such a column, in
        this order: ``appraisal_reason`` (str, the appraisal council's
        reason for the appraised score, ``""`` when none),
        ``unit_response`` (str, the unit's response to the appraisal,
        ``""`` when none) and ``appraisal_round`` (Int64, 1, 2, ...; <NA>
        when blank, and in a wide sheet where the row's leaf cell is
        blank). A table with an ``appraisal_reason`` column makes
        :meth:`parindex_lib.store.TenantSession.write_scores` apply the
        appraisal rule (an appraised score that differs from the self
        score needs a reason, the row's or the stored one); a file without
        one imports without that check. Text is NFC and stripped. One row
        per row of a long file, one row per unit
        row and leaf column of a wide file, in file order (a wide sheet's
        bonus and penalty go on the unit's first leaf). ``attrs`` holds
        ``source`` (file, sheet, header_row, layout), ``warnings``,
        ``file`` and ``sheet`` (as failure tables name them; sheet None
        for CSV) and ``rows``: the spreadsheet row each row of the table
        was read from, in order (an ``array.array`` of int, as long as the
        table; a wide row gives one row per leaf column), so that problems
        found later can name the row the person sees.

    Raises
    ------
    FrameworkIncompleteError
        When the framework cannot score.
    FileRefused
        When the safety check refuses the file.
    ValidationError
        Listing every problem in the file: missing columns (with the headers
        found), unknown or non-leaf node codes, unknown unit codes (with the
        nearest known codes), years missing or not whole numbers, cells that
        are not numbers (text, NaN, inf, Excel errors), negative points,
        points over the node's max_points, scores that are not one of a
        rubric's levels, a self or appraised score on a survey node or
        survey points on a self-assessed node, bonus or penalty points
        whose sum for a unit and year is over the framework's
        ``bonus_cap`` / ``penalty_cap`` (each row of that sum is named,
        with the number read), appraisal rounds that are not whole numbers
        of at least 1, text holding a NUL character (shown as ``\\x00``),
        a reason or unit response column holding text in a wide sheet,
        duplicate (unit, year, node) rows. ``row``
        is the spreadsheet row, ``column`` the header as written, ``value``
        the cell as written.
    """
    if wide_score not in SCORE_FIELDS:
        raise ValueError(f"wide_score must be one of {', '.join(SCORE_FIELDS)}, not {wide_score!r}")
    framework.require_scorable()
    steps = 3
    if progress is not None:
        progress(0, steps)
    table, info = read_table(path, sheet=sheet, max_bytes=max_bytes)
    if progress is not None:
        progress(1, steps)
    fails = _Failures(info.file, info.sheet)
    pos_of = {c: i for i, c in enumerate(info.columns)}
    header_of = dict(zip(info.columns, info.headers))

    if info.header_row is None or table.empty:
        fails.add(info.header_row, None, None if info.header_row is None else ", ".join(info.headers),
                  "a header row (unit_code, year, node_code, self_score... or unit_code, year and one column "
                  "per leaf code) and at least one row of scores under it")
        raise ValidationError(f"file {info.file} has no scores", fails.table())

    by_canon: dict[str, list[str]] = {}
    for col, canon in info.canonical.items():
        by_canon.setdefault(canon, []).append(col)
    for canon, cols in by_canon.items():
        for col in cols[1:]:
            fails.add(info.header_row, header_of[col], header_of[col],
                      f"one {canon} column (already in column {header_of[cols[0]]})", pos_of[col])
    col_of = {canon: cols[0] for canon, cols in by_canon.items()}

    nodes = framework.nodes
    leaf_codes = set(framework.leaves["code"])
    code_cols = {c: m.group(1) for c in info.columns if c not in info.canonical
                 for m in [_HEADER_CODE.match(header_of[c])] if m}
    layout = "long" if "node_code" in col_of else ("wide" if code_cols else None)
    found = ", ".join(info.headers) or "(none)"
    missing = []
    if "unit_code" not in col_of:
        missing.append(("unit_code", "a unit code column (Mã đơn vị / unit_code)"))
    if layout is None:
        missing.append(("node_code", "a node code column (Mã tiêu chí / node_code) for the long layout, "
                                     "or one column per leaf code such as 1.1.1 for the wide layout"))
    if "year" not in col_of and year is None:
        missing.append(("year", "a year column (Năm / year), or the year given to the import"))
    if layout == "long" and not any(f in col_of for f in SCORE_FIELDS):
        missing.append(("self_score", "a score column: Điểm tự chấm / self_score, Điểm thẩm định / "
                                      "appraised_score or Điểm điều tra XHH / survey_points"))
    for name, expected in missing:
        fails.add(info.header_row, name, f"headers found: {found}", f"{expected}")
    if missing:
        raise ValidationError(f"file {info.file} lacks required columns", fails.table())

    rownums = table.index.to_numpy()
    n = len(table)

    # -- units -------------------------------------------------------------
    ucol = col_of["unit_code"]
    unit_codes = _texts(table[ucol].to_numpy(dtype=object), code=False)
    known_units = sorted(_clean_text(c) for c in units["code"].tolist())
    known_set = set(known_units)
    lower_map: dict[str, list[str]] = {}
    for k in known_units:
        lower_map.setdefault(k.lower(), []).append(k)
    blank_u = unit_codes == ""
    _fail_mask(fails, blank_u, rownums, header_of[ucol], table[ucol].to_numpy(dtype=object),
               "a unit code (Mã đơn vị)", pos_of[ucol])
    unknown_mask = ~blank_u & ~pd.Series(unit_codes).isin(known_set).to_numpy()
    if unknown_mask.any():
        hints = {}
        for i, code in enumerate(pd.unique(unit_codes[unknown_mask])):
            near = _nearest(code, known_units, lower_map) if i < _SUGGEST else []
            hints[code] = ("a unit code of this tenant; nearest known: " + ", ".join(near)) if near else \
                f"a unit code of this tenant (none close among {len(known_units)} known codes)"
        idx = np.flatnonzero(unknown_mask)
        fails.add_cells(rownums[idx], header_of[ucol], unit_codes[idx],
                        [hints[c] for c in unit_codes[idx]], pos_of[ucol])

    # -- years -------------------------------------------------------------
    fw_years = set(framework.years)
    if "year" in col_of:
        ycol = col_of["year"]
        raw_y = table[ycol].to_numpy(dtype=object)
        years, yblank, ybad = _years(raw_y)
        _fail_mask(fails, ybad, rownums, header_of[ycol], raw_y, "a year as a whole number such as 2024", pos_of[ycol])
        if year is not None:
            years = np.where(yblank, year, years)
            differ = ~yblank & ~ybad & (years != year)
            _fail_mask(fails, differ, rownums, header_of[ycol], raw_y, f"the year being imported, {year}", pos_of[ycol])
        else:
            _fail_mask(fails, yblank, rownums, header_of[ycol], raw_y, "a year such as 2024", pos_of[ycol])
        ok_year = ~yblank | (year is not None)
        ok_year &= ~ybad
        if fw_years:
            out = ok_year & ~np.isin(years, list(fw_years))
            _fail_mask(fails, out, rownums, header_of[ycol], raw_y,
                       f"a year framework {framework.id} applies to: " + ", ".join(map(str, sorted(fw_years))),
                       pos_of[ycol])
    else:
        years = np.full(n, int(year), dtype=np.int64)
        if fw_years and int(year) not in fw_years:
            fails.add(None, "year", year, f"a year framework {framework.id} applies to: "
                      + ", ".join(map(str, sorted(fw_years))))

    leaves = framework.leaves.set_index("code")
    maxp = leaves["max_points"].to_dict()
    assessed = leaves["assessed_by"].to_dict()
    rubrics = {c: r for c, r in leaves["rubric"].items() if r}
    children_of = nodes.groupby("parent_code")["code"].agg(list).to_dict()
    level_of = nodes.set_index("code")["level"].to_dict()
    all_codes = nodes["code"].tolist()
    leaf_list = framework.leaves["code"].tolist()

    def node_expectation(code: str) -> str:
        if code in level_of:
            kids = children_of.get(code, [])
            return (f"a leaf code: {code} is a {level_of[code]} scored through its children "
                    + ", ".join(kids[:6]) + (" ..." if len(kids) > 6 else ""))
        near = difflib.get_close_matches(code, leaf_list, n=3, cutoff=0.6)
        return (f"a leaf code of framework {framework.id}"
                + (f"; nearest: {', '.join(near)}" if near else f" ({len(leaf_list)} leaves, e.g. {leaf_list[0]})"))

    # -- the cells, in long form ------------------------------------------
    fields_present: list[str] = []
    if layout == "long":
        ncol = col_of["node_code"]
        raw_n = table[ncol].to_numpy(dtype=object)
        node_codes = _texts(raw_n, code=True)
        blank_n = node_codes == ""
        _fail_mask(fails, blank_n, rownums, header_of[ncol], raw_n, "a node code (Mã tiêu chí) such as 1.1.1",
                   pos_of[ncol])
        bad_n = ~blank_n & ~np.isin(node_codes, list(leaf_codes))
        if bad_n.any():
            exp = {c: node_expectation(c) for c in pd.unique(node_codes[bad_n])}
            idx = np.flatnonzero(bad_n)
            fails.add_cells(rownums[idx], header_of[ncol], raw_n[idx], [exp[c] for c in node_codes[idx]],
                            pos_of[ncol])
        valid_node = ~blank_n & ~bad_n
        cell_row = rownums
        cell_unit, cell_year, cell_node = unit_codes, years, node_codes
        values: dict[str, np.ndarray] = {}
        headers: dict[str, Any] = {}
        positions: dict[str, Any] = {}
        for f in SCORE_FIELDS + _EXTRA_FIELDS + _TEXT_FIELDS + APPRAISAL_COLUMNS:
            if f in col_of:
                values[f] = table[col_of[f]].to_numpy(dtype=object)
                headers[f] = header_of[col_of[f]]
                positions[f] = pos_of[col_of[f]]
        fields_present = [f for f in SCORE_FIELDS if f in values]
        # duplicates (unit, year, node)
        keys = pd.DataFrame({"u": unit_codes, "y": years, "n": node_codes})
        dup = keys.duplicated(keep=False).to_numpy() & ~blank_n & ~blank_u
        if dup.any():
            sub = keys[dup].assign(i=np.flatnonzero(dup))
            groups = sub.groupby(["u", "y", "n"], sort=False)["i"].agg(list)
            for (u, y, nd), idx in groups.items():
                for i in idx:
                    others = ", ".join(str(rownums[o]) for o in idx if o != i)
                    fails.add(int(rownums[i]), header_of[ncol], raw_n[i],
                              f"one row per unit, year and node: {u}, {y}, {nd} is also on row {others}", pos_of[ncol])
        ignored = [c for c in info.columns if c not in info.canonical]
    else:
        # wide: leaf columns
        valid_cols, col_codes = [], []
        seen_codes: dict[str, str] = {}
        for c, code in code_cols.items():
            if code not in leaf_codes:
                fails.add(info.header_row, header_of[c], header_of[c], node_expectation(code), pos_of[c])
                continue
            if code in seen_codes:
                fails.add(info.header_row, header_of[c], header_of[c],
                          f"one column per leaf code: {code} is also column {header_of[seen_codes[code]]}", pos_of[c])
                continue
            seen_codes[code] = c
            valid_cols.append(c)
            col_codes.append(code)
        k = len(valid_cols)
        grid = table[valid_cols].to_numpy(dtype=object) if k else np.empty((n, 0), dtype=object)
        cell_row = np.repeat(rownums, k)
        cell_unit = np.repeat(unit_codes, k)
        cell_year = np.repeat(years, k)
        cell_node = np.tile(np.array(col_codes, dtype=object), n)
        valid_node = np.ones(n * k, dtype=bool)
        values = {wide_score: grid.ravel()}
        headers = {wide_score: np.tile(np.array([header_of[c] for c in valid_cols], dtype=object), n)}
        positions = {wide_score: np.tile(np.array([pos_of[c] for c in valid_cols]), n)}
        fields_present = [wide_score]
        for f in _EXTRA_FIELDS:
            if f in col_of and k:
                raw = table[col_of[f]].to_numpy(dtype=object)
                full = np.empty(n * k, dtype=object)
                full[:] = ""
                full[::k] = raw
                values[f] = full
                headers[f] = header_of[col_of[f]]
                positions[f] = pos_of[col_of[f]]
        # a wide row holds one score per leaf: a text column there cannot say which score it is about
        for f in _APPRAISAL_TEXT:
            if f in col_of and not _blank_mask(table[[col_of[f]]].to_numpy(dtype=object)).all():
                hdr = header_of[col_of[f]]
                fails.add(info.header_row, hdr, hdr,
                          f"no {f} column in the wide layout (one column per leaf leaves no room for a text per "
                          "leaf): give reasons and unit responses in the long layout, one row per unit and node "
                          "with a node_code column (Mã tiêu chí)", pos_of[col_of[f]])
        if "appraisal_round" in col_of:
            rcol = col_of["appraisal_round"]
            raw_r = table[rcol].to_numpy(dtype=object)
            row_rounds, bad_r = _rounds(raw_r)
            _fail_mask(fails, bad_r, rownums, header_of[rcol], raw_r, _EXPECT_ROUND, pos_of[rcol])
            wide_rounds = np.repeat(row_rounds, k)
        keys = pd.DataFrame({"u": unit_codes, "y": years})
        dup = keys.duplicated(keep=False).to_numpy() & ~blank_u
        if dup.any():
            raw_u = table[ucol].to_numpy(dtype=object)
            sub = keys[dup].assign(i=np.flatnonzero(dup))
            for (u, y), idx in sub.groupby(["u", "y"], sort=False)["i"].agg(list).items():
                for i in idx:
                    others = ", ".join(str(rownums[o]) for o in idx if o != i)
                    fails.add(int(rownums[i]), header_of[ucol], raw_u[i],
                              f"one row per unit and year: {u}, {y} is also on row {others}", pos_of[ucol])
        ignored = [c for c in info.columns if c not in info.canonical and c not in code_cols]
        ignored += [c for c, canon in info.canonical.items() if canon in SCORE_FIELDS + _TEXT_FIELDS + _APPRAISAL_TEXT]

    # -- numbers -------------------------------------------------------------
    m = len(cell_row)
    warnings_extra: list[str] = []
    numbers: dict[str, np.ndarray] = {}
    node_max = pd.Series(cell_node, dtype=object).map(maxp).to_numpy(dtype=float) if m else np.zeros(0)
    node_how = pd.Series(cell_node, dtype=object).map(assessed).to_numpy(dtype=object) if m else np.zeros(0, object)
    for f in fields_present + [f for f in _EXTRA_FIELDS if f in values]:
        raw = values[f]
        num, bad = _numbers(raw)
        hdr, pos = headers[f], positions[f]
        _fail_cells(fails, bad, cell_row, hdr, raw, _EXPECT_NUMBER, pos)
        num = np.where(bad, np.nan, num)
        has = ~np.isnan(num)
        neg = has & (num < 0)
        _fail_cells(fails, neg, cell_row, hdr, raw, "points >= 0", pos)
        numbers[f] = num
        if f in _EXTRA_FIELDS:
            _check_cap(fails, framework, f, np.where(neg, np.nan, num), cell_unit, cell_year, cell_row, hdr, pos,
                       warnings_extra)
            continue
        check = has & ~neg & valid_node
        over = check & (num > node_max + _TOL)
        if over.any():
            idx = np.flatnonzero(over)
            exp = {c: f"at most {maxp[c]:g} points (max_points of node {c})" for c in pd.unique(cell_node[idx])}
            fails.add_cells(cell_row[idx], _pick(hdr, idx), raw[idx], [exp[c] for c in cell_node[idx]], _pick(pos, idx))
        if f == "survey_points":
            wrong = check & (node_how != "survey")
            why = "no survey_points: node {c} is not assessed by survey (enter self_score / appraised_score)"
        else:
            wrong = check & (node_how == "survey")
            why = f"no {f}: node {{c}} is assessed by the sociological survey (enter survey_points)"
        if wrong.any():
            idx = np.flatnonzero(wrong)
            fails.add_cells(cell_row[idx], _pick(hdr, idx), raw[idx], [why.format(c=c) for c in cell_node[idx]],
                            _pick(pos, idx))
        if f != "survey_points" and rubrics:
            cand = check & ~over & ~wrong & np.isin(cell_node, list(rubrics))
            for c in pd.unique(cell_node[cand]):
                levels = np.array([lv[0] for lv in rubrics[c]])
                sel = np.flatnonzero(cand & (cell_node == c))
                off = ~np.isclose(num[sel][:, None], levels[None, :], rtol=0, atol=1e-9).any(axis=1)
                if off.any():
                    idx = sel[off]
                    text = "; ".join(f"{_vn(p)} ({lv})" if lv else _vn(p) for p, lv, _ in rubrics[c])
                    fails.add_cells(cell_row[idx], _pick(hdr, idx), raw[idx],
                                    f"one of the rubric levels of node {c}: {text}", _pick(pos, idx))

    texts: dict[str, np.ndarray] = {}
    for f in _TEXT_FIELDS + _APPRAISAL_TEXT:
        if f in values:
            texts[f] = _texts(values[f])
            nul = pd.Series(texts[f], dtype=object).str.contains("\x00", regex=False).to_numpy(dtype=bool)
            if nul.any():
                idx = np.flatnonzero(nul)
                shown = np.array([t.replace("\x00", "\\x00") for t in texts[f][idx]], dtype=object)
                fails.add_cells(cell_row[idx], headers[f], shown, _EXPECT_NO_NUL, positions[f])
    appraisal = [f for f in APPRAISAL_COLUMNS if f in values]
    rounds = None
    if "appraisal_round" in values:
        rounds, bad_r = _rounds(values["appraisal_round"])
        _fail_cells(fails, bad_r, cell_row, headers["appraisal_round"], values["appraisal_round"], _EXPECT_ROUND,
                    positions["appraisal_round"])
    elif layout == "wide" and "appraisal_round" in col_of:
        appraisal = ["appraisal_round"]
        # the row's round goes with each score the row gives
        rounds = np.where(np.isnan(numbers[wide_score]), np.nan, wide_rounds) if m else np.zeros(0)

    if progress is not None:
        progress(2, steps)
    if fails:
        raise ValidationError(f"file {info.file} has problems; nothing was imported", fails.table())

    out = pd.DataFrame({
        "unit_code": cell_unit.astype(str) if m else np.empty(0, dtype=str),
        "year": np.asarray(cell_year, dtype=np.int64),
        "node_code": cell_node.astype(str) if m else np.empty(0, dtype=str),
    })
    for f in SCORE_FIELDS + _EXTRA_FIELDS:
        out[f] = numbers.get(f, np.full(m, np.nan))
    for f in _TEXT_FIELDS:
        out[f] = texts[f] if f in texts else np.full(m, "", dtype=object)
        out[f] = out[f].astype(str)
    for f in appraisal:
        if f == "appraisal_round":
            none = np.isnan(rounds)
            out[f] = pd.arrays.IntegerArray(np.where(none, 0, rounds).astype(np.int64), none)
        else:
            out[f] = texts[f].astype(str)
    warnings = list(info.warnings) + warnings_extra
    for c in ignored:
        if canonical_header(header_of[c]) in _INFORMATIONAL:
            continue
        if not _blank_mask(table[[c]].to_numpy(dtype=object)).all():
            warnings.append(f"column {header_of[c]} was not read ({layout} layout)")
    out = out[LONG_COLUMNS + appraisal]
    out.attrs["source"] = {"file": info.file, "sheet": info.sheet, "header_row": info.header_row, "layout": layout,
                           "encoding": info.encoding, "delimiter": info.delimiter}
    out.attrs["warnings"] = warnings
    out.attrs["file"] = info.file
    out.attrs["sheet"] = info.sheet
    # an array.array, not a list or a numpy array: pandas deep-copies attrs at every step (a list of a
    # million ints takes a quarter of a second) and compares them in concat (an ndarray raises there)
    rows = array("q")
    rows.frombytes(np.ascontiguousarray(cell_row, dtype=np.int64).tobytes())
    out.attrs["rows"] = rows
    if progress is not None:
        progress(steps, steps)
    return out


def _check_cap(fails: _Failures, framework: Framework, field: str, num: np.ndarray, units: np.ndarray,
               years: np.ndarray, rows: np.ndarray, header: str, pos: int, warnings: list[str]) -> None:
    """Bonus or penalty points: their sum per unit and year at most the framework's cap.

    Every row of a sum over the cap is named, with the number read. A
    framework without a cap gives no such points: the roll-up leaves them
    out, which a warning says.
    """
    has = ~np.isnan(num) & (num != 0)
    if not has.any():
        return
    cap = framework.bonus_cap if field == "bonus" else framework.penalty_cap
    if cap is None:
        warnings.append(f"column {header} holds {field} points, but framework {framework.id} has no {field} cap: "
                        "the results do not count them")
        return
    idx = np.flatnonzero(has)
    keys = pd.DataFrame({"u": units[idx], "y": years[idx], "i": idx, "x": num[idx]})
    total = keys.groupby(["u", "y"], sort=False)["x"].transform("sum").to_numpy()
    over = total > cap + _TOL
    if not over.any():
        return
    sel = keys[over].assign(total=total[over])
    rows_of = sel.groupby(["u", "y"], sort=False)["i"].agg(list).to_dict()
    expected = []
    for u, y, i, t in zip(sel["u"], sel["y"], sel["i"], sel["total"]):
        text = f"{field} points of at most {cap:g} per unit and year (the framework's {field} cap)"
        group = rows_of[(u, y)]
        if len(group) > 1:
            text += (f"; {u}, {y} has {t:g} in all, on rows " + ", ".join(str(rows[j]) for j in group))
        expected.append(text)
    at = sel["i"].to_numpy()
    fails.add_cells(rows[at], header, num[at].tolist(), expected, pos)


def _pick(x: Any, idx: np.ndarray) -> Any:
    return x[idx] if isinstance(x, np.ndarray) else x


def _fail_mask(fails: _Failures, mask: np.ndarray, rownums: np.ndarray, column: str, raw: np.ndarray,
               expected: str, pos: int) -> None:
    if mask.any():
        idx = np.flatnonzero(mask)
        fails.add_cells(rownums[idx], column, raw[idx], expected, pos)


def _fail_cells(fails: _Failures, mask: np.ndarray, rows: np.ndarray, header: Any, raw: np.ndarray,
                expected: str, pos: Any) -> None:
    if mask.any():
        idx = np.flatnonzero(mask)
        fails.add_cells(rows[idx], _pick(header, idx), raw[idx], expected, _pick(pos, idx))


def _vn(x: float) -> str:
    """A number as Vietnamese offices write it (decimal comma), without trailing zeros."""
    return f"{x:g}".replace(".", ",")


# -- templates ----------------------------------------------------------------

def _unit_names(units: pd.DataFrame) -> list[str]:
    for col in ("name", "name_vi", "unit_name"):
        if col in units.columns:
            return ["" if pd.isna(v) else str(v) for v in units[col]]
    return [""] * len(units)


def score_template(
    framework: Framework,
    units: pd.DataFrame,
    year: int,
    path: str | Path,
    *,
    layout: str = "wide",
) -> Path:
    """Write the blank score sheet for units to fill in.

    Parameters
    ----------
    framework
        The framework to score (must be scorable).
    units
        The units to list: column ``code`` and optionally ``name``.
    year
        The year being assessed (pre-filled in the ``year`` column).
    path
        Where to write; a path ending ``.csv`` gives a plain CSV (UTF-8
        with BOM, header row then one row per unit), anything else an
        ``.xlsx`` workbook.
    layout
        ``"wide"``: header ``unit_code, unit_name, year`` then one column
        per self-assessed leaf code (rows above the header give each leaf's
        name and max_points); ``"long"``: one row per unit and leaf with
        ``unit_code, unit_name, year, node_code, node_name, max_points,
        self_score, evidence, explanation``.

    Returns
    -------
    pathlib.Path
        The file written. The workbook's second sheet, "Hướng dẫn", lists
        every node (code, level, name, max_points, how it is assessed,
        rubric levels, guidance). Nodes assessed by the sociological survey
        get no self-assessment column or row and are marked in the guide.
        Filling the template and reading it with :func:`read_scores` gives
        the scores back.
    """
    if layout not in ("wide", "long"):
        raise ValueError(f"layout must be 'wide' or 'long', not {layout!r}")
    framework.require_scorable()
    p = Path(path)
    leaves = framework.leaves
    self_leaves = leaves[leaves["assessed_by"] != "survey"]
    codes = [str(c) for c in units["code"]]
    names = _unit_names(units)
    if layout == "wide":
        header = ["unit_code", "unit_name", "year"] + self_leaves["code"].tolist()
        body = [[c, nm, int(year)] + [None] * len(self_leaves) for c, nm in zip(codes, names)]
    else:
        header = ["unit_code", "unit_name", "year", "node_code", "node_name", "max_points",
                  "self_score", "evidence", "explanation"]
        body = [[c, nm, int(year), lf.code, lf.name_vi, float(lf.max_points), None, "", ""]
                for c, nm in zip(codes, names) for lf in self_leaves.itertuples()]
    if p.suffix.lower() == ".csv":
        with p.open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for row in body:
                w.writerow(["" if v is None else escape_formula(v) for v in row])
        return p
    _template_xlsx(framework, self_leaves, header, body, year, p, layout)
    return p


def _template_xlsx(framework: Framework, self_leaves: pd.DataFrame, header: list, body: list[list],
                   year: int, p: Path, layout: str) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(p), {"strings_to_formulas": False, "strings_to_numbers": False,
                                      "strings_to_urls": False})
    try:
        title_fmt = wb.add_format({"bold": True, "font_size": 13})
        note_fmt = wb.add_format({"italic": True, "text_wrap": True, "valign": "top", "font_color": "#444444"})
        head_fmt = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
        text_fmt = wb.add_format({"num_format": "@"})
        num_fmt = wb.add_format({"num_format": "0.##"})
        ws = wb.add_worksheet("Bảng điểm")
        title = f"Bảng tự chấm điểm Chỉ số CCHC năm {year} – {framework.name_vi}"
        ncols = len(header)
        if ncols > 1:
            ws.merge_range(0, 0, 0, ncols - 1, escape_formula(title), title_fmt)
        else:
            ws.write_string(0, 0, escape_formula(title), title_fmt)
        if layout == "wide":
            ws.merge_range(1, 0, 1, 2, "Tên tiêu chí (nhập điểm tự chấm dưới mã tiêu chí; xem sheet Hướng dẫn)",
                           note_fmt)
            ws.merge_range(2, 0, 2, 2, "Điểm tối đa", note_fmt)
            for j, lf in enumerate(self_leaves.itertuples(), start=3):
                ws.write_string(1, j, escape_formula(lf.name_vi), note_fmt)
                ws.write_number(2, j, float(lf.max_points), note_fmt)
            ws.set_row(1, 60)
            hrow = 3
        else:
            ws.merge_range(1, 0, 1, ncols - 1, "Nhập điểm tự chấm vào cột self_score; điểm điều tra XHH không "
                                               "tự chấm (xem sheet Hướng dẫn)", note_fmt)
            hrow = 2
        ws.write_row(hrow, 0, header, head_fmt)
        for i, row in enumerate(body, start=hrow + 1):
            for j, v in enumerate(row):
                if v is None:
                    continue
                if isinstance(v, str):
                    ws.write_string(i, j, escape_formula(v), text_fmt if j == 0 else None)
                else:
                    ws.write_number(i, j, v)
        first, last = hrow + 1, hrow + max(len(body), 1)
        if layout == "wide":
            for j, lf in enumerate(self_leaves.itertuples(), start=3):
                _validation(ws, first, j, last, j, lf)
            ws.set_column(3, ncols - 1, 9, num_fmt)
            ws.freeze_panes(hrow + 1, 3)
        else:
            ws.set_column(4, 4, 50)
            ws.set_column(7, 8, 30)
            ws.freeze_panes(hrow + 1, 0)
        ws.set_column(0, 0, 14, text_fmt)
        ws.set_column(1, 1, 30)

        g = wb.add_worksheet("Hướng dẫn")
        g.write_string(0, 0, escape_formula(f"{framework.name_vi} ({framework.id})"), title_fmt)
        g.write_string(1, 0, "Chỉ nhập điểm vào tiêu chí có 'Nhập điểm' = có; dùng dấu phẩy hoặc dấu chấm thập phân "
                             "(0,5 hoặc 0.5). Tiêu chí điều tra xã hội học không tự chấm.", note_fmt)
        g.write_row(3, 0, ["Mã tiêu chí (code)", "Cấp (level)", "Tên tiêu chí (name_vi)", "Điểm tối đa (max_points)",
                           "Cách chấm (assessed_by)", "Mức điểm (rubric)", "Nhập điểm", "Hướng dẫn chấm"], head_fmt)
        how = {"self": "tự chấm", "survey": "điều tra XHH", "computed": "tổng các tiêu chí con"}
        for i, nd in enumerate(framework.nodes.itertuples(), start=4):
            rubric = "; ".join(f"{_vn(pt)} = {lv}" for pt, lv, _ in nd.rubric) if nd.rubric else ""
            if not nd.is_leaf:
                entry = "không (tổng các tiêu chí con)"
            elif nd.assessed_by == "survey":
                entry = "không (điều tra xã hội học)"
            else:
                entry = "có"
            g.write_string(i, 0, nd.code)
            g.write_string(i, 1, nd.level)
            g.write_string(i, 2, escape_formula(nd.name_vi))
            g.write_number(i, 3, float(nd.max_points))
            g.write_string(i, 4, how.get(nd.assessed_by, nd.assessed_by))
            g.write_string(i, 5, escape_formula(rubric))
            g.write_string(i, 6, entry)
            g.write_string(i, 7, escape_formula(nd.guidance_vi))
        g.set_column(0, 1, 14)
        g.set_column(2, 2, 60)
        g.set_column(3, 6, 16)
        g.set_column(7, 7, 60)
        g.freeze_panes(4, 0)
    finally:
        wb.close()


def _validation(ws: Any, r0: int, c0: int, r1: int, c1: int, leaf: Any) -> None:
    if leaf.rubric:
        levels = sorted({float(p) for p, _, _ in leaf.rubric}, reverse=True)
        ws.data_validation(r0, c0, r1, c1, {
            "validate": "list", "source": [f"{x:g}" for x in levels],
            "error_title": "Điểm không hợp lệ", "error_message": "Chọn một mức điểm: " + "; ".join(_vn(x) for x in levels),
            "error_type": "warning"})
    else:
        ws.data_validation(r0, c0, r1, c1, {
            "validate": "decimal", "criteria": "between", "minimum": 0, "maximum": float(leaf.max_points),
            "error_title": "Điểm không hợp lệ",
            "error_message": f"Điểm từ 0 đến {_vn(float(leaf.max_points))}", "error_type": "warning"})
