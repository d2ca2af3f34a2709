"""Row-level security, role checks in the database, an append-only audit log, access tokens.

On PostgreSQL:

- Every tenant table (memberships, units, frameworks, assessments, scores,
  evidence, audit_log, and tenants itself) has row-level security ENABLEd
  and FORCEd, so even the schema owner is subject to it.
- The application role (which owns nothing) sees a tenant's rows only in a
  transaction where ``app.tenant_id`` names the tenant AND ``app.token`` is
  a valid access token whose user is a member of that tenant (table
  ``access_tokens``, issued by the schema owner; only its sha256 is kept).
  Setting ``app.tenant_id`` to another tenant opens nothing: a process that
  can run any SQL as the application role (a JupyterLab kernel, say) reaches
  only the tenants of its own token.
- The schema owner (the role that ran this revision, or a superuser) does
  maintenance: it is confined to ``app.tenant_id`` too, unless the
  transaction sets ``app.all_tenants`` to ``on`` (sessionless maintenance
  such as listing tenants or loading shared frameworks).
- Triggers check every write of the application role against the token's
  role, with the same rules as :mod:`parindex_lib.roles`: only admins change
  members, units, frameworks, open or remove assessments; editors change the
  self-assessment fields of their own units while the sheet is a draft and
  before its deadline, the unit's response while it is submitted, and submit
  their drafts; appraisers change the appraisal fields of submitted sheets
  and approve them; analysts and researchers change nothing. Rows are
  written under the token's user (``updated_by``, ``uploaded_by``, the audit
  log's ``user_name``), and audit rows carry the current time.
- The audit log refuses UPDATE, DELETE and TRUNCATE from everyone (the
  application role has no such privilege either; see
  :meth:`parindex_lib.store.Store.grant_application_role`).

On SQLite: triggers refuse UPDATE and DELETE on the audit log. (SQLite
batch migrations recreate tables: a later revision that alters audit_log
must create these triggers again.)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

#: Tenant tables with a NOT NULL tenant_id.
TENANT_TABLES = ("memberships", "units", "assessments", "scores", "evidence")
#: Tables only a tenant's admin changes (besides maintenance).
ADMIN_TABLES = ("memberships", "units", "frameworks")

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: its rows are never changed'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: its rows are never removed'); END""",
]

# The setting the owner's (maintenance) policies read.
_MAINT = ("(current_setting('app.all_tenants', true) = 'on' "
          "OR {col} = current_setting('app.tenant_id', true))")


