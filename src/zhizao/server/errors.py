"""Errors of the server: each is an HTTP status and one clear message, answered as JSON by the API
(``{"error": {"status": 403, "code": "forbidden", "message": "..."}}``) and as a page by the dashboard."""

from __future__ import annotations


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class TooLarge(ApiError):
    status, code = 413, "payload_too_large"


class Unsupported(ApiError):
    status, code = 415, "unsupported_media_type"


def body(status: int, code: str, message: str, **extra) -> dict:
    return {"error": {"status": status, "code": code, "message": message, **extra}}
