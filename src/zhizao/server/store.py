"""The server's hold on the store: one Workspace, serialised writes, consistent concurrent reads, caches.

DuckDB lets one process own a database file. The server opens it once (:class:`zhizao.Workspace`) and

- serialises the writes to the data (ingest, stored verifications) with one lock; a load is one transaction
  (:func:`zhizao.ingest.load.load_file`), so nothing is half-written;
- reads through cursors (``con.cursor()``, a connection of its own to the same database), each request in
  one read transaction: a request sees the store as it was when it began, before or after a concurrent load,
  never in between;
- caches computed results by *what they depend on*. Every write says what it touched (:meth:`Store.touch`):
  the shop-floor data of some enterprises (``data:<enterprise>``) or of all (``data:*``), the register
  (``register``: enterprises, projects, designations) or the stored verifications (``verifications``); each
  touched domain's counter goes up after the write commits. A cached result's key carries the counters of the
  domains it depends on (:meth:`Read.cached` ``deps``), for a tenant's own results only the counters of the
  tenant's enterprises (``tenant=True``). So a tenant's upload recomputes that tenant's pages and the
  whole-store stage results, never another tenant's pages nor what is derived from the equipment table (the
  access checks); a stored verification leaves the KPIs alone.
- shares a tenant's stage inputs between its requests: the stages of a principal bound to enterprises run on
  a workspace that sees only those enterprises' data (:meth:`zhizao.Workspace.scoped`; one per request, in
  one read transaction), whose computed elements of each period and roll-ups are kept in the result cache
  under the tenant's counters (:meth:`Read.scoped`): a tenant's pages after its upload compute its elements
  once, not once per table of the page.
  Counters only grow, so a key of an older counter is never asked for again; such entries are dropped.
- keeps the latest value of each cached key whatever its counters, so that a page whose figures changed can
  show its earlier figures, marked with their time, while one background worker refreshes it from a snapshot
  of its own (:meth:`ResultCache.get_or_stale`, ``zhizao serve --fresh-wait``; docs/server.md).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
import types
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

import zhizao
from zhizao.api import Workspace
from zhizao.kpi.elements import ElementsResult
from zhizao.server import CACHE_MB, CACHE_SIZE, accounts
from zhizao.server.admission import waiting
from zhizao.server.snapshots import Snapshots, persistent_key
from zhizao.store.fingerprint import data_fingerprint

log = logging.getLogger("zhizao.server")

#: Dependency domains of cached results (see the module docstring).
DOMAINS = ("data", "register", "verifications", "equipment")
#: The domains of a cached result that says nothing: everything.
ALL = DOMAINS
#: Threads computing the values that stale answers wait for (:meth:`ResultCache.get_or_stale`): fewer than the
#: cores, so that uploads and answers from the cache keep a share of them
REFRESH_WORKERS = 1
#: The share of its time the refresh worker computes (it rests as long as a refresh took, at 0.5)
REFRESH_DUTY = 0.5
#: Writes the store remembers the changed equipment of (:meth:`Store.changed_since`)
CHANGE_LOG = 256


#: the modules whose objects :func:`approx_bytes` weighs by their attributes: the engine's results
_RESULTS = ("zhizao.kpi.", "zhizao.verify.")
#: The attribute of a cached stage table holding the index of its rows by id and of its texts held as categories
#: (:class:`zhizao.server.access.RowIndex`, ``nbytes``: what it holds beyond the table): weighed with the table
ROWS_BY_ID = "_zz_rows_by_id"


def approx_bytes(value: Any, depth: int = 48, _seen: set | None = None) -> int:
    """The memory a cached value holds, roughly [bytes]: a DataFrame's columns and index (object columns as
    their pointers: the texts they point to are mostly shared ids), arrays' buffers, texts' lengths, and down to
    ``depth`` levels the items of tuples, lists, sets and dicts, the attributes of the engine's result objects (an
    :class:`zhizao.kpi.elements.ElementsResult`'s tables) and what a function holds (the inputs of an
    ElementsResult's loss reasons, computed when first asked for), each object once; anything else its
    ``sys.getsizeof``. What an object computes later is counted only when it is weighed again (:class:`LRU`).

    Examples
    --------
    >>> approx_bytes("x" * 1000), approx_bytes(pd.DataFrame({"a": np.zeros(1000)})) >= 8000
    (1000, True)
    >>> a = np.zeros(1000)
    >>> approx_bytes([a, a, lambda: a.sum()]) - approx_bytes(a) < 1000  # one array, held three times
    True
    """
    seen = set() if _seen is None else _seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, pd.DataFrame):  # (and the index of its rows by id a cached stage table carries)
        index = value.__dict__.get(ROWS_BY_ID)
        return int(value.memory_usage(index=True, deep=False).sum()) + (index.nbytes if index is not None else 0)
    if isinstance(value, (pd.Series, pd.Index)):
        return int(value.memory_usage(deep=False))
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (str, bytes, bytearray)):
        return len(value)
    items: Iterable[Any] = ()
    if depth > 0 and not isinstance(value, (type, types.ModuleType)):  # a module a function uses is not held
        if isinstance(value, (tuple, list, set, frozenset)):
            items = value
        elif isinstance(value, dict):
            items = (x for kv in value.items() for x in kv)
        elif callable(value) and hasattr(value, "__code__"):  # what it closes over, and its defaults
            items = [*(c.cell_contents for c in (value.__closure__ or ()) if _has_contents(c)),
                     *(value.__defaults__ or ())]
        elif dataclasses.is_dataclass(value):
            items = (getattr(value, f.name) for f in dataclasses.fields(value))
        elif hasattr(value, "__dict__") and type(value).__module__.startswith(_RESULTS):
            items = vars(value).values()  # a result's own attributes (not a workspace's, a view's, a cache's)
    try:
        inner = sum(approx_bytes(v, depth - 1, seen) for v in items)
    except RuntimeError:  # a dict or set another thread changes meanwhile (a shared context's memo): not counted
        inner = 0
    return sys.getsizeof(value) + inner


def _has_contents(cell) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:  # a cell not yet bound
        return False
    return True


_MISSING = object()


def _pending(value: Any) -> bool:
    """Whether a cached value still has work to do that changes its weight: an engine result whose loss reasons
    are a function until first asked for (it holds the state records they are computed from, then only the
    table), alone or as the first item of a tuple (:meth:`ResultCache._keep_latest`'s)."""
    if isinstance(value, tuple) and value:
        value = value[0]
    if not type(value).__module__.startswith(_RESULTS) or not hasattr(value, "__dict__"):
        return False
    if hasattr(type(value), "reasons_pending"):  # (its reasons may be computed through another result's)
        return bool(value.reasons_pending)
    return any(callable(v) and not isinstance(v, type) for v in vars(value).values())


class LRU:
    """A thread-safe mapping that keeps the most recently used entries: at most ``maxsize`` of them, and (with
    ``maxbytes``) at most that much memory by :func:`approx_bytes` of their values, weighed when stored.

    The byte bound is what bounds a server's memory: a count alone lets a few whole-plant tables of a year fill
    it, or lets many small entries (pages of a thousand machines) push out the large ones every page is made
    from. An entry larger than ``maxbytes`` on its own is not kept. An entry weighed while it still had work to do
    (:func:`_pending`) is weighed again when read, until it has none: an engine result holds the state records
    of its loss reasons (hundreds of MiB on a city's data) only until they are computed.
    """

    def __init__(self, maxsize: int = 64, maxbytes: int | None = None):
        self.maxsize = maxsize
        self.maxbytes = maxbytes
        self._d: OrderedDict = OrderedDict()
        self._w: dict = {}  # key -> weight [bytes] (with maxbytes)
        self._pending: set = set()  # keys whose value had work to do when weighed (:func:`_pending`)
        self.nbytes = 0
        self._lock = threading.Lock()

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._d

    def __getitem__(self, key):
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key, default=None):
        with self._lock:
            if key not in self._d:
                return default
            self._d.move_to_end(key)
            value = self._d[key]
            pending = key in self._pending
        # weighed while it still had work to do (loss reasons to compute): weighed again once that is done (a
        # cheap check until then; the work done, the value no longer changes)
        if pending and not _pending(value):
            self._reweigh(key, value)
        return value

    def _reweigh(self, key, value) -> None:
        w = approx_bytes(value)
        with self._lock:
            if self._d.get(key, _MISSING) is not value or key not in self._pending:
                return  # replaced, evicted or weighed again meanwhile
            self.nbytes += w - self._w[key]
            self._w[key] = w
            self._pending.discard(key)
            if self.maxbytes is not None and w > self.maxbytes:
                self._pop(key)  # grown larger than the budget on its own: not kept (as when stored)
            self._evict()  # grown: the least recently used go

    def _evict(self) -> None:
        while len(self._d) > self.maxsize or (self.maxbytes is not None and self.nbytes > self.maxbytes):
            self._pop(next(iter(self._d)))

    def __setitem__(self, key, value) -> None:
        # (pending judged first: work finished during the weighing is weighed again at the next read)
        pending = self.maxbytes is not None and _pending(value)
        w = approx_bytes(value) if self.maxbytes is not None else 0
        with self._lock:
            self._pop(key)
            if self.maxbytes is not None and w > self.maxbytes:
                return
            self._d[key] = value
            self._w[key] = w
            if pending:
                self._pending.add(key)
            self.nbytes += w
            self._evict()

    def _pop(self, key) -> None:
        if key in self._d:
            del self._d[key]
            self.nbytes -= self._w.pop(key)
            self._pending.discard(key)

    def __len__(self) -> int:
        return len(self._d)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()
            self._w.clear()
            self._pending.clear()
            self.nbytes = 0

    def items(self) -> list[tuple[Any, Any]]:
        """A copy of the entries, least recently used first."""
        with self._lock:
            return list(self._d.items())

    def drop(self, keep: Callable[[Any], bool]) -> None:
        """Remove the entries whose key does not satisfy ``keep``."""
        with self._lock:
            for k in [k for k in self._d if not keep(k)]:
                self._pop(k)


