"""Micro-batch ingestion of live records into the store, exactly once, with the file loader's validation.

A :class:`LiveIngestor` owns the store (DuckDB allows one writing process). Each call of
:meth:`LiveIngestor.ingest_messages` (MQTT) or :meth:`LiveIngestor.ingest_records` (OPC UA) is one
micro-batch and one transaction:

1. messages already stored are recognised by their hash (topic + payload, table ``live_messages``) and
   skipped whole, so a redelivered message changes nothing, not even the quarantine;
2. records identical to another record of the batch are dropped (a publisher that re-sends a record in
   another message), and each table's records are written to a temporary Parquet file and loaded by the
   file loader's own steps (:func:`zhizao.ingest.load._load`: mapping, parsing, the validation rules, the
   record-key check against the store where an identical stored record is skipped and a different one is
   quarantined as ``conflicts_with_stored``);
3. rejected records land in ``quarantine`` with the topic as ``source`` and their index in the payload as
   ``record``; malformed topics and payloads with the live rules of :data:`zhizao.live.topics.LIVE_RULES`;
4. the message hashes, the batch log (``live_batches``) and any source state (OPC UA counter baselines,
   ``live_state``) are written in the same transaction, then it commits.

Only after the commit returns does a listener acknowledge the messages to the broker, so a crash before the
commit causes redelivery and a crash after it causes a redelivery that step 1 skips.

Readers in the same process use :attr:`LiveIngestor.ws` (a :class:`zhizao.Workspace` on its own
connection); :meth:`LiveIngestor.kpi` computes the KPIs of the current shift including every committed
record.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import zhizao
from zhizao.ingest import load as _loader
from zhizao.ingest.load import IngestError
from zhizao.ingest.mapping import ALIASES, Mapping, MappingError, default_mapping
from zhizao.kpi.buckets import floor_local
from zhizao.live.topics import DEFAULT_PREFIX, SUBJECT_TABLES, Topic, _text, decode, message_hash, topic_for
from zhizao.schema import TABLES

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
_TEMP = ("_zz_raw", "_zz_mapped", "_zz_parsed", "_zz_checked")


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
    timezone : str
        IANA zone of auto-registered equipment.
    mappings : dict of str to Mapping, optional
        Per table, a mapping file (columns, scale, time zone, raw states) applied to live records as to files.
    workspace : zhizao.Workspace, optional
        Share an open workspace (the ingestor writes through its own cursor).
    retention_days : float
        How long message hashes are kept for redelivery dedupe (longer than any broker session expiry).
    """

    def __init__(self, db: str | Path = "zhizao.duckdb", *, source: str = "mqtt", prefix: str = DEFAULT_PREFIX,
                 register_equipment: bool = False, timezone: str = "UTC",
                 mappings: dict[str, Mapping] | None = None, workspace: zhizao.Workspace | None = None,
                 settings=None, retention_days: float = 7.0):
        self._own_ws = workspace is None
        self.ws = workspace if workspace is not None else zhizao.connect(db, settings=settings)
        self.source = source
        self.prefix = prefix
        self.register_equipment = register_equipment
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
        for ddl in LIVE_DDL:
            self._w.execute(ddl)
        self._batch = self._w.execute("SELECT coalesce(max(batch), 0) FROM live_batches").fetchall()[0][0]
        self._known_equipment: set[str] = set()
        self._write_lock = threading.RLock()
        self._read_lock = threading.RLock()
        self._tmp = Path(tempfile.mkdtemp(prefix="zhizao-live-"))
        self.totals: Counter = Counter()
        self.last_commit: float | None = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._write_lock:
            try:
                self._w.close()
            finally:
                shutil.rmtree(self._tmp, ignore_errors=True)
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
        t0 = time.perf_counter()
        msgs = [(t, p if isinstance(p, (bytes, bytearray)) else str(p).encode()) for t, p in messages]
        hashes = [message_hash(t, p) for t, p in msgs]
        with self._write_lock:
            seen = self._stored_hashes(hashes)
            fresh, fresh_hashes, dup = [], [], 0
            for (t, p), h in zip(msgs, hashes):
                if h in seen:
                    dup += 1
                    continue
                seen.add(h)
                fresh.append(decode(t, bytes(p), self.prefix, h))
                fresh_hashes.append(h)
            rows: dict[str, list] = {}
            rejected = []
            hints: dict[str, Topic] = {}
            for d in fresh:
                for rule, idx, detail, raw in d.rejected:
                    rejected.append((d.table, d.topic, idx, rule, detail, raw))
                for idx, rec in d.records:
                    rows.setdefault(d.table, []).append((d.topic, idx, rec))
                if d.topic_info is not None and d.table in SUBJECT_TABLES and d.table != "equipment" \
                        and d.topic_info.equipment is not None:
                    hints.setdefault(d.topic_info.equipment, d.topic_info)
            rep = self._commit(rows, rejected, fresh_hashes, len(msgs), dup, hints, [], [], t0)
        return rep

    def ingest_records(self, records: dict[str, list[dict]], state: list[StateUpdate] = (),
                       events: list[Event] = (), origin: str | None = None) -> BatchReport:
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
        rows = {}
        for table, recs in records.items():
            rows[table] = [(origin, i, {k: (v.isoformat() if isinstance(v, (_dt.datetime, pd.Timestamp))
                                            else _text(v)) for k, v in r.items()})
                           for i, r in enumerate(recs, 1)]
        with self._write_lock:
            return self._commit(rows, [], [], 0, 0, {}, list(state), list(events), t0)

    def _stored_hashes(self, hashes: list[str]) -> set[str]:
        if not hashes:
            return set()
        self._w.register("_zz_live_h", pa.table({"hash": pa.array(hashes, pa.string())}))
        try:
            return {h for (h,) in self._w.execute(
                "SELECT hash FROM live_messages WHERE hash IN (SELECT hash FROM _zz_live_h)").fetchall()}
        finally:
            self._w.unregister("_zz_live_h")

    def _commit(self, rows, rejected, hashes, n_messages, n_dup, hints, state, events, t0) -> BatchReport:
        if not (rows or rejected or hashes or state or events):
            return BatchReport(self._batch, messages=n_messages, duplicate_messages=n_dup,
                               seconds=time.perf_counter() - t0, committed_at=time.time())
        failed: dict[str, str] = {}
        while True:
            try:
                return self._try_commit(rows, rejected, hashes, n_messages, n_dup, hints, state, events, t0,
                                        failed)
            except _TableFailed as e:
                # a mapping that cannot be applied: that table's records go to the quarantine, the rest loads
                failed[e.table] = e.msg

    def _try_commit(self, rows, rejected, hashes, n_messages, n_dup, hints, state, events, t0, failed
                    ) -> BatchReport:
        con = self._w
        self._pending_known = set()
        batch = self._batch + 1
        token = f"live:{self.source}:{batch}"
        rep = BatchReport(batch, messages=n_messages, duplicate_messages=n_dup)
        rejected = list(rejected)
        con.execute("BEGIN TRANSACTION")
        try:
            order = [t for t in _ORDER if t in rows] + [t for t in rows if t not in _ORDER]
            if "equipment" in order:
                order.remove("equipment")
                order.insert(0, "equipment")
            registered = False
            for table in order:
                if self.register_equipment and hints and not registered and table != "equipment":
                    self._register(hints, token, rep)
                    registered = True
                recs = rows[table]
                if table in failed:
                    for topic, idx, rec in recs:
                        rejected.append((table, topic, idx, "mapping_error", failed[table],
                                         json.dumps(rec, ensure_ascii=False)))
                    continue
                self._load_table(table, recs, token, rep)
            if self.register_equipment and hints and not registered:
                self._register(hints, token, rep)
            if rejected:
                con.executemany(
                    'INSERT INTO quarantine ("table", source, record, line, rule, detail, raw) '
                    'VALUES (?, ?, ?, NULL, ?, ?, ?)',
                    [[t or "", topic, idx, rule, detail, raw] for t, topic, idx, rule, detail, raw in rejected])
                rep.quarantined += len(rejected)
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
            con.execute("DELETE FROM loads WHERE starts_with(source, ?)", [token + ":"])
            rep.records = rep.loaded + rep.quarantined + rep.skipped
            now = time.time()
            con.execute("INSERT INTO live_batches VALUES (?, ?, to_timestamp(?), ?, ?, ?, ?, ?, ?)",
                        [batch, self.source, now, rep.messages, rep.duplicate_messages, rep.records, rep.loaded,
                         rep.quarantined, rep.skipped])
            if batch % 1000 == 0:
                self._prune(con)
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
        finally:
            for t in _TEMP:
                try:
                    con.execute(f"DROP TABLE IF EXISTS {t}")
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

    def _prune(self, con) -> None:
        con.execute("""DELETE FROM live_messages WHERE batch IN (SELECT batch FROM live_batches
                       WHERE committed_at < now() - to_days(?))""", [int(max(1, self.retention_days))])

    def _register(self, hints: dict[str, Topic], token: str, rep: BatchReport) -> None:
        ids = [e for e in hints if e not in self._known_equipment]
        if not ids:
            return
        known = {r[0] for r in self._w.execute(
            "SELECT equipment_id FROM equipment WHERE list_contains(?, equipment_id)", [ids]).fetchall()}
        # remembered only once stored: a rolled-back batch registers again
        self._pending_known = known | set(ids)
        new = [(topic_for("equipment", eq, t.work_center, t.area, t.site, t.enterprise, self.prefix), None,
                {"equipment_id": eq, "work_center": t.work_center, "area": t.area, "site": t.site,
                 "enterprise": t.enterprise, "timezone": self.timezone})
               for eq, t in hints.items() if eq in ids and eq not in known]
        if new:
            self._load_table("equipment", new, token, rep, count=False)

    def _load_table(self, table: str, recs: list, token: str, rep: BatchReport, count: bool = True) -> None:
        """Validate and store one table's records of the batch with the file loader's machinery."""
        spec = TABLES[table]
        mapping = self.mappings.get(table) or default_mapping(table)
        aliases = ALIASES.get(table, {})
        # identical records (same table, same values) are stored once
        uniq, seen = [], set()
        for topic, idx, rec in recs:
            k = tuple(sorted(rec.items()))
            if k in seen:
                if count:
                    rep.skipped += 1
                continue
            seen.add(k)
            uniq.append((topic, idx, rec))
        # records that use an alias column (ts for end, date for labour) load in their own group, as files do
        groups: dict[tuple, list] = {}
        for item in uniq:
            rec = item[2]
            sig = tuple(c for c, (a, _) in aliases.items() if c not in rec and a in rec
                        and c not in mapping.columns)
            groups.setdefault(sig, []).append(item)
        tally = rep.tables.setdefault(table, [0, 0, 0])
        for g, (sig, items) in enumerate(groups.items()):
            cols: dict[str, None] = {}
            for _, _, rec in items:
                for k in rec:
                    cols.setdefault(k, None)
            for c in spec.columns:  # a missing required column is a per-record rule, not a failed file
                if c.required and c.name not in cols and c.name not in sig and c.name not in mapping.columns:
                    cols[c.name] = None
            for c, cspec in mapping.columns.items():
                if isinstance(cspec, dict) and "column" in cspec:
                    cols.setdefault(cspec["column"], None)
            names = list(cols)
            data = {n: pa.array([rec.get(n) for _, _, rec in items], pa.string()) for n in names}
            data["_zz_seq"] = pa.array(range(len(items)), pa.int64())
            src = f"{token}:{table}:{g}"
            path = self._tmp / f"{batch_name(token)}-{table}-{g}.parquet"
            pq.write_table(pa.table(data), path, compression="none")
            try:
                try:
                    r = _loader._load(self._w, table, path, src, "live", mapping, names + ["_zz_seq"])
                except (IngestError, MappingError) as e:
                    raise _TableFailed(table, str(e)) from None
                # quarantined records: the topic and the record's index in its payload, not the temporary file
                self._w.register("_zz_live_seq", pa.table({
                    "seq": pa.array(range(len(items)), pa.int64()),
                    "topic": pa.array([t for t, _, _ in items], pa.string()),
                    "idx": pa.array([i for _, i, _ in items], pa.int64())}))
                if r.quarantined:
                    self._w.execute("""
                        UPDATE quarantine SET source = s.topic, record = s.idx, line = NULL
                        FROM (SELECT r._record, q.topic, q.idx FROM _zz_raw r JOIN _zz_live_seq q
                              ON r._zz_seq = q.seq) s
                        WHERE quarantine.source = ? AND quarantine.record = s._record""", [src])
                self._w.unregister("_zz_live_seq")
            finally:
                for t in _TEMP:
                    self._w.execute(f"DROP TABLE IF EXISTS {t}")
                path.unlink(missing_ok=True)
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
            start, end, how = current_shift(self.ws.con, now)
            stop = max(min(end, now), start + pd.Timedelta(seconds=1))
            # the workspace caches elements per query range: live data changes under it
            self.ws._cache.clear()
            df = self.ws.kpi(level=level, period="all", start=start, end=stop, kpis=kpis)
            df["shift_start"] = start.isoformat()
            df["shift_end"] = end.isoformat()
            df["shift_source"] = how
            return df

    def status(self) -> dict:
        """Counters since start: batches, messages, records, loaded, quarantined, skipped, last commit."""
        d = {k: int(v) for k, v in self.totals.items()}
        d["last_commit"] = self.last_commit
        d["batch"] = self._batch
        return d


def batch_name(token: str) -> str:
    return token.replace(":", "-")


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
    lo, hi = con.execute("""SELECT min(start), max("end") FROM calendar
                            WHERE kind = 'shift' AND start <= ? AND "end" > ?""", [now, now]).fetchall()[0]
    if lo is not None:
        return _utc(lo), _utc(hi), "calendar"
    tz = con.execute("SELECT coalesce(min(timezone), 'UTC') FROM equipment").fetchall()[0][0] or "UTC"
    day = floor_local(now, "day", tz)
    nxt = floor_local(day + pd.Timedelta(hours=26), "day", tz)
    return day.tz_convert("UTC"), nxt.tz_convert("UTC"), "day"
