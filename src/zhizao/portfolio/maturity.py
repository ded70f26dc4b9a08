"""Capability maturity (GB/T 39116-2020 model, GB/T 39117-2020 assessment): the model as data, the scoring
rule, self-assessments of enterprises and the eligibility rules that use the level.

The model
---------
``portfolio/data/maturity/gbt39116-2020.yaml``: five levels (1 规划级, 2 规范级, 3 集成级, 4 优化级, 5 引领级),
four capability elements (人员, 技术, 资源, 制造), their capability domains and 20 sub-domains, each with its
source. The requirements of each sub-domain at each level are *not* shipped: the standard's text is not
invented here; the file carries them (``requirements: {level: [{id, zh, en, clause, weight}]}``) for the
programme office to fill in, and says so. Until then a questionnaire cannot score requirements and the level
of an enterprise comes from the public self-diagnosis platform's results (:func:`import_results`).

The scoring rule
----------------
``portfolio/data/maturity/scoring-gbt39117-2020.yaml`` (:func:`score`): requirement scores 0 / 0.5 / 0.8 / 1
and a level reached at a weighted score of 0.8 or more are marked as the standard's (as published guides report
it); the averaging over sub-domains and domains, levels in order and the overall score (level reached plus the
score of the next level) are marked as zhizao's reading. Every item can be changed in the file.

Self-assessments
----------------
Table ``maturity_assessments``: per enterprise and date, the level, the overall score, the score per domain,
where it comes from (``platform``: an import of the self-diagnosis platform's results with its report file;
``questionnaire``: zhizao's questionnaire, its answers and the facts the data gave; ``assessor``: an assessor's
assessment) and who recorded it. The current level of an enterprise is that of its latest assessment.
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

from zhizao.errors import InputError, NotFound
from zhizao.messages import DAY, define
from zhizao.portfolio import audit
from zhizao.store import records as store_records

DATA = Path(__file__).parent / "data"
MODEL = "gbt39116-2020"
RULE = "scoring-gbt39117-2020"
LEVEL_NAMES = {1: "规划级", 2: "规范级", 3: "集成级", 4: "优化级", 5: "引领级"}
SOURCES = ("platform", "questionnaire", "assessor")
#: Systems an enterprise declares in the questionnaire (the data cannot tell them).
SYSTEMS = ("ERP", "MES", "PLM", "CAD/CAE/CAPP", "APS", "WMS", "QMS", "SCADA", "EMS", "CRM", "SRM")

DDL = """CREATE TABLE IF NOT EXISTS maturity_assessments (
    assessment_id VARCHAR NOT NULL, enterprise_id VARCHAR NOT NULL, assessed_on DATE NOT NULL, source VARCHAR NOT NULL,
    model VARCHAR NOT NULL, level INTEGER, score DOUBLE, domain_scores VARCHAR, answers VARCHAR, facts VARCHAR,
    report_file VARCHAR, note VARCHAR, recorded_by VARCHAR NOT NULL, recorded_at TIMESTAMPTZ NOT NULL)"""
COLUMNS = ["assessment_id", "enterprise_id", "assessed_on", "source", "model", "level", "score", "domain_scores",
           "answers", "facts", "report_file", "note", "recorded_by", "recorded_at"]

BAD_MODEL = define("maturity.bad_model", "maturity file %(file)s: %(error)s")
NO_MODEL = define("maturity.no_model", "maturity file %(name)s.yaml not found")
BAD_LEVEL = define("maturity.bad_level", "%(value)s is not a maturity level (1-5, 一级-五级, 规划级-引领级)")
BAD_SCORE = define("maturity.bad_score", "%(column)s = %(value)s is not a score between 0 and %(max)s")
BAD_ANSWER = define("maturity.bad_answer", "requirement %(requirement)s: %(value)s is not one of the scores %(scores)s")
UNKNOWN_REQUIREMENT = define("maturity.unknown_requirement", "requirement %(requirement)s is not in the model "
                                                             "%(model)s")
NO_REQUIREMENTS = define("maturity.no_requirements", "the model %(model)s has no requirement texts yet: the programme "
                                                     "office fills them in from GB/T 39116-2020 (see the file's "
                                                     "requirements_note)")
IMPORT_ROW = define("maturity.import_row", "line %(line)s: %(problem)s")
UNKNOWN_ENTERPRISE = define("maturity.unknown_enterprise", "enterprise %(enterprise)s is not registered")
MISSING_COLUMN = define("maturity.missing_column", "%(file)s has no column %(column)s (or %(label)s)")
MISSING_REPORT = define("maturity.missing_report", "report file %(name)s not found in %(folder)s")
F_SHARE = define("maturity.fact.share", "digital equipment share: %(digital)s of %(n)s registered equipment")
F_CONNECTED = define("maturity.fact.connected", "equipment connectivity: %(reported)s of %(n)s registered equipment "
                                                "sent data at any time")
F_UPLOAD = define("maturity.fact.upload", "data upload rate in %(start)s .. %(end)s: %(reported)s of %(n)s "
                                          "registered equipment")
F_NONE = define("maturity.fact.none", "no registered equipment of %(enterprise)s: the data give no answer")
E_BASIS = define("maturity.eligibility", "current level %(level)s (%(source)s, %(date)s)")
E_NONE = define("maturity.eligibility_none", "no capability maturity assessment of %(enterprise)s")


# -- the model and the rule ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SubDomain:
    id: str
    zh: str
    en: str
    domain: str
    element: str
    weight: float
    source: str
    requirements: dict  # level -> list of dicts


@dataclass(frozen=True, eq=False)
class Model:
    name: str
    version: str
    title: dict
    source: str
    requirements_note: dict
    levels: tuple
    elements: tuple  # (id, zh, en, source)
    domains: tuple  # (id, zh, en, element, weight, source)
    subdomains: tuple[SubDomain, ...]
    path: str = ""

    def requirements(self, level: int | None = None) -> list[dict]:
        """Every requirement (with ``subdomain``, ``domain``, ``level``) of the model, or of one level."""
        out = []
        for s in self.subdomains:
            for lv, reqs in sorted(s.requirements.items()):
                if level is not None and lv != level:
                    continue
                for r in reqs:
                    out.append({**r, "subdomain": s.id, "domain": s.domain, "element": s.element, "level": lv})
        return out

    @property
    def has_requirements(self) -> bool:
        return bool(self.requirements())

    def domain_label(self, did: str, lang: str = "zh") -> str:
        for d in self.domains:
            if d[0] == did:
                return d[1] if lang == "zh" else d[2]
        return did


def _path(name: str, kind: str) -> Path:
    import os

    extra = os.environ.get("ZHIZAO_MATURITY")
    for root in ([Path(extra)] if extra else []) + [DATA / kind]:
        p = Path(root) / f"{name}.yaml"
        if p.is_file():
            return p
    raise NotFound(NO_MODEL(name=name))


@cache
def model(name: str = MODEL) -> Model:
    """The maturity model ``name`` (see the module docstring)."""
    return load_model(_path(name, "maturity"))


def load_model(p: str | Path) -> Model:
    """A maturity model file (the format of ``gbt39116-2020.yaml``).

    Raises
    ------
    zhizao.errors.InputError
        A malformed file, or requirements without ids of their own.
    """
    p = Path(p)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
        elements, domains, subs = [], [], []
        for e in doc["elements"]:
            elements.append((e["id"], e["zh"], e["en"], e.get("source", "")))
            for d in e["domains"]:
                domains.append((d["id"], d["zh"], d["en"], e["id"], float(d.get("weight", 1)), d.get("source", "")))
                for s in d["subdomains"]:
                    reqs = {int(k): list(v or []) for k, v in (s.get("requirements") or {}).items()}
                    subs.append(SubDomain(s["id"], s["zh"], s["en"], d["id"], e["id"], float(s.get("weight", 1)),
                                          s.get("source", ""), reqs))
        ids = [r.get("id") for s in subs for reqs in s.requirements.values() for r in reqs]
        if len(ids) != len(set(ids)) or any(not i for i in ids):
            raise ValueError("every requirement needs an id of its own")
        return Model(doc["model"], str(doc.get("version", "")), dict(doc.get("title") or {}),
                     " ".join(str(doc.get("source", "")).split()),
                     {k: " ".join(str(v).split()) for k, v in dict(doc.get("requirements_note") or {}).items()},
                     tuple((int(lv["level"]), lv["zh"], lv["en"], lv.get("source", "")) for lv in doc["levels"]),
                     tuple(elements), tuple(domains), tuple(subs), str(p))
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        raise InputError(BAD_MODEL(file=str(p), error=f"{type(e).__name__}: {e}")) from None


@cache
def scoring_rule(name: str = RULE) -> dict:
    """The scoring rule ``name`` as a dict (see the module docstring)."""
    p = _path(name, "maturity")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
        doc["score_values"] = {v["code"]: float(v["score"]) for v in doc["scores"]["values"]}
        doc["threshold_value"] = float(doc["threshold"]["value"])
        return doc
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        raise InputError(BAD_MODEL(file=str(p), error=f"{type(e).__name__}: {e}")) from None


def answer_value(value, rule: dict | None = None) -> float:
    """A requirement's score from an answer: a score of the rule, its code or its label (全部满足, ...).

    Raises
    ------
    zhizao.errors.InputError
    """
    rule = rule or scoring_rule()
    vals = rule["score_values"]
    labels = {}
    for v in rule["scores"]["values"]:
        labels[str(v["zh"])] = float(v["score"])
        labels[str(v["en"]).casefold()] = float(v["score"])
        labels[str(v["code"])] = float(v["score"])
    if isinstance(value, str):
        t = value.strip()
        if t in labels or t.casefold() in labels:
            return labels[t] if t in labels else labels[t.casefold()]
        try:
            value = float(t)
        except ValueError:
            raise InputError(BAD_ANSWER(requirement="?", value=value, scores=sorted(vals.values()))) from None
    v = float(value)
    if not any(abs(v - s) < 1e-9 for s in vals.values()):
        raise InputError(BAD_ANSWER(requirement="?", value=value, scores=sorted(vals.values())))
    return v


def score(answers: dict, m: Model | None = None, rule: dict | None = None) -> dict:
    """Score a self-assessment by the rule (see the module docstring).

    Parameters
    ----------
    answers : dict
        requirement id -> score (0, 0.5, 0.8, 1) or its code / label. Requirements without an answer count
        as 0 (not met).
    m : Model, optional
    rule : dict, optional

    Returns
    -------
    dict
        ``levels``: level -> {score, reached, domains: {domain: score}, n_requirements}; ``level``: the highest
        level reached (0 when none); ``score``: the overall score; ``domain_scores``: the scores of the domains
        at the first level not reached (at the highest level when all are); ``basis``: the rule's items with
        their basis (standard / reading).

    Raises
    ------
    zhizao.errors.InputError
        An answer to an unknown requirement, an answer that is no score, or a model without requirements.
    """
    m = m or model()
    rule = rule or scoring_rule()
    reqs = {r["id"]: r for r in m.requirements()}
    if not reqs:
        raise InputError(NO_REQUIREMENTS(model=m.name))
    vals = {}
    for rid, v in answers.items():
        if rid not in reqs:
            raise InputError(UNKNOWN_REQUIREMENT(requirement=rid, model=m.name))
        try:
            vals[rid] = answer_value(v, rule)
        except InputError:
            raise InputError(BAD_ANSWER(requirement=rid, value=v, scores=sorted(rule["score_values"].values()))) \
                from None
    dweight = {d[0]: d[4] for d in m.domains}
    threshold = rule["threshold_value"]
    levels = {}
    for lv, *_ in m.levels:
        dom: dict[str, list] = {}
        n = 0
        for s in m.subdomains:
            rs = s.requirements.get(lv) or []
            if not rs:
                continue
            w = [float(r.get("weight", 1)) for r in rs]
            sc = sum(wi * vals.get(r["id"], 0.0) for wi, r in zip(w, rs)) / sum(w)
            dom.setdefault(s.domain, []).append((s.weight, sc))
            n += len(rs)
        dscore = {d: sum(w * x for w, x in v) / sum(w for w, _ in v) for d, v in dom.items()}
        if dscore:
            total = sum(dweight.get(d, 1.0) * x for d, x in dscore.items()) / sum(dweight.get(d, 1.0) for d in dscore)
        else:
            total = None
        levels[lv] = {"score": total, "domains": dscore, "n_requirements": n}
    reached = 0
    for lv in sorted(levels):
        sc = levels[lv]["score"]
        ok = sc is not None and sc >= threshold - 1e-12 and reached == lv - 1
        levels[lv]["reached"] = bool(ok)
        if ok:
            reached = lv
    top = max(levels)
    if reached >= top:
        overall, dom = float(top), levels[top]["domains"]
    else:
        nxt = levels.get(reached + 1, {}).get("score")
        overall = reached + (nxt or 0.0)
        dom = levels.get(reached + 1, {}).get("domains", {})
    basis = {k: rule[k]["basis"] for k in ("scores", "threshold", "subdomain_score", "domain_score", "level_score",
                                           "levels_in_order", "overall_score") if k in rule}
    return {"levels": levels, "level": reached, "score": overall, "domain_scores": dom, "basis": basis}


# -- assessments -----------------------------------------------------------------------------------------

def ensure(con) -> None:
    con.execute(DDL)


def _has(con) -> bool:
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'maturity_assessments'"
                       ).fetchone()[0] > 0


def parse_level(value) -> int:
    """A maturity level from 1-5, 一级..五级, 规划级..引领级, L3 or "level 3".

    Raises
    ------
    zhizao.errors.InputError
    """
    t = str(value).strip().casefold().replace("level", "").replace("l", "").strip()
    words = {"一级": 1, "二级": 2, "三级": 3, "四级": 4, "五级": 5}
    words.update({v: k for k, v in LEVEL_NAMES.items()})
    if str(value).strip() in words:
        return words[str(value).strip()]
    try:
        f = float(t)
    except ValueError:
        raise InputError(BAD_LEVEL(value=str(value))) from None
    if not f.is_integer() or not 0 <= f <= 5:
        raise InputError(BAD_LEVEL(value=str(value)))
    return int(f)


def record(con, enterprise_id: str, *, source: str, assessed_on, level: int | None, score_: float | None,
           domain_scores: dict | None = None, answers: dict | None = None, facts: dict | None = None,
           report_file: str | None = None, note: str | None = None, actor: str) -> dict:
    """Store one assessment (audited) and return it."""
    from zhizao.portfolio.dates import parse_date, store_zone
    from zhizao.portfolio.register import transaction

    if source not in SOURCES:
        raise InputError(f"source {source!r} is not one of {', '.join(SOURCES)}")
    if not con.execute("SELECT count(*) FROM enterprises WHERE enterprise_id = ?", [enterprise_id]).fetchone()[0]:
        raise NotFound(UNKNOWN_ENTERPRISE(enterprise=enterprise_id))
    ensure(con)
    day = parse_date(assessed_on, store_zone(con))
    rec = {"assessment_id": "m" + secrets.token_hex(6), "enterprise_id": enterprise_id, "assessed_on": day,
           "source": source, "model": MODEL, "level": level, "score": score_,
           "domain_scores": json.dumps(domain_scores or {}, ensure_ascii=False),
           "answers": json.dumps(answers or {}, ensure_ascii=False),
           "facts": json.dumps(facts or {}, ensure_ascii=False, default=str), "report_file": report_file,
           "note": note, "recorded_by": actor, "recorded_at": dt.datetime.now(dt.UTC)}
    with transaction(con):
        con.execute(f"INSERT INTO maturity_assessments ({', '.join(COLUMNS)}) VALUES "
                    f"({', '.join('?' for _ in COLUMNS)})", [rec[c] for c in COLUMNS])
        audit.append(con, actor, "assess", "maturity", rec["assessment_id"],
                     after={k: v for k, v in rec.items() if k not in ("answers",)}, source=source)
    return rec


def assessments(ws, enterprise_id: str | None = None) -> pd.DataFrame:
    """Assessments, latest first (``domain_scores``, ``answers``, ``facts`` parsed)."""
    con = ws.con if hasattr(ws, "con") else ws
    if not _has(con):
        return pd.DataFrame(columns=COLUMNS)
    df = con.execute(f"SELECT {', '.join(COLUMNS)} FROM maturity_assessments WHERE (? IS NULL OR enterprise_id = ?) "
                     "ORDER BY assessed_on DESC, recorded_at DESC", [enterprise_id, enterprise_id]).df()
    for c in ("domain_scores", "answers", "facts"):
        df[c] = [json.loads(x) if isinstance(x, str) else {} for x in df[c]]
    df["assessed_on"] = [pd.Timestamp(x).date() if x is not None and x == x else None for x in df["assessed_on"]]
    return df


def current_level(ws, enterprise_id: str) -> dict | None:
    """The enterprise's current level: its latest assessment (``level``, ``score``, ``source``, ``date``,
    ``assessment_id``); None without one."""
    a = assessments(ws, enterprise_id)
    if a.empty:
        return None
    r = a.iloc[0]
    return {"level": None if pd.isna(r["level"]) else int(r["level"]),
            "score": None if pd.isna(r["score"]) else float(r["score"]), "source": r["source"],
            "date": r["assessed_on"], "assessment_id": r["assessment_id"],
            "domain_scores": r["domain_scores"]}


IMPORT_COLUMNS = {"enterprise_id": ("企业编号",), "assessed_on": ("评估日期", "日期", "date"),
                  "level": ("等级", "成熟度等级"), "score": ("得分", "成熟度得分", "总分"),
                  "report": ("报告", "报告文件", "report_file")}


def import_results(ws, path, *, report_folder=None, actor: str | None = None) -> dict:
    """Import the public self-diagnosis platform's results: one row per enterprise and assessment.

    Columns (by name or Chinese label): ``enterprise_id`` (企业编号), ``assessed_on`` (评估日期), ``level``
    (等级: 1-5, 一级.., 规划级..), ``score`` (得分, 0-5), a score per capability domain (its id, Chinese or
    English name, 0-1), and ``report`` (报告: a file name in ``report_folder``, stored as evidence with its hash).
    The file may be CSV (UTF-8, GBK, GB18030) or .xlsx (:mod:`zhizao.ingest.reader`).

    Returns
    -------
    dict
        ``imported`` (assessment ids), ``rejected`` [(line, Message)].

    Raises
    ------
    zhizao.errors.InputError
        The file lacks the enterprise, date or level column.
    """
    from zhizao.ingest.load import read_sql
    from zhizao.ingest.mapping import Mapping
    from zhizao.portfolio import evidence
    from zhizao.portfolio.register import nfkc

    con = ws.con
    actor = actor or audit.default_actor()
    path = Path(path)
    df = con.execute(read_sql(path, Mapping(table="maturity"))).df()
    cols = {nfkc(c): c for c in df.columns}

    def find(name, labels=()):
        for k in (name, *labels):
            if nfkc(k) in cols:
                return cols[nfkc(k)]
        return None

    found = {k: find(k, labels) for k, labels in IMPORT_COLUMNS.items()}
    for req in ("enterprise_id", "assessed_on", "level"):
        if found[req] is None:
            raise InputError(MISSING_COLUMN(file=path.name, column=req, label=IMPORT_COLUMNS[req][0]))
    m = model()
    dcols = {}
    for d in m.domains:
        c = find(d[0], (d[1], d[2]))
        if c is not None:
            dcols[d[0]] = c
    imported, rejected = [], []
    for i, row in enumerate(df.to_dict("records"), start=2):
        try:
            ent = str(row[found["enterprise_id"]]).strip()
            level = parse_level(row[found["level"]])
            sc = None
            cell = row.get(found["score"]) if found["score"] is not None else None
            if isinstance(cell, str) and cell.strip():
                try:
                    sc = float(cell)
                except ValueError:
                    raise InputError(BAD_SCORE(column="score", value=cell, max=5)) from None
                if not 0 <= sc <= 5:
                    raise InputError(BAD_SCORE(column="score", value=sc, max=5))
            ds = {}
            for did, c in dcols.items():
                v = row.get(c)
                if isinstance(v, str) and v.strip():
                    try:
                        f = float(v)
                    except ValueError:
                        raise InputError(BAD_SCORE(column=c, value=v, max=1)) from None
                    if not 0 <= f <= 1:
                        raise InputError(BAD_SCORE(column=c, value=f, max=1))
                    ds[did] = f
            report_id = None
            cell = row.get(found["report"]) if found["report"] is not None else None
            if isinstance(cell, str) and cell.strip() and report_folder is not None:
                name = cell.strip()
                rp = Path(report_folder) / name
                if not rp.is_file():
                    raise InputError(MISSING_REPORT(name=name, folder=str(report_folder)))
                if not con.execute("SELECT count(*) FROM enterprises WHERE enterprise_id = ?", [ent]).fetchone()[0]:
                    raise NotFound(UNKNOWN_ENTERPRISE(enterprise=ent))
                report_id = evidence.store(con, ent, rp.name, rp.read_bytes(), actor=actor,
                                           purpose="maturity_report")["file_id"]
            rec = record(con, ent, source="platform", assessed_on=row[found["assessed_on"]], level=level, score_=sc,
                         domain_scores=ds, report_file=report_id, note=f"imported from {path.name}", actor=actor)
            imported.append(rec["assessment_id"])
        except (InputError, NotFound) as e:
            rejected.append((i, IMPORT_ROW(line=i, problem=e.message)))
    return {"imported": imported, "rejected": rejected}


# -- the questionnaire -----------------------------------------------------------------------------------

def facts(ws, enterprise_id: str, scope: str | None = None, days: int = 30) -> dict:
    """What the data tell about an enterprise for the questionnaire: digital equipment share, equipment
    connectivity (equipment that ever sent data) and data upload rate (equipment with data in the last
    ``days`` days of the store's data), each with its basis message."""
    from zhizao.portfolio.recognition import equipment_activity

    scope = scope or enterprise_id
    eq = equipment_activity(ws, scope)
    n = len(eq)
    if not n:
        return {"n_equipment": 0, "basis": [F_NONE(enterprise=enterprise_id)]}
    n_dig = int((eq["digital"] == True).sum())  # noqa: E712
    n_rep = int(eq["reported"].sum())
    last = store_records.latest_record_time(ws.con)
    basis = [F_SHARE(digital=n_dig, n=n), F_CONNECTED(reported=n_rep, n=n)]
    out = {"n_equipment": n, "digital_equipment_share": n_dig / n, "equipment_connectivity": n_rep / n,
           "basis": basis}
    if last is not None:
        end = pd.Timestamp(last)
        start = end - pd.Timedelta(days=days)
        recent = equipment_activity(ws, scope, start.isoformat(), (end + pd.Timedelta(seconds=1)).isoformat())
        k = int(recent["reported"].sum())
        out["data_upload_rate"] = k / n
        out["upload_window"] = [start.isoformat(), end.isoformat()]
        basis.append(F_UPLOAD(start=DAY(date=start.date().isoformat()), end=DAY(date=end.date().isoformat()),
                              reported=k, n=n))
    return out


def questionnaire(ws, enterprise_id: str, scope: str | None = None) -> dict:
    """The questionnaire of an enterprise: the facts the data give (pre-filled), the systems to declare and
    the requirements to answer per level and sub-domain (empty until the programme office fills in the
    model's requirement texts; ``requirements_note`` says so)."""
    m = model()
    rule = scoring_rule()
    items = []
    for s in m.subdomains:
        for lv, *_ in m.levels:
            for r in s.requirements.get(lv) or []:
                items.append({"id": r["id"], "level": lv, "subdomain": s.id, "subdomain_zh": s.zh,
                              "subdomain_en": s.en, "domain": s.domain, "zh": r.get("zh"), "en": r.get("en"),
                              "clause": r.get("clause")})
    return {"model": m.name, "version": m.version, "enterprise_id": enterprise_id,
            "facts": facts(ws, enterprise_id, scope), "systems": list(SYSTEMS), "requirements": items,
            "has_requirements": bool(items), "requirements_note": m.requirements_note,
            "scores": rule["scores"]["values"], "current": current_level(ws, enterprise_id)}


def submit_questionnaire(ws, enterprise_id: str, answers: dict, *, systems=(), assessed_on=None,
                         scope: str | None = None, actor: str) -> dict:
    """Score and store a questionnaire (answers: requirement id -> score, code or label)."""
    from zhizao.portfolio.dates import store_zone, today

    s = score(answers)
    f = facts(ws, enterprise_id, scope)
    f = {k: v for k, v in f.items() if k != "basis"} | {"systems": list(systems)}
    return record(ws.con, enterprise_id, source="questionnaire", assessed_on=assessed_on or today(store_zone(ws.con)),
                  level=s["level"], score_=s["score"], domain_scores=s["domain_scores"],
                  answers={k: answer_value(v) for k, v in answers.items()}, facts=f, actor=actor)


# -- eligibility -----------------------------------------------------------------------------------------

@cache
def eligibility_rules() -> tuple:
    """The eligibility rules (``portfolio/data/eligibility/*.yaml``)."""
    out = []
    for p in sorted((DATA / "eligibility").glob("*.yaml")):
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
        for r in doc.get("rules") or []:
            out.append({**r, "text": {k: " ".join(str(v).split()) for k, v in r["text"].items()},
                        "source": " ".join(str(r.get("source", "")).split()), "file": p.name})
    return tuple(out)


def eligibility(ws, enterprise_id: str, designation: str) -> list[dict]:
    """The eligibility rules of a designation applied to an enterprise: [{id, text, passed (True, False or
    None without an assessment), value, basis, source}]."""
    cur = current_level(ws, enterprise_id)
    out = []
    for r in eligibility_rules():
        if r["applies_to"] != designation:
            continue
        cond = r["condition"]
        value = cur["level"] if cur else None
        if value is None:
            passed = None
        elif cond["operator"] == ">=":
            passed = value >= cond["threshold"]
        else:
            passed = value <= cond["threshold"]
        out.append({"id": r["id"], "text": r["text"], "passed": passed, "value": value,
                    "threshold": cond["threshold"], "operator": cond["operator"], "source": r["source"],
                    "basis": E_BASIS(level=value, source=cur["source"], date=str(cur["date"])) if cur
                    else E_NONE(enterprise=enterprise_id)})
    return out


__all__ = [
    "LEVEL_NAMES",
    "answer_value",
    "assessments",
    "current_level",
    "eligibility",
    "eligibility_rules",
    "facts",
    "import_results",
    "load_model",
    "model",
    "parse_level",
    "questionnaire",
    "record",
    "score",
    "scoring_rule",
    "submit_questionnaire",
]
