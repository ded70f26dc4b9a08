"""The dashboard in a real browser: log in, plant view, drill-down, language switch, upload with its
quarantine, a project, the programme and its bulletin.

Set ZHIZAO_SCREENSHOTS=DIR to keep a screenshot of each page in DIR (docs/screenshots is made that way).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
from browser_support import ARGS, CHROMIUM

from test_server_support import PASSWORD, clone, csv_bytes

#: the application behind each server URL's port (a test changes a setting of its server)
APPS: dict = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    from zhizao.server.app import create_app

    db = os.environ.get("ZHIZAO_BROWSER_DB") or clone(tmp_path_factory.mktemp("browser") / "store.duckdb")
    app = create_app(db, warm=False)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.time() + 30
    while not srv.started:
        assert time.time() < deadline and t.is_alive(), "server did not start"
        time.sleep(0.1)
    APPS[port] = app
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(timeout=30)
    app.state.server.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("ZHIZAO_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def shot(page, name):
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    return shot


def _login(page, base, user, lang=None):
    page.goto(base + "/plant" + (f"?lang={lang}" if lang else ""))
    assert "/login" in page.url
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url("**/plant**")


def _images_loaded(page) -> bool:
    return page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")


def test_plant_view_drill_down_language_and_upload(server, browser, shots):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server + "/plant")
    assert "登录" in page.content()  # Simplified Chinese by default
    _login(page, server, "usera")
    shots(page, "plant-home.zh")
    assert "ENT001-S1" in page.content() and "ENT002" not in page.content()
    # drill down: site -> area -> work centre -> equipment
    page.click("text=ENT001-S1")
    page.wait_for_selector("#entity-title")
    assert "ENT001-S1" in page.inner_text("#entity-title")
    page.wait_for_load_state("networkidle")
    assert _images_loaded(page)
    shots(page, "plant-site.zh")
    page.click("#children >> text=ENT001-A1")
    page.wait_for_selector("#children >> text=ENT001-WC1")
    page.click("#children >> text=ENT001-WC1")
    page.wait_for_selector("#children >> text=ENT001-WC1-M1")
    page.click("#children >> text=ENT001-WC1-M1")
    page.wait_for_selector("#waterfall")
    assert "ENT001-WC1-M1" in page.inner_text("#entity-title")
    assert "工作中心" in page.inner_text("nav.crumbs") or "ENT001-WC1" in page.inner_text("nav.crumbs")
    # switch language: the same page in English, numbers and dates for the locale
    page.click("#lang-en")
    page.wait_for_selector("#waterfall")
    text = page.inner_text("body")
    assert "Time model: OEE waterfall" in text and "Plant" in text
    page.wait_for_load_state("networkidle")
    assert _images_loaded(page)
    shots(page, "plant-equipment.en")
    # the language is remembered
    page.goto(server + "/data")
    assert "Upload a file" in page.inner_text("body")
    # upload a file with one bad record and see its quarantine
    data = csv_bytes([
        {"equipment_id": "ENT001-WC2-M1", "start": "2026-01-08T06:00:00+08:00", "end": "2026-01-08T09:00:00+08:00",
         "state": "production"},
        {"equipment_id": "ENT001-WC2-M1", "start": "2026-01-08T09:00:00+08:00", "end": "2026-01-08T09:30:00+08:00",
         "state": "COFFEE"}])
    page.select_option("#table", "states")
    page.set_input_files("#file", files=[{"name": "shift-log.csv", "mimeType": "text/csv", "buffer": data}])
    page.click("#upload")
    page.wait_for_url("**/data/uploads/**")
    assert page.inner_text("#loaded").strip() == "1" and page.inner_text("#quarantined").strip() == "1"
    q = page.inner_text("table.quarantine")
    assert "State not in the mapping" in q and "COFFEE" in q  # the rule by its name, the record as sent
    shots(page, "data-upload.en")
    # a refused upload says why and stores nothing
    page.goto(server + "/data")
    page.select_option("#table", "states")
    page.set_input_files("#file", files=[{"name": "other.csv", "mimeType": "text/csv", "buffer": csv_bytes([
        {"equipment_id": "ENT002-WC1-M1", "start": "2026-01-08T06:00:00Z", "end": "2026-01-08T07:00:00Z",
         "state": "production"}])}])
    page.click("#upload")
    page.wait_for_selector("#upload-error")
    assert "another tenant" in page.inner_text("#upload-error")
    page.click("#logout")
    page.wait_for_url("**/login**")
    page.close()


def test_project_programme_and_bulletin(server, browser, shots):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _login(page, server, "ana", lang="zh")
    page.goto(server + "/projects")
    shots(page, "projects.zh")
    page.click("text=P0001")
    page.wait_for_selector("#project-title")
    body = page.inner_text("body")
    assert "生产效率" in body and "产品不良品率" in body  # the verified indicators, in Chinese
    shots(page, "project.zh")
    page.goto(server + "/programme")
    assert "P0001" in page.content()
    # its charts are images of their own: each one drawn by the browser (an SVG without its namespace is not)
    page.wait_for_load_state("load")
    drawn = page.evaluate("""[...document.querySelectorAll('img[id^="chart-"]')]
                             .map(i => [i.id, i.complete && i.naturalWidth > 0])""")
    assert sorted(drawn) == [["chart-district", True], ["chart-indicators", True], ["chart-year", True]], drawn
    shots(page, "programme.zh")
    page.click("#bulletin-en")
    page.wait_for_load_state()
    assert "notice on the results" in page.inner_text("body").lower()
    shots(page, "bulletin.en")
    page.close()


def test_a_plant_page_whose_figures_changed_shows_its_earlier_ones_marked(server, browser, shots, monkeypatch):
    """``zhizao serve --fresh-wait``: after an upload, a site page whose figures take longer than the wait shows
    the earlier figures with the notice of their time, visible at the top, and the current ones afterwards."""
    import io

    import httpx

    from zhizao.server import views

    app = APPS[int(server.rsplit(":", 1)[1])]
    monkeypatch.setattr(app.state.server, "fresh_wait", 0.05)  # before the first view: it keeps the figures
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _login(page, server, "usera", lang="zh")
    site = server + "/plant/site/ENT001-S1?lang=zh"
    page.goto(site)
    page.wait_for_selector("#entity-title")
    assert page.locator("p.stale").count() == 0
    gate = threading.Event()
    real = views.plant_entity
    monkeypatch.setattr(views, "plant_entity", lambda *a, **kw: gate.wait(60) and real(*a, **kw))
    try:
        token = httpx.post(server + "/api/v1/auth/login", json={"username": "usera", "password": PASSWORD}
                           ).json()["token"]
        r = httpx.post(server + "/api/v1/ingest/states", headers={"Authorization": f"Bearer {token}"},
                       files={"file": ("more.csv", io.BytesIO(csv_bytes([
                           {"equipment_id": "ENT001-WC1-M1", "start": "2026-01-09T06:00:00+08:00",
                            "end": "2026-01-09T07:00:00+08:00", "state": "production"}])))})
        assert r.status_code == 201, r.text
        page.goto(site)
        notice = page.locator("p.stale")
        assert notice.count() == 1 and notice.is_visible()
        assert "最新接收的数据仍在计算中" in notice.inner_text() and "立即刷新" in notice.inner_text()
        box = notice.bounding_box()
        assert box is not None and box["y"] < 300  # at the top, before the figures
        shots(page, "plant-site-stale.zh")
    finally:
        gate.set()
    deadline = time.time() + 60
    while True:
        page.goto(site)
        if page.locator("p.stale").count() == 0:
            break
        assert time.time() < deadline, "the current figures never came"
        time.sleep(0.2)
    page.close()
