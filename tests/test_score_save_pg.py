"""Saving one score on PostgreSQL through the functions of revision 0004, as deployed.

:meth:`TenantSession.save_score` reads the context and writes the update
with its audit rows in two calls (``parindex_score_context``,
``parindex_update_score``), each its own transaction; on SQLite, and for a
leaf saved for the first time, it saves in one transaction. These tests
check that the two paths give the same versions, values, audit rows and
refusals for the same saves; that a save losing the race between its two
calls is a conflict and writes nothing; that the functions open nothing to
the application role that plain SQL does not; and that a dropped connection
and a database not yet at revision 0004 are handled.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from parindex_lib import store as store_module
from parindex_lib.errors import AccessDenied, ConflictError, NotFound, ParindexError, ValidationError
from parindex_lib.store import Store
from pg_deployment import deployment, seeded_deployment, small_framework, two_tenants

pytestmark = pytest.mark.postgres

AUDIT_KEYS = ["user_name", "table_name", "row_key", "field", "old_value", "new_value", "reason", "action"]


@pytest.fixture(scope="module")
def small_fw():
    return small_framework()


@pytest.fixture(scope="module")
def dep(pg_server, small_fw):
    with seeded_deployment(pg_server, small_fw, prefix="save") as (d, tokens):
        yield d, tokens


def _outcome(fn):
    """What a save did: ("ok", version) or (error type, message, failure table rows)."""
    try:
        return ("ok", fn())
    except ValidationError as exc:
        return (type(exc).__name__, exc.message, exc.failures.astype(str).to_dict("records"))
    except ConflictError as exc:
        return ("ConflictError", str(exc), (exc.field, exc.yours, exc.theirs, exc.current_version, exc.changed_by))
    except ParindexError as exc:
        return (type(exc).__name__, str(exc))


def _script(session_of) -> list:
    """The same saves, as each member; ``session_of(user)`` gives that member's tenant-A session."""
    eve, apo = session_of("eve"), session_of("apo")
    v = {n: int(x) for n, x in eve.scores(unit_codes="A01").set_index("node_code")["version"].items()}
    out = [
        # a plain update, text with a decimal comma, then the same value again (no new version)
        _outcome(lambda: eve.save_score("A01", 2024, "1.2", expected_version=v["1.2"], self_score="3,5", reason="r1")),
        _outcome(lambda: eve.save_score("A01", 2024, "1.2", expected_version=v["1.2"] + 1, self_score=3.5)),
        # a stale version: the conflict names the stored value, its version and who saved it
        _outcome(lambda: eve.save_score("A01", 2024, "1.2", expected_version=v["1.2"], self_score=1.0)),
        # two fields at once: one audit row each
        _outcome(lambda: eve.save_score("A01", 2024, "2.2", expected_version=v["2.2"], self_score=2,
                                        explanation="Báo cáo số 12/BC-UBND", reason="r2")),
        # the evidence rule: 1.2 has a file attached, 2.2 has none
        _outcome(lambda: eve.save_score("A01", 2024, "1.2", expected_version=v["1.2"] + 1, explanation=None)),
        _outcome(lambda: eve.save_score("A01", 2024, "2.2", expected_version=v["2.2"] + 1, explanation="")),
        # a leaf saved for the first time (an insert), then again (an update)
        _outcome(lambda: eve.save_score("A01", 2024, "1.1.2", expected_version=0, self_score=1.5, explanation="có")),
        _outcome(lambda: eve.save_score("A01", 2024, "1.1.2", expected_version=1, self_score=2.0, reason="r3")),
        # refusals: out of range, off the rubric, a survey leaf, another unit, a missing assessment, a NUL
        _outcome(lambda: eve.save_score("A01", 2024, "1.1.2", expected_version=2, self_score=9)),
        _outcome(lambda: eve.save_score("A01", 2024, "1.1.1", expected_version=0, self_score=0.7, explanation="x")),
        _outcome(lambda: eve.save_score("A01", 2024, "2.1", expected_version=0, self_score=1)),
        _outcome(lambda: eve.save_score("A02", 2024, "1.2", expected_version=1, self_score=1.0)),
        _outcome(lambda: eve.save_score("A01", 2023, "1.2", expected_version=1, self_score=1.0)),
        _outcome(lambda: eve.save_score("A01", 2024, "1.2", expected_version=v["1.2"] + 1, explanation="a\x00b")),
        # the appraiser on the submitted sheet: a changed score needs a reason
        _outcome(lambda: apo.save_score("A02", 2024, "1.2", expected_version=1, appraised_score=2.0)),
        _outcome(lambda: apo.save_score("A02", 2024, "1.2", expected_version=1, appraised_score=2.0,
                                        appraisal_reason="Thiếu kế hoạch", appraisal_round=1, reason="r4")),
        _outcome(lambda: apo.save_score("A02", 2024, "1.2", expected_version=2, self_score=0.0)),
        _outcome(lambda: apo.save_score("A01", 2024, "1.2", expected_version=v["1.2"] + 2, appraised_score=1.0,
                                        appraisal_reason="x")),
    ]
    return out


