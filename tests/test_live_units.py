"""Live ingestion without a network: topics, payloads, the micro-batch ingestor, OPC UA conversion."""

import datetime as dt
import json

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from zhizao.ingest.mapping import Mapping
from zhizao.live import (
    LIVE_RULES,
    Converter,
    LiveIngestor,
    NodesError,
    counter_delta,
    message_hash,
    parse_broker,
    parse_nodes,
    parse_topic,
    topic_for,
)
from zhizao.live.ingestor import StateUpdate
from zhizao.live.topics import TopicError

T = "zhizao/v1/E1/S1/A1/L1/{eq}/{table}"


def topic(table, eq="M1"):
    return T.format(eq=eq, table=table)


def msg(table, recs, eq="M1"):
    return topic(table, eq), json.dumps(recs).encode()


@pytest.fixture
def ing(tmp_path):
    i = LiveIngestor(tmp_path / "live.duckdb")
    i.ingest_messages([msg("equipment", {"timezone": "Asia/Shanghai"}),
                       msg("equipment", {"timezone": "Asia/Shanghai"}, eq="M2")])
    yield i
    i.close()


def rows(ing, sql):
    return ing.ws.con.execute(sql).fetchall()


# ---------------------------------------------------------------------------------------------------- topics
def test_topic_namespace_round_trip_and_errors():
    t = parse_topic("zhizao/v1/E1/S1/A1/L1/M1/states")
    assert (t.enterprise, t.site, t.area, t.work_center, t.equipment, t.table) == ("E1", "S1", "A1", "L1", "M1",
                                                                                   "states")
    assert topic_for("states", "M1", "L1", "A1", "S1", "E1") == "zhizao/v1/E1/S1/A1/L1/M1/states"
    assert parse_topic(topic_for("calendar", site="S1", enterprise="E1")).site == "S1"
    assert parse_topic("plant/x/E/S/A/W/M/quality", prefix="plant/x").equipment == "M"
    for bad, rule in [("zhizao/v1/E1/S1/M1/states", "malformed_topic"),
                      ("other/v1/E1/S1/A1/L1/M1/states", "malformed_topic"),
                      ("zhizao/v1/E1/S1/A1//M1/states", "malformed_topic"),
                      ("zhizao/v1/E1/S1/_/_/_/states", "malformed_topic"),  # machine data needs a machine
                      ("zhizao/v1/E1/S1/A1/L1/M1/projects", "unknown_table")]:
        with pytest.raises(TopicError) as e:
            parse_topic(bad)
        assert e.value.rule == rule and rule in LIVE_RULES


