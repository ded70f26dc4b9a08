"""ISO 22400 elements and their roll-up on Apache Spark, over a dataset of :mod:`zhizao.scale.dataset`.

The elements are computed by zhizao's own engine (:func:`zhizao.kpi.elements.compute_elements`), group by
group, with ``groupBy("_g").cogroup(...).applyInArrow`` (:mod:`zhizao.scale.kernel`); the roll-up to work
centre, area, site and enterprise is a Spark aggregation of the elements. Results are identical to the
embedded engine's, row for row and bit for bit.

Groups and what travels with them
---------------------------------
``s:<site>``
    A site: its equipment (from the driver), the states and production of that equipment, the calendar
    entries of every id of its equipment's hierarchy (equipment, work centre, area, site, enterprise), the
    energy, labour and quality records of its equipment and of those ids (an enterprise's records go to each
    of its sites), every reading of a cumulative energy register any of whose readings goes there (a
    register's consumption is the difference of consecutive readings), and the products. Without a query
    range, the engine derives the site's default range from exactly these records, as it does in the whole
    store. A site group owns its equipment and the work centres, areas and the site that carry records of
    their own and lie in this site only.
``n``
    The equipment without site, in the same way.
``x:<scope>``
    A scope with records of its own that is an enterprise, or an id found in several sites (or only at
    equipment without site): every equipment that has the id in its hierarchy (so that the engine gives the
    scope the same level, parents and time zone as in the whole store), the records booked to the scope, and
    the calendar entries of those equipment's ids. It owns that scope only.

A group computes every entity of its store and keeps the rows of the entities it owns, so each entity is
computed once, from all the records it depends on. Without a query range the engine needs each site's extent
of data (the range is whole buckets around it) and, for the entities outside any site, the extent of all
data: a first pass computes the site groups (and ``n``) and reports the extent each derived; a second pass
computes ``n``, the scope groups and the sites without any record with those extents given to the engine
(``compute_elements(..., extent=...)``). With ``start`` and ``end`` given, one pass does all groups.

Roll-up
-------
Elements are summed per level id, time zone and bucket in Spark SQL, in the same way and order as
:func:`zhizao.kpi.rollup.rollup` does with pandas (compensated summation over the members in the order of the
engine's rows: equipment by id, then scopes by id), so that even the last bit agrees; ``n_equipment`` counts
distinct equipment and the flags are any of the members'. ``shift`` rows of a group are summed per local shift
label first, then the labels with the same bounds in label order, as :func:`zhizao.kpi.rollup.rollup` does.
KPIs are then computed from the summed elements with :func:`zhizao.kpi.kpis.compute_kpis`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from zhizao.errors import InputError
from zhizao.kpi.buckets import ReadingTime, default_end, utc_ms
from zhizao.kpi.elements import ELEMENTS
from zhizao.kpi.partitions import group_zones
from zhizao.messages import define
from zhizao.scale.dataset import read_manifest, table_files
from zhizao.scale.kernel import ID_COLUMNS, TIME_COLUMNS, elements_schema, group_elements, tables_of, to_arrow
from zhizao.schema import LEVEL_ID_COLUMN, LEVELS, PERIODS, TABLES
from zhizao.settings import Settings

BIG = ("states", "production")
#: Most equipment in one group by default: about 16,000 state records per machine-year make a year of 100
#: machines 1.6 M records, some 600 MB in the Python worker (see docs/scale.md)
GROUP_SIZE = 100
SMALL = ("calendar", "energy", "labour", "quality")
HIERARCHY = ("equipment_id", "work_center", "area", "site", "enterprise")
_SPARK_TYPES = {"text": "string", "timestamp": "timestamp", "float": "double", "bool": "boolean"}

NO_PYSPARK = define("spark.missing", "the Spark engine needs pyspark (pip install pyspark==4.3.0) and Java 17 or "
                                     "newer")
BAD_PERIOD = define("spark.bad_period", "unknown period %(period)s; one of %(periods)s")
BAD_LEVEL = define("spark.bad_level", "unknown level %(level)s; one of %(levels)s")
EMPTY_RANGE = define("spark.empty_range", "empty query range: end %(end)s is not after start %(start)s")
NO_SHIFTS = define("spark.no_shifts", "period 'shift' needs calendar entries of kind shift")
BOTH_TARGETS = define("spark.both_targets", "give --spark-master or --spark-remote, not both")


def check_query(period: str, start, end, level: str = "equipment") -> None:
    """Raise :class:`InputError` for an unknown period or level or an empty range (before any Spark job)."""
    if period not in PERIODS:
        raise InputError(BAD_PERIOD, period=period, periods=", ".join(PERIODS))
    if level not in LEVELS:
        raise InputError(BAD_LEVEL, level=level, levels=", ".join(LEVELS))
    if start is not None and not default_end(end) and utc_ms(end) <= utc_ms(start):
        raise InputError(EMPTY_RANGE, start=str(start), end=str(end))


def spark_session(master: str | None = None, remote: str | None = None, conf: dict | None = None):
    """A Spark session for zhizao: a classic one on ``master`` (default ``local[*]``), or a Spark Connect
    client of ``remote`` (``sc://host:port``). The session time zone is UTC."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - pyspark is a dependency
        raise InputError(NO_PYSPARK) from None
    if master and remote:
        raise InputError(BOTH_TARGETS)
    settings = {"spark.sql.session.timeZone": "UTC",
                "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
                **(conf or {})}
    if remote:
        spark = SparkSession.builder.remote(remote).getOrCreate()
        for k, v in settings.items():
            if spark.conf.isModifiable(k):
                spark.conf.set(k, v)
        return spark
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    b = SparkSession.builder.master(master or "local[*]").appName("zhizao")
    for k, v in {"spark.ui.showConsoleProgress": "false", **settings}.items():
        b = b.config(k, v)
    spark = b.getOrCreate()
    for k, v in settings.items():  # a session that existed already (static settings stay as they are)
        if not spark.conf.isModifiable(k):
            continue
        spark.conf.set(k, v)
    return spark


def _struct(name: str, extra: tuple = ()) -> str:
    cols = [f"`{c.name}` {_SPARK_TYPES[c.type]}" for c in TABLES[name].columns]
    return ", ".join(cols + ["`_row` bigint"] + [f"`{n}` {t}" for n, t in extra])


def _is_local(path: str) -> bool:
    return "://" not in str(path) or str(path).startswith("file://")


def read_table(spark, dataset: str, name: str):
    """Table ``name`` of the dataset as a Spark DataFrame (canonical columns, ``_row`` and ``site``)."""
    extra: tuple[tuple[str, str], ...] = (("site", "string"),) if name != "equipment" else ()
    if name in ("states", "production", "calendar", "energy", "labour", "quality"):
        extra += (("month", "string"),)
    schema = _struct(name, extra)
    where = f"{str(dataset).rstrip('/')}/{name}"
    if _is_local(dataset) and not table_files(str(dataset).removeprefix("file://"), name):
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).option("basePath", where).parquet(where)


