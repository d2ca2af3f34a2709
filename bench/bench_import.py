"""Benchmark: validated import of a national wide score sheet vs a bare pandas read of the same file.

Writes one xlsx workbook the way provinces fill the wide template: a merged
title row, a header row (``Mã đơn vị``, ``Tên đơn vị``, ``Năm`` and one
column per leaf code) and one row per commune, 10,500 communes x 88 leaf
columns (924,000 score cells, about 1 % blank), from ``bench/datagen.py``
(seeded, invented data; every leaf self-assessed so that all 88 columns take
self scores). Then times, in the same process and alternating:

(a) parindex: ``read_scores(path, framework, units)``: the file's safety
    check, the sheet read with python-calamine, the header search, and the
    validation of every cell (unit codes, year, leaf codes, numbers, blanks,
    maxima, duplicates) into the long form (924,000 rows);
(b) the baseline: ``pandas.read_excel(path, engine="openpyxl", header=1)``,
    a bare read into a wide DataFrame without any check;
(c) for reference only: ``pandas.read_excel(engine="calamine")``.

The goal is (a) / (b) <= 0.25. The long table read by (a) is checked
against the generated values. Best wall time of each is reported, with its
CPU time; the machine may be shared.

Usage::

    .venv/bin/python bench/bench_import.py [--units 10500] [--repeat 3] [--baseline-repeat 2] [--csv]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from datagen import make_framework, make_scores, make_units  # noqa: E402

from parindex_lib.framework import Framework, framework_from_nodes  # noqa: E402
from parindex_lib.importing import read_scores  # noqa: E402

YEAR = 2024


def machine() -> str:
    cpu, mem = "unknown CPU", 0
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
        mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        pass
    from importlib.metadata import version

    return (f"{os.cpu_count()} cores ({cpu}), {mem / 2**20:.1f} GiB RAM, Python {platform.python_version()}, "
            f"pandas {pd.__version__}, openpyxl {version('openpyxl')}, python-calamine {version('python-calamine')}")


def all_self(fw: Framework) -> Framework:
    """The same tree with every leaf self-assessed (a self-score sheet has a column for each)."""
    nodes = fw.nodes.copy()
    nodes["assessed_by"] = np.where(nodes["is_leaf"], "self", "computed")
    meta = {"id": fw.id + "_self", "name_vi": fw.name_vi, "name_en": fw.name_en, "level": fw.level,
            "years": list(fw.years), "max_points": fw.max_points, "status": "demo"}
    return framework_from_nodes(nodes.drop(columns=["rubric"]), source="bench_import", **meta)


def write_sheet(path: Path, units: pd.DataFrame, codes: list[str], values: np.ndarray) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                         "strings_to_formulas": False, "strings_to_urls": False})
    ws = wb.add_worksheet("Bảng điểm")
    title = wb.add_format({"bold": True, "align": "center"})
    ncols = 3 + len(codes)
    ws.merge_range(0, 0, 0, ncols - 1, f"BẢNG TỰ CHẤM ĐIỂM CHỈ SỐ CCHC CẤP XÃ NĂM {YEAR} (dữ liệu giả lập)", title)
    ws.write_row(1, 0, ["Mã đơn vị", "Tên đơn vị", "Năm"] + codes)
    for i, (code, name) in enumerate(zip(units["code"], units["name"]), start=2):
        ws.write_string(i, 0, code)
        ws.write_string(i, 1, name)
        ws.write_number(i, 2, YEAR)
        row = values[i - 2]
        for j, v in enumerate(row.tolist(), start=3):
            if v == v:  # NaN stays blank
                ws.write_number(i, j, v)
    wb.close()


def timed(fn, *args, **kwargs):
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=10_500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3, help="runs of read_scores")
    ap.add_argument("--baseline-repeat", type=int, default=2, help="runs of pandas.read_excel with openpyxl")
    ap.add_argument("--csv", action="store_true", help="also time the same sheet as CSV (read_scores vs read_csv)")
    ap.add_argument("--keep", metavar="DIR", help="write the files into DIR and keep them")
    args = ap.parse_args(argv)

    print(machine())
    print(f"date {dt.date.today().isoformat()}; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    fw = all_self(make_framework(seed=args.seed, first_year=YEAR, n_years=1))
    units = make_units(args.units, seed=args.seed)
    long = make_scores(fw, units, [YEAR], seed=args.seed)
    codes = fw.leaves["code"].tolist()
    values = long["self_score"].to_numpy().reshape(len(units), len(codes))

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_import_"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"bang_diem_{args.units}_xa.xlsx"
    _, w, _ = timed(write_sheet, path, units, codes, values)
    print(f"sheet: {len(units):,} rows x {len(codes)} leaf columns ({values.size:,} cells, "
          f"{int(np.isnan(values).sum()):,} blank), {path.stat().st_size / 2**20:.1f} MiB, written in {w:.1f} s",
          flush=True)

    runs: dict[str, list[tuple[float, float]]] = {"parindex": [], "openpyxl": [], "calamine": []}
    for i in range(max(args.repeat, args.baseline_repeat)):
        if i < args.repeat:
            got, wall, cpu = timed(read_scores, path, fw, units)
            runs["parindex"].append((wall, cpu))
            print(f"  run {i + 1} read_scores (validated, long form)     wall {wall:6.2f} s  cpu {cpu:6.2f} s",
                  flush=True)
            if i == 0:
                assert len(got) == values.size, len(got)
                np.testing.assert_array_equal(got["self_score"].to_numpy(), values.ravel())
                assert (got["unit_code"].to_numpy() == np.repeat(units["code"].to_numpy(), len(codes))).all()
                del got
        if i < args.baseline_repeat:
            df, wall, cpu = timed(pd.read_excel, path, engine="openpyxl", header=1)
            runs["openpyxl"].append((wall, cpu))
            print(f"  run {i + 1} pandas.read_excel(engine='openpyxl')  wall {wall:6.2f} s  cpu {cpu:6.2f} s",
                  flush=True)
            if i == 0:
                assert df.shape == (len(units), 3 + len(codes)), df.shape
            del df
    df, wall, cpu = timed(pd.read_excel, path, engine="calamine", header=1)
    runs["calamine"].append((wall, cpu))
    print(f"  run 1 pandas.read_excel(engine='calamine') wall {wall:6.2f} s  cpu {cpu:6.2f} s", flush=True)
    del df

    best = {k: min(v) for k, v in runs.items() if v}
    ratio = best["parindex"][0] / best["openpyxl"][0]
    ratio_cpu = best["parindex"][1] / best["openpyxl"][1]
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| reader | runs | best wall (s) | CPU of that run (s) | parindex / reader (wall) |")
    print("|---|---|---|---|---|")
    names = {"parindex": f"parindex read_scores (checked, {values.size:,}-row long form)",
             "openpyxl": "pandas.read_excel, openpyxl (bare, wide)",
             "calamine": "pandas.read_excel, calamine (bare, wide; reference)"}
    for k, (wall, cpu) in best.items():
        print(f"| {names[k]} | {len(runs[k])} | {wall:.2f} | {cpu:.2f} | {best['parindex'][0] / wall:.2f} |")

    if args.csv:
        q = folder / f"bang_diem_{args.units}_xa.csv"
        table = pd.DataFrame(values, columns=codes)
        table.insert(0, "Năm", YEAR)
        table.insert(0, "Mã đơn vị", units["code"])
        table.to_csv(q, index=False, sep=";", decimal=",")
        got, wall_p, cpu_p = timed(read_scores, q, fw, units)
        _, wall_c, cpu_c = timed(pd.read_csv, q, sep=";", decimal=",")
        print(f"| parindex read_scores, CSV (; and decimal comma) | 1 | {wall_p:.2f} | {cpu_p:.2f} | 1.00 |")
        print(f"| pandas.read_csv, same CSV (bare) | 1 | {wall_c:.2f} | {cpu_c:.2f} | {wall_p / wall_c:.2f} |")

    verdict = "met" if ratio <= 0.25 else "NOT met"
    print(f"\nsummary: validated xlsx import of {len(units):,} x {len(codes)}: read_scores {best['parindex'][0]:.2f} s "
          f"vs pandas.read_excel(openpyxl) {best['openpyxl'][0]:.2f} s: ratio {ratio:.3f} wall, {ratio_cpu:.3f} CPU "
          f"(goal <= 0.25: {verdict})")
    if not args.keep:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
    return 0 if ratio <= 0.25 else 1


if __name__ == "__main__":
    sys.exit(main())
