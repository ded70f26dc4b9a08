"""Recognition checks: a workshop or plant against the criteria of a rule set, and the conflicts of the
recognised ones.

The criteria are data (:mod:`zhizao.portfolio.rulesets`: Chongqing's digital workshop and smart factory, the
tiers of MIIT's factory ladder, versioned per authority and year). Every criterion says how it is judged
(column ``kind``):

- ``computed``: from what the store holds; ``passed`` is True or False, or None when the data do not allow
  the check (verdict ``no_data``).
- ``declared``: the enterprise declares it and an assessor confirms it against evidence (who, when,
  evidence: :func:`confirm`); verdict ``pending`` until then, then ``confirmed`` or ``not_confirmed``.
- ``information``: shown for the assessor, not judged.

The overall verdict (:func:`verdict`) is ``pass`` when every computed criterion passes and every declared one
is confirmed, ``fail`` when any computed criterion fails or any declared one is not confirmed, ``pending``
otherwise (a declaration to confirm, no data, or only indicative results). A recognised workshop or factory
whose data now fail a computed criterion is a conflict (:func:`recognition_conflicts`; shown on the programme
page, not in the bulletin).

Computed measures
-----------------
digital equipment share
    equipment with ``digital`` true / all registered equipment of the scope (equipment whose ``digital`` is
    unknown counts as not digital, and the basis says how many there are).
equipment data upload rate
    share of the registered equipment of the scope that has at least one ``states``, ``production`` or
    ``energy`` record (by ``equipment_id``, or an energy ``scope`` equal to the equipment id) in the period.
    A record counts when its time stamp lies in ``[start, end)`` or its interval overlaps it.
digital workshops (smart factory)
    distinct digital-workshop units of the enterprise recognised before the end of the period and not
    revoked by then.
efficiency and operating cost change (smart factory)
    the latest stored verification results of the enterprise's projects (table ``verifications``) whose
    verdict is ``verified`` (every check passed): the improvement of one project, or the unweighted mean over
    several (the row lists them). Indicative results (a failed check) are shown with their flags, verdict
    ``indicative``: never a pass. Without either, the declared value of table ``projects`` is shown, as a
    declaration to be confirmed.
maturity level
    the enterprise's current capability maturity level (:mod:`zhizao.portfolio.maturity`).
designation held
    whether the enterprise holds a designation (not revoked by the period's end), e.g. the advanced tier
    before the excellent one.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from zhizao.errors import InputError, NotFound
from zhizao.messages import DAY, Message, define
from zhizao.portfolio import audit
from zhizao.portfolio.dates import bound_date, store_zone, today
from zhizao.portfolio.registry import (
    DECLARED_COLUMNS,
    dates_in,
    designation_unit,
    designations,
    has_table,
    latest_verifications,
    parse_bound,
    projects,
)
from zhizao.portfolio.rulesets import Criterion, RuleSet, select

#: ``source`` of a computed criterion and of a declared one (kept for the callers of the first version).
DATA = "data"
DECLARATION = "declaration to be confirmed"
#: Designations judged by rule sets.
RECOGNITIONS = ("digital_workshop", "smart_factory", "ladder_basic", "ladder_advanced", "ladder_excellent",
                "ladder_leading", "demonstration_factory")
#: Tolerance of a threshold comparison: a value equal to the threshold up to floating-point noise passes.
TOLERANCE = 1e-12

COLUMNS = ["criterion", "description", "text_zh", "text_en", "kind", "threshold", "operator", "value", "passed",
           "verdict", "source", "basis", "evidence", "confirmation", "ruleset"]

CONFIRMATIONS_DDL = """CREATE TABLE IF NOT EXISTS criterion_confirmations (
    enterprise_id VARCHAR NOT NULL, scope VARCHAR, ruleset VARCHAR NOT NULL, criterion VARCHAR NOT NULL,
    confirmed BOOLEAN NOT NULL, assessor VARCHAR NOT NULL, confirmed_at TIMESTAMPTZ NOT NULL,
    evidence VARCHAR, comment VARCHAR, application_id VARCHAR)"""

UNKNOWN_DESIGNATION = define("recognition.unknown_designation", "unknown designation %(designation)s; one of "
                                                                "%(known)s")
UNKNOWN_ENTERPRISE = define("recognition.unknown_enterprise", "unknown enterprise %(enterprise)s; load it into "
                                                              "table enterprises first")
NOT_DECLARED = define("recognition.not_declared", "%(criterion)s is not a declared criterion of rule set %(ruleset)s "
                                                  "(declared: %(declared)s)")
B_SHARE = define("recognition.basis.share", "%(digital)s of %(n)s registered equipment of %(scope)s marked "
                                            "digital")
B_SHARE_UNKNOWN = define("recognition.basis.share_unknown", "%(digital)s of %(n)s registered equipment of %(scope)s "
                                                            "marked digital; %(unknown)s without a digital flag "
                                                            "counted as not digital")
B_NO_EQUIPMENT = define("recognition.basis.no_equipment", "no registered equipment in scope %(scope)s")
B_UPLOAD = define("recognition.basis.upload", "%(reported)s of %(n)s registered equipment of %(scope)s sent states, "
                                              "production or energy records %(period)s")
B_UPLOAD_MISSING = define("recognition.basis.upload_missing", "%(reported)s of %(n)s registered equipment of "
                                                              "%(scope)s sent states, production or energy records "
                                                              "%(period)s; without data: %(missing)s")
def _zh_day(value, lang: str, last: bool = False):
    """A period bound (ISO text) as a Chinese reader sees it: a date written out (``last``: the last day before
    an exclusive end); as stored in English, where the bounds are given as the command line takes them."""
    if lang != "zh" or not isinstance(value, str):
        return value
    if last:
        try:
            value = (pd.Timestamp(value) - pd.Timedelta(microseconds=1)).isoformat()
        except ValueError:
            return value
    return DAY(date=value)


#: the period of a data criterion: [start, end), either end open
PERIOD = define("recognition.period", "in [%(start)s, %(end)s)",
                labels={"start": _zh_day, "end": lambda v, lang: _zh_day(v, lang, last=True)})
PERIOD_FROM = define("recognition.period_from", "from %(start)s on", labels={"start": _zh_day})
PERIOD_UNTIL = define("recognition.period_until", "before %(end)s", labels={"end": _zh_day})
PERIOD_ALL = define("recognition.period_all", "at any time")
B_WORKSHOPS = define("recognition.basis.workshops", "%(n)s digital-workshop designation(s) of %(enterprise)s "
                                                    "recognised by %(end)s and not revoked")
B_VERIFIED_ONE = define("recognition.basis.verified_one", "verified result of project %(project)s (%(method)s)")
B_VERIFIED_ONE_CI = define("recognition.basis.verified_one_ci", "verified result of project %(project)s (%(method)s; "
                                                                "%(confidence)s interval %(low)s .. %(high)s)")
B_VERIFIED_ONE_RANGE = define("recognition.basis.verified_one_range", "verified result of project %(project)s "
                                                                      "(%(method)s; interval %(low)s .. %(high)s)")
METHOD_NOT_STATED = define("recognition.basis.method_not_stated", "method not stated")
B_VERIFIED_MEAN = define("recognition.basis.verified_mean", "unweighted mean of the verified results of %(n)s "
                                                            "projects: %(projects)s")
B_DECLARED = define("recognition.basis.declared", "declared by the enterprise for %(projects)s, not verified from "
                                                  "data (no stored verification result)")
def _check_name(code, lang: str):
    from zhizao.verify.checks import check_name

    return check_name(code, lang) if isinstance(code, str) else code


B_INDICATIVE = define("recognition.basis.indicative", "indicative results of %(projects)s, not verified (failed "
                                                      "checks: %(flags)s)",
                      labels={"flags": _check_name})  # flags: the codes of the failed checks, shown by name
B_NEITHER = define("recognition.basis.neither", "no verified result and no declared value for the enterprise's "
                                                "projects")
B_MATURITY = define("recognition.basis.maturity", "capability maturity level %(level)s (%(source)s, %(date)s)")
B_NO_MATURITY = define("recognition.basis.no_maturity", "no capability maturity assessment of %(enterprise)s")
B_HELD = define("recognition.basis.held", "%(designation)s held: %(units)s")
B_NOT_HELD = define("recognition.basis.not_held", "%(enterprise)s holds no %(designation)s (not revoked) by %(end)s")
B_DECLARED_CRIT = define("recognition.basis.declared_criterion", "declared by the enterprise; an assessor confirms "
                                                                 "it against evidence")
B_CONFIRMED = define("recognition.basis.confirmed", "confirmed by %(assessor)s on %(date)s: %(evidence)s")
B_NOT_CONFIRMED = define("recognition.basis.not_confirmed", "not confirmed by %(assessor)s on %(date)s: %(comment)s")
B_INFO = define("recognition.basis.info", "for information, not judged")
NO_OPERATOR = define("recognition.no_operator", "criterion %(criterion)s of rule set %(ruleset)s has no operator "
                                                "(>= or <=), so no threshold can be set for it")


def ensure(con) -> None:
    con.execute(CONFIRMATIONS_DDL)


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


def _compare(value, operator: str, threshold: float) -> bool | None:
    """``value >= threshold`` or ``value <= threshold`` (within :data:`TOLERANCE`); None for no value."""
    if value is None or pd.isna(value):
        return None
    if operator == ">=":
        return bool(value >= threshold - TOLERANCE)
    return bool(value <= threshold + TOLERANCE)


class _Context:
    """What the checks of many designations share: the register read once."""

    def __init__(self, ws):
        self.ws = ws
        self.prj = projects(ws)
        self.des = designations(ws)
        self.ver = latest_verifications(ws, self.prj["project_id"])
        self.zone = store_zone(ws.con)
        self._activity: dict = {}

    def activity(self, scope, start, end) -> pd.DataFrame:
        key = (scope, str(start), str(end))
        if key not in self._activity:
            self._activity[key] = equipment_activity(self.ws, scope, start, end)
        return self._activity[key]


def _confirmations(con, enterprise_id: str, scope, ruleset: str) -> dict:
    if not has_table(con, "criterion_confirmations"):
        return {}
    rows = con.execute("""SELECT criterion, confirmed, assessor, confirmed_at, evidence, comment, application_id
                          FROM (SELECT *, row_number() OVER (PARTITION BY criterion ORDER BY confirmed_at DESC) rn
                                FROM criterion_confirmations WHERE enterprise_id = ? AND scope IS NOT DISTINCT FROM ?
                                AND ruleset = ?) WHERE rn = 1""", [enterprise_id, scope, ruleset]).fetchall()
    return {r[0]: {"confirmed": bool(r[1]), "assessor": r[2], "at": r[3], "evidence": r[4], "comment": r[5],
                   "application_id": r[6]} for r in rows}


def _row(c: Criterion, rs: RuleSet, value=None, passed=None, basis=None, evidence=None, confirmation=None,
         kind=None) -> dict:
    kind = kind or c.kind
    if kind == "indicative":  # computed from results that failed a check: shown, never judged
        return {**_row(c, rs, value, None, basis, evidence, None, "computed"), "verdict": "indicative"}
    if kind == "computed":
        verdict = "no_data" if passed is None else ("pass" if passed else "fail")
    elif kind == "declared":
        verdict = "pending" if confirmation is None else ("confirmed" if confirmation["confirmed"] else
                                                          "not_confirmed")
    else:
        verdict = "info"
    return {"criterion": c.id, "description": c.label("en"), "text_zh": c.label("zh"), "text_en": c.label("en"),
            "kind": kind, "threshold": c.threshold, "operator": c.operator if c.threshold is not None else None,
            "value": value, "passed": passed if kind == "computed" else None, "verdict": verdict,
            "source": DATA if kind in ("computed", "information") else DECLARATION, "basis": basis,
            "evidence": list(evidence or []), "confirmation": confirmation, "ruleset": rs.name}


def _period(start, end):
    """The message of a criterion's period [start, end), either end possibly open (None)."""
    if start and end:
        return PERIOD(start=str(start), end=str(end))
    if start:
        return PERIOD_FROM(start=str(start))
    return PERIOD_UNTIL(end=str(end)) if end else PERIOD_ALL()


