"""Action plans: what a unit will do about the points it lost.

One row per action: the unit, the assessment year whose results it answers,
the node, the points it aims to recover (gap), the action, its owner, its
deadline and its status, versioned like every other row and written through
:mod:`parindex_lib.planning` (which audits every change).

On PostgreSQL the table is under the row-level security of revision 0002,
with the same pattern: ENABLEd and FORCEd, a policy opening a tenant's rows
only to a valid access token of one of its members, a maintenance policy for
the schema owner, and a trigger that checks every write of the application
role against the token's role: admins change every unit's plan, editors
their own units' plans, under the token's user; appraisers, analysts and
researchers change nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
#: Statuses of an action (parindex_lib.planning.ACTION_STATUSES).
STATUSES = ("planned", "in_progress", "done", "dropped")

# The setting the owner's (maintenance) policies read (as in revision 0002).
_MAINT = ("(current_setting('app.all_tenants', true) = 'on' "
          "OR {col} = current_setting('app.tenant_id', true))")


def _guard(path: str) -> str:
    return f"""CREATE FUNCTION parindex_guard_action_plans() RETURNS trigger LANGUAGE plpgsql {path} AS $$
    DECLARE
        c record;
    BEGIN
        IF parindex_is_maintainer(TG_RELID) THEN
            RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END IF;
        SELECT * INTO c FROM parindex_claim();
        IF c.role IS NULL THEN
            PERFORM parindex_refuse(format('no valid access token opens tenant %s',
                coalesce(nullif(current_setting('app.tenant_id', true), ''), '(none set)')));
        END IF;
        IF TG_OP <> 'DELETE' AND NEW.updated_by IS DISTINCT FROM c.user_name THEN
            PERFORM parindex_refuse(format('an action plan is saved under the token''s user %s, not %s',
                                           c.user_name, NEW.updated_by));
        END IF;
        IF c.role = 'admin' THEN
            RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END IF;
        IF c.role = 'editor'
           AND (TG_OP = 'INSERT' OR coalesce(c.unit_codes ? OLD.unit_code, false))
           AND (TG_OP = 'DELETE' OR coalesce(c.unit_codes ? NEW.unit_code, false)) THEN
            RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END IF;
        PERFORM parindex_refuse(format('%s (%s) may not change the action plan of unit %s', c.user_name, c.role,
            CASE WHEN TG_OP = 'DELETE' THEN OLD.unit_code ELSE NEW.unit_code END));
        RETURN NULL;
    END $$"""


def _policies() -> list[str]:
    tenant = "(SELECT parindex_tenant())"
    t = "action_plans"
    return [
        f"CREATE POLICY {t}_tenant ON {t} USING (tenant_id = {tenant}) WITH CHECK (tenant_id = {tenant})",
        f"CREATE POLICY {t}_maintenance ON {t} TO CURRENT_USER USING ({_MAINT.format(col='tenant_id')})",
    ]


def upgrade() -> None:
    op.create_table(
        "action_plans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("unit_code", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("node_code", sa.String(64), nullable=False),
        sa.Column("gap", sa.Float()),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text()),
        sa.Column("deadline", sa.Date()),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_action_plans"),
        sa.ForeignKeyConstraint(["tenant_id", "unit_code"], ["units.tenant_id", "units.code"],
                                name="fk_action_plans_tenant_id_unit_code_units"),
        sa.CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")",
                           name="ck_action_plans_status"),
    )
    op.create_index("ix_action_plans_tenant_id_unit_code_year", "action_plans", ["tenant_id", "unit_code", "year"])
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    schema = bind.execute(sa.text("select current_schema()")).scalar_one()
    path = 'SET search_path = pg_catalog, "{}", pg_temp'.format(schema.replace('"', '""'))
    op.execute(sa.text(_guard(path)))
    op.execute("ALTER TABLE action_plans ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE action_plans FORCE ROW LEVEL SECURITY")
    for sql in _policies():
        op.execute(sa.text(sql))
    op.execute(sa.text("CREATE TRIGGER action_plans_guard BEFORE INSERT OR UPDATE OR DELETE ON action_plans "
                       "FOR EACH ROW EXECUTE FUNCTION parindex_guard_action_plans()"))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS action_plans_guard ON action_plans")
        for (pol,) in bind.execute(sa.text("select policyname from pg_policies where tablename = 'action_plans' "
                                           "and schemaname = current_schema()")).all():
            op.execute(f'DROP POLICY "{pol}" ON action_plans')
        op.execute("ALTER TABLE action_plans NO FORCE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE action_plans DISABLE ROW LEVEL SECURITY")
        op.execute("DROP FUNCTION IF EXISTS parindex_guard_action_plans()")
    op.drop_index("ix_action_plans_tenant_id_unit_code_year", table_name="action_plans")
    op.drop_table("action_plans")
