"""check_file against real files built in tmp_path: bombs, renamed files, legacy and encrypted workbooks."""

from __future__ import annotations

import struct
import zipfile

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parindex_lib.errors import FileRefused, ValidationError
from parindex_lib.safety import check_file, escape_formula, unescape_formula

CONTENT_TYPES = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                 b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
WORKBOOK = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            b'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheets/></workbook>')
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheets>&lol3;</sheets></workbook>"""


def refused(path, **kw) -> FileRefused:
    with pytest.raises(FileRefused) as info:
        check_file(path, **kw)
    err = info.value
    assert isinstance(err, ValidationError)
    assert list(err.failures.columns) == ["file", "sheet", "row", "column", "value", "expected"]
    assert err.failures.loc[0, "file"] == path.name
    assert err.failures.loc[0, "expected"]
    return err


def fake_xlsx(path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> None:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def real_xlsx(path) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["unit_code", "year", "node_code", "self_score"])
    wb.active.append(["D01", 2024, "1.1.1", 1])
    wb.save(path)


# -- what a file is -----------------------------------------------------------

def test_a_real_workbook_is_xlsx_and_text_is_csv(tmp_path):
    real_xlsx(tmp_path / "scores.xlsx")
    assert check_file(tmp_path / "scores.xlsx") == "xlsx"
    (tmp_path / "scores.csv").write_text("unit_code;year\nD01;2024\n", encoding="utf-8")
    assert check_file(tmp_path / "scores.csv") == "csv"


def test_kind_comes_from_content_not_the_name(tmp_path):
    real_xlsx(tmp_path / "bang_diem")  # no extension
    assert check_file(tmp_path / "bang_diem") == "xlsx"
    (tmp_path / "export.txt").write_text("unit_code,year\n", encoding="utf-8")
    assert check_file(tmp_path / "export.txt") == "csv"


def test_utf16_text_without_bom_is_text(tmp_path):
    (tmp_path / "u16.csv").write_bytes("unit_code\tyear\nD01\t2024\n".encode("utf-16-le"))
    assert check_file(tmp_path / "u16.csv") == "csv"


# -- size -------------------------------------------------------------------

def test_too_large_names_size_and_limit(tmp_path):
    p = tmp_path / "big.csv"
    p.write_bytes(b"unit_code,year\n" + b"D01,2024\n" * 20_000)
    err = refused(p, max_bytes=100_000)
    assert "0.2 MB" in str(err) and "0.1 MB" in str(err)
    assert "limit" in err.message
    assert check_file(p, max_bytes=1_000_000) == "csv"


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    err = refused(tmp_path / "empty.csv")
    assert "empty" in err.message
    with pytest.raises(FileRefused, match="does not exist"):
        check_file(tmp_path / "nothing.xlsx")


# -- renamed and legacy files ---------------------------------------------------

def test_csv_renamed_xlsx_is_refused(tmp_path):
    p = tmp_path / "scores.xlsx"
    p.write_text("unit_code,year,node_code,self_score\nD01,2024,1.1.1,1\n", encoding="utf-8")
    err = refused(p)
    assert "not an Excel workbook" in err.message
    assert "CSV" in err.failures.loc[0, "value"]


def test_workbook_renamed_csv_is_refused(tmp_path):
    p = tmp_path / "scores.csv"
    real_xlsx(p)
    err = refused(p)
    assert "zip" in err.message


def test_legacy_xls_says_save_as_xlsx(tmp_path):
    p = tmp_path / "old.xls"
    p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1024)
    err = refused(p)
    assert "save as .xlsx" in str(err)
    # the same bytes under another name are refused the same way
    q = tmp_path / "renamed.xlsx"
    q.write_bytes(p.read_bytes())
    assert "save as .xlsx" in str(refused(q))


def test_password_protected_workbook(tmp_path):
    p = tmp_path / "locked.xlsx"
    p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512 + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 512)
    err = refused(p)
    assert "password" in err.message


def test_html_saved_as_xls_is_refused(tmp_path):
    p = tmp_path / "export.xls"
    p.write_text("<html><table><tr><td>D01</td></tr></table></html>", encoding="utf-8")
    err = refused(p)
    assert "Save As .xlsx" in err.failures.loc[0, "expected"]


def test_binary_file_is_not_csv(tmp_path):
    p = tmp_path / "photo.csv"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    refused(p)


def test_zip_that_is_not_a_workbook(tmp_path):
    p = tmp_path / "docs.xlsx"
    fake_xlsx(p, {"word/document.xml": b"<w/>", "[Content_Types].xml": CONTENT_TYPES})
    err = refused(p)
    assert "xl/workbook.xml" in err.message


def test_damaged_zip(tmp_path):
    p = tmp_path / "broken.xlsx"
    p.write_bytes(b"PK\x03\x04" + b"\x01" * 200)
    refused(p)


def test_zip_of_an_unknown_version_is_refused(tmp_path):
    """Found by tests/test_fuzz_import.py: the zipfile module raises NotImplementedError for it."""
    p = tmp_path / "v64.xlsx"
    real_xlsx(p)
    data = bytearray(p.read_bytes())
    central = data.find(b"PK\x01\x02")
    data[central + 6] = 64  # "version needed to extract": 6.4
    p.write_bytes(bytes(data))
    assert "not a readable zip archive" in refused(p).message


# -- bombs -------------------------------------------------------------------

def test_zip_bomb_300_mb_of_zeros_is_refused(tmp_path):
    p = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("xl/workbook.xml", WORKBOOK)
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            block = b"\x00" * (1 << 20)
            for _ in range(300):
                fh.write(block)
    assert p.stat().st_size < 2_000_000
    err = refused(p)
    assert "zip bomb" in err.message and "200.0 MB" in err.message
    # with a higher total limit, the compression ratio still refuses it
    err = refused(p, max_uncompressed=10**12)
    assert "compressed" in err.message and "to 1" in err.message


def test_compression_ratio_alone(tmp_path):
    p = tmp_path / "ratio.xlsx"
    fake_xlsx(p, {"[Content_Types].xml": CONTENT_TYPES, "xl/workbook.xml": WORKBOOK,
                  "xl/worksheets/sheet1.xml": b" " * 5_000_000})
    err = refused(p)
    assert "xl/worksheets/sheet1.xml" in err.message
    assert check_file(p, max_ratio=10_000) == "xlsx"


def test_too_many_members(tmp_path):
    p = tmp_path / "many.xlsx"
    members = {"[Content_Types].xml": CONTENT_TYPES, "xl/workbook.xml": WORKBOOK}
    members.update({f"xl/media/p{i}.bin": b"x" for i in range(60)})
    fake_xlsx(p, members)
    err = refused(p, max_members=50)
    assert "62 parts" in err.message


def test_xml_entity_bomb_is_refused(tmp_path):
    p = tmp_path / "laughs.xlsx"
    fake_xlsx(p, {"[Content_Types].xml": CONTENT_TYPES, "xl/workbook.xml": BILLION_LAUGHS})
    err = refused(p)
    assert "DOCTYPE" in err.message and "xl/workbook.xml" in err.message


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_entity_declaration_in_utf16_part(tmp_path, encoding):
    p = tmp_path / "u16.xlsx"
    text = '<?xml version="1.0" encoding="UTF-16"?><!ENTITY x "y"><sst/>'
    fake_xlsx(p, {"[Content_Types].xml": CONTENT_TYPES, "xl/workbook.xml": WORKBOOK,
                  "xl/sharedStrings.xml": text.encode(encoding)})
    assert "ENTITY" in refused(p).message


def test_entity_split_across_read_chunks(tmp_path):
    p = tmp_path / "split.xlsx"
    padding = b" " * ((1 << 20) - 4)
    fake_xlsx(p, {"[Content_Types].xml": CONTENT_TYPES, "xl/workbook.xml": WORKBOOK,
                  "xl/styles.xml": padding + b"<!DOCTYPE x []><styleSheet/>"}, compression=zipfile.ZIP_STORED)
    assert "DOCTYPE" in refused(p).message


def test_encrypted_zip_is_refused(tmp_path):
    p = tmp_path / "enc.xlsx"
    fake_xlsx(p, {"[Content_Types].xml": CONTENT_TYPES, "xl/workbook.xml": WORKBOOK}, compression=zipfile.ZIP_STORED)
    data = bytearray(p.read_bytes())
    # set the "encrypted" bit in every local and central header
    for magic, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = data.find(magic)
        while i >= 0:
            (flags,) = struct.unpack_from("<H", data, i + flag_at)
            struct.pack_into("<H", data, i + flag_at, flags | 0x1)
            i = data.find(magic, i + 4)
    p.write_bytes(bytes(data))
    assert "encrypted" in refused(p).message


# -- formula injection ----------------------------------------------------------

@pytest.mark.parametrize("text", ["=1+1", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("http://x")', "＝1"])
def test_dangerous_text_gets_an_apostrophe(text):
    assert escape_formula(text) == "'" + text
    assert unescape_formula(escape_formula(text)) == text


@pytest.mark.parametrize("value", [1.5, -1.5, 0, -3, None, "Điểm", "1,5", "", "a=b"])
def test_numbers_and_plain_text_untouched(value):
    assert escape_formula(value) == value or (value != value)


def test_nan_untouched():
    x = float("nan")
    assert escape_formula(x) is x


@given(st.text())
def test_unescape_inverts_escape(text):
    assert unescape_formula(escape_formula(text)) == text
    escaped = escape_formula(text)
    assert not escaped.startswith(("=", "+", "-", "@", "\t", "\r"))


# -- sheets whose last cell lies far out ------------------------------------------

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


SHEET_START = f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}">'.encode()


def workbook(path, sheets: dict[str, str | bytes], compression=zipfile.ZIP_DEFLATED) -> None:
    """A workbook whose sheets hold the given XML between <worksheet> and </worksheet>."""
    names = list(sheets)
    members = {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": (b'<?xml version="1.0" encoding="UTF-8"?><Relationships '
                        b'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
                        b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
                        b'Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{NS}" xmlns:r="{NS_R}"><sheets>'
                            + "".join(f'<sheet name="{n}" sheetId="{i}" r:id="rId{i}"/>'
                                      for i, n in enumerate(names, 1))
                            + "</sheets></workbook>").encode(),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships '
            'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            + "".join(f'<Relationship Id="rId{i}" Type="{NS_R}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                      for i in range(1, len(names) + 1)) + "</Relationships>").encode(),
    }
    for i, body in enumerate(sheets.values(), 1):
        body = body.encode() if isinstance(body, str) else body
        members[f"xl/worksheets/sheet{i}.xml"] = SHEET_START + body + b"</worksheet>"
    fake_xlsx(path, members, compression)


def cell(ref: str, value: int = 1) -> str:
    return f'<c r="{ref}"><v>{value}</v></c>'


HEADER_ROW = '<row r="1">' + cell("A1") + cell("B1") + "</row>"


def test_one_value_in_the_last_cell_of_a_sheet_is_refused(tmp_path):
    p = tmp_path / "sparse.xlsx"
    workbook(p, {"Điểm": f'<sheetData>{HEADER_ROW}<row r="1048576">{cell("XFD1048576")}</row></sheetData>'})
    assert p.stat().st_size < 2_000
    err = refused(p)
    assert "sheet Điểm" in err.message and "XFD1048576" in err.message and "10,000,000" in err.message
    row = err.failures.iloc[0]
    assert row["sheet"] == "Điểm"
    assert "1,048,576 rows x 16,384 columns" in row["value"]
    assert "at most 10,000,000 cells" in row["expected"]


def test_the_cell_limit_is_configurable(tmp_path):
    p = tmp_path / "wide.xlsx"
    workbook(p, {"S": f'<sheetData>{HEADER_ROW}<row r="400">{cell("Z400")}</row></sheetData>'})
    assert check_file(p) == "xlsx"
    assert check_file(p, max_cells=400 * 26) == "xlsx"
    assert "Z400" in refused(p, max_cells=400 * 26 - 1).message


def calamine_cells(path) -> int:
    """rows x columns of the grid python-calamine gives for the first sheet (as the importer reads it)."""
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_path(str(path))
    rows = wb.get_sheet_by_index(0).to_python(skip_empty_area=False)
    return len(rows) * max((len(r) for r in rows), default=0)


# Sheets whose cells python-calamine places in a rectangle of a known size: the check counts
# exactly that rectangle.
PLACED = {
    "references": f'<sheetData>{HEADER_ROW}<row r="40">{cell("J40")}</row></sheetData>',
    "reference not first": f'<sheetData>{HEADER_ROW}<row r="40"><c s="0" r="J40"><v>1</v></c></row></sheetData>',
    "empty far cell": f'<sheetData>{HEADER_ROW}<row r="90"><c r="ZZ90" s="1"/></row>'
                      f'<row r="40">{cell("J40")}</row></sheetData>',
    "cells without references": '<sheetData><row r="30">' + "<c><v>1</v></c>" * 40 + "</row></sheetData>",
    "empty cells take a place": '<sheetData><row r="3"><c/><c s="1"/>' + "<c><v>1</v></c>" + "</row></sheetData>",
    "rows without references": "<sheetData>" + "<row><c><v>1</v></c></row>" * 5
                               + '<row r="20"><c r="D20"><v>1</v></c><c><v>2</v></c></row>'
                               + "<row><c><v>3</v></c></row></sheetData>",
    "reference of another row": '<sheetData><row r="50"><c r="A1"><v>1</v></c><c><v>2</v></c></row></sheetData>',
    "lower-case references": f'<sheetData>{HEADER_ROW}<row r="70"><c r="az70"><v>1</v></c></row></sheetData>',
    "namespace prefix": f'<x:sheetData xmlns:x="{NS}"><x:row r="1"><x:c r="A1"><x:v>1</x:v></x:c></x:row>'
                        '<x:row r="60"><x:c r="AB60"><x:v>1</x:v></x:c></x:row></x:sheetData>',
    "quoted > before the reference": f'<sheetData>{HEADER_ROW}<row r="45">'
                                     '<c xmlns:q="urn:q" q:note="a>b" r="M45"><v>1</v></c></row></sheetData>',
    "text cell": f'<sheetData>{HEADER_ROW}<row r="33"><c r="Q33" t="inlineStr"><is><t>x</t></is></c></row>'
                 "</sheetData>",
}


@pytest.mark.parametrize("body", list(PLACED.values()), ids=list(PLACED))
def test_cells_are_counted_where_the_reader_places_them(tmp_path, body):
    p = tmp_path / "placed.xlsx"
    workbook(p, {"S": body})
    n = calamine_cells(p)
    assert n > 4
    assert check_file(p, max_cells=n) == "xlsx"
    err = refused(p, max_cells=n - 1)
    assert "sheet S" in err.message and f"{n:,} cells" in err.message


def test_a_formula_without_a_saved_value_counts(tmp_path):
    """python-calamine skips it, but the importer marks it in the grid (it must not look blank)."""
    p = tmp_path / "formula.xlsx"
    workbook(p, {"S": f'<sheetData>{HEADER_ROW}<row r="1048576"><c r="XFD1048576"><f>1+1</f></c></row>'
                      "</sheetData>"})
    assert "XFD1048576" in refused(p).message


@pytest.mark.parametrize("prefix", ["", "x:"])
def test_a_far_cell_cut_by_the_read_chunks_is_seen(tmp_path, prefix):
    """The check reads parts in chunks of 1 MiB: a cell tag cut anywhere by a chunk's end is still read."""
    far = f'<{prefix}c r="XFD1048576"><{prefix}v>1</{prefix}v></{prefix}c>'
    head = f'<{prefix}sheetData xmlns:x="{NS}">' if prefix else "<sheetData>"
    tail = f'</{prefix}sheetData>'
    before = f'{head}{HEADER_ROW.replace("<", "<" + prefix).replace("<" + prefix + "/", "</" + prefix)}'
    before = (before + f'<{prefix}row r="1048576">').encode()
    for cut in range(0, 24, 2):
        pad = b" " * ((1 << 20) - cut - len(SHEET_START) - len(before))
        p = tmp_path / f"cut{cut}.xlsx"
        workbook(p, {"S": before + pad + f"{far}</{prefix}row>{tail}".encode()}, compression=zipfile.ZIP_STORED)
        with zipfile.ZipFile(p) as zf:
            assert zf.read("xl/worksheets/sheet1.xml")[(1 << 20) - cut:].startswith(far.encode())
        assert "XFD1048576" in refused(p).message, cut


