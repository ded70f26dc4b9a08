"""The living register: enterprises, scopes, projects, designations, programmes and targets as records with
a history.

Every change -- a file loaded (``zhizao ingest TABLE FILE [--update]``), a record created, updated or withdrawn
(``zhizao register update|withdraw``, ``zhizao project update|withdraw``, the API and the dashboard's forms) --
is validated the same way and appended to the audit log (:mod:`zhizao.portfolio.audit`) in the same
transaction. A record as it was on a date is read back from the log (:func:`record_as_of`).

Loading a file
--------------
- Columns may carry the canonical name (``project_id``), the Chinese label of the import template (``项目编号``)
  or both (``项目编号 (project_id)``); ``总投资（万元）`` (``investment_10k``) is the investment in 10,000 CNY.
- Coded columns take the code, the Chinese or the English label of their vocabulary
  (:mod:`zhizao.portfolio.vocabularies`); the code is stored. Dates are register dates
  (:mod:`zhizao.portfolio.dates`). Numbers may end with ``%`` (``20%`` = 0.2).
- Reloading is idempotent per record, not per file: a record identical to the stored one is skipped, a new
  one is created, one that was rejected before is tried again (after its cause is fixed it loads), and one
  that differs from the stored record with the same key is quarantined as ``conflicts_with_stored`` (the
  detail lists the differences) -- unless ``update`` is given: then the stored record takes the file's values
  of the columns the file has (an empty cell clears the value; columns the file lacks are kept) and the
  differences are reported and logged.
- The scope of a project or designation (实施范围) is a registered scope (table ``scopes``), or an equipment,
  work centre, area, site or enterprise id of the equipment table. A scope named nowhere yet is registered as
  a new scope of the record's enterprise (reported; it may exist long before any shop-floor data). A scope
  that belongs to another enterprise is refused (``scope_of_other_enterprise``).
- A designation without ``designation_id`` gets one derived from its values, so the same file loads once;
  two designations of one enterprise with empty scopes are two records (two units in the statistics).

Rules (the quarantine's ``rule``): ``missing_field``, ``unparseable``, ``not_finite`` (NaN, infinity),
``value_out_of_range`` (larger in magnitude than the limit of :mod:`zhizao.limits`), ``invalid_value`` (a code
outside its vocabulary, a time zone), ``negative_quantity``, ``end_not_after_start`` (commissioning before
start, revoked before recognised), ``unknown_reference`` (an enterprise, programme, project or parent scope that
is not registered), ``scope_of_other_enterprise``, ``duplicate`` (the key of an earlier record of the file),
``conflicts_with_stored``. Every rejected record is stored with its rule, its detail as a message code and
parameters (:mod:`zhizao.ingest.rules`) and the detail in English.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from zhizao.errors import Conflict, InputError, NotFound
from zhizao.ingest.load import IngestError, LoadReport, read_sql, sha256
from zhizao.ingest.mapping import Mapping, default_mapping
from zhizao.ingest.rules import NOT_FINITE, VALUE_OUT_OF_RANGE, type_word
from zhizao.limits import current as current_limits
from zhizao.messages import define
from zhizao.portfolio import audit
from zhizao.portfolio.dates import check_zone, ensure_settings, parse_date, programme_zones, store_zone
from zhizao.portfolio.vocabularies import vocabulary
from zhizao.schema import REGISTER_TABLES, SQL_TYPES, TABLES
from zhizao.store import equipment as store_equipment

#: Chinese column labels of the register tables (import templates, Chinese headers).
HEADERS = {
    "enterprises": {"enterprise_id": "企业编号", "name": "企业名称", "industry": "所属行业", "district": "所在区县",
                    "park": "所在园区", "credit_code": "统一社会信用代码"},
    "scopes": {"scope_id": "范围编号", "enterprise_id": "企业编号", "name": "范围名称", "kind": "范围类别",
               "parent": "上级范围", "note": "备注"},
    "projects": {"project_id": "项目编号", "enterprise_id": "企业编号", "name": "项目名称", "type": "项目类型",
                 "scope": "实施范围", "programme": "批次", "level": "级别", "start": "开工日期",
                 "commissioning_end": "建成投产日期", "investment": "总投资（元）", "status": "项目状态",
                 "status_date": "状态日期", "declared_efficiency": "申报生产效率提升",
                 "declared_defect_rate": "申报产品不良品率降低", "declared_operating_cost": "申报运营成本降低",
                 "declared_unit_energy": "申报单位产品能耗降低", "declared_development_cycle": "申报研制周期缩短"},
    "designations": {"designation_id": "认定编号", "enterprise_id": "企业编号", "project_id": "项目编号",
                     "scope": "实施范围", "name": "名称", "designation": "认定类别", "level": "级别",
                     "programme": "批次", "date": "认定日期", "revoked": "撤销日期", "note": "备注"},
    "programmes": {"programme_id": "批次编号", "name": "批次名称", "name_en": "英文名称", "year": "年度",
                   "level": "级别", "authority": "主管部门", "timezone": "时区", "rules": "认定规则",
                   "start": "开始日期", "end": "结束日期", "description": "说明"},
    "programme_targets": {"programme_id": "批次编号", "year": "年度", "district": "区县", "measure": "目标指标",
                          "target": "目标值", "note": "备注"},
}
#: Earlier Chinese column labels still read (table -> {label: column}): 产品不良率 became 产品不良品率, MIIT's word
#: (docs/glossary.md), and a template filled in before still loads.
LEGACY_HEADERS = {"projects": {"申报产品不良率降低": "declared_defect_rate"}}
#: Columns read in another unit: table -> {alias column: (Chinese label, canonical column, factor)}.
SCALED = {"projects": {"investment_10k": ("总投资（万元）", "investment", 1e4)}}

#: Which records refer to which: (table, column) -> referenced table.
DEPENDENTS = {
    "enterprises": (("scopes", "enterprise_id"), ("projects", "enterprise_id"), ("designations", "enterprise_id")),
    "scopes": (("projects", "scope"), ("designations", "scope"), ("scopes", "parent")),
    "projects": (("designations", "project_id"),),
    "programmes": (("projects", "programme"), ("designations", "programme"), ("programme_targets", "programme_id")),
    "designations": (),
    "programme_targets": (),
}

#: Version of the register's columns: :func:`ensure_register` does its work once per store and version.
REGISTER_SCHEMA = "1"

NOT_REGISTER = define("register.not_register", "%(table)s is not a register table; register tables: %(tables)s")
NO_RECORD = define("register.no_record", "no %(table)s record %(key)s")
HAS_DEPENDENTS = define("register.has_dependents", "%(table)s %(key)s cannot be withdrawn: %(n)s records refer to "
                                                   "it (%(examples)s); withdraw or change them first")
KEY_CHANGE = define("register.key_change", "%(column)s is part of the key of %(table)s and cannot be changed; "
                                           "withdraw the record and create a new one")
UNKNOWN_COLUMN = define("register.unknown_column", "%(table)s has no column %(column)s; columns: %(columns)s")
REJECTED = define("register.rejected", "%(table)s %(key)s was not stored: %(rule)s: %(detail)s")
EXISTS = define("register.exists", "%(table)s %(key)s exists already; update it instead")
NOTHING_STORED = define("register.nothing_stored", "%(source)s: nothing was stored: all %(n)s records were "
                                                   "rejected (%(rules)s); see 'zhizao quarantine'")
NOTHING_STORED_ANY = define("register.nothing_stored_any", "%(source)s: nothing was stored: all %(n)s records were "
                                                           "rejected; see 'zhizao quarantine'")
REASON_NEEDED = define("register.reason_needed", "give a reason for withdrawing %(table)s %(key)s")

# details of rejected records (quarantine ``detail``; Messages rendered in English in the store)
D_MISSING = define("register.missing", "%(column)s is empty")
D_UNPARSEABLE = define("register.unparseable", "%(column)s = %(value)s is not a valid %(type)s",
                       labels={"type": type_word})
D_INVALID = define("register.invalid", "%(column)s: %(problem)s")
D_NEGATIVE = define("register.negative", "%(column)s = %(value)s < 0")
D_ORDER = define("register.order", "%(later)s %(b)s is before %(earlier)s %(a)s")
D_REFERENCE = define("register.reference", "%(column)s %(value)s is not in table %(table)s")
D_NOT_OWN_PROJECT = define("register.not_own_project", "%(column)s %(value)s is not a project of %(enterprise)s")
D_OTHER_SCOPE = define("register.other_scope", "scope %(scope)s belongs to %(owner)s, not to %(enterprise)s")
D_DUPLICATE = define("register.duplicate", "same key as record %(record)s of this file: %(key)s")
D_CONFLICT = define("register.conflict", "a stored record has the same key but other values (%(diff)s); load "
                                         "with --update to change it")


def nfkc(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", str(text)).split()).casefold()


def _is_null(v) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def designation_id(values: dict) -> str:
    """The id of a designation record that has none: derived from its values (stable across reloads)."""
    parts = [values.get(k) for k in ("enterprise_id", "designation", "level", "scope", "project_id", "name",
                                     "date")]
    text = "|".join("" if _is_null(p) else (p.isoformat() if isinstance(p, dt.date) else str(p)) for p in parts)
    return "D-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


# ---------------------------------------------------------------------------------------------------------
# the store

def ensure_register(con) -> None:
    """Create the audit log and settings, and bring an older store's register tables to the current columns
    (added columns; TIMESTAMPTZ dates become register dates in the register's zone; designation ids); the
    records present then get a ``baseline`` entry in the audit log. Idempotent."""
    try:
        done = con.execute("SELECT value FROM register_settings WHERE key = 'register_schema' "
                           "ORDER BY changed_at DESC LIMIT 1").fetchone()
    except duckdb.CatalogException:
        done = None
    if done is not None and done[0] == REGISTER_SCHEMA:
        return
    audit.ensure(con)
    ensure_settings(con)
    zone = store_zone(con)
    for name in REGISTER_TABLES:
        spec = TABLES[name]
        have = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                "WHERE table_name = ? AND table_schema = 'main'", [name]).fetchall())
        if not have:
            continue
        for c in spec.columns:
            want = SQL_TYPES[c.type]
            if c.name not in have:
                con.execute(f'ALTER TABLE "{name}" ADD COLUMN "{c.name}" {want}')
            elif want == "DATE" and have[c.name].startswith("TIMESTAMP"):
                con.execute(f'ALTER TABLE "{name}" ALTER COLUMN "{c.name}" SET DATA TYPE DATE USING '
                            f'CAST(timezone(\'{zone}\', "{c.name}") AS DATE)')
    missing = con.execute("SELECT count(*) FROM designations WHERE designation_id IS NULL").fetchone()[0]
    if missing:
        df = con.execute("SELECT rowid AS _rid, * FROM designations WHERE designation_id IS NULL").df()
        for r in df.to_dict("records"):
            r = {k: _py(v) for k, v in r.items()}
            con.execute("UPDATE designations SET designation_id = ? WHERE rowid = ?", [designation_id(r), r["_rid"]])
    if not con.execute("SELECT count(*) FROM audit_log").fetchone()[0]:
        # a store from before the audit log: its register is the baseline of the history
        with transaction(con):
            for name in REGISTER_TABLES:
                for rec in stored_records(con, name).values():
                    audit.append(con, "system:baseline", "baseline", name, key_of(name, rec), after=rec,
                                 reason="register as found when the audit log was started")
    con.execute("INSERT INTO register_settings (key, value) VALUES ('register_schema', ?)", [REGISTER_SCHEMA])


_OPEN: set[int] = set()  # connections in a transaction begun by transaction


@contextmanager
def transaction(con):
    """A transaction of its own, or the enclosing one when this module (or its callers through it) began one
    on ``con`` (then the outermost commits or rolls back). A failed BEGIN would abort an open transaction in
    DuckDB, so nesting is tracked here rather than probed."""
    if id(con) in _OPEN:
        yield
        return
    con.execute("BEGIN TRANSACTION")
    _OPEN.add(id(con))
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        _OPEN.discard(id(con))


def _py(v):
    """A stored value as plain Python (dates as datetime.date, NaN as None)."""
    if _is_null(v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.date() if v == v.normalize() and v.tzinfo is None else v.to_pydatetime()
    if isinstance(v, dt.datetime):
        return v
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        return v.item()
    return v


def _cols(table: str) -> list[str]:
    return TABLES[table].names


def key_of(table: str, rec: dict):
    key = TABLES[table].key
    return tuple(rec.get(k) for k in key) if len(key) > 1 else rec.get(key[0])


def key_text(table: str, key) -> str:
    return audit.record_key(list(key) if isinstance(key, tuple) else [key])


def stored_records(con, table: str) -> dict:
    """key -> record (plain Python values) of a register table."""
    cols = ", ".join(f'"{c}"' for c in _cols(table))
    df = con.execute(f'SELECT {cols} FROM "{table}"').df()
    out = {}
    for r in df.to_dict("records"):
        rec = {c: _py(r[c]) for c in _cols(table)}
        for c in TABLES[table].columns:
            if c.type == "date" and isinstance(rec[c.name], dt.datetime):
                rec[c.name] = rec[c.name].date()
        out[key_of(table, rec)] = rec
    return out


# ---------------------------------------------------------------------------------------------------------
# parsing and rules

class _Reject(Exception):
    def __init__(self, rule: str, detail):
        self.rule, self.detail = rule, detail


_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
_TRUE = {"true", "1", "yes", "y", "是", "t"}
_FALSE = {"false", "0", "no", "n", "否", "f"}


def _number(text: str) -> float | None:
    """The number of ``text`` (``%`` divides by 100, thousands separators allowed); None when it is none.
    NaN and infinities are returned as such (the caller refuses them as ``not_finite``)."""
    t = unicodedata.normalize("NFKC", text).strip()
    pct = t.endswith("%")
    if pct:
        t = t[:-1].strip()
    if _THOUSANDS.match(t):
        t = t.replace(",", "")
    try:
        v = float(t)
    except ValueError:
        return None
    return v / 100.0 if pct else v


def parse_value(table: str, column: str, text, zone: str):
    """The typed value of a cell (None when empty).

    Raises
    ------
    _Reject
        ``unparseable`` or ``invalid_value``.
    """
    c = TABLES[table].column(column)
    if _is_null(text):
        return None
    if not isinstance(text, str):
        text = str(text)
    text = text.strip()
    if not text:
        return None
    if c.vocabulary:
        voc = vocabulary(c.vocabulary)
        code = voc.match(text)
        if code is None:
            raise _Reject("invalid_value", D_INVALID(column=column, problem=voc.unknown(text)))
        return code
    if c.type == "text":
        return text
    if c.type in ("float", "int"):
        v = _number(text)
        if v is not None and not math.isfinite(v):
            raise _Reject("not_finite", NOT_FINITE(column=column, value=text))
        if v is not None and abs(v) > current_limits().max_abs_value:
            raise _Reject("value_out_of_range", VALUE_OUT_OF_RANGE(
                column=column, value=text, limit=f"{current_limits().max_abs_value:g}"))
        if v is None or (c.type == "int" and not float(v).is_integer()):
            raise _Reject("unparseable", D_UNPARSEABLE(column=column, value=text, type=c.type))
        return int(v) if c.type == "int" else v
    if c.type == "bool":
        t = nfkc(text)
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
        raise _Reject("unparseable", D_UNPARSEABLE(column=column, value=text, type="bool"))
    if c.type == "date":
        try:
            return parse_date(text, zone)
        except InputError:
            raise _Reject("unparseable", D_UNPARSEABLE(column=column, value=text, type="date")) from None
    if c.type == "timestamp":
        try:
            t = pd.Timestamp(text)
        except (ValueError, TypeError):
            raise _Reject("unparseable", D_UNPARSEABLE(column=column, value=text, type="timestamp")) from None
        return t.to_pydatetime()
    return text


@dataclass
class _Refs:
    """What the records of a load may refer to (read once per load, extended by the load's own records)."""

    enterprises: set
    programmes: set
    zones: dict
    projects: dict  # project_id -> enterprise_id
    scopes: dict  # scope_id -> enterprise_id
    hierarchy: dict  # equipment hierarchy id -> set of enterprises (possibly empty)
    zone: str
    new_scopes: dict = field(default_factory=dict)  # scope -> enterprise registered by this load

    @classmethod
    def read(cls, con) -> _Refs:
        def col(sql):
            return [r for r in con.execute(sql).fetchall()]
        hier: dict = {}
        for eid, wc, area, site, ent in store_equipment.hierarchy_rows(con):
            for x in (eid, wc, area, site, ent):
                if x is not None:
                    s = hier.setdefault(x, set())
                    if ent is not None:
                        s.add(ent)
        return cls(enterprises={e for (e,) in col("SELECT enterprise_id FROM enterprises")},
                   programmes={p for (p,) in col("SELECT programme_id FROM programmes")},
                   zones=programme_zones(con),
                   projects=dict(col("SELECT project_id, enterprise_id FROM projects")),
                   scopes=dict(col("SELECT scope_id, enterprise_id FROM scopes")),
                   hierarchy=hier, zone=store_zone(con))

    def zone_of(self, programme) -> str:
        return self.zones.get(programme) or self.zone if programme else self.zone


def _zone_for(table: str, raw: dict, refs: _Refs) -> str:
    if table == "programmes":
        z = raw.get("timezone")
        if isinstance(z, str) and z.strip():
            try:
                return check_zone(z.strip())
            except InputError:
                return refs.zone
        return refs.zone
    prog = raw.get("programme") if table in ("projects", "designations") else raw.get("programme_id")
    prog = prog.strip() if isinstance(prog, str) else None
    return refs.zone_of(prog)


def _check(table: str, raw: dict, refs: _Refs, present: set) -> dict:
    """Typed, validated record of one row of text (``raw``: column -> text, only the columns of the source);
    raises _Reject with the first broken rule."""
    spec = TABLES[table]
    zone = _zone_for(table, raw, refs)
    for c in spec.columns:
        if c.required and (c.name not in present or _is_null(raw.get(c.name)) or not str(raw[c.name]).strip()):
            if table == "designations" and c.name == "designation_id":
                continue
            raise _Reject("missing_field", D_MISSING(column=c.name))
    rec = {}
    for c in spec.columns:
        if c.name in present:
            rec[c.name] = parse_value(table, c.name, raw.get(c.name), zone)
    for c in spec.columns:
        if c.nonnegative and rec.get(c.name) is not None and rec[c.name] < 0:
            raise _Reject("negative_quantity", D_NEGATIVE(column=c.name, value=rec[c.name]))
    pairs = {"projects": ("start", "commissioning_end"), "designations": ("date", "revoked"),
             "programmes": ("start", "end")}
    if table in pairs:
        a, b = pairs[table]
        if rec.get(a) is not None and rec.get(b) is not None and rec[b] < rec[a]:
            raise _Reject("end_not_after_start", D_ORDER(later=b, b=rec[b].isoformat(), earlier=a,
                                                         a=rec[a].isoformat()))
    if table == "programmes" and rec.get("timezone"):
        try:
            check_zone(rec["timezone"])
        except InputError as e:
            raise _Reject("invalid_value", D_INVALID(column="timezone", problem=e.message)) from None
    # references
    ent = rec.get("enterprise_id")
    if "enterprise_id" in rec and ent is not None and ent not in refs.enterprises and table != "enterprises":
        raise _Reject("unknown_reference", D_REFERENCE(column="enterprise_id", value=ent, table="enterprises"))
    for col in ("programme", "programme_id"):
        if col in rec and rec[col] is not None and table != "programmes" and rec[col] not in refs.programmes:
            raise _Reject("unknown_reference", D_REFERENCE(column=col, value=rec[col], table="programmes"))
    if table == "designations" and rec.get("project_id") is not None:
        owner = refs.projects.get(rec["project_id"])
        if owner is None:
            raise _Reject("unknown_reference", D_REFERENCE(column="project_id", value=rec["project_id"],
                                                           table="projects"))
        if ent is not None and owner != ent:
            raise _Reject("unknown_reference", D_NOT_OWN_PROJECT(column="project_id", value=rec["project_id"],
                                                                 enterprise=ent))
    if table == "scopes":
        par = rec.get("parent")
        if par is not None:
            owner = refs.scopes.get(par)
            ents = refs.hierarchy.get(par)
            if owner is None and ents is None:
                raise _Reject("unknown_reference", D_REFERENCE(column="parent", value=par, table="scopes"))
            if owner is not None and owner != ent:
                raise _Reject("scope_of_other_enterprise", D_OTHER_SCOPE(scope=par, owner=owner, enterprise=ent))
            if ents and ent not in ents:
                raise _Reject("scope_of_other_enterprise", D_OTHER_SCOPE(scope=par, owner=sorted(ents),
                                                                         enterprise=ent))
        sid = rec.get("scope_id")
        ents = refs.hierarchy.get(sid)
        if ents and ent not in ents:
            raise _Reject("scope_of_other_enterprise", D_OTHER_SCOPE(scope=sid, owner=sorted(ents), enterprise=ent))
    if table in ("projects", "designations") and rec.get("scope") is not None:
        sc = rec["scope"]
        owner = refs.scopes.get(sc) or refs.new_scopes.get(sc)
        ents = refs.hierarchy.get(sc)
        if owner is not None and ent is not None and owner != ent:
            raise _Reject("scope_of_other_enterprise", D_OTHER_SCOPE(scope=sc, owner=owner, enterprise=ent))
        if ents and ent is not None and ent not in ents:
            raise _Reject("scope_of_other_enterprise", D_OTHER_SCOPE(scope=sc, owner=sorted(ents), enterprise=ent))
    if table == "designations" and rec.get("designation_id") is None:
        rec["designation_id"] = designation_id(rec)
        present = present | {"designation_id"}
    return rec


# ---------------------------------------------------------------------------------------------------------
# loading a file

@dataclass
class RegisterReport(LoadReport):
    """What a register load did: :class:`zhizao.ingest.load.LoadReport` and the updates with their
    differences, the scopes registered on the way and the rejected records per rule."""

    updated: int = 0
    changes: list = field(default_factory=list)  # [(key text, {column: (before, after)})]
    new_scopes: list = field(default_factory=list)  # [(scope, enterprise)]
    rules: dict = field(default_factory=dict)  # rule -> count
    rejected: list = field(default_factory=list)  # [(record, line, rule, detail Message)]

    @property
    def stored_nothing(self) -> bool:
        """Every record was rejected (and there was at least one)."""
        return self.quarantined > 0 and self.loaded == 0 and self.updated == 0 and self.skipped == 0

    def __str__(self) -> str:
        s = (f"{self.source}: {self.loaded} records created in {self.table}, {self.updated} updated, "
             f"{self.quarantined} quarantined, {self.skipped} unchanged")
        if self.new_scopes:
            s += f"; scopes registered: {', '.join(f'{sc} ({e})' for sc, e in self.new_scopes)}"
        return s

    def to_dict(self) -> dict:
        return {"table": self.table, "source": self.source, "loaded": self.loaded, "updated": self.updated,
                "quarantined": self.quarantined, "skipped": self.skipped, "already_loaded": False,
                "changes": [{"record": k, "changes": {c: [audit.plain(b), audit.plain(a)] for c, (b, a) in
                                                      ch.items()}} for k, ch in self.changes],
                "new_scopes": [{"scope": s, "enterprise_id": e} for s, e in self.new_scopes],
                "rules": dict(self.rules)}


def _header_map(table: str, source_columns: list[str]) -> tuple[dict, dict]:
    """(canonical column -> source column, scaled alias -> source column) by name, label or 'label (name)'."""
    names = set(_cols(table)) | set(SCALED.get(table, {}))
    by_label = {nfkc(lbl): col for lbl, col in LEGACY_HEADERS.get(table, {}).items()}
    by_label.update({nfkc(lbl): col for col, lbl in HEADERS[table].items()})
    by_label.update({nfkc(lbl): alias for alias, (lbl, _c, _f) in SCALED.get(table, {}).items()})
    found: dict[str, str] = {}
    for sc in source_columns:
        t = unicodedata.normalize("NFKC", str(sc)).strip()
        m = re.search(r"\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", t)
        target = None
        if m and m.group(1) in names:
            target = m.group(1)
        elif t in names:
            target = t
        else:
            target = by_label.get(nfkc(t))
            if target is None and m:
                target = by_label.get(nfkc(t[: m.start()]))
        if target is not None and target not in found:
            found[target] = sc
    scaled = {a: found.pop(a) for a in list(found) if a in SCALED.get(table, {})}
    return found, scaled


def read_register_file(con, table: str, path, mapping: Mapping | None = None) -> tuple[pd.DataFrame, set, int]:
    """The records of a file as text: (frame with ``_record`` and the canonical columns it gives, the set of
    those columns, header lines before the first record)."""
    path = Path(path)
    user_mapping = mapping is not None
    mapping = mapping or default_mapping(table)
    try:
        src = read_sql(path, mapping)
        source_columns = list(con.sql(src).columns)
    except duckdb.Error as e:
        raise IngestError(f"{path}: cannot read file: {str(e).splitlines()[0]}") from None
    scaled: dict = {}
    if not user_mapping:
        found, scaled = _header_map(table, source_columns)
        mapping = Mapping(table=table, columns={c: {"column": s} for c, s in found.items()}, source="<headers>")
    exprs = {c: mapping.expression(c, source_columns) for c in _cols(table)}
    present = {c for c, e in exprs.items() if e is not None}
    sel = [f'CAST({e} AS VARCHAR) AS "{c}"' for c, e in exprs.items() if e is not None]
    for alias, sc in scaled.items():
        _lbl, canon, _f = SCALED[table][alias]
        if canon not in present:
            sel.append(f'CAST("{sc}" AS VARCHAR) AS "{alias}"')
    try:
        df = con.execute(f"SELECT row_number() OVER () AS _record, {', '.join(sel) or 'NULL AS _none'} "
                         f"FROM ({src})").df()
    except duckdb.Error as e:
        raise IngestError(f"{mapping.source}: a mapping expression fails on {path.name}: "
                          f"{str(e).splitlines()[0]}") from None
    for alias in scaled:
        _lbl, canon, factor = SCALED[table][alias]
        if alias in df.columns:
            df[canon] = [_scaled_text(x, factor) for x in df[alias]]
            df = df.drop(columns=[alias])
            present.add(canon)
    header = 1 if mapping.read.get("header", True) and not str(path).lower().endswith((".parquet", ".pq")) else 0
    missing = [c.name for c in TABLES[table].columns if c.required and c.name not in present
               and not (table == "designations" and c.name == "designation_id")]
    if missing:
        raise IngestError(f"{path}: no column for required {', '.join(missing)} of table {table!r} (the file has "
                          f"{', '.join(map(str, source_columns))}; use the template's headers, the canonical "
                          f"names or a mapping file)")
    return df, present, header


def _scaled_text(x, factor: float):
    """The text of a value in another unit (万元 -> CNY); unparseable text is kept (it is rejected later)."""
    if _is_null(x) or not str(x).strip():
        return None
    n = _number(str(x))
    return str(x) if n is None or not math.isfinite(n) else repr(n * factor)


def _diff(table: str, stored: dict, new: dict, present: set) -> dict:
    out = {}
    key = set(TABLES[table].key)
    for c in _cols(table):
        if c in present and c not in key:
            a, b = stored.get(c), new.get(c)
            if not _same(a, b):
                out[c] = (a, b)
    return out


def _same(a, b) -> bool:
    if _is_null(a) and _is_null(b):
        return True
    if _is_null(a) or _is_null(b):
        return False
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
        except (TypeError, ValueError):
            return False
    if isinstance(a, dt.datetime) and not isinstance(b, dt.datetime) and isinstance(b, dt.date):
        return a.date() == b
    return a == b


def _fmt(v) -> str:
    if _is_null(v):
        return "∅"
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def diff_text(changes: dict, column=str, value=None) -> str:
    """``column: before -> after; ...`` of a dict of changes; ``column(name)`` and ``value(name, v)`` give the
    texts (default: the name, and the value as stored with ∅ for null), e.g. a page's labels."""
    show = value or (lambda _c, v: _fmt(v))
    return "; ".join(f"{column(c)}: {show(c, b)} → {show(c, a)}" for c, (b, a) in changes.items())


def load_register_file(con, table: str, path, mapping: Mapping | None = None, *, update: bool = False,
                       actor: str | None = None, reason: str | None = None,
                       provenance: str | None = None) -> RegisterReport:
    """Load a file into a register table (see the module docstring).

    Parameters
    ----------
    con : duckdb connection of the store (written)
    table : str
        One of :data:`zhizao.schema.REGISTER_TABLES`.
    path : str or Path
        CSV (UTF-8, GBK, GB18030), Parquet or .xlsx.
    mapping : Mapping, optional
        A mapping file; without one, the header is matched by name or Chinese label.
    update : bool
        Update stored records whose values differ (else they are quarantined as ``conflicts_with_stored``).
    actor, reason : str, optional
        Who loads and why, for the audit log (default :func:`zhizao.portfolio.audit.default_actor`).
    provenance : str, optional
        Where the records come from (``"simulated"``), kept in the load log; default the provenance sidecar
        beside the file (:mod:`zhizao.provenance`), else none.

    Returns
    -------
    RegisterReport

    Raises
    ------
    IngestError
        The file cannot be read, or lacks a required column; nothing is stored.
    """
    if table not in REGISTER_TABLES:
        raise InputError(NOT_REGISTER(table=table, tables=list(REGISTER_TABLES)))
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"{path}: no such file")
    ensure_register(con)
    actor = actor or audit.default_actor()
    source = path.name
    df, present, header = read_register_file(con, table, path, mapping)
    rows = df.to_dict("records")
    report = RegisterReport(table, source)
    with transaction(con):
        con.execute('DELETE FROM quarantine WHERE "table" = ? AND source = ?', [table, source])
        _apply(con, table, rows, present, report, update=update, actor=actor, reason=reason, source=source,
               header=header)
        sha = sha256(path)
        from zhizao.provenance import sidecar_provenance

        # where the records come from ("simulated"), as for every load (zhizao.provenance)
        con.execute('INSERT INTO loads ("table", source, sha256, mapping_sha256, loaded, quarantined, skipped, '
                    'provenance) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                    [table, source, sha, mapping.sha256 if mapping else None, report.loaded + report.updated,
                     report.quarantined, report.skipped, provenance or sidecar_provenance(path)])
    return report