def _state(session) -> tuple[list, list]:
    scores = session.scores().sort_values(["unit_code", "node_code"])
    cols = ["unit_code", "node_code", "self_score", "appraised_score", "explanation", "appraisal_reason",
            "appraisal_round", "version", "updated_by"]
    log = session.audit()
    log = log[log["reason"].isin(["r1", "r2", "r3", "r4"]) | log["row_key"].str.contains("1.1.2")]
    return (scores[cols].astype(str).values.tolist(),
            log.sort_values(["row_key", "at", "field"])[AUDIT_KEYS].astype(str).values.tolist())


def test_the_functions_save_as_the_sqlite_transaction_does(dep, small_fw, sqlite_url):
    d, tokens = dep
    lite = Store(sqlite_url)
    two_tenants(lite, small_fw)
    try:
        lite_out = _script(lambda user: lite.session(tenant="A", user=user))
        with lite.session(tenant="A", user="ann") as s:
            lite_state = _state(s)
    finally:
        lite.dispose()
    stores: list[Store] = []

    def pg_session(user: str):
        st = Store(d.app_url, upgrade=False, token=tokens[user])
        stores.append(st)
        return st.session(tenant="A", user=user)

    calls: list[str] = []
    real_call = Store._call

    def counting(self, sql, params):
        calls.append(sql.split("(")[0].split()[-1])
        return real_call(self, sql, params)

    try:
        Store._call = counting  # type: ignore[method-assign]
        pg_out = _script(pg_session)
    finally:
        Store._call = real_call  # type: ignore[method-assign]
        for st in stores:
            st.dispose()
    owner = Store(d.owner_url, upgrade=False)
    try:
        with owner.session(tenant="A", user="ann") as s:
            pg_state = _state(s)
    finally:
        owner.dispose()
    for i, (a, b) in enumerate(zip(lite_out, pg_out)):
        assert a == b, f"save {i}: SQLite {a!r} != PostgreSQL {b!r}"
    assert len(lite_out) == len(pg_out) == 18
    assert [o[0] for o in pg_out] == [
        "ok", "ok", "ConflictError", "ok", "ok", "ValidationError", "ok", "ok", "ValidationError",
        "ValidationError", "ValidationError", "AccessDenied", "NotFound", "ValidationError", "ValidationError", "ok",
        "AccessDenied", "AccessDenied"]
    assert pg_state == lite_state
    # the functions did the work: every save reads its context through one call, and each update writes
    # through one; the insert of a new leaf and the missing assessment went through the transaction path
    assert calls.count("parindex_update_score") == 5
    assert calls.count("parindex_score_context") >= 15
    # what the audit says of the plain update: old and new values as text, the reason, the new version
    rows = [r for r in pg_state[1] if r[6] == "r1"]
    assert rows == [["eve", "scores", "A01/2024/1.2", "self_score", "4.0", "3.5", "r1", "update"]]


