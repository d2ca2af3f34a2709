"""Refusing dangerous files before anything reads them.

Score files come from many offices by e-mail and upload. Before a parser
touches one, :func:`check_file` looks at its bytes (never its name) and
refuses what it cannot read safely: files that are too large or empty,
legacy or password-protected workbooks, a CSV renamed ``.xlsx`` (or the
reverse), zip bombs, XML entity bombs, sheets whose last cell lies so far
out that reading them would fill the memory, and encrypted archives.
:func:`escape_formula` protects the people who open exported files in a
spreadsheet program from formula injection.
"""

from __future__ import annotations

import os
import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
import zlib
from itertools import repeat
from pathlib import Path
from typing import Any

from .errors import FileRefused

__all__ = [
    "MAX_BYTES",
    "MAX_UNCOMPRESSED",
    "MAX_RATIO",
    "MAX_MEMBERS",
    "MAX_CELLS",
    "check_file",
    "escape_formula",
    "unescape_formula",
]

#: Largest file accepted by default (20 MB).
MAX_BYTES = 20_000_000
#: Largest total of the uncompressed sizes of a workbook's parts (200 MB).
MAX_UNCOMPRESSED = 200_000_000
#: Largest compression ratio of one workbook part (uncompressed / compressed).
MAX_RATIO = 100
#: Most parts a workbook may hold.
MAX_MEMBERS = 2_000
#: Most cells of a sheet, counted as rows x columns up to its last cell (the
#: reader fills that whole rectangle), and of all the sheets of a workbook.
MAX_CELLS = 10_000_000
# Parts smaller than this are not held to MAX_RATIO: a few kB of repeated
# XML compress very well and cannot hurt anyone.
_RATIO_FLOOR = 1_000_000

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_TEXT_SUFFIXES = {".csv", ".tsv", ".txt"}
_WORKBOOK_SUFFIXES = {".xlsx", ".xlsm", ".xltx", ".xltm", ".xls", ".xlsb", ".ods"}
_SAVE_AS = "an Excel workbook (.xlsx) or a CSV file: open it in Excel and use Save As .xlsx"
_XML_DANGERS = tuple(
    (word, f"<!{word}".encode(enc)) for word in ("DOCTYPE", "ENTITY") for enc in ("ascii", "utf-16-le", "utf-16-be"))
_OVERLAP = 256
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_CHUNK = 1 << 20
# Cells as Excel writes them, reference first (<c r="B12" ...>); any cell tag; a cell tag with a
# namespace prefix (<x:c>). Counted in bulk for the quick bound of _Quick.
_FIRST_REF = re.compile(rb'<c r="([A-Z]{1,3}[1-9][0-9]{0,6})"')
_NOT_A_CELL = re.compile(rb"<c[^\s/>]")
_DIGITS = b"0123456789"
_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PREFIXED_CELL = re.compile(rb":c[\s/>]")
# Start tags that place cells: <row> and <c> (a cell), with any namespace prefix; attribute values
# are matched whole so that a ">" inside quotes does not end the tag (for _Extent).
_CELL_TAG = re.compile(rb"""<(?:[A-Za-z_][\w.\-]*:)?(row|c)(?=[\s/>])((?:[^>"']|"[^"]*"|'[^']*')*)>""")
_CELL_TAG_START = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?(?:row|c)(?=[\s/>])")
_TAG_NAME_SO_FAR = re.compile(rb"<[A-Za-z_:]?[\w.\-:]*")
_R_ATTR = re.compile(rb"""(?:^|\s)r\s*=\s*["']([A-Za-z]*)([0-9]*)["']""")
# A cell or row tag not closed within this many bytes is not read as one.
_MAX_TAG = 1 << 20
# Parts of the workbook that name its sheets, read only when this small.
_MAX_INDEX_PART = 5_000_000


def _mb(n: float) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{n:,.0f} bytes"


def _refuse(name: str, value: Any, expected: str, why: str, sheet: str | None = None) -> FileRefused:
    return FileRefused(f"file {name} refused: {why}",
                       [{"file": name, "sheet": sheet, "value": value, "expected": expected}])


