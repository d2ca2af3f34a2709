"""An import killed with SIGKILL at random points leaves the store whole: all of the file or none of it.

A child process imports a long score file of 10,800 rows (120 units x 90
leaves of the demo framework; about 31,500 audit rows) through the full path
(``read_scores`` then ``TenantSession.write_scores``) and reports on its
standard output when the write transaction begins and when it commits. The
parent kills it with SIGKILL at seeded random delays, most of them inside the
write transaction, some from the start of the process. Afterwards:

* SQLite: ``PRAGMA integrity_check`` is ``ok`` and ``PRAGMA
  foreign_key_check`` finds nothing;
* the tenant's scores, assessments and audit log are either exactly as before
  the import (none of it) or exactly as after a complete import (all of it);
* the same import, run again, completes and gives the complete state.

The same runs on PostgreSQL (the server aborts the dead client's
transaction); each run there imports into its own tenant.
"""

from __future__ import annotations

import queue
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from parindex_lib.demo import demo_scores, demo_units
from parindex_lib.exporting import write_scores_file
from parindex_lib.framework import load_framework
from parindex_lib.importing import read_scores
from parindex_lib.store import Store

pytestmark = pytest.mark.slow

FRAMEWORK_ID = "demo_department_2024"
USER = "lan"
YEAR = 2024

CHILD = r"""
import sys
from sqlalchemy import event
from parindex_lib.importing import read_scores
from parindex_lib.store import Store

url, tenant, user, framework_id, path = sys.argv[1:6]
store = Store(url, upgrade=False)

@event.listens_for(store.engine, "begin")
def _begin(conn):
    if conn.get_execution_options().get("parindex_write"):
        print("write-begin", flush=True)

@event.listens_for(store.engine, "commit")
def _commit(conn):
    if conn.get_execution_options().get("parindex_write"):
        print("write-commit", flush=True)

print("start", flush=True)
with store.session(tenant=tenant, user=user) as s:
    fw = s.framework(framework_id)
    scores = read_scores(path, fw, s.units())
    print("read", flush=True)
    counts = s.write_scores(scores, framework_id=framework_id, source=path)
print("done", counts["rows"], flush=True)
"""


# -- data -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def framework():
    return load_framework(FRAMEWORK_ID)


@pytest.fixture(scope="module")
def units() -> pd.DataFrame:
    return demo_units(n_communes=100)


@pytest.fixture(scope="module")
def score_file(tmp_path_factory, framework, units) -> Path:
    """10,800 rows in the long layout, with explanations and evidence links."""
    path = tmp_path_factory.mktemp("crash") / "diem_2024.csv"
    scores = demo_scores(framework, units, years=[YEAR], seed=7)
    write_scores_file(scores, path)
    assert len(scores) == 10_800
    return path


def prepare(url: str, tenant: str, framework, units) -> None:
    """A tenant with its units (and the shared framework), before any score."""
    with Store(url) as store:
        if store.shared_frameworks().empty or FRAMEWORK_ID not in set(store.shared_frameworks()["framework_id"]):
            store.add_shared_framework(framework)
        store.create_tenant(tenant, f"Tenant {tenant} (giả định)", admin_user=USER)
        with store.session(tenant=tenant, user=USER) as s:
            s.upsert_units(units)
        if store.dialect == "sqlite":
            with store.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def state(url: str, tenant: str) -> dict[str, Counter]:
    """What the tenant holds (scores, assessments, audit log), without timestamps, as multisets of rows."""
    with Store(url, upgrade=False) as store, store.session(tenant=tenant, user=USER) as s:
        scores = s.scores().drop(columns=["updated_at"])
        assessments = s.assessments().drop(columns=["created_at", "updated_at", "deadline"], errors="ignore")
        audit = s.audit().drop(columns=["at"])
    return {name: Counter(map(repr, table.astype(str).values.tolist()))
            for name, table in (("scores", scores), ("assessments", assessments), ("audit", audit))}


def delta(after: dict[str, Counter], before: dict[str, Counter]) -> dict[str, Counter]:
    """Rows added since ``before``; fails if any row of ``before`` is gone."""
    for name in before:
        lost = before[name] - after[name]
        assert not lost, f"{name}: rows lost: {list(lost)[:3]}"
    return {name: after[name] - before[name] for name in after}


