"""The main job on the bundled data, end to end: ingest -> elements and KPIs -> CSV tables and report.

Real datasets (see ``data/datasets/*/PROVENANCE.md``), each through its mapping file in ``data/mappings``:

- steel-industry-energy: 15-min electricity of DAEWOO Steel's Gwangyang plant, 2018 (energy);
- garment-productivity: team-day labour records of a garment factory, 2015 (labour);
- secom-labels: pass/fail of each unit of a semiconductor line, 2008 (quality);

plus a plant made by :mod:`zhizao.simulate` (labelled SIMULATED everywhere), because no open shop-floor log
with machine states, counts and ideal cycle times exists.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import zhizao
from zhizao.export import write_table
from zhizao.ingest.mapping import bundled_mapping

DATA = Path(__file__).resolve().parent / "data"

#: (table, file under data/, mapping name or None)
REAL_SOURCES = (
    ("equipment", "demo/real-equipment.csv", None),
    ("energy", "datasets/steel-industry-energy/Steel_industry_data.csv", "steel-industry-energy"),
    ("labour", "datasets/garment-productivity/garments_worker_productivity.csv", "garment-productivity"),
    ("quality", "datasets/secom-labels/secom_labels.data", "secom-labels"),
    ("variables", "datasets/steel-industry-energy/Steel_industry_data.csv", "steel-load-class"),
    ("equipment", "demo/eemeter-equipment.csv", None),
    ("energy", "datasets/eemeter-samples/il-electricity-cdd-hdd-daily.csv.gz", "eemeter-daily"),
    ("energy", "datasets/eemeter-samples/il-electricity-cdd-hdd-hourly.csv.gz", "eemeter-hourly"),
    ("variables", "datasets/eemeter-samples/il-tempF.csv.gz", "eemeter-temperature"),
)

#: Before/after verifications on the real data: (label, indicator, scope, baseline, reporting, options)
REAL_VERIFICATIONS: tuple[tuple[str, str, str, tuple[str, str], tuple[str, str], dict[str, str]], ...] = (
    ("eemeter daily sample (simulated, designed saving 10 %)", "energy", "il-daily-meter",
     ("2015-12-26T00:00:00-06:00", "2016-12-26T00:00:00-06:00"),
     ("2017-01-04T00:00:00-06:00", "2018-01-04T00:00:00-06:00"), {}),
    ("eemeter hourly sample (simulated, designed saving 10 %)", "energy", "il-hourly-meter",
     ("2015-12-26T00:00:00-06:00", "2016-12-26T00:00:00-06:00"),
     ("2017-01-04T00:00:00-06:00", "2018-01-04T00:00:00-06:00"), {"granularity": "hour"}),
    ("steel plant electricity, H1 vs H2 2018, normalised for load class, weekday, hour", "energy",
     "DAEWOO-Gwangyang", ("2018-01-01T00:00:00+09:00", "2018-07-01T00:00:00+09:00"),
     ("2018-07-01T00:00:00+09:00", "2019-01-01T00:00:00+09:00"), {"granularity": "hour"}),
    ("SECOM defect rate, July vs September 2008", "defect_rate", "SECOM-line",
     ("2008-07-01T00:00:00+00:00", "2008-08-01T00:00:00+00:00"),
     ("2008-09-01T00:00:00+00:00", "2008-10-01T00:00:00+00:00"), {}),
    ("garment factory standard hours per labour hour, January vs February-March 2015",
     "production_efficiency", "garment-factory", ("2015-01-01T00:00:00+06:00", "2015-02-01T00:00:00+06:00"),
     ("2015-02-01T00:00:00+06:00", "2015-04-01T00:00:00+06:00"), {}),
)
SIM_ORDER = ("equipment", "products", "calendar", "states", "production", "energy", "labour", "quality")
SIM_SITE = "S1"

NOTES = (
    "Steel plant energy: DAEWOO Steel Co. Ltd, Gwangyang; UCI Steel Industry Energy Consumption (CC BY 4.0), "
    "Sathishkumar V E et al.",
    "Garment factory labour: UCI Productivity Prediction of Garment Employees (CC BY 4.0), Imran, Rahim, Ahmed. "
    "Attendance assumes 8 h per worker-day (see the mapping file).",
    "Semiconductor quality: UCI SECOM (CC BY 4.0), McCann and Johnston.",
    "Site S1 is SIMULATED by zhizao's plant simulator (known ground truth), not real data.",
)


#: Load order of a simulated programme's tables (foreign keys first).
PROGRAMME_ORDER = ("equipment", "enterprises", "products", "calendar", "states", "production", "energy", "labour",
                   "quality", "variables", "costs", "projects", "designations", "development_cycles")
PROGRAMME_INDICATOR_TRUTH = {
    "production_efficiency": "true_efficiency_change", "defect_rate": "true_defect_rate_reduction",
    "operating_cost": "true_operating_cost_reduction", "unit_energy": "true_unit_energy_reduction",
    "development_cycle": "true_development_cycle_reduction"}


def run_programme(out: Path, n_projects: int = 40, n_enterprises: int = 20, seed: int = 3, progress=None,
                  task=None) -> dict:
    """Simulate a programme with known effects, verify every project, and write the bulletins.

    The programme lives in its own store, ``<out>/programme.duckdb`` (a city's register, apart from the plant
    store). Returns ``{"statistics": dict, "truth": DataFrame, "files": [Path, ...]}``.
    """
    from zhizao.portfolio import programme_statistics, render_bulletin
    from zhizao.simulate import simulate_programme, write_programme
    from zhizao.verify import verify_all_projects

    def step(text):
        if progress is not None:
            progress.update(task, description=text)

    step(f"simulate a programme ({n_projects} projects in {n_enterprises} enterprises)")
    paths = write_programme(simulate_programme(n_projects=n_projects, n_enterprises=n_enterprises, seed=seed),
                            out / "simulated-programme")
    files = []
    with zhizao.connect(out / "programme.duckdb") as ws:
        for table in PROGRAMME_ORDER:
            step(f"ingest programme {table}")
            ws.ingest(table, paths[table])
        verify_all_projects(ws, progress=lambda i, n: step(f"verify project {i}/{n}"))
        step("programme statistics and bulletins")
        stats = programme_statistics(ws)
        for lang in ("zh", "en"):  # marked SIMULATED from the data's provenance (zhizao.provenance)
            files += list(render_bulletin(ws, out / "bulletin", lang=lang, stats=stats).values())
    truth = pd.read_csv(out / "simulated-programme" / "truth_projects.csv")
    return {"statistics": stats, "truth": truth, "files": files}


def run_demo(out: str | Path = "zhizao-demo", db: str | Path | None = None, machines: int = 12, days: int = 28,
             seed: int = 7, console: Console | None = None, programme_projects: int = 40) -> dict:
    """Run the demo and write its outputs.

    Parameters
    ----------
    out : str or Path
        Output folder (created): ``report.html`` (Chinese), ``report.en.html``, KPI CSV tables,
        ``simulated-plant/`` with the simulator's canonical tables.
    db : str or Path, optional
        Store file; default ``<out>/zhizao.duckdb``. Re-running on the same store changes nothing.
    machines, days, seed : int
        Size and seed of the simulated plant.
    console : rich.console.Console, optional

    Returns
    -------
    dict
        ``{"out": Path, "files": [Path, ...], "summary": pandas.DataFrame}``.

    Also simulates a programme of ``programme_projects`` projects (0: none) with known effects in its own store
    ``<out>/programme.duckdb``, verifies every project and writes ``<out>/bulletin/bulletin.{zh,en}.{html,md}``.
    """
    from zhizao.report import render_report
    from zhizao.simulate import simulate_plant, write_plant

    console = console or Console(emoji=False)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    db = Path(db) if db else out / "zhizao.duckdb"
    files: list[Path] = []
    steps = len(REAL_SOURCES) + 1 + len(SIM_ORDER) + 5
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=False) as progress, zhizao.connect(db) as ws:
        task = progress.add_task("ingest real datasets", total=steps)
        for table, rel, mapping in REAL_SOURCES:
            progress.update(task, description=f"ingest {Path(rel).name}")
            ws.ingest(table, DATA / rel, mapping=bundled_mapping(mapping) if mapping else None)
            progress.advance(task)
        progress.update(task, description=f"simulate a plant ({machines} machines x {days} days)")
        sim_dir = out / "simulated-plant"
        paths = write_plant(simulate_plant(machines=machines, days=days, seed=seed), sim_dir)
        progress.advance(task)
        for table in SIM_ORDER:
            progress.update(task, description=f"ingest simulated {table}")
            ws.ingest(table, paths[table])
            progress.advance(task)

        progress.update(task, description="compute elements and KPIs")
        tables = {
            "kpi_equipment_day.csv": ws.kpi(level="equipment", period="day"),
            "kpi_work_center_day.csv": ws.kpi(level="work_center", period="day"),
            "kpi_site_day.csv": ws.kpi(level="site", period="day"),
            "kpi_site_month.csv": ws.kpi(level="site", period="month"),
            "kpi_site_all.csv": ws.kpi(level="site", period="all"),
            "losses_site.csv": ws.losses(level="site", period="all"),
            "stop_reasons.csv": ws.stop_reasons(level="site", period="all"),
            "data_quality.csv": ws.data_quality(level="equipment", period="day"),
            "quarantine.csv": ws.quarantine(),
        }
        for name, df in tables.items():
            p = out / name
            write_table(df, "csv", p)  # formula-like texts from the data neutralised
            files.append(p)
        progress.advance(task)
        progress.update(task, description="verify before/after changes on the real data")
        vt = verification_table(ws)
        write_table(vt, "csv", out / "verification.csv")
        files.append(out / "verification.csv")
        progress.advance(task)
        progress.update(task, description="write reports (zh, en)")
        files.append(render_report(ws, out / "report.html", lang="zh", notes=list(NOTES)))
        progress.advance(task)
        files.append(render_report(ws, out / "report.en.html", lang="en", notes=list(NOTES)))
        progress.advance(task)
        summary = tables["kpi_site_all.csv"]
        prog = run_programme(out, n_projects=programme_projects, n_enterprises=max(1, programme_projects // 2),
                             progress=progress, task=task) if programme_projects else None
        progress.advance(task)
    files += prog["files"] if prog else []
    _print_summary(console, summary, out)
    _print_verifications(console, vt)
    if prog:
        _print_programme(console, prog, out)
    return {"out": out, "files": files, "summary": summary}


def verification_table(ws) -> pd.DataFrame:
    """Run :data:`REAL_VERIFICATIONS`, store the results, and return one row per verification."""
    from zhizao.verify.project import store_results

    rows, results = [], []
    for label, indicator, scope, b, r, opts in REAL_VERIFICATIONS:
        res = ws.verify(indicator, scope, b, r, **opts)
        results.append(res)
        rows.append({"case": label, **{k: v for k, v in res.to_dict().items()
                                       if k not in ("fit", "coverage", "project_id")},
                     "r2": res.fit.get("r2"), "verdict": res.verdict,
                     "warnings": " | ".join(str(w) for w in res.warnings)})
    store_results(ws, results)
    return pd.DataFrame(rows)


def _pct(v) -> str:
    return "—" if v is None or pd.isna(v) else f"{100 * v:.1f} %"


def _num(v, unit="") -> str:
    return "—" if v is None or pd.isna(v) else f"{v:,.0f}{unit}"


def _print_summary(console: Console, summary: pd.DataFrame, out: Path) -> None:
    t = Table(title="zhizao demo: whole period per site (A availability, P performance, Q quality ratio, "
                    "FPY first pass yield)", title_justify="left")
    for c in ("site", "period", "OEE", "A", "P", "Q", "energy kWh", "FPY", "labour prod."):
        t.add_column(c, no_wrap=True)
    for r in summary.itertuples(index=False):
        label = r.site + (" (SIMULATED)" if r.site == SIM_SITE else "")
        t.add_row(label, f"{r.period_start[:10]}..{r.period_end[:10]}", _pct(r.oee), _pct(r.availability),
                  _pct(r.effectiveness), _pct(r.quality_ratio), _num(r.energy_kwh), _pct(r.first_pass_yield),
                  _pct(r.labour_productivity))
    wide = console if console.is_terminal else Console(width=140, emoji=False)
    wide.print(t)
    wide.print(f"Report: {out / 'report.html'} (English: {out / 'report.en.html'}); tables: {out}/*.csv")


def _print_verifications(console: Console, vt: pd.DataFrame) -> None:
    t = Table(title="Before/after verification on real data (improvement: positive is better; 90 % interval)",
              title_justify="left")
    for c in ("case", "indicator", "baseline", "reporting", "adjusted baseline", "improvement", "90 % interval"):
        t.add_column(c, overflow="fold")
    for r in vt.itertuples(index=False):
        t.add_row(r.case, r.indicator, f"{r.baseline:.4g}", f"{r.reporting:.4g}", f"{r.adjusted_baseline:.4g}",
                  _pct(r.improvement), f"{_pct(r.ci_low)} .. {_pct(r.ci_high)}")
    (console if console.is_terminal else Console(width=140, emoji=False)).print(t)


def _print_programme(console: Console, prog: dict, out: Path) -> None:
    av = prog["statistics"]["averages"]
    av = av[av["basis"] == "verified"].set_index("indicator")
    truth = prog["truth"]
    t = Table(title=f"SIMULATED programme: {len(truth)} projects, verified from data vs the known effects "
                    "(unweighted mean, 90 % bootstrap interval over projects)", title_justify="left")
    for c in ("indicator", "projects verified", "mean improvement", "90 % interval", "known mean effect"):
        t.add_column(c)
    for ind, col in PROGRAMME_INDICATOR_TRUTH.items():
        if ind in av.index:
            r = av.loc[ind]
            t.add_row(ind, str(int(r["n"])), _pct(r["mean"]), f"{_pct(r['ci_low'])} .. {_pct(r['ci_high'])}",
                      _pct(truth[col].mean()))
    (console if console.is_terminal else Console(width=140, emoji=False)).print(t)
    console.print(f"Bulletin: {out / 'bulletin' / 'bulletin.zh.html'} (English: bulletin.en.html, Markdown: *.md)")
