"""A PostgreSQL database set up as in production, for the tests that need the real roles.

:func:`deployment` runs ``deploy/postgres/setup_database.py`` (the script the
deployment guide tells the database administrator to run) against the test
session's PostgreSQL server: a database owned by an owner role that ran the
migrations, and an application role that owns nothing. Role names carry a
random suffix (roles are shared by every database of a server); everything
is dropped at the end.

:func:`two_tenants` fills it with two tenants and members of every role.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
PDF = b"%PDF-1.4\n%%EOF\n"


def small_framework():
    """The suite's small framework (``SMALL_FRAMEWORK_YAML`` of tests/conftest.py), for module-scoped fixtures."""
    from parindex_lib.framework import read_framework_yaml

    spec = importlib.util.spec_from_file_location("parindex_tests_conftest", Path(__file__).parent / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return read_framework_yaml(module.SMALL_FRAMEWORK_YAML, "small_test.yaml")


def setup_module_of_deploy():
    """``deploy/postgres/setup_database.py``, imported from its path."""
    path = ROOT / "deploy" / "postgres" / "setup_database.py"
    spec = importlib.util.spec_from_file_location("parindex_setup_database", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Deployment:
    admin_url: str
    database: str
    owner: str
    app: str
    owner_url: str
    app_url: str

    def conninfo(self, who: str = "app") -> str:
        from sqlalchemy.engine import make_url

        url = {"app": self.app_url, "owner": self.owner_url}[who]
        return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def deployment(admin_url: str, prefix: str = "pi") -> Iterator[Deployment]:
    """A fresh database with an owner and an application role (dropped afterwards)."""
    setup = setup_module_of_deploy()
    suffix = uuid.uuid4().hex[:10]
    db, owner, app = f"{prefix}_db_{suffix}", f"{prefix}_owner_{suffix}", f"{prefix}_app_{suffix}"
    owner_url, app_url = setup.create_roles_and_database(admin_url, db, owner, app)
    try:
        setup.migrate_and_grant(owner_url, app)
        yield Deployment(admin_url, db, owner, app, owner_url, app_url)
    finally:
        setup.drop_roles_and_database(admin_url, db, owner, app)


@contextmanager
def seeded_deployment(admin_url: str, framework, prefix: str = "pi") -> Iterator[tuple[Deployment, dict[str, str]]]:
    """A fresh deployment holding :func:`two_tenants`, and an access token for each of :data:`MEMBERS`."""
    from parindex_lib.store import Store

    with deployment(admin_url, prefix=prefix) as d:
        owner = Store(d.owner_url)
        try:
            two_tenants(owner, framework)
            tokens = {u: owner.issue_access_token(u, by="test") for u in MEMBERS}
        finally:
            owner.dispose()
        yield d, tokens


#: Members of the two tenants: user -> (tenant, role, units).
MEMBERS = {
    "ann": ("A", "admin", None),
    "eve": ("A", "editor", ["A01"]),
    "apo": ("A", "appraiser", None),
    "ana": ("A", "analyst", None),
    "res": ("A", "researcher", None),
    "bao": ("B", "admin", None),
    "binh": ("B", "editor", ["B01"]),
}


def two_tenants(store, framework, year: int = 2024) -> None:
    """Tenants A and B with units, a draft and a submitted assessment each, scores and evidence.

    A: units A01 (draft), A02 (submitted); B: units B01 (draft), B02 (submitted).
    Members: :data:`MEMBERS`. Written as the owner (maintenance) or any store.
    """
    store.add_shared_framework(framework)
    for tenant, admin in (("A", "ann"), ("B", "bao")):
        store.create_tenant(tenant, f"Sở Nội vụ tỉnh {tenant}", admin_user=admin)
        with store.session(tenant=tenant, user=admin) as s:
            s.upsert_units(pd.DataFrame({"code": [f"{tenant}01", f"{tenant}02"],
                                         "name": [f"Sở Tư pháp {tenant}", f"Sở Y tế {tenant}"],
                                         "kind": ["department", "department"]}))
            for user, (t, role, units) in MEMBERS.items():
                if t == tenant and user != admin:
                    s.set_member(user, role, unit_codes=units)
            s.write_scores(pd.DataFrame({
                "unit_code": [f"{tenant}01", f"{tenant}01", f"{tenant}02", f"{tenant}02"],
                "year": [year] * 4, "node_code": ["1.2", "2.2", "1.2", "2.2"],
                "self_score": [4, 1, 3, 2], "explanation": ["x", "y", "z", "w"]}),
                source="seed.csv", framework_id=framework.id)
            s.add_evidence(f"{tenant}01", year, "1.2", name="bc.pdf", content=PDF)
            s.set_status(f"{tenant}02", year, "submitted", reason="seed")
