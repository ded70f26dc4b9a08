"""Time buckets (hour, day, week, month, all) in the plant's IANA time zone.

Bucket edges are local wall-clock boundaries converted to UTC instants, so a day in a zone with daylight
saving time lasts 23 h or 25 h of elapsed time, and a week starts on Monday 00:00 local time (ISO 8601).
Shift buckets come from calendar entries and are built by the elements stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TypeAlias

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from zhizao.errors import InputError
from zhizao.kpi.intervals import MS
from zhizao.messages import define

UNKNOWN_PERIOD = define("kpi.unknown_period", "unknown period '%(period)s'; one of hour, shift, day, week, month, all")

_FREQ = {"hour": "h", "day": "D", "week": "W-MON", "month": "MS"}
#: A time stamp as :class:`pandas.Timestamp` reads it: ISO 8601 text, a datetime (a pandas.Timestamp is one), a
#: date (its midnight) or a numpy.datetime64; without an offset it is UTC. ``date`` covers ``datetime``.
TimeStamp: TypeAlias = str | date | np.datetime64


@dataclass(frozen=True)
class ReadingTime:
    """The ``end`` of a query over the default range read at instant ``ms`` [ms since the Unix epoch, UTC]:
    whole buckets around the data as without an end, except that the last bucket, where the reading time falls
    inside it after the latest record, ends at the reading time. The rest of that bucket has not happened yet:
    counted, a calendar's shift after the reading time would be planned busy time nobody reported (unaccounted),
    and a plant's OEE would fall through the day however well it ran (docs/reference/iso22400.md, "Query
    range"). Pass it where a query has no range of its own and the figures are read now (the dashboard, the
    API, ``zhizao kpi`` without ``--from``/``--to``).

    Examples
    --------
    >>> str(ReadingTime(utc_ms("2026-12-05T10:37:00Z")))
    'reading time 2026-12-05T10:37:00Z'
    """

    ms: int

    def __str__(self) -> str:
        t = pd.Timestamp(self.ms * 1_000_000, tz="UTC")
        return "reading time " + str(t.strftime("%Y-%m-%dT%H:%M:%S")) + "Z"

    @classmethod
    def now(cls, resolution_s: int = 60) -> ReadingTime:
        """The current instant floored to ``resolution_s`` seconds (a minute: results read within one minute are
        the same and can be cached as one)."""
        import time

        step = resolution_s * 1000
        return cls(int(time.time() * 1000) // step * step)


#: The ``end`` of a query: an instant, or the reading time of a query over the default range.
QueryEnd: TypeAlias = TimeStamp | ReadingTime


def default_end(end: object) -> bool:
    """Whether a query's ``end`` asks for the default range (None, or a :class:`ReadingTime`)."""
    return end is None or isinstance(end, ReadingTime)


