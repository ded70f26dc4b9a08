"""Operating cost, unit energy and development cycle on hand-made data with a known effect."""

import numpy as np
import pandas as pd
import pytest

import zhizao
from canonical import write_tables

ORDER = ("equipment", "enterprises", "products", "production", "energy", "variables", "costs", "projects",
         "development_cycles")


def build(tmp_path, tables):
    paths = write_tables(tmp_path, tables)
    ws = zhizao.connect(tmp_path / "v.duckdb")
    for t in ORDER:
        if t in paths:
            r = ws.ingest(t, paths[t])[0]
            assert r.quarantined == 0, ws.quarantine().to_dict("records")
    return ws


def test_unit_energy_with_volume_as_relevant_variable(tmp_path):
    rng = np.random.default_rng(5)
    days = pd.date_range("2024-01-01", periods=240, freq="D", tz="UTC")
    pq = rng.integers(200, 1000, days.size).astype(float)
    after = days >= pd.Timestamp("2024-05-01", tz="UTC")
    kwh = (100 + 0.5 * pq) * np.where(after, 0.8, 1.0) + rng.normal(0, 3, days.size)
    ws = build(tmp_path, {
        "equipment": [{"equipment_id": "M1", "work_center": "L1", "site": "S1"}],
        "production": [{"equipment_id": "M1", "end": (d + pd.Timedelta(hours=12)).isoformat(), "produced": q,
                        "order_id": str(i)} for i, (d, q) in enumerate(zip(days, pq))],
        "energy": [{"meter_id": "E", "equipment_id": "M1", "start": d.isoformat(),
                    "end": (d + pd.Timedelta(days=1)).isoformat(), "carrier": "electricity", "quantity": k,
                    "unit": "kWh"} for d, k in zip(days, kwh)],
    })
    r = ws.verify("unit_energy", "L1", ("2024-01-01", "2024-05-01"), ("2024-05-01", "2024-08-28"))
    # no states: no production time to model energy on, so the output itself is the driver
    assert r.definition == "kgce_per_unit" and "volume" in r.fit["terms"]
    assert r.improvement == pytest.approx(0.2, abs=0.01) and r.ci_low < 0.2 < r.ci_high
    b, a = ~after, after
    assert r.baseline == pytest.approx(0.1229 * kwh[b].sum() / pq[b].sum())
    assert r.reporting == pytest.approx(0.1229 * kwh[a].sum() / pq[a].sum())
    ws.close()


def test_operating_cost_is_deflated_and_regressed_on_output(tmp_path):
    rng = np.random.default_rng(2)
    months = pd.date_range("2023-01-01", periods=12, freq="MS", tz="UTC")
    gq = rng.integers(5000, 20000, months.size).astype(float)
    index = 1.0 + 0.02 * np.arange(months.size)  # prices rise 2 % a month
    real = (10000 + 2.0 * gq) * np.where(months >= pd.Timestamp("2023-07-01", tz="UTC"), 0.75, 1.0)
    real = real * (1 + rng.normal(0, 0.003, months.size))
    nominal = real * index
    ends = [m + pd.offsets.MonthBegin(1) for m in months]
    ws = build(tmp_path, {
        "equipment": [{"equipment_id": "M1", "work_center": "L1", "site": "S1"}],
        "production": [{"equipment_id": "M1", "end": (m + pd.Timedelta(days=3)).isoformat(), "produced": q,
                        "order_id": str(i)} for i, (m, q) in enumerate(zip(months, gq))],
        "variables": [{"scope": "S1", "start": m.isoformat(), "end": e.isoformat(), "name": "price_index",
                       "value": v} for m, e, v in zip(months, ends, index)],
        "costs": [{"scope": "L1", "start": m.isoformat(), "end": e.isoformat(), "category": "all", "amount": c,
                   "currency": "CNY"} for m, e, c in zip(months, ends, nominal)],
    })
    r = ws.verify("operating_cost", "L1", ("2023-01-01", "2023-07-01"), ("2023-07-01", "2024-01-01"))
    assert r.improvement == pytest.approx(0.25, abs=0.01)
    assert r.ci_low < 0.25 < r.ci_high
    first = months < pd.Timestamp("2023-07-01", tz="UTC")
    assert r.baseline == pytest.approx(real[first].sum() / gq[first].sum(), rel=1e-9)
    # without deflation the nominal cost per unit would hide part of the saving
    assert r.simple_change == pytest.approx((real[~first].sum() / gq[~first].sum()) / r.baseline - 1, rel=1e-9)
    ws.close()


