"""The plant simulator played live: to an MQTT broker or as an OPC UA server, in real time or faster.

The plant comes from :func:`zhizao.simulate.simulate_plant` (SIMULATED data). Each record is due at its
event time: a state at its start, a production count and an energy interval at their end, an inspection at
its time stamp, a labour record at its end. Simulated time runs ``speed`` times as fast as the wall clock and
starts at the wall clock's present (``--start`` defaults to today in the plant's zone, so at speed 1 the
simulated plant is the plant of today), or at the start of the simulated range when that lies in the future.
Records due before the present are sent at once (``backlog``), so a dashboard has the day so far.

* MQTT: equipment, products and the calendar first, then every record on its topic
  (``<prefix>/E1/S1/<area>/<line>/<machine>/<table>``), up to ``records_per_message`` records of a topic per
  message (a JSON array), QoS 1.
* OPC UA: a server with, per machine, ``State`` (Int32 code, :data:`zhizao.simulate.plant.STATE_NAMES`
  index), ``Parts`` and ``Scrap`` (UInt32 cumulative counters) and ``Energy`` (Double, cumulative kWh), each
  written with the event's source time stamp; :func:`nodes_document` is the matching nodes file.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from zhizao.live.topics import DEFAULT_PREFIX, topic_for

log = logging.getLogger("zhizao.live.simulate")

#: event time column of each streamed table
EVENT_TIME = {"states": "start", "production": "end", "energy": "end", "quality": "ts", "labour": "end"}
STATIC = ("equipment", "products", "calendar")


def today(timezone: str) -> str:
    """Today's date in ``timezone`` (YYYY-MM-DD)."""
    return pd.Timestamp.now(tz=timezone).date().isoformat()


def _jsonable(v):
    if v is None:
        return None
    if isinstance(v, pd.Timestamp):
        return None if pd.isna(v) else v.isoformat()
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else (int(v) if float(v).is_integer() else float(v))
    if v is pd.NaT or v is pd.NA:
        return None
    return v


def _records(df: pd.DataFrame) -> list[dict]:
    cols = list(df.columns)
    out = []
    for row in df.itertuples(index=False, name=None):
        r = {}
        for c, v in zip(cols, row):
            j = _jsonable(v)
            if j is not None:
                r[c] = j
        out.append(r)
    return out


@dataclass
class Plan:
    """What to send: static messages first, then due records in event-time order."""

    static: list[tuple[str, list[dict]]]  # (topic, records)
    times: np.ndarray  # event times [ms since the epoch], sorted
    topics: list[str]
    records: list[dict]
    start_ms: int  # start of the simulated range
    end_ms: int


def plan_mqtt(tables: dict[str, pd.DataFrame], prefix: str = DEFAULT_PREFIX) -> Plan:
    """Topics and due times of a simulated plant's records."""
    eq = tables["equipment"]
    hier = {r["equipment_id"]: r for r in _records(eq)}
    site = eq["site"].iloc[0]
    ent = eq["enterprise"].iloc[0]
    line_area = dict(zip(eq["work_center"], eq["area"]))

    def eq_topic(table, e):
        h = hier[e]
        return topic_for(table, e, h.get("work_center"), h.get("area"), h.get("site"), h.get("enterprise"), prefix)

    static = [(eq_topic("equipment", r["equipment_id"]), [r]) for r in hier.values()]
    static.append((topic_for("products", None, None, None, site, ent, prefix), _records(tables["products"])))
    static.append((topic_for("calendar", None, None, None, site, ent, prefix), _records(tables["calendar"])))
    times, topics, recs = [], [], []
    for table, col in EVENT_TIME.items():
        df = tables.get(table)
        if df is None or df.empty:
            continue
        t = pd.DatetimeIndex(df[col]).as_unit("ms").asi8
        rows = _records(df)
        if table == "labour":
            tp = [topic_for("labour", None, s, line_area.get(s), site, ent, prefix) for s in df["scope"]]
        else:
            tp = [eq_topic(table, e) for e in df["equipment_id"]]
        times.append(t)
        topics += tp
        recs += rows
    t = np.concatenate(times)
    order = np.argsort(t, kind="stable")
    cal = tables["calendar"]
    lo = int(pd.DatetimeIndex(tables["states"]["start"]).as_unit("ms").asi8.min())
    hi = int(t.max()) if len(t) else lo
    if len(cal):
        hi = max(hi, int(pd.DatetimeIndex(cal["end"]).as_unit("ms").asi8.max()))
    return Plan(static, t[order], [topics[i] for i in order], [recs[i] for i in order], lo, hi)