def _method(r) -> Message | str:
    """How a stored verification result was computed: its method message (translated with the page), the
    stored English text of a result written before methods were messages, else 'method not stated'."""
    m = (r["result"] or {}).get("method_message") if isinstance(r["result"], dict) else None
    if isinstance(m, dict) and "code" in m:
        return Message.from_dict(m)
    return r["method"] or METHOD_NOT_STATED()


def _change(ctx: _Context, enterprise_id: str, indicator: str, sign: float):
    """(value, basis, ids, declared?) of an efficiency or operating-cost change from the enterprise's verified
    (else declared) project results; ``sign`` turns an improvement into the signed change."""
    prj = ctx.prj[ctx.prj["enterprise_id"] == enterprise_id]
    ver = ctx.ver[ctx.ver["project_id"].isin(prj["project_id"])]
    ver = ver[(ver["indicator"] == indicator) & ver["improvement"].notna()]
    verdict = ver["result"].map(lambda r: (r or {}).get("verdict") if isinstance(r, dict) else None)
    indicative = ver[(verdict != "verified").to_numpy(dtype=bool)]
    ver = ver[(verdict == "verified").to_numpy(dtype=bool)]
    if len(ver):
        ids = ver["project_id"].tolist()
        value = sign * float(ver["improvement"].mean())
        if len(ver) == 1:
            r = ver.iloc[0]
            basis = B_VERIFIED_ONE(project=ids[0], method=_method(r))
            if r["ci_low"] is not None and pd.notna(r["ci_low"]):
                lo, hi = sorted((sign * r["ci_low"], sign * r["ci_high"]))
                conf = r["confidence"] if pd.notna(r["confidence"]) else None
                bounds = {"project": ids[0], "method": _method(r), "low": f"{lo:+.1%}", "high": f"{hi:+.1%}"}
                basis = (B_VERIFIED_ONE_CI(confidence=f"{conf:.0%}", **bounds) if conf
                         else B_VERIFIED_ONE_RANGE(**bounds))
            return value, basis, ids, "verified"
        return value, B_VERIFIED_MEAN(n=len(ids), projects=ids), ids, "verified"
    if len(indicative):  # results with failed checks: shown, never counted as passing
        ids = indicative["project_id"].tolist()
        flags = sorted({f for r in indicative["result"] for f in ((r or {}).get("flags") or [])})
        return (sign * float(indicative["improvement"].mean()), B_INDICATIVE(projects=ids, flags=flags or ["-"]),
                ids, "indicative")
    col = DECLARED_COLUMNS[indicator]
    dec = prj[prj[col].notna()]
    if len(dec):
        ids = dec["project_id"].tolist()
        return sign * float(dec[col].mean()), B_DECLARED(projects=ids), ids, "declared"
    return None, B_NEITHER(), prj["project_id"].tolist(), "none"


