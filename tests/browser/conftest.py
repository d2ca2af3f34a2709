"""A real Voilà server and a real Chromium for the browser tests.

One Voilà server per test session (``parindex_lib.serve.voila_arguments``:
the workbench's own settings, preheated kernels on) on a free loopback port,
against a fresh SQLite store built by the demo generator, with every Jupyter
and IPython folder pointed at a temporary directory. Debian's Chromium is
driven by Playwright (no browser download): when it is missing the tests
skip, except under ``CI=true`` where they fail.

Screenshots go to ``tests/artifacts/`` (ignored by git).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
#: A unit whose name is an HTML injection attempt: it must show as text.
XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_CODE = "S99"
TENANT = "demo"
USER = "demo"
YEAR = 2024
APP_TIMEOUT_MS = 90_000


def require_chromium() -> str:
    """The Chromium executable; skip (fail under CI=true) when missing."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_env(root: Path) -> dict[str, str]:
    """Environment variables that keep Jupyter and IPython inside ``root``."""
    env = {}
    for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                      ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
        path = root / sub
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    return env


def build_store(folder: Path) -> str:
    """A fresh demo store in ``folder``, plus a unit named like an HTML injection."""
    from parindex_lib.demo import build_demo_store
    from parindex_lib.store import Store

    url = f"sqlite:///{folder / 'parindex.sqlite'}"
    build_demo_store(url)
    store = Store(url)
    with store.session(tenant=TENANT, user=USER) as s:
        import pandas as pd

        s.upsert_units(pd.DataFrame([{"code": XSS_CODE, "name": XSS_NAME, "kind": "department",
                                      "parent_code": None, "region": None,
                                      "active_from": 2022, "active_to": None}]))
        scores = s.scores(year=YEAR, unit_codes=["S01"])
        scores = scores.assign(unit_code=XSS_CODE)
        keep = [c for c in ("unit_code", "year", "node_code", "self_score", "appraised_score", "survey_points",
                            "bonus", "penalty", "explanation", "evidence") if c in scores.columns]
        s.write_scores(scores[keep], framework_id="demo_department_2024", source="browser test fixture")
    return url


class VoilaServer:
    """A Voilà process started with the workbench's settings."""

    def __init__(self, url: str, root: Path, *, notebook_dir: Path | None = None, preheat: bool = True):
        from parindex_lib.serve import voila_arguments

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.root = root
        self.store_url = url
        env = dict(os.environ)
        env.update(jupyter_env(root))
        env.update({"PARINDEX_DB": url, "PARINDEX_TENANT": TENANT, "PARINDEX_USER": USER, "MPLBACKEND": "Agg",
                    "PYTHONUNBUFFERED": "1"})
        env.pop("PARINDEX_LANG", None)
        args = voila_arguments(port=self.port, preheat=preheat)
        if notebook_dir is not None:
            args[0] = str(notebook_dir)
        self.log_path = root / "voila.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "voila", *args], env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=str(root), start_new_session=True)
        self._wait_listening()

    def _wait_listening(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"voila exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                # The static path starts no kernel (a notebook URL would).
                with urllib.request.urlopen(f"{self.base}/voila/static/voila.js", timeout=2):
                    return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.3)
        raise RuntimeError(f"voila did not listen within {timeout} s: {self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def url(self, notebook: str, query: str = "") -> str:
        return f"{self.base}/voila/render/{notebook}.ipynb{query}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    return require_chromium()


@pytest.fixture(scope="session")
def browser_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("voila")


@pytest.fixture(scope="session")
def store_url(browser_root, chromium_path) -> str:
    return build_store(browser_root)


@pytest.fixture(scope="session")
def voila(store_url, browser_root):
    server = VoilaServer(store_url, browser_root)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, voila, request):
    """A fresh page at 1366x768; a JavaScript dialog (alert) fails the test."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="vi-VN")
    pg = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog):
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    pg.set_default_timeout(30_000)
    try:
        yield pg
    finally:
        context.close()
    assert dialogs == [], f"a script ran in the page: {dialogs}"


@pytest.fixture
def store(store_url):
    from parindex_lib.store import Store

    return Store(store_url)


def open_app(page, voila: VoilaServer, notebook: str, ready: str, query: str = "") -> None:
    """Open an app and wait until the element ``ready`` (a CSS selector) is visible."""
    page.goto(voila.url(notebook, query), wait_until="domcontentloaded")
    page.wait_for_selector(ready, state="visible", timeout=APP_TIMEOUT_MS)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def message_text(page) -> str:
    """The text of the app's message area."""
    return page.locator(".pi-message").inner_text()
