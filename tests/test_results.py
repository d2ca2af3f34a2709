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


# -- results of a tenant's store, kept while its data is unchanged ------------------------------------------

def _tenant_store(url: str, fw: Framework):
    """Tenant t1 (admin ana, analyst lan): departments D01-D03 and commune X001 self-scored for 2023 and 2024."""
    from parindex_lib.store import Store

    store = Store(url)
    store.create_tenant("t1", "Tổ chức thử nghiệm", admin_user="ana")
    store.add_shared_framework(fw)
    leaves = fw.leaves
    with store.session(tenant="t1", user="ana") as s:
        s.upsert_units(pd.DataFrame({"code": ["D01", "D02", "D03", "X001"],
                                     "name": ["Sở Tư pháp", "Sở Y tế", "Sở Xây dựng", "Xã An Lợi"],
                                     "kind": ["department", "department", "department", "commune"]}))
        s.set_member("lan", "analyst")
        rows = []
        for unit, (share23, share24) in {"D01": (0.5, 0.9), "D02": (0.9, 0.6), "D03": (0.7, 0.7),
                                         "X001": (1.0, 0.5)}.items():
            for year, share in ((2023, share23), (2024, share24)):
                for leaf in leaves.itertuples(index=False):
                    mp = float(leaf.max_points)
                    value = min((p for p, _, _ in leaf.rubric), key=lambda p: abs(p - mp * share)) if leaf.rubric \
                        else round(mp * share * 4) / 4
                    column = "survey_points" if leaf.assessed_by == "survey" else "self_score"
                    rows.append({"unit_code": unit, "year": year, "node_code": leaf.code, column: value,
                                 "explanation": "x"})
        s.write_scores(pd.DataFrame(rows), framework_id=fw.id, source="test")
    return store


def _independent(session, fw: Framework, year: int = 2024) -> pd.DataFrame:
    """Totals and ranks of the departments from the raw scores: roll_up, then scipy's ranks."""
    raw = session.scores(year=year)
    raw = raw[raw["unit_code"].astype(str).str.startswith("D")]
    total = roll_up(raw.drop(columns="framework_id"), fw)
    total = total[total["node_code"].astype(str) == "total"].assign(unit_code=lambda d: d["unit_code"].astype(str))
    total = total.set_index("unit_code")[["points", "index_pct"]].sort_index()
    total["rank"] = rankdata(-total["points"].to_numpy(), method="min").astype(int)
    return total


def _shown(res: pd.DataFrame) -> pd.DataFrame:
    out = res.assign(unit_code=res["unit_code"].astype(str)).set_index("unit_code")[["points", "index_pct", "rank"]]
    return out.assign(rank=out["rank"].astype(int)).sort_index()


def test_results_cache_gives_the_numbers_of_an_independent_roll_up(store_url, small_framework):
    from parindex_lib.results import ResultsCache, session_results

    store = _tenant_store(store_url, small_framework)
    cache = ResultsCache()
    try:
        with store.session(tenant="t1", user="lan") as s:
            res = cache.results(s, year=2024, kind="department")
            pd.testing.assert_frame_equal(_shown(res), _independent(s, small_framework))
            assert res["unit_code"].astype(str).tolist() == ["D01", "D03", "D02"]
            assert res["rank_change"].tolist() == [2, 0, -2]  # 2023: D02 1st, D03 2nd, D01 3rd
            pd.testing.assert_frame_equal(res, session_results(s, year=2024, kind="department"))
            # every year, and one framework's units only: as session_results gives them
            pd.testing.assert_frame_equal(cache.results(s, level=None, framework_id=small_framework.id),
                                          session_results(s, level=None))
            assert cache.results(s, year=2024, framework_id="another").empty
    finally:
        store.dispose()


