"""write_scores_file and write_table: real CSV and xlsx files read back with independent readers."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import openpyxl
import pandas as pd
import pytest

from parindex_lib.errors import ValidationError
from parindex_lib.exporting import APPRAISAL_SHEET_HEADERS, LONG_COLUMNS, write_appraisal_sheet, write_scores_file, write_table
from parindex_lib.framework import read_framework_yaml
from parindex_lib.importing import canonical_header, read_scores

NAN = math.nan
EVIL = ['=HYPERLINK("http://evil.example","bấm")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "=cmd|' /C calc'!A0"]


def scores() -> pd.DataFrame:
    return pd.DataFrame({
        "unit_code": ["D01", "D01", "=D02"],
        "year": [2024, 2024, 2024],
        "node_code": ["1.1.1", "1.2", "2.1.2"],
        "self_score": [2.0, 85.63, NAN],
        "appraised_score": [1.5, NAN, NAN],
        "survey_points": [NAN, NAN, 2.75],
        "bonus": [0.5, NAN, NAN],
        "penalty": [NAN, NAN, -0.0],
        "explanation": [EVIL[0], "Đã ban hành, đúng hạn", "- gạch đầu dòng"],
        "evidence": ["@evil", "", "https://vb.example/1"],
        "appraisal_reason": ["not written", "", ""],
    })


def read_csv_cells(path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline="")))


def test_csv_long_form_columns_escaping_and_numbers(tmp_path):
    p = tmp_path / "scores.csv"
    write_scores_file(scores(), p)
    rows = read_csv_cells(p)
    assert rows[0] == LONG_COLUMNS
    assert rows[1] == ["D01", "2024", "1.1.1", "2.0", "1.5", "", "0.5", "", "'" + EVIL[0], "'@evil"]
    assert rows[2][3] == "85.63" and rows[2][4] == ""
    assert rows[3][0] == "'=D02" and rows[3][8] == "'- gạch đầu dòng"
    # no cell a spreadsheet would run as a formula
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for c in r if c not in ("-0.0",))


def test_csv_decimal_comma(tmp_path):
    p = tmp_path / "vn.csv"
    write_scores_file(scores(), p, decimal=",")
    text = p.read_text(encoding="utf-8-sig")
    first = text.splitlines()[1].split(";")
    assert first[3:5] == ["2,0", "1,5"]


LINE_BREAKS = ["dòng 1\rdòng 2", "dòng 1\ndòng 2", "dòng 1\r\ndòng 2", "a\r\rb\n\nc", "cuối dòng\r"]


@pytest.mark.parametrize("decimal", [".", ","])
@pytest.mark.parametrize("target", ["path", "binary", "text"])
def test_line_breaks_inside_text_stay_in_their_cell(tmp_path, target, decimal):
    """A bare carriage return too: Excel and the csv module end a row at it unless the field is quoted."""
    table = pd.DataFrame({"unit_code": ["D01"] * len(LINE_BREAKS), "year": 2024, "node_code": "1.2",
                          "self_score": [1.0] * len(LINE_BREAKS), "explanation": LINE_BREAKS,
                          "evidence": LINE_BREAKS[::-1]})
    if target == "path":
        write_scores_file(table, tmp_path / "s.csv", decimal=decimal)
        text = (tmp_path / "s.csv").read_bytes().decode("utf-8-sig")
    elif target == "binary":
        buf = io.BytesIO()
        write_scores_file(table, buf, decimal=decimal)
        text = buf.getvalue().decode("utf-8-sig")
    else:
        buf = io.StringIO()
        write_scores_file(table, buf, decimal=decimal)
        text = buf.getvalue()
    sep = ";" if decimal == "," else ","
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True))
    assert len(rows) == 1 + len(LINE_BREAKS)
    assert [r[8] for r in rows[1:]] == LINE_BREAKS
    assert [r[9] for r in rows[1:]] == LINE_BREAKS[::-1]
    # every row ends with CRLF, and no line break is left outside quotes
    assert text.endswith("\r\n") and text.count("\r\n") >= len(rows)
    back = pd.read_csv(io.StringIO(text), sep=sep, decimal=decimal, dtype=str, keep_default_na=False)
    assert back["explanation"].tolist() == LINE_BREAKS


def test_csv_lines_end_with_crlf():
    buf = io.StringIO()
    write_table(pd.DataFrame({"a": ["x", "y"], "b": [1, 2]}), buf, "csv")
    assert buf.getvalue() == "a,b\r\nx,1\r\ny,2\r\n"


def test_csv_to_stdout_has_no_bom(capsys):
    import sys

    write_scores_file(scores(), sys.stdout)
    out = capsys.readouterr().out
    assert out.startswith("unit_code,year,node_code")
    assert "\ufeff" not in out


def test_csv_to_a_binary_buffer_has_a_bom():
    buf = io.BytesIO()
    write_scores_file(scores(), buf)
    assert buf.getvalue().startswith(b"\xef\xbb\xbfunit_code,")
    assert not buf.closed


def test_xlsx_numbers_are_numbers_text_is_escaped(tmp_path):
    p = tmp_path / "scores.xlsx"
    write_scores_file(scores(), p, format="xlsx")
    wb = openpyxl.load_workbook(p)
    assert wb.sheetnames == ["scores"]
    ws = wb["scores"]
    values = [[c.value for c in r] for r in ws.iter_rows()]
    assert values[0] == LONG_COLUMNS
    assert values[1][:5] == ["D01", 2024, "1.1.1", 2, 1.5]
    assert ws["D3"].data_type == "n" and ws["D3"].value == 85.63
    assert ws["E3"].value is None  # blank, never zero
    assert values[3][0] == "'=D02" and values[1][8] == "'" + EVIL[0] and values[1][9] == "'@evil"
    assert all(c.data_type != "f" for r in ws.iter_rows() for c in r)


def test_xlsx_to_a_binary_buffer():
    buf = io.BytesIO()
    write_scores_file(scores(), buf, format="xlsx")
    wb = openpyxl.load_workbook(io.BytesIO(buf.getvalue()))
    assert wb["scores"]["A2"].value == "D01"


def test_xlsx_refuses_text_streams():
    with pytest.raises(ValueError, match="binary"):
        write_scores_file(scores(), io.StringIO(), format="xlsx")


def test_missing_optional_columns_are_written_blank(tmp_path):
    p = tmp_path / "s.csv"
    write_scores_file(pd.DataFrame({"unit_code": ["D01"], "year": [2024], "node_code": ["1.2"], "self_score": [1.0]}), p)
    assert read_csv_cells(p)[1] == ["D01", "2024", "1.2", "1.0", "", "", "", "", "", ""]


def test_missing_key_columns_are_named():
    with pytest.raises(ValidationError) as info:
        write_scores_file(pd.DataFrame({"unit_code": ["D01"]}), io.StringIO())
    assert set(info.value.failures["column"]) == {"year", "node_code"}


@pytest.mark.parametrize("name, fmt", [("r.csv", "csv"), ("r.xlsx", "xlsx"), ("r.out", "csv")])
def test_write_table_infers_the_format(tmp_path, name, fmt):
    df = pd.DataFrame({"unit_code": ["D01", "D02"], "rank": [1, 2], "index_pct": [91.5, NAN], "group": ["A", None],
                       "ok": [True, False]})
    p = tmp_path / name
    write_table(df, p)
    if fmt == "xlsx":
        ws = openpyxl.load_workbook(p)["results"]
        assert [c.value for c in ws[2]] == ["D01", 1, 91.5, "A", True]
        assert [c.value for c in ws[3]] == ["D02", 2, None, None, False]
    else:
        back = pd.read_csv(p, encoding="utf-8-sig")
        assert back["index_pct"].tolist()[0] == 91.5 and np.isnan(back["index_pct"].tolist()[1])
        assert back["rank"].tolist() == [1, 2]


def test_write_table_escapes_headers_and_object_columns(tmp_path):
    df = pd.DataFrame({"=x": [EVIL[1]], "n": pd.array([3], dtype="Int64")})
    p = tmp_path / "t.xlsx"
    write_table(df, p, "xlsx", sheet_name="kết quả")
    ws = openpyxl.load_workbook(p)["kết quả"]
    assert [c.value for c in ws[1]] == ["'=x", "n"]
    assert [c.value for c in ws[2]] == ["'+1+1", 3]


def test_text_too_long_for_excel_is_refused(tmp_path):
    df = pd.DataFrame({"explanation": ["x" * 40_000]})
    with pytest.raises(ValidationError) as info:
        write_table(df, tmp_path / "t.xlsx", "xlsx")
    assert info.value.failures.loc[0, "row"] == 2
    write_table(df, tmp_path / "t.csv", "csv")  # CSV has no such limit


def test_unknown_format():
    with pytest.raises(ValueError, match="csv, xlsx"):
        write_table(pd.DataFrame(), io.StringIO(), "json")


def test_large_long_table_to_xlsx(tmp_path):
    n = 20_000
    df = pd.DataFrame({"unit_code": [f"X{i:05d}" for i in range(n)], "year": 2024, "node_code": "1.2",
                       "self_score": np.arange(n) / 4})
    p = tmp_path / "big.xlsx"
    write_scores_file(df, p, format="xlsx")
    from python_calamine import CalamineWorkbook

    rows = CalamineWorkbook.from_path(str(p)).get_sheet_by_name("scores").to_python()
    assert len(rows) == n + 1 and rows[-1][3] == (n - 1) / 4


# -- the appraisal sheet ---------------------------------------------------------------

# 1.1.1 has a rubric (2 / 1 / 0), 2.1.2 is scored by the survey (no appraisal row)
APPRAISAL_FW = read_framework_yaml("""
id: appr_fw
name_vi: Bộ tiêu chí thẩm định thử
level: department
max_points: 10
years: [2024]
nodes:
  - {code: "1", name_vi: Công tác chỉ đạo, max_points: 6, children: [
      {code: "1.1", name_vi: Kế hoạch CCHC, max_points: 4, children: [
         {code: "1.1.1", name_vi: Ban hành kế hoạch, max_points: 2, rubric: [
            {points: 2, label_vi: Đúng hạn}, {points: 1, label_vi: Chậm}, {points: 0, label_vi: Không}]},
         {code: "1.1.2", name_vi: Thực hiện kế hoạch, max_points: 2}]},
      {code: "1.2", name_vi: Báo cáo CCHC, max_points: 2}]}
  - {code: "2", name_vi: Tác động, max_points: 4, children: [
      {code: "2.1", name_vi: Sự hài lòng, max_points: 4, children: [
         {code: "2.1.1", name_vi: Giải quyết phản ánh, max_points: 1},
         {code: "2.1.2", name_vi: Mức độ hài lòng, max_points: 3, assessed_by: survey}]}]}
