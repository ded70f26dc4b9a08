"""Shared helpers: build a store from small canonical tables written as CSV."""

from __future__ import annotations

import pytest

from canonical import build


@pytest.fixture
def make_ws(tmp_path):
    opened = []

    def _make(tables, **kw):
        ws = build(tmp_path, tables, db=f"t{len(opened)}.duckdb", **kw)
        opened.append(ws)
        return ws

    yield _make
    for ws in opened:
        ws.close()
