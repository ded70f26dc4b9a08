"""The calendar as two layers of segments per equipment: planned operation time and planned downtime.

Calendar entries are booked to a scope: an equipment, or a work_center, area, site or enterprise, whose
entries hold for each of its equipment (reference/iso22400.md, "Time model"). An equipment's entries are
the distinct entries of the scopes above and at it. Its planned operation time (pot layer) is the shift
time minus holidays; its planned-downtime layer is the time in breaks and planned_downtime entries, planned
maintenance (planned_downtime) where the two overlap. A scope whose entries are only holidays, breaks or
planned downtime is not "never scheduled": without shift entries it is scheduled around the clock minus
those entries. Equipment without any calendar entry is scheduled around the clock over its own data extent
(from its first time stamp in states and production to its data horizon).

Machines usually share their site's shifts and holidays and have some entries of their own (planned
maintenance), so each layer is resolved once per set of scopes that more than one equipment shares and laid
out on their timelines, and in one vectorised pass for the equipment with scopes of its own (a join in SQL
would repeat the site's entries for every machine first).
"""

from __future__ import annotations

from typing import TypeAlias

import duckdb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from zhizao.kpi.columns import floor_ms
from zhizao.kpi.intervals import Timeline, resolve
from zhizao.schema import LEVELS

#: Disjoint segments (start, end) in increasing order on the composite axis [ms]
Segments: TypeAlias = tuple[NDArray[np.int64], NDArray[np.int64]]
#: Disjoint segments (start, end, rank) in increasing order on the composite axis [ms]
RankedSegments: TypeAlias = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]
#: Per equipment, its id and the ids of its work_center, area, site and enterprise (None where it has none)
Chain: TypeAlias = tuple[str | None, ...]


def calendar_layers(con: duckdb.DuckDBPyConnection, eq: pd.DataFrame, tl: Timeline, scopes: str | None = None
                    ) -> tuple[Segments, RankedSegments, NDArray[np.bool_]]:
    """The pot and planned-downtime layers of every equipment on the composite axis.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        An open zhizao store.
    eq : pandas.DataFrame
        The equipment: columns ``key`` (int, the timeline on ``tl``), ``equipment_id``, ``work_center``,
        ``area``, ``site``, ``enterprise``, and ``d0``, ``d1`` (the data extent [ms]: equipment without a
        calendar is scheduled over ``[d0, d1)``).
    tl : Timeline
    scopes : str, optional
        A relation whose columns ``entity_id``, ``equipment_id``, ``work_center``, ``area``, ``site`` and
        ``enterprise`` hold every scope of ``eq`` (its entity table): only their entries are read.

    Returns
    -------
    pot : (start, end), arrays of int64
        Disjoint segments in increasing order on the composite axis: shift time minus holidays.
    pdl : (start, end, rank), arrays of int64
        Disjoint segments of planned downtime; rank 0 planned maintenance (planned_downtime), 1 break.
    has_calendar : array of bool, shape (len(eq),)
        Per row of ``eq``: whether any calendar entry applies.
    """
    where = "TRUE" if scopes is None else f"""scope IN (SELECT unnest([entity_id, equipment_id, work_center, area,
                                                                   site, enterprise]) FROM {scopes})"""
    # whether a scope has entries, and shift entries, at all (not only inside the band: a scope with entries
    # elsewhere is under a calendar, not scheduled over its data extent)
    scoped: set[str] = set()
    shift_scopes: set[str] = set()
    for sc, has_shift in con.execute(f"SELECT scope, bool_or(kind = 'shift') FROM calendar WHERE {where} "
                                     "GROUP BY scope").fetchall():
        scoped.add(sc)
        if has_shift:
            shift_scopes.add(sc)
    # the entries that reach into the band (the others are clipped to nothing, and an entry's precedence acts
    # instant by instant): a window of days reads its days' entries, not a year's
    entries = con.execute(f"""SELECT scope, {floor_ms("start")} AS s, {floor_ms('"end"')} AS e, kind
                              FROM calendar WHERE {where} AND {floor_ms('"end"')} > {int(tl.t0)}
                              AND {floor_ms("start")} < {int(tl.t1)} ORDER BY scope""").fetchnumpy()
    scope = np.asarray(entries["scope"], dtype=object)
    es, ee = np.asarray(entries["s"], np.int64), np.asarray(entries["e"], np.int64)
    kind = np.asarray(entries["kind"], dtype=object)
    eq_key = eq["key"].to_numpy(np.int64)
    chains: list[Chain] = list(eq[["equipment_id", *LEVELS[1:]]].itertuples(index=False, name=None))
    has_calendar = np.asarray([any(sc in scoped for sc in chain) for chain in chains], np.bool_).reshape(len(eq))
    # pot: shift time minus holidays (rank 0, a holiday, wins); equipment without any calendar entry has one
    # shift over its data extent, and so has equipment whose scopes give no shift entry (around the clock
    # minus the holidays)
    m = (kind == "shift") | (kind == "holiday")
    pot = _layer(tl, eq_key, chains, scope[m], es[m], ee[m], (kind[m] == "shift").astype(np.int8))
    no_shift = np.asarray([has and not any(sc in shift_scopes for sc in chain)
                           for has, chain in zip(has_calendar.tolist(), chains)], np.bool_).reshape(len(eq))
    nc_key, ns_key = eq_key[~has_calendar], eq_key[no_shift]
    nc = (tl.encode(nc_key, eq["d0"].to_numpy(np.int64)[~has_calendar]),
          tl.encode(nc_key, eq["d1"].to_numpy(np.int64)[~has_calendar]), np.ones(nc_key.size, np.int64))
    ns = (tl.encode(ns_key, np.full(ns_key.size, tl.t0)), tl.encode(ns_key, np.full(ns_key.size, tl.t1)),
          np.ones(ns_key.size, np.int64))
    pot_s, pot_e, pot_r = _merge([pot, nc])
    if ns_key.size:  # around the clock, holidays (rank 0) cut out
        pot_s, pot_e, pot_r, _ = resolve(*_merge([(pot_s, pot_e, pot_r), ns]), 2)
    keep = pot_r == 1
    # planned downtime: breaks and planned maintenance (rank 0, maintenance, wins)
    m = (kind == "break") | (kind == "planned_downtime")
    pdl = _layer(tl, eq_key, chains, scope[m], es[m], ee[m], (kind[m] == "break").astype(np.int8))
    return (pot_s[keep], pot_e[keep]), pdl, has_calendar


