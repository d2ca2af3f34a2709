"""Two tenants and five roles through a real JupyterHub, in headless Chromium; the attacks are counted.

The apps under test are the Voilà notebooks in ``notebooks/`` (index,
results, self_assessment) rendered by each user's own server.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from hub_support import MARK, RUN_IN_KERNEL_JS, UNITS, USERS, open_app

pytestmark = pytest.mark.hub

STAFF = ("eve", "apo", "ann", "binh", "bao")
LAB = ("ana", "res")


def _other(tenant: str) -> str:
    return "B" if tenant == "A" else "A"


def _xsrf(visitor) -> dict[str, str]:
    for c in visitor.context.cookies():
        if c["name"] == "_xsrf" and c["path"].startswith(f"/user/{visitor.user}"):
            return {"X-XSRFToken": c["value"]}
    return {}


def test_staff_land_on_the_apps_and_see_only_their_tenant(hub, sign_in):
    for user in STAFF:
        v = sign_in(user)
        assert v.landed.endswith(f"/user/{user}/voila/render/index.ipynb"), v.landed
        tenant = USERS[user][0]
        text = open_app(hub, v, "index")
        assert f"Người dùng: {user}" in text and f"Tổ chức: {tenant}" in text, text[:400]
    for user in ("eve", "binh", "apo"):
        tenant = USERS[user][0]
        text = open_app(hub, sign_in(user), "results")
        assert MARK[tenant] in text, text[:600]
        assert MARK[_other(tenant)] not in text
        assert not any(code in text for code in UNITS[_other(tenant)])


def test_only_analysts_and_researchers_get_jupyterlab(hub, sign_in, attacks):
    for user in LAB:
        v = sign_in(user)
        assert v.landed.endswith(f"/user/{user}/lab"), v.landed
        assert v.page.request.get(f"{hub.base}/user/{user}/lab").status == 200
    for user in ("eve", "bao"):
        v = sign_in(user)
        for path in ("/lab", "/lab/tree/index.ipynb", "/tree", "/terminals/1", "/api/terminals"):
            r = v.page.request.get(f"{hub.base}/user/{user}{path}")
            attacks.record("staff server", f"{user} opens {path} on own server", r.status < 400, f"HTTP {r.status}")


def test_an_editor_cannot_open_another_units_sheet(hub, sign_in, attacks):
    v = sign_in("eve")
    text = open_app(hub, v, "self_assessment")
    assert UNITS["A"]["A01"] in text and UNITS["A"]["A02"] not in text and UNITS["A"]["A03"] not in text
    for query in ("?unit=A02", "?unit=A02&year=2024", "?unit=A03&role=admin", "?unit=B01&tenant=B"):
        text = open_app(hub, v, "self_assessment", query)
        leaked = UNITS["A"]["A02"] in text or UNITS["A"]["A03"] in text or MARK["B"] in text
        attacks.record("URL tampering", f"eve: self_assessment{query}", leaked, "sheet of another unit shown" if leaked
                       else "only A01 offered")


def test_url_parameters_never_change_who_or_where(hub, sign_in, attacks):
    cases = [("eve", "index", "?tenant=B"), ("eve", "index", "?user=bao&tenant=B"), ("binh", "index", "?user=ann"),
             ("eve", "results", "?tenant=B"), ("binh", "results", "?tenant=A&user=ann"),
             ("apo", "results", "?tenant=B&unit=B01")]
    for user, app, query in cases:
        tenant = USERS[user][0]
        text = open_app(hub, sign_in(user), app, query)
        if app == "index":
            leaked = f"Người dùng: {user}" not in text or f"Tổ chức: {tenant}" not in text
        else:
            leaked = MARK[_other(tenant)] in text
        attacks.record("URL tampering", f"{user}: {app}{query}", leaked,
                       "shown as another user or tenant" if leaked else f"still {user} in {tenant}")


def test_nobody_reads_another_users_server(hub, sign_in, attacks):
    for user in USERS:
        sign_in(user)  # every server runs: the attempts reach real servers
    eve, res = sign_in("eve"), sign_in("res")
    targets = [(eve, "/user/ann/voila/render/index.ipynb"), (eve, "/user/bao/voila/render/results.ipynb"),
               (eve, "/user/ana/api/contents"), (eve, "/user/res/lab"), (eve, "/user/binh/api/kernels"),
               (res, "/user/ana/api/contents/apps"), (res, "/user/bao/api/sessions"),
               (res, "/user/binh/voila/render/index.ipynb")]
    for v, path in targets:
        r = v.page.request.get(hub.base + path)
        owner = path.split("/")[2]
        reached = r.status == 200 and f"/user/{owner}/" in r.url
        attacks.record("another user's server", f"{v.user} GET {path}", reached, f"HTTP {r.status} at {r.url[-40:]}")
    hub_api = [(eve, "get", "/hub/api/users"), (eve, "get", "/hub/api/users/ann"), (eve, "get", "/hub/api/groups"),
               (eve, "post", "/hub/api/groups/tenant:A:admin/users"), (res, "post", "/hub/api/users/ana/server")]
    for v, method, path in hub_api:
        r = getattr(v.page.request, method)(hub.base + path, data=json.dumps({"users": [v.user]}),
                                            headers={"Content-Type": "application/json"})
        attacks.record("hub API", f"{v.user} {method.upper()} {path}", r.status < 300, f"HTTP {r.status}")
    me = eve.page.request.get(hub.base + "/hub/api/user").json()
    assert sorted(me["groups"]) == ["tenant:A:editor", "unit:A:A01"]


def test_staff_cannot_write_files_or_run_code(hub, sign_in, attacks):
    v = sign_in("eve")
    open_app(hub, v, "index")
    got = v.page.evaluate(RUN_IN_KERNEL_JS, {"base": "/user/eve/", "code": "print('PWNED', 6 * 7)", "timeoutMs": 8000})
    attacks.record("code execution", "eve sends execute_request to a kernel", got["replied"] or "PWNED" in got["out"],
                   f"reply={got['replied']} output={got['out']!r}")
    head = {"Content-Type": "application/json", **_xsrf(v)}
    nb = {"type": "notebook", "format": "json", "content": {
        "cells": [{"cell_type": "code", "source": "import os; os.system('id')", "metadata": {}, "outputs": [],
                   "execution_count": None}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}
    writes = [("put", "/user/eve/api/contents/evil.ipynb", nb), ("post", "/user/eve/api/contents", {"type": "notebook"}),
              ("patch", "/user/eve/api/contents/index.ipynb", {"path": "moved.ipynb"}),
              ("delete", "/user/eve/api/contents/index.ipynb", None),
              ("post", "/user/eve/api/terminals", {}),
              ("put", "/user/eve/api/config/notebook", {"load_extensions": {}})]
    for method, path, body in writes:
        kwargs = {"headers": head}
        if body is not None:
            kwargs["data"] = json.dumps(body)
        r = getattr(v.page.request, method)(hub.base + path, **kwargs)
        attacks.record("staff server", f"eve {method.upper()} {path}", r.status < 300, f"HTTP {r.status}")
    r = v.page.request.get(f"{hub.base}/user/eve/voila/render/evil.ipynb")
    attacks.record("staff server", "eve renders a notebook she tried to upload", r.status == 200, f"HTTP {r.status}")
    # the harness does run code where it is allowed: a researcher's JupyterLab kernel
    res = sign_in("res")
    ok = res.page.evaluate(RUN_IN_KERNEL_JS, {"base": "/user/res/", "code": "print('ran', 6 * 7)", "timeoutMs": 60000})
    assert ok["replied"] and "ran 42" in ok["out"], ok


_LAB_ATTACK = r'''
import json, os
import psycopg
from sqlalchemy.engine import make_url
url = make_url(os.environ["PARINDEX_DB"]).set(drivername="postgresql").render_as_string(hide_password=False)
token = os.environ["PARINDEX_DB_TOKEN"]
out = []

def sql(name, stmt, tenant=None, tok=None, extra=None):
    try:
        with psycopg.connect(url) as c:
            with c.transaction():
                if tenant is not None:
                    c.execute("select set_config('app.tenant_id', %s, true)", (tenant,))
                if tok is not None:
                    c.execute("select set_config('app.token', %s, true)", (tok,))
                for k, v in (extra or {}).items():
                    c.execute("select set_config(%s, %s, true)", (k, v))
                cur = c.execute(stmt)
                got = cur.fetchall() if cur.description else cur.rowcount
        out.append([name, "ok", got])
    except Exception as e:
        out.append([name, "refused", type(e).__name__ + ": " + str(e).splitlines()[0]])

def lib(name, fn):
    try:
        out.append([name, "ok", repr(fn())[:200]])
    except Exception as e:
        out.append([name, "refused", type(e).__name__ + ": " + str(e).splitlines()[0]])

sql("read A's scores, tenant A set, own token", "select count(*) from scores", "A", token)
sql("read A's units by tenant_id, tenant A set", "select count(*) from units where tenant_id = 'A'", "A", token)
sql("read scores with no tenant and no token", "select count(*) from scores")
sql("read scores with no tenant, own token", "select count(*) from scores", None, token)
sql("read A's scores with a forged token", "select count(*) from scores", "A", "x" * 43)
sql("read with app.all_tenants on", "select count(*) from scores", "A", token, {"app.all_tenants": "on"})
sql("list every tenant", "select count(*) from tenants where code <> 'B'", None, token)
sql("read the access tokens", "select count(*) from access_tokens", "B", token)
sql("researcher updates B's scores", "update scores set self_score = 0, updated_by = 'res'", "B", token)
sql("researcher inserts a unit into A", "insert into units(tenant_id, code, name, kind, version) values ('A', 'Z9', 'z', 'commune', 1)", "A", token)
sql("researcher makes herself admin", "update memberships set role = 'admin' where user_name = 'res'", "B", token)
sql("rewrite the audit log", "update audit_log set reason = 'x'", "B", token)
sql("erase the audit log", "delete from audit_log", "B", token)
sql("forge an audit row as bao", "insert into audit_log(tenant_id, user_name, at, table_name, row_key, action, version) values ('B', 'bao', now(), 'scores', 'x', 'update', 1)", "B", token)
sql("turn row-level security off", "alter table scores no force row level security", "B", token)
def save_fn(tenant, user, rows):
    """Score ids and versions (``rows``: a FROM item with columns i, v) through the save function of revision 0004."""
    return (f"select count(*) from {rows}, "
            f"lateral parindex_update_score('{tenant}', '{token}', '{user}', i, v, now(), array['self_score'], 0, "
            "null, null, null, null, null, null, null, null, null, 'x', 'attack', array['self_score'], array['1'], "
            "array['0']) ok where ok")

every_id = "generate_series(1, 3000) i, generate_series(1, 3) v"   # A's ids cannot be read: try them all
b_rows = "(select id as i, version as v from scores limit 40) s"     # B's she reads (tenant B set below)
sql("read A's sheet through the save context function",
    f"select count(*) from parindex_score_context('A', '{token}', 'ann', 'A01', 2024, '1.2')")
sql("update A's scores through the save function", save_fn("A", "res", every_id))
sql("researcher updates B's scores through the save function", save_fn("B", "res", b_rows), "B", token)
sql("save function under B's admin's name", save_fn("B", "bao", b_rows), "B", token)
with psycopg.connect(url) as c:
    owner_role = c.execute("select tableowner from pg_tables where tablename = 'scores'").fetchone()[0]
sql("become the schema owner", f'set role "{owner_role}"')

from parindex_lib.store import Store
from parindex_lib.identity import current_identity
who = current_identity()
out.append(["identity", "info", [who.user, who.tenant, who.role, who.source]])
store = Store()
lib("library: session of tenant A", lambda: store.session(tenant="A", user="res").units())
lib("library: session of tenant A as its admin", lambda: store.session(tenant="A", user="ann").units())
lib("library: B's session writes a score", lambda: store.session(tenant="B", user="res").save_score("B01", 2024, "1.1.1", expected_version=1, self_score=0))
lib("library: B's session as admin adds a unit", lambda: store.session(tenant="B", user="bao").upsert_units(__import__("pandas").DataFrame({"code": ["Z9"], "name": ["z"], "kind": ["commune"]})))
lib("library: read A's unit through B's session", lambda: store.session(tenant="B", user="res").assessment("A01", 2024))
print("RESULT" + json.dumps(out, default=str))
'''

#: What would count as the attack succeeding, per attempt name (the result: "ok"/"refused", and the rows or message).
_BREACH = {
    "read A's scores, tenant A set, own token": lambda st, got: st == "ok" and got[0][0] > 0,
    "read A's units by tenant_id, tenant A set": lambda st, got: st == "ok" and got[0][0] > 0,
    "read scores with no tenant and no token": lambda st, got: st == "ok" and got[0][0] > 0,
    "read scores with no tenant, own token": lambda st, got: st == "ok" and got[0][0] > 0,
    "read A's scores with a forged token": lambda st, got: st == "ok" and got[0][0] > 0,
    "read with app.all_tenants on": lambda st, got: st == "ok" and got[0][0] > 0,
    "list every tenant": lambda st, got: st == "ok" and got[0][0] > 0,
    "read the access tokens": lambda st, got: st == "ok",
    "researcher updates B's scores": lambda st, got: st == "ok" and got > 0,
    "researcher inserts a unit into A": lambda st, got: st == "ok",
    "researcher makes herself admin": lambda st, got: st == "ok" and got > 0,
    "rewrite the audit log": lambda st, got: st == "ok" and got > 0,
    "erase the audit log": lambda st, got: st == "ok" and got > 0,
    "forge an audit row as bao": lambda st, got: st == "ok",
    "turn row-level security off": lambda st, got: st == "ok",
    "read A's sheet through the save context function": lambda st, got: st == "ok" and got[0][0] > 0,
    "update A's scores through the save function": lambda st, got: st == "ok" and got[0][0] > 0,
    "researcher updates B's scores through the save function": lambda st, got: st == "ok" and got[0][0] > 0,
    "save function under B's admin's name": lambda st, got: st == "ok" and got[0][0] > 0,
    "become the schema owner": lambda st, got: st == "ok",
    "library: session of tenant A": lambda st, got: st == "ok",
    "library: session of tenant A as its admin": lambda st, got: st == "ok",
    "library: B's session writes a score": lambda st, got: st == "ok",
    "library: B's session as admin adds a unit": lambda st, got: st == "ok",
    "library: read A's unit through B's session": lambda st, got: st == "ok",
}


def test_raw_sql_and_library_calls_from_a_jupyterlab_kernel(hub, sign_in, attacks):
    """A researcher of tenant B runs code in her own JupyterLab kernel: her server's credentials open only B, read-only."""
    v = sign_in("res")
    got = v.page.evaluate(RUN_IN_KERNEL_JS, {"base": "/user/res/", "code": textwrap.dedent(_LAB_ATTACK),
                                             "timeoutMs": 90000})
    assert got["replied"], got
    line = next((ln for ln in got["out"].splitlines() if ln.startswith("RESULT")), None)
    assert line is not None, got["out"][-2000:]
    results = json.loads(line[len("RESULT"):])
    identity = next(r for r in results if r[0] == "identity")
    assert identity[2] == ["res", "B", "researcher", "jupyterhub"]
    seen = set()
    for name, status, detail in results:
        if name == "identity":
            continue
        seen.add(name)
        category = "library, other tenant" if name.startswith("library") else "raw SQL as app role"
        attacks.record(category, f"res: {name}", _BREACH[name](status, detail), f"{status}: {detail}")
    assert seen == set(_BREACH)