# -- the plan: groups, routes and owners, from the equipment table and the scopes with records of their own

@dataclass
class Plan:
    """Which group computes what (see the module docstring)."""

    equipment: dict = field(default_factory=dict)  # group -> equipment rows (pyarrow.Table)
    members: dict = field(default_factory=dict)  # site or null group -> ids of the equipment whose rows it keeps
    owned: dict = field(default_factory=dict)  # group -> scope ids whose rows it keeps
    route: list = field(default_factory=list)  # (sid, group): records booked to sid go to group
    eq_group: list = field(default_factory=list)  # (equipment_id, group) of every equipment
    site_of: dict = field(default_factory=dict)  # site or null group -> site (None for the null group)
    tzs: dict = field(default_factory=dict)  # site or null group -> time zones of its equipment
    sites: list = field(default_factory=list)  # site groups, in order
    scope_groups: list = field(default_factory=list)
    has_null: bool = False


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def make_plan(equipment: pa.Table, scopes: list[str], group_size: int | None = None) -> Plan:
    """The groups of a dataset whose equipment table is ``equipment`` (with column ``site``) and whose
    labour, energy and quality records are booked to ``scopes`` (besides equipment).

    A site of more than ``group_size`` equipment is split into groups of at most that many equipment in
    the order of their ids (``s:<site>#0``, ``#1``, ...); each gets the site's calendar and scope records (for
    the site's extent), and the scopes of such a site are computed in scope groups (a scope's entity needs
    every equipment that holds it)."""
    eq = equipment.to_pandas()
    plan = Plan()
    n = len(eq)
    ids = {c: eq[c].to_numpy(dtype=object) for c in HIERARCHY}
    site = [None if _missing(v) else v for v in ids["site"].tolist()]
    tz = ["UTC" if _missing(v) else v for v in eq["timezone"].tolist()]
    sites_of: dict[str, set] = {}
    level_of: dict[str, int] = {}
    for i in range(n):
        for lv, c in enumerate(HIERARCHY):
            v = ids[c][i]
            if not _missing(v):
                sites_of.setdefault(v, set()).add(site[i])
                level_of[v] = min(level_of.get(v, lv), lv)
    # equipment groups: a site (in parts of at most group_size equipment) or the equipment without site
    by_site: dict = {}
    for i in sorted(range(n), key=lambda i: ids["equipment_id"][i]):
        by_site.setdefault(site[i], []).append(i)
    groups_of: dict = {}
    group = np.empty(n, dtype=object)
    for s_, rows in sorted(by_site.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
        if s_ is None:
            chunks = [("n", rows)]
        elif group_size and len(rows) > group_size:
            chunks = [(f"s:{s_}#{k}", rows[j:j + group_size]) for k, j in enumerate(range(0, len(rows), group_size))]
        else:
            chunks = [(f"s:{s_}", rows)]
        groups_of[s_] = [g for g, _ in chunks]
        for g, rows_g in chunks:
            group[rows_g] = g
            plan.site_of[g] = s_
            plan.tzs[g] = sorted({tz[i] for i in rows_g})
            plan.members[g] = {ids["equipment_id"][i] for i in rows_g}
            plan.owned[g] = set()
            plan.eq_group += [(ids["equipment_id"][i], g) for i in rows_g]
    for g in plan.site_of:
        plan.equipment[g] = equipment.filter(pa.array(group == g))
    plan.sites = [g for g in plan.site_of if g != "n"]
    plan.has_null = "n" in plan.site_of
    for sid, sites in sites_of.items():
        for s_ in sorted(sites, key=lambda x: (x is None, x or "")):
            plan.route += [(sid, g) for g in groups_of[s_]]
    for x in sorted(set(scopes)):
        if x not in sites_of or level_of[x] == 0:
            continue  # an unknown scope (the engine ignores it), or an equipment's records
        sites = sites_of[x]
        if level_of[x] < len(HIERARCHY) - 1 and len(sites) == 1 and None not in sites \
                and len(groups_of[next(iter(sites))]) == 1:
            plan.owned[groups_of[next(iter(sites))][0]].add(x)  # a scope of a site computed as one group
            continue
        g = f"x:{x}"
        holds = np.zeros(n, bool)
        for c in HIERARCHY:
            holds |= ids[c] == x
        plan.equipment[g] = equipment.filter(pa.array(holds))
        plan.owned[g] = {x}
        plan.scope_groups.append(g)
        for sid in sorted({v for c in HIERARCHY for v in ids[c][holds].tolist() if not _missing(v)}):
            plan.route.append((sid, g))
    return plan


# -- the group function (runs in the Python workers)

OUT_EXTRA = (("_g", pa.string()), ("_x0", pa.int64()), ("_x1", pa.int64()))


def _zone_frame(equipment: pa.Table) -> pd.DataFrame:
    """The equipment's level ids and zones (``tz``; UTC where none is given), as the engine reads them."""
    eq = equipment.select([c for c in HIERARCHY if c != "equipment_id"] + ["timezone"]).to_pandas()
    eq["tz"] = eq.pop("timezone").where(lambda z: z.notna(), "UTC")
    return eq


def _kernel(plan: Plan, products: pa.Table, period: str, start, end, settings: Settings, zone_level, extent,
            schema):
    """The function applied to each cogroup (key, big, small): elements of the group's owned entities."""

    def run(key, big, small):
        g = key[0].as_py()
        tables = {"equipment": plan.equipment.get(g), "products": products}
        tables.update(tables_of(big, BIG))
        tables.update(tables_of(small, SMALL))
        if period == "shift":
            cal = tables.get("calendar")
            if cal is None or "shift" not in set(cal.column("kind").to_pylist()):
                return schema.empty_table()  # no shift bucket in this group
        if tables["equipment"] is None:
            return schema.empty_table()
        res = group_elements(tables, period, start, end, settings, extent, zone_level)
        df = res.elements
        is_eq = (df["level"] == "equipment").to_numpy()
        mine = is_eq & df["equipment_id"].isin(plan.members.get(g, ())).to_numpy()
        owned = plan.owned.get(g, set())
        if owned:
            mine |= ~is_eq & df["entity_id"].isin(owned).to_numpy()
        df = df[mine]
        x0 = x1 = None
        if res.extent and g in plan.site_of:  # the extent of this group's part of its site's data
            x0, x1 = res.extent.get(plan.site_of[g], (None, None))
        df = df.assign(_g=g, _x0=x0, _x1=x1)
        return to_arrow(df, schema)

    return run


def _wide(frames: list, names: tuple):
    from pyspark.sql import functions as F

    out = None
    for name, df in zip(names, frames):
        df = df.withColumn("_t", F.lit(name))
        out = df if out is None else out.unionByName(df, allowMissingColumns=True)
    return out


def _routed(spark, dataset: str, plan: Plan):
    """The big (states, production) and small (calendar, energy, labour, quality) frames with group ``_g``."""
    from pyspark.sql import functions as F

    eq_group = F.broadcast(spark.createDataFrame(plan.eq_group or [("", "")], "_eq string, _g string"))

    def by_site(df):  # records of an equipment: its group
        return df.join(eq_group, df["equipment_id"] == eq_group["_eq"]).drop("_eq")

    route = spark.createDataFrame(plan.route or [("", "")], "sid string, _g string")

    def by_scope(df):
        return df.join(F.broadcast(route), df["scope"] == route["sid"]).drop("sid")

    big = [by_site(read_table(spark, dataset, n)).drop("site", "month") for n in BIG]
    cal = by_scope(read_table(spark, dataset, "calendar").drop("site", "month"))
    lab = by_scope(read_table(spark, dataset, "labour").drop("site", "month"))
    parts = {}
    for name in ("energy", "quality"):
        df = read_table(spark, dataset, name)
        own = by_site(df.where(F.col("equipment_id").isNotNull())).drop("site", "month")
        scoped = by_scope(df.where(F.col("equipment_id").isNull()).drop("site", "month"))
        parts[name] = own.unionByName(scoped)
    # every reading of a cumulative register goes wherever any of its readings goes
    en = parts["energy"]
    cum = F.coalesce(F.col("reading"), F.lit("interval")) == "cumulative"
    meters = en.where(cum).select("meter_id", "_g").distinct()
    raw = read_table(spark, dataset, "energy").drop("site", "month")
    en = en.where(~cum).unionByName(
        raw.where(F.coalesce(F.col("reading"), F.lit("interval")) == "cumulative").join(meters, "meter_id"))
    small = [cal, en, lab, parts["quality"]]
    return _wide(big, BIG), _wide(small, SMALL)


def _scopes(spark, dataset: str) -> list[str]:
    from pyspark.sql import functions as F

    lab = read_table(spark, dataset, "labour").select("scope")
    en = read_table(spark, dataset, "energy").where(F.col("equipment_id").isNull()).select("scope")
    qu = read_table(spark, dataset, "quality").where(F.col("equipment_id").isNull()).select("scope")
    return [r[0] for r in lab.unionByName(en).unionByName(qu).where(F.col("scope").isNotNull()).distinct().collect()]


class SparkEngine:
    """The elements and roll-up on Spark.

    Parameters
    ----------
    master : str, optional
        Spark master URL (``local[2]``, ``spark://host:7077``, ``yarn``, ...); default ``local[*]``.
    remote : str, optional
        Spark Connect URL (``sc://host:15002``) instead of a master.
    conf : dict, optional
        Further Spark settings.
    session : pyspark.sql.SparkSession, optional
        A session to use (then master, remote and conf are not used).
    group_size : int, optional
        Most equipment in one group: a larger site is computed in parts of whole equipment (default
        :data:`GROUP_SIZE`; None: whole sites).
    """

    def __init__(self, master: str | None = None, remote: str | None = None, conf: dict | None = None,
                 session=None, group_size: int | None = None):
        if master and remote:
            raise InputError(BOTH_TARGETS)
        self.master, self.remote, self.conf = master, remote, conf
        self._spark = session
        self.group_size = GROUP_SIZE if group_size is None else group_size or None
        self.last_plan: Plan | None = None  # the groups of the last computation
        self.last_second: list = []  # the groups of its second pass
        self._frames: dict = {}

    @property
    def spark(self):
        if self._spark is None:
            self._spark = spark_session(self.master, self.remote, self.conf)
        return self._spark

    # -- elements
    def elements_frame(self, dataset: str | Path, period: str = "day", start=None, end=None,
                       settings: Settings | None = None, zone_level: str | None = None):
        """The elements of every entity (the rows of ``compute_elements(...).elements``, ``zone_level`` as
        there) as a Spark DataFrame, with the extra columns ``_g`` (group), ``_x0`` and ``_x1`` (the extent its
        group derived).

        Persisted and kept per arguments (a roll-up to several levels computes the elements once); the
        dataset is taken as unchanged meanwhile (:meth:`clear` forgets)."""
        check_query(period, start, end)
        settings = settings or Settings()
        dataset = str(dataset)
        key = (dataset, period, str(start), str(end), repr(settings), self.group_size, zone_level)
        if key not in self._frames:
            self._frames[key] = self._elements_frame(dataset, period, start, end, settings, zone_level).persist()
        return self._frames[key]

    def clear(self) -> None:
        """Forget the elements computed so far."""
        for df in self._frames.values():
            df.unpersist()
        self._frames.clear()

    def _equipment(self, dataset: str) -> pa.Table:
        if _is_local(dataset):
            read_manifest(dataset.removeprefix("file://"))
        return read_table(self.spark, dataset, "equipment").toArrow()

    def _elements_frame(self, dataset: str, period: str, start, end, settings: Settings, zone_level):
        spark = self.spark
        equipment = self._equipment(dataset)
        products = read_table(spark, dataset, "products").drop("site").toArrow()
        if period == "shift":
            cal = read_table(spark, dataset, "calendar")
            if cal.where(cal["kind"] == "shift").limit(1).count() == 0:
                raise InputError(NO_SHIFTS)
        extra_zones: list = []
        if zone_level not in (None, "equipment"):
            # the groups' bucket zones from all their equipment (a group sees only part of them), given to each
            # group as configured zones
            zones = group_zones(_zone_frame(equipment), zone_level, settings.zones)
            settings = settings.replace(zones={**settings.zones, **zones})
            extra_zones = sorted(set(zones.values()))
        plan = make_plan(equipment, _scopes(spark, dataset), self.group_size)
        big, small = _routed(spark, dataset, plan)
        schema = elements_schema(OUT_EXTRA)
        ddl = _ddl(schema)
        explicit = start is not None and not default_end(end)
        reading = end.ms if isinstance(end, ReadingTime) else None

        def run(groups, extent):
            fn = _kernel(plan, products, period, start, end, settings, zone_level, extent, schema)
            b = big.where(big["_g"].isin(groups))
            # one marker row per group: a group without any record is computed too (its equipment may be
            # scheduled by a calendar, or have rows without data)
            marks = spark.createDataFrame([(g, "_group") for g in groups], "_g string, _t string")
            s = small.where(small["_g"].isin(groups)).unionByName(marks, allowMissingColumns=True)
            return b.groupBy("_g").cogroup(s.groupBy("_g")).applyInArrow(fn, ddl)

        own = plan.sites + (["n"] if plan.has_null else [])
        self.last_plan, self.last_second = plan, []
        if explicit:
            return run(own + plan.scope_groups, None)
        # first pass: the equipment groups with the extents they derive; then whatever needs the extent of
        # a whole site (a part of a site whose own records give other ranges) or of all data
        first = run(own, None).persist()
        ext = {r["_g"]: (r["_x0"], r["_x1"]) for r in first.select("_g", "_x0", "_x1").distinct().collect()
               if r["_x0"] is not None}
        extent: dict = {}
        for g, (a, b) in ext.items():
            site = plan.site_of[g]
            a0, b0 = extent.get(site, (a, b))
            extent[site] = (min(a, a0), max(b, b0))
        if extent:
            extent[None] = (min(a for a, _ in extent.values()), max(b for _, b in extent.values()))

        def differs(g):
            tzs = plan.tzs[g] + extra_zones
            return _ranges(ext[g], period, tzs, reading) != _ranges(extent[plan.site_of[g]], period, tzs, reading)

        redo = sorted(g for g in own if g == "n" or g not in ext or differs(g))
        out = first.where(~first["_g"].isin(redo)) if redo else first
        self.last_second = redo + plan.scope_groups
        if self.last_second and extent:
            out = out.unionByName(run(self.last_second, extent))
        return out

    def elements(self, dataset: str | Path, period: str = "day", start=None, end=None,
                 settings: Settings | None = None, zone_level: str | None = None) -> pd.DataFrame:
        """The elements of every entity, as :func:`zhizao.kpi.elements.compute_elements` gives them (same
        rows, same order, same values)."""
        from pyspark.sql import functions as F

        df = self.elements_frame(dataset, period, start, end, settings, zone_level)
        df = df.orderBy((F.col("level") != "equipment").cast("int"), "entity_id", "period_start")
        return _frame(df.drop("_g", "_x0", "_x1").toArrow())

    # -- roll-up
    def zone_level(self, dataset: str | Path, level: str, period: str, settings: Settings | None = None):
        """``level`` if some group of it is bucketed in a zone other than its members' own (as the workspace
        decides it for the embedded engine), else None."""
        settings = settings or Settings()
        if level == "equipment" or period in ("all", "shift"):
            return None
        eq = _zone_frame(self._equipment(str(dataset)))
        zones = group_zones(eq, level, settings.zones)
        return level if any((eq.loc[eq[level] == g, "tz"] != z).any() for g, z in zones.items()) else None

    def rollup_frame(self, dataset: str | Path, level: str = "equipment", period: str = "day", start=None,
                     end=None, settings: Settings | None = None):
        """The elements summed to ``level`` per bucket as a Spark DataFrame (see :func:`spark_rollup`)."""
        check_query(period, start, end, level)
        zl = self.zone_level(dataset, level, period, settings)
        return spark_rollup(self.elements_frame(dataset, period, start, end, settings, zl), level, period)

    def rollup(self, dataset: str | Path, level: str = "equipment", period: str = "day", start=None, end=None,
               settings: Settings | None = None) -> pd.DataFrame:
        """:func:`zhizao.kpi.rollup.rollup` of the elements, computed by Spark (same rows, order and values)."""
        return _frame(self.rollup_frame(dataset, level, period, start, end, settings).toArrow())

    def stop(self) -> None:
        self._frames.clear()
        if self._spark is not None:
            self._spark.stop()
            self._spark = None


def _ranges(extent: tuple, period: str, tzs: list, reading: int | None = None) -> list:
    """The default query range of each time zone for data of ``extent`` read at ``reading`` [ms] (as the engine
    derives them)."""
    from zhizao.kpi.buckets import default_range

    return [default_range(extent[0], extent[1], period, tz, reading) for tz in tzs]


def _ddl(schema: pa.Schema) -> str:
    types = {pa.string(): "string", pa.float64(): "double", pa.bool_(): "boolean", pa.int64(): "bigint"}
    return ", ".join(f"`{f.name}` {'timestamp' if pa.types.is_timestamp(f.type) else types[f.type]}"
                     for f in schema)


def _frame(t: pa.Table) -> pd.DataFrame:
    """An Arrow result as the pandas frame the embedded engine gives (text columns as objects)."""
    df = t.to_pandas()
    for c in df.columns:
        if c in ID_COLUMNS or c in LEVEL_ID_COLUMN.values():
            df[c] = df[c].astype(object).where(df[c].notna(), None)
        elif c in TIME_COLUMNS:
            df[c] = pd.to_datetime(df[c], utc=True)
    return df


def _summed(members: str, n: int) -> str:
    """SQL of the compensated sums of the ``n`` values ``v`` of the members (an array of structs), as pandas'
    groupby sum computes each: Kahan summation in the members' order, nulls skipped, null when no member
    has a value. One ``aggregate`` over arrays of ``n`` (not ``n`` aggregates: their generated code would
    exceed the JVM's method size)."""
    zeros = f"array_repeat(0D, {n})"
    return f"""aggregate({members}, named_struct('s', {zeros}, 'c', {zeros}, 'n', array_repeat(0, {n})),
        (a, m) -> named_struct(
            's', transform(a.s, (s, i) -> CASE WHEN m.v[i] IS NULL THEN s ELSE s + (m.v[i] - a.c[i]) END),
            'c', transform(a.c, (c, i) -> CASE WHEN m.v[i] IS NULL THEN c
                                          ELSE nanvl((a.s[i] + (m.v[i] - c)) - a.s[i] - (m.v[i] - c), 0D) END),
            'n', transform(a.n, (k, i) -> k + CASE WHEN m.v[i] IS NULL THEN 0 ELSE 1 END)),
        a -> zip_with(a.s, a.n, (s, k) -> CASE WHEN k > 0 THEN s END))"""


def spark_rollup(elements, level: str, period: str | None = None):
    """:func:`zhizao.kpi.rollup.rollup` as a Spark aggregation of an elements DataFrame: one row per entity of
    ``level`` and period, the members' elements summed as pandas sums them, ``tz`` the first member's; ``shift``
    rows of a group per local shift label, the labels with the same bounds added in label order."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    col = LEVEL_ID_COLUMN[level]
    keys = [col, "tz", "period_start", "period_end"]
    flags = [c for c in elements.columns if c not in ID_COLUMNS and c not in TIME_COLUMNS and c not in ELEMENTS
             and not c.startswith("_")]
    if level == "equipment":
        df = elements.where(F.col("level") == "equipment")
        return df.select(*keys, F.lit(1).cast("long").alias("n_equipment"), *flags, *ELEMENTS).orderBy(*keys)
    df = elements.where(F.col(col).isNotNull()).withColumn("_p", F.col("period_start"))
    if period == "all":  # one row per group: from its members' earliest start to their latest end
        w = Window.partitionBy(col)
        df = df.withColumn("period_start", F.min("period_start").over(w)) \
               .withColumn("period_end", F.max("period_end").over(w))
    elif period == "shift":  # one row per local label (wall-clock start and end): earliest start to latest end
        df = df.withColumn("_ls", F.from_utc_timestamp("period_start", F.col("tz"))) \
               .withColumn("_le", F.from_utc_timestamp("period_end", F.col("tz")))
        w = Window.partitionBy(col, "_ls", "_le")
        df = df.withColumn("period_start", F.min("period_start").over(w)) \
               .withColumn("period_end", F.max("period_end").over(w))
    # the members in the order of the engine's rows: equipment by id, then scopes by id (an entity's buckets by
    # start)
    first = F.struct((F.col("level") != "equipment").cast("int").alias("o"), F.col("entity_id").alias("e"),
                     F.col("_p").alias("p"), F.col("tz").alias("tz"))
    member = F.struct(*[first[f].alias(f) for f in ("o", "e", "p", "tz")],
                      F.array(*[F.col(e) for e in ELEMENTS]).alias("v"))
    if period == "shift":
        lab = df.groupBy(col, "period_start", "period_end", "_ls", "_le").agg(
            F.array_sort(F.collect_list(member)).alias("_m"), F.collect_set("equipment_id").alias("_eq"),
            F.min(first).alias("_first"), *[F.max(f).alias(f) for f in flags])
        lab = lab.select(col, "period_start", "period_end", "_ls", "_le", "_eq", "_first", *flags,
                         F.expr(_summed("_m", len(ELEMENTS))).alias("_v"))
        # the labels with the same bounds, in label order
        g = lab.groupBy(col, "period_start", "period_end").agg(
            F.array_sort(F.collect_list(F.struct("_ls", "_le", F.col("_v").alias("v")))).alias("_m"),
            F.size(F.array_distinct(F.flatten(F.collect_list("_eq")))).cast("long").alias("n_equipment"),
            F.min("_first")["tz"].alias("tz"), *[F.max(f).alias(f) for f in flags])
        g = g.select(col, "tz", "period_start", "period_end", "n_equipment", *flags,
                     F.expr(_summed("_m", len(ELEMENTS))).alias("_s"))
    else:
        g = df.groupBy(col, "period_start", "period_end").agg(
            F.array_sort(F.collect_list(member)).alias("_m"), F.countDistinct("equipment_id").alias("n_equipment"),
            *[F.max(f).alias(f) for f in flags])
        g = g.select(col, F.col("_m")[0]["tz"].alias("tz"), "period_start", "period_end", "n_equipment", *flags,
                     F.expr(_summed("_m", len(ELEMENTS))).alias("_s"))
    return g.select(*keys, "n_equipment", *flags, *[F.col("_s")[i].alias(e) for i, e in enumerate(ELEMENTS)]
                    ).orderBy(col, "period_start", "period_end")