class _Progress:
    """Calls ``fn`` every ``every`` wall-clock seconds with the counters' increase since its previous call."""

    def __init__(self, fn: Callable[[dict], None] | None, every: float, clock: Clock):
        self.fn, self.every, self.clock = fn, every, clock
        self.next = time.time() + every
        self.last: dict[str, int] = {}

    def tick(self, **counters: int) -> None:
        if self.fn is None or time.time() < self.next:
            return
        self.next = time.time() + self.every
        d = {k: v - self.last.get(k, 0) for k, v in counters.items()}
        self.last = dict(counters)
        self.fn({**d, "simulated": pd.Timestamp(self.clock.now_ms(), unit="ms", tz="UTC")})


class Clock:
    """Simulated time: ``speed`` times the wall clock, from ``sim0`` at wall time ``wall0``."""

    def __init__(self, sim0_ms: int, speed: float, wall0: float | None = None):
        self.sim0 = sim0_ms
        self.speed = speed
        self.wall0 = time.time() if wall0 is None else wall0

    def now_ms(self) -> int:
        return int(self.sim0 + (time.time() - self.wall0) * 1000.0 * self.speed)

    def wall_of(self, sim_ms: int) -> float:
        return self.wall0 + (sim_ms - self.sim0) / 1000.0 / self.speed


def sim_start(plan_start_ms: int, now_ms: int | None = None) -> int:
    """Simulated time at the start of the play: the present, or the start of the range if that is later."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return max(plan_start_ms, now_ms)


def play_mqtt(tables: dict[str, pd.DataFrame], publisher, *, speed: float = 1.0, prefix: str = DEFAULT_PREFIX,
              records_per_message: int = 50, backlog: bool = True, duration: float | None = None,
              stop: threading.Event | None = None, tick: float = 0.05,
              on_progress: Callable[[dict], None] | None = None, progress_every: float = 10.0) -> dict:
    """Publish a simulated plant's records as they fall due.

    Parameters
    ----------
    tables : dict
        :func:`zhizao.simulate.simulate_plant` output.
    publisher : zhizao.live.mqtt.MqttPublisher
    speed : float
        Simulated seconds per wall-clock second.
    records_per_message : int
        Records of one topic per message at most.
    backlog : bool
        Send records due before the present at once (else skip them).
    duration : float, optional
        Stop after this many wall-clock seconds (default: at the end of the simulated range).
    on_progress : callable, optional
        Called every ``progress_every`` wall-clock seconds with ``{"messages", "records"}`` published since the
        previous call and ``"simulated"``, the simulated time (a UTC :class:`pandas.Timestamp`).

    Returns
    -------
    dict
        ``messages``, ``records`` published.
    """
    plan = plan_mqtt(tables, prefix)
    stop = stop or threading.Event()
    n_msg = n_rec = 0
    for topic, recs in plan.static:
        for i in range(0, len(recs), max(1, records_per_message)):
            publisher.publish(topic, json.dumps(recs[i:i + records_per_message], ensure_ascii=False))
            n_msg += 1
            n_rec += len(recs[i:i + records_per_message])
    clock = Clock(sim_start(plan.start_ms), speed)
    i = 0
    if not backlog:
        i = int(np.searchsorted(plan.times, clock.sim0, "left"))
    t_end = time.time() + duration if duration else None
    n = len(plan.times)
    progress = _Progress(on_progress, progress_every, clock)
    while i < n and not stop.is_set():
        if t_end and time.time() >= t_end:
            break
        progress.tick(messages=n_msg, records=n_rec)
        now = clock.now_ms()
        j = int(np.searchsorted(plan.times, now, "right"))
        if j > i:
            groups: dict[str, list] = {}
            for k in range(i, j):
                groups.setdefault(plan.topics[k], []).append(plan.records[k])
            for topic, recs in groups.items():
                for a in range(0, len(recs), max(1, records_per_message)):
                    part = recs[a:a + records_per_message]
                    publisher.publish(topic, json.dumps(part if len(part) > 1 else part[0], ensure_ascii=False))
                    n_msg += 1
                    n_rec += len(part)
            i = j
            continue
        nxt = clock.wall_of(int(plan.times[i]))
        stop.wait(min(max(nxt - time.time(), tick), 1.0))
    return {"messages": n_msg, "records": n_rec}


# ---------------------------------------------------------------------------------------------------------- OPC UA
def _state_codes() -> dict[str, int]:
    from zhizao.simulate.plant import STATE_NAMES

    return {s: i for i, s in enumerate(STATE_NAMES)}


def nodes_document(tables: dict[str, pd.DataFrame], ns: int = 2, publishing_interval_ms: float = 200) -> dict:
    """The nodes file (as a document) for the simulator's OPC UA server."""
    from zhizao.simulate.plant import STATE_CATEGORY, STATE_NAMES

    eq = tables["equipment"]
    nodes: dict[str, dict] = {}
    doc = {
        "publishing_interval_ms": publishing_interval_ms,
        "state_codes": {i: s for i, s in enumerate(STATE_NAMES)},
        "states": dict(STATE_CATEGORY),
        "timezone": str(eq["timezone"].iloc[0]),
        "equipment": nodes,
    }
    for r in _records(eq):
        m = r["equipment_id"]
        nodes[m] = {
            "state": f"ns={ns};s={m}.State", "parts": f"ns={ns};s={m}.Parts", "scrap": f"ns={ns};s={m}.Scrap",
            "energy": f"ns={ns};s={m}.Energy", "counter_rollover": 4294967296, "meter_id": f"EM-{m}",
            **{h: r[h] for h in ("work_center", "area", "site", "enterprise") if r.get(h)},
        }
    return doc


