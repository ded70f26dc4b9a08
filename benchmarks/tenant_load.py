"""Bounded load test of issue 14: tenants uploading and reading at once, on one ``zhizao serve``.

Not a timed test. Steps:

1. simulates a programme (``simulate_programme``: ``--enterprises`` tenants, default 10, two machines per
   project, 12 months) into a fresh store, and gives each of the first ``--tenants`` tenants (default 5) an
   enterprise user and one benchmark machine per client (``<ENT>-BENCH-<k>``, its own work centre at the
   tenant's site, so the tenant's site page includes what is uploaded; in the site's time zone as every machine
   of the programme, or in UTC with ``--bench-utc``: sites spanning two zones, the setup of the runs before
   2026-12-06);
2. starts ``python -m zhizao.server`` on 127.0.0.1 (one process, as ``zhizao serve`` runs) and waits until it
   answers;
3. runs ``--clients`` clients (default 20, spread over the tenants) for ``--duration`` seconds (default 60),
   each on its own keep-alive connection with its tenant's session, in a closed loop with a short think time
   (``--think``, default 0.2 s, uniform 0.5x-1.5x). Each request is, at random:

   - 20 %: an upload (``POST /api/v1/ingest/states``, multipart) of a CSV of ``--records`` (default 50) new
     one-minute states of the client's machine; one upload in ten sends an earlier file again (the same bytes
     and name: it must store nothing);
   - 45 %: the tenant's site page (``/plant/site/<ENT>-S1``), 15 %: the landing page (``/plant``), 10 %: a
     work-centre page of the tenant, 10 %: ``/api/v1/kpi?level=site&period=day``;

4. stops the server and checks the store: every record of every upload answered 2xx is stored exactly once,
   nothing of another (`lost`, `duplicated`, `unexpected`), no record of the benchmark machines quarantined;
5. writes ``benchmarks/results/tenant_load.json`` and ``.md``, with how many dashboard answers were plant
   pages showing their earlier figures (``zhizao serve --fresh-wait``, the default) and how old those figures
   were (the page's ``data-as-of`` mark against the time of the answer).

Targets (issue 14): 0 answers 5xx, 0 records lost or duplicated, upload p95 < 2 s, dashboard p95 < 500 ms.

Usage::

    .venv/bin/python benchmarks/tenant_load.py              # ~3-5 min on 2 cores
    .venv/bin/python benchmarks/tenant_load.py --quick      # 20 s, smaller programme
    .venv/bin/python benchmarks/tenant_load.py --always-fresh --out benchmarks/results/tenant_load_always_fresh.json
                                                            # the baseline: every page waits for current figures
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from server_load import Conn, _stats, free_port, http, log, machine  # noqa: E402
from zhizao.server import FRESH_WAIT  # noqa: E402

PASSWORD = "benchmark password"
ORDER = ["equipment", "enterprises", "products", "calendar", "states", "production", "energy", "labour", "quality",
         "variables", "costs", "projects", "designations", "development_cycles"]
TARGETS = {"errors_5xx": 0, "lost": 0, "duplicated": 0, "upload_p95_ms": 2000.0, "dashboard_p95_ms": 500.0}
#: the mark of a page showing earlier figures while the current ones are computed (``zhizao serve --fresh-wait``)
STALE = re.compile(rb'data-stale="1" data-as-of="([0-9.]+)"')
#: benchmark records start here (inside the simulated programme's range, on machines of their own)
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def build_store(work: Path, enterprises: int, tenants: int, clients: int, seed: int, machines_per_project: int = 2,
                bench_utc: bool = False) -> tuple[Path, dict]:
    import pandas as pd

    import zhizao
    from zhizao.server import accounts
    from zhizao.simulate.programme import simulate_programme, write_programme

    t = time.perf_counter()
    tabs = simulate_programme(n_projects=2 * enterprises, n_enterprises=enterprises, seed=seed, months_before=6,
                              months_after=6, machines_per_project=machines_per_project)
    paths = write_programme(tabs, work / "programme")
    db = work / "store.duckdb"
    records = {}
    ents = sorted(tabs["equipment"]["enterprise"].unique())[:tenants]
    # each benchmark machine in its site's time zone, as every machine of the simulated programme: a machine left
    # in UTC would make each site span two zones, a case of its own (its site's elements then need buckets in the
    # site's zone besides each machine's own), which the runs before 2026-12-06 measured by accident
    zone = tabs["equipment"].groupby("enterprise")["timezone"].first()
    if bench_utc:
        zone[:] = "UTC"
    bench = [{"equipment_id": f"{ents[i % tenants]}-BENCH-{i:02d}", "site": f"{ents[i % tenants]}-S1",
              "area": f"{ents[i % tenants]}-A1", "work_center": f"{ents[i % tenants]}-WCB",
              "enterprise": ents[i % tenants], "timezone": zone[ents[i % tenants]]} for i in range(clients)]
    pd.DataFrame(bench).to_csv(work / "bench-equipment.csv", index=False)
    with zhizao.connect(db) as ws:
        for name in ORDER:
            r = ws.ingest(name, paths[name])[0]
            records[name] = r.loaded
        ws.ingest("equipment", work / "bench-equipment.csv")
        accounts.ensure_tables(ws.con)
        for e in ents:
            accounts.add_user(ws.con, f"bench-{e.lower()}", PASSWORD, "enterprise", e)
        wcs = {e: sorted(x for x in tabs["equipment"].loc[tabs["equipment"]["enterprise"] == e, "work_center"]
                         .dropna().unique()) for e in ents}
    shutil.rmtree(work / "programme", ignore_errors=True)
    log(f"store built in {time.perf_counter() - t:.0f} s: {records}")
    return db, {"enterprises": enterprises, "tenants": ents, "records": records, "bench": bench,
                "work_centers": wcs, "build_seconds": round(time.perf_counter() - t, 1),
                "bench_timezone": sorted(set(zone))}


def multipart(name: str, content: bytes) -> tuple[bytes, str]:
    b = uuid.uuid4().hex
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode() + content + f"\r\n--{b}--\r\n".encode()
    return body, f"multipart/form-data; boundary={b}"


def states_csv(eq: str, first_minute: int, n: int) -> bytes:
    rows = ["equipment_id,start,end,state"]
    for k in range(first_minute, first_minute + n):
        s, e = T0 + dt.timedelta(minutes=k), T0 + dt.timedelta(minutes=k + 1)
        rows.append(f"{eq},{s.isoformat()},{e.isoformat()},{'production' if k % 7 else 'unplanned_downtime'}")
    return ("\n".join(rows) + "\n").encode()


async def run(port: int, meta: dict, tokens: dict, clients: int, duration: float, think: float, n_records: int,
              seed: int) -> dict:
    kinds = ["upload", "upload (the same file again)", "site page", "landing page", "work-centre page",
             "API kpi site/day"]
    samples = {k: [] for k in kinds}
    stale: dict[str, list[float]] = {k: [] for k in kinds}  # age [s] of the figures of each stale answer
    statuses = {k: {} for k in kinds}
    sent: dict[str, set] = {}  # equipment -> minutes of records in uploads answered 2xx
    unanswered = {"uploads": 0}
    stop = time.perf_counter() + duration

    async def client(i: int):
        b = meta["bench"][i]
        ent, eq = b["enterprise"], b["equipment_id"]
        conn = Conn(port, {"Authorization": f"Bearer {tokens[ent]}"})
        r = random.Random(seed * 1000 + i)
        minute, files = 0, []
        sent.setdefault(eq, set())
        wcs = meta["work_centers"][ent] or [f"{ent}-WCB"]
        try:
            while time.perf_counter() < stop:
                x = r.random()
                method, body, ctype, minutes = "GET", b"", None, None
                if x < 0.2:
                    if files and r.random() < 0.1:
                        kind = "upload (the same file again)"
                        name, content, minutes = r.choice(files)
                    else:
                        kind = "upload"
                        name = f"{eq}-{minute:06d}.csv"
                        content = states_csv(eq, minute, n_records)
                        minutes = range(minute, minute + n_records)
                        files.append((name, content, minutes))
                        minute += n_records
                    body, ctype = multipart(name, content)
                    method, path = "POST", "/api/v1/ingest/states"
                elif x < 0.65:
                    kind, path = "site page", f"/plant/site/{ent}-S1"
                elif x < 0.8:
                    kind, path = "landing page", "/plant"
                elif x < 0.9:
                    kind, path = "work-centre page", f"/plant/work_center/{r.choice(wcs)}"
                else:
                    kind, path = "API kpi site/day", "/api/v1/kpi?level=site&period=day"
                t = time.perf_counter()
                try:
                    status, data = await asyncio.wait_for(conn.request(method, path, body, ctype), timeout=300)
                    m = STALE.search(data or b"")
                    if m:  # an earlier page, marked with the time its figures are as of
                        stale[kind].append(time.time() - float(m.group(1)))
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                    status = 599
                    conn.close()
                    conn = Conn(port, {"Authorization": f"Bearer {tokens[ent]}"})
                samples[kind].append(time.perf_counter() - t)
                statuses[kind][status] = statuses[kind].get(status, 0) + 1
                if method == "POST":
                    if 200 <= status < 300:
                        sent[eq].update(minutes)
                    elif status >= 500:
                        unanswered["uploads"] += 1
                if think:
                    await asyncio.sleep(think * (0.5 + r.random()))
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    wall = time.perf_counter() - t0
    out = {"clients": clients, "duration_s": round(wall, 1), "think_s": think, "records_per_upload": n_records,
           "kinds": {k: {**_stats(samples[k]), "statuses": {str(s): n for s, n in sorted(statuses[k].items())}}
                     for k in kinds}}
    dash = [s for k in ("site page", "landing page", "work-centre page", "API kpi site/day") for s in samples[k]]
    ups = samples["upload"] + samples["upload (the same file again)"]
    out["dashboard"] = _stats(dash)
    ages = [a for k in kinds for a in stale[k]]
    out["stale"] = {"answers": len(ages), "share_of_dashboard": round(len(ages) / max(len(dash), 1), 3),
                    "by_kind": {k: len(v) for k, v in stale.items() if v},
                    "age_s": _stats(ages) if ages else None}
    out["uploads"] = _stats(ups)
    out["errors_5xx"] = sum(n for k in kinds for s, n in statuses[k].items() if s >= 500)
    out["errors_4xx"] = sum(n for k in kinds for s, n in statuses[k].items() if 400 <= s < 500)
    out["requests_per_s"] = round(sum(len(v) for v in samples.values()) / wall, 1)
    out["_sent"] = {eq: sorted(m) for eq, m in sent.items()}
    return out


def check_store(db: Path, sent: dict) -> dict:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = con.execute("""SELECT equipment_id, epoch(start) AS s, count(*) AS n FROM states
                                WHERE equipment_id LIKE '%-BENCH-%' GROUP BY ALL""").fetchall()
        quarantined = con.execute("SELECT count(*) FROM quarantine WHERE raw::VARCHAR LIKE '%-BENCH-%'"
                                  ).fetchone()[0]
    finally:
        con.close()
    t0 = T0.timestamp()
    have = {(e, int(round((s - t0) / 60))): n for e, s, n in stored}
    want = {(e, m) for e, ms in sent.items() for m in ms}
    return {"records_acknowledged": len(want), "records_stored": sum(have.values()),
            "lost": len(want - set(have)), "duplicated": sum(n - 1 for n in have.values() if n > 1),
            "unexpected": len(set(have) - want), "quarantined": quarantined}


def markdown(r: dict) -> str:
    run_, chk, m = r["run"], r["store_check"], r["machine"]
    lines = ["# Tenants uploading and reading at once (issue 14)", "",
             f"Run {r['date']} (commit {r['commit']}) on {m['nproc']} cores ({m['cpu_model']}), {m['memory_gib']} GiB, "
             f"shared machine, load average {r['loadavg_start']} at start, {r['loadavg_end']} at end. Store: a "
             f"simulated programme of {r['data']['enterprises']} enterprises ({r['data']['records']['states']:,} "
             f"states, {r['data']['records']['production']:,} production, {r['data']['records']['energy']:,} energy "
             f"records; the benchmark machines in {', '.join(r['data'].get('bench_timezone', ['UTC']))}); "
             f"{run_['clients']} clients over {len(r['data']['tenants'])} tenants for "
             f"{run_['duration_s']} s, think time {run_['think_s']} s; one server process"
             + (f" (`--slots {r['server_slots']}`)" if r.get("server_slots") is not None else "") + ".", "",
             "| requests | n | p50 ms | p95 ms | p99 ms | max ms | statuses |", "|---|---|---|---|---|---|---|"]
    for k, v in run_["kinds"].items():
        lines.append(f"| {k} | {v['n']} | {v['p50_ms']} | {v['p95_ms']} | {v['p99_ms']} | {v['max_ms']} | "
                     f"{v['statuses']} |")
    for k in ("dashboard", "uploads"):
        v = run_[k]
        lines.append(f"| **{k} (all)** | {v['n']} | {v['p50_ms']} | {v['p95_ms']} | {v['p99_ms']} | {v['max_ms']} | |")
    lines += ["", f"Store after the run: {chk['records_acknowledged']:,} records in acknowledged uploads, "
              f"{chk['records_stored']:,} stored; lost {chk['lost']}, duplicated {chk['duplicated']}, unexpected "
              f"{chk['unexpected']}, quarantined {chk['quarantined']}. Answers 5xx: {run_['errors_5xx']}, 4xx: "
              f"{run_['errors_4xx']}. {run_['requests_per_s']} requests/s.", ""]
    st = run_.get("stale")
    if r.get("always_fresh"):
        lines += ["Server with `--always-fresh`: every page waited for the figures of the latest uploads.", ""]
    elif st is not None:
        age = st["age_s"] or {}
        lines += [f"Server with `--fresh-wait` {r.get('fresh_wait')} s: {st['answers']} of the dashboard answers "
                  f"({100 * st['share_of_dashboard']:.1f} %) showed the earlier figures, marked with their time, while "
                  f"the current ones were computed ({st['by_kind']}); the age of those figures: p50 "
                  f"{(age.get('p50_ms') or 0) / 1000:.1f} s, p95 {(age.get('p95_ms') or 0) / 1000:.1f} s, max "
                  f"{(age.get('max_ms') or 0) / 1000:.1f} s.", ""]
    lines += ["| target | value | met |", "|---|---|---|"]
    for k, (v, ok) in r["targets"].items():
        lines.append(f"| {k} {'<' if k.endswith('_ms') else '='} {TARGETS[k]:g} | {v} | {'yes' if ok else '**no**'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--enterprises", type=int, default=10)
    ap.add_argument("--tenants", type=int, default=5)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--think", type=float, default=0.2)
    ap.add_argument("--records", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="4 enterprises, 20 s")
    ap.add_argument("--out", default=None)
    ap.add_argument("--always-fresh", action="store_true",
                    help="run the server with --always-fresh (pages wait for the current figures: the baseline)")
    ap.add_argument("--slots", type=int, default=None,
                    help="the server's --slots (requests computed at once; 0: all; default: the server's own)")
    ap.add_argument("--bench-utc", action="store_true",
                    help="the benchmark machines in UTC, their sites in Asia/Shanghai (the setup of earlier runs)")
    a = ap.parse_args(argv)
    if a.quick:
        a.enterprises, a.tenants, a.duration = 4, 2, 20.0
    out = Path(a.out) if a.out else HERE / "results" / ("tenant_load_quick.json" if a.quick else "tenant_load.json")
    work = Path(tempfile.mkdtemp(prefix="zhizao-tenant-load-"))
    load_start = os.getloadavg()
    proc = None
    try:
        db, meta = build_store(work, a.enterprises, a.tenants, a.clients, a.seed, bench_utc=a.bench_utc)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        from zhizao.server.admission import SLOTS

        slots = SLOTS if a.slots is None else a.slots
        proc = subprocess.Popen([sys.executable, "-m", "zhizao.server", "--db", str(db), "--port", str(port),
                                 "--log-level", "warning", "--slots", str(slots)]
                                + (["--always-fresh"] if a.always_fresh else []), cwd=ROOT)
        t = time.perf_counter()
        while True:
            try:
                if http(base + "/api/v1/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None:
                raise SystemExit("the server stopped")
            time.sleep(0.2)
        tokens = {}
        for e in meta["tenants"]:
            st, body, _ = http(base + "/api/v1/auth/login", "POST", {"username": f"bench-{e.lower()}",
                                                                     "password": PASSWORD})
            assert st == 200, body[:300]
            tokens[e] = json.loads(body)["token"]
        # the first view of each tenant's site page (cold), then the run
        cold = {}
        for e in meta["tenants"]:
            st, body, s = http(f"{base}/plant/site/{e}-S1", headers={"Authorization": f"Bearer {tokens[e]}"})
            assert st == 200, body[:300]
            cold[e] = round(s, 2)
        log(f"server up and warm in {time.perf_counter() - t:.1f} s; cold site pages {cold}")
        res = asyncio.run(run(port, meta, tokens, a.clients, a.duration, a.think, a.records, a.seed))
        rss = None
        try:
            proc_status = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
            rss = int(next(ln.split()[1] for ln in proc_status if ln.startswith("VmHWM"))) / 1024
        except (OSError, StopIteration):
            pass
        proc.terminate()
        proc.wait(timeout=120)
        proc = None
        sent = res.pop("_sent")
        chk = check_store(db, sent)
        targets = {"errors_5xx": (res["errors_5xx"], res["errors_5xx"] == 0),
                   "lost": (chk["lost"], chk["lost"] == 0), "duplicated": (chk["duplicated"], chk["duplicated"] == 0),
                   "upload_p95_ms": (res["uploads"]["p95_ms"], (res["uploads"]["p95_ms"] or 1e9) < 2000.0),
                   "dashboard_p95_ms": (res["dashboard"]["p95_ms"], (res["dashboard"]["p95_ms"] or 1e9) < 500.0)}
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        result = {"benchmark": "tenant_load", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                  "commit": commit,
                  "command": "python benchmarks/tenant_load.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                  "machine": machine(), "loadavg_start": [round(x, 2) for x in load_start],
                  "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                  "data": {k: meta[k] for k in ("enterprises", "tenants", "records", "build_seconds", "bench_timezone")},
                  "server_peak_rss_mib": round(rss) if rss else None, "cold_site_page_s": cold,
                  "run": res, "store_check": chk, "targets": targets, "always_fresh": a.always_fresh, "server_slots": slots,
                  "fresh_wait": None if a.always_fresh else FRESH_WAIT}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
        md = markdown(result)
        out.with_suffix(".md").write_text(md)
        print(md)
        return 0 if all(ok for _v, ok in targets.values()) else 1
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
