"""Accounts of the server: users, roles, assessor assignments, browser sessions and API keys.

They live in the store's DuckDB file, in tables of their own (``server_users``, ``server_assignments``,
``server_sessions``, ``server_api_keys``), created here and not by :mod:`zhizao.store.db`.

- Passwords are hashed with Argon2id (argon2-cffi; parameters of the OWASP baseline, m = 19 MiB, t = 2, p = 1,
  stored in each hash, so old hashes keep working when the parameters change).
- Session tokens and API keys are random (``secrets.token_urlsafe``, 256 bits) and only their SHA-256 is
  stored; the token itself is shown once. Every session and every key can be revoked.
- An API key is scoped to one enterprise or one site; it acts with the rights of an enterprise user of that
  scope (see :mod:`zhizao.server.access`).

Every function takes a DuckDB connection (or cursor) of the store; none of them locks: the server serialises
account writes itself, the command line owns the store while it runs.
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import argon2

from zhizao.errors import InputError
from zhizao.messages import define
from zhizao.store import equipment as store_equipment

#: Roles, from the issue: enterprise user, programme analyst, assessor, administrator.
ROLES = ("enterprise", "analyst", "assessor", "district", "admin")
#: Browser sessions expire after this long (absolute, not sliding).
SESSION_HOURS = 12
SESSION_PREFIX = "zs_"
KEY_PREFIX = "zk_"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 8

DDL = (
    """CREATE TABLE IF NOT EXISTS server_users (
        username VARCHAR NOT NULL, password_hash VARCHAR NOT NULL, role VARCHAR NOT NULL,
        enterprise_id VARCHAR, display_name VARCHAR, active BOOLEAN NOT NULL DEFAULT true,
        created_at TIMESTAMPTZ DEFAULT current_timestamp)""",
    """CREATE TABLE IF NOT EXISTS server_assignments (
        username VARCHAR NOT NULL, project_id VARCHAR NOT NULL,
        assigned_at TIMESTAMPTZ DEFAULT current_timestamp)""",
    """CREATE TABLE IF NOT EXISTS server_sessions (
        session_id VARCHAR NOT NULL, token_sha256 VARCHAR NOT NULL, username VARCHAR NOT NULL,
        csrf VARCHAR NOT NULL, created_at TIMESTAMPTZ DEFAULT current_timestamp, expires_at TIMESTAMPTZ NOT NULL,
        revoked_at TIMESTAMPTZ, user_agent VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS server_api_keys (
        key_id VARCHAR NOT NULL, key_sha256 VARCHAR NOT NULL, name VARCHAR, enterprise_id VARCHAR,
        site VARCHAR, created_by VARCHAR, created_at TIMESTAMPTZ DEFAULT current_timestamp,
        revoked_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS server_uploads (
        upload_id VARCHAR NOT NULL, source VARCHAR NOT NULL, file_name VARCHAR NOT NULL, "table" VARCHAR NOT NULL,
        principal VARCHAR NOT NULL, enterprise_id VARCHAR, site VARCHAR, mapping VARCHAR, bytes BIGINT,
        loaded INTEGER, quarantined INTEGER, skipped INTEGER, already_loaded BOOLEAN,
        uploaded_at TIMESTAMPTZ DEFAULT current_timestamp)""",
    "CREATE TABLE IF NOT EXISTS server_secrets (name VARCHAR NOT NULL, value VARCHAR NOT NULL)",
)

_hasher = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


BAD_NAME = define("accounts.bad_name", "a user name is 1 to 64 characters: letters, digits, '.', '_', '@', '-', "
                                       "starting with a letter or digit")
BAD_PASSWORD_LENGTH = define("accounts.password_length", "a password has %(min)s to 1024 characters")
PASSWORD_COMMON = define("accounts.password_common",
                         "this password is one of the most common passwords (or a simple variant of one); "
                         "choose another")
PASSWORD_NAME = define("accounts.password_name", "a password must not be the user name or a simple variant of it")
PASSWORD_TRIVIAL = define("accounts.password_trivial",
                          "a password of one or two repeated characters or a simple sequence is too easy to guess")
UNKNOWN_ROLE = define("accounts.unknown_role", "unknown role '%(role)s'; one of %(roles)s")
NEEDS_ENTERPRISE = define("accounts.needs_enterprise", "an enterprise user needs an enterprise (--enterprise)")
ONLY_ENTERPRISE_USERS = define("accounts.only_enterprise_users",
                               "only enterprise users belong to an enterprise, not role '%(role)s'")
ONLY_ASSESSORS = define("accounts.only_assessors", "only assessors are assigned projects")
NEEDS_DISTRICT = define("accounts.needs_district", "a district reviewer needs a district (--district)")
ONLY_DISTRICT_REVIEWERS = define("accounts.only_district_reviewers", "only district reviewers have a district, not "
                                                                     "%(role)s users")
USER_EXISTS = define("accounts.user_exists", "user '%(name)s' exists already")
NO_USER = define("accounts.no_user", "no user '%(name)s'")
NOT_ASSESSOR = define("accounts.not_assessor", "user '%(name)s' is not an assessor")
KEY_SCOPE = define("accounts.key_scope",
                   "an API key is scoped to one enterprise or one site: give --enterprise or --site")
KEY_NAME_LENGTH = define("accounts.key_name_length", "a key name has at most 200 characters")
SITE_KEY_ENTERPRISE = define("accounts.site_key_enterprise",
                             "site '%(site)s' does not belong to exactly one enterprise: give the enterprise of the "
                             "key (--enterprise)")


class AccountError(InputError):
    """Bad account input (unknown role, bad name, short password, unknown user or key)."""


class UnknownUser(AccountError):
    """No user of that name."""


class UserExists(AccountError):
    """A user of that name exists already."""


def set_password_hasher(hasher: argon2.PasswordHasher) -> None:
    """Replace the Argon2 parameters used for new hashes (tests use cheaper ones)."""
    global _hasher
    _hasher = hasher


def ensure_tables(con) -> None:
    """Create the account tables if missing (and add the district of district reviewers to an older one)."""
    for ddl in DDL:
        con.execute(ddl)
    con.execute("ALTER TABLE server_users ADD COLUMN IF NOT EXISTS district VARCHAR")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise AccountError(BAD_NAME)
    return name


#: Undoing common letter substitutions (p@ssw0rd -> password).
_LEET = (str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "l",
                        "|": "l", "+": "t"}),
         str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i",
                        "|": "i", "+": "t"}))
_EDGES = "0123456789!@#$%^&*()_+-=[]{};:'\",.<>/?`~|\\ "


@functools.lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The common-password list shipped in ``zhizao/data/passwords`` (19,640 lower-case passwords; provenance
    and licence beside it)."""
    path = Path(__file__).resolve().parent.parent / "data" / "passwords" / "common-passwords.txt.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return frozenset(x.strip() for x in f if x.strip())


def _variants(text: str) -> set[str]:
    """``text`` in lower case, with leading and trailing digits and punctuation removed, and with common letter
    substitutions undone (each alone and together)."""
    low = text.lower()
    out = {low, low.strip(_EDGES)}
    out |= {v.translate(t) for v in list(out) for t in _LEET}
    out |= {v.strip(_EDGES) for v in list(out)}
    return {v for v in out if v}


def _trivial(password: str) -> bool:
    """One or two distinct characters, or a run of consecutive characters (abcdefgh, 98765432)."""
    if len(set(password.lower())) <= 2:
        return True
    steps = {ord(b) - ord(a) for a, b in zip(password.lower(), password.lower()[1:])}
    return steps in ({1}, {-1})


def check_password(password: str, username: str | None = None, display_name: str | None = None) -> str:
    """``password`` if it may be used (for ``username``), else :class:`AccountError` saying why.

    The rules (NIST SP 800-63B, 5.1.1.2): 8 to 1024 characters; not one of the 19,640 most common passwords
    (:func:`common_passwords`) nor a simple variant of one (digits or punctuation added before or after, letters
    replaced by look-alike digits or signs); not the user name (or the display name) nor such a variant of it,
    nor the name reversed or repeated; not one or two repeated characters nor a simple sequence.
    """
    if not isinstance(password, str) or len(password) < MIN_PASSWORD or len(password) > 1024:
        raise AccountError(BAD_PASSWORD_LENGTH, min=MIN_PASSWORD)
    if _trivial(password):
        raise AccountError(PASSWORD_TRIVIAL)
    variants = _variants(password)
    for name in (username, display_name):
        if isinstance(name, str) and name.strip():
            names = _variants(name)
            names |= {n[::-1] for n in names}
            # the name (or a variant) alone, repeated, or with digits and punctuation around or between
            if variants & names or any(n in v and not v.replace(n, "").strip(_EDGES) for v in variants
                                       for n in names):
                raise AccountError(PASSWORD_NAME)
    common = common_passwords()
    if any(v in common for v in variants):
        raise AccountError(PASSWORD_COMMON)
    return password


def hash_password(password: str, username: str | None = None, display_name: str | None = None) -> str:
    return _hasher.hash(check_password(password, username, display_name))


def server_secret(con, name: str) -> bytes:
    """A random secret of the server kept in the store (``server_secrets``), made on first use (256 bits)."""
    r = con.execute("SELECT value FROM server_secrets WHERE name = ?", [name]).fetchone()
    if r is None:
        value = secrets.token_hex(32)
        con.execute("INSERT INTO server_secrets VALUES (?, ?)", [name, value])
        return bytes.fromhex(value)
    return bytes.fromhex(r[0])


# -- users
@dataclass(frozen=True)
class User:
    username: str
    role: str
    enterprise_id: str | None
    display_name: str | None
    active: bool
    projects: tuple[str, ...] = field(default_factory=tuple)
    district: str | None = None

    def to_dict(self) -> dict:
        return {"username": self.username, "role": self.role, "enterprise_id": self.enterprise_id,
                "display_name": self.display_name, "active": self.active, "projects": list(self.projects),
                "district": self.district}


def _user_row(con, username: str):
    return con.execute("SELECT username, password_hash, role, enterprise_id, display_name, active, district "
                       "FROM server_users WHERE username = ?", [username]).fetchone()


def get_user(con, username: str) -> User | None:
    r = _user_row(con, username)
    if r is None:
        return None
    projects = tuple(p for (p,) in con.execute(
        "SELECT DISTINCT project_id FROM server_assignments WHERE username = ? ORDER BY project_id",
        [username]).fetchall())
    return User(r[0], r[2], r[3], r[4], bool(r[5]), projects, r[6])


def list_users(con) -> list[User]:
    names = [n for (n,) in con.execute("SELECT username FROM server_users ORDER BY username").fetchall()]
    users = [get_user(con, n) for n in names]
    return [u for u in users if u is not None]  # a user deleted meanwhile is left out


def add_user(con, username: str, password: str, role: str, enterprise_id: str | None = None,
             display_name: str | None = None, projects=(), district: str | None = None) -> User:
    """Create a user.

    Raises
    ------
    AccountError
        Bad name or password, unknown role, an enterprise user without enterprise (or another role with one),
        or a user of that name exists already.
    """
    check_name(username)
    if role not in ROLES:
        raise AccountError(UNKNOWN_ROLE, role=role, roles=list(ROLES))
    if role == "enterprise" and not enterprise_id:
        raise AccountError(NEEDS_ENTERPRISE)
    if role != "enterprise" and enterprise_id:
        raise AccountError(ONLY_ENTERPRISE_USERS, role=role)
    if projects and role != "assessor":
        raise AccountError(ONLY_ASSESSORS)
    if role == "district":
        from zhizao.portfolio.vocabularies import vocabulary

        if not district:
            raise AccountError(NEEDS_DISTRICT)
        code = vocabulary("district").match(district)
        if code is None:
            raise AccountError(vocabulary("district").unknown(district))
        district = code
    elif district:
        raise AccountError(ONLY_DISTRICT_REVIEWERS, role=role)
    if _user_row(con, username) is not None:
        raise UserExists(USER_EXISTS, name=username)
    h = hash_password(password, username, display_name)
    con.execute("INSERT INTO server_users (username, password_hash, role, enterprise_id, display_name, district) "
                "VALUES (?, ?, ?, ?, ?, ?)", [username, h, role, enterprise_id, display_name, district])
    for p in projects:
        assign(con, username, p)
    user = get_user(con, username)
    assert user is not None  # just inserted
    return user


def set_password(con, username: str, password: str) -> None:
    """Set a new password (checked by :func:`check_password`) and revoke the user's sessions.

    Whether the old password is needed (a user changing their own) is the caller's decision: the server asks
    for it (:meth:`zhizao.server.auth.Auth.verify_password`), the command line on a store it owns does not."""
    r = _user_row(con, username)
    if r is None:
        raise UnknownUser(NO_USER, name=username)
    con.execute("UPDATE server_users SET password_hash = ? WHERE username = ?",
                [hash_password(password, username, r[4]), username])
    revoke_user_sessions(con, username)


def set_active(con, username: str, active: bool) -> None:
    """Enable or disable a user; disabling revokes the user's sessions."""
    if _user_row(con, username) is None:
        raise UnknownUser(NO_USER, name=username)
    con.execute("UPDATE server_users SET active = ? WHERE username = ?", [bool(active), username])
    if not active:
        revoke_user_sessions(con, username)


def assign(con, username: str, project_id: str) -> None:
    """Assign a project to an assessor."""
    u = get_user(con, username)
    if u is None:
        raise UnknownUser(NO_USER, name=username)
    if u.role != "assessor":
        raise AccountError(NOT_ASSESSOR, name=username)
    if project_id not in u.projects:
        con.execute("INSERT INTO server_assignments (username, project_id) VALUES (?, ?)", [username, project_id])


def unassign(con, username: str, project_id: str) -> None:
    con.execute("DELETE FROM server_assignments WHERE username = ? AND project_id = ?", [username, project_id])


def authenticate(con, username: str, password: str) -> User | None:
    """The active user with this name and password, else None (same answer for unknown user and bad password)."""
    r = _user_row(con, username) if isinstance(username, str) and _NAME_RE.match(username or "") else None
    h = r[1] if r is not None else _DUMMY_HASH
    try:
        _hasher.verify(h, password if isinstance(password, str) else "")
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return None
    if r is None or not r[5]:
        return None
    return get_user(con, username)


_DUMMY_HASH = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash("not a password")


# -- sessions
@dataclass(frozen=True)
class Session:
    session_id: str
    username: str
    csrf: str
    expires_at: dt.datetime


def create_session(con, username: str, user_agent: str | None = None, hours: float = SESSION_HOURS
                   ) -> tuple[str, Session]:
    """A new session of ``username``; returns (token, session). Only the token's SHA-256 is stored."""
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    sid = "s_" + secrets.token_hex(8)
    csrf = secrets.token_urlsafe(24)
    expires = _now() + dt.timedelta(hours=hours)
    con.execute("INSERT INTO server_sessions (session_id, token_sha256, username, csrf, expires_at, user_agent) "
                "VALUES (?, ?, ?, ?, ?, ?)", [sid, sha256(token), username, csrf, expires, (user_agent or "")[:200]])
    return token, Session(sid, username, csrf, expires)


def lookup_session(con, token: str) -> Session | None:
    """The live (not revoked, not expired) session of ``token`` whose user is active, else None."""
    r = con.execute("""SELECT s.session_id, s.username, s.csrf, s.expires_at FROM server_sessions s
                       JOIN server_users u ON u.username = s.username
                       WHERE s.token_sha256 = ? AND s.revoked_at IS NULL AND s.expires_at > ? AND u.active""",
                    [sha256(token), _now()]).fetchone()
    return Session(*r) if r else None


def list_sessions(con, username: str | None = None) -> list[dict]:
    rows = con.execute("""SELECT session_id, username, created_at, expires_at, revoked_at, user_agent
                          FROM server_sessions WHERE (? IS NULL OR username = ?) ORDER BY created_at""",
                       [username, username]).fetchall()
    keys = ("session_id", "username", "created_at", "expires_at", "revoked_at", "user_agent")
    return [dict(zip(keys, r)) for r in rows]


def get_session(con, session_id: str) -> dict | None:
    r = [s for s in list_sessions(con) if s["session_id"] == session_id]
    return r[0] if r else None


def revoke_session(con, session_id: str) -> bool:
    """Revoke one session; False when there is no live session of that id."""
    n = con.execute("SELECT count(*) FROM server_sessions WHERE session_id = ? AND revoked_at IS NULL",
                    [session_id]).fetchone()[0]
    con.execute("UPDATE server_sessions SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL",
                [_now(), session_id])
    return n > 0


def revoke_user_sessions(con, username: str) -> int:
    n = con.execute("SELECT count(*) FROM server_sessions WHERE username = ? AND revoked_at IS NULL",
                    [username]).fetchone()[0]
    con.execute("UPDATE server_sessions SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL",
                [_now(), username])
    return n


# -- API keys
@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str | None
    enterprise_id: str | None
    site: str | None
    created_by: str | None
    created_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None

    def to_dict(self) -> dict:
        return {"key_id": self.key_id, "name": self.name, "enterprise_id": self.enterprise_id, "site": self.site,
                "created_by": self.created_by,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}


_KEY_COLS = "key_id, name, enterprise_id, site, created_by, created_at, revoked_at"


def create_key(con, enterprise_id: str | None = None, site: str | None = None, name: str | None = None,
               created_by: str | None = None) -> tuple[str, ApiKey]:
    """A new API key scoped to one enterprise, or to one site of one enterprise (``enterprise_id``, or the one
    enterprise whose equipment is at ``site``); returns (key, record).

    The key is shown once: only its SHA-256 is stored.
    """
    if not enterprise_id and not site:
        raise AccountError(KEY_SCOPE)
    if name is not None and len(name) > 200:
        raise AccountError(KEY_NAME_LENGTH)
    if site and not enterprise_id:  # a site key is bound to the one enterprise at that site
        ents = site_enterprises(con, site)
        if len(ents) != 1:
            raise AccountError(SITE_KEY_ENTERPRISE, site=site)
        enterprise_id = ents[0]
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    kid = "k_" + secrets.token_hex(6)
    con.execute("INSERT INTO server_api_keys (key_id, key_sha256, name, enterprise_id, site, created_by) "
                "VALUES (?, ?, ?, ?, ?, ?)", [kid, sha256(key), name, enterprise_id or None, site or None,
                                              created_by])
    rec = get_key(con, kid)
    assert rec is not None  # just inserted
    return key, rec


def site_enterprises(con, site: str) -> list[str]:
    """The enterprises whose equipment is at ``site``."""
    return store_equipment.enterprises_at(con, site)


def get_key(con, key_id: str) -> ApiKey | None:
    r = con.execute(f"SELECT {_KEY_COLS} FROM server_api_keys WHERE key_id = ?", [key_id]).fetchone()
    return ApiKey(*r) if r else None


def list_keys(con) -> list[ApiKey]:
    return [ApiKey(*r) for r in con.execute(f"SELECT {_KEY_COLS} FROM server_api_keys ORDER BY created_at, key_id"
                                            ).fetchall()]


def lookup_key(con, key: str) -> ApiKey | None:
    """The live (not revoked) key record of ``key``, else None."""
    r = con.execute(f"SELECT {_KEY_COLS} FROM server_api_keys WHERE key_sha256 = ? AND revoked_at IS NULL",
                    [sha256(key)]).fetchone()
    return ApiKey(*r) if r else None


def revoke_key(con, key_id: str) -> bool:
    """Revoke a key; False when there is no live key of that id."""
    n = con.execute("SELECT count(*) FROM server_api_keys WHERE key_id = ? AND revoked_at IS NULL",
                    [key_id]).fetchone()[0]
    con.execute("UPDATE server_api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                [_now(), key_id])
    return n > 0
