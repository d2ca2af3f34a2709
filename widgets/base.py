"""What every parindex app shares: environment, language, messages, escaping.

An app is an :class:`App` (an ``ipywidgets.VBox``): a header with the title,
the tenant switch (for a person in several tenants) and the language switch,
a message area, and the app's body. Every event
handler is wrapped by :meth:`App.guard`, so an exception never disappears
into Voilà's hidden tracebacks: a :class:`~parindex_lib.errors.ParindexError`
is shown as its message, a :class:`~parindex_lib.errors.ValidationError` as
its failure table, anything else as a generic message plus a log line.

Text that users typed (unit names, explanations, reasons, file names) is
escaped with :func:`html.escape` wherever it is shown as HTML: use
:func:`esc` and :func:`html_table`, never string concatenation of raw text.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import html
import json
import logging
import math
import os
import sys
import zoneinfo
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence
from urllib.parse import parse_qs

import ipywidgets as W
import pandas as pd

from parindex_lib.errors import AccessDenied, ConflictError, ParindexError, ValidationError
from parindex_lib.i18n import DEFAULT_LANG, catalogue, library_text, normalise_lang, number, t

__all__ = [
    "Environment",
    "wait_for_request",
    "read_environment",
    "App",
    "esc",
    "html_table",
    "download_link",
    "label",
    "log",
    "CSS",
    "local_time",
    "css_code",
    "make",
    "XLSX",
]

#: The media type of the xlsx files the apps offer for download.
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

#: Times are shown in the workbench's time zone (``PARINDEX_TZ``, default Vietnam's).
DEFAULT_TZ = "Asia/Ho_Chi_Minh"


def local_time(moment: dt.datetime | None = None) -> dt.datetime:
    """A moment in the workbench's time zone (naive moments are taken as UTC)."""
    try:
        zone = zoneinfo.ZoneInfo(os.environ.get("PARINDEX_TZ") or DEFAULT_TZ)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo(DEFAULT_TZ)
    moment = moment or dt.datetime.now(dt.timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(zone)

log = logging.getLogger("parindex.apps")
if not log.handlers:
    # Voilà hides the kernel's outputs; the real stderr of the kernel process
    # reaches the server's console, where operators read it.
    _handler = logging.StreamHandler(sys.__stderr__)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)


# -- environment ------------------------------------------------------------------

