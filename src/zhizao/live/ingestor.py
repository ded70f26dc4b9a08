"""Micro-batch ingestion of live records into the store, exactly once, with the file loader's validation.

A :class:`LiveIngestor` owns the store (DuckDB allows one writing process). Each call of
:meth:`LiveIngestor.ingest_messages` (MQTT) or :meth:`LiveIngestor.ingest_records` (OPC UA) is one
micro-batch and one transaction:

1. messages already stored are recognised by their hash (topic + payload, table ``live_messages``) and
   skipped whole, so a redelivered message changes nothing, not even the quarantine;
2. the payloads are parsed in bulk inside DuckDB (one row per JSON record; each payload and record parsed once
   for its type and keys, the columns extracted as text with one ``json_transform``, as a CSV file would give
   them); malformed payloads and records that contradict their topic go to the quarantine; the topic's
   equipment fills a missing ``equipment_id``; records identical to another record of the batch are dropped
   (a publisher that re-sends a record in another message);
3. each table's records are validated and stored by :func:`zhizao.ingest.load_records`: the file loader's
   mapping, parsing and validation rules (the same SQL), vectorised in one statement per table, then
   ``duplicate`` within the batch and the record-key check against the store, where an identical stored
   record is skipped and a different one is quarantined as ``conflicts_with_stored``; rejected records land
   in ``quarantine`` with the topic as ``source`` and their index in the payload as ``record``;
4. the message hashes, the batch log (``live_batches``) and any source state (OPC UA counter baselines,
   ``live_state``) are written in the same transaction, then it commits.

Only after the commit returns does a listener acknowledge the messages to the broker, so a crash before the
commit causes redelivery and a crash after it causes a redelivery that step 1 skips. A batch that fails for
a reason other than the store itself is halved until the message that makes it fail is found; that one is
quarantined as ``unloadable`` (a poison message must not block the stream).

Readers in the same process use :attr:`LiveIngestor.ws` (a :class:`zhizao.Workspace` on its own
connection); :meth:`LiveIngestor.kpi` computes the KPIs of the current shift including every committed
record.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

import zhizao
from zhizao.ingest import load as _loader
from zhizao.ingest.load import IngestError
from zhizao.ingest.mapping import ALIASES, Mapping, MappingError, default_mapping
from zhizao.ingest.rules import Sql, sql_detail
from zhizao.kpi.buckets import floor_local
from zhizao.kpi.stored import refresh_stored
from zhizao.limits import Limits
from zhizao.limits import current as current_limits
from zhizao.live import topics as T
from zhizao.live.topics import (
    DEFAULT_PREFIX,
    SUBJECT_TABLES,
    TOPIC_LEVELS,
    TopicError,
    message_hash,
    parse_topic,
    raw_text,
    topic_for,
)
from zhizao.schema import TABLES
from zhizao.store import equipment as store_equipment
from zhizao.store import records as store_records

log = logging.getLogger("zhizao.live")

LIVE_DDL = (
    """CREATE TABLE IF NOT EXISTS live_batches (
        batch BIGINT, source VARCHAR, committed_at TIMESTAMPTZ, messages INTEGER, duplicate_messages INTEGER,
        records INTEGER, loaded INTEGER, quarantined INTEGER, skipped INTEGER)""",
    "CREATE TABLE IF NOT EXISTS live_messages (hash VARCHAR, batch BIGINT)",
    """CREATE TABLE IF NOT EXISTS live_state (
        source VARCHAR, key VARCHAR, value DOUBLE, text VARCHAR, ts TIMESTAMPTZ, batch BIGINT)""",
    """CREATE TABLE IF NOT EXISTS live_events (
        source VARCHAR, key VARCHAR, kind VARCHAR, previous DOUBLE, value DOUBLE, ts TIMESTAMPTZ, batch BIGINT)""",
)

#: load order inside a batch: references first
_ORDER = ("equipment", "products", "calendar", "states", "production", "energy", "labour", "quality", "variables")
_TEMP = ("_zz_rec_mapped", "_zz_rec_checked")
#: record sequence = message number * stride + index in the payload (a payload of at most 4 MiB has fewer)
_RSEQ_STRIDE = 1 << 32


@dataclass
class BatchReport:
    """What one micro-batch did."""

    batch: int
    messages: int = 0
    duplicate_messages: int = 0  #: skipped whole: already stored (redelivery) or twice in the batch
    records: int = 0
    loaded: int = 0
    quarantined: int = 0
    skipped: int = 0  #: identical to a stored record or to another record of the batch
    seconds: float = 0.0
    committed_at: float = 0.0  #: Unix time of the commit
    tables: dict = field(default_factory=dict)  #: table -> [loaded, quarantined, skipped]

    def __str__(self) -> str:
        return (f"batch {self.batch}: {self.messages} messages ({self.duplicate_messages} redelivered), "
                f"{self.loaded} records loaded, {self.quarantined} quarantined, {self.skipped} already stored, "
                f"{self.seconds * 1000:.0f} ms")


@dataclass
class StateUpdate:
    """A source's remembered value (an OPC UA counter baseline), written with the batch."""

    key: str
    value: float | str | None  #: a number, or a text (a state code)
    ts: _dt.datetime | None


@dataclass
class Event:
    """Something a source noticed (a counter reset or rollover), logged in ``live_events``."""

    key: str
    kind: str
    previous: float | None
    value: float | None
    ts: _dt.datetime | None


