"""The inputs of verifications, read from a store once and passed in explicitly.

:class:`VerificationInputs` holds what verifying one or many scopes reads: the scope index, elements per
bucket of scopes and of equipment, production records with their products, relevant variables, costs and
price indices, development cycles, projects, state extents and recorded non-routine adjustments. A fresh
object reads per scope on demand; :meth:`VerificationInputs.prepare` reads everything for many projects in a
few bulk queries. Either way the figures are the same; only the number of queries differs.

Verification functions take it as an argument (``verify(ws, ..., inputs=inputs)``); nothing is kept in the
workspace. The object is read-only for its users and belongs to one store state: build a new one after an
ingest.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from zhizao.schema import LEVEL_ID_COLUMN, LEVELS
from zhizao.store import equipment as store_equipment
from zhizao.store import records as store_records

if TYPE_CHECKING:
    import duckdb

    from zhizao.api import Workspace
    from zhizao.verify.panel import Panel

LEVEL_COLUMNS = ("equipment_id", "work_center", "area", "site", "enterprise")
WINDOWS_KEPT = 8  #: (scope, period, window) series kept per inputs object

#: An instant as the verification functions take it: ISO 8601 text or a time stamp (``pandas.Timestamp`` and
#: ``datetime`` are dates); a naive one is UTC.
Instant: TypeAlias = str | dt.date | np.datetime64
#: Row positions of a frame per level column and id (``groupby(column).indices`` of each level column).
LevelIndex: TypeAlias = dict[str, dict[str, NDArray[np.int64]]]
#: A key of :meth:`VerificationInputs.memo` (its first item names what is kept).
MemoKey: TypeAlias = tuple[Hashable, ...]

T = TypeVar("T")


@dataclass(frozen=True)
class ScopeInfo:
    """A scope's ISA-95 level, the ids of the scope and its ancestors (nearest first), its time zone and the
    ids of its equipment."""

    level: str
    chain: tuple[str, ...]
    tz: str
    equipment: tuple[str, ...]


def _by_level(df: pd.DataFrame) -> LevelIndex:
    return {c: df.groupby(c, sort=False).indices for c in LEVEL_COLUMNS if c in df}


def scope_positions(index: LevelIndex, scope: str) -> NDArray[np.int64]:
    """Row positions (in order) of a frame with the level columns whose equipment lies in ``scope``."""
    pos = [index[c][scope] for c in LEVEL_COLUMNS if c in index and scope in index[c]]
    if not pos:
        return np.empty(0, np.int64)
    return np.unique(np.concatenate(pos)) if len(pos) > 1 else np.asarray(pos[0])


def scope_rows(bulk: pd.DataFrame, index: LevelIndex, scope: str) -> pd.DataFrame:
    """Rows of a frame with the level columns whose equipment lies in ``scope``, in the frame's order."""
    return bulk.iloc[scope_positions(index, scope)]


