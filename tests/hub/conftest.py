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
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))  # tests/: pg_deployment
sys.path.insert(0, str(HERE))         # tests/hub/: hub_support

from pg_deployment import deployment  # noqa: E402

from hub_support import (APP_TIMEOUT_MS, ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PASSWORD, USERS,  # noqa: E402
                         AttackLog, Hub, Visitor, _free_port, _missing, hub_groups, seed)


# -- the attack report ----------------------------------------------------------------------------

_LOG = AttackLog()


@pytest.fixture(scope="session")
def attacks() -> AttackLog:
    return _LOG


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    if _LOG.rows:
        terminalreporter.write_sep("=", "parindex attack report (tests/hub)")
        terminalreporter.write_line(_LOG.table())


# -- the hub --------------------------------------------------------------------------------------

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


