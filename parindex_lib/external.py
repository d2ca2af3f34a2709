"""External indices (PAR INDEX, PCI, PAPI, SIPAS) by province, as reference data.

All external figures live in one *long* table, one row per province, year,
index and component:

=================  =======  ==================================================
column             type     meaning
=================  =======  ==================================================
``province_code``  str      official two-digit code (see :mod:`.provinces`)
``province_name``  str      canonical short name of the code in its era
``year``           int      the year the index measures
``index``          str      ``PAR``, ``PCI``, ``PAPI`` or ``SIPAS``
``component``      str      ``total``, ``rank`` or a sub-index / dimension /
                            field name (:data:`COMPONENTS`)
``value``          float    NaN where the source row has a blank cell (not
                            published); never 0 for a blank
``source_url``     str      where the number was read
=================  =======  ==================================================

Units: PCI total 0-100 and sub-indices about 1-10; PAPI total 10-80 (sum of
8 dimensions, each 1-10); SIPAS total % satisfied; PAR total the index in %
(points of 100) and ``field1`` .. ``field8`` the field index in % of the
field's maximum (converted from points where a source gave points, see
``data/external/README.md``); ``rank`` 1 = best, and ``fieldN_rank``.

The shipped figures are in ``data/external/`` with a catalogue of sources
(:func:`external_catalogue`); :func:`read_external_file` imports the wide
province tables VCCI, PAPI and BNV publish (xlsx or csv), or this long format.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import yaml

from .errors import ValidationError
from .numbers import to_number_series
from .provinces import match_provinces

__all__ = [
    "INDICES",
    "LONG_COLUMNS",
    "SHOW_COLUMNS",
    "COMPONENTS",
    "EXTERNAL_DIR",
    "load_shipped",
    "load_external",
    "read_external_file",
    "import_external_file",
    "external_catalogue",
    "external_list",
    "external_show",
    "to_wide",
    "variable_label",
    "par_from_results",
]

#: The indices parindex knows.
INDICES = ("PAR", "PCI", "PAPI", "SIPAS")
#: Columns of the long table, in order.
LONG_COLUMNS = ["province_code", "province_name", "year", "index", "component", "value", "source_url"]
#: Columns of :func:`external_show`, in order.
SHOW_COLUMNS = LONG_COLUMNS[:-1]
#: Folder of the shipped reference data.
EXTERNAL_DIR = Path(__file__).resolve().parent.parent / "data" / "external"

_PCI_SUBS = ("entry_costs", "land_access", "transparency", "time_costs", "informal_charges",
             "policy_bias_equal_competition", "proactivity", "business_support_policy", "labor_training",
             "legal_institutions")
_PAPI_DIMS = ("d1_participation", "d2_transparency", "d3_vertical_accountability", "d4_control_of_corruption",
              "d5_public_admin_procedures", "d6_public_service_delivery", "d7_environmental_governance",
              "d8_e_governance")
_PAR_FIELDS = tuple(f"field{i}" for i in range(1, 9))
#: Components of each index, in display order (``total`` first, ranks last).
COMPONENTS: dict[str, tuple[str, ...]] = {
    "PAR": ("total",) + _PAR_FIELDS + ("rank",) + tuple(f"{f}_rank" for f in _PAR_FIELDS),
    "PCI": ("total",) + _PCI_SUBS + ("rank",),
    "PAPI": ("total",) + _PAPI_DIMS + ("rank",),
    "SIPAS": ("total", "rank"),
}

# Plausible range of each value, to refuse misread columns.
_SCALES: dict[tuple[str, str], tuple[float, float]] = {
    ("PCI", "total"): (0, 100), ("PAPI", "total"): (10, 80), ("SIPAS", "total"): (0, 100),
    ("PAR", "total"): (0, 100),
    **{("PCI", c): (0, 10) for c in _PCI_SUBS}, **{("PAPI", c): (1, 10) for c in _PAPI_DIMS},
    **{("PAR", c): (0, 100) for c in _PAR_FIELDS},
}


def _hkey(text: Any) -> str:
    """Header key: lower case, no diacritics, letters and digits only."""
    s = unicodedata.normalize("NFD", str(text).strip().lower().replace("đ", "d").replace("Đ", "d"))
    s = "".join(ch for ch in s if unicodedata.category(ch) != "Mn")
    return re.sub(r"[^a-z0-9]", "", s)


_PROVINCE_HEADERS = {"province", "provincename", "provincevi", "tinh", "tinhthanhpho", "tinhthanh", "tinhtp",
                     "diaphuong", "tentinh", "tentinhthanhpho", "tendiaphuong", "donvi", "tinhthanhphotructhuoctw",
                     "tinhthanhphotructhuoctrunguong", "locality", "provincecity", "tinhthanhphotructhuoc"}
_CODE_HEADERS = {"provincecode", "matinh", "ma", "code", "madonvi", "madonvihanhchinh"}
_YEAR_HEADERS = {"year", "nam", "namdanhgia"}
_SOURCE_HEADERS = {"sourceurl", "source", "nguon", "url"}
_IGNORED_HEADERS = {"provinceen", "provincenameen", "tier", "notes", "note", "ghichu", "scorescale",
                    "rankrepoderived", "tierrepo", "ndimensions", "status", "originalsource", "stt", "no", "tt",
                    "xeploai", "nhom", "group", "region", "vung", "index"}
_TOTAL_HEADERS = {
    "": {"score", "total", "diem", "tongdiem", "diemso", "value", "giatri", "chiso"},
    "PCI": {"pci", "diempci", "chisopci", "pciscore", "pcitotal", "tongdiempci"},
    "PAPI": {"papi", "papiscore", "diempapi", "tongdiempapi", "chisopapi", "papitotal", "aggregate",
             "papiaggregate", "tongdiemtoida80"},
    "PAR": {"par", "parindex", "chisocchc", "chisocaicachhanhchinh", "diemcchc", "parindexpct", "chisopar",
            "chisoparindex"},
    "SIPAS": {"sipas", "chisosipas", "chisohailong", "tylehailong", "sipasscore", "sipaspct",
              "chisohailongcuanguoidan"},
}
_RANK_HEADERS = {"rank", "xephang", "thuhang", "hang", "ranking", "vitri", "xephangtoanquoc"}
_PCI_HEADERS = {
    "entry_costs": {"entrycosts", "entrycost", "marketentry", "gianhapthitruong", "chiphigianhapthitruong"},
    "land_access": {"landaccess", "accesstoland", "tiepcandatdai", "landaccessandsecurityoftenure"},
    "transparency": {"transparency", "tinhminhbach", "minhbach", "tinhminhbachvatiepcanthongtin"},
    "time_costs": {"timecosts", "timecost", "chiphithoigian"},
    "informal_charges": {"informalcharges", "chiphikhongchinhthuc"},
    "policy_bias_equal_competition": {"policybiasequalcompetition", "policybias", "equalcompetition",
                                      "canhtranhbinhdang"},
    "proactivity": {"proactivity", "tinhnangdong", "nangdong", "tinhnangdongcuachinhquyentinh"},
    "business_support_policy": {"businesssupportpolicy", "businesssupportservices", "businesssupport",
                                "hotrodoanhnghiep", "dichvuhotrodoanhnghiep", "chinhsachhotrodoanhnghiep"},
    "labor_training": {"labortraining", "labourtraining", "daotaolaodong"},
    "legal_institutions": {"legalinstitutions", "legalinstitutionsandsecurity", "thichephaply",
                           "thichephaplyvaanninhtrattu", "thichephaplyvaanninhtratu"},
}
_PAPI_NAMES = {
    1: {"participation", "participationatlocallevels", "thamgiacuanguoidanocapcoso", "thamgia"},
    2: {"transparency", "transparencyinlocaldecisionmaking", "congkhaiminhbach", "congkhaiminhbachtrongviecraquyetdinhodiaphuong"},
    3: {"verticalaccountability", "verticalaccountabilitytowardscitizens", "trachnhiemgiaitrinh",
        "trachnhiemgiaitrinhvoinguoidan"},
    4: {"controlofcorruption", "controlofcorruptioninthepublicsector", "kiemsoatthamnhung",
        "kiemsoatthamnhungtrongkhuvuccong"},
    5: {"publicadministrativeprocedures", "publicadminprocedures", "thutuchanhchinhcong"},
    6: {"publicservicedelivery", "cungungdichvucong"},
    7: {"environmentalgovernance", "quantrimoitruong"},
    8: {"egovernance", "quantridientu"},
}
_PAPI_NUMBERED = re.compile(r"^(?:d|dim|dimension|noidung|truc|trucnoidung|chisonoidung)0?([1-8])(?:[a-z]*)$")
_FIELD_NUMBERED = re.compile(r"^(?:field|linhvuc|lv|fieldindex)0?([1-8])(pct|index|chiso|rank|xephang)?$")
# Rows that are not provinces: national or group aggregates in published tables.
# A province cell whose key starts with one of these is such a row.
_AGGREGATE_ROWS = ("toanquoc", "canuoc", "trungbinh", "trungvi", "median", "mean", "average", "national",
                   "vietnam", "tongcong", "total")


def _component_of(index: str, header: Any) -> str | None:
    """The role of a header: a component name, or a role such as '__province__'; None if unknown."""
    k = _hkey(header)
    if not k or k.startswith("unnamed"):
        return "__blank__"
    if k in _PROVINCE_HEADERS:
        return "__province__"
    if k in _CODE_HEADERS:
        return "__code__"
    if k in _YEAR_HEADERS:
        return "__year__"
    if k in _SOURCE_HEADERS:
        return "__source__"
    if k in _RANK_HEADERS or k in {f"{index.lower()}rank", f"rank{index.lower()}", f"xephang{index.lower()}"}:
        return "rank"
    if k in _TOTAL_HEADERS[""] or k in _TOTAL_HEADERS[index]:
        return "total"
    if index == "PCI":
        for comp, keys in _PCI_HEADERS.items():
            if k in keys or k == comp.replace("_", ""):
                return comp
    if index == "PAPI":
        m = _PAPI_NUMBERED.match(k)
        if m:
            return _PAPI_DIMS[int(m.group(1)) - 1]
        for i, keys in _PAPI_NAMES.items():
            if k in keys:
                return _PAPI_DIMS[i - 1]
    if index == "PAR":
        m = _FIELD_NUMBERED.match(k)
        if m:
            return f"field{m.group(1)}" + ("_rank" if m.group(2) in ("rank", "xephang") else "")
    if k in _IGNORED_HEADERS:
        return "__ignore__"
    return None


def _expected_headers(index: str) -> str:
    comps = ", ".join(c for c in COMPONENTS[index])
    return (f"a column of {index}: province (Tỉnh/Thành phố), year (Năm), score/total (Điểm), rank (Xếp hạng), "
            f"or one of {comps}; or a column to ignore (province_en, tier, notes, STT, source_url); "
            "rename or delete the column")


def _read_grid(path: Path, sheet: str | int | None) -> tuple[pd.DataFrame, str | None]:
    """Every cell as text or number, no header, and the sheet name read."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls", ".ods"):
        try:
            import python_calamine  # noqa: F401
            engine = "calamine"
        except ImportError:  # pragma: no cover - calamine is a dependency
            engine = None
        book = pd.read_excel(path, sheet_name=sheet if sheet is not None else 0, header=None, dtype=object,
                             engine=engine)
        name = sheet if isinstance(sheet, str) else None
        return book, name
    if suffix in (".csv", ".txt", ".tsv"):
        raw = path.read_bytes().decode("utf-8-sig")
        first = raw.split("\n", 1)[0]
        delim = max([",", ";", "\t"], key=first.count)
        rows = list(csv.reader(io.StringIO(raw), delimiter=delim))
        width = max((len(r) for r in rows), default=0)
        grid = pd.DataFrame([r + [""] * (width - len(r)) for r in rows], dtype=object)
        return grid, None
    raise ValidationError("unsupported file type for external data", [
        {"file": path.name, "value": suffix, "expected": ".xlsx, .xls, .ods or .csv"}])


