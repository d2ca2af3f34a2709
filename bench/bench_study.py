"""Benchmark: a full correlation study, parindex vs scipy.stats.bootstrap.

The study of the issue: PAR INDEX (total and its 8 fields) against every
external component (PCI total and 10 sub-indices, PAPI total and 8
dimensions, SIPAS) in each of 4 years, over the 63 provinces, 2,000 bootstrap
resamples, Spearman and Kendall (and Pearson, which needs no bootstrap).
9 x 21 x 4 = 756 pairs: more than the 8 x 19 x 4 = 608 of the issue's
sentence, because the PAR total and the SIPAS index are counted too.

Synthetic data (seeded, complete: n = 63 in every pair, the worst case), so
that every pair has the full sample. Timed in the same process:

(a) parindex: ``correlate(..., method=M, n_boot=2000)`` over the whole study
    (p-values from scipy.stats, Benjamini-Hochberg, vectorised bootstrap);
(b) the baseline: ``scipy.stats.bootstrap(paired=True, vectorized=False,
    method="percentile", n_resamples=2000)`` with ``scipy.stats.spearmanr``
    / ``kendalltau`` as the statistic, looping over pairs. By default on a
    sample of ``--baseline-pairs`` pairs and extrapolated to the study
    (``--full-baseline`` runs all 756, which takes many minutes).

Checks printed: the parindex intervals equal a plain Python loop over the
same resamples (:func:`parindex_lib.correlation.bootstrap_indices`) for a
few pairs, and equal scipy's intervals (scipy.stats.bootstrap, given the
same seed, draws the same paired resamples) for every pair timed.

Usage::

    python bench/bench_study.py [--n-boot 2000 --repeat 3 --baseline-pairs 8 --full-baseline --limit 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from parindex_lib.correlation import bootstrap_indices, correlate  # noqa: E402
from parindex_lib.external import COMPONENTS  # noqa: E402
from parindex_lib.provinces import province_table  # noqa: E402

YEARS = (2021, 2022, 2023, 2024)
STATS = {"spearman": stats.spearmanr, "kendall": stats.kendalltau}


def study_data(seed: int = 0) -> pd.DataFrame:
    """A complete long table: 63 provinces x 4 years x (9 PAR + 21 external) variables."""
    rng = np.random.default_rng(seed)
    codes = province_table("old")["province_code"].tolist()
    rows = []
    for year in YEARS:
        common = rng.normal(size=len(codes))
        for index in ("PAR", "PCI", "PAPI", "SIPAS"):
            for comp in COMPONENTS[index]:
                if comp.endswith("rank"):
                    continue
                values = np.round(50 + 10 * (0.5 * common + rng.normal(size=len(codes))), 2)
                rows += [(c, year, index, comp, v) for c, v in zip(codes, values)]
    return pd.DataFrame(rows, columns=["province_code", "year", "index", "component", "value"])


def wide_pairs(long: pd.DataFrame) -> list[tuple[int, str, str, np.ndarray, np.ndarray]]:
    long = long.assign(label=long["index"] + ":" + long["component"])
    out = []
    for year in YEARS:
        w = long[long["year"] == year].pivot(index="province_code", columns="label", values="value")
        xs = [c for c in w.columns if c.startswith("PAR:")]
        ys = [c for c in w.columns if not c.startswith("PAR:")]
        out += [(year, x, y, w[x].to_numpy(), w[y].to_numpy()) for x in xs for y in ys]
    return out


def time_parindex(long: pd.DataFrame, method: str, n_boot: int, repeat: int) -> tuple[float, pd.DataFrame]:
    best, res = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = correlate(long, x="PAR", y=("PCI", "PAPI", "SIPAS"), method=method, n_boot=n_boot, seed=0)
        best = min(best, time.perf_counter() - t0)
    return best, res


def time_baseline(pairs, method: str, n_boot: int) -> tuple[float, list[tuple[float, float]]]:
    fn = STATS[method]
    cis = []
    t0 = time.perf_counter()
    for _, _, _, x, y in pairs:
        fn(x, y)  # the p-value, as parindex computes it
        res = stats.bootstrap((x, y), lambda a, b: fn(a, b).statistic, paired=True, vectorized=False,
                              n_resamples=n_boot, method="percentile", random_state=np.random.default_rng(0))
        cis.append((res.confidence_interval.low, res.confidence_interval.high))
    return time.perf_counter() - t0, cis


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3, help="parindex runs per method; the best is reported")
    ap.add_argument("--baseline-pairs", type=int, default=8, help="pairs timed with scipy.stats.bootstrap")
    ap.add_argument("--full-baseline", action="store_true", help="run the baseline on all pairs")
    ap.add_argument("--limit", type=float, default=5.0, help="seconds allowed for each full study")
    args = ap.parse_args(argv)

    long = study_data()
    pairs = wide_pairs(long)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}")
    print(f"study: 9 PAR variables x 21 external x {len(YEARS)} years = {len(pairs)} pairs, n = 63, "
          f"{args.n_boot} resamples\n")
    sample = pairs if args.full_baseline else [pairs[i] for i in
                                               np.linspace(0, len(pairs) - 1, args.baseline_pairs).astype(int)]
    failed = False
    print(f"{'method':<9} {'parindex s':>11} {'baseline s':>11} {'speed-up':>9}  baseline")
    for method in ("pearson", "spearman", "kendall"):
        t, res = time_parindex(long, method, args.n_boot, args.repeat)
        if method == "pearson":
            print(f"{method:<9} {t:>11.2f} {'-':>11} {'-':>9}  (Fisher z interval, no bootstrap)")
            failed |= t > args.limit
            continue
        tb, cis = time_baseline(sample, method, args.n_boot)
        full = tb * len(pairs) / len(sample)
        how = "measured on all pairs" if args.full_baseline else f"{len(sample)} pairs measured, extrapolated"
        print(f"{method:<9} {t:>11.2f} {full:>11.1f} {full / t:>8.0f}x  {how}")
        failed |= t > args.limit
        # checks
        keyed = res.set_index(["year", "x", "y"])
        diffs = [max(abs(keyed.loc[(yr, x, y), "ci_low"] - lo), abs(keyed.loc[(yr, x, y), "ci_high"] - hi))
                 for (yr, x, y, _, _), (lo, hi) in zip(sample, cis)]
        exact = 0.0
        for yr, x, y, xv, yv in sample[:3]:
            idx = bootstrap_indices(len(xv), args.n_boot, 0)
            with np.errstate(all="ignore"):
                dist = np.array([STATS[method](xv[i], yv[i]).statistic for i in idx])
            lo, hi = np.percentile(dist[np.isfinite(dist)], [2.5, 97.5])
            exact = max(exact, abs(keyed.loc[(yr, x, y), "ci_low"] - lo), abs(keyed.loc[(yr, x, y), "ci_high"] - hi))
        print(f"{'':<9} check: |CI - naive loop over the same resamples| <= {exact:.1e}; "
              f"|CI - scipy.stats.bootstrap, same seed| <= {max(diffs):.1e}")
    verdict = "FAIL" if failed else "ok"
    print(f"\nlimit {args.limit:g} s per full study: {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
