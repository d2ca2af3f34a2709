"""Scoring sheets: hand-written workbooks and csv files in both numbering styles.

The workbooks are written with openpyxl (the module writes with xlsxwriter
and reads with python-calamine), so reading is checked against files made by
another program, with merged title rows, text cells with decimal commas and
header spellings as offices type them.
"""

from __future__ import annotations

import math
import unicodedata

import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parindex_lib.errors import FAILURE_COLUMNS, FileRefused, FrameworkError, FrameworkIncompleteError, ValidationError
from parindex_lib.framework import framework_from_dict, load_framework, read_framework_yaml
from parindex_lib.framework_sheet import SHEET_COLUMNS, read_framework_sheet, write_framework_sheet

TITLE = ["ỦY BAN NHÂN DÂN TỈNH THỬ NGHIỆM", None, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"]
NAME = "BỘ TIÊU CHÍ XÁC ĐỊNH CHỈ SỐ CẢI CÁCH HÀNH CHÍNH CỦA CÁC SỞ, BAN, NGÀNH"
LEGAL = "(Kèm theo Quyết định số 123/QĐ-UBND ngày 15/01/2024 của UBND tỉnh)"

# Dotted numbering; points partly numbers, partly text with a decimal comma;
# parents blank or "x"; a survey column; a row of column numbers; a total.
DOTTED = [
    ["STT", "Nội dung (tiêu chí)", "Điểm tối đa", "Điểm điều tra XHH", "Hướng dẫn chấm", "Tài liệu kiểm chứng", "Ghi chú"],
    ["(1)", "(2)", "(3)", "(4)", "(5)", "(6)", "(7)"],
    ["1", "Công tác chỉ đạo, điều hành CCHC", "x", None, None, None, None],
    ["1.1", "Kế hoạch CCHC năm", None, None, None, None, None],
    ["1.1.1", "Ban hành kế hoạch đúng hạn", "0,5", None, "Đúng hạn: 0,5; chậm: 0,25; không ban hành: 0", "Kế hoạch CCHC năm", None],
    ["1.1.2", "Mức độ hoàn thành kế hoạch", 1.5, None, ">90%: 1,5; 70-90%: 0,75; <70%: 0", "Có", "ghi chú bỏ qua"],
    ["1.2", "Báo cáo CCHC định kỳ", "1,25", None, "Đầy đủ, đúng hạn", None, None],
    [None, "- Báo cáo quý, 6 tháng, năm", None, None, None, None, None],
    ["2", "Tác động của CCHC", 7.75, None, None, None, None],
    ["2.1", "Mức độ hài lòng của người dân", "x", None, None, None, None],
    ["2.1.1", "Hài lòng về thủ tục hành chính", None, "2,75", None, None, None],
    ["2.1.2", "Hài lòng về công chức", 3, 3, None, None, None],
    ["2.2", "Giải quyết hồ sơ đúng hạn", 2, None, None, "Không", None],
    [None, "TỔNG CỘNG", "11", 5.75, None, None, None],
    [None, "Ghi chú: bảng này chỉ dùng để thử.", None, None, None, None, None],
]
DOTTED_POINTS = {"1": 3.25, "1.1": 2.0, "1.1.1": 0.5, "1.1.2": 1.5, "1.2": 1.25,
                 "2": 7.75, "2.1": 5.75, "2.1.1": 2.75, "2.1.2": 3.0, "2.2": 2.0}

# Roman / Arabic / letter numbering with variants; criteria numbered on across
# fields (II starts at 3); a survey named in the content; other header words.
ROMAN = [
    ["TT", "Lĩnh vực/Tiêu chí/Tiêu chí thành phần", "Thang điểm", "Cách chấm", "Điểm tự đánh giá"],
    ["I.", "CẢI CÁCH THỦ TỤC HÀNH CHÍNH", "4,5", None, None],
    ["1.", "Công khai TTHC", "2", None, None],
    ["a)", "Công khai trên Cổng dịch vụ công", "1", "Có: 1; không: 0", 1],
    ["b)", "Công khai tại Bộ phận Một cửa", "1", "Có: 1; không: 0", 0.5],
    ["2.", "Giải quyết hồ sơ đúng hạn", "2,5", "100%: 2,5; 90-100%: 1,25; <90%: 0", None],
    ["II.", "TÁC ĐỘNG (đánh giá qua điều tra xã hội học)", "5,5", None, None],
    ["3.", "Hài lòng của người dân", "5,5", None, None],
    ["a)", "Tiếp cận dịch vụ", "2,75", None, None],
    ["đ)", "Kết quả giải quyết", "2,75", None, None],
    [None, "TỔNG ĐIỂM", "10", None, None],
]
ROMAN_CODES = ["1", "1.1", "1.1.1", "1.1.2", "1.2", "2", "2.1", "2.1.1", "2.1.2"]
ROMAN_POINTS = [4.5, 2, 1, 1, 2.5, 5.5, 5.5, 2.75, 2.75]


def _xlsx(path, table, *, sheet="Phụ lục I", first_row=5, first_col=1, cover=False):
    """Write a workbook as an office would: merged title rows, the table lower down."""
    wb = openpyxl.Workbook()
    ws = wb.active
    if cover:
        ws.title = "Bìa"
        ws["A1"] = "Trang bìa, không có bảng"
        ws = wb.create_sheet(sheet)
    else:
        ws.title = sheet
    ncol = len(table[0])
    for c, v in enumerate(TITLE, start=first_col):
        if v:
            ws.cell(row=1, column=c, value=v)
    ws.cell(row=2, column=first_col, value=NAME)
    ws.merge_cells(start_row=2, start_column=first_col, end_row=2, end_column=first_col + ncol - 1)
    ws.cell(row=3, column=first_col, value=LEGAL)
    ws.merge_cells(start_row=3, start_column=first_col, end_row=3, end_column=first_col + ncol - 1)
    for r, row in enumerate(table, start=first_row):
        for c, v in enumerate(row, start=first_col):
            if v is not None:
                ws.cell(row=r, column=c, value=v)
    wb.save(path)
    return path


def _csv(path, table, *, sep=",", encoding="utf-8-sig", transform=str):
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, lineterminator="\r\n")
    w.writerow([NAME])
    w.writerow([LEGAL])
    w.writerow([])
    for row in table:
        w.writerow(["" if v is None else (str(v).replace(".", ",") if isinstance(v, float) else v) for v in row])
    path.write_bytes(transform(buf.getvalue()).encode(encoding))
    return path


