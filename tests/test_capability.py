"""Capability indices (ISO 22400-2 KPIs 19-22) against hand-computed values."""

import numpy as np
import pytest


def test_cm_cmk_cp_cpk_by_hand(make_ws):
    # hour 1: 10.00, 10.02, 10.04 ; hour 2: 10.06, 10.08, 10.10 ; limits 9.9 .. 10.2
    vals = [10.00, 10.02, 10.04, 10.06, 10.08, 10.10]
    times = ["2024-01-01T08:10:00Z", "2024-01-01T08:20:00Z", "2024-01-01T08:30:00Z",
             "2024-01-01T09:10:00Z", "2024-01-01T09:20:00Z", "2024-01-01T09:30:00Z"]
    ws = make_ws({
        "equipment": [{"equipment_id": "M1", "work_center": "L1", "site": "S1"}],
        "quality": [{"equipment_id": "M1", "ts": t, "unit_id": f"u{i}", "result": "pass", "characteristic": "d",
                     "value": v, "lsl": 9.9, "usl": 10.2} for i, (t, v) in enumerate(zip(times, vals))],
    })
    c = ws.capability(level="equipment", period="day").iloc[0]
    mean = 10.05
    sigma = np.std(vals, ddof=1)  # long term: all six
    s = 0.02  # pooled within the two hours: each hour has sd 0.02
    assert c["n"] == 6 and c["mean"] == pytest.approx(mean)
    assert c["sigma"] == pytest.approx(sigma) and c["s"] == pytest.approx(s)
    assert c["cp"] == pytest.approx(0.3 / (6 * sigma))
    assert c["cpk"] == pytest.approx(min(10.2 - mean, mean - 9.9) / (3 * sigma))
    assert c["cm"] == pytest.approx(0.3 / (6 * s))
    assert c["cmk"] == pytest.approx(0.15 / (3 * s))
    # roll-up from sums: the line has the same measurements
    line = ws.capability(level="work_center", period="all").iloc[0]
    assert line["cp"] == pytest.approx(c["cp"]) and line["cm"] == pytest.approx(c["cm"])


def test_cpk_and_cmk_of_an_off_centre_process_by_hand(make_ws):
    # The case above is centred (Cp = Cpk); here the mean sits nearer USL, so Cpk < Cp and Cmk < Cm.
    # hour 1: 10.00, 10.02, 10.04 ; hour 2: 10.10, 10.12, 10.14 ; limits 9.9 .. 10.2
    # mean = 10.07; deviations +-0.03, +-0.05, +-0.07: sum of squares 0.0166, sigma = sqrt(0.0166 / 5) = 0.05762
    # s (pooled within hours): each hour sum of squares 0.0008 on 2 dof, s = sqrt(0.0016 / 4) = 0.02
    # Cp = 0.3 / (6 x 0.05762) = 0.8678 ; Cpk = min(10.2 - 10.07, 10.07 - 9.9) / (3 sigma) = 0.13 / 0.17286 = 0.7521
    # Cm = 0.3 / (6 x 0.02) = 2.5 ; Cmk = 0.13 / (3 x 0.02) = 2.1667
    vals = [10.00, 10.02, 10.04, 10.10, 10.12, 10.14]
    times = ["2024-01-01T08:10:00Z", "2024-01-01T08:20:00Z", "2024-01-01T08:30:00Z",
             "2024-01-01T09:10:00Z", "2024-01-01T09:20:00Z", "2024-01-01T09:30:00Z"]
    ws = make_ws({
        "equipment": [{"equipment_id": "M1", "work_center": "L1", "site": "S1"}],
        "quality": [{"equipment_id": "M1", "ts": t, "unit_id": f"u{i}", "result": "pass", "characteristic": "d",
                     "value": v, "lsl": 9.9, "usl": 10.2} for i, (t, v) in enumerate(zip(times, vals))],
    })
    c = ws.capability(level="equipment", period="day").iloc[0]
    assert c["n"] == 6 and c["mean"] == pytest.approx(10.07, rel=1e-12)
    assert c["sigma"] == pytest.approx(0.0576194, rel=1e-6) and c["s"] == pytest.approx(0.02, rel=1e-9)
    assert c["cp"] == pytest.approx(0.8677627, rel=1e-6)
    assert c["cpk"] == pytest.approx(0.7520610, rel=1e-6)
    assert c["cm"] == pytest.approx(2.5, rel=1e-9)
    assert c["cmk"] == pytest.approx(2.1666667, rel=1e-6)


def test_capability_without_limits_is_null_with_reason(make_ws):
    ws = make_ws({
        "equipment": [{"equipment_id": "M1"}],
        "quality": [{"equipment_id": "M1", "ts": f"2024-01-01T08:0{i}:00Z", "unit_id": f"u{i}", "result": "pass",
                     "characteristic": "d", "value": 1 + i / 10} for i in range(3)],
    })
    c = ws.capability(period="all").iloc[0]
    assert np.isnan(c["cp"]) and "limits" in c["null_reason"]


def test_capability_on_a_store_with_other_sites(tmp_path):
    # measurements (text keys from the store) merged with equipment buckets of several sites
    import zhizao
    from zhizao.simulate import simulate_plant, write_plant

    paths = write_plant(simulate_plant(machines=2, days=2, seed=1), tmp_path / "p")
    with zhizao.connect(tmp_path / "c.duckdb") as ws:
        for t in ("equipment", "products", "calendar", "states", "production", "quality"):
            ws.ingest(t, paths[t])
        c = ws.capability(level="equipment", period="all")
        assert set(c["equipment_id"]) == {"M001", "M002"} and c["cp"].notna().all()
