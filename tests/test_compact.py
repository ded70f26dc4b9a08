"""``zhizao compact``: the record tables rewritten in equipment order give the same records and the same results
(elements, loss reasons, KPI tables), in one transaction."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

import zhizao
from zhizao.cli.main import app
from zhizao.kpi.elements import compute_elements
from zhizao.simulate import simulate_plant, write_plant
from zhizao.store import compact as store_compact

TINY = zhizao.Settings(memory_mb=1)


@pytest.fixture()
def live_store(tmp_path):
    """A store that took its states and counts day by day (as a listener or daily files leave it: in time order,
    every machine in every row group), with ties: two records of one machine at one instant."""
    t = simulate_plant(machines=4, days=3, seed=11)
    d = tmp_path / "plant"
    paths = write_plant({k: v for k, v in t.items() if k not in ("truth", "states", "production")}, d)
    ws = zhizao.connect(tmp_path / "s.duckdb")
    for name in ("equipment", "products", "calendar"):
        ws.ingest(name, paths[name])
    states = t["states"].copy()
    states = pd.concat([states, states.iloc[[5]].assign(state="jam", reason="tie")], ignore_index=True)
    for table, frame, at in (("states", states, "start"), ("production", t["production"], "end")):
        day = pd.to_datetime(frame[at], utc=True).dt.floor("D")
        for k, (_, part) in enumerate(frame.groupby(day)):
            f = tmp_path / f"{table}-{k}.csv"
            part.sort_values(at).to_csv(f, index=False)
            assert ws.ingest(table, f)[0].quarantined == 0
    yield ws
    ws.close()


def _results(ws):
    out = {}
    for period in ("day", "hour", "all"):
        r = compute_elements(ws.con, period, settings=TINY)
        out[period] = (r.elements, r.reasons)
    out["kpi"] = zhizao.Workspace.over(ws.con, TINY).kpi("site", "day")
    return out


def _rows(ws, table):
    return ws.con.execute(f"SELECT * FROM {table} ORDER BY ALL").df()


def test_compact_keeps_every_record_and_every_result(live_store):
    ws = live_store
    before = _results(ws)
    rows = {t: _rows(ws, t) for t in store_compact.TABLES}
    order = ws.con.execute("SELECT equipment_id FROM states").fetchall()
    assert order != sorted(order)  # the store is in time order
    done = ws.compact()
    assert [(c.table, c.records) for c in done] == [(t, len(rows[t])) for t in store_compact.TABLES]
    for t in store_compact.TABLES:
        pd.testing.assert_frame_equal(rows[t], _rows(ws, t))
    order = ws.con.execute("SELECT equipment_id, start FROM states").fetchall()
    assert order == sorted(order)
    after = _results(ws)
    for period in ("day", "hour", "all"):
        pd.testing.assert_frame_equal(before[period][0], after[period][0], check_exact=True)
        pd.testing.assert_frame_equal(before[period][1], after[period][1], check_exact=True)
    pd.testing.assert_frame_equal(before["kpi"], after["kpi"], check_exact=True)
    # and it can run again (nothing to change)
    assert [c.records for c in ws.compact()] == [len(rows[t]) for t in store_compact.TABLES]


def test_compact_that_fails_leaves_the_tables_as_they_were(live_store, monkeypatch):
    ws = live_store
    rows = {t: _rows(ws, t) for t in store_compact.TABLES}
    order = ws.con.execute("SELECT equipment_id FROM states").fetchall()
    real = ws.con.execute

    class Con:  # the store, failing on the second table's rewrite
        def execute(self, sql, *a):
            if sql.startswith('CREATE TABLE "_zz_compact_production"'):
                raise RuntimeError("disk full")
            return real(sql, *a)

    with pytest.raises(RuntimeError):
        store_compact.compact(Con())
    for t in store_compact.TABLES:
        pd.testing.assert_frame_equal(rows[t], _rows(ws, t))
    assert ws.con.execute("SELECT equipment_id FROM states").fetchall() == order
    assert not ws.con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '_zz_compact%'"
                              ).fetchall()


def test_zhizao_compact_says_what_it_did(tmp_path):
    t = simulate_plant(machines=2, days=1, seed=3)
    paths = write_plant({k: v for k, v in t.items() if k != "truth"}, tmp_path / "plant")
    db = tmp_path / "s.duckdb"
    with zhizao.connect(db) as ws:
        for name in ("equipment", "states", "production"):
            ws.ingest(name, paths[name])
        n = ws.con.execute("SELECT count(*) FROM states").fetchall()[0][0]
    r = CliRunner().invoke(app, ["compact", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert f"states: {n:,} records rewritten in equipment order" in r.output
    assert "production:" in r.output


def _store_of(tmp_path, files):
    """A store of one machine M0 from ``files``: (table, rows) loaded in turn, one file each."""
    ws = zhizao.connect(tmp_path / "one.duckdb")
    eq = pd.DataFrame([{"equipment_id": "M0", "work_center": "W", "area": "A", "site": "S", "enterprise": "E",
                        "timezone": "UTC", "epc": 60.0}])
    for k, (table, rows) in enumerate([("equipment", eq), *files]):
        f = tmp_path / f"{k}-{table}.csv"
        pd.DataFrame(rows).to_csv(f, index=False)
        assert ws.ingest(table, f)[0].quarantined == 0
    return ws


T0 = pd.Timestamp("2024-05-01T00:00:00Z")


def test_records_in_one_millisecond_keep_their_stored_order(tmp_path):
    """Two failures in one millisecond (00:00:00.000900 loaded first, .000100 later): the kernel reads both at the
    millisecond and keeps the last stored one's reason; a compaction by time would swap them and the loss reason
    with them. Compaction keeps each machine's stored order."""
    def rec(t, state, reason):
        return {"equipment_id": "M0", "start": t.isoformat(), "end": None, "state": state, "reason": reason}

    h1 = T0 + pd.Timedelta(hours=1)
    ws = _store_of(tmp_path, [
        ("states", [rec(T0, "production", None), rec(h1 + pd.Timedelta(microseconds=900), "unplanned_downtime",
                                                      "motor")]),
        ("states", [rec(h1 + pd.Timedelta(microseconds=100), "unplanned_downtime", "belt"),
                    rec(T0 + pd.Timedelta(hours=3), "production", None)])])
    before = compute_elements(ws.con, "day")
    ws.compact()
    after = compute_elements(ws.con, "day")
    pd.testing.assert_frame_equal(before.reasons, after.reasons, check_exact=True)
    pd.testing.assert_frame_equal(before.elements, after.elements, check_exact=True)
    ws.close()


