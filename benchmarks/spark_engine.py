"""Benchmark: the KPI engine's kernel on Apache Spark (local mode) against the embedded engine, same store.

Run on demand, under the bench lock (not part of the test suite)::

    flock /tmp/zhizao-bench.lock .venv/bin/python benchmarks/spark_engine.py      # 1,000 machines x 365 days
    .venv/bin/python benchmarks/spark_engine.py --quick                            # 20 machines x 60 days

What it does:

1. builds the store of ``benchmarks/kpi_engine.py --machines 1000 --days 365`` (the simulator, seed 0; the
   equipment, products, calendar, states and production tables; ~16 M state records), or reuses the one in
   ``--workdir`` if it is there;
2. writes it as a Parquet dataset partitioned by site and month (``zhizao.scale.export_dataset``; timed);
3. in a fresh child process: the embedded engine's elements per equipment and day
   (``ws.elements_raw("day")``) and their roll-up to site, wall time and peak RSS;
4. in a fresh child process: the same on Spark (``SparkEngine(master="local[2]")``, groups of at most
   ``--group-size`` equipment): the session's start, the elements and the roll-up, each timed;
5. checks that both give the same rows and values, bit for bit;
6. measures one group alone (the kernel on the records of ``--group-size`` machines, in a fresh process):
   wall time, CPU time and peak RSS: the per-partition cost behind the sizing plan in docs/scale.md;
7. writes ``benchmarks/results/spark_engine.json`` and ``spark_engine.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model  # benchmarks/machine.py (the script folder is on sys.path)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CORE_TABLES = ("equipment", "products", "calendar", "states", "production")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: since its exec, unlike ru_maxrss, which keeps the forking parent's)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class TreeRss:
    """Samples the summed RSS of this process's descendants (the JVM and its Python workers) every 0.5 s."""

    def __init__(self):
        import threading

        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _descendants(self) -> list[int]:
        parent = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    pass
        out, todo = [], [os.getpid()]
        while todo:
            p = todo.pop()
            kids = [c for c, pp in parent.items() if pp == p]
            out += kids
            todo += kids
        return out

    def _run(self):
        while not self._stop.wait(0.5):
            total = 0
            for p in self._descendants():
                try:
                    with open(f"/proc/{p}/statm") as f:
                        total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
                except (OSError, ValueError):
                    pass
            self.peak_mb = max(self.peak_mb, total / 2**20)

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        return self.peak_mb


