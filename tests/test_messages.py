"""The structured-message and error contracts (zhizao.messages, zhizao.errors, zhizao.i18n.render_message)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

import zhizao
from canonical import package_modules
from zhizao.errors import (
    Conflict,
    DataSufficiencyError,
    Forbidden,
    InputError,
    NotFound,
    RateLimited,
    StoreBusy,
    TooLarge,
    Unauthorized,
    Unsupported,
    ZhizaoError,
)
from zhizao.messages import KINDS, Message, define, dumps, loads, text

LOCALE = Path(zhizao.__file__).parent / "locale"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _import_all() -> None:
    for name in package_modules():
        importlib.import_module(name)


def test_every_declared_message_has_a_chinese_translation_with_the_same_placeholders():
    _import_all()
    kinds = {c: k for c, k in KINDS.items() if not c.startswith(("doc.", "test."))}
    assert kinds, "no message kinds declared"
    from zhizao.i18n import catalogue_files

    for lang in ("zh", "en"):
        cat = None
        for path in catalogue_files(lang):  # zhizao.po and the catalogues merged into it
            with path.open("rb") as f:
                part = read_po(f)
            if cat is None:
                cat = part
            else:
                for m in part:
                    if m.id and m.id not in cat:
                        cat[m.id] = m
        missing = sorted(c for c, k in kinds.items() if k.template not in cat)
        assert not missing, (lang, missing)
        if lang == "zh":
            for c, k in kinds.items():
                zh = cat[k.template].string
                assert zh and not cat[k.template].fuzzy, c
                assert set(PLACEHOLDER.findall(zh)) == set(PLACEHOLDER.findall(k.template)), c


def test_codes_are_dotted_and_unique_per_text():
    _import_all()
    for code in KINDS:
        assert re.fullmatch(r"[a-z_]+(\.[a-z0-9_]+)+", code), code
    with pytest.raises(ValueError):
        define("store.busy", "another text")


def test_message_renders_in_both_languages_with_parameters():
    from zhizao.store.db import STORE_BUSY

    m = STORE_BUSY(path="a.duckdb", pid=42)
    assert str(m) == ("the store a.duckdb is in use by another process (PID 42); stop it, or, if it is a zhizao "
                      "server, go through its API")
    assert m.text("zh").startswith("数据库 a.duckdb 正被另一进程（PID 42）占用")
    assert m.args == {"path": "a.duckdb", "pid": 42}


def test_list_and_nested_parameters_follow_the_language():
    inner = define("test.inner", "no data for %(elements)s")
    outer = define("test.outer", "%(kpi)s: %(why)s")
    m = outer(kpi="oee", why=inner(elements=["pq", "gq"]))
    assert m.text("en") == "oee: no data for pq, gq"
    assert m.text("zh") == "oee: no data for pq\u3001gq"  # untranslated test text, Chinese list separator


def test_messages_round_trip_through_json():
    inner = define("test.rt_inner", "%(n)s rows")
    outer = define("test.rt_outer", "table %(t)s: %(why)s")
    ms = [outer(t="states", why=inner(n=3)), text("test.free", "50% done")]
    back = loads(dumps(ms))
    assert back == ms
    assert [str(m) for m in back] == ["table states: 3 rows", "50% done"]
    # a stored message whose kind is not declared keeps its English text
    m = Message.from_dict({"code": "gone.kind", "params": {}, "message": "old 100% text"})
    assert str(m) == "old 100% text"


def test_a_kind_refuses_missing_parameters():
    k = define("test.needs", "%(a)s and %(b)s")
    with pytest.raises(TypeError):
        k(a=1)


@pytest.mark.parametrize("cls,status", [
    (InputError, 400), (TooLarge, 413), (Unsupported, 415), (Unauthorized, 401), (Forbidden, 403),
    (NotFound, 404), (Conflict, 409), (DataSufficiencyError, 422), (RateLimited, 429), (StoreBusy, 503)])
def test_error_classes_map_to_one_status_and_exit_code(cls, status):
    e = cls("some text")
    assert isinstance(e, ZhizaoError) and not isinstance(e, (ValueError, KeyError))
    assert e.status == status and e.exit_code == 2
    assert e.to_dict()["status"] == status and e.to_dict()["message"] == "some text"


def test_user_errors_of_the_stages_are_zhizao_errors():
    from zhizao.ingest.load import IngestError
    from zhizao.ingest.mapping import MappingError
    from zhizao.live.opcua import NodesError
    from zhizao.live.topics import TopicError
    from zhizao.server.accounts import AccountError

    for cls in (IngestError, MappingError, NodesError, TopicError, AccountError):
        assert issubclass(cls, InputError)
        assert not issubclass(cls, ValueError)


def test_busy_store_is_a_store_busy_error(tmp_path):
    import subprocess
    import sys
    import time

    from zhizao.store.db import open_db

    db = tmp_path / "held.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(db)!r}); "
                               "print('held', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.time()
        with pytest.raises(StoreBusy) as e:
            open_db(db)
        assert time.time() - t0 < 10
        assert e.value.args and f"PID {holder.pid}" in str(e.value)
    finally:
        holder.kill()
        holder.wait()


def test_missing_store_read_only_is_not_found(tmp_path):
    from zhizao.store.db import open_db

    with pytest.raises(NotFound):
        open_db(tmp_path / "none.duckdb", read_only=True)


def test_cli_error_contract_one_line_and_exit_codes(tmp_path, monkeypatch, capsys):
    """Bad input and a busy store exit 2, an internal error exits 1, each with one line and no traceback;
    --debug lets the internal error's traceback through."""
    from zhizao import api
    from zhizao.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["kpi", "--db", str(tmp_path / "none.duckdb")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zhizao: no store at") and "\n" not in err

    db = tmp_path / "s.duckdb"
    api.connect(db).close()

    def broken(*a, **k):
        raise RuntimeError("engine fault\nsecond line")

    monkeypatch.setattr(api.Workspace, "kpi", broken)
    with pytest.raises(SystemExit) as e:
        main(["kpi", "--db", str(db)])
    assert e.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("zhizao: internal error (RuntimeError: engine fault second line)") and "\n" not in err
    assert "Traceback" not in err
    with pytest.raises(RuntimeError):
        main(["kpi", "--db", str(db), "--debug"])