def _apply(con, table: str, rows: list[dict], present: set, report: RegisterReport, *, update: bool, actor: str,
           reason: str | None, source: str, header: int = 1, mode: str = "load") -> list[dict]:
    """Validate and store text records (inside the caller's transaction); fills ``report``; returns the
    records stored (created or updated)."""
    refs = _Refs.read(con)
    stored = stored_records(con, table)
    seen: dict = {}
    stored_out = []
    inserts, updates, quarantine = [], [], []
    spec = TABLES[table]
    for row in rows:
        rid = int(row.get("_record") or 0)
        raw = {c: row.get(c) for c in present}
        try:
            rec = _check(table, raw, refs, set(present))
            key = key_of(table, rec)
            if key in seen:
                raise _Reject("duplicate", D_DUPLICATE(record=seen[key], key=key_text(table, key)))
            old = stored.get(key)
            if old is not None:
                if mode == "create":
                    raise _Reject("conflicts_with_stored", EXISTS(table=table, key=key_text(table, key)))
                cols = present | ({"designation_id"} if table == "designations" else set())
                ch = _diff(table, old, rec, cols)
                if not ch:
                    seen[key] = rid
                    report.skipped += 1
                    continue
                if not update:
                    raise _Reject("conflicts_with_stored", D_CONFLICT(diff=diff_text(ch)))
                new = {**old, **{c: rec.get(c) for c in cols if c in _cols(table)}}
                updates.append((key, old, new, ch))
            else:
                if mode == "update":
                    raise _Reject("unknown_reference", NO_RECORD(table=table, key=key_text(table, key)))
                new = {c: rec.get(c) for c in _cols(table)}
                inserts.append((key, new, rid))
            seen[key] = rid
            _register_scope(table, new, refs)
            _extend_refs(table, new, refs)
        except _Reject as r:
            quarantine.append((rid, rid + header if header else rid, r.rule, r.detail, raw))
            report.rules[r.rule] = report.rules.get(r.rule, 0) + 1
            report.rejected.append((rid, rid + header if header else rid, r.rule, r.detail))
    # new scopes first (projects refer to them)
    for sc, ent in refs.new_scopes.items():
        rec = {c: None for c in _cols("scopes")}
        rec.update(scope_id=sc, enterprise_id=ent)
        _insert(con, "scopes", [rec], source, 0)
        audit.append(con, actor, "create", "scopes", sc, after=rec, source=source,
                     reason=f"registered from {table} {source}" + (f": {reason}" if reason else ""))
        report.new_scopes.append((sc, ent))
    if inserts:
        _insert(con, table, [n for _k, n, _r in inserts], source, None, [r for _k, _n, r in inserts])
        for key, new, _rid in inserts:
            audit.append(con, actor, "create", table, key_text(table, key) if isinstance(key, tuple) else key,
                         after=new, reason=reason, source=source)
            stored_out.append(new)
    for key, _old, new, ch in updates:
        _update(con, table, key, new)
        audit.append(con, actor, "update", table, key_text(table, key) if isinstance(key, tuple) else key,
                     changes=ch, after=new, reason=reason, source=source)
        report.changes.append((key_text(table, key) if isinstance(key, tuple) else str(key), ch))
        stored_out.append(new)
    for rid, line, rule, detail, raw in quarantine:
        d = detail.to_dict("en")
        con.execute('INSERT INTO quarantine ("table", source, record, line, rule, detail, code, params, raw) '
                    'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
                    [table, source, rid, line, rule, d["message"], d["code"],
                     json.dumps(d["params"], ensure_ascii=False, default=str),
                     json.dumps({c: (None if _is_null(v) else str(v)) for c, v in raw.items()},
                                ensure_ascii=False)])
    report.loaded += len(inserts)
    report.updated += len(updates)
    report.quarantined += len(quarantine)
    del spec
    return stored_out


