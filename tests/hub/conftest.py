"""A real JupyterHub, a real PostgreSQL and a real Chromium for the deployment tests.

One hub per test session, started the way the deployment guide starts it
(``deploy/hub/start`` with ``deploy/jupyterhub_config.py``), on free loopback
ports, with configurable-http-proxy (npm) and the simple local spawner. The
store is a PostgreSQL database set up by ``deploy/postgres/setup_database.py``
(owner and application roles) on the session's server; the user servers get
only the application role and a token. Test users sign in with a shared
password (``SharedPasswordAuthenticator``), the production default being
NativeAuthenticator.

Two tenants: A (An Khê: admin ann, editor eve of unit A01, appraiser apo,
analyst ana) and B (Bắc Hà: admin bao, editor binh of unit B01, researcher
res).

Every attack the tests try is recorded in :class:`AttackLog` (fixture
``attacks``); the table is printed at the end of the session.

Without configurable-http-proxy or Chromium the tests are skipped, except
under ``CI=true`` where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))  # tests/: pg_deployment

from pg_deployment import deployment  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "matkhau-thu-nghiem-2026"
YEAR = 2024
#: user -> (tenant, role, editor's units)
USERS = {
    "ann": ("A", "admin", None), "eve": ("A", "editor", ["A01"]), "apo": ("A", "appraiser", None),
    "ana": ("A", "analyst", None),
    "bao": ("B", "admin", None), "binh": ("B", "editor", ["B01"]), "res": ("B", "researcher", None),
}
UNITS = {
    "A": {"A01": "Sở Tư pháp An Khê", "A02": "Sở Y tế An Khê", "A03": "Sở Nội vụ An Khê"},
    "B": {"B01": "Sở Tư pháp Bắc Hà", "B02": "Sở Y tế Bắc Hà"},
}
#: A word every unit name of the tenant carries, and no other tenant's.
MARK = {"A": "An Khê", "B": "Bắc Hà"}
APP_TIMEOUT_MS = 120_000
ARTIFACTS = ROOT / "tests" / "artifacts" / "hub"


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: the hub tests must run)", pytrace=False)
    pytest.skip(what)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the attack report ----------------------------------------------------------------------------

@dataclass
class AttackLog:
    """Every attack tried: category, what, whether it succeeded, what happened."""

    rows: list[tuple[str, str, bool, str]] = field(default_factory=list)

    def record(self, category: str, what: str, succeeded: bool, detail: str = "") -> bool:
        self.rows.append((category, what, bool(succeeded), " ".join(str(detail).split())[:110]))
        return bool(succeeded)

    @property
    def attempts(self) -> int:
        return len(self.rows)

    @property
    def successes(self) -> list[tuple[str, str, bool, str]]:
        return [r for r in self.rows if r[2]]

    def table(self) -> str:
        lines = [f"{'category':<24} {'attempt':<64} {'result':<9} detail", "-" * 130]
        for cat, what, ok, detail in self.rows:
            lines.append(f"{cat:<24} {what[:64]:<64} {'SUCCEEDED' if ok else 'refused':<9} {detail}")
        by_cat: dict[str, list[int]] = {}
        for cat, _, ok, _ in self.rows:
            by_cat.setdefault(cat, [0, 0])
            by_cat[cat][0] += 1
            by_cat[cat][1] += ok
        lines.append("-" * 130)
        for cat, (n, ok) in by_cat.items():
            lines.append(f"{cat:<24} {n:>3} attempts, {ok} succeeded")
        lines.append(f"{'total':<24} {self.attempts:>3} attempts, {len(self.successes)} succeeded")
        return "\n".join(lines)


_LOG = AttackLog()


@pytest.fixture(scope="session")
def attacks() -> AttackLog:
    return _LOG


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    if _LOG.rows:
        terminalreporter.write_sep("=", "parindex attack report (tests/hub)")
        terminalreporter.write_line(_LOG.table())


# -- the hub --------------------------------------------------------------------------------------

@dataclass
class Hub:
    base: str
    proc: subprocess.Popen
    root: Path
    owner_url: str
    app_url: str
    app_role: str
    log_path: Path

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the hub stops the proxy and the servers it started
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the hub's own process group, started below
                self.proc.wait(10)


def seed(owner_url: str) -> None:
    """Tenants A and B on the demo framework, with scores for every unit (as the schema owner)."""
    import pandas as pd

    from parindex_lib.framework import load_framework
    from parindex_lib.store import Store
    from widgets.testing import self_scores

    fw = load_framework("demo_department_2024")
    store = Store(owner_url)
    try:
        store.add_shared_framework(fw)
        for tenant, units in UNITS.items():
            admin = next(u for u, (t, r, _) in USERS.items() if t == tenant and r == "admin")
            store.create_tenant(tenant, f"Tỉnh {MARK[tenant]} (thử nghiệm)", admin_user=admin)
            with store.session(tenant=tenant, user=admin) as s:
                s.upsert_units(pd.DataFrame({"code": list(units), "name": list(units.values()),
                                             "kind": ["department"] * len(units)}))
                for i, code in enumerate(units):
                    s.write_scores(self_scores(fw, code, YEAR, 0.5 + 0.15 * i), framework_id=fw.id, source="seed")
                for code in list(units)[1:]:
                    s.set_status(code, YEAR, "submitted", reason="seed")
    finally:
        store.dispose()


def hub_groups() -> dict:
    groups: dict[str, dict] = {}
    for user, (tenant, role, units) in USERS.items():
        groups.setdefault(f"tenant:{tenant}:{role}", {"users": []})["users"].append(user)
        for u in units or []:
            groups.setdefault(f"unit:{tenant}:{u}", {"users": []})["users"].append(user)
    return groups


@pytest.fixture(scope="session")
def hub(pg_server):
    if shutil.which("configurable-http-proxy") is None:
        _missing("configurable-http-proxy is missing (npm install -g configurable-http-proxy)")
    with deployment(pg_server, prefix="hub") as dep:
        seed(dep.owner_url)
        root = Path(tempfile.mkdtemp(prefix="parindex-hub-"))
        (root / "groups.json").write_text(json.dumps(hub_groups()), encoding="utf-8")
        port = _free_port()
        env = dict(os.environ)
        for name in ("PARINDEX_DB_TOKEN", "PARINDEX_TENANT", "PARINDEX_USER", "JUPYTERHUB_API_TOKEN"):
            env.pop(name, None)
        env.update({
            "PARINDEX_DB": dep.app_url, "PARINDEX_ADMIN_DB": dep.owner_url,
            "PARINDEX_HUB_PORT": str(port), "PARINDEX_HUB_API_PORT": str(_free_port()),
            "PARINDEX_PROXY_API_PORT": str(_free_port()), "PARINDEX_HUB_STATE": str(root / "state"),
            "PARINDEX_HUB_AUTH": "shared", "PARINDEX_HUB_SHARED_PASSWORD": PASSWORD,
            "PARINDEX_HUB_ALLOWED_USERS": ",".join(USERS), "PARINDEX_HUB_GROUPS": str(root / "groups.json"),
            "PARINDEX_HUB_ADMINS": "hubadmin", "PYTHONUNBUFFERED": "1",
        })
        for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                          ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
            (root / sub).mkdir()
            env[name] = str(root / sub)
        log_path = root / "hub.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([str(ROOT / "deploy" / "hub" / "start")], env=env, cwd=str(ROOT), stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        h = Hub(f"http://127.0.0.1:{port}", proc, root, dep.owner_url, dep.app_url, dep.app, log_path)
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"the hub exited with {proc.returncode}:\n{h.log_tail()}", pytrace=False)
                try:
                    with urllib.request.urlopen(h.base + "/hub/health", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"the hub did not answer in 120 s:\n{h.log_tail()}", pytrace=False)
                    time.sleep(0.5)
            yield h
        finally:
            h.stop()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log_path, ARTIFACTS / "hub.log")
            shutil.rmtree(root, ignore_errors=True)


# -- the browser ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        _missing(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@dataclass
class Visitor:
    """A signed-in user's browser context and page."""

    user: str
    context: object
    page: object
    landed: str


