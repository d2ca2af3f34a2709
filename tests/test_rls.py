"""Row-level security and role checks inside PostgreSQL (revision 0002), as deployed.

The database is set up by ``deploy/postgres/setup_database.py``: an owner
role that ran the migrations and an application role that owns nothing.
Every attack here talks raw SQL to the server as the application role,
the way a JupyterLab kernel (which can run any code) could; the library is
not in the way.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd
import psycopg
import pytest

from parindex_lib import models as m
from parindex_lib.errors import AccessDenied
from parindex_lib.store import Store
from pg_deployment import MEMBERS, PDF, seeded_deployment, small_framework

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def dep(pg_server, request):
    small = request.getfixturevalue("small_framework_module")
    with seeded_deployment(pg_server, small, prefix="rls") as (d, tokens):
        yield d, tokens


@pytest.fixture(scope="module")
def small_framework_module():
    """The suite's small framework (tests/conftest.py), for module-scoped fixtures."""
    return small_framework()


class Raw:
    """A raw psycopg connection as the application role (no library in the way)."""

    def __init__(self, conninfo: str):
        self.conn = psycopg.connect(conninfo, autocommit=False)

    def close(self) -> None:
        self.conn.close()

    def run(self, sql: str, params: tuple = (), *, tenant: str | None = None, token: str | None = None,
            **settings: str) -> list[tuple]:
        """Run one statement in its own transaction, after setting the context; roll back on error."""
        try:
            with self.conn.transaction():
                cur = self.conn.cursor()
                if tenant is not None:
                    cur.execute("select set_config('app.tenant_id', %s, true)", (tenant,))
                if token is not None:
                    cur.execute("select set_config('app.token', %s, true)", (token,))
                for k, v in settings.items():
                    cur.execute("select set_config(%s, %s, true)", (f"app.{k}", v))
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else [("rowcount", cur.rowcount)]
        except psycopg.Error:
            raise


@pytest.fixture
def raw(dep):
    d, tokens = dep
    r = Raw(d.conninfo("app"))
    yield r, tokens
    r.close()


TENANT_TABLES = ["memberships", "units", "assessments", "scores", "evidence", "audit_log", "frameworks",
                 "action_plans"]


def _refused(fn, *args, match: str | None = None, **kwargs) -> str:
    with pytest.raises(psycopg.Error) as err:
        fn(*args, **kwargs)
    if match is not None:
        assert match in str(err.value), str(err.value)
    return str(err.value)


# -- the roles as deployed --------------------------------------------------------------

def test_application_role_owns_nothing_and_rls_is_forced(dep):
    d, _ = dep
    with psycopg.connect(d.conninfo("owner")) as conn:
        owned = conn.execute("select count(*) from pg_class c join pg_roles r on r.oid = c.relowner "
                             "where r.rolname = %s", (d.app,)).fetchone()[0]
        assert owned == 0
        attrs = conn.execute("select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolinherit from pg_roles "
                             "where rolname = %s", (d.app,)).fetchone()
        assert attrs == (False, False, False, False, False)
        rows = dict(conn.execute(
            "select relname, relrowsecurity and relforcerowsecurity from pg_class "
            "where relnamespace = 'public'::regnamespace and relkind = 'r'").fetchall())
    with_tenant = {t.name for t in m.metadata.sorted_tables if "tenant_id" in t.c} | {"tenants"}
    assert with_tenant <= set(rows)
    assert all(rows[t] for t in with_tenant), {t: rows[t] for t in with_tenant}
    # every table with tenant data: alembic_version and the shared reference data are the only others
    assert set(rows) - with_tenant == {"alembic_version", "reference_sources", "reference_values"}


def test_grants_of_the_application_role(raw):
    r, tokens = raw
    _refused(r.run, "select * from access_tokens", match="permission denied")
    for stmt in ("update audit_log set reason = 'x'", "delete from audit_log", "truncate audit_log",
                 "insert into tenants(code, name, created_at, created_by, version) values ('Z', 'z', now(), 'x', 1)",
                 "update tenants set name = 'x'", "insert into reference_values(dataset, province_code, province_name,"
                 " year, component, version) values ('X', '1', 'x', 2024, 'c', 1)",
                 "create table evil(x int)", "alter table scores disable row level security",
                 "drop policy scores_tenant on scores", "alter table scores no force row level security"):
        _refused(r.run, stmt, tenant="A", token=tokens["ann"])


