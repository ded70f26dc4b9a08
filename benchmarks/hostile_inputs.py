"""The attacks of issue 14 on data inputs, timed: what they cost now (on demand, not part of the tests).

    python benchmarks/hostile_inputs.py [--quick]

Each attack runs in this process against a fresh store with the default limits (zhizao.limits):

- ``mqtt_keys_4000`` / ``mqtt_keys_50000``: one MQTT record with that many keys, in a batch with one valid
  record (the issue: 6.9 s for 4,000 keys, more than 5 minutes for 50,000, SIGTERM ignored);
- ``mqtt_distinct_keys``: 200 records with 250 distinct keys each (under the per-record limit);
- ``upload_200k_columns``: a 1.9 MB CSV whose header has 200,000 columns, through the REST API (the issue:
  more than 10 minutes holding the write lock), with another tenant's upload sent meanwhile;
- ``upload_gzip_bomb``: a ``.csv.gz`` of about 4.4 MB that unpacks to 1.5 GB of rows (the issue: the server
  went past 20 GB of memory);
- ``far_valid_date``: the whole store's elements by hour, and one enterprise's alone, when another tenant has
  a state in 1970 (a far but valid date).

Results: ``benchmarks/results/hostile_inputs.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mqtt_keys(n: int) -> dict:
    from zhizao.live import LiveIngestor

    with LiveIngestor(Path(tempfile.mkdtemp()) / "k.duckdb", register_equipment=True) as ing:
        rec = {"start": "2025-01-01T00:00:00Z", "state": "production", **{f"k{j}": j for j in range(n)}}
        t0 = time.perf_counter()
        r = ing.ingest_messages([("zhizao/v1/E1/S1/A1/L1/M1/states", json.dumps(rec).encode()),
                                 ("zhizao/v1/E1/S1/A1/L1/M1/states",
                                  b'{"start": "2025-01-01T01:00:00Z", "state": "setup"}')])
        s = time.perf_counter() - t0
        rules = [x for (x,) in ing.ws.con.execute("SELECT rule FROM quarantine").fetchall()]
    return {"seconds": round(s, 3), "loaded": r.loaded, "quarantined": r.quarantined, "rules": rules}


def mqtt_distinct_keys(records: int = 200, per: int = 250) -> dict:
    from zhizao.live import LiveIngestor

    with LiveIngestor(Path(tempfile.mkdtemp()) / "k.duckdb", register_equipment=True) as ing:
        recs = [{"start": f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}Z", "state": "production",
                 **{f"k{i}_{j}": j for j in range(per)}} for i in range(records)]
        t0 = time.perf_counter()
        r = ing.ingest_messages([("zhizao/v1/E1/S1/A1/L1/M1/states", json.dumps(recs).encode())])
        return {"seconds": round(time.perf_counter() - t0, 3), "records": records, "keys": records * per,
                "loaded": r.loaded}


def _server(tmp: Path):
    from test_server_support import bearer, clone, login, make_client

    client = make_client(clone(tmp / "store.duckdb"))
    return client, bearer(login(client, "usera")), bearer(login(client, "userb"))


def _post(client, headers, name, data):
    return client.post("/api/v1/ingest/states", headers=headers,
                       files={"file": (name, io.BytesIO(data), "application/octet-stream")})


def upload_wide(tmp: Path) -> dict:
    from test_server_support import csv_bytes

    client, a, b = _server(tmp)
    try:
        wide = ",".join(f"c{i}" for i in range(200_000)).encode() + b"\n"
        wide += b"1," * (len(wide) // 2 // 2) + b"\n"
        wide = wide[: 1_900_000] + b"\n"
        other = {}

        def tenant_b():
            time.sleep(0.05)
            t = time.perf_counter()
            r = _post(client, b, "b.csv", csv_bytes([{"equipment_id": "ENT002-WC1-M1",
                                                      "start": "2026-01-05T06:00:00+08:00", "state": "production"}]))
            other.update(status=r.status_code, seconds=round(time.perf_counter() - t, 3))

        th = threading.Thread(target=tenant_b)
        th.start()
        t0 = time.perf_counter()
        r = _post(client, a, "wide.csv", wide)
        s = time.perf_counter() - t0
        th.join()
        return {"bytes": len(wide), "status": r.status_code, "code": r.json()["error"]["code"],
                "seconds": round(s, 3), "other_tenant": other}
    finally:
        client.app.state.server.close()


def upload_bomb(tmp: Path, unpacked: int) -> dict:
    client, a, _ = _server(tmp)
    try:
        row = b"ENT001-WC1-M1,2026-01-05T06:00:00+08:00,2026-01-05T06:01:00+08:00,production\n"
        buf = io.BytesIO()
        block = row * (1 << 20 // len(row) + 1)
        with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as z:
            z.write(b"equipment_id,start,end,state\n")
            written = 0
            while written < unpacked:
                z.write(block)
                written += len(block)
        bomb = buf.getvalue()
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        r = _post(client, a, "bomb.csv.gz", bomb)
        s = time.perf_counter() - t0
        return {"compressed_bytes": len(bomb), "unpacked_bytes": written, "status": r.status_code,
                "code": r.json()["error"]["code"], "seconds": round(s, 3),
                "peak_rss_growth_mb": round(_rss_mb() - rss0, 1)}
    finally:
        client.app.state.server.close()


def far_valid_date(tmp: Path) -> dict:
    import zhizao
    from zhizao.kpi.elements import compute_elements
    from zhizao.simulate.plant import simulate_plant

    t = simulate_plant(machines=20, days=28, seed=7)
    ws = zhizao.connect(tmp / "far.duckdb")
    t["equipment"]["enterprise"] = "E1"
    for name in ["equipment", "states", "production", "products", "calendar", "energy", "labour", "quality"]:
        p = tmp / f"{name}.parquet"
        t[name].to_parquet(p)
        ws.ingest(name, p)

    def timed(fn, n=3):
        best = None
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            s = time.perf_counter() - t0
            best = s if best is None else min(best, s)
        return round(best, 3)

    out = {"whole_store_hour_before": timed(lambda: compute_elements(ws.con, "hour"))}
    (tmp / "x.csv").write_text("equipment_id,site,enterprise,timezone\nX1,SX,EX,UTC\n")
    ws.ingest("equipment", tmp / "x.csv")
    (tmp / "xs.csv").write_text("equipment_id,start,end,state\nX1,1970-01-01T00:00:00Z,1970-01-01T01:00:00Z,"
                                "production\nX1,2025-03-05T00:00:00Z,2025-03-05T01:00:00Z,production\n")
    ws.ingest("states", tmp / "xs.csv")
    out["whole_store_hour_after"] = timed(lambda: compute_elements(ws.con, "hour"))
    part = ws.scoped(["E1"])
    out["one_enterprise_hour_after"] = timed(lambda: compute_elements(part.con, "hour"))
    part.close()
    ws.close()
    return out


def _commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a 150 MB bomb instead of 1.5 GB")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="zhizao-bench-hostile-"))
    for sub in ("w", "b", "f"):
        (tmp / sub).mkdir()
    import duckdb

    import zhizao
    from machine import cpu_model

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    res = {"machine": {"nproc": os.cpu_count(), "cpu_model": cpu_model(), "memory_gib": round(mem, 1),
                       "python": platform.python_version(), "duckdb": duckdb.__version__,
                       "zhizao": zhizao.__version__, "commit": _commit(),
                       "run_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "load_average": os.getloadavg()}}
    res["mqtt_keys_4000"] = mqtt_keys(4000)
    res["mqtt_keys_50000"] = mqtt_keys(50000)
    res["mqtt_distinct_keys"] = mqtt_distinct_keys()
    res["upload_200k_columns"] = upload_wide(tmp / "w")
    res["upload_gzip_bomb"] = upload_bomb(tmp / "b", 150 * 10**6 if args.quick else 1_500 * 10**6)
    res["far_valid_date"] = far_valid_date(tmp / "f")
    res["machine"]["load_average_after"] = os.getloadavg()
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "hostile_inputs.json").write_text(json.dumps(res, indent=1) + "\n")
    m = res["machine"]
    lines = ["# Hostile inputs (issue 14), timed", "",
             f"{m['run_at']}, commit {m['commit']}: {m['nproc']} cores ({m['cpu_model']}), {m['memory_gib']} GiB, "
             f"Python {m['python']}, DuckDB {m['duckdb']}; shared machine, load average before/after: "
             f"{res['machine']['load_average']} / {res['machine']['load_average_after']}", "",
             "| attack | result |", "|---|---|"]
    for k, v in res.items():
        if k != "machine":
            lines.append(f"| {k} | {json.dumps(v)} |")
    (out / "hostile_inputs.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