def test_sheets_are_also_limited_together(tmp_path):
    p = tmp_path / "two.xlsx"
    body = f'<sheetData>{HEADER_ROW}<row r="10">{cell("H10")}</row></sheetData>'
    workbook(p, {"Một": body, "Hai": body})
    assert check_file(p, max_cells=160) == "xlsx"
    err = refused(p, max_cells=100)
    assert "160 cells" in err.message and "together" in err.message
    assert "sheet Một to H10" in err.failures.loc[0, "value"]


def test_the_declared_dimension_alone_is_not_refused(tmp_path):
    """Excel counts formatted rows and columns in <dimension>; python-calamine does not size the grid by it."""
    p = tmp_path / "dimension.xlsx"
    workbook(p, {"S": f'<dimension ref="A1:XFD1048576"/><sheetData>{HEADER_ROW}</sheetData>'})
    assert check_file(p) == "xlsx"
    assert calamine_cells(p) == 2


def test_a_cell_tag_that_never_ends_is_refused(tmp_path):
    p = tmp_path / "open.xlsx"
    workbook(p, {"S": f'<x:sheetData xmlns:x="{NS}"><x:row r="1"><x:c r="A1" t="' + "a" * 3_000_000},
             compression=zipfile.ZIP_STORED)
    assert "never ends" in refused(p).message
