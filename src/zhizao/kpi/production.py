"""Production records: counts and their products' ideal rates, read as numpy columns, split over buckets.

A production record counts ``produced`` units (of which ``good``, ``scrap`` and ``rework``; a missing
``good`` is produced minus scrap and rework) over ``[start, end)``, or at the instant ``end`` when it has no
start. Its product's ideal production time per unit (``pri``) and value per good unit (``unit_value``) come
from the products table: the entry for the product on this equipment, else the product's general entry
(``equipment_id`` null), each field on its own (reference/iso22400.md, "Quantities").
"""

from __future__ import annotations

from typing import Any, TypeAlias

import duckdb
import numpy as np
from numpy.typing import ArrayLike, NDArray

from zhizao.kpi.columns import enum_codes, enum_sql, epoch_ms, numbers
from zhizao.kpi.intervals import Timeline, is_sorted, split_timelines

#: A row of the products table: product_id, equipment_id (None: the product's general entry), pri, unit_value
ProductRow: TypeAlias = tuple[str, str | None, float | None, float | None]
#: Per equipment key: (earliest time stamp, latest end, first instant after the records) [ms]
Extent: TypeAlias = dict[int, tuple[int, int, int]]


def production_records(con: duckdb.DuckDBPyConnection, equipment_ids: list[str], where: str | None = None
                       ) -> tuple[dict[str, NDArray[Any]], Extent]:
    """The production records of the equipment as numpy columns, and their extent per equipment.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        An open zhizao store (a cursor of its own when called from a worker thread).
    equipment_ids : list of str
        The equipment's ids in key order (the key of ``equipment_ids[k]`` is ``k``); records of other
        equipment are left out.
    where : str, optional
        A condition on the records (table alias ``p``): only those are read (see
        :func:`zhizao.kpi.states.state_records`).

    Returns
    -------
    records : dict of arrays, shape (n,)
        ``key`` (int64), ``s`` and ``e`` (int64, ms since the epoch; ``s == e`` for a count at an instant),
        ``produced``, ``good``, ``scrap``, ``rework`` [units] and ``pri`` [s/unit], ``unit_value``
        (float64, NaN where the products table gives none).
    extent : dict
        Per equipment key with records: ``(earliest time stamp, latest end, first instant after the
        records)`` [ms]; a count at an instant needs 1 ms after its stamp inside a half-open range.
    """
    products: list[ProductRow] = con.execute(
        "SELECT product_id, equipment_id, pri, unit_value FROM products").fetchall()
    names = sorted({p for p, *_ in products})
    product = f"TRY_CAST(p.product_id AS {enum_sql(names)})" if names else "NULL::UTINYINT"
    t = con.sql(f"""
        SELECT TRY_CAST(p.equipment_id AS {enum_sql(equipment_ids)}) AS key,
               coalesce(p.start, p."end") AS s, p."end" AS e, p.produced,
               coalesce(p.good, p.produced - coalesce(p.scrap, 0) - coalesce(p.rework, 0)) AS good,
               coalesce(p.scrap, CASE WHEN p.good IS NOT NULL
                                      THEN p.produced - p.good - coalesce(p.rework, 0) ELSE 0 END) AS scrap,
               coalesce(p.rework, 0) AS rework, {product} AS product
        FROM production p {"WHERE " + where if where else ""}""").to_arrow_table()
    key = enum_codes(t.column("key"), len(equipment_ids))
    code = enum_codes(t.column("product"), len(names)) if names else np.full(len(key), -1, np.int64)
    pr: dict[str, NDArray[Any]] = {"key": key, "s": epoch_ms(t.column("s")), "e": epoch_ms(t.column("e")),
          **{c: numbers(t.column(c)) for c in ("produced", "good", "scrap", "rework")}}
    pr["pri"], pr["unit_value"] = _product_fields(products, names, equipment_ids, key, code)
    known = key >= 0
    if not known.all():
        pr = {c: x[known] for c, x in pr.items()}
    return pr, _extent(pr["key"], pr["s"], pr["e"])