@dataclass(frozen=True)
class Environment:
    """Who is using the app, on which store, in which language.

    Attributes
    ----------
    db : str or None
        Store URL (``PARINDEX_DB``); None means the embedded default.
    tenant, user : str
        ``PARINDEX_TENANT`` and ``PARINDEX_USER`` (default ``demo``).
    lang : str
        ``vi`` unless the page was opened with ``?lang=en``.
    query : dict
        The page's query string, parsed (``{"unit": ["S01"]}``).
    hub_user : str or None
        ``JUPYTERHUB_USER`` under JupyterHub: then who the visitor is, and
        their tenants and roles, come from the hub
        (:func:`parindex_lib.identity.current_identity`), never from the page.
    """

    db: str | None = None
    tenant: str = "demo"
    user: str = "demo"
    lang: str = DEFAULT_LANG
    query: dict = field(default_factory=dict)
    hub_user: str | None = None

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of one query-string parameter."""
        values = self.query.get(name)
        return values[0] if values else default


def wait_for_request() -> None:
    """Block until Voilà hands a preheated kernel its visitor's request; no-op elsewhere.

    The protocol of :func:`voila.utils.wait_for_request` (Voilà 0.5.13): a
    preheated kernel runs with ``VOILA_PREHEAT=True``; when a visitor asks
    for the page, the server sends the request's details (``QUERY_STRING``,
    ``SCRIPT_NAME``, ``SERVER_*``, configured ``HTTP_*`` headers) as one JSON
    message on the websocket ``{VOILA_WS_BASE_URL}voila/query/{kernel id}``,
    and they are copied into ``os.environ``. Outside a preheated kernel
    (``VOILA_PREHEAT`` unset or ``False``: plain Jupyter, tests, JupyterHub
    user servers) it returns at once, as Voilà's does.

    It is written out here because importing ``voila.utils`` loads the whole
    Jupyter server stack into every visitor's kernel (about 70 MB of memory
    each); this uses only the ``websockets`` client. ``tests/test_widgets_base.py``
    checks it against Voilà's own variable names and a live handshake.
    """
    if os.environ.get("VOILA_PREHEAT", "False") != "True":
        return
    from websockets.sync.client import connect

    protocol = os.environ.get("VOILA_WS_PROTOCOL", "ws")
    ip = os.environ.get("VOILA_APP_IP", "127.0.0.1")
    port = os.environ.get("VOILA_APP_PORT", "8866")
    server_url = os.environ.get("VOILA_SERVER_URL", "/")
    ws_base = os.environ.get("VOILA_WS_BASE_URL", server_url)
    url = f"{protocol}://{ip}:{port}{ws_base}voila/query/{os.environ.get('VOILA_KERNEL_ID')}"
    try:
        with connect(url, open_timeout=5) as ws:
            info = ws.recv()
    except (TimeoutError, ConnectionRefusedError, OSError) as exc:
        log.warning("no request info from Voilà at %s: %s", url, exc)
        return
    for key, value in json.loads(info).items():
        os.environ[key] = value


def read_environment(environ: dict | None = None, *, wait: bool = True) -> Environment:
    """The app's environment, read after Voilà has handed over the request.

    With preheated kernels, Voilà runs the notebook before anyone asks for
    the page and sends the request's details (query string, headers) to the
    kernel when a visitor arrives: :func:`wait_for_request` blocks until
    then and copies them into ``os.environ``. It returns at once when the
    kernel is not preheated, so this function never blocks outside a
    preheated Voilà kernel.

    Parameters
    ----------
    environ
        The mapping to read (default ``os.environ``; then the Voilà wait applies).
    wait
        Wait for the request in a preheated Voilà kernel.

    Returns
    -------
    Environment
    """
    if environ is None:
        if wait:
            wait_for_request()
        environ = os.environ
    query = parse_qs(environ.get("QUERY_STRING", "") or "", keep_blank_values=False)
    lang = normalise_lang((query.get("lang") or [environ.get("PARINDEX_LANG") or DEFAULT_LANG])[0])
    return Environment(
        db=environ.get("PARINDEX_DB") or None,
        tenant=environ.get("PARINDEX_TENANT") or "demo",
        user=environ.get("PARINDEX_USER") or "demo",
        lang=lang,
        query=query,
        hub_user=environ.get("JUPYTERHUB_USER") or None,
    )


# -- HTML helpers -----------------------------------------------------------------

def esc(value: Any) -> str:
    """Text made safe for HTML (``None`` and NaN become an empty string)."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return html.escape(str(value), quote=True)


