"""The published results table, checked by hand and against an independent recomputation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from parindex_lib.aggregation import roll_up
from parindex_lib.errors import ValidationError
from parindex_lib.framework import Framework, read_framework_yaml
from parindex_lib.results import RESULTS_TABLE_COLUMNS, results_table

NAN = math.nan

# Worth 10: field 1 (6) = 1.1 (4) + 1.2 (2); field 2 (4) = 2.1 (4). Bonus cap 1.
YAML = """
id: {id}
name_vi: Bộ thử {id}
level: department
max_points: 10
bonus_cap: 1
nodes:
  - {{code: "1", name_vi: Lĩnh vực 1, max_points: 6, children: [
      {{code: "1.1", name_vi: Tiêu chí 1.1, max_points: 4}},
      {{code: "1.2", name_vi: Tiêu chí 1.2, max_points: 2}}]}}
  - {{code: "2", name_vi: Lĩnh vực 2, max_points: 4, children: [
      {{code: "2.1", name_vi: Tiêu chí 2.1, max_points: 4}}]}}
"""


def framework(fid: str = "dept") -> Framework:
    return read_framework_yaml(YAML.format(id=fid), f"{fid}.yaml")


UNITS = pd.DataFrame({
    "code": ["S01", "S02", "S03", "H01", "H02"],
    "name": ["Sở Nội vụ", "Sở Tư pháp", "Sở Y tế", "Huyện A", "Huyện B"],
    "kind": ["department", "department", "department", "district", "district"],
    "parent_code": ["T01"] * 5,
    "region": ["Đồng bằng sông Hồng"] * 5,
})


def scores() -> pd.DataFrame:
    # (unit, year, 1.1, 1.2, 2.1, bonus on 1.1)
    plan = [
        ("S01", 2023, 3.0, 1.0, 3.5, NAN),  # 7.5
        ("S02", 2023, 4.0, 2.0, 3.0, NAN),  # 9
        ("S03", 2023, 2.0, 2.0, 2.0, NAN),  # 6
        ("H01", 2023, 4.0, 1.5, 4.0, NAN),  # 9.5
        ("H02", 2023, 1.0, 1.0, 1.0, NAN),  # 3
        ("S01", 2024, 4.0, 2.0, 3.0, 0.5),  # 9 + 0.5 = 9.5
        ("S02", 2024, 4.0, 1.0, 3.0, 2.0),  # 8 + min(2, 1) = 9
        ("S03", 2024, 4.0, 2.0, NAN, NAN),  # 6, 2.1 not scored
        ("H01", 2024, 3.0, 1.0, 4.0, NAN),  # 8
        ("H02", 2024, 4.0, 2.0, 3.0, NAN),  # 9
    ]
    rows = []
    for unit, year, a, b, c, bonus in plan:
        rows += [(unit, year, "1.1", a, bonus), (unit, year, "1.2", b, NAN), (unit, year, "2.1", c, NAN)]
    return pd.DataFrame(rows, columns=["unit_code", "year", "node_code", "appraised_score", "bonus"])


def test_hand_worked_table_all_units():
    out = results_table(scores(), {"dept": framework()}, UNITS, year=2024)
    assert list(out.columns) == RESULTS_TABLE_COLUMNS
    # 2024 totals: S01 9.5, S02 9, H02 9, H01 8, S03 6 -> ranks 1, 2, 2, 4, 5
    # 2023 totals: H01 9.5, S02 9, S01 7.5, S03 6, H02 3 -> ranks 1, 2, 3, 4, 5
    assert out["unit_code"].astype(str).tolist() == ["S01", "H02", "S02", "H01", "S03"]
    assert out["points"].tolist() == [9.5, 9.0, 9.0, 8.0, 6.0]
    assert out["index_pct"].tolist() == [95.0, 90.0, 90.0, 80.0, 60.0]
    assert out["rank"].tolist() == [1, 2, 2, 4, 5]
    assert out["rank_change"].tolist() == [2, 3, 0, -3, -1]  # S01 3rd -> 1st: "tăng 2 bậc"
    assert out["group"].astype(object).where(out["group"].notna(), None).tolist() == ["A", "A", "A", "B", None]
    assert out["coverage"].tolist() == [1.0, 1.0, 1.0, 1.0, 0.6]
    assert out["unit_name"].tolist() == ["Sở Nội vụ", "Huyện B", "Sở Tư pháp", "Huyện A", "Sở Y tế"]
    assert set(out["year"]) == {2024} and set(out["level"].astype(str)) == {"index"}


def test_departments_ranked_against_departments():
    out = results_table(scores(), framework(), UNITS, year=2024, kind="department")
    assert out["unit_code"].astype(str).tolist() == ["S01", "S02", "S03"]
    assert out["rank"].tolist() == [1, 2, 3]
    # 2023 among departments: S02 1, S01 2, S03 3
    assert out["rank_change"].tolist() == [1, -1, 0]
    districts = results_table(scores(), framework(), UNITS, year=2024, kind="district")
    assert districts["unit_code"].astype(str).tolist() == ["H02", "H01"]
    assert districts["rank_change"].tolist() == [1, -1]


def test_field_level_and_all_years():
    out = results_table(scores(), framework(), UNITS, level="field")
    assert set(out["node_code"].astype(str)) == {"1", "2"} and set(out["level"].astype(str)) == {"field"}
    f2 = out[(out["year"] == 2024) & (out["node_code"] == "2")]
    # field 2 in 2024: H01 4, S01 3, S02 3, H02 3, S03 not scored
    assert dict(zip(f2["unit_code"].astype(str), f2["rank"])) == {"H01": 1, "S01": 2, "S02": 2, "H02": 2,
                                                                   "S03": pd.NA}
    assert f2["unit_code"].astype(str).tolist()[-1] == "S03"  # unranked last
    assert out[out["year"] == 2023]["rank_change"].isna().all()
    everything = results_table(scores(), framework(), UNITS, level=None)
    assert len(everything) == 10 * 6  # 10 unit-years x (5 nodes + total)


def test_several_frameworks_rank_apart():
    a = scores().assign(framework_id="dept")
    b = scores().assign(framework_id="other")
    b = b[b["unit_code"].str.startswith("H")]
    a = a[a["unit_code"].str.startswith("S")]
    out = results_table(pd.concat([b, a]), {"dept": framework("dept"), "other": framework("other")}, UNITS,
                        year=2024)
    assert out["unit_code"].astype(str).tolist() == ["S01", "S02", "S03", "H02", "H01"]
    assert out["rank"].tolist() == [1, 2, 3, 1, 2]
    with pytest.raises(ValidationError, match="framework_id"):
        results_table(scores(), {"dept": framework("dept"), "other": framework("other")}, UNITS)
    with pytest.raises(ValidationError) as err:
        results_table(a.assign(framework_id="nope"), {"dept": framework()}, UNITS)
    assert err.value.failures["value"].tolist() == ["nope"]


def test_unknown_units_and_bad_level_are_refused():
    bad = scores()
    bad.loc[0, "unit_code"] = "S99"
    with pytest.raises(ValidationError) as err:
        results_table(bad, framework(), UNITS)
    assert err.value.failures["value"].tolist() == ["S99"]
    with pytest.raises(ValidationError):
        results_table(scores(), framework(), UNITS, level="sector")
    with pytest.raises(ValidationError):
        results_table(scores(), framework(), UNITS.drop(columns="kind"), kind="department")


def test_empty_selection():
    out = results_table(scores(), framework(), UNITS, kind="commune")
    assert list(out.columns) == RESULTS_TABLE_COLUMNS and out.empty


def test_matches_an_independent_recomputation_on_random_data():
    rng = np.random.default_rng(11)
    n = 40
    units = pd.DataFrame({"code": [f"U{i:02d}" for i in range(n)], "name": [f"Đơn vị {i}" for i in range(n)],
                          "kind": rng.choice(["department", "district"], n), "parent_code": "T", "region": "R"})
    recs = []
    for u in units["code"]:
        for y in (2022, 2023, 2024):
            if rng.random() < 0.1:
                continue
            for code, mx in (("1.1", 4), ("1.2", 2), ("2.1", 4)):
                if rng.random() < 0.1:
                    continue
                recs.append((u, y, code, float(rng.integers(0, mx * 2 + 1)) / 2))
    sc = pd.DataFrame(recs, columns=["unit_code", "year", "node_code", "self_score"])
    out = results_table(sc, framework(), units, level=None, kind="district")
    # independent: totals by plain pandas sums, ranks by scipy, change by a merge
    dist = set(units.loc[units["kind"] == "district", "code"])
    sd = sc[sc["unit_code"].isin(dist)]
    field_of = {"1.1": "1", "1.2": "1", "2.1": "2"}
    sums = {}
    for (u, y), grp in sd.groupby(["unit_code", "year"]):
        sums[(u, y, "total")] = grp["self_score"].sum()
        for f in ("1", "2"):
            part = grp[grp["node_code"].map(field_of) == f]["self_score"]
            sums[(u, y, f)] = part.sum() if len(part) else NAN
    want = pd.Series(sums, name="points").rename_axis(["unit_code", "year", "node_code"]).reset_index()
    want["rank"] = np.nan
    for _, idx in want.groupby(["year", "node_code"]).groups.items():
        pts = want.loc[idx, "points"]
        ok = pts.notna()
        want.loc[pts[ok].index, "rank"] = rankdata(-pts[ok].to_numpy(), method="min")
    prev = want.assign(year=want["year"] + 1)[["unit_code", "year", "node_code", "rank"]]
    want = want.merge(prev, on=["unit_code", "year", "node_code"], how="left", suffixes=("", "_prev"))
    want["rank_change"] = want["rank_prev"] - want["rank"]
    got = out[out["node_code"].isin(["total", "1", "2"])].assign(
        unit_code=lambda d: d["unit_code"].astype(str), node_code=lambda d: d["node_code"].astype(str))
    both = got.merge(want, on=["unit_code", "year", "node_code"], suffixes=("", "_want"))
    assert len(both) == len(want) == len(got)
    np.testing.assert_allclose(both["points"], both["points_want"], equal_nan=True)
    np.testing.assert_array_equal(both["rank"].to_numpy("float64", na_value=np.nan), both["rank_want"])
    np.testing.assert_array_equal(both["rank_change"].to_numpy("float64", na_value=np.nan),
                                  both["rank_change_want"])


def test_roll_up_and_table_agree():
    table = results_table(scores(), framework(), UNITS, level=None)
    rolled = roll_up(scores(), framework())
    key = ["unit_code", "year", "node_code"]
    both = table.astype({"unit_code": str, "node_code": str}).merge(
        rolled.astype({"unit_code": str, "node_code": str}), on=key, suffixes=("", "_r"))
    assert len(both) == len(rolled)
    for col in ("points", "max_points", "index_pct", "coverage"):
        np.testing.assert_array_equal(both[col], both[f"{col}_r"])


def test_the_mapping_key_names_the_framework():
    sc = scores().assign(framework_id="2024 set")
    out = results_table(sc, {"2024 set": framework("dept")}, UNITS, year=2024)
    assert out["rank"].tolist() == [1, 2, 2, 4, 5]
