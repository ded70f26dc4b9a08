"""The server's hold on the store: one Workspace, serialised writes, consistent concurrent reads, caches.

DuckDB lets one process own a database file. The server opens it once (:class:`zhizao.Workspace`) and

- serialises the writes to the data (ingest, stored verifications) with one lock; a load is one transaction
  (:func:`zhizao.ingest.load.load_file`), so nothing is half-written;
- reads through cursors (``con.cursor()``, a connection of its own to the same database), each request in
  one read transaction: a request sees the store as it was when it began, before or after a concurrent load,
  never in between;
- caches the results of the stages per *store version* (the number of rows of ``loads`` and their latest
  ``loaded_at``, and the same of ``verifications``). The version changes with every write the server makes,
  so a cached result is never served for another version.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable

import zhizao
from zhizao.server import accounts


class LRU:
    """A thread-safe mapping that keeps the ``maxsize`` most recently used entries.

    """

    def __init__(self, maxsize: int = 64):
        self.maxsize = maxsize
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._d

    def __getitem__(self, key):
        with self._lock:
            self._d.move_to_end(key)
            return self._d[key]

    def get(self, key, default=None):
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
            return default

    def __setitem__(self, key, value) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.maxsize:
                self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def drop(self, keep: Callable[[Any], bool]) -> None:
        """Remove the entries whose key does not satisfy ``keep``."""
        with self._lock:
            for k in [k for k in self._d if not keep(k)]:
                del self._d[k]


class _Flight:
    def __init__(self):
        self.event = threading.Event()
        self.value = None
        self.error: BaseException | None = None


class ResultCache:
    """An LRU cache that computes each missing key once even when many threads ask for it at the same time.

    Keys start with the store version. Exceptions are passed to every waiting caller and not cached.
    """

    def __init__(self, maxsize: int = 256):
        self.lru = LRU(maxsize)
        self._lock = threading.Lock()
        self._flights: dict = {}
        self.hits = 0
        self.misses = 0

    def get(self, key, compute: Callable[[], Any]):
        with self._lock:
            if key in self.lru:
                self.hits += 1
                return self.lru[key]
            flight = self._flights.get(key)
            owner = flight is None
            if owner:
                flight = self._flights[key] = _Flight()
                self.misses += 1
        if not owner:
            flight.event.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            flight.value = compute()
            self.lru[key] = flight.value
            return flight.value
        except BaseException as e:
            flight.error = e
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.event.set()

    def keep_version(self, version) -> None:
        """Drop entries of other store versions (they can never be asked for again)."""
        self.lru.drop(lambda k: isinstance(k, tuple) and len(k) and k[0] == version)

    def clear(self) -> None:
        self.lru.clear()


VERSION_SQL = """SELECT (SELECT count(*) FROM loads), (SELECT CAST(max(loaded_at) AS VARCHAR) FROM loads),
                        (SELECT count(*) FROM verifications),
                        (SELECT CAST(max(computed_at) AS VARCHAR) FROM verifications)"""


class Read:
    """One read of the store: ``con`` is a cursor in a read transaction and ``ws`` a Workspace over it, both
    opened on first use (a request answered from the cache never touches the store); ``version`` is the store
    version the request works on."""

    def __init__(self, store: "Store", version):
        self.store = store
        self.version = version
        self._cur = None
        self._ws = None

    @property
    def con(self):
        if self._cur is None:
            cur = self.store.cursor()
            cur.execute("BEGIN TRANSACTION")
            self._cur = cur
        return self._cur

    @property
    def ws(self):
        if self._ws is None:
            ws = copy.copy(self.store.ws)
            ws.con = self.con
            ws._cache = {}
            stage = type(ws).elements_raw

            def elements_raw(period: str = "day", start=None, end=None, zone_level=None):
                # the elements of every entity, computed once per store version and arguments for all requests
                return self.cached(("elements_raw", period, str(start), str(end), zone_level),
                                   lambda: stage(ws, period, start, end, zone_level))

            ws.elements_raw = elements_raw
            self._ws = ws
        return self._ws

    def cached(self, key: tuple, compute: Callable[[], Any]):
        """``compute()`` cached under (store version, *key)."""
        return self.store.results.get((self.version, *key), compute)

    def close(self) -> None:
        cur, self._cur, self._ws = self._cur, None, None
        if cur is not None:
            try:
                cur.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - the transaction may already be closed
                pass
            cur.close()


class Store:
    """The store as the server holds it.

    Parameters
    ----------
    db : str or Path
        The DuckDB file (created if missing).
    cache_size : int
        Entries of the result cache (whole stage results: KPI frames, rendered charts and pages).
    """

    def __init__(self, db, cache_size: int = 256):
        self.ws = zhizao.connect(db)
        self.path = self.ws.path
        accounts.ensure_tables(self.ws.con)
        self.write_lock = threading.RLock()
        self.account_lock = threading.RLock()
        self.results = ResultCache(cache_size)
        self.version = self._read_version(self.ws.con)
        self._closed = False

    # -- versions and caches
    @staticmethod
    def _read_version(con) -> tuple:
        return tuple(con.execute(VERSION_SQL).fetchone())

    def _bump(self) -> None:
        self.version = self._read_version(self.ws.con)
        self.results.keep_version(self.version)

    # -- access
    def cursor(self):
        cur = self.ws.con.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        return cur

    @contextmanager
    def read(self):
        """A consistent read of the store (one transaction on a fresh cursor, opened on first use)."""
        rd = Read(self, self.version)  # the version is read before the snapshot: data is never older than it
        try:
            yield rd
        finally:
            rd.close()

    @contextmanager
    def write(self):
        """Exclusive write access to the data (the main Workspace); the version is updated afterwards."""
        with self.write_lock:
            try:
                yield self.ws
            finally:
                self._bump()

    @contextmanager
    def accounts(self):
        """Serialised access to the account tables, in one transaction (rolled back on error)."""
        with self.account_lock:
            cur = self.cursor()
            try:
                cur.execute("BEGIN TRANSACTION")
                yield cur
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.ws.close()