def opcua_events(tables: dict[str, pd.DataFrame]) -> tuple[np.ndarray, list[tuple[str, str, float]]]:
    """Node writes of a simulated plant: times [ms] (sorted) and (machine, signal, new value)."""
    codes = _state_codes()
    ev_t: list[int] = []
    ev: list[tuple[str, str, float]] = []
    st = tables["states"]
    for m, s, t in zip(st["equipment_id"], st["state"], pd.DatetimeIndex(st["start"]).as_unit("ms").asi8):
        ev_t.append(int(t))
        ev.append((m, "State", codes[s]))
    pr = tables["production"].sort_values("end", kind="stable")
    parts: dict[str, int] = {}
    scrap: dict[str, int] = {}
    for m, p, s, t in zip(pr["equipment_id"], pr["produced"], pr["scrap"],
                          pd.DatetimeIndex(pr["end"]).as_unit("ms").asi8):
        parts[m] = parts.get(m, 0) + int(p)
        ev_t.append(int(t))
        ev.append((m, "Parts", parts[m]))
        if s:
            scrap[m] = scrap.get(m, 0) + int(s)
            ev_t.append(int(t))
            ev.append((m, "Scrap", scrap[m]))
    en = tables["energy"].sort_values("end", kind="stable")
    reg: dict[str, float] = {}
    for m, q, t in zip(en["equipment_id"], en["quantity"], pd.DatetimeIndex(en["end"]).as_unit("ms").asi8):
        reg[m] = round(reg.get(m, 0.0) + float(q), 6)
        ev_t.append(int(t))
        ev.append((m, "Energy", reg[m]))
    t = np.asarray(ev_t, dtype=np.int64)
    order = np.argsort(t, kind="stable")
    return t[order], [ev[i] for i in order]


