"""Writing scores and results tables to CSV and Excel.

Every text cell is protected against formula injection
(:func:`parindex_lib.safety.escape_formula`); numbers stay numbers and blank
(NaN) stays blank, never zero.

CSV encoding: files written to a path or a binary stream are UTF-8 *with* a
byte-order mark, so Excel shows Vietnamese accents correctly; text streams
(``sys.stdout``, ``io.StringIO``) get no byte-order mark, so the output can
be piped into other programs. Lines end with ``\r\n`` (RFC 4180, as Excel
writes CSV), and a field holding a line break of any kind (``\r``, ``\n``
or ``\r\n``) is quoted, so that it reads back as one cell.

:func:`write_appraisal_sheet` writes the sheet an appraisal council fills
in: the units' self scores beside empty (or stored) appraised scores, with
the columns for the council's reasons, the unit's response and the round,
under Vietnamese headers that :func:`parindex_lib.importing.read_scores`
reads back.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from .errors import ValidationError
from .framework import Framework
from .importing import LONG_COLUMNS, _column_letter
from .safety import escape_formula

__all__ = ["LONG_COLUMNS", "FORMATS", "APPRAISAL_SHEET_HEADERS", "XLSX_TEXT_LIMIT", "write_scores_file",
           "write_appraisal_sheet", "write_table", "write_xlsx_value", "xlsx_cell"]

#: Formats :func:`write_table` writes.
FORMATS = ("csv", "xlsx")
#: The most characters Excel keeps in one cell.
XLSX_TEXT_LIMIT = 32_767
_SCORE_NUMBERS = ("self_score", "appraised_score", "survey_points", "bonus", "penalty")

#: The columns of :func:`write_appraisal_sheet`, in order, and their Vietnamese headers (each one a
#: header :func:`parindex_lib.importing.canonical_header` reads as the column's name).
APPRAISAL_SHEET_HEADERS: dict[str, str] = {
    "unit_code": "Mã đơn vị",
    "unit_name": "Tên đơn vị",
    "year": "Năm",
    "node_code": "Mã tiêu chí",
    "node_name": "Tên tiêu chí",
    "max_points": "Điểm tối đa",
    "self_score": "Điểm tự chấm",
    "evidence": "Tài liệu kiểm chứng",
    "explanation": "Thuyết minh",
    "appraised_score": "Điểm thẩm định",
    "appraisal_reason": "Lý do điều chỉnh",
    "unit_response": "Giải trình của đơn vị",
    "appraisal_round": "Vòng thẩm định",
}
_APPRAISAL_TEXT = ("evidence", "explanation", "appraisal_reason", "unit_response")


def write_scores_file(
    scores: pd.DataFrame,
    path_or_buffer: str | os.PathLike | IO,
    *,
    format: str = "csv",
    decimal: str = ".",
) -> None:
    """Write scores in the long form.

    Parameters
    ----------
    scores
        Long-form scores: ``unit_code``, ``year``, ``node_code`` and any of
        ``self_score``, ``appraised_score``, ``survey_points``, ``bonus``,
        ``penalty``, ``explanation``, ``evidence`` (missing ones are written
        blank). Other columns are not written.
    path_or_buffer
        A path, a binary stream, or (CSV only) a text stream such as
        ``sys.stdout``.
    format
        ``"csv"`` or ``"xlsx"`` (sheet ``scores``, written with xlsxwriter).
    decimal
        CSV decimal mark: ``"."`` (default, with ``,`` between fields) or
        ``","`` (with ``;`` between fields, as Vietnamese Excel reads).

    Notes
    -----
    The file has the columns of :data:`LONG_COLUMNS` in order and reads back
    with :func:`parindex_lib.importing.read_scores` to the same table.

    Raises
    ------
    ValidationError
        When ``unit_code``, ``year`` or ``node_code`` is missing.
    """
    missing = [c for c in ("unit_code", "year", "node_code") if c not in scores.columns]
    if missing:
        raise ValidationError("scores to write lack key columns", [
            {"column": c, "value": ", ".join(map(str, scores.columns)), "expected": "the long form: " + ", ".join(LONG_COLUMNS)}
            for c in missing])
    out = scores.copy()
    for c in _SCORE_NUMBERS:
        if c not in out.columns:
            out[c] = np.nan
    for c in ("explanation", "evidence"):
        if c not in out.columns:
            out[c] = ""
    write_table(out[LONG_COLUMNS], path_or_buffer, format, sheet_name="scores", decimal=decimal)


def write_appraisal_sheet(
    scores: pd.DataFrame,
    framework: Framework,
    path: str | os.PathLike | IO,
    *,
    units: pd.DataFrame | None = None,
    format: str | None = None,
) -> pd.DataFrame:
    """Write the sheet an appraisal council fills in (bảng thẩm định).

    One row per unit, year and self-assessed leaf of ``framework`` (tree
    order), under Vietnamese headers (:data:`APPRAISAL_SHEET_HEADERS`):
    ``Mã đơn vị`` (unit_code), ``Tên đơn vị`` (unit_name), ``Năm`` (year),
    ``Mã tiêu chí`` (node_code), ``Tên tiêu chí`` (node_name), ``Điểm tối
    đa`` (max_points), ``Điểm tự chấm`` (self_score), ``Tài liệu kiểm
    chứng`` (evidence), ``Thuyết minh`` (explanation), ``Điểm thẩm định``
    (appraised_score), ``Lý do điều chỉnh`` (appraisal_reason), ``Giải
    trình của đơn vị`` (unit_response), ``Vòng thẩm định``
    (appraisal_round). The council enters the appraised score and, where
    it differs from the self score, the reason; the unit's response and
    the round go in their columns. Read back with
    :func:`parindex_lib.importing.read_scores` (long layout), the sheet
    gives these values by their column names, and
    :meth:`parindex_lib.store.TenantSession.write_scores` then holds every
    appraised score that differs from the self score to the appraisal
    rule. Nodes assessed by the sociological survey are not appraised and
    get no row.

    Parameters
    ----------
    scores
        Long-form scores of the units and years to appraise, as
        :meth:`parindex_lib.store.TenantSession.scores` gives them:
        ``unit_code``, ``year`` and any of ``node_code``, ``self_score``,
        ``appraised_score``, ``evidence``, ``explanation``,
        ``appraisal_reason``, ``unit_response``, ``appraisal_round`` (the
        stored values are pre-filled; leaves without a row are blank). With
        a ``framework_id`` column, only the rows of ``framework`` are used.
    framework
        The framework the units are scored with (names and max_points).
    path
        A path or a binary stream.
    units
        Optional: the units' ``code`` and ``name`` (or ``name_vi``), for the
        unit_name column.
    format
        ``"xlsx"`` (a title row, a note, the header on row 3, sheet "Thẩm
        định") or ``"csv"`` (the header on row 1); None: from the path's
        extension, xlsx when there is none.

    Returns
    -------
    pandas.DataFrame
        The rows written, with the column names of
        :data:`APPRAISAL_SHEET_HEADERS` (in that order) instead of the
        headers.

    Raises
    ------
    ValidationError
        When ``scores`` lacks ``unit_code`` or ``year``.
    """
    missing = [c for c in ("unit_code", "year") if c not in scores.columns]
    if missing:
        raise ValidationError("scores to appraise lack key columns", [
            {"column": c, "value": ", ".join(map(str, scores.columns)), "expected": "columns unit_code and year"}
            for c in missing])
    if format is None:
        suffix = Path(path).suffix.lower() if isinstance(path, (str, os.PathLike)) else ""
        format = "csv" if suffix == ".csv" else "xlsx"
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    src = scores
    if "framework_id" in src.columns:
        src = src[src["framework_id"].astype(str) == framework.id]
    leaves = framework.leaves[framework.leaves["assessed_by"] != "survey"]
    pairs = list(dict.fromkeys(zip(src["unit_code"].astype(str), src["year"].astype(int))))
    names: dict[str, str] = {}
    if units is not None and "code" in units.columns:
        col = next((c for c in ("name", "name_vi", "unit_name") if c in units.columns), None)
        if col is not None:
            names = {str(c): ("" if pd.isna(v) else str(v)) for c, v in zip(units["code"], units[col])}
    stored: dict[tuple, dict] = {}
    if "node_code" in src.columns:
        for rec in src.to_dict("records"):
            stored[(str(rec["unit_code"]), int(rec["year"]), str(rec["node_code"]))] = rec
    rows = []
    for unit, year in pairs:
        for leaf in leaves.itertuples():
            rec = stored.get((unit, year, leaf.code), {})
            row = {"unit_code": unit, "unit_name": names.get(unit, ""), "year": year, "node_code": leaf.code,
                   "node_name": leaf.name_vi, "max_points": float(leaf.max_points)}
            for c in ("self_score", "appraised_score"):
                row[c] = _number(rec.get(c))
            for c in _APPRAISAL_TEXT:
                v = rec.get(c)
                row[c] = "" if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else str(v)
            r = _number(rec.get("appraisal_round"))
            row["appraisal_round"] = None if r is None else int(r)
            rows.append(row)
    table = pd.DataFrame(rows, columns=list(APPRAISAL_SHEET_HEADERS))
    table = table.astype({"year": "int64", "max_points": "float64", "self_score": "float64",
                          "appraised_score": "float64", "appraisal_round": "Int64"})
    if format == "csv":
        write_table(table.rename(columns=APPRAISAL_SHEET_HEADERS), path, "csv")
    else:
        _appraisal_xlsx(table, framework, path)
    return table


def _number(v: Any) -> float | None:
    if v is None or v is pd.NA or isinstance(v, (str, bool)):
        return None
    x = float(v)
    return x if math.isfinite(x) else None


def _appraisal_xlsx(table: pd.DataFrame, framework: Framework, target: Any) -> None:
    import xlsxwriter

    if isinstance(target, io.TextIOBase):
        raise ValueError("xlsx needs a path or a binary stream, not a text stream")
    options = {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False}
    if isinstance(target, (str, os.PathLike)):
        wb = xlsxwriter.Workbook(str(target), options)
    else:
        wb = xlsxwriter.Workbook(target, {**options, "in_memory": True})
    cols = list(APPRAISAL_SHEET_HEADERS)
    at = {c: j for j, c in enumerate(cols)}
    try:
        title_fmt = wb.add_format({"bold": True, "font_size": 13})
        note_fmt = wb.add_format({"italic": True, "text_wrap": True, "valign": "top", "font_color": "#444444"})
        head_fmt = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
        fill_fmt = wb.add_format({"bold": True, "bg_color": "#FFF2CC", "border": 1, "text_wrap": True})
        text_fmt = wb.add_format({"num_format": "@"})
        wrap_fmt = wb.add_format({"text_wrap": True, "valign": "top"})
        ws = wb.add_worksheet("Thẩm định")
        years = sorted(set(table["year"].tolist()))
        title = (f"Bảng thẩm định điểm Chỉ số CCHC năm {', '.join(map(str, years))} – {framework.name_vi}"
                 if years else f"Bảng thẩm định điểm Chỉ số CCHC – {framework.name_vi}")
        last = len(cols) - 1
        ws.merge_range(0, 0, 0, last, escape_formula(title), title_fmt)
        ws.merge_range(1, 0, 1, last, "Nhập Điểm thẩm định; khi điểm thẩm định khác điểm tự chấm, ghi Lý do điều "
                                      "chỉnh (bắt buộc). Đơn vị ghi ý kiến vào cột Giải trình của đơn vị; Vòng thẩm "
                                      "định là 1, 2, ...", note_fmt)
        ws.set_row(1, 32)
        hrow = 2
        for j, c in enumerate(cols):
            fmt = fill_fmt if c in ("appraised_score", "appraisal_reason", "unit_response", "appraisal_round") \
                else head_fmt
            ws.write_string(hrow, j, APPRAISAL_SHEET_HEADERS[c], fmt)
        for i, rec in enumerate(table.to_dict("records"), start=hrow + 1):
            for j, c in enumerate(cols):
                v = rec[c]
                if c in ("unit_code", "node_code"):
                    ws.write_string(i, j, escape_formula(str(v)), text_fmt)
                elif c in ("year", "appraisal_round"):
                    if v is not None and v is not pd.NA:
                        ws.write_number(i, j, int(v))
                else:
                    write_xlsx_value(ws, i, j, None if isinstance(v, str) and not v else xlsx_cell(v))
        first, end = hrow + 1, hrow + max(len(table), 1)
        a, mx = at["appraised_score"], at["max_points"]
        cell = f"{_column_letter(a)}{first + 1}"
        ws.data_validation(first, a, end, a, {
            "validate": "custom", "value": f"=AND(ISNUMBER({cell}),{cell}>=0,{cell}<={_column_letter(mx)}{first + 1})",
            "error_title": "Điểm không hợp lệ", "error_message": "Điểm thẩm định từ 0 đến điểm tối đa của tiêu chí",
            "error_type": "warning"})
        r = at["appraisal_round"]
        ws.data_validation(first, r, end, r, {
            "validate": "integer", "criteria": ">=", "value": 1, "error_title": "Vòng không hợp lệ",
            "error_message": "Vòng thẩm định là 1, 2, ...", "error_type": "warning"})
        ws.set_column(at["unit_code"], at["unit_code"], 12, text_fmt)
        ws.set_column(at["unit_name"], at["unit_name"], 24)
        ws.set_column(at["node_code"], at["node_code"], 10, text_fmt)
        ws.set_column(at["node_name"], at["node_name"], 44, wrap_fmt)
        ws.set_column(at["evidence"], at["explanation"], 28, wrap_fmt)
        ws.set_column(at["appraisal_reason"], at["unit_response"], 36, wrap_fmt)
        ws.freeze_panes(hrow + 1, at["node_name"] + 1)
        if len(table):
            ws.autofilter(hrow, 0, end, last)
    finally:
        wb.close()


def write_table(
    df: pd.DataFrame,
    path: str | os.PathLike | IO,
    format: str | None = None,
    *,
    sheet_name: str = "results",
    decimal: str = ".",
) -> None:
    """Write any table (results, ranks, scores) as CSV or Excel.

    Parameters
    ----------
    df
        The table; its columns are written in order, its index is not.
    path
        A path, a binary stream, or (CSV only) a text stream such as
        ``sys.stdout``.
    format
        ``"csv"`` or ``"xlsx"``; None: from the path's extension (CSV when
        there is none).
    sheet_name
        The worksheet's name (xlsx).
    decimal
        CSV decimal mark, ``"."`` or ``","`` (then ``;`` separates fields).

    Raises
    ------
    ValueError
        For an unknown format, or xlsx to a text stream.
    ValidationError
        For text longer than Excel's 32,767 characters per cell (xlsx).

    Examples
    --------
    >>> import io
    >>> buf = io.StringIO()
    >>> write_table(pd.DataFrame({"unit_code": ["=1+1"], "index_pct": [85.63]}), buf, "csv")
    >>> buf.getvalue()
    "unit_code,index_pct\\r\\n'=1+1,85.63\\r\\n"
    >>> buf = io.StringIO()
    >>> write_table(pd.DataFrame({"explanation": ["dòng 1\\rdòng 2"]}), buf, "csv")
    >>> buf.getvalue()
    'explanation\\r\\n"dòng 1\\rdòng 2"\\r\\n'
    """
    if format is None:
        suffix = Path(path).suffix.lower() if isinstance(path, (str, os.PathLike)) else ""
        format = "xlsx" if suffix in (".xlsx", ".xlsm") else "csv"
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    if decimal not in (".", ","):
        raise ValueError(f"decimal must be '.' or ',', not {decimal!r}")
    if format == "csv":
        _write_csv(df, path, decimal)
    else:
        _write_xlsx(df, path, sheet_name)


def _escaped(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns escaped; numeric columns untouched."""
    out = df.copy()
    out.columns = [escape_formula(str(c)) for c in df.columns]
    for i, c in enumerate(df.columns):
        col = df.iloc[:, i]
        if pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            continue
        out.iloc[:, i] = col.map(escape_formula, na_action="ignore").astype(object)
    return out


