"""Concurrent editors saving into one tenant on PostgreSQL: saves per second, conflicts, lost updates, audit.

Usage::

    .venv/bin/python bench/bench_pg_saves.py [--editors 40] [--saves 75] [--admin-url URL] [--no-baseline]

The workload runs twice, each time in a fresh database: saving as the
library does on PostgreSQL (the functions of revision 0004: two round trips
per save), then the baseline, the same saves each in one transaction (the
path of SQLite and of a database before 0004); the ratio of their saves per
second is printed last.

Without ``--admin-url`` a throwaway PostgreSQL server is started on loopback
(Debian's binaries, as the test suite does) and stopped at the end.

The database is set up as deployed (``deploy/postgres/setup_database.py``):
the editors connect as the application role, each with their own access
token, through :class:`parindex_lib.store.Store` — row-level security, the
role triggers and the audit log all on the path. Editors come in pairs on
the same unit and save ``self_score`` on the same leaves (up to 40), so they
collide: a save with a stale version gets a :class:`ConflictError`, and the
editor saves again with the current version (the resolution the apps offer).

Checked after the run (:func:`verify`): every row's final version is one
more than the number of successful saves to it (no update lost or counted
twice); its value is the one the last save wrote; the audit log holds one
row per successful save, whose old and new values chain version by version.

``tests/test_concurrency_pg.py`` runs :func:`run` and :func:`verify`;
``bench/RESULTS.md`` records the figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from parindex_lib.errors import ConflictError  # noqa: E402
from parindex_lib.framework import load_framework  # noqa: E402
from parindex_lib.store import Store  # noqa: E402

TENANT = "bench"
YEAR = 2024
FRAMEWORK = "demo_department_2024"
LEAVES_PER_UNIT = 40
REASON = "bench save"


def _setup_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("parindex_setup_database",
                                                  ROOT / "deploy" / "postgres" / "setup_database.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _leaves(fw) -> list[tuple[str, float]]:
    """Self-assessed leaves without a rubric: any value in [0, max] is valid."""
    rows = fw.leaves[(fw.leaves["assessed_by"] == "self") & fw.leaves["rubric"].isna()]
    return [(str(c), float(m)) for c, m in zip(rows["code"], rows["max_points"]) if m >= 1][:LEAVES_PER_UNIT]


def prepare(owner_url: str, editors: int) -> dict[str, Any]:
    """Tenant, units (two editors each), assessments and first scores, as the schema owner; editors' tokens."""
    fw = load_framework(FRAMEWORK)
    leaves = _leaves(fw)
    units = [f"D{i:03d}" for i in range((editors + 1) // 2)]
    store = Store(owner_url)
    try:
        store.add_shared_framework(fw)
        store.create_tenant(TENANT, "Concurrency bench (not real)", admin_user="boss")
        with store.session(tenant=TENANT, user="boss") as s:
            s.upsert_units(pd.DataFrame({"code": units, "name": [f"Sở {u}" for u in units],
                                         "kind": ["department"] * len(units)}))
            plan = []
            for i in range(editors):
                user, unit = f"ed{i:02d}", units[i // 2]
                s.set_member(user, "editor", unit_codes=[unit])
                plan.append({"user": user, "unit": unit, "index": i})
            s.write_scores(pd.DataFrame([{"unit_code": u, "year": YEAR, "node_code": code, "self_score": 0.0,
                                          "explanation": "khởi tạo"} for u in units for code, _ in leaves]),
                           source="bench setup", framework_id=FRAMEWORK)
        for p in plan:
            p["token"] = store.issue_access_token(p["user"], ttl_seconds=3600, by="bench")
    finally:
        store.dispose()
    return {"plan": plan, "leaves": leaves, "units": units}


def _editor(app_url: str, job: dict, leaves: list, saves: int, barrier, out, functions: bool = True) -> None:
    """One editor process: ``saves`` successful saves on its unit's leaves, resolving every conflict.

    ``functions=False``: every save in one transaction (the path of a database before revision 0004).
    """
    rng = random.Random(job["index"])
    store = Store(app_url, upgrade=False, token=job["token"])
    store._save_functions = functions
    ledger: list[tuple[str, int, float]] = []   # (node, version written, value)
    conflicts = attempts = unchanged = 0
    versions: dict[str, int] = {}
    try:
        with store.session(tenant=TENANT, user=job["user"]) as s:
            for r in s.scores(year=YEAR, unit_codes=job["unit"]).itertuples():
                versions[r.node_code] = int(r.version)
            barrier.wait()
            t0, c0 = time.perf_counter(), time.process_time()
            done = 0
            seq = 0
            while done < saves:
                node, top = leaves[rng.randrange(len(leaves))]
                seq += 1
                value = round(top * ((job["index"] * 100_003 + seq * 7_919) % 10_007) / 10_007, 6)
                while True:
                    attempts += 1
                    try:
                        v = s.save_score(job["unit"], YEAR, node, expected_version=versions[node],
                                         self_score=value, reason=REASON)
                    except ConflictError as exc:
                        conflicts += 1
                        versions[node] = exc.current_version   # the other editor's save wins; save over it
                        continue
                    if v == versions[node]:
                        unchanged += 1
                    else:
                        ledger.append((node, v, value))
                    versions[node] = v
                    break
                done += 1
            t1, c1 = time.perf_counter(), time.process_time()
        out.put({"user": job["user"], "unit": job["unit"], "start": t0, "end": t1, "cpu": c1 - c0, "ledger": ledger,
                 "conflicts": conflicts, "attempts": attempts, "unchanged": unchanged})
    except BaseException as exc:  # noqa: BLE001  (reported to the parent, which fails the run)
        out.put({"user": job["user"], "error": f"{type(exc).__name__}: {exc}"})
    finally:
        store.dispose()


def _proc_cpu_seconds(stat_text: str, reaped: bool = False) -> float:
    """CPU seconds (user + system) of a process from its ``/proc/<pid>/stat`` text; ``reaped``: plus its
    waited-for children's."""
    fields = stat_text.rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15 if reaped else 13]) / os.sysconf("SC_CLK_TCK")


def _server_cpu_seconds() -> float | None:
    """CPU seconds used so far by the PostgreSQL servers on this machine (None if none is visible).

    Every ``postgres`` process's own time, plus the time of the backends that have exited (their
    postmaster's reaped children), so the backends of editors that have disconnected still count.
    """
    total, seen = 0.0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
        except OSError:
            continue
        name = raw[raw.find("(") + 1:raw.rfind(")")]
        if name.startswith("postgres"):
            total += _proc_cpu_seconds(raw, reaped=True)
            seen = True
    return total if seen else None


def run(owner_url: str, app_url: str, *, editors: int = 40, saves: int = 75, functions: bool = True) -> dict[str, Any]:
    """Run the workload; return the figures and every editor's ledger.

    ``functions``: save through the functions of revision 0004 (two round trips, as the library
    does); False: every save in one transaction, the baseline.
    """
    setup = prepare(owner_url, editors)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(editors)
    out = ctx.Queue()
    procs = [ctx.Process(target=_editor, args=(app_url, job, setup["leaves"], saves, barrier, out, functions))
             for job in setup["plan"]]
    server0 = _server_cpu_seconds()
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(60)
    server1 = _server_cpu_seconds()
    errors = [r for r in results if "error" in r]
    if errors:
        raise RuntimeError(f"{len(errors)} editor(s) failed: {errors[:3]}")
    start, end = min(r["start"] for r in results), max(r["end"] for r in results)
    ok = sum(len(r["ledger"]) for r in results)
    attempts = sum(r["attempts"] for r in results)
    return {
        "editors": editors, "units": len(setup["units"]), "leaves_per_unit": len(setup["leaves"]),
        "saves": ok, "unchanged": sum(r["unchanged"] for r in results), "attempts": attempts,
        "conflicts": sum(r["conflicts"] for r in results), "seconds": round(end - start, 3),
        "saves_per_second": round(ok / (end - start), 1), "attempts_per_second": round(attempts / (end - start), 1),
        "cpu_ms_per_save_under_load": {
            "editors": round(sum(r["cpu"] for r in results) / ok * 1000, 2),
            "postgres": None if server0 is None else round((server1 - server0) / ok * 1000, 2)},
        "results": results, "setup": setup,
    }


def verify(owner_url: str, figures: dict[str, Any]) -> dict[str, Any]:
    """No lost update, the last value kept, the audit log complete and chained. Returns the counts checked.

    Raises
    ------
    AssertionError
        Naming the first rows that break a rule.
    """
    ledger: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in figures["results"]:
        for node, version, value in r["ledger"]:
            ledger.setdefault((r["unit"], node), []).append((version, value))
    store = Store(owner_url, upgrade=False)
    try:
        with store.session(tenant=TENANT, user="boss") as s:
            scores = s.scores(year=YEAR)
            log = s.audit()
    finally:
        store.dispose()
    problems = []
    final = {(r.unit_code, r.node_code): (int(r.version), float(r.self_score)) for r in scores.itertuples()}
    for key, writes in ledger.items():
        versions = sorted(v for v, _ in writes)
        if versions != list(range(2, 2 + len(versions))):
            problems.append(f"{key}: versions written {versions[:10]}... are not 2..{1 + len(versions)}")
        last_version, last_value = max(writes)
        if final[key] != (last_version, last_value):
            problems.append(f"{key}: stored {final[key]}, last save wrote {(last_version, last_value)}")
    untouched = [k for k in final if k not in ledger and final[k][0] != 1]
    problems += [f"{k}: changed without a recorded save" for k in untouched]
    mine = log[(log["reason"] == REASON) & (log["table_name"] == "scores") & (log["field"] == "self_score")]
    if len(mine) != figures["saves"]:
        problems.append(f"audit rows {len(mine)} != successful saves {figures['saves']}")
    chains = 0
    for (unit, node), writes in ledger.items():
        rows = mine[mine["row_key"] == f"{unit}/{YEAR}/{node}"]
        by_new = dict(zip(rows["new_value"], rows["old_value"]))
        values = {v: val for v, val in writes}
        prev = repr(0.0)
        for v in sorted(values):
            new = repr(values[v])
            if by_new.get(new) != prev:
                problems.append(f"{unit}/{node} v{v}: audit says {by_new.get(new)!r} -> {new}, expected {prev} -> {new}")
                break
            prev = new
        chains += 1
    assert not problems, "\n".join(problems[:20])
    return {"rows": len(ledger), "audit_rows": len(mine), "chains": chains}


def cpu_per_save(owner_url: str, app_url: str, saves: int = 400, functions: bool = True) -> dict[str, float] | None:
    """CPU milliseconds per save of one editor alone: in its Python process and in its PostgreSQL backend.

    The backend's CPU is read from ``/proc/<pid>/stat``, so the server must run on this machine
    (None otherwise). Run after :func:`run` (its tenant and tokens).
    """
    from sqlalchemy import text as sql_text

    store = Store(owner_url, upgrade=False)
    try:
        with store.session(tenant=TENANT, user="boss") as s:
            s.set_member("solo", "editor", unit_codes=[s.units()["code"].iloc[0]])
            unit = s.units()["code"].iloc[0]
        token = store.issue_access_token("solo", ttl_seconds=600, by="bench")
    finally:
        store.dispose()
    leaves = _leaves(load_framework(FRAMEWORK))
    app = Store(app_url, upgrade=False, token=token)
    app._save_functions = functions
    try:
        with app.engine.connect() as conn:  # the pool's only connection, reused by every save below
            pid = conn.execute(sql_text("select pg_backend_pid()")).scalar()
        stat = Path(f"/proc/{pid}/stat")
        if not stat.exists():
            return None

        def backend_seconds() -> float:
            return _proc_cpu_seconds(stat.read_text())

        with app.session(tenant=TENANT, user="solo") as s:
            versions = {r.node_code: int(r.version) for r in s.scores(year=YEAR, unit_codes=unit).itertuples()}

            def go(n: int, salt: int) -> None:
                for i in range(n):
                    node, top = leaves[i % len(leaves)]
                    value = round(top * ((i * 7_919 + salt) % 10_007) / 10_007, 6)
                    versions[node] = s.save_score(unit, YEAR, node, expected_version=versions[node],
                                                  self_score=value, reason="bench cpu")

            go(50, 1)  # warm: plans cached, framework parsed
            b0, p0 = backend_seconds(), time.process_time()
            go(saves, 7)
            return {"python_ms": round((time.process_time() - p0) / saves * 1000, 2),
                    "postgres_ms": round((backend_seconds() - b0) / saves * 1000, 2)}
    finally:
        app.dispose()


# -- a throwaway server when none is given ----------------------------------------------------------

@contextmanager
def throwaway_postgresql():
    """A PostgreSQL server on loopback in a temporary folder (as the postgres user when root)."""
    import glob

    bindir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)[0])
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    base = Path(tempfile.mkdtemp(prefix="parindex-bench-pg-"))
    if as_root:
        shutil.chown(base, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(base / "data"), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--locale=C.UTF-8"], check=True, capture_output=True, env=env)
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c max_connections=200"
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(base / "data"), "-l", str(base / "log"), "-w",
                    "-o", opts, "start"], check=True, capture_output=True, env=env)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(base / "data"), "-m", "fast", "-w", "stop"],
                       capture_output=True, env=env)
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--editors", type=int, default=40)
    p.add_argument("--saves", type=int, default=75, help="successful saves per editor")
    p.add_argument("--admin-url", help="a superuser URL of a PostgreSQL server (default: start one)")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the baseline (the same workload with every save in one transaction)")
    args = p.parse_args(argv)
    setup = _setup_module()

    def go(admin_url: str, functions: bool) -> dict:
        import uuid

        suffix = uuid.uuid4().hex[:8]
        db, owner, app = f"bench_{suffix}", f"bench_owner_{suffix}", f"bench_app_{suffix}"
        owner_url, app_url = setup.create_roles_and_database(admin_url, db, owner, app)
        try:
            setup.migrate_and_grant(owner_url, app)
            load_before = os.getloadavg()[0]
            figures = run(owner_url, app_url, editors=args.editors, saves=args.saves, functions=functions)
            figures["load_average_before"] = round(load_before, 2)
            figures["verified"] = verify(owner_url, figures)
            figures["cpu_per_save"] = cpu_per_save(owner_url, app_url, functions=functions)
            return {k: v for k, v in figures.items() if k not in ("results", "setup")}
        finally:
            setup.drop_roles_and_database(admin_url, db, owner, app)

    def both(admin_url: str) -> dict:
        out = {"functions": go(admin_url, True)}
        if not args.no_baseline:
            out["one_transaction"] = go(admin_url, False)
            out["saves_per_second_ratio"] = round(out["functions"]["saves_per_second"]
                                                  / out["one_transaction"]["saves_per_second"], 2)
        return out

    if args.admin_url:
        shown = both(args.admin_url)
    else:
        with throwaway_postgresql() as url:
            shown = both(url)
    print(json.dumps(shown, indent=1))
    f = shown["functions"]
    line = (f"summary: {f['saves_per_second']} successful saves/s ({f['conflicts']} conflicts, "
            f"{f['verified']['rows']} rows verified, goal >= 500)")
    if "one_transaction" in shown:
        line += (f"; one transaction per save {shown['one_transaction']['saves_per_second']} saves/s; "
                 f"ratio {shown['saves_per_second_ratio']}")
    print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(shown, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
