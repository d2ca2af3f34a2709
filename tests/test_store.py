"""The store on real databases: a SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import threading
import unicodedata

import numpy as np
import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, func, inspect, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from parindex_lib import models as m
from parindex_lib.errors import AccessDenied, ConflictError, FileRefused, FrameworkIncompleteError, NotFound, \
    ValidationError
from parindex_lib.framework import framework_to_yaml, read_framework_yaml
from parindex_lib.store import AUDIT_COLUMNS, SCORE_COLUMNS, UNIT_COLUMNS, Store

TABLES = {"tenants", "memberships", "units", "frameworks", "assessments", "scores", "evidence", "audit_log",
          "reference_sources", "reference_values"}
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def store(store_url):
    s = Store(store_url)
    yield s
    s.dispose()


@pytest.fixture
def hn(store, small_framework):
    """Tenant 'hn' with admins 'lan' and 'binh', three department units and the shared framework."""
    store.create_tenant("hn", "Sở Nội vụ Hà Nội", admin_user="lan")
    store.add_shared_framework(small_framework)
    with store.session(tenant="hn", user="lan") as s:
        s.set_member("binh", "admin")  # role rules are tested in tests/test_roles.py
        s.upsert_units(pd.DataFrame({
            "code": ["D01", "D02", "D03"], "name": ["Sở Tư pháp", "Sở Tài chính", "Sở Y tế"],
            "kind": ["department"] * 3}))
        s.create_assessment("D01", 2024, "small_test")
    return store


def _count(store: Store, table: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(m.metadata.tables[table])).scalar_one()


# -- schema ---------------------------------------------------------------------

def test_migrations_create_the_schema(store_url):
    store = Store(store_url, upgrade=False)
    try:
        assert store.revision() is None
        assert not TABLES & set(inspect(store.engine).get_table_names())
        store.upgrade()
        assert store.revision() == store.head_revision() and store.head_revision() >= "0002"
        assert TABLES <= set(inspect(store.engine).get_table_names())
        # the migrated schema is exactly the models' schema
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), m.metadata)
        assert diff == []
        store.upgrade()  # a second run changes nothing
        assert store.revision() == store.head_revision()
    finally:
        store.dispose()


def test_opening_upgrades_by_default(store_url):
    with Store(store_url) as store:
        assert store.revision() == store.head_revision()
        assert store.tenants().empty


def test_sqlite_runs_in_wal_with_foreign_keys(sqlite_url, small_framework):
    with Store(sqlite_url) as store:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        # the journal mode is kept in the file itself
        raw = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        raw.close()
        store.create_tenant("hn", "Hà Nội", "lan")
        with store.engine.begin() as conn, pytest.raises(IntegrityError):
            conn.execute(m.assessments.insert().values(
                tenant_id="hn", unit_code="NOPE", year=2024, framework_ref=1, status="draft",
                created_at=dt.datetime.now(dt.timezone.utc), created_by="x",
                updated_at=dt.datetime.now(dt.timezone.utc), updated_by="x", version=1))


def test_database_refuses_rows_pointing_into_another_tenant(store_url, small_framework):
    with Store(store_url) as store:
        for t in ("a", "b"):
            store.create_tenant(t, t.upper(), "u")
        store.add_shared_framework(small_framework)
        with store.session(tenant="b", user="u") as s:
            s.upsert_units(pd.DataFrame({"code": ["X"], "name": ["x"], "kind": ["department"]}))
            s.create_assessment("X", 2024, "small_test")
        with store.engine.connect() as conn:
            b_assessment = conn.execute(select(m.assessments.c.id)).scalar_one()
        with store.engine.begin() as conn, pytest.raises(IntegrityError):
            conn.execute(m.scores.insert().values(
                tenant_id="a", assessment_id=b_assessment, node_code="1.2", version=1, updated_by="u",
                updated_at=dt.datetime.now(dt.timezone.utc)))


def test_default_location_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PARINDEX_DB", raising=False)
    with Store() as store:
        assert (tmp_path / "var" / "parindex.sqlite").is_file()
        assert store.dialect == "sqlite"
    monkeypatch.setenv("PARINDEX_DB", str(tmp_path / "elsewhere" / "db.sqlite"))
    with Store() as store:
        assert (tmp_path / "elsewhere" / "db.sqlite").is_file()
    assert Store("postgresql://u:secret@127.0.0.1:1/x", upgrade=False).url.startswith("postgresql+psycopg://")
    assert "secret" not in repr(Store("postgresql://u:secret@127.0.0.1:1/x", upgrade=False))


@pytest.mark.postgres
def test_postgres_sets_the_tenant_in_every_transaction(pg_url, small_framework):
    with Store(pg_url) as store:
        store.create_tenant("hn", "Hà Nội", "lan")
        seen: list[tuple[str, object]] = []

        def _begin(conn):
            seen.append(("BEGIN", None))

        def _record(conn, cursor, statement, parameters, context, executemany):
            seen.append((statement, parameters))

        event.listen(store.engine, "begin", _begin)
        event.listen(store.engine, "before_cursor_execute", _record)
        with store.session(tenant="hn", user="lan") as s:
            s.units()
            s.upsert_units(pd.DataFrame({"code": ["D01"], "name": ["x"], "kind": ["department"]}))
            s.audit()
        event.remove(store.engine, "begin", _begin)
        event.remove(store.engine, "before_cursor_execute", _record)
        # every transaction (session check, units, upsert, audit) starts by setting the tenant
        starts = [i for i, (st, _) in enumerate(seen) if st == "BEGIN"]
        assert len(starts) == 4
        for i in starts:
            statement, params = seen[i + 1]
            assert "set_config('app.tenant_id'" in statement and params["t"] == "hn"
        # transaction-local: a pooled connection does not carry it over
        with store.engine.connect() as conn:
            assert conn.execute(text("select current_setting('app.tenant_id', true)")).scalar() in (None, "")


# -- round trips ------------------------------------------------------------------

def test_units_round_trip(store):
    store.create_tenant("hn", "Hà Nội", "lan")
    nfd = unicodedata.normalize("NFD", "Phường Hoàn Kiếm")
    units = pd.DataFrame({
        "code": ["P01", "C001", "C002"],
        "name": ["Thành phố Hà Nội", nfd, "Xã Sóc Sơn"],
        "kind": ["province", "commune", "commune"],
        "parent_code": [None, "P01", "P01"],
        "region": ["Đồng bằng sông Hồng"] * 3,
        "active_from": [2020, "2025-07-01", dt.date(2025, 7, 1)],
        "active_to": [2025, None, pd.Timestamp("2030-12-31")],
    })
    with store.session(tenant="hn", user="lan") as s:
        assert s.upsert_units(units) == {"inserted": 3, "updated": 0, "unchanged": 0}
        got = s.units()
        assert list(got.columns) == UNIT_COLUMNS
        assert list(got["code"]) == ["C001", "C002", "P01"]
        row = got.set_index("code").loc["C001"]
        assert row["name"] == "Phường Hoàn Kiếm" == unicodedata.normalize("NFC", nfd)
        assert row["parent_code"] == "P01" and row["kind"] == "commune"
        assert row["active_from"] == pd.Timestamp("2025-07-01") and pd.isna(row["active_to"])
        assert got.set_index("code").loc["C002", "active_to"] == pd.Timestamp("2030-12-31")
        # a bare year: from its first day, to its last
        assert tuple(got.set_index("code").loc["P01", ["active_from", "active_to"]]) == (
            pd.Timestamp("2020-01-01"), pd.Timestamp("2025-12-31"))
        # same table again: nothing changes; a renamed unit updates one row
        assert s.upsert_units(units) == {"inserted": 0, "updated": 0, "unchanged": 3}
        assert s.upsert_units(pd.DataFrame({"code": ["C002"], "name": ["Xã Sóc Sơn mới"], "kind": ["commune"]})) == {
            "inserted": 0, "updated": 1, "unchanged": 0}
        after = s.units().set_index("code")
        assert after.loc["C002", "name"] == "Xã Sóc Sơn mới"
        assert after.loc["C002", "region"] == "Đồng bằng sông Hồng"  # an absent column keeps its value


def test_units_refused_with_every_problem(store):
    store.create_tenant("hn", "Hà Nội", "lan")
    bad = pd.DataFrame({"code": ["A", "A", "", "B"], "name": ["a", "b", "c", ""],
                        "kind": ["department", "village", "commune", "commune"],
                        "parent_code": [None, None, None, "ZZZ"]})
    with store.session(tenant="hn", user="lan") as s:
        with pytest.raises(ValidationError) as err:
            s.upsert_units(bad)
        f = err.value.failures
        assert set(zip(f["row"], f["column"])) == {(3, "kind"), (4, "code"), (5, "name"), (3, "code")}
        with pytest.raises(ValidationError) as err:
            s.upsert_units(bad.iloc[[0, 3]].assign(name=["a", "b"]))
        assert list(err.value.failures["column"]) == ["parent_code"]
        assert s.units().empty


def test_framework_round_trip(store, small_framework):
    store.create_tenant("hn", "Hà Nội", "lan")
    with store.session(tenant="hn", user="lan") as s:
        res = s.add_framework(small_framework)
        assert res["action"] == "insert"
        assert res["checksum"] == hashlib.sha256(framework_to_yaml(small_framework).encode()).hexdigest()
        got = s.framework("small_test")
        pd.testing.assert_frame_equal(got.nodes, small_framework.nodes)
        assert framework_to_yaml(got) == framework_to_yaml(small_framework)
        assert (got.bonus_cap, got.penalty_cap, got.kinds) == (2, 3, ("department", "commune"))
        listed = s.frameworks()
        assert list(listed.columns) == ["framework_id", "name_vi", "level", "status", "shared"]
        assert listed.to_dict("records") == [{"framework_id": "small_test", "name_vi": small_framework.name_vi,
                                              "level": "department", "status": "demo", "shared": False}]
        assert s.add_framework(small_framework)["action"] == "unchanged"
        changed = small_framework.replace(name_vi="Tên mới")
        assert s.add_framework(changed)["action"] == "update"
        assert s.framework("small_test").name_vi == "Tên mới"
        with pytest.raises(NotFound, match="no framework 'nope'"):
            s.framework("nope")


def test_framework_in_use_cannot_change(hn, small_framework):
    # a tenant copy under another id, used by an assessment, keeps its tree
    with hn.session(tenant="hn", user="lan") as s:
        own = small_framework.replace(id="own_set")
        s.add_framework(own)
        s.create_assessment("D02", 2024, "own_set")
        with pytest.raises(ValidationError, match="already used by 1 assessment"):
            s.add_framework(own.replace(name_vi="changed"))
    with pytest.raises(ValidationError, match="already used"):
        hn.add_shared_framework(small_framework.replace(notes="changed"))


def test_incomplete_framework_cannot_score(store):
    store.create_tenant("hn", "Hà Nội", "lan")
    fw = read_framework_yaml("""
