"""Tenant isolation: a session of tenant A never sees nor changes tenant B's rows."""

from __future__ import annotations

import inspect

import pandas as pd
import pytest
from sqlalchemy import select

from parindex_lib import models as m
from parindex_lib.errors import AccessDenied, NotFound, ValidationError
from parindex_lib.store import Store, TenantSession

PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture
def two(store_url, small_framework):
    """Tenants A (admin ann; unit A01) and B (admin bao; units B01, B02 with scores and evidence)."""
    store = Store(store_url)
    store.create_tenant("A", "Sở Nội vụ tỉnh A", "ann")
    store.create_tenant("B", "Sở Nội vụ tỉnh B", "bao")
    store.add_shared_framework(small_framework)
    with store.session(tenant="B", user="bao") as b:
        b.upsert_units(pd.DataFrame({"code": ["B01", "B02"], "name": ["Sở Tư pháp B", "Sở Y tế B"],
                                     "kind": ["department", "department"]}))
        b.set_member("binh", "editor", unit_codes=["B01"])
        b.add_framework(small_framework.replace(id="b_private", name_vi="Bộ riêng của B"))
        b.write_scores(pd.DataFrame({"unit_code": ["B01", "B01", "B02"], "year": [2024] * 3,
                                     "node_code": ["1.2", "2.1", "1.2"], "self_score": [4, None, 3],
                                     "survey_points": [None, 8, None]}),
                       source="b.xlsx", framework_id="small_test")
        b.create_assessment("B01", 2023, "b_private")
        b.add_evidence("B01", 2024, "1.2", name="bc.pdf", content=PDF)
        b.add_evidence("B01", 2024, "1.2", name="link", url="https://b.gov.vn/bc")
        b.save_action("B01", 2024, "1.2", action="Kế hoạch riêng của B")
    with store.session(tenant="A", user="ann") as a:
        a.upsert_units(pd.DataFrame({"code": ["A01"], "name": ["Sở Tư pháp A"], "kind": ["department"]}))
        a.create_assessment("A01", 2024, "small_test")
    yield store
    store.dispose()


def _tenant_rows(store: Store, tenant: str) -> dict[str, list]:
    """Every row of a tenant, read straight from the tables."""
    out = {}
    with store.engine.connect() as conn:
        for name in ("tenants", "memberships", "units", "frameworks", "assessments", "scores", "evidence",
                     "action_plans", "audit_log"):
            t = m.metadata.tables[name]
            col = t.c.code if name == "tenants" else t.c.tenant_id
            out[name] = sorted(tuple(r) for r in conn.execute(select(t).where(col == tenant)).all())
    return out


def _views(s: TenantSession) -> dict[str, pd.DataFrame]:
    return {"units": s.units(), "scores": s.scores(), "assessments": s.assessments(), "audit": s.audit(),
            "frameworks": s.frameworks(), "members": s.members()}


def _ids(store: Store, tenant: str) -> list[int]:
    with store.engine.connect() as conn:
        return [r[0] for r in conn.execute(select(m.evidence.c.id).where(m.evidence.c.tenant_id == tenant)).all()]


