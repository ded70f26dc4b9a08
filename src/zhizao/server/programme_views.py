"""What the programme's dashboard pages show: the register, the audit log, applications and their steps,
capability maturity. Built from the stages through the principal's TenantView (which decides what may be seen
and done); labels from the vocabularies in the page's language, texts through the catalogues.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlencode

import pandas as pd

from zhizao.i18n import N_, NULL
from zhizao.portfolio.registry import finite_float
from zhizao.schema import TABLES
from zhizao.server.views import Page, cell, num_cell

TABLE_LABELS = {"programmes": N_("Programmes"), "enterprises": N_("Enterprises"), "scopes": N_("Scopes"),
                "projects": N_("Projects"), "designations": N_("Designations"),
                "programme_targets": N_("Programme targets")}
#: Columns shown in the register's lists (the record page shows every column).
LIST_COLUMNS = {
    "programmes": ("programme_id", "name", "year", "level", "authority"),
    "enterprises": ("enterprise_id", "name", "industry", "district", "park"),
    "scopes": ("scope_id", "enterprise_id", "name", "kind", "parent"),
    "projects": ("project_id", "enterprise_id", "name", "type", "programme", "start", "status"),
    "designations": ("designation_id", "enterprise_id", "name", "scope", "designation", "level", "date", "revoked"),
    "programme_targets": ("programme_id", "year", "district", "measure", "target"),
}
STATE_LABELS = {"draft": N_("Draft"), "submitted": N_("District pre-review"), "expert_review": N_("Expert review"),
                "publicity": N_("Publicity"), "decision": N_("Decision"), "approved": N_("Approved"),
                "acceptance": N_("Acceptance"), "accepted": N_("Accepted"), "rejected": N_("Rejected"),
                "acceptance_failed": N_("Acceptance failed")}
#: the audit log's entities as a page names them (the register's tables and the workflow's records)
ENTITY_LABELS = {**TABLE_LABELS, "application": N_("Application"), "criterion": N_("Criterion"),
                 "maturity": N_("Capability maturity"), "evidence": N_("Evidence files"),
                 "register_settings": N_("Register settings")}
SOUGHT_LABELS = {"project": N_("Project"), "demonstration_project": N_("Demonstration project"),
                 "digital_workshop": N_("Digital workshop"), "smart_factory": N_("Smart factory")}
ACTION_LABELS = {"create": N_("created"), "update": N_("updated"), "withdraw": N_("withdrawn"),
                 "baseline": N_("baseline"), "setting": N_("setting"), "edit": N_("edited"),
                 "submit": N_("submitted"), "pre_approve": N_("passed the district pre-review"),
                 "pre_return": N_("returned by the district"), "pre_reject": N_("rejected by the district"),
                 "assign": N_("assessor assigned"), "unassign": N_("assessor withdrawn"),
                 "declare": N_("conflict of interest declared"), "score": N_("scored"),
                 "close_review": N_("review closed, publicity opened"), "object": N_("objection recorded"),
                 "resolve": N_("objection answered"), "end_publicity": N_("publicity ended"),
                 "decide": N_("decided"), "request_acceptance": N_("acceptance requested"),
                 "accept": N_("accepted"), "fail_acceptance": N_("acceptance failed"), "upload": N_("file attached"),
                 "confirm": N_("criterion confirmed"), "not_confirm": N_("criterion not confirmed"),
                 "assess": N_("maturity assessed")}
VERDICT_LABELS = {"pass": N_("passed"), "fail": N_("failed"), "no_data": N_("no data"),
                  "pending": N_("to be confirmed"), "confirmed": N_("confirmed"),
                  "not_confirmed": N_("not confirmed"), "info": N_("information"), "indicative": N_("indicative")}
APP_FIELDS = (("name", N_("Name")), ("type", N_("Project type")), ("scope", N_("Scope")),
              ("investment", N_("Total investment (CNY)")), ("start", N_("Start")),
              ("commissioning_end", N_("End of commissioning")), ("declared_efficiency", N_("Declared efficiency")),
              ("declared_defect_rate", N_("Declared defect rate reduction")),
              ("declared_operating_cost", N_("Declared operating cost reduction")),
              ("declared_unit_energy", N_("Declared unit energy reduction")),
              ("declared_development_cycle", N_("Declared development cycle reduction")),
              ("description", N_("Description")))
#: the fields of an application's audit entries: its data, its state and its assessors
APP_LABELS = {**dict(APP_FIELDS), "state": N_("State"), "assessor": N_("Assessor")}


def column_label(pg: Page, table: str, column: str) -> str:
    """The column's label: the Chinese label of the import template on Chinese pages, the name on English."""
    if pg.lang == "zh":
        from zhizao.portfolio.register import HEADERS

        return HEADERS.get(table, {}).get(column, column)
    return column.replace("_", " ")