def _held(ctx: _Context, enterprise_id: str, designation: str, end) -> list[str]:
    d = ctx.des[(ctx.des["enterprise_id"] == enterprise_id) & (ctx.des["designation"] == designation)]
    d = d[dates_in(d["date"], d["tz"], None, end).to_numpy(dtype=bool)]
    gone = d["revoked"].notna() & dates_in(d["revoked"], d["tz"], None, end) if end is not None \
        else d["revoked"].map(lambda r: r is not None and r <= today(ctx.zone))
    d = d[~gone.to_numpy(dtype=bool)]
    return sorted({designation_unit(*u) for u in zip(d["enterprise_id"], d["scope"], d["name"], d["project_id"],
                                                     d["designation_id"])})


def _check(ctx: _Context, rs: RuleSet, enterprise_id: str, scope: str, start, end, thresholds: dict) -> list[dict]:
    ws = ctx.ws
    rows = []
    conf = _confirmations(ws.con, enterprise_id, scope if scope != enterprise_id else None, rs.name)
    eq = None
    basis: Message | None
    evidence: list[str]
    for c in rs.criteria:
        if thresholds and c.id in thresholds:
            c = Criterion(c.id, c.kind, c.text, c.measure, c.operator, float(thresholds[c.id]), c.options)
        if c.kind == "declared":
            k = conf.get(c.id)
            basis = B_DECLARED_CRIT() if k is None else (
                B_CONFIRMED(assessor=k["assessor"], date=str(k["at"])[:10], evidence=k["evidence"] or "")
                if k["confirmed"] else B_NOT_CONFIRMED(assessor=k["assessor"], date=str(k["at"])[:10],
                                                        comment=k["comment"] or ""))
            if k is not None:
                k = {**k, "at": k["at"].isoformat() if hasattr(k["at"], "isoformat") else k["at"]}
            rows.append(_row(c, rs, basis=basis, confirmation=k,
                             evidence=[e for e in (k or {}).get("evidence", "").split(",") if e] if k and
                             k.get("evidence") else []))
            continue
        m = c.measure
        value, basis, evidence, kind = None, None, [], c.kind
        if m in ("digital_equipment_share", "data_upload_rate"):
            if eq is None:
                eq = ctx.activity(scope, start, end)
            n = len(eq)
            if m == "digital_equipment_share":
                n_dig = int((eq["digital"] == True).sum()) if n else 0  # noqa: E712 - null is not digital
                n_unknown = int(eq["digital"].isna().sum()) if n else 0
                value = n_dig / n if n else None
                basis = (B_SHARE_UNKNOWN(digital=n_dig, n=n, scope=scope, unknown=n_unknown) if n_unknown else
                         B_SHARE(digital=n_dig, n=n, scope=scope)) if n else B_NO_EQUIPMENT(scope=scope)
                evidence = eq.loc[eq["digital"] == True, "equipment_id"].tolist() if n else []  # noqa: E712
            else:
                n_rep = int(eq["reported"].sum()) if n else 0
                value = n_rep / n if n else None
                missing = eq.loc[~eq["reported"].astype(bool), "equipment_id"].tolist() if n else []
                kw = dict(reported=n_rep, n=n, scope=scope, period=_period(start, end))
                basis = (B_UPLOAD_MISSING(missing=missing, **kw) if missing else B_UPLOAD(**kw)) if n \
                    else B_NO_EQUIPMENT(scope=scope)
                evidence = eq.loc[eq["reported"].astype(bool), "equipment_id"].tolist() if n else []
        elif m == "digital_workshops":
            units = _held(ctx, enterprise_id, "digital_workshop", end)
            value, evidence = len(units), units
            basis = B_WORKSHOPS(n=len(units), enterprise=enterprise_id, end=DAY(date=str(end or today(ctx.zone))))
        elif m in ("production_efficiency_change", "operating_cost_change"):
            ind = "production_efficiency" if m == "production_efficiency_change" else "operating_cost"
            value, basis, evidence, mode = _change(ctx, enterprise_id, ind, +1.0 if ind ==
                                                   "production_efficiency" else -1.0)
            if mode == "declared":
                kind = "declared"
            elif mode == "indicative":
                kind = "indicative"
        elif m == "maturity_level":
            from zhizao.portfolio.maturity import current_level

            cur = current_level(ws, enterprise_id)
            if cur is None:
                basis = B_NO_MATURITY(enterprise=enterprise_id)
            else:
                value = cur["level"]
                basis = B_MATURITY(level=cur["level"], source=cur["source"], date=DAY(date=str(cur["date"])))
                evidence = [cur["assessment_id"]]
        elif m == "designation_held":
            want = str(c.options["designation_held"])  # rulesets._parse refuses a criterion without it
            units = _held(ctx, enterprise_id, want, end)
            value, evidence = (1 if units else 0), units
            basis = B_HELD(designation=want, units=units) if units else \
                B_NOT_HELD(enterprise=enterprise_id, designation=want, end=str(end or today(ctx.zone)))
        if c.kind == "information":
            rows.append(_row(c, rs, value=value, basis=basis, evidence=evidence))
            continue
        passed = None
        if kind not in ("declared", "indicative") and c.threshold is not None:
            if c.operator is None:  # a threshold given in ``thresholds`` to a criterion without one
                raise InputError(NO_OPERATOR(criterion=c.id, ruleset=rs.name))
            passed = _compare(value, c.operator, c.threshold)
        row = _row(c, rs, value=value, passed=passed, basis=basis, evidence=evidence, kind=kind,
                   confirmation=conf.get(c.id) if kind == "declared" else None)
        rows.append(row)
    return rows


