"""Every kind of failure listed in docs/reference/iso22400.md ("Where other systems go wrong").

Expected values are computed by hand in each test.
"""

import math

import pandas as pd
import pytest

H = 3600.0


def eq(tz="UTC", **kw):
    return [{"equipment_id": "M1", "work_center": "L1", "area": "A1", "site": "S1", "enterprise": "E1",
             "timezone": tz, **kw}]


def one(ws, **kw):
    df = ws.kpi(**kw)
    assert len(df) == 1, df
    return df.iloc[0]


# -- overlapping intervals are counted once; availability stays in [0, 1]
def test_overlapping_stops_count_once(make_ws):
    ws = make_ws({
        "equipment": eq(),
        "states": [
            {"equipment_id": "M1", "start": "2024-01-01T00:00:00Z", "end": "2024-01-01T08:00:00Z", "state": "production"},
            # two stop records covering 02:00-03:00 and 02:30-03:30: one 1.5 h stop, not 2 h
            {"equipment_id": "M1", "start": "2024-01-01T02:00:00Z", "end": "2024-01-01T03:00:00Z", "state": "unplanned_downtime"},
            {"equipment_id": "M1", "start": "2024-01-01T02:30:00Z", "end": "2024-01-01T03:30:00Z", "state": "unplanned_downtime"},
        ],
    })
    k = one(ws, period="all", start="2024-01-01T00:00:00Z", end="2024-01-01T08:00:00Z")
    assert k["adet"] == 1.5 * H
    assert k["apt"] == 6.5 * H
    assert k["availability"] == pytest.approx(6.5 / 8)
    assert k["overlap"] == 1.5 * H  # 02:00-03:30 is covered by two or three records
    assert k["fe"] == 1


def test_precedence_between_categories_is_one_rule(make_ws):
    # setup logged over a failure: the failure wins (CATEGORY_PRECEDENCE); production under both loses
    ws = make_ws({
        "equipment": eq(),
        "states": [
            {"equipment_id": "M1", "start": "2024-01-01T00:00:00Z", "end": "2024-01-01T04:00:00Z", "state": "production"},
            {"equipment_id": "M1", "start": "2024-01-01T01:00:00Z", "end": "2024-01-01T03:00:00Z", "state": "setup"},
            {"equipment_id": "M1", "start": "2024-01-01T02:00:00Z", "end": "2024-01-01T02:30:00Z", "state": "unplanned_downtime"},
        ],
    })
    k = one(ws, period="all", start="2024-01-01T00:00:00Z", end="2024-01-01T04:00:00Z")
    assert (k["apt"], k["aust"], k["adet"]) == (2 * H, 1.5 * H, 0.5 * H)


# -- a state crossing a boundary is clipped on both sides, and carries in from before the window
def test_state_crossing_day_boundary_is_split_and_carried_in(make_ws):
    ws = make_ws({
        "equipment": eq(),
        "states": [
            {"equipment_id": "M1", "start": "2024-01-01T20:00:00Z", "state": "production"},
            {"equipment_id": "M1", "start": "2024-01-02T04:00:00Z", "state": "unplanned_downtime"},
            {"equipment_id": "M1", "start": "2024-01-02T05:00:00Z", "state": "not_scheduled"},
        ],
    })
    days = ws.kpi(period="day", start="2024-01-01T00:00:00Z", end="2024-01-03T00:00:00Z")
    assert list(days["apt"]) == [4 * H, 4 * H]
    assert list(days["adet"]) == [0, 1 * H]
    # a window that starts inside the running state: it carries in
    k = one(ws, period="all", start="2024-01-02T01:00:00Z", end="2024-01-02T04:30:00Z")
    assert k["apt"] == 3 * H and k["adet"] == 0.5 * H