def _check_dotted(fw):
    nodes = fw.nodes.set_index("code")
    assert fw.counts() == {"field": 2, "criterion": 4, "subcriterion": 4}
    assert nodes["max_points"].to_dict() == DOTTED_POINTS
    assert fw.max_points == 11
    assert fw.name_vi == NAME
    assert fw.legal_basis == "Quyết định số 123/QĐ-UBND ngày 15/01/2024 của UBND tỉnh"
    assert fw.level == "department"
    assert fw.status == "complete" and fw.scorable
    assert nodes.loc["2.1.1", "assessed_by"] == "survey" and nodes.loc["2.1.2", "assessed_by"] == "survey"
    assert nodes.loc["2.2", "assessed_by"] == "self" and nodes.loc["1.1.1", "assessed_by"] == "self"
    assert fw.survey_points == 5.75
    assert nodes.loc["1.1.1", "guidance_vi"] == ("Đúng hạn: 0,5; chậm: 0,25; không ban hành: 0\n"
                                                 "Tài liệu kiểm chứng: Kế hoạch CCHC năm")
    assert nodes.loc["1.2", "guidance_vi"] == "Đầy đủ, đúng hạn\n- Báo cáo quý, 6 tháng, năm"
    assert bool(nodes.loc["1.1.1", "evidence_required"]) and bool(nodes.loc["1.1.2", "evidence_required"])
    assert not nodes.loc["2.2", "evidence_required"] and not nodes.loc["2.1.1", "evidence_required"]
    assert fw.nodes["code"].tolist() == list(DOTTED_POINTS)


