"""Who is using the workbench: from JupyterHub, or (standalone) from the environment.

Under JupyterHub the user's name comes from the hub (``JUPYTERHUB_USER``,
confirmed by the hub API ``$JUPYTERHUB_API_URL/user`` with the server's
``JUPYTERHUB_API_TOKEN``) and their tenants, roles and units from the hub
*groups* the API returns. Nothing a page's visitor can change (a URL
parameter, a widget value, a cookie) enters into it. Standalone
(``parindex serve``), the workbench is single-user: ``PARINDEX_USER`` and
``PARINDEX_TENANT`` (default ``demo``), and the store's membership gives the
role.

Hub groups (the scheme; see ``deploy/README.md``):

``tenant:<tenant>:<role>``
    membership of a tenant with a role: ``tenant:hanoi:editor``. Roles:
    admin, appraiser, editor, analyst, researcher. One role per tenant (a
    user in two role groups of one tenant is refused that tenant).
``unit:<tenant>:<unit code>``
    one unit an editor of that tenant may self-assess: ``unit:hanoi:X001``.

JupyterHub custom scopes are not used: the hub does not enforce them, and
the groups carry everything. The library enforces the roles
(:mod:`parindex_lib.roles`), and on PostgreSQL the database enforces them
again through the access token the spawner issues from the same groups.

Examples
--------
>>> ms, problems = memberships_from_groups(["tenant:hn:editor", "unit:hn:X001", "unit:hn:X002", "staff"])
>>> ms["hn"]
Membership(tenant='hn', role='editor', unit_codes=('X001', 'X002'))
>>> problems
[]
>>> who = current_identity({"PARINDEX_USER": "lan", "PARINDEX_TENANT": "hn"})
>>> (who.user, who.tenant, who.source)
('lan', 'hn', 'environment')
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import AccessDenied, ParindexError
from .models import ROLES
from .roles import LAB_ROLES

__all__ = [
    "Identity",
    "Membership",
    "TENANT_GROUP_PREFIX",
    "UNIT_GROUP_PREFIX",
    "tenant_group",
    "unit_group",
    "memberships_from_groups",
    "server_kind",
    "hub_user_model",
    "current_identity",
]

TENANT_GROUP_PREFIX = "tenant:"
UNIT_GROUP_PREFIX = "unit:"
_TIMEOUT = 10.0


@dataclass(frozen=True)
class Membership:
    """A user's place in one tenant.

    Attributes
    ----------
    tenant : str
    role : str
        admin, appraiser, editor, analyst or researcher.
    unit_codes : tuple of str or None
        For an editor, the units they may self-assess (sorted); None for
        other roles.
    """

    tenant: str
    role: str
    unit_codes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Identity:
    """Who is using the workbench, and in which tenant.

    Attributes
    ----------
    user : str
    tenant : str
        The tenant this process works in (one of ``memberships`` under the
        hub).
    role : str or None
        The role in ``tenant`` (None standalone: the store's membership
        decides).
    unit_codes : tuple of str or None
        An editor's units in ``tenant``.
    memberships : dict
        Tenant code -> :class:`Membership`, every tenant the hub puts the
        user in (empty standalone).
    source : str
        ``"jupyterhub"`` or ``"environment"``.
    problems : tuple of str
        Hub groups that could not be read (shown to admins; never widen access).
    """

    user: str
    tenant: str
    role: str | None = None
    unit_codes: tuple[str, ...] | None = None
    memberships: Mapping[str, Membership] = field(default_factory=dict)
    source: str = "environment"
    problems: tuple[str, ...] = ()

    @property
    def tenants(self) -> list[str]:
        """The tenants the user may switch to (sorted)."""
        return sorted(self.memberships) if self.memberships else [self.tenant]

    def with_tenant(self, tenant: str) -> "Identity":
        """The same user in another of their tenants.

        A person may choose among *their own* tenants (a dropdown filled
        from :attr:`tenants`); the choice is checked here.

        Raises
        ------
        AccessDenied
            When the user is not a member of ``tenant``.
        """
        if self.source == "environment":
            return replace(self, tenant=str(tenant))
        m = self.memberships.get(str(tenant))
        if m is None:
            raise AccessDenied(f"user {self.user!r} is not a member of tenant {tenant!r} "
                               f"(their tenants: {', '.join(self.tenants) or 'none'})")
        return replace(self, tenant=m.tenant, role=m.role, unit_codes=m.unit_codes)

    def session(self, store: Any):
        """Open the store session of this identity, checking that the store agrees with the hub.

        Parameters
        ----------
        store
            A :class:`parindex_lib.store.Store`.

        Returns
        -------
        TenantSession

        Raises
        ------
        AccessDenied
            When the user is not a member of the tenant in the store, or
            (under the hub) when the store's role or units differ from the
            hub's groups: the hub changed them since the server started;
            restarting the server (hub control panel) brings the store in line.
        """
        s = store.session(tenant=self.tenant, user=self.user)
        if self.source == "jupyterhub":
            theirs = (s.role, tuple(sorted(s.unit_codes)) if s.unit_codes is not None and s.role == "editor" else None)
            ours = (self.role, self.unit_codes if self.role == "editor" else None)
            if theirs != ours:
                s.close()
                raise AccessDenied(
                    f"the hub makes {self.user!r} {_describe(*ours)} of tenant {self.tenant!r} but the store says "
                    f"{_describe(*theirs)}: stop and start your server from the hub's control panel to bring them "
                    "in line")
        return s


def _describe(role: str | None, units: tuple[str, ...] | None) -> str:
    if not role:
        return "no member"
    return f"{role}" + (f" of units {', '.join(units)}" if units else (" of no unit" if role == "editor" else ""))


def tenant_group(tenant: str, role: str) -> str:
    """The hub group of a role in a tenant: ``tenant:<tenant>:<role>``."""
    if role not in ROLES:
        raise ValueError(f"{role!r} is not one of {', '.join(ROLES)}")
    return f"{TENANT_GROUP_PREFIX}{tenant}:{role}"


def unit_group(tenant: str, unit_code: str) -> str:
    """The hub group of one editor's unit: ``unit:<tenant>:<unit code>``."""
    return f"{UNIT_GROUP_PREFIX}{tenant}:{unit_code}"