def check_file(
    path: str | os.PathLike,
    *,
    max_bytes: int = MAX_BYTES,
    max_uncompressed: int = MAX_UNCOMPRESSED,
    max_ratio: float = MAX_RATIO,
    max_members: int = MAX_MEMBERS,
    max_cells: int = MAX_CELLS,
) -> str:
    """Say what a file really is, or refuse it.

    The kind is read from the content; the extension only serves to refuse
    a file whose name lies about it (a CSV renamed ``.xlsx``, a workbook
    renamed ``.csv``).

    Parameters
    ----------
    path
        The file to check.
    max_bytes
        Largest accepted file size in bytes.
    max_uncompressed
        Largest total uncompressed size of a workbook's parts.
    max_ratio
        Largest compression ratio of any workbook part over 1 MB.
    max_members
        Most parts a workbook may hold.
    max_cells
        Most cells of one sheet, and of all sheets together, counted as
        rows x columns from A1 to the sheet's last cell (the reader fills
        that whole rectangle, so one value in cell XFD1048576 weighs 17
        billion cells). Cells without a value (formatting only) do not count.

    Returns
    -------
    str
        ``"xlsx"`` (a zip holding ``[Content_Types].xml`` and
        ``xl/workbook.xml``) or ``"csv"`` (anything else that is text).

    Raises
    ------
    FileRefused
        With a one-row failure table (file, value, expected) for: a missing,
        empty or too large file; a legacy ``.xls`` or password-protected
        workbook; a ``.xlsx`` that is not a zip; a ``.csv`` that is a zip;
        a zip that is not an Excel workbook; encrypted zips; zip bombs
        (total uncompressed size, compression ratio, number of parts);
        XML parts declaring a DOCTYPE or ENTITY; sheets over ``max_cells``
        (the failure names the sheet and its last cell); binary files that
        are not text.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "scores.xlsx"
    >>> _ = p.write_text("unit_code,year\\nD01,2024\\n")
    >>> check_file(p)
    Traceback (most recent call last):
    ...
    parindex_lib.errors.FileRefused: file scores.xlsx refused: it is named .xlsx but is not an Excel workbook (1 problem)
    ...
    """
    p = Path(path)
    name = p.name
    suffix = p.suffix.lower()
    if not p.is_file():
        raise _refuse(name, str(path), "an existing file", "it does not exist")
    size = p.stat().st_size
    if size == 0:
        raise _refuse(name, "0 bytes", "a file with a header row and scores", "it is empty")
    if size > max_bytes:
        raise _refuse(name, _mb(size), f"a file of at most {_mb(max_bytes)}",
                      f"{_mb(size)} is over the limit of {_mb(max_bytes)}")
    with p.open("rb") as fh:
        head = fh.read(8)
    if head.startswith(_OLE_MAGIC):
        if _is_encrypted_ooxml(p):
            raise _refuse(name, "password-protected workbook",
                          "a workbook without a password: remove it in Excel (File > Info > Protect Workbook) and save as .xlsx",
                          "it is protected by a password")
        raise _refuse(name, "legacy Excel 97-2003 workbook (.xls)", "a .xlsx file: open it in Excel and save as .xlsx",
                      "legacy .xls workbooks are not read; save as .xlsx")
    if head.startswith(_ZIP_MAGIC):
        if suffix in _TEXT_SUFFIXES:
            raise _refuse(name, f"a zip archive named {suffix}", "a text CSV file, or name the workbook .xlsx",
                          f"it is named {suffix} but is a zip archive (a workbook?)")
        _check_zip(p, name, max_uncompressed=max_uncompressed, max_ratio=max_ratio, max_members=max_members,
                   max_cells=max_cells)
        return "xlsx"
    if suffix in _WORKBOOK_SUFFIXES:
        what = "text (a CSV or HTML file renamed?)" if _looks_like_text(p) else "not a zip archive"
        raise _refuse(name, what, _SAVE_AS, f"it is named {suffix} but is not an Excel workbook")
    if not _looks_like_text(p):
        raise _refuse(name, "binary content", _SAVE_AS, "it is neither an Excel workbook nor a text CSV file")
    return "csv"


def _looks_like_text(p: Path) -> bool:
    with p.open("rb") as fh:
        sample = fh.read(65536)
    if sample.startswith(_UTF16_BOMS):
        return True
    if b"\x00" not in sample:
        return True
    # UTF-16 without a byte-order mark: one byte of every pair is NUL for ASCII.
    even, odd = sample[0::2], sample[1::2]
    return max(even.count(0) / max(len(even), 1), odd.count(0) / max(len(odd), 1)) > 0.3


