"""Start the Voilà workbench on the embedded store.

The Voilà settings live here once, so that ``parindex serve``, the tests and
the JupyterHub configuration in ``deploy/`` use the same ones: preheated
kernels, kernel culling, tracebacks hidden, template and theme overrides
from the URL refused, and a websocket message limit large enough for the
biggest score sheet a province sends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["NOTEBOOK_DIR", "UPLOAD_LIMIT_BYTES", "voila_arguments", "serve"]

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
#: Largest upload accepted by the apps (a province's biggest sheet is about 20 MB;
#: base64 in a websocket message adds a third).
UPLOAD_LIMIT_BYTES = 20 * 1024 * 1024
_WEBSOCKET_LIMIT = 64 * 1024 * 1024


def voila_arguments(*, port: int = 8866, ip: str = "127.0.0.1", preheat: bool = True,
                    cull_idle_seconds: int = 900, cull_interval_seconds: int = 60) -> list[str]:
    """Command-line arguments for ``voila`` with the workbench's settings.

    Parameters
    ----------
    port, ip
        Where to listen (loopback by default).
    preheat
        Keep one executed kernel ready per app (Voilà refuses preheating with
        progressive rendering or a prelaunch hook, neither of which is used).
    cull_idle_seconds, cull_interval_seconds
        Kernels of closed pages are shut down after this idle time.

    Returns
    -------
    list of str
    """
    args = [
        str(NOTEBOOK_DIR),
        "--no-browser",
        f"--port={port}",
        f"--Voila.ip={ip}",
        "--VoilaConfiguration.show_tracebacks=False",
        "--VoilaConfiguration.allow_template_override=NO",
        "--VoilaConfiguration.allow_theme_override=NO",
        "--VoilaConfiguration.file_allowlist=[]",
        f"--MappingKernelManager.cull_interval={cull_interval_seconds}",
        f"--MappingKernelManager.cull_idle_timeout={cull_idle_seconds}",
        "--MappingKernelManager.cull_connected=False",
        f"--Voila.tornado_settings={{'websocket_max_message_size': {_WEBSOCKET_LIMIT}}}",
    ]
    if preheat:
        args += ["--preheat_kernel=True", "--pool_size=1"]
    return args


def _wait_for_port(ip: str, port: int, proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    """Wait until Voilà accepts connections (without opening a notebook, which would start a kernel)."""
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection((ip, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.3)
    return False


def serve(*, port: int = 8866, ip: str = "127.0.0.1", db: str | None = None,
          tenant: str = "demo", user: str = "demo") -> int:
    """Run Voilà in the foreground until interrupted.

    The store URL, tenant and user reach the app kernels through the
    environment (``PARINDEX_DB``, ``PARINDEX_TENANT``, ``PARINDEX_USER``):
    standalone, the workbench is single-user on the embedded store.

    Returns
    -------
    int
        Voilà's exit status.
    """
    from .store import Store

    env = dict(os.environ)
    env["PARINDEX_DB"] = Store(db).url
    env["PARINDEX_TENANT"] = tenant
    env["PARINDEX_USER"] = user
    env["PARINDEX_EXTERNAL_DIR"] = str(Path(env.get("PARINDEX_EXTERNAL_DIR", "var/external")).resolve())
    env.setdefault("MPLBACKEND", "Agg")
    voila = shutil.which("voila", path=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""))
    if voila is None:
        from .errors import ParindexError

        raise ParindexError("voila is not installed in this environment (run scripts/start)")
    print(f"parindex workbench: http://{ip}:{port}/voila/render/index.ipynb  (store {env['PARINDEX_DB']}, "
          f"tenant {tenant}; Ctrl+C stops)", flush=True)
    proc = subprocess.Popen([voila, *voila_arguments(port=port, ip=ip)], env=env)
    try:
        if _wait_for_port(ip, port, proc):
            print(f"parindex workbench ready: http://{ip}:{port}/voila/render/index.ipynb", flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()