def _functions(path: str, q: str) -> list[str]:
    """Functions: token claims (security definer), maintainer test, write guards.

    Only the security-definer function pins ``search_path`` (``path``); the others name every table and
    function with its schema (``q``), so they stay cheap to call and a temporary table or function of
    the caller can never stand in for one of ours.
    """
    return [
        # The claims of the transaction's access token: one row per tenant it opens. PL/pgSQL rather
        # than SQL: its plans are cached per session, where a SQL function that is not inlined is
        # planned at every call (these run several times per statement, in policies and triggers).
        f"""CREATE FUNCTION {q}.parindex_token_claims()
        RETURNS TABLE (user_name text, tenant_id text, role text, unit_codes jsonb)
        LANGUAGE plpgsql STABLE SECURITY DEFINER {path} AS $$
        DECLARE
            tok text := pg_catalog.current_setting('app.token', true);
        BEGIN
            IF tok IS NULL OR tok = '' THEN
                RETURN;
            END IF;
            RETURN QUERY
                SELECT t.user_name::text, t.tenant_id::text, t.role::text, t.unit_codes::jsonb
                FROM {q}.access_tokens t
                WHERE t.token_sha256 = pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(tok, 'UTF8')), 'hex')
                  AND t.expires_at > pg_catalog.now();
        END $$""",
        # The claim for the transaction's tenant (no row: the token does not open it).
        f"""CREATE FUNCTION {q}.parindex_claim()
        RETURNS TABLE (user_name text, tenant_id text, role text, unit_codes jsonb)
        LANGUAGE plpgsql STABLE AS $$
        BEGIN
            RETURN QUERY SELECT c.user_name, c.tenant_id, c.role, c.unit_codes FROM {q}.parindex_token_claims() c
                WHERE c.tenant_id = pg_catalog.current_setting('app.tenant_id', true);
        END $$""",
        f"""CREATE FUNCTION {q}.parindex_tenant() RETURNS text LANGUAGE plpgsql STABLE AS $$
        BEGIN
            RETURN (SELECT c.tenant_id FROM {q}.parindex_claim() c LIMIT 1);
        END $$""",
        f"""CREATE FUNCTION {q}.parindex_token_user() RETURNS text LANGUAGE plpgsql STABLE AS $$
        BEGIN
            RETURN (SELECT c.user_name FROM {q}.parindex_claim() c LIMIT 1);
        END $$""",
        f"""CREATE FUNCTION {q}.parindex_token_tenants() RETURNS text[] LANGUAGE plpgsql STABLE AS $$
        BEGIN
            RETURN (SELECT coalesce(array_agg(c.tenant_id), ARRAY[]::text[]) FROM {q}.parindex_token_claims() c);
        END $$""",
        # Maintenance: the current role is (a member of) the table's owner, or a superuser.
        f"""CREATE FUNCTION {q}.parindex_is_maintainer(rel oid) RETURNS boolean LANGUAGE plpgsql STABLE AS $$
        BEGIN
            RETURN (SELECT pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')
                    FROM pg_catalog.pg_class c WHERE c.oid = rel);
        END $$""",
        f"""CREATE FUNCTION {q}.parindex_refuse(msg text) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'parindex: %', msg USING ERRCODE = 'insufficient_privilege';
        END $$""",
        # memberships, units, frameworks: admins only.
        f"""CREATE FUNCTION {q}.parindex_guard_admin_only() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE c record;
        BEGIN
            IF {q}.parindex_is_maintainer(TG_RELID) THEN
                RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
            END IF;
            SELECT * INTO c FROM {q}.parindex_claim();
            IF c.role IS NULL OR c.role <> 'admin' THEN
                PERFORM {q}.parindex_refuse(format('only an admin of tenant %s changes %s (%s is %s)',
                    coalesce(nullif(current_setting('app.tenant_id', true), ''), '(none set)'), TG_TABLE_NAME,
                    coalesce(c.user_name, 'no token user'), coalesce(c.role, 'no member')));
            END IF;
            RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END $$""",
        f"""CREATE FUNCTION {q}.parindex_guard_assessments() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            c record;
            keep text[] := ARRAY['status', 'version', 'updated_at', 'updated_by'];
        BEGIN
            IF {q}.parindex_is_maintainer(TG_RELID) THEN
                RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
            END IF;
            SELECT * INTO c FROM {q}.parindex_claim();
            IF c.role IS NULL THEN
                PERFORM {q}.parindex_refuse(format('no valid access token opens tenant %s',
                    coalesce(nullif(current_setting('app.tenant_id', true), ''), '(none set)')));
            END IF;
            IF TG_OP <> 'UPDATE' THEN
                IF c.role <> 'admin' THEN
                    PERFORM {q}.parindex_refuse(format('only an admin opens or removes assessments (%s is %s)',
                                                   c.user_name, c.role));
                END IF;
                RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
            END IF;
            IF NEW.updated_by IS DISTINCT FROM c.user_name THEN
                PERFORM {q}.parindex_refuse(format('an assessment is changed under the token''s user %s, not %s',
                                               c.user_name, NEW.updated_by));
            END IF;
            IF c.role = 'admin' THEN
                RETURN NEW;
            END IF;
            IF (to_jsonb(NEW) - keep) IS DISTINCT FROM (to_jsonb(OLD) - keep) THEN
                PERFORM {q}.parindex_refuse(format('only an admin changes an assessment other than its status (%s is %s)',
                                               c.user_name, c.role));
            END IF;
            IF c.role = 'editor' AND OLD.status = 'draft' AND NEW.status = 'submitted'
               AND coalesce(c.unit_codes ? OLD.unit_code, false)
               AND (OLD.deadline IS NULL OR now() <= OLD.deadline) THEN
                RETURN NEW;
            END IF;
            IF c.role = 'appraiser' AND OLD.status = 'submitted' AND NEW.status = 'appraised' THEN
                RETURN NEW;
            END IF;
            PERFORM {q}.parindex_refuse(format('%s (%s) may not move the assessment of unit %s, %s from %s to %s',
                                           c.user_name, c.role, OLD.unit_code, OLD.year, OLD.status, NEW.status));
            RETURN NULL;
        END $$""",
        f"""CREATE FUNCTION {q}.parindex_guard_scores() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            c record;
            a record;
            n jsonb;
            o jsonb;
            f text;
            bad text[] := ARRAY[]::text[];
            self_f text[] := ARRAY['self_score', 'explanation', 'evidence'];
            resp_f text[] := ARRAY['unit_response'];
            appr_f text[] := ARRAY['appraised_score', 'appraisal_reason', 'appraisal_round', 'bonus', 'penalty',
                                   'survey_points'];
            open_self boolean;
        BEGIN
            IF {q}.parindex_is_maintainer(TG_RELID) THEN
                RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
            END IF;
            SELECT * INTO c FROM {q}.parindex_claim();
            IF c.role IS NULL THEN
                PERFORM {q}.parindex_refuse(format('no valid access token opens tenant %s',
                    coalesce(nullif(current_setting('app.tenant_id', true), ''), '(none set)')));
            END IF;
            IF TG_OP = 'DELETE' THEN
                IF c.role <> 'admin' THEN
                    PERFORM {q}.parindex_refuse(format('only an admin removes scores (%s is %s)', c.user_name, c.role));
                END IF;
                RETURN OLD;
            END IF;
            IF NEW.updated_by IS DISTINCT FROM c.user_name THEN
                PERFORM {q}.parindex_refuse(format('a score is saved under the token''s user %s, not %s',
                                               c.user_name, NEW.updated_by));
            END IF;
            IF c.role = 'admin' THEN
                RETURN NEW;
            END IF;
            IF TG_OP = 'UPDATE' AND (NEW.tenant_id, NEW.assessment_id, NEW.node_code)
                                    IS DISTINCT FROM (OLD.tenant_id, OLD.assessment_id, OLD.node_code) THEN
                PERFORM {q}.parindex_refuse('a score does not move to another sheet or node');
            END IF;
            SELECT x.unit_code, x.year, x.status, x.deadline INTO a FROM {q}.assessments x
            WHERE x.tenant_id = NEW.tenant_id AND x.id = NEW.assessment_id;
            open_self := a.status = 'draft' AND (a.deadline IS NULL OR now() <= a.deadline)
                         AND coalesce(c.unit_codes ? a.unit_code, false);
            n := to_jsonb(NEW);
            IF TG_OP = 'UPDATE' THEN
                o := to_jsonb(OLD);
            END IF;
            FOREACH f IN ARRAY self_f || resp_f || appr_f LOOP
                IF (TG_OP = 'INSERT' AND n -> f <> 'null'::jsonb) OR (TG_OP = 'UPDATE' AND n -> f IS DISTINCT FROM o -> f) THEN
                    CONTINUE WHEN c.role = 'editor' AND f = ANY (self_f) AND open_self;
                    CONTINUE WHEN c.role = 'editor' AND f = ANY (resp_f) AND a.status = 'submitted'
                                  AND coalesce(c.unit_codes ? a.unit_code, false);
                    CONTINUE WHEN c.role = 'appraiser' AND f = ANY (appr_f) AND a.status = 'submitted';
                    bad := bad || f;
                END IF;
            END LOOP;
            IF cardinality(bad) > 0 THEN
                PERFORM {q}.parindex_refuse(format('%s (%s) may not change %s of unit %s, %s (status %s)', c.user_name,
                                               c.role, array_to_string(bad, ', '), a.unit_code, a.year, a.status));
            END IF;
            RETURN NEW;
        END $$""",
        f"""CREATE FUNCTION {q}.parindex_guard_evidence() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            c record;
            a record;
            r record;
        BEGIN
            IF {q}.parindex_is_maintainer(TG_RELID) THEN
                RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
            END IF;
            SELECT * INTO c FROM {q}.parindex_claim();
            IF c.role IS NULL THEN
                PERFORM {q}.parindex_refuse(format('no valid access token opens tenant %s',
                    coalesce(nullif(current_setting('app.tenant_id', true), ''), '(none set)')));
            END IF;
            IF TG_OP = 'UPDATE' AND c.role <> 'admin' THEN
                PERFORM {q}.parindex_refuse(format('only an admin changes stored evidence (%s is %s)', c.user_name, c.role));
            END IF;
            IF TG_OP = 'INSERT' AND NEW.uploaded_by IS DISTINCT FROM c.user_name THEN
                PERFORM {q}.parindex_refuse(format('evidence is added under the token''s user %s, not %s',
                                               c.user_name, NEW.uploaded_by));
            END IF;
            IF c.role = 'admin' THEN
                RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
            END IF;
            IF TG_OP = 'DELETE' THEN
                r := OLD;
            ELSE
                r := NEW;
            END IF;
            SELECT x.unit_code, x.year, x.status, x.deadline INTO a FROM {q}.assessments x
            WHERE x.tenant_id = r.tenant_id AND x.id = r.assessment_id;
            IF c.role = 'editor' AND a.status = 'draft' AND (a.deadline IS NULL OR now() <= a.deadline)
               AND coalesce(c.unit_codes ? a.unit_code, false) THEN
                RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
            END IF;
            PERFORM {q}.parindex_refuse(format('%s (%s) may not change the evidence of unit %s, %s (status %s)',
                                           c.user_name, c.role, a.unit_code, a.year, a.status));
            RETURN NULL;
        END $$""",
        # The audit log: rows of the application role carry the current time; nobody changes a row.
        f"""CREATE FUNCTION {q}.parindex_guard_audit_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT {q}.parindex_is_maintainer(TG_RELID)
               AND (NEW.at IS NULL OR abs(extract(epoch FROM (NEW.at - now()))) > 300) THEN
                PERFORM {q}.parindex_refuse(format('an audit row carries the current time, not %s', NEW.at));
            END IF;
            RETURN NEW;
        END $$""",
        f"""CREATE FUNCTION {q}.parindex_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'parindex: audit_log is append-only: its rows are never changed or removed (%)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$""",
    ]


