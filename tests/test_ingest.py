"""Ingestion: validation rules with the quarantine, atomic and idempotent loads, mapping files."""

import json
import textwrap

import pandas as pd
import pytest

import zhizao
from canonical import load
from zhizao.ingest import IngestError, MappingError, load_mapping
from zhizao.store import row_count

EQ = "equipment_id,work_center,site,timezone\nM1,L1,S1,Asia/Shanghai\nM2,L1,S1,Asia/Shanghai\n"


@pytest.fixture
def ws(tmp_path):
    (tmp_path / "eq.csv").write_text(EQ)
    w = zhizao.connect(tmp_path / "z.duckdb")
    w.ingest("equipment", tmp_path / "eq.csv")
    yield w
    w.close()


def rules(ws):
    q = ws.quarantine()
    return list(zip(q["record"], q["rule"]))


def test_each_rule_quarantines_its_records_and_valid_ones_load(ws, tmp_path):
    r = load(ws, tmp_path, "states", """
        equipment_id,start,end,state
        M1,2024-01-01T08:00:00+08:00,,production
        M1,,,production
        M1,yesterday,,production
        M1,2024-01-01T10:00:00+08:00,2024-01-01T09:00:00+08:00,setup
        M9,2024-01-01T10:00:00+08:00,,production
        M1,2024-01-01T11:00:00+08:00,,dancing
        M1,2024-01-01T08:00:00+08:00,,production
        M2,2024-01-01T08:00:00+08:00,,unplanned_downtime
    """)
    assert (r.loaded, r.quarantined) == (2, 6)
    assert rules(ws) == [(2, "missing_field"), (3, "unparseable"), (4, "end_not_after_start"),
                         (5, "unknown_equipment"), (6, "unmapped_state"), (7, "duplicate")]
    q = ws.quarantine()
    assert list(q["line"]) == [3, 4, 5, 6, 7, 8]  # the header is line 1
    assert (q["source"] == "f.csv").all()
    assert "start = yesterday" in q.iloc[1]["detail"]
    assert json.loads(q.iloc[3]["raw"])["equipment_id"] == "M9"


def test_quantity_rules(ws, tmp_path):
    r = load(ws, tmp_path, "production", """
        equipment_id,end,produced,good,scrap,rework
        M1,2024-01-01T09:00:00+08:00,10,,1,1
        M1,2024-01-01T10:00:00+08:00,-1,,,
        M1,2024-01-01T11:00:00+08:00,10,9,2,
        M1,2024-01-01T12:00:00+08:00,ten,,,
        M1,,5,,,
    """)
    assert r.loaded == 1
    assert [x[1] for x in rules(ws)] == ["negative_quantity", "counts_exceed_produced", "unparseable", "missing_field"]


def test_codes_outside_their_lists_are_invalid(ws, tmp_path):
    load(ws, tmp_path, "calendar", """
        scope,start,end,kind
        S1,2024-01-01T08:00:00+08:00,2024-01-01T16:00:00+08:00,shift
        S1,2024-01-01T08:00:00+08:00,2024-01-01T16:00:00+08:00,party
        XX,2024-01-01T08:00:00+08:00,2024-01-01T16:00:00+08:00,shift
    """)
    load(ws, tmp_path, "energy", """
        meter_id,equipment_id,start,end,carrier,quantity,unit
        E1,M1,2024-01-01T08:00:00+08:00,2024-01-01T09:00:00+08:00,electricity,5,kWh
        E1,M1,2024-01-01T09:00:00+08:00,2024-01-01T10:00:00+08:00,electricity,5,litres
    """, name="e.csv")
    assert [x[1] for x in rules(ws)] == ["invalid_value", "unknown_equipment", "invalid_value"]


def test_naive_times_are_in_the_equipment_time_zone(ws, tmp_path):
    load(ws, tmp_path, "states", """
        equipment_id,start,state
        M1,2024-01-01 08:00:00,production
    """)
    t = ws.table("states")["start"].iloc[0]
    assert t == pd.Timestamp("2024-01-01T00:00:00Z")  # 08:00 in Asia/Shanghai


