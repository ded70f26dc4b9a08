"""OPC UA end to end: an asyncua server started in the test, the listener subscribing to its nodes."""

import asyncio
import datetime as dt
import json
import subprocess
import sys
import threading
from typing import ClassVar

import duckdb
import pytest
import yaml

from canonical import wait_for
from zhizao.live import LiveIngestor, OpcUaListener, parse_nodes
from zhizao.live.broker import free_port

asyncua = pytest.importorskip("asyncua")
ua = asyncua.ua


class Server:
    """An asyncua server with State / Parts / Scrap / Energy variables per machine, in its own thread."""

    TYPES: ClassVar[dict] = {"State": ua.VariantType.Int32, "Parts": ua.VariantType.UInt32, "Scrap": ua.VariantType.UInt32,
             "Energy": ua.VariantType.Double}

    def __init__(self, machines, initial):
        self.port = free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}/test/"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.nodes = {}
        self.run(self._setup(machines, initial), 60)

    def run(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _setup(self, machines, initial):
        self.server = asyncua.Server()
        await self.server.init()
        self.server.set_endpoint(self.endpoint)
        self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self.ns = await self.server.register_namespace("urn:zhizao:test")
        t0 = initial.pop("_ts")
        for m in machines:
            obj = await self.server.nodes.objects.add_object(self.ns, m)
            for sig, vt in self.TYPES.items():
                node = await obj.add_variable(ua.NodeId(f"{m}.{sig}", self.ns), sig, ua.Variant(initial[sig], vt))
                await node.write_value(ua.DataValue(ua.Variant(initial[sig], vt), SourceTimestamp=t0,
                                                    ServerTimestamp=t0))
                self.nodes[(m, sig)] = node
        await self.server.start()

    def write(self, m, sig, value, ts):
        vt = self.TYPES[sig]
        self.run(self.nodes[(m, sig)].write_value(ua.DataValue(ua.Variant(value, vt), SourceTimestamp=ts,
                                                               ServerTimestamp=ts)))

    def stop(self):
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_value_changes_become_states_production_and_energy_and_survive_a_restart(tmp_path):
    t0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)

    def at(s):
        return t0 + dt.timedelta(seconds=s)

    srv = Server(["M1"], {"State": 4, "Parts": 100, "Scrap": 0, "Energy": 1000.0, "_ts": at(0)})
    cfg = parse_nodes({
        "publishing_interval_ms": 50, "timezone": "Asia/Shanghai",
        "state_codes": {0: "RUN", 2: "FAIL", 4: "IDLE"},
        "states": {"RUN": "production", "FAIL": "unplanned_downtime", "IDLE": "no_order"},
        "equipment": {"M1": {"state": f"ns={srv.ns};s=M1.State", "parts": f"ns={srv.ns};s=M1.Parts",
                             "scrap": f"ns={srv.ns};s=M1.Scrap", "energy": f"ns={srv.ns};s=M1.Energy",
                             "counter_rollover": 65536, "work_center": "L1", "site": "S1"}}})
    db = tmp_path / "opcua.duckdb"

    def listen():
        ing = LiveIngestor(db, source="opcua", mappings={"states": cfg.mapping()})
        lst = OpcUaListener(ing, srv.endpoint, cfg, batch_seconds=0.1)
        lst.start()
        assert lst.wait_subscribed(30)
        return ing, lst

    def count(ing, sql):
        return ing.ws.con.execute(sql).fetchall()

    try:
        ing, lst = listen()
        wait_for(lambda: count(ing, "SELECT count(*) FROM states")[0][0] == 1, 30, "the initial state")
        srv.write("M1", "State", 0, at(10))
        srv.write("M1", "Parts", 110, at(60))
        srv.write("M1", "Scrap", 1, at(61))
        srv.write("M1", "Parts", 125, at(120))
        srv.write("M1", "Energy", 1012.5, at(120))
        srv.write("M1", "Parts", 7, at(180))  # reset to zero, then 7 made
        srv.write("M1", "Parts", 65530, at(240))
        srv.write("M1", "Parts", 4, at(300))  # rollover of a 16-bit counter
        srv.write("M1", "State", 2, at(301))
        srv.write("M1", "State", 9, at(302))  # a code the mapping does not know
        wait_for(lambda: count(ing, "SELECT count(*) FROM production")[0][0] == 5, 30, "the counts")
        wait_for(lambda: count(ing, "SELECT count(*) FROM quarantine")[0][0] == 1, 30, "the unknown code")
        lst.stop()
        assert lst.error is None
        assert count(ing, "SELECT state, category FROM states ORDER BY start") == [
            ("IDLE", "no_order"), ("RUN", "production"), ("FAIL", "unplanned_downtime")]
        assert count(ing, "SELECT rule, source FROM quarantine") == [("unmapped_state", srv.endpoint)]
        assert count(ing, "SELECT produced, scrap FROM production ORDER BY start") == [
            (10, None), (15, 1), (7, None), (65523, None), (10, None)]
        assert count(ing, "SELECT quantity, start, \"end\" FROM energy") == [(12.5, at(0), at(120))]
        assert count(ing, "SELECT kind FROM live_events ORDER BY ts") == [("reset",), ("rollover",)]
        assert count(ing, "SELECT work_center, site, timezone FROM equipment") == [("L1", "S1", "Asia/Shanghai")]
        ing.close()

        # while nobody listens the machine makes 20 parts; the restarted listener counts them once
        srv.write("M1", "Parts", 24, at(400))
        ing, lst = listen()
        wait_for(lambda: count(ing, "SELECT count(*) FROM production")[0][0] == 6, 30, "the parts made meanwhile")
        srv.write("M1", "Parts", 30, at(460))
        wait_for(lambda: count(ing, "SELECT count(*) FROM production")[0][0] == 7, 30, "the next count")
        lst.stop()
        assert count(ing, "SELECT produced, start, \"end\" FROM production ORDER BY start")[-2:] == [
            (20, at(300), at(400)), (6, at(400), at(460))]
        assert count(ing, "SELECT count(*) FROM states") == [(3,)]  # the unchanged state is not repeated
        assert count(ing, "SELECT count(*) FROM quarantine") == [(1,)]
        ing.close()
    finally:
        srv.stop()


