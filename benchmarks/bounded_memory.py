"""Benchmark of bounded memory (issue 15): peak RSS of the KPI engine against the store's size.

Run on demand (not part of the test suite), under the benchmark lock::

    flock /tmp/zhizao-bench.lock .venv/bin/python benchmarks/bounded_memory.py --workdir /tmp/bm \
        --replicas 10,63

What it does:

1. simulates a base plant (``zhizao.simulate.simulate_plant``, 100 machines x 365 days, seed 0, as
   ``benchmarks/kpi_engine.py``) and ingests equipment, products, calendar, states and production into a store
   (the 1.6 M-state size);
2. builds larger stores by replicating the base plant's machines (``--replicas``: 10 makes 1,000 machines and
   16 M state records, 63 makes 6,300 machines and 100 M), in DuckDB: each replica's equipment and work centres
   get a prefix (``R07-M001``), their state, production, product and calendar records are copied in the base
   store's order, so the store is ordered by equipment id as an ingest of whole files leaves it; the site's
   calendar is kept once;
3. per size, each in a fresh child process (peak RSS = VmHWM of that process alone):

   - ``stream``: the engine, elements per equipment and day (``zhizao.kpi.elements.iter_elements``), each
     partition's rows summed to the site and dropped: the engine's own memory, whatever the size of the answer;
   - ``kpi_site``: ``ws.kpi(level='site', period='day')`` with the default settings: the elements streamed into
     the roll-up (``zhizao.kpi.rollup.rollup_stream``), the path of a user's site, area or work-centre table;
   - ``kpi``: ``ws.kpi(level='equipment', period='day')`` with the default settings (``memory_mb`` 1536), the
     call of ``benchmarks/kpi_engine.py`` and of the issue's 3.8 GB figure (it returns one row per
     equipment-day, so the answer itself grows with the store);
   - ``kpi_file``: ``zhizao kpi --level equipment --period day --format parquet -o FILE`` (run in the child
     through the command line's own entry point, default settings): the same table written one engine partition
     at a time (``Workspace.iter_kpi``, ``zhizao.export.write_tables``), so the answer is never whole in memory;
   - ``baseline``: the same call in one partition (``Settings(memory_mb=1e6)``: the engine as it was before the
     partitions, all records at once; only at the sizes of ``--baseline-max`` state records or less);
   - ``bare``: the bare DuckDB aggregation of ``benchmarks/kpi_engine.py`` (``BARE_SQL``), the lower bound;
4. writes ``benchmarks/results/bounded_memory.json`` and ``bounded_memory.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from kpi_engine import CORE_TABLES, _cpu_s, _peak_rss_mb, _rss_now_mb, bare_sql  # benchmarks/ on sys.path
from machine import cpu_model

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TARGET_RSS_MB = 2048  # "peak RSS at most 2 GB at both sizes"
TARGET_OVER_BARE = 1.5
TARGET_LINEAR = 7.0  # 100 M within 7x of 16 M


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _child(mode: str, db: str, extra: list[str] | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--db", db, *(extra or [])]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        return {"failed": True, "returncode": p.returncode, "stderr": p.stderr[-3000:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


# -- children --------------------------------------------------------------------------------------------------------
def child_stream(db: str, memory_mb: float) -> dict:
    import zhizao
    from zhizao.kpi.elements import iter_elements
    from zhizao.kpi.rollup import rollup_stream

    ws = zhizao.connect(db, read_only=True, settings=zhizao.Settings(memory_mb=memory_mb))
    ws.con.execute("SET enable_progress_bar = false")
    gc.collect()
    base_rss = _rss_now_mb()
    c0, t0 = _cpu_s(), time.perf_counter()
    counts = {"rows": 0, "partitions": 0}

    def parts():
        for part in iter_elements(ws.con, "day", settings=ws.settings):
            counts["rows"] += len(part.elements)
            counts["partitions"] += 1
            yield part.elements

    site = rollup_stream(parts(), "site", "day")
    wall = time.perf_counter() - t0
    out = {"wall_s": wall, "cpu_s": _cpu_s() - c0, **counts, "site_rows": len(site),
           "site_pbt_h": float(site["pbt"].sum() / 3600), "baseline_rss_mb": base_rss,
           "peak_rss_mb": _peak_rss_mb()}
    ws.close()
    return out


def child_kpi(db: str, memory_mb: float, level: str = "equipment") -> dict:
    import zhizao

    ws = zhizao.connect(db, read_only=True, settings=zhizao.Settings(memory_mb=memory_mb))
    ws.con.execute("SET enable_progress_bar = false")
    gc.collect()
    base_rss = _rss_now_mb()
    c0, t0 = _cpu_s(), time.perf_counter()
    df = ws.kpi(level=level, period="day")
    wall = time.perf_counter() - t0
    out = {"wall_s": wall, "cpu_s": _cpu_s() - c0, "rows": len(df), "pbt_h": float(df["pbt"].sum() / 3600),
           "baseline_rss_mb": base_rss, "peak_rss_mb": _peak_rss_mb(),
           "result_mb": float(df.memory_usage(deep=True).sum() / 2**20)}
    ws.close()
    return out


def child_kpi_file(db: str) -> dict:
    from zhizao.cli.main import app

    out = Path(db).with_suffix(".kpi.parquet")
    gc.collect()
    base_rss = _rss_now_mb()
    c0, t0 = _cpu_s(), time.perf_counter()
    app(["kpi", "--db", db, "--level", "equipment", "--period", "day", "--format", "parquet", "-o", str(out)],
        standalone_mode=False)
    wall = time.perf_counter() - t0
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(out).metadata
    res = {"wall_s": wall, "cpu_s": _cpu_s() - c0, "rows": meta.num_rows, "row_groups": meta.num_row_groups,
           "file_mib": round(out.stat().st_size / 2**20, 1), "baseline_rss_mb": base_rss,
           "peak_rss_mb": _peak_rss_mb()}
    out.unlink()
    return res


def child_bare(db: str) -> dict:
    import duckdb

    con = duckdb.connect(db, read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    gc.collect()
    base_rss = _rss_now_mb()
    c0, t0 = _cpu_s(), time.perf_counter()
    r = con.execute(bare_sql()).fetchnumpy()
    wall = time.perf_counter() - t0
    out = {"wall_s": wall, "cpu_s": _cpu_s() - c0, "rows": len(r["day"]), "states": int(r["n_states"].sum()),
           "baseline_rss_mb": base_rss, "peak_rss_mb": _peak_rss_mb()}
    con.close()
    return out


# -- stores ----------------------------------------------------------------------------------------------------------
def build_base(work: Path, machines: int, days: int, seed: int) -> Path:
    import zhizao
    from zhizao.simulate import simulate_plant, write_plant

    db = work / "base.duckdb"
    if db.exists():
        return db
    _log(f"simulating {machines} machines x {days} days")
    tables = simulate_plant(machines=machines, days=days, seed=seed, start="2025-03-03", timezone="Europe/Berlin")
    paths = write_plant({k: tables[k] for k in CORE_TABLES}, work / "plant")
    del tables
    tmp = work / "base.tmp.duckdb"
    tmp.unlink(missing_ok=True)
    with zhizao.connect(tmp) as ws:
        for name in CORE_TABLES:
            rep = ws.ingest(name, paths[name])[0]
            if rep.quarantined:
                raise RuntimeError(f"{name}: {rep.quarantined} records quarantined")
            _log(f"ingested {name}: {rep.loaded:,}")
    tmp.rename(db)
    shutil.rmtree(work / "plant", ignore_errors=True)
    return db


def build_replicated(work: Path, base: Path, replicas: int) -> Path:
    """A store of ``replicas`` copies of the base plant's machines (see the module docstring)."""
    import duckdb

    import zhizao

    db = work / f"x{replicas}.duckdb"
    if db.exists():
        return db
    tmp = work / f"x{replicas}.tmp.duckdb"
    tmp.unlink(missing_ok=True)
    zhizao.connect(tmp).close()  # the schema
    con = duckdb.connect(str(tmp))
    con.execute("SET enable_progress_bar = false")
    con.execute(f"ATTACH '{base}' AS b (READ_ONLY)")

    def cols(table):
        return [r[0] for r in con.execute(f"DESCRIBE b.\"{table}\"").fetchall()]

    def select(table, prefix, where=""):
        out = []
        for c in cols(table):
            if c in ("equipment_id", "work_center") or (table == "calendar" and c == "scope"):
                out.append(f"CASE WHEN \"{c}\" IS NULL THEN NULL ELSE '{prefix}' || \"{c}\" END AS \"{c}\"")
            else:
                out.append(f'"{c}"')
        return f'INSERT INTO "{table}" BY NAME SELECT {", ".join(out)} FROM b."{table}" {where}'

    local = "WHERE scope IN (SELECT equipment_id FROM b.equipment UNION SELECT work_center FROM b.equipment)"
    t = time.perf_counter()
    con.execute("BEGIN")
    con.execute("""INSERT INTO calendar SELECT * FROM b.calendar WHERE scope NOT IN
                    (SELECT equipment_id FROM b.equipment UNION SELECT work_center FROM b.equipment)""")
    con.execute("INSERT INTO products SELECT * FROM b.products WHERE equipment_id IS NULL")
    for k in range(replicas):
        p = f"R{k:02d}-"
        con.execute(select("equipment", p))
        con.execute(select("products", p, "WHERE equipment_id IS NOT NULL"))
        con.execute(select("calendar", p, local))
    for table in ("states", "production"):  # replica-major: the store in equipment-id order
        for k in range(replicas):
            con.execute(select(table, f"R{k:02d}-"))
    con.execute("COMMIT")
    con.execute("CHECKPOINT")
    n = con.execute("SELECT count(*) FROM states").fetchall()[0][0]
    con.close()
    tmp.rename(db)
    _log(f"built x{replicas}: {n:,} state records in {time.perf_counter() - t:.0f} s")
    return db