def _is_encrypted_ooxml(p: Path) -> bool:
    """An OLE container holding ``EncryptionInfo``: a password-protected .xlsx."""
    needle = "EncryptionInfo".encode("utf-16-le")
    with p.open("rb") as fh:
        return needle in fh.read()


def _check_zip(p: Path, name: str, *, max_uncompressed: int, max_ratio: float, max_members: int,
               max_cells: int) -> None:
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
        raise _refuse(name, f"damaged zip ({exc})", _SAVE_AS, "it is not a readable zip archive") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_members:
            raise _refuse(name, f"{len(infos)} parts", f"a workbook of at most {max_members} parts",
                          f"it holds {len(infos)} parts (a zip bomb?)")
        names = {i.filename for i in infos}
        encrypted = [i.filename for i in infos if i.flag_bits & 0x1 or i.flag_bits & 0x40]
        if encrypted:
            raise _refuse(name, f"encrypted part {encrypted[0]}", "a workbook without a password, saved as .xlsx",
                          "its zip archive is encrypted")
        if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
            raise _refuse(name, "a zip archive that is not an Excel workbook", _SAVE_AS,
                          "it is a zip archive without [Content_Types].xml and xl/workbook.xml")
        total = sum(i.file_size for i in infos)
        if total > max_uncompressed:
            raise _refuse(name, f"{_mb(total)} uncompressed", f"at most {_mb(max_uncompressed)} once uncompressed",
                          f"it unpacks to {_mb(total)}, over the limit of {_mb(max_uncompressed)} (a zip bomb?)")
        for i in infos:
            ratio = i.file_size / max(i.compress_size, 1)
            if i.file_size > _RATIO_FLOOR and ratio > max_ratio:
                raise _refuse(name, f"part {i.filename} compressed {ratio:,.0f} to 1",
                              f"a compression ratio of at most {max_ratio:g} to 1",
                              f"part {i.filename} is compressed {ratio:,.0f} to 1 (a zip bomb?)")
        cells = {}
        for i in infos:
            if i.filename.lower().endswith((".xml", ".rels", ".vml")):
                quick = _scan_xml(zf, i, name)
                if quick.tags or quick.prefixed:
                    cells[i.filename] = (i, quick)
        if cells:
            # every XML part is free of DOCTYPE and ENTITY declarations by now: safe to parse
            _check_cells(zf, cells, name, max_cells)


class _Quick:
    """A cheap bound on how far the cells of an XML part reach, from the cell references alone.

    It holds when every cell tag starts ``<c r="A1"`` (as Excel, LibreOffice
    and the usual libraries write them): then each cell's place is its
    reference. Otherwise (a cell without a reference, a namespace prefix, an
    unusual spelling) only :class:`_Extent` says where the cells are. Empty
    cells count here too, so the bound may be over the exact figure.
    """

    __slots__ = ("rows", "letters", "tags", "refs", "prefixed")

    def __init__(self) -> None:
        self.rows = self.tags = self.refs = 0
        self.letters: set[bytes] = set()
        self.prefixed = False

    def feed(self, data: bytes) -> None:
        """Count the cell tags and references of ``data``, which holds no tag cut short."""
        self.tags += data.count(b"<c") - len(_NOT_A_CELL.findall(data))
        refs = _FIRST_REF.findall(data)
        if refs:
            self.refs += len(refs)
            self.letters.update(map(bytes.rstrip, refs, repeat(_DIGITS)))
            self.rows = max(self.rows, max(map(int, map(bytes.lstrip, refs, repeat(_LETTERS)))))

    @property
    def holds(self) -> bool:
        return not self.prefixed and self.tags == self.refs

    @property
    def cols(self) -> int:
        return max(map(_column_number, self.letters), default=0)

    @property
    def cells(self) -> int:
        return self.rows * self.cols

    @property
    def last_cell(self) -> str:
        return f"{_column_letters(self.cols)}{self.rows}"


