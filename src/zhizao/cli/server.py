"""Server commands: ``serve``, ``user``, ``key`` and ``session``.

Added to the main application by :func:`register`. DuckDB lets one process own a store: while ``zhizao serve``
runs, manage accounts through its REST API (``/api/v1/users``, ``/api/v1/keys``, ``/api/v1/sessions``) or the
Accounts page; these commands work on a store that no server holds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from zhizao.cli import common as _main  # fail
from zhizao.messages import define
from zhizao.server import CACHE_MB, FRESH_WAIT
from zhizao.server.admission import PATIENCE, SLOTS

DB = typer.Option("zhizao.duckdb", "--db", help="DuckDB store file")
BAD_MQTT = define("cli.bad_mqtt", "--mqtt %(broker)s: %(error)s")
OPCUA_NODES = define("cli.opcua_nodes", "%(opcua)s --opcua but %(nodes)s --nodes: give one nodes file per OPC UA "
                                        "server, in the same order")
console = Console(emoji=False)


HELD = define("cli.accounts_store_held",
              "the store %(path)s is held by another process (a running 'zhizao serve'?); stop it, or manage "
              "accounts through its REST API (/api/v1/users, /api/v1/keys) or its Accounts page")
NO_PASSWORD = define("cli.no_password", "no password on standard input")
NO_LIVE_KEY = define("cli.no_live_key", "no live key '%(id)s'")
SESSION_OR_USER = define("cli.session_or_user", "give a session id or --user, not both")
NO_LIVE_SESSION = define("cli.no_live_session", "no live session '%(id)s'")


def _open(db: str, must_exist: bool = True, own_busy_message: bool = False):
    """The store for an account command; when another process holds it, the account commands' message (how to
    manage accounts meanwhile), or with ``own_busy_message`` the store's own (which process holds it)."""
    import zhizao
    from zhizao.errors import StoreBusy
    from zhizao.server import accounts

    if must_exist and not Path(db).exists():
        _main.fail(_main.NO_STORE, path=db)
    try:
        ws = zhizao.connect(db)
    except StoreBusy as e:
        if own_busy_message:
            _main.fail(e)
        _main.fail(HELD, path=db)
    accounts.ensure_tables(ws.con)
    return ws


def _password(stdin: bool, confirm: bool = True) -> str:
    if stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            _main.fail(NO_PASSWORD)
        return line
    return typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)


def _account(fn):
    from zhizao.server.accounts import AccountError

    try:
        return fn()
    except AccountError as e:
        _main.fail(e)


def serve(db: str = DB,
          host: str = typer.Option("127.0.0.1", "--host", help="address to listen on"),
          port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port"),
          max_upload_mb: float = typer.Option(200.0, "--max-upload-mb", min=0.001, help="largest upload [MB]"),
          no_warm: bool = typer.Option(False, "--no-warm", help="do not precompute the landing pages"),
          secure_cookies: bool = typer.Option(False, "--secure-cookies", help="session cookie only over HTTPS"),
          log_level: str = typer.Option("info", "--log-level", help="uvicorn log level"),
          fresh_wait: float = typer.Option(FRESH_WAIT, "--fresh-wait", min=0.0,
                                           help="seconds a dashboard page waits for figures with the latest "
                                                "uploads before it shows the earlier ones, marked with their time"),
          always_fresh: bool = typer.Option(False, "--always-fresh",
                                            help="pages always wait for figures with the latest uploads"),
          cache_mb: float = typer.Option(CACHE_MB, "--cache-mb", min=1.0, max=float(2**20),
                                         help="memory of the result cache [MiB]: computed tables, pages, charts"),
          slots: int = typer.Option(SLOTS, "--slots", min=0, max=1024,
                                    help="requests computed at once, the others waiting their turn (0: all)"),
          slot_patience: float = typer.Option(PATIENCE, "--slot-patience", min=0.001, max=3600.0,
                                              help="seconds a request holds its slot at most, then runs on"),
          mqtt: list[str] = typer.Option([], "--mqtt", help="HOST:PORT of an MQTT broker to subscribe to and "
                                                             "store from (repeatable; see docs/live.md)"),
          mqtt_prefix: str = typer.Option("zhizao/v1", "--mqtt-prefix", help="topic prefix of --mqtt"),
          mqtt_username: str | None = typer.Option(None, "--mqtt-username"),
          mqtt_password: str | None = typer.Option(None, "--mqtt-password", envvar="ZHIZAO_MQTT_PASSWORD",
                                                   help="password (or ZHIZAO_MQTT_PASSWORD)"),
          opcua: list[str] = typer.Option([], "--opcua", help="opc.tcp://HOST:PORT/PATH of an OPC UA server to "
                                                               "subscribe to (repeatable, each with --nodes)"),
          nodes: list[Path] = typer.Option([], "--nodes", help="nodes file (YAML) of each --opcua, in order")):
    """Run the REST API and the web dashboard (FastAPI; OpenAPI at /openapi.json), and with --mqtt or --opcua
    the live sources, storing into the same store."""
    from zhizao.server import serve as run

    live = _live_sources(mqtt, mqtt_prefix, mqtt_username, mqtt_password, opcua, nodes)

    ws = _open(db, must_exist=False, own_busy_message=True)  # create the store and its account tables
    ws.close()
    console.print(f"zhizao server on http://{host}:{port}/ (store {db}); Ctrl-C to stop", markup=False,
                  highlight=False)
    run(db, host, port, max_upload_mb, not no_warm, secure_cookies, log_level,
        fresh_wait=None if always_fresh else fresh_wait, live=live, cache_mb=cache_mb, slots=slots,
        slot_patience=slot_patience)