def nothing_stored(report):
    """The message of a load that stored nothing because every record was rejected (exit code 2)."""
    rules = dict(getattr(report, "rules", None) or {})
    if not rules:
        return NOTHING_STORED_ANY(source=report.source, n=report.quarantined)
    return NOTHING_STORED(source=report.source, n=report.quarantined,
                          rules=[f"{k}: {v}" for k, v in sorted(rules.items())])


def stored_nothing(report) -> bool:
    """Every record of a load was rejected (and there was at least one)."""
    return (report.quarantined > 0 and report.loaded == 0 and report.skipped == 0
            and getattr(report, "updated", 0) == 0 and not report.already_loaded)


def _register_scope(table: str, rec: dict, refs: _Refs) -> None:
    if table not in ("projects", "designations"):
        return
    sc, ent = rec.get("scope"), rec.get("enterprise_id")
    if sc is None or ent is None or sc in refs.scopes or sc in refs.hierarchy or sc in refs.new_scopes:
        return
    refs.new_scopes[sc] = ent


def _extend_refs(table: str, rec: dict, refs: _Refs) -> None:
    if table == "enterprises":
        refs.enterprises.add(rec["enterprise_id"])
    elif table == "programmes":
        refs.programmes.add(rec["programme_id"])
        if rec.get("timezone"):
            refs.zones[rec["programme_id"]] = rec["timezone"]
    elif table == "projects":
        refs.projects[rec["project_id"]] = rec["enterprise_id"]
    elif table == "scopes":
        refs.scopes[rec["scope_id"]] = rec["enterprise_id"]


