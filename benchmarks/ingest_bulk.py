"""Benchmark of bulk ingest (issue 15): state records per second from canonical Parquet and CSV, against DuckDB's
own bare insert of the same file measured in the same run.

Run on demand (not part of the test suite), under the benchmark lock::

    flock /tmp/zhizao-bench.lock .venv/bin/python benchmarks/ingest_bulk.py --workdir /tmp/ingest-bench
    .venv/bin/python benchmarks/ingest_bulk.py --replicas 1 --repeat 1 --no-old     # 1.6 M states, smoke run

What it does:

1. simulates a base plant (``zhizao.simulate.simulate_plant``, 100 machines x 365 days, seed 0, as
   ``benchmarks/kpi_engine.py``: 1.59 M state records) and writes ``--replicas`` copies of its machines
   (default 10: 1,000 machines, 15.9 M state records; ids prefixed ``R07-``) as one canonical ``states.csv`` (the
   simulator's text: ISO 8601 with offsets) and one ``states.parquet`` (the same records, ``start`` and ``end``
   as TIMESTAMP WITH TIME ZONE), and their equipment as ``equipment.csv``; in file order by machine (not timed);
2. per repeat, each step in a fresh child process and a fresh store, taking turns:

   - ``bare parquet``: ``INSERT INTO t SELECT * FROM read_parquet(file)`` into an empty table ``t`` with the
     canonical columns and types of ``states`` (no validation, no quarantine, no idempotency): the baseline;
   - ``zhizao parquet``: ``zhizao.ingest.load.load_file(con, "states", file)`` into a store holding the
     equipment (loaded first, not timed): read, map, parse, every rule, duplicates, the check against the
     store, insert, quarantine, load log, one transaction; then the same file again (must store nothing:
     ``already_loaded``) and the stored count;
   - ``bare csv`` and ``zhizao csv``: the same for the CSV file (``read_csv`` with type detection for the bare
     insert);
   - with ``--old`` (default on; ``--no-old`` skips it), once: the step-by-step path of the loader
     (``zhizao.ingest.load.BULK = False``), the path before the bulk path existed, on both files;

3. records the machine (``lscpu`` model name, ``nproc``, available memory) and the load average before and after
   each step, and writes ``benchmarks/results/ingest_bulk.json`` and ``ingest_bulk.md``.

Target (issue 15): 1,000,000 state records/s from Parquet and from CSV. The ratio to the bare insert is the
figure that travels between machines.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TARGET = 1_000_000  # state records/s, from Parquet and from CSV


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _machine() -> dict:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "")
    except OSError:
        pass
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for ln in fh:
                if ln.startswith("MemAvailable:"):
                    avail = round(int(ln.split()[1]) / 2**20, 1)
                if ln.startswith("MemTotal:"):
                    total = round(int(ln.split()[1]) / 2**20, 1)
    except OSError:
        total = None
    import duckdb

    return {"cpu_model": model, "nproc": os.cpu_count(), "memory_total_gib": total, "memory_available_gib": avail,
            "platform": platform.platform(), "python": platform.python_version(), "duckdb": duckdb.__version__}


# -- data ------------------------------------------------------------------------------------------------------------
def build_files(work: Path, replicas: int, seed: int) -> dict:
    """The base plant's states and equipment, replicated ``replicas`` times, as CSV and Parquet."""
    import duckdb

    from zhizao.simulate import simulate_plant, write_plant

    files = {"csv": work / f"states_x{replicas}.csv", "parquet": work / f"states_x{replicas}.parquet",
             "equipment": work / f"equipment_x{replicas}.csv"}
    if all(p.exists() for p in files.values()):
        return files
    base = work / "base"
    if not (base / "states.csv").exists():
        _log(f"simulating 100 machines x 365 days (seed {seed})")
        tables = simulate_plant(machines=100, days=365, seed=seed, start="2025-03-03", timezone="Europe/Berlin")
        write_plant({k: tables[k] for k in ("equipment", "states")}, base)
        del tables
        gc.collect()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    pre = "CASE WHEN {c} IS NULL THEN NULL ELSE 'R' || lpad(CAST(r.i AS VARCHAR), 2, '0') || '-' || {c} END"
    states = f"""SELECT {pre.format(c='b.equipment_id')} AS equipment_id, b.start, b."end", b.state, b.category,
                        b.reason
                 FROM range({replicas}) r(i),
                      (SELECT row_number() OVER () AS n, * FROM read_csv('{base / "states.csv"}', all_varchar = true)) b
                 ORDER BY r.i, b.n"""
    _log(f"writing {files['csv'].name} and {files['parquet'].name}")
    con.execute(f"COPY ({states}) TO '{files['csv']}' (FORMAT csv, HEADER)")
    con.execute(f"""COPY (SELECT * REPLACE (CAST(start AS TIMESTAMPTZ) AS start, CAST("end" AS TIMESTAMPTZ) AS "end")
                          FROM read_csv('{files['csv']}', all_varchar = true))
                    TO '{files['parquet']}' (FORMAT parquet)""")
    hier = ", ".join(f"{pre.format(c=f'b.{c}')} AS {c}" if c in ("equipment_id", "work_center", "area") else f"b.{c}"
                     for c in ("equipment_id", "name", "work_center", "area", "site", "enterprise", "timezone",
                               "digital", "epc"))
    con.execute(f"""COPY (SELECT {hier} FROM range({replicas}) r(i),
                          (SELECT row_number() OVER () AS n, * FROM read_csv('{base / "equipment.csv"}',
                                                                              all_varchar = true)) b
                          ORDER BY r.i, b.n) TO '{files['equipment']}' (FORMAT csv, HEADER)""")
    con.close()
    return files