def _shown_scaled(pg: Page, table: str, column: str) -> tuple[str, float] | None:
    """(label, factor) of a column shown in another unit on this page (on Chinese pages the projects'
    investment in 万元, as the programme's documents write it: :data:`zhizao.portfolio.register.SCALED`)."""
    if pg.lang == "zh":
        from zhizao.portfolio.register import SCALED

        for label, canonical, factor in SCALED.get(table, {}).values():
            if canonical == column:
                return label, factor
    return None


def display_label(pg: Page, table: str, column: str) -> str:
    """The label of a column whose values :func:`show` displays: as :func:`column_label`, except a column shown
    in another unit (:func:`_shown_scaled`; forms keep the stored unit and :func:`column_label`)."""
    scaled = _shown_scaled(pg, table, column)
    return scaled[0] if scaled else column_label(pg, table, column)


def show(pg: Page, table: str, column: str, v) -> str:
    """A stored value for display: vocabulary labels, dates as dates, numbers formatted (a column shown in
    another unit in that unit: :func:`_shown_scaled`)."""
    if v is None or (isinstance(v, float) and v != v):
        return NULL
    scaled = _shown_scaled(pg, table, column)
    if scaled:
        factor = scaled[1]
        return pg.f.num(float(v) / factor, 0 if float(v) % factor == 0 else 2)
    try:
        c = TABLES[table].column(column)
    except KeyError:
        return str(v)
    if c.vocabulary:
        from zhizao.portfolio.vocabularies import vocabulary

        return vocabulary(c.vocabulary).label(v, pg.lang)
    if c.type == "date":
        return pg.register_date(v)
    if c.type == "float" and column.startswith("declared_"):  # a declared improvement (a fraction): 67.1%
        return pg.f.pct(v)
    if c.type == "float":
        return pg.f.num(v, 2) if abs(float(v)) < 10 else pg.f.num(v)
    return str(v)


def _href(path: str, q: dict) -> str:
    q = {k: v for k, v in q.items() if v not in (None, "")}
    return path + ("?" + urlencode(q) if q else "")


def pager(pg: Page, p: dict, path: str, q: dict) -> dict:
    """Links to the other pages of a list."""
    pages = []
    for n in sorted({1, p["page"] - 2, p["page"] - 1, p["page"], p["page"] + 1, p["page"] + 2, p["pages"]}):
        if 1 <= n <= p["pages"]:
            pages.append({"n": n, "href": _href(path, {**q, "page": n}), "current": n == p["page"]})
    first = (p["page"] - 1) * p["size"] + 1 if p["total"] else 0
    last = min(p["page"] * p["size"], p["total"])
    return {"pages": pages, "text": pg._("Rows %(first)s-%(last)s of %(total)s") % {
        "first": pg.f.num(first), "last": pg.f.num(last), "total": pg.f.num(p["total"])}}


