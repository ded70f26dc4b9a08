"""The calendar as two layers of segments per equipment: planned operation time and planned downtime.

Calendar entries are booked to a scope: an equipment, or a work_center, area, site or enterprise, whose
entries hold for each of its equipment (reference/iso22400.md, "Time model"). An equipment's entries are
the distinct entries of the scopes above and at it. Its planned operation time (pot layer) is the shift
time minus holidays; its planned-downtime layer is the time in breaks and planned_downtime entries, planned
maintenance (planned_downtime) where the two overlap. Equipment without any calendar entry is scheduled
around the clock over its query window.

The entries of each scope are laid out on the timelines of the equipment below it in numpy (a join in SQL
repeats them as rows first), and each layer is resolved in one vectorised pass over all equipment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from zhizao.kpi.intervals import Timeline, resolve
from zhizao.schema import LEVELS


def calendar_layers(con, eq: pd.DataFrame, tl: Timeline, pad_ms: int):
    """The pot and planned-downtime layers of every equipment on the composite axis.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        An open zhizao store.
    eq : pandas.DataFrame
        The equipment: columns ``key`` (int, the timeline on ``tl``), ``equipment_id``, ``work_center``,
        ``area``, ``site``, ``enterprise``, and ``w0``, ``w1`` (the query window [ms]).
    tl : Timeline
    pad_ms : int
        Equipment without a calendar is scheduled over ``[w0 - pad_ms, w1 + pad_ms)``.

    Returns
    -------
    pot : (start, end), arrays of int64
        Disjoint segments in increasing order on the composite axis: shift time minus holidays.
    pdl : (start, end, rank), arrays of int64
        Disjoint segments of planned downtime; rank 0 planned maintenance (planned_downtime), 1 break.
    has_calendar : array of bool, shape (len(eq),)
        Per row of ``eq``: whether any calendar entry applies.
    """
    entries = con.execute("""SELECT scope, epoch_ms(start) AS s, epoch_ms("end") AS e, kind FROM calendar
                             ORDER BY scope""").fetchnumpy()
    scope = np.asarray(entries["scope"], dtype=object)
    es, ee = np.asarray(entries["s"], np.int64), np.asarray(entries["e"], np.int64)
    kind = np.asarray(entries["kind"], dtype=object)
    first = np.flatnonzero(np.r_[True, scope[1:] != scope[:-1]]) if scope.size else np.empty(0, np.int64)
    rows_of = dict(zip(scope[first].tolist(), zip(first.tolist(), np.r_[first[1:], scope.size].tolist())))
    # the equipment each scope's entries hold for (an entry booked twice in one chain is united by resolve)
    keys_of: dict = {}
    eq_key = eq["key"].to_numpy(np.int64)
    for col in ("equipment_id", *LEVELS[1:]):
        for sc, k in zip(eq[col].tolist(), eq_key.tolist()):
            if sc in rows_of:
                keys_of.setdefault(sc, []).append(k)
    key_parts, idx_parts = [], []
    for sc, keys in keys_of.items():
        a, b = rows_of[sc]
        key_parts.append(np.repeat(np.asarray(keys, np.int64), b - a))
        idx_parts.append(np.tile(np.arange(a, b), len(keys)))
    ckey = np.concatenate(key_parts) if key_parts else np.empty(0, np.int64)
    idx = np.concatenate(idx_parts) if idx_parts else np.empty(0, np.int64)
    cs, ce, kind = tl.encode(ckey, es[idx]), tl.encode(ckey, ee[idx]), kind[idx]
    has = np.zeros(tl.n_keys, bool)
    has[ckey] = True
    has_calendar = has[eq_key]
    # equipment without a calendar: one shift over its whole window
    nc = ~has_calendar
    nc_key = eq_key[nc]
    nc_s = tl.encode(nc_key, eq["w0"].to_numpy(np.int64)[nc] - pad_ms)
    nc_e = tl.encode(nc_key, eq["w1"].to_numpy(np.int64)[nc] + pad_ms)
    m = (kind == "shift") | (kind == "holiday")
    pot_s, pot_e, pot_r, _ = resolve(np.r_[cs[m], nc_s], np.r_[ce[m], nc_e],
                                     np.r_[(kind[m] == "shift").astype(np.int8), np.ones(nc_key.size, np.int8)], 2)
    keep = pot_r == 1  # rank 0, a holiday, wins over a shift
    m = (kind == "break") | (kind == "planned_downtime")
    pdl = resolve(cs[m], ce[m], (kind[m] == "break").astype(np.int8), 2)[:3]  # rank 0: maintenance wins
    return (pot_s[keep], pot_e[keep]), pdl, has_calendar