def test_failure_classification_does_not_depend_on_the_query_range(make_ws):
    # a 10-min failure (above the 300 s threshold) seen through a window that shows only 2 min of it
    ws = make_ws({
        "equipment": eq(),
        "states": [
            {"equipment_id": "M1", "start": "2024-01-01T00:00:00Z", "state": "production"},
            {"equipment_id": "M1", "start": "2024-01-01T01:00:00Z", "state": "unplanned_downtime"},
            {"equipment_id": "M1", "start": "2024-01-01T01:10:00Z", "state": "production"},
            {"equipment_id": "M1", "start": "2024-01-01T01:20:00Z", "state": "unplanned_downtime"},  # 4 min: minor
            {"equipment_id": "M1", "start": "2024-01-01T01:24:00Z", "state": "production"},
            {"equipment_id": "M1", "start": "2024-01-01T02:00:00Z", "state": "not_scheduled"},
        ],
    })
    k = one(ws, period="all", start="2024-01-01T01:08:00Z", end="2024-01-01T01:30:00Z")
    assert k["adet"] - k["adet_minor"] == 120 and k["adet_minor"] == 240
    assert k["fe"] == 0  # the failure started before the window
    full = one(ws, period="all", start="2024-01-01T00:00:00Z", end="2024-01-01T02:00:00Z")
    assert full["fe"] == 1 and full["ttr"] == 600 and full["adet_minor"] == 240


def test_stop_of_exactly_the_threshold_is_a_failure_only(make_ws):
    ws = make_ws({
        "equipment": eq(),
        "states": [
            {"equipment_id": "M1", "start": "2024-01-01T00:00:00Z", "state": "production"},
            {"equipment_id": "M1", "start": "2024-01-01T01:00:00Z", "state": "unplanned_downtime"},
            {"equipment_id": "M1", "start": "2024-01-01T01:05:00Z", "state": "production"},
            {"equipment_id": "M1", "start": "2024-01-01T02:00:00Z", "state": "not_scheduled"},
        ],
    })
    k = one(ws, period="all", start="2024-01-01T00:00:00Z", end="2024-01-01T02:00:00Z")
    assert (k["ttr"], k["adet_minor"], k["fe"]) == (300, 0, 1)


# -- a count stamped exactly on a boundary belongs to exactly one bucket; interval counts split
def test_count_on_boundary_counted_once_and_interval_counts_split(make_ws):
    ws = make_ws({
        "equipment": eq(),
        "states": [{"equipment_id": "M1", "start": "2024-01-01T00:00:00Z", "end": "2024-01-03T00:00:00Z",
                    "state": "production"}],
        "production": [
            {"equipment_id": "M1", "end": "2024-01-02T00:00:00Z", "produced": 10},  # stamp on midnight
            {"equipment_id": "M1", "start": "2024-01-01T18:00:00Z", "end": "2024-01-02T06:00:00Z",
             "produced": 120, "scrap": 12},
        ],
    })
    days = ws.kpi(period="day")
    assert list(days["pq"]) == [60, 70]  # 6 of 12 hours each, + the stamp on 01-02 00:00 goes to day 2
    assert list(days["sq"]) == [6, 6]
    assert days["pq"].sum() == 130


# -- plant time zone, DST days of 23 h and 25 h, night shift across DST
def test_days_follow_the_plant_time_zone_with_dst(make_ws):
    ws = make_ws({
        "equipment": eq(tz="Europe/Berlin"),
        "states": [{"equipment_id": "M1", "start": "2024-03-30T00:00:00+01:00", "end": "2024-04-01T00:00:00+02:00",
                    "state": "production"},
                   {"equipment_id": "M1", "start": "2024-10-26T00:00:00+02:00", "end": "2024-10-28T00:00:00+01:00",
                    "state": "production"}],
    })
    spring = ws.kpi(period="day", start="2024-03-30T00:00:00+01:00", end="2024-04-01T00:00:00+02:00")
    assert list(spring["ct"]) == [24 * H, 23 * H]
    assert list(spring["period_start"]) == ["2024-03-30T00:00:00+01:00", "2024-03-31T00:00:00+01:00"]
    autumn = ws.kpi(period="day", start="2024-10-26T00:00:00+02:00", end="2024-10-28T00:00:00+01:00")
    assert list(autumn["ct"]) == [24 * H, 25 * H]
    assert list(autumn["apt"]) == [24 * H, 25 * H]


