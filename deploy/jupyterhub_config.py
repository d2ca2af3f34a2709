"""JupyterHub configuration of the parindex workbench (one machine).

Start it with ``deploy/hub/start`` (see deploy/README.md). Everything that
differs between machines comes from the environment:

========================== ==================================================
PARINDEX_DB                the store the user servers use: the application
                           role's PostgreSQL URL (default: the embedded
                           SQLite file ``var/parindex.sqlite``, evaluation
                           only: no row-level security)
PARINDEX_ADMIN_DB          the schema owner's URL, for the hub only (default:
                           PARINDEX_DB)
PARINDEX_HUB_IP            address the proxy listens on (default 127.0.0.1)
PARINDEX_HUB_PORT          its port (default 8000)
PARINDEX_HUB_API_PORT      the hub's own port (default 8081)
PARINDEX_PROXY_API_PORT    the proxy's API port (default 8001)
PARINDEX_HUB_STATE         folder of the hub's database, cookie secret and
                           the servers' home folders (default var/hub)
PARINDEX_HUB_ADMINS        hub admins, comma-separated (default ``admin``)
PARINDEX_HUB_AUTH          ``native`` (default: sign-up, admin approval),
                           ``shared`` (one shared password, tests only)
PARINDEX_HUB_SHARED_PASSWORD  with ``shared``: the password (>= 8 characters)
PARINDEX_HUB_ALLOWED_USERS with ``shared``: who may sign in (comma-separated)
PARINDEX_HUB_GROUPS        a JSON file of groups to load at start
                           (``{"tenant:demo:admin": {"users": ["admin"]}}``)
PARINDEX_HUB_SPAWNER       ``simple`` (default: every server runs as the
                           hub's system user, in its own home folder) or
                           ``local`` (one system user per hub user: the
                           isolation a deployment with JupyterLab users needs)
PARINDEX_TOKEN_TTL         lifetime of a server's database token in seconds
                           (default 604800, a week; revoked at stop)
========================== ==================================================

OAuth / OpenID Connect and LDAP: see deploy/README.md (commented examples).
The groups, roles and Voilà settings here are kept in step with
``deploy/kubernetes/values.yaml`` by ``tests/hub/test_deploy_config.py``.
"""

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "hub"))
sys.path.insert(0, str(REPO))

import parindex_hub  # noqa: E402

c = get_config()  # type: ignore[name-defined]  # noqa: F821

env = os.environ.get
state = Path(env("PARINDEX_HUB_STATE") or REPO / "var" / "hub").resolve()
state.mkdir(parents=True, exist_ok=True)
(state / "users").mkdir(exist_ok=True)

# -- network: loopback by default ----------------------------------------------------
c.JupyterHub.ip = env("PARINDEX_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(env("PARINDEX_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env("PARINDEX_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{int(env('PARINDEX_PROXY_API_PORT', '8001'))}"
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

# -- who signs in --------------------------------------------------------------------------
admins = {u.strip() for u in env("PARINDEX_HUB_ADMINS", "admin").split(",") if u.strip()}
c.Authenticator.admin_users = admins
auth = env("PARINDEX_HUB_AUTH", "native")
if auth == "native":
    import nativeauthenticator

    c.JupyterHub.authenticator_class = "native"
    c.JupyterHub.template_paths = [str(Path(nativeauthenticator.__file__).parent / "templates")]
    c.NativeAuthenticator.open_signup = False          # a hub admin approves every sign-up
    c.NativeAuthenticator.minimum_password_length = 10
    c.NativeAuthenticator.check_common_password = True
    c.NativeAuthenticator.allowed_failed_logins = 5
    c.NativeAuthenticator.seconds_before_next_try = 600
    c.Authenticator.allow_all = True                   # approval is the gate; groups give the rights
elif auth == "shared":
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = env("PARINDEX_HUB_SHARED_PASSWORD", "")
    c.Authenticator.allowed_users = {u.strip() for u in env("PARINDEX_HUB_ALLOWED_USERS", "").split(",") if u.strip()}
else:
    raise SystemExit(f"PARINDEX_HUB_AUTH={auth!r}: use native or shared, or configure OAuth/LDAP "
                     "as deploy/README.md shows")

# -- tenants and roles are hub groups: tenant:<tenant>:<role>, unit:<tenant>:<unit code> ----------
groups_file = env("PARINDEX_HUB_GROUPS")
if groups_file:
    c.JupyterHub.load_groups = json.loads(Path(groups_file).read_text(encoding="utf-8"))

# -- the store ------------------------------------------------------------------------------------
app_db = env("PARINDEX_DB") or str(REPO / "var" / "parindex.sqlite")
admin_db = env("PARINDEX_ADMIN_DB") or app_db
if "postgresql" not in app_db:
    print("parindex: the hub runs on the embedded SQLite store: for evaluation only (no row-level security "
          "between tenants); set PARINDEX_DB and PARINDEX_ADMIN_DB to PostgreSQL for real use", file=sys.stderr)

# -- the user servers ---------------------------------------------------------------------------------
spawner = env("PARINDEX_HUB_SPAWNER", "simple")
if spawner == "simple":
    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = str(state / "users" / "{username}")
elif spawner == "local":
    c.JupyterHub.spawner_class = "localprocess"
else:
    raise SystemExit(f"PARINDEX_HUB_SPAWNER={spawner!r}: use simple or local (Kubernetes: deploy/kubernetes)")
c.Spawner.cmd = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
c.Spawner.disable_user_config = True        # no ~/.jupyter configuration can undo the settings below
c.Spawner.server_token_scopes = parindex_hub.server_token_scopes
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90
c.Spawner.mem_limit = env("PARINDEX_SERVER_MEM_LIMIT") or None   # enforced by KubeSpawner, advisory here
hooks = parindex_hub.SpawnHooks(admin_db, app_db, token_ttl_seconds=int(env("PARINDEX_TOKEN_TTL", "604800")))
c.Spawner.pre_spawn_hook = hooks.pre_spawn_hook       # groups -> store memberships, database token, server kind
c.Spawner.post_stop_hook = hooks.post_stop_hook       # revoke the server's database token
c.Spawner.default_url = parindex_hub.STAFF_DEFAULT_URL   # the hook sets /lab for analysts and researchers
