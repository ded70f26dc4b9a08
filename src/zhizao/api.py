"""The Python API: ``zhizao.connect(db)`` returns a :class:`Workspace` over one store.

Example (a sketch with your own files; not run as a doctest)::

    import zhizao
    ws = zhizao.connect("plant.duckdb")
    ws.ingest("equipment", "equipment.csv")
    ws.ingest("states", "states.csv")
    ws.kpi(level="work_center", period="day")          # pandas DataFrame
    ws.kpi(level="site", period="month", as_arrow=True)  # pyarrow Table

The command line, the report and the demo only call these methods.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from zhizao.errors import InputError
from zhizao.ingest.load import LoadReport, load_file
from zhizao.ingest.mapping import Mapping, load_mapping
from zhizao.kpi.buckets import ReadingTime
from zhizao.kpi.capability import capability
from zhizao.kpi.elements import ELEMENTS, ElementsResult, compute_elements, update_elements
from zhizao.kpi.kpis import catalogue, compute_kpis, loss_waterfall, six_big_losses
from zhizao.kpi.partitions import group_zones
from zhizao.kpi.quality import data_quality, flag_entities
from zhizao.kpi.rollup import label_zones
from zhizao.kpi.stored import refresh_stored
from zhizao.kpi.stored import rewritten as stored_rewritten
from zhizao.limits import Limits
from zhizao.limits import current as current_limits
from zhizao.schema import LEVEL_ID_COLUMN
from zhizao.settings import Settings
from zhizao.store import equipment as store_equipment
from zhizao.store import records as store_records
from zhizao.store.compact import Compacted, compact
from zhizao.store.db import open_db

#: How far back from the reading time data must reach for the reading time to cut a default range [ms]: longer
#: than the longest bucket (a month of 31 days, plus a DST hour).
READING_REACH_MS = 32 * 86400 * 1000


def reading_end(latest: int | None, now: ReadingTime | None = None) -> ReadingTime | None:
    """``now`` (default :meth:`ReadingTime.now`) when data whose latest time stamp is ``latest`` [ms] reach within
    :data:`READING_REACH_MS` of it, else None (see :meth:`Workspace.reading_time`).

    Examples
    --------
    >>> from zhizao.kpi.buckets import utc_ms
    >>> now = ReadingTime(utc_ms("2026-12-05T10:37Z"))
    >>> reading_end(utc_ms("2026-12-05T10:30Z"), now) == now, reading_end(utc_ms("2024-06-30T00:00Z"), now)
    (True, None)
    """
    now = now or ReadingTime.now()
    return now if latest is not None and latest > now.ms - READING_REACH_MS else None


class Cache(Protocol):
    """What a workspace needs of its result cache: a dict, or a bounded mapping such as
    :class:`zhizao.server.store.LRU` (which may add ``get_or_compute``, see :meth:`Workspace.cached`)."""

    def __contains__(self, key: Any) -> bool: ...
    def __getitem__(self, key: Any) -> Any: ...
    def __setitem__(self, key: Any, value: Any) -> None: ...
    def clear(self) -> None: ...


def _local(ts: pd.Series, tz: pd.Series) -> list[str]:
    """ISO 8601 strings with the plant's offset, e.g. ``2025-03-30T00:00:00+01:00``.

    Each distinct pair of instant and zone is formatted once (a day table repeats the same few hundred
    bucket bounds for every equipment).
    """
    ns = pd.to_datetime(pd.Series(ts), utc=True).astype("datetime64[ns, UTC]")
    t_codes, t_uniq = pd.factorize(ns.dt.tz_localize(None).to_numpy().view(np.int64))
    z_codes, z_uniq = pd.factorize(np.asarray(tz, dtype=object))
    n_z = max(len(z_uniq), 1)
    codes, pairs = pd.factorize(t_codes.astype(np.int64) * n_z + z_codes)
    text = np.empty(len(pairs), dtype=object)
    t_all = np.asarray(t_uniq)[pairs // n_z]
    z_all = np.asarray(z_uniq, dtype=object)[pairs % n_z]
    for z in set(z_all):
        m = z_all == z
        text[m] = _isoformat(pd.DatetimeIndex(t_all[m].view("datetime64[ns]"), tz="UTC").tz_convert(z))
    return text[codes].tolist()


def _isoformat(t: pd.DatetimeIndex) -> list[str]:
    """``Timestamp.isoformat()`` of every element of tz-aware ``t``, vectorised for whole seconds."""
    wall = t.tz_localize(None).to_numpy()
    utc = t.tz_convert("UTC").tz_localize(None).to_numpy()
    if (wall.astype("datetime64[s]") != wall).any():
        return [x.isoformat() for x in t]  # sub-second bounds: the exact, slower path
    offset = ((wall - utc) // np.timedelta64(1, "s")).astype(np.int64)
    fmt = {}
    for o in np.unique(offset).tolist():
        h, rest = divmod(abs(o), 3600)
        m, sec = divmod(rest, 60)
        fmt[o] = f"{'-' if o < 0 else '+'}{h:02d}:{m:02d}" + (f":{sec:02d}" if sec else "")
    body = np.datetime_as_string(wall.astype("datetime64[s]"), unit="s")
    return [b + fmt[o] for b, o in zip(body.tolist(), offset.tolist())]


def present(df: pd.DataFrame) -> pd.DataFrame:
    """Periods as ISO 8601 strings with the plant's offset (column ``tz`` dropped)."""
    tz = df["tz"]
    out = df.drop(columns=["tz"])  # a new frame; with copy-on-write its columns are not copied
    if len(df):
        out["period_start"] = _local(df["period_start"], tz)
        out["period_end"] = _local(df["period_end"], tz)
    return out


