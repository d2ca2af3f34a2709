"""JupyterHub glue for parindex: hub groups to tenants and roles, database tokens, the server each role gets.

Imported by ``deploy/jupyterhub_config.py`` (in the hub) and, for
:class:`StaffAuthorizer`, by the staff's single-user servers (the spawner puts
this folder on their ``PYTHONPATH``).

Before each server starts, :class:`SpawnHooks` (hub side):

1. reads the user's hub groups (``tenant:<t>:<role>``, ``unit:<t>:<code>``,
   see :mod:`parindex_lib.identity`);
2. makes the store's memberships of the user equal to them (audited, as
   the schema owner);
3. replaces the user's database access token (PostgreSQL opens only the
   user's tenants to it, with the role's rights), and gives it to the
   server in ``PARINDEX_DB_TOKEN`` with the application role's URL in
   ``PARINDEX_DB``: the owner's URL never leaves the hub;
4. chooses the server: analysts and researchers get JupyterLab (and the
   Voilà apps); everyone else (staff) gets only the Voilà apps, on a server
   where JupyterLab and the terminals are off, kernels accept only widget
   messages (no code execution from the browser), and notebooks and files
   cannot be written (:class:`StaffAuthorizer`).

When the server stops, the user's tokens are revoked.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from parindex_lib.identity import Membership, memberships_from_groups, server_kind  # noqa: E402
from parindex_lib.serve import NOTEBOOK_DIR, voila_arguments  # noqa: E402

__all__ = ["REPO", "STAFF_MESSAGE_TYPES", "STAFF_EXTENSIONS_OFF", "STAFF_DEFAULT_URL", "LAB_DEFAULT_URL",
           "server_voila_args", "server_args", "SpawnHooks", "StaffAuthorizer", "server_token_scopes"]

log = logging.getLogger("parindex.hub")

#: Kernel messages a staff member's browser may send: widgets only (Voilà's own list).
STAFF_MESSAGE_TYPES = ["comm_open", "comm_close", "comm_msg", "comm_info_request", "kernel_info_request",
                       "shutdown_request"]
#: Server extensions switched off on staff servers (only Voilà and the hub's own extension stay).
STAFF_EXTENSIONS_OFF = ("jupyterlab", "jupyter_lsp", "jupyter_server_terminals", "notebook", "notebook_shim",
                        "nbclassic", "jupyter_collaboration", "jupyter_server_ydoc", "jupyter_resource_usage")
STAFF_DEFAULT_URL = "/voila/render/index.ipynb"
LAB_DEFAULT_URL = "/lab"
#: Scopes of the server's own hub token: enough to ask the hub who its user is and in which groups.
server_token_scopes = ["access:servers!server", "users:activity!user", "read:users:name!user",
                       "read:users:groups!user"]


def server_voila_args() -> list[str]:
    """The workbench's Voilà settings (:func:`parindex_lib.serve.voila_arguments`) for a hub server.

    Voilà runs as an extension of the single-user Jupyter server there:
    the settings of the ``VoilaConfiguration`` and the kernel manager are
    kept as they are (tracebacks hidden, template and theme overrides from
    the URL refused, no file served outside the apps, kernel culling), the
    websocket message limit moves to the server's tornado settings, and
    preheating is off (it does not work under JupyterHub).
    """
    out = []
    for arg in voila_arguments(preheat=False):
        if arg.startswith(("--VoilaConfiguration.", "--MappingKernelManager.")):
            out.append(arg)
        elif arg.startswith("--Voila.tornado_settings="):
            out.append("--ServerApp.tornado_settings=" + arg.split("=", 1)[1])
    return out


def server_args(kind: str) -> list[str]:
    """Command-line arguments of ``jupyterhub-singleuser`` for a ``"voila"`` (staff) or ``"lab"`` server."""
    args = server_voila_args()
    if kind == "voila":
        off = ", ".join(f"'{e}': False" for e in STAFF_EXTENSIONS_OFF)
        args += [
            "--ServerApp.jpserver_extensions={'voila': True, " + off + "}",
            "--ServerApp.terminals_enabled=False",
            "--ServerApp.authorizer_class=parindex_hub.StaffAuthorizer",
            "--MappingKernelManager.allowed_message_types=[" + ", ".join(f"'{t}'" for t in STAFF_MESSAGE_TYPES) + "]",
            "--ContentsManager.allow_hidden=False",
        ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    return args


def _memberships(user: Any) -> tuple[dict[str, Membership], list[str]]:
    return memberships_from_groups(g.name for g in user.groups)


class SpawnHooks:
    """``pre_spawn_hook`` and ``post_stop_hook`` of the spawner.

    Parameters
    ----------
    admin_db
        The schema owner's store URL (PostgreSQL) or the SQLite path: used
        by the hub only, to synchronise memberships and issue tokens.
    app_db
        The URL the user servers get (the application role's); None when
        the servers get ``PARINDEX_DB`` otherwise (Kubernetes: from a Secret).
    token_ttl_seconds
        Lifetime of a server's database token (revoked when it stops).
    notebook_dir
        Where the Voilà apps are on the user servers' file system.
    lab_dir
        A lab user's folder on their server (None: their home folder, where
        the hub copies the apps into ``apps/``; Kubernetes: the pod's home,
        filled by the pod itself).
    python_path
        Folders the user servers need on ``PYTHONPATH`` (default: the
        repository and this folder; Kubernetes: none, the image installs both).
    """

    def __init__(self, admin_db: str, app_db: str | None, *, token_ttl_seconds: int = 7 * 24 * 3600,
                 notebook_dir: str | os.PathLike[str] = NOTEBOOK_DIR, lab_dir: str | None = None,
                 python_path: list[str] | None = None):
        self.admin_db = admin_db
        self.app_db = app_db
        self.token_ttl_seconds = int(token_ttl_seconds)
        self.notebook_dir = str(notebook_dir)
        self.lab_dir = lab_dir
        self.python_path = [str(REPO), str(HERE)] if python_path is None else list(python_path)
        self._store = None

    @property
    def store(self):
        if self._store is None:
            from parindex_lib.store import Store

            self._store = Store(self.admin_db)
        return self._store

    def _prepare(self, user_name: str, memberships: Mapping[str, Membership]) -> str | None:
        """Synchronise the store with the hub's groups and issue a fresh token (blocking; run in a thread)."""
        store = self.store
        report = store.sync_memberships(
            user_name, {t: (m.role, m.unit_codes) for t, m in memberships.items()}, by="jupyterhub")
        for key in ("unknown_tenants", "unknown_units"):
            if report[key]:
                log.warning("parindex: %s of %s not in the store: %s", key.replace("_", " "), user_name,
                            ", ".join(report[key]))
        store.revoke_access_tokens(user_name)
        if store.dialect != "postgresql":
            return None
        return store.issue_access_token(user_name, ttl_seconds=self.token_ttl_seconds, by="jupyterhub")

    async def pre_spawn_hook(self, spawner: Any) -> None:
        user = spawner.user
        memberships, problems = _memberships(user)
        for p in problems:
            spawner.log.warning("parindex: groups of %s: %s", user.name, p)
        if not memberships:
            from tornado import web

            raise web.HTTPError(403, f"{user.name} is in no parindex tenant: a hub admin adds them to a group "
                                     "tenant:<tenant>:<role> (see deploy/README.md)")
        token = await asyncio.to_thread(self._prepare, user.name, memberships)
        kind = server_kind(memberships)
        tenant = sorted(memberships)[0]
        env = {
            "PARINDEX_TENANT": tenant,
            "PARINDEX_USER": user.name,
            "PARINDEX_SERVER_KIND": kind,
            "MPLBACKEND": "Agg",
        }
        if self.python_path:
            env["PYTHONPATH"] = os.pathsep.join(self.python_path)
        if self.app_db:
            env["PARINDEX_DB"] = self.app_db
        if token:
            env["PARINDEX_DB_TOKEN"] = token
        spawner.environment = {**spawner.environment, **env}
        spawner.args = server_args(kind)
        if kind == "voila":
            spawner.notebook_dir = self.notebook_dir
            spawner.default_url = STAFF_DEFAULT_URL
        elif self.lab_dir is None:
            home = Path(getattr(spawner, "home_dir", "") or Path.home())
            await asyncio.to_thread(_copy_apps, home / "apps")
            spawner.notebook_dir = str(home)
            spawner.default_url = LAB_DEFAULT_URL
        else:
            spawner.notebook_dir = self.lab_dir
            spawner.default_url = LAB_DEFAULT_URL
        spawner.log.info("parindex: %s starts a %s server in tenant %s (%s)", user.name, kind, tenant,
                         ", ".join(f"{t}:{m.role}" for t, m in sorted(memberships.items())))

    async def post_stop_hook(self, spawner: Any) -> None:
        try:
            await asyncio.to_thread(self.store.revoke_access_tokens, spawner.user.name)
        except Exception:  # noqa: BLE001  (a failed revocation must not stop the hub; the token expires anyway)
            spawner.log.exception("parindex: revoking the tokens of %s failed", spawner.user.name)


def _copy_apps(target: Path) -> None:
    """A fresh copy of the Voilà apps in a lab user's home (their edits never reach other users)."""
    target.mkdir(parents=True, exist_ok=True)
    for nb in NOTEBOOK_DIR.glob("*.ipynb"):
        shutil.copyfile(nb, target / nb.name)


try:  # the staff servers import this; the hub imports it too (jupyter_server is installed beside it)
    from jupyter_server.auth import Authorizer
except ImportError:  # pragma: no cover
    Authorizer = object  # type: ignore[misc,assignment]


class StaffAuthorizer(Authorizer):  # type: ignore[misc,valid-type]
    """A staff server's rules: read, use kernels through the Voilà pages; write nothing, run no terminal.

    Kernels stay usable (a Voilà page talks to its kernel over the kernel
    websocket, which needs ``execute`` on ``kernels``); what a kernel accepts
    from the browser is limited separately to widget messages
    (``MappingKernelManager.allowed_message_types``), so no code runs.
    Contents, files, sessions, terminals, configuration and the rest are
    read-only or refused.
    """

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        if resource == "kernels":
            return True
        if resource == "terminals":
            return False
        return action == "read"
