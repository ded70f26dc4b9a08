"""Portfolio commands: the register (``register``, ``project``, ``audit``), ``programme``, ``recognition`` and
``bulletin``.

Added to the main application by :func:`register`. Like the other commands they only call the stage
(:mod:`zhizao.portfolio`) and reuse :func:`zhizao.cli.common.fail` (exit 2 with one line) and
:func:`zhizao.cli.common.write_frame` (output formats). Errors of the stage are :mod:`zhizao.errors` classes;
the entry point turns them into one line and exit code 2.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console

from zhizao.cli import common as _main  # fail, write_frame, say
from zhizao.messages import define

DB = typer.Option("zhizao.duckdb", "--db", help="DuckDB store file")
FROM = typer.Option(None, "--from", help="start, inclusive (a date, or ISO 8601; naive = the register's zone)")
TO = typer.Option(None, "--to", help="end, exclusive (a date, or ISO 8601; naive = the register's zone)")
PARK = typer.Option(None, "--park", help="only enterprises of these parks (comma-separated)")
DISTRICT = typer.Option(None, "--district", help="only enterprises of these districts (codes or names, "
                                                 "comma-separated)")
LEVEL = typer.Option(None, "--level", help="only these levels: district, municipal, national (or 区级, 市级, ...)")
PROGRAMME = typer.Option(None, "--programme", help="only these programmes (batches), comma-separated")
YEAR = typer.Option(None, "--year", help="only projects starting in these years, comma-separated")
OUTPUT = typer.Option(None, "-o", "--output", help="output file")
REASON = typer.Option(None, "--reason", help="why (kept in the audit log)")
AS_OF = typer.Option(None, "--as-of", help="show the record(s) as they were at the end of this date")
SET = typer.Option([], "--set", help="COLUMN=VALUE (repeat); an empty value clears the column")

CREATED = define("cli.register.created", "%(table)s %(key)s created")
UPDATED = define("cli.register.updated", "%(table)s %(key)s updated: %(changes)s")
UNCHANGED = define("cli.register.unchanged", "%(table)s %(key)s: nothing to change")
WITHDRAWN = define("cli.register.withdrawn", "%(table)s %(key)s withdrawn (its history stays in the audit log)")
NOT_THEN = define("cli.register.not_then", "%(table)s %(key)s did not exist at the end of %(date)s")
ZONE_IS = define("cli.register.zone", "the register's time zone is %(zone)s")
CHAIN_OK = define("cli.audit.ok", "the audit log is intact: %(n)s entries, every hash matches")
BAD_SET = define("cli.register.bad_set", "--set takes COLUMN=VALUE, not %(value)s")
WROTE = define("cli.wrote", "wrote %(path)s")


UNKNOWN_PROJECT = define("cli.unknown_project", "unknown project '%(id)s'")



def _plain() -> Console:
    """A console that prints data as it is (no markup, no :emoji: codes)."""
    return Console(emoji=False)

def _open(db: str, read_only: bool = True):
    return _main.open_store(db, read_only=read_only)


def _records(df: pd.DataFrame) -> list[dict]:
    """A DataFrame as JSON-able row objects (time stamps ISO 8601, NaN -> null)."""
    return json.loads(df.to_json(orient="records", date_format="iso", default_handler=str))


def _jsonable(obj):
    if isinstance(obj, pd.DataFrame):
        return _records(obj)
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (dt.date, dt.datetime, pd.Timestamp)):
        return obj.isoformat()
    return obj


def _print_json(obj, output: Path | None) -> None:
    text = json.dumps(_jsonable(obj), ensure_ascii=False, indent=1, default=str)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)


def _say(msg) -> None:
    _plain().print(_main.say(msg), markup=False, highlight=False)


def _check_format(fmt: str, allowed=("table", "csv", "json")) -> None:
    _main.choice(fmt, allowed, "format")


def _iso(v, tz: str | None = None):
    """A register date as YYYY-MM-DD; a time stamp as ISO 8601 with the offset of ``tz``; null -> None."""
    if v is None or (not isinstance(v, (dt.date, str)) and pd.isna(v)):
        return None
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return v.isoformat()
    t = pd.Timestamp(v)
    if t.tzinfo is not None and isinstance(tz, str):
        t = t.tz_convert(tz)
    return t.isoformat()


def _dates_as_text(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object and any(isinstance(v, dt.date) for v in out[c].head(50)):
            out[c] = [_iso(v) for v in out[c]]
    return out


def _sets(values: list[str]) -> dict:
    out = {}
    for v in values:
        if "=" not in v:
            _main.fail(BAD_SET(value=v))
        k, x = v.split("=", 1)
        out[k.strip()] = x.strip() if x.strip() else None
    return out


def print_load_report(r) -> bool:
    """Print what a load did (the differences of updated register records, the rejected records per rule);
    returns True when it stored nothing because every record was rejected."""
    from zhizao.portfolio.register import diff_text, stored_nothing

    con = Console(emoji=False)
    con.print(str(r), markup=False, highlight=False)
    for key, ch in getattr(r, "changes", []) or []:
        con.print(f"  {key}: {diff_text(ch)}", markup=False, highlight=False)
    rejected = getattr(r, "rejected", None) or []
    for _rid, line, rule, detail in rejected[:10]:
        con.print(f"  line {line}: {rule}: {_main.say(detail)}", markup=False, highlight=False)
    if len(rejected) > 10:
        con.print(f"  ... {len(rejected) - 10} more rejected records ('zhizao quarantine')", markup=False,
                  highlight=False)
    return stored_nothing(r)


# -- projects ---------------------------------------------------------------------------------------------

def project_list(db: str = DB, park: str | None = PARK, district: str | None = DISTRICT,
                 level: str | None = LEVEL, programme: str | None = PROGRAMME, year: str | None = YEAR,
                 from_: str | None = FROM, to: str | None = TO,
                 search: str | None = typer.Option(None, "--search", help="text in id, name or enterprise"),
                 sort: str = typer.Option("project_id", "--sort", help="column to sort by (-column: descending)"),
                 fmt: str = typer.Option("table", "--format", help="table|csv|json|parquet|xlsx (xlsx: labelled "
                                                                  "in --lang, local dates)"),
                 lang: str = typer.Option("zh", "--lang", help="language of the xlsx sheet: zh or en"),
                 output: Path | None = OUTPUT):
    """List the projects (filters: parks, districts, levels, programmes, years, start date in [--from, --to))."""
    from zhizao.portfolio.listing import page
    from zhizao.portfolio.registry import latest_verifications, projects

    _check_format(fmt, ("table", "csv", "json", "parquet", "xlsx"))
    with _open(db) as ws:
        prj = projects(ws, park, district, from_, to, level=level, programme=programme, year=year)
        ver = latest_verifications(ws, prj["project_id"])
    ver = ver[ver["improvement"].notna()]
    if fmt == "xlsx":
        from zhizao.export import write_xlsx
        from zhizao.portfolio.tables import project_sheet

        _main.choice(lang, ("zh", "en"), "language")
        if output is None:
            _main.fail("--format xlsx needs -o FILE")
        from zhizao.i18n import translations

        write_xlsx({translations(lang).gettext("Projects"): project_sheet(prj, ver.groupby("project_id").size(),
                                                                           lang)}, output)
        return
    verified = ver.groupby("project_id")["indicator"].agg(lambda s: ",".join(sorted(s)))
    df = prj.assign(verified=prj["project_id"].map(verified).astype(object).fillna(""))
    df = page(df, search=search, sort=sort, columns=("project_id", "name", "enterprise", "enterprise_id"),
              size=None)["rows"]
    df = _dates_as_text(df.drop(columns=["tz"]))
    if fmt == "table":
        df = df[["project_id", "enterprise_id", "enterprise", "district", "park", "programme", "type", "start",
                 "commissioning_end", "investment", "status", "verified"]]
    _main.write_frame(df, fmt, output)


def project_show(project_id: str = typer.Argument(..., help="project id"), db: str = DB, as_of: str | None = AS_OF,
                 fmt: str = typer.Option("table", "--format", help="table|json"),
                 output: Path | None = OUTPUT):
    """One project: its record, status history, designations and stored verification results (latest per
    indicator); with --as-of the record as it was at the end of that date."""
    from zhizao.portfolio.register import record_as_of, status_history
    from zhizao.portfolio.registry import designations, latest_verifications, projects

    _check_format(fmt, ("table", "json"))
    with _open(db) as ws:
        if as_of:
            rec = record_as_of(ws.con, "projects", project_id, as_of)
            if rec is None:
                _main.fail(NOT_THEN(table="projects", key=project_id, date=as_of))
            p = {k: _iso(v) if isinstance(v, dt.date) else v for k, v in rec.items()}
            if fmt == "json":
                _print_json({"project": p, "as_of": as_of}, output)
            else:
                with _main.output_console(output) as con:
                    for k, v in p.items():
                        con.print(f"{k}: {'' if v is None else v}", markup=False, highlight=False)
            return
        prj = projects(ws, project_ids=[project_id])
        if not len(prj):
            _main.fail(UNKNOWN_PROJECT, id=project_id)
        ver = latest_verifications(ws, [project_id])
        des = designations(ws)
        hist = status_history(ws.con, project_id)
    p = prj.iloc[0].to_dict()
    tz = p.pop("tz")
    p = {k: (_iso(v) if isinstance(v, dt.date) else (None if not isinstance(v, str) and pd.isna(v) else v))
         for k, v in p.items()}
    p["timezone"] = tz
    des = _dates_as_text(des[des["project_id"] == project_id].drop(columns=["tz"]))
    hist = [{**h, "at": _iso(h["at"])} for h in hist]
    if fmt == "json":
        _print_json({"project": p, "status_history": hist, "designations": des,
                     "verifications": list(ver["result"])}, output)
        return
    with _main.output_console(output) as con:
        for k, v in p.items():
            con.print(f"{k}: {'' if v is None else v}", markup=False, highlight=False)
        if hist:
            con.print("\nstatus history", markup=False)
            for h in hist:
                con.print(f"  {h['status']} {h['date'] or ''} (recorded {h['at']} by {h['actor']})", markup=False,
                          highlight=False)
        if len(des):
            con.print("\ndesignations", markup=False)
            _main.write_frame(des, "table", None, con)
        con.print("\nverification results (latest per indicator)", markup=False)
        if not len(ver):
            con.print("none stored", markup=False)
            return
        show = ver[["indicator", "improvement", "ci_low", "ci_high", "confidence", "method", "output"]].copy()
        show["computed_at"] = [_iso(v) for v in ver["computed_at"]]
        show["warnings"] = ["; ".join(map(str, w)) for w in ver["warnings"]]
        _main.write_frame(show, "table", None, con)


def _update(db, table, key, values, reason):
    from zhizao.portfolio.register import diff_text, update_record

    with _open(db, read_only=False) as ws:
        _rec, ch = update_record(ws.con, table, key, values, reason=reason, source="cli")
    _say(UPDATED(table=table, key=key, changes=diff_text(ch)) if ch else UNCHANGED(table=table, key=key))


def project_update(project_id: str = typer.Argument(..., help="project id"), db: str = DB,
                   sets: list[str] = SET,
                   status: str | None = typer.Option(None, "--status", help="applied, approved, in_progress, "
                                                                               "completed, accepted, terminated "
                                                                               "(or 已申报, ...)"),
                   status_date: str | None = typer.Option(None, "--date", help="date of the status transition "
                                                                                 "(default today)"),
                   reason: str | None = REASON):
    """Change a project: --set COLUMN=VALUE, or a status transition with its date (kept in the audit log)."""
    from zhizao.portfolio.dates import today

    values = _sets(sets)
    if status is not None:
        values["status"] = status
        values["status_date"] = status_date or today().isoformat()
    elif status_date is not None:
        values["status_date"] = status_date
    _update(db, "projects", project_id, values, reason)


def project_withdraw(project_id: str = typer.Argument(..., help="project id"), db: str = DB,
                     reason: str = typer.Option(..., "--reason", help="why (kept in the audit log)")):
    """Withdraw a project from the register (its record and history stay in the audit log)."""
    from zhizao.portfolio.register import withdraw_record

    with _open(db, read_only=False) as ws:
        withdraw_record(ws.con, "projects", project_id, reason=reason, source="cli")
    _say(WITHDRAWN(table="projects", key=project_id))


VERIFIED = define("cli.project.verified", "%(n)s projects verified (%(results)s results stored); %(skipped)s not "
                                         "verified: the data cannot verify them")


def project_verify(project_ids: list[str] | None = typer.Argument(None, help="projects (default: every one)"),
                   db: str = DB, workers: int = typer.Option(2, "--workers", min=1, help="processes"),
                   reasons: bool = typer.Option(False, "--reasons", help="list why each skipped project is not "
                                                                         "verified")):
    """Verify projects from data and store the results (every project by default). Projects the data cannot
    verify at all (no equipment in their scope yet, no records) are skipped with their reason."""
    from zhizao.verify import unverifiable, verify_all_projects

    with _open(db, read_only=False) as ws:
        ids = list(project_ids) if project_ids else None
        skipped = unverifiable(ws, ids)
        res = verify_all_projects(ws, project_ids=ids, workers=workers)
    n = len({r.project_id for r in res})
    _say(VERIFIED(n=n, results=len(res), skipped=len(skipped)))
    counts: dict = {}
    for pid, m in skipped.items():
        counts.setdefault(m.code, []).append(pid)
        if reasons:
            _plain().print(f"  {pid}: {_main.say(m)}", markup=False, highlight=False)
    if not reasons:
        for code, ids_ in sorted(counts.items()):
            _plain().print(f"  {code}: {len(ids_)} ({', '.join(ids_[:5])}{', ...' if len(ids_) > 5 else ''})",
                            markup=False, highlight=False)


def project_history(project_id: str = typer.Argument(..., help="project id"), db: str = DB,
                    fmt: str = typer.Option("table", "--format", help="table|csv|json")):
    """Every change of a project: who, when, what, why."""
    _history(db, "projects", project_id, fmt)


def _history(db, table, key, fmt):
    from zhizao.portfolio.register import history

    _check_format(fmt)
    with _open(db) as ws:
        h = history(ws.con, table, key)
    _write_audit(h, fmt, None)


def _write_audit(h: pd.DataFrame, fmt: str, output) -> None:
    from zhizao.portfolio.register import diff_text

    if fmt == "json":
        _print_json(h.drop(columns=["prev"]), output)
        return
    show = h.copy()
    show["changed_at"] = [_iso(v) for v in show["changed_at"]]
    show["changes"] = [diff_text({k: tuple(v) for k, v in c.items()}) if isinstance(c, dict) else ""
                       for c in show["changes"]]
    show = show[["seq", "changed_at", "actor", "action", "entity", "record", "changes", "reason", "source"]]
    _main.write_frame(show, fmt, output)


# -- the register, any table ----------------------------------------------------------------------------

def register_list(table: str = typer.Argument(..., help="enterprises|scopes|projects|designations|programmes|"
                                                        "programme_targets"),
                  db: str = DB, as_of: str | None = AS_OF,
                  fmt: str = typer.Option("table", "--format", help="table|csv|json|parquet|xlsx"),
                  output: Path | None = OUTPUT):
    """The records of a register table (with --as-of: as they were at the end of that date)."""
    from zhizao.portfolio.register import ensure_table, snapshot

    _check_format(fmt, ("table", "csv", "json", "parquet", "xlsx"))
    ensure_table(table)
    with _open(db) as ws:
        if as_of:
            df = snapshot(ws.con, table, as_of)
        else:
            from zhizao.schema import TABLES

            df = ws.con.execute(f'SELECT {", ".join(chr(34) + c + chr(34) for c in TABLES[table].names)} '
                                f'FROM "{table}" ORDER BY 1').df()
            for c in TABLES[table].columns:
                if c.type == "date":
                    df[c.name] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in df[c.name]]
    _main.write_frame(_dates_as_text(df), fmt, output)


def register_show(table: str = typer.Argument(..., help="register table"),
                  key: str = typer.Argument(..., help="record key (several columns: a|b|c)"), db: str = DB,
                  as_of: str | None = AS_OF, fmt: str = typer.Option("table", "--format", help="table|json")):
    """One record (with --as-of: as it was at the end of that date)."""
    from zhizao.portfolio.register import get_record, record_as_of

    _check_format(fmt, ("table", "json"))
    with _open(db) as ws:
        rec = record_as_of(ws.con, table, key, as_of) if as_of else get_record(ws.con, table, key)
    if rec is None:
        _main.fail(NOT_THEN(table=table, key=key, date=as_of))
    rec = {k: _iso(v) if isinstance(v, dt.date) else v for k, v in rec.items()}
    if fmt == "json":
        _print_json(rec, None)
        return
    for k, v in rec.items():
        _plain().print(f"{k}: {'' if v is None else v}", markup=False, highlight=False)


def register_create(table: str = typer.Argument(..., help="register table"), db: str = DB, sets: list[str] = SET,
                    reason: str | None = REASON):
    """Create one record: --set COLUMN=VALUE for each column (validated like a loaded file)."""
    from zhizao.portfolio.register import create_record, key_of

    with _open(db, read_only=False) as ws:
        rec = create_record(ws.con, table, _sets(sets), reason=reason, source="cli")
    _say(CREATED(table=table, key=key_of(table, rec)))


def register_update(table: str = typer.Argument(..., help="register table"),
                    key: str = typer.Argument(..., help="record key (several columns: a|b|c)"), db: str = DB,
                    sets: list[str] = SET, reason: str | None = REASON):
    """Update one record: --set COLUMN=VALUE (an empty value clears it); the change goes to the audit log."""
    _update(db, table, key, _sets(sets), reason)


def register_withdraw(table: str = typer.Argument(..., help="register table"),
                      key: str = typer.Argument(..., help="record key (several columns: a|b|c)"), db: str = DB,
                      reason: str = typer.Option(..., "--reason", help="why (kept in the audit log)")):
    """Withdraw one record (refused while other records refer to it); its history stays in the audit log."""
    from zhizao.portfolio.register import withdraw_record

    with _open(db, read_only=False) as ws:
        withdraw_record(ws.con, table, key, reason=reason, source="cli")
    _say(WITHDRAWN(table=table, key=key))


def register_history(table: str = typer.Argument(..., help="register table"),
                     key: str = typer.Argument(..., help="record key"), db: str = DB,
                     fmt: str = typer.Option("table", "--format", help="table|csv|json")):
    """Every change of one record: who, when, what, why."""
    _history(db, table, key, fmt)


def register_timezone(zone: str | None = typer.Argument(None, help="IANA zone to set (e.g. Asia/Shanghai)"),
                      db: str = DB, reason: str | None = REASON):
    """Show or set the register's time zone (default Asia/Shanghai; a programme may set its own)."""
    from zhizao.portfolio.dates import store_zone
    from zhizao.portfolio.register import set_store_zone

    if zone is None:
        with _open(db) as ws:
            _say(ZONE_IS(zone=store_zone(ws.con)))
        return
    with _main.open_store(db, read_only=False, create=True) as ws:
        set_store_zone(ws.con, zone, reason=reason)
        _say(ZONE_IS(zone=store_zone(ws.con)))


