"""Shared pieces of the command line: consoles, the error contract, choices, output formats.

The error contract (:class:`ContractGroup`, the group class of every ``zhizao`` command): a
:class:`zhizao.errors.ZhizaoError` (bad input, a missing or busy store, ...) ends the command with exit code 2
and one line on standard error; any other exception is an internal error: exit code 1 and one line (the
traceback with ``--debug``). Messages are in the command line's language (:func:`cli_lang`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import click
import typer
from rich.console import Console
from rich.table import Table

# typer (>= 0.20; pinned) runs on a copy of click of its own: its commands get that copy's Context
from typer._click import exceptions as _click_exceptions
from typer._click.core import Context as TyperContext
from typer.core import TyperGroup

from zhizao.errors import ZhizaoError
from zhizao.messages import Message, MessageKind, define
from zhizao.schema import LEVELS, PERIODS
from zhizao.store.db import NO_STORE

#: Exceptions that end a command the way click means them to (exit codes, usage errors): passed through.
CLICK_EXITS = (typer.Exit, typer.Abort, _click_exceptions.ClickException, click.exceptions.Exit,
               click.ClickException, click.exceptions.Abort)
#: Usage errors of either click (one line each in :func:`zhizao.cli.main.main`).
USAGE_ERRORS = (_click_exceptions.ClickException, click.ClickException)
NO_ARGS = tuple(c for c in (getattr(_click_exceptions, "NoArgsIsHelpError", None),
                            getattr(click.exceptions, "NoArgsIsHelpError", None)) if c is not None)

console = Console(width=None if sys.stdout.isatty() else 160, emoji=False)
err = Console(stderr=True, emoji=False)

DB = typer.Option("zhizao.duckdb", "--db", help="DuckDB store file")

UNKNOWN_CHOICE = define("cli.unknown_choice", "unknown %(what)s '%(value)s'; one of %(allowed)s")
NEEDS_OUTPUT = define("cli.needs_output", "--format %(fmt)s needs -o FILE")
INTERNAL = define("cli.internal_error",
                  "internal error (%(error)s); run again with --debug for the traceback")
UNKNOWN_ZONE = define("cli.unknown_zone", "unknown time zone '%(zone)s' (an IANA name such as Asia/Shanghai)")
BAD_DATE = define("cli.bad_date", "%(option)s must be a date YYYY-MM-DD, not '%(value)s'")
INTERRUPTED = define("cli.interrupted", "interrupted; the store is unchanged")
#: What a choice is of, as messages (parameters of UNKNOWN_CHOICE).
WHAT = {w: define("cli.what_" + w.lower().replace(" ", "_"), w)()
        for w in ("table", "level", "period", "format", "language", "indicator", "designation", "target",
                  "MQTT protocol")}
#: Set by :func:`zhizao.cli.main.main` for ``--debug``: internal errors raise instead of printing one line.
DEBUG = False


def cli_lang() -> str:
    """Language of the command line's messages: ``ZHIZAO_LANG``, else the locale (``LC_ALL``,
    ``LC_MESSAGES``, ``LANG``): ``"zh"`` for a Chinese locale, otherwise ``"en"``."""
    for var in ("ZHIZAO_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        v = os.environ.get(var)
        if v:
            return "zh" if v.lower().startswith("zh") else "en"
    return "en"


def say(msg: str | Message | ZhizaoError) -> str:
    """``msg`` as text in the command line's language."""
    if isinstance(msg, (Message, ZhizaoError)):
        return msg.text(cli_lang())
    return str(msg)


