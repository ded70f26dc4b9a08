"""Hostile and broken data inputs (issue 14): implausible times and numbers, daylight saving, record identity,
confined mapping SQL, YAML bombs, and the engine isolating what it fails on."""

import json
import os
import re

import duckdb
import pandas as pd
import pytest

import zhizao
from canonical import load
from zhizao.errors import InputError, TooLarge
from zhizao.ingest import MappingError, load_mapping
from zhizao.ingest.mapping import Mapping, MappingSqlError, check_expression, sandbox
from zhizao.ingest.rules import RULES, detail_message
from zhizao.limits import Limits
from zhizao.schema import TABLES

EQ = ("equipment_id,work_center,area,site,enterprise,timezone\n"
      "M1,L1,A1,S1,E1,Europe/Berlin\nM2,L1,A1,S1,E1,Europe/Berlin\nB1,LB,AB,SB,E2,UTC\n")


@pytest.fixture
def ws(tmp_path):
    (tmp_path / "eq.csv").write_text(EQ)
    w = zhizao.connect(tmp_path / "z.duckdb")
    w.ingest("equipment", tmp_path / "eq.csv")
    yield w
    w.close()


def quarantined(ws, source=None):
    q = ws.quarantine()
    if source:
        q = q[q["source"] == source]
    return list(zip(q["record"], q["rule"]))


# ------------------------------------------------------------------------------------------- time stamps
@pytest.mark.parametrize("value", ["9999-12-31T23:59:59Z", "0001-01-01", "infinity", "-infinity",
                                   "1677-09-22T00:00:00Z", "2263-01-01T00:00:00Z", "294247-01-10T04:00:54Z",
                                   "1969-12-31T23:59:59Z", "2100-01-01T00:00:00Z"])
def test_out_of_range_time_stamps_are_quarantined_with_a_named_rule(ws, tmp_path, value):
    r = load(ws, tmp_path, "states", f"""
        equipment_id,start,state
        M1,2024-01-01T08:00:00Z,production
        M1,{value},setup
    """)
    assert (r.loaded, r.quarantined) == (1, 1)
    q = ws.quarantine()
    assert q["rule"].tolist() == ["time_out_of_range"] and q["code"].tolist() == ["ingest.time_out_of_range"]
    assert json.loads(q["params"].iloc[0])["value"] == value
    # the engine computes the store as if the record had never come
    assert "M1" in ws.kpi("equipment", "day")["equipment_id"].tolist() and ws.failures == []


def test_measurements_from_the_future_are_refused_relative_to_the_load_time(ws, tmp_path):
    now = pd.Timestamp.now(tz="UTC").floor("s")
    soon, far = (now + pd.Timedelta(days=1)).isoformat(), (now + pd.Timedelta(days=30)).isoformat()
    r = load(ws, tmp_path, "states", f"""
        equipment_id,start,state
        M1,{soon},production
        M1,{far},setup
    """)
    assert (r.loaded, r.quarantined) == (1, 1)
    assert ws.quarantine()["code"].tolist() == ["ingest.time_in_future"]
    # plans are not measurements: a calendar a month ahead is fine
    r = load(ws, tmp_path, "calendar", f"scope,start,end,kind\nS1,{far},{(now + pd.Timedelta(days=31)).isoformat()},"
                                       f"shift\n", name="cal.csv")
    assert r.loaded == 1
    # the margin is a limit
    w = zhizao.connect(tmp_path / "z2.duckdb", limits=Limits(max_future_days=60))
    w.ingest("equipment", tmp_path / "eq.csv")
    assert w.ingest("states", tmp_path / "f.csv")[0].loaded == 2
    w.close()


@pytest.mark.parametrize("offset,ok", [("+14:00", True), ("-12:00", True), ("+05:45", True), ("+14:01", False),
                                       ("+26:00", False), ("-15:00", False), ("+1500", False)])
def test_utc_offsets_beyond_14_hours_are_invalid(ws, tmp_path, offset, ok):
    r = load(ws, tmp_path, "states", f"equipment_id,start,state\nM1,2024-01-01T08:00:00{offset},production\n")
    assert (r.loaded, r.quarantined) == ((1, 0) if ok else (0, 1))
    if not ok:
        assert quarantined(ws) == [(1, "invalid_offset")]


