"""The ``zhizao`` command line: a thin layer over :mod:`zhizao.api` (contract in DESIGN.md).

Exit codes: 0 on success; 2 on bad input or a busy store (any :class:`zhizao.errors.ZhizaoError`) with a
one-line reason on standard error; 1 on an internal error, also with one line (``--debug`` shows the
traceback instead). Messages follow ``ZHIZAO_LANG`` or the locale (zh or en).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import typer
from rich.table import Table

from zhizao.cli import common
from zhizao.cli.common import (
    DB,
    INTERRUPTED,
    ContractGroup,
    check_query,
    choice,
    console,
    err,
    fail,
    internal_error,
    open_store,
    say,
    write_frame,
)
from zhizao.errors import ZhizaoError
from zhizao.messages import define
from zhizao.schema import LEVELS, PERIODS, TABLES

app = typer.Typer(cls=ContractGroup, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="zhizao: ISO 22400 KPIs and verified transformation results from shop-floor data. "
                       "Add --debug anywhere to see the traceback of an internal error.")

INGEST_ONE_WAY = define("cli.ingest_args", "give TABLE FILE... (with --mapping), or --parquet DIR")
UNKNOWN_INDICATOR = define("cli.unknown_indicator", "unknown indicator '%(name)s'; one of %(known)s, all")
BAD_WINDOW = define("cli.bad_window", "--%(name)s must be START..END, not '%(value)s'")
VERIFY_NEEDS = define("cli.verify_needs", "give --project, or --scope with --baseline and --reporting")
LIVE_NO_OUTPUT = define("cli.live_no_output",
                        "-o writes files; with --live the plant is played to a broker or served over OPC UA")


LEFT_OUT = define("cli.equipment_left_out", "warning: equipment %(equipment)s is left out, the engine fails on its "
                                            "records (%(error)s)")

@app.command()
def ingest(table: str | None = typer.Argument(None, help=f"canonical table: {', '.join(TABLES)}"),
           files: list[Path] | None = typer.Argument(None, help="CSV (UTF-8, GBK, GB18030), Parquet or .xlsx "
                                                                   "files"),
           mapping: Path | None = typer.Option(None, "--mapping", "-m", help="mapping file (YAML)"),
           update: bool = typer.Option(False, "--update", help="register tables: update stored records by key "
                                                               "and print the differences"),
           reason: str | None = typer.Option(None, "--reason", help="why (register tables: the audit log)"),
           parquet: Path | None = typer.Option(None, "--parquet",
                                                  help="a Parquet dataset written by 'zhizao export --parquet' "
                                                       "(instead of TABLE FILE...)"),
           db: str = DB):
    """Load files into a canonical table, or a whole Parquet dataset; rejected records go to the quarantine.
    Exits 2 with a summary when a file stores nothing because every record was rejected."""
    if parquet is not None:
        from zhizao.cli.scale import ingest_parquet

        if table or files or mapping or update:
            fail(INGEST_ONE_WAY)
        ingest_parquet(parquet, db)
        return
    if not table or not files:
        fail(INGEST_ONE_WAY)
    from zhizao.cli.portfolio import print_load_report

    choice(table, TABLES, "table")
    failed = []
    with open_store(db, read_only=False, create=True) as ws:
        for f in files:
            r = ws.ingest(table, f, mapping=mapping, update=update, reason=reason)[0]
            if print_load_report(r):
                failed.append(r)
    if failed:
        from zhizao.portfolio.register import nothing_stored

        fail(nothing_stored(failed[0]), 2)


@app.command()
def kpi(db: str = DB,
        level: str = typer.Option("equipment", help="|".join(LEVELS)),
        period: str = typer.Option("day", help="|".join(PERIODS)),
        from_: str | None = typer.Option(None, "--from", help="start (ISO 8601)"),
        to: str | None = typer.Option(None, "--to", help="end, exclusive (ISO 8601; default: the end of the "
                                                         "last bucket with data, or now if that is earlier)"),
        kpi_names: str | None = typer.Option(None, "--kpi", help="comma-separated KPI names"),
        fmt: str = typer.Option("table", "--format", help="table|csv|json|parquet|xlsx"),
        output: Path | None = typer.Option(None, "-o", "--output", help="output file"),
        engine: str = typer.Option("embedded", "--engine", help="embedded|spark"),
        spark_master: str | None = typer.Option(None, "--spark-master",
                                                   help="Spark master URL (default local[*])"),
        spark_remote: str | None = typer.Option(None, "--spark-remote", help="Spark Connect URL sc://HOST:PORT"),
        parquet: str | None = typer.Option(None, "--parquet",
                                              help="with --engine spark: the Parquet dataset to read (a directory "
                                                   "or a URI the cluster reads) instead of the store")):
    """ISO 22400 elements and KPIs per level and period."""
    from zhizao import export
    from zhizao.cli.scale import open_for_kpi

    names = [k.strip() for k in kpi_names.split(",")] if kpi_names else None
    with open_for_kpi(db, level, period, fmt, engine, spark_master, spark_remote, parquet) as ws:
        # without --to the default range is read now: today's bucket ends now, not at its end still to come
        query = dict(level=level, period=period, start=from_, end=to if to is not None else ws.reading_time(),
                     kpis=names)
        if fmt in ("csv", "parquet") and (output is not None or fmt == "csv"):
            # a file of rows: written one engine partition at a time (an equipment table grows with the store)
            export.write_tables(ws.iter_kpi(**query), fmt, output if output is not None else sys.stdout.buffer)
            df = None
        else:
            df = ws.kpi(**query)
        for eid, why in ws.failures:  # isolated by the engine's fallback: the others are complete
            err.print("zhizao: " + say(LEFT_OUT(equipment=eid, error=why)), markup=False, highlight=False,
                      soft_wrap=True)
    if df is None:
        return
    if fmt == "table":
        from zhizao.schema import LEVEL_ID_COLUMN
        show = [LEVEL_ID_COLUMN[level], "period_start", "pbt", "apt", "pq", "gq"]
        show += [c for c in (names or ["availability", "effectiveness", "quality_ratio", "oee", "teep"])]
        df = df[[c for c in show if c in df.columns]]
    write_frame(df, fmt, output)


@app.command()
def capability(db: str = DB,
               level: str = typer.Option("equipment", help="|".join(LEVELS)),
               period: str = typer.Option("all", help="|".join(PERIODS)),
               from_: str | None = typer.Option(None, "--from", help="start (ISO 8601)"),
               to: str | None = typer.Option(None, "--to", help="end, exclusive (ISO 8601)"),
               fmt: str = typer.Option("table", "--format", help="table|csv|json|parquet|xlsx"),
               output: Path | None = typer.Option(None, "-o", "--output", help="output file")):
    """Cm, Cmk, Cp, Cpk (ISO 22400-2 KPIs 19-22) per characteristic from measured quality values."""
    check_query(db, level, period, fmt)
    with open_store(db) as ws:
        df = ws.capability(level=level, period=period, start=from_, end=to)
    write_frame(df, fmt, output)


@app.command()
def kpis(db: str = DB, fmt: str = typer.Option("table", "--format", help="table|csv|json")):
    """List the ISO 22400-2 KPIs: formula, direction, and whether the stored data can give each."""
    choice(fmt, ("table", "csv", "json"), "format")
    with open_store(db) as ws:
        write_frame(ws.catalogue(), fmt, None)


@app.command()
def verify(indicator: str = typer.Argument(..., help="production_efficiency|defect_rate|operating_cost|"
                                                     "unit_energy|development_cycle|energy"),
           scope: str | None = typer.Option(None, "--scope", help="equipment, work_center, area, site or "
                                                                      "enterprise id"),
           project: str | None = typer.Option(None, "--project", help="a registered project (default windows)"),
           baseline: str | None = typer.Option(None, "--baseline", help="A..B (ISO 8601)"),
           reporting: str | None = typer.Option(None, "--reporting", help="C..D (ISO 8601)"),
           definition: str | None = typer.Option(None, "--definition", help="alternative definition"),
           confidence: float = typer.Option(0.9, "--confidence", min=0.5, max=0.999),
           uncertainty: str = typer.Option("exact_hac", "--uncertainty", help="exact_hac|ashrae14|block_bootstrap"),
           granularity: str = typer.Option("day", "--granularity", help="hour|day|week|month"),
           fmt: str = typer.Option("table", "--format", help="table|json"),
           db: str = DB):
    """Verify a before/after change with an adjusted baseline and a confidence interval."""
    from zhizao.verify import INDICATORS

    choice(fmt, ("table", "json"), "format")
    if indicator not in INDICATORS and indicator != "all":
        fail(UNKNOWN_INDICATOR, name=indicator, known=list(INDICATORS))

    def window(text, name):
        if text is None:
            return None
        if ".." not in text:
            fail(BAD_WINDOW, name=name, value=text)
        return tuple(text.split("..", 1))

    b, r = window(baseline, "baseline"), window(reporting, "reporting")
    if not project and (scope is None or b is None or r is None):
        fail(VERIFY_NEEDS)
    kw = dict(confidence=confidence, uncertainty=uncertainty, granularity=granularity)
    with open_store(db, read_only=False) as ws:
        if project:
            inds = None if indicator == "all" else [indicator]
            results = ws.verify_project(project, indicators=inds, baseline=b, reporting=r, **kw)
        else:
            results = [ws.verify(indicator, scope, b, r, definition=definition, **kw)]
    if fmt == "json":
        print(json.dumps([x.to_dict() for x in results], ensure_ascii=False, indent=1))
        return
    t = Table(title="verification (improvement: positive is better)")
    for c in ("indicator", "scope", "baseline", "reporting", "adjusted baseline", "improvement",
              f"{int(round(100 * confidence))} % interval", "R2"):
        t.add_column(c)
    for x in results:
        def n(v):
            return "—" if v is None or v != v else f"{v:.4g}"

        def pct(v):
            return "—" if v is None or v != v else f"{100 * v:+.1f} %"
        t.add_row(x.indicator, x.scope, n(x.baseline), n(x.reporting), n(x.adjusted_baseline), pct(x.improvement),
                  f"{pct(x.ci_low)} .. {pct(x.ci_high)}", n(x.fit.get("r2")) if x.fit else "—")
    console.print(t)
    for x in results:
        console.print(f"{x.indicator}: {x.verdict}; {x.method}", markup=False, highlight=False)
        for w in x.warnings:
            console.print(f"  warning: {w}", markup=False, highlight=False)


@app.command()
def quarantine(db: str = DB,
               fmt: str = typer.Option("table", "--format", help="table|csv|json")):
    """What was rejected and why."""
    choice(fmt, ("table", "csv", "json"), "format")
    from zhizao.cli.common import cli_lang

    with open_store(db) as ws:
        q = ws.quarantine(lang=cli_lang())
    if fmt == "table" and q.empty:
        console.print("quarantine is empty")
        return
    write_frame(q.drop(columns=["raw", "code", "params"]) if fmt == "table" else q, fmt, None)


def main(argv: list[str] | None = None) -> None:
    """The ``zhizao`` entry point: runs :data:`app` under the error contract of :mod:`zhizao.cli.common`.

    Usage errors (an unknown option, a missing argument) also end with one line and exit code 2.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``); ``--debug`` anywhere lets an internal error's traceback through.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    common.DEBUG = "--debug" in args
    try:
        _run([a for a in args if a != "--debug"])
    finally:
        common.DEBUG = False


