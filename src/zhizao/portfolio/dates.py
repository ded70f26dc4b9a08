"""Register dates and the register's time zone.

A project's start, its end of commissioning, a status transition and a designation's date are calendar dates
of the programme office (``DATE`` in the store), not instants: 2021-01-01 stays 2021-01-01, is counted in
2021 and shown as 2021年1月1日, whatever zone the plant's equipment data are in.

The register has a time zone (default ``Asia/Shanghai``; per store with ``zhizao register timezone ZONE``, per
programme in column ``timezone`` of table ``programmes``). It is used only where an instant meets a date:

- a time stamp with an offset in a file (``2020-12-31T16:00:00Z``) is the date it has in the register's zone
  (2021-01-01 in Shanghai); a naive time stamp is read as local and keeps its date;
- a filter bound: ``--from/--to`` select dates ``d`` with ``from <= t(d) < to``, where ``t(d)`` is the start
  of ``d`` (00:00) in the register's zone; naive bounds are local times of that zone, bounds with an offset
  instants. ``--from 2021-01-01 --to 2022-01-01`` are the dates of 2021;
- the verification windows of a project start at its dates' 00:00 in the plant's zone (the zone of its
  scope's equipment), since they cut shop-floor data.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from zhizao.errors import InputError
from zhizao.messages import define

DEFAULT_ZONE = "Asia/Shanghai"
SETTINGS_DDL = """CREATE TABLE IF NOT EXISTS register_settings (
    key VARCHAR NOT NULL, value VARCHAR, changed_at TIMESTAMPTZ DEFAULT current_timestamp)"""

BAD_ZONE = define("register.bad_zone", "%(zone)s is not an IANA time zone (e.g. Asia/Shanghai)")
BAD_DATE = define("register.bad_date", "%(value)s is not a date (YYYY-MM-DD, YYYY/MM/DD, YYYY年M月D日 or an "
                                       "ISO 8601 time stamp)")
BAD_BOUND = define("register.bad_bound", "%(name)s = %(value)s is not a date or an ISO 8601 time stamp")

_CN = re.compile(r"^\s*(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?\s*$")
_SLASH = re.compile(r"^\s*(\d{4})[/.](\d{1,2})[/.](\d{1,2})\s*$")
_COMPACT = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")
_OFFSET = re.compile(r"(Z|z|[+-]\d{2}(:?\d{2})?)$")


def check_zone(zone: str) -> str:
    """``zone`` if it is an IANA time zone; else :class:`zhizao.errors.InputError`."""
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InputError(BAD_ZONE(zone=str(zone))) from None
    return str(zone)


def ensure_settings(con) -> None:
    con.execute(SETTINGS_DDL)


def store_zone(con) -> str:
    """The register's time zone of the store (default :data:`DEFAULT_ZONE`)."""
    try:
        row = con.execute("SELECT value FROM register_settings WHERE key = 'timezone' "
                          "ORDER BY changed_at DESC LIMIT 1").fetchone()
    except Exception:
        return DEFAULT_ZONE
    return row[0] if row and row[0] else DEFAULT_ZONE


def programme_zones(con) -> dict[str, str]:
    """programme_id -> its register zone, for the programmes that set one."""
    try:
        rows = con.execute("SELECT programme_id, timezone FROM programmes WHERE timezone IS NOT NULL").fetchall()
    except Exception:
        return {}
    return {p: z for p, z in rows if z}


def zone_of(con, programme: str | None = None) -> str:
    """The register zone of a programme's records (its own zone, else the store's)."""
    if programme:
        z = programme_zones(con).get(programme)
        if z:
            return z
    return store_zone(con)


def parse_date(value, zone: str = DEFAULT_ZONE) -> dt.date | None:
    """A register date from text (see the module docstring); None for an empty value.

    Parameters
    ----------
    value : str, datetime.date, datetime.datetime, pandas.Timestamp or None
    zone : str
        The register's zone, for time stamps with an offset.

    Raises
    ------
    zhizao.errors.InputError
        For text that is no date.
    """
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp):
        if value is pd.NaT:
            return None
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(ZoneInfo(zone)).date()
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not text:
        return None
    for rx in (_CN, _SLASH, _COMPACT):
        m = rx.match(text)
        if m:
            try:
                return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                raise InputError(BAD_DATE(value=text)) from None
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        t = dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise InputError(BAD_DATE(value=text)) from None
    return parse_date(t, zone)


def day_start(d: dt.date, zone: str) -> pd.Timestamp:
    """The instant (UTC) at which date ``d`` begins in ``zone``."""
    return pd.Timestamp(dt.datetime.combine(d, dt.time(0)), tz=zone).tz_convert("UTC")


def bound_date(value, zone: str, name: str = "bound") -> dt.date | None:
    """The first date ``d`` with ``t(d) >= value`` (see the module docstring); None for no bound.

    ``dates >= bound_date(from)`` and ``dates < bound_date(to)`` select ``from <= t(d) < to``.

    Raises
    ------
    zhizao.errors.InputError
        For a value that is neither a date nor a time stamp.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        t = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        t = None
    if t is None or t is pd.NaT:
        try:
            return parse_date(value, zone)
        except InputError:
            raise InputError(BAD_BOUND(name=name, value=str(value))) from None
    if t.tzinfo is not None:
        t = t.tz_convert(zone).tz_localize(None)
    d = t.date()
    return d if t == pd.Timestamp(d) else d + dt.timedelta(days=1)


def in_dates(dates, lo: dt.date | None, hi: dt.date | None) -> pd.Series:
    """Boolean mask of ``lo <= date < hi`` over a series of dates (null dates are outside any bound)."""
    s = pd.Series(dates)
    mask = pd.Series(True, index=s.index)
    if lo is None and hi is None:
        return mask
    d = pd.to_datetime(s, errors="coerce")
    if lo is not None:
        mask &= d >= pd.Timestamp(lo)
    if hi is not None:
        mask &= d < pd.Timestamp(hi)
    return mask.fillna(False).astype(bool)


def today(zone: str = DEFAULT_ZONE) -> dt.date:
    """Today's date in ``zone``."""
    return dt.datetime.now(ZoneInfo(zone)).date()


__all__ = [
    "DEFAULT_ZONE",
    "bound_date",
    "check_zone",
    "day_start",
    "ensure_settings",
    "in_dates",
    "parse_date",
    "programme_zones",
    "store_zone",
    "today",
    "zone_of",
]
