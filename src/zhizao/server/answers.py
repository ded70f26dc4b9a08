"""How the API answers: tables as JSON arrays of row objects (or CSV), objects as JSON (NaN as null, time stamps
and dates ISO 8601, numpy scalars plain). Shared by the routers (:mod:`zhizao.server.api`,
:mod:`zhizao.server.programme_api`)."""

from __future__ import annotations

import json
from enum import Enum

import pandas as pd
from fastapi import Response


def _v(x):
    return x.value if isinstance(x, Enum) else x


def records(df: pd.DataFrame) -> list[dict]:
    """A frame as JSON-able row objects (time stamps ISO 8601, NaN -> null)."""
    return json.loads(df.to_json(orient="records", date_format="iso", force_ascii=False, default_handler=str))


def jsonable(obj):
    if isinstance(obj, pd.DataFrame):
        return records(obj)
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if isinstance(obj, float) and obj != obj:
        return None
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            return jsonable(obj.item())
        except (ValueError, AttributeError):
            return str(obj)
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj


def table_text(df: pd.DataFrame, fmt=None) -> tuple[str | bytes, str]:
    """The body and media type of a table answer: CSV and xlsx through :func:`zhizao.export.to_bytes` (formula-
    like text neutralised), JSON as row objects."""
    from zhizao.export import media_type, to_bytes

    if _v(fmt) in ("csv", "xlsx"):
        return to_bytes(df, _v(fmt)), media_type(_v(fmt))
    return df.to_json(orient="records", date_format="iso", force_ascii=False, default_handler=str), \
        "application/json"


def table_response(df: pd.DataFrame, fmt=None) -> Response:
    text, media = table_text(df, fmt)
    headers = {"Content-Disposition": 'attachment; filename="zhizao.xlsx"'} if _v(fmt) == "xlsx" else None
    return Response(text, media_type=media, headers=headers)


def json_response(obj, status: int = 200) -> Response:
    return Response(json.dumps(jsonable(obj), ensure_ascii=False, allow_nan=False), status_code=status,
                    media_type="application/json")


__all__ = ["json_response", "jsonable", "records", "table_response"]