def test_a_save_that_loses_the_race_between_its_two_calls_is_a_conflict(dep):
    """Another editor saves between the context read and the update: the update writes nothing."""
    d, tokens = dep
    ann = Store(d.app_url, upgrade=False, token=tokens["ann"])
    eve = Store(d.app_url, upgrade=False, token=tokens["eve"])
    try:
        with ann.session(tenant="A", user="ann") as sa, eve.session(tenant="A", user="eve") as se:
            v = int(se.scores(unit_codes="A01").set_index("node_code").loc["2.2", "version"])
            real_call = eve._call

            def race(sql, params):
                if "parindex_update_score" in sql:
                    sa.save_score("A01", 2024, "2.2", expected_version=v, self_score=0.25, reason="ann first")
                return real_call(sql, params)

            eve._call = race  # type: ignore[method-assign]
            with pytest.raises(ConflictError) as err:
                se.save_score("A01", 2024, "2.2", expected_version=v, self_score=1.75, reason="eve second")
            assert (err.value.theirs, err.value.current_version, err.value.changed_by) == (0.25, v + 1, "ann")
            del eve._call
            row = se.scores(unit_codes="A01").set_index("node_code").loc["2.2"]
            assert (float(row["self_score"]), int(row["version"]), row["updated_by"]) == (0.25, v + 1, "ann")
            log = sa.audit()
            assert (log["reason"] == "eve second").sum() == 0 and (log["reason"] == "ann first").sum() == 1
            # she resolves it as the apps offer: save again over the current version
            assert se.save_score("A01", 2024, "2.2", expected_version=v + 1, self_score=1.75, reason="eve again") == v + 2
    finally:
        ann.dispose()
        eve.dispose()


def _conn(d, who="app"):
    """A raw connection; the owner's sees every tenant (maintenance)."""
    c = psycopg.connect(d.conninfo(who), autocommit=True)
    if who == "owner":
        c.execute("select set_config('app.all_tenants', 'on', false)")
    return c


def _update_call(tenant, token, user, score_id, expected, fields=("self_score",), value=0.0, audit_user_rows=1):
    names = [f for f, _ in _migration().FIELDS]
    values = [value if f in fields else None for f in names]
    return ([tenant, token, user, score_id, expected, store_module._now(), list(fields), *values, "x/2024/1.2",
             "attack", list(fields)[:audit_user_rows], ["1"] * audit_user_rows, ["0"] * audit_user_rows])


def _migration():
    path = Path(store_module.__file__).parent / "migrations" / "versions" / "0004_score_save_functions.py"
    spec = importlib.util.spec_from_file_location("parindex_migration_0004", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_the_functions_and_the_library_agree_on_the_fields():
    assert [f for f, _ in _migration().FIELDS] == list(store_module._SAVE_FUNCTION_FIELDS)
    assert sorted(store_module._SAVE_FUNCTION_FIELDS) == sorted(store_module.SCORE_FIELDS)


def test_the_functions_open_nothing_the_role_cannot(dep):
    """Called by hand as the application role, the functions are held to row-level security and the triggers."""
    d, tokens = dep
    with _conn(d, "owner") as c:
        ids = {(u, n): (i, v) for u, n, i, v in c.execute(
            "select a.unit_code, s.node_code, s.id, s.version from scores s join assessments a on a.id = s.assessment_id")}
        before = c.execute("select count(*), max(id) from audit_log").fetchone()
        snapshot = c.execute("select id, self_score, appraised_score, version from scores order by id").fetchall()
        # the library reads the context's columns by these names, in this order
        names = c.execute("select proargnames from pg_proc where proname = 'parindex_score_context'").fetchone()[0]
        assert names[6:] == list(store_module._SCORE_CONTEXT_COLUMNS)
    b01, a02, a01 = ids[("B01", "1.2")], ids[("A02", "1.2")], ids[("A01", "2.2")]
    ctx = store_module._SCORE_CONTEXT
    upd = store_module._UPDATE_SCORE
    with _conn(d) as c:
        # reading: another tenant's sheet, no token, a forged token
        assert c.execute(ctx, ["B", tokens["eve"], "eve", "B01", 2024, "1.2"]).fetchall() == []
        assert c.execute(ctx, ["B", tokens["eve"], "bao", "B01", 2024, "1.2"]).fetchall() == []
        assert c.execute(ctx, ["A", "", "eve", "A01", 2024, "1.2"]).fetchall() == []
        assert c.execute(ctx, ["A", "x" * 43, "ann", "A01", 2024, "1.2"]).fetchall() == []
        # ... her own tenant, as herself: her membership and the leaf
        row = c.execute(ctx, ["A", tokens["eve"], "eve", "A01", 2024, "1.2"]).fetchone()
        assert row[:3] == ("A", "editor", '["A01"]') and row[-1] is True
        # writing another tenant's score: the row is not there for her
        assert c.execute(upd, _update_call("B", tokens["eve"], "eve", *b01)).fetchone() == (False,)
        assert c.execute(upd, _update_call("A", tokens["eve"], "eve", b01[0], b01[1])).fetchone() == (False,)
        # without a token the row is not there either
        assert c.execute(upd, _update_call("A", "", "eve", *a01)).fetchone() == (False,)
        # the triggers: another unit, an appraisal field, another user's name, an analyst, an appraiser on a draft
        for args, match in [
            (_update_call("A", tokens["eve"], "eve", *a02), "may not change self_score"),
            (_update_call("A", tokens["eve"], "eve", *a01, fields=("appraised_score",)), "appraised_score"),
            (_update_call("A", tokens["eve"], "ann", *a01), "token's user eve"),
            (_update_call("A", tokens["ana"], "ana", *a01), "may not change self_score"),
            (_update_call("A", tokens["apo"], "apo", *a01, fields=("appraised_score",)), "status draft"),
        ]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match=match):
                c.execute(upd, args)
    with _conn(d, "owner") as c:
        assert c.execute("select count(*), max(id) from audit_log").fetchone() == before
        assert c.execute("select id, self_score, appraised_score, version from scores order by id").fetchall() == snapshot