def recognition_checks(ws, enterprise_id: str, designation: str, period=(None, None), scope: str | None = None,
                       thresholds: dict | None = None, *, rules: str | None = None,
                       programme: str | None = None) -> pd.DataFrame:
    """Check an enterprise (or one of its workshops) against the criteria of a rule set.

    Parameters
    ----------
    ws : zhizao.Workspace
    enterprise_id : str
        An enterprise of table ``enterprises``.
    designation : str
        ``digital_workshop``, ``smart_factory`` or a tier of the factory ladder (:data:`RECOGNITIONS`).
    period : (start, end)
        The assessment period for the upload rate (and the date by which designations must be held);
        half-open, naive bounds in the equipment's local time; None is unbounded.
    scope : str, optional
        The equipment scope assessed (a workshop's work_center, area or site id); default the enterprise.
    thresholds : dict, optional
        Overrides of the rule set's thresholds (criterion -> value).
    rules : str, optional
        The rule set (``--rules NAME``); default the programme's, else the latest valid one.
    programme : str, optional
        A programme whose ``rules`` column names the rule set.

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`, one row per criterion: text in zh and en (``description`` is the English one),
        kind, threshold and operator, value (fractions or counts; changes signed, +0.12 = +12 %), passed
        (computed criteria), verdict, source, basis (a :class:`zhizao.messages.Message`), evidence (ids behind
        the value), confirmation (who, when, evidence) and the rule set's name.

    Raises
    ------
    ValueError
        For an unknown designation, an unknown enterprise or an unparseable period bound (also
        :class:`zhizao.errors.InputError`, a ValueError's sibling, for the first two).
    zhizao.errors.NotFound
        An unknown rule set.
    """
    if designation not in RECOGNITIONS:
        raise _ValueInput(UNKNOWN_DESIGNATION(designation=designation, known=list(RECOGNITIONS)))
    start, end = (tuple(period) + (None, None))[:2] if period is not None else (None, None)
    parse_bound(start), parse_bound(end)
    if not has_table(ws.con, "enterprises") or not ws.con.execute(
            "SELECT count(*) FROM enterprises WHERE enterprise_id = ?", [enterprise_id]).fetchall()[0][0]:
        raise _ValueNotFound(UNKNOWN_ENTERPRISE(enterprise=enterprise_id))
    prog_rules = None
    if programme and has_table(ws.con, "programmes"):
        r = ws.con.execute("SELECT rules FROM programmes WHERE programme_id = ?", [programme]).fetchone()
        prog_rules = r[0] if r else None
    day = bound_date(end, store_zone(ws.con)) if end is not None else None
    rs = select(designation, name=rules, programme_rules=prog_rules,
                day=(day - dt.timedelta(days=1)) if day else None)
    ctx = _Context(ws)
    return _frame(_check(ctx, rs, enterprise_id, scope or enterprise_id, start, end, thresholds or {}), COLUMNS)