""", "appr_fw.yaml")
APPRAISAL_UNITS = pd.DataFrame({"code": ["D01", "D02"], "name": ["Sở Nội vụ", "=Sở Tài chính"]})
ORDER = [("D01", "1.1.1"), ("D01", "1.1.2"), ("D01", "1.2"), ("D01", "2.1.1"),
         ("D02", "1.1.1"), ("D02", "1.1.2"), ("D02", "1.2"), ("D02", "2.1.1")]


def stored_scores() -> pd.DataFrame:
    """Scores as TenantSession.scores gives them: D01 self-assessed, D02 appraised once already."""
    return pd.DataFrame({
        "unit_code": ["D01", "D01", "D01", "D01", "D02", "D02", "D03"],
        "year": 2024,
        "framework_id": ["appr_fw"] * 6 + ["other_fw"],
        "node_code": ["1.1.1", "1.1.2", "1.2", "2.1.2", "1.1.2", "1.2", "1.2"],
        "self_score": [2, 1.5, 2, NAN, 2, 1, 1],
        "appraised_score": [NAN, NAN, NAN, NAN, 1, NAN, NAN],
        "survey_points": [NAN, NAN, NAN, 2.5, NAN, NAN, NAN],
        "explanation": ["Đúng hạn", "", "", "", "", "", ""],
        "evidence": ["", "https://vb.example/kh", "", "", "", "", ""],
        "appraisal_reason": [None, None, None, None, "Thiếu hồ sơ", None, None],
        "unit_response": [None] * 7,
        "appraisal_round": pd.array([None, None, None, None, 1, None, None], dtype="Int64"),
    })


def test_appraisal_sheet_has_vietnamese_headers_every_leaf_and_the_stored_values(tmp_path):
    p = tmp_path / "thamdinh.xlsx"
    write_appraisal_sheet(stored_scores(), APPRAISAL_FW, p, units=APPRAISAL_UNITS)
    ws = openpyxl.load_workbook(p)["Thẩm định"]
    assert "Bảng thẩm định điểm Chỉ số CCHC năm 2024" in ws["A1"].value
    assert [c.value for c in ws[3]] == [
        "Mã đơn vị", "Tên đơn vị", "Năm", "Mã tiêu chí", "Tên tiêu chí", "Điểm tối đa", "Điểm tự chấm",
        "Tài liệu kiểm chứng", "Thuyết minh", "Điểm thẩm định", "Lý do điều chỉnh", "Giải trình của đơn vị",
        "Vòng thẩm định"]
    # each header is read back as its column
    assert {h: canonical_header(h) for h in APPRAISAL_SHEET_HEADERS.values()} == {
        h: c for c, h in APPRAISAL_SHEET_HEADERS.items()}
    body = [[c.value for c in r] for r in ws.iter_rows(min_row=4)]
    assert [(r[0], r[3]) for r in body] == ORDER  # no survey leaf, no unit of another framework
    assert body[0] == ["D01", "Sở Nội vụ", 2024, "1.1.1", "Ban hành kế hoạch", 2, 2, None, "Đúng hạn", None, None,
                       None, None]
    assert body[5] == ["D02", "'=Sở Tài chính", 2024, "1.1.2", "Thực hiện kế hoạch", 2, 2, None, None, 1,
                       "Thiếu hồ sơ", None, 1]
    assert body[4][6] is None  # a leaf D02 never scored is listed blank


def _fill_xlsx(path, fills):
    wb = openpyxl.load_workbook(path)
    ws = wb["Thẩm định"]
    col = {c.value: c.column for c in ws[3]}
    where = {(ws.cell(r, 1).value, ws.cell(r, 4).value): r for r in range(4, ws.max_row + 1)}
    for (unit, node), values in fills.items():
        for header, v in values.items():
            ws.cell(where[(unit, node)], col[header], v)
    wb.save(path)


def _fill_csv(path, fills):
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))
    col = {h: j for j, h in enumerate(rows[0])}
    for r in rows[1:]:
        for header, v in fills.get((r[col["Mã đơn vị"]], r[col["Mã tiêu chí"]]), {}).items():
            r[col[header]] = "" if v is None else str(v).replace(".", ",") if isinstance(v, float) else str(v)
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(rows)


FILLS = {
    ("D01", "1.1.1"): {"Điểm thẩm định": 1, "Lý do điều chỉnh": "Ban hành chậm 5 ngày", "Vòng thẩm định": 2},
    ("D01", "1.1.2"): {"Điểm thẩm định": 1.5, "Vòng thẩm định": 2},
    ("D01", "1.2"): {"Điểm thẩm định": 0.75, "Lý do điều chỉnh": "- Thiếu báo cáo quý IV",
                     "Giải trình của đơn vị": "Đã gửi bổ sung ngày 20/12", "Vòng thẩm định": 2},
    ("D02", "1.1.2"): {"Giải trình của đơn vị": "Đề nghị xem xét lại"},
}


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_a_filled_appraisal_sheet_reads_back(tmp_path, fmt):
    p = tmp_path / f"thamdinh.{fmt}"
    write_appraisal_sheet(stored_scores(), APPRAISAL_FW, p, units=APPRAISAL_UNITS)
    (_fill_xlsx if fmt == "xlsx" else _fill_csv)(p, FILLS)
    got = read_scores(p, APPRAISAL_FW, APPRAISAL_UNITS)
    # what the council wrote on top of what the sheet showed, worked out by hand
    expected = pd.DataFrame({
        "unit_code": [u for u, _ in ORDER], "year": 2024, "node_code": [n for _, n in ORDER],
        "self_score": [2, 1.5, 2, NAN, NAN, 2, 1, NAN],
        "appraised_score": [1, 1.5, 0.75, NAN, NAN, 1, NAN, NAN],
        "survey_points": NAN, "bonus": NAN, "penalty": NAN,
        "explanation": ["Đúng hạn", "", "", "", "", "", "", ""],
        "evidence": ["", "https://vb.example/kh", "", "", "", "", "", ""],
        "appraisal_reason": ["Ban hành chậm 5 ngày", "", "- Thiếu báo cáo quý IV", "", "", "Thiếu hồ sơ", "", ""],
        "unit_response": ["", "", "Đã gửi bổ sung ngày 20/12", "", "", "Đề nghị xem xét lại", "", ""],
        "appraisal_round": pd.array([2, 2, 2, None, None, 1, None, None], dtype="Int64"),
    })
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    first = 4 if fmt == "xlsx" else 2
    assert list(got.attrs["rows"]) == list(range(first, first + 8))
    assert got.attrs["warnings"] == []