def sort_head(pg: Page, label: str, column: str, path: str, q: dict, num: bool = False) -> dict:
    """A column header that sorts the list by the column (again: descending)."""
    cur = q.get("sort") or ""
    nxt = "-" + column if cur == column else column
    mark = " ▲" if cur == column else (" ▼" if cur == "-" + column else "")
    head = num_cell(label + mark) if num else cell(label + mark)
    head["href"] = _href(path, {**q, "sort": nxt, "page": 1})
    return head


# -- the register ---------------------------------------------------------------------------------------

def register_index(view, pg: Page) -> dict:
    rows = []
    for t, label in TABLE_LABELS.items():
        n = len(view.register_rows(t))
        rows.append([cell(pg._(label), f"/register/{t}"), num_cell(pg.f.num(n))])
    return {"table": {"head": [cell(pg._("Table")), num_cell(pg._("Records"))], "rows": rows, "foot": None},
            "office": view.office}


def register_list(view, pg: Page, table: str, q: dict) -> dict:
    from zhizao.portfolio.listing import page

    df = view.register_rows(table)
    key = TABLES[table].key
    cols = LIST_COLUMNS[table]
    p = page(df, search=q.get("q"), sort=q.get("sort") or None, number=int(q.get("page") or 1), size=50)
    path = f"/register/{table}"
    head = [sort_head(pg, display_label(pg, table, c), c, path, q) for c in cols]
    rows = []
    for rec in p["rows"].to_dict("records"):
        k = "|".join("" if rec[c] is None or rec[c] != rec[c] else str(rec[c]) for c in key)
        href = f"/register/{table}/{quote(k, safe='')}"
        rows.append([cell(show(pg, table, c, rec[c]), href if i == 0 else None) for i, c in enumerate(cols)])
    return {"table": {"head": head, "rows": rows, "foot": None}, "pager": pager(pg, p, path, q),
            "label": pg._(TABLE_LABELS[table]), "table_name": table, "office": view.office, "q": q,
            "n": p["total"]}


def _text(v) -> str:
    """A text column's value; empty for a null of any kind (None, NaN)."""
    return "" if v is None or (isinstance(v, float) and v != v) else str(v)


def _changed(pg: Page, entity: str, column: str, v) -> str:
    """One value of an audit entry's change as the page shows it: a workflow state or a register value by its
    label, a missing value as ∅."""
    if v is None or (isinstance(v, float) and v != v):
        return "∅"
    if entity == "application" and column == "state" and v in STATE_LABELS:
        return pg._(STATE_LABELS[v])
    return show(pg, entity, column, v) if entity in TABLES else str(v)


def history_table(pg: Page, h: pd.DataFrame) -> dict:
    from zhizao.portfolio.register import diff_text

    rows = []
    for e in h.itertuples(index=False):
        ch = e.changes if isinstance(e.changes, dict) else {}
        label = APP_LABELS if e.entity == "application" else {}
        changes = diff_text({k: tuple(v) for k, v in ch.items()},
                            lambda k, ent=e.entity, lab=label: pg._(lab[k]) if k in lab else display_label(pg, ent, k),
                            lambda k, v, ent=e.entity: _changed(pg, ent, k, v))
        rows.append([cell(pg.datetime(e.changed_at)), cell(pg.who(e.actor)), cell(pg._(ACTION_LABELS.get(e.action,
                                                                                                  e.action))),
                     cell(pg._(ENTITY_LABELS[e.entity]) if e.entity in ENTITY_LABELS else e.entity),
                     cell(e.record), cell(changes), cell(_text(e.reason)), cell(_text(e.source))])
    return {"head": [cell(pg._("When")), cell(pg._("Who")), cell(pg._("What")), cell(pg._("Table")),
                     cell(pg._("Record")), cell(pg._("Changes")), cell(pg._("Why")), cell(pg._("Source"))],
            "rows": rows, "foot": None}


