"""The loader's bulk path (zhizao.ingest.load._load_bulk) against its step-by-step path: the same rows stored, the
same records quarantined with the same rules and details, the same flags and load log, on files that mix valid,
invalid, duplicate, identical-to-stored and conflicting records, from CSV and from Parquet; and a failure in the
middle of a bulk load leaves the store as it was."""

import re
import textwrap

import numpy as np
import pandas as pd
import pytest

import zhizao
import zhizao.ingest.load as L
from zhizao.store import row_count

_LOAD_BULK = L._load_bulk

EQ = ("equipment_id,work_center,site,timezone\nM1,L1,S1,Asia/Shanghai\nM2,L1,S1,Asia/Shanghai\n"
      "B1,L2,S2,Europe/Berlin\nU1,L3,S3,\n")

STORED_STATES = """\
equipment_id,start,end,state
M1,2024-01-02T08:00:00+08:00,,production
M2,2024-01-02T08:00:00+08:00,,setup
"""

STATES = """\
equipment_id,start,end,state,category,reason
M1,2024-01-01T08:00:00+08:00,,production,,
M1,,,production,,
M1,yesterday,,production,,
M1,2024-01-01T10:00:00+08:00,2024-01-01T09:00:00+08:00,setup,,
M9,2024-01-01T10:00:00+08:00,,production,,
M1,2024-01-01T11:00:00+08:00,,dancing,,
M1,2024-01-01T08:00:00+08:00,,production,,again
 M2 ,2024-01-01T08:00:00+08:00,,unplanned_downtime,,
M1,2024-01-02T08:00:00+08:00,,production,,
M2,2024-01-02T08:00:00+08:00,,setup,,other reason
M1,2024-01-03T08:00:00+15:00,,production,,
M1,1960-01-01T08:00:00+08:00,,production,,
M1,2199-01-01T08:00:00+08:00,,production,,
M2,2024-01-04T08:00:00+08:00,,RUN,weird,
M2,2024-01-04T09:00:00+08:00,,RUN,setup,
U1,2024-01-05 08:00:00,,production,,
M1,2024-01-05 08:00:00,2024-01-05 09:00:00,production,,naive in Shanghai
M2,2024-01-06T08:00:00Z,infinity,production,,
"""

PRODUCTION = """\
equipment_id,end,produced,good,scrap,rework
M1,2024-01-01T09:00:00+08:00,10,,1,1
M1,2024-01-01T10:00:00+08:00,-1,,,
M1,2024-01-01T11:00:00+08:00,10,9,2,
M1,2024-01-01T12:00:00+08:00,ten,,,
M1,,5,,,
M1,2024-01-01T13:00:00+08:00,5,,,
M1,2024-01-01T13:00:00+08:00,5,,,
M1,2024-01-01T13:00:00+08:00,5,,,
M2,2024-01-01T13:00:00+08:00,nan,,,
M2,2024-01-01T14:00:00+08:00,1e400,,,
M2,2024-01-01T15:00:00+08:00,2e15,,,
"""


def _snapshot(ws):
    con = ws.con
    out = {}
    for t in ("states", "production"):
        out[t] = con.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall()
    out["quarantine"] = con.execute(
        'SELECT "table", source, record, line, rule, detail, CAST(raw AS VARCHAR), code, CAST(params AS VARCHAR) '
        'FROM quarantine ORDER BY "table", source, record').fetchall()
    out["record_flags"] = con.execute("SELECT * FROM record_flags ORDER BY ALL").fetchall()
    out["loads"] = con.execute('SELECT "table", source, sha256, loaded, quarantined, skipped FROM loads '
                               "ORDER BY ALL").fetchall()
    return out


