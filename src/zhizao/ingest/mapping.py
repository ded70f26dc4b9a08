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

What a mapping can do is confined (an uploaded mapping is untrusted input):

- the YAML is read with a safe loader that refuses aliases (an "alias bomb" of a few hundred bytes would
  otherwise expand to hundreds of megabytes) and files larger than ``max_mapping_bytes``
  (:mod:`zhizao.limits`);
- each ``sql`` is parsed by DuckDB's own parser (:func:`check_expression`) and must be exactly one scalar
  expression: no statement separator, no comment, no subquery, no table, no ``*``, no parameter, no window,
  no lambda, and only the functions and operators of :data:`ALLOWED_FUNCTIONS` (text, numbers, dates and
  times; nothing that reads settings, files or the environment); column references are plain names;
- the expressions are evaluated in a separate in-memory DuckDB connection opened with external access
  disabled and its configuration locked (:func:`sandbox`), which holds nothing but the records being mapped:
  the store's tables, files on the host and extensions are out of its reach.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from zhizao.errors import InputError, TooLarge
from zhizao.messages import Message, define
from zhizao.schema import STATE_CATEGORIES, TABLES

BAD_EXPRESSION = define("mapping.bad_expression", "%(source)s: column %(column)s: %(why)s")
MAPPING_TOO_LARGE = define("mapping.too_large", "%(source)s: a mapping file of %(bytes)s bytes is larger than the "
                                                "limit of %(limit)s bytes")
YAML_ALIAS = define("mapping.yaml_alias", "%(source)s: YAML aliases (*name) are not allowed in mapping files "
                                          "(line %(line)s)")
# reasons of BAD_EXPRESSION
WHY_PARSE = define("mapping.why_parse", "the SQL expression cannot be parsed: %(error)s")
WHY_STATEMENTS = define("mapping.why_statements", "the SQL must be one expression, not statements or clauses")
WHY_COMMENT = define("mapping.why_comment", "the SQL expression must not contain comments")
WHY_NODE = define("mapping.why_node", "%(what)s is not allowed in a mapping expression")
WHY_FUNCTION = define("mapping.why_function", "function or operator %(name)s is not allowed in a mapping "
                                              "expression")
WHY_QUALIFIED = define("mapping.why_qualified", "column reference %(name)s must be a plain column name")
WHY_NOT_TEXT = define("mapping.why_not_text", "sql must be a text")


class MappingError(InputError):
    """A mapping file is malformed; the message names the file and the offending key."""


class MappingSqlError(MappingError):
    """A mapping's SQL expression is not one allowed scalar expression (see :func:`check_expression`)."""


#: Functions and operators a mapping expression may call (DuckDB names): text, numbers, dates and times.
#: Anything else (settings, files, environment, extensions, aggregates, tables) is refused.
ALLOWED_FUNCTIONS = frozenset([
    "lower", "upper", "lcase", "ucase", "trim", "ltrim", "rtrim", "substr", "substring", "left", "right",
    "replace", "concat", "concat_ws", "length", "strlen", "char_length", "split_part", "regexp_replace",
    "regexp_extract", "regexp_matches", "regexp_full_match", "starts_with", "ends_with", "suffix", "prefix",
    "contains", "lpad", "rpad", "strip_accents", "reverse", "instr", "position", "strpos", "format", "printf",
    "nullif", "greatest", "least", "abs", "round", "floor", "ceil", "ceiling", "trunc", "sqrt", "pow", "power",
    "ln", "log", "log10", "log2", "exp", "sign", "mod", "strptime", "try_strptime", "strftime", "make_date",
    "make_time", "make_timestamp", "make_timestamptz", "to_timestamp", "epoch_ms", "epoch", "epoch_us",
    "date_trunc", "date_part", "datepart", "date_add", "date_sub", "date_diff", "datediff", "to_seconds",
    "to_minutes", "to_hours", "to_days", "to_weeks", "to_months", "to_years", "to_milliseconds",
    "to_microseconds", "timezone", "year", "month", "day", "hour", "minute", "second", "dayofweek", "dayofyear",
    "isodow", "week", "md5", "hash", "ascii", "chr", "unicode", "translate", "list_value", "list_extract",
    "array_extract", "list_element", "element_at", "string_split", "str_split", "len", "array_length", "isnan",
    "isinf", "isfinite", "like_escape", "ilike_escape", "not_like_escape", "not_ilike_escape", "if", "+", "-",
    "*", "/", "//", "%", "**", "^", "||", "~~", "!~~", "~~*", "!~~*", "&", "|", "<<", ">>", "~"
])

