"""Live sources hosted by the server: ``zhizao serve --mqtt HOST:PORT`` and ``--opcua ENDPOINT --nodes FILE``.

DuckDB lets one process write a store, so a listener (``zhizao listen``) and the server cannot share one from
two processes. The server therefore runs the listeners itself (:class:`LiveSources`), each with a
:class:`StoreIngestor`: the live ingestor of :mod:`zhizao.live` writing through its own cursor of the server's
store, one micro-batch per transaction, under the server's write lock (uploads and batches never interleave)
and telling the store what each batch touched (:meth:`zhizao.server.store.Store.touch`): the enterprises of the
batch's equipment and scopes, so that a plant's live data recomputes that plant's pages and the whole-store
results, never another tenant's. Exactly-once storage, quarantine and acknowledgement after commit are the
listeners' own (docs/live.md). The dashboard shows the data as it arrives: a plant page whose figures changed
shows its earlier figures, marked, while it refreshes (``--fresh-wait``, docs/server.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhizao.live import LiveIngestor
from zhizao.live.topics import DEFAULT_PREFIX, TopicError, parse_topic

log = logging.getLogger("zhizao.server")
#: seconds after the start when a source that is not subscribed is reported on the log
SUBSCRIBE_WARNING_S = 15.0


@dataclass(frozen=True)
class MqttSource:
    """An MQTT broker the server subscribes to (``--mqtt HOST:PORT``)."""

    host: str
    port: int
    prefix: str = DEFAULT_PREFIX
    client_id: str = "zhizao-server"
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class OpcUaSource:
    """An OPC UA server the server subscribes to (``--opcua ENDPOINT --nodes FILE``)."""

    endpoint: str
    nodes: Path
    name: str = "opcua"


class StoreIngestor(LiveIngestor):
    """A :class:`zhizao.live.LiveIngestor` on the server's store: each micro-batch is written under the store's
    write lock and declares the enterprises it touched (see the module docstring).

    Parameters
    ----------
    server : zhizao.server.app.Server
    **kw
        :class:`zhizao.live.LiveIngestor`'s keywords (``workspace`` is the server's).
    """

    def __init__(self, server, **kw):
        super().__init__(workspace=server.store.ws, **kw)
        self.server = server

    def ingest_messages(self, messages):
        messages = list(messages)
        return self._written(lambda: super(StoreIngestor, self).ingest_messages(messages),
                             self._topic_scopes(t for t, _p in messages), self._topic_equipment(messages))

    def ingest_records(self, records: dict[str, list[dict]], *a, **kw):
        ids = {str(r[k]) for rows in records.values() for r in rows for k in ("equipment_id", "scope")
               if r.get(k) is not None}
        only = set(records) <= EQUIPMENT_TABLES and all(r.get("equipment_id") is not None
                                                        for rows in records.values() for r in rows)
        equipment = {str(r["equipment_id"]) for rows in records.values() for r in rows} if only else None
        return self._written(lambda: super(StoreIngestor, self).ingest_records(records, *a, **kw),
                             (ids, "equipment" in records), equipment)

    def _topic_equipment(self, messages) -> set[str] | None:
        """The equipment of a batch whose every topic writes state or production records of one equipment, else
        None (the batch may change anything)."""
        out = set()
        for t, _p in messages:
            try:
                tp = parse_topic(t, self.prefix)
            except TopicError:
                continue  # quarantined; stores nothing
            if tp.table not in EQUIPMENT_TABLES or not tp.equipment:
                return None
            out.add(tp.equipment)
        return out

    def _topic_scopes(self, topics: Iterable[str]) -> tuple[set[str], bool]:
        """The lowest hierarchy id of each topic, and whether a topic writes the equipment table (or cannot be
        read: then the batch is taken to touch everything)."""
        ids, whole = set(), False
        for t in topics:
            try:
                tp = parse_topic(t, self.prefix)
            except TopicError:
                continue  # quarantined by the ingestor; stores nothing
            low = next((x for x in (tp.equipment, tp.work_center, tp.area, tp.site, tp.enterprise) if x), None)
            whole |= tp.table == "equipment" or low is None
            if low is not None:
                ids.add(low)
        return ids, whole

    def _written(self, ingest, scopes: tuple[set[str], bool], equipment: set[str] | None = None) -> Any:
        """``ingest()`` under the store's write lock, declaring the enterprises it touches, and ``equipment``
        when its records are state and production records of those equipment only."""
        ids, whole = scopes
        store = self.server.store
        with store.write():
            touched = None if whole or self.register_equipment else _enterprises(store.ws.con, ids)
            if touched is not None:
                store.touch(*(f"data:{e}" for e in sorted(touched)))
                if equipment is not None:
                    store.touch_equipment(equipment)
            rep = ingest()
        self.server.after_write(None if touched is None else {f"data:{e}" for e in touched})
        return rep


#: Tables whose records change the elements of their own equipment only (Store.touch_equipment)
EQUIPMENT_TABLES = {"states", "production"}


def _enterprises(con, ids: set[str]) -> set[str] | None:
    """The enterprises of the equipment under (or above) hierarchy ids ``ids``; None when an id is unknown or
    its equipment has no enterprise (the write is then taken to touch all data)."""
    if not ids:
        return set()
    rows = con.execute("""
        SELECT k.id, e.enterprise FROM (SELECT unnest(?) AS id) k
        LEFT JOIN equipment e ON k.id IN (e.equipment_id, e.work_center, e.area, e.site, e.enterprise)""",
                       [sorted(ids)]).fetchall()
    if any(ent is None for _i, ent in rows):
        return None
    return {ent for _i, ent in rows}


def _what(s: MqttSource | OpcUaSource) -> str:
    return f"mqtt {s.host}:{s.port}" if isinstance(s, MqttSource) else f"opcua {s.endpoint}"


class LiveSources:
    """The live sources of a server: started with the server (:meth:`start`), stopped before it closes the
    store (:meth:`stop`). A listener that fails is logged and stays stopped; the server goes on."""

    def __init__(self, server, sources: Sequence[MqttSource | OpcUaSource]):
        self.server = server
        self.sources = list(sources)
        self.listeners: list = []
        self.ingestors: list[StoreIngestor] = []

    def start(self) -> None:
        from zhizao.live import MqttListener, OpcUaListener, load_nodes

        for s in self.sources:
            if isinstance(s, MqttSource):
                ing = StoreIngestor(self.server, source="mqtt", prefix=s.prefix)
                lst: Any = MqttListener(ing, s.host, s.port, client_id=s.client_id, prefix=s.prefix,
                                        username=s.username, password=s.password)
            else:
                cfg = load_nodes(s.nodes)
                ing = StoreIngestor(self.server, source=s.name, mappings={"states": cfg.mapping()})
                lst = OpcUaListener(ing, s.endpoint, cfg)
            lst.start()
            self.ingestors.append(ing)
            self.listeners.append(lst)
            threading.Thread(target=self._watch, args=(s, lst), daemon=True, name="zhizao-live-watch").start()

    @staticmethod
    def _watch(source: MqttSource | OpcUaSource, listener, after: float = SUBSCRIBE_WARNING_S) -> None:
        """Say on the server's log when a source is not subscribed ``after`` seconds after the start (a wrong
        address, a broker down): the listener keeps trying; ``/api/v1/health`` shows its state."""
        if not listener.subscribed.wait(after):
            log.warning("live source %s: not subscribed %.0f s after the start (%s); still trying; see "
                        "/api/v1/health", _what(source), after,
                        "no error yet" if listener.error is None else str(listener.error).splitlines()[0])
        else:
            log.info("live source %s: subscribed", _what(source))

    def status(self) -> list[dict]:
        """Per source: its kind and address, whether it is subscribed, its error and the ingestor's counters."""
        out = []
        for s, lst, ing in zip(self.sources, self.listeners, self.ingestors):
            err = getattr(lst, "error", None)
            out.append({"source": _what(s), "subscribed": lst.subscribed.is_set(),
                        "error": None if err is None else str(err).splitlines()[0], **ing.status()})
        return out

    def stop(self) -> None:
        for lst in self.listeners:
            try:
                lst.stop()
            except Exception as e:  # stopping one must not keep the others (or the store) open
                log.warning("stopping a live source failed: %s", e)
        for ing in self.ingestors:
            ing.close()
        self.listeners, self.ingestors = [], []
