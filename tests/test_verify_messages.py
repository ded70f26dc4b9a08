"""Every text a verification shows a reader is a structured message, translated with it (issue 11).

A result's method and interval method, its checks and notes, the model's failed criteria and the words inside
them are messages; no English text enters a message as a bare string parameter, where it would stay English
in a Chinese page. Three checks of that kind: a static one over the whole package (no message kind is called
with a literal English text), one over the results of every simulator scenario (no message parameter holds
English prose), and the dashboard's Chinese project page (no English method or warning).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import zhizao
from test_verify_scenarios import SEEDS, programmes  # noqa: F401  (the module's fixture)
from zhizao.messages import Message
from zhizao.verify import checks as C
from zhizao.verify.methods import INTERVALS, METHODS

SRC = Path(zhizao.__file__).resolve().parent
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PROSE = re.compile(r"[A-Za-z]+ [A-Za-z]+")
#: Parameters that hold data, not zhizao's words (a recorded adjustment's reason is the engineer's text).
DATA_PARAMS = {"reason"}


def _literal_text(node: ast.AST) -> bool:
    """Whether ``node`` is (or contains) a literal text that is neither an identifier nor free of letters."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(re.search("[A-Za-z]", node.value)) and not IDENTIFIER.match(node.value)
    if isinstance(node, ast.JoinedStr):  # an f-string: its literal parts
        return any(isinstance(v, ast.Constant) and re.search("[A-Za-z]", v.value) for v in node.values)
    if isinstance(node, ast.IfExp):
        return _literal_text(node.body) or _literal_text(node.orelse)
    if isinstance(node, (ast.List, ast.Tuple)):
        return any(_literal_text(e) for e in node.elts)
    if isinstance(node, ast.BoolOp):
        return any(_literal_text(v) for v in node.values)
    return False


def literal_message_texts(root: Path = SRC) -> list[str]:
    """``file:line: KIND(param=...)`` for each call of a message kind with a literal English text parameter."""
    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(root.rglob("*.py"))}
    kinds = set()  # names bound to message kinds (define(...), or a dict of them)
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                    isinstance(c, ast.Call) and getattr(c.func, "id", getattr(c.func, "attr", None)) == "define"
                    for c in ast.walk(node.value)):
                kinds |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    found = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = (f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute)
                    else f.value.id if isinstance(f, ast.Subscript) and isinstance(f.value, ast.Name) else None)
            if name in kinds and name != "define":
                found += [f"{path.relative_to(root.parent)}:{node.lineno}: {name}({k.arg}="
                          f"{ast.unparse(k.value)[:60]})" for k in node.keywords if k.arg and _literal_text(k.value)]
    return found


def test_no_message_kind_is_given_a_literal_english_text():
    assert literal_message_texts() == []


def test_the_static_check_finds_literal_texts(tmp_path):
    pkg = tmp_path / "zhizao"
    pkg.mkdir()
    (pkg / "a.py").write_text(
        'from zhizao.messages import define\nK = define("x.k", "%(what)s")\nKINDS = {"k": define("x.j", "j")}\n'
        'K(what="no data")\nK(what=f"energy ({c})")\nK(what=["none", "a b"])\nKINDS["k"](what="x y" if a else b)\n'
        'K(what="kwh")\nK(what=c)\nK(what=f"{n:.3g}")\nK(what="12.3 %")\n')
    assert [f.split(": ", 1)[1] for f in literal_message_texts(pkg)] == [
        "K(what='no data')", "K(what=f'energy ({c})')", "K(what=['none', 'a b'])",
        "KINDS(what='x y' if a else b)"]


def test_words_that_enter_messages_are_declared():
    tree = ast.parse((SRC / "verify" / "indicators.py").read_text(encoding="utf-8"))
    literal = {n.args[0].value for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
               and n.func.attr == "word" and n.args and isinstance(n.args[0], ast.Constant)}
    assert literal and literal <= set(C.WORDS)
    # the words passed as variables: periods, outage kinds, ratio bases, granularities
    assert {"baseline", "reporting", "counter", "meter", "time", "production hours", "produced units", "hour",
            "day", "week", "month"} <= set(C.WORDS)


def _bare_prose(m: Message, path=()):
    for k, v in m.params:
        yield from _value_prose(v, path + (f"{m.code}.{k}",), k)


def _value_prose(v, path, key):
    if isinstance(v, Message):
        yield from _bare_prose(v, path)
    elif isinstance(v, tuple):
        for x in v:
            yield from _value_prose(x, path, key)
    elif isinstance(v, str) and key not in DATA_PARAMS and PROSE.search(v):
        yield f"{'/'.join(path)} = {v!r}"


def _messages(r):
    yield from (c.message for c in r.checks)
    yield from r.notes
    yield from (m for m in (r.estimand, r.method_message, r.interval_message) if m is not None)
    yield from (m for m in (r.fit or {}).get("failed", []) if isinstance(m, Message))


@pytest.mark.parametrize("scenario", list(SEEDS))
def test_every_text_of_a_result_is_a_translated_message(programmes, scenario):  # noqa: F811
    _ws, _truth, res = programmes(scenario)
    assert res
    for r in res:
        assert isinstance(r.method_message, Message) and r.method == str(r.method_message)
        assert r.method_text("zh") != r.method_text("en"), r.method
        if r.interval_method is not None:
            assert isinstance(r.interval_message, Message) and r.interval_method == str(r.interval_message)
            assert r.interval_text("zh") != r.interval_text("en"), r.interval_method
        bare = [b for m in _messages(r) for b in _bare_prose(m)]
        assert not bare, (r.indicator, bare)
        # the messages survive storage
        back = type(r).from_dict(r.to_dict())
        assert back.method_text("zh") == r.method_text("zh") and back.interval_text("zh") == r.interval_text("zh")


def test_every_method_and_interval_message_is_translated():
    for kind in list(METHODS.values()) + list(INTERVALS.values()):
        params = {p: "x" for p in re.findall(r"%\((\w+)\)s", kind.template)}
        m = kind(**params)
        assert m.text("zh") != m.text("en"), kind.code