def _is_blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())


def read_external_file(path: str | Path, index: str, year: int | None = None, *, sheet: str | int | None = None,
                       source_url: str | None = None, field_unit: str = "pct",
                       field_max: Mapping[str, float] | None = None, zero_is_missing: bool | None = None
                       ) -> pd.DataFrame:
    """Import a province table of an external index.

    Two layouts are read, from xlsx/xls/ods or csv (comma, semicolon or tab):

    * **wide**, as VCCI, PAPI and BNV publish them: a province column
      ("Tỉnh/Thành phố", "Province", "Địa phương"...), optionally a year
      column ("Năm"), and value columns: total ("Điểm", "score", "PCI",
      "Chỉ số CCHC"...), rank ("Xếp hạng"), and the index's components
      (PCI sub-indices in Vietnamese or English, PAPI ``d1``..``d8`` or their
      names, PAR ``field1``..``field8`` / "Lĩnh vực 1"...). Title rows above
      the header are skipped; national aggregate rows ("Toàn quốc", "Trung
      vị") are skipped; every other unknown column is an error.
    * **long**, the project's format (:data:`LONG_COLUMNS`; ``province_code``
      or a province name column, ``year``, ``index``, ``component``,
      ``value``).

    Numbers may be written with a decimal comma (``85,63``).

    Parameters
    ----------
    path
        The file.
    index
        ``PAR``, ``PCI``, ``PAPI`` or ``SIPAS``.
    year
        The year of a file without a year column; with a year column, only
        the rows of that year are read.
    sheet
        Sheet name or position for spreadsheets (default the first).
    source_url
        Written on rows without a source column (default "file NAME").
    field_unit
        PAR fields in the file: ``"pct"`` (field index in %, default) or
        ``"points"`` (converted to % with ``field_max``).
    field_max
        Maximum points per field (``{"field1": 9.5, ...}``) for ``"points"``.
    zero_is_missing
        Read a 0 as missing. Default True for PAPI (its official files write
        0 where a province has no score; no PAPI score can be 0), else False.

    Returns
    -------
    pandas.DataFrame
        The long table, columns :data:`LONG_COLUMNS`, sorted by year,
        province_code and component order.

    Raises
    ------
    ValidationError
        Listing every unmatched province name (with the nearest names), every
        unreadable number, value out of the index's scale, unknown column and
        duplicated province-year-component, with file, sheet, row and column.
    """
    path = Path(path)
    grid, sheet_name = _read_grid(path, sheet)
    return _read_grid_table(grid, path, sheet_name, index, year, source_url=source_url, field_unit=field_unit,
                            field_max=field_max, zero_is_missing=zero_is_missing)