def _frame(rows: list[dict], columns) -> pd.DataFrame:
    """Rows as a frame whose values stay as computed (None is None, counts stay integers)."""
    return pd.DataFrame({c: pd.Series([r.get(c) for r in rows], dtype=object) for c in columns}, columns=columns)


class _ValueInput(InputError, ValueError):
    """Bad input of the recognition checks (an InputError, and a ValueError for the callers that catch it)."""


class _ValueNotFound(NotFound, ValueError):
    """An unknown enterprise (HTTP 404; a ValueError for the callers that catch it)."""


def verdict(checks: pd.DataFrame) -> dict:
    """The overall verdict of checks: ``{"verdict": "pass"|"fail"|"pending", "failed": [...], "pending":
    [...]}`` (see the module docstring)."""
    failed = checks.loc[checks["verdict"].isin(["fail", "not_confirmed"]), "criterion"].tolist()
    pending = checks.loc[checks["verdict"].isin(["pending", "no_data", "indicative"]), "criterion"].tolist()
    return {"verdict": "fail" if failed else ("pending" if pending else "pass"), "failed": failed,
            "pending": pending}


def confirm(con, enterprise_id: str, ruleset: str, criterion: str, confirmed: bool, assessor: str, *,
            scope: str | None = None, evidence: str | None = None, comment: str | None = None,
            application_id: str | None = None, at: dt.datetime | None = None) -> dict:
    """Record an assessor's confirmation (or refusal) of a declared criterion, with its evidence (audited).

    Raises
    ------
    zhizao.errors.NotFound
        An unknown rule set.
    zhizao.errors.InputError
        A criterion that is not a declared one of the rule set.
    """
    from zhizao.portfolio.rulesets import ruleset as get

    rs = get(ruleset)
    declared = [c.id for c in rs.criteria if c.kind == "declared"] + \
        [c.id for c in rs.criteria if c.measure in ("production_efficiency_change", "operating_cost_change")]
    if criterion not in declared:
        raise InputError(NOT_DECLARED(criterion=criterion, ruleset=ruleset, declared=declared))
    ensure(con)
    at = at or dt.datetime.now(dt.UTC)
    rec = {"enterprise_id": enterprise_id, "scope": scope, "ruleset": ruleset, "criterion": criterion,
           "confirmed": bool(confirmed), "assessor": assessor, "confirmed_at": at.isoformat(), "evidence": evidence,
           "comment": comment, "application_id": application_id}
    from zhizao.portfolio.register import transaction

    with transaction(con):
        con.execute("INSERT INTO criterion_confirmations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [enterprise_id, scope, ruleset, criterion, bool(confirmed), assessor, at, evidence, comment,
                     application_id])
        audit.append(con, assessor, "confirm" if confirmed else "not_confirm", "criterion",
                     [enterprise_id, scope or "", ruleset, criterion], after=rec, reason=comment,
                     source=application_id)
    return rec