def html_table(df: pd.DataFrame, *, headers: Sequence[str] | None = None, css_class: str = "pi-table",
               formatters: dict[str, Callable[[Any], str]] | None = None,
               row_class: Callable[[pd.Series], str] | None = None,
               cell_class: dict[str, Callable[[Any], str]] | None = None,
               caption: str | None = None, max_rows: int | None = None, lang: str = DEFAULT_LANG) -> str:
    """A DataFrame as an HTML table, every cell escaped.

    Parameters
    ----------
    df
        The rows to show (its columns, in order).
    headers
        Column headings (default: the column names), escaped.
    formatters
        Column -> function giving the cell's *text* (escaped afterwards).
        Float columns without a formatter show with :func:`number`.
    row_class, cell_class
        CSS classes (not escaped: give constant class names only).
    caption
        Escaped caption.
    max_rows
        Show at most this many rows.
    """
    formatters = formatters or {}
    cell_class = cell_class or {}
    cols = list(df.columns)
    heads = list(headers) if headers is not None else cols
    parts = [f'<table class="{css_class}">']
    if caption:
        parts.append(f"<caption>{esc(caption)}</caption>")
    parts.append("<thead><tr>" + "".join(f'<th scope="col">{esc(h)}</th>' for h in heads) + "</tr></thead><tbody>")
    shown = df if max_rows is None else df.head(max_rows)
    for _, rec in shown.iterrows():
        rc = row_class(rec) if row_class else ""
        cells = []
        for c in cols:
            v = rec[c]
            if c in formatters:
                text = formatters[c](v)
            elif isinstance(v, float):
                text = number(v, lang)
            else:
                text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            cls = cell_class[c](v) if c in cell_class else ""
            cells.append(f'<td class="{cls}">{esc(text)}</td>' if cls else f"<td>{esc(text)}</td>")
        parts.append(f'<tr class="{rc}">' + "".join(cells) + "</tr>" if rc else "<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def download_link(data: bytes, filename: str, mime: str, text: str, css_class: str = "pi-download") -> str:
    """An HTML link that saves ``data`` as ``filename`` (a ``data:`` URL).

    Voilà serves no files of its own (``file_allowlist`` is empty), so
    exports travel inside the page.
    """
    payload = base64.b64encode(data).decode("ascii")
    return (f'<a class="{css_class}" download="{esc(filename)}" '
            f'href="data:{esc(mime)};base64,{payload}">{esc(text)}</a>')


def label(text: str, for_widget: W.Widget | None = None) -> W.HTML:
    """A visible, escaped label (for groups of inputs)."""
    return W.HTML(f'<span class="pi-label">{esc(text)}</span>')


# -- styles -------------------------------------------------------------------------

CSS = """
<style>
.pi-app { max-width: 1320px; font-size: 14px; color: #1a1a1a; }
.pi-app .widget-label { color: #1a1a1a; }
.pi-header { border-bottom: 2px solid #0b4f8a; padding-bottom: 4px; margin-bottom: 6px; }
.pi-title h1 { font-size: 20px; margin: 4px 0; color: #0b4f8a; }
.pi-demo-badge { background: #fff4ce; color: #5c4300; border: 1px solid #c9a227; padding: 1px 6px; border-radius: 3px; font-size: 12px; }
.pi-msg-error { background: #fde7e9; color: #7a0010; border-left: 4px solid #b00020; padding: 6px 10px; margin: 4px 0; }
.pi-msg-warning { background: #fff4ce; color: #4d3800; border-left: 4px solid #c9a227; padding: 6px 10px; margin: 4px 0; }
.pi-msg-info { background: #e6f4ea; color: #0d4d1f; border-left: 4px solid #1e7b34; padding: 6px 10px; margin: 4px 0; }
.pi-table { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
.pi-table th, .pi-table td { border: 1px solid #c4c4c4; padding: 3px 6px; text-align: left; vertical-align: top; }
.pi-table th { background: #eef2f7; color: #1a1a1a; }
.pi-table caption { text-align: left; font-weight: bold; padding: 2px 0; }
.pi-group-A { background: #c8e6c9; color: #0b3d0f; }
.pi-group-B { background: #cfe3fb; color: #0a2e5c; }
.pi-group-C { background: #fff0b3; color: #4d3800; }
.pi-group-none { background: #fde0e0; color: #6b0b0b; }
.pi-up { color: #0d5c1f; font-weight: bold; }
.pi-down { color: #9b0d0d; font-weight: bold; }
.pi-leaf { border-bottom: 1px solid #e3e3e3; padding: 4px 0; }
.pi-leaf-title { font-weight: bold; }
.pi-guidance { color: #3d3d3d; font-size: 12.5px; }
.pi-invalid input, .pi-invalid textarea { border: 2px solid #b00020 !important; }
.pi-inline-error { color: #9b0016; font-size: 12.5px; }
.pi-total { font-weight: bold; font-size: 15px; }
.pi-download { display: inline-block; margin: 2px 8px 2px 0; padding: 4px 10px; border: 1px solid #0b4f8a; border-radius: 3px; color: #0b4f8a; text-decoration: none; }
.pi-download:focus, .pi-app button:focus, .pi-app input:focus, .pi-app select:focus, .pi-app textarea:focus { outline: 3px solid #1967d2; outline-offset: 1px; }
.pi-app-list li { margin: 6px 0; }
.pi-app-list a { font-size: 16px; color: #0b4f8a; }
.pi-readonly { color: #3d3d3d; font-style: italic; }
.pi-actions { border-top: 1px solid #c4c4c4; padding: 4px 0; }
</style>
"""


# -- the base app ---------------------------------------------------------------------

class App(W.VBox):
    """Base class of the parindex apps.

    Subclasses set :attr:`title_key`, build their widgets in
    :meth:`build`, set every visible text in :meth:`translate` and bring
    widgets in line with the state in :meth:`refresh`. Handlers are
    connected with :meth:`on_click` and :meth:`on_change`, which route
    every event through :meth:`guard` and then :meth:`refresh`.

    A person in several tenants (:attr:`parindex_lib.identity.Identity.tenants`)
    gets a tenant dropdown in the header, filled from their identity only;
    choosing another tenant reopens the session there
    (:meth:`parindex_lib.identity.Identity.with_tenant`, then the store checks
    the membership), drops the app's state and caches and builds its views
    again (:meth:`switch_tenant`).

    Parameters
    ----------
    env
        Who, where and in which language (default: :func:`read_environment`).
    store
        A :class:`parindex_lib.store.Store` (default: opened from ``env.db``).
    identity
        A :class:`parindex_lib.identity.Identity` (default:
        :meth:`resolve_identity`, from the hub or the environment); for
        embedding and tests, never from the page.
    """

    title_key = "app.title"
    app_class = "pi-app"

    def __init__(self, env: Environment | None = None, store: Any = None, identity: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.env = env or read_environment()
        self.lang = self.env.lang
        self._syncing = 0
        self.ready = False
        self.store = store
        self.identity: Any = None
        self.add_class("pi-app")
        self.add_class(self.app_class)
        self._style = W.HTML(CSS)
        self._title = W.HTML()
        self._title.add_class("pi-title")
        self._lang = W.ToggleButtons(options=[("Tiếng Việt", "vi"), ("English", "en")], value=self.lang,
                                     style={"button_width": "96px"})
        self._lang.add_class("pi-lang")
        # Shown only to a person in several tenants; its choices are their identity's tenants.
        self._tenant = W.Dropdown(options=[], value=None, style={"description_width": "initial"},
                                  layout=W.Layout(width="auto", display="none"))
        self._tenant.add_class("pi-tenant")
        self._message = W.HTML()
        self._message.add_class("pi-message")
        # The same message again beside the action buttons, for forms longer than the screen.
        self._message_near = W.HTML()
        self._message_near.add_class("pi-message-near")
        self._body = W.VBox()
        self._body.add_class("pi-body")
        header = W.HBox([self._title, W.HBox([self._tenant, self._lang], layout=W.Layout(align_items="center"))],
                        layout=W.Layout(justify_content="space-between", align_items="center", width="100%"))
        header.add_class("pi-header")
        self.children = [self._style, header, self._message, self._body]
        self.on_change(self._lang, self._on_lang)
        self.on_change(self._tenant, self._on_tenant)
        self._title.value = f"<h1>{esc(self.tr(self.title_key))}</h1>"
        # A failure while building (no such user, store unreachable) is shown, never raised:
        # Voilà would show an empty page.
        try:
            self.identity = identity if identity is not None else self.resolve_identity(self.env)
            if self.store is None:
                self.store = self.open_store(self.env)
            self._set_tenant_options()
            with self.syncing():
                self.build()
            self.ready = True
        except Exception as exc:  # noqa: BLE001
            self._body.children = []
            self._build_error = exc
            self.show_error(exc)
            return
        self._translate_all()
        self.guard(self.refresh)()

    # -- construction -----------------------------------------------------------
    @classmethod
    def from_environment(cls, **kwargs: Any) -> "App":
        """The app for the visitor of this page (see :func:`read_environment`).

        In a preheated Voilà kernel the store is opened and warmed up
        (:meth:`warm_up`) *before* waiting for the visitor, with the server's
        environment, so the visitor waits only for their own data and
        widgets; nothing the visitor sees is built before their request.
        """
        if "store" not in kwargs and os.environ.get("VOILA_PREHEAT") == "True":
            early = read_environment(wait=False)
            store = cls._prepare(early)
            env = read_environment()
            if store is not None and env.db == early.db:
                kwargs["store"] = store
            return cls(env, **kwargs)
        return cls(read_environment(), **kwargs)

    @staticmethod
    def resolve_identity(env: Environment) -> Any:
        """Who the visitor is: from the hub under JupyterHub, else the environment's user and tenant."""
        from parindex_lib.identity import Identity, current_identity

        if env.hub_user:
            return current_identity()
        return Identity(user=env.user, tenant=env.tenant)

    @classmethod
    def open_store(cls, env: Environment) -> Any:
        """The store of ``env`` (migrations are run by ``parindex serve`` and ``parindex demo``, not per page)."""
        from parindex_lib.store import Store

        return Store(env.db, upgrade=False)

    @classmethod
    def _prepare(cls, env: Environment) -> Any:
        try:
            store = cls.open_store(env)
            with store.session(tenant=env.tenant, user=env.user) as s:
                cls.warm_up(s)
            return store
        except Exception as exc:  # noqa: BLE001 - warming up is optional; the visitor's build reports errors
            log.info("warm-up of %s skipped: %s", cls.__name__, exc)
            return None

    @classmethod
    def warm_up(cls, session: Any) -> None:
        """Read what the app will read, so that caches and code paths are warm (no widgets)."""
        session.units()

    def build(self) -> None:
        """Create the app's widgets and put them in ``self._body``."""

    def translate(self) -> None:
        """Set every visible text in ``self.lang``."""

    def refresh(self) -> None:
        """Bring the widgets in line with the state."""

    def has_unsaved_changes(self) -> bool:
        """Whether the person has edits not saved yet (then the tenant is not switched)."""
        return False

    def release(self) -> None:
        """Free what :meth:`build` made outside the widgets (temporary files), before the app is built again."""

    # -- text --------------------------------------------------------------------
    def tr(self, key: str, **fmt: Any) -> str:
        """The catalogue text of ``key`` in the app's language."""
        return t(key, self.lang, **fmt)

    def num(self, value: Any, decimals: int = 2) -> str:
        """A number in the app's language (decimal comma in Vietnamese)."""
        return number(value, self.lang, decimals)

    def _translate_all(self) -> None:
        self._lang.description = self.tr("common.language")
        self._tenant.description = self.tr("common.tenant")
        self._lang.tooltips = ["Tiếng Việt", "English"]
        self._title.value = f"<h1>{esc(self.tr(self.title_key))}</h1>"
        if not self.ready:
            return
        with self.syncing():
            self.translate()

    def _on_lang(self, change: dict) -> None:
        self.lang = normalise_lang(change["new"])
        self.clear_message()
        self._translate_all()
        if not self.ready and getattr(self, "_build_error", None) is not None:
            self.show_error(self._build_error)

    # -- tenants -------------------------------------------------------------------
    def _set_tenant_options(self) -> None:
        """The tenant dropdown: the identity's tenants, shown when there are several."""
        tenants = list(self.identity.tenants) if self.identity is not None else []
        with self.syncing():
            if len(tenants) < 2:
                self._tenant.options = []
                self._tenant.layout.display = "none"
                return
            names = self._tenant_names()
            self._tenant.options = [(f"{names[t]} ({t})" if names.get(t) else t, t) for t in tenants]
            self._tenant.value = self.identity.tenant if self.identity.tenant in tenants else None
            self._tenant.layout.display = None

    def _tenant_names(self) -> dict[str, str]:
        """Names of the user's tenants, for the dropdown's labels (codes alone when the store cannot say)."""
        try:
            table = self.store.tenants(user=self.identity.user)
        except Exception as exc:  # noqa: BLE001 - labels only: the codes still identify the tenants
            log.info("tenant names of %s not read: %s", self.identity.user, exc)
            return {}
        return dict(zip(table["code"].astype(str), table["name"].astype(str)))

    def _on_tenant(self, change: dict) -> None:
        wanted = change["new"]
        if wanted is None or self.identity is None or wanted == self.identity.tenant:
            return
        try:
            self.switch_tenant(wanted)
        finally:
            with self.syncing():  # the dropdown shows the tenant actually in use
                current = self.identity.tenant
                self._tenant.value = current if current in [v for _, v in self._tenant.options] else None

    def switch_tenant(self, tenant: str) -> None:
        """Work in another of the person's tenants: new session, fresh state, views built again.

        Only a tenant of the identity (:attr:`~parindex_lib.identity.Identity.tenants`)
        is accepted, whatever the dropdown sent;
        :meth:`~parindex_lib.identity.Identity.with_tenant` and the store
        check the membership before anything changes. Unsaved edits keep
        the app in its tenant.

        Raises
        ------
        AccessDenied
            ``tenant`` is not one of the person's, or the store refuses the
            membership (nothing changed).
        """
        tenant = str(tenant)
        if tenant not in self.identity.tenants:
            log.warning("tenant %r refused for %s: not one of %s", tenant, self.identity.user, self.identity.tenants)
            raise AccessDenied(self.tr("common.tenant_refused", user=self.identity.user, tenant=tenant,
                                       current=self.identity.tenant))
        if self.ready and self.has_unsaved_changes():
            self.show_warning(self.tr("common.tenant_unsaved"))
            return
        identity = self.identity.with_tenant(tenant)
        identity.session(self.store).close()  # the store checks the membership (and the hub's role and units)
        self.release()
        self.identity = identity
        self.ready = False
        self._build_error = None
        self._body.children = []
        self.clear_message()
        try:
            with self.syncing():
                self.build()
            self.ready = True
        except Exception as exc:  # noqa: BLE001 - shown; the person can switch back
            self._body.children = []
            self._build_error = exc
            raise
        finally:
            self._translate_all()
        label = dict((v, k) for k, v in self._tenant.options).get(tenant, tenant)
        self.show_info(self.tr("common.tenant_switched", tenant=label))

    # -- sessions ------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """A store session bound to the visitor's tenant and user (checked against the hub under JupyterHub)."""
        with self.identity.session(self.store) as s:
            yield s

    # -- events --------------------------------------------------------------------
    @contextlib.contextmanager
    def syncing(self) -> Iterator[None]:
        """Widget changes made inside this block do not fire the app's handlers."""
        self._syncing += 1
        try:
            yield
        finally:
            self._syncing -= 1

    def guard(self, fn: Callable[..., Any], *, refresh: bool = False) -> Callable[..., Any]:
        """``fn`` wrapped so that any exception is caught, logged and shown.

        Handlers do not run while the app is updating its own widgets
        (:meth:`syncing`). With ``refresh=True`` the app refreshes after
        the handler (also after an error).
        """

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self._syncing:
                return None
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the app must show every error
                self.show_error(exc)
                return None
            finally:
                if refresh and not self._syncing and self.ready:
                    try:
                        with self.syncing():
                            self.refresh()
                    except Exception as exc:  # noqa: BLE001
                        self.show_error(exc)

        return wrapper

    def on_click(self, button: W.Button, handler: Callable[[], Any]) -> None:
        """Run ``handler()`` on a click, guarded, then refresh."""
        guarded = self.guard(lambda _b: handler(), refresh=True)
        button.on_click(guarded)

    def on_change(self, widget: W.Widget, handler: Callable[[dict], Any], names: str = "value",
                  refresh: bool = True) -> None:
        """Run ``handler(change)`` when ``widget``'s trait changes, guarded, then refresh."""
        widget.observe(self.guard(handler, refresh=refresh), names=names)

    # -- messages ------------------------------------------------------------------
    def _set_message(self, html_text: str) -> None:
        self._message.value = html_text
        # beside the buttons, without the role (one announcement for screen readers is enough)
        self._message_near.value = html_text.replace(' role="alert"', "").replace(' role="status"', "")

    def clear_message(self) -> None:
        self._set_message("")

    def show_info(self, text: str) -> None:
        """A confirmation (escaped)."""
        self._set_message(f'<div class="pi-msg-info" role="status">{esc(text)}</div>')

    def show_warning(self, text: str, extra_html: str = "") -> None:
        """A warning (escaped; ``extra_html`` must already be safe)."""
        self._set_message(f'<div class="pi-msg-warning" role="alert">{esc(text)}{extra_html}</div>')

    def show_error(self, exc: BaseException, row_label: str | None = None) -> None:
        """Show an exception to the person and log it.

        - :class:`ValidationError`: its message and the whole failure table;
        - :class:`ParindexError`: its message;
        - anything else: a generic message; the details go to the log.

        The library's English texts are shown in the app's language where
        ``parindex_lib/locale/library_vi.yaml`` has them
        (:func:`parindex_lib.i18n.library_text`); the log keeps the English.
        """
        if isinstance(exc, ValidationError):
            log.info("validation refused in %s: %s", type(self).__name__, exc.message)
            self._set_message('<div class="pi-msg-error" role="alert">'
                              f"<div>{esc(self.tr('common.error_validation', n=len(exc.failures)))}</div>"
                              f"<div>{esc(library_text(exc.message, self.lang))}</div>"
                              f"{self.failure_table_html(exc.failures, row_label)}</div>")
        elif isinstance(exc, ParindexError):
            log.info("refused in %s: %s", type(self).__name__, exc)
            self._set_message(f'<div class="pi-msg-error" role="alert">{esc(library_text(str(exc), self.lang))}</div>')
        else:
            log.exception("unexpected error in %s", type(self).__name__, exc_info=exc)
            self._set_message('<div class="pi-msg-error" role="alert">'
                              f"{esc(self.tr('common.error_unexpected', kind=type(exc).__name__))}</div>")

    def failure_table_html(self, failures: pd.DataFrame, row_label: str | None = None) -> str:
        """The failure table (file, sheet, row, column, value, expected), escaped.

        The ``expected`` texts are shown in the app's language (:func:`parindex_lib.i18n.library_text`).

        Columns empty in every row (no file or sheet for a form) are left out.
        """
        cols = [c for c in ("file", "sheet", "row", "column", "value", "expected") if c in failures.columns]
        cols = [c for c in cols if c in ("column", "value", "expected")
                or failures[c].map(lambda v: v is not None and not (isinstance(v, float) and math.isnan(v))
                                   and str(v) != "").any()]
        heads = [row_label if (c == "row" and row_label) else self.tr(f"failure.{c}") for c in cols]

        def cell(v: Any) -> str:
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return ""
            if isinstance(v, float) and v.is_integer():
                return str(int(v))
            return str(v)

        def column(v: Any) -> str:
            text = cell(v)
            head, sep, tail = text.rpartition(": ")
            name = tail if sep else text
            label = self.column_label(name)
            return f"{head}: {label}" if sep else label

        formatters = {c: cell for c in cols}
        formatters["column"] = column
        formatters["expected"] = lambda v: library_text(cell(v), self.lang)
        return html_table(failures[cols], headers=heads, css_class="pi-table pi-failures",
                          formatters=formatters, lang=self.lang)

    def column_label(self, name: str) -> str:
        """A column or field name as people call it (``self_score`` -> ``Điểm tự chấm (self_score)``)."""
        label = catalogue(self.lang).get(f"columns.{name}")
        return name if label is None else f"{label} ({name})"

    # -- the tree of fields, reachable by keyboard ---------------------------------------
    def field_picker(self, accordion: W.Accordion) -> W.Dropdown:
        """A dropdown that opens a field's section of ``accordion`` (section headers take no keyboard focus)."""
        picker = W.Dropdown(options=[], value=None, style={"description_width": "initial"},
                            layout=W.Layout(width="420px"))
        picker.add_class("pi-open-field")

        def on_pick(change: dict) -> None:
            if change["new"] is not None and change["new"] >= 0:
                accordion.selected_index = change["new"]

        def on_open(change: dict) -> None:
            with self.syncing():
                picker.value = change["new"] if change["new"] in [v for _, v in picker.options] else -1

        self.on_change(picker, on_pick)
        accordion.observe(on_open, names="selected_index")
        return picker

    def set_field_options(self, picker: W.Dropdown, framework: Any) -> None:
        """The picker's choices: the framework's fields in the app's language."""
        en = self.lang == "en"
        # -1 rather than None: ipywidgets shows a None value as an empty choice
        options = [(self.tr("common.open_field_choose"), -1)] + [
            (f"{c}. {(ne or nv) if en else nv}"[:80], i)
            for i, (c, nv, ne) in enumerate(zip(framework.fields["code"], framework.fields["name_vi"],
                                                 framework.fields["name_en"]))]
        with self.syncing():
            current = picker.value if picker.value in [v for _, v in options] else -1
            picker.options = options
            picker.value = current
        picker.description = self.tr("common.open_field")

    # -- small builders ---------------------------------------------------------------
    @staticmethod
    def button(css: str, style: str = "", icon: str = "", **kwargs: Any) -> W.Button:
        """A button with its CSS class given at creation (see :func:`make`)."""
        return make(W.Button, css, button_style=style, icon=icon, layout=W.Layout(width="auto"), **kwargs)

    @staticmethod
    def classed(widget: W.Widget, *classes: str) -> W.Widget:
        for c in classes:
            widget.add_class(c)
        return widget


def make(cls: type, *classes: str, **kwargs: Any) -> Any:
    """A widget created with its final CSS classes and traits.

    Widgets made while the page is open (a section opened, a conflict
    shown) must carry their whole state when created: an update sent while
    the browser is still creating the widget's model can be lost.
    """
    return cls(_dom_classes=tuple(classes), **kwargs)


def css_code(code: str) -> str:
    """A node code as a CSS-class suffix: ``1.2.3`` -> ``1-2-3``."""
    return "".join(ch if ch.isalnum() else "-" for ch in str(code))


def options_with_placeholder(options: Iterable[tuple[str, Any]], placeholder: str) -> list[tuple[str, Any]]:
    """Dropdown options preceded by an empty choice."""
    return [(placeholder, None), *options]
