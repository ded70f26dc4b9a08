"""Verification under the simulator's scenarios (issue 11): each scenario either keeps the 90 % intervals
calibrated (they cover the known effects, within a tolerance for a small programme) or flags the results it
cannot trust with the specific check.

The programmes are small (12 projects, 4 + 4 months, fixed seeds), so the coverage assertions are loose:
pooled over indicators, at least 75 % of the intervals must contain the known effect (a binomial(48, 0.9)
count falls below that with probability about 0.1 %). benchmarks/verify_coverage.py measures the same on
1,000+ projects.
"""

from __future__ import annotations

import pandas as pd
import pytest

import zhizao
from zhizao.demo import PROGRAMME_INDICATOR_TRUTH, PROGRAMME_ORDER
from zhizao.simulate import write_programme
from zhizao.simulate.programme import simulate_programme
from zhizao.verify import verify_all_projects
from zhizao.verify.checks import fmt

N = 12
SEEDS = {"base": 31, "mix_change": 32, "level_shift": 33, "meter_outage": 34, "counter_outage": 35,
         "seasonal_short_baseline": 36, "autocorrelated": 37, "short_reporting": 38, "no_effect": 39}


@pytest.fixture(scope="module")
def programmes(tmp_path_factory):
    cache = {}

    def get(scenario):
        if scenario not in cache:
            d = tmp_path_factory.mktemp(scenario)
            tables = simulate_programme(n_projects=N, n_enterprises=N // 2, seed=SEEDS[scenario], months_before=4,
                                        months_after=4, scenario=scenario)
            paths = write_programme(tables, d / "csv")
            ws = zhizao.connect(d / "p.duckdb")
            for t in PROGRAMME_ORDER:
                ws.ingest(t, paths[t])
            res = verify_all_projects(ws, store=False)
            cache[scenario] = (ws, tables["truth_projects"].set_index("project_id"), res)
        return cache[scenario]

    yield get
    for ws, _t, _r in cache.values():
        ws.close()


def scored(results, truth) -> pd.DataFrame:
    rows = []
    for r in results:
        known = float(truth.loc[r.project_id, PROGRAMME_INDICATOR_TRUTH[r.indicator]])
        rows.append({"project_id": r.project_id, "indicator": r.indicator, "improvement": r.improvement,
                     "lo": r.ci_low, "hi": r.ci_high, "known": known, "verdict": r.verdict, "flags": r.flags,
                     "simple": r.simple_change,
                     "covered": r.ci_low is not None and r.ci_low <= known <= r.ci_high})
    return pd.DataFrame(rows)


def pooled_coverage(df, indicators) -> float:
    g = df[df["indicator"].isin(indicators)]
    return float(g["covered"].mean())


def flagged(df, indicator, code) -> pd.Series:
    g = df[df["indicator"] == indicator]
    return g["flags"].map(lambda f: f"verify.check.{code}" in f)


def test_base_intervals_cover_and_complete_data_show_full_coverage(programmes):
    _ws, truth, res = programmes("base")
    df = scored(res, truth)
    assert pooled_coverage(df, ["production_efficiency", "defect_rate", "unit_energy", "development_cycle"]) >= 0.75
    # complete data: every bucket where data were expected has data (Sundays without shifts are not missing)
    for r in res:
        if r.indicator in ("production_efficiency", "defect_rate", "unit_energy"):
            assert r.coverage["baseline"] == 1.0 and r.coverage["reporting"] == 1.0, (r.project_id, r.indicator)
            assert "verify.check.outage" not in r.flags and "verify.check.data_coverage" not in r.flags


def test_machine_and_product_mix_change_is_standardised_away(programmes):
    _ws, truth, res = programmes("mix_change")
    df = scored(res, truth)
    assert pooled_coverage(df, ["production_efficiency", "defect_rate", "unit_energy"]) >= 0.75
    eff = df[df["indicator"] == "production_efficiency"].set_index("project_id")
    known = truth.loc[eff.index, "true_efficiency_change"]
    # the standardised change is close to the known one; the plain ratio of totals is moved by the mix
    assert (eff["improvement"] - known).abs().median() < 0.01
    assert (eff["simple"] - known).abs().median() > 2 * (eff["improvement"] - known).abs().median()


