"""zhizao server: a REST API and a web dashboard over one store (FastAPI, Jinja2, uvicorn).

- :func:`create_app` builds the application (``zhizao.server.app``); the server computes nothing itself, it
  calls the stages (:mod:`zhizao.api`, :mod:`zhizao.verify`, :mod:`zhizao.portfolio`) through the principal's
  :class:`~zhizao.server.access.TenantView`, the one place where roles and tenant isolation are enforced.
- :func:`serve` runs it with uvicorn in one process (DuckDB lets one process own the store).
- Accounts, sessions, API keys and uploads live in the store's file, in tables of their own
  (:mod:`zhizao.server.accounts`).

See docs/server.md.
"""

from __future__ import annotations

#: Seconds a dashboard page of ``zhizao serve`` waits for figures that include the latest writes before it shows
#: the earlier ones, marked with the time they are as of (``--fresh-wait``; ``--always-fresh`` waits always)
FRESH_WAIT = 0.3
#: Entries and memory [MiB] of the server's result cache (:class:`zhizao.server.store.Store`; ``--cache-mb``):
#: the pages of a thousand machines in two languages, and the stage results they are cut from (a 1,000-machine
#: plant-year's tables of the levels by day and by the whole range: 385 MiB; docs/server.md)
CACHE_SIZE = 65536
CACHE_MB = 1024.0


def create_app(db="zhizao.duckdb", **kw):
    """The FastAPI application over store ``db`` (see :func:`zhizao.server.app.create_app`)."""
    from zhizao.server.app import create_app as _create

    return _create(db, **kw)


def serve(db="zhizao.duckdb", host: str = "127.0.0.1", port: int = 8000, max_upload_mb: float = 200,
          warm: bool = True, secure_cookies: bool = False, log_level: str = "info",
          fresh_wait: float | None = FRESH_WAIT, live=(), cache_mb: float | None = CACHE_MB,
          slots: int | None = None, slot_patience: float | None = None) -> None:
    """Run the server until interrupted; the store is closed (and checkpointed) on the way out.

    ``fresh_wait`` [s]: how long a dashboard page waits for figures that include the latest writes before it
    shows the earlier ones, marked with the time they are as of (None: always wait; see
    :meth:`zhizao.server.store.ResultCache.get_or_stale`). ``live``: MQTT and OPC UA sources the server
    subscribes to, writing into its store (:mod:`zhizao.server.live`). ``cache_mb``: memory of the result cache
    [MiB] (:class:`zhizao.server.store.Store`). ``slots``: requests computed at once, the others waiting their
    turn (default :data:`zhizao.server.admission.SLOTS`; 0: every request at once), each for at most
    ``slot_patience`` seconds (:class:`zhizao.server.admission.Admission`)."""
    import gc

    import uvicorn

    from zhizao.server.admission import PATIENCE, SLOTS

    app = create_app(db, max_upload_mb=max_upload_mb, warm=warm, secure_cookies=secure_cookies,
                     fresh_wait=fresh_wait, live=live, cache_mb=cache_mb, slots=SLOTS if slots is None else slots,
                     slot_patience=PATIENCE if slot_patience is None else slot_patience)
    server = app.state.server
    # the libraries imported by now are long-lived: keep them out of the collector's full scans (which
    # otherwise pause every request for ~0.1 s now and then)
    gc.collect()
    gc.freeze()
    server.start()  # the warm-up: health answers 200 (ready) when it is done
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, workers=1, proxy_headers=False,
                    server_header=False, date_header=False)
    finally:
        server.close()


__all__ = ["CACHE_MB", "CACHE_SIZE", "FRESH_WAIT", "create_app", "serve"]
