"""The living register: office files in every encoding, vocabularies, register-only data, updates with their
differences, withdrawal, the audit log and any record as it was on a date, register dates that never move a
day, filters on several values, programme targets.

Expected values are written by hand from the small files below.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import zhizao
from zhizao.cli.main import app as cli_app
from zhizao.errors import Conflict, InputError, NotFound, Unsupported
from zhizao.portfolio import audit
from zhizao.portfolio.dates import today
from zhizao.portfolio.register import (
    create_record,
    get_record,
    history,
    record_as_of,
    snapshot,
    status_history,
    update_record,
    withdraw_record,
)
from zhizao.portfolio.registry import projects as register_projects
from zhizao.portfolio.stats import programme_statistics

ENT = ("企业编号 (enterprise_id),企业名称,所属行业,所在区县,所在园区\n"
       "E1,渝鑫汽车零部件有限公司,汽车制造业,璧山区,西部科学城璧山高新区\n"
       "E2,华宇电子科技有限公司,C39,Jiulongpo,西部科学城九龙坡园区\n")
PRJ = ("project_id,enterprise_id,name,type,scope,level,start,commissioning_end,总投资（万元）,status,status_date\n"
       "P1,E1,冲压车间数字化改造,数字化装备应用,E1-WS1,市级,2021-01-01,2021-06-30,1200,已立项,2020-12-15\n"
       "P2,E2,SMT车间集成,system_integration,E2-WS1,district,2020-12-31T16:00:00Z,2021-09-30,850.5,in progress,"
       "2021-01-04\n")


@pytest.fixture
def ws(tmp_path):
    w = zhizao.connect(tmp_path / "r.duckdb")
    yield w
    w.close()


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def load(ws, table, path, **kw):
    return ws.ingest(table, path, **kw)[0]


def base(ws, tmp_path, encoding="utf-8", suffix=""):
    e = load(ws, "enterprises", write(tmp_path / f"ent{suffix}.csv", ENT, encoding))
    p = load(ws, "projects", write(tmp_path / f"prj{suffix}.csv", PRJ, encoding))
    return e, p


# -- input people have -----------------------------------------------------------------------------------

EXPECTED_PROJECTS = [
    ("P1", "E1", "冲压车间数字化改造", "digital_equipment", "E1-WS1", "municipal", dt.date(2021, 1, 1),
     dt.date(2021, 6, 30), 12_000_000.0, "approved", dt.date(2020, 12, 15)),
    ("P2", "E2", "SMT车间集成", "system_integration", "E2-WS1", "district", dt.date(2021, 1, 1),
     dt.date(2021, 9, 30), 8_505_000.0, "in_progress", dt.date(2021, 1, 4)),
]


def stored_projects(ws):
    cols = ["project_id", "enterprise_id", "name", "type", "scope", "level", "start", "commissioning_end",
            "investment", "status", "status_date"]
    return [tuple(r) for r in ws.con.execute(f"SELECT {', '.join(cols)} FROM projects ORDER BY 1").fetchall()]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_office_csv_in_every_encoding_loads_the_same_records(tmp_path, encoding):
    w = zhizao.connect(tmp_path / f"{encoding}.duckdb")
    try:
        e, p = base(w, tmp_path, encoding)
        assert (e.loaded, e.quarantined, p.loaded, p.quarantined) == (2, 0, 2, 0), (e.rejected, p.rejected)
        assert stored_projects(w) == EXPECTED_PROJECTS
        # labels became codes: the district and industry vocabularies
        assert w.con.execute("SELECT enterprise_id, industry, district FROM enterprises ORDER BY 1").fetchall() \
            == [("E1", "36", "bishan"), ("E2", "39", "jiulongpo")]
    finally:
        w.close()


def test_gb18030_only_characters_and_shop_floor_tables(ws, tmp_path):
    # 㐀 (U+3400) is in GB18030 but not in GBK; a states file saved by Excel in GB18030 loads too
    base(ws, tmp_path)
    r = load(ws, "enterprises", write(tmp_path / "e2.csv", "enterprise_id,name\nE3,㐀记机械厂\n", "gb18030"))
    assert r.loaded == 1 and get_record(ws.con, "enterprises", "E3")["name"] == "㐀记机械厂"
    load(ws, "equipment", write(tmp_path / "eq.csv", "equipment_id,work_center,enterprise,timezone\n"
                                                    "冲压机1,E1-WS1,E1,Asia/Shanghai\n", "gbk"))
    r = load(ws, "states", write(tmp_path / "st.csv", "equipment_id,start,end,state,reason\n"
                                                      "冲压机1,2021-03-01T08:00:00,2021-03-01T09:00:00,production,换模\n",
                                 "gbk"))
    assert (r.loaded, r.quarantined) == (1, 0)
    assert ws.con.execute("SELECT reason FROM states").fetchone()[0] == "换模"


def test_text_in_no_supported_encoding_is_refused_with_its_offset(ws, tmp_path):
    p = tmp_path / "bad.csv"
    p.write_bytes(b"enterprise_id,name\nE1,\x81\x20\xff\n")
    with pytest.raises(Unsupported, match=r"neither UTF-8 nor GBK/GB18030 .* offset 22"):
        load(ws, "enterprises", p)


def test_xlsx_and_zhizaos_own_export_load_back(ws, tmp_path):
    import openpyxl

    base(ws, tmp_path)
    wb = openpyxl.Workbook()
    sh = wb.active
    sh.append(["enterprise_id", "name", "industry", "district"])
    sh.append(["E9", "Excel 企业", 36, "九龙坡区"])  # a numeric cell for the division code
    sh.append([None, None, None, None])  # an empty row is skipped
    wb.save(tmp_path / "ent.xlsx")
    r = load(ws, "enterprises", tmp_path / "ent.xlsx")
    assert (r.loaded, r.quarantined) == (1, 0)
    assert get_record(ws.con, "enterprises", "E9")["industry"] == "36"
    # zhizao's own export of the project list, edited in Excel and loaded back with --update
    ws.close()
    db = str(tmp_path / "r.duckdb")
    out = tmp_path / "projects.xlsx"
    res = CliRunner().invoke(cli_app, ["project", "list", "--db", db, "--format", "xlsx", "-o", str(out)])
    assert res.exit_code == 0, res.output
    wb = openpyxl.load_workbook(out)
    sh = wb.active
    head = [c.value for c in sh[1]]
    sh.cell(2, head.index("项目名称") + 1, "冲压车间数字化改造（二期）")  # the labelled sheet (zh)
    wb.save(out)
    w = zhizao.connect(db)
    try:
        r = load(w, "projects", out, update=True, reason="second phase")
        assert (r.loaded, r.updated, r.skipped, r.quarantined) == (0, 1, 1, 0), r.rejected
        assert r.changes == [("P1", {"name": ("冲压车间数字化改造", "冲压车间数字化改造（二期）")})]
    finally:
        w.close()


def test_import_template_has_drop_downs_and_loads_back(ws, tmp_path):
    import openpyxl

    base(ws, tmp_path)
    ws.close()
    db = str(tmp_path / "r.duckdb")
    out = tmp_path / "t.xlsx"
    res = CliRunner().invoke(cli_app, ["register", "template", "-o", str(out), "--db", db])
    assert res.exit_code == 0, res.output
    wb = openpyxl.load_workbook(out)
    assert {"说明 README", "vocabularies", "enterprises", "projects", "designations"} <= set(wb.sheetnames)
    sh = wb["projects"]
    head = [c.value for c in sh[1]]
    assert head[0] == "项目编号* (project_id)" and "总投资（万元） (investment_10k)" in head
    lists = {str(dv.sqref): dv.formula1 for dv in sh.data_validations.dataValidation}
    type_col = openpyxl.utils.get_column_letter(head.index("项目类型* (type)") + 1)
    assert lists[f"{type_col}2:{type_col}5000"].startswith("vocabularies!$")
    # the pre-filled rows carry Chinese labels; loading the template back changes nothing
    assert sh.cell(2, head.index("项目类型* (type)") + 1).value == "数字化装备应用"
    w = zhizao.connect(db)
    try:
        r = load(w, "projects", out)
        assert (r.loaded, r.skipped, r.quarantined) == (0, 2, 0), r.rejected
    finally:
        w.close()


def test_the_defect_rate_column_is_headed_in_miits_word_and_the_old_heading_still_loads(ws, tmp_path):
    """产品不良品率, not 产品不良率 (docs/glossary.md): the import template's heading; a sheet filled in with the
    earlier heading 申报产品不良率降低 loads the same column."""
    from zhizao.portfolio.register import HEADERS

    assert HEADERS["projects"]["declared_defect_rate"] == "申报产品不良品率降低"
    load(ws, "enterprises", write(tmp_path / "ent.csv", ENT))
    for k, heading in enumerate(("申报产品不良品率降低", "申报产品不良率降低")):
        p = write(tmp_path / f"p{k}.csv", f"{PRJ.splitlines()[0]},{heading}\n"
                                          f"Q{k},E1,改造{k},数字化装备应用,E1-WS1,市级,2021-01-01,2021-06-30,1200,"
                                          "已立项,2020-12-15,0.25\n")
        r = load(ws, "projects", p)
        assert (r.loaded, r.quarantined) == (1, 0), r.rejected
        assert ws.con.execute("SELECT declared_defect_rate FROM projects WHERE project_id = ?",
                              [f"Q{k}"]).fetchone() == (0.25,)


# -- vocabularies ----------------------------------------------------------------------------------------

def test_coded_fields_take_codes_or_labels_and_refuse_the_rest(ws, tmp_path):
    base(ws, tmp_path)
    d = write(tmp_path / "d.csv", "enterprise_id,scope,designation,level,date\n"
                                  "E1,E1-WS1,数字化车间,市级,2022-06-01\n"
                                  "E1,E1-WS2,digital_workshop,municipal,2022-07-01\n"
                                  "E2,,智能工厂,Municipal level,2023-01-01\n"
                                  "E2,,smart_plant,市级,2023-01-01\n"
                                  "E2,,智能工厂,省级,2023-01-01\n")
    r = load(ws, "designations", d)
    assert (r.loaded, r.quarantined) == (3, 2)
    assert [x[2] for x in r.rejected] == ["invalid_value", "invalid_value"]
    assert set(ws.con.execute("SELECT DISTINCT level FROM designations").fetchall()) == {("municipal",)}
    assert "smart_plant is not a known designation" in r.rejected[0][3].text("en")
    assert "省级 不是有效的级别" in r.rejected[1][3].text("zh")


# -- register-only data ----------------------------------------------------------------------------------

def test_a_project_before_any_shop_floor_data_loads_and_registers_its_scope(ws, tmp_path):
    _e, p = base(ws, tmp_path)
    assert p.new_scopes == [("E1-WS1", "E1"), ("E2-WS1", "E2")]
    assert ws.con.execute("SELECT scope_id, enterprise_id FROM scopes ORDER BY 1").fetchall() == \
        [("E1-WS1", "E1"), ("E2-WS1", "E2")]
    # a scope of another enterprise is refused, equipment ids included
    load(ws, "equipment", write(tmp_path / "eq.csv", "equipment_id,work_center,enterprise\nM1,E2-WC9,E2\n"))
    r = load(ws, "projects", write(tmp_path / "x.csv", "project_id,enterprise_id,type,scope,start,commissioning_end\n"
                                                        "P3,E1,new_mode,E2-WS1,2022-01-01,2022-02-01\n"
                                                        "P4,E1,new_mode,E2-WC9,2022-01-01,2022-02-01\n"))
    assert [x[2] for x in r.rejected] == ["scope_of_other_enterprise"] * 2


def test_two_digital_workshops_of_one_enterprise_with_empty_scopes_stay_two(ws, tmp_path):
    base(ws, tmp_path)
    r = load(ws, "designations", write(tmp_path / "d.csv",
                                       "enterprise_id,name,designation,level,date\n"
                                       "E1,冲压数字化车间,数字化车间,市级,2022-06-01\n"
                                       "E1,焊装数字化车间,数字化车间,市级,2022-06-01\n"))
    assert r.loaded == 2
    s = programme_statistics(ws, n_boot=10)
    assert s["totals"]["n_digital_workshops"] == 2
    assert sorted(s["designations"]["unit"]) == ["E1/冲压数字化车间", "E1/焊装数字化车间"]
    # reloading the same file (no designation_id column) changes nothing: the ids are derived from the values
    r2 = load(ws, "designations", tmp_path / "d.csv")
    assert (r2.loaded, r2.skipped) == (0, 2)


def test_a_load_that_stores_nothing_exits_2_with_a_summary(tmp_path):
    db = str(tmp_path / "c.duckdb")
    f = write(tmp_path / "p.csv", "project_id,enterprise_id,type,start,commissioning_end\n"
                                  "P1,NOPE,digital_equipment,2021-01-01,2021-02-01\n"
                                  "P2,NOPE,digital_equipment,2021-01-01,2021-02-01\n")
    res = CliRunner().invoke(cli_app, ["ingest", "projects", str(f), "--db", db])
    assert res.exit_code == 2
    assert "nothing was stored: all 2 records were rejected (unknown_reference: 2)" in res.output
    # the register after the cause is fixed: the same file loads (idempotent per record, not per file)
    e = write(tmp_path / "e.csv", "enterprise_id\nNOPE\n")
    assert CliRunner().invoke(cli_app, ["ingest", "enterprises", str(e), "--db", db]).exit_code == 0
    res = CliRunner().invoke(cli_app, ["ingest", "projects", str(f), "--db", db])
    assert res.exit_code == 0 and "2 records created in projects" in res.output
    with zhizao.connect(db) as w:
        assert w.con.execute("SELECT count(*) FROM quarantine WHERE source = 'p.csv'").fetchone()[0] == 0


# -- changes, the audit log and the past -----------------------------------------------------------------

def test_update_by_key_prints_the_differences_and_logs_them(ws, tmp_path):
    base(ws, tmp_path)
    f = write(tmp_path / "fix.csv", "project_id,enterprise_id,type,start,commissioning_end,总投资（万元）\n"
                                    "P1,E1,数字化装备应用,2021-01-01,2021-07-31,1300\n")
    r = load(ws, "projects", f)
    assert (r.updated, r.quarantined) == (0, 1) and r.rejected[0][2] == "conflicts_with_stored"
    assert "commissioning_end: 2021-06-30 → 2021-07-31" in r.rejected[0][3].text("en")
    r = load(ws, "projects", f, update=True, reason="corrected by the district")
    assert r.changes == [("P1", {"commissioning_end": (dt.date(2021, 6, 30), dt.date(2021, 7, 31)),
                                 "investment": (12_000_000.0, 13_000_000.0)})]
    rec = get_record(ws.con, "projects", "P1")
    assert rec["name"] == "冲压车间数字化改造"  # a column the file lacks is kept
    h = history(ws.con, "projects", "P1")
    assert h["action"].tolist() == ["create", "update"]
    assert h.iloc[1]["reason"] == "corrected by the district"
    assert h.iloc[1]["changes"] == {"commissioning_end": ["2021-06-30", "2021-07-31"],
                                    "investment": [12000000.0, 13000000.0]}


def test_status_transitions_with_their_dates(ws, tmp_path):
    base(ws, tmp_path)
    update_record(ws.con, "projects", "P1", {"status": "实施中", "status_date": "2021-01-05"}, actor="user:ana")
    update_record(ws.con, "projects", "P1", {"status": "completed", "status_date": "2021-06-30"}, actor="user:ana")
    update_record(ws.con, "projects", "P1", {"status": "已验收", "status_date": "2021-12-20"}, actor="user:ana")
    assert [(h["status"], h["date"]) for h in status_history(ws.con, "P1")] == [
        ("approved", "2020-12-15"), ("in_progress", "2021-01-05"), ("completed", "2021-06-30"),
        ("accepted", "2021-12-20")]
    with pytest.raises(InputError, match="project status"):
        update_record(ws.con, "projects", "P1", {"status": "finished"})


def test_any_record_as_it_was_on_a_date(ws, tmp_path):
    base(ws, tmp_path)
    t0 = dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)  # 20:00 in Shanghai, 1 March
    # rewrite the creation time of the entries to a known past (a test of as_of, not of the log)
    ws.con.execute("UPDATE audit_log SET changed_at = ?", [t0])
    update_record(ws.con, "projects", "P1", {"name": "新名称"})
    assert record_as_of(ws.con, "projects", "P1", "2024-03-01")["name"] == "冲压车间数字化改造"
    assert record_as_of(ws.con, "projects", "P1", "2024-02-29") is None  # not registered yet
    assert record_as_of(ws.con, "projects", "P1", today().isoformat())["name"] == "新名称"
    assert sorted(snapshot(ws.con, "projects", "2024-03-01")["project_id"]) == ["P1", "P2"]


def test_withdraw_keeps_the_history_and_refuses_with_dependents(ws, tmp_path):
    base(ws, tmp_path)
    with pytest.raises(Conflict, match=r"cannot be withdrawn: 2 records refer to it \(scopes E2-WS1, projects P2\)"):
        withdraw_record(ws.con, "enterprises", "E2", reason="merged")
    with pytest.raises(InputError, match="give a reason"):
        withdraw_record(ws.con, "projects", "P2", reason=" ")
    old = withdraw_record(ws.con, "projects", "P2", reason="entered twice", actor="user:ana")
    assert old["name"] == "SMT车间集成"
    with pytest.raises(NotFound):
        get_record(ws.con, "projects", "P2")
    h = history(ws.con, "projects", "P2")
    assert h["action"].tolist() == ["create", "withdraw"] and h.iloc[1]["after"] is None
    assert record_as_of(ws.con, "projects", "P2", today().isoformat()) is None
    # created again: the history goes on
    rec = create_record(ws.con, "projects", {**{k: v for k, v in old.items() if v is not None},
                                             "start": "2021-01-01"}, actor="user:ana")
    assert rec["project_id"] == "P2" and history(ws.con, "projects", "P2")["action"].tolist()[-1] == "create"
    with pytest.raises(Conflict, match="exists already"):
        create_record(ws.con, "projects", {"project_id": "P2", "enterprise_id": "E2", "type": "new_mode",
                                           "start": "2021-01-01", "commissioning_end": "2021-02-01"})
    with pytest.raises(InputError, match="part of the key"):
        update_record(ws.con, "projects", "P1", {"project_id": "P9"})


def test_the_audit_log_is_a_hash_chain_that_exposes_a_rewrite(ws, tmp_path):
    base(ws, tmp_path)
    update_record(ws.con, "projects", "P1", {"name": "x"}, reason="r")
    ok, n, problem = audit.check_chain(ws.con)
    assert ok and n == 7 and problem is None  # 2 enterprises, 2 scopes, 2 projects, 1 update
    ws.con.execute("UPDATE audit_log SET reason = 'nobody asked' WHERE seq = 7")
    ok, n, problem = audit.check_chain(ws.con)
    assert not ok and problem.args["seq"] == 7 and "altered" in problem.text("en")
    ws.con.execute("UPDATE audit_log SET reason = 'r' WHERE seq = 7")
    assert audit.check_chain(ws.con)[0]
    ws.con.execute("DELETE FROM audit_log WHERE seq = 3")
    ok, _n, problem = audit.check_chain(ws.con)
    assert not ok and problem.args["seq"] == 4


def test_the_audit_command(tmp_path):
    db = str(tmp_path / "a.duckdb")
    with zhizao.connect(db) as w:
        base(w, tmp_path)
    run = CliRunner().invoke
    res = run(cli_app, ["project", "update", "P1", "--status", "completed", "--date", "2021-06-30",
                                    "--reason", "commissioned", "--db", db])
    assert res.exit_code == 0 and "status: approved → completed" in res.output
    res = run(cli_app, ["audit", "--db", db, "--format", "json", "--table", "projects"])
    rows = json.loads(res.output)
    assert [(r["action"], r["record"]) for r in rows] == [("update", "P1"), ("create", "P2"), ("create", "P1")]
    assert rows[0]["reason"] == "commissioned" and rows[0]["actor"].startswith("cli:")
    assert run(cli_app, ["audit", "--check", "--db", db]).exit_code == 0
    res = run(cli_app, ["project", "withdraw", "P2", "--reason", "duplicate", "--db", db])
    assert res.exit_code == 0
    res = run(cli_app, ["project", "show", "P2", "--db", db, "--as-of", today().isoformat()])
    assert res.exit_code == 2


# -- dates never move a day ------------------------------------------------------------------------------

ZONES = ["Asia/Shanghai", "UTC", "America/Los_Angeles", "Pacific/Kiritimati", "Pacific/Pago_Pago",
         "Europe/Berlin", "Asia/Kathmandu"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(day=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2035, 12, 31)),
       register_zone=st.sampled_from(ZONES), plant_zone=st.sampled_from(ZONES), offset_form=st.booleans())
def test_a_register_date_never_moves_a_day(tmp_path_factory, day, register_zone, plant_zone, offset_form):
    """Whatever zone the register and the equipment are in, and whether the file gives the date or its local
    midnight with an offset, the project's date is the same date: stored, shown, counted in its year, and
    selected by --from/--to on that date and no other."""
    from zhizao.portfolio.register import set_store_zone
    from zhizao.server.views import Page

    tmp = tmp_path_factory.mktemp("dates")
    w = zhizao.connect(":memory:")
    try:
        set_store_zone(w.con, register_zone)
        load(w, "enterprises", write(tmp / "e.csv", "enterprise_id\nE1\n"))
        load(w, "equipment", write(tmp / "q.csv", f"equipment_id,work_center,enterprise,timezone\n"
                                                  f"M1,WC1,E1,{plant_zone}\n"))
        start = (pd.Timestamp(day).tz_localize(register_zone).isoformat() if offset_form else day.isoformat())
        r = load(w, "projects", write(tmp / "p.csv", "project_id,enterprise_id,type,scope,start,commissioning_end\n"
                                                     f"P1,E1,new_mode,WC1,{start},{day.isoformat()}\n"))
        assert r.loaded == 1, r.rejected
        p = register_projects(w)
        assert p.loc[0, "start"] == day and int(p.loc[0, "year"]) == day.year
        assert Page("en").register_date(p.loc[0, "start"]) == Page("en").f.date(day)
        assert programme_statistics(w, n_boot=5)["by_year"]["year"].tolist() == [day.year]

        def n(start=None, end=None):
            return len(register_projects(w, start=start, end=end))
        nxt, prev = day + dt.timedelta(days=1), day - dt.timedelta(days=1)
        assert (n(day.isoformat(), nxt.isoformat()), n(nxt.isoformat()), n(prev.isoformat(), day.isoformat())) \
            == (1, 0, 0)
        assert len(register_projects(w, year=day.year)) == 1
        # instant bounds: the start of the day in the register's zone is inside, one second before is not
        t = pd.Timestamp(day).tz_localize(register_zone)
        assert (n(t.isoformat()), n(None, (t + pd.Timedelta(seconds=1)).isoformat()), n(None, t.isoformat())) \
            == (1, 1, 0)
    finally:
        w.close()


# -- filters, programmes and targets ---------------------------------------------------------------------

def test_filters_on_several_values_and_unknown_values(ws, tmp_path):
    base(ws, tmp_path)
    assert programme_statistics(ws, district="璧山区,九龙坡区", n_boot=5)["totals"]["n_projects"] == 2
    assert programme_statistics(ws, district="bishan", n_boot=5)["totals"]["project_ids"] == ["P1"]
    assert programme_statistics(ws, level="市级", n_boot=5)["totals"]["project_ids"] == ["P1"]
    assert programme_statistics(ws, level="municipal,district", n_boot=5)["totals"]["n_projects"] == 2
    assert programme_statistics(ws, park=["西部科学城璧山高新区"], n_boot=5)["totals"]["project_ids"] == ["P1"]
    for kw, msg in (({"district": "Atlantis"}, "unknown district Atlantis; known: wanzhou"),
                    ({"level": "provincial"}, "unknown level provincial; known: district"),
                    ({"park": "nowhere"}, "unknown park nowhere; known: 西部科学城九龙坡园区"),
                    ({"programme": "2099"}, "unknown programme 2099; known: (none registered)"),
                    ({"year": "21"}, "21 is not a year")):
        with pytest.raises(InputError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            programme_statistics(ws, n_boot=5, **kw)


def test_programme_targets_actual_and_completion(ws, tmp_path):
    load(ws, "programmes", write(tmp_path / "g.csv", "programme_id,name,year,level\n2021A,2021年第一批,2021,市级\n"))
    load(ws, "enterprises", write(tmp_path / "e.csv", ENT))
    load(ws, "projects", write(tmp_path / "p.csv", PRJ.replace("status_date\n", "status_date,programme\n")
                               .replace("2020-12-15\n", "2020-12-15,2021A\n").replace("2021-01-04\n", "2021-01-04,2021A\n")))
    load(ws, "designations", write(tmp_path / "d.csv",
                                   "enterprise_id,name,designation,level,programme,date,revoked\n"
                                   "E1,冲压数字化车间,数字化车间,市级,2021A,2021-11-01,\n"
                                   "E2,SMT数字化车间,数字化车间,市级,2021A,2021-11-01,2021-12-01\n"))
    load(ws, "programme_targets", write(tmp_path / "t.csv",
                                        "programme_id,year,district,measure,target\n"
                                        "2021A,2021,,n_projects,4\n"
                                        "2021A,2021,璧山区,n_projects,1\n"
                                        "2021A,2021,,n_digital_workshops,2\n"
                                        "2021A,2021,,investment,2000\n"
                                        "2021A,2021,,production_efficiency,0.2\n"))
    from zhizao.verify.result import VerificationResult

    r = VerificationResult(indicator="production_efficiency", definition="t", scope="E1-WS1",
                           baseline_period=("a", "b"), reporting_period=("c", "d"), baseline=1.0, reporting=1.3,
                           adjusted_baseline=1.0, change=0.3, improvement=0.3, ci_low=0.2, ci_high=0.4,
                           confidence=0.9, method="hand", project_id="P1")
    ws.con.execute("INSERT INTO verifications (project_id, indicator, scope, result) VALUES (?, ?, ?, ?)",
                   ["P1", "production_efficiency", "E1-WS1", r.to_json()])
    t = programme_statistics(ws, programme="2021A", n_boot=5)["targets"]
    got = {(x.measure, x.district if isinstance(x.district, str) else None): (x.target, x.actual, x.completion)
           for x in t.itertuples()}
    assert got[("n_projects", None)] == (4.0, 2.0, 0.5)
    assert got[("n_projects", "bishan")] == (1.0, 1.0, 1.0)
    assert got[("n_digital_workshops", None)] == (2.0, 1.0, 0.5)  # the revoked one does not count
    assert got[("investment", None)] == pytest.approx((2000.0, 2050.5, 2050.5 / 2000))  # 1200 + 850.5 万元
    assert got[("production_efficiency", None)] == pytest.approx((0.2, 0.3, 1.5))
    pe = t[t["measure"] == "production_efficiency"].iloc[0]
    assert pe["ids"] == ["P1"] and pe["missing_ids"] == ["P2"]
    s = programme_statistics(ws, n_boot=5)
    assert s["totals"]["n_digital_workshops"] == 1 and s["totals"]["n_revoked"] == 1
    # a count target of a year in which no designation of its kind was made: actual 0, not an error (an
    # empty list used as a row mask selected no columns; the city register's programme page gave HTTP 500)
    load(ws, "programme_targets", write(tmp_path / "t2.csv", "programme_id,year,district,measure,target\n"
                                                             "2021A,2021,,n_smart_factories,1\n"
                                                             "2021A,2022,,n_digital_workshops,3\n"))
    t = programme_statistics(ws, programme="2021A", n_boot=5)["targets"].set_index(["measure", "year"])
    assert (t.loc[("n_smart_factories", 2021), "actual"], t.loc[("n_smart_factories", 2021), "completion"]) == (0, 0)
    assert t.loc[("n_digital_workshops", 2022), "actual"] == 0


def test_an_older_store_is_brought_up_to_date(tmp_path):
    """A store of the previous version (dates as UTC instants, no scopes, no designation ids, no audit log)
    opens with its dates in the register's zone, ids derived and a baseline in the audit log."""
    import duckdb

    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE enterprises (enterprise_id VARCHAR, name VARCHAR, industry VARCHAR, district VARCHAR, "
                "park VARCHAR, _source VARCHAR, _record BIGINT)")
    con.execute("CREATE TABLE projects (project_id VARCHAR, enterprise_id VARCHAR, name VARCHAR, type VARCHAR, "
                "scope VARCHAR, start TIMESTAMPTZ, commissioning_end TIMESTAMPTZ, investment DOUBLE, status VARCHAR, "
                "_source VARCHAR, _record BIGINT)")
    con.execute("CREATE TABLE designations (enterprise_id VARCHAR, project_id VARCHAR, scope VARCHAR, "
                "designation VARCHAR, level VARCHAR, date TIMESTAMPTZ, _source VARCHAR, _record BIGINT)")
    con.execute("INSERT INTO enterprises VALUES ('E1', 'A', NULL, NULL, NULL, 'e.csv', 1)")
    con.execute("INSERT INTO projects VALUES ('P1', 'E1', NULL, 'new_mode', NULL, '2020-12-31T16:00:00Z', "
                "'2021-06-29T16:00:00Z', NULL, NULL, 'p.csv', 1)")
    con.execute("INSERT INTO designations VALUES ('E1', NULL, NULL, 'digital_workshop', 'municipal', "
                "'2021-10-31T16:00:00Z', 'd.csv', 1)")
    con.close()
    with zhizao.connect(db) as w:
        assert get_record(w.con, "projects", "P1")["start"] == dt.date(2021, 1, 1)
        d = w.con.execute("SELECT designation_id, date FROM designations").fetchall()
        assert d[0][0].startswith("D-") and d[0][1] == dt.date(2021, 11, 1)
        assert audit.entries(w.con)["action"].tolist() == ["baseline"] * 3


