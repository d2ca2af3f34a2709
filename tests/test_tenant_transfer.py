"""A tenant to one file and back: SQLite -> PostgreSQL (new code) -> file again, and the refusals."""

from __future__ import annotations

import datetime as dt
import json
import zipfile

import pandas as pd
import pytest

from parindex_lib import planning
from parindex_lib.errors import AccessDenied, FileRefused, ValidationError
from parindex_lib.store import Store
from parindex_lib.tenant_transfer import TABLES, canonical_dump, export_tenant, import_tenant, read_tenant_file

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\xff" * 500
YEAR = 2024


def build_tenant(store: Store, framework) -> None:
    """Tenant 'hn' with everything a tenant holds, written through the library."""
    store.add_shared_framework(framework)
    store.create_tenant("hn", "Sở Nội vụ Hà Nội", admin_user="lan")
    store.create_tenant("other", "Another tenant", admin_user="zed")
    with store.session(tenant="other", user="zed") as z:
        z.upsert_units(pd.DataFrame({"code": ["Z1"], "name": ["z"], "kind": ["commune"]}))
    with store.session(tenant="hn", user="lan") as s:
        s.upsert_units(pd.DataFrame({
            "code": ["D01", "D02", "X01"], "name": ["Sở Tư pháp", "Sở Y tế", "Xã Ân Thi\u0301"],
            "kind": ["department", "department", "commune"], "parent_code": [None, None, "D01"],
            "region": [None, "Đồng bằng", "Miền núi"], "active_from": [2020, None, "2022-07-01"],
            "active_to": [None, None, 2030]}))
        s.set_member("eve", "editor", unit_codes=["D01", "X01"])
        s.set_member("apo", "appraiser")
        s.set_member("res", "researcher")
        s.add_framework(framework.replace(id="hn_own", name_vi="Bộ riêng của Hà Nội"))
        s.write_scores(pd.DataFrame({
            "unit_code": ["D01", "D01", "D01", "D02", "D02", "X01"], "year": [YEAR] * 6,
            "node_code": ["1.1.1", "1.2", "2.1", "1.2", "2.2", "1.2"],
            "self_score": [0.5, 4.25, None, 3, 2, 1 / 3], "survey_points": [None, None, 7.125, None, None, None],
            "explanation": ["Chậm 3 ngày", "đủ", None, "x", "y", "z"]}),
            source="diem.xlsx", framework_id="small_test")
        s.create_assessment("D02", 2023, "hn_own", deadline="2023-12-31")
        s.save_score("D02", 2023, "1.2", expected_version=0, self_score=5, evidence="QĐ 12/QĐ-UBND")
        s.add_evidence("D01", YEAR, "1.2", name="báo cáo.pdf", content=PDF)
        s.add_evidence("D01", YEAR, "1.2", name="ảnh.png", content=PNG)
        s.add_evidence("X01", YEAR, "1.2", name="bản sao.pdf", content=PDF)  # the same bytes twice
        s.add_evidence("D01", YEAR, "2.1", name="Cổng DVC", url="https://dichvucong.gov.vn/p/home")
        gone = s.add_evidence("D01", YEAR, "1.1.1", name="nhầm.pdf", content=PDF)
        s.remove_evidence(gone["id"], reason="nhầm tệp")
        s.set_status("D02", YEAR, "submitted", reason="nộp")
    with store.session(tenant="hn", user="apo") as s:
        s.save_score("D02", YEAR, "1.2", expected_version=1, appraised_score=2.5, appraisal_reason="thiếu báo cáo",
                     appraisal_round=1, bonus=0.5)
    with store.session(tenant="hn", user="eve") as s:
        s.save_score("D01", YEAR, "1.2", expected_version=1, self_score=4.5, reason="bổ sung")
        planning.save_action(s, "D01", YEAR, "1.2", action="Ban hành kế hoạch trước 31/1", owner="Phòng CCHC",
                             deadline="2025-01-31", gap=0.5)


def _dump_without_import_row(dump: dict) -> tuple[dict, dict]:
    *history, last = dump["audit_log"]
    return {**dump, "audit_log": history}, last