def _insert(con, table: str, recs: list[dict], source: str, record: int | None, records: list | None = None):
    cols = _cols(table)
    names = ", ".join(f'"{c}"' for c in cols)
    marks = ", ".join("?" for _ in cols)
    con.executemany(f'INSERT INTO "{table}" ({names}, _source, _record) VALUES ({marks}, ?, ?)',
                    [[r.get(c) for c in cols] + [source, records[i] if records else record]
                     for i, r in enumerate(recs)])


def _update(con, table: str, key, rec: dict) -> None:
    cols = [c for c in _cols(table) if c not in TABLES[table].key]
    kcols = TABLES[table].key
    kvals = list(key) if isinstance(key, tuple) else [key]
    sets = ", ".join(f'"{c}" = ?' for c in cols)
    where = " AND ".join(f'"{k}" IS NOT DISTINCT FROM ?' for k in kcols)
    con.execute(f'UPDATE "{table}" SET {sets} WHERE {where}', [rec.get(c) for c in cols] + kvals)


# ---------------------------------------------------------------------------------------------------------
# one record at a time (command line, API, dashboard)

def ensure_table(table: str) -> str:
    """``table`` if it is a register table; else :class:`zhizao.errors.InputError` naming them."""
    if table not in REGISTER_TABLES:
        raise InputError(NOT_REGISTER(table=table, tables=list(REGISTER_TABLES)))
    return table