def _run(tmp_path, monkeypatch, name, bulk, loads):
    """A fresh store with the equipment, then ``loads`` [(table, path)] with the bulk path on or off; the store's
    rows, and which loads the bulk path took."""
    monkeypatch.setattr(L, "BULK", bulk)
    taken = []
    real = _LOAD_BULK

    def spy(*a, **k):
        r = real(*a, **k)
        taken.append(r)
        return r

    monkeypatch.setattr(L, "_load_bulk", spy)
    d = tmp_path / name
    d.mkdir()
    (d / "eq.csv").write_text(EQ)
    ws = zhizao.connect(d / "z.duckdb")
    try:
        ws.ingest("equipment", d / "eq.csv")
        reports = [ws.ingest(table, path)[0] for table, path in loads]
        snap = _snapshot(ws)
    finally:
        ws.close()
    return snap, [(r.loaded, r.quarantined, r.skipped, r.already_loaded) for r in reports], taken


def _compare(tmp_path, monkeypatch, loads):
    old = _run(tmp_path, monkeypatch, "old", False, loads)
    new = _run(tmp_path, monkeypatch, "bulk", True, loads)
    assert old[2] == []  # the step-by-step path did not call the bulk path
    for key in old[0]:
        assert new[0][key] == old[0][key], key
    assert new[1] == old[1]
    return new


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_csv_bulk_path_stores_and_quarantines_exactly_as_the_step_by_step_path(tmp_path, monkeypatch):
    stored = _write(tmp_path, "stored.csv", STORED_STATES)
    states = _write(tmp_path, "states.csv", STATES)
    prod = _write(tmp_path, "production.csv", PRODUCTION)
    snap, reports, taken = _compare(tmp_path, monkeypatch,
                                    [("states", stored), ("states", states), ("production", prod),
                                     ("states", states)])
    assert taken == [True] * 5  # equipment too; the same bytes again: read again, as they had rejections
    rules = {r[4] for r in snap["quarantine"]}
    assert {"missing_field", "unparseable", "end_not_after_start", "unknown_equipment", "unmapped_state",
            "duplicate", "conflicts_with_stored", "invalid_offset", "time_out_of_range", "invalid_value",
            "negative_quantity", "counts_exceed_produced", "not_finite", "value_out_of_range"} <= rules
    assert reports[1][2] == 1  # identical to a stored record: skipped
    # loaded twice: nothing stored twice, the same records quarantined again (their quarantine replaced)
    assert reports[3] == (0, reports[1][1], reports[1][0] + reports[1][2], False)
    occurrences = [r[-1] for r in snap["production"]]
    assert sorted(occurrences)[-3:] == [1, 2, 3]  # three identical counts: three events


def _parquet_states(tmp_path):
    ts = pd.to_datetime
    df = pd.DataFrame({
        "equipment_id": ["M1", "M1", "M1", "M9", "M1", "M1", " M2 ", "M1", "M2", "M1", "M1", None, "M2"],
        "start": ts(["2024-01-01T00:00:00Z", None, "2024-01-01T02:00:00Z", "2024-01-01T03:00:00Z",
                     "2024-01-01T04:00:00Z", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z",
                     "2024-01-02T00:00:00Z", "2024-01-02T00:00:00Z", "1960-01-01T00:00:00Z",
                     "2199-01-01T00:00:00Z", "2024-01-01T05:00:00Z", "2024-01-01T06:00:00.123456Z"], utc=True, format="ISO8601"),
        "end": ts([None, None, "2024-01-01T01:00:00Z", None, None, None, None, None, None, None, None, None,
                   "2024-01-01T07:00:00Z"], utc=True, format="ISO8601"),
        "state": ["production", "production", "setup", "production", "dancing", "production",
                  "unplanned_downtime", "production", "setup", "production", "production", "production", "RUN"],
        "category": [None] * 12 + ["setup"],
        "reason": [None] * 5 + ["again"] + [None] * 2 + ["other"] + [None] * 4,
    })
    p = tmp_path / "states.parquet"
    df.to_parquet(p)
    return p