def test_daylight_saving_fold_takes_the_earlier_instant_and_flags_it_a_gap_is_quarantined(ws, tmp_path):
    # Europe/Berlin: 2024-03-31 02:00 -> 03:00 (gap), 2024-10-27 03:00 -> 02:00 (fold)
    r = load(ws, tmp_path, "states", """
        equipment_id,start,state
        M1,2024-10-27 01:59:59,production
        M1,2024-10-27 02:30:00,setup
        M1,2024-10-27 03:00:00,production
        M1,2024-03-31 02:30:00,setup
        M1,2024-03-31 03:00:00,production
        M1,2024-10-27T02:30:00+01:00,unplanned_downtime
    """)
    assert (r.loaded, r.quarantined) == (5, 1)
    q = ws.quarantine()
    assert q["rule"].tolist() == ["nonexistent_local_time"] and q["record"].tolist() == [4]
    assert json.loads(q["params"].iloc[0])["zone"] == "Europe/Berlin"
    got = ws.con.execute("SELECT _record, start FROM states ORDER BY _record").fetchall()
    utc = {rec: pd.Timestamp(t).tz_convert("UTC") for rec, t in got}
    assert utc[1] == pd.Timestamp("2024-10-26T23:59:59Z")
    assert utc[2] == pd.Timestamp("2024-10-27T00:30:00Z")  # the earlier 02:30 (CEST, +02:00)
    assert utc[3] == pd.Timestamp("2024-10-27T02:00:00Z")
    assert utc[5] == pd.Timestamp("2024-03-31T01:00:00Z")
    assert utc[6] == pd.Timestamp("2024-10-27T01:30:00Z")  # an explicit offset is an instant: no flag
    flags = ws.con.execute('SELECT "table", _record, flag, "column", entity, ts, raw FROM record_flags').fetchall()
    assert [(t, rec, f, c, e, raw) for t, rec, f, c, e, _, raw in flags] == [
        ("states", 2, "ambiguous_local_time", "start", "M1", "2024-10-27 02:30:00")]
    assert pd.Timestamp(flags[0][5]) == pd.Timestamp("2024-10-27T00:30:00Z")


def test_daylight_saving_in_the_southern_hemisphere_and_half_hour_zones(tmp_path):
    w = zhizao.connect(tmp_path / "s.duckdb")
    (tmp_path / "eq.csv").write_text("equipment_id,timezone\nS,America/Santiago\nL,Australia/Lord_Howe\n")
    w.ingest("equipment", tmp_path / "eq.csv")
    # Santiago: 2024-04-07 00:00 -> 2024-04-06 23:00 (fold 23:00-24:00); 2024-09-08 00:00 -> 01:00 (gap)
    # Lord Howe: 2024-04-07 02:00 -> 01:30 (fold of half an hour)
    (tmp_path / "s.csv").write_text("equipment_id,start,state\nS,2024-04-06 23:30:00,production\n"
                                    "S,2024-09-08 00:30:00,production\nL,2024-04-07 01:45:00,production\n")
    r = w.ingest("states", tmp_path / "s.csv")[0]
    assert (r.loaded, r.quarantined) == (2, 1)
    got = dict(w.con.execute("SELECT equipment_id, start FROM states").fetchall())
    assert pd.Timestamp(got["S"]) == pd.Timestamp("2024-04-07T02:30:00Z")  # -03:00, the earlier occurrence
    assert pd.Timestamp(got["L"]) == pd.Timestamp("2024-04-06T14:45:00Z")  # +11:00, the earlier occurrence
    assert w.con.execute("SELECT count(*) FROM record_flags").fetchall() == [(2,)]
    w.close()


# ------------------------------------------------------------------------------------------------ numbers
FLOAT_COLUMNS = [(t.name, c.name) for t in TABLES.values() for c in t.columns if c.type == "float"]


