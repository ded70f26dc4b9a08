"""zhizao.ingest.load_records (the vectorised path of live ingestion) against the file loader: the same rules,
quarantine reasons, details and stored values for every rule kind."""

import textwrap

import pytest

import zhizao
from zhizao.ingest import IngestError, MappingError, load_records, read_sql
from zhizao.ingest.load import _rules
from zhizao.ingest.mapping import Mapping, default_mapping

EQ = ("equipment_id,work_center,area,site,enterprise,timezone\n"
      "M1,L1,A1,S1,E1,Asia/Shanghai\nM2,L1,A1,S1,E1,Asia/Shanghai\nM3,L2,A2,S2,E1,Europe/Berlin\n")
ENT = "enterprise_id,name\nENT1,one\n"
PROJ = ("project_id,enterprise_id,type,start,commissioning_end\n"
        "P1,ENT1,digital_equipment,2024-01-01T00:00:00Z,2024-03-01T00:00:00Z\n")

#: per table: records that break every rule the table has (and valid ones; naive times where zones matter),
#: and a record with the key of a valid one but other values (loaded second, it conflicts with the stored one)
CASES = {
    "equipment": ("""
        equipment_id,name,timezone,digital,epc
        M4,press,Asia/Shanghai,true,10
        M5,,Mars/Olympus,,
        M6,,UTC,perhaps,
        M7,,UTC,,-3
        ,nameless,UTC,,
        M4,again,UTC,,
        M8,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,UTC,,
        M10,,UTC,,NaN
        M11,,UTC,,1e16
    """, "M4,renamed,Asia/Shanghai,true,10"),
    "states": ("""
        equipment_id,start,end,state,category
        M1,2024-01-01 08:00:00,,production,
        M1,,,production,
        M1,yesterday,,production,
        M1,2024-01-01T10:00:00+08:00,2024-01-01T09:00:00+08:00,setup,
        M9,2024-01-01T10:00:00+08:00,,production,
        M1,2024-01-01T11:00:00+08:00,,dancing,
        M1,2024-01-01T12:00:00+08:00,,special,not_a_category
        M1,2024-01-01 08:00:00,,production,
        M3,2024-01-01 08:00:00,2024-01-01 09:00:00 +02:00,setup,
        " M2 ",2024-01-01T08:00:00Z,,production,
        M1,2024-01-01 08:00:00,,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,
        M1,9999-12-31T23:59:59Z,,production,
        M1,2099-01-01T00:00:00Z,,production,
        M1,2024-01-02T08:00:00+26:00,,production,
        M3,2024-03-31 02:30:00,,production,
        M3,2024-10-27 02:30:00,,setup,
    """, "M1,2024-01-01 08:00:00,2024-01-01 09:00:00,production,"),
    "production": ("""
        equipment_id,start,end,order_id,produced,good,scrap,rework
        M1,2024-01-01 08:00:00,2024-01-01 09:00:00,W1,10,,1,1
        M1,,2024-01-01 10:00:00,W1,-1,,,
        M1,,2024-01-01 11:00:00,W1,10,9,2,
        M1,,2024-01-01 12:00:00,W1,ten,,,
        M1,,,W1,5,,,
        ,,2024-01-01 12:00:00,W1,5,,,
        M1,,2024-01-01 13:00:00,W1,5,-1,,
        M1,2024-01-01 15:00:00,2024-01-01 14:00:00,W2,1,,,
        M9,,2024-01-01 10:00:00,W1,1,,,
        M2,2024-01-01T08:00:00Z,2024-01-01T09:00:00Z,,3,3,,
        M2,2024-01-01T08:00:00Z,2024-01-01T09:00:00Z,,4,4,,
        M1,,2024-01-01 16:00:00,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,1,,,
        M1,,infinity,W1,1,,,
        M1,,2024-01-01 17:00:00,W1,NaN,,,
        M1,,2024-01-01 18:00:00,W1,1e309,,,
        M1,,2024-01-01 19:00:00,W1,1e16,,,
        M1,,2024-01-01T20:00:00-15:00,W1,1,,,
        M3,,2024-03-31 02:15:00,W1,1,,,
        M1,,2024-01-01 21:00:00,W1,1,,,
        M1,,2024-01-01 21:00:00,W1,1,,,
    """, "M1,2024-01-01 08:00:00,2024-01-01 09:00:00,W1,11,,1,1"),
    "calendar": ("""
        scope,start,end,kind,name
        S1,2024-01-01 08:00:00,2024-01-01 16:00:00,shift,early
        S1,2024-01-01T08:00:00+08:00,2024-01-01T16:00:00+08:00,party,
        XX,2024-01-01T08:00:00+08:00,2024-01-01T16:00:00+08:00,shift,
        S2,2024-01-02 08:00:00,2024-01-02 16:00:00,shift,
        E1,2024-01-03 08:00:00,2024-01-03 16:00:00,holiday,
        L2,2024-01-04 08:00:00,2024-01-04 07:00:00,shift,
        ,2024-01-05 08:00:00,2024-01-05 16:00:00,shift,
        S1,never,2024-01-05 16:00:00,shift,
        S2,2024-01-02 08:00:00,2024-01-02 16:00:00,shift,again
        S1,2024-01-06 08:00:00,2024-01-06 16:00:00,shift,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
        S1,1677-01-01 08:00:00,2024-01-06 16:00:00,shift,
        S1,2024-01-07T08:00:00+14:30,2024-01-07T16:00:00+08:00,shift,
        S2,2024-03-31 02:00:00,2024-03-31 06:00:00,shift,
    """, "S1,2024-01-01 08:00:00,2024-01-01 16:00:00,shift,renamed"),
    "energy": ("""
        meter_id,equipment_id,scope,start,end,carrier,quantity,unit,reading
        E1,M1,,2024-01-01 08:00:00,2024-01-01 09:00:00,electricity,5,kWh,
        E1,M1,,2024-01-01T09:00:00+08:00,2024-01-01T10:00:00+08:00,electricity,5,litres,
        E1,M1,,2024-01-01T10:00:00+08:00,2024-01-01T11:00:00+08:00,electricity,-5,kWh,
        E1,M1,,,2024-01-01T12:00:00+08:00,electricity,100,kWh,
        E2,M1,,,2024-01-01T12:00:00+08:00,electricity,100,kWh,cumulative
        E3,M1,,,2024-01-01T12:00:00+08:00,electricity,100,kWh,sometimes
        E4,,,2024-01-01T10:00:00+08:00,2024-01-01T11:00:00+08:00,electricity,1,kWh,
        E5,,S2,2024-01-01 10:00:00,2024-01-01 11:00:00,electricity,1,kWh,
        E6,,ZZ,2024-01-01 10:00:00,2024-01-01 11:00:00,electricity,1,kWh,
        E7,M1,,2024-01-01T11:00:00+08:00,2024-01-01T10:00:00+08:00,electricity,1,kWh,
        E8,M1,,2024-01-01T10:00:00+08:00,2024-01-01T11:00:00+08:00,electricity,lots,kWh,
        E9,M9,,2024-01-01T10:00:00+08:00,2024-01-01T11:00:00+08:00,electricity,1,kWh,
        E5,,S2,2024-01-01 10:00:00,2024-01-01 11:00:00,electricity,2,kWh,
        xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,M1,,2024-01-01T10:00:00+08:00,2024-01-01T11:00:00+08:00,electricity,1,kWh,
        E10,M1,,2024-01-01T10:00:00+08:00,2262-01-01T00:00:00Z,electricity,1,kWh,
        E11,M1,,2024-01-01T10:00:00+08:00,2024-01-01T11:00:00+08:00,electricity,NaN,kWh,
        E12,M1,,,2024-01-01T11:00:00+08:00,electricity,1e300,kWh,cumulative
        E13,M1,,2024-01-01T10:00:00+1500,2024-01-01T11:00:00+08:00,electricity,1,kWh,
        E14,,S2,2024-03-31 01:45:00,2024-03-31 02:15:00,electricity,1,kWh,
    """, "E1,M1,,2024-01-01 08:00:00,2024-01-01 09:00:00,electricity,6,kWh,"),
    "quality": ("""
        equipment_id,scope,ts,unit_id,result,first_pass,value,lsl,usl
        M1,,2024-01-01 08:00:00,U1,pass,true,1.5,,
        M1,,2024-01-01 08:01:00,U2,maybe,,,,
        M1,,2024-01-01 08:02:00,U3,fail,sometimes,,,
        ,,2024-01-01 08:03:00,U4,pass,,,,
        ,S2,2024-01-01 08:04:00,U5,fail,,x,,
        M1,,2024-01-01 08:05:00,U6,pass,,,,
        ,ZZ,2024-01-01 08:05:00,U7,pass,,,,
        M1,,2024-01-01 08:00:00,U1,fail,,,,
        M1,,2024-01-01 08:06:00,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,pass,,,,
        M1,,0001-01-01 00:00:00,U20,pass,,,,
        M1,,2024-01-01T08:10:00+99:00,U21,pass,,,,
        ,S2,2024-03-31 02:45:00,U22,pass,,,,
        M1,,2024-01-01 08:11:00,U23,pass,,inf,,
        M1,,2024-01-01 08:12:00,U24,pass,,1e20,,
        M1,,2024-01-01 08:13:00,U25,pass,,1,2,1
        M1,,2024-01-01 08:14:00,U26,pass,,1.5,1,1
        M1,,2024-01-01 09:00:00,,pass,,,,
        M1,,2024-01-01 09:00:00,,pass,,,,
        M1,,2024-01-01 09:00:00,,fail,,,,
    """, "M1,,2024-01-01 08:00:00,U1,fail,true,1.5,,"),
    "labour": ("""
        scope,date,attendance_hours,work_hours
        L1,2024-01-01,80,70
        L1,2024-01-02,-8,
        L9,2024-01-03,8,
        L1,2024-01-04,,
        L1,2024-01-05,eight,
        L1,2024-01-01,80,71
        xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,2024-01-06,8,
        L1,2024-01-06,NaN,
        L1,2024-01-07,1e16,
        L1,2150-01-01,8,
    """, "L1,2024-01-01,81,70"),
    "variables": ("""
        scope,start,end,name,value,level
        S1,2024-01-01 00:00:00,,hdd,3.5,
        S1,2024-01-01 00:00:00,,load,,
        S1,2024-01-02 00:00:00,,load,,high
        S1,2024-01-03 00:00:00,2024-01-02 00:00:00,hdd,1,
        S1,2024-01-04 00:00:00,,hdd,warm,
        ZZ,2024-01-04 00:00:00,,hdd,1,
        S1,2024-01-01 00:00:00,,hdd,3.5,
        S1,2024-02-01 00:00:00,,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,1,
        S1,2024-02-02 00:00:00,,hdd,NaN,
        S1,2024-02-03 00:00:00,,hdd,1e16,
        S1,2100-01-02 00:00:00,,hdd,1,
        S1,2024-01-05T00:00:00+15:00,,hdd,1,
        S2,2024-03-31 02:30:00,,hdd,1,
    """, "S1,2024-01-01 00:00:00,,hdd,4.5,"),
    "products": ("""
        product_id,equipment_id,pri,standard_minutes
        P1,M1,1.5,2
        P2,M9,1,
        P3,,-1,
        ,,1,
        P5,,x,
        P1,M1,1.5,3
        xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,,1,
        P6,,NaN,
        P7,,1e16,
    """, "P1,M1,2.5,2"),
    "enterprises": ("""
        enterprise_id,name
        ENT2,two
        ,none
        ENT2,again
        ENT3,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
    """, "ENT2,renamed"),
    "projects": ("""
        project_id,enterprise_id,type,scope,start,commissioning_end,investment
        P2,ENT1,digital_equipment,,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z,
        P3,ENT9,digital_equipment,,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z,
        P4,ENT1,magic,,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z,
        P5,ENT1,digital_equipment,,2024-03-01T00:00:00Z,2024-02-01T00:00:00Z,
        P6,ENT1,digital_equipment,ZZ,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z,
        P7,ENT1,digital_equipment,S1,soon,2024-02-01T00:00:00Z,
        P8,ENT1,digital_equipment,S1,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z,-5
        ,ENT1,digital_equipment,,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z,
        P2,ENT1,new_mode,,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z,
        xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,ENT1,digital_equipment,,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z,
        P9,ENT1,digital_equipment,,2101-01-01T00:00:00Z,2102-01-01T00:00:00Z,
        P10,ENT1,digital_equipment,,2024-01-01T00:00:00+16:00,2024-02-01T00:00:00Z,
        P11,ENT1,digital_equipment,,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z,NaN
        P12,ENT1,digital_equipment,,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z,1e16
        P13,ENT1,digital_equipment,S2,2024-03-31 02:30:00,2024-04-01T00:00:00Z,
    """, "P2,ENT1,new_mode,S1,2024-01-01T00:00:00Z,2024-02-01T00:00:00Z,"),
    "designations": ("""
        enterprise_id,project_id,scope,designation,level,date
        ENT1,P1,,smart_factory,city,2024-05-01
        ENT1,P9,,smart_factory,,2024-05-01
        ENT9,,,smart_factory,,2024-05-01
        ENT1,P1,,best_in_show,,2024-05-01
        ENT1,P1,ZZ,smart_factory,,2024-05-01
        ENT1,P1,,digital_workshop,,May
        ENT1,P1,,,,2024-05-01
        ENT1,P1,,smart_factory,province,2024-05-01
        ENT1,P1,,smart_factory,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,2024-05-03
        ENT1,P1,,smart_factory,,1960-01-01
        ENT1,P1,,smart_factory,,2024-05-02T00:00:00+15:00
        ENT1,P1,S2,smart_factory,,2024-03-31 02:30:00
    """, "ENT1,P1,,smart_factory,nation,2024-05-01"),
    "development_cycles": ("""
        enterprise_id,product_id,design_start,release
        ENT1,X1,2024-01-01,2024-06-01
        ENT1,X2,2024-06-01,2024-01-01
        ENT9,X3,2024-01-01,2024-06-01
        ENT1,X4,later,2024-06-01
        ENT1,,2024-01-01,2024-06-01
        ENT1,X1,2024-01-01,2024-07-01
        ENT1,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx,2024-01-01,2024-06-01
        ENT1,X5,1900-01-01,2024-06-01
        ENT1,X6,2024-01-01T00:00:00+15:00,2024-06-01
    """, "ENT1,X1,2024-01-01,2024-08-01"),
    "costs": ("""
        scope,start,end,category,amount,currency
        S1,2024-01-01,2024-02-01,energy,100,CNY
        S1,2024-02-01,2024-01-01,energy,100,CNY
        ZZ,2024-01-01,2024-02-01,energy,100,CNY
        S1,2024-01-01,2024-02-01,labour,much,CNY
        S1,2024-01-01,2024-02-01,,1,CNY
        S1,2024-01-01,2024-02-01,energy,200,CNY
        S1,2024-03-01,2024-04-01,energy,1,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
        S1,2024-04-01,2024-05-01,energy,NaN,CNY
        S1,2024-05-01,2024-06-01,energy,1e16,CNY
        S1,2024-05-01,2100-06-01,material,1,CNY
        S1,2024-06-01T00:00:00+15:00,2024-07-01,energy,1,CNY
        S2,2024-03-31 02:30:00,2024-04-01,labour,1,CNY
    """, "S1,2024-01-01,2024-02-01,energy,150,CNY"),
}
#: rules a table's case cannot break (labour's date alias always gives end = start + 1 day)
UNREACHABLE = {"labour": {"end_not_after_start", "invalid_offset", "nonexistent_local_time"},
               "development_cycles": {"nonexistent_local_time"}}


