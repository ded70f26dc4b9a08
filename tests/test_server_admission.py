"""Admission of requests (``zhizao serve --slots``): a few at once, first come first served, none held long."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhizao.server.admission import Admission


class _App:
    """An ASGI app whose requests each wait for their own event; it records who is inside."""

    def __init__(self):
        self.inside: list[int] = []
        self.entered: list[int] = []
        self.release: dict[int, asyncio.Event] = {}
        self.most = 0

    def finish(self, n: int) -> None:
        """Let request ``n`` end (now, or as soon as it enters)."""
        self.release.setdefault(n, asyncio.Event()).set()

    async def __call__(self, scope, receive, send):
        n = scope["n"]
        self.entered.append(n)
        self.inside.append(n)
        self.most = max(self.most, len(self.inside))
        try:
            await self.release.setdefault(n, asyncio.Event()).wait()
        finally:
            self.inside.remove(n)


def _request(gate, n: int, kind: str = "http"):
    return asyncio.ensure_future(gate({"type": kind, "n": n}, None, None))


async def _settle():
    for _ in range(5):
        await asyncio.sleep(0)


async def _one_inside(patience: float = 60):
    """An app behind one slot, and request 0 inside it."""
    app = _App()
    gate = Admission(app, slots=1, patience=patience)
    first = _request(gate, 0)
    await _settle()
    return app, gate, first


def test_requests_beyond_the_slots_wait_and_enter_in_their_order_of_arrival():
    async def run():
        app = _App()
        gate = Admission(app, slots=2, patience=60)
        tasks = [_request(gate, n) for n in range(5)]
        await _settle()
        assert app.entered == [0, 1]  # two inside, three waiting
        for n in (1, 0, 2, 3, 4):
            app.finish(n)
            await _settle()
        assert app.entered == [0, 1, 2, 3, 4] and app.most == 2
        await asyncio.gather(*tasks)
        assert gate.free == 2 and not gate.waiting
    asyncio.run(run())


def test_a_request_admitted_longer_than_the_patience_no_longer_holds_its_slot():
    """A long computation (a plant-year never computed, an upload) runs on outside the bound after ``patience``
    seconds: the next request enters then, not when the long one ends."""
    async def run():
        app, gate, long = await _one_inside(patience=0.05)
        short = _request(gate, 1)
        await _settle()
        assert app.entered == [0]
        await asyncio.sleep(0.12)
        assert app.entered == [0, 1] and app.inside == [0, 1]  # the long one runs on beside it
        app.finish(1)
        await short
        app.finish(0)
        await long
        assert gate.free == 1 and not gate.waiting  # its slot was given up once, not twice
    asyncio.run(run())


def test_a_client_that_leaves_while_waiting_takes_no_slot_with_it():
    async def run():
        app, gate, first = await _one_inside()
        gone, after = _request(gate, 1), _request(gate, 2)
        await _settle()
        gone.cancel()
        await _settle()
        app.finish(0)
        await first
        await _settle()
        assert app.entered == [0, 2]
        app.finish(2)
        await after
        assert gate.free == 1 and not gate.waiting
        with pytest.raises(asyncio.CancelledError):
            await gone
    asyncio.run(run())


def test_other_scopes_and_errors_pass_through():
    async def run():
        app = _App()
        gate = Admission(app, slots=1, patience=60)
        first = _request(gate, 0)
        life = _request(gate, 1, "lifespan")  # not an HTTP request: never waits
        await _settle()
        assert app.entered == [0, 1]
        app.finish(1)
        await life

        async def boom(scope, receive, send):
            raise RuntimeError("boom")
        failing = Admission(boom, slots=1, patience=60)
        with pytest.raises(RuntimeError):
            await failing({"type": "http"}, None, None)
        assert failing.free == 1  # an error gives its slot back
        app.finish(0)
        await first
    asyncio.run(run())
    with pytest.raises(ValueError):
        Admission(_App(), slots=0)
    with pytest.raises(ValueError):
        Admission(_App(), slots=2, patience=0)


def test_a_request_whose_event_loop_is_gone_does_not_take_the_slot_with_it():
    """A request waiting on an event loop that was closed (a test client's, torn down) is passed over: the slot
    goes to the next one, or is free; nobody waits forever and no other request fails for it."""
    async def run():
        app, gate, first = await _one_inside()
        dead = asyncio.new_event_loop()
        gate.waiting.append((dead, dead.create_future()))
        dead.close()
        after = _request(gate, 1)
        await _settle()
        app.finish(0)
        await first  # (its slot goes past the dead one to the next)
        await _settle()
        assert app.entered == [0, 1]
        app.finish(1)
        await after
        assert gate.free == 1 and not gate.waiting
    asyncio.run(run())


@given(st.integers(1, 4), st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=25),
       st.randoms(use_true_random=False))
@settings(max_examples=60, deadline=None)
def test_never_more_than_the_slots_inside_and_always_in_order(slots, plan, rnd: random.Random):
    """Requests arriving in bursts (``plan``: how many steps after the last each arrives, and whether its
    client leaves while it waits), finishing in random order: at most ``slots`` inside at once, those that
    stayed entered in their order of arrival, every one served, and the slots all free at the end."""
    async def run():
        app = _App()
        gate = Admission(app, slots=slots, patience=60)
        tasks, leaves = [], []
        for n, (gap, leave) in enumerate(plan):
            for _ in range(gap):
                if app.inside:
                    app.finish(rnd.choice(app.inside))
                await _settle()
            tasks.append(_request(gate, n))
            await _settle()
            if leave and n not in app.entered:
                tasks[n].cancel()
                leaves.append(n)
        while not all(t.done() for t in tasks):
            for n in list(app.inside):
                app.finish(n)
            await _settle()
        assert app.most <= slots
        assert app.entered == [n for n in range(len(plan)) if n not in leaves]
        assert gate.free == slots and not gate.waiting
    asyncio.run(run())


def test_the_server_answers_concurrent_requests_through_its_slots(tmp_path):
    """``create_app(slots=...)`` (``zhizao serve`` uses :data:`zhizao.server.admission.SLOTS`): eight pages asked
    at once through one slot are all answered; a bad setting is refused before anything is opened."""
    from concurrent.futures import ThreadPoolExecutor

    from test_server_support import bearer, clone, login, make_client
    from zhizao.server.app import create_app

    for bad in ({"slots": -1}, {"slots": 2, "slot_patience": 0}):
        with pytest.raises(ValueError):
            create_app(tmp_path / "never.duckdb", warm=False, **bad)
    assert not (tmp_path / "never.duckdb").exists()
    client = make_client(clone(tmp_path / "s.duckdb"), slots=1, slot_patience=0.05)
    try:
        assert client.app.user_middleware[0].cls is Admission  # outermost
        h = bearer(login(client, "root"))
        paths = ["/plant", "/api/v1/kpi?level=site&period=all", "/api/v1/health", "/plant/site/ENT001-S1"] * 2
        with ThreadPoolExecutor(4) as ex:
            status = list(ex.map(lambda p: client.get(p, headers=h).status_code, paths))
        assert status == [200] * len(paths)
    finally:
        client.app.state.server.close()


def test_a_request_that_waits_on_something_else_gives_its_slot_up():
    """A page waiting for figures computed in the background (``--fresh-wait``), for another request's identical
    computation or for the store's write lock calls :func:`zhizao.server.admission.waiting` from its handler's
    thread: the next request is admitted at once, not after the patience. (Holding slots while waiting, the
    dashboard's p95 of ``benchmarks/tenant_load.py`` rose from 0.32 to 0.94 s.)"""
    import threading

    import httpx
    from fastapi import FastAPI

    from zhizao.server.admission import waiting

    app = FastAPI()
    go, entered = threading.Event(), []

    @app.get("/wait")
    def wait_():
        entered.append("wait")
        waiting()
        waiting()  # (twice: once given up)
        go.wait(10)
        return {}

    @app.get("/quick")
    def quick():
        entered.append("quick")
        return {}
    app.add_middleware(Admission, slots=1, patience=60)

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            slow = asyncio.ensure_future(c.get("/wait"))
            while "wait" not in entered:
                await asyncio.sleep(0.01)
            r = await asyncio.wait_for(c.get("/quick"), 5)  # (the patience is a minute)
            assert r.status_code == 200 and entered == ["wait", "quick"]
            go.set()
            assert (await slow).status_code == 200
        gate = app.middleware_stack
        while not isinstance(gate, Admission):
            gate = gate.app
        assert gate.free == 1 and not gate.waiting
    asyncio.run(run())
    waiting()  # (outside a request: nothing)
