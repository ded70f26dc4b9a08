"""Benchmark: ``zhizao compact`` on a store in time order, and the whole-range day table before and after (issue 15).

Not a timed test. A live listener, or one day's file per day, leaves the record tables in time order: every row
group holds every machine, and each partition of whole equipment the engine reads scans them all. This takes
the 1,000-machine year (``bounded_memory.py --replicas 10``, 15.9 M state records, in equipment order) and its
copy in time order (built by ``window_read.py``), and in fresh processes:

1. ``zhizao compact`` on a copy of the time-ordered store (wall time, peak RSS of that process);
2. the elements per equipment and day over the whole range (``iter_elements``, as ``bounded_memory.py``'s
   stream step) on the store in equipment order, in time order, and compacted, ``--repeats`` times in turn;

and writes ``benchmarks/results/compact_store.json`` and ``.md``.

Usage::

    flock /tmp/zhizao-bench.lock .venv/bin/python benchmarks/compact_store.py --workdir /tmp/zhizao-bm
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import machine  # noqa: E402

DAY_TABLE = """
import json, sys, time
import duckdb
from zhizao.kpi.elements import iter_elements
con = duckdb.connect(sys.argv[1], read_only=True)
t = time.perf_counter()
rows = sum(len(p.elements) for p in iter_elements(con, "day"))
print(json.dumps({"wall_s": time.perf_counter() - t, "rows": rows}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/zhizao-bm"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "compact_store.json")
    a = ap.parse_args()
    files, live = a.workdir / "x10.duckdb", a.workdir / "x10_time_ordered.duckdb"
    if not (files.exists() and live.exists()):
        sys.exit("build the stores first: bounded_memory.py --replicas 10, then window_read.py")
    compacted = a.workdir / "x10_compacted.duckdb"
    shutil.copy(live, compacted)
    zhizao = str(Path(sys.executable).with_name("zhizao"))
    result = {"benchmark": "compact_store", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "command": "python benchmarks/compact_store.py " + " ".join(sys.argv[1:]), "machine": machine(),
              "loadavg_at_start": os.getloadavg()}
    t = time.perf_counter()
    p = subprocess.run([zhizao, "compact", "--db", str(compacted)], capture_output=True, text=True, check=True)
    result["compact"] = {"wall_s": time.perf_counter() - t, "output": p.stdout.strip().splitlines(),
                         "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                         "loadavg": os.getloadavg()}
    print(json.dumps(result["compact"]), flush=True)
    runs: dict[str, list[float]] = {"equipment order (files)": [], "time order (live, daily)": [],
                                    "time order, compacted": []}
    stores = dict(zip(runs, (files, live, compacted)))
    rows = {}
    for _ in range(a.repeats):
        for name, db in stores.items():
            out = json.loads(subprocess.run([sys.executable, "-c", DAY_TABLE, str(db)], capture_output=True,
                                            text=True, check=True).stdout)
            runs[name].append(out["wall_s"])
            rows[name] = out["rows"]
            print(name, out, flush=True)
    result["day_table"] = [{"store": n, "rows": rows[n], "median_s": statistics.median(v), "runs": v}
                           for n, v in runs.items()]
    result["loadavg_at_end"] = os.getloadavg()
    compacted.unlink()
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    a.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    m, c = r["machine"], r["compact"]
    lines = [f"# `zhizao compact` on a store in time order ({r['date']})", "",
             f"Machine: {m.get('nproc')} cores, {m.get('cpu_model')}, {m.get('memory_gib')} GiB; load average "
             f"{r['loadavg_at_start'][0]:.1f} at start, {r['loadavg_at_end'][0]:.1f} at end. Store: 1,000 machines x "
             "365 days, 15.9 M state records, 11.1 M counts.", "",
             f"`zhizao compact`: {c['wall_s']:.1f} s wall (the process, start-up included), peak RSS "
             f"{c['peak_rss_mib']:,.0f} MiB; " + "; ".join(c["output"]), "",
             "Elements per equipment and day over the whole range (`iter_elements`, fresh process each, median):", "",
             "| store | rows | median s | runs s |", "|---|---|---|---|"]
    for d in r["day_table"]:
        lines.append(f"| {d['store']} | {d['rows']:,} | {d['median_s']:.1f} | "
                     f"{', '.join(f'{x:.1f}' for x in d['runs'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
