"""One validated settings object for every stage.

Every value a user or an operator may change lives here, with its unit, its default and the reason for the
default; modules read it from the :class:`Settings` they are given, never from constants of their own. A
section per stage groups its values (engine values are at the top level, as the first settings were).

Settings are immutable and validated when made: a bad value raises :class:`zhizao.errors.InputError` naming
the setting. They can be read from a TOML file (:meth:`Settings.from_file`)::

    minor_stop_threshold = 240          # [s]

    [kgce]
    electricity = 0.1229                # [kgce/kWh]

Adding a setting: add a field with its unit and default to the section of the stage that reads it (or a new
frozen section dataclass, added as a field of :class:`Settings` below), validate it in that section's
``__post_init__``, and pass the :class:`Settings` down to where it is used.

>>> s = Settings(minor_stop_threshold=240)
>>> s.minor_stop_threshold
240.0
>>> Settings(minor_stop_threshold=-1)
Traceback (most recent call last):
...
zhizao.errors.InputError: setting minor_stop_threshold must be a finite number above 0, not -1
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from zhizao.errors import InputError
from zhizao.messages import define

BAD_SETTING = define("settings.bad_value", "setting %(name)s must be %(rule)s, not %(value)s")
UNKNOWN_SETTING = define("settings.unknown", "unknown setting %(name)s; known: %(known)s")
RULE_POSITIVE = define("settings.rule_positive", "a finite number above 0")
RULE_ZONE = define("settings.rule_zone", "an IANA time zone name")
BAD_SETTINGS_FILE = define("settings.bad_file", "cannot read the settings file %(path)s: %(reason)s")

#: Default minor-stop threshold [s]: an unplanned stop shorter than this is a minor stop (reference:
#: docs/reference/iso22400.md, "Minor stops"; ISO 22400-2 leaves the threshold to the user).
MINOR_STOP_THRESHOLD = 300.0
#: Default memory budget of the KPI engine [MiB]: the engine works through the store in partitions of whole
#: equipment sized to stay within it (with DuckDB's buffers), so that a whole zhizao process (interpreter and
#: libraries, about 250 MiB) stays under 2 GiB whatever the store's size (docs/scale.md).
MEMORY_MB = 1536.0


def _positive(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise InputError(BAD_SETTING, name=name, rule=RULE_POSITIVE(), value=repr(value))
    return v


@dataclass(frozen=True)
class Settings:
    """Settings of a workspace (see the module docstring).

    Parameters
    ----------
    minor_stop_threshold : float
        An unplanned-downtime run shorter than this is a minor stop; one of exactly this length is a failure
        [s]. Default 300.
    kgce : mapping of str to float
        Coal-equivalent factors per energy carrier that replace the GB/T 2589-2020 reference factors of
        :data:`zhizao.kpi.energy.DEFAULT_KGCE` [kgce per base unit of the carrier].
    zones : mapping of str to str
        IANA time zone in which a work centre, area, site or enterprise (by id) is bucketed (its hours, days,
        weeks and months). Default: for a group whose equipment spans zones, the zone of most of its
        equipment (docs/reference/iso22400.md, "Time zones and buckets"); otherwise its equipment's zone.
    memory_mb : float
        Memory budget of the KPI engine [MiB], default 1536: the engine computes the elements in partitions of
        whole equipment sized from it (states, counts and buckets per partition) and gives DuckDB a quarter of it
        as its memory limit, so peak memory is bounded whatever the store's size (only a result asked for as
        one table grows with the result: stream large ones, see :mod:`zhizao.kpi.partitions`).
    """

    minor_stop_threshold: float = MINOR_STOP_THRESHOLD
    kgce: Mapping[str, float] = field(default_factory=dict)
    zones: Mapping[str, str] = field(default_factory=dict)
    memory_mb: float = MEMORY_MB

    def __post_init__(self) -> None:
        object.__setattr__(self, "minor_stop_threshold",
                           _positive("minor_stop_threshold", self.minor_stop_threshold))
        object.__setattr__(self, "memory_mb", _positive("memory_mb", self.memory_mb))
        factors = {}
        for carrier, f in dict(self.kgce).items():
            factors[str(carrier)] = _positive(f"kgce.{carrier}", f)
        object.__setattr__(self, "kgce", MappingProxyType(factors))
        zones = {}
        for scope, zone in dict(self.zones).items():
            if zone not in _iana_zones():
                raise InputError(BAD_SETTING, name=f"zones.{scope}", rule=RULE_ZONE(), value=repr(zone))
            zones[str(scope)] = zone
        object.__setattr__(self, "zones", MappingProxyType(zones))

    def __reduce__(self):  # picklable (process pools) although kgce is a read-only mapping
        return (_rebuild, (type(self), {f.name: _plain(getattr(self, f.name)) for f in fields(self)}))

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (validated)."""
        known = {f.name for f in fields(self)}
        for name in changes:
            if name not in known:
                raise InputError(UNKNOWN_SETTING, name=name, known=sorted(known))
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Settings:
        """Settings from a (nested) mapping, e.g. a parsed TOML file; unknown keys are refused."""
        out = cls()
        return out.replace(**{k: _section(getattr(out, k, None), k, v) for k, v in data.items()})

    @classmethod
    def from_file(cls, path: str | Path) -> Settings:
        """Settings from a TOML file (see the module docstring)."""
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise InputError(BAD_SETTINGS_FILE, path=str(path), reason=str(e)) from None
        return cls.from_mapping(data)


def _iana_zones() -> set[str]:
    import zoneinfo
    return zoneinfo.available_timezones() | {"UTC"}


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, MappingProxyType) else value


def _rebuild(cls: type, values: dict) -> Any:
    return cls(**values)


def _section(current: Any, name: str, value: Any) -> Any:
    """``value`` for field ``name``: a mapping becomes the field's section dataclass if it is one."""
    if is_dataclass(current) and isinstance(value, Mapping):
        known = {f.name for f in fields(current)}
        for k in value:
            if k not in known:
                raise InputError(UNKNOWN_SETTING, name=f"{name}.{k}", known=sorted(known))
        return type(current)(**{**{f.name: getattr(current, f.name) for f in fields(current)}, **value})
    return value


__all__ = ["MEMORY_MB", "MINOR_STOP_THRESHOLD", "Settings"]