def test_night_shift_across_dst_lasts_7_or_9_hours(make_ws):
    ws = make_ws({
        "equipment": eq(tz="Europe/Berlin"),
        "calendar": [
            {"scope": "S1", "start": "2024-03-30T22:00:00", "end": "2024-03-31T06:00:00", "kind": "shift", "name": "night"},
            {"scope": "S1", "start": "2024-10-26T22:00:00", "end": "2024-10-27T06:00:00", "kind": "shift", "name": "night"},
        ],
        "states": [{"equipment_id": "M1", "start": "2024-03-30T20:00:00", "end": "2024-03-31T08:00:00", "state": "production"},
                   {"equipment_id": "M1", "start": "2024-10-26T20:00:00", "end": "2024-10-27T08:00:00", "state": "production"}],
    })
    shifts = ws.kpi(period="shift")
    assert list(shifts["pot"]) == [7 * H, 9 * H]  # naive times are local (Europe/Berlin)
    assert list(shifts["apt"]) == [7 * H, 9 * H]
    assert shifts["outside_pbt"].sum() == 0


# -- out of order, duplicates re-delivered, negative durations
def test_record_order_and_redelivery_do_not_change_results(make_ws, tmp_path):
    states = [
        {"equipment_id": "M1", "start": "2024-01-01T00:00:00Z", "state": "production"},
        {"equipment_id": "M1", "start": "2024-01-01T03:00:00Z", "state": "setup"},
        {"equipment_id": "M1", "start": "2024-01-01T04:00:00Z", "state": "production"},
        {"equipment_id": "M1", "start": "2024-01-01T08:00:00Z", "state": "not_scheduled"},
    ]
    a = make_ws({"equipment": eq(), "states": states})
    b = make_ws({"equipment": eq(), "states": states[::-1]})
    ka, kb = one(a, period="all"), one(b, period="all")
    assert (ka["apt"], ka["aust"]) == (kb["apt"], kb["aust"]) == (7 * H, 1 * H)
    # re-delivery of the same records (another file): stored once, results unchanged
    p = tmp_path / "again.csv"
    pd.DataFrame(states[1:3]).to_csv(p, index=False)
    r = a.ingest("states", p)[0]
    assert (r.loaded, r.skipped, r.quarantined) == (0, 2, 0)
    assert one(a, period="all")["apt"] == 7 * H


# -- performance above 100 % is kept and flagged; a full breakdown gives OEE 0
def test_performance_above_one_is_kept_and_flagged(make_ws):
    ws = make_ws({
        "equipment": eq(),
        "products": [{"product_id": "P", "pri": 10.0}],
        "states": [{"equipment_id": "M1", "start": "2024-01-01T00:00:00Z", "end": "2024-01-01T01:00:00Z", "state": "production"}],
        "production": [{"equipment_id": "M1", "end": "2024-01-01T00:30:00Z", "product_id": "P", "produced": 400}],
    })
    k = one(ws, period="all", start="2024-01-01T00:00:00Z", end="2024-01-01T01:00:00Z")
    assert k["effectiveness"] == pytest.approx(4000 / 3600)  # not capped at 1
    dq = ws.data_quality(period="all", start="2024-01-01T00:00:00Z", end="2024-01-01T01:00:00Z")
    assert "performance_above_100" in set(dq["check"])


def test_full_breakdown_gives_oee_zero_and_undefined_factors(make_ws):
    ws = make_ws({
        "equipment": eq(),
        "products": [{"product_id": "P", "pri": 10.0}],
        "states": [{"equipment_id": "M1", "start": "2024-01-01T00:00:00Z", "end": "2024-01-01T08:00:00Z",
                    "state": "unplanned_downtime"},
                   {"equipment_id": "M1", "start": "2024-01-01T08:00:00Z", "end": "2024-01-01T09:00:00Z",
                    "state": "production"}],
        "production": [{"equipment_id": "M1", "end": "2024-01-01T08:30:00Z", "product_id": "P", "produced": 300}],
    })
    k = one(ws, period="all", start="2024-01-01T00:00:00Z", end="2024-01-01T08:00:00Z")
    assert k["availability"] == 0 and k["oee"] == 0
    assert math.isnan(k["effectiveness"]) and math.isnan(k["quality_ratio"])
    assert "effectiveness: undefined" in k["null_reasons"]