def _layer(tl: Timeline, eq_key: NDArray[np.int64], chains: list[Chain], scope: NDArray[np.object_],
           s: NDArray[np.int64], e: NDArray[np.int64], rank: NDArray[np.int8]) -> RankedSegments:
    """One layer (two ranks) of entries ``[s, e)`` [ms] booked to ``scope`` (sorted), resolved on the
    timeline of each equipment ``eq_key`` whose scope ``chains`` hold them.

    Equipment with the same scopes share the layer: it is resolved once and laid out on each timeline.
    Equipment with scopes of its own is resolved in one vectorised pass.
    """
    first = np.flatnonzero(np.r_[True, scope[1:] != scope[:-1]]) if scope.size else np.empty(0, np.int64)
    rows_of = dict(zip(scope[first].tolist(), zip(first.tolist(), np.r_[first[1:], scope.size].tolist())))
    groups: dict[Chain, list[int]] = {}
    for key, chain in zip(eq_key.tolist(), chains):
        sig = tuple(dict.fromkeys(sc for sc in chain if sc in rows_of))  # an entry booked twice counts once
        if sig:
            groups.setdefault(sig, []).append(key)
    parts: list[RankedSegments] = []
    one_key: list[NDArray[np.int64]] = []
    one_idx: list[NDArray[np.int64]] = []
    for sig, keys in groups.items():
        idx = np.concatenate([np.arange(*rows_of[sc]) for sc in sig])
        if len(keys) > 1:
            gs, ge, gr, _ = resolve(s[idx], e[idx], rank[idx], 2)
            parts.append(_lay_out(tl, np.asarray(keys, np.int64), gs, ge, gr))
        else:
            one_key.append(np.full(idx.size, keys[0], np.int64))
            one_idx.append(idx)
    if one_key:
        k, idx = np.concatenate(one_key), np.concatenate(one_idx)
        parts.append(resolve(tl.encode(k, s[idx]), tl.encode(k, e[idx]), rank[idx], 2)[:3])
    return _merge(parts)


def _lay_out(tl: Timeline, keys: NDArray[np.int64], s: NDArray[np.int64], e: NDArray[np.int64], r: NDArray[np.int64]
             ) -> RankedSegments:
    """Segments ``[s, e)`` [ms] with ranks ``r``, laid out on the timeline of each of ``keys`` (clipped to its
    band, as :meth:`Timeline.encode` clips; segments left empty are dropped)."""
    s, e = np.clip(s, tl.t0, tl.t1), np.clip(e, tl.t0, tl.t1)
    m = e > s
    base = (keys * tl.span - tl.t0)[:, None]
    return (base + s[m]).ravel(), (base + e[m]).ravel(), np.tile(r[m].astype(np.int64), keys.size)


def _merge(parts: list[RankedSegments]) -> RankedSegments:
    """(start, end, rank) parts on disjoint timelines as one set of segments in increasing order."""
    parts = [p for p in parts if p[0].size]
    if not parts:
        z = np.empty(0, np.int64)
        return z, z, z
    if len(parts) == 1:
        return parts[0]
    s, e, r = (np.concatenate([p[i] for p in parts]) for i in range(3))
    order = np.argsort(s, kind="stable")
    return s[order], e[order], r[order]
