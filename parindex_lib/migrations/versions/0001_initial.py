"""The first schema: tenants, memberships, units, frameworks, assessments,
scores, evidence, audit log and shared reference data.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _version() -> sa.Column:
    return sa.Column("version", sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        _version(),
        sa.PrimaryKeyConstraint("code", name="pk_tenants"),
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("unit_codes", sa.Text()),
        _version(),
        sa.PrimaryKeyConstraint("id", name="pk_memberships"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.code"], name="fk_memberships_tenant_id_tenants"),
        sa.UniqueConstraint("tenant_id", "user_name", name="uq_memberships_tenant_id_user_name"),
        sa.CheckConstraint("role IN ('admin', 'appraiser', 'editor', 'analyst', 'researcher')",
                           name="ck_memberships_role"),
    )
    op.create_table(
        "units",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("parent_code", sa.String(64)),
        sa.Column("region", sa.Text()),
        sa.Column("active_from", sa.Date()),
        sa.Column("active_to", sa.Date()),
        _version(),
        sa.PrimaryKeyConstraint("id", name="pk_units"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.code"], name="fk_units_tenant_id_tenants"),
        sa.UniqueConstraint("tenant_id", "code", name="uq_units_tenant_id_code"),
        sa.CheckConstraint("kind IN ('ministry', 'province', 'department', 'district', 'commune')",
                           name="ck_units_kind"),
    )
    op.create_table(
        "frameworks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64)),
        sa.Column("framework_id", sa.String(100), nullable=False),
        sa.Column("name_vi", sa.Text(), nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("yaml", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        _version(),
        sa.PrimaryKeyConstraint("id", name="pk_frameworks"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.code"], name="fk_frameworks_tenant_id_tenants"),
        sa.UniqueConstraint("tenant_id", "framework_id", name="uq_frameworks_tenant_id_framework_id"),
    )
    op.create_index(
        "uq_frameworks_shared_framework_id", "frameworks", ["framework_id"], unique=True,
        sqlite_where=sa.text("tenant_id IS NULL"), postgresql_where=sa.text("tenant_id IS NULL"))
    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("unit_code", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("framework_ref", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("deadline", TS),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        _version(),
        sa.PrimaryKeyConstraint("id", name="pk_assessments"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.code"], name="fk_assessments_tenant_id_tenants"),
        sa.ForeignKeyConstraint(["framework_ref"], ["frameworks.id"], name="fk_assessments_framework_ref_frameworks"),
        sa.ForeignKeyConstraint(["tenant_id", "unit_code"], ["units.tenant_id", "units.code"],
                                name="fk_assessments_tenant_id_unit_code_units"),
        sa.UniqueConstraint("tenant_id", "unit_code", "year", name="uq_assessments_tenant_id_unit_code_year"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_assessments_tenant_id_id"),
        sa.CheckConstraint("status IN ('draft', 'submitted', 'appraised', 'published')",
                           name="ck_assessments_status"),
    )
    op.create_table(
        "scores",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=False),
        sa.Column("node_code", sa.String(64), nullable=False),
        sa.Column("self_score", sa.Float()),
        sa.Column("explanation", sa.Text()),
        sa.Column("evidence", sa.Text()),
        sa.Column("appraised_score", sa.Float()),
        sa.Column("appraisal_reason", sa.Text()),
        sa.Column("unit_response", sa.Text()),
        sa.Column("appraisal_round", sa.Integer()),
        sa.Column("survey_points", sa.Float()),
        sa.Column("bonus", sa.Float()),
        sa.Column("penalty", sa.Float()),
        _version(),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scores"),
        sa.ForeignKeyConstraint(["tenant_id", "assessment_id"], ["assessments.tenant_id", "assessments.id"],
                                name="fk_scores_tenant_id_assessment_id_assessments"),
        sa.UniqueConstraint("assessment_id", "node_code", name="uq_scores_assessment_id_node_code"),
    )
    op.create_index("ix_scores_tenant_id", "scores", ["tenant_id"])
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=False),
        sa.Column("node_code", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("media_type", sa.String(200)),
        sa.Column("size_bytes", sa.Integer()),
        sa.Column("sha256", sa.String(64)),
        sa.Column("content", sa.LargeBinary()),
        sa.Column("url", sa.Text()),
        sa.Column("uploaded_by", sa.String(200), nullable=False),
        sa.Column("uploaded_at", TS, nullable=False),
        _version(),
        sa.PrimaryKeyConstraint("id", name="pk_evidence"),
        sa.ForeignKeyConstraint(["tenant_id", "assessment_id"], ["assessments.tenant_id", "assessments.id"],
                                name="fk_evidence_tenant_id_assessment_id_assessments"),
        sa.CheckConstraint("kind IN ('file', 'link')", name="ck_evidence_kind"),
        sa.CheckConstraint("(kind = 'file' AND content IS NOT NULL AND url IS NULL) OR "
                           "(kind = 'link' AND url IS NOT NULL AND content IS NULL)",
                           name="ck_evidence_content_or_url"),
    )
    op.create_index("ix_evidence_tenant_id_assessment_id", "evidence", ["tenant_id", "assessment_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64)),
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("row_key", sa.Text(), nullable=False),
        sa.Column("field", sa.String(64)),
        sa.Column("old_value", sa.Text()),
        sa.Column("new_value", sa.Text()),
        sa.Column("reason", sa.Text()),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.code"], name="fk_audit_log_tenant_id_tenants"),
    )
    op.create_index("ix_audit_log_tenant_id_at", "audit_log", ["tenant_id", "at"])
    op.create_table(
        "reference_sources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset", sa.String(40), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("publisher", sa.Text()),
        sa.Column("notes", sa.Text()),
        _version(),
        sa.PrimaryKeyConstraint("id", name="pk_reference_sources"),
        sa.UniqueConstraint("dataset", "url", name="uq_reference_sources_dataset_url"),
    )
    op.create_table(
        "reference_values",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset", sa.String(40), nullable=False),
        sa.Column("province_code", sa.String(16), nullable=False),
        sa.Column("province_name", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(100), nullable=False),
        sa.Column("value", sa.Float()),
        sa.Column("source_url", sa.Text()),
        _version(),
        sa.PrimaryKeyConstraint("id", name="pk_reference_values"),
        sa.UniqueConstraint("dataset", "province_code", "year", "component",
                            name="uq_reference_values_dataset_province_code_year_component"),
    )


def downgrade() -> None:
    for name in ("reference_values", "reference_sources", "audit_log", "evidence", "scores",
                 "assessments", "frameworks", "units", "memberships", "tenants"):
        op.drop_table(name)
