"""read_table, read_scores and score_template on real files written to tmp_path."""

from __future__ import annotations

import csv
import math
import sys
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parindex_lib.errors import FileRefused, FrameworkIncompleteError, ValidationError
from parindex_lib.exporting import write_scores_file
from parindex_lib.framework import read_framework_yaml
from parindex_lib.importing import (
    _TCVN3_TO_UNICODE,
    LONG_COLUMNS,
    _decode,
    canonical_header,
    header_key,
    read_scores,
    read_table,
    score_template,
)

sys.path.insert(0, str(Path(__file__).resolve().parent / "data" / "bad"))
from bad_corpus import to_cp1258  # noqa: E402  (Windows-1258 as Vietnamese offices write it)

NAN = math.nan

# Worth 10 points. 1.1.1 has a rubric (2 / 1 / 0); 2.1.2 is scored by the survey;
# 1.2 is a criterion without subcriteria (a leaf).
FW_YAML = """
id: test_fw
name_vi: Bộ tiêu chí kiểm thử
level: department
max_points: 10
years: [2023, 2024]
bonus_cap: 1
penalty_cap: 1
nodes:
  - {code: "1", name_vi: Công tác chỉ đạo, max_points: 6, children: [
      {code: "1.1", name_vi: Kế hoạch CCHC, max_points: 4, children: [
         {code: "1.1.1", name_vi: Ban hành kế hoạch CCHC, max_points: 2, rubric: [
            {points: 2, label_vi: Đúng hạn}, {points: 1, label_vi: Chậm}, {points: 0, label_vi: Không ban hành}]},
         {code: "1.1.2", name_vi: Mức độ thực hiện kế hoạch, max_points: 2}]},
      {code: "1.2", name_vi: Báo cáo CCHC, max_points: 2}]}
  - {code: "2", name_vi: Tác động của CCHC, max_points: 4, children: [
      {code: "2.1", name_vi: Sự hài lòng, max_points: 4, children: [
         {code: "2.1.1", name_vi: Giải quyết phản ánh, max_points: 1},
         {code: "2.1.2", name_vi: Mức độ hài lòng của người dân, max_points: 3, assessed_by: survey}]}]}
"""
SELF_LEAVES = ["1.1.1", "1.1.2", "1.2", "2.1.1"]
LONG_HEADER = ["unit_code", "year", "node_code", "self_score", "appraised_score", "survey_points", "evidence",
               "explanation"]


@pytest.fixture(scope="module")
def fw():
    return read_framework_yaml(FW_YAML, "test_fw.yaml")


@pytest.fixture(scope="module")
def units():
    return pd.DataFrame({"code": ["D01", "D02", "D03", "X001"],
                         "name": ["Sở Nội vụ", "Sở Tài chính", "Sở Y tế", "Xã Hòa Bình"]})


def write_csv(path, rows, *, encoding="utf-8", delimiter=","):
    with open(path, "w", encoding=encoding, newline="") as fh:
        csv.writer(fh, delimiter=delimiter).writerows(rows)
    return path