# -- children --------------------------------------------------------------------------------------------------------
def child(mode: str, fmt: str, file: str, equipment: str, db: str) -> dict:
    import duckdb

    for p in (db, db + ".wal"):
        Path(p).unlink(missing_ok=True)
    if mode == "bare":
        from zhizao.schema import SQL_TYPES, TABLES

        con = duckdb.connect(db)
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        cols = ", ".join(f'"{c.name}" {SQL_TYPES[c.type]}' for c in TABLES["states"].columns)
        con.execute(f"CREATE TABLE t ({cols})")
        reader = f"read_parquet('{file}')" if fmt == "parquet" else f"read_csv('{file}')"
        t0 = time.perf_counter()
        n = con.execute(f"INSERT INTO t SELECT * FROM {reader}").fetchall()[0][0]
        wall = time.perf_counter() - t0
        con.close()
        return {"records": int(n), "wall_s": wall}
    import zhizao.ingest.load as L
    from zhizao.store import open_db

    L.BULK = mode == "zhizao"
    con = open_db(db)
    con.execute("SET enable_progress_bar = false")
    L.load_file(con, "equipment", equipment)
    t0 = time.perf_counter()
    rep = L.load_file(con, "states", file)
    wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    again = L.load_file(con, "states", file)
    again_s = time.perf_counter() - t1
    stored = con.execute("SELECT count(*) FROM states").fetchall()[0][0]
    con.close()
    return {"records": rep.loaded, "quarantined": rep.quarantined, "skipped": rep.skipped, "wall_s": wall,
            "reload_already_loaded": again.already_loaded, "reload_s": again_s, "stored_after_reload": int(stored)}


def _run(mode: str, fmt: str, files: dict, db: Path) -> dict:
    load0 = os.getloadavg()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--format", fmt,
           "--file", str(files[fmt]), "--equipment", str(files["equipment"]), "--db", str(db)]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for x in (db, Path(str(db) + ".wal")):
        x.unlink(missing_ok=True)
    if p.returncode != 0:
        raise RuntimeError(f"{mode} {fmt} failed:\n{p.stderr[-3000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r.update(mode=mode, format=fmt, records_per_s=round(r["records"] / r["wall_s"]),
             loadavg_before=[round(x, 2) for x in load0], loadavg_after=[round(x, 2) for x in os.getloadavg()])
    _log(f"{mode:10s} {fmt:7s}: {r['records']:,} records in {r['wall_s']:.2f} s = {r['records_per_s']:,}/s "
         f"(load {load0[0]:.2f} -> {r['loadavg_after'][0]:.2f})")
    return r