def register_template(tables: list[str] | None = typer.Argument(None, help="register tables (default all)"),
                      output: Path = typer.Option(Path("register-template.xlsx"), "-o", "--output",
                                                  help="the .xlsx file"),
                      db: str | None = typer.Option(None, "--db", help="pre-fill with this store's register "
                                                                          "(an export to edit and load again)")):
    """Write the import template: one sheet per register table, vocabularies as drop-downs."""
    from zhizao.portfolio.import_templates import write_template
    from zhizao.portfolio.register import ensure_table, stored_records
    from zhizao.schema import REGISTER_TABLES

    tables = tables or list(REGISTER_TABLES)
    for t in tables:
        ensure_table(t)
    records = None
    if db:
        with _open(db) as ws:
            records = {t: list(stored_records(ws.con, t).values()) for t in tables}
    _say(WROTE(path=str(write_template(output, tables, records))))


def register_vocabularies(name: str | None = typer.Argument(None, help="a vocabulary (default: list them)"),
                          fmt: str = typer.Option("table", "--format", help="table|csv|json")):
    """The controlled vocabularies (codes with Chinese and English labels) and their sources."""
    from zhizao.portfolio.vocabularies import names, vocabulary

    _check_format(fmt)
    if name is None:
        rows = [{"vocabulary": n, "title": vocabulary(n).title.get("zh", ""), "entries": len(vocabulary(n).entries),
                 "version": vocabulary(n).version} for n in names()]
        _main.write_frame(pd.DataFrame(rows), fmt, None)
        return
    v = vocabulary(name)
    if fmt == "json":
        _print_json(v.to_dict(), None)
        return
    _plain().print(f"{v.name} ({v.version}): {v.source}", markup=False, highlight=False)
    _main.write_frame(pd.DataFrame([{"code": e.code, "zh": e.zh, "en": e.en or "", "aliases": ", ".join(e.aliases)}
                                    for e in v.entries]), fmt, None)


