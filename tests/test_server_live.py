"""One store, many sources: ``zhizao serve --mqtt`` subscribes to a broker and stores into the store it serves
(issue 15). Against a real Eclipse Mosquitto on a loopback port (skipped if mosquitto is missing)."""

from __future__ import annotations

import json

import duckdb
import pytest

from canonical import wait_for
from test_server_support import PASSWORD, A, B, bearer, clone, login, make_client
from zhizao.live import MqttPublisher, topic_for
from zhizao.live.broker import Mosquitto, mosquitto_binary

pytest.importorskip("fastapi")


def _hierarchy(db, eq: str) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        r = con.execute("SELECT equipment_id, work_center, area, site, enterprise FROM equipment "
                        "WHERE equipment_id = ?", [eq]).fetchone()
    finally:
        con.close()
    return dict(zip(("equipment", "work_center", "area", "site", "enterprise"), r))


@pytest.mark.skipif(mosquitto_binary() is None,
                    reason="mosquitto is not installed (apt-get install mosquitto; .ci/run installs it)")
def test_the_server_stores_live_mqtt_records_and_its_pages_show_them(tmp_path):
    from zhizao.server.live import MqttSource

    broker = Mosquitto(tmp_path / "mosquitto").start()
    db = clone(tmp_path / "live.duckdb")
    eq = f"{A}-WC1-M1"
    h = _hierarchy(db, eq)
    client = make_client(db, live=[MqttSource("127.0.0.1", broker.port, client_id="zhizao-test-server")])
    server = client.app.state.server
    pub = None
    try:
        ha, hb = bearer(login(client, "usera")), bearer(login(client, "userb"))
        server.start()
        assert server.live.listeners[0].wait_subscribed(30)
        kpi = "/api/v1/kpi?level=equipment&period=all"
        before = {r["equipment_id"]: r["pq"] for r in client.get(kpi, headers=ha).json()}
        for path in ("/plant", kpi):  # B's results, cached before A's live records arrive
            assert client.get(path, headers=hb).status_code == 200
        misses = server.store.results.misses
        seq = server.store.counters.get("seq", 0)
        rec = {"end": "2026-01-05T10:00:00+08:00", "produced": 7}
        pub = MqttPublisher("127.0.0.1", broker.port)
        assert pub.wait_connected(30)
        t = topic_for("production", h["equipment"], h["work_center"], h["area"], h["site"], h["enterprise"])
        pub.publish(t, json.dumps(rec))
        pub.publish(t, json.dumps(rec))  # the same record again (a publisher's resend): stored once

        def seen():
            rows = {r["equipment_id"]: r["pq"] for r in client.get(kpi, headers=ha).json()}
            return rows if rows.get(eq) == (before.get(eq) or 0) + 7 else None
        wait_for(seen, 60, "the live record in tenant A's KPIs")
        # the batches declared what they changed: production of that machine only (its elements are updated)
        assert server.store.changed_since(seq, server.store.counters["seq"]) == {eq}
        # B's cached results were not recomputed by A's live batch
        misses_a = server.store.results.misses
        for path in ("/plant", kpi):
            assert client.get(path, headers=hb).status_code == 200
        assert server.store.results.misses == misses_a and misses_a > misses
        status = server.live.status()[0]
        assert status["subscribed"] and status["error"] is None and status["loaded"] == 1
        # the administrator sees the sources in the health answer; a tenant does not
        root = bearer(login(client, "root"))
        live = client.get("/api/v1/health", headers=root).json()["live"]
        assert live[0]["source"] == f"mqtt 127.0.0.1:{broker.port}" and live[0]["loaded"] == 1
        assert "live" not in client.get("/api/v1/health", headers=ha).json()
    finally:
        if pub is not None:
            pub.close()
        server.close()
        broker.stop()
    con = duckdb.connect(str(db), read_only=True)
    try:
        n = con.execute("SELECT count(*) FROM production WHERE equipment_id = ? AND _source LIKE 'live:%'",
                        [eq]).fetchone()[0]
    finally:
        con.close()
    assert n == 1


