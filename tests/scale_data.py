"""A small multi-site "city" store for the dataset and Spark tests: two simulated plants of one enterprise in
two time zones, a third enterprise's plant without calendar, and the awkward cases of routing records to sites.

- S1 (Europe/Berlin, crosses the DST change of 2025-03-30) and S2 (Asia/Shanghai, an earlier week) of
  enterprise E1; both plants have an area named ``A1`` (an id in two sites) and S2's machines are N001.., its
  lines K01..;
- E1-wide labour and a holiday booked to the enterprise (counts for both sites' ranges);
- quality booked to the shared area ``A1``; a cumulative energy register booked to site S2;
- S3 of enterprise E2: two machines, no calendar, states only;
- X1 of E2 without site; S4 (E2) with a machine and a calendar but no records at all; S5 (E2) with a machine
  and nothing else.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from canonical import write_tables
from zhizao.simulate import simulate_plant

ORDER = ["equipment", "products", "calendar", "states", "production", "energy", "labour", "quality"]


def _rename(tables: dict, eq: str, wc: str, site: str, tz: str) -> dict:
    out = {}
    for name, df in tables.items():
        if name == "truth":
            continue
        df = df.copy()
        for col in ("equipment_id", "scope", "work_center", "site", "meter_id", "unit_id", "order_id"):
            if col in df.columns:
                df[col] = df[col].astype(object).map(
                    lambda v: v if not isinstance(v, str) else
                    v.replace("M0", eq + "0").replace("L0", wc + "0").replace("S1", site))
        out[name] = df
    return out


def city_tables() -> dict[str, pd.DataFrame]:
    a = simulate_plant(machines=6, days=5, seed=3, start="2025-03-27", timezone="Europe/Berlin")
    b = _rename(simulate_plant(machines=5, days=4, seed=4, start="2025-03-10", timezone="Asia/Shanghai"),
                "N", "K", "S2", "Asia/Shanghai")
    t = {n: pd.concat([a[n], b[n]], ignore_index=True) for n in ORDER}
    t["products"] = a["products"]  # the same general products in both plants
    eq = t["equipment"]
    extra_eq = pd.DataFrame([
        {"equipment_id": "R1", "name": "press 1", "work_center": "RW", "area": "RA", "site": "S3",
         "enterprise": "E2", "timezone": "America/New_York", "digital": True, "epc": 10.0},
        {"equipment_id": "R2", "name": "press 2", "work_center": "RW", "area": "RA", "site": "S3",
         "enterprise": "E2", "timezone": "America/New_York", "digital": False, "epc": None},
        {"equipment_id": "X1", "name": "loose machine", "work_center": None, "area": None, "site": None,
         "enterprise": "E2", "timezone": "UTC", "digital": False, "epc": None},
        {"equipment_id": "Z1", "name": "idle machine", "work_center": "ZW", "area": "ZA", "site": "S4",
         "enterprise": "E2", "timezone": "Asia/Tokyo", "digital": False, "epc": None},
        {"equipment_id": "Z2", "name": "unused machine", "work_center": "YW", "area": "YA", "site": "S5",
         "enterprise": "E2", "timezone": "UTC", "digital": False, "epc": None},
    ])
    t["equipment"] = pd.concat([eq, extra_eq], ignore_index=True)
    states = []
    for i, e in enumerate(("R1", "R2", "X1")):
        t0 = pd.Timestamp("2025-04-02T08:00:00Z") + pd.Timedelta(hours=i)
        for cat, minutes in [("production", 50), ("unplanned_downtime", 3), ("production", 90),
                             ("unplanned_downtime", 25), ("setup", 10), ("production", 200)]:
            states.append({"equipment_id": e, "start": t0, "state": cat.upper(), "category": cat,
                           "reason": "jam" if cat == "unplanned_downtime" else None})
            t0 += pd.Timedelta(minutes=minutes)
    t["states"] = pd.concat([t["states"], pd.DataFrame(states)], ignore_index=True)
    t["calendar"] = pd.concat([t["calendar"], pd.DataFrame([
        {"scope": "E1", "start": pd.Timestamp("2025-03-12T00:00:00+08:00"),
         "end": pd.Timestamp("2025-03-13T00:00:00+08:00"), "kind": "holiday", "name": "enterprise day"},
        {"scope": "S4", "start": pd.Timestamp("2025-04-01T09:00:00+09:00"),
         "end": pd.Timestamp("2025-04-01T17:00:00+09:00"), "kind": "shift", "name": "day"},
    ])], ignore_index=True)
    t["labour"] = pd.concat([t["labour"], pd.DataFrame([
        {"scope": "E1", "start": pd.Timestamp("2025-03-09T00:00:00Z"), "end": pd.Timestamp("2025-03-09T08:00:00Z"),
         "attendance_hours": 12.5, "work_hours": 11.0, "headcount": 2, "earned_hours": 7.25},
        {"scope": "E1", "start": pd.Timestamp("2025-04-01T20:00:00Z"), "end": pd.Timestamp("2025-04-02T04:00:00Z"),
         "attendance_hours": 3.0, "work_hours": None, "headcount": 1, "earned_hours": None},
    ])], ignore_index=True)
    t["energy"] = pd.concat([t["energy"], pd.DataFrame([
        {"meter_id": "S2-main", "equipment_id": None, "scope": "S2", "start": None,
         "end": pd.Timestamp("2025-03-10T00:00:00+08:00") + pd.Timedelta(hours=6 * k), "carrier": "electricity",
         "quantity": q, "unit": "kWh", "reading": "cumulative"}
        for k, q in enumerate([99_990.5, 99_995.25, 3.75, 12.125, 20.0, 31.3])])], ignore_index=True)
    t["quality"] = pd.concat([t["quality"], pd.DataFrame([
        {"equipment_id": None, "scope": "A1", "ts": pd.Timestamp("2025-03-11T03:00:00Z") + pd.Timedelta(hours=k),
         "product_id": "P1", "unit_id": f"A1-{k}", "result": "fail" if k % 3 == 0 else "pass",
         "first_pass": k % 4 != 1}
        for k in range(7)])], ignore_index=True)
    return t


def write_city(tmp: Path) -> dict[str, Path]:
    """The city tables as CSV files under ``tmp``."""
    tmp.mkdir(parents=True, exist_ok=True)
    return write_tables(tmp, city_tables())


def ingest_city(ws, tmp: Path) -> None:
    paths = write_city(tmp)
    for name in ORDER:
        for r in ws.ingest(name, paths[name]):
            assert r.quarantined == 0, (str(r), ws.quarantine().head().to_dict("records"))