def memberships_from_groups(groups: Iterable[str]) -> tuple[dict[str, Membership], list[str]]:
    """Read tenants, roles and units from hub group names.

    Parameters
    ----------
    groups
        Group names, e.g. ``["tenant:hn:editor", "unit:hn:X001"]``; other
        groups are ignored.

    Returns
    -------
    memberships : dict
        Tenant -> :class:`Membership`.
    problems : list of str
        A tenant with two roles (refused: no membership for it), an unknown
        role, units of a tenant without a role, units for a non-editor.
    """
    roles: dict[str, set[str]] = {}
    units: dict[str, set[str]] = {}
    problems: list[str] = []
    for g in sorted(set(map(str, groups))):
        if g.startswith(TENANT_GROUP_PREFIX):
            tenant, _, role = g[len(TENANT_GROUP_PREFIX):].rpartition(":")
            if not tenant or role not in ROLES:
                problems.append(f"group {g!r}: expected tenant:<tenant>:<role> with a role among {', '.join(ROLES)}")
                continue
            roles.setdefault(tenant, set()).add(role)
        elif g.startswith(UNIT_GROUP_PREFIX):
            tenant, sep, unit = g[len(UNIT_GROUP_PREFIX):].partition(":")
            if not tenant or not sep or not unit:
                problems.append(f"group {g!r}: expected unit:<tenant>:<unit code>")
                continue
            units.setdefault(tenant, set()).add(unit)
    out: dict[str, Membership] = {}
    for tenant, rs in sorted(roles.items()):
        if len(rs) > 1:
            problems.append(f"tenant {tenant!r}: groups give several roles ({', '.join(sorted(rs))}); "
                            "keep one group tenant:<tenant>:<role> per tenant")
            continue
        role = next(iter(rs))
        codes = tuple(sorted(units.get(tenant, ()))) if role == "editor" else None
        if role != "editor" and units.get(tenant):
            problems.append(f"tenant {tenant!r}: unit groups are ignored for a{'n' if role[0] in 'aeiou' else ''} {role}")
        out[tenant] = Membership(tenant, role, codes)
    for tenant in sorted(set(units) - set(roles)):
        problems.append(f"tenant {tenant!r}: unit groups without a group tenant:{tenant}:<role>")
    return out, problems


