"""Interval algebra: the one place where time intervals are merged, clipped, overlaid and bucketed.

All intervals are half-open, ``[start, end)``, on an integer time line. To process many timelines (one per
equipment) in one vectorised pass, each timeline ``k`` is laid out in its own band of a single int64 axis:
``t' = k * span + (t - t0)`` (see :class:`Timeline`). An interval never leaves its band, so sorting and
searching the single axis sorts and searches every timeline at once.

Times are integer milliseconds since the Unix epoch (UTC); durations come out in milliseconds and are
converted to seconds by the caller. Nothing here rounds, caps or drops time silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

MS = 1000  # milliseconds per second


@dataclass(frozen=True)
class Timeline:
    """Lays out ``n_keys`` timelines in disjoint bands of one int64 axis.

    Parameters
    ----------
    t0, t1 : int
        Earliest and latest time [ms since epoch] that any interval may touch.
    n_keys : int
        Number of timelines (equipment or other entities).

    Raises
    ------
    OverflowError
        If the bands do not fit into int64 (more than ~14 million keys over ten years).
    """

    t0: int
    t1: int
    n_keys: int

    def __post_init__(self) -> None:
        if self.n_keys * self.span >= 2**62:
            raise OverflowError(f"{self.n_keys} timelines of {self.span} ms do not fit into int64; "
                                "process the equipment in smaller batches")

    @property
    def span(self) -> int:
        # one spare millisecond keeps the end of one band from touching the start of the next
        return int(self.t1 - self.t0 + 2)

    def encode(self, key: NDArray[np.int64], t: NDArray[np.int64], lo: int | None = None,
               hi: int | None = None) -> NDArray[np.int64]:
        """Composite positions of times ``t`` [ms] on timelines ``key``, with ``t`` clipped to ``[lo, hi]``
        (default: the band, ``[t0, t1]``)."""
        lo = self.t0 if lo is None else max(lo, self.t0)
        hi = self.t1 if hi is None else min(hi, self.t1)
        out: NDArray[np.int64] = np.multiply(key, self.span, dtype=np.int64)
        out += np.clip(t, lo, hi) - self.t0
        return out

    def decode(self, ct: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Inverse of :meth:`encode`: ``(key, t [ms])``."""
        ct = np.asarray(ct, dtype=np.int64)
        return ct // self.span, ct % self.span + self.t0


@overload
def unique_points(t: ArrayLike, return_inverse: Literal[False] = False) -> NDArray[np.int64]: ...


@overload
def unique_points(t: ArrayLike, return_inverse: Literal[True]) -> tuple[NDArray[np.int64], NDArray[np.int64]]: ...