_check_table = ensure_table


def set_store_zone(con, zone: str, *, actor: str | None = None, reason: str | None = None) -> str:
    """Set the register's time zone of the store (audited). Dates already stored do not change: they are
    calendar dates; the zone decides how time stamps with an offset and filter bounds meet them."""
    zone = check_zone(zone)
    ensure_register(con)
    old = store_zone(con)
    with transaction(con):
        con.execute("INSERT INTO register_settings (key, value) VALUES ('timezone', ?)", [zone])
        audit.append(con, actor or audit.default_actor(), "setting", "register_settings", "timezone",
                     changes={"timezone": (old, zone)}, after={"timezone": zone}, reason=reason)
    return zone


def parse_key(table: str, key) -> tuple | str:
    """A record key from text: the value for one-column keys, else a JSON array or ``a|b|c``."""
    _check_table(table)
    kcols = TABLES[table].key
    if len(kcols) == 1:
        return str(key)
    if isinstance(key, (list, tuple)):
        vals = list(key)
    else:
        text = str(key)
        try:
            vals = json.loads(text) if text.startswith("[") else text.split("|")
        except ValueError:
            vals = text.split("|")
    if len(vals) != len(kcols):
        raise InputError(f"the key of {table} is {', '.join(kcols)}: give {len(kcols)} values")
    out = []
    for c, v in zip(kcols, vals):
        col = TABLES[table].column(c)
        v = None if v in (None, "") else v
        if v is not None and col.type == "int":
            v = int(v)
        elif v is not None and col.vocabulary:
            v = vocabulary(col.vocabulary).normalise(v)
        out.append(v)
    return tuple(out)


