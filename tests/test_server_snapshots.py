"""The server's elements kept across a restart (:mod:`zhizao.server.snapshots`, issue 12): a restarted server
reads the snapshot of the data it sees instead of computing, and answers exactly as a computation would; a
snapshot of other data (rows, settings or engine code) is never read; what uploads brought up to date is kept
at close; a damaged snapshot is dropped and computed again."""

from __future__ import annotations

import pandas as pd
import pytest

from canonical import build, write_tables
from test_incremental import _fixture_tables, _states
from zhizao.server.snapshots import Snapshots, persistent_key
from zhizao.server.store import Store
from zhizao.store.fingerprint import data_fingerprint

PERIODS = ["hour", "shift", "day", "week", "month", "all"]


def _same(a, b) -> None:
    """The same result to the last bit: frames, dtypes, the Python types of text cells (None, not NaN)."""
    for x, y in ((a.elements, b.elements), (a.reasons, b.reasons), (a.entities, b.entities)):
        if x is None:
            assert y is None
            continue
        pd.testing.assert_frame_equal(x, y, check_exact=True)
        for c in x.columns:
            if x[c].dtype == object:
                assert [type(v) for v in x[c]] == [type(v) for v in y[c]], c
    assert a.extent == b.extent and a.period == b.period


@pytest.fixture
def db(tmp_path):
    w = build(tmp_path, _fixture_tables())
    path = w.path
    w.close()
    return path


@pytest.fixture
def computed(monkeypatch):
    """Counts the embedded engine's whole computations."""
    import zhizao.scale.engines as engines

    calls: list[str] = []
    real = engines.compute_elements

    def spy(con, period, *a, **kw):
        calls.append(period)
        return real(con, period, *a, **kw)
    monkeypatch.setattr(engines, "compute_elements", spy)
    return calls


def _elements(store: Store, period: str = "day", **kw):
    with store.read() as rd:
        return rd.ws.elements_raw(period, **kw)


def _direct(db, period: str = "day", settings=None):
    """The elements as a workspace of its own computes them on the store (what a server must answer)."""
    import zhizao

    ws = zhizao.connect(db, settings=settings)
    try:
        return ws.elements_raw(period)
    finally:
        ws.close()


@pytest.mark.parametrize("materialised", [False, True])
@pytest.mark.parametrize("period", PERIODS)
def test_a_snapshot_reads_back_the_same_result(tmp_path, db, period, materialised):
    """Also of a result read from stored hours (``zhizao materialise``), whose loss reasons the snapshot writer
    asks for after the workspace that read it is closed."""
    import zhizao
    from zhizao.kpi import stored

    ws = zhizao.connect(db)
    try:
        if materialised:
            stored.build(ws.con)
            assert stored.answers(ws.con, period) or period == "shift"
        res = ws.elements_raw(period)
        key = ws._elements_key(period, None, None, None)
        fp = data_fingerprint(ws.con, ws.settings)
    finally:
        ws.close()
    snaps = Snapshots(tmp_path / "snaps")
    snaps.save_later(key, fp, res)
    snaps.wait()
    back = snaps.load(key, fp)
    assert back is not None
    _same(res, back)
    assert snaps.load(key, "0" * 64) is None  # another fingerprint: nothing


def test_a_restarted_server_reads_its_snapshot_and_answers_alike(db, computed):
    store = Store(db)
    try:
        first = {p: _elements(store, p) for p in ("day", "all")}
        store.snapshots.wait()
    finally:
        store.close()
    assert computed == ["day", "all"]
    again = Store(db)
    try:
        for p in ("day", "all"):
            _same(first[p], _elements(again, p))
        assert computed == ["day", "all"]  # not computed again
        assert again.snapshots.loaded == 2
    finally:
        again.close()


def test_a_snapshot_of_other_data_or_settings_is_never_read(tmp_path, db, computed):
    import zhizao

    store = Store(db)
    try:
        _elements(store)
    finally:
        store.close()
    # another process adds a state (no server running): the next server computes, and sees it
    ws = zhizao.connect(db)
    path = write_tables(tmp_path, {"more": _states("M1", [("2024-05-06T20:00:00Z", "2024-05-06T21:00:00Z")])})
    try:
        assert ws.ingest("states", path["more"])[0].loaded == 1
    finally:
        ws.close()
    expected = _direct(db)
    store = Store(db)
    try:
        _same(expected, _elements(store))
        assert store.snapshots.loaded == 0 and len(computed) == 3  # the server, the reference, the server
        store.snapshots.wait()
    finally:
        store.close()
    # one snapshot per key: the earlier data's is gone
    folder = store.snapshots.folder
    assert len([p for p in folder.iterdir() if not p.name.startswith(".")]) == 1
    # other settings (the minor-stop threshold changes the elements): not read either
    from zhizao import Settings

    store = Store(db)
    try:
        store.ws.settings = Settings(minor_stop_threshold=60)
        with store.read() as rd:
            rd.ws.settings = store.ws.settings
            other = rd.ws.elements_raw("day")
        assert store.snapshots.loaded == 0 and len(computed) == 4
    finally:
        store.close()
    _same(_direct(db, settings=Settings(minor_stop_threshold=60)), other)


