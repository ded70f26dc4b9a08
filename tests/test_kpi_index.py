"""The KPI index of docs/reference/iso22400.md cannot rot (issue 10: a newcomer finds any KPI's formula, clause,
reference and test within a minute from the README).

Static and cheap: the index is read as text, the functions and tests it names are looked up (imported, not run),
and every relative link of the README and the reference pages must reach a file and, with an anchor, a heading.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pandas as pd
import pytest

from zhizao.kpi import kpis

ROOT = Path(__file__).resolve().parent.parent
INDEX = ROOT / "docs" / "reference" / "iso22400.md"
LINK = re.compile(r"\[([^\]]*(?:\[[^\]]*\][^\]]*)*)\]\(([^)\s]+)\)")  # [text](target), text may hold [param]
REF_LINK = re.compile(r"\]\[([^\]]+)\]")  # [text][label]
CODE = re.compile(r"`([^`]+)`")


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(md: Path) -> set[str]:
    out, fenced = set(), False
    for line in md.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#+ (.*)", line)):
            out.add(_slug(m.group(1)))
    return out


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:] if end < 0 else text[start:end]


def _tables(section: str) -> list[list[dict[str, str]]]:
    """The markdown tables of a section, each a list of rows keyed by the header cells."""
    tables: list[list[dict[str, str]]] = []
    header: list[str] | None = None
    for line in section.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if header is None:
                header = cells
                tables.append([])
            elif not set(line) <= set("|-: "):
                assert len(cells) == len(header), line
                tables[-1].append(dict(zip(header, cells)))
        else:
            header = None
    return tables


INDEX_TEXT = INDEX.read_text(encoding="utf-8")
KPI_SECTION = _section(INDEX_TEXT, "## KPI index")
ROWS, NOT_COMPUTABLE = _tables(KPI_SECTION)
BY_NAME = {r["KPI"]: r for r in ROWS}
CATALOGUE = kpis.catalogue(pd.DataFrame())


def test_every_kpi_of_the_catalogue_has_one_row():
    computable = [n for n in CATALOGUE["name"] if n not in {name for name, _ in kpis.UNAVAILABLE.values()}]
    assert len(computable) == len(kpis.KPI_NAMES) + len(kpis.CAPABILITY_KPIS)
    assert [r["KPI"] for r in ROWS] == [n for n in computable], "one row per KPI, in the catalogue's order"
    assert {r["KPI"]: r["missing element"] for r in NOT_COMPUTABLE} == dict(kpis.UNAVAILABLE.values())
    for r in ROWS + NOT_COMPUTABLE:
        number = CATALOGUE.set_index("name").loc[r["KPI"], "number"]
        assert r["#"] == ("" if pd.isna(number) else str(number)), r["KPI"]


@pytest.mark.parametrize("name", list(BY_NAME))
def test_a_rows_formula_and_clause_are_the_catalogues(name):
    row, cat = BY_NAME[name], CATALOGUE.set_index("name").loc[name]
    assert row["formula"] == cat["formula"]
    assert row["clause"] == ("-" if pd.isna(cat["number"]) else f"6, KPI {cat['number']}")


@pytest.mark.parametrize("name", list(BY_NAME))
def test_a_rows_function_exists_and_cites_its_clause_unit_and_references(name):
    row = BY_NAME[name]
    ((text, target),) = LINK.findall(row["function"])
    module_name, _, func_name = CODE.fullmatch(text).group(1).partition(".")  # type: ignore[union-attr]
    module = importlib.import_module(f"zhizao.kpi.{module_name}")
    func = getattr(module, func_name)
    assert callable(func)
    assert (INDEX.parent / target).resolve() == Path(inspect.getfile(module)).resolve()
    # the docstring (the module's for the capability indices, which share one function) gives what a reader
    # looks for: the clause, the unit and a References section
    doc = inspect.getdoc(func) or ""
    if module_name == "capability":
        doc += "\n" + (inspect.getdoc(module) or "")
        assert "KPIs 19" in doc and row["unit"] in doc
    else:
        assert f"[{row['unit']}]" in doc, (name, row["unit"])
        if row["clause"] != "-":
            assert f"clause 6, KPI {row['#']}" in doc
    assert "References\n----------" in doc, name


@pytest.mark.parametrize("name", list(BY_NAME))
def test_a_rows_tests_exist_and_run_the_kpi(name):
    row = BY_NAME[name]
    links = LINK.findall(row["test"])
    assert links, name
    for text, target in links:
        path, _, test = CODE.fullmatch(text).group(1).partition("::")  # type: ignore[union-attr]
        assert (ROOT / path).resolve() == (INDEX.parent / target).resolve()
        func_name, _, param = test.partition("[")
        module = importlib.import_module(Path(path).stem)
        func = getattr(module, func_name)
        if param:
            values = [str(v) for m in getattr(func, "pytestmark", []) if m.name == "parametrize"
                      for v in m.args[1]]
            assert param.rstrip("]") in values, (name, test)
        # the test names the KPI it asserts (a parametrized id, or the KPI's name in the test's source)
        src = inspect.getsource(func)
        assert param.rstrip("]") == name or name in src, (name, test)


def test_every_reference_label_of_the_index_is_defined():
    labels = set(REF_LINK.findall(KPI_SECTION))
    assert labels, "the index cites its sources"
    defined = set(re.findall(r"^\[([^\]]+)\]: https?://\S+$", INDEX_TEXT, flags=re.M))
    assert labels <= defined, labels - defined
    for r in ROWS:
        assert r["reference"], r["KPI"]


@pytest.mark.parametrize("page", ["README.md", "CONTRIBUTING.md", "docs/reference/README.md",
                                  "docs/reference/iso22400.md", "docs/reference/transformation.md",
                                  "docs/reference/verification.md"])
def test_relative_links_reach_a_file_and_a_heading(page):
    md = ROOT / page
    for _text, target in LINK.findall(md.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (md.parent / path) if path else md
        assert dest.exists(), (page, target)
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), (page, target)


def test_the_readme_leads_to_the_kpi_index():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = readme[:readme.index("\n## ")]  # before the first section: seen without scrolling
    assert "(docs/reference/iso22400.md#kpi-index-iso-22400-2-clause-6)" in head
    assert "kpi-index-iso-22400-2-clause-6" in _anchors(INDEX)
