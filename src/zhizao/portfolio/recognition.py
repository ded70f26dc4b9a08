"""Recognition checks: digital workshop (数字化车间) and smart factory (智能工厂) criteria against the data.

The criteria are those of reference/transformation.md ("Recognition criteria", Chongqing about 2021-2022,
partly confirmed). Some can be computed from what the store holds; the others are declared by the enterprise
and confirmed by an assessor. Every row says which (column ``source``):

- ``"data"``: computed here; ``passed`` is True or False, or None when the data do not allow the check.
- ``"declaration to be confirmed"``: not computable from the data; ``passed`` is None.

Computed criteria
-----------------
digital equipment share
    equipment with ``digital`` true / all registered equipment of the scope (equipment whose ``digital`` is
    unknown counts as not digital, and the row says how many there are).
equipment data upload rate
    share of the registered equipment of the scope that has at least one ``states``, ``production`` or
    ``energy`` record (by ``equipment_id``, or an energy ``scope`` equal to the equipment id) in the period.
    A record counts when its time stamp lies in ``[start, end)`` or its interval overlaps it.
digital workshops (smart factory)
    distinct digital-workshop designations of the enterprise dated before the end of the period.
efficiency and operating cost change (smart factory)
    the latest stored verification results of the enterprise's projects (table ``verifications``) whose
    verdict is ``verified`` (every check passed): the improvement of one project, or the unweighted mean over
    several (the row lists them). Indicative results (a failed check) are shown with their flags and
    ``passed`` None: never a pass. Without either, the declared value of table ``projects`` is shown, as a
    declaration to be confirmed.
"""

from __future__ import annotations

import pandas as pd

from zhizao.errors import InputError, NotFound
from zhizao.messages import define
from zhizao.portfolio.registry import (
    DECLARED_COLUMNS,
    designations,
    has_table,
    in_window,
    latest_verifications,
    parse_bound,
    projects,
)

UNKNOWN_DESIGNATION = define("portfolio.unknown_designation", "unknown designation '%(designation)s'; one of %(known)s")
UNKNOWN_ENTERPRISE = define("portfolio.unknown_enterprise",
                            "unknown enterprise '%(id)s'; load it into table enterprises first")

#: ``source`` of a computed criterion and of a declared one.
DATA = "data"
DECLARATION = "declaration to be confirmed"
RECOGNITIONS = ("digital_workshop", "smart_factory")

#: Thresholds (reference/transformation.md; keep them configurable by passing ``thresholds``).
THRESHOLDS = {
    "digital_workshop": {"digital_equipment_share": 0.50, "data_upload_rate": 0.90},
    "smart_factory": {"digital_equipment_share": 0.65, "digital_workshops": 2,
                      "production_efficiency_change": 0.10, "operating_cost_change": -0.15},
}

#: Criteria that only an assessor can confirm: (criterion, description, threshold).
DECLARED_CRITERIA = {
    "digital_workshop": (
        ("equipment_networked", "Processing, inspection and logistics equipment networked; real-time "
                                "monitoring", None),
        ("mes_coverage", "MES covering planning and scheduling, process execution, logistics and warehousing, "
                         "quality tracking and equipment management; visual management", None),
        ("system_integration", "Integration of data acquisition, MES and enterprise management / design "
                               "systems", None),
    ),
    "smart_factory": (
        ("design_tool_adoption", "Design tool adoption at least 80 %, with design knowledge management", 0.80),
        ("erp_closed_loop", "ERP-centred closed loop over order, production and after-sales; remote service "
                            "for complete products", None),
        ("integrated_systems", "Integrated design, operations, manufacturing and maintenance systems with "
                               "data-driven decision support", None),
        ("other_improvement_thresholds", "The remaining improvement thresholds of the smart-factory clause "
                                         "(not found in the published criteria)", None),
    ),
}

COLUMNS = ["criterion", "description", "threshold", "operator", "value", "passed", "source", "basis",
           "evidence"]