def test_serve_refuses_live_sources_it_cannot_use(tmp_path):
    from typer.testing import CliRunner

    from zhizao.cli.main import app

    db = str(clone(tmp_path / "s.duckdb"))
    for args, text in ((["--opcua", "opc.tcp://127.0.0.1:4840/x"], "--nodes"),
                       (["--opcua", "http://x", "--nodes", db], "opc.tcp://"),
                       (["--opcua", "opc.tcp://127.0.0.1:4840/x", "--nodes", str(tmp_path / "no.yaml")],
                        "no such file"),
                       (["--mqtt", "broker:port"], "--mqtt broker:port"),
                       # printed as given (":abc:" is an emoji code to Rich), naming the option used
                       (["--mqtt", "127.0.0.1:abc"], "--mqtt 127.0.0.1:abc"),
                       (["--mqtt", "ws://127.0.0.1:9001"], "is not supported")):
        r = CliRunner().invoke(app, ["serve", "--db", db, *args])
        assert r.exit_code == 2, (args, r.output)
        assert text in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert B  # the store's second tenant is untouched by the refusals


def test_the_server_stores_live_opcua_values(tmp_path):
    """``zhizao serve --opcua ENDPOINT --nodes FILE``: value changes of an OPC UA server become states and
    production in the store the server serves, and its KPIs show them."""
    import datetime as dt

    import yaml

    pytest.importorskip("asyncua")
    import zhizao
    from test_live_opcua import Server
    from zhizao.server import accounts
    from zhizao.server.live import OpcUaSource

    t0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    srv = Server(["M1"], {"State": 4, "Parts": 100, "Scrap": 0, "Energy": 1000.0, "_ts": t0})
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(yaml.safe_dump({
        "publishing_interval_ms": 50, "timezone": "Asia/Shanghai",
        "state_codes": {0: "RUN", 4: "IDLE"}, "states": {"RUN": "production", "IDLE": "no_order"},
        "equipment": {"M1": {"state": f"ns={srv.ns};s=M1.State", "parts": f"ns={srv.ns};s=M1.Parts",
                             "work_center": "L1", "site": "S1", "enterprise": "E1"}}}))
    db = tmp_path / "opcua.duckdb"
    with zhizao.connect(db) as ws:
        accounts.ensure_tables(ws.con)
        accounts.add_user(ws.con, "root", PASSWORD, "admin")
    client = make_client(db, live=[OpcUaSource(srv.endpoint, nodes)])
    server = client.app.state.server
    try:
        h = bearer(login(client, "root"))
        server.start()
        assert server.live.listeners[0].wait_subscribed(30)
        srv.write("M1", "State", 0, t0 + dt.timedelta(seconds=10))
        srv.write("M1", "Parts", 112, t0 + dt.timedelta(seconds=60))

        def pq():
            r = client.get("/api/v1/kpi?level=equipment&period=all", headers=h)
            rows = r.json() if r.status_code == 200 else []
            return next((x["pq"] for x in rows if x["equipment_id"] == "M1" and x["pq"] == 12), None)
        wait_for(pq, 60, "the parts counted from the OPC UA server in the KPIs")
        assert server.live.status()[0]["error"] is None
    finally:
        server.close()
        srv.stop()
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT state FROM states ORDER BY start").fetchall() == [("IDLE",), ("RUN",)]
        assert con.execute("SELECT enterprise FROM equipment").fetchall() == [("E1",)]
    finally:
        con.close()


def test_a_source_that_does_not_subscribe_is_reported_on_the_log(caplog):
    import logging
    import threading

    from zhizao.server.live import LiveSources, MqttSource

    class Listener:  # a listener whose broker never answers
        subscribed = threading.Event()
        error = None

    with caplog.at_level(logging.WARNING, logger="zhizao.server"):
        LiveSources._watch(MqttSource("127.0.0.1", 1), Listener(), after=0.05)
    assert "live source mqtt 127.0.0.1:1: not subscribed" in caplog.text and "/api/v1/health" in caplog.text


def test_mqtt_urls_are_read_as_host_and_port():
    from zhizao.live import parse_broker

    assert parse_broker("mqtt://127.0.0.1:18831") == ("127.0.0.1", 18831)
    assert parse_broker("tcp://broker.local/") == ("broker.local", 1883)
    for bad in ("mqtts://broker:8883", "mqtt://broker:1883/x", "127.0.0.1:abc"):
        with pytest.raises(ValueError):
            parse_broker(bad)