class _Flight:
    def __init__(self):
        self.event = threading.Event()
        self.value = None
        self.error: BaseException | None = None


class ResultCache:
    """An LRU cache that computes each missing key once even when many threads ask for it at the same time.

    Keys start with the store version. Exceptions are passed to every waiting caller and not cached.
    """

    def __init__(self, maxsize: int = CACHE_SIZE, maxbytes: int | None = None):
        self.lru = LRU(maxsize, maxbytes)
        #: the latest value of each logical key (a key without its counters): what :meth:`get_or_stale` may
        #: show while the value of newer counters is computed; (value, seq, as_of) (mostly the values the lru
        #: holds too: the same objects, weighed in each)
        self.latest = LRU(maxsize, maxbytes)
        self._lock = threading.Lock()
        self._flights: dict = {}
        self._queued: dict = {}  # logical key -> the refresh of it that has not started
        self._failed: set = set()  # logical keys whose last refresh failed
        self._refresh = ThreadPoolExecutor(max_workers=REFRESH_WORKERS, thread_name_prefix="zhizao-refresh")
        self.hits = 0
        self.misses = 0
        self.stale = 0

    def get(self, key, compute: Callable[[], Any], keep: tuple | None = None):
        """The value of ``key``, computed by ``compute()`` once however many threads ask. ``keep``: ``(logical,
        seq, as_of)`` to keep a computed value as the latest of ``logical`` too (what :meth:`get_or_stale` shows,
        and what :meth:`Read.prior` starts an update from)."""
        with self._lock:
            hit = self.lru.get(key, _MISSING)  # one step: another thread's insert may evict between two
            if hit is not _MISSING:
                self.hits += 1
                return hit
            flight = self._flights.get(key)
            owner = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
                self.misses += 1
        if not owner:
            waiting()  # (another request computes it: this one's slot to the next)
            flight.event.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            flight.value = compute()
            self.lru[key] = flight.value
            if keep is not None:
                self._keep_latest(keep[0], flight.value, keep[1], keep[2])
            return flight.value
        except BaseException as e:
            flight.error = e
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.event.set()

    get_or_compute = get

    def get_or_stale(self, key, compute: Callable[[], Any], logical, seq: int, as_of: float, wait: float,
                     refresh: Callable[[], tuple[Any, int, float]]) -> tuple[Any, float | None]:
        """``(value, None)`` for ``key`` as :meth:`get`, unless the value is not cached, an earlier value of the
        same ``logical`` key (the key without its counters) exists and a refresh does not finish within
        ``wait`` [s]: then ``(the earlier value, the time it is as of)``.

        A refresh computes the value in the background from a snapshot taken when it starts (``refresh()``
        returns ``(value, seq, as_of)`` of that snapshot, and keeps the value in the cache under its counters),
        so it is never older than the request; a request joins the refresh of its logical key that has not
        started yet, or queues one: at most one waits per key, however many ask, and the pages of one tenant
        refreshed together share their computed elements. ``seq`` orders the snapshots (a value of an older
        snapshot never replaces a newer one as the latest); ``as_of`` is the time [s since the epoch] of the
        snapshot of ``key``. After a refresh failed, the next request computes here (and meets the error)."""
        with self._lock:
            hit = self.lru.get(key, _MISSING)
            if hit is not _MISSING:
                self.hits += 1
                return hit, None
            latest = self.latest.get(logical)
            if logical in self._failed:
                self._failed.discard(logical)
                latest = None
            job = None
            if latest is not None:
                job = self._queued.get(logical)
                if job is None:
                    job = self._queued[logical] = _Flight()
                    self.misses += 1
                    self._refresh.submit(self._run_refresh, logical, job, refresh)
        if latest is None:  # nothing to show meanwhile: computed (or waited for) here, as get() does
            value = self.get(key, compute)
            self._keep_latest(logical, value, seq, as_of)
            return value, None
        assert job is not None
        if not job.event.is_set():
            waiting()  # (computed in the background meanwhile)
        if job.event.wait(wait):
            if job.error is not None:
                raise job.error
            return job.value, None
        with self._lock:
            self.stale += 1
        return latest[0], latest[2]

    def _run_refresh(self, logical, job: _Flight, refresh: Callable[[], tuple[Any, int, float]]) -> None:
        with self._lock:  # started: a later request queues a refresh of its own (from a later snapshot)
            if self._queued.get(logical) is job:
                del self._queued[logical]
        began = time.monotonic()
        try:
            value, seq, as_of = refresh()
            self._keep_latest(logical, value, seq, as_of)
            job.value = value
        except BaseException as e:
            log.warning("background refresh of %r failed: %s", logical[:3], e)
            job.error = e
            with self._lock:
                self._failed.add(logical)
        finally:
            job.event.set()
        # rest before the next refresh: the worker computes at most REFRESH_DUTY of the time, the rest of the
        # cores stay with the requests that wait (uploads, the API, pages without earlier figures)
        if REFRESH_DUTY < 1:
            time.sleep((time.monotonic() - began) * (1 / REFRESH_DUTY - 1))

    def latest_of(self, logical) -> tuple | None:
        """``(value, seq, as_of)`` of the latest value kept for ``logical``, or None."""
        with self._lock:
            return self.latest.get(logical)

    def _keep_latest(self, logical, value, seq: int, as_of: float) -> None:
        with self._lock:
            held = self.latest.get(logical)
            if held is None or held[1] <= seq:
                self.latest[logical] = (value, seq, as_of)

    def prune(self, current: dict) -> None:
        """Drop entries whose key carries an older counter of some domain than ``current`` (they can never be
        asked for again; the latest value of each key stays, see :meth:`get_or_stale`)."""
        def fresh(k) -> bool:
            if not (isinstance(k, tuple) and k and isinstance(k[0], tuple)):
                return True
            return all(current.get(name, 0) == n for name, n in k[0])
        self.lru.drop(fresh)

    def clear(self) -> None:
        self.lru.clear()
        self.latest.clear()

    def close(self) -> None:
        """Stop the background refreshes (those running finish)."""
        self._refresh.shutdown(wait=True, cancel_futures=True)


