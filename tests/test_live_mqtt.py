"""MQTT end to end against a real Eclipse Mosquitto on a loopback port (skipped if mosquitto is missing).

The listener runs as the command line does (``python -m zhizao.cli.live listen mqtt``), in its own process,
so that it can be killed with SIGKILL.
"""

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from canonical import wait_for
from zhizao.live import LiveIngestor, MqttListener, MqttPublisher, topic_for
from zhizao.live.broker import Mosquitto, mosquitto_binary

pytestmark = pytest.mark.skipif(mosquitto_binary() is None,
                                reason="mosquitto is not installed (apt-get install mosquitto; .ci/run installs it)")


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path / "mosquitto").start()
    yield b
    b.stop()


@pytest.fixture
def spawned():
    """Processes a test starts; whatever still runs at the end is killed."""
    procs = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(30)


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def start_listener(broker, db, status, *extra, log=None):
    if status.exists():
        status.unlink()
    return subprocess.Popen([sys.executable, "-m", "zhizao.cli.live", "listen", "mqtt", "--broker", broker.address,
                             "--db", str(db), "--status", str(status), "--quiet", *extra],
                            stdout=subprocess.DEVNULL, stderr=log or subprocess.DEVNULL)


def wait_subscribed(proc, status, timeout=60):
    def ok():
        assert proc.poll() is None, f"listener exited with {proc.returncode}"
        s = read_json(status)
        return s if s and s.get("subscribed") else None
    return wait_for(ok, timeout, "the listener's subscription")


def stop(proc, timeout=60):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout)
    return proc.returncode


def topic(eq, table="production"):
    return topic_for(table, eq, "L1", "A1", "S1", "E1")


