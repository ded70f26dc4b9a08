"""Loading a file into a canonical table: read, map, parse, validate, quarantine, store, atomically.

Validation rules (the ``rule`` of a quarantined record; the first broken rule is reported):

==========================  ======================================================================
rule                        meaning
==========================  ======================================================================
missing_field               a required column is empty (detail names the column)
unparseable                 a value cannot be parsed as its type (detail names column and value)
end_not_after_start         ``end <= start``
negative_quantity           a quantity or duration that must be >= 0 is negative
counts_exceed_produced      good + scrap + rework > produced
unknown_equipment           equipment_id (or scope) is not in the equipment table
unknown_reference           a foreign key (enterprise_id, project_id) is not in its table
unmapped_state              the raw state has no category in the mapping (never guessed)
invalid_value               a code outside its list (calendar kind, quality result, energy reading,
                            state category, time zone, unit)
duplicate                   the same record key occurs earlier in the same file
conflicts_with_stored       a stored record has the same key but different values
==========================  ======================================================================

A record identical to a stored one is skipped (loading the same data twice changes nothing), and a file
whose bytes were already loaded with the same mapping is not read again. The load runs in one transaction:
an error or an interrupt (Ctrl-C) leaves the store as it was.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from zhizao.ingest.mapping import ALIASES, Mapping, default_mapping
from zhizao.ingest.reader import is_workbook, readable
from zhizao.kpi.energy import UNIT_TO_BASE
from zhizao.schema import (CALENDAR_KINDS, DEFAULT_STATE_MAP, ENERGY_READINGS, QUALITY_RESULTS, REGISTER_TABLES,
                           TABLES)
from zhizao.errors import InputError


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
_OFFSET_RE = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)? ?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$"

#: tables whose equipment_id must exist in the equipment table
_EQUIPMENT_REF = {"states", "production", "energy", "quality", "products"}
#: tables whose scope must be an equipment, work_center, area, site or enterprise id
_SCOPE_REF = {"calendar", "labour", "energy", "quality", "variables", "costs"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _lit(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def read_sql(path: str | Path, mapping: Mapping) -> str:
    """The SQL query that reads a file as the ingest stage reads it, before any mapping.

    Parameters
    ----------
    path : str or Path
        CSV, Parquet or .xlsx file (by the mapping's ``read.format`` or the suffix).
    mapping : Mapping
        Its ``read`` options apply (delimiter, quote, header, names, skip, strict, encoding, sheet). CSV
        columns are read as text (``all_varchar``), with no type sniffing.

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
    if mapping.read.get("format") not in (None, "csv", "parquet", "xlsx"):
        raise IngestError(f"{path}: unknown format {mapping.read['format']!r} in mapping (csv, parquet or xlsx)")
    # the one place of encodings and workbooks: GBK/GB18030 text and .xlsx become a UTF-8 CSV
    workbook = is_workbook(path, mapping.read.get("format"))
    path, fmt = readable(path, mapping.read, mapping.table)
    if fmt == "parquet":
        return f"SELECT * FROM read_parquet({_lit(str(path))})"
    opts = ["all_varchar = true"]
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


def load_file(con: duckdb.DuckDBPyConnection, table: str, path: str | Path,
              mapping: Mapping | None = None, provenance: str | None = None, *, update: bool = False,
              actor: str | None = None, reason: str | None = None) -> LoadReport:
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
    """
    if table not in TABLES:
        raise IngestError(f"unknown table {table!r}; canonical tables are {', '.join(TABLES)}")
    if table in REGISTER_TABLES:
        from zhizao.portfolio.register import load_register_file

        return load_register_file(con, table, path, mapping, update=update, actor=actor, reason=reason)
    if update:
        raise IngestError(f"--update applies to the register tables ({', '.join(REGISTER_TABLES)}), "
                          f"not to {table!r}")
    path = Path(path)
    mapping = mapping or default_mapping(table)
    if mapping.table != table:
        raise IngestError(f"{mapping.source} maps table {mapping.table!r}, not {table!r}")
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    sha = _sha256(path)
    source = path.name
    earlier = con.execute(
        'SELECT count(*), count(*) FILTER (WHERE coalesce(quarantined, 0) = 0) FROM loads WHERE "table" = ? '
        'AND sha256 = ? AND mapping_sha256 IS NOT DISTINCT FROM ?', [table, sha, mapping.sha256]).fetchall()[0]
    if earlier[1]:
        return LoadReport(table, source, already_loaded=True)

    try:
        rel = con.sql(read_sql(path, mapping))
        source_columns = list(rel.columns)
    except duckdb.Error as e:
        raise IngestError(f"{path}: cannot read file: {str(e).splitlines()[0]}") from None

    con.execute("BEGIN TRANSACTION")
    try:
        if earlier[0]:  # loaded before with rejections: this load's quarantine replaces that one's
            con.execute('DELETE FROM quarantine WHERE "table" = ? AND source = ?', [table, source])
        report = _load(con, table, path, source, sha, mapping, source_columns, provenance)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for t in ("_zz_raw", "_zz_mapped", "_zz_parsed", "_zz_checked"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    return report


def _load(con, table, path, source, sha, mapping, source_columns, provenance=None) -> LoadReport:
    spec = TABLES[table]
    try:
        con.execute(f"CREATE TEMP TABLE _zz_raw AS SELECT row_number() OVER () AS _record, * FROM "
                    f"({read_sql(path, mapping)})")
    except duckdb.Error as e:
        raise IngestError(f"{path}: cannot read file: {str(e).splitlines()[0]}") from None
    header_offset = 1 if mapping.read.get("header", True) and mapping.read.get("format") != "parquet" \
        and path.suffix.lower() not in (".parquet", ".pq") else 0

    # 1. map: every canonical column as text
    exprs = _mapped_exprs(table, mapping, source_columns, str(path), "the file has")
    sel = ", ".join(f'CAST({e if e is not None else "NULL"} AS VARCHAR) AS "{c}"' for c, e in exprs.items())
    try:
        con.execute(f"CREATE TEMP TABLE _zz_mapped AS SELECT _record, {sel} FROM _zz_raw")
    except duckdb.Error as e:
        raise IngestError(f"{mapping.source}: a mapping expression fails on {path.name}: "
                          f"{str(e).splitlines()[0]}") from None

    # 2. parse into types (null where unparseable; the raw text stays for the rules)
    tz_expr = _tz_expr(table, mapping)
    parsed = ", ".join(_parsed_exprs(table, mapping, tz_expr))
    con.execute(f"CREATE TEMP TABLE _zz_parsed AS SELECT m._record, {parsed} FROM _zz_mapped m")

    # 3. state categories from the mapping (a given category column wins)
    if table == "states":
        con.execute(f'UPDATE _zz_parsed SET category = {_state_case(mapping)} WHERE category IS NULL')

    # 4. rules, first broken one wins
    con.execute(f"CREATE TEMP TABLE _zz_checked AS {_checked_sql(table, tz_expr, '_zz_parsed', 'file')}")

    # 5. against what is stored: identical -> skip, same key with other values -> conflict
    on_key = " AND ".join(f'c."{k}" IS NOT DISTINCT FROM s."{k}"' for k in spec.key)
    same = " AND ".join(f'c."{n}" IS NOT DISTINCT FROM s."{n}"' for n in spec.names)
    con.execute(f"""
        UPDATE _zz_checked c SET _rule = CASE WHEN EXISTS (SELECT 1 FROM "{table}" s WHERE {on_key} AND {same})
                THEN 'skip' ELSE 'conflicts_with_stored' END,
            _detail = {_lit(_conflict_detail(table))}
        WHERE c._rule IS NULL AND EXISTS (SELECT 1 FROM "{table}" s WHERE {on_key})""")

    cols = ", ".join(f'"{n}"' for n in spec.names)
    con.execute(f'INSERT INTO "{table}" ({cols}, _source, _record) '
                f'SELECT {cols}, {_lit(source)}, _record FROM _zz_checked WHERE _rule IS NULL ORDER BY _record')
    con.execute(f"""
        INSERT INTO quarantine ("table", source, record, line, rule, detail, raw)
        SELECT {_lit(table)}, {_lit(source)}, _record, _record + {header_offset}, _rule, _detail,
               {_raw_json(table)}
        FROM _zz_checked WHERE _rule IS NOT NULL AND _rule <> 'skip' ORDER BY _record""")
    loaded, quarantined, skipped = con.execute("""
        SELECT count(*) FILTER (WHERE _rule IS NULL), count(*) FILTER (WHERE _rule IS NOT NULL AND _rule <> 'skip'),
               count(*) FILTER (WHERE _rule = 'skip') FROM _zz_checked""").fetchall()[0]
    from zhizao.provenance import sidecar_provenance

    con.execute('INSERT INTO loads ("table", source, sha256, mapping_sha256, loaded, quarantined, skipped, '
                'provenance) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                [table, source, sha, mapping.sha256, loaded, quarantined, skipped,
                 provenance or sidecar_provenance(path)])
    return LoadReport(table, source, loaded, quarantined, skipped)


# ---------------------------------------------------------------------------------------------------------
# the steps' SQL, shared by the file loader (_load) and load_records: one definition of every rule

def _mapped_exprs(table: str, mapping: Mapping, source_columns, what: str, has: str) -> dict[str, str | None]:
    """Canonical column -> SQL expression over the source columns (None: no column).

    Raises IngestError for a required column without a source, MappingError for a mapped column the source
    lacks."""
    spec = TABLES[table]
    exprs = {}
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


def _tz_join(table: str, mapping: Mapping) -> tuple[str, str]:
    """(tz_expr, join): :func:`_tz_expr` as a LEFT JOIN of the mapped records ``m`` with the equipment's zones
    (one join instead of a correlated subquery per time stamp column; the same zone for every record)."""
    spec = TABLES[table]
    tz_default = _lit(mapping.timezone) if mapping.timezone else None
    expr = "coalesce(" + (tz_default + ", " if tz_default else "") + "_zz_tz._zz_zone, 'UTC')"
    if "equipment_id" in spec.names and table != "equipment":
        # the scalar subquery's zone of the equipment (ids are unique in the equipment table)
        return expr, ("LEFT JOIN (SELECT equipment_id AS _zz_key, any_value(timezone) AS _zz_zone FROM equipment "
                      "GROUP BY ALL) _zz_tz ON _zz_tz._zz_key = m.equipment_id")
    if "scope" in spec.names:
        return expr, ("LEFT JOIN (SELECT _zz_key, min(timezone) AS _zz_zone FROM (SELECT unnest([equipment_id, "
                      "work_center, area, site, enterprise]) AS _zz_key, timezone FROM equipment) "
                      "WHERE _zz_key IS NOT NULL GROUP BY ALL) _zz_tz ON _zz_tz._zz_key = m.scope")
    return _tz_expr(table, mapping), ""


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


def _parsed_exprs(table: str, mapping: Mapping, tz_expr: str) -> list[str]:
    """Per column: the typed value (null where unparseable) and ``_raw_<column>`` (trimmed text or null)."""
    parsed = []
    for c in TABLES[table].columns:
        v = f'nullif(trim(m."{c.name}"), \'\')'
        if c.type == "timestamp":
            p = (f"CASE WHEN regexp_matches({v}, '{_OFFSET_RE}') THEN try_cast({v} AS TIMESTAMPTZ) "
                 f"ELSE try_cast(timezone({tz_expr}, try_cast({v} AS TIMESTAMP)) AS TIMESTAMPTZ) END")
        elif c.type == "float":
            p = f"try_cast({v} AS DOUBLE)"
            if c.name in mapping.scale:
                p = f"({p} * {mapping.scale[c.name]!r})"
        elif c.type == "bool":
            p = f"try_cast({v} AS BOOLEAN)"
        else:
            p = v
        parsed.append(f'{p} AS "{c.name}", {v} AS "_raw_{c.name}"')
    return parsed


def _state_case(mapping: Mapping) -> str:
    """The category of a raw state by the mapping (over the parsed column ``state``); null if unmapped."""
    smap = {**DEFAULT_STATE_MAP, **mapping.states}
    cases = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in smap.items())
    return f"CASE state {cases} ELSE NULL END"


def _checked_sql(table: str, tz_expr: str, parsed: str, what: str, duplicates: bool = True) -> str:
    """SELECT over ``parsed`` adding ``_rule`` and ``_detail``: the first broken rule, then (``duplicates``)
    ``duplicate`` for a later record with the key of an earlier valid one (by ``_record``; else see
    :func:`_duplicates_sql`)."""
    spec = TABLES[table]
    rules = _rules(table, tz_expr)
    case = " ".join(f"WHEN {cond} THEN {_lit(rule)}" for rule, cond, _ in rules)
    detail = " ".join(f"WHEN {cond} THEN {det}" for rule, cond, det in rules)
    if not duplicates:
        # each condition evaluated (and bound) once: the number of the first broken rule, then its name and detail
        index = " ".join(f"WHEN {cond} THEN {i}" for i, (_, cond, _) in enumerate(rules, 1))
        name = " ".join(f"WHEN {i} THEN {_lit(rule)}" for i, (rule, _, _) in enumerate(rules, 1))
        detail = " ".join(f"WHEN {i} THEN {det}" for i, (_, _, det) in enumerate(rules, 1))
        return (f"SELECT * EXCLUDE (_ri), CASE _ri {name} ELSE NULL END AS _rule, "
                f"CASE _ri {detail} ELSE NULL END AS _detail "
                f"FROM (SELECT *, CASE {index} ELSE NULL END AS _ri FROM {parsed} m)")
    key = ", ".join(f'"{k}"' for k in spec.key)
    return f"""
        WITH r AS (
            SELECT *, CASE {case} ELSE NULL END AS _rule, CASE {detail} ELSE NULL END AS _detail
            FROM {parsed} m
        ), d AS (
            SELECT *, CASE WHEN _rule IS NULL THEN
                row_number() OVER (PARTITION BY (_rule IS NULL), {key} ORDER BY _record) END AS _dup
            FROM r
        )
        SELECT * REPLACE (
            CASE WHEN _dup > 1 THEN 'duplicate' ELSE _rule END AS _rule,
            CASE WHEN _dup > 1 THEN 'same key as an earlier record of this {what}: {", ".join(spec.key)}'
                 ELSE _detail END AS _detail)
        FROM d"""


def _duplicate_detail(table: str, what: str) -> str:
    return f"same key as an earlier record of this {what}: {', '.join(TABLES[table].key)}"


def _duplicates_sql(table: str, checked: str, what: str) -> str:
    """UPDATE of ``checked`` (rules applied) marking ``duplicate`` every valid record whose key an earlier valid
    record (lower ``_record``) has: the file loader's window rule as an aggregate, cheaper where keys are
    mostly unique (only the repeated keys are joined back)."""
    key = TABLES[table].key
    on = " AND ".join(f'c."{k}" IS NOT DISTINCT FROM d."{k}"' for k in key)
    return f"""
        UPDATE {checked} c SET _rule = 'duplicate', _detail = {_lit(_duplicate_detail(table, what))}
        FROM (SELECT {", ".join(f'"{k}"' for k in key)}, min(_record) AS _first FROM {checked}
              WHERE _rule IS NULL GROUP BY ALL HAVING count(*) > 1) d
        WHERE c._rule IS NULL AND {on} AND c._record > d._first"""


def _conflict_detail(table: str) -> str:
    return f"a stored record has the same key ({', '.join(TABLES[table].key)}) but other values"


def _raw_json(table: str) -> str:
    """The quarantine's ``raw``: the record's canonical columns as text, a JSON object."""
    return "to_json({" + ", ".join(f"'{n}': \"_raw_{n}\"" for n in TABLES[table].names) + "})"


_PLAIN_EXPR = re.compile(r'^(NULL|"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\')$')


def load_records(con: duckdb.DuckDBPyConnection, table: str, relation: str, columns: list[str], *,
                 source: str, mapping: Mapping | None = None, record: str = "_record",
                 quarantine_source: str | None = None, quarantine_record: str | None = None,
                 quarantine_line: str | None = None, what: str = "records") -> LoadReport:
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
        Name of the whole in messages (``'same key as an earlier record of this <what>'``).

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
    spec = TABLES[table]
    mapping = mapping or default_mapping(table)
    if mapping.table != table:
        raise IngestError(f"{mapping.source} maps table {mapping.table!r}, not {table!r}")
    exprs = _mapped_exprs(table, mapping, list(columns), what, "the records have")
    carried = (f"{record} AS _record, {quarantine_source or _lit(source)} AS _zz_q_source, "
               f"{quarantine_record or record} AS _zz_q_record, {quarantine_line or 'NULL'} AS _zz_q_line")
    sel = ", ".join(f'CAST({e if e is not None else "NULL"} AS VARCHAR) AS "{c}"' for c, e in exprs.items())
    mapped = None
    try:
        if all(e is None or _PLAIN_EXPR.match(e) for e in exprs.values()):
            # column references and constants cannot fail: mapping, parsing and rules in one statement
            mapped = f"(SELECT {carried}, {sel} FROM {relation})"
        else:
            try:
                con.execute(f"CREATE OR REPLACE TEMP TABLE _zz_rec_mapped AS SELECT {carried}, {sel} FROM {relation}")
            except duckdb.Error as e:
                raise IngestError(f"{mapping.source}: a mapping expression fails on {what}: "
                                  f"{str(e).splitlines()[0]}") from None
            mapped = "_zz_rec_mapped"
        tz_expr, tz_join = _tz_join(table, mapping)
        parsed = (f"(SELECT m._record, m._zz_q_source, m._zz_q_record, m._zz_q_line, "
                  f"{', '.join(_parsed_exprs(table, mapping, tz_expr))} FROM {mapped} m {tz_join})")
        if table == "states":
            parsed = f"(SELECT * REPLACE (coalesce(category, {_state_case(mapping)}) AS category) FROM {parsed})"
        n = con.execute(f"CREATE OR REPLACE TEMP TABLE _zz_rec_checked AS "
                        f"{_checked_sql(table, tz_expr, parsed, what, duplicates=False)}").fetchall()[0][0]
        con.execute(_duplicates_sql(table, "_zz_rec_checked", what))
        # against what is stored: identical -> skip, same key with other values -> conflict. The batch is the
        # build side of the join (the stored table is only scanned), unlike a correlated EXISTS.
        on_key = " AND ".join(f'c."{k}" IS NOT DISTINCT FROM s."{k}"' for k in spec.key)
        same = " AND ".join(f'c."{c}" IS NOT DISTINCT FROM s."{c}"' for c in spec.names)
        con.execute(f"""
            UPDATE _zz_rec_checked SET _rule = CASE WHEN m._same THEN 'skip' ELSE 'conflicts_with_stored' END,
                _detail = {_lit(_conflict_detail(table))}
            FROM (SELECT c._record AS _r, bool_or({same}) AS _same
                  FROM _zz_rec_checked c JOIN "{table}" s ON {on_key}
                  WHERE c._rule IS NULL GROUP BY c._record) m
            WHERE _zz_rec_checked._record = m._r""")
        cols = ", ".join(f'"{c}"' for c in spec.names)
        loaded = con.execute(
            f'INSERT INTO "{table}" ({cols}, _source, _record) SELECT {cols}, {_lit(source)}, _record '
            f'FROM _zz_rec_checked WHERE _rule IS NULL ORDER BY _record').fetchall()[0][0]
        quarantined = con.execute(f"""
            INSERT INTO quarantine ("table", source, record, line, rule, detail, raw)
            SELECT {_lit(table)}, _zz_q_source, _zz_q_record, _zz_q_line, _rule, _detail, {_raw_json(table)}
            FROM _zz_rec_checked WHERE _rule IS NOT NULL AND _rule <> 'skip' ORDER BY _record""").fetchall()[0][0]
    finally:
        try:
            con.execute("DROP TABLE IF EXISTS _zz_rec_checked" + ("; DROP TABLE IF EXISTS _zz_rec_mapped"
                                                                  if mapped == "_zz_rec_mapped" else ""))
        except duckdb.Error:  # an aborted transaction: the caller's rollback removes them
            pass
    return LoadReport(table, source, int(loaded), int(quarantined), int(n - loaded - quarantined))


def _in(values) -> str:
    return "(" + ", ".join(_lit(v) for v in values) + ")"


def _rules(table: str, tz_expr: str) -> list[tuple[str, str, str]]:
    """(rule, SQL condition, SQL detail) triples in the order they are checked."""
    spec = TABLES[table]
    out = []
    for c in spec.columns:
        if c.required:
            out.append(("missing_field", f'"_raw_{c.name}" IS NULL', _lit(f"{c.name} is empty")))
    for c in spec.columns:
        if c.type != "text":
            out.append(("unparseable", f'"_raw_{c.name}" IS NOT NULL AND "{c.name}" IS NULL',
                        f"'{c.name} = ' || \"_raw_{c.name}\" || ' is not a valid {c.type}'"))
    for group in spec.one_of:
        cond = " AND ".join(f'"{g}" IS NULL' for g in group)
        out.append(("missing_field", cond, _lit(f"one of {', '.join(group)} is needed")))
    if "timezone" in spec.names:
        out.append(("invalid_value",
                    "timezone IS NOT NULL AND timezone NOT IN (SELECT name FROM pg_timezone_names())",
                    "'timezone ' || timezone || ' is not an IANA time zone'"))
    if "start" in spec.names and "end" in spec.names:
        out.append(("end_not_after_start", '"start" IS NOT NULL AND "end" IS NOT NULL AND "end" <= "start"',
                    "'end ' || \"_raw_end\" || ' is not after start ' || \"_raw_start\""))
    for c in spec.columns:
        if c.nonnegative:
            out.append(("negative_quantity", f'"{c.name}" < 0', f"'{c.name} = ' || \"{c.name}\" || ' < 0'"))
    if table == "energy":
        out.append(("negative_quantity", "quantity < 0 AND coalesce(reading, 'interval') = 'interval'",
                    "'interval quantity ' || quantity || ' < 0'"))
    if table == "production":
        out.append(("counts_exceed_produced",
                    "coalesce(good, 0) + coalesce(scrap, 0) + coalesce(rework, 0) > produced",
                    "'good + scrap + rework = ' || (coalesce(good, 0) + coalesce(scrap, 0) + coalesce(rework, 0))"
                    " || ' > produced = ' || produced"))
    if table in _EQUIPMENT_REF:
        out.append(("unknown_equipment",
                    "equipment_id IS NOT NULL AND equipment_id NOT IN (SELECT equipment_id FROM equipment)",
                    "'equipment ' || equipment_id || ' is not in the equipment table'"))
    if table in _SCOPE_REF:
        out.append(("unknown_equipment",
                    "scope IS NOT NULL AND NOT EXISTS (SELECT 1 FROM equipment e WHERE scope IN "
                    "(e.equipment_id, e.work_center, e.area, e.site, e.enterprise))",
                    "'scope ' || scope || ' is no equipment, work_center, area, site or enterprise'"))
    for col, (ref_table, ref_col) in spec.refs.items():
        out.append(("unknown_reference",
                    f'"{col}" IS NOT NULL AND "{col}" NOT IN (SELECT "{ref_col}" FROM "{ref_table}")',
                    f"'{col} ' || \"{col}\" || ' is not in table {ref_table}'"))
    if table == "development_cycles":
        out.append(("end_not_after_start", "release <= design_start", "'release is not after design_start'"))
    if table == "states":
        out.append(("unmapped_state", "category IS NULL",
                    "'state ' || state || ' has no category in the mapping'"))
        out.append(("invalid_value", f"category NOT IN {_in(DEFAULT_STATE_MAP)}",
                    "'category ' || category || ' is not a state category'"))
    if table == "calendar":
        out.append(("invalid_value", f"kind NOT IN {_in(CALENDAR_KINDS)}",
                    f"'kind ' || kind || ' is not one of {', '.join(CALENDAR_KINDS)}'"))
    if table == "quality":
        out.append(("invalid_value", f"result NOT IN {_in(QUALITY_RESULTS)}",
                    "'result ' || result || ' is not pass or fail'"))
    if table == "energy":
        out.append(("invalid_value", f"reading IS NOT NULL AND reading NOT IN {_in(ENERGY_READINGS)}",
                    "'reading ' || reading || ' is not interval or cumulative'"))
        known = " OR ".join(f"(carrier = {_lit(c)} AND unit IN {_in(units)})" for c, units in
                            _units_by_carrier().items())
        out.append(("invalid_value", f"NOT ({known})",
                    "'no conversion for carrier ' || carrier || ' in unit ' || unit"))
        out.append(("missing_field", "coalesce(reading, 'interval') = 'interval' AND start IS NULL",
                    "'an interval reading needs start and end (a cumulative register needs reading: cumulative)'"))
    return out


def _units_by_carrier() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for (carrier, unit) in UNIT_TO_BASE:
        out.setdefault(carrier, []).append(unit)
    return out
