"""Evidence files: documents an enterprise submits with an application, a self-assessment report, an assessor's
evidence of a confirmation.

Each file is stored in the store (table ``evidence_files``) with its SHA-256, size and media type, checked on
the way in: at most :data:`MAX_BYTES` (configurable), and only the types of :data:`TYPES`, recognised by their
first bytes (a renamed executable is not a PDF). A file belongs to one enterprise; who may read it (the
enterprise, its reviewers, administrators) is decided by the server's access rules
(:mod:`zhizao.server.access`), never here. Storing the same content twice for one enterprise gives the same
file id. Every stored file is in the audit log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import unicodedata

import pandas as pd

from zhizao.errors import NotFound, TooLarge, Unsupported
from zhizao.messages import define
from zhizao.portfolio import audit

#: Largest evidence file [bytes] (``ZHIZAO_EVIDENCE_MAX_MB`` changes it).
MAX_BYTES = 20 * 10**6
#: Accepted types: suffix -> (media type, magic prefixes).
TYPES = {
    ".pdf": ("application/pdf", (b"%PDF-",)),
    ".png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    ".jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (b"PK\x03\x04",)),
    ".docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (b"PK\x03\x04",)),
    ".csv": ("text/csv", ()),
    ".txt": ("text/plain", ()),
}
DDL = """CREATE TABLE IF NOT EXISTS evidence_files (
    file_id VARCHAR NOT NULL, enterprise_id VARCHAR NOT NULL, name VARCHAR NOT NULL, media_type VARCHAR NOT NULL,
    size BIGINT NOT NULL, sha256 VARCHAR NOT NULL, content BLOB NOT NULL, purpose VARCHAR, application_id VARCHAR,
    uploaded_by VARCHAR NOT NULL, uploaded_at TIMESTAMPTZ NOT NULL)"""
COLUMNS = ["file_id", "enterprise_id", "name", "media_type", "size", "sha256", "purpose", "application_id",
           "uploaded_by", "uploaded_at"]

TOO_LARGE = define("evidence.too_large", "%(name)s is %(size)s bytes; evidence files are at most %(limit)s bytes")
BAD_TYPE = define("evidence.bad_type", "%(name)s: only %(types)s files are accepted as evidence")
BAD_CONTENT = define("evidence.bad_content", "%(name)s does not contain what its suffix says (%(type)s)")
EMPTY = define("evidence.empty", "%(name)s is empty")
NO_FILE = define("evidence.no_file", "no evidence file %(file_id)s")
BAD_NAME = define("evidence.bad_name", "file name %(name)s is not allowed: give a plain name such as report.pdf")
_NAME = re.compile(r"^[\w.\-+() \u3000-\u9fff\uff00-\uffef]+$", re.UNICODE)


def ensure(con) -> None:
    con.execute(DDL)


def max_bytes() -> int:
    import os

    mb = os.environ.get("ZHIZAO_EVIDENCE_MAX_MB")
    return int(float(mb) * 10**6) if mb else MAX_BYTES


def check(name: str, content: bytes) -> str:
    """The media type of an evidence file, after the checks of the module docstring.

    Raises
    ------
    zhizao.errors.TooLarge, zhizao.errors.Unsupported, zhizao.errors.InputError
    """
    from zhizao.errors import InputError

    name = unicodedata.normalize("NFC", str(name or ""))
    if (not name or "/" in name or "\\" in name or ".." in name or name.startswith(".") or len(name) > 120
            or not _NAME.match(name)):
        raise InputError(BAD_NAME(name=name))
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix not in TYPES:
        raise Unsupported(BAD_TYPE(name=name, types=sorted(TYPES)))
    if not content:
        raise InputError(EMPTY(name=name))
    if len(content) > max_bytes():
        raise TooLarge(TOO_LARGE(name=name, size=len(content), limit=max_bytes()))
    media, magic = TYPES[suffix]
    if magic and not any(content.startswith(m) for m in magic):
        raise Unsupported(BAD_CONTENT(name=name, type=media))
    if not magic and b"\x00" in content[:65536]:
        raise Unsupported(BAD_CONTENT(name=name, type=media))
    return media


def store(con, enterprise_id: str, name: str, content: bytes, *, actor: str, purpose: str | None = None,
          application_id: str | None = None) -> dict:
    """Check and store an evidence file of ``enterprise_id``; returns its record (without the content).

    The same content already stored for the enterprise (and the same purpose and application) gives the
    existing record."""
    media = check(name, content)
    ensure(con)
    sha = hashlib.sha256(content).hexdigest()
    hit = con.execute(f"SELECT {', '.join(COLUMNS)} FROM evidence_files WHERE enterprise_id = ? AND sha256 = ? "
                      "AND purpose IS NOT DISTINCT FROM ? AND application_id IS NOT DISTINCT FROM ?",
                      [enterprise_id, sha, purpose, application_id]).fetchone()
    if hit is not None:
        return dict(zip(COLUMNS, hit))
    rec = {"file_id": "f" + secrets.token_hex(8), "enterprise_id": enterprise_id,
           "name": unicodedata.normalize("NFC", name), "media_type": media, "size": len(content), "sha256": sha,
           "purpose": purpose, "application_id": application_id, "uploaded_by": actor,
           "uploaded_at": dt.datetime.now(dt.UTC)}
    from zhizao.portfolio.register import transaction

    with transaction(con):
        con.execute("INSERT INTO evidence_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [rec["file_id"], enterprise_id, rec["name"], media, len(content), sha, content, purpose,
                     application_id, actor, rec["uploaded_at"]])
        audit.append(con, actor, "upload", "evidence", rec["file_id"], after={k: v for k, v in rec.items()},
                     source=application_id)
    return rec


def get(con, file_id: str, with_content: bool = False) -> dict:
    """The record of an evidence file (and its ``content`` when asked).

    Raises
    ------
    zhizao.errors.NotFound
    """
    ensure_read = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'evidence_files'"
                              ).fetchone()[0]
    if not ensure_read:
        raise NotFound(NO_FILE(file_id=file_id))
    cols = COLUMNS + (["content"] if with_content else [])
    row = con.execute(f"SELECT {', '.join(cols)} FROM evidence_files WHERE file_id = ?", [file_id]).fetchone()
    if row is None:
        raise NotFound(NO_FILE(file_id=file_id))
    rec = dict(zip(cols, row))
    if with_content:
        rec["content"] = bytes(rec["content"])
    return rec


def files(con, enterprise_id: str | None = None, application_id: str | None = None) -> pd.DataFrame:
    """Evidence files (without content), of an enterprise or an application."""
    if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'evidence_files'"
                       ).fetchone()[0]:
        return pd.DataFrame(columns=COLUMNS)
    return con.execute(f"SELECT {', '.join(COLUMNS)} FROM evidence_files WHERE (? IS NULL OR enterprise_id = ?) "
                       "AND (? IS NULL OR application_id = ?) ORDER BY uploaded_at, file_id",
                       [enterprise_id, enterprise_id, application_id, application_id]).df()


__all__ = ["MAX_BYTES", "TYPES", "check", "files", "get", "store"]
