"""Loading a file into a canonical table: read, map, parse, validate, quarantine, store, atomically.

Validation rules (the ``rule`` of a quarantined record; the first broken rule is reported; every rule is
listed with its meaning in :data:`zhizao.ingest.rules.RULES`):

==========================  ======================================================================
rule                        meaning
==========================  ======================================================================
missing_field               a required column is empty (detail names the column)
field_too_long              a value longer than ``max_field_bytes`` (:mod:`zhizao.limits`)
unparseable                 a value cannot be parsed as its type (detail names column and value)
time_out_of_range           a time stamp outside ``earliest_time .. latest_time`` (1970 .. 2100 by
                            default; ``infinity`` included), or a measurement (states, production,
                            energy, labour, quality) later than the load time + ``max_future_days``
invalid_offset              a UTC offset beyond -14:00 .. +14:00
nonexistent_local_time      a naive local time inside a daylight-saving gap of its zone
ambiguous_time_zone         a naive time of a calendar entry booked to a scope whose equipment lie
                            in several time zones (and no mapping ``timezone``)
not_finite                  NaN, inf, -inf (also 1e309 and 1e400, which are infinite as doubles)
value_out_of_range          a number larger in magnitude than ``max_abs_value`` (1e15)
end_not_after_start         ``end <= start``
negative_quantity           a quantity or duration that must be >= 0 is negative
counts_exceed_produced      good + scrap + rework > produced
lsl_above_usl               a quality record's lower specification limit above its upper one
unknown_equipment           equipment_id (or scope) is not in the equipment table
unknown_reference           a foreign key (enterprise_id, project_id) is not in its table
unmapped_state              the raw state has no category in the mapping (never guessed)
invalid_value               a code outside its list (calendar kind, quality result, energy reading,
                            state category, time zone, unit)
duplicate                   the same record key occurs earlier in the same file
conflicts_with_stored       a stored record has the same key but different values
==========================  ======================================================================

Each quarantined record carries its rule, a structured detail (``code`` and ``params``, see
:mod:`zhizao.ingest.rules`) and, in ``detail``, that detail in English.

Local time: a naive time stamp is local to its zone (the mapping's ``timezone``, else the equipment's, else
UTC). In a repeated hour (the fold when clocks go back) it is the *earlier* of the two instants, and the
stored record is flagged ``ambiguous_local_time`` in the store's ``record_flags`` table (which the
data-quality table reads); a local time that does not exist (the gap when clocks go forward) is
quarantined as ``nonexistent_local_time``. A naive time of a record booked to a scope whose equipment lie in
several zones has no one right zone: a calendar entry is quarantined (``ambiguous_time_zone``); an energy,
labour, quality or process-variable record is stored, read in the scope's zone first by name, and flagged
``ambiguous_time_zone`` in ``record_flags`` (give an offset, or the mapping's ``timezone``, to avoid both).

Record identity: a record's key identifies it (:attr:`zhizao.schema.Table.key`), except for *events*: rows of
tables whose key leaves them unnamed (quality results without ``unit_id``, counts at an instant without
``start``; :attr:`zhizao.schema.Table.event_if_null`). Two identical events in one file are two events (two
units tested in the same minute); the k-th identical event of a file is stored with ``_occurrence = k``, and
a later load skips an event whose values and occurrence number are stored already. So loading a file again,
or a longer export that repeats it, stores each event once.

A record identical to a stored one is skipped (loading the same data twice changes nothing), and a file
whose bytes were already loaded with the same mapping is not read again. The load runs in one transaction:
an error, an interrupt (Ctrl-C) or the ``timeout`` leaves the store as it was.

Mapping expressions (``sql``) are evaluated outside the store, in a locked-down connection
(:func:`zhizao.ingest.mapping.sandbox`).

Two paths, one outcome: a file whose mapping names its columns plainly (every canonical file without a
mapping) is loaded by the bulk path (:func:`_load_bulk`): read, mapping, parsing and every rule in one
``CREATE TABLE AS`` straight from ``read_csv`` / ``read_parquet`` on every core (for states, production and
products it reads the equipment through an ENUM type, not a join, so it keeps the file's order, and the
records are numbered from their row ids; elsewhere a window numbers them in the statement), a Parquet file's
TIMESTAMPTZ and DOUBLE columns taken as they are, duplicates found through the key's hash, the valid records
inserted in file order without a sort. Mappings with SQL expressions, and naive local times in an hour
around a daylight-saving change, take the step-by-step path (:func:`_load`). Both store the same rows and
quarantine the same records with the same rules and details (``tests/test_ingest_bulk.py``);
``benchmarks/ingest_bulk.py`` measures them.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from zhizao.errors import InputError, TooLarge
from zhizao.ingest import rules as R
from zhizao.ingest.mapping import ALIASES, Mapping, default_mapping, sandbox
from zhizao.ingest.reader import is_workbook, readable
from zhizao.ingest.rules import Sql, sql_detail
from zhizao.kpi.energy import UNIT_TO_BASE
from zhizao.limits import MEASURED_TABLES, Limits, current
from zhizao.messages import MessageKind, define
from zhizao.schema import CALENDAR_KINDS, DEFAULT_STATE_MAP, ENERGY_READINGS, QUALITY_RESULTS, REGISTER_TABLES, TABLES
from zhizao.store import equipment as store_equipment

TOO_MANY_COLUMNS = define("ingest.too_many_columns", "%(source)s has %(columns)s columns, more than the limit of "
                                                     "%(limit)s")
LINE_TOO_LONG = define("ingest.line_too_long", "%(source)s has a line longer than the limit of %(limit)s bytes")
TOO_SLOW = define("ingest.too_slow", "loading %(source)s took longer than the limit of %(seconds)s s; it was "
                                     "cancelled and nothing was stored")
MAPPING_FAILS = define("ingest.mapping_fails", "%(mapping)s: a mapping expression fails on %(what)s: %(error)s")


class IngestError(InputError):
    """A whole file cannot be loaded (unreadable, wrong columns); nothing was stored."""


@dataclass
class LoadReport:
    """What one file's load did."""

    table: str
    source: str
    loaded: int = 0
    quarantined: int = 0
    skipped: int = 0
    already_loaded: bool = False

    def __str__(self) -> str:
        if self.already_loaded:
            return f"{self.source}: already loaded into {self.table}, nothing changed"
        return (f"{self.source}: {self.loaded} records loaded into {self.table}, {self.quarantined} quarantined, "
                f"{self.skipped} already stored")


#: an explicit UTC offset after a time of day (a date alone, 2024-02-01, has none)
#: tables whose naive time stamps booked to a scope whose equipment lie in several zones are quarantined
#: (``ambiguous_time_zone``): a calendar entry is read as instants, and no one zone is right for every machine
ZONE_CHECKED = ("calendar",)
#: tables whose naive time stamps of a record booked to a scope (not to an equipment) whose equipment lie in
#: several zones are stored, read in the zone first by name, and flagged ``ambiguous_time_zone`` in
#: ``record_flags`` (the data-quality table counts them): the records themselves are measurements to keep
ZONE_FLAGGED = ("energy", "labour", "quality", "variables")
_OFFSET_RE = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)? ?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$"
#: the largest UTC offset in use anywhere [s] (+14:00, Line Islands)
_MAX_OFFSET_S = 14 * 3600