def _valid_record(table: str) -> dict:
    """A valid record of ``table`` (text values) in the fixture's store (after enterprises and projects)."""
    base = {
        "equipment": {"equipment_id": "N1"},
        "states": {"equipment_id": "M1", "start": "2024-01-01T00:00:00Z", "state": "production"},
        "production": {"equipment_id": "M1", "end": "2024-01-01T01:00:00Z", "produced": "1"},
        "products": {"product_id": "P1", "pri": "1"},
        "calendar": {"scope": "S1", "start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z",
                     "kind": "shift"},
        "energy": {"meter_id": "E1", "equipment_id": "M1", "start": "2024-01-01T00:00:00Z",
                   "end": "2024-01-01T01:00:00Z", "carrier": "electricity", "quantity": "1", "unit": "kWh"},
        "labour": {"scope": "L1", "start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z",
                   "attendance_hours": "8"},
        "quality": {"equipment_id": "M1", "ts": "2024-01-01T00:00:00Z", "result": "pass"},
        "variables": {"scope": "S1", "start": "2024-01-01T00:00:00Z", "name": "t", "value": "1"},
        "enterprises": {"enterprise_id": "ENT9"},
        "projects": {"project_id": "PX", "enterprise_id": "ENT1", "type": "new_mode",
                     "start": "2024-01-01T00:00:00Z", "commissioning_end": "2024-02-01T00:00:00Z"},
        "designations": {"enterprise_id": "ENT1", "designation": "smart_factory", "date": "2024-01-01T00:00:00Z"},
        "costs": {"scope": "S1", "start": "2024-01-01T00:00:00Z", "end": "2024-02-01T00:00:00Z",
                  "category": "energy", "amount": "1", "currency": "CNY"},
        "development_cycles": {"enterprise_id": "ENT1", "product_id": "X", "design_start": "2024-01-01T00:00:00Z",
                               "release": "2024-02-01T00:00:00Z"},
        "adjustments": {"adjustment_id": "AD", "scope": "S1", "start": "2024-01-01T00:00:00Z", "reason": "new load"},
        "programme_targets": {"programme_id": "PG1", "year": "2024", "measure": "n_projects", "target": "1"},
    }
    return dict(base[table])


@pytest.mark.parametrize("table,column", FLOAT_COLUMNS)
def test_nan_and_infinity_are_refused_in_every_numeric_column(ws, tmp_path, table, column):
    (tmp_path / "ent.csv").write_text("enterprise_id\nENT1\n")
    ws.ingest("enterprises", tmp_path / "ent.csv")
    if table == "programme_targets":
        (tmp_path / "prog.csv").write_text("programme_id\nPG1\n")
        ws.ingest("programmes", tmp_path / "prog.csv")
    bad = ["NaN", "nan", "inf", "-Infinity", "1e309", "-1e400", "1e16", "-2e15"]
    rows = []
    for i, v in enumerate(bad):
        rec = _valid_record(table)
        for k in ("equipment_id", "product_id", "meter_id", "enterprise_id", "project_id", "name", "adjustment_id"):
            if k in rec and table in ("equipment", "products", "enterprises", "projects", "adjustments"):
                rec[k] = f"{rec[k]}{i}"
        if table == "programme_targets":
            rec["year"] = str(2016 + i)  # one target per year: the key (programme, year, district, measure)
        if table in ("states", "production", "quality", "variables", "labour", "calendar", "costs", "energy"):
            for k in ("start", "end", "ts"):
                if k in rec:
                    rec[k] = rec[k].replace("2024-01-01", f"2024-01-{i + 1:02d}").replace(
                        "2024-01-02", f"2024-01-{i + 2:02d}")
        rec[column] = v
        rows.append(rec)
    cols = sorted({k for r in rows for k in r})
    (tmp_path / "n.csv").write_text(",".join(cols) + "\n" + "".join(
        ",".join(r.get(c, "") for c in cols) + "\n" for r in rows))
    r = ws.ingest(table, tmp_path / "n.csv")[0]
    q = ws.quarantine()
    q = q[q["source"] == "n.csv"]
    assert (r.loaded, r.quarantined) == (0, len(bad)), q[["rule", "detail"]].to_dict("records")
    assert q["rule"].tolist() == ["not_finite"] * 6 + ["value_out_of_range"] * 2
    assert {json.loads(p)["column"] for p in q["params"]} == {column}


def test_one_nan_energy_record_no_longer_drops_a_total(ws, tmp_path):
    r = load(ws, tmp_path, "energy", """
        meter_id,equipment_id,start,end,carrier,quantity,unit
        E1,M1,2024-01-01T00:00:00Z,2024-01-01T01:00:00Z,electricity,100,kWh
        E1,M2,2024-01-01T00:00:00Z,2024-01-01T01:00:00Z,electricity,NaN,kWh
        E1,M2,2024-01-01T01:00:00Z,2024-01-01T02:00:00Z,electricity,50,kWh
    """)
    assert (r.loaded, r.quarantined) == (2, 1)
    total = ws.kpi("enterprise", "all")
    assert total.loc[total["enterprise"] == "E1", "energy_kwh"].tolist() == [150.0]