def test_loading_twice_changes_nothing(ws, tmp_path):
    text = """
        equipment_id,start,state
        M1,2024-01-01T08:00:00+08:00,production
        M1,2024-01-01T08:00:00+08:00,production
    """
    r1 = load(ws, tmp_path, "states", text)
    r2 = load(ws, tmp_path, "states", text)
    assert (r1.loaded, r1.quarantined) == (1, 1)
    # a file with rejected records is read again (idempotent per record, not per file): nothing changes
    assert not r2.already_loaded and (r2.loaded, r2.skipped, r2.quarantined) == (0, 1, 1)
    assert row_count(ws.con, "states") == 1 and row_count(ws.con, "quarantine") == 1
    assert load(ws, tmp_path, "states", "equipment_id,start,state\nM1,2024-01-02T08:00:00+08:00,production\n",
                name="ok.csv").loaded == 1
    assert load(ws, tmp_path, "states", "equipment_id,start,state\nM1,2024-01-02T08:00:00+08:00,production\n",
                name="ok.csv").already_loaded  # a file loaded whole is not read again
    # the same records under another file name: skipped as already stored, not quarantined again
    r3 = load(ws, tmp_path, "states", text + "        M1,2024-01-01T09:00:00+08:00,setup\n", name="g.csv")
    assert (r3.loaded, r3.skipped, r3.quarantined) == (1, 1, 1)  # the in-file duplicate is quarantined
    # same key with other values conflicts with what is stored
    r4 = load(ws, tmp_path, "products", "product_id,pri\nP,1.5\n", name="p1.csv")
    r5 = load(ws, tmp_path, "products", "product_id,pri\nP,2.0\n", name="p2.csv")
    assert r4.loaded == 1 and r5.quarantined == 1
    assert ws.quarantine().iloc[-1]["rule"] == "conflicts_with_stored"


def test_a_fixed_rejection_loads_on_reload(ws, tmp_path):
    """Idempotent per record, not per file: after the cause of a rejection is fixed (the equipment is
    registered), the same file loads the records it could not load before, and its stale quarantine entries
    are gone."""
    text = "equipment_id,start,state\nNEW1,2024-03-01T08:00:00+08:00,production\nM1,2024-03-01T08:00:00+08:00,setup\n"
    r1 = load(ws, tmp_path, "states", text, name="later.csv")
    assert (r1.loaded, r1.quarantined) == (1, 1)
    assert ws.quarantine().query("source == 'later.csv'")["rule"].tolist() == ["unknown_equipment"]
    load(ws, tmp_path, "equipment", "equipment_id,timezone\nNEW1,Asia/Shanghai\n", name="eq-new.csv")
    r2 = load(ws, tmp_path, "states", text, name="later.csv")
    assert (r2.loaded, r2.skipped, r2.quarantined, r2.already_loaded) == (1, 1, 0, False)
    assert ws.quarantine().query("source == 'later.csv'").empty
    assert load(ws, tmp_path, "states", text, name="later.csv").already_loaded


def test_a_failing_load_leaves_nothing_half_written(ws, tmp_path, monkeypatch):
    import zhizao.ingest.load as L

    calls = {"n": 0}
    real = L._load

    def crash(*a, **k):
        real(*a, **k)  # everything inserted ...
        raise KeyboardInterrupt  # ... then Ctrl-C before the commit

    monkeypatch.setattr(L, "_load", crash)
    with pytest.raises(KeyboardInterrupt):
        load(ws, tmp_path, "states", "equipment_id,start,state\nM1,2024-01-01T08:00:00Z,production\nM1,x,production\n")
    assert row_count(ws.con, "states") == 0 and row_count(ws.con, "quarantine") == 0
    assert row_count(ws.con, "loads") == 1  # only the equipment file
    monkeypatch.setattr(L, "_load", real)
    r = load(ws, tmp_path, "states", "equipment_id,start,state\nM1,2024-01-01T08:00:00Z,production\nM1,x,production\n")
    assert (r.loaded, r.quarantined) == (1, 1)
    del calls