def _policies() -> list[str]:
    tenant = "(SELECT parindex_tenant())"
    out = []
    for t in TENANT_TABLES:
        out += [
            f"CREATE POLICY {t}_tenant ON {t} USING (tenant_id = {tenant}) WITH CHECK (tenant_id = {tenant})",
            f"CREATE POLICY {t}_maintenance ON {t} TO CURRENT_USER USING ({_MAINT.format(col='tenant_id')})",
        ]
    out += [
        # shared frameworks (tenant_id NULL) are read by every tenant and written only in maintenance
        "CREATE POLICY frameworks_shared_read ON frameworks FOR SELECT USING (tenant_id IS NULL)",
        f"CREATE POLICY frameworks_tenant ON frameworks USING (tenant_id = {tenant}) WITH CHECK (tenant_id = {tenant})",
        "CREATE POLICY frameworks_maintenance ON frameworks TO CURRENT_USER USING "
        f"(tenant_id IS NULL OR {_MAINT.format(col='tenant_id')})",
        # the audit log: read and appended to, under the token's user
        f"CREATE POLICY audit_log_read ON audit_log FOR SELECT USING (tenant_id = {tenant})",
        f"CREATE POLICY audit_log_append ON audit_log FOR INSERT WITH CHECK (tenant_id = {tenant} "
        "AND user_name = (SELECT parindex_token_user()))",
        "CREATE POLICY audit_log_maintenance ON audit_log TO CURRENT_USER USING "
        f"(tenant_id IS NULL OR {_MAINT.format(col='tenant_id')})",
        # tenants: a token sees the tenants it opens
        "CREATE POLICY tenants_member ON tenants FOR SELECT USING (code = ANY ((SELECT parindex_token_tenants())::varchar[]))",
        f"CREATE POLICY tenants_maintenance ON tenants TO CURRENT_USER USING ({_MAINT.format(col='code')})",
        # access tokens: the owner only (the security-definer functions run as the owner)
        "CREATE POLICY access_tokens_maintenance ON access_tokens TO CURRENT_USER USING (true)",
    ]
    return out


