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
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from zhizao.live.ingestor import BatchReport, LiveIngestor
from zhizao.live.topics import DEFAULT_PREFIX

log = logging.getLogger("zhizao.live.mqtt")


def parse_broker(text: str, default_port: int = 1883) -> tuple[str, int]:
    """``HOST:PORT`` (or ``HOST``, or ``[v6]:PORT``) -> (host, port).

    Raises
    ------
    ValueError
        For an empty host or a port that is not an integer in 1..65535.
    """
    text = text.strip()
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


def _client(client_id: str, protocol: str, manual_ack: bool, tls: TlsOptions | None, username, password):
    proto = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
    kw = {} if proto == mqtt.MQTTv5 else {"clean_session": False}
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=proto, manual_ack=manual_ack, **kw)
    if tls is not None:
        c.tls_set(ca_certs=tls.cafile, certfile=tls.certfile, keyfile=tls.keyfile,
                  cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if tls.insecure:
            c.tls_insecure_set(True)
    if username:
        c.username_pw_set(username, password)
    return c


@dataclass
class _Msg:
    topic: str
    payload: bytes
    mid: int
    qos: int
    gen: int
    t: float


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
        Gathering time of a micro-batch after its first message (a batch also starts as soon as the previous
        one is committed when messages wait: the batch size follows the load).
    max_batch_messages, max_batch_bytes : int
        Upper bounds of a batch (messages, payload bytes); a batch holds at least one message.
    session_expiry : int
        MQTT 5 session expiry interval [s]: how long the broker keeps the session of a stopped listener.
    receive_maximum : int
        MQTT 5 receive maximum: unacknowledged messages the broker may send (1..65535).
    protocol : {'5', '3.1.1'}
    on_batch : callable, optional
        Called with each :class:`BatchReport` after its acknowledgements are sent.
    """

    def __init__(self, ingestor: LiveIngestor, host: str = "127.0.0.1", port: int = 1883, *,
                 client_id: str = "zhizao-listener", prefix: str = DEFAULT_PREFIX, qos: int = 1,
                 tls: TlsOptions | None = None, username: str | None = None, password: str | None = None,
                 batch_seconds: float = 0.2, max_batch_messages: int = 50_000, max_batch_bytes: int = 4 << 20,
                 session_expiry: int = 7 * 86400,
                 receive_maximum: int = 65535, keepalive: int = 30, protocol: str = "5", on_batch=None):
        self.ingestor = ingestor
        self.host, self.port = host, port
        self.client_id = client_id
        self.prefix = prefix.strip("/")
        self.qos = qos
        self.batch_seconds = batch_seconds
        self.max_batch_messages = max_batch_messages
        self.max_batch_bytes = max_batch_bytes
        self._queued_bytes = 0
        self.keepalive = keepalive
        self.protocol = protocol
        self.on_batch = on_batch
        self.client = _client(client_id, protocol, True, tls, username, password)
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
        self._queue: collections.deque[_Msg] = collections.deque()
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
        m = _Msg(msg.topic, msg.payload, msg.mid, msg.qos, self._gen, time.time())
        with self._cond:
            self._queue.append(m)
            self._queued_bytes += len(m.payload)
            if len(self._queue) == 1 or len(self._queue) >= self.max_batch_messages \
                    or self._queued_bytes >= self.max_batch_bytes:
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
    def _take(self) -> list[_Msg]:
        with self._cond:
            while not self._queue and not self._stop.is_set():
                self._cond.wait(0.5)
            if not self._queue:
                return []
            first = self._queue[0].t
        # gather a little, unless plenty is waiting (then the batch size follows the load)
        wait = first + self.batch_seconds - time.time()
        if wait > 0 and not self._stop.is_set():
            with self._cond:
                if len(self._queue) < self.max_batch_messages and self._queued_bytes < self.max_batch_bytes:
                    self._cond.wait(wait)
        out, size = [], 0
        with self._cond:
            while self._queue and len(out) < self.max_batch_messages and (not out or size < self.max_batch_bytes):
                m = self._queue.popleft()
                size += len(m.payload)
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
                rep = self.ingestor.ingest_messages([(m.topic, m.payload) for m in batch])
                with self._cond:
                    gen, connected = self._gen, self._connected
                if connected:
                    for m in batch:
                        if m.qos > 0 and m.gen == gen:
                            self.client.ack(m.mid, m.qos)
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
        self.client.on_connect = lambda c, u, f, rc, p: (not rc.is_failure) and self.connected.set()
        self.client.on_disconnect = lambda c, u, f, rc, p: self.connected.clear()
        self.client.on_publish = self._on_publish
        # paho's MQTTMessageInfo keeps the error of a publish made while disconnected even after the re-send
        # succeeded, so completion is tracked here from PUBACKs
        self._lock = threading.Lock()
        self._pending: set[int] = set()
        self._early: set[int] = set()
        self.acknowledged = 0
        kw = {"clean_start": False} if protocol == "5" else {}
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
