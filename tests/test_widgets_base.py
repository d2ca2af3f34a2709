"""The apps' shared machinery, without a browser: environment, errors, escaping, notebooks."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from parindex_lib.errors import ConflictError, NotFound, ValidationError
from widgets import base
from widgets.base import App, Environment, download_link, esc, html_table, read_environment
from widgets.index import IndexApp
from widgets.testing import ADMIN, TENANT, XSS_NAME, small_env, small_store

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture
def store(sqlite_url, small_framework):
    return small_store(sqlite_url, small_framework)


class Boom(App):
    title_key = "index.title"

    def build(self):
        self.count = 0

    def fail_with(self, exc):
        def handler():
            raise exc
        return handler


# -- environment ------------------------------------------------------------------

def test_environment_comes_from_the_process_environment():
    env = read_environment({"PARINDEX_DB": "sqlite:///x.sqlite", "PARINDEX_TENANT": "hn", "PARINDEX_USER": "lan",
                            "QUERY_STRING": "lang=en&unit=S01"})
    assert (env.db, env.tenant, env.user, env.lang) == ("sqlite:///x.sqlite", "hn", "lan", "en")
    assert env.param("unit") == "S01"
    assert read_environment({}).tenant == "demo" and read_environment({}).lang == "vi"


def test_outside_a_preheated_voila_kernel_nothing_waits(monkeypatch):
    import websockets.sync.client

    calls = []
    monkeypatch.setattr(websockets.sync.client, "connect", lambda *a, **k: calls.append(a))
    monkeypatch.delenv("VOILA_PREHEAT", raising=False)
    read_environment()
    monkeypatch.setenv("VOILA_PREHEAT", "False")
    read_environment()
    assert calls == []


def test_in_a_preheated_voila_kernel_the_request_is_awaited_before_reading(monkeypatch):
    """A live handshake with a websocket server speaking Voilà's request-info protocol."""
    import threading

    from websockets.sync.server import serve

    paths = []

    def handler(ws):
        paths.append(ws.request.path)
        ws.send(json.dumps({"QUERY_STRING": "lang=en&unit=S01", "PARINDEX_USER": "lan"}))

    with serve(handler, "127.0.0.1", 0) as server:
        port = server.socket.getsockname()[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        monkeypatch.setenv("VOILA_PREHEAT", "True")
        monkeypatch.setenv("VOILA_APP_PORT", str(port))
        monkeypatch.setenv("VOILA_KERNEL_ID", "k-123")
        monkeypatch.setenv("VOILA_SERVER_URL", "/")
        monkeypatch.delenv("VOILA_WS_BASE_URL", raising=False)
        monkeypatch.setenv("QUERY_STRING", "")
        monkeypatch.setenv("PARINDEX_USER", "before")
        env = read_environment()
        server.shutdown()
    assert paths == ["/voila/query/k-123"]
    assert (env.lang, env.user, env.param("unit")) == ("en", "lan", "S01")


def test_the_wait_speaks_voilas_protocol():
    """The variable names and the URL are Voilà's own (voila.utils.wait_for_request, 0.5.13)."""
    import inspect

    import voila.utils

    names = {"VOILA_PREHEAT", "VOILA_WS_PROTOCOL", "VOILA_APP_IP", "VOILA_APP_PORT", "VOILA_SERVER_URL",
             "VOILA_WS_BASE_URL", "VOILA_KERNEL_ID", "QUERY_STRING"}
    assert names <= {e.value for e in voila.utils.ENV_VARIABLE}
    source = inspect.getsource(voila.utils.wait_for_request)
    assert "voila/query" in source and '"False"' in source
    ours = inspect.getsource(base.wait_for_request)
    for name in names - {"QUERY_STRING"}:
        assert name in ours


def test_the_wait_gives_up_quietly_when_voila_does_not_answer(monkeypatch, caplog):
    monkeypatch.setenv("VOILA_PREHEAT", "True")
    monkeypatch.setenv("VOILA_APP_PORT", "1")
    monkeypatch.setenv("VOILA_KERNEL_ID", "k")
    assert read_environment().tenant
    assert "no request info" in caplog.text


# -- escaping -----------------------------------------------------------------------

def test_every_cell_and_heading_of_a_table_is_escaped():
    df = pd.DataFrame({"<th>": [XSS_NAME], "n": [85.63]})
    out = html_table(df, caption="<script>")
    assert "<img" not in out and "<script>" not in out and "<th>" not in out.replace("<th scope", "")
    assert "&lt;img src=x onerror=alert(1)&gt;" in out
    assert "85,63" in out and "85.63" in html_table(df, lang="en")


def test_download_links_escape_the_file_name():
    link = download_link(b"abc", 'a"b<.xlsx', "application/x", "<tải>")
    assert 'download="a&quot;b&lt;.xlsx"' in link and "&lt;tải&gt;" in link and "base64,YWJj" in link


def test_esc_shows_missing_values_as_nothing():
    assert esc(None) == esc(float("nan")) == ""


# -- errors reach the person ------------------------------------------------------------

def test_a_library_error_is_shown_as_its_message(store, sqlite_url):
    app = Boom(small_env(sqlite_url), store=store)
    app.guard(app.fail_with(NotFound("no unit 'S<9>' in tenant t1")))()
    assert "pi-msg-error" in app._message.value
    assert "no unit &#x27;S&lt;9&gt;&#x27; in tenant t1" in app._message.value


def test_a_validation_error_is_shown_with_its_failure_table_escaped(store, sqlite_url):
    app = Boom(small_env(sqlite_url), store=store)
    exc = ValidationError("bad file", [{"file": "a.xlsx", "sheet": "S", "row": 5, "column": "1.2",
                                        "value": "<b>7</b>", "expected": "at most 5"},
                                       {"file": "a.xlsx", "sheet": "S", "row": 6, "column": "self_score",
                                        "value": "-1", "expected": "at least 0"}])
    app.guard(app.fail_with(exc))()
    html = app._message.value
    assert html.count("<tr>") == 3  # heading + two failures
    assert "&lt;b&gt;7&lt;/b&gt;" in html and "<b>7" not in html
    assert "Điểm tự chấm (self_score)" in html and ">5<" in html


def test_an_unexpected_error_is_shown_generically_and_logged(store, sqlite_url, caplog):
    app = Boom(small_env(sqlite_url), store=store)
    with caplog.at_level(logging.ERROR, logger="parindex.apps"):
        app.guard(app.fail_with(ZeroDivisionError("secret detail")))()
    assert "ZeroDivisionError" in app._message.value and "secret detail" not in app._message.value
    assert "secret detail" in caplog.text


def test_a_failure_while_building_is_shown_not_raised(store, sqlite_url):
    app = IndexApp(small_env(sqlite_url, user="stranger"), store=store)
    assert not app.ready
    assert "stranger" in app._message.value and "pi-msg-error" in app._message.value
    app._lang.value = "en"
    assert "stranger" in app._message.value


def test_an_unreachable_store_is_shown_not_raised(tmp_path):
    app = IndexApp(Environment(db=f"sqlite:///{tmp_path}/missing/dir/x.sqlite", tenant="t1", user="ana"))
    assert not app.ready and "pi-msg-error" in app._message.value


# -- the index ---------------------------------------------------------------------------

def test_the_index_lists_the_apps_of_the_role(store, sqlite_url):
    with store.session(tenant=TENANT, user=ADMIN) as s:
        s.set_member("vy", "analyst")
        s.set_member("eve", "editor", ["D01"])
    admin = IndexApp(small_env(sqlite_url), store=store)
    for name in ("self_assessment", "appraisal", "import_wizard", "results"):
        assert f'href="{name}.ipynb"' in admin._list.value
    analyst = IndexApp(small_env(sqlite_url, user="vy"), store=store)
    assert 'href="results.ipynb"' in analyst._list.value and "appraisal" not in analyst._list.value
    editor = IndexApp(small_env(sqlite_url, user="eve", lang="en"), store=store)
    assert 'href="self_assessment.ipynb?lang=en"' in editor._list.value and "import_wizard" not in editor._list.value
    assert "Self-assessment" in editor._list.value


# -- notebooks ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["index", "results", "self_assessment", "appraisal", "import_wizard"])
def test_notebooks_are_a_few_lines_without_outputs(name):
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) == 1
    assert all(c.get("outputs") == [] and c.get("execution_count") is None for c in code)
    source = "".join(code[0]["source"])
    assert len(source.splitlines()) <= 5 and ".from_environment()" in source and source.startswith("from widgets.")
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_a_preheated_kernel_warms_up_before_the_visitor_and_builds_after(monkeypatch, store, sqlite_url):
    import os

    from widgets.self_assessment import SelfAssessmentApp

    events = []

    def visitor_arrives():
        events.append("request")
        os.environ["QUERY_STRING"] = "lang=en&unit=D01"

    original = SelfAssessmentApp.warm_up.__func__
    monkeypatch.setattr(SelfAssessmentApp, "warm_up",
                        classmethod(lambda cls, s: (events.append("warm-up"), original(cls, s))))
    monkeypatch.setattr(base, "wait_for_request", visitor_arrives)
    monkeypatch.setenv("VOILA_PREHEAT", "True")
    monkeypatch.setenv("PARINDEX_DB", sqlite_url)
    monkeypatch.setenv("PARINDEX_TENANT", TENANT)
    monkeypatch.setenv("PARINDEX_USER", ADMIN)
    monkeypatch.setenv("QUERY_STRING", "")
    app = SelfAssessmentApp.from_environment()
    assert events == ["warm-up", "request"]
    assert app.ready and app.lang == "en" and app.sheet.unit_code == "D01"
