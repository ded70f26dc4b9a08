"""A simulated intelligent-transformation programme with known per-project effects.

:func:`simulate_programme` generates a programme register (enterprises, projects, designations), the shop-floor
data of every project's scope (one work centre with a few machines) for ``months_before`` months before the
project start and ``months_after`` months after the end of commissioning, monthly operating costs with a price
index, and product development cycles.  Each project has drawn, known effects on the five indicators of
reference/transformation.md; ``truth_projects`` holds them next to the values realised in the generated data.
:func:`write_programme` writes the tables as canonical CSV files with a README that marks them as simulated.

The shop-floor records are deliberately coarse (so that a 120-project programme stays small): per machine and
working day one setup, production runs, zero to two failures, two breaks (state category planned_downtime),
no-order time at the end of the day and ``not_scheduled`` outside the shifts; one production count per shift,
one energy interval per day, two inspected units per shift, one labour record per work centre and day.

Model (per machine; ``d`` = defect rate, ``ct`` = cycle time, ``b`` = baseline, ``r`` = after the project)
------------------------------------------------------------------------------------------------------------
* Calendar: two shifts Mon-Sat, 06:00-14:00 and 14:00-22:00, breaks 10:00-10:30 and 18:00-18:30 (site scope).
  Planned busy time 15 h per working day; the data windows start on the first of a month.
* Time: setup U(10, 40) min at 06:00, Binomial(2, p) failures (lognormal, median 35 min; one that runs into
  a break is repaired in the break), production ``APT = load x (PBT - setup - failures)`` and no-order time
  for the rest.  ``load`` varies day to day
  (AR(1)) around a level that changes between the periods (volume), differently per machine (mix).
* Production efficiency (good units per production hour, GQ / APT): ``(1 - d) x 3600 / ct``.  The project
  changes it by ``E``: ``d_r = d_b (1 - D)`` and ``ct_b = ct_r (1 + E)(1 - d_b) / (1 - d_r)``.  The product's
  planned run time ``pri`` is the new line's ideal, so performance stays below 100 % in both periods.
* Defect rate ((scrap + rework) / produced; and failed / inspected): scaled by ``1 - D``.
* Unit energy (kgce per unit produced, electricity at 0.1229 kgce/kWh): per working day
  ``run_kW x APT + idle_kW x (16 h - APT) + standby_kW x 8 h``, per Sunday ``standby_kW x 24 h``.  The fixed
  (idle, standby) part makes unit energy depend on volume.  ``run_kW`` (and, if needed, ``idle_kW``) after the
  project are solved so that producing the nominal baseline output takes ``(1 - U)`` times the baseline energy.
* Operating cost: per work centre and month, categories labour, energy, material, maintenance,
  ``amount = price_index x (fixed_k + variable_k x produced) x (1 - red_k) x noise``; ``red_energy = U`` and
  the other categories' common reduction is chosen so that cost per unit at the nominal baseline output and
  baseline prices falls by ``C``.  ``price_index`` (variables, scope = the site, monthly, 1.0 in the site's
  first month) rises about 0.2-0.4 % a month.
* Development cycle (days from design start to release): ``T0 x noise x prod(1 - R_q)`` over the enterprise's
  projects ``q`` commissioned before the design start.

"Nominal baseline conditions" are the drawn parameters: expected setup and failure time, the baseline load
level, baseline prices, baseline output.  The drawn effects hold there exactly (by construction).  The
``true_*`` columns of ``truth_projects`` state what each programme indicator means (reference/verification.md,
reference/transformation.md), exactly.  verification.md makes the adjusted-baseline figure the headline:
``(adjusted baseline - reporting) / adjusted baseline`` with the adjusted baseline "what the baseline plant
would have used under reporting conditions" (IPMVP avoided energy).  A drawn effect at nominal baseline
conditions is another quantity (IPMVP normalised savings at baseline conditions): with a fixed part of energy
or cost and a changed volume, or with cost per good unit and a changed yield, the two differ.  So:

* efficiency, defect rate, development cycle: the drawn effects (they do not depend on volume or prices);
* unit energy: the avoided share at the reporting period's conditions (IPMVP "avoided energy"), i.e.
  ``1 - E_new / E_cf`` over the reporting window, with ``E_new`` the meter-noise-free energy of the new line
  and ``E_cf`` what the baseline line (``run0``, ``idle0``) would have used for the same output on the same
  days (production time ``APT x ct0 / ct1``).  The adjusted baseline estimates ``E_cf``; with a fixed (idle,
  standby) part and a changed volume this differs from the drawn ``U`` at nominal baseline output, which is
  kept as ``drawn_unit_energy_reduction``;
* operating cost (cost per GOOD unit at baseline prices, zhizao's ``cost_per_good_unit``): ``1 - C_new /
  C_cf`` over the reporting months, ``C_new = sum_k (fixed_k + variable_k x produced) (1 - red_k)`` and
  ``C_cf`` the baseline cost of making the same good output at the baseline yields (produced x (1 - d_r) /
  (1 - d_b) per machine).  The drawn ``C`` (cost per produced unit at nominal baseline output) is kept as
  ``drawn_operating_cost_reduction``; the defect-rate reduction lowers cost per good unit further.

The realised values (``*_baseline_value``, ``*_reporting_value``)
are ratios of totals over each window computed from the generated tables:

* efficiency: sum(good) / sum(production state hours) [units/h]
* defect_rate: sum(scrap + rework) / sum(produced); inspection_defect_rate: failed / inspected (quality)
* unit_energy: sum(kWh) x 0.1229 / sum(produced) [kgce/unit]
* operating_cost: sum(amount / price_index of the month) / sum(produced) [CNY/unit at the site's first-month
  prices]
* development_cycle: mean days from design_start to release of the enterprise's products released in the
  baseline window, and of those whose design started in the reporting window
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from zhizao.kpi.energy import DEFAULT_KGCE
from zhizao.schema import PROJECT_TYPES, TABLES
from zhizao.simulate.plant import localize, to_timestamps, write_csv

__all__ = [
    "INDICATORS",
    "SCENARIOS",
    "TRUTH_PROJECT_COLUMNS",
    "Scenario",
    "scenario_of",
    "simulate_programme",
    "write_programme",
]

# ------------------------------------------------------------------------------------------------------------
# Constants
# ------------------------------------------------------------------------------------------------------------

#: Indicators, named as the projects' ``declared_*`` columns.
INDICATORS = ("efficiency", "defect_rate", "operating_cost", "unit_energy", "development_cycle")

#: Drawn effect distributions (uniform ranges, fractions): efficiency change, and reductions of defect rate,
#: operating cost, unit energy and development cycle.
EFFECT_RANGES = {
    "efficiency": (0.10, 0.80),
    "defect_rate": (0.20, 0.60),
    "operating_cost": (0.10, 0.35),
    "unit_energy": (0.10, 0.30),
    "development_cycle": (0.10, 0.40),
}
ZERO_EFFECT_SHARE = 0.05  #: share of projects whose effects are ~0 (each effect U(-0.03, 0.03))
ZERO_EFFECT_RANGE = (-0.03, 0.03)
START_SPREAD_MONTHS = 12  #: project starts spread over this many months after the first baseline months

H = 3600
SHIFT_START_S = 6 * H  #: 06:00
WORK_DAY_S = 16 * H  #: 06:00-22:00
PBT_S = 15 * H  #: shift time minus two 30 min breaks
BREAK1_W, BREAK2_W = 4 * H, 11 * H + 1800  #: breaks on the working clock (10:00 and 18:00 wall time)
EARLY_W = 7 * H + 1800  #: working seconds of the early shift (06:00-14:00 minus its break)
WALL = {"t06": 6 * H, "t10": 10 * H, "t1030": 10 * H + 1800, "t14": 14 * H, "t18": 18 * H,
        "t1830": 18 * H + 1800, "t22": 22 * H}
SETUP_RANGE_S = (600, 2400)
FAIL_MEDIAN_S, FAIL_SIGMA, FAIL_MIN_S, FAIL_MAX_S = 2100.0, 0.5, 360, 4 * H
INSPECTIONS_PER_SHIFT = 2
DAYS_PER_MONTH_WORKING = 365.25 * 6 / 7 / 12
KGCE_PER_KWH = DEFAULT_KGCE["electricity"]
COST_CATEGORIES = ("labour", "energy", "material", "maintenance")
FIXED_SHARE = {"labour": 0.7, "energy": 0.3, "material": 0.05, "maintenance": 0.8}

# raw states (written in ``state``) and their categories
RUN, SETUP, FAIL, IDLE, BREAK, OFF = range(6)
STATE_NAMES = ("RUN", "SETUP", "FAIL", "IDLE", "BREAK", "OFF")
STATE_CATEGORIES = ("production", "setup", "unplanned_downtime", "no_order", "planned_downtime", "not_scheduled")
FAIL_REASONS = ("spindle", "hydraulics", "electrical", "tooling", "conveyor")
QUALITY_DEFECTS = ("dimension", "surface", "assembly", "material")

#: Industries as GB/T 4754-2017 divisions (the register's vocabulary ``industry``): 36 汽车制造业
#: (automotive parts), 39 计算机、通信和其他电子设备制造业, 34 通用设备制造业, 32 有色金属冶炼和压延加工业
#: (materials), 14 食品制造业.
INDUSTRIES = ("36", "39", "34", "32", "14")
INDUSTRY_WEIGHTS = (0.35, 0.25, 0.2, 0.12, 0.08)
INDUSTRY_CN = {"36": "汽车零部件", "39": "电子科技", "34": "机械制造", "32": "新材料", "14": "食品"}
WORKSHOPS_CN = {"36": ("冲压", "焊装", "机加工", "涂装", "总装"),
                "39": ("SMT", "组装", "测试", "注塑", "包装"),
                "34": ("机加工", "焊接", "装配", "热处理", "喷涂"),
                "32": ("熔炼", "轧制", "挤压", "分切", "涂布"),
                "14": ("配料", "灌装", "包装", "杀菌", "成型")}
DISTRICTS = {"沙坪坝区": "西部(重庆)科学城西永微电园", "九龙坡区": "西部(重庆)科学城九龙坡园区",
             "北碚区": "西部(重庆)科学城北碚园区", "璧山区": "西部(重庆)科学城璧山高新区",
             "江津区": "西部(重庆)科学城江津双福园区"}
NAME_PREFIXES = ("渝鑫", "金龙", "华宇", "长江", "嘉陵", "山城", "巴渝", "西永", "两江", "缙云", "歌乐",
                 "鸿达", "博越", "精工", "恒通", "瑞丰", "天翔", "永盛", "宏远", "中科", "科城", "双福",
                 "青凤", "白市驿", "陶然", "金凤", "含谷", "西彭", "蔡家", "来凤", "丁家", "几江", "德感",
                 "珞璜", "龙凤", "曾家", "虎溪", "大学城", "井口", "歇马")
TYPE_CN = {"digital_equipment": "数字化装备升级", "system_integration": "数字化车间系统集成",
           "industrial_internet": "工业互联网平台上云", "new_mode": "智能制造新模式应用"}

TRUTH_PROJECT_COLUMNS = (
    "project_id", "enterprise_id", "scope", "type", "zero_effect",
    "baseline_start", "baseline_end", "reporting_start", "reporting_end",
    *[f"true_{k}" for k in ("efficiency_change", "defect_rate_reduction", "operating_cost_reduction",
                            "unit_energy_reduction", "development_cycle_reduction")],
    "drawn_operating_cost_reduction", "drawn_unit_energy_reduction",
    *[f"{i}_{w}" for i in ("efficiency", "defect_rate", "inspection_defect_rate", "operating_cost",
                           "unit_energy", "development_cycle") for w in ("baseline_value", "reporting_value",
                                                                         "realised")],
    "baseline_produced", "reporting_produced", "baseline_apt_hours", "reporting_apt_hours",
    "baseline_days", "reporting_days", "baseline_products", "reporting_products",
)


# ------------------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------------------

def _month_grid(first: np.datetime64, n: int) -> np.ndarray:
    """First days (datetime64[D]) of ``n + 1`` consecutive months from month ``first``."""
    return (first + np.arange(n + 1)).astype("datetime64[D]")


def _ar1(rng: np.random.Generator, n_series: int, n_steps: int, phi: float) -> np.ndarray:
    """Unit-variance AR(1) series, shape (n_series, n_steps)."""
    e = rng.standard_normal((n_steps, n_series)) * math.sqrt(1 - phi * phi)
    x = np.empty((n_steps, n_series))
    x[0] = rng.standard_normal(n_series)
    for t in range(1, n_steps):
        x[t] = phi * x[t - 1] + e[t]
    return x.T


def _obj(values) -> np.ndarray:
    return np.asarray(values, dtype=object)


def _frame(name: str, cols: dict) -> pd.DataFrame:
    """A canonical table with exactly the canonical columns, in order (absent ones empty)."""
    n = len(next(iter(cols.values())))
    out = {}
    for c in TABLES[name].names:
        out[c] = cols[c] if c in cols else pd.Series([None] * n, dtype=object)
    return pd.DataFrame(out)


# ------------------------------------------------------------------------------------------------------------
# Scenarios
# ------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    """What a simulated programme stresses, beyond the base model of the module docstring.

    Every knob at its default gives the base programme (the same tables for the same seed as before the
    scenarios existed); a scenario's own randomness comes from a stream of its own.

    Attributes
    ----------
    name : str
    machine_mix : float
        Half-width of the per-machine load factor between the periods, ``U(1 - x, 1 + x)`` (base 0.10): how
        much the load shifts between the machines of a work centre.
    products_per_machine : {1, 2}
        With 2, each machine makes a second product (cycle time and planned run time ``k`` times the first's,
        ``k ~ U(1.5, 2.5)``; defect rates ``j`` times, ``j ~ U(0.5, 2)``), one product per working day; the
        project changes its good units per production hour by the same ``1 + E``.
    product_share : (float, float)
        Share of working days on the second product in the baseline and in the reporting period.
    level_shift : float
        A new load unrelated to the project on the first machine of each scope, from a day in the middle
        half of the baseline on, of this share of the machine's nominal daily energy (kWh per day, every day).
    meter_outage_days, counter_outage_days : int
        Consecutive days without energy records (a meter outage) or without production records (a counter
        outage; the states still show production) on the first machine of each scope, in the baseline or
        the reporting window (half of the projects each).
    weather : float
        Weather-driven energy: ``weather x`` the machine's nominal daily energy per 10 degree-days (heating
        below 14 deg C, cooling above 22 deg C) of the site's daily mean temperature (variables
        ``temperature_c``, a yearly cycle around 17 deg C with AR(1) weather noise).
    ar_noise : float
        AR(1) coefficient between days of the noise of defect rates, cycle times and meter readings, and
        between months of the cost noise (base 0: independent).
    no_effect : bool
        Every project's effects are exactly 0.
    speed_noise : float
        Standard deviation of the log of a machine-day's cycle time around its nominal value (base 0.02):
        the day's speed moves its counts, while its energy follows its production time.
    months_before, months_after : int, optional
        Override the window lengths of :func:`simulate_programme`.
    """

    name: str = "base"
    machine_mix: float = 0.10
    products_per_machine: int = 1
    product_share: tuple[float, float] = (0.0, 0.0)
    level_shift: float = 0.0
    meter_outage_days: int = 0
    counter_outage_days: int = 0
    weather: float = 0.0
    ar_noise: float = 0.0
    no_effect: bool = False
    speed_noise: float = 0.02
    months_before: int | None = None
    months_after: int | None = None


#: The scenarios of the verification tests and of benchmarks/verify_coverage.py (issue 11).
SCENARIOS = {s.name: s for s in (
    Scenario(),
    Scenario("mix_change", machine_mix=0.40, products_per_machine=2, product_share=(0.2, 0.7)),
    Scenario("level_shift", level_shift=0.25),
    Scenario("meter_outage", meter_outage_days=10),
    Scenario("counter_outage", counter_outage_days=10),
    Scenario("seasonal_short_baseline", weather=0.4, months_before=3),
    Scenario("autocorrelated", ar_noise=0.8),
    Scenario("short_reporting", months_after=1),
    Scenario("no_effect", no_effect=True),
)}


def scenario_of(name_or_scenario) -> Scenario:
    """The :class:`Scenario` of a name in :data:`SCENARIOS` (or the scenario itself).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if isinstance(name_or_scenario, Scenario):
        return name_or_scenario
    try:
        return SCENARIOS[str(name_or_scenario)]
    except KeyError:
        raise ValueError(f"unknown scenario {name_or_scenario!r}; one of {', '.join(SCENARIOS)}") from None


