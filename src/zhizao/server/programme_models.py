"""Request and response models of the programme's API routes (:mod:`zhizao.server.programme_api`): the
register, the audit log, applications and their steps, evidence, capability maturity, rule sets.

The conventions of :mod:`zhizao.server.models`: a ``Body`` refuses unknown fields, an ``Answer`` is an object,
a ``Row`` a table row with its stable columns typed and further columns allowed.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import Field

from zhizao.portfolio.workflow import SOUGHT
from zhizao.schema import REGISTER_TABLES
from zhizao.server.models import Answer, Body, Row, Text

if TYPE_CHECKING:  # built from the schema and the workflow; no member is named in code (as models.TableName)
    class RegisterTable(str, Enum): ...

    class Sought(str, Enum): ...
else:
    RegisterTable = Enum("RegisterTable", {t: t for t in REGISTER_TABLES}, type=str)
    Sought = Enum("Sought", {s: s for s in SOUGHT}, type=str)
PreVerdict = Enum("PreVerdict", {"approve": "approve", "return": "return", "reject": "reject"}, type=str)
Decision = Enum("Decision", {"approved": "approved", "rejected": "rejected"}, type=str)


# -- lists
class Page(Answer):
    """One page of a list: ``rows`` and where it lies (``total`` rows matched the search)."""

    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    size: int
    sort: Text = None
    search: Text = None


# -- the register
class RecordBody(Body):
    values: dict[str, Any] = Field(description="column -> value (codes or labels; dates YYYY-MM-DD)")
    reason: str | None = Field(None, max_length=2000, description="why (kept in the audit log)")


class RecordAnswer(Answer):
    table: str
    record: dict[str, Any]
    changes: dict[str, list] | None = Field(None, description="column -> [before, after] (updates)")


class HistoryRow(Row):
    seq: int
    changed_at: str
    actor: str
    action: str
    entity: str
    record: str
    reason: Text = None
    source: Text = None


class AuditCheck(Answer):
    ok: bool
    entries: int
    problem: Text = None


class VocabularyOut(Answer):
    vocabulary: str
    title: dict[str, str]
    version: str
    source: str
    ordered: bool
    entries: list[dict[str, Any]]


class VocabularyRow(Row):
    vocabulary: str
    entries: int


# -- applications
class ApplicationBody(Body):
    sought: Sought
    enterprise_id: str | None = Field(None, max_length=200, description="default: your enterprise")
    programme: str | None = Field(None, max_length=200)
    project_id: str | None = Field(None, max_length=200, description="a registered project to link")
    data: dict[str, Any] = Field(default_factory=dict, description="name, type, scope, investment, start, "
                                                                   "commissioning_end, declared_*, description")


class ApplicationEdit(Body):
    data: dict[str, Any]


class PreReviewBody(Body):
    verdict: PreVerdict
    comment: str | None = Field(None, max_length=4000)


class AssignBody(Body):
    assessor: str = Field(max_length=64)
    deadline: str | None = Field(None, max_length=10, description="YYYY-MM-DD")


class DeclarationBody(Body):
    conflict: bool = Field(description="true: a conflict of interest (then no further part in the review)")
    note: str | None = Field(None, max_length=4000)


class ScoreItem(Body):
    score: float
    comment: str | None = Field(None, max_length=4000)


class ScoresBody(Body):
    scores: dict[str, ScoreItem] = Field(description="criterion of the score sheet -> score and comment")


class CloseReviewBody(Body):
    publicity_days: int | None = Field(None, ge=0, le=60)


class ObjectionBody(Body):
    text: str = Field(max_length=8000)
    raised_by: str | None = Field(None, max_length=200)
    received_on: str | None = Field(None, max_length=10)


class ResolutionBody(Body):
    resolution: str = Field(max_length=8000)


class DecisionBody(Body):
    decision: Decision
    reason: str | None = Field(None, max_length=4000)
    level: str | None = Field(None, max_length=50, description="the recognition's level (district, municipal, "
                                                                  "national)")


class AcceptanceBody(Body):
    accepted: bool
    reason: str | None = Field(None, max_length=4000)


class ReasonBody(Body):
    reason: str | None = Field(None, max_length=4000)


class ApplicationRow(Row):
    application_id: str
    enterprise_id: str
    sought: str
    state: str
    name: Text = None
    deadline: Text = None


class ApplicationAnswer(Answer):
    application: dict[str, Any]


class ApplicationDetail(Answer):
    application: dict[str, Any]
    assessors: list[dict[str, Any]]
    review: dict[str, Any]
    scores: list[dict[str, Any]]
    objections: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    history: list[dict[str, Any]]
    maturity: dict[str, Any] | None = None
    eligibility: list[dict[str, Any]]
    sheet: dict[str, Any]
    steps: list[str] = Field(description="the steps you may take now")


class AcceptanceAnswer(Answer):
    application: dict[str, Any]
    results: list[dict[str, Any]]
    criteria: list[dict[str, Any]]
    ruleset: Text = None


class ObjectionAnswer(Answer):
    objection_id: str


class EvidenceOut(Answer):
    file_id: str
    enterprise_id: str
    name: str
    media_type: str
    size: int
    sha256: str
    purpose: Text = None
    application_id: Text = None
    uploaded_by: str
    uploaded_at: Any


# -- recognition and maturity
class ConfirmBody(Body):
    enterprise_id: str = Field(max_length=200)
    ruleset: str = Field(max_length=200)
    criterion: str = Field(max_length=200)
    confirmed: bool
    scope: str | None = Field(None, max_length=200)
    evidence: str | None = Field(None, max_length=2000, description="evidence file ids, comma-separated")
    comment: str | None = Field(None, max_length=4000)
    application_id: str | None = Field(None, max_length=40)


class ConfirmAnswer(Answer):
    enterprise_id: str
    scope: Text = None
    ruleset: str
    criterion: str
    confirmed: bool
    assessor: str
    confirmed_at: str
    evidence: Text = None
    comment: Text = None
    application_id: Text = None


class RulesetRow(Row):
    ruleset: str
    designation: str
    version: str


class ConflictRow(Row):
    designation_id: str
    enterprise_id: str
    unit: str
    designation: str
    criterion: str


class MaturityAnswer(Answer):
    enterprise_id: str
    current: dict[str, Any] | None = None
    assessments: list[dict[str, Any]]
    facts: dict[str, Any]
    eligibility: list[dict[str, Any]]


class QuestionnaireBody(Body):
    answers: dict[str, Any] = Field(default_factory=dict, description="requirement id -> score, code or label")
    systems: list[str] = Field(default_factory=list, max_length=50)


class ImportAnswer(Answer):
    imported: list[str]
    rejected: list[dict[str, Any]]


__all__ = [n for n in dir() if n[0].isupper() and not n.startswith("_")]
