"""Commands for scale-out: ``zhizao export --parquet DIR``, ``zhizao ingest --parquet DIR``, the Spark engine of
``zhizao kpi --engine spark``, and ``zhizao compact`` (see docs/scale.md)."""

from __future__ import annotations

from pathlib import Path

import typer

import zhizao
from zhizao.cli.common import DB, FORMATS, check_query, choice, console, fail, open_store, say
from zhizao.messages import define
from zhizao.schema import LEVELS, PERIODS

EXPORTED = define("cli.exported", "%(path)s: %(records)s records of %(tables)s tables written as a Parquet dataset "
                                  "partitioned by site and month")
NEEDS_SPARK = define("cli.needs_spark", "--spark-master, --spark-remote and --parquet need --engine spark")
ENGINES = ("embedded", "spark")


def export(parquet: Path = typer.Option(..., "--parquet", help="dataset directory (new, empty, or an earlier "
                                                                 "export, which is replaced)"),
           db: str = DB):
    """Write the store's canonical tables as a Parquet dataset partitioned by site and month."""
    from zhizao.scale.dataset import export_dataset

    if not Path(db).exists():
        fail(f"no store at {db}; load data with 'zhizao ingest' first")
    with zhizao.connect(db, read_only=True) as ws:
        m = export_dataset(ws.con, parquet)
    n = sum(m["tables"].values())
    console.print(say(EXPORTED(path=str(parquet), records=n, tables=sum(1 for v in m["tables"].values() if v))),
                  markup=False, highlight=False)


def ingest_parquet(parquet: Path, db: str) -> None:
    """``zhizao ingest --parquet DIR``: every table of the dataset, in one transaction."""
    from zhizao.scale.dataset import ingest_dataset

    with zhizao.connect(db) as ws:
        for r in ingest_dataset(ws.con, parquet):
            console.print(str(r), markup=False, highlight=False)


def open_for_kpi(db: str, level: str, period: str, fmt: str, engine: str, master: str | None,
                 remote: str | None, parquet: str | None):
    """The workspace ``zhizao kpi`` computes on: the store with the embedded engine, or with the Spark engine
    (over the store, or over a dataset without any store)."""
    choice(engine, ENGINES, "engine")
    if engine == "embedded":
        if master or remote or parquet:
            fail(NEEDS_SPARK)
        check_query(db, level, period, fmt)
        return open_store(db)
    from zhizao.scale.engines import SparkStoreEngine

    choice(level, LEVELS, "level")
    choice(period, PERIODS, "period")
    choice(fmt, FORMATS, "format")
    eng = SparkStoreEngine(master=master, remote=remote, dataset=parquet)
    if parquet is not None:
        return zhizao.connect(":memory:", engine=eng)
    if not Path(db).exists():
        fail(f"no store at {db}; load data with 'zhizao ingest' first")
    return zhizao.connect(db, read_only=True, engine=eng)


def compact(db: str = DB):
    """Rewrite the store's states and counts in equipment order (after a while of live or daily data)."""
    with open_store(db, read_only=False) as ws:
        for c in ws.compact():
            console.print(say(c.message()), markup=False, highlight=False)


def materialise(db: str = DB,
                drop: bool = typer.Option(False, "--drop", help="remove the stored elements from the store"),
                status: bool = typer.Option(False, "--status", help="say what is stored and whether it is current")):
    """Keep the elements per entity and hour in the store (built now, then brought up to date by every load and
    live batch): KPIs of hours, days, weeks and months read their sums."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from zhizao.kpi import stored

    with open_store(db, read_only=status) as ws:
        if status:
            console.print(say(stored.status(ws.con)), markup=False, highlight=False)
            return
        if drop:
            stored.drop(ws.con)
            console.print(say(stored.DROPPED()), markup=False, highlight=False)
            return
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("elements", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            if stored.exists(ws.con):
                rep = stored.refresh(ws.con, ws.settings, progress=progress)
            else:
                rep = stored.build(ws.con, ws.settings, progress=progress)
        ws.invalidate()
        console.print(say(rep.message()), markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("compact")(compact)
    app.command("materialise")(materialise)