@pytest.fixture(scope="session")
def sign_in(hub, browser):
    """``sign_in(user)``: a signed-in browser for ``user`` (one per user per session), after the server started."""
    visitors: dict[str, Visitor] = {}

    def get(user: str) -> Visitor:
        if user in visitors:
            return visitors[user]
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        page.goto(hub.base + "/hub/login")
        page.fill("#username_input", user)
        page.fill("#password_input", PASSWORD)
        page.click("#login_submit")
        try:
            page.wait_for_url(lambda u: f"/user/{user}/" in u and "/hub/" not in u, timeout=APP_TIMEOUT_MS)
        except Exception:  # noqa: BLE001
            pytest.fail(f"{user} did not reach their server (at {page.url}):\n{hub.log_tail()}", pytrace=False)
        visitors[user] = Visitor(user, context, page, page.url)
        return visitors[user]

    yield get
    for v in visitors.values():
        v.context.close()


#: What shows when each app is usable (as in tests/browser).
READY = {"index": ".pi-app-list a", "results": ".pi-ranking-table", "self_assessment": ".pi-fields"}


def open_app(hub: Hub, visitor: Visitor, app: str, query: str = "", *, prefix: str = "") -> str:
    """Open a Voilà app of the visitor's own server; return the page's text once the app is usable (or shows an error)."""
    page = visitor.page
    page.goto(f"{hub.base}/user/{visitor.user}/voila/render/{prefix}{app}.ipynb{query}")
    page.wait_for_selector(f"{READY[app]}, .pi-msg-error", state="visible", timeout=APP_TIMEOUT_MS)
    page.wait_for_timeout(500)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{visitor.user}-{app}{'-tampered' if query else ''}.png"), full_page=True)
    return page.inner_text("body")


