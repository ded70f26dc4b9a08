"""benchmarks/verify_coverage.py: the runs it plans, with and without --scenarios (its seeds must not move:
a partial run is scored on the same programmes as the full one)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _plan():
    sys.path.insert(0, str(BENCH))
    try:
        import verify_coverage
    finally:
        sys.path.remove(str(BENCH))
    return verify_coverage.plan_runs


def test_full_plan_keeps_its_order_and_seeds():
    runs = _plan()([101, 102, 103], 200, 100, 300)
    assert runs == [("base", 101, 200), ("mix_change", 201, 100), ("level_shift", 202, 100),
                    ("meter_outage", 203, 100), ("counter_outage", 204, 100),
                    ("seasonal_short_baseline", 205, 100), ("autocorrelated", 206, 100),
                    ("short_reporting", 207, 100), ("no_effect", 208, 300), ("base", 102, 200), ("base", 103, 200)]


def test_chosen_scenarios_keep_the_seeds_of_the_full_plan():
    plan = _plan()
    assert plan([101, 102], 200, 100, 300, {"autocorrelated"}) == [("autocorrelated", 206, 100)]
    assert plan([101, 102], 200, 100, 300, {"base", "no_effect"}) == [
        ("base", 101, 200), ("no_effect", 208, 300), ("base", 102, 200)]
