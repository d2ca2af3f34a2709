"""Several processes saving into one embedded SQLite store at once.

Six worker processes (each its own Python interpreter, its own ``Store`` and
user) start together on one store file and, for a few seconds:

* save the same three contended scores with ``save_score(expected_version=)``
  after reading them, so that they race each other;
* import small tables (``write_scores``) into one shared unit;
* one of them imports a large table (8,000 rows) twice, holding the write
  lock for a second or more each time.

Then: no worker saw an error other than ``ConflictError`` (never "database is
locked": the store waits and retries); every successful save is in the store
and in the audit log, with its own version; versions are 1, 2, 3... without a
gap or a repeat, so no save overwrote another silently; every conflict names a
newer version than the one the writer read; and the store passes
``PRAGMA integrity_check``.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from parindex_lib import models as m
from parindex_lib.store import Store

pytestmark = pytest.mark.slow

N_SAVERS = 5
ITERATIONS = 20
CONTENDED = ["1.1.2", "1.2", "2.2"]
BULK_UNITS = [f"B{i:04d}" for i in range(2_000)]

WORKER = r"""
import json, os, sys, time
import pandas as pd
from parindex_lib.errors import ConflictError
from parindex_lib.store import Store

url, who, iterations, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
nodes = ["1.1.2", "1.2", "2.2"]
store = Store(url, upgrade=False)
log = []
session = store.session(tenant="t1", user=who)
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)

def record(op, t0, **kw):
    log.append({"op": op, "seconds": time.perf_counter() - t0, **kw})

if who == "bulk":
    units = [f"B{i:04d}" for i in range(2000)]
    leaves = ["1.1.2", "1.2", "2.2", "1.1.1"]
    for k in range(2):
        table = pd.DataFrame({"unit_code": [u for u in units for _ in leaves], "year": 2024,
                              "node_code": leaves * len(units),
                              "self_score": [0.5 * (k + 1), 1.0 + k, 0.25 * (k + 1), [1, 0.5][k]] * len(units)})
        t0 = time.perf_counter()
        try:
            counts = session.write_scores(table, source=f"bulk-{k}.xlsx", framework_id="small_test")
            record("bulk", t0, **counts)
        except Exception as exc:
            record("error", t0, error=f"{type(exc).__name__}: {exc}")
else:
    i = int(who[1:])
    for k in range(iterations):
        node = nodes[(i + k) % 3]
        value = (i * iterations + k + 1) / 100  # every save writes a value no other save writes
        reason = f"{who}-{k}"
        t0 = time.perf_counter()
        try:
            current = session.scores(unit_codes="U00")
            row = current[current["node_code"] == node]
            expected = int(row["version"].iloc[0]) if len(row) else 0
            version = session.save_score("U00", 2024, node, expected_version=expected, self_score=value,
                                         explanation="tự chấm", reason=reason)
            record("save", t0, node=node, expected=expected, version=version, value=value, reason=reason)
        except ConflictError as exc:
            record("conflict", t0, node=node, expected=expected, current=exc.current_version, theirs=exc.theirs,
                   reason=reason)
        except Exception as exc:
            record("error", t0, error=f"{type(exc).__name__}: {exc}")
        if k % 6 == 5:
            table = pd.DataFrame({"unit_code": "U99", "year": 2024, "node_code": nodes, "self_score": value})
            t0 = time.perf_counter()
            try:
                counts = session.write_scores(table, source=f"{reason}.csv", framework_id="small_test")
                record("write", t0, value=value, reason=reason, **counts)
            except Exception as exc:
                record("error", t0, error=f"{type(exc).__name__}: {exc}")
