"""Move a tenant's whole data to one portable file and back, between any two stores.

:func:`export_tenant` writes everything a tenant owns: its members, units,
own frameworks (and the shared frameworks its assessments use), assessments,
scores, evidence (the files' bytes too), action plans and the full audit log,
read in one snapshot. :func:`import_tenant` reads such a file into a SQLite
or PostgreSQL store, under the same or a new tenant code, in one transaction:
all of it or nothing. Exporting the imported tenant again gives the same
canonical dump (:func:`canonical_dump`), plus one audit row recording the
import itself.

The file (``<tenant>.parindex.zip``)
------------------------------------
A zip archive:

``manifest.json``
    ``format`` (``"parindex-tenant"``), ``format_version`` (1), ``tenant``
    (``code``, ``name``, ``created_at``, ``created_by``, ``version``),
    ``exported_at``, ``exported_by``, ``schema_revision``,
    ``source_dialect``, ``parindex_version``, and ``files``: for every other
    member of the archive its ``sha256``, ``bytes`` and, for tables,
    ``rows``.
``tables/<table>.jsonl``
    One JSON object per row, for ``memberships``, ``units``, ``frameworks``,
    ``assessments``, ``scores``, ``evidence``, ``action_plans`` and
    ``audit_log``. Rows are keyed by codes, never by database ids
    (``unit_code``, ``year``, ``node_code``, ``framework_id``): ids differ
    between stores. Times are ISO 8601 in UTC with microseconds, dates ISO
    dates, numbers JSON numbers (floats round-trip exactly). ``evidence``
    and ``audit_log`` rows and ``action_plans`` are in their original order.
``evidence/<sha256>``
    The bytes of each evidence file, named by their sha256 (stored once).

Every member's checksum is verified before anything is written; a file
with an unknown member, a wrong checksum or size, or an entry that would
expand beyond its declared size is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Date, insert, select, text

from . import models as m
from .errors import AccessDenied, FileRefused, ValidationError
from .framework import read_framework_yaml

__all__ = ["FORMAT", "FORMAT_VERSION", "TABLES", "TenantFile", "export_tenant", "import_tenant", "read_tenant_file",
           "canonical_dump"]

FORMAT = "parindex-tenant"
FORMAT_VERSION = 1
#: The tables of a tenant file, in the order they are written and read back.
TABLES = ("memberships", "units", "frameworks", "assessments", "scores", "evidence", "action_plans", "audit_log")
#: Largest table file accepted on import (uncompressed).
MAX_TABLE_BYTES = 2 * 1024 ** 3
_BLOB = re.compile(r"^evidence/[0-9a-f]{64}$")
_TENANT_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# Columns written per table (besides the keys added below); ids and tenant_id never are.
_COLUMNS: dict[str, list[str]] = {
    "memberships": ["user_name", "role", "unit_codes", "version"],
    "units": ["code", "name", "kind", "parent_code", "region", "active_from", "active_to", "version"],
    "frameworks": ["framework_id", "name_vi", "level", "status", "yaml", "checksum", "created_at", "created_by",
                   "version"],
    "assessments": ["unit_code", "year", "status", "deadline", "created_at", "created_by", "updated_at",
                    "updated_by", "version"],
    "scores": ["node_code", "self_score", "explanation", "evidence", "appraised_score", "appraisal_reason",
               "unit_response", "appraisal_round", "survey_points", "bonus", "penalty", "version", "updated_by",
               "updated_at"],
    "evidence": ["node_code", "kind", "name", "media_type", "size_bytes", "sha256", "url", "uploaded_by",
                 "uploaded_at", "version"],
    "action_plans": ["unit_code", "year", "node_code", "gap", "action", "owner", "deadline", "status", "version",
                     "updated_by", "updated_at"],
    "audit_log": ["user_name", "at", "table_name", "row_key", "field", "old_value", "new_value", "reason", "action",
                  "version"],
}
# How rows are ordered in the file (and in canonical dumps).
_ORDER: dict[str, tuple[str, ...] | None] = {
    "memberships": ("user_name",),
    "units": ("code",),
    "frameworks": ("shared", "framework_id"),
    "assessments": ("unit_code", "year"),
    "scores": ("unit_code", "year", "node_code"),
    "evidence": None,       # upload order
    "action_plans": None,   # creation order
    "audit_log": None,      # the order things happened
}


# -- values ---------------------------------------------------------------------------------

def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        raise TypeError("bytes go to evidence blobs")
    return value


def _decode(table: str, row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for c, v in row.items():
        if v is None:
            continue
        col = _table(table).c.get(c)
        if col is None:
            continue
        if isinstance(col.type, m.UTCDateTime):
            out[c] = dt.datetime.fromisoformat(v)
        elif isinstance(col.type, Date):
            out[c] = dt.date.fromisoformat(v)
    return out


def _table(name: str):
    return m.metadata.tables[name]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _jsonl(rows: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(json.dumps({k: _encode(v) for k, v in r.items()}, ensure_ascii=False, sort_keys=True,
                               allow_nan=False).encode("utf-8") + b"\n" for r in rows)


def _sorted(table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = _ORDER[table]
    if keys is None:
        return rows
    return sorted(rows, key=lambda r: tuple((r.get(k) is None, r.get(k) if r.get(k) is not None else "") for k in keys))


# -- export ------------------------------------------------------------------------------------

def _read_tenant(conn: Connection, tenant: str) -> tuple[dict[str, Any], dict[str, list[dict]], dict[str, bytes]]:
    t = m.tenants
    trow = conn.execute(select(t).where(t.c.code == tenant)).first()
    head = {"code": trow.code, "name": trow.name, "created_at": trow.created_at, "created_by": trow.created_by,
            "version": trow.version}
    tables: dict[str, list[dict]] = {}
    ms, u = m.memberships, m.units
    tables["memberships"] = [dict(r._mapping) for r in conn.execute(
        select(*[ms.c[c] for c in _COLUMNS["memberships"]]).where(ms.c.tenant_id == tenant)).all()]
    tables["units"] = [dict(r._mapping) for r in conn.execute(
        select(*[u.c[c] for c in _COLUMNS["units"]]).where(u.c.tenant_id == tenant)).all()]
    f, a = m.frameworks, m.assessments
    used_shared = select(a.c.framework_ref).where(a.c.tenant_id == tenant)
    frows = conn.execute(select(f.c.id, f.c.tenant_id, *[f.c[c] for c in _COLUMNS["frameworks"]]).where(
        (f.c.tenant_id == tenant) | (f.c.tenant_id.is_(None) & f.c.id.in_(used_shared)))).all()
    refs = {r.id: (r.framework_id, r.tenant_id is None) for r in frows}
    tables["frameworks"] = [{**{c: r._mapping[c] for c in _COLUMNS["frameworks"]}, "shared": r.tenant_id is None}
                            for r in frows]
    arows = conn.execute(select(a.c.id, a.c.framework_ref, *[a.c[c] for c in _COLUMNS["assessments"]]).where(
        a.c.tenant_id == tenant)).all()
    key_of = {r.id: (r.unit_code, r.year) for r in arows}
    tables["assessments"] = [{**{c: r._mapping[c] for c in _COLUMNS["assessments"]},
                              "framework_id": refs[r.framework_ref][0], "framework_shared": refs[r.framework_ref][1]}
                             for r in arows]
    s = m.scores
    tables["scores"] = [{"unit_code": key_of[r.assessment_id][0], "year": key_of[r.assessment_id][1],
                         **{c: r._mapping[c] for c in _COLUMNS["scores"]}}
                        for r in conn.execute(select(s.c.assessment_id, *[s.c[c] for c in _COLUMNS["scores"]]).where(
                            s.c.tenant_id == tenant)).all()]
    e = m.evidence
    blobs: dict[str, bytes] = {}
    tables["evidence"] = []
    for r in conn.execute(select(e.c.id, e.c.assessment_id, *[e.c[c] for c in _COLUMNS["evidence"]]).where(
            e.c.tenant_id == tenant).order_by(e.c.id)).all():
        tables["evidence"].append({"unit_code": key_of[r.assessment_id][0], "year": key_of[r.assessment_id][1],
                                   **{c: r._mapping[c] for c in _COLUMNS["evidence"]}})
        if r.kind == "file" and r.sha256 not in blobs:
            content = conn.execute(select(e.c.content).where(e.c.tenant_id == tenant, e.c.id == r.id)).scalar_one()
            blobs[r.sha256] = bytes(content)
    p = m.metadata.tables.get("action_plans")
    tables["action_plans"] = [] if p is None else [
        dict(r._mapping) for r in conn.execute(select(*[p.c[c] for c in _COLUMNS["action_plans"]]).where(
            p.c.tenant_id == tenant).order_by(p.c.id)).all()]
    al = m.audit_log
    tables["audit_log"] = [dict(r._mapping) for r in conn.execute(
        select(*[al.c[c] for c in _COLUMNS["audit_log"]]).where(al.c.tenant_id == tenant).order_by(al.c.id)).all()]
    return head, {k: _sorted(k, v) for k, v in tables.items()}, blobs


def export_tenant(session: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the session's tenant, whole, to one file (admins only).

    Parameters
    ----------
    session
        A :class:`parindex_lib.store.TenantSession` of an admin of the
        tenant: the tenant exported is the session's, never another.
    path
        The file to write (``.parindex.zip`` by convention); written to a
        temporary name first and renamed when complete.

    Returns
    -------
    dict
        The manifest (see the module's description).

    Raises
    ------
    AccessDenied
        When the session's user is not an admin of the tenant.
    """
    from . import __version__

    store = session.store
    holder: dict[str, Any] = {}

    def body(conn: Connection) -> None:
        if session.role != "admin":
            raise AccessDenied(f"only an admin of tenant {session.tenant!r} exports it "
                               f"({session.user!r} is {session.role or 'no member'})")
        holder["data"] = _read_tenant(conn, session.tenant)
        holder["revision"] = conn.execute(text("select version_num from alembic_version")).scalar()

    session._run(body, write=False, snapshot=True)
    head, tables, blobs = holder["data"]
    files: dict[str, dict[str, Any]] = {}
    members: list[tuple[str, bytes, int]] = []
    for name in TABLES:
        data = _jsonl(tables[name])
        files[f"tables/{name}.jsonl"] = {"sha256": _sha256(data), "bytes": len(data), "rows": len(tables[name])}
        members.append((f"tables/{name}.jsonl", data, zipfile.ZIP_DEFLATED))
    for digest, data in sorted(blobs.items()):
        files[f"evidence/{digest}"] = {"sha256": digest, "bytes": len(data)}
        members.append((f"evidence/{digest}", data, zipfile.ZIP_STORED))
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "tenant": {k: _encode(v) for k, v in head.items()},
        "exported_at": _encode(dt.datetime.now(dt.timezone.utc)), "exported_by": session.user,
        "schema_revision": holder["revision"], "source_dialect": store.dialect, "parindex_version": __version__,
        "files": files,
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".zip", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
            zf.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True),
                        compress_type=zipfile.ZIP_DEFLATED)
            for name, data, how in members:
                zf.writestr(name, data, compress_type=how)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return manifest