def _run(args: list[str]) -> None:
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="zhizao", standalone_mode=False)
    except common.NO_ARGS as e:
        click.echo(e.ctx.get_help() if getattr(e, "ctx", None) else str(e))
        raise SystemExit(0) from None
    except common.USAGE_ERRORS as e:  # usage errors: one line
        _exit_line(say(e.format_message()), e.exit_code)
    except (typer.Abort, click.exceptions.Abort):
        _exit_line(say(INTERRUPTED()), 130)
    except (typer.Exit, click.exceptions.Exit) as e:
        raise SystemExit(e.exit_code) from None
    except ZhizaoError as e:  # raised outside a command (while parsing)
        if common.DEBUG:
            raise
        _exit_line(say(e), 2)
    except KeyboardInterrupt:
        _exit_line(say(INTERRUPTED()), 130)
    except Exception as e:
        if common.DEBUG:
            raise
        _exit_line(say(internal_error(e)), 1)
    raise SystemExit(rv if isinstance(rv, int) else 0)


def _exit_line(line: str, code: int) -> None:
    err.print(f"zhizao: {' '.join(str(line).split())}", markup=False, highlight=False, soft_wrap=True)
    raise SystemExit(code)


@app.command()
def report(db: str = DB,
           output: Path | None = typer.Option(None, "-o", "--output",
                                                 help="file to write [default: report.html or report.pdf]"),
           lang: str = typer.Option("zh", "--lang", help="zh (Simplified Chinese) or en"),
           fmt: str | None = typer.Option(None, "--format", help="html|pdf [default: from the file's suffix]")):
    """A self-contained report (HTML that works offline, or PDF: A4, page numbers, contents): KPIs, waterfall,
    Pareto, trends, energy, data quality."""
    from zhizao.report import render_report

    choice(lang, ("zh", "en"), "language")
    if fmt is not None:
        choice(fmt, ("html", "pdf"), "format")
    output = output or Path("report.pdf" if fmt == "pdf" else "report.html")
    with open_store(db) as ws:
        path = render_report(ws, output, lang=lang, format=fmt)
    console.print(f"wrote {path}")


