"""Request and response models of the REST API (pydantic): what every route takes and answers.

Every route of :mod:`zhizao.server.api` declares its request body (a model below) and its response model, so
``/openapi.json`` describes each answer. Tables are answered as JSON arrays of row objects (or CSV with
``format=csv``): their row models name the stable columns with their types and allow further columns
(``extra="allow"``), because a table's columns follow the stage (every element and KPI, the checks of the
data-quality table, ...). Routes that answer pre-rendered JSON text (the cached tables) are not re-validated at
run time; ``tests/test_server_api.py::test_every_json_answer_matches_its_declared_model`` checks every answer
against its model.

Adding a route: declare its body model here (``Body`` subclass: unknown fields refused) and its response
model (``Answer`` subclass, or ``list[...Row]`` for a table), then pass ``response_model=`` (and, for a table,
``responses=table_responses(Model)``) to the route decorator.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from zhizao.kpi.elements import COUNT_ELEMENTS, PRODUCTION_ELEMENTS, TIME_ELEMENTS
from zhizao.kpi.kpis import KPI_NAMES
from zhizao.schema import TABLES
from zhizao.server import accounts


# -- enumerations of query parameters and bodies
# the routes name members of Level and Period as defaults, so these two are spelled out (the members are
# those of zhizao.schema.LEVELS and PERIODS; tests/test_server_contract.py checks that they agree)
class Level(str, Enum):
    equipment = "equipment"
    work_center = "work_center"
    area = "area"
    site = "site"
    enterprise = "enterprise"


class Period(str, Enum):
    hour = "hour"
    shift = "shift"
    day = "day"
    week = "week"
    month = "month"
    all = "all"


if TYPE_CHECKING:  # built from the schema and the roles; no member is named in code
    class TableName(str, Enum): ...

    class Role(str, Enum): ...
else:
    TableName = Enum("TableName", {x: x for x in TABLES}, type=str)
    Role = Enum("Role", {r: r for r in accounts.ROLES}, type=str)

Fmt = Enum("Fmt", {"json": "json", "csv": "csv", "xlsx": "xlsx"}, type=str)
Lang = Enum("Lang", {"zh": "zh", "en": "en"}, type=str)
Designation = Enum("Designation", {"digital_workshop": "digital_workshop", "smart_factory": "smart_factory"},
                   type=str)


class Indicator(str, Enum):
    production_efficiency = "production_efficiency"
    defect_rate = "defect_rate"
    operating_cost = "operating_cost"
    unit_energy = "unit_energy"
    development_cycle = "development_cycle"
    energy = "energy"


class Uncertainty(str, Enum):
    exact_hac = "exact_hac"
    ashrae14 = "ashrae14"
    block_bootstrap = "block_bootstrap"


class Granularity(str, Enum):
    hour = "hour"
    day = "day"
    week = "week"
    month = "month"


Num = float | None
Text = str | None


class Body(BaseModel):
    """A request body: unknown fields are refused (422)."""

    model_config = ConfigDict(extra="forbid")


class Answer(BaseModel):
    """A JSON object answered by a route."""

    model_config = ConfigDict(extra="forbid")


class Row(BaseModel):
    """A row of a table answer: the stable columns typed, further columns allowed."""

    model_config = ConfigDict(extra="allow")


# -- errors
class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str
    params: dict[str, Any] | None = None
    errors: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"status", "code", "message", "params"}}`` in the request's language."""

    error: ErrorDetail


# -- server and accounts
class LiveSourceStatus(Answer):
    """A live source the server hosts (``zhizao serve --mqtt/--opcua``) and its counters since the start."""

    model_config = ConfigDict(extra="allow")
    source: str = Field(description='"mqtt HOST:PORT" or "opcua ENDPOINT"')
    subscribed: bool
    error: str | None = Field(None, description="the first line of the error that stopped the source")
    batches: int = 0
    messages: int = 0
    loaded: int = 0
    quarantined: int = 0
    skipped: int = 0
    last_commit: float | None = Field(None, description="time of the last committed batch [s since the epoch]")


class Health(Answer):
    status: str = Field(description='"ok", or "starting" (answered 503) while the start-up warm-up runs')
    version: str
    store_version: list[str] | None = Field(None, description="only for signed-in callers")
    live: list[LiveSourceStatus] | None = Field(None, description="the live sources, only for administrators")


class Login(Body):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class UserOut(Answer):
    username: str
    role: str
    enterprise_id: Text = None
    display_name: Text = None
    active: bool
    projects: list[str] = []
    district: Text = None


class LoginAnswer(Answer):
    token: str = Field(description="send as Authorization: Bearer <token>")
    session_id: str
    csrf: str = Field(description="X-CSRF-Token of cookie-authenticated writes")
    expires_at: str
    user: UserOut


class Revoked(Answer):
    revoked: str


class Disabled(Answer):
    disabled: str


