"""Simulated plant data with known ISO 22400 ground truth.

:func:`simulate_plant` generates the canonical tables (equipment, states, production, products, calendar,
energy, labour, quality) of a simulated plant together with ``truth``: the ISO 22400-2 elements per machine
and local day computed from the simulator's own events.  :func:`write_plant` writes them as CSV files with a
README that marks them as simulated.
"""

from zhizao.simulate.plant import STATE_CATEGORY, TRUTH_COLUMNS, simulate_plant, write_plant

__all__ = ["STATE_CATEGORY", "TRUTH_COLUMNS", "simulate_plant", "write_plant"]
from zhizao.simulate.programme import TRUTH_PROJECT_COLUMNS, simulate_programme, write_programme  # noqa: F401