def write_xlsx(path, rows, *, title_rows=0, sheet="Sheet1", merge_title=True):
    """rows under `title_rows` merged title rows, with openpyxl."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    width = max(len(r) for r in rows)
    for i in range(title_rows):
        ws.cell(row=i + 1, column=1, value=f"BẢNG TỰ CHẤM ĐIỂM CHỈ SỐ CCHC NĂM 2024 ({i + 1})")
        if merge_title:
            ws.merge_cells(start_row=i + 1, start_column=1, end_row=i + 1, end_column=width)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def failures(err: ValidationError) -> set[tuple]:
    return {(r.row, r.column, r.value) for r in err.failures.itertuples()}


def expect_failures(path, fw, units, **kw) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        read_scores(path, fw, units, **kw)
    err = info.value
    assert list(err.failures.columns) == ["file", "sheet", "row", "column", "value", "expected"]
    assert (err.failures["file"] == path.name).all()
    assert err.failures["expected"].map(bool).all()
    return err


# -- headers ------------------------------------------------------------------

@pytest.mark.parametrize("text, canon", [
    ("Mã đơn vị", "unit_code"), ("ma_don_vi", "unit_code"), ("unit_code", "unit_code"), ("Unit code", "unit_code"),
    ("MÃ ĐƠN VỊ", "unit_code"), (unicodedata.normalize("NFD", "Mã đơn vị"), "unit_code"),
    ("Mã tiêu chí", "node_code"), ("node_code", "node_code"), ("Mã", "node_code"),
    ("Điểm tự chấm", "self_score"), ("self_score", "self_score"), ("Điểm\ntự chấm", "self_score"),
    ("Điểm thẩm định", "appraised_score"), ("appraised_score", "appraised_score"),
    ("Điểm điều tra XHH", "survey_points"), ("survey_points", "survey_points"),
    ("Tài liệu kiểm chứng", "evidence"), ("evidence", "evidence"),
    ("Giải trình", "explanation"), ("explanation", "explanation"),
    ("Năm", "year"), ("year", "year"), ("Điểm thưởng", "bonus"), ("Điểm trừ", "penalty"),
    ("1.2.3", None), ("Ghi chú", None),
])
def test_header_variants(text, canon):
    assert canonical_header(text) == canon


def test_header_key_removes_accents_and_d_bar():
    assert header_key("Đơn vị") == "don_vi"
    assert header_key(2024.0) == "2024"


# -- long layout ----------------------------------------------------------------

def test_long_csv_with_decimal_comma_and_nfd_text(tmp_path, fw, units):
    nfd = unicodedata.normalize("NFD", "Đã ban hành đúng hạn")
    p = write_csv(tmp_path / "long.csv", [
        ["Mã đơn vị", "Năm", "Mã tiêu chí", "Điểm tự chấm", "Điểm thẩm định", "Tài liệu kiểm chứng", "Giải trình"],
        [" D01 ", "2024", "1.1.1", "2", "1", "https://vb.example/kh-01", nfd],
        ["D01", "2024", "1.1.2", "1,5", "", "", ""],
        ["D01", "2024", "1.2", "1.75", "1,25", "", "  "],
        ["D02", "2024", "2.1.1", "0,5", "", "", ""],
    ], delimiter=";")
    got = read_scores(p, fw, units)
    assert list(got.columns) == LONG_COLUMNS
    assert got["unit_code"].tolist() == ["D01", "D01", "D01", "D02"]
    assert got["year"].dtype == np.int64 and (got["year"] == 2024).all()
    np.testing.assert_allclose(got["self_score"], [2, 1.5, 1.75, 0.5])
    np.testing.assert_allclose(got["appraised_score"], [1, NAN, 1.25, NAN])
    assert got["survey_points"].isna().all() and got["bonus"].isna().all()
    assert got.loc[0, "explanation"] == "Đã ban hành đúng hạn"
    assert unicodedata.is_normalized("NFC", got.loc[0, "explanation"])
    assert got.loc[2, "explanation"] == ""
    assert got.loc[0, "evidence"] == "https://vb.example/kh-01"
    assert got.attrs["source"]["layout"] == "long"
    assert got.attrs["source"]["delimiter"] == ";"


@pytest.mark.parametrize("header", [
    ["Mã đơn vị", "Năm", "Mã tiêu chí", "Điểm tự chấm", "Điểm điều tra XHH"],
    ["ma_don_vi", "nam", "ma", "diem_tu_cham", "diem_dieu_tra_xhh"],
    ["Unit code", "YEAR", "Node code", "Self score", "Survey points"],
    [unicodedata.normalize("NFD", h) for h in ["Mã đơn vị", "Năm", "Mã tiêu chí", "Điểm tự chấm", "Điểm điều tra XHH"]],
])
def test_long_header_variants(tmp_path, fw, units, header):
    p = write_xlsx(tmp_path / "v.xlsx", [header, ["D01", 2024, "1.1.2", 1, None], ["D01", 2024, "2.1.2", None, 2.5]])
    got = read_scores(p, fw, units)
    assert got["node_code"].tolist() == ["1.1.2", "2.1.2"]
    np.testing.assert_allclose(got["self_score"], [1, NAN])
    np.testing.assert_allclose(got["survey_points"], [NAN, 2.5])


def test_merged_title_rows_above_the_header(tmp_path, fw, units):
    p = write_xlsx(tmp_path / "titled.xlsx", [LONG_HEADER, ["D01", 2024, "1.1.1", 2], ["D02", 2024, "1.1.2", 5]],
                   title_rows=2)
    table, info = read_table(p)
    assert info.header_row == 3
    assert list(table.index) == [4, 5]
    err = expect_failures(p, fw, units)
    # the row number is the one Excel shows, the column the header as written
    assert failures(err) == {(5, "self_score", 5.0)}
    assert "at most 2 points" in err.failures.loc[0, "expected"]
    assert err.failures.loc[0, "sheet"] == "Sheet1"


def test_title_row_in_csv(tmp_path, fw, units):
    p = write_csv(tmp_path / "t.csv", [["Bảng điểm năm 2024", "", ""], ["", "", ""],
                                       ["unit_code", "node_code", "self_score"], ["D01", "1.2", "2"]])
    got = read_scores(p, fw, units, year=2024)
    assert got[["unit_code", "year", "node_code"]].values.tolist() == [["D01", 2024, "1.2"]]


def test_excel_numbers_as_codes_and_years(tmp_path, fw):
    units = pd.DataFrame({"code": ["101", "102"]})
    p = write_xlsx(tmp_path / "n.xlsx", [["unit_code", "year", "node_code", "self_score"],
                                         [101, 2024.0, 1.2, 2], [102, 2024, "1.2.", "2"]])
    got = read_scores(p, fw, units)
    assert got["unit_code"].tolist() == ["101", "102"]
    assert got["node_code"].tolist() == ["1.2", "1.2"]


def test_merged_unit_cells_below_the_header_repeat(tmp_path, fw, units):
    p = tmp_path / "merged.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["unit_code", "year", "node_code", "self_score"])
    ws.append(["D01", 2024, "1.1.1", 2])
    ws.append([None, None, "1.1.2", 1])
    ws.append([None, None, "1.2", 0.5])
    ws.merge_cells("A2:A4")
    ws.merge_cells("B2:B4")
    wb.save(p)
    got = read_scores(p, fw, units)
    assert got["unit_code"].tolist() == ["D01"] * 3
    assert got["year"].tolist() == [2024] * 3


def test_bonus_and_penalty_columns(tmp_path, fw, units):
    p = write_csv(tmp_path / "bp.csv", [["unit_code", "year", "node_code", "self_score", "Điểm thưởng", "Điểm trừ"],
                                        ["D01", "2024", "1.2", "2", "0,5", ""], ["D01", "2024", "1.1.2", "1", "", "0.25"]])
    got = read_scores(p, fw, units)
    np.testing.assert_allclose(got["bonus"], [0.5, NAN])
    np.testing.assert_allclose(got["penalty"], [NAN, 0.25])


def test_blank_rows_are_skipped_and_unknown_columns_reported_as_warnings(tmp_path, fw, units):
    p = write_csv(tmp_path / "w.csv", [["unit_code", "year", "node_code", "self_score", "Ghi chú", "Tên tiêu chí"],
                                       ["D01", "2024", "1.2", "2", "xem lại", "Báo cáo"], ["", "", "", "", "", ""],
                                       ["D02", "2024", "1.2", "1", "", ""]])
    got = read_scores(p, fw, units)
    assert len(got) == 2
    assert got.attrs["warnings"] == ["column Ghi chú was not read (long layout)"]


# -- encodings and delimiters ------------------------------------------------------

ROWS = [["Mã đơn vị", "Năm", "Mã tiêu chí", "Điểm tự chấm", "Giải trình"],
        ["D01", "2024", "1.1.2", "1,5", "Đã hoàn thành, đúng tiến độ"], ["X001", "2024", "1.2", "2", "Hòa Bình"]]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_encodings_and_delimiters(tmp_path, fw, units, encoding, delimiter):
    p = write_csv(tmp_path / "e.csv", ROWS, encoding=encoding, delimiter=delimiter)
    got = read_scores(p, fw, units)
    np.testing.assert_allclose(got["self_score"], [1.5, 2])
    assert got["explanation"].tolist() == ["Đã hoàn thành, đúng tiến độ", "Hòa Bình"]
    assert got.attrs["warnings"] == []
    assert got.attrs["source"]["delimiter"] == delimiter


def test_windows_1258_is_read_with_a_warning(tmp_path, fw, units):
    p = tmp_path / "legacy.csv"
    text = "\r\n".join(";".join(r) for r in ROWS) + "\r\n"
    raw = to_cp1258(text)
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    p.write_bytes(raw)
    got = read_scores(p, fw, units)
    assert got["explanation"].tolist() == ["Đã hoàn thành, đúng tiến độ", "Hòa Bình"]
    assert unicodedata.is_normalized("NFC", got.loc[0, "explanation"])
    assert len(got.attrs["warnings"]) == 1 and "Windows-1258" in got.attrs["warnings"][0]



def to_tcvn3(text: str) -> bytes:
    """Text as a TCVN3 (ABC, .VnTime) file holds it, by the inverse of the importer's table."""
    inverse = {ch: bytes([b]) for b, ch in _TCVN3_TO_UNICODE.items()}
    return b"".join(inverse.get(ch) or ch.encode("ascii") for ch in unicodedata.normalize("NFC", text))


def test_tcvn3_table_matches_the_published_one():
    # byte values as the TCVN 5712:1993 table prints them (the X11 TCVN-5712 table and glibc's TCVN5712-1)
    published = {0xA1: "Ă", 0xA2: "Â", 0xA7: "Đ", 0xA8: "ă", 0xAE: "đ", 0xB5: "à", 0xB8: "á", 0xBE: "ắ",
                 0xC6: "ặ", 0xCA: "ấ", 0xCC: "è", 0xD0: "é", 0xD5: "ế", 0xDD: "í", 0xE3: "ó", 0xE8: "ố",
                 0xEB: "ở", 0xED: "ớ", 0xF3: "ú", 0xF8: "ứ", 0xFD: "ý", 0xFE: "ỵ", 0x80: "À", 0x9E: "Ủ"}
    for byte, ch in published.items():
        assert _TCVN3_TO_UNICODE[byte] == ch, hex(byte)
    assert len(set(_TCVN3_TO_UNICODE.values())) == len(_TCVN3_TO_UNICODE)  # one byte per character
    for words in ("Sở Nội vụ", "Đã báo cáo", "Ủy ban nhân dân", "Cải cách hành chính"):
        raw = to_tcvn3(words)
        assert not raw.isascii()
        warnings = []
        assert _decode(raw, "t.csv", warnings) == (words, "tcvn3")
        assert "TCVN3" in warnings[0]
    assert to_tcvn3("Sở đã báo cáo") == "Së ®· b¸o c¸o".encode("cp1258")


def test_tcvn3_is_detected_and_read_as_unicode(tmp_path, fw, units):
    rows = [["Mã đơn vị", "Tên đơn vị", "Năm", "Mã tiêu chí", "Điểm tự chấm", "Giải trình"],
            ["D01", "Sở Nội vụ", "2024", "1.1.2", "1,5", "Đã báo cáo, đúng tiến độ"],
            ["X001", "Ủy ban nhân dân xã Hòa Bình", "2024", "1.2", "2", "Cải cách hành chính"]]
    p = tmp_path / "abc.csv"
    p.write_bytes(to_tcvn3("\r\n".join(";".join(r) for r in rows) + "\r\n"))
    got = read_scores(p, fw, units)
    assert got["explanation"].tolist() == ["Đã báo cáo, đúng tiến độ", "Cải cách hành chính"]
    assert all(unicodedata.is_normalized("NFC", t) for t in got["explanation"])
    np.testing.assert_allclose(got["self_score"], [1.5, 2])
    assert len(got.attrs["warnings"]) == 1 and "read as TCVN3" in got.attrs["warnings"][0]
    table, info = read_table(p)
    assert info.encoding == "tcvn3"
    assert table.iloc[:, 1].tolist() == ["Sở Nội vụ", "Ủy ban nhân dân xã Hòa Bình"]


