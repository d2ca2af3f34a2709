"""Helpers of the hub tests: users, tenants, the attack log, the hub process, pages and kernels.

Imported by ``tests/hub/conftest.py`` (the fixtures) and the test modules.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

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


@dataclass
class Visitor:
    """A signed-in user's browser context and page."""

    user: str
    context: object
    page: object
    landed: str


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