#: Expression node classes of DuckDB's parse tree a mapping expression may contain.
_ALLOWED_NODES = frozenset({"CONSTANT", "COLUMN_REF", "FUNCTION", "CAST", "CASE", "COMPARISON", "CONJUNCTION",
                            "OPERATOR", "BETWEEN", "TYPE", "COLLATE"})
_NODE_NAMES = {"SUBQUERY": "a subquery", "STAR": "* or COLUMNS(...)", "PARAMETER": "a parameter",
               "WINDOW": "a window function", "LAMBDA": "a lambda", "DEFAULT": "DEFAULT",
               "POSITIONAL_REFERENCE": "a positional reference"}
#: Operator node types allowed (IN lists, IS NULL, NOT, COALESCE, list and struct access)
_ALLOWED_OPERATORS = frozenset({"COMPARE_IN", "COMPARE_NOT_IN", "OPERATOR_IS_NULL", "OPERATOR_IS_NOT_NULL",
                                "OPERATOR_NOT", "OPERATOR_COALESCE", "ARRAY_EXTRACT", "ARRAY_SLICE",
                                "STRUCT_EXTRACT", "OPERATOR_NULLIF", "OPERATOR_TRY"})


@functools.lru_cache(maxsize=1)
def _parser() -> duckdb.DuckDBPyConnection:
    """A private in-memory connection used only to parse (never to run) mapping expressions."""
    return duckdb.connect(":memory:", config={"enable_external_access": False, "lock_configuration": True})


@functools.lru_cache(maxsize=1)
def _skeleton() -> dict[str, Any]:
    node: dict[str, Any] = _strip(json.loads(_serialized("SELECT NULL"))["statements"][0]["node"])
    return node


def _serialized(sql: str) -> str:
    """DuckDB's JSON serialisation of the statement ``sql`` (the query returns one row always)."""
    row = _parser().execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    assert row is not None
    text: str = row[0]
    return text


def _strip(node: Any) -> Any:
    """The parse tree without source positions and without the select list (to compare the statement shape)."""
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items()
                if k not in ("query_location", "query_location_length", "select_list")}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def check_expression(sql: object, column: str = "?", source: str = "<mapping>") -> frozenset[str]:
    """Check that ``sql`` is one allowed scalar expression; return the column names it references.

    Parameters
    ----------
    sql : str
        A mapping's ``sql`` text (any other value, as YAML may give, is refused).
    column, source : str
        The canonical column and the mapping's name, for the message.

    Returns
    -------
    frozenset of str
        The (plain) column names the expression reads.

    Raises
    ------
    MappingSqlError
        The text is not exactly one expression (several statements, a clause such as ``FROM`` or ``WHERE``,
        a comment), or contains a subquery, ``*``, a parameter, a window, a lambda, a qualified column
        reference, or a function or operator outside :data:`ALLOWED_FUNCTIONS`.
    """
    if not isinstance(sql, str):
        raise MappingSqlError(BAD_EXPRESSION, source=source, column=column, why=WHY_NOT_TEXT())
    checked = _check(sql)
    if isinstance(checked, Message):
        raise MappingSqlError(BAD_EXPRESSION, source=source, column=column, why=checked)
    return checked