def _store(path):
    ws = zhizao.connect(path)
    for table, text, name in (("equipment", EQ, "eq.csv"), ("enterprises", ENT, "ent.csv"),
                              ("projects", PROJ, "proj.csv")):
        f = path.parent / "setup" / name
        f.parent.mkdir(exist_ok=True)
        f.write_text(text)
        ws.ingest(table, f)
    return ws


def _by_file(ws, table, path, mapping):
    return ws.ingest(table, path, mapping=mapping)[0]


def _by_records(ws, table, path, mapping):
    """The file's rows as a relation of text columns, through load_records in one transaction."""
    m = mapping or default_mapping(table)
    con = ws.con
    src = read_sql(path, m)
    cols = list(con.sql(src).columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE rel AS SELECT row_number() OVER () AS _rec, * FROM ({src})")
    con.execute("BEGIN TRANSACTION")
    try:
        r = load_records(con, table, "rel", cols, source=path.name, mapping=mapping, record="_rec",
                         quarantine_line="_rec + 1", what="file")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return r


def _state(ws, table):
    cols = ", ".join(f'"{c}"' for c in zhizao.schema.TABLES[table].names)
    return (ws.con.execute(f'SELECT {cols}, _source, _record FROM "{table}" ORDER BY _source, _record').fetchall(),
            ws.con.execute('SELECT "table", source, record, line, rule, detail, raw FROM quarantine '
                           'ORDER BY source, record').fetchall())


@pytest.mark.parametrize("table", [t for t in CASES if t not in zhizao.schema.REGISTER_TABLES])
def test_load_records_gives_the_file_loaders_rules_details_and_values(tmp_path, table, monkeypatch):
    """(The register tables load through the register, zhizao.portfolio.register, with rules of their own:
    tests/test_register.py.)"""
    monkeypatch.setenv("ZHIZAO_LIMIT_MAX_FIELD_BYTES", "40")  # the cases' long fields have 50 characters
    text, conflict = CASES[table]
    text = textwrap.dedent(text).lstrip()
    a, b = _store(tmp_path / "a.duckdb"), _store(tmp_path / "b.duckdb")
    try:
        # again with an extra column (other bytes): identical records are skipped; then one with a stored key
        # and other values
        head, *rows = text.splitlines()
        again = "\n".join([head + ",note"] + [r + ",x" for r in rows]) + "\n"
        for name, body in (("first.csv", text), ("second.csv", again), ("third.csv", head + "\n" + conflict + "\n")):
            f = tmp_path / name
            f.write_text(body)
            ra, rb = _by_file(a, table, f, None), _by_records(b, table, f, None)
            assert (ra.loaded, ra.quarantined, ra.skipped) == (rb.loaded, rb.quarantined, rb.skipped), name
            assert _state(a, table) == _state(b, table), name
            assert name != "second.csv" or ra.skipped > 0
        seen = {r for (_, _, _, _, r, _, _) in _state(a, table)[1]}
        # every rule of the table was broken by its case
        expected = {rule for rule, _, _ in _rules(table, "'UTC'")} | {"duplicate", "conflicts_with_stored"}
        assert seen == expected - UNREACHABLE.get(table, set())
    finally:
        a.close()
        b.close()


def test_a_mapping_with_sql_scale_time_zone_and_states_applies_alike(tmp_path):
    m = Mapping(table="states", columns={"equipment_id": {"column": "machine"}, "start": {"sql": "ts || ':00'"},
                                         "state": {"column": "code"}},
                timezone="Europe/Berlin", states={"R": "production", "S": "setup"})
    text = "machine,ts,code\nM1,2024-01-01 08:00,R\nM1,2024-01-01 09:00,S\nM1,2024-01-01 10:00,X\nM1,bad,R\n"
    a, b = _store(tmp_path / "a.duckdb"), _store(tmp_path / "b.duckdb")
    try:
        f = tmp_path / "m.csv"
        f.write_text(text)
        _by_file(a, "states", f, m)
        _by_records(b, "states", f, m)
        assert _state(a, "states") == _state(b, "states")
        assert [r[4] for r in _state(b, "states")[1]] == ["unmapped_state", "unparseable"]
        # a mapping expression that fails on the records: IngestError naming the mapping, nothing stored
        bad = Mapping(table="states", columns={**m.columns, "start": {"sql": "CAST(ts AS INTEGER)"}},
                      source="bad.yaml")
        with pytest.raises(IngestError, match=r"bad\.yaml: a mapping expression fails on file"):
            _by_records(b, "states", f, bad)
        with pytest.raises(MappingError, match="nope"):
            _by_records(b, "states", f, Mapping(table="states", columns={"state": {"column": "nope"}}))
        with pytest.raises(IngestError, match="no column for required state"):
            f2 = tmp_path / "n.csv"
            f2.write_text("equipment_id,start\nM1,2024-01-01T00:00:00Z\n")
            _by_records(b, "states", f2, None)
        assert _state(b, "states")[0] == _state(a, "states")[0]
    finally:
        a.close()
        b.close()


def test_load_records_rejects_an_unknown_table(tmp_path):
    ws = _store(tmp_path / "a.duckdb")
    try:
        with pytest.raises(IngestError, match="unknown table"):
            load_records(ws.con, "nope", "x", [], source="s")
    finally:
        ws.close()