# -- reading a file -----------------------------------------------------------------------------

@dataclass
class TenantFile:
    """A verified tenant file.

    Attributes
    ----------
    manifest : dict
    tables : dict
        Table name -> list of rows (dicts, times and dates decoded).
    blobs : dict
        sha256 -> bytes of each evidence file.
    """

    manifest: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]]
    blobs: dict[str, bytes]


def read_tenant_file(path: str | os.PathLike[str], *, max_blob_bytes: int = 64 * 1024 ** 2) -> TenantFile:
    """Read and verify a tenant file written by :func:`export_tenant`.

    Raises
    ------
    FileRefused
        Listing every problem: not a zip, no manifest, another format or a
        newer format version, a member not in the manifest or missing, a
        wrong size or checksum, an evidence row without its bytes, a member
        larger than allowed.
    """
    label = Path(path).name
    fails: list[dict[str, Any]] = []

    def refuse(why: str) -> FileRefused:
        return FileRefused(f"tenant file {label} refused: {why}", fails or [{"file": label, "expected": why}])

    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FileRefused(f"tenant file {label} refused: not a zip archive", [
            {"file": label, "value": str(exc), "expected": "a .parindex.zip file written by parindex tenant export"}]) \
            from None
    with zf:
        infos = {i.filename: i for i in zf.infolist()}
        if "manifest.json" not in infos or infos["manifest.json"].file_size > 64 * 1024 ** 2:
            raise refuse("no manifest.json")
        try:
            manifest = json.loads(zf.read("manifest.json").decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise refuse("manifest.json is not JSON") from None
        if manifest.get("format") != FORMAT:
            raise refuse(f"not a parindex tenant file (format {manifest.get('format')!r})")
        if not isinstance(manifest.get("format_version"), int) or manifest["format_version"] > FORMAT_VERSION:
            raise refuse(f"format version {manifest.get('format_version')!r} is newer than this parindex reads "
                         f"({FORMAT_VERSION}); upgrade parindex")
        declared: dict[str, dict] = manifest.get("files") or {}
        for name in sorted(set(infos) - set(declared) - {"manifest.json"}):
            fails.append({"file": label, "column": name, "expected": "only members listed in manifest.json"})
        for name, meta in sorted(declared.items()):
            if not (name in {f"tables/{t}.jsonl" for t in TABLES} or _BLOB.match(name)):
                fails.append({"file": label, "column": name, "expected": "tables/<table>.jsonl or evidence/<sha256>"})
            elif name not in infos:
                fails.append({"file": label, "column": name, "expected": "this member, listed in the manifest"})
            else:
                limit = MAX_TABLE_BYTES if name.startswith("tables/") else max_blob_bytes
                size = infos[name].file_size
                if size != meta.get("bytes") or size > limit:
                    fails.append({"file": label, "column": name, "value": size,
                                  "expected": f"{meta.get('bytes')} bytes as declared (at most {limit})"})
        if fails:
            raise refuse("its members do not match its manifest")
        raw: dict[str, bytes] = {}
        for name, meta in declared.items():
            with zf.open(name) as fh:
                data = fh.read(int(meta["bytes"]) + 1)  # never more than declared, whatever the zip claims
            if len(data) != meta["bytes"] or _sha256(data) != meta.get("sha256"):
                fails.append({"file": label, "column": name, "value": _sha256(data),
                              "expected": f"sha256 {meta.get('sha256')} and {meta['bytes']} bytes"})
            raw[name] = data
        if fails:
            raise refuse("checksums do not match")
    tables: dict[str, list[dict[str, Any]]] = {}
    for t in TABLES:
        data = raw.get(f"tables/{t}.jsonl", b"")
        try:
            tables[t] = [_decode(t, json.loads(line)) for line in data.decode("utf-8").splitlines() if line.strip()]
        except (ValueError, UnicodeDecodeError) as exc:
            fails.append({"file": label, "column": f"tables/{t}.jsonl", "value": str(exc)[:200],
                          "expected": "one JSON object per line"})
    blobs = {name.removeprefix("evidence/"): data for name, data in raw.items() if name.startswith("evidence/")}
    for i, e in enumerate(tables.get("evidence", [])):
        if e.get("kind") == "file" and e.get("sha256") not in blobs:
            fails.append({"file": label, "row": i + 1, "column": "tables/evidence.jsonl", "value": e.get("sha256"),
                          "expected": "the file's bytes in evidence/<sha256>"})
    if fails:
        raise refuse("its tables cannot be read")
    return TenantFile(manifest, tables, blobs)


_STORE_OWNED = ("created_at", "created_by", "version")


def canonical_dump(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The tenant's content in a tenant file, without what only describes the export.

    Two stores hold the same tenant exactly when the dumps of their exports
    are equal: the tenant's name, creation and version, and every table
    row. Left out: the tenant code (it may be imported under another), the
    export's time, user, source dialect and versions, and when and by whom
    the store loaded the shared frameworks the tenant uses (their content,
    id and checksum stay).

    Returns
    -------
    dict
        ``tenant`` (dict) and one list of rows per table.
    """
    f = read_tenant_file(path)
    head = {k: v for k, v in f.manifest["tenant"].items() if k != "code"}
    out = {"tenant": head, **{t: [{k: _encode(v) for k, v in r.items()} for r in f.tables[t]] for t in TABLES}}
    # a shared framework belongs to the store: the tenant holds its content, not when another store loaded it
    out["frameworks"] = [{k: v for k, v in r.items() if not (r.get("shared") and k in _STORE_OWNED)}
                         for r in out["frameworks"]]
    return out


# -- import --------------------------------------------------------------------------------------

def _require_maintainer(conn: Connection) -> None:
    if conn.dialect.name != "postgresql":
        return
    ok = conn.execute(text("select pg_has_role(current_user, c.relowner, 'USAGE') from pg_class c "
                           "where c.oid = 'tenants'::regclass")).scalar()
    if not ok:
        raise AccessDenied("importing a tenant is maintenance: connect with the schema owner's URL "
                           "(deploy/postgres/setup_database.py), not the application role")


def import_tenant(store: Any, path: str | os.PathLike[str], *, user: str, tenant: str | None = None,
                  name: str | None = None) -> dict[str, Any]:
    """Create a tenant in ``store`` from a tenant file, all or nothing.

    A maintenance operation: on PostgreSQL it runs as the schema owner.
    Shared frameworks the tenant's assessments use are added to the store's
    shared set when absent (and must be identical when present).

    Parameters
    ----------
    store
        A :class:`parindex_lib.store.Store` (SQLite or PostgreSQL).
    path
        A file written by :func:`export_tenant`.
    user
        Who imports (recorded in the audit log).
    tenant
        The code of the new tenant (default: the code in the file). It must
        not exist in ``store``.
    name
        The new tenant's name (default: the name in the file).

    Returns
    -------
    dict
        ``tenant`` (the code), ``rows`` (rows written per table),
        ``shared_frameworks_added`` (ids).

    Raises
    ------
    FileRefused
        The file is damaged or not a tenant file (nothing is written).
    ValidationError
        The tenant code exists or is not valid, or a shared framework of
        the same id differs in this store.
    AccessDenied
        On PostgreSQL, when connected as the application role.
    """
    from .store import _audit, _nfc

    f = read_tenant_file(path, max_blob_bytes=max(store.max_evidence_bytes, 1))
    code = str(tenant or f.manifest["tenant"]["code"]).strip()
    who = _nfc(user) or ""
    fails = []
    if not _TENANT_CODE.match(code):
        fails.append({"column": "tenant", "value": code,
                      "expected": "1-64 letters, digits, '_', '.', '-' starting with a letter or digit"})
    if not who:
        fails.append({"column": "user", "value": user, "expected": "who imports the tenant"})
    if fails:
        raise ValidationError("cannot import the tenant", fails)
    head = f.manifest["tenant"]
    tables = f.tables
    label = Path(path).name

    def body(conn: Connection) -> dict[str, Any]:
        _require_maintainer(conn)
        if conn.execute(select(m.tenants.c.code).where(m.tenants.c.code == code)).first():
            raise ValidationError("cannot import the tenant", [
                {"column": "tenant", "value": code,
                 "expected": "a tenant code not in use in this store (import under another code with --as)"}])
        counts: dict[str, int] = {}
        conn.execute(insert(m.tenants).values(code=code, name=name or head["name"],
                                              created_at=dt.datetime.fromisoformat(head["created_at"]),
                                              created_by=head["created_by"], version=head["version"]))

        def put(table: str, rows: list[dict[str, Any]]) -> None:
            counts[table] = len(rows)
            if rows:
                for i in range(0, len(rows), 500):
                    conn.execute(insert(_table(table)), rows[i:i + 500])

        put("memberships", [{**{c: r.get(c) for c in _COLUMNS["memberships"]}, "tenant_id": code}
                            for r in tables["memberships"]])
        put("units", [{**{c: r.get(c) for c in _COLUMNS["units"]}, "tenant_id": code} for r in tables["units"]])
        fw = m.frameworks
        added: list[str] = []
        refs: dict[tuple[str, bool], int] = {}
        own = [r for r in tables["frameworks"] if not r.get("shared")]
        for r in tables["frameworks"]:
            read_framework_yaml(r["yaml"], f"{label}: framework {r['framework_id']}")  # readable before it is stored
            if _sha256(r["yaml"].encode("utf-8")) != r["checksum"]:
                raise FileRefused(f"tenant file {label} refused: framework {r['framework_id']} does not match its "
                                  "checksum", [{"file": label, "column": "frameworks", "value": r["framework_id"],
                                                "expected": "the yaml whose sha256 is the checksum"}])
        for r in [r for r in tables["frameworks"] if r.get("shared")]:
            cur = conn.execute(select(fw.c.id, fw.c.checksum).where(
                fw.c.tenant_id.is_(None), fw.c.framework_id == r["framework_id"])).first()
            if cur is None:
                new_id = conn.execute(insert(fw).values(tenant_id=None, **{c: r[c] for c in _COLUMNS["frameworks"]})
                                      .returning(fw.c.id)).scalar_one()
                _audit(conn, None, who, dt.datetime.now(dt.timezone.utc), [
                    {"table_name": "frameworks", "row_key": r["framework_id"], "field": "checksum", "old_value": None,
                     "new_value": r["checksum"], "action": "insert", "version": r["version"]}],
                    f"shared framework of tenant {code}, imported from {label}")
                added.append(r["framework_id"])
                refs[(r["framework_id"], True)] = new_id
            elif cur.checksum != r["checksum"]:
                raise ValidationError("cannot import the tenant", [
                    {"column": "framework_id", "value": r["framework_id"],
                     "expected": f"the same shared framework as in this store (checksum {cur.checksum[:12]}..., "
                                 f"the file's {r['checksum'][:12]}...)"}])
            else:
                refs[(r["framework_id"], True)] = cur.id
        for r in own:
            refs[(r["framework_id"], False)] = conn.execute(insert(fw).values(
                tenant_id=code, **{c: r[c] for c in _COLUMNS["frameworks"]}).returning(fw.c.id)).scalar_one()
        counts["frameworks"] = len(own)
        a = m.assessments
        put("assessments", [{**{c: r.get(c) for c in _COLUMNS["assessments"]}, "tenant_id": code,
                             "framework_ref": refs[(r["framework_id"], bool(r["framework_shared"]))]}
                            for r in tables["assessments"]])
        ids = {(r.unit_code, r.year): r.id for r in conn.execute(
            select(a.c.id, a.c.unit_code, a.c.year).where(a.c.tenant_id == code)).all()}
        put("scores", [{**{c: r.get(c) for c in _COLUMNS["scores"]}, "tenant_id": code,
                        "assessment_id": ids[(r["unit_code"], r["year"])]} for r in tables["scores"]])
        put("evidence", [{**{c: r.get(c) for c in _COLUMNS["evidence"]}, "tenant_id": code,
                          "assessment_id": ids[(r["unit_code"], r["year"])],
                          "content": f.blobs[r["sha256"]] if r["kind"] == "file" else None}
                         for r in tables["evidence"]])
        if "action_plans" in m.metadata.tables:
            put("action_plans", [{**{c: r.get(c) for c in _COLUMNS["action_plans"]}, "tenant_id": code}
                                 for r in tables["action_plans"]])
        put("audit_log", [{**{c: r.get(c) for c in _COLUMNS["audit_log"]}, "tenant_id": code}
                          for r in tables["audit_log"]])
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        _audit(conn, code, who, dt.datetime.now(dt.timezone.utc), [
            {"table_name": "tenants", "row_key": code, "field": "import", "old_value": head["code"],
             "new_value": f"sha256:{digest}", "action": "import", "version": head["version"]}],
            f"tenant imported from {label} (exported {f.manifest.get('exported_at')} by "
            f"{f.manifest.get('exported_by')} from {f.manifest.get('source_dialect')})")
        return {"tenant": code, "rows": counts, "shared_frameworks_added": added}

    return store._run(body, write=True, tenant=code)