# -- main ------------------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicas", type=int, default=10, help="copies of the 100-machine plant (10: 15.9 M states)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--old", action=argparse.BooleanOptionalAction, default=True,
                    help="also time the step-by-step path once per format (default on)")
    ap.add_argument("--workdir", default="/tmp/zhizao-ingest-bench")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--out", default=None, help="JSON result (default benchmarks/results/ingest_bulk.json)")
    ap.add_argument("--child", choices=["bare", "zhizao", "old"], help=argparse.SUPPRESS)
    ap.add_argument("--format", choices=["parquet", "csv"], help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--equipment", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child, a.format, a.file, a.equipment, a.db)))
        return 0

    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(a.out) if a.out else RESULTS / "ingest_bulk.json"
    load_start = [round(x, 2) for x in os.getloadavg()]
    files = build_files(work, a.replicas, a.seed)
    sizes = {k: files[k].stat().st_size for k in ("csv", "parquet")}
    db = work / "bench.duckdb"
    runs = []
    for i in range(a.repeat):
        _log(f"repeat {i + 1}/{a.repeat}")
        for fmt in ("parquet", "csv"):
            runs.append(_run("bare", fmt, files, db))
            runs.append(_run("zhizao", fmt, files, db))
    if a.old:
        for fmt in ("parquet", "csv"):
            runs.append(_run("old", fmt, files, db))
    load_end = [round(x, 2) for x in os.getloadavg()]

    def best(mode: str, fmt: str) -> dict | None:
        xs = [r for r in runs if r["mode"] == mode and r["format"] == fmt]
        if not xs:
            return None
        return {"best_s": min(r["wall_s"] for r in xs), "median_s": statistics.median(r["wall_s"] for r in xs),
                "records": xs[0]["records"],
                "best_records_per_s": round(xs[0]["records"] / min(r["wall_s"] for r in xs)),
                "median_records_per_s": round(xs[0]["records"] / statistics.median(r["wall_s"] for r in xs))}

    summary = {f"{m}_{f}": best(m, f) for m in ("bare", "zhizao", "old") for f in ("parquet", "csv")}
    for fmt in ("parquet", "csv"):
        z, b, bp = summary[f"zhizao_{fmt}"], summary[f"bare_{fmt}"], summary["bare_parquet"]
        summary[f"ratio_{fmt}_over_bare_{fmt}"] = round(z["median_s"] / b["median_s"], 2)
        summary[f"ratio_{fmt}_over_bare_parquet"] = round(z["median_s"] / bp["median_s"], 2)
        summary[f"target_met_{fmt}"] = z["median_records_per_s"] >= TARGET
        old = summary[f"old_{fmt}"]
        if old:
            summary[f"speedup_{fmt}_over_old"] = round(old["best_s"] / z["median_s"], 1)
    z_runs = [r for r in runs if r["mode"] != "bare"]
    checks = {"every_record_stored": all(r["records"] == r["stored_after_reload"] and not r["quarantined"]
                                         for r in z_runs),
              "reload_stores_nothing": all(r["reload_already_loaded"] for r in z_runs)}
    result = {"date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "machine": _machine(),
              "loadavg_at_start": load_start, "loadavg_at_end": load_end, "replicas": a.replicas,
              "file_bytes": sizes, "repeat": a.repeat, "target_records_per_s": TARGET, "summary": summary,
              "checks": checks, "runs": runs}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(render(result))
    print(render(result))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def render(r: dict) -> str:
    m, s = r["machine"], r["summary"]
    n = s["zhizao_parquet"]["records"]
    lines = [
        f"Run {r['date'][:16].replace('T', ' ')} UTC on {m['cpu_model']} ({m['nproc']} cores, nproc), "
        f"{m['memory_total_gib']} GiB RAM ({m['memory_available_gib']} GiB available at the end), Python {m['python']}, "
        f"DuckDB {m['duckdb']}; load average {r['loadavg_at_start'][0]:.2f} at start, {r['loadavg_at_end'][0]:.2f} at "
        f"the end (other work shares the 2 cores; each step's load before and after is in the JSON). {n:,} state "
        f"records (CSV {r['file_bytes']['csv'] / 2**20:,.0f} MiB, Parquet {r['file_bytes']['parquet'] / 2**20:,.0f} "
        f"MiB); each step in a fresh process and a fresh store; best (median) of {r['repeat']}.",
        "",
        "| step | wall s | records/s | / bare insert of the same file | / bare Parquet insert | target 1 M/s |",
        "|---|---|---|---|---|---|",
    ]
    for fmt in ("parquet", "csv"):
        b = s[f"bare_{fmt}"]
        lines.append(f"| bare DuckDB `INSERT INTO t SELECT * FROM read_{fmt}(...)` | {b['best_s']:.2f} "
                     f"({b['median_s']:.2f}) | {b['best_records_per_s']:,} ({b['median_records_per_s']:,}) | 1 | "
                     f"{b['median_s'] / s['bare_parquet']['median_s']:.2f} | |")
        z = s[f"zhizao_{fmt}"]
        lines.append(f"| zhizao `load_file` {fmt} (bulk path) | {z['best_s']:.2f} ({z['median_s']:.2f}) | "
                     f"{z['best_records_per_s']:,} ({z['median_records_per_s']:,}) | "
                     f"{s[f'ratio_{fmt}_over_bare_{fmt}']:.2f} | {s[f'ratio_{fmt}_over_bare_parquet']:.2f} | "
                     f"{'met' if s[f'target_met_{fmt}'] else '**not met**'} |")
        o = s.get(f"old_{fmt}")
        if o:
            lines.append(f"| zhizao `load_file` {fmt}, step-by-step path (before), 1 run | {o['best_s']:.2f} | "
                         f"{o['best_records_per_s']:,} | {o['best_s'] / b['median_s']:.2f} | "
                         f"{o['best_s'] / s['bare_parquet']['median_s']:.2f} | |")
    c = r["checks"]
    lines += ["", f"Every record stored, none quarantined: {c['every_record_stored']}; loading the same file again "
                  f"stores nothing: {c['reload_stores_nothing']}. Target met (median): Parquet "
                  f"{s['target_met_parquet']}, CSV {s['target_met_csv']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