@pytest.mark.postgres
def test_round_trip_sqlite_to_postgresql_and_back(sqlite_url, pg_url, small_framework, tmp_path):
    src = Store(sqlite_url)
    build_tenant(src, small_framework)
    first = tmp_path / "hn.parindex.zip"
    with src.session(tenant="hn", user="lan") as s:
        manifest = export_tenant(s, first)
        audit_before = len(s.audit())
    src.dispose()
    assert manifest["tenant"]["code"] == "hn" and manifest["source_dialect"] == "sqlite"
    assert manifest["files"]["tables/scores.jsonl"]["rows"] == 7
    assert manifest["files"]["tables/evidence.jsonl"]["rows"] == 4
    assert sorted(n for n in manifest["files"] if n.startswith("evidence/")) == sorted(
        f"evidence/{h}" for h in {__import__("hashlib").sha256(b).hexdigest() for b in (PDF, PNG)})
    original = canonical_dump(first)
    assert len(original["audit_log"]) == audit_before
    assert {r["framework_id"]: r["shared"] for r in original["frameworks"]} == {"small_test": True, "hn_own": False}

    # into PostgreSQL, under a new code, beside a tenant that has the same unit codes
    dst = Store(pg_url)
    dst.create_tenant("hn", "Một tenant khác cùng mã", admin_user="kim")
    with dst.session(tenant="hn", user="kim") as s:
        s.upsert_units(pd.DataFrame({"code": ["D01"], "name": ["khác"], "kind": ["department"]}))
    res = import_tenant(dst, first, user="ops", tenant="hn2")
    assert res["tenant"] == "hn2" and res["shared_frameworks_added"] == ["small_test"]
    assert res["rows"]["scores"] == 7 and res["rows"]["audit_log"] == audit_before
    second = tmp_path / "hn2.parindex.zip"
    with dst.session(tenant="hn2", user="lan") as s:
        export_tenant(s, second)
        # the imported tenant works: evidence bytes, scores, roles
        ev = s.evidence("D01", YEAR)
        assert list(ev["name"]) == ["báo cáo.pdf", "ảnh.png", "Cổng DVC"]
        assert s.evidence_content(int(ev["id"].iloc[0])) == PDF and s.evidence_content(int(ev["id"].iloc[1])) == PNG
        assert s.scores(year=YEAR).set_index(["unit_code", "node_code"]).loc[("X01", "1.2"), "self_score"] == 1 / 3
    with dst.session(tenant="hn2", user="eve") as s:
        assert (s.role, s.unit_codes) == ("editor", ["D01", "X01"])
    again, import_row = _dump_without_import_row(canonical_dump(second))
    assert again == original  # every table, row for row, value for value
    assert (import_row["user_name"], import_row["action"], import_row["old_value"]) == ("ops", "import", "hn")
    assert import_row["new_value"].startswith("sha256:")
    # and back into SQLite under the same code: the same again
    back = Store(tmp_path / "back.sqlite")
    import_tenant(back, second, user="ops")
    third = tmp_path / "back.parindex.zip"
    with back.session(tenant="hn2", user="lan") as s:
        export_tenant(s, third)
    thrice = canonical_dump(third)
    assert thrice["audit_log"][:-2] == original["audit_log"] and len(thrice["audit_log"]) == len(original["audit_log"]) + 2
    assert {k: v for k, v in thrice.items() if k != "audit_log"} == {k: v for k, v in original.items() if k != "audit_log"}
    # the other tenant of the target store is untouched
    with dst.session(tenant="hn", user="kim") as s:
        assert list(s.units()["name"]) == ["khác"] and s.scores().empty
    dst.dispose()
    back.dispose()


def test_export_is_for_admins_of_their_own_tenant(sqlite_url, small_framework, tmp_path):
    store = Store(sqlite_url)
    try:
        build_tenant(store, small_framework)
        for user in ("eve", "apo", "res"):
            with store.session(tenant="hn", user=user) as s, pytest.raises(AccessDenied, match="only an admin"):
                export_tenant(s, tmp_path / "x.zip")
        # the CLI opens the session of --tenant: a tenant the user does not belong to is refused before any read
        with pytest.raises(AccessDenied, match="user 'lan' is not a member of tenant 'other'"):
            store.session(tenant="other", user="lan")
        assert not (tmp_path / "x.zip").exists()
        with store.session(tenant="hn", user="lan") as s:
            export_tenant(s, tmp_path / "hn.zip")
        # nothing of the other tenant is in the file
        dump = canonical_dump(tmp_path / "hn.zip")
        text = json.dumps(dump, ensure_ascii=False)
        assert "zed" not in text and "Z1" not in text and "Another tenant" not in text
    finally:
        store.dispose()