def register_record(view, pg: Page, table: str, key: str, as_of: str | None) -> dict:
    rec = view.register_record(table, key)
    then = view.register_as_of(table, key, as_of) if as_of else None
    facts = [(display_label(pg, table, c), show(pg, table, c, rec.get(c))) for c in TABLES[table].names]
    form = []
    for c in TABLES[table].columns:
        if c.name in TABLES[table].key:
            continue
        v = rec.get(c.name)
        options = None
        if c.vocabulary:
            from zhizao.portfolio.vocabularies import vocabulary

            options = [("", NULL)] + [(e.code, e.label(pg.lang)) for e in vocabulary(c.vocabulary).entries]
        form.append({"name": c.name, "label": column_label(pg, table, c.name), "options": options,
                     "value": "" if v is None else (v.isoformat() if isinstance(v, dt.date) else str(v)),
                     "type": "date" if c.type == "date" else "text"})
    extra: dict[str, object] = {}
    if table == "projects":
        from zhizao.portfolio.register import status_history
        from zhizao.verify import unverifiable

        extra["status"] = [{"status": show(pg, "projects", "status", h["status"]),
                            "date": pg.register_date(h["date"]) if h["date"] else NULL,
                            "actor": pg.who(h["actor"])} for h in status_history(view.read.con, key)]
        why = unverifiable(view.ws, [key]).get(key)
        extra["unverifiable"] = why.text(pg.lang) if why is not None else None
    return {"table_name": table, "label": pg._(TABLE_LABELS[table]), "key": key, "facts": facts,
            "then": [(display_label(pg, table, c), show(pg, table, c, then.get(c))) for c in TABLES[table].names]
            if then else None, "as_of": as_of, "then_missing": bool(as_of) and then is None,
            "history": history_table(pg, view.register_history(table, key)), "office": view.office, "form": form,
            **extra}


def register_new(view, pg: Page, table: str) -> dict:
    form = []
    for c in TABLES[table].columns:
        options = None
        if c.vocabulary:
            from zhizao.portfolio.vocabularies import vocabulary

            options = [("", NULL)] + [(e.code, e.label(pg.lang)) for e in vocabulary(c.vocabulary).entries]
        form.append({"name": c.name, "label": column_label(pg, table, c.name) + ("*" if c.required else ""),
                     "options": options, "value": "", "type": "date" if c.type == "date" else "text"})
    return {"table_name": table, "label": pg._(TABLE_LABELS[table]), "form": form}