class VerificationInputs:
    """What verifications read from one store (see the module docstring).

    Parameters
    ----------
    ws : zhizao.Workspace
        The store (its connection and its elements).
    """

    def __init__(self, ws: Workspace):
        self.ws = ws
        self._memo: dict[MemoKey, Any] = {}  # frames, arrays, indices: each key's value has its builder's type

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        return self.ws.con

    def _get(self, key: MemoKey, build: Callable[[], T]) -> T:
        found: T | None = self._memo.get(key)  # built by ``build`` (one builder per key)
        if found is None:
            found = self._memo[key] = build()
        return found

    # -- bulk ---------------------------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, ws: Workspace, project_ids: Collection[str] | None = None,
                periods: Collection[str] = ("day",)) -> VerificationInputs:
        """Read in bulk what verifying ``project_ids`` (default: every project) needs: projects, state
        extents, variables, costs, production records, development cycles, adjustments, the scope index and
        the elements of the projects' levels at ``periods`` (and of equipment per day)."""
        self = cls(ws)
        self._memo[("bulk",)] = True
        p = ws.con.execute("SELECT project_id, enterprise_id, scope, start, commissioning_end FROM projects").df()
        self._memo[("projects",)] = {r["project_id"]: r for r in p.to_dict("records")}
        # the elements first, while little else is held: the engine's working memory is the peak of the run;
        # its whole-store frames are freed once the scopes' and the equipment's copies are built. The equipment's
        # daily elements come first: the scopes' daily roll-ups are summed from them (one pass of the engine)
        if "day" in periods:
            self.equipment_elements("day")
        levels = set()
        for pid in project_ids or self._memo[("projects",)]:
            row = self._memo[("projects",)].get(pid)
            if row is not None and isinstance(row["scope"], str):
                try:
                    levels.add(self.scope(row["scope"]).level)
                except LookupError:
                    pass  # verify_project reports it
        for level in sorted(levels):
            for period in periods:
                self.scope_elements(level, period)
        _drop_engine_results(ws)
        self._memo[("state_extent_all",)] = store_records.operating_extents(ws.con)
        v = store_records.variable_records(ws.con)
        self._memo[("variables_all",)] = ({k: g.drop(columns="scope").reset_index(drop=True)
                                           for k, g in v.groupby("scope", sort=False)},
                                          v.drop(columns="scope").iloc[:0])
        c = store_records.cost_records(ws.con)
        self._memo[("costs_all",)] = ({k: g.drop(columns="scope") for k, g in c.groupby("scope", sort=False)},
                                      c.drop(columns="scope").iloc[:0])
        self.production_records_all()
        self.cycles_all()
        self.adjustments_all()
        return self

    # -- scopes ------------------------------------------------------------------------------------------------
    def equipment_table(self) -> pd.DataFrame:
        """The equipment table's hierarchy columns and time zone (read once)."""
        return self._get(("equipment",), lambda: store_equipment.hierarchy(self.con, zone=True))

    def equipment_index(self) -> LevelIndex:
        return self._get(("equipment_index",), lambda: _by_level(self.equipment_table()))

    def scope(self, scope: str) -> ScopeInfo:
        """The :class:`ScopeInfo` of ``scope``.

        Raises
        ------
        LookupError
            If ``scope`` is no equipment, work_center, area, site or enterprise id.
        """
        index = self._get(("scope_index",), self._scope_index)
        found = index.get(scope)
        if found is None:
            raise LookupError(f"scope {scope!r} is no equipment, work_center, area, site or enterprise id")
        return found

    def _scope_index(self) -> dict[str, ScopeInfo]:
        """Every scope id -> ScopeInfo, in one pass (a scope id found at several levels counts at the lowest;
        the ancestors are those of its first equipment row, the zone the smallest name among its equipment)."""
        eq = self.equipment_table()
        eq_index = self.equipment_index()
        eq_ids = eq["equipment_id"].to_numpy(object)  # a scope's equipment by row positions: no frame per scope
        out: dict[str, ScopeInfo] = {}
        for level in LEVELS:
            col = LEVEL_ID_COLUMN[level]
            up_cols = [LEVEL_ID_COLUMN[L] for L in LEVELS[LEVELS.index(level) + 1:]]
            sub = eq[eq[col].notna()]
            if sub.empty:
                continue
            g = sub.groupby(col, sort=False)
            first = g.head(1).set_index(col)
            tzmin = g["tz"].min().to_dict()
            for sid, row in zip(first.index, first[up_cols].itertuples(index=False)):
                if sid in out:
                    continue
                up = [sid] + list(row)
                ids = tuple(eq_ids[scope_positions(eq_index, sid)])
                out[sid] = ScopeInfo(level, tuple(u for u in up if isinstance(u, str)), str(tzmin[sid]), ids)
        return out

    # -- elements ----------------------------------------------------------------------------------------------
    def scope_elements(self, level: str, period: str) -> tuple[pd.DataFrame, dict[str, NDArray[np.int64]]]:
        """The store's elements at ``level`` per ``period`` indexed by period_start, and the row positions of
        each scope (built once; a scope's rows are a slice)."""
        def build() -> tuple[pd.DataFrame, dict[str, NDArray[np.int64]]]:
            el = self.ws.elements(level=level, period=period)
            col = LEVEL_ID_COLUMN[level]
            return el.set_index("period_start").drop(columns=[col, "tz"]), el.groupby(col, sort=False).indices
        return self._get(("scope_elements", level, period), build)

    def equipment_elements(self, period: str = "day") -> tuple[pd.DataFrame, LevelIndex]:
        """Elements of every equipment per ``period`` (rows with the hierarchy columns) and the row positions
        per level column (built once)."""
        def build() -> tuple[pd.DataFrame, LevelIndex]:
            el = self.ws.elements_raw(period).elements
            el = el[el["level"] == "equipment"].reset_index(drop=True)
            return el, _by_level(el)
        return self._get(("equipment_elements", period), build)

    def equipment_days(self, scope: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Daily elements of the equipment in ``scope`` whose day starts in ``[start_ms, end_ms)``: one row per
        equipment and day with equipment_id, ``t`` (day start [ms]) and every element."""
        el, index = self.equipment_elements("day")
        rows = scope_rows(el, index, scope)
        t = pd.DatetimeIndex(rows["period_start"]).as_unit("ms").asi8
        keep = (t >= start_ms) & (t < end_ms)
        out = rows[keep]
        return out.assign(t=t[keep])

    def equipment_columns(self) -> tuple[dict[str, NDArray[Any]], LevelIndex]:
        """The daily equipment elements as numpy columns (``equipment_id``, ``t`` [ms] and
        :data:`zhizao.verify.panel.COLUMNS`) and the row positions per level column (built once)."""
        def build() -> tuple[dict[str, NDArray[Any]], LevelIndex]:
            from zhizao.verify.panel import COLUMNS

            el, index = self.equipment_elements("day")
            cols = {"equipment_id": el["equipment_id"].to_numpy(object),
                    "t": pd.DatetimeIndex(el["period_start"]).as_unit("ms").asi8}
            cols.update({c: el[c].to_numpy(float) for c in COLUMNS if c in el})
            return cols, index
        return self._get(("equipment_columns",), build)

    def production_columns(self) -> tuple[dict[str, NDArray[Any]], LevelIndex]:
        """The production records as numpy columns and the row positions per level column (built once)."""
        def build() -> tuple[dict[str, NDArray[Any]], LevelIndex]:
            d, index = self.production_records_all()
            cols = {c: d[c].to_numpy(object) for c in ("equipment_id", "product_id")}
            cols.update({c: d[c].to_numpy(np.int64) for c in ("s", "t")})
            cols.update({c: d[c].to_numpy(float) for c in ("n", "good", "c", "pri")})
            return cols, index
        return self._get(("production_columns",), build)

    def panel(self, scope: str, start_ms: int, end_ms: int) -> Panel:
        """The :class:`zhizao.verify.panel.Panel` of ``scope`` over ``[start, end)`` (kept for the scope's
        other indicators)."""
        from zhizao.verify.panel import build_panel

        kept: OrderedDict[tuple[str, int, int], Panel] = self.kept("panels")
        key = (scope, start_ms, end_ms)
        found = kept.get(key)
        if found is None:
            eq_cols, eq_index = self.equipment_columns()
            rec_cols, rec_index = self.production_columns()
            edges = self.edges(start_ms, end_ms, "day", self.scope(scope).tz)
            found = kept[key] = build_panel(eq_cols, scope_positions(eq_index, scope), rec_cols,
                                            scope_positions(rec_index, scope), edges)
            while len(kept) > 4:
                kept.popitem(last=False)
        return found

    # -- production records ------------------------------------------------------------------------------------
    def production_records_all(self) -> tuple[pd.DataFrame, LevelIndex]:
        """Every production record with the hierarchy of its equipment: s (start, else end [ms]), t (end [ms]),
        equipment_id,
        product_id, n (produced), good, c (scrap + rework), pri (the product's planned run time on the
        equipment, else its general one [s])."""
        def build() -> tuple[pd.DataFrame, LevelIndex]:
            d = store_records.production_with_hierarchy(self.con)
            return d, _by_level(d)
        return self._get(("production_all",), build)

    def production_records(self, scope: str) -> pd.DataFrame:
        """The production records of the equipment in ``scope`` (see :meth:`production_records_all`)."""
        d, index = self.production_records_all()
        return scope_rows(d, index, scope)

    # -- variables ---------------------------------------------------------------------------------------------
    def variables(self, sid: str) -> pd.DataFrame:
        """The relevant-variable records booked to ``sid`` (name, s, e [ms], value, level)."""
        def build() -> pd.DataFrame:
            bulk = self._memo.get(("variables_all",))
            if bulk is not None:
                return bulk[0].get(sid, bulk[1])
            from zhizao.kpi.variables import scope_variables

            return scope_variables(self.con, sid)
        return self._get(("variables", sid), build)

    def driver_variables(self, sid: str) -> pd.DataFrame:
        """The variable records of ``sid`` that can be drivers: ``temperature_c`` and categorical ones."""
        def build() -> pd.DataFrame:
            rec = self.variables(sid)
            if not rec.empty:
                cat = set(rec.loc[rec["level"].notna(), "name"])
                rec = rec[(rec["name"] == "temperature_c") | rec["name"].isin(cat)]
            return rec
        return self._get(("driver_variables", sid), build)

    # -- costs -------------------------------------------------------------------------------------------------
    def costs(self, scope: str) -> pd.DataFrame:
        """The cost records of ``scope`` (category, s, e [ms], amount)."""
        def build() -> pd.DataFrame:
            bulk = self._memo.get(("costs_all",))
            if bulk is not None:
                return bulk[0].get(scope, bulk[1])
            return store_records.cost_records(self.con, scope)
        return self._get(("costs", scope), build)

    # -- development cycles ------------------------------------------------------------------------------------
    def cycles_all(self) -> tuple[pd.DataFrame, dict[str, NDArray[np.int64]], dict[str, list[str]], set[str]]:
        """Every development cycle, its row positions per enterprise, the products made on each equipment and
        the products tied to any equipment (products table; built once)."""
        def build() -> tuple[pd.DataFrame, dict[str, NDArray[np.int64]], dict[str, list[str]], set[str]]:
            cycles = store_records.development_cycles(self.con)
            made_on = store_records.products_on_equipment(self.con)
            on: dict[str, list[str]] = {}
            for prod, e in zip(made_on["product_id"], made_on["equipment_id"]):
                on.setdefault(e, []).append(prod)
            return cycles, cycles.groupby("enterprise_id", sort=False).indices, on, set(made_on["product_id"])
        return self._get(("cycles_all",), build)

    def cycles(self, scope: str) -> pd.DataFrame:
        """Development cycles of ``scope``: its enterprises' products made on its equipment (products table)
        or tied to no equipment at all. Columns product_id, design_start, release, days."""
        cycles, by_ent, made_on, tied = self.cycles_all()
        cols = self._get(("cycles_columns",), lambda: {c: cycles[c].to_numpy() for c in cycles.columns})
        eq = self.equipment_table()
        pos = scope_positions(self.equipment_index(), scope)
        ents = {e for e in eq["enterprise"].to_numpy(object)[pos] if isinstance(e, str) and e and e in by_ent}
        if not ents:
            return cycles.iloc[:0][["product_id", "design_start", "release", "days"]]
        rows = np.sort(np.concatenate([by_ent[e] for e in sorted(ents)]))
        own = {p for e in eq["equipment_id"].to_numpy(object)[pos] for p in made_on.get(e, ())}
        prod = cols["product_id"][rows]
        keep = np.fromiter((p not in tied or p in own for p in prod), bool, rows.size)
        rows = rows[keep]
        return pd.DataFrame({c: cols[c][rows] for c in ("product_id", "design_start", "release", "days")})

    # -- projects ----------------------------------------------------------------------------------------------
    def project(self, project_id: str) -> dict[str, Any] | None:
        """The project's row (project_id, enterprise_id, scope, start, commissioning_end) or None."""
        bulk: dict[str, dict[str, Any]] | None = self._memo.get(("projects",))  # set by prepare()
        if bulk is not None:
            return bulk.get(project_id)
        p = self.con.execute("SELECT project_id, enterprise_id, scope, start, commissioning_end FROM projects "
                             "WHERE project_id = ?", [project_id]).df()
        return None if p.empty else p.iloc[0].to_dict()

    def enterprise_site(self, enterprise_id: str) -> str | None:
        eq = self.equipment_table()
        sites = eq.loc[eq["enterprise"] == enterprise_id, "site"].dropna()
        return min(sites) if len(sites) else None

    def state_extent(self, scope: str) -> tuple[dt.datetime | None, dt.datetime | None]:
        """First start and last end (or start) of the operating records of ``scope`` (states other than
        ``not_scheduled``); (None, None) without any."""
        bulk: dict[str, tuple[dt.datetime, dt.datetime]] | None = self._memo.get(("state_extent_all",))  # prepare()
        if bulk is None:
            return store_records.operating_extent(self.con, scope)
        mine = [bulk[e] for e in self.scope(scope).equipment if e in bulk]
        if not mine:
            return None, None
        return min(a for a, _ in mine), max(b for _, b in mine)

    # -- non-routine adjustments -------------------------------------------------------------------------------
    def adjustments_all(self) -> pd.DataFrame:
        """Every recorded non-routine adjustment (table ``adjustments``), empty when the store has none."""
        def build() -> pd.DataFrame:
            return store_records.adjustment_records(self.con)
        return self._get(("adjustments_all",), build)

    def adjustments(self, scope: str, indicator: str, project_id: str | None = None) -> pd.DataFrame:
        """The adjustments that apply to ``indicator`` at ``scope``: booked to the scope or one of its
        ancestors, for this indicator or for every one (``indicator`` null or ``*``), of this project or of
        none."""
        a = self.adjustments_all()
        if a.empty:
            return a
        chain = set(self.scope(scope).chain)
        ind = a["indicator"].fillna("*")
        keep = a["scope"].isin(chain) & ((ind == indicator) | (ind == "*")) & (
            a["project_id"].isna() | (a["project_id"] == project_id))
        return a[keep]

    # -- series windows ----------------------------------------------------------------------------------------
    def edges(self, start_ms: int, end_ms: int, period: str, tz: str) -> np.ndarray:
        """:func:`zhizao.kpi.buckets.bucket_edges`, kept for the last few arguments (read-only)."""
        from zhizao.kpi.buckets import bucket_edges

        kept: OrderedDict[tuple[int, int, str, str], np.ndarray] = self._memo.setdefault(("edges",), OrderedDict())
        key = (start_ms, end_ms, period, tz)
        found = kept.get(key)
        if found is None:
            found = kept[key] = bucket_edges(start_ms, end_ms, period, tz)
            while len(kept) > 4 * WINDOWS_KEPT:
                kept.popitem(last=False)
        return found

    def kept(self, name: str) -> OrderedDict[Any, Any]:
        """A small LRU store of this object (used by :mod:`zhizao.verify.series`); its user says what it keeps."""
        found: OrderedDict[Any, Any] = self._memo.setdefault((name,), OrderedDict())
        return found

    def memo(self, key: MemoKey, build: Callable[[], T]) -> T:
        """The value built once per key (for the series module's per-scope frames)."""
        return self._get(key, build)


def as_inputs(ws_or_inputs: Workspace | VerificationInputs) -> VerificationInputs:
    """``ws_or_inputs`` itself when it is a :class:`VerificationInputs`, else a fresh one over the workspace."""
    return ws_or_inputs if isinstance(ws_or_inputs, VerificationInputs) else VerificationInputs(ws_or_inputs)


def _drop_engine_results(ws: Workspace) -> None:
    """Free the engine's whole-store elements once the verification's copies are built from them: at city scale
    they are most of the memory, and the worker processes forked afterwards would otherwise share, and partly
    copy, them; the freed heap goes back to the system (glibc keeps it otherwise)."""
    import gc

    cache: Any = ws.cache  # a dict, or a bounded cache (api.Cache) that may lack keys() and pop()
    try:
        keys = [k for k in list(cache.keys()) if isinstance(k, tuple) and k and k[0] in ("elements", "rollup")]
    except AttributeError:  # a bounded cache without keys(): it evicts by itself
        return
    for k in keys:
        cache.pop(k, None)
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