def _live_sources(mqtt: list[str], prefix: str, username: str | None, password: str | None, opcua: list[str],
                  nodes: list[Path]) -> list:
    """The live sources of ``serve`` (exit 2 with one line when an address or a nodes file is wrong)."""
    from zhizao.cli.live import NO_SUCH_FILE, check_endpoint
    from zhizao.live import parse_broker
    from zhizao.server.live import MqttSource, OpcUaSource

    if len(nodes) != len(opcua):
        _main.fail(OPCUA_NODES, opcua=len(opcua), nodes=len(nodes))
    out: list = []
    for b in mqtt:
        try:
            host, port = parse_broker(b)
        except ValueError as e:  # the parser's documented refusal of its one argument
            _main.fail(BAD_MQTT, broker=b, error=str(e))
        out.append(MqttSource(host, port, prefix=prefix, username=username, password=password))
    for k, (endpoint, f) in enumerate(zip(opcua, nodes)):
        check_endpoint(endpoint)
        if not f.is_file():
            _main.fail(NO_SUCH_FILE, path=str(f))
        out.append(OpcUaSource(endpoint, f, name="opcua" if len(opcua) == 1 else f"opcua{k + 1}"))
    return out


def user_add(name: str = typer.Argument(..., help="user name"),
             role: str = typer.Option(..., "--role", help="enterprise|analyst|assessor|district|admin"),
             enterprise: str | None = typer.Option(None, "--enterprise", help="enterprise id (enterprise users)"),
             district: str | None = typer.Option(None, "--district", help="district (district reviewers; code "
                                                                            "or name)"),
             project: list[str] | None = typer.Option(None, "--project", help="assigned project (assessors; "
                                                                                 "repeat)"),
             display_name: str | None = typer.Option(None, "--display-name"),
             password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
             db: str = DB):
    """Create a user (the password is asked for, or read from standard input)."""
    from zhizao.server import accounts

    with _open(db, must_exist=False) as ws:
        pw = _password(password_stdin)
        u = _account(lambda: accounts.add_user(ws.con, name, pw, role, enterprise, display_name, project or (),
                                               district))
    console.print(f"user {u.username} ({u.role}{', ' + u.enterprise_id if u.enterprise_id else ''}) created",
                  markup=False, highlight=False)


def user_list(db: str = DB, fmt: str = typer.Option("table", "--format", help="table|json")):
    """List the users."""
    from zhizao.server import accounts

    with _open(db) as ws:
        users = accounts.list_users(ws.con)
    if fmt == "json":
        print(json.dumps([u.to_dict() for u in users], ensure_ascii=False, indent=1))
        return
    t = Table()
    for c in ("user", "role", "enterprise", "projects", "active"):
        t.add_column(c)
    for u in users:
        t.add_row(u.username, u.role, u.enterprise_id or "", ", ".join(u.projects), "yes" if u.active else "no")
    console.print(t)


def user_passwd(name: str = typer.Argument(...),
                password_stdin: bool = typer.Option(False, "--password-stdin"), db: str = DB):
    """Set a user's password (revokes the user's sessions)."""
    from zhizao.server import accounts

    with _open(db) as ws:
        pw = _password(password_stdin)
        _account(lambda: accounts.set_password(ws.con, name, pw))
    console.print(f"password of {name} set; its sessions are revoked", markup=False, highlight=False)


def user_disable(name: str = typer.Argument(...), db: str = DB):
    """Disable a user and revoke its sessions."""
    from zhizao.server import accounts

    with _open(db) as ws:
        _account(lambda: accounts.set_active(ws.con, name, False))
    console.print(f"user {name} disabled", markup=False, highlight=False)


def user_enable(name: str = typer.Argument(...), db: str = DB):
    """Enable a disabled user."""
    from zhizao.server import accounts

    with _open(db) as ws:
        _account(lambda: accounts.set_active(ws.con, name, True))
    console.print(f"user {name} enabled", markup=False, highlight=False)