def get_record(con, table: str, key) -> dict:
    """The current record with ``key``.

    Raises
    ------
    zhizao.errors.NotFound
    """
    _check_table(table)
    key = parse_key(table, key) if not isinstance(key, tuple) or len(TABLES[table].key) == 1 else key
    rec = _stored_records_where(con, table, key)
    if rec is None:
        raise NotFound(NO_RECORD(table=table, key=key_text(table, key)))
    return rec


def _stored_records_where(con, table: str, key) -> dict | None:
    kcols = TABLES[table].key
    kvals = list(key) if isinstance(key, tuple) else [key]
    cols = ", ".join(f'"{c}"' for c in _cols(table))
    where = " AND ".join(f'"{k}" IS NOT DISTINCT FROM ?' for k in kcols)
    df = con.execute(f'SELECT {cols} FROM "{table}" WHERE {where}', kvals).df()
    if df.empty:
        return None
    rec = {c: _py(df.iloc[0][c]) for c in _cols(table)}
    for c in TABLES[table].columns:
        if c.type == "date" and isinstance(rec[c.name], dt.datetime):
            rec[c.name] = rec[c.name].date()
    return rec


def _text_row(table: str, values: dict) -> dict:
    unknown = [c for c in values if c not in _cols(table) and c not in SCALED.get(table, {})]
    if unknown:
        raise InputError(UNKNOWN_COLUMN(table=table, column=unknown[0], columns=_cols(table)))
    row = {}
    for c, v in values.items():
        if c in SCALED.get(table, {}):
            _lbl, canon, f = SCALED[table][c]
            row[canon] = _scaled_text(v, f)
        else:
            row[c] = None if _is_null(v) else (v.isoformat() if isinstance(v, dt.date) else str(v))
    return row