def test_import_refusals(sqlite_url, small_framework, tmp_path):
    store = Store(sqlite_url)
    try:
        build_tenant(store, small_framework)
        good = tmp_path / "hn.zip"
        with store.session(tenant="hn", user="lan") as s:
            export_tenant(s, good)
        counts = {t: len(v) for t, v in read_tenant_file(good).tables.items()}
        assert set(counts) == set(TABLES)
        with pytest.raises(ValidationError, match="not in use"):
            import_tenant(store, good, user="ops")
        with pytest.raises(ValidationError, match="letters, digits"):
            import_tenant(store, good, user="ops", tenant="bad code!")
        # a shared framework that differs in the target store
        other = Store(tmp_path / "other.sqlite")
        other.add_shared_framework(small_framework.replace(name_vi="Khác"))
        with pytest.raises(ValidationError, match="same shared framework"):
            import_tenant(other, good, user="ops")
        assert other.tenants().empty  # nothing written
        other.dispose()

        made: list[str] = []

        def tampered(name: str, change) -> str:
            made.append(name)
            out = tmp_path / f"bad-{len(made)}.zip"
            with zipfile.ZipFile(good) as zin, zipfile.ZipFile(out, "w") as zout:
                for info in zin.infolist():
                    data = zin.read(info.filename)
                    if info.filename == name:
                        data = change(data)
                        if data is None:
                            continue
                    zout.writestr(info.filename, data)
                if name == "extra":
                    zout.writestr("../../etc/passwd", b"x")
            return str(out)

        blob = next(n for n in read_tenant_file(good).manifest["files"] if n.startswith("evidence/"))
        cases = [
            (tampered(blob, lambda d: d[:-1] + b"!"), "checksums do not match"),
            (tampered("tables/scores.jsonl", lambda d: d.replace(b"4.5", b"5.0")), "checksums do not match"),
            (tampered("tables/units.jsonl", lambda d: None), "do not match its manifest"),
            (tampered("extra", lambda d: d), "do not match its manifest"),
            (tampered("manifest.json", lambda d: d.replace(b'"parindex-tenant"', b'"other"')), "not a parindex"),
            (tampered("manifest.json", lambda d: d.replace(b'"format_version": 1', b'"format_version": 9')), "newer"),
        ]
        not_zip = tmp_path / "not.zip"
        not_zip.write_bytes(b"PK\x03\x04 not really")
        cases.append((str(not_zip), "not a zip"))
        for path, match in cases:
            with pytest.raises(FileRefused, match=match):
                import_tenant(store, path, user="ops", tenant="copy")
        assert "copy" not in set(store.tenants()["code"])
        assert import_tenant(store, good, user="ops", tenant="copy")["tenant"] == "copy"
    finally:
        store.dispose()


@pytest.mark.postgres
def test_import_is_maintenance_on_postgresql(pg_server, small_framework, tmp_path):
    from pg_deployment import deployment

    src = Store(tmp_path / "src.sqlite")
    build_tenant(src, small_framework)
    with src.session(tenant="hn", user="lan") as s:
        export_tenant(s, tmp_path / "hn.zip")
    src.dispose()
    with deployment(pg_server, prefix="xfer") as d:
        owner = Store(d.owner_url)
        owner.add_shared_framework(small_framework)
        owner.create_tenant("seed", "seed", "lan")
        token = owner.issue_access_token("lan")
        app = Store(d.app_url, token=token)
        try:
            with pytest.raises(AccessDenied, match="schema owner"):
                import_tenant(app, tmp_path / "hn.zip", user="lan")
            assert import_tenant(owner, tmp_path / "hn.zip", user="ops")["rows"]["scores"] == 7
            # the application role exports it with an admin's token, and only under RLS
            owner.revoke_access_tokens("lan")
            app.token = owner.issue_access_token("lan")
            with app.session(tenant="hn", user="lan") as s:
                export_tenant(s, tmp_path / "again.zip")
            again, _ = _dump_without_import_row(canonical_dump(tmp_path / "again.zip"))
            assert again == canonical_dump(tmp_path / "hn.zip")
        finally:
            app.dispose()
            owner.dispose()