def summary(d: dict[str, Counter]) -> str:
    return ", ".join(f"{k} +{sum(v.values())}" for k, v in d.items())


def all_or_nothing(got: dict, none: dict, complete: dict) -> str:
    """"none" or "all"; fails on anything between."""
    added = delta(got, none)
    if not any(added.values()):
        return "none"
    assert added == complete, f"a partial import: {summary(added)} of {summary(complete)}"
    return "all"


# -- the child and the killer ------------------------------------------------------------------

class Child:
    """The importing process, with the lines it printed and when."""

    def __init__(self, url: str, tenant: str, path: Path, cwd: Path):
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, url, tenant, USER, FRAMEWORK_ID, str(path)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
        self.events: queue.Queue = queue.Queue()
        self.seen: dict[str, float] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.events.put((line.split()[0], time.monotonic() - self.t0))
        self.events.put(("eof", time.monotonic() - self.t0))

    def wait_for(self, event: str, timeout: float = 120) -> bool:
        end = time.monotonic() + timeout
        while event not in self.seen:
            try:
                name, at = self.events.get(timeout=max(end - time.monotonic(), 0.01))
            except queue.Empty:
                return False
            self.seen[name] = at
            if name == "eof" and event != "eof":
                return False
        return True

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.wait_for("eof", 30)  # every line written before the kill has been read

    def finish(self) -> None:
        assert self.wait_for("eof", 300)
        self.proc.wait(30)
        assert self.proc.returncode == 0, self.proc.stderr.read()


def run_and_kill(url: str, tenant: str, path: Path, cwd: Path, *, after: str, delay: float) -> dict:
    """Start an import, kill it ``delay`` seconds after event ``after`` ("start", "write-begin",
    "write-commit"); return what it had reported."""
    child = Child(url, tenant, path, cwd)
    assert child.wait_for(after), f"the child never reached {after}: {child.proc.stderr.read()}"
    time.sleep(delay)
    child.kill()
    # killed, or (on a machine faster than at calibration) finished just before the kill
    assert child.proc.returncode == -signal.SIGKILL or ("done" in child.seen and child.proc.returncode == 0), \
        (child.proc.returncode, child.seen)
    inside = "write-begin" in child.seen and "write-commit" not in child.seen
    return {"seen": [e for e in sorted(child.seen, key=child.seen.get) if e != "eof"], "inside_transaction": inside,
            "finished": "done" in child.seen}


def calibrate(url: str, tenant: str, path: Path, cwd: Path) -> float:
    """Run one import to the end; the seconds between the write's BEGIN and its COMMIT."""
    child = Child(url, tenant, path, cwd)
    child.finish()
    return child.seen["write-commit"] - child.seen["write-begin"]


def schedule(seed: int, write_seconds: float, n_inside: int, n_anywhere: int) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    plan = [("write-begin", rng.uniform(0.0, write_seconds * 0.95)) for _ in range(n_inside)]
    plan += [("start", rng.uniform(0.0, 0.8 + write_seconds)) for _ in range(n_anywhere)]
    return plan


# -- SQLite --------------------------------------------------------------------------------------

def sqlite_checks(path: Path) -> None:
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        con.close()


@pytest.fixture(scope="module")
def sqlite_runs(tmp_path_factory, framework, units, score_file):
    """The baseline file, the states before and after a complete import, and the write's duration."""
    folder = tmp_path_factory.mktemp("sqlite_crash")
    base = folder / "base.sqlite"
    prepare(str(base), "t1", framework, units)
    full = folder / "full.sqlite"
    shutil.copy(base, full)
    seconds = calibrate(f"sqlite:///{full}", "t1", score_file, folder)
    none = state(str(base), "t1")
    return {"base": base, "none": none, "complete": delta(state(str(full), "t1"), none),
            "write_seconds": seconds}