def _bound_sql(bound: pd.Timestamp | None) -> tuple[str, list]:
    """SQL for a bound per equipment row (``tz`` in scope): aware -> instant, naive -> local time."""
    if bound is None:
        return "CAST(NULL AS TIMESTAMPTZ)", []
    if bound.tzinfo is not None:
        return "CAST(? AS TIMESTAMPTZ)", [bound.tz_convert("UTC").isoformat()]
    return "timezone(tz, CAST(? AS TIMESTAMP))", [bound.isoformat()]


def equipment_activity(ws, scope: str, start=None, end=None) -> pd.DataFrame:
    """Registered equipment of ``scope`` and whether each reported data in ``[start, end)``.

    Parameters
    ----------
    ws : zhizao.Workspace
    scope : str
        An equipment, work center, area, site or enterprise id (matched against the equipment hierarchy).
    start, end : optional
        Period bounds; naive bounds are read in each equipment's time zone; None is unbounded.

    Returns
    -------
    pandas.DataFrame
        equipment_id, digital (bool or null), reported (bool: any states, production or energy record in the
        period).
    """
    lo_sql, lo_args = _bound_sql(parse_bound(start))
    hi_sql, hi_args = _bound_sql(parse_bound(end))

    def overlap(t0: str, t1: str) -> str:
        # a point record in [lo, hi), or an interval record overlapping it
        return (f"(b.hi IS NULL OR {t0} < b.hi) AND (b.lo IS NULL OR {t1} > b.lo OR {t0} >= b.lo)")

    return ws.con.execute(f"""
        WITH eq AS (
            SELECT equipment_id, digital, coalesce(timezone, 'UTC') AS tz FROM equipment
            WHERE ? IN (equipment_id, work_center, area, site, enterprise)),
        b AS (SELECT equipment_id, digital, {lo_sql} AS lo, {hi_sql} AS hi FROM eq)
        SELECT b.equipment_id, b.digital,
            EXISTS (SELECT 1 FROM states s WHERE s.equipment_id = b.equipment_id
                    AND {overlap('s.start', 'coalesce(s."end", s.start)')})
            OR EXISTS (SELECT 1 FROM production p WHERE p.equipment_id = b.equipment_id
                    AND {overlap('coalesce(p.start, p."end")', 'p."end"')})
            OR EXISTS (SELECT 1 FROM energy n WHERE (n.equipment_id = b.equipment_id OR n.scope = b.equipment_id)
                    AND {overlap('coalesce(n.start, n."end")', 'n."end"')}) AS reported
        FROM b ORDER BY b.equipment_id""", [scope, *lo_args, *hi_args]).df()


def _row(criterion, description, threshold=None, operator=None, value=None, passed=None, source=DATA,
         basis="", evidence=None) -> dict:
    return {"criterion": criterion, "description": description, "threshold": threshold, "operator": operator,
            "value": value, "passed": passed, "source": source, "basis": basis, "evidence": list(evidence or [])}


#: Tolerance of a threshold comparison: a value equal to the threshold up to floating-point noise passes.
TOLERANCE = 1e-12


def _compare(value, operator: str, threshold) -> bool | None:
    """``value >= threshold`` or ``value <= threshold`` (within :data:`TOLERANCE`); None for no value."""
    if value is None or pd.isna(value):
        return None
    if operator == ">=":
        return bool(value >= threshold - TOLERANCE)
    return bool(value <= threshold + TOLERANCE)