#: per topic of a batch: its index, the topic, table, whether the topic's levels fill records, the levels
_TOPIC_TYPES = {"tix": pa.int64(), "topic": pa.string(), "tbl": pa.string(), "fill": pa.bool_(),
                "t_enterprise": pa.string(), "t_site": pa.string(), "t_area": pa.string(),
                "t_work_center": pa.string(), "t_equipment": pa.string()}


@dataclass
class _Batch:
    """The messages of a micro-batch: per message its topic's index and payload; the topics once each."""

    tix: list = field(default_factory=list)
    payloads: list | pa.Array = field(default_factory=list)
    #: (topic, table, fill, enterprise, site, area, work_center, equipment) per topic index
    topics: list = field(default_factory=list)

    def tables(self) -> tuple[pa.Table, pa.Table]:
        pay = self.payloads if isinstance(self.payloads, pa.Array) else pa.array(self.payloads, pa.string())
        msgs = pa.table({"seq": pa.array(range(len(self.tix)), pa.int64()), "tix": pa.array(self.tix, pa.int64()),
                         "payload": pay})
        cols: list = list(zip(*self.topics)) if self.topics else [[]] * 8
        top = pa.table({"tix": pa.array(range(len(self.topics)), pa.int64()),
                        **{k: pa.array(v, _TOPIC_TYPES[k]) for k, v in zip(list(_TOPIC_TYPES)[1:], cols)}})
        return msgs, top


def _json_default(v):
    if isinstance(v, (_dt.datetime, _dt.date, pd.Timestamp)):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    raise TypeError(f"{type(v).__name__} is not JSON serialisable")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


#: store failures: never blamed on a message (nothing is acknowledged; the listener stops)
_FATAL = tuple(getattr(duckdb, n) for n in ("IOException", "OutOfMemoryException", "FatalException",
                                             "InternalException", "PermissionException") if hasattr(duckdb, n))


def _merge(a: BatchReport, b: BatchReport) -> BatchReport:
    out = BatchReport(b.batch)
    for k in ("messages", "duplicate_messages", "records", "loaded", "quarantined", "skipped", "seconds"):
        setattr(out, k, getattr(a, k) + getattr(b, k))
    out.committed_at = b.committed_at
    for t, v in list(a.tables.items()) + list(b.tables.items()):
        tv = out.tables.setdefault(t, [0, 0, 0])
        for i in range(3):
            tv[i] += v[i]
    return out


class _TableFailed(Exception):
    def __init__(self, table: str, msg: str):
        super().__init__(msg)
        self.table = table
        self.msg = msg


