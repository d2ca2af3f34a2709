"""Two functions for saving one score on PostgreSQL in two round trips.

A save reads its context (the membership, the assessment, the stored score
and whether evidence is attached) and then writes the new values with one
audit row per changed value. Done as separate statements in one transaction
that is six round trips (BEGIN, the transaction's settings, the read, the
update, the audit rows, COMMIT), and under load each round trip costs both
processes a wake-up. These functions make it two, each one statement in its
own transaction:

- ``parindex_score_context(tenant, token, user, unit, year, node)`` sets the
  transaction's tenant and access token (transaction-local, as
  :meth:`parindex_lib.store.Store._run` does) and returns one row: the
  tenant if the token opens it, the user's membership, the assessment with
  its framework's id and checksum, the stored score (NULLs when the leaf was
  never saved) and whether evidence is attached to the leaf;
- ``parindex_update_score(...)`` sets the same settings, updates the score
  only if its version is still the expected one (``false`` when someone
  saved it since) and appends the audit rows it is given, all or nothing.

Both run with the caller's rights (SECURITY INVOKER): row-level security,
the role triggers of revision 0002 and the append-only audit log apply to
every row they touch exactly as to the application's own statements, and
they do nothing the application role could not do with plain SQL. The
library still checks every value, role and rule before it calls the second
(:meth:`parindex_lib.store.TenantSession.save_score`).

SQLite has no functions: the library saves there in one transaction.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: The score fields, in the order of ``parindex_update_score``'s value parameters.
FIELDS = (("self_score", "double precision"), ("explanation", "text"), ("evidence", "text"),
          ("appraised_score", "double precision"), ("appraisal_reason", "text"), ("unit_response", "text"),
          ("appraisal_round", "integer"), ("survey_points", "double precision"), ("bonus", "double precision"),
          ("penalty", "double precision"))

_SETTINGS = """PERFORM pg_catalog.set_config('app.tenant_id', p_tenant, true),
                    pg_catalog.set_config('app.token', p_token, true),
                    pg_catalog.set_config('app.all_tenants', 'off', true);"""


def _context(q: str) -> str:
    return f"""CREATE FUNCTION {q}.parindex_score_context(p_tenant text, p_token text, p_user text, p_unit text,
                                                        p_year integer, p_node text)
    RETURNS TABLE (tenant_code text, member_role text, member_units text,
                   a_id integer, a_tenant_id text, a_unit_code text, a_year integer, a_framework_ref integer,
                   a_status text, a_deadline timestamptz, a_framework_id text, a_checksum text,
                   s_id integer, {", ".join(f"s_{name} {kind}" for name, kind in FIELDS)},
                   s_version integer, s_updated_by text, s_updated_at timestamptz, has_evidence boolean)
    LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
        {_SETTINGS}
        RETURN QUERY
        SELECT t.code::text, ms.role::text, ms.unit_codes,
               a.id, a.tenant_id::text, a.unit_code::text, a.year, a.framework_ref, a.status::text, a.deadline,
               f.framework_id::text, f.checksum::text,
               s.id, {", ".join(f"s.{name}" for name, _ in FIELDS)}, s.version, s.updated_by::text, s.updated_at,
               a.id IS NOT NULL AND EXISTS (SELECT 1 FROM {q}.evidence e
                                            WHERE e.tenant_id = t.code AND e.assessment_id = a.id
                                              AND e.node_code = p_node)
        FROM {q}.tenants t
        LEFT JOIN {q}.memberships ms ON ms.tenant_id = t.code AND ms.user_name = p_user
        LEFT JOIN ({q}.assessments a JOIN {q}.frameworks f ON f.id = a.framework_ref)
               ON a.tenant_id = t.code AND a.unit_code = p_unit AND a.year = p_year
        LEFT JOIN {q}.scores s ON s.tenant_id = t.code AND s.assessment_id = a.id AND s.node_code = p_node
        WHERE t.code = p_tenant;
    END $$"""


def _update(q: str) -> str:
    params = ", ".join(f"p_{name} {kind}" for name, kind in FIELDS)
    sets = ",\n                ".join(f"{name} = CASE WHEN '{name}' = ANY (p_fields) THEN p_{name} ELSE s.{name} END"
                                      for name, _ in FIELDS)
    return f"""CREATE FUNCTION {q}.parindex_update_score(p_tenant text, p_token text, p_user text, p_id integer,
                                                       p_expected integer, p_at timestamptz, p_fields text[],
                                                       {params}, p_row_key text, p_reason text,
                                                       p_audit_fields text[], p_old_values text[],
                                                       p_new_values text[])
    RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
        {_SETTINGS}
        UPDATE {q}.scores s SET
                {sets},
                version = p_expected + 1, updated_by = p_user, updated_at = p_at
        WHERE s.id = p_id AND s.tenant_id = p_tenant AND s.version = p_expected;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
        INSERT INTO {q}.audit_log (tenant_id, user_name, at, table_name, row_key, field, old_value, new_value,
                                   reason, action, version)
        SELECT p_tenant, p_user, p_at, 'scores', p_row_key, d.field, d.old_value, d.new_value, p_reason, 'update',
               p_expected + 1
        FROM unnest(p_audit_fields, p_old_values, p_new_values) WITH ORDINALITY AS d(field, old_value, new_value, i)
        ORDER BY d.i;
        RETURN true;
    END $$"""


_SIGNATURES = (
    "parindex_score_context(text, text, text, text, integer, text)",
    "parindex_update_score(text, text, text, integer, integer, timestamptz, text[], "
    + ", ".join(kind for _, kind in FIELDS) + ", text, text, text[], text[], text[])",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    schema = bind.execute(sa.text("select current_schema()")).scalar_one()
    q = '"{}"'.format(schema.replace('"', '""'))
    op.execute(sa.text(_context(q)))
    op.execute(sa.text(_update(q)))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for sig in _SIGNATURES:
        op.execute(f"DROP FUNCTION IF EXISTS {sig}")