# -- audit ------------------------------------------------------------------------------------------------

def audit(db: str = DB, table: str | None = typer.Option(None, "--table", help="entity (a register table, "
                                                                                   "application, ...)"),
          record: str | None = typer.Option(None, "--record", help="record key"),
          actor: str | None = typer.Option(None, "--actor", help="user:NAME, key:ID or cli:NAME"),
          action: str | None = typer.Option(None, "--action", help="create, update, withdraw, ..."),
          from_: str | None = typer.Option(None, "--from", help="changes at or after (ISO 8601; naive = UTC)"),
          to: str | None = typer.Option(None, "--to", help="changes before (ISO 8601; naive = UTC)"),
          search: str | None = typer.Option(None, "--search", help="text in record, actor, reason, changes"),
          limit: int = typer.Option(200, "--limit", min=1, help="entries shown (latest first)"),
          check: bool = typer.Option(False, "--check", help="recompute the hash chain and report a rewrite"),
          fmt: str = typer.Option("table", "--format", help="table|csv|json"),
          output: Path | None = OUTPUT):
    """The audit log: who changed what in the register and the workflow, when and why (latest first)."""
    from zhizao.errors import Conflict
    from zhizao.portfolio import audit as log

    _check_format(fmt)
    with _open(db) as ws:
        if check:
            _ok, n, problem = log.check_chain(ws.con)
            if problem is not None:  # the first broken entry
                raise Conflict(problem)
            _say(CHAIN_OK(n=n))
            return
        h = log.entries(ws.con, entity=table, record=record, actor=actor, action=action, since=from_, until=to,
                        search=search, limit=limit, descending=True)
    _write_audit(h, fmt, output)


