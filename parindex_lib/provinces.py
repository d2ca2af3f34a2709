"""Provinces: identity by official administrative code, names, the 2025 merger.

Every province is identified by its two-digit official administrative code
(mã đơn vị hành chính, the GSO code: Hà Nội ``"01"``, TP. Hồ Chí Minh
``"79"``). Names are matched to codes, never compared as raw strings.

Two *eras* exist: ``"old"``, the 63 provinces before 1 July 2025, and
``"new"``, the 34 provinces after Resolution 202/2025/QH15. The same name can
carry a different code in each era (Lào Cai is ``"10"`` before and ``"15"``
after), so matching always happens within one era. A year chooses the era:
years up to 2024 are ``"old"``, 2025 and later ``"new"`` (the first
assessment year scored on the merged provinces).

The tables are data in ``data/provinces/`` (see its README): the province
lists and the 63 -> 34 crosswalk are generated from the ``vietnamadminunits``
package by :func:`write_province_tables` and committed; the name variants and
the socio-economic regions are written by hand with their sources.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from .errors import ValidationError

__all__ = [
    "ERAS",
    "FIRST_NEW_YEAR",
    "PROVINCE_DIR",
    "MATCH_COLUMNS",
    "CROSSWALK_COLUMNS",
    "era_of_year",
    "province_table",
    "province_code",
    "province_name",
    "match_provinces",
    "crosswalk_2025",
    "combine_to_new",
    "region_table",
    "region_of",
    "name_key",
    "ascii_key",
    "write_province_tables",
]

#: The two eras: 63 provinces before July 2025 ("old"), 34 after ("new").
ERAS = ("old", "new")
#: The first year whose results are given over the 34 new provinces.
FIRST_NEW_YEAR = 2025
#: Folder of the province tables.
PROVINCE_DIR = Path(__file__).resolve().parent.parent / "data" / "provinces"
#: Columns of :func:`match_provinces`, in order.
MATCH_COLUMNS = ["input", "province_code", "province_name", "matched_by"]
#: Columns of :func:`crosswalk_2025`, in order.
CROSSWALK_COLUMNS = ["old_code", "old_name", "new_code", "new_name"]

_PROVINCE_COLUMNS = ["era", "province_code", "province_name", "official_name", "ascii_name"]

# Prefixes and suffixes that say what kind of unit a name is, not which.
_PREFIXES = ("tỉnh ", "thành phố ", "tp. ", "tp.", "tp ", "t.p. ", "t.p.", "t.p ", "tinh ", "thanh pho ",
             "province of ", "city of ")
_SUFFIXES = (" province", " city", " (cũ)", " cũ", " (old)")
_DASHES = re.compile(r"[\-\u2010-\u2015_/,;]+")
_SPACES = re.compile(r"\s+")
_TONES = "\u0300\u0301\u0303\u0309\u0323"  # grave, acute, tilde, hook above, dot below
# Old-style placement puts the tone on the second vowel of oa / oe / uy at the
# end of a syllable ("Hoà", "Thuỷ"); new-style on the first ("Hòa", "Thủy").
_OLD_STYLE_TONE = re.compile(rf"([oOuU])([aAeEyY])([{_TONES}])(?![^\W\d_])")


def era_of_year(year: Any) -> str:
    """The era a result year belongs to.

    Parameters
    ----------
    year
        A year (int or a string of digits).

    Returns
    -------
    str
        ``"old"`` for years up to 2024, ``"new"`` from 2025.

    Examples
    --------
    >>> era_of_year(2024), era_of_year(2025)
    ('old', 'new')
    """
    try:
        y = int(year)
    except (TypeError, ValueError):
        raise ValidationError("a year chooses the province list", [
            {"column": "year", "value": year, "expected": "a year such as 2024"}]) from None
    return "old" if y < FIRST_NEW_YEAR else "new"


def _resolve_era(era: str | None, year: Any) -> str:
    if era is not None and year is not None:
        if era_of_year(year) != era:
            raise ValidationError("era and year disagree", [
                {"column": "era", "value": era, "expected": f"{era_of_year(year)!r} for year {year}"}])
        return era
    if era is not None:
        if era not in ERAS:
            raise ValidationError("unknown era", [{"column": "era", "value": era, "expected": "'old' or 'new'"}])
        return era
    if year is not None:
        return era_of_year(year)
    return "old"


def _canonical_tones(text: str) -> str:
    nfd = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", _OLD_STYLE_TONE.sub(r"\1\3\2", nfd))


def name_key(name: Any) -> str:
    """The normalised key of a province name (diacritics kept).

    NFC, tone marks in one placement, lower case, dashes and commas as
    spaces, single spaces, and the unit-kind prefixes and suffixes ("Tỉnh",
    "Thành phố", "TP.", "province", "city") removed.

    Examples
    --------
    >>> name_key("  Tỉnh  Khánh Hoà ") == name_key("Khánh Hòa")
    True
    >>> name_key("TP.HCM")
    'hcm'
    """
    text = unicodedata.normalize("NFC", str(name)).strip().lower()
    text = _canonical_tones(text)
    text = _SPACES.sub(" ", _DASHES.sub(" ", text)).strip()
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if text.startswith(p) and len(text) > len(p):
                text, changed = text[len(p):].strip(), True
        for s in _SUFFIXES:
            if text.endswith(s) and len(text) > len(s):
                text, changed = text[: -len(s)].strip(), True
    return text


def ascii_key(name: Any) -> str:
    """The last-resort key: :func:`name_key` without diacritics or spaces.

    Examples
    --------
    >>> ascii_key("Thừa Thiên - Huế")
    'thuathienhue'
    >>> ascii_key("Ba Ria Vung Tau") == ascii_key("Bà Rịa - Vũng Tàu")
    True
    """
    text = unicodedata.normalize("NFD", name_key(name).replace("đ", "d"))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return re.sub(r"[^a-z0-9]", "", text)


@lru_cache(maxsize=None)
def _provinces() -> pd.DataFrame:
    df = pd.read_csv(PROVINCE_DIR / "provinces.csv", dtype=str, keep_default_na=False)
    return df[_PROVINCE_COLUMNS]


@lru_cache(maxsize=None)
def _variants() -> pd.DataFrame:
    return pd.read_csv(PROVINCE_DIR / "name_variants.csv", dtype=str, keep_default_na=False)


def province_table(era: str = "old") -> pd.DataFrame:
    """The provinces of one era.

    Parameters
    ----------
    era
        ``"old"`` (63 provinces, up to 2024) or ``"new"`` (34, from July 2025).

    Returns
    -------
    pandas.DataFrame
        Columns ``province_code`` (two digits), ``province_name`` (short
        canonical name, e.g. "Hồ Chí Minh"), ``official_name`` (e.g. "Thành
        phố Hồ Chí Minh"), ``ascii_name``; sorted by code.

    Examples
    --------
    >>> len(province_table("old")), len(province_table("new"))
    (63, 34)
    """
    era = _resolve_era(era, None)
    df = _provinces()
    return df[df["era"] == era].drop(columns="era").sort_values("province_code").reset_index(drop=True)


@lru_cache(maxsize=None)
def _lookup(era: str) -> dict[str, Any]:
    table = province_table(era)
    names = dict(zip(table["province_code"], table["province_name"]))
    exact: dict[str, str] = {}
    norm: dict[str, str] = {}
    for code, short, full in table[["province_code", "province_name", "official_name"]].itertuples(index=False):
        for n in (short, full):
            exact[unicodedata.normalize("NFC", n)] = code
            norm[name_key(n)] = code
    variants: dict[str, str] = {}
    v = _variants()
    v = v[v["era"].isin([era, "both"])]
    for text, code in v[["variant", "province_code"]].itertuples(index=False):
        if code not in names:
            raise ValidationError("name_variants.csv names a code that is not a province of its era", [
                {"file": "data/provinces/name_variants.csv", "column": "province_code", "value": code,
                 "expected": f"a code of the {era} era"}])
        variants.setdefault(name_key(text), code)
    asc: dict[str, set[str]] = {}
    for key, code in list(norm.items()) + list(variants.items()):
        asc.setdefault(ascii_key(key), set()).add(code)
    ascii_map = {k: next(iter(c)) for k, c in asc.items() if len(c) == 1}
    suggest = {k: names[c] for k, c in ascii_map.items()}
    return {"names": names, "exact": exact, "norm": norm, "variant": variants, "ascii": ascii_map,
            "suggest": suggest}


def _match_one(text: Any, era: str) -> tuple[str | None, str | None]:
    lk = _lookup(era)
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None, None
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        text = f"{int(text):02d}"
    s = unicodedata.normalize("NFC", str(text)).strip()
    if re.fullmatch(r"\d{1,2}", s):
        code = s.zfill(2)
        return (code, "code") if code in lk["names"] else (None, None)
    if s in lk["exact"]:
        return lk["exact"][s], "exact"
    key = name_key(s)
    if key in lk["norm"]:
        return lk["norm"][key], "normalised"
    if key in lk["variant"]:
        return lk["variant"][key], "variant"
    akey = ascii_key(s)
    if akey in lk["ascii"]:
        return lk["ascii"][akey], "ascii"
    return None, None


def _hint(text: Any, era: str) -> str:
    lk = _lookup(era)
    akey = ascii_key(text)
    pool = lk["suggest"]
    close = list(dict.fromkeys(pool[c] for c in difflib.get_close_matches(akey, list(pool), n=6, cutoff=0.5)))[:3]
    parts = []
    other = "new" if era == "old" else "old"
    code, _ = _match_one(text, other)
    if code is not None:
        other_name = _lookup(other)["names"][code]
        if era == "new":
            cw = crosswalk_2025()
            row = cw[cw["old_code"] == code].iloc[0]
            parts.append(f"{other_name} ({code}) is a pre-2025 province, merged into "
                         f"{row['new_name']} ({row['new_code']}) in July 2025; pass era='old' or a year before 2025")
        else:
            parts.append(f"{other_name} is a province of the new 34 (code {code}); pass era='new' or a year from 2025")
    parts.append("nearest: " + (", ".join(close) if close else "none"))
    return f"a province name of the {era} era ({'; '.join(parts)})"


def match_provinces(names: Iterable[Any], *, era: str | None = None, year: Any = None,
                    column: str | None = None, file: str | None = None, rows: Iterable[Any] | None = None
                    ) -> pd.DataFrame:
    """Match province names, in any spelling, to official codes.

    Tries, in order: a two-digit code; the exact canonical or official name;
    the normalised key (:func:`name_key`: NFC, tone-mark placement, case,
    spaces, "Tỉnh"/"Thành phố"/"TP." prefixes); the hand-written variants
    (``data/provinces/name_variants.csv``: TP.HCM, HCMC, TT-Huế, BRVT, Đắc
    Lắc, Bắc Cạn...); last, the same keys without diacritics.

    Parameters
    ----------
    names
        Names (a Series keeps its index in the result).
    era
        ``"old"`` or ``"new"``; default from ``year``, else ``"old"``.
    year
        A year or one year per name (a Series or array aligned with
        ``names``); chooses the era of each name.
    column, file, rows
        Where the names came from, for the failure table (``rows``: the
        spreadsheet row of each name).

    Returns
    -------
    pandas.DataFrame
        One row per name, in order, columns ``input`` (as given),
        ``province_code``, ``province_name`` (canonical short name),
        ``matched_by`` (code, exact, normalised, variant, ascii).

    Raises
    ------
    ValidationError
        Listing every name that matched no province, each with its nearest
        names (and the other era's match, when there is one). Nothing is
        dropped silently.

    Examples
    --------
    >>> m = match_provinces(["TP.HCM", "Khánh Hoà", "Thua Thien Hue", "BRVT"])
    >>> m["province_code"].tolist()
    ['79', '56', '46', '77']
    >>> m["matched_by"].tolist()
    ['variant', 'normalised', 'ascii', 'variant']
    """
    series = names if isinstance(names, pd.Series) else pd.Series(list(names), dtype=object)
    n = len(series)
    if year is None or np.isscalar(year):
        eras = [_resolve_era(era, year)] * n
    else:
        years = list(year)
        if len(years) != n:
            raise ValidationError("one year per name", [
                {"column": "year", "value": len(years), "expected": f"{n} years"}])
        eras = [_resolve_era(era, y) for y in years]
    row_list = list(rows) if rows is not None else [None] * n
    codes: list[Any] = []
    pnames: list[Any] = []
    how: list[Any] = []
    failures = []
    cache: dict[tuple[Any, str], tuple[str | None, str | None]] = {}
    for i, (text, e) in enumerate(zip(series.tolist(), eras)):
        k = (text if isinstance(text, (str, int, float)) else str(text), e)
        if k not in cache:
            cache[k] = _match_one(text, e)
        code, by = cache[k]
        if code is None:
            failures.append({"file": file, "row": row_list[i], "column": column, "value": text,
                             "expected": _hint(text if text is not None else "", e)})
        codes.append(code)
        pnames.append(_lookup(e)["names"].get(code) if code else None)
        how.append(by)
    if failures:
        raise ValidationError(f"{len(failures)} province name(s) matched no province", failures)
    return pd.DataFrame({"input": series.tolist(), "province_code": codes, "province_name": pnames,
                         "matched_by": how}, index=series.index, columns=MATCH_COLUMNS)


def province_code(name: Any, *, era: str | None = None, year: Any = None) -> str:
    """The official two-digit code of one province name.

    Parameters
    ----------
    name
        Any spelling listed in :func:`match_provinces`.
    era, year
        Choose the province list (default ``"old"``, the 63).

    Returns
    -------
    str

    Raises
    ------
    ValidationError
        When the name matches no province, with the nearest names.

    Examples
    --------
    >>> province_code("Thành phố Hồ Chí Minh"), province_code("Hà Nội")
    ('79', '01')
    >>> province_code("Lào Cai", year=2024), province_code("Lào Cai", year=2025)
    ('10', '15')
    """
    return match_provinces([name], era=era, year=year)["province_code"].iloc[0]


def province_name(code: Any, *, era: str | None = None, year: Any = None) -> str:
    """The canonical short name of a code.

    Examples
    --------
    >>> province_name("46")
    'Huế'
    """
    return match_provinces([str(code)], era=era, year=year)["province_name"].iloc[0]


@lru_cache(maxsize=None)
def _crosswalk() -> pd.DataFrame:
    df = pd.read_csv(PROVINCE_DIR / "crosswalk_2025.csv", dtype=str, keep_default_na=False)
    return df[CROSSWALK_COLUMNS]


def crosswalk_2025() -> pd.DataFrame:
    """The 2025 reorganisation: every old province and the new one it is part of.

    Generated from ``vietnamadminunits`` (its ``converter_2025`` province
    table) into ``data/provinces/crosswalk_2025.csv``.

    Returns
    -------
    pandas.DataFrame
        63 rows, columns ``old_code``, ``old_name``, ``new_code``,
        ``new_name``, sorted by ``old_code``.

    Examples
    --------
    >>> cw = crosswalk_2025()
    >>> len(cw), cw["new_code"].nunique()
    (63, 34)
    >>> cw.loc[cw["old_name"] == "Bà Rịa - Vũng Tàu", "new_name"].item()
    'Hồ Chí Minh'
    """
    return _crosswalk().copy()


def combine_to_new(values: pd.DataFrame, rule: str = "mean", weights: pd.DataFrame | Mapping[str, float] | None = None,
                   *, weights_source: str | None = None, require_all: bool = True) -> pd.DataFrame:
    """Combine values of the 63 old provinces into the 34 new ones.

    Parameters
    ----------
    values
        Columns ``province_code`` (old codes), ``year``, ``index``,
        ``component``, ``value``; other columns are ignored. One row per key.
    rule
        ``"mean"``: the unweighted mean of the old provinces' values;
        ``"weighted"``: sum(w * value) / sum(w) with the user's ``weights``.
    weights
        For ``"weighted"``: a mapping old code -> weight, or a DataFrame with
        ``province_code``, ``weight`` and optionally ``year`` (one weight per
        code and year). Every old province that enters a result needs one.
    weights_source
        What the weights are (e.g. "population 2024, GSO"); required with
        ``"weighted"`` and written into every result row.
    require_all
        When True (default) a new province's value is NaN unless every old
        province in it has a value; when False the available ones are
        combined and ``n_old_used`` shows how many.

    Returns
    -------
    pandas.DataFrame
        Columns ``province_code`` (new code), ``province_name`` (new name),
        ``year``, ``index``, ``component``, ``value``, ``n_old_used``,
        ``n_old_total``, ``old_codes`` (the codes used, joined by "+"),
        ``rule`` (e.g. ``"mean"`` or ``"weighted (population 2024, GSO)"``).

    Raises
    ------
    ValidationError
        For unknown old codes, duplicated keys, an unknown rule, or missing
        weights (all listed).

    Examples
    --------
    >>> v = pd.DataFrame({"province_code": ["02", "08"], "year": 2024, "index": "PAPI",
    ...                   "component": "total", "value": [40.0, 44.0]})
    >>> combine_to_new(v)[["province_code", "province_name", "value", "rule"]].values.tolist()
    [['08', 'Tuyên Quang', 42.0, 'mean']]
    """
    if rule not in ("mean", "weighted"):
        raise ValidationError("unknown combination rule", [
            {"column": "rule", "value": rule, "expected": "'mean' or 'weighted'"}])
    need = ["province_code", "year", "index", "component", "value"]
    missing = [c for c in need if c not in values.columns]
    if missing:
        raise ValidationError("values to combine lack columns", [
            {"column": c, "expected": "columns " + ", ".join(need)} for c in missing])
    cw = crosswalk_2025()
    df = values[need].copy()
    df["province_code"] = df["province_code"].astype(str)
    unknown = sorted(set(df["province_code"]) - set(cw["old_code"]))
    if unknown:
        raise ValidationError("combine_to_new takes the codes of the 63 pre-2025 provinces", [
            {"column": "province_code", "value": c, "expected": "an old (pre-July 2025) province code"}
            for c in unknown])
    keys = ["province_code", "year", "index", "component"]
    dup = df[df.duplicated(keys, keep=False)]
    if len(dup):
        raise ValidationError("one value per province, year, index and component", [
            {"column": "province_code", "value": f"{r.province_code} {r.year} {r.index} {r.component}",
             "expected": "a single row"} for r in dup.drop_duplicates(keys).itertuples(index=False)])
    df["value"] = pd.to_numeric(df["value"], errors="raise").astype(float)
    if rule == "weighted":
        if weights is None or not weights_source:
            raise ValidationError("weighted combination needs weights and their source", [
                {"column": "weights", "value": None if weights is None else "given",
                 "expected": "weights per old province code and weights_source naming them"}])
        if isinstance(weights, pd.DataFrame):
            w = weights.copy()
            w["province_code"] = w["province_code"].astype(str)
        else:
            w = pd.DataFrame({"province_code": [str(k) for k in weights], "weight": list(weights.values())})
        on = ["province_code", "year"] if "year" in w.columns else ["province_code"]
        df = df.merge(w[on + ["weight"]], on=on, how="left")
        label = f"weighted ({weights_source})"
    else:
        df["weight"] = 1.0
        label = "mean"
    df = df.merge(cw, left_on="province_code", right_on="old_code", how="left")
    have = df["value"].notna()
    lacking = df[have & df["weight"].isna()]
    if len(lacking):
        raise ValidationError("a weight is missing for old provinces that have values", [
            {"column": "weight", "value": f"{r.province_code} {r.old_name}" + (f" {r.year}" if "year" in on else ""),
             "expected": "a positive weight"} for r in lacking.drop_duplicates(on).itertuples(index=False)])
    bad = df[have & (df["weight"] <= 0)]
    if len(bad):
        raise ValidationError("weights must be positive", [
            {"column": "weight", "value": r.weight, "expected": f"a positive weight for {r.province_code}"}
            for r in bad.itertuples(index=False)])
    totals = cw.groupby("new_code")["old_code"].size()
    out = []
    for (new_code, year, index, component), g in df.groupby(["new_code", "year", "index", "component"], sort=True):
        used = g[g["value"].notna()].sort_values("province_code")
        n_total = int(totals[new_code])
        if len(used) == 0 or (require_all and len(used) < n_total):
            value = np.nan
        else:
            value = float(np.sum(used["weight"] * used["value"]) / np.sum(used["weight"]))
        out.append({"province_code": new_code, "province_name": g["new_name"].iloc[0], "year": year,
                    "index": index, "component": component, "value": value, "n_old_used": len(used),
                    "n_old_total": n_total, "old_codes": "+".join(used["province_code"]), "rule": label})
    cols = ["province_code", "province_name", "year", "index", "component", "value",
            "n_old_used", "n_old_total", "old_codes", "rule"]
    return pd.DataFrame(out, columns=cols)


@lru_cache(maxsize=None)
def _regions() -> pd.DataFrame:
    return pd.read_csv(PROVINCE_DIR / "regions.csv", dtype=str, keep_default_na=False)


def region_table() -> pd.DataFrame:
    """The six socio-economic regions of the 63 pre-2025 provinces.

    The grouping of Resolution 81/2023/QH15 (national master plan
    2021-2030): 11 + 14 + 14 + 5 + 6 + 13 provinces; sources and the date
    they were checked are in ``data/provinces/README.md``. No regions are
    shipped for the 34 provinces after the July 2025 merger (see
    :func:`region_of`).

    Returns
    -------
    pandas.DataFrame
        Columns ``province_code``, ``region_code``, ``region_vi``,
        ``region_en``, ``source`` (the legal text and the addresses it was
        read at).

    Examples
    --------
    >>> region_table()["region_code"].value_counts().sort_index().tolist()
    [11, 14, 14, 5, 6, 13]
    """
    return _regions()[["province_code", "region_code", "region_vi", "region_en", "source"]].copy()


_NO_NEW_REGIONS = ("regions are shipped for the 63 pre-2025 provinces only: after the July 2025 merger "
                   "several new provinces join parts of two old regions (e.g. Bắc Ninh = Bắc Giang + Bắc Ninh, "
                   "Tây Ninh = Tây Ninh + Long An) and the regions of the 34 are not shipped "
                   "(data/provinces/README.md)")


def region_of(codes: Iterable[Any], *, era: str = "old", year: Any = None) -> pd.Series:
    """The region of each old province code.

    Parameters
    ----------
    codes
        Province codes of the 63 pre-2025 provinces.
    era
        Only ``"old"`` has regions here; ``"new"`` is refused.
    year
        Optional: a year, or one year per code (aligned with ``codes``).
        Codes of a year from 2025 (the 34 merged provinces) are refused,
        never given the region of the old province that had the same code.
        A year of 0 (no year) counts as old.

    Returns
    -------
    pandas.Series
        ``region_en`` per code (index kept when ``codes`` is a Series).

    Raises
    ------
    ValidationError
        For codes without a region (all listed), for ``era="new"``, and for
        codes of years from 2025.

    Examples
    --------
    >>> region_of(["01", "79"]).tolist()
    ['Red River Delta', 'Southeast']
    """
    if era != "old":
        raise ValidationError(_NO_NEW_REGIONS, [
            {"column": "era", "value": era, "expected": "'old' (or give your own region column with its source)"}])
    s = codes if isinstance(codes, pd.Series) else pd.Series(list(codes), dtype=object)
    if year is not None:
        years = [year] * len(s) if np.isscalar(year) else list(year)
        if len(years) != len(s):
            raise ValidationError("one year per code", [
                {"column": "year", "value": len(years), "expected": f"{len(s)} years"}])
        new = [(c, y) for c, y in zip(s.tolist(), years)
               if not (y is None or (isinstance(y, float) and np.isnan(y))) and era_of_year(y) == "new"]
        if new:
            raise ValidationError(_NO_NEW_REGIONS, [
                {"column": "year", "value": f"{c} in {y}", "expected": f"a year before {FIRST_NEW_YEAR}"}
                for c, y in dict.fromkeys(new)])
    lookup = dict(zip(_regions()["province_code"], _regions()["region_en"]))
    out = s.astype(str).map(lookup)
    bad = s[out.isna()]
    if len(bad):
        raise ValidationError("province codes without a region", [
            {"column": "province_code", "value": v, "expected": "a pre-2025 province code"}
            for v in pd.unique(bad)])
    return out.rename("region")


def write_province_tables(directory: Path | str | None = None) -> dict[str, Path]:
    """Regenerate ``provinces.csv`` and ``crosswalk_2025.csv`` from vietnamadminunits.

    Reads the package's SQLite tables ``admin_units_legacy`` (63) and
    ``admin_units`` (34) and its ``converter_2025.json`` province map.

    Parameters
    ----------
    directory
        Where to write; default :data:`PROVINCE_DIR`.

    Returns
    -------
    dict
        ``{"provinces": path, "crosswalk": path}``.
    """
    import json

    import vietnamadminunits
    from vietnamadminunits.database import query

    directory = Path(directory) if directory else PROVINCE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    frames = []
    keys: dict[str, dict[str, tuple[str, str]]] = {}
    for era, table in (("old", "admin_units_legacy"), ("new", "admin_units")):
        rows = query(f"SELECT DISTINCT provinceCode, province, provinceShort, provinceKey FROM [{table}] "
                     "ORDER BY provinceCode")
        df = pd.DataFrame(rows)
        keys[era] = {r["provinceKey"]: (r["provinceCode"], r["provinceShort"]) for r in rows}
        frames.append(pd.DataFrame({"era": era, "province_code": df["provinceCode"],
                                    "province_name": df["provinceShort"], "official_name": df["province"],
                                    "ascii_name": [ascii_key(n) for n in df["provinceShort"]]}))
    provinces = pd.concat(frames, ignore_index=True)
    conv = json.loads((Path(vietnamadminunits.__file__).parent / "data" / "converter_2025.json").read_text("utf-8"))
    rows = []
    for new_key, old_keys in conv["DICT_PROVINCE"].items():
        new_code, new_name = keys["new"][new_key]
        for old_key in old_keys:
            old_code, old_name = keys["old"][old_key]
            rows.append({"old_code": old_code, "old_name": old_name, "new_code": new_code, "new_name": new_name})
    crosswalk = pd.DataFrame(rows, columns=CROSSWALK_COLUMNS).sort_values("old_code").reset_index(drop=True)
    paths = {"provinces": directory / "provinces.csv", "crosswalk": directory / "crosswalk_2025.csv"}
    provinces.to_csv(paths["provinces"], index=False, lineterminator="\n")
    crosswalk.to_csv(paths["crosswalk"], index=False, lineterminator="\n")
    _provinces.cache_clear()
    _crosswalk.cache_clear()
    _lookup.cache_clear()
    return paths