def test_a_level_shift_in_the_baseline_is_flagged_and_a_recorded_adjustment_restores_coverage(programmes,
                                                                                              tmp_path):
    ws, truth, res = programmes("level_shift")
    df = scored(res, truth)
    shifted = flagged(df, "unit_energy", "level_shift")
    assert shifted.all()
    # the check dates the shift; the engineer confirms it is a new load unrelated to the project and records it
    ue = [r for r in res if r.indicator == "unit_energy"]
    rows = []
    for r in ue:
        date = r.fit["level_shift"]["date"]
        rows.append({"adjustment_id": f"A-{r.project_id}", "scope": r.scope, "project_id": r.project_id,
                     "indicator": "unit_energy", "start": date, "reason": "new compressor on the meter",
                     "recorded_by": "energy engineer"})
    path = tmp_path / "adjustments.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    ws.ingest("adjustments", path)
    again = verify_all_projects(ws, store=False, indicators=["unit_energy"])
    df2 = scored(again, truth)
    before = df[df["indicator"] == "unit_energy"]
    # without the adjustment the shift blurs the model (wide intervals around a biased estimate); with it the
    # intervals are narrow and cover the known effect
    assert df2["covered"].mean() >= 0.75
    assert (df2["hi"] - df2["lo"]).median() < 0.5 * (before["hi"] - before["lo"]).median()
    assert (df2["improvement"] - df2["known"]).abs().median() < (before["improvement"] - before["known"]).abs().median()
    assert flagged(df2, "unit_energy", "level_shift").mean() <= 0.25
    for r in again:
        assert r.adjustments and r.adjustments[0]["adjustment_id"] == f"A-{r.project_id}"
        assert r.adjustments[0]["kind"] == "estimated level shift"
        assert any(t.startswith("adjustment:") for t in r.fit["terms"])


@pytest.mark.parametrize("scenario,indicators", [
    ("meter_outage", ["unit_energy"]),
    ("counter_outage", ["production_efficiency", "defect_rate", "unit_energy"]),
])
def test_outages_are_left_out_and_flagged(programmes, scenario, indicators):
    _ws, truth, res = programmes(scenario)
    df = scored(res, truth)
    for ind in indicators:
        assert flagged(df, ind, "outage").all(), ind
        assert (df.loc[df["indicator"] == ind, "verdict"] == "indicative").all()
    # the outage days are left out, not read as zeros: the intervals still cover
    assert pooled_coverage(df, indicators) >= 0.75
    outage = [r for r in res if r.indicator == indicators[0]]
    assert all(min(r.coverage["baseline"], r.coverage["reporting"]) < 1.0 for r in outage)


def test_seasonality_with_a_short_baseline_is_flagged_where_it_misses(programmes):
    _ws, truth, res = programmes("seasonal_short_baseline")
    df = scored(res, truth)
    ue = df[df["indicator"] == "unit_energy"]
    missed = ue[~ue["covered"]]
    assert len(missed) >= 1
    assert (missed["verdict"] != "verified").mean() >= 0.9
    # three baseline months: too few for the cost model, its fallback says so
    assert flagged(df, "operating_cost", "fallback_method").all()


def test_autocorrelated_noise_keeps_coverage(programmes):
    _ws, truth, res = programmes("autocorrelated")
    df = scored(res, truth)
    assert pooled_coverage(df, ["production_efficiency", "defect_rate", "unit_energy"]) >= 0.75


def test_autocorrelated_monthly_costs_are_covered_and_the_test_is_a_note(programmes):
    # persistent monthly cost noise (AR(1), phi 0.8): an interval that took the months as independent covered 72 %
    # (benchmark); the interval plugs in the persistence the cost categories' residuals show (restricted ML)
    _ws, truth, res = programmes("autocorrelated")
    df = scored(res, truth)
    # covered within the module's tolerance, as a calibrated interval is (benchmark, 2,000 projects: 89.3 %)
    assert pooled_coverage(df, ["operating_cost"]) >= 0.75
    # the serial-correlation test is a note here, not a flag (the default interval under 16 baseline months rests on
    # the persistence it reads): as a check it passed where the months happened to show
    # little persistence, where the estimate reads low too, and its verified results covered 74.5 % (benchmark,
    # 2,000 projects; 87.9 % without the gate)
    assert not flagged(df, "operating_cost", "serial_correlation").any()

    def noted(results):
        return [r for r in results if r.indicator == "operating_cost"
                and any(m.code == "verify.note.serial_correlation" for m in r.notes)]

    assert len(noted(res)) >= 4
    for r in res:
        if r.indicator == "operating_cost" and "serial_correlation" in r.fit:
            sc = r.fit["serial_correlation"]
            assert 0.0 <= sc["p_value"] <= 1.0 and sc["n"] == r.coverage["baseline_months"] + r.coverage[
                "reporting_months"]
            # the four cost categories are booked apart: each one's series in each window is tested
            assert sc["series"] == 8
            assert sc["categories"] == ["energy", "labour", "maintenance", "material"]
            # a note where the test finds persistence, with the coefficient the interval used
            note = [m for m in r.notes if m.code == "verify.note.serial_correlation"]
            assert bool(note) == (sc["p_value"] < 0.10)
            if note:
                assert note[0].args["phi"] == fmt(r.fit["uncertainty"]["phi"], 2)
    # independent monthly noise: the test finds it about at its level (10 %)
    _wb, _tb, rb = programmes("base")
    assert len(noted(rb)) <= 3

    def persistence(results):
        return [r.fit["uncertainty"]["phi"] for r in results if r.indicator == "operating_cost"
                and "ar1_series" in r.fit.get("uncertainty", {})]

    ar, iid = persistence(res), persistence(rb)
    assert len(ar) == len(iid) == N
    assert sum(ar) / N > 0.4 and abs(sum(iid) / N) < 0.2