def test_windows_1258_is_not_taken_for_tcvn3():
    text = "Sở Nội vụ;Đã báo cáo;Ủy ban nhân dân;Cải cách hành chính;Hòa Bình\r\n"
    warnings = []
    got, enc = _decode(to_cp1258(text), "w.csv", warnings)
    assert enc == "cp1258" and unicodedata.normalize("NFC", got) == text
    assert "Windows-1258" in warnings[0]

# -- wide layout ----------------------------------------------------------------

def test_wide_xlsx_with_year_argument(tmp_path, fw, units):
    p = write_xlsx(tmp_path / "wide.xlsx", [["Mã đơn vị", "Tên đơn vị", "1.1.1", "1.1.2 Mức độ thực hiện", "1.2", "2.1.1"],
                                            ["D01", "Sở Nội vụ", 2, "1,5", None, 0.5],
                                            ["D02", "Sở Tài chính", 0, 2, 1, None]], title_rows=1)
    got = read_scores(p, fw, units, year=2024)
    assert len(got) == 8
    assert got["node_code"].tolist() == SELF_LEAVES * 2
    np.testing.assert_allclose(got["self_score"], [2, 1.5, NAN, 0.5, 0, 2, 1, NAN])
    assert got["appraised_score"].isna().all()
    assert got.attrs["source"]["layout"] == "wide"


def test_wide_needs_a_year(tmp_path, fw, units):
    p = write_xlsx(tmp_path / "w.xlsx", [["unit_code", "1.2"], ["D01", 1]])
    err = expect_failures(p, fw, units)
    assert err.failures.loc[0, "column"] == "year"
    assert "unit_code, 1.2" in err.failures.loc[0, "value"]


def test_wide_errors_name_the_cell(tmp_path, fw, units):
    p = write_xlsx(tmp_path / "w.xlsx", [
        ["unit_code", "year", "1.1.1", "1.1.2", "1.2", "2.1.2", "9.9.9", "1.1"],
        ["D01", 2024, 1.5, 3, -1, 2, 1, 1],
        ["D0l", 2024, 2, "abc", None, None, None, None],
        ["D01", 2024, 2, 1, None, None, None, None],
    ])
    err = expect_failures(p, fw, units)
    got = failures(err)
    assert (1, "9.9.9", "9.9.9") in got
    assert (1, "1.1", "1.1") in got
    assert (2, "1.1.1", 1.5) in got      # not a rubric level
    assert (2, "1.1.2", 3.0) in got      # over max_points
    assert (2, "1.2", -1.0) in got       # negative
    assert (2, "2.1.2", 2.0) in got      # self_score on a survey node
    assert (3, "unit_code", "D0l") in got
    assert (3, "1.1.2", "abc") in got
    assert (2, "unit_code", "D01") in got and (4, "unit_code", "D01") in got  # duplicate unit and year
    by = {(r.row, r.column): r.expected for r in err.failures.itertuples()}
    assert "nearest known:" in by[(3, "unit_code")] and "D01" in by[(3, "unit_code")]
    assert "1.1 is a criterion" in by[(1, "1.1")] and "1.1.1, 1.1.2" in by[(1, "1.1")]
    assert "survey" in by[(2, "2.1.2")]
    assert "2 (Đúng hạn); 1 (Chậm); 0 (Không ban hành)" in by[(2, "1.1.1")]
    # sorted by row, then left to right
    rows = err.failures["row"].tolist()
    assert rows == sorted(rows)


def test_wide_survey_sheet(tmp_path, fw, units):
    p = write_csv(tmp_path / "s.csv", [["unit_code", "year", "2.1.2", "1.2"], ["D01", "2024", "2,75", ""],
                                       ["D02", "2024", "3", "1"]])
    err = expect_failures(p, fw, units, wide_score="survey_points")
    assert failures(err) == {(3, "1.2", "1")}
    assert "not assessed by survey" in err.failures.loc[0, "expected"]


# -- every error path in one long file ----------------------------------------------

def test_every_problem_in_one_table(tmp_path, fw, units):
    rows = [
        LONG_HEADER,
        ["D01", "2024", "1.1.1", "2", "", "", "", ""],           # 2 fine
        ["D01", "2024", "1.1.2", "2,5", "", "", "", ""],         # 3 over max 2
        ["D01", "2024", "1.2", "-0,5", "", "", "", ""],          # 4 negative
        ["D01", "2024", "2.1.1", "NaN", "", "", "", ""],         # 5 NaN text
        ["D02", "2024", "1.1.2", "inf", "", "", "", ""],         # 6 inf text
        ["D02", "2024", "1.2", "hai", "", "", "", ""],           # 7 not a number
        ["D02", "2024", "1.1.1", "1,5", "", "", "", ""],         # 8 not a rubric level
        ["D02", "2024", "2.1.2", "1", "", "", "", ""],           # 9 self_score on a survey node
        ["X001", "2024", "1.2", "", "", "1", "", ""],            # 10 survey_points on a self node
        ["D99", "2024", "1.2", "1", "", "", "", ""],             # 11 unknown unit
        ["D03", "2024", "7.7.7", "1", "", "", "", ""],           # 12 unknown node
        ["D03", "2024", "1.1", "1", "", "", "", ""],             # 13 non-leaf
        ["D03", "2024", "1.2", "1", "", "", "", ""],             # 14 duplicate of 15
        ["D03", "2024", "1.2", "1", "", "", "", ""],             # 15
        ["D03", "2024,5", "2.1.1", "1", "", "", "", ""],         # 16 year not an int
        ["D03", "", "1.1.2", "1", "", "", "", ""],               # 17 year missing
        ["D03", "2019", "1.1.2", "1", "", "", "", ""],           # 18 year outside the framework's years
        ["D03", "2024", "1.1.2", "", "3", "", "", ""],           # 19 appraised over max
    ]
    p = write_csv(tmp_path / "bad.csv", rows)
    err = expect_failures(p, fw, units)
    got = failures(err)
    want = {
        (3, "self_score", "2,5"), (4, "self_score", "-0,5"), (5, "self_score", "NaN"), (6, "self_score", "inf"),
        (7, "self_score", "hai"), (8, "self_score", "1,5"), (9, "self_score", "1"), (10, "survey_points", "1"),
        (11, "unit_code", "D99"), (12, "node_code", "7.7.7"), (13, "node_code", "1.1"),
        (14, "node_code", "1.2"), (15, "node_code", "1.2"), (16, "year", "2024,5"), (17, "year", ""),
        (18, "year", "2019"), (19, "appraised_score", "3"),
    }
    assert got == want
    assert "nothing was imported" in str(err)
    by = {(r.row, r.column): r.expected for r in err.failures.itertuples()}
    assert "also on row 15" in by[(14, "node_code")]
    assert "nearest known" in by[(11, "unit_code")] and "D01" in by[(11, "unit_code")]
    assert "2023, 2024" in by[(18, "year")]


def test_missing_columns_are_named_with_the_headers_found(tmp_path, fw, units):
    p = write_csv(tmp_path / "m.csv", [["Đơn vị", "Nội dung", "Điểm"], ["Sở Nội vụ", "x", "1"]])
    err = expect_failures(p, fw, units)
    assert set(err.failures["column"]) == {"unit_code", "node_code", "year"}
    assert all("Đơn vị, Nội dung, Điểm" in v for v in err.failures["value"])


def test_long_without_score_columns(tmp_path, fw, units):
    p = write_csv(tmp_path / "m.csv", [["unit_code", "year", "node_code"], ["D01", "2024", "1.2"]])
    err = expect_failures(p, fw, units)
    assert err.failures["column"].tolist() == ["self_score"]


def test_year_argument_must_match_the_year_column(tmp_path, fw, units):
    p = write_csv(tmp_path / "y.csv", [["unit_code", "year", "node_code", "self_score"], ["D01", "2023", "1.2", "1"],
                                       ["D01", "", "1.1.2", "1"]])
    err = expect_failures(p, fw, units, year=2024)
    assert failures(err) == {(2, "year", "2023")}
    got = read_scores(p, fw, units, year=2023)
    assert got["year"].tolist() == [2023, 2023]


