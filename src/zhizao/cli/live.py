"""Live commands: ``listen mqtt``, ``listen opcua`` and ``simulate-live``.

Added to the main application by :func:`register`; also runnable on its own as
``python -m zhizao.cli.live listen mqtt ...``. Like the other commands they only call the stage
(:mod:`zhizao.live`) and reuse :func:`zhizao.cli.common.fail` (exit 2 with one line).

A listener holds the store (DuckDB allows one writing process): ``zhizao kpi`` cannot open it meanwhile.
The current shift's KPIs come from the listener itself (``--kpi-every``), or from a server that shares a
:class:`zhizao.live.LiveIngestor`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import NoReturn

import typer

from zhizao.cli import common as _main  # fail
from zhizao.messages import define

DB = typer.Option("zhizao.duckdb", "--db", help="DuckDB store file (the listener holds it while it runs)")
KPI_EVERY = typer.Option(0.0, "--kpi-every", min=0.0,
                         help="compute the current shift's KPIs every N seconds (0: never)")
KPI_OUT = typer.Option(None, "--kpi-out", help="write them to this JSON file (replaced atomically) "
                                               "instead of printing one line per entity")
KPI_LEVEL = typer.Option("equipment", "--kpi-level", help="equipment|work_center|area|site|enterprise")
STATUS = typer.Option(None, "--status", help="JSON file with the listener's counters, replaced after each batch")
DURATION = typer.Option(0.0, "--duration", min=0.0, help="stop after N seconds (0: run until SIGTERM/Ctrl-C)")
QUIET = typer.Option(False, "--quiet", "-q", help="no progress lines")
#: Seconds between two progress lines of ``simulate-live`` (and of ``simulate --live``).
PROGRESS_EVERY = 10.0
THREADS = typer.Option(1, "--threads", min=1, help="DuckDB threads of the store (1: least CPU per record; "
                                                   "the broker and the publishers need the other cores)")

listen_app = typer.Typer(cls=_main.ContractGroup, no_args_is_help=True,
                         help="Listen to live shop-floor sources (MQTT, OPC UA) and store their records.")


BAD_BROKER = define("cli.bad_broker", "--broker %(broker)s: %(error)s")
UNKNOWN_PROTOCOL = define("cli.unknown_protocol", "unknown MQTT protocol '%(protocol)s'; 5 or 3.1.1")
NO_SUCH_FILE = define("cli.no_such_file", "%(path)s: no such file")
BAD_ENDPOINT = define("cli.bad_endpoint", "endpoint '%(endpoint)s' is not opc.tcp://HOST:PORT/PATH")
UNKNOWN_TARGET = define("cli.unknown_target", "unknown target '%(target)s'; mqtt or opcua")
NO_BROKER = define("cli.no_broker", "no MQTT broker at %(host)s:%(port)s")


def _fail(msg, **params) -> NoReturn:
    _main.fail(msg, **params)


def parse_broker_arg(broker: str) -> tuple[str, int]:
    """HOST:PORT of ``--broker`` (exit 2 with one line when malformed)."""
    from zhizao.live import parse_broker

    try:
        return parse_broker(broker)
    except ValueError as e:  # the parser's documented refusal of its one argument
        _fail(BAD_BROKER, broker=broker, error=str(e))


def check_endpoint(endpoint: str) -> None:
    """An OPC UA endpoint must be opc.tcp://HOST:PORT/PATH (exit 2 with one line otherwise)."""
    if not endpoint.startswith("opc.tcp://"):
        _fail(BAD_ENDPOINT, endpoint=endpoint)


_write_lock = threading.Lock()


def _write_json(path: Path, obj) -> None:
    """Replace ``path`` atomically (the ingest thread and the main thread both write status files)."""
    with _write_lock:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)


def _check_timezone(tz: str) -> None:
    _main.check_timezone(tz)


def _mappings(paths: list[Path]) -> dict:
    from zhizao.ingest.mapping import load_mapping

    out = {}
    for p in paths or []:
        m = load_mapping(p)
        out[m.table] = m
    return out


