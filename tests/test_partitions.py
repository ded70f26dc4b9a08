"""Bounded memory: the engine in partitions of whole entities gives what it gives in one pass, to the last bit.

A memory budget so small that every entity is a partition of its own is the extreme case; the store holds what
the partitions must not lose: equipment in three zones (one of them +05:30) under calendars booked at the site,
work centre and equipment level, records booked to scopes (labour to a work centre, energy and quality to the
site, a cumulative register), a silent machine under a calendar and one without any record.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import zhizao
from zhizao.kpi import partitions
from zhizao.kpi.elements import compute_elements, iter_elements
from zhizao.simulate import simulate_plant, write_plant
from zhizao.store.memory import limit_bytes

TINY = zhizao.Settings(memory_mb=1)  # every entity a partition of its own
WHOLE = zhizao.Settings(memory_mb=1e6)  # one partition


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("parts")
    t = simulate_plant(machines=6, days=4, seed=5)
    eq = t["equipment"].copy()
    eq.loc[eq["equipment_id"] == "M002", "timezone"] = "Asia/Kolkata"
    eq.loc[eq["equipment_id"] == "M003", "timezone"] = "UTC"
    eq.loc[eq["equipment_id"].isin(["M004", "M005"]), "work_center"] = "L02"
    silent = eq.iloc[[0]].assign(equipment_id="M900", name="silent", work_center="L02")
    lone = eq.iloc[[0]].assign(equipment_id="M901", name="lone", work_center=None, area=None, site="S9",
                               enterprise="E9")
    t["equipment"] = pd.concat([eq, silent, lone], ignore_index=True)
    cal = t["calendar"]
    t["calendar"] = pd.concat([cal, cal.assign(scope="L02").iloc[:3],
                               pd.DataFrame([{"scope": "M003", "start": "2025-03-04T10:00:00Z",
                                              "end": "2025-03-04T11:30:00Z", "kind": "planned_downtime"}])],
                              ignore_index=True)
    site = t["equipment"]["site"].iloc[0]
    # a machine that reports states and counts only (no meter, no inspections): its partition reads no energy,
    # labour or quality records at all
    t["energy"] = t["energy"][t["energy"]["equipment_id"] != "M006"]
    t["quality"] = t["quality"][t["quality"]["equipment_id"] != "M006"]
    t["energy"] = pd.concat([t["energy"], pd.DataFrame([
        {"meter_id": "SITE", "scope": site, "start": "2025-03-03T00:00:00Z", "end": "2025-03-03T06:00:00Z",
         "carrier": "natural_gas", "quantity": 12.5, "unit": "m3", "reading": "interval"},
        {"meter_id": "REG", "scope": site, "end": "2025-03-03T00:00:00Z", "carrier": "electricity",
         "quantity": 1000, "unit": "kWh", "reading": "cumulative"},
        {"meter_id": "REG", "scope": site, "end": "2025-03-04T07:30:00Z", "carrier": "electricity",
         "quantity": 1400, "unit": "kWh", "reading": "cumulative"}])], ignore_index=True)
    t["quality"] = pd.concat([t["quality"], pd.DataFrame([
        {"scope": site, "ts": "2025-03-05T12:00:00Z", "result": "fail"}])], ignore_index=True)
    paths = write_plant({k: v for k, v in t.items() if k != "truth"}, d / "plant")
    ws = zhizao.connect(d / "s.duckdb")
    for name in ("equipment", "products", "calendar", "states", "production", "energy", "labour", "quality"):
        for r in ws.ingest(name, paths[name]):
            assert r.quarantined == 0, ws.quarantine().to_dict("records")
    yield ws
    ws.close()


@pytest.mark.parametrize("period", ["hour", "shift", "day", "week", "month", "all"])
@pytest.mark.parametrize("zone_level", [None, "site"])
def test_partitions_give_what_one_pass_gives(store, period, zone_level):
    one = compute_elements(store.con, period, settings=WHOLE, zone_level=zone_level)
    many = compute_elements(store.con, period, settings=TINY, zone_level=zone_level)
    assert set(one.elements["level"]) == {"equipment", "work_center", "site"}
    pd.testing.assert_frame_equal(one.elements, many.elements, check_exact=True)
    pd.testing.assert_frame_equal(one.reasons, many.reasons, check_exact=True)
    assert one.extent == many.extent and one.extent is not None


def test_the_store_has_partitions_with_and_without_other_records(store):
    """The comparisons above cover a partition whose entities have no energy, labour or quality records (the kernel
    skips those reads), beside partitions with each kind."""
    ctx = partitions.EngineContext.read(store.con, TINY)
    n_other = ctx.ent.set_index("entity_id")["n_other"]
    assert n_other["M006"] == 0 and ctx.ent.set_index("entity_id").loc["M006", "n_states"] > 0
    assert (n_other[["M001", "M002", "M003", "M004", "M005"]] > 0).all()
    assert n_other["L01"] > 0  # labour booked to a work centre


def test_partitions_of_an_explicit_window(store):
    w = ("2025-03-04T05:30:00Z", "2025-03-05T17:00:00Z")
    one = compute_elements(store.con, "hour", *w, settings=WHOLE)
    many = compute_elements(store.con, "hour", *w, settings=TINY)
    pd.testing.assert_frame_equal(one.elements, many.elements, check_exact=True)
    assert many.extent is None


def test_each_entity_is_a_partition_and_streams(store):
    ctx = partitions.EngineContext.read(store.con, TINY)
    n = len(ctx.ent)
    parts = list(iter_elements(store.con, "day", settings=TINY))
    assert len(parts) == n == 8 + 2 + 1  # equipment, then the work centres and the site with records
    assert [p.elements["entity_id"].iloc[0] for p in parts] == ctx.ent["entity_id"].tolist()
    silent = parts[ctx.ent["entity_id"].tolist().index("M900")].elements
    assert (silent["pbt"] > 0).any() and silent["apt"].eq(0).all() and silent["no_data"].all()


def test_plan_keeps_to_the_budget():
    p = partitions.plan(np.array([5.0, 5, 5, 20, 1, 1]), 10)
    assert [x.keys.tolist() for x in p] == [[0, 1], [2], [3], [4, 5]]
    assert partitions.plan(np.array([]), 10) == []


def test_the_engine_lowers_duckdbs_memory_limit_and_restores_it(store):
    before = store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    seen = []
    real = partitions.EngineContext.read

    def spy(con, *a, **kw):
        seen.append(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        return real(con, *a, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(partitions.EngineContext, "read", spy)
    try:
        compute_elements(store.con, "day", settings=zhizao.Settings(memory_mb=1024))
    finally:
        mp.undo()
    assert seen and limit_bytes(seen[0]) <= 256 * 2**20 * 1.01
    assert store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == before


@pytest.mark.parametrize("limit", [None, "3GB", "18.8 GiB", "700MB"])
def test_the_memory_limit_does_not_drift_over_many_computations(store, limit):
    """DuckDB shows its limit rounded down ("18.8 GiB"); set back from that text it read 0.1 GiB less each time,
    so a server's limit fell with every request until it was the engine's share. Restored exactly now: DuckDB's
    default by RESET, any other within its shown digit."""
    if limit is not None:
        store.con.execute(f"SET memory_limit = '{limit}'")
    before = store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    try:
        for _ in range(6):
            compute_elements(store.con, "all", settings=zhizao.Settings(memory_mb=1024))
        assert store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == before
    finally:
        store.con.execute("RESET memory_limit")


@pytest.mark.parametrize("period", ["hour", "shift", "day", "month", "all"])
@pytest.mark.parametrize("level", ["equipment", "work_center", "area", "site", "enterprise"])
def test_the_streamed_roll_up_is_the_roll_up_of_the_whole_to_the_last_bit(store, level, period):
    from zhizao.kpi.rollup import rollup, rollup_stream

    zl = None if period in ("all", "shift") or level == "equipment" else "site"
    whole = compute_elements(store.con, period, settings=WHOLE, zone_level=zl).elements
    parts = [p.elements for p in iter_elements(store.con, period, settings=TINY, zone_level=zl)]
    assert len(parts) > 1
    pd.testing.assert_frame_equal(rollup(whole, level, period), rollup_stream(iter(parts), level, period),
                                  check_exact=True)


@pytest.mark.parametrize("period", ["day", "shift", "all"])
def test_the_roll_up_of_rows_without_a_null_is_the_streamed_one_to_the_last_bit(period):
    """pandas 3 sums groups that come in order from a float block without NaN by ``np.add.reduceat``, not by the
    compensated sum the streamed roll-up carries across parts: ten machines' energy of one work centre summed to
    203.3 in one pass and 203.29999999999998 streamed (found by a reviewer). The roll-up sums by the same
    compensated steps whatever pandas chooses."""
    from zhizao.kpi.elements import ELEMENTS
    from zhizao.kpi.rollup import rollup, rollup_stream

    vals = [39.4, 15.2, 22.7, 6.7, 20.2, 10.2, 13.1, 37.5, 14.0, 24.3]

    def table(eqs, v):
        n = len(eqs)
        head = pd.DataFrame({"level": "equipment", "entity_id": eqs, "equipment_id": eqs, "work_center": "W",
                             "area": "A", "site": "S", "enterprise": "E", "tz": "UTC",
                             "period_start": pd.to_datetime(["2024-05-06T00:00Z"] * n).as_unit("us"),
                             "period_end": pd.to_datetime(["2024-05-07T00:00Z"] * n).as_unit("us"),
                             "no_calendar": False, "no_data": False})
        return pd.concat([head, pd.DataFrame({e: np.asarray(v, float) for e in ELEMENTS})], axis=1)

    eqs = [f"M{i}" for i in range(10)]
    parts = [table(eqs[:3], vals[:3]), table(eqs[3:], vals[3:])]
    whole = pd.concat(parts, ignore_index=True)
    for level in ("work_center", "site"):
        one = rollup(whole, level, period)
        assert one["energy_kwh"].tolist() == [203.29999999999998]  # the compensated sum in row order
        pd.testing.assert_frame_equal(one, rollup_stream(iter(parts), level, period), check_exact=True)


def test_the_workspace_streams_the_roll_up_of_a_partitioned_store(store, monkeypatch):
    from zhizao.scale import engines

    streamed = []
    real = engines.rollup_stream
    monkeypatch.setattr(engines, "rollup_stream", lambda *a, **k: streamed.append(1) or real(*a, **k))
    for level, period in (("site", "day"), ("work_center", "all"), ("enterprise", "month"), ("equipment", "day")):
        want = zhizao.Workspace.over(store.con, WHOLE).kpi(level, period)
        got = zhizao.Workspace.over(store.con, TINY).kpi(level, period)
        pd.testing.assert_frame_equal(want, got, check_exact=True)
    assert len(streamed) == 4


def test_elements_the_workspace_holds_are_rolled_up_not_computed_again(store, monkeypatch):
    """The programme verification computes the equipment's daily elements first; a scope's roll-up of the same
    period is then summed from them (no second pass of the engine), to the last bit of the streamed one."""
    from zhizao.scale import engines

    streamed = []
    real = engines.rollup_stream
    monkeypatch.setattr(engines, "rollup_stream", lambda *a, **k: streamed.append(1) or real(*a, **k))
    for level, period in (("site", "day"), ("work_center", "all"), ("enterprise", "month")):
        want = zhizao.Workspace.over(store.con, TINY).elements(level, period)
        ws = zhizao.Workspace.over(store.con, TINY)
        zl = ws._zone_level(level, period)
        ws.elements_raw(period, zone_level=zl)
        n = len(streamed)
        pd.testing.assert_frame_equal(want, ws.elements(level, period), check_exact=True)
        assert len(streamed) == n


@pytest.mark.parametrize("period", ["hour", "shift", "day", "all"])
@pytest.mark.parametrize("level", ["equipment", "site"])
def test_the_kpi_table_in_pieces_is_the_kpi_table(store, level, period):
    """``iter_kpi``: an equipment table comes one partition at a time (here one piece per machine), a group's
    table whole; joined, the pieces are ``kpi``'s table to the last bit."""
    want = zhizao.Workspace.over(store.con, WHOLE).kpi(level, period)
    pieces = list(zhizao.Workspace.over(store.con, TINY).iter_kpi(level, period))
    if level == "equipment":
        assert len(pieces) == want["equipment_id"].nunique() > 1
        assert all(p["equipment_id"].nunique() == 1 for p in pieces)
    else:
        assert len(pieces) == 1
    pd.testing.assert_frame_equal(want, pd.concat(pieces, ignore_index=True), check_exact=True)


