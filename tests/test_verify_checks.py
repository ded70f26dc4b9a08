"""The checks that flag or refuse instead of answering wrong (issue 11), each on a hand-made store that
reproduces the failure it guards against, with the figure the data imply computed here by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import zhizao
from canonical import write_tables
from zhizao.errors import DataSufficiencyError
from zhizao.verify.checks import Check, result_checks, verdict
from zhizao.verify.result import VerificationResult

ORDER = ("equipment", "products", "states", "production", "energy", "variables", "costs", "adjustments")


def build(tmp_path, tables):
    paths = write_tables(tmp_path, tables)
    ws = zhizao.connect(tmp_path / "c.duckdb")
    for t in ORDER:
        if t in paths:
            r = ws.ingest(t, paths[t])[0]
            assert r.quarantined == 0, ws.quarantine().to_dict("records")
    return ws



def energy_store(tmp_path, pq, kwh, days, extra=None):
    tables = {
        "equipment": [{"equipment_id": "M1", "work_center": "L1", "site": "S1"}],
        "production": [{"equipment_id": "M1", "end": (d + pd.Timedelta(hours=12)).isoformat(), "produced": q,
                        "order_id": str(i)} for i, (d, q) in enumerate(zip(days, pq))],
        "energy": [{"meter_id": "E", "equipment_id": "M1", "start": d.isoformat(),
                    "end": (d + pd.Timedelta(days=1)).isoformat(), "carrier": "electricity", "quantity": k,
                    "unit": "kWh"} for d, k in zip(days, kwh)],
        **(extra or {}),
    }
    return build(tmp_path, tables)


# -- result ranges: refused -----------------------------------------------------------------------------------
def test_result_range_checks_and_verdicts():
    ok = result_checks(0.2, 0.1, 0.3, 100.0, "down")
    assert all(c.passed for c in ok) and verdict(ok) == "verified"
    assert verdict(result_checks(0.2, 0.1, 0.3, -5.0, "down")) == "refused"  # non-positive adjusted baseline
    assert verdict(result_checks(1.4, 1.2, 1.6, 100.0, "down")) == "refused"  # a reduction above 100 %
    assert verdict(result_checks(-1.3, -1.5, -1.1, 100.0, "down")) == "refused"  # below -100 %
    assert verdict(result_checks(1.4, 1.2, 1.6, None, "up")) == "verified"  # efficiency may rise by 140 %
    assert verdict(result_checks(0.2, 0.3, 0.1, 100.0, "down")) == "refused"  # an inverted interval
    assert verdict(result_checks(0.2, None, None, 100.0, "down")) == "refused"  # no interval
    r = VerificationResult("unit_energy", "d", "S", ("a", "b"), ("c", "d"), 1.0, 1.0, -5.0, 0.2, 0.2, 0.1, 0.3,
                           0.9, "m", checks=result_checks(0.2, 0.1, 0.3, -5.0, "down")).judge()
    assert r.verdict == "refused" and r.improvement is None and r.ci_low is None
    assert r.flags == ["verify.check.adjusted_baseline_positive"]
    # the verdict and the checks survive storage
    back = VerificationResult.from_dict(r.to_dict())
    assert back.verdict == "refused" and back.flags == r.flags and back.checks[0].message == r.checks[0].message


def test_a_negative_adjusted_baseline_is_refused(tmp_path):
    # energy falls with output in the baseline (300 - 0.5 q kWh for q = 100..500); the reporting output of
    # 900 a day extrapolates the line below zero: no improvement can be stated
    rng = np.random.default_rng(3)
    days = pd.date_range("2024-01-01", periods=120, freq="D", tz="UTC")
    pq = np.r_[rng.integers(100, 500, 60), np.full(60, 900)].astype(float)
    kwh = np.r_[300 - 0.5 * pq[:60] + rng.normal(0, 2, 60), np.full(60, 40.0)]
    ws = energy_store(tmp_path, pq, kwh, days)
    r = ws.verify("unit_energy", "L1", ("2024-01-01", "2024-03-01"), ("2024-03-01", "2024-04-30"))
    assert r.verdict == "refused" and r.improvement is None
    assert "verify.check.adjusted_baseline_positive" in r.flags
    assert r.adjusted_baseline < 0
    assert "verify.check.extrapolation" in r.flags
    ws.close()



def test_no_output_on_the_metered_days_is_no_data_not_a_crash(tmp_path):
    # in the reporting window every producing day's meter sent nothing (a meter outage on odd days) and the
    # days with energy produced nothing: energy per unit is undefined there; it raised ZeroDivisionError
    rng = np.random.default_rng(3)
    days = pd.date_range("2024-01-01", periods=120, freq="D", tz="UTC")
    pq_b = rng.integers(100, 500, 60).astype(float)
    prod, en = [], []
    for i, d in enumerate(days):
        q = pq_b[i] if i < 60 else (300.0 if i % 2 else 0.0)
        prod.append({"equipment_id": "M1", "end": (d + pd.Timedelta(hours=12)).isoformat(), "produced": q,
                     "order_id": str(i)})
        if i < 60 or not i % 2:
            en.append({"meter_id": "E", "equipment_id": "M1", "start": d.isoformat(),
                       "end": (d + pd.Timedelta(days=1)).isoformat(), "carrier": "electricity",
                       "quantity": 50 + 0.5 * q + rng.normal(0, 2) if i < 60 else 40.0, "unit": "kWh"})
    ws = build(tmp_path, {"equipment": [{"equipment_id": "M1", "work_center": "L1", "site": "S1"}],
                          "production": prod, "energy": en})
    with pytest.raises(DataSufficiencyError) as e:
        ws.verify("unit_energy", "L1", ("2024-01-01", "2024-03-01"), ("2024-03-01", "2024-04-30"))
    assert e.value.message.code == "verify.error.no_data"
    assert str(e.value) == "no produced units data for L1 in the reporting window"
    ws.close()

# -- drivers: extrapolation, a coefficient on one day -----------------------------------------------------------
def _temperature_store(tmp_path, temp, kwh, days):
    return energy_store(tmp_path, np.full(days.size, 500.0), kwh, days, extra={
        "variables": [{"scope": "S1", "start": d.isoformat(), "end": (d + pd.Timedelta(days=1)).isoformat(),
                       "name": "temperature_c", "value": t} for d, t in zip(days, temp)]})


def test_a_heating_term_fitted_on_one_cool_day_is_not_used_and_winter_is_an_extrapolation(tmp_path):
    # a mild baseline with one cool day (5 deg C) on which a heater ran; the reporting period is winter. The
    # heating term rests on that one day (its p-value is tiny, its coefficient on ~4 effective points): it
    # is not accepted, and the winter reporting period is flagged as outside the baseline's temperatures.
    rng = np.random.default_rng(8)
    days = pd.date_range("2024-04-01", periods=150, freq="D", tz="UTC")
    temp = np.r_[rng.uniform(18, 24, 90), rng.uniform(-5, 5, 60)]
    temp[40] = 5.0
    kwh = 200 + rng.normal(0, 3, 150)
    kwh[40] += 150
    kwh[90:] += 12 * np.clip(12 - temp[90:], 0, None)  # the heating that runs in winter
    ws = _temperature_store(tmp_path, temp, kwh, days)
    r = ws.verify("energy", "L1", ("2024-04-01", "2024-06-30"), ("2024-06-30", "2024-08-29"))
    assert "hdd" not in r.fit["terms"]
    assert "verify.check.extrapolation" in r.flags and r.verdict == "indicative"
    drivers = {dict(c.message.params)["driver"] for c in r.checks if c.code == "verify.check.extrapolation"
               and not c.passed}
    assert {"hdd", "temperature_c"} & drivers
    ws.close()


def test_a_near_constant_driver_is_checked_for_extrapolation(tmp_path):
    # heating degree days are 0 on all but two baseline days (the old check skipped columns with at most two
    # distinct values); the reporting period is cold: flagged
    rng = np.random.default_rng(9)
    days = pd.date_range("2024-04-01", periods=150, freq="D", tz="UTC")
    temp = np.r_[np.full(90, 25.0), rng.uniform(-5, 5, 60)]
    temp[[30, 60]] = (14.0, 13.0)
    kwh = 200 + rng.normal(0, 3, 150) + 10 * np.clip(15 - temp, 0, None)
    ws = _temperature_store(tmp_path, temp, kwh, days)
    r = ws.verify("energy", "L1", ("2024-04-01", "2024-06-30"), ("2024-06-30", "2024-08-29"))
    assert "verify.check.extrapolation" in r.flags
    ws.close()


# -- data gaps ----------------------------------------------------------------------------------------------------
def test_a_meter_outage_is_left_out_and_flagged_not_read_as_zero(tmp_path):
    # a machine with production every day; its meter sends nothing for 10 reporting days. Read as zeros the
    # reporting energy would fall by a third; left out, the result is the true 20 % with the outage flagged
    rng = np.random.default_rng(4)
    days = pd.date_range("2024-01-01", periods=120, freq="D", tz="UTC")
    pq = rng.integers(400, 800, 120).astype(float)
    kwh = (100 + 0.5 * pq) * np.where(np.arange(120) >= 60, 0.8, 1.0) + rng.normal(0, 2, 120)
    hours = pq / 100.0
    keep = ~((np.arange(120) >= 80) & (np.arange(120) < 90))
    states = []
    for i, d in enumerate(days):
        s = d + pd.Timedelta(hours=6)
        states.append({"equipment_id": "M1", "start": s.isoformat(),
                       "end": (s + pd.Timedelta(hours=hours[i])).isoformat(), "state": "production"})
        states.append({"equipment_id": "M1", "start": (s + pd.Timedelta(hours=hours[i])).isoformat(),
                       "end": (d + pd.Timedelta(days=1)).isoformat(), "state": "no_order"})
    tables = {
        "equipment": [{"equipment_id": "M1", "work_center": "L1", "site": "S1"}],
        "states": states,
        "production": [{"equipment_id": "M1", "end": (d + pd.Timedelta(hours=12)).isoformat(), "produced": q,
                        "order_id": str(i)} for i, (d, q) in enumerate(zip(days, pq))],
        "energy": [{"meter_id": "E", "equipment_id": "M1", "start": d.isoformat(),
                    "end": (d + pd.Timedelta(days=1)).isoformat(), "carrier": "electricity", "quantity": k,
                    "unit": "kWh"} for d, k, ok in zip(days, kwh, keep) if ok],
    }
    ws = build(tmp_path, tables)
    r = ws.verify("unit_energy", "L1", ("2024-01-01", "2024-03-01"), ("2024-03-01", "2024-04-30"))
    assert "verify.check.outage" in r.flags and r.verdict == "indicative"
    out = next(c for c in r.checks if c.code == "verify.check.outage")
    assert str(out.message.args["kind"]) == "meter" and out.message.args["buckets"] == 10
    assert "电表" in out.message.text("zh")
    assert r.improvement == pytest.approx(0.2, abs=0.02) and r.ci_low < 0.2 < r.ci_high
    assert r.coverage["reporting"] == pytest.approx(50 / 60)
    assert r.coverage["baseline"] == 1.0
    ws.close()


# -- operating cost: booking periods and the fallback -------------------------------------------------------------
def _cost_store(tmp_path, months_n=12, start="2023-01-01"):
    rng = np.random.default_rng(2)
    months = pd.date_range(start, periods=months_n, freq="MS", tz="UTC")
    days = pd.date_range(months[0], months[-1] + pd.offsets.MonthBegin(1), freq="D", inclusive="left")
    gq = rng.integers(300, 600, days.size).astype(float)
    month_of = np.searchsorted(months.asi8, days.asi8, side="right") - 1
    gq_m = np.bincount(month_of, gq, months.size)
    after = months >= months[months_n // 2]
    real = (10000 + 2.0 * gq_m) * np.where(after, 0.75, 1.0) * (1 + rng.normal(0, 0.003, months.size))
    ends = [m + pd.offsets.MonthBegin(1) for m in months]
    ws = build(tmp_path, {
        "equipment": [{"equipment_id": "M1", "work_center": "L1", "site": "S1"}],
        "production": [{"equipment_id": "M1", "end": (d + pd.Timedelta(hours=12)).isoformat(), "produced": q,
                        "order_id": str(i)} for i, (d, q) in enumerate(zip(days, gq))],
        "variables": [{"scope": "S1", "start": m.isoformat(), "end": e.isoformat(), "name": "price_index",
                       "value": 1.0} for m, e in zip(months, ends)],
        "costs": [{"scope": "L1", "start": m.isoformat(), "end": e.isoformat(), "category": "all", "amount": c,
                   "currency": "CNY"} for m, e, c in zip(months, ends, real)],
    })
    return ws, days, gq, months, real


def test_a_cost_window_that_cuts_a_month_is_prorated_or_refused(tmp_path):
    # the reporting window runs from the 1st to mid-month: a whole month's cost over half a month's output
    # made the cost per unit look 54 % worse; prorated by time it is about the true 25 % saving, and the
    # result says the month was prorated
    ws, days, gq, _months, real = _cost_store(tmp_path)
    rep = ("2023-07-01", "2023-12-16")
    r = ws.verify("operating_cost", "L1", ("2023-01-01", "2023-07-01"), rep)
    assert "verify.check.booking_periods" in r.flags and r.verdict == "indicative"
    assert r.coverage["prorated_months"] == 1
    assert r.improvement == pytest.approx(0.25, abs=0.03)
    # the reporting value, by hand: December prorated to its first 15 days
    sel = (days >= pd.Timestamp(rep[0], tz="UTC")) & (days < pd.Timestamp(rep[1], tz="UTC"))
    cost = real[6:11].sum() + real[11] * 15 / 31
    assert r.reporting == pytest.approx(cost / gq[sel].sum(), rel=1e-9)
    with pytest.raises(DataSufficiencyError, match="booking periods"):
        ws.verify("operating_cost", "L1", ("2023-01-01", "2023-07-01"), rep, partial_periods="refuse")
    ws.close()


def test_cost_with_few_baseline_months_falls_back_and_labels_the_interval_as_the_fallbacks(tmp_path):
    ws, days, gq, _months, real = _cost_store(tmp_path, months_n=6)
    r = ws.verify("operating_cost", "L1", ("2023-01-01", "2023-04-01"), ("2023-04-01", "2023-07-01"))
    assert "verify.check.fallback_method" in r.flags and r.verdict == "indicative"
    assert r.method.startswith("ratio of totals") and "fallback" in r.interval_method
    assert r.estimand.code == "verify.estimand.operating_cost_ratio"
    base = real[:3].sum() / gq[days < pd.Timestamp("2023-04-01", tz="UTC")].sum()
    assert r.baseline == pytest.approx(base, rel=1e-9)
    assert r.ci_low < r.improvement < r.ci_high
    ws.close()


def test_every_result_states_its_estimand_and_interval_method(tmp_path):
    ws, *_ = _cost_store(tmp_path)
    r = ws.verify("operating_cost", "L1", ("2023-01-01", "2023-07-01"), ("2023-07-01", "2024-01-01"))
    assert r.estimand.code == "verify.estimand.operating_cost" and "adjusted baseline" in str(r.estimand)
    assert r.interval_method and r.estimand.text("zh") != str(r.estimand)
    assert isinstance(r.checks[0], Check) and all(c.message.text("zh") for c in r.checks)
    ws.close()


def test_panel_status_of_gaps_zeros_and_the_engines_outage_elements():
    # two machines, three days. M1: counts missing on day 1 while it produced (a counter outage), energy 0 on
    # day 2 while it produced (a meter read as zero); M2: the engine reports 2 h of production without energy
    # records on day 0 (energy_missing), the day total being present from another meter
    from zhizao.verify.panel import build_panel

    day = 86_400_000
    eq = {"equipment_id": np.array(["M1"] * 3 + ["M2"] * 3, dtype=object), "t": np.tile(np.arange(3) * day, 2),
          "apt": np.full(6, 3600.0 * 8), "pot": np.full(6, 3600.0 * 16),
          "pq": np.array([100.0, np.nan, 120.0, 90.0, 95.0, 99.0]),
          "energy_kgce": np.array([10.0, 11.0, 0.0, 9.0, 9.5, 9.9]),
          "energy_missing": np.array([0.0, 0.0, 0.0, 7200.0, 0.0, 0.0])}
    rec = {k: np.empty(0, dtype=object if k in ("equipment_id", "product_id") else float)
           for k in ("equipment_id", "product_id", "n", "good", "c", "pri")}
    rec["s"] = rec["t"] = np.empty(0, np.int64)
    pn = build_panel(eq, np.arange(6), rec, np.empty(0, np.int64), np.arange(4) * day)
    assert pn.equipment.tolist() == ["M1", "M2"]
    assert pn.status["counter_outage"].tolist() == [[False, True, False], [False, False, False]]
    assert pn.status["meter_outage"].tolist() == [[False, False, True], [True, False, False]]
    assert pn.bad().sum() == 3