def test_counts_are_summed_in_their_stored_order_after_a_compaction(tmp_path):
    """A late file of earlier counts (0.1 and 0.7, then 0.3 before them): the day's pq is summed in stored order,
    (0.1 + 0.7) + 0.3 = 1.0999999999999999; in time order it would be 1.1. The same after a compaction."""
    def count(h, q):
        return {"equipment_id": "M0", "end": (T0 + pd.Timedelta(hours=h)).isoformat(), "produced": q, "good": q}

    ws = _store_of(tmp_path, [
        ("states", [{"equipment_id": "M0", "start": T0.isoformat(), "state": "production"}]),
        ("production", [count(10, 0.1), count(11, 0.7)]), ("production", [count(9, 0.3)])])
    before = compute_elements(ws.con, "day").elements
    assert before["pq"].iloc[0] == (0.1 + 0.7) + 0.3 != 1.1
    ws.compact()
    pd.testing.assert_frame_equal(before, compute_elements(ws.con, "day").elements, check_exact=True)
    ws.close()


@pytest.mark.parametrize("memory_mb", [1.0, 768.0])
def test_compact_restores_duckdbs_memory_limit_exactly(tmp_path, memory_mb):
    """However small the budget (DuckDB gets at least 64 MB for the sort), and however often it runs, DuckDB's
    memory limit is what it was (its text is rounded: set back from the text it would drift)."""
    ws = _store_of(tmp_path, [("states", [{"equipment_id": "M0", "start": T0.isoformat(), "state": "production"}])])
    limit = ws.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    for _ in range(3):
        store_compact.compact(ws.con, memory_mb=memory_mb)
    assert ws.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == limit
    ws.con.execute("SET memory_limit = '3GB'")
    store_compact.compact(ws.con, memory_mb=memory_mb)
    assert ws.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == "2.7 GiB"  # 3 GB shown
    ws.close()