def _check_roman(fw):
    assert fw.nodes["code"].tolist() == ROMAN_CODES
    assert fw.nodes["max_points"].tolist() == ROMAN_POINTS
    assert fw.nodes["parent_code"].tolist() == [None, "1", "1.1", "1.1", "1", None, "2", "2.1", "2.1"]
    leaves = fw.leaves.set_index("code")
    assert leaves["assessed_by"].to_dict() == {"1.1.1": "self", "1.1.2": "self", "1.2": "self",
                                               "2.1.1": "survey", "2.1.2": "survey"}
    assert leaves.loc["1.2", "guidance_vi"] == "100%: 2,5; 90-100%: 1,25; <90%: 0"
    assert fw.node("1")["name_vi"] == "CẢI CÁCH THỦ TỤC HÀNH CHÍNH"
    assert fw.max_points == 10 and fw.survey_points == 5.5 and fw.scorable


# -- reading hand-written sheets ---------------------------------------------------

def test_xlsx_dotted_numbering(tmp_path):
    path = _xlsx(tmp_path / "bang_diem.xlsx", DOTTED)
    fw = read_framework_sheet(path, id="thu_nghiem", years=[2024])
    _check_dotted(fw)
    assert fw.id == "thu_nghiem" and fw.years == (2024,)


def test_xlsx_roman_numbering(tmp_path):
    path = _xlsx(tmp_path / "roman.xlsx", ROMAN, first_row=7, first_col=2)
    _check_roman(read_framework_sheet(path, id="roman", level="district"))


def test_csv_dotted_numbering_with_semicolons(tmp_path):
    path = _csv(tmp_path / "bang diem sở.csv", DOTTED, sep=";")
    fw = read_framework_sheet(path)
    _check_dotted(fw)
    assert fw.id == "bang_diem_so"


def test_csv_roman_numbering(tmp_path):
    _check_roman(read_framework_sheet(_csv(tmp_path / "roman.csv", ROMAN), id="roman"))


def _cp1258_form(text: str) -> str:
    """Windows-1258 spelling: Â Ê Ô Ă Ơ Ư precomposed, tone marks combining."""
    tones = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
    out = []
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.combining(ch) and out:
            base, marks = out[-1]
            if ch in tones:
                out[-1] = (base, marks + ch)
            else:
                out[-1] = (unicodedata.normalize("NFC", base + ch), marks)
        else:
            out.append((ch, ""))
    return "".join(b + m for b, m in out)


def test_csv_in_windows_1258(tmp_path):
    path = _csv(tmp_path / "cp1258.csv", ROMAN, encoding="cp1258", transform=_cp1258_form)
    assert path.read_bytes().decode("cp1258") != unicodedata.normalize("NFC", path.read_bytes().decode("cp1258"))
    fw = read_framework_sheet(path, id="roman")
    _check_roman(fw)
    assert fw.name_vi == NAME


def test_header_variants_case_and_diacritics(tmp_path):
    table = [list(r) for r in DOTTED]
    table[0] = [unicodedata.normalize("NFD", "Số TT"), "NỘI DUNG TIÊU CHÍ", "ĐIỂM TỐI ĐA",
                "điểm ĐT xã hội học", "HƯỚNG DẪN CHẤM ĐIỂM", unicodedata.normalize("NFD", "tài liệu kiểm chứng"), "Ghi chú"]
    _check_dotted(read_framework_sheet(_xlsx(tmp_path / "h.xlsx", table), id="h"))