def test_close_keeps_what_uploads_brought_up_to_date(tmp_path, db, computed):

    store = Store(db)
    try:
        _elements(store)
        path = write_tables(tmp_path, {"more": _states("M0", [("2024-05-06T04:30:00Z", "2024-05-06T04:50:00Z")])})
        with store.write() as ws:
            store.touch("data:E")
            store.touch_equipment(["M0"])
            assert ws.ingest("states", path["more"])[0].loaded == 1
        updated = _elements(store)  # brought up to date from the earlier value: no whole computation
        assert computed == ["day"]
    finally:
        store.close()  # keeps the updated value's snapshot
    expected = _direct(db)
    _same(expected, updated)
    store = Store(db)
    try:
        _same(expected, _elements(store))
        assert store.snapshots.loaded == 1 and computed == ["day", "day"]  # the reference above, not the server
    finally:
        store.close()


def test_a_damaged_snapshot_is_dropped_and_computed_again(db, computed):
    store = Store(db)
    try:
        first = _elements(store)
        store.snapshots.wait()
    finally:
        store.close()
    folder = store.snapshots.folder
    (snap,) = [p for p in folder.iterdir() if not p.name.startswith(".")]
    (snap / "elements.parquet").write_bytes(b"not parquet")
    store = Store(db)
    try:
        _same(first, _elements(store))
        assert store.snapshots.loaded == 0 and computed == ["day", "day"]
        assert not snap.exists() or (snap / "elements.parquet").read_bytes() != b"not parquet"
    finally:
        store.close()


def test_only_the_default_range_of_the_whole_store_is_kept(db):
    assert persistent_key(("elements", "day", "None", "None"))
    assert persistent_key(("elements", "day", "None", "None", "site"))
    assert not persistent_key(("elements", "day", "2024-05-06", "None"))
    assert not persistent_key(("elements", "context", "None"))
    assert not persistent_key(("scoped", ("E",), "elements", "day", "None", "None"))
    store = Store(db)
    try:
        _elements(store, start="2024-05-06T00:00:00Z", end="2024-05-07T00:00:00Z")
        store.snapshots.wait()
        assert store.snapshots.saved == 0
    finally:
        store.close()
    assert Snapshots.beside(":memory:").folder is None


def test_a_result_computed_while_a_write_committed_is_not_kept(tmp_path, db):
    """A read whose counters were taken before a write committed, and whose first query came after, sees the
    new records but may reuse facts shared under its older counters: its result is not kept, and a restarted
    server answers as a computation on the store does (found in review: the snapshot of such a mixed result
    was served after the restart)."""

    store = Store(db)
    try:
        with store.read() as x:
            x.ws.elements_raw("day")  # the engine's facts, shared under the counters before the write
            with store.read() as y:  # counters taken now, its snapshot at its first query
                path = write_tables(tmp_path, {"more": _states("M1", [("2024-05-08T10:00:00Z",
                                                                       "2024-05-08T12:00:00Z")])})
                with store.write() as ws:
                    store.touch("data:E")
                    store.touch_equipment(["M1"])
                    assert ws.ingest("states", path["more"])[0].loaded == 1
                y.ws.elements_raw("hour")
        store.snapshots.wait()
        assert not any(k.startswith(Snapshots._digest(("elements", "hour", "None", "None")))
                       for k in (p.name for p in store.snapshots.folder.iterdir()))
        assert not store.unchanged_since({"seq": -1})
        with store.write():
            assert not store.unchanged_since(store.counters)  # a write under way, even of this thread
    finally:
        store.close()
    truth = _direct(db, "hour")
    store = Store(db)
    try:
        _same(truth, _elements(store, "hour"))
    finally:
        store.close()


def test_the_fingerprint_names_the_libraries_and_the_settings_the_read_uses(monkeypatch, db):
    from importlib import metadata

    from zhizao import Settings
    from zhizao.store import fingerprint

    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda lib: "0.0" if lib == "tzdata" else real(lib))
    assert fingerprint.code_digest.__wrapped__() != fingerprint.code_digest()
    monkeypatch.undo()
    store = Store(db)
    try:
        with store.read() as rd:
            a = rd.fingerprint()
        with store.read() as rd:
            rd.ws.settings = Settings(minor_stop_threshold=60)
            assert rd.fingerprint() != a
    finally:
        store.close()


def test_snapshots_read_are_kept_first_and_left_over_writes_are_cleared(tmp_path, db, monkeypatch):
    import os
    import time

    from zhizao.server import snapshots as snap_module

    res = _direct(db, "all")
    monkeypatch.setattr(snap_module, "MAX_SNAPSHOTS", 2)
    snaps = Snapshots(tmp_path / "s")
    keys = [("elements", p, "None", "None") for p in ("a", "b", "c")]
    for k in keys[:2]:
        snaps.save_later(k, "f", res)
        snaps.wait()
        time.sleep(0.05)
    assert snaps.load(keys[0], "f") is not None  # read: now the most recent
    snaps.save_later(keys[2], "f", res)
    snaps.wait()
    kept = {p.name.split("-")[0] for p in (tmp_path / "s").iterdir()}
    assert kept == {Snapshots._digest(keys[0]), Snapshots._digest(keys[2])}
    # a temporary folder a stopped writer left: removed when old, not while it may be written
    old, new = tmp_path / "s" / ".tmp-old", tmp_path / "s" / ".tmp-new"
    old.mkdir()
    new.mkdir()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    Snapshots(tmp_path / "s")
    assert not old.exists() and new.exists()