def test_empty_files(tmp_path, fw, units):
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(FileRefused, match="empty"):
        read_scores(tmp_path / "empty.csv", fw, units)
    p = write_csv(tmp_path / "header_only.csv", [["unit_code", "year", "node_code", "self_score"]])
    err = expect_failures(p, fw, units)
    assert "no scores" in err.message
    wb = openpyxl.Workbook()
    wb.save(tmp_path / "blank.xlsx")
    err = expect_failures(tmp_path / "blank.xlsx", fw, units)
    assert "no scores" in err.message


def test_framework_must_be_scorable(tmp_path, units):
    incomplete = read_framework_yaml(FW_YAML.replace("max_points: 1}", "max_points: null}"))
    assert incomplete.unknown_points() == ["2.1.1"]
    p = write_csv(tmp_path / "s.csv", [["unit_code", "year", "node_code", "self_score"], ["D01", "2024", "1.2", "1"]])
    with pytest.raises(FrameworkIncompleteError, match="2.1.1"):
        read_scores(p, incomplete, units)


def test_zip_bomb_refused_before_reading(tmp_path, fw, units):
    p = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\x00" * 5_000_000)
    with pytest.raises(FileRefused, match="zip bomb"):
        read_scores(p, fw, units)


def test_size_limit_is_configurable(tmp_path, fw, units):
    p = write_csv(tmp_path / "s.csv", [["unit_code", "year", "node_code", "self_score"], ["D01", "2024", "1.2", "1"]])
    with pytest.raises(FileRefused, match="limit"):
        read_scores(p, fw, units, max_bytes=10)


# -- formulas and Excel errors ------------------------------------------------------------

def test_formulas_give_their_saved_values_and_errors_are_not_blank(tmp_path, fw, units):
    p = tmp_path / "f.xlsx"
    wb = xlsxwriter.Workbook(str(p))
    ws = wb.add_worksheet("Điểm")
    ws.write_row(0, 0, ["unit_code", "year", "node_code", "self_score"])
    ws.write_row(1, 0, ["D01", 2024, "1.1.2"])
    ws.write_formula(1, 3, "=1+0.5", None, 1.5)
    ws.write_row(2, 0, ["D01", 2024, "1.2"])
    ws.write_formula(2, 3, "=1/0", None, "#DIV/0!")
    wb.close()
    err = expect_failures(p, fw, units)
    assert failures(err) == {(3, "self_score", "#DIV/0!")}
    assert err.failures.loc[0, "sheet"] == "Điểm"

    q = tmp_path / "nocache.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["unit_code", "year", "node_code", "self_score"])
    wb.active.append(["D01", 2024, "1.2", "=1+1"])
    wb.save(q)
    err = expect_failures(q, fw, units)
    assert err.failures.loc[0, "row"] == 2
    assert err.failures.loc[0, "value"].startswith("=1+1 (formula without a saved value")

    ok = tmp_path / "ok.xlsx"
    wb = xlsxwriter.Workbook(str(ok))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["unit_code", "year", "node_code", "self_score"])
    ws.write_row(1, 0, ["D01", 2024, "1.1.2"])
    ws.write_formula(1, 3, "=1+0.5", None, 1.5)
    wb.close()
    assert read_scores(ok, fw, units)["self_score"].tolist() == [1.5]


def test_boolean_cell_is_not_a_number(tmp_path, fw, units):
    p = write_xlsx(tmp_path / "b.xlsx", [LONG_HEADER[:4], ["D01", 2024, "1.2", True], ["D01", 2024, "1.1.2", 1]])
    err = expect_failures(p, fw, units)
    assert failures(err) == {(2, "self_score", True)}


# -- sheets ----------------------------------------------------------------------

def test_sheet_choice(tmp_path, fw, units):
    p = tmp_path / "sheets.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "Bìa"
    wb.active.append(["Báo cáo tự đánh giá"])
    ws = wb.create_sheet("Điểm")
    ws.append(["unit_code", "year", "node_code", "self_score"])
    ws.append(["D01", 2024, "1.2", 2])
    wb.save(p)
    assert read_scores(p, fw, units)["self_score"].tolist() == [2.0]
    assert read_scores(p, fw, units, sheet="Điểm")["self_score"].tolist() == [2.0]
    assert read_scores(p, fw, units, sheet=1)["self_score"].tolist() == [2.0]
    err = expect_failures(p, fw, units, sheet="Sheet9")
    assert "Bìa, Điểm" in err.failures.loc[0, "expected"]


# -- templates -------------------------------------------------------------------

def test_wide_template_round_trip(tmp_path, fw, units):
    p = score_template(fw, units, 2024, tmp_path / "template.xlsx")
    wb = openpyxl.load_workbook(p)
    assert wb.sheetnames == ["Bảng điểm", "Hướng dẫn"]
    ws = wb["Bảng điểm"]
    header = [c.value for c in ws[4]]
    assert header == ["unit_code", "unit_name", "year"] + SELF_LEAVES
    assert "2.1.2" not in header  # the survey node gets no self-assessment column
    assert [c.value for c in ws[3]][3:] == [2, 2, 2, 1]  # max_points above each code
    guide = pd.DataFrame(wb["Hướng dẫn"].values).iloc[3:]
    guide.columns = guide.iloc[0]
    guide = guide.iloc[1:].set_index("Mã tiêu chí (code)")
    assert guide.loc["1.1.1", "Tên tiêu chí (name_vi)"] == "Ban hành kế hoạch CCHC"
    assert guide.loc["1.1.1", "Điểm tối đa (max_points)"] == 2
    assert guide.loc["1.1.1", "Mức điểm (rubric)"] == "2 = Đúng hạn; 1 = Chậm; 0 = Không ban hành"
    assert "điều tra" in guide.loc["2.1.2", "Nhập điểm"]
    # a person fills it in
    fill = {5: [2, 1.5, 2, 1], 6: [1, "0,5", None, 0], 7: [0, 2, 1.25, 1], 8: [None, None, None, None]}
    for r, vals in fill.items():
        for j, v in enumerate(vals):
            ws.cell(row=r, column=4 + j, value=v)
    wb.save(p)
    got = read_scores(p, fw, units)
    assert got["unit_code"].tolist() == [c for c in units["code"] for _ in SELF_LEAVES]
    assert (got["year"] == 2024).all()
    expected = [np.nan if v is None else float(str(v).replace(",", ".")) for r in fill.values() for v in r]
    np.testing.assert_allclose(got["self_score"], expected)


def test_long_template_round_trip(tmp_path, fw, units):
    p = score_template(fw, units, 2024, tmp_path / "long.xlsx", layout="long")
    wb = openpyxl.load_workbook(p)
    ws = wb["Bảng điểm"]
    assert [c.value for c in ws[3]] == ["unit_code", "unit_name", "year", "node_code", "node_name", "max_points",
                                        "self_score", "evidence", "explanation"]
    assert ws.max_row == 3 + len(units) * len(SELF_LEAVES)
    assert [c.value for c in ws[4]][:6] == ["D01", "Sở Nội vụ", 2024, "1.1.1", "Ban hành kế hoạch CCHC", 2]
    ws.cell(row=4, column=7, value=2)
    ws.cell(row=4, column=8, value="https://vb.example/1")
    ws.cell(row=5, column=7, value="1,5")
    ws.cell(row=5, column=9, value="Đã thực hiện 80% kế hoạch")
    wb.save(p)
    got = read_scores(p, fw, units)
    assert len(got) == len(units) * len(SELF_LEAVES)
    assert got.loc[0, ["node_code", "self_score", "evidence"]].tolist() == ["1.1.1", 2.0, "https://vb.example/1"]
    assert got.loc[1, ["self_score", "explanation"]].tolist() == [1.5, "Đã thực hiện 80% kế hoạch"]
    assert got["self_score"].iloc[2:].isna().all()
    assert got.attrs["warnings"] == []  # node_name and max_points are informational


