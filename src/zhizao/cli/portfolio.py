"""Portfolio commands: ``project``, ``programme``, ``recognition`` and ``bulletin``.

Added to the main application by :func:`register`. Like the other commands they only call the stage
(:mod:`zhizao.portfolio`) and reuse :func:`zhizao.cli.common.fail` (exit 2 with one line) and
:func:`zhizao.cli.common.write_frame` (output formats).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console

from zhizao.cli import common as _main  # fail, write_frame
from zhizao.messages import define

DB = typer.Option("zhizao.duckdb", "--db", help="DuckDB store file")
FROM = typer.Option(None, "--from", help="start, inclusive (ISO 8601; naive = local time)")
TO = typer.Option(None, "--to", help="end, exclusive (ISO 8601; naive = local time)")
PARK = typer.Option(None, "--park", help="only enterprises of this park")
DISTRICT = typer.Option(None, "--district", help="only enterprises of this district")
OUTPUT = typer.Option(None, "-o", "--output", help="output file")


UNKNOWN_PROJECT = define("cli.unknown_project", "unknown project '%(id)s'")


def _open(db: str):
    return _main.open_store(db)


def _records(df: pd.DataFrame) -> list[dict]:
    """A DataFrame as JSON-able row objects (time stamps ISO 8601, NaN -> null)."""
    return json.loads(df.to_json(orient="records", date_format="iso"))


def _jsonable(obj):
    if isinstance(obj, pd.DataFrame):
        return _records(obj)
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _print_json(obj, output: Path | None) -> None:
    text = json.dumps(_jsonable(obj), ensure_ascii=False, indent=1, default=str)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)


def _check_format(fmt: str, allowed=("table", "csv", "json")) -> None:
    _main.choice(fmt, allowed, "format")


def _iso(v, tz: str | None = None):
    """ISO 8601 with the offset of ``tz`` (the project's local zone) if given; null -> None."""
    if v is None or pd.isna(v):
        return None
    t = pd.Timestamp(v)
    if t.tzinfo is not None and isinstance(tz, str):
        t = t.tz_convert(tz)
    return t.isoformat()


def project_list(db: str = DB, park: str | None = PARK, district: str | None = DISTRICT,
                 from_: str | None = FROM, to: str | None = TO,
                 fmt: str = typer.Option("table", "--format", help="table|csv|json|parquet|xlsx (xlsx: labelled "
                                                                  "in --lang, local dates)"),
                 lang: str = typer.Option("zh", "--lang", help="language of the xlsx sheet: zh or en"),
                 output: Path | None = OUTPUT):
    """List the projects (filters: park, district, project start in [--from, --to))."""
    from zhizao.portfolio.registry import latest_verifications, projects

    _check_format(fmt, ("table", "csv", "json", "parquet", "xlsx"))
    with _open(db) as ws:
        prj = projects(ws, park, district, from_, to)
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
    df = prj.assign(verified=prj["project_id"].map(verified).fillna(""))
    for c in ("start", "commissioning_end"):
        df[c] = [_iso(v, z) for v, z in zip(df[c], df["tz"])]
    df = df.drop(columns=["tz"])
    if fmt == "table":
        df = df[["project_id", "enterprise_id", "enterprise", "district", "park", "type", "start",
                 "commissioning_end", "investment", "status", "verified"]]
    _main.write_frame(df, fmt, output)


def project_show(project_id: str = typer.Argument(..., help="project id"), db: str = DB,
                 fmt: str = typer.Option("table", "--format", help="table|json"),
                 output: Path | None = OUTPUT):
    """One project: its record, designations and stored verification results (latest per indicator)."""
    from zhizao.portfolio.registry import designations, latest_verifications, projects

    _check_format(fmt, ("table", "json"))
    with _open(db) as ws:
        prj = projects(ws, project_ids=[project_id])
        if not len(prj):
            _main.fail(UNKNOWN_PROJECT, id=project_id)
        ver = latest_verifications(ws, [project_id])
        des = designations(ws)
    p = prj.iloc[0].to_dict()
    tz = p.pop("tz")
    p = {k: (_iso(v, tz) if k in ("start", "commissioning_end") else (None if not isinstance(v, str) and pd.isna(v)
                                                                        else v)) for k, v in p.items()}
    p["timezone"] = tz
    des = des[des["project_id"] == project_id].drop(columns=["tz"])
    if fmt == "json":
        _print_json({"project": p, "designations": des, "verifications": list(ver["result"])}, output)
        return
    with _main.output_console(output) as con:
        for k, v in p.items():
            con.print(f"{k}: {'' if v is None else v}", markup=False, highlight=False)
        if len(des):
            con.print("\ndesignations", markup=False)
            _main.write_frame(des.assign(date=[_iso(v, tz) for v in des["date"]]), "table", None, con)
        con.print("\nverification results (latest per indicator)", markup=False)
        if not len(ver):
            con.print("none stored", markup=False)
            return
        show = ver[["indicator", "improvement", "ci_low", "ci_high", "confidence", "method", "output"]].copy()
        show["computed_at"] = [_iso(v) for v in ver["computed_at"]]
        show["warnings"] = ["; ".join(w) for w in ver["warnings"]]
        _main.write_frame(show, "table", None, con)


#: Columns of the programme tables printed in table format (the JSON output has every column).
_TABLE_VIEWS = {
    "by_type": ["type", "n_projects"],
    "by_designation_level": ["designation", "level", "n"],
    "by_district": ["district", "n_projects"],
    "by_industry": ["industry", "n_projects"],
    "by_year": ["year", "n_projects"],
    "coverage": ["indicator", "n_projects", "n_verified", "n_declared_only", "n_neither", "n_declared"],
    "averages": ["indicator", "basis", "n", "mean", "ci_low", "ci_high", "weighted_mean", "weight_basis",
                 "median", "q1", "q3", "min", "max"],
    "rankings": ["indicator", "rank", "project_id", "enterprise_id", "improvement", "ci_low", "ci_high"],
}


def programme(db: str = DB, park: str | None = PARK, district: str | None = DISTRICT,
              from_: str | None = FROM, to: str | None = TO,
              confidence: float = typer.Option(0.9, "--confidence", help="level of the bootstrap intervals"),
              n_boot: int = typer.Option(2000, "--n-boot", min=1, help="bootstrap resamples over projects"),
              seed: int = typer.Option(0, "--seed", help="bootstrap seed"),
              fmt: str = typer.Option("table", "--format", help="table|json|xlsx (xlsx: one sheet per table, "
                                                                "labelled in --lang)"),
              lang: str = typer.Option("zh", "--lang", help="language of the xlsx sheets: zh or en"),
              output: Path | None = OUTPUT):
    """Programme statistics: counts, verified vs declared results, averages with intervals, rankings.

    Values are fractions (0.598 = +59.8 %), positive = better. ``--format json`` gives every table with the
    project ids behind each number."""
    from zhizao.portfolio.stats import programme_statistics

    _check_format(fmt, ("table", "json", "xlsx"))
    _main.choice(lang, ("zh", "en"), "language")
    if fmt == "xlsx" and output is None:
        _main.fail("--format xlsx needs -o FILE")
    with _open(db) as ws:
        s = programme_statistics(ws, park, district, from_, to, confidence=confidence, n_boot=n_boot, seed=seed)
    if fmt == "xlsx":
        from zhizao.export import write_xlsx
        from zhizao.portfolio.tables import programme_sheets

        sheets, pct = programme_sheets(s, lang)
        write_xlsx(sheets, output, pct)
        Console().print(f"wrote {output} ({len(sheets)} sheets)", markup=False, highlight=False)
        return
    if fmt == "json":
        _print_json(s, output)
        return
    with _main.output_console(output) as con:
        t = s["totals"]
        con.print(f"projects: {t['n_projects']}  enterprises: {t['n_enterprises']}  demonstration projects: "
                  f"{t['n_demonstration_projects']}  smart factories: {t['n_smart_factories']}  digital workshops: "
                  f"{t['n_digital_workshops']}  projects with a verified result: {t['n_verified_projects']}",
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
                designation: str = typer.Option(..., "--designation", help="digital_workshop|smart_factory"),
                from_: str | None = FROM, to: str | None = TO,
                scope: str | None = typer.Option(None, "--scope", help="assessed scope (default the enterprise)"),
                fmt: str = typer.Option("table", "--format", help="table|csv|json"),
                output: Path | None = OUTPUT):
    """Recognition criteria of a digital workshop or smart factory: computed from data where possible, the
    rest listed as declarations to be confirmed by an assessor (passed empty)."""
    from zhizao.portfolio.recognition import RECOGNITIONS, recognition_checks

    _main.choice(designation, list(RECOGNITIONS), "designation")
    _check_format(fmt)
    with _open(db) as ws:
        df = recognition_checks(ws, enterprise, designation, (from_, to), scope=scope)
    if fmt == "json":
        _print_json(df, output)
        return
    df = df.assign(evidence=[",".join(map(str, e)) for e in df["evidence"]])
    _main.write_frame(df, fmt, output)


def bulletin(db: str = DB,
             lang: str = typer.Option("zh", "--lang", help="zh (Simplified Chinese) or en"),
             out: Path = typer.Option(Path("bulletin"), "-o", "--output", help="output folder"),
             fmt: str = typer.Option("html,md", "--format", help="html, md, pdf or several: html,md,pdf"),
             park: str | None = PARK, district: str | None = DISTRICT,
             from_: str | None = FROM, to: str | None = TO,
             title: str | None = typer.Option(None, "--title", help="the notice's title"),
             letterhead: Path | None = typer.Option(
                 None, "--letterhead", help="YAML file of the office's header, document number, addressees, "
                                            "programme name, closing, signature and date (see "
                                            "portfolio/templates/letterhead.example.yaml)"),
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
    Console().print("wrote " + ", ".join(str(p) for p in paths.values()), markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add the commands ``project list|show``, ``programme``, ``recognition`` and ``bulletin`` to ``app``."""
    project = typer.Typer(cls=_main.ContractGroup, no_args_is_help=True,
                          help="The project register: list projects, show one with its stored verification "
                               "results.")
    project.command("list")(project_list)
    project.command("show")(project_show)
    app.add_typer(project, name="project")
    app.command("programme")(programme)
    app.command("recognition")(recognition)
    app.command("bulletin")(bulletin)
