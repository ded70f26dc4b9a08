"""Labels of the programme's coded fields in Chinese and English (docs/glossary.md).

Codes are what the store holds (``digital_workshop``, ``municipal``, ``C36``); labels are what a reader sees.
Fixed vocabularies (project type, designation, level, status, indicator) are msgids of the message catalogues;
industries are the divisions of GB/T 4754-2017 section C, read from ``data/vocabularies/industry.csv`` (code,
Chinese and English name, aliases such as the simulator's ``automotive_parts``).

>>> label("designation", "smart_factory", "zh"), label("industry", "automotive_parts", "zh")
('智能工厂', '汽车制造业')
>>> label("industry", "C39", "en")
'Manufacture of computers, communication and other electronic equipment'
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

import pandas as pd

from zhizao.i18n import N_, translations

VOCABULARIES = Path(__file__).resolve().parent.parent / "data" / "vocabularies"

PROJECT_TYPES = {
    "digital_equipment": N_("Digital equipment adoption"),
    "system_integration": N_("Information system integration for digital workshops and smart factories"),
    "industrial_internet": N_("Industrial internet platforms and moving onto the cloud"),
    "new_mode": N_("New intelligent manufacturing modes"),
}
DESIGNATIONS = {
    "demonstration_project": N_("Demonstration project"),
    "digital_workshop": N_("Digital workshop"),
    "smart_factory": N_("Smart factory"),
}
LEVELS = {"district": N_("District level"), "municipal": N_("Municipal level"),
          "provincial": N_("Provincial level"), "national": N_("National level")}
#: Project status (the programme's workflow extends this list).
STATUSES = {
    "applied": N_("Applied"), "approved": N_("Approved"), "in_progress": N_("In progress"),
    "completed": N_("Completed"), "accepted": N_("Accepted"), "terminated": N_("Terminated"),
    "withdrawn": N_("Withdrawn"),
}
INDICATORS = {
    "production_efficiency": N_("Production efficiency"),
    "defect_rate": N_("Product defect rate"),
    "operating_cost": N_("Operating cost"),
    "unit_energy": N_("Unit product energy consumption"),
    "development_cycle": N_("Product development cycle"),
}
#: Indicator -> its name with the direction of improvement (positive values mean that direction).
INDICATOR_GAINS = {
    "production_efficiency": N_("Production efficiency gain"),
    "defect_rate": N_("Defect rate reduction"),
    "operating_cost": N_("Operating cost reduction"),
    "unit_energy": N_("Unit energy reduction"),
    "development_cycle": N_("Development cycle reduction"),
}
BASES = {"verified": N_("Verified value"), "declared": N_("Declared value")}

FIXED = {"type": PROJECT_TYPES, "designation": DESIGNATIONS, "level": LEVELS, "status": STATUSES,
         "indicator": INDICATORS, "gain": INDICATOR_GAINS, "basis": BASES}


@cache
def industries() -> dict[str, dict]:
    """GB/T 4754 divisions by code, alias and name: ``{key: {"code", "zh", "en"}}``."""
    out: dict[str, dict] = {}
    with open(VOCABULARIES / "industry.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            entry = {"code": r["code"], "zh": r["zh"], "en": r["en"]}
            for key in [r["code"], r["code"][1:], r["zh"], r["en"], *filter(None, r["aliases"].split(";"))]:
                out.setdefault(key.strip().lower(), entry)
    return out


def industry_code(value) -> str | None:
    """The GB/T 4754 code (``"C36"``) of an industry given as code, name or alias; None if unknown."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    e = industries().get(str(value).strip().lower())
    return e["code"] if e else None


#: Kinds whose codes the register's vocabulary files also hold (data/vocabularies): a code the fixed table lacks
#: (the tiers of MIIT's factory ladder, a district) is labelled from the file, never shown as a raw code.
REGISTER_VOCABULARIES = {"designation": "designation", "level": "level", "status": "project_status",
                         "type": "project_type", "district": "district"}


def label(kind: str, code, lang: str) -> str:
    """The label of ``code`` in vocabulary ``kind`` (type, designation, level, status, indicator, gain, basis,
    industry, district) in ``lang``; an unknown code is shown as stored, a null one as "(not stated)"."""
    _ = translations(lang).gettext
    if code is None or (not isinstance(code, str) and pd.isna(code)) or code == "":
        return _("(not stated)")
    if kind == "industry":
        e = industries().get(str(code).strip().lower())
        return e[lang] if e else str(code)
    table = FIXED.get(kind, {})
    if code in table:
        return _(table[code])
    if kind in REGISTER_VOCABULARIES:
        from zhizao.portfolio.vocabularies import vocabulary

        return vocabulary(REGISTER_VOCABULARIES[kind]).label(code, lang)
    return str(code)


__all__ = [
    "BASES",
    "DESIGNATIONS",
    "INDICATORS",
    "INDICATOR_GAINS",
    "LEVELS",
    "PROJECT_TYPES",
    "STATUSES",
    "industries",
    "industry_code",
    "label",
]
