"""The engine's kernel on Apache Spark (local[2]) gives the embedded engine's results, row for row and bit for
bit: elements of every entity, the roll-up to every level and the KPIs, on the simulated multi-site city
(two time zones, DST, scopes in several sites, an enterprise's records, equipment without site, a site
without records) and on the bundled real datasets.

One Spark session serves the whole test session (its JVM starts once); the tests run in one xdist worker
(``xdist_group``), so that two workers do not start two JVMs on the two cores.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pandas as pd
import pytest

import zhizao
from scale_data import ingest_city
from zhizao.demo import DATA, REAL_SOURCES, REAL_VERIFICATIONS
from zhizao.ingest.mapping import bundled_mapping
from zhizao.scale.dataset import export_dataset
from zhizao.schema import LEVELS

pytestmark = pytest.mark.xdist_group("spark")


@pytest.fixture(scope="session")
def spark():
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from zhizao.scale.spark import spark_session

    s = spark_session("local[2]", conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4",
                                        "spark.default.parallelism": "2", "spark.driver.memory": "1g"})
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def engine(spark):
    from zhizao.scale.spark import SparkEngine

    return SparkEngine(session=spark)


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    d = tmp_path_factory.mktemp("city")
    with zhizao.connect(d / "city.duckdb") as ws:
        ingest_city(ws, d / "csv")
        export_dataset(ws.con, d / "ds")
    ws = zhizao.connect(d / "city.duckdb", read_only=True)
    yield ws, d / "ds"
    ws.close()


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    d = tmp_path_factory.mktemp("real")
    with zhizao.connect(d / "real.duckdb") as ws:
        for table, rel, mapping in REAL_SOURCES:
            ws.ingest(table, DATA / rel, mapping=bundled_mapping(mapping) if mapping else None)
        export_dataset(ws.con, d / "ds")
    ws = zhizao.connect(d / "real.duckdb", read_only=True)
    yield ws, d / "ds"
    ws.close()


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """The same rows in the same order, every value equal (floats bit for bit, null where null)."""
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for c in a.columns:
        x, y = a[c], b[c]
        if c.startswith("period_"):
            assert (pd.to_datetime(x, utc=True) == pd.to_datetime(y, utc=True)).all(), c
        elif x.dtype.kind in "fi" or y.dtype.kind in "fi":
            xx, yy = x.to_numpy(np.float64), y.to_numpy(np.float64)
            same = (xx == yy) | (np.isnan(xx) & np.isnan(yy))
            assert same.all(), (c, a.loc[~same].head(3).to_dict("records"), b.loc[~same, c].head(3).tolist())
        else:
            xs = [None if pd.isna(v) else v for v in x.tolist()]
            ys = [None if pd.isna(v) else v for v in y.tolist()]
            assert xs == ys, c


CASES = [("day", None, None), ("hour", "2025-03-09T12:00:00Z", "2025-04-01T06:00:00+02:00"), ("shift", None, None),
         ("week", "2025-03-11T00:00:00Z", None)]


@pytest.mark.parametrize("period,start,end", CASES)
def test_city_elements_of_every_entity_are_identical(city, engine, period, start, end):
    ws, ds = city
    want = ws.elements_raw(period, start, end).elements
    got = engine.elements(ds, period, start, end)
    if period == "day":
        # every kind of entity is there: equipment in four sites and without one, work centres, the site S2,
        # the area A1 (in two sites) and the enterprise E1 (with records of its own)
        assert set(want["level"]) == {"equipment", "work_center", "site", "area", "enterprise"}
        assert want["site"].isna().any() and {"Z1", "Z2"} <= set(want["equipment_id"])
    assert_same(want, got)


def test_sites_in_parts_give_the_same_elements(city, spark):
    """Every site in parts of one machine: each part's own records can give it other default ranges than its
    site's (S3's two machines run in different hours), so such parts are computed again with the site's
    extent; the scopes of a site in parts are computed in groups of their own."""
    from zhizao.scale.spark import SparkEngine

    ws, ds = city
    engine = SparkEngine(session=spark, group_size=1)
    for period in ("hour", "day"):
        assert_same(ws.elements_raw(period).elements, engine.elements(ds, period))
        if period == "hour":
            assert {"s:S3#0", "s:S3#1"} <= set(engine.last_second)
    assert {"s:S1#0", "s:S1#5", "s:S2#4"} <= set(engine.last_plan.sites)
    assert {"x:L02", "x:S2"} <= set(engine.last_plan.scope_groups)
    assert_same(ws.elements("enterprise", "day"), engine.rollup(ds, "enterprise", "day"))


@pytest.mark.parametrize("level", LEVELS)
def test_city_rollup_is_identical(city, engine, level):
    """Enterprise E1 spans Berlin and Shanghai: its members are bucketed in one zone (zone_level); its shift rows
    are summed per local label."""
    ws, ds = city
    from zhizao.kpi.rollup import label_zones

    for period in ("day", "all", "shift"):
        # the workspace shows a group's rows in the group's zone (all and shift rows of groups spanning zones)
        got = label_zones(engine.rollup(ds, level, period), level, ws._group_zones(level))
        assert_same(ws.elements(level, period), got)


def test_shift_rows_of_groups_spanning_zones_are_identical(engine, tmp_path):
    """Members' own local 06:00-14:00 (one label, other instants), a shift booked to a work centre spanning zones
    (one instant, other labels), an overlapping later shift of one machine, and energy of awkward quantities
    (0.1, 0.7, 0.2 kWh, 0.3 kWh booked to the work centre): Spark sums per label and then per bounds as pandas
    does, to the last bit."""
    from canonical import build
    from test_engine_readings import SHIFT_EQ, SHIFT_STATES, _local_shifts, _t
    from zhizao.kpi.rollup import rollup

    cal = (_local_shifts(("MB", "MK", "MD")) + _local_shifts(("MB",), ("07:00", "15:00"))
           + [{"scope": "W", "start": _t("04:00"), "end": _t("12:00"), "kind": "shift"}])
    energy = [{"meter_id": f"E-{owner}", "equipment_id": owner if owner.startswith("M") else None,
               "scope": None if owner.startswith("M") else owner, "start": _t("05:00"), "end": _t("06:00"),
               "carrier": "electricity", "quantity": q, "unit": "kWh", "reading": "interval"}
              for owner, q in (("MB", 0.1), ("MK", 0.7), ("MD", 0.2), ("W", 0.3))]
    ws = build(tmp_path, {"equipment": SHIFT_EQ, "states": SHIFT_STATES, "calendar": cal, "energy": energy})
    try:
        export_dataset(ws.con, tmp_path / "ds")
        el = ws.elements_raw("shift").elements
        for level in LEVELS:
            want = rollup(el, level, "shift")
            assert not want.duplicated([want.columns[0], "period_start", "period_end"]).any()
            assert_same(want, engine.rollup(tmp_path / "ds", level, "shift"))
    finally:
        ws.close()


def test_a_machine_in_two_shift_labels_with_the_same_bounds_counts_once_on_spark(spark):
    """Elements by hand (see test_engine_readings): two labels of W end 00:00-08:00Z, machine A in both."""
    from zhizao.kpi.elements import ELEMENTS
    from zhizao.kpi.rollup import rollup
    from zhizao.scale.kernel import elements_schema, to_arrow
    from zhizao.scale.spark import _frame, spark_rollup

    rows = [("A", "UTC", "04:00", "08:00", 1e16), ("A", "UTC", "00:00", "04:00", 1.0),
            ("B", "Etc/GMT-4", "00:00", "04:00", 1.0), ("C", "Etc/GMT+4", "04:00", "08:00", 0.1)]
    el = pd.DataFrame({"level": "equipment", "entity_id": [r[0] for r in rows], "equipment_id": [r[0] for r in rows],
                       "work_center": "W", "area": None, "site": None, "enterprise": None, "tz": [r[1] for r in rows],
                       "period_start": pd.to_datetime([f"2024-05-06T{r[2]}:00Z" for r in rows]),
                       "period_end": pd.to_datetime([f"2024-05-06T{r[3]}:00Z" for r in rows]),
                       "no_calendar": False, "no_data": [False, False, False, True],
                       **{e: np.nan for e in ELEMENTS}})
    el["pbt"] = [r[4] for r in rows]
    got = _frame(spark_rollup(spark.createDataFrame(to_arrow(el, elements_schema())), "work_center",
                              "shift").toArrow())
    want = rollup(el, "work_center", "shift")
    assert got["n_equipment"].tolist() == [3]
    assert_same(want, got)


def test_real_datasets_are_identical(real, engine):
    ws, ds = real
    for period in ("day", "month"):
        assert_same(ws.elements_raw(period).elements, engine.elements(ds, period))
        for level in ("equipment", "work_center", "site"):
            assert_same(ws.elements(level, period), engine.rollup(ds, level, period))


def test_workspace_on_spark_gives_the_same_kpis_and_verification(real, spark, tmp_path):
    from zhizao.scale import SparkStoreEngine

    ws, _ = real
    with zhizao.connect(ws.path, read_only=True, engine=SparkStoreEngine(session=spark)) as on_spark:
        # the same values (text columns may come as str or object dtype)
        pd.testing.assert_frame_equal(ws.kpi(level="site", period="month"), on_spark.kpi(level="site", period="month"),
                                      check_dtype=False, check_exact=True)
        # the programme verification's elements step on Spark
        for _label, indicator, scope, b, r, opts in REAL_VERIFICATIONS[3:4]:  # SECOM
            want, got = ws.verify(indicator, scope, b, r, **opts), on_spark.verify(indicator, scope, b, r, **opts)
            assert json.dumps(want.to_dict(), sort_keys=True) == json.dumps(got.to_dict(), sort_keys=True)


def test_cli_kpi_on_spark_equals_the_embedded_engine(city, spark, capsys):
    from zhizao.cli.main import main

    ws, ds = city
    out = {}
    for name, extra in (("embedded", []), ("spark", ["--engine", "spark", "--parquet", str(ds)])):
        with pytest.raises(SystemExit) as e:
            main(["kpi", "--db", ws.path, "--level", "area", "--period", "day", "--format", "json", *extra])
        assert e.value.code == 0, capsys.readouterr().err
        out[name] = json.loads(capsys.readouterr().out)
    assert out["spark"] == out["embedded"] and len(out["spark"]) > 0
