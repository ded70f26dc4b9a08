"""Elements brought up to date by recomputing the changed equipment only (:func:`zhizao.kpi.elements.update_elements`,
issues 14 and 15): after state or production records of some equipment are added, the earlier result with those
equipment's rows recomputed is the whole computation to the last bit (elements and loss reasons), or the update
declines (None) and the caller computes everything; the server uses it after an upload or a live batch declares
the equipment it changed (:meth:`zhizao.server.store.Store.touch_equipment`).
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from canonical import build, write_tables
from test_partitions_properties import CATS, HOURS, SLOW, WHOLE, _iso, _same, stores
from zhizao.errors import DataSufficiencyError, InputError
from zhizao.kpi import elements as engine
from zhizao.kpi.partitions import EngineContext

PERIODS = ["hour", "shift", "day", "week", "month", "all"]


def _add(ws, tmp, table: str, rows: list[dict], name: str) -> None:
    path = write_tables(tmp, {name: rows})[name]
    assert ws.ingest(table, path)[0].quarantined == 0


def _fixture_tables() -> dict:
    """Two sites in two zones (one +05:30), calendars at equipment, work-centre and site level, labour of a work
    centre, energy of an equipment and of a site, inspections: one day of data, 2024-05-06."""
    eq = [{"equipment_id": f"M{i}", "work_center": f"W{i % 2}", "area": "A", "site": "S1" if i < 3 else "S2",
           "enterprise": "E", "timezone": "Europe/Berlin" if i < 3 else "Asia/Kolkata", "epc": 60.0}
          for i in range(5)]
    states = []
    for i in range(5):
        for h in range(2, 20, 3):
            states.append({"equipment_id": f"M{i}", "start": f"2024-05-06T{h:02d}:00:00Z",
                           "end": f"2024-05-06T{h + 2:02d}:{10 * i:02d}:00Z", "state": CATS[(h + i) % len(CATS)]})
    return {"equipment": eq, "products": [{"product_id": "P", "pri": 30.0}], "states": states,
            "production": [{"equipment_id": f"M{i}", "start": "2024-05-06T02:00:00Z", "end": "2024-05-06T04:00:00Z",
                            "order_id": f"o{i}", "product_id": "P", "produced": 100 + i, "scrap": i}
                           for i in range(5)],
            "calendar": [{"scope": "W0", "start": "2024-05-06T01:00:00Z", "end": "2024-05-06T13:00:00Z",
                          "kind": "shift"},
                         {"scope": "M4", "start": "2024-05-06T06:00:00Z", "end": "2024-05-06T14:00:00Z",
                          "kind": "shift"},
                         {"scope": "S1", "start": "2024-05-06T09:00:00Z", "end": "2024-05-06T09:30:00Z",
                          "kind": "break"}],
            "labour": [{"scope": "W1", "start": "2024-05-06T06:00:00Z", "end": "2024-05-06T14:00:00Z",
                        "attendance_hours": 16.0, "work_hours": 12.0}],
            "energy": [{"meter_id": "E1", "equipment_id": "M1", "scope": None, "start": "2024-05-06T02:00:00Z",
                        "end": "2024-05-06T03:00:00Z", "carrier": "electricity", "quantity": 12.5, "unit": "kWh",
                        "reading": "interval"},
                       {"meter_id": "E2", "equipment_id": None, "scope": "S2", "start": "2024-05-06T02:00:00Z",
                        "end": "2024-05-06T05:00:00Z", "carrier": "electricity", "quantity": 40.0, "unit": "kWh",
                        "reading": "interval"}]}


@pytest.fixture
def ws(tmp_path):
    w = build(tmp_path, _fixture_tables())
    yield w
    w.close()


def _states(eq: str, hours: list[tuple[str, str]], cat: str = "unplanned_downtime") -> list[dict]:
    return [{"equipment_id": eq, "start": a, "end": b, "state": cat} for a, b in hours]


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("explicit", [False, True])
def test_the_update_is_the_whole_computation(ws, tmp_path, period, explicit):
    kw = {"start": "2024-05-05T22:00:00Z", "end": "2024-05-07T00:00:00Z"} if explicit else {}
    prior = engine.compute_elements(ws.con, period, **kw)
    # M0 and M2, not M1 between them (partitions are consecutive runs; an update need not be)
    _add(ws, tmp_path, "states", _states("M0", [("2024-05-06T04:30:00Z", "2024-05-06T04:50:00Z")])
         + _states("M2", [("2024-05-06T11:00:00Z", None)], "setup"), "states")
    _add(ws, tmp_path, "production", [{"equipment_id": "M2", "start": "2024-05-06T11:00:00Z",
                                       "end": "2024-05-06T12:00:00Z", "order_id": "x", "product_id": "P",
                                       "produced": 7, "scrap": 1}], "production")
    full = engine.compute_elements(ws.con, period, **kw)
    upd = engine.update_elements(ws.con, prior, {"M0", "M2"}, period, **kw)
    assert upd is not None
    _same(upd, full)
    assert upd.extent == full.extent
    # the changed rows did change: the update is not the prior result by chance
    m0 = (full.elements["entity_id"] == "M0").to_numpy()
    assert not full.elements.loc[m0, "ttr"].equals(prior.elements.loc[m0, "ttr"])


def _same_context(a: EngineContext, b: EngineContext) -> None:
    pd.testing.assert_frame_equal(a.ent, b.ent, check_exact=True)
    pd.testing.assert_frame_equal(a.own, b.own, check_exact=True)
    assert a.extent == b.extent and a.filled == b.filled and a.n_eq == b.n_eq


@pytest.mark.parametrize("zone_level", [None, "site", "enterprise"])
def test_the_updated_context_is_the_context_read_again(ws, tmp_path, zone_level):
    prior = EngineContext.read(ws.con, zone_level=zone_level)
    # M0 gets states on the next day (its site's extent grows), M2 its first count of a new order, M4 an open state
    _add(ws, tmp_path, "states", _states("M0", [("2024-05-07T04:30:00Z", "2024-05-07T04:50:00Z")])
         + _states("M4", [("2024-05-06T23:00:00Z", None)], "setup"), "states")
    _add(ws, tmp_path, "production", [{"equipment_id": "M2", "start": None, "end": "2024-05-06T21:00:00Z",
                                       "order_id": "x", "product_id": "P", "produced": 7, "scrap": 1}], "production")
    upd = prior.updated(ws.con, {"M0", "M2", "M4", "not-there"})
    _same_context(upd, EngineContext.read(ws.con, zone_level=zone_level))
    assert upd.extent != prior.extent
    assert prior.updated(ws.con, set()) is prior
    # a context of a partial store (an extent given) cannot be updated
    assert EngineContext.read(ws.con, extent=prior.extent).updated(ws.con, {"M0"}) is None


def test_unchanged_equipment_named_changed_are_recomputed_alike(ws):
    prior = engine.compute_elements(ws.con, "day")
    upd = engine.update_elements(ws.con, prior, {"M3", "M9-unknown"}, "day")
    assert upd is not None
    _same(upd, prior)


def test_loss_reasons_of_many_updates_nobody_asked_for_are_computed_without_deep_recursion(ws, tmp_path):
    """Each update's loss reasons are its prior's with the changed equipment's replaced, computed when first
    asked for. A server's upload after upload (or a listener's batches) that nobody asks the stops Pareto of
    chained them one inside the other: after about 500 of them, asking recursed past Python's limit (a 500 on the
    stops Pareto) and every earlier result stayed in memory. Now the oldest are computed every
    MAX_CHAIN updates (a chain of MAX_CHAIN at most), and a result's pending reasons hold what they are computed
    from, not the earlier results' elements tables (a reviewer found 32 of them held: a plant-year's day table is
    185 MiB): the same reasons."""
    import gc
    import sys
    import weakref

    result = engine.compute_elements(ws.con, "day")
    earlier, chains = [], []
    for i in range(3 * engine.MAX_CHAIN):
        if i == engine.MAX_CHAIN:  # records of M0 in the middle of the run: its rows and reasons recomputed
            _add(ws, tmp_path, "states", _states("M0", [("2024-05-06T20:30:00Z", "2024-05-06T21:50:00Z")],
                                                 "setup"), "states")
        earlier.append(weakref.ref(result))
        result = engine.update_elements(ws.con, result, {"M0"}, "day")
        assert result is not None
        chains.append(result.chain)
    gc.collect()
    # no earlier result (its elements table) is held by the pending reasons of the later ones
    assert max(chains) == engine.MAX_CHAIN and not [r for r in earlier if r() is not None]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200 + 6 * engine.MAX_CHAIN)  # (pytest's frames and a chain of MAX_CHAIN at most)
    try:
        reasons = result.reasons
    finally:
        sys.setrecursionlimit(limit)
    assert len(reasons) and reasons is result.reasons
    _same(result, engine.compute_elements(ws.con, "day"))


def test_reasons_computed_through_a_later_result_leave_no_result_pending(ws, tmp_path):
    """An update without changes shares its prior's pending reasons; asked through the newer result, they are
    computed for both, and neither (nor the one before, whose reasons they were computed from) stays pending: the
    server's cache weighs a pending result again at every read, and kept the weight it had while pending (a
    reviewer found it)."""
    from zhizao.server.store import LRU, _pending, approx_bytes

    r1 = engine.compute_elements(ws.con, "day")
    _add(ws, tmp_path, "states", _states("M0", [("2024-05-06T20:30:00Z", "2024-05-06T21:50:00Z")], "setup"), "s1")
    r2 = engine.update_elements(ws.con, r1, {"M0"}, "day")  # spliced: computed from r1's reasons
    r3 = engine.update_elements(ws.con, r2, set(), "day")  # nothing changed: r2's reasons
    cache = LRU(10, maxbytes=10**9)
    for k, r in (("r1", r1), ("r2", r2), ("r3", r3)):
        cache[k] = r
    assert all(r.reasons_pending and _pending(r) for r in (r1, r2, r3))
    assert len(r3.reasons)
    assert not any(r.reasons_pending or _pending(r) for r in (r1, r2, r3))
    for k, r in (("r1", r1), ("r2", r2), ("r3", r3)):
        assert cache.get(k) is r
        assert cache._w[k] == approx_bytes(r)  # weighed again, now that nothing is pending
    assert r2.reasons is r3.reasons


def test_records_of_equipment_not_named_make_it_decline(ws, tmp_path):
    prior = engine.compute_elements(ws.con, "day")
    _add(ws, tmp_path, "states", _states("M1", [("2024-05-06T04:30:00Z", "2024-05-06T04:50:00Z")]), "states")
    assert engine.update_elements(ws.con, prior, {"M0"}, "day") is None


def test_a_record_that_moves_the_default_range_makes_it_decline(ws, tmp_path):
    # a record on the next day: the site's default range grows by a day for every entity
    prior = engine.compute_elements(ws.con, "day")
    _add(ws, tmp_path, "states", _states("M0", [("2024-05-07T04:30:00Z", "2024-05-07T04:50:00Z")]), "states")
    assert engine.update_elements(ws.con, prior, {"M0"}, "day") is None
    # with an explicit range the same record changes M0's rows only
    kw = {"start": "2024-05-06T00:00:00Z", "end": "2024-05-08T00:00:00Z"}
    prior = engine.compute_elements(ws.con, "day", **kw)
    _add(ws, tmp_path, "states", _states("M0", [("2024-05-07T06:00:00Z", "2024-05-07T07:00:00Z")]), "s2")
    _same(engine.update_elements(ws.con, prior, {"M0"}, "day", **kw), engine.compute_elements(ws.con, "day", **kw))


def test_new_equipment_or_another_period_make_it_decline(ws, tmp_path):
    prior = engine.compute_elements(ws.con, "day")
    assert engine.update_elements(ws.con, prior, {"M0"}, "week") is None
    _add(ws, tmp_path, "equipment", [{"equipment_id": "M5", "site": "S1", "enterprise": "E",
                                      "timezone": "Europe/Berlin"}], "equipment")
    assert engine.update_elements(ws.con, prior, {"M5"}, "day") is None


def test_a_result_computed_in_several_parts_is_not_updated(ws, tmp_path):
    import zhizao

    tiny = zhizao.Settings(memory_mb=1)  # one entity per partition: rows in the partitions' order
    prior = engine.compute_elements(ws.con, "day", settings=tiny)
    assert prior.entities is None
    assert engine.update_elements(ws.con, prior, {"M0"}, "day", settings=tiny) is None


@SLOW
@given(stores(), st.sampled_from(PERIODS), st.sampled_from([None, "work_center", "site", "enterprise"]),
       st.data())
def test_the_update_is_the_whole_computation_for_random_stores(tmp_path_factory, store, period, zone_level, data):
    t0, tables = store
    tmp = tmp_path_factory.mktemp("inc")
    ws = build(tmp, tables)
    try:
        if period in ("all", "shift"):
            zone_level = None
        prior_ctx = EngineContext.read(ws.con, WHOLE, zone_level)
        try:
            prior = engine.compute_elements(ws.con, period, settings=WHOLE, zone_level=zone_level)
        except (DataSufficiencyError, InputError):
            return
        ids = sorted({r["equipment_id"] for r in tables["equipment"].to_dict("records")})
        changed = data.draw(st.sets(st.sampled_from(ids), min_size=1, max_size=2))
        rows = []
        for eq in sorted(changed):
            for _ in range(data.draw(st.integers(1, 3))):
                t = data.draw(st.integers(0, (HOURS - 1) * 3600))
                rows.append({"equipment_id": eq, "start": _iso(t0, t), "state": data.draw(st.sampled_from(CATS)),
                             "end": data.draw(st.sampled_from([None, _iso(t0, t + 120), _iso(t0, t + 7200)]))})
        path = write_tables(tmp, {"more": pd.DataFrame(rows, columns=["equipment_id", "start", "end", "state"])})
        ws.ingest("states", path["more"])
        try:
            full = engine.compute_elements(ws.con, period, settings=WHOLE, zone_level=zone_level)
        except (DataSufficiencyError, InputError):
            return
        ctx = EngineContext.read(ws.con, WHOLE, zone_level)
        _same_context(prior_ctx.updated(ws.con, changed), ctx)
        upd = engine.update_elements(ws.con, prior, changed, period, settings=WHOLE, zone_level=zone_level,
                                     context=ctx)
        if upd is not None:  # declining (the ranges moved) is always allowed; a wrong update never
            _same(upd, full)
    finally:
        ws.close()


# -- the server -------------------------------------------------------------------------------------------------
API = ["/api/v1/kpi?level=site&period=day", "/api/v1/kpi?level=equipment&period=all",
       "/api/v1/elements?level=work_center&period=week", "/api/v1/losses?level=site&period=all",
       "/api/v1/stop-reasons?level=site&period=all", "/api/v1/data-quality?level=equipment&period=day"]


def test_the_store_logs_the_equipment_each_write_changed(tmp_path):
    from zhizao.server.store import Store

    store = Store(tmp_path / "s.duckdb")
    try:
        seq = store.counters.get("seq", 0)
        with store.write():
            store.touch("data:E")
            store.touch_equipment(["M1"])
        with store.write():
            store.touch("verifications")  # no data: nothing changed
        with store.write():
            store.touch("data:E")
            store.touch_equipment(["M2", "M1"])
        now = store.counters["seq"]
        assert store.changed_since(seq, now) == {"M1", "M2"}
        assert store.changed_since(seq + 1, seq + 2) == frozenset()
        assert store.changed_since(now, now) == frozenset()
        with store.write():
            store.touch("data:E")  # data changed without saying what: anything
        assert store.changed_since(seq, store.counters["seq"]) is None
        assert store.changed_since(now, store.counters["seq"]) is None
        assert store.changed_since(-1000, now) is None  # before what the log holds
    finally:
        store.close()


def test_the_server_updates_a_tenants_elements_after_its_upload(tmp_path, monkeypatch):
    import zhizao.api as api
    from test_server_support import A, bearer, clone, login, make_client
    from test_tenant_load import post, read_all, states

    calls = []
    real = api.update_elements

    def spy(con, prior, changed, period, *a, **kw):
        res = real(con, prior, changed, period, *a, **kw)
        calls.append((period, sorted(changed), res is not None))
        return res
    monkeypatch.setattr(api, "update_elements", spy)
    db = clone(tmp_path / "t.duckdb")
    client = make_client(db)
    h = bearer(login(client, "usera"))
    read_all(client, h, A)
    for path in API:
        assert client.get(path, headers=h).status_code == 200
    assert not calls  # nothing earlier to update
    up = post(client, h, "a.csv", states(f"{A}-WC1-M1", 0))
    assert up.status_code == 201 and up.json()["loaded"] == 5, up.text
    reads = []
    real_read = EngineContext.read.__func__
    monkeypatch.setattr(EngineContext, "read", classmethod(lambda cls, *a, **kw: reads.append(1) or real_read(
        cls, *a, **kw)))
    read_all(client, h, A)
    updated = {p: client.get(p, headers=h).json() for p in API}
    assert not reads  # the tenant's store-wide facts were updated (one machine's statistics), not read again
    monkeypatch.undo()
    monkeypatch.setattr(api, "update_elements", spy)
    assert calls and all(ok and changed == [f"{A}-WC1-M1"] for _p, changed, ok in calls), calls
    assert {"day", "all", "week"} <= {p for p, _c, _ok in calls}
    # a calendar upload changes what the log cannot tell: everything is computed again
    calls.clear()
    cal = client.post("/api/v1/ingest/calendar", headers=h, files={"file": ("c.csv", (
        "scope,start,end,kind\n" f"{A}-WC1-M1,2025-02-19T00:00:00Z,2025-02-19T02:00:00Z,holiday\n").encode())})
    assert cal.status_code == 201, cal.text
    read_all(client, h, A)
    assert not calls
    client.app.state.server.close()
    # what a server computing everything answers on the store after the states upload alone
    db2 = clone(tmp_path / "t2.duckdb")
    fresh = make_client(db2)
    h2 = bearer(login(fresh, "usera"))
    assert post(fresh, h2, "a.csv", states(f"{A}-WC1-M1", 0)).status_code == 201
    fresh.app.state.server.close()
    again = make_client(db2)  # a new server: an empty cache, nothing to update from
    h3 = bearer(login(again, "usera"))
    try:
        for p in API:
            assert again.get(p, headers=h3).json() == updated[p], p
    finally:
        again.app.state.server.close()


def test_loss_reasons_that_all_go_give_the_kernels_empty_frame(ws):
    """Found by the property test: when the changed machine's loss reasons all go and no other machine has any,
    the update kept the earlier frame's column types (pandas' str) where the whole computation gives the
    kernel's empty frame (object): the same frame, to the types."""
    prior = engine.compute_elements(ws.con, "day")
    m = prior.reasons["entity_id"].iloc[0]
    only_m = engine.ElementsResult(prior.elements, prior.reasons[prior.reasons["entity_id"] == m], "day")
    empty = engine._empty_reasons()
    part = engine.ElementsResult(prior.elements[prior.elements["entity_id"] == m], empty, "day")
    ent = EngineContext.read(ws.con).ranges("day")
    out = engine._splice(only_m, part, ent, {m}, "day")
    pd.testing.assert_frame_equal(out.reasons, empty, check_exact=True)