def test_forged_values_through_the_library_path_of_the_apps(hub, attacks):
    """What a browser could send past the widgets (any unit, field, value) reaches TenantSession as eve's server does."""
    import pandas as pd

    from parindex_lib.errors import ParindexError
    from parindex_lib.store import Store

    owner = Store(hub.owner_url)
    token = owner.issue_access_token("eve", ttl_seconds=600, by="test")  # as the spawner does for eve's server
    owner.dispose()
    store = Store(hub.app_url, token=token)
    try:
        with store.session(tenant="A", user="eve") as s:
            v = int(s.scores(unit_codes="A01").iloc[0]["version"])
            node = str(s.scores(unit_codes="A01").iloc[0]["node_code"])
            a02 = s.scores(unit_codes="A02").iloc[0]
        tries = [
            ("self score of another unit (A02)", lambda s: s.save_score("A02", 2024, str(a02["node_code"]),
                                                                          expected_version=int(a02["version"]),
                                                                          self_score=0)),
            ("appraised score of her own unit", lambda s: s.save_score("A01", 2024, node, expected_version=v,
                                                                         appraised_score=0)),
            ("bonus points", lambda s: s.save_score("A01", 2024, node, expected_version=v, bonus=5)),
            ("a value over the maximum", lambda s: s.save_score("A01", 2024, node, expected_version=v, self_score=999)),
            ("a negative value", lambda s: s.save_score("A01", 2024, node, expected_version=v, self_score=-1)),
            ("text as a score", lambda s: s.save_score("A01", 2024, node, expected_version=v,
                                                          self_score="<img src=x onerror=alert(1)>")),
            ("submit another unit's sheet", lambda s: s.set_status("A02", 2024, "appraised")),
            ("a unit code of tenant B", lambda s: s.save_score("B01", 2024, node, expected_version=1, self_score=0)),
            ("a score table with another unit", lambda s: s.write_scores(pd.DataFrame(
                {"unit_code": ["A03"], "year": [2024], "node_code": [node], "self_score": [0]}), source="forged.xlsx")),
            ("a new unit", lambda s: s.upsert_units(pd.DataFrame({"code": ["A09"], "name": ["x"], "kind": ["commune"]}))),
        ]
        for what, fn in tries:
            with store.session(tenant="A", user="eve") as s:
                try:
                    fn(s)
                    attacks.record("forged widget values", f"eve: {what}", True, "accepted")
                except ParindexError as exc:
                    attacks.record("forged widget values", f"eve: {what}", False,
                                   f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        for what, tenant, user in (("a session of tenant B", "B", "eve"), ("a session as tenant A's admin", "A", "ann")):
            try:
                with store.session(tenant=tenant, user=user) as s:
                    s.upsert_units(pd.DataFrame({"code": ["A09"], "name": ["x"], "kind": ["commune"]}))
                attacks.record("library, other tenant", f"eve's server: {what}", True, "accepted")
            except ParindexError as exc:
                attacks.record("library, other tenant", f"eve's server: {what}", False,
                               f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    finally:
        store.dispose()


def test_zy_memory_of_servers_and_kernels(hub, sign_in):
    """Resident memory of each user's server and kernels, for the sizing note (deploy/kubernetes/README.md)."""
    import psutil

    from hub_support import ARTIFACTS

    def mb(p):
        try:
            info = p.memory_full_info()
            return round(info.rss / 2**20, 1), round(info.uss / 2**20, 1)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return (0.0, 0.0)

    hub_rss = sum(mb(p)[0] for p in [psutil.Process(hub.proc.pid), *psutil.Process(hub.proc.pid).children(True)]
                  if "singleuser" not in " ".join(p.cmdline()) and "ipykernel" not in " ".join(p.cmdline()))
    servers = {}
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "jupyterhub-singleuser" not in cmd:
            continue
        try:
            user = p.environ().get("JUPYTERHUB_USER")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if user not in USERS:
            continue
        kernels = [k for k in p.children(recursive=True) if "ipykernel" in " ".join(k.cmdline())]
        servers[user] = {"kind": "lab" if USERS[user][1] in ("analyst", "researcher") else "voila",
                         "server_rss_mb": mb(p)[0], "server_uss_mb": mb(p)[1],
                         "kernels_rss_mb": [mb(k)[0] for k in kernels], "kernels_uss_mb": [mb(k)[1] for k in kernels]}
    report = {"hub_and_proxy_rss_mb": round(hub_rss, 1), "servers": servers}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "memory.json").write_text(json.dumps(report, indent=1))
    print("\n" + json.dumps(report, indent=1))
    assert servers, "no user server found"


def test_zz_attack_report(attacks):
    print("\n" + attacks.table())
    assert attacks.attempts >= 30, attacks.attempts
    assert not attacks.successes, attacks.successes
