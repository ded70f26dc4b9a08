"""The command line contract of DESIGN.md: formats, defaults, exit codes."""

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from canonical import ORDER, write_tables
from test_worked_example import TABLES
from zhizao.cli.main import app

runner = CliRunner()


@pytest.fixture
def store(tmp_path):
    paths = write_tables(tmp_path, TABLES)
    db = str(tmp_path / "z.duckdb")
    for t in ORDER:
        if t in paths:
            r = runner.invoke(app, ["ingest", t, str(paths[t]), "--db", db])
            assert r.exit_code == 0, r.output
            assert "0 quarantined" in r.output
    return db


def test_kpi_json_has_the_contracted_columns(store):
    r = runner.invoke(app, ["kpi", "--db", store, "--period", "all", "--from", "2024-05-06T06:00:00Z",
                            "--to", "2024-05-06T14:00:00Z", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert len(rows) == 1
    row = rows[0]
    assert row["equipment_id"] == "M1"
    assert row["period_start"] == "2024-05-06T06:00:00+00:00" and row["period_end"] == "2024-05-06T14:00:00+00:00"
    for element in ("pbt", "apt", "aust", "adet", "adot", "pq", "gq", "sq", "rq", "energy_kwh", "energy_kgce"):
        assert element in row
    assert round(row["oee"], 4) == 0.7479 and round(row["teep"], 4) == 0.6544
    assert row["energy_kwh"] is None  # no energy data: null, not 0
    assert row["worker_efficiency"] is None


def test_kpi_levels_periods_and_files(store, tmp_path):
    for fmt, name in (("csv", "k.csv"), ("parquet", "k.parquet"), ("xlsx", "k.xlsx")):
        out = tmp_path / name
        r = runner.invoke(app, ["kpi", "--db", store, "--level", "site", "--period", "day", "--format", fmt,
                                "-o", str(out)])
        assert r.exit_code == 0, r.output
        df = {"csv": pd.read_csv, "parquet": pd.read_parquet, "xlsx": pd.read_excel}[fmt](out)
        assert list(df["site"]) == ["S1"] and round(df["oee"].iloc[0], 4) == 0.7479
    r = runner.invoke(app, ["kpi", "--db", store, "--kpi", "oee,availability"])
    assert r.exit_code == 0 and "oee" in r.output


@pytest.mark.parametrize("args,msg", [
    (["kpi", "--level", "galaxy"], "unknown level"),
    (["kpi", "--period", "fortnight"], "unknown period"),
    (["kpi", "--kpi", "happiness"], "unknown KPI"),
    (["kpi", "--from", "2024-05-07", "--to", "2024-05-06"], "empty query range"),
    (["ingest", "widgets", "x.csv"], "unknown table"),
    (["ingest", "states", "missing.csv"], "no such file"),
])
def test_bad_input_exits_2_with_one_line(store, args, msg):
    if args[0] == "kpi":
        args = args + ["--db", store]
    else:
        args = args + ["--db", store]
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    err = r.stderr if hasattr(r, "stderr") else r.output
    assert msg in err and len(err.strip().splitlines()) == 1


def test_quarantine_lists_rejections(store, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("equipment_id,start,state\nM1,2024-05-06T06:00:00Z,teleporting\n")
    r = runner.invoke(app, ["ingest", "states", str(bad), "--db", store])
    # a load that stores nothing because every record was rejected exits 2 with a summary
    assert r.exit_code == 2 and "1 quarantined" in r.output
    assert "nothing was stored: all 1 records were rejected" in r.output
    r = runner.invoke(app, ["quarantine", "--db", store, "--format", "json"])
    q = json.loads(r.output)
    assert q[0]["rule"] == "unmapped_state" and q[0]["line"] == 2 and q[0]["source"] == "bad.csv"


def test_console_script_is_installed(store):
    exe = shutil.which("zhizao") or str(__import__("pathlib").Path(sys.executable).parent / "zhizao")
    p = subprocess.run([exe, "kpi", "--db", store, "--level", "nowhere"], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.startswith("zhizao: unknown level")


def test_kpis_lists_all_34_with_availability(store):
    r = runner.invoke(app, ["kpis", "--db", store, "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = {x["number"]: x for x in json.loads(r.output) if x["number"] is not None}
    assert set(rows) == set(range(1, 35))
    assert rows[8]["status"] == "available" and rows[6]["status"] == "available"
    assert rows[1]["status"] == "unavailable: no data for apat, apwt"
    assert rows[3]["status"].startswith("unavailable: no data for aoet")


def test_an_empty_store_answers_every_question_without_error(tmp_path):
    import zhizao

    with zhizao.connect(tmp_path / "empty.duckdb") as ws:
        for call in (ws.kpi, ws.elements, ws.losses, ws.stop_reasons, ws.data_quality, ws.capability):
            assert len(call()) == 0
        assert ws.quarantine().empty