# -- programme statistics ---------------------------------------------------------------------------------

#: Columns of the programme tables printed in table format (the JSON output has every column).
_TABLE_VIEWS = {
    "by_type": ["type", "n_projects"],
    "by_designation_level": ["designation", "level", "n"],
    "by_district": ["district", "n_projects"],
    "by_industry": ["industry", "n_projects"],
    "by_year": ["year", "n_projects"],
    "by_programme": ["programme", "n_projects"],
    "coverage": ["indicator", "n_projects", "n_verified", "n_declared_only", "n_neither", "n_declared"],
    "averages": ["indicator", "basis", "n", "mean", "ci_low", "ci_high", "weighted_mean", "weight_basis",
                 "median", "q1", "q3", "min", "max"],
    "rankings": ["indicator", "rank", "project_id", "enterprise_id", "improvement", "ci_low", "ci_high"],
    "targets": ["programme_id", "year", "district", "measure", "target", "actual", "completion"],
}


def programme(db: str = DB, park: str | None = PARK, district: str | None = DISTRICT,
              level: str | None = LEVEL, programme_: str | None = typer.Option(
                  None, "--programme", help="only these programmes (batches), comma-separated"),
              year: str | None = YEAR, from_: str | None = FROM, to: str | None = TO,
              confidence: float = typer.Option(0.9, "--confidence", help="level of the bootstrap intervals"),
              n_boot: int = typer.Option(2000, "--n-boot", min=1, help="bootstrap resamples over projects"),
              seed: int = typer.Option(0, "--seed", help="bootstrap seed"),
              fmt: str = typer.Option("table", "--format", help="table|json|xlsx (xlsx: one sheet per table, "
                                                                "labelled in --lang)"),
              lang: str | None = typer.Option(None, "--lang", help="zh or en: the language of the xlsx sheets "
                                                                      "(default zh) and, when given, of the "
                                                                      "table (labelled sheets, not codes)"),
              output: Path | None = OUTPUT):
    """Programme statistics: counts, verified vs declared results, averages with intervals, rankings, targets
    with actual values and completion rates.

    Values are fractions (0.598 = +59.8 %), positive = better. ``--format json`` gives every table with the
    project ids behind each number. With ``--lang zh`` the table shows the workbook's labelled sheets
    (区县, 项目类型, 47.9%) instead of codes and fractions."""
    from zhizao.portfolio.stats import programme_statistics

    _check_format(fmt, ("table", "json", "xlsx"))
    labelled = lang is not None and fmt == "table"
    lang = lang or "zh"
    _main.choice(lang, ("zh", "en"), "language")
    if fmt == "xlsx" and output is None:
        _main.fail("--format xlsx needs -o FILE")
    with _open(db) as ws:
        s = programme_statistics(ws, park, district, from_, to, confidence=confidence, n_boot=n_boot,
                                 seed=seed, level=level, programme=programme_, year=year)
    if fmt == "xlsx":
        from zhizao.export import write_xlsx
        from zhizao.portfolio.tables import programme_sheets

        sheets, pct = programme_sheets(s, lang)
        write_xlsx(sheets, output, pct)
        _plain().print(f"wrote {output} ({len(sheets)} sheets)", markup=False, highlight=False)
        return
    if fmt == "json":
        _print_json(s, output)
        return
    if labelled:  # the reader's language: the workbook's sheets, percentages as such
        from zhizao.i18n import Formatter
        from zhizao.portfolio.tables import programme_sheets

        sheets, pct = programme_sheets(s, lang)
        f = Formatter(lang)
        with _main.output_console(output) as con:
            for name, df in sheets.items():
                con.print(f"\n{name}", markup=False)
                df = df.copy()
                for c in df.columns:
                    if c in pct.get(name, []):
                        df[c] = [f.pct(v) for v in df[c]]
                    elif df[c].dtype.kind == "f":  # amounts in 万元: one decimal at most, no exponent
                        df[c] = [None if pd.isna(v) else f"{v:.1f}".rstrip("0").rstrip(".") for v in df[c]]
                _main.write_frame(df, "table", None, con)
        return
    with _main.output_console(output) as con:
        t = s["totals"]
        con.print(f"projects: {t['n_projects']}  enterprises: {t['n_enterprises']}  demonstration projects: "
                  f"{t['n_demonstration_projects']}  smart factories: {t['n_smart_factories']}  digital workshops: "
                  f"{t['n_digital_workshops']}  projects with a verified result: {t['n_verified_projects']}"
                  + (f"  revoked recognitions: {t['n_revoked']}" if t.get("n_revoked") else ""),
                  markup=False, highlight=False)
        for name, cols in _TABLE_VIEWS.items():
            con.print(f"\n{name}", markup=False)
            df = s[name]
            if not len(df):
                con.print("(none)", markup=False)
                continue
            _main.write_frame(df[cols], "table", None, con)
        con.print("\n(--format json lists the project ids behind every number)", markup=False)