def _serve(listener, ingestor, *, kpi_every: float, kpi_out: Path | None, kpi_level: str,
           status: Path | None, duration: float, quiet: bool, what: str) -> None:
    """Run a started listener until a signal, ``duration`` or a store failure."""
    from zhizao.schema import LEVELS

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    t_start = time.time()
    next_kpi = t_start + kpi_every if kpi_every else None
    next_log = t_start + 10
    last = dict(ingestor.status())

    def write_status():
        if status:
            d = ingestor.status()
            d.update(source=what, pid=os.getpid(), subscribed=listener.subscribed.is_set(),
                     session_present=getattr(listener, "session_present", None), running=not stop.is_set())
            try:
                _write_json(status, d)
            except OSError as e:  # a status file is a convenience: never a reason to stop ingesting
                print(f"zhizao: cannot write {status}: {e}", file=sys.stderr, flush=True)

    listener.on_batch = lambda rep: write_status()
    if kpi_level not in LEVELS:
        _main.choice(kpi_level, LEVELS, "level")
    was_subscribed = False
    try:
        while not stop.is_set():
            stop.wait(0.2)
            if listener.error is not None:
                break
            if not was_subscribed and listener.subscribed.is_set():
                was_subscribed = True
                write_status()
                if not quiet:
                    print(f"zhizao: listening ({what})", file=sys.stderr, flush=True)
            now = time.time()
            if duration and now - t_start >= duration:
                break
            if next_kpi and now >= next_kpi:
                next_kpi = now + kpi_every
                _kpi(ingestor, kpi_level, kpi_out)
            if not quiet and now >= next_log:
                next_log = now + 10
                s = ingestor.status()
                d = {k: s.get(k, 0) - last.get(k, 0) for k in ("messages", "loaded", "quarantined", "skipped")}
                last = s
                print(f"zhizao: {d['messages']} messages, {d['loaded']} records loaded, {d['quarantined']} "
                      f"quarantined, {d['skipped']} already stored in the last 10 s", file=sys.stderr, flush=True)
    finally:
        listener.stop()
        for s, h in old.items():
            signal.signal(s, h)
        stop.set()
        write_status()
        err = listener.error
        if kpi_every and err is None:
            _kpi(ingestor, kpi_level, kpi_out)
        ingestor.close()
    if err is not None:
        print(f"zhizao: live ingestion stopped: {str(err).splitlines()[0] if str(err) else type(err).__name__}",
              file=sys.stderr)
        raise typer.Exit(1)
    if not quiet:
        s = ingestor.status()
        print(f"zhizao: stopped; {s.get('loaded', 0)} records loaded, {s.get('quarantined', 0)} quarantined, "
              f"{s.get('skipped', 0)} already stored", file=sys.stderr)


def _kpi(ingestor, level: str, out: Path | None) -> None:
    try:
        df = ingestor.kpi(level=level)
    except Exception as e:  # KPIs are a view: a failure to compute them must not stop the ingestion
        print(f"zhizao: no KPIs this time: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
              file=sys.stderr, flush=True)
        return
    rows = json.loads(df.to_json(orient="records", date_format="iso"))
    if out:
        _write_json(out, {"computed_at": time.time(), "level": level, "rows": rows})
        return
    from zhizao.schema import LEVEL_ID_COLUMN

    col = LEVEL_ID_COLUMN[level]
    for r in rows:
        def f(k, r=r):
            v = r.get(k)
            return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
        print(f"{r.get('shift_start')} {r.get(col)}: oee {f('oee')} availability {f('availability')} "
              f"effectiveness {f('effectiveness')} quality {f('quality_ratio')} pq {f('pq')} gq {f('gq')}",
              flush=True)


