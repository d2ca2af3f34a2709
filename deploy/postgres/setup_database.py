#!/usr/bin/env python3
"""Create the parindex database, its owner role and its application role on a PostgreSQL server.

Run once by the database administrator (a superuser, or a role with
CREATEROLE and CREATEDB), then after each parindex upgrade with
``--upgrade-only`` (as the owner):

    .venv/bin/python deploy/postgres/setup_database.py \\
        --admin-url postgresql://postgres@db.example.vn/postgres \\
        --database parindex --owner parindex --app parindex_app

Two roles:

``parindex`` (owner)
    Owns the schema: runs the migrations and the maintenance commands
    (creating tenants, loading shared frameworks, importing tenants, issuing
    access tokens for the hub). Its URL goes to the hub and to operators
    only, never into a user's server.
``parindex_app`` (application)
    Owns nothing; NOINHERIT, no CREATEDB, no CREATEROLE, no BYPASSRLS. Gets
    exactly what :meth:`parindex_lib.store.Store.grant_application_role`
    grants. Every user server connects with it, together with an access
    token of its user, which opens that user's tenants and nothing else.

Passwords come from ``PARINDEX_OWNER_PASSWORD`` and ``PARINDEX_APP_PASSWORD``;
when unset, random ones are generated and printed once. Servers with
``trust`` authentication on loopback (the tests) need none: pass
``--no-passwords``.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from parindex_lib.store import Store  # noqa: E402

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_roles_and_database(admin_url: str, database: str, owner: str, app: str, *,
                              owner_password: str | None = None, app_password: str | None = None) -> tuple[str, str]:
    """Create the two roles (if absent) and the database owned by ``owner``.

    Returns
    -------
    tuple of str
        The owner's and the application's SQLAlchemy URLs (with passwords).
    """
    for name in (database, owner, app):
        if not _NAME.match(name):
            raise SystemExit(f"{name!r}: use lower-case letters, digits and '_'")
    with psycopg.connect(_conninfo(admin_url), autocommit=True) as conn:
        for role, password, extra in ((owner, owner_password, ""),
                                      (app, app_password, " NOINHERIT NOCREATEDB NOCREATEROLE NOBYPASSRLS")):
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            stmt = sql.SQL(f"{verb} ROLE {{}} LOGIN{extra}").format(sql.Identifier(role))
            if password:
                stmt = stmt + sql.SQL(" PASSWORD {}").format(sql.Literal(password))
            conn.execute(stmt)
        if not conn.execute("select 1 from pg_database where datname = %s", (database,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0").format(
                sql.Identifier(database), sql.Identifier(owner)))
    base = make_url(admin_url).set(database=database)
    owner_url = base.set(username=owner, password=owner_password)
    app_url = base.set(username=app, password=app_password)
    return (owner_url.render_as_string(hide_password=False), app_url.render_as_string(hide_password=False))


def drop_roles_and_database(admin_url: str, database: str, owner: str, app: str) -> None:
    """Drop the database (closing its connections) and the two roles: the inverse of :func:`create_roles_and_database`.

    For throwaway databases (the test suite, the benchmarks); absent ones are skipped.
    """
    for name in (database, owner, app):
        if not _NAME.match(name):
            raise SystemExit(f"{name!r}: use lower-case letters, digits and '_'")
    with psycopg.connect(_conninfo(admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        for role in (app, owner):
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def migrate_and_grant(owner_url: str, app: str) -> list[str]:
    """As the owner: close the public schema to others, migrate to the newest schema, grant the application role.

    Returns
    -------
    list of str
        The GRANT and REVOKE statements run for the application role.
    """
    with psycopg.connect(_conninfo(owner_url), autocommit=True) as conn:
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        # no temporary tables either: nothing of the application's can shadow a table of the schema
        db = conn.execute("select current_database()").fetchone()[0]
        conn.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(sql.Identifier(db)))
    store = Store(owner_url)  # runs the migrations (revision 0002 sets up row-level security)
    try:
        return store.grant_application_role(app)
    finally:
        store.dispose()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--admin-url", help="URL of a role that may create roles and databases (not needed with "
                                       "--upgrade-only)")
    p.add_argument("--database", default="parindex")
    p.add_argument("--owner", default="parindex")
    p.add_argument("--app", default="parindex_app")
    p.add_argument("--owner-url", help="with --upgrade-only: the owner's URL")
    p.add_argument("--upgrade-only", action="store_true", help="only migrate and grant again (as the owner)")
    p.add_argument("--no-passwords", action="store_true", help="create the roles without passwords (trust auth)")
    args = p.parse_args(argv)
    if args.upgrade_only:
        if not args.owner_url:
            p.error("--upgrade-only needs --owner-url")
        for stmt in migrate_and_grant(args.owner_url, args.app):
            print(stmt)
        return 0
    if not args.admin_url:
        p.error("--admin-url is required")
    generated = {}
    passwords = {}
    for who, env in (("owner", "PARINDEX_OWNER_PASSWORD"), ("app", "PARINDEX_APP_PASSWORD")):
        value = None if args.no_passwords else os.environ.get(env)
        if value is None and not args.no_passwords:
            value = generated[who] = secrets.token_urlsafe(24)
        passwords[who] = value
    owner_url, app_url = create_roles_and_database(args.admin_url, args.database, args.owner, args.app,
                                                   owner_password=passwords["owner"], app_password=passwords["app"])
    for stmt in migrate_and_grant(owner_url, args.app):
        print(stmt)
    hide = lambda u: make_url(u).render_as_string(hide_password=True)  # noqa: E731
    print(f"\nowner (hub and operators only):   {hide(owner_url)}")
    print(f"application (user servers):       {hide(app_url)}")
    for who, value in generated.items():
        print(f"generated {who} password (store it now, it is not kept): {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