def test_ratios_come_from_unrounded_elements(make_ws):
    # availability 2/3, effectiveness 0.7 x ... : rounding intermediate factors to 4 places would move OEE
    ws = make_ws({
        "equipment": eq(),
        "products": [{"product_id": "P", "pri": 7.0}],
        "states": [{"equipment_id": "M1", "start": "2024-01-01T00:00:00Z", "end": "2024-01-01T02:00:00Z", "state": "production"},
                   {"equipment_id": "M1", "start": "2024-01-01T02:00:00Z", "end": "2024-01-01T03:00:00Z", "state": "unplanned_downtime"}],
        "production": [{"equipment_id": "M1", "end": "2024-01-01T01:00:00Z", "product_id": "P", "produced": 777, "scrap": 7}],
    })
    k = one(ws, period="all", start="2024-01-01T00:00:00Z", end="2024-01-01T03:00:00Z")
    exact = (2 / 3) * (777 * 7 / 7200) * (770 / 777)
    assert k["oee"] == pytest.approx(exact, rel=1e-14)


# -- scrap: partial scrap of a record counts; scrap above produced is rejected
def test_partial_scrap_counts_and_excess_scrap_is_quarantined(make_ws, tmp_path):
    ws = make_ws({
        "equipment": eq(),
        "states": [{"equipment_id": "M1", "start": "2024-01-01T00:00:00Z", "end": "2024-01-01T01:00:00Z", "state": "production"}],
        "production": [{"equipment_id": "M1", "end": "2024-01-01T00:10:00Z", "produced": 100, "scrap": 3, "rework": 2}],
    })
    k = one(ws, period="all", start="2024-01-01T00:00:00Z", end="2024-01-01T01:00:00Z")
    assert (k["pq"], k["gq"], k["sq"], k["rq"]) == (100, 95, 3, 2)
    assert k["quality_ratio"] == 0.95
    p = tmp_path / "bad.csv"
    pd.DataFrame([{"equipment_id": "M1", "end": "2024-01-01T00:20:00Z", "produced": 10, "scrap": 11}]).to_csv(p, index=False)
    r = ws.ingest("production", p)[0]
    assert r.quarantined == 1
    q = ws.quarantine()
    assert q.iloc[-1]["rule"] == "counts_exceed_produced"


# -- cumulative energy registers: resets and rollovers never book a negative or a lifetime jump
def test_cumulative_register_reset_rollover_and_jump(make_ws):
    rows = []
    readings = [  # (time, register value)
        ("00:00", 9990.0), ("01:00", 9995.0), ("02:00", 3.0),     # rollover at 10,000: 5 + 3 = 8 kWh
        ("03:00", 10.0), ("04:00", 4.0),                           # reset to zero: 4 kWh after the reset
        ("05:00", 9.0), ("06:00", 250000.0), ("07:00", 250006.0),  # meter swap: the 249,991 jump is not booked
    ]
    for t, v in readings:
        rows.append({"meter_id": "EM1", "equipment_id": "M1", "end": f"2024-01-01T{t}:00Z", "carrier": "electricity",
                     "quantity": v, "unit": "kWh", "reading": "cumulative"})
    ws = make_ws({"equipment": eq(), "energy": rows})
    el = ws.elements(period="all", start="2024-01-01T00:00:00Z", end="2024-01-02T00:00:00Z").iloc[0]
    # steps: 5, 8 (rollover), 7, 4 (reset), 5, jump (not booked), 6
    assert el["energy_kwh"] == 5 + 8 + 7 + 4 + 5 + 6
    assert el["counter_resets"] == 3
    assert el["energy_kgce"] == pytest.approx(35 * 0.1229)
