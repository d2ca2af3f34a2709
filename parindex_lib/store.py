"""The store: where tenants keep units, frameworks, assessments, scores and evidence.

One database holds many tenants (a province's Department of Home Affairs, a
ministry, a research group). Everything a person reads or writes goes
through a :class:`TenantSession`, bound to one tenant and one user, which
filters every query by that tenant and writes an audit row for every change
(who, when, old value, new value, reason). No public function takes a tenant
from the caller to read rows.

The database is SQLite by default (one file, WAL journal, foreign keys on,
a busy timeout and retries when another writer holds the lock) or any
PostgreSQL server (``postgresql+psycopg://...``). The schema comes from the
Alembic revisions in ``parindex_lib/migrations``; :meth:`Store.upgrade` runs
them.

Every row carries a ``version``. Writers say which version they read
(``expected_version``); a write on a row that changed since is refused with a
:class:`~parindex_lib.errors.ConflictError` naming both values, and the
second writer resolves it by saving again with the current version.

Examples
--------
>>> import tempfile, pathlib
>>> store = Store(pathlib.Path(tempfile.mkdtemp()) / "par.sqlite")
>>> store.create_tenant("hn", "Sở Nội vụ Hà Nội", admin_user="lan")
{'code': 'hn', 'name': 'Sở Nội vụ Hà Nội'}
>>> with store.session(tenant="hn", user="lan") as s:
...     s.upsert_units(pd.DataFrame({"code": ["D01"], "name": ["Sở Tư pháp"], "kind": ["department"]}))
...     list(s.units()["code"])
{'inserted': 1, 'updated': 0, 'unchanged': 0}
['D01']
>>> store.dispose()
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import random
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from . import models as m
from . import roles
from .errors import AccessDenied, ConflictError, FileRefused, NotFound, ParindexError, ValidationError
from .framework import Framework, framework_to_yaml, read_framework_yaml
from .numbers import parse_number, to_number_series

__all__ = [
    "Store",
    "TenantSession",
    "DEFAULT_DB_PATH",
    "DEFAULT_MAX_EVIDENCE_BYTES",
    "EVIDENCE_TYPES",
    "SCORE_FIELDS",
    "SCORE_COLUMNS",
    "UNIT_COLUMNS",
    "AUDIT_COLUMNS",
    "REFERENCE_COLUMNS",
    "EXPLANATION_RULE",
    "REASON_RULE",
    "needs_explanation",
    "needs_reason",
]

#: Where the embedded database lives when neither a URL nor PARINDEX_DB is given.
DEFAULT_DB_PATH = Path("var") / "parindex.sqlite"
#: Largest evidence file accepted by default (20 MB).
DEFAULT_MAX_EVIDENCE_BYTES = 20 * 1024 * 1024
#: Evidence file types accepted: extension -> media types.
EVIDENCE_TYPES: dict[str, tuple[str, ...]] = {
    "pdf": ("application/pdf",),
    "doc": ("application/msword",),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",),
    "xls": ("application/vnd.ms-excel",),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",),
    "odt": ("application/vnd.oasis.opendocument.text",),
    "ods": ("application/vnd.oasis.opendocument.spreadsheet",),
    "png": ("image/png",),
    "jpg": ("image/jpeg",),
    "jpeg": ("image/jpeg",),
}
# The first bytes each type starts with (a renamed program is refused).
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "pdf": (b"%PDF-",),
    "doc": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",),
    "xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",),
    "docx": (b"PK\x03\x04",),
    "xlsx": (b"PK\x03\x04",),
    "odt": (b"PK\x03\x04",),
    "ods": (b"PK\x03\x04",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpg": (b"\xff\xd8\xff",),
    "jpeg": (b"\xff\xd8\xff",),
}

_NUMBER_FIELDS = ("self_score", "appraised_score", "survey_points", "bonus", "penalty")
_TEXT_FIELDS = ("explanation", "evidence", "appraisal_reason", "unit_response")
#: The values a score row holds (arguments of :meth:`TenantSession.save_score`).
SCORE_FIELDS = _NUMBER_FIELDS + _TEXT_FIELDS + ("appraisal_round",)
#: Columns of :meth:`TenantSession.scores`, in order.
SCORE_COLUMNS = [
    "unit_code", "year", "framework_id", "node_code", "self_score", "appraised_score",
    "survey_points", "bonus", "penalty", "explanation", "evidence", "appraisal_reason",
    "unit_response", "appraisal_round", "version", "updated_by", "updated_at",
]
#: Columns of :meth:`TenantSession.units`, in order.
UNIT_COLUMNS = ["code", "name", "kind", "parent_code", "region", "active_from", "active_to"]
#: Columns of :meth:`TenantSession.audit`, in order.
AUDIT_COLUMNS = ["at", "user_name", "table_name", "row_key", "field", "old_value", "new_value", "reason", "action"]
#: Columns of :meth:`TenantSession.reference`, in order.
REFERENCE_COLUMNS = ["dataset", "province_code", "province_name", "year", "component", "value", "source_url"]
_ASSESSMENT_COLUMNS = ["unit_code", "year", "framework_id", "status", "deadline", "version",
                       "created_at", "created_by", "updated_at", "updated_by"]
_EVIDENCE_COLUMNS = ["id", "node_code", "kind", "name", "media_type", "size_bytes", "sha256", "url",
                     "uploaded_by", "uploaded_at", "version"]
_FRAMEWORK_COLUMNS = ["framework_id", "name_vi", "level", "status", "shared"]
# Columns write_scores accepts besides the keys and values, and ignores.
_INFO_COLUMNS = {"row", "file", "sheet", "unit_name", "node_name", "name_vi", "name_en", "level",
                 "max_points", "framework_id", "points"}

_TENANT_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TOL = 1e-9
_CHUNK = 500
_UPGRADE_LOCK = 0x70617269  # PostgreSQL advisory lock key held while migrating
# Per transaction on PostgreSQL: the tenant (row-level security), the access
# token (who the application acts for) and, for sessionless maintenance by the
# schema owner, whether it may see every tenant (revision 0002).
_SET_CONTEXT = text("select set_config('app.tenant_id', :t, true), set_config('app.token', :k, true), "
                    "set_config('app.all_tenants', :all, true)")
_T = TypeVar("_T")

# Saving one score on PostgreSQL (the functions of revision 0004): the context read and the
# conditional update with its audit rows, each one statement in its own transaction.
_SAVE_FUNCTION_FIELDS = ("self_score", "explanation", "evidence", "appraised_score", "appraisal_reason",
                         "unit_response", "appraisal_round", "survey_points", "bonus", "penalty")
_SCORE_CONTEXT = ("select * from parindex_score_context(%s::text, %s::text, %s::text, %s::text, %s::integer, "
                  "%s::text)")
_SCORE_CONTEXT_COLUMNS = (
    "tenant_code", "member_role", "member_units", "a_id", "a_tenant_id", "a_unit_code", "a_year",
    "a_framework_ref", "a_status", "a_deadline", "a_framework_id", "a_checksum", "s_id",
    *(f"s_{name}" for name in _SAVE_FUNCTION_FIELDS), "s_version", "s_updated_by", "s_updated_at", "has_evidence")
_UPDATE_SCORE = ("select parindex_update_score(%s::text, %s::text, %s::text, %s::integer, %s::integer, "
                 "%s::timestamptz, %s::text[], %s::float8, %s::text, %s::text, %s::float8, %s::text, %s::text, "
                 "%s::integer, %s::float8, %s::float8, %s::float8, %s::text, %s::text, %s::text[], %s::text[], "
                 "%s::text[])")


class _MissingFunction(Exception):
    """A function of a newer revision is missing from the database (it is not upgraded yet)."""


# -- small helpers ------------------------------------------------------------

def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _blank(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _py(value: Any) -> Any:
    """A plain Python value (None for every kind of missing)."""
    if _blank(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _text(value: Any) -> str | None:
    """A value as audit text (None stays None)."""
    value = _py(value)
    if value is None:
        return None
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), ensure_ascii=False)
    return str(value)


def _nfc(value: Any) -> str | None:
    value = _py(value)
    return None if value is None else unicodedata.normalize("NFC", str(value)).strip()


def _same(a: Any, b: Any) -> bool:
    a, b = _py(a), _py(b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= _TOL
    return a == b


def _year(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a year")
    if isinstance(value, (int, np.integer)):
        y = int(value)
    else:
        x = parse_number(value)
        if math.isnan(x) or not float(x).is_integer():
            raise ValueError(f"{value!r} is not a year")
        y = int(x)
    if not 1990 <= y <= 2100:
        raise ValueError(f"{value!r} is not a year between 1990 and 2100")
    return y


def _date(value: Any, *, end: bool = False) -> dt.date | None:
    """A date; a bare year means its first day (its last with ``end``)."""
    if _blank(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value.strip()) >= 10:
        return dt.date.fromisoformat(value.strip()[:10])
    y = _year(value)
    return dt.date(y, 12, 31) if end else dt.date(y, 1, 1)


#: Vietnam's time zone (no daylight saving time): a deadline date ends at midnight there.
VIETNAM_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")


def _timestamp(value: Any) -> dt.datetime | None:
    """A deadline: a datetime (naive = UTC), or a date meaning the end of that day in Vietnam."""
    if _blank(value):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, str):
        value = value.strip()
        value = dt.date.fromisoformat(value) if len(value) == 10 else dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
    if isinstance(value, dt.date):
        end = dt.datetime(value.year, value.month, value.day, 23, 59, 59, tzinfo=VIETNAM_TZ)
        return end.astimezone(dt.timezone.utc)
    raise ValueError(f"{value!r} is not a date and time")


def _chunks(items: list[_T], n: int = _CHUNK) -> Iterable[list[_T]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _is_locked(exc: OperationalError) -> bool:
    msg = str(getattr(exc, "orig", exc)).lower()
    return "database is locked" in msg or "database table is locked" in msg or "database is busy" in msg


def _resolve_url(url: str | os.PathLike[str] | None) -> str:
    if url is None:
        url = os.environ.get("PARINDEX_DB") or str(DEFAULT_DB_PATH)
    url = os.fspath(url)
    if "://" not in url:
        path = Path(url).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        path = Path(url[len("sqlite:///"):].split("?")[0])
        if str(path):
            path.parent.mkdir(parents=True, exist_ok=True)
    return url


class _RowView:
    """A row built from part of a query's columns: attributes and ``_mapping``, as a SQLAlchemy Row."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: dict[str, Any]) -> None:
        self._mapping = mapping

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None


def _split_context(values: Mapping[str, Any]) -> tuple[_RowView, _RowView | None]:
    """The assessment (``a_`` columns) and the stored score (``s_`` columns; None without one) of a save's context."""
    assessment = _RowView({k[2:]: v for k, v in values.items() if k.startswith("a_")})
    if values["s_id"] is None:
        return assessment, None
    return assessment, _RowView({k[2:]: v for k, v in values.items() if k.startswith("s_")})


def _row_conflict(what: str, values: Mapping[str, Any], latest: Any) -> ConflictError:
    """The conflict of writing ``values`` over the row stored now (``latest``; None: no row).

    Names the first of ``values`` whose stored value differs (else the first of them, else
    ``version``), with the stored value, version and author.
    """
    field = next((k for k in values if latest is None or not _same(values[k], latest._mapping[k])),
                 next(iter(values), "version"))
    return ConflictError(what, field, values.get(field), None if latest is None else latest._mapping.get(field),
                         0 if latest is None else latest.version, None if latest is None else latest.updated_by)


def _database_refusal(exc: BaseException) -> AccessDenied:
    """A refusal of PostgreSQL's row-level security or role triggers (SQLSTATE 42501), in one sentence."""
    reason = str(exc).splitlines()[0].removeprefix("parindex: ")
    return AccessDenied(f"the database refused this change: {reason}")


def _frame(rows: Iterable[Any], columns: list[str], text: Iterable[str] = ()) -> pd.DataFrame:
    """A DataFrame of query rows; ``text`` columns get the string dtype even when empty."""
    df = pd.DataFrame(list(rows), columns=columns)
    for c in text:
        df[c] = df[c].astype("str")
    return df


def _utc_column(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True) if len(values) else pd.Series([], dtype="datetime64[us, UTC]")


# -- the store ----------------------------------------------------------------

