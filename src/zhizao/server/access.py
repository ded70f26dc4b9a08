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

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from zhizao.ingest.load import read_sql
from zhizao.ingest.mapping import ALIASES, Mapping, default_mapping
from zhizao.kpi.kpis import KPI_NAMES
from zhizao.schema import LEVEL_ID_COLUMN, LEVELS, PERIODS, TABLES
from zhizao.server.errors import BadRequest, Forbidden, NotFound

HIERARCHY = ("equipment_id", "work_center", "area", "site", "enterprise")
REGISTRY_TABLES = frozenset({"enterprises", "projects", "designations"})
SHOPFLOOR_TABLES = frozenset(TABLES) - REGISTRY_TABLES
#: Levels an analyst may query (aggregates of several machines' records).
ANALYST_LEVELS = ("work_center", "area", "site", "enterprise")
#: Longest query range [days] (all periods) and for hourly buckets.
MAX_RANGE_DAYS = 3700
MAX_HOURLY_DAYS = 400


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

    @property
    def label(self) -> str:
        return self.display_name or self.name


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


def derive_access(principal: Principal, con) -> Access:
    """The access of ``principal`` (``con``: a cursor of the store, to look up sites and projects)."""
    p = principal
    all_levels = tuple(LEVELS)
    if p.role == "admin":
        return Access(p, None, None, None, True, all_levels, frozenset(TABLES), True, True, True)
    if p.role == "analyst":
        return Access(p, None, None, None, False, ANALYST_LEVELS, REGISTRY_TABLES, True, True, False)
    if p.role == "assessor":
        ids = sorted(p.projects)
        ents = frozenset(e for (e,) in con.execute(
            "SELECT DISTINCT enterprise_id FROM projects WHERE list_contains(?, project_id)", [ids]).fetchall()
            if e is not None)
        return Access(p, ents, None, frozenset(ids), True, all_levels, frozenset(), False, True, False)
    if p.role == "enterprise":
        if p.site:
            if p.enterprise_id:
                ents = frozenset({p.enterprise_id})
            else:
                ents = frozenset(e for (e,) in con.execute(
                    "SELECT DISTINCT enterprise FROM equipment WHERE site = ? AND enterprise IS NOT NULL",
                    [p.site]).fetchall())
            return Access(p, ents, frozenset({p.site}), None, True, all_levels,
                          SHOPFLOOR_TABLES - {"development_cycles"}, False, False, False)
        return Access(p, frozenset({p.enterprise_id}), None, None, True, all_levels, SHOPFLOOR_TABLES, False,
                      False, False)
    raise Forbidden(f"unknown role {p.role!r}")


def _records(df: pd.DataFrame) -> pd.DataFrame:
    return df.reset_index(drop=True)


