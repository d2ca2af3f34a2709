"""External reference data: the shipped figures and the importer for new years."""

from __future__ import annotations

import csv
import math

import numpy as np
import pandas as pd
import pytest

from parindex_lib.errors import ValidationError
from parindex_lib.external import (
    COMPONENTS,
    EXTERNAL_DIR,
    LONG_COLUMNS,
    SHOW_COLUMNS,
    external_catalogue,
    external_list,
    external_show,
    import_external_file,
    load_external,
    load_shipped,
    read_external_file,
    to_wide,
)


@pytest.fixture(scope="module")
def shipped():
    return load_shipped()


def _value(df, index, year, code, component="total"):
    row = df[(df["index"] == index) & (df["year"] == year) & (df["province_code"] == code)
             & (df["component"] == component)]
    assert len(row) == 1, (index, year, code, component)
    return row["value"].item()


def test_shipped_numbers_checked_by_hand_against_the_csv(shipped):
    assert list(shipped.columns) == LONG_COLUMNS
    assert _value(shipped, "PCI", 2021, "22") == 73.02  # Quảng Ninh, PCI 2021
    assert _value(shipped, "PCI", 2021, "22", "entry_costs") == 7.98
    assert _value(shipped, "PCI", 2021, "22", "legal_institutions") == 7.91
    assert _value(shipped, "PCI", 2021, "22", "rank") == 1
    assert _value(shipped, "PCI", 2024, "31") == 74.84  # Hải Phòng, PCI 2024
    assert _value(shipped, "PAPI", 2022, "22") == 47.8763
    assert _value(shipped, "PAPI", 2021, "02", "d8_e_governance") == 2.9616  # Hà Giang
    assert _value(shipped, "SIPAS", 2021, "77") == 86.72  # Bà Rịa - Vũng Tàu
    assert _value(shipped, "PAR", 2021, "77") == 87.61
    assert _value(shipped, "PAR", 2021, "79", "rank") == 43  # "TP. Hồ Chí Minh" in the csv
    assert _value(shipped, "PAR", 2021, "46") == 89.32  # "Thừa Thiên Huế" in the csv
    assert _value(shipped, "PCI", 2024, "46") == 71.13


def test_blank_stays_missing_never_zero(shipped):
    assert math.isnan(_value(shipped, "PAPI", 2021, "24"))  # Bắc Giang: no values in the source file
    assert math.isnan(_value(shipped, "PAPI", 2022, "24"))  # partial: 4 dimensions, no total
    assert _value(shipped, "PAPI", 2022, "24", "d3_vertical_accountability") == 4.3967
    assert math.isnan(_value(shipped, "PAPI", 2022, "24", "d4_control_of_corruption"))
    assert math.isnan(_value(shipped, "PAR", 2021, "19"))  # Thái Nguyên: rank 6, score not given
    assert _value(shipped, "PAR", 2021, "19", "rank") == 6
    assert (shipped["value"].dropna() != 0).all()


def test_par_fields_are_field_indices_in_percent(shipped):
    assert _value(shipped, "PAR", 2024, "17", "field1") == pytest.approx(100.0)  # Hòa Bình 9.5 of 9.5
    assert _value(shipped, "PAR", 2024, "56", "field2") == 95.02  # Khánh Hòa, "% of max"
    assert _value(shipped, "PAR", 2024, "56", "field8") == pytest.approx(5.09 / 6.5 * 100)
    assert _value(shipped, "PAR", 2024, "60", "field3") == pytest.approx(11.24 / 13 * 100)
    assert _value(shipped, "PAR", 2024, "60", "field3_rank") == 62
    assert _value(shipped, "PAR", 2024, "60", "field4_rank") == 5