def test_unreadable_file_and_missing_columns_raise(ws, tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        ws.ingest("states", tmp_path / "nope.csv")
    (tmp_path / "bin.parquet").write_bytes(b"\x00\x01garbage")
    with pytest.raises(IngestError, match="cannot read"):
        ws.ingest("states", tmp_path / "bin.parquet")
    (tmp_path / "cols.csv").write_text("machine,when\nM1,2024\n")
    with pytest.raises(IngestError, match="no column for required equipment_id, start, state"):
        ws.ingest("states", tmp_path / "cols.csv")


def test_parquet_files_load_like_csv(ws, tmp_path):
    df = pd.DataFrame({"equipment_id": ["M1"], "start": [pd.Timestamp("2024-01-01T00:00:00Z")],
                       "state": ["production"]})
    df.to_parquet(tmp_path / "s.parquet")
    r = ws.ingest("states", tmp_path / "s.parquet")[0]
    assert r.loaded == 1
    assert ws.table("states")["start"].iloc[0] == pd.Timestamp("2024-01-01T00:00:00Z")


def test_a_mapping_brings_a_new_format_without_code(ws, tmp_path):
    (tmp_path / "m.yaml").write_text(textwrap.dedent("""
        table: states
        timezone: Asia/Shanghai
        read: {delimiter: ";"}
        columns:
          equipment_id: {sql: "upper(machine)"}
          start: {sql: "strptime(stamp, '%d.%m.%Y %H:%M')"}
          state: code
          reason: {value: logged}
        states:
          "1": production
          "2": unplanned_downtime
    """))
    (tmp_path / "raw.csv").write_text("machine;stamp;code\nm1;01.01.2024 08:00;1\nm1;01.01.2024 09:30;2\nm1;01.01.2024 10:00;7\n")
    r = ws.ingest("states", tmp_path / "raw.csv", mapping=tmp_path / "m.yaml")[0]
    assert (r.loaded, r.quarantined) == (2, 1)
    st = ws.table("states").sort_values("start")
    assert list(st["category"]) == ["production", "unplanned_downtime"]
    assert st["start"].iloc[0] == pd.Timestamp("2024-01-01T00:00:00Z") and (st["reason"] == "logged").all()
    assert ws.quarantine().iloc[0]["rule"] == "unmapped_state"


@pytest.mark.parametrize("text,match", [
    ("columns: {}", "needs a 'table'"),
    ("table: widgets", "unknown table"),
    ("table: states\ncolumns: {colour: x}", "not a column"),
    ("table: states\nstates: {RUN: running}", "not a state category"),
    ("table: [", "cannot read"),
    # YAML reads 2024 as a number: it used to be looked up as is and fail as "no sheet 2024 (it has 2024)"
    ("table: equipment\nread: {sheet: 2024}", "read.sheet must be a text"),
])
def test_bad_mapping_files_are_rejected_clearly(tmp_path, text, match):
    (tmp_path / "m.yaml").write_text(text)
    with pytest.raises(MappingError, match=match):
        load_mapping(tmp_path / "m.yaml")


def test_an_empty_read_section_is_no_read_options(tmp_path):
    # "read:" with nothing under it is YAML null, as an empty columns: or states: is, and means no options
    (tmp_path / "m.yaml").write_text("table: equipment\nread:\ncolumns:\n")
    m = load_mapping(tmp_path / "m.yaml")
    assert (m.read, m.columns) == ({}, {})
    (tmp_path / "m.yaml").write_text("table: equipment\nread: {sheet: null}\n")  # no sheet: the default one
    assert load_mapping(tmp_path / "m.yaml").read == {"sheet": None}


def test_a_date_alone_is_local_midnight_not_an_offset(ws, tmp_path):
    # "2024-02-01" ends in "-01", which must not be read as a UTC offset of -01:00
    load(ws, tmp_path, "labour", """
        scope,date,attendance_hours
        L1,2024-02-01,80
    """)
    lab = ws.table("labour")
    assert lab["start"].iloc[0] == pd.Timestamp("2024-01-31T16:00:00Z")  # midnight in Asia/Shanghai
    assert lab["end"].iloc[0] == pd.Timestamp("2024-02-01T16:00:00Z")
    load(ws, tmp_path, "states", """
        equipment_id,start,state
        M1,2024-02-01 08:00:00-01:00,production
        M1,2024-02-01T10:00:00Z,setup
    """, name="s.csv")
    st = sorted(ws.table("states")["start"])
    assert st == [pd.Timestamp("2024-02-01T09:00:00Z"), pd.Timestamp("2024-02-01T10:00:00Z")]
