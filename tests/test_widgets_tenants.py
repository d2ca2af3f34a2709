"""The tenant switch of the apps' header, against a real SQLite store with two tenants.

A person in several tenants (hub groups ``tenant:<tenant>:<role>``) chooses
among their own tenants in the header; the app reopens its session there and
builds its views again. The choices come from the identity only: a value
that is not one of the person's tenants is refused and nothing changes.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from traitlets import TraitError

from parindex_lib.errors import AccessDenied
from parindex_lib.identity import Identity, Membership
from widgets.results import ResultsApp
from widgets.self_assessment import SelfAssessmentApp
from widgets.testing import ADMIN, TENANT, self_scores, small_env, small_store

OTHER = "t2"


@pytest.fixture
def store(sqlite_url, small_framework):
    """t1 of :func:`small_store`, and t2 with departments B01 (draft) and B02, B03 (self-scored).

    ``ana`` is an admin of both, ``eve`` an editor of D01 in t1 and of B01 in t2; t3 exists, and ana is
    a member there in the store, but not in her hub groups.
    """
    store = small_store(sqlite_url, small_framework)
    with store.session(tenant=TENANT, user=ADMIN) as s:
        s.set_member("eve", "editor", unit_codes=["D01"])
    store.create_tenant(OTHER, "Sở Nội vụ tỉnh Hoà Bình", admin_user="bao")
    with store.session(tenant=OTHER, user="bao") as s:
        s.upsert_units(pd.DataFrame({"code": ["B01", "B02", "B03"],
                                     "name": ["Sở Tài chính", "Sở Công Thương", "Sở Nông nghiệp"],
                                     "kind": ["department"] * 3}))
        s.set_member(ADMIN, "admin")
        s.set_member("eve", "editor", unit_codes=["B01"])
        s.create_assessment("B01", 2024, small_framework.id)
        for code, share in (("B02", 0.7), ("B03", 0.95)):
            s.write_scores(self_scores(small_framework, code, 2024, share), framework_id=small_framework.id,
                           source="test")
    store.create_tenant("t3", "Tổ chức ngoài nhóm", admin_user=ADMIN)
    return store


def hub_identity(user: str, memberships: dict[str, Membership], tenant: str = TENANT) -> Identity:
    """What :func:`parindex_lib.identity.current_identity` gives under the hub for these groups."""
    who = Identity(user=user, tenant="", memberships=memberships, source="jupyterhub")
    return who.with_tenant(tenant)


ANA = {TENANT: Membership(TENANT, "admin"), OTHER: Membership(OTHER, "admin")}
EVE = {TENANT: Membership(TENANT, "editor", ("D01",)), OTHER: Membership(OTHER, "editor", ("B01",))}


def ranked(app: ResultsApp) -> list[str]:
    body = app._table.value.split("<tbody>")[1] if "<tbody>" in app._table.value else ""
    return re.findall(r'<td class="pi-unit-code">(.*?)</td>', body)


def test_a_person_in_two_tenants_switches_and_sees_the_other_tenants_results(store, sqlite_url):
    app = ResultsApp(small_env(sqlite_url), store=store, identity=hub_identity(ADMIN, ANA))
    assert app._tenant.layout.display is None
    assert [v for _, v in app._tenant.options] == [TENANT, OTHER] and app._tenant.value == TENANT
    assert dict((v, k) for k, v in app._tenant.options)[OTHER] == "Sở Nội vụ tỉnh Hoà Bình (t2)"
    assert app._tenant.description == "Tổ chức"
    assert ranked(app) == ["D02", "D03"]

    app._tenant.value = OTHER
    assert app.identity.tenant == OTHER and app.ready
    with app.session() as s:
        assert s.tenant == OTHER
    assert ranked(app) == ["B03", "B02"]
    assert "D02" not in app._table.value and "Sở Y tế" not in app._table.value
    assert set(app.model.units["code"]) == {"B01", "B02", "B03"}
    assert 'role="status"' in app._message.value and "Đã chuyển sang tổ chức Sở Nội vụ tỉnh Hoà Bình (t2)" \
        in app._message.value

    app._lang.value = "en"
    assert app._tenant.description == "Tenant" and ranked(app) == ["B03", "B02"]
    app._tenant.value = TENANT
    assert ranked(app) == ["D02", "D03"] and "Now working in tenant" in app._message.value


def test_an_editors_units_follow_the_tenant(store, sqlite_url):
    app = SelfAssessmentApp(small_env(sqlite_url, user="eve"), store=store, identity=hub_identity("eve", EVE))
    assert [v for _, v in app._unit.options] == ["D01"]
    app._tenant.value = OTHER
    assert [v for _, v in app._unit.options] == ["B01"] and app.sheet is not None and app.sheet.unit_code == "B01"


def test_unsaved_edits_keep_the_app_in_its_tenant(store, sqlite_url):
    app = SelfAssessmentApp(small_env(sqlite_url, user="eve"), store=store, identity=hub_identity("eve", EVE))
    app.sheet.set("1.2", "self_score", 4)
    app._tenant.value = OTHER
    assert app.identity.tenant == TENANT and app._tenant.value == TENANT
    assert [v for _, v in app._unit.options] == ["D01"] and app.sheet.changed()
    assert "chưa lưu" in app._message.value


def test_one_tenant_no_dropdown(store, sqlite_url):
    standalone = ResultsApp(small_env(sqlite_url), store=store)
    assert standalone._tenant.layout.display == "none" and standalone._tenant.options == ()
    one = ResultsApp(small_env(sqlite_url), store=store,
                     identity=hub_identity(ADMIN, {TENANT: Membership(TENANT, "admin")}))
    assert one._tenant.layout.display == "none" and one._tenant.options == ()
    with pytest.raises(AccessDenied):
        one.switch_tenant(OTHER)
    assert one.identity.tenant == TENANT


def test_a_forged_tenant_is_refused_and_nothing_changes(store, sqlite_url):
    app = ResultsApp(small_env(sqlite_url), store=store, identity=hub_identity(ADMIN, ANA))
    before = app._table.value
    # a value the dropdown does not offer never reaches the app
    with pytest.raises(TraitError):
        app._tenant.value = "t3"
    with pytest.raises(TraitError):
        app._tenant.index = 5
    # nor one slipped into its choices: the app checks the identity's tenants, not the dropdown's
    app._tenant.options = [*app._tenant.options, ("t3", "t3")]
    app._tenant.value = "t3"
    assert app.identity.tenant == TENANT and app._tenant.value == TENANT
    with app.session() as s:
        assert s.tenant == TENANT
    assert app._table.value == before
    assert 'class="pi-msg-error"' in app._message.value
    assert "Tài khoản ana không thuộc tổ chức “t3”; vẫn làm việc với tổ chức t1." in app._message.value
    with pytest.raises(AccessDenied):
        app.switch_tenant("t3")
    assert app.identity.tenant == TENANT


def test_the_store_still_checks_the_membership(store, sqlite_url):
    """The hub's groups name a tenant the store does not make the person a member of: refused, unchanged."""
    groups = {**ANA, "t4": Membership("t4", "admin")}
    app = ResultsApp(small_env(sqlite_url), store=store, identity=hub_identity(ADMIN, groups))
    assert [v for _, v in app._tenant.options] == [TENANT, OTHER, "t4"]
    app._tenant.value = "t4"
    assert app.identity.tenant == TENANT and app._tenant.value == TENANT and ranked(app) == ["D02", "D03"]
    assert 'class="pi-msg-error"' in app._message.value
