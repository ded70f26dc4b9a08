"""Admission of requests: a few compute at once, the others wait their turn (``zhizao serve --slots``).

The server answers on one Python interpreter, and its request threads run Python one at a time (the GIL), in turns
of a few milliseconds. With every request admitted at once (up to the 40 threads of the pool), the requests in
flight share that interpreter evenly, so a request is stretched by all the others for its whole length: among 50
users clicking without pause through the dashboard of a 1,000-machine plant, a page served from the cache took
53 ms at the 95th percentile and a machine page seen for the first time (10 ms of computing) 233 ms
(``benchmarks/server_load.py``). Admitting :data:`SLOTS` requests at a time, in their order of arrival, a request
waits for those ahead of it and then runs nearly alone: the machine pages 110-112 ms, the cached pages 63-64 ms
(docs/server.md, "Requests at once").

A request that has been admitted for ``patience`` seconds gives its slot to the next one and runs on outside the
bound: a long computation (a plant-year never computed, an upload, a report) never holds the door for longer than
that. So does a request that starts waiting on something else than its own computing (:func:`waiting`: figures
computed in the background, another request's identical computation, the store's write lock): a slot held by a
request that waits would leave the interpreter idle while others queue (with every plant page of 20 clients
waiting up to ``--fresh-wait`` for its figures, the dashboard's p95 rose from 0.32 to 0.94 s in
``benchmarks/tenant_load.py``). At most ``slots`` requests admitted less than ``patience`` ago and not waiting
run at once, besides the others.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar

#: Requests admitted at once by ``zhizao serve`` (``--slots``; 0: all, as uvicorn's thread pool takes them):
#: enough to keep both of a small machine's cores busy while one waits on the store, few enough that a request
#: is not shared among dozens
SLOTS = 4
#: Seconds a request holds its slot at most (``--slot-patience``) before it runs on outside the bound
PATIENCE = 0.25


#: The admitted request of this context: how it gives its slot up (copied into the thread that runs its handler)
_LEAVE: ContextVar[Callable[[], None] | None] = ContextVar("zhizao_admission_leave", default=None)


def waiting() -> None:
    """The request running in this context starts waiting on something else than its own computing: it gives its
    slot to the next request and runs on outside the bound (see the module's text). Nothing outside an admitted
    request; safe from any thread, and more than once."""
    leave = _LEAVE.get()
    if leave is not None:
        leave()


class Admission:
    """ASGI middleware: at most ``slots`` HTTP requests inside ``app`` at once, the rest admitted first come,
    first served; a request admitted ``patience`` seconds ago no longer counts (it runs on). Other scopes
    (lifespan, websockets) pass straight through.

    Parameters
    ----------
    app : ASGI application
    slots : int
        Requests admitted at once (at least 1).
    patience : float
        Seconds after which an admitted request gives its slot up [s] (> 0).
    """

    def __init__(self, app, slots: int = SLOTS, patience: float = PATIENCE):
        if slots < 1 or not patience > 0:
            raise ValueError(f"slots must be at least 1 and patience positive, not {slots} and {patience}")
        self.app = app
        self.slots = slots
        self.patience = patience
        self.free = slots  # slots not held
        # (the requests waiting, each with its event loop: uvicorn runs one, a test client one per request)
        self.waiting: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = deque()
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self._enter()
        once = threading.Lock()  # (the timer, the request's own thread and its end may each give the slot up)

        def leave():
            if once.acquire(blocking=False):
                self._hand_on()
        timer = asyncio.get_running_loop().call_later(self.patience, leave)
        token = _LEAVE.set(leave)
        try:
            await self.app(scope, receive, send)
        finally:
            _LEAVE.reset(token)
            timer.cancel()
            leave()

    async def _enter(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.free > 0 and not self.waiting:
                self.free -= 1
                return
            turn = loop.create_future()
            self.waiting.append((loop, turn))
        try:
            await turn
        except asyncio.CancelledError:  # the client left while waiting
            with self._lock:
                try:
                    self.waiting.remove((loop, turn))
                    handed = False
                except ValueError:
                    handed = True
            if handed:  # a slot had been handed to it: on to the next
                self._hand_on()
            raise

    def _hand_on(self) -> None:
        """A slot given up: to the first request waiting whose event loop still runs, else free."""
        while True:
            with self._lock:
                if not self.waiting:
                    self.free += 1
                    return
                loop, turn = self.waiting.popleft()
            try:
                loop.call_soon_threadsafe(_admit, turn)
                return
            except RuntimeError:  # its loop was closed with it waiting (a test client's): the next one
                continue


def _admit(turn: asyncio.Future) -> None:
    if not turn.done():  # (a request cancelled meanwhile hands its slot on itself)
        turn.set_result(None)


__all__ = ["PATIENCE", "SLOTS", "Admission", "waiting"]
