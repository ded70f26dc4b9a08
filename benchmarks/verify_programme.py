"""Benchmark: verification of N simulated projects with intervals (issue target: 1,000 in under 60 s, 2 cores).

Run on demand: ``flock /tmp/zhizao-bench.lock .venv/bin/python benchmarks/verify_programme.py
[--projects 1000] [--workers 2] [--serial]``. Writes benchmarks/results/verify_programme.json. The simulated
programme (zhizao.simulate.programme) is generated and ingested first (timed separately); the figure is the
wall time of verifying every project's five indicators with intervals and storing the results
(``zhizao.verify.verify_all_projects(ws, workers=N)``) from a fresh workspace, including the bulk reads and the
elements computation the verification needs. ``--serial`` also times one process (``workers=1``) on another
fresh workspace and checks that both runs give the same results. The load average (``os.getloadavg``) before
and after each timed run and its CPU time (``os.times``: this process, and the pool's workers) are recorded:
the machine is shared, and other processes' load slows the wall time, not the CPU time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import zhizao
from zhizao.demo import PROGRAMME_INDICATOR_TRUTH, PROGRAMME_ORDER
from zhizao.portfolio import programme_statistics
from zhizao.simulate import simulate_programme, write_programme
from zhizao.verify import verify_all_projects

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402


def _timed_verify(db: Path, workers: int) -> tuple[float, list, tuple, tuple]:
    ws = zhizao.connect(db)  # a fresh workspace: nothing cached
    load0 = os.getloadavg()
    c0 = os.times()
    t = time.perf_counter()
    results = verify_all_projects(ws, workers=workers)
    seconds = time.perf_counter() - t
    c1 = os.times()
    load1 = os.getloadavg()
    ws.close()
    cpu = {"process": round(c1.user + c1.system - c0.user - c0.system, 2),
           "workers": round(c1.children_user + c1.children_system - c0.children_user - c0.children_system, 2)}
    return seconds, results, load0, load1, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--projects", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "verify_programme.json")
    ap.add_argument("--workers", type=int, default=2, help="processes of verify_all_projects (default 2)")
    ap.add_argument("--serial", action="store_true", help="also time workers=1 and compare the results")
    a = ap.parse_args()
    importlib.import_module("zhizao.verify.model")  # imports are not part of the figure
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        paths = write_programme(simulate_programme(n_projects=a.projects, n_enterprises=max(1, a.projects // 2),
                                                   seed=a.seed), tmp / "data")
        t_gen = time.perf_counter() - t
        ws = zhizao.connect(tmp / "p.duckdb")
        t = time.perf_counter()
        for table in PROGRAMME_ORDER:
            ws.ingest(table, paths[table])
        t_ingest = time.perf_counter() - t
        ws.close()
        t_verify, results, load0, load1, cpu = _timed_verify(tmp / "p.duckdb", a.workers)
        serial = None
        if a.serial:
            t1, res1, l0, l1, cpu1 = _timed_verify(tmp / "p.duckdb", 1)
            same = [x.to_dict() for x in res1] == [x.to_dict() for x in results]
            serial = {"seconds": round(t1, 2), "per_project_ms": round(1000 * t1 / a.projects, 1), "cpu_seconds": cpu1,
                      "load_average_before": [round(x, 2) for x in l0],
                      "load_average_after": [round(x, 2) for x in l1], "same_results_as_pool": same}
        ws = zhizao.connect(tmp / "p.duckdb")
        stats = programme_statistics(ws)
        ws.close()
        truth = pd.read_csv(paths["truth_projects"])

    av = stats["averages"]
    av = av[av["basis"] == "verified"].set_index("indicator")
    recovered = {}
    for ind, col in PROGRAMME_INDICATOR_TRUTH.items():
        if ind in av.index:
            known = float(truth[col].mean())
            recovered[ind] = {"mean": float(av.loc[ind, "mean"]), "ci": [float(av.loc[ind, "ci_low"]),
                              float(av.loc[ind, "ci_high"])], "known": known,
                              "inside": bool(av.loc[ind, "ci_low"] <= known <= av.loc[ind, "ci_high"])}
            drawn = col.replace("true_", "drawn_")
            if drawn in truth:  # the drawn effect at nominal baseline conditions, for comparison
                recovered[ind]["drawn_at_baseline_conditions"] = float(truth[drawn].mean())
    out = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
        "projects": a.projects, "results": len(results), "with_interval": sum(r.ci_low is not None for r in results),
        "workers": a.workers,
        "seconds": {"generate_and_write": round(t_gen, 2), "ingest": round(t_ingest, 2), "verify": round(t_verify, 2)},
        "per_project_ms": round(1000 * t_verify / a.projects, 1),
        "cpu_seconds": cpu,
        "load_average_before": [round(x, 2) for x in load0], "load_average_after": [round(x, 2) for x in load1],
        "serial": serial,
        "target": {"verify_seconds": 60, "met": t_verify < 60},
        "recovered": recovered,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