@listen_app.command("mqtt")
def listen_mqtt(
        broker: str = typer.Option(..., "--broker", help="HOST:PORT of the MQTT broker"),
        db: str = DB,
        client_id: str = typer.Option("zhizao-listener", "--client-id",
                                      help="fixed client id: the broker keeps its session while it is away"),
        prefix: str = typer.Option("zhizao/v1", "--prefix", help="topic prefix"),
        tls: bool = typer.Option(False, "--tls", help="connect with TLS"),
        cafile: Path | None = typer.Option(None, "--cafile", help="CA certificates (PEM) for --tls"),
        certfile: Path | None = typer.Option(None, "--certfile", help="client certificate (PEM)"),
        keyfile: Path | None = typer.Option(None, "--keyfile", help="client key (PEM)"),
        tls_insecure: bool = typer.Option(False, "--tls-insecure", help="do not check the broker's host name"),
        username: str | None = typer.Option(None, "--username"),
        password: str | None = typer.Option(None, "--password", envvar="ZHIZAO_MQTT_PASSWORD",
                                               help="password (or the environment variable ZHIZAO_MQTT_PASSWORD)"),
        protocol: str = typer.Option("5", "--protocol", help="MQTT protocol version: 5 or 3.1.1"),
        register_equipment: bool = typer.Option(
            False, "--register-equipment",
            help="register unknown equipment from the topic hierarchy (default: quarantine its records)"),
        register_enterprise: list[str] = typer.Option(
            [], "--register-enterprise",
            help="with --register-equipment: only for this enterprise (repeatable; default any enterprise, so "
                 "restrict the publishers with the broker's ACLs)"),
        timezone: str = typer.Option("UTC", "--timezone", help="IANA zone of equipment registered from topics"),
        mapping: list[Path] = typer.Option([], "--mapping", "-m", help="mapping file of a table (repeatable)"),
        batch_seconds: float = typer.Option(0.2, "--batch-seconds", min=0.0,
                                            help="least micro-batch gathering time [s]"),
        max_batch_seconds: float = typer.Option(1.0, "--max-batch-seconds", min=0.0,
                                                help="most gathering time [s]: under load the gathering time grows "
                                                     "to twice the last batch's store time, up to this"),
        threads: int = THREADS,
        session_expiry: int = typer.Option(7 * 86400, "--session-expiry", min=0,
                                           help="seconds the broker keeps the session while the listener is away"),
        kpi_every: float = KPI_EVERY, kpi_out: Path | None = KPI_OUT, kpi_level: str = KPI_LEVEL,
        status: Path | None = STATUS, duration: float = DURATION, quiet: bool = QUIET):
    """Subscribe to <prefix>/<enterprise>/<site>/<area>/<work_center>/<equipment>/<table> (QoS 1, persistent
    session) and store each record exactly once; rejected records go to the quarantine."""
    from zhizao.live import LiveIngestor, MqttListener, TlsOptions

    host, port = parse_broker_arg(broker)
    if protocol not in ("5", "3.1.1"):
        _fail(UNKNOWN_PROTOCOL, protocol=protocol)
    for p in (cafile, certfile, keyfile):
        if p is not None and not p.is_file():
            _fail(NO_SUCH_FILE, path=str(p))
    _check_timezone(timezone)
    maps = _mappings(mapping)
    if not quiet:
        logging.basicConfig(level=logging.WARNING, format="zhizao: %(message)s")
    tls_opts = TlsOptions(str(cafile) if cafile else None, str(certfile) if certfile else None,
                          str(keyfile) if keyfile else None, tls_insecure) if tls else None
    ingestor = LiveIngestor(db, source="mqtt", prefix=prefix, register_equipment=register_equipment,
                            register_enterprises=register_enterprise or None, timezone=timezone, mappings=maps,
                            threads=threads)
    listener = MqttListener(ingestor, host, port, client_id=client_id, prefix=prefix, tls=tls_opts,
                            username=username, password=password, batch_seconds=batch_seconds,
                            max_batch_seconds=max_batch_seconds, session_expiry=session_expiry, protocol=protocol)
    listener.start()
    _serve(listener, ingestor, kpi_every=kpi_every, kpi_out=kpi_out, kpi_level=kpi_level, status=status,
           duration=duration, quiet=quiet, what=f"mqtt {host}:{port} {prefix}/#")


