"""The five roles, enforced by the library on both backends (the database checks are in test_rls.py)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from parindex_lib import roles
from parindex_lib.errors import AccessDenied, ValidationError
from parindex_lib.store import Store

PDF = b"%PDF-1.4\n%%EOF\n"
YEAR = 2024


@pytest.fixture
def org(store_url, small_framework):
    """Tenant 'hn': admin lan; editor eve (D01, X01); appraiser apo; analyst ana; researcher res.

    D01 and X01 are drafts with a self score on 1.2; D02 is submitted."""
    store = Store(store_url)
    store.create_tenant("hn", "Sở Nội vụ Hà Nội", admin_user="lan")
    store.add_shared_framework(small_framework)
    with store.session(tenant="hn", user="lan") as s:
        s.upsert_units(pd.DataFrame({"code": ["D01", "D02", "X01"], "name": ["Sở Tư pháp", "Sở Y tế", "Xã A"],
                                     "kind": ["department", "department", "commune"]}))
        s.set_member("eve", "editor", unit_codes=["D01", "X01"])
        for user, role in (("apo", "appraiser"), ("ana", "analyst"), ("res", "researcher")):
            s.set_member(user, role)
        s.write_scores(pd.DataFrame({"unit_code": ["D01", "D02", "X01"], "year": [YEAR] * 3, "node_code": ["1.2"] * 3,
                                     "self_score": [4, 3, 2], "explanation": ["a", "b", "c"]}),
                       source="seed.csv", framework_id="small_test")
        s.set_status("D02", YEAR, "submitted", reason="seed")
    yield store
    store.dispose()


def _v(s, unit: str, node: str = "1.2") -> int:
    return int(s.scores(unit_codes=unit, all_leaves=True).set_index("node_code").loc[node, "version"])


def test_editor_changes_only_own_drafts(org):
    with org.session(tenant="hn", user="eve") as s:
        assert s.role == "editor" and s.unit_codes == ["D01", "X01"]
        assert s.save_score("D01", YEAR, "1.2", expected_version=1, self_score=4.5, explanation="đủ") == 2
        s.save_score("X01", YEAR, "1.1.2", expected_version=0, self_score=1, evidence="KH 12")
        s.add_evidence("D01", YEAR, "1.2", name="bc.pdf", content=PDF)
        refused = [
            (s.save_score, ("D02", YEAR, "1.2"), dict(expected_version=1, self_score=1), "not one of your units"),
            (s.save_score, ("D01", YEAR, "1.2"), dict(expected_version=2, appraised_score=1), "appraised_score: an editor may not"),
            (s.save_score, ("D01", YEAR, "1.2"), dict(expected_version=2, bonus=1), "bonus"),
            (s.save_score, ("D01", YEAR, "2.1"), dict(expected_version=0, survey_points=1), "survey_points"),
            (s.save_score, ("D01", YEAR, "1.2"), dict(expected_version=2, unit_response="x"), "while the assessment is submitted"),
            (s.add_evidence, ("D02", YEAR, "1.2"), dict(name="x.pdf", content=PDF), "not one of your units"),
            (s.set_status, ("D02", YEAR, "appraised"), {}, "may not move"),
            (s.set_deadline, ("D01", YEAR, "2030-01-01"), {}, "only an admin"),
            (s.create_assessment, ("D01", 2025, "small_test"), {}, "only an admin"),
            (s.upsert_units, (pd.DataFrame({"code": ["D01"], "name": ["x"], "kind": ["department"]}),), {}, "only an admin"),
            (s.set_member, ("eve", "admin"), {}, "only an admin"),
        ]
        for fn, args, kwargs, match in refused:
            with pytest.raises(AccessDenied, match=match):
                fn(*args, **kwargs)
        # a table with one row of another unit is refused whole, with that row named
        table = pd.DataFrame({"unit_code": ["D01", "D02"], "year": [YEAR, YEAR], "node_code": ["2.2", "2.2"],
                              "self_score": [1, 1]})
        with pytest.raises(ValidationError, match="nothing was written") as err:
            s.write_scores(table, source="mine.xlsx")
        f = err.value.failures
        assert list(zip(f["row"], f["column"])) == [(3, "self_score")]
        assert "not one of your units" in f["expected"].iloc[0]
        with pytest.raises(ValidationError, match="only an admin opens new ones"):
            s.write_scores(pd.DataFrame({"unit_code": ["D01"], "year": [2025], "node_code": ["2.2"], "self_score": [1]}),
                           source="next.xlsx", framework_id="small_test")
        assert s.write_scores(table.iloc[:1], source="mine.xlsx")["inserted"] == 1
        # submitting locks the self fields; the unit then answers the appraisal
        s.set_status("D01", YEAR, "submitted", reason="nộp")
        with pytest.raises(AccessDenied, match="only while the assessment is a draft"):
            s.save_score("D01", YEAR, "1.2", expected_version=2, self_score=1)
        with pytest.raises(AccessDenied, match="evidence"):
            s.add_evidence("D01", YEAR, "1.2", name="late.pdf", content=PDF)
        assert s.save_score("D01", YEAR, "1.2", expected_version=2, unit_response="đã bổ sung") == 3
    # nothing of D02 changed
    with org.session(tenant="hn", user="lan") as s:
        d02 = s.scores(unit_codes="D02")
        assert list(d02["self_score"]) == [3.0] and list(d02["updated_by"]) == ["lan"]


def test_deadline_locks_editors_not_admins(org):
    with org.session(tenant="hn", user="lan") as s:
        s.set_deadline("X01", YEAR, dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
    with org.session(tenant="hn", user="eve") as s:
        with pytest.raises(AccessDenied, match="deadline of unit X01, 2024 has passed"):
            s.save_score("X01", YEAR, "1.2", expected_version=1, self_score=1)
        with pytest.raises(AccessDenied, match="deadline"):
            s.set_status("X01", YEAR, "submitted")
        with pytest.raises(AccessDenied, match="deadline"):
            s.add_evidence("X01", YEAR, "1.2", name="a.pdf", content=PDF)
    with org.session(tenant="hn", user="lan") as s:
        assert s.save_score("X01", YEAR, "1.2", expected_version=1, self_score=1, reason="sửa sau hạn") == 2
        s.set_deadline("X01", YEAR, None)
    with org.session(tenant="hn", user="eve") as s:
        assert s.save_score("X01", YEAR, "1.2", expected_version=2, self_score=1.5) == 3


def test_appraiser_changes_appraisal_fields_of_submitted_sheets(org):
    with org.session(tenant="hn", user="apo") as s:
        assert s.save_score("D02", YEAR, "1.2", expected_version=1, appraised_score=2.5, appraisal_reason="thiếu",
                            appraisal_round=1) == 2
        s.save_score("D02", YEAR, "2.1", expected_version=0, survey_points=8)
        s.save_score("D02", YEAR, "2.2", expected_version=0, bonus=1, penalty=0.5)
        for fn, args, kwargs, match in [
            (s.save_score, ("D02", YEAR, "1.2"), dict(expected_version=2, self_score=1), "self_score: an appraiser"),
            (s.save_score, ("D02", YEAR, "1.2"), dict(expected_version=2, unit_response="x"), "unit_response"),
            (s.save_score, ("D01", YEAR, "1.2"), dict(expected_version=1, appraised_score=1), "D01, 2024 is draft"),
            (s.add_evidence, ("D02", YEAR, "1.2"), dict(name="x.pdf", content=PDF), "appraiser"),
            (s.set_status, ("D02", YEAR, "draft", "mở lại"), {}, "may not move"),
        ]:
            with pytest.raises(AccessDenied, match=match):
                fn(*args, **kwargs)
        assert s.set_status("D02", YEAR, "appraised", reason="duyệt")["status"] == "appraised"
        with pytest.raises(AccessDenied, match="is appraised"):
            s.save_score("D02", YEAR, "1.2", expected_version=2, appraised_score=3)
    with org.session(tenant="hn", user="lan") as s:
        assert s.set_status("D02", YEAR, "published")["status"] == "published"


@pytest.mark.parametrize("user", ["ana", "res"])
def test_read_only_roles_change_nothing(org, user):
    with org.session(tenant="hn", user=user) as s:
        assert len(s.units()) == 3 and len(s.scores()) == 3 and len(s.audit()) > 0
        for fn, args, kwargs in [
            (s.save_score, ("D01", YEAR, "1.2"), dict(expected_version=1, self_score=1)),
            (s.save_score, ("D02", YEAR, "1.2"), dict(expected_version=1, appraised_score=1)),
            (s.write_scores, (pd.DataFrame({"unit_code": ["D01"], "year": [YEAR], "node_code": ["1.2"],
                                            "self_score": [1]}),), dict(source="x.csv")),
            (s.set_status, ("D01", YEAR, "submitted"), {}),
            (s.set_status, ("D02", YEAR, "appraised"), {}),
            (s.add_evidence, ("D01", YEAR, "1.2"), dict(name="a.pdf", content=PDF)),
            (s.create_assessment, ("D01", 2025, "small_test"), {}),
            (s.upsert_units, (pd.DataFrame({"code": ["Z"], "name": ["z"], "kind": ["commune"]}),), {}),
            (s.add_framework, (s.framework("small_test").replace(id="mine"),), {}),
            (s.set_member, (user, "admin"), {}),
        ]:
            with pytest.raises(AccessDenied):
                fn(*args, **kwargs)
    with org.session(tenant="hn", user="lan") as s:
        assert set(s.scores()["updated_by"]) == {"lan"}


def test_rules_as_a_table():
    draft = {"unit_code": "X1", "year": 2024, "status": "draft", "deadline": None}
    submitted = {**draft, "status": "submitted"}
    cases = [
        ("admin", None, draft, ["self_score", "appraised_score", "survey_points"], []),
        ("editor", ["X1"], draft, ["self_score", "explanation", "evidence"], []),
        ("editor", ["X1"], submitted, ["unit_response"], []),
        ("editor", ["X1"], submitted, ["self_score"], ["self_score"]),
        ("editor", ["X2"], draft, ["self_score"], ["self_score"]),
        ("editor", None, draft, ["self_score"], ["self_score"]),
        ("appraiser", None, submitted, list(roles.APPRAISAL_FIELDS), []),
        ("appraiser", None, draft, ["appraised_score"], ["appraised_score"]),
        ("analyst", None, draft, ["self_score", "bonus"], ["self_score", "bonus"]),
        ("researcher", None, submitted, ["appraised_score"], ["appraised_score"]),
        ("", None, draft, ["self_score"], ["self_score"]),
    ]
    for role, units, a, fields, refused in cases:
        got = [p.split(":")[0] for p in roles.score_write_problems(role, units, a, fields)]
        assert got == refused, (role, units, a["status"], fields, got)
    late = {**draft, "deadline": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)}
    assert roles.score_write_problems("editor", ["X1"], late, ["self_score"])
    assert roles.score_write_problems("editor", ["X1"], late, ["self_score"],
                                      now=dt.datetime(2019, 1, 1, tzinfo=dt.timezone.utc)) == []
    assert set(roles.SCORE_FIELDS_BY_ROLE) == set(roles.ROLES)
    assert roles.editable_unit_codes("editor", ["B", "Z"], ["A", "B", "C"]) == ["B"]
    assert roles.editable_unit_codes("admin", None, ["A", "B"]) == ["A", "B"]
    assert roles.editable_unit_codes("analyst", None, ["A"]) == []