class Me(Answer):
    kind: str = Field(description='"user" or "key"')
    name: str
    role: str
    enterprise_id: Text = None
    site: Text = None
    projects: list[str]
    enterprises: list[str] | None = Field(None, description="null: every enterprise")
    sites: list[str] | None = Field(None, description="null: every site")
    levels: list[str]
    write_tables: list[str]
    programme: bool
    store_verifications: bool
    admin: bool


class UserBody(Body):
    username: str = Field(max_length=64)
    password: str = Field(min_length=accounts.MIN_PASSWORD, max_length=1024)
    role: Role
    enterprise_id: str | None = Field(None, max_length=200)
    display_name: str | None = Field(None, max_length=200)
    projects: list[str] = Field(default_factory=list, max_length=1000)
    district: str | None = Field(None, max_length=100, description="district reviewers: their district")


class UserPatch(Body):
    password: str | None = Field(None, min_length=accounts.MIN_PASSWORD, max_length=1024)
    old_password: str | None = Field(None, max_length=1024,
                                        description="your current password (needed to change your own)")
    active: bool | None = None
    projects: list[str] | None = Field(None, max_length=1000)


class KeyBody(Body):
    enterprise_id: str | None = Field(None, max_length=200)
    site: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=200)


class KeyOut(Answer):
    key_id: str
    name: Text = None
    enterprise_id: Text = None
    site: Text = None
    created_by: Text = None
    created_at: Text = None
    revoked_at: Text = None


class NewKey(KeyOut):
    key: str = Field(description="the key itself, shown once")


class SessionOut(Answer):
    session_id: str
    username: str
    created_at: Text = None
    expires_at: Text = None
    revoked_at: Text = None
    user_agent: Text = None


# -- data
class ColumnOut(Answer):
    name: str
    type: str
    required: bool
    description: Text = None


class TableOut(Answer):
    description: str
    key: list[str]
    columns: list[ColumnOut]


class MappingOut(Answer):
    name: str
    table: str
    description: Text = None


class EquipmentRow(Row):
    equipment_id: str
    name: Text = None
    work_center: Text = None
    area: Text = None
    site: Text = None
    enterprise: Text = None
    timezone: Text = None
    digital: bool | None = None
    epc: Num = None


class QuarantinedRecord(Answer):
    record: int | None = None
    line: int | None = None
    rule: str
    detail: Text = None
    raw: Any | None = None


class UploadAnswer(Answer):
    upload_id: str
    table: str
    file: str
    mapping: Text = None
    bytes: int
    loaded: int
    quarantined: int
    skipped: int
    already_loaded: bool
    quarantine: list[QuarantinedRecord]
    message: str


class UploadRow(Row):
    upload_id: str
    file_name: str
    table: str
    principal: str
    enterprise_id: Text = None
    site: Text = None
    mapping: Text = None
    bytes: int | None = None
    loaded: int | None = None
    quarantined: int | None = None
    skipped: int | None = None
    already_loaded: bool | None = None
    uploaded_at: Any = None


class QuarantineRow(Row):
    upload_id: Text = None
    table: str
    source: Text = None
    record: int | None = None
    line: int | None = None
    rule: str
    detail: Text = None
    raw: Text = None
    loaded_at: Any = None
    code: Text = None  # the detail's message code and parameters (JSON): the detail in any language
    params: Text = None


class UploadDetail(UploadRow):
    quarantine: list[QuarantineRow]


class QuarantineSummaryRow(Row):
    table: str
    rule: str
    records: int
    example: Text = None
    example_code: Text = None
    example_params: Text = None


# -- KPI stage (row models built from the engine's element and KPI names)
_ELEMENTS = tuple(TIME_ELEMENTS) + tuple(COUNT_ELEMENTS) + tuple(PRODUCTION_ELEMENTS)
# field definitions (type, default) as create_model takes them
_LEVEL_IDS: dict[str, Any] = {"equipment_id": (Text, None), "work_center": (Text, None), "area": (Text, None),
              "site": (Text, None), "enterprise": (Text, None)}
_PERIOD: dict[str, Any] = {"period_start": (Any, Field(None, description="ISO 8601 with the plant's offset")),
           "period_end": (Any, Field(None, description="ISO 8601 with the plant's offset, exclusive"))}



def _fields(names, kind) -> dict[str, Any]:
    """Optional fields ``names`` of type ``kind``, for create_model."""
    return {n: (kind, None) for n in names}


ElementsRow = create_model(
    "ElementsRow", __base__=Row, __doc__="Elements of one entity and period (times [s], quantities [units], energy "
                                         "[kWh, kgce], labour [h]); the level's id column is set.",
    **_LEVEL_IDS, **_PERIOD, n_equipment=(int | None, None), no_calendar=(bool | None, None),
    **_fields(_ELEMENTS, Num))
KpiRow = create_model(
    "KpiRow", __base__=ElementsRow, __doc__="Elements and KPIs (fractions, null when undefined) of one entity "
                                            "and period; null_reasons says why each null KPI is null.",
    null_reasons=(Any | None, None), **_fields(KPI_NAMES, Num))