def utc_ms(ts: TimeStamp) -> int:
    """Milliseconds since the Unix epoch of a time stamp; a naive one is read as UTC.

    Examples
    --------
    >>> utc_ms("1970-01-01 00:00:01")
    1000
    >>> utc_ms(pd.Timestamp("1970-01-01 08:00", tz="Asia/Shanghai"))
    0
    """
    t = pd.Timestamp(ts)
    return int((t.tz_convert("UTC") if t.tzinfo else t.tz_localize("UTC")).value // 1_000_000)


def floor_local(t: pd.Timestamp, period: str, tz: str) -> pd.Timestamp:
    """The start of the ``period`` bucket containing instant ``t``, in zone ``tz``.

    Parameters
    ----------
    t : pandas.Timestamp
        A tz-aware instant.
    period : {'hour', 'day', 'week', 'month'}
    tz : str
        IANA time zone name.

    Returns
    -------
    pandas.Timestamp
        tz-aware (in ``tz``).
    """
    lt = t.tz_convert(tz)
    if period == "hour":
        # local hours: floor the wall clock, then re-attach the zone (ambiguous hours keep t's offset)
        wall = lt.tz_localize(None).floor("h")
        return wall.tz_localize(tz, ambiguous=bool(lt.dst()), nonexistent="shift_backward")
    day = lt.tz_localize(None).normalize()
    if period == "week":
        day = day - pd.Timedelta(days=day.weekday())
    elif period == "month":
        day = day.replace(day=1)
    elif period != "day":
        raise ValueError(f"no calendar floor for period {period!r}")
    # midnight may not exist in a few zones (DST at 00:00): take the first instant of the local day
    return day.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")


def bucket_edges(start_ms: int, end_ms: int, period: str, tz: str) -> NDArray[np.int64]:
    """Edges of the ``period`` buckets that cover ``[start, end)``, clipped to it.

    Parameters
    ----------
    start_ms, end_ms : int
        Query range [ms since the Unix epoch, UTC], ``start_ms < end_ms``.
    period : {'hour', 'day', 'week', 'month', 'all'}
    tz : str
        IANA time zone of the plant.

    Returns
    -------
    numpy.ndarray of int64, shape (n + 1,)
        Increasing edges [ms]; the first is ``start_ms`` and the last ``end_ms``. Bucket ``i`` is
        ``[edges[i], edges[i+1])``.

    Raises
    ------
    ValueError
        For an unknown period.
    """
    if period == "all":
        return np.array([start_ms, end_ms], dtype=np.int64)
    if period not in _FREQ:
        raise InputError(UNKNOWN_PERIOD, period=period)
    a = pd.Timestamp(start_ms * 1_000_000, tz="UTC")
    b = pd.Timestamp(end_ms * 1_000_000, tz="UTC")
    first = floor_local(a, period, tz)
    if period == "hour":
        # hours are 3600 s apart in elapsed time, aligned to the local wall clock (also in +05:30 zones)
        edges = pd.date_range(first.tz_convert("UTC"), b, freq="h")
    else:
        local_days = pd.date_range(first.tz_localize(None), b.tz_convert(tz).tz_localize(None)
                                   + pd.Timedelta(days=32), freq=_FREQ[period])
        local_days = local_days[local_days >= first.tz_localize(None)]
        edges = local_days.tz_localize(tz, ambiguous=True, nonexistent="shift_forward").tz_convert("UTC")
    ms = (edges.as_unit("ns").asi8 // 1_000_000).astype(np.int64)
    ms = ms[(ms > start_ms) & (ms < end_ms)]
    return np.concatenate([[start_ms], ms, [end_ms]]).astype(np.int64)


def default_range(t_min_ms: int, t_max_ms: int, period: str, tz: str, reading_ms: int | None = None
                  ) -> tuple[int, int]:
    """Whole buckets covering the data: ``[floor(t_min), ceil(t_max))`` for ``period`` in ``tz`` [ms], the last
    one cut at ``reading_ms`` (:class:`ReadingTime`) when that falls inside it after ``t_max``.

    Examples
    --------
    >>> d = default_range(utc_ms("2026-12-05T01:00Z"), utc_ms("2026-12-05T02:30Z"), "day", "Asia/Shanghai")
    >>> [str(pd.Timestamp(x * 1_000_000, tz="UTC")) for x in d]
    ['2026-12-04 16:00:00+00:00', '2026-12-05 16:00:00+00:00']
    >>> c = default_range(utc_ms("2026-12-05T01:00Z"), utc_ms("2026-12-05T02:30Z"), "day", "Asia/Shanghai",
    ...                   utc_ms("2026-12-05T02:37Z"))
    >>> str(pd.Timestamp(c[1] * 1_000_000, tz="UTC"))
    '2026-12-05 02:37:00+00:00'
    """
    p = "day" if period in ("all", "shift") else period
    a = floor_local(pd.Timestamp(t_min_ms * 1_000_000, tz="UTC"), p, tz)
    b = floor_local(pd.Timestamp(t_max_ms * 1_000_000, tz="UTC"), p, tz)
    end = pd.Timestamp(t_max_ms * 1_000_000, tz="UTC")
    if b.tz_convert("UTC") < end:
        # the next bucket start after b
        e = bucket_edges(int(b.value // 1_000_000), int(b.value // 1_000_000) + 40 * 86400 * MS, p, tz)
        b_ms = int(e[1])
    else:
        b_ms = int(b.value // 1_000_000)
    a_ms = int(a.value // 1_000_000)
    if reading_ms is not None and t_max_ms <= reading_ms < b_ms and reading_ms > a_ms:
        b_ms = reading_ms
    return a_ms, b_ms
