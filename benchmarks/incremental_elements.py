"""Benchmark: a tenant's elements updated after an upload of one machine's states, against computed in whole
(issues 14 and 15; :func:`zhizao.kpi.elements.update_elements`).

Not a timed test. Builds the load-test store (``tenant_load.build_store``: a simulated programme of
``--enterprises`` enterprises, ``--machines`` machines per project, 12 months), takes the first tenant's scoped
workspace (what the server computes a tenant's pages on), and per period: computes the elements, adds an upload
of 50 one-minute states of one machine inside the data range, then times ``compute_elements`` (the whole tenant)
and ``update_elements`` (the earlier result with that machine redone), each from a fresh read of the store's
facts (``EngineContext.read``, included in both), ``--repeats`` times (median), and checks that both give the
same frames to the last bit. Results go to ``benchmarks/results/incremental_elements.json`` and ``.md``.

Usage::

    .venv/bin/python benchmarks/incremental_elements.py [--enterprises 10] [--machines 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from server_load import machine  # noqa: E402

PERIODS = ["all", "day", "week", "hour"]


def main() -> None:
    import pandas as pd

    import tenant_load
    import zhizao
    from zhizao.kpi.elements import compute_elements, update_elements
    from zhizao.kpi.partitions import EngineContext

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--enterprises", type=int, default=10)
    ap.add_argument("--machines", type=int, default=2, help="machines per project")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--periods", default=",".join(PERIODS), help="comma-separated (hourly buckets of 1,000 machines "
                                                                  "over a year take gigabytes in whole)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "incremental_elements.json")
    a = ap.parse_args()
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        db, meta = tenant_load.build_store(Path(tmp), a.enterprises, min(5, a.enterprises), 20, 0,
                                            a.machines)
        tenant = meta["tenants"][0]
        machine_id = f"{tenant}-BENCH-00"
        ws = zhizao.connect(db)
        rows = []
        for k, period in enumerate(a.periods.split(",")):
            s = ws.scoped([tenant])
            prior = compute_elements(s.con, period, settings=s.settings)
            s.close()
            t0 = tenant_load.T0 + dt.timedelta(days=3 + 7 * k)
            csv = ["equipment_id,start,end,state"] + [
                f"{machine_id},{(t0 + dt.timedelta(minutes=m)).isoformat()},"
                f"{(t0 + dt.timedelta(minutes=m + 1)).isoformat()},{'production' if m % 7 else 'unplanned_downtime'}"
                for m in range(50)]
            path = Path(tmp) / f"up-{period}.csv"
            path.write_text("\n".join(csv) + "\n")
            assert ws.ingest("states", path)[0].loaded == 50
            whole, update = [], []
            for _ in range(a.repeats):
                s = ws.scoped([tenant])
                t = time.perf_counter()
                full = compute_elements(s.con, period, settings=s.settings,
                                        context=EngineContext.read(s.con, s.settings))
                whole.append(time.perf_counter() - t)
                s.close()
                s = ws.scoped([tenant])
                t = time.perf_counter()
                upd = update_elements(s.con, prior, {machine_id}, period, settings=s.settings,
                                      context=EngineContext.read(s.con, s.settings))
                update.append(time.perf_counter() - t)
                s.close()
                if upd is not None:  # None: declined (a result the engine computes in several partitions)
                    pd.testing.assert_frame_equal(upd.elements, full.elements, check_exact=True)
                    pd.testing.assert_frame_equal(upd.reasons, full.reasons, check_exact=True)
            n_eq = int((full.elements["level"] == "equipment").groupby(full.elements["entity_id"]).any().sum())
            rows.append({"period": period, "rows": len(full.elements), "equipment": n_eq,
                         "whole_s": round(statistics.median(whole), 4), "update_s": round(statistics.median(update), 4),
                         "ratio": round(statistics.median(update) / statistics.median(whole), 2),
                         "identical": None if upd is None else True})
            print(rows[-1], flush=True)
        ws.close()
    res = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), "store": {
        k: v for k, v in meta.items() if k in ("enterprises", "records")}, "machines_per_project": a.machines,
        "tenant": tenant, "repeats": a.repeats, "periods": rows,
        "load_average_before": [round(x, 2) for x in load0],
        "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    m = res["machine"]
    lines = [f"# A tenant's elements updated after one machine's upload, against computed in whole ({res['date']})",
             "", f"Machine: {m.get('nproc')} cores, {m.get('cpu_model')}, {m.get('memory_gib')} GiB; load average "
             f"{res['load_average_before']} before, {res['load_average_after']} after. Store: the load-test store "
             f"({res['store']['enterprises']} enterprises, {a.machines} machines per project, "
             f"{res['store']['records'].get('states', 0):,} states); tenant {tenant} (its scoped workspace, as the "
             f"server computes it); median of {a.repeats}, each including a fresh read of the store's facts.", "",
             "| period | rows | machines | whole s | update s | update / whole | identical |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['period']} | {r['rows']:,} | {r['equipment']} | {r['whole_s']} | {r['update_s']} | {r['ratio']} "
              f"| {'declined' if r['identical'] is None else 'yes' if r['identical'] else 'no'} |" for r in rows]
    lines += ["", "Declined: the whole computation runs in several partitions (bounded memory), whose row order an "
              "update does not reproduce; the server then computes everything, as before."]
    a.out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
