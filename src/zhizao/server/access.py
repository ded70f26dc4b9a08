"""Who may see and change what: the one place where roles and tenant isolation are enforced.

Every route of the API and of the dashboard gets a :class:`TenantView` (FastAPI dependency
:func:`zhizao.server.app.tenant`) and calls the stages only through it. The view derives the allowed
enterprises, sites, projects and levels from the principal (:func:`derive_access`), calls the stage
(:class:`zhizao.Workspace`, :mod:`zhizao.verify`, :mod:`zhizao.portfolio`) and keeps only the rows the
principal may see; writes are checked before anything is stored.

Roles
-----
admin
    Everything, including accounts.
analyst (programme analyst)
    Projects, verification results, programme statistics, recognition checks and bulletins of the whole
    programme; shop-floor data only as aggregates: KPIs and elements from work centre level up, the quarantine
    as counts per table and rule. May load the register tables (enterprises, projects, designations) and store
    verifications.
assessor
    The projects assigned to them: their verification results (and storing new ones), and the data of those
    projects' enterprises as evidence (all levels), recognition checks of those enterprises.
enterprise (enterprise user) and API keys
    Their own enterprise's data only (a site key: that site's only): KPIs at all levels, their uploads and
    quarantine, their projects and verification results, recognition checks of their enterprise. May load
    shop-floor tables, and only records about their own equipment and scopes.

Tenant rule
-----------
An entity (equipment, work centre, area, site, enterprise) is visible when *all* equipment that carries its
id in the equipment table belongs to the principal's enterprises (and site). An id shared with another
tenant's equipment is therefore hidden from both (the roll-up would mix their data); only the admin and the
analyst see it. Records that name an id of another tenant are refused with 403, before anything is loaded.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd

from zhizao.api import present, reading_end
from zhizao.ingest.load import IngestError, read_sql
from zhizao.ingest.mapping import ALIASES, Mapping, default_mapping
from zhizao.kpi.kpis import KPI_NAMES
from zhizao.messages import define
from zhizao.schema import LEVEL_ID_COLUMN, LEVELS, PERIODS, REGISTER_TABLES, TABLES
from zhizao.server.errors import BadRequest, Forbidden, NotFound
from zhizao.server.store import ALL, ROWS_BY_ID
from zhizao.store import equipment as store_equipment
from zhizao.store import records as store_records

if TYPE_CHECKING:  # zhizao.verify is imported when first used
    from zhizao.verify.result import VerificationResult

#: What cached results depend on (see zhizao.server.store).
DATA, REGISTER, VERIFICATIONS = ("data",), ("register",), ("verifications", "register")
#: What is derived from the equipment table alone (who sees what, the hierarchy): only a load of the equipment
#: table changes it, not another tenant's records.
EQUIPMENT = ("equipment",)
DATA_REGISTER = ("data", "register")

HIERARCHY = ("equipment_id", "work_center", "area", "site", "enterprise")
#: The register (programmes, enterprises, scopes, projects, designations, targets): the programme office's.
REGISTRY_TABLES = frozenset(REGISTER_TABLES)
SHOPFLOOR_TABLES = frozenset(TABLES) - REGISTRY_TABLES
#: Levels an analyst may query (aggregates of several machines' records).
ANALYST_LEVELS = ("work_center", "area", "site", "enterprise")
#: Longest query range [days] (all periods) and for hourly buckets.
MAX_RANGE_DAYS = 3700
MAX_HOURLY_DAYS = 400

# -- messages (the server's refusals; rendered in the request's language)
UNKNOWN_ROLE = define("server.unknown_role", "unknown role '%(role)s'")
BAD_TIME = define("server.bad_time", "%(name)s = '%(value)s' is not an ISO 8601 date or time stamp")
UNKNOWN_PERIOD = define("server.unknown_period", "unknown period '%(value)s'; one of %(allowed)s")
UNKNOWN_LEVEL = define("server.unknown_level", "unknown level '%(value)s'; one of %(allowed)s")
RANGE_BOTH = define("server.range_both", "give both start and end, or neither (the whole data range)")
RANGE_ORDER = define("server.range_order", "end %(end)s is not after start %(start)s")
TOO_MANY_ROWS = define("server.too_many_rows",
                       "this query would compute %(rows)s rows of machines and %(period)s buckets, more than the "
                       "limit of %(limit)s: give a shorter range (start and end), a longer period or a level "
                       "above the machines")
RANGE_TOO_LONG = define("server.range_too_long",
                        "the range is %(days)s days; at most %(limit)s days for period '%(period)s'")
NO_SCOPE = define("server.no_scope", "no scope '%(scope)s' (equipment, work centre, area, site or enterprise id) "
                                     "that you may see")
AGGREGATES_ONLY = define("server.aggregates_only",
                         "your role sees shop-floor data only as aggregates: level '%(level)s' is not allowed "
                         "(allowed: %(allowed)s)")
UNKNOWN_KPI = define("server.unknown_kpi", "unknown KPI %(names)s; known: %(known)s")
NO_PROJECT = define("server.no_project", "no project '%(id)s' that you may see")
NO_ENTERPRISE = define("server.no_enterprise", "no enterprise '%(id)s' that you may see")
NO_SITE = define("server.no_site", "no site '%(id)s' that you may see")
NO_UPLOAD = define("server.no_upload", "no upload '%(id)s' that you may see")
NO_KEY = define("server.no_key", "no key '%(id)s' that you may revoke")
NO_SESSION = define("server.no_session", "no session '%(id)s' that you may revoke")
WINDOW_PAIR = define("server.window_pair", "%(name)s is a pair [start, end]")
WINDOW_ENDS = define("server.window_ends", "%(name)s needs a start and an end")
PROGRAMME_ONLY = define("server.programme_only", "only programme analysts and administrators see programme "
                                                 "statistics and the bulletin")
STORE_VERIFICATIONS_ONLY = define("server.store_verifications_only",
                                  "only analysts, assessors of the project and administrators store verification "
                                  "results")
QUARANTINE_COUNTS_ONLY = define("server.quarantine_counts_only",
                                "your role sees the quarantine only as counts per table and rule "
                                "(/api/v1/quarantine/summary)")
ADMIN_ONLY = define("server.admin_only", "administrators only")
ADMIN_OR_SELF = define("server.admin_or_self", "administrators only (or your own account)")
ADMIN_OR_OWN_PASSWORD = define("server.admin_or_own_password",
                               "administrators only (you may change your own password)")
KEY_MANAGERS_ONLY = define("server.key_managers_only", "administrators and enterprise users only")
KEY_NO_SESSIONS = define("server.key_no_sessions", "an API key has no sessions")
UNKNOWN_TABLE = define("server.unknown_table", "unknown table '%(table)s'; canonical tables are %(tables)s")
MAY_NOT_LOAD = define("server.may_not_load", "your role may not load table '%(table)s'")
MAY_NOT_LOAD_BUT = define("server.may_not_load_but",
                          "your role may not load table '%(table)s' (you may load: %(tables)s)")
UPLOAD_REFUSED = define("server.upload_refused", "upload refused, nothing was stored: %(problems)s")
UPLOAD_REFUSED_MORE = define("server.upload_refused_more",
                             "upload refused, nothing was stored: %(problems)s (and %(more)s more)")
P_NEEDS_ENTERPRISE = define("server.upload_needs_enterprise",
                            "every equipment record must name its enterprise (%(enterprises)s)")
P_NOT_YOUR_ENTERPRISE = define("server.upload_not_your_enterprise", "enterprise '%(id)s' is not yours")
P_NOT_KEY_SITE = define("server.upload_not_key_site", "site '%(id)s' is not the site of this key (%(sites)s)")
P_FOREIGN_ID = define("server.upload_foreign_id", "%(column)s '%(id)s' belongs to another tenant")
P_PRODUCT_NO_EQUIPMENT = define("server.upload_product_no_equipment",
                                "a product without equipment_id would apply to every enterprise; give "
                                "equipment_id")
P_FOREIGN_EQUIPMENT = define("server.upload_foreign_equipment", "equipment '%(id)s' belongs to another tenant")
P_FOREIGN_SCOPE = define("server.upload_foreign_scope", "scope '%(id)s' belongs to another tenant")
P_NOT_YOUR_ENTERPRISE_ID = define("server.upload_not_your_enterprise_id", "enterprise_id '%(id)s' is not yours")
CANNOT_READ_FILE = define("server.cannot_read_file", "cannot read file: %(error)s")
OFFICE_ONLY = define("server.office_only", "only the programme office (analysts and administrators) may do this")
REGISTER_OFFICE_ONLY = define("server.register_office_only", "only the programme office (analysts and "
                                                             "administrators) changes the register")
NO_RECORD_VISIBLE = define("server.no_record", "no %(table)s record '%(key)s' that you may see")
NO_APPLICATION = define("server.no_application", "no application '%(id)s' that you may see")
STEP_NOT_YOURS = define("server.step_not_yours", "%(action)s is a step of the %(role)s")
APPLY_ENTERPRISES_ONLY = define("server.apply_enterprises_only", "applications are made by enterprise users")
NO_EVIDENCE = define("server.no_evidence", "no evidence file '%(id)s' that you may see")
QUESTIONNAIRE_ENTERPRISE_ONLY = define("server.questionnaire_enterprise_only",
                                       "an enterprise's users answer its questionnaire")
CONFIRM_ASSESSORS_ONLY = define("server.confirm_assessors_only", "declared criteria are confirmed by the "
                                                                 "assessors of the enterprise's application")
CANNOT_READ_COLUMN = define("server.cannot_read_column", "cannot read column %(column)s: %(error)s")


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user (by session) or an API key."""

    kind: str  # "user" or "key"
    name: str  # user name or key id
    role: str  # one of accounts.ROLES (a key acts as "enterprise")
    enterprise_id: str | None = None
    site: str | None = None
    projects: frozenset = field(default_factory=frozenset)
    session_id: str | None = None
    csrf: str | None = None
    display_name: str | None = None
    district: str | None = None  # a district reviewer's district (code of the vocabulary district)

    @property
    def label(self) -> str:
        return self.display_name or self.name

    @property
    def actor(self) -> str:
        """How the audit log names this principal: ``user:NAME`` or ``key:ID``."""
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Access:
    """What a principal may do (see the module docstring). ``None`` sets mean unrestricted."""

    principal: Principal
    enterprises: frozenset | None
    sites: frozenset | None
    projects: frozenset | None
    raw: bool
    levels: tuple
    write_tables: frozenset
    programme: bool
    store_verifications: bool
    admin: bool

    @property
    def sql_mappings(self) -> bool:
        """Whether uploaded mappings may hold SQL expressions (they run inside the store: administrators)."""
        return self.admin

    @property
    def unrestricted(self) -> bool:
        return self.enterprises is None and self.sites is None

    @property
    def tenant(self) -> tuple:
        return (self.enterprises, self.sites)

    @property
    def signature(self) -> tuple:
        """Everything that decides what this principal sees (principals with equal signatures see the same)."""
        return (self.principal.role, self.enterprises, self.sites, self.projects, self.raw, self.levels,
                self.programme, self.store_verifications, self.admin)