def _triggers() -> list[str]:
    out = [f"CREATE TRIGGER {t}_guard BEFORE INSERT OR UPDATE OR DELETE ON {t} "
           "FOR EACH ROW EXECUTE FUNCTION parindex_guard_admin_only()" for t in ADMIN_TABLES]
    out += [f"CREATE TRIGGER {t}_guard BEFORE INSERT OR UPDATE OR DELETE ON {t} "
            f"FOR EACH ROW EXECUTE FUNCTION parindex_guard_{t}()" for t in ("assessments", "scores", "evidence")]
    out += [
        "CREATE TRIGGER audit_log_insert_guard BEFORE INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION parindex_guard_audit_insert()",
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION parindex_audit_append_only()",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION parindex_audit_append_only()",
    ]
    return out


#: Every table under row-level security.
RLS_TABLES = ("tenants", *TENANT_TABLES, "frameworks", "audit_log", "access_tokens")
_FUNCTION_SIGNATURES = (
    "parindex_audit_append_only()", "parindex_guard_audit_insert()", "parindex_guard_evidence()",
    "parindex_guard_scores()", "parindex_guard_assessments()", "parindex_guard_admin_only()",
    "parindex_refuse(text)", "parindex_is_maintainer(oid)", "parindex_token_tenants()",
    "parindex_token_user()", "parindex_tenant()", "parindex_claim()", "parindex_token_claims()",
)