def test_the_application_role_writes_every_tenant_table_the_action_plans_included(dep):
    d, tokens = dep
    writable = ["memberships", "units", "frameworks", "assessments", "scores", "evidence", "action_plans"]
    with psycopg.connect(d.conninfo("owner")) as conn:
        for table in writable:
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE"):
                assert conn.execute("select has_table_privilege(%s, %s, %s)", (d.app, table, privilege)).fetchone()[0], \
                    (table, privilege)
            seq = conn.execute("select pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()[0]
            assert conn.execute("select has_sequence_privilege(%s, %s, 'USAGE')", (d.app, seq)).fetchone()[0], seq
    assert set(writable) >= set(m.TENANT_TABLES)
    # the statements name the table (granting again, as after an upgrade, changes nothing)
    owner = Store(d.owner_url)
    try:
        statements = owner.grant_application_role(d.app)
    finally:
        owner.dispose()
    assert any("action_plans" in st and st.startswith("GRANT SELECT, INSERT, UPDATE, DELETE") for st in statements)
    # the library, as the application role with an editor's token, writes and removes an action of her unit
    eve = Store(d.app_url, token=tokens["eve"])
    try:
        with eve.session(tenant="A", user="eve") as s:
            saved = s.save_action("A01", 2024, "1.2", action="Báo cáo đúng hạn", reason="rls test plan")
            assert list(s.action_plan("A01", 2024)["id"]) == [saved["id"]]
            with pytest.raises(AccessDenied, match="not one of your units"):
                s.save_action("A02", 2024, "1.2", action="x")
            s.delete_action("A01", 2024, saved["id"], expected_version=1, reason="rls test plan")
            assert s.action_plan("A01", 2024).empty
    finally:
        eve.dispose()


# -- isolation ----------------------------------------------------------------------------------

def test_nothing_without_a_token_or_a_tenant(raw):
    r, tokens = raw
    for t in TENANT_TABLES:
        assert r.run(f"select count(*) from {t} where tenant_id is not null")[0][0] == 0, t
        assert r.run(f"select count(*) from {t} where tenant_id is not null", tenant="A")[0][0] == 0, t
        assert r.run(f"select count(*) from {t} where tenant_id is not null", token=tokens["ann"])[0][0] == 0, t
    assert r.run("select count(*) from tenants")[0][0] == 0
    # the shared framework is readable by anyone connected
    assert r.run("select count(*) from frameworks where tenant_id is null")[0][0] == 1


def test_a_token_opens_only_its_own_tenants(raw):
    r, tokens = raw
    ann = tokens["ann"]
    assert r.run("select code from tenants order by code", token=ann) == [("A",)]
    for t in TENANT_TABLES:
        rows = r.run(f"select distinct tenant_id from {t} where tenant_id is not null", tenant="A", token=ann)
        assert rows in ([("A",)], []), (t, rows)
        # another tenant named in the setting: nothing, whatever the query asks for
        assert r.run(f"select count(*) from {t} where tenant_id = 'B'", tenant="B", token=ann)[0][0] == 0, t
        assert r.run(f"select count(*) from {t} where tenant_id = 'B'", tenant="A", token=ann)[0][0] == 0, t
    # the owner's switch does nothing for the application role
    assert r.run("select count(*) from scores", tenant="B", token=ann, all_tenants="on")[0][0] == 0
    assert r.run("select count(*) from scores", all_tenants="on")[0][0] == 0
    # forged, truncated, or expired tokens open nothing
    for bad in ("", "x" * 43, ann[:-1], ann + "x", ann.upper()):
        assert r.run("select count(*) from scores", tenant="A", token=bad)[0][0] == 0
    # writes into the other tenant are refused by the policies' checks
    _refused(r.run, "insert into units(tenant_id, code, name, kind, version) values ('B', 'Z9', 'z', 'commune', 1)",
             tenant="A", token=ann, match="row-level security")
    _refused(r.run, "insert into units(tenant_id, code, name, kind, version) values ('B', 'Z9', 'z', 'commune', 1)",
             tenant="B", token=ann)
    assert r.run("update units set name = 'pwned' where tenant_id = 'B'", tenant="B", token=ann) == [("rowcount", 0)]
    assert r.run("delete from scores where tenant_id = 'B'", tenant="B", token=ann) == [("rowcount", 0)]
    # moving one's own row into the other tenant is refused
    _refused(r.run, "update units set tenant_id = 'B' where code = 'A02'", tenant="A", token=ann)


def test_settings_do_not_outlive_their_transaction(dep):
    d, tokens = dep
    with psycopg.connect(d.conninfo("app")) as conn:
        with conn.transaction():
            conn.execute("select set_config('app.tenant_id', 'A', true), set_config('app.token', %s, true)",
                         (tokens["ann"],))
            assert conn.execute("select count(*) from units").fetchone()[0] == 2
        # the same (pooled) connection, next transaction: nothing carried over
        with conn.transaction():
            assert conn.execute("select current_setting('app.tenant_id', true), "
                                "current_setting('app.token', true)").fetchone() == ("", "")
            assert conn.execute("select count(*) from units").fetchone()[0] == 0


def test_expired_and_revoked_tokens(dep):
    d, _ = dep
    owner = Store(d.owner_url)
    try:
        owner.sync_memberships("tia", {"A": ("analyst", None)}, by="test")
        short = owner.issue_access_token("tia", ttl_seconds=-1)
        fresh = owner.issue_access_token("tia")
        r = Raw(d.conninfo("app"))
        try:
            assert r.run("select count(*) from units", tenant="A", token=short)[0][0] == 0
            assert r.run("select count(*) from units", tenant="A", token=fresh)[0][0] == 2
            assert owner.revoke_access_tokens("tia") == 1  # the expired one was removed when the fresh one was issued
            assert r.run("select count(*) from units", tenant="A", token=fresh)[0][0] == 0
        finally:
            r.close()
        with pytest.raises(AccessDenied, match="member of no tenant"):
            owner.issue_access_token("stranger")
    finally:
        owner.dispose()


def test_owner_is_confined_too_unless_it_asks_for_every_tenant(dep):
    d, _ = dep
    r = Raw(d.conninfo("owner"))
    try:
        assert r.run("select count(*) from scores")[0][0] == 0  # FORCE: the owner is under the policies
        assert r.run("select count(*) from scores", tenant="A")[0][0] == 4
        assert r.run("select count(*) from scores", all_tenants="on")[0][0] == 8
        assert r.run("select count(*) from access_tokens")[0][0] >= len(MEMBERS)
    finally:
        r.close()


# -- roles, in the database ------------------------------------------------------------------

def _score(r: Raw, token: str, unit: str, node: str = "1.2", tenant: str = "A"):
    return r.run("select s.id, s.version from scores s join assessments a on a.id = s.assessment_id "
                 "where a.unit_code = %s and s.node_code = %s", (unit, node), tenant=tenant, token=token)[0]


def test_editors_change_only_their_units_self_fields_while_draft(raw):
    r, tokens = raw
    eve = tokens["eve"]
    own, _ = _score(r, eve, "A01")
    other, _ = _score(r, eve, "A02")
    ok = r.run("update scores set self_score = 3.5, updated_by = 'eve' where id = %s", (own,), tenant="A", token=eve)
    assert ok == [("rowcount", 1)]
    for sql, match in [
        ("update scores set self_score = 1, updated_by = 'eve' where id = %s" % other, "may not change self_score"),
        ("update scores set appraised_score = 1, updated_by = 'eve' where id = %s" % own, "appraised_score"),
        ("update scores set survey_points = 1, updated_by = 'eve' where id = %s" % own, "survey_points"),
        ("update scores set bonus = 1, updated_by = 'eve' where id = %s" % own, "bonus"),
        ("update scores set self_score = 2, updated_by = 'ann' where id = %s" % own, "token's user eve"),
        ("update scores set node_code = '2.2', updated_by = 'eve' where id = %s" % own, "another sheet"),
        ("delete from scores where id = %s" % own, "only an admin removes scores"),
        ("update assessments set status = 'published', updated_by = 'eve' where unit_code = 'A01'", "from draft to published"),
        ("update assessments set deadline = now(), updated_by = 'eve' where unit_code = 'A01'", "other than its status"),
        ("update assessments set status = 'submitted', updated_by = 'eve' where unit_code = 'A02'", "from submitted"),
        ("insert into units(tenant_id, code, name, kind, version) values ('A', 'A09', 'x', 'commune', 1)", "only an admin"),
        ("update memberships set role = 'admin' where user_name = 'eve'", "only an admin"),
        ("insert into audit_log(tenant_id, user_name, at, table_name, row_key, action, version) "
         "values ('A', 'ann', now(), 'scores', 'x', 'update', 1)", "row-level security"),
        ("insert into audit_log(tenant_id, user_name, at, table_name, row_key, action, version) "
         "values ('A', 'eve', now() - interval '2 days', 'scores', 'x', 'update', 1)", "current time"),
    ]:
        _refused(r.run, sql, tenant="A", token=eve, match=match)
    # evidence: own draft unit yes, another unit no
    a01 = r.run("select id from assessments where unit_code = 'A01'", tenant="A", token=eve)[0][0]
    a02 = r.run("select id from assessments where unit_code = 'A02'", tenant="A", token=eve)[0][0]
    ins = ("insert into evidence(tenant_id, assessment_id, node_code, kind, name, url, uploaded_by, uploaded_at, version) "
           "values ('A', %s, '1.2', 'link', 'l', 'https://a.vn', %s, now(), 1)")
    assert r.run(ins, (a01, "eve"), tenant="A", token=eve) == [("rowcount", 1)]
    _refused(r.run, ins, (a02, "eve"), tenant="A", token=eve, match="evidence of unit A02")
    _refused(r.run, ins, (a01, "ann"), tenant="A", token=eve, match="token's user eve")
    # submit her own draft; then the self fields are locked
    assert r.run("update assessments set status = 'submitted', updated_by = 'eve', version = version + 1 "
                 "where unit_code = 'A01'", tenant="A", token=eve) == [("rowcount", 1)]
    _refused(r.run, "update scores set self_score = 1, updated_by = 'eve' where id = %s" % own, tenant="A", token=eve,
             match="status submitted")
    # ... and she may answer the appraisal
    assert r.run("update scores set unit_response = 'đã bổ sung', updated_by = 'eve' where id = %s" % own,
                 tenant="A", token=eve) == [("rowcount", 1)]
    # an admin reopens it (as the library does, audited)
    ann = tokens["ann"]
    assert r.run("update assessments set status = 'draft', updated_by = 'ann', version = version + 1 "
                 "where unit_code = 'A01'", tenant="A", token=ann) == [("rowcount", 1)]


def test_appraisers_analysts_and_researchers(raw):
    r, tokens = raw
    apo, ana, res = tokens["apo"], tokens["ana"], tokens["res"]
    draft, _ = _score(r, apo, "A01")
    submitted, _ = _score(r, apo, "A02")
    assert r.run("update scores set appraised_score = 2.5, appraisal_reason = 'thiếu', appraisal_round = 1, "
                 "updated_by = 'apo' where id = %s", (submitted,), tenant="A", token=apo) == [("rowcount", 1)]
    _refused(r.run, "update scores set self_score = 1, updated_by = 'apo' where id = %s" % submitted,
             tenant="A", token=apo, match="self_score")
    _refused(r.run, "update scores set appraised_score = 1, updated_by = 'apo' where id = %s" % draft,
             tenant="A", token=apo, match="status draft")
    _refused(r.run, "update assessments set status = 'published', updated_by = 'apo' where unit_code = 'A02'",
             tenant="A", token=apo, match="from submitted to published")
    for tok, user in ((ana, "ana"), (res, "res")):
        assert r.run("select count(*) from scores", tenant="A", token=tok)[0][0] == 4  # they read
        _refused(r.run, f"update scores set self_score = 1, updated_by = '{user}' where id = {draft}",
                 tenant="A", token=tok, match="may not change self_score")
        _refused(r.run, f"update scores set appraised_score = 1, updated_by = '{user}' where id = {submitted}",
                 tenant="A", token=tok)
        _refused(r.run, f"update assessments set status = 'appraised', updated_by = '{user}' where unit_code = 'A02'",
                 tenant="A", token=tok)
        _refused(r.run, f"update units set name = 'x' where code = 'A01'", tenant="A", token=tok, match="only an admin")
        _refused(r.run, "delete from evidence", tenant="A", token=tok)


def test_the_library_as_the_application_role(dep):
    """The store, connected as the application role with a user's token, is refused where the rules say so."""
    d, tokens = dep
    for user in ("eve", "ana"):
        store = Store(d.app_url, token=tokens[user])
        try:
            with store.session(tenant="A", user=user) as s:
                assert set(s.units()["code"]) == {"A01", "A02"}
                assert set(s.scores()["unit_code"]) == {"A01", "A02"}
            with pytest.raises(AccessDenied, match="no tenant 'B'"):
                store.session(tenant="B", user=user)
            assert list(store.tenants()["code"]) == ["A"]
        finally:
            store.dispose()
    eve = Store(d.app_url, token=tokens["eve"])
    try:
        with eve.session(tenant="A", user="eve") as s:
            v = int(s.scores(unit_codes="A01").set_index("node_code").loc["2.2", "version"])
            assert s.save_score("A01", 2024, "2.2", expected_version=v, self_score=0.5, reason="rls test") == v + 1
            with pytest.raises(AccessDenied, match="not one of your units"):
                s.save_score("A02", 2024, "2.2", expected_version=1, self_score=0.5)
            s.add_evidence("A01", 2024, "2.2", name="b.pdf", content=PDF)
        # the library's own refusal removed, the database still refuses: a session claiming to be the admin
        with eve.session(tenant="A", user="ann") as s:
            with pytest.raises(AccessDenied, match=r"database refused.*only an admin of tenant A changes units \(eve is editor\)"):
                s.upsert_units(pd.DataFrame({"code": ["A09"], "name": ["x"], "kind": ["commune"]}))
    finally:
        eve.dispose()
    # the audit log holds every write, under the token's user
    owner = Store(d.owner_url)
    try:
        with owner.session(tenant="A", user="ann") as s:
            log = s.audit()
        mine = log[log["reason"] == "rls test"]
        assert list(mine["user_name"]) == ["eve"] and list(mine["new_value"]) == ["0.5"]
    finally:
        owner.dispose()


def test_membership_sync_and_tokens_follow_it(dep):
    d, _ = dep
    owner = Store(d.owner_url)
    try:
        out = owner.sync_memberships("kim", {"A": ("editor", ["A02", "A77"]), "Q": ("analyst", None)}, by="hub")
        assert out["added"] == ["A"] and out["unknown_tenants"] == ["Q"] and out["unknown_units"] == ["A:A77"]
        tok = owner.issue_access_token("kim")
        r = Raw(d.conninfo("app"))
        try:
            assert r.run("select role, unit_codes from memberships where user_name = 'kim'", tenant="A", token=tok) == [
                ("editor", '["A02"]')]
            out = owner.sync_memberships("kim", {"A": ("analyst", None)}, by="hub")
            assert out["changed"] == ["A"]
            # the old token still carries the old claims until it is replaced: the hub revokes and reissues
            owner.revoke_access_tokens("kim")
            tok = owner.issue_access_token("kim")
            a02, _ = _score(r, tok, "A02")
            _refused(r.run, f"update scores set unit_response = 'x', updated_by = 'kim' where id = {a02}",
                     tenant="A", token=tok)
            assert owner.sync_memberships("kim", {}, by="hub")["removed"] == ["A"]
        finally:
            r.close()
        with owner.session(tenant="A", user="ann") as s:
            log = s.audit()
        synced = log[log["row_key"] == "kim"]
        assert set(synced["user_name"]) == {"hub"} and set(synced["reason"]) == {"synchronised from hub"}
        assert set(synced["action"]) == {"insert", "update", "delete"}
    finally:
        owner.dispose()


def test_audit_log_is_append_only_for_the_owner_too(dep):
    d, _ = dep
    r = Raw(d.conninfo("owner"))
    try:
        _refused(r.run, "update audit_log set reason = 'x'", tenant="A", match="append-only")
        _refused(r.run, "delete from audit_log", tenant="A", match="append-only")
        _refused(r.run, "truncate audit_log", match="append-only")
    finally:
        r.close()


def test_audit_log_is_append_only_on_sqlite(sqlite_url, small_framework):
    store = Store(sqlite_url)
    try:
        store.create_tenant("A", "A", "ann")
        with store.engine.connect() as conn:
            for stmt in ("update audit_log set reason = 'x'", "delete from audit_log"):
                with pytest.raises(Exception, match="append-only"):
                    with conn.begin():
                        conn.exec_driver_sql(stmt)
            assert conn.exec_driver_sql("select count(*) from audit_log").scalar() >= 2
    finally:
        store.dispose()