def _read_grid_table(grid: pd.DataFrame, path: Path, sheet_name: str | None, index: str, year: int | None, *,
                     source_url: str | None, field_unit: str, field_max: Mapping[str, float] | None,
                     zero_is_missing: bool | None) -> pd.DataFrame:
    index = _check_index(index)
    if field_unit not in ("pct", "points"):
        raise ValidationError("unknown field unit", [{"column": "field_unit", "value": field_unit,
                                                      "expected": "'pct' or 'points'"}])
    if zero_is_missing is None:
        zero_is_missing = index == "PAPI"
    grid = grid.loc[~grid.map(_is_blank).all(axis=1)]
    if grid.empty:
        raise ValidationError("the file has no rows", [{"file": path.name, "expected": "a header and rows"}])
    header_pos = None
    for pos in range(min(30, len(grid))):
        cells = [c for c in grid.iloc[pos].tolist() if not _is_blank(c)]
        if "component" in [_hkey(c) for c in cells] or any(
                _component_of(index, c) in ("__province__", "__code__") for c in cells):
            header_pos = pos
            break
    if header_pos is None:
        raise ValidationError("no header row with a province column in the first 30 rows", [
            {"file": path.name, "sheet": sheet_name, "expected": _expected_headers(index)}])
    header = [str(c).strip() if not _is_blank(c) else "" for c in grid.iloc[header_pos].tolist()]
    body = grid.iloc[header_pos + 1:].copy()
    body.columns = range(len(header))
    sheet_rows = [int(i) + 1 for i in body.index]  # spreadsheet row numbers (1-based)
    keys = [_hkey(h) for h in header]
    if "component" in keys and "value" in keys:
        long = _read_long_body(body, header, keys, sheet_rows, path, sheet_name, index, year, source_url)
    else:
        long = _read_wide_body(body, header, sheet_rows, path, sheet_name, index, year, source_url,
                               field_unit, field_max)
    return _finish(long, path, sheet_name, index, zero_is_missing)