def recognition(db: str = DB,
                enterprise: str = typer.Option(..., "--enterprise", help="enterprise id"),
                designation: str = typer.Option(..., "--designation", help="digital_workshop|smart_factory|"
                                                                           "ladder_advanced|ladder_excellent|..."),
                rules: str | None = typer.Option(None, "--rules", help="rule set (default: the programme's, else "
                                                                          "the latest valid one; 'zhizao rules')"),
                programme_: str | None = typer.Option(None, "--programme", help="the programme whose rule sets "
                                                                                   "apply"),
                from_: str | None = FROM, to: str | None = TO,
                scope: str | None = typer.Option(None, "--scope", help="assessed scope (default the enterprise)"),
                fmt: str = typer.Option("table", "--format", help="table|csv|json"),
                output: Path | None = OUTPUT):
    """Recognition criteria of a rule set (digital workshop, smart factory, a tier of the factory ladder):
    computed from data where possible, the rest declarations an assessor confirms; a verdict per criterion
    and overall."""
    from zhizao.portfolio.recognition import RECOGNITIONS, recognition_checks, verdict
    from zhizao.portfolio.rulesets import ruleset

    _main.choice(designation, list(RECOGNITIONS), "designation")
    _check_format(fmt)
    with _open(db) as ws:
        df = recognition_checks(ws, enterprise, designation, (from_, to), scope=scope, rules=rules,
                                programme=programme_)
    v = verdict(df)
    rs = ruleset(df["ruleset"].iloc[0]) if len(df) else None
    lang = _main.cli_lang()
    if fmt == "json":
        crit = df.assign(basis=[b.text("en") if hasattr(b, "text") else b for b in df["basis"]])
        _print_json({"enterprise_id": enterprise, "designation": designation, "scope": scope or enterprise,
                     "period": [from_, to], "ruleset": rs.to_dict() if rs else None, "verdict": v,
                     "criteria": crit}, output)
        return
    show = df.assign(text=df["text_zh"] if lang == "zh" else df["text_en"],
                     basis=[_main.say(b) if hasattr(b, "text") else b for b in df["basis"]],
                     evidence=[",".join(map(str, e)) for e in df["evidence"]])
    show = show[["criterion", "kind", "text", "operator", "threshold", "value", "verdict", "basis", "evidence"]]
    if rs is not None and fmt == "table":
        _plain().print(f"{rs.name} ({rs.title.get(lang, rs.title.get('en'))}; {rs.source.get('url', '')})",
                        markup=False, highlight=False)
    _main.write_frame(show, fmt, output)
    if fmt == "table":
        _plain().print(f"verdict: {v['verdict']}" + (f"; failed: {', '.join(v['failed'])}" if v["failed"] else "")
                        + (f"; pending: {', '.join(v['pending'])}" if v["pending"] else ""), markup=False,
                        highlight=False)


