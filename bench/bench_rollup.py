"""Benchmark: roll-up, ranks and change since last year, parindex vs DuckDB SQL.

Generates national commune-scale synthetic data with ``bench/datagen.py``
(seeded; by default 10,500 units x 88 leaves x 10 years = 9.24 M score
rows, 14.07 M result rows), then times in the same process:

(a) parindex: ``roll_up`` + ``rank`` + ``add_rank_change`` on the whole
    table;
(b) the same computation written in DuckDB SQL (in-process, over the same
    pandas DataFrame, result materialised to pandas), in two forms: text
    columns returned as VARCHAR (Python strings in pandas) and the code
    columns returned as ENUM (pandas categoricals, like parindex).

Both results are compared on a sample of units (every year and node of
those units): points, max_points, index_pct, coverage, rank, points_change
and rank_change must agree. Each engine runs ``--repeat`` times,
alternating; the best wall time is reported (the machine may be shared),
with the CPU time of this process and the peak resident memory sampled
during each run.

Usage::

    python bench/bench_rollup.py [--units N --years Y --repeat R --seed S]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import duckdb  # noqa: E402
from datagen import generate  # noqa: E402

from parindex_lib.aggregation import roll_up  # noqa: E402
from parindex_lib.framework import Framework  # noqa: E402
from parindex_lib.ranking import add_rank_change, rank  # noqa: E402

COMPARED = ["points", "max_points", "index_pct", "coverage", "rank", "points_change", "rank_change"]


# -- measuring ---------------------------------------------------------------------

def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 5 ms)."""

    def __enter__(self) -> "PeakRSS":
        self.start = _rss_mib()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mib())
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


def timed(fn, *args):
    gc.collect()
    with PeakRSS() as mem:
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn(*args)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return out, {"wall": wall, "cpu": cpu, "rss_start": mem.start, "rss_peak": mem.peak}


# -- the two engines ---------------------------------------------------------------

def run_parindex(scores: pd.DataFrame, fw: Framework) -> pd.DataFrame:
    return add_rank_change(rank(roll_up(scores, fw)))


def ancestry_table(fw: Framework) -> pd.DataFrame:
    """Leaf -> every result node above it (itself, its parents, the total)."""
    nodes = fw.nodes
    parent = dict(zip(nodes["code"], nodes["parent_code"]))
    pos = {c: i + 1 for i, c in enumerate(nodes["code"])}
    level = dict(zip(nodes["code"], nodes["level"]))
    mx = dict(zip(nodes["code"], nodes["max_points"]))
    rows = []
    for leaf in nodes.loc[nodes["is_leaf"], "code"]:
        rows.append((leaf, "total", "index", float(fw.max_points), 0, mx[leaf]))
        code = leaf
        while code is not None:
            rows.append((leaf, code, level[code], mx[code], pos[code], mx[leaf]))
            code = parent[code]
    return pd.DataFrame(rows, columns=["leaf_code", "node_code", "level", "node_max", "node_pos", "leaf_max"])


SQL = """
WITH pts AS (
    SELECT unit_code, year, node_code,
           CASE WHEN coalesce(appraised_score, self_score) IS NULL AND survey_points IS NULL THEN NULL
                ELSE coalesce(appraised_score, self_score, 0) + coalesce(survey_points, 0) END AS p
    FROM {table}
),
extra AS (
    SELECT unit_code, year,
           least(coalesce(sum(bonus), 0), {bonus_cap}) AS bonus,
           least(coalesce(sum(penalty), 0), {penalty_cap}) AS penalty
    FROM {table} GROUP BY unit_code, year
),
rolled AS (
    SELECT s.unit_code, s.year, a.node_code,
           any_value(a.level) AS level, any_value(a.node_max) AS max_points, any_value(a.node_pos) AS node_pos,
           sum(s.p) AS points,
           sum(CASE WHEN s.p IS NOT NULL THEN a.leaf_max ELSE 0 END) AS covered
    FROM pts s JOIN anc a ON s.node_code = a.leaf_code
    GROUP BY s.unit_code, s.year, a.node_code
),
totals AS (
    SELECT r.unit_code, r.year, r.node_code, r.level, r.max_points, r.node_pos, r.covered,
           CASE WHEN r.node_code = 'total' THEN r.points + e.bonus - e.penalty ELSE r.points END AS points
    FROM rolled r JOIN extra e ON r.unit_code = e.unit_code AND r.year = e.year
),
ranked AS (
    SELECT *, round(points, 9) AS points9,
           CASE WHEN points IS NOT NULL
                THEN rank() OVER (PARTITION BY year, node_code ORDER BY round(points, 9) DESC NULLS LAST) END AS rnk
    FROM totals
)
SELECT {unit_code} AS unit_code, year, {node_code} AS node_code, {level} AS level,
       points9 AS points, max_points,
       round(points / max_points * 100, 9) AS index_pct,
       round(covered / max_points, 9) AS coverage,
       rnk AS rank,
       CASE WHEN lag(year) OVER w = year - 1 THEN round(points9 - lag(points9) OVER w, 9) END AS points_change,
       CASE WHEN lag(year) OVER w = year - 1 THEN lag(rnk) OVER w - rnk END AS rank_change
FROM ranked
WINDOW w AS (PARTITION BY unit_code, node_code ORDER BY year)
{order}
"""