def _parquet_production(tmp_path):
    df = pd.DataFrame({
        "equipment_id": ["M1"] * 8 + ["M2"] * 3,
        "end": pd.to_datetime(["2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z", "2024-01-01T03:00:00Z",
                               "2024-01-01T04:00:00Z", None, "2024-01-01T05:00:00Z", "2024-01-01T05:00:00Z",
                               "2024-01-01T05:00:00Z", "2024-01-01T06:00:00Z", "2024-01-01T07:00:00Z",
                               "2024-01-01T08:00:00Z"], utc=True),
        "produced": [10.0, -1.0, 10.0, np.nan, 5.0, 5.0, 5.0, 5.0, np.inf, -0.0, 2e15],
        "good": [np.nan, np.nan, 9.0, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
        "scrap": [1.0, np.nan, 2.0] + [np.nan] * 8,
        "rework": [1.0] + [np.nan] * 10,
    })
    p = tmp_path / "production.parquet"
    df.to_parquet(p)
    return p


def test_parquet_typed_columns_give_what_their_text_gives(tmp_path, monkeypatch):
    stored = _write(tmp_path, "stored.csv", STORED_STATES.replace("+08:00", "Z").replace("08:00:00Z", "00:00:00Z"))
    states = _parquet_states(tmp_path)
    prod = _parquet_production(tmp_path)
    snap, _, taken = _compare(tmp_path, monkeypatch,
                                    [("states", stored), ("states", states), ("production", prod)])
    assert taken == [True] * 4
    rules = [r[4] for r in snap["quarantine"]]
    for rule in ("missing_field", "end_not_after_start", "unknown_equipment", "unmapped_state", "duplicate",
                 "conflicts_with_stored", "time_out_of_range", "negative_quantity", "counts_exceed_produced",
                 "not_finite", "value_out_of_range"):
        assert rule in rules, rule
    details = [r[5] for r in snap["quarantine"] if r[4] == "time_out_of_range"]
    assert any("start = 1960-01-01 00:00:00+00 is outside" in d for d in details)  # the value's text, as before


def test_naive_times_around_a_clock_change_take_the_step_by_step_path(tmp_path, monkeypatch):
    # Berlin: 2024-03-31 02:30 does not exist, 2024-10-27 02:30 happens twice
    states = _write(tmp_path, "b.csv", """\
        equipment_id,start,end,state
        B1,2024-03-31 01:00:00,,production
        B1,2024-03-31 02:30:00,,setup
        B1,2024-10-27 02:30:00,,production
        B1,2024-11-01 08:00:00,,setup
        """)
    far = _write(tmp_path, "far.csv", """\
        equipment_id,start,end,state
        B1,2024-06-01 08:00:00,2024-06-01 09:00:00,production
        B1,2024-06-01 09:00:00,,setup
        """)
    snap, _, taken = _compare(tmp_path, monkeypatch, [("states", states), ("states", far)])
    assert taken == [True, False, True]  # far from a change, naive local times are read by the bulk path
    assert [r[4] for r in snap["quarantine"]] == ["nonexistent_local_time"]
    assert [r[3] for r in snap["record_flags"]] == ["ambiguous_local_time"]


def test_a_failing_bulk_load_leaves_the_store_unchanged(tmp_path, monkeypatch):
    (tmp_path / "eq.csv").write_text(EQ)
    ws = zhizao.connect(tmp_path / "z.duckdb")
    ws.ingest("equipment", tmp_path / "eq.csv")
    ws.ingest("states", _write(tmp_path, "stored.csv", STORED_STATES))
    before = _snapshot(ws)
    states = _write(tmp_path, "states.csv", STATES)
    real = L._store

    def crash(*a, **k):
        real(*a, **k)  # valid records and quarantine inserted ...
        raise RuntimeError("disk on fire")  # ... then a failure before the commit

    monkeypatch.setattr(L, "_store", crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        ws.ingest("states", states)
    assert _snapshot(ws) == before
    assert not ws.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_zz_%'").fetchall()[0][0]
    monkeypatch.setattr(L, "_store", real)
    r = ws.ingest("states", states)[0]
    assert (r.loaded, r.skipped) == (5, 1) and r.quarantined == row_count(ws.con, "quarantine")
    ws.close()


def test_bulk_path_stores_records_in_file_order(tmp_path):
    (tmp_path / "eq.csv").write_text(EQ)
    rng = np.random.default_rng(0)
    n = 50_000
    df = pd.DataFrame({"equipment_id": rng.choice(["M1", "M2"], n),
                       "start": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.permutation(n), "s"),
                       "state": "production"})
    df.to_parquet(tmp_path / "s.parquet")
    ws = zhizao.connect(tmp_path / "z.duckdb")
    ws.ingest("equipment", tmp_path / "eq.csv")
    assert ws.ingest("states", tmp_path / "s.parquet")[0].loaded == n
    records = [r for (r,) in ws.con.execute("SELECT _record FROM states ORDER BY rowid").fetchall()]
    assert records == list(range(1, n + 1))
    assert row_count(ws.con, "loads") == 2
    ws.close()


def test_csv_record_numbers_are_the_file_order_on_every_core(tmp_path):
    # a file read in parallel (several of DuckDB's CSV buffers, more threads than cores) whose records carry their
    # own number: stored and quarantined records keep exactly the number and line of their place in the file,
    # rejected ones (unknown equipment, unparseable, missing, duplicate) anywhere among them
    (tmp_path / "eq.csv").write_text(EQ)
    n = 300_000
    i = np.arange(1, n + 1)
    eq = np.where(i % 997 == 0, "X9", np.where(i % 2 == 0, "M1", " M2 "))
    start = (pd.Timestamp("2024-02-01", tz="UTC") + pd.to_timedelta(i, "s")).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    start = np.where(i % 1009 == 0, "soon", start)
    start = np.where(i % 1013 == 0, "", start)
    start = np.where(i % 3 == 0, pd.Series(start).str[:19].str.replace("T", " "), start)  # naive: the zone's
    dup = i % 1019 == 0
    start[dup] = start[np.flatnonzero(dup) - 2]
    eq[dup] = eq[np.flatnonzero(dup) - 2]
    df = pd.DataFrame({"equipment_id": eq, "start": start, "state": "production", "reason": [f"r{k}" for k in i]})
    df.to_csv(tmp_path / "s.csv", index=False)
    ws = zhizao.connect(tmp_path / "z.duckdb")
    ws.con.execute("SET threads = 8")
    ws.ingest("equipment", tmp_path / "eq.csv")
    r = ws.ingest("states", tmp_path / "s.csv")[0]
    missing = start == ""  # the first broken rule wins
    unparseable = (start == "soon") & ~missing
    bad = {"missing_field": missing, "unparseable": unparseable, "unknown_equipment": (eq == "X9") & ~missing
           & ~unparseable}
    quarantined = sorted(int(k) for k in i[bad["unknown_equipment"] | bad["unparseable"] | bad["missing_field"]])
    con = ws.con
    stored = con.execute("SELECT _record, reason FROM states ORDER BY rowid").fetchall()
    assert [rec for rec, _ in stored] == sorted(rec for rec, _ in stored)
    assert all(reason == f"r{rec}" for rec, reason in stored)
    q = con.execute("SELECT record, line, rule, raw->>'reason' FROM quarantine ORDER BY record").fetchall()
    assert all(line == rec + 1 and reason == f"r{rec}" for rec, line, _, reason in q)
    for rule, mask in bad.items():
        assert sorted(rec for rec, _, ru, _ in q if ru == rule) == [int(k) for k in i[mask]], rule
    assert {rec for rec, _, ru, _ in q if ru == "duplicate"} | set(quarantined) | {rec for rec, _ in stored} \
        == set(range(1, n + 1))
    assert r.loaded == len(stored) and r.quarantined == len(q)
    # a naive time is local to the equipment (M1, M2: Shanghai), " M2 " being M2 as stored (trimmed)
    naive = con.execute("""SELECT equipment_id, start, reason FROM states WHERE reason IN ('r3', 'r6')
                           ORDER BY _record""").fetchall()
    assert [(e, s.isoformat()) for e, s, _ in naive] == [("M2", "2024-01-31T16:00:03+00:00"),
                                                          ("M1", "2024-01-31T16:00:06+00:00")]
    ws.close()


class _Spy:
    """A store connection that keeps the statements run on it, and the plan of the bulk path's checking one."""

    def __init__(self, con):
        self.con, self.statements, self.plan = con, [], None

    def execute(self, sql, *args):
        self.statements.append(sql)
        if sql.startswith("CREATE TEMP TABLE _zz_checked AS "):
            plan = self.con.execute("EXPLAIN " + sql[len("CREATE TEMP TABLE _zz_checked AS "):], *args).fetchall()
            self.plan = re.findall(r"\u256d\u2500 (.+?) \u2500", "\n".join(r[1] for r in plan))  # the operators
        return self.con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.con, name)


