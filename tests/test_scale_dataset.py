"""The store as a Parquet dataset partitioned by site and month, and back (zhizao.scale.dataset)."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

import zhizao
from scale_data import ingest_city
from zhizao.cli.main import main
from zhizao.errors import InputError, NotFound
from zhizao.scale.dataset import MANIFEST, export_dataset, ingest_dataset
from zhizao.schema import TABLES


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    d = tmp_path_factory.mktemp("city")
    with zhizao.connect(d / "city.duckdb") as ws:
        ingest_city(ws, d / "csv")
        export_dataset(ws.con, d / "ds")
    return d


def _table(con, name):
    cols = ", ".join(f'"{c}"' for c in TABLES[name].names)
    return con.execute(f'SELECT {cols} FROM "{name}" ORDER BY rowid').df()


def test_partitions_by_site_and_month(city):
    ds = city / "ds"
    m = json.loads((ds / MANIFEST).read_text())
    assert m["format"] == "zhizao-parquet-dataset" and m["tables"]["states"] == 2148
    parts = {p.relative_to(ds / "states").parent.as_posix() for p in (ds / "states").rglob("*.parquet")}
    assert parts == {"site=S1/month=2025-03", "site=S2/month=2025-03",
                     "site=S3/month=2025-04", "site=__HIVE_DEFAULT_PARTITION__/month=2025-04"}  # X1 has no site
    assert {p.name for p in (ds / "equipment").iterdir()} == {"site=S1", "site=S2", "site=S3", "site=S4", "site=S5",
                                                              "site=__HIVE_DEFAULT_PARTITION__"}
    q = duckdb.sql(f"""SELECT site, scope, count(*) n FROM read_parquet('{ds}/labour/**/*.parquet',
                       hive_partitioning = true) GROUP BY ALL ORDER BY ALL""").fetchall()
    # work centres lie in one site; the enterprise E1 spans two sites: its records are in the null partition
    assert (("S1", "L01", 5) in q and ("S2", "K01", 4) in q and ("__HIVE_DEFAULT_PARTITION__", "E1", 2) in q) \
        or (None, "E1", 2) in q
    q = duckdb.sql(f"""SELECT DISTINCT site, scope FROM read_parquet('{ds}/quality/**/*.parquet',
                       hive_partitioning = true) WHERE equipment_id IS NULL""").fetchall()
    assert [s for s, _ in q] in ([None], ["__HIVE_DEFAULT_PARTITION__"])  # area A1 is in S1 and S2


def test_round_trip_keeps_every_record_and_the_order(city, tmp_path):
    with zhizao.connect(city / "city.duckdb", read_only=True) as a, zhizao.connect(tmp_path / "b.duckdb") as b:
        reports = ingest_dataset(b.con, city / "ds")
        assert {r.table: r.loaded for r in reports}["states"] == 2148
        assert all(r.quarantined == 0 for r in reports)
        for name in TABLES:
            pd.testing.assert_frame_equal(_table(a.con, name), _table(b.con, name), obj=name)
        assert b.con.execute("SELECT DISTINCT _source FROM states").fetchall() == [("ds/states",)]
        # idempotent: the second load stores nothing
        again = ingest_dataset(b.con, city / "ds")
        assert all(r.loaded == 0 and r.skipped > 0 for r in again)
        assert b.con.execute("SELECT count(*) FROM states").fetchall()[0][0] == 2148
        # the same KPIs from the copy
        pd.testing.assert_frame_equal(a.kpi(level="site", period="day"), b.kpi(level="site", period="day"))


def test_records_of_a_dataset_are_validated_and_quarantined(city, tmp_path):
    ds = tmp_path / "ds"
    with zhizao.connect(city / "city.duckdb", read_only=True) as ws:
        export_dataset(ws.con, ds)
    f = next((ds / "states" / "site=S3").rglob("*.parquet"))
    bad = duckdb.sql(f"""SELECT * REPLACE (CASE WHEN _row % 2 = 0 THEN 'NOPE' ELSE equipment_id END AS equipment_id)
                         FROM read_parquet('{f}')""").to_arrow_table()
    n_bad = sum(1 for v in bad.column("equipment_id").to_pylist() if v == "NOPE")
    duckdb.sql("SELECT * FROM bad").write_parquet(str(f))
    with zhizao.connect(tmp_path / "b.duckdb") as b:
        r = {x.table: x for x in ingest_dataset(b.con, ds)}
        assert r["states"].quarantined == n_bad > 0
        q = b.quarantine()
        assert set(q["rule"]) == {"unknown_equipment"} and set(q["source"]) == {"ds/states"}


def test_export_refuses_a_foreign_directory_and_replaces_an_earlier_export(city, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with zhizao.connect(city / "city.duckdb", read_only=True) as ws:
        with pytest.raises(InputError, match="not a zhizao dataset"):
            export_dataset(ws.con, tmp_path / "x")
        export_dataset(ws.con, tmp_path / "y")
        first = json.loads((tmp_path / "y" / MANIFEST).read_text())["id"]
        export_dataset(ws.con, tmp_path / "y")
        assert json.loads((tmp_path / "y" / MANIFEST).read_text())["id"] != first
    with zhizao.connect(tmp_path / "b.duckdb") as b, pytest.raises(NotFound, match="no zhizao dataset"):
        ingest_dataset(b.con, tmp_path / "x")


def test_cli_export_and_ingest(city, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["export", "--parquet", str(tmp_path / "ds"), "--db", str(city / "city.duckdb")])
    assert e.value.code == 0
    assert "written as a Parquet dataset partitioned by site and month" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["ingest", "--parquet", str(tmp_path / "ds"), "--db", str(tmp_path / "b.duckdb")])
    assert e.value.code == 0
    assert "2148 records loaded into states" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["ingest", "states", "--parquet", str(tmp_path / "ds"), "--db", str(tmp_path / "b.duckdb")])
    assert e.value.code == 2
    assert "give TABLE FILE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["kpi", "--db", str(tmp_path / "b.duckdb"), "--spark-master", "local[1]"])
    assert e.value.code == 2 and "need --engine spark" in capsys.readouterr().err
