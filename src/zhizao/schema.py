"""Canonical tables: the interchange format every source is mapped to.

The column names are exact (see DESIGN.md, "Canonical tables"). Each column has a logical type that the
ingest stage parses and validates, and a flag telling whether it is required. Durations are seconds,
quantities are units of the product, timestamps are stored as UTC instants (DuckDB ``TIMESTAMPTZ``).

State categories follow the ten-category loss model of reference/iso22400.md; ``CATEGORY_PRECEDENCE`` is the
one rule used when state records of different categories overlap in time (the first listed wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Logical column types -> DuckDB storage types. ``date`` is a calendar date of the register (a project's
#: start, a designation's date): it never moves a day, whatever time zone the data are in (see
#: :mod:`zhizao.portfolio.dates`).
SQL_TYPES = {
    "text": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "float": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "int": "BIGINT",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # one of SQL_TYPES
    required: bool = False
    nonnegative: bool = False
    description: str = ""
    #: controlled vocabulary of a coded column (``zhizao.portfolio.vocabularies``): files may give the code,
    #: the Chinese or the English label; the code is stored
    vocabulary: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    #: columns that identify a record: two records with the same key are duplicates
    key: tuple[str, ...]
    #: groups of columns of which at least one must be present and non-null
    one_of: tuple[tuple[str, ...], ...] = field(default_factory=tuple)
    description: str = ""
    #: foreign keys: column -> (table, column) that must hold the value
    refs: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: columns whose absence makes a record an *event* that the key does not name (a quality result without
    #: unit_id, a count at an instant without start): identical events are distinct occurrences, not
    #: duplicates (see :mod:`zhizao.ingest.load`, "Record identity")
    event_if_null: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _c(name: str, type_: str, required: bool = False, nonnegative: bool = False, description: str = "",
       vocabulary: str | None = None) -> Column:
    return Column(name, type_, required, nonnegative, description, vocabulary)


#: State categories, in precedence order: where records of different categories overlap, the first wins.
#: Losses beat running (a stop logged over a running period is a stop); among losses the least planned wins
#: (a failure is never hidden by a setup or a plan), and the schedule-side categories come last.
CATEGORY_PRECEDENCE = (
    "unplanned_downtime",
    "minor_stop",
    "setup",
    "production",
    "no_order",
    "planned_downtime",
    "unscheduled",
    "not_scheduled",
)
STATE_CATEGORIES = frozenset(CATEGORY_PRECEDENCE)

#: Default raw-state -> category mapping used when a state has no category and the mapping file gives none
#: for it.  A raw state absent from the effective mapping is quarantined, never guessed.
DEFAULT_STATE_MAP = {c: c for c in CATEGORY_PRECEDENCE}

CALENDAR_KINDS = ("shift", "break", "planned_downtime", "holiday")
ENERGY_READINGS = ("interval", "cumulative")
QUALITY_RESULTS = ("pass", "fail")
#: The four project types of the programme (reference/transformation.md, "Project recognition (2022)"); the
#: vocabulary file ``portfolio/data/vocabularies/project_type.yaml`` holds their labels.
PROJECT_TYPES = ("digital_equipment", "system_integration", "industrial_internet", "new_mode")
#: The designations counted in programme statistics, in bulletin order (the vocabulary ``designation`` holds
#: these and the tiers of MIIT's factory ladder).
DESIGNATIONS = ("demonstration_project", "digital_workshop", "smart_factory")
#: The register of the programme: records with a history (audit log), loaded by
#: :func:`zhizao.portfolio.register.load_register_file`, updated and withdrawn by key.
REGISTER_TABLES = ("enterprises", "scopes", "projects", "designations", "programmes", "programme_targets")

TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        Table(
            "equipment",
            (
                _c("equipment_id", "text", True),
                _c("name", "text"),
                _c("work_center", "text"),
                _c("area", "text"),
                _c("site", "text"),
                _c("enterprise", "text"),
                _c("timezone", "text", description="IANA zone, default UTC"),
                _c("digital", "bool"),
                _c("epc", "float", nonnegative=True, description="equipment production capacity [units/h]"),
            ),
            key=("equipment_id",),
            description="the ISA-95 equipment hierarchy",
        ),
        Table(
            "states",
            (
                _c("equipment_id", "text", True),
                _c("start", "timestamp", True),
                _c("end", "timestamp"),
                _c("state", "text", True),
                _c("category", "text"),
                _c("reason", "text"),
            ),
            key=("equipment_id", "start", "state"),
            description="machine states; without end a state lasts until the next state of the equipment",
        ),
        Table(
            "production",
            (
                _c("equipment_id", "text", True),
                _c("start", "timestamp"),
                _c("end", "timestamp", description="end of the counting interval, or the count's time stamp"),
                _c("order_id", "text"),
                _c("product_id", "text"),
                _c("produced", "float", True, True),
                _c("good", "float", nonnegative=True),
                _c("scrap", "float", nonnegative=True),
                _c("rework", "float", nonnegative=True),
            ),
            key=("equipment_id", "start", "end", "order_id", "product_id"),
            one_of=(("end",),),
            event_if_null=("start",),
        ),
        Table(
            "products",
            (
                _c("product_id", "text", True),
                _c("equipment_id", "text"),
                _c("pri", "float", True, True, "planned run time per item [s]"),
                _c("standard_minutes", "float", nonnegative=True, description="labour standard [min/unit]"),
                _c("unit_value", "float", nonnegative=True, description="output value per unit [CNY]"),
            ),
            key=("product_id", "equipment_id"),
        ),
        Table(
            "calendar",
            (
                _c("scope", "text", True),
                _c("start", "timestamp", True),
                _c("end", "timestamp", True),
                _c("kind", "text", True),
                _c("name", "text"),
            ),
            key=("scope", "start", "end", "kind"),
        ),
        Table(
            "energy",
            (
                _c("meter_id", "text", True),
                _c("equipment_id", "text"),
                _c("scope", "text"),
                _c("start", "timestamp"),
                _c("end", "timestamp", description="interval end, or the reading's time stamp"),
                _c("carrier", "text", True),
                _c("quantity", "float", True),
                _c("unit", "text", True),
                _c("reading", "text", description="interval (default) or cumulative"),
            ),
            key=("meter_id", "start", "end", "carrier"),
            one_of=(("equipment_id", "scope"), ("end",)),
        ),
        Table(
            "labour",
            (
                _c("scope", "text", True),
                _c("start", "timestamp", True),
                _c("end", "timestamp", True),
                _c("attendance_hours", "float", True, True, "APAT [h]"),
                _c("work_hours", "float", nonnegative=True, description="APWT [h]"),
                _c("headcount", "float", nonnegative=True),
                _c("earned_hours", "float", nonnegative=True,
                   description="standard hours earned: sum of quantity x standard time [h]"),
            ),
            key=("scope", "start", "end"),
        ),
        Table(
            "quality",
            (
                _c("equipment_id", "text"),
                _c("scope", "text"),
                _c("ts", "timestamp", True),
                _c("product_id", "text"),
                _c("unit_id", "text"),
                _c("result", "text", True),
                _c("first_pass", "bool"),
                _c("defect", "text"),
                _c("characteristic", "text"),
                _c("value", "float"),
                _c("lsl", "float"),
                _c("usl", "float"),
            ),
            key=("equipment_id", "scope", "ts", "unit_id", "product_id", "characteristic"),
            one_of=(("equipment_id", "scope"),),
            event_if_null=("unit_id",),
        ),
        Table(
            "variables",
            (
                _c("scope", "text", True),
                _c("start", "timestamp", True),
                _c("end", "timestamp"),
                _c("name", "text", True, description="e.g. temperature_c, load_class, price_index"),
                _c("value", "float", description="numeric value"),
                _c("level", "text", description="categorical value (a class, a code)"),
            ),
            key=("scope", "start", "name"),
            one_of=(("value", "level"),),
            description="relevant variables (IPMVP / ISO 50006): weather, load class, prices, ...",
        ),
        Table(
            "enterprises",
            (
                _c("enterprise_id", "text", True),
                _c("name", "text"),
                _c("industry", "text", description="GB/T 4754-2017 section or division", vocabulary="industry"),
                _c("district", "text", vocabulary="district"),
                _c("park", "text"),
                _c("credit_code", "text", description="unified social credit code"),
            ),
            key=("enterprise_id",),
        ),
        Table(
            "scopes",
            (
                _c("scope_id", "text", True),
                _c("enterprise_id", "text", True),
                _c("name", "text"),
                _c("kind", "text", description="site, workshop or line", vocabulary="scope_kind"),
                _c("parent", "text", description="the scope this one lies in"),
                _c("note", "text"),
            ),
            key=("scope_id",),
            refs={"enterprise_id": ("enterprises", "enterprise_id")},
            description="sites and workshops of an enterprise (实施范围); they may exist before any shop-floor "
                        "data, whose equipment hierarchy later names them",
        ),
        Table(
            "projects",
            (
                _c("project_id", "text", True),
                _c("enterprise_id", "text", True),
                _c("name", "text"),
                _c("type", "text", True, vocabulary="project_type"),
                _c("scope", "text", description="a registered scope, or an equipment, work_center, area, site "
                                                "or enterprise id"),
                _c("programme", "text", description="the programme (batch) of table programmes"),
                _c("level", "text", description="level of the approving authority", vocabulary="level"),
                _c("start", "date", True, description="start of implementation (register date)"),
                _c("commissioning_end", "date", True, description="end of commissioning (建成投产)"),
                _c("investment", "float", nonnegative=True, description="total investment, CNY"),
                _c("status", "text", vocabulary="project_status"),
                _c("status_date", "date", description="date of the transition to status"),
                _c("declared_efficiency", "float", description="declared change, fraction (+0.2 = +20 %)"),
                _c("declared_defect_rate", "float", description="declared reduction, fraction"),
                _c("declared_operating_cost", "float", description="declared reduction, fraction"),
                _c("declared_unit_energy", "float", description="declared reduction, fraction"),
                _c("declared_development_cycle", "float", description="declared reduction, fraction"),
            ),
            key=("project_id",),
            refs={"enterprise_id": ("enterprises", "enterprise_id"), "programme": ("programmes", "programme_id")},
        ),
        Table(
            "designations",
            (
                _c("designation_id", "text", description="record id; derived from the record when not given"),
                _c("enterprise_id", "text", True),
                _c("project_id", "text"),
                _c("scope", "text"),
                _c("name", "text", description="the designated workshop or factory"),
                _c("designation", "text", True, vocabulary="designation"),
                _c("level", "text", vocabulary="level"),
                _c("programme", "text"),
                _c("date", "date", True),
                _c("revoked", "date", description="date the recognition was revoked"),
                _c("note", "text"),
            ),
            key=("designation_id",),
            refs={"enterprise_id": ("enterprises", "enterprise_id"), "project_id": ("projects", "project_id"),
                  "programme": ("programmes", "programme_id")},
        ),
        Table(
            "programmes",
            (
                _c("programme_id", "text", True),
                _c("name", "text"),
                _c("name_en", "text"),
                _c("year", "int"),
                _c("level", "text", vocabulary="level"),
                _c("authority", "text"),
                _c("timezone", "text", description="IANA zone of the programme's register dates"),
                _c("rules", "text", description="recognition rule sets, comma-separated"),
                _c("start", "date"),
                _c("end", "date"),
                _c("description", "text"),
            ),
            key=("programme_id",),
            description="programmes (batches) of the register",
        ),
        Table(
            "programme_targets",
            (
                _c("programme_id", "text", True),
                _c("year", "int", True),
                _c("district", "text", vocabulary="district", description="empty: the whole programme"),
                _c("measure", "text", True, vocabulary="target_measure"),
                _c("target", "float", True),
                _c("note", "text"),
            ),
            key=("programme_id", "year", "district", "measure"),
            refs={"programme_id": ("programmes", "programme_id")},
            description="targets per programme, year and district: counts and indicator means",
        ),
        Table(
            "costs",
            (
                _c("scope", "text", True),
                _c("start", "timestamp", True),
                _c("end", "timestamp", True),
                _c("category", "text", True, description="e.g. labour, energy, material, maintenance"),
                _c("amount", "float", True),
                _c("currency", "text", True),
            ),
            key=("scope", "start", "end", "category"),
            description="operating cost per scope and period; deflate with variables named price_index[:category]",
        ),
        Table(
            "adjustments",
            (
                _c("adjustment_id", "text", True),
                _c("scope", "text", True, description="equipment, work_center, area, site or enterprise id"),
                _c("project_id", "text", description="the project it belongs to (empty: every project of the scope)"),
                _c("indicator", "text", description="unit_energy, energy, operating_cost, ... (empty or *: all)"),
                _c("start", "timestamp", True, description="from when the non-routine change holds"),
                _c("end", "timestamp", description="until when (empty: still holds)"),
                _c("amount", "float", description="its size per day in `unit` (empty: estimated from the baseline)"),
                _c("unit", "text", description="kWh, kgce or CNY (the indicator's numerator)"),
                _c("reason", "text", True, description="what changed, unrelated to the project"),
                _c("recorded_by", "text"),
            ),
            key=("adjustment_id",),
            description="non-routine adjustments of adjusted baselines (IPMVP): dated, explained changes of static "
                        "factors unrelated to a project, e.g. a new load",
        ),
        Table(
            "development_cycles",
            (
                _c("enterprise_id", "text", True),
                _c("product_id", "text", True),
                _c("design_start", "timestamp", True),
                _c("release", "timestamp", True),
            ),
            key=("enterprise_id", "product_id"),
            refs={"enterprise_id": ("enterprises", "enterprise_id")},
        ),
    ]
}

#: ISA-95 levels from the bottom up, as used by ``--level``.
LEVELS = ("equipment", "work_center", "area", "site", "enterprise")
LEVEL_ID_COLUMN = {"equipment": "equipment_id", "work_center": "work_center", "area": "area",
                   "site": "site", "enterprise": "enterprise"}
PERIODS = ("hour", "shift", "day", "week", "month", "all")


def table(name: str) -> Table:
    """Return the canonical table ``name``.

    Raises
    ------
    KeyError
        If ``name`` is not a canonical table; the message lists the valid names.
    """
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; canonical tables are {', '.join(TABLES)}") from None