@pytest.mark.parametrize("uncertainty", ["ashrae14", "block_bootstrap"])
def test_the_serial_correlation_test_stays_a_check_where_the_interval_ignores_it(programmes, uncertainty):
    # the other conventions do not rest on the persistence the cost months show (ashrae14 shrinks its points by
    # the baseline's lag-1 autocorrelation, the block bootstrap resamples blocks of 3): a finding flags the result
    ws, _truth, res = programmes("autocorrelated")
    other = [r for r in verify_all_projects(ws, store=False, uncertainty=uncertainty)
             if r.indicator == "operating_cost" and "serial_correlation" in r.fit]
    assert len(other) == N
    for r in other:
        found = r.fit["serial_correlation"]["p_value"] < 0.10
        assert ("verify.check.serial_correlation" in r.flags) == found
        assert not any(m.code == "verify.note.serial_correlation" for m in r.notes)
    # the same test, the same series, as the default convention's
    default = {r.project_id: r.fit["serial_correlation"]["p_value"] for r in res if r.indicator == "operating_cost"}
    assert {r.project_id: r.fit["serial_correlation"]["p_value"] for r in other} == default
    assert sum(r.fit["serial_correlation"]["p_value"] < 0.10 for r in other) >= 4


def test_short_reporting_windows_keep_coverage_with_wider_intervals(programmes):
    _ws, truth, res = programmes("short_reporting")
    df = scored(res, truth)
    assert pooled_coverage(df, ["production_efficiency", "defect_rate", "unit_energy"]) >= 0.75
    _wb, tb, rb = programmes("base")
    base = scored(rb, tb)
    # operating cost on one reporting month: its noise is half the variance and its level unknown (the interval
    # takes it at the baseline's level, 94-95 % where it falls with the costs): never verified
    cost = [r for r in res if r.indicator == "operating_cost"]
    assert cost and all("verify.check.sample_size" in r.flags and r.verdict != "verified" for r in cost)
    assert not any("verify.check.sample_size" in r.flags for r in rb if r.indicator == "operating_cost")
    for ind in ("production_efficiency", "defect_rate"):
        w = (df.loc[df["indicator"] == ind, "hi"] - df.loc[df["indicator"] == ind, "lo"]).median()
        wb = (base.loc[base["indicator"] == ind, "hi"] - base.loc[base["indicator"] == ind, "lo"]).median()
        assert w > wb, ind


def test_projects_without_effect_rarely_look_improved(programmes):
    _ws, truth, res = programmes("no_effect")
    df = scored(res, truth)
    assert (df["known"].abs() < 1e-12).all()
    g = df[df["indicator"].isin(["production_efficiency", "defect_rate", "unit_energy", "development_cycle",
                                 "operating_cost"]) & df["lo"].notna()]
    # a 90 % interval is wholly above zero for about 5 % of such results
    assert (g["lo"] > 0).mean() <= 0.15


def test_unit_energy_intervals_carry_the_noise_of_the_reporting_run_hours(tmp_path):
    """The adjusted baseline of unit energy is predicted on run hours derived from each reporting day's
    counts, while the energy follows the day's production time: a day's speed moves its counts and not its
    energy. The simulator's known effect holds the day's speed as a condition common to both plants (the
    estimand the product states), so that noise is an error of the adjusted baseline and its interval must
    carry it. With noisy speeds and a one-month reporting window after a year's baseline it dominates the
    interval: leaving it out (as before) covered 17 of these 30 projects, with it 29."""
    from zhizao.simulate.programme import Scenario

    sc = Scenario("noisy_speed", speed_noise=0.20)
    tables = simulate_programme(n_projects=30, n_enterprises=15, seed=41, months_before=12, months_after=1,
                                scenario=sc)
    truth = tables["truth_projects"].set_index("project_id")
    paths = write_programme(tables, tmp_path / "csv")
    ws = zhizao.connect(tmp_path / "p.duckdb")
    for t in PROGRAMME_ORDER:
        ws.ingest(t, paths[t])
    res = verify_all_projects(ws, store=False, indicators=["unit_energy"])
    ws.close()
    df = scored(res, truth)
    assert len(df) == 30 and df["lo"].notna().all()
    assert pooled_coverage(df, ["unit_energy"]) >= 0.75
    shares = [r.fit["uncertainty"]["var_hours"] / r.fit["uncertainty"]["var_prediction"] for r in res]
    assert min(shares) > 1  # the reporting run hours' noise is the largest part here