def test_csv_template_round_trip(tmp_path, fw, units):
    p = score_template(fw, units, 2024, tmp_path / "template.csv")
    assert p.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(p.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[0] == ["unit_code", "unit_name", "year"] + SELF_LEAVES
    rows[1][3:] = ["2", "1,5", "", "1"]
    write_csv(p, rows)
    got = read_scores(p, fw, units)
    np.testing.assert_allclose(got["self_score"].iloc[:4], [2, 1.5, NAN, 1])
    assert got["self_score"].iloc[4:].isna().all()


def test_template_escapes_unit_names(tmp_path, fw):
    units = pd.DataFrame({"code": ["D01"], "name": ["=cmd|'/c calc'!A1"]})
    p = score_template(fw, units, 2024, tmp_path / "t.xlsx")
    ws = openpyxl.load_workbook(p)["Bảng điểm"]
    assert ws["B5"].value == "'=cmd|'/c calc'!A1"


# -- round trips through write_scores_file -----------------------------------------------

def scores_frame(rows):
    df = pd.DataFrame(rows, columns=LONG_COLUMNS)
    return df.astype({"year": "int64", **{c: "float64" for c in LONG_COLUMNS[3:8]}})


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_long_round_trip_through_export(tmp_path, fw, units, fmt):
    scores = scores_frame([
        ("D01", 2024, "1.1.1", 2, 1, NAN, 0.5, NAN, "=cmd|' /C calc'!A0", "https://vb.example/a"),
        ("D01", 2024, "2.1.2", NAN, NAN, 2.75, NAN, NAN, "", ""),
        ("X001", 2024, "1.2", 1.25, NAN, NAN, NAN, 0.5, "- gạch đầu dòng\n- dòng 2", "+84 912"),
    ])
    p = tmp_path / f"scores.{fmt}"
    write_scores_file(scores, p, format=fmt)
    got = read_scores(p, fw, units)
    pd.testing.assert_frame_equal(got, scores, check_dtype=False)


# -- generated tables ----------------------------------------------------------------------

LEAF_MAX = {"1.1.1": 2, "1.1.2": 2, "1.2": 2, "2.1.1": 1, "2.1.2": 3}
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85"),
               max_size=20).map(lambda s: unicodedata.normalize("NFC", s).strip())


@st.composite
def score_tables(draw):
    keys = draw(st.lists(st.tuples(st.sampled_from(["D01", "D02", "X001"]), st.sampled_from([2023, 2024]),
                                   st.sampled_from(sorted(LEAF_MAX))), unique=True, min_size=1, max_size=12))
    rows, valid = [], True
    for unit, year, node in keys:
        mp = LEAF_MAX[node]
        quarter = st.integers(0, int(mp * 4)).map(lambda q: q / 4)
        good = st.sampled_from([0.0, 1.0, 2.0]) if node == "1.1.1" else quarter
        bad = st.sampled_from([-0.5, mp + 0.25, 0.3 if node == "1.1.1" else -1.0])
        if draw(st.integers(0, 9)) == 0:
            value = draw(bad)
            valid = False
        else:
            value = draw(good | st.just(NAN))
        if node == "2.1.2":
            row = (unit, year, node, NAN, NAN, value, NAN, NAN)
        else:
            appraised = draw(st.just(NAN) | good)
            row = (unit, year, node, value, appraised, NAN, NAN, NAN)
        rows.append(row + (draw(TEXT), draw(TEXT)))
    return scores_frame(rows), valid


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=score_tables(), fmt=st.sampled_from(["csv", "xlsx"]))
def test_generated_tables_read_back_equal_or_fail_cleanly(tmp_path, fw, units, table, fmt):
    scores, valid = table
    p = tmp_path / f"gen.{fmt}"
    write_scores_file(scores, p, format=fmt)
    try:
        got = read_scores(p, fw, units)
    except ValidationError as err:
        assert not valid, str(err)
        assert len(err.failures) >= 1
        return
    assert valid
    pd.testing.assert_frame_equal(got, scores, check_dtype=False)


# -- national scale -----------------------------------------------------------------------------

@pytest.mark.slow
def test_a_national_wide_sheet_names_its_one_bad_cell_and_reads_exactly(tmp_path):
    import yaml

    fields = []
    for f in range(1, 9):
        crit = []
        for c in range(1, 4):
            n = 4 if c < 3 else 3
            kids = [{"code": f"{f}.{c}.{k}", "name_vi": f"TP {f}.{c}.{k}", "max_points": 0.5} for k in range(1, n + 1)]
            crit.append({"code": f"{f}.{c}", "name_vi": f"TC {f}.{c}", "max_points": 0.5 * n, "children": kids})
        fields.append({"code": str(f), "name_vi": f"LV {f}", "max_points": sum(c["max_points"] for c in crit),
                       "children": crit})
    fw = read_framework_yaml(yaml.safe_dump({"id": "big", "name_vi": "big", "level": "commune",
                                             "max_points": sum(x["max_points"] for x in fields), "nodes": fields}))
    leaves = fw.leaves["code"].tolist()
    assert len(leaves) == 88
    n = 10_500
    units = pd.DataFrame({"code": [f"X{i:05d}" for i in range(n)]})
    values = np.round(np.random.default_rng(0).random((n, len(leaves))) * 2) / 4
    p = tmp_path / "big.xlsx"
    wb = xlsxwriter.Workbook(str(p), {"constant_memory": True})
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["Mã đơn vị", "Năm"] + leaves)
    for i in range(n):
        row = [units["code"][i], 2024] + values[i].tolist()
        if i == 6999:
            row[40] = "x"  # spreadsheet row 7001, column of the 39th leaf
        ws.write_row(i + 1, 0, row)
    wb.close()
    with pytest.raises(ValidationError) as info:
        read_scores(p, fw, units)
    assert failures(info.value) == {(7001, leaves[38], "x")}
    q = tmp_path / "big.csv"
    df = pd.DataFrame(values, columns=leaves)
    df.insert(0, "Năm", 2024)
    df.insert(0, "Mã đơn vị", units["code"])
    df.to_csv(q, index=False, sep=";", decimal=",")
    got = read_scores(q, fw, units)
    assert len(got) == n * 88
    np.testing.assert_allclose(got["self_score"].to_numpy().reshape(n, 88), values)


def test_zip_that_only_looks_like_a_workbook(tmp_path, fw, units):
    p = tmp_path / "fake.xlsx"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", "<workbook/>")
    with pytest.raises(FileRefused, match="could not be read as a workbook"):
        read_scores(p, fw, units)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_demo_scores_round_trip(tmp_path, fmt):
    from parindex_lib.demo import demo_scores, demo_units
    from parindex_lib.framework import load_framework

    fw = load_framework("demo_department_2024")
    units = demo_units(n_communes=5)
    scores = demo_scores(fw, units, years=[2024])
    p = tmp_path / f"demo.{fmt}"
    write_scores_file(scores, p, format=fmt)
    got = read_scores(p, fw, units)
    pd.testing.assert_frame_equal(got, scores[LONG_COLUMNS].reset_index(drop=True), check_dtype=False)
    t = score_template(fw, units, 2024, tmp_path / f"template.{fmt}")
    blank = read_scores(t, fw, units)
    assert blank["self_score"].isna().all()
    assert set(blank["node_code"]) == set(fw.leaves.loc[fw.leaves["assessed_by"] != "survey", "code"])


# -- cells the readers used to lose -----------------------------------------------------

def patch_sheet(path, replace: dict[bytes, bytes]) -> None:
    """Rewrite bytes of the first sheet's XML (for values no library writes, such as NaN)."""
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    xml = parts["xl/worksheets/sheet1.xml"]
    for old, new in replace.items():
        assert old in xml
        xml = xml.replace(old, new)
    parts["xl/worksheets/sheet1.xml"] = xml
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, data in parts.items():
            zf.writestr(n, data)


