"""40 editor processes save into one tenant on PostgreSQL: conflicts detected, no update lost, the audit complete.

The workload is ``bench/bench_pg_saves.py`` (the benchmark of bench/RESULTS.md),
run smaller: editors in pairs on the same unit, each as the application role
with their own access token, through the store. ``verify`` checks every row's
version history against what the editors recorded and the audit log against
both.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from pg_deployment import deployment

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_pg_saves", ROOT / "bench" / "bench_pg_saves.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_forty_editors_lose_no_update(pg_server):
    bench = _bench()
    with deployment(pg_server, prefix="conc") as d:
        figures = bench.run(d.owner_url, d.app_url, editors=40, saves=25)
        checked = bench.verify(d.owner_url, figures)
    shown = {k: v for k, v in figures.items() if k not in ("results", "setup")}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "concurrency_pg.json").write_text(json.dumps({**shown, "verified": checked}, indent=1))
    print(f"\n40 editors: {figures['saves']} saves, {figures['conflicts']} conflicts resolved, "
          f"{figures['saves_per_second']} saves/s ({figures['attempts_per_second']} transactions/s)")
    assert figures["editors"] == 40 and len(figures["results"]) == 40
    assert figures["saves"] == 40 * 25 and figures["unchanged"] == 0
    assert figures["conflicts"] > 0                      # the pairs did collide, and every collision was caught
    assert checked["rows"] > 0 and checked["audit_rows"] == figures["saves"] == checked["audit_rows"]
    # every editor wrote only its own unit; each conflict cost one more attempt, nothing else
    assert figures["attempts"] == figures["saves"] + figures["conflicts"]
    assert figures["saves_per_second"] > 20, figures   # a floor against gross regressions; the figures: bench/RESULTS.md