class _Extent:
    """How far the cells of an XML part reach, placed one by one as python-calamine places them.

    A cell's place is its ``r`` reference (``XFD1048576``, any letter case);
    a cell without one follows the previous cell of its row, and a row
    without ``r`` follows the previous row. Empty cells (``<c r="A1"
    s="1"/>``: formatting only) are not read, so they take a place but do
    not count; any other cell does (also one with a formula and no value,
    which the importer marks in the grid).
    """

    __slots__ = ("rows", "cols", "row", "col", "_letters")

    def __init__(self) -> None:
        self.rows = self.cols = self.row = self.col = 0
        self._letters: dict[bytes, int] = {}

    cells = _Quick.cells
    last_cell = _Quick.last_cell

    def feed(self, data: bytes) -> int:
        """Place the complete cell and row tags of ``data``; the end of the last one."""
        end = 0
        for m in _CELL_TAG.finditer(data):
            end = m.end()
            attrs = m.group(2)
            ref = _R_ATTR.search(attrs)
            if m.group(1) == b"row":
                self.row = _ref_number(ref.group(2)) if ref and ref.group(2) else self.row + 1
                self.col = 0
                continue
            if ref and ref.group(1) and ref.group(2):
                letters = ref.group(1)
                col = self._letters.get(letters)
                if col is None:
                    col = self._letters[letters] = _column_number(letters)
                row = _ref_number(ref.group(2))
            else:
                col, row = self.col + 1, self.row
            self.col = col
            if attrs.rstrip().endswith(b"/"):
                continue
            if row > self.rows:
                self.rows = row
            if col > self.cols:
                self.cols = col
        return end


def _ref_number(digits: bytes) -> int:
    # int() refuses more than 4,300 digits; anything over 12 is far out anyway
    return int(digits) if len(digits) <= 12 else 10 ** 12


def _column_number(letters: bytes) -> int:
    if len(letters) > 6:
        return 10 ** 9
    n = 0
    for ch in letters.upper():
        n = n * 26 + ch - 64
    return n