class LossesRow(Row):
    """The ten-category waterfall and the six big losses [s] of one entity and period."""

    period_start: Any = None
    period_end: Any = None
    calendar_time: Num = None
    not_scheduled: Num = None
    unscheduled: Num = None
    planned_downtime: Num = None
    setup: Num = None
    unplanned_downtime: Num = None
    minor_stops: Num = None
    no_order: Num = None
    unaccounted: Num = None
    reduced_speed: Num = None
    rejects_rework: Num = None
    startup_yield: Num = None
    fully_productive: Num = None


class StopReasonRow(Row):
    category: str
    reason: Text = None
    seconds: float


class DataQualityRow(Row):
    period_start: Any = None
    period_end: Any = None
    check: str
    value: Any | None = None
    description: Any | None = None


class CapabilityRow(Row):
    period_start: Any = None
    period_end: Any = None
    characteristic: Text = None
    n: float | None = None
    mean: Num = None
    sigma: Num = None
    s: Num = None
    lsl: Num = None
    usl: Num = None
    cm: Num = None
    cmk: Num = None
    cp: Num = None
    cpk: Num = None
    null_reason: Any | None = None


class CatalogueRow(Row):
    number: int | None = None
    name: str
    formula: str
    better: Text = None
    status: str


# -- verify stage
class VerifyBody(Body):
    indicator: Indicator
    scope: str = Field(max_length=200)
    baseline: tuple[str, str]
    reporting: tuple[str, str]
    definition: str | None = Field(None, max_length=100)
    confidence: float = Field(0.9, ge=0.5, le=0.999)
    uncertainty: Uncertainty = Uncertainty.exact_hac
    granularity: Granularity = Granularity.day


class ProjectVerifyBody(Body):
    indicators: list[Indicator] | None = Field(None, max_length=10)
    confidence: float = Field(0.9, ge=0.5, le=0.999)


class VerificationOut(Row):
    """One verification result (see :class:`zhizao.verify.VerificationResult`): fractions, positive is better."""

    indicator: str
    definition: Text = None
    scope: Text = None
    baseline_period: list[Any] | None = None
    reporting_period: list[Any] | None = None
    baseline: Num = None
    reporting: Num = None
    adjusted_baseline: Num = None
    change: Num = None
    improvement: Num = None
    ci_low: Num = None
    ci_high: Num = None
    confidence: Num = None
    method: Text = None
    simple_change: Num = None
    fit: Any | None = None
    warnings: list[Any] | None = None
    coverage: Any | None = None
    project_id: Text = None


class LatestVerificationRow(Row):
    project_id: str
    indicator: str
    scope: Text = None
    computed_at: Any = None
    improvement: Num = None
    ci_low: Num = None
    ci_high: Num = None
    confidence: Num = None
    method: Text = None
    definition: Text = None
    output: Num = None


# -- portfolio
class ProjectRow(Row):
    project_id: str
    enterprise_id: str
    enterprise: Text = None
    industry: Text = None
    district: Text = None
    park: Text = None
    name: Text = None
    type: Text = None
    scope: Text = None
    start: Any = None
    commissioning_end: Any = None
    investment: Num = None
    status: Text = None
    tz: Text = None


class EnterpriseRow(Row):
    enterprise_id: str
    name: Text = None
    industry: Text = None
    district: Text = None
    park: Text = None
    tz: Text = None


class DesignationRow(Row):
    enterprise_id: str
    project_id: Text = None
    scope: Text = None
    designation: str
    level: Text = None
    date: Any = None
    tz: Text = None


class ProjectDetail(Answer):
    project: ProjectRow
    verifications: list[LatestVerificationRow]
    designations: list[DesignationRow]


class ProgrammeStatistics(BaseModel):
    """Programme statistics (see :func:`zhizao.portfolio.stats.programme_statistics`): totals, counts by type,
    district, industry, year and designation, coverage, averages with intervals, rankings, project values."""

    model_config = ConfigDict(extra="allow")
    totals: dict[str, Any]
    averages: list[dict[str, Any]]
    confidence: float | None = None


class RecognitionRow(Row):
    criterion: str
    description: Any | None = None
    threshold: Any | None = None
    operator: Text = None
    value: Any | None = None
    passed: Any | None = None
    source: Text = None
    basis: Any | None = None
    evidence: Any | None = None


def table_responses(model) -> dict:
    """``responses=`` of a table route: the JSON rows (``model``) or CSV with ``format=csv``."""
    return {200: {"content": {"text/csv": {"schema": {"type": "string", "description": "the same rows as CSV"}},
                              "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                                  "schema": {"type": "string", "format": "binary",
                                             "description": "the same rows as an Excel workbook"}}},
                  "description": "JSON rows, or CSV with format=csv, or Excel with format=xlsx"}}


def text_responses(*media: str, status: int = 200) -> dict:
    """``responses=`` of a route that answers text documents (HTML, Markdown)."""
    return {status: {"content": {m: {"schema": {"type": "string"}} for m in media}}}


__all__ = [n for n in dir() if n[0].isupper() and not n.startswith("_")] + ["table_responses", "text_responses"]
