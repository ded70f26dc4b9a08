"""zhizao's own exceptions: one hierarchy, mapped once to exit codes and HTTP statuses.

Only these errors are the user's fault; anything else that escapes a stage is a fault of zhizao (exit code 1,
HTTP 500), never presented as bad input. Every error carries a :class:`zhizao.messages.Message`, so the
command line and the server show it in the reader's language.

::

    ZhizaoError                      exit 2   HTTP 400  (base; do not raise directly)
    ├── InputError                   exit 2   HTTP 400  bad argument, file, record or request
    │   ├── TooLarge                 exit 2   HTTP 413  a size or count limit exceeded
    │   └── Unsupported              exit 2   HTTP 415  a format or media type zhizao does not read
    ├── Unauthorized                 exit 2   HTTP 401  not signed in, or a wrong credential
    ├── Forbidden                    exit 2   HTTP 403  signed in, but not allowed
    ├── NotFound                     exit 2   HTTP 404  no such record, store or page (or not visible)
    ├── Conflict                     exit 2   HTTP 409  contradicts what is stored (a transition, a key)
    ├── DataSufficiencyError         exit 2   HTTP 422  the data do not allow the computation asked for
    ├── RateLimited                  exit 2   HTTP 429  too many attempts; try again later
    └── StoreBusy                    exit 2   HTTP 503  the store is held by another process

Example
-------
>>> from zhizao.messages import define
>>> NO_STORE = define("doc.no_store", "no store at %(path)s")
>>> e = NotFound(NO_STORE(path="plant.duckdb"))
>>> e.status, e.exit_code, e.code, str(e)
(404, 2, 'doc.no_store', 'no store at plant.duckdb')
"""

from __future__ import annotations

from typing import Any

from zhizao.messages import Message, MessageKind, text


class ZhizaoError(Exception):
    """Base of zhizao's errors.

    Parameters
    ----------
    message : Message, MessageKind or str
        What went wrong. A :class:`MessageKind` is called with ``params``; a plain string (English, not
        translated) is accepted where no kind is declared yet.
    **params
        Parameters of a :class:`MessageKind`.

    Attributes
    ----------
    message : Message
    status : int
        HTTP status the server answers with.
    exit_code : int
        Exit code of the command line.
    """

    status = 400
    exit_code = 2
    default_code = "error"

    def __init__(self, message: Message | MessageKind | str, /, **params: Any):
        if isinstance(message, MessageKind):
            message = message(**params)
        elif isinstance(message, str):
            message = text(f"{self.default_code}", message)
        self.message = message
        super().__init__(message.text("en"))

    @property
    def code(self) -> str:
        """The message code (machines read this)."""
        return self.message.code

    def text(self, lang: str = "en") -> str:
        """The message in ``lang``."""
        return self.message.text(lang)

    def to_dict(self, lang: str = "en") -> dict:
        """The JSON error body's ``error`` object: status, code, message, params."""
        d = self.message.to_dict(lang)
        return {"status": self.status, "code": d["code"], "message": d["message"], "params": d["params"]}


class InputError(ZhizaoError):
    """Bad input: an argument, a file, a record, a mapping or a request."""

    status, default_code = 400, "bad_request"


class TooLarge(InputError):
    """An input exceeds a size, count or time limit."""

    status, default_code = 413, "payload_too_large"


class Unsupported(InputError):
    """A format or media type zhizao does not read."""

    status, default_code = 415, "unsupported_media_type"


class Unauthorized(ZhizaoError):
    """Not signed in, or a wrong credential."""

    status, default_code = 401, "unauthorized"


class Forbidden(ZhizaoError):
    """Signed in, but the role or tenant does not allow it."""

    status, default_code = 403, "forbidden"


class NotFound(ZhizaoError):
    """No such record, store, scope or page (or one the caller may not see)."""

    status, default_code = 404, "not_found"


class Conflict(ZhizaoError):
    """The request contradicts what is stored (a key, a state transition, a concurrent change)."""

    status, default_code = 409, "conflict"


class DataSufficiencyError(ZhizaoError):
    """The stored data do not allow the computation asked for (no baseline data, too few points, ...)."""

    status, default_code = 422, "insufficient_data"


class RateLimited(ZhizaoError):
    """Too many attempts in a short time."""

    status, default_code = 429, "rate_limited"


class StoreBusy(ZhizaoError):
    """The store is held by another process (DuckDB allows one writer per file)."""

    status, default_code = 503, "store_busy"


__all__ = [
    "Conflict",
    "DataSufficiencyError",
    "Forbidden",
    "InputError",
    "NotFound",
    "RateLimited",
    "StoreBusy",
    "TooLarge",
    "Unauthorized",
    "Unsupported",
    "ZhizaoError",
]