def duckdb_query(fw: Framework, units: pd.DataFrame, *, enum: bool, order: bool, table: str = "scores") -> str:
    def enum_of(values) -> str:
        return "ENUM(" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + ")"
    if enum:
        codes = ["total", *fw.nodes["code"]]
        cols = {"unit_code": f"CAST(unit_code AS {enum_of(sorted(units['code']))})",
                "node_code": f"CAST(node_code AS {enum_of(codes)})",
                "level": f"CAST(level AS {enum_of(['index', 'field', 'criterion', 'subcriterion'])})"}
    else:
        cols = {"unit_code": "unit_code", "node_code": "node_code", "level": "level"}
    return SQL.format(bonus_cap=fw.bonus_cap if fw.bonus_cap is not None else 0,
                      penalty_cap=fw.penalty_cap if fw.penalty_cap is not None else 0,
                      order="ORDER BY unit_code, year, node_pos" if order else "", table=table, **cols)


def run_duckdb(con: duckdb.DuckDBPyConnection, query: str) -> pd.DataFrame:
    return con.sql(query).df()


# -- checking ----------------------------------------------------------------------

def compare(ours: pd.DataFrame, theirs: pd.DataFrame, sample_units: list[str]) -> tuple[int, float]:
    """Rows compared and the largest absolute difference; raises on any mismatch."""
    key = ["unit_code", "year", "node_code"]
    a = ours[ours["unit_code"].isin(sample_units)].astype({"unit_code": str, "node_code": str})
    b = theirs[theirs["unit_code"].isin(sample_units)].astype({"unit_code": str, "node_code": str})
    both = a.merge(b, on=key, suffixes=("", "_duckdb"), how="outer", indicator=True)
    if not (both["_merge"] == "both").all():
        raise AssertionError(f"row sets differ: {both['_merge'].value_counts().to_dict()}")
    worst = 0.0
    for col in COMPARED:
        x = both[col].astype("float64").to_numpy(na_value=np.nan)
        y = both[f"{col}_duckdb"].astype("float64").to_numpy(na_value=np.nan)
        if not np.array_equal(np.isnan(x), np.isnan(y)):
            raise AssertionError(f"{col}: missing values differ")
        diff = np.abs(x - y)
        diff = float(np.nanmax(diff)) if np.isfinite(diff).any() else 0.0
        tol = 0 if col in ("rank", "rank_change") else 2e-9
        if diff > tol:
            raise AssertionError(f"{col}: largest difference {diff}")
        worst = max(worst, diff)
    return len(both), worst


# -- the report ----------------------------------------------------------------------

def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        mem = 0
    return (f"{os.cpu_count()} cores ({cpu}), {mem / 2**20:.1f} GiB RAM, Python {platform.python_version()}, "
            f"pandas {pd.__version__}, numpy {np.__version__}, duckdb {duckdb.__version__}")


