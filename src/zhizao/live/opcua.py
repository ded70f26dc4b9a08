"""OPC UA: value changes of configured nodes -> canonical records (states, production, energy).

A nodes file (YAML) names, per equipment, up to four variables of an OPC UA server::

    publishing_interval_ms: 200          # subscription publishing interval (default 200)
    state_codes: {0: RUN, 1: SETUP, 2: FAIL, 3: MINOR, 4: IDLE, 5: BREAK, 6: OFF}   # code -> raw state
    states: {RUN: production, SETUP: setup, FAIL: unplanned_downtime, MINOR: minor_stop, IDLE: no_order,
             BREAK: planned_downtime, OFF: not_scheduled}                            # raw state -> category
    timezone: Europe/Berlin              # zone of the equipment registered from this file (default UTC)
    equipment:
      M001:
        state: "ns=2;s=M001.State"       # state code (integer or text)
        parts: "ns=2;s=M001.Parts"       # part counter (all parts made, good or not)
        scrap: "ns=2;s=M001.Scrap"       # scrap counter
        energy: "ns=2;s=M001.Energy"     # cumulative energy register
        counter_rollover: 65536          # the counters wrap at this value (optional)
        energy_rollover: 1000000         # the register wraps at this value (optional)
        meter_id: EM-M001                # default EM-<equipment>
        carrier: electricity             # default electricity
        unit: kWh                        # default kWh
        work_center: L01                 # optional hierarchy: the equipment is registered with it
        area: A1
        site: S1
        enterprise: E1

Every signal is optional. The conversion (:class:`Converter`):

* **states**: a change of the state code gives a ``states`` record starting at the value's source time
  stamp, with the raw state from ``state_codes`` (an unknown code stays its text, and the loader quarantines
  it as ``unmapped_state`` unless ``states`` maps it); categories come from ``states`` through the loader's
  own state mapping.
* **production**: a part-counter increase gives a ``production`` record over ``[previous change, this
  change)`` with ``produced`` = the delta. Scrap-counter increases are held and booked as ``scrap`` on the
  next production record (at most its ``produced``; the rest waits for the following one), so that good =
  produced - scrap never goes negative and no scrap is dropped.
* **energy**: a register increase gives an interval ``energy`` record with the delta.
* **resets and rollovers** (:func:`counter_delta`): a counter that goes down wrapped if a rollover modulus
  is configured and the drop is more than half of it (delta = value + modulus - previous), else it was reset
  to zero (delta = value). Both are logged in ``live_events``.

The last value and time stamp of every counter are stored in ``live_state`` in the same transaction as the
records made from them, so after a restart or a lost connection the first value seen is compared with the
stored one: the parts made meanwhile are counted (as one record over the gap), none twice. The first value
ever seen only sets the baseline.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from zhizao.errors import InputError
from zhizao.ingest.mapping import Mapping
from zhizao.live.ingestor import BatchReport, Event, LiveIngestor, StateUpdate
from zhizao.schema import STATE_CATEGORIES

log = logging.getLogger("zhizao.live.opcua")

SIGNALS = ("state", "parts", "scrap", "energy")
HIERARCHY = ("work_center", "area", "site", "enterprise")


class NodesError(InputError):
    """A nodes file is malformed; the message names the file and the key."""


@dataclass
class EquipmentNodes:
    equipment_id: str
    nodes: dict[str, str]  # signal -> node id
    counter_rollover: float | None = None
    energy_rollover: float | None = None
    meter_id: str = ""
    carrier: str = "electricity"
    unit: str = "kWh"
    hierarchy: dict[str, str] = field(default_factory=dict)


@dataclass
class NodesConfig:
    equipment: list[EquipmentNodes]
    state_codes: dict[str, str] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    timezone: str = "UTC"
    publishing_interval_ms: float = 200.0
    source: str = "<nodes>"

    def mapping(self) -> Mapping:
        """The state mapping as a mapping file of table ``states`` (applied by the loader)."""
        return Mapping(table="states", states=dict(self.states), source=self.source)

    def equipment_records(self) -> list[dict]:
        """Equipment to register (those with a hierarchy in the file)."""
        return [{"equipment_id": e.equipment_id, **e.hierarchy, "timezone": self.timezone}
                for e in self.equipment if e.hierarchy]


def _num(v, where):
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise NodesError(f"{where} must be a number, not {v!r}") from None
    if not x > 0:
        raise NodesError(f"{where} must be positive, not {v!r}")
    return x


def parse_nodes(doc, source: str = "<nodes>") -> NodesConfig:
    """Check a parsed nodes document (see the module docstring).

    Raises
    ------
    NodesError
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("equipment"), dict) or not doc["equipment"]:
        raise NodesError(f"{source}: a nodes file needs an 'equipment' mapping of equipment id -> nodes")
    known = {"publishing_interval_ms", "state_codes", "states", "timezone", "equipment"}
    extra = set(doc) - known
    if extra:
        raise NodesError(f"{source}: unknown key {sorted(extra)[0]!r} (known: {', '.join(sorted(known))})")
    states = {str(k): str(v) for k, v in (doc.get("states") or {}).items()}
    for raw, cat in states.items():
        if cat not in STATE_CATEGORIES:
            raise NodesError(f"{source}: states: {raw} -> {cat!r} is not a state category "
                             f"({', '.join(sorted(STATE_CATEGORIES))})")
    codes = {str(k): str(v) for k, v in (doc.get("state_codes") or {}).items()}
    eqs = []
    ekeys = set(SIGNALS) | set(HIERARCHY) | {"counter_rollover", "energy_rollover", "meter_id", "carrier", "unit"}
    for eq, spec in doc["equipment"].items():
        where = f"{source}: equipment {eq}"
        if not isinstance(spec, dict):
            raise NodesError(f"{where}: expected a mapping of signal -> node id")
        extra = set(spec) - ekeys
        if extra:
            raise NodesError(f"{where}: unknown key {sorted(extra)[0]!r} (signals: {', '.join(SIGNALS)})")
        nodes = {s: str(spec[s]) for s in SIGNALS if spec.get(s)}
        if not nodes:
            raise NodesError(f"{where}: no node (one of {', '.join(SIGNALS)})")
        eqs.append(EquipmentNodes(
            str(eq), nodes, _num(spec.get("counter_rollover"), f"{where}: counter_rollover"),
            _num(spec.get("energy_rollover"), f"{where}: energy_rollover"),
            str(spec.get("meter_id") or f"EM-{eq}"), str(spec.get("carrier") or "electricity"),
            str(spec.get("unit") or "kWh"), {h: str(spec[h]) for h in HIERARCHY if spec.get(h)}))
    return NodesConfig(eqs, codes, states, str(doc.get("timezone") or "UTC"),
                       float(doc.get("publishing_interval_ms") or 200.0), source)