VERSION_SQL = """SELECT (SELECT count(*) FROM loads), (SELECT CAST(max(loaded_at) AS VARCHAR) FROM loads),
                        (SELECT count(*) FROM verifications),
                        (SELECT CAST(max(computed_at) AS VARCHAR) FROM verifications)"""


class _ReaderCache(dict):
    """The cache of a request's Workspace: its own dict, except the elements of every entity (the costly
    stage result), which are shared by all requests through the store's result cache."""

    def __init__(self, read: Read):
        super().__init__()
        self.read = read

    def get_or_compute(self, key, compute):
        if key and key[0] == "elements":
            if persistent_key(key):
                compute = self._kept_across_restarts(key, compute)
            return self.read.cached(key, compute, deps=("data",), keep_latest=Workspace.is_elements_key(key))
        if key not in self:
            self[key] = compute()
        return self[key]

    def prior(self, key):
        """An earlier value of elements ``key`` and the equipment changed since (:meth:`Read.prior`)."""
        return self.read.prior(key)

    def _kept_across_restarts(self, key: tuple, compute: Callable[[], Any]) -> Callable[[], Any]:
        """``compute`` of the whole store's elements ``key`` when the server holds no earlier value of it (its
        first computation since the start, or one after a change it cannot bring them up to date from): first
        the snapshot of this read's data, if one was kept; else computed, and a snapshot written
        (:mod:`zhizao.server.snapshots`). With an earlier value, ``compute`` brings it up to date as before."""
        def compute_or_load():
            snapshots = self.read.store.snapshots
            if snapshots.folder is None or self.read.prior(key) is not None:  # none kept (in memory), or an update
                return compute()
            fingerprint = self.read.fingerprint()
            held = snapshots.load(key, fingerprint)
            if held is not None:
                return held
            res = compute()
            # kept only if no write committed since this read's counters were taken: a read whose snapshot
            # began after a commit, but before its counters' bump, may have mixed facts of the older data
            # (shared under those counters) with the newer records; and the engine reads production on a
            # connection of its own. Both hold exactly when no write ran meanwhile.
            if self.read.store.unchanged_since(self.read.counters):
                snapshots.save_later(key, fingerprint, res)
            return res
        return compute_or_load