def test_every_empty_loss_reason_table_of_the_engine_is_the_same_frame(tmp_path, ws):
    """Found by the property test (CI, a random store): the changed machine's partition had no buckets, and its
    empty loss-reason table had three columns where the whole computation's had six. Every path that gives no
    loss reasons gives the kernel's one empty frame: an empty store, no partitions, a partition without buckets
    and data without losses."""
    import zhizao

    frames = {"kernel": engine._empty_reasons()}
    empty_store = zhizao.connect(tmp_path / "empty.duckdb")
    try:
        frames["empty store"] = engine.compute_elements(empty_store.con, "day").reasons
    finally:
        empty_store.close()
    frames["no partitions"] = engine.concat_results([], "day").reasons
    (tmp_path / "p").mkdir()
    no_losses = build(tmp_path / "p", {"equipment": [{"equipment_id": "M", "site": "S", "enterprise": "E"}],
                                       "states": [{"equipment_id": "M", "start": "2024-05-06T02:00:00Z",
                                                   "end": "2024-05-06T04:00:00Z", "state": "production"}]})
    try:
        frames["no losses"] = engine.compute_elements(no_losses.con, "day").reasons
    finally:
        no_losses.close()
    # (a partition without buckets returns the kernel's frame itself: elements._compute)
    prior = engine.compute_elements(ws.con, "day")
    assert len(prior.reasons)  # the fixture has losses: its frame has the same columns
    for name, f in frames.items():
        assert list(f.columns) == list(prior.reasons.columns), name
        pd.testing.assert_frame_equal(f, frames["kernel"], check_exact=True, obj=name)
