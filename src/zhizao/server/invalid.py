"""Messages of a request that fails validation (FastAPI's ``RequestValidationError``, pydantic's error list).

Pydantic writes its texts in English only ("Input should be a valid integer"). Each kind of error it reports is
mapped here to a declared message (:func:`zhizao.messages.define`), so the answer is in the request's language
and names the parameter and the rule, with a code and parameters for machines::

    {"error": {"status": 422, "code": "request.invalid", "message": "limit = 'abc' is not a whole number",
               "params": {"fields": ["limit"]},
               "errors": [{"field": "limit", "code": "request.not_integer", "params": {...}, "message": "..."}]}}

A kind of error without its own message keeps pydantic's English text inside a translated frame
(``request.invalid_value``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from zhizao.messages import Message, MessageKind, define

MISSING = define("request.missing", "%(name)s is required")
NOT_ONE_OF = define("request.not_one_of", "%(name)s = '%(value)s' is not one of %(allowed)s")
NOT_INTEGER = define("request.not_integer", "%(name)s = '%(value)s' is not a whole number")
NOT_NUMBER = define("request.not_number", "%(name)s = '%(value)s' is not a number")
NOT_BOOLEAN = define("request.not_boolean", "%(name)s = '%(value)s' is not true or false")
NOT_DATE = define("request.not_date", "%(name)s = '%(value)s' is not a date (YYYY-MM-DD)")
NOT_TIME = define("request.not_time", "%(name)s = '%(value)s' is not an ISO 8601 time stamp")
TOO_SMALL = define("request.too_small", "%(name)s = %(value)s is below %(limit)s, the smallest allowed value")
TOO_LARGE = define("request.too_large", "%(name)s = %(value)s is above %(limit)s, the largest allowed value")
NOT_ABOVE = define("request.not_above", "%(name)s = %(value)s must be greater than %(limit)s")
NOT_BELOW = define("request.not_below", "%(name)s = %(value)s must be less than %(limit)s")
TEXT_TOO_LONG = define("request.text_too_long", "%(name)s is longer than %(limit)s characters")
TEXT_TOO_SHORT = define("request.text_too_short", "%(name)s is shorter than %(limit)s characters")
TOO_MANY_ITEMS = define("request.too_many_items", "%(name)s has more than %(limit)s items")
TOO_FEW_ITEMS = define("request.too_few_items", "%(name)s has fewer than %(limit)s items")
NO_MATCH = define("request.no_match", "%(name)s = '%(value)s' does not match %(pattern)s")
NOT_TEXT = define("request.not_text", "%(name)s must be text")
NOT_OBJECT = define("request.not_object", "%(name)s must be a JSON object")
NOT_LIST = define("request.not_list", "%(name)s must be a list")
UNKNOWN_FIELD = define("request.unknown_field", "%(name)s is not a known field")
BAD_JSON = define("request.bad_json", "the request body is not valid JSON")
INVALID_VALUE = define("request.invalid_value", "%(name)s is not valid: %(error)s")
#: The answer's own code (its message is the errors' messages, one after the other).
CODE = "request.invalid"

#: pydantic's error type -> (message kind, the ``ctx`` key of its limit or None).
KINDS: dict[str, tuple[MessageKind, str | None]] = {
    "missing": (MISSING, None),
    "enum": (NOT_ONE_OF, None), "literal_error": (NOT_ONE_OF, None),
    "int_parsing": (NOT_INTEGER, None), "int_type": (NOT_INTEGER, None), "int_from_float": (NOT_INTEGER, None),
    "float_parsing": (NOT_NUMBER, None), "float_type": (NOT_NUMBER, None), "decimal_parsing": (NOT_NUMBER, None),
    "finite_number": (NOT_NUMBER, None),
    "bool_parsing": (NOT_BOOLEAN, None), "bool_type": (NOT_BOOLEAN, None),
    "date_parsing": (NOT_DATE, None), "date_type": (NOT_DATE, None), "date_from_datetime_parsing": (NOT_DATE, None),
    "date_from_datetime_inexact": (NOT_DATE, None),
    "datetime_parsing": (NOT_TIME, None), "datetime_type": (NOT_TIME, None),
    "datetime_from_date_parsing": (NOT_TIME, None), "datetime_object_invalid": (NOT_TIME, None),
    "greater_than_equal": (TOO_SMALL, "ge"), "less_than_equal": (TOO_LARGE, "le"),
    "greater_than": (NOT_ABOVE, "gt"), "less_than": (NOT_BELOW, "lt"),
    "string_too_long": (TEXT_TOO_LONG, "max_length"), "string_too_short": (TEXT_TOO_SHORT, "min_length"),
    "too_long": (TOO_MANY_ITEMS, "max_length"), "too_short": (TOO_FEW_ITEMS, "min_length"),
    "string_pattern_mismatch": (NO_MATCH, None),
    "string_type": (NOT_TEXT, None), "string_unicode": (NOT_TEXT, None),
    "model_type": (NOT_OBJECT, None), "dict_type": (NOT_OBJECT, None), "model_attributes_type": (NOT_OBJECT, None),
    "list_type": (NOT_LIST, None), "tuple_type": (NOT_LIST, None), "set_type": (NOT_LIST, None),
    "extra_forbidden": (UNKNOWN_FIELD, None),
    "json_invalid": (BAD_JSON, None), "json_type": (BAD_JSON, None),
}
#: Where a parameter is sent: not part of its name.
_PLACES = ("body", "query", "path", "header", "cookie", "form")
#: Longest value quoted back in a message [characters].
MAX_VALUE = 64


def field_name(loc: Iterable[Any]) -> str:
    """The parameter an error is about: ``("query", "limit")`` -> ``limit``, ``("body", "baseline", 1)`` ->
    ``baseline[1]``; the request body itself -> ``body``."""
    parts = list(loc)
    if parts and parts[0] in _PLACES:
        parts = parts[1:]
    name = ""
    for p in parts:
        name += f"[{p}]" if isinstance(p, int) else (f".{p}" if name else str(p))
    return name or "body"


def _value(v: Any) -> str:
    text = v if isinstance(v, str) else repr(v)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 1] + "\u2026"


def _allowed(ctx: Mapping) -> list[str]:
    """The allowed values of an enum or literal error (``"'a', 'b' or 'c'"`` -> ``["a", "b", "c"]``)."""
    expected = str(ctx.get("expected", ""))
    return re.findall(r"'([^']*)'", expected) or [expected]


def message(error: Mapping) -> Message:
    """The message of one pydantic error (a dict of ``RequestValidationError.errors()``)."""
    kind, limit_key = KINDS.get(str(error.get("type")), (INVALID_VALUE, None))
    ctx = error.get("ctx") or {}
    # a JSON error's location is the body and a character position in it, not a parameter
    name = "body" if kind is BAD_JSON else field_name(error.get("loc", ()))
    params: dict[str, Any] = {"name": name}
    if kind is INVALID_VALUE:
        params["error"] = str(error.get("msg", error.get("type", "")))
    if "%(value)s" in kind.template:
        params["value"] = _value(error.get("input"))
    if kind is NOT_ONE_OF:
        params["allowed"] = _allowed(ctx)
    if kind is NO_MATCH:
        params["pattern"] = str(ctx.get("pattern", ""))
    if limit_key is not None:
        params["limit"] = ctx.get(limit_key)
    return kind(**params)


#: Separator of two errors' messages in one answer, per language.
SEPARATORS = {"zh": "；", "en": "; "}


def answer(errors: Iterable[Mapping], lang: str = "en") -> dict:
    """The JSON error object (``body["error"]``) of a request that failed validation, in ``lang``."""
    items = []
    for e in errors:
        m = message(e)
        items.append({"field": str(m.args["name"]), **m.to_dict(lang)})
    text = SEPARATORS.get(lang, "; ").join(dict.fromkeys(i["message"] for i in items))
    return {"status": 422, "code": CODE, "message": text or message({"type": "json_invalid"}).text(lang),
            "params": {"fields": list(dict.fromkeys(i["field"] for i in items))}, "errors": items}


__all__ = ["CODE", "KINDS", "answer", "field_name", "message"]