def test_lsl_above_usl_is_refused_equal_limits_are_fine(ws, tmp_path):
    r = load(ws, tmp_path, "quality", """
        equipment_id,ts,unit_id,result,characteristic,value,lsl,usl
        M1,2024-01-01T00:00:00Z,U1,pass,d,1.0,2.0,1.0
        M1,2024-01-01T00:01:00Z,U2,pass,d,1.0,1.0,1.0
    """)
    assert (r.loaded, r.quarantined) == (1, 1)
    assert quarantined(ws) == [(1, "lsl_above_usl")]


def test_every_quarantine_detail_is_a_structured_message_in_both_languages(ws, tmp_path):
    load(ws, tmp_path, "states", """
        equipment_id,start,state
        M1,yesterday,production
        M9,2024-01-01T00:00:00Z,production
    """)
    q = ws.quarantine()
    assert set(q["rule"]) <= set(RULES)
    for code, params, detail in zip(q["code"], q["params"], q["detail"]):
        m = detail_message(code, params)
        assert m.text("en") == detail
        assert m.text("zh") != detail
    zh = ws.quarantine(lang="zh")["detail"].tolist()
    # the schema's type by its name, not its code (the publishing review: "不是有效的 timestamp"); the column by
    # its label, not its canonical name (start: the Chinese pages' Latin-word test)
    assert zh == ["开始时间 = yesterday 不是有效的时间（ISO 8601）", "设备 M9 不在设备表中"]
    assert q["detail"].iloc[0] == "start = yesterday is not a valid time stamp"


def test_a_quarantine_detail_names_every_column_by_its_label_in_chinese():
    # the canonical tables' columns by their catalogue labels, a register table's own by its import template's
    # heading; English keeps the names the files use; a name that is no column stays as it is
    from zhizao.ingest.rules import COLUMN_LABELS, END_NOT_AFTER_START, MISSING_ONE_OF, UNPARSEABLE, column_word
    from zhizao.portfolio.register import HEADERS

    register = {c for h in HEADERS.values() for c in h}
    for table, spec in TABLES.items():
        for c in spec.columns:
            assert c.name in COLUMN_LABELS or c.name in register, (table, c.name)
            zh = column_word(c.name, "zh")
            assert zh != c.name and not re.search(r"[A-Za-z]", zh), (table, c.name, zh)
            assert column_word(c.name, "en") == c.name
    assert column_word("no_such_column", "zh") == "no_such_column"
    assert UNPARSEABLE(column="declared_efficiency", value="abc", type="float").text("zh") == \
        "申报生产效率提升 = abc 不是有效的数值"
    assert END_NOT_AFTER_START(end_column="end", end="9", start_column="start", start="10").text("zh") == \
        "结束时间 9 不晚于 开始时间 10"
    assert MISSING_ONE_OF(columns=["quantity", "reading"]).text("zh") == "数量、读数方式中至少需要一项"
    assert MISSING_ONE_OF(columns=["quantity", "reading"]).text("en") == "one of quantity, reading is needed"


# -------------------------------------------------------------------------------------- records in stores
def test_a_store_with_implausible_records_from_an_older_version_is_cleaned_on_open(tmp_path):
    from zhizao.store.db import open_db

    p = tmp_path / "old.duckdb"
    con = open_db(p)
    con.execute("INSERT INTO equipment (equipment_id, enterprise) VALUES ('A1', 'EA'), ('B1', 'EB')")
    con.execute("""INSERT INTO states (equipment_id, start, "end", state, category, _source, _record) VALUES
        ('A1', TIMESTAMPTZ '9999-12-31 23:59:59+00', NULL, 'production', 'production', 'a.csv', 7),
        ('B1', TIMESTAMPTZ '2024-01-01 00:00:00+00', TIMESTAMPTZ '2024-01-01 08:00:00+00', 'production',
         'production', 'b.csv', 1)""")
    con.execute("""INSERT INTO energy (meter_id, equipment_id, start, "end", carrier, quantity, unit, _source, _record)
                   VALUES ('E', 'B1', TIMESTAMPTZ '2024-01-01 00:00:00+00', TIMESTAMPTZ '2024-01-01 01:00:00+00',
                           'electricity', 'NaN', 'kWh', 'e.csv', 3)""")
    con.execute("DELETE FROM meta")  # as an older version left it
    con.close()
    # read-only, the store is as it was: the engine isolates the equipment it fails on
    with zhizao.connect(p, read_only=True) as ro:
        k = ro.kpi("equipment", "day")
        assert k["equipment_id"].unique().tolist() == ["B1"]
        assert [e for e, _ in ro.failures] == ["A1"]
    with zhizao.connect(p) as w:
        q = w.quarantine()
        assert sorted(zip(q["table"], q["source"], q["record"], q["rule"])) == [
            ("energy", "e.csv", 3, "not_finite"), ("states", "a.csv", 7, "time_out_of_range")]
        k = w.kpi("equipment", "all")
        assert k.loc[k["equipment_id"] == "B1", "apt"].tolist() == [8 * 3600.0]
        assert w.failures == []


