"""MQTT: the listener (broker -> store, exactly once) and a small publisher.

Delivery contract
-----------------
The listener connects with a fixed client id and a persistent session (MQTT 5 ``clean_start = False`` with a
session expiry interval; MQTT 3.1.1 ``clean_session = False``) and subscribes with QoS 1 to
``<prefix>/#``. paho-mqtt runs with ``manual_ack=True``: the network thread only queues incoming messages;
the ingest thread takes everything queued as one micro-batch, commits it to the store
(:class:`zhizao.live.LiveIngestor`) and only then sends the PUBACKs, in the order the messages arrived. So:

* killed before the commit: nothing was acknowledged, the broker redelivers the whole batch;
* killed after the commit, before the PUBACKs: the broker redelivers, the message hashes of the batch are
  in the store and the messages are skipped (and acknowledged);
* a connection that drops while a batch is being committed: the batch's acknowledgements belong to the old
  connection and are not sent on the new one (packet identifiers are per session, an ack must never reach
  another message); the broker redelivers and the redelivery is skipped.

The broker must keep the session's messages while the listener is away (Mosquitto: ``persistence true``,
``max_queued_messages`` large enough for the longest outage - its default of 1000 drops the rest) and must
let enough messages be in flight for a micro-batch (MQTT 5 receive maximum, 65535 by default here).
"""

from __future__ import annotations

import collections
import logging
import ssl
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.client import time_func as _time_func
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from zhizao.live.ingestor import BatchReport, LiveIngestor
from zhizao.live.topics import DEFAULT_PREFIX

log = logging.getLogger("zhizao.live.mqtt")


def parse_broker(text: str, default_port: int = 1883) -> tuple[str, int]:
    """``HOST:PORT`` (or ``HOST``, or ``[v6]:PORT``, or either after ``mqtt://`` or ``tcp://``) -> (host, port).

    Raises
    ------
    ValueError
        For an empty host, a port that is not an integer in 1..65535, a path after the address, or another
        scheme (``mqtts://``: use the TLS options; ``ws://``: not supported).

    Examples
    --------
    >>> parse_broker("mqtt://broker.local:1884")
    ('broker.local', 1884)
    >>> parse_broker("[::1]")
    ('::1', 1883)
    """
    text = text.strip()
    scheme, sep, rest = text.partition("://")
    if sep:
        if scheme.lower() not in ("mqtt", "tcp"):
            raise ValueError(f"broker {text!r}: scheme {scheme + '://'!r} is not supported; give HOST:PORT "
                             "(and the TLS options for mqtts)")
        if "/" in rest.rstrip("/"):
            raise ValueError(f"broker {text!r}: give HOST:PORT without a path")
        text = rest.rstrip("/")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_s = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_s = text.split(":")
    else:
        host, port_s = text, ""
    if not host:
        raise ValueError(f"broker {text!r}: no host")
    try:
        port = int(port_s) if port_s else default_port
    except ValueError:
        raise ValueError(f"broker {text!r}: port {port_s!r} is not a number") from None
    if not 0 < port < 65536:
        raise ValueError(f"broker {text!r}: port {port} out of range")
    return host, port


@dataclass
class TlsOptions:
    """TLS for the broker connection (``--tls``)."""

    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False  #: do not check the broker's host name (self-signed test brokers)


_PUBACK = struct.Struct("!BBH")