def load_nodes(path: str | Path) -> NodesConfig:
    """Read and check a nodes file."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise NodesError(f"{path}: cannot read nodes file: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise NodesError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    return parse_nodes(doc, str(path))


def counter_delta(previous: float, value: float, rollover: float | None = None) -> tuple[float, str | None]:
    """Increase of a cumulative counter between two readings.

    Parameters
    ----------
    previous, value : float
        Two consecutive readings [counts or register units].
    rollover : float, optional
        The modulus at which the counter wraps to zero (for example 65536 for a 16-bit counter).

    Returns
    -------
    delta : float
        ``value - previous`` if the counter did not go down; ``value + rollover - previous`` for a rollover;
        ``value`` after a reset (the counter restarted at zero).
    event : {None, 'rollover', 'reset'}

    Notes
    -----
    A decrease is a rollover when a modulus is given and the drop exceeds half of it; otherwise a reset.
    """
    if value >= previous:
        return value - previous, None
    if rollover is not None and previous - value > rollover / 2:
        return value + rollover - previous, "rollover"
    return value, "reset"


def _ts(t) -> _dt.datetime:
    if t is None:
        return _dt.datetime.now(_dt.UTC)
    if t.tzinfo is None:
        return t.replace(tzinfo=_dt.UTC)
    return t


class Converter:
    """Turn value changes into canonical records (stateful; see the module docstring).

    Parameters
    ----------
    config : NodesConfig
    state : dict
        ``live_state`` of the source: key -> (value, ts), as :meth:`LiveIngestor.state` returns.
    """

    def __init__(self, config: NodesConfig, state: dict | None = None):
        self.config = config
        self.eq = {e.equipment_id: e for e in config.equipment}
        self.state: dict[str, tuple[float | None, _dt.datetime | None]] = {}
        for k, (v, t) in (state or {}).items():
            self.state[k] = (v, None if t is None else _ts(t.to_pydatetime() if hasattr(t, "to_pydatetime") else t))

    def convert(self, changes) -> tuple[dict[str, list[dict]], list[StateUpdate], list[Event]]:
        """Records, state updates and events from value changes.

        Parameters
        ----------
        changes : iterable of (equipment_id, signal, value, ts)
            ``ts`` is the source time stamp (timezone-aware or naive UTC); changes are taken in time order
            (stable for equal stamps).
        """
        recs: dict[str, list[dict]] = {}
        updates: dict[str, StateUpdate] = {}
        events: list[Event] = []

        def put(key, value, ts):
            self.state[key] = (value, ts)
            updates[key] = StateUpdate(key, value, ts)

        # a subscription delivers each monitored item's queue in turn: put the changes back in time order
        ordered = sorted(((eq, sig, v, _ts(t)) for eq, sig, v, t in changes), key=lambda c: c[3])
        for eq_id, signal, value, ts in ordered:
            e = self.eq[eq_id]
            key = f"{eq_id}.{signal}"
            if value is None:
                continue
            if signal == "state":
                code = _code(value)
                prev = self.state.get(key, (None, None))[0]
                if prev is not None and _code(prev) == code:
                    continue
                raw = self.config.state_codes.get(code, code)
                recs.setdefault("states", []).append({"equipment_id": eq_id, "start": ts, "state": raw})
                put(key, code, ts)
                continue
            try:
                v = float(value)
            except (TypeError, ValueError):
                log.warning("%s: %r is not a number; ignored", key, value)
                continue
            if math.isnan(v):
                continue
            prev, prev_ts = self.state.get(key, (None, None))
            if prev is None or prev_ts is None:
                put(key, v, ts)  # the first value ever seen: baseline only
                continue
            if v == prev:
                continue
            if ts <= prev_ts:
                continue  # same time stamp as the baseline: the next change carries this delta
            roll = e.energy_rollover if signal == "energy" else e.counter_rollover
            delta, ev = counter_delta(prev, v, roll)
            if ev:
                events.append(Event(key, ev, prev, v, ts))
            put(key, v, ts)
            if delta <= 0:
                continue
            if signal == "scrap":
                pk = f"{eq_id}.scrap_pending"
                pending = (self.state.get(pk, (0.0, None))[0] or 0.0) + delta
                put(pk, pending, ts)
            elif signal == "parts":
                pk = f"{eq_id}.scrap_pending"
                pending = self.state.get(pk, (0.0, None))[0] or 0.0
                rec = {"equipment_id": eq_id, "start": prev_ts, "end": ts, "produced": _int(delta)}
                if pending:
                    used = min(pending, delta)
                    rec["scrap"] = _int(used)
                    put(pk, pending - used, ts)
                recs.setdefault("production", []).append(rec)
            elif signal == "energy":
                recs.setdefault("energy", []).append({
                    "meter_id": e.meter_id, "equipment_id": eq_id, "start": prev_ts, "end": ts,
                    "carrier": e.carrier, "quantity": delta, "unit": e.unit, "reading": "interval"})
        return recs, list(updates.values()), events


def _code(v) -> str:
    """A state code as text: 3, 3.0 and '3' are the same code."""
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _int(x: float):
    return int(x) if float(x).is_integer() else x


class OpcUaListener:
    """Subscribe to the configured nodes and store their changes as canonical records.

    Runs an asyncio loop in its own thread (:meth:`start`, :meth:`stop`); reconnects after a lost
    connection (the counters' stored baselines bridge the gap).

    Parameters
    ----------
    ingestor : LiveIngestor
        The store writer; its ``mappings`` should hold ``config.mapping()`` for the states table (the CLI does
        this).
    endpoint : str
        ``opc.tcp://host:port/path``.
    config : NodesConfig
    batch_seconds : float
        Micro-batch interval.
    """

    def __init__(self, ingestor: LiveIngestor, endpoint: str, config: NodesConfig, *, batch_seconds: float = 0.5,
                 timeout: float = 10.0, on_batch=None):
        self.ingestor = ingestor
        self.endpoint = endpoint
        self.config = config
        self.batch_seconds = batch_seconds
        self.timeout = timeout
        self.on_batch = on_batch
        self.converter = Converter(config, ingestor.state())
        self.subscribed = threading.Event()
        self._stop = threading.Event()
        self._pending: list = []
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.last_report: BatchReport | None = None
        self.connects = 0

    def start(self) -> None:
        if self.config.equipment_records():
            self.ingestor.ingest_records({"equipment": self.config.equipment_records()})
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="zhizao-opcua",
                                        daemon=True)
        self._thread.start()

    def wait_subscribed(self, timeout: float = 30.0) -> bool:
        return self.subscribed.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ asyncio side
    def datachange_notification(self, node, val, data) -> None:
        """asyncua subscription handler."""
        ref = self._nodes.get(node.nodeid)
        if ref is None:
            return
        dv = data.monitored_item.Value
        ts = dv.SourceTimestamp or dv.ServerTimestamp
        self._pending.append((ref[0], ref[1], val, ts))

    def status_change_notification(self, status) -> None:
        log.info("subscription status: %s", status)

    async def _flush(self) -> None:
        if not self._pending:
            return
        changes, self._pending = self._pending, []
        recs, state, events = self.converter.convert(changes)
        if not (recs or state or events):
            return
        rep = await asyncio.to_thread(self.ingestor.ingest_records, recs, state, events, self.endpoint)
        self.last_report = rep
        if self.on_batch is not None:
            try:
                self.on_batch(rep)
            except Exception:  # a reporting hook must not stop the ingestion
                log.exception("on_batch failed")

    async def _main(self) -> None:
        from asyncua import Client

        try:
            while not self._stop.is_set():
                lost = asyncio.Event()
                client = Client(self.endpoint, timeout=self.timeout, watchdog_intervall=1.0)

                async def on_lost(exc, lost=lost):
                    log.warning("connection to %s lost: %s", self.endpoint, exc)
                    lost.set()

                client.connection_lost_callback = on_lost
                try:
                    await client.connect()
                except Exception as e:  # server not (yet) there: retry
                    log.info("cannot connect to %s: %s; retrying", self.endpoint, e)
                    await asyncio.sleep(1.0)
                    continue
                self.connects += 1
                try:
                    self._nodes = {}
                    nodes = []
                    for e in self.config.equipment:
                        for sig, nid in e.nodes.items():
                            n = client.get_node(nid)
                            self._nodes[n.nodeid] = (e.equipment_id, sig)
                            nodes.append(n)
                    sub = await client.create_subscription(self.config.publishing_interval_ms, self)
                    await sub.subscribe_data_change(nodes, sampling_interval=0.0)
                    self.subscribed.set()
                    log.info("subscribed to %d nodes at %s", len(nodes), self.endpoint)
                    while not self._stop.is_set() and not lost.is_set():
                        await asyncio.sleep(self.batch_seconds)
                        await self._flush()
                except (TimeoutError, OSError, ConnectionError) as e:
                    log.warning("OPC UA session at %s failed: %s; reconnecting", self.endpoint, e)
                except Exception as e:
                    if type(e).__module__.startswith("asyncua"):
                        log.warning("OPC UA error at %s: %s; reconnecting", self.endpoint, e)
                    else:
                        raise
                finally:
                    await self._flush()
                    try:
                        await asyncio.wait_for(client.disconnect(), 5)
                    except Exception:
                        pass
                if not self._stop.is_set():
                    await asyncio.sleep(0.5)
        except BaseException as e:
            self.error = e
            log.exception("OPC UA ingestion stopped")