def test_number_cells_holding_nan_or_inf_are_reported(tmp_path, fw, units):
    p = tmp_path / "nan.xlsx"
    wb = xlsxwriter.Workbook(str(p))
    ws = wb.add_worksheet("Điểm")
    ws.write_row(0, 0, ["unit_code", "year", "node_code", "self_score", "explanation"])
    for i, (code, v) in enumerate([("1.1.2", 111), ("1.2", 222), ("2.1.1", 333), ("1.1.1", 2)], start=1):
        ws.write_row(i, 0, ["D01", 2024, code, v])
    ws.write_row(5, 0, ["D02", 2024, "1.2", 1, None])
    ws.write_number(5, 4, 444)
    wb.close()
    patch_sheet(p, {b"<v>111</v>": b"<v>NaN</v>", b"<v>222</v>": b"<v>INF</v>", b"<v>333</v>": b"<v>-1e309</v>",
                    b"<v>444</v>": b"<v>nan</v>"})
    err = expect_failures(p, fw, units)
    got = {(r.row, r.column, str(r.value)) for r in err.failures.itertuples()}
    assert got == {(2, "self_score", "NaN"), (3, "self_score", "inf"), (4, "self_score", "-inf")}
    assert all("not text, NaN or inf" in e for e in err.failures["expected"])


def test_a_csv_quote_never_closed_is_reported_not_swallowed(tmp_path, fw, units):
    p = tmp_path / "quote.csv"
    p.write_bytes(b"unit_code,year,node_code,self_score,explanation\r\n"
                  b"D01,2024,1.2,2,Xong\r\n"
                  b'D01,2024,1.1.2,1,"Chua xong\r\n'
                  b"D02,2024,1.2,1,Xong\r\n"
                  b"D03,2024,1.2,1,Xong\r\n")
    with pytest.raises(ValidationError) as info:
        read_table(p)
    err = info.value
    assert "row 3" in err.message and "never closed" in err.message
    assert failures(err) == {(3, "explanation", '"Chua xong... (runs on over 3 line breaks to the end of the file)')}
    assert "balanced quotes" in err.failures.loc[0, "expected"]
    assert err.failures.loc[0, "file"] == "quote.csv"
    # read_scores gives the same table, with nothing imported
    assert failures(expect_failures(p, fw, units)) == failures(err)


def test_a_quoted_cell_over_several_lines_is_one_cell(tmp_path, fw, units):
    p = tmp_path / "multi.csv"
    p.write_bytes(b"unit_code,year,node_code,self_score,explanation\r\n"
                  b'D01,2024,1.2,2,"Dong 1\r\nDong 2\rDong 3\nDong ""4"""\r\n'
                  b"D01,2024,1.1.2,x,Xong\r\n")
    err = expect_failures(p, fw, units)
    assert failures(err) == {(3, "self_score", "x")}  # the row after the quoted cell is row 3
    p.write_bytes(p.read_bytes().replace(b",x,", b",1,"))
    got = read_scores(p, fw, units)
    assert got["explanation"].tolist() == ['Dong 1\r\nDong 2\rDong 3\nDong "4"', "Xong"]


def test_text_after_a_closing_quote_is_reported(tmp_path, fw, units):
    p = tmp_path / "after.csv"
    p.write_bytes(b'unit_code;year;node_code;self_score;explanation\r\nD01;2024;1.2;2;"So Noi vu" (STP)\r\n')
    err = expect_failures(p, fw, units)
    assert failures(err) == {(2, "explanation", '"So Noi vu" (STP)')}
    assert 'write a quote twice ("")' in err.failures.loc[0, "expected"]


@pytest.mark.parametrize("quoted", [False, True])
def test_a_csv_cell_over_the_field_limit_is_reported(tmp_path, fw, units, quoted):
    p = tmp_path / "long.csv"
    text = "Giải trình " + "x" * 140_000 + (", có dấu phẩy" if quoted else "")
    write_csv(p, [["unit_code", "year", "node_code", "self_score", "explanation"], ["D01", "2024", "1.2", "2", "Xong"],
                  ["D01", "2024", "1.1.2", "1", text]])
    err = expect_failures(p, fw, units)
    row = err.failures.iloc[0]
    assert (row["row"], row["column"]) == (3, "explanation")
    assert row["value"].startswith(('Giải trình xxx', '"Giải trình xxx'))
    assert f"({len(text):,} characters)" in row["value"]
    assert row["expected"] == "a cell of at most 131,072 characters"
    assert len(err.failures) == 1


# -- row numbers, caps, duplicates and progress -------------------------------------------

def test_the_spreadsheet_row_of_every_long_row(tmp_path, fw, units):
    p = write_csv(tmp_path / "rows.csv", [["BẢNG ĐIỂM"], [], ["unit_code", "year", "node_code", "self_score"],
                                          ["D01", "2024", "1.2", "2"], ["", "", "", ""], ["D02", "2024", "1.2", "1"]])
    got = read_scores(p, fw, units)
    assert list(got.attrs["rows"]) == [4, 6]
    assert (got.attrs["file"], got.attrs["sheet"]) == ("rows.csv", None)
    # the table can be concatenated and copied like any other (attrs hold no numpy array)
    both = pd.concat([got, got])
    assert len(both) == 4 and got.copy().attrs["rows"] == got.attrs["rows"]


def test_the_spreadsheet_row_of_every_wide_cell(tmp_path, fw, units):
    p = write_xlsx(tmp_path / "wide.xlsx", [["Mã đơn vị", "1.1.2", "1.2"], ["D01", 1, 2], [None, None, None],
                                           ["D02", 0.5, None]], title_rows=2, sheet="Điểm")
    got = read_scores(p, fw, units, year=2024)
    assert got[["unit_code", "node_code"]].values.tolist() == [["D01", "1.1.2"], ["D01", "1.2"], ["D02", "1.1.2"],
                                                               ["D02", "1.2"]]
    assert list(got.attrs["rows"]) == [4, 4, 6, 6]
    assert (got.attrs["file"], got.attrs["sheet"]) == ("wide.xlsx", "Điểm")


def test_bonus_and_penalty_are_held_to_the_caps_per_unit_and_year(tmp_path, fw, units):
    # fw: bonus_cap 1, penalty_cap 1
    p = write_csv(tmp_path / "caps.csv", [
        ["unit_code", "year", "node_code", "self_score", "Điểm thưởng", "Điểm trừ"],
        ["D01", "2024", "1.2", "2", "0,5", ""],
        ["D01", "2024", "1.1.2", "1", "0,75", "-1"],   # D01 2024: bonus 1.25 in all; a negative penalty
        ["D01", "2023", "1.2", "1", "1", "1"],          # another year: within the caps
        ["D02", "2024", "1.2", "1", "", "1,5"],         # one penalty over the cap
    ])
    err = expect_failures(p, fw, units)
    got = {(r.row, r.column, r.value) for r in err.failures.itertuples()}
    assert got == {(2, "Điểm thưởng", 0.5), (3, "Điểm thưởng", 0.75), (3, "Điểm trừ", "-1"), (5, "Điểm trừ", 1.5)}
    exp = dict(zip(zip(err.failures["row"], err.failures["column"]), err.failures["expected"]))
    assert exp[(2, "Điểm thưởng")] == ("bonus points of at most 1 per unit and year (the framework's bonus cap); "
                                        "D01, 2024 has 1.25 in all, on rows 2, 3")
    assert exp[(5, "Điểm trừ")] == "penalty points of at most 1 per unit and year (the framework's penalty cap)"
    assert exp[(3, "Điểm trừ")] == "points >= 0"


def test_bonus_without_a_cap_is_read_with_a_warning(tmp_path, units):
    fw = read_framework_yaml(FW_YAML.replace("bonus_cap: 1\n", ""), "test_fw.yaml")
    p = write_csv(tmp_path / "b.csv", [["unit_code", "year", "node_code", "self_score", "bonus"],
                                       ["D01", "2024", "1.2", "2", "3"]])
    got = read_scores(p, fw, units)
    assert got["bonus"].tolist() == [3.0]
    assert got.attrs["warnings"] == ["column bonus holds bonus points, but framework test_fw has no bonus cap: "
                                     "the results do not count them"]


def test_duplicates_show_what_was_written(tmp_path, fw, units):
    p = write_csv(tmp_path / "dup.csv", [["unit_code", "year", "node_code", "self_score"],
                                         ["D01", "2024", "1.2", "2"], [" D01 ", "2024", "1.2.", "1"]])
    err = expect_failures(p, fw, units)
    assert failures(err) == {(2, "node_code", "1.2"), (3, "node_code", "1.2.")}
    assert set(err.failures["expected"]) == {"one row per unit, year and node: D01, 2024, 1.2 is also on row 3",
                                             "one row per unit, year and node: D01, 2024, 1.2 is also on row 2"}
    q = write_xlsx(tmp_path / "dupw.xlsx", [["unit_code", "year", "1.2"], ["D01", 2024, 1], ["D01 ", 2024, 2]])
    err = expect_failures(q, fw, units)
    assert failures(err) == {(2, "unit_code", "D01"), (3, "unit_code", "D01 ")}