@listen_app.command("opcua")
def listen_opcua(
        endpoint: str = typer.Option(..., "--endpoint", help="opc.tcp://HOST:PORT/PATH"),
        nodes: Path = typer.Option(..., "--nodes", help="nodes file (YAML): state code, part counter, scrap "
                                                        "counter, energy register per equipment"),
        db: str = DB,
        name: str = typer.Option("opcua", "--name", help="source name (provenance; key of the counters' "
                                                          "stored baselines)"),
        batch_seconds: float = typer.Option(0.5, "--batch-seconds", min=0.05, help="micro-batch interval"),
        threads: int = THREADS,
        kpi_every: float = KPI_EVERY, kpi_out: Path | None = KPI_OUT, kpi_level: str = KPI_LEVEL,
        status: Path | None = STATUS, duration: float = DURATION, quiet: bool = QUIET):
    """Subscribe to configured OPC UA nodes and turn value changes into states, production and energy."""
    from zhizao.live import LiveIngestor, OpcUaListener, load_nodes

    check_endpoint(endpoint)
    cfg = load_nodes(nodes)
    _check_timezone(cfg.timezone)
    if not quiet:
        logging.basicConfig(level=logging.WARNING, format="zhizao: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    ingestor = LiveIngestor(db, source=name, mappings={"states": cfg.mapping()}, threads=threads)
    listener = OpcUaListener(ingestor, endpoint, cfg, batch_seconds=batch_seconds)
    listener.start()
    _serve(listener, ingestor, kpi_every=kpi_every, kpi_out=kpi_out, kpi_level=kpi_level, status=status,
           duration=duration, quiet=quiet, what=f"opcua {endpoint}")


def simulate_live(
        to: str = typer.Option(..., "--to", help="mqtt or opcua"),
        broker: str = typer.Option("127.0.0.1:1883", "--broker", help="HOST:PORT (--to mqtt)"),
        endpoint: str = typer.Option("opc.tcp://127.0.0.1:4840/zhizao/", "--endpoint",
                                     help="endpoint to serve (--to opcua)"),
        nodes_out: Path | None = typer.Option(None, "--nodes-out",
                                                 help="write the nodes file for 'listen opcua' (--to opcua)"),
        speed: float = typer.Option(1.0, "--speed", min=0.001, help="simulated seconds per wall-clock second"),
        machines: int = typer.Option(12, "--machines", min=1),
        days: int = typer.Option(1, "--days", min=1),
        seed: int = typer.Option(0, "--seed"),
        start: str | None = typer.Option(None, "--start", help="first local day (default: today)"),
        timezone: str = typer.Option("Europe/Berlin", "--timezone", help="IANA zone of the plant"),
        backlog: bool = typer.Option(True, "--backlog/--no-backlog",
                                     help="send the records due before now at once (mqtt)"),
        records_per_message: int = typer.Option(20, "--records-per-message", min=1,
                                                help="records of one topic per message at most (mqtt)"),
        prefix: str = typer.Option("zhizao/v1", "--prefix", help="topic prefix (mqtt)"),
        duration: float = DURATION,
        quiet: bool = QUIET):
    """Play the plant simulator live (SIMULATED data) to an MQTT broker or as an OPC UA server."""
    from zhizao.live.simulate import SimOpcUaServer, nodes_document, play_mqtt, play_opcua, today
    from zhizao.simulate import simulate_plant

    if to not in ("mqtt", "opcua"):
        _fail(UNKNOWN_TARGET, target=to)
    _check_timezone(timezone)
    _main.check_date(start, "--start")
    tables = simulate_plant(machines=machines, days=days, seed=seed, start=start or today(timezone),
                            timezone=timezone, holidays=[])
    every = PROGRESS_EVERY

    def say(line: str) -> None:
        if not quiet:
            _main.err.print(line, markup=False, highlight=False, soft_wrap=True)

    def when(p: dict) -> str:
        return p["simulated"].tz_convert(timezone).strftime("%Y-%m-%d %H:%M:%S%z")

    def mqtt_progress(p: dict) -> None:
        say(f"zhizao: {p['messages']} messages, {p['records']} records published in the last {every:g} s; "
            f"simulated time {when(p)}")

    def opcua_progress(p: dict) -> None:
        say(f"zhizao: {p['writes']} node writes in the last {every:g} s; simulated time {when(p)}")
    stop = threading.Event()
    old = {s: signal.signal(s, lambda *a: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if to == "mqtt":
            from zhizao.live import MqttPublisher

            host, port = parse_broker_arg(broker)
            pub = MqttPublisher(host, port)
            if not pub.wait_connected(30):
                pub.close()
                _fail(NO_BROKER, host=host, port=port)
            say(f"zhizao: playing {machines} simulated machines to {host}:{port} at speed {speed:g}")
            res = play_mqtt(tables, pub, speed=speed, prefix=prefix, records_per_message=records_per_message,
                            backlog=backlog, duration=duration or None, stop=stop, on_progress=mqtt_progress,
                            progress_every=every)
            pub.flush(60)
            pub.close()
            say(f"zhizao: published {res['records']} records in {res['messages']} messages")
        else:
            check_endpoint(endpoint)
            logging.getLogger("asyncua").setLevel(logging.ERROR)
            server = SimOpcUaServer(tables, endpoint).start()
            try:
                if nodes_out:
                    import yaml

                    nodes_out.write_text("# nodes of zhizao's plant simulator (SIMULATED data)\n" + yaml.safe_dump(
                        nodes_document(tables, server.ns), sort_keys=False, allow_unicode=True), encoding="utf-8")
                say(f"zhizao: serving {machines} simulated machines at {endpoint} at speed {speed:g}")
                res = play_opcua(tables, server, speed=speed, duration=duration or None, stop=stop,
                                 on_progress=opcua_progress, progress_every=every)
            finally:
                server.stop()
            say(f"zhizao: {res['writes']} node writes")
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def register(app: typer.Typer) -> None:
    """Add ``listen mqtt``, ``listen opcua`` and ``simulate-live`` to ``app``."""
    app.add_typer(listen_app, name="listen")
    app.command("simulate-live")(simulate_live)


def _standalone() -> typer.Typer:
    app = typer.Typer(cls=_main.ContractGroup, add_completion=False, no_args_is_help=True,
                      help="zhizao live ingestion")
    register(app)
    return app


if __name__ == "__main__":  # python -m zhizao.cli.live ...
    _standalone()()