def test_a_never_sees_nor_changes_b(two, small_framework):
    store = two
    b_before = _tenant_rows(store, "B")
    with store.session(tenant="B", user="bao") as b:
        b_views = _views(b)
    b_evidence = _ids(store, "B")
    assert len(b_before["scores"]) == 3 and len(b_evidence) == 2

    def not_found(fn, *args, **kwargs):
        with pytest.raises(NotFound) as err:
            fn(*args, **kwargs)
        return str(err.value)

    with store.session(tenant="A", user="ann") as a:
        tried: set[str] = set()

        def attempt(name: str) -> None:
            tried.add(name)

        # reads: B's rows are invisible, B's codes are "not found" exactly like unknown codes
        attempt("units")
        assert list(a.units()["code"]) == ["A01"]
        attempt("scores")
        assert a.scores().empty and a.scores(unit_codes=["B01", "B02"], year=2024, all_leaves=True).empty
        attempt("assessments")
        assert list(a.assessments()["unit_code"]) == ["A01"]
        attempt("assessment")
        msg_b = not_found(a.assessment, "B01", 2024)
        msg_unknown = not_found(a.assessment, "Z99", 2024)
        assert msg_b.replace("B01", "X") == msg_unknown.replace("Z99", "X")
        attempt("evidence")
        assert not_found(a.evidence, "B01", 2024) .replace("B01", "X") == not_found(a.evidence, "Z99", 2024).replace("Z99", "X")
        attempt("evidence_content")
        for eid in b_evidence:
            not_found(a.evidence_content, eid)
        attempt("frameworks")
        assert list(a.frameworks()["framework_id"]) == ["small_test"]
        attempt("framework")
        not_found(a.framework, "b_private")
        attempt("audit")
        log = a.audit()
        assert not log["row_key"].str.startswith(("B0", "b_private")).any()
        assert not set(log["user_name"]) & {"bao", "binh"}
        assert a.audit(unit_code="B01").empty and a.audit(unit_code="B01", year=2024, node_code="1.2").empty
        assert a.audit(table_name="action_plans").empty
        attempt("action_plan")
        assert not_found(a.action_plan, "B01", 2024).replace("B01", "X") == \
            not_found(a.action_plan, "Z99", 2024).replace("Z99", "X")
        attempt("data_stamp")
        a_ids = pd.read_sql(select(m.audit_log.c.id).where(m.audit_log.c.tenant_id == "A"), store.engine)["id"]
        b_ids = pd.read_sql(select(m.audit_log.c.id).where(m.audit_log.c.tenant_id == "B"), store.engine)["id"]
        # B's audit rows interleave with A's: A's stamp counts only A's
        assert ((b_ids > a_ids.min()) & (b_ids < a_ids.max())).any()
        assert a.data_stamp() == (int(a_ids.max()), int((a_ids > a_ids.max() - 10_000).sum()))
        attempt("members")
        assert list(a.members()["user_name"]) == ["ann"]
        attempt("reference")
        assert a.reference().empty
        attempt("reference_sources")
        assert a.reference_sources().empty
        # writes aimed at B's units, assessments and evidence
        attempt("save_score")
        for v in (0, 1, 2):
            not_found(a.save_score, "B01", 2024, "1.2", expected_version=v, self_score=1)
        attempt("write_scores")
        rows = pd.DataFrame({"unit_code": ["B01"], "year": [2024], "node_code": ["1.2"], "self_score": [0]})
        for fid in (None, "small_test"):
            with pytest.raises(ValidationError) as err:
                a.write_scores(rows, source="steal.xlsx", framework_id=fid)
            assert "a unit of tenant A" in err.value.failures["expected"].iloc[0]
        attempt("create_assessment")
        not_found(a.create_assessment, "B02", 2025, "small_test")
        not_found(a.create_assessment, "A01", 2025, "b_private")
        attempt("set_status")
        not_found(a.set_status, "B01", 2024, "submitted")
        attempt("set_adjustment")
        not_found(a.set_adjustment, "B01", 2024, bonus=1, reason="x")
        attempt("save_action")
        b_action = int(pd.read_sql(select(m.action_plans.c.id).where(m.action_plans.c.tenant_id == "B"),
                                   store.engine)["id"].iloc[0])
        not_found(a.save_action, "B01", 2024, "1.2", action="x")
        not_found(a.save_action, "B01", 2024, action_id=b_action, expected_version=1, owner="A")
        attempt("delete_action")
        not_found(a.delete_action, "B01", 2024, b_action, expected_version=1)
        attempt("set_deadline")
        not_found(a.set_deadline, "B01", 2024, "2025-01-01")
        attempt("add_evidence")
        not_found(a.add_evidence, "B01", 2024, "1.2", name="x.pdf", content=PDF)
        attempt("remove_evidence")
        for eid in b_evidence:
            not_found(a.remove_evidence, eid, reason="x")
        attempt("remove_member")
        not_found(a.remove_member, "bao")
        not_found(a.remove_member, "binh")
        attempt("set_member")
        with pytest.raises(ValidationError, match="a unit of tenant A"):
            a.set_member("cuc", "editor", unit_codes=["B01"])
        a.set_member("bao", "analyst")  # B's admin may also join A: a row of A, not of B
        # codes and ids are per tenant: A's own B01 and b_private live beside B's
        attempt("upsert_units")
        a.upsert_units(pd.DataFrame({"code": ["B01"], "name": ["Mã trùng của A"], "kind": ["commune"]}))
        attempt("add_framework")
        a.add_framework(small_framework.replace(id="b_private", name_vi="Bộ của A"))
        assert a.framework("b_private").name_vi == "Bộ của A"
        a.create_assessment("B01", 2024, "b_private")
        a.save_score("B01", 2024, "1.2", expected_version=0, self_score=5, explanation="của A")
        assert list(a.scores()["unit_code"]) == ["B01"] and a.scores()["self_score"].iloc[0] == 5
        # every public method of the session was tried
        public = {n for n, v in inspect.getmembers(TenantSession) if not n.startswith("_") and callable(v)}
        assert public - {"close"} == tried, public - tried
    # B's rows and B's own views are unchanged
    assert _tenant_rows(store, "B") == b_before
    with store.session(tenant="B", user="bao") as b:
        after = _views(b)
        for key in ("units", "scores", "assessments", "audit", "frameworks", "members"):
            pd.testing.assert_frame_equal(after[key], b_views[key], obj=key)
        assert b.framework("b_private").name_vi == "Bộ riêng của B"
        assert b.units().set_index("code").loc["B01", "name"] == "Sở Tư pháp B"


