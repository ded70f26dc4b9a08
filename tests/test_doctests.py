"""The ``>>>`` examples in the package's docstrings run as doctests, one test per module.

A docstring example is documentation a reader copies; running it keeps it true. Usage sketches that need the
reader's own files or a broker are written as literal blocks (``Example::``), not as ``>>>`` lines.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

from canonical import package_modules

MODULES = package_modules()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _with_examples(name: str) -> bool:
    module = importlib.import_module(name)
    return any(t.examples for t in doctest.DocTestFinder().find(module, name))


WITH_EXAMPLES = [m for m in MODULES if _with_examples(m)]


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)          # an example that writes a file writes it here, not in the checkout
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS, verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (printed above)"


def test_the_examples_are_found():
    # the ISO 22400 time model (kpi/model.py) carries worked examples; a refactor must not drop them
    assert "zhizao.kpi.model" in WITH_EXAMPLES
    assert len(WITH_EXAMPLES) >= 10