def test_the_engine_isolates_an_entity_it_fails_on_and_reports_it(ws, tmp_path):
    load(ws, tmp_path, "states", """
        equipment_id,start,end,state
        M1,2024-01-01T00:00:00Z,2024-01-01T08:00:00Z,production
        B1,2024-01-01T00:00:00Z,2024-01-01T04:00:00Z,production
    """)
    before = ws.kpi("equipment", "day")
    # an equipment whose only record makes the engine fail (a single open state: an empty range)
    ws.con.execute("INSERT INTO equipment (equipment_id, site, enterprise) VALUES ('X1', 'S9', 'E9')")
    ws.con.execute("INSERT INTO states (equipment_id, start, state, category) VALUES "
                   "('X1', TIMESTAMPTZ '2024-01-01 00:00:00+00', 'production', 'production')")
    ws.invalidate()
    after = ws.kpi("equipment", "day")
    assert ws.failures and ws.failures[0][0] == "X1"
    pd.testing.assert_frame_equal(after.reset_index(drop=True), before.reset_index(drop=True))


def test_identical_events_in_a_file_are_distinct_and_reloads_store_each_once(ws, tmp_path):
    """Issue 14, item 15: quality results without unit id and counts at an instant are events."""
    text = """
        equipment_id,ts,result
        M1,2024-01-01T00:00:00Z,pass
        M1,2024-01-01T00:00:00Z,pass
        M1,2024-01-01T00:00:00Z,fail
    """
    r = load(ws, tmp_path, "quality", text)
    assert (r.loaded, r.quarantined) == (3, 0)
    assert load(ws, tmp_path, "quality", text).already_loaded
    # the same events under another name, and a longer export that repeats them with one more pass
    r = load(ws, tmp_path, "quality", text + "        M1,2024-01-01T00:00:00Z,pass\n", name="g.csv")
    assert (r.loaded, r.skipped) == (1, 3)
    assert ws.con.execute("SELECT count(*) FILTER (WHERE result = 'pass'), count(*) FROM quality").fetchall() \
        == [(3, 4)]
    # with a unit id, the key names the record: a second result of the same unit at the same time is a duplicate
    r = load(ws, tmp_path, "quality", """
        equipment_id,ts,unit_id,result
        M1,2024-01-02T00:00:00Z,U1,pass
        M1,2024-01-02T00:00:00Z,U1,pass
    """, name="u.csv")
    assert (r.loaded, r.quarantined) == (1, 1) and quarantined(ws, "u.csv") == [(2, "duplicate")]
    # counts at an instant alike; interval counts keep their key
    r = load(ws, tmp_path, "production", """
        equipment_id,start,end,produced
        M1,,2024-01-01T00:00:05Z,1
        M1,,2024-01-01T00:00:05Z,1
        M1,2024-01-01T00:00:00Z,2024-01-01T01:00:00Z,5
        M1,2024-01-01T00:00:00Z,2024-01-01T01:00:00Z,5
    """, name="p.csv")
    assert (r.loaded, r.quarantined) == (3, 1)
    k = ws.kpi("equipment", "all")
    assert k.loc[k["equipment_id"] == "M1", "pq"].tolist() == [7.0]