def _change_row(ws, enterprise_id: str, indicator: str, criterion: str, description: str, threshold: float,
                operator: str, sign: float) -> dict:
    """Efficiency or operating-cost change from the enterprise's verified (else declared) project results.

    ``sign`` turns an improvement (positive = better) into the signed change of the criterion (+1 for
    efficiency, -1 for a cost reduction)."""
    prj = projects(ws)
    prj = prj[prj["enterprise_id"] == enterprise_id]
    ver = latest_verifications(ws, prj["project_id"])
    ver = ver[(ver["indicator"] == indicator) & ver["improvement"].notna()]
    verdict = ver["result"].map(lambda r: (r or {}).get("verdict") if isinstance(r, dict) else None)
    indicative = ver[verdict != "verified"]
    ver = ver[verdict == "verified"]
    if len(ver):
        ids = ver["project_id"].tolist()
        value = sign * float(ver["improvement"].mean())
        if len(ver) == 1:
            r = ver.iloc[0]
            ci = ""
            if r["ci_low"] is not None and pd.notna(r["ci_low"]):
                lo, hi = sorted((sign * r["ci_low"], sign * r["ci_high"]))
                conf = r["confidence"] if pd.notna(r["confidence"]) else None
                ci = f", {conf:.0%} interval {lo:+.1%} .. {hi:+.1%}" if conf else f", interval {lo:+.1%} .. {hi:+.1%}"
            basis = f"verified result of project {ids[0]} ({r['method'] or 'method not stated'}{ci})"
        else:
            basis = f"unweighted mean of the verified results of {len(ids)} projects: {', '.join(ids)}"
        return _row(criterion, description, threshold, operator, value, _compare(value, operator, threshold),
                    DATA, basis, ids)
    if len(indicative):  # results with failed checks: shown, never counted as passing
        ids = indicative["project_id"].tolist()
        value = sign * float(indicative["improvement"].mean())
        flags = sorted({f for r in indicative["result"] for f in ((r or {}).get("flags") or [])})
        return _row(criterion, description, threshold, operator, value, None, DATA,
                    f"indicative result{'s' if len(ids) > 1 else ''} of {', '.join(ids)}, not verified (failed "
                    f"checks: {', '.join(flags) or 'not stated'})", ids)
    col = DECLARED_COLUMNS[indicator]
    dec = prj[prj[col].notna()]
    if len(dec):
        ids = dec["project_id"].tolist()
        value = sign * float(dec[col].mean())
        return _row(criterion, description, threshold, operator, value, None, DECLARATION,
                    f"declared by the enterprise for {', '.join(ids)}, not verified from data "
                    "(no stored verification result)", ids)
    return _row(criterion, description, threshold, operator, None, None, DATA,
                "no verified result and no declared value for the enterprise's projects",
                prj["project_id"].tolist())