def test_letters_under_dotted_codes(tmp_path):
    table = [["STT", "Nội dung", "Điểm"],
             ["1", "Lĩnh vực một", None], ["1.1", "Tiêu chí", None], ["a", "TP a", "0,25"], ["b", "TP b", "0,75"],
             ["1.2", "Tiêu chí lá", 1], ["2", "Lĩnh vực hai", None], ["a.", "Tiêu chí chữ", 2]]
    fw = read_framework_sheet(_csv(tmp_path / "l.csv", table), id="l", level="commune")
    assert fw.nodes["code"].tolist() == ["1", "1.1", "1.1.1", "1.1.2", "1.2", "2", "2.1"]
    assert fw.nodes["max_points"].tolist() == [2, 1, 0.25, 0.75, 1, 2, 2]
    assert fw.max_points == 4        # no total row: the sum of the fields


def test_choose_the_sheet(tmp_path):
    path = _xlsx(tmp_path / "two.xlsx", DOTTED, cover=True)
    _check_dotted(read_framework_sheet(path, id="a"))                       # first sheet with a header
    _check_dotted(read_framework_sheet(path, id="a", sheet="Phụ lục I"))
    _check_dotted(read_framework_sheet(path, id="a", sheet=unicodedata.normalize("NFD", "phụ lục i")))
    _check_dotted(read_framework_sheet(path, id="a", sheet=1))
    with pytest.raises(FrameworkError) as info:
        read_framework_sheet(path, id="a", sheet=0)
    row = info.value.failures.iloc[0]
    assert row["sheet"] == "Bìa" and "STT" in row["expected"]
    with pytest.raises(FrameworkError) as info:
        read_framework_sheet(path, id="a", sheet="Phụ lục II")
    assert "Bìa, Phụ lục I" in info.value.failures.iloc[0]["expected"]


def test_blank_leaf_points_load_but_refuse_to_score(tmp_path):
    table = [["STT", "Nội dung", "Điểm tối đa"], ["1", "LV", None], ["1.1", "TC có điểm", 2], ["1.2", "TC chưa biết", None]]
    fw = read_framework_sheet(_csv(tmp_path / "blank.csv", table), id="b")
    assert fw.status == "incomplete" and fw.unknown_points() == ["1", "1.2"]
    with pytest.raises(FrameworkIncompleteError) as info:
        fw.require_scorable()
    assert info.value.codes == ["1", "1.2"]


def test_title_gives_the_level(tmp_path):
    table = [["STT", "Nội dung", "Điểm tối đa"], ["1", "LV", 1]]
    for title, level in [("Bộ tiêu chí xác định Chỉ số CCHC cấp xã", "commune"),
                         ("BỘ CHỈ SỐ CẢI CÁCH HÀNH CHÍNH CẤP HUYỆN", "district"),
                         ("Chỉ số CCHC của UBND cấp tỉnh", "province"),
                         ("Bảng điểm", "province")]:
        path = tmp_path / "t.csv"
        path.write_text(f"{title}\n\n" + "\n".join(",".join(str(v) for v in r) for r in table), encoding="utf-8")
        fw = read_framework_sheet(path, id="t")
        assert fw.level == level and fw.name_vi == title


# -- failures ---------------------------------------------------------------------

BAD = [
    ["STT", "Nội dung (tiêu chí)", "Điểm tối đa"],          # row 5
    ["1", "Lĩnh vực 1", "3"],                                 # row 6: 1.1 + 1.2 = 2.5, not 3
    ["1.1", "Tiêu chí 1.1", "1,5"],                           # row 7
    ["1.2", "Tiêu chí 1.2", "một"],                           # row 8: not a number
    ["1..3", "Tiêu chí hỏng", "1"],                           # row 9: unreadable numbering
    ["2", "Lĩnh vực 2", "3"],                                 # row 10
    ["2.1.1", "Nhảy cấp", "1"],                               # row 11: skips a level
    ["2.1", "Tiêu chí 2.1", "2"],                             # row 12
    ["3.1", "Sai cha", "1"],                                  # row 13: not under 2
    ["2.1", "Trùng số", "0"],                                 # row 14: duplicate
    ["A1", "", "1"],                                          # row 15: unreadable
    [None, "không có số", "2"],                               # row 16: points without a number
    ["2.2", "Điểm x ở lá", "x"],                              # row 17: x on a leaf
    [None, "Tổng cộng", "50"],                                # row 18: the fields add up to 6
]