class Store:
    """A parindex database: SQLite file or PostgreSQL server.

    Parameters
    ----------
    url
        A SQLAlchemy URL (``sqlite:///path.sqlite``,
        ``postgresql+psycopg://user@host/db``; ``postgresql://`` is read as
        psycopg 3), or a file path for SQLite. None: the ``PARINDEX_DB``
        environment variable, else ``./var/parindex.sqlite`` (its folder is
        created).
    upgrade
        Run the migrations up to the newest schema on opening (default).
        Pass False when the application's database role may not change the
        schema, and run :meth:`upgrade` as the owner.
    token
        PostgreSQL only: the access token of the user this process acts for
        (issued by :meth:`issue_access_token`, usually by the JupyterHub
        spawner). The database opens to the application role only the
        tenants the token's memberships name, and checks every write against
        the token's role (revision 0002). None: the ``PARINDEX_DB_TOKEN``
        environment variable. The schema owner (maintenance) needs none.
    max_evidence_bytes
        Largest evidence file accepted (default 20 MB).
    busy_timeout_ms
        SQLite: how long a writer waits for another writer's lock.
    retries
        SQLite: how many times a transaction that still met "database is
        locked" is retried, with exponential backoff.

    Attributes
    ----------
    url : str
        The database URL (with the password, if any; ``repr`` hides it).
    engine : sqlalchemy.Engine
    dialect : str
        ``"sqlite"`` or ``"postgresql"``.
    """

    def __init__(self, url: str | os.PathLike[str] | None = None, *, upgrade: bool = True,
                 max_evidence_bytes: int = DEFAULT_MAX_EVIDENCE_BYTES, busy_timeout_ms: int = 5000,
                 retries: int = 6, echo: bool = False, token: str | None = None) -> None:
        self.url = _resolve_url(url)
        self.token = token if token is not None else (os.environ.get("PARINDEX_DB_TOKEN") or None)
        self.max_evidence_bytes = int(max_evidence_bytes)
        self._retries = int(retries)
        self._frameworks: dict[str, Framework] = {}
        self._leaves: dict[str, dict[str, dict[str, Any]]] = {}
        self._save_functions = True  # PostgreSQL: save scores through the functions of revision 0004
        self.engine: Engine = self._make_engine(busy_timeout_ms, echo)
        self.dialect: str = self.engine.dialect.name
        if upgrade:
            self.upgrade()

    def _make_engine(self, busy_timeout_ms: int, echo: bool) -> Engine:
        url = make_url(self.url)
        if url.get_backend_name() != "sqlite":
            # No ping per checkout (a round trip per transaction): a connection the server dropped
            # fails once, is discarded, and _run tries again on a fresh one.
            return create_engine(url, echo=echo, pool_recycle=3600)
        engine = create_engine(url, echo=echo)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # parindex emits BEGIN itself (below), so that a writer can take the
            # write lock at the start (BEGIN IMMEDIATE) instead of failing to
            # upgrade a read lock later.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("parindex_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def __repr__(self) -> str:
        return f"Store({make_url(self.url).render_as_string(hide_password=True)!r})"

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.dispose()

    def dispose(self) -> None:
        """Close every pooled connection (the Store can still be used after)."""
        self.engine.dispose()

    # -- transactions --------------------------------------------------------
    def _run(self, fn: Callable[[Connection], _T], *, write: bool, tenant: str | None = None,
             snapshot: bool = False) -> _T:
        """Run ``fn(conn)`` in one transaction, retried while SQLite is locked.

        ``snapshot``: every statement sees the same snapshot (PostgreSQL
        REPEATABLE READ; a SQLite read transaction always does).
        """
        delay = 0.05
        for attempt in range(self._retries + 1):
            try:
                with self.engine.connect() as conn:
                    if write:
                        conn.execution_options(parindex_write=True)
                    if snapshot and self.dialect == "postgresql":
                        conn.execution_options(isolation_level="REPEATABLE READ")
                    with conn.begin():
                        if self.dialect == "postgresql":
                            # Transaction-local settings (is_local = true): a pooled connection
                            # never carries a tenant or a token over to the next transaction.
                            conn.execute(_SET_CONTEXT, {"t": tenant or "", "k": self.token or "",
                                                        "all": "off" if tenant is not None else "on"})
                        return fn(conn)
            except OperationalError as exc:
                if exc.connection_invalidated and attempt == 0:
                    continue  # the server dropped a pooled connection: once more on a fresh one
                if not _is_locked(exc) or attempt == self._retries:
                    raise
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 2.0)
            except DBAPIError as exc:
                # PostgreSQL's row-level security and role triggers (revision 0002) refuse with SQLSTATE 42501
                if getattr(exc.orig, "sqlstate", None) == "42501":
                    raise _database_refusal(exc.orig) from None
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """PostgreSQL: run one statement in its own transaction on a pooled connection; its rows.

        For the functions that set the transaction's context themselves (revision 0004). Errors
        as :meth:`_run`: a refusal of the row-level security or the role triggers is an
        :class:`AccessDenied`; a connection the server dropped is discarded and the statement tried
        once more on a fresh one.
        """
        import psycopg

        for attempt in (0, 1):
            fairy = self.engine.raw_connection()
            conn = fairy.driver_connection
            try:
                conn.autocommit = True
                try:
                    with conn.cursor() as cur:
                        cur.execute(sql, params)
                        return cur.fetchall()
                finally:
                    if not conn.closed:
                        conn.autocommit = False
            except psycopg.errors.InsufficientPrivilege as exc:  # SQLSTATE 42501, as in _run
                raise _database_refusal(exc) from None
            except psycopg.errors.UndefinedFunction:
                raise _MissingFunction(sql) from None
            except psycopg.OperationalError:
                if not conn.closed or attempt == 1:
                    raise
                fairy.invalidate()  # the server dropped it: once more on a fresh one
            finally:
                fairy.close()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- schema --------------------------------------------------------------
    def _alembic_config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
        return cfg

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema up to ``revision`` (default: the newest).

        Runs the Alembic revisions in ``parindex_lib/migrations/versions`` in
        one transaction (SQLite and PostgreSQL both have transactional DDL).
        """
        from alembic import command

        cfg = self._alembic_config()

        def body(conn: Connection) -> None:
            if self.dialect == "postgresql":
                # several application processes may open the store at once
                conn.execute(text("select pg_advisory_xact_lock(:k)"), {"k": _UPGRADE_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

        self._run(body, write=True)

    def revision(self) -> str | None:
        """The schema revision the database is at (None before any)."""
        from alembic.runtime.migration import MigrationContext

        return self._run(lambda conn: MigrationContext.configure(conn).get_current_revision(), write=False)

    def head_revision(self) -> str:
        """The newest schema revision this version of parindex knows."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    # -- tenants -------------------------------------------------------------
    def create_tenant(self, code: str, name: str, admin_user: str) -> dict[str, str]:
        """Create a tenant and make ``admin_user`` its first admin.

        This is the bootstrap path: the only way to act on a tenant without
        being a member of it yet.

        Parameters
        ----------
        code
            Short identifier (letters, digits, ``_ . -``), e.g. ``"hanoi"``.
        name
            Display name, e.g. ``"Sở Nội vụ Hà Nội"``.
        admin_user
            The user who becomes the tenant's admin.

        Returns
        -------
        dict
            ``{"code": ..., "name": ...}``.

        Raises
        ------
        ValidationError
            Bad code, empty name or user, or a code already in use.
        """
        code = str(code).strip()
        name_n = _nfc(name)
        user = _nfc(admin_user)
        fails = []
        if not _TENANT_CODE.match(code):
            fails.append({"column": "code", "value": code,
                          "expected": "1-64 letters, digits, '_', '.', '-' starting with a letter or digit"})
        if not name_n:
            fails.append({"column": "name", "value": name, "expected": "the tenant's name"})
        if not user:
            fails.append({"column": "admin_user", "value": admin_user, "expected": "the user who administers the tenant"})
        if fails:
            raise ValidationError("cannot create the tenant", fails)

        def body(conn: Connection) -> dict[str, str]:
            if conn.execute(select(m.tenants.c.code).where(m.tenants.c.code == code)).first():
                raise ValidationError("cannot create the tenant", [
                    {"column": "code", "value": code, "expected": "a tenant code not in use"}])
            now = _now()
            conn.execute(insert(m.tenants).values(code=code, name=name_n, created_at=now, created_by=user, version=1))
            conn.execute(insert(m.memberships).values(tenant_id=code, user_name=user, role="admin", version=1))
            _audit(conn, code, user, now, [
                *_changes("tenants", code, None, {"name": name_n}, "insert"),
                *_changes("memberships", user, None, {"role": "admin"}, "insert"),
            ], "create tenant")
            return {"code": code, "name": name_n}

        return self._run(body, write=True, tenant=code)

    def reset_tenant(self, code: str, name: str, admin_user: str, *, reason: str = "reset tenant") -> dict[str, Any]:
        """Empty a tenant, or create it: a maintenance step for demo and training tenants.

        Removes the tenant's units, assessments, scores, evidence, action
        plans, own frameworks and members in one transaction, makes
        ``admin_user`` its only member (admin) and sets its name. The audit log is kept, with
        one row per emptied table (old value: the number of rows).

        Parameters
        ----------
        code, name, admin_user
            As :meth:`create_tenant`.
        reason
            Recorded in the audit log.

        Returns
        -------
        dict
            ``code``, ``name`` and ``removed``: rows removed per table.
        """
        code = str(code).strip()
        if not self._run(lambda conn: conn.execute(select(m.tenants.c.code).where(m.tenants.c.code == code)).first(),
                         write=False, tenant=code):
            return {**self.create_tenant(code, name, admin_user), "removed": {}}
        name_n, user = _nfc(name), _nfc(admin_user)
        if not name_n or not user:
            raise ValidationError("cannot reset the tenant", [
                {"column": "name" if not name_n else "admin_user", "value": name if not name_n else admin_user,
                 "expected": "the tenant's name and its admin user"}])

        def body(conn: Connection) -> dict[str, Any]:
            removed: dict[str, int] = {}
            now = _now()
            changes: list[dict] = []
            # children before parents: action plans and assessments point at units
            for table in (m.evidence, m.scores, m.action_plans, m.assessments, m.units, m.frameworks, m.memberships):
                n = conn.execute(delete(table).where(table.c.tenant_id == code)).rowcount
                removed[table.name] = n
                if n:
                    changes.append({"table_name": table.name, "row_key": "*", "field": "rows", "old_value": str(n),
                                    "new_value": "0", "action": "delete", "version": 1})
            conn.execute(insert(m.memberships).values(tenant_id=code, user_name=user, role="admin", version=1))
            changes += _changes("memberships", user, None, {"role": "admin"}, "insert")
            cur = conn.execute(select(m.tenants).where(m.tenants.c.code == code)).first()
            if cur.name != name_n:
                conn.execute(update(m.tenants).where(m.tenants.c.code == code).values(
                    name=name_n, version=cur.version + 1))
                changes += _changes("tenants", code, cur._mapping, {"name": name_n}, "update", cur.version + 1)
            _audit(conn, code, user, now, changes, reason)
            return {"code": code, "name": name_n, "removed": removed}

        return self._run(body, write=True, tenant=code)

    def tenants(self, user: str | None = None) -> pd.DataFrame:
        """The tenants in this database.

        Parameters
        ----------
        user
            When given, only the tenants ``user`` is a member of, with their role.

        Returns
        -------
        pandas.DataFrame
            Columns ``code``, ``name``, ``created_at``, ``created_by``, and
            ``role`` when ``user`` is given; sorted by code.
        """
        t, ms = m.tenants, m.memberships
        cols = [t.c.code, t.c.name, t.c.created_at, t.c.created_by]
        if user is None:
            q = select(*cols).order_by(t.c.code)
            names = ["code", "name", "created_at", "created_by"]
        else:
            q = (select(*cols, ms.c.role).join(ms, ms.c.tenant_id == t.c.code)
                 .where(ms.c.user_name == _nfc(user)).order_by(t.c.code))
            names = ["code", "name", "created_at", "created_by", "role"]
        rows = self._run(lambda conn: conn.execute(q).all(), write=False)
        df = _frame(rows, names, text=[c for c in names if c != "created_at"])
        df["created_at"] = _utc_column(df["created_at"])
        return df

    def session(self, *, tenant: str, user: str) -> "TenantSession":
        """Open a session bound to one tenant and one user.

        Parameters
        ----------
        tenant
            The tenant's code.
        user
            The user's name; must be a member of the tenant.

        Returns
        -------
        TenantSession
            Use it as a context manager (``with store.session(...) as s:``).

        Raises
        ------
        AccessDenied
            Unknown tenant, or a user who is not a member.
        """
        s = TenantSession(self, str(tenant).strip(), _nfc(user) or "")
        s._run(lambda conn: None, write=False)  # checks tenant and membership now
        return s

    def _require_member(self, conn: Connection, tenant: str, user: str) -> dict[str, Any]:
        t, ms = m.tenants, m.memberships
        row = conn.execute(select(t.c.code, ms.c.role, ms.c.unit_codes).select_from(t).outerjoin(
            ms, and_(ms.c.tenant_id == t.c.code, ms.c.user_name == user)).where(t.c.code == tenant)).first()
        return self._membership(row is not None, None if row is None else row.role,
                                None if row is None else row.unit_codes, tenant, user)

    def _membership(self, tenant_found: bool, role: str | None, unit_codes: str | None, tenant: str,
                    user: str) -> dict[str, Any]:
        """The member's role and units, or the refusal (no such tenant, not a member)."""
        if not tenant_found:
            hint = ("" if self.dialect != "postgresql" else
                    " (on PostgreSQL the application role sees only the tenants its access token opens: "
                    "set PARINDEX_DB_TOKEN, issued by Store.issue_access_token or the JupyterHub spawner)")
            raise AccessDenied(f"there is no tenant {tenant!r} in this store{hint}")
        if role is None:
            raise AccessDenied(f"user {user!r} is not a member of tenant {tenant!r}; "
                               "ask one of the tenant's admins to add you")
        return {"role": role, "unit_codes": json.loads(unit_codes) if unit_codes else None}

    # -- frameworks ----------------------------------------------------------
    def _framework(self, yaml_text: str, checksum: str, framework_id: str) -> Framework:
        fw = self._frameworks.get(checksum)
        if fw is None:
            fw = read_framework_yaml(yaml_text, f"store:{framework_id}")
            self._frameworks[checksum] = fw
        return fw

    def _leaf_records(self, checksum: str, fw: Framework) -> dict[str, dict[str, Any]]:
        """A framework's leaves as ``code -> row`` (computed once per framework)."""
        leaves = self._leaves.get(checksum)
        if leaves is None:
            leaves = self._leaves[checksum] = {r["code"]: r for r in fw.leaves.to_dict("records")}
        return leaves

    def add_shared_framework(self, fw: Framework, *, user: str = "maintenance") -> dict[str, Any]:
        """Load a framework every tenant can read and none can change.

        A maintenance operation (no tenant session); the shipped frameworks
        are loaded this way.

        Parameters
        ----------
        fw
            The framework.
        user
            Who loads it (recorded in the audit log).

        Returns
        -------
        dict
            ``framework_id``, ``checksum``, ``version`` and ``action``
            (``"insert"``, ``"update"`` or ``"unchanged"``).

        Raises
        ------
        ValidationError
            When a different framework with the same id is already used by
            assessments (give the changed framework a new id).
        """
        return self._run(lambda conn: _put_framework(self, conn, None, fw, _nfc(user) or "maintenance"), write=True)

    def shared_frameworks(self) -> pd.DataFrame:
        """The shared frameworks: columns ``framework_id``, ``name_vi``, ``level``, ``status``, ``shared``."""
        f = m.frameworks
        q = select(f.c.framework_id, f.c.name_vi, f.c.level, f.c.status).where(
            f.c.tenant_id.is_(None)).order_by(f.c.framework_id)
        df = _frame(self._run(lambda conn: conn.execute(q).all(), write=False), _FRAMEWORK_COLUMNS[:4],
                    text=_FRAMEWORK_COLUMNS[:4])
        df["shared"] = True
        return df

    # -- reference data ------------------------------------------------------
    def load_reference(self, df: pd.DataFrame, sources: pd.DataFrame, *, user: str = "maintenance",
                       reason: str | None = None) -> dict[str, int]:
        """Load shared public reference data (PAR INDEX, SIPAS, PCI, PAPI...).

        A maintenance operation: tenants read this data through
        :meth:`TenantSession.reference` and cannot change it. The datasets in
        ``df`` are replaced as a whole, in one transaction: new values are
        added, changed ones updated, values no longer in ``df`` removed, and
        each change audited.

        Parameters
        ----------
        df
            Columns ``dataset``, ``province_code``, ``province_name``,
            ``year``, ``component``, ``value`` (float, NaN = not published)
            and ``source_url``. One row per dataset, province, year and
            component.
            (``index`` is read as ``dataset``, as :mod:`parindex_lib.external` names it.)
        sources
            The catalogue of sources: columns ``dataset``, ``title``, ``url``
            and optionally ``publisher``, ``notes`` (``index``, ``name`` and
            ``address`` are read as ``dataset``, ``title`` and ``url``).
        user, reason
            Recorded in the audit log.

        Returns
        -------
        dict
            Counts ``inserted``, ``updated``, ``deleted``, ``unchanged``.

        Raises
        ------
        ValidationError
            Listing every bad row (missing columns or keys, duplicates,
            non-numeric values, sources without title or URL).
        """
        rv, rs = m.reference_values, m.reference_sources
        user = _nfc(user) or "maintenance"
        df = _aliased(df, {"index": "dataset"})
        sources = _aliased(sources, {"index": "dataset", "name": "title", "address": "url"})
        fails: list[dict] = []
        missing = [c for c in REFERENCE_COLUMNS if c not in df.columns]
        if missing:
            raise ValidationError("the reference table lacks columns", [
                {"column": c, "expected": "columns " + ", ".join(REFERENCE_COLUMNS)} for c in missing])
        values, bad = to_number_series(df["value"])
        records = []
        for i, rec in enumerate(df[REFERENCE_COLUMNS].to_dict("records")):
            row = i + 2
            if bad.iloc[i]:
                fails.append({"row": row, "column": "value", "value": rec["value"], "expected": "a number or blank"})
            for c in ("dataset", "province_code", "province_name", "component"):
                if _blank(rec[c]):
                    fails.append({"row": row, "column": c, "value": None, "expected": f"a {c}"})
            try:
                y = _year(rec["year"])
            except ValueError:
                fails.append({"row": row, "column": "year", "value": rec["year"], "expected": "a year"})
                y = None
            records.append({"dataset": _nfc(rec["dataset"]), "province_code": _nfc(rec["province_code"]),
                            "province_name": _nfc(rec["province_name"]), "year": y,
                            "component": _nfc(rec["component"]), "value": _py(values.iloc[i]),
                            "source_url": _nfc(rec["source_url"]), "_row": row})
        seen: dict[tuple, int] = {}
        for r in records:
            key = (r["dataset"], r["province_code"], r["year"], r["component"])
            if key in seen:
                fails.append({"row": r["_row"], "column": "component", "value": r["component"],
                              "expected": f"one value per dataset, province, year and component (also row {seen[key]})"})
            seen.setdefault(key, r["_row"])
        src_records = []
        for i, rec in enumerate(sources.to_dict("records")):
            for c in ("dataset", "title", "url"):
                if _blank(rec.get(c)):
                    fails.append({"file": "sources", "row": i + 2, "column": c, "value": None, "expected": f"the source's {c}"})
            src_records.append({"dataset": _nfc(rec.get("dataset")), "title": _nfc(rec.get("title")),
                                "url": _nfc(rec.get("url")), "publisher": _nfc(rec.get("publisher")),
                                "notes": _nfc(rec.get("notes"))})
        if fails:
            raise ValidationError("reference data refused", fails)
        datasets = sorted({r["dataset"] for r in records} | {s["dataset"] for s in src_records})
        why = reason or "load reference data"

        def body(conn: Connection) -> dict[str, int]:
            now = _now()
            counts = {"inserted": 0, "updated": 0, "deleted": 0, "unchanged": 0}
            old = {(r.dataset, r.province_code, r.year, r.component): r for r in conn.execute(
                select(rv).where(rv.c.dataset.in_(datasets))).all()}
            ins, upd, changes = [], [], []
            for r in records:
                key = (r["dataset"], r["province_code"], r["year"], r["component"])
                rk = "/".join(map(str, key))
                new = {k: r[k] for k in ("province_name", "value", "source_url")}
                cur = old.pop(key, None)
                if cur is None:
                    ins.append({**{k: r[k] for k in REFERENCE_COLUMNS}, "version": 1})
                    changes += _changes("reference_values", rk, None, new, "insert")
                    counts["inserted"] += 1
                    continue
                diff = _changes("reference_values", rk, cur._mapping, new, "update", version=cur.version + 1)
                if diff:
                    upd.append({"b_id": cur.id, **new, "version": cur.version + 1})
                    changes += diff
                    counts["updated"] += 1
                else:
                    counts["unchanged"] += 1
            gone = list(old.values())
            for cur in gone:
                rk = "/".join(map(str, (cur.dataset, cur.province_code, cur.year, cur.component)))
                changes += _changes("reference_values", rk, cur._mapping,
                                    {"province_name": None, "value": None, "source_url": None}, "delete")
            for part in _chunks([g.id for g in gone]):
                conn.execute(delete(rv).where(rv.c.id.in_(part)))
            counts["deleted"] = len(gone)
            if ins:
                conn.execute(insert(rv), ins)
            if upd:
                conn.execute(update(rv).where(rv.c.id == bindparam("b_id")).values(
                    province_name=bindparam("province_name"), value=bindparam("value"),
                    source_url=bindparam("source_url"), version=bindparam("version")), upd)
            old_src = {(s.dataset, s.url): s for s in conn.execute(select(rs).where(rs.c.dataset.in_(datasets))).all()}
            for s in src_records:
                cur = old_src.get((s["dataset"], s["url"]))
                new = {k: s[k] for k in ("title", "publisher", "notes")}
                rk = f"{s['dataset']}/{s['url']}"
                if cur is None:
                    conn.execute(insert(rs).values(**s, version=1))
                    changes += _changes("reference_sources", rk, None, new, "insert")
                    old_src[(s["dataset"], s["url"])] = s  # a repeated source is inserted once
                elif isinstance(cur, dict):
                    continue
                else:
                    diff = _changes("reference_sources", rk, cur._mapping, new, "update", version=cur.version + 1)
                    if diff:
                        conn.execute(update(rs).where(rs.c.id == cur.id).values(**new, version=cur.version + 1))
                        changes += diff
            _audit(conn, None, user, now, changes, why)
            return counts

        return self._run(body, write=True)


    # -- PostgreSQL roles and access tokens (maintenance) ----------------------
    def grant_application_role(self, role: str) -> list[str]:
        """Grant a PostgreSQL login role what the application needs, and nothing more.

        Run as the schema owner after :meth:`upgrade` (and again after each
        upgrade that adds tables). The application role owns nothing: it
        reads every table it needs, inserts, updates and deletes rows of the
        tenant tables (row-level security and the triggers of revision 0002
        decide which), only appends to the audit log (no UPDATE, DELETE or
        TRUNCATE), only reads tenants and the shared reference data, and has
        no privilege at all on ``access_tokens``.

        Parameters
        ----------
        role
            The application's login role, e.g. ``"parindex_app"`` (created
            by the database administrator: ``deploy/postgres/setup``).

        Returns
        -------
        list of str
            The statements run.

        Raises
        ------
        ParindexError
            On SQLite, or when ``role`` is not a plain role name.
        """
        if self.dialect != "postgresql":
            raise ParindexError("database roles exist only on PostgreSQL")
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
            raise ParindexError(f"{role!r} is not a plain role name (lower-case letters, digits, '_')")
        # every table with a tenant_id (the action plans of revision 0003 included), except the audit log
        # (appended to) and the access tokens (none)
        writable = [t.name for t in m.metadata.sorted_tables
                    if "tenant_id" in t.c and t.name not in ("audit_log", "access_tokens")]
        missing = set(m.TENANT_TABLES) - set(writable)
        if missing:  # pragma: no cover - the models and this list must agree
            raise ParindexError(f"tenant tables missing from the application role's grants: {sorted(missing)}")
        statements: list[str] = []

        def body(conn: Connection) -> None:
            schema = conn.execute(text("select current_schema()")).scalar_one()
            q = '"' + schema.replace('"', '""') + '"'
            statements.extend([
                f"REVOKE ALL ON ALL TABLES IN SCHEMA {q} FROM {role}",
                f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {q} FROM {role}",
                f"GRANT USAGE ON SCHEMA {q} TO {role}",
                f"GRANT SELECT ON tenants, reference_sources, reference_values, alembic_version TO {role}",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(writable)} TO {role}",
                f"GRANT SELECT, INSERT ON audit_log TO {role}",
            ])
            for t in [*writable, "audit_log"]:
                seq = conn.execute(text("select pg_get_serial_sequence(:t, 'id')"), {"t": t}).scalar()
                if seq:
                    statements.append(f"GRANT USAGE ON SEQUENCE {seq} TO {role}")
            for sql in statements:
                conn.execute(text(sql))

        self._run(body, write=True)
        return statements

    def issue_access_token(self, user: str, *, ttl_seconds: int = 24 * 3600, by: str = "maintenance") -> str:
        """Issue a database access token for ``user`` (maintenance: run as the schema owner).

        The token opens, on PostgreSQL, the tenants ``user`` is a member of
        *now*, with the role and units of each membership, until it expires
        or is revoked. Give it to the user's processes only (the JupyterHub
        spawner puts it in ``PARINDEX_DB_TOKEN``); the store sets it per
        transaction. Only its sha256 is stored. Expired tokens of the user
        are removed.

        Parameters
        ----------
        user
            The user name (as in the memberships).
        ttl_seconds
            Lifetime (default one day).
        by
            Who issues it (kept with the token).

        Returns
        -------
        str
            The token (43 URL-safe characters).

        Raises
        ------
        AccessDenied
            When ``user`` is a member of no tenant.
        """
        name = _nfc(user) or ""
        token = secrets.token_urlsafe(32)
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        at, ms = m.access_tokens, m.memberships

        def body(conn: Connection) -> None:
            rows = conn.execute(select(ms.c.tenant_id, ms.c.role, ms.c.unit_codes)
                                .where(ms.c.user_name == name)).all()
            if not rows:
                raise AccessDenied(f"user {name!r} is a member of no tenant: no access token issued")
            now = _now()
            conn.execute(delete(at).where(at.c.user_name == name, at.c.expires_at <= now))
            conn.execute(insert(at), [{"token_sha256": digest, "user_name": name, "tenant_id": r.tenant_id,
                                       "role": r.role, "unit_codes": r.unit_codes, "issued_at": now,
                                       "issued_by": _nfc(by) or "maintenance",
                                       "expires_at": now + dt.timedelta(seconds=int(ttl_seconds))} for r in rows])

        self._run(body, write=True)
        return token

    def revoke_access_tokens(self, user: str) -> int:
        """Remove every access token of ``user`` (maintenance). Returns the number of rows removed."""
        at = m.access_tokens
        return self._run(lambda conn: conn.execute(delete(at).where(at.c.user_name == (_nfc(user) or ""))).rowcount,
                         write=True)

    def sync_memberships(self, user: str, memberships: Mapping[str, tuple[str, Iterable[str] | None]], *,
                         by: str = "jupyterhub", remove_others: bool = True) -> dict[str, list[str]]:
        """Make ``user``'s memberships those of an identity provider (maintenance).

        In a JupyterHub deployment the hub's groups say who belongs to which
        tenant with which role (:mod:`parindex_lib.identity`); the spawner
        calls this before each start, so the store and the database checks
        agree with the hub. Every change is audited in its tenant (user
        ``by``, reason ``"synchronised from <by>"``).

        Parameters
        ----------
        user
            The user name.
        memberships
            Tenant code -> ``(role, unit_codes)``; unit codes matter for
            editors only (codes that are not units of the tenant are left out
            and reported).
        by
            Who synchronises (recorded in the audit log).
        remove_others
            Also remove the user's memberships of tenants not listed.

        Returns
        -------
        dict
            Lists ``added``, ``changed``, ``removed``, ``unchanged`` (tenant
            codes), ``unknown_tenants`` and ``unknown_units``
            (``"tenant:unit"``).
        """
        name = _nfc(user) or ""
        by = _nfc(by) or "jupyterhub"
        why = f"synchronised from {by}"
        ms = m.memberships
        wanted = {str(t).strip(): (r, None if c is None else sorted({str(x).strip() for x in c}))
                  for t, (r, c) in memberships.items()}
        bad_roles = [f"{t}: {r}" for t, (r, _) in wanted.items() if r not in m.ROLES]
        if bad_roles:
            raise ValidationError("cannot synchronise memberships", [
                {"column": "role", "value": v, "expected": "one of " + ", ".join(m.ROLES)} for v in bad_roles])
        out: dict[str, list[str]] = {k: [] for k in ("added", "changed", "removed", "unchanged", "unknown_tenants",
                                                      "unknown_units")}

        def body(conn: Connection) -> None:
            known = {r[0] for r in conn.execute(select(m.tenants.c.code).where(
                m.tenants.c.code.in_(list(wanted)))).all()} if wanted else set()
            out["unknown_tenants"] = sorted(set(wanted) - known)
            current = {r.tenant_id: r for r in conn.execute(select(ms).where(ms.c.user_name == name)).all()}
            now = _now()
            for t in sorted(known):
                role, codes = wanted[t]
                if role == "editor":
                    have = {r[0] for r in conn.execute(select(m.units.c.code).where(
                        m.units.c.tenant_id == t, m.units.c.code.in_(codes or []))).all()} if codes else set()
                    out["unknown_units"] += [f"{t}:{c}" for c in (codes or []) if c not in have]
                    codes = [c for c in (codes or []) if c in have]
                    unit_text = json.dumps(codes, ensure_ascii=False)
                else:
                    unit_text = None
                new = {"role": role, "unit_codes": unit_text}
                cur = current.get(t)
                if cur is None:
                    conn.execute(insert(ms).values(tenant_id=t, user_name=name, version=1, **new))
                    _audit(conn, t, by, now, _changes("memberships", name, None, new, "insert"), why)
                    out["added"].append(t)
                    continue
                diff = _changes("memberships", name, cur._mapping, new, "update", cur.version + 1)
                if not diff:
                    out["unchanged"].append(t)
                    continue
                conn.execute(update(ms).where(ms.c.id == cur.id).values(version=cur.version + 1, **new))
                _audit(conn, t, by, now, diff, why)
                out["changed"].append(t)
            if remove_others:
                for t, cur in sorted(current.items()):
                    if t in wanted:
                        continue
                    conn.execute(delete(ms).where(ms.c.id == cur.id))
                    _audit(conn, t, by, now, _changes("memberships", name, cur._mapping,
                                                      {"role": None, "unit_codes": None}, "delete", cur.version), why)
                    out["removed"].append(t)

        self._run(body, write=True)
        return out