#: Start a kernel on ``base`` (e.g. /user/eve/) and send it code over the kernel websocket, from the page.
RUN_IN_KERNEL_JS = """
async ({base, code, timeoutMs}) => {
  const cookie = document.cookie.split('; ').find(c => c.startsWith('_xsrf='));
  const headers = {'Content-Type': 'application/json'};
  if (cookie) headers['X-XSRFToken'] = decodeURIComponent(cookie.split('=').slice(1).join('='));
  const r = await fetch(base + 'api/kernels', {method: 'POST', headers, body: '{}'});
  if (!r.ok) return {started: false, status: r.status, replied: false, out: ''};
  const k = await r.json();
  const url = location.origin.replace(/^http/, 'ws') + base + 'api/kernels/' + k.id + '/channels';
  const msgId = 'attack-' + Math.random().toString(16).slice(2);
  return await new Promise(resolve => {
    const out = [];
    let replied = false, idle = false;
    const done = extra => { try { ws.close(); } catch (e) {} resolve(Object.assign({started: true, kernel: k.id, replied, out: out.join('')}, extra)); };
    const ws = new WebSocket(url);
    ws.onopen = () => ws.send(JSON.stringify({channel: 'shell', header: {msg_id: msgId, msg_type: 'execute_request',
      username: '', session: 'attack', version: '5.3', date: new Date().toISOString()}, parent_header: {}, metadata: {},
      content: {code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true},
      buffers: []}));
    ws.onmessage = ev => {
      const m = JSON.parse(ev.data);
      if (!m.parent_header || m.parent_header.msg_id !== msgId) return;
      if (m.msg_type === 'stream') out.push(m.content.text);
      if (m.msg_type === 'error') out.push('ERROR ' + m.content.ename + ': ' + m.content.evalue);
      if (m.msg_type === 'execute_reply') replied = true;
      if (m.msg_type === 'status' && m.content.execution_state === 'idle') idle = true;
      if (replied && idle) done({});  // the reply and the last output can come in either order
    };
    ws.onerror = () => done({error: 'websocket error'});
    setTimeout(() => done({timeout: true}), timeoutMs);
  });
}
"""
