"""The audit log: an append-only record of every change to the register and the workflow.

Every create, update, withdrawal, status transition, workflow step, confirmation and setting is appended to
table ``audit_log`` in the same transaction as the change itself: who (``actor``: ``user:NAME``, ``key:ID``
or ``cli:NAME``), when (``changed_at``, UTC), what (``entity`` and ``record``: a table and a key, an application, a
setting; ``action``; ``changes``: column -> [before, after]; ``after``: the whole record afterwards, null when
it was withdrawn) and why (``reason``), and from where (``source``: a file, a route, a command).

Nothing updates or deletes an entry: this module only appends, and no command or route of zhizao writes the
table otherwise. Each entry carries the SHA-256 of its content and of the previous entry (``prev`` ->
``hash``), so a rewrite outside zhizao (an edit of the database file) breaks the chain; :func:`check_chain`
finds the first broken entry (``zhizao audit --check``).

A record as it was on a date is the ``after`` of its last entry up to then (:func:`as_of`).
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
from dataclasses import dataclass

import pandas as pd

from zhizao.errors import InputError
from zhizao.messages import Message, define

DDL = """CREATE TABLE IF NOT EXISTS audit_log (
    seq BIGINT NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL,
    actor VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    entity VARCHAR NOT NULL,
    record VARCHAR NOT NULL,
    changes VARCHAR,
    after VARCHAR,
    reason VARCHAR,
    source VARCHAR,
    prev VARCHAR,
    hash VARCHAR NOT NULL)"""

COLUMNS = ["seq", "changed_at", "actor", "action", "entity", "record", "changes", "after", "reason", "source", "prev",
           "hash"]
NOT_AN_INSTANT = define("audit.not_an_instant", "not a date or time stamp: %(value)s")
BROKEN = define("audit.broken", "the audit log was changed outside zhizao: entry %(seq)s does not match its "
                                "hash (%(why)s)")
WHY_SEQUENCE = define("audit.broken.sequence", "sequence number %(seq)s, expected %(expected)s")
WHY_CHAIN = define("audit.broken.chain", "it does not follow the previous entry")
WHY_CONTENT = define("audit.broken.content", "its content was altered")

#: The actions of the register (workflow actions are named by their step).
ACTIONS = ("create", "update", "withdraw", "baseline", "setting")


def ensure(con) -> None:
    """Create the audit log if missing."""
    con.execute(DDL)


def default_actor() -> str:
    """The actor of a command-line change: ``ZHIZAO_ACTOR``, else ``cli:<login name>``."""
    env = os.environ.get("ZHIZAO_ACTOR")
    if env:
        return env
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):
        return "cli:unknown"


def plain(v):
    """A value as JSON (dates ISO 8601, NaN/NaT null, numpy scalars plain)."""
    if v is None:
        return None
    if isinstance(v, float) and v != v:
        return None
    if v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        return plain(v.item())
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def _canonical(obj) -> str:
    return json.dumps(plain(obj), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def dumps(obj) -> str | None:
    """Canonical JSON text (sorted keys, no spaces) of a record or of changes; None stays None."""
    if obj is None:
        return None
    return _canonical(obj)


def _at_text(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _digest(prev: str | None, seq: int, at: str, actor: str, action: str, entity: str, record: str,
            changes: str | None, after: str | None, reason: str | None, source: str | None) -> str:
    body = json.dumps([prev, seq, at, actor, action, entity, record, changes, after, reason, source],
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def record_key(values) -> str:
    """The ``record`` text of a key: the value itself for one column, else JSON of the values."""
    if isinstance(values, (list, tuple)):
        if len(values) == 1:
            return str(values[0])
        return _canonical(list(values))
    return str(values)


@dataclass
class Entry:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    entity: str
    record: str
    changes: dict | None
    after: dict | None
    reason: str | None
    source: str | None


def append(con, actor: str, action: str, entity: str, record, *, changes=None, after=None, reason=None,
           source=None, at: dt.datetime | None = None) -> int:
    """Append one entry (inside the caller's transaction) and return its ``seq``.

    Parameters
    ----------
    con : duckdb connection
    actor : str
        ``user:NAME``, ``key:ID`` or ``cli:NAME``.
    action : str
        ``create``, ``update``, ``withdraw``, a workflow step, ...
    entity : str
        A register table, ``application``, ``setting``, ...
    record : str or tuple
        The record's key (see :func:`record_key`).
    changes : dict, optional
        column -> (before, after).
    after : dict, optional
        The whole record after the change (None after a withdrawal).
    reason, source : str, optional
    at : datetime, optional
        Default now (UTC).
    """
    ensure(con)
    at = at or dt.datetime.now(dt.UTC)
    at_text = _at_text(at)
    last = con.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq = (last[0] + 1) if last else 1
    prev = last[1] if last else None
    rec = record_key(record)
    ch = dumps({k: [b, a] for k, (b, a) in changes.items()}) if changes is not None else None
    af = dumps(after)
    h = _digest(prev, seq, at_text, actor, action, entity, rec, ch, af, reason, source)
    con.execute("INSERT INTO audit_log VALUES (?, CAST(? AS TIMESTAMPTZ), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [seq, at_text, actor, action, entity, rec, ch, af, reason, source, prev, h])
    return seq


def has_log(con) -> bool:
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'audit_log'"
                       ).fetchone()[0] > 0


def entries(con, entity: str | None = None, record: str | None = None, actor: str | None = None,
            action: str | None = None, since=None, until=None, limit: int | None = None, offset: int = 0,
            search: str | None = None, descending: bool = False) -> pd.DataFrame:
    """Entries of the log (filtered), in order of ``seq``.

    Parameters
    ----------
    entity, record, actor, action : str, optional
        Exact matches.
    since, until : datetime or str, optional
        ``since <= at < until`` (instants; naive values are UTC).
    limit, offset : int, optional
    search : str, optional
        Substring of the record, actor, reason or changes (case-insensitive).
    descending : bool
        Latest first.

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS` with ``changes`` and ``after`` parsed (dict or None).
    """
    if not has_log(con):
        return pd.DataFrame(columns=COLUMNS)
    where, args = _where(entity, record, actor, action, since, until, search)
    sql = f"SELECT {', '.join(COLUMNS)} FROM audit_log WHERE {where} ORDER BY seq {'DESC' if descending else ''}"
    if limit is not None:
        sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
    df = con.execute(sql, args).df()
    for c in ("changes", "after"):
        df[c] = [json.loads(x) if isinstance(x, str) else None for x in df[c]]
    return df


def count(con, entity=None, record=None, actor=None, action=None, since=None, until=None, search=None) -> int:
    """Number of entries :func:`entries` would give without a limit."""
    if not has_log(con):
        return 0
    where, args = _where(entity, record, actor, action, since, until, search)
    return int(con.execute(f"SELECT count(*) FROM audit_log WHERE {where}", args).fetchone()[0])


def _ts(v):
    if v is None:
        return None
    try:
        t = pd.Timestamp(v)
    except (ValueError, TypeError, OverflowError):
        raise InputError(NOT_AN_INSTANT(value=str(v)[:100])) from None
    if t is pd.NaT:
        raise InputError(NOT_AN_INSTANT(value=str(v)[:100]))
    return (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).isoformat()


def _where(entity, record, actor, action, since, until, search) -> tuple[str, list]:
    cond, args = ["TRUE"], []
    for col, v in (("entity", entity), ("record", record), ("actor", actor), ("action", action)):
        if v is not None:
            cond.append(f"{col} = ?")
            args.append(v)
    if since is not None:
        cond.append("changed_at >= CAST(? AS TIMESTAMPTZ)")
        args.append(_ts(since))
    if until is not None:
        cond.append("changed_at < CAST(? AS TIMESTAMPTZ)")
        args.append(_ts(until))
    if search:
        cond.append("(record ILIKE ? OR actor ILIKE ? OR coalesce(reason, '') ILIKE ? OR "
                    "coalesce(changes, '') ILIKE ? OR entity ILIKE ?)")
        pat = "%" + search.replace("%", r"\%").replace("_", r"\_") + "%"
        args += [pat] * 5
    return " AND ".join(cond), args


def as_of(con, entity: str, record: str, until) -> tuple[dict | None, int | None]:
    """The record as it was just before ``until`` (an instant): ``(after of its last entry, seq)``;
    ``(None, seq)`` when it was withdrawn then, ``(None, None)`` when it had no entry yet."""
    if not has_log(con):
        return None, None
    row = con.execute("SELECT after, seq FROM audit_log WHERE entity = ? AND record = ? AND "
                      "changed_at < CAST(? AS TIMESTAMPTZ) ORDER BY seq DESC LIMIT 1",
                      [entity, str(record), _ts(until)]).fetchone()
    if row is None:
        return None, None
    return (json.loads(row[0]) if row[0] else None), int(row[1])


def snapshot(con, entity: str, until) -> dict[str, dict]:
    """Every record of ``entity`` as it was just before ``until``: record key -> record (withdrawn ones and
    those created later are left out)."""
    if not has_log(con):
        return {}
    rows = con.execute("""SELECT record, after FROM (
                              SELECT record, after, row_number() OVER (PARTITION BY record ORDER BY seq DESC) rn
                              FROM audit_log WHERE entity = ? AND changed_at < CAST(? AS TIMESTAMPTZ))
                          WHERE rn = 1 AND after IS NOT NULL""", [entity, _ts(until)]).fetchall()
    return {r: json.loads(a) for r, a in rows}


def check_chain(con) -> tuple[bool, int, Message | None]:
    """Recompute every entry's hash: ``(ok, entries checked, None or the message of the first broken one)``."""
    if not has_log(con):
        return True, 0, None
    prev = None
    n = 0
    expected_seq = 1
    for row in con.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_log ORDER BY seq").fetchall():
        seq, at, actor, action, entity, record, changes, after, reason, source, p, h = row
        n += 1
        if seq != expected_seq:
            return False, n, BROKEN(seq=seq, why=WHY_SEQUENCE(seq=seq, expected=expected_seq))
        if p != prev:
            return False, n, BROKEN(seq=seq, why=WHY_CHAIN())
        if _digest(p, seq, _at_text(at), actor, action, entity, record, changes, after, reason, source) != h:
            return False, n, BROKEN(seq=seq, why=WHY_CONTENT())
        prev = h
        expected_seq += 1
    return True, n, None


__all__ = [
    "COLUMNS",
    "append",
    "as_of",
    "check_chain",
    "count",
    "default_actor",
    "dumps",
    "ensure",
    "entries",
    "record_key",
    "snapshot",
]