def test_progress_is_reported_in_coarse_steps(tmp_path, fw, units):
    p = write_csv(tmp_path / "ok.csv", [["unit_code", "year", "node_code", "self_score"], ["D01", "2024", "1.2", "2"]])
    seen = []
    read_scores(p, fw, units, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    bad = write_csv(tmp_path / "bad.csv", [["unit_code", "year", "node_code", "self_score"], ["D01", "2024", "1.2", "x"]])
    seen.clear()
    expect_failures(bad, fw, units, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 3), (1, 3), (2, 3)]

    class Stop(Exception):
        pass

    def cancel(done, total):
        if done == 1:
            raise Stop
    with pytest.raises(Stop):
        read_scores(p, fw, units, progress=cancel)


# -- appraisal columns: reasons, unit responses, rounds ---------------------------------

APPRAISAL = ["appraisal_reason", "unit_response", "appraisal_round"]


@pytest.mark.parametrize("text, canon", [
    ("Lý do điều chỉnh", "appraisal_reason"), ("Lý do", "appraisal_reason"), ("Ý kiến thẩm định", "appraisal_reason"),
    ("LÝ DO ĐIỀU CHỈNH ĐIỂM", "appraisal_reason"), ("Reason", "appraisal_reason"),
    ("appraisal_reason", "appraisal_reason"), (unicodedata.normalize("NFD", "Lý do thẩm định"), "appraisal_reason"),
    ("Giải trình của đơn vị", "unit_response"), ("Ý kiến của đơn vị", "unit_response"),
    ("Phản hồi của đơn vị", "unit_response"), ("Unit response", "unit_response"), ("unit_response", "unit_response"),
    ("Vòng thẩm định", "appraisal_round"), ("Vòng", "appraisal_round"), ("Round", "appraisal_round"),
    ("appraisal_round", "appraisal_round"),
    # the neighbours keep their meaning
    ("Giải trình", "explanation"), ("Thẩm định", "appraised_score"), ("Điểm thẩm định", "appraised_score"),
])
def test_appraisal_header_variants(text, canon):
    assert canonical_header(text) == canon


def test_long_sheet_with_reasons_responses_and_rounds(tmp_path, fw, units):
    nfd_reason = unicodedata.normalize("NFD", "Thiếu báo cáo quý IV")
    p = write_xlsx(tmp_path / "thamdinh.xlsx", [
        ["STT", "Mã đơn vị", "Năm", "Mã tiêu chí", "Điểm tự chấm", "Điểm thẩm định", "Lý do điều chỉnh",
         "Giải trình của đơn vị", "Vòng thẩm định"],
        [1, "D01", 2024, "1.1.1", 2, 1, nfd_reason, "Đã nộp ngày 20/12", 1],
        [2, "D01", 2024, "1.1.2", "1,5", "1,5", None, None, None],
        [3, "D02", 2024, "1.2", 2, "0,5", "  Không có minh chứng  ", None, "2"],
        [4, "D02", 2024, "2.1.1", 1, None, None, "Bổ sung sau", 2.0],
    ], title_rows=2)
    got = read_scores(p, fw, units)
    assert list(got.columns) == LONG_COLUMNS + APPRAISAL
    assert got["appraisal_reason"].tolist() == ["Thiếu báo cáo quý IV", "", "Không có minh chứng", ""]
    assert all(unicodedata.is_normalized("NFC", t) for t in got["appraisal_reason"])
    assert got["unit_response"].tolist() == ["Đã nộp ngày 20/12", "", "", "Bổ sung sau"]
    assert str(got["appraisal_round"].dtype) == "Int64"
    assert got["appraisal_round"].tolist() == [1, pd.NA, 2, 2]
    np.testing.assert_allclose(got["appraised_score"], [1, 1.5, 0.5, NAN])
    np.testing.assert_allclose(got["self_score"], [2, 1.5, 2, 1])
    assert list(got.attrs["rows"]) == [4, 5, 6, 7]
    assert not got.attrs["warnings"]  # STT is informational


def test_blank_appraisal_cells_are_blank_not_nan_in_csv(tmp_path, fw, units):
    p = write_csv(tmp_path / "blank.csv", [
        ["unit_code", "year", "node_code", "appraised_score", "reason", "response", "round"],
        ["D01", "2024", "1.2", "1", "", "", ""],
        ["D02", "2024", "1.2", "", "nan", "", "1"],
    ])
    got = read_scores(p, fw, units)
    assert got["appraisal_reason"].tolist() == ["", "nan"]  # the text nan is what the person wrote
    assert got["unit_response"].tolist() == ["", ""]
    assert got["appraisal_round"].isna().tolist() == [True, False]


def test_a_file_without_appraisal_columns_keeps_the_long_columns(tmp_path, fw, units):
    p = write_csv(tmp_path / "old.csv", [LONG_HEADER, ["D01", "2024", "1.2", "2", "1", "", "", ""]])
    got = read_scores(p, fw, units)
    assert list(got.columns) == LONG_COLUMNS
    # only the columns the file has: a response without a reason column makes no reason column
    p = write_csv(tmp_path / "resp.csv", [["unit_code", "year", "node_code", "appraised_score", "Giải trình của đơn vị"],
                                          ["D01", "2024", "1.2", "1", "Đã bổ sung"]])
    got = read_scores(p, fw, units)
    assert list(got.columns) == LONG_COLUMNS + ["unit_response"]
    assert got["unit_response"].tolist() == ["Đã bổ sung"]


def test_bad_rounds_and_nul_characters_are_reported_with_their_cells(tmp_path, fw, units):
    p = tmp_path / "bad.xlsx"
    wb = xlsxwriter.Workbook(str(p))
    ws = wb.add_worksheet("Thẩm định")
    ws.write_row(0, 0, ["Bảng thẩm định"])
    ws.write_row(1, 0, ["Mã đơn vị", "Năm", "Mã tiêu chí", "Điểm thẩm định", "Lý do", "Ý kiến của đơn vị", "Vòng"])
    ws.write_row(2, 0, ["D01", 2024, "1.2", 1, "Thiếu\x00 hồ sơ", "", 0])
    ws.write_row(3, 0, ["D01", 2024, "1.1.2", 1, "ok", "a\x00b", "1,5"])
    ws.write_row(4, 0, ["D02", 2024, "1.2", 1, "ok", "", "hai"])
    ws.write_row(5, 0, ["D02", 2024, "1.1.2", 1, "ok", "", -1])
    ws.write_boolean(6, 6, True)
    ws.write_row(6, 0, ["D03", 2024, "1.2", 1, "ok", ""])
    ws.write_row(7, 0, ["D03", 2024, "1.1.2", 1, "ok", "", 3])
    wb.close()
    err = expect_failures(p, fw, units)
    assert failures(err) == {
        (3, "Lý do", "Thiếu\\x00 hồ sơ"), (3, "Vòng", 0.0), (4, "Ý kiến của đơn vị", "a\\x00b"), (4, "Vòng", "1,5"),
        (5, "Vòng", "hai"), (6, "Vòng", -1.0), (7, "Vòng", True),
    }
    f = err.failures.set_index(["row", "column"])["expected"]
    assert "NUL" in f[(3, "Lý do")] and "whole number 1, 2" in f[(5, "Vòng")]
    assert set(err.failures["sheet"]) == {"Thẩm định"}
    assert not any("\x00" in str(v) for v in err.failures["value"])