def rules_list(fmt: str = typer.Option("table", "--format", help="table|json")):
    """The recognition rule sets (versioned data files): designation, version, validity, source."""
    from zhizao.portfolio.rulesets import all_rulesets

    _check_format(fmt, ("table", "json"))
    rs = sorted(all_rulesets().values(), key=lambda r: r.name)
    if fmt == "json":
        _print_json([r.to_dict() for r in rs], None)
        return
    _main.write_frame(pd.DataFrame([{"ruleset": r.name, "designation": r.designation, "version": r.version,
                                     "valid_from": _iso(r.valid_from), "valid_to": _iso(r.valid_to),
                                     "criteria": len(r.criteria), "source": r.source.get("url", "")}
                                    for r in rs]), fmt, None)


def rules_show(name: str = typer.Argument(..., help="rule set"),
               fmt: str = typer.Option("table", "--format", help="table|json")):
    """One rule set: its criteria with thresholds and texts, and its source."""
    from zhizao.portfolio.rulesets import ruleset

    _check_format(fmt, ("table", "json"))
    rs = ruleset(name)
    if fmt == "json":
        _print_json(rs.to_dict(), None)
        return
    con = Console(emoji=False)
    for k in ("document", "url", "note"):
        if rs.source.get(k):
            con.print(f"{k}: {rs.source[k]}", markup=False, highlight=False)
    _main.write_frame(pd.DataFrame([{"criterion": c.id, "kind": c.kind, "measure": c.measure or "",
                                     "operator": c.operator or "", "threshold": c.threshold,
                                     "zh": c.text.get("zh", ""), "en": c.text.get("en", "")}
                                    for c in rs.criteria]), "table", None)


