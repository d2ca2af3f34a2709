"""Generated score sheets fed to the full import path (hypothesis).

Sheets are built at random: long or wide layout, any accepted spelling of the
headers (accents or not, NFD, upper case, extra spaces, line breaks), title
rows, extra columns, columns and rows in any order, numbers as number cells or
as text with a decimal point or comma, blanks, CSV in several encodings and
delimiters or an xlsx workbook. Then:

* a sheet made only of valid content imports, gives exactly the generated
  numbers, stores them, and the store's scores exported to CSV or xlsx read
  back equal;
* a sheet with hostile cells mixed in (text, NaN, inf, negatives, values over
  the maximum, unknown units and codes, wrong years, duplicates, formulas,
  booleans, random text) either imports cleanly with the same round trip or
  raises ``ValidationError`` / ``FileRefused`` with a well-formed failure
  table, and then leaves every row of the store as it was;
* random bytes, and valid workbooks with random bytes changed, never raise
  anything else.

Each example imports into a fresh copy of a store that already holds scores
of two tenants (``tests/data/bad/bad_corpus.py``). Each test runs 40 examples;
set ``PARINDEX_FUZZ_EXAMPLES`` to run more (300 each found nothing new).
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import os
import shutil
import sys
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xlsxwriter
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent / "data" / "bad"))
import bad_corpus as bc  # noqa: E402

from parindex_lib.errors import FAILURE_COLUMNS, FileRefused, ValidationError  # noqa: E402
from parindex_lib.exporting import write_scores_file  # noqa: E402
from parindex_lib.importing import LONG_COLUMNS, read_scores  # noqa: E402
from parindex_lib.store import Store  # noqa: E402

FUZZ = settings(deadline=None, max_examples=int(os.environ.get("PARINDEX_FUZZ_EXAMPLES", "40")), suppress_health_check=[HealthCheck.too_slow,
                                                                      HealthCheck.data_too_large])

LEAVES = {"1.1.1": 1.0, "1.1.2": 2.0, "1.2": 5.0, "2.2": 2.0}  # self-assessed leaves and their maxima
RUBRIC = (0.0, 0.5, 1.0)
UNITS = ["D01", "D02", "D04"]  # open for scoring (D03 is published, X01 is a commune)
YEARS = [2023, 2024]
HEADERS = {
    "unit_code": ["unit_code", "Mã đơn vị", "MÃ ĐƠN VỊ", "ma_don_vi", "Unit code", "Mã ĐV", "Mã cơ quan, đơn vị"],
    "unit_name": ["unit_name", "Tên đơn vị", "Cơ quan, đơn vị"],
    "year": ["year", "Năm", "NĂM", "nam", "Năm đánh giá"],
    "node_code": ["node_code", "Mã tiêu chí", "Mã TC", "ma_tieu_chi", "Mã"],
    "self_score": ["self_score", "Điểm tự chấm", "Điểm\ntự chấm", "diem tu cham", "Điểm tự đánh giá", "TỰ CHẤM"],
    "explanation": ["explanation", "Giải trình", "Thuyết minh"],
    "evidence": ["evidence", "Tài liệu kiểm chứng", "TLKC"],
}


# -- strategies --------------------------------------------------------------------------

@st.composite
def header(draw, canon: str) -> str:
    text = draw(st.sampled_from(HEADERS[canon]))
    if draw(st.booleans()):
        text = unicodedata.normalize("NFD", text)
    pad = draw(st.sampled_from(["", " ", "  ", "\u00a0"]))
    return pad + text + draw(st.sampled_from(["", " ", " (*)"]))


def leaf_header(draw, code: str) -> str:
    return draw(st.sampled_from([code, code + ".", f"{code} Tên tiêu chí", f"{code}. Nội dung", f"{code} - điểm"]))


@st.composite
def score(draw, code: str) -> float | None:
    if draw(st.integers(0, 5)) == 0:
        return None
    if code == "1.1.1":
        return draw(st.sampled_from(RUBRIC))
    return draw(st.integers(0, int(LEAVES[code] * 4))) / 4


# NUL is refused with a failure table (tests/test_hostile_files.py, nul_in_text_utf16.csv), so the
# text of sheets that must import cleanly leaves it out.
text_cells = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=25)


@st.composite
def valid_sheet(draw) -> dict:
    """A sheet of valid content: rows (header first) of raw cell values, and the scores it holds."""
    layout = draw(st.sampled_from(["long", "wide"]))
    units = draw(st.lists(st.sampled_from(UNITS), min_size=1, max_size=3, unique=True))
    year = draw(st.sampled_from(YEARS))
    expected = []
    if layout == "long":
        keys = [(u, c) for u in units for c in LEAVES]
        keys = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=len(keys), unique=True))
        cols = ["unit_code", "year", "node_code", "self_score"]
        extra = draw(st.lists(st.sampled_from(["unit_name", "explanation", "evidence"]), unique=True))
        cols += extra
        order = draw(st.permutations(cols))
        rows = []
        for u, c in keys:
            v = draw(score(c))
            cell = {"unit_code": u, "year": year, "node_code": c, "self_score": v, "unit_name": f"Đơn vị {u}",
                    "explanation": draw(text_cells), "evidence": draw(text_cells)}
            rows.append([cell[k] for k in order])
            expected.append((u, year, c, v))
        head = [draw(header(k)) for k in order]
    else:
        codes = draw(st.lists(st.sampled_from(list(LEAVES)), min_size=1, max_size=4, unique=True))
        lead = draw(st.permutations(["unit_code", "year"] + (["unit_name"] if draw(st.booleans()) else [])))
        head = [draw(header(k)) for k in lead] + [leaf_header(draw, c) for c in codes]
        rows = []
        for u in units:
            lead_cells = {"unit_code": u, "year": year, "unit_name": f"Đơn vị {u}"}
            vals = [draw(score(c)) for c in codes]
            rows.append([lead_cells[k] for k in lead] + vals)
            expected += [(u, year, c, v) for c, v in zip(codes, vals)]
    return {"layout": layout, "rows": [head] + rows, "expected": expected}


HOSTILE = st.one_of(
    st.sampled_from(["", "x", "NaN", "inf", "-inf", "-1", "5,5", "1.234,5", "=1+1", "+1", "@SUM(A1)", "-2+3",
                     "D99", "d01", "E01", "X01", "D03", "9.9", "1.1", "2.1", "2025", "1899", "năm 2024", "２０２４",
                     "0,25", "1,000", "1.5.", " 1.2 ", "#N/A", "TRUE", "1e309"]),
    st.booleans(), st.integers(-5, 3000), st.floats(allow_nan=False, allow_infinity=False, width=32), text_cells)


@st.composite
def hostile_sheet(draw) -> dict:
    """A valid sheet with hostile cells, rows and headers mixed in."""
    sheet = draw(valid_sheet())
    rows = [list(r) for r in sheet["rows"]]
    n_cells = sum(len(r) for r in rows[1:])
    for _ in range(draw(st.integers(0, min(4, n_cells)))):
        i = draw(st.integers(1, len(rows) - 1))
        j = draw(st.integers(0, len(rows[i]) - 1))
        rows[i][j] = draw(HOSTILE)
    if draw(st.integers(0, 4)) == 0:  # a duplicated row
        rows.append(list(rows[draw(st.integers(1, len(rows) - 1))]))
    if draw(st.integers(0, 5)) == 0:  # a header replaced
        rows[0][draw(st.integers(0, len(rows[0]) - 1))] = draw(st.sampled_from(["", "Ghi chú", "1.3", "1.1", "x"]))
    if draw(st.integers(0, 6)) == 0:  # a ragged row
        rows[-1] = rows[-1][: draw(st.integers(0, len(rows[-1])))]
    return {**sheet, "rows": rows}


@st.composite
def file_format(draw) -> dict:
    kind = draw(st.sampled_from(["csv", "xlsx"]))
    if kind == "xlsx":
        return {"kind": "xlsx", "numbers_as_text": draw(st.booleans()), "titles": draw(st.integers(0, 2))}
    return {"kind": "csv", "encoding": draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1258"])),
            "delimiter": draw(st.sampled_from([",", ";", "\t"])), "comma": draw(st.booleans()),
            "titles": draw(st.integers(0, 2))}


# -- writing the sheets ------------------------------------------------------------------------

def _number_text(v: float, comma: bool) -> str:
    text = f"{v:g}" if abs(v) < 1e15 else repr(v)
    return text.replace(".", ",") if comma else text


def write_sheet(rows: list[list], fmt: dict, folder: Path) -> Path:
    titles = [["BẢNG TỰ CHẤM ĐIỂM CHỈ SỐ CCHC NĂM 2024"], ["(giả định, dữ liệu kiểm thử)"]][: fmt["titles"]]
    if fmt["kind"] == "xlsx":
        path = folder / "sheet.xlsx"
        wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False,
                                             "strings_to_urls": False})
        ws = wb.add_worksheet("Điểm")
        for i, row in enumerate(titles + rows):
            for j, v in enumerate(row):
                if v is None:
                    continue
                if isinstance(v, bool):
                    ws.write_boolean(i, j, v)
                elif isinstance(v, (int, float)):
                    if fmt["numbers_as_text"] and i > len(titles):
                        ws.write_string(i, j, _number_text(v, comma=True))
                    else:
                        ws.write_number(i, j, v)
                else:
                    ws.write_string(i, j, v)
        wb.close()
        return path
    path = folder / "sheet.csv"
    out = []
    for row in titles + rows:
        cells = []
        for v in row:
            if v is None:
                cells.append("")
            elif isinstance(v, bool):
                cells.append("TRUE" if v else "FALSE")
            elif isinstance(v, int):
                cells.append(str(v))
            elif isinstance(v, float):
                cells.append(_number_text(v, fmt["comma"]))
            else:
                cells.append(v)
        out.append(cells)
    buf = io.StringIO()
    csv.writer(buf, delimiter=fmt["delimiter"], lineterminator="\r\n").writerows(out)
    text = buf.getvalue()
    if fmt["encoding"] == "cp1258":
        try:
            path.write_bytes(bc.to_cp1258(text))
            return path
        except UnicodeEncodeError:
            pass
    path.write_bytes((codecs.BOM_UTF8 if fmt["encoding"] == "utf-8-sig" else b"")
                     + text.encode("utf-8" if fmt["encoding"] == "utf-8-sig" else fmt["encoding"]
                                   if fmt["encoding"] != "cp1258" else "utf-8"))
    return path


# -- the store ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz_template") / "store.sqlite"
    bc.build_store(f"sqlite:///{path}")
    return path


class Fresh:
    """A fresh copy of the template store and an empty folder, per example."""

    def __init__(self, template: Path, root: Path):
        self.template, self.root, self.n = template, root, 0

    def __enter__(self) -> tuple[Store, Path]:
        self.n += 1
        folder = self.root / f"ex{self.n}"
        folder.mkdir()
        shutil.copy(self.template, folder / "store.sqlite")
        self.store = Store(f"sqlite:///{folder / 'store.sqlite'}", upgrade=False)
        self.folder = folder
        return self.store, folder

    def __exit__(self, *exc) -> None:
        self.store.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def fresh(template_db, tmp_path_factory) -> Fresh:
    return Fresh(template_db, tmp_path_factory.mktemp("fuzz"))


# -- the oracle ----------------------------------------------------------------------------

def attempt(store: Store, path: Path) -> tuple[str, object]:
    """Import a file: ("imported", scores) or ("invalid" / "refused", the error). Anything else propagates."""
    try:
        scores, _ = bc.import_file(store, path)
        return "imported", scores
    except FileRefused as exc:
        return "refused", exc
    except ValidationError as exc:
        return "invalid", exc


def check_failure_table(err: ValidationError, path: Path, n_rows: int) -> None:
    table = err.failures
    assert list(table.columns) == FAILURE_COLUMNS
    assert len(table) >= 1
    assert (table["file"] == path.name).all()
    assert table["expected"].map(lambda x: isinstance(x, str) and x != "").all()
    for r in table["row"]:
        assert r is None or (isinstance(r, int) and 1 <= r <= n_rows), (r, str(err))


def import_or_refuse_cleanly(store: Store, path: Path, n_rows: int) -> tuple[str, object]:
    """Import ``path``: a refusal must carry a well-formed failure table and leave the store as it was."""
    before = bc.store_checksum(store.engine)
    outcome, result = attempt(store, path)
    if outcome != "imported":
        check_failure_table(result, path, n_rows=n_rows)
        assert bc.store_checksum(store.engine) == before, "a refused file changed the store"
    return outcome, result


def check_stored_and_round_trip(store: Store, scores: pd.DataFrame, folder: Path) -> None:
    """The store holds what was read; its scores exported and read back are equal."""
    with store.session(tenant=bc.TENANT, user=bc.USER) as s:
        stored = s.scores()
    table = stored.set_index(["unit_code", "year", "node_code"])
    for r in scores.itertuples():
        if not math.isnan(r.self_score):
            assert table.loc[(r.unit_code, r.year, r.node_code), "self_score"] == r.self_score
        if r.explanation:
            assert table.loc[(r.unit_code, r.year, r.node_code), "explanation"] == r.explanation
    long = stored[LONG_COLUMNS].reset_index(drop=True)
    long["explanation"] = long["explanation"].fillna("")
    long["evidence"] = long["evidence"].fillna("")
    for fmt in ("csv", "xlsx"):
        out = folder / f"export.{fmt}"
        write_scores_file(long, out, format=fmt)
        back = read_scores(out, bc.framework(), bc.units())
        pd.testing.assert_frame_equal(back, long, check_dtype=False)


# -- the tests -------------------------------------------------------------------------------

@FUZZ
@given(sheet=valid_sheet(), fmt=file_format())
def test_valid_sheets_import_exactly_and_round_trip(fresh, sheet, fmt):
    with fresh as (store, folder):
        path = write_sheet(sheet["rows"], fmt, folder)
        outcome, result = attempt(store, path)
        assert outcome == "imported", f"{outcome}: {result}\n{sheet['rows']}\n{fmt}"
        got = sorted((r.unit_code, r.year, r.node_code, None if math.isnan(r.self_score) else r.self_score)
                     for r in result.itertuples())
        assert got == sorted(sheet["expected"])
        check_stored_and_round_trip(store, result, folder)


@FUZZ
@given(sheet=hostile_sheet(), fmt=file_format())
def test_hostile_sheets_import_cleanly_or_fail_cleanly(fresh, sheet, fmt):
    with fresh as (store, folder):
        path = write_sheet(sheet["rows"], fmt, folder)
        outcome, result = import_or_refuse_cleanly(store, path, n_rows=len(sheet["rows"]) + fmt["titles"])
        event(f"{outcome} ({sheet['layout']}, {fmt['kind']})")
        if outcome == "imported":
            check_stored_and_round_trip(store, result, folder)


@FUZZ
@given(data=st.binary(max_size=2_000), name=st.sampled_from(["scores.csv", "scores.xlsx", "scores.txt"]))
def test_random_bytes_never_escape(fresh, data, name):
    with fresh as (store, folder):
        path = folder / name
        path.write_bytes(data)
        outcome, _ = import_or_refuse_cleanly(store, path, n_rows=10**6)
        event(outcome)


@pytest.fixture(scope="module")
def good_workbook(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("wb") / "good.xlsx"
    bc.xlsx(path, {"Điểm": [bc.LONG] + [[u, int(y), c, s, e] for u, y, c, s, e in bc.GOOD]})
    return path.read_bytes()


@FUZZ
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=6),
       part=st.booleans())
def test_damaged_workbooks_never_escape(fresh, good_workbook, flips, part):
    """A valid workbook with bytes changed: either in the zip file itself, or inside its sheet XML."""
    with fresh as (store, folder):
        path = folder / "damaged.xlsx"
        if part:
            with zipfile.ZipFile(io.BytesIO(good_workbook)) as zf:
                parts = {n: zf.read(n) for n in zf.namelist()}
            xml = bytearray(parts["xl/worksheets/sheet1.xml"])
            for where, byte in flips:
                xml[int(where * len(xml))] = byte
            parts["xl/worksheets/sheet1.xml"] = bytes(xml)
            bc.write_zip(path, parts)
        else:
            data = bytearray(good_workbook)
            for where, byte in flips:
                data[int(where * len(data))] = byte
            path.write_bytes(bytes(data))
        outcome, _ = import_or_refuse_cleanly(store, path, n_rows=10**6)
        event(outcome)
