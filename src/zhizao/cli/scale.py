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


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("compact")(compact)