print(json.dumps(log), flush=True)
"""


@pytest.fixture
def store_file(tmp_path: Path, small_framework) -> Path:
    path = tmp_path / "shared.sqlite"
    with Store(path) as store:
        store.create_tenant("t1", "Sở Nội vụ (giả định)", admin_user="lan")
        store.add_shared_framework(small_framework)
        with store.session(tenant="t1", user="lan") as s:
            codes = ["U00", "U99"] + BULK_UNITS
            s.upsert_units(pd.DataFrame({"code": codes, "name": codes, "kind": "department"}))
            s.create_assessment("U00", 2024, "small_test")
            s.create_assessment("U99", 2024, "small_test")
            for i in range(N_SAVERS):
                s.set_member(f"w{i}", "editor", unit_codes=["U00", "U99"])
            s.set_member("bulk", "admin")
    return path


def run_workers(path: Path, tmp_path: Path) -> dict[str, list[dict]]:
    go = tmp_path / "go"
    who = ["bulk"] + [f"w{i}" for i in range(N_SAVERS)]
    procs = {w: subprocess.Popen([sys.executable, "-c", WORKER, f"sqlite:///{path}", w, str(ITERATIONS), str(go)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
             for w in who}
    for w, p in procs.items():
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    go.touch()  # all start at once
    logs = {}
    for w, p in procs.items():
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        logs[w] = json.loads(out.strip().splitlines()[-1])
    return logs


def test_six_processes_save_at_once_without_lock_errors_or_lost_writes(store_file, tmp_path):
    t0 = time.perf_counter()
    logs = run_workers(store_file, tmp_path)
    wall = time.perf_counter() - t0
    ops = [dict(op, worker=w) for w, log in logs.items() for op in log]

    errors = [o for o in ops if o["op"] == "error"]
    assert not errors, errors  # no "database is locked", nothing else either
    saves = [o for o in ops if o["op"] == "save"]
    conflicts = [o for o in ops if o["op"] == "conflict"]
    writes = [o for o in ops if o["op"] == "write"]
    bulk = [o for o in ops if o["op"] == "bulk"]
    assert len(saves) + len(conflicts) == N_SAVERS * ITERATIONS
    assert len(bulk) == 2 and bulk[0]["inserted"] == 8_000 and bulk[1]["updated"] == 8_000
    assert saves and writes

    with Store(store_file, upgrade=False) as store:
        with store.session(tenant="t1", user="lan") as s:
            scores = s.scores().set_index(["unit_code", "node_code"])
        with store.engine.connect() as conn:
            a = m.audit_log
            audit = pd.DataFrame(conn.execute(
                select(a.c.row_key, a.c.field, a.c.new_value, a.c.reason, a.c.version, a.c.user_name)
                .where(a.c.tenant_id == "t1", a.c.table_name == "scores")).all(),
                columns=["row_key", "field", "new_value", "reason", "version", "user_name"])

    # contended scores: one version per successful save, in a row, each in the audit log
    for node in CONTENDED:
        mine = sorted((o for o in saves if o["node"] == node), key=lambda o: o["version"])
        versions = [o["version"] for o in mine]
        assert versions == list(range(1, len(mine) + 1)), f"{node}: versions {versions}"
        assert all(o["version"] == o["expected"] + 1 for o in mine)
        stored = scores.loc[("U00", node)]
        assert stored["version"] == len(mine)
        assert stored["self_score"] == mine[-1]["value"] and stored["updated_by"] == mine[-1]["worker"]
        logged = audit[(audit["row_key"] == f"U00/2024/{node}") & (audit["field"] == "self_score")]
        assert sorted(zip(logged["reason"], logged["new_value"].astype(float), logged["version"])) == \
            sorted((o["reason"], o["value"], o["version"]) for o in mine)
        assert Counter(logged["user_name"]) == Counter(o["worker"] for o in mine)
    # conflicts: someone else had saved since the read; nothing was written for them
    for c in conflicts:
        assert c["current"] > c["expected"], c
    conflict_reasons = {c["reason"] for c in conflicts}
    assert not conflict_reasons & set(audit["reason"])

    # the shared unit written by write_scores: every write, in order, and audited
    for node in CONTENDED:
        stored = scores.loc[("U99", node)]
        assert stored["version"] == len(writes)
        logged = audit[(audit["row_key"] == f"U99/2024/{node}") & (audit["field"] == "self_score")]
        assert sorted(logged["version"]) == list(range(1, len(writes) + 1))
        assert sorted(logged["reason"]) == sorted(f"import {o['reason']}.csv" for o in writes)
    assert sum(o["audit_rows"] for o in writes) == len(audit[audit["row_key"].str.startswith("U99/")])
    # the last committed write is what the store holds
    by_version = defaultdict(list)
    for _, r in audit[(audit["row_key"] == "U99/2024/1.2") & (audit["field"] == "self_score")].iterrows():
        by_version[r["version"]].append(float(r["new_value"]))
    assert scores.loc[("U99", "1.2"), "self_score"] == by_version[len(writes)][0]
    # the bulk import: all of both tables
    bulk_rows = scores.loc[BULK_UNITS]
    assert len(bulk_rows) == 8_000 and (bulk_rows["version"] == 2).all()

    con = sqlite3.connect(store_file)
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    con.close()
    slowest = max(o["seconds"] for o in saves + conflicts)
    bulk_times = ", ".join(f"{o['seconds']:.1f} s" for o in bulk)
    print(f"{len(saves)} saves, {len(conflicts)} conflicts, {len(writes)} table writes, 2 bulk imports of "
          f"8,000 rows ({bulk_times}); slowest save {slowest:.2f} s; {wall:.1f} s in all")
