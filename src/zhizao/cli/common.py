"""Shared pieces of the command line: consoles, the one-line error exit, choices, output formats."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.table import Table

from zhizao.errors import ZhizaoError
from zhizao.messages import Message
from zhizao.schema import LEVELS, PERIODS

console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)

DB = typer.Option("zhizao.duckdb", "--db", help="DuckDB store file")


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


def fail(msg: str | Message | ZhizaoError, code: int = 2) -> NoReturn:
    """Print one line to stderr and exit with ``code`` (2: bad input or a busy store; 1: an internal error)."""
    line = " ".join(say(msg).split())  # one line, whatever the message holds
    err.print(f"zhizao: {line}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def choice(value: str, allowed, what: str) -> str:
    """Exit 2 unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        fail(f"unknown {what} {value!r}; one of {', '.join(allowed)}")
    return value


def write_frame(df, fmt: str, output: Optional[Path]) -> None:
    """Write a DataFrame as table (the terminal), or csv, json, parquet or xlsx through the one table writer
    :func:`zhizao.export.write_table` (formula-like text neutralised in csv and xlsx), to ``output`` or
    standard output."""
    from rich.text import Text

    from zhizao.export import to_bytes, write_table

    if fmt == "table":
        t = Table(show_lines=False)
        for c in df.columns:
            t.add_column(Text(str(c)))
        for row in df.itertuples(index=False):
            # Text cells: a value is shown as it is, never read as console markup
            t.add_row(*[Text("" if v is None or v != v else (f"{v:.4g}" if isinstance(v, float) else str(v)))
                        for v in row])
        Console(file=open(output, "w") if output else None, width=max(200, 20 * len(df.columns))).print(t)
    elif fmt in ("csv", "json"):
        if output:
            write_table(df, fmt, output)
        else:
            sys.stdout.write(to_bytes(df, fmt).decode("utf-8"))
            sys.stdout.flush()
    elif fmt in ("parquet", "xlsx"):
        if output is None:
            fail(f"--format {fmt} needs -o FILE")
        write_table(df, fmt, output)


FORMATS = ("table", "csv", "json", "parquet", "xlsx")


def check_query(db: str, level: str, period: str, fmt: str) -> None:
    """Exit 2 for an unknown level, period or format, or a missing store."""
    choice(level, LEVELS, "level")
    choice(period, PERIODS, "period")
    choice(fmt, FORMATS, "format")
    if not Path(db).exists():
        fail(f"no store at {db}; load data with 'zhizao ingest' first")
