"""The published worked example (Vorne, "Fast Guide to OEE"; reference/iso22400.md) through canonical tables.

A 480-min shift with 60 min of breaks (planned production time 420 min), 47 min of downtime, ideal rate
60 units/min (PRI = 1 s), 19,271 units produced of which 423 rejected.
"""

import pytest

SHIFT = [
    {"equipment_id": "M1", "start": "2024-05-06T06:00:00+00:00", "state": "production"},
    {"equipment_id": "M1", "start": "2024-05-06T07:00:00+00:00", "state": "unplanned_downtime", "reason": "jam"},
    {"equipment_id": "M1", "start": "2024-05-06T07:47:00+00:00", "state": "production"},
    {"equipment_id": "M1", "start": "2024-05-06T09:00:00+00:00", "state": "planned_downtime", "reason": "break"},
    {"equipment_id": "M1", "start": "2024-05-06T09:30:00+00:00", "state": "production"},
    {"equipment_id": "M1", "start": "2024-05-06T12:00:00+00:00", "state": "planned_downtime", "reason": "break"},
    {"equipment_id": "M1", "start": "2024-05-06T12:30:00+00:00", "state": "production"},
    {"equipment_id": "M1", "start": "2024-05-06T14:00:00+00:00", "state": "not_scheduled"},
]
TABLES = {
    "equipment": [{"equipment_id": "M1", "work_center": "L1", "site": "S1", "timezone": "UTC"}],
    "products": [{"product_id": "P1", "pri": 1.0}],
    "calendar": [
        {"scope": "S1", "start": "2024-05-06T06:00:00+00:00", "end": "2024-05-06T14:00:00+00:00", "kind": "shift"},
        {"scope": "S1", "start": "2024-05-06T09:00:00+00:00", "end": "2024-05-06T09:30:00+00:00", "kind": "break"},
        {"scope": "S1", "start": "2024-05-06T12:00:00+00:00", "end": "2024-05-06T12:30:00+00:00", "kind": "break"},
    ],
    "states": SHIFT,
    "production": [{"equipment_id": "M1", "start": "2024-05-06T06:00:00+00:00", "end": "2024-05-06T14:00:00+00:00",
                    "product_id": "P1", "produced": 19271, "scrap": 423}],
}


def test_vorne_worked_example(make_ws):
    ws = make_ws(TABLES)
    k = ws.kpi(period="all", start="2024-05-06T06:00:00Z", end="2024-05-06T14:00:00Z").iloc[0]
    assert k["pbt"] == 420 * 60 and k["apt"] == 373 * 60 and k["ct"] == 480 * 60
    assert k["availability"] == pytest.approx(373 / 420) and round(k["availability"], 4) == 0.8881
    assert round(k["effectiveness"], 4) == 0.8611
    assert round(k["quality_ratio"], 4) == 0.9780
    assert round(k["oee"], 4) == 0.7479
    assert round(k["teep"], 4) == 0.6544
    # unrounded: the product of the exact factors
    assert k["oee"] == pytest.approx((373 / 420) * (19271 / (373 * 60)) * (18848 / 19271), rel=1e-12)


def test_worked_example_rolls_up_to_the_site_unchanged(make_ws):
    ws = make_ws(TABLES)
    e = ws.kpi(level="equipment", period="all").iloc[0]
    s = ws.kpi(level="site", period="all").iloc[0]
    for name in ("availability", "effectiveness", "quality_ratio", "oee"):
        assert s[name] == pytest.approx(e[name], rel=1e-12)


def test_equipment_load_ratio_from_the_capacity_and_the_shift(make_ws):
    # KPI 30 from canonical tables: EPC = capacity [units/h] x POT [h]. The machine's capacity is its ideal rate,
    # 60 units/min = 3,600 units/h; POT is the 480 min shift (breaks are inside POT), so EPC = 3,600 x 8 =
    # 28,800 units and the load ratio is PQ / EPC = 19,271 / 28,800 = 0.66913.
    tables = dict(TABLES, equipment=[dict(TABLES["equipment"][0], epc=3600.0)])
    ws = make_ws(tables)
    k = ws.kpi(period="all", start="2024-05-06T06:00:00Z", end="2024-05-06T14:00:00Z").iloc[0]
    assert k["pot"] == 480 * 60 and k["epc"] == pytest.approx(28800.0, rel=1e-12)
    assert k["equipment_load_ratio"] == pytest.approx(19271 / 28800, rel=1e-12)
    assert round(k["equipment_load_ratio"], 4) == 0.6691