def _check_index(index: str) -> str:
    name = str(index).strip().upper()
    if name in ("PAR INDEX", "PARINDEX"):
        name = "PAR"
    if name not in INDICES:
        raise ValidationError("unknown index", [{"column": "index", "value": index,
                                                 "expected": "one of " + ", ".join(INDICES)}])
    return name


def _parse_years(values: list[Any], rows: list[int], path: Path, sheet: str | None, column: str) -> list[Any]:
    out, fails = [], []
    for v, r in zip(values, rows):
        try:
            f = float(str(v).strip().replace(",", ".")) if not isinstance(v, (int, float)) else float(v)
            if not (1990 <= f <= 2100 and f == int(f)):
                raise ValueError
            out.append(int(f))
        except (TypeError, ValueError):
            out.append(None)
            fails.append({"file": path.name, "sheet": sheet, "row": r, "column": column, "value": v,
                          "expected": "a year such as 2024"})
    if fails:
        raise ValidationError("unreadable years", fails)
    return out


def _read_wide_body(body: pd.DataFrame, header: list[str], rows: list[int], path: Path, sheet: str | None,
                    index: str, year: int | None, source_url: str | None, field_unit: str,
                    field_max: Mapping[str, float] | None) -> pd.DataFrame:
    roles = [_component_of(index, h) for h in header]
    unknown = [{"file": path.name, "sheet": sheet, "row": rows[0] - 1 if rows else None, "column": h, "value": h,
                "expected": _expected_headers(index)} for h, r in zip(header, roles) if r is None]
    seen: dict[str, str] = {}
    for h, r in zip(header, roles):
        if r and not r.startswith("__"):
            if r in seen:
                unknown.append({"file": path.name, "sheet": sheet, "column": h, "value": h,
                                "expected": f"one column for {r} (also in column {seen[r]!r})"})
            seen[r] = h
    if unknown:
        raise ValidationError(f"columns not understood as {index} data", unknown)
    pcol = roles.index("__province__") if "__province__" in roles else roles.index("__code__") if "__code__" in roles else None
    if pcol is None:
        raise ValidationError("no province column", [{"file": path.name, "sheet": sheet,
                                                      "expected": _expected_headers(index)}])
    value_cols = [i for i, r in enumerate(roles) if r and not r.startswith("__")]
    if not value_cols:
        raise ValidationError("no value column", [{"file": path.name, "sheet": sheet,
                                                   "expected": _expected_headers(index)}])
    names = body[pcol].tolist()
    keep = []
    for i, n in enumerate(names):
        values_blank = all(_is_blank(body.iloc[i, c]) for c in value_cols)
        if _is_blank(n) and values_blank:
            continue
        if not _is_blank(n) and _hkey(n).startswith(_AGGREGATE_ROWS):
            continue
        keep.append(i)
    body = body.iloc[keep]
    rows = [rows[i] for i in keep]
    ycol = roles.index("__year__") if "__year__" in roles else None
    if ycol is not None:
        years = _parse_years(body[ycol].tolist(), rows, path, sheet, header[ycol])
        if year is not None:
            mask = [y == int(year) for y in years]
            body = body[mask]
            rows = [r for r, m in zip(rows, mask) if m]
            years = [y for y, m in zip(years, mask) if m]
    elif year is None:
        raise ValidationError("the year is not in the file", [
            {"file": path.name, "sheet": sheet, "column": "year", "expected": "a year column or --year YEAR"}])
    else:
        years = [int(year)] * len(body)
    matched = match_provinces(pd.Series(body[pcol].tolist(), dtype=object), year=years, column=header[pcol],
                              file=path.name, rows=rows)
    scol = roles.index("__source__") if "__source__" in roles else None
    sources = ([str(s).strip() if not _is_blank(s) else "" for s in body[scol].tolist()] if scol is not None
               else [""] * len(body))
    default_source = source_url or f"file {path.name}"
    sources = [s or default_source for s in sources]
    frames, fails = [], []
    for c in value_cols:
        comp = roles[c]
        numbers, bad = to_number_series(pd.Series(body[c].tolist(), dtype=object))
        for i in np.flatnonzero(bad.to_numpy()):
            fails.append({"file": path.name, "sheet": sheet, "row": rows[i], "column": header[c],
                          "value": body[c].iloc[i], "expected": "a number (85,63 or 85.63) or blank"})
        values = numbers.to_numpy(dtype=float)
        if index == "PAR" and comp in _PAR_FIELDS and field_unit == "points":
            mx = (field_max or {}).get(comp)
            if mx is None or not mx > 0:
                fails.append({"file": path.name, "sheet": sheet, "column": header[c], "value": mx,
                              "expected": f"field_max[{comp!r}]: the field's maximum points"})
                continue
            values = values / float(mx) * 100.0
        frames.append(pd.DataFrame({
            "province_code": matched["province_code"].to_numpy(), "province_name": matched["province_name"].to_numpy(),
            "year": years, "index": index, "component": comp, "value": values, "source_url": sources,
            "_row": rows, "_column": header[c]}))
    if fails:
        raise ValidationError("values that are not numbers", fails)
    return pd.concat(frames, ignore_index=True)


