"""Province codes, name variants, the 2025 crosswalk and combining old values."""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd
import pytest

from parindex_lib.errors import ValidationError
from parindex_lib.provinces import (
    CROSSWALK_COLUMNS,
    MATCH_COLUMNS,
    PROVINCE_DIR,
    combine_to_new,
    crosswalk_2025,
    match_provinces,
    province_code,
    province_table,
    region_of,
    region_table,
    write_province_tables,
)

VARIANTS = [
    ("TP.HCM", "79"), ("TP. Hồ Chí Minh", "79"), ("Thành phố Hồ Chí Minh", "79"), ("HCMC", "79"),
    ("Ho Chi Minh City", "79"), ("TP HCM", "79"), ("tp.hồ chí minh", "79"),
    ("Thừa Thiên Huế", "46"), ("TT-Huế", "46"), ("Huế", "46"), ("Thua Thien Hue", "46"),
    ("Bà Rịa - Vũng Tàu", "77"), ("BRVT", "77"), ("Bà Rịa–Vũng Tàu", "77"), ("Ba Ria Vung Tau", "77"),
    ("Đắk Lắk", "66"), ("Đắc Lắc", "66"), ("Dak Lak", "66"),
    ("Khánh Hòa", "56"), ("Khánh Hoà", "56"), ("Thanh Hoá", "38"), ("Hoà Bình", "17"),
    ("Bắc Kạn", "06"), ("Bắc Cạn", "06"),
    ("Hà Nội", "01"), ("  Hà   Nội ", "01"), ("Tỉnh Quảng Ninh", "22"), ("Thành phố Hải Phòng", "31"),
    ("TP. Cần Thơ", "92"), ("Ha Noi", "01"), ("Hanoi", "01"), ("Quang Ninh", "22"), ("Da Nang", "48"),
    ("HÀ NỘI", "01"), ("Dong Thap", "87"), ("Kiên Giang", "91"), ("79", "79"),
]


@pytest.mark.parametrize("name, code", VARIANTS)
def test_every_variant_maps_to_its_code(name, code):
    assert province_code(name) == code


@pytest.mark.parametrize("name, code", VARIANTS)
def test_nfd_text_maps_like_nfc(name, code):
    assert province_code(unicodedata.normalize("NFD", name)) == code


def test_match_provinces_is_vectorised_and_keeps_the_index():
    names = pd.Series(["TP.HCM", "Khánh Hoà", "Hà Nội"], index=[10, 11, 12])
    out = match_provinces(names)
    assert list(out.columns) == MATCH_COLUMNS
    assert out.index.tolist() == [10, 11, 12]
    assert out["province_code"].tolist() == ["79", "56", "01"]
    assert out["province_name"].tolist() == ["Hồ Chí Minh", "Khánh Hòa", "Hà Nội"]
    assert out["matched_by"].tolist() == ["variant", "normalised", "exact"]


def test_unknown_names_are_all_listed_with_nearest_matches():
    with pytest.raises(ValidationError) as info:
        match_provinces(["Hà Nội", "Hà Giangg", "Quảng Nimh", "Xyz"], column="province", file="f.csv",
                        rows=[2, 3, 4, 5])
    f = info.value.failures
    assert f["value"].tolist() == ["Hà Giangg", "Quảng Nimh", "Xyz"]
    assert f["row"].tolist() == [3, 4, 5]
    assert set(f["column"]) == {"province"}
    assert "Hà Giang" in f["expected"].iloc[0]
    assert "Quảng Ninh" in f["expected"].iloc[1]
    assert "nearest: none" in f["expected"].iloc[2]
    assert "Xyz" in str(info.value)


def test_eras_give_each_name_its_code_of_the_time():
    assert province_code("Lào Cai", year=2024) == "10"
    assert province_code("Lào Cai", year=2025) == "15"
    assert province_code("Lào Cai", era="new") == "15"
    out = match_provinces(["Lào Cai", "Lào Cai"], year=[2024, 2025])
    assert out["province_code"].tolist() == ["10", "15"]


def test_a_merged_province_in_the_new_era_says_where_it_went():
    with pytest.raises(ValidationError) as info:
        province_code("Hà Giang", era="new")
    assert "merged into Tuyên Quang (08)" in str(info.value)
    with pytest.raises(ValidationError):
        province_code("BRVT", year=2025)


def test_province_tables_have_63_and_34_official_codes():
    old, new = province_table("old"), province_table("new")
    assert len(old) == 63 and old["province_code"].is_unique
    assert len(new) == 34 and new["province_code"].is_unique
    assert old.loc[old["province_code"] == "79", "official_name"].item() == "Thành phố Hồ Chí Minh"
    assert (old["province_code"].str.fullmatch(r"\d\d")).all()