@pytest.mark.parametrize(("table", "text"), [
    ("states", "equipment_id,start,end,state\nM1,2024-01-01 08:00:00,,production\nM9,2024-01-01T08:00:00Z,,setup\n"),
    ("production", "equipment_id,end,produced\nM1,2024-01-01T09:00:00+08:00,10\nM1,2024-01-01 10:00:00,5\n"),
    ("products", "product_id,equipment_id,pri\nP1,M1,30\nP2,M9,30\n"),
])
def test_the_ordered_checking_statement_joins_nothing_and_has_no_window(tmp_path, table, text):
    # record numbers come from the row ids only if the statement keeps the file's order: no join, no IN subquery
    # (DuckDB keeps no order across them), and no window (which would run on one core)
    (tmp_path / "eq.csv").write_text(EQ)
    ws = zhizao.connect(tmp_path / "z.duckdb")
    ws.ingest("equipment", tmp_path / "eq.csv")
    (tmp_path / "f.csv").write_text(text)
    spy = _Spy(ws.con)
    L.load_file(spy, table, tmp_path / "f.csv")
    assert set(spy.plan) == {"Projection", "Read Csv"}, spy.plan
    assert any(s.startswith("UPDATE _zz_checked SET _record") for s in spy.statements)
    ws.close()


