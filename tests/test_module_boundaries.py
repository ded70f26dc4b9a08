"""Module boundaries: no module imports another module's private names.

A name with a leading underscore is private to its module: it may change or go without notice, so a module that
needs it from elsewhere gets it under a public name (issue 11: verification imported ``_ms`` from the KPI
elements). The test reads every module of the package, resolves relative imports, and lists each
``from X import _name`` where X is another module, and each ``X._name`` read through an imported module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import zhizao

SRC = Path(zhizao.__file__).resolve().parent


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def private_imports(root: Path = SRC) -> list[str]:
    """``file:line: what`` for every private name of another module under root that a module imports or reads."""
    pkg = root.name

    def is_module(dotted: str) -> bool:
        rel = Path(*dotted.split("."))
        return (root.parent / rel.with_suffix(".py")).exists() or (root.parent / rel / "__init__.py").exists()

    found = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        where = path.relative_to(root.parent)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names = {}  # local name -> the dotted name of the package's object it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _resolve(node, module, path.name == "__init__.py")
                for alias in node.names:
                    if _private(alias.name) and source != module and not is_module(f"{source}.{alias.name}"):
                        found.append(f"{where}:{node.lineno}: from {source} import {alias.name}")
                    if source.split(".")[0] == pkg:
                        names[alias.asname or alias.name] = f"{source}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == pkg:
                        names[alias.asname or pkg] = alias.name if alias.asname else pkg
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                head = _dotted(node.value)
                if head is None or head.split(".")[0] not in names:
                    continue
                first, *rest = head.split(".")
                target = ".".join([names[first], *rest])
                if target != module and is_module(target):
                    found.append(f"{where}:{node.lineno}: {target}.{node.attr}")
    return found


def test_no_module_imports_another_modules_private_names():
    assert private_imports() == []


def test_the_check_finds_each_kind_of_private_import(tmp_path):
    pkg = tmp_path / "zhizao"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("from .b import _x\n")
    (pkg / "a" / "b.py").write_text("_x = 1\nfrom . import c\n\ndef f():\n    return c._y\n")
    (pkg / "a" / "c.py").write_text("_y = 2\nfrom zhizao.a.b import _x as public\nfrom zhizao.a.b import f\n")
    (pkg / "d.py").write_text("import zhizao.a.b as m\nimport zhizao.a.c\nfrom zhizao.a.c import __doc__\n"
                              "v = m._x + zhizao.a.c._y\n_z = 3\nw = _z\n")
    (pkg / "e.py").write_text("import zhizao.d\nfrom zhizao import d\nfrom zhizao.a import c as _c\n"
                              "u = d.w + _c.f\n")
    found = sorted(f.split(": ", 1)[1] for f in private_imports(pkg))
    assert found == sorted(["from zhizao.a.b import _x", "zhizao.a.c._y", "from zhizao.a.b import _x",
                            "zhizao.a.b._x", "zhizao.a.c._y"])


def test_every_rich_console_prints_data_as_it_is():
    """Rich turns ``:abc:`` into an emoji by default: a broker ``127.0.0.1:abc:`` or an id ``:ok:`` would be
    printed as something else. Every console of the package is made with ``emoji=False``."""
    import re

    bad = []
    for path in sorted(SRC.rglob("*.py")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bConsole\(", line) and "emoji=False" not in line:
                bad.append(f"{path.relative_to(SRC)}:{i}: {line.strip()}")
    assert not bad, bad