def parse_time(value, name: str):
    """A time bound as given (str), or None; 400 when pandas cannot read it."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        raise BadRequest(f"{name} = {value!r} is not an ISO 8601 date or time stamp") from None
    if ts is pd.NaT or pd.isna(ts):
        raise BadRequest(f"{name} = {value!r} is not an ISO 8601 date or time stamp")
    return str(value).strip()


def check_range(start, end, period: str = "day") -> tuple:
    """Validated (start, end) of a KPI query: both or neither, end after start, not longer than
    :data:`MAX_RANGE_DAYS` (:data:`MAX_HOURLY_DAYS` for hourly buckets)."""
    if period not in PERIODS:
        raise BadRequest(f"unknown period {period!r}; one of {', '.join(PERIODS)}")
    start, end = parse_time(start, "start"), parse_time(end, "end")
    if (start is None) != (end is None):
        raise BadRequest("give both start and end, or neither (the whole data range)")
    if start is not None:
        a, b = pd.Timestamp(start), pd.Timestamp(end)
        a = a.tz_localize("UTC") if a.tzinfo is None else a
        b = b.tz_localize("UTC") if b.tzinfo is None else b
        if b <= a:
            raise BadRequest(f"end {end} is not after start {start}")
        days = (b - a).total_seconds() / 86400
        limit = MAX_HOURLY_DAYS if period == "hour" else MAX_RANGE_DAYS
        if days > limit:
            raise BadRequest(f"the range is {days:.0f} days; at most {limit} days for period {period!r}")
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

    @property
    def ws(self):
        return self.read.ws

    # -- building blocks
    def cached(self, key: tuple, compute):
        return self.read.cached(key, compute)

    @property
    def equipment_table(self) -> pd.DataFrame:
        def load():
            cols = ", ".join(f'"{c}"' for c in TABLES["equipment"].names)
            return self.read.con.execute(f"SELECT {cols} FROM equipment ORDER BY equipment_id").df()
        return self.cached(("equipment",), load)

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
        return self.cached(("allowed", self.access.tenant), compute)

    def foreign_ids(self) -> frozenset:
        """Every hierarchy id of equipment this principal may not see."""
        if self.access.unrestricted:
            return frozenset()

        def compute():
            eq = self.equipment_table
            other = eq[~self._mask(eq)]
            return frozenset(v for c in HIERARCHY for v in other[c].dropna().tolist())
        return self.cached(("foreign", self.access.tenant), compute)

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
        if not isinstance(scope, str) or not scope or not self.scope_visible(scope):
            raise NotFound(f"no scope {scope!r} (equipment, work centre, area, site or enterprise id) that you "
                           f"may see")
        return scope

    def require_level(self, level: str) -> str:
        if level not in LEVELS:
            raise BadRequest(f"unknown level {level!r}; one of {', '.join(LEVELS)}")
        if level not in self.access.levels:
            raise Forbidden(f"your role sees shop-floor data only as aggregates: level {level!r} is not allowed "
                            f"(allowed: {', '.join(self.access.levels)})")
        return level

    def require(self, flag: str, what: str) -> None:
        if not getattr(self.access, flag):
            raise Forbidden(f"your role may not {what}")

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
        return self.cached(("within", level, tuple(sorted(within.items()))), compute)

    def filter(self, df: pd.DataFrame, level: str, ids=None, within: dict | None = None) -> pd.DataFrame:
        """Rows of ``df`` (with the level's id column) that the principal may see, optionally only ``ids`` and
        only entities inside ``within``."""
        col = LEVEL_ID_COLUMN[level]
        keep = pd.Series(True, index=df.index)
        al = self.allowed()
        if al is not None:
            keep &= df[col].isin(list(al[level])).fillna(False).astype(bool)
        if ids:
            keep &= df[col].isin(list(ids)).fillna(False).astype(bool)
        w = self.within_ids(level, within)
        if w is not None:
            keep &= df[col].isin(list(w)).fillna(False).astype(bool)
        return _records(df[keep.to_numpy(dtype=bool)])

    def _stage(self, name: str, fn, *args):
        """A stage call, cached per store version; ValueError and KeyError of the stage become 400."""
        try:
            return self.cached((name, *args), lambda: fn(*args))
        except pd.errors.MergeError:
            raise  # a fault of the stage, not of the request
        except (ValueError, KeyError) as e:
            raise BadRequest(str(e).strip("'\"")) from None

    # -- KPI stage
    def kpi(self, level="equipment", period="day", start=None, end=None, kpis=None, ids=None, within=None):
        """:meth:`zhizao.Workspace.kpi` rows the principal may see."""
        self.require_level(level)
        start, end = check_range(start, end, period)
        if kpis:
            bad = [k for k in kpis if k not in KPI_NAMES]
            if bad:
                raise BadRequest(f"unknown KPI {', '.join(map(repr, bad))}; known: {', '.join(KPI_NAMES)}")
        df = self._stage("kpi", lambda *a: self.ws.kpi(*a), level, period, start, end)
        df = self.filter(df, level, ids, within)
        if kpis:
            df = df.drop(columns=[k for k in KPI_NAMES if k not in kpis and k in df.columns])
        return df

    def elements(self, level="equipment", period="day", start=None, end=None, ids=None, within=None):
        self.require_level(level)
        start, end = check_range(start, end, period)
        df = self._stage("elements", lambda *a: self.ws.elements(*a), level, period, start, end)
        return self.filter(df, level, ids, within)

    def losses(self, level="site", period="all", start=None, end=None, ids=None, within=None):
        self.require_level(level)
        start, end = check_range(start, end, period)
        df = self._stage("losses", lambda *a: self.ws.losses(*a), level, period, start, end)
        return self.filter(df, level, ids, within)

    def stop_reasons(self, level="site", period="all", start=None, end=None, ids=None, within=None):
        self.require_level(level)
        start, end = check_range(start, end, period)
        df = self._stage("stop_reasons", lambda *a: self.ws.stop_reasons(*a), level, period, start, end)
        return self.filter(df, level, ids, within)

    def data_quality(self, level="equipment", period="day", start=None, end=None, ids=None, within=None):
        self.require_level(level)
        start, end = check_range(start, end, period)
        df = self._stage("data_quality", lambda *a: self.ws.data_quality(*a), level, period, start, end)
        return self.filter(df, level, ids, within)

    def capability(self, level="equipment", period="all", start=None, end=None, ids=None, within=None):
        self.require_level(level)
        start, end = check_range(start, end, period)
        df = self._stage("capability", lambda *a: self.ws.capability(*a), level, period, start, end)
        return self.filter(df, level, ids, within)

    def catalogue(self) -> pd.DataFrame:
        """The KPI catalogue, with availability judged on the principal's own data only."""
        from zhizao.kpi.kpis import catalogue

        res = self._stage("elements_all", lambda: self.ws.elements_raw("all"))
        el = res.elements
        al = self.allowed()
        if al is not None:
            keep = pd.Series(False, index=el.index)
            for level in LEVELS:
                keep |= (el["level"] == level) & el["entity_id"].isin(list(al[level]))
            el = el[keep.to_numpy(dtype=bool)]
        vis = None if al is None else sorted(self.visible_any())
        has = self.read.con.execute(
            """SELECT count(*) FROM quality WHERE value IS NOT NULL AND usl IS NOT NULL
               AND (? IS NULL OR list_contains(?, equipment_id) OR list_contains(?, scope))""",
            [None if vis is None else 1, vis, vis]).fetchone()[0] > 0
        return catalogue(el.reset_index(drop=True), has)

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
            from zhizao.portfolio.filters import UNKNOWN, split

            own = sorted({p for p in self.enterprises()["park"] if isinstance(p, str)})
            bad = [p for p in split(park) or () if p not in own]
            if bad:
                raise BadRequest(UNKNOWN(what="park", value=bad[0], known=own or ["(none)"]))
        df = self._stage("projects", lambda *a: projects(self.ws, *a), park, district, start, end)
        if len(df):
            df = df[[self.project_visible(r) for _i, r in df.iterrows()]]
        return _records(df)

    def project(self, project_id: str) -> dict:
        df = self.projects()
        hit = df[df["project_id"] == project_id]
        if hit.empty:
            raise NotFound(f"no project {project_id!r} that you may see")
        return hit.iloc[0].to_dict()

    def project_ids(self) -> list[str]:
        return self.projects()["project_id"].tolist()

    def latest_verifications(self, project_ids=None) -> pd.DataFrame:
        from zhizao.portfolio.registry import latest_verifications

        visible = set(self.project_ids())
        ids = visible if project_ids is None else visible & set(project_ids)
        df = self._stage("latest_verifications", lambda: latest_verifications(self.ws))
        return _records(df[df["project_id"].isin(sorted(ids))])

    def stored_results(self, project_id: str) -> list:
        from zhizao.verify import stored_results

        self.project(project_id)
        return self._stage("stored_results", lambda p: stored_results(self.ws, p), project_id)

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

        df = self._stage("enterprises", lambda: enterprises(self.ws))
        if self.access.enterprises is not None:
            df = df[df["enterprise_id"].isin(list(self.access.enterprises))]
        return _records(df)

    def designations(self) -> pd.DataFrame:
        from zhizao.portfolio.registry import designations

        df = self._stage("designations", lambda: designations(self.ws))
        a = self.access
        if a.enterprises is not None:
            df = df[df["enterprise_id"].isin(list(a.enterprises))]
        if a.sites is not None:
            df = df[[isinstance(s, str) and self.scope_visible(s) for s in df["scope"]]]
        if a.projects is not None:
            df = df[[(not isinstance(p, str)) or p in a.projects for p in df["project_id"]]]
        return _records(df)

    def programme_statistics(self, park=None, district=None, start=None, end=None, confidence=0.9, n_boot=2000,
                             seed=0) -> dict:
        from zhizao.portfolio.stats import programme_statistics

        self.require("programme", "see programme statistics (analysts and administrators only)")
        start, end = parse_time(start, "start"), parse_time(end, "end")
        return self._stage("programme", lambda *a: programme_statistics(self.ws, *a), park, district, start,
                           end, confidence, n_boot, seed)

    def bulletin(self, lang="zh", park=None, district=None, start=None, end=None, n_boot=2000) -> dict:
        """The bulletin's HTML and Markdown ({"html": str, "md": str})."""
        import tempfile

        from zhizao.portfolio.bulletin import render_bulletin

        self.require("programme", "see the programme bulletin (analysts and administrators only)")
        start, end = parse_time(start, "start"), parse_time(end, "end")

        def render(lang, park, district, start, end, n_boot):
            stats = self.programme_statistics(park, district, start, end, 0.9, n_boot, 0)
            with tempfile.TemporaryDirectory(prefix="zhizao-bulletin-") as d:
                paths = render_bulletin(self.ws, d, lang=lang, stats=stats)
                return {"html": paths["html"].read_text(encoding="utf-8"),
                        "md": paths["md"].read_text(encoding="utf-8")}
        return self._stage("bulletin", render, lang, park, district, start, end, n_boot)

    def recognition(self, enterprise_id: str, designation: str, start=None, end=None, scope=None) -> pd.DataFrame:
        from zhizao.portfolio.recognition import recognition_checks

        if not self.enterprise_visible(enterprise_id) and not (
                self.access.sites is not None and enterprise_id in (self.access.enterprises or ())):
            raise NotFound(f"no enterprise {enterprise_id!r} that you may see")
        if scope is None and self.access.sites is not None:
            scope = sorted(self.access.sites)[0]
        if scope is not None:
            self.require_scope(scope)
        start, end = parse_time(start, "start"), parse_time(end, "end")
        return self._stage("recognition", lambda *a: recognition_checks(self.ws, a[0], a[1], (a[2], a[3]), a[4]),
                           enterprise_id, designation, start, end, scope)

    # -- verification
    def verify(self, indicator: str, scope: str, baseline, reporting, **kw):
        self.require_scope(scope)
        for name, w in (("baseline", baseline), ("reporting", reporting)):
            if not isinstance(w, (list, tuple)) or len(w) != 2:
                raise BadRequest(f"{name} is a pair [start, end]")
            parse_time(w[0], f"{name} start"), parse_time(w[1], f"{name} end")
            if w[0] is None or w[1] is None:
                raise BadRequest(f"{name} needs a start and an end")
        key = tuple(sorted(kw.items()))
        return self._stage("verify", lambda *a: self.ws.verify(a[0], a[1], a[2], a[3], **dict(a[4])),
                           indicator, scope, tuple(baseline), tuple(reporting), key)

    def require_store_verification(self, project_id: str) -> dict:
        self.require("store_verifications", "store verification results (analysts, assessors of the project and "
                                            "administrators only)")
        return self.project(project_id)

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
            raise NotFound(f"no upload {upload_id!r} that you may see")
        return df.iloc[0].to_dict()

    def quarantine(self, upload_id: str | None = None, limit: int = 500, offset: int = 0) -> pd.DataFrame:
        """Quarantined records with their reasons: all of them for the admin, else those of visible uploads."""
        if not self.access.raw and not self.access.admin and upload_id is None:
            raise Forbidden("your role sees the quarantine only as counts per table and rule "
                            "(/api/v1/quarantine/summary)")
        where, params = self._upload_filter_sql()
        if self.access.admin and upload_id is None:
            sql = """SELECT NULL AS upload_id, q."table", q.source, q.record, q.line, q.rule, q.detail,
                            CAST(q.raw AS VARCHAR) AS raw, q.loaded_at FROM quarantine q"""
            p2: list = []
        else:
            sql = f"""SELECT u.upload_id, q."table", u.file_name AS source, q.record, q.line, q.rule, q.detail,
                             CAST(q.raw AS VARCHAR) AS raw, q.loaded_at
                      FROM quarantine q JOIN server_uploads u ON u.source = q.source WHERE {where}"""
            p2 = list(params)
            if upload_id is not None:
                sql += " AND u.upload_id = ?"
                p2.append(upload_id)
        sql += ' ORDER BY loaded_at DESC, "table", source, record LIMIT ? OFFSET ?'
        return self.read.con.execute(sql, p2 + [int(limit), int(offset)]).df()

    def quarantine_summary(self) -> pd.DataFrame:
        """Counts of quarantined records per table and rule (aggregates: every role)."""
        if self.access.unrestricted:
            return self.read.con.execute(
                """SELECT "table", rule, count(*) AS records, min(detail) AS example FROM quarantine
                   GROUP BY ALL ORDER BY "table", rule""").df()
        where, params = self._upload_filter_sql()
        return self.read.con.execute(
            f"""SELECT q."table", q.rule, count(*) AS records, min(q.detail) AS example
                FROM quarantine q JOIN server_uploads u ON u.source = q.source WHERE {where}
                GROUP BY ALL ORDER BY 1, 2""", params).df()

    def check_upload(self, table: str, path: Path, mapping: Mapping | None) -> None:
        """Refuse (403) an upload to a table the principal may not load, or whose records name equipment,
        scopes or enterprises of another tenant. Ids that exist nowhere are let through: the ingest stage
        quarantines them (unknown_equipment)."""
        a = self.access
        if table not in TABLES:
            raise NotFound(f"unknown table {table!r}; canonical tables are {', '.join(TABLES)}")
        if table not in a.write_tables:
            raise Forbidden(f"your role may not load table {table!r}"
                            + (f" (you may load: {', '.join(sorted(a.write_tables))})" if a.write_tables else ""))
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
                    problems.append("every equipment record must name its enterprise "
                                    f"({', '.join(sorted(ents))})")
                elif v not in ents:
                    problems.append(f"enterprise {v!r} is not yours")
            if a.sites is not None:
                for v in values.get("site", ()):
                    if v not in a.sites:
                        problems.append(f"site {v!r} is not the site of this key ({', '.join(sorted(a.sites))})")
            for col in ("equipment_id", "work_center", "area", "site"):
                for v in values.get(col, ()):
                    if v is not None and v in foreign:
                        problems.append(f"{col} {v!r} belongs to another tenant")
        else:
            for v in values.get("equipment_id", ()):
                if v is None:
                    if table == "products":
                        problems.append("a product without equipment_id would apply to every enterprise; give "
                                        "equipment_id")
                elif v not in own_eq and v in foreign:
                    problems.append(f"equipment {v!r} belongs to another tenant")
            for v in values.get("scope", ()):
                if v is not None and v not in own_any and (v in foreign or v in _all_ids(self)):
                    problems.append(f"scope {v!r} belongs to another tenant")
            for v in values.get("enterprise_id", ()):
                if v not in ents:
                    problems.append(f"enterprise_id {v!r} is not yours")
        if problems:
            uniq = list(dict.fromkeys(problems))
            more = f" (and {len(uniq) - 5} more)" if len(uniq) > 5 else ""
            raise Forbidden("upload refused, nothing was stored: " + "; ".join(uniq[:5]) + more)


def _all_ids(view: TenantView) -> frozenset:
    def compute():
        eq = view.equipment_table
        return frozenset(v for c in HIERARCHY for v in eq[c].dropna().tolist())
    return view.cached(("all_ids",), compute)


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
    from zhizao.ingest.load import IngestError

    try:
        src = read_sql(path, mapping)
        source_columns = list(con.sql(src).columns)
    except duckdb.Error as e:
        raise IngestError(f"cannot read file: {str(e).splitlines()[0]}") from None
    out: dict[str, set] = {}
    for col in TENANT_COLUMNS.get(table, ()):
        e = mapping.expression(col, source_columns)
        if e is None and col in ALIASES.get(table, {}) and col not in mapping.columns:
            alias_col, alias_sql = ALIASES[table][col]
            if alias_col in source_columns:
                e = alias_sql
        if e is None:
            out[col] = {None}
            continue
        try:
            rows = con.execute(f"SELECT DISTINCT nullif(trim(CAST({e} AS VARCHAR)), '') FROM ({src})").fetchall()
        except duckdb.Error as err:
            raise IngestError(f"cannot read column {col}: {str(err).splitlines()[0]}") from None
        out[col] = {r[0] for r in rows}
    return out