id: partial
name_vi: Bộ chưa đủ
level: department
max_points: 10
status: incomplete
nodes:
  - {code: "1", name_vi: a, max_points: 4}
  - {code: "2", name_vi: b, max_points: null}
""")
    with store.session(tenant="hn", user="lan") as s:
        s.add_framework(fw)
        s.upsert_units(pd.DataFrame({"code": ["D01"], "name": ["x"], "kind": ["department"]}))
        with pytest.raises(FrameworkIncompleteError, match="2"):
            s.create_assessment("D01", 2024, "partial")
        assert s.assessments().empty


def test_assessment_checks_unit_kind_and_year(hn):
    with hn.session(tenant="hn", user="lan") as s:
        s.upsert_units(pd.DataFrame({"code": ["P01"], "name": ["Tỉnh"], "kind": ["province"]}))
        with pytest.raises(ValidationError, match="does not fit") as err:
            s.create_assessment("P01", 2024, "small_test")
        assert "department, commune" in str(err.value)
        with pytest.raises(ValidationError, match="2023, 2024, 2025"):
            s.create_assessment("D02", 2019, "small_test")
        with pytest.raises(ValidationError, match="without an assessment"):
            s.create_assessment("D01", 2024, "small_test")
        with pytest.raises(NotFound, match="no unit 'D99'"):
            s.create_assessment("D99", 2024, "small_test")
        a = s.create_assessment("D02", 2024, "small_test", deadline="2025-01-31")
        assert a["status"] == "draft" and a["version"] == 1 and a["framework_id"] == "small_test"
        assert a["deadline"] == dt.datetime(2025, 1, 31, 16, 59, 59, tzinfo=dt.timezone.utc)  # 23:59:59 in Vietnam
        assert s.assessment("D02", 2024) == a
        table = s.assessments(year=2024)
        assert list(table["unit_code"]) == ["D01", "D02"]


def test_scores_round_trip(hn):
    with hn.session(tenant="hn", user="binh") as s:
        assert s.save_score("D01", 2024, "1.1.1", expected_version=0, self_score="0,5",
                            explanation="Ban hành chậm 3 ngày", evidence="KH số 12/KH-UBND") == 1
        assert s.save_score("D01", 2024, "2.1", expected_version=0, survey_points=7.25) == 1
        assert s.save_score("D01", 2024, "1.2", expected_version=0, self_score=4, bonus=1.5, penalty=0.5,
                            evidence="BC số 5/BC-SNV") == 1
        got = s.scores()
        assert list(got.columns) == SCORE_COLUMNS
        assert list(got["node_code"]) == ["1.1.1", "1.2", "2.1"]  # tree order
        r = got.set_index("node_code")
        assert r.loc["1.1.1", "self_score"] == 0.5 and np.isnan(r.loc["1.1.1", "appraised_score"])
        assert r.loc["1.1.1", "explanation"] == "Ban hành chậm 3 ngày"
        assert r.loc["1.1.1", "evidence"] == "KH số 12/KH-UBND"
        assert r.loc["2.1", "survey_points"] == 7.25 and np.isnan(r.loc["2.1", "self_score"])
        assert (r.loc["1.2", "bonus"], r.loc["1.2", "penalty"]) == (1.5, 0.5)
        assert set(r["updated_by"]) == {"binh"} and set(r["version"]) == {1}
        assert str(got["updated_at"].dtype) .endswith("UTC]")
        for c in ("self_score", "appraised_score", "survey_points", "bonus", "penalty"):
            assert got[c].dtype == np.float64
        full = s.scores(all_leaves=True)
        assert list(full["node_code"]) == ["1.1.1", "1.1.2", "1.2", "2.1", "2.2"]
        assert list(full["version"]) == [1, 0, 1, 1, 0]
        assert full["self_score"].isna().sum() == 3
        # appraisal round: appraised score with a reason, then the unit's response
        v = s.save_score("D01", 2024, "1.2", expected_version=1, appraised_score=3.5,
                         appraisal_reason="Thiếu báo cáo quý IV", appraisal_round=1)
        v = s.save_score("D01", 2024, "1.2", expected_version=v, unit_response="Đã bổ sung báo cáo")
        r = s.scores(unit_codes="D01", year=2024).set_index("node_code").loc["1.2"]
        assert (r["self_score"], r["appraised_score"], r["appraisal_round"], r["version"]) == (4.0, 3.5, 1, 3)
        assert r["unit_response"] == "Đã bổ sung báo cáo"
        # saving the stored values again is not a change
        assert s.save_score("D01", 2024, "1.2", expected_version=3, self_score="4", bonus=1.5) == 3
        # clearing a value
        s.save_score("D01", 2024, "1.2", expected_version=3, bonus=None)
        assert np.isnan(s.scores().set_index("node_code").loc["1.2", "bonus"])
        assert s.scores(year=2023).empty and s.scores(unit_codes=["D02"]).empty


def test_save_score_validation(hn):
    with hn.session(tenant="hn", user="binh") as s:
        cases = [
            ({"self_score": 3}, "1.1.2", "self_score", "between 0 and 2"),
            ({"self_score": -1}, "1.1.2", "self_score", "between 0 and 2"),
            ({"self_score": 0.7}, "1.1.1", "self_score", "rubric levels of node 1.1.1: 1, 0.5, 0"),
            ({"self_score": 5}, "2.1", "self_score", "assessed by survey"),
            ({"survey_points": 1}, "1.2", "survey_points", "assessed by self"),
            ({"survey_points": 11}, "2.1", "survey_points", "between 0 and 10"),
            ({"bonus": 2.5}, "1.2", "bonus", "cap"),
            ({"penalty": -1}, "1.2", "penalty", "between 0 and 3"),
            ({"self_score": "abc"}, "1.2", "self_score", "a number"),
            ({"appraisal_round": 0}, "1.2", "appraisal_round", "round"),
            ({"self_score": 1}, "1", "node_code", "leaf node"),
            ({"self_score": 1}, "9.9", "node_code", "leaf node"),
            ({"colour": "red"}, "1.2", "colour", "one of self_score"),
        ]
        for values, node, column, expected in cases:
            with pytest.raises(ValidationError) as err:
                s.save_score("D01", 2024, node, expected_version=0, **values)
            f = err.value.failures
            assert list(f.columns) == ["file", "sheet", "row", "column", "value", "expected"]
            assert list(f["column"]) == [column], (values, f)
            assert expected in f["expected"].iloc[0], (values, f["expected"].iloc[0])
        # several problems at once
        with pytest.raises(ValidationError) as err:
            s.save_score("D01", 2024, "1.2", expected_version=0, self_score=9, bonus=-1, survey_points=1)
        assert sorted(err.value.failures["column"]) == ["bonus", "self_score", "survey_points"]
        with pytest.raises(NotFound):
            s.save_score("D01", 2023, "1.2", expected_version=0, self_score=1)
        with pytest.raises(ValidationError, match="nothing to save"):
            s.save_score("D01", 2024, "1.2", expected_version=0)
        assert s.scores().empty


# -- optimistic concurrency --------------------------------------------------------

def test_version_conflict_and_resolution(hn):
    with hn.session(tenant="hn", user="lan") as lan, hn.session(tenant="hn", user="binh") as binh:
        lan.save_score("D01", 2024, "1.2", expected_version=0, self_score=2, explanation="tự đánh giá")
        # both read version 1
        v_lan = lan.scores().set_index("node_code").loc["1.2", "version"]
        v_binh = binh.scores().set_index("node_code").loc["1.2", "version"]
        assert v_lan == v_binh == 1
        assert lan.save_score("D01", 2024, "1.2", expected_version=v_lan, self_score=4, reason="đủ hồ sơ") == 2
        with pytest.raises(ConflictError) as err:
            binh.save_score("D01", 2024, "1.2", expected_version=v_binh, self_score=3)
        e = err.value
        assert (e.field, e.yours, e.theirs, e.current_version, e.changed_by) == ("self_score", 3.0, 4.0, 2, "lan")
        assert "unit D01, 2024, node 1.2" in str(e)
        assert binh.scores().set_index("node_code").loc["1.2", "self_score"] == 4.0  # the loser wrote nothing
        # the second writer resolves by saving again with the current version
        assert binh.save_score("D01", 2024, "1.2", expected_version=e.current_version, self_score=3) == 3
        row = lan.scores().set_index("node_code").loc["1.2"]
        assert (row["self_score"], row["version"], row["updated_by"]) == (3.0, 3, "binh")
        # a leaf first saved by two people at once: the second insert conflicts too
        lan.save_score("D01", 2024, "2.2", expected_version=0, self_score=1, explanation="a")
        with pytest.raises(ConflictError) as err:
            binh.save_score("D01", 2024, "2.2", expected_version=0, self_score=2, explanation="b")
        assert (err.value.theirs, err.value.current_version) == (1.0, 1)


def test_concurrent_writers_exactly_one_wins(hn):
    with hn.session(tenant="hn", user="lan") as s:
        s.save_score("D01", 2024, "1.1.2", expected_version=0, self_score=0, explanation="chưa thực hiện")
    n = 6
    barrier = threading.Barrier(n)
    outcomes: list[object] = [None] * n

    def writer(i: int) -> None:
        with hn.session(tenant="hn", user="lan") as s:
            barrier.wait()
            try:
                outcomes[i] = s.save_score("D01", 2024, "1.1.2", expected_version=1, self_score=(i + 1) * 0.25)
            except ConflictError as exc:
                outcomes[i] = exc

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    wins = [i for i, o in enumerate(outcomes) if o == 2]
    assert len(wins) == 1, outcomes
    assert all(isinstance(o, ConflictError) and o.current_version == 2 for i, o in enumerate(outcomes) if i != wins[0])
    with hn.session(tenant="hn", user="lan") as s:
        row = s.scores().set_index("node_code").loc["1.1.2"]
        assert (row["version"], row["self_score"]) == (2, (wins[0] + 1) * 0.25)


# -- audit ----------------------------------------------------------------------------

def test_every_write_is_audited(hn):
    with hn.session(tenant="hn", user="binh") as s:
        before = len(s.audit())
        s.save_score("D01", 2024, "1.2", expected_version=0, self_score=2, explanation="x", reason="tự chấm")
        s.save_score("D01", 2024, "1.2", expected_version=1, self_score=2.5, explanation="x", reason="sửa")
        log = s.audit()
        assert list(log.columns) == AUDIT_COLUMNS
        new = log.head(len(log) - before)
        assert len(new) == 3  # insert: two values; update: only the changed one
        latest = new.iloc[0]
        assert (latest["user_name"], latest["table_name"], latest["row_key"], latest["field"], latest["old_value"],
                latest["new_value"], latest["reason"], latest["action"]) == (
            "binh", "scores", "D01/2024/1.2", "self_score", "2.0", "2.5", "sửa", "update")
        inserted = new.iloc[1:].sort_values("field")
        assert list(inserted["field"]) == ["explanation", "self_score"]
        assert inserted["old_value"].isna().all() and list(inserted["new_value"]) == ["x", "2.0"]
        assert set(inserted["reason"]) == {"tự chấm"} and set(inserted["action"]) == {"insert"}
        assert (log["at"].diff().dropna() <= pd.Timedelta(0)).all()  # newest first
        assert str(log["at"].dtype).endswith("UTC]")
        assert abs(log["at"].iloc[0] - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(minutes=1)
        assert len(s.audit(limit=2)) == 2
    with hn.session(tenant="hn", user="lan") as s:
        s.set_status("D01", 2024, "submitted", reason="nộp")
        s.upsert_units(pd.DataFrame({"code": ["D03"], "name": ["Sở Y tế (mới)"], "kind": ["department"]}),
                       reason="đổi tên")
        s.add_evidence("D01", 2024, "1.2", name="bao_cao.pdf", content=PDF)
        s.set_member("an", "analyst")
        log = s.audit()
        assert {"tenants", "memberships", "units", "assessments", "scores", "evidence"} <= set(log["table_name"])
        status = log[(log["table_name"] == "assessments") & (log["field"] == "status")].iloc[0]
        assert (status["old_value"], status["new_value"], status["reason"], status["user_name"]) == (
            "draft", "submitted", "nộp", "lan")
        unit = log[(log["table_name"] == "units") & (log["action"] == "update")].iloc[0]
        assert (unit["row_key"], unit["old_value"], unit["new_value"], unit["reason"]) == (
            "D03", "Sở Y tế", "Sở Y tế (mới)", "đổi tên")


# -- write_scores ---------------------------------------------------------------------

def _long_table(units: list[str], year: int = 2024, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in units:
        rows.append({"unit_code": u, "year": year, "node_code": "1.1.1", "self_score": rng.choice([0, 0.5, 1])})
        rows.append({"unit_code": u, "year": year, "node_code": "1.1.2", "self_score": round(rng.uniform(0, 2), 2)})
        rows.append({"unit_code": u, "year": year, "node_code": "1.2", "self_score": round(rng.uniform(0, 5), 2),
                     "bonus": 1.0})
        rows.append({"unit_code": u, "year": year, "node_code": "2.1", "survey_points": round(rng.uniform(0, 10), 2)})
        rows.append({"unit_code": u, "year": year, "node_code": "2.2", "self_score": 2.0, "explanation": "đúng hạn"})
    return pd.DataFrame(rows)


def test_write_scores_stores_the_table(hn):
    df = _long_table(["D01", "D02", "D03"])
    with hn.session(tenant="hn", user="binh") as s:
        res = s.write_scores(df, source="diem_2024.xlsx", framework_id="small_test")
        assert res["rows"] == 15 and res["inserted"] == 15 and res["assessments_created"] == 2
        # one audit row per value: the non-blank cells of the value columns
        assert res["audit_rows"] == int(df[["self_score", "bonus", "survey_points", "explanation"]].notna().sum().sum()) + 2 * 2
        got = s.scores()
        assert len(got) == 15
        # totals per unit, computed independently from the input table
        points = got["self_score"].fillna(0) + got["survey_points"].fillna(0)
        expected = (df["self_score"].fillna(0) + df["survey_points"].fillna(0)).groupby(df["unit_code"]).sum()
        pd.testing.assert_series_equal(points.groupby(got["unit_code"]).sum(), expected, check_names=False)
        assert got["bonus"].sum() == pytest.approx(3.0)
        assert set(s.assessments()["status"]) == {"draft"}
        # the same file again changes nothing
        again = s.write_scores(df, source="diem_2024.xlsx")
        assert (again["inserted"], again["updated"], again["unchanged"], again["audit_rows"]) == (0, 0, 15, 0)
        # a corrected file: only changed values are written and audited
        fixed = df.copy()
        fixed.loc[fixed["node_code"] == "1.2", "self_score"] = 5.0
        n_changed = int((df.loc[df["node_code"] == "1.2", "self_score"] != 5.0).sum())
        before = len(s.audit())
        res = s.write_scores(fixed, source="diem_2024_v2.xlsx")
        assert res["updated"] == n_changed and res["audit_rows"] == n_changed
        log = s.audit().head(len(s.audit()) - before)
        assert set(log["reason"]) == {"import diem_2024_v2.xlsx"} and set(log["new_value"]) == {"5.0"}
        assert set(s.scores().query("node_code == '1.2'")["version"]) == {2}


def test_write_scores_is_all_or_nothing(hn):
    df = _long_table(["D01", "D02", "D03"])
    bad = pd.concat([df, pd.DataFrame([{"unit_code": "D03", "year": 2024, "node_code": "1.1.2", "self_score": 9}])],
                    ignore_index=True)
    bad = bad.drop_duplicates(["unit_code", "year", "node_code"], keep="last").reset_index(drop=True)
    counts = {t: _count(hn, t) for t in ("scores", "assessments", "audit_log")}
    with hn.session(tenant="hn", user="binh") as s:
        with pytest.raises(ValidationError, match="nothing was written") as err:
            s.write_scores(bad, source="diem.xlsx", framework_id="small_test")
        f = err.value.failures
        assert len(f) == 1
        assert (f["file"].iloc[0], f["row"].iloc[0], f["column"].iloc[0], f["value"].iloc[0]) == (
            "diem.xlsx", len(bad) + 1, "self_score", 9)
    assert {t: _count(hn, t) for t in counts} == counts


def test_write_scores_lists_every_problem(hn):
    df = pd.DataFrame([
        {"unit_code": "D01", "year": 2024, "node_code": "1.1.1", "self_score": "0,5"},   # ok: decimal comma
        {"unit_code": "D01", "year": 2024, "node_code": "1.1.1", "self_score": 1},       # duplicate
        {"unit_code": "D09", "year": 2024, "node_code": "1.2", "self_score": 1},         # unknown unit
        {"unit_code": "D01", "year": 2024, "node_code": "1", "self_score": 1},           # not a leaf
        {"unit_code": "D01", "year": 2024, "node_code": "2.1", "self_score": 1},         # survey node
        {"unit_code": "D01", "year": 2024, "node_code": "1.2", "self_score": "năm"},     # not a number
        {"unit_code": "D01", "year": "20x4", "node_code": "1.2", "self_score": 1},       # bad year
        {"unit_code": "D02", "year": 2024, "node_code": "1.2", "self_score": 1},         # no assessment
    ])
    with hn.session(tenant="hn", user="binh") as s:
        with pytest.raises(ValidationError) as err:
            s.write_scores(df, source="x.csv")
        f = err.value.failures
        assert list(zip(f["row"], f["column"])) == [
            (3, "node_code"), (4, "unit_code"), (5, "node_code"), (6, "self_score"), (7, "self_score"),
            (8, "year"), (9, "year")]
        assert "create it, or pass framework_id" in f.loc[f["row"] == 9, "expected"].iloc[0]
        with pytest.raises(ValidationError, match="self_scor"):
            s.write_scores(df.rename(columns={"self_score": "self_scor"}), source="x.csv")
        assert s.scores().empty


def test_write_scores_stores_a_large_table_in_one_call(hn):
    # its speed is measured by the benchmarks in bench/, not here
    units = pd.DataFrame({"code": [f"X{i:04d}" for i in range(2000)], "name": "Xã", "kind": "commune"})
    with hn.session(tenant="hn", user="lan") as s:
        s.upsert_units(units)
        df = _long_table(list(units["code"]))
        assert len(df) == 10_000
        res = s.write_scores(df, source="big.xlsx", framework_id="small_test")
        assert res["inserted"] == 10_000 and res["assessments_created"] == 2000
        got = s.scores(unit_codes=list(units["code"]))
        assert len(got) == 10_000
        mine = got.set_index(["unit_code", "node_code"])
        want = df.set_index(["unit_code", "node_code"])
        pd.testing.assert_series_equal(mine["self_score"].sort_index(), want["self_score"].astype(float).sort_index(),
                                       check_names=False)


# -- business rules ---------------------------------------------------------------------

def test_a_self_score_needs_evidence_or_an_explanation(hn, small_framework):
    with hn.session(tenant="hn", user="lan") as s:
        with pytest.raises(ValidationError, match="node 1.2") as err:
            s.save_score("D01", 2024, "1.2", expected_version=0, self_score=4)
        f = err.value.failures
        assert list(f["column"]) == ["explanation"]
        assert "an explanation when there is no evidence" in f["expected"].iloc[0]
        assert "node 1.2" in f["expected"].iloc[0]
        assert s.scores().empty
        # any one of them is enough: an explanation, evidence text, an evidence file or link
        assert s.save_score("D01", 2024, "1.2", expected_version=0, self_score=4, explanation="Đã báo cáo") == 1
        assert s.save_score("D01", 2024, "1.1.2", expected_version=0, self_score=1, evidence="KH 12/KH") == 1
        s.add_evidence("D01", 2024, "2.2", name="bc.pdf", content=PDF)
        assert s.save_score("D01", 2024, "2.2", expected_version=0, self_score=2) == 1
        s.add_evidence("D01", 2024, "1.1.1", name="Cổng", url="https://dichvucong.gov.vn/p/home")
        assert s.save_score("D01", 2024, "1.1.1", expected_version=0, self_score=1) == 1
        # the stored explanation counts; clearing it while nothing else stands for it is refused
        assert s.save_score("D01", 2024, "1.2", expected_version=1, self_score=4.5) == 2
        with pytest.raises(ValidationError, match="an explanation when there is no evidence"):
            s.save_score("D01", 2024, "1.2", expected_version=2, explanation=None)
        assert s.save_score("D01", 2024, "1.1.2", expected_version=1, explanation="thay bằng giải trình",
                            evidence=None) == 2
        # survey points are no self score; a cleared self score needs nothing
        assert s.save_score("D01", 2024, "2.1", expected_version=0, survey_points=5) == 1
        assert s.save_score("D01", 2024, "1.1.2", expected_version=2, self_score=None, explanation=None) == 3
    # a leaf whose framework does not require evidence
    nodes = small_framework.nodes.copy()
    nodes.loc[nodes["code"] == "2.2", "evidence_required"] = False
    with hn.session(tenant="hn", user="lan") as s:
        s.add_framework(small_framework.replace(id="own_set", nodes=nodes))
        s.create_assessment("D02", 2024, "own_set")
        assert s.save_score("D02", 2024, "2.2", expected_version=0, self_score=2) == 1
        with pytest.raises(ValidationError, match="node 1.2"):
            s.save_score("D02", 2024, "1.2", expected_version=0, self_score=2)


def test_an_appraised_score_that_differs_needs_a_reason(hn):
    with hn.session(tenant="hn", user="lan") as s:
        s.save_score("D01", 2024, "1.2", expected_version=0, self_score=4, explanation="đủ")
        s.set_status("D01", 2024, "submitted")
        with pytest.raises(ValidationError, match="node 1.2") as err:
            s.save_score("D01", 2024, "1.2", expected_version=1, appraised_score=3)
        f = err.value.failures
        assert list(f["column"]) == ["appraisal_reason"]
        assert "differs from the self score" in f["expected"].iloc[0] and "node 1.2" in f["expected"].iloc[0]
        assert s.save_score("D01", 2024, "1.2", expected_version=1, appraised_score="4,0") == 2  # the same: no reason
        with pytest.raises(ValidationError, match="appraisal_reason"):
            s.save_score("D01", 2024, "1.2", expected_version=2, appraised_score=3.5)
        v = s.save_score("D01", 2024, "1.2", expected_version=2, appraised_score=3.5, appraisal_reason="Thiếu quý IV")
        with pytest.raises(ValidationError, match="appraisal_reason"):  # the reason cannot go while the gap stays
            s.save_score("D01", 2024, "1.2", expected_version=v, appraisal_reason=None)
        # an appraised score on a leaf without a self score differs from it
        with pytest.raises(ValidationError, match="no self score"):
            s.save_score("D01", 2024, "2.2", expected_version=0, appraised_score=2)
        # rules come after the role checks: a refusal names the role first
    with hn.session(tenant="hn", user="lan") as s:
        s.set_member("apo", "appraiser")
    with hn.session(tenant="hn", user="apo") as s:
        with pytest.raises(AccessDenied, match="self_score"):
            s.save_score("D01", 2024, "1.1.2", expected_version=0, self_score=1)


def test_the_rule_helpers():
    from parindex_lib.store import needs_explanation, needs_reason

    assert needs_explanation({"self_score": 0.0})  # zero points is a score
    assert not needs_explanation({"self_score": float("nan")})
    assert not needs_explanation({"self_score": 1, "evidence": " x "})
    assert needs_explanation({"self_score": 1, "evidence": "  ", "explanation": None})
    assert needs_reason({"self_score": float("nan"), "appraised_score": 1.0})
    assert not needs_reason({"self_score": 1, "appraised_score": 1 + 1e-12})
    assert not needs_reason({"self_score": 1, "appraised_score": "ba"})  # not a number: the range check says so


def test_write_scores_applies_the_appraisal_rule_and_on_request_the_evidence_rule(hn):
    table = pd.DataFrame({"unit_code": ["D01", "D01", "D01", "D01"], "year": 2024,
                          "node_code": ["1.1.1", "1.1.2", "1.2", "2.2"],
                          "self_score": [1, 1.5, 4, 2], "appraised_score": [1, 1, None, 1],
                          "appraisal_reason": ["", "", "", "Thiếu hồ sơ"]})
    with hn.session(tenant="hn", user="lan") as s:
        before = len(s.audit())
        with pytest.raises(ValidationError, match="nothing was written") as err:
            s.write_scores(table, source="thamdinh.xlsx")
        f = err.value.failures
        assert list(zip(f["row"], f["column"])) == [(3, "appraisal_reason")]
        assert "unit D01, node 1.1.2" in f["expected"].iloc[0] and "self score 1.5" in f["expected"].iloc[0]
        assert s.scores().empty and len(s.audit()) == before
        # self scores without evidence or explanation import by default (score files rarely carry evidence)
        ok = table.drop(index=1)
        assert s.write_scores(ok, source="thamdinh.xlsx")["inserted"] == 3
        # a later file with appraised scores only: the stored self score and reason count
        later = pd.DataFrame({"unit_code": ["D01", "D01", "D01"], "year": 2024, "node_code": ["1.2", "2.2", "1.1.1"],
                              "appraised_score": [3, 1.5, 1]})
        with pytest.raises(ValidationError) as err:
            s.write_scores(later, source="vong2.xlsx", require_reasons=True)
        assert list(zip(err.value.failures["row"], err.value.failures["column"])) == [(2, "appraisal_reason")]
        assert s.write_scores(later.iloc[1:], source="vong2.xlsx", require_reasons=True)["updated"] == 1
        # a table without a reason column (the importer reads none from files) is checked only on request
        assert s.write_scores(later.iloc[:1], source="vong2.xlsx")["updated"] == 1
        with pytest.raises(ValidationError, match="appraisal_reason"):
            s.write_scores(later.iloc[:1].assign(appraised_score=2.5, appraisal_reason=""), source="vong2.xlsx")
        # require_explanations: every self score without evidence or explanation is listed, by unit and node
        s.add_evidence("D01", 2024, "1.1.2", name="kh.pdf", content=PDF)
        strict = pd.DataFrame({"unit_code": ["D01", "D01", "D01", "D02", "D02"], "year": 2024,
                               "node_code": ["1.1.2", "1.2", "2.2", "1.2", "2.2"], "self_score": [1, 4, 2, 3, 2],
                               "explanation": ["", "", "", "đủ", ""]})
        with pytest.raises(ValidationError) as err:
            s.write_scores(strict, source="tucham.xlsx", framework_id="small_test", require_explanations=True)
        f = err.value.failures
        assert list(zip(f["row"], f["column"])) == [(3, "explanation"), (4, "explanation"), (6, "explanation")]
        assert ["unit D01, node 1.2" in f["expected"].iloc[0], "unit D01, node 2.2" in f["expected"].iloc[1],
                "unit D02, node 2.2" in f["expected"].iloc[2]] == [True] * 3
        assert all("an explanation when there is no evidence" in e for e in f["expected"])
        fixed = strict.assign(explanation=["", "đủ", "", "đủ", "đủ"])  # D01 1.1.2 has an evidence file
        with pytest.raises(ValidationError) as err:
            s.write_scores(fixed, source="tucham.xlsx", framework_id="small_test", require_explanations=True)
        assert list(err.value.failures["row"]) == [4]  # D01 2.2: an appraisal reason is no explanation
        fixed.loc[2, "explanation"] = "đúng hạn"
        assert s.write_scores(fixed, source="tucham.xlsx", framework_id="small_test",
                              require_explanations=True)["assessments_created"] == 1


def test_write_scores_names_the_spreadsheet_rows_the_reader_found(hn):
    df = pd.DataFrame({"unit_code": ["D01", "D01", "D01"], "year": 2024, "node_code": ["1.1.2", "1.2", "2.2"],
                       "self_score": [1, 9, 2], "bonus": [None, None, 5]})
    df.attrs.update(rows=[7, 9, 12], file="diem.xlsx", sheet="Điểm")
    with hn.session(tenant="hn", user="lan") as s:
        with pytest.raises(ValidationError) as err:
            s.write_scores(df, source="upload-17")
        f = err.value.failures
        assert list(zip(f["file"], f["sheet"], f["row"], f["column"])) == [
            ("diem.xlsx", "Điểm", 9, "self_score"), ("diem.xlsx", "Điểm", 12, "bonus")]
        # rows that do not match the table (a filtered copy) are not used
        part = df.iloc[1:]
        assert part.attrs["rows"] == [7, 9, 12]
        with pytest.raises(ValidationError) as err:
            s.write_scores(part, source="upload-17")
        assert list(err.value.failures["row"]) == [2, 3]
        # an explicit row column wins; the reader's source names the file and sheet
        plain = df.copy()
        plain.attrs = {"source": {"file": "b.csv", "sheet": None, "header_row": 3}}
        with pytest.raises(ValidationError) as err:
            s.write_scores(plain.assign(row=[20, 21, 22]), source="upload-18")
        f = err.value.failures
        assert list(f["row"]) == [21, 22] and set(f["file"]) == {"b.csv"} and f["sheet"].isna().all()
        # a wide sheet gives several long rows per spreadsheet row: one failure for the same problem
        wide = pd.DataFrame({"unit_code": ["D03", "D03"], "year": 2024, "node_code": ["1.2", "2.2"],
                             "self_score": [1, 1]})
        wide.attrs.update(rows=[3, 3], file="rong.xlsx", sheet="S")
        s.create_assessment("D03", 2024, "small_test")
        for status in ("submitted", "appraised", "published"):
            s.set_status("D03", 2024, status)
        with pytest.raises(ValidationError) as err:
            s.write_scores(wide, source="rong.xlsx")
        f = err.value.failures
        assert len(f) == 1 and (f["row"].iloc[0], f["column"].iloc[0]) == (3, "year")
        assert "is published" in f["expected"].iloc[0]


def test_a_nul_character_is_refused_with_a_failure_table(hn):
    # PostgreSQL cannot store U+0000 in text: both backends refuse it the same way
    with hn.session(tenant="hn", user="lan") as s:
        with pytest.raises(ValidationError) as err:
            s.save_score("D01", 2024, "1.2", expected_version=0, self_score=1, explanation="Đã\x00 báo cáo")
        f = err.value.failures
        assert list(f["column"]) == ["explanation"] and "NUL" in f["expected"].iloc[0]
        assert "\x00" not in f["value"].iloc[0] and "\\x00" in f["value"].iloc[0]
        with pytest.raises(ValidationError, match="reason"):
            s.save_score("D01", 2024, "1.2", expected_version=0, self_score=1, explanation="x", reason="a\x00")
        table = pd.DataFrame({"unit_code": ["D01", "D01"], "year": 2024, "node_code": ["1.2", "2.2"],
                              "self_score": [1, 2], "explanation": ["ok", "bad\x00"], "evidence": ["\x00", ""]})
        with pytest.raises(ValidationError) as err:
            s.write_scores(table, source="nul.csv")
        assert list(zip(err.value.failures["row"], err.value.failures["column"])) == [(2, "evidence"),
                                                                                     (3, "explanation")]
        with pytest.raises(ValidationError) as err:
            s.upsert_units(pd.DataFrame({"code": ["D09"], "name": ["Sở\x00"], "kind": ["department"]}))
        assert list(err.value.failures["column"]) == ["name"]
        with pytest.raises(ValidationError, match="reason"):
            s.save_action("D01", 2024, "1.2", action="Kế hoạch", reason="\x00")
        with pytest.raises(ValidationError) as err:
            s.save_action("D01", 2024, "1.2", action="Kế\x00 hoạch")
        assert list(err.value.failures["column"]) == ["action"]
        assert s.scores().empty and list(s.units()["code"]) == ["D01", "D02", "D03"]
        assert s.action_plan("D01", 2024).empty


# -- bonus and penalty -----------------------------------------------------------------------

def test_set_adjustment_keeps_bonus_and_penalty_on_one_row_within_the_caps(hn):
    from parindex_lib.aggregation import roll_up

    with hn.session(tenant="hn", user="lan") as s:
        s.write_scores(pd.DataFrame({"unit_code": "D01", "year": 2024, "node_code": ["1.1.2", "1.2", "2.2"],
                                     "self_score": [1, 4, 2], "bonus": [None, 1.0, 0.5]}), source="a.xlsx")
        fw = s.framework("small_test")
        assert roll_up(s.scores(), fw).set_index("node_code").loc["total", "points"] == 8.5  # 7 + capped 1.5
        res = s.set_adjustment("D01", 2024, bonus="1,5", reason="Sáng kiến cấp tỉnh")
        # the first row already holding a bonus keeps it, the other bonus moves there
        assert res == {"node_code": "1.2", "bonus": 1.5, "penalty": None, "version": 2, "moved_from": ["2.2"]}
        rows = s.scores().set_index("node_code")
        assert rows["bonus"].sum() == 1.5 and rows.loc["2.2", "bonus"] != rows.loc["2.2", "bonus"]
        res = s.set_adjustment("D01", 2024, penalty=1, reason="Chậm báo cáo")
        assert (res["node_code"], res["bonus"], res["penalty"], res["moved_from"]) == ("1.2", 1.5, 1.0, [])
        assert roll_up(s.scores(), fw).set_index("node_code").loc["total", "points"] == 7.5
        log = s.audit(table_name="scores", unit_code="D01", year=2024)
        log = log[log["field"].isin(["bonus", "penalty"]) & (log["reason"] != "import a.xlsx")]
        assert sorted(zip(log["row_key"], log["field"], log["new_value"].fillna(""), log["reason"])) == [
            ("D01/2024/1.2", "bonus", "1.5", "Sáng kiến cấp tỉnh"), ("D01/2024/1.2", "penalty", "1.0", "Chậm báo cáo"),
            ("D01/2024/2.2", "bonus", "", "Sáng kiến cấp tỉnh")]
        # over the caps, negative, without a reason or a value: refused, nothing changes
        for kwargs, column in ((dict(bonus=2.5, reason="x"), "bonus"), (dict(penalty=3.5, reason="x"), "penalty"),
                               (dict(bonus=-1, reason="x"), "bonus"), (dict(bonus=1, reason=" "), "reason"),
                               (dict(reason="x"), "bonus")):
            with pytest.raises(ValidationError) as err:
                s.set_adjustment("D01", 2024, **kwargs)
            assert column in list(err.value.failures["column"]), kwargs
        assert s.scores().set_index("node_code").loc["1.2", ["bonus", "penalty"]].tolist() == [1.5, 1.0]
        # NaN clears; an assessment without rows gets one on its first self-assessed leaf
        assert s.set_adjustment("D01", 2024, bonus=float("nan"), reason="huỷ")["bonus"] is None
        s.create_assessment("D02", 2024, "small_test")
        res = s.set_adjustment("D02", 2024, bonus=2, penalty=0, reason="x")
        assert (res["node_code"], res["version"]) == ("1.1.1", 1)
        s.set_member("eve", "editor", unit_codes=["D02"])
    with hn.session(tenant="hn", user="eve") as s:
        with pytest.raises(AccessDenied, match="bonus"):
            s.set_adjustment("D02", 2024, bonus=1, reason="x")


# -- action plans through the session --------------------------------------------------------

def test_action_plans_through_the_session(hn):
    with hn.session(tenant="hn", user="lan") as s:
        saved = s.save_action("D01", 2024, "1.2", action="Báo cáo đúng hạn", owner="Văn phòng", gap="0,5")
        plan = s.action_plan("D01", 2024)
        assert plan[["id", "node_code", "action", "gap", "status", "version"]].values.tolist() == [
            [saved["id"], "1.2", "Báo cáo đúng hạn", 0.5, "planned", 1]]
        assert s.save_action("D01", 2024, action_id=saved["id"], expected_version=1, status="done")["version"] == 2
        with pytest.raises(ConflictError):
            s.delete_action("D01", 2024, saved["id"], expected_version=1)
        s.delete_action("D01", 2024, saved["id"], expected_version=2, reason="xong")
        assert s.action_plan("D01", 2024).empty
        assert set(s.audit(table_name="action_plans")["action"]) == {"insert", "update", "delete"}


# -- the audit log, filtered -------------------------------------------------------------------

def test_audit_filters_by_unit_year_node_and_table_in_the_database(hn):
    with hn.session(tenant="hn", user="lan") as s:
        s.upsert_units(pd.DataFrame({"code": ["D0_", "d01"], "name": ["Mã có gạch dưới", "Chữ thường"],
                                     "kind": "department"}))
        s.set_member("D01", "analyst")  # a user named like a unit: not the unit's history
        for unit in ("D01", "D0_", "d01"):
            if unit != "D01":
                s.create_assessment(unit, 2024, "small_test")
            for node in ("1.2", "2.2"):
                s.save_score(unit, 2024, node, expected_version=0, self_score=1, explanation=unit)
        s.create_assessment("D01", 2023, "small_test")
        s.save_score("D01", 2023, "1.2", expected_version=0, self_score=2, explanation="năm trước")
        s.add_evidence("D01", 2024, "1.2", name="bc.pdf", content=PDF)
        s.save_action("D01", 2024, "1.2", action="Báo cáo đúng hạn")
        everything = s.audit()
        parts = everything["row_key"].str.split("/")

        def expect(unit=None, year=None, node=None, tables=None):
            keep = pd.Series(True, index=everything.index)
            if unit is not None:
                keep &= (parts.str[0] == unit) & ((parts.str.len() > 1) | (everything["table_name"] == "units")
                                                  | (year is not None) | (node is not None))
            if year is not None:
                keep &= parts.str[1] == str(year)
            if node is not None:
                keep &= parts.str[2] == node
            if tables is not None:
                keep &= everything["table_name"].isin(tables)
            return everything[keep].reset_index(drop=True)

        cases = [
            ({"unit_code": "D01"}, expect("D01")),
            ({"unit_code": "D0_"}, expect("D0_")),  # "_" is no wildcard
            ({"unit_code": "d01"}, expect("d01")),  # nor is the case ignored
            ({"unit_code": "D01", "year": 2024}, expect("D01", 2024)),
            ({"year": "2023"}, expect(year=2023)),
            ({"node_code": "2.2"}, expect(node="2.2")),
            ({"unit_code": "D01", "node_code": "1.2"}, expect("D01", node="1.2")),
            ({"unit_code": "D01", "year": 2024, "node_code": "1.2"}, expect("D01", 2024, "1.2")),
            ({"unit_code": "D01", "table_name": "evidence"}, expect("D01", tables=["evidence"])),
            ({"table_name": ["action_plans", "assessments"]}, expect(tables=["action_plans", "assessments"])),
        ]
        for kwargs, want in cases:
            assert len(want), kwargs
            pd.testing.assert_frame_equal(s.audit(**kwargs), want, obj=str(kwargs))
        d01 = set(s.audit(unit_code="D01")["table_name"])
        assert d01 == {"units", "assessments", "scores", "evidence", "action_plans"}
        assert set(s.audit(unit_code="D01", year=2024)["row_key"]) >= {"D01/2024", "D01/2024/1.2", "D01/2024/2.2"}
        assert "D01/2023/1.2" in set(s.audit(node_code="1.2")["row_key"])
        pd.testing.assert_frame_equal(s.audit(2, unit_code="D01", year=2024),
                                      expect("D01", 2024).head(2).reset_index(drop=True))
        assert s.audit(unit_code="Z99").empty and s.audit(year=2031).empty

# -- workflow -------------------------------------------------------------------------

def test_status_order_and_reopen(hn):
    with hn.session(tenant="hn", user="lan") as s:
        with pytest.raises(ValidationError, match="draft"):
            s.set_status("D01", 2024, "appraised")
        with pytest.raises(ValidationError, match="unknown status"):
            s.set_status("D01", 2024, "done")
        assert s.set_status("D01", 2024, "submitted")["status"] == "submitted"
        with pytest.raises(ConflictError):
            s.set_status("D01", 2024, "appraised", expected_version=1)
        s.set_status("D01", 2024, "appraised", expected_version=2)
        a = s.set_status("D01", 2024, "published")
        assert (a["status"], a["version"]) == ("published", 4)
        with pytest.raises(AccessDenied, match="published"):
            s.save_score("D01", 2024, "1.2", expected_version=0, self_score=1)
        with pytest.raises(ValidationError, match="scores in late.csv refused"):
            s.write_scores(pd.DataFrame([{"unit_code": "D01", "year": 2024, "node_code": "1.2", "self_score": 1}]),
                           source="late.csv")
        with pytest.raises(AccessDenied, match="published"):
            s.add_evidence("D01", 2024, "1.2", name="a.pdf", content=PDF)
        with pytest.raises(ValidationError, match="needs a reason"):
            s.set_status("D01", 2024, "draft")
        assert s.set_status("D01", 2024, "draft", reason="khiếu nại được chấp nhận")["status"] == "draft"
        assert s.save_score("D01", 2024, "1.2", expected_version=0, self_score=1, evidence="QĐ 7") == 1
        deadline = s.set_deadline("D01", 2024, "2025-02-15")["deadline"]
        assert deadline == dt.datetime(2025, 2, 15, 16, 59, 59, tzinfo=dt.timezone.utc)
        at = dt.datetime(2025, 2, 20, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
        assert s.set_deadline("D01", 2024, at)["deadline"] == dt.datetime(2025, 2, 20, 3, 0, tzinfo=dt.timezone.utc)
        assert s.set_deadline("D01", 2024, None)["deadline"] is None


# -- evidence -------------------------------------------------------------------------

def test_evidence_files_and_links(hn):
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    with hn.session(tenant="hn", user="binh") as s:
        f = s.add_evidence("D01", 2024, "1.1.1", name="ke_hoach.pdf", content=PDF, media_type="application/pdf")
        assert f["sha256"] == hashlib.sha256(PDF).hexdigest() and f["size_bytes"] == len(PDF)
        s.add_evidence("D01", 2024, "1.2", name="anh.PNG", content=png)
        s.add_evidence("D01", 2024, "1.2", name="Cổng dịch vụ công", url="https://dichvucong.gov.vn/p/home")
        table = s.evidence("D01", 2024)
        assert list(table["kind"]) == ["file", "file", "link"]
        assert list(table["media_type"].fillna("")) == ["application/pdf", "image/png", ""]
        assert s.evidence_content(f["id"]) == PDF
        s.remove_evidence(f["id"], reason="nhầm tệp")
        assert len(s.evidence("D01", 2024)) == 2
        with pytest.raises(NotFound):
            s.evidence_content(f["id"])
        with pytest.raises(NotFound, match="no node"):
            s.add_evidence("D01", 2024, "7.7", name="a.pdf", content=PDF)


def test_evidence_limits(store_url, small_framework):
    with Store(store_url, max_evidence_bytes=1024) as store:
        store.create_tenant("hn", "Hà Nội", "lan")
        store.add_shared_framework(small_framework)
        with store.session(tenant="hn", user="lan") as s:
            s.upsert_units(pd.DataFrame({"code": ["D01"], "name": ["x"], "kind": ["department"]}))
            s.create_assessment("D01", 2024, "small_test")
            refused = [
                (dict(name="big.pdf", content=b"%PDF-" + bytes(2000)), "too large", "at most 1 KB (this file is 2 KB)"),
                (dict(name="archive.zip", content=b"PK\x03\x04rest"), "type .zip is not accepted", "zip files are refused"),
                (dict(name="setup.exe", content=b"MZ\x90\x00"), "type .exe is not accepted", "pdf"),
                (dict(name="scan.pdf", content=b"MZ\x90\x00 not a pdf"), "not a .pdf file", "content of a .pdf"),
                (dict(name="scan.pdf", content=PDF, media_type="text/html"), "media type does not match",
                 "application/pdf"),
                (dict(name="empty.pdf", content=b""), "empty file", "content"),
                (dict(name="x", url="javascript:alert(1)"), "not an http(s) link", "http://"),
                (dict(name="x", url="ftp://example.org/a.pdf"), "not an http(s) link", "https://"),
                (dict(name="x", url="file:///etc/passwd"), "not an http(s) link", "http"),
                (dict(name="x", content=PDF, url="https://a.vn"), "give a file or a link", "not both"),
            ]
            for kwargs, why, expected in refused:
                with pytest.raises(FileRefused) as err:
                    s.add_evidence("D01", 2024, "1.2", **kwargs)
                assert why in str(err.value), (kwargs.get("name"), str(err.value))
                assert expected in err.value.failures["expected"].iloc[0], err.value.failures
            assert s.evidence("D01", 2024).empty
            ok = s.add_evidence("D01", 2024, "1.2", name="ok.pdf", content=PDF + bytes(1024 - len(PDF)))
            assert ok["size_bytes"] == 1024
    default = Store(store_url, upgrade=False)
    assert default.max_evidence_bytes == 20 * 1024 * 1024
    default.dispose()


# -- reference data ---------------------------------------------------------------------

def test_reference_data_is_shared_and_audited(store):
    for t in ("a", "b"):
        store.create_tenant(t, t.upper(), "u")
    values = pd.DataFrame({
        "dataset": ["PCI", "PCI", "PAPI"], "province_code": ["01", "31", "01"],
        "province_name": ["Hà Nội", "Hải Phòng", "Hà Nội"], "year": [2021, 2021, 2021],
        "component": ["total", "total", "total"], "value": [64.61, "70,61", None],
        "source_url": ["https://www.pcivietnam.vn/"] * 2 + ["https://papi.org.vn/"]})
    sources = pd.DataFrame({"dataset": ["PCI", "PAPI"], "title": ["PCI 2021", "PAPI 2021"],
                            "url": ["https://www.pcivietnam.vn/", "https://papi.org.vn/"]})
    assert store.load_reference(values, sources) == {"inserted": 3, "updated": 0, "deleted": 0, "unchanged": 0}
    with store.session(tenant="a", user="u") as a, store.session(tenant="b", user="u") as b:
        ra, rb = a.reference(), b.reference()
        pd.testing.assert_frame_equal(ra, rb)
        assert ra.loc[ra["province_code"] == "31", "value"].iloc[0] == 70.61
        assert np.isnan(a.reference("PAPI")["value"].iloc[0])
        assert list(a.reference_sources()["dataset"]) == ["PAPI", "PCI"]
        assert {n for n in dir(a) if "reference" in n and not n.startswith("_")} == {"reference", "reference_sources"}
    changed = values.iloc[:1].assign(value=65.0)
    assert store.load_reference(changed, sources.iloc[:1]) == {"inserted": 0, "updated": 1, "deleted": 1,
                                                               "unchanged": 0}
    with store.engine.connect() as conn:
        rows = conn.execute(select(m.audit_log).where(m.audit_log.c.table_name == "reference_values")).all()
    log = pd.DataFrame([r._mapping for r in rows])
    assert log["tenant_id"].isna().all() and set(log["user_name"]) == {"maintenance"}
    upd = log[log["action"] == "update"]
    assert list(zip(upd["row_key"], upd["field"], upd["old_value"], upd["new_value"])) == [
        ("PCI/01/2021/total", "value", "64.61", "65.0")]
    gone = log[log["action"] == "delete"]
    assert set(gone["row_key"]) == {"PCI/31/2021/total"} and "70.61" in set(gone["old_value"])
    with pytest.raises(ValidationError) as err:
        store.load_reference(values.assign(year=["2021", "x", 2021]), sources)
    assert list(err.value.failures["row"]) == [3]


# -- SQLite locking ------------------------------------------------------------------------

def test_sqlite_retries_while_another_writer_holds_the_lock(sqlite_url, small_framework):
    path = sqlite_url.removeprefix("sqlite:///")
    with Store(sqlite_url, busy_timeout_ms=50, retries=8) as store:
        store.create_tenant("hn", "Hà Nội", "lan")
        store.add_shared_framework(small_framework)
        with store.session(tenant="hn", user="lan") as s:
            s.upsert_units(pd.DataFrame({"code": ["D01"], "name": ["x"], "kind": ["department"]}))
            s.create_assessment("D01", 2024, "small_test")
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        released = threading.Event()

        def commit() -> None:
            released.set()
            holder.execute("COMMIT")

        release = threading.Timer(0.6, commit)
        release.start()
        with store.session(tenant="hn", user="lan") as s:
            assert s.save_score("D01", 2024, "1.2", expected_version=0, self_score=1, explanation="x") == 1
        assert released.is_set()  # the save waited for the other writer instead of failing
        release.join()
        holder.close()
    with Store(sqlite_url, busy_timeout_ms=50, retries=0) as store:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with store.session(tenant="hn", user="lan") as s, pytest.raises(OperationalError, match="locked"):
                s.save_score("D01", 2024, "1.2", expected_version=1, self_score=2)
        finally:
            holder.execute("COMMIT")
            holder.close()