def test_bad_sheet_lists_every_problem(tmp_path):
    path = _xlsx(tmp_path / "hong.xlsx", BAD)
    with pytest.raises(FrameworkError) as info:
        read_framework_sheet(path, id="bad")
    table = info.value.failures
    assert isinstance(info.value, ValidationError)
    assert list(table.columns) == FAILURE_COLUMNS
    assert (table["file"] == "hong.xlsx").all() and (table["sheet"] == "Phụ lục I").all()
    got = {(r.row, r.column, r.value) for r in table.itertuples()}
    assert got == {
        (8, "Điểm tối đa", "một"),
        (9, "STT", "1..3"),
        (11, "STT", "2.1.1"),
        (13, "STT", "3.1"),
        (14, "STT", "2.1"),
        (15, "STT", "A1"),
        (16, "STT", ""),
        (17, "Điểm tối đa", "x"),
        (18, "Điểm tối đa", 50.0),
    }, table
    by_row = table.set_index("row")["expected"]
    assert "skip a level" in by_row[11]
    assert "under its parent 2" in by_row[13]
    assert "row 12" in by_row[14]
    assert "sum of the fields (6)" in by_row[18]
    assert "9 problems" in str(info.value)


def test_parent_that_does_not_add_up(tmp_path):
    table = [["STT", "Nội dung", "Điểm tối đa"], ["1", "LV", "3"], ["1.1", "TC", "1,5"], ["1.2", "TC", 1]]
    with pytest.raises(FrameworkError) as info:
        read_framework_sheet(_csv(tmp_path / "sum.csv", table), id="s")
    row = info.value.failures.iloc[0]
    assert len(info.value.failures) == 1
    assert (row["row"], row["column"], row["value"]) == (5, "Điểm tối đa", "3")
    assert "1.1 1.5 + 1.2 1 = 2.5" in row["expected"]
    assert row["sheet"] is None


def test_total_that_disagrees_with_max_points(tmp_path):
    table = [["STT", "Nội dung", "Điểm tối đa"], ["1", "LV", 2], [None, "TỔNG ĐIỂM", 2]]
    with pytest.raises(FrameworkError) as info:
        read_framework_sheet(_csv(tmp_path / "t.csv", table), id="t", max_points=100)
    assert "max_points=100" in info.value.failures.iloc[0]["expected"]
    assert read_framework_sheet(_csv(tmp_path / "t.csv", table), id="t", max_points=2).max_points == 2


def test_mixed_survey_leaf_is_refused(tmp_path):
    table = [["STT", "Nội dung", "Điểm tối đa", "Điểm điều tra XHH"], ["1", "LV", 3, 1]]
    with pytest.raises(FrameworkError) as info:
        read_framework_sheet(_csv(tmp_path / "m.csv", table), id="m")
    row = info.value.failures.iloc[0]
    assert row["column"] == "Điểm điều tra XHH" and "split" in row["expected"]


def test_sheet_without_header(tmp_path):
    path = tmp_path / "none.csv"
    path.write_text("a,b,c\n1,2,3\n", encoding="utf-8")
    with pytest.raises(FrameworkError) as info:
        read_framework_sheet(path)
    assert "STT, Nội dung (tiêu chí) and Điểm tối đa" in info.value.failures.iloc[0]["expected"]


def test_framework_rules_still_apply_with_sheet_rows(tmp_path):
    table = [["STT", "Nội dung", "Điểm tối đa", "Các mức điểm"], ["1", "LV", 2, None],
             ["1.1", "TC", 2, "3 | Quá | Too much\n0 | Không | No"]]
    with pytest.raises(FrameworkError) as info:
        read_framework_sheet(_csv(tmp_path / "r.csv", table), id="r")
    row = info.value.failures.iloc[0]
    assert row["row"] == 6 and row["column"] == "Các mức điểm" and "between 0 and 2" in row["expected"]
    with pytest.raises(FrameworkError) as info:
        read_framework_sheet(_csv(tmp_path / "r.csv", table[:2]), id="r", level="county", years=[2024])
    row = info.value.failures.iloc[0]
    assert (row["row"], row["column"], row["value"]) == (None, "level", "county")