# ------------------------------------------------------------------------------------------ mapping SQL
ATTACKS = {
    "read a host file": "(SELECT content FROM read_text('/etc/shadow'))",
    "read a host file (table function)": "x FROM read_csv('/etc/passwd')",
    "read a host file (scalar)": "read_text('/etc/shadow')",
    "list directories": "(SELECT string_agg(file, ',') FROM glob('/etc/*'))",
    "read password hashes": "(SELECT min(password_hash) FROM server_users)",
    "read session tokens": "(SELECT min(token) FROM server_sessions)",
    "system tables": "(SELECT min(sql) FROM duckdb_tables())",
    "second statement": "1; COPY (SELECT 1) TO '/tmp/zhizao-pwned.csv'",
    "copy to": "1); COPY (SELECT 1) TO '/tmp/zhizao-pwned.csv'; SELECT (1",
    "attach": "1; ATTACH '/tmp/zhizao-pwned.duckdb' AS x",
    "install": "1; INSTALL httpfs",
    "set": "1; SET enable_external_access = false",
    "environment": "getenv('HOME')",
    "settings": "current_setting('memory_limit')",
    "comment": "start -- ) FROM x",
    "star": "*",
    "qualified column": "equipment.equipment_id",
    "aggregate": "max(start)",
    "window": "lag(start) OVER ()",
    "lambda": "list_transform([start], x -> x)",
    "parameter": "$1",
    "alias": "start AS x",
    "where clause": "start WHERE true",
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_every_mapping_sql_attack_is_refused_before_it_runs(ws, tmp_path, attack):
    (tmp_path / "m.yaml").write_text(f"table: states\ncolumns:\n  start: {{sql: {json.dumps(ATTACKS[attack])}}}\n")
    with pytest.raises(MappingSqlError) as e:
        load_mapping(tmp_path / "m.yaml")
    assert e.value.code == "mapping.bad_expression" and isinstance(e.value, InputError)
    with pytest.raises(MappingSqlError):
        Mapping(table="states", columns={"start": {"sql": ATTACKS[attack]}})
    assert not os.path.exists("/tmp/zhizao-pwned.csv") and not os.path.exists("/tmp/zhizao-pwned.duckdb")


def test_allowed_expressions_pass_and_name_their_columns():
    assert check_expression("strptime(date, '%d/%m/%Y') + INTERVAL 1 DAY") == {"date"}
    assert check_expression("CASE WHEN trim(a) IN ('x', 'y') THEN lpad(b, 2, '0') ELSE NULL END") == {"a", "b"}
    assert check_expression("CAST(x AS DOUBLE) * 5 / 9 BETWEEN -1 AND 1") == {"x"}


@pytest.mark.parametrize("statement", [
    "SELECT * FROM read_text('/etc/hostname')", "COPY (SELECT 1) TO '/tmp/zhizao-sandbox.csv'",
    "ATTACH '/tmp/zhizao-sandbox.duckdb'", "INSTALL httpfs", "SET enable_external_access = true",
    "SELECT * FROM glob('/etc/*')", "LOAD httpfs"])
def test_the_sandbox_refuses_host_access_even_if_an_expression_got_through(statement):
    sb = sandbox()
    try:
        with pytest.raises(duckdb.Error):
            sb.execute(statement).fetchall()
        # nothing of the store is there
        assert sb.execute("SELECT count(*) FROM duckdb_tables()").fetchall() == [(0,)]
    finally:
        sb.close()
    assert not os.path.exists("/tmp/zhizao-sandbox.csv")


def test_mapping_expressions_run_outside_the_store(ws, tmp_path, monkeypatch):
    """Even an expression the parser check let through sees only the records being mapped."""
    import zhizao.ingest.mapping as M

    monkeypatch.setattr(M, "check_expression", lambda sql, *a, **k: frozenset({"t"}))
    m = Mapping(table="states", columns={"equipment_id": {"value": "M1"}, "state": {"value": "production"},
                                         "start": {"sql": "(SELECT min(equipment_id) FROM equipment)"}})
    (tmp_path / "s.csv").write_text("t\n2024-01-01T00:00:00Z\n")
    with pytest.raises(InputError, match="a mapping expression fails"):
        ws.ingest("states", tmp_path / "s.csv", mapping=m)
    m = Mapping(table="states", columns={"equipment_id": {"value": "M1"}, "state": {"value": "production"},
                                         "start": {"sql": "(SELECT content FROM read_text('/etc/hostname'))"}})
    with pytest.raises(InputError, match=r"disabled|Permission"):
        ws.ingest("states", tmp_path / "s.csv", mapping=m)
    # and the store's connection keeps its settings: later loads work
    assert ws.con.execute("SELECT current_setting('enable_external_access')").fetchall() == [(True,)]
    r = load(ws, tmp_path, "states", "equipment_id,start,state\nM1,2024-01-01T00:00:00Z,production\n")
    assert r.loaded == 1


def test_bundled_mappings_still_load(ws):
    from zhizao.ingest.mapping import bundled_mapping

    for name in ("eemeter-daily", "steel-industry-energy", "garment-productivity", "secom-labels"):
        assert load_mapping(bundled_mapping(name)).has_sql


# ------------------------------------------------------------------------------------------------- YAML
def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        levels.append(f"{cur}: &{cur} [" + ", ".join(f"*{prev}" for _ in range(9)) + "]")
    text = "table: states\n" + "\n".join(levels) + "\n"
    assert len(text) < 700
    (tmp_path / "bomb.yaml").write_text(text)
    with pytest.raises(MappingError, match="aliases"):
        load_mapping(tmp_path / "bomb.yaml")


def test_a_mapping_file_over_its_size_limit_is_refused(tmp_path):
    (tmp_path / "big.yaml").write_text("table: states\ndescription: " + "x" * 5000 + "\n")
    with pytest.raises(TooLarge):
        load_mapping(tmp_path / "big.yaml", max_bytes=4096)


@pytest.mark.parametrize("text", ["table: states\ncolumns: [a, b]", "table: states\nscale: {}\nread: [1]",
                                  "table: [states]", "table: production\nscale: {produced: .nan}",
                                  "table: production\nscale: {produced: .inf}",
                                  "table: states\ntimezone: [1]", "table: states\nread: {skip: many}",
                                  "table: states\ncolumns: {start: {sql: [1, 2]}}"])
def test_malformed_mapping_structures_are_mapping_errors(tmp_path, text):
    (tmp_path / "m.yaml").write_text(text)
    with pytest.raises(MappingError):
        load_mapping(tmp_path / "m.yaml")


def test_a_scoped_workspace_computes_one_tenant_alone_and_equally(ws, tmp_path):
    load(ws, tmp_path, "states", """
        equipment_id,start,end,state
        M1,2024-01-01T00:00:00Z,2024-01-01T08:00:00Z,production
        M2,2024-01-01T02:00:00Z,2024-01-01T03:00:00Z,setup
        B1,1970-01-02T00:00:00Z,1970-01-02T04:00:00Z,production
        B1,2024-01-01T00:00:00Z,2024-01-01T04:00:00Z,production
    """)
    whole = ws.kpi("equipment", "day")
    part = ws.scoped(["E1"])
    try:
        mine = part.kpi("equipment", "day")
        assert sorted(mine["equipment_id"].unique()) == ["M1", "M2"]
        pd.testing.assert_frame_equal(mine.reset_index(drop=True),
                                      whole[whole["equipment_id"].isin(["M1", "M2"])].reset_index(drop=True))
        # the other tenant's days since 1970 are not computed for this one
        assert len(mine) < 10 < len(whole)
    finally:
        part.close()


def test_a_scoped_workspace_reads_only_its_tenants_record_flags(ws, tmp_path):
    """The data-quality table reads the flags of stored records; a tenant's workspace read every tenant's (and
    dropped the others' afterwards): another tenant's many flagged records cost it their reading."""
    load(ws, tmp_path, "states", """
        equipment_id,start,end,state
        M1,2024-01-01T00:00:00Z,2024-01-01T08:00:00Z,production
        B1,2024-01-01T00:00:00Z,2024-01-01T04:00:00Z,production
    """)
    ws.con.execute("""INSERT INTO record_flags ("table", _source, _record, flag, "column", entity, ts)
                      SELECT 'states', 's', i + 10 * k, 'ambiguous_time_zone', 'start', e,
                             TIMESTAMPTZ '2024-01-01 01:00:00+00'
                      FROM range(3) t(i), (VALUES ('M1', 0), ('B1', 1), ('E2', 2), ('E1', 3)) v(e, k)""")
    whole = ws.data_quality("equipment", "day")
    part = ws.scoped(["E1"])
    try:
        assert sorted({e for (e,) in part.con.execute("SELECT entity FROM record_flags").fetchall()}) == ["E1", "M1"]
        mine = part.data_quality("equipment", "day")
        flagged = mine[(mine["check"] == "ambiguous_time_zone") & (mine["equipment_id"] == "M1")]
        assert flagged["value"].tolist() == [6]  # M1's own three and E1's three; none of E2's or B1's
        pd.testing.assert_frame_equal(mine.reset_index(drop=True),
                                      whole[whole["equipment_id"].isin(["M1", "M2"])].reset_index(drop=True))
    finally:
        part.close()