def create_record(con, table: str, values: dict, *, actor: str | None = None, reason: str | None = None,
                  source: str = "form") -> dict:
    """Create one record (validated like a file's; audited).

    Raises
    ------
    zhizao.errors.InputError
        A rule is broken (the message names the rule and the detail).
    zhizao.errors.Conflict
        A record with this key exists.
    """
    _check_table(table)
    ensure_register(con)
    row = _text_row(table, values)
    return _one(con, table, row, set(row), actor, reason, source, mode="create")


def update_record(con, table: str, key, values: dict, *, actor: str | None = None, reason: str | None = None,
                  source: str = "form") -> tuple[dict, dict]:
    """Update columns of one record; returns ``(record after, changes)`` (no changes: nothing logged).

    Raises
    ------
    zhizao.errors.NotFound
        No such record.
    zhizao.errors.InputError
        A key column in ``values``, an unknown column, or a broken rule.
    """
    _check_table(table)
    ensure_register(con)
    key = parse_key(table, key) if not isinstance(key, tuple) else key
    old = get_record(con, table, key)
    for k in TABLES[table].key:
        if k in values and not _same(parse_value(table, k, values[k], store_zone(con))
                                     if not _is_null(values[k]) else None, old.get(k)):
            raise InputError(KEY_CHANGE(column=k, table=table))
    row = {c: (v.isoformat() if isinstance(v, dt.date) else (None if v is None else str(v)))
           for c, v in old.items()}
    row.update(_text_row(table, values))
    before = dict(old)
    rec = _one(con, table, row, set(_cols(table)), actor, reason, source, mode="update")
    return rec, _diff(table, before, rec, set(_cols(table)))


