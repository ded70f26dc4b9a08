"""Uploads into the ingest stage: safe file names, size limits, tenant checks, one transaction per file.

An upload is saved under a private temporary folder as ``<upload id>_<file name>`` (so the quarantine and the
provenance columns name the upload), checked by :meth:`zhizao.server.access.TenantView.check_upload`, and
loaded with :meth:`zhizao.Workspace.ingest` while the server's write lock is held. A refused or failed upload
stores nothing; the temporary folder is removed in every case.

Limits (:mod:`zhizao.limits`, one place): the bytes sent (``max_upload_bytes``, or the server's
``--max-upload-mb``), the bytes a ``.gz`` file unpacks to (``max_decompressed_bytes``: it is unpacked here,
counting, before anything parses it), the columns and the length of the header line (``max_columns``,
``max_line_bytes``: checked on the first line before DuckDB sniffs the file), the mapping file's size, and the
load's time (``max_upload_seconds``: past it the load is interrupted and rolled back, the write lock released,
and the client told 413). The temporary folders are named ``zhizao-upload-<pid>-...``; a server starting
removes those of processes that no longer run (:func:`clean_stale_folders`), so a crash leaves nothing behind
for long.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import shutil
import tempfile
import time
import unicodedata
import zlib
from pathlib import Path

import duckdb

from zhizao.errors import ZhizaoError
from zhizao.ingest.load import TOO_SLOW, IngestError, Watchdog, check_file
from zhizao.ingest.mapping import Mapping, MappingError, MappingSqlError, bundled_mapping, load_mapping
from zhizao.limits import Limits, current
from zhizao.messages import KINDS, Message, define
from zhizao.server.access import REGISTRY_TABLES, TenantView, derive_access
from zhizao.server.errors import BadRequest, Forbidden, TooLarge, Unsupported

DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".data", ".parquet", ".pq", ".csv.gz", ".tsv.gz", ".txt.gz", ".data.gz")
MAPPING_SUFFIXES = (".yaml", ".yml")
FOLDER_PREFIX = "zhizao-upload-"
_NAME_RE = re.compile(r"^[\w.\-+() ]+$", re.UNICODE)
CHUNK = 1 << 20

NO_NAME = define("uploads.no_name", "the uploaded file has no name")
BAD_NAME = define("uploads.bad_name", "file name '%(name)s' is not allowed: give a plain file name such as "
                                      "states.csv (letters, digits, '.', '-', '_'; no folders)")
BAD_SUFFIX = define("uploads.bad_suffix", "file '%(name)s': only %(suffixes)s files are accepted")
TOO_LARGE = define("uploads.too_large", "the file is larger than the limit of %(mb)s MB")
EMPTY = define("uploads.empty", "file '%(name)s' is empty")
NOT_PARQUET = define("uploads.not_parquet", "file '%(name)s' is not a Parquet file")
NOT_GZIP = define("uploads.not_gzip", "file '%(name)s' is not gzip-compressed")
NOT_TEXT = define("uploads.not_text", "file '%(name)s' is not a text (CSV) file")
MAPPING_TWICE = define("uploads.mapping_twice", "give a mapping name or a mapping file, not both")
UNKNOWN_MAPPING = define("uploads.unknown_mapping", "unknown mapping '%(name)s'; bundled mappings: %(known)s")
MALFORMED_MAPPING = define("uploads.malformed_mapping", "%(name)s: malformed mapping file: %(error)s")
SQL_MAPPING_ADMINS = define("uploads.sql_mapping_admins",
                            "%(name)s: SQL expressions in a mapping run inside the store; only administrators may "
                            "upload such mappings (use a bundled mapping or column names)")
SKIP_WHOLE = define("uploads.skip_whole", "%(name)s: read.skip must be a whole number")
CANNOT_LOAD = define("uploads.cannot_load", "%(name)s: cannot load: %(error)s")
UNPACKS_TOO_LARGE = define("uploads.unpacks_too_large", "file '%(name)s' unpacks to more than the limit of "
                                                         "%(limit)s bytes")
BAD_GZIP = define("uploads.bad_gzip", "file '%(name)s' is not a valid gzip file: %(error)s")


def bundled_mappings() -> dict[str, Path]:
    """Mapping files shipped with zhizao, by name."""
    folder = bundled_mapping("x").parent
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def safe_name(name: str | None, suffixes=DATA_SUFFIXES) -> str:
    """The file name if it is a plain name with an allowed suffix; 400 / 415 otherwise.

    Folders, ``..``, hidden names, control characters and names longer than 120 characters are refused (no
    path of the client ever reaches the file system).
    """
    if not name or not isinstance(name, str):
        raise BadRequest(NO_NAME)
    name = unicodedata.normalize("NFC", name)
    if ("/" in name or "\\" in name or "\x00" in name or ".." in name or name.startswith((".", " "))
            or len(name) > 120 or not _NAME_RE.match(name)):
        raise BadRequest(BAD_NAME, name=name)
    if not name.lower().endswith(suffixes):
        raise Unsupported(BAD_SUFFIX, name=name, suffixes=list(suffixes))
    return name


def _copy(src, out, limit: int, too_large: TooLarge) -> int:
    """Copy ``src`` to ``out`` in chunks, counting; ``too_large`` is raised past ``limit`` bytes (nothing more
    is written). Returns the bytes copied."""
    n = 0
    while chunk := src.read(CHUNK):
        n += len(chunk)
        if n > limit:
            raise too_large
        out.write(chunk)
    return n


def save(upload, dest: Path, limit: int) -> int:
    """Copy an uploaded file to ``dest``; 413 past ``limit`` bytes, 400 when empty. Returns the size."""
    src = upload.file
    src.seek(0)
    with open(dest, "wb") as out:
        n = _copy(src, out, limit, TooLarge(TOO_LARGE, mb=round(limit / 1e6)))
    if n == 0:
        raise BadRequest(EMPTY, name=dest.name.split('_', 1)[-1])
    return n


def sniff(path: Path, name: str) -> None:
    """400 when the content does not match the suffix (Parquet magic, gzip magic, text without NUL bytes)."""
    with open(path, "rb") as f:
        head = f.read(65536)
    low = name.lower()
    if low.endswith((".parquet", ".pq")):
        if not head.startswith(b"PAR1"):
            raise BadRequest(NOT_PARQUET, name=name)
    elif low.endswith(".gz"):
        if not head.startswith(b"\x1f\x8b"):
            raise BadRequest(NOT_GZIP, name=name)
    elif b"\x00" in head:
        raise BadRequest(NOT_TEXT, name=name)


def unpack(path: Path, dest: Path, limit: int, name: str) -> int:
    """Unpack the gzip file ``path`` to ``dest``, counting: 413 past ``limit`` bytes (nothing more is written),
    400 for a broken archive. Returns the unpacked size."""
    try:
        with gzip.open(path, "rb") as src, open(dest, "wb") as out:
            n = _copy(src, out, limit, TooLarge(UNPACKS_TOO_LARGE, name=name, limit=limit))
    except (OSError, EOFError, zlib.error) as e:
        raise BadRequest(BAD_GZIP, name=name, error=str(e).splitlines()[0] if str(e) else type(e).__name__) \
            from None
    if n == 0:
        raise BadRequest(EMPTY, name=name)
    return n


def new_folder() -> Path:
    """A private temporary folder for one upload, named after this process (see :func:`clean_stale_folders`)."""
    return Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_folders(root: str | Path | None = None, older_than: float = 3600.0) -> int:
    """Remove upload folders left behind by processes that died (a crash, a SIGKILL): those named after a
    process that no longer runs, and unnamed ones older than ``older_than`` seconds. Returns how many."""
    root = Path(root or tempfile.gettempdir())
    n = 0
    for p in root.glob(FOLDER_PREFIX + "*"):
        if not p.is_dir() or p.is_symlink():
            continue
        m = re.match(re.escape(FOLDER_PREFIX) + r"(\d+)-", p.name)
        try:
            stale = not _alive(int(m.group(1))) if m else time.time() - p.stat().st_mtime > older_than
        except OSError:
            continue
        if stale:
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n


def read_mapping(access, mapping_name: str | None, mapping_upload, folder: Path,
                 limits: Limits | None = None) -> tuple[Mapping | None, str | None]:
    """The mapping of an upload: a bundled one by name, or an uploaded YAML file (SQL expressions only for
    administrators; they are confined anyway: :func:`zhizao.ingest.mapping.check_expression`, evaluated in
    a sandbox)."""
    limits = limits or current()
    if mapping_name and mapping_upload is not None:
        raise BadRequest(MAPPING_TWICE)
    if mapping_name:
        known = bundled_mappings()
        if mapping_name not in known:
            raise BadRequest(UNKNOWN_MAPPING, name=mapping_name, known=list(known))
        return load_mapping(known[mapping_name]), mapping_name
    if mapping_upload is None:
        return None, None
    name = safe_name(mapping_upload.filename, MAPPING_SUFFIXES)
    path = folder / ("mapping_" + name)
    save(mapping_upload, path, limits.max_mapping_bytes)
    try:
        m = load_mapping(path, limits.max_mapping_bytes)
    except MappingSqlError as e:
        if not access.sql_mappings:
            raise Forbidden(SQL_MAPPING_ADMINS, name=name) from None
        raise BadRequest(_clean(e, {str(path): name})) from None
    except TooLarge as e:
        raise TooLarge(_clean(e, {str(path): name})) from None
    except MappingError as e:
        raise BadRequest(_clean(e, {str(path): name})) from None
    except (ValueError, TypeError, AttributeError) as e:  # the loader's checks missed a malformed document
        raise BadRequest(MALFORMED_MAPPING, name=name, error=str(e)) from None
    if any("sql" in spec for spec in m.columns.values()) and not access.sql_mappings:
        raise Forbidden(SQL_MAPPING_ADMINS, name=name)
    if "skip" in m.read:
        try:
            int(m.read["skip"])
        except (TypeError, ValueError):
            raise BadRequest(SKIP_WHOLE, name=name) from None
    m.source = name
    return m, name


def touched_by(access, table: str) -> set[str]:
    """What a load into ``table`` by a principal of ``access`` changes (domains of
    :meth:`zhizao.server.store.Store.touch`): the register, the data of the principal's enterprises, or, for the
    equipment table (it decides who sees what) and for principals of every enterprise, all data."""
    if table in REGISTRY_TABLES:
        return {"register"}
    if table == "equipment" or access.enterprises is None:
        return {"data:*"}
    return {f"data:{e}" for e in access.enterprises}


def _clean(error: ZhizaoError, replacements: dict) -> Message:
    """The message of ``error`` with server paths replaced (in its parameters, and in the text of a message of
    no declared kind)."""
    def fix(v):
        if isinstance(v, str):
            for a, b in replacements.items():
                v = v.replace(a, b)
            return v
        if isinstance(v, Message):
            return msg(v)
        if isinstance(v, tuple):
            return tuple(fix(x) for x in v)
        return v

    def msg(m: Message) -> Message:
        kind = KINDS.get(m.code)
        template = m.template if kind is not None and kind.template == m.template else fix(m.template)
        return Message(m.code, template, tuple((k, fix(v)) for k, v in m.params))
    return msg(error.message)


def ingest_upload(store, principal, table: str, upload, mapping_name: str | None = None, mapping_upload=None,
                  limit: int | None = None, limits: Limits | None = None) -> dict:
    """Check and load one uploaded file within ``limits`` (``limit``: the bytes sent, default
    ``max_upload_bytes``); returns the load report with the upload's quarantined records."""
    limits = limits or getattr(store.ws, "limits", None) or current()
    limit = limits.max_upload_bytes if limit is None else limit
    folder = new_folder()
    try:
        name = safe_name(upload.filename)
        upload_id = "u" + secrets.token_hex(6)
        source = f"{upload_id}_{name}"
        path = folder / source
        size = save(upload, path, limit)
        sniff(path, name)
        if name.lower().endswith(".gz"):  # unpacked here, counting: DuckDB never sees more than the limit
            plain = folder / ("unpacked_" + source[:-3])
            unpack(path, plain, limits.max_decompressed_bytes, name)
            path.unlink()
            path = plain
        with store.read() as rd:
            access = derive_access(principal, rd.con)
        mapping, mapping_label = read_mapping(access, mapping_name, mapping_upload, folder, limits)

        repl = {str(path): name, str(folder) + "/": "", source: name, path.name: name}
        # columns and header length, before anything parses the file (and before the write lock)
        try:
            check_file(path, mapping, limits, name)
        except ZhizaoError as e:
            raise type(e)(_clean(e, repl)) from None
        with store.write() as ws:
            # the time limit counts from here: the tenant check and the load, both under the write lock
            deadline = time.monotonic() + limits.max_upload_seconds
            with store.read() as rd:  # a snapshot taken under the write lock: nothing changes until we load
                view = TenantView(rd, derive_access(principal, rd.con))
                dog = Watchdog(rd.con, limits.max_upload_seconds).start()
                try:
                    view.check_upload(table, path, mapping)
                except (IngestError, duckdb.Error) as e:
                    if dog.fired:
                        raise TooLarge(TOO_SLOW, source=name, seconds=limits.max_upload_seconds) from None
                    if isinstance(e, IngestError):
                        raise type(e)(_clean(e, repl)) from None
                    raise BadRequest(_clean(BadRequest(CANNOT_LOAD, name=name, error=str(e).splitlines()[0]),
                                            repl)) from None
                finally:
                    dog.stop()
            try:  # past the time limit: interrupted and rolled back (TooLarge); the lock is released on the way out
                report = ws.ingest(table, path, mapping=mapping, timeout=max(0.001, deadline - time.monotonic()),
                                   source=source, actor=f"{principal.kind}:{principal.name}",
                                   reason=f"upload {upload_id}")[0]
            except ZhizaoError as e:
                raise type(e)(_clean(e, repl)) from None
            except duckdb.Error as e:
                raise BadRequest(_clean(BadRequest(CANNOT_LOAD, name=name, error=str(e).splitlines()[0]), repl)
                                 ) from None
            changed = report.loaded or getattr(report, "updated", 0) or getattr(report, "new_scopes", None)
            touched = touched_by(view.access, table) if changed else set()
            store.touch(*touched)
            if changed and table in ("states", "production"):  # records added to these equipment, nothing else
                store.touch_equipment(e for (e,) in ws.con.execute(
                    f'SELECT DISTINCT equipment_id FROM "{table}" WHERE _source = ?', [source]).fetchall())
            a = view.access
            ent = sorted(a.enterprises)[0] if a.enterprises is not None and len(a.enterprises) == 1 else None
            site = sorted(a.sites)[0] if a.sites is not None and len(a.sites) == 1 else None
            ws.con.execute(
                """INSERT INTO server_uploads (upload_id, source, file_name, "table", principal, enterprise_id,
                   site, mapping, bytes, loaded, quarantined, skipped, already_loaded)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [upload_id, source, name, table, f"{principal.kind}:{principal.name}", ent, site, mapping_label,
                 size, report.loaded, report.quarantined, report.skipped, report.already_loaded])
            q = ws.con.execute("""SELECT record, line, rule, detail, CAST(raw AS VARCHAR) AS raw FROM quarantine
                                  WHERE source = ? ORDER BY record LIMIT 1000""", [source]).df()
        rows = [{"record": int(r.record) if r.record == r.record else None,
                 "line": int(r.line) if r.line == r.line else None, "rule": r.rule, "detail": r.detail,
                 "raw": json.loads(r.raw) if isinstance(r.raw, str) else None} for r in q.itertuples()]
        return {"upload_id": upload_id, "table": table, "file": name, "mapping": mapping_label, "bytes": size,
                "loaded": report.loaded, "quarantined": report.quarantined, "skipped": report.skipped,
                "already_loaded": report.already_loaded, "quarantine": rows,
                "message": str(report).replace(source, name), "touched": touched}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