#: Roles that see the programme (statistics, bulletin).
PROGRAMME_ROLES = ("admin", "analyst")


def role_sees_programme(role: str) -> bool:
    """Whether a role sees programme statistics and the bulletin (the navigation's "Programme")."""
    return role in PROGRAMME_ROLES


def sees_server_status(principal: Principal | None) -> bool:
    """Whether a caller sees the server's own state beyond ready or not (the live sources and their counters in
    ``/api/v1/health``): administrators only."""
    return principal is not None and principal.role == "admin"


def nav_items(principal: Principal, nav) -> list[dict]:
    """The dashboard's navigation for ``principal`` from ``nav`` ((key, href, label), ...): the programme page
    is the recognition checks for roles that do not see the programme, the audit log is the office's, the
    applications are for users (API keys load data)."""
    out = []
    for key, href, label in nav:
        if key == "programme" and not role_sees_programme(principal.role):
            href = "/recognition"
        if key == "audit" and not role_sees_programme(principal.role):
            continue
        if key == "applications" and principal.kind != "user":
            continue
        out.append({"key": key, "href": href, "label": label})
    return out


def derive_access(principal: Principal, con) -> Access:
    """The access of ``principal`` (``con``: a cursor of the store, to look up sites and projects)."""
    p = principal
    all_levels = tuple(LEVELS)
    if p.role == "admin":
        return Access(p, None, None, None, True, all_levels, frozenset(TABLES), True, True, True)
    if p.role == "analyst":
        return Access(p, None, None, None, False, ANALYST_LEVELS, REGISTRY_TABLES, True, True, False)
    if p.role == "assessor":
        # assigned projects, and the projects and enterprises of the applications they review
        ids = set(p.projects)
        app_ents: set = set()
        if _has_table(con, "application_assessors"):
            for pid, ent in con.execute("""SELECT a.project_id, a.enterprise_id FROM applications a
                                           JOIN application_assessors s USING (application_id)
                                           WHERE s.assessor = ? AND s.active""", [p.name]).fetchall():
                app_ents.add(ent)
                if pid is not None:
                    ids.add(pid)
        ents = frozenset(e for (e,) in con.execute(
            "SELECT DISTINCT enterprise_id FROM projects WHERE list_contains(?, project_id)", [sorted(ids)]).fetchall()
            if e is not None) | frozenset(app_ents)
        return Access(p, ents, None, frozenset(ids), True, all_levels, frozenset(), False, True, False)
    if p.role == "district":
        # the district's enterprises: their register, applications and data as aggregates
        return Access(p, district_enterprises(con, p.district), None, None, False, ANALYST_LEVELS, frozenset(),
                      False, False, False)
    if p.role == "enterprise":
        if p.site:
            if p.enterprise_id:
                ents = frozenset({p.enterprise_id})
            else:  # a key made before keys were bound to one enterprise: that enterprise, or nothing
                from zhizao.server.accounts import site_enterprises

                found = site_enterprises(con, p.site)
                ents = frozenset(found) if len(found) == 1 else frozenset()
            return Access(p, ents, frozenset({p.site}), None, True, all_levels,
                          SHOPFLOOR_TABLES - {"development_cycles"}, False, False, False)
        return Access(p, frozenset({p.enterprise_id}), None, None, True, all_levels, SHOPFLOOR_TABLES, False,
                      False, False)
    raise Forbidden(UNKNOWN_ROLE, role=p.role)


def _has_table(con, name: str) -> bool:
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
                       ).fetchone()[0] > 0


def district_enterprises(con, district: str | None) -> frozenset:
    """The enterprises registered in ``district`` (a code of the vocabulary; stored labels count too)."""
    from zhizao.portfolio.vocabularies import vocabulary

    if not district:
        return frozenset()
    v = vocabulary("district")
    rows = con.execute("SELECT enterprise_id, district FROM enterprises").fetchall()
    return frozenset(e for e, d in rows if isinstance(d, str) and (v.match(d) or d) == district)


def admin_access(name: str = "admin") -> Access:
    """The access of an administrator (for the server's own work, such as warming the caches)."""
    return derive_access(Principal("user", name, "admin"), None)


def enterprise_access(enterprise_id: str, name: str = "enterprise") -> Access:
    """The access of a user of enterprise ``enterprise_id`` (for the server's own work on that enterprise's
    results, such as warming them after its upload)."""
    return derive_access(Principal("user", name, "enterprise", enterprise_id=enterprise_id), None)


def _records(df: pd.DataFrame) -> pd.DataFrame:
    return df.reset_index(drop=True)


#: A text column of a cached stage table is kept as a category when it has at most one distinct value in this
#: many rows (:func:`compact`)
COMPACT_RATIO = 8
#: ... and the table at least this many rows
COMPACT_ROWS = 1000


def compact(df, id_column: str | None = None):
    """A stage table as the server caches it: text columns that repeat a few values (the null reasons of every
    day of every machine, the period bounds, the ids) held as categories, each text once, with a
    :class:`RowIndex` of its rows by ``id_column`` (made before the table is cached, so the cache weighs it with
    the table). A 1,000-machine plant-year's machine table by day holds 500 MiB of repeated null-reason texts
    otherwise (of 715 MiB), and the cache's memory bound (:class:`zhizao.server.store.LRU`) would push the other
    tables out for it. :func:`take_rows` (:meth:`TenantView.filter`) gives the columns back as texts, so callers
    see the stage's own table. Anything but a table is returned as it is.

    Examples
    --------
    >>> t = pd.DataFrame({"id": ["M1", "M2"] * 1000, "oee": 0.5})
    >>> c = compact(t, "id")
    >>> str(c["id"].dtype), take_rows(c).equals(t), take_rows(c, row_index(c, "id").positions(["M2"]))["id"][0]
    ('category', True, 'M2')
    """
    if not isinstance(df, pd.DataFrame):
        return df
    cols = []
    if len(df) >= COMPACT_ROWS:
        for c in df.columns:
            col = df[c]
            # texts of pandas' string type only: their nulls come back as they were (an object column's None
            # would come back as NaN)
            if isinstance(col.dtype, pd.StringDtype) and col.nunique(dropna=True) * COMPACT_RATIO <= len(df):
                cols.append(c)
    out = df.assign(**{c: df[c].astype("category") for c in cols}) if cols else df
    texts = tuple((i, out[c].array.categories.array, np.asarray(out[c].array.codes))
                  for i, c in enumerate(out.columns) if c in cols)
    # (a plain attribute of this frame, not attrs: pandas deep-copies those into every frame derived from it)
    object.__setattr__(out, ROWS_BY_ID, RowIndex.of(out, id_column, texts))
    return out