def _read_long_body(body: pd.DataFrame, header: list[str], keys: list[str], rows: list[int], path: Path,
                    sheet: str | None, index: str, year: int | None, source_url: str | None) -> pd.DataFrame:
    col = {k: i for i, k in enumerate(keys)}
    missing = [c for c in ("year", "component", "value") if c not in col]
    has_place = "provincecode" in col or "provincename" in col or "province" in col
    if missing or not has_place:
        raise ValidationError("a long file needs province_code (or province_name), year, component, value", [
            {"file": path.name, "sheet": sheet, "column": c, "expected": "this column"}
            for c in missing + ([] if has_place else ["province_code"])])
    years = _parse_years(body[col["year"]].tolist(), rows, path, sheet, "year")
    if year is not None:
        mask = [y == int(year) for y in years]
        body, rows, years = body[mask], [r for r, m in zip(rows, mask) if m], [y for y, m in zip(years, mask) if m]
    fails = []
    if "index" in col:
        for v, r in zip(body[col["index"]].tolist(), rows):
            try:
                ok = _check_index(v) == index
            except ValidationError:
                ok = False
            if not ok:
                fails.append({"file": path.name, "sheet": sheet, "row": r, "column": "index", "value": v,
                              "expected": f"{index} (the index being imported)"})
    comps = [str(c).strip() for c in body[col["component"]].tolist()]
    for c, r in zip(comps, rows):
        if c not in COMPONENTS[index]:
            fails.append({"file": path.name, "sheet": sheet, "row": r, "column": "component", "value": c,
                          "expected": "one of " + ", ".join(COMPONENTS[index])})
    numbers, bad = to_number_series(pd.Series(body[col["value"]].tolist(), dtype=object))
    for i in np.flatnonzero(bad.to_numpy()):
        fails.append({"file": path.name, "sheet": sheet, "row": rows[i], "column": "value",
                      "value": body[col["value"]].iloc[i], "expected": "a number (85,63 or 85.63) or blank"})
    if fails:
        raise ValidationError(f"rows that are not {index} data in the long format", fails)
    place = col.get("provincecode", col.get("provincename", col.get("province")))
    pname = "province_code" if "provincecode" in col else header[place]
    matched = match_provinces(pd.Series(body[place].tolist(), dtype=object), year=years, column=pname,
                              file=path.name, rows=rows)
    if "sourceurl" in col:
        sources = [str(s).strip() if not _is_blank(s) else "" for s in body[col["sourceurl"]].tolist()]
    else:
        sources = [""] * len(body)
    default_source = source_url or f"file {path.name}"
    return pd.DataFrame({
        "province_code": matched["province_code"].to_numpy(), "province_name": matched["province_name"].to_numpy(),
        "year": years, "index": index, "component": comps, "value": numbers.to_numpy(dtype=float),
        "source_url": [s or default_source for s in sources], "_row": rows, "_column": "value"})


def _finish(long: pd.DataFrame, path: Path, sheet: str | None, index: str, zero_is_missing: bool) -> pd.DataFrame:
    if zero_is_missing:
        long.loc[long["value"] == 0, "value"] = np.nan
    fails = []
    for comp, g in long.groupby("component"):
        lo, hi = _SCALES.get((index, comp), (1, 100) if comp.endswith("rank") else (-np.inf, np.inf))
        out = g[(g["value"] < lo) | (g["value"] > hi)]
        for r in out.itertuples(index=False):
            fails.append({"file": path.name, "sheet": sheet, "row": r._7, "column": r._8, "value": r.value,
                          "expected": f"{index} {comp} between {lo:g} and {hi:g}"})
    keys = ["province_code", "year", "component"]
    dup = long[long.duplicated(keys, keep=False)]
    for (code, yr, comp), g in dup.groupby(keys):
        fails.append({"file": path.name, "sheet": sheet, "row": ", ".join(str(r) for r in g["_row"]),
                      "column": g["_column"].iloc[0], "value": f"{g['province_name'].iloc[0]} {yr} {comp}",
                      "expected": "one value per province, year and component (two rows name the same province)"})
    if fails:
        raise ValidationError(f"{index} values that cannot be accepted", fails)
    return _sorted(long[LONG_COLUMNS])


def _sorted(long: pd.DataFrame) -> pd.DataFrame:
    out = long.copy()
    out["year"] = out["year"].astype("int64")
    out["value"] = out["value"].astype("float64")
    order = {(i, c): k for i in COMPONENTS for k, c in enumerate(COMPONENTS[i])}
    out["_o"] = [order.get((i, c), 999) for i, c in zip(out["index"], out["component"])]
    out["_i"] = [INDICES.index(i) for i in out["index"]]
    out = out.sort_values(["_i", "year", "province_code", "_o"], kind="stable").drop(columns=["_o", "_i"])
    return out.reset_index(drop=True)


