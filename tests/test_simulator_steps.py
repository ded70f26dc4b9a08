"""The steps of zhizao.simulate.plant.simulate_plant, each on its own (issue 10: simulators as small functions)."""

import datetime as dt

import numpy as np

from zhizao.simulate import plant


def _cal(days=14, holidays=None, tz="Europe/Berlin"):
    return plant._calendar(np.random.default_rng(0), dt.date(2025, 3, 24), days, tz, holidays)


def test_calendar_pot_is_the_shifts_minus_the_holidays_and_days_follow_dst():
    cal = _cal(holidays=["2025-03-26"])
    assert np.diff(cal.day_edges).tolist().count(23 * 3600) == 1  # 2025-03-30 in Europe/Berlin
    shift_time = (cal.shift_e - cal.shift_s).sum()
    hol = (cal.shift_s >= cal.hol_s[0]) & (cal.shift_e <= cal.hol_e[0])
    assert (cal.pot_e - cal.pot_s).sum() == shift_time - (cal.shift_e - cal.shift_s)[hol].sum()
    assert np.all(cal.pot_s[1:] > cal.pot_e[:-1])  # disjoint, separated
    assert cal.hol_idx == [2] and _cal(holidays=[]).hol_idx == []


def test_maintenance_is_one_two_hour_window_per_machine_and_week_inside_a_shift():
    cal = _cal(days=14, holidays=[])
    pm = plant._maintenance(np.random.default_rng(1), cal, 3, "Europe/Berlin")
    assert len(pm.pm_s) == 3 * 2 and set((pm.pm_e - pm.pm_s).tolist()) == {plant.MAINTENANCE_S}
    for s, e in zip(pm.pm_s, pm.pm_e):
        assert np.any((cal.pot_s <= s) & (e <= cal.pot_e))


def test_production_energy_and_labour_follow_the_timelines():
    rng = np.random.default_rng(5)
    cal = plant._calendar(rng, dt.date(2025, 3, 3), 7, "UTC", [])
    par = plant._parameters(rng, 4)
    pm = plant._maintenance(rng, cal, 4, "UTC")
    tl = plant._timelines(rng, cal, par, pm, 4)
    prod = plant._production(rng, cal, tl, "UTC")
    # every production record lies inside a RUN state of its machine, and good + scrap + rework = produced
    assert np.all(prod.p_e > prod.p_s)
    assert np.array_equal(prod.good + prod.scrap + prod.rework, prod.produced)
    run_time = sum(((np.r_[tl.st[1:], cal.t1] - tl.st) * (tl.sc == plant.RUN))[tl.sm == m].sum() for m in range(4))
    assert (prod.p_e - prod.p_s).sum() == run_time
    en = plant._energy(rng, cal, par, tl, 4, "UTC")
    assert en.e_qty.size == 4 * 7 * 96 and np.all(en.e_qty > 0)
    lab = plant._labour(rng, cal, par, prod)
    assert np.all(lab.work < lab.attendance) and lab.earned.sum() > 0
