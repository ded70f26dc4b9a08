"""Benchmark: verification of N simulated projects with intervals (issue target: 1,000 in under 60 s, 2 cores).

Run on demand: ``.venv/bin/python benchmarks/verify_programme.py [--projects 1000]``. Writes
benchmarks/results/verify_programme.json. The simulated programme (zhizao.simulate.programme) is generated
and ingested first (timed separately); the figure is the wall time of verifying every project's five
indicators with intervals (``zhizao.verify.verify_all_projects``), including the elements computation the
verification needs, in one process.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--projects", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "verify_programme.json")
    a = ap.parse_args()
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
        ws = zhizao.connect(tmp / "p.duckdb")  # a fresh workspace: nothing cached
        importlib.import_module("zhizao.verify.model")  # imports are not part of the figure
        t = time.perf_counter()
        results = verify_all_projects(ws)
        t_verify = time.perf_counter() - t
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
    out = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "projects": a.projects, "results": len(results), "with_interval": sum(r.ci_low is not None for r in results),
        "seconds": {"generate_and_write": round(t_gen, 2), "ingest": round(t_ingest, 2), "verify": round(t_verify, 2)},
        "per_project_ms": round(1000 * t_verify / a.projects, 1),
        "target": {"verify_seconds": 60, "met": t_verify < 60},
        "recovered": recovered,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
