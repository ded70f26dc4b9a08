"""Authentication: session tokens (browser cookie or ``Authorization: Bearer``) and API keys
(``X-API-Key`` or ``Authorization: Bearer``), resolved to a :class:`~zhizao.server.access.Principal`.

Resolved credentials are cached in memory for :data:`CACHE_SECONDS`; every account change made through the
server (revocation, disabling, password, assignments) empties that cache at once, and the store is owned by
the server process while it runs, so a revocation takes effect with the next request.

Logins are throttled (:class:`LoginThrottle`): per client (IP address, an IPv6 client by its /64) and per
account, with exponential backoff past a number of free failures, counted atomically (an attempt is counted
before its password is checked, so concurrent attempts cannot exceed the limit), in bounded tables whose
eviction keeps the entries that lock. A client that has logged in to an account before (its IP address, or the
browser's signed device cookie) is *known* for that account: its attempts are counted apart, so nobody else
can lock the legitimate user out of their account from elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import threading
import time
from dataclasses import dataclass

from zhizao.messages import define
from zhizao.server import accounts
from zhizao.server.access import Principal
from zhizao.server.errors import RateLimited

TOO_MANY_LOGINS = define("server.too_many_logins", "too many failed logins; try again in %(seconds)s s")

COOKIE = "zhizao_session"
#: The browser's device cookie: which account it has logged in to before (signed, see :class:`LoginThrottle`).
DEVICE_COOKIE = "zhizao_device"
DEVICE_DAYS = 90
CSRF_HEADER = "x-csrf-token"
CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class Limit:
    """Failures allowed before backoff (``free``), the first wait and its cap [s], and how long after the last
    failure (and its wait) an entry is forgotten [s]."""

    free: int
    base: float
    cap: float
    forget: float

    def wait(self, count: int, last: float, now: float) -> float:
        """Seconds still to wait after ``count`` failures, the last at ``last`` (0: may try now)."""
        if count < self.free:
            return 0.0
        return max(0.0, min(self.cap, self.base * 2.0 ** (count - self.free)) - (now - last))


#: Per client address (unknown clients): 10 free failures, then 1 s, 2 s, 4 s ... up to 15 min between tries.
CLIENT_LIMIT = Limit(free=10, base=1.0, cap=900.0, forget=3600.0)
#: Per account, attempts from clients not known for it: 10 free failures, then the same backoff.
ACCOUNT_LIMIT = Limit(free=10, base=1.0, cap=900.0, forget=3600.0)
#: Per account and known client (its address or device cookie).
KNOWN_LIMIT = Limit(free=10, base=1.0, cap=900.0, forget=3600.0)
#: Most entries per table (failure counters; known clients).
MAX_ENTRIES = 50_000
#: How long a successful login makes its client known for the account [s].
KNOWN_SECONDS = 30 * 86400.0


class LoginThrottle:
    """Failure counters of logins: exponential backoff per client, per account and per known client.

    Every method is atomic (one lock). :meth:`begin` decides whether an attempt may be made and counts it as a
    failure at once; :meth:`succeeded` takes that count back (and forgets the account's failures from unknown
    clients: the password was right). Attempts refused during a wait are not counted.

    Tables are bounded (:data:`MAX_ENTRIES`): when one is full, forgotten entries are dropped first, then those
    with the fewest failures, so that a flood of new names cannot clear the entries that lock.
    """

    def __init__(self, client: Limit = CLIENT_LIMIT, account: Limit = ACCOUNT_LIMIT, known: Limit = KNOWN_LIMIT,
                 max_entries: int = MAX_ENTRIES, clock=time.monotonic):
        self.limits = {"client": client, "account": account, "known": known}
        self.max_entries = max_entries
        self.clock = clock
        self._lock = threading.Lock()
        self._fail: dict[tuple, list] = {}  # key -> [count, last]
        self._known: dict[tuple, float] = {}  # (username, client) -> time of the last success

    @staticmethod
    def client_key(host: str | None) -> str:
        """The counted identity of a client address: the address, an IPv6 address by its /64 network."""
        if not host:
            return "?"
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return host[:100]
        if ip.version == 6:
            if ip.ipv4_mapped is not None:
                return str(ip.ipv4_mapped)
            return str(ipaddress.ip_network(f"{ip}/64", strict=False))
        return str(ip)

    def _keys(self, username: str, client: str, known_as: str | None) -> list[tuple]:
        if known_as is not None:
            return [("known", username, known_as)]
        return [("client", client), ("account", username)]

    def is_known(self, username: str, client: str) -> bool:
        with self._lock:
            t = self._known.get((username, client))
            return t is not None and self.clock() - t < KNOWN_SECONDS

    def begin(self, username: str, client: str, device: bool = False) -> tuple[float, list[tuple]]:
        """Whether ``username`` may be tried now from ``client`` (``device``: the request carries a valid device
        cookie of that account): (0, keys) after counting the attempt, or (seconds to wait, []) if not."""
        with self._lock:
            now = self.clock()
            t = self._known.get((username, client))
            known_as = "device" if device else (client if t is not None and now - t < KNOWN_SECONDS else None)
            keys = self._keys(username, client, known_as)
            wait = 0.0
            for k in keys:
                e = self._fail.get(k)
                if e is not None and self._expired(k, e, now):  # forgotten: counting starts again
                    del self._fail[k]
                elif e is not None:
                    wait = max(wait, self.limits[k[0]].wait(e[0], e[1], now))
            if wait > 0:
                return wait, []
            for k in keys:
                e = self._fail.get(k)
                if e is None:
                    self._make_room(self._fail, now)
                    self._fail[k] = [1, now]
                else:
                    e[0] += 1
                    e[1] = now
            return 0.0, keys

    def succeeded(self, username: str, client: str, keys: list[tuple]) -> None:
        """Take back the attempt counted by :meth:`begin`; the client is now known for ``username``."""
        with self._lock:
            now = self.clock()
            for k in keys:
                e = self._fail.get(k)
                if e is None:
                    continue
                e[0] = 0 if k[0] in ("account", "known") else max(0, e[0] - 1)
                if e[0] == 0:
                    del self._fail[k]
            if (username, client) not in self._known:
                self._make_room(self._known, now)
            self._known[(username, client)] = now

    def wait_seconds(self, username: str, client: str, device: bool = False) -> float:
        """Seconds until ``username`` may be tried from ``client`` (0: now), counting nothing."""
        with self._lock:
            now = self.clock()
            t = self._known.get((username, client))
            known_as = "device" if device else (client if t is not None and now - t < KNOWN_SECONDS else None)
            wait = 0.0
            for k in self._keys(username, client, known_as):
                e = self._fail.get(k)
                if e is not None and not self._expired(k, e, now):
                    wait = max(wait, self.limits[k[0]].wait(e[0], e[1], now))
            return wait

    def _expired(self, key, value, now: float) -> bool:
        if isinstance(value, float):  # a known client
            return now - value >= KNOWN_SECONDS
        lim = self.limits[key[0]]
        return now - value[1] >= lim.forget + lim.wait(value[0], value[1], value[1])

    def _make_room(self, table: dict, now: float) -> None:
        """Before adding to a full ``table``: drop forgotten entries, then (if still nearly full) the fifth with
        the fewest failures (failure tables) or the oldest (known clients)."""
        if len(table) < self.max_entries:
            return
        for k in [k for k, v in table.items() if self._expired(k, v, now)]:
            del table[k]
        if len(table) < self.max_entries * 0.9:
            return
        order = sorted(table, key=lambda k: (table[k][0], table[k][1]) if isinstance(table[k], list)
                       else (table[k],))
        for k in order[:max(1, len(order) // 5)]:
            del table[k]

    def __len__(self) -> int:
        return len(self._fail)


class Auth:
    def __init__(self, store, throttle: LoginThrottle | None = None):
        self.store = store
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()
        self.throttle = throttle or LoginThrottle()
        self._device_secret: bytes | None = None

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

    # -- device cookies: a browser that logged in to an account before
    def _secret(self) -> bytes:
        if self._device_secret is None:
            with self.store.accounts() as con:
                self._device_secret = accounts.server_secret(con, "device_cookie")
        return self._device_secret

    def device_cookie(self, username: str) -> str:
        """A signed device cookie saying that this browser logged in to ``username`` (valid
        :data:`DEVICE_DAYS` days)."""
        payload = base64.urlsafe_b64encode(f"{username}|{int(time.time())}".encode()).decode().rstrip("=")
        sig = hmac.new(self._secret(), payload.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{payload}.{sig}"

    def device_valid(self, cookie: str | None, username: str) -> bool:
        """Whether ``cookie`` is a valid device cookie of ``username``."""
        if not cookie or not isinstance(cookie, str) or len(cookie) > 300 or "." not in cookie:
            return False
        payload, sig = cookie.rsplit(".", 1)
        good = hmac.new(self._secret(), payload.encode(), hashlib.sha256).hexdigest()[:32]
        if not hmac.compare_digest(sig, good):
            return False
        try:
            name, issued = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().rsplit("|", 1)
            return name == username and time.time() - int(issued) < DEVICE_DAYS * 86400
        except (ValueError, UnicodeDecodeError):
            return False

    # -- passwords, throttled
    def check(self, username: str, password: str, client: str | None = None, device: str | None = None):
        """The active user of ``username`` if ``password`` is right, None if not; :class:`RateLimited` while
        this client must wait (see :class:`LoginThrottle`). Every password check of the server goes here."""
        name = username if isinstance(username, str) else ""
        ckey = LoginThrottle.client_key(client)
        wait, keys = self.throttle.begin(name, ckey, self.device_valid(device, name))
        if wait > 0:
            raise RateLimited(TOO_MANY_LOGINS, seconds=int(wait) + 1)
        cur = self.store.cursor()
        try:
            user = accounts.authenticate(cur, name, password)
        finally:
            cur.close()
        if user is not None:
            self.throttle.succeeded(name, ckey, keys)
        return user

    def wait_seconds(self, username: str, client: str | None = None, device: str | None = None) -> int:
        """Seconds until ``username`` may try to log in again from ``client`` (0: now)."""
        w = self.throttle.wait_seconds(username, LoginThrottle.client_key(client), self.device_valid(device, username))
        return int(w) + 1 if w > 0 else 0

    def login(self, username: str, password: str, user_agent: str | None = None, client: str | None = None,
              device: str | None = None):
        """(token, session, user) of a new session, or None for a wrong name or password; :class:`RateLimited`
        while the client must wait."""
        user = self.check(username, password, client, device)
        if user is None:
            return None
        with self.store.accounts() as con:
            token, session = accounts.create_session(con, user.username, user_agent)
        return token, session, user
