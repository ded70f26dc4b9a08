"""Shared helpers: build a store from small canonical tables written as CSV."""

from __future__ import annotations

import pytest

from canonical import build


@pytest.fixture
def make_ws(tmp_path):
    opened = []

    def _make(tables, **kw):
        ws = build(tmp_path, tables, db=f"t{len(opened)}.duckdb", **kw)
        opened.append(ws)
        return ws

    yield _make
    for ws in opened:
        ws.close()


@pytest.fixture(scope="module")
def small_plant_store(tmp_path_factory):
    """A store of a simulated plant (2 machines, 3 days; equipment, products, calendar, states, production),
    one per test module, for commands run against a store with data."""
    import zhizao
    from zhizao.simulate import simulate_plant, write_plant

    d = tmp_path_factory.mktemp("plant")
    paths = write_plant(simulate_plant(machines=2, days=3, seed=1), d / "plant")
    db = d / "plant.duckdb"
    with zhizao.connect(db) as ws:
        for t in ("equipment", "products", "calendar", "states", "production"):
            ws.ingest(t, paths[t])
    return db