def test_wide_sheet_reads_the_round_of_each_row(tmp_path, fw, units):
    p = write_xlsx(tmp_path / "wide_round.xlsx", [
        ["Mã đơn vị", "Năm", "Vòng thẩm định", "1.1.2", "1.2"],
        ["D01", 2024, 1, 1.5, None],
        ["D02", 2024, None, 0.5, 2],
        ["D03", 2024, 2, None, "1,5"],
    ], title_rows=1)
    got = read_scores(p, fw, units, wide_score="appraised_score")
    assert list(got.columns) == LONG_COLUMNS + ["appraisal_round"]
    assert got[["unit_code", "node_code"]].values.tolist() == [
        ["D01", "1.1.2"], ["D01", "1.2"], ["D02", "1.1.2"], ["D02", "1.2"], ["D03", "1.1.2"], ["D03", "1.2"]]
    np.testing.assert_allclose(got["appraised_score"], [1.5, NAN, 0.5, 2, NAN, 1.5])
    # the round goes with the scores the row gives, not with its blank cells
    assert got["appraisal_round"].tolist() == [1, pd.NA, pd.NA, pd.NA, pd.NA, 2]
    # one failure per bad row, not one per leaf column
    q = write_csv(tmp_path / "wide_bad.csv", [["unit_code", "year", "Vòng", "1.1.2", "1.2"],
                                              ["D01", "2024", "0", "1", "1"]])
    assert failures(expect_failures(q, fw, units)) == {(2, "Vòng", "0")}


def test_wide_sheet_refuses_a_reason_column_holding_text(tmp_path, fw, units):
    p = write_csv(tmp_path / "wide_reason.csv", [
        ["unit_code", "year", "1.1.2", "1.2", "Lý do điều chỉnh", "Giải trình của đơn vị"],
        ["D01", "2024", "1", "1", "", "Đã bổ sung"],
        ["D02", "2024", "1", "1", "Thiếu hồ sơ", ""],
    ])
    err = expect_failures(p, fw, units, wide_score="appraised_score")
    assert failures(err) == {(1, "Lý do điều chỉnh", "Lý do điều chỉnh"),
                             (1, "Giải trình của đơn vị", "Giải trình của đơn vị")}
    assert all("long layout" in e for e in err.failures["expected"])
    # an empty reason column says nothing: the sheet reads as before, without the appraisal columns
    q = write_csv(tmp_path / "wide_empty.csv", [["unit_code", "year", "1.1.2", "Lý do"], ["D01", "2024", "1", ""]])
    got = read_scores(q, fw, units, wide_score="appraised_score")
    assert list(got.columns) == LONG_COLUMNS and got["appraised_score"].tolist() == [1.0]


def _appraisal_file(path, rows, *, reasons=True):
    header = ["Mã đơn vị", "Năm", "Mã tiêu chí", "Điểm tự chấm", "Điểm thẩm định", "Lý do điều chỉnh",
              "Giải trình của đơn vị", "Vòng thẩm định"]
    keep = [j for j, h in enumerate(header) if reasons or h != "Lý do điều chỉnh"]
    return write_xlsx(path, [[r[j] for j in keep] for r in [header] + rows], title_rows=2, sheet="Thẩm định")


def test_the_appraisal_rule_applies_on_import_and_a_refused_file_writes_nothing(tmp_path, fw, units):
    from parindex_lib.store import Store

    store = Store(f"sqlite:///{tmp_path / 'parindex.sqlite'}")
    store.create_tenant("t", "Tỉnh thử nghiệm", admin_user="lan")
    store.add_shared_framework(fw)
    with store.session(tenant="t", user="lan") as s:
        s.upsert_units(pd.DataFrame({"code": ["D01", "D02"], "name": ["Sở Nội vụ", "Sở Tài chính"],
                                     "kind": ["department"] * 2}))
        for u in ("D01", "D02"):
            s.create_assessment(u, 2024, "test_fw")
        s.write_scores(pd.DataFrame({"unit_code": ["D01"] * 3 + ["D02"] * 3, "year": 2024,
                                     "node_code": ["1.1.1", "1.1.2", "1.2", "1.1.2", "1.2", "2.1.1"],
                                     "self_score": [2, 1.5, 2, 2, 1, 1]}), source="tucham.csv")
        # an earlier round left a reason on D02 1.1.2
        s.write_scores(pd.DataFrame({"unit_code": ["D02"], "year": 2024, "node_code": ["1.1.2"],
                                     "appraised_score": [0.5], "appraisal_reason": ["Thiếu hồ sơ"],
                                     "appraisal_round": [1]}), source="vong1.csv")

        rows = [  # spreadsheet rows 4 to 9 (two title rows, the header on row 3)
            ["D01", 2024, "1.1.1", 2, 1, "Chậm 5 ngày", None, 2],
            ["D01", 2024, "1.1.2", "1,5", 1, None, None, 2],  # differs from its self score, no reason
            ["D01", 2024, "1.2", None, 2, None, None, 2],  # the same as the stored self score
            ["D02", 2024, "1.2", None, "0,5", None, "Đơn vị đề nghị xem lại", 2],  # differs from the stored 1
            ["D02", 2024, "2.1.1", None, None, None, None, None],
            ["D02", 2024, "1.1.2", None, 1, None, None, 2],  # the stored reason stands
        ]
        p = _appraisal_file(tmp_path / "thamdinh.xlsx", rows)
        table = read_scores(p, fw, units)
        before_scores, before_audit = s.scores(), s.audit()
        with pytest.raises(ValidationError, match="nothing was written") as err:
            s.write_scores(table, source=p.name)
        f = err.value.failures
        assert list(zip(f["file"], f["sheet"], f["row"], f["column"])) == [
            ("thamdinh.xlsx", "Thẩm định", 5, "appraisal_reason"), ("thamdinh.xlsx", "Thẩm định", 7, "appraisal_reason")]
        assert "unit D01, node 1.1.2" in f["expected"].iloc[0] and "self score 1.5" in f["expected"].iloc[0]
        assert "unit D02, node 1.2" in f["expected"].iloc[1] and "self score 1" in f["expected"].iloc[1]
        # the rows named are the ones the person sees: the cells there hold what the failures describe
        ws = openpyxl.load_workbook(p)["Thẩm định"]
        assert [(ws.cell(r, 1).value, ws.cell(r, 3).value, ws.cell(r, 5).value) for r in f["row"]] == [
            ("D01", "1.1.2", 1), ("D02", "1.2", "0,5")]
        pd.testing.assert_frame_equal(s.scores(), before_scores)
        pd.testing.assert_frame_equal(s.audit(), before_audit)

        # the same sheet without a reason column imports as files always did
        old = _appraisal_file(tmp_path / "cu.xlsx", rows, reasons=False)
        counts = s.write_scores(read_scores(old, fw, units), source="cu.xlsx")
        assert (counts["updated"], counts["unchanged"]) == (5, 1)

        # with the reasons filled in the file imports, and the reasons land on their leaves
        rows[1][5], rows[3][5] = "Thực hiện 75% kế hoạch", "Báo cáo thiếu số liệu"
        fixed = _appraisal_file(tmp_path / "thamdinh2.xlsx", rows)
        assert s.write_scores(read_scores(fixed, fw, units), source="thamdinh2.xlsx")["updated"] == 3
        got = s.scores().set_index(["unit_code", "node_code"])
    expected = {  # (appraised_score, appraisal_reason, unit_response, appraisal_round)
        ("D01", "1.1.1"): (1.0, "Chậm 5 ngày", None, 2),
        ("D01", "1.1.2"): (1.0, "Thực hiện 75% kế hoạch", None, 2),
        ("D01", "1.2"): (2.0, None, None, 2),
        ("D02", "1.1.2"): (1.0, "Thiếu hồ sơ", None, 2),
        ("D02", "1.2"): (0.5, "Báo cáo thiếu số liệu", "Đơn vị đề nghị xem lại", 2),
        ("D02", "2.1.1"): (None, None, None, None),
    }
    for key, (a, reason, response, rnd) in expected.items():
        row = got.loc[key]
        assert (row["appraised_score"] == a) if a is not None else pd.isna(row["appraised_score"]), key
        assert (None if pd.isna(row["appraisal_reason"]) else row["appraisal_reason"]) == reason, key
        assert (None if pd.isna(row["unit_response"]) else row["unit_response"]) == response, key
        assert (None if pd.isna(row["appraisal_round"]) else int(row["appraisal_round"])) == rnd, key
    store.dispose()