def fail(msg: str | Message | ZhizaoError | MessageKind, code: int = 2, **params) -> NoReturn:
    """Print one line to stderr and exit with ``code`` (2: bad input or a busy store; 1: an internal error).

    ``msg``: a message, an error, or a kind of message with its ``params``."""
    if isinstance(msg, MessageKind):
        msg = msg(**params)
    line = " ".join(say(msg).split())  # one line, whatever the message holds
    err.print(f"zhizao: {line}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def internal_error(e: BaseException) -> Message:
    """The one-line message of an internal error."""
    return INTERNAL(error=f"{type(e).__name__}: {' '.join(str(e).split())[:300]}")


class ContractGroup(TyperGroup):
    """The command group that applies the error contract of this module to every command below it."""

    def invoke(self, ctx: TyperContext):
        try:
            return super().invoke(ctx)
        except CLICK_EXITS:
            raise
        except ZhizaoError as e:
            if DEBUG:
                raise
            fail(e, 2)
        except KeyboardInterrupt:
            fail(INTERRUPTED(), 130)
        except Exception as e:  # a fault of zhizao, not of the input
            if DEBUG:
                raise
            fail(internal_error(e), 1)


def choice(value: str, allowed, what: str) -> str:
    """Exit 2 unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        fail(UNKNOWN_CHOICE, what=WHAT.get(what, what), value=value, allowed=list(allowed))
    return value


def _cell(v) -> str:
    """A table cell: empty for a null of any kind (None, NaN, pandas' NA, NaT), floats to 4 significant figures."""
    if v is None or (not isinstance(v, (str, bytes, list, tuple, dict)) and _isna(v)):
        return ""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _isna(v) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


@contextlib.contextmanager
def output_console(output: Path | None, width: int = 200) -> Iterator[Console]:
    """A console that writes to the file ``output`` (closed at the end) or, without one, to standard output."""
    with open(output, "w", encoding="utf-8") if output else contextlib.nullcontext() as fh:
        yield Console(file=fh, width=width, emoji=False)


def write_frame(df, fmt: str, output: Path | None, console: Console | None = None) -> None:
    """Write a DataFrame as table (the terminal), or csv, json, parquet or xlsx through the one table writer
    :func:`zhizao.export.write_table` (formula-like text neutralised in csv and xlsx), to ``output`` or
    standard output. A table goes to ``console`` when one is given (a command printing several parts into one
    file)."""
    from rich.text import Text

    from zhizao.export import to_bytes, write_table

    if fmt == "table":
        t = Table(show_lines=False)
        for c in df.columns:
            t.add_column(Text(str(c)))
        for row in df.itertuples(index=False):
            # Text cells: a value is shown as it is, never read as console markup
            t.add_row(*[Text(_cell(v)) for v in row])
        if console is not None:
            console.print(t)
            return
        with output_console(output, width=max(200, 20 * len(df.columns))) as con:
            con.print(t)
    elif fmt in ("csv", "json"):
        if output:
            write_table(df, fmt, output)
        else:
            sys.stdout.write(to_bytes(df, fmt).decode("utf-8"))
            sys.stdout.flush()
    elif fmt in ("parquet", "xlsx"):
        if output is None:
            fail(NEEDS_OUTPUT, fmt=fmt)
        write_table(df, fmt, output)


FORMATS = ("table", "csv", "json", "parquet", "xlsx")


def check_date(value: str | None, option: str) -> None:
    """Exit 2 unless ``value`` is None or a date YYYY-MM-DD."""
    import datetime as dt

    if value is None:
        return
    try:
        dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        fail(BAD_DATE, option=option, value=value)


def check_timezone(zone: str, option: str = "--timezone") -> None:
    """Exit 2 unless ``zone`` is an IANA time zone name."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        fail(UNKNOWN_ZONE, zone=zone)


def open_store(db: str, read_only: bool = True, create: bool = False):
    """The :class:`zhizao.Workspace` of store ``db`` for a command: exit 2 with one line when it is missing
    (unless ``create``) or held by another process (:class:`zhizao.errors.StoreBusy`, naming a running zhizao
    server and what to do)."""
    import zhizao

    if not create and not Path(db).exists():
        fail(NO_STORE, path=db)
    return zhizao.connect(db, read_only=read_only and Path(db).exists())


def check_query(db: str, level: str, period: str, fmt: str) -> None:
    """Exit 2 for an unknown level, period or format, or a missing store."""
    choice(level, LEVELS, "level")
    choice(period, PERIODS, "period")
    choice(fmt, FORMATS, "format")
    if not Path(db).exists():
        fail(NO_STORE, path=db)
