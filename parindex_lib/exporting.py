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
from .importing import LONG_COLUMNS
from .safety import escape_formula

__all__ = ["LONG_COLUMNS", "FORMATS", "write_scores_file", "write_table"]

#: Formats :func:`write_table` writes.
FORMATS = ("csv", "xlsx")
_XLSX_TEXT_LIMIT = 32_767
_SCORE_NUMBERS = ("self_score", "appraised_score", "survey_points", "bonus", "penalty")


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
                v = _cell(v)
                if isinstance(v, str) and len(v) > _XLSX_TEXT_LIMIT:
                    too_long.append({"row": i + 2, "column": str(c), "value": v[:40] + "...",
                                     "expected": f"text of at most {_XLSX_TEXT_LIMIT:,} characters (Excel's limit per "
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


def _cell(v: Any) -> Any:
    """A text-column value ready for xlsx: escaped text, numbers, or None for blanks."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        x = float(v)
        return None if not math.isfinite(x) else (int(v) if isinstance(v, (int, np.integer)) else x)
    if isinstance(v, str):
        return escape_formula(v)
    return escape_formula(str(v))
