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
from dataclasses import dataclass
from pathlib import Path

import duckdb

from zhizao.ingest.mapping import ALIASES, Mapping, default_mapping
from zhizao.kpi.energy import UNIT_TO_BASE
from zhizao.schema import (CALENDAR_KINDS, DEFAULT_STATE_MAP, DESIGNATIONS, ENERGY_READINGS, PROJECT_TYPES,
                           QUALITY_RESULTS, TABLES)


class IngestError(ValueError):
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
_SCOPE_REF = {"calendar", "labour", "energy", "quality", "variables", "projects", "designations", "costs"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _lit(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _read_sql(path: Path, mapping: Mapping) -> str:
    fmt = mapping.read.get("format") or ("parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv")
    if fmt == "parquet":
        return f"SELECT * FROM read_parquet({_lit(str(path))})"
    if fmt != "csv":
        raise IngestError(f"{path}: unknown format {fmt!r} in mapping (csv or parquet)")
    opts = ["all_varchar = true"]
    if "delimiter" in mapping.read:
        opts.append(f"delim = {_lit(mapping.read['delimiter'])}")
    if "quote" in mapping.read:
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
    if "encoding" in mapping.read:
        opts.append(f"encoding = {_lit(mapping.read['encoding'])}")
    return f"SELECT * FROM read_csv({_lit(str(path))}, {', '.join(opts)})"


def load_file(con: duckdb.DuckDBPyConnection, table: str, path: str | Path,
              mapping: Mapping | None = None) -> LoadReport:
    """Load one CSV or Parquet file into canonical table ``table``.

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

    Returns
    -------
    LoadReport
        Counts of loaded, quarantined and skipped (already stored) records.

    Raises
    ------
    IngestError
        The file cannot be read at all, or lacks a required column; nothing is stored.
    """
    if table not in TABLES:
        raise IngestError(f"unknown table {table!r}; canonical tables are {', '.join(TABLES)}")
    path = Path(path)
    mapping = mapping or default_mapping(table)
    if mapping.table != table:
        raise IngestError(f"{mapping.source} maps table {mapping.table!r}, not {table!r}")
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    sha = _sha256(path)
    source = path.name
    done = con.execute(
        'SELECT count(*) FROM loads WHERE "table" = ? AND sha256 = ? AND mapping_sha256 IS NOT DISTINCT FROM ?',
        [table, sha, mapping.sha256]).fetchall()[0][0]
    if done:
        return LoadReport(table, source, already_loaded=True)

    try:
        rel = con.sql(_read_sql(path, mapping))
        source_columns = list(rel.columns)
    except duckdb.Error as e:
        raise IngestError(f"{path}: cannot read file: {str(e).splitlines()[0]}") from None

    con.execute("BEGIN TRANSACTION")
    try:
        report = _load(con, table, path, source, sha, mapping, source_columns)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for t in ("_zz_raw", "_zz_mapped", "_zz_parsed", "_zz_checked"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    return report


def _load(con, table, path, source, sha, mapping, source_columns) -> LoadReport:
    spec = TABLES[table]
    try:
        con.execute(f"CREATE TEMP TABLE _zz_raw AS SELECT row_number() OVER () AS _record, * FROM "
                    f"({_read_sql(path, mapping)})")
    except duckdb.Error as e:
        raise IngestError(f"{path}: cannot read file: {str(e).splitlines()[0]}") from None
    header_offset = 1 if mapping.read.get("header", True) and mapping.read.get("format") != "parquet" \
        and path.suffix.lower() not in (".parquet", ".pq") else 0

    # 1. map: every canonical column as text
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
            f"{path}: no column for required {', '.join(missing)} of table {table!r} "
            f"(the file has {', '.join(source_columns)}; use canonical names or a mapping file)")
    sel = ", ".join(f'CAST({e if e is not None else "NULL"} AS VARCHAR) AS "{c}"' for c, e in exprs.items())
    try:
        con.execute(f"CREATE TEMP TABLE _zz_mapped AS SELECT _record, {sel} FROM _zz_raw")
    except duckdb.Error as e:
        raise IngestError(f"{mapping.source}: a mapping expression fails on {path.name}: "
                          f"{str(e).splitlines()[0]}") from None

    # 2. parse into types (null where unparseable; the raw text stays for the rules)
    tz_default = _lit(mapping.timezone) if mapping.timezone else None
    if "equipment_id" in spec.names and table != "equipment":
        tz_expr = "coalesce(" + (tz_default + ", " if tz_default else "") + \
                  "(SELECT e.timezone FROM equipment e WHERE e.equipment_id = m.equipment_id), 'UTC')"
    elif "scope" in spec.names:
        tz_expr = "coalesce(" + (tz_default + ", " if tz_default else "") + \
                  "(SELECT min(e.timezone) FROM equipment e WHERE m.scope IN " \
                  "(e.equipment_id, e.work_center, e.area, e.site, e.enterprise)), 'UTC')"
    else:
        tz_expr = tz_default or "'UTC'"
    parsed = []
    for c in spec.columns:
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
    con.execute(f"CREATE TEMP TABLE _zz_parsed AS SELECT m._record, {', '.join(parsed)} FROM _zz_mapped m")

    # 3. state categories from the mapping (a given category column wins)
    if table == "states":
        smap = {**DEFAULT_STATE_MAP, **mapping.states}
        cases = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in smap.items())
        con.execute(f'UPDATE _zz_parsed SET category = CASE state {cases} ELSE NULL END WHERE category IS NULL')

    # 4. rules, first broken one wins
    rules = _rules(table, tz_expr)
    case = " ".join(f"WHEN {cond} THEN {_lit(rule)}" for rule, cond, _ in rules)
    detail = " ".join(f"WHEN {cond} THEN {det}" for rule, cond, det in rules)
    key = ", ".join(f'"{k}"' for k in spec.key)
    con.execute(f"""
        CREATE TEMP TABLE _zz_checked AS
        WITH r AS (
            SELECT *, CASE {case} ELSE NULL END AS _rule, CASE {detail} ELSE NULL END AS _detail
            FROM _zz_parsed m
        ), d AS (
            SELECT *, CASE WHEN _rule IS NULL THEN
                row_number() OVER (PARTITION BY (_rule IS NULL), {key} ORDER BY _record) END AS _dup
            FROM r
        )
        SELECT * REPLACE (
            CASE WHEN _dup > 1 THEN 'duplicate' ELSE _rule END AS _rule,
            CASE WHEN _dup > 1 THEN 'same key as an earlier record of this file: {", ".join(spec.key)}'
                 ELSE _detail END AS _detail)
        FROM d""")

    # 5. against what is stored: identical -> skip, same key with other values -> conflict
    on_key = " AND ".join(f'c."{k}" IS NOT DISTINCT FROM s."{k}"' for k in spec.key)
    same = " AND ".join(f'c."{n}" IS NOT DISTINCT FROM s."{n}"' for n in spec.names)
    con.execute(f"""
        UPDATE _zz_checked c SET _rule = CASE WHEN EXISTS (SELECT 1 FROM "{table}" s WHERE {on_key} AND {same})
                THEN 'skip' ELSE 'conflicts_with_stored' END,
            _detail = 'a stored record has the same key ({", ".join(spec.key)}) but other values'
        WHERE c._rule IS NULL AND EXISTS (SELECT 1 FROM "{table}" s WHERE {on_key})""")

    cols = ", ".join(f'"{n}"' for n in spec.names)
    con.execute(f'INSERT INTO "{table}" ({cols}, _source, _record) '
                f'SELECT {cols}, {_lit(source)}, _record FROM _zz_checked WHERE _rule IS NULL ORDER BY _record')
    raw_struct = ", ".join(f"'{n}': \"_raw_{n}\"" for n in spec.names)
    con.execute(f"""
        INSERT INTO quarantine ("table", source, record, line, rule, detail, raw)
        SELECT {_lit(table)}, {_lit(source)}, _record, _record + {header_offset}, _rule, _detail,
               to_json({{{raw_struct}}})
        FROM _zz_checked WHERE _rule IS NOT NULL AND _rule <> 'skip' ORDER BY _record""")
    loaded, quarantined, skipped = con.execute("""
        SELECT count(*) FILTER (WHERE _rule IS NULL), count(*) FILTER (WHERE _rule IS NOT NULL AND _rule <> 'skip'),
               count(*) FILTER (WHERE _rule = 'skip') FROM _zz_checked""").fetchall()[0]
    con.execute('INSERT INTO loads ("table", source, sha256, mapping_sha256, loaded, quarantined, skipped) '
                'VALUES (?, ?, ?, ?, ?, ?, ?)', [table, source, sha, mapping.sha256, loaded, quarantined, skipped])
    return LoadReport(table, source, loaded, quarantined, skipped)


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
    if table == "projects":
        out.append(("invalid_value", f"type NOT IN {_in(PROJECT_TYPES)}",
                    f"'type ' || type || ' is not one of {', '.join(PROJECT_TYPES)}'"))
        out.append(("end_not_after_start", "commissioning_end < start",
                    "'commissioning_end is before start'"))
    if table == "designations":
        out.append(("invalid_value", f"designation NOT IN {_in(DESIGNATIONS)}",
                    f"'designation ' || designation || ' is not one of {', '.join(DESIGNATIONS)}'"))
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
