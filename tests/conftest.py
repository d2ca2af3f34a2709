"""Shared fixtures: real databases for the store tests.

``sqlite_url``
    A fresh SQLite file in the test's ``tmp_path``.
``pg_url``
    A fresh database on a real PostgreSQL server. The server is started once
    per test session with ``initdb`` / ``pg_ctl`` in a temporary folder on
    127.0.0.1 and a free port (as the ``postgres`` user when running as
    root), and stopped at the end. Set ``PARINDEX_TEST_PG_URL`` to the admin
    URL of a server you run yourself (e.g. a CI service) to use it instead;
    ``PARINDEX_PG_BIN`` to the folder holding ``initdb`` and ``pg_ctl``.
    Without PostgreSQL the tests that need it are skipped, or fail when
    ``CI=true``.
``store_url``
    Both of the above, as parameters ``sqlite`` and ``postgres``.
``small_framework``
    A small scorable framework (two fields, five leaves, one survey leaf,
    one rubric) read from inline YAML.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from parindex_lib.framework import Framework, read_framework_yaml

SMALL_FRAMEWORK_YAML = """
id: small_test
name_vi: "Bộ tiêu chí thử nghiệm (không chính thức)"
name_en: "Test criteria set (not official)"
level: department
kinds: [department, commune]
years: [2023, 2024, 2025]
max_points: 20
status: demo
bonus_cap: 2
penalty_cap: 3
nodes:
  - code: "1"
    name_vi: "Công tác chỉ đạo, điều hành CCHC"
    max_points: 8
    children:
      - code: "1.1"
        name_vi: "Kế hoạch CCHC"
        max_points: 3
        children:
          - code: "1.1.1"
            name_vi: "Ban hành kế hoạch đúng hạn"
            max_points: 1
            rubric:
              - {points: 1, label_vi: "Đúng hạn"}
              - {points: 0.5, label_vi: "Chậm"}
              - {points: 0, label_vi: "Không ban hành"}
          - {code: "1.1.2", name_vi: "Mức độ thực hiện kế hoạch", max_points: 2}
      - {code: "1.2", name_vi: "Báo cáo CCHC", max_points: 5}
  - code: "2"
    name_vi: "Tác động của CCHC"
    max_points: 12
    children:
      - {code: "2.1", name_vi: "Chỉ số hài lòng (điều tra)", max_points: 10, assessed_by: survey}
      - {code: "2.2", name_vi: "Giải quyết hồ sơ đúng hạn", max_points: 2}
"""


@pytest.fixture
def small_framework() -> Framework:
    """A small scorable framework: leaves 1.1.1 (rubric 1/0.5/0), 1.1.2, 1.2, 2.1 (survey), 2.2."""
    return read_framework_yaml(SMALL_FRAMEWORK_YAML, "small_test.yaml")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite URL of a file that does not exist yet, in the test's folder."""
    return f"sqlite:///{tmp_path / 'parindex.sqlite'}"


# -- PostgreSQL -----------------------------------------------------------------

def _pg_bindir() -> Path | None:
    candidates = [os.environ.get("PARINDEX_PG_BIN")]
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(str(Path(which).parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if c and (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The admin URL of a PostgreSQL server running for this test session."""
    given = os.environ.get("PARINDEX_TEST_PG_URL")
    if given:
        yield given
        return
    bindir = _pg_bindir()
    if bindir is None:
        _missing("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's postgresql "
                 "or set PARINDEX_PG_BIN")
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        runuser = shutil.which("runuser")
        if runuser is None:
            _missing("running as root without runuser: cannot start PostgreSQL as the postgres user")
        prefix = [runuser, "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="parindex-pg-"))
    data, log = base / "data", base / "server.log"
    if as_root:
        shutil.chown(base, "postgres")
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, *args], capture_output=True, text=True, env=env, timeout=120, check=False)

    init = run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
               "--locale=C.UTF-8")
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"initdb failed:\n{init.stdout}\n{init.stderr}", pytrace=False)
    opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
    start = run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", opts, "start")
    if start.returncode != 0:
        text = log.read_text() if log.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}\n{text}", pytrace=False)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A URL of a fresh, empty PostgreSQL database (dropped after the test)."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(pg_server)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"parindex_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh database on each backend: SQLite file, then PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