# -- audit and framework helpers shared by Store and TenantSession ----------------

def _changes(table: str, row_key: str, old: Mapping[str, Any] | None, new: Mapping[str, Any], action: str,
             version: int = 1) -> list[dict[str, Any]]:
    """Audit rows for every field of ``new`` whose value differs from ``old``."""
    out = []
    for field, value in new.items():
        before = None if old is None else old.get(field)
        if action == "insert" and _py(value) is None:
            continue
        if action != "delete" and _same(before, value):
            continue
        out.append({"table_name": table, "row_key": row_key, "field": field, "old_value": _text(before),
                    "new_value": _text(value) if action != "delete" else None, "action": action,
                    "version": version})
    return out


def _audit(conn: Connection, tenant: str | None, user: str, at: dt.datetime, rows: list[dict[str, Any]],
           reason: str | None) -> int:
    """Insert audit rows (one executemany)."""
    if not rows:
        return 0
    conn.execute(insert(m.audit_log), [{"tenant_id": tenant, "user_name": user, "at": at, "reason": reason, **r}
                                       for r in rows])
    return len(rows)


def _put_framework(store: Store, conn: Connection, tenant: str | None, fw: Framework, user: str) -> dict[str, Any]:
    if not isinstance(fw, Framework):
        raise ValidationError("not a framework", [{"value": type(fw).__name__, "expected": "a parindex Framework"}])
    f = m.frameworks
    yaml_text = framework_to_yaml(fw)
    read_framework_yaml(yaml_text, f"framework {fw.id}")  # the stored text must read back
    checksum = hashlib.sha256(yaml_text.encode("utf-8")).hexdigest()
    owner = f.c.tenant_id.is_(None) if tenant is None else f.c.tenant_id == tenant
    cur = conn.execute(select(f).where(owner, f.c.framework_id == fw.id)).first()
    now = _now()
    new = {"name_vi": fw.name_vi, "level": fw.level, "status": fw.status, "checksum": checksum}
    if cur is None:
        conn.execute(insert(f).values(tenant_id=tenant, framework_id=fw.id, yaml=yaml_text, created_at=now,
                                      created_by=user, version=1, **new))
        _audit(conn, tenant, user, now, _changes("frameworks", fw.id, None, new, "insert"),
               "add shared framework" if tenant is None else "add framework")
        return {"framework_id": fw.id, "checksum": checksum, "version": 1, "action": "insert"}
    if cur.checksum == checksum:
        return {"framework_id": fw.id, "checksum": checksum, "version": cur.version, "action": "unchanged"}
    used = conn.execute(select(func.count()).select_from(m.assessments).where(
        m.assessments.c.framework_ref == cur.id)).scalar_one()
    if used:
        raise ValidationError(f"framework {fw.id} is already used by {used} assessment(s)", [{
            "column": "id", "value": fw.id,
            "expected": "a new framework id for a changed framework (assessments keep the one they were scored on)"}])
    res = conn.execute(update(f).where(f.c.id == cur.id, f.c.version == cur.version).values(
        yaml=yaml_text, version=cur.version + 1, **new))
    if res.rowcount != 1:
        raise ConflictError(f"framework {fw.id}", "yaml", checksum, cur.checksum, cur.version + 1, cur.created_by)
    _audit(conn, tenant, user, now, _changes("frameworks", fw.id, cur._mapping, new, "update", cur.version + 1),
           "replace shared framework" if tenant is None else "replace framework")
    return {"framework_id": fw.id, "checksum": checksum, "version": cur.version + 1, "action": "update"}


#: What the evidence rule asks for (:meth:`TenantSession.save_score`; :meth:`TenantSession.write_scores`
#: with ``require_explanations=True``).
EXPLANATION_RULE = "an explanation when there is no evidence"
#: What the appraisal rule asks for (:meth:`TenantSession.save_score` and :meth:`TenantSession.write_scores`).
REASON_RULE = "an appraisal_reason when the appraised score differs from the self score"
_NUL_EXPECTED = "text without the NUL character (shown here as \\x00), which the database cannot store"


def _shown_nul(value: str) -> str:
    """Text with its NUL characters made visible (a failure table never carries a NUL)."""
    return value.replace("\x00", "\\x00")