def upgrade() -> None:
    op.create_table(
        "access_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("unit_codes", sa.Text()),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("issued_by", sa.String(200), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_access_tokens"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.code"], name="fk_access_tokens_tenant_id_tenants"),
        sa.UniqueConstraint("token_sha256", "tenant_id", name="uq_access_tokens_token_sha256_tenant_id"),
        sa.CheckConstraint("role IN ('admin', 'appraiser', 'editor', 'analyst', 'researcher')",
                           name="ck_access_tokens_role"),
    )
    op.create_index("ix_access_tokens_user_name", "access_tokens", ["user_name"])
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for sql in _SQLITE_TRIGGERS:
            op.execute(sql)
        return
    if bind.dialect.name != "postgresql":
        return
    schema = bind.execute(sa.text("select current_schema()")).scalar_one()
    path = 'SET search_path = pg_catalog, "{}", pg_temp'.format(schema.replace('"', '""'))
    q = '"{}"'.format(schema.replace('"', '""'))
    for sql in _functions(path, q):
        op.execute(sa.text(sql))
    for t in RLS_TABLES:
        op.execute(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY")
    for sql in _policies() + _triggers():
        op.execute(sa.text(sql))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    elif bind.dialect.name == "postgresql":
        for t in (*ADMIN_TABLES, "assessments", "scores", "evidence"):
            op.execute(f"DROP TRIGGER IF EXISTS {t}_guard ON {t}")
        for name in ("audit_log_insert_guard", "audit_log_append_only", "audit_log_no_truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON audit_log")
        for t in RLS_TABLES:
            for (pol,) in bind.execute(sa.text("select policyname from pg_policies where tablename = :t "
                                               "and schemaname = current_schema()"), {"t": t}).all():
                op.execute(f'DROP POLICY "{pol}" ON {t}')
            op.execute(f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY")
            op.execute(f"ALTER TABLE {t} DISABLE ROW LEVEL SECURITY")
        for sig in _FUNCTION_SIGNATURES:
            op.execute(f"DROP FUNCTION IF EXISTS {sig}")
    op.drop_index("ix_access_tokens_user_name", table_name="access_tokens")
    op.drop_table("access_tokens")