def test_a_dropped_connection_is_tried_once_more(dep):
    d, tokens = dep
    eve = Store(d.app_url, upgrade=False, token=tokens["eve"])
    try:
        with eve.session(tenant="A", user="eve") as s:
            v = int(s.scores(unit_codes="A01").set_index("node_code").loc["1.2", "version"])
            v = s.save_score("A01", 2024, "1.2", expected_version=v, self_score=2.5, reason="before")
            admin = make_url(d.admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
            with psycopg.connect(admin, autocommit=True) as c:
                killed = c.execute("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                                   "where usename = %s and pid <> pg_backend_pid()", [d.app]).fetchone()[0]
            assert killed >= 1
            assert s.save_score("A01", 2024, "1.2", expected_version=v, self_score=3.0, reason="after") == v + 1
    finally:
        eve.dispose()


def test_the_database_refuses_what_the_library_was_told_wrongly(dep):
    """A session that claims another member's name: the library believes it, the database does not."""
    d, tokens = dep
    eve = Store(d.app_url, upgrade=False, token=tokens["eve"])
    try:
        with eve.session(tenant="A", user="ann") as s:  # eve's token, the admin's name
            v = int(s.scores(unit_codes="A02").set_index("node_code").loc["2.2", "version"])
            with pytest.raises(AccessDenied, match=r"database refused.*token's user eve, not ann"):
                s.save_score("A02", 2024, "2.2", expected_version=v, appraised_score=1.0, appraisal_reason="x")
        with eve.session(tenant="A", user="eve") as s:
            with pytest.raises(NotFound, match="no assessment for unit 'A09'"):
                s.save_score("A09", 2024, "1.2", expected_version=1, self_score=1.0)
    finally:
        eve.dispose()


def _downgrade(store: Store, revision: str) -> None:
    from alembic import command

    cfg = store._alembic_config()

    def body(conn):
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)

    store._run(body, write=True)


def test_a_database_before_revision_0004_saves_in_one_transaction(pg_server, small_fw):
    with deployment(pg_server, prefix="save_old") as d:
        owner = Store(d.owner_url)
        two_tenants(owner, small_fw)
        _downgrade(owner, "0003")
        token = owner.issue_access_token("eve", by="test")
        owner.dispose()
        with _conn(d, "owner") as c:
            assert c.execute("select count(*) from pg_proc where proname in ('parindex_score_context', 'parindex_update_score')").fetchone() == (0,)
        eve = Store(d.app_url, upgrade=False, token=token)
        try:
            with eve.session(tenant="A", user="eve") as s:
                v = int(s.scores(unit_codes="A01").set_index("node_code").loc["1.2", "version"])
                assert s.save_score("A01", 2024, "1.2", expected_version=v, self_score=1.5, reason="old") == v + 1
                assert eve._save_functions is False
                assert s.save_score("A01", 2024, "1.2", expected_version=v + 1, self_score=2.5) == v + 2
        finally:
            eve.dispose()
        owner = Store(d.owner_url)  # upgrades to the newest again
        try:
            assert owner.revision() == owner.head_revision() == "0004"
            with _conn(d, "owner") as c:
                assert c.execute("select count(*) from pg_proc where proname in ('parindex_score_context', 'parindex_update_score')").fetchone() == (2,)
        finally:
            owner.dispose()
