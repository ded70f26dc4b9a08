"""Benchmark: a short query range read as a window of time, against a read of every record (issue 15).

Not a timed test. A query of one day, one hour or one week over a year-long 1,000-machine store used to read
each equipment's whole history; the engine now reads only the records near the range
(``zhizao.kpi.elements.ReadWindow``, chosen when the range is shorter than ``WINDOW_SHARE`` of the data). This is
the kernel's part of an incremental update (recompute the buckets a load touched) and of a live view.

What it does, on the bounded-memory benchmark's 1,000-machine store (``bounded_memory.py --replicas 10``: 15.9 M
state records, stored in equipment order as an ingest of whole files leaves it) and on a copy of it stored in
time order (day by day, as a live listener or daily files leave a store; built once, not timed):

- per query (``period``, ``[start, end)``), ``--repeats`` times in turn: ``compute_elements`` reading every
  record (``WINDOW_SHARE = 0``) and reading the window (the default), each with the store's facts read before
  (``EngineContext.read``, not timed: a server keeps them), and the window's own facts (``ReadWindow.read``)
  timed as part of the window's run;
- checks that both give the same elements and loss reasons to the last bit;
- writes ``benchmarks/results/window_read.json`` and ``.md`` with the median times and the load.

Usage::

    flock /tmp/zhizao-bench.lock .venv/bin/python benchmarks/window_read.py --workdir /tmp/zhizao-bm
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import machine  # noqa: E402

QUERIES = [("hour", "2025-09-15T00:00:00Z", "2025-09-16T00:00:00Z", "one day, hourly"),
           ("hour", "2025-09-15T10:00:00Z", "2025-09-15T11:00:00Z", "one hour"),
           ("day", "2025-09-15T00:00:00Z", "2025-09-22T00:00:00Z", "one week, daily")]


def time_ordered(src: Path, dst: Path) -> Path:
    """A copy of store ``src`` whose states and counts are stored day by day (then by equipment)."""
    import shutil

    import duckdb

    if dst.exists():
        return dst
    tmp = dst.with_suffix(".tmp.duckdb")
    shutil.copy(src, tmp)
    con = duckdb.connect(str(tmp))
    for table, at in (("states", "start"), ("production", 'coalesce(start, "end")')):
        con.execute(f"CREATE TABLE _t AS SELECT * FROM {table} ORDER BY date_trunc('day', {at}), equipment_id, "
                    f"{at}")
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} SELECT * FROM _t")
        con.execute("DROP TABLE _t")
    con.execute("CHECKPOINT")
    con.close()
    tmp.rename(dst)
    return dst


def run(db: Path, repeats: int) -> list[dict]:
    import duckdb
    import pandas as pd

    from zhizao.kpi import elements as engine
    from zhizao.kpi.partitions import EngineContext
    from zhizao.settings import Settings

    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET enable_progress_bar = false")
    ctx = EngineContext.read(con, Settings())
    rows = []
    for period, a, b, label in QUERIES:
        times: dict[str, list[float]] = {"every": [], "window": []}
        out = {}
        for _ in range(repeats):
            for how, share in (("every", 0.0), ("window", engine.WINDOW_SHARE)):
                saved = engine.WINDOW_SHARE
                engine.WINDOW_SHARE = share
                try:
                    t = time.perf_counter()
                    res = engine.compute_elements(con, period, a, b, context=ctx)
                    times[how].append(time.perf_counter() - t)
                finally:
                    engine.WINDOW_SHARE = saved
                out[how] = res
        try:
            pd.testing.assert_frame_equal(out["every"].elements, out["window"].elements, check_exact=True)
            pd.testing.assert_frame_equal(out["every"].reasons, out["window"].reasons, check_exact=True)
            same = True
        except AssertionError:
            same = False
        rows.append({"query": label, "period": period, "start": a, "end": b, "rows": len(out["window"].elements),
                     "every_s": statistics.median(times["every"]), "window_s": statistics.median(times["window"]),
                     "every_runs": times["every"], "window_runs": times["window"], "identical": same,
                     "loadavg": os.getloadavg()})
        print(json.dumps(rows[-1]), flush=True)
    con.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/zhizao-bm"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "window_read.json")
    a = ap.parse_args()
    src = a.workdir / "x10.duckdb"
    if not src.exists():
        sys.exit(f"no {src}: build it with benchmarks/bounded_memory.py --replicas 10 --steps stream")
    result = {"benchmark": "window_read", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "command": "python benchmarks/window_read.py " + " ".join(sys.argv[1:]), "machine": machine(),
              "loadavg_at_start": os.getloadavg(), "stores": []}
    for label, db in (("equipment order (files)", src),
                      ("time order (live, daily)", time_ordered(src, a.workdir / "x10_time_ordered.duckdb"))):
        result["stores"].append({"store": label, "path": str(db), "queries": run(db, a.repeats)})
    result["loadavg_at_end"] = os.getloadavg()
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    a.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"# A short query range read as a window of time ({r['date']})", "",
             f"Machine: {m.get('nproc')} cores, {m.get('cpu_model')}, {m.get('memory_gib')} GiB; load average "
             f"{r['loadavg_at_start'][0]:.1f} at start, {r['loadavg_at_end'][0]:.1f} at end. Store: 1,000 machines x "
             "365 days, 15.9 M state records, 11.1 M counts (`bounded_memory.py --replicas 10`). Median of the "
             "repeats; the store's facts (`EngineContext.read`) read before, not timed; the window's own facts "
             "timed with it.", "",
             "| store | query | rows | every record s | window s | every / window | identical |",
             "|---|---|---|---|---|---|---|"]
    for s in r["stores"]:
        for q in s["queries"]:
            lines.append(f"| {s['store']} | {q['query']} | {q['rows']:,} | {q['every_s']:.2f} | {q['window_s']:.2f} | "
                         f"{q['every_s'] / q['window_s']:.1f}x | {'yes' if q['identical'] else '**no**'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