def test_results_cache_computes_once_while_nothing_changes(sqlite_url, small_framework, monkeypatch):
    import parindex_lib.results as results_module
    from parindex_lib.store import Store

    calls = []
    real = results_module.results_table
    monkeypatch.setattr(results_module, "results_table", lambda *a, **k: calls.append(k) or real(*a, **k))
    store = _tenant_store(sqlite_url, small_framework)
    cache = results_module.ResultsCache()
    try:
        with store.session(tenant="t1", user="lan") as s:
            first = cache.results(s, year=2024, kind="department")
            first.loc[0, "points"] = -1.0  # a copy: changing it changes nothing kept
            again = cache.results(s, year=2024, kind="department")
            assert len(calls) == 1 and again.loc[0, "points"] != -1.0
            s.units(), s.scores(), s.audit()  # reads change nothing
            cache.units(s), cache.assessments(s)
        with store.session(tenant="t1", user="lan") as s:  # a new session of the same person, same data
            cache.results(s, year=2024, kind="department")
        assert len(calls) == 1
        with store.session(tenant="t1", user="lan") as s:
            cache.results(s, year=2024, kind="commune")  # another question is computed once too
            cache.results(s, year=2024, kind="commune")
        assert len(calls) == 2
        # another person of the tenant, in another process (its own store), saves a score
        other = Store(sqlite_url)
        with other.session(tenant="t1", user="ana") as s:
            v = int(s.scores(year=2024, unit_codes="D02").set_index("node_code").loc["1.2", "version"])
            s.save_score("D02", 2024, "1.2", expected_version=v, self_score=5, explanation="x", reason="test")
        other.dispose()
        with store.session(tenant="t1", user="lan") as s:
            after = cache.results(s, year=2024, kind="department")
            assert len(calls) == 3
            pd.testing.assert_frame_equal(_shown(after), _independent(s, small_framework))
        assert after.set_index(after["unit_code"].astype(str)).loc["D02", "points"] \
            == again.set_index(again["unit_code"].astype(str)).loc["D02", "points"] + 2.0  # 3 -> 5 on 1.2
    finally:
        store.dispose()


def test_data_stamp_follows_the_tenants_writes_only(store_url, small_framework):
    store = _tenant_store(store_url, small_framework)
    try:
        store.create_tenant("t2", "Tổ chức khác", admin_user="bao")
        with store.session(tenant="t1", user="lan") as s, store.session(tenant="t2", user="bao") as b:
            stamp, theirs = s.data_stamp(), b.data_stamp()
            assert stamp[0] > 0 and stamp[1] > 0 and s.data_stamp() == stamp
            b.upsert_units(pd.DataFrame({"code": ["B01"], "name": ["Sở Nội vụ"], "kind": ["department"]}))
            assert s.data_stamp() == stamp and b.data_stamp() != theirs  # another tenant's write
        with store.session(tenant="t1", user="ana") as s:
            s.set_deadline("D01", 2024, "2030-01-31", reason="test")
            assert s.data_stamp()[0] > stamp[0]
    finally:
        store.dispose()


@pytest.mark.postgres
def test_data_stamp_sees_a_write_that_commits_after_a_newer_one(pg_url, small_framework):
    """On PostgreSQL a transaction can take a lower audit id and commit last: the stamp still changes."""
    import psycopg
    from sqlalchemy.engine import make_url

    store = _tenant_store(pg_url, small_framework)
    conninfo = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo) as slow:  # one transaction, open until the commit below
            slow.execute("INSERT INTO audit_log (tenant_id, user_name, at, table_name, row_key, action, version) "
                         "VALUES ('t1', 'ana', now(), 'units', 'D01', 'update', 1)")
            with store.session(tenant="t1", user="ana") as s:
                s.set_deadline("D01", 2024, "2030-01-31", reason="test")  # a higher id, committed first
            with store.session(tenant="t1", user="lan") as s:
                before = s.data_stamp()
            slow.commit()
        with store.session(tenant="t1", user="lan") as s:
            after = s.data_stamp()
        assert after[0] == before[0] and after != before
    finally:
        store.dispose()


@pytest.mark.postgres
def test_data_stamp_under_row_level_security(pg_server, small_framework):
    """As the application role with a member's token: the tenant's own audit rows, every role."""
    from parindex_lib.store import Store
    from pg_deployment import seeded_deployment

    with seeded_deployment(pg_server, small_framework, prefix="stamp") as (d, tokens):
        stores = {u: Store(d.app_url, token=tokens[u]) for u in ("eve", "ana", "res", "bao")}
        try:
            stamps = {}
            for user, tenant in (("eve", "A"), ("ana", "A"), ("res", "A"), ("bao", "B")):
                with stores[user].session(tenant=tenant, user=user) as s:
                    stamps[user] = s.data_stamp()
            assert stamps["eve"] == stamps["ana"] == stamps["res"] and stamps["eve"][1] > 0
            assert stamps["bao"] != stamps["eve"]
            with stores["eve"].session(tenant="A", user="eve") as s:
                v = int(s.scores(unit_codes="A01").set_index("node_code").loc["2.2", "version"])
                s.save_score("A01", 2024, "2.2", expected_version=v, self_score=0.5, reason="stamp test")
            with stores["ana"].session(tenant="A", user="ana") as s:
                assert s.data_stamp()[0] > stamps["ana"][0]
            with stores["bao"].session(tenant="B", user="bao") as s:
                assert s.data_stamp() == stamps["bao"]
        finally:
            for st in stores.values():
                st.dispose()