def test_every_canonical_and_official_name_matches_itself():
    for era in ("old", "new"):
        t = province_table(era)
        for col in ("province_name", "official_name", "ascii_name"):
            assert match_provinces(t[col], era=era)["province_code"].tolist() == t["province_code"].tolist()


def test_crosswalk_is_complete_and_each_old_province_has_exactly_one_new():
    cw = crosswalk_2025()
    assert list(cw.columns) == CROSSWALK_COLUMNS
    assert len(cw) == 63
    assert cw["old_code"].is_unique
    assert set(cw["old_code"]) == set(province_table("old")["province_code"])
    assert set(cw["new_code"]) == set(province_table("new")["province_code"])
    assert cw["new_code"].nunique() == 34
    pairs = dict(zip(cw["old_name"], cw["new_name"]))
    # Resolution 202/2025/QH15, checked by hand against a few mergers.
    assert pairs["Bình Dương"] == pairs["Bà Rịa - Vũng Tàu"] == "Hồ Chí Minh"
    assert pairs["Hà Giang"] == "Tuyên Quang"
    assert pairs["Hải Dương"] == "Hải Phòng"
    assert pairs["Quảng Nam"] == "Đà Nẵng"
    assert pairs["Hà Nội"] == "Hà Nội" and pairs["Huế"] == "Huế"
    # Resolution 202/2025/QH15: 11 provinces unchanged, 17 new from two, 6 new from three
    assert cw.groupby("new_code").size().value_counts().sort_index().to_dict() == {1: 11, 2: 17, 3: 6}


def test_committed_tables_equal_what_vietnamadminunits_produces(tmp_path):
    write_province_tables(tmp_path)  # writes only to tmp_path; the library keeps reading PROVINCE_DIR
    for name in ("provinces.csv", "crosswalk_2025.csv"):
        assert (tmp_path / name).read_text("utf-8") == (PROVINCE_DIR / name).read_text("utf-8"), name
    assert province_code("Hà Nội") == "01"


# The six socio-economic regions of Resolution 81/2023/QH15 (national master plan 2021-2030), as listed
# there (read in the baodanang.vn report of the resolution and the senvanggroup.com quotation of its text,
# addresses in data/provinces/README.md).
RESOLUTION_81_REGIONS = {
    "Red River Delta": "Hà Nội, Hải Phòng, Hải Dương, Hưng Yên, Vĩnh Phúc, Bắc Ninh, Thái Bình, Nam Định, Hà Nam, "
                       "Ninh Bình, Quảng Ninh",
    "Northern Midlands and Mountains": "Hà Giang, Cao Bằng, Lạng Sơn, Bắc Giang, Phú Thọ, Thái Nguyên, Bắc Kạn, "
                                       "Tuyên Quang, Lào Cai, Yên Bái, Lai Châu, Sơn La, Điện Biên, Hoà Bình",
    "North Central and Central Coast": "Thanh Hoá, Nghệ An, Hà Tĩnh, Quảng Bình, Quảng Trị, Thừa Thiên Huế, Đà Nẵng, "
                                       "Quảng Nam, Quảng Ngãi, Bình Định, Phú Yên, Khánh Hoà, Ninh Thuận, Bình Thuận",
    "Central Highlands": "Kon Tum, Gia Lai, Đắk Lắk, Đắk Nông, Lâm Đồng",
    "Southeast": "Thành phố Hồ Chí Minh, Đồng Nai, Bà Rịa – Vũng Tàu, Bình Dương, Bình Phước, Tây Ninh",
    "Mekong River Delta": "Cần Thơ, Long An, Tiền Giang, Bến Tre, Trà Vinh, Vĩnh Long, An Giang, Đồng Tháp, "
                          "Kiên Giang, Hậu Giang, Sóc Trăng, Bạc Liêu, Cà Mau",
}


def test_every_old_province_has_exactly_one_region():
    r = region_table()
    assert len(r) == 63 and r["province_code"].is_unique
    assert set(r["province_code"]) == set(province_table("old")["province_code"])
    assert (r["region_code"] != "").all() and (r["region_en"] != "").all()
    assert r.groupby("region_code")[["region_vi", "region_en"]].nunique().eq(1).all().all()


def test_region_counts_are_those_of_resolution_81_2023():
    r = region_table()
    # Resolution 81/2023/QH15: Red River Delta 11, Northern Midlands and Mountains 14, North Central and
    # Central Coast 14, Central Highlands 5, Southeast 6, Mekong River Delta 13 (63 in all).
    assert r["region_code"].value_counts().sort_index().tolist() == [11, 14, 14, 5, 6, 13]
    assert r["region_en"].value_counts().to_dict() == {
        "Red River Delta": 11, "Northern Midlands and Mountains": 14, "North Central and Central Coast": 14,
        "Central Highlands": 5, "Southeast": 6, "Mekong River Delta": 13}
    assert {k: len(v.split(", ")) for k, v in RESOLUTION_81_REGIONS.items()} == r["region_en"].value_counts().to_dict()


