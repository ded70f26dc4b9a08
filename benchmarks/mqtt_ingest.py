"""Sustained MQTT ingestion: publishers -> Mosquitto -> ``zhizao listen mqtt`` -> DuckDB, over loopback.

Method
------
1. Start Eclipse Mosquitto (the Debian package) on a free loopback port with the configuration zhizao's
   no-loss guarantee needs (:mod:`zhizao.live.broker`), and the listener as the command line runs it
   (``python -m zhizao.cli.live listen mqtt --register-equipment``) in its own process, writing to a fresh
   store file.
2. Publisher processes send production records (unique keys, ``--machines`` topics) at a fixed rate for
   ``--seconds``: every 10 ms they publish the messages that are due, ``--records-per-message`` records per
   JSON array, QoS 1. Each message's publish time and hash (topic + payload, as the listener computes it) is
   kept. The default publisher (``--publisher raw``, :class:`RawPublisher`) is a lean MQTT 3.1.1 client that
   writes a tick's PUBLISH packets at once and reads the PUBACKs as they come (at most 2,000 in flight), as a
   gateway would; ``--publisher paho`` uses :class:`zhizao.live.MqttPublisher` (paho-mqtt), whose ~0.1 ms of
   CPU per message limits 1-record messages to about 3,000/s on the shared cores (runs before 2026-11-30
   used it).
3. The listener runs with ``--threads 1`` (DuckDB) and its adaptive gathering time
   (``--batch-seconds 0.2 --max-batch-seconds 1``), as ``zhizao listen mqtt`` does by default.
4. After the last message the publishers wait for the broker's acknowledgements; the benchmark waits until
   the listener has stored every record (or gives up after ``--drain-timeout``), stops it with SIGTERM and
   opens the store.
5. Loss: every published record key must be stored exactly once (``count(*)`` and ``count(DISTINCT key)``).
   Latency per record: the commit time of the micro-batch that stored its message (``live_batches``, joined
   through the message hash in ``live_messages``) minus the message's publish time - the time until the
   record is visible to the KPIs. Throughput held: records committed per second over the publishing window
   (and over the whole run: stored records / (last commit - first publish)), and the lag left when publishing
   stopped (drain time). CPU: cores used by the listener and the broker (``/proc``) and the publishers
   (their process time) during the run.

Run on the project's 2-core machine, with the broker, the publishers and the listener sharing the two cores:

    .venv/bin/python benchmarks/mqtt_ingest.py                 # 20,000 records/s for 60 s, 50 per message
    .venv/bin/python benchmarks/mqtt_ingest.py --sweep         # also 10 and 1 records per message
    .venv/bin/python benchmarks/mqtt_ingest.py --publisher paho # zhizao's Python publisher instead of the raw one
    .venv/bin/python benchmarks/mqtt_ingest.py --quick         # 10 s smoke run

Writes ``benchmarks/results/mqtt_ingest.json`` and ``.md`` (``--quick``: ``mqtt_ingest_quick.*``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


class RawPublisher:
    """A lean MQTT 3.1.1 QoS 1 publisher (benchmark only): PUBLISH packets of a tick written with one
    ``sendall``, PUBACKs read as they come, at most ``max_inflight`` unacknowledged.

    paho-mqtt's publisher costs about 0.1 ms of CPU per message, so on the 2 shared cores the Python
    publisher, not the listener, would limit the 1-record-per-message case (about 3,000 messages/s). Gateways
    are usually not written in Python; this publisher leaves the cores to the broker and the listener. No
    reconnect: on loopback a lost connection fails the run.
    """

    def __init__(self, port: int, client_id: str, max_inflight: int = 2000):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        var = b"\x00\x04MQTT\x04\x02\x00\x00" + struct.pack("!H", len(cid)) + cid  # clean session, no keepalive
        self.sock.sendall(b"\x10" + _varint(len(var)) + var)
        ack = self._recv_exact(4)
        if ack[0] != 0x20 or ack[3] != 0:
            raise RuntimeError(f"broker refused the connection: {ack!r}")
        self.max_inflight = max_inflight
        self.inflight: set[int] = set()
        self.mid = 0
        self.buf = bytearray()
        self.acknowledged = 0

    def _recv_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise RuntimeError("broker closed the connection")
            out += chunk
        return out

    def _read(self, block: bool) -> None:
        self.sock.settimeout(30 if block else 0.0)
        try:
            data = self.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            raise RuntimeError("broker closed the connection")
        self.buf += data
        pos, n = 0, len(self.buf)
        while n - pos >= 4 and self.buf[pos + 1] == 2:  # PUBACK: 0x40 0x02 <packet id>
            if self.buf[pos] != 0x40:
                raise RuntimeError(f"unexpected packet 0x{self.buf[pos]:02x} from the broker")
            self.inflight.discard((self.buf[pos + 2] << 8) | self.buf[pos + 3])
            self.acknowledged += 1
            pos += 4
        del self.buf[:pos]

    def publish_many(self, messages: list[tuple[str, bytes]]) -> None:
        """QoS 1 PUBLISH of each (topic, payload); waits while too many are unacknowledged."""
        while len(self.inflight) + len(messages) > self.max_inflight and self.inflight:
            self._read(True)
        out = bytearray()
        for topic, payload in messages:
            self.mid = self.mid % 65535 + 1
            while self.mid in self.inflight:
                self.mid = self.mid % 65535 + 1
            t = topic.encode()
            out += b"\x32" + _varint(4 + len(t) + len(payload)) + struct.pack("!H", len(t)) + t + \
                struct.pack("!H", self.mid) + payload
            self.inflight.add(self.mid)
        self.sock.settimeout(30)
        self.sock.sendall(out)
        self._read(False)

    def flush(self, timeout: float = 300) -> bool:
        end = time.time() + timeout
        while self.inflight and time.time() < end:
            self._read(True)
        return not self.inflight

    def close(self) -> None:
        try:
            self.sock.sendall(b"\xe0\x00")
        finally:
            self.sock.close()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 127, n >> 7
        out.append(b | (128 if n else 0))
        if not n:
            return bytes(out)


def publisher(idx: int, n_pub: int, port: int, rate: float, seconds: float, rpm: int, machines: int,
              out: str, ready, go, kind: str = "raw") -> None:
    """One publisher process: ``rate / n_pub`` records per second, paced in 10 ms ticks."""
    from zhizao.live.mqtt import MqttPublisher
    from zhizao.live.topics import message_hash, topic_for

    if kind == "paho":
        pub = MqttPublisher("127.0.0.1", port, client_id=f"zhizao-bench-pub-{idx}", max_inflight=200)
        assert pub.wait_connected(30)
    else:
        pub = RawPublisher(port, f"zhizao-bench-pub-{idx}")
    topics = [topic_for("production", f"M{m:03d}", f"L{m // 5:02d}", "A1", "S1", "E1") for m in range(machines)]
    msg_rate = rate / n_pub / rpm
    base = 1_735_689_600 + idx * 10_000_000  # 2025-01-01, a disjoint key range per publisher
    hashes, times, sizes = [], [], []
    k = 0
    n_msg = 0
    ready.set()
    go.wait()
    cpu0 = time.process_time()
    t0 = time.time()
    end = t0 + seconds
    while True:
        now = time.time()
        if now >= end:
            break
        due = int((now - t0) * msg_rate) + 1 - n_msg
        tick = []
        for _ in range(max(0, due)):
            m = n_msg % machines
            recs = []
            for _ in range(rpm):
                k += 1
                s = base + k
                recs.append(f'{{"start":"{_iso(s)}","end":"{_iso(s + 1)}","order_id":"P{idx}-{k}",'
                            f'"produced":{1 + k % 9}}}')
            payload = ("[" + ",".join(recs) + "]").encode()
            tick.append((topics[m], payload))
            hashes.append(message_hash(topics[m], payload))
            sizes.append(rpm)
            n_msg += 1
        if tick:
            t_pub = time.time()
            if kind == "paho":
                for topic, payload in tick:
                    times.append(time.time())
                    pub.publish(topic, payload)
            else:
                pub.publish_many(tick)
                times += [t_pub] * len(tick)
        time.sleep(max(0.0, 0.01 - (time.time() - now)))
    t_last = time.time()
    cpu = time.process_time() - cpu0
    ok = pub.flush(300)
    pub.close()
    Path(out).write_text(json.dumps({"hashes": hashes, "times": times, "sizes": sizes, "records": k,
                                     "messages": n_msg, "t0": t0, "t_last": t_last, "flushed": ok,
                                     "cpu_s": cpu}))


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def run(rate: float, seconds: float, rpm: int, machines: int, publishers: int, drain_timeout: float,
        workdir: Path, batch_seconds: float, publisher_kind: str = "raw", max_batch_seconds: float = 1.0,
        threads: int = 1) -> dict:
    from zhizao.live.broker import Mosquitto

    load_before = os.getloadavg()[0]
    db, status = workdir / "bench.duckdb", workdir / "status.json"
    for p in (db, Path(str(db) + ".wal"), status):
        p.unlink(missing_ok=True)
    broker = Mosquitto(workdir / f"mosquitto-{rpm}").start()
    lst = subprocess.Popen([sys.executable, "-m", "zhizao.cli.live", "listen", "mqtt", "--broker", broker.address,
                            "--db", str(db), "--status", str(status), "--register-equipment", "--quiet",
                            "--batch-seconds", str(batch_seconds), "--max-batch-seconds", str(max_batch_seconds),
                            "--threads", str(threads)], stderr=subprocess.PIPE)
    try:
        t = time.time()
        while not (status.exists() and json.loads(status.read_text() or "{}").get("subscribed")):
            if lst.poll() is not None or time.time() - t > 60:
                raise RuntimeError(f"listener did not start: {lst.stderr.read().decode()[-500:]}")
            time.sleep(0.1)
        ctx = mp.get_context("spawn")
        ready = [ctx.Event() for _ in range(publishers)]
        go = ctx.Event()
        outs = [workdir / f"pub-{i}.json" for i in range(publishers)]
        procs = [ctx.Process(target=publisher, args=(i, publishers, broker.port, rate, seconds, rpm, machines,
                                                     str(outs[i]), ready[i], go, publisher_kind))
                 for i in range(publishers)]
        for p in procs:
            p.start()
        for e in ready:
            e.wait(60)
        cpu0 = {"listener": _cpu_seconds(lst.pid), "mosquitto": _cpu_seconds(broker.proc.pid)}
        w0 = time.time()
        go.set()
        for p in procs:
            p.join(seconds + 600)
        pubs = [json.loads(o.read_text()) for o in outs]
        expected = sum(p["records"] for p in pubs)
        t_last = max(p["t_last"] for p in pubs)
        t_end = time.time() + drain_timeout
        while time.time() < t_end:
            s = json.loads(status.read_text() or "{}") if status.exists() else {}
            if s.get("loaded", 0) + s.get("skipped", 0) >= expected:
                break
            time.sleep(0.1)
        w1 = time.time()
        cpu1 = {"listener": _cpu_seconds(lst.pid), "mosquitto": _cpu_seconds(broker.proc.pid)}
    finally:
        if lst.poll() is None:
            lst.send_signal(signal.SIGTERM)
            lst.wait(120)
        broker.stop()

    con = duckdb.connect(str(db), read_only=True)
    stored, distinct = con.execute(
        "SELECT count(*), count(DISTINCT (equipment_id, start, \"end\", order_id)) FROM production").fetchall()[0]
    quarantined = con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
    commits = con.execute("""SELECT m.hash, epoch_us(b.committed_at) / 1e6 FROM live_messages m
                             JOIN live_batches b USING (batch)""").fetchall()
    batches = con.execute("""SELECT epoch_us(committed_at) / 1e6, records FROM live_batches
                             WHERE records > 0 ORDER BY batch""").fetchall()
    con.close()
    committed = dict(commits)
    lat, w = [], []
    for p in pubs:
        for h, t, n in zip(p["hashes"], p["times"], p["sizes"]):
            c = committed.get(h)
            if c is not None:
                lat.append(c - t)
                w.append(n)
    lat = np.repeat(np.asarray(lat), np.asarray(w))  # per record
    t0 = min(p["t0"] for p in pubs)
    bt = np.array([b[0] for b in batches])
    br = np.array([b[1] for b in batches])
    in_window = br[(bt >= t0) & (bt <= t0 + seconds)].sum()
    overall = br[bt >= t0].sum() / (bt.max() - t0) if len(bt) else 0.0
    last_commit = bt.max() if len(bt) else float("nan")
    sent_rate = expected / (t_last - t0)
    res = {
        "records_per_message": rpm, "target_records_per_s": rate, "seconds": seconds, "machines": machines,
        "publishers": publishers, "publisher": publisher_kind, "batch_seconds": batch_seconds,
        "max_batch_seconds": max_batch_seconds, "duckdb_threads": threads,
        "published_records": expected, "published_messages": sum(p["messages"] for p in pubs),
        "broker_acknowledged_all": all(p["flushed"] for p in pubs),
        "stored_records": int(stored), "distinct_keys": int(distinct), "quarantined": int(quarantined),
        "lost": int(expected - distinct), "duplicates": int(stored - distinct),
        "published_records_per_s": round(sent_rate, 1),
        "committed_records_per_s_in_window": round(in_window / seconds, 1),
        "committed_records_per_s_overall": round(float(overall), 1),
        "drain_s_after_last_publish": round(last_commit - t_last, 3),
        "latency_s": {"p50": _q(lat, 0.5), "p90": _q(lat, 0.9), "p99": _q(lat, 0.99), "max": _q(lat, 1.0)},
        "batches": len(batches), "mean_records_per_batch": round(float(br.mean()), 1) if len(br) else 0,
        "cpu_cores_used": {**{k: round((cpu1[k] - cpu0[k]) / (w1 - w0), 2) for k in cpu0},
                           "publishers": round(sum(p["cpu_s"] for p in pubs) / seconds, 2)},
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    }
    res["held"] = bool(res["lost"] == 0 and res["duplicates"] == 0 and res["drain_s_after_last_publish"] < 5.0
                       and res["published_records_per_s"] >= 0.98 * rate)
    return res


def _q(x, q):
    return round(float(np.quantile(x, q)), 3) if len(x) else None


def _markdown(runs: list[dict], meta: dict) -> str:
    pubs = sorted({r.get("publisher", "paho") for r in runs})
    lines = [
        "# MQTT ingestion benchmark (`benchmarks/mqtt_ingest.py`)",
        "",
        f"Run {meta['date']} on {meta['cores']} cores ({meta['cpu']}), Python {meta['python']}, "
        f"DuckDB {meta['duckdb']}, paho-mqtt {meta['paho']}, Mosquitto {meta['mosquitto']}. Broker, "
        "publishers and listener share the cores; loopback; QoS 1; listener = `zhizao listen mqtt` writing "
        f"to the embedded store (DuckDB threads: {', '.join(str(r.get('duckdb_threads', '-')) for r in runs[:1])}; "
        f"gathering {runs[0]['batch_seconds']:g}..{runs[0].get('max_batch_seconds', runs[0]['batch_seconds']):g} s); "
        f"publisher: {', '.join(pubs)}.",
        "",
        "| records/message | target rec/s | published rec/s | committed rec/s (in the window; overall) | stored "
        "| lost | dup | latency p50 | p99 | max | drain | cores: listener, broker, publishers | load avg | held |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lt = r["latency_s"]
        cpu = r["cpu_cores_used"]
        overall = r.get("committed_records_per_s_overall")
        lines.append(
            f"| {r['records_per_message']} | {r['target_records_per_s']:,.0f} | {r['published_records_per_s']:,.0f} "
            f"| {r['committed_records_per_s_in_window']:,.0f}" + (f"; {overall:,.0f}" if overall else "") +
            f" | {r['stored_records']:,} | {r['lost']} "
            f"| {r['duplicates']} | {lt['p50']} s | {lt['p99']} s | {lt['max']} s "
            f"| {r['drain_s_after_last_publish']} s | {cpu['listener']}, {cpu['mosquitto']}, "
            f"{cpu.get('publishers', '-')} | {r['load_average_1min']['before']:.1f} "
            f"| {'yes' if r['held'] else '**no**'} |")
    lines += [
        "",
        "Latency: publish -> commit of the micro-batch holding the record (visible to `LiveIngestor.kpi`). "
        "Committed in the window: records of the batches committed during the 60 s of publishing (the last "
        "second's records commit just after it); overall: every stored record / (last commit - first publish). "
        "Held: zero loss, no duplicate, every record stored within 5 s of the last publish, and the publishers "
        "kept the target rate. Load avg: the machine's 1-minute load average before the run (other work on "
        "the same 2 cores makes the figures pessimistic). See the method in the script's docstring and in "
        "docs/live.md.",
        "",
        "Reading: the listener's cost is a fixed cost per micro-batch (DuckDB plans each of its statements "
        "anew: about 0.1-0.2 s of CPU per batch on the shared machine), a few us per record in the store "
        "(JSON parsing and the file loader's validation, vectorised by `zhizao.ingest.load_records`) and about "
        "10 us per message in the buffered MQTT reader (receive + PUBACK). The gathering time adapts to the load "
        "(twice the last store time, 0.2-1 s), so batches of 10,000-30,000 records spread the fixed cost. The "
        "raw publisher (a lean MQTT 3.1.1 client in the script; `--publisher paho` for zhizao's Python "
        "publisher, which costs about 0.1 ms per message and cannot publish 1-record messages at this rate on "
        "these cores) stands in for gateways. At 1 record per message the broker, the publisher and the "
        "listener each do per-message work at 20,000 messages/s; whether that is held depends on what else "
        "runs on the two cores.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=20_000, help="records per second (all publishers)")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--records-per-message", type=int, default=50)
    ap.add_argument("--machines", type=int, default=20)
    ap.add_argument("--publishers", type=int, default=1)
    ap.add_argument("--batch-seconds", type=float, default=0.2)
    ap.add_argument("--max-batch-seconds", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1, help="DuckDB threads of the listener")
    ap.add_argument("--publisher", choices=("raw", "paho"), default="raw",
                    help="raw: a lean MQTT 3.1.1 publisher (default); paho: zhizao.live.MqttPublisher")
    ap.add_argument("--rate-1", type=float, default=None,
                    help="--sweep: records/s of the 1-record-per-message case (default --rate)")
    ap.add_argument("--drain-timeout", type=float, default=120)
    ap.add_argument("--sweep", action="store_true", help="also 10 and 1 records per message (at lower rates)")
    ap.add_argument("--quick", action="store_true", help="10 s at the given rate")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--render", type=Path, default=None, help="only rewrite the .md of this results .json")
    a = ap.parse_args(argv)
    if a.render:
        d = json.loads(a.render.read_text())
        a.render.with_suffix(".md").write_text(_markdown(d["runs"], d["meta"]))
        return 0
    if a.quick:
        a.seconds = 10
    work = a.workdir or Path(tempfile.mkdtemp(prefix="zhizao-mqtt-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    plan = [(a.rate, a.records_per_message)]
    if a.sweep:
        plan += [(a.rate, 10), (a.rate_1 or a.rate, 1)]
    runs = []
    for rate, rpm in plan:
        print(f"running {rate:,.0f} records/s, {rpm} per message, {a.seconds:g} s ...", file=sys.stderr, flush=True)
        r = run(rate, a.seconds, rpm, a.machines, a.publishers, a.drain_timeout, work, a.batch_seconds,
                a.publisher, a.max_batch_seconds, a.threads)
        print(json.dumps(r, indent=1), file=sys.stderr, flush=True)
        runs.append(r)
    import duckdb as _d
    import paho.mqtt as _p

    mosq = subprocess.run([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-h"], capture_output=True,
                          text=True).stdout.splitlines()[:1]
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    meta = {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), "cpu": cpu,
            "python": platform.python_version(), "duckdb": _d.__version__, "paho": _p.__version__,
            "mosquitto": mosq[0].replace("mosquitto version ", "") if mosq else "?"}
    out = a.out or RESULTS / ("mqtt_ingest_quick" if a.quick else "mqtt_ingest")
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(str(out) + ".json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1) + "\n")
    Path(str(out) + ".md").write_text(_markdown(runs, meta))
    print(_markdown(runs, meta))
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r["lost"] == 0 and r["duplicates"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