def test_an_empty_window_in_pieces_is_the_empty_table(store):
    want = zhizao.Workspace.over(store.con, WHOLE).kpi("equipment", "day", "2030-01-01", "2030-01-02")
    pieces = list(zhizao.Workspace.over(store.con, TINY).iter_kpi("equipment", "day", "2030-01-01", "2030-01-02"))
    assert len(pieces) >= 1
    got = pd.concat(pieces, ignore_index=True)
    assert list(got.columns) == list(want.columns) and len(got) == len(want)


@pytest.fixture(scope="module")
def store_file(tmp_path_factory):
    """A store on disk that no connection of this process holds (the command opens it itself)."""
    d = tmp_path_factory.mktemp("parts_cli")
    paths = write_plant({k: v for k, v in simulate_plant(machines=4, days=3, seed=8).items() if k != "truth"},
                        d / "plant")
    ws = zhizao.connect(d / "s.duckdb")
    for name in ("equipment", "products", "calendar", "states", "production", "energy", "quality"):
        ws.ingest(name, paths[name])
    ws.close()
    return d / "s.duckdb"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_zhizao_kpi_writes_a_partitioned_store_piece_by_piece(store_file, tmp_path, monkeypatch, fmt):
    """``zhizao kpi --level equipment`` writes the table one partition at a time (never whole in memory): the
    file is the one the whole table gives, CSV byte for byte, Parquet value for value."""
    from typer.testing import CliRunner

    from zhizao import export
    from zhizao.cli.main import app

    ws = zhizao.connect(store_file, read_only=True, settings=WHOLE)
    whole = tmp_path / f"whole.{fmt}"
    table = ws.kpi("equipment", "day", end="2025-03-06")
    export.write_table(table, fmt, whole)
    ws.close()
    pieces: list[int] = []
    real_write, real_connect = export.write_tables, zhizao.connect
    monkeypatch.setattr(export, "write_tables", lambda frames, *a, **k: real_write(
        (pieces.append(len(f)) or f for f in frames), *a, **k))
    monkeypatch.setattr(zhizao, "connect", lambda *a, **k: real_connect(*a, **{**k, "settings": TINY}))
    out = tmp_path / f"streamed.{fmt}"
    r = CliRunner().invoke(app, ["kpi", "--db", str(store_file), "--level", "equipment", "--to", "2025-03-06",
                                 "--format", fmt, "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert len(pieces) == table["equipment_id"].nunique() > 1 and all(pieces)  # one piece per machine
    if fmt == "csv":
        assert out.read_bytes() == whole.read_bytes()
    else:
        pd.testing.assert_frame_equal(pd.read_parquet(whole), pd.read_parquet(out), check_exact=True)


def test_zhizao_kpi_that_fails_leaves_the_earlier_file(store_file, tmp_path):
    """An impossible query (an empty range) fails with one line, and the file it would have replaced is as it was
    (the table is written to a file of its own first, which takes the place of the old one when complete)."""
    from typer.testing import CliRunner

    from zhizao.cli.main import app

    out = tmp_path / "kpi.csv"
    out.write_text("an earlier table\n")
    r = CliRunner().invoke(app, ["kpi", "--db", str(store_file), "--level", "equipment", "--from", "2025-03-06",
                                 "--to", "2025-03-06", "--format", "csv", "-o", str(out)])
    assert r.exit_code == 2, r.output
    assert out.read_text() == "an earlier table\n"
    assert [p.name for p in tmp_path.iterdir()] == ["kpi.csv"]