def audit_page(view, pg: Page, q: dict) -> dict:
    size = 50
    number = int(q.get("page") or 1)
    rows, total = view.audit_entries(entity=q.get("entity") or None, actor=q.get("actor") or None,
                                     search=q.get("q") or None, limit=size, offset=(number - 1) * size,
                                     descending=True)
    p = {"page": number, "pages": max(1, -(-total // size)), "size": size, "total": total}
    ok, n, problem = view.audit_check()
    return {"table": history_table(pg, rows), "pager": pager(pg, p, "/audit", q), "q": q, "ok": ok, "n": n,
            "problem": problem.text(pg.lang) if problem else None}


# -- applications ---------------------------------------------------------------------------------------

def _app_rows(pg: Page, df: pd.DataFrame) -> list:
    rows = []
    for a in df.to_dict("records"):
        dl = a.get("deadline")
        rows.append([cell(a["application_id"], f"/applications/{a['application_id']}"), cell(a.get("name") or ""),
                     cell(a["enterprise_id"]), cell(pg._(SOUGHT_LABELS.get(a["sought"], a["sought"]))),
                     cell(pg._(STATE_LABELS.get(a["state"], a["state"]))),
                     {**cell(pg.register_date(dl) if dl else NULL), "cls": "fail" if a.get("overdue") else None}])
    return rows


def _app_head(pg: Page, path: str | None = None, q: dict | None = None) -> list:
    cols = (("application_id", pg._("Application")), ("name", pg._("Name")), ("enterprise_id", pg._("Enterprise")),
            ("sought", pg._("Sought")), ("state", pg._("State")), ("deadline", pg._("Deadline")))
    if path is None:
        return [cell(label) for _c, label in cols]
    return [sort_head(pg, label, c, path, q or {}) for c, label in cols]


def applications_page(view, pg: Page, q: dict) -> dict:
    from zhizao.portfolio.listing import page

    mine = view.queue()
    df = view.applications()
    p = page(df, search=q.get("q"), columns=("application_id", "name", "enterprise_id", "project_id"),
             sort=q.get("sort") or "-application_id", number=int(q.get("page") or 1), size=50)
    return {"queue": {"head": _app_head(pg), "rows": _app_rows(pg, mine), "foot": None} if len(mine) else None,
            "all": {"head": _app_head(pg, "/applications", q), "rows": _app_rows(pg, p["rows"]), "foot": None},
            "pager": pager(pg, p, "/applications", q), "q": q, "n": p["total"],
            "can_apply": view.access.principal.kind == "user" and _applies(view)}


def _applies(view) -> bool:
    try:
        view.require_apply(None)
        return True
    except Exception:
        return False


def application_new(view, pg: Page) -> dict:
    from zhizao.portfolio.vocabularies import vocabulary

    return {"sought": [(k, pg._(v)) for k, v in SOUGHT_LABELS.items()],
            "types": [(e.code, e.label(pg.lang)) for e in vocabulary("project_type").entries],
            "programmes": [(r["programme_id"], r.get("name") or r["programme_id"])
                           for r in view.register_rows("programmes").to_dict("records")],
            "fields": [(k, pg._(v)) for k, v in APP_FIELDS if k != "type"]}


def application_detail(view, pg: Page, app_id: str) -> dict:
    from zhizao.portfolio import workflow
    from zhizao.portfolio.maturity import LEVEL_NAMES

    app = view.application(app_id)
    d = workflow.detail(view.ws, app_id)
    steps = [a for a, s in workflow.STEPS.items() if app["state"] in s.sources and view.may_take(app, a)]
    data = app["data"]
    facts = [(pg._("Enterprise"), app["enterprise_id"]), (pg._("Sought"), pg._(SOUGHT_LABELS[app["sought"]])),
             (pg._("State"), pg._(STATE_LABELS[app["state"]])),
             (pg._("Deadline"), pg.register_date(app["deadline"]) if app.get("deadline") else NULL),
             (pg._("Programme"), app.get("programme") or NULL), (pg._("Project"), app.get("project_id") or NULL)]
    for k, label in APP_FIELDS:
        v = data.get(k)
        if k == "type" and v:
            v = show(pg, "projects", "type", _type_code(v))
        elif (k.startswith("declared_") or k == "investment") and not isinstance(v, bool) and (
                x := finite_float(v)) is not None:
            # a declared change is a fraction (0.25 -> 25.0%); the investment a sum of yuan (12,000,000)
            v = pg.f.pct(x) if k.startswith("declared_") else pg.f.num(x)
        if v not in (None, ""):
            facts.append((pg._(label), str(v)))
    mat = d["maturity"]
    maturity = None
    if mat is not None:
        maturity = pg._("Level %(level)s %(name)s (score %(score)s, %(source)s, %(date)s)") % {
            "level": mat["level"], "name": LEVEL_NAMES.get(mat["level"], ""),
            "score": pg.f.num(mat["score"], 2) if mat["score"] is not None else NULL, "source": mat["source"],
            "date": pg.register_date(mat["date"])}
    elig = [{"text": r["text"].get(pg.lang) or r["text"].get("zh"), "passed": r["passed"],
             "basis": r["basis"].text(pg.lang)} for r in d["eligibility"]]
    sheet = [{"id": c["id"], "label": c.get(pg.lang) or c["zh"], "max": c["max"]} for c in d["sheet"]["criteria"]]
    assessors = [[cell(r.assessor), cell({True: pg._("conflict of interest"), False: pg._("no conflict"),
                                            None: pg._("not declared")}[_tri(r.conflict)]),
                  cell(r.conflict_note if isinstance(r.conflict_note, str) else "")]
                 for r in d["assessors"].itertuples(index=False) if r.active]
    labels = {c["id"]: c["label"] for c in sheet}
    scores = [[cell(r.assessor), cell(labels.get(r.criterion, r.criterion)), num_cell(pg.f.num(r.score, 1)),
               cell(r.comment if isinstance(r.comment, str) else "")] for r in d["scores"].itertuples(index=False)]
    objections = [{"id": r.objection_id, "text": r.text, "by": r.raised_by if isinstance(r.raised_by, str) else "",
                   "resolution": r.resolution if isinstance(r.resolution, str) else None}
                  for r in d["objections"].itertuples(index=False)]
    evidence = [[cell(r.name, f"/evidence/{r.file_id}"), num_cell(pg.f.num(r.size)), cell(r.sha256[:16] + "…"),
                 cell(r.uploaded_by)] for r in view.evidence_list(app_id).itertuples(index=False)]
    acceptance = None
    if app["state"] in ("acceptance", "accepted", "acceptance_failed", "approved"):
        acceptance = _acceptance(view, pg, app)
    from zhizao.portfolio.vocabularies import vocabulary

    levels = [(e.code, e.label(pg.lang)) for e in vocabulary("level").entries]
    return {"app": app, "facts": facts, "steps": steps, "levels": levels, "maturity": maturity, "eligibility": elig,
            "sheet": sheet, "assessors": assessors, "scores": scores, "objections": objections,
            "evidence": evidence, "review": d["review"], "acceptance": acceptance,
            "history": history_table(pg, d["history"]), "data": data, "fields": [(k, pg._(v)) for k, v in APP_FIELDS],
            "state_label": pg._(STATE_LABELS[app["state"]]), "sought_label": pg._(SOUGHT_LABELS[app["sought"]])}


def _tri(v):
    if v is None or (isinstance(v, float) and v != v):
        return None
    return bool(v)


def _type_code(v):
    from zhizao.portfolio.vocabularies import vocabulary

    return vocabulary("project_type").match(v) or v


def _acceptance(view, pg: Page, app: dict) -> dict:
    from zhizao.portfolio import workflow
    from zhizao.portfolio.recognition import recognition_checks
    from zhizao.server.views import INDICATOR_LABELS

    v = workflow.acceptance_view(view.ws, app["application_id"])
    rows = []
    for r in v["results"]:
        ci = f"{pg.f.pct(r['ci_low'])} … {pg.f.pct(r['ci_high'])}" if r["ci_low"] is not None else NULL
        rows.append([cell(pg._(INDICATOR_LABELS.get(r["indicator"], r["indicator"]))),
                     num_cell(pg.f.pct(r["declared"]) if r["declared"] is not None else NULL),
                     num_cell(pg.f.pct(r["verified"]) if r["verified"] is not None else NULL), num_cell(ci)])
    from zhizao.portfolio.rulesets import ruleset as get_ruleset

    criteria, ruleset = [], None
    designation = app["sought"] if app["sought"] in ("digital_workshop", "smart_factory") else "digital_workshop"
    try:
        df = recognition_checks(view.ws, app["enterprise_id"], designation, scope=app["scope"] or None)
        ruleset = df["ruleset"].iloc[0] if len(df) else None
        rs = get_ruleset(ruleset) if ruleset else None
        confirmable = {c.id for c in rs.criteria if c.kind == "declared" or c.measure in (
            "production_efficiency_change", "operating_cost_change")} if rs else set()
        for r in df.to_dict("records"):
            criteria.append({"id": r["criterion"], "text": r["text_zh"] if pg.lang == "zh" else r["text_en"],
                             "kind": r["kind"], "verdict": r["verdict"],
                             "verdict_label": pg._(VERDICT_LABELS.get(r["verdict"], r["verdict"])),
                             "confirmable": r["criterion"] in confirmable,
                             "confirmation": r.get("confirmation") or None,
                             "basis": r["basis"].text(pg.lang) if r["basis"] is not None else "",
                             "value": pg.f.pct(r["value"]) if isinstance(r["value"], float) else
                             (str(r["value"]) if r["value"] is not None else NULL)})
    except Exception:
        criteria = []
    return {"results": {"head": [cell(pg._("Indicator")), num_cell(pg._("Declared value")),
                                 num_cell(pg._("Verified value")), num_cell(pg._("Interval"))],
                        "rows": rows, "foot": None}, "criteria": criteria, "ruleset": ruleset}


# -- capability maturity --------------------------------------------------------------------------------

#: The maturity page without the model's requirement clauses: what an enterprise reads, and (the programme office
#: only) where the clauses are entered; the model file's own note names its keys, for whoever edits it
REQUIREMENTS_MISSING = N_("The requirement clauses of the maturity model have not been entered yet: the text of "
                          "GB/T 39116-2020 is copyrighted, and the programme office enters it from the standard. "
                          "Until then the questionnaire shows what the data give and cannot score the requirements.")
REQUIREMENTS_WHERE = N_("How to enter them: docs/programme.md, section 3 (the model file %(file)s).")
MODEL_FILE = "src/zhizao/portfolio/data/maturity/gbt39116-2020.yaml"


def maturity_page(view, pg: Page, enterprise_id: str) -> dict:
    from zhizao.portfolio.maturity import LEVEL_NAMES, assessments, current_level, eligibility, questionnaire

    view.require_enterprise_visible(enterprise_id)
    q = questionnaire(view.ws, enterprise_id)
    cur = current_level(view.ws, enterprise_id)
    hist = assessments(view.ws, enterprise_id)
    rows = [[cell(pg.register_date(r.assessed_on)), cell(r.source), num_cell(str(r.level)),
             num_cell(pg.f.num(r.score, 2) if r.score == r.score and r.score is not None else NULL),
             cell(pg._("report") if isinstance(r.report_file, str) else "",
                   f"/evidence/{r.report_file}" if isinstance(r.report_file, str) else None),
             cell(pg.who(r.recorded_by))]
            for r in hist.itertuples(index=False)]
    elig = []
    for d in ("demonstration_project", "demonstration_factory", "ladder_excellent"):
        for r in eligibility(view.ws, enterprise_id, d):
            elig.append({"text": r["text"].get(pg.lang) or r["text"]["zh"], "passed": r["passed"],
                         "basis": r["basis"].text(pg.lang)})
    return {"enterprise_id": enterprise_id,
            "current": None if cur is None else {**cur, "name": LEVEL_NAMES.get(cur["level"], ""),
                                                 "date": pg.register_date(cur["date"])},
            "history": {"head": [cell(pg._("Assessed on")), cell(pg._("Source")), num_cell(pg._("Level")),
                                 num_cell(pg._("Score")), cell(pg._("Report")), cell(pg._("Recorded by"))],
                        "rows": rows, "foot": None} if rows else None,
            "facts": [m.text(pg.lang) for m in q["facts"].get("basis", [])],
            "systems": q["systems"], "requirements": q["requirements"], "has_requirements": q["has_requirements"],
            "note": pg._(REQUIREMENTS_MISSING) + (" " + pg._(REQUIREMENTS_WHERE) % {"file": MODEL_FILE}
                                                 if view.office else ""),
            "scores": [(v["code"], v[pg.lang] if pg.lang in v else v["zh"]) for v in q["scores"]],
            "eligibility": elig, "can_answer": _answers(view, enterprise_id), "office": view.office}


def _answers(view, enterprise_id: str) -> bool:
    try:
        view.require_questionnaire(enterprise_id)
        return True
    except Exception:
        return False


__all__ = [
    "application_detail",
    "application_new",
    "applications_page",
    "audit_page",
    "maturity_page",
    "pager",
    "register_index",
    "register_list",
    "register_new",
    "register_record",
    "show",
]