def recognition_checks(ws, enterprise_id: str, designation: str, period=(None, None), scope: str | None = None,
                       thresholds: dict | None = None) -> pd.DataFrame:
    """Check an enterprise (or one of its workshops) against the recognition criteria.

    Parameters
    ----------
    ws : zhizao.Workspace
    enterprise_id : str
        An enterprise of table ``enterprises``.
    designation : {'digital_workshop', 'smart_factory'}
    period : (start, end)
        The assessment period for the upload rate (and the date by which digital workshops must be
        recognised); half-open, naive bounds in the equipment's local time; None is unbounded.
    scope : str, optional
        The equipment scope assessed (a workshop's work_center, area or site id); default the enterprise:
        all equipment whose hierarchy names ``enterprise_id``.
    thresholds : dict, optional
        Overrides of :data:`THRESHOLDS` for ``designation`` (criterion -> value).

    Returns
    -------
    pandas.DataFrame
        One row per criterion: criterion, description (English), threshold (fraction or count; None when the
        criteria state none), operator (">=", "<=" or None), value (fraction or count; changes are signed,
        +0.12 = +12 %), passed (True, False, or None when not decidable from data), source ("data" or
        "declaration to be confirmed"), basis (how the value was obtained), evidence (equipment, project or
        designation ids behind the value).

    Raises
    ------
    ValueError
        For an unknown designation, an unknown enterprise or an unparseable period bound.
    """
    if designation not in RECOGNITIONS:
        raise InputError(UNKNOWN_DESIGNATION, designation=designation, known=list(RECOGNITIONS))
    start, end = (tuple(period) + (None, None))[:2] if period is not None else (None, None)
    parse_bound(start), parse_bound(end)
    if not has_table(ws.con, "enterprises") or not ws.con.execute(
            "SELECT count(*) FROM enterprises WHERE enterprise_id = ?", [enterprise_id]).fetchall()[0][0]:
        raise NotFound(UNKNOWN_ENTERPRISE, id=enterprise_id)
    th = {**THRESHOLDS[designation], **(thresholds or {})}
    scope = scope or enterprise_id
    eq = equipment_activity(ws, scope, start, end)
    rows = []

    n = len(eq)
    n_dig = int((eq["digital"] == True).sum()) if n else 0  # noqa: E712 - null is not digital
    n_unknown = int(eq["digital"].isna().sum()) if n else 0
    share = n_dig / n if n else None
    basis = (f"{n_dig} of {n} registered equipment of {scope} marked digital"
             + (f"; {n_unknown} without a digital flag counted as not digital" if n_unknown else "")) if n \
        else f"no registered equipment in scope {scope}"
    rows.append(_row("digital_equipment_share", "Digital equipment share of production equipment",
                     th["digital_equipment_share"], ">=", share,
                     _compare(share, ">=", th["digital_equipment_share"]), DATA, basis,
                     eq.loc[eq["digital"] == True, "equipment_id"].tolist()))  # noqa: E712

    n_rep = int(eq["reported"].sum()) if n else 0
    rate = n_rep / n if n else None
    basis = (f"{n_rep} of {n} registered equipment of {scope} sent states, production or energy records "
             f"in [{start or '-inf'}, {end or '+inf'})") if n else f"no registered equipment in scope {scope}"
    missing = eq.loc[~eq["reported"].astype(bool), "equipment_id"].tolist() if n else []
    if missing:
        basis += f"; without data: {', '.join(missing)}"
    if "data_upload_rate" in th:
        rows.append(_row("data_upload_rate", "Equipment data upload rate in the period", th["data_upload_rate"],
                         ">=", rate, _compare(rate, ">=", th["data_upload_rate"]), DATA, basis,
                         eq.loc[eq["reported"].astype(bool), "equipment_id"].tolist() if n else []))
    else:
        rows.append(_row("data_upload_rate", "Equipment data upload rate in the period", None, None, rate, None,
                         DATA, basis + " (for information: the smart-factory criteria found state no "
                         "threshold; digital workshops need at least 90 %)",
                         eq.loc[eq["reported"].astype(bool), "equipment_id"].tolist() if n else []))

    if designation == "smart_factory":
        d = designations(ws, [enterprise_id])
        d = d[(d["designation"] == "digital_workshop") & in_window(d["date"], d["tz"], None, end)]
        units = sorted({(s if isinstance(s, str) else "") + (f"#{p}" if isinstance(p, str) else "")
                        for s, p in zip(d["scope"], d["project_id"])})
        units = [u or enterprise_id for u in units]
        rows.append(_row("digital_workshops", "Recognised digital workshops", th["digital_workshops"], ">=",
                         len(units), len(units) >= th["digital_workshops"], DATA,
                         f"{len(units)} digital-workshop designation(s) of {enterprise_id}"
                         + (f" dated before {end}" if end else ""), units))
        rows.append(_change_row(ws, enterprise_id, "production_efficiency", "production_efficiency_change",
                                "Production efficiency change against the state before",
                                th["production_efficiency_change"], ">=", +1.0))
        rows.append(_change_row(ws, enterprise_id, "operating_cost", "operating_cost_change",
                                "Operating cost change against the state before",
                                th["operating_cost_change"], "<=", -1.0))

    for crit, desc, thr in DECLARED_CRITERIA[designation]:
        rows.append(_row(crit, desc, thr, ">=" if thr is not None else None, None, None, DECLARATION,
                         "declared by the enterprise; to be confirmed by an assessor", []))
    out = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("threshold", "value", "passed"):  # None, not NaN, where a criterion has no value
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out
