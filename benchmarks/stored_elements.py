"""Benchmark: stored elements brought up to date by one day's file and by one live batch, and a plant's KPIs read
from them, on the year-long 1,000-machine store (issue 15: "one live batch or one day's file into a year-long
1,000-machine store updates the stored elements in under 1 s").

Not a timed test. On a copy of the bounded-memory benchmark's store (``bounded_memory.py --replicas 10``: 1,000
machines x 365 days, 15.9 M state records, 11.1 M counts, one site):

1. the last local day's state and count records are taken out of the copy into Parquet files (the day's files),
   the last ``--batch-minutes`` of them kept apart (the live batch);
2. ``zhizao.kpi.stored.build`` computes every entity's hours (timed; rows, the store's growth on disk);
3. the day's files without the batch are loaded (``zhizao.ingest.load.load_file``, as ``zhizao ingest`` does;
   timed apart) and ``refresh`` brings the stored hours up to date (timed: the bar); then the batch the same way;
   ``--update-repeats`` times, each on a fresh copy of the built store (the median and every run reported);
   ``--order time`` runs it all on a copy whose records are stored day by day, as a store that received a file
   a day holds them (``window_read.py``'s), where a read of the last days skips the earlier row groups;
4. checks that the stored hours equal a build from scratch to the last bit, and that the plant's day and hourly
   tables from them equal the kernel's (time elements exact, sums to 1e-9);
5. times the plant's pages' tables (``ws.kpi(level="site")`` of the last day hourly and the whole range daily, a
   fresh workspace each) from the stored hours and from the kernel, median of ``--repeats``;
6. writes ``benchmarks/results/stored_elements.json`` and ``.md`` with the machine and the load.

Usage::

    flock /tmp/zhizao-bench.lock .venv/bin/python benchmarks/stored_elements.py --workdir /tmp/zhizao-bm [--order time]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import machine  # noqa: E402


def _timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/zhizao-bm"))
    ap.add_argument("--batch-minutes", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--update-repeats", type=int, default=5,
                    help="the two updates, each time on a fresh copy of the built store (median and every run)")
    ap.add_argument("--order", choices=("equipment", "time"), default="equipment",
                    help="the store's records in equipment order (one bulk load of a year per machine) or day by day "
                         "(a store that received a file a day: window_read.py's copy)")
    ap.add_argument("--keep-built", action="store_true",
                    help="keep the built store before the updates (stored_elements.built.duckdb) and the day's "
                         "files, to profile an update on")
    ap.add_argument("--shift-minutes", type=int, default=0,
                    help="move every shift entry of the copy by this many minutes first (30: every shift starts "
                         "and ends inside an hour, which the stored hours are cut at)")
    ap.add_argument("--out", type=Path, default=None,
                    help="default results/stored_elements.json (--order time: stored_elements_time_order.json; "
                         "--shift-minutes N: with _shiftN)")
    a = ap.parse_args()
    if a.out is None:
        a.out = HERE / "results" / ("stored_elements" + ("" if a.order == "equipment" else "_time_order")
                                    + (f"_shift{a.shift_minutes}" if a.shift_minutes else "") + ".json")

    import duckdb
    import numpy as np
    import pandas as pd

    import zhizao
    from zhizao.ingest.load import load_file
    from zhizao.kpi import stored
    from zhizao.kpi.elements import ELEMENTS, TIME_ELEMENTS, compute_elements

    src = a.workdir / "x10.duckdb"
    if not src.exists():
        sys.exit(f"no {src}: build it with benchmarks/bounded_memory.py --replicas 10 --steps stream")
    if a.order == "time":
        from window_read import time_ordered

        src = time_ordered(src, a.workdir / "x10_time_ordered.duckdb")
    db = a.workdir / "stored_elements.duckdb"
    files = a.workdir / "stored_elements_files"
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir()
    for p in (db, db.with_suffix(".duckdb.wal")):
        p.unlink(missing_ok=True)
    shutil.copy(src, db)
    result: dict = {"benchmark": "stored_elements", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    "command": "python benchmarks/stored_elements.py " + " ".join(sys.argv[1:]),
                    "machine": machine(), "loadavg_at_start": os.getloadavg(), "store": str(src), "order": a.order}

    # 1. the last local day's records out of the copy, as the day's files and the batch
    con = duckdb.connect(str(db))
    con.execute("SET TimeZone = 'UTC'")
    tz = con.execute("SELECT any_value(coalesce(timezone, 'UTC')) FROM equipment").fetchall()[0][0]
    last = pd.Timestamp(con.execute("SELECT max(start) FROM states").fetchall()[0][0]).tz_convert(tz)
    day0 = (last - pd.Timedelta(seconds=1)).normalize()  # the last local day with data (a record at midnight ends it)
    cut = last - pd.Timedelta(minutes=a.batch_minutes)
    result.update(zone=tz, day=str(day0.date()), batch_from=cut.isoformat())
    cols = {"states": 'equipment_id, start, "end", state, category, reason',
            "production": 'equipment_id, start, "end", order_id, product_id, produced, good, scrap, rework'}
    at = {"states": "start", "production": 'coalesce(start, "end")'}
    counts = {}
    for t in ("states", "production"):
        for part, lo, hi in (("day", day0, cut), ("batch", cut, None)):
            where = f"{at[t]} >= TIMESTAMPTZ '{lo.isoformat()}'" + (
                f" AND {at[t]} < TIMESTAMPTZ '{hi.isoformat()}'" if hi is not None else "")
            path = files / f"{t}_{part}.parquet"
            con.execute(f"COPY (SELECT {cols[t]} FROM {t} WHERE {where} ORDER BY equipment_id, {at[t]}) "
                        f"TO '{path}' (FORMAT parquet)")
            counts[f"{t}_{part}"] = con.execute(f"SELECT count(*) FROM '{path}'").fetchall()[0][0]
        # the table rewritten without them, not deleted from: DuckDB may renumber the rows of a table with removed
        # rows at any later checkpoint, which the stored elements then take for a rewrite (and build again)
        con.execute(f"CREATE TABLE _zz_kept AS SELECT * FROM {t} WHERE {at[t]} < TIMESTAMPTZ '{day0.isoformat()}' "
                    "ORDER BY rowid")
        con.execute(f"DROP TABLE {t}")
        con.execute(f"ALTER TABLE _zz_kept RENAME TO {t}")
    if a.shift_minutes:
        con.execute(f"""UPDATE calendar SET start = start + INTERVAL {int(a.shift_minutes)} MINUTE,
                        "end" = "end" + INTERVAL {int(a.shift_minutes)} MINUTE WHERE kind = 'shift'""")
    result["shift_minutes"] = a.shift_minutes
    con.execute("CHECKPOINT")
    result["records"] = counts
    size0 = db.stat().st_size

    # 2. build
    rep, t_build = _timed(lambda: stored.build(con))
    con.execute("CHECKPOINT")
    result["build"] = {"seconds": t_build, "hours": rep.hours, "entities": rep.entities,
                       "store_mib_before": size0 / 2**20, "store_mib_after": db.stat().st_size / 2**20,
                       "loadavg": os.getloadavg()}
    print(json.dumps(result["build"]), flush=True)

    # 3. the day's files, then the batch: load (as zhizao ingest), then refresh (the bar); each repeat on a fresh copy
    # of the built store
    con.close()
    snapshot = db.with_suffix(".built.duckdb")
    shutil.copy(db, snapshot)
    runs: dict[str, list[dict]] = {"day": [], "batch": []}
    for r in range(a.update_repeats):
        shutil.copy(snapshot, db)
        con = duckdb.connect(str(db))
        con.execute("SET TimeZone = 'UTC'")
        for part in ("day", "batch"):
            load_s = 0.0
            for t in ("states", "production"):
                t0 = time.perf_counter()
                load_file(con, t, files / f"{t}_{part}.parquet")
                load_s += time.perf_counter() - t0
            rep, s = _timed(lambda c=con: stored.refresh(c))
            row = {"update": part, "repeat": r, "records": counts[f"states_{part}"] + counts[f"production_{part}"],
                   "load_s": load_s, "refresh_s": s, "action": rep.action, "entities": rep.entities,
                   "hours": rep.hours, "loadavg": os.getloadavg()}
            runs[part].append(row)
            print(json.dumps(row), flush=True)
        if r < a.update_repeats - 1:
            con.close()
    if not a.keep_built:
        snapshot.unlink()
    result["updates"] = [{**rows[-1], "load_s": statistics.median(x["load_s"] for x in rows),
                          "refresh_s": statistics.median(x["refresh_s"] for x in rows),
                          "refresh_runs": [x["refresh_s"] for x in rows], "actions": sorted({x["action"] for x in rows})}
                         for rows in runs.values()]
    con.execute("CHECKPOINT")

    # 4. equal to a build from scratch, and to the kernel
    def stored_rows() -> list[pd.DataFrame]:
        return [con.execute(f"SELECT * FROM {stored.TABLE} ORDER BY entity_id, start_ms").df(),
                con.execute(f"SELECT * FROM {stored.REASONS} ORDER BY entity_id, start_ms, category, reason").df()]

    inc = stored_rows()
    stored.build(con)
    whole = stored_rows()
    result["identical_to_build"] = all(bool(len(x) == len(y) and all(
        ((x[c] == y[c]) | (x[c].isna() & y[c].isna())).all() for c in x.columns)) for x, y in zip(inc, whole))
    del inc, whole
    con.close()

    end = (day0 + pd.Timedelta(days=1)).tz_convert("UTC")
    def site_kpis(ws, period, start, stop):
        return ws.kpi(level="site", period=period, start=start, end=stop)

    def stop_reasons(ws, period, start, stop):  # the stops Pareto of a plant page
        return ws.stop_reasons(level="site", period=period, start=start, end=stop)

    queries = [("hour", day0.tz_convert("UTC"), end, "the last day, hourly", site_kpis),
               ("day", day0.tz_convert("UTC"), end, "the last day", site_kpis),
               ("shift", day0.tz_convert("UTC"), end, "the last day, by shift", site_kpis),
               ("day", None, None, "the whole range, daily", site_kpis),
               ("all", None, None, "the whole range", site_kpis),
               ("all", None, None, "stop reasons, the whole range", stop_reasons)]
    result["reads"] = []
    real, real_answers = stored.stored_elements, stored.answers
    for period, start, stop, label, table in queries:
        times: dict[str, list[float]] = {k: [] for k in ("stored", "kernel", "stored_warm", "kernel_warm")}
        tables = {}
        for _ in range(a.repeats):
            for how in ("stored", "kernel"):
                if how == "kernel":  # the kernel alone
                    stored.stored_elements = lambda *x, **k: None
                    stored.answers = lambda *x, **k: False
                ws = zhizao.connect(db, read_only=True)
                try:
                    t0 = time.perf_counter()
                    tables[how] = table(ws, period, start, stop)
                    times[how].append(time.perf_counter() - t0)
                    # again with the store's facts kept (a server keeps them, and updates them after a write)
                    for k in [k for k in ws.cache if "context" not in str(k)]:
                        del ws.cache[k]
                    t0 = time.perf_counter()
                    table(ws, period, start, stop)
                    times[how + "_warm"].append(time.perf_counter() - t0)
                finally:
                    stored.stored_elements, stored.answers = real, real_answers
                    ws.close()
        ws = zhizao.connect(db, read_only=True)
        try:
            got = stored.stored_elements(ws.con, period, start, stop)
            want = compute_elements(ws.con, period, start, stop)
            same = got is not None and len(got.elements) == len(want.elements)
            if same:
                for c in ELEMENTS:
                    x, y = got.elements[c].to_numpy(np.float64), want.elements[c].to_numpy(np.float64)
                    ok = np.array_equal(x, y, equal_nan=True) if c in TIME_ELEMENTS or c == "fe" else \
                        np.allclose(x, y, rtol=1e-9, atol=1e-9, equal_nan=True)
                    same &= bool(ok)
                same &= got.reasons.equals(want.reasons)  # (read when asked for: before the store is closed)
        finally:
            ws.close()
        row = {"query": label, "period": period, "rows": len(want.elements),
               **{f"{k}_s": statistics.median(v) for k, v in times.items()},
               **{f"{k}_runs": v for k, v in times.items()}, "same_elements": same,
            "same_site_kpis": bool(tables["stored"].shape == tables["kernel"].shape), "loadavg": os.getloadavg()}
        result["reads"].append(row)
        print(json.dumps(row), flush=True)
    result["loadavg_at_end"] = os.getloadavg()
    a.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    a.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    m, b = r["machine"], r["build"]
    lines = [f"# Stored elements: one day's file and one live batch into a year-long store ({r['date']})", "",
             f"Machine: {m.get('nproc')} cores, {m.get('cpu_model')}, {m.get('memory_gib')} GiB; load average "
             f"{r['loadavg_at_start'][0]:.1f} at start, {r['loadavg_at_end'][0]:.1f} at end. Store: 1,000 machines x "
             f"365 days (`bounded_memory.py --replicas 10`) in {r.get('order', 'equipment')} order, one site in "
             f"{r['zone']}; the last local day "
             f"({r['day']}) taken out as the day's files, its last minutes from {r['batch_from']} as the batch"
             + (f"; every shift entry moved by {r['shift_minutes']} minutes (the stored hours are cut at its bounds)"
                if r.get("shift_minutes") else "") + ".", "",
             f"Build: {b['seconds']:.1f} s for {b['hours']:,} "
             f"{'rows (hours and parts of hours)' if r.get('shift_minutes') else 'entity-hours'} of "
             f"{b['entities']:,} entities; the store "
             f"grew from {b['store_mib_before']:,.0f} MiB to {b['store_mib_after']:,.0f} MiB.", "",
             "Each update on a fresh copy of the built store; the median of the repeats, and every run:", "",
             "| update | records | load s | refresh s (bar: < 1 s) | runs s | entities | hours written |",
             "|---|---|---|---|---|---|---|"]
    for u in r["updates"]:
        runs = ", ".join(f"{x:.2f}" for x in u.get("refresh_runs", [u["refresh_s"]]))
        lines.append(f"| {u['update']} | {u['records']:,} | {u['load_s']:.2f} | {u['refresh_s']:.2f} | {runs} | "
                     f"{u['entities']:,} | {u['hours']:,} |")
    lines += ["", f"Stored hours and loss reasons after both updates identical to a build from scratch: "
              f"{'yes' if r['identical_to_build'] else '**no**'}.", "",
              "The plant's table (`ws.kpi(level='site')`; its stops Pareto `ws.stop_reasons(level='site')`; median "
              "of the repeats): in a fresh workspace (which reads the store's facts first), and again in it with "
              "those facts kept (as a server keeps them):", "",
              "| query | element rows | stored hours s | kernel s | stored, facts kept s | kernel, facts kept s | "
              "same elements and loss reasons |", "|---|---|---|---|---|---|---|"]
    for q in r["reads"]:
        lines.append(f"| {q['query']} | {q['rows']:,} | {q['stored_s']:.2f} | {q['kernel_s']:.2f} | "
                     f"{q['stored_warm_s']:.2f} | {q['kernel_warm_s']:.2f} | "
                     f"{'yes' if q['same_elements'] else '**no**'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