def _number_or_none(value: Any) -> float | None:
    """A number from a stored or typed value; None when blank or not a number (the range checks report those)."""
    if _blank(value) or isinstance(value, bool):
        return None
    try:
        x = float(value) if isinstance(value, (int, float, np.integer, np.floating)) else parse_number(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else float(x)


def needs_explanation(values: Mapping[str, Any], *, evidence_required: bool = True, evidence_items: int = 0) -> bool:
    """Whether a leaf's values break the evidence rule.

    A self score on a leaf whose framework says ``evidence_required`` needs
    evidence (an evidence file or link attached to the leaf, or ``evidence``
    text) or, failing that, an ``explanation``.

    Parameters
    ----------
    values
        The leaf's values as they will be stored (the stored row with the
        new values on top): ``self_score``, ``evidence``, ``explanation``.
    evidence_required
        The leaf's ``evidence_required`` (:attr:`Framework.nodes`).
    evidence_items
        Evidence files and links attached to the leaf.

    Examples
    --------
    >>> needs_explanation({"self_score": 1.5})
    True
    >>> needs_explanation({"self_score": 1.5, "explanation": "Đã ban hành"})
    False
    >>> needs_explanation({"self_score": 1}, evidence_items=1)
    False
    >>> needs_explanation({"self_score": 1.5}, evidence_required=False), needs_explanation({"self_score": None})
    (False, False)
    """
    if not evidence_required or _blank(values.get("self_score")):
        return False
    return not evidence_items and _blank(values.get("evidence")) and _blank(values.get("explanation"))


def needs_reason(values: Mapping[str, Any]) -> bool:
    """Whether a leaf's values break the appraisal rule.

    An ``appraised_score`` that differs from the ``self_score`` (or stands
    without one) needs an ``appraisal_reason``. A value that is not a number
    breaks no rule here (the range checks refuse it).

    Examples
    --------
    >>> needs_reason({"self_score": 3, "appraised_score": 2}), needs_reason({"self_score": 3, "appraised_score": "3,0"})
    (True, False)
    >>> needs_reason({"self_score": 3, "appraised_score": 2, "appraisal_reason": "Thiếu báo cáo"})
    False
    >>> needs_reason({"appraised_score": 2}), needs_reason({"self_score": 3})
    (True, False)
    """
    appraised = _number_or_none(values.get("appraised_score"))
    if appraised is None or not _blank(values.get("appraisal_reason")):
        return False
    own = _number_or_none(values.get("self_score"))
    return own is None or abs(appraised - own) > _TOL


def _explanation_failure(label: str, self_score: Any, where: Mapping[str, Any]) -> dict[str, Any]:
    """The failure row of the evidence rule; ``label`` names the leaf (``node 1.2``, ``unit D01, node 1.2``)."""
    x = _number_or_none(self_score)
    shown = f" of {x:g}" if x is not None else ""
    return {**where, "column": "explanation", "value": None,
            "expected": f"{EXPLANATION_RULE} (no evidence file, link or text): {label} has a self score{shown}"}


def _reason_failure(label: str, values: Mapping[str, Any], where: Mapping[str, Any]) -> dict[str, Any]:
    """The failure row of the appraisal rule; ``label`` names the leaf."""
    a, s = _number_or_none(values.get("appraised_score")), _number_or_none(values.get("self_score"))
    own = "no self score" if s is None else f"self score {s:g}"
    return {**where, "column": "appraisal_reason", "value": None,
            "expected": f"{REASON_RULE}: {label} has appraised score {a:g}, {own}"}


def _refuse_nul_reason(reason: str | None, what: str) -> None:
    if isinstance(reason, str) and "\x00" in reason:
        raise ValidationError(f"{what} refused", [
            {"column": "reason", "value": _shown_nul(reason), "expected": _NUL_EXPECTED}])


def _check_values(fw: Framework, node: Mapping[str, Any] | None, node_code: str, values: Mapping[str, Any],
                  where: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Clean one leaf's values and list what is wrong with them.

    Returns the cleaned values (None = clear) and failure-table rows.
    """
    fails: list[dict[str, Any]] = []
    clean: dict[str, Any] = {}

    def fail(column: str, value: Any, expected: str) -> None:
        fails.append({**where, "column": column, "value": value, "expected": expected})

    if node is None:
        fail("node_code", node_code, f"a leaf node of framework {fw.id} (scores go on leaves)")
        return clean, fails
    mp = float(node["max_points"])
    survey = node["assessed_by"] == "survey"
    for key, raw in values.items():
        if key in _NUMBER_FIELDS:
            try:
                if isinstance(raw, bool):
                    raise ValueError(f"{raw!r} is not a number")
                x = parse_number(raw)
            except ValueError:
                fail(key, raw, "a number of points")
                continue
            if math.isnan(x):
                clean[key] = None
                continue
            if key in ("self_score", "appraised_score"):
                if survey:
                    fail(key, raw, f"no {key} on node {node_code}, which is assessed by survey: enter survey_points")
                    continue
                if not -_TOL <= x <= mp + _TOL:
                    fail(key, raw, f"points between 0 and {mp:g} (the maximum of node {node_code})")
                    continue
                rubric = node.get("rubric")
                if rubric and not any(abs(x - p) <= _TOL for p, _, _ in rubric):
                    levels = ", ".join(f"{p:g}" for p, _, _ in rubric)
                    fail(key, raw, f"one of the rubric levels of node {node_code}: {levels}")
                    continue
            elif key == "survey_points":
                if not survey:
                    fail(key, raw, f"no survey_points on node {node_code}, which is assessed by {node['assessed_by']}")
                    continue
                if not -_TOL <= x <= mp + _TOL:
                    fail(key, raw, f"points between 0 and {mp:g} (the maximum of node {node_code})")
                    continue
            else:
                cap = fw.bonus_cap if key == "bonus" else fw.penalty_cap
                if x < -_TOL or (cap is not None and x > cap + _TOL):
                    upper = f" and {cap:g} (the framework's {key} cap)" if cap is not None else ""
                    fail(key, raw, f"{key} points of at least 0{upper}" if not upper else f"{key} points between 0{upper}")
                    continue
            clean[key] = float(x)
        elif key in _TEXT_FIELDS:
            if _blank(raw):
                clean[key] = None
            elif not isinstance(raw, str):
                fail(key, raw, "text")
            elif "\x00" in raw:
                fail(key, _shown_nul(raw), _NUL_EXPECTED)
            else:
                clean[key] = _nfc(raw)
        elif key == "appraisal_round":
            if _blank(raw):
                clean[key] = None
                continue
            try:
                r = parse_number(raw)
                if isinstance(raw, bool) or not float(r).is_integer() or r < 1:
                    raise ValueError(f"{raw!r} is not a round")
                clean[key] = int(r)
            except ValueError:
                fail(key, raw, "an appraisal round 1, 2, ...")
        else:
            fail(key, raw, "one of " + ", ".join(SCORE_FIELDS))
    return clean, fails


# -- the tenant session -----------------------------------------------------------

class TenantSession:
    """Everything one user does in one tenant.

    Made by :meth:`Store.session`; use it as a context manager. Every method
    runs in its own transaction, checks again that the user is still a member
    of the tenant, reads and writes only the tenant's rows (plus shared
    frameworks and reference data, read-only), and audits every change.
    Codes of another tenant's units behave exactly as codes that do not exist.

    Bonus and penalty points (điểm thưởng, điểm trừ) belong to a unit and
    year, but the schema keeps them in the ``bonus`` and ``penalty`` columns
    of the score rows (one row per leaf). They are read as one value per
    assessment: the sum over its rows, capped by the framework's
    ``bonus_cap`` and ``penalty_cap`` (:func:`parindex_lib.aggregation.roll_up`
    adds the capped sums to the total only). :meth:`set_adjustment` keeps
    them on one designated row and refuses values over the caps;
    :meth:`save_score` and :meth:`write_scores` check each row against the
    caps, not the sum.

    Attributes
    ----------
    tenant : str
    user : str
    """

    def __init__(self, store: Store, tenant: str, user: str) -> None:
        self.store = store
        self.tenant = tenant
        self.user = user
        self._member: dict[str, Any] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"TenantSession(tenant={self.tenant!r}, user={self.user!r})"

    def __enter__(self) -> "TenantSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """End the session; later calls raise."""
        self._closed = True

    @property
    def role(self) -> str:
        """The user's role in the tenant (as of the last call)."""
        return self._member.get("role", "")

    @property
    def unit_codes(self) -> list[str] | None:
        """For an editor, the units they may score; None for other roles."""
        return self._member.get("unit_codes")

    def _run(self, fn: Callable[[Connection], _T], *, write: bool, snapshot: bool = False,
             member_check: bool = True) -> _T:
        """Run ``fn`` in one transaction of this tenant, after checking the membership again.

        ``member_check=False``: ``fn`` checks the membership itself, in its first query (save_score).
        """
        if self._closed:
            raise ParindexError(f"the session of {self.user!r} in tenant {self.tenant!r} is closed")

        def body(conn: Connection) -> _T:
            if member_check:
                self._member = self.store._require_member(conn, self.tenant, self.user)
            return fn(conn)

        return self.store._run(body, write=write, tenant=self.tenant, snapshot=snapshot)

    def _audit(self, conn: Connection, rows: list[dict[str, Any]], reason: str | None, at: dt.datetime | None = None) -> int:
        return _audit(conn, self.tenant, self.user, at or _now(), rows, reason)

    # -- lookups (always by this tenant) --------------------------------------
    def _framework_row(self, conn: Connection, framework_id: str) -> Any:
        f = m.frameworks
        row = conn.execute(
            select(f).where(f.c.framework_id == str(framework_id),
                            or_(f.c.tenant_id == self.tenant, f.c.tenant_id.is_(None)))
            .order_by(case((f.c.tenant_id.is_(None), 1), else_=0)).limit(1)).first()
        if row is None:
            raise NotFound(f"no framework {framework_id!r} in tenant {self.tenant!r} or among the shared frameworks")
        return row

    def _unit_row(self, conn: Connection, unit_code: str) -> Any:
        u = m.units
        row = conn.execute(select(u).where(u.c.tenant_id == self.tenant, u.c.code == str(unit_code).strip())).first()
        if row is None:
            raise NotFound(f"no unit {unit_code!r} in tenant {self.tenant!r}")
        return row

    def _assessment_row(self, conn: Connection, unit_code: str, year: Any) -> Any:
        a, f = m.assessments, m.frameworks
        try:
            y = _year(year)
        except ValueError:
            raise NotFound(f"no assessment for unit {unit_code!r}, year {year!r} in tenant {self.tenant!r}") from None
        # The framework's text is read only the first time this Store meets it (by checksum): a save
        # then costs no framework transfer or parse.
        row = conn.execute(
            select(a, f.c.framework_id, f.c.checksum)
            .join(f, f.c.id == a.c.framework_ref)
            .where(a.c.tenant_id == self.tenant, a.c.unit_code == str(unit_code).strip(), a.c.year == y)).first()
        if row is None:
            raise NotFound(f"no assessment for unit {unit_code!r}, year {y} in tenant {self.tenant!r}")
        if row.checksum not in self.store._frameworks:
            text_ = conn.execute(select(f.c.yaml).where(f.c.id == row.framework_ref)).scalar_one()
            self.store._framework(text_, row.checksum, row.framework_id)
        return row

    def _score_context(self, conn: Connection, unit_code: str, year: Any, node_code: str) -> tuple[Any, Any]:
        """Membership, assessment and the stored score of one leaf, in one query (the save path).

        Refuses as :meth:`Store._require_member` and :meth:`_assessment_row` do; returns the
        assessment (with ``framework_id`` and ``checksum``) and the score row or None.
        """
        t, ms, a, f, s = m.tenants, m.memberships, m.assessments, m.frameworks, m.scores
        try:
            y = _year(year)
        except ValueError:
            y = None
        a_cols = [c.label(f"a_{c.name}") for c in a.c] + [f.c.framework_id.label("a_framework_id"),
                                                           f.c.checksum.label("a_checksum")]
        s_cols = [c.label(f"s_{c.name}") for c in s.c]
        unit = str(unit_code).strip()
        joined = (t.outerjoin(ms, and_(ms.c.tenant_id == t.c.code, ms.c.user_name == self.user))
                  .outerjoin(a.join(f, f.c.id == a.c.framework_ref),
                             and_(a.c.tenant_id == t.c.code, a.c.unit_code == unit, a.c.year == (y or -1)))
                  .outerjoin(s, and_(s.c.tenant_id == t.c.code, s.c.assessment_id == a.c.id,
                                     s.c.node_code == node_code)))
        row = conn.execute(select(t.c.code, ms.c.role, ms.c.unit_codes, *a_cols, *s_cols).select_from(joined)
                           .where(t.c.code == self.tenant)).first()
        self._member = self.store._membership(row is not None, None if row is None else row.role,
                                              None if row is None else row.unit_codes, self.tenant, self.user)
        if y is None:
            raise NotFound(f"no assessment for unit {unit_code!r}, year {year!r} in tenant {self.tenant!r}")
        if row.a_id is None:
            raise NotFound(f"no assessment for unit {unit_code!r}, year {y} in tenant {self.tenant!r}")
        assessment, score = _split_context(row._mapping)
        if assessment.checksum not in self.store._frameworks:
            text_ = conn.execute(select(f.c.yaml).where(f.c.id == assessment.framework_ref)).scalar_one()
            self.store._framework(text_, assessment.checksum, assessment.framework_id)
        return assessment, score

    def _fw(self, row: Any) -> Framework:
        cached = self.store._frameworks.get(row.checksum)
        return cached if cached is not None else self.store._framework(row.yaml, row.checksum, row.framework_id)

    @staticmethod
    def _require_open(a: Any) -> None:
        if a.status == "published":
            raise AccessDenied(f"the assessment of unit {a.unit_code}, {a.year} is published; "
                               "reopen it to draft (set_status with a reason) to change it")

    # -- members -------------------------------------------------------------
    def members(self) -> pd.DataFrame:
        """The tenant's members.

        Returns
        -------
        pandas.DataFrame
            Columns ``user_name``, ``role``, ``unit_codes`` (list or None),
            ``version``; sorted by user name.
        """
        ms = m.memberships
        rows = self._run(lambda conn: conn.execute(
            select(ms.c.user_name, ms.c.role, ms.c.unit_codes, ms.c.version)
            .where(ms.c.tenant_id == self.tenant).order_by(ms.c.user_name)).all(), write=False)
        df = _frame(rows, ["user_name", "role", "unit_codes", "version"], text=["user_name", "role"])
        df["unit_codes"] = pd.Series([json.loads(v) if isinstance(v, str) else None for v in df["unit_codes"]],
                                     index=df.index, dtype=object)
        return df

    def set_member(self, user_name: str, role: str, unit_codes: Iterable[str] | None = None,
                   reason: str | None = None) -> None:
        """Add a member to the tenant or change their role (admins only).

        Parameters
        ----------
        user_name
            The user.
        role
            One of ``admin``, ``appraiser``, ``editor``, ``analyst``, ``researcher``.
        unit_codes
            For an editor: the codes of the units they may score (must exist
            in the tenant). Ignored for other roles.
        reason
            Recorded in the audit log.

        Raises
        ------
        AccessDenied
            When the session's user is not an admin of the tenant.
        ValidationError
            Unknown role or unit codes, or removing the last admin.
        """
        name = _nfc(user_name)
        fails = []
        if not name:
            fails.append({"column": "user_name", "value": user_name, "expected": "a user name"})
        if role not in m.ROLES:
            fails.append({"column": "role", "value": role, "expected": "one of " + ", ".join(m.ROLES)})
        codes = sorted({str(c).strip() for c in unit_codes}) if (role == "editor" and unit_codes is not None) else None
        if fails:
            raise ValidationError("cannot set the member", fails)

        def body(conn: Connection) -> None:
            self._require_admin()
            ms = m.memberships
            if codes:
                known = {r[0] for r in conn.execute(select(m.units.c.code).where(
                    m.units.c.tenant_id == self.tenant, m.units.c.code.in_(codes))).all()}
                bad = [c for c in codes if c not in known]
                if bad:
                    raise ValidationError("cannot set the member", [
                        {"column": "unit_codes", "value": c, "expected": f"a unit of tenant {self.tenant}"} for c in bad])
            cur = conn.execute(select(ms).where(ms.c.tenant_id == self.tenant, ms.c.user_name == name)).first()
            new = {"role": role, "unit_codes": json.dumps(codes, ensure_ascii=False) if codes is not None else None}
            if cur is None:
                conn.execute(insert(ms).values(tenant_id=self.tenant, user_name=name, version=1, **new))
                self._audit(conn, _changes("memberships", name, None, new, "insert"), reason)
                return
            if cur.role == "admin" and role != "admin":
                self._require_other_admin(conn, name)
            diff = _changes("memberships", name, cur._mapping, new, "update", cur.version + 1)
            if diff:
                conn.execute(update(ms).where(ms.c.id == cur.id).values(version=cur.version + 1, **new))
                self._audit(conn, diff, reason)

        self._run(body, write=True)

    def remove_member(self, user_name: str, reason: str | None = None) -> None:
        """Remove a member from the tenant (admins only; never the last admin).

        Raises
        ------
        AccessDenied
            When the session's user is not an admin.
        NotFound
            When ``user_name`` is not a member.
        ValidationError
            When it is the tenant's last admin.
        """
        name = _nfc(user_name) or ""

        def body(conn: Connection) -> None:
            self._require_admin()
            ms = m.memberships
            cur = conn.execute(select(ms).where(ms.c.tenant_id == self.tenant, ms.c.user_name == name)).first()
            if cur is None:
                raise NotFound(f"user {name!r} is not a member of tenant {self.tenant!r}")
            if cur.role == "admin":
                self._require_other_admin(conn, name)
            conn.execute(delete(ms).where(ms.c.id == cur.id))
            self._audit(conn, _changes("memberships", name, cur._mapping, {"role": None, "unit_codes": None}, "delete",
                                       cur.version), reason)

        self._run(body, write=True)

    def _require_admin(self, what: str = "manage its members") -> None:
        roles.require_admin(self.role, what, tenant=self.tenant, user=self.user)

    def _require_other_admin(self, conn: Connection, name: str) -> None:
        ms = m.memberships
        n = conn.execute(select(func.count()).select_from(ms).where(
            ms.c.tenant_id == self.tenant, ms.c.role == "admin", ms.c.user_name != name)).scalar_one()
        if n == 0:
            raise ValidationError("a tenant keeps at least one admin", [
                {"column": "role", "value": name, "expected": "another admin first"}])

    # -- units ---------------------------------------------------------------
    def units(self) -> pd.DataFrame:
        """The tenant's units (the bodies being scored).

        Returns
        -------
        pandas.DataFrame
            Columns ``code``, ``name``, ``kind`` (ministry, province,
            department, district, commune), ``parent_code``, ``region``,
            ``active_from``, ``active_to`` (datetime64, NaT when open);
            sorted by code.
        """
        u = m.units
        q = select(*[u.c[c] for c in UNIT_COLUMNS]).where(u.c.tenant_id == self.tenant).order_by(u.c.code)
        df = _frame(self._run(lambda conn: conn.execute(q).all(), write=False), UNIT_COLUMNS, text=UNIT_COLUMNS[:5])
        for c in ("active_from", "active_to"):
            df[c] = pd.to_datetime(df[c])
        return df

    def upsert_units(self, df: pd.DataFrame, reason: str | None = None) -> dict[str, int]:
        """Add units, or change the ones whose code exists (audited).

        Parameters
        ----------
        df
            Columns ``code``, ``name``, ``kind`` and optionally
            ``parent_code``, ``region``, ``active_from``, ``active_to``
            (dates; a bare year such as 2022 means 1 January in
            ``active_from`` and 31 December in ``active_to``). An optional
            column left out keeps the stored values; a blank cell clears it.
        reason
            Recorded in the audit log.

        Returns
        -------
        dict
            Counts ``inserted``, ``updated``, ``unchanged``.

        Raises
        ------
        ValidationError
            Listing every bad row (row numbers as in a spreadsheet, header = 1):
            missing code or name, unknown kind, a code twice, a parent that
            is not a unit of the tenant, bad dates.
        """
        _refuse_nul_reason(reason, "units")
        need = ["code", "name", "kind"]
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise ValidationError("the units table lacks columns", [
                {"column": c, "expected": "columns code, name, kind (and optionally parent_code, region, "
                                          "active_from, active_to)"} for c in missing])
        optional = [c for c in UNIT_COLUMNS[3:] if c in df.columns]
        fails: list[dict] = []
        records: list[dict] = []
        for i, rec in enumerate(df.to_dict("records")):
            row = int(rec["row"]) if "row" in rec and not _blank(rec["row"]) else i + 2
            r = {"code": _nfc(rec["code"]), "name": _nfc(rec["name"]), "kind": _nfc(rec["kind"])}
            for c in ("code", "name", "kind", *optional):
                if isinstance(rec[c], str) and "\x00" in rec[c]:
                    fails.append({"row": row, "column": c, "value": _shown_nul(rec[c]), "expected": _NUL_EXPECTED})
            if not r["code"]:
                fails.append({"row": row, "column": "code", "value": rec["code"], "expected": "a unit code"})
            if not r["name"]:
                fails.append({"row": row, "column": "name", "value": rec["name"], "expected": "the unit's name"})
            if r["kind"] not in m.UNIT_KINDS:
                fails.append({"row": row, "column": "kind", "value": rec["kind"],
                              "expected": "one of " + ", ".join(m.UNIT_KINDS)})
            for c in optional:
                if c in ("active_from", "active_to"):
                    try:
                        r[c] = _date(rec[c], end=c == "active_to")
                    except (ValueError, TypeError):
                        fails.append({"row": row, "column": c, "value": rec[c],
                                      "expected": "a date such as 2025-07-01, or a year"})
                else:
                    r[c] = _nfc(rec[c])
            if r.get("active_from") and r.get("active_to") and r["active_to"] < r["active_from"]:
                fails.append({"row": row, "column": "active_to", "value": r["active_to"].isoformat(),
                              "expected": f"a date on or after active_from {r['active_from'].isoformat()}"})
            if r.get("parent_code") and r["parent_code"] == r["code"]:
                fails.append({"row": row, "column": "parent_code", "value": r["parent_code"],
                              "expected": "another unit's code (a unit is not its own parent)"})
            r["_row"] = row
            records.append(r)
        seen: dict[str, int] = {}
        for r in records:
            if r["code"] and r["code"] in seen:
                fails.append({"row": r["_row"], "column": "code", "value": r["code"],
                              "expected": f"each code once (also on row {seen[r['code']]})"})
            seen.setdefault(r["code"], r["_row"])
        if fails:
            raise ValidationError("units refused", fails)

        def body(conn: Connection) -> dict[str, int]:
            self._require_admin("add or change units")
            u = m.units
            old = {r.code: r for r in conn.execute(select(u).where(u.c.tenant_id == self.tenant)).all()}
            bad_parents = [{"row": r["_row"], "column": "parent_code", "value": r["parent_code"],
                            "expected": f"the code of a unit of tenant {self.tenant} (or of a row of this table)"}
                           for r in records if r.get("parent_code") and r["parent_code"] not in old
                           and r["parent_code"] not in seen]
            if bad_parents:
                raise ValidationError("units refused", bad_parents)
            counts = {"inserted": 0, "updated": 0, "unchanged": 0}
            changes: list[dict] = []
            ins, upd = [], []
            fields = ["name", "kind", *optional]
            for r in records:
                new = {c: r[c] for c in fields}
                cur = old.get(r["code"])
                if cur is None:
                    full = {c: r.get(c) for c in UNIT_COLUMNS}
                    ins.append({"tenant_id": self.tenant, "version": 1, **full})
                    changes += _changes("units", r["code"], None, {c: full[c] for c in UNIT_COLUMNS[1:]}, "insert")
                    counts["inserted"] += 1
                    continue
                diff = _changes("units", r["code"], cur._mapping, new, "update", cur.version + 1)
                if not diff:
                    counts["unchanged"] += 1
                    continue
                merged = {c: new.get(c, cur._mapping[c]) for c in UNIT_COLUMNS[1:]}
                upd.append({"b_id": cur.id, "b_version": cur.version, "version": cur.version + 1, **merged})
                changes += diff
                counts["updated"] += 1
            if ins:
                conn.execute(insert(u), ins)
            if upd:
                res = conn.execute(update(u).where(u.c.id == bindparam("b_id"), u.c.version == bindparam("b_version"))
                                   .values(**{c: bindparam(c) for c in [*UNIT_COLUMNS[1:], "version"]}), upd)
                if conn.dialect.supports_sane_multi_rowcount and res.rowcount != len(upd):
                    raise ConflictError(f"units of tenant {self.tenant}", "version", "this table", "a change saved meanwhile",
                                        -1, None)
            self._audit(conn, changes, reason)
            return counts

        return self._run(body, write=True)

    # -- frameworks ----------------------------------------------------------
    def frameworks(self) -> pd.DataFrame:
        """The frameworks this tenant can use: its own and the shared ones.

        Returns
        -------
        pandas.DataFrame
            Columns ``framework_id``, ``name_vi``, ``level``, ``status``
            (complete, incomplete, demo), ``shared`` (bool: read-only, for
            every tenant); sorted by id. A tenant's own framework hides a
            shared one with the same id.
        """
        f = m.frameworks
        q = select(f.c.framework_id, f.c.name_vi, f.c.level, f.c.status, f.c.tenant_id.is_(None)).where(
            or_(f.c.tenant_id == self.tenant, f.c.tenant_id.is_(None))).order_by(f.c.framework_id, f.c.tenant_id)
        rows = self._run(lambda conn: conn.execute(q).all(), write=False)
        df = _frame(rows, _FRAMEWORK_COLUMNS, text=_FRAMEWORK_COLUMNS[:4])
        df["shared"] = df["shared"].astype(bool)
        df = df.sort_values(["framework_id", "shared"]).drop_duplicates("framework_id", keep="first")
        return df.reset_index(drop=True)

    def framework(self, framework_id: str) -> Framework:
        """One framework by id: the tenant's own, else a shared one.

        Raises
        ------
        NotFound
            When neither the tenant nor the shared set has it.
        """
        row = self._run(lambda conn: self._framework_row(conn, framework_id), write=False)
        return self._fw(row)

    def add_framework(self, fw: Framework) -> dict[str, Any]:
        """Store a framework owned by this tenant (audited).

        Storing a changed framework under the same id replaces it while no
        assessment uses it.

        Returns
        -------
        dict
            ``framework_id``, ``checksum``, ``version``, ``action``
            (``"insert"``, ``"update"``, ``"unchanged"``).

        Raises
        ------
        AccessDenied
            When ``fw.id`` is a shared framework's id: shared frameworks are
            read-only; give the tenant's copy another id.
        ValidationError
            When a changed framework's id is already used by assessments.
        """
        def body(conn: Connection) -> dict[str, Any]:
            self._require_admin("add or replace frameworks")
            f = m.frameworks
            shared = conn.execute(select(f.c.id).where(f.c.tenant_id.is_(None), f.c.framework_id == fw.id)).first()
            if shared is not None:
                raise AccessDenied(f"framework {fw.id!r} is shared and read-only for tenant {self.tenant!r}; "
                                   "store your own version under another id")
            return _put_framework(self.store, conn, self.tenant, fw, self.user)

        return self._run(body, write=True)

    # -- assessments ---------------------------------------------------------
    def assessments(self, year: int | Iterable[int] | None = None) -> pd.DataFrame:
        """The tenant's assessments (one per unit and year).

        Parameters
        ----------
        year
            A year or several; None for all.

        Returns
        -------
        pandas.DataFrame
            Columns ``unit_code``, ``year``, ``framework_id``, ``status``
            (draft, submitted, appraised, published), ``deadline``,
            ``version``, ``created_at``, ``created_by``, ``updated_at``,
            ``updated_by``; sorted by unit and year.
        """
        a, f = m.assessments, m.frameworks
        q = (select(a.c.unit_code, a.c.year, f.c.framework_id, a.c.status, a.c.deadline, a.c.version,
                    a.c.created_at, a.c.created_by, a.c.updated_at, a.c.updated_by)
             .join(f, f.c.id == a.c.framework_ref).where(a.c.tenant_id == self.tenant)
             .order_by(a.c.unit_code, a.c.year))
        years = _years(year)
        if years is not None:
            q = q.where(a.c.year.in_(years))
        df = _frame(self._run(lambda conn: conn.execute(q).all(), write=False), _ASSESSMENT_COLUMNS,
                    text=["unit_code", "framework_id", "status", "created_by", "updated_by"])
        df["year"] = df["year"].astype("int64")
        df["version"] = df["version"].astype("int64")
        for c in ("deadline", "created_at", "updated_at"):
            df[c] = _utc_column(df[c])
        return df

    def assessment(self, unit_code: str, year: int) -> dict[str, Any]:
        """One assessment.

        Returns
        -------
        dict
            Keys ``unit_code``, ``year``, ``framework_id``, ``status``,
            ``deadline``, ``version``, ``created_at``, ``created_by``,
            ``updated_at``, ``updated_by``.

        Raises
        ------
        NotFound
            When the tenant has no such assessment.
        """
        row = self._run(lambda conn: self._assessment_row(conn, unit_code, year), write=False)
        return {c: row._mapping[c] for c in _ASSESSMENT_COLUMNS}

    def create_assessment(self, unit_code: str, year: int, framework_id: str, *,
                          deadline: dt.datetime | dt.date | str | None = None, reason: str | None = None) -> dict[str, Any]:
        """Open a draft assessment of a unit for a year (audited).

        Parameters
        ----------
        unit_code, year
            The unit (of this tenant) and the year.
        framework_id
            The tenant's own or a shared framework; it must be scorable and
            written for the unit's kind (and the year, when it lists years).
        deadline
            When self-scoring closes: a datetime (naive = UTC), or a date,
            meaning the end of that day in Vietnam (23:59:59 UTC+7).

        Returns
        -------
        dict
            As :meth:`assessment`.

        Raises
        ------
        NotFound
            Unknown unit or framework.
        FrameworkIncompleteError
            The framework cannot score (unknown points).
        ValidationError
            The assessment exists, or the framework does not fit the unit or year.
        """
        try:
            y = _year(year)
            when = _timestamp(deadline)
        except (ValueError, TypeError) as exc:
            raise ValidationError("cannot create the assessment", [
                {"column": "year" if "year" in str(exc) else "deadline", "value": str(exc),
                 "expected": "a year such as 2024 and a deadline date"}]) from None

        def body(conn: Connection) -> dict[str, Any]:
            unit = self._unit_row(conn, unit_code)
            self._require_admin("open assessments")
            frow = self._framework_row(conn, framework_id)
            fw = self._fw(frow)
            fw.require_scorable()
            _check_fits(fw, unit.kind, y, unit.code)
            a = m.assessments
            if conn.execute(select(a.c.id).where(a.c.tenant_id == self.tenant, a.c.unit_code == unit.code,
                                                 a.c.year == y)).first():
                raise ValidationError("cannot create the assessment", [
                    {"column": "year", "value": y, "expected": f"a year without an assessment of unit {unit.code}"}])
            now = _now()
            conn.execute(insert(a).values(tenant_id=self.tenant, unit_code=unit.code, year=y, framework_ref=frow.id,
                                          status="draft", deadline=when, created_at=now, created_by=self.user,
                                          updated_at=now, updated_by=self.user, version=1))
            self._audit(conn, _changes("assessments", f"{unit.code}/{y}", None,
                                       {"framework_id": frow.framework_id, "status": "draft", "deadline": when},
                                       "insert"), reason, now)
            row = self._assessment_row(conn, unit.code, y)
            return {c: row._mapping[c] for c in _ASSESSMENT_COLUMNS}

        return self._run(body, write=True)

    def set_status(self, unit_code: str, year: int, status: str, reason: str | None = None, *,
                   expected_version: int | None = None) -> dict[str, Any]:
        """Move an assessment along draft -> submitted -> appraised -> published.

        One step forward at a time; going back is a reopen to ``draft``,
        which needs a reason. Audited.

        Parameters
        ----------
        status
            The new status.
        reason
            Why (required to reopen).
        expected_version
            The assessment version you read; None skips the check.

        Returns
        -------
        dict
            The assessment, as :meth:`assessment`.

        Raises
        ------
        ValidationError
            A status out of order, or a reopen without a reason.
        ConflictError
            The assessment changed since ``expected_version``.
        NotFound
            No such assessment in this tenant.
        """
        order = m.ASSESSMENT_STATUSES
        if status not in order:
            raise ValidationError("unknown status", [{"column": "status", "value": status,
                                                      "expected": "one of " + ", ".join(order)}])

        def body(conn: Connection) -> dict[str, Any]:
            cur = self._assessment_row(conn, unit_code, year)
            if expected_version is not None and cur.version != expected_version:
                raise ConflictError(f"assessment of unit {cur.unit_code}, {cur.year}", "status", status, cur.status,
                                    cur.version, cur.updated_by)
            now_i, new_i = order.index(cur.status), order.index(status)
            reopen = status == "draft" and now_i > 0
            if not (new_i == now_i + 1 or reopen):
                nxt = order[now_i + 1] if now_i + 1 < len(order) else None
                allowed = " or ".join(x for x in (nxt, "draft (reopen, with a reason)" if now_i else None) if x)
                raise ValidationError(f"the assessment of unit {cur.unit_code}, {cur.year} is {cur.status}", [
                    {"column": "status", "value": status, "expected": allowed}])
            if reopen and _blank(reason):
                raise ValidationError(f"reopening the assessment of unit {cur.unit_code}, {cur.year} needs a reason", [
                    {"column": "reason", "value": reason, "expected": "why it is reopened"}])
            roles.require_status_change(self.role, self.unit_codes, cur._mapping, status, user=self.user)
            a = m.assessments
            now = _now()
            res = conn.execute(update(a).where(a.c.id == cur.id, a.c.version == cur.version).values(
                status=status, version=cur.version + 1, updated_at=now, updated_by=self.user))
            if res.rowcount != 1:
                latest = self._assessment_row(conn, cur.unit_code, cur.year)
                raise ConflictError(f"assessment of unit {cur.unit_code}, {cur.year}", "status", status, latest.status,
                                    latest.version, latest.updated_by)
            self._audit(conn, _changes("assessments", f"{cur.unit_code}/{cur.year}", cur._mapping,
                                       {"status": status}, "update", cur.version + 1), reason, now)
            row = self._assessment_row(conn, cur.unit_code, cur.year)
            return {c: row._mapping[c] for c in _ASSESSMENT_COLUMNS}

        return self._run(body, write=True)

    def set_deadline(self, unit_code: str, year: int, deadline: dt.datetime | dt.date | str | None,
                     reason: str | None = None) -> dict[str, Any]:
        """Set or clear the self-scoring deadline of an assessment (audited).

        Returns
        -------
        dict
            The assessment, as :meth:`assessment`.
        """
        try:
            when = _timestamp(deadline)
        except (ValueError, TypeError):
            raise ValidationError("bad deadline", [{"column": "deadline", "value": deadline,
                                                    "expected": "a date such as 2025-01-31"}]) from None

        def body(conn: Connection) -> dict[str, Any]:
            cur = self._assessment_row(conn, unit_code, year)
            self._require_admin("set deadlines")
            a = m.assessments
            now = _now()
            conn.execute(update(a).where(a.c.id == cur.id).values(
                deadline=when, version=a.c.version + 1, updated_at=now, updated_by=self.user))
            self._audit(conn, _changes("assessments", f"{cur.unit_code}/{cur.year}", cur._mapping,
                                       {"deadline": when}, "update", cur.version + 1), reason, now)
            row = self._assessment_row(conn, cur.unit_code, cur.year)
            return {c: row._mapping[c] for c in _ASSESSMENT_COLUMNS}

        return self._run(body, write=True)

    # -- scores --------------------------------------------------------------
    def scores(self, year: int | Iterable[int] | None = None, unit_codes: str | Iterable[str] | None = None, *,
               all_leaves: bool = False) -> pd.DataFrame:
        """The tenant's scores in long form, one row per unit, year and leaf.

        Parameters
        ----------
        year
            A year or several; None for all.
        unit_codes
            A unit code or several; None for all.
        all_leaves
            Also list the leaves nobody has scored yet (values NaN, version
            0: save them with ``expected_version=0``).

        Returns
        -------
        pandas.DataFrame
            Columns ``unit_code``, ``year``, ``framework_id``, ``node_code``,
            ``self_score``, ``appraised_score``, ``survey_points``, ``bonus``,
            ``penalty`` (float, NaN = not entered), ``explanation``,
            ``evidence``, ``appraisal_reason``, ``unit_response`` (text),
            ``appraisal_round`` (Int64), ``version``, ``updated_by``,
            ``updated_at`` (UTC); sorted by unit, year and tree order.
        """
        a, f, s = m.assessments, m.frameworks, m.scores
        years = _years(year)
        codes = None if unit_codes is None else ([unit_codes] if isinstance(unit_codes, str) else
                                                 [str(c) for c in unit_codes])
        value_cols = [c for c in SCORE_COLUMNS[4:]]

        def body(conn: Connection) -> tuple[list, list]:
            cond = [a.c.tenant_id == self.tenant]
            if years is not None:
                cond.append(a.c.year.in_(years))
            if codes is not None:
                cond.append(a.c.unit_code.in_(codes))
            srows = conn.execute(
                select(a.c.unit_code, a.c.year, f.c.framework_id, s.c.node_code, *[s.c[c] for c in value_cols])
                .join(a, and_(a.c.id == s.c.assessment_id, a.c.tenant_id == s.c.tenant_id))
                .join(f, f.c.id == a.c.framework_ref)
                .where(s.c.tenant_id == self.tenant, *cond)).all()
            arows = conn.execute(select(a.c.unit_code, a.c.year, f.c.framework_id, f.c.yaml, f.c.checksum)
                                 .join(f, f.c.id == a.c.framework_ref).where(*cond)).all()
            return srows, arows

        srows, arows = self._run(body, write=False)
        df = _frame(srows, SCORE_COLUMNS)
        fws = {r.framework_id: self.store._framework(r.yaml, r.checksum, r.framework_id) for r in arows}
        if all_leaves and arows:
            grid = pd.concat([
                pd.DataFrame({"unit_code": r.unit_code, "year": r.year, "framework_id": r.framework_id,
                              "node_code": fws[r.framework_id].leaves["code"].tolist()}) for r in arows],
                ignore_index=True)
            df = grid.merge(df.astype({"year": "int64"}), on=["unit_code", "year", "framework_id", "node_code"], how="left")
            df["version"] = df["version"].fillna(0)
        df = _score_dtypes(df)
        if len(df):
            where = {fid: dict(zip(fw.nodes["code"], fw.nodes["position"])) for fid, fw in fws.items()}
            pos = pd.Series([where[fid].get(code, 10 ** 6) for fid, code in zip(df["framework_id"], df["node_code"])],
                            index=df.index)
            df = df.assign(_pos=pos).sort_values(["unit_code", "year", "_pos"]).drop(columns="_pos")
        return df.reset_index(drop=True)[SCORE_COLUMNS]

    def save_score(self, unit_code: str, year: int, node_code: str, *, expected_version: int,
                   reason: str | None = None, **values: Any) -> int:
        """Save values of one leaf, refusing if someone saved it since you read it.

        The write is one atomic ``UPDATE ... WHERE version = expected_version``:
        of two people who read version 1, the first to save wins and the
        second gets a :class:`ConflictError` with both values; the second
        resolves it by saving again with ``expected_version =
        error.current_version``.

        Parameters
        ----------
        unit_code, year, node_code
            The assessment (must exist) and a leaf of its framework.
        expected_version
            The ``version`` you read from :meth:`scores`; 0 for a leaf not
            saved yet.
        reason
            Why (recorded in the audit log with each changed value).
        **values
            Any of ``self_score``, ``appraised_score``, ``survey_points``,
            ``bonus``, ``penalty`` (points; text such as ``"0,5"`` is read,
            None clears), ``explanation``, ``evidence``, ``appraisal_reason``,
            ``unit_response`` (text), ``appraisal_round`` (1, 2, ...).
            Points lie in ``[0, max_points]`` of the node and on its rubric;
            survey nodes take only ``survey_points``, other nodes never.
            ``bonus`` and ``penalty`` belong to the whole assessment (see
            :meth:`set_adjustment`); a row holds at most the framework's cap.

        Returns
        -------
        int
            The new version (unchanged when every value was already stored).

        Notes
        -----
        Two business rules are checked on the row as it will be stored (the
        stored values with the new ones on top), after the role checks:

        - evidence: a self score on a leaf whose framework says
          ``evidence_required`` needs evidence (an evidence file or link
          attached to the leaf with :meth:`add_evidence`, or ``evidence``
          text) or an ``explanation`` (:data:`EXPLANATION_RULE`); checked
          when the save changes the self score, the explanation or the
          evidence text;
        - appraisal: an ``appraised_score`` that differs from the self score
          (or stands without one) needs an ``appraisal_reason``
          (:data:`REASON_RULE`); checked when the save changes the appraised
          score or its reason.

        :func:`needs_explanation` and :func:`needs_reason` state them for
        callers that check before saving (the apps).

        Raises
        ------
        ValidationError
            With a failure table naming each bad value and what was expected:
            out of range, off the rubric, text with a NUL character (which
            PostgreSQL cannot store), or a broken rule (above; the failure
            names the node).
        ConflictError
            The stored version differs from ``expected_version``.
        NotFound
            No such assessment in this tenant.
        AccessDenied
            The assessment is published.
        """
        if isinstance(expected_version, bool) or not isinstance(expected_version, (int, np.integer)) \
                or expected_version < 0:
            raise ValidationError("bad expected_version", [
                {"column": "expected_version", "value": expected_version,
                 "expected": "the version you read (0 for a leaf never saved)"}])
        expected_version = int(expected_version)  # numpy integers do not bind in every driver
        if not values:
            raise ValidationError("nothing to save", [
                {"column": "values", "value": None, "expected": "one or more of " + ", ".join(SCORE_FIELDS)}])
        node_code = str(node_code).strip()
        _refuse_nul_reason(reason, f"score of unit {unit_code}, {year}, node {node_code}")

        if self.store.dialect == "postgresql" and self.store._save_functions:
            try:
                saved = self._save_score_by_functions(unit_code, year, node_code, expected_version, reason, values)
            except _MissingFunction:
                # a database not yet upgraded to revision 0004: save in one transaction, as before
                self.store._save_functions = False
                saved = None
            if saved is not None:
                return saved

        def body(conn: Connection) -> int:
            a, cur = self._score_context(conn, unit_code, year, node_code)

            def has_evidence() -> bool:
                e = m.evidence
                return conn.execute(select(e.c.id).where(e.c.tenant_id == self.tenant, e.c.assessment_id == a.id,
                                                         e.c.node_code == node_code).limit(1)).first() is not None

            action, stored, diff = self._plan_score_save(a, cur, node_code, values, expected_version, has_evidence)
            if action == "unchanged":
                return expected_version
            s = m.scores
            now = _now()
            if action == "insert":
                try:
                    with conn.begin_nested():
                        conn.execute(insert(s).values(tenant_id=self.tenant, assessment_id=a.id, node_code=node_code,
                                                      version=1, updated_by=self.user, updated_at=now, **stored))
                except IntegrityError:
                    latest = conn.execute(select(s).where(s.c.tenant_id == self.tenant, s.c.assessment_id == a.id,
                                                          s.c.node_code == node_code)).first()
                    raise self._score_conflict(a, node_code, stored, latest) from None
                self._audit(conn, diff, reason, now)
                return 1
            res = conn.execute(update(s).where(s.c.id == cur.id, s.c.version == expected_version).values(
                version=expected_version + 1, updated_by=self.user, updated_at=now, **stored))
            if res.rowcount != 1:
                latest = conn.execute(select(s).where(s.c.id == cur.id)).first()
                raise self._score_conflict(a, node_code, stored, latest)
            self._audit(conn, diff, reason, now)
            return expected_version + 1

        return self._run(body, write=True, member_check=False)

    def _plan_score_save(self, a: Any, cur: Any, node_code: str, values: Mapping[str, Any], expected_version: int,
                         has_evidence: Callable[[], bool]) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
        """Check one save against the stored row; return what to write.

        ``a``: the assessment (with ``framework_id`` and ``checksum``; its framework cached);
        ``cur``: the stored score or None; ``has_evidence()``: whether evidence is attached to the
        leaf (asked only when the evidence rule needs it).

        Returns
        -------
        tuple
            ``(action, stored, audit_rows)``: action ``"insert"``, ``"update"`` or ``"unchanged"``;
            the values to write (for an update, only the changed ones; values equal within the
            tolerance keep their stored form); the audit rows of :func:`_changes`.

        Raises
        ------
        ValidationError, ConflictError, AccessDenied
            As :meth:`save_score` documents; the refusals are checked in that order after the
            published check: values, version, role, rules.
        """
        self._require_open(a)
        fw = self._fw(a)
        node = self.store._leaf_records(a.checksum, fw).get(node_code)
        clean, fails = _check_values(fw, node, node_code, values, {"row": None})
        if fails:
            raise ValidationError(f"score of unit {a.unit_code}, {a.year}, node {node_code} refused", fails)
        rk = f"{a.unit_code}/{a.year}/{node_code}"
        if cur is None:
            if expected_version != 0:
                raise self._score_conflict(a, node_code, clean, None)
            changed = {k for k, v in clean.items() if v is not None}
            roles.require_score_write(self.role, self.unit_codes, a._mapping, sorted(changed), user=self.user)
            self._require_rules(a, node, node_code, clean, changed, has_evidence)
            return "insert", clean, _changes("scores", rk, None, clean, "insert")
        if cur.version != expected_version:
            raise self._score_conflict(a, node_code, clean, cur)
        diff = _changes("scores", rk, cur._mapping, clean, "update", expected_version + 1)
        if not diff:
            return "unchanged", {}, []  # nothing changed: no new version, nothing to audit
        changed = {d["field"] for d in diff}
        roles.require_score_write(self.role, self.unit_codes, a._mapping, sorted(changed), user=self.user)
        self._require_rules(a, node, node_code, {**{c: cur._mapping[c] for c in SCORE_FIELDS}, **clean}, changed,
                            has_evidence)
        return "update", {k: v for k, v in clean.items() if k in changed}, diff

    @staticmethod
    def _score_conflict(a: Any, node_code: str, clean: Mapping[str, Any], latest: Any) -> ConflictError:
        """The conflict of a save of ``clean`` against the row stored now (None: no row)."""
        return _row_conflict(f"unit {a.unit_code}, {a.year}, node {node_code}", clean, latest)

    def _save_score_by_functions(self, unit_code: str, year: Any, node_code: str, expected_version: int,
                                 reason: str | None, values: Mapping[str, Any]) -> int | None:
        """:meth:`save_score` on PostgreSQL in two round trips (the functions of revision 0004).

        The first call reads the context in its own transaction, the second updates the row and
        appends its audit rows in another, only if the version is still ``expected_version``: the
        version check makes the pair as safe as one transaction (a row changed in between is a
        conflict), and the database checks the role again on the write. Returns None when the leaf
        has no stored row yet or its framework is not cached: :meth:`save_score` then saves in one
        transaction.
        """
        try:
            y = _year(year)
        except ValueError:
            return None  # the transaction path names the bad year
        unit = str(unit_code).strip()
        a, cur, evidence = self._score_context_by_function(unit, y, node_code)
        if cur is None or a.checksum not in self.store._frameworks:
            return None
        action, stored, diff = self._plan_score_save(a, cur, node_code, values, expected_version, lambda: evidence)
        if action == "unchanged":
            return expected_version
        row = [self.tenant, self.store.token or "", self.user, cur.id, expected_version, _now(), sorted(stored)]
        row += [stored.get(name) for name in _SAVE_FUNCTION_FIELDS]
        row += [f"{a.unit_code}/{a.year}/{node_code}", reason, [d["field"] for d in diff],
                [d["old_value"] for d in diff], [d["new_value"] for d in diff]]
        if self.store._call(_UPDATE_SCORE, row)[0][0]:
            return expected_version + 1
        a, latest, _ = self._score_context_by_function(unit, y, node_code)
        raise self._score_conflict(a, node_code, stored, latest)

    def _score_context_by_function(self, unit: str, year: int, node_code: str) -> tuple[Any, Any, bool]:
        """Membership, assessment, stored score and attached evidence of one leaf (``parindex_score_context``)."""
        rows = self.store._call(_SCORE_CONTEXT, [self.tenant, self.store.token or "", self.user, unit, year, node_code])
        row = rows[0] if rows else None
        self._member = self.store._membership(row is not None, None if row is None else row[1],
                                              None if row is None else row[2], self.tenant, self.user)
        values = dict(zip(_SCORE_CONTEXT_COLUMNS, row))
        if values["a_id"] is None:
            raise NotFound(f"no assessment for unit {unit!r}, year {year} in tenant {self.tenant!r}")
        assessment, score = _split_context(values)
        return assessment, score, bool(values["has_evidence"])

    def _require_rules(self, a: Any, node: Mapping[str, Any], node_code: str, merged: Mapping[str, Any],
                       changed: set[str], has_evidence: Callable[[], bool]) -> None:
        """Refuse values that break the evidence or the appraisal rule (after the role checks).

        ``merged``: the row as it will be stored; ``changed``: the fields this write changes. The
        evidence rule is checked when the write touches the self score, the explanation or the
        evidence text; the appraisal rule when it touches the appraised score or its reason (an
        editor changing a self score is not refused for a reason only an appraiser can give).
        """
        fails = []
        where = {"row": None}
        if changed & {"self_score", "explanation", "evidence"} and needs_explanation(
                merged, evidence_required=bool(node.get("evidence_required", True))) and not has_evidence():
            fails.append(_explanation_failure(f"node {node_code}", merged.get("self_score"), where))
        if changed & {"appraised_score", "appraisal_reason"} and needs_reason(merged):
            fails.append(_reason_failure(f"node {node_code}", merged, where))
        if fails:
            raise ValidationError(f"score of unit {a.unit_code}, {a.year}, node {node_code} refused", fails)

    def write_scores(self, df: pd.DataFrame, *, source: str, framework_id: str | None = None,
                     blank: str = "keep", reason: str | None = None,
                     require_explanations: bool = False, require_reasons: bool | None = None) -> dict[str, int]:
        """Write a table of scores all at once, or nothing (one transaction).

        Every row is checked first; any problem refuses the whole table with
        a failure table listing every bad row. Missing draft assessments are
        created with ``framework_id``. Each changed value gets one audit row.

        The business rules of :meth:`save_score` apply to a table as
        follows; every offending row is listed, naming the unit and the
        node.

        - The appraisal rule applies to the rows that carry an
          ``appraised_score`` differing from the self score (the row's,
          else the stored one): they need an ``appraisal_reason`` (the
          row's, else the stored one). By default only when the table has
          an ``appraisal_reason`` column: the importer
          (:func:`parindex_lib.importing.read_scores`) gives one when the
          file has a reason column (the long sheets appraisal councils
          return, such as :func:`parindex_lib.exporting.write_appraisal_sheet`
          writes), so those are checked; files without one (wide sheets of
          appraised scores, older files) carry no reasons, and refusing them
          would leave appraisal results no way in from a file.
        - The evidence rule (a self score on an ``evidence_required`` leaf
          needs evidence or an explanation) only with
          ``require_explanations=True``: score files rarely carry the
          evidence (files are attached in the self-assessment app) and many
          leave the explanation of some rows empty, so a default import
          does not refuse them.

        Parameters
        ----------
        df
            Long form: columns ``unit_code``, ``year``, ``node_code`` and any
            of ``self_score``, ``appraised_score``, ``survey_points``,
            ``bonus``, ``penalty``, ``explanation``, ``evidence``,
            ``appraisal_reason``, ``unit_response``, ``appraisal_round``.
            Columns ``file``, ``sheet``, ``unit_name``, ``node_name``,
            ``name_vi``, ``name_en``, ``level``, ``max_points``, ``points``
            are ignored; a ``framework_id`` column must match the assessments.

            Failures name the place each row came from: an optional ``row``
            column gives the row numbers; else ``df.attrs["rows"]`` (set by
            :func:`parindex_lib.importing.read_scores`: the spreadsheet row
            of each long row) when it holds one number per row of ``df``;
            else the position + 2, as in a spreadsheet with a header.
            ``df.attrs["file"]`` and ``df.attrs["sheet"]`` (or the ``file``
            and ``sheet`` of ``df.attrs["source"]``) name the file and the
            sheet; without them the file is ``source``.
        source
            Where the table comes from (a file name); shown in failures and
            recorded in the audit log.
        framework_id
            The framework of the draft assessments created for unit-years
            that have none; without it such rows are refused.
        blank
            ``"keep"`` (default): a blank cell leaves the stored value;
            ``"clear"``: a blank cell clears it.
        reason
            Audit reason (default ``"import <source>"``).
        require_explanations
            Also apply the evidence rule (see above) to every row that
            writes a self score, an explanation or evidence text.
        require_reasons
            Apply the appraisal rule (see above): True always, False never,
            None (default) when ``df`` has an ``appraisal_reason`` column.

        Returns
        -------
        dict
            Counts ``rows``, ``inserted``, ``updated``, ``unchanged``,
            ``assessments_created``, ``audit_rows``.

        Raises
        ------
        ValidationError
            Listing every bad row; nothing is written. A text with a NUL
            character (which PostgreSQL cannot store) is one of them.
        """
        if blank not in ("keep", "clear"):
            raise ValidationError("bad option", [{"column": "blank", "value": blank, "expected": "keep or clear"}])
        src = str(source)
        why = reason or f"import {src}"
        _refuse_nul_reason(why, f"scores in {src}")
        fname, sheet, attr_rows, header_row = _table_origin(df, src)
        keys = ["unit_code", "year", "node_code"]
        missing = [c for c in keys if c not in df.columns]
        fields = [c for c in SCORE_FIELDS if c in df.columns]
        unknown = [c for c in df.columns if c not in keys and c not in SCORE_FIELDS and c not in _INFO_COLUMNS]
        top = {"file": fname, "sheet": sheet, "row": header_row}
        head = [{**top, "column": c, "value": None, "expected": "columns unit_code, year, node_code"} for c in missing]
        head += [{**top, "column": c, "value": c,
                  "expected": "a known column: " + ", ".join(keys + list(SCORE_FIELDS))} for c in unknown]
        if not fields and not missing:
            head.append({**top, "column": None, "value": None,
                         "expected": "at least one value column: " + ", ".join(SCORE_FIELDS)})
        if head:
            raise ValidationError(f"scores in {src} refused", head)
        n = len(df)
        if "row" in df.columns:
            rows = pd.to_numeric(df["row"], errors="coerce").fillna(0).astype(int).tolist()
        elif attr_rows is not None:
            rows = attr_rows
        else:
            rows = list(range(2, n + 2))

        def at(i: int) -> dict[str, Any]:
            return {"file": fname, "sheet": sheet, "row": rows[i]}

        units_col = [_nfc(v) or "" for v in df["unit_code"].tolist()]
        nodes_col = [("" if _blank(v) else str(v).strip()) for v in df["node_code"].tolist()]
        fails: list[dict] = []
        years_col: list[int | None] = []
        for i, v in enumerate(df["year"].tolist()):
            try:
                years_col.append(_year(v))
            except ValueError:
                years_col.append(None)
                fails.append({**at(i), "column": "year", "value": v, "expected": "a year such as 2024"})
        # numbers parsed once per column (Vietnamese decimal commas accepted)
        parsed: dict[str, list[Any]] = {}
        for c in fields:
            if c in _NUMBER_FIELDS:
                nums, bad = to_number_series(df[c])
                vals = nums.tolist()
                for i in np.flatnonzero(bad.to_numpy()):
                    fails.append({**at(i), "column": c, "value": df[c].iloc[i], "expected": "a number of points"})
                    vals[i] = math.nan
                parsed[c] = vals
            else:
                parsed[c] = df[c].tolist()
        fw_col = df["framework_id"].tolist() if "framework_id" in df.columns else None
        seen: dict[tuple, int] = {}
        for i in range(n):
            k = (units_col[i], years_col[i], nodes_col[i])
            if k in seen:
                fails.append({**at(i), "column": "node_code", "value": nodes_col[i],
                              "expected": f"one row per unit, year and node (also row {seen[k]})"})
            else:
                seen[k] = rows[i]

        def refuse(message: str, failures: list[dict]) -> ValidationError:
            return ValidationError(message, _sorted_failures(failures))

        def body(conn: Connection) -> dict[str, int]:
            roles.require_writer(self.role, tenant=self.tenant, user=self.user)
            admin = self.role == "admin"
            errs = list(fails)
            a, s = m.assessments, m.scores
            unit_kind = {r.code: r.kind for r in conn.execute(
                select(m.units.c.code, m.units.c.kind).where(m.units.c.tenant_id == self.tenant)).all()}
            years = sorted({y for y in years_col if y is not None})
            fw_by_ref: dict[int, Framework] = {}
            found: dict[tuple[str, int], Any] = {}
            for part in _chunks(years):
                for r in conn.execute(select(a.c.id, a.c.unit_code, a.c.year, a.c.status, a.c.deadline, a.c.framework_ref,
                                             m.frameworks.c.framework_id, m.frameworks.c.yaml, m.frameworks.c.checksum)
                                      .join(m.frameworks, m.frameworks.c.id == a.c.framework_ref)
                                      .where(a.c.tenant_id == self.tenant, a.c.year.in_(part))).all():
                    found[(r.unit_code, r.year)] = r
                    if r.framework_ref not in fw_by_ref:
                        fw_by_ref[r.framework_ref] = self._fw(r)
            new_fw: tuple[int, Framework] | None = None
            first_row: dict[tuple[str, int], int] = {}
            for i in range(n):
                if years_col[i] is not None:
                    first_row.setdefault((units_col[i], years_col[i]), i)  # type: ignore[arg-type]
            pairs = set(first_row)
            to_create = sorted(p for p in pairs if p not in found and p[0] in unit_kind)
            if to_create and not admin:
                errs.extend({**at(first_row[p]), "column": "year", "value": p[1],
                             "expected": f"an open assessment of unit {p[0]} for {p[1]} (only an admin opens new ones)"}
                            for p in to_create)
                to_create = []
            if to_create and framework_id is not None:
                frow = self._framework_row(conn, framework_id)
                new_fw = (frow.id, self._fw(frow))
                new_fw[1].require_scorable()
            leaf_maps: dict[int, dict[str, dict]] = {}

            def leaves_of(ref: int, fw: Framework) -> dict[str, dict]:
                if ref not in leaf_maps:
                    leaf_maps[ref] = {r["code"]: r for r in fw.leaves.to_dict("records")}
                return leaf_maps[ref]

            creatable: set[tuple[str, int]] = set()
            if new_fw is not None:
                for u_code, y in to_create:
                    try:
                        _check_fits(new_fw[1], unit_kind[u_code], y, u_code)
                        creatable.add((u_code, y))
                    except ValidationError as exc:
                        errs.extend({**f, **at(first_row[(u_code, y)])} for f in exc.failures.to_dict("records"))
            cleaned: list[tuple[int, dict[str, Any], dict[str, Any]] | None] = [None] * n
            for i in range(n):
                u_code, y, code = units_col[i], years_col[i], nodes_col[i]
                where = at(i)
                if y is None:
                    continue
                if u_code not in unit_kind:
                    errs.append({**where, "column": "unit_code", "value": u_code or None,
                                 "expected": f"the code of a unit of tenant {self.tenant}"})
                    continue
                cur = found.get((u_code, y))
                if cur is not None:
                    ref, fw = cur.framework_ref, fw_by_ref[cur.framework_ref]
                    if cur.status == "published":
                        errs.append({**where, "column": "year", "value": y,
                                     "expected": f"an assessment not yet published (unit {u_code}, {y} is published)"})
                        continue
                elif (u_code, y) in creatable:
                    ref, fw = new_fw  # type: ignore[misc]
                elif not admin:
                    continue  # reported above (only an admin opens assessments)
                elif new_fw is None:
                    errs.append({**where, "column": "year", "value": y,
                                 "expected": f"an assessment of unit {u_code} for {y} (create it, or pass framework_id)"})
                    continue
                else:
                    continue  # reported above (framework does not fit)
                if fw_col is not None and not _blank(fw_col[i]) and str(fw_col[i]).strip() != fw.id:
                    errs.append({**where, "column": "framework_id", "value": fw_col[i],
                                 "expected": f"{fw.id}, the framework of unit {u_code}, {y}"})
                    continue
                vals = {c: parsed[c][i] for c in fields}
                if blank == "keep":
                    vals = {c: v for c, v in vals.items() if not _blank(v)}
                node = leaves_of(ref, fw).get(code)
                clean, bad = _check_values(fw, node, code, vals, where)
                errs.extend(bad)
                if not bad:
                    cleaned[i] = (ref, clean, node)  # type: ignore[assignment]
            if errs:
                raise refuse(f"scores in {src} refused, nothing was written", errs)
            now = _now()
            made = sorted(creatable & pairs)
            if made:
                conn.execute(insert(a), [{"tenant_id": self.tenant, "unit_code": u, "year": y,
                                          "framework_ref": new_fw[0], "status": "draft",  # type: ignore[index]
                                          "created_at": now, "created_by": self.user, "updated_at": now,
                                          "updated_by": self.user, "version": 1} for u, y in made])
            ids: dict[tuple[str, int], int] = {k: r.id for k, r in found.items()}
            if made:
                for part in _chunks(sorted({y for _, y in made})):
                    for r in conn.execute(select(a.c.id, a.c.unit_code, a.c.year).where(
                            a.c.tenant_id == self.tenant, a.c.year.in_(part))).all():
                        ids[(r.unit_code, r.year)] = r.id
            changes: list[dict] = []
            for u, y in made:
                changes += _changes("assessments", f"{u}/{y}", None,
                                    {"framework_id": new_fw[1].id, "status": "draft"}, "insert")  # type: ignore[index]
            existing: dict[tuple[int, str], Any] = {}
            wanted = sorted({ids[(units_col[i], years_col[i])] for i in range(n)})  # type: ignore[index]
            for part in _chunks(wanted):
                for r in conn.execute(select(s).where(s.c.tenant_id == self.tenant, s.c.assessment_id.in_(part))).all():
                    existing[(r.assessment_id, r.node_code)] = r
            if not admin:
                denied = []
                for i in range(n):
                    clean = cleaned[i][1]  # type: ignore[index]
                    cur = existing.get((ids[(units_col[i], years_col[i])], nodes_col[i]))  # type: ignore[index]
                    changed = [c for c, v in clean.items() if (v is not None if cur is None else not _same(v, cur._mapping[c]))]
                    info = found[(units_col[i], years_col[i])]  # type: ignore[index]
                    for problem in roles.score_write_problems(self.role, self.unit_codes, info._mapping, changed):
                        field, _, rule = problem.partition(": ")
                        denied.append({**at(i), "column": field, "value": _py(clean.get(field)), "expected": rule})
                if denied:
                    raise refuse(f"scores in {src} refused: {self.user!r} ({self.role}) may not change "
                                 "these values; nothing was written", denied)
            # the business rules (see the docstring), on the rows as they will be stored
            with_evidence: set[tuple[int, str]] = set()
            if require_explanations:
                e = m.evidence
                for part in _chunks(wanted):
                    with_evidence.update((r.assessment_id, r.node_code) for r in conn.execute(
                        select(e.c.assessment_id, e.c.node_code).distinct().where(
                            e.c.tenant_id == self.tenant, e.c.assessment_id.in_(part))).all())
            broken = []
            check_reasons = "appraisal_reason" in df.columns if require_reasons is None else bool(require_reasons)
            for i in range(n) if (require_explanations or check_reasons) else ():
                _, clean, node = cleaned[i]  # type: ignore[misc]
                explain = require_explanations and not clean.keys().isdisjoint(("self_score", "explanation", "evidence"))
                reasons = check_reasons and clean.get("appraised_score") is not None
                if not (explain or reasons):
                    continue
                aid = ids[(units_col[i], years_col[i])]  # type: ignore[index]
                cur = existing.get((aid, nodes_col[i]))
                merged = {**({c: cur._mapping[c] for c in SCORE_FIELDS} if cur is not None else {}), **clean}
                label = f"unit {units_col[i]}, node {nodes_col[i]}"
                if explain and (aid, nodes_col[i]) not in with_evidence \
                        and needs_explanation(merged, evidence_required=bool(node.get("evidence_required", True))):
                    broken.append(_explanation_failure(label, merged.get("self_score"), at(i)))
                if reasons and needs_reason(merged):
                    broken.append(_reason_failure(label, merged, at(i)))
            if broken:
                raise refuse(f"scores in {src} refused, nothing was written", broken)
            ins, upd = [], []
            counts = {"rows": n, "inserted": 0, "updated": 0, "unchanged": 0, "assessments_created": len(made)}
            for i in range(n):
                clean = cleaned[i][1]  # type: ignore[index]  # every row passed the checks above
                aid = ids[(units_col[i], years_col[i])]  # type: ignore[index]
                rk = f"{units_col[i]}/{years_col[i]}/{nodes_col[i]}"
                cur = existing.get((aid, nodes_col[i]))
                if cur is None and all(v is None for v in clean.values()):
                    counts["unchanged"] += 1  # nothing entered for a leaf never saved
                    continue
                if cur is None:
                    ins.append({"tenant_id": self.tenant, "assessment_id": aid, "node_code": nodes_col[i],
                                "version": 1, "updated_by": self.user, "updated_at": now,
                                **{c: clean.get(c) for c in SCORE_FIELDS}})
                    changes += _changes("scores", rk, None, clean, "insert")
                    counts["inserted"] += 1
                    continue
                diff = _changes("scores", rk, cur._mapping, clean, "update", cur.version + 1)
                if not diff:
                    counts["unchanged"] += 1
                    continue
                # a value equal within the tolerance keeps its stored form (the database sees no change to it)
                merged = {c: clean[c] if c in clean and not _same(clean[c], cur._mapping[c]) else cur._mapping[c]
                          for c in SCORE_FIELDS}
                upd.append({"b_id": cur.id, "b_version": cur.version, "version": cur.version + 1,
                            "updated_by": self.user, "updated_at": now, **merged})
                changes += diff
                counts["updated"] += 1
            if ins:
                conn.execute(insert(s), ins)
            if upd:
                res = conn.execute(
                    update(s).where(s.c.id == bindparam("b_id"), s.c.version == bindparam("b_version"))
                    .values(**{c: bindparam(c) for c in [*SCORE_FIELDS, "version", "updated_by", "updated_at"]}),
                    upd)
                if conn.dialect.supports_sane_multi_rowcount and res.rowcount != len(upd):
                    raise ConflictError(f"scores in {src}", "version", "this table", "a score saved meanwhile", -1, None)
            counts["audit_rows"] = self._audit(conn, changes, why, now)
            return counts

        return self._run(body, write=True)

    def set_adjustment(self, unit_code: str, year: int, *, bonus: Any = None, penalty: Any = None,
                       reason: str) -> dict[str, Any]:
        """Set the bonus and the penalty points (điểm thưởng, điểm trừ) of one assessment.

        Bonus and penalty belong to a unit and year, not to a leaf, but the
        schema keeps them in the ``bonus`` and ``penalty`` columns of the
        score rows: the roll-up sums them over the assessment's rows and caps
        each sum by the framework's ``bonus_cap`` and ``penalty_cap``. This
        method keeps them on one designated row: the first leaf (in tree
        order) whose row already holds a bonus or a penalty, else the first
        leaf assessed by self-assessment, else the first leaf (the row the
        appraisal app shows them on). A bonus or penalty found on another
        row is moved there (cleared on that row), so that the stored sum is
        exactly the value given. Every change is audited with ``reason``;
        all of it is one transaction.

        Parameters
        ----------
        unit_code, year
            The assessment.
        bonus, penalty
            Points (text such as ``"0,5"`` is read); None leaves that value
            as it is; NaN clears it. Between 0 and the framework's cap.
        reason
            Why (required; recorded in the audit log).

        Returns
        -------
        dict
            ``node_code`` (the designated row), ``bonus``, ``penalty`` (as
            stored, None when none), ``version`` (of the designated row) and
            ``moved_from`` (codes of the rows cleared).

        Raises
        ------
        ValidationError
            No value, no reason, or a value below 0 or over the cap.
        AccessDenied
            The role may not change bonus or penalty now (appraisers and
            admins may; see :mod:`parindex_lib.roles`), or the assessment is
            published.
        ConflictError
            A row changed while this ran (try again).
        NotFound
            No such assessment in this tenant.
        """
        given = {k: v for k, v in (("bonus", bonus), ("penalty", penalty)) if v is not None}
        what = f"bonus and penalty of unit {unit_code}, {year}"
        fails = []
        if not given:
            fails.append({"column": "bonus", "value": None, "expected": "a bonus or a penalty (points, or NaN to clear)"})
        if _blank(reason):
            fails.append({"column": "reason", "value": reason, "expected": "why the bonus or penalty is set"})
        if fails:
            raise ValidationError(f"{what} refused", fails)
        _refuse_nul_reason(reason, what)

        def body(conn: Connection) -> dict[str, Any]:
            a = self._assessment_row(conn, unit_code, year)
            self._require_open(a)
            roles.require_score_write(self.role, self.unit_codes, a._mapping, sorted(given), user=self.user)
            fw = self._fw(a)
            leaves = self.store._leaf_records(a.checksum, fw)
            s = m.scores
            stored = {r.node_code: r for r in conn.execute(
                select(s).where(s.c.tenant_id == self.tenant, s.c.assessment_id == a.id)).all()}
            order = list(leaves)
            anchor = next((c for c in order if c in stored and (stored[c].bonus is not None
                                                                 or stored[c].penalty is not None)), None)
            if anchor is None:
                anchor = next((c for c in order if leaves[c]["assessed_by"] == "self"), order[0])
            clean, bad = _check_values(fw, leaves[anchor], anchor, given, {"row": None})
            if bad:
                raise ValidationError(f"{what} refused", bad)
            now = _now()
            changes: list[dict] = []
            moved = []

            def write(cur: Any, values: dict[str, Any]) -> int:
                rk = f"{a.unit_code}/{a.year}/{cur.node_code}"
                diff = _changes("scores", rk, cur._mapping, values, "update", cur.version + 1)
                if not diff:
                    return cur.version
                res = conn.execute(update(s).where(s.c.id == cur.id, s.c.version == cur.version).values(
                    version=cur.version + 1, updated_by=self.user, updated_at=now,
                    **{d["field"]: values[d["field"]] for d in diff}))
                if res.rowcount != 1:
                    raise ConflictError(f"unit {a.unit_code}, {a.year}, node {cur.node_code}", diff[0]["field"],
                                        values[diff[0]["field"]], None, cur.version, cur.updated_by)
                changes.extend(diff)
                return cur.version + 1

            for code in order:
                cur = stored.get(code)
                if code == anchor or cur is None:
                    continue
                off = {k: None for k in clean if cur._mapping[k] is not None}
                if off:
                    write(cur, off)
                    moved.append(code)
            cur = stored.get(anchor)
            if cur is None:
                version = 1
                if any(v is not None for v in clean.values()):
                    conn.execute(insert(s).values(tenant_id=self.tenant, assessment_id=a.id, node_code=anchor,
                                                  version=1, updated_by=self.user, updated_at=now, **clean))
                    changes.extend(_changes("scores", f"{a.unit_code}/{a.year}/{anchor}", None, clean, "insert"))
                else:
                    version = 0
                row = {"bonus": None, "penalty": None, **clean}
            else:
                version = write(cur, clean)
                row = {k: clean.get(k, cur._mapping[k]) for k in ("bonus", "penalty")}
            self._audit(conn, changes, reason, now)
            return {"node_code": anchor, "bonus": row["bonus"], "penalty": row["penalty"], "version": version,
                    "moved_from": moved}

        return self._run(body, write=True)

    # -- evidence ------------------------------------------------------------
    def add_evidence(self, unit_code: str, year: int, node_code: str, *, name: str, content: bytes | None = None,
                     url: str | None = None, media_type: str | None = None) -> dict[str, Any]:
        """Attach a document (tài liệu kiểm chứng) or a link to a node's score.

        Parameters
        ----------
        unit_code, year, node_code
            The assessment and a node of its framework.
        name
            The file name (its extension gives the type) or the link's title.
        content
            The file's bytes (at most ``Store.max_evidence_bytes``, default
            20 MB; PDF, Word, Excel, OpenDocument text or spreadsheet, PNG or
            JPEG; the bytes must match the type).
        url
            Instead of ``content``: an ``http://`` or ``https://`` address.
        media_type
            The declared media type; must agree with the extension.

        Returns
        -------
        dict
            ``id``, ``kind`` (file or link), ``name``, ``media_type``,
            ``size_bytes``, ``sha256``, ``url``, ``version``.

        Raises
        ------
        FileRefused
            Too large, empty, a type not accepted, bytes that do not match
            the type, or a link that is not http(s) (the message says which
            and what is accepted).
        NotFound
            No such assessment, or a node not in its framework.
        AccessDenied
            The assessment is published.
        """
        rec = _check_evidence(name, content, url, media_type, self.store.max_evidence_bytes)
        node_code = str(node_code).strip()

        def body(conn: Connection) -> dict[str, Any]:
            a = self._assessment_row(conn, unit_code, year)
            self._require_open(a)
            roles.require_evidence_change(self.role, self.unit_codes, a._mapping, user=self.user)
            fw = self._fw(a)
            if node_code not in set(fw.nodes["code"]):
                raise NotFound(f"framework {fw.id} has no node {node_code!r}")
            e = m.evidence
            now = _now()
            new_id = conn.execute(insert(e).values(tenant_id=self.tenant, assessment_id=a.id, node_code=node_code,
                                                   uploaded_by=self.user, uploaded_at=now, version=1, **rec)
                                  .returning(e.c.id)).scalar_one()
            shown = {k: rec[k] for k in ("kind", "name", "media_type", "size_bytes", "sha256", "url")}
            self._audit(conn, _changes("evidence", f"{a.unit_code}/{a.year}/{node_code}/{new_id}", None, shown,
                                       "insert"), None, now)
            return {"id": new_id, **shown, "version": 1}

        return self._run(body, write=True)

    def evidence(self, unit_code: str, year: int) -> pd.DataFrame:
        """The evidence attached to an assessment (without the file bytes).

        Returns
        -------
        pandas.DataFrame
            Columns ``id``, ``node_code``, ``kind``, ``name``,
            ``media_type``, ``size_bytes``, ``sha256``, ``url``,
            ``uploaded_by``, ``uploaded_at``, ``version``; in upload order.

        Raises
        ------
        NotFound
            No such assessment in this tenant.
        """
        e = m.evidence

        def body(conn: Connection) -> list:
            a = self._assessment_row(conn, unit_code, year)
            return conn.execute(select(*[e.c[c] for c in _EVIDENCE_COLUMNS]).where(
                e.c.tenant_id == self.tenant, e.c.assessment_id == a.id).order_by(e.c.id)).all()

        df = _frame(self._run(body, write=False), _EVIDENCE_COLUMNS,
                    text=["node_code", "kind", "name", "media_type", "sha256", "url", "uploaded_by"])
        df["size_bytes"] = df["size_bytes"].astype("Int64")
        df["uploaded_at"] = _utc_column(df["uploaded_at"])
        return df

    def evidence_content(self, evidence_id: int) -> bytes:
        """The bytes of one evidence file.

        Raises
        ------
        NotFound
            No such file in this tenant (links have no bytes).
        """
        e = m.evidence
        row = self._run(lambda conn: conn.execute(select(e.c.content).where(
            e.c.tenant_id == self.tenant, e.c.id == int(evidence_id), e.c.kind == "file")).first(), write=False)
        if row is None:
            raise NotFound(f"no evidence file #{evidence_id} in tenant {self.tenant!r}")
        return bytes(row.content)

    def remove_evidence(self, evidence_id: int, reason: str | None = None) -> None:
        """Remove one evidence file or link (audited).

        Raises
        ------
        NotFound
            No such evidence in this tenant.
        AccessDenied
            Its assessment is published.
        """
        e, a = m.evidence, m.assessments

        def body(conn: Connection) -> None:
            cur = conn.execute(select(e, a.c.unit_code, a.c.year, a.c.status, a.c.deadline).join(
                a, and_(a.c.id == e.c.assessment_id, a.c.tenant_id == e.c.tenant_id)).where(
                e.c.tenant_id == self.tenant, e.c.id == int(evidence_id))).first()
            if cur is None:
                raise NotFound(f"no evidence #{evidence_id} in tenant {self.tenant!r}")
            self._require_open(cur)
            roles.require_evidence_change(self.role, self.unit_codes, cur._mapping, user=self.user)
            conn.execute(delete(e).where(e.c.id == cur.id, e.c.tenant_id == self.tenant))
            shown = {k: cur._mapping[k] for k in ("kind", "name", "media_type", "size_bytes", "sha256", "url")}
            self._audit(conn, _changes("evidence", f"{cur.unit_code}/{cur.year}/{cur.node_code}/{cur.id}",
                                       cur._mapping, shown, "delete", cur.version), reason)

        self._run(body, write=True)

    # -- action plans (parindex_lib.planning) ----------------------------------
    def save_action(self, unit_code: str, year: int, node_code: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Add an action to a unit's plan, or change one: :func:`parindex_lib.planning.save_action`.

        Keywords: ``action``, ``owner``, ``deadline``, ``gap``, ``status``,
        ``action_id``, ``expected_version``, ``reason``. Returns ``id`` and
        ``version``.
        """
        from . import planning

        return planning.save_action(self, unit_code, year, node_code, **kwargs)

    def delete_action(self, unit_code: str, year: int, action_id: int, *, expected_version: int,
                      reason: str | None = None) -> None:
        """Remove an action from a unit's plan: :func:`parindex_lib.planning.delete_action`."""
        from . import planning

        planning.delete_action(self, unit_code, year, action_id, expected_version=expected_version, reason=reason)

    def action_plan(self, unit_code: str, year: int) -> pd.DataFrame:
        """A unit's action plan for one year: :func:`parindex_lib.planning.action_plan`."""
        from . import planning

        return planning.action_plan(self, unit_code, year)

    # -- audit and reference -------------------------------------------------
    def audit(self, limit: int | None = None, *, unit_code: str | None = None, year: int | None = None,
              node_code: str | None = None, table_name: str | Iterable[str] | None = None) -> pd.DataFrame:
        """The tenant's audit log, newest first, filtered in the database.

        Parameters
        ----------
        limit
            At most this many rows (after the filters); None for all.
        unit_code, year, node_code
            Only the rows about this unit, year and node, read from the
            ``row_key``: ``D01`` (the unit itself), ``D01/2024`` (its
            assessment), ``D01/2024/1.2`` (a score), ``D01/2024/1.2/7``
            (evidence or an action #7). Give any of the three: ``unit_code``
            alone also matches the unit's own row; ``year`` or ``node_code``
            alone match those parts of every key.
        table_name
            Only rows of this table (or these tables): ``scores``,
            ``assessments``, ``evidence``, ``action_plans``, ``units``,
            ``memberships``, ``frameworks``, ``tenants``.

        Returns
        -------
        pandas.DataFrame
            Columns ``at`` (UTC), ``user_name``, ``table_name``, ``row_key``
            (e.g. ``D01/2024/1.2.3``), ``field``, ``old_value``,
            ``new_value`` (as text, None = empty), ``reason``, ``action``
            (insert, update, delete).

        Examples
        --------
        The history of one assessment, as the appraisal app shows it::

            session.audit(300, unit_code="D01", year=2024)
        """
        al = m.audit_log
        cond = [al.c.tenant_id == self.tenant]
        key_cond = _row_key_condition(al.c.row_key, al.c.table_name, unit_code, year, node_code)
        if key_cond is not None:
            cond.append(key_cond)
        if table_name is not None:
            names = [table_name] if isinstance(table_name, str) else [str(t) for t in table_name]
            cond.append(al.c.table_name.in_(names))
        q = select(*[al.c[c] for c in AUDIT_COLUMNS]).where(*cond).order_by(al.c.at.desc(), al.c.id.desc())
        if limit is not None:
            q = q.limit(int(limit))
        df = _frame(self._run(lambda conn: conn.execute(q).all(), write=False), AUDIT_COLUMNS, text=AUDIT_COLUMNS[1:])
        df["at"] = _utc_column(df["at"])
        return df

    def data_stamp(self, *, window: int = 10_000) -> tuple[int, int]:
        """A cheap mark of the state of the tenant's data: it changes whenever the data does.

        Every write to a tenant's data appends to its audit log, which is
        append-only, so the newest audit row id visible to the session marks
        the state of the data. On PostgreSQL ids come from a sequence and a
        transaction that took a lower id can commit after one that took a
        higher id; the number of the tenant's rows among the ``window`` ids
        below the newest is part of the stamp, so such a late commit changes
        the stamp too (as long as fewer than ``window`` ids were taken in
        between). Compare stamps for equality only.

        Parameters
        ----------
        window
            How many ids below the newest are counted.

        Returns
        -------
        tuple of int
            ``(newest audit row id, rows of the tenant among the window)``;
            ``(0, 0)`` for a tenant without audit rows.

        Examples
        --------
        Recompute only what changed since the stamp was taken::

            before = session.data_stamp()
            ...
            if session.data_stamp() != before:
                ...
        """
        al = m.audit_log
        mine = al.c.tenant_id == self.tenant
        newest = select(func.max(al.c.id)).where(mine).scalar_subquery()
        q = select(func.max(al.c.id), func.count()).where(mine, al.c.id > newest - int(window))
        row = self._run(lambda conn: conn.execute(q).one(), write=False)
        return (int(row[0] or 0), int(row[1] or 0))

    def reference(self, dataset: str | None = None) -> pd.DataFrame:
        """Shared public reference data (read-only for every tenant).

        Parameters
        ----------
        dataset
            E.g. ``"PAR"``, ``"SIPAS"``, ``"PCI"``, ``"PAPI"``; None for all.

        Returns
        -------
        pandas.DataFrame
            Columns ``dataset``, ``province_code``, ``province_name``,
            ``year``, ``component``, ``value`` (float, NaN = not published),
            ``source_url``; sorted by dataset, year, province, component.
        """
        rv = m.reference_values
        q = select(*[rv.c[c] for c in REFERENCE_COLUMNS]).order_by(
            rv.c.dataset, rv.c.year, rv.c.province_code, rv.c.component)
        if dataset is not None:
            q = q.where(rv.c.dataset == dataset)
        df = _frame(self._run(lambda conn: conn.execute(q).all(), write=False), REFERENCE_COLUMNS,
                    text=["dataset", "province_code", "province_name", "component", "source_url"])
        df["year"] = df["year"].astype("int64")
        df["value"] = df["value"].astype("float64")
        return df

    def reference_sources(self, dataset: str | None = None) -> pd.DataFrame:
        """The sources of the reference data.

        Returns
        -------
        pandas.DataFrame
            Columns ``dataset``, ``title``, ``url``, ``publisher``, ``notes``.
        """
        rs = m.reference_sources
        cols = ["dataset", "title", "url", "publisher", "notes"]
        q = select(*[rs.c[c] for c in cols]).order_by(rs.c.dataset, rs.c.id)
        if dataset is not None:
            q = q.where(rs.c.dataset == dataset)
        return _frame(self._run(lambda conn: conn.execute(q).all(), write=False), cols, text=cols)


# -- module helpers ---------------------------------------------------------------

def _aliased(df: pd.DataFrame, aliases: Mapping[str, str]) -> pd.DataFrame:
    """``df`` with alias columns renamed, where the proper name is absent."""
    rename = {a: c for a, c in aliases.items() if a in df.columns and c not in df.columns}
    return df.rename(columns=rename) if rename else df


def _years(year: int | Iterable[int] | None) -> list[int] | None:
    if year is None:
        return None
    if isinstance(year, (int, np.integer, str)):
        return [_year(year)]
    return [_year(y) for y in year]


def _like(text_: str) -> str:
    """``text_`` for a LIKE pattern with ``\\`` as the escape character."""
    return text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _row_key_condition(row_key: Any, table: Any, unit_code: Any, year: Any, node_code: Any) -> Any:
    """The SQL condition on audit ``row_key`` for a unit, year and node (None when none is given).

    Keys are ``unit``, ``unit/year``, ``unit/year/node`` and ``unit/year/node/id``; a part not given
    matches any text. The key itself and every key below it match. The leading parts given are
    compared exactly (SQLite's LIKE ignores the case of ASCII letters, so LIKE only places the
    parts after a part not given).
    """
    parts = [_nfc(unit_code) or None, None if _blank(year) else str(_year(year)),
             None if _blank(node_code) else str(node_code).strip()]
    given = [i for i, p in enumerate(parts) if p is not None]
    if not given:
        return None
    last = given[-1]
    literal_n = next((i for i, p in enumerate(parts) if p is None), len(parts))
    literal = "/".join(parts[:literal_n])  # type: ignore[arg-type]
    pattern = "/".join(_like(p) if p is not None else "%" for p in parts[:last + 1])

    def starts_literal(cond: Any) -> Any:
        return and_(cond, func.substr(row_key, 1, len(literal) + 1) == literal + "/") if literal else cond

    below = starts_literal(row_key.like(pattern + "/%", escape="\\"))
    if literal_n > last:  # every part up to the last one given is known: the key itself, exactly
        same = row_key == literal
        if given == [0]:
            same = and_(same, table == "units")  # other tables' keys (user names, framework ids) are not units
    else:
        same = starts_literal(row_key.like(pattern, escape="\\"))
    return or_(same, below)


def _table_origin(df: pd.DataFrame, source: str) -> tuple[str, str | None, list[int | None] | None, int]:
    """Where a score table's rows come from: file, sheet, spreadsheet row per row (or None), header row.

    Read from ``df.attrs`` (``file``, ``sheet``, ``rows``, and the ``source``
    dict of :func:`parindex_lib.importing.read_scores`). ``rows`` is used only
    when it holds one row number per row of ``df``.
    """
    attrs = getattr(df, "attrs", None) or {}
    origin = attrs.get("source") if isinstance(attrs.get("source"), Mapping) else {}

    def text(key: str) -> str | None:
        value = attrs.get(key, origin.get(key))
        return None if _blank(value) else str(value)

    rows: list[int | None] | None = None
    given = attrs.get("rows")
    if given is not None and not isinstance(given, (str, bytes)):
        try:
            values = list(given)
        except TypeError:
            values = []
        if len(values) == len(df) and len(df):
            try:
                rows = [None if _blank(v) else int(v) for v in values]
            except (TypeError, ValueError):
                rows = None
    header = origin.get("header_row")
    header_row = int(header) if isinstance(header, (int, np.integer)) and not isinstance(header, bool) else 1
    return text("file") or source, text("sheet"), rows, header_row


def _sorted_failures(failures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failures in row order, each once (a wide sheet gives several long rows per spreadsheet row)."""
    out, seen = [], set()
    for f in sorted(failures, key=lambda f: (f.get("row") is None, f.get("row") or 0)):
        key = tuple(repr(f.get(c)) for c in ("file", "sheet", "row", "column", "value", "expected"))
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _check_fits(fw: Framework, kind: str, year: int, unit_code: str) -> None:
    kinds = tuple(fw.kinds) or (fw.level,)
    fails = []
    if kind not in kinds:
        fails.append({"column": "framework_id", "value": fw.id,
                      "expected": f"a framework for {kind} units (unit {unit_code}); {fw.id} scores {', '.join(kinds)}"})
    if fw.years and year not in fw.years:
        fails.append({"column": "year", "value": year,
                      "expected": f"one of the years framework {fw.id} applies to: {', '.join(map(str, fw.years))}"})
    if fails:
        raise ValidationError(f"framework {fw.id} does not fit unit {unit_code}, {year}", fails)


def _score_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for c in _NUMBER_FIELDS:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    df["year"] = df["year"].astype("int64")
    df["version"] = df["version"].astype("int64")
    df["appraisal_round"] = df["appraisal_round"].astype("Int64")
    for c in ("unit_code", "framework_id", "node_code", "explanation", "evidence", "appraisal_reason",
              "unit_response", "updated_by"):
        df[c] = df[c].astype("str")
    df["updated_at"] = _utc_column(df["updated_at"])
    return df


def _check_evidence(name: str, content: bytes | None, url: str | None, media_type: str | None,
                    max_bytes: int) -> dict[str, Any]:
    """Check one evidence item; return the column values to store."""
    label = _nfc(name) or ""

    def refuse(column: str, value: Any, expected: str, why: str) -> FileRefused:
        return FileRefused(f"evidence {label or '(no name)'} refused: {why}",
                           [{"file": label or None, "column": column, "value": value, "expected": expected}])

    if not label:
        raise refuse("name", name, "a file name or a link title", "no name")
    if (content is None) == (url is None):
        raise refuse("content", None, "either the file's bytes or a link (url), not both", "give a file or a link")
    if url is not None:
        u = str(url).strip()
        parts = urlsplit(u)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise refuse("url", u, "a web address starting with http:// or https://", "not an http(s) link")
        return {"kind": "link", "name": label, "media_type": None, "size_bytes": None, "sha256": None,
                "content": None, "url": u}
    data = bytes(content)  # type: ignore[arg-type]
    size = len(data)
    if size > max_bytes:
        raise refuse("size_bytes", size, f"at most {_size(max_bytes)} (this file is {_size(size)})", "too large")
    if size == 0:
        raise refuse("size_bytes", 0, "a file with content", "empty file")
    ext = label.rsplit(".", 1)[-1].lower() if "." in label else ""
    if ext not in EVIDENCE_TYPES:
        raise refuse("name", label, "a file of type " + ", ".join(sorted(EVIDENCE_TYPES)) + " (zip files are refused)",
                     f"type .{ext or '?'} is not accepted")
    declared = (media_type or "").split(";")[0].strip().lower() or None
    if declared is not None and declared not in EVIDENCE_TYPES[ext] and declared != "application/octet-stream":
        raise refuse("media_type", media_type, f"{EVIDENCE_TYPES[ext][0]} for a .{ext} file",
                     "the media type does not match the file name")
    if not any(data.startswith(sig) for sig in _MAGIC[ext]):
        raise refuse("content", data[:8].hex(), f"the content of a .{ext} file", f"the bytes are not a .{ext} file")
    return {"kind": "file", "name": label, "media_type": EVIDENCE_TYPES[ext][0], "size_bytes": size,
            "sha256": hashlib.sha256(data).hexdigest(), "content": data, "url": None}


def _size(n: int) -> str:
    """A number of bytes for people: ``20 MB``, ``1.5 KB``."""
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"
