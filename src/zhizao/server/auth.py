"""Authentication: session tokens (browser cookie or ``Authorization: Bearer``) and API keys
(``X-API-Key`` or ``Authorization: Bearer``), resolved to a :class:`~zhizao.server.access.Principal`.

Resolved credentials are cached in memory for :data:`CACHE_SECONDS`; every account change made through the
server (revocation, disabling, password, assignments) empties that cache at once, and the store is owned by
the server process while it runs, so a revocation takes effect with the next request.
"""

from __future__ import annotations

import threading
import time

from zhizao.server import accounts
from zhizao.server.access import Principal

COOKIE = "zhizao_session"
CSRF_HEADER = "x-csrf-token"
CACHE_SECONDS = 30.0
#: Failed logins per user name before a pause of LOCK_SECONDS.
MAX_FAILURES = 10
LOCK_SECONDS = 60.0


class Auth:
    def __init__(self, store):
        self.store = store
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()

    def resolve(self, token: str) -> Principal | None:
        """The principal of a session token or API key; None when unknown, expired or revoked."""
        if not isinstance(token, str) or len(token) > 200 or not token.startswith(
                (accounts.SESSION_PREFIX, accounts.KEY_PREFIX)):
            return None
        h = accounts.sha256(token)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(h)
        if hit is not None and hit[0] > now:
            return hit[1]
        p = self._lookup(token)
        with self._lock:
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[h] = (now + CACHE_SECONDS, p)
        return p

    def _lookup(self, token: str) -> Principal | None:
        cur = self.store.cursor()
        try:
            if token.startswith(accounts.SESSION_PREFIX):
                s = accounts.lookup_session(cur, token)
                if s is None:
                    return None
                u = accounts.get_user(cur, s.username)
                if u is None or not u.active:
                    return None
                return Principal("user", u.username, u.role, u.enterprise_id, None, frozenset(u.projects),
                                 s.session_id, s.csrf, u.display_name, u.district)
            k = accounts.lookup_key(cur, token)
            if k is None:
                return None
            return Principal("key", k.key_id, "enterprise", k.enterprise_id, k.site, frozenset(), None, None,
                             k.name)
        finally:
            cur.close()

    # -- login throttling
    def locked(self, username: str) -> bool:
        now = time.monotonic()
        with self._lock:
            f = [t for t in self._failures.get(username, []) if t > now - LOCK_SECONDS]
            self._failures[username] = f
            return len(f) >= MAX_FAILURES

    def failed(self, username: str) -> None:
        with self._lock:
            self._failures.setdefault(username, []).append(time.monotonic())
            if len(self._failures) > 10000:
                self._failures.clear()

    def wait_seconds(self, username: str, client: str | None = None) -> int:
        """Seconds until ``username`` may try to log in again (0: now)."""
        return int(LOCK_SECONDS) if self.locked(username) else 0

    def login(self, username: str, password: str, user_agent: str | None = None, client: str | None = None):
        """(token, session, user) of a new session, or None for a wrong name or password."""
        cur = self.store.cursor()
        try:
            user = accounts.authenticate(cur, username, password)
        finally:
            cur.close()
        if user is None:
            self.failed(username)
            return None
        with self.store.accounts() as con:
            token, session = accounts.create_session(con, user.username, user_agent)
        return token, session, user