class _ScopedCache(dict):
    """The cache of a tenant's scoped workspace (:meth:`Read.scoped`): the computed elements and roll-ups, and what
    the engine reads on the way (its store-wide facts: key ``("elements", "context", ...)``), are kept in the
    store's result cache under the counters of the tenant's data, so that the tenant's requests share them until
    one of its enterprises' data changes, and are then brought up to date from their latest values where the
    write said which equipment it changed (:meth:`prior`). Counters are read before a request's snapshot: a
    write committing in between may put its records in the snapshot but not in the facts shared under the older
    counters; its counters' bump then makes the next request update (or compute) what it changed, as the whole
    store's cache (:class:`_ReaderCache`) has always shared the facts."""

    def __init__(self, read: Read, enterprises: frozenset):
        super().__init__()
        self.read = read
        self.enterprises = enterprises
        self.part = tuple(sorted(enterprises))

    def get_or_compute(self, key, compute):
        if key[0] == "equipment_zones":
            if key not in self:
                self[key] = compute()
            return self[key]
        return self.read.cached(("scoped", self.part, *key), compute, deps=("data",),
                                enterprises=self.enterprises, keep_latest=Workspace.is_elements_key(key))

    def prior(self, key):
        """An earlier value of the tenant's elements ``key`` and the equipment changed since (:meth:`Read.prior`)."""
        return self.read.prior(("scoped", self.part, *key))


