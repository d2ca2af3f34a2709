"""Refusing dangerous files before anything reads them.

Score files come from many offices by e-mail and upload. Before a parser
touches one, :func:`check_file` looks at its bytes (never its name) and
refuses what it cannot read safely: files that are too large or empty,
legacy or password-protected workbooks, a CSV renamed ``.xlsx`` (or the
reverse), zip bombs, XML entity bombs and encrypted archives.
:func:`escape_formula` protects the people who open exported files in a
spreadsheet program from formula injection.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

from .errors import FileRefused

__all__ = [
    "MAX_BYTES",
    "MAX_UNCOMPRESSED",
    "MAX_RATIO",
    "MAX_MEMBERS",
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
_OVERLAP = 64
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_CHUNK = 1 << 20


def _mb(n: float) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{n:,.0f} bytes"


def _refuse(name: str, value: Any, expected: str, why: str) -> FileRefused:
    return FileRefused(f"file {name} refused: {why}", [{"file": name, "value": value, "expected": expected}])


def check_file(
    path: str | os.PathLike,
    *,
    max_bytes: int = MAX_BYTES,
    max_uncompressed: int = MAX_UNCOMPRESSED,
    max_ratio: float = MAX_RATIO,
    max_members: int = MAX_MEMBERS,
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
        XML parts declaring a DOCTYPE or ENTITY; binary files that are not
        text.

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
        _check_zip(p, name, max_uncompressed=max_uncompressed, max_ratio=max_ratio, max_members=max_members)
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


def _check_zip(p: Path, name: str, *, max_uncompressed: int, max_ratio: float, max_members: int) -> None:
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
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
        for i in infos:
            if i.filename.lower().endswith((".xml", ".rels", ".vml")):
                _scan_xml(zf, i, name)


def _scan_xml(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> None:
    """Refuse an XML part with a DOCTYPE or ENTITY declaration (entity bombs)."""
    tail = b""
    try:
        with zf.open(info) as fh:
            while True:
                chunk = fh.read(_CHUNK)
                if not chunk:
                    return
                window = (tail + chunk).upper()
                for word, needle in _XML_DANGERS:
                    if needle in window:
                        raise _refuse(name, f"part {info.filename} declares <!{word}",
                                      "XML parts without DOCTYPE or ENTITY declarations, as Excel writes them",
                                      f"part {info.filename} declares <!{word} (an XML entity bomb?)")
                tail = chunk[-_OVERLAP:]
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise _refuse(name, f"damaged part {info.filename} ({exc})", _SAVE_AS,
                      "its zip archive is damaged") from None


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
