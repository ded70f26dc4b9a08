"""State records as intervals: the end of a record without ``end``, in one vectorised pass.

A state record without ``end`` lasts until the next state record of the same equipment (ordered by start,
then by the raw state name for records that start at the same instant); the last one lasts until the
equipment's data horizon, its latest time stamp in states and production (reference/iso22400.md, "State
intervals": carry-in of the last known state). The rule used to be a ``lead()`` window in SQL; sorting
the fetched columns in numpy does the same several times faster, and the store's usual insertion order
(by equipment and time) makes the sort a linear check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from zhizao.schema import CATEGORY_PRECEDENCE


def rank_sql(column: str) -> str:
    """SQL CASE giving the precedence rank of a state category (see CATEGORY_PRECEDENCE)."""
    return "CASE " + column + " " + " ".join(f"WHEN '{c}' THEN {i}" for i, c in enumerate(CATEGORY_PRECEDENCE)) \
        + " END"


@dataclass
class StateRecords:
    """State records of the equipment entities, sorted by key and start (then raw state name).

    Attributes
    ----------
    key : array of int64, shape (n,)
        Entity key of the equipment (``key`` column of the entity table).
    start, end : array of int64, shape (n,)
        Interval bounds [ms since the epoch, UTC]; ``end`` resolved by the rule of this module. A record
        whose next record starts at the same instant gets ``end == start`` (an empty interval).
    rank : array of int8, shape (n,)
        Precedence rank of the category (:data:`zhizao.schema.CATEGORY_PRECEDENCE`).
    reason : array of int64, shape (n,)
        Index of the reason text in ``reasons`` (an empty text for none).
    reasons : list of str
    keys_with_states : array of int64
        Sorted distinct keys that have any state record.
    first, last : array of int64
        Per key of ``keys_with_states``: earliest start and latest time stamp (start or end) of its records
        [ms].
    """

    key: np.ndarray
    start: np.ndarray
    end: np.ndarray
    rank: np.ndarray
    reason: np.ndarray
    reasons: list
    keys_with_states: np.ndarray
    first: np.ndarray
    last: np.ndarray


def _fetch(con, entities: str, order: bool):
    # no join to the entity table: a join returns rows in no particular order, while a plain scan keeps
    # the store's insertion order (usually by equipment and time, which makes the sort below a check)
    sql = f"""
        SELECT s.equipment_id, s.start AS s, coalesce(s."end", s.start) AS e, s."end" IS NULL AS no_end,
               ({rank_sql("s.category")})::TINYINT AS rank, coalesce(s.reason, '') AS reason
        FROM states s {"ORDER BY s.equipment_id, s.start, s.state" if order else ""}"""
    t = con.sql(sql).to_arrow_table()
    ids = dict(con.sql(f"SELECT entity_id, key FROM {entities} WHERE level = 'equipment'").fetchall())
    eq = t.column("equipment_id").combine_chunks().dictionary_encode()
    key = np.array([ids.get(x, -1) for x in eq.dictionary.to_pylist()] + [-1], dtype=np.int64)[
        _codes(eq.indices)]
    reason = t.column("reason").combine_chunks().dictionary_encode()
    cols = (key, epoch_ms(t.column("s")), epoch_ms(t.column("e")), _numpy(t.column("no_end")),
            _numpy(t.column("rank")), _codes(reason.indices))
    known = key >= 0  # every state's equipment is known after ingest; a foreign row is left out
    cols = cols if known.all() else tuple(c[known] for c in cols)
    return (*cols, reason.dictionary.to_pylist())


def _numpy(col) -> np.ndarray:
    """A chunked Arrow column without nulls as one numpy array."""
    return col.combine_chunks().to_numpy(zero_copy_only=False)


def _codes(indices) -> np.ndarray:
    """Dictionary indices as int64 with -1 for null."""
    codes = indices.to_numpy(zero_copy_only=False)
    if indices.null_count:
        codes = np.where(indices.is_null().to_numpy(zero_copy_only=False), -1, np.nan_to_num(codes, nan=-1))
    return codes.astype(np.int64)


def epoch_ms(ts) -> np.ndarray:
    """Milliseconds since the epoch (floor) of a chunked Arrow column of time stamps [us] without nulls.

    Fetching DuckDB's TIMESTAMPTZ as it is and dividing here is several times cheaper than ``epoch_ms()`` in
    SQL."""
    ts = ts.combine_chunks()
    if ts.type.unit != "us":
        ts = ts.cast(pa.timestamp("us", tz=ts.type.tz))
    return ts.view(pa.int64()).to_numpy() // 1000


def state_records(con, production_end: dict, entities: str = "_zz_ent") -> StateRecords:
    """Every state record with its resolved end (see the module docstring).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        An open zhizao store.
    production_end : dict
        Latest production ``end`` [ms] per equipment key (keys without production may be missing).
    entities : str
        Name of a table or view with columns ``key``, ``level`` and ``entity_id`` (the engine's entities).

    Returns
    -------
    StateRecords
    """
    key, s, e, no_end, rank, reason, texts = _fetch(con, entities, order=False)
    n = key.size
    same_next = np.zeros(n, dtype=bool)
    np.equal(key[1:], key[:-1], out=same_next[:-1])
    # in order, without ties: each record starts after the previous one of its equipment (one pass)
    if n and not np.all((key[1:] > key[:-1]) | (same_next[:-1] & (s[1:] > s[:-1]))):
        t0 = int(s.min())
        span = int(s.max()) - t0 + 1
        ties = True  # without room for a composite key, let the store sort
        if (int(key.max()) + 1) * span < 2**62:
            order_key = key * span + (s - t0)
            o = np.argsort(order_key, kind="stable")  # timsort: fast on presorted runs
            key, s, e, no_end, rank, reason, order_key = (x[o] for x in (key, s, e, no_end, rank, reason, order_key))
            ties = bool(np.any(order_key[1:] == order_key[:-1]))
        if ties:
            # records starting at the same instant: their order (by raw state) decides which one lasts
            key, s, e, no_end, rank, reason, texts = _fetch(con, entities, order=True)
        np.equal(key[1:], key[:-1], out=same_next[:-1])
    first = np.flatnonzero(np.r_[True, ~same_next[:-1]]) if n else np.empty(0, np.int64)
    # horizon per equipment: latest time stamp in states and production
    latest = np.maximum(s, e)  # e is the start where there is no end
    last_time = np.maximum.reduceat(latest, first) if n else np.empty(0, np.int64)
    horizon = dict(zip(key[first].tolist(), last_time.tolist()))
    for k, t in production_end.items():
        if k in horizon and t is not None:
            horizon[k] = max(horizon[k], t)
    nxt = np.empty(n, dtype=np.int64)
    nxt[:-1] = s[1:]
    last = np.flatnonzero(~same_next)
    nxt[last] = [horizon[k] for k in key[last].tolist()]
    end = np.where(no_end, nxt, e)
    return StateRecords(key, s, end, rank, reason, texts, key[first], s[first], last_time)