class Read:
    """One read of the store: ``con`` is a cursor in a read transaction and ``ws`` a Workspace over it, both
    opened on first use (a request answered from the cache never touches the store); ``counters`` are the
    domain counters the request works on (read before the snapshot: data is never older than them)."""

    def __init__(self, store: Store, counters: dict):
        self.store = store
        self.counters = counters
        #: when the read began [s since the epoch]: the time its answers are "as of"
        self.began = time.time()
        self._cur = None
        self._ws = None
        self._scoped: dict = {}
        self._fingerprint: str | None = None

    @property
    def version(self) -> tuple:
        """The store version (loads and verifications) when the read began."""
        return self.counters["version"]

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
            self._ws = self.store.ws.reader(self.con, cache=_ReaderCache(self))
        return self._ws

    def fingerprint(self) -> str:
        """The fingerprint of the data this read sees (:func:`zhizao.store.fingerprint.data_fingerprint`),
        computed once per read."""
        if self._fingerprint is None:
            self._fingerprint = data_fingerprint(self.con, self.ws.settings)
        return self._fingerprint

    def scoped(self, enterprises: frozenset):
        """A workspace that sees only the data of ``enterprises`` (:meth:`zhizao.Workspace.scoped`), in one read
        transaction of its own, opened on first use and closed with the read, with a cache shared by every
        request on the same counters of those enterprises' data (see the module docstring)."""
        key = frozenset(enterprises)
        ws = self._scoped.get(key)
        if ws is None:
            ws = self.ws.scoped(sorted(key))  # counters were read before: its data is never older than them
            ws.con.execute("BEGIN TRANSACTION")
            ws.cache = _ScopedCache(self, key)
            self._scoped[key] = ws
        return ws

    def dependency(self, deps: Iterable[str] = ALL, enterprises: frozenset | None = None) -> tuple:
        """The counters of ``deps`` (``data`` restricted to ``enterprises`` when given) as ((name, n), ...)."""
        c = self.counters
        out = []
        for d in deps:
            if d == "data" and enterprises is not None:
                out.append(("data:*", c.get("data:*", 0)))
                out += [(f"data:{e}", c.get(f"data:{e}", 0)) for e in sorted(enterprises)]
            else:
                out.append((d, c.get(d, 0)))
        return tuple(out)

    def cached(self, key: tuple, compute: Callable[[], Any], deps: Iterable[str] = ALL,
               enterprises: frozenset | None = None, keep_latest: bool = False):
        """``compute()`` cached under the counters of ``deps`` (see :meth:`dependency`) and ``key``;
        ``keep_latest``: kept as the latest value of ``key`` too (see :meth:`prior`)."""
        keep = (key, self.counters.get("seq", 0), self.began) if keep_latest else None
        return self.store.results.get((self.dependency(deps, enterprises), *key), compute, keep)

    def prior(self, key: tuple) -> tuple[Any, frozenset] | None:
        """The latest value computed for ``key`` on an earlier state of the store, and the equipment whose state
        and production records alone changed since (:meth:`Store.changed_since`): what
        :func:`zhizao.kpi.elements.update_elements` brings up to date by recomputing those equipment only. None
        when there is no such value or the writes since changed something else."""
        held = self.store.results.latest_of(key)
        if held is None:
            return None
        changed = self.store.changed_since(held[1], self.counters.get("seq", 0))
        return None if changed is None else (held[0], changed)

    def cached_or_stale(self, key: tuple, compute: Callable[[], Any], wait: float,
                        rebind: Callable[[Read], Any], deps: Iterable[str] = ALL,
                        enterprises: frozenset | None = None) -> tuple[Any, float | None]:
        """As :meth:`cached`, but ``(value, as_of)``: when the value is not cached and a refresh takes longer than
        ``wait`` [s], the latest earlier value of ``key`` and the time it is as of [s since the epoch]
        (:meth:`ResultCache.get_or_stale`); ``as_of`` is None for a current value. The refresh computes
        ``compute`` on a read of its own: ``rebind(read)`` is a context manager that points what ``compute``
        reads at that read while it runs."""
        store = self.store

        def refresh() -> tuple[Any, int, float]:
            with store.read() as rd, rebind(rd):
                return rd.cached(key, compute, deps, enterprises), rd.counters.get("seq", 0), rd.began
        return store.results.get_or_stale((self.dependency(deps, enterprises), *key), compute, key,
                                          self.counters.get("seq", 0), self.began, wait, refresh)

    def close(self) -> None:
        scoped, self._scoped = list(self._scoped.values()), {}
        for ws in scoped:
            try:
                ws.con.execute("ROLLBACK")
            except Exception:
                pass
            ws.close()
        cur, self._cur, self._ws = self._cur, None, None
        if cur is not None:
            try:
                cur.execute("ROLLBACK")
            except Exception:
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
    cache_mb : float or None
        Memory of the result cache [MiB] (:func:`approx_bytes` of its values; None: entries only). The least
        recently used go first, so the stage results every page is cut from stay while pages come and go.
    """

    def __init__(self, db, cache_size: int = CACHE_SIZE, limits=None, cache_mb: float | None = CACHE_MB):
        # the writer's own cache (the inputs of stored verifications) is bounded
        self.ws = zhizao.connect(db, cache=LRU(8), limits=limits)
        self.path = self.ws.path
        accounts.ensure_tables(self.ws.con)
        self.write_lock = threading.RLock()
        self.account_lock = threading.RLock()
        self.results = ResultCache(cache_size, None if cache_mb is None else int(cache_mb * 2**20))
        #: the whole store's elements kept across restarts (:mod:`zhizao.server.snapshots`)
        self.snapshots = Snapshots.beside(self.path)
        self._counter_lock = threading.Lock()
        self._counters: dict = {"version": self._read_version(self.ws.con)}
        self._touched: set | None = None
        self._changed_equipment: set | None = None
        #: (seq, equipment whose state and production records alone the write changed; None: anything else)
        self._change_log: deque[tuple[int, frozenset | None]] = deque(maxlen=CHANGE_LOG)
        self._closed = False
        self._writing = 0  # writes under way (Store.write), of any thread

    # -- versions and caches
    @staticmethod
    def _read_version(con) -> tuple:
        return tuple(con.execute(VERSION_SQL).fetchone())

    @property
    def version(self) -> tuple:
        """The number and latest time of loads and of stored verifications."""
        return self._counters["version"]

    @property
    def counters(self) -> dict:
        """A copy of the domain counters (see the module docstring) and ``version``."""
        with self._counter_lock:
            return dict(self._counters)

    def touch(self, *domains: str) -> None:
        """Declare what the current write changes: ``data:<enterprise>``, ``data:*``, ``register``,
        ``verifications`` (called inside :meth:`write`; a write that declares nothing touches everything)."""
        if self._touched is None:
            self._touched = set()
        self._touched.update(domains)

    def touch_equipment(self, ids: Iterable[str]) -> None:
        """Declare that the current write's change to the shop-floor data is state or production records of the
        equipment ``ids`` only (besides :meth:`touch`, inside :meth:`write`): cached elements of an earlier state
        are then brought up to date by recomputing those equipment alone (:meth:`Read.prior`). A write that
        changes the data without saying so may have changed anything."""
        if self._changed_equipment is None:
            self._changed_equipment = set()
        self._changed_equipment.update(ids)

    def changed_since(self, seq: int, now: int) -> frozenset | None:
        """The equipment whose state and production records alone the writes after ``seq`` up to ``now`` changed
        (empty: none changed the data); None when one of them changed anything else or the log does not reach
        back that far (:data:`CHANGE_LOG` writes)."""
        if now <= seq:
            return frozenset()
        with self._counter_lock:
            entries = [e for e in self._change_log if seq < e[0] <= now]
        if len(entries) != now - seq or any(ids is None for _s, ids in entries):
            return None
        return frozenset().union(*(ids for _s, ids in entries if ids is not None))

    def _bump(self, touched: set | None, changed_equipment: set | None = None) -> None:
        if touched is None:
            touched = {"data:*", "register", "verifications", "equipment"}
        data = any(d.startswith("data") or d == "equipment" for d in touched)
        entry = frozenset() if not data else None if changed_equipment is None else frozenset(changed_equipment)
        version = self._read_version(self.ws.con)
        with self._counter_lock:
            c = self._counters
            for d in touched:
                c[d] = c.get(d, 0) + 1
                if d.startswith("data:"):
                    c["data"] = c.get("data", 0) + 1
            c["version"] = version
            c["seq"] = c.get("seq", 0) + 1  # orders the snapshots (ResultCache.get_or_stale)
            self._change_log.append((c["seq"], entry))
            current = dict(c)
        if touched:
            self.results.prune(current)

    # -- access
    def cursor(self):
        cur = self.ws.con.cursor()
        cur.execute("SET TimeZone = 'UTC'")
        return cur

    @contextmanager
    def read(self):
        """A consistent read of the store (one transaction on a fresh cursor, opened on first use)."""
        rd = Read(self, self.counters)  # counters are read before the snapshot: data is never older
        try:
            yield rd
        finally:
            rd.close()

    @contextmanager
    def write(self):
        """Exclusive write access to the data (the main Workspace). Inside, :meth:`touch` says what the write
        changes; the counters of those domains go up afterwards (all of them if nothing was said)."""
        if not self.write_lock.acquire(blocking=False):
            waiting()  # (behind another write)
            self.write_lock.acquire()
        try:
            outer, outer_eq = self._touched, self._changed_equipment
            self._touched = self._changed_equipment = None
            self._writing += 1
            try:
                yield self.ws
            finally:
                touched, self._touched = self._touched, outer
                changed, self._changed_equipment = self._changed_equipment, outer_eq
                try:
                    self._bump(touched, changed)
                finally:
                    self._writing -= 1
        finally:
            self.write_lock.release()

    def unchanged_since(self, counters: dict) -> bool:
        """Whether no write ran since ``counters`` were taken: none is running now (the write lock is free and
        held by no write of this thread) and none bumped the counters since."""
        if not self.write_lock.acquire(blocking=False):
            return False
        try:
            return self._writing == 0 and self.counters.get("seq", 0) == counters.get("seq", 0)
        finally:
            self.write_lock.release()

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

    def keep_snapshots(self) -> None:
        """Write the snapshots of the whole store's elements that the server brought up to date since it last
        wrote them (after uploads, say), so that the next start finds them: each latest value that is of the
        store as it is now (no write since its read). Under the write lock, so no write runs meanwhile."""
        with self.write_lock, self.read() as rd:
            seq = rd.counters.get("seq", 0)
            for logical, (value, at, _as_of) in self.results.latest.items():
                if persistent_key(logical) and at == seq and isinstance(value, ElementsResult):
                    self.snapshots.save_later(logical, rd.fingerprint(), value)
            self.snapshots.wait()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self.keep_snapshots()
            except Exception as e:  # a snapshot saves time at the next start; closing goes on without it
                log.warning("snapshots not kept at close: %s", e)
            self.snapshots.close()
            self.results.close()
            self.ws.close()
