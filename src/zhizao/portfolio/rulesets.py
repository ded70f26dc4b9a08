"""Recognition rule sets as versioned data files.

A rule set is the list of criteria of one designation under one authority and version, in a YAML file of
``portfolio/data/rulesets/`` (or of the folder ``ZHIZAO_RULESETS`` names, whose files come first)::

    ruleset: chongqing-2018-digital-workshop      # the name (--rules NAME); also the file name
    designation: digital_workshop                 # vocabulary designation
    version: "2018"
    authority: {zh: ..., en: ...}
    title: {zh: ..., en: ...}
    valid_from: 2018-01-01                        # the rule set applies to designations from this date
    valid_to: null                                #   ... to this date (exclusive)
    source: {document: ..., url: ..., note: ...}  # where the criteria come from
    criteria:
      - id: digital_equipment_share
        kind: computed                            # computed from data | declared (an assessor confirms) |
                                                  # information (shown, not judged)
        measure: digital_equipment_share          # see MEASURES
        operator: ">="                            # >= or <=
        threshold: 0.50
        text: {zh: ..., en: ...}

Which rule set judges a designation: the one named (``--rules NAME``), else the rule sets of its programme
(column ``rules`` of table ``programmes``), else the latest one of its designation valid on the date asked for
(the designation's date, or today).

Measures computed from data (:mod:`zhizao.portfolio.recognition` computes them):

=============================  ==================================================================================
digital_equipment_share        digital / registered equipment of the scope
data_upload_rate               share of the scope's equipment that sent records in the period
digital_workshops              recognised digital workshops of the enterprise (not revoked) by the period's end
production_efficiency_change   verified efficiency change of the enterprise's projects (mean)
operating_cost_change          verified operating-cost change (mean; negative = down)
maturity_level                 the enterprise's current capability maturity level (GB/T 39116)
designation_held               1 when the enterprise holds ``designation_held`` (not revoked), else 0
=============================  ==================================================================================
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from zhizao.errors import InputError, NotFound
from zhizao.messages import define

DATA = Path(__file__).parent / "data" / "rulesets"
MEASURES = ("digital_equipment_share", "data_upload_rate", "digital_workshops", "production_efficiency_change",
            "operating_cost_change", "maturity_level", "designation_held")
KINDS = ("computed", "declared", "information")

UNKNOWN_RULESET = define("rules.unknown", "unknown rule set %(name)s; rule sets: %(known)s")
BAD_RULESET = define("rules.bad_file", "rule set file %(file)s: %(error)s")
NO_RULESET = define("rules.none", "no rule set of designation %(designation)s is valid on %(date)s; rule sets: "
                                  "%(known)s")


@dataclass(frozen=True)
class Criterion:
    id: str
    kind: str
    text: dict
    measure: str | None = None
    operator: str | None = None
    threshold: float | None = None
    options: dict = field(default_factory=dict, compare=False, hash=False)

    def label(self, lang: str = "zh") -> str:
        return self.text.get(lang) or self.text.get("zh") or self.id


@dataclass(frozen=True, eq=False)
class RuleSet:
    name: str
    designation: str
    version: str
    authority: dict
    title: dict
    source: dict
    criteria: tuple[Criterion, ...]
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    path: str = ""

    def valid_on(self, day: dt.date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (self.valid_to is None or day < self.valid_to)

    def to_dict(self) -> dict:
        return {"ruleset": self.name, "designation": self.designation, "version": self.version,
                "authority": self.authority, "title": self.title, "source": self.source,
                "valid_from": self.valid_from.isoformat() if self.valid_from else None,
                "valid_to": self.valid_to.isoformat() if self.valid_to else None,
                "criteria": [{"id": c.id, "kind": c.kind, "measure": c.measure, "operator": c.operator,
                              "threshold": c.threshold, "text": c.text, **c.options} for c in self.criteria]}


def folders() -> list[Path]:
    extra = os.environ.get("ZHIZAO_RULESETS")
    return ([Path(extra)] if extra else []) + [DATA]


def _date(v):
    if v is None or v == "":
        return None
    return v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v))


def _parse(path: Path) -> RuleSet:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        crits = []
        for c in doc["criteria"]:
            c = dict(c)
            cid, kind = str(c.pop("id")), str(c.pop("kind"))
            if kind not in KINDS:
                raise ValueError(f"criterion {cid}: kind {kind!r} is not one of {', '.join(KINDS)}")
            measure = c.pop("measure", None)
            if kind == "computed" and measure not in MEASURES:
                raise ValueError(f"criterion {cid}: measure {measure!r} is not one of {', '.join(MEASURES)}")
            op = c.pop("operator", None)
            if op not in (None, ">=", "<="):
                raise ValueError(f"criterion {cid}: operator {op!r} is not >= or <=")
            th = c.pop("threshold", None)
            if th is not None and op is None:  # no silent default: >= and <= give opposite verdicts
                raise ValueError(f"criterion {cid}: threshold {th!r} has no operator (>= or <=)")
            if measure == "designation_held" and not isinstance(c.get("designation_held"), str):
                raise ValueError(f"criterion {cid}: measure designation_held names no designation "
                                 "(key designation_held)")
            text = {k: " ".join(str(v).split()) for k, v in dict(c.pop("text")).items()}
            crits.append(Criterion(cid, kind, text, measure, op, None if th is None else float(th), c))
        return RuleSet(str(doc["ruleset"]), str(doc["designation"]), str(doc.get("version", "")),
                       dict(doc.get("authority") or {}), dict(doc.get("title") or {}),
                       {k: " ".join(str(v).split()) for k, v in dict(doc.get("source") or {}).items()},
                       tuple(crits), _date(doc.get("valid_from")), _date(doc.get("valid_to")), str(path))
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        raise InputError(BAD_RULESET(file=str(path), error=f"{type(e).__name__}: {e}")) from None


@cache
def _all(roots: tuple) -> dict[str, RuleSet]:
    out: dict[str, RuleSet] = {}
    for root in roots:
        for p in sorted(Path(root).glob("*.yaml")):
            rs = _parse(p)
            out.setdefault(rs.name, rs)
    return out


def all_rulesets() -> dict[str, RuleSet]:
    """Every rule set by name."""
    return _all(tuple(str(f) for f in folders()))


def ruleset(name: str) -> RuleSet:
    """The rule set ``name``.

    Raises
    ------
    zhizao.errors.NotFound
    """
    rs = all_rulesets().get(name)
    if rs is None:
        raise NotFound(UNKNOWN_RULESET(name=name, known=sorted(all_rulesets())))
    return rs


def select(designation: str, *, name: str | None = None, programme_rules: str | None = None,
           day: dt.date | None = None) -> RuleSet:
    """The rule set that judges a designation (see the module docstring).

    Raises
    ------
    zhizao.errors.NotFound
        A named rule set that does not exist, or none valid for the designation on ``day``.
    zhizao.errors.InputError
        A named rule set of another designation.
    """
    if name:
        rs = ruleset(name)
        if rs.designation != designation:
            raise InputError(f"rule set {name} judges {rs.designation}, not {designation}")
        return rs
    day = day or dt.date.today()
    if programme_rules:
        for n in (x.strip() for x in str(programme_rules).split(",")):
            named = all_rulesets().get(n)
            if named is not None and named.designation == designation:
                return named
    cands = [rs for rs in all_rulesets().values() if rs.designation == designation and rs.valid_on(day)]
    if not cands:
        raise NotFound(NO_RULESET(designation=designation, date=day.isoformat(), known=sorted(all_rulesets())))
    return max(cands, key=lambda r: (r.valid_from or dt.date.min, r.version))


__all__ = ["MEASURES", "Criterion", "RuleSet", "all_rulesets", "ruleset", "select"]