#: Columns of :func:`recognition_conflicts`.
CONFLICT_COLUMNS = ["designation_id", "enterprise_id", "unit", "designation", "level", "date", "ruleset",
                    "criterion", "text_zh", "text_en", "threshold", "operator", "value", "basis", "evidence"]


def recognition_conflicts(ws, *, project_ids=None, enterprise_ids=None, rules: dict | None = None,
                          period=(None, None), designations_: pd.DataFrame | None = None) -> pd.DataFrame:
    """Recognised workshops and factories whose data now fail a computed criterion of their rule set.

    Parameters
    ----------
    ws : zhizao.Workspace
    project_ids, enterprise_ids : iterable, optional
        Keep designations of these projects or enterprises (a programme's selection).
    rules : dict, optional
        designation -> rule set name (default: the designation's programme's, else the latest valid on the
        designation's date).
    period : (start, end)
        Period of the upload rate (default: all data).
    designations_ : DataFrame, optional
        The designation records to check (e.g. those of a programme's statistics); default every one that is
        not revoked.

    Returns
    -------
    pandas.DataFrame
        :data:`CONFLICT_COLUMNS`: one row per designation and failed computed criterion (the data show it is
        not met); criteria the data cannot decide are not conflicts.
    """
    ctx = _Context(ws)
    d = ctx.des if designations_ is None else designations_
    d = d[d["designation"].isin(RECOGNITIONS)]
    if "revoked" in d.columns:
        d = d[d["revoked"].map(lambda r: r is None or (isinstance(r, float) and r != r)
                               or r > today(ctx.zone)).to_numpy(dtype=bool)]
    if enterprise_ids is not None:
        d = d[d["enterprise_id"].isin(list(enterprise_ids))]
    if project_ids is not None:
        d = d[d["project_id"].isna() | d["project_id"].isin(list(project_ids))]
    prog_rules = {}
    if has_table(ws.con, "programmes"):
        prog_rules = dict(ws.con.execute("SELECT programme_id, rules FROM programmes").fetchall())
    start, end = (tuple(period) + (None, None))[:2]
    rows = []
    for r in d.itertuples(index=False):
        try:
            rs = select(r.designation, name=(rules or {}).get(r.designation),
                        programme_rules=prog_rules.get(getattr(r, "programme", None)), day=r.date)
        except NotFound:
            continue
        scope = r.scope if isinstance(r.scope, str) and r.scope else r.enterprise_id
        only = RuleSet(rs.name, rs.designation, rs.version, rs.authority, rs.title, rs.source,
                       tuple(c for c in rs.criteria if c.kind == "computed"), rs.valid_from, rs.valid_to, rs.path)
        for c in _check(ctx, only, r.enterprise_id, scope, start, end, {}):
            if c["kind"] == "computed" and c["passed"] is False:
                rows.append({"designation_id": r.designation_id, "enterprise_id": r.enterprise_id,
                             "unit": designation_unit(r.enterprise_id, r.scope, getattr(r, "name", None),
                                                      r.project_id, r.designation_id),
                             "designation": r.designation, "level": r.level, "date": r.date, "ruleset": rs.name,
                             **{k: c[k] for k in ("criterion", "text_zh", "text_en", "threshold", "operator",
                                                  "value", "basis", "evidence")}})
    return _frame(rows, CONFLICT_COLUMNS)


def confirmations_json(df: pd.DataFrame) -> str:
    return json.dumps([c for c in df["confirmation"] if c], default=str, ensure_ascii=False)


__all__ = [
    "COLUMNS",
    "CONFLICT_COLUMNS",
    "RECOGNITIONS",
    "confirm",
    "equipment_activity",
    "recognition_checks",
    "recognition_conflicts",
    "verdict",
]