def _write_csv(df: pd.DataFrame, target: Any, decimal: str) -> None:
    sep = ";" if decimal == "," else ","
    table = _escaped(df)
    # QUOTE_MINIMAL quotes a field holding any character of the line terminator: with "\r\n", a bare
    # carriage return is quoted too (with "\n" alone it was not, and readers split the row there).
    kwargs = dict(index=False, sep=sep, decimal=decimal, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    if isinstance(target, (str, os.PathLike)):
        with open(target, "w", encoding="utf-8-sig", newline="") as fh:
            table.to_csv(fh, **kwargs)
    elif isinstance(target, io.TextIOBase):
        table.to_csv(target, **kwargs)
    else:
        wrapper = io.TextIOWrapper(target, encoding="utf-8-sig", newline="")
        try:
            table.to_csv(wrapper, **kwargs)
            wrapper.flush()
        finally:
            wrapper.detach()


def _write_xlsx(df: pd.DataFrame, target: Any, sheet_name: str) -> None:
    import xlsxwriter

    if isinstance(target, io.TextIOBase):
        raise ValueError("xlsx needs a path or a binary stream, not a text stream")
    columns = []
    too_long: list[dict] = []
    for j, c in enumerate(df.columns):
        col = df.iloc[:, j]
        if pd.api.types.is_bool_dtype(col.dtype):
            columns.append([bool(v) for v in col])
        elif pd.api.types.is_numeric_dtype(col.dtype):
            arr = col.to_numpy(dtype=float, na_value=np.nan)
            columns.append([None if not math.isfinite(v) else (int(v) if pd.api.types.is_integer_dtype(col.dtype) else v)
                            for v in arr.tolist()])
        else:
            vals = []
            for i, v in enumerate(col.tolist()):
                v = xlsx_cell(v)
                if isinstance(v, str) and len(v) > XLSX_TEXT_LIMIT:
                    too_long.append({"row": i + 2, "column": str(c), "value": v[:40] + "...",
                                     "expected": f"text of at most {XLSX_TEXT_LIMIT:,} characters (Excel's limit per "
                                                 "cell); export as CSV instead"})
                vals.append(v)
            columns.append(vals)
    if too_long:
        raise ValidationError("the table has text too long for an Excel cell", too_long)
    options = {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False,
               "nan_inf_to_errors": False}
    if isinstance(target, (str, os.PathLike)):
        wb = xlsxwriter.Workbook(str(target), {**options, "constant_memory": True})
    else:
        wb = xlsxwriter.Workbook(target, {**options, "in_memory": True})
    try:
        ws = wb.add_worksheet(sheet_name[:31])
        head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
        ws.write_row(0, 0, [escape_formula(str(c)) for c in df.columns], head)
        for j, c in enumerate(df.columns):
            ws.set_column(j, j, min(max(len(str(c)) + 2, 10), 40))
        ws.freeze_panes(1, 0)
        for i, row in enumerate(zip(*columns), start=1) if columns else []:
            for j, v in enumerate(row):
                write_xlsx_value(ws, i, j, v)
        if len(df.columns):
            ws.autofilter(0, 0, max(len(df), 1), len(df.columns) - 1)
    finally:
        wb.close()


def write_xlsx_value(ws: Any, row: int, col: int, value: Any) -> None:
    """Write one prepared value (str, bool, number or None) to an xlsxwriter sheet with its own type.

    Text goes through ``write_string`` (never read as a formula or a number);
    None leaves the cell blank.
    """
    if value is None:
        return
    if isinstance(value, str):
        ws.write_string(row, col, value)
    elif isinstance(value, bool):
        ws.write_boolean(row, col, value)
    else:
        ws.write_number(row, col, value)


def xlsx_cell(v: Any, limit: int | None = None) -> Any:
    """A value ready for :func:`write_xlsx_value`: escaped text, a number, a bool, or None for blanks.

    Missing values (None, NA, NaT, NaN) and infinities are None; text is
    escaped so a spreadsheet never reads it as a formula
    (:func:`parindex_lib.safety.escape_formula`), cut to ``limit``
    characters first when one is given (Excel keeps at most 32,767 per
    cell).
    """
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        x = float(v)
        return None if not math.isfinite(x) else (int(v) if isinstance(v, (int, np.integer)) else x)
    text = v if isinstance(v, str) else str(v)
    return escape_formula(text if limit is None else text[:limit])