def unique_points(t: ArrayLike, return_inverse: bool = False
                  ) -> NDArray[np.int64] | tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Sorted distinct values of int64 ``t`` (and, optionally, each value's index among them).

    The same as ``numpy.unique`` but by sorting, which for millions of int64 time points is several times
    faster than numpy's hash-based unique.
    """
    t = np.asarray(t, dtype=np.int64)
    order = np.argsort(t, kind="stable") if return_inverse else None
    st = t[order] if return_inverse else np.sort(t)
    change = np.empty(st.size, dtype=bool)
    change[:1] = True
    np.not_equal(st[1:], st[:-1], out=change[1:])
    points = st[change]
    if not return_inverse:
        return points
    inv = np.empty(t.size, dtype=np.int64)
    inv[order] = np.cumsum(change) - 1
    return points, inv


def is_sorted(t: NDArray[Any]) -> bool:
    """True if ``t`` is non-decreasing (one linear pass; cheaper than sorting sorted data)."""
    return bool(t.size < 2 or np.all(t[1:] >= t[:-1]))


def resolve(start: ArrayLike, end: ArrayLike, rank: ArrayLike, n_ranks: int
            ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], int]:
    """Turn possibly overlapping ranked intervals into disjoint segments.

    Where intervals overlap, the lowest rank wins (rank 0 is the highest precedence); intervals of the same
    rank are united (the overlap counts once). Adjacent segments of equal rank are merged, so each output
    segment is a maximal run of one rank.

    Parameters
    ----------
    start, end : array of int64, shape (n,)
        Interval bounds on one (composite) time axis; intervals with ``end <= start`` are ignored.
    rank : array of int, shape (n,)
        Rank of each interval, ``0 <= rank < n_ranks``.
    n_ranks : int

    Returns
    -------
    seg_start, seg_end : array of int64, shape (m,)
        Disjoint segments in increasing order.
    seg_rank : array of int64, shape (m,)
        The winning rank of each segment. When the input intervals already are such segments (non-empty,
        in order, disjoint, no touching neighbours of equal rank), the three are the inputs themselves (as
        int64 arrays), not copies.
    overlap : int
        Total time covered by more than one input interval (double counting that was avoided).
    """
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    rank = np.asarray(rank, dtype=np.int64)
    ok = end > start
    if not ok.all():
        start, end, rank = start[ok], end[ok], rank[ok]
    empty = np.empty(0, dtype=np.int64)
    if start.size == 0:
        return empty, empty, empty, 0
    if is_sorted(start):
        s, e, r = start, end, rank  # already in order (states come sorted by equipment and time)
    else:
        order = np.argsort(start, kind="stable")
        s, e, r = start[order], end[order], rank[order]
    if np.all(e[:-1] <= s[1:]):
        # the common case (a state lasts until the next one): nothing overlaps, so the intervals are the
        # segments; only neighbours of equal rank that touch are merged into one run
        new_run = np.ones(s.size, dtype=bool)
        np.not_equal(r[1:], r[:-1], out=new_run[1:])
        new_run[1:] |= s[1:] != e[:-1]
        if new_run.all():
            return s, e, r, 0
        first = np.flatnonzero(new_run)
        run_end = np.empty(first.size, dtype=np.int64)  # the end of each run's last interval
        np.take(e, first[1:] - 1, out=run_end[:-1])
        run_end[-1] = e[-1]
        return s[first], run_end, r[first], 0
    t = np.concatenate([start, end])
    r = np.concatenate([rank, rank])
    d = np.concatenate([np.ones(start.size, np.int64), -np.ones(end.size, np.int64)])
    points, inv = unique_points(t, return_inverse=True)
    counts = np.bincount(inv * n_ranks + r, weights=d, minlength=points.size * n_ranks)
    active = np.cumsum(counts.reshape(points.size, n_ranks), axis=0)[:-1]  # state on [p_i, p_i+1)
    dur = np.diff(points)
    covered = active > 0.5
    anyc = covered.any(axis=1)
    win = np.where(anyc, covered.argmax(axis=1), -1)
    overlap = int((dur * (active.sum(axis=1) > 1.5)).sum())
    # maximal runs of equal rank (gaps, rank -1, separate runs and are dropped)
    seg_s, seg_e = points[:-1], points[1:]
    change = np.ones(win.size, dtype=bool)
    change[1:] = win[1:] != win[:-1]
    first = np.flatnonzero(change)
    last = np.r_[first[1:] - 1, win.size - 1]
    rs, re_, rr = seg_s[first], seg_e[last], win[first]
    keep = rr >= 0
    return rs[keep], re_[keep], rr[keep], overlap


def locate(seg_start: NDArray[np.int64], seg_end: NDArray[np.int64], t: ArrayLike) -> NDArray[np.int64]:
    """Index of the segment containing each time ``t`` (half-open), or -1.

    Parameters
    ----------
    seg_start, seg_end : array of int64, shape (m,)
        Disjoint segments in increasing order.
    t : array of int64, shape (n,)

    Returns
    -------
    array of int64, shape (n,)
    """
    t = np.asarray(t, dtype=np.int64)
    if seg_start.size == 0:
        return np.full(t.shape, -1, dtype=np.int64)
    i = np.searchsorted(seg_start, t, side="right") - 1
    inside = (i >= 0) & (t < seg_end[np.clip(i, 0, None)])
    return np.where(inside, i, -1)


def take(values: NDArray[Any], idx: ArrayLike, fill: ArrayLike) -> NDArray[Any]:
    """``values[idx]`` where ``idx >= 0``, else ``fill`` (also for an empty ``values``)."""
    idx = np.asarray(idx, dtype=np.int64)
    if values.size == 0:
        return np.full(idx.shape, fill, dtype=np.asarray(fill).dtype if values.dtype == object else values.dtype)
    return np.where(idx >= 0, values[np.clip(idx, 0, None)], fill)


def overlay(bounds: list[NDArray[np.int64]], layers: list[tuple[NDArray[np.int64], NDArray[np.int64]]]
            ) -> tuple[NDArray[np.int64], NDArray[np.int64], list[NDArray[np.int64]]]:
    """Cut the time axis at every boundary of several segment layers and locate each piece in each layer.

    Parameters
    ----------
    bounds : list of arrays of int64
        Extra cut points (may be empty).
    layers : list of (seg_start, seg_end)
        Each a set of disjoint segments in increasing order.

    Returns
    -------
    piece_start, piece_end : array of int64, shape (p,)
        Consecutive pieces between all cut points.
    where : list of arrays of int64, shape (p,)
        For each layer, the index of its segment that contains the piece, or -1.
    """
    pts = unique_points(np.concatenate([*bounds, *(x for s, e in layers for x in (s, e))]))
    ps, pe = pts[:-1], pts[1:]
    return ps, pe, [locate(s, e, ps) for s, e in layers]


def last_covering(start: NDArray[np.int64], end: NDArray[np.int64], t: ArrayLike) -> NDArray[np.int64]:
    """Index of the last interval that covers each time ``t``: the largest ``i`` with ``start[i] <= t < end[i]``,
    or -1 where none does.

    Parameters
    ----------
    start, end : array of int64, shape (n,)
        Half-open intervals, sorted by ``start`` (the order among equal starts is the caller's priority: the later
        wins); they may overlap and nest.
    t : array of int64, shape (m,)

    Returns
    -------
    array of int64, shape (m,)

    Notes
    -----
    Where the last interval started at or before ``t`` covers it, that is the answer (the common case: intervals
    that do not overlap). The other times are answered by a segment tree over the cells between the bounds of
    the intervals that cover any of them: each interval sets the maximum of its index on the O(log n) nodes of
    its cell range, a time's answer is the maximum on the path from its cell to the root; O((n + m) log n) time,
    O(n) memory, whatever the nesting.

    Examples
    --------
    >>> last_covering(np.array([0, 10, 12]), np.array([100, 20, 15]), np.array([5, 11, 13, 16, 50, 100]))
    array([ 0,  1,  2,  1,  0, -1])
    """
    t = np.asarray(t, dtype=np.int64)
    if start.size == 0:
        return np.full(t.shape, -1, np.int64)
    i = np.searchsorted(start, t, side="right") - 1
    out = np.where((i >= 0) & (t < end[np.clip(i, 0, None)]), i, -1)
    miss = np.flatnonzero((out < 0) & (i >= 0))
    if not miss.size:
        return out
    tm = np.sort(t[miss])
    cand = np.flatnonzero(np.searchsorted(tm, end, side="left") > np.searchsorted(tm, start, side="left"))
    if not cand.size:
        return out
    s, e = start[cand], end[cand]
    pts = unique_points(np.concatenate([s, e]))
    size = 1 << int(pts.size - 1).bit_length()  # leaves: one per cell, and more
    tree = np.full(2 * size, -1, np.int64)
    lo = np.searchsorted(pts, s) + size
    hi = np.searchsorted(pts, e) + size
    v = cand
    while lo.size:
        m = lo < hi
        lo, hi, v = lo[m], hi[m], v[m]
        odd = (lo & 1).astype(bool)
        np.maximum.at(tree, lo[odd], v[odd])
        lo = lo + odd
        odd = (hi & 1).astype(bool)
        hi = hi - odd
        np.maximum.at(tree, hi[odd], v[odd])
        lo >>= 1
        hi >>= 1
    tq = t[miss]
    cell = np.searchsorted(pts, tq, side="right") - 1
    inside = (cell >= 0) & (cell < pts.size - 1)
    node = np.where(inside, cell, 0) + size
    best = np.full(miss.size, -1, np.int64)
    while True:
        np.maximum(best, tree[node], out=best)
        if node[0] <= 1:  # every node is on the same level
            break
        node >>= 1
    out[miss] = np.where(inside, best, -1)
    return out


def split_over(start: ArrayLike, end: ArrayLike, seg_start: NDArray[np.int64], seg_end: NDArray[np.int64],
               length: ArrayLike | None = None) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Split intervals over disjoint segments in proportion to the overlap.

    An interval that covers a segment partly contributes the overlapping fraction of its length; time of the
    interval outside every segment is not assigned. Zero-length intervals (``start == end``) are points and go
    wholly to the segment that contains them.

    Parameters
    ----------
    start, end : array of int64, shape (n,)
    seg_start, seg_end : array of int64, shape (m,)
        Disjoint, increasing.
    length : array of float, shape (n,), optional
        True length of each interval, when ``start``/``end`` were clipped to a window (as
        :meth:`Timeline.encode` does): the fraction is the overlap over the true length.

    Returns
    -------
    rec : array of int64, shape (k,)
        Index of the interval.
    seg : array of int64, shape (k,)
        Index of the segment.
    fraction : array of float64, shape (k,)
        Share of the interval's length that lies in the segment (1.0 for points).
    """
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    n = start.size
    if n == 0 or seg_start.size == 0:
        z = np.empty(0, dtype=np.int64)
        return z, z, np.empty(0)
    point = end <= start
    # candidate segments: from the one containing (or following) start to the one before end
    lo = np.searchsorted(seg_end, start, side="right")
    hi = np.searchsorted(seg_start, np.where(point, start + 1, end), side="left")
    cnt = np.maximum(hi - lo, 0)
    if np.all(cnt == 1):
        # the common case: every interval meets one segment; no need to repeat the intervals
        rec, seg, s, e, pt = np.arange(n), lo, start, end, point
        length = (e - s).astype(np.float64) if length is None else np.asarray(length, np.float64)
    else:
        rec = np.repeat(np.arange(n), cnt)
        offs = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        seg = lo[rec] + offs
        s, e, pt = start[rec], end[rec], point[rec]
        length = (e - s).astype(np.float64) if length is None else np.asarray(length, np.float64)[rec]
    ss, se = seg_start[seg], seg_end[seg]
    ov = np.minimum(e, se) - np.maximum(s, ss)
    inside_pt = pt & (s >= ss) & (s < se)
    frac = np.where(pt, inside_pt.astype(np.float64), ov / np.where(length > 0, length, 1.0))
    keep = np.where(pt, inside_pt, ov > 0)
    if keep.all():
        return rec, seg, frac
    return rec[keep], seg[keep], frac[keep]


def time_between(seg_start: NDArray[np.int64], seg_end: NDArray[np.int64], seg_rank: ArrayLike, n_ranks: int,
                 cuts: ArrayLike) -> NDArray[np.float64]:
    """Time of each rank of disjoint ranked segments inside each window between consecutive cut points.

    With ``F_r(t)`` the time of rank ``r`` before ``t`` (a prefix sum over the segments), the time inside
    ``[cuts[k], cuts[k+1])`` is ``F_r(cuts[k+1]) - F_r(cuts[k])``: the segments that start inside the window,
    plus the part of the segment running into the window from before, minus the part of the window's last
    segment that runs beyond it. Exact (integer milliseconds in float64), without cutting the segments: this
    is how the engine intersects millions of state segments with the few calendar and bucket windows, with
    one search of the cuts among the segments and one weighted count of the segments per window.

    Parameters
    ----------
    seg_start, seg_end : array of int64, shape (m,)
        Disjoint segments in increasing order (as returned by :func:`resolve`).
    seg_rank : array of int, shape (m,)
        Rank of each segment, ``0 <= rank < n_ranks``.
    n_ranks : int
    cuts : array of int64, shape (p + 1,)
        Window bounds, in non-decreasing order.

    Returns
    -------
    array of float64, shape (p, n_ranks)
        Whole numbers (time in the units of the axis); zero rows for ``p = 0``.
    """
    t = np.asarray(cuts, dtype=np.int64)
    seg_rank = np.asarray(seg_rank, dtype=np.int64)
    p, m = max(t.size - 1, 0), seg_start.size
    if m == 0 or p == 0:
        return np.zeros((p, n_ranks))
    j = np.searchsorted(seg_start, t, side="right")  # segments starting at or before t[k]
    # window k collects the segments i with j[k] <= i < j[k+1] (they start inside it); segments before the
    # first cut or after the last one fall into the extra blocks 0 and p + 1, which are dropped
    cell = np.repeat(np.arange(0, (p + 2) * n_ranks, n_ranks), np.diff(j, prepend=0, append=m))
    cell += seg_rank  # (window block, rank)
    out = np.bincount(cell, weights=seg_end - seg_start, minlength=(p + 2) * n_ranks).reshape(p + 2, n_ranks)[1:-1]
    # the last segment starting at or before t[k] may run beyond it: its part after t[k] belongs to the
    # windows after t[k], not to window k - 1 (the window it was counted in) but to window k
    k = np.flatnonzero(j > 0)
    last = j[k] - 1
    beyond = np.maximum(seg_end[last] - t[k], 0).astype(np.float64)
    r = seg_rank[last]
    before = k >= 1  # window k - 1 exists (one entry per window: plain fancy assignment is exact)
    out[k[before] - 1, r[before]] -= beyond[before]
    inside = k < p  # window k exists
    out[k[inside], r[inside]] += beyond[inside]
    return out  # type: ignore[return-value]  # numpy types bincount as intp; with weights it is float64


@dataclass(frozen=True)
class Split:
    """How records fall into segments (see :func:`split_timelines`).

    Piece ``i`` of record ``rec[i]`` lies in segment ``seg[i]`` with the share ``frac[i]`` of the record;
    ``rec`` and ``frac`` are None when every record lies whole inside one segment, ``seg[i]`` being record
    ``i``'s (the usual case, which needs no gathers and no fractions).
    """

    rec: NDArray[np.int64] | None
    seg: NDArray[np.int64]
    frac: NDArray[np.float64] | None

    def sums(self, x: ArrayLike, n_segments: int) -> NDArray[np.float64]:
        """Per segment, the sum of the records' values ``x`` (shape (n_records,)) in proportion to the shares;
        float64, shape (n_segments,)."""
        x = np.asarray(x, dtype=np.float64)
        return np.bincount(self.seg, weights=x if self.rec is None else self.frac * x[self.rec],  # type: ignore[return-value]  # numpy types bincount as intp; with weights it is float64
                           minlength=n_segments)

    def touched(self, n_segments: int) -> NDArray[np.bool_]:
        """Per segment, whether any record lies (partly) in it; bool, shape (n_segments,)."""
        return np.bincount(self.seg, minlength=n_segments)[:n_segments] > 0


def split_timelines(tl: Timeline, key: NDArray[np.int64], start: ArrayLike, end: ArrayLike,
                    seg_start: NDArray[np.int64], seg_end: NDArray[np.int64]) -> Split:
    """:func:`split_over` for records ``[start, end)`` [ms] of timelines ``key``: the records are laid out on
    ``tl`` (clipped to its band) and split over the segments ``seg_start, seg_end`` (on the composite axis) in
    proportion to their true, unclipped length. When every record lies whole inside one segment (a record at
    an instant: its instant inside it), one search finds the segments and the shares are all 1."""
    start = np.asarray(start, np.int64)
    end = np.asarray(end, np.int64)
    ps, pe = tl.encode(key, start), tl.encode(key, end)
    if seg_start.size:
        b = np.searchsorted(seg_start, ps, side="right") - 1
        seg_stop = seg_end[np.maximum(b, 0)]
        if np.all((b >= 0) & np.where(pe > ps, pe <= seg_stop, ps < seg_stop)):
            return Split(None, b, None)
    return Split(*split_over(ps, pe, seg_start, seg_end, length=(end - start).astype(np.float64)))
