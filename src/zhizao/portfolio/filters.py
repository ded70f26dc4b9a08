"""Selections of the register: several districts, parks, levels, programmes and years, and a date range.

Every filter takes one value, several separated by commas (``--district 璧山区,九龙坡区``) or a list (repeated
query parameters of the API). Districts and levels may be given by code or label (their vocabularies); parks
and programmes must be registered ones. A value that matches nothing is an error that says which values
exist -- a filter never fails silently into an empty selection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zhizao.errors import InputError
from zhizao.messages import define
from zhizao.portfolio.vocabularies import vocabulary

UNKNOWN = define("filter.unknown", "unknown %(what)s %(value)s; known: %(known)s")
NONE_REGISTERED = define("filter.none_registered", "(none registered)")
NONE_VISIBLE = define("filter.none_visible", "(none)")
BAD_YEAR = define("filter.bad_year", "%(value)s is not a year")
_SPLIT = re.compile(r"\s*[,，、;；]\s*")


def split(value) -> list[str] | None:
    """A filter's values: None for no filter; text is split at commas (also Chinese ones)."""
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
    out = []
    for it in items:
        if it is None:
            continue
        for part in _SPLIT.split(str(it).strip()):
            if part:
                out.append(part)
    return out or None


@dataclass(frozen=True)
class Selection:
    """A validated selection (``None``: no filter on that field)."""

    districts: tuple | None = None
    parks: tuple | None = None
    levels: tuple | None = None
    programmes: tuple | None = None
    years: tuple | None = None
    start: object = None
    end: object = None

    def to_dict(self) -> dict:
        return {"district": list(self.districts) if self.districts else None,
                "park": list(self.parks) if self.parks else None,
                "level": list(self.levels) if self.levels else None,
                "programme": list(self.programmes) if self.programmes else None,
                "year": list(self.years) if self.years else None,
                "start": None if self.start is None else str(self.start),
                "end": None if self.end is None else str(self.end)}

    @property
    def empty(self) -> bool:
        return all(v is None for v in (self.districts, self.parks, self.levels, self.programmes, self.years,
                                       self.start, self.end))


def _known(con, sql: str) -> list[str]:
    try:
        return sorted({r[0] for r in con.execute(sql).fetchall() if r[0] is not None})
    except Exception:
        return []


def _vocab(name: str, values, what: str) -> tuple | None:
    vals = split(values)
    if vals is None:
        return None
    v = vocabulary(name)
    out = []
    for x in vals:
        code = v.match(x)
        if code is None:
            raise InputError(UNKNOWN(what=what, value=x, known=[f"{c} ({v.label(c)})" for c in v.codes[:12]]
                                     + (["..."] if len(v.codes) > 12 else [])))
        out.append(code)
    return tuple(dict.fromkeys(out))


def _registered(con, values, what: str, sql: str) -> tuple | None:
    vals = split(values)
    if vals is None:
        return None
    known = _known(con, sql)
    bad = [x for x in vals if x not in known]
    if bad:
        raise InputError(UNKNOWN(what=what, value=bad[0], known=known[:20] + (["..."] if len(known) > 20 else [])
                                 or [NONE_REGISTERED()]))
    return tuple(dict.fromkeys(vals))


def select(con, district=None, park=None, level=None, programme=None, year=None, start=None, end=None
           ) -> Selection:
    """Validate filters against the register of ``con``.

    Raises
    ------
    zhizao.errors.InputError
        For a value that matches no district, level, registered park or programme, or no year; the message
        lists the known values.
    """
    years = None
    ys = split(year)
    if ys is not None:
        out = []
        for y in ys:
            if not re.fullmatch(r"\d{4}", y):
                raise InputError(BAD_YEAR(value=y))
            out.append(int(y))
        years = tuple(dict.fromkeys(out))
    return Selection(
        districts=_vocab("district", district, "district"),
        parks=_registered(con, park, "park", "SELECT DISTINCT park FROM enterprises"),
        levels=_vocab("level", level, "level"),
        programmes=_registered(con, programme, "programme",
                               "SELECT programme_id FROM programmes UNION SELECT DISTINCT programme FROM projects"),
        years=years, start=start if start not in ("",) else None, end=end if end not in ("",) else None)


__all__ = ["Selection", "select", "split"]