class SimOpcUaServer:
    """An asyncua server that plays a simulated plant's machines (run in its own thread).

    Parameters
    ----------
    tables : dict
        :func:`zhizao.simulate.simulate_plant` output.
    endpoint : str
        ``opc.tcp://127.0.0.1:PORT/zhizao/``.
    """

    URI = "urn:zhizao:simulator"

    def __init__(self, tables: dict[str, pd.DataFrame], endpoint: str):
        self.tables = tables
        self.endpoint = endpoint
        self.ns = 2
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="zhizao-sim-opcua", daemon=True)
        self._nodes: dict[tuple[str, str], object] = {}
        self._server = None
        self.writes = 0

    def start(self, timeout: float = 60.0) -> SimOpcUaServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._setup(), self._loop).result(timeout)
        return self

    async def _setup(self):
        from asyncua import Server, ua

        logging.getLogger("asyncua").setLevel(logging.ERROR)
        s = Server()
        await s.init()
        s.set_endpoint(self.endpoint)
        s.set_server_name("zhizao plant simulator (SIMULATED data)")
        s.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        self.ns = await s.register_namespace(self.URI)
        types = {"State": (ua.VariantType.Int32, 6), "Parts": (ua.VariantType.UInt32, 0),
                 "Scrap": (ua.VariantType.UInt32, 0), "Energy": (ua.VariantType.Double, 0.0)}
        for m in self.tables["equipment"]["equipment_id"]:
            obj = await s.nodes.objects.add_object(self.ns, m)
            for sig, (vt, v) in types.items():
                self._nodes[(m, sig)] = (await obj.add_variable(ua.NodeId(f"{m}.{sig}", self.ns), sig,
                                                                ua.Variant(v, vt)), vt)
        await s.start()
        self._server = s

    async def _write(self, batch):
        from asyncua import ua

        for t_ms, (m, sig, v) in batch:
            node, vt = self._nodes[(m, sig)]
            ts = _dt.datetime.fromtimestamp(t_ms / 1000.0, _dt.UTC)
            await node.write_value(ua.DataValue(ua.Variant(v, vt), SourceTimestamp=ts, ServerTimestamp=ts))
            self.writes += 1

    def write(self, batch, timeout: float = 60.0) -> None:
        """Write [(t_ms, (machine, signal, value)), ...] in order."""
        if batch:
            asyncio.run_coroutine_threadsafe(self._write(batch), self._loop).result(timeout)

    def stop(self) -> None:
        if self._server is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop).result(20)
            except Exception:
                pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def play_opcua(tables: dict[str, pd.DataFrame], server: SimOpcUaServer, *, speed: float = 1.0,
               duration: float | None = None, stop: threading.Event | None = None, tick: float = 0.05,
               on_progress: Callable[[dict], None] | None = None, progress_every: float = 10.0) -> dict:
    """Write the simulated machines' values to ``server`` as they fall due (see :func:`play_mqtt`;
    ``on_progress`` is given ``{"writes", "simulated"}``).

    OPC UA has no history here: the nodes start from their values at the present (the latest value due
    before it), then change as the simulated time passes.
    """
    stop = stop or threading.Event()
    t, ev = opcua_events(tables)
    lo = int(pd.DatetimeIndex(tables["states"]["start"]).as_unit("ms").asi8.min())
    clock = Clock(sim_start(lo), speed)
    i = int(np.searchsorted(t, clock.sim0, "right"))
    # the present state of every node (written once; a client subscribing later sees these values)
    latest: dict[tuple[str, str], tuple[int, tuple]] = {}
    for k in range(i):
        latest[(ev[k][0], ev[k][1])] = (int(t[k]), ev[k])
    server.write(sorted(latest.values(), key=lambda x: x[0]))
    n = len(t)
    writes = len(latest)
    t_end = time.time() + duration if duration else None
    progress = _Progress(on_progress, progress_every, clock)
    progress.last = {"writes": writes}
    while i < n and not stop.is_set():
        if t_end and time.time() >= t_end:
            break
        progress.tick(writes=writes)
        j = int(np.searchsorted(t, clock.now_ms(), "right"))
        if j > i:
            server.write([(int(t[k]), ev[k]) for k in range(i, j)])
            writes += j - i
            i = j
            continue
        nxt = clock.wall_of(int(t[i]))
        stop.wait(min(max(nxt - time.time(), tick), 1.0))
    return {"writes": writes}
