"""Labels never cut: every text of the rendered Chinese (and English) charts lies inside its chart, as Chromium
lays them out (getBBox of each SVG text against the SVG's own box), and no label is shortened with an ellipsis.

Charts: the bulletin's and the programme page's (projects and investment by district and by year, declared
against verified per indicator) and the KPI report's (waterfall, Paretos, trends)."""

from __future__ import annotations

import re

import pytest
from browser_support import ARGS, CHROMIUM

import zhizao

CHECK = """() => {
  const out = [];
  document.querySelectorAll('svg').forEach((svg, k) => {
    const box = svg.getBoundingClientRect();
    svg.querySelectorAll('text').forEach(t => {
      const r = t.getBoundingClientRect();
      if (!t.textContent.trim() || r.width === 0) return;
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)
        out.push([k, t.textContent, [r.left, r.right, r.top, r.bottom], [box.left, box.right, box.top, box.bottom]]);
    });
  });
  return out;
}"""


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = b.new_page(viewport={"width": 1200, "height": 900})
        yield pg
        b.close()


def _charts(html: str) -> str:
    svgs = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    assert svgs
    return "<!DOCTYPE html><html><body>" + "".join(f"<div>{s}</div>" for s in svgs) + "</body></html>"


def _check(page, html: str) -> list:
    page.set_content(_charts(html))
    page.wait_for_timeout(50)
    return page.evaluate(CHECK)


@pytest.fixture(scope="module")
def programme(tmp_path_factory):

    from zhizao.demo import PROGRAMME_ORDER
    from zhizao.simulate import simulate_programme, write_programme

    d = tmp_path_factory.mktemp("charts")
    paths = write_programme(simulate_programme(n_projects=12, n_enterprises=8, seed=2, months_before=1,
                                               months_after=1, machines_per_project=1), d / "sim")
    ws = zhizao.connect(d / "p.duckdb")
    for t in PROGRAMME_ORDER:
        ws.ingest(t, paths[t])
    for pid in ("P0001", "P0002", "P0003"):
        ws.verify_project(pid, indicators=["production_efficiency", "defect_rate"])
    yield ws
    ws.close()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_bulletin_chart_labels_inside(page, programme, tmp_path, lang):
    from zhizao.portfolio import render_bulletin

    html = render_bulletin(programme, tmp_path, lang=lang, n_boot=50)["html"].read_text("utf-8")
    assert html.count("<svg") >= 3
    assert "…" not in "".join(re.findall(r"<text[^>]*>([^<]*)</text>", html))
    assert _check(page, html) == []


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_report_chart_labels_inside(page, tmp_path, lang):
    from zhizao.report import render_report
    from zhizao.simulate.plant import simulate_plant, write_plant

    tables = simulate_plant(machines=3, days=7, seed=1)
    tables.pop("truth")
    paths = write_plant(tables, tmp_path / "plant")
    with zhizao.connect(tmp_path / "plant.duckdb") as ws:
        for name in ("equipment", "products", "calendar", "states", "production", "energy", "labour", "quality"):
            ws.ingest(name, paths[name])
        html = render_report(ws, tmp_path / "r.html", lang=lang).read_text("utf-8")
    assert html.count("<svg") >= 4
    assert _check(page, html) == []


def test_the_check_finds_a_cut_label(page):
    page.set_content('<svg width="100" height="50"><text x="-40" y="20">生产效率提升</text>'
                     '<text x="10" y="40">OEE</text></svg>')
    found = page.evaluate(CHECK)
    assert [f[1] for f in found] == ["生产效率提升"]