def test_projects_without_data_are_skipped_with_their_reason(ws, tmp_path):
    """City scale: a project whose scope has no equipment yet, or equipment without records, costs next to
    nothing to 'verify': it is skipped, nothing is stored for it, and the reason is given."""
    from zhizao.verify import unverifiable, verify_all_projects

    base(ws, tmp_path)  # P1 in E1-WS1, P2 in E2-WS1: registered scopes, no equipment
    load(ws, "equipment", write(tmp_path / "eq.csv", "equipment_id,work_center,enterprise\nM9,E2-WS1,E2\n"))
    load(ws, "projects", write(tmp_path / "p3.csv", "project_id,enterprise_id,type,start,commissioning_end\n"
                                                    "P3,E1,new_mode,2021-01-01,2021-02-01\n"))
    why = unverifiable(ws)
    assert {k: (m.code, m.text("en")) for k, m in why.items()} == {
        "P1": ("verify.skip.no_equipment", "not verified: no equipment is registered in scope E1-WS1 yet"),
        "P2": ("verify.skip.no_records", "not verified: the equipment of scope E2-WS1 has sent no shop-floor "
                                         "records"),
        "P3": ("verify.skip.no_scope", "not verified: project P3 names no scope and its enterprise E1 has no "
                                       "registered equipment")}
    assert verify_all_projects(ws) == []
    assert ws.con.execute("SELECT count(*) FROM verifications").fetchone()[0] == 0


def test_project_verify_command_reports_the_skipped(tmp_path):
    db = str(tmp_path / "v.duckdb")
    with zhizao.connect(db) as w:
        base(w, tmp_path)
    res = CliRunner().invoke(cli_app, ["project", "verify", "--db", db, "--reasons"])
    assert res.exit_code == 0, res.output
    assert "0 projects verified (0 results stored); 2 not verified" in res.output
    assert "P1: not verified: no equipment is registered in scope E1-WS1 yet" in res.output