_PARSER_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1024)
def _check(sql: str) -> frozenset[str] | Message:
    """The columns of an allowed expression, else the reason it is refused."""
    try:
        if any(t == duckdb.token_type.comment for _, t in duckdb.tokenize(sql)):
            return WHY_COMMENT()
    except (RuntimeError, duckdb.Error) as e:  # the tokenizer's own complaints
        return WHY_PARSE(error=str(e).splitlines()[0][:200])
    with _PARSER_LOCK:
        tree = json.loads(_serialized("SELECT " + sql))
        skeleton = _skeleton()
    if tree.get("error"):
        return WHY_PARSE(error=str(tree.get("error_message", "")).splitlines()[0][:200])
    statements = tree.get("statements") or []
    if len(statements) != 1:
        return WHY_STATEMENTS()
    node = statements[0]["node"]
    if node.get("type") != "SELECT_NODE" or len(node.get("select_list") or []) != 1 or _strip(node) != skeleton:
        return WHY_STATEMENTS()
    columns: set[str] = set()

    def walk(n: Any) -> Message | None:  # a node of the JSON parse tree
        if isinstance(n, list):
            for v in n:
                why = walk(v)
                if why is not None:
                    return why
            return None
        if not isinstance(n, dict):
            return None
        cls = n.get("class")
        if cls is not None:
            if cls not in _ALLOWED_NODES:
                return WHY_NODE(what=_NODE_NAMES.get(cls, cls.lower()))
            if n.get("alias"):
                return WHY_STATEMENTS()
            if cls == "FUNCTION":
                name = str(n.get("function_name", "")).lower()
                if (name not in ALLOWED_FUNCTIONS or n.get("schema") or n.get("catalog") or n.get("filter")
                        or n.get("distinct") or (n.get("order_bys") or {}).get("orders")):
                    return WHY_FUNCTION(name=name)
            elif cls == "OPERATOR" and n.get("type") not in _ALLOWED_OPERATORS:
                return WHY_NODE(what=str(n.get("type", "")).lower())
            elif cls == "COLUMN_REF":
                names = n.get("column_names") or []
                if len(names) != 1:
                    return WHY_QUALIFIED(name=".".join(map(str, names)))
                columns.add(names[0])
        for k, v in n.items():
            if k != "literal":
                why = walk(v)
                if why is not None:
                    return why
        return None

    why = walk(node["select_list"][0])
    return why if why is not None else frozenset(columns)


def sandbox() -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection for evaluating mapping expressions: external access (files, network,
    extensions) disabled, configuration locked, session time zone UTC. Register the records to map on it
    (``con.register(name, arrow_table)``); nothing else is there."""
    con = duckdb.connect(":memory:", config={
        "enable_external_access": False, "autoload_known_extensions": False, "autoinstall_known_extensions": False,
        "allow_community_extensions": False})
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET lock_configuration = true")
    return con


# PyYAML ships no types and no stub package is pinned, so its SafeLoader is Any to mypy
class _NoAliasLoader(yaml.SafeLoader):  # type: ignore[misc]
    """PyYAML's safe loader refusing aliases (``*name``): no document can expand beyond its own size."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _AliasRefused(event.start_mark.line + 1)
        return super().compose_node(parent, index)


class _AliasRefused(Exception):
    def __init__(self, line: int):
        super().__init__(line)
        self.line = line