def test_records_take_equipment_from_topic_and_mismatch_or_garbage_is_rejected(ing):
    r = ing.ingest_messages([
        msg("production", [{"end": "2025-01-01T09:00:00+08:00", "produced": 5, "good": 4.5, "first": True},
                           {"equipment_id": "M2", "end": "2025-01-01T09:00:00+08:00", "produced": 5},
                           [1, 2], {"nothing": 1}]),
        (topic("states"), b"\xff\xfe"), (topic("states"), b'"text"'),
        # energy and quality of a scope keep their scope
        msg("quality", {"scope": "S1", "ts": "2025-01-01T09:00:00Z", "result": "pass"}),
        # equipment records take the hierarchy from the topic
        msg("equipment", {"name": "press"}, eq="M3")])
    assert (r.loaded, r.quarantined) == (3, 5)
    assert rows(ing, "SELECT equipment_id, produced, good FROM production") == [("M1", 5, 4.5)]
    assert rows(ing, "SELECT equipment_id, scope FROM quality") == [(None, "S1")]
    assert rows(ing, "SELECT name, work_center, area, site, enterprise FROM equipment WHERE equipment_id = 'M3'") \
        == [("press", "L1", "A1", "S1", "E1")]
    assert rows(ing, "SELECT rule, record, detail FROM quarantine ORDER BY rule, record NULLS FIRST") == [
        ("malformed_payload", None,
         "not UTF-8: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
        ("malformed_payload", 1, "record 1 is a JSON varchar, not an object"),
        ("malformed_payload", 3, "record 3 is a JSON array, not an object"),
        ("malformed_payload", 4, "record 4 has no column of table production"),
        ("topic_mismatch", 2, "record equipment_id 'M2' differs from the topic's equipment 'M1'")]
    assert message_hash("a", b"x") != message_hash("b", b"x") and len(message_hash("a", b"x")) == 32


def test_parse_broker():
    assert parse_broker("127.0.0.1:1884") == ("127.0.0.1", 1884)
    assert parse_broker("broker.local") == ("broker.local", 1883)
    assert parse_broker("[::1]:8883") == ("::1", 8883)
    for bad in (":1883", "h:x", "h:70000"):
        with pytest.raises(ValueError):
            parse_broker(bad)


# ---------------------------------------------------------------------------------------------------- ingestor
def test_loader_rules_apply_and_quarantine_names_topic_and_record(ing):
    r = ing.ingest_messages([
        msg("states", [{"start": "2025-01-01T08:00:00", "state": "production"},
                       {"start": "2025-01-01T08:10:00", "state": "dancing"},
                       {"start": "yesterday", "state": "setup"}]),
        msg("states", {"start": "2025-01-01T08:00:00", "state": "setup"}, eq="M7"),
        msg("production", [{"start": "2025-01-01T09:00:00", "end": "2025-01-01T08:00:00", "produced": 3},
                           {"end": "2025-01-01T09:00:00", "produced": 3, "scrap": 4},
                           {"ts": "2025-01-01T10:00:00", "produced": 8}]),
        (topic("states"), b"{not json"),
    ])
    assert (r.loaded, r.quarantined) == (2, 6)
    q = rows(ing, 'SELECT rule, source, record, line FROM quarantine ORDER BY rule')
    assert q == [("counts_exceed_produced", topic("production"), 2, None),
                 ("end_not_after_start", topic("production"), 1, None),
                 ("malformed_payload", topic("states"), None, None),
                 ("unknown_equipment", topic("states", "M7"), 1, None),
                 ("unmapped_state", topic("states"), 2, None),
                 ("unparseable", topic("states"), 3, None)]
    # naive time stamps are local to the equipment (Asia/Shanghai), as in files
    assert rows(ing, "SELECT start FROM states")[0][0] == dt.datetime(2025, 1, 1, 0, 0, tzinfo=dt.UTC)
    # the `ts` alias of production works as in files
    assert rows(ing, "SELECT produced FROM production")[0][0] == 8
    # micro-batches leave no rows in the file load log; provenance is in _source and live_batches
    assert rows(ing, "SELECT count(*) FROM loads") == [(0,)]
    assert rows(ing, "SELECT _source FROM states")[0][0].startswith("live:mqtt:")


def test_redelivery_and_resent_records_are_stored_once(ing):
    # interval counts: the key (equipment, start, end, order, product) names a record
    def rec(h, produced):
        return {"start": f"2025-01-01T0{h - 1}:00:00", "end": f"2025-01-01T0{h}:00:00", "produced": produced}

    batch = [msg("production", [rec(h, h) for h in range(1, 4)]),
             msg("production", rec(1, 1)),  # the same record, another message
             (topic("production"), b"garbage")]
    r1 = ing.ingest_messages(batch)
    assert (r1.loaded, r1.quarantined, r1.skipped) == (3, 1, 1)
    r2 = ing.ingest_messages(batch + batch)  # redelivered, twice
    assert (r2.loaded, r2.quarantined, r2.duplicate_messages) == (0, 0, 6)
    r3 = ing.ingest_messages([msg("production", rec(2, 2)), msg("production", rec(3, 99))])
    assert (r3.loaded, r3.skipped, r3.quarantined) == (0, 1, 1)  # identical -> skipped, other values -> conflict
    # within one batch, as within one file, a second record with the same key is a duplicate
    r4 = ing.ingest_messages([msg("production", [rec(5, 4), rec(5, 5)])])
    assert (r4.loaded, r4.quarantined) == (1, 1)
    assert rows(ing, "SELECT count(*) FROM production") == [(4,)]
    assert sorted(r[0] for r in rows(ing, "SELECT rule FROM quarantine")) == [
        "conflicts_with_stored", "duplicate", "malformed_payload"]


def test_counts_at_an_instant_are_events_each_occurrence_stored_once(ing):
    """Issue 14, item 15: two parts counted at the same instant (no start) are two events; a message is one
    source, whose k-th identical event is stored once however often the message or its records come again."""
    two = [{"end": "2025-01-01T05:00:00", "produced": 1}] * 2
    m = (topic("production"), json.dumps(two).encode())
    r = ing.ingest_messages([m])
    assert (r.loaded, r.quarantined, r.skipped) == (2, 0, 0)
    assert ing.ingest_messages([m]).duplicate_messages == 1  # broker redelivery: skipped whole
    # the same two events re-sent in another message (other bytes): nothing new
    r = ing.ingest_messages([(topic("production"), json.dumps(two, indent=1).encode())])
    assert (r.loaded, r.skipped) == (0, 2)
    # three identical events in one message: the third is new
    r = ing.ingest_messages([msg("production", two + two[:1])])
    assert (r.loaded, r.skipped) == (1, 2)
    # another count at the same instant is another event, never a conflict
    r = ing.ingest_messages([msg("production", {"end": "2025-01-01T05:00:00", "produced": 2})])
    assert (r.loaded, r.quarantined) == (1, 0)
    assert rows(ing, "SELECT sum(produced), count(*), list(_occurrence ORDER BY _occurrence, produced) "
                     "FROM production") == [(5.0, 4, [1, 1, 2, 3])]
    # within one batch, identical events of two messages are one record each
    r = ing.ingest_messages([msg("production", {"end": "2025-01-01T06:00:00", "produced": 1}),
                             (topic("production"), b'{"end": "2025-01-01T06:00:00",  "produced": 1}')])
    assert (r.loaded, r.skipped) == (1, 1)
    # quality results without unit id: the same
    q = [{"ts": "2025-01-01T07:00:00", "result": "pass"}] * 2 + [{"ts": "2025-01-01T07:00:00", "result": "fail"}]
    assert ing.ingest_messages([msg("quality", q)]).loaded == 3
    assert ing.ingest_messages([msg("quality", q[::-1])]).loaded == 0  # the same events in another order


def test_unknown_equipment_quarantined_or_registered_from_topic(tmp_path):
    recs = [msg("states", {"start": "2025-01-01T08:00:00Z", "state": "production"}, eq="M5")]
    with LiveIngestor(tmp_path / "a.duckdb") as a:
        a.ingest_messages(recs)
        assert rows(a, "SELECT rule FROM quarantine") == [("unknown_equipment",)]
    with LiveIngestor(tmp_path / "b.duckdb", register_equipment=True, timezone="Asia/Shanghai") as b:
        r = b.ingest_messages(recs)
        assert r.loaded == 1
        assert rows(b, "SELECT equipment_id, work_center, area, site, enterprise, timezone FROM equipment") == [
            ("M5", "L1", "A1", "S1", "E1", "Asia/Shanghai")]
        b.ingest_messages([msg("states", {"start": "2025-01-01T09:00:00Z", "state": "setup"}, eq="M5")])
        assert rows(b, "SELECT count(*) FROM equipment") == [(1,)]


def test_registration_from_topics_only_for_the_allowed_enterprises(tmp_path):
    """Issue 14, item 14: with an allow-list, a publisher cannot create equipment for another enterprise."""
    rec = {"start": "2025-01-01T08:00:00Z", "state": "production"}
    mine = ("zhizao/v1/E1/S1/A1/L1/M7/states", json.dumps(rec).encode())
    theirs = ("zhizao/v1/E2/S9/A9/L9/M8/states", json.dumps(rec).encode())
    with LiveIngestor(tmp_path / "r.duckdb", register_equipment=True, register_enterprises=["E1"]) as i:
        r = i.ingest_messages([mine, theirs])
        assert (r.loaded, r.quarantined) == (1, 1)
        assert rows(i, "SELECT equipment_id, enterprise FROM equipment") == [("M7", "E1")]
        assert rows(i, "SELECT rule FROM quarantine") == [("unknown_equipment",)]


def test_mapping_file_applies_to_live_records(tmp_path):
    m = Mapping(table="states", states={"RUN": "production", "STOP": "unplanned_downtime"})
    with LiveIngestor(tmp_path / "m.duckdb", mappings={"states": m}, register_equipment=True) as i:
        i.ingest_messages([msg("states", [{"start": "2025-01-01T08:00:00Z", "state": "RUN"},
                                          {"start": "2025-01-01T09:00:00Z", "state": "STOP"},
                                          {"start": "2025-01-01T10:00:00Z", "state": "WHAT"}])])
        assert rows(i, "SELECT state, category FROM states ORDER BY start") == [
            ("RUN", "production"), ("STOP", "unplanned_downtime")]
        assert rows(i, "SELECT rule FROM quarantine") == [("unmapped_state",)]


def test_a_failed_batch_leaves_the_store_unchanged(ing, monkeypatch):
    import zhizao.live.ingestor as mod

    def boom(*a, **k):
        raise RuntimeError("disk full")

    good = [msg("production", {"end": "2025-01-01T01:00:00", "produced": 1}),
            msg("states", {"start": "2025-01-01T01:00:00", "state": "production"}), (topic("states"), b"x")]
    count = ("SELECT (SELECT count(*) FROM production), (SELECT count(*) FROM states), "
             "(SELECT count(*) FROM quarantine), (SELECT count(*) FROM live_messages), "
             "(SELECT count(*) FROM live_batches)")
    before = rows(ing, count)
    monkeypatch.setattr(mod.LiveIngestor, "_prune", boom)
    monkeypatch.setattr(ing, "_batch", 999)  # the next batch prunes -> fails after loading everything
    with pytest.raises(RuntimeError):
        ing.ingest_messages(good)
    assert rows(ing, count) == before
    monkeypatch.undo()
    r = ing.ingest_messages(good)  # the redelivery stores it
    assert (r.loaded, r.quarantined) == (2, 1)


def test_current_shift_kpi_includes_just_committed_records(ing):
    now = pd.Timestamp.now(tz="UTC").floor("s")
    # without a calendar the current shift is the plant's local day
    s, e, how = ing.current_shift(now)
    assert how == "day" and s <= now < e
    ing.ingest_messages([
        msg("calendar", {"scope": "S1", "start": (now - pd.Timedelta(hours=2)).isoformat(),
                         "end": (now + pd.Timedelta(hours=6)).isoformat(), "kind": "shift"}, eq="_"),
        msg("states", {"start": (now - pd.Timedelta(hours=1)).isoformat(), "state": "production"}),
        msg("production", {"start": (now - pd.Timedelta(minutes=5)).isoformat(),
                           "end": (now - pd.Timedelta(seconds=2)).isoformat(), "produced": 7})])
    df = ing.kpi(now=now)
    assert df["shift_source"].iloc[0] == "calendar"
    m1 = df[df["equipment_id"] == "M1"].iloc[0]
    assert m1["pq"] == 7 and m1["apt"] == pytest.approx(3600)  # the open state lasts until now
    ing.ingest_messages([msg("production", {"start": (now - pd.Timedelta(seconds=2)).isoformat(),
                                            "end": (now - pd.Timedelta(seconds=1)).isoformat(), "produced": 2})])
    assert ing.kpi(now=now).set_index("equipment_id").loc["M1", "pq"] == 9  # not a cached result


# ---------------------------------------------------------------------------------------------------- OPC UA logic
def test_counter_delta_resets_and_rollovers():
    assert counter_delta(10, 15) == (5, None)
    assert counter_delta(10, 10) == (0, None)
    assert counter_delta(500, 3) == (3, "reset")
    assert counter_delta(65530, 4, 65536) == (10, "rollover")
    assert counter_delta(300, 4, 65536) == (4, "reset")  # a small drop is a reset even with a modulus
    assert counter_delta(999.5, 0.5, 1000) == (1.0, "rollover")


def test_nodes_file_is_checked():
    ok = parse_nodes({"equipment": {"M1": {"parts": "ns=2;s=P", "site": "S1"}}, "states": {"R": "production"}})
    assert ok.equipment[0].meter_id == "EM-M1" and ok.equipment_records() == [
        {"equipment_id": "M1", "site": "S1", "timezone": "UTC"}]
    for bad in ({}, {"equipment": {"M1": {}}}, {"equipment": {"M1": {"partz": "x"}}},
                {"equipment": {"M1": {"parts": "x"}}, "states": {"R": "running"}},
                {"equipment": {"M1": {"parts": "x", "counter_rollover": -1}}}, {"equipment": {"M1": "x"}},
                {"equipment": {"M1": {"parts": "x"}}, "nodez": 1}):
        with pytest.raises(NodesError):
            parse_nodes(bad)


def test_converter_states_counts_scrap_energy_and_restart():
    cfg = parse_nodes({"state_codes": {0: "RUN", 4: "IDLE"}, "equipment": {
        "M1": {"state": "s", "parts": "p", "scrap": "x", "energy": "e", "counter_rollover": 1000}}})
    t0 = dt.datetime(2025, 1, 1, 8, tzinfo=dt.UTC)

    def at(s):
        return t0 + dt.timedelta(seconds=s)

    c = Converter(cfg)
    recs, state, events = c.convert([("M1", "parts", 100, at(0)), ("M1", "scrap", 0, at(0)),
                                     ("M1", "energy", 50.0, at(0)), ("M1", "state", 4, at(0))])
    assert recs == {"states": [{"equipment_id": "M1", "start": at(0), "state": "IDLE"}]}  # baselines only
    # scrap seen before the parts it belongs to (arrival order differs from time order)
    recs, state, events = c.convert([("M1", "parts", 110, at(60)), ("M1", "state", 0.0, at(1)),
                                     ("M1", "scrap", 3, at(70)), ("M1", "parts", 112, at(120)),
                                     ("M1", "parts", 130, at(180)), ("M1", "state", 0, at(181)),
                                     ("M1", "energy", 52.5, at(180)), ("M1", "parts", 5, at(240)),
                                     ("M1", "parts", 995, at(300)), ("M1", "parts", 3, at(360))])
    assert recs["states"] == [{"equipment_id": "M1", "start": at(1), "state": "RUN"}]
    assert [(r["start"], r["end"], r["produced"], r.get("scrap")) for r in recs["production"]] == [
        (at(0), at(60), 10, None), (at(60), at(120), 2, 2), (at(120), at(180), 18, 1), (at(180), at(240), 5, None),
        (at(240), at(300), 990, None), (at(300), at(360), 8, None)]
    assert recs["energy"] == [{"meter_id": "EM-M1", "equipment_id": "M1", "start": at(0), "end": at(180),
                               "carrier": "electricity", "quantity": 2.5, "unit": "kWh", "reading": "interval"}]
    assert [(e.kind, e.previous, e.value) for e in events] == [("reset", 130, 5), ("rollover", 995, 3)]
    # a restart: the stored baselines bridge the gap, the unchanged state is not repeated
    stored = {s.key: (s.value, pd.Timestamp(s.ts)) for s in state}
    c2 = Converter(cfg, stored)
    recs, _, _ = c2.convert([("M1", "state", 0, at(400)), ("M1", "parts", 13, at(500))])
    assert recs == {"production": [{"equipment_id": "M1", "start": at(360), "end": at(500), "produced": 10}]}


def test_ingest_records_keeps_source_state_in_the_same_transaction(tmp_path):
    with LiveIngestor(tmp_path / "o.duckdb", source="opcua") as i:
        t = dt.datetime(2025, 1, 1, 8, tzinfo=dt.UTC)
        i.ingest_records({"equipment": [{"equipment_id": "M1"}]})
        r = i.ingest_records({"production": [{"equipment_id": "M1", "start": t, "end": t + dt.timedelta(minutes=1),
                                              "produced": 4}]},
                             [StateUpdate("M1.parts", 104.0, t), StateUpdate("M1.state", "3", t)])
        assert r.loaded == 1
        st = i.state()
        assert st["M1.parts"][0] == 104.0 and st["M1.state"][0] == "3"


# ---------------------------------------------------------------------------------------------------- CLI
def test_register_adds_commands_and_bad_input_exits_2(tmp_path):
    from zhizao.cli.live import register

    app = typer.Typer()

    @app.command()
    def other():
        pass

    register(app)
    run = CliRunner().invoke
    out = run(app, ["--help"]).output
    assert "listen" in out and "simulate-live" in out
    assert "mqtt" in run(app, ["listen", "--help"]).output
    for args, text in [(["listen", "mqtt", "--broker", "h:x"], "not a number"),
                       (["listen", "mqtt", "--broker", "h:1", "--timezone", "Mars/Olympus"], "time zone"),
                       (["listen", "mqtt", "--broker", "h:1", "--mapping", str(tmp_path / "no.yaml")], "no.yaml"),
                       (["listen", "opcua", "--endpoint", "http://x", "--nodes", "n.yaml"], "opc.tcp"),
                       (["listen", "opcua", "--endpoint", "opc.tcp://h:1", "--nodes", str(tmp_path / "n.yaml")],
                        "n.yaml"),
                       (["simulate-live", "--to", "kafka"], "unknown target")]:
        res = run(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert text in res.output


def test_a_poison_message_is_isolated_and_quarantined(ing, monkeypatch):
    import duckdb

    import zhizao.live.ingestor as mod

    stage = mod.LiveIngestor._stage

    def picky(self, msgs, rep):  # the store chokes on one payload
        if any("poison" in p for p in msgs.column("payload").to_pylist()):
            raise duckdb.InvalidInputException("cannot digest this")
        return stage(self, msgs, rep)

    monkeypatch.setattr(mod.LiveIngestor, "_stage", picky)
    batch = [msg("production", {"end": f"2025-01-01T0{h}:00:00", "produced": h}) for h in range(1, 6)]
    batch.insert(3, msg("production", {"end": "2025-01-01T09:00:00", "produced": 1, "note": "poison"}))
    r = ing.ingest_messages(batch)
    assert (r.messages, r.loaded, r.quarantined) == (6, 5, 1)
    assert rows(ing, "SELECT rule, source, detail FROM quarantine") == [
        ("unloadable", topic("production"), "cannot digest this")]
    assert ing.ingest_messages(batch).duplicate_messages == 6  # the redelivery is skipped, poison included
    # a failure of the store itself is not blamed on a message
    monkeypatch.setattr(mod.LiveIngestor, "_stage", lambda *a: (_ for _ in ()).throw(duckdb.IOException("disk")))
    with pytest.raises(duckdb.IOException):
        ing.ingest_messages([msg("production", {"end": "2025-01-02T01:00:00", "produced": 1})])


def test_simulate_live_option_delegates_to_simulate_live(monkeypatch, tmp_path):
    """``zhizao simulate --live mqtt|opcua`` (the issue's form) runs the same code as ``simulate-live --to``."""
    import zhizao.cli.live as live_cli
    from zhizao.cli.main import app

    calls = []
    monkeypatch.setattr(live_cli, "simulate_live", lambda **kw: calls.append(kw))
    run = CliRunner().invoke
    res = run(app, ["simulate", "--live", "mqtt", "--broker", "127.0.0.1:1999", "--machines", "3", "--speed", "60",
                    "--records-per-message", "5", "--duration", "2", "--seed", "4"])
    assert res.exit_code == 0, res.output
    assert calls == [dict(to="mqtt", broker="127.0.0.1:1999", endpoint="opc.tcp://127.0.0.1:4840/zhizao/",
                          nodes_out=None, speed=60.0, machines=3, days=1, seed=4, start=None,
                          timezone="Europe/Berlin", backlog=True, records_per_message=5, prefix="zhizao/v1",
                          duration=2.0, quiet=False)]
    res = run(app, ["simulate", "--live", "opcua", "--nodes-out", str(tmp_path / "n.yaml"), "--days", "2"])
    assert res.exit_code == 0 and calls[-1]["to"] == "opcua" and calls[-1]["days"] == 2
    assert calls[-1]["nodes_out"] == tmp_path / "n.yaml"
    monkeypatch.undo()
    # bad input: exit 2 with one line naming the problem
    res = run(app, ["simulate", "--live", "kafka"])
    assert res.exit_code == 2 and "unknown target 'kafka'" in res.output
    res = run(app, ["simulate", "--live", "mqtt", "-o", str(tmp_path / "out")])
    assert res.exit_code == 2 and "with --live" in res.output
    # without --live the files are written as before (defaults: 14 days from 2025-03-03)
    res = run(app, ["simulate", "--machines", "1", "--days", "1", "-o", str(tmp_path / "plant")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "plant").is_dir() and any((tmp_path / "plant").iterdir())


# ---------------------------------------------------------------------------------------------------- fast paths
def test_identical_records_within_and_across_batches_are_stored_once(ing):
    """Many messages re-sending records (in the same batch and in later ones): every record stored once, a
    changed re-send quarantined once as a conflict, the counts add up."""
    def rec(k, produced=None):  # interval counts: their key names them (counts at an instant are events)
        return {"start": f"2025-01-01T{k // 60:02d}:{k % 60:02d}:00",
                "end": f"2025-01-01T{(k + 1) // 60:02d}:{(k + 1) % 60:02d}:00", "order_id": f"W{k}",
                "produced": produced if produced is not None else k % 7}

    first = [msg("production", [rec(k) for k in range(i, i + 10)]) for i in range(0, 200, 10)]
    # the same records again, regrouped into other messages of the same batch
    resent = [msg("production", [rec(k) for k in range(i, i + 7)]) for i in range(0, 196, 7)]
    r1 = ing.ingest_messages(first + resent)
    assert (r1.loaded, r1.skipped, r1.quarantined) == (200, 196, 0)
    # a later batch: identical ones skipped (stored), one with other values a conflict, new ones loaded
    r2 = ing.ingest_messages([msg("production", [rec(k) for k in range(150, 250)]),
                              msg("production", [rec(5, produced=99)])])
    assert (r2.loaded, r2.skipped, r2.quarantined) == (50, 50, 1)
    assert rows(ing, "SELECT count(*), count(DISTINCT order_id) FROM production") == [(250, 250)]
    assert rows(ing, "SELECT rule, record FROM quarantine") == [("conflicts_with_stored", 1)]


def test_a_mapping_that_fails_on_live_records_quarantines_its_table_only(tmp_path):
    m = Mapping(table="states", columns={"start": {"sql": "CAST(start AS INTEGER)"}}, source="bad.yaml")
    with LiveIngestor(tmp_path / "m.duckdb", mappings={"states": m}, register_equipment=True) as i:
        r = i.ingest_messages([msg("states", [{"start": "2025-01-01T08:00:00Z", "state": "production"}]),
                               msg("production", {"end": "2025-01-01T09:00:00Z", "produced": 3})])
        assert (r.loaded, r.quarantined) == (1, 1)
        q = rows(i, "SELECT rule, source, detail FROM quarantine")
        assert len(q) == 1 and q[0][:2] == ("mapping_error", topic("states"))
        assert q[0][2].startswith("bad.yaml: a mapping expression fails on batch")


class _ChunkSocket:
    """A socket whose recv returns prepared chunks, then would block."""

    def __init__(self, chunks):
        self.chunks = list(chunks)

    def recv(self, n):
        if not self.chunks:
            raise BlockingIOError
        c = self.chunks.pop(0)
        assert len(c) <= n
        return c

    def pending(self):
        return 0

    def close(self):
        pass


def _publish(topic_, payload, mid, qos=1, props=b"", v5=True):
    import struct

    def _varint(n):
        out = bytearray()
        while True:
            b, n = n & 127, n >> 7
            out.append(b | (128 if n else 0))
            if not n:
                return bytes(out)

    t = topic_.encode()
    body = struct.pack("!H", len(t)) + t + (struct.pack("!H", mid) if qos else b"") + \
        ((_varint(len(props)) + props) if v5 else b"") + payload
    return bytes([0x30 | (qos << 1)]) + _varint(len(body)) + body


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_buffered_mqtt_reader_splits_packets_and_leaves_the_rest_to_paho(protocol):
    from zhizao.live.mqtt import _BufferedClient, _client, _fast_client_usable

    assert _fast_client_usable()
    v5 = protocol == "5"
    got, slow = [], []
    c = _client("t", protocol, True, None, None, None, sink=got.extend)
    assert isinstance(c, _BufferedClient)
    c.on_message = lambda cl, u, m: slow.append((m.topic, m.payload, m.mid, m.qos))
    big = b"[" + b",".join([b'{"produced": 1}'] * 2000) + b"]"  # longer than one read of 16 KiB here
    stream = (_publish("a/b", b"[1]", 1, v5=v5) + _publish("a/c", big, 2, v5=v5) +
              _publish("a/d", b"{}", 0, qos=0, v5=v5) +  # QoS 0: paho's path
              (_publish("a/e", b"{}", 3, props=b"\x01\x01", v5=v5) if v5 else b"") +  # a property: paho's path
              _publish("a/f", b"", 4, v5=v5) +
              b"\xd0\x00")  # PINGRESP
    chunks = [stream[i:i + 16384] for i in range(0, len(stream), 16384)]
    chunks = [chunks[0][:3], chunks[0][3:]] + chunks[1:]  # a split inside the first packet's header
    c._sock = _ChunkSocket(chunks)
    c._state = mqtt_state_connected()
    for _ in range(len(chunks) + 2):
        assert c.loop_read() == 0
    assert got == [("a/b", b"[1]", 1), ("a/c", big, 2), ("a/f", b"", 4)]
    assert slow == [("a/d", b"{}", 0, 0)] + ([("a/e", b"{}", 3, 1)] if v5 else [])
    # the PUBACKs of a batch: one queued write, in order
    c._out_packet.clear()
    c.ack_many([1, 2, 300])
    assert [p["packet"] for p in c._out_packet] == [b"\x40\x02\x00\x01\x40\x02\x00\x02\x40\x02\x01\x2c"]
    # a new connection starts a new stream: a half packet of the old one is dropped
    c._sock = _ChunkSocket([_publish("a/g", b"[]", 5, v5=v5)[:4]])
    c.loop_read()
    c._sock = _ChunkSocket([_publish("a/h", b"[]", 6, v5=v5)])
    c.loop_read()
    assert got[-1] == ("a/h", b"[]", 6)


def mqtt_state_connected():
    from paho.mqtt.enums import _ConnectionState

    return _ConnectionState.MQTT_CS_CONNECTED


def test_simulate_live_prints_progress_lines_unless_quiet(monkeypatch):
    """``simulate --live`` promised progress lines (its --quiet turns them off) but printed only a first and a
    last line: it prints one every PROGRESS_EVERY seconds with what was published since the previous one and
    the simulated time in the plant's zone; the lines add up to the total; --quiet prints none."""
    import re

    import zhizao.cli.live as live_cli
    import zhizao.live as live_pkg
    from zhizao.cli.main import app

    sent: list[str] = []

    class Publisher:  # stands for the broker: counts what is published
        def __init__(self, host, port):
            pass

        def wait_connected(self, timeout):
            return True

        def publish(self, topic, payload):
            sent.append(payload)

        def flush(self, timeout):
            pass

        def close(self):
            pass

    monkeypatch.setattr(live_pkg, "MqttPublisher", Publisher)
    monkeypatch.setattr(live_cli, "PROGRESS_EVERY", 0.25)
    start = (pd.Timestamp.now(tz="Asia/Shanghai") - pd.Timedelta(days=1)).date().isoformat()
    args = ["simulate", "--live", "mqtt", "--machines", "2", "--speed", "7200", "--duration", "1.6",
            "--start", start, "--days", "3", "--timezone", "Asia/Shanghai"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    line = re.compile(r"^zhizao: (\d+) messages, (\d+) records published in the last 0\.25 s; "
                      r"simulated time (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\+0800$")
    progress = [m for m in map(line.match, res.stderr.splitlines()) if m]
    assert len(progress) >= 3, res.stderr
    total = re.search(r"published (\d+) records in (\d+) messages", res.stderr)
    assert total and int(total[2]) == len(sent) > 0
    assert sum(int(m[1]) for m in progress) <= len(sent)
    assert sum(int(m[2]) for m in progress) <= int(total[1])
    assert sum(int(m[1]) for m in progress[1:]) > 0  # records fall due while it plays (2 simulated hours a second)
    times = [pd.Timestamp(m[3]) for m in progress]
    assert times == sorted(times) and times[-1] - times[0] >= pd.Timedelta(minutes=30)
    assert not any(x.startswith("zhizao:") for x in res.stdout.splitlines())  # progress goes to stderr
    sent.clear()
    quiet = CliRunner().invoke(app, [*args, "--quiet"])
    assert quiet.exit_code == 0 and sent and "zhizao:" not in quiet.output
