"""Fixtures of the browser tests: one Voilà server per session, Chromium, a fresh page per test.

One Voilà server per test session (``parindex_lib.serve.voila_arguments``:
the workbench's own settings, preheated kernels on) on a free loopback port,
against a fresh SQLite store built by the demo generator, with every Jupyter
and IPython folder pointed at a temporary directory. Debian's Chromium is
driven by Playwright (no browser download): when it is missing the tests
skip, except under ``CI=true`` where they fail.

A JavaScript dialog (``alert``) opened by any page fails its test.
Screenshots go to ``tests/artifacts/`` (ignored by git).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from browser_support import CHROMIUM_ARGS, TENANT, USER, VoilaServer, build_store, require_chromium


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
    server.wait_preheated()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
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

    s = Store(store_url)
    try:
        yield s
    finally:
        s.dispose()


@pytest.fixture
def session(store):
    with store.session(tenant=TENANT, user=USER) as s:
        yield s