@pytest.mark.parametrize("seed", [1, 2])
def test_sqlite_import_killed_holds_all_or_nothing(sqlite_runs, score_file, seed, tmp_path):
    none, complete = sqlite_runs["none"], sqlite_runs["complete"]
    assert sum(complete["scores"].values()) == 10_800 and sum(complete["audit"].values()) > 30_000
    outcomes = []
    for i, (after, delay) in enumerate(schedule(seed, sqlite_runs["write_seconds"], n_inside=2, n_anywhere=1)):
        db = tmp_path / f"run{i}.sqlite"
        shutil.copy(sqlite_runs["base"], db)
        where = run_and_kill(f"sqlite:///{db}", "t1", score_file, tmp_path, after=after, delay=delay)
        sqlite_checks(db)
        got = all_or_nothing(state(str(db), "t1"), none, complete)
        if where["inside_transaction"]:
            assert got == "none", where
        if where["finished"]:
            assert got == "all", where
        outcomes.append((after, round(delay, 2), (where["seen"] or ["nothing yet"])[-1], got))
    if seed == 1:  # the store is still usable: the same import completes
        with Store(f"sqlite:///{db}", upgrade=False) as store, store.session(tenant="t1", user=USER) as s:
            fw = s.framework(FRAMEWORK_ID)
            s.write_scores(read_scores(score_file, fw, s.units()), framework_id=FRAMEWORK_ID,
                           source=str(score_file))
        sqlite_checks(db)
        assert all_or_nothing(state(str(db), "t1"), none, complete) == "all"
    print(f"seed {seed}: the write takes {sqlite_runs['write_seconds']:.2f} s; kills: {outcomes}")


@pytest.mark.parametrize("delay", [0.0, 0.01])
def test_sqlite_import_killed_while_committing(sqlite_runs, score_file, tmp_path, delay):
    """Killed just after the write asks to commit, while SQLite writes the WAL: all or nothing still."""
    db = tmp_path / "commit.sqlite"
    shutil.copy(sqlite_runs["base"], db)
    where = run_and_kill(f"sqlite:///{db}", "t1", score_file, tmp_path, after="write-commit", delay=delay)
    sqlite_checks(db)
    got = all_or_nothing(state(str(db), "t1"), sqlite_runs["none"], sqlite_runs["complete"])
    print(f"killed {delay * 1000:.0f} ms after the commit began: {got} ({where['seen']})")


# -- PostgreSQL ----------------------------------------------------------------------------------

def wait_for_backends_gone(url: str, app: str, timeout: float = 30) -> None:
    """Wait until the server has noticed that the killed client is gone (and rolled it back)."""
    with Store(url, upgrade=False) as store:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with store.engine.connect() as conn:
                n = conn.execute(text("select count(*) from pg_stat_activity where application_name = :a"),
                                 {"a": app}).scalar_one()
            if n == 0:
                return
            time.sleep(0.1)
    raise AssertionError(f"the server still runs the killed client's session {app}")


@pytest.mark.postgres
def test_postgres_import_killed_holds_all_or_nothing(pg_url, framework, units, score_file, tmp_path):
    sep = "&" if "?" in pg_url else "?"
    prepare(pg_url, "full", framework, units)
    none_full = state(pg_url, "full")
    seconds = calibrate(pg_url, "full", score_file, tmp_path)
    complete = delta(state(pg_url, "full"), none_full)
    assert sum(complete["scores"].values()) == 10_800
    outcomes = []
    for i, (after, delay) in enumerate(schedule(11, seconds, n_inside=2, n_anywhere=1)):
        tenant = f"run{i}"
        prepare(pg_url, tenant, framework, units)
        none = state(pg_url, tenant)
        app = f"parindex_crash_{i}"
        where = run_and_kill(f"{pg_url}{sep}application_name={app}", tenant, score_file, tmp_path,
                             after=after, delay=delay)
        wait_for_backends_gone(pg_url, app)
        got = all_or_nothing(state(pg_url, tenant), none, complete)
        if where["inside_transaction"]:
            assert got == "none", where
        if where["finished"]:
            assert got == "all", where
        outcomes.append((after, round(delay, 2), (where["seen"] or ["nothing yet"])[-1], got))
    assert any(o[0] == "write-begin" for o in outcomes)
    # the store is still usable: the last tenant imports the file completely
    if got == "none":
        with Store(pg_url, upgrade=False) as store, store.session(tenant=tenant, user=USER) as s:
            fw = s.framework(FRAMEWORK_ID)
            s.write_scores(read_scores(score_file, fw, s.units()), framework_id=FRAMEWORK_ID,
                           source=str(score_file))
        assert all_or_nothing(state(pg_url, tenant), none, complete) == "all"
    print(f"postgres: the write takes {seconds:.2f} s; kills: {outcomes}")