def server_kind(memberships: Mapping[str, Membership]) -> str:
    """``"lab"`` for a user who is an analyst or researcher in some tenant, else ``"voila"`` (staff)."""
    return "lab" if any(m.role in LAB_ROLES for m in memberships.values()) else "voila"


def hub_user_model(environ: Mapping[str, str] | None = None, *, opener: Callable[..., Any] | None = None) -> dict:
    """The hub's record of this server's user: ``GET $JUPYTERHUB_API_URL/user``.

    Needs the scopes ``read:users:name!user`` and ``read:users:groups!user``
    in ``Spawner.server_token_scopes`` (the deploy configuration grants them).

    Raises
    ------
    ParindexError
        When the hub cannot be reached or answers with an error.
    """
    env = os.environ if environ is None else environ
    api = (env.get("JUPYTERHUB_API_URL") or "").rstrip("/")
    token = env.get("JUPYTERHUB_API_TOKEN") or ""
    if not api or not token:
        raise ParindexError("JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN are not set: not a JupyterHub server")
    req = urllib.request.Request(api + "/user", headers={"Authorization": f"token {token}",
                                                          "Accept": "application/json"})
    try:
        with (opener or urllib.request.urlopen)(req, timeout=_TIMEOUT) as resp:
            return json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise ParindexError(f"the hub refused to say who this server's user is (HTTP {exc.code} from {api}/user)") \
            from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ParindexError(f"the hub at {api} cannot be reached to learn who the user is: {exc}") from None


def current_identity(environ: Mapping[str, str] | None = None, *, tenant: str | None = None,
                     opener: Callable[..., Any] | None = None) -> Identity:
    """Who is using this process.

    Under JupyterHub (``JUPYTERHUB_USER`` set): the user the hub names, with
    the tenants, roles and units of their hub groups, asked of the hub API
    each time (a group removed on the hub takes effect at the next page).
    Standalone: ``PARINDEX_USER`` and ``PARINDEX_TENANT`` (default ``demo``).

    Parameters
    ----------
    environ
        The environment (default ``os.environ``).
    tenant
        Under the hub, which of the user's tenants to work in: a choice the
        person made among :attr:`Identity.tenants`, checked here. Default:
        ``PARINDEX_TENANT`` when it is one of them (the spawner sets it),
        else the user's only or first tenant.
    opener
        For tests: replaces :func:`urllib.request.urlopen`.

    Returns
    -------
    Identity

    Raises
    ------
    AccessDenied
        Under the hub: the hub's user differs from ``JUPYTERHUB_USER``, the
        server was not given the groups scope, the user is in no tenant, or
        ``tenant`` is not one of theirs.
    ParindexError
        The hub cannot be reached.
    """
    env = os.environ if environ is None else environ
    hub_user = env.get("JUPYTERHUB_USER")
    if not hub_user:
        user = env.get("PARINDEX_USER") or "demo"
        return Identity(user=user, tenant=str(tenant or env.get("PARINDEX_TENANT") or "demo"))
    model = hub_user_model(env, opener=opener)
    name = model.get("name")
    if name != hub_user:
        raise AccessDenied(f"the hub says this server's token belongs to {name!r}, not {hub_user!r}")
    if "groups" not in model:
        raise AccessDenied("the hub did not tell this server the user's groups: grant 'read:users:groups!user' "
                           "in c.Spawner.server_token_scopes (deploy/jupyterhub_config.py does)")
    memberships, problems = memberships_from_groups(model.get("groups") or [])
    if not memberships:
        raise AccessDenied(f"user {hub_user!r} is in no tenant: a hub admin adds them to a group "
                           "tenant:<tenant>:<role>" + (f" ({'; '.join(problems)})" if problems else ""))
    wanted = tenant or env.get("PARINDEX_TENANT")
    if tenant is None and wanted not in memberships:
        wanted = sorted(memberships)[0]
    who = Identity(user=hub_user, tenant="", memberships=memberships, source="jupyterhub",
                   problems=tuple(problems))
    return who.with_tenant(str(wanted))