def _column_letters(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def _scan_xml(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> _Quick:
    """Refuse an XML part with a DOCTYPE or ENTITY declaration (entity bombs); bound how far its cells reach."""
    tail = b""
    carry = b""  # the end of the previous chunk from its last "<": a tag perhaps cut short
    quick = _Quick()
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(_CHUNK)
                if not chunk:
                    quick.feed(carry)
                    return quick
                window = tail + chunk
                upper = window.upper()
                for word, needle in _XML_DANGERS:
                    if needle in upper:
                        raise _refuse(name, f"part {info.filename} declares <!{word}",
                                      "XML parts without DOCTYPE or ENTITY declarations, as Excel writes them",
                                      f"part {info.filename} declares <!{word} (an XML entity bomb?)")
                if not quick.prefixed and _PREFIXED_CELL.search(window):
                    quick.prefixed = True
                tail = chunk[-_OVERLAP:]
                data = carry + chunk if carry else chunk
                # the counted patterns are under 64 bytes long and hold no "<" but the first
                cut = data.rfind(b"<", max(len(data) - 64, 0))
                if cut < 0:
                    quick.feed(data)
                    carry = b""
                else:
                    quick.feed(data[:cut])
                    carry = data[cut:]
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise _refuse(name, f"damaged part {info.filename} ({exc})", _SAVE_AS,
                      "its zip archive is damaged") from None


def _exact_extent(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> _Extent:
    """Read a part again and place every cell (see :class:`_Extent`)."""
    extent = _Extent()
    carry = b""  # a cell or row tag not finished at the end of the previous chunk
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(_CHUNK)
                if not chunk:
                    return extent
                data = carry + chunk if carry else chunk
                end = extent.feed(data)
                begun = _CELL_TAG_START.search(data, end)
                last = data.rfind(b"<", end)
                if last >= 0 and not _TAG_NAME_SO_FAR.fullmatch(data, last):
                    last = -1
                starts = [k for k in (begun.start() if begun else -1, last) if k >= 0]
                carry = data[min(starts):] if starts else b""
                if len(carry) > _MAX_TAG:
                    raise _refuse(name, f"part {info.filename}: a cell tag of over {_mb(_MAX_TAG)}", _SAVE_AS,
                                  f"part {info.filename} holds a cell tag that never ends (a damaged or forged file?)")
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise _refuse(name, f"damaged part {info.filename} ({exc})", _SAVE_AS,
                      "its zip archive is damaged") from None


def _sheet_names(zf: zipfile.ZipFile) -> dict[str, str]:
    """Worksheet part -> sheet name, from the workbook and its relationships ({} when they cannot be read)."""
    try:
        parts = []
        for part in ("xl/workbook.xml", "xl/_rels/workbook.xml.rels"):
            if zf.getinfo(part).file_size > _MAX_INDEX_PART:
                return {}
            parts.append(ET.fromstring(zf.read(part)))
    except (KeyError, ET.ParseError, zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            ValueError):
        return {}
    workbook, rels = parts
    target_of = {}
    for el in rels.iter():
        if el.tag.rsplit("}", 1)[-1] == "Relationship" and el.get("Id") is not None:
            target = el.get("Target", "").replace("\\", "/")
            target_of[el.get("Id")] = (target.lstrip("/") if target.startswith("/")
                                       else posixpath.normpath("xl/" + target))
    out = {}
    for el in workbook.iter():
        if el.tag.rsplit("}", 1)[-1] != "sheet":
            continue
        rid = next((v for k, v in el.attrib.items() if k.rsplit("}", 1)[-1] == "id"), None)
        if rid in target_of and el.get("name") is not None:
            out[target_of[rid]] = el.get("name")
    return out


def _check_cells(zf: zipfile.ZipFile, parts: dict[str, tuple[zipfile.ZipInfo, _Quick]], name: str,
                 max_cells: int) -> None:
    """Refuse a sheet, or the sheets together, reaching too far: python-calamine fills the whole rectangle."""
    sheet_of = _sheet_names(zf)
    label = {part: f"sheet {sheet_of[part]}" if part in sheet_of else f"part {part}" for part in parts}
    advice = ("delete the rows and columns past the table (Ctrl+End in Excel goes to the last cell) "
              "and save the file again")
    extents: dict[str, _Quick | _Extent] = {}
    for part, (info, quick) in parts.items():
        e = quick if quick.holds and quick.cells <= max_cells else _exact_extent(zf, info, name)
        if e.cells > max_cells:
            raise _refuse(name, f"{label[part]} reaches cell {e.last_cell} ({e.rows:,} rows x {e.cols:,} columns)",
                          f"a sheet of at most {max_cells:,} cells (rows x columns up to its last cell): {advice}",
                          f"{label[part]} reaches cell {e.last_cell}: {e.cells:,} cells, over the limit of "
                          f"{max_cells:,} cells", sheet=sheet_of.get(part))
        extents[part] = e
    if sum(e.cells for e in extents.values()) > max_cells:
        extents = {part: e if isinstance(e, _Extent) else _exact_extent(zf, parts[part][0], name)
                   for part, e in extents.items()}
        total = sum(e.cells for e in extents.values())
        if total > max_cells:
            listed = ", ".join(f"{label[p]} to {e.last_cell}" for p, e in extents.items() if e.cells)
            raise _refuse(name, f"{total:,} cells: {listed}",
                          f"a workbook of at most {max_cells:,} cells in all its sheets (rows x columns up to each "
                          f"sheet's last cell): {advice}",
                          f"its sheets hold {total:,} cells together, over the limit of {max_cells:,} cells")


def escape_formula(value: Any) -> Any:
    """Neutralise text that a spreadsheet would run as a formula.

    Text starting with ``=``, ``+``, ``-``, ``@``, a tab or a line break (or
    their full-width forms), possibly after apostrophes, gets a leading
    apostrophe, so Excel and LibreOffice show it as text. Numbers, None and NaN are returned as they
    are.

    Parameters
    ----------
    value
        A cell value.

    Returns
    -------
    object
        The value, escaped when it is dangerous text.

    Examples
    --------
    >>> escape_formula('=HYPERLINK("http://x","y")')
    '\\'=HYPERLINK("http://x","y")'
    >>> escape_formula(-1.5)
    -1.5
    >>> escape_formula("Điểm")
    'Điểm'
    """
    if isinstance(value, str) and _dangerous(value):
        return "'" + value
    return value


def _dangerous(text: str) -> bool:
    # Text already starting with apostrophes before a formula sign gets one
    # more, so that unescape_formula gives back exactly what was escaped.
    return text.lstrip("'").startswith(_FORMULA_START)


def unescape_formula(value: Any) -> Any:
    """Undo :func:`escape_formula` on text read back from an exported file.

    Examples
    --------
    >>> unescape_formula("'=1+1")
    '=1+1'
    >>> unescape_formula("'quoted'")
    "'quoted'"
    """
    if isinstance(value, str) and value.startswith("'") and _dangerous(value[1:]):
        return value[1:]
    return value