@pytest.mark.parametrize("name, content, error", [
    ("x.txt", b"%PDF-1.4 not a table", FrameworkError),     # text, but no header row
    ("x.xlsx", b"not a zip", FileRefused),                # refused by the safety check
    ("x.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), FileRefused),
])
def test_unreadable_files(tmp_path, name, content, error):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(error) as info:
        read_framework_sheet(path)
    assert isinstance(info.value, ValidationError)
    assert info.value.failures.iloc[0]["file"] == name


def test_missing_file(tmp_path):
    with pytest.raises(FileRefused):
        read_framework_sheet(tmp_path / "missing.xlsx")


# -- export and round trip ----------------------------------------------------------

_META = ["id", "name_en", "level", "kinds", "years", "status", "bands", "bonus_cap", "penalty_cap",
         "sources", "notes", "declared_counts"]
_CARRIED = ["code", "parent_code", "level", "depth", "position", "name_vi", "name_en", "max_points",
            "assessed_by", "guidance_vi", "guidance_en", "evidence_required", "rubric", "is_leaf"]


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_demo_export_reads_back_equal(tmp_path, suffix):
    fw = load_framework("demo_department_2024")
    path = write_framework_sheet(fw, tmp_path / f"demo{suffix}")
    back = read_framework_sheet(path, **{k: getattr(fw, k) for k in _META})
    assert back == fw                      # name, legal basis, total and survey_points from the sheet
    pd.testing.assert_frame_equal(back.nodes[_CARRIED], fw.nodes[_CARRIED])


def test_export_layout(tmp_path):
    from python_calamine import CalamineWorkbook

    fw = load_framework("demo_department_2024")
    path = write_framework_sheet(fw, tmp_path / "demo.xlsx")
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
    assert rows[0][0] == fw.name_vi
    header = rows[2]
    assert header[:4] == ["STT", "Nội dung (tiêu chí)", "Điểm tối đa", "Điểm điều tra XHH"]
    assert set(header) <= set(SHEET_COLUMNS.values())
    codes = [r[0] for r in rows[3:-1]]
    assert codes[:4] == ["1", "1.1", "1.1.1", "1.1.2"] and len(codes) == 8 + 37 + 88
    assert rows[-1][1] == "TỔNG CỘNG" and rows[-1][2] == 100 and rows[-1][3] == 25


def test_csv_export_keeps_cells_from_becoming_formulas(tmp_path):
    data = {"id": "f", "name_vi": "Bộ tiêu chí thử", "level": "commune", "max_points": 1,
            "legal_basis": "Quyết định 1/QĐ-UBND",
            "nodes": [{"code": "1", "name_vi": "=HYPERLINK(\"http://x\")", "max_points": 1,
                       "guidance_vi": "- Có: 1\n- Không: 0", "guidance_en": "+1 if yes"}]}
    fw = framework_from_dict(data)
    path = write_framework_sheet(fw, tmp_path / "f.csv")
    text = path.read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text and "'- Có: 1" in text and "\n=" not in text
    back = read_framework_sheet(path, id="f", level="commune")
    assert back.legal_basis == "Quyết định 1/QĐ-UBND"
    pd.testing.assert_frame_equal(back.nodes[_CARRIED], fw.nodes[_CARRIED])


def test_export_refuses_other_formats(tmp_path):
    with pytest.raises(FrameworkError):
        write_framework_sheet(load_framework("demo_department_2024"), tmp_path / "x.pdf")


def test_incomplete_framework_exports_blanks(tmp_path):
    fw = load_framework("bnv_876_2022_province")
    back = read_framework_sheet(write_framework_sheet(fw, tmp_path / "876.xlsx"), id=fw.id)
    assert back.status == "incomplete" and back.unknown_points() == fw.unknown_points()
    assert back.legal_basis == fw.legal_basis and back.level == "province" and back.max_points == 100


_WORDS = st.sampled_from(["Kế hoạch", "CCHC", "một cửa", "Đánh giá", "100%", ">90%: 1", "1,5", "- gạch",
                          "=A1", "\"q\"", "a; b", "x", "TỔNG", "đúng hạn"])
_TEXT = st.lists(_WORDS, min_size=1, max_size=4).map(" ".join).filter(lambda s: s[0].isalpha())
_POINTS = st.integers(1, 40).map(lambda k: k / 4)


@st.composite
def _trees(draw, depth=1, prefix=""):
    out = []
    for i in range(1, draw(st.integers(1 if depth == 1 else 0, 3)) + 1):
        code = f"{prefix}{i}"
        node = {"code": code, "name_vi": draw(_TEXT)}
        if draw(st.booleans()):
            node["name_en"] = draw(_TEXT)
        kids = draw(_trees(depth + 1, code + ".")) if depth < 3 else []
        if kids:
            node["children"] = kids
            node["max_points"] = math.fsum(k["max_points"] for k in kids)
        else:
            node["max_points"] = draw(_POINTS)
            node["assessed_by"] = draw(st.sampled_from(["self", "survey"]))
            if draw(st.booleans()):
                node["evidence_required"] = draw(st.booleans())
            if draw(st.booleans()):
                node["guidance_vi"] = draw(_TEXT) + "\n" + draw(_TEXT)
                node["guidance_en"] = draw(_TEXT)
            if draw(st.booleans()):
                node["rubric"] = [{"points": node["max_points"], "label_vi": draw(_TEXT), "label_en": draw(_TEXT)},
                                  {"points": 0, "label_vi": draw(_TEXT), "label_en": ""}]
        out.append(node)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(nodes=_trees(), suffix=st.sampled_from([".csv", ".xlsx"]))
def test_sheet_round_trip_of_random_trees(tmp_path, nodes, suffix):
    data = {"id": "r", "name_vi": "Bộ tiêu chí ngẫu nhiên", "level": "district",
            "max_points": math.fsum(n["max_points"] for n in nodes), "nodes": nodes}
    fw = framework_from_dict(data)
    survey = fw.leaves.loc[fw.leaves["assessed_by"] == "survey", "max_points"]
    if len(survey):                       # the import sums the survey leaves
        fw = fw.replace(survey_points=float(survey.sum()))
    back = read_framework_sheet(write_framework_sheet(fw, tmp_path / f"r{suffix}"), id="r", level="district")
    pd.testing.assert_frame_equal(back.nodes[_CARRIED], fw.nodes[_CARRIED])
    assert back == fw


def test_yaml_of_an_imported_sheet_loads(tmp_path):
    from parindex_lib.framework import framework_to_yaml

    fw = read_framework_sheet(_xlsx(tmp_path / "b.xlsx", DOTTED), id="b")
    again = read_framework_yaml(framework_to_yaml(fw), "b.yaml")
    assert again == fw


def test_survey_column_wins_over_survey_words(tmp_path):
    table = [["STT", "Nội dung", "Điểm tối đa", "Điểm điều tra XHH"], ["1", "LV", None, None],
             ["1.1", "Tổ chức điều tra xã hội học về sự hài lòng", 1, None], ["1.2", "Hài lòng", 2, 2]]
    fw = read_framework_sheet(_csv(tmp_path / "s.csv", table), id="s")
    assert fw.leaves["assessed_by"].tolist() == ["self", "survey"]
    no_column = [row[:3] for row in table]
    fw = read_framework_sheet(_csv(tmp_path / "t.csv", no_column), id="t")
    assert fw.leaves["assessed_by"].tolist() == ["survey", "self"]