def test_non_members_and_unknown_tenants_are_refused(two):
    with pytest.raises(AccessDenied, match="user 'ann' is not a member of tenant 'B'"):
        two.session(tenant="B", user="ann")
    with pytest.raises(AccessDenied, match="no tenant 'C'"):
        two.session(tenant="C", user="ann")
    with pytest.raises(AccessDenied):
        two.session(tenant="A", user="")
    # membership is checked on every call: a removed member is refused at once
    with two.session(tenant="B", user="binh") as binh, two.session(tenant="B", user="bao") as bao:
        assert binh.role == "editor" and binh.unit_codes == ["B01"]
        assert len(binh.units()) == 2
        with pytest.raises(AccessDenied, match="only an admin"):
            binh.set_member("binh", "admin")
        bao.remove_member("binh", reason="chuyển công tác")
        with pytest.raises(AccessDenied, match="not a member"):
            binh.units()
        with pytest.raises(ValidationError, match="at least one admin"):
            bao.remove_member("bao")
    s = two.session(tenant="A", user="ann")
    s.close()
    with pytest.raises(Exception, match="closed"):
        s.units()


def test_tenant_listing_by_user(two):
    assert list(two.tenants()["code"]) == ["A", "B"]
    mine = two.tenants(user="bao")
    assert mine[["code", "role"]].to_dict("records") == [{"code": "B", "role": "admin"}]
    with pytest.raises(ValidationError, match="not in use"):
        two.create_tenant("A", "again", "x")
    with pytest.raises(ValidationError) as err:
        two.create_tenant("bad code!", "", "")
    assert list(err.value.failures["column"]) == ["code", "name", "admin_user"]


def test_shared_framework_is_visible_to_all_and_writable_by_none(two, small_framework):
    store = two
    with store.engine.connect() as conn:
        before = conn.execute(select(m.frameworks).where(m.frameworks.c.tenant_id.is_(None))).all()
    for tenant, user in (("A", "ann"), ("B", "bao")):
        with store.session(tenant=tenant, user=user) as s:
            shared = s.frameworks().set_index("framework_id").loc["small_test"]
            assert bool(shared["shared"]) is True
            pd.testing.assert_frame_equal(s.framework("small_test").nodes, small_framework.nodes)
            for fw in (small_framework, small_framework.replace(name_vi="Sửa đổi")):
                with pytest.raises(AccessDenied, match="shared and read-only"):
                    s.add_framework(fw)
    with store.engine.connect() as conn:
        after = conn.execute(select(m.frameworks).where(m.frameworks.c.tenant_id.is_(None))).all()
    assert after == before
    assert list(store.shared_frameworks()["framework_id"]) == ["small_test"]


def test_no_public_method_takes_a_tenant_for_reading_rows():
    """Only Store.session chooses the tenant; TenantSession methods never take one."""
    for name, fn in inspect.getmembers(TenantSession, inspect.isfunction):
        if name.startswith("_"):
            continue
        params = set(inspect.signature(fn).parameters)
        assert not params & {"tenant", "tenant_id", "tenant_code"}, name
    for name, fn in inspect.getmembers(Store, inspect.isfunction):
        if name.startswith("_") or name in ("session", "create_tenant", "reset_tenant"):
            continue
        params = set(inspect.signature(fn).parameters)
        assert not params & {"tenant", "tenant_id", "tenant_code"}, name


def test_reset_tenant_empties_one_tenant_only(two):
    store = two
    b_before = _tenant_rows(store, "B")
    with store.session(tenant="A", user="ann") as a:
        a.add_framework(a.framework("small_test").replace(id="a_own"))
        a.set_member("cuc", "analyst")
        a.save_score("A01", 2024, "1.2", expected_version=0, self_score=2, explanation="x")
        a.save_action("A01", 2024, "1.2", action="Báo cáo đúng hạn")  # points at the unit: removed before it
    res = store.reset_tenant("A", "Sở Nội vụ tỉnh A (mới)", admin_user="dung")
    assert res["removed"] == {"evidence": 0, "scores": 1, "action_plans": 1, "assessments": 1, "units": 1,
                              "frameworks": 1, "memberships": 2}
    with pytest.raises(AccessDenied):
        store.session(tenant="A", user="ann")
    with store.session(tenant="A", user="dung") as a:
        assert a.units().empty and a.scores().empty and a.assessments().empty
        assert list(a.frameworks()["framework_id"]) == ["small_test"]  # the shared one stays
        assert list(a.members()["user_name"]) == ["dung"] and a.role == "admin"
        log = a.audit()
        assert "ann" in set(log["user_name"])  # history is kept
        emptied = log[(log["field"] == "rows") & (log["action"] == "delete")]
        assert dict(zip(emptied["table_name"], emptied["old_value"])) == {
            "scores": "1", "action_plans": "1", "assessments": "1", "units": "1", "frameworks": "1",
            "memberships": "2"}
    assert store.tenants().set_index("code").loc["A", "name"] == "Sở Nội vụ tỉnh A (mới)"
    with store.engine.connect() as conn:
        assert conn.execute(select(m.action_plans).where(m.action_plans.c.tenant_id == "A")).all() == []
    assert _tenant_rows(store, "B") == b_before
    assert store.reset_tenant("C", "Tenant C", "eve")["removed"] == {}
    assert list(store.tenants(user="eve")["code"]) == ["C"]
