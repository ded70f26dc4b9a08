"""The application and review workflow as a state machine.

An enterprise applies (a project, a demonstration project, a digital workshop or a smart factory); the
application goes through district pre-review, expert review, publicity, decision and -- for projects --
acceptance::

    draft --submit--> submitted --pre_approve--> expert_review --close_review--> publicity
      ^                   |  \\--pre_reject--> rejected                           |
      +------pre_return---+                                           end_publicity
                                                                                   v
    accepted <--accept-- acceptance <--request_acceptance-- approved <--decide-- decision
                            \\--fail_acceptance--> acceptance_failed      \\--decide (reject)--> rejected

- ``submit`` registers the project (status ``applied``) if the application names none, with the planned
  dates, investment and declared results; ``decide`` approves it (status ``approved``; a demonstration project
  is designated) or recognises the workshop or factory (a designation record); ``accept`` sets the project's
  status ``accepted`` with the date.
- Expert review: the programme office assigns assessors (``assign``); each declares a conflict of interest or
  none (``declare``: a conflicted assessor takes no further part); each scores the score sheet per criterion
  with comments (``score``); ``close_review`` needs every non-conflicted assessor's scores.
- Publicity: ``object`` records an objection, ``resolve`` answers it; ``end_publicity`` needs the period
  over and every objection resolved.
- Acceptance: the page shows the verified results from data beside the declared ones, and assessors confirm
  the declared criteria (:func:`zhizao.portfolio.recognition.confirm`).

Each step is a transition allowed only to its role (:data:`STEPS`; the server checks roles and tenants in
:mod:`zhizao.server.access`, the one place for that), checked against the current state here (a step that
does not apply raises :class:`zhizao.errors.Conflict`), recorded in the audit log, and every state has a
deadline (``data/workflow/workflow.yaml``). :func:`queue` lists what waits for a role.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd
import yaml

from zhizao.errors import Conflict, InputError, NotFound
from zhizao.messages import define
from zhizao.portfolio import audit
from zhizao.portfolio.dates import store_zone, today

DATA = Path(__file__).parent / "data" / "workflow"
#: What an application seeks.
SOUGHT = ("project", "demonstration_project", "digital_workshop", "smart_factory")
STATES = ("draft", "submitted", "expert_review", "publicity", "decision", "approved", "acceptance", "accepted",
          "rejected", "acceptance_failed")
FINAL = ("accepted", "rejected", "acceptance_failed")


@dataclass(frozen=True)
class Step:
    action: str
    role: str  # enterprise | district | office (analyst, admin) | assessor
    sources: tuple
    target: str | None  # None: the state stays

    def moves_to(self) -> str:
        """The state a step that changes the state moves to (a step that keeps it is a fault of zhizao here)."""
        if self.target is None:
            raise ValueError(f"step {self.action} keeps the state; it moves to none")
        return self.target


#: Every step: who may take it, from which states, to which state.
STEPS = {s.action: s for s in (
    Step("edit", "enterprise", ("draft",), None),
    Step("submit", "enterprise", ("draft",), "submitted"),
    Step("pre_approve", "district", ("submitted",), "expert_review"),
    Step("pre_return", "district", ("submitted",), "draft"),
    Step("pre_reject", "district", ("submitted",), "rejected"),
    Step("assign", "office", ("expert_review",), None),
    Step("unassign", "office", ("expert_review",), None),
    Step("declare", "assessor", ("expert_review",), None),
    Step("score", "assessor", ("expert_review",), None),
    Step("close_review", "office", ("expert_review",), "publicity"),
    Step("object", "office", ("publicity",), None),
    Step("resolve", "office", ("publicity",), None),
    Step("end_publicity", "office", ("publicity",), "decision"),
    Step("decide", "office", ("decision",), None),  # approved or rejected
    Step("request_acceptance", "enterprise", ("approved",), "acceptance"),
    Step("confirm", "assessor", ("acceptance",), None),
    Step("accept", "office", ("acceptance",), "accepted"),
    Step("fail_acceptance", "office", ("acceptance",), "acceptance_failed"),
    Step("attach", "enterprise", ("draft", "submitted", "expert_review", "approved", "acceptance"), None),
)}
#: The state whose work each role does (its queue).
QUEUES = {"enterprise": ("draft", "approved"), "district": ("submitted",), "assessor": ("expert_review", "acceptance"),
          "office": ("expert_review", "publicity", "decision", "acceptance")}

DDL = (
    """CREATE TABLE IF NOT EXISTS applications (
        application_id VARCHAR NOT NULL, enterprise_id VARCHAR NOT NULL, programme VARCHAR, sought VARCHAR NOT NULL,
        name VARCHAR, project_id VARCHAR, scope VARCHAR, data VARCHAR NOT NULL, maturity_assessment VARCHAR,
        state VARCHAR NOT NULL, state_since TIMESTAMPTZ NOT NULL, deadline DATE, decision VARCHAR,
        publicity_start DATE, publicity_end DATE, created_by VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL,
        submitted_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS application_assessors (
        application_id VARCHAR NOT NULL, assessor VARCHAR NOT NULL, assigned_by VARCHAR NOT NULL,
        assigned_at TIMESTAMPTZ NOT NULL, deadline DATE, conflict BOOLEAN, conflict_note VARCHAR,
        declared_at TIMESTAMPTZ, active BOOLEAN NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS application_scores (
        application_id VARCHAR NOT NULL, assessor VARCHAR NOT NULL, criterion VARCHAR NOT NULL, score DOUBLE NOT NULL,
        comment VARCHAR, scored_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS application_objections (
        objection_id VARCHAR NOT NULL, application_id VARCHAR NOT NULL, text VARCHAR NOT NULL, raised_by VARCHAR,
        received_on DATE, recorded_by VARCHAR NOT NULL, recorded_at TIMESTAMPTZ NOT NULL, resolution VARCHAR,
        resolved_by VARCHAR, resolved_at TIMESTAMPTZ)""",
)
#: Fields of an application's ``data`` (what the enterprise declares).
FIELDS = ("name", "type", "scope", "investment", "start", "commissioning_end", "declared_efficiency",
          "declared_defect_rate", "declared_operating_cost", "declared_unit_energy", "declared_development_cycle",
          "description")
REQUIRED_TO_SUBMIT = {"project": ("name", "type", "start", "commissioning_end"),
                      "demonstration_project": ("name", "type", "start", "commissioning_end"),
                      "digital_workshop": ("name", "scope"), "smart_factory": ("name",)}

NO_APPLICATION = define("workflow.no_application", "no application %(application)s")
WRONG_STATE = define("workflow.wrong_state", "%(action)s does not apply to application %(application)s in state "
                                             "%(state)s (it applies in %(states)s)")
BAD_SOUGHT = define("workflow.bad_sought", "an application seeks one of %(known)s, not %(value)s")
MISSING = define("workflow.missing", "application %(application)s cannot be submitted: %(fields)s missing")
NOT_ASSIGNED = define("workflow.not_assigned", "%(assessor)s is not an assessor of application %(application)s")
CONFLICTED = define("workflow.conflicted", "%(assessor)s declared a conflict of interest and takes no part in "
                                           "application %(application)s")
UNDECLARED = define("workflow.undeclared", "%(assessor)s must declare a conflict of interest (or none) before "
                                           "scoring")
BAD_SCORE = define("workflow.bad_score", "criterion %(criterion)s: %(value)s is not a score from 0 to %(max)s")
UNKNOWN_CRITERION = define("workflow.unknown_criterion", "the score sheet has no criterion %(criterion)s "
                                                         "(criteria: %(known)s)")
NO_SCORES = define("workflow.no_scores", "no score given for application %(application)s")
INCOMPLETE_SCORES = define("workflow.incomplete_scores", "the review cannot close: %(missing)s")
NO_ASSESSOR = define("workflow.no_assessor", "the review cannot close: no assessor without a conflict of interest "
                                             "has scored")
PUBLICITY_RUNNING = define("workflow.publicity_running", "the publicity period runs until %(end)s")
OPEN_OBJECTIONS = define("workflow.open_objections", "%(n)s objections are not resolved: %(ids)s")
NO_OBJECTION = define("workflow.no_objection", "no objection %(objection)s of application %(application)s")
BAD_DECISION = define("workflow.bad_decision", "a decision is approved or rejected, not %(value)s")
REASON = define("workflow.reason", "give a reason for %(action)s")
BAD_FIELD = define("workflow.bad_field", "%(field)s is not a field of an application (fields: %(known)s)")


def ensure(con) -> None:
    for ddl in DDL:
        con.execute(ddl)


@cache
def config() -> dict:
    return yaml.safe_load((DATA / "workflow.yaml").read_text(encoding="utf-8"))


@cache
def score_sheet() -> dict:
    """The expert review's score sheet (``data/workflow/score-sheet.yaml``)."""
    return yaml.safe_load((DATA / "score-sheet.yaml").read_text(encoding="utf-8"))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _has(con) -> bool:
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'applications'"
                       ).fetchone()[0] > 0


def _deadline(con, state: str, since: dt.datetime) -> dt.date | None:
    days = (config().get("deadlines") or {}).get(state)
    if days is None:
        return None
    local = pd.Timestamp(since).tz_convert(store_zone(con)).date()
    return local + dt.timedelta(days=int(days))


def _row(con, app_id: str) -> dict:
    if not _has(con):
        raise NotFound(NO_APPLICATION(application=app_id))
    df = con.execute("SELECT * FROM applications WHERE application_id = ?", [app_id]).df()
    if df.empty:
        raise NotFound(NO_APPLICATION(application=app_id))
    r = {k: (None if (not isinstance(v, (list, dict, str)) and pd.isna(v)) else v)
         for k, v in df.iloc[0].to_dict().items()}
    data = r.get("data")
    r["data"] = json.loads(data) if data else {}
    for c in ("deadline", "publicity_start", "publicity_end"):
        if r.get(c) is not None:
            r[c] = pd.Timestamp(r[c]).date()
    return r


def _set_state(con, app: dict, action: str, target: str, actor: str, reason: str | None, changes: dict | None = None,
               **columns) -> dict:
    now = _now()
    cols = {"state": target, "state_since": now, "deadline": _deadline(con, target, now), **columns}
    sets = ", ".join(f"{k} = ?" for k in cols)
    con.execute(f"UPDATE applications SET {sets} WHERE application_id = ?", [*cols.values(), app["application_id"]])
    after = _row(con, app["application_id"])
    audit.append(con, actor, action, "application", app["application_id"],
                 changes={"state": (app["state"], target), **(changes or {})}, after=_plain_app(after),
                 reason=reason)
    return after


def _plain_app(a: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in a.items()}


def _check_state(app: dict, action: str) -> Step:
    step = STEPS[action]
    if app["state"] not in step.sources:
        raise Conflict(WRONG_STATE(action=action, application=app["application_id"], state=app["state"],
                                   states=list(step.sources)))
    return step


def _tx(con):
    from zhizao.portfolio.register import transaction

    return transaction(con)


# -- the enterprise's application ------------------------------------------------------------------------

def _clean(data: dict) -> dict:
    bad = [k for k in data if k not in FIELDS]
    if bad:
        raise InputError(BAD_FIELD(field=bad[0], known=list(FIELDS)))
    return {k: (None if v is None or (isinstance(v, str) and not v.strip()) else v) for k, v in data.items()}


def create(con, enterprise_id: str, sought: str, data: dict, *, actor: str, programme: str | None = None,
           project_id: str | None = None) -> dict:
    """A new application (state ``draft``) of an enterprise.

    Raises
    ------
    zhizao.errors.InputError
        An unknown ``sought`` or field.
    zhizao.errors.NotFound
        An unknown enterprise, programme or project (or a project of another enterprise).
    """
    if sought not in SOUGHT:
        raise InputError(BAD_SOUGHT(known=list(SOUGHT), value=sought))
    from zhizao.portfolio.register import get_record

    get_record(con, "enterprises", enterprise_id)
    if programme:
        get_record(con, "programmes", programme)
    if project_id:
        p = get_record(con, "projects", project_id)
        if p["enterprise_id"] != enterprise_id:
            raise NotFound(NO_APPLICATION(application=project_id))
    data = _clean(data)
    ensure(con)
    now = _now()
    app_id = "A" + now.strftime("%Y") + "-" + secrets.token_hex(3).upper()
    with _tx(con):
        con.execute("""INSERT INTO applications (application_id, enterprise_id, programme, sought, name, project_id,
                       scope, data, state, state_since, deadline, created_by, created_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'draft', ?, NULL, ?, ?)""",
                    [app_id, enterprise_id, programme, sought, data.get("name"), project_id, data.get("scope"),
                     json.dumps(data, ensure_ascii=False, default=str), now, actor, now])
        app = _row(con, app_id)
        audit.append(con, actor, "create", "application", app_id, after=_plain_app(app))
    return app


def edit(con, app_id: str, data: dict, *, actor: str) -> dict:
    """Change the declared fields of a draft."""
    app = _row(con, app_id)
    _check_state(app, "edit")
    data = {**app["data"], **_clean(data)}
    with _tx(con):
        con.execute("UPDATE applications SET data = ?, name = ?, scope = ? WHERE application_id = ?",
                    [json.dumps(data, ensure_ascii=False, default=str), data.get("name"), data.get("scope"), app_id])
        after = _row(con, app_id)
        audit.append(con, actor, "edit", "application", app_id,
                     changes={k: (app["data"].get(k), v) for k, v in data.items() if app["data"].get(k) != v},
                     after=_plain_app(after))
    return after


def submit(ws, app_id: str, *, actor: str) -> dict:
    """Submit a draft: the project is registered (status ``applied``) or linked, the enterprise's current
    maturity assessment is attached, the district pre-review's deadline starts."""
    from zhizao.portfolio.maturity import current_level
    from zhizao.portfolio.register import create_record, update_record

    con = ws.con
    app = _row(con, app_id)
    _check_state(app, "submit")
    need = [f for f in REQUIRED_TO_SUBMIT[app["sought"]] if app["data"].get(f) in (None, "")]
    if need:
        raise InputError(MISSING(application=app_id, fields=need))
    cur = current_level(ws, app["enterprise_id"])
    with _tx(con):
        pid = app["project_id"]
        day = today(store_zone(con)).isoformat()
        if app["sought"] in ("project", "demonstration_project"):
            values = {k: app["data"][k] for k in ("name", "type", "scope", "investment", "start", "commissioning_end",
                                                  "declared_efficiency", "declared_defect_rate",
                                                  "declared_operating_cost", "declared_unit_energy",
                                                  "declared_development_cycle") if app["data"].get(k) is not None}
            if pid is None:
                pid = app_id
                create_record(con, "projects", {"project_id": pid, "enterprise_id": app["enterprise_id"],
                                                "programme": app["programme"], "status": "applied",
                                                "status_date": day, **values}, actor=actor,
                              reason=f"application {app_id}", source=f"application {app_id}")
            else:
                update_record(con, "projects", pid, {**values, "status": "applied", "status_date": day}, actor=actor,
                              reason=f"application {app_id}", source=f"application {app_id}")
        out = _set_state(con, app, "submit", "submitted", actor, None,
                         project_id=pid, submitted_at=_now(),
                         maturity_assessment=cur["assessment_id"] if cur else None)
    return out


# -- district pre-review ---------------------------------------------------------------------------------

def pre_review(con, app_id: str, verdict: str, *, actor: str, comment: str | None = None) -> dict:
    """The district's pre-review: ``approve`` (to expert review), ``return`` (to the enterprise, with what to
    change) or ``reject``."""
    action = {"approve": "pre_approve", "return": "pre_return", "reject": "pre_reject"}.get(verdict)
    if action is None:
        raise InputError(BAD_DECISION(value=verdict))
    app = _row(con, app_id)
    step = _check_state(app, action)
    if action != "pre_approve" and not (comment or "").strip():
        raise InputError(REASON(action=action))
    with _tx(con):
        return _set_state(con, app, action, step.moves_to(), actor, comment)


# -- expert review ---------------------------------------------------------------------------------------

def assessors(con, app_id: str) -> pd.DataFrame:
    ensure_read = _has(con)
    cols = ["application_id", "assessor", "assigned_by", "assigned_at", "deadline", "conflict", "conflict_note",
            "declared_at", "active"]
    if not ensure_read:
        return pd.DataFrame(columns=cols)
    df = con.execute(f"SELECT {', '.join(cols)} FROM application_assessors WHERE application_id = ? "
                     "ORDER BY assigned_at, assessor", [app_id]).df()
    # a declaration not made yet is None (not pandas' NA, whose truth is ambiguous)
    df["conflict"] = pd.Series([None if pd.isna(x) else bool(x) for x in df["conflict"]], index=df.index,
                               dtype=object)
    df["active"] = df["active"].fillna(False).astype(bool)
    return df


def assign(con, app_id: str, assessor: str, *, actor: str, deadline=None) -> dict:
    """Assign an assessor (a user name) to the expert review."""
    app = _row(con, app_id)
    _check_state(app, "assign")
    a = assessors(con, app_id)
    if (a["assessor"] == assessor).any() and a.loc[a["assessor"] == assessor, "active"].any():
        return app
    dl = deadline or app.get("deadline")
    with _tx(con):
        con.execute("INSERT INTO application_assessors VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, true)",
                    [app_id, assessor, actor, _now(), dl])
        audit.append(con, actor, "assign", "application", app_id, changes={"assessor": (None, assessor)},
                     after={"assessor": assessor, "deadline": str(dl) if dl else None})
    return app


def unassign(con, app_id: str, assessor: str, *, actor: str, reason: str | None = None) -> dict:
    app = _row(con, app_id)
    _check_state(app, "unassign")
    _active(con, app_id, assessor)
    with _tx(con):
        con.execute("UPDATE application_assessors SET active = false WHERE application_id = ? AND assessor = ?",
                    [app_id, assessor])
        audit.append(con, actor, "unassign", "application", app_id, changes={"assessor": (assessor, None)},
                     reason=reason)
    return app


def _active(con, app_id: str, assessor: str) -> dict:
    a = assessors(con, app_id)
    a = a[(a["assessor"] == assessor) & a["active"].astype(bool)]
    if a.empty:
        raise NotFound(NOT_ASSIGNED(assessor=assessor, application=app_id))
    return a.iloc[0].to_dict()


def is_assessor(con, app_id: str, assessor: str) -> bool:
    """Whether ``assessor`` is assigned (and not withdrawn) to the application."""
    try:
        _active(con, app_id, assessor)
        return True
    except NotFound:
        return False


def declare(con, app_id: str, assessor: str, conflict: bool, note: str | None = None, *,
            actor: str | None = None) -> dict:
    """An assessor's declaration of a conflict of interest (``conflict=True``: they take no further part);
    ``actor``: how the audit log names them (default: the assessor's name)."""
    app = _row(con, app_id)
    _check_state(app, "declare")
    _active(con, app_id, assessor)
    if conflict and not (note or "").strip():
        raise InputError(REASON(action="declare"))
    with _tx(con):
        con.execute("UPDATE application_assessors SET conflict = ?, conflict_note = ?, declared_at = ? "
                    "WHERE application_id = ? AND assessor = ? AND active", [bool(conflict), note, _now(), app_id,
                                                                             assessor])
        audit.append(con, actor or assessor, "declare", "application", app_id,
                     after={"assessor": assessor, "conflict": bool(conflict), "note": note}, reason=note)
    return app


def score(con, app_id: str, assessor: str, scores: dict, *, actor: str | None = None) -> dict:
    """An assessor's score sheet: criterion -> (score, comment); a later sheet replaces the earlier one's
    criteria. ``actor``: how the audit log names the assessor (default: the name)."""
    app = _row(con, app_id)
    _check_state(app, "score")
    a = _active(con, app_id, assessor)
    if a["conflict"] is None or (isinstance(a["conflict"], float) and a["conflict"] != a["conflict"]):
        raise Conflict(UNDECLARED(assessor=assessor))
    if bool(a["conflict"]):
        raise Conflict(CONFLICTED(assessor=assessor, application=app_id))
    crit = {c["id"]: c for c in score_sheet()["criteria"]}
    rows = []
    for cid, val in scores.items():
        if cid not in crit:
            raise InputError(UNKNOWN_CRITERION(criterion=cid, known=list(crit)))
        v, comment = (val if isinstance(val, (tuple, list)) else (val, None))
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise InputError(BAD_SCORE(criterion=cid, value=v, max=crit[cid]["max"])) from None
        if not 0 <= f <= float(crit[cid]["max"]):
            raise InputError(BAD_SCORE(criterion=cid, value=v, max=crit[cid]["max"]))
        rows.append((cid, f, comment))
    if not rows:
        raise InputError(NO_SCORES(application=app_id))
    now = _now()
    with _tx(con):
        con.execute("DELETE FROM application_scores WHERE application_id = ? AND assessor = ? AND criterion IN "
                    f"({', '.join('?' for _ in rows)})", [app_id, assessor, *[r[0] for r in rows]])
        con.executemany("INSERT INTO application_scores VALUES (?, ?, ?, ?, ?, ?)",
                        [[app_id, assessor, c, f, cm, now] for c, f, cm in rows])
        audit.append(con, actor or assessor, "score", "application", app_id,
                     after={"assessor": assessor, "scores": {c: [f, cm] for c, f, cm in rows}})
    return app


def scores(con, app_id: str) -> pd.DataFrame:
    cols = ["application_id", "assessor", "criterion", "score", "comment", "scored_at"]
    if not _has(con):
        return pd.DataFrame(columns=cols)
    return con.execute(f"SELECT {', '.join(cols)} FROM application_scores WHERE application_id = ? "
                       "ORDER BY assessor, criterion", [app_id]).df()


def review_summary(con, app_id: str) -> dict:
    """The expert review: per assessor the total and its status; per criterion the mean; the mean total."""
    crit = [c["id"] for c in score_sheet()["criteria"]]
    a = assessors(con, app_id)
    a = a[a["active"].astype(bool)]
    s = scores(con, app_id)
    per = []
    for r in a.itertuples(index=False):
        mine = s[s["assessor"] == r.assessor]
        conflict = None if r.conflict is None or (isinstance(r.conflict, float) and r.conflict != r.conflict) \
            else bool(r.conflict)
        done = set(mine["criterion"]) >= set(crit)
        per.append({"assessor": r.assessor, "conflict": conflict, "complete": bool(done and conflict is False),
                    "total": float(mine["score"].sum()) if done else None,
                    "missing": sorted(set(crit) - set(mine["criterion"]))})
    ok = [p for p in per if p["conflict"] is False and p["complete"]]
    valid = s[s["assessor"].isin([p["assessor"] for p in ok])]
    means = valid.groupby("criterion")["score"].mean().to_dict() if len(valid) else {}
    return {"assessors": per, "criteria": {c: means.get(c) for c in crit},
            "mean_total": sum(p["total"] for p in ok) / len(ok) if ok else None, "n_scored": len(ok)}


def close_review(con, app_id: str, *, actor: str, publicity_days: int | None = None) -> dict:
    """Close the expert review and open the publicity period (today, for ``publicity_days``)."""
    app = _row(con, app_id)
    _check_state(app, "close_review")
    summ = review_summary(con, app_id)
    missing = [f"{p['assessor']}: {'no declaration' if p['conflict'] is None else ', '.join(p['missing'])}"
               for p in summ["assessors"] if p["conflict"] is not True and not p["complete"]]
    if missing:
        raise Conflict(INCOMPLETE_SCORES(missing=missing))
    if not summ["n_scored"]:
        raise Conflict(NO_ASSESSOR())
    start = today(store_zone(con))
    days = publicity_days if publicity_days is not None else config().get("publicity_days", 7)
    end = start + dt.timedelta(days=int(days))
    with _tx(con):
        out = _set_state(con, app, "close_review", "publicity", actor, None, publicity_start=start,
                         publicity_end=end)
        con.execute("UPDATE applications SET deadline = ? WHERE application_id = ?", [end, app_id])
    return _row(con, app_id) if out else out


# -- publicity -------------------------------------------------------------------------------------------

def objections(con, app_id: str) -> pd.DataFrame:
    cols = ["objection_id", "application_id", "text", "raised_by", "received_on", "recorded_by", "recorded_at",
            "resolution", "resolved_by", "resolved_at"]
    if not _has(con):
        return pd.DataFrame(columns=cols)
    return con.execute(f"SELECT {', '.join(cols)} FROM application_objections WHERE application_id = ? "
                       "ORDER BY recorded_at", [app_id]).df()


def object_(con, app_id: str, text: str, *, actor: str, raised_by: str | None = None, received_on=None) -> str:
    """Record an objection received during publicity; returns its id."""
    app = _row(con, app_id)
    _check_state(app, "object")
    if not (text or "").strip():
        raise InputError(REASON(action="object"))
    oid = "O" + secrets.token_hex(4)
    with _tx(con):
        con.execute("INSERT INTO application_objections VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
                    [oid, app_id, text, raised_by, received_on or today(store_zone(con)), actor, _now()])
        audit.append(con, actor, "object", "application", app_id,
                     after={"objection": oid, "text": text, "raised_by": raised_by})
    return oid


def resolve(con, app_id: str, objection_id: str, resolution: str, *, actor: str) -> dict:
    app = _row(con, app_id)
    _check_state(app, "resolve")
    o = objections(con, app_id)
    if not (o["objection_id"] == objection_id).any():
        raise NotFound(NO_OBJECTION(objection=objection_id, application=app_id))
    if not (resolution or "").strip():
        raise InputError(REASON(action="resolve"))
    with _tx(con):
        con.execute("UPDATE application_objections SET resolution = ?, resolved_by = ?, resolved_at = ? "
                    "WHERE objection_id = ?", [resolution, actor, _now(), objection_id])
        audit.append(con, actor, "resolve", "application", app_id,
                     after={"objection": objection_id, "resolution": resolution})
    return app


def end_publicity(con, app_id: str, *, actor: str, on: dt.date | None = None) -> dict:
    app = _row(con, app_id)
    _check_state(app, "end_publicity")
    day = on or today(store_zone(con))
    if app.get("publicity_end") is not None and day < app["publicity_end"]:
        raise Conflict(PUBLICITY_RUNNING(end=app["publicity_end"].isoformat()))
    o = objections(con, app_id)
    open_ = o[o["resolution"].isna()]
    if len(open_):
        raise Conflict(OPEN_OBJECTIONS(n=len(open_), ids=open_["objection_id"].tolist()))
    with _tx(con):
        return _set_state(con, app, "end_publicity", "decision", actor, None)


# -- decision and acceptance -----------------------------------------------------------------------------

def decide(con, app_id: str, decision: str, *, actor: str, reason: str | None = None, level: str | None = None
           ) -> dict:
    """The programme office's decision: ``approved`` (a project approved; a demonstration project, digital
    workshop or smart factory recognised: a designation record dated today) or ``rejected``."""
    from zhizao.portfolio.register import create_record, update_record

    if decision not in ("approved", "rejected"):
        raise InputError(BAD_DECISION(value=decision))
    app = _row(con, app_id)
    _check_state(app, "decide")
    if decision == "rejected" and not (reason or "").strip():
        raise InputError(REASON(action="decide"))
    day = today(store_zone(con)).isoformat()
    with _tx(con):
        src = f"application {app_id}"
        if decision == "approved":
            if app["project_id"]:
                update_record(con, "projects", app["project_id"], {"status": "approved", "status_date": day},
                              actor=actor, reason=reason or src, source=src)
            if app["sought"] != "project":
                create_record(con, "designations", {
                    "designation_id": f"D-{app_id}", "enterprise_id": app["enterprise_id"],
                    "project_id": app["project_id"] if app["sought"] == "demonstration_project" else None,
                    "scope": app["data"].get("scope"), "name": app["data"].get("name"),
                    "designation": app["sought"], "level": level, "programme": app["programme"], "date": day},
                    actor=actor, reason=reason or src, source=src)
            target = "approved" if app["sought"] in ("project", "demonstration_project") else "accepted"
        else:
            target = "rejected"
        return _set_state(con, app, "decide", target, actor, reason, decision=decision)


def request_acceptance(con, app_id: str, *, actor: str) -> dict:
    from zhizao.portfolio.register import update_record

    app = _row(con, app_id)
    _check_state(app, "request_acceptance")
    with _tx(con):
        if app["project_id"]:
            update_record(con, "projects", app["project_id"], {"status": "completed",
                                                               "status_date": today(store_zone(con)).isoformat()},
                          actor=actor, reason=f"application {app_id}: acceptance requested",
                          source=f"application {app_id}")
        return _set_state(con, app, "request_acceptance", "acceptance", actor, None)


def accept(con, app_id: str, accepted: bool, *, actor: str, reason: str | None = None) -> dict:
    """The acceptance (验收): passed (project status ``accepted``) or failed."""
    from zhizao.portfolio.register import update_record

    action = "accept" if accepted else "fail_acceptance"
    app = _row(con, app_id)
    step = _check_state(app, action)
    if not accepted and not (reason or "").strip():
        raise InputError(REASON(action=action))
    with _tx(con):
        if accepted and app["project_id"]:
            update_record(con, "projects", app["project_id"],
                          {"status": "accepted", "status_date": today(store_zone(con)).isoformat()}, actor=actor,
                          reason=reason or f"application {app_id}", source=f"application {app_id}")
        return _set_state(con, app, action, step.moves_to(), actor, reason)


def acceptance_view(ws, app_id: str) -> dict:
    """What the acceptance shows: per indicator the verified result from data beside the declared value, and
    the recognition criteria (declared ones with the assessors' confirmations)."""
    from zhizao.portfolio.registry import DECLARED_COLUMNS, latest_verifications

    app = _row(ws.con, app_id)
    pid = app["project_id"]
    rows = []
    ver = latest_verifications(ws, [pid]) if pid else pd.DataFrame()
    for ind, col in DECLARED_COLUMNS.items():
        v = ver[ver["indicator"] == ind] if len(ver) else ver
        r = v.iloc[0] if len(v) else None
        rows.append({"indicator": ind, "declared": app["data"].get(col),
                     "verified": None if r is None or pd.isna(r["improvement"]) else float(r["improvement"]),
                     "ci_low": None if r is None or pd.isna(r["ci_low"]) else float(r["ci_low"]),
                     "ci_high": None if r is None or pd.isna(r["ci_high"]) else float(r["ci_high"]),
                     "warnings": list(r["warnings"]) if r is not None else []})
    return {"application": app, "results": rows}


# -- lists -----------------------------------------------------------------------------------------------

COLUMNS = ["application_id", "enterprise_id", "programme", "sought", "name", "project_id", "scope", "state",
           "state_since", "deadline", "decision", "submitted_at"]


def applications(con) -> pd.DataFrame:
    """Every application (:data:`COLUMNS`, with the enterprise's district and ``overdue``)."""
    if not _has(con):
        return pd.DataFrame(columns=COLUMNS + ["district", "overdue"])
    df = con.execute(f"""SELECT {', '.join('a.' + c for c in COLUMNS)}, e.district
                         FROM applications a LEFT JOIN enterprises e USING (enterprise_id)
                         ORDER BY a.created_at""").df()
    day = today(store_zone(con))
    df["deadline"] = [None if x is None or x != x else pd.Timestamp(x).date() for x in df["deadline"]]
    df["overdue"] = [d is not None and d < day and s not in FINAL for d, s in zip(df["deadline"], df["state"])]
    return df


def queue(con, role: str, *, enterprise_id: str | None = None, district: str | None = None,
          assessor: str | None = None) -> pd.DataFrame:
    """The applications waiting for a role: an enterprise's drafts and approved projects, a district's
    submissions, an assessor's reviews and acceptances, the programme office's steps; deadline first."""
    df = applications(con)
    df = df[df["state"].isin(QUEUES.get(role, ()))]
    if role == "enterprise":
        df = df[df["enterprise_id"] == enterprise_id]
    elif role == "district":
        from zhizao.portfolio.vocabularies import vocabulary

        v = vocabulary("district")
        df = df[df["district"].map(lambda x: (v.match(x) or x) if isinstance(x, str) else x) == district]
    elif role == "assessor":
        if not _has(con):
            return df.iloc[0:0]
        mine = {a for (a,) in con.execute("SELECT application_id FROM application_assessors WHERE assessor = ? "
                                          "AND active AND coalesce(conflict, false) = false", [assessor]).fetchall()}
        df = df[df["application_id"].isin(mine)]
    return df.sort_values(["deadline", "application_id"], na_position="last").reset_index(drop=True)


def detail(ws, app_id: str) -> dict:
    """An application with its assessors, scores, objections, evidence files, history and the enterprise's
    current maturity level and eligibility."""
    from zhizao.portfolio import evidence
    from zhizao.portfolio.maturity import current_level, eligibility

    con = ws.con
    app = _row(con, app_id)
    return {"application": app, "assessors": assessors(con, app_id), "review": review_summary(con, app_id),
            "scores": scores(con, app_id), "objections": objections(con, app_id),
            "evidence": evidence.files(con, application_id=app_id),
            "history": audit.entries(con, entity="application", record=app_id),
            "maturity": current_level(ws, app["enterprise_id"]),
            "eligibility": eligibility(ws, app["enterprise_id"], app["sought"]),
            "sheet": score_sheet()}


def get(con, app_id: str) -> dict:
    """The application record (raises NotFound)."""
    return _row(con, app_id)


__all__ = [
    "QUEUES",
    "SOUGHT",
    "STATES",
    "STEPS",
    "accept",
    "acceptance_view",
    "applications",
    "assign",
    "close_review",
    "create",
    "decide",
    "declare",
    "detail",
    "edit",
    "end_publicity",
    "get",
    "is_assessor",
    "object_",
    "pre_review",
    "queue",
    "request_acceptance",
    "resolve",
    "review_summary",
    "score",
    "score_sheet",
    "submit",
    "unassign",
]