class _BufferedClient(mqtt.Client):
    """paho-mqtt's client with a buffered reader for the listener (relies on paho-mqtt 2.x internals; see
    :func:`_fast_client_usable`).

    paho reads each packet with three or more ``recv`` calls, runs ``select`` once per packet and builds an
    ``MQTTMessage`` (with MQTT 5 properties and a condition variable) per message: about 0.1 ms of CPU per
    message. This client reads up to 256 KiB per ``recv``, splits the buffer into packets itself and hands
    the QoS 1 PUBLISH packets without properties (what Mosquitto forwards from zhizao's publishers and
    most gateways) to ``sink`` as ``(topic, payload, packet id)`` tuples, one list per read. Every other
    packet - CONNACK, SUBACK, PINGRESP, PUBLISH with properties, QoS 0 or 2, a topic that is not UTF-8 - goes
    to paho's own handler unchanged, in order. :meth:`ack_many` queues the PUBACKs of a batch as one write.
    """

    def __init__(self, *args, sink=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._zz_sink = sink
        self._zz_buf = bytearray()
        self._zz_sock = None

    def loop_read(self, max_packets: int = 1):
        sock = self._sock
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        if sock is not self._zz_sock:  # a new connection: nothing of the old one's stream is valid
            self._zz_buf = bytearray()
            self._zz_sock = sock
        try:
            data = self._sock_recv(1 << 18)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except (OSError, ConnectionError) as err:
            self._easy_log(mqtt.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if not data:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        with self._msgtime_mutex:
            self._last_bytes_received = _time_func()
        buf = self._zz_buf
        buf += data
        n = len(buf)
        pos = 0
        fast: list = []
        v5 = self._protocol == mqtt.MQTTv5
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        while n - pos >= 2:
            cmd = buf[pos]
            i, mult, length, complete = pos + 1, 1, 0, False
            while i < n and i - pos <= 4:  # remaining length: 1..4 bytes of 7 bits
                b = buf[i]
                i += 1
                length += (b & 127) * mult
                mult <<= 7
                if not b & 128:
                    complete = True
                    break
            if not complete:
                if i - pos > 4:
                    rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
                break  # wait for the rest of the length
            if i + length > n:
                break  # wait for the rest of the packet
            body = bytes(buf[i:i + length])
            pos = i + length
            if cmd & 0xF6 == 0x32 and self._manual_ack and length >= 4:  # PUBLISH, QoS 1 (any DUP, RETAIN)
                tlen = (body[0] << 8) | body[1]
                p = 2 + tlen
                if p + 2 <= length and (not v5 or (p + 3 <= length and body[p + 2] == 0)):
                    try:
                        topic = body[2:p].decode("utf-8")
                    except UnicodeDecodeError:
                        topic = None
                    if topic:
                        fast.append((topic, body[p + 3 if v5 else p + 2:], (body[p] << 8) | body[p + 1]))
                        continue
            # any other packet: paho's handler, after the messages before it
            if fast:
                self._zz_sink(fast)
                fast = []
            self._in_packet = {"command": cmd, "have_remaining": 1, "remaining_count": [], "remaining_mult": 1,
                               "remaining_length": length, "packet": bytearray(body), "to_process": 0, "pos": 0}
            try:
                rc = self._packet_handle()
            except MalformedPacket as exc:
                self._easy_log(mqtt.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
                rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
            self._in_packet = {"command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1,
                               "remaining_length": 0, "packet": bytearray(b""), "to_process": 0, "pos": 0}
            if rc:
                break
        del buf[:pos]
        if fast:
            self._zz_sink(fast)
        if rc:
            return self._loop_rc_handle(rc)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: list[int]) -> None:
        """Queue the PUBACKs of ``mids`` (QoS 1, manual acknowledgement) as one write, in this order."""
        if mids:
            pack = _PUBACK.pack
            self._packet_queue(mqtt.PUBACK, b"".join([pack(0x40, 2, m) for m in mids]), 0, 0)


def _fast_client_usable() -> bool:
    """The buffered client relies on paho-mqtt 2.x internals; without them the plain client is used."""
    need = ("_sock_recv", "_packet_handle", "_packet_queue", "_loop_rc_handle", "_easy_log")
    return paho.mqtt.__version__.split(".")[0] == "2" and all(callable(getattr(mqtt.Client, a, None)) for a in need)


def _client(client_id: str, protocol: str, manual_ack: bool, tls: TlsOptions | None, username, password,
            sink=None):
    proto = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
    kw: dict[str, Any] = {} if proto == mqtt.MQTTv5 else {"clean_session": False}
    c: mqtt.Client
    if sink is not None:
        c = _BufferedClient(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=proto, manual_ack=manual_ack,
                            sink=sink, **kw)
    else:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=proto, manual_ack=manual_ack,
                        **kw)
    if tls is not None:
        c.tls_set(ca_certs=tls.cafile, certfile=tls.certfile, keyfile=tls.keyfile,
                  cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if tls.insecure:
            c.tls_insecure_set(True)
    if username:
        c.username_pw_set(username, password)
    return c


#: a queued message: (topic, payload, packet id, QoS, connection generation, arrival time)
_TOPIC, _PAYLOAD, _MID, _QOS, _GEN, _T = range(6)


class MqttListener:
    """Subscribe to the namespace and store every message exactly once.

    Parameters
    ----------
    ingestor : LiveIngestor
        The store writer.
    host, port : str, int
        The broker.
    client_id : str
        Fixed: the broker keeps this client's session (subscription and unacknowledged messages).
    prefix : str
        Topic prefix; the listener subscribes to ``<prefix>/#``.
    batch_seconds : float
        Least gathering time of a micro-batch after its first message [s] (a batch also starts as soon as the
        previous one is committed when messages wait: the batch size follows the load).
    max_batch_seconds : float
        Most gathering time [s]. The gathering time adapts: twice the store time of the previous batch,
        within ``batch_seconds .. max_batch_seconds``, so under load batches grow and the store's fixed cost
        per batch (planning its statements) is spread over more records.
    max_batch_messages, max_batch_bytes : int
        Upper bounds of a batch (messages, payload bytes); a batch holds at least one message.
    session_expiry : int
        MQTT 5 session expiry interval [s]: how long the broker keeps the session of a stopped listener.
    receive_maximum : int
        MQTT 5 receive maximum: unacknowledged messages the broker may send (1..65535).
    protocol : {'5', '3.1.1'}
    on_batch : callable, optional
        Called with each :class:`BatchReport` after its acknowledgements are sent.
    buffered : bool
        Read with :class:`_BufferedClient` (QoS 1 messages without properties parsed from a 256 KiB read
        buffer, PUBACKs of a batch in one write: about a tenth of paho's CPU per message). False, or a
        paho-mqtt other than 2.x: paho's own reader.
    """

    def __init__(self, ingestor: LiveIngestor, host: str = "127.0.0.1", port: int = 1883, *,
                 client_id: str = "zhizao-listener", prefix: str = DEFAULT_PREFIX, qos: int = 1,
                 tls: TlsOptions | None = None, username: str | None = None, password: str | None = None,
                 batch_seconds: float = 0.2, max_batch_messages: int = 50_000, max_batch_bytes: int = 4 << 20,
                 session_expiry: int = 7 * 86400,
                 receive_maximum: int = 65535, keepalive: int = 30, protocol: str = "5", on_batch=None,
                 max_batch_seconds: float = 1.0, buffered: bool = True):
        self.ingestor = ingestor
        self.host, self.port = host, port
        self.client_id = client_id
        self.prefix = prefix.strip("/")
        self.qos = qos
        self.batch_seconds = batch_seconds
        self.max_batch_seconds = max(batch_seconds, max_batch_seconds)
        self._gather = batch_seconds
        self.max_batch_messages = max_batch_messages
        self.max_batch_bytes = max_batch_bytes
        self._queued_bytes = 0
        self.keepalive = keepalive
        self.protocol = protocol
        self.on_batch = on_batch
        #: paho-mqtt with the buffered reader and batched PUBACKs (False: the plain paho client)
        self.buffered = buffered and _fast_client_usable()
        self.client = _client(client_id, protocol, True, tls, username, password,
                              sink=self._on_messages if self.buffered else None)
        self.client.reconnect_delay_set(0.2, 5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self._props = None
        if protocol == "5":
            p = Properties(PacketTypes.CONNECT)
            p.SessionExpiryInterval = int(session_expiry)
            p.ReceiveMaximum = int(receive_maximum)
            self._props = p
        self._queue: collections.deque[tuple] = collections.deque()
        self._cond = threading.Condition()
        self._gen = 0
        self._connected = False
        self.subscribed = threading.Event()
        self.session_present: bool | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.last_report: BatchReport | None = None

    # ------------------------------------------------------------------ paho callbacks (network thread)
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("broker refused the connection: %s", reason_code)
            return
        with self._cond:
            self._gen += 1
            self._connected = True
        self.session_present = bool(getattr(flags, "session_present", False))
        log.info("connected to %s:%d (session present: %s)", self.host, self.port, self.session_present)
        client.subscribe(f"{self.prefix}/#", qos=self.qos)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        with self._cond:
            self._gen += 1
            self._connected = False
        log.info("disconnected from %s:%d (%s)", self.host, self.port, reason_code)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if any(rc.is_failure for rc in reason_codes):
            log.error("subscription refused: %s", reason_codes)
            return
        self.subscribed.set()

    def _on_message(self, client, userdata, msg):
        """paho's callback (the plain client, and packets the buffered reader leaves to paho)."""
        with self._cond:
            self._queue.append((msg.topic, msg.payload, msg.mid, msg.qos, self._gen, time.time()))
            self._queued_bytes += len(msg.payload)
            if len(self._queue) == 1 or len(self._queue) >= self.max_batch_messages \
                    or self._queued_bytes >= self.max_batch_bytes:
                self._cond.notify()

    def _on_messages(self, msgs: list[tuple[str, bytes, int]]) -> None:
        """The buffered reader's sink: QoS 1 messages of one read, in order."""
        t = time.time()
        with self._cond:
            gen = self._gen
            was = len(self._queue)
            self._queue.extend([(topic, payload, mid, 1, gen, t) for topic, payload, mid in msgs])
            self._queued_bytes += sum([len(m[1]) for m in msgs])
            if not was or len(self._queue) >= self.max_batch_messages or self._queued_bytes >= self.max_batch_bytes:
                self._cond.notify()

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        """Connect (retrying until the broker is there) and start the ingest thread."""
        kw = {"clean_start": False, "properties": self._props} if self.protocol == "5" else {}
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive, **kw)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="zhizao-mqtt-ingest", daemon=True)
        self._thread.start()

    def wait_subscribed(self, timeout: float = 30.0) -> bool:
        return self.subscribed.wait(timeout)

    def stop(self, timeout: float = 60.0) -> None:
        """Commit and acknowledge what was received, then disconnect (the session stays on the broker)."""
        self._stop.set()
        with self._cond:
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ ingest thread
    def _take(self) -> list[tuple]:
        with self._cond:
            while not self._queue and not self._stop.is_set():
                self._cond.wait(0.5)
            if not self._queue:
                return []
            first = self._queue[0][_T]
        # gather a little, unless plenty is waiting (then the batch size follows the load)
        wait = first + self._gather - time.time()
        if wait > 0 and not self._stop.is_set():
            with self._cond:
                if len(self._queue) < self.max_batch_messages and self._queued_bytes < self.max_batch_bytes:
                    self._cond.wait(wait)
        out, size = [], 0
        with self._cond:
            if len(self._queue) <= self.max_batch_messages and self._queued_bytes < self.max_batch_bytes:
                out = list(self._queue)  # all of it (the usual case): no loop per message
                self._queue.clear()
                size = self._queued_bytes
            while self._queue and len(out) < self.max_batch_messages and (not out or size < self.max_batch_bytes):
                m = self._queue.popleft()
                size += len(m[_PAYLOAD])
                out.append(m)
            self._queued_bytes -= size
        return out

    def _run(self) -> None:
        try:
            while True:
                batch = self._take()
                if not batch:
                    if self._stop.is_set():
                        return
                    continue
                t0 = time.perf_counter()
                rep = self.ingestor.ingest_messages([(m[_TOPIC], m[_PAYLOAD]) for m in batch])
                # adaptive micro-batches: gather for twice the last batch's store time (within batch_seconds ..
                # max_batch_seconds), so the store's fixed cost per batch stays a third of its time under load
                self._gather = min(self.max_batch_seconds, max(self.batch_seconds, 2 * (time.perf_counter() - t0)))
                with self._cond:  # a reconnect (new generation) waits: no ack reaches another connection
                    if self._connected:
                        gen = self._gen
                        ones = [m[_MID] for m in batch if m[_QOS] == 1 and m[_GEN] == gen]
                        if self.buffered:
                            self.client.ack_many(ones)
                        else:
                            for mid in ones:
                                self.client.ack(mid, 1)
                        for m in batch:
                            if m[_QOS] == 2 and m[_GEN] == gen:
                                self.client.ack(m[_MID], 2)
                self.last_report = rep
                if self.on_batch is not None:
                    try:
                        self.on_batch(rep)
                    except Exception:  # a reporting hook must not stop the ingestion
                        log.exception("on_batch failed")
        except BaseException as e:  # the store failed: stop without acknowledging (the broker redelivers)
            self.error = e
            log.exception("live ingestion stopped")
            self._stop.set()


class MqttPublisher:
    """A QoS 1 publisher that re-sends unacknowledged messages after a reconnect (paho keeps them, also those
    published while the broker was away).

    Parameters
    ----------
    host, port : str, int
    client_id : str, optional
    max_inflight : int
        Messages published but not yet acknowledged by the broker.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, *, client_id: str = "", qos: int = 1,
                 max_inflight: int = 100, tls: TlsOptions | None = None, username: str | None = None,
                 password: str | None = None, protocol: str = "5"):
        self.qos = qos
        self.max_inflight = max_inflight
        self.client = _client(client_id, protocol, False, tls, username, password)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.2, 2)
        self.connected = threading.Event()
        def on_connect(c, u, f, rc, p) -> None:
            if not rc.is_failure:
                self.connected.set()

        self.client.on_connect = on_connect
        self.client.on_disconnect = lambda c, u, f, rc, p: self.connected.clear()
        self.client.on_publish = self._on_publish
        # paho's MQTTMessageInfo keeps the error of a publish made while disconnected even after the re-send
        # succeeded, so completion is tracked here from PUBACKs
        self._lock = threading.Lock()
        self._pending: set[int] = set()
        self._early: set[int] = set()
        self.acknowledged = 0
        kw: dict[str, Any] = {"clean_start": False} if protocol == "5" else {}
        if protocol == "5":
            p = Properties(PacketTypes.CONNECT)
            p.SessionExpiryInterval = 3600
            kw["properties"] = p
        self.client.connect_async(host, port, keepalive=30, **kw)
        self.client.loop_start()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._lock:
            self.acknowledged += 1
            if mid in self._pending:
                self._pending.discard(mid)
            else:
                self._early.add(mid)

    def wait_connected(self, timeout: float = 30.0) -> bool:
        return self.connected.wait(timeout)

    def publish(self, topic: str, payload: bytes | str, timeout: float | None = None):
        """Publish one message; with ``max_inflight`` messages unacknowledged, wait for the broker first.

        paho keeps unacknowledged messages in one queue that it scans on every acknowledgement, so a publisher
        that runs ahead of the broker slows down quadratically; waiting here keeps the queue short (and
        nothing is dropped: while the broker is away the messages wait in paho's queue).
        """
        if self.qos and self.connected.is_set():
            end = None if timeout is None else time.time() + timeout
            while self.pending() >= self.max_inflight and self.connected.is_set():
                if end is not None and time.time() > end:
                    break
                time.sleep(0.0005)
        info = self.client.publish(topic, payload, qos=self.qos)
        if self.qos:
            with self._lock:
                if info.mid in self._early:
                    self._early.discard(info.mid)
                else:
                    self._pending.add(info.mid)
        return info

    def pending(self) -> int:
        """Messages not yet acknowledged by the broker."""
        with self._lock:
            return len(self._pending)

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until the broker acknowledged every message; False on time-out."""
        end = time.time() + timeout
        while self.pending():
            if time.time() > end:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