def test_every_province_is_in_the_region_the_resolution_lists():
    for region, names in RESOLUTION_81_REGIONS.items():
        codes = match_provinces(names.split(", "))["province_code"]
        assert region_of(codes).eq(region).all(), region
    # Where groupings differ: Quảng Ninh is in the Red River Delta (Resolution 81/2023, GSO, Decision
    # 795/QĐ-TTg), not in the Northern Midlands as in older planning texts.
    assert region_of(["22"]).item() == "Red River Delta"
    assert region_of(["01", "79", "92"]).tolist() == ["Red River Delta", "Southeast", "Mekong River Delta"]
    assert region_table()["source"].str.contains("81/2023/QH15").all()
    assert region_table()["source"].str.contains("https://").all()
    with pytest.raises(ValidationError):
        region_of(["01", "99"])


def test_new_provinces_straddling_old_regions_are_the_seven_known_ones():
    cw = crosswalk_2025()
    old = dict(zip(region_table()["province_code"], region_table()["region_code"]))
    spans = cw.assign(region=cw["old_code"].map(old)).groupby("new_name")["region"].nunique()
    # Resolution 202/2025/QH15 merged across these region borders, so no region of the 34 follows from the 63.
    assert sorted(spans[spans > 1].index) == ["Bắc Ninh", "Gia Lai", "Lâm Đồng", "Phú Thọ", "Quảng Ngãi",
                                                "Tây Ninh", "Đắk Lắk"]


def test_regions_are_refused_for_the_merged_provinces():
    with pytest.raises(ValidationError) as info:
        region_of(["01"], era="new")
    assert "63 pre-2025 provinces only" in str(info.value)
    with pytest.raises(ValidationError):
        region_of(["24", "79"], year=2025)  # new Bắc Ninh: never the region of old Bắc Giang (also 24)
    with pytest.raises(ValidationError) as info:
        region_of(["24", "79", "24"], year=[2024, 2026, 2025])
    assert info.value.failures["value"].tolist() == ["79 in 2026", "24 in 2025"]
    assert region_of(["24", "27"], year=2024).tolist() == ["Northern Midlands and Mountains", "Red River Delta"]
    assert region_of(pd.Series(["24", "27"]), year=[0, 2023]).tolist() == ["Northern Midlands and Mountains",
                                                                            "Red River Delta"]
    with pytest.raises(ValidationError):
        region_of(["24", "27"], year=[2024])


def _values():
    return pd.DataFrame({
        "province_code": ["74", "77", "79", "02", "08", "01"],
        "year": 2024, "index": "PCI", "component": "total",
        "value": [70.0, 68.0, 66.0, 60.0, np.nan, 67.0],
    })


def test_combine_to_new_by_mean_names_the_rule_on_every_row():
    out = combine_to_new(_values(), rule="mean")
    hcm = out[out["province_code"] == "79"].iloc[0]
    assert hcm["value"] == pytest.approx((70 + 68 + 66) / 3)
    assert hcm["old_codes"] == "74+77+79" and hcm["n_old_used"] == 3 and hcm["n_old_total"] == 3
    tq = out[out["province_code"] == "08"].iloc[0]
    assert np.isnan(tq["value"]) and tq["n_old_used"] == 1  # Tuyên Quang 08 missing: no silent mean of one
    assert out.loc[out["province_code"] == "01", "value"].item() == 67.0
    assert (out["rule"] == "mean").all()
    relaxed = combine_to_new(_values(), rule="mean", require_all=False)
    assert relaxed.loc[relaxed["province_code"] == "08", "value"].item() == 60.0


def test_combine_to_new_weighted_by_user_weights():
    w = {"74": 2.0, "77": 1.0, "79": 7.0, "02": 1.0, "08": 1.0, "01": 1.0}
    out = combine_to_new(_values(), rule="weighted", weights=w, weights_source="population 2024 (test)")
    hcm = out[out["province_code"] == "79"].iloc[0]
    assert hcm["value"] == pytest.approx((2 * 70 + 68 + 7 * 66) / 10)
    assert (out["rule"] == "weighted (population 2024 (test))").all()
    with pytest.raises(ValidationError) as info:
        combine_to_new(_values(), rule="weighted", weights={"74": 1.0}, weights_source="x")
    assert {"77 Bà Rịa - Vũng Tàu", "79 Hồ Chí Minh"} <= set(info.value.failures["value"])
    with pytest.raises(ValidationError):
        combine_to_new(_values(), rule="weighted", weights=w)  # no source named
    with pytest.raises(ValidationError):
        combine_to_new(_values(), rule="median")


def test_combine_to_new_refuses_new_or_unknown_codes():
    v = _values()
    v.loc[0, "province_code"] = "99"
    with pytest.raises(ValidationError):
        combine_to_new(v)