def test_simulator_serves_opcua_and_the_listener_cli_stores_it(tmp_path):
    from zhizao.live.simulate import nodes_document, today
    from zhizao.simulate import simulate_plant

    port = free_port()
    endpoint = f"opc.tcp://127.0.0.1:{port}/zhizao/"
    nodes, sim_nodes = tmp_path / "nodes.yaml", tmp_path / "sim-nodes.yaml"
    db, status = tmp_path / "opcua.duckdb", tmp_path / "status.json"
    # the nodes file is known in advance (the simulator's first namespace has index 2): start both at once
    tables = simulate_plant(machines=2, days=1, seed=0, start=today("Europe/Berlin"), timezone="Europe/Berlin",
                            holidays=[])
    nodes.write_text(yaml.safe_dump(nodes_document(tables)))
    cli = [sys.executable, "-m", "zhizao.cli.live"]
    sim = subprocess.Popen(cli + ["simulate-live", "--to", "opcua", "--endpoint", endpoint, "--nodes-out",
                                  str(sim_nodes), "--machines", "2", "--speed", "1200", "--duration", "60",
                                  # two days: the plays start at the present, so late in the plant's day one
                                  # day's remainder (40 min at 23:20 = 2 s at speed 1200) ends before the listener
                                  # has subscribed; two days leave at least 24 h (72 s) of simulated time
                                  "--days", "2", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lst = subprocess.Popen(cli + ["listen", "opcua", "--endpoint", endpoint, "--nodes", str(nodes), "--db", str(db),
                                  "--status", str(status), "--quiet", "--batch-seconds", "0.2"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def progressed():
            assert sim.poll() is None and lst.poll() is None
            try:
                s = json.loads(status.read_text())
            except (OSError, ValueError):
                return False
            return s.get("subscribed") and s.get("loaded", 0) >= 10  # equipment, states, counts, energy
        wait_for(progressed, 90, "records from the simulator")
        assert yaml.safe_load(sim_nodes.read_text()) == yaml.safe_load(nodes.read_text())
    finally:
        for p in (lst, sim):
            p.terminate()
        for p in (lst, sim):
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    assert lst.returncode == 0, lst.stderr.read().decode()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT equipment_id, work_center, site FROM equipment ORDER BY 1").fetchall() == [
            ("M001", "L01", "S1"), ("M002", "L01", "S1")]
        n = dict(con.execute("""SELECT 'states', count(*) FROM states UNION ALL SELECT 'production', count(*)
                                FROM production UNION ALL SELECT 'energy', count(*) FROM energy""").fetchall())
        assert n["states"] >= 2 and n["production"] + n["energy"] >= 1
        assert con.execute("SELECT count(*) FROM quarantine").fetchall() == [(0,)]