def _product_fields(products: list[ProductRow], names: list[str], equipment_ids: list[str], key: NDArray[np.int64],
                    code: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``pri`` and ``unit_value`` of each record (float64, NaN for none) from its equipment key and product
    code (-1: none): the equipment's own entry of the product where it gives the field, else the general
    entry. ``products``: the products table's rows (product_id, equipment_id, pri, unit_value)."""
    m = len(names)
    pos = {name: i for i, name in enumerate(names)}
    general = np.full((m + 1, 2), np.nan)  # the last row: no product (code -1)
    eq_pos = {e: k for k, e in enumerate(equipment_ids)}
    own_pairs: list[int] = []
    own_rows: list[tuple[float, float]] = []
    for product, equipment, pri, value in products:
        row = (np.nan if pri is None else pri, np.nan if value is None else value)
        if equipment is None:
            general[pos[product]] = row
        elif equipment in eq_pos:
            own_pairs.append(eq_pos[equipment] * (m + 1) + pos[product])
            own_rows.append(row)
    fields = [general[:, f].take(code) for f in (0, 1)]  # code -1: the last row
    if own_pairs:
        order = np.argsort(own_pairs)
        own_pair, own_fields = np.asarray(own_pairs)[order], np.asarray(own_rows, np.float64)[order]
        pair = key * (m + 1) + np.where(code >= 0, code, m)
        i = np.minimum(np.searchsorted(own_pair, pair), own_pair.size - 1)
        hit = own_pair[i] == pair
        for f in (0, 1):
            own = np.where(hit, own_fields[i, f], np.nan)
            fields[f] = np.where(np.isnan(own), fields[f], own)
    return fields[0], fields[1]


def _extent(key: NDArray[np.int64], s: NDArray[np.int64], e: NDArray[np.int64]) -> Extent:
    """Per key: (min s, max e, max of e, or e + 1 where s == e) [ms]."""
    if not key.size:
        return {}
    if not is_sorted(key):
        order = np.argsort(key, kind="stable")
        key, s, e = key[order], s[order], e[order]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    extent = zip(key[first].tolist(), np.minimum.reduceat(s, first).tolist(), np.maximum.reduceat(e, first).tolist(),
                 np.maximum.reduceat(e + (e <= s), first).tolist())
    return {k: (a, b, c) for k, a, b, c in extent}


def production_elements(pr: dict[str, NDArray[Any]], tl: Timeline, bs: NDArray[np.int64], be: NDArray[np.int64],
                        nb: int) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.int64], NDArray[np.bool_]]:
    """Production elements per bucket from the production records.

    Parameters
    ----------
    pr : dict of arrays
        The records as :func:`production_records` returns them.
    tl : Timeline
        The composite axis of the buckets.
    bs, be : array of int64, shape (nb,)
        The buckets on the composite axis (disjoint, increasing).
    nb : int

    Returns
    -------
    elements : dict of float64 arrays, shape (nb,)
        pq, gq, sq, rq [units]; ideal_time, ideal_good_time [s] (pri x pq and pri x gq, of the records
        with a pri); pq_no_pri [units] (produced without a pri); output_value (unit_value x gq). A record
        over an interval is split in proportion to its overlap with each bucket.
    keys : array of int64
        The key of each record (the entities that have production records).
    in_bucket : array of bool, shape (nb,)
        Whether any record lies (partly) in the bucket: where not, the bucket has no count data (null, not 0).
    """
    out: dict[str, NDArray[np.float64]] = {}
    if not len(pr["key"]):
        return out, np.empty(0, np.int64), np.zeros(nb, bool)
    pk = pr["key"].astype(np.int64)
    split = split_timelines(tl, pk, pr["s"], pr["e"], bs, be)
    pri, pq, good, val = pr["pri"], pr["produced"], pr["good"], pr["unit_value"]  # NaN where null

    def addp(name: str, x: ArrayLike) -> None:
        out[name] = split.sums(x, nb)

    addp("pq", pq)
    addp("gq", good)
    addp("sq", pr["scrap"])
    addp("rq", pr["rework"])
    has_pri = ~np.isnan(pri)
    addp("ideal_time", np.where(has_pri, pri * pq, 0.0))
    addp("ideal_good_time", np.where(has_pri, pri * good, 0.0))
    addp("pq_no_pri", np.where(has_pri, 0.0, pq))
    addp("output_value", np.where(np.isnan(val), 0.0, val * good))
    return out, pk, split.touched(nb)