def _child(mode: str, args: list[str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"child {mode} failed ({p.returncode}):\n{p.stderr[-6000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# -- children ----------------------------------------------------------------------------------------------

def child_embedded(db: str, out: str) -> dict:
    import zhizao

    ws = zhizao.connect(db, read_only=True)
    t0, c0 = time.perf_counter(), _cpu_s()
    el = ws.elements_raw("day").elements
    t_el = time.perf_counter() - t0
    t1 = time.perf_counter()
    site = ws.elements("site", "day")
    t_site = time.perf_counter() - t1
    cpu = _cpu_s() - c0
    el.to_parquet(Path(out) / "embedded_elements.parquet", index=False)
    site.to_parquet(Path(out) / "embedded_site.parquet", index=False)
    return {"elements_s": t_el, "rollup_site_s": t_site, "cpu_s": cpu, "rows": len(el),
            "peak_rss_mb": _peak_rss_mb()}


def child_spark(dataset: str, out: str, master: str, group_size: int, memory: str) -> dict:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from zhizao.scale.spark import SparkEngine, spark_session

    tree = TreeRss()
    t0 = time.perf_counter()
    spark = spark_session(master, conf={"spark.ui.enabled": "false", "spark.driver.memory": memory,
                                        "spark.sql.shuffle.partitions": "8",
                                        "spark.local.dir": str(Path(out) / "spark-tmp")})
    spark.sparkContext.setLogLevel("ERROR")
    t_start = time.perf_counter() - t0
    eng = SparkEngine(session=spark, group_size=group_size)
    t1 = time.perf_counter()
    el = eng.elements(dataset, "day")
    t_el = time.perf_counter() - t1
    groups = len(eng.last_plan.sites)
    t2 = time.perf_counter()
    site = eng.rollup(dataset, "site", "day")
    t_site = time.perf_counter() - t2
    el.to_parquet(Path(out) / "spark_elements.parquet", index=False)
    site.to_parquet(Path(out) / "spark_site.parquet", index=False)
    peak_tree = tree.stop()
    spark.stop()
    return {"session_start_s": t_start, "elements_s": t_el, "rollup_site_s": t_site, "rows": len(el),
            "groups": groups, "driver_python_peak_rss_mb": _peak_rss_mb(),
            "jvm_and_workers_peak_rss_mb": peak_tree}


def child_group(dataset: str, group_size: int) -> dict:
    """The kernel alone on the records of the first ``group_size`` machines of the first site."""
    import duckdb

    from zhizao.scale.dataset import read_table_sql
    from zhizao.scale.kernel import group_elements

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    eq = con.sql(read_table_sql(dataset, "equipment")).to_arrow_table()
    site = eq.column("site")[0].as_py()
    ids = sorted(x for x, s in zip(eq.column("equipment_id").to_pylist(), eq.column("site").to_pylist())
                 if s == site)[:group_size]
    con.execute("CREATE TEMP TABLE ids AS SELECT unnest(?) AS id", [ids])
    tables = {"equipment": con.sql(f"SELECT * FROM ({read_table_sql(dataset, 'equipment')}) "
                                   "WHERE equipment_id IN (SELECT id FROM ids)").to_arrow_table(),
              "products": con.sql(read_table_sql(dataset, "products")).to_arrow_table(),
              "calendar": con.sql(read_table_sql(dataset, "calendar")).to_arrow_table()}
    for name in ("states", "production"):
        tables[name] = con.sql(f"SELECT * FROM ({read_table_sql(dataset, name)}) "
                               "WHERE equipment_id IN (SELECT id FROM ids)").to_arrow_table()
    records = tables["states"].num_rows
    base = _peak_rss_mb()
    t0, c0 = time.perf_counter(), _cpu_s()
    res = group_elements(tables, "day")
    return {"machines": len(ids), "state_records": records, "production_records": tables["production"].num_rows,
            "rows": len(res.elements), "wall_s": time.perf_counter() - t0, "cpu_s": _cpu_s() - c0,
            "peak_rss_mb": _peak_rss_mb(), "rss_before_mb": base}


# -- comparison --------------------------------------------------------------------------------------------

def same(a, b) -> dict:
    """Whether two frames have the same rows and values (floats bit for bit, nulls where nulls)."""
    import numpy as np
    import pandas as pd

    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return {"identical": False, "why": f"shape {a.shape} vs {b.shape}"}
    differ = []
    for c in a.columns:
        x, y = a[c], b[c]
        if c.startswith("period_"):
            ok = bool((pd.to_datetime(x, utc=True) == pd.to_datetime(y, utc=True)).all())
        elif x.dtype.kind in "fi" or y.dtype.kind in "fi":
            xx, yy = x.to_numpy(np.float64), y.to_numpy(np.float64)
            ok = bool(((xx == yy) | (np.isnan(xx) & np.isnan(yy))).all())
        else:
            ok = [None if pd.isna(v) else v for v in x] == [None if pd.isna(v) else v for v in y]
        if not ok:
            differ.append(c)
    return {"identical": not differ, "columns_differing": differ, "rows": len(a), "columns": len(a.columns)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--machines", type=int, default=1000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", default="2025-03-03")
    ap.add_argument("--timezone", default="Europe/Berlin")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--group-size", type=int, default=100)
    ap.add_argument("--driver-memory", default="6g")
    ap.add_argument("--quick", action="store_true", help="20 machines x 60 days")
    ap.add_argument("--workdir", default=None, help="store, dataset and outputs (kept); reused when present")
    ap.add_argument("--out", default=None)
    ap.add_argument("--remeasure", action="store_true",
                    help="with an earlier result: run only the embedded engine and the one-group children again "
                         "(peak RSS) and keep the Spark figures")
    ap.add_argument("--child", choices=["embedded", "spark", "group"], help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--dataset", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child == "embedded":
        print(json.dumps(child_embedded(a.db, a.dir)))
        return 0
    if a.child == "spark":
        print(json.dumps(child_spark(a.dataset, a.dir, a.master, a.group_size, a.driver_memory)))
        return 0
    if a.child == "group":
        print(json.dumps(child_group(a.dataset, a.group_size)))
        return 0
    if a.quick:
        a.machines, a.days = 20, 60
    out = Path(a.out) if a.out else RESULTS / ("spark_engine_quick.json" if a.quick else "spark_engine.json")
    load_start = os.getloadavg()
    t_all = time.perf_counter()

    import duckdb
    import pandas as pd
    import pyspark

    import zhizao
    from zhizao.scale.dataset import export_dataset
    from zhizao.simulate import simulate_plant, write_plant

    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="zhizao-spark-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "bench.duckdb"
    build = {}
    if not db.exists():
        _log(f"simulating {a.machines} machines x {a.days} days (seed {a.seed})")
        t = time.perf_counter()
        tables = simulate_plant(machines=a.machines, days=a.days, seed=a.seed, start=a.start, timezone=a.timezone)
        paths = write_plant({k: tables[k] for k in CORE_TABLES}, work / "plant")
        del tables
        build["simulate_and_write_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        with zhizao.connect(db) as ws:
            for name in CORE_TABLES:
                r = ws.ingest(name, paths[name])[0]
                assert r.quarantined == 0, name
        build["ingest_s"] = round(time.perf_counter() - t, 1)
        shutil.rmtree(work / "plant", ignore_errors=True)
        _log(f"store built: {build}")
    with zhizao.connect(db, read_only=True) as ws:
        counts = {t: ws.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in CORE_TABLES}
        ds = work / "dataset"
        t = time.perf_counter()
        if not (a.remeasure and ds.is_dir()):
            export_dataset(ws.con, ds)
        export_s = time.perf_counter() - t
    _log(f"dataset written in {export_s:.1f} s ({_du(ds) / 2**20:.0f} MiB); {counts['states']:,} state records")
    os.sync()

    if a.remeasure:
        result = json.loads(out.read_text())
        emb = _child("embedded", ["--db", str(db), "--dir", str(work)])
        grp = _child("group", ["--dataset", str(ds), "--group-size", str(a.group_size)])
        result["embedded_remeasured"] = {**{k: round(v, 3) if isinstance(v, float) else v for k, v in emb.items()},
                                         "loadavg": [round(x, 2) for x in os.getloadavg()]}
        result["one_group"].update({k: round(v, 3) if isinstance(v, float) else v for k, v in grp.items()})
        result["embedded"]["peak_rss_mb"] = round(emb["peak_rss_mb"], 1)
        result["note"] = ("peak RSS of the embedded engine and of one group measured again with VmHWM (the first "
                          "run's ru_maxrss kept the forking benchmark process's peak)")
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
        print(markdown(result))
        return 0
    _log("embedded engine ...")
    emb = _child("embedded", ["--db", str(db), "--dir", str(work)])
    _log(f"embedded: elements {emb['elements_s']:.1f} s, roll-up {emb['rollup_site_s']:.2f} s, "
         f"peak RSS {emb['peak_rss_mb']:.0f} MiB")
    _log(f"Spark {a.master} ...")
    spk = _child("spark", ["--dataset", str(ds), "--dir", str(work), "--master", a.master,
                           "--group-size", str(a.group_size), "--driver-memory", a.driver_memory])
    _log(f"spark: session {spk['session_start_s']:.1f} s, elements {spk['elements_s']:.1f} s, "
         f"roll-up {spk['rollup_site_s']:.1f} s")
    grp = _child("group", ["--dataset", str(ds), "--group-size", str(a.group_size)])
    _log(f"one group of {grp['machines']} machines: {grp['wall_s']:.1f} s, peak RSS {grp['peak_rss_mb']:.0f} MiB")

    eq_el = same(pd.read_parquet(work / "embedded_elements.parquet"), pd.read_parquet(work / "spark_elements.parquet"))
    eq_site = same(pd.read_parquet(work / "embedded_site.parquet"), pd.read_parquet(work / "spark_site.parquet"))
    _log(f"identical: elements {eq_el['identical']}, site roll-up {eq_site['identical']}")

    nproc = os.cpu_count()
    result = {
        "benchmark": "spark_engine",
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, "benchmarks/spark_engine.py", *(argv or sys.argv[1:])]),
        "machine": {"nproc": nproc, "cpu_model": cpu_model(),
                    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "java": subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0],
                    "pyspark": pyspark.__version__, "duckdb": duckdb.__version__,
                    "loadavg_1_5_15_at_start": [round(x, 2) for x in load_start],
                    "loadavg_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()]},
        "parameters": {"machines": a.machines, "days": a.days, "seed": a.seed, "start": a.start,
                       "timezone": a.timezone, "master": a.master, "group_size": a.group_size,
                       "driver_memory": a.driver_memory},
        "data": {"records": counts, "dataset_mib": round(_du(ds) / 2**20, 1), "export_s": round(export_s, 1),
                 "store_build": build or "reused"},
        "embedded": {"call": "ws.elements_raw('day') then ws.elements('site', 'day'), fresh process",
                     **{k: round(v, 3) if isinstance(v, float) else v for k, v in emb.items()}},
        "spark": {"call": "SparkEngine(master).elements(dataset, 'day') then .rollup(dataset, 'site', 'day'), "
                          "fresh process; the session start is timed apart",
                  **{k: round(v, 3) if isinstance(v, float) else v for k, v in spk.items()}},
        "one_group": {"what": f"the kernel (group_elements) on the records of {grp['machines']} machines of one "
                              "site for the whole period, period day, fresh process",
                      **{k: round(v, 3) if isinstance(v, float) else v for k, v in grp.items()}},
        "identical": {"elements": eq_el, "site_rollup": eq_site},
        "ratios": {"spark_over_embedded_elements": round(spk["elements_s"] / emb["elements_s"], 2),
                   "spark_over_embedded_with_session": round((spk["elements_s"] + spk["session_start_s"])
                                                             / emb["elements_s"], 2)},
        "total_benchmark_s": round(time.perf_counter() - t_all, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    md = markdown(result)
    out.with_suffix(".md").write_text(md, encoding="utf-8")
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)
    print(md)
    return 0


def markdown(r: dict) -> str:
    e, s, g, m = r["embedded"], r["spark"], r["one_group"], r["machine"]
    ok = r["identical"]["elements"]["identical"] and r["identical"]["site_rollup"]["identical"]
    return f"""# Spark engine ({r['parameters']['master']}) against the embedded engine

{r['date']}, `{r['command']}`; {m['cpu_model']}, {m['nproc']} CPUs, {m['memory_gib']} GiB; {m['java']};
pyspark {m['pyspark']}; load average {m['loadavg_1_5_15_at_start']} at start, {m['loadavg_1_5_15_at_end']} at end.

Data: {r['data']['records']['states']:,} state records, {r['data']['records']['production']:,} production
records ({r['parameters']['machines']} machines x {r['parameters']['days']} days); Parquet dataset
{r['data']['dataset_mib']} MiB, written in {r['data']['export_s']} s.

| | embedded | Spark |
|---|---|---|
| elements per equipment and day | {e['elements_s']:.1f} s | {s['elements_s']:.1f} s ({s['groups']} groups of at most {r['parameters']['group_size']} machines) |
| session start | - | {s['session_start_s']:.1f} s |
| roll-up to site | {e['rollup_site_s']:.2f} s | {s['rollup_site_s']:.1f} s (the Spark aggregation of the persisted elements) |
| peak RSS | {e['peak_rss_mb']:.0f} MiB | driver (Python) {s['driver_python_peak_rss_mb']:.0f} MiB; JVM and Python workers together {s['jvm_and_workers_peak_rss_mb']:.0f} MiB (sampled every 0.5 s) |
| identical (rows, values bit for bit) | | {'yes' if ok else 'NO'}: elements {r['identical']['elements']}, site roll-up {r['identical']['site_rollup']} |

Spark over embedded (elements): {r['ratios']['spark_over_embedded_elements']}x
({r['ratios']['spark_over_embedded_with_session']}x with the session start).

One group alone (the per-partition cost): {g['machines']} machines, {g['state_records']:,} state records,
{g['production_records']:,} production records: {g['wall_s']:.1f} s wall, {g['cpu_s']:.1f} s CPU, peak RSS
{g['peak_rss_mb']:.0f} MiB ({g['rss_before_mb']:.0f} MiB with the records loaded).
"""


if __name__ == "__main__":
    sys.exit(main())
