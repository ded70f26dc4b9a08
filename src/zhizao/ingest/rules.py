"""Quarantine rules and their structured details.

Every rejected record lands in the store's ``quarantine`` table with

- ``rule``: the name of the rule it broke (:data:`RULES`), stable, for filters and counts;
- ``code`` and ``params``: the detail as a structured message (:mod:`zhizao.messages`), e.g.
  ``ingest.unparseable`` with ``{"column": "start", "value": "yesterday", "type": "timestamp"}``, rendered
  in the reader's language by :func:`detail_message` (``detail_message(code, params).text("zh")``);
- ``detail``: the same message rendered in English (kept for readers of the table that do not render).

The loaders build the details in SQL, for whole batches at once: :func:`sql_detail` renders a message
kind's English template over SQL expressions, so the template declared here is the one source of the text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from zhizao.i18n import N_
from zhizao.messages import KINDS, Message, MessageKind, define

#: Every quarantine rule and what it means (files, uploads and live records; see also the live rules).
RULES = {
    "missing_field": "a required column is empty",
    "unparseable": "a value cannot be parsed as its type",
    "field_too_long": "a value is longer than the field size limit",
    "time_out_of_range": "a time stamp outside the plausible range, or a measurement later than the load time "
                         "plus its margin",
    "invalid_offset": "a UTC offset beyond -14:00 .. +14:00",
    "nonexistent_local_time": "a local time that does not exist in its zone (skipped by a daylight-saving change)",
    "ambiguous_time_zone": "a naive time of a calendar entry whose scope's equipment lie in several time zones",
    "not_finite": "a number that is NaN or infinite",
    "value_out_of_range": "a number larger in magnitude than the plausible limit",
    "end_not_after_start": "end <= start",
    "negative_quantity": "a quantity or duration that must be >= 0 is negative",
    "counts_exceed_produced": "good + scrap + rework > produced",
    "lsl_above_usl": "a lower specification limit above the upper one",
    "unknown_equipment": "equipment_id (or scope) is not in the equipment table",
    "unknown_reference": "a foreign key (enterprise_id, project_id) is not in its table",
    "unmapped_state": "the raw state has no category in the mapping (never guessed)",
    "invalid_value": "a code outside its list (calendar kind, quality result, energy reading, state category, "
                     "time zone, unit)",
    "duplicate": "the same record key occurs earlier in the same file or batch",
    "conflicts_with_stored": "a stored record has the same key but different values",
    # register tables (enterprises, scopes, projects, designations, programmes; zhizao.portfolio.register)
    "scope_of_other_enterprise": "the scope (or parent scope) of a register record belongs to another enterprise",
    # live sources (MQTT, OPC UA)
    "malformed_topic": "the topic is not <prefix>/<enterprise>/<site>/<area>/<work_center>/<equipment>/<table>",
    "unknown_table": "the topic's table is not a canonical table accepted live",
    "malformed_payload": "the payload is not UTF-8 JSON, or not an object or an array of objects",
    "payload_too_large": "a message larger than the payload limit",
    "too_many_keys": "a record with more keys than the limit",
    "topic_mismatch": "the record names another equipment (or hierarchy level) than its topic",
    "mapping_error": "the table's mapping file cannot be applied to the records",
    "unloadable": "the message makes its batch fail in the store (found by halving the batch); the store error",
}

#: The canonical tables' columns as a reader of Chinese names them in a quarantine detail and a rejected record
#: (an English reader sees the column's own name, as the files and the mappings write it).
COLUMN_LABELS = {
    "equipment_id": N_("column equipment_id"), "name": N_("column name"), "work_center": N_("column work_center"),
    "area": N_("column area"), "site": N_("column site"), "enterprise": N_("column enterprise"),
    "timezone": N_("column timezone"), "digital": N_("column digital"), "epc": N_("column epc"),
    "start": N_("column start"), "end": N_("column end"), "state": N_("column state"),
    "category": N_("column category"), "reason": N_("column reason"), "order_id": N_("column order_id"),
    "product_id": N_("column product_id"), "produced": N_("column produced"), "good": N_("column good"),
    "scrap": N_("column scrap"), "rework": N_("column rework"), "pri": N_("column pri"),
    "standard_minutes": N_("column standard_minutes"), "unit_value": N_("column unit_value"),
    "scope": N_("column scope"), "kind": N_("column kind"), "meter_id": N_("column meter_id"),
    "carrier": N_("column carrier"), "quantity": N_("column quantity"), "unit": N_("column unit"),
    "reading": N_("column reading"), "attendance_hours": N_("column attendance_hours"),
    "work_hours": N_("column work_hours"), "headcount": N_("column headcount"),
    "earned_hours": N_("column earned_hours"), "ts": N_("column ts"), "unit_id": N_("column unit_id"),
    "result": N_("column result"), "first_pass": N_("column first_pass"), "defect": N_("column defect"),
    "characteristic": N_("column characteristic"), "value": N_("column value"), "lsl": N_("column lsl"),
    "usl": N_("column usl"), "level": N_("column level"), "amount": N_("column amount"),
    "currency": N_("column currency"), "design_start": N_("column design_start"), "release": N_("column release"),
    "enterprise_id": N_("column enterprise_id"), "project_id": N_("column project_id"),
    "adjustment_id": N_("column adjustment_id"), "indicator": N_("column indicator"),
    "recorded_by": N_("column recorded_by"),
}


def column_word(name: Any, lang: str | None = None) -> Any:
    """A canonical column by its label in Chinese (``start`` -> 开始时间; a register table's own column by its
    import template's heading, ``declared_efficiency`` -> 申报生产效率提升); its own name in English, and any other
    value as it is."""
    if lang != "zh" or not isinstance(name, str):
        return name
    if name in COLUMN_LABELS:
        from zhizao.i18n import translations

        return translations("zh").gettext(COLUMN_LABELS[name])
    from zhizao.portfolio.register import HEADERS  # the register's templates (it imports this module)

    return next((h[name] for h in HEADERS.values() if name in h), name)


COLUMN = {"column": column_word, "columns": column_word, "start_column": column_word, "end_column": column_word}

# -- details of the file and record rules (English templates; zh in locale/zh/LC_MESSAGES/zhizao.po)
MISSING = define("ingest.missing_field", "%(column)s is empty", labels=COLUMN)
MISSING_ONE_OF = define("ingest.missing_one_of", "one of %(columns)s is needed", labels=COLUMN)
MISSING_INTERVAL = define("ingest.interval_needs_start", "an interval reading needs start and end (a cumulative "
                                                         "register needs reading: cumulative)")
#: The value types of the schema (zhizao.schema.SQL_TYPES) as a reader names them.
TYPE_WORDS = {t: define(f"ingest.type.{t}", w) for t, w in (
    ("text", "text"),
    ("timestamp", "time stamp"),
    ("float", "number"),
    ("bool", "yes/no value"),
    ("date", "date"),
    ("int", "whole number"),
)}


def type_word(t: Any, lang: str | None = None) -> Any:
    """A schema type (``timestamp``) by its name (a message); another value as it is."""
    kind = TYPE_WORDS.get(t) if isinstance(t, str) else None
    return kind() if kind is not None else t


UNPARSEABLE = define("ingest.unparseable", "%(column)s = %(value)s is not a valid %(type)s",
                     labels={"type": type_word, **COLUMN})  # the stored type stays the schema's code
FIELD_TOO_LONG = define("ingest.field_too_long", "%(column)s is %(bytes)s bytes long, more than the limit of "
                                                 "%(limit)s bytes", labels=COLUMN)
TIME_OUT_OF_RANGE = define("ingest.time_out_of_range", "%(column)s = %(value)s is outside the plausible range "
                                                       "%(earliest)s .. %(latest)s", labels=COLUMN)
TIME_IN_FUTURE = define("ingest.time_in_future", "%(column)s = %(value)s is more than %(days)s days after the "
                                                 "day of loading (%(today)s, UTC)", labels=COLUMN)
INVALID_OFFSET = define("ingest.invalid_offset", "%(column)s = %(value)s has a UTC offset beyond -14:00 .. +14:00",
                        labels=COLUMN)
NONEXISTENT_LOCAL = define("ingest.nonexistent_local_time", "%(column)s = %(value)s does not exist in time zone "
                                                            "%(zone)s (skipped by a daylight-saving change)",
                           labels=COLUMN)
AMBIGUOUS_ZONE = define("ingest.ambiguous_time_zone", "%(column)s = %(value)s has no UTC offset and scope %(scope)s "
                                                       "has equipment in several time zones (%(zones)s): give the "
                                                       "offset, the mapping's timezone, or one entry per zone",
                        labels=COLUMN)
NOT_FINITE = define("ingest.not_finite", "%(column)s = %(value)s is not a finite number", labels=COLUMN)
VALUE_OUT_OF_RANGE = define("ingest.value_out_of_range", "%(column)s = %(value)s is larger in magnitude than "
                                                         "%(limit)s", labels=COLUMN)
BAD_ZONE = define("ingest.bad_timezone", "timezone %(value)s is not an IANA time zone")
END_NOT_AFTER_START = define("ingest.end_not_after_start", "%(end_column)s %(end)s is not after %(start_column)s "
                                                           "%(start)s", labels=COLUMN)
END_BEFORE_START = define("ingest.end_before_start", "%(end_column)s %(end)s is before %(start_column)s %(start)s",
                          labels=COLUMN)
NEGATIVE = define("ingest.negative", "%(column)s = %(value)s < 0", labels=COLUMN)
NEGATIVE_INTERVAL = define("ingest.negative_interval_quantity", "interval quantity %(value)s < 0")
COUNTS_EXCEED = define("ingest.counts_exceed_produced", "good + scrap + rework = %(sum)s > produced = %(produced)s")
LSL_ABOVE_USL = define("ingest.lsl_above_usl", "lsl %(lsl)s is above usl %(usl)s")
UNKNOWN_EQUIPMENT = define("ingest.unknown_equipment", "equipment %(id)s is not in the equipment table")
UNKNOWN_SCOPE = define("ingest.unknown_scope", "scope %(id)s is no equipment, work_center, area, site or "
                                               "enterprise")
UNKNOWN_REFERENCE = define("ingest.unknown_reference", "%(column)s %(value)s is not in table %(table)s", labels=COLUMN)
NOT_ALLOWED = define("ingest.not_allowed", "%(column)s %(value)s is not one of %(allowed)s", labels=COLUMN)
UNMAPPED_STATE = define("ingest.unmapped_state", "state %(state)s has no category in the mapping")
NO_CONVERSION = define("ingest.no_conversion", "no conversion for carrier %(carrier)s in unit %(unit)s")
DUPLICATE = {
    "file": define("ingest.duplicate_in_file", "same key as an earlier record of this file: %(key)s"),
    "batch": define("ingest.duplicate_in_batch", "same key as an earlier record of this batch: %(key)s"),
    "records": define("ingest.duplicate_in_records", "same key as an earlier record of these records: %(key)s"),
}
CONFLICT = define("ingest.conflicts_with_stored", "a stored record has the same key (%(key)s) but other values")

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _lit(s: object) -> str:
    return "'" + str(s).replace("'", "''") + "'"


class Sql(str):
    """A parameter of :func:`sql_detail` that is an SQL expression (anything else is a constant)."""


def sql_detail(kind: MessageKind, **params: Any) -> tuple[str, str]:
    """SQL expressions of a message's English text and of its JSON ``{code, params}`` object.

    Parameters
    ----------
    kind : MessageKind
    **params
        Each placeholder's value: :class:`Sql` for an SQL expression (its text, NULL shown as empty), or a
        constant (text, number, or a list of texts, shown joined by ", " in English).

    Returns
    -------
    (text_sql, params_sql)
        ``text_sql`` gives the English rendering (VARCHAR), ``params_sql`` the parameters (JSON).
    """
    missing = set(_PLACEHOLDER.findall(kind.template)) - params.keys()
    if missing:
        raise TypeError(f"message {kind.code} needs {', '.join(sorted(missing))}")

    from zhizao.i18n import labelled, render_message

    def english(name: str, v: object) -> object:
        """A constant parameter shown by its label (define(labels=)) as the English text shows it."""
        if isinstance(v, Sql):
            return v
        shown = labelled(kind.code, name, v, "en")
        if isinstance(shown, list):
            return [render_message(x, "en") if isinstance(x, Message) else x for x in shown]
        return render_message(shown, "en") if isinstance(shown, Message) else shown

    def value_sql(v: object) -> str:
        if isinstance(v, Sql):
            return f"coalesce(CAST({v} AS VARCHAR), '')"
        if isinstance(v, (list, tuple)):
            return _lit(", ".join(str(x) for x in v))
        return _lit(v)

    pieces = []
    pos = 0
    for m in _PLACEHOLDER.finditer(kind.template):
        if m.start() > pos:
            pieces.append(_lit(kind.template[pos:m.start()].replace("%%", "%")))
        pieces.append(value_sql(english(m.group(1), params[m.group(1)])))
        pos = m.end()
    if pos < len(kind.template):
        pieces.append(_lit(kind.template[pos:].replace("%%", "%")))
    text = "concat(" + ", ".join(pieces) + ")" if len(pieces) > 1 else (pieces[0] if pieces else "''")

    def json_sql(v: object) -> str:
        if isinstance(v, Sql):
            return f"CAST({v} AS VARCHAR)"
        return f"CAST({_lit(json.dumps(v if not isinstance(v, tuple) else list(v), ensure_ascii=False))} AS JSON)"

    obj = ("json_object(" + ", ".join(f"{_lit(k)}, {json_sql(v)}" for k, v in params.items()) + ")"
           if params else "CAST('{}' AS JSON)")
    return text, obj


def detail_message(code: str | None, params: Any = None, detail: str | None = None) -> Message:
    """The quarantine detail of a stored row as a :class:`Message` (render it with ``.text(lang)``).

    ``params`` is the JSON object stored beside ``code`` (text or dict). A row stored before details were
    structured (no ``code``) gives its English ``detail`` untranslated.
    """
    if isinstance(params, (str, bytes)):
        try:
            params = json.loads(params)
        except ValueError:
            params = {}
    if not code or code not in KINDS:
        return Message.from_dict({"code": code or "ingest.detail", "params": {}, "message": detail or ""})
    return Message.from_dict({"code": code, "params": params or {}})


__all__ = ["RULES", "Sql", "detail_message", "sql_detail"]
