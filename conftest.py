"""Root pytest configuration.

Doctests run over every module (``--doctest-modules``); the conftest files
of the test folders hold no doctests and share one basename, so they are not
collected as modules (they are still loaded as conftest files).

The tests that drive a real browser (Playwright's sync API runs an event
loop in the main thread while a browser is open) run last: first the Voilà
apps, then the hub, so no other test runs beside an open browser.
"""

from __future__ import annotations

collect_ignore_glob = ["tests/conftest.py", "tests/*/conftest.py", "bench/*", "deploy/*", "notebooks/*"]

_LAST = ("tests/browser/", "tests/hub/")


def pytest_collection_modifyitems(session, config, items):
    def order(item) -> int:
        path = item.nodeid
        for i, prefix in enumerate(_LAST, start=1):
            if path.startswith(prefix):
                return i
        return 0

    items.sort(key=order)  # stable: the order within each part is kept