def user_assign(name: str = typer.Argument(..., help="an assessor"),
                projects: list[str] = typer.Argument(..., help="project ids"),
                remove: bool = typer.Option(False, "--remove", help="remove the assignments instead"),
                db: str = DB):
    """Assign projects to an assessor (or remove them with --remove)."""
    from zhizao.server import accounts

    with _open(db) as ws:
        for p in projects:
            if remove:
                accounts.unassign(ws.con, name, p)
            else:
                _account(lambda p=p: accounts.assign(ws.con, name, p))
        u = accounts.get_user(ws.con, name)
    console.print(f"{name}: {', '.join(u.projects) if u else ''}", markup=False, highlight=False)


def key_create(enterprise: str | None = typer.Option(None, "--enterprise", help="enterprise id"),
               site: str | None = typer.Option(None, "--site", help="site id (the key sees this site only)"),
               name: str | None = typer.Option(None, "--name", help="what the key is for"),
               db: str = DB):
    """Create an API key for one enterprise or one site; the key is printed once, only its hash is kept."""
    from zhizao.server import accounts

    with _open(db, must_exist=False) as ws:
        key, rec = _account(lambda: accounts.create_key(ws.con, enterprise, site, name, "cli"))
    print(key)
    whom = f"site {site}" if site else f"enterprise {enterprise}"
    Console(stderr=True, emoji=False).print(f"key {rec.key_id} for {whom}: send it as 'X-API-Key: <key>'; it is "
                                            "not shown again", markup=False, highlight=False)


def key_list(db: str = DB, fmt: str = typer.Option("table", "--format", help="table|json")):
    """List the API keys (ids and scopes; the keys themselves are not stored)."""
    from zhizao.server import accounts

    with _open(db) as ws:
        keys = accounts.list_keys(ws.con)
    if fmt == "json":
        print(json.dumps([k.to_dict() for k in keys], ensure_ascii=False, indent=1))
        return
    t = Table()
    for c in ("id", "name", "enterprise", "site", "created", "revoked"):
        t.add_column(c)
    for k in keys:
        t.add_row(k.key_id, k.name or "", k.enterprise_id or "", k.site or "", str(k.created_at)[:19],
                  str(k.revoked_at)[:19] if k.revoked_at else "")
    console.print(t)


def key_revoke(key_id: str = typer.Argument(..., help="key id (k_...)"), db: str = DB):
    """Revoke an API key."""
    from zhizao.server import accounts

    with _open(db) as ws:
        if not accounts.revoke_key(ws.con, key_id):
            _main.fail(NO_LIVE_KEY, id=key_id)
    console.print(f"key {key_id} revoked", markup=False, highlight=False)


def session_list(user: str | None = typer.Option(None, "--user"), db: str = DB):
    """List browser sessions."""
    from zhizao.server import accounts

    with _open(db) as ws:
        rows = accounts.list_sessions(ws.con, user)
    t = Table()
    for c in ("id", "user", "created", "expires", "revoked"):
        t.add_column(c)
    for s in rows:
        t.add_row(s["session_id"], s["username"], str(s["created_at"])[:19], str(s["expires_at"])[:19],
                  str(s["revoked_at"])[:19] if s["revoked_at"] else "")
    console.print(t)


def session_revoke(session_id: str | None = typer.Argument(None, help="session id (s_...)"),
                   user: str | None = typer.Option(None, "--user", help="revoke every session of this user"),
                   db: str = DB):
    """Revoke a session, or every session of a user."""
    from zhizao.server import accounts

    if bool(session_id) == bool(user):
        _main.fail(SESSION_OR_USER)
    with _open(db) as ws:
        if user:
            n = accounts.revoke_user_sessions(ws.con, user)
            console.print(f"{n} session(s) of {user} revoked", markup=False, highlight=False)
        elif not accounts.revoke_session(ws.con, session_id or ""):  # given when user is not
            _main.fail(NO_LIVE_SESSION, id=session_id)
        else:
            console.print(f"session {session_id} revoked", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``user add|list|passwd|disable|enable|assign``, ``key create|list|revoke`` and
    ``session list|revoke`` to ``app``."""
    app.command("serve")(serve)
    user = typer.Typer(cls=_main.ContractGroup, no_args_is_help=True,
                       help="Users of the server: roles enterprise, analyst, assessor, admin.")
    user.command("add")(user_add)
    user.command("list")(user_list)
    user.command("passwd")(user_passwd)
    user.command("disable")(user_disable)
    user.command("enable")(user_enable)
    user.command("assign")(user_assign)
    app.add_typer(user, name="user")
    key = typer.Typer(cls=_main.ContractGroup, no_args_is_help=True,
                      help="API keys of machine clients, scoped to one enterprise or site.")
    key.command("create")(key_create)
    key.command("list")(key_list)
    key.command("revoke")(key_revoke)
    app.add_typer(key, name="key")
    session = typer.Typer(cls=_main.ContractGroup, no_args_is_help=True,
                          help="Browser sessions of the server.")
    session.command("list")(session_list)
    session.command("revoke")(session_revoke)
    app.add_typer(session, name="session")