def _one(con, table, row, present, actor, reason, source, mode) -> dict:
    report = RegisterReport(table, source)
    row = {**row, "_record": 1}
    with transaction(con):
        stored = _apply(con, table, [row], present, report, update=True, actor=actor or audit.default_actor(),
                        reason=reason, source=source, header=0, mode=mode)
        if report.quarantined:
            _rid, _line, rule, detail = report.rejected[0]
            key = key_text(table, tuple(row.get(k) for k in TABLES[table].key)) \
                if len(TABLES[table].key) > 1 else row.get(TABLES[table].key[0])
            con.execute('DELETE FROM quarantine WHERE "table" = ? AND source = ?', [table, source])
            if rule == "conflicts_with_stored" and mode == "create":
                raise Conflict(detail)
            raise InputError(REJECTED(table=table, key=key, rule=rule, detail=detail))
    if stored:
        return stored[0]
    return get_record(con, table, tuple(row.get(k) for k in TABLES[table].key)
                      if len(TABLES[table].key) > 1 else row.get(TABLES[table].key[0]))


def dependents(con, table: str, key) -> list[tuple[str, str]]:
    """Records that refer to ``key`` of ``table``: [(table, key text)]."""
    out = []
    kv = key if not isinstance(key, tuple) else key[0]
    for t, col in DEPENDENTS.get(table, ()):
        kc = TABLES[t].key
        rows = con.execute(f'SELECT {", ".join(chr(34) + k + chr(34) for k in kc)} FROM "{t}" WHERE "{col}" = ?',
                           [kv]).fetchall()
        out += [(t, audit.record_key(list(r))) for r in rows]
    return out


def withdraw_record(con, table: str, key, *, actor: str | None = None, reason: str | None = None,
                    source: str = "form") -> dict:
    """Withdraw one record from the register (it stays in the history; the audit log keeps its last state).

    Raises
    ------
    zhizao.errors.NotFound
        No such record.
    zhizao.errors.Conflict
        Other records refer to it.
    zhizao.errors.InputError
        No reason given.
    """
    _check_table(table)
    ensure_register(con)
    key = parse_key(table, key) if not isinstance(key, tuple) else key
    if not reason or not str(reason).strip():
        raise InputError(REASON_NEEDED(table=table, key=key_text(table, key)))
    old = get_record(con, table, key)
    deps = [d for d in dependents(con, table, key) if d != (table, key_text(table, key))]
    if deps:
        raise Conflict(HAS_DEPENDENTS(table=table, key=key_text(table, key), n=len(deps),
                                      examples=[f"{t} {k}" for t, k in deps[:5]]))
    kcols = TABLES[table].key
    kvals = list(key) if isinstance(key, tuple) else [key]
    with transaction(con):
        con.execute(f'DELETE FROM "{table}" WHERE ' + " AND ".join(f'"{k}" IS NOT DISTINCT FROM ?' for k in kcols),
                    kvals)
        audit.append(con, actor or audit.default_actor(), "withdraw", table,
                     key_text(table, key) if isinstance(key, tuple) else key,
                     changes={c: (v, None) for c, v in old.items() if not _is_null(v)}, after=None, reason=reason,
                     source=source)
    return old


def history(con, table: str, key) -> pd.DataFrame:
    """The audit entries of one record, oldest first."""
    _check_table(table)
    key = parse_key(table, key) if not isinstance(key, tuple) else key
    return audit.entries(con, entity=table, record=key_text(table, key) if isinstance(key, tuple) else str(key))


def end_of_day(date, zone: str) -> pd.Timestamp:
    """The instant a register date ends (the next day's 00:00 in ``zone``), for "as it was on ``date``"."""
    d = parse_date(date, zone)
    if d is None:
        raise InputError("give a date")
    return pd.Timestamp(dt.datetime.combine(d + dt.timedelta(days=1), dt.time(0)), tz=zone)


def record_as_of(con, table: str, key, date) -> dict | None:
    """The record as it was at the end of ``date`` (a register date in the register's zone, or an instant):
    None when it did not exist (yet, or any more) then."""
    _check_table(table)
    key = parse_key(table, key) if not isinstance(key, tuple) else key
    until = _until(con, date)
    rec, _seq = audit.as_of(con, table, key_text(table, key) if isinstance(key, tuple) else str(key), until)
    return _typed(table, rec) if rec is not None else None


def _until(con, date) -> pd.Timestamp:
    if isinstance(date, str) and len(date.strip()) > 10:
        t = pd.Timestamp(date)
        return t.tz_localize(store_zone(con)) if t.tzinfo is None else t
    return end_of_day(date, store_zone(con))


def snapshot(con, table: str, date) -> pd.DataFrame:
    """The whole table as it was at the end of ``date`` (see :func:`record_as_of`)."""
    _check_table(table)
    recs = audit.snapshot(con, table, _until(con, date))
    return pd.DataFrame([_typed(table, r) for r in recs.values()], columns=_cols(table))


def _typed(table: str, rec: dict) -> dict:
    out = {}
    for c in TABLES[table].columns:
        v = rec.get(c.name)
        if v is not None and c.type == "date":
            v = dt.date.fromisoformat(str(v)[:10])
        out[c.name] = v
    return out


def status_history(con, project_id: str) -> list[dict]:
    """The status transitions of a project: [{status, date, at, actor, reason}] from the audit log."""
    rows = []
    h = history(con, "projects", project_id)
    last = None
    for e in h.itertuples(index=False):
        after = e.after or {}
        st = after.get("status")
        if st != last and st is not None:
            rows.append({"status": st, "date": after.get("status_date"), "at": e.changed_at, "actor": e.actor,
                         "reason": e.reason})
        last = st
    return rows


__all__ = [
    "HEADERS",
    "RegisterReport",
    "create_record",
    "dependents",
    "designation_id",
    "diff_text",
    "ensure_register",
    "ensure_table",
    "get_record",
    "history",
    "load_register_file",
    "nothing_stored",
    "parse_key",
    "record_as_of",
    "set_store_zone",
    "snapshot",
    "status_history",
    "stored_nothing",
    "update_record",
    "withdraw_record",
]