def _read_par_fields_long(path: Path) -> pd.DataFrame:
    """The shipped field-level PAR file: units "% of max" or "points of X"."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    matched = match_provinces(raw["province"], year=raw["year"].astype(int).tolist(), column="province",
                              file=path.name, rows=[i + 2 for i in range(len(raw))])
    out = []
    for r, code, name in zip(raw.itertuples(index=False), matched["province_code"], matched["province_name"]):
        base = {"province_code": code, "province_name": name, "year": int(r.year), "index": "PAR",
                "source_url": r.source_url}
        if r.value.strip():
            unit = r.unit.strip()
            m = re.fullmatch(r"points of ([0-9.]+)", unit)
            if unit == "% of max":
                pct = float(r.value)
            elif m:
                pct = float(r.value) / float(m.group(1)) * 100.0
            else:
                raise ValidationError("unknown unit in the PAR field file", [
                    {"file": path.name, "column": "unit", "value": unit, "expected": "'% of max' or 'points of X'"}])
            out.append({**base, "component": f"field{int(r.field_no)}", "value": pct})
        if r.field_rank.strip():
            out.append({**base, "component": f"field{int(r.field_no)}_rank", "value": float(r.field_rank)})
    return pd.DataFrame(out, columns=LONG_COLUMNS)


_SHIPPED = (("pci_by_province.csv", "PCI"), ("papi_by_province.csv", "PAPI"),
            ("par_index_by_province.csv", "PAR"), ("sipas_by_province.csv", "SIPAS"))


@lru_cache(maxsize=4)
def _load_shipped_cached(directory: str) -> pd.DataFrame:
    d = Path(directory)
    frames = []
    for name, index in _SHIPPED:
        path = d / name
        if index == "PAR":
            # The field columns of the wide PAR file hold points (not %); the
            # field file gives their units, so fields are read from there and
            # the wide file's field cells are checked against it.
            fields = _read_par_fields_long(d / "par_index_fields_long.csv")
            wide = pd.read_csv(path, dtype=str, keep_default_na=False)
            trimmed = wide.drop(columns=[c for c in wide.columns if c in _PAR_FIELDS])
            grid = pd.DataFrame([trimmed.columns.tolist()] + trimmed.values.tolist(), dtype=object)
            par = _read_grid_table(grid, path, None, "PAR", None, source_url=None, field_unit="pct",
                                   field_max=None, zero_is_missing=False)
            _check_par_field_cells(wide, path)
            frames += [par, fields]
        else:
            frames.append(read_external_file(path, index))
    return _sorted(pd.concat(frames, ignore_index=True)[LONG_COLUMNS])


def _check_par_field_cells(wide: pd.DataFrame, path: Path) -> None:
    raw = pd.read_csv(path.parent / "par_index_fields_long.csv", dtype=str, keep_default_na=False)
    known = {(r.province, int(r.year), int(r.field_no)): r.value for r in raw.itertuples(index=False)}
    fails = []
    for i, r in wide.iterrows():
        for f in _PAR_FIELDS:
            v = r.get(f, "")
            if v and v.strip():
                k = (r["province"], int(r["year"]), int(f[5:]))
                if k not in known or float(known[k]) != float(v):
                    fails.append({"file": path.name, "row": i + 2, "column": f, "value": v,
                                  "expected": "the same value in par_index_fields_long.csv (which gives its unit)"})
    if fails:
        raise ValidationError("PAR field cells without a unit", fails)


def load_shipped() -> pd.DataFrame:
    """The real published figures shipped in ``data/external/``, in the long format.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LONG_COLUMNS`; PCI, PAPI, PAR and SIPAS for
        2021-2024 as far as published (see :func:`external_catalogue`).
        Provinces are the 63 pre-2025 ones.

    Examples
    --------
    >>> ext = load_shipped()
    >>> row = ext[(ext["index"] == "PCI") & (ext["year"] == 2021) & (ext["province_code"] == "22")
    ...           & (ext["component"] == "total")]
    >>> row[["province_name", "value"]].values.tolist()
    [['Quảng Ninh', 73.02]]
    """
    return _load_shipped_cached(str(EXTERNAL_DIR)).copy()


def _imported_files(directory: Path | str | None) -> list[Path]:
    if directory is None:
        return []
    d = Path(directory)
    return sorted(d.glob("*.csv")) if d.is_dir() else []


def load_external(directory: Path | str | None = None) -> pd.DataFrame:
    """The shipped figures plus those imported into ``directory``.

    An imported row replaces the shipped row with the same province, year,
    index and component (a correction or a newer reading); a later file
    (by name) replaces an earlier one.

    Parameters
    ----------
    directory
        Folder written by :func:`import_external_file`; None for the shipped
        figures only.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LONG_COLUMNS`.
    """
    frames = [load_shipped()]
    for f in _imported_files(directory):
        df = pd.read_csv(f, dtype={"province_code": str, "province_name": str, "index": str, "component": str,
                                   "source_url": str}, keep_default_na=False, na_values=[""])
        frames.append(df[LONG_COLUMNS])
    all_rows = pd.concat(frames, ignore_index=True)
    all_rows = all_rows.drop_duplicates(["province_code", "year", "index", "component"], keep="last")
    return _sorted(all_rows)


def import_external_file(path: str | Path, index: str, year: int | None = None, *, directory: Path | str,
                         **options: Any) -> pd.DataFrame:
    """Read a file with :func:`read_external_file` and keep it in ``directory``.

    The rows are written as ``INDEX_YEARS_NAME.csv`` in the long format;
    :func:`load_external` reads them back.

    Parameters
    ----------
    path, index, year
        As :func:`read_external_file`.
    directory
        The folder of imported reference data (created if needed).
    **options
        Passed to :func:`read_external_file` (``sheet``, ``source_url``,
        ``field_unit``, ``field_max``, ``zero_is_missing``).

    Returns
    -------
    pandas.DataFrame
        The imported rows (:data:`LONG_COLUMNS`).
    """
    long = read_external_file(path, index, year, **options)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    years = sorted(long["year"].unique())
    span = f"{years[0]}-{years[-1]}" if len(years) > 1 else f"{years[0]}" if years else "none"
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(path).stem)[:60]
    out = d / f"{_check_index(index)}_{span}_{stem}.csv"
    long.to_csv(out, index=False, lineterminator="\n")
    return long


def external_catalogue() -> pd.DataFrame:
    """The sources of the shipped reference data (``data/external/catalogue.yaml``).

    Returns
    -------
    pandas.DataFrame
        One row per file, columns ``id``, ``index``, ``file``, ``name``,
        ``publisher``, ``address``, ``licence``, ``date_read``, ``years``
        (comma-separated), ``coverage``, ``scale``, ``components``
        (comma-separated), ``sources``, ``notes``.

    Examples
    --------
    >>> external_catalogue().set_index("id").loc["papi", "publisher"]
    'CECODES, RTA (Real-Time Analytics) and UNDP Viet Nam'
    """
    data = yaml.safe_load((EXTERNAL_DIR / "catalogue.yaml").read_text("utf-8"))
    cols = ["id", "index", "file", "name", "publisher", "address", "licence", "date_read", "years", "coverage",
            "scale", "components", "sources", "notes"]
    rows = []
    for d in data["datasets"]:
        row = {c: d.get(c, "") for c in cols}
        row["years"] = ", ".join(str(y) for y in d.get("years", []))
        row["components"] = ", ".join(d.get("components", []))
        row["date_read"] = str(d.get("date_read", ""))
        rows.append({k: ("" if v is None else str(v).strip()) for k, v in row.items()})
    return pd.DataFrame(rows, columns=cols)


def external_list(directory: Path | str | None = None) -> pd.DataFrame:
    """What reference data is available, per index and year.

    Parameters
    ----------
    directory
        Folder of imported files (see :func:`import_external_file`).

    Returns
    -------
    pandas.DataFrame
        Columns ``index``, ``year``, ``n_provinces`` (provinces with a
        non-missing total), ``n_values`` (non-missing values),
        ``components`` (comma-separated, those with a value), ``origin``
        ("shipped", "imported" or "shipped+imported").
    """
    shipped = load_shipped()
    both = load_external(directory)
    key = ["province_code", "year", "index", "component"]
    s_keys = set(map(tuple, shipped[key].itertuples(index=False)))
    both["_origin"] = ["shipped" if tuple(k) in s_keys else "imported" for k in both[key].itertuples(index=False)]
    rows = []
    for (index, year), g in both.groupby(["index", "year"], sort=False):
        have = g[g["value"].notna()]
        comps = [c for c in COMPONENTS[index] if c in set(have["component"])]
        origins = sorted(set(g["_origin"]), reverse=True)
        rows.append({"index": index, "year": int(year),
                     "n_provinces": int(have.loc[have["component"] == "total", "province_code"].nunique()),
                     "n_values": int(len(have)), "components": ", ".join(comps), "origin": "+".join(origins)})
    return pd.DataFrame(rows, columns=["index", "year", "n_provinces", "n_values", "components", "origin"])


def external_show(index: str | None = None, year: int | None = None, *, component: str | None = None,
                  directory: Path | str | None = None, with_source: bool = False) -> pd.DataFrame:
    """Reference values of one index (and year), for ``parindex external show``.

    Parameters
    ----------
    index
        ``PAR``, ``PCI``, ``PAPI`` or ``SIPAS``; None for all.
    year, component
        Optional filters.
    directory
        Folder of imported files.
    with_source
        Add the ``source_url`` column.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SHOW_COLUMNS` (``province_code``, ``province_name``,
        ``year``, ``index``, ``component``, ``value``), plus ``source_url``
        with ``with_source``.

    Examples
    --------
    >>> s = external_show("SIPAS", 2021, component="total")
    >>> s[s["province_code"].isin(["22", "31"])].values.tolist()
    [['22', 'Quảng Ninh', 2021, 'SIPAS', 'total', 94.07], ['31', 'Hải Phòng', 2021, 'SIPAS', 'total', nan]]
    """
    df = load_external(directory)
    if index is not None:
        df = df[df["index"] == _check_index(index)]
    if year is not None:
        df = df[df["year"] == int(year)]
    if component is not None:
        df = df[df["component"] == component]
    cols = LONG_COLUMNS if with_source else SHOW_COLUMNS
    return df[cols].reset_index(drop=True)


def variable_label(index: str, component: str) -> str:
    """The name of a variable in wide tables and study results: ``"INDEX:component"``.

    Examples
    --------
    >>> variable_label("PCI", "total")
    'PCI:total'
    """
    return f"{index}:{component}"


def to_wide(long: pd.DataFrame, *, unit: str = "province_code") -> pd.DataFrame:
    """One row per unit and year, one column per index and component.

    Parameters
    ----------
    long
        The long table (:data:`LONG_COLUMNS`; ``source_url`` and
        ``province_name`` optional). A tenant's own results can be given in
        the same form with ``index="PAR"``.
    unit
        The unit column (``province_code``, or ``unit_code`` for a tenant's
        own units).

    Returns
    -------
    pandas.DataFrame
        Columns ``unit`` (as named), ``year``, then one float column per
        variable named ``"INDEX:component"`` (NaN where missing), in index and
        component order; rows sorted by year and unit.

    Raises
    ------
    ValidationError
        When two rows give the same unit, year, index and component.

    Examples
    --------
    >>> long = pd.DataFrame({"province_code": ["01", "01", "79"], "year": 2024,
    ...                      "index": ["PCI", "PAPI", "PCI"], "component": "total", "value": [68.38, 44.0, 67.89]})
    >>> to_wide(long).columns.tolist()
    ['province_code', 'year', 'PCI:total', 'PAPI:total']
    """
    need = [unit, "year", "index", "component", "value"]
    missing = [c for c in need if c not in long.columns]
    if missing:
        raise ValidationError("the long table lacks columns", [
            {"column": c, "expected": "columns " + ", ".join(need)} for c in missing])
    df = long[need].copy()
    df["label"] = [variable_label(i, c) for i, c in zip(df["index"], df["component"])]
    dup = df[df.duplicated([unit, "year", "label"], keep=False)]
    if len(dup):
        raise ValidationError("two values for the same unit, year and variable", [
            {"column": "value", "value": f"{r[0]} {r[1]} {r[2]}", "expected": "one row"}
            for r in dup[[unit, "year", "label"]].drop_duplicates().itertuples(index=False)])
    wide = df.pivot(index=[unit, "year"], columns="label", values="value")
    order = {(i, c): k for i in COMPONENTS for k, c in enumerate(COMPONENTS[i])}
    labels = df.drop_duplicates("label")[["index", "component", "label"]]
    labels["_i"] = [INDICES.index(i) if i in INDICES else len(INDICES) for i in labels["index"]]
    labels["_o"] = [order.get((i, c), 999) for i, c in zip(labels["index"], labels["component"])]
    cols = labels.sort_values(["_i", "_o", "label"])["label"].tolist()
    wide = wide[cols].astype("float64").reset_index()
    wide.columns.name = None
    return wide.sort_values(["year", unit], kind="stable").reset_index(drop=True)


def par_from_results(results: pd.DataFrame, *, province_codes: Mapping[str, str] | None = None,
                     source_url: str = "tenant assessment") -> pd.DataFrame:
    """A tenant's own PAR INDEX results in the long format, to study beside the external indices.

    Parameters
    ----------
    results
        The roll-up table (``roll_up`` / ``results_table``): columns
        ``unit_code``, ``year``, ``node_code``, ``level``, ``index_pct``. The
        ``total`` row becomes component ``total``; field rows (``level ==
        "field"``, node codes ``"1"`` .. ``"8"``) become ``field1`` ..
        ``field8``; other levels are left out.
    province_codes
        ``unit_code -> province name or code`` when the units are provinces
        (the national tenant); names are matched like any province name. With
        it the result has ``province_code`` and ``province_name``; without it,
        ``unit_code`` (for a province's own departments or communes, which are
        studied among themselves).
    source_url
        Written in ``source_url``.

    Returns
    -------
    pandas.DataFrame
        Columns ``province_code``, ``province_name`` (or ``unit_code``),
        ``year``, ``index`` ("PAR"), ``component``, ``value`` (the index in
        %), ``source_url``.

    Examples
    --------
    >>> res = pd.DataFrame({"unit_code": ["HN", "HN"], "year": 2024, "node_code": ["total", "1"],
    ...                     "level": ["index", "field"], "index_pct": [92.57, 100.0]})
    >>> par_from_results(res, province_codes={"HN": "Hà Nội"})[["province_code", "component", "value"]].values.tolist()
    [['01', 'total', 92.57], ['01', 'field1', 100.0]]
    """
    need = ["unit_code", "year", "node_code", "level", "index_pct"]
    missing = [c for c in need if c not in results.columns]
    if missing:
        raise ValidationError("results lack columns", [
            {"column": c, "expected": "the columns of the roll-up: " + ", ".join(need)} for c in missing])
    df = results[need].copy()
    df["node_code"] = df["node_code"].astype(str)
    is_total = df["node_code"] == "total"
    is_field = (df["level"] == "field") & df["node_code"].str.fullmatch(r"[1-8]")
    df = df[is_total | is_field]
    df["component"] = np.where(df["node_code"] == "total", "total", "field" + df["node_code"])
    out = pd.DataFrame({"unit_code": df["unit_code"].astype(str).to_numpy(), "year": df["year"].astype(int).to_numpy(),
                        "index": "PAR", "component": df["component"].to_numpy(),
                        "value": df["index_pct"].astype(float).to_numpy(), "source_url": source_url})
    if province_codes is None:
        return out[["unit_code", "year", "index", "component", "value", "source_url"]]
    lookup = {str(k): v for k, v in province_codes.items()}
    unmapped = sorted(set(out["unit_code"]) - set(lookup))
    if unmapped:
        raise ValidationError("units without a province", [
            {"column": "unit_code", "value": u, "expected": "a province name or code in province_codes"}
            for u in unmapped])
    matched = match_provinces(out["unit_code"].map(lookup), year=out["year"].tolist(), column="province_codes")
    out.insert(0, "province_code", matched["province_code"].to_numpy())
    out.insert(1, "province_name", matched["province_name"].to_numpy())
    return out.drop(columns="unit_code")[LONG_COLUMNS]