# -- capability maturity ----------------------------------------------------------------------------------

NO_LETTERHEAD = define("cli.bulletin.no_letterhead",
                       "note: without --letterhead the notice has no issuing office's header, document number, "
                       "addressees or signature; give them in a letterhead file to issue it (see "
                       "portfolio/templates/letterhead.example.yaml)")
IMPORTED = define("cli.maturity.imported", "%(n)s assessments imported, %(rejected)s rows rejected")


def maturity_import(file: Path = typer.Argument(..., help="the self-diagnosis platform's results (CSV or .xlsx)"),
                    reports: Path | None = typer.Option(None, "--reports", help="folder of the report files "
                                                                                   "named in column report"),
                    db: str = DB):
    """Import self-assessment results of the public self-diagnosis platform: level, score, score per domain
    and the report file (stored as evidence with its hash)."""
    from zhizao.portfolio.maturity import import_results

    with _open(db, read_only=False) as ws:
        res = import_results(ws, file, report_folder=reports)
    con = Console(emoji=False)
    for _line, msg in res["rejected"]:
        con.print(_main.say(msg), markup=False, highlight=False)
    _say(IMPORTED(n=len(res["imported"]), rejected=len(res["rejected"])))
    if res["rejected"] and not res["imported"]:
        raise typer.Exit(2)


def maturity_show(enterprise: str = typer.Argument(..., help="enterprise id"), db: str = DB,
                  fmt: str = typer.Option("table", "--format", help="table|json")):
    """An enterprise's capability maturity: current level, its assessments, what the data tell for the
    questionnaire, and the eligibility rules that use the level."""
    from zhizao.portfolio.maturity import LEVEL_NAMES, assessments, current_level, eligibility, facts

    _check_format(fmt, ("table", "json"))
    with _open(db) as ws:
        cur = current_level(ws, enterprise)
        hist = assessments(ws, enterprise)
        f = facts(ws, enterprise)
        elig = []
        for d in ("demonstration_project", "demonstration_factory", "ladder_excellent"):
            elig += [{**r, "designation": d} for r in eligibility(ws, enterprise, d)]
    lang = _main.cli_lang()
    if fmt == "json":
        _print_json({"enterprise_id": enterprise, "current": cur,
                     "assessments": hist.drop(columns=["answers"]),
                     "facts": {k: v for k, v in f.items() if k != "basis"},
                     "facts_basis": [m.text("en") for m in f.get("basis", [])],
                     "eligibility": [{**r, "basis": r["basis"].text("en")} for r in elig]}, None)
        return
    con = Console(emoji=False)
    if cur is None:
        con.print("no assessment", markup=False)
    else:
        con.print(f"level {cur['level']} {LEVEL_NAMES.get(cur['level'], '')} (score {cur['score']}, "
                  f"{cur['source']}, {_iso(cur['date'])})", markup=False, highlight=False)
    for m in f.get("basis", []):
        con.print(_main.say(m), markup=False, highlight=False)
    if len(hist):
        _main.write_frame(_dates_as_text(hist[["assessment_id", "assessed_on", "source", "level", "score",
                                               "report_file", "recorded_by"]]), "table", None)
    for r in elig:
        ok = {True: "yes", False: "no", None: "?"}[r["passed"]]
        con.print(f"{r['designation']}: {r['text'].get(lang, r['text'].get('en'))}: {ok}", markup=False,
                  highlight=False)