@pytest.mark.parametrize("bulk", [True, False])
def test_a_padded_id_reads_naive_times_in_its_own_zone(tmp_path, monkeypatch, bulk):
    # " M2 " is stored as M2, a Shanghai machine, and " L2 " is the work centre of a Berlin one: their naive times
    # are in those zones on both paths (they were read as UTC, the zone looked up by the untrimmed text)
    monkeypatch.setattr(L, "BULK", bulk)
    (tmp_path / "eq.csv").write_text(EQ)
    ws = zhizao.connect(tmp_path / "z.duckdb")
    ws.ingest("equipment", tmp_path / "eq.csv")
    (tmp_path / "s.csv").write_text('equipment_id,start,state\n" M2 ",2024-01-02 08:00:00,production\n'
                                    '"M2  ",2024-01-02 09:00:00,setup\n')
    (tmp_path / "c.csv").write_text('scope,start,end,kind\n" L2 ",2024-01-02 08:00:00,2024-01-02 16:00:00,shift\n')
    assert ws.ingest("states", tmp_path / "s.csv")[0].loaded == 2
    assert ws.ingest("calendar", tmp_path / "c.csv")[0].loaded == 1
    states = ws.con.execute("SELECT equipment_id, start FROM states ORDER BY start").fetchall()
    assert [(e, s.isoformat()) for e, s in states] == [("M2", "2024-01-02T00:00:00+00:00"),
                                                       ("M2", "2024-01-02T01:00:00+00:00")]
    cal = ws.con.execute("SELECT scope, start, \"end\" FROM calendar").fetchall()
    assert [(c, s.isoformat(), e.isoformat()) for c, s, e in cal] == [("L2", "2024-01-02T07:00:00+00:00",
                                                                      "2024-01-02T15:00:00+00:00")]
    ws.close()
