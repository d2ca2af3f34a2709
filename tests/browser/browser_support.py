"""What the browser tests and the app benchmark share: a real Voilà server, a demo store, Chromium.

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
    import pytest

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


#: Units added to the demo store for the tests (code, name).
DRAFT_UNIT = "S30"      # an empty draft sheet to fill, save and reload
REFUSE_UNIT = "S31"     # an empty draft sheet that receives refused values
APPRAISE_UNIT = "S32"   # self-scored and submitted, to appraise
IMPORT_UNIT = "S33"     # no scores: filled through the import wizard
FRAMEWORK = "demo_department_2024"


def build_store(folder: Path) -> str:
    """A fresh demo store in ``folder``, plus the units the tests work on.

    The demo generator's own tenant, units and scores, and: S30, S31 with
    empty draft sheets for YEAR; S32 self-scored (like S01) and submitted;
    S33 without scores; S99 named like an HTML injection, scored like S01.
    """
    import pandas as pd

    from parindex_lib.demo import build_demo_store
    from parindex_lib.store import Store

    url = f"sqlite:///{folder / 'parindex.sqlite'}"
    build_demo_store(url)
    store = Store(url)
    extra = [(DRAFT_UNIT, "Sở Thử nghiệm nhập điểm"), (REFUSE_UNIT, "Sở Thử nghiệm từ chối"),
             (APPRAISE_UNIT, "Sở Thử nghiệm thẩm định"), (IMPORT_UNIT, "Sở Thử nghiệm nhập tệp"),
             (XSS_CODE, XSS_NAME)]
    with store.session(tenant=TENANT, user=USER) as s:
        s.upsert_units(pd.DataFrame([{"code": c, "name": n, "kind": "department"} for c, n in extra]))
        for code in (DRAFT_UNIT, REFUSE_UNIT):
            s.create_assessment(code, YEAR, FRAMEWORK)
        base = s.scores(year=YEAR, unit_codes=["S01"])
        keep = ["unit_code", "year", "node_code", "self_score", "survey_points", "explanation", "evidence"]
        for code in (APPRAISE_UNIT, XSS_CODE):
            s.write_scores(base.assign(unit_code=code)[keep], framework_id=FRAMEWORK, source="browser test fixture")
        s.set_status(APPRAISE_UNIT, YEAR, "submitted", reason="browser test fixture")
    store.dispose()
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
        self.notebook_dir = args[0]
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

    def wait_preheated(self, timeout: float = 180.0) -> None:
        """Wait until Voilà reports every notebook's kernel pool filled (or the timeout passes)."""
        notebooks = len(list(Path(self.notebook_dir).glob("*.ipynb")))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_tail(10 ** 7).count("is filled with") >= notebooks:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"voila exited with {self.proc.returncode}: {self.log_tail()}")
            time.sleep(0.5)

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


def open_app(page, voila: VoilaServer, notebook: str, ready: str, query: str = "") -> None:
    """Open an app and wait until the element ``ready`` (a CSS selector) is visible."""
    page.goto(voila.url(notebook, query), wait_until="domcontentloaded", timeout=APP_TIMEOUT_MS)
    page.wait_for_selector(ready, state="visible", timeout=APP_TIMEOUT_MS)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def message_text(page) -> str:
    """The text of the app's message area."""
    return page.locator(".pi-message").inner_text()