def bulletin(db: str = DB,
             lang: str = typer.Option("zh", "--lang", help="zh (Simplified Chinese) or en"),
             out: Path = typer.Option(Path("bulletin"), "-o", "--output", help="output folder"),
             fmt: str = typer.Option("html,md", "--format", help="html, md, pdf or several: html,md,pdf"),
             park: str | None = PARK, district: str | None = DISTRICT,
             from_: str | None = FROM, to: str | None = TO,
             title: str | None = typer.Option(None, "--title", help="the notice's title"),
             letterhead: Path | None = typer.Option(
                 None, "--letterhead", help="YAML file of the office's header, document number, addressees, "
                                            "programme name, opening, closing, signature, date and seal "
                                            "(see portfolio/templates/letterhead.example.yaml)"),
             template: Path | None = typer.Option(
                 None, "--template", help="folder with an own bulletin.html.j2 and/or bulletin.css"),
             date: str | None = typer.Option(None, "--date", help="document date YYYY-MM-DD [default: today, "
                                                                     "Beijing time]"),
             confidence: float = typer.Option(0.9, "--confidence", help="level of the bootstrap intervals"),
             n_boot: int = typer.Option(2000, "--n-boot", min=1, help="bootstrap resamples over projects"),
             seed: int = typer.Option(0, "--seed", help="bootstrap seed")):
    """The programme notice (通报): bulletin.<lang>.html (self-contained, offline), .md and .pdf (A4)."""
    from zhizao.portfolio.bulletin import render_bulletin

    _main.choice(lang, ("zh", "en"), "language")
    formats = tuple(x.strip() for x in fmt.split(",") if x.strip())
    for f in formats:
        _main.choice(f, ("html", "md", "pdf"), "format")
    with _open(db) as ws:
        paths = render_bulletin(ws, out, lang=lang, title=title, park=park, district=district, start=from_,
                                end=to, confidence=confidence, n_boot=n_boot, seed=seed, letterhead=letterhead,
                                template_dir=template, date=date, formats=formats)
    _plain().print("wrote " + ", ".join(str(p) for p in paths.values()), markup=False, highlight=False)
    if letterhead is None:
        _say(NO_LETTERHEAD())


def register(app: typer.Typer) -> None:
    """Add the commands ``register ...``, ``project ...``, ``audit``, ``programme``, ``recognition`` and
    ``bulletin`` to ``app``."""
    project = typer.Typer(cls=_main.ContractGroup, no_args_is_help=True,
                          help="The project register: list, show (also as it was on a date), update (status "
                               "transitions), withdraw, history.")
    project.command("list")(project_list)
    project.command("show")(project_show)
    project.command("update")(project_update)
    project.command("withdraw")(project_withdraw)
    project.command("history")(project_history)
    project.command("verify")(project_verify)
    app.add_typer(project, name="project")
    reg = typer.Typer(cls=_main.ContractGroup, no_args_is_help=True,
                      help="The register (enterprises, scopes, projects, designations, programmes, "
                           "programme_targets): records with a history.")
    reg.command("list")(register_list)
    reg.command("show")(register_show)
    reg.command("create")(register_create)
    reg.command("update")(register_update)
    reg.command("withdraw")(register_withdraw)
    reg.command("history")(register_history)
    reg.command("timezone")(register_timezone)
    reg.command("template")(register_template)
    reg.command("vocabularies")(register_vocabularies)
    app.add_typer(reg, name="register")
    app.command("audit")(audit)
    app.command("programme")(programme)
    app.command("recognition")(recognition)
    rules = typer.Typer(cls=_main.ContractGroup, no_args_is_help=True,
                        help="Recognition rule sets (versioned data files).")
    rules.command("list")(rules_list)
    rules.command("show")(rules_show)
    app.add_typer(rules, name="rules")
    mat = typer.Typer(cls=_main.ContractGroup, no_args_is_help=True,
                      help="Capability maturity (GB/T 39116-2020): import the self-diagnosis platform's results, "
                           "show an enterprise's level.")
    mat.command("import")(maturity_import)
    mat.command("show")(maturity_show)
    app.add_typer(mat, name="maturity")
    app.command("bulletin")(bulletin)
