"""Run every benchmark script of bench/ (``bench_*.py``) and print a summary.

Each script runs in its own process with its default arguments (national
scale: they take minutes and gigabytes; see each script's docstring and
``bench/RESULTS.md``). Its output is shown as it comes; the summary at the
end gives, per script, the exit status, the wall time and the lines of its
output that carry its figures (lines starting with ``summary:`` and the rows
of its result tables).

Usage::

    .venv/bin/python bench/run_all.py                 # every bench_*.py (what `make bench` runs)
    .venv/bin/python bench/run_all.py import rollup   # only bench_import.py and bench_rollup.py
    .venv/bin/python bench/run_all.py --list
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts() -> list[Path]:
    return sorted(HERE.glob("bench_*.py"))


def figures(lines: list[str]) -> list[str]:
    """The lines of a script's output worth repeating in the summary."""
    keep = [ln for ln in lines if ln.startswith("summary:") or (ln.startswith("|") and not ln.startswith("|---"))]
    return keep or lines[-5:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="run only these (bench_NAME.py or NAME)")
    ap.add_argument("--list", action="store_true", help="list the scripts and exit")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds allowed per script")
    args = ap.parse_args(argv)

    found = scripts()
    if args.list:
        for p in found:
            print(p.name)
        return 0
    if args.names:
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in (n.removesuffix(".py") for n in args.names)}
        unknown = wanted - {p.stem for p in found}
        if unknown:
            print(f"run_all: no such benchmark: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        found = [p for p in found if p.stem in wanted]

    results = []
    for script in found:
        print(f"\n=== {script.name} ===", flush=True)
        t0 = time.perf_counter()
        lines: list[str] = []
        proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, cwd=HERE.parent, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                print(line, end="", flush=True)
                lines.append(line.rstrip("\n"))
                if time.perf_counter() - t0 > args.timeout:
                    proc.kill()
                    lines.append(f"(stopped after {args.timeout:.0f} s)")
                    break
            status = proc.wait()
        except KeyboardInterrupt:
            proc.kill()
            raise
        results.append((script.name, status, time.perf_counter() - t0, figures(lines)))

    print("\n=== summary ===")
    for name, status, wall, keep in results:
        state = "ok" if status == 0 else f"exit status {status}"
        print(f"\n{name}: {state}, {wall:.0f} s")
        for ln in keep:
            print(f"  {ln}")
    return 0 if all(status == 0 for _, status, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