def _size(db: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    r = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in CORE_TABLES}
    con.close()
    r["store_mib"] = round(db.stat().st_size / 2**20, 1)
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--machines", type=int, default=100)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--replicas", default="10,63", help="sizes: copies of the base plant (1 = the base store)")
    ap.add_argument("--baseline-max", type=float, default=20e6,
                    help="run the one-partition baseline only on stores of at most this many state records")
    ap.add_argument("--kpi-max", type=float, default=20e6,
                    help="run ws.kpi(level='equipment') only on stores of at most this many state records")
    ap.add_argument("--memory-mb", type=float, default=1536.0)
    ap.add_argument("--workdir", required=False, default="/tmp/zhizao-bm")
    ap.add_argument("--out", default=str(RESULTS / "bounded_memory.json"))
    ap.add_argument("--steps", default="stream,kpi,baseline,bare",
                    help="steps to run (of stream, kpi, kpi_site, kpi_file, baseline, bare)")
    ap.add_argument("--child", choices=["stream", "kpi", "kpi_site", "kpi_file", "bare"], help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--child-memory", type=float, default=1536.0, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child == "stream":
        print(json.dumps(child_stream(a.db, a.child_memory)))
        return 0
    if a.child == "kpi":
        print(json.dumps(child_kpi(a.db, a.child_memory)))
        return 0
    if a.child == "kpi_site":
        print(json.dumps(child_kpi(a.db, a.child_memory, "site")))
        return 0
    if a.child == "kpi_file":
        print(json.dumps(child_kpi_file(a.db)))
        return 0
    if a.child == "bare":
        print(json.dumps(child_bare(a.db)))
        return 0

    import duckdb

    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    out_path = Path(a.out)
    result = {"benchmark": "bounded_memory", "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
              "command": "python benchmarks/bounded_memory.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": {"nproc": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
                          "cpu_model": cpu_model(),
                          "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                          "platform": platform.platform(), "python": platform.python_version(),
                          "duckdb": duckdb.__version__, "loadavg_at_start": os.getloadavg()},
              "parameters": vars(a) | {"child": None}, "sizes": []}

    def save():
        result["machine"]["loadavg_at_end"] = os.getloadavg()
        out_path.write_text(json.dumps(result, indent=1) + "\n")
        out_path.with_suffix(".md").write_text(markdown(result))

    t = time.perf_counter()
    base = build_base(work, a.machines, a.days, a.seed)
    result["base_build_s"] = round(time.perf_counter() - t, 1)
    for reps in (int(x) for x in a.replicas.split(",")):
        t = time.perf_counter()
        db = base if reps == 1 else build_replicated(work, base, reps)
        size = {"replicas": reps, "build_s": round(time.perf_counter() - t, 1), **_size(db)}
        _log(f"size x{reps}: {size}")
        n = size["states"]
        steps = a.steps.split(",")
        mem = ["--child-memory", str(a.memory_mb)]
        runs = [(s, mem) for s in ("stream", "kpi_site") if s in steps]
        if n <= a.kpi_max and "kpi" in steps:
            runs.append(("kpi", mem))
        if "kpi_file" in steps:
            runs.append(("kpi_file", []))
        if "bare" in steps:
            runs.append(("bare", []))
        if n <= a.baseline_max and "baseline" in steps:
            runs.append(("baseline", ["--child-memory", "1000000"]))
        for name, extra in runs:
            mode = "kpi" if name == "baseline" else name
            _log(f"x{reps}: {name}")
            r = _child(mode, str(db), extra)
            r["loadavg"] = os.getloadavg()
            size[name] = r
            _log(f"x{reps}: {name}: {json.dumps(r)[:300]}")
            result["sizes"] = [s for s in result["sizes"] if s["replicas"] != reps] + [size]
            save()
    save()
    print(markdown(result))
    return 0


def _f(x, fmt="{:,.0f}"):
    return "-" if x is None else fmt.format(x)


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"Run {r['date'][:10]} on {m['nproc']} cores ({m['cpu_model']}), {m['memory_gib']} GiB RAM, Python "
             f"{m['python']}, DuckDB {m['duckdb']}; load average {m['loadavg_at_start'][0]:.1f} at start "
             f"(other agents' jobs on the same cores; the load at each step's end is in the last column: wall times grow "
             f"with it, CPU times much less). Peak RSS: VmHWM of a fresh process that ran only the step.",
             "", "| state records | machines | store | step | wall s | CPU s | peak RSS MiB | rows | load |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in r["sizes"]:
        for step in ("stream", "kpi_site", "kpi", "kpi_file", "baseline", "bare"):
            x = s.get(step)
            if not x:
                continue
            if x.get("failed"):
                lines.append(f"| {s['states']:,} | {s['equipment']:,} | {s['store_mib']:,} MiB | {step} | failed "
                             f"({x['returncode']}) | | | | |")
                continue
            lines.append(f"| {s['states']:,} | {s['equipment']:,} | {s['store_mib']:,} MiB | {step} | "
                         f"{x['wall_s']:.1f} | {_f(x.get('cpu_s'), '{:.1f}')} | {x['peak_rss_mb']:,.0f} | {x['rows']:,} | "
                         f"{_f((x.get('loadavg') or [None])[0], '{:.1f}')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