@dataclass(frozen=True, eq=False)
class RowIndex:
    """What a cached stage table carries to hand its rows out fast (:func:`compact`; the frame's attribute
    :data:`zhizao.server.store.ROWS_BY_ID`, weighed with it): its rows by the level's id, and the columns it holds
    as categories. A machine's page takes its rows from the plant's tables by day: hundreds of thousands of
    rows, judged once, not at every page.

    ``texts``: (position, categories, codes) of each column :func:`compact` made a category (the table's own
    arrays); ``column``: the id column the rows are indexed by (None: none); ``ids``: its distinct values (id k's
    rows are ``order[bounds[k]:bounds[k + 1]]``, in the table's order); ``nbytes``: what it holds beyond the
    table's arrays [bytes]."""

    texts: tuple = ()
    column: str | None = None
    ids: pd.Index | None = None
    order: np.ndarray | None = None
    bounds: np.ndarray | None = None
    nbytes: int = 0

    @classmethod
    def of(cls, df: pd.DataFrame, column: str | None, texts: tuple = ()) -> RowIndex:
        if column is None or column not in df.columns:
            return cls(texts)
        col = df[column]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes, ids, own = np.asarray(col.array.codes), col.cat.categories, 0
        else:  # (a small table, or one of as many ids as rows: its distinct ids are held here)
            codes, uniques = pd.factorize(col)
            ids = pd.Index(uniques)
            own = int(ids.memory_usage(deep=False))
        order = np.argsort(codes, kind="stable").astype(np.int32 if len(df) < 2**31 else np.int64)
        bounds = np.searchsorted(codes[order], np.arange(len(ids) + 1))  # (null ids, code -1, first)
        order.setflags(write=False)  # (shared by every request's rows)
        return cls(texts, column, ids, order, bounds, own + order.nbytes + bounds.nbytes)

    def positions(self, ids) -> np.ndarray:
        """The positions of the rows whose id is one of ``ids``, in the table's order (an id asked twice:
        once; unknown ids: none)."""
        if self.ids is None or self.order is None or self.bounds is None:
            raise ValueError("this index holds no rows by id (compact() was given no id column)")
        found = set()
        for i in ids:  # (a page asks one id: the ids' hash table, not an array of them)
            try:
                k = self.ids.get_loc(i)
            except (KeyError, TypeError, pd.errors.InvalidIndexError):
                continue
            if isinstance(k, (int, np.integer)):
                found.add(int(k))
        parts = [self.order[self.bounds[k]:self.bounds[k + 1]] for k in sorted(found)]
        if not parts:
            return np.empty(0, np.int64)
        return np.sort(np.concatenate(parts)) if len(parts) > 1 else parts[0]


def row_index(df: pd.DataFrame, column: str) -> RowIndex:
    """The :class:`RowIndex` of ``df`` by ``column``: the one :func:`compact` made, else made now and kept with
    the frame (a table the cache did not make)."""
    index = df.__dict__.get(ROWS_BY_ID)
    if index is None or index.column != column:
        index = RowIndex.of(df, column, index.texts if index is not None else ())
        object.__setattr__(df, ROWS_BY_ID, index)
    return index


def take_rows(df: pd.DataFrame, at: np.ndarray | None = None) -> pd.DataFrame:
    """Rows ``at`` (positions; None: all) of a table :func:`compact` made, numbered from 0, with the columns it
    holds as categories back in their own type (each category's text taken by its code: nulls are code -1)."""
    index = df.__dict__.get(ROWS_BY_ID)
    out = df.take(at) if at is not None else df.copy(deep=False)
    out.index = pd.RangeIndex(len(out))
    for i, categories, codes in index.texts if index is not None else ():
        out.isetitem(i, categories.take(codes if at is None else codes[at], allow_fill=True))
    return out


