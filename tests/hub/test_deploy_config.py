"""The single-machine hub and the Kubernetes values stay in step, and the values use only keys the chart knows.

No hub or cluster is started: ``deploy/jupyterhub_config.py`` and the values'
``hub.extraConfig`` are run against traitlets ``Config`` objects, and the
spawn hook that both install is run on a stand-in spawner against a SQLite
store.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from traitlets.config import Config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
sys.path.insert(0, str(DEPLOY / "hub"))

import parindex_hub  # noqa: E402

from parindex_lib.identity import memberships_from_groups  # noqa: E402
from parindex_lib.serve import voila_arguments  # noqa: E402

#: The keys of the Zero to JupyterHub chart (4.1.0 defaults) that the values may use. A value of None
#: marks a free-form mapping (traitlets config, env, Python snippets, Kubernetes objects).
CHART_KEYS = {
    "hub": {
        "image": {"name": 0, "tag": 0, "pullPolicy": 0, "pullSecrets": 0},
        "config": None, "extraConfig": None, "extraEnv": None, "extraFiles": None, "loadRoles": None,
        "cookieSecret": 0, "baseUrl": 0, "concurrentSpawnLimit": 0, "activeServerLimit": 0,
        "db": {"type": 0, "url": 0, "password": 0, "upgrade": 0, "pvc": None},
        "resources": None, "networkPolicy": None, "nodeSelector": None, "tolerations": None,
        "templatePaths": 0, "templateVars": None, "services": None, "pdb": None,
    },
    "singleuser": {
        "image": {"name": 0, "tag": 0, "pullPolicy": 0, "pullSecrets": 0},
        "cmd": 0, "defaultUrl": 0, "extraEnv": None, "extraFiles": None, "lifecycleHooks": None,
        "memory": {"limit": 0, "guarantee": 0}, "cpu": {"limit": 0, "guarantee": 0},
        "storage": {"type": 0, "capacity": 0, "homeMountPath": 0, "extraVolumes": None, "extraVolumeMounts": None,
                    "dynamic": None, "static": None, "extraLabels": None},
        "startTimeout": 0, "uid": 0, "fsGid": 0, "profileList": None, "nodeSelector": None,
        "networkPolicy": {"enabled": 0, "ingress": None, "egress": None, "interNamespaceAccessLabels": 0,
                          "allowedIngressPorts": None,
                          "egressAllowRules": {"cloudMetadataServer": 0, "dnsPortsCloudMetadataServer": 0,
                                               "dnsPortsKubeSystemNamespace": 0, "dnsPortsPrivateIPs": 0,
                                               "nonPrivateIPs": 0, "privateIPs": 0}},
        "cloudMetadata": {"blockWithIptables": 0, "ip": 0}, "allowPrivilegeEscalation": 0,
        "extraPodConfig": None, "initContainers": None, "extraContainers": None,
    },
    "cull": {"enabled": 0, "users": 0, "adminUsers": 0, "removeNamedServers": 0, "timeout": 0, "every": 0,
             "concurrency": 0, "maxAge": 0},
    "scheduling": {"userScheduler": {"enabled": 0, "replicas": 0}, "podPriority": {"enabled": 0},
                   "userPlaceholder": {"enabled": 0, "replicas": 0}, "corePods": None, "userPods": None},
    "prePuller": {"hook": {"enabled": 0, "pullOnlyOnChanges": 0}, "continuous": {"enabled": 0},
                  "extraImages": None},
    "proxy": {"service": {"type": 0, "annotations": None, "loadBalancerIP": 0, "loadBalancerSourceRanges": None},
              "https": {"enabled": 0, "type": 0, "hosts": None, "letsencrypt": None, "manual": None,
                        "secret": None}, "chp": None, "traefik": None},
    "ingress": {"enabled": 0, "annotations": None, "ingressClassName": 0, "hosts": None, "pathSuffix": 0,
                "pathType": 0, "tls": None, "extraPaths": None},
    "debug": {"enabled": 0},
}


def _values() -> dict:
    return yaml.safe_load((DEPLOY / "kubernetes" / "values.yaml").read_text(encoding="utf-8"))


def _unknown_keys(values: dict, allowed: dict | None, path: str = "") -> list[str]:
    out = []
    for key, value in values.items():
        where = f"{path}.{key}" if path else key
        if key not in allowed:
            out.append(where)
            continue
        sub = allowed[key]
        if isinstance(sub, dict):
            if not isinstance(value, dict):
                out.append(f"{where} (a mapping)")
            else:
                out += _unknown_keys(value, sub, where)
    return out


@pytest.fixture
def single_machine(tmp_path, monkeypatch) -> Config:
    """deploy/jupyterhub_config.py evaluated with its defaults (state in a temporary folder)."""
    for name in list(os.environ):
        if name.startswith("PARINDEX_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PARINDEX_HUB_STATE", str(tmp_path / "hub"))
    c = Config()
    path = DEPLOY / "jupyterhub_config.py"
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), {"get_config": lambda: c,
                                                                         "__file__": str(path)})
    return c


@pytest.fixture
def kubernetes(monkeypatch, tmp_path) -> Config:
    """The values' hub.config and hub.extraConfig evaluated as the chart's hub does."""
    values = _values()
    c = Config(values["hub"]["config"])
    monkeypatch.setenv("PARINDEX_ADMIN_DB", str(tmp_path / "k8s.sqlite"))
    monkeypatch.setenv("PARINDEX_TOKEN_TTL", values["hub"]["extraEnv"]["PARINDEX_TOKEN_TTL"])
    for name, code in sorted(values["hub"]["extraConfig"].items()):
        exec(compile(code, name, "exec"), {"c": c, "get_config": lambda: c})
    return c


def test_values_use_only_keys_the_chart_knows():
    assert _unknown_keys(_values(), CHART_KEYS) == []
    env = _values()["singleuser"]["extraEnv"]["PARINDEX_DB"]
    assert env["valueFrom"]["secretKeyRef"] == {"name": "parindex-db", "key": "app-url"}
    secret = yaml.safe_load((DEPLOY / "kubernetes" / "secret.example.yaml").read_text(encoding="utf-8"))
    assert set(secret["stringData"]) == {"owner-url", "app-url"}


def test_same_authentication_roles_and_servers(single_machine, kubernetes):
    values = _values()
    sm, k8s = single_machine, kubernetes
    assert sm.JupyterHub.authenticator_class == k8s.JupyterHub.authenticator_class == "native"
    assert dict(sm.NativeAuthenticator) == values["hub"]["config"]["NativeAuthenticator"]
    assert sm.Authenticator.allow_all is k8s.Authenticator.allow_all is True
    assert sm.Spawner.disable_user_config is k8s.KubeSpawner.disable_user_config is True
    assert sm.Spawner.server_token_scopes == k8s.KubeSpawner.server_token_scopes == parindex_hub.server_token_scopes
    assert "read:users:groups!user" in parindex_hub.server_token_scopes
    # the same hooks: groups -> memberships and token, the server each role gets, the Voilà settings
    for hook in ("pre_spawn_hook", "post_stop_hook"):
        a, b = getattr(sm.Spawner, hook), getattr(k8s.KubeSpawner, hook)
        assert a.__func__ is b.__func__ is getattr(parindex_hub.SpawnHooks, hook)
    assert sm.Spawner.default_url == values["singleuser"]["defaultUrl"] == parindex_hub.STAFF_DEFAULT_URL
    assert values["singleuser"]["cmd"] == "jupyterhub-singleuser" == Path(sm.Spawner.cmd[0]).name
    assert values["cull"]["enabled"] is True


def test_voila_settings_of_the_hub_servers_are_the_workbench_settings():
    wanted = [a for a in voila_arguments(preheat=False) if a.startswith(("--VoilaConfiguration.",
                                                                            "--MappingKernelManager."))]
    for kind in ("voila", "lab"):
        args = parindex_hub.server_args(kind)
        assert all(a in args for a in wanted), (kind, set(wanted) - set(args))
        assert any(a.startswith("--ServerApp.tornado_settings=") and "websocket_max_message_size" in a for a in args)
        assert "--VoilaConfiguration.show_tracebacks=False" in args
    staff = parindex_hub.server_args("voila")
    assert "--ServerApp.terminals_enabled=False" in staff
    assert "--ServerApp.authorizer_class=parindex_hub.StaffAuthorizer" in staff
    assert any("'jupyterlab': False" in a for a in staff)
    assert any(a.startswith("--MappingKernelManager.allowed_message_types=") and "execute_request" not in a
               for a in staff)


def _spawner(name: str, groups: list[str], home: Path):
    return SimpleNamespace(user=SimpleNamespace(name=name, groups=[SimpleNamespace(name=g) for g in groups]),
                           environment={"KEEP": "1"}, args=[], notebook_dir="", default_url="", home_dir=str(home),
                           log=SimpleNamespace(info=lambda *a: None, warning=lambda *a: None))


def test_the_kubernetes_hook_and_the_single_machine_hook_start_the_same_servers(kubernetes, tmp_path,
                                                                              small_framework):
    import pandas as pd

    from parindex_lib.store import Store

    store = Store(os.environ["PARINDEX_ADMIN_DB"])
    store.create_tenant("A", "A", "ann")
    with store.session(tenant="A", user="ann") as s:
        s.upsert_units(pd.DataFrame({"code": ["A01"], "name": ["a"], "kind": ["commune"]}))
    store.dispose()
    k8s_hooks = kubernetes.KubeSpawner.pre_spawn_hook.__self__
    local_hooks = parindex_hub.SpawnHooks(os.environ["PARINDEX_ADMIN_DB"], "postgresql+psycopg://app@db/parindex")
    for groups, kind in ((["tenant:A:editor", "unit:A:A01"], "voila"), (["tenant:A:researcher"], "lab")):
        spawned = {}
        for where, hooks in (("k8s", k8s_hooks), ("local", local_hooks)):
            sp = _spawner("eve", groups, tmp_path / where / "eve")
            asyncio.run(hooks.pre_spawn_hook(sp))
            spawned[where] = sp
        k8s, local = spawned["k8s"], spawned["local"]
        assert k8s.args == local.args == parindex_hub.server_args(kind)
        assert k8s.default_url == local.default_url
        assert k8s.environment["PARINDEX_TENANT"] == local.environment["PARINDEX_TENANT"] == "A"
        assert k8s.environment["PARINDEX_USER"] == "eve" and k8s.environment["KEEP"] == "1"
        assert "PARINDEX_DB" not in k8s.environment  # from the Secret, not written into the pod spec
        assert "PYTHONPATH" not in k8s.environment
        assert local.environment["PARINDEX_DB"].startswith("postgresql")
        if kind == "voila":
            assert k8s.notebook_dir == "/srv/parindex/notebooks"
        else:
            assert k8s.notebook_dir == "/home/jovyan" and (tmp_path / "local" / "eve" / "apps" / "index.ipynb").exists()
    with pytest.raises(Exception, match="no parindex tenant"):
        asyncio.run(k8s_hooks.pre_spawn_hook(_spawner("stranger", ["staff"], tmp_path / "x")))


def test_group_files_follow_the_scheme():
    groups = json.loads((DEPLOY / "hub" / "demo_groups.json").read_text(encoding="utf-8"))
    for name in groups:
        ms, problems = memberships_from_groups([name])
        assert ms and not problems, name