def test_no_loss_exactly_once_across_listener_kills_and_a_broker_restart(broker, tmp_path, spawned):
    db, status = tmp_path / "live.duckdb", tmp_path / "status.json"
    log = open(tmp_path / "listener.log", "ab")  # noqa: SIM115  (the listeners' stderr; closed at the end)

    def listener():
        p = start_listener(broker, db, status, "--register-equipment", log=log)
        spawned.append(p)
        return p

    lst = listener()
    wait_subscribed(lst, status)

    # the stream: 1-3 records per message, a few malformed payloads, re-sent messages and re-sent records
    base = pd.Timestamp("2025-03-03T06:00:00Z")
    msgs, expected, n_bad, k = [], set(), 0, 0
    last = None
    for i in range(1500):
        if i % 300 == 299:
            msgs.append((topic("M1"), f"{{broken {i}".encode()))
            n_bad += 1
            continue
        eq = f"M{i % 4}"
        recs = []
        for _ in range(1 + i % 3):
            k += 1
            t = base + pd.Timedelta(seconds=k)
            recs.append({"start": t.isoformat(), "end": (t + pd.Timedelta(seconds=1)).isoformat(),
                         "order_id": f"O{k}", "produced": 1 + k % 7})
            expected.add((eq, f"O{k}"))
        payload = json.dumps(recs).encode()
        msgs.append((topic(eq), payload))
        if i % 97 == 0:
            msgs.append((topic(eq), payload))  # the same message again
        if i % 131 == 0 and last is not None:
            k += 1
            t = base + pd.Timedelta(seconds=k)
            fresh = {"start": t.isoformat(), "end": (t + pd.Timedelta(seconds=1)).isoformat(), "order_id": f"O{k}",
                     "produced": 2}
            expected.add((last[0], f"O{k}"))
            msgs.append((topic(last[0]), json.dumps([last[1], fresh]).encode()))  # a record again, in a new message
        last = (eq, recs[0])

    pub = MqttPublisher("127.0.0.1", broker.port, client_id="zhizao-test-publisher")
    assert pub.wait_connected(30)
    sent = [0]

    def publish():
        for t_, p in msgs:
            pub.publish(t_, p)
            sent[0] += 1
            time.sleep(0.004)

    th = threading.Thread(target=publish)
    th.start()
    n = len(msgs)
    wait_for(lambda: sent[0] >= n // 4, 60, "a quarter of the stream")
    lst.kill()  # SIGKILL, mid-stream
    lst.wait()
    lst = listener()
    wait_for(lambda: sent[0] >= n // 2, 60, "half of the stream")
    broker.restart()  # the broker goes away and comes back with its persistence file
    wait_for(lambda: sent[0] >= 3 * n // 4, 60, "three quarters of the stream")
    wait_subscribed(lst, status)
    lst.kill()
    lst.wait()
    lst = listener()
    th.join(120)
    assert pub.flush(60), "the broker did not acknowledge every message"
    pub.close()

    # drain: let the listener run until it is idle, stop it, look; again if something is missing
    deadline = time.time() + 60
    while True:
        wait_subscribed(lst, status)
        t_sub = time.time()
        wait_for(lambda t_sub=t_sub: time.time() - t_sub > 1.0 and (
            (read_json(status) or {}).get("last_commit") is None
            or time.time() - read_json(status)["last_commit"] > 1.5), 60, "an idle listener")
        assert stop(lst) == 0
        with duckdb.connect(str(db), read_only=True) as con:
            got = con.execute("SELECT equipment_id, order_id FROM production").fetchall()
            quarantine = con.execute("SELECT rule, source FROM quarantine").fetchall()
            redelivered = con.execute("SELECT sum(duplicate_messages) FROM live_batches").fetchall()[0][0]
        if len(set(got)) >= len(expected) or time.time() > deadline:
            break
        lst = listener()
    log.close()
    assert len(got) == len(set(got)), "a record was stored twice"
    assert set(got) == expected, f"{len(expected - set(got))} records lost"
    assert sorted(quarantine) == [("malformed_payload", topic("M1"))] * n_bad  # once each, despite redelivery
    assert redelivered is not None


def test_current_shift_kpis_include_a_record_within_5_seconds(broker, tmp_path, spawned):
    db, status, kpi = tmp_path / "live.duckdb", tmp_path / "status.json", tmp_path / "kpi.json"
    lst = start_listener(broker, db, status, "--register-equipment", "--kpi-every", "0.5", "--kpi-out", str(kpi),
                         log=open(tmp_path / "listener.log", "ab"))  # noqa: SIM115  (the child keeps it)
    spawned.append(lst)
    try:
        wait_subscribed(lst, status)
        pub = MqttPublisher("127.0.0.1", broker.port)
        assert pub.wait_connected(30)
        now = pd.Timestamp.now(tz="UTC")
        pub.publish(topic("M1", "equipment"), json.dumps({"name": "press 1"}))  # before the site's calendar
        pub.publish(topic_for("calendar", None, None, None, "S1", "E1"), json.dumps(
            {"scope": "S1", "start": (now - pd.Timedelta(hours=1)).isoformat(),
             "end": (now + pd.Timedelta(hours=7)).isoformat(), "kind": "shift", "name": "early"}))
        pub.publish(topic("M1", "states"), json.dumps({"start": (now - pd.Timedelta(minutes=30)).isoformat(),
                                                       "state": "production"}))

        def rows():
            d = read_json(kpi)
            return {r["equipment_id"]: r for r in d["rows"]} if d else {}

        # the calendar and the state may land in different micro-batches: KPIs computed in between use the
        # day as the shift; wait until they come from the calendar's shift
        wait_for(lambda: rows().get("M1", {}).get("apt") and rows()["M1"]["shift_source"] == "calendar", 60,
                 "the first KPIs of the calendar's shift")
        t0 = time.time()
        pub.publish(topic("M1"), json.dumps({"start": (pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=20)
                                                       ).isoformat(),
                                             "end": (pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=1)).isoformat(),
                                             "produced": 7}))
        wait_for(lambda: rows().get("M1", {}).get("pq") == 7, 30, "the record in the KPIs")
        elapsed = time.time() - t0
        print(f"record in the current shift KPIs after {elapsed:.2f} s")
        assert elapsed < 5.0
        pub.close()
    finally:
        assert stop(lst) == 0


#: the documented form (zhizao simulate --live mqtt) and the older simulate-live --to mqtt
SIMULATE_LIVE = {
    "simulate --live": [sys.executable, "-c", "import sys; from zhizao.cli.main import app; sys.argv[0] = 'zhizao'; "
                                              "app()", "simulate", "--live", "mqtt"],
    "simulate-live --to": [sys.executable, "-m", "zhizao.cli.live", "simulate-live", "--to", "mqtt"],
}


@pytest.mark.parametrize("form", list(SIMULATE_LIVE))
def test_simulator_plays_live_to_the_listener(broker, tmp_path, form):
    ing = LiveIngestor(tmp_path / "sim.duckdb")
    lst = MqttListener(ing, "127.0.0.1", broker.port, client_id="zhizao-test-sim-listener")
    lst.start()
    try:
        assert lst.wait_subscribed(30)
        res = subprocess.run(SIMULATE_LIVE[form] + [
                              "--broker", broker.address, "--machines", "3", "--speed", "600", "--duration", "2",
                              # the last week and today: the plays start at the present and send what was due
                              # before it at once, so a plant of today alone has no shift yet in the first hours
                              # of the Berlin day (pbt 0; the test failed after midnight, whatever the code)
                              "--start", (pd.Timestamp.now(tz="Europe/Berlin") - pd.Timedelta(days=7)).date()
                              .isoformat(), "--days", "8"],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        n_rec, n_msg = [int(x) for x in res.stderr.split("published ")[1].split(" records in ")[0:1] +
                        [res.stderr.split(" records in ")[1].split()[0]]]
        wait_for(lambda: ing.totals["messages"] >= n_msg, 60, "every simulated message")
    finally:
        lst.stop()
    assert lst.error is None
    assert ing.totals["quarantined"] == 0
    assert ing.totals["loaded"] + ing.totals["skipped"] == n_rec
    con = ing.ws.con
    assert con.execute("SELECT count(*) FROM equipment").fetchall() == [(3,)]
    assert con.execute("SELECT count(*) FROM states").fetchall()[0][0] > 0
    # the live KPIs of a shift that has begun: an hour into the latest simulated shift that started over an
    # hour ago (the current shift "so far" is empty in the first hours of a day without a night shift)
    shift = con.execute("SELECT max(start) FROM calendar WHERE kind = 'shift' AND start < now() - INTERVAL 1 HOUR"
                        ).fetchone()[0]
    df = ing.kpi(level="site", now=pd.Timestamp(shift) + pd.Timedelta(hours=1))
    assert list(df["site"]) == ["S1"] and df["pbt"].iloc[0] > 0
    ing.close()




def _certificates(d: Path):
    """A CA and a server certificate for 127.0.0.1 (PEM files in ``d``)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def cert(subject, key, issuer, issuer_key, ca, san=None):
        b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)])).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
             .not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    def pem(path, obj):
        if hasattr(obj, "private_bytes"):
            path.write_bytes(obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        else:
            path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("zhizao test CA", ca_key, "zhizao test CA", ca_key, True)
    srv = cert("127.0.0.1", key, "zhizao test CA", ca_key, False,
               [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    pem(d / "ca.pem", ca)
    pem(d / "server.pem", srv)
    pem(d / "server.key", key)
    return d / "ca.pem", d / "server.pem", d / "server.key"


def test_tls_and_password(tmp_path):
    from zhizao.live import TlsOptions

    ca, crt, key = _certificates(tmp_path)
    b = Mosquitto(tmp_path / "tls-broker", certfile=crt, keyfile=key, users={"plant": "s3cret"}).start()
    tls = TlsOptions(cafile=str(ca))
    ing = LiveIngestor(tmp_path / "tls.duckdb", register_equipment=True)
    try:
        denied = MqttListener(ing, "127.0.0.1", b.port, client_id="zhizao-test-denied", tls=tls, username="plant",
                              password="wrong")
        denied.start()
        lst = MqttListener(ing, "127.0.0.1", b.port, client_id="zhizao-test-tls", tls=tls, username="plant",
                           password="s3cret")
        lst.start()
        assert lst.wait_subscribed(30)
        assert not denied.subscribed.is_set()
        denied.stop()
        pub = MqttPublisher("127.0.0.1", b.port, client_id="zhizao-test-tls-pub", tls=tls, username="plant",
                            password="s3cret")
        assert pub.wait_connected(30)
        pub.publish(topic("M1", "states"), b'{"start": "2025-01-01T08:00:00Z", "state": "production"}')
        assert pub.flush(30)
        pub.close()
        wait_for(lambda: ing.totals["loaded"] >= 1, 30, "the record over TLS")
        lst.stop()
    finally:
        b.stop()
    assert ing.ws.con.execute("SELECT equipment_id, state FROM states").fetchall() == [("M1", "production")]
    ing.close()
