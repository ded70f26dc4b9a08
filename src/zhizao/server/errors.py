"""Errors of the server: zhizao's own exceptions (:mod:`zhizao.errors`) under the names the server code uses.

Each is an HTTP status and one clear message, answered as JSON by the API
(``{"error": {"status": 403, "code": "server.admin_only", "message": "...", "params": {...}}}``, the message in
the request's language) and as a page by the dashboard. Only these become 4xx (and 503 for a busy store); any
other exception is an internal error (500), with the security headers and the connection kept.
"""

from __future__ import annotations

from zhizao.errors import (
    Conflict,
    DataSufficiencyError,
    Forbidden,
    InputError,
    NotFound,
    RateLimited,
    StoreBusy,
    TooLarge,
    Unauthorized,
    Unsupported,
    ZhizaoError,
)

ApiError = ZhizaoError
BadRequest = InputError


def body(status: int, code: str, message: str, **extra) -> dict:
    return {"error": {"status": status, "code": code, "message": message, **extra}}


__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "DataSufficiencyError",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "StoreBusy",
    "TooLarge",
    "Unauthorized",
    "Unsupported",
    "body",
]
