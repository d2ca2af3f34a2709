"""Who the user is: hub groups, the hub API (a real HTTP server standing in for it), standalone."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from parindex_lib.errors import AccessDenied, ParindexError
from parindex_lib.identity import (Membership, current_identity, memberships_from_groups, server_kind, tenant_group,
                                   unit_group)
from parindex_lib.store import Store


class FakeHub:
    """``GET /hub/api/user``: answers for one token, as JupyterHub does."""

    def __init__(self, users: dict[str, dict]):
        self.users = users
        self.seen: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hub.seen.append(self.headers.get("Authorization", ""))
                token = self.headers.get("Authorization", "").removeprefix("token ")
                model = hub.users.get(token)
                if self.path != "/hub/api/user" or model is None:
                    self.send_response(403)
                    self.end_headers()
                    return
                body = json.dumps(model).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hub/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def env(self, user: str, token: str, **extra: str) -> dict[str, str]:
        return {"JUPYTERHUB_USER": user, "JUPYTERHUB_API_URL": self.url, "JUPYTERHUB_API_TOKEN": token, **extra}

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def hub():
    h = FakeHub({
        "t-eve": {"name": "eve", "groups": ["tenant:A:editor", "unit:A:A01", "unit:A:A03", "tenant:B:analyst"]},
        "t-ann": {"name": "ann", "groups": ["tenant:A:admin", "staff"]},
        "t-nobody": {"name": "nobody", "groups": ["staff"]},
        "t-nogroups": {"name": "ann"},
        "t-twice": {"name": "tom", "groups": ["tenant:A:editor", "tenant:A:admin", "tenant:B:researcher"]},
    })
    yield h
    h.close()


def test_groups_scheme():
    assert tenant_group("hn", "editor") == "tenant:hn:editor" and unit_group("hn", "X001") == "unit:hn:X001"
    with pytest.raises(ValueError):
        tenant_group("hn", "boss")
    ms, problems = memberships_from_groups([
        "tenant:A:editor", "unit:A:X2", "unit:A:X1", "tenant:B:admin", "unit:B:Z", "tenant:C:boss", "unit:D:Q",
        "tenant:E:admin", "tenant:E:analyst", "unit:bad", "other"])
    assert ms == {"A": Membership("A", "editor", ("X1", "X2")), "B": Membership("B", "admin", None)}
    assert len(problems) == 5 and any("several roles" in p for p in problems)
    assert any("unit groups without" in p for p in problems) and any("'tenant:C:boss'" in p for p in problems)
    assert server_kind(ms) == "voila"
    assert server_kind({**ms, "F": Membership("F", "researcher")}) == "lab"


def test_identity_from_the_hub(hub):
    who = current_identity(hub.env("eve", "t-eve"))
    assert (who.user, who.tenant, who.role, who.unit_codes, who.source) == ("eve", "A", "editor", ("A01", "A03"),
                                                                             "jupyterhub")
    assert who.tenants == ["A", "B"] and hub.seen[-1] == "token t-eve"
    other = who.with_tenant("B")
    assert (other.tenant, other.role, other.unit_codes) == ("B", "analyst", None)
    # the spawner's choice of tenant is used when it is one of the user's
    assert current_identity(hub.env("eve", "t-eve", PARINDEX_TENANT="B")).role == "analyst"
    # ... and ignored when it is not; PARINDEX_USER never overrides the hub's user
    forged = current_identity(hub.env("eve", "t-eve", PARINDEX_TENANT="C", PARINDEX_USER="ann"))
    assert (forged.user, forged.tenant) == ("eve", "A")
    for bad in ("C", "", "A:admin"):
        with pytest.raises(AccessDenied, match="not a member"):
            who.with_tenant(bad)
        with pytest.raises(AccessDenied):
            current_identity(hub.env("eve", "t-eve"), tenant=bad)
    twice = current_identity(hub.env("tom", "t-twice"))
    assert twice.tenants == ["B"] and twice.role == "researcher" and twice.problems


def test_identity_refusals(hub):
    with pytest.raises(AccessDenied, match="belongs to 'ann', not 'eve'"):
        current_identity(hub.env("eve", "t-ann"))  # a server whose user env was tampered with
    with pytest.raises(AccessDenied, match="in no tenant"):
        current_identity(hub.env("nobody", "t-nobody"))
    with pytest.raises(AccessDenied, match="read:users:groups"):
        current_identity(hub.env("ann", "t-nogroups"))
    with pytest.raises(ParindexError, match="HTTP 403"):
        current_identity(hub.env("eve", "stolen"))
    with pytest.raises(ParindexError, match="cannot be reached"):
        current_identity({"JUPYTERHUB_USER": "eve", "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",
                          "JUPYTERHUB_API_TOKEN": "x"})


def test_standalone_identity():
    who = current_identity({})
    assert (who.user, who.tenant, who.role, who.source, who.tenants) == ("demo", "demo", None, "environment", ["demo"])
    who = current_identity({"PARINDEX_USER": "lan", "PARINDEX_TENANT": "hn", "QUERY_STRING": "tenant=B&user=x"})
    assert (who.user, who.tenant) == ("lan", "hn")


def test_session_checks_the_store_agrees_with_the_hub(hub, sqlite_url, small_framework):
    store = Store(sqlite_url)
    try:
        store.create_tenant("A", "A", "ann")
        with store.session(tenant="A", user="ann") as s:
            s.upsert_units(pd.DataFrame({"code": ["A01", "A03"], "name": ["a", "c"], "kind": ["commune"] * 2}))
        who = current_identity(hub.env("eve", "t-eve"))
        with pytest.raises(AccessDenied, match="not a member"):
            who.session(store)
        store.sync_memberships("eve", {"A": ("editor", ["A01"])})
        with pytest.raises(AccessDenied, match="the hub makes 'eve' editor of units A01, A03 .* the store says editor "
                                               "of units A01"):
            who.session(store)
        store.sync_memberships("eve", {m.tenant: (m.role, m.unit_codes) for m in who.memberships.values()})
        with who.session(store) as s:
            assert (s.role, s.unit_codes) == ("editor", ["A01", "A03"])
        standalone = current_identity({"PARINDEX_USER": "ann", "PARINDEX_TENANT": "A"})
        with standalone.session(store) as s:
            assert s.role == "admin"
    finally:
        store.dispose()
