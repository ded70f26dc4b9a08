"""Mapping files: how a foreign file format becomes a canonical table, described as data (YAML), not code.

A mapping file looks like this (every key but ``table`` is optional)::

    table: energy                 # the canonical table this source feeds
    description: 15-min electricity of a steel plant
    read:                         # how to read the file (DuckDB read_csv options)
      format: csv                 # csv or parquet; default from the file extension
      delimiter: ","
      header: true
      names: [label, ts]          # column names when the file has no header
      quote: '"'
      strict: false               # tolerate files that are not RFC 4180 (stray carriage returns)
      encoding: utf-8
    timezone: Asia/Seoul          # zone of naive time stamps (default: the equipment's zone, else UTC)
    columns:                      # canonical column: a source column, a SQL expression, or a constant
      meter_id: {value: steel-main}
      end: {sql: "strptime(date, '%d/%m/%Y %H:%M')"}
      quantity: Usage_kWh
    scale:                        # unit conversion: multiply a numeric canonical column by a factor
      quantity: 1.0
    states:                       # raw machine state -> state category
      RUN: production

SQL expressions are DuckDB expressions over the source columns, which are read as text (cast them as
needed). Canonical columns not named in ``columns`` are taken from a source column of the same name when
there is one. Without a mapping file the source must use the canonical column names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from zhizao.errors import InputError
from zhizao.schema import STATE_CATEGORIES, TABLES


class MappingError(InputError):
    """A mapping file is malformed; the message names the file and the offending key."""


@dataclass
class Mapping:
    """A parsed mapping file (see the module docstring for the format)."""

    table: str
    columns: dict[str, dict] = field(default_factory=dict)
    read: dict = field(default_factory=dict)
    timezone: str | None = None
    scale: dict[str, float] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    description: str = ""
    source: str = "<default>"
    sha256: str | None = None

    def expression(self, column: str, source_columns: list[str]) -> str | None:
        """SQL expression (over the raw text columns) that yields canonical ``column``, or None."""
        spec = self.columns.get(column)
        if spec is None:
            if column in source_columns:
                return _quote(column)
            return None
        if "value" in spec:
            v = spec["value"]
            if v is None:
                return "NULL"
            return "'" + str(v).replace("'", "''") + "'"
        if "sql" in spec:
            return f"({spec['sql']})"
        col = spec["column"]
        if col not in source_columns:
            raise MappingError(
                f"{self.source}: column {column!r} maps from source column {col!r}, which the file does not have "
                f"(it has {', '.join(source_columns)})"
            )
        return _quote(col)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load_mapping(path: str | Path) -> Mapping:
    """Read and check a mapping file.

    Parameters
    ----------
    path : str or Path
        YAML file in the format of this module's docstring.

    Returns
    -------
    Mapping

    Raises
    ------
    MappingError
        If the file cannot be read, names an unknown table or canonical column, or maps a state to an unknown
        category.
    """
    path = Path(path)
    try:
        text = path.read_bytes()
        doc = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as e:
        raise MappingError(f"{path}: cannot read mapping file: {e}") from None
    if not isinstance(doc, dict) or "table" not in doc:
        raise MappingError(f"{path}: a mapping file needs a 'table' key")
    table = doc["table"]
    if table not in TABLES:
        raise MappingError(f"{path}: unknown table {table!r}; canonical tables are {', '.join(TABLES)}")
    names = set(TABLES[table].names)
    columns = {}
    for col, spec in (doc.get("columns") or {}).items():
        if col not in names:
            raise MappingError(f"{path}: {col!r} is not a column of canonical table {table!r}")
        if isinstance(spec, str):
            spec = {"column": spec}
        elif not isinstance(spec, dict) or not ({"column", "sql", "value"} & set(spec)):
            raise MappingError(f"{path}: column {col!r} needs a source column name, {{sql: ...}} or {{value: ...}}")
        columns[col] = spec
    scale = {}
    for col, factor in (doc.get("scale") or {}).items():
        if col not in names or TABLES[table].column(col).type != "float":
            raise MappingError(f"{path}: scale applies to numeric columns of {table!r}, not {col!r}")
        scale[col] = float(factor)
    states = {str(k): str(v) for k, v in (doc.get("states") or {}).items()}
    for raw, cat in states.items():
        if cat not in STATE_CATEGORIES:
            raise MappingError(
                f"{path}: state {raw!r} maps to {cat!r}, not a state category ({', '.join(sorted(STATE_CATEGORIES))})"
            )
    return Mapping(
        table=table,
        columns=columns,
        read=dict(doc.get("read") or {}),
        timezone=doc.get("timezone"),
        scale=scale,
        states=states,
        description=str(doc.get("description") or ""),
        source=str(path),
        sha256=hashlib.sha256(text).hexdigest(),
    )


def default_mapping(table: str) -> Mapping:
    """The identity mapping of canonical files, with the aliases DESIGN.md allows.

    ``ts`` stands for ``end`` in production and energy, and a ``date`` column gives labour records the local
    day as their interval.
    """
    m = Mapping(table=table)
    return m


#: Column aliases of canonical files: table -> {canonical column: (source column, SQL over it)}.
ALIASES = {
    "production": {"end": ("ts", '"ts"')},
    "energy": {"end": ("ts", '"ts"')},
    "labour": {
        "start": ("date", 'CAST(CAST("date" AS DATE) AS TIMESTAMP)'),
        "end": ("date", 'CAST(CAST("date" AS DATE) AS TIMESTAMP) + INTERVAL 1 DAY'),
    },
}


def bundled_mapping(name: str) -> Path:
    """Path of a mapping file shipped with zhizao (``data/mappings/<name>.yaml``)."""
    return Path(__file__).resolve().parent.parent / "data" / "mappings" / f"{name}.yaml"
