"""Limits on hostile or broken input: the one place where they are set, documented and configured.

Every input path (``zhizao ingest``, :meth:`zhizao.Workspace.ingest`, server uploads, MQTT and OPC UA
listeners) takes its limits from a :class:`Limits`. The defaults below are generous for real shop-floor data
and small enough that one file, upload or message cannot make the store slow, big or unresponsive for
anybody else. Change them with environment variables (``ZHIZAO_LIMIT_<NAME>``, upper case, e.g.
``ZHIZAO_LIMIT_MAX_COLUMNS=5000``; read by :func:`current`) or in Python
(``zhizao.connect(db, limits=Limits(max_columns=5000))``).

=============================  =================  ==============================================================
limit                          default            what happens past it
=============================  =================  ==============================================================
earliest_time                  1970-01-01         a time stamp before it: quarantine rule ``time_out_of_range``
latest_time                    2100-01-01         a time stamp at or after it: ``time_out_of_range``
max_future_days                7                  a measured record (states, production, energy, labour,
                                                  quality) later than the load time plus this:
                                                  ``time_out_of_range`` (no shop floor measures the future;
                                                  the margin covers wrong clocks and fast simulations)
max_abs_value                  1e15               a number of larger magnitude: ``value_out_of_range``
                                                  (sums of millions of records stay finite)
max_field_bytes                65,536             a canonical field longer than this: ``field_too_long``
max_line_bytes                 1,048,576          a CSV line longer than this: the whole file is refused
                                                  (:class:`zhizao.errors.TooLarge`)
max_columns                    4,096              a file or mapping with more source columns: refused (TooLarge)
max_upload_bytes               200,000,000        an uploaded file larger than this (as sent): refused (413)
max_decompressed_bytes         1,000,000,000      a compressed upload unpacking to more: refused (413)
max_mapping_bytes              1,048,576          a mapping file larger than this: refused
max_upload_seconds             300                an upload's load still running: cancelled, rolled back,
                                                  reported (413), the store's write lock released
max_record_keys                256                a live JSON record with more keys: ``too_many_keys``
max_payload_bytes              4,194,304          a live message larger than this: ``payload_too_large``
max_result_rows                2,000,000          a server query whose equipment rows (machines x buckets, the
                                                  whole elements of a stop-reason or capability query) would
                                                  be more: refused (400), before anything is computed (an
                                                  hourly table of 1,000 machines over a year needs ~24 GB)
=============================  =================  ==============================================================

Times are UTC instants; ``earliest_time`` and ``latest_time`` must lie inside what pandas' nanosecond time
stamps can hold (1677-09-21 .. 2262-04-11), the engine's time axis.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from typing import Any

import pandas as pd

from zhizao.errors import InputError
from zhizao.messages import define

BAD_LIMIT = define("limits.bad_value", "limit %(name)s = %(value)s: %(why)s")
UNKNOWN_LIMIT = define("limits.unknown", "unknown limit %(name)s; limits are %(names)s")

#: tables of measurements: their time stamps cannot lie (much) in the future
MEASURED_TABLES = ("states", "production", "energy", "labour", "quality")

_ENGINE_MIN = pd.Timestamp("1677-09-22", tz="UTC")
_ENGINE_MAX = pd.Timestamp("2262-04-10", tz="UTC")


@dataclass(frozen=True)
class Limits:
    """Input limits (see the module docstring for each one's meaning and effect)."""

    earliest_time: str = "1970-01-01T00:00:00Z"
    latest_time: str = "2100-01-01T00:00:00Z"
    max_future_days: float = 7.0
    max_abs_value: float = 1e15
    max_field_bytes: int = 65_536
    max_line_bytes: int = 1 << 20
    max_columns: int = 4096
    max_upload_bytes: int = 200 * 10**6
    max_decompressed_bytes: int = 10**9
    max_mapping_bytes: int = 1 << 20
    max_upload_seconds: float = 300.0
    max_record_keys: int = 256
    max_payload_bytes: int = 4 << 20
    max_result_rows: int = 2_000_000

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("int", "float"):
                try:
                    num = float(v)
                except (TypeError, ValueError):
                    raise InputError(BAD_LIMIT, name=f.name, value=v, why="not a number") from None
                if not num > 0 or num == float("inf"):
                    raise InputError(BAD_LIMIT, name=f.name, value=v, why="must be a positive finite number")
                object.__setattr__(self, f.name, int(num) if f.type == "int" else num)
        lo, hi = self.time_range()
        if not (_ENGINE_MIN <= lo < hi <= _ENGINE_MAX):
            raise InputError(BAD_LIMIT, name="earliest_time/latest_time", value=f"{lo} .. {hi}",
                             why="must be increasing and inside 1677-09-22 .. 2262-04-10")

    def time_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``(earliest_time, latest_time)`` as UTC time stamps."""
        out = []
        for name in ("earliest_time", "latest_time"):
            try:
                t = pd.Timestamp(getattr(self, name))
            except (ValueError, TypeError, OverflowError):
                raise InputError(BAD_LIMIT, name=name, value=getattr(self, name),
                                 why="not an ISO 8601 time stamp") from None
            out.append(t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC"))
        return out[0], out[1]

    def replace(self, **changes) -> Limits:
        """A copy with ``changes`` (names checked)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise InputError(UNKNOWN_LIMIT, name=", ".join(sorted(unknown)),
                             names=[f.name for f in fields(self)])
        return dataclasses.replace(self, **changes)


def current(environ=None) -> Limits:
    """The limits in force: the defaults, overridden by ``ZHIZAO_LIMIT_<NAME>`` environment variables.

    Raises
    ------
    zhizao.errors.InputError
        An environment variable names an unknown limit or gives a value that is not allowed.
    """
    env = os.environ if environ is None else environ
    changes: dict[str, Any] = {}  # texts: Limits converts and checks them
    names = {f.name for f in fields(Limits)}
    for k, v in env.items():
        if k.startswith("ZHIZAO_LIMIT_"):
            name = k[len("ZHIZAO_LIMIT_"):].lower()
            if name not in names:
                raise InputError(UNKNOWN_LIMIT, name=k, names=sorted(names))
            changes[name] = v
    return Limits(**changes)


__all__ = ["MEASURED_TABLES", "Limits", "current"]