def parse_time(value, name: str):
    """A time bound as given (str), or None; 400 when pandas cannot read it."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise BadRequest(BAD_TIME, name=name, value=str(value)) from None
    if ts is pd.NaT or pd.isna(ts):
        raise BadRequest(BAD_TIME, name=name, value=str(value))
    return str(value).strip()


def check_range(start, end, period: str = "day") -> tuple:
    """Validated (start, end) of a KPI query: both or neither, end after start, not longer than
    :data:`MAX_RANGE_DAYS` (:data:`MAX_HOURLY_DAYS` for hourly buckets)."""
    if period not in PERIODS:
        raise BadRequest(UNKNOWN_PERIOD, value=period, allowed=list(PERIODS))
    start, end = parse_time(start, "start"), parse_time(end, "end")
    if (start is None) != (end is None):
        raise BadRequest(RANGE_BOTH)
    if start is not None:
        a, b = pd.Timestamp(start), pd.Timestamp(end)
        a = a.tz_localize("UTC") if a.tzinfo is None else a
        b = b.tz_localize("UTC") if b.tzinfo is None else b
        if b <= a:
            raise BadRequest(RANGE_ORDER, end=end, start=start)
        days = (b - a).total_seconds() / 86400
        limit = MAX_HOURLY_DAYS if period == "hour" else MAX_RANGE_DAYS
        if days > limit:
            raise BadRequest(RANGE_TOO_LONG, days=round(days), limit=limit, period=period)
    return start, end


class TenantView:
    """The stages as one principal may use them. Every method returns only what the principal may see, and
    raises :class:`Forbidden` (a role without the right) or :class:`NotFound` (an object outside its tenant).

    Parameters
    ----------
    read : zhizao.server.store.Read
        The request's read transaction.
    access : Access
    """

    def __init__(self, read, access: Access):
        self.read = read
        self.access = access
        self._part = None  # the tenant's scoped workspace while a tenant stage computes

    @property
    def ws(self):
        return self._part if self._part is not None else self.read.ws

    # -- building blocks
    def cached(self, key: tuple, compute, deps=ALL, tenant: bool = False):
        """``compute()`` cached under ``key`` and the counters of what it depends on (``deps``: ``data``,
        ``register``, ``verifications``; see :mod:`zhizao.server.store`). ``tenant=True`` for a result of this
        principal's own data (``key`` must then name the access signature): only writes to its enterprises'
        data invalidate it."""
        return self.read.cached(key, compute, deps, self.access.enterprises if tenant else None)

    def cached_or_stale(self, key: tuple, compute, wait: float, deps=ALL, tenant: bool = False):
        """As :meth:`cached`, but ``(value, as_of)``: when the value is not cached and computing it takes longer
        than ``wait`` [s], the latest earlier value of the same key and the time it is as of [s since the epoch],
        while the current one is computed in the background on a snapshot of its own
        (:meth:`zhizao.server.store.Read.cached_or_stale`); ``as_of`` is None for a current value. ``key`` must
        name the access signature (an earlier value is then this principal's own)."""
        return self.read.cached_or_stale(key, compute, wait, self._reading, deps,
                                         self.access.enterprises if tenant else None)

    @contextmanager
    def _reading(self, read):
        """This view reads through ``read`` inside the block (a background refresh of one of its pages, after
        the request has its answer; see :meth:`cached_or_stale`)."""
        own, self.read = self.read, read
        try:
            yield self
        finally:
            self.read = own

    @property
    def equipment_table(self) -> pd.DataFrame:
        return self.cached(("equipment",), lambda: store_equipment.equipment_table(self.read.con), EQUIPMENT)

    def _mask(self, eq: pd.DataFrame) -> pd.Series:
        a = self.access
        m = pd.Series(True, index=eq.index)
        if a.enterprises is not None:
            m &= eq["enterprise"].isin(list(a.enterprises)).fillna(False).astype(bool)
        if a.sites is not None:
            m &= eq["site"].isin(list(a.sites)).fillna(False).astype(bool)
        return m

    def allowed(self) -> dict[str, frozenset] | None:
        """Visible ids per level (None: unrestricted). An id is visible when all its equipment is."""
        if self.access.unrestricted:
            return None

        def compute():
            eq = self.equipment_table
            ok = self._mask(eq)
            out = {}
            for level in LEVELS:
                col = LEVEL_ID_COLUMN[level]
                g = pd.DataFrame({"id": eq[col], "ok": ok}).dropna(subset=["id"]).groupby("id")["ok"].all()
                out[level] = frozenset(g.index[g.to_numpy(dtype=bool)])
            return out
        return self.cached(("allowed", self.access.tenant), compute, EQUIPMENT)

    def foreign_ids(self) -> frozenset:
        """Every hierarchy id of equipment this principal may not see."""
        if self.access.unrestricted:
            return frozenset()

        def compute():
            eq = self.equipment_table
            other = eq[~self._mask(eq)]
            return frozenset(v for c in HIERARCHY for v in other[c].dropna().tolist())
        return self.cached(("foreign", self.access.tenant), compute, EQUIPMENT)

    def visible_any(self) -> frozenset | None:
        """Ids visible at any level (None: unrestricted)."""
        al = self.allowed()
        return None if al is None else frozenset().union(*al.values())

    def scope_visible(self, scope: str) -> bool:
        vis = self.visible_any()
        if vis is None:
            return True
        return scope in vis

    def require_scope(self, scope: str) -> str:
        """``scope`` if the principal may see it (404 otherwise) and may see its level: a role that sees
        shop-floor data only as aggregates may not name a piece of equipment (403)."""
        if not isinstance(scope, str) or not scope or not self.scope_visible(scope):
            raise NotFound(NO_SCOPE, scope=str(scope))
        if "equipment" not in self.access.levels and scope in self.equipment_ids():
            raise Forbidden(AGGREGATES_ONLY, level="equipment", allowed=list(self.access.levels))
        return scope

    def equipment_ids(self) -> frozenset:
        """Every equipment id of the store."""
        return self.cached(("equipment_ids",), lambda: frozenset(self.equipment_table["equipment_id"]), EQUIPMENT)

    def require_level(self, level: str) -> str:
        if level not in LEVELS:
            raise BadRequest(UNKNOWN_LEVEL, value=level, allowed=list(LEVELS))
        if level not in self.access.levels:
            raise Forbidden(AGGREGATES_ONLY, level=level, allowed=list(self.access.levels))
        return level

    def require(self, flag: str, message) -> None:
        """403 with ``message`` unless the access has ``flag`` (``programme``, ``store_verifications``, ...)."""
        if not getattr(self.access, flag):
            raise Forbidden(message)

    def within_ids(self, level: str, within: dict | None) -> frozenset | None:
        """Ids of ``level`` whose equipment all lie inside every ``{level_column: id}`` of ``within``."""
        if not within:
            return None
        col = LEVEL_ID_COLUMN[level]

        def compute():
            eq = self.equipment_table
            ok = pd.Series(True, index=eq.index)
            for pcol, pid in within.items():
                ok &= (eq[pcol] == pid).fillna(False).astype(bool)
            g = pd.DataFrame({"id": eq[col], "ok": ok}).dropna(subset=["id"]).groupby("id")["ok"].all()
            return frozenset(g.index[g.to_numpy(dtype=bool)])
        return self.cached(("within", level, tuple(sorted(within.items()))), compute, EQUIPMENT)

    def filter(self, df: pd.DataFrame, level: str, ids=None, within: dict | None = None) -> pd.DataFrame:
        """Rows of ``df`` (with the level's id column) that the principal may see, optionally only ``ids`` and
        only entities inside ``within``. With ``ids`` (an entity's page reads one machine's days of a table of
        every machine's) the ids are judged first and the rows of those that pass taken at once."""
        col = LEVEL_ID_COLUMN[level]
        al = self.allowed()
        w = self.within_ids(level, within)
        if ids:
            ok = [i for i in ids if (al is None or i in al[level]) and (w is None or i in w)]
            return take_rows(df, row_index(df, col).positions(ok))
        keep = np.ones(len(df), dtype=bool)
        if al is not None:
            keep &= df[col].isin(list(al[level])).fillna(False).to_numpy(dtype=bool)
        if w is not None:
            keep &= df[col].isin(list(w)).fillna(False).to_numpy(dtype=bool)
        return take_rows(df, None if keep.all() else np.flatnonzero(keep))

    def _stage(self, name: str, fn, *args, deps=ALL):
        """A stage call, cached under the counters of ``deps``. The stage's own errors
        (:class:`zhizao.errors.ZhizaoError`) reach the caller as they are; anything else is a fault (500).

        A stage of shop-floor data (``deps=DATA``) of a principal bound to enterprises (enterprise users and
        keys, assessors) is computed on a workspace that sees only those enterprises' data
        (:meth:`zhizao.Workspace.scoped`) and cached under their counters only: another tenant's upload, or a
        far date in another tenant's data, neither invalidates nor slows it. The stages of one tenant share
        what the workspace computes (the elements of each period: :meth:`zhizao.server.store.Read.scoped`). The
        entities the principal may see are computed alike either way (their equipment is all the
        principal's)."""
        ents = self.access.enterprises
        if deps is DATA and ents:
            def compute():
                self._part = self.read.scoped(ents)  # closed with the read
                try:
                    return fn(*args)
                finally:
                    self._part = None
            return self.cached((name, "tenant", *args), compute, DATA, tenant=True)
        return self.cached((name, *args), lambda: fn(*args), deps)

    # -- KPI stage
    def _table(self, name: str, level: str, *args, then=None) -> pd.DataFrame:
        """The KPI-stage table of :class:`zhizao.Workspace` method ``name`` at ``level`` (``then`` applied to it) of
        the principal's data (:meth:`_stage`: the method is looked up when it computes, on the tenant's
        workspace), cached with its repeated texts held once and its rows indexed by the level's id
        (:func:`compact`; :meth:`filter` hands them out as texts)."""
        def compute(*a):
            df = getattr(self.ws, name)(*a)
            return compact(then(df) if then is not None else df, LEVEL_ID_COLUMN[level])
        return self._stage(name, compute, level, *args, deps=DATA)

    def _check_rows(self, level: str, period: str, start, end, whole: bool = False) -> None:
        """Refuse (:class:`BadRequest`) a query whose machine rows (equipment x buckets of the principal's data)
        exceed ``max_result_rows``: one at the machine level, or (``whole``) one that holds every entity's
        elements at once (stop reasons, capability); the roll-ups to other levels stream partitions in bounded
        memory. Estimated from the engine's facts (shared and cheap) before anything is computed."""
        if level != "equipment" and not whole:
            return
        from zhizao.scale.engines import engine_context

        ents = self.access.enterprises

        def count() -> int:
            ctx = engine_context(self.read.scoped(ents) if ents else self.read.ws)
            ent = ctx.ranges(period, start, end)
            return 0 if ent is None else int(ctx.n_buckets(ent, period).sum())
        key = ("result_rows", tuple(sorted(ents)) if ents else None, period, str(start), str(end))
        rows = self.cached(key, count, DATA, tenant=bool(ents))  # a cached answer never opens the store
        limit = self.read.store.ws.limits.max_result_rows
        if rows > limit:
            raise BadRequest(TOO_MANY_ROWS, rows=rows, period=period, limit=limit)

    def _range(self, start, end, period: str) -> tuple:
        """The validated range of a stage call (:func:`check_range`); without one, the default range read now
        (:meth:`zhizao.Workspace.reading_time`: the current bucket ends now, not at its end still to come),
        judged on the principal's own data, so another tenant's live data never change its results' keys."""
        start, end = check_range(start, end, period)
        if start is not None:
            return start, end
        ents = self.access.enterprises
        if ents:
            key = ("latest_record", tuple(sorted(ents)))
            latest = self.cached(key, lambda: self.read.scoped(ents).latest_record(), DATA, tenant=True)
        else:
            latest = self.cached(("latest_record",), lambda: self.read.ws.latest_record(), DATA)
        return None, reading_end(latest)

    def _rows(self, name: str, level: str, period: str, start, end, ids, within, whole: bool = False, then=None,
              check=None) -> pd.DataFrame:
        """The rows the principal may see (``ids``, ``within``: :meth:`filter`) of the KPI-stage table ``name``
        (:meth:`_table`) at ``level`` over the validated range (:meth:`_range`), after the level's right and the
        size of the answer are checked (:meth:`_check_rows`, ``whole``) and ``check()``, if any."""
        self.require_level(level)
        start, end = self._range(start, end, period)
        self._check_rows(level, period, start, end, whole)
        if check is not None:
            check()
        return self.filter(self._table(name, level, period, start, end, then=then), level, ids, within)

    def kpi(self, level="equipment", period="day", start=None, end=None, kpis=None, ids=None, within=None):
        """:meth:`zhizao.Workspace.kpi` rows the principal may see."""
        def known():
            bad = [k for k in kpis or () if k not in KPI_NAMES]
            if bad:
                raise BadRequest(UNKNOWN_KPI, names=bad, known=list(KPI_NAMES))
        df = self._rows("kpi", level, period, start, end, ids, within, check=known)
        if kpis:
            df = df.drop(columns=[k for k in KPI_NAMES if k not in kpis and k in df.columns])
        return df

    def elements(self, level="equipment", period="day", start=None, end=None, ids=None, within=None):
        # time stamps with the row's offset, as every other table of the KPI stage (the engine's are UTC)
        return self._rows("elements", level, period, start, end, ids, within, then=present)

    def losses(self, level="site", period="all", start=None, end=None, ids=None, within=None):
        return self._rows("losses", level, period, start, end, ids, within)

    def stop_reasons(self, level="site", period="all", start=None, end=None, ids=None, within=None):
        return self._rows("stop_reasons", level, period, start, end, ids, within, whole=True)

    def data_quality(self, level="equipment", period="day", start=None, end=None, ids=None, within=None):
        return self._rows("data_quality", level, period, start, end, ids, within)

    def capability(self, level="equipment", period="all", start=None, end=None, ids=None, within=None):
        return self._rows("capability", level, period, start, end, ids, within, whole=True)

    def catalogue(self) -> pd.DataFrame:
        """The KPI catalogue, with availability judged on the principal's own data only."""
        from zhizao.kpi.kpis import catalogue

        res = self._stage("elements_all", lambda: self.ws.elements_raw("all"), deps=DATA)
        el = res.elements
        al = self.allowed()
        if al is not None:
            keep = pd.Series(False, index=el.index)
            for level in LEVELS:
                keep |= (el["level"] == level) & el["entity_id"].isin(list(al[level]))
            el = el[keep.to_numpy(dtype=bool)]
        any_vis = self.visible_any()  # None exactly when al is None
        return catalogue(el.reset_index(drop=True), store_records.has_measurements(self.read.con, any_vis))

    def equipment_rows(self, level: str, eid: str) -> pd.DataFrame:
        """The equipment of entity ``eid`` of ``level`` that the principal may see (an entity's page: its parents
        and its existence), by an index of the equipment table's rows made once per version of the table."""
        def compute():  # (the table with its index: positions of one table are never read in another)
            eq = self.equipment_table
            return eq, RowIndex.of(eq, LEVEL_ID_COLUMN[level])
        eq, index = self.cached(("equipment_rows", level), compute, EQUIPMENT)
        rows = eq.take(index.positions([eid]))
        al = self.allowed()  # (the ids of the equipment the mask passes: a set, not a comparison of columns)
        if al is not None:
            rows = rows[np.fromiter((e in al["equipment"] for e in rows["equipment_id"]), bool, len(rows))]
        return _records(rows)

    def equipment(self, within: dict | None = None) -> pd.DataFrame:
        eq = self.equipment_table
        eq = eq[self._mask(eq).to_numpy(dtype=bool)] if not self.access.unrestricted else eq
        for col, v in (within or {}).items():
            eq = eq[(eq[col] == v).fillna(False).astype(bool).to_numpy()]
        return _records(eq)

    # -- register (portfolio)
    def project_visible(self, row) -> bool:
        a = self.access
        if a.projects is not None and row["project_id"] not in a.projects:
            return False
        if a.enterprises is not None and row["enterprise_id"] not in a.enterprises:
            return False
        if a.sites is not None:
            scope = row.get("scope")
            return isinstance(scope, str) and self.scope_visible(scope)
        return True

    def projects(self, park=None, district=None, start=None, end=None) -> pd.DataFrame:
        from zhizao.portfolio.registry import projects

        start, end = parse_time(start, "start"), parse_time(end, "end")
        if park and self.access.enterprises is not None:
            # an unknown park is refused naming the parks this principal may see, not every tenant's
            from zhizao.portfolio.filters import NONE_VISIBLE, UNKNOWN, split

            own = sorted({p for p in self.enterprises()["park"] if isinstance(p, str)})
            bad = [p for p in split(park) or () if p not in own]
            if bad:
                raise BadRequest(UNKNOWN(what="park", value=bad[0], known=own or [NONE_VISIBLE()]))
        df = self._stage("projects", lambda *a: projects(self.ws, *a), park, district, start, end, deps=REGISTER)
        if len(df):
            df = df[self._projects_visible(df)]
        return _records(df)

    def _projects_visible(self, df: pd.DataFrame) -> np.ndarray:
        """:meth:`project_visible` of every row of ``df``, by columns (a register of thousands of projects is
        filtered in milliseconds, not a row at a time)."""
        a = self.access
        keep = np.ones(len(df), dtype=bool)
        if a.projects is not None:
            keep &= df["project_id"].isin(list(a.projects)).to_numpy(dtype=bool)
        if a.enterprises is not None:
            keep &= df["enterprise_id"].isin(list(a.enterprises)).to_numpy(dtype=bool)
        if a.sites is not None:
            vis = self.visible_any()  # scope_visible of every scope at once
            keep &= np.array([isinstance(s, str) and (vis is None or s in vis) for s in df["scope"]], dtype=bool)
        return keep

    def project(self, project_id: str) -> dict:
        df = self.projects()
        hit = df[df["project_id"] == project_id]
        if hit.empty:
            raise NotFound(NO_PROJECT, id=project_id)
        return hit.iloc[0].to_dict()

    def project_ids(self) -> list[str]:
        return self.projects()["project_id"].tolist()

    def latest_verifications(self, project_ids=None) -> pd.DataFrame:
        from zhizao.portfolio.registry import latest_verifications

        visible = set(self.project_ids())
        ids = visible if project_ids is None else visible & set(project_ids)
        df = self._stage("latest_verifications", lambda: latest_verifications(self.ws), deps=VERIFICATIONS)
        return _records(df[df["project_id"].isin(sorted(ids))])

    def stored_results(self, project_id: str) -> list[VerificationResult]:
        from zhizao.verify import stored_results

        self.project(project_id)
        return self._stage("stored_results", lambda p: stored_results(self.ws, p), project_id, deps=VERIFICATIONS)

    def enterprise_visible(self, enterprise_id: str) -> bool:
        a = self.access
        if a.enterprises is None:
            return True
        if enterprise_id not in a.enterprises:
            return False
        if a.sites is not None:
            return enterprise_id in (self.allowed() or {}).get("enterprise", frozenset())
        return True

    def enterprises(self) -> pd.DataFrame:
        from zhizao.portfolio.registry import enterprises

        df = self._stage("enterprises", lambda: enterprises(self.ws), deps=REGISTER)
        if self.access.enterprises is not None:
            df = df[df["enterprise_id"].isin(list(self.access.enterprises))]
        return _records(df)

    def designations(self) -> pd.DataFrame:
        from zhizao.portfolio.registry import designations

        df = self._stage("designations", lambda: designations(self.ws), deps=REGISTER)
        a = self.access
        if a.enterprises is not None:
            df = df[df["enterprise_id"].isin(list(a.enterprises))]
        if a.sites is not None:
            df = df[np.array([isinstance(s, str) and self.scope_visible(s) for s in df["scope"]], dtype=bool)]
        if a.projects is not None:
            df = df[np.array([(not isinstance(p, str)) or p in a.projects for p in df["project_id"]], dtype=bool)]
        return _records(df)

    def programme_statistics(self, park=None, district=None, start=None, end=None, confidence=0.9, n_boot=2000,
                             seed=0) -> dict:
        from zhizao.portfolio.stats import programme_statistics

        self.require("programme", PROGRAMME_ONLY)
        start, end = parse_time(start, "start"), parse_time(end, "end")
        return self._stage("programme", lambda *a: programme_statistics(self.ws, *a), park, district, start,
                           end, confidence, n_boot, seed)

    def bulletin(self, lang="zh", park=None, district=None, start=None, end=None, n_boot=2000,
                 pdf: bool = False) -> dict:
        """The bulletin's HTML and Markdown ({"html": str, "md": str}); with ``pdf``, its PDF ({"pdf": bytes})."""
        import tempfile

        from zhizao.portfolio.bulletin import render_bulletin

        self.require("programme", PROGRAMME_ONLY)
        start, end = parse_time(start, "start"), parse_time(end, "end")

        def render(lang, park, district, start, end, n_boot, pdf):
            stats = self.programme_statistics(park, district, start, end, 0.9, n_boot, 0)
            with tempfile.TemporaryDirectory(prefix="zhizao-bulletin-") as d:
                if pdf:
                    paths = render_bulletin(self.ws, d, lang=lang, stats=stats, formats=("pdf",))
                    return {"pdf": paths["pdf"].read_bytes()}
                paths = render_bulletin(self.ws, d, lang=lang, stats=stats)
                return {"html": paths["html"].read_text(encoding="utf-8"),
                        "md": paths["md"].read_text(encoding="utf-8")}
        return self._stage("bulletin", render, lang, park, district, start, end, n_boot, bool(pdf))

    def recognition(self, enterprise_id: str, designation: str, start=None, end=None, scope=None) -> pd.DataFrame:
        from zhizao.portfolio.recognition import recognition_checks

        if not self.enterprise_visible(enterprise_id) and not (
                self.access.sites is not None and enterprise_id in (self.access.enterprises or ())):
            raise NotFound(NO_ENTERPRISE, id=enterprise_id)
        if scope is None and self.access.sites is not None:
            scope = sorted(self.access.sites)[0]
        if scope is not None:
            self.require_scope(scope)
        start, end = parse_time(start, "start"), parse_time(end, "end")
        return self._stage("recognition", lambda *a: recognition_checks(self.ws, a[0], a[1], (a[2], a[3]), a[4]),
                           enterprise_id, designation, start, end, scope, deps=DATA_REGISTER)

    # -- verification
    def verify(self, indicator: str, scope: str, baseline, reporting, **kw):
        self.require_scope(scope)
        for name, w in (("baseline", baseline), ("reporting", reporting)):
            if not isinstance(w, (list, tuple)) or len(w) != 2:
                raise BadRequest(WINDOW_PAIR, name=name)
            parse_time(w[0], f"{name} start"), parse_time(w[1], f"{name} end")
            if w[0] is None or w[1] is None:
                raise BadRequest(WINDOW_ENDS, name=name)
        key = tuple(sorted(kw.items()))
        return self._stage("verify", lambda *a: self.ws.verify(a[0], a[1], a[2], a[3], **dict(a[4])),
                           indicator, scope, tuple(baseline), tuple(reporting), key, deps=DATA_REGISTER)

    def require_store_verification(self, project_id: str) -> dict:
        self.require("store_verifications", STORE_VERIFICATIONS_ONLY)
        return self.project(project_id)

    # -- accounts: users, API keys, sessions
    def require_admin(self) -> None:
        """403 unless the principal is an administrator."""
        if not self.access.admin:
            raise Forbidden(ADMIN_ONLY)

    def require_user(self, username: str, change: bool = False, password_only: bool = False) -> None:
        """Administrators may read and change any user; a user may read their own account and change only its
        password (403 otherwise)."""
        if self.access.admin:
            return
        p = self.access.principal
        own = p.kind == "user" and p.name == username
        if not change:
            if not own:
                raise Forbidden(ADMIN_OR_SELF)
        elif not (own and password_only):
            raise Forbidden(ADMIN_OR_OWN_PASSWORD)

    def changes_own_password(self, username: str) -> bool:
        """Whether a password change of ``username`` is the principal's own (then the old password is needed:
        a stolen session must not take over the account)."""
        p = self.access.principal
        return p.kind == "user" and p.name == username

    @property
    def manages_users(self) -> bool:
        """Administrators manage users."""
        return self.access.admin

    @property
    def manages_keys(self) -> bool:
        """Administrators (every key) and enterprise users (their enterprise's keys) manage API keys."""
        p = self.access.principal
        return self.access.admin or (p.kind == "user" and p.role == "enterprise")

    def require_key_manager(self) -> None:
        if not self.manages_keys:
            raise Forbidden(KEY_MANAGERS_ONLY)

    def key_visible(self, key) -> bool:
        """Whether the principal may see and revoke API key ``key`` (an :class:`~zhizao.server.accounts.ApiKey`):
        administrators every key, an enterprise user the keys of their enterprise and of its sites."""
        if self.access.admin:
            return True
        p = self.access.principal
        return p.kind == "user" and p.role == "enterprise" and (
            key.enterprise_id == p.enterprise_id or (key.site is not None and self.scope_visible(key.site)))

    def keys(self, all_keys) -> list:
        """The keys of ``all_keys`` the principal may see (403 for principals that manage no keys)."""
        self.require_key_manager()
        return [k for k in all_keys if self.key_visible(k)]

    def require_key(self, key, key_id: str):
        """``key`` if the principal may revoke it, else 404 (no difference between foreign and missing)."""
        if key is None or not self.key_visible(key):
            raise NotFound(NO_KEY, id=key_id)
        return key

    def key_scope(self, enterprise_id: str | None, site: str | None) -> tuple[str | None, str | None]:
        """The (enterprise, site) of a new API key the principal asks for: administrators any; an enterprise
        user only their own enterprise and its sites (404 for others)."""
        self.require_key_manager()
        if self.access.admin:
            return enterprise_id or None, site or None
        p = self.access.principal
        if enterprise_id and enterprise_id != p.enterprise_id:
            raise NotFound(NO_ENTERPRISE, id=enterprise_id)
        if site and not self.scope_visible(site):
            raise NotFound(NO_SITE, id=site)
        return p.enterprise_id, site or None

    def session_owner(self) -> str | None:
        """Whose sessions the principal may list: None for an administrator (everyone's), else their own name;
        403 for an API key."""
        p = self.access.principal
        if self.access.admin:
            return None
        if p.kind != "user":
            raise Forbidden(KEY_NO_SESSIONS)
        return p.name

    def require_session(self, session: dict | None, session_id: str) -> dict:
        """``session`` if the principal may revoke it (administrators: any; users: their own), else 404."""
        p = self.access.principal
        if session is None or not (self.access.admin or (p.kind == "user" and session["username"] == p.name)):
            raise NotFound(NO_SESSION, id=session_id)
        return session

    def require_write(self, table: str) -> None:
        """403 unless the principal may load ``table``."""
        a = self.access
        if table not in a.write_tables:
            if a.write_tables:
                raise Forbidden(MAY_NOT_LOAD_BUT, table=table, tables=sorted(a.write_tables))
            raise Forbidden(MAY_NOT_LOAD, table=table)

    # -- the programme: register, audit log, applications, evidence, maturity, confirmations (issue 12)
    #
    # Who may do what (the workflow's steps name their role, zhizao.portfolio.workflow.STEPS):
    # - the programme office (administrators, analysts): the whole register (read, create, update, withdraw),
    #   the audit log, every application and its office steps (assign, close the review, publicity, decide,
    #   accept), maturity imports;
    # - an enterprise user: its enterprise's register records (read), its applications (create, edit a draft,
    #   submit, attach evidence, request acceptance), its maturity questionnaire; an API key reads its
    #   enterprise's register records only (keys load data; applications and evidence are people's business);
    # - a district reviewer: the register records and applications of the enterprises of its district (not
    #   drafts), and the district pre-review of those;
    # - an assessor: the applications assigned to it: the declaration of a conflict of interest, the score
    #   sheet, the confirmations of declared criteria at acceptance;
    # - evidence files: the enterprise, its reviewers (its district's reviewer, the assessors of its
    #   applications) and administrators -- not analysts.
    @property
    def office(self) -> bool:
        """Whether the principal is the programme office (administrators and analysts)."""
        return self.access.principal.role in PROGRAMME_ROLES

    @property
    def actor(self) -> str:
        return self.access.principal.actor

    def require_office(self) -> None:
        if not self.office:
            raise Forbidden(OFFICE_ONLY)

    def _register_frame(self, table: str) -> pd.DataFrame:
        from zhizao.portfolio.register import ensure_table
        from zhizao.schema import TABLES as _T

        ensure_table(table)

        def load():
            cols = ", ".join(f'"{c}"' for c in _T[table].names)
            if not _has_table(self.read.con, table):
                return pd.DataFrame(columns=_T[table].names)
            df = self.read.con.execute(f'SELECT {cols} FROM "{table}" ORDER BY 1').df()
            for c in _T[table].columns:
                if c.type == "date":
                    df[c.name] = pd.Series([None if pd.isna(v) else pd.Timestamp(v).date() for v in df[c.name]],
                                           index=df.index, dtype=object)
            return df
        return self.cached(("register_table", table), load, REGISTER)

    def register_rows(self, table: str) -> pd.DataFrame:
        """The records of a register table the principal may see (programmes and targets: everyone)."""
        df = self._register_frame(table)
        a = self.access
        if a.enterprises is None or table in ("programmes", "programme_targets"):
            return _records(df)
        keep = df["enterprise_id"].isin(list(a.enterprises))
        if table in ("projects", "designations") and a.projects is not None:
            keep &= df["project_id"].isna() | df["project_id"].isin(list(a.projects)) if table == "designations" \
                else df["project_id"].isin(list(a.projects))
        return _records(df[keep.to_numpy(dtype=bool)])

    def register_record(self, table: str, key) -> dict:
        """One record the principal may see (404 otherwise, whether missing or foreign)."""
        from zhizao.portfolio.register import key_of, parse_key

        k = parse_key(table, key)
        df = self.register_rows(table)
        for rec in df.to_dict("records"):
            if key_of(table, rec) == k:
                return {c: (None if not isinstance(v, (str, list, dict)) and pd.isna(v) else v)
                        for c, v in rec.items()}
        raise NotFound(NO_RECORD_VISIBLE, table=table, key=str(key))

    def register_history(self, table: str, key) -> pd.DataFrame:
        from zhizao.portfolio.register import history

        self.register_record(table, key) if not self.office else None
        return history(self.read.con, table, key)

    def register_as_of(self, table: str, key, date) -> dict | None:
        from zhizao.portfolio.register import record_as_of

        if not self.office:
            self.register_record(table, key)
        return record_as_of(self.read.con, table, key, date)

    def require_register_write(self, table: str) -> None:
        """Only the programme office changes the register."""
        from zhizao.portfolio.register import ensure_table

        ensure_table(table)
        if not self.office:
            raise Forbidden(REGISTER_OFFICE_ONLY)

    def audit_entries(self, **filters) -> tuple[pd.DataFrame, int]:
        """The audit log (office only): ``(entries, total)`` with the filters of
        :func:`zhizao.portfolio.audit.entries`."""
        from zhizao.portfolio import audit

        self.require_office()
        con = self.read.con
        count_kw = {k: v for k, v in filters.items() if k not in ("limit", "offset", "descending")}
        return audit.entries(con, **filters), audit.count(con, **count_kw)

    def audit_check(self):
        from zhizao.portfolio import audit

        self.require_office()
        return audit.check_chain(self.read.con)

    # applications
    def _app_visible(self, app: dict) -> bool:
        a = self.access
        p = a.principal
        if self.office:
            return True
        if p.kind != "user":  # API keys load data; applications are people's business
            return False
        if p.role == "enterprise":
            return a.enterprises is not None and app["enterprise_id"] in a.enterprises
        if p.role == "district":
            return app["state"] != "draft" and app["enterprise_id"] in (a.enterprises or ())
        if p.role == "assessor":
            from zhizao.portfolio.workflow import is_assessor

            return is_assessor(self.read.con, app["application_id"], p.name)
        return False

    def applications(self) -> pd.DataFrame:
        """The applications the principal may see."""
        from zhizao.portfolio.workflow import applications

        df = self.cached(("applications",), lambda: applications(self.read.con), REGISTER)
        if self.office or df.empty:
            return _records(df)
        keep = [self._app_visible(r) for r in df.to_dict("records")]
        return _records(df.loc[np.array(keep, dtype=bool)])

    def application(self, app_id: str) -> dict:
        """One application the principal may see (404 otherwise)."""
        from zhizao.portfolio.workflow import get

        try:
            app = get(self.read.con, app_id)
        except NotFound:
            raise NotFound(NO_APPLICATION, id=app_id) from None
        if not self._app_visible(app):
            raise NotFound(NO_APPLICATION, id=app_id)
        return app

    def queue(self) -> pd.DataFrame:
        """What waits for the principal: its role's states of the applications it may see."""
        from zhizao.portfolio.workflow import QUEUES

        p = self.access.principal
        role = "office" if self.office else p.role
        df = self.applications()
        df = df[df["state"].isin(QUEUES.get(role, ()))]
        if p.role == "assessor":
            from zhizao.portfolio.workflow import assessors

            def mine(app_id):
                s = assessors(self.read.con, app_id)
                s = s[(s["assessor"] == p.name) & s["active"].astype(bool)]
                return bool(len(s)) and not any(x is True for x in s["conflict"])
            df = df.loc[np.array([mine(x) for x in df["application_id"]], dtype=bool)]
        return _records(df.sort_values(["deadline", "application_id"], na_position="last"))

    def step_role(self, action: str) -> str:
        from zhizao.portfolio.workflow import STEPS

        return STEPS[action].role

    def may_take(self, app: dict, action: str) -> bool:
        """Whether the principal may take ``action`` on ``app`` (role and tenant; the state is the workflow's)."""
        from zhizao.portfolio.workflow import STEPS, is_assessor

        a = self.access
        p = a.principal
        role = STEPS[action].role
        if role == "office":
            return self.office
        if p.kind != "user":
            return False
        if role == "enterprise":
            return p.role == "enterprise" and app["enterprise_id"] == p.enterprise_id
        if role == "district":
            return p.role == "district" and app["enterprise_id"] in (a.enterprises or ())
        if role == "assessor":
            return p.role == "assessor" and is_assessor(self.read.con, app["application_id"], p.name)
        return False

    def require_step(self, app_id: str, action: str) -> dict:
        """The application if the principal may take ``action`` on it (404 when it may not see it, 403 when its
        role may not take the step)."""
        app = self.application(app_id)
        if not self.may_take(app, action):
            raise Forbidden(STEP_NOT_YOURS, action=action, role=self.step_role(action))
        return app

    def require_apply(self, enterprise_id: str | None) -> str:
        """The enterprise a new application is for: an enterprise user's own (403 for other roles and keys)."""
        p = self.access.principal
        if p.kind == "user" and p.role == "enterprise" and p.enterprise_id:  # accounts.add_user requires one
            if enterprise_id and enterprise_id != p.enterprise_id:
                raise NotFound(NO_ENTERPRISE, id=enterprise_id)
            return p.enterprise_id
        raise Forbidden(APPLY_ENTERPRISES_ONLY)

    # evidence files
    def evidence_visible(self, rec: dict) -> bool:
        a = self.access
        p = a.principal
        if a.admin:
            return True
        if p.kind != "user":
            return False
        ent = rec["enterprise_id"]
        if p.role == "enterprise":
            return a.enterprises is not None and ent in a.enterprises and a.sites is None
        if p.role == "district":
            return ent in (a.enterprises or ())
        if p.role == "assessor":
            app_id = rec.get("application_id")
            if app_id:
                from zhizao.portfolio.workflow import is_assessor

                return is_assessor(self.read.con, app_id, p.name)
            return ent in (a.enterprises or ())
        return False

    def evidence(self, file_id: str, with_content: bool = False) -> dict:
        """An evidence file the principal may read (404 otherwise)."""
        from zhizao.portfolio import evidence

        try:
            rec = evidence.get(self.read.con, file_id, with_content)
        except NotFound:
            raise NotFound(NO_EVIDENCE, id=file_id) from None
        if not self.evidence_visible(rec):
            raise NotFound(NO_EVIDENCE, id=file_id)
        return rec

    def evidence_list(self, app_id: str) -> pd.DataFrame:
        from zhizao.portfolio import evidence

        app = self.application(app_id)
        df = evidence.files(self.read.con, application_id=app_id)
        if df.empty:
            return df
        return _records(df.loc[np.array([self.evidence_visible({**r, "enterprise_id": app["enterprise_id"]})
                                         for r in df.to_dict("records")], dtype=bool)])

    # capability maturity
    def require_enterprise_visible(self, enterprise_id: str) -> None:
        if self.access.enterprises is not None and enterprise_id not in self.access.enterprises:
            raise NotFound(NO_ENTERPRISE, id=enterprise_id)
        if not self.read.con.execute("SELECT count(*) FROM enterprises WHERE enterprise_id = ?",
                                     [enterprise_id]).fetchone()[0]:
            raise NotFound(NO_ENTERPRISE, id=enterprise_id)

    def require_maturity_import(self) -> None:
        self.require_office()

    def require_questionnaire(self, enterprise_id: str) -> None:
        """An enterprise user answers its enterprise's questionnaire."""
        p = self.access.principal
        self.require_enterprise_visible(enterprise_id)
        if not (p.kind == "user" and p.role == "enterprise" and p.enterprise_id == enterprise_id):
            raise Forbidden(QUESTIONNAIRE_ENTERPRISE_ONLY)

    def require_confirm(self, enterprise_id: str, application_id: str | None) -> None:
        """Confirmations of declared criteria: an assessor of an application of the enterprise (the application
        named, when one is), or an administrator."""
        from zhizao.portfolio.workflow import is_assessor

        a = self.access
        p = a.principal
        if a.admin:
            return
        if p.role == "assessor" and p.kind == "user":
            if application_id:
                app = self.application(application_id)
                if app["enterprise_id"] == enterprise_id and is_assessor(self.read.con, application_id, p.name):
                    return
            elif enterprise_id in (a.enterprises or ()):
                return
        raise Forbidden(CONFIRM_ASSESSORS_ONLY)

    # -- data: uploads and quarantine
    def _upload_filter_sql(self) -> tuple[str, list]:
        a = self.access
        if a.admin:
            return "TRUE", []
        cond = ["u.principal = ?"]
        params: list = [a.principal.kind + ":" + a.principal.name]
        if a.enterprises is not None and a.raw:
            t = "list_contains(?, u.enterprise_id)"
            params.append(sorted(a.enterprises))
            if a.sites is not None:
                t += " AND list_contains(?, u.site)"
                params.append(sorted(a.sites))
            cond.append(f"({t})")
        return "(" + " OR ".join(cond) + ")", params

    def uploads(self, limit: int = 200) -> pd.DataFrame:
        where, params = self._upload_filter_sql()
        return self.read.con.execute(
            f"""SELECT upload_id, file_name, "table", principal, enterprise_id, site, mapping, bytes, loaded,
                       quarantined, skipped, already_loaded, uploaded_at, source
                FROM server_uploads u WHERE {where} ORDER BY uploaded_at DESC, upload_id LIMIT ?""",
            params + [int(limit)]).df()

    def upload(self, upload_id: str) -> dict:
        where, params = self._upload_filter_sql()
        df = self.read.con.execute(
            f"""SELECT upload_id, file_name, "table", principal, enterprise_id, site, mapping, bytes, loaded,
                       quarantined, skipped, already_loaded, uploaded_at, source
                FROM server_uploads u WHERE {where} AND upload_id = ?""", params + [upload_id]).df()
        if df.empty:
            raise NotFound(NO_UPLOAD, id=upload_id)
        return df.iloc[0].to_dict()

    def quarantine(self, upload_id: str | None = None, limit: int = 500, offset: int = 0) -> pd.DataFrame:
        """Quarantined records with their reasons: all of them for the admin, else those of visible uploads."""
        if not self.access.raw and not self.access.admin and upload_id is None:
            raise Forbidden(QUARANTINE_COUNTS_ONLY)
        where, params = self._upload_filter_sql()
        if self.access.admin and upload_id is None:
            sql = """SELECT NULL AS upload_id, q."table", q.source, q.record, q.line, q.rule, q.detail,
                            CAST(q.raw AS VARCHAR) AS raw, q.loaded_at, q.code, CAST(q.params AS VARCHAR) AS params
                     FROM quarantine q"""
            p2: list = []
        else:
            sql = f"""SELECT u.upload_id, q."table", u.file_name AS source, q.record, q.line, q.rule, q.detail,
                             CAST(q.raw AS VARCHAR) AS raw, q.loaded_at, q.code,
                             CAST(q.params AS VARCHAR) AS params
                      FROM quarantine q JOIN server_uploads u ON u.source = q.source WHERE {where}"""
            p2 = list(params)
            if upload_id is not None:
                sql += " AND u.upload_id = ?"
                p2.append(upload_id)
        sql += ' ORDER BY loaded_at DESC, "table", source, record LIMIT ? OFFSET ?'
        return self.read.con.execute(sql, p2 + [int(limit), int(offset)]).df()

    def quarantine_summary(self) -> pd.DataFrame:
        """Counts of quarantined records per table and rule (aggregates: every role)."""
        if self.access.unrestricted:  # an analyst sees counts, not other tenants' values
            example = ("min(detail) AS example, arg_min(code, detail) AS example_code, "
                       "arg_min(CAST(params AS VARCHAR), detail) AS example_params" if self.access.raw else
                       "CAST(NULL AS VARCHAR) AS example, CAST(NULL AS VARCHAR) AS example_code, "
                       "CAST(NULL AS VARCHAR) AS example_params")
            return self.read.con.execute(
                f"""SELECT "table", rule, count(*) AS records, {example} FROM quarantine
                   GROUP BY ALL ORDER BY "table", rule""").df()
        where, params = self._upload_filter_sql()
        return self.read.con.execute(
            f"""SELECT q."table", q.rule, count(*) AS records, min(q.detail) AS example,
                       arg_min(q.code, q.detail) AS example_code,
                       arg_min(CAST(q.params AS VARCHAR), q.detail) AS example_params
                FROM quarantine q JOIN server_uploads u ON u.source = q.source WHERE {where}
                GROUP BY ALL ORDER BY 1, 2""", params).df()

    def check_upload(self, table: str, path: Path, mapping: Mapping | None) -> None:
        """Refuse (403) an upload to a table the principal may not load, or whose records name equipment,
        scopes or enterprises of another tenant. Ids that exist nowhere are let through: the ingest stage
        quarantines them (unknown_equipment)."""
        a = self.access
        if table not in TABLES:
            raise NotFound(UNKNOWN_TABLE, table=table, tables=list(TABLES))
        self.require_write(table)
        if a.unrestricted:
            return
        m = mapping or default_mapping(table)
        values = _tenant_values(self.read.con, table, path, m)
        al = self.allowed() or {}
        own_any = self.visible_any() or frozenset()
        foreign = self.foreign_ids()
        own_eq = al.get("equipment", frozenset())
        ents = a.enterprises or frozenset()
        problems = []
        if table == "equipment":
            for v in values.get("enterprise", ()):
                if v is None:
                    problems.append(P_NEEDS_ENTERPRISE(enterprises=sorted(ents)))
                elif v not in ents:
                    problems.append(P_NOT_YOUR_ENTERPRISE(id=v))
            if a.sites is not None:
                for v in values.get("site", ()):
                    if v not in a.sites:
                        problems.append(P_NOT_KEY_SITE(id=v, sites=sorted(a.sites)))
            for col in ("equipment_id", "work_center", "area", "site"):
                for v in values.get(col, ()):
                    if v is not None and v in foreign:
                        problems.append(P_FOREIGN_ID(column=col, id=v))
        else:
            for v in values.get("equipment_id", ()):
                if v is None:
                    if table == "products":
                        problems.append(P_PRODUCT_NO_EQUIPMENT())
                elif v not in own_eq and v in foreign:
                    problems.append(P_FOREIGN_EQUIPMENT(id=v))
            for v in values.get("scope", ()):
                if v is not None and v not in own_any and (v in foreign or v in _all_ids(self)):
                    problems.append(P_FOREIGN_SCOPE(id=v))
            for v in values.get("enterprise_id", ()):
                if v not in ents:
                    problems.append(P_NOT_YOUR_ENTERPRISE_ID(id=v))
        if problems:
            uniq = list(dict.fromkeys(problems))
            if len(uniq) > 5:
                raise Forbidden(UPLOAD_REFUSED_MORE, problems=uniq[:5], more=len(uniq) - 5)
            raise Forbidden(UPLOAD_REFUSED, problems=uniq)


def _all_ids(view: TenantView) -> frozenset:
    def compute():
        eq = view.equipment_table
        return frozenset(v for c in HIERARCHY for v in eq[c].dropna().tolist())
    return view.cached(("all_ids",), compute, EQUIPMENT)


#: Columns of each table that name a tenant (equipment, scope or enterprise).
TENANT_COLUMNS = {
    "equipment": ("equipment_id", "work_center", "area", "site", "enterprise"),
    "states": ("equipment_id",), "production": ("equipment_id",), "products": ("equipment_id",),
    "calendar": ("scope",), "labour": ("scope",), "variables": ("scope",), "costs": ("scope",),
    "energy": ("equipment_id", "scope"), "quality": ("equipment_id", "scope"),
    "development_cycles": ("enterprise_id",),
    "enterprises": ("enterprise_id",), "projects": ("enterprise_id", "scope"),
    "designations": ("enterprise_id", "scope"),
}


def _tenant_values(con, table: str, path: Path, mapping: Mapping) -> dict[str, set]:
    """Distinct values (trimmed text, None for empty) of the tenant columns of a file, read as the ingest
    stage reads it (same mapping, same aliases)."""
    try:
        src = read_sql(path, mapping)
        source_columns = list(con.sql(src).columns)
    except duckdb.Error as e:
        raise IngestError(CANNOT_READ_FILE, error=str(e).splitlines()[0]) from None
    out: dict[str, set] = {}
    for col in TENANT_COLUMNS.get(table, ()):
        expr = mapping.expression(col, source_columns)
        if expr is None and col in ALIASES.get(table, {}) and col not in mapping.columns:
            alias_col, alias_sql = ALIASES[table][col]
            if alias_col in source_columns:
                expr = alias_sql
        if expr is None:
            out[col] = {None}
            continue
        try:
            rows = con.execute(f"SELECT DISTINCT nullif(trim(CAST({expr} AS VARCHAR)), '') FROM ({src})").fetchall()
        except duckdb.Error as err:
            raise IngestError(CANNOT_READ_COLUMN, column=col, error=str(err).splitlines()[0]) from None
        out[col] = {r[0] for r in rows}
    return out