def in_child(fn):
    """Run ``fn()`` in a forked copy of this process and return what it returns (a dict).

    The child starts with the data already in memory, so its peak resident
    memory minus its start is what the engine itself needed, untouched by
    memory that earlier runs freed but the allocator kept.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        try:
            payload = {"ok": True, **fn()}
        except BaseException as exc:  # report, never fall back into the parent's code
            payload = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        with os.fdopen(write, "w") as fh:
            json.dump(payload, fh)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        payload = json.load(fh)
    os.waitpid(pid, 0)
    if not payload.pop("ok"):
        raise RuntimeError(payload["error"])
    return payload


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="roll-up + ranks + change: parindex vs DuckDB SQL")
    ap.add_argument("--units", type=int, default=10_500)
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="DuckDB threads (default: all cores)")
    ap.add_argument("--sample", type=int, default=200, help="units whose rows are compared")
    ap.add_argument("--categorical", action="store_true",
                    help="give unit_code and node_code as categoricals (default: str columns)")
    args = ap.parse_args(argv)

    print(machine())
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    (fw, units, scores), gen = timed(lambda: generate(args.units, args.years, seed=args.seed,
                                                                 categorical=args.categorical))
    print(f"data: {len(units):,} units x {len(fw.leaves)} leaves x {args.years} years = {len(scores):,} score rows, "
          f"codes as {'categoricals' if args.categorical else 'str'} "
          f"(generated in {gen['wall']:.1f} s; RSS {gen['rss_peak']:,.0f} MiB)", flush=True)
    anc = ancestry_table(fw)
    rng = np.random.default_rng(args.seed)
    sample = sorted(rng.choice(units["code"].to_numpy(object), size=min(args.sample, len(units)), replace=False))
    reference = run_parindex(scores, fw)  # kept to check the DuckDB results against
    print(f"result rows: {len(reference):,}", flush=True)

    def parindex_run() -> dict:
        out, stats = timed(run_parindex, scores, fw)
        return stats

    def duckdb_run(enum: bool, order: bool, check: bool, native: bool = False):
        def run() -> dict:
            con = duckdb.connect()
            con.execute(f"SET threads = {args.threads}")
            con.register("scores", scores)
            con.register("anc", anc)
            table, load = "scores", None
            if native:  # copy the scores into a DuckDB table first; that time is reported apart
                _, load = timed(con.execute, "CREATE TABLE scores_t AS SELECT * FROM scores")
                table = "scores_t"
            out, stats = timed(run_duckdb, con, duckdb_query(fw, units, enum=enum, order=order, table=table))
            if load is not None:
                stats["load"] = load["wall"]
            if check:
                stats["compared"], stats["worst"] = compare(reference, out, sample)
                stats["rows"] = len(out)
            return stats
        return run

    variants = {
        "parindex (roll_up + rank + add_rank_change)": lambda i: parindex_run,
        "DuckDB SQL, VARCHAR out, ordered": lambda i: duckdb_run(False, True, i == 0),
        "DuckDB SQL, ENUM out, ordered": lambda i: duckdb_run(True, True, i == 0),
        "DuckDB SQL on a DuckDB table (load apart), ENUM out, unordered":
            lambda i: duckdb_run(True, False, i == 0, native=True),
    }
    runs: dict[str, list[dict]] = {k: [] for k in variants}
    for i in range(args.repeat):
        for name, make in variants.items():
            stats = in_child(make(i))
            runs[name].append(stats)
            print(f"  run {i + 1} {name:62s} wall {stats['wall']:6.2f} s  cpu {stats['cpu']:6.2f} s  "
                  f"peak RSS {stats['rss_peak']:,.0f} MiB (+{stats['rss_peak'] - stats['rss_start']:,.0f})",
                  flush=True)
            if "load" in stats:
                print(f"    (copying the scores into the DuckDB table took {stats['load']:.2f} s more)", flush=True)
            if "compared" in stats:
                print(f"    same numbers as parindex on {stats['compared']:,} rows of {len(sample)} units "
                      f"(largest float difference {stats['worst']:.1e}); {stats['rows']:,} rows in all", flush=True)
    best = {name: min(r, key=lambda s: s["wall"]) for name, r in runs.items()}
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"input in memory before each run: {best[next(iter(best))]['rss_start']:,.0f} MiB RSS "
          f"(scores, units, and the reference result)\n")
    first = next(iter(best))
    print("| engine | best wall (s) | its CPU (s) | median wall (s) | extra peak RSS (MiB) | parindex / engine |")
    print("|---|---|---|---|---|---|")
    for name, s in best.items():
        med = float(np.median([r["wall"] for r in runs[name]]))
        extra = max(r["rss_peak"] - r["rss_start"] for r in runs[name])
        print(f"| {name} | {s['wall']:.2f} | {s['cpu']:.2f} | {med:.2f} | {extra:,.0f} | "
              f"{best[first]['wall'] / s['wall']:.2f} |")


if __name__ == "__main__":
    main()