def _kpi_table(el: pd.DataFrame, kpis: list[str] | None, with_data: set[str] | None = None) -> pd.DataFrame:
    """Rows of summed elements with their KPIs, periods as local ISO 8601 (:meth:`Workspace.kpi`;
    ``with_data``: see :func:`zhizao.kpi.kpis.compute_kpis`)."""
    return present(pd.concat([el, compute_kpis(el, kpis, with_data)], axis=1))


class Workspace:
    """A zhizao store and the stages over it.

    Parameters
    ----------
    db : str or Path
        DuckDB file (created if missing) or ``":memory:"``.
    settings : Settings, optional
        Engine settings (minor-stop threshold, kgce factors).
    read_only : bool
    engine : optional
        Where elements and their roll-up are computed: the embedded engine (default), or
        :class:`zhizao.scale.SparkStoreEngine` (Apache Spark, same kernel, same results).
    limits : zhizao.limits.Limits, optional
        Input limits of :meth:`ingest` (default: :func:`zhizao.limits.current`, the defaults overridden by
        ``ZHIZAO_LIMIT_*`` environment variables).
    cache : Cache, optional
        Where computed stage results are kept (default a plain dict, unbounded). Pass a bounded mapping (an LRU)
        for a long-lived workspace; see :meth:`cached`.

    Caching
    -------
    Stage results (the elements of each period and range, their roll-ups) are kept in :attr:`cache` under tuple
    keys until :meth:`invalidate` is called. :meth:`ingest` invalidates by itself; a program that changes the
    store by other means (a listener, another connection) calls :meth:`invalidate` after its writes. Results
    are shared: treat them as read-only.
    """

    def __init__(self, db: str | Path = "zhizao.duckdb", settings: Settings | None = None, read_only=False,
                 cache: Cache | None = None, engine=None, limits: Limits | None = None):
        self.path = str(db)
        self.limits = limits or current_limits()
        self.con = open_db(db, read_only=read_only)
        if not read_only:
            from zhizao.portfolio.register import ensure_register

            ensure_register(self.con)  # the audit log, settings, and an older store's register brought up to date
        self.settings = settings or Settings()
        self.cache: Cache = {} if cache is None else cache
        self._engine = engine

    @property
    def engine(self):
        """The engine computing elements and roll-ups (the embedded one unless another was given)."""
        found = getattr(self, "_engine", None)  # a workspace made by over() or a subclass may have none
        if found is None:
            from zhizao.scale.engines import EmbeddedEngine

            found = self._engine = EmbeddedEngine()
        return found

    @classmethod
    def over(cls, con, settings: Settings | None = None, path: str | None = None,
             cache: Cache | None = None) -> Workspace:
        """A workspace on an open connection (for example a cursor of another workspace's store, with its own
        transaction), with its own cache. Closing it closes ``con``."""
        ws = cls.__new__(cls)
        ws.path = str(path) if path is not None else ""
        ws.limits = current_limits()
        ws.con = con
        ws.settings = settings or Settings()
        ws.cache = {} if cache is None else cache
        return ws

    def reader(self, con=None, cache: Cache | None = None) -> Workspace:
        """A workspace on ``con`` (default a new cursor of this store) with this one's settings and its own
        cache (default empty): for a reader in another thread or transaction."""
        return Workspace.over(con if con is not None else self.con.cursor(), self.settings, self.path, cache)

    def cached(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """``compute()``, kept in :attr:`cache` under ``key`` until :meth:`invalidate`.

        A cache object with a ``get_or_compute(key, compute)`` method (such as the server's shared result
        cache) is asked through it, so that concurrent readers compute a key once.
        """
        get_or_compute = getattr(self.cache, "get_or_compute", None)
        if get_or_compute is not None:
            return get_or_compute(key, compute)
        try:
            return self.cache[key]
        except KeyError:
            value = self.cache[key] = compute()
            return value

    def scoped(self, enterprises) -> Workspace:
        """A workspace whose stages see only the equipment of ``enterprises`` (and the records booked to them or
        their work centres, areas and sites): a tenant's computation then costs what its own data costs,
        whatever other tenants stored (a far but valid date of one tenant makes only that tenant's buckets).
        It reads through a cursor of its own (closed with the returned workspace)."""
        ids = store_equipment.equipment_of(self.con, enterprises)
        return Workspace.over(_part_connection(self.con, ids), self.settings, self.path)

    def invalidate(self) -> None:
        """Forget every cached result (after the store changed by other means than :meth:`ingest`)."""
        self.cache.clear()

    def close(self) -> None:
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- ingest
    def ingest(self, table: str, *files: str | Path, mapping: str | Path | Mapping | None = None,
               update: bool = False, actor: str | None = None, reason: str | None = None,
               timeout: float | None = None, source: str | None = None,
               provenance: str | None = None) -> list[LoadReport]:
        """Load files into canonical ``table`` (see :func:`zhizao.ingest.load.load_file`), each in one
        transaction, within :attr:`limits`; ``timeout`` [s] cancels a load that takes longer (nothing of it is
        stored), ``source`` names a single file in provenance and messages; ``provenance`` (``"simulated"``) is
        recorded with the load, by default the sidecar's (:mod:`zhizao.provenance`).

        For the register tables (``zhizao.schema.REGISTER_TABLES``) ``update`` updates stored records by key,
        and ``actor`` and ``reason`` go to the audit log (see :mod:`zhizao.portfolio.register`)."""
        if source is not None and len(files) != 1:
            raise InputError("source names one file; give one file with it")
        m = load_mapping(mapping, self.limits.max_mapping_bytes) if isinstance(mapping, (str, Path)) else mapping
        try:
            return [load_file(self.con, table, f, m, update=update, actor=actor, reason=reason,
                              limits=self.limits, timeout=timeout, source=source, provenance=provenance)
                    for f in files]
        finally:
            refresh_stored(self.con, self.settings.memory_mb)
            self.invalidate()

    def compact(self) -> list[Compacted]:
        """Rewrite the states and counts in equipment order, the same records (:func:`zhizao.store.compact.
        compact`): what a store that took in live or daily data needs for whole-range queries to read each
        partition of equipment from its own row groups."""
        try:  # DuckDB's sort within three quarters of the memory budget (it spills beyond)
            done = compact(self.con, memory_mb=0.75 * self.settings.memory_mb)
            stored_rewritten(self.con)  # the same records: stored elements stay current
            return done
        finally:
            self.invalidate()

    def quarantine(self, lang: str | None = None) -> pd.DataFrame:
        """Every rejected record with its table, source file, record and line number, rule, detail (English),
        its structured form (``code``, ``params``), raw values and load time.

        With ``lang`` (``"zh"`` or ``"en"``), ``detail`` is rendered in that language from code and params."""
        df = self.con.execute('SELECT "table", source, record, line, rule, detail, raw, loaded_at, code, '
                              'CAST(params AS VARCHAR) AS params '
                              'FROM quarantine ORDER BY loaded_at, "table", source, record').df()
        if lang is not None and len(df):
            from zhizao.ingest.rules import detail_message

            df["detail"] = [detail_message(c, p, d).text(lang)
                            for c, p, d in zip(df["code"], df["params"], df["detail"])]
        return df

    # -- kpi
    def elements_raw(self, period: str = "day", start=None, end=None, zone_level: str | None = None
                     ) -> ElementsResult:
        """Elements of every entity (equipment and scopes) per bucket, cached per arguments (``zone_level``:
        see :func:`zhizao.kpi.elements.compute_elements`).

        If the embedded engine fails on the whole store, the failure is isolated rather than spread to every
        tenant: the elements are computed per enterprise, and inside an enterprise that fails, per halves of
        its equipment down to the equipment that fails (:func:`isolate_failures`). The result then holds every
        entity that could be computed, and ``failures`` (also :attr:`failures`) names the equipment left out
        and why. When every part fails alike (an impossible query, say), the original error is raised.
        """
        key = self._elements_key(period, start, end, zone_level)

        def compute():
            prior = getattr(self.cache, "prior", None)  # a cache that knows an earlier value (the server's)
            held = prior(key) if prior is not None and getattr(self.engine, "name", None) == "embedded" else None
            if held is not None:
                from zhizao.scale.engines import engine_context

                try:
                    res = update_elements(self.con, held[0], held[1], period, start, end, self.settings,
                                          zone_level, context=engine_context(self, zone_level))
                except Exception:  # the whole computation below meets (and isolates) whatever failed here
                    res = None
                if res is not None:
                    return res
            try:
                res = self.engine.elements(self, period, start, end, zone_level)
            except Exception as e:
                if getattr(self.engine, "name", None) != "embedded":
                    raise
                return isolate_failures(self.con, e, lambda con: compute_elements(
                    con, period, start, end, self.settings, zone_level))
            res.failures = getattr(res, "failures", [])
            return res
        return self.cached(key, compute)

    def held_elements(self, period: str = "day", start=None, end=None, zone_level: str | None = None
                      ) -> ElementsResult | None:
        """:meth:`elements_raw`'s result for these arguments if this workspace's own cache holds it already and
        no equipment was left out of it, else None (nothing is computed). A shared cache (the server's) or a
        bounded one that evicted it, or cannot tell, holds nothing here."""
        key = self._elements_key(period, start, end, zone_level)
        try:
            if key not in self.cache:
                return None
            held = self.cache[key]
        except (KeyError, TypeError):
            return None
        return held if isinstance(held, ElementsResult) and not held.failures else None

    @staticmethod
    def _elements_key(period: str, start, end, zone_level: str | None) -> tuple:
        """The cache key of :meth:`elements_raw`'s result for these arguments."""
        return ("elements", period, str(start), str(end)) + ((zone_level,) if zone_level else ())

    @staticmethod
    def is_elements_key(key: tuple) -> bool:
        """Whether ``key`` is that of an :meth:`elements_raw` result or of the engine's store-wide facts
        (:func:`zhizao.scale.engines.engine_context`): what the workspace can bring up to date from an earlier
        value rather than compute again.

        A cache with a ``prior(key)`` method returning ``(an earlier value of key, the equipment whose state and
        production records alone changed since)``, or None, lets :meth:`elements_raw` recompute those equipment
        only (:func:`zhizao.kpi.elements.update_elements`, :meth:`zhizao.kpi.partitions.EngineContext.updated`):
        the server's cache does (:meth:`zhizao.server.store.Read.prior`); it keeps the latest value of these
        keys for that."""
        if len(key) == 3 and key[:2] == ("elements", "context"):
            return True
        return len(key) in (4, 5) and key[0] == "elements" and key[1] in ("hour", "shift", "day", "week", "month",
                                                                           "all") and isinstance(key[2], str)

    @property
    def failures(self) -> list[tuple[str, str]]:
        """(equipment_id, error) of the equipment left out of the computed elements because the engine failed on
        them (see :meth:`elements_raw`); empty when nothing failed."""
        out = []
        values = getattr(self.cache, "values", None)
        for v in (list(values()) if callable(values) else []):
            out += [f for f in getattr(v, "failures", []) if f not in out]
        return out

    def latest_record(self) -> int | None:
        """The latest time stamp [ms] of the records that give the data's extent (states, production, energy,
        labour, quality; a count or an inspection at an instant counts 1 ms after it), or None for a store without
        any: from the engine's store-wide facts, cached with the elements."""
        from zhizao.scale.engines import engine_context

        whole = engine_context(self).extent.get(None)  # the engine's facts: the data's extent (1 ms past an instant)
        return None if whole is None else int(whole[1])

    def reading_time(self, now: ReadingTime | None = None) -> ReadingTime | None:
        """The ``end`` that reads the default range at ``now`` (default :meth:`ReadingTime.now`, to the minute):
        ``now`` itself when the data reach within :data:`READING_REACH_MS` of it, else None. Only then can a bucket
        of the default range reach beyond now (a bucket is at most a month long); for older data the default
        range is the same at any reading time, and the results computed once stay right (and cached)."""
        return reading_end(self.latest_record(), now)

    def _equipment_zones(self) -> pd.DataFrame:
        return self.cached(("equipment_zones",), lambda: store_equipment.group_zones(self.con))

    def _group_zones(self, level: str) -> dict[str, str]:
        """The zone of each group of ``level`` spanning zones or with a configured zone (:func:`group_zones`)."""
        if level == "equipment":
            return {}
        return group_zones(self._equipment_zones(), level, self.settings.zones)

    def _zone_level(self, level: str, period: str) -> str | None:
        """``level`` if some group of it is bucketed in a zone other than its members' own (day, week, month and
        hour buckets of a group spanning zones, or with a configured zone), else None."""
        if level == "equipment" or period in ("all", "shift"):
            return None
        eq = self._equipment_zones()
        zones = self._group_zones(level)
        return level if any((eq.loc[eq[level] == g, "tz"] != z).any() for g, z in zones.items()) else None

    def elements(self, level: str = "equipment", period: str = "day", start=None, end=None) -> pd.DataFrame:
        """ISO 22400 elements summed to ``level`` per ``period`` (see :func:`zhizao.kpi.rollup.rollup`): one
        row per entity and period, also for a group whose equipment spans time zones.

        Cached per arguments until the next ingest; treat the result as read-only."""
        return self.cached(("rollup", level, period, str(start), str(end)),
                           lambda: label_zones(self.engine.rollup(self, level, period, start, end), level,
                                               self._group_zones(level)))

    def kpi(self, level: str = "equipment", period: str = "day", start=None, end=None,
            kpis: list[str] | None = None, as_arrow: bool = False):
        """Elements and KPIs per entity of ``level`` and ``period`` bucket.

        Parameters
        ----------
        level : {'equipment', 'work_center', 'area', 'site', 'enterprise'}
        period : {'hour', 'shift', 'day', 'week', 'month', 'all'}
        start, end : optional
            Query range; defaults to whole buckets around the data.
        kpis : list of str, optional
            KPI names (default all).
        as_arrow : bool
            Return a pyarrow Table instead of a pandas DataFrame.

        Returns
        -------
        pandas.DataFrame or pyarrow.Table
            The level's id column, period_start and period_end (ISO 8601 strings with the plant's offset),
            n_equipment, no_calendar, every element (s, units, kWh, kgce, h) and every KPI (fractions, or
            null), and null_reasons.
        """
        out = _kpi_table(self.elements(level, period, start, end), kpis)
        return pa.Table.from_pandas(out, preserve_index=False) if as_arrow else out

    def iter_kpi(self, level: str = "equipment", period: str = "day", start=None, end=None,
                 kpis: list[str] | None = None) -> Iterator[pd.DataFrame]:
        """:meth:`kpi`'s table in consecutive pieces whose concatenation is that table, row for row, value for
        value: for equipment, one piece per partition of the engine, so that a caller writing them out
        (``zhizao kpi --level equipment --format parquet|csv``) holds one at a time and memory stays bounded
        whatever the store's size; one piece otherwise (a group's rows are sums over every partition). Nothing
        is cached.

        Whether a KPI is *unavailable* (no data of a kind in the whole table) or has *no data in this period*
        (:func:`zhizao.kpi.kpis.compute_kpis`) depends on every piece: the pieces' elements are kept in a
        temporary directory (about 375 bytes per equipment-day row) until the last is known, then read back one
        at a time."""
        zones = self._group_zones(level)
        pieces = self.engine.iter_rollup(self, level, period, start, end)
        first = next(pieces)
        following = next(pieces, None)
        if following is None:
            yield _kpi_table(label_zones(first, level, zones), kpis)
            return
        with tempfile.TemporaryDirectory(prefix="zhizao-kpi-") as tmp:
            paths: list[Path] = []
            with_data: set[str] = set()
            for k, rows in enumerate(itertools.chain([first, following], pieces)):
                with_data.update(c for c in ELEMENTS if rows[c].notna().any())
                paths.append(Path(tmp) / f"{k}.pkl")
                rows.to_pickle(paths[-1])  # our own file, read back below: every dtype exactly as it was
                del rows
            del first, following
            for path in paths:
                rows = pd.read_pickle(path)
                path.unlink()
                yield _kpi_table(label_zones(rows, level, zones), kpis, with_data)

    def losses(self, level: str = "equipment", period: str = "all", start=None, end=None) -> pd.DataFrame:
        """The ten-category loss waterfall and the six big losses [s] per entity and period."""
        el = self.elements(level, period, start, end)
        col = LEVEL_ID_COLUMN[level]
        w = loss_waterfall(el)
        six = six_big_losses(el).add_prefix("six_")
        return present(pd.concat([el[[col, "tz", "period_start", "period_end"]], w, six], axis=1))

    def stop_reasons(self, level: str = "site", period: str = "all", start=None, end=None) -> pd.DataFrame:
        """Loss seconds inside planned busy time by category and reason, largest first (for a Pareto)."""
        res = self.elements_raw(period, start, end)
        col = LEVEL_ID_COLUMN[level]
        if res.reasons.empty:
            return pd.DataFrame(columns=[col, "category", "reason", "seconds"])
        ids = res.elements[res.elements["level"] == "equipment"][["entity_id", col]].drop_duplicates()
        r = res.reasons.merge(ids, on="entity_id")
        g = r.groupby([col, "category", "reason"], as_index=False)["seconds"].sum()
        return g.sort_values([col, "seconds"], ascending=[True, False], ignore_index=True)

    def data_quality(self, level: str = "equipment", period: str = "day", start=None, end=None) -> pd.DataFrame:
        """The data-quality table (see :mod:`zhizao.kpi.quality`), with the flags of stored records (the
        ``record_flags`` table) counted per entity and period."""
        el = self.elements(level, period, start, end)
        rows = pd.concat([el, compute_kpis(el, ["effectiveness"])], axis=1)
        col = LEVEL_ID_COLUMN[level]
        try:
            flags = self.con.execute('SELECT "table", _source, _record, flag, "column", entity, ts '
                                     'FROM record_flags').df()
        except duckdb.CatalogException:  # a store of a version before record_flags, opened read-only
            flags = None
        if flags is not None and len(flags):
            flags = flag_entities(flags, store_equipment.hierarchy(self.con), col)
        return present(data_quality(rows, col, flags))

    def capability(self, level: str = "equipment", period: str = "all", start=None, end=None) -> pd.DataFrame:
        """Cm, Cmk, Cp, Cpk (ISO 22400-2 KPIs 19-22) per entity, characteristic and period
        (see :mod:`zhizao.kpi.capability`)."""
        el = self.elements_raw(period, start, end).elements
        buckets = el[el["level"] == "equipment"][["equipment_id", "work_center", "area", "site", "enterprise", "tz",
                                                  "period_start", "period_end"]]
        return present(capability(store_records.measurements(self.con), buckets, level))

    def catalogue(self) -> pd.DataFrame:
        """Every ISO 22400-2 KPI with its formula and whether this store's data can give it."""
        el = self.elements_raw("all").elements
        return catalogue(el, store_records.has_measurements(self.con))

    # -- verify
    def verification_inputs(self, project_ids=None, periods=("day",)):
        """The inputs of verifying ``project_ids`` (default: every project), read from the store in bulk (see
        :class:`zhizao.verify.VerificationInputs`); pass them as ``inputs=`` to :meth:`verify`,
        :meth:`verify_project` and :meth:`verify_all_projects`. Valid until the store changes."""
        from zhizao.verify import VerificationInputs

        return VerificationInputs.prepare(self, project_ids, periods)

    def verify(self, indicator: str, scope: str, baseline, reporting, **kw):
        """Verify one indicator at one scope (see :func:`zhizao.verify.verify`)."""
        from zhizao.verify import verify

        return verify(self, indicator, scope, baseline, reporting, **kw)

    def verify_project(self, project_id: str, **kw):
        """Verify a registered project's indicators and store the results (see
        :func:`zhizao.verify.verify_project`)."""
        from zhizao.verify import verify_project

        return verify_project(self, project_id, **kw)

    def verify_all_projects(self, project_ids=None, **kw):
        """Verify every registered project (or ``project_ids``) and store the results (see
        :func:`zhizao.verify.verify_all_projects`)."""
        from zhizao.verify import verify_all_projects

        return verify_all_projects(self, project_ids, **kw)

    def table(self, name: str) -> pd.DataFrame:
        """A stored canonical table as a DataFrame."""
        return self.con.execute(f'SELECT * FROM "{name}"').df()


def connect(db: str | Path = "zhizao.duckdb", settings: Settings | None = None, read_only: bool = False,
            cache: Cache | None = None, engine=None, limits: Limits | None = None) -> Workspace:
    """Open a zhizao store (created if missing) and return its :class:`Workspace` (``cache``, ``engine``,
    ``limits``: see there)."""
    return Workspace(db, settings, read_only, cache, engine, limits)


__all__ = ["ELEMENTS", "Workspace", "connect"]


# ---------------------------------------------------------------------------------------------------------
# isolating the entities the engine fails on

#: canonical tables the engine reads, and how a part of the equipment restricts them (SQL over the table's
#: columns; ``_zz_part_ids``: the part's equipment ids, ``_zz_part_scopes``: their ids at every level)
_PART_FILTERS = {
    "states": "equipment_id IN (SELECT equipment_id FROM _zz_part_ids)",
    "production": "equipment_id IN (SELECT equipment_id FROM _zz_part_ids)",
    "products": "equipment_id IS NULL OR equipment_id IN (SELECT equipment_id FROM _zz_part_ids)",
    "energy": "equipment_id IN (SELECT equipment_id FROM _zz_part_ids) OR (equipment_id IS NULL AND scope IN "
              "(SELECT sid FROM _zz_part_scopes))",
    "quality": "equipment_id IN (SELECT equipment_id FROM _zz_part_ids) OR (equipment_id IS NULL AND scope IN "
               "(SELECT sid FROM _zz_part_scopes))",
    "calendar": "scope IN (SELECT sid FROM _zz_part_scopes)",
    "labour": "scope IN (SELECT sid FROM _zz_part_scopes)",
    "variables": "scope IN (SELECT sid FROM _zz_part_scopes)",
    # the flags of another tenant's records neither count for this one nor cost it anything to read
    "record_flags": "entity IN (SELECT sid FROM _zz_part_scopes)",
}


def _part_connection(con, ids: list[str]):
    """A cursor of the store on which every table the engine reads holds only the records of equipment ``ids``
    (temporary views shadowing the tables)."""
    cur = con.cursor()
    cur.execute("SET TimeZone = 'UTC'")
    db = cur.execute("SELECT current_database()").fetchall()[0][0].replace('"', '""')
    cur.register("_zz_part_ids", pa.table({"equipment_id": pa.array(ids, pa.string())}))
    cur.execute(f'CREATE TEMP VIEW equipment AS SELECT * FROM "{db}".main.equipment '
                f'WHERE equipment_id IN (SELECT equipment_id FROM _zz_part_ids)')
    cur.execute("CREATE TEMP VIEW _zz_part_scopes AS SELECT DISTINCT unnest([equipment_id, work_center, area, site, "
                "enterprise]) AS sid FROM equipment")
    for table, where in _PART_FILTERS.items():
        cur.execute(f'CREATE TEMP VIEW "{table}" AS SELECT * FROM "{db}".main."{table}" WHERE {where}')
    return cur


def isolate_failures(con, error: BaseException, compute) -> ElementsResult:
    """The elements of every part of the store ``compute(con)`` does not fail on, after it failed on the whole.

    The store is split by enterprise (the tenants), then each failing enterprise into halves of its equipment,
    down to single equipment; each part is computed on :func:`_part_connection`. Errors of every kind count
    (also zhizao's own: the engine calls one equipment's empty range an empty query range). The parts' elements are
    concatenated (a scope entity shared by parts is kept once).

    Returns
    -------
    ElementsResult
        With ``failures``: (equipment_id, first line of the error) of each equipment that fails on its own.

    Raises
    ------
    BaseException
        ``error`` itself, when every enterprise fails alike (the failure is not one entity's).
    """
    import logging

    eq = store_equipment.owners(con)
    groups: dict = {}
    for eid, ent in eq:
        groups.setdefault(ent, []).append(eid)
    parts, failures = [], []

    def attempt(ids: list[str]):
        cur = _part_connection(con, ids)
        try:
            return compute(cur), None
        except Exception as e:
            return None, e
        finally:
            cur.close()

    def narrow(ids: list[str], e: BaseException) -> None:
        """Halves of a failing part, down to the single equipment that fail."""
        if len(ids) == 1:
            failures.append((ids[0], " ".join(f"{type(e).__name__}: {e}".split())[:300]))
            return
        half = len(ids) // 2
        for sub in (ids[:half], ids[half:]):
            res, err = attempt(sub)
            if err is None:
                parts.append(res)
            else:
                narrow(sub, err)

    if len(eq) <= 1:
        raise error
    # each enterprise first: if all fail, the failure is not one entity's (an impossible query, say)
    tried = [(ids, *attempt(ids)) for ids in groups.values()]
    if all(err is not None for _, _, err in tried):
        raise error
    for ids, res, err in tried:
        if err is None:
            parts.append(res)
        else:
            narrow(ids, err)
    logging.getLogger("zhizao.kpi").warning("elements of %d equipment left out (the engine fails on them): %s",
                                            len(failures), "; ".join(f"{e}: {m}" for e, m in failures))
    elements = pd.concat([p.elements for p in parts], ignore_index=True)
    elements = elements.drop_duplicates(["level", "entity_id", "period_start"], keep="first", ignore_index=True)
    period = parts[0].period

    def reasons():
        r = [p.reasons for p in parts]
        return pd.concat(r, ignore_index=True) if r else pd.DataFrame()

    out = ElementsResult(elements, reasons, period)
    out.failures = failures
    return out