def test_development_cycle(tmp_path):
    ws = build(tmp_path, {
        "equipment": [{"equipment_id": "M1", "site": "S1", "enterprise": "E1"}],
        "enterprises": [{"enterprise_id": "E1"}],
        "development_cycles": [
            {"enterprise_id": "E1", "product_id": "A", "design_start": "2023-01-01T00:00:00Z", "release": "2023-04-11T00:00:00Z"},
            {"enterprise_id": "E1", "product_id": "B", "design_start": "2023-02-01T00:00:00Z", "release": "2023-06-01T00:00:00Z"},
            {"enterprise_id": "E1", "product_id": "C", "design_start": "2024-01-01T00:00:00Z", "release": "2024-03-21T00:00:00Z"},
            {"enterprise_id": "E1", "product_id": "D", "design_start": "2024-02-01T00:00:00Z", "release": "2024-05-01T00:00:00Z"},
            # designed before the reporting window, released in it: developed the old way, not counted
            {"enterprise_id": "E1", "product_id": "E", "design_start": "2023-06-01T00:00:00Z", "release": "2024-02-01T00:00:00Z"},
            # designed in the reporting window, released after it: counted
            {"enterprise_id": "E1", "product_id": "F", "design_start": "2024-12-01T00:00:00Z", "release": "2025-02-25T00:00:00Z"},
        ],
    })
    r = ws.verify("development_cycle", "S1", ("2023-01-01", "2024-01-01"), ("2024-01-01", "2025-01-01"))
    before = (100 + 120) / 2  # A: 100 days, B: 120 days
    after = (80 + 90 + 86) / 3  # C: 80 days, D: 90 days, F: 86 days
    assert (r.baseline, r.reporting) == (before, after)
    assert r.improvement == pytest.approx(1 - after / before)
    # two and three products: a small-sample interval (t on the log of the ratio, Welch degrees of freedom),
    # wider than for many products, and the result is only indicative
    assert r.verdict == "indicative" and r.flags == ["verify.check.sample_size", "verify.check.sample_size"]
    assert r.ci_low < r.improvement < r.ci_high and r.ci_high - r.ci_low > 0.4
    ws.close()


def test_defect_rate_is_standardised_to_the_baseline_product_mix(tmp_path):
    # product A: 1 % defects, B: 5 %, in both periods (no real change); the mix moves from 80/20 A/B to 20/80
    rng = np.random.default_rng(4)
    days = pd.date_range("2024-01-01", periods=120, freq="D", tz="UTC")
    rows = []
    for i, d in enumerate(days):
        share_a = 0.8 if i < 60 else 0.2
        for prod, share, p in (("A", share_a, 0.01), ("B", 1 - share_a, 0.05)):
            n = int(1000 * share)
            rows.append({"equipment_id": "M1", "end": (d + pd.Timedelta(hours=12)).isoformat(), "order_id": f"{i}{prod}",
                         "product_id": prod, "produced": n, "scrap": int(rng.binomial(n, p))})
    ws = build(tmp_path, {"equipment": [{"equipment_id": "M1", "work_center": "L1", "site": "S1"}],
                          "production": rows})
    r = ws.verify("defect_rate", "L1", ("2024-01-01", "2024-03-01"), ("2024-03-01", "2024-04-30"))
    assert "direct standardisation" in r.method
    assert r.simple_change > 1.0  # the crude rate more than doubles with the mix
    assert abs(r.improvement) < 0.15 and r.ci_low < 0 < r.ci_high  # at the baseline mix: no change
    b = pd.DataFrame(rows[:120])
    assert r.baseline == pytest.approx(b["scrap"].sum() / b["produced"].sum())
    ws.close()
