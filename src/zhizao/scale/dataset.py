"""The store as a Parquet dataset partitioned by site and month, and back.

Layout of a dataset directory (hive-style partitions, readable by DuckDB, Spark, pyarrow, ...)::

    DIR/zhizao-dataset.json                      manifest: format, version, id, row count per table
    DIR/equipment/site=S1/part_0.parquet         equipment by site (the site column is the partition)
    DIR/products/site=S1/part_0.parquet          products of an equipment by its site; general entries
                                                 (no equipment) under site=__HIVE_DEFAULT_PARTITION__
    DIR/states/site=S1/month=2024-01/part_0.parquet
    DIR/production/..., energy/..., quality/...  by the site of their equipment, or of their scope
    DIR/calendar/..., labour/..., variables/..., costs/...
                                                 by the site of their scope
    DIR/enterprises/part_0.parquet, projects/..., designations/..., development_cycles/...  (not partitioned)

``month`` is the UTC month (``YYYY-MM``) of a record's start (states, calendar, labour, variables, costs), of
``coalesce(start, end)`` (production, energy) or of ``ts`` (quality). A scope belongs to a site when every
equipment that has the scope as its equipment, work centre, area, site or enterprise id is in that site;
records of a scope above a site (an enterprise), of a scope in several sites, and of equipment without site
lie under ``site=__HIVE_DEFAULT_PARTITION__`` (read back as null). Every record is in the dataset once.

Besides the canonical columns every file holds ``_source`` and ``_record`` (the stored provenance) and
``_row``: the record's position in the store, so that a reader can restore the store's order (sums of
floating-point values depend on the order of their terms, and the Spark engine gives results identical to
the embedded engine's only in that order).

:func:`ingest_dataset` reads a dataset back into a store through the ingest stage's validation, quarantine and
record-level idempotency (:func:`zhizao.ingest.load.load_records`), all tables in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path

import duckdb

from zhizao.errors import InputError, NotFound
from zhizao.ingest.load import LoadReport, load_records
from zhizao.messages import define
from zhizao.schema import SQL_TYPES, TABLES

FORMAT = "zhizao-parquet-dataset"
VERSION = 1
MANIFEST = "zhizao-dataset.json"
#: hive's name of the partition of null values (DuckDB and Spark read it back as null)
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"

#: Tables the KPI engine reads, in the order a dataset is loaded (references first).
KPI_TABLES = ("equipment", "products", "states", "production", "calendar", "energy", "labour", "quality")
#: The programme tables: not partitioned.
PLAIN_TABLES = ("enterprises", "programmes", "programme_targets", "scopes", "projects", "designations",
                "development_cycles")
#: Load order of every table of a dataset (a referenced table before the tables referring to it).
LOAD_ORDER = ("equipment", "enterprises", "programmes", "programme_targets", "scopes", "projects", "designations",
              "development_cycles", "products", "states", "production", "calendar", "energy", "labour", "quality",
              "variables", "costs", "adjustments")
assert set(LOAD_ORDER) == set(TABLES), "every canonical table has a place in the dataset"

#: The time that decides a record's month.
MONTH_OF = {"states": "start", "production": "start_or_end", "energy": "start_or_end", "quality": "ts",
            "calendar": "start", "labour": "start", "variables": "start", "costs": "start", "adjustments": "start"}
#: How a record finds its site: through its equipment, its scope, or both (equipment first).
SITE_OF = {"states": ("equipment_id",), "production": ("equipment_id",), "energy": ("equipment_id", "scope"),
           "quality": ("equipment_id", "scope"), "products": ("equipment_id",), "calendar": ("scope",),
           "labour": ("scope",), "variables": ("scope",), "costs": ("scope",), "adjustments": ("scope",)}

NOT_EMPTY = define("dataset.not_empty", "%(path)s exists and is not a zhizao dataset; give an empty or new "
                                        "directory")
NO_DATASET = define("dataset.missing", "no zhizao dataset at %(path)s (%(manifest)s not found)")
BAD_DATASET = define("dataset.bad_manifest", "%(path)s is not a zhizao dataset of a version this zhizao reads "
                                             "(format %(format)s, version %(version)s)")
UNREADABLE = define("dataset.unreadable", "cannot read the %(table)s files of the dataset %(path)s: %(error)s")


def _lit(s: str | Path) -> str:
    return "'" + str(s).replace("'", "''") + "'"


#: distinct (sid, site) of every id of the equipment hierarchy, and the one site of each id (null when the id
#: is in several sites or only in equipment without site)
_SCOPE_SITE_SQL = """
    SELECT sid, CASE WHEN count(DISTINCT site) = 1 AND count(*) = count(site) THEN min(site) END AS site
    FROM (SELECT DISTINCT unnest([equipment_id, work_center, area, site, enterprise]) AS sid, site FROM equipment)
    WHERE sid IS NOT NULL GROUP BY sid"""


def _export_query(name: str) -> str:
    """The query of table ``name`` with its partition columns (``site``, ``month``) and ``_row``."""
    t = TABLES[name]
    either = ', coalesce(start, "end") AS start_or_end' if MONTH_OF.get(name) == "start_or_end" else ""
    base = f'(SELECT rowid AS _row, *{either} FROM "{name}")'
    extra = "x._source, x._record, x._row"
    if name == "equipment":
        cols = ", ".join(f'x."{c}"' for c in t.names if c != "site")
        return f"SELECT {cols}, {extra}, x.site FROM {base} x"
    cols = ", ".join(f'x."{c}"' for c in t.names)
    if name in PLAIN_TABLES:
        return f"SELECT {cols}, {extra} FROM {base} x"
    joins, sites = [], []
    for i, col in enumerate(SITE_OF[name]):
        if col == "equipment_id":
            joins.append(f"LEFT JOIN equipment e{i} ON e{i}.equipment_id = x.equipment_id")
            sites.append(f"e{i}.site")
        else:
            joins.append(f"LEFT JOIN _zz_scope_site s{i} ON s{i}.sid = x.{col}")
            sites.append(f"s{i}.site")
    site = sites[0] if len(sites) == 1 else \
        f"CASE WHEN x.equipment_id IS NOT NULL THEN {sites[0]} ELSE {sites[1]} END"
    month = "" if name == "products" else f", strftime(x.{MONTH_OF[name]}, '%Y-%m') AS month"
    return f"SELECT {cols}, {extra}, {site} AS site{month} FROM {base} x {' '.join(joins)}"


def export_dataset(con: duckdb.DuckDBPyConnection, path: str | Path) -> dict:
    """Write every canonical table of the store as a Parquet dataset partitioned by site and month.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        An open store.
    path : str or Path
        The dataset directory: new, empty, or an earlier zhizao dataset (which is replaced).

    Returns
    -------
    dict
        The manifest (also written to ``path/zhizao-dataset.json``): ``format``, ``version``, ``id``, and
        ``tables``: row count per table.

    Raises
    ------
    zhizao.errors.InputError
        ``path`` is a file, or a non-empty directory that is not a zhizao dataset.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir() or (any(path.iterdir()) and not (path / MANIFEST).is_file()):
            raise InputError(NOT_EMPTY, path=str(path))
        (path / MANIFEST).unlink(missing_ok=True)  # a dataset without manifest is incomplete
        for name in TABLES:
            shutil.rmtree(path / name, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    counts = {}
    con.execute(f"CREATE OR REPLACE TEMP TABLE _zz_scope_site AS {_SCOPE_SITE_SQL}")
    try:
        for name in LOAD_ORDER:
            n = con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]
            counts[name] = n
            if n == 0:
                continue
            out = path / name
            query = _export_query(name)
            if name in PLAIN_TABLES:
                out.mkdir()
                con.execute(f"COPY ({query} ORDER BY x._row) TO {_lit(out / 'part_0.parquet')} (FORMAT PARQUET)")
            else:
                parts = "site" if name in ("equipment", "products") else "site, month"
                con.execute(f"COPY ({query} ORDER BY x._row) TO {_lit(out)} "
                            f"(FORMAT PARQUET, PARTITION_BY ({parts}), FILENAME_PATTERN 'part_{{i}}')")
    finally:
        con.execute("DROP TABLE IF EXISTS _zz_scope_site")
    manifest = {"format": FORMAT, "version": VERSION, "id": uuid.uuid4().hex, "tables": counts,
                "partitioning": {"site": "site of the equipment or scope", "month": "UTC month, YYYY-MM"}}
    (path / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def read_manifest(path: str | Path) -> dict:
    """The manifest of the dataset at ``path``.

    Raises
    ------
    zhizao.errors.NotFound
        There is no manifest.
    zhizao.errors.InputError
        The manifest is not one of a dataset this zhizao reads.
    """
    path = Path(path)
    f = path / MANIFEST
    if not f.is_file():
        raise NotFound(NO_DATASET, path=str(path), manifest=MANIFEST)
    try:
        m = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        m = {}
    if m.get("format") != FORMAT or m.get("version") != VERSION:
        raise InputError(BAD_DATASET, path=str(path), format=m.get("format"), version=m.get("version"))
    return m


def table_files(path: str | Path, name: str) -> list[Path]:
    """The Parquet files of table ``name`` in the dataset at ``path`` (none for an empty table)."""
    d = Path(path) / name
    return sorted(d.rglob("*.parquet")) if d.is_dir() else []


def read_table_sql(path: str | Path, name: str) -> str | None:
    """DuckDB query of table ``name`` of the dataset: canonical columns in their types, ``_row``, and the
    partition columns, in the store's order; None for an empty table."""
    files = table_files(path, name)
    if not files:
        return None
    src = "[" + ", ".join(_lit(f) for f in files) + "]"
    hive = "false" if name in PLAIN_TABLES else "true"
    cols = ", ".join(f'CAST("{c.name}" AS {SQL_TYPES[c.type]}) AS "{c.name}"' for c in TABLES[name].columns)
    return (f"SELECT {cols}, _row FROM read_parquet({src}, hive_partitioning = {hive}, hive_types_autocast = false,"
            f" union_by_name = true) ORDER BY _row")


def ingest_dataset(con: duckdb.DuckDBPyConnection, path: str | Path) -> list[LoadReport]:
    """Load a dataset written by :func:`export_dataset` into the store, all tables in one transaction.

    Every record goes through the ingest stage's mapping, parsing and validation rules; rejected records land
    in the quarantine; a record identical to a stored one is skipped, so loading a dataset twice changes
    nothing. Stored records get ``_source`` ``<dataset directory>/<table>`` and ``_record`` their position in
    the exporting store plus one (the dataset's order is kept).

    Returns
    -------
    list of LoadReport
        One per table that has records.

    Raises
    ------
    zhizao.errors.NotFound, zhizao.errors.InputError
        No dataset at ``path``, or one this zhizao does not read; nothing is stored.
    """
    path = Path(path)
    manifest = read_manifest(path)
    reports = []
    con.execute("BEGIN TRANSACTION")
    try:
        for name in LOAD_ORDER:
            sql = read_table_sql(path, name)
            if sql is None:
                continue
            names = TABLES[name].names
            text = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in names)
            try:
                con.execute(f"CREATE OR REPLACE TEMP TABLE _zz_dataset AS SELECT {text}, _row + 1 AS _zz_rec "
                            f"FROM ({sql})")
            except duckdb.Error as e:
                raise InputError(UNREADABLE, table=name, path=str(path), error=str(e).splitlines()[0]) from None
            source = f"{path.name}/{name}"
            r = load_records(con, name, "_zz_dataset", names, source=source, record="_zz_rec", what="dataset")
            con.execute("DROP TABLE _zz_dataset")
            sha = hashlib.sha256(f"{manifest['id']}/{name}".encode()).hexdigest()
            con.execute('INSERT INTO loads ("table", source, sha256, mapping_sha256, loaded, quarantined, skipped) '
                        "VALUES (?, ?, ?, NULL, ?, ?, ?)", [name, source, sha, r.loaded, r.quarantined, r.skipped])
            reports.append(r)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return reports
