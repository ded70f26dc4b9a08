"""Errors of the server: zhizao's own exceptions (:mod:`zhizao.errors`) under the names the server code uses.

Each is an HTTP status and one clear message, answered as JSON by the API
(``{"error": {"status": 403, "code": "forbidden", "message": "...", "params": {...}}}``, the message in the
request's language) and as a page by the dashboard. Any other exception is an internal error (500).
"""

from __future__ import annotations

from zhizao.errors import (Conflict, Forbidden, InputError, NotFound, TooLarge, Unauthorized, Unsupported,
                           ZhizaoError)

ApiError = ZhizaoError
BadRequest = InputError


def body(status: int, code: str, message: str, **extra) -> dict:
    return {"error": {"status": status, "code": code, "message": message, **extra}}


__all__ = ["ApiError", "BadRequest", "Unauthorized", "Forbidden", "NotFound", "Conflict", "TooLarge",
           "Unsupported", "body"]