@app.command()
def simulate(machines: int = typer.Option(12, "--machines", min=1),
             days: int | None = typer.Option(None, "--days", min=1, help="days [default: 14; --live: 1]"),
             seed: int = typer.Option(0, "--seed"),
             start: str | None = typer.Option(None, "--start", help="first local day (YYYY-MM-DD) "
                                                                        "[default: 2025-03-03; --live: today]"),
             timezone: str = typer.Option("Europe/Berlin", "--timezone", help="IANA zone of the plant"),
             output: Path | None = typer.Option(None, "-o", "--output",
                                                   help="output folder [default: simulated-plant]"),
             live: str | None = typer.Option(None, "--live", help="mqtt|opcua: play the plant live instead "
                                                                     "of writing files (as 'simulate-live --to')"),
             broker: str = typer.Option("127.0.0.1:1883", "--broker", help="HOST:PORT (--live mqtt)"),
             endpoint: str = typer.Option("opc.tcp://127.0.0.1:4840/zhizao/", "--endpoint",
                                          help="endpoint to serve (--live opcua)"),
             nodes_out: Path | None = typer.Option(None, "--nodes-out",
                                                      help="write the nodes file for 'listen opcua' (--live opcua)"),
             speed: float = typer.Option(1.0, "--speed", min=0.001,
                                         help="simulated seconds per wall-clock second (--live)"),
             backlog: bool = typer.Option(True, "--backlog/--no-backlog",
                                          help="send the records due before now at once (--live mqtt)"),
             records_per_message: int = typer.Option(20, "--records-per-message", min=1,
                                                     help="records of one topic per message at most (--live mqtt)"),
             prefix: str = typer.Option("zhizao/v1", "--prefix", help="topic prefix (--live mqtt)"),
             duration: float = typer.Option(0.0, "--duration", min=0.0,
                                            help="stop after N seconds (--live; 0: until SIGTERM/Ctrl-C)"),
             quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress lines (--live)")):
    """Write the canonical tables of a simulated plant and its true elements per equipment and day, or with
    --live mqtt|opcua play it in real time or faster to an MQTT broker or as an OPC UA server (SIMULATED)."""
    if live is not None:
        from zhizao.cli.live import simulate_live

        if output is not None:
            fail(LIVE_NO_OUTPUT)
        simulate_live(to=live, broker=broker, endpoint=endpoint, nodes_out=nodes_out, speed=speed,
                      machines=machines, days=days or 1, seed=seed, start=start, timezone=timezone,
                      backlog=backlog, records_per_message=records_per_message, prefix=prefix,
                      duration=duration, quiet=quiet)
        return
    from zhizao.simulate import simulate_plant, write_plant

    output = output or Path("simulated-plant")
    common.check_timezone(timezone)
    common.check_date(start, "--start")
    tables = simulate_plant(machines=machines, days=days or 14, seed=seed, start=start or "2025-03-03",
                            timezone=timezone)
    paths = write_plant(tables, output)
    console.print(f"wrote {len(paths)} files to {output} (SIMULATED data, seed {seed})")


@app.command()
def demo(db: str | None = typer.Option(None, "--db", help="store file (default OUT/zhizao.duckdb)"),
         out: Path = typer.Option(Path("zhizao-demo"), "--out", help="output folder"),
         machines: int = typer.Option(12, "--machines", min=1),
         days: int = typer.Option(28, "--days", min=1),
         seed: int = typer.Option(7, "--seed")):
    """The main job on the bundled real datasets and a simulated plant, end to end."""
    from zhizao.demo import run_demo

    run_demo(out=out, db=db, machines=machines, days=days, seed=seed, console=console)


def _register_front_ends() -> None:
    """Commands of the other front ends, each in its own module."""
    from zhizao.cli import live, portfolio, scale, server

    scale.register(app)
    portfolio.register(app)
    server.register(app)
    live.register(app)


_register_front_ends()
