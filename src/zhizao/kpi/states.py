"""State records as intervals: the end of a record without ``end``, in one vectorised pass.

A state record without ``end`` lasts until the next state record of the same equipment with a strictly
later start; the last ones last until the equipment's data horizon, its latest time stamp in states and
production (docs/reference/iso22400.md, "Open states"). Records that share a start overlap: the precedence
rule decides which category occupies the time, never the order of the records or their raw state names.
The rule used to be a ``lead()`` window in SQL; sorting the fetched columns in numpy does the same several
times faster, and the store's usual insertion order (by equipment and time) makes the sort a linear check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

import duckdb
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from zhizao.kpi.columns import (
    dictionary_codes,
    enum_codes,
    enum_sql,
    epoch_ms,
    epoch_ms_or_null,
    to_numpy,
)
from zhizao.schema import CATEGORY_PRECEDENCE


def rank_sql(column: str) -> str:
    """SQL CASE giving the precedence rank of a state category (see CATEGORY_PRECEDENCE)."""
    return "CASE " + column + " " + " ".join(f"WHEN '{c}' THEN {i}" for i, c in enumerate(CATEGORY_PRECEDENCE)) \
        + " END"


@dataclass
class StateRecords:
    """State records of the equipment entities, sorted by key and start.

    Attributes
    ----------
    key : array of int64, shape (n,)
        Entity key of the equipment (its position in ``equipment_ids``).
    start, end : array of int64, shape (n,)
        Interval bounds [ms since the epoch, UTC]; ``end`` resolved by the rule of this module (records
        without ``end`` that share a start all get the same end).
    rank : array of int8, shape (n,)
        Precedence rank of the category (:data:`zhizao.schema.CATEGORY_PRECEDENCE`).
    reason_text : pyarrow.StringArray, shape (n,)
        Reason of each record, in the order the store returned them (see ``order``); null for none. Kept
        as Arrow strings: only the loss-reason table needs them, through :meth:`reasons`.
    order : array of int64 or None
        Position in ``reason_text`` of each sorted record (None: the same order).
    keys_with_states : array of int64
        Sorted distinct keys that have any state record.
    first, last : array of int64
        Per key of ``keys_with_states``: earliest start and latest time stamp (start or end) of its records
        [ms].
    """

    key: NDArray[np.int64]
    start: NDArray[np.int64]
    end: NDArray[np.int64]
    rank: NDArray[np.int8]
    reason_text: pa.Array
    order: NDArray[np.int64] | None
    keys_with_states: NDArray[np.int64]
    first: NDArray[np.int64]
    last: NDArray[np.int64]

    def reasons(self, rows: NDArray[np.int64]) -> tuple[NDArray[np.int64], list[str]]:
        """Reasons of the records at positions ``rows`` (int64, into the sorted arrays) as codes (int64, one
        per row) into a list of distinct texts; no reason is the empty text."""
        src = rows if self.order is None else self.order[rows]
        enc = self.reason_text.take(pa.array(src, pa.int64())).dictionary_encode()
        codes = dictionary_codes(enc.indices)
        texts: list[str] = enc.dictionary.to_pylist()
        none = codes < 0
        if none.any():
            if "" not in texts:
                texts.append("")
            codes[none] = texts.index("")
        return codes, texts


#: A condition on the state records (alias ``s``), or (the table to read them from, the condition): a table with
#: the columns of ``states`` holding every record the condition selects (``ReadWindow.keep_recent`` of
#: :mod:`zhizao.kpi.elements`)
Condition: TypeAlias = str | tuple[str, str]


def _fetch(con: duckdb.DuckDBPyConnection, equipment_ids: list[str], order: bool,
           where: Condition | list[Condition] | None = None
           ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_], NDArray[np.int8],
                      pa.Array]:
    # no join to the entity table: a join returns rows in no particular order, while a plain scan keeps
    # the store's insertion order (usually by equipment and time, which makes the sort below a check). The
    # equipment's key comes as the code of an ENUM of the ids in key order (null: not an equipment). Several
    # conditions are several scans (each with its own filter pushed into the scan), their rows one after another.
    select = f"""
        SELECT TRY_CAST(s.equipment_id AS {enum_sql(equipment_ids)}) AS key, s.start AS s, s."end" AS e,
               ({rank_sql("s.category")})::TINYINT AS rank, s.reason{", s.equipment_id AS _id, s.state AS _st"
                                                                    if order else ""}
        FROM {{}} s"""
    conds = [(w if isinstance(w, tuple) else ("states", w)) for w in (where if isinstance(where, list) else [where])]
    sql = " UNION ALL ".join(select.format(table) + (f" WHERE {w}" if w else "") for table, w in conds)
    if order:
        sql = f"SELECT * EXCLUDE (_id, _st) FROM ({sql}) ORDER BY _id, s, _st"
    t = con.sql(sql).to_arrow_table()
    key = enum_codes(t.column("key"), len(equipment_ids))
    s = epoch_ms(t.column("s"))
    e, has_end = epoch_ms_or_null(t.column("e"))
    no_end = ~has_end
    e[no_end] = s[no_end]
    rank: NDArray[np.int8] = to_numpy(t.column("rank"))
    reason = t.column("reason").combine_chunks()
    known = key >= 0  # every state's equipment is known after ingest; a foreign row is left out
    if not known.all():
        key, s, e, no_end, rank = key[known], s[known], e[known], no_end[known], rank[known]
        reason = reason.filter(pa.array(known))
    return key, s, e, no_end, rank, reason


def next_later_start(key: NDArray[np.int64], s: NDArray[np.int64], same_next: NDArray[np.bool_],
                     horizon: Mapping[int, int]) -> NDArray[np.int64]:
    """Per record, the first start of its equipment strictly after its own start, else the equipment's horizon.

    ``key`` and ``s`` are sorted by key, then start; ``same_next[i]``: record ``i + 1`` has the same key (the
    last entry is False). Records sharing a start get the same value, whatever their order (one pass).

    >>> import numpy as np
    >>> key, s = np.array([0, 0, 0, 1]), np.array([10, 10, 20, 5])
    >>> next_later_start(key, s, np.array([True, True, False, False]), {0: 30, 1: 9}).tolist()
    [20, 20, 30, 9]
    """
    n = key.size
    nxt = np.empty(n, dtype=np.int64)
    if n == 0:
        return nxt
    nxt[:-1] = s[1:]
    last = np.flatnonzero(~same_next)
    nxt[last] = [horizon[k] for k in key[last].tolist()]
    # a record followed by one with the same start takes the value of the last record of its tie group
    tied = np.zeros(n, dtype=bool)
    np.logical_and(same_next[:-1], s[1:] == s[:-1], out=tied[:-1])
    if tied.any():
        group_end = np.flatnonzero(~tied)  # the last record of each tie group
        nxt = nxt[group_end[np.searchsorted(group_end, np.arange(n))]]
    return nxt


def empty_state_records() -> StateRecords:
    """No state records (a partition without equipment)."""
    z = np.empty(0, np.int64)
    return StateRecords(z, z, z, np.empty(0, np.int8), pa.array([], pa.string()), None, z, z, z)


def state_records(con: duckdb.DuckDBPyConnection, production_end: Mapping[int, int] | Callable[[], Mapping[int, int]],
                  equipment_ids: list[str], where: Condition | list[Condition] | None = None,
                  horizon: dict[int, int] | None = None) -> StateRecords:
    """Every state record with its resolved end (see the module docstring).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        An open zhizao store.
    production_end : dict, or a callable returning one
        Latest production ``end`` [ms] per equipment key (keys without production may be missing). A
        callable is called after the states are read (so production can be read meanwhile).
    equipment_ids : list of str
        The equipment's ids in key order (the key of ``equipment_ids[k]`` is ``k``).
    where : str or list of str, optional
        A condition on the records (table alias ``s``), or several (one query each): only those are read,
        e.g. a range of equipment ids, so that DuckDB reads only the row groups that can hold them (records of
        other equipment are left out anyway), or a window of time around the buckets with every record that
        reaches into it. A condition may name the table to read from (``(table, condition)``; default
        ``states``): one holding every record it selects.
    horizon : dict, optional
        The data horizon [ms] per key, instead of the one derived from the records read and ``production_end``
        (a read of a window of time does not see the equipment's last records).

    Returns
    -------
    StateRecords
    """
    key, s, e, no_end, rank, reason = _fetch(con, equipment_ids, order=False, where=where)
    order = None
    n = key.size
    same_next = np.zeros(n, dtype=bool)
    np.equal(key[1:], key[:-1], out=same_next[:-1])
    # in order: each record starts at or after the previous one of its equipment (one pass)
    if n and not np.all((key[1:] > key[:-1]) | (same_next[:-1] & (s[1:] >= s[:-1]))):
        t0 = int(s.min())
        span = int(s.max()) - t0 + 1
        by_store = True  # without room for a composite key, let the store sort
        if (int(key.max()) + 1) * span < 2**62:
            order_key = key * span + (s - t0)
            o = np.argsort(order_key, kind="stable")  # timsort: fast on presorted runs
            key, s, e, no_end, rank = key[o], s[o], e[o], no_end[o], rank[o]
            order = o
            by_store = False
        if by_store:
            key, s, e, no_end, rank, reason = _fetch(con, equipment_ids, order=True, where=where)
            order = None
        np.equal(key[1:], key[:-1], out=same_next[:-1])
    first = np.flatnonzero(np.r_[True, ~same_next[:-1]]) if n else np.empty(0, np.int64)
    # horizon per equipment: latest time stamp in states and production
    latest = np.maximum(s, e)  # e is the start where there is no end
    last_time = np.maximum.reduceat(latest, first) if n else np.empty(0, np.int64)
    if horizon is None:
        horizon = dict(zip(key[first].tolist(), last_time.tolist()))
        for k, t in (production_end() if callable(production_end) else production_end).items():
            if k in horizon and t is not None:
                horizon[k] = max(horizon[k], t)
    end = np.where(no_end, next_later_start(key, s, same_next, horizon), e)
    return StateRecords(key, s, end, rank, reason, order, key[first], s[first], last_time)
