"""The database schema of the store, as SQLAlchemy Core tables.

Every tenant-owned table has a ``tenant_id`` column holding the tenant's
code, and every row a ``version`` (optimistic concurrency: a write bumps it,
a writer that read an older version is refused). Foreign keys between
tenant-owned tables include ``tenant_id``, so the database itself refuses a
row that points into another tenant.

The schema is created and changed by the Alembic revisions in
``parindex_lib/migrations/versions`` (never by ``metadata.create_all`` in
production); ``tests/test_store.py`` checks that the migrated schema equals
these tables.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "metadata",
    "ROLES",
    "UNIT_KINDS",
    "ASSESSMENT_STATUSES",
    "EVIDENCE_KINDS",
    "UTCDateTime",
    "tenants",
    "memberships",
    "units",
    "frameworks",
    "assessments",
    "scores",
    "evidence",
    "audit_log",
    "reference_sources",
    "reference_values",
    "access_tokens",
    "action_plans",
    "ACTION_STATUSES",
    "TENANT_TABLES",
]

#: Roles a member of a tenant can hold.
ROLES = ("admin", "appraiser", "editor", "analyst", "researcher")
#: Kinds of unit (the body being scored).
UNIT_KINDS = ("ministry", "province", "department", "district", "commune")
#: Assessment statuses, in their order.
ASSESSMENT_STATUSES = ("draft", "submitted", "appraised", "published")
#: Kinds of evidence.
EVIDENCE_KINDS = ("file", "link")

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware (UTC).

    SQLite keeps no time zone; PostgreSQL keeps ``timestamptz``. Either way
    Python sees an aware :class:`datetime.datetime` in UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _version() -> Column:
    return Column("version", Integer, nullable=False, default=1)


tenants = Table(
    "tenants", metadata,
    Column("code", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    _version(),
)

memberships = Table(
    "memberships", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), ForeignKey("tenants.code"), nullable=False),
    Column("user_name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    # JSON list of unit codes an editor may score; NULL for every other role.
    Column("unit_codes", Text),
    _version(),
    UniqueConstraint("tenant_id", "user_name"),
    CheckConstraint(_in("role", ROLES), name="role"),
)

units = Table(
    "units", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), ForeignKey("tenants.code"), nullable=False),
    Column("code", String(64), nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("parent_code", String(64)),
    Column("region", Text),
    Column("active_from", Date),
    Column("active_to", Date),
    _version(),
    UniqueConstraint("tenant_id", "code"),
    CheckConstraint(_in("kind", UNIT_KINDS), name="kind"),
)

frameworks = Table(
    "frameworks", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # NULL: a shared framework, read-only for every tenant.
    Column("tenant_id", String(64), ForeignKey("tenants.code")),
    Column("framework_id", String(100), nullable=False),
    Column("name_vi", Text, nullable=False),
    Column("level", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("yaml", Text, nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    _version(),
    UniqueConstraint("tenant_id", "framework_id"),
)
# Shared frameworks (tenant_id NULL) have unique ids too; NULLs never clash in
# a plain unique constraint, hence the partial index.
Index("uq_frameworks_shared_framework_id", frameworks.c.framework_id, unique=True,
      sqlite_where=frameworks.c.tenant_id.is_(None), postgresql_where=frameworks.c.tenant_id.is_(None))

assessments = Table(
    "assessments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), ForeignKey("tenants.code"), nullable=False),
    Column("unit_code", String(64), nullable=False),
    Column("year", Integer, nullable=False),
    Column("framework_ref", Integer, ForeignKey("frameworks.id"), nullable=False),
    Column("status", String(20), nullable=False, default="draft"),
    Column("deadline", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(200), nullable=False),
    _version(),
    UniqueConstraint("tenant_id", "unit_code", "year"),
    UniqueConstraint("tenant_id", "id"),
    ForeignKeyConstraint(["tenant_id", "unit_code"], ["units.tenant_id", "units.code"]),
    CheckConstraint(_in("status", ASSESSMENT_STATUSES), name="status"),
)

scores = Table(
    "scores", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("assessment_id", Integer, nullable=False),
    Column("node_code", String(64), nullable=False),
    Column("self_score", Float),
    Column("explanation", Text),
    Column("evidence", Text),
    Column("appraised_score", Float),
    Column("appraisal_reason", Text),
    Column("unit_response", Text),
    Column("appraisal_round", Integer),
    Column("survey_points", Float),
    Column("bonus", Float),
    Column("penalty", Float),
    _version(),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("assessment_id", "node_code"),
    ForeignKeyConstraint(["tenant_id", "assessment_id"], ["assessments.tenant_id", "assessments.id"]),
    Index("ix_scores_tenant_id", "tenant_id"),
)

evidence = Table(
    "evidence", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("assessment_id", Integer, nullable=False),
    Column("node_code", String(64), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("name", Text, nullable=False),
    Column("media_type", String(200)),
    Column("size_bytes", Integer),
    Column("sha256", String(64)),
    Column("content", LargeBinary),
    Column("url", Text),
    Column("uploaded_by", String(200), nullable=False),
    Column("uploaded_at", UTCDateTime, nullable=False),
    _version(),
    ForeignKeyConstraint(["tenant_id", "assessment_id"], ["assessments.tenant_id", "assessments.id"]),
    CheckConstraint(_in("kind", EVIDENCE_KINDS), name="kind"),
    CheckConstraint("(kind = 'file' AND content IS NOT NULL AND url IS NULL) OR "
                    "(kind = 'link' AND url IS NOT NULL AND content IS NULL)", name="content_or_url"),
    Index("ix_evidence_tenant_id_assessment_id", "tenant_id", "assessment_id"),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # NULL for maintenance writes to shared data (shared frameworks, reference data).
    Column("tenant_id", String(64), ForeignKey("tenants.code")),
    Column("user_name", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("row_key", Text, nullable=False),
    Column("field", String(64)),
    Column("old_value", Text),
    Column("new_value", Text),
    Column("reason", Text),
    Column("action", String(20), nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Index("ix_audit_log_tenant_id_at", "tenant_id", "at"),
)

reference_sources = Table(
    "reference_sources", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset", String(40), nullable=False),
    Column("title", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("publisher", Text),
    Column("notes", Text),
    _version(),
    UniqueConstraint("dataset", "url"),
)

reference_values = Table(
    "reference_values", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset", String(40), nullable=False),
    Column("province_code", String(16), nullable=False),
    Column("province_name", Text, nullable=False),
    Column("year", Integer, nullable=False),
    Column("component", String(100), nullable=False),
    Column("value", Float),
    Column("source_url", Text),
    _version(),
    UniqueConstraint("dataset", "province_code", "year", "component"),
)

# Database access tokens (revision 0002): what a user's processes may open on
# PostgreSQL. One row per token and tenant, copied from the user's membership
# when the token is issued; only the sha256 of the token is kept. The
# application role has no privilege on this table: security-definer functions
# owned by the schema owner read it (see the revision).
access_tokens = Table(
    "access_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_sha256", String(64), nullable=False),
    Column("user_name", String(200), nullable=False),
    Column("tenant_id", String(64), ForeignKey("tenants.code"), nullable=False),
    Column("role", String(20), nullable=False),
    # JSON list of unit codes (editors); NULL for every other role.
    Column("unit_codes", Text),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("issued_by", String(200), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    UniqueConstraint("token_sha256", "tenant_id"),
    CheckConstraint(_in("role", ROLES), name="role"),
    Index("ix_access_tokens_user_name", "user_name"),
)

#: Statuses of an action of an action plan (revision 0003, :mod:`parindex_lib.planning`).
ACTION_STATUSES = ("planned", "in_progress", "done", "dropped")

# Action plans (revision 0003): what a unit will do about the points it lost;
# written through parindex_lib.planning.
action_plans = Table(
    "action_plans", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("unit_code", String(64), nullable=False),
    Column("year", Integer, nullable=False),
    Column("node_code", String(64), nullable=False),
    Column("gap", Float),
    Column("action", Text, nullable=False),
    Column("owner", Text),
    Column("deadline", Date),
    Column("status", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(["tenant_id", "unit_code"], ["units.tenant_id", "units.code"]),
    CheckConstraint(_in("status", ACTION_STATUSES), name="status"),
    Index("ix_action_plans_tenant_id_unit_code_year", "tenant_id", "unit_code", "year"),
)

#: Tables whose rows belong to one tenant (``tenant_id`` NOT NULL).
TENANT_TABLES = ("memberships", "units", "assessments", "scores", "evidence", "action_plans")
