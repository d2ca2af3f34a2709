"""Improvement planning: points lost, priorities, targets and stored action plans.

Numbers are checked against hand-worked cases and against an independent
recomputation (plain pandas groupby, scipy, the ranking module); the action
plan against a real SQLite file and a real PostgreSQL server, with its row-level
security exercised through the application role.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sqlalchemy import text

from parindex_lib import planning as P
from parindex_lib.correlation import correlate
from parindex_lib.errors import AccessDenied, ConflictError, NotFound, ValidationError
from parindex_lib.ranking import rank as rank_results
from parindex_lib.results import results_table
from parindex_lib.store import Store


# -- hand-made results -------------------------------------------------------------------

def table(rows: list[tuple]) -> pd.DataFrame:
    """Results rows: (unit, node, level, points, max_points) for 2024."""
    return pd.DataFrame(rows, columns=["unit_code", "node_code", "level", "points", "max_points"]).assign(
        year=2024)[["unit_code", "year", "node_code", "level", "points", "max_points"]]


HAND = table([
    # four units; node 1.1 worth 4, node 1.2 worth 2, node 2.1 worth 6 (U4 not scored on it)
    ("U1", "1.1", "criterion", 1.0, 4.0), ("U1", "1.2", "criterion", 2.0, 2.0), ("U1", "2.1", "criterion", 3.0, 6.0),
    ("U2", "1.1", "criterion", 2.5, 4.0), ("U2", "1.2", "criterion", 1.0, 2.0), ("U2", "2.1", "criterion", 5.0, 6.0),
    ("U3", "1.1", "criterion", 3.5, 4.0), ("U3", "1.2", "criterion", 0.5, 2.0), ("U3", "2.1", "criterion", 6.0, 6.0),
    ("U4", "1.1", "criterion", 4.0, 4.0), ("U4", "1.2", "criterion", 1.5, 2.0),
    ("U4", "2.1", "criterion", np.nan, 6.0),
])


def test_points_lost_hand_worked():
    lost = P.points_lost(HAND, "U1", 2024, level="criterion")
    assert list(lost.columns) == P.POINTS_LOST_COLUMNS
    got = lost.set_index("node_code")
    # node 1.1: others 2.5, 3.5, 4 and U1's 1 -> median (1+2.5+3.5+4 -> 2.5, 3.5) = 3, best 4
    assert got.loc["1.1", ["points_lost", "median_points", "best_points", "gap_to_median", "gap_to_best"]].tolist() \
        == [3.0, 3.0, 4.0, 2.0, 3.0]
    # node 2.1: U4 has no points and is left out: median of 3, 5, 6 = 5, best 6
    assert got.loc["2.1", ["points_lost", "median_points", "best_points", "gap_to_median", "gap_to_best"]].tolist() \
        == [3.0, 5.0, 6.0, 2.0, 3.0]
    # node 1.2: U1 is the best; above the median (0.5, 1, 1.5, 2 -> 1.25)
    assert got.loc["1.2", ["points_lost", "median_points", "best_points", "gap_to_median", "gap_to_best"]].tolist() \
        == [0.0, 1.25, 2.0, -0.75, 0.0]
    # largest loss first, ties in tree order
    assert lost["node_code"].tolist() == ["1.1", "2.1", "1.2"]


def test_a_node_the_unit_did_not_score_comes_last_with_nothing_known_lost():
    lost = P.points_lost(HAND, "U4", 2024, level="criterion")
    assert lost["node_code"].tolist() == ["1.2", "1.1", "2.1"]
    last = lost.iloc[-1]
    assert math.isnan(last["points"]) and math.isnan(last["points_lost"]) and math.isnan(last["gap_to_best"])
    assert last["best_points"] == 6.0


def test_points_lost_matches_an_independent_groupby_on_random_results():
    rng = np.random.default_rng(7)
    units = [f"U{i:02d}" for i in range(25)]
    nodes = [f"{f}.{c}" for f in range(1, 5) for c in range(1, 4)]
    maxp = {n: float(rng.integers(1, 5)) for n in nodes}
    rows = [(u, n, "criterion", float(np.round(rng.uniform(0, maxp[n]), 2)) if rng.random() > 0.1 else np.nan,
             maxp[n]) for u in units for n in nodes]
    res = table(rows)
    for unit in ("U00", "U13", "U24"):
        lost = P.points_lost(res, unit, 2024, level="criterion").set_index("node_code")
        g = res.groupby("node_code")["points"]
        mine = res[res["unit_code"] == unit].set_index("node_code")
        for n in nodes:
            pts = mine.loc[n, "points"]
            assert lost.loc[n, "median_points"] == pytest.approx(g.median()[n])
            assert lost.loc[n, "best_points"] == pytest.approx(g.max()[n])
            if np.isnan(pts):
                assert np.isnan(lost.loc[n, "points_lost"])
            else:
                assert lost.loc[n, "points_lost"] == pytest.approx(maxp[n] - pts)
                assert lost.loc[n, "gap_to_median"] == pytest.approx(np.median(g.get_group(n).dropna()) - pts)
                assert lost.loc[n, "gap_to_best"] == pytest.approx(g.max()[n] - pts)


def test_only_units_of_the_kind_are_compared():
    units = pd.DataFrame({"code": ["U1", "U2", "U3", "U4"], "kind": ["department", "department", "commune", "commune"]})
    lost = P.points_lost(HAND, "U1", 2024, level="criterion", kind="department", units=units).set_index("node_code")
    assert lost.loc["1.1", "best_points"] == 2.5 and lost.loc["1.1", "median_points"] == 1.75
    with pytest.raises(ValidationError, match="not of kind commune"):
        P.points_lost(HAND, "U1", 2024, level="criterion", kind="commune", units=units)
    with pytest.raises(ValidationError, match="needs their kinds"):
        P.points_lost(HAND, "U1", 2024, level="criterion", kind="department")


def test_units_on_another_framework_are_not_compared():
    res = HAND.assign(framework_id=np.where(HAND["unit_code"].isin(["U1", "U2"]), "a", "b"))
    lost = P.points_lost(res, "U1", 2024, level="criterion").set_index("node_code")
    assert lost.loc["1.1", "best_points"] == 2.5


def test_bad_inputs_name_the_offender():
    with pytest.raises(ValidationError, match="no results for unit U9 in 2024"):
        P.points_lost(HAND, "U9", 2024)
    with pytest.raises(ValidationError) as err:
        P.points_lost(HAND, "U1", 2023)
    assert "2024" in str(err.value)
    with pytest.raises(ValidationError, match="unknown level"):
        P.points_lost(HAND, "U1", 2024, level="leaves")
    with pytest.raises(ValidationError, match="needs the framework"):
        P.points_lost(HAND, "U1", 2024, level="leaf")
    with pytest.raises(ValidationError) as err:
        P.points_lost(HAND.drop(columns=["max_points"]), "U1", 2024)
    assert err.value.failures["column"].tolist() == ["max_points"]


# -- priority -----------------------------------------------------------------------------

def test_priority_formula_hand_worked():
    lost = P.points_lost(HAND, "U1", 2024, level="criterion")
    pr = P.priority(lost, {"field2": -0.5, "1": 0.1}, weight=2.0).set_index("node_code")
    # 1.1: recoverable = min(4 - 1, 4 - 1) = 3; priority = 3 x (1 + 2 x 0.1) = 3.6
    # 2.1: recoverable = min(6 - 3, 6 - 3) = 3; priority = 3 x (1 + 2 x 0.5) = 6
    # 1.2: the best already: recoverable 0, priority 0
    assert pr.loc["1.1", ["recoverable", "association", "priority"]].tolist() == [3.0, 0.1, pytest.approx(3.6)]
    assert pr.loc["2.1", ["recoverable", "association", "priority"]].tolist() == [3.0, 0.5, 6.0]
    assert pr.loc["1.2", ["recoverable", "priority"]].tolist() == [0.0, 0.0]
    assert P.priority(lost, {"2": 0.5}, weight=2.0)["node_code"].tolist()[0] == "2.1"
    assert list(P.priority(lost).columns) == P.PRIORITY_COLUMNS


def test_without_associations_priority_is_the_recoverable_points():
    lost = P.points_lost(HAND, "U2", 2024, level="criterion")
    pr = P.priority(lost)
    assert (pr["association"] == 0).all()
    np.testing.assert_array_equal(pr["priority"].to_numpy(), pr["recoverable"].to_numpy())
    pr0 = P.priority(lost, {"1": 0.9, "2": 0.9}, weight=0)
    np.testing.assert_array_equal(pr0["priority"].to_numpy(), pr0["recoverable"].to_numpy())


def test_recoverable_is_capped_by_the_points_lost():
    t = pd.DataFrame({"unit_code": "U1", "year": 2024, "node_code": ["total"], "level": "index", "name_vi": None,
                      "max_points": [100.0], "points": [95.0], "points_lost": [5.0], "median_points": [90.0],
                      "best_points": [101.5], "gap_to_median": [-5.0], "gap_to_best": [6.5]})  # best had a bonus
    pr = P.priority(t, {"total": 0.4})
    assert pr[["recoverable", "association", "priority"]].values.tolist() == [[5.0, 0.4, 7.0]]


def test_priority_refuses_bad_weights_and_associations():
    lost = P.points_lost(HAND, "U1", 2024, level="criterion")
    for w in (-1, float("nan"), "much"):
        with pytest.raises(ValidationError, match="weight"):
            P.priority(lost, weight=w)
    with pytest.raises(ValidationError) as err:
        P.priority(lost, {"PCI:total": 0.3, "2": 1.7})
    assert err.value.failures["value"].tolist() == ["PCI:total", 1.7]


def test_associations_from_a_correlation_study_are_the_largest_abs_r_per_field():
    rng = np.random.default_rng(3)
    n = 40
    wide = pd.DataFrame({"province_code": [f"{i:02d}" for i in range(n)], "year": 2024})
    base = rng.normal(size=n)
    wide["PAR:field1"] = base + rng.normal(scale=0.5, size=n)
    wide["PAR:field2"] = rng.normal(size=n)
    wide["PCI:total"] = base
    wide["PAPI:total"] = -base + rng.normal(scale=2, size=n)
    corr = correlate(wide, ["PAR:field1", "PAR:field2"], ["PCI:total", "PAPI:total"], method="pearson")
    got = P.association_by_field(corr)
    for f in ("1", "2"):
        x = wide[f"PAR:field{f}"]
        expect = max(abs(stats.pearsonr(x, wide[y]).statistic) for y in ("PCI:total", "PAPI:total"))
        assert got[f] == pytest.approx(expect)
    only_pci = P.association_by_field(corr, y="PCI:total")
    assert only_pci["1"] == pytest.approx(abs(stats.pearsonr(wide["PAR:field1"], wide["PCI:total"]).statistic))
    strict = P.association_by_field(corr, alpha=0.05)
    sig = corr[corr["p_adj"] < 0.05]
    assert strict["2"] == pytest.approx(sig.loc[sig["x"] == "PAR:field2", "r"].abs().max()
                                         if (sig["x"] == "PAR:field2").any() else 0.0)
    # a correlation table is accepted by priority directly
    lost = P.points_lost(HAND, "U1", 2024, level="criterion")
    pr = P.priority(lost, corr).set_index("node_code")
    assert pr.loc["1.1", "association"] == pytest.approx(got["1"])


# -- target ---------------------------------------------------------------------------------

TOTALS = table([("U1", "total", "index", 70.0, 100.0), ("U2", "total", "index", 80.0, 100.0),
                ("U3", "total", "index", 85.0, 100.0), ("U4", "total", "index", 90.0, 100.0),
                ("U5", "total", "index", 85.0, 100.0)])


def test_target_rank_hand_worked_with_ties():
    t = P.target(TOTALS, "U1", 2024, rank=2, level="index")
    # others 90, 85, 85, 80: the 2nd best other is 85; at 85 U1 ties U3 and U5 and is ranked 2nd
    assert (t["current_rank"], t["units"], t["target_points"], t["points_needed"]) == (5, 5, 85.0, 15.0)
    assert P.target(TOTALS, "U1", 2024, rank=3, level="index")["points_needed"] == 15.0
    assert P.target(TOTALS, "U1", 2024, rank=4, level="index")["points_needed"] == 10.0
    assert P.target(TOTALS, "U1", 2024, rank=1, level="index")["points_needed"] == 20.0
    assert P.target(TOTALS, "U4", 2024, rank=1, level="index")["points_needed"] == 0.0
    assert P.target(TOTALS, "U1", 2024, rank=9, level="index")["points_needed"] == 0.0


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_the_points_needed_are_exactly_enough_by_the_ranking_module(k):
    t = P.target(TOTALS, "U1", 2024, rank=k, level="index")

    def rank_with(extra: float) -> int:
        res = TOTALS.copy()
        res.loc[res["unit_code"] == "U1", "points"] += extra
        ranked = rank_results(res)
        return int(ranked.loc[ranked["unit_code"] == "U1", "rank"].iloc[0])

    assert rank_with(t["points_needed"]) <= k
    if t["points_needed"] > 0:
        assert rank_with(t["points_needed"] - 0.01) > k


def test_target_group_from_the_framework_bands():
    t = P.target(TOTALS, "U1", 2024, group="A", level="index")
    assert (t["target_points"], t["points_needed"], t["target_index_pct"]) == (90.0, 20.0, 90.0)
    assert P.target(TOTALS, "U1", 2024, group="C", level="index")["points_needed"] == 0.0
    custom = P.target(TOTALS, "U1", 2024, group="A", level="index", bands=[("A", 95), ("B", 85)])
    assert custom["points_needed"] == 25.0
    with pytest.raises(ValidationError, match="unknown group"):
        P.target(TOTALS, "U1", 2024, group="D", level="index")
    for bad in ({}, {"rank": 1, "group": "A"}):
        with pytest.raises(ValidationError, match="choose one goal"):
            P.target(TOTALS, "U1", 2024, level="index", **bad)
    with pytest.raises(ValidationError, match="bad rank"):
        P.target(TOTALS, "U1", 2024, rank=0, level="index")


def test_target_takes_the_largest_recoverable_nodes_until_the_need_is_met():
    # U1 total 6 of 12; three leaves. Best of the kind: 1.1 -> 4 (U1 has 1: 3 recoverable),
    # 1.2 -> 2 (U1 has 2: 0), 2.1 -> 6 (U1 has 3: 3). Other totals 8.5, 9.5, 10.5 (U4 scored 2 leaves only).
    res = pd.concat([HAND, table([("U1", "total", "index", 6.0, 12.0), ("U2", "total", "index", 8.5, 12.0),
                                  ("U3", "total", "index", 10.0, 12.0), ("U4", "total", "index", 5.5, 12.0)])])
    t = P.target(res, "U1", 2024, rank=2, level="criterion")
    assert (t["current_rank"], t["points_needed"], t["recoverable_total"]) == (3, 2.5, 6.0)
    assert t["nodes"]["node_code"].tolist() == ["1.1"]  # 3 points cover 2.5; ties in tree order
    assert list(t["nodes"].columns) == P.TARGET_NODE_COLUMNS
    t1 = P.target(res, "U1", 2024, rank=1, level="criterion")
    assert t1["points_needed"] == 4.0
    assert t1["nodes"][["node_code", "recoverable", "cumulative"]].values.tolist() == [["1.1", 3.0, 3.0],
                                                                                        ["2.1", 3.0, 6.0]]
    assert t1["met_by_recoverable"] and t1["reachable"]
    # group A (90% of 12 = 10.8) needs 4.8: both nodes; the need beyond the recoverable points is said
    ta = P.target(res, "U1", 2024, group="A", level="criterion", bands=[("A", 100.0)])
    assert ta["points_needed"] == 6.0 and ta["met_by_recoverable"] and ta["reachable"]
    nothing = P.target(res, "U3", 2024, rank=1, level="criterion")
    assert nothing["points_needed"] == 0.0 and nothing["nodes"].empty


def test_an_unreachable_target_says_so():
    res = table([("U1", "total", "index", 50.0, 100.0), ("U1", "1", "field", 50.0, 100.0),
                 ("U2", "total", "index", 60.0, 100.0), ("U2", "1", "field", 60.0, 100.0)])
    t = P.target(res, "U1", 2024, group="A", level="field")
    assert t["points_needed"] == 40.0 and t["reachable"] and not t["met_by_recoverable"]
    assert t["recoverable_total"] == 10.0 and t["nodes"]["node_code"].tolist() == ["1"]
    over = P.target(res, "U1", 2024, group="A", level="field", bands=[("A", 120.0)])
    assert over["points_needed"] == 70.0 and not over["reachable"]


def test_target_on_a_real_results_table(small_framework):
    from widgets.testing import self_scores

    units = pd.DataFrame({"code": ["D1", "D2", "D3"], "name": ["a", "b", "c"], "kind": "department"})
    scores = pd.concat([self_scores(small_framework, u, 2024, s) for u, s in (("D1", 0.5), ("D2", 0.7),
                                                                                ("D3", 0.9))])
    res = results_table(scores, small_framework, units, year=2024, level=None)
    t = P.target(res, "D1", 2024, rank=1, framework=small_framework)
    tot = res[res["node_code"] == "total"].set_index("unit_code")["points"]
    assert t["points_needed"] == pytest.approx(tot["D3"] - tot["D1"])
    assert t["current_rank"] == 3 and set(t["nodes"]["node_code"]) <= set(small_framework.leaves["code"])
    assert t["nodes"]["recoverable"].sum() >= t["points_needed"] - 1e-9


# -- the stored action plan ------------------------------------------------------------------------

def _plan_store(url: str, framework) -> Store:
    store = Store(url)
    store.create_tenant("t1", "Sở Nội vụ thử", admin_user="ana")
    store.create_tenant("t2", "Tổ chức khác", admin_user="bob")
    store.add_shared_framework(framework)
    with store.session(tenant="t1", user="ana") as s:
        s.upsert_units(pd.DataFrame({"code": ["D01", "D02"], "name": ["Sở Tư pháp", "Sở Y tế"],
                                     "kind": "department"}))
        for u in ("D01", "D02"):
            s.create_assessment(u, 2024, framework.id)
        s.set_member("eve", "editor", ["D01"])
        s.set_member("ali", "analyst")
        s.set_member("apu", "appraiser")
    with store.session(tenant="t2", user="bob") as s:
        s.upsert_units(pd.DataFrame({"code": ["D01"], "name": ["Sở khác"], "kind": "department"}))
        s.create_assessment("D01", 2024, framework.id)
    return store


@pytest.fixture
def plan_store(store_url, small_framework):
    store = _plan_store(store_url, small_framework)
    yield store
    store.dispose()


def test_an_action_is_saved_read_back_changed_and_removed_with_an_audit_trail(plan_store):
    with plan_store.session(tenant="t1", user="ana") as s:
        saved = P.save_action(s, "D01", 2024, "1.1.2", action="Ban hành kế hoạch đúng hạn", owner="Văn phòng Sở",
                              deadline="2025-03-31", gap="0,5", reason="họp giao ban")
        assert saved["version"] == 1
        plan = P.action_plan(s, "D01", 2024)
        assert list(plan.columns) == P.ACTION_PLAN_COLUMNS
        row = plan.iloc[0]
        assert (row["node_code"], row["gap"], row["action"], row["owner"], row["status"], row["version"]) == \
            ("1.1.2", 0.5, "Ban hành kế hoạch đúng hạn", "Văn phòng Sở", "planned", 1)
        assert str(row["deadline"]) == "2025-03-31" and row["updated_by"] == "ana"
        again = P.save_action(s, "D01", 2024, action_id=saved["id"], expected_version=1, status="in_progress",
                              owner="")
        assert again == {"id": saved["id"], "version": 2}
        row = P.action_plan(s, "D01", 2024).iloc[0]
        assert (row["status"], row["owner"], row["action"]) == ("in_progress", None, "Ban hành kế hoạch đúng hạn")
        same = P.save_action(s, "D01", 2024, action_id=saved["id"], expected_version=2, status="in_progress")
        assert same["version"] == 2  # nothing changed, no new version
        audit = s.audit()
        mine = audit[audit["table_name"] == "action_plans"]
        assert set(mine.loc[mine["action"] == "insert", "field"]) == {"node_code", "action", "owner", "deadline",
                                                                      "gap", "status"}
        upd = mine[mine["action"] == "update"].set_index("field")
        assert upd.loc["status", ["old_value", "new_value"]].tolist() == ["planned", "in_progress"]
        assert upd.loc["owner", "old_value"] == "Văn phòng Sở" and pd.isna(upd.loc["owner", "new_value"])
        assert (mine.loc[mine["action"] == "insert", "reason"] == "họp giao ban").all()
        P.delete_action(s, "D01", 2024, saved["id"], expected_version=2, reason="trùng")
        assert P.action_plan(s, "D01", 2024).empty
        gone = s.audit()
        assert ((gone["table_name"] == "action_plans") & (gone["action"] == "delete")).sum() >= 1


def test_two_writers_of_the_same_version_the_second_gets_a_conflict(plan_store):
    with plan_store.session(tenant="t1", user="ana") as a, plan_store.session(tenant="t1", user="eve") as e:
        saved = P.save_action(a, "D01", 2024, "1.2", action="Báo cáo đúng hạn")
        P.save_action(e, "D01", 2024, action_id=saved["id"], expected_version=1, owner="Phòng Tổng hợp")
        with pytest.raises(ConflictError) as err:
            P.save_action(a, "D01", 2024, action_id=saved["id"], expected_version=1, owner="Văn phòng")
        assert (err.value.field, err.value.yours, err.value.theirs) == ("owner", "Văn phòng", "Phòng Tổng hợp")
        assert err.value.current_version == 2 and err.value.changed_by == "eve"
        P.save_action(a, "D01", 2024, action_id=saved["id"], expected_version=err.value.current_version,
                      owner="Văn phòng")
        assert P.action_plan(a, "D01", 2024)["owner"].tolist() == ["Văn phòng"]
        with pytest.raises(ConflictError):
            P.delete_action(e, "D01", 2024, saved["id"], expected_version=2)


def test_roles_analysts_and_appraisers_read_editors_write_their_own_units(plan_store):
    with plan_store.session(tenant="t1", user="ana") as a:
        P.save_action(a, "D02", 2024, "2.2", action="Giải quyết hồ sơ đúng hạn")
    for user in ("ali", "apu"):
        with plan_store.session(tenant="t1", user=user) as s:
            assert len(P.action_plan(s, "D02", 2024)) == 1
            with pytest.raises(AccessDenied, match="reads action plans only"):
                P.save_action(s, "D02", 2024, "2.2", action="x")
    with plan_store.session(tenant="t1", user="eve") as e:
        P.save_action(e, "D01", 2024, "2.2", action="Của đơn vị mình")
        with pytest.raises(AccessDenied, match="not one of your units"):
            P.save_action(e, "D02", 2024, "2.2", action="Đơn vị khác")
        plan = P.action_plan(e, "D02", 2024)
        with pytest.raises(AccessDenied):
            P.delete_action(e, "D02", 2024, int(plan["id"].iloc[0]), expected_version=1)


def test_bad_values_are_all_listed_and_nothing_is_written(plan_store):
    with plan_store.session(tenant="t1", user="ana") as s:
        with pytest.raises(ValidationError) as err:
            P.save_action(s, "D01", 2024, "", action="  ", gap="-1", deadline="tháng sau", status="finished")
        assert sorted(err.value.failures["column"]) == ["action", "deadline", "gap", "node_code", "status"]
        with pytest.raises(ValidationError, match="a node of framework small_test"):
            P.save_action(s, "D01", 2024, "9.9", action="x")
        with pytest.raises(NotFound):
            P.save_action(s, "D01", 2023, "1.2", action="x")  # no assessment that year
        with pytest.raises(NotFound):
            P.save_action(s, "D01", 2024, action_id=999, expected_version=1, owner="x")
        assert P.action_plan(s, "D01", 2024).empty
        P.save_action(s, "D01", 2024, "total", action="Lên nhóm A", gap=3)


def test_a_tenant_never_sees_nor_changes_another_tenants_plan(plan_store):
    with plan_store.session(tenant="t1", user="ana") as a:
        mine = P.save_action(a, "D01", 2024, "1.2", action="Bí mật của t1")
    with plan_store.session(tenant="t2", user="bob") as b:
        assert P.action_plan(b, "D01", 2024).empty  # t2's own D01 has no plan
        with pytest.raises(NotFound):
            P.save_action(b, "D01", 2024, action_id=mine["id"], expected_version=1, owner="t2")
        with pytest.raises(NotFound):
            P.delete_action(b, "D01", 2024, mine["id"], expected_version=1)
        with pytest.raises(NotFound):
            P.action_plan(b, "D02", 2024)  # t1's unit does not exist for t2
    with plan_store.session(tenant="t1", user="ana") as a:
        assert P.action_plan(a, "D01", 2024)["action"].tolist() == ["Bí mật của t1"]


# -- PostgreSQL: row-level security on the table itself --------------------------------------------------

@pytest.mark.postgres
def test_postgres_keeps_action_plans_under_forced_row_level_security(pg_url, small_framework):
    owner = _plan_store(pg_url, small_framework)
    try:
        with owner.engine.connect() as conn:
            flags = conn.execute(text("select relrowsecurity, relforcerowsecurity from pg_class "
                                      "where relname = 'action_plans'")).one()
            policies = {r[0] for r in conn.execute(text(
                "select policyname from pg_policies where tablename = 'action_plans'"))}
            conn.execute(text("CREATE ROLE parindex_app_plan LOGIN"))
            conn.commit()
        assert tuple(flags) == (True, True)
        assert policies == {"action_plans_tenant", "action_plans_maintenance"}
        owner.grant_application_role("parindex_app_plan")
        with owner.engine.begin() as conn:  # until grant_application_role lists action_plans itself
            conn.execute(text("GRANT SELECT, INSERT, UPDATE, DELETE ON action_plans TO parindex_app_plan"))
            seq = conn.execute(text("select pg_get_serial_sequence('action_plans', 'id')")).scalar()
            conn.execute(text(f"GRANT USAGE ON SEQUENCE {seq} TO parindex_app_plan"))
        with owner.session(tenant="t1", user="ana") as s:
            P.save_action(s, "D02", 2024, "1.2", action="Của quản trị")
        app_url = owner.engine.url.set(username="parindex_app_plan")
        tokens = {u: owner.issue_access_token(u) for u in ("ana", "eve", "ali", "bob")}

        def app(user: str) -> Store:
            return Store(app_url.render_as_string(hide_password=False), upgrade=False, token=tokens[user])

        eve = app("eve")
        with eve.session(tenant="t1", user="eve") as e:
            P.save_action(e, "D01", 2024, "1.2", action="Của biên tập viên")
            assert len(P.action_plan(e, "D02", 2024)) == 1
        # the database itself refuses what the library would: an editor writing another unit's plan,
        # an analyst writing at all, even by plain SQL as the application role
        with eve.engine.connect() as conn:
            with conn.begin():
                conn.execute(text("select set_config('app.tenant_id', 't1', true), set_config('app.token', :k, true)"),
                             {"k": tokens["eve"]})
                with pytest.raises(Exception, match="may not change the action plan of unit D02"):
                    with conn.begin_nested():
                        conn.execute(text("UPDATE action_plans SET owner = 'x', updated_by = 'eve' "
                                          "WHERE unit_code = 'D02'"))
        eve.dispose()
        ali = app("ali")
        with ali.engine.connect() as conn:
            with conn.begin():
                conn.execute(text("select set_config('app.tenant_id', 't1', true), set_config('app.token', :k, true)"),
                             {"k": tokens["ali"]})
                assert conn.execute(text("select count(*) from action_plans")).scalar() == 2
                with pytest.raises(Exception, match="may not change the action plan"):
                    conn.execute(text("INSERT INTO action_plans (tenant_id, unit_code, year, node_code, action, "
                                      "status, version, updated_by, updated_at) VALUES ('t1', 'D01', 2024, '1.2', "
                                      "'x', 'planned', 1, 'ali', now())"))
        ali.dispose()
        bob = app("bob")
        with bob.engine.connect() as conn:  # another tenant's token opens nothing of t1, whatever it sets
            with conn.begin():
                conn.execute(text("select set_config('app.tenant_id', 't1', true), set_config('app.token', :k, true)"),
                             {"k": tokens["bob"]})
                assert conn.execute(text("select count(*) from action_plans")).scalar() == 0
        bob.dispose()
    finally:
        owner.dispose()