@dataclass
class Mapping:
    """A parsed mapping file (see the module docstring for the format)."""

    table: str
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    read: dict[str, Any] = field(default_factory=dict)
    timezone: str | None = None
    scale: dict[str, float] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    description: str = ""
    source: str = "<default>"
    sha256: str | None = None

    def __post_init__(self) -> None:
        for col, spec in self.columns.items():
            if isinstance(spec, dict) and "sql" in spec:
                check_expression(spec["sql"], col, self.source)

    @property
    def has_sql(self) -> bool:
        """Whether a column is given by an SQL expression (evaluated in :func:`sandbox`)."""
        return any(isinstance(s, dict) and "sql" in s for s in self.columns.values())

    def referenced_columns(self) -> set[str]:
        """Source column names the mapping reads through ``column`` entries and SQL expressions."""
        out = set()
        for col, spec in self.columns.items():
            if isinstance(spec, dict) and "column" in spec:
                out.add(str(spec["column"]))
            elif isinstance(spec, dict) and "sql" in spec:
                out |= check_expression(spec["sql"], col, self.source)
        return out

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
            return f"({spec['sql']}\n)"
        col = spec["column"]
        if col not in source_columns:
            raise MappingError(
                f"{self.source}: column {column!r} maps from source column {col!r}, which the file does not have "
                f"(it has {', '.join(source_columns)})"
            )
        return _quote(col)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load_mapping(path: str | Path, max_bytes: int | None = None) -> Mapping:
    """Read and check a mapping file.

    Parameters
    ----------
    path : str or Path
        YAML file in the format of this module's docstring.
    max_bytes : int, optional
        Largest file accepted (default: ``max_mapping_bytes`` of :func:`zhizao.limits.current`).

    Returns
    -------
    Mapping

    Raises
    ------
    MappingError
        If the file cannot be read, uses YAML aliases, names an unknown table or canonical column, maps a state
        to an unknown category, or gives a scale that is not a finite number.
    MappingSqlError
        An SQL expression is not one allowed expression (:func:`check_expression`).
    zhizao.errors.TooLarge
        The file is larger than ``max_bytes``.
    """
    from zhizao.limits import current

    path = Path(path)
    limit = current().max_mapping_bytes if max_bytes is None else int(max_bytes)
    try:
        size = path.stat().st_size
        if size > limit:
            raise TooLarge(MAPPING_TOO_LARGE, source=str(path), bytes=size, limit=limit)
        with open(path, "rb") as f:
            text = f.read(limit + 1)
        if len(text) > limit:
            raise TooLarge(MAPPING_TOO_LARGE, source=str(path), bytes=len(text), limit=limit)
        doc = yaml.load(text, Loader=_NoAliasLoader)
    except _AliasRefused as e:
        raise MappingError(YAML_ALIAS, source=str(path), line=e.line) from None
    except (OSError, yaml.YAMLError, ValueError) as e:
        raise MappingError(f"{path}: cannot read mapping file: {e}") from None
    if not isinstance(doc, dict) or "table" not in doc:
        raise MappingError(f"{path}: a mapping file needs a 'table' key")
    table = doc["table"]
    if not isinstance(table, str) or table not in TABLES:
        raise MappingError(f"{path}: unknown table {table!r}; canonical tables are {', '.join(TABLES)}")
    for key, kind in (("columns", dict), ("scale", dict), ("states", dict), ("read", dict),
                      ("timezone", str), ("description", str)):
        if doc.get(key) is not None and not isinstance(doc[key], kind):
            raise MappingError(f"{path}: {key!r} must be a {'mapping' if kind is dict else 'text'}")
    for key in ("delimiter", "quote", "encoding"):
        if key in (doc.get("read") or {}) and not isinstance(doc["read"][key], str):
            raise MappingError(f"{path}: read.{key} must be a text")
    sheet = (doc.get("read") or {}).get("sheet")  # none: the table's sheet, else the first
    if sheet is not None and not isinstance(sheet, str):
        raise MappingError(f"{path}: read.sheet must be a text, the sheet's name (quote a name such as '2024')")
    names_opt = (doc.get("read") or {}).get("names")
    if names_opt is not None and (not isinstance(names_opt, list) or not all(isinstance(n, str) for n in names_opt)):
        raise MappingError(f"{path}: read.names must be a list of texts")
    if "skip" in (doc.get("read") or {}):
        try:
            int(doc["read"]["skip"])
        except (TypeError, ValueError):
            raise MappingError(f"{path}: read.skip must be a whole number") from None
    names = set(TABLES[table].names)
    columns = {}
    for col, spec in (doc.get("columns") or {}).items():
        if col not in names:
            raise MappingError(f"{path}: {col!r} is not a column of canonical table {table!r}")
        if isinstance(spec, str):
            spec = {"column": spec}
        elif not isinstance(spec, dict) or not ({"column", "sql", "value"} & set(spec)):
            raise MappingError(f"{path}: column {col!r} needs a source column name, {{sql: ...}} or {{value: ...}}")
        if "sql" in spec:
            check_expression(spec["sql"], col, str(path))
        if "column" in spec and not isinstance(spec["column"], str):
            raise MappingError(f"{path}: column {col!r}: the source column name must be a text")
        columns[col] = spec
    scale = {}
    for col, factor in (doc.get("scale") or {}).items():
        if col not in names or TABLES[table].column(col).type != "float":
            raise MappingError(f"{path}: scale applies to numeric columns of {table!r}, not {col!r}")
        try:
            scale[col] = float(factor)
        except (TypeError, ValueError):
            scale[col] = float("nan")
        if not math.isfinite(scale[col]):
            raise MappingError(f"{path}: scale of {col!r} must be a finite number, not {factor!r}")
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