#: tables whose equipment_id must exist in the equipment table
_EQUIPMENT_REF = {"states", "production", "energy", "quality", "products"}
#: tables whose scope must be an equipment, work_center, area, site or enterprise id
_SCOPE_REF = {"calendar", "labour", "energy", "quality", "variables", "costs"}
#: the loader's temporary tables
_TEMP = ("_zz_raw", "_zz_mapped", "_zz_parsed", "_zz_checked")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _lit(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _ts_lit(t: pd.Timestamp) -> str:
    return f"TIMESTAMPTZ '{t.tz_convert('UTC').isoformat()}'"


def _format(path: Path, mapping: Mapping) -> str:
    return mapping.read.get("format") or ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")


def read_sql(path: str | Path, mapping: Mapping, limits: Limits | None = None) -> str:
    """The SQL query that reads a file as the ingest stage reads it, before any mapping.

    Parameters
    ----------
    path : str or Path
        CSV, Parquet or .xlsx file (by the mapping's ``read.format`` or the suffix).
    mapping : Mapping
        Its ``read`` options apply (delimiter, quote, header, names, skip, strict, encoding, sheet). CSV
        columns are read as text (``all_varchar``), with no type sniffing.
    limits : Limits, optional
        ``max_line_bytes`` bounds the length of a CSV line (default: :func:`zhizao.limits.current`).

    Returns
    -------
    str
        ``SELECT * FROM read_csv(...)`` or ``SELECT * FROM read_parquet(...)``. A CSV in GBK or GB18030 and a
        workbook are first made a UTF-8 CSV by :func:`zhizao.ingest.reader.readable` (the one place of
        encodings and workbooks); the query reads that file.

    Raises
    ------
    IngestError
        The mapping names a format other than csv, parquet or xlsx.
    zhizao.errors.Unsupported
        The file is neither UTF-8 nor GB18030 text, or an unreadable workbook.

    Notes
    -----
    Used by :func:`load_file` and by callers that must see a file's columns exactly as the loader will,
    e.g. the server's tenant check (:mod:`zhizao.server.access`).
    """
    path = Path(path)
    limits = limits or current()
    if mapping.read.get("format") not in (None, "csv", "parquet", "xlsx"):
        raise IngestError(f"{path}: unknown format {mapping.read['format']!r} in mapping (csv, parquet or xlsx)")
    # the one place of encodings and workbooks: GBK/GB18030 text and .xlsx become a UTF-8 CSV
    workbook = is_workbook(path, mapping.read.get("format"))
    path, fmt = readable(path, mapping.read, mapping.table)
    if fmt == "parquet":
        return f"SELECT * FROM read_parquet({_lit(str(path))})"
    opts = ["all_varchar = true", f"max_line_size = {int(limits.max_line_bytes)}"]
    if "delimiter" in mapping.read and not workbook:
        opts.append(f"delim = {_lit(mapping.read['delimiter'])}")
    if "quote" in mapping.read and not workbook:
        opts.append(f"quote = {_lit(mapping.read['quote'])}")
    header = mapping.read.get("header", True)
    opts.append(f"header = {'true' if header else 'false'}")
    if "names" in mapping.read:
        # a file without header: the mapping names the columns, all read as text, no sniffing
        opts.append("auto_detect = false")
        opts.append("columns = {" + ", ".join(f"{_lit(n)}: 'VARCHAR'" for n in mapping.read["names"]) + "}")
    if "skip" in mapping.read:
        opts.append(f"skip = {int(mapping.read['skip'])}")
    if "strict" in mapping.read:
        # tolerate files that are not RFC 4180 (stray carriage returns, ...)
        opts.append(f"strict_mode = {'true' if mapping.read['strict'] else 'false'}")
    return f"SELECT * FROM read_csv({_lit(str(path))}, {', '.join(opts)})"


def check_file(path: str | Path, mapping: Mapping | None = None, limits: Limits | None = None,
               source: str | None = None) -> None:
    """Cheap checks of a file before DuckDB parses it: the number of columns and the length of the header line.

    A CSV file's header (or first) line is read, at most ``max_line_bytes`` of it (after decompression for
    ``.gz``), and its fields are counted with each candidate delimiter; a Parquet file's schema is read from
    its footer. Both refuse files DuckDB would spend minutes sniffing (a 1.9 MB header of 200,000 columns).

    Raises
    ------
    zhizao.errors.TooLarge
        More columns than ``max_columns``, or a first line longer than ``max_line_bytes``.
    """
    path = Path(path)
    mapping = mapping or default_mapping("equipment")
    limits = limits or current()
    source = source or path.name
    if is_workbook(path, mapping.read.get("format")):
        return  # a workbook is made a CSV first (zhizao.ingest.reader), whose lines read_sql bounds
    if _format(path, mapping) == "parquet":
        import pyarrow.parquet as pq

        try:
            n = len(pq.read_schema(path))
        except (OSError, pa.ArrowException):
            return  # unreadable: the loader says so
        if n > limits.max_columns:
            raise TooLarge(TOO_MANY_COLUMNS, source=source, columns=n, limit=limits.max_columns)
        return
    if "names" in mapping.read and len(mapping.read["names"]) > limits.max_columns:
        raise TooLarge(TOO_MANY_COLUMNS, source=source, columns=len(mapping.read["names"]),
                       limit=limits.max_columns)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(limits.max_line_bytes + 1)
    except (OSError, EOFError):
        return  # unreadable or a broken archive: the loader says so
    skip = int(mapping.read.get("skip", 0) or 0)
    lines = head.split(b"\n", skip + 1)
    if len(lines) <= skip:
        return
    line = lines[skip]
    if len(lines) == skip + 1 and len(head) > limits.max_line_bytes:
        raise TooLarge(LINE_TOO_LONG, source=source, limit=limits.max_line_bytes)
    text = line.rstrip(b"\r").decode(mapping.read.get("encoding") or "utf-8", "replace") \
        if str(mapping.read.get("encoding") or "utf-8").lower().replace("-", "") in ("utf8", "latin1", "utf16") \
        else line.decode("utf-8", "replace")
    quote = mapping.read.get("quote") or '"'
    delims = [mapping.read["delimiter"]] if mapping.read.get("delimiter") else [",", ";", "\t", "|"]
    n = 0
    for d in delims:
        if len(d) == 1 and len(quote) == 1:
            fields = next(csv.reader([text], delimiter=d, quotechar=quote, strict=False), [])
            n = max(n, len(fields))
        else:
            n = max(n, text.count(d) + 1)
    if n > limits.max_columns:
        raise TooLarge(TOO_MANY_COLUMNS, source=source, columns=n, limit=limits.max_columns)


# ---------------------------------------------------------------------------------------------------------
# daylight saving: the local hours around each change of a zone's UTC offset

@lru_cache(maxsize=512)
def _special_hours(zone: str, first_year: int, last_year: int) -> np.ndarray:
    """Local wall-clock hours (naive ``datetime64[us]``) in which a local time of ``zone`` may be ambiguous
    (a fold) or missing (a gap), from ``first_year`` to ``last_year``: a superset (every hour within the
    window where the offset changed, sampled every 6 hours); the loader checks those hours exactly."""
    try:
        t = pd.date_range(f"{first_year - 1}-12-25", f"{last_year + 1}-01-08", freq="6h", tz="UTC")
        local = t.tz_convert(zone)
    except (KeyError, ValueError, TypeError, OSError, Exception):
        return np.empty(0, "datetime64[us]")
    utc = t.tz_localize(None).to_numpy()
    off = local.tz_localize(None).to_numpy() - utc
    changes = np.nonzero(off[1:] != off[:-1])[0]
    hours = set()
    h = np.timedelta64(1, "h")
    for i in changes.tolist():
        lo = (utc[i] + min(off[i], off[i + 1])).astype("datetime64[h]")
        hi = (utc[i + 1] + max(off[i], off[i + 1])).astype("datetime64[h]")
        x = lo
        while x <= hi:
            hours.add(x)
            x = x + h
    return np.array(sorted(hours), dtype="datetime64[h]").astype("datetime64[us]")


def _zones(con: duckdb.DuckDBPyConnection, table: str, mapping: Mapping) -> list[str]:
    """The zones naive time stamps of this load can be local to."""
    if mapping.timezone:
        return [str(mapping.timezone)]
    spec = TABLES[table]
    if ("equipment_id" in spec.names and table != "equipment") or "scope" in spec.names:
        return store_equipment.zones(con)
    return []


def _register_dst(con: duckdb.DuckDBPyConnection, table: str, mapping: Mapping, limits: Limits) -> bool:
    """Register ``_zz_dst`` (zone, hour): the special local hours of the load's zones. False if there are none
    (or the table has no time stamps): then the parse needs no join."""
    if not any(c.type == "timestamp" for c in TABLES[table].columns):
        return False
    lo, hi = limits.time_range()
    zones, hours = [], []
    for z in _zones(con, table, mapping):
        hs = _special_hours(z, lo.year, hi.year)
        zones += [z] * len(hs)
        hours.append(hs)
    if not zones:
        return False
    con.register("_zz_dst", pa.table({"zone": pa.array(zones, pa.string()),
                                      "hour": pa.array(np.concatenate(hours), pa.timestamp("us"))}))
    return True


def _has_naive_times(con: duckdb.DuckDBPyConnection, table: str, mapped: str) -> bool:
    """Whether a time stamp of the mapped text records ``mapped`` has no UTC offset (a local time, which the
    daylight-saving checks of :func:`_timestamp_sql` concern); a record with offsets everywhere is read the same
    with or without them."""
    cols = [c.name for c in TABLES[table].columns if c.type == "timestamp"]
    if not cols:
        return False
    naive = " OR ".join(f"""(nullif(trim("{c}"), '') IS NOT NULL
                             AND NOT regexp_matches(trim("{c}"), '{_OFFSET_RE}'))""" for c in cols)
    return bool(con.execute(f"SELECT EXISTS (SELECT 1 FROM {mapped} WHERE {naive})").fetchall()[0][0])


def _unregister_dst(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.unregister("_zz_dst")
    except duckdb.Error:
        pass


# ---------------------------------------------------------------------------------------------------------
# cancelling a load that takes too long

class Watchdog:
    """Interrupts the connections of a load after ``timeout`` seconds (DuckDB's ``interrupt``); ``stop()``
    before the commit, after which nothing is interrupted."""

    def __init__(self, con: duckdb.DuckDBPyConnection, timeout: float | None):
        self.cons = [con]
        self.fired = False
        self._lock = threading.Lock()
        self._stopped = False
        self._timer = threading.Timer(timeout, self._fire) if timeout else None
        if self._timer is not None:
            self._timer.daemon = True

    def _fire(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self.fired = True
            for c in self.cons:
                try:
                    c.interrupt()
                except duckdb.Error:
                    pass

    def watch(self, con: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            self.cons.append(con)
            if self.fired:
                con.interrupt()

    def unwatch(self, con: duckdb.DuckDBPyConnection) -> None:
        with self._lock:
            if con in self.cons:
                self.cons.remove(con)

    def start(self) -> Watchdog:
        if self._timer is not None:
            self._timer.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        if self._timer is not None:
            self._timer.cancel()


_WATCH = threading.local()


def load_file(con: duckdb.DuckDBPyConnection, table: str, path: str | Path,
              mapping: Mapping | None = None, provenance: str | None = None, *, update: bool = False,
              actor: str | None = None, reason: str | None = None, limits: Limits | None = None,
              timeout: float | None = None, source: str | None = None) -> LoadReport:
    """Load one CSV, Parquet or .xlsx file into canonical table ``table``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        An open store (see :func:`zhizao.store.open_db`).
    table : str
        Canonical table name (``zhizao.schema.TABLES``).
    path : str or Path
        The file. Without ``mapping`` its columns must carry the canonical names.
    mapping : Mapping, optional
        How the file's format maps to the canonical table.
    update, actor, reason
        Register tables only (``zhizao.schema.REGISTER_TABLES``; loaded by
        :func:`zhizao.portfolio.register.load_register_file`): update stored records by key, who loads, why.
    limits : Limits, optional
        Column count, line and field size, plausible times and values (default
        :func:`zhizao.limits.current`).
    timeout : float, optional
        Seconds after which the load is cancelled (rolled back) and :class:`zhizao.errors.TooLarge` raised.
    source : str, optional
        Name of the file in provenance and messages (default: the file name).
    provenance : str, optional
        Where the records come from (``"simulated"``), kept in the load log; default the provenance sidecar
        beside the file (:mod:`zhizao.provenance`), else none.

    Returns
    -------
    LoadReport
        Counts of loaded, quarantined and skipped (already stored) records.

    Raises
    ------
    IngestError
        The file cannot be read at all, or lacks a required column; nothing is stored.

    Notes
    -----
    Reloading is idempotent per record: a record identical to a stored one is skipped. A file whose bytes were
    loaded before with the same mapping and without any quarantined record is not read again; one that had
    quarantined records is read again (after the cause was fixed, e.g. the missing equipment loaded, its
    records load), and its earlier quarantine entries are replaced by this load's.
    zhizao.errors.TooLarge
        Too many columns, a line too long, or past ``timeout``; nothing is stored.
    """
    if table not in TABLES:
        raise IngestError(f"unknown table {table!r}; canonical tables are {', '.join(TABLES)}")
    if table in REGISTER_TABLES:
        from zhizao.portfolio.register import load_register_file

        return load_register_file(con, table, path, mapping, update=update, actor=actor, reason=reason,
                                  provenance=provenance)
    if update:
        raise IngestError(f"--update applies to the register tables ({', '.join(REGISTER_TABLES)}), "
                          f"not to {table!r}")
    path = Path(path)
    mapping = mapping or default_mapping(table)
    limits = limits or current()
    if mapping.table != table:
        raise IngestError(f"{mapping.source} maps table {mapping.table!r}, not {table!r}")
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    source = source or path.name
    check_file(path, mapping, limits, source)
    sha = sha256(path)
    earlier = con.execute(
        'SELECT count(*), count(*) FILTER (WHERE coalesce(quarantined, 0) = 0) FROM loads WHERE "table" = ? '
        'AND sha256 = ? AND mapping_sha256 IS NOT DISTINCT FROM ?', [table, sha, mapping.sha256]).fetchall()[0]
    if earlier[1]:
        return LoadReport(table, source, already_loaded=True)

    dog = Watchdog(con, timeout).start()
    _WATCH.dog = dog
    began = False
    try:
        try:
            # the query once: read_sql decodes a whole CSV file to tell its encoding
            read = read_sql(path, mapping, limits)
            rel = con.sql(read)
            source_columns = list(rel.columns)
        except duckdb.Error as e:
            if dog.fired:
                raise TooLarge(TOO_SLOW, source=source, seconds=timeout) from None
            raise _read_error(path, source, e, limits) from None
        if len(source_columns) > limits.max_columns:
            raise TooLarge(TOO_MANY_COLUMNS, source=source, columns=len(source_columns), limit=limits.max_columns)
        con.execute("BEGIN TRANSACTION")
        began = True
        try:
            if earlier[0]:  # loaded before with rejections: this load's quarantine replaces that one's
                con.execute('DELETE FROM quarantine WHERE "table" = ? AND source = ?', [table, source])
            report = _load(con, table, path, source, sha, mapping, source_columns, limits,
                           provenance, read=read)
            dog.stop()
            con.execute("COMMIT")
        except BaseException:
            dog.stop()
            con.execute("ROLLBACK")
            if dog.fired:
                raise TooLarge(TOO_SLOW, source=source, seconds=timeout) from None
            raise
    finally:
        dog.stop()
        _WATCH.dog = None
        if began:
            for t in _TEMP:
                con.execute(f"DROP TABLE IF EXISTS {t}")
        _unregister_dst(con)
    return report


def _read_error(path: Path, source: str, e: duckdb.Error, limits: Limits) -> Exception:
    first = str(e).splitlines()[0]
    if "maximum line size" in str(e).lower():
        return TooLarge(LINE_TOO_LONG, source=source, limit=limits.max_line_bytes)
    return IngestError(f"{path}: cannot read file: {first}")


@contextmanager
def _reading(path: Path, source: str, limits: Limits) -> Iterator[None]:
    """Statements that read the file: DuckDB's error becomes the input error of :func:`_read_error`; an
    interrupt (Ctrl-C, the watchdog) passes as it is."""
    try:
        yield
    except duckdb.InterruptException:
        raise
    except duckdb.Error as e:
        raise _read_error(path, source, e, limits) from None


def _header_offset(path: Path, mapping: Mapping) -> int:
    """Lines before a file's first record (its header line; none in Parquet): record n is on line n + offset."""
    return 1 if mapping.read.get("header", True) and _format(path, mapping) != "parquet" else 0


#: Whether :func:`load_file` takes the bulk path (:func:`_load_bulk`) where it applies; the tests switch it off
#: to compare both paths on the same files.
BULK = True


def _load(con: duckdb.DuckDBPyConnection, table: str, path: Path, source: str, sha: str, mapping: Mapping,
          source_columns: list[str], limits: Limits | None = None, provenance: str | None = None, *,
          read: str | None = None) -> LoadReport:
    """Load the file (see :func:`load_file`) in the caller's transaction; ``read``: its :func:`read_sql`."""
    limits = limits or current()
    now = pd.Timestamp.now(tz="UTC")
    read = read or read_sql(path, mapping, limits)
    if BULK and _load_bulk(con, table, path, source, mapping, source_columns, limits, now, read=read):
        return _log_load(con, table, path, source, sha, mapping, provenance)
    with _reading(path, source, limits):
        con.execute(f"CREATE TEMP TABLE _zz_raw AS SELECT row_number() OVER () AS _record, * FROM ({read})")
    header_offset = _header_offset(path, mapping)

    # 1. map: every canonical column as text (SQL expressions outside the store, in the sandbox)
    exprs = _mapped_exprs(table, mapping, source_columns, str(path), "the file has")
    _map(con, "_zz_raw", "_zz_mapped", exprs, mapping, {"_record": "_record"}, source_columns, path.name)

    # 2. parse into types (null where unparseable; the raw text stays for the rules); the daylight-saving checks
    # only where some time stamp is local (most machine exports carry offsets: the parse is then far simpler)
    dst = _has_naive_times(con, table, "_zz_mapped") and _register_dst(con, table, mapping, limits)
    con.execute(f"CREATE TEMP TABLE _zz_parsed AS {_parse_select(table, mapping, '_zz_mapped', 'm._record', dst)}")

    # 3. state categories from the mapping (a given category column wins)
    if table == "states":
        con.execute(f'UPDATE _zz_parsed SET category = {_state_case(mapping)} WHERE category IS NULL')

    # 4. rules, first broken one wins; duplicates; occurrences of identical events
    con.execute(f"CREATE TEMP TABLE _zz_checked AS "
                f"{_checked_sql(table, '_zz_parsed', 'file', limits=limits, now=now)}")

    # 5. against what is stored: identical -> skip, same key with other values -> conflict
    _against_stored(con, table, "_zz_checked")

    _store(con, table, "_zz_checked", _lit(source), "_record",
           quarantine=(_lit(table), _lit(source), "_record", f"_record + {header_offset}"), dst=dst)
    return _log_load(con, table, path, source, sha, mapping, provenance)


def _log_load(con: duckdb.DuckDBPyConnection, table: str, path: Path, source: str, sha: str, mapping: Mapping,
              provenance: str | None) -> LoadReport:
    """Count what the load of ``_zz_checked`` did and write it to ``loads`` (the file log)."""
    loaded, quarantined, skipped = con.execute("""
        SELECT count(*) FILTER (WHERE _rule IS NULL), count(*) FILTER (WHERE _rule IS NOT NULL AND _rule <> 'skip'),
               count(*) FILTER (WHERE _rule = 'skip') FROM _zz_checked""").fetchall()[0]
    from zhizao.provenance import sidecar_provenance

    con.execute('INSERT INTO loads ("table", source, sha256, mapping_sha256, loaded, quarantined, skipped, '
                'provenance) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                [table, source, sha, mapping.sha256, loaded, quarantined, skipped,
                 provenance or sidecar_provenance(path)])
    return LoadReport(table, source, loaded, quarantined, skipped)


def _typed_columns(table: str, exprs: dict[str, str | None], types: dict[str, str], mapping: Mapping
                   ) -> frozenset[str]:
    """Canonical columns read as they are from a typed source column (Parquet): a time stamp from a TIMESTAMP WITH
    TIME ZONE column, a number from a DOUBLE column (not scaled by the mapping), each named plainly (``"col"``).

    Their values are those the text path gets by casting them to VARCHAR and parsing the text back (an instant's
    text carries its offset, +00; a double's text is its shortest round-trip form), without the round trip."""
    out = set()
    for c in TABLES[table].columns:
        e = exprs.get(c.name)
        if e is None or not e.startswith('"'):
            continue
        src = types.get(e[1:-1].replace('""', '"'))
        if (c.type == "timestamp" and src == "TIMESTAMP WITH TIME ZONE") or \
                (c.type == "float" and src == "DOUBLE" and c.name not in mapping.scale):
            out.add(c.name)
    return frozenset(out)


def _value_sql(name: str, kind: str, text: str, mapping: Mapping) -> str:
    """SQL parsing the text ``text`` of a column that is not a time stamp: a number (scaled by the mapping), a
    boolean, or the text itself; null where it does not parse (the rule ``unparseable`` then names it)."""
    if kind == "float":
        p = f"try_cast({text} AS DOUBLE)"
        return f"({p} * {mapping.scale[name]!r})" if name in mapping.scale else p
    if kind == "bool":
        return f"try_cast({text} AS BOOLEAN)"
    return text


def _load_bulk(con: duckdb.DuckDBPyConnection, table: str, path: Path, source: str, mapping: Mapping,
               source_columns: list[str], limits: Limits, now: pd.Timestamp, *, read: str | None = None) -> bool:
    """The load of a file whose mapping names columns plainly (no SQL expressions; every file without a
    mapping), with the rules and outcome of the step-by-step path below, in fewer passes over the records.

    One statement reads the file, numbers, maps, parses and checks its records into ``_zz_checked`` (instead
    of four temporary tables, and of a separate pass looking for local times); a Parquet file's TIMESTAMPTZ
    and DOUBLE columns are taken as they are, not cast to text and parsed back (:func:`_typed_columns`).
    Where that statement reads no other table than the file, or only ``equipment`` through an ENUM type
    (:func:`_ordered`), it keeps the file's order on all cores, and the records are numbered afterwards from
    their row ids (:func:`_number`) instead of by a window, which runs on one core.
    ``duplicate`` is found by an aggregate over the keys (:func:`_duplicates_sql`, as :func:`load_records`)
    instead of a window over every record, and the valid records, already in file order, are inserted without
    a sort. The check against the store and the writes are those of the other path.

    Returns False, having stored nothing, where it does not apply: a mapping with SQL expressions or
    expressions beyond column names; or a naive local time stamp (no UTC offset) in a zone with
    daylight-saving changes, whose exact checks (gap, fold) are the other path's. The caller then takes the
    step-by-step path.
    """
    if mapping.has_sql:
        return False
    exprs = _mapped_exprs(table, mapping, source_columns, str(path), "the file has")
    if not all(e is None or _PLAIN_EXPR.match(e) for e in exprs.values()):
        return False
    spec = TABLES[table]
    read = read or read_sql(path, mapping, limits)
    with _reading(path, source, limits):
        rel = con.sql(read)
        types = dict(zip(rel.columns, (str(t) for t in rel.types)))
    typed = _typed_columns(table, exprs, types, mapping)
    # a text column is its own text (no _raw_ copy), except the states' category, which the mapping fills in
    texts = frozenset(c.name for c in spec.columns if c.type == "text" and c.name not in typed
                      and not (table == "states" and c.name == "category"))
    # 1. map: typed columns as they are, the others as text
    mapped = ", ".join(f'{e} AS "{c}"' if c in typed else f'CAST({e if e is not None else "NULL"} AS VARCHAR) AS "{c}"'
                       for c, e in exprs.items())
    ordered = _ordered(con, table)
    known = "_zz_eq" if ordered and table in _EQUIPMENT_REF else None
    number = "CAST(NULL AS BIGINT)" if ordered else "row_number() OVER ()"
    mapped = f"(SELECT {number} AS _record, {mapped} FROM ({read}))"
    # 2. parse (as _parse_select without the daylight-saving join): each text trimmed once, each time stamp's
    # offset matched and naive parse done once (for its value and the rule invalid_offset)
    stamps = [c.name for c in spec.columns if c.type == "timestamp" and c.name not in typed]
    raws = "".join(f', nullif(trim(m."{c.name}"), \'\') AS "_raw_{c.name}"' for c in spec.columns
                   if c.name not in typed)
    offs = "".join(f', regexp_matches("_raw_{n}", \'{_OFFSET_RE}\') AS "_zz_off_{n}", '
                   f'try_cast("_raw_{n}" AS TIMESTAMP) AS "_zz_n_{n}"' for n in stamps)
    if known:  # the id (trimmed) as the ENUM of the stored ids: null where it is not stored
        offs += f', try_cast("_raw_equipment_id" AS {_EQ_ENUM}) AS {known}'
    params: list[object] = []
    inner = f"(SELECT *{offs} FROM (SELECT m.*{raws} FROM {mapped} m))"
    if stamps and known and not mapping.timezone:
        # the zone of the equipment as _tz_join's LEFT JOIN (by the id as mapped, untrimmed), by its ENUM code
        tz_expr, tz_join = _tz_enum(known), ""
        params.append(_equipment_zones(con))
    elif stamps:
        tz_expr, tz_join = _tz_join(table, mapping)
    else:  # no time stamp is read from text: no zone is needed
        tz_expr, tz_join = "CAST(NULL AS VARCHAR)", ""
    parsed = ["m._record", f"{tz_expr} AS _zz_zone"]
    if known:
        parsed.append(f"m.{known}")
    if table in ZONE_CHECKED or table in ZONE_FLAGGED:
        parsed.append("CAST(NULL AS BIGINT) AS _zz_nzones, CAST(NULL AS VARCHAR) AS _zz_zones"
                      if mapping.timezone or not stamps
                      else "_zz_tzs._zz_n AS _zz_nzones, _zz_tzs._zz_list AS _zz_zones")
    for c in spec.columns:
        if c.name in typed:
            parsed.append(f'm."{c.name}" AS "{c.name}"')
            continue
        v = f'm."_raw_{c.name}"'
        if c.type == "timestamp":
            p = (f'CASE WHEN m."_zz_off_{c.name}" THEN try_cast({v} AS TIMESTAMPTZ) '
                 f'ELSE try_cast(timezone({tz_expr}, m."_zz_n_{c.name}") AS TIMESTAMPTZ) END')
            parsed.append(f'CAST(NULL AS VARCHAR) AS "_dst_{c.name}", m."_zz_n_{c.name}"')
        else:
            p = _value_sql(c.name, c.type, v, mapping)
        parsed.append(f'{p} AS "{c.name}"' if c.name in texts else f'{p} AS "{c.name}", {v} AS "_raw_{c.name}"')
    # the hour of a naive local time (no offset, parsed as a time of day): where the daylight-saving checks apply
    parsed += [f'CASE WHEN NOT m."_zz_off_{n}" THEN date_trunc(\'hour\', m."_zz_n_{n}") END AS "_zz_h_{n}"'
               for n in stamps]
    sql = f"(SELECT {', '.join(parsed)} FROM {inner} m {tz_join})"
    if table == "states":
        sql = f"(SELECT * REPLACE (coalesce(category, {_state_case(mapping)}) AS category) FROM {sql})"
    # 3. rules, first broken one wins; the key's hash, for the duplicates
    key_hash = "hash(" + ", ".join(f'"{k}"' for k in spec.key) + ")"
    helpers = ", ".join([f'"_zz_n_{n}"' for n in stamps] + ([known] if known else []))
    checked = _checked_sql(table, sql, "file", duplicates=False, limits=limits, now=now, typed=typed | texts,
                           naive=True, known=known)
    try:
        with _reading(path, source, limits):
            con.execute(f"CREATE TEMP TABLE _zz_checked AS SELECT *{f' EXCLUDE ({helpers})' if helpers else ''}, "
                        f"{key_hash} AS _zz_h FROM ({checked})", params or None)
    finally:
        if known:
            _drop_equipment_enum(con)
    if ordered:
        _number(con, "_zz_checked")
    # a naive local time in an hour around a change of its zone's offset: the exact gap and fold checks of the
    # other path (elsewhere they change nothing: no record there is in a gap or a fold)
    if stamps and _register_dst(con, table, mapping, limits):
        try:
            hours = " UNION ALL ".join(f'SELECT _zz_zone AS z, "_zz_h_{n}" AS h FROM _zz_checked '
                                       f'WHERE "_zz_h_{n}" IS NOT NULL' for n in stamps)
            special = con.execute(f"SELECT EXISTS (SELECT 1 FROM ({hours}) c JOIN _zz_dst d ON d.zone = c.z "
                                  "AND d.hour = c.h)").fetchall()[0][0]
        finally:
            _unregister_dst(con)
        if special:
            con.execute("DROP TABLE _zz_checked")
            return False
    # 4. duplicates within the file: the exact check only if two valid records share their key's hash (the
    # hashes sorted by numpy: a few times faster than DuckDB's aggregate over as many distinct keys); occurrences
    # of identical events
    first, *events = _duplicates_sql(table, "_zz_checked", "file")
    hashes = np.asarray(con.execute(f"SELECT _zz_h FROM _zz_checked WHERE _rule IS NULL AND NOT "
                                    f"({_event_sql(table)})").fetchnumpy()["_zz_h"])
    hashes.sort()
    if len(hashes) > 1 and bool((hashes[1:] == hashes[:-1]).any()):
        con.execute(first)
    del hashes
    for stmt in events:
        con.execute(stmt)
    # 5. against what is stored, then store
    _against_stored(con, table, "_zz_checked")
    header_offset = _header_offset(path, mapping)
    _store(con, table, "_zz_checked", _lit(source), "_record",
           quarantine=(_lit(table), _lit(source), "_record", f"_record + {header_offset}"), dst=False,
           typed=typed | texts, in_order=True)
    return True


#: the ENUM type of the stored equipment ids (a temporary type of the bulk path's checking statement)
_EQ_ENUM = "_zz_eq_ids"


def _ordered(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether the bulk path's checking statement of ``table`` keeps the file's order without numbering it by a
    window: it reads no table but the file (a join or ``IN`` subquery does not keep the order, DuckDB's
    "Order Preservation"), the equipment's ids and zones read through the ENUM type :data:`_EQ_ENUM` of the
    stored ids (created here: a hash lookup in place of both joins), and the session keeps the insertion
    order (``preserve_insertion_order``, DuckDB's default).

    Not for tables whose rules or zones read other tables (a scope's, a foreign key, the time zone names), nor
    for a store whose equipment table holds a null id (``NOT IN`` a list with a null is never true, a rule an
    ENUM does not express): those keep the window."""
    spec = TABLES[table]
    if table in _SCOPE_REF or "scope" in spec.names or spec.refs or "timezone" in spec.names or \
            ("equipment_id" in spec.names and table not in _EQUIPMENT_REF):
        return False
    if not con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0]:
        return False
    if table not in _EQUIPMENT_REF:
        return True
    if con.execute("SELECT EXISTS (SELECT 1 FROM equipment WHERE equipment_id IS NULL)").fetchall()[0][0]:
        return False
    con.execute(f"CREATE OR REPLACE TEMP TYPE {_EQ_ENUM} AS ENUM (SELECT DISTINCT equipment_id FROM equipment)")
    return True


def _equipment_zones(con: duckdb.DuckDBPyConnection) -> list[str | None]:
    """The zone of each stored equipment id, by the id's code in the ENUM :data:`_EQ_ENUM` (the zone of
    :func:`_tz_join`'s join: ``any_value`` of the id's zones)."""
    zones = con.execute(f"SELECT list(z ORDER BY c) FROM (SELECT enum_code(CAST(equipment_id AS {_EQ_ENUM})) AS c, "
                        "any_value(timezone) AS z FROM equipment GROUP BY ALL)").fetchall()[0][0]
    return list(zones or [])


def _tz_enum(known: str) -> str:
    """SQL of the zone of naive time stamps by the equipment (as :func:`_tz_join` without a mapping zone):
    the zones of :func:`_equipment_zones` (the statement's parameter) at the code of the id as stored (trimmed),
    the ENUM ``known``."""
    return f"coalesce(CAST($1 AS VARCHAR[])[enum_code(m.{known}) + 1], 'UTC')"


def _drop_equipment_enum(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute(f"DROP TYPE IF EXISTS {_EQ_ENUM}")
    except duckdb.Error:  # an aborted transaction: its rollback removes the type
        pass


def _number(con: duckdb.DuckDBPyConnection, checked: str) -> None:
    """Number the records of ``checked`` (``_record``: 1, 2, ... in file order), a table created in file order:
    DuckDB keeps the insertion order, so the order of the row ids is the file's. Row ids of a table created in
    the open transaction start at a large offset (DuckDB's transaction-local storage); where they are
    consecutive the number is the row id less the first one, else (never seen) their rank."""
    lo, hi, n = con.execute(f"SELECT min(rowid), max(rowid), count(*) FROM {checked}").fetchall()[0]
    if not n:
        return
    if hi - lo + 1 == n:
        con.execute(f"UPDATE {checked} SET _record = rowid - {int(lo)} + 1")
    else:
        con.execute(f"UPDATE {checked} SET _record = r._n FROM (SELECT rowid AS _id, row_number() OVER "
                    f"(ORDER BY rowid) AS _n FROM {checked}) r WHERE {checked}.rowid = r._id")


def _store(con: duckdb.DuckDBPyConnection, table: str, checked: str, source_sql: str, record_sql: str,
           quarantine: tuple[str, str, str, str], dst: bool, typed: frozenset[str] = frozenset(),
           in_order: bool = False) -> tuple[int, int]:
    """Insert the valid records of ``checked`` into ``table``, the rejected ones into ``quarantine``, and the
    flags of the stored ones (folded local times) into ``record_flags``. Returns (loaded, quarantined).

    ``typed``: columns of ``checked`` without ``_raw_<column>`` text (see :func:`_rules`). ``in_order``:
    ``checked`` holds its records in the order of ``record_sql`` already (a table created from the file in
    file order; DuckDB keeps the insertion order), so the valid ones are inserted without sorting them."""
    spec = TABLES[table]
    cols = ", ".join(f'"{n}"' for n in spec.names)
    loaded = con.execute(
        f'INSERT INTO "{table}" ({cols}, _source, _record, _occurrence) '
        f'SELECT {cols}, {source_sql}, {record_sql}, _occ FROM {checked} WHERE _rule IS NULL'
        + ("" if in_order else f' ORDER BY {record_sql}')).fetchall()[0][0]
    q_table, q_source, q_record, q_line = quarantine
    quarantined = con.execute(f"""
        INSERT INTO quarantine ("table", source, record, line, rule, detail, code, params, raw)
        SELECT {q_table}, {q_source}, {q_record}, {q_line}, _rule, _detail, _code, _params, {_raw_json(table, typed)}
        FROM {checked} WHERE _rule IS NOT NULL AND _rule <> 'skip' ORDER BY {record_sql}""").fetchall()[0][0]
    if dst:
        entity = ("coalesce(equipment_id, scope)" if {"equipment_id", "scope"} <= set(spec.names)
                  else "equipment_id" if "equipment_id" in spec.names
                  else "scope" if "scope" in spec.names else "NULL")
        parts = [f"""SELECT {_lit(table)}, {source_sql}, {record_sql}, 'ambiguous_local_time', {_lit(c.name)},
                            {entity}, "{c.name}", "_raw_{c.name}"
                     FROM {checked} WHERE _rule IS NULL AND "_dst_{c.name}" = 'fold'"""
                 for c in spec.columns if c.type == "timestamp" and c.name not in typed]
        if parts:
            con.execute('INSERT INTO record_flags ("table", _source, _record, flag, "column", entity, ts, raw) '
                        + " UNION ALL ".join(parts))
    if table in ZONE_FLAGGED:  # naive times of a record booked to a scope whose equipment lie in several zones
        own = " AND equipment_id IS NULL" if "equipment_id" in spec.names else ""
        parts = [f"""SELECT {_lit(table)}, {source_sql}, {record_sql}, 'ambiguous_time_zone', {_lit(c.name)},
                            scope, "{c.name}", "_raw_{c.name}"
                     FROM {checked} WHERE _rule IS NULL AND _zz_nzones > 1{own} AND "{c.name}" IS NOT NULL
                       AND NOT regexp_matches("_raw_{c.name}", '{_OFFSET_RE}')"""
                 for c in spec.columns if c.type == "timestamp" and c.name not in typed]
        if parts:
            con.execute('INSERT INTO record_flags ("table", _source, _record, flag, "column", entity, ts, raw) '
                        + " UNION ALL ".join(parts))
    return int(loaded), int(quarantined)


# ---------------------------------------------------------------------------------------------------------
# the steps' SQL, shared by the file loader (_load) and load_records: one definition of every rule

def _mapped_exprs(table: str, mapping: Mapping, source_columns: list[str], what: str,
                  has: str) -> dict[str, str | None]:
    """Canonical column -> SQL expression over the source columns (None: no column).

    Raises IngestError for a required column without a source, MappingError for a mapped column the source
    lacks."""
    spec = TABLES[table]
    exprs: dict[str, str | None] = {}
    for col in spec.names:
        e = mapping.expression(col, source_columns)
        if e is None and col in ALIASES.get(table, {}) and col not in mapping.columns:
            alias_col, alias_sql = ALIASES[table][col]
            if alias_col in source_columns:
                e = alias_sql
        exprs[col] = e
    missing = [c.name for c in spec.columns if c.required and exprs[c.name] is None]
    if missing:
        raise IngestError(
            f"{what}: no column for required {', '.join(missing)} of table {table!r} "
            f"({has} {', '.join(source_columns)}; use canonical names or a mapping file)")
    return exprs


def _select_mapped(exprs: dict[str, str | None]) -> str:
    return ", ".join(f'CAST({e if e is not None else "NULL"} AS VARCHAR) AS "{c}"' for c, e in exprs.items())


def _map(con: duckdb.DuckDBPyConnection, relation: str, target: str, exprs: dict[str, str | None],
         mapping: Mapping, carried: dict[str, str], source_columns: list[str], what: str) -> None:
    """CREATE TEMP TABLE ``target``: the ``carried`` columns (name -> SQL over ``relation``) and every canonical
    column as text.

    Expressions of the mapping's ``sql`` entries run in :func:`zhizao.ingest.mapping.sandbox`, over a copy of
    the columns they may read: never on the store's connection.

    Raises
    ------
    IngestError
        A mapping expression fails on the records (the message names the mapping and the error).
    """
    sel = _select_mapped(exprs)
    keep = ", ".join(f"{e} AS {n}" for n, e in carried.items())
    if not mapping.has_sql:
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT {keep}, {sel} FROM {relation}")
        except duckdb.InterruptException:
            raise
        except duckdb.Error as e:
            raise IngestError(MAPPING_FAILS, mapping=mapping.source, what=what,
                              error=str(e).splitlines()[0]) from None
        return
    readable = (mapping.referenced_columns() | set(TABLES[mapping.table].names)
                | {a for a, _ in ALIASES.get(mapping.table, {}).values()})
    needed = [f'"{c}"' for c in source_columns if c in readable and c not in carried]
    src = con.sql(f"SELECT {keep}{', ' if needed else ''}{', '.join(needed)} FROM {relation}").to_arrow_table()
    sb = sandbox()
    dog = getattr(_WATCH, "dog", None)
    if dog is not None:
        dog.watch(sb)
    try:
        sb.register("_zz_src", src)
        out = sb.sql(f"SELECT {', '.join(carried)}, {sel} FROM _zz_src").to_arrow_table()
    except duckdb.InterruptException:
        raise
    except duckdb.Error as e:
        if dog is not None and dog.fired:
            raise duckdb.InterruptException("interrupted") from None
        raise IngestError(MAPPING_FAILS, mapping=mapping.source, what=what,
                          error=str(e).splitlines()[0]) from None
    finally:
        if dog is not None:
            dog.unwatch(sb)
        sb.close()
    del src
    con.register("_zz_sandboxed", out)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT * FROM _zz_sandboxed")
    finally:
        con.unregister("_zz_sandboxed")


def _tz_join(table: str, mapping: Mapping) -> tuple[str, str]:
    """(tz_expr, join): the zone of naive time stamps (the mapping's, else the equipment's, else the scope's,
    else UTC) as LEFT JOINs of the mapped records ``m`` with the equipment's zones (joins instead of a
    correlated subquery per time stamp column)."""
    spec = TABLES[table]
    if mapping.timezone:
        return _lit(mapping.timezone), ""
    zones, joins = [], []
    if "equipment_id" in spec.names and table != "equipment":
        # the zone of the equipment (ids are unique in the equipment table)
        zones.append("_zz_tz._zz_zone")
        # by the id as it is stored (trimmed): " M2 " is M2, whose naive times are in M2's zone
        joins.append("LEFT JOIN (SELECT equipment_id AS _zz_key, any_value(timezone) AS _zz_zone FROM equipment "
                     "GROUP BY ALL) _zz_tz ON _zz_tz._zz_key = trim(CAST(m.equipment_id AS VARCHAR))")
    if "scope" in spec.names:
        # the earliest zone name of the scope's equipment; how many zones its equipment are in (no zone is
        # UTC), and which (for the calendar's rule ambiguous_time_zone)
        zones.append("_zz_tzs._zz_zone")
        joins.append("LEFT JOIN (SELECT _zz_key, min(timezone) AS _zz_zone, "
                     "count(DISTINCT coalesce(timezone, 'UTC')) AS _zz_n, "
                     "string_agg(DISTINCT coalesce(timezone, 'UTC'), ', ' ORDER BY coalesce(timezone, 'UTC')) "
                     "AS _zz_list FROM (SELECT unnest([equipment_id, "
                     "work_center, area, site, enterprise]) AS _zz_key, timezone FROM equipment) "
                     "WHERE _zz_key IS NOT NULL GROUP BY ALL) _zz_tzs ON _zz_tzs._zz_key = "
                     "trim(CAST(m.scope AS VARCHAR))")
    if not zones:
        return "'UTC'", ""
    return f"coalesce({', '.join(zones)}, 'UTC')", " ".join(joins)


def _tz_expr(table: str, mapping: Mapping) -> str:
    """SQL (over mapped text columns ``m``) of the zone of naive time stamps: mapping, equipment, UTC."""
    spec = TABLES[table]
    tz_default = _lit(mapping.timezone) if mapping.timezone else None
    if "equipment_id" in spec.names and table != "equipment":
        return "coalesce(" + (tz_default + ", " if tz_default else "") + \
               "(SELECT e.timezone FROM equipment e WHERE e.equipment_id = m.equipment_id), 'UTC')"
    if "scope" in spec.names:
        return "coalesce(" + (tz_default + ", " if tz_default else "") + \
               "(SELECT min(e.timezone) FROM equipment e WHERE m.scope IN " \
               "(e.equipment_id, e.work_center, e.area, e.site, e.enterprise)), 'UTC')"
    return tz_default or "'UTC'"


def _timestamp_sql(name: str, v: str, z: str, dst: bool) -> tuple[str, str, str | None]:
    """(value, flag, join) of a time stamp column: the instant (TIMESTAMPTZ), ``'gap'`` / ``'fold'`` / null for a
    naive local time in a daylight-saving gap or fold, and the LEFT JOIN with ``_zz_dst`` it needs (or None).

    A naive time in a fold is the earlier of its two instants; only the rare times inside the special hours
    of ``_zz_dst`` pay for the exact check (a few more zone conversions)."""
    n = f"try_cast({v} AS TIMESTAMP)"
    off = f"regexp_matches({v}, '{_OFFSET_RE}')"
    u = f"timezone({z}, {n})"
    if not dst:
        return (f"CASE WHEN {off} THEN try_cast({v} AS TIMESTAMPTZ) ELSE try_cast({u} AS TIMESTAMPTZ) END",
                "CAST(NULL AS VARCHAR)", None)
    d = f'"_zz_d_{name}"'
    join = f"LEFT JOIN _zz_dst {d} ON {d}.zone = {z} AND {d}.hour = date_trunc('hour', {n})"
    # the local time read with the offsets in force 3 hours before and after DuckDB's instant
    eb = (f"CAST({n} - (timezone({z}, {u} - INTERVAL 3 HOUR) - CAST({u} - INTERVAL 3 HOUR AS TIMESTAMP)) "
          f"AS TIMESTAMPTZ)")
    ea = (f"CAST({n} - (timezone({z}, {u} + INTERVAL 3 HOUR) - CAST({u} + INTERVAL 3 HOUR AS TIMESTAMP)) "
          f"AS TIMESTAMPTZ)")
    fold_b = f"({eb} < {u} AND timezone({z}, {eb}) = {n})"
    fold_a = f"({ea} > {u} AND timezone({z}, {ea}) = {n})"
    value = (f"CASE WHEN {off} THEN try_cast({v} AS TIMESTAMPTZ) "
             f"WHEN {d}.hour IS NULL THEN try_cast({u} AS TIMESTAMPTZ) "
             f"WHEN {fold_b} THEN {eb} ELSE try_cast({u} AS TIMESTAMPTZ) END")
    flag = (f"CASE WHEN {d}.hour IS NULL THEN NULL WHEN {off} THEN NULL "
            f"WHEN timezone({z}, {u}) <> {n} THEN 'gap' WHEN {fold_b} OR {fold_a} THEN 'fold' END")
    return value, flag, join


def _parse_select(table: str, mapping: Mapping, mapped: str, carried: str, dst: bool) -> str:
    """SELECT over the mapped text records ``mapped`` (alias ``m``): the ``carried`` columns, per canonical
    column the typed value (null where unparseable) and ``_raw_<column>`` (trimmed text or null), and per time
    stamp column ``_dst_<column>`` (``'gap'``, ``'fold'`` or null)."""
    tz_expr, tz_join = _tz_join(table, mapping)
    joins = [tz_join] if tz_join else []
    parsed = [f"{tz_expr} AS _zz_zone"]
    if table in ZONE_CHECKED or table in ZONE_FLAGGED:  # the zones of the scope a naive time would be local to
        parsed.append("CAST(NULL AS BIGINT) AS _zz_nzones, CAST(NULL AS VARCHAR) AS _zz_zones" if mapping.timezone
                      else "_zz_tzs._zz_n AS _zz_nzones, _zz_tzs._zz_list AS _zz_zones")
    for c in TABLES[table].columns:
        v = f'nullif(trim(m."{c.name}"), \'\')'
        if c.type == "timestamp":
            p, flag, join = _timestamp_sql(c.name, v, tz_expr, dst)
            parsed.append(f'{flag} AS "_dst_{c.name}"')
            if join:
                joins.append(join)
        else:
            p = _value_sql(c.name, c.type, v, mapping)
        parsed.append(f'{p} AS "{c.name}", {v} AS "_raw_{c.name}"')
    return f"SELECT {carried}, {', '.join(parsed)} FROM {mapped} m {' '.join(joins)}"


def _state_case(mapping: Mapping) -> str:
    """The category of a raw state by the mapping (over the parsed column ``state``); null if unmapped."""
    smap = {**DEFAULT_STATE_MAP, **mapping.states}
    cases = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in smap.items())
    return f"CASE state {cases} ELSE NULL END"


def _event_sql(table: str, alias: str | None = None) -> str:
    """SQL condition: the record is an event (its key does not name it; see the module docstring)."""
    cols = TABLES[table].event_if_null
    if not cols:
        return "false"
    pre = f"{alias}." if alias else ""
    return " AND ".join(f'{pre}"{c}" IS NULL' for c in cols)


def _rule_cases(table: str, limits: Limits | None, now: pd.Timestamp | None, typed: frozenset[str] = frozenset(),
                naive: bool = False, known: str | None = None) -> tuple[str, str, str, str, str]:
    """(index, rule, detail, code, params): CASE parts numbering the first broken rule (``_ri``), then its name,
    English detail, message code and parameters by that number (each condition evaluated once)."""
    rules = _rules(table, "'UTC'", limits, now, typed, naive, known)
    index = " ".join(f"WHEN {cond} THEN {i}" for i, (_, cond, _) in enumerate(rules, 1))
    name = " ".join(f"WHEN {i} THEN {_lit(rule)}" for i, (rule, _, _) in enumerate(rules, 1))
    texts, codes, params = [], [], []
    for i, (_, _, (kind, ps)) in enumerate(rules, 1):
        text, obj = sql_detail(kind, **ps)
        texts.append(f"WHEN {i} THEN {text}")
        codes.append(f"WHEN {i} THEN {_lit(kind.code)}")
        params.append(f"WHEN {i} THEN {obj}")
    # a valid record (no rule broken) leaves each CASE at its first WHEN, not after one comparison per rule
    return (f"CASE {index} ELSE NULL END", f"CASE WHEN _ri IS NULL THEN NULL ELSE CASE _ri {name} END END",
            f"CASE WHEN _ri IS NULL THEN NULL ELSE CASE _ri {' '.join(texts)} END END",
            f"CASE WHEN _ri IS NULL THEN NULL ELSE CASE _ri {' '.join(codes)} END END",
            f"CASE WHEN _ri IS NULL THEN NULL ELSE CASE _ri {' '.join(params)} END END")


def _checked_sql(table: str, parsed: str, what: str, duplicates: bool = True, limits: Limits | None = None,
                 now: pd.Timestamp | None = None, typed: frozenset[str] = frozenset(), naive: bool = False,
                 known: str | None = None) -> str:
    """SELECT over ``parsed`` adding ``_rule``, ``_detail``, ``_code``, ``_params`` (the first broken rule) and
    ``_occ`` (the occurrence number of an event), then (``duplicates``) ``duplicate`` for a later record with
    the key of an earlier valid one (by ``_record``; else see :func:`_duplicates_sql`)."""
    spec = TABLES[table]
    index, name, detail, code, params = _rule_cases(table, limits, now, typed, naive, known)
    checked = (f"SELECT * EXCLUDE (_ri), {name} AS _rule, {detail} AS _detail, {code} AS _code, "
               f"CAST({params} AS JSON) AS _params, 1 AS _occ FROM (SELECT *, {index} AS _ri FROM {parsed} m)")
    if not duplicates:
        return checked
    key = ", ".join(f'"{k}"' for k in spec.key)
    ev = _event_sql(table)
    # events: the partition is all their values, so the row number is the occurrence of identical ones
    extra = "".join(f', CASE WHEN {ev} THEN "{n}" END' for n in spec.names if n not in spec.key) \
        if ev != "false" else ""
    dd, dc, dp = _duplicate_detail(table, what)
    return f"""
        WITH r AS ({checked}),
        d AS (
            SELECT *, CASE WHEN _rule IS NULL THEN
                row_number() OVER (PARTITION BY (_rule IS NULL), {key}{extra} ORDER BY _record) END AS _dup
            FROM r
        )
        SELECT * EXCLUDE (_dup) REPLACE (
            CASE WHEN _dup > 1 AND NOT ({ev}) THEN 'duplicate' ELSE _rule END AS _rule,
            CASE WHEN _dup > 1 AND NOT ({ev}) THEN {dd} ELSE _detail END AS _detail,
            CASE WHEN _dup > 1 AND NOT ({ev}) THEN {dc} ELSE _code END AS _code,
            CASE WHEN _dup > 1 AND NOT ({ev}) THEN CAST({dp} AS JSON) ELSE _params END AS _params,
            CASE WHEN _rule IS NULL AND {ev} THEN _dup ELSE 1 END AS _occ)
        FROM d"""


def _duplicate_detail(table: str, what: str) -> tuple[str, str, str]:
    """(detail, code, params) SQL of a ``duplicate``."""
    kind = R.DUPLICATE.get(what, R.DUPLICATE["records"])
    text, obj = sql_detail(kind, key=list(TABLES[table].key))
    return text, _lit(kind.code), obj


def _duplicates_sql(table: str, checked: str, what: str, group: str | None = None) -> list[str]:
    """UPDATEs of ``checked`` (rules applied): ``duplicate`` for every valid record (not an event) whose key an
    earlier valid record (lower ``_record``) has -- the file loader's window rule as an aggregate, cheaper where
    keys are mostly unique (only the repeated keys are joined back); for events, their occurrence number among
    identical events of their ``group`` (e.g. one MQTT message) and ``skip`` for an event identical, with the
    same occurrence number, to an earlier one of another group."""
    spec = TABLES[table]
    key = spec.key
    ev = _event_sql(table)
    on = " AND ".join(f'c."{k}" IS NOT DISTINCT FROM d."{k}"' for k in key)
    dd, dc, dp = _duplicate_detail(table, what)
    out = [f"""
        UPDATE {checked} c SET _rule = 'duplicate', _detail = {dd}, _code = {dc}, _params = CAST({dp} AS JSON)
        FROM (SELECT {", ".join(f'"{k}"' for k in key)}, min(_record) AS _first FROM {checked}
              WHERE _rule IS NULL AND NOT ({ev}) GROUP BY ALL HAVING count(*) > 1) d
        WHERE c._rule IS NULL AND NOT ({_event_sql(table, "c")}) AND {on} AND c._record > d._first"""]
    if ev != "false":
        values = ", ".join(f'"{n}"' for n in spec.names)
        out.append(f"""
            UPDATE {checked} c SET _occ = o._k
            FROM (SELECT _record AS _r, row_number() OVER (PARTITION BY {group or "NULL"}, {values} ORDER BY _record)
                         AS _k FROM {checked} WHERE _rule IS NULL AND {ev}) o
            WHERE c._record = o._r AND o._k > 1""")
        if group:
            out.append(f"""
                UPDATE {checked} c SET _rule = 'skip'
                FROM (SELECT _record AS _r, row_number() OVER (PARTITION BY {values}, _occ ORDER BY _record) AS _n
                      FROM {checked} WHERE _rule IS NULL AND {ev}) o
                WHERE c._record = o._r AND o._n > 1""")
    return out


def _against_stored(con: duckdb.DuckDBPyConnection, table: str, checked: str) -> None:
    """Mark the valid records of ``checked`` (its ``_record`` unique) against what ``table`` stores: one identical
    to a stored record (the same occurrence) ``skip``, one whose key names a stored record with other values
    ``conflicts_with_stored``; an event (its key does not name it, see the module docstring) conflicts with nothing.

    The batch is the build side of the join and the stored table is only scanned: a correlated EXISTS per record
    hashed the whole stored table twice (a quarter of a 50-record upload's time on a store of 110,000 states)."""
    spec = TABLES[table]
    on_key = " AND ".join(f'c."{k}" IS NOT DISTINCT FROM s."{k}"' for k in spec.key)
    same = " AND ".join(f'c."{n}" IS NOT DISTINCT FROM s."{n}"' for n in spec.names) + \
        " AND coalesce(s._occurrence, 1) = c._occ"
    cd, cc, cp = _conflict_detail(table)
    con.execute(f"""
        UPDATE {checked} SET _rule = CASE WHEN m._same THEN 'skip' ELSE 'conflicts_with_stored' END,
            _detail = {cd}, _code = {cc}, _params = {cp}
        FROM (SELECT c._record AS _r, bool_or({same}) AS _same
              FROM {checked} c JOIN "{table}" s ON {on_key}
              WHERE c._rule IS NULL AND (NOT ({_event_sql(table, "c")}) OR ({same})) GROUP BY c._record) m
        WHERE {checked}._record = m._r""")


def _conflict_detail(table: str) -> tuple[str, str, str]:
    """(detail, code, params) SQL of ``conflicts_with_stored``."""
    text, obj = sql_detail(R.CONFLICT, key=list(TABLES[table].key))
    return text, _lit(R.CONFLICT.code), f"CAST({obj} AS JSON)"


def _raw_json(table: str, typed: frozenset[str] = frozenset()) -> str:
    """The quarantine's ``raw``: the record's canonical columns as text, a JSON object."""
    return "to_json({" + ", ".join(f"'{n}': {_raw_sql(table, n, typed)}" for n in TABLES[table].names) + "})"


#: More bytes than the text of any TIMESTAMPTZ or DOUBLE value (``294247-01-10 04:00:54.775807+00``, 31;
#: ``-1.7976931348623157e+308``, 24): a typed column cannot break a ``field_too_long`` limit this large.
_TYPED_TEXT_MAX = 64


def _raw_sql(table: str, column: str, typed: frozenset[str] = frozenset()) -> str:
    """SQL of a parsed record's column as text: ``_raw_<column>``; for a column of ``typed`` (see
    :func:`_rules`) the column itself if it is text, else its value cast to VARCHAR, the text the text path
    would have read (session time zone UTC)."""
    if column in typed:
        if TABLES[table].column(column).type == "text":
            return f'"{column}"'
        return f"nullif(trim(CAST(\"{column}\" AS VARCHAR)), '')"
    return f'"_raw_{column}"'


_PLAIN_EXPR = re.compile(r'^(NULL|"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\')$')


def load_records(con: duckdb.DuckDBPyConnection, table: str, relation: str, columns: list[str], *,
                 source: str, mapping: Mapping | None = None, record: str = "_record",
                 quarantine_source: str | None = None, quarantine_record: str | None = None,
                 quarantine_line: str | None = None, what: str = "records", group: str | None = None,
                 limits: Limits | None = None) -> LoadReport:
    """Validate records given as a relation of text columns and store them, inside the caller's transaction.

    The records go through the file loader's steps (mapping, parsing, every validation rule of this module,
    ``duplicate`` within the relation, the record-key check against the store) with the same rules and
    quarantine reasons, vectorised in one DuckDB statement, then the valid ones are inserted into ``table``
    and the others into ``quarantine``. Used by live ingestion (:class:`zhizao.live.LiveIngestor`), one call
    per table and micro-batch.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        An open store with a transaction begun by the caller (this function neither commits nor rolls back:
        on an exception the caller rolls back).
    table : str
        Canonical table name (``zhizao.schema.TABLES``).
    relation : str
        A table or view name, or a parenthesised query, with the source columns as text (VARCHAR) and the
        column ``record``.
    columns : list of str
        The source columns the mapping sees (as a file's header). As for files, an alias (``ts`` for
        ``end``, ...) applies when its canonical column is not among them.
    source : str
        ``_source`` of the stored records (provenance) and default ``source`` of quarantined ones.
    mapping : Mapping, optional
        Default: the identity mapping of canonical columns (``default_mapping(table)``).
    record : str
        Column of ``relation`` numbering the records: unique integers (BIGINT); stored as ``_record``; of
        two records with the same key the one with the lower number is loaded, the other is a ``duplicate``.
    quarantine_source, quarantine_record, quarantine_line : str, optional
        SQL expressions over ``relation`` giving a quarantined record's ``source``, ``record`` and ``line``
        (defaults: ``source``, ``record``, NULL), e.g. an MQTT topic and the index in its payload.
    what : str
        ``"file"``, ``"batch"`` or ``"records"``: the whole named in a ``duplicate``'s detail.
    group : str, optional
        SQL expression over ``relation`` naming the source of each record (e.g. its MQTT message): identical
        events (see the module docstring) are counted per group, and an event identical to one of another
        group with the same occurrence number is skipped. Default: all records are one source.
    limits : Limits, optional
        Plausible times and values, field size (default :func:`zhizao.limits.current`).

    Returns
    -------
    LoadReport
        Counts of loaded, quarantined and skipped records (identical to a stored one). Nothing is written to
        ``loads`` (the file log).

    Raises
    ------
    IngestError
        A required column has no source column, or a mapping expression fails on the records (the message
        names the mapping and the error); nothing of this call is stored.
    MappingError
        The mapping names a source column that ``columns`` lacks.
    duckdb.Error
        Any other failure of the statement (the caller's transaction is then to be rolled back).

    Notes
    -----
    A rejected record's ``raw`` holds its canonical columns as text, as for files; the first broken rule wins
    in the order of :func:`_rules`. Temporary tables ``_zz_rec_mapped`` and ``_zz_rec_checked`` are dropped
    before returning.
    """
    if table not in TABLES:
        raise IngestError(f"unknown table {table!r}; canonical tables are {', '.join(TABLES)}")
    mapping = mapping or default_mapping(table)
    limits = limits or current()
    if mapping.table != table:
        raise IngestError(f"{mapping.source} maps table {mapping.table!r}, not {table!r}")
    exprs = _mapped_exprs(table, mapping, list(columns), what, "the records have")
    carried = {"_record": record, "_zz_q_source": quarantine_source or _lit(source),
               "_zz_q_record": quarantine_record or record, "_zz_q_line": quarantine_line or "NULL",
               "_zz_group": group or "NULL"}
    keep = ", ".join(f"{e} AS {n}" for n, e in carried.items())
    sel = _select_mapped(exprs)
    mapped = None
    dst = False
    try:
        if all(e is None or _PLAIN_EXPR.match(e) for e in exprs.values()):
            # column references and constants cannot fail: mapping, parsing and rules in one statement
            mapped = f"(SELECT {keep}, {sel} FROM {relation})"
        else:
            _map(con, relation, "_zz_rec_mapped", exprs, mapping, carried, list(columns), what)
            mapped = "_zz_rec_mapped"
        dst = _register_dst(con, table, mapping, limits)
        carried_cols = "m._record, m._zz_q_source, m._zz_q_record, m._zz_q_line, m._zz_group"
        parsed = f"({_parse_select(table, mapping, mapped, carried_cols, dst)})"
        if table == "states":
            parsed = f"(SELECT * REPLACE (coalesce(category, {_state_case(mapping)}) AS category) FROM {parsed})"
        n = con.execute(f"CREATE OR REPLACE TEMP TABLE _zz_rec_checked AS "
                        f"{_checked_sql(table, parsed, what, duplicates=False, limits=limits)}").fetchall()[0][0]
        for sql in _duplicates_sql(table, "_zz_rec_checked", what, "_zz_group" if group else None):
            con.execute(sql)
        _against_stored(con, table, "_zz_rec_checked")
        loaded, quarantined = _store(
            con, table, "_zz_rec_checked", _lit(source), "_record",
            quarantine=(_lit(table), "_zz_q_source", "_zz_q_record", "_zz_q_line"), dst=dst)
    finally:
        try:
            con.execute("DROP TABLE IF EXISTS _zz_rec_checked" + ("; DROP TABLE IF EXISTS _zz_rec_mapped"
                                                                  if mapped == "_zz_rec_mapped" else ""))
        except duckdb.Error:  # an aborted transaction: the caller's rollback removes them
            pass
        if dst:
            _unregister_dst(con)
    return LoadReport(table, source, int(loaded), int(quarantined), int(n - loaded - quarantined))


#: a validation rule: (rule, SQL condition, (message kind, its parameters for :func:`sql_detail`))
_Rule = tuple[str, str, tuple[MessageKind, dict[str, object]]]


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(_lit(v) for v in values) + ")"


def _rules(table: str, tz_expr: str = "'UTC'", limits: Limits | None = None, now: pd.Timestamp | None = None,
           typed: frozenset[str] = frozenset(), naive: bool = False, known: str | None = None) -> list[_Rule]:
    """(rule, SQL condition, (message kind, parameters)) triples in the order they are checked.

    Conditions and parameters are SQL over the parsed record (typed columns and ``_raw_<column>`` texts);
    parameters that are :class:`zhizao.ingest.rules.Sql` are expressions, the others constants. ``now`` is the
    load time (default: the present), from which measurements may not lie more than ``max_future_days`` ahead.

    ``typed`` names columns without a ``_raw_<column>`` text (see :func:`_typed_columns`): a text column
    whose value is its text, or a value read from a typed source column (a Parquet TIMESTAMPTZ or DOUBLE) whose
    text is the value cast to VARCHAR, as the text path reads it (:func:`_raw_sql`), built only for a rejected
    record's detail. For the latter the rules that such a value cannot break are left out, and only those:
    ``unparseable`` (the text of a value always parses back to it), ``invalid_offset``, ``ambiguous_time_zone``
    and ``nonexistent_local_time`` (the text of a TIMESTAMPTZ carries the offset +00) and ``field_too_long``
    where the limit is at least :data:`_TYPED_TEXT_MAX` bytes (longer than any such text); ``missing_field``
    reads the value itself (null exactly when its text is). With ``naive``, ``invalid_offset`` reads the text
    parsed as a naive time stamp from ``_zz_n_<column>`` (computed once by :func:`_load_bulk`). ``known``: a
    column holding ``equipment_id`` cast to the ENUM of the stored equipment ids (:data:`_EQ_ENUM`), null
    exactly where the id is not stored: ``unknown_equipment`` reads it instead of a subquery over ``equipment``.
    """
    spec = TABLES[table]
    limits = limits or current()
    short_limit = int(limits.max_field_bytes) < _TYPED_TEXT_MAX
    lo, hi = limits.time_range()
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
    horizon = now + pd.Timedelta(days=limits.max_future_days)
    out: list[_Rule] = []

    def raw(c: str) -> Sql:
        return Sql(_raw_sql(table, c, typed))

    for c in spec.columns:
        if c.required:
            out.append(("missing_field", f'"{c.name}" IS NULL' if c.name in typed else f'"_raw_{c.name}" IS NULL',
                        (R.MISSING, {"column": c.name})))
    for c in spec.columns:
        if c.name in typed and c.type != "text" and not short_limit:
            continue
        out.append(("field_too_long", f'strlen({raw(c.name)}) > {int(limits.max_field_bytes)}',
                    (R.FIELD_TOO_LONG, {"column": c.name, "bytes": Sql(f'strlen({raw(c.name)})'),
                                        "limit": int(limits.max_field_bytes)})))
    for c in spec.columns:
        if c.type != "text" and c.name not in typed:
            out.append(("unparseable", f'"_raw_{c.name}" IS NOT NULL AND "{c.name}" IS NULL',
                        (R.UNPARSEABLE, {"column": c.name, "value": raw(c.name), "type": c.type})))
    for group in spec.one_of:
        cond = " AND ".join(f'"{g}" IS NULL' for g in group)
        out.append(("missing_field", cond, (R.MISSING_ONE_OF, {"columns": list(group)})))
    stamps = [c.name for c in spec.columns if c.type == "timestamp"]
    for name in stamps:
        out.append(("time_out_of_range", f'"{name}" < {_ts_lit(lo)} OR "{name}" >= {_ts_lit(hi)}',
                    (R.TIME_OUT_OF_RANGE, {"column": name, "value": raw(name), "earliest": lo.isoformat(),
                                           "latest": hi.isoformat()})))
    if table in MEASURED_TABLES:
        for name in stamps:
            out.append(("time_out_of_range", f'"{name}" > {_ts_lit(horizon)}',
                        (R.TIME_IN_FUTURE, {"column": name, "value": raw(name), "days": f"{limits.max_future_days:g}",
                                            "today": now.date().isoformat()})))
    for name in stamps:
        if name in typed:
            continue
        n = f'"_zz_n_{name}"' if naive else f'try_cast("_raw_{name}" AS TIMESTAMP)'
        out.append(("invalid_offset",
                    f'abs(epoch({n}) - epoch("{name}")) > {_MAX_OFFSET_S}',
                    (R.INVALID_OFFSET, {"column": name, "value": raw(name)})))
    if table in ZONE_CHECKED:
        for name in stamps:
            if name in typed:
                continue
            out.append(("ambiguous_time_zone",
                        f'_zz_nzones > 1 AND NOT regexp_matches("_raw_{name}", \'{_OFFSET_RE}\')',
                        (R.AMBIGUOUS_ZONE, {"column": name, "value": raw(name), "scope": Sql("scope"),
                                            "zones": Sql("_zz_zones")})))
    for name in stamps:
        if name in typed:
            continue
        out.append(("nonexistent_local_time", f'"_dst_{name}" = \'gap\'',
                    (R.NONEXISTENT_LOCAL, {"column": name, "value": raw(name), "zone": Sql("_zz_zone")})))
    for c in spec.columns:
        if c.type == "float":
            out.append(("not_finite", f'NOT isfinite("{c.name}")',
                        (R.NOT_FINITE, {"column": c.name, "value": raw(c.name)})))
    for c in spec.columns:
        if c.type == "float":
            out.append(("value_out_of_range", f'abs("{c.name}") > {float(limits.max_abs_value)!r}',
                        (R.VALUE_OUT_OF_RANGE, {"column": c.name, "value": raw(c.name),
                                                "limit": f"{limits.max_abs_value:g}"})))
    if "timezone" in spec.names:
        out.append(("invalid_value",
                    "timezone IS NOT NULL AND timezone NOT IN (SELECT name FROM pg_timezone_names())",
                    (R.BAD_ZONE, {"value": Sql("timezone")})))
    if "start" in spec.names and "end" in spec.names:
        out.append(("end_not_after_start", '"start" IS NOT NULL AND "end" IS NOT NULL AND "end" <= "start"',
                    (R.END_NOT_AFTER_START, {"end_column": "end", "end": raw("end"), "start_column": "start",
                                             "start": raw("start")})))
    for c in spec.columns:
        if c.nonnegative:
            out.append(("negative_quantity", f'"{c.name}" < 0',
                        (R.NEGATIVE, {"column": c.name, "value": Sql(f'"{c.name}"')})))
    if table == "energy":
        out.append(("negative_quantity", "quantity < 0 AND coalesce(reading, 'interval') = 'interval'",
                    (R.NEGATIVE_INTERVAL, {"value": Sql("quantity")})))
    if table == "production":
        total = "coalesce(good, 0) + coalesce(scrap, 0) + coalesce(rework, 0)"
        out.append(("counts_exceed_produced", f"{total} > produced",
                    (R.COUNTS_EXCEED, {"sum": Sql(total), "produced": Sql("produced")})))
    if table == "quality":
        out.append(("lsl_above_usl", "lsl > usl", (R.LSL_ABOVE_USL, {"lsl": raw("lsl"), "usl": raw("usl")})))
    if table in _EQUIPMENT_REF:
        out.append(("unknown_equipment",
                    "equipment_id IS NOT NULL AND equipment_id NOT IN (SELECT equipment_id FROM equipment)"
                    if known is None else f"equipment_id IS NOT NULL AND {known} IS NULL",
                    (R.UNKNOWN_EQUIPMENT, {"id": Sql("equipment_id")})))
    if table in _SCOPE_REF:
        out.append(("unknown_equipment",
                    "scope IS NOT NULL AND NOT EXISTS (SELECT 1 FROM equipment e WHERE scope IN "
                    "(e.equipment_id, e.work_center, e.area, e.site, e.enterprise))",
                    (R.UNKNOWN_SCOPE, {"id": Sql("scope")})))
    for col, (ref_table, ref_col) in spec.refs.items():
        out.append(("unknown_reference",
                    f'"{col}" IS NOT NULL AND "{col}" NOT IN (SELECT "{ref_col}" FROM "{ref_table}")',
                    (R.UNKNOWN_REFERENCE, {"column": col, "value": Sql(f'"{col}"'), "table": ref_table})))
    if table == "development_cycles":
        out.append(("end_not_after_start", "release <= design_start",
                    (R.END_NOT_AFTER_START, {"end_column": "release", "end": raw("release"),
                                             "start_column": "design_start", "start": raw("design_start")})))
    if table == "states":
        out.append(("unmapped_state", "category IS NULL", (R.UNMAPPED_STATE, {"state": Sql("state")})))
        out.append(("invalid_value", f"category NOT IN {_in(DEFAULT_STATE_MAP)}",
                    (R.NOT_ALLOWED, {"column": "category", "value": Sql("category"),
                                     "allowed": list(DEFAULT_STATE_MAP)})))
    if table == "calendar":
        out.append(("invalid_value", f"kind NOT IN {_in(CALENDAR_KINDS)}",
                    (R.NOT_ALLOWED, {"column": "kind", "value": Sql("kind"), "allowed": list(CALENDAR_KINDS)})))
    if table == "quality":
        out.append(("invalid_value", f"result NOT IN {_in(QUALITY_RESULTS)}",
                    (R.NOT_ALLOWED, {"column": "result", "value": Sql("result"),
                                     "allowed": list(QUALITY_RESULTS)})))
    if table == "energy":
        out.append(("invalid_value", f"reading IS NOT NULL AND reading NOT IN {_in(ENERGY_READINGS)}",
                    (R.NOT_ALLOWED, {"column": "reading", "value": Sql("reading"),
                                     "allowed": list(ENERGY_READINGS)})))
        known = " OR ".join(f"(carrier = {_lit(c)} AND unit IN {_in(units)})" for c, units in
                            _units_by_carrier().items())
        out.append(("invalid_value", f"NOT ({known})",
                    (R.NO_CONVERSION, {"carrier": Sql("carrier"), "unit": Sql("unit")})))
        out.append(("missing_field", "coalesce(reading, 'interval') = 'interval' AND start IS NULL",
                    (R.MISSING_INTERVAL, {})))
    return out


def _units_by_carrier() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for (carrier, unit) in UNIT_TO_BASE:
        out.setdefault(carrier, []).append(unit)
    return out