# ------------------------------------------------------------------------------------------------------------
# Simulation: small steps, each drawing from its own random stream in a fixed order
# ------------------------------------------------------------------------------------------------------------

def draw_enterprises(r: np.random.Generator, n_e: int) -> SimpleNamespace:
    """Enterprise ids, industries, districts, names, monthly price inflation and baseline development cycle."""
    ent_ids = np.array([f"ENT{i + 1:03d}" for i in range(n_e)], dtype=object)
    industry = r.choice(np.array(INDUSTRIES, dtype=object), n_e, p=INDUSTRY_WEIGHTS)
    district = r.choice(np.array(list(DISTRICTS), dtype=object), n_e)
    perm = r.permutation(len(NAME_PREFIXES))
    short = [NAME_PREFIXES[perm[i % len(perm)]] + ("" if i < len(perm) else str(i // len(perm) + 1))
             for i in range(n_e)]
    name = np.array([f"重庆{s}{INDUSTRY_CN[ind]}有限公司" for s, ind in zip(short, industry)], dtype=object)
    infl = r.uniform(0.002, 0.004, n_e)  # monthly price inflation
    t0_days = r.uniform(120.0, 360.0, n_e)  # development cycle at baseline [days]
    return SimpleNamespace(n=n_e, ids=ent_ids, industry=industry, district=district, short=short, name=name,
                           infl=infl, t0_days=t0_days)


def draw_projects(r: np.random.Generator, ent: SimpleNamespace, n_p: int, months_before: int,
                  months_after: int, sc: Scenario) -> SimpleNamespace:
    """Projects: enterprise, start and commissioning months, effects, declarations, ids, names and windows.

    Windows are month indices from the first data month: baseline ``[b0, b1)``, reporting ``[r0, r1)``."""
    n_e = ent.n
    if n_p >= n_e:
        ent_of = np.concatenate([r.permutation(n_e), r.integers(0, n_e, n_p - n_e)])
    else:
        ent_of = r.choice(n_e, n_p, replace=False)
    start_m = months_before + r.integers(0, START_SPREAD_MONTHS + 1, n_p)
    comm_m = r.integers(1, 4, n_p)
    order = np.lexsort((ent_of, start_m))
    ent_of, start_m, comm_m = ent_of[order], start_m[order], comm_m[order]
    eff = {k: r.uniform(*EFFECT_RANGES[k], n_p) for k in INDICATORS}
    n_zero = max(1, int(round(ZERO_EFFECT_SHARE * n_p)))
    zero_idx = r.choice(n_p, n_zero, replace=False)
    zero = np.zeros(n_p, bool)
    zero[zero_idx] = True
    for k in INDICATORS:
        eff[k][zero] = r.uniform(*ZERO_EFFECT_RANGE, n_zero)
    if sc.no_effect:
        eff = {k: np.zeros(n_p) for k in INDICATORS}
        zero[:] = True
    investment = np.round(r.lognormal(math.log(18e6), 0.5, n_p), -4)
    ptype = np.array(PROJECT_TYPES, dtype=object)[r.permutation(np.arange(n_p) % len(PROJECT_TYPES))]
    bias = {"efficiency": (0.05, 0.12), "defect_rate": (0.03, 0.08), "operating_cost": (0.02, 0.05),
            "unit_energy": (0.02, 0.05), "development_cycle": (0.03, 0.06)}
    declared = {k: np.round(np.minimum(eff[k] + m + np.abs(r.normal(0.0, s, n_p)),
                                       5.0 if k == "efficiency" else 0.95), 3)
                for k, (m, s) in bias.items()}
    wc_k = np.zeros(n_p, dtype=np.int64)
    seen: dict[int, int] = {}
    for i, e in enumerate(ent_of.tolist()):
        seen[e] = seen.get(e, 0) + 1
        wc_k[i] = seen[e]
    ids = np.array([f"P{i + 1:04d}" for i in range(n_p)], dtype=object)
    wc_ids = np.array([f"{ent.ids[e]}-WC{k}" for e, k in zip(ent_of, wc_k)], dtype=object)
    workshop = [WORKSHOPS_CN[ent.industry[e]][(k - 1) % 5] for e, k in zip(ent_of, wc_k)]
    name = np.array([f"{ent.short[e]}{w}车间{TYPE_CN[t]}项目" for e, w, t in zip(ent_of, workshop, ptype)],
                    dtype=object)
    b0, b1 = start_m - months_before, start_m
    r0 = start_m + comm_m
    return SimpleNamespace(n=n_p, ent_of=ent_of, start_m=start_m, comm_m=comm_m, eff=eff, zero=zero,
                           investment=investment, ptype=ptype, declared=declared, ids=ids, wc_ids=wc_ids,
                           site_ids=np.array([f"{e}-S1" for e in ent.ids], dtype=object),
                           area_ids=np.array([f"{e}-A1" for e in ent.ids], dtype=object), name=name,
                           b0=b0, b1=b1, r0=r0, r1=r0 + months_after)


def calendar_grid(m_first: np.datetime64, proj: SimpleNamespace, n_e: int, tz: str) -> SimpleNamespace:
    """Months, days, local wall-clock instants of the shift plan, and each site's data range (month indices)."""
    n_months = int(proj.r1.max())
    months = _month_grid(m_first, n_months)  # n_months + 1 first days
    dates = np.arange(months[0], months[-1])  # every day, datetime64[D]
    weekday = (dates.astype(np.int64) + 3) % 7  # Monday = 0
    site_m0 = np.full(n_e, n_months + 1)
    site_m1 = np.full(n_e, -1)
    np.minimum.at(site_m0, proj.ent_of, proj.b0)
    np.maximum.at(site_m1, proj.ent_of, proj.r1)
    return SimpleNamespace(
        n_months=n_months, months=months, month_edge=localize(months, 0, tz), dates=dates, n_days=len(dates),
        month_of_day=np.searchsorted(months, dates, "right") - 1,
        day_of_month0=np.searchsorted(dates, months),  # index of each month's first day (n_months + 1)
        weekday=weekday, working_day=weekday < 6, day_edge=localize(np.append(dates, months[-1]), 0, tz),
        wall={k: localize(dates, v, tz) for k, v in WALL.items()}, site_m0=site_m0, site_m1=site_m1,
        has_site=site_m1 >= 0, tz=tz)


def draw_machines(r: np.random.Generator, proj: SimpleNamespace, mpp: int, sc: Scenario,
                  r_scn: np.random.Generator) -> SimpleNamespace:
    """Machines: rates, defect rates, loads, energy parameters (before and after the project) and crews.

    The energy after the project (``run1``, ``idle1``) is solved so that producing the nominal baseline output
    takes ``1 - U`` times the baseline energy (module docstring)."""
    n_p = proj.n
    n_m = n_p * mpp
    proj_of = np.repeat(np.arange(n_p), mpp)
    ids = np.array([f"{proj.wc_ids[p]}-M{j + 1}" for p, j in zip(proj_of, np.tile(np.arange(mpp), n_p))],
                   dtype=object)
    E, D, U = (proj.eff[k][proj_of] for k in ("efficiency", "defect_rate", "unit_energy"))
    pri = np.round(r.uniform(20.0, 90.0, n_m), 1)
    ct1 = pri * r.uniform(1.12, 1.30, n_m)
    s0 = r.uniform(0.01, 0.04, n_m)
    rw0 = r.uniform(0.005, 0.025, n_m)
    s1, rw1 = s0 * (1 - D), rw0 * (1 - D)
    d0, d1 = s0 + rw0, s1 + rw1
    ct0 = ct1 * (1 + E) * (1 - d0) / (1 - d1)
    fail_p = r.uniform(0.10, 0.35, n_m)
    load_p = r.uniform(0.60, 0.85, n_p)
    volume_p = r.uniform(0.80, 1.25, n_p)
    load0 = np.clip(load_p[proj_of] * r.uniform(0.95, 1.05, n_m), 0.3, 0.9)
    # after the project the demanded OUTPUT changes by the volume factor; the faster line needs fewer hours
    mix = 1 + (r.uniform(0.90, 1.10, n_m) - 1) * (sc.machine_mix / 0.10)
    load1 = np.clip(load0 * volume_p[proj_of] * mix * ct1 / ct0, 0.2, 0.95)
    run0 = r.uniform(8.0, 30.0, n_m)
    idle0 = run0 * r.uniform(0.15, 0.30, n_m)
    standby = r.uniform(0.3, 1.0, n_m)
    crew = r.integers(1, 3, n_m)  # operators per machine and shift
    digital = r.random(n_m) < 0.65
    standard_minutes = np.round(pri / 60.0 * r.uniform(1.0, 2.0, n_m), 3)
    # nominal baseline operating point and the reporting-period energy model
    fail_mean = math.exp(math.log(FAIL_MEDIAN_S) + FAIL_SIGMA ** 2 / 2)
    a0 = load0 * (PBT_S - sum(SETUP_RANGE_S) / 2 - 2 * fail_p * fail_mean) / H  # APT [h / working day]
    a1 = a0 * ct1 / ct0  # APT the new line needs for the same output
    wk0 = 6 * (run0 * a0 + idle0 * (16 - a0) + 8 * standby) + 24 * standby  # kWh per week
    per_day = ((1 - U) * wk0 - 24 * standby) / 6 - 8 * standby
    run1 = (per_day - idle0 * (16 - a1)) / a1
    idle1 = idle0.copy()
    low = run1 < 1.05 * idle0
    idle1[low] = per_day[low] / (1.05 * a1[low] + 16 - a1[low])
    run1[low] = 1.05 * idle1[low]
    if (idle1 <= 0).any():  # pragma: no cover - parameter ranges keep this away
        raise RuntimeError("energy model: no positive load meets the drawn reduction")
    # a second product (scenario): k times the cycle and run times, j times the defect rates
    k2 = r_scn.uniform(1.5, 2.5, n_m) if sc.products_per_machine > 1 else np.ones(n_m)
    j2 = r_scn.uniform(0.5, 2.0, n_m) if sc.products_per_machine > 1 else np.ones(n_m)
    # the second product's baseline cycle time: its good units per production hour change by 1 + E as well
    ct0_2 = ct1 * k2 * (1 + E) * (1 - j2 * d0) / (1 - j2 * d1)
    return SimpleNamespace(n=n_m, mpp=mpp, proj_of=proj_of, ids=ids, pri=pri, ct0=ct0, ct1=ct1, ct0_2=ct0_2,
                           s0=s0, rw0=rw0,
                           s1=s1, rw1=rw1, d0=d0, d1=d1, fail_p=fail_p, load0=load0, load1=load1, run0=run0,
                           idle0=idle0, run1=run1, idle1=idle1, standby=standby, crew=crew, digital=digital,
                           standard_minutes=standard_minutes, a0=a0, wk0=wk0, k2=k2, j2=j2)


def machine_days(proj: SimpleNamespace, grid: SimpleNamespace, mpp: int) -> SimpleNamespace:
    """Every day of each machine's two windows: machine, day and period (0 baseline, 1 reporting)."""
    md_m_parts, md_d_parts, md_per_parts = [], [], []
    for p in range(proj.n):
        for per, (a, b) in enumerate(((proj.b0[p], proj.b1[p]), (proj.r0[p], proj.r1[p]))):
            days = np.arange(grid.day_of_month0[a], grid.day_of_month0[b])
            for j in range(mpp):
                md_m_parts.append(np.full(len(days), p * mpp + j))
                md_d_parts.append(days)
                md_per_parts.append(np.full(len(days), per, np.int8))
    md_m, md_d, md_per = np.concatenate(md_m_parts), np.concatenate(md_d_parts), np.concatenate(md_per_parts)
    working = grid.working_day[md_d]
    w = np.flatnonzero(working)
    return SimpleNamespace(n=len(md_m), m=md_m, d=md_d, per=md_per, working=working, w=w, n_w=len(w),
                           wm=md_m[w], wd=md_d[w], wp=md_per[w], after=md_per[w] == 1)


def _noise(r_day_draw: np.ndarray, ar: float, r_scn: np.random.Generator, machine: np.ndarray, day: np.ndarray,
           n_m: int, n_days: int) -> np.ndarray:
    """Standard-normal noise per machine-day: ``r_day_draw`` (independent) or, with ``ar`` > 0, an AR(1) of
    unit variance over the days of each machine."""
    if ar <= 0:
        return r_day_draw
    return _ar1(r_scn, n_m, n_days, ar)[machine, day]


def draw_working_days(r: np.random.Generator, mach: SimpleNamespace, md: SimpleNamespace, grid: SimpleNamespace
                      ) -> SimpleNamespace:
    """The time model of each working machine-day (the ``failures`` and ``load`` of the module docstring).

    Setup at the start, ``Binomial(2, p)`` failures, production ``APT = load x (PBT - setup - failures)``
    split in three runs around the failures, no-order time at the end; the day's pieces on the working clock
    cut at the breaks and the shift change. Returns the pieces (``row`` = working machine-day, ``ps``, ``pe``
    [s on the working clock], ``code``, ``reason``) and ``apt_sh`` [s] per shift."""
    n_w, wm, wd, after = md.n_w, md.wm, md.wd, md.after
    ar = _ar1(r, mach.n, grid.n_days, 0.7)
    setup = r.integers(SETUP_RANGE_S[0], SETUP_RANGE_S[1] + 1, n_w)
    nf = r.binomial(2, mach.fail_p[wm])
    fd = np.clip(np.rint(r.lognormal(math.log(FAIL_MEDIAN_S), FAIL_SIGMA, (n_w, 2))), FAIL_MIN_S,
                 FAIL_MAX_S).astype(np.int64)
    fd[:, 0] *= nf >= 1
    fd[:, 1] *= nf >= 2
    level = np.where(after, mach.load1[wm], mach.load0[wm])
    load = np.clip(level * (1 + 0.10 * ar[wm, wd]), 0.05, 1.0)
    avail = PBT_S - setup - fd.sum(1)
    apt_plan = np.rint(load * avail).astype(np.int64)
    u = np.sort(r.random((n_w, 2)), axis=1)
    a1s = np.floor(apt_plan * u[:, 0]).astype(np.int64)
    a2s = np.floor(apt_plan * u[:, 1]).astype(np.int64) - a1s
    a3s = apt_plan - a1s - a2s
    slot_len = np.stack([setup, a1s, fd[:, 0], a2s, fd[:, 1], a3s, avail - apt_plan], axis=1)
    slot_code = np.array([SETUP, RUN, FAIL, RUN, FAIL, RUN, IDLE])
    slot_end = np.cumsum(slot_len, axis=1)  # working-clock ends, last = PBT_S
    fail_reason = r.integers(0, len(FAIL_REASONS), (n_w, 2))
    # pieces: slot boundaries plus the break points and the shift change on the working clock
    pts = np.sort(np.concatenate([np.zeros((n_w, 1), np.int64), slot_end,
                                  np.tile(np.array([BREAK1_W, EARLY_W, BREAK2_W]), (n_w, 1))], axis=1), axis=1)
    ps, pe = pts[:, :-1], pts[:, 1:]
    slot = (slot_end[:, None, :] <= ps[:, :, None]).sum(2)  # slot holding each piece's start
    keep = pe > ps
    row = np.broadcast_to(np.arange(n_w)[:, None], ps.shape)[keep]
    ps, pe, slot = ps[keep], pe[keep], slot[keep]
    code = slot_code[slot]
    # a failure that runs into a break is repaired during the break: production resumes after it
    slot_start = np.where(slot > 0, slot_end[row, np.maximum(slot - 1, 0)], 0)
    code[(code == FAIL) & np.isin(ps, (BREAK1_W, BREAK2_W)) & (slot_start < ps)] = RUN
    is_run = code == RUN
    apt_sh = np.stack([np.bincount(row, (pe - ps) * (is_run & (ps < EARLY_W)), n_w),
                       np.bincount(row, (pe - ps) * (is_run & (ps >= EARLY_W)), n_w)], axis=1).astype(np.int64)
    fail_slot = np.where(slot == 2, 0, 1)
    reason = np.where(code == FAIL, 10 + fail_reason[row, fail_slot], code)
    return SimpleNamespace(row=row, ps=ps, pe=pe, code=code, reason=reason, apt_sh=apt_sh, apt=apt_sh.sum(1))


def state_records(day: SimpleNamespace, md: SimpleNamespace, mach: SimpleNamespace, proj: SimpleNamespace,
                  grid: SimpleNamespace) -> SimpleNamespace:
    """State records (machine, start, end [epoch s], category code, reason code): the working days' pieces on
    the wall clock, the breaks, and ``not_scheduled`` outside the shifts within each site's range; contiguous
    records of the same machine, state and reason merged."""
    wall, wm, wd, n_w = grid.wall, md.wm, md.wd, md.n_w
    dd = wd[day.row]

    def to_wall(x, end):
        a, b = (x > BREAK1_W, x > BREAK2_W) if end else (x >= BREAK1_W, x >= BREAK2_W)
        return np.where(b, wall["t1830"][dd] + x - BREAK2_W,
                        np.where(a, wall["t1030"][dd] + x - BREAK1_W, wall["t06"][dd] + x))

    st_s_parts, st_e_parts = [to_wall(day.ps, False)], [to_wall(day.pe, True)]
    st_m_parts, st_c_parts, st_r_parts = [wm[day.row]], [day.code], [day.reason]
    for a, b in (("t10", "t1030"), ("t18", "t1830")):  # breaks
        st_s_parts.append(wall[a][wd])
        st_e_parts.append(wall[b][wd])
        st_m_parts.append(wm)
        st_c_parts.append(np.full(n_w, BREAK))
        st_r_parts.append(np.full(n_w, BREAK))
    # not_scheduled: the complement of the machine's 06:00-22:00 working days within its site range
    o = np.lexsort((wd, wm))
    om, od = wm[o], wd[o]
    first = np.r_[True, om[1:] != om[:-1]]
    last = np.r_[om[1:] != om[:-1], True]
    m_ent = proj.ent_of[mach.proj_of]
    rng0 = grid.month_edge[grid.site_m0[m_ent]]
    rng1 = grid.month_edge[grid.site_m1[m_ent]]
    g_s = np.where(first, rng0[om], wall["t22"][np.r_[0, od[:-1]]])
    g_e = wall["t06"][od]
    g_m = om
    g_s = np.r_[g_s, wall["t22"][od[last]]]
    g_e = np.r_[g_e, rng1[om[last]]]
    g_m = np.r_[g_m, om[last]]
    machines_without_days = np.setdiff1d(np.arange(mach.n), om)
    g_s = np.r_[g_s, rng0[machines_without_days]]
    g_e = np.r_[g_e, rng1[machines_without_days]]
    g_m = np.r_[g_m, machines_without_days]
    ok = g_e > g_s
    g_s, g_e, g_m = g_s[ok], g_e[ok], g_m[ok]
    gp = mach.proj_of[g_m]
    me = grid.month_edge
    comm_mid = (me[proj.b1[gp]] + me[proj.r0[gp]]) // 2
    g_r = np.where((g_s <= comm_mid) & (g_e > comm_mid), 20,
                   np.where((g_s < me[proj.b0[gp]]) | (g_e > me[proj.r1[gp]]), 21, 22))
    st_s_parts.append(g_s)
    st_e_parts.append(g_e)
    st_m_parts.append(g_m)
    st_c_parts.append(np.full(len(g_s), OFF))
    st_r_parts.append(g_r)
    st_s, st_e, st_m = np.concatenate(st_s_parts), np.concatenate(st_e_parts), np.concatenate(st_m_parts)
    st_c, st_r = np.concatenate(st_c_parts), np.concatenate(st_r_parts)
    o = np.lexsort((st_s, st_m))
    st_s, st_e, st_m, st_c, st_r = st_s[o], st_e[o], st_m[o], st_c[o], st_r[o]
    cont = np.r_[False, (st_m[1:] == st_m[:-1]) & (st_c[1:] == st_c[:-1]) & (st_r[1:] == st_r[:-1])
                 & (st_s[1:] == st_e[:-1])]
    head = np.flatnonzero(~cont)
    st_e = np.maximum.reduceat(st_e, head) if len(head) else st_e
    return SimpleNamespace(s=st_s[head], e=st_e, m=st_m[head], c=st_c[head], r=st_r[head])


def draw_production(r: np.random.Generator, mach: SimpleNamespace, md: SimpleNamespace, day: SimpleNamespace,
                    sc: Scenario, r_scn: np.random.Generator, n_days: int) -> SimpleNamespace:
    """Counts per working machine-day and shift: produced at the day's cycle time, scrap and rework at the
    day's (over-dispersed) rates; the day's product (second product with the scenario's share)."""
    wm, wd, after, n_w = md.wm, md.wd, md.after, md.n_w
    second = np.zeros(n_w, bool)
    if sc.products_per_machine > 1:
        second = r_scn.random(n_w) < np.where(after, sc.product_share[1], sc.product_share[0])
    k = np.where(second, mach.k2[wm], 1.0)
    j = np.where(second, mach.j2[wm], 1.0)
    ct_noise = _noise(r.normal(0.0, 1.0, n_w), sc.ar_noise, r_scn, wm, wd, mach.n, n_days)
    ct_day = np.where(second, np.where(after, mach.ct1[wm] * mach.k2[wm], mach.ct0_2[wm]),
                      np.where(after, mach.ct1[wm], mach.ct0[wm]) * k) * np.exp(sc.speed_noise * ct_noise)
    produced = np.rint(day.apt_sh / ct_day[:, None]).astype(np.int64)
    d_noise = _noise(r.normal(0.0, 1.0, n_w), sc.ar_noise, r_scn, wm, wd, mach.n, n_days)
    dfac = np.exp(-0.045 + 0.3 * d_noise)  # over-dispersion of the day's defect rates (mean 1)
    ps_day = np.clip(np.where(after, mach.s1[wm], mach.s0[wm]) * j * dfac, 0, 0.5)
    pr_day = np.clip(np.where(after, mach.rw1[wm], mach.rw0[wm]) * j * dfac, 0, 0.5)
    scrap = r.binomial(produced, ps_day[:, None])
    rework = r.binomial(produced - scrap, np.clip(pr_day / (1 - ps_day), 0, 1)[:, None])
    return SimpleNamespace(second=second, produced=produced, scrap=scrap, rework=rework,
                           good=produced - scrap - rework, ps_day=ps_day, pr_day=pr_day,
                           d0=np.clip(mach.d0[wm] * j, 0, 1), d1=np.clip(mach.d1[wm] * j, 0, 1))


def draw_quality(r: np.random.Generator, md: SimpleNamespace, prod: SimpleNamespace, grid: SimpleNamespace,
                 mach: SimpleNamespace) -> SimpleNamespace:
    """Two inspected units per machine and shift, failing with the day's defect probability."""
    n_w, wm, wd = md.n_w, md.wm, md.wd
    k_q = INSPECTIONS_PER_SHIFT
    sh_start = np.stack([grid.wall["t06"][wd], grid.wall["t14"][wd]], axis=1)
    q_w = np.repeat(np.arange(n_w), 2 * k_q)
    q_sh = np.tile(np.repeat([0, 1], k_q), n_w)
    q_k = np.tile(np.arange(k_q), 2 * n_w)
    spacing = (8 * H) // k_q
    q_ts = sh_start[q_w, q_sh] + q_k * spacing + spacing // 2 + r.integers(-spacing // 3, spacing // 3 + 1,
                                                                             len(q_w))
    q_fail = r.random(len(q_w)) < (prod.ps_day + prod.pr_day)[q_w]
    q_defect = np.where(q_fail, np.array(QUALITY_DEFECTS, dtype=object)[
        r.integers(0, len(QUALITY_DEFECTS), len(q_w))], None)  # type: ignore[call-overload]  # numpy takes None; its types do not
    day_txt = np.strings.replace(np.datetime_as_string(grid.dates, unit="D"), "-", "")
    q_unit = np.strings.add(np.strings.add(np.strings.add(mach.ids[wm[q_w]].astype(str), "-"),
                                           day_txt[wd[q_w]]),
                            np.strings.add("-", (q_sh * k_q + q_k + 1).astype(str)))
    return SimpleNamespace(w=q_w, ts=q_ts, fail=q_fail, defect=q_defect, unit=q_unit, k=k_q)


def site_temperature(r_scn: np.random.Generator, grid: SimpleNamespace, n_e: int) -> np.ndarray:
    """Daily mean outdoor temperature [deg C] per site and day: a yearly cycle (coldest in mid January,
    warmest in mid July, 17 +- 10 deg C) plus AR(1) weather noise (sd 2.5 deg C, 0.7 from day to day)."""
    doy = (grid.dates - grid.dates.astype("datetime64[Y]")).astype(np.int64)
    cycle = 17.0 - 10.0 * np.cos(2 * np.pi * (doy - 15) / 365.25)
    return cycle[None, :] + 2.5 * _ar1(r_scn, n_e, grid.n_days, 0.7)


def degree_days_10(temp: np.ndarray) -> np.ndarray:
    """Heating (below 14 deg C) plus cooling (above 22 deg C) degree days per day, in units of 10."""
    return (np.clip(14.0 - temp, 0, None) + np.clip(temp - 22.0, 0, None)) / 10.0


def draw_energy(r: np.random.Generator, mach: SimpleNamespace, md: SimpleNamespace, day: SimpleNamespace,
                proj: SimpleNamespace, grid: SimpleNamespace, sc: Scenario, r_scn: np.random.Generator,
                temp: np.ndarray | None) -> SimpleNamespace:
    """Energy per machine and day [kWh]: run, idle and standby power (before or after the project), the
    scenario's new load and weather load, and meter noise (2 %)."""
    after = md.per == 1
    run_kw = np.where(after, mach.run1[md.m], mach.run0[md.m])
    idle_kw = np.where(after, mach.idle1[md.m], mach.idle0[md.m])
    apt_md = np.zeros(md.n)
    apt_md[md.w] = day.apt / H
    sb = mach.standby[md.m]
    base = np.where(md.working, run_kw * apt_md + idle_kw * (16 - apt_md) + sb * 8, sb * 24)
    extra = np.zeros(md.n)  # energy unrelated to the project: a new load, the weather
    if sc.level_shift > 0:
        lo, hi = grid.day_of_month0[proj.b0], grid.day_of_month0[proj.b1]
        shift_day = lo + np.floor((0.25 + 0.5 * r_scn.random(proj.n)) * (hi - lo)).astype(np.int64)
        first = md.m % mach.mpp == 0
        on = first & (md.d >= shift_day[mach.proj_of[md.m]])
        extra += np.where(on, sc.level_shift * mach.wk0[md.m] / 7, 0.0)
    else:
        shift_day = np.full(proj.n, -1)
    if sc.weather > 0:
        assert temp is not None  # drawn whenever the scenario has weather
        site = proj.ent_of[mach.proj_of[md.m]]
        extra += sc.weather * mach.wk0[md.m] / 7 * degree_days_10(temp[site, md.d])
    noise = _noise(r.normal(0.0, 1.0, md.n), sc.ar_noise, r_scn, md.m, md.d, mach.n, grid.n_days)
    kwh = np.round((base + extra) * (1 + 0.02 * noise), 3)
    return SimpleNamespace(kwh=kwh, apt_md=apt_md, extra=extra, shift_day=shift_day)


def outage_mask(r_scn: np.random.Generator, days: int, md: SimpleNamespace, mach: SimpleNamespace,
                proj: SimpleNamespace, grid: SimpleNamespace) -> np.ndarray:
    """Machine-days (bool over ``md``) of an outage of ``days`` consecutive days on the first machine of
    each project, in its baseline or reporting window (half the projects each; random start)."""
    if days <= 0:
        return np.zeros(md.n, bool)
    in_rep = r_scn.random(proj.n) < 0.5
    a = np.where(in_rep, grid.day_of_month0[proj.r0], grid.day_of_month0[proj.b0])
    b = np.where(in_rep, grid.day_of_month0[proj.r1], grid.day_of_month0[proj.b1])
    start = a + np.floor(r_scn.random(proj.n) * np.maximum(b - a - days, 1)).astype(np.int64)
    p = mach.proj_of[md.m]
    return (md.m % mach.mpp == 0) & (md.d >= start[p]) & (md.d < start[p] + days)


def draw_labour(r: np.random.Generator, mach: SimpleNamespace, md: SimpleNamespace, prod: SimpleNamespace,
                proj: SimpleNamespace, grid: SimpleNamespace) -> SimpleNamespace:
    """Labour per work centre and working day: headcount (crew, 3 % absence), attendance and work hours,
    and standard hours earned (good units x standard minutes of the day's product)."""
    n_p, mpp, n_days = proj.n, mach.mpp, grid.n_days
    wc_crew0 = np.bincount(mach.proj_of, mach.crew, n_p).astype(np.int64)
    wc_crew1 = np.maximum(1, np.rint(wc_crew0 * (1 - r.uniform(0.0, 0.3, n_p)))).astype(np.int64)
    w = md.w
    lab_first = w[md.m[w] % mpp == 0]  # one working machine-day per work centre and day
    md_p = mach.proj_of[md.m]
    lab_p, lab_d, lab_after = md_p[lab_first], md.d[lab_first], md.per[lab_first] == 1
    lab_crew = np.where(lab_after, wc_crew1[lab_p], wc_crew0[lab_p])
    headcount = 2 * lab_crew - r.binomial(2 * lab_crew, 0.03)
    headcount = np.maximum(headcount, 1)
    attendance = headcount * 8.0
    work_hours = np.round(attendance - headcount * 0.5 - attendance * r.uniform(0.0, 0.05, len(lab_p)), 2)
    minutes = mach.standard_minutes[md.wm] * np.where(prod.second, mach.k2[md.wm], 1.0)
    earned_w = prod.good.sum(1) * minutes / 60.0
    lab_key = np.full(n_p * n_days, -1, np.int64)
    lab_key[lab_p * n_days + lab_d] = np.arange(len(lab_p))
    earned = np.round(np.bincount(lab_key[mach.proj_of[md.wm] * n_days + md.wd], earned_w, len(lab_p)), 4)
    return SimpleNamespace(p=lab_p, d=lab_d, headcount=headcount, attendance=attendance, work_hours=work_hours,
                           earned=earned)


def draw_costs(r: np.random.Generator, ent: SimpleNamespace, proj: SimpleNamespace, mach: SimpleNamespace,
               md: SimpleNamespace, prod: SimpleNamespace, grid: SimpleNamespace, sc: Scenario,
               r_scn: np.random.Generator) -> SimpleNamespace:
    """Monthly price index per site and monthly operating cost per work centre and category,
    ``price_index x (fixed_k + variable_k x produced) x (1 - red_k) x noise`` (module docstring)."""
    n_p, n_months = proj.n, grid.n_months
    pi_site_parts, pi_month_parts, pi_val_parts = [], [], []
    price_index = np.full((ent.n, n_months), np.nan)
    for e in np.flatnonzero(grid.has_site):
        k = np.arange(grid.site_m0[e], grid.site_m1[e])
        steps = 1 + ent.infl[e] + r.normal(0.0, 0.0015, len(k) - 1)
        v = np.round(np.r_[1.0, np.cumprod(steps)], 5)
        price_index[e, k] = v
        pi_site_parts.append(np.full(len(k), e))
        pi_month_parts.append(k)
        pi_val_parts.append(v)
    pi_site, pi_month = np.concatenate(pi_site_parts), np.concatenate(pi_month_parts)
    pi_val = np.concatenate(pi_val_parts)
    prod_md = np.zeros(md.n, np.int64)
    prod_md[md.w] = prod.produced.sum(1)
    md_p = mach.proj_of[md.m]
    q_pm = np.bincount(md_p * n_months + grid.month_of_day[md.d], prod_md, n_p * n_months).reshape(n_p, n_months)
    unit_cost = r.uniform(5.0, 40.0, n_p)  # CNY per unit at the nominal baseline point
    sh_mat = r.uniform(0.45, 0.60, n_p)
    sh_en = r.uniform(0.06, 0.12, n_p)
    sh_mt = r.uniform(0.06, 0.12, n_p)
    share = {"labour": 1 - sh_mat - sh_en - sh_mt, "energy": sh_en, "material": sh_mat, "maintenance": sh_mt}
    ct0 = mach.ct0
    q0_nominal = np.bincount(mach.proj_of, DAYS_PER_MONTH_WORKING * mach.a0 * H / ct0, n_p)  # units / month
    eff = proj.eff
    red_other = (eff["operating_cost"] - sh_en * eff["unit_energy"]) / (1 - sh_en)
    red = {"labour": red_other, "energy": eff["unit_energy"], "material": red_other, "maintenance": red_other}
    c_p_parts, c_m_parts, c_cat_parts, c_amt_parts = [], [], [], []
    for p in range(n_p):
        for per, (a, b) in enumerate(((proj.b0[p], proj.b1[p]), (proj.r0[p], proj.r1[p]))):
            k = np.arange(a, b)
            idx = price_index[proj.ent_of[p], k]
            for ci, cat in enumerate(COST_CATEGORIES):
                total = share[cat][p] * unit_cost[p] * q0_nominal[p]
                fixed = FIXED_SHARE[cat] * total
                var = (1 - FIXED_SHARE[cat]) * share[cat][p] * unit_cost[p]
                amt = idx * (fixed + var * q_pm[p, k]) * (1 - red[cat][p] * per)
                z = r.normal(0.0, 1.0, len(k))
                if sc.ar_noise > 0:
                    z = _ar1(r_scn, 1, len(k), sc.ar_noise)[0]
                amt = np.round(amt * (1 + 0.02 * z), 2)
                c_p_parts.append(np.full(len(k), p))
                c_m_parts.append(k)
                c_cat_parts.append(np.full(len(k), ci))
                c_amt_parts.append(amt)
    c_p, c_m, c_cat, c_amt = map(np.concatenate, (c_p_parts, c_m_parts, c_cat_parts, c_amt_parts))
    return SimpleNamespace(pi_site=pi_site, pi_month=pi_month, pi_val=pi_val, price_index=price_index,
                           prod_md=prod_md, q_pm=q_pm, unit_cost=unit_cost, share=share, q0_nominal=q0_nominal,
                           red=red, p=c_p, m=c_m, cat=c_cat, amount=c_amt)


def draw_development_cycles(r: np.random.Generator, ent: SimpleNamespace, proj: SimpleNamespace,
                            grid: SimpleNamespace) -> SimpleNamespace:
    """Eight new products per project released in the baseline window and eight whose design starts in the
    reporting window; cycle ``T0 x lognormal(sd 0.15) x (1 - R)`` after commissioning [days]."""
    nb = nr = 8
    months = grid.months
    dv_p_parts, dv_ds_parts, dv_rel_parts = [], [], []
    for p in range(proj.n):
        e = int(proj.ent_of[p])
        ce_day = int(months[proj.r0[p]].astype(np.int64))
        lo, hi = int(months[proj.b0[p]].astype(np.int64)), int(months[proj.b1[p]].astype(np.int64))
        rel = r.integers(lo, hi, nb)  # released in the baseline window, designed before the project
        ln = np.maximum(30, np.rint(ent.t0_days[e] * r.lognormal(-0.15 ** 2 / 2, 0.15, nb))).astype(np.int64)
        dv_p_parts.append(np.full(nb, p))
        dv_ds_parts.append(rel - ln)
        dv_rel_parts.append(rel)
        lo, hi = int(months[proj.r0[p]].astype(np.int64)), int(months[proj.r1[p]].astype(np.int64))
        ds = r.integers(lo, hi, nr)  # design started in the reporting window
        f = np.where(ds >= ce_day, 1 - proj.eff["development_cycle"][p], 1.0)
        ln = np.maximum(30, np.rint(ent.t0_days[e] * f * r.lognormal(-0.15 ** 2 / 2, 0.15, nr))).astype(np.int64)
        dv_p_parts.append(np.full(nr, p))
        dv_ds_parts.append(ds)
        dv_rel_parts.append(ds + ln)
    dv_p, dv_ds, dv_rel = map(np.concatenate, (dv_p_parts, dv_ds_parts, dv_rel_parts))
    o = np.lexsort((dv_ds, dv_p))
    dv_p, dv_ds, dv_rel = dv_p[o], dv_ds[o], dv_rel[o]
    dv_num = np.arange(len(dv_p)) - np.searchsorted(dv_p, dv_p) + 1
    ids = _obj([f"{proj.wc_ids[p]}-NP{k:02d}" for p, k in zip(dv_p, dv_num)])
    return SimpleNamespace(p=dv_p, design_start=dv_ds, release=dv_rel, e=proj.ent_of[dv_p], ids=ids)


def draw_designations(r: np.random.Generator, ent: SimpleNamespace, proj: SimpleNamespace, mach: SimpleNamespace,
                      grid: SimpleNamespace) -> list[tuple]:
    """Demonstration projects (by declared efficiency and noise), smart factories and digital workshops:
    tuples (enterprise index, project index or -1, scope, designation, level, date [epoch s]). Recognised
    scopes get every machine digital (``mach.digital`` is updated)."""
    n_p, n_e, ent_of = proj.n, ent.n, proj.ent_of
    ce_edge = grid.month_edge[proj.r0]
    n_demo = max(1, int(round(n_p * 25 / 120)))
    score = proj.declared["efficiency"] + r.normal(0.0, 0.15, n_p)
    demo = np.sort(np.argsort(-score, kind="stable")[:n_demo])
    des = []
    day_s = 86400
    for p in demo.tolist():
        des.append((ent_of[p], p, proj.wc_ids[p], "demonstration_project",
                    "municipal" if proj.investment[p] >= 30e6 else "district",
                    int(ce_edge[p]) + int(r.integers(30, 121)) * day_s))
    ents = np.unique(ent_of)
    n_sf = min(len(ents), max(1, int(round(n_e * 7 / 60))))
    multi = np.bincount(ent_of, minlength=n_e)[ents] >= 2
    pref = np.r_[r.permutation(ents[multi]), r.permutation(ents[~multi])]
    sf = np.sort(pref[:n_sf])
    last_ce = np.zeros(n_e, np.int64)
    np.maximum.at(last_ce, ent_of, ce_edge)
    for e in sf.tolist():
        des.append((e, -1, proj.site_ids[e], "smart_factory", "municipal",
                    int(last_ce[e]) + int(r.integers(60, 181)) * day_s))
    n_dw = min(n_p, max(1, int(round(n_e * 17 / 60))))
    dw = np.sort(r.choice(n_p, n_dw, replace=False))
    for p in dw.tolist():
        des.append((ent_of[p], -1, proj.wc_ids[p], "digital_workshop",
                    "municipal" if r.random() < 0.6 else "district",
                    int(ce_edge[p]) + int(r.integers(30, 151)) * day_s))
    # recognised scopes meet the digital-equipment criterion
    mach.digital[np.isin(mach.proj_of, dw) | np.isin(ent_of[mach.proj_of], sf)] = True
    des.sort(key=lambda x: (x[5], x[0], x[3]))
    return des


def assemble_tables(ent, proj, mach, md, day, st, prod, qual, en, lab, cost, dev, des, grid, sc, temp,
                    r_mach: np.random.Generator, r_scn: np.random.Generator, keep_energy: np.ndarray,
                    keep_production: np.ndarray) -> dict[str, pd.DataFrame]:
    """The canonical tables (exact canonical columns) from the drawn arrays."""
    tz, wall = grid.tz, grid.wall
    n_m, n_p, mpp = mach.n, proj.n, mach.mpp
    ts = lambda x: to_timestamps(np.asarray(x, dtype=np.int64), tz)  # noqa: E731
    m_ent = proj.ent_of[mach.proj_of]
    equipment = _frame("equipment", {
        "equipment_id": mach.ids,
        "name": _obj([f"{proj.wc_ids[p]} machine {j + 1}" for p, j in zip(mach.proj_of, np.tile(np.arange(mpp), n_p))]),
        "work_center": proj.wc_ids[mach.proj_of], "area": proj.area_ids[m_ent], "site": proj.site_ids[m_ent],
        "enterprise": ent.ids[m_ent], "timezone": np.full(n_m, tz, dtype=object), "digital": mach.digital,
        "epc": np.round(3600.0 / mach.pri, 4),
    })
    enterprises = _frame("enterprises", {
        "enterprise_id": ent.ids, "name": ent.name, "industry": ent.industry, "district": ent.district,
        "park": _obj([DISTRICTS[d] for d in ent.district]),
    })
    product_of_m = _obj([f"{proj.wc_ids[p]}-PRD" for p in mach.proj_of])
    unit_value = np.round(cost.unit_cost[mach.proj_of] * r_mach.uniform(1.15, 1.5, n_m), 2)
    # the running product of each machine, and the new products of the work centre (development cycles)
    np_m = (dev.p[:, None] * mpp + np.arange(mpp)[None, :]).ravel()  # each new product on its scope's machines
    np_i = np.repeat(np.arange(len(dev.p)), mpp)
    pid = [product_of_m, dev.ids[np_i]]
    peq = [mach.ids, mach.ids[np_m]]
    ppri = [mach.pri, np.round(mach.pri[np_m] * r_mach.uniform(0.9, 1.1, len(np_m)), 1)]
    psm = [mach.standard_minutes, np.round(mach.standard_minutes[np_m] * 1.05, 3)]
    puv = [unit_value, np.round(unit_value[np_m] * r_mach.uniform(1.0, 1.3, len(np_m)), 2)]
    second_of_m = _obj([f"{proj.wc_ids[p]}-PRD2" for p in mach.proj_of])
    if sc.products_per_machine > 1:  # the second running product of each machine
        pid.insert(1, second_of_m)
        peq.insert(1, mach.ids)
        ppri.insert(1, np.round(mach.pri * mach.k2, 1))
        psm.insert(1, np.round(mach.standard_minutes * mach.k2, 3))
        puv.insert(1, np.round(unit_value * mach.k2 * r_scn.uniform(0.9, 1.1, n_m), 2))
    products = _frame("products", {"product_id": np.concatenate(pid), "equipment_id": np.concatenate(peq),
                                   "pri": np.concatenate(ppri), "standard_minutes": np.concatenate(psm),
                                   "unit_value": np.concatenate(puv)})
    # calendar: two shifts and two breaks per working day of each site's range
    cal_s_parts, cal_e_parts, cal_scope_parts, cal_kind_parts, cal_name_parts = [], [], [], [], []
    for e in np.flatnonzero(grid.has_site):
        dsel = np.arange(grid.day_of_month0[grid.site_m0[e]], grid.day_of_month0[grid.site_m1[e]])
        dsel = dsel[grid.working_day[dsel]]
        for a, b, kind, name in (("t06", "t14", "shift", "early"), ("t10", "t1030", "break", "break"),
                                 ("t14", "t22", "shift", "late"), ("t18", "t1830", "break", "break")):
            cal_s_parts.append(wall[a][dsel])
            cal_e_parts.append(wall[b][dsel])
            cal_scope_parts.append(np.full(len(dsel), e))
            cal_kind_parts.append(np.full(len(dsel), kind, object))
            cal_name_parts.append(np.full(len(dsel), name, object))
    cal_s, cal_e, cal_scope = map(np.concatenate, (cal_s_parts, cal_e_parts, cal_scope_parts))
    cal_kind, cal_name = np.concatenate(cal_kind_parts), np.concatenate(cal_name_parts)
    o = np.lexsort((cal_s, cal_scope))
    calendar = _frame("calendar", {
        "scope": proj.site_ids[cal_scope[o]], "start": ts(cal_s[o]), "end": ts(cal_e[o]), "kind": cal_kind[o],
        "name": cal_name[o],
    })
    reason_text = {SETUP: "product changeover", IDLE: "no order", BREAK: "break", RUN: None,
                   20: "commissioning (no data)", 21: "no data", 22: None,
                   **{10 + i: r for i, r in enumerate(FAIL_REASONS)}}
    codes = np.array(sorted(reason_text))
    reason_arr = np.array([reason_text[c] for c in codes], dtype=object)[np.searchsorted(codes, st.r)]
    states = _frame("states", {
        "equipment_id": mach.ids[st.m], "start": ts(st.s), "end": ts(st.e),
        "state": np.array(STATE_NAMES, dtype=object)[st.c], "category": np.array(STATE_CATEGORIES, dtype=object)[st.c],
        "reason": reason_arr,
    })
    n_w, wm, wd = md.n_w, md.wm, md.wd
    sh_start = np.stack([wall["t06"][wd], wall["t14"][wd]], axis=1)
    sh_end = np.stack([wall["t14"][wd], wall["t22"][wd]], axis=1)
    pw = np.repeat(np.arange(n_w), 2)
    psh = np.tile([0, 1], n_w)
    pk = keep_production[md.w][pw]
    pw, psh = pw[pk], psh[pk]
    production = _frame("production", {
        "equipment_id": mach.ids[wm[pw]], "start": ts(sh_start[pw, psh]), "end": ts(sh_end[pw, psh]),
        "product_id": np.where(prod.second[pw], second_of_m[wm[pw]], product_of_m[wm[pw]]),
        "produced": prod.produced[pw, psh], "good": prod.good[pw, psh],
        "scrap": prod.scrap[pw, psh], "rework": prod.rework[pw, psh],
    })
    ke = np.flatnonzero(keep_energy)
    energy = _frame("energy", {
        "meter_id": _obj(np.strings.add("EM-", mach.ids.astype(str)))[md.m[ke]], "equipment_id": mach.ids[md.m[ke]],
        "start": ts(grid.day_edge[md.d[ke]]), "end": ts(grid.day_edge[md.d[ke] + 1]),
        "carrier": np.full(len(ke), "electricity", object), "quantity": en.kwh[ke],
        "unit": np.full(len(ke), "kWh", object), "reading": np.full(len(ke), "interval", object),
    })
    labour = _frame("labour", {
        "scope": proj.wc_ids[lab.p], "start": ts(wall["t06"][lab.d]), "end": ts(wall["t22"][lab.d]),
        "attendance_hours": lab.attendance, "work_hours": lab.work_hours, "headcount": lab.headcount.astype(np.int64),
        "earned_hours": lab.earned,
    })
    quality = _frame("quality", {
        "equipment_id": mach.ids[wm[qual.w]], "ts": ts(qual.ts),
        "product_id": np.where(prod.second[qual.w], second_of_m[wm[qual.w]], product_of_m[wm[qual.w]]),
        "unit_id": _obj(qual.unit), "result": np.where(qual.fail, "fail", "pass").astype(object),
        "first_pass": np.ones(len(qual.w), bool), "defect": qual.defect,
    })
    v_scope, v_start, v_end = [proj.site_ids[cost.pi_site]], [grid.month_edge[cost.pi_month]], \
        [grid.month_edge[cost.pi_month + 1]]
    v_name, v_value = [np.full(len(cost.pi_site), "price_index", object)], [cost.pi_val]
    if temp is not None:  # daily mean temperature of each site over its range
        for e in np.flatnonzero(grid.has_site):
            dsel = np.arange(grid.day_of_month0[grid.site_m0[e]], grid.day_of_month0[grid.site_m1[e]])
            v_scope.append(np.full(len(dsel), proj.site_ids[e], object))
            v_start.append(grid.day_edge[dsel])
            v_end.append(grid.day_edge[dsel + 1])
            v_name.append(np.full(len(dsel), "temperature_c", object))
            v_value.append(np.round(temp[e, dsel], 2))
    variables = _frame("variables", {
        "scope": np.concatenate(v_scope), "start": ts(np.concatenate(v_start)), "end": ts(np.concatenate(v_end)),
        "name": np.concatenate(v_name), "value": np.concatenate(v_value),
    })
    costs = _frame("costs", {
        "scope": proj.wc_ids[cost.p], "start": ts(grid.month_edge[cost.m]), "end": ts(grid.month_edge[cost.m + 1]),
        "category": np.array(COST_CATEGORIES, dtype=object)[cost.cat], "amount": cost.amount,
        "currency": np.full(len(cost.p), "CNY", object),
    })
    projects = _frame("projects", {
        "project_id": proj.ids, "enterprise_id": ent.ids[proj.ent_of], "name": proj.name, "type": proj.ptype,
        "scope": proj.wc_ids, "start": ts(grid.month_edge[proj.start_m]),
        "commissioning_end": ts(grid.month_edge[proj.r0]),
        "investment": proj.investment, "status": np.full(n_p, "completed", object),
        **{f"declared_{k}": proj.declared[k] for k in INDICATORS},
    })
    designations = _frame("designations", {
        "enterprise_id": _obj([ent.ids[x[0]] for x in des]),
        "project_id": _obj([proj.ids[x[1]] if x[1] >= 0 else None for x in des]),
        "scope": _obj([x[2] for x in des]), "designation": _obj([x[3] for x in des]),
        "level": _obj([x[4] for x in des]), "date": ts([x[5] for x in des]),
    })
    to_midnight = lambda days: localize(np.asarray(days, dtype="datetime64[D]"), 0, tz)  # noqa: E731
    development_cycles = _frame("development_cycles", {
        "enterprise_id": ent.ids[dev.e], "product_id": dev.ids,
        "design_start": ts(to_midnight(dev.design_start)), "release": ts(to_midnight(dev.release)),
    })
    return {
        "equipment": equipment, "enterprises": enterprises, "products": products, "calendar": calendar,
        "states": states, "production": production, "energy": energy, "labour": labour, "quality": quality,
        "variables": variables, "costs": costs, "projects": projects, "designations": designations,
        "development_cycles": development_cycles,
    }


def truth_table(ent, proj, mach, md, day, prod, qual, en, cost, dev, grid, keep_energy: np.ndarray,
                keep_production: np.ndarray) -> dict:
    """The known effects (``true_*``, the estimands of reference docs/reference/verification.md) and the
    realised ratios of totals over each window from the written records (columns
    :data:`TRUTH_PROJECT_COLUMNS`)."""
    n_p, n_months, eff = proj.n, grid.n_months, proj.eff
    md_p = mach.proj_of[md.m]
    key_w = md.wp.astype(np.int64) * n_p + mach.proj_of[md.wm]  # (period, project)
    key_md = md.per.astype(np.int64) * n_p + md_p

    def by_pp(key, weights):
        return np.bincount(key, weights, 2 * n_p).reshape(2, n_p)

    kp = keep_production[md.w].astype(float)  # production records written (counter outages left out)
    good_pp = by_pp(key_w, prod.good.sum(1) * kp)
    prod_pp = by_pp(key_w, prod.produced.sum(1) * kp)
    bad_pp = by_pp(key_w, (prod.scrap + prod.rework).sum(1) * kp)
    apt_pp = by_pp(key_w, day.apt / H)
    insp_pp = by_pp(np.repeat(key_w, 2 * qual.k), None)
    fail_pp = by_pp(np.repeat(key_w, 2 * qual.k), qual.fail.astype(float))
    kwh_pp = by_pp(key_md, en.kwh * keep_energy)
    days_pp = by_pp(key_md, (md.m % mach.mpp == 0).astype(float))
    deflated = cost.amount / cost.price_index[proj.ent_of[cost.p], cost.m]
    c_per = (cost.m >= proj.r0[cost.p]).astype(np.int64)
    cost_pp = by_pp(c_per * n_p + cost.p, deflated)
    dev_len = (dev.release - dev.design_start).astype(float)
    months = grid.months
    dev_b, dev_r, dev_nb, dev_nr = (np.zeros(n_p) for _ in range(4))
    for p in range(n_p):
        sel = dev.p == p
        lo, hi = months[proj.b0[p]].astype(np.int64), months[proj.b1[p]].astype(np.int64)
        mb = sel & (dev.release >= lo) & (dev.release < hi)
        lo, hi = months[proj.r0[p]].astype(np.int64), months[proj.r1[p]].astype(np.int64)
        mr = sel & (dev.design_start >= lo) & (dev.design_start < hi)
        dev_nb[p], dev_nr[p] = mb.sum(), mr.sum()
        dev_b[p] = dev_len[mb].mean() if mb.any() else np.nan
        dev_r[p] = dev_len[mr].mean() if mr.any() else np.nan

    def vals(num, den):
        with np.errstate(divide="ignore", invalid="ignore"):
            return num[0] / den[0], num[1] / den[1]

    def iso(x):
        return _obj(pd.DatetimeIndex(to_timestamps(np.asarray(x, dtype=np.int64), grid.tz)).map(
            lambda t: t.isoformat()))

    # effects at the reporting period's conditions (what the adjusted-baseline indicators measure, IPMVP
    # "avoided" use): the baseline line making the reporting period's output, against the new line, both
    # without meter or cost noise.  Energy per unit produced: the baseline line needs APT x ct0 / ct1 of the
    # day's product for the same output (the day's cycle-time factor is common to both); energy unrelated to
    # the project (a new load, the weather) is the same in both.
    rep = md.per == 1
    m = md.m
    second = np.zeros(md.n, bool)
    second[md.w] = prod.second
    j = np.where(second, mach.j2[m], 1.0)
    E = eff["efficiency"][mach.proj_of[m]]
    d0, d1 = np.clip(mach.d0[m] * j, 0, 1), np.clip(mach.d1[m] * j, 0, 1)
    ratio = np.where(second, (1 + E) * (1 - d0) / (1 - d1), (mach.ct0 / mach.ct1)[m])
    sb = mach.standby[m]
    apt_md = en.apt_md
    apt_cf = apt_md * ratio
    kwh_cf = np.where(md.working, mach.run0[m] * apt_cf + mach.idle0[m] * (16 - apt_cf) + 8 * sb, 24 * sb)
    run_kw = np.where(rep, mach.run1[m], mach.run0[m])
    idle_kw = np.where(rep, mach.idle1[m], mach.idle0[m])
    kwh_new = np.where(md.working, run_kw * apt_md + idle_kw * (16 - apt_md) + 8 * sb, 24 * sb)
    if en.extra.any():
        kwh_cf, kwh_new = kwh_cf + en.extra, kwh_new + en.extra
    true_energy = 1 - np.bincount(md_p[rep], kwh_new[rep], n_p) / np.bincount(md_p[rep], kwh_cf[rep], n_p)
    # cost per good unit at baseline prices: the baseline line making the reporting GOOD output produces
    # (1 - d1) / (1 - d0) times the units (expected yields of the day's product), at no reduction
    yield_ratio = np.where(second, (1 - d1) / (1 - d0), ((1 - mach.d1) / (1 - mach.d0))[m])
    q_cf = np.bincount(md_p * n_months + grid.month_of_day[md.d], cost.prod_md * yield_ratio,
                       n_p * n_months).reshape(n_p, n_months)
    cost_cf, cost_new = np.zeros(n_p), np.zeros(n_p)
    for p in range(n_p):
        k = np.arange(proj.r0[p], proj.r1[p])
        for cat in COST_CATEGORIES:
            fixed = FIXED_SHARE[cat] * cost.share[cat][p] * cost.unit_cost[p] * cost.q0_nominal[p]
            var = (1 - FIXED_SHARE[cat]) * cost.share[cat][p] * cost.unit_cost[p]
            cost_cf[p] += (fixed + var * q_cf[p, k]).sum()
            cost_new[p] += ((fixed + var * cost.q_pm[p, k]) * (1 - cost.red[cat][p])).sum()
    true_cost = 1 - cost_new / cost_cf
    me = grid.month_edge
    truth = {
        "project_id": proj.ids, "enterprise_id": ent.ids[proj.ent_of], "scope": proj.wc_ids, "type": proj.ptype,
        "zero_effect": proj.zero,
        "baseline_start": iso(me[proj.b0]), "baseline_end": iso(me[proj.b1]),
        "reporting_start": iso(me[proj.r0]), "reporting_end": iso(me[proj.r1]),
        "true_efficiency_change": eff["efficiency"],
        "true_defect_rate_reduction": eff["defect_rate"],
        "true_operating_cost_reduction": true_cost,
        "true_unit_energy_reduction": true_energy,
        "drawn_operating_cost_reduction": eff["operating_cost"],
        "drawn_unit_energy_reduction": eff["unit_energy"],
        "true_development_cycle_reduction": eff["development_cycle"],
    }
    realised = {
        "efficiency": vals(good_pp, apt_pp),
        "defect_rate": vals(bad_pp, prod_pp),
        "inspection_defect_rate": vals(fail_pp, insp_pp),
        "operating_cost": vals(cost_pp, prod_pp),
        "unit_energy": vals(kwh_pp * KGCE_PER_KWH, prod_pp),
        "development_cycle": (dev_b, dev_r),
    }
    for name, (vb, vr) in realised.items():
        truth[f"{name}_baseline_value"] = vb
        truth[f"{name}_reporting_value"] = vr
        with np.errstate(divide="ignore", invalid="ignore"):
            truth[f"{name}_realised"] = vr / vb - 1 if name == "efficiency" else (vb - vr) / vb
    truth.update({
        "baseline_produced": prod_pp[0].astype(np.int64), "reporting_produced": prod_pp[1].astype(np.int64),
        "baseline_apt_hours": apt_pp[0], "reporting_apt_hours": apt_pp[1],
        "baseline_days": days_pp[0].astype(np.int64), "reporting_days": days_pp[1].astype(np.int64),
        "baseline_products": dev_nb.astype(np.int64), "reporting_products": dev_nr.astype(np.int64),
    })
    return truth


def simulate_programme(n_projects: int = 120, n_enterprises: int = 60, seed: int = 0, months_before: int = 6,
                       months_after: int = 6, machines_per_project: int = 2, start: str = "2024-01-01",
                       timezone: str = "Asia/Shanghai", scenario: str | Scenario = "base"
                       ) -> dict[str, pd.DataFrame]:
    """Simulate an intelligent-transformation programme whose project effects are known.

    Parameters
    ----------
    n_projects : int, default 120
        Projects ``P0001..``; each one's scope is one work centre ``<ENT>-WC<k>``.
    n_enterprises : int, default 60
        Enterprises ``ENT001..``, one site ``<ENT>-S1`` (area ``<ENT>-A1``) each.  Every enterprise gets a
        project when ``n_projects >= n_enterprises``; the rest are spread at random.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; equal seeds and parameters give equal tables.
    months_before, months_after : int, default 6
        Whole months of data before the project start and after the end of commissioning (a scenario may
        set them).
    machines_per_project : int, default 2
        Machines ``<WC>-M1..`` per work centre.
    start : str, default "2024-01-01"
        First data month: the month of this date if it is the first of a month, else the next month.
    timezone : str, default "Asia/Shanghai"
        IANA time zone of every site.
    scenario : str or Scenario, default "base"
        One of :data:`SCENARIOS` or a :class:`Scenario`.

    Returns
    -------
    dict of str to pandas.DataFrame
        The canonical tables ``equipment``, ``enterprises``, ``products``, ``calendar``, ``states``,
        ``production``, ``energy``, ``labour``, ``quality``, ``variables``, ``costs``, ``projects``,
        ``designations``, ``development_cycles`` (exact canonical columns; timestamps tz-aware in
        ``timezone``) and ``truth_projects`` (columns :data:`TRUTH_PROJECT_COLUMNS`; see the module docstring
        for the definitions).  ``truth_projects.attrs["zhizao_simulation"]`` holds the parameters.

    Raises
    ------
    ValueError
        On a non-positive size, an unparseable ``start`` or an unknown scenario.
    """
    sc = scenario_of(scenario)
    months_before = sc.months_before or months_before
    months_after = sc.months_after or months_after
    if min(n_projects, n_enterprises, months_before, months_after, machines_per_project) < 1:
        raise ValueError("n_projects, n_enterprises, months_before, months_after and machines_per_project "
                         "must be at least 1")
    try:
        d_start = _dt.date.fromisoformat(str(start))
    except ValueError:
        raise ValueError(f"start must be a date YYYY-MM-DD, got {start!r}") from None
    tz = str(timezone)
    m_first = np.datetime64(d_start, "M") + (0 if d_start.day == 1 else 1)
    rng = np.random.default_rng(seed)
    r_ent, r_proj, r_mach, r_day, r_cost, r_dev, r_des = rng.spawn(7)
    (r_scn,) = rng.spawn(1)  # the scenario's own draws: the base programme's streams stay as they were
    ent = draw_enterprises(r_ent, int(n_enterprises))
    proj = draw_projects(r_proj, ent, int(n_projects), months_before, months_after, sc)
    grid = calendar_grid(m_first, proj, ent.n, tz)
    mach = draw_machines(r_mach, proj, int(machines_per_project), sc, r_scn)
    md = machine_days(proj, grid, mach.mpp)
    day = draw_working_days(r_day, mach, md, grid)
    st = state_records(day, md, mach, proj, grid)
    prod = draw_production(r_day, mach, md, day, sc, r_scn, grid.n_days)
    qual = draw_quality(r_day, md, prod, grid, mach)
    temp = site_temperature(r_scn, grid, ent.n) if sc.weather > 0 else None
    en = draw_energy(r_day, mach, md, day, proj, grid, sc, r_scn, temp)
    lab = draw_labour(r_day, mach, md, prod, proj, grid)
    cost = draw_costs(r_cost, ent, proj, mach, md, prod, grid, sc, r_scn)
    dev = draw_development_cycles(r_dev, ent, proj, grid)
    des = draw_designations(r_des, ent, proj, mach, grid)
    keep_energy = ~outage_mask(r_scn, sc.meter_outage_days, md, mach, proj, grid)
    keep_production = ~outage_mask(r_scn, sc.counter_outage_days, md, mach, proj, grid)
    tables = assemble_tables(ent, proj, mach, md, day, st, prod, qual, en, lab, cost, dev, des, grid, sc, temp,
                             r_mach, r_scn, keep_energy, keep_production)
    truth = truth_table(ent, proj, mach, md, day, prod, qual, en, cost, dev, grid, keep_energy, keep_production)
    truth_projects = pd.DataFrame({c: truth[c] for c in TRUTH_PROJECT_COLUMNS})
    truth_projects.attrs["zhizao_simulation"] = {
        "generator": "zhizao.simulate.programme.simulate_programme", "seed": seed, "n_projects": proj.n,
        "n_enterprises": ent.n, "months_before": months_before, "months_after": months_after,
        "machines_per_project": mach.mpp, "start": str(grid.months[0]), "timezone": tz, "scenario": sc.name,
    }
    tables["truth_projects"] = truth_projects
    return tables


# ------------------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------------------

def write_programme(tables: dict, out_dir) -> dict[str, Path]:
    """Write a simulated programme as CSV files plus a README.

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        As returned by :func:`simulate_programme`.
    out_dir : str or path-like
        Directory, created if missing; files of the same names are overwritten.

    Returns
    -------
    dict of str to pathlib.Path
        ``<name>`` -> ``<out_dir>/<name>.csv`` for every table (``truth_projects`` -> ``truth_projects.csv``)
        and ``readme`` -> ``<out_dir>/README.md``.

    Notes
    -----
    Timestamps are ISO 8601 with the UTC offset (``2024-01-01T06:00:00+08:00``), booleans ``true``/``false``,
    missing values empty fields; text is UTF-8.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    counts = {}
    for name, df in tables.items():
        p = out / f"{name}.csv"
        write_csv(df, p)
        paths[name] = p
        counts[p.name] = len(df)
    meta = tables.get("truth_projects", pd.DataFrame()).attrs.get("zhizao_simulation", {})
    params = ", ".join(f"{k}={v!r}" for k, v in meta.items() if k != "generator") or "unknown"
    ranges = ", ".join(f"{k} U({a:.2f}, {b:.2f})" for k, (a, b) in EFFECT_RANGES.items())
    lines = [
        "# Simulated intelligent-transformation programme",
        "",
        "This data is SIMULATED by zhizao's programme simulator (`zhizao.simulate.simulate_programme`); it "
        "describes no real enterprise, project or plant. Names of enterprises are invented.",
        "",
        f"- seed: {meta.get('seed', 'unknown')}",
        f"- parameters: {params}",
        f"- effects drawn per project: {ranges} (efficiency as a change, the others as reductions); "
        f"{ZERO_EFFECT_SHARE:.0%} of the projects have effects of about 0, U({ZERO_EFFECT_RANGE[0]}, "
        f"{ZERO_EFFECT_RANGE[1]})",
        "",
        "## Files",
        "",
        "| file | rows |",
        "|---|---|",
        *[f"| {f} | {n} |" for f, n in counts.items()],
        "",
        "Load order into zhizao: equipment, enterprises, products, calendar, states, production, energy, labour, "
        "quality, variables, costs, projects, designations, development_cycles. Timestamps are ISO 8601 with the "
        "UTC offset, energy in kWh, labour in hours, costs in CNY (nominal; deflate with the site's monthly "
        "`price_index` in variables). Every state record has an `end`; outside its project's windows a machine "
        "is `not_scheduled` (reason `commissioning (no data)` or `no data`).",
        "",
        "## truth_projects.csv",
        "",
        "`true_*`: the known effect of each project as the programme's indicator means it, exact by "
        "construction: efficiency as (after - before) / before, the others as (before - after) / before. "
        "Efficiency, defect rate and development cycle: the drawn effects. Unit energy and operating cost (per "
        "good unit, at baseline prices): the avoided share at the reporting period's conditions, i.e. the new "
        "line against the baseline line making the same reporting output (IPMVP avoided energy/cost); "
        "`drawn_unit_energy_reduction` and `drawn_operating_cost_reduction` are the drawn effects at nominal "
        "baseline conditions (baseline load and output, expected setup and failure time, baseline prices; cost "
        "per produced unit).",
        "",
        "`<indicator>_baseline_value`, `_reporting_value`, `_realised`: ratios of totals over the baseline window "
        "[baseline_start, baseline_end) and the reporting window [reporting_start, reporting_end), computed from "
        "the generated tables of the project's scope (its work centre):",
        "",
        "- efficiency: sum(good) / sum(hours in production states) [units/h]",
        "- defect_rate: sum(scrap + rework) / sum(produced); inspection_defect_rate: failed / inspected units",
        f"- unit_energy: sum(kWh) x {KGCE_PER_KWH} / sum(produced) [kgce/unit]",
        "- operating_cost: sum(amount / price_index of the month and site) / sum(produced) [CNY/unit at the "
        "prices of the site's first month]",
        "- development_cycle: mean days from design_start to release of the enterprise's products released in "
        "the baseline window, and of those whose design started in the reporting window",
        "",
        "The realised values differ from the true effects by noise, by the change in volume and machine mix "
        "between the windows (the fixed part of energy and cost), and, for development cycles, by other projects "
        "of the same enterprise.",
        "",
    ]
    readme = out / "README.md"
    readme.write_text("\n".join(lines), encoding="utf-8")
    paths["readme"] = readme
    from zhizao.provenance import write_sidecar

    paths["provenance"] = write_sidecar(out, generator="zhizao.simulate.simulate_programme",
                                        **{k: v for k, v in meta.items() if k != "generator"})
    return paths