class LiveIngestor:
    """The writer of a store for live sources.

    Parameters
    ----------
    db : str or Path
        DuckDB store (created if missing). Ignored when ``workspace`` is given.
    source : str
        Name of the source in provenance (``_source`` = ``live:<source>:<batch>``) and in ``live_state``.
    prefix : str
        MQTT topic prefix.
    register_equipment : bool
        Register unknown equipment from the topic hierarchy (time zone ``timezone``) instead of quarantining
        its records as ``unknown_equipment`` (the default, as for files).
    register_enterprises : iterable of str, optional
        With ``register_equipment``, register equipment only of these enterprises (the topic's enterprise
        level); records of unknown equipment of any other enterprise are quarantined as
        ``unknown_equipment``. Without it any publisher on the broker may create equipment for any enterprise:
        restrict the publishers with the broker's ACLs.
    timezone : str
        IANA zone of auto-registered equipment.
    mappings : dict of str to Mapping, optional
        Per table, a mapping file (columns, scale, time zone, raw states) applied to live records as to files.
    workspace : zhizao.Workspace, optional
        Share an open workspace (the ingestor writes through its own cursor).
    retention_days : float
        How long message hashes are kept for redelivery dedupe (longer than any broker session expiry).
    threads : int, optional
        DuckDB worker threads of the store (a setting of the whole database, readers included). Micro-batches
        of a few thousand records gain nothing from parallel operators; one thread costs about a quarter
        less CPU per record, which the broker and publishers on the same cores need. Default: DuckDB's.
    limits : zhizao.limits.Limits, optional
        ``max_payload_bytes`` (larger messages: ``payload_too_large``), ``max_record_keys`` (records with more
        keys: ``too_many_keys``), and the loader's limits (times, values, field size). Default:
        :func:`zhizao.limits.current`. A record's keys other than the canonical columns and those its table's
        mapping reads are ignored, so the cost of a batch grows with its records, never with the keys they
        invent.
    """

    def __init__(self, db: str | Path = "zhizao.duckdb", *, source: str = "mqtt", prefix: str = DEFAULT_PREFIX,
                 register_equipment: bool = False, register_enterprises=None, timezone: str = "UTC",
                 mappings: dict[str, Mapping] | None = None, workspace: zhizao.Workspace | None = None,
                 settings=None, retention_days: float = 7.0, threads: int | None = None,
                 limits: Limits | None = None):
        self._own_ws = workspace is None
        self.limits = limits or (workspace.limits if workspace is not None else current_limits())
        self.ws = workspace if workspace is not None else zhizao.connect(db, settings=settings)
        self.source = source
        self.prefix = prefix
        self.register_equipment = register_equipment
        self.register_enterprises = (None if register_enterprises is None
                                     else frozenset(str(e) for e in register_enterprises))
        self.timezone = timezone
        self.mappings = {}
        for t, m in (mappings or {}).items():
            if t not in TABLES:
                raise MappingError(f"unknown table {t!r}")
            # live records arrive as Parquet written by the ingestor: the file-reading options do not apply
            self.mappings[t] = replace(m, read={})
        self.retention_days = retention_days
        self._w = self.ws.con.cursor()
        self._w.execute("SET TimeZone = 'UTC'")
        if threads is not None:
            if int(threads) < 1:
                raise ValueError(f"threads = {threads}: at least 1")
            self._w.execute(f"SET threads = {int(threads)}")
        for ddl in LIVE_DDL:
            self._w.execute(ddl)
        self._batch = self._w.execute("SELECT coalesce(max(batch), 0) FROM live_batches").fetchall()[0][0]
        self._known_equipment: set[str] = set()
        self._write_lock = threading.RLock()
        self._read_lock = threading.RLock()
        self.totals: Counter = Counter()
        self.last_commit: float | None = None
        self._closed = False
        self._view: zhizao.Workspace | None = None

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._write_lock:
            try:
                if self._view is not None:
                    self._view.close()
                self._w.close()
            finally:
                if self._own_ws:
                    self.ws.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ writing
    def ingest_messages(self, messages) -> BatchReport:
        """Store one micro-batch of MQTT messages.

        Parameters
        ----------
        messages : iterable of (topic, payload)
            ``payload`` as bytes (UTF-8 JSON: one record or an array of records).

        Returns
        -------
        BatchReport
        """
        msgs = [(t, p if type(p) is bytes else bytes(p) if isinstance(p, (bytearray, memoryview))
                 else str(p).encode()) for t, p in messages]
        with self._write_lock:
            return self._ingest_isolating(msgs)

    def _ingest_isolating(self, msgs: list) -> BatchReport:
        """Ingest ``msgs``; if the batch fails for a reason other than the store itself, find the message that
        makes it fail by halving, and quarantine that one as ``unloadable`` (a poison message must not block
        the stream: its redelivery would fail again)."""
        try:
            return self._ingest(msgs)
        except duckdb.Error as e:
            if isinstance(e, _FATAL) or not msgs:
                raise
            log.warning("a batch of %d messages failed (%s); isolating the message", len(msgs),
                        str(e).splitlines()[0])
            if len(msgs) == 1:
                t, p = msgs[0]
                try:
                    table = parse_topic(t, self.prefix).table
                except TopicError as te:
                    table = te.table
                rej = [(table, t, None, "unloadable", T.UNLOADABLE(error=str(e).splitlines()[0][:500]), raw_text(p))]
                return self._commit(_Batch(), rej, [message_hash(t, p)], 1, 0, [], [], time.perf_counter())
            half = len(msgs) // 2
            return _merge(self._ingest_isolating(msgs[:half]), self._ingest_isolating(msgs[half:]))

    def _ingest(self, msgs: list) -> BatchReport:
        t0 = time.perf_counter()
        hashes = [message_hash(t, p) for t, p in msgs]
        seen = self._stored_hashes(hashes)
        batch = _Batch()
        index: dict[str, int | TopicError] = {}  # topic -> its index in batch.topics, or why it is rejected
        rejected, fresh_hashes, dup = [], [], 0
        for (t, p), h in zip(msgs, hashes):
            if h in seen:
                dup += 1
                continue
            seen.add(h)
            fresh_hashes.append(h)
            i = index.get(t)
            if i is None:
                try:
                    tp = parse_topic(t, self.prefix)
                    i = index[t] = len(batch.topics)
                    batch.topics.append((t, tp.table, True, *(getattr(tp, lvl) for lvl in TOPIC_LEVELS)))
                except TopicError as e:
                    i = index[t] = e
            if isinstance(i, TopicError):
                rejected.append((i.table, t, None, i.rule, i.message, raw_text(p)))
                continue
            if len(p) > self.limits.max_payload_bytes:
                rejected.append((batch.topics[i][1], t, None, "payload_too_large",
                                 T.PAYLOAD_TOO_LARGE(bytes=len(p), limit=self.limits.max_payload_bytes),
                                 raw_text(p)))
                continue
            batch.tix.append(i)
            batch.payloads.append(p)
        # UTF-8 checked for all payloads at once (Arrow); only if one fails, each is decoded to name it
        try:
            batch.payloads = pa.array(batch.payloads, pa.binary()).cast(pa.string())
        except pa.ArrowInvalid:
            tix, texts = [], []
            for i, p in zip(batch.tix, batch.payloads):
                try:
                    texts.append(p.decode("utf-8"))
                    tix.append(i)
                except UnicodeDecodeError as e:
                    t = batch.topics[i]
                    rejected.append((t[1], t[0], None, "malformed_payload", T.NOT_UTF8(error=str(e)), raw_text(p)))
            batch.tix, batch.payloads = tix, texts
        return self._commit(batch, rejected, fresh_hashes, len(msgs), dup, [], [], t0)

    def ingest_records(self, records: dict[str, list[dict]], state: Sequence[StateUpdate] = (),
                       events: Sequence[Event] = (), origin: str | None = None) -> BatchReport:
        """Store one micro-batch of records made by a source (OPC UA), with the source's state.

        Parameters
        ----------
        records : dict of str to list of dict
            Canonical table -> records (Python values; timestamps as ISO 8601 strings or datetimes).
        state : list of StateUpdate
            Values the source must find again after a restart (written in the same transaction).
        events : list of Event
            Counter resets and rollovers to log.
        origin : str, optional
            ``source`` of quarantined records (default the ingestor's source name).
        """
        t0 = time.perf_counter()
        origin = origin or self.source
        batch = _Batch()
        for table, recs in records.items():
            if recs:
                batch.tix.append(len(batch.topics))
                batch.topics.append((origin, table, False, None, None, None, None, None))
                batch.payloads.append(json.dumps(list(recs), default=_json_default))
        with self._write_lock:
            return self._commit(batch, [], [], 0, 0, list(state), list(events), t0)

    def _stored_hashes(self, hashes: list[str]) -> set[str]:
        if not hashes:
            return set()
        self._w.register("_zz_live_h", pa.table({"hash": pa.array(hashes, pa.string())}))
        try:
            return {h for (h,) in self._w.execute(
                "SELECT hash FROM live_messages WHERE hash IN (SELECT hash FROM _zz_live_h)").fetchall()}
        finally:
            self._w.unregister("_zz_live_h")

    def _commit(self, batch: _Batch, rejected, hashes, n_messages, n_dup, state, events, t0) -> BatchReport:
        if not (batch.tix or rejected or hashes or state or events):
            return BatchReport(self._batch, messages=n_messages, duplicate_messages=n_dup,
                               seconds=time.perf_counter() - t0, committed_at=time.time())
        msgs, topics = batch.tables()
        failed: dict[str, str] = {}
        while True:
            try:
                return self._try_commit(msgs, topics, rejected, hashes, n_messages, n_dup, state, events, t0, failed)
            except _TableFailed as e:
                # a mapping that cannot be applied: that table's records go to the quarantine, the rest loads
                failed[e.table] = e.msg

    def _try_commit(self, msgs, topics, rejected, hashes, n_messages, n_dup, state, events, t0, failed) -> BatchReport:
        con = self._w
        self._pending_known: set[str] = set()
        batch = self._batch + 1
        token = f"live:{self.source}:{batch}"
        rep = BatchReport(batch, messages=n_messages, duplicate_messages=n_dup)
        ok = False
        con.execute("BEGIN TRANSACTION")
        try:
            if rejected:
                con.executemany(
                    'INSERT INTO quarantine ("table", source, record, line, rule, detail, code, params, raw) '
                    'VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?)',
                    [[t or "", topic, idx, rule, str(m), m.code, json.dumps(m.to_dict()["params"]), raw]
                     for t, topic, idx, rule, m, raw in rejected])
                rep.quarantined += len(rejected)
            if msgs.num_rows:
                self._w.register("_zz_live_top", topics)
                tables = self._stage(msgs, rep)
                order = [t for t in _ORDER if t in tables] + [t for t in tables if t not in _ORDER]
                registered = not self.register_equipment or not self._may_register(topics)
                for table in order:
                    if not registered and table != "equipment":
                        self._register(token, rep)
                        registered = True
                    if table in failed:
                        m = T.MAPPING_ERROR(error=failed[table])
                        n = con.execute("""
                            INSERT INTO quarantine ("table", source, record, line, rule, detail, code, params, raw)
                            SELECT tbl, topic, idx, NULL, 'mapping_error', ?, ?, ?, rec FROM _zz_live_rec
                            WHERE tbl = ? AND rtype = 'OBJECT'""",
                                        [str(m), m.code, json.dumps(m.to_dict()["params"]), table]).fetchall()
                        rep.quarantined += n[0][0] if n else 0
                        continue
                    self._load_table(table, "tbl = ? AND NOT auto", [table], token, rep, keys=tables[table])
                if not registered:
                    self._register(token, rep)
            if hashes:
                con.register("_zz_live_h", pa.table({"hash": pa.array(hashes, pa.string())}))
                con.execute(f"INSERT INTO live_messages SELECT hash, {batch} FROM _zz_live_h")
                con.unregister("_zz_live_h")
            if state:
                con.executemany("DELETE FROM live_state WHERE source = ? AND key = ?",
                                [[self.source, s.key] for s in state])
                con.executemany("INSERT INTO live_state VALUES (?, ?, ?, ?, ?, ?)",
                                [[self.source, s.key, None if isinstance(s.value, str) else s.value,
                                  s.value if isinstance(s.value, str) else None, s.ts, batch] for s in state])
            if events:
                con.executemany("INSERT INTO live_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                                [[self.source, e.key, e.kind, e.previous, e.value, e.ts, batch] for e in events])
            rep.records = rep.loaded + rep.quarantined + rep.skipped
            now = time.time()
            con.execute("INSERT INTO live_batches VALUES (?, ?, to_timestamp(?), ?, ?, ?, ?, ?, ?)",
                        [batch, self.source, now, rep.messages, rep.duplicate_messages, rep.records, rep.loaded,
                         rep.quarantined, rep.skipped])
            if batch % 1000 == 0:
                self._prune(con)
            con.execute("COMMIT")
            ok = True
            refresh_stored(con)  # the store's stored hours, where it keeps them (zhizao.kpi.stored)
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
        finally:
            try:
                temp = ("_zz_live_rec", "_zz_live_t") + (() if ok else _TEMP)
                con.execute("; ".join(f"DROP TABLE IF EXISTS {t}" for t in temp))
            except duckdb.Error:
                pass
            for view in ("_zz_live_msg", "_zz_live_top"):
                try:
                    con.unregister(view)
                except duckdb.Error:
                    pass
        self._batch = batch
        self._known_equipment |= self._pending_known
        rep.committed_at = time.time()
        rep.seconds = time.perf_counter() - t0
        self.last_commit = rep.committed_at
        for k in ("messages", "duplicate_messages", "records", "loaded", "quarantined", "skipped"):
            self.totals[k] += getattr(rep, k)
        self.totals["batches"] += 1
        return rep

    def _stage(self, msgs: pa.Table, rep: BatchReport) -> dict[str, list[str]]:
        """Messages -> one row per JSON record (``_zz_live_rec``); malformed payloads to the quarantine.

        Each payload and record is parsed here once for its JSON type and keys. A payload that is not JSON is
        one row with ``rtype`` NULL. Returns the tables that have records (objects), each with the distinct
        keys of its records.
        """
        con = self._w
        con.register("_zz_live_msg", msgs)
        # an array gives its elements (zipped with their 1-based index), an object itself; rseq orders the
        # records (message, then index) without a sort
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _zz_live_rec AS
            WITH m AS (SELECT m.seq, t.* EXCLUDE (tix), m.payload FROM _zz_live_msg m JOIN _zz_live_top t USING (tix)),
            v AS (SELECT *, CASE WHEN json_valid(payload) THEN json_type(payload) END AS jt FROM m),
            x AS (SELECT * EXCLUDE (payload, jt), jt IS NULL AS bad,
                         CASE WHEN jt IS NULL THEN to_json(left(payload, 4096)) END AS braw,
                         CASE WHEN jt = 'ARRAY' THEN json_extract(payload, '$[*]')
                              WHEN jt IS NOT NULL THEN [payload::JSON] ELSE [NULL::JSON] END AS recs
                  FROM v),
            u AS (SELECT seq, topic, tbl, fill, false AS auto, t_enterprise, t_site, t_area, t_work_center,
                         t_equipment, bad, braw, unnest(generate_series(1, CAST(len(recs) AS BIGINT))) AS idx,
                         unnest(recs) AS rec
                  FROM x)
            SELECT rseq, * EXCLUDE (rseq, rtype0, rkeys0) REPLACE (
                       CASE WHEN len(rkeys0) > {int(self.limits.max_record_keys)} THEN 'TOO_MANY_KEYS'
                            ELSE rtype0 END AS rtype,
                       CASE WHEN len(rkeys0) > {int(self.limits.max_record_keys)} THEN NULL ELSE rkeys0 END AS rkeys)
            FROM (
            SELECT seq * {_RSEQ_STRIDE} + idx AS rseq, * EXCLUDE (bad, braw, idx, rec),
                   CASE WHEN NOT bad THEN idx END AS idx, coalesce(rec, braw) AS rec,
                   CASE WHEN NOT bad THEN json_type(rec) END AS rtype0,
                   CASE WHEN json_type(rec) = 'OBJECT' THEN json_keys(rec) END AS rkeys0,
                   NULL AS rtype, NULL AS rkeys
            FROM u)""")
        not_json = sql_detail(T.NOT_JSON)
        not_object = sql_detail(T.NOT_OBJECT, index=Sql("idx"), type=Sql("lower(rtype)"))
        too_many = sql_detail(T.TOO_MANY_KEYS, index=Sql("idx"), keys=Sql("json_keys_count"),
                              limit=int(self.limits.max_record_keys))
        n = con.execute(f"""
            INSERT INTO quarantine ("table", source, record, line, rule, detail, code, params, raw)
            SELECT tbl, topic, idx, NULL,
                   CASE WHEN rtype = 'TOO_MANY_KEYS' THEN 'too_many_keys' ELSE 'malformed_payload' END,
                   CASE WHEN rtype IS NULL THEN {not_json[0]} WHEN rtype = 'TOO_MANY_KEYS' THEN {too_many[0]}
                        ELSE {not_object[0]} END,
                   CASE WHEN rtype IS NULL THEN {_lit(T.NOT_JSON.code)}
                        WHEN rtype = 'TOO_MANY_KEYS' THEN {_lit(T.TOO_MANY_KEYS.code)}
                        ELSE {_lit(T.NOT_OBJECT.code)} END,
                   CASE WHEN rtype IS NULL THEN {not_json[1]} WHEN rtype = 'TOO_MANY_KEYS' THEN {too_many[1]}
                        ELSE {not_object[1]} END,
                   CASE WHEN rtype = 'TOO_MANY_KEYS' THEN to_json(left(CAST(rec AS VARCHAR), 4096)) ELSE rec END
            FROM (SELECT *, CASE WHEN rtype = 'TOO_MANY_KEYS' THEN len(json_keys(rec)) END AS json_keys_count
                  FROM _zz_live_rec WHERE rtype IS DISTINCT FROM 'OBJECT') ORDER BY rseq""").fetchall()
        rep.quarantined += n[0][0] if n else 0
        return {t: list(k) for t, k in con.execute(
            "SELECT tbl, list_distinct(flatten(list(rkeys))) FROM _zz_live_rec WHERE rtype = 'OBJECT' "
            "GROUP BY tbl").fetchall()}

    def _prune(self, con) -> None:
        con.execute("""DELETE FROM live_messages WHERE batch IN (SELECT batch FROM live_batches
                       WHERE committed_at < now() - to_days(?))""", [int(max(1, self.retention_days))])

    def _may_register(self, topics: pa.Table) -> bool:
        """Whether a topic of the batch names equipment not yet known to be stored (else no query)."""
        subj = set(SUBJECT_TABLES) - {"equipment"}
        return any(f and t in subj and e is not None and e not in self._known_equipment
                   for f, t, e in zip(topics.column("fill").to_pylist(), topics.column("tbl").to_pylist(),
                                      topics.column("t_equipment").to_pylist()))

    def _register(self, token: str, rep: BatchReport) -> None:
        """Unknown equipment of the batch's topics -> equipment records from the topic hierarchy."""
        con = self._w
        subj = ", ".join(f"'{t}'" for t in SUBJECT_TABLES if t != "equipment")
        hints = con.execute(f"""
            SELECT t_equipment, first(t_work_center), first(t_area), first(t_site), first(t_enterprise),
                   first(topic), min(rseq)
            FROM _zz_live_rec WHERE fill AND tbl IN ({subj}) AND t_equipment IS NOT NULL AND rtype IS NOT NULL
            GROUP BY ALL""").fetchall()
        hints = [h for h in hints if h[0] not in self._known_equipment
                 and (self.register_enterprises is None or h[4] in self.register_enterprises)]
        if not hints:
            return
        known = store_equipment.known(con, [h[0] for h in hints])
        # remembered only once stored: a rolled-back batch registers again
        self._pending_known |= {h[0] for h in hints}
        new = [h for h in hints if h[0] not in known]
        if not new:
            return
        rows = [[-(i + 1), -1, topic_for("equipment", eq, wc, ar, si, en, self.prefix), "equipment", False, True,
                 en, si, ar, wc, eq, 1,
                 json.dumps({"equipment_id": eq, "work_center": wc, "area": ar, "site": si, "enterprise": en,
                             "timezone": self.timezone})]
                for i, (eq, wc, ar, si, en, _, _) in enumerate(new)]
        con.executemany("INSERT INTO _zz_live_rec SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, r::JSON, "
                        "json_type(r::JSON), json_keys(r::JSON) FROM (SELECT ? AS r)", rows)
        self._load_table("equipment", "tbl = ? AND auto", ["equipment"], token, rep, count=False)

    def _load_table(self, table: str, where: str, params: list, token: str, rep: BatchReport,
                    count: bool = True, keys: list[str] | None = None) -> None:
        """Validate and store one table's records of the batch (:func:`zhizao.ingest.load.load_records`)."""
        con = self._w
        spec = TABLES[table]
        mapping = self.mappings.get(table) or default_mapping(table)
        aliases = {c: a for c, (a, _) in ALIASES.get(table, {}).items() if c not in mapping.columns}
        sel = f"({where}) AND rtype = 'OBJECT'"
        if keys is None:
            keys = [k for (k,) in con.execute(f"SELECT DISTINCT unnest(rkeys) FROM _zz_live_rec WHERE {sel}",
                                              params).fetchall()]
        # column names: the canonical ones, then the records' keys that the mapping reads (its columns, the
        # names in its SQL) and the aliases; every other key is ignored, so a record inventing thousands of keys
        # costs nothing. SQL names are case-insensitive, "_" starts the ingestor's own names, and quotes or
        # backslashes cannot be a name
        names: dict[str, str] = {c.lower(): c for c in spec.names}
        readable = {c.lower() for c in mapping.referenced_columns()} | {a.lower() for a in aliases.values()}
        extra = [cs["column"] for cs in mapping.columns.values() if isinstance(cs, dict) and "column" in cs]
        for k in extra + keys:
            if (k and k.lower() in readable and not k.startswith("_") and '"' not in k and "\\" not in k
                    and k.isprintable()):
                names.setdefault(k.lower(), k)
        cols = list(names.values())
        aliases = {c: a for c, a in aliases.items() if a in cols}
        # every column of a record in one parse (json_transform gives the text json_extract_string gives)
        structure = "{" + ", ".join(f'"{c}": "VARCHAR"' for c in cols) + "}"
        ext = ", ".join(f"struct_extract(_zz_j, {_lit(c)}) AS {_q(c)}" for c in cols)
        canon = "[" + ", ".join(_lit(c) for c in spec.names) + "]"
        # the topic's rules: a record must name a column of its table and not contradict its topic
        bad = [("malformed_payload", "NOT _zz_has_col" + (" AND false" if table == "equipment" else ""),
                (T.NO_COLUMN, {"index": Sql("_zz_idx"), "table": table}))]
        if table in SUBJECT_TABLES:
            bad.append(("topic_mismatch",
                        "_zz_fill AND equipment_id IS NOT NULL AND equipment_id <> _zz_t_equipment",
                        (T.TOPIC_MISMATCH, {"column": "equipment_id", "value": Sql("equipment_id"),
                                            "level": "equipment", "topic_value": Sql("_zz_t_equipment")})))
        if table == "equipment":
            for lvl in TOPIC_LEVELS[:-1]:
                bad.append(("topic_mismatch", f"_zz_fill AND {lvl} IS NOT NULL AND _zz_t_{lvl} IS NOT NULL AND "
                                              f"{lvl} <> _zz_t_{lvl}",
                            (T.TOPIC_MISMATCH, {"column": lvl, "value": Sql(lvl), "level": lvl,
                                                "topic_value": Sql(f"_zz_t_{lvl}")})))
        rule = "CASE " + " ".join(f"WHEN {c} THEN {_lit(r)}" for r, c, _ in bad) + " END"
        details = [(c, kind, sql_detail(kind, **ps)) for _, c, (kind, ps) in bad]
        detail = "CASE " + " ".join(f"WHEN {c} THEN {d[0]}" for c, _, d in details) + " END"
        code = "CASE " + " ".join(f"WHEN {c} THEN {_lit(k.code)}" for c, k, _ in details) + " END"
        pcase = "CASE " + " ".join(f"WHEN {c} THEN {d[1]}" for c, _, d in details) + " END"
        # the topic fills what the record leaves out
        fill = []
        if table in SUBJECT_TABLES:
            scope_ok = "AND scope IS NULL" if table in ("energy", "quality") else ""
            fill.append(f"CASE WHEN _zz_fill AND equipment_id IS NULL {scope_ok} THEN _zz_t_equipment "
                        f"ELSE equipment_id END AS equipment_id")
        if table == "equipment":
            fill += [f"CASE WHEN _zz_fill AND {lvl} IS NULL THEN _zz_t_{lvl} ELSE {lvl} END AS {lvl}"
                     for lvl in TOPIC_LEVELS[:-1]]
        replace = f"REPLACE ({', '.join(fill)})" if fill else ""
        # records that use an alias column (ts for end, date for labour) load in their own group, as files do
        sig_sql = "concat_ws(',', " + ", ".join(
            f"CASE WHEN {_q(c)} IS NULL AND {_q(a)} IS NOT NULL THEN {_lit(c)} END" for c, a in aliases.items()
        ) + ")" if aliases else "''"
        part = ", ".join(_q(c) for c in cols)
        # one statement: extraction, the topic's rules, filling from the topic
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _zz_live_t AS
            WITH x AS (
                SELECT rseq AS _zz_rseq, topic AS _zz_topic, idx AS _zz_idx, fill AS _zz_fill,
                       t_enterprise AS _zz_t_enterprise, t_site AS _zz_t_site, t_area AS _zz_t_area,
                       t_work_center AS _zz_t_work_center, t_equipment AS _zz_t_equipment, rec AS _zz_rec,
                       list_has_any(rkeys, {canon}) AS _zz_has_col, json_transform(rec, {_lit(structure)}) AS _zz_j
                FROM _zz_live_rec WHERE {sel}),
            y AS (SELECT * EXCLUDE (_zz_j), {ext} FROM x),
            z AS (SELECT *, {rule} AS _zz_rule, {detail} AS _zz_detail, {code} AS _zz_code,
                         CAST({pcase} AS JSON) AS _zz_params FROM y),
            f AS (SELECT * {replace} FROM z)
            SELECT *, {sig_sql} AS _zz_sig, CASE WHEN _zz_rule IS NULL THEN 1 END AS _zz_rn FROM f""", params)
        # identical records (same values) in different messages: the k-th of one message and the k-th of another
        # are one record (a publisher re-sending), only the first is loaded; within one message each is an
        # occurrence of its own (events) or a duplicate (keyed records), as in a file. Only values that occur
        # more than once are numbered (an aggregate first: most records are unique)
        on = " AND ".join(f"x.{_q(c)} IS NOT DISTINCT FROM d.{_q(c)}" for c in cols)
        xpart = ", ".join(f"x.{_q(c)}" for c in cols)
        con.execute(f"""UPDATE _zz_live_t t SET _zz_rn = 2
                        FROM (SELECT _zz_r, row_number() OVER (PARTITION BY {part}, _zz_k ORDER BY _zz_r) AS _zz_n
                              FROM (SELECT x._zz_rseq AS _zz_r, {xpart}, row_number() OVER (
                                        PARTITION BY x._zz_rseq // {_RSEQ_STRIDE}, {xpart} ORDER BY x._zz_rseq
                                    ) AS _zz_k
                                    FROM _zz_live_t x SEMI JOIN (SELECT {part} FROM _zz_live_t WHERE _zz_rule IS NULL
                                                                 GROUP BY ALL HAVING count(*) > 1) d ON {on}
                                    WHERE x._zz_rule IS NULL)) o
                        WHERE t._zz_rseq = o._zz_r AND o._zz_n > 1""")
        summary = con.execute("SELECT _zz_sig, count(*) FILTER (WHERE _zz_rn > 1), count(*) FILTER (WHERE _zz_rn = 1), "
                              "count(*) FILTER (WHERE _zz_rule IS NOT NULL) FROM _zz_live_t "
                              "GROUP BY ALL ORDER BY _zz_sig").fetchall()
        if sum(r[3] for r in summary):
            n = con.execute(f"""INSERT INTO quarantine ("table", source, record, line, rule, detail, code, params,
                                                        raw)
                                SELECT {_lit(table)}, _zz_topic, _zz_idx, NULL, _zz_rule, _zz_detail, _zz_code,
                                       _zz_params, _zz_rec
                                FROM _zz_live_t WHERE _zz_rule IS NOT NULL ORDER BY _zz_rseq""").fetchall()
            if count:
                rep.quarantined += n[0][0] if n else 0
        if count:
            rep.skipped += sum(r[1] for r in summary)
        groups = [(sig, n) for sig, _, n, _ in summary if n]
        tally = rep.tables.setdefault(table, [0, 0, 0])
        for g, (sig, _) in enumerate(groups):
            drop = set(sig.split(",")) if sig else set()
            group_cols = [c for c in cols if c not in drop]
            relation = (f"(SELECT {', '.join(_q(c) for c in group_cols)}, _zz_topic, _zz_idx, "
                        f"_zz_rseq // {_RSEQ_STRIDE} AS _zz_msg, "
                        f"row_number() OVER (ORDER BY _zz_rseq) AS _zz_record FROM _zz_live_t "
                        f"WHERE _zz_rule IS NULL AND _zz_rn = 1 AND _zz_sig = {_lit(sig)})")
            try:
                r = _loader.load_records(con, table, relation, group_cols, source=f"{token}:{table}:{g}",
                                         mapping=mapping, record="_zz_record", quarantine_source="_zz_topic",
                                         quarantine_record="_zz_idx", quarantine_line="NULL", what="batch",
                                         group="_zz_msg", limits=self.limits)
            except (IngestError, MappingError) as e:
                raise _TableFailed(table, str(e)) from None
            if count:
                rep.loaded += r.loaded
                rep.quarantined += r.quarantined
                rep.skipped += r.skipped
            tally[0] += r.loaded
            tally[1] += r.quarantined
            tally[2] += r.skipped

    # ------------------------------------------------------------------ reading
    def state(self) -> dict[str, tuple[float | str | None, pd.Timestamp | None]]:
        """The source's remembered values (``live_state``): key -> (value or text, ts)."""
        with self._write_lock:
            rows = self._w.execute("SELECT key, value, text, ts FROM live_state WHERE source = ?",
                                   [self.source]).fetchall()
        return {k: (v if v is not None else x, _utc(t) if t is not None else None) for k, v, x, t in rows}

    def current_shift(self, now=None) -> tuple[pd.Timestamp, pd.Timestamp, str]:
        """The current shift: see :func:`current_shift`."""
        with self._read_lock:
            return current_shift(self.ws.con, now)

    def kpi(self, level: str = "equipment", now=None, kpis: list[str] | None = None) -> pd.DataFrame:
        """ISO 22400 elements and KPIs of the current shift so far, including every committed record.

        Each machine is taken to be in its last reported state until ``now`` (an open state record is
        ongoing), where the stored data alone would end it at the machine's latest record.

        Parameters
        ----------
        level : {'equipment', 'work_center', 'area', 'site', 'enterprise'}
        now : timestamp, optional
            The present (default the wall clock): the window is ``[shift start, now)``.
        kpis : list of str, optional

        Returns
        -------
        pandas.DataFrame
            As :meth:`zhizao.Workspace.kpi`, one row per entity, ``period = 'all'`` over the window, plus
            ``shift_start``, ``shift_end`` (ISO 8601, UTC) and ``shift_source`` (``calendar`` or ``day``).
        """
        with self._read_lock:
            now = _utc(now)
            view = self._live_view(now)
            start, end, how = current_shift(view.con, now)
            stop = max(min(end, now), start + pd.Timedelta(seconds=1))
            df = view.kpi(level=level, period="all", start=start, end=stop, kpis=kpis)
            df["shift_start"] = start.isoformat()
            df["shift_end"] = end.isoformat()
            df["shift_source"] = how
            return df

    def _live_view(self, now: pd.Timestamp) -> zhizao.Workspace:
        """A workspace on a reader connection whose ``states`` extend each machine's open last state to now."""
        if self._view is None:
            r = self.ws.con.cursor()
            r.execute("SET TimeZone = 'UTC'")
            db = r.execute("SELECT current_database()").fetchall()[0][0].replace('"', '""')
            r.execute("SET VARIABLE zhizao_live_now = now()")
            r.execute(f"""
                CREATE OR REPLACE TEMP VIEW states AS
                SELECT s.* REPLACE (CASE WHEN s."end" IS NULL AND s.start = m.last
                                         AND s.start < getvariable('zhizao_live_now')
                                    THEN getvariable('zhizao_live_now') ELSE s."end" END AS "end")
                FROM "{db}".main.states s
                JOIN (SELECT equipment_id, max(start) AS last FROM "{db}".main.states GROUP BY ALL) m
                USING (equipment_id)""")
            self._view = self.ws.reader(r)
        self._view.con.execute(f"SET VARIABLE zhizao_live_now = TIMESTAMPTZ '{now.isoformat()}'")
        self._view.invalidate()  # live data changes under the cached elements
        return self._view

    def status(self) -> dict:
        """Counters since start: batches, messages, records, loaded, quarantined, skipped, last commit."""
        d: dict[str, Any] = {k: int(v) for k, v in self.totals.items()}
        d["last_commit"] = self.last_commit
        d["batch"] = self._batch
        return d


def _utc(t) -> pd.Timestamp:
    if t is None:
        return pd.Timestamp.now(tz="UTC")
    t = pd.Timestamp(t)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def current_shift(con: duckdb.DuckDBPyConnection, now=None) -> tuple[pd.Timestamp, pd.Timestamp, str]:
    """The shift that contains ``now``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    now : timestamp, optional
        Default: the wall clock.

    Returns
    -------
    start, end : pandas.Timestamp (UTC)
        The union of the calendar's ``shift`` entries (of any scope) that contain ``now``; without one, the
        local day of the plant (time zone of the first equipment, else UTC) - a plant without a calendar is
        scheduled around the clock.
    source : {'calendar', 'day'}
    """
    now = _utc(now)
    lo, hi = store_records.shifts_at(con, now)
    if lo is not None:
        return _utc(lo), _utc(hi), "calendar"
    tz = store_equipment.first_zone(con)
    day = floor_local(now, "day", tz)
    nxt = floor_local(day + pd.Timedelta(hours=26), "day", tz)
    return day.tz_convert("UTC"), nxt.tz_convert("UTC"), "day"
