"""The sections of an entity's dashboard page (``zhizao.server.views``): each chart drawn from its own rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zhizao.server import views

FACTORS = ["oee", "availability", "effectiveness", "quality_ratio"]
ENERGY = ["energy_kwh", "comprehensive_energy_consumption", "energy_per_good_unit"]


class _View:
    """A view whose KPI stage answers one table (the sections' only input)."""

    def __init__(self, df):
        self.df = df

    def kpi(self, level, period, start, end, ids=None):
        return self.df


def _days(oee, energy) -> pd.DataFrame:
    """Days 1 to n of March 2024: the OEE factors where ``oee`` is true, energy where ``energy`` is."""
    n = len(oee)
    start = pd.date_range("2024-03-01", periods=n, freq="D", tz="Asia/Shanghai")
    df = pd.DataFrame({"period_start": [t.isoformat() for t in start],
                       "period_end": [(t + pd.Timedelta(days=1)).isoformat() for t in start]})
    for c in FACTORS:
        df[c] = np.where(oee, 0.8, np.nan)
    for c in ENERGY:
        df[c] = np.where(energy, 12.5, np.nan)
    return df


@pytest.mark.parametrize("oee,energy", [
    ([1, 1, 0, 1, 0], [1, 0, 1, 1, 0]),  # days of OEE without energy and of energy without OEE
    ([1, 0, 1, 0, 1], [0, 1, 0, 1, 0]),  # never both
    ([1, 1, 1, 1, 1], [0, 0, 0, 0, 1]),
])
def test_each_trend_chart_is_drawn_over_the_days_of_its_own_measure(monkeypatch, oee, energy):
    """The OEE trend was drawn over the days with *energy* data (its chart read a table the energy section had
    rebound by then): days without an energy record were gaps in the OEE line, days without OEE were drawn
    empty. Each chart now has exactly the days its measure has, as the page and the chart's own request draw
    them."""
    oee, energy = np.array(oee, bool), np.array(energy, bool)
    df = _days(oee, energy)
    drawn: dict[str, list] = {}

    def capture(kind):
        def chart(data, title, *a, **k):
            drawn.setdefault(kind, []).append((title, sorted(set(data["date"]))))
            return kind
        return chart
    monkeypatch.setattr(views.charts, "lines", capture("lines"))
    monkeypatch.setattr(views.charts, "bars", capture("bars"))
    monkeypatch.setattr(views.charts, "stack", lambda *parts: parts)
    days = np.array(df["period_start"].str[:10])
    for name in ("trend-oee", "trend-energy"):
        drawn.clear()
        pg = views.Page("en", want=name)
        views._trends(_View(df), pg, "equipment", "M1", None, None, "day")
        assert pg.found is not None, name
        pg.found()
        if name == "trend-oee":
            assert drawn == {"lines": [("OEE and its factors", list(days[oee]))]}
        else:
            assert drawn["bars"] == [("Energy use", list(days[energy]))]
            assert [d for _t, d in drawn["lines"]] == [list(days[energy])] * 2
    # a page (not a chart's request) draws nothing: it links each chart's own request
    drawn.clear()
    out = views._trends(_View(df), views.Page("en", chart_url=lambda n: f"/{n}.svg"), "equipment", "M1", None, None)
    assert not drawn and out["oee"] == "/trend-oee.svg" and out["energy"] == "/trend-energy.svg"