def test_every_cell_of_the_pci_and_papi_csv_is_in_the_long_table(shipped):
    """Independent re-read with the csv module, every number cell against the long table."""
    checks = {
        "pci_by_province.csv": ("PCI", {"score": "total", "rank": "rank", **{c: c for c in COMPONENTS["PCI"][1:-1]}}),
        "papi_by_province.csv": ("PAPI", {"score": "total", "rank": "rank",
                                          **{c: c for c in COMPONENTS["PAPI"][1:-1]}}),
        "sipas_by_province.csv": ("SIPAS", {"score": "total", "rank": "rank"}),
    }
    lookup = {(r.index, r.year, r.province_name, r.component): r.value for r in shipped.itertuples(index=False)}
    alias = {"Thừa Thiên Huế": "Huế", "TP. Hồ Chí Minh": "Hồ Chí Minh"}
    n = 0
    for name, (index, cols) in checks.items():
        with open(EXTERNAL_DIR / name, encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                prov = alias.get(row["province"], row["province"])
                for col, comp in cols.items():
                    got = lookup[(index, int(row["year"]), prov, comp)]
                    if row[col].strip():
                        assert got == float(row[col]), (name, row["year"], prov, comp)
                        n += 1
                    else:
                        assert math.isnan(got)
    assert n > 2800  # every published number cell of the three files


def test_shipped_coverage_matches_the_notes(shipped):
    have = shipped[(shipped["component"] == "total") & shipped["value"].notna()]
    counts = have.groupby(["index", "year"])["province_code"].nunique()
    assert counts[("PCI", 2021)] == 63 and counts[("PCI", 2022)] == 63
    assert [counts[("PAPI", y)] for y in (2021, 2022, 2023, 2024)] == [60, 61, 61, 61]
    assert set(shipped["province_code"]) <= {f"{c:02d}" for c in range(1, 97)}
    assert shipped.groupby(["index", "year"])["province_code"].nunique()[("PAPI", 2021)] == 63


def test_catalogue_names_publisher_licence_and_date_for_every_file():
    cat = external_catalogue()
    files = {p.name for p in EXTERNAL_DIR.glob("*.csv")}
    assert set(cat["file"]) == files
    assert (cat["publisher"] != "").all() and (cat["licence"] != "").all() and (cat["address"] != "").all()
    assert set(cat["date_read"]) == {"2026-11"}
    assert "All rights reserved" in cat.set_index("id").loc["papi", "licence"]
    assert "VCCI" in cat.set_index("id").loc["pci", "publisher"]


def _write_xlsx(path, rows, header, title=True):
    lines = ([["BẢNG XẾP HẠNG PCI 2025", None, None, None], [None, None, None, None]] if title else [])
    lines += [header] + rows
    pd.DataFrame(lines).to_excel(path, header=False, index=False)


def test_wide_xlsx_with_title_rows_vietnamese_headers_decimal_comma_and_variants(tmp_path):
    path = tmp_path / "pci_2025.xlsx"
    _write_xlsx(path, [
        ["TP.HCM", "70,12", 3, "7,5"],
        ["Khánh Hoà", 69.5, 5, None],
        ["Toàn quốc (trung vị)", "67,0", None, None],
        ["Thừa Thiên Huế", "68.25", "7", "6,25"],
    ], ["Tỉnh/Thành phố", "Điểm PCI", "Xếp hạng", "Gia nhập thị trường"])
    out = read_external_file(path, "PCI", year=2024)
    assert list(out.columns) == LONG_COLUMNS
    assert _value(out, "PCI", 2024, "79") == 70.12
    assert _value(out, "PCI", 2024, "79", "entry_costs") == 7.5
    assert _value(out, "PCI", 2024, "56", "rank") == 5
    assert math.isnan(_value(out, "PCI", 2024, "56", "entry_costs"))
    assert _value(out, "PCI", 2024, "46", "entry_costs") == 6.25
    assert set(out["province_code"]) == {"79", "56", "46"}  # the national row is not a province
    assert set(out["source_url"]) == {"file pci_2025.xlsx"}


def test_year_chooses_the_era_of_the_names(tmp_path):
    path = tmp_path / "papi.csv"
    path.write_text("Tỉnh;Năm;Tổng điểm\nLào Cai;2024;40,5\nLào Cai;2025;41,5\n", encoding="utf-8")
    out = read_external_file(path, "PAPI")
    assert out[["province_code", "year", "value"]].values.tolist() == [["10", 2024, 40.5], ["15", 2025, 41.5]]
    only = read_external_file(path, "PAPI", year=2025)
    assert only["year"].tolist() == [2025]


def test_every_unmatched_province_is_reported_with_row_and_nearest(tmp_path):
    path = tmp_path / "sipas.csv"
    path.write_text("Province,SIPAS\nHà Nội,80\nHà Nôị Xyz,81\nQuang Nimh,82\nAtlantis,83\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        read_external_file(path, "SIPAS", year=2024)
    f = info.value.failures
    assert f["value"].tolist() == ["Hà Nôị Xyz", "Quang Nimh", "Atlantis"]
    assert f["row"].tolist() == [3, 4, 5]
    assert set(f["file"]) == {"sipas.csv"} and set(f["column"]) == {"Province"}
    assert "Quảng Ninh" in f["expected"].iloc[1]


def test_unknown_columns_and_bad_numbers_are_listed(tmp_path):
    path = tmp_path / "pci.csv"
    path.write_text("province,score,mystery\nHà Nội,70,1\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        read_external_file(path, "PCI", year=2024)
    assert info.value.failures["column"].tolist() == ["mystery"]
    path.write_text("province,score\nHà Nội,70 điểm\nHải Phòng,75\nĐà Nẵng,abc\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        read_external_file(path, "PCI", year=2024)
    assert info.value.failures["row"].tolist() == [2, 4]


def test_out_of_scale_values_and_duplicates_are_refused(tmp_path):
    path = tmp_path / "papi.csv"
    path.write_text("province,score,d1\nHà Nội,85,5\nTP.HCM,40,11\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        read_external_file(path, "PAPI", year=2024)
    assert sorted(info.value.failures["value"].tolist()) == [11.0, 85.0]
    path.write_text("province,score\nHuế,40\nThừa Thiên Huế,41\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        read_external_file(path, "PAPI", year=2024)
    assert "Huế" in info.value.failures["value"].iloc[0]


def test_papi_zero_cells_are_missing_not_zero(tmp_path):
    path = tmp_path / "papi.csv"
    path.write_text("province,score,d1_participation\nVĩnh Phúc,0,0\nHà Nội,44.1,5.2\n", encoding="utf-8")
    out = read_external_file(path, "PAPI", year=2024)
    assert math.isnan(_value(out, "PAPI", 2024, "26"))
    assert _value(out, "PAPI", 2024, "01") == 44.1


def test_par_fields_in_points_are_converted_with_their_maxima(tmp_path):
    path = tmp_path / "par.csv"
    path.write_text("Tỉnh,Chỉ số CCHC,Lĩnh vực 1,Lĩnh vực 3\nHòa Bình,88.18,\"9,5\",\"11,7\"\n", encoding="utf-8")
    out = read_external_file(path, "PAR", year=2024, field_unit="points", field_max={"field1": 9.5, "field3": 13})
    assert _value(out, "PAR", 2024, "17", "field1") == pytest.approx(100.0)
    assert _value(out, "PAR", 2024, "17", "field3") == pytest.approx(90.0)
    with pytest.raises(ValidationError):
        read_external_file(path, "PAR", year=2024, field_unit="points", field_max={"field1": 9.5})
    pct = read_external_file(path, "PAR", year=2024)
    assert _value(pct, "PAR", 2024, "17", "field1") == 9.5


def test_the_long_format_round_trips(tmp_path, shipped):
    part = shipped[shipped["index"] == "SIPAS"]
    path = tmp_path / "sipas_long.csv"
    part.to_csv(path, index=False)
    back = read_external_file(path, "SIPAS")
    pd.testing.assert_frame_equal(back.reset_index(drop=True), part.reset_index(drop=True))
    with pytest.raises(ValidationError):
        read_external_file(path, "PCI")


def test_import_then_load_list_and_show(tmp_path):
    src = tmp_path / "sipas_2025.csv"
    src.write_text("Tỉnh/Thành phố,Chỉ số SIPAS,Xếp hạng\nHà Nội,88,5\nTP. Hồ Chí Minh,86,9\n", encoding="utf-8")
    store = tmp_path / "external"
    imported = import_external_file(src, "SIPAS", 2025, directory=store, source_url="https://example.org/s")
    assert len(imported) == 4 and list(store.iterdir())
    both = load_external(store)
    assert _value(both, "SIPAS", 2025, "79") == 86.0
    lst = external_list(store)
    row = lst[(lst["index"] == "SIPAS") & (lst["year"] == 2025)].iloc[0]
    assert row["n_provinces"] == 2 and row["origin"] == "imported"
    assert lst[(lst["index"] == "PCI") & (lst["year"] == 2021)]["origin"].item() == "shipped"
    shown = external_show("SIPAS", 2025, directory=store)
    assert list(shown.columns) == SHOW_COLUMNS
    assert shown["province_name"].tolist() == ["Hà Nội", "Hà Nội", "Hồ Chí Minh", "Hồ Chí Minh"]
    # a correction replaces the shipped value
    fix = tmp_path / "fix.csv"
    fix.write_text("province,score\nQuảng Ninh,94.1\n", encoding="utf-8")
    import_external_file(fix, "SIPAS", 2021, directory=store)
    assert _value(load_external(store), "SIPAS", 2021, "22") == 94.1


def test_to_wide_has_one_column_per_variable_and_keeps_nan(shipped):
    wide = to_wide(shipped[shipped["year"] == 2021])
    assert wide.columns[:3].tolist() == ["province_code", "year", "PAR:total"]
    assert "PCI:entry_costs" in wide.columns and "PAPI:d8_e_governance" in wide.columns
    qn = wide[wide["province_code"] == "22"].iloc[0]
    assert qn["PCI:total"] == 73.02 and np.isnan(qn["PAPI:total"])
    dup = pd.concat([shipped.head(1), shipped.head(1)])
    with pytest.raises(ValidationError):
        to_wide(dup)


def test_a_tenants_results_become_par_rows():
    from parindex_lib.external import par_from_results

    res = pd.DataFrame({"unit_code": ["HP", "HP", "HP", "TPHCM"], "year": 2024,
                        "node_code": ["total", "1", "1.2", "total"], "level": ["index", "field", "criterion", "index"],
                        "index_pct": [96.17, 100.0, 50.0, 90.0]})
    out = par_from_results(res, province_codes={"HP": "Hải Phòng", "TPHCM": "TP.HCM"})
    assert list(out.columns) == LONG_COLUMNS
    assert out[["province_code", "component", "value"]].values.tolist() == [
        ["31", "total", 96.17], ["31", "field1", 100.0], ["79", "total", 90.0]]
    own = par_from_results(res)
    assert own.columns[0] == "unit_code" and len(own) == 3
    with pytest.raises(ValidationError):
        par_from_results(res, province_codes={"HP": "Hải Phòng"})
