"""PDF of the bulletin and the KPI report (WeasyPrint): A4 pages, page numbers, contents with page numbers, fonts
embedded; read back with pypdf (text and page sizes), as a reader's viewer would show them."""

from __future__ import annotations

import itertools
import math
import re

import pytest
from typer.testing import CliRunner

pypdf = pytest.importorskip("pypdf")
pytest.importorskip("weasyprint")

import zhizao  # noqa: E402
from test_portfolio import build_store  # noqa: E402
from test_worked_example import TABLES  # noqa: E402
from zhizao.portfolio import programme_statistics, render_bulletin  # noqa: E402
from zhizao.portfolio.bulletin import INDICATIVE_MARK, bulletin_html  # noqa: E402
from zhizao.report import render_report  # noqa: E402
from zhizao.report.pdf import html_to_pdf  # noqa: E402

A4 = (595.3, 841.9)  # points


def _size(page) -> tuple[float, float]:
    box = page.mediabox
    return float(box.width), float(box.height)


def _fonts(reader) -> dict[str, bool]:
    """Base font name -> whether its program is embedded (FontFile, FontFile2 or FontFile3)."""
    out = {}
    for page in reader.pages:
        fonts = (page.get("/Resources") or {}).get("/Font") or {}
        for ref in fonts.values():
            f = ref.get_object()
            desc = f.get("/FontDescriptor")
            if desc is None and "/DescendantFonts" in f:
                desc = f["/DescendantFonts"][0].get_object().get("/FontDescriptor")
            desc = desc.get_object() if desc is not None else {}
            out[str(f.get("/BaseFont"))] = any(k in desc for k in ("/FontFile", "/FontFile2", "/FontFile3"))
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    ws = build_store(tmp_path_factory.mktemp("pdf") / "p.duckdb")
    yield ws
    ws.close()


def test_bulletin_pdf_pages_contents_and_fonts(store, tmp_path):
    s = programme_statistics(store, n_boot=100)
    paths = render_bulletin(store, tmp_path, lang="zh", stats=s, formats=("pdf",), date="2026-12-03")
    assert set(paths) == {"pdf"} and paths["pdf"].name == "bulletin.zh.pdf"
    r = pypdf.PdfReader(paths["pdf"])
    pages = [p.extract_text() for p in r.pages]
    assert len(pages) >= 3
    assert _size(r.pages[0]) == pytest.approx(A4, abs=1)
    # page numbers in the official style, one per page, in order
    for k, text in enumerate(pages, 1):
        assert re.search(rf"—\s*{k}\s*—", text), (k, text[-80:])
    first = pages[0]
    assert "关于智能化改造项目实施成效的通报" in first and "目" in first and "录" in first
    # the contents give the page of each annex (附件1, 附件2: numbered, GB/T 9704-2012 7.3.7), and that page
    # starts the annex, in landscape
    m = re.search(r"附件1\s*智能化改造项目基本情况表[ .]*(\d+)", first)
    m2 = re.search(r"附件2\s*智能化改造项目成效指标表[ .]*(\d+)", first)
    assert m and m2, first
    annex_page, second = int(m.group(1)), int(m2.group(1))
    annex = "".join(pages[annex_page - 1:second - 1])
    assert "智能化改造项目基本情况表" in pages[annex_page - 1] and "Gamma" in annex
    assert "P5" not in annex and "项目编号" not in annex  # the register's internal code: not by default
    assert second > annex_page and re.sub(r"\s+", "", pages[second - 1]).startswith("附件2智能化改造项目成效指标表")
    for k in (annex_page, second):
        w, h = _size(r.pages[k - 1])
        assert w > h  # landscape annexes
    # the bookmarks: the body's sections, then each annex by its number and title
    marks = [(o.title, r.get_destination_page_number(o) + 1) for o in r.outline[1]]
    assert marks[-2:] == [("附件1　智能化改造项目基本情况表", annex_page), ("附件2　智能化改造项目成效指标表", second)]
    body = "".join(pages[:annex_page - 1])
    assert "据4个项目申报" in body and "2026年12月3日" in body and "P1" not in body
    fonts = _fonts(r)
    assert fonts and all(fonts.values()), fonts  # every font embedded
    assert any("CJK" in name for name in fonts), fonts
    assert "模拟数据" not in "".join(pages)  # real (hand-made) data: no simulated mark
    # the annex's total once, after its last row (not at the foot of every page of the annex)
    assert "".join(pages[annex_page - 1:]).count("合计") == 1


def _origin(cm, tm, height: float) -> tuple[float, float]:
    """Where text starts on the page (x, y from the top): the text matrix times the transformation matrix."""
    return tm[4] * cm[0] + tm[5] * cm[2] + cm[4], height - (tm[4] * cm[1] + tm[5] * cm[3] + cm[5])


def _shows(page) -> list[tuple[float, float]]:
    """(x, y from the top) of every text-showing operation, in the page's order: the pieces of text that
    :func:`_runs` joins into one line when they are near one baseline, each at its own place."""
    out = []
    height = float(page.mediabox.height)

    def before(op, _args, cm, tm):
        if op in (b"Tj", b"TJ", b"'", b'"'):
            out.append(_origin(cm, tm, height))
    page.extract_text(visitor_operand_before=before)
    return out


def _runs(page, angle: bool = False) -> list:
    """(x, y from the page's top, text) of every text run, in points, as a viewer places them; with ``angle``,
    (x, y, text, degrees) where degrees is the run's direction (0: left to right, 90: top to bottom)."""
    out: list = []
    height = float(page.mediabox.height)

    def visit(text, cm, tm, _fd, _fs):
        x, y = _origin(cm, tm, height)
        if text.strip() and (x, y) != (0, height):  # the charts' text (form XObjects) is not placed by pypdf
            a, b = tm[0] * cm[0] + tm[1] * cm[2], tm[0] * cm[1] + tm[1] * cm[3]  # the run's x axis on the page
            out.append((x, y, text, round(math.degrees(math.atan2(-b, a))) % 360) if angle else (x, y, text))
    page.extract_text(visitor_text=visit)
    return out



def _coloured(page) -> list[tuple[tuple[float, ...], str]]:
    """(fill colour, text) of every text run: the colour as its operands (rg: r, g, b; g: grey; k: c, m, y, k),
    following the graphics state's saves and restores."""
    out: list = []
    state: dict = {"fill": (0.0,), "saved": []}

    def before(op, args, _cm, _tm):
        if op == b"q":
            state["saved"].append(state["fill"])
        elif op == b"Q":
            state["fill"] = state["saved"].pop() if state["saved"] else (0.0,)
        elif op in (b"rg", b"g", b"k", b"sc", b"scn"):
            state["fill"] = tuple(round(float(a), 3) for a in args if isinstance(a, (int, float)))

    def visit(text, _cm, _tm, _fd, _fs):
        if text.strip():
            out.append((state["fill"], text))
    page.extract_text(visitor_operand_before=before, visitor_text=visit)
    return out



def _lines(page) -> list[tuple[float, float, float, float]]:
    """(y from the top, x where the line starts, x where its last glyph ends, font size) of every line of text,
    in points: the end from each TJ's glyph widths (the fonts' /W arrays) and its positioning numbers."""
    fonts = (page.get("/Resources") or {}).get("/Font") or {}
    widths: dict = {}
    for name, ref in fonts.items():
        f = ref.get_object()
        desc = f["/DescendantFonts"][0].get_object() if "/DescendantFonts" in f else None
        w: dict[int, float] = {}
        spec = list(desc.get("/W", [])) if desc is not None else []
        k = 0
        while k < len(spec):
            first = int(spec[k])
            if isinstance(spec[k + 1], list):
                w.update({first + j: float(v) for j, v in enumerate(spec[k + 1])})
                k += 2
            else:
                w.update({g: float(spec[k + 2]) for g in range(first, int(spec[k + 1]) + 1)})
                k += 3
        widths[name] = (w, float(desc.get("/DW", 1000)) if desc is not None else 1000.0)
    height = float(page.mediabox.height)
    state: dict = {"font": None, "size": 0.0}
    found: dict = {}

    def before(op, args, cm, tm):
        if op == b"Tf":
            state["font"], state["size"] = args[0], float(args[1])
        elif op == b"TJ" and state["font"] in widths:
            w, dw = widths[state["font"]]
            advance = 0.0
            for item in args[0]:
                if isinstance(item, bytes):
                    advance += sum(w.get(int.from_bytes(item[j:j + 2], "big"), dw)
                                   for j in range(0, len(item), 2)) * state["size"] / 1000
                else:
                    advance -= float(item) * state["size"] / 1000
            x0, y = _origin(cm, tm, height)
            end = tm[0] * advance
            x1 = x0 + end * cm[0]
            size = state["size"] * abs(cm[0] * tm[0])
            key = round(y, 1)
            a, b, s = found.get(key, (x0, x1, size))
            found[key] = (min(a, x0), max(b, x1), max(s, size))
    page.extract_text(visitor_operand_before=before)
    return sorted((y, a, b, s) for y, (a, b, s) in found.items())


MM = 72 / 25.4
#: A Chinese notice with every part of a letterhead, the record (版记) included.
OFFICIAL = {"header": "某市经济和信息化委员会文件", "number": "某经信发〔2026〕7号", "programme": "西部（重庆）科学城",
            "addressee": "各区县经济信息委", "closing": "请认真组织实施。", "signature": "某市经济和信息化委员会",
            "cc": "市发展改革委，市财政局", "printed_by": "某市经济和信息化委员会办公室"}


@pytest.fixture(scope="module")
def official(store, tmp_path_factory):
    """The Chinese notice with :data:`OFFICIAL` as its letterhead, as a PDF reader."""
    s = programme_statistics(store, n_boot=100)
    pdf = render_bulletin(store, tmp_path_factory.mktemp("official"), lang="zh", stats=s, letterhead=OFFICIAL,
                          formats=("pdf",), date="2026-12-03")["pdf"]
    return pypdf.PdfReader(pdf)


def test_the_record_sits_at_the_foot_of_the_last_page(official):
    # GB/T 9704-2012 7.4: the record (版记) on the last page, its last rule on the type area's bottom edge; the
    # printing office one character in from the left and the printing date one character in from the right, on
    # one line
    page = official.pages[-1]
    assert _size(page)[0] < _size(page)[1]  # a portrait page after the landscape annex
    runs = _runs(page)
    assert [t.strip() for *_, t in runs] == ["抄送：市发展改革委，市财政局。",
                                             "某市经济和信息化委员会办公室 2026年12月3日印发", "— 8 —"]
    (_cx, cy, _t), (_ox, oy, _t) = runs[:2]
    # the last line's two pieces (office, date), each where it starts
    office, date = [(x, y) for x, y in _shows(page) if abs(y - oy) < 5]
    assert office[1] == pytest.approx(date[1], abs=0.1)  # one baseline
    assert office[0] == pytest.approx(28 * MM + 14, abs=1)  # one 4号 character in from the type area's left
    assert date[0] > 105 * MM
    assert cy < oy
    bottom = (37 + 225) * MM  # the type area's bottom edge: the last rule; the last line just above it
    assert bottom - 8 * MM < oy < bottom, oy / MM


def _record_pages(reader) -> tuple[int, list[str]]:
    """(the record's page number, 1-based, and the texts of the page before it and of the record's page)."""
    pages = [page.extract_text() for page in reader.pages]
    at = next(k for k, text in enumerate(pages, 1) if "抄送：" in text)
    return at, pages[at - 2:at]


def test_the_record_is_on_an_even_page(official, store, tmp_path):
    # printed on both sides, the record (版记) is the last side of a sheet: an even page. Where the body and the
    # annexes end on an even page, a blank page before it, and neither the blank page nor the record's page
    # carries a page number (GB/T 9704-2012 7.5); where they end on an odd page, the record follows, numbered
    at, (before, record) = _record_pages(official)
    assert at == len(official.pages) and at % 2 == 0
    assert "附件2" in before or "△" in before  # no blank page: the annex's last page before it, numbered
    assert re.search(rf"—\s*{at}\s*—", record)
    # the body a page longer (the requests of many paragraphs): the annexes end on an even page
    s = programme_statistics(store, n_boot=50)
    closing = "\n\n".join(["请各区县经济信息委认真组织实施，及时将有关情况报送我委。"] * 11)
    pdf = render_bulletin(store, tmp_path, lang="zh", stats=s, letterhead={**OFFICIAL, "closing": closing},
                          formats=("pdf",), date="2026-12-03")["pdf"]
    r = pypdf.PdfReader(pdf)
    at, (blank, record) = _record_pages(r)
    assert at == len(r.pages) and at % 2 == 0, at
    assert blank.strip() == "", blank  # a blank page: no text, no page number
    assert "抄送：" in record and not re.search(r"—\s*\d+\s*—", record), record
    assert re.search(rf"—\s*{at - 2}\s*—", r.pages[at - 3].extract_text())  # the annex's last page, numbered
    assert _size(r.pages[at - 2])[0] < _size(r.pages[at - 2])[1]  # the blank page in portrait, like the record's


def test_chinese_notice_prints_in_the_gbt_9704_type_area(store, tmp_path):
    # GB/T 9704-2012: 版心 156 x 225 mm, 天头 37 mm, 订口 28 mm; the page number "— n —" below the 版心, odd
    # pages on the right, even pages on the left
    mm = 72 / 25.4
    s = programme_statistics(store, n_boot=100)
    pdf = render_bulletin(store, tmp_path, lang="zh", stats=s, formats=("pdf",), date="2026-12-03")["pdf"]
    r = pypdf.PdfReader(pdf)
    portrait = [p for p in r.pages if _size(p)[0] < _size(p)[1]]
    assert len(portrait) >= 2
    for k, page in enumerate(portrait, 1):
        runs = _runs(page)
        number = [(x, y) for x, y, t in runs if re.fullmatch(rf"—\s*{k}\s*—\s*", t)]
        assert len(number) == 1, (k, [t for *_, t in runs][-5:])
        x, y = number[0]
        assert (37 + 225) * mm < y < 297 * mm - 10 * mm, (k, y / mm)  # below the type area
        if k % 2:
            assert x > 105 * mm, (k, x / mm)  # odd: right
        else:
            assert x < 105 * mm, (k, x / mm)  # even: left
        text = [(x, y) for x, y, t in runs if not re.fullmatch(r"—\s*\d+\s*—\s*", t)]
        assert min(x for x, _ in text) >= 28 * mm - 1, k
        assert min(y for _, y in text) >= 37 * mm - 1, k
        assert max(y for _, y in text) <= (37 + 225) * mm + 1, k
    assert any("通报" in t for *_, t in _runs(portrait[0]))


def _placed_forms(page) -> list[tuple[float, float]]:
    """(left, right) on the page, in points, of every form XObject drawn on it (the charts' pieces: WeasyPrint
    draws an SVG's texts as forms, which :func:`_runs` cannot place): each form's box, a text's without its
    padding, through its matrix and the transformation in force where it is drawn."""
    def mul(a, b):  # the affine map a, then b
        return [a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3], a[2] * b[0] + a[3] * b[2],
                a[2] * b[1] + a[3] * b[3], a[4] * b[0] + a[5] * b[2] + b[4], a[4] * b[1] + a[5] * b[3] + b[5]]
    xobjects = page["/Resources"].get_object().get("/XObject")
    xobjects = xobjects.get_object() if xobjects else {}
    out, ctm, stack = [], [1.0, 0.0, 0.0, 1.0, 0.0, 0.0], []
    for operands, op in pypdf.generic.ContentStream(page.get_contents(), page.pdf).operations:
        if op == b"q":
            stack.append(ctm)
        elif op == b"Q":
            ctm = stack.pop()
        elif op == b"cm":
            ctm = mul([float(v) for v in operands], ctm)
        elif op == b"Do" and xobjects[operands[0]].get_object().get("/Subtype") == "/Form":
            form = xobjects[operands[0]].get_object()
            m = mul([float(v) for v in form.get("/Matrix", [1, 0, 0, 1, 0, 0])], ctm)
            x0, y0, x1, y1 = (float(v) for v in form["/BBox"])
            if x0 < 0:  # a text's form: WeasyPrint pads its box by the font size on either side of the text
                x0, x1 = 0.0, x1 + x0
            xs = [m[0] * px + m[2] * py + m[4] for px in (x0, x1) for py in (y0, y1)]
            out.append((min(xs), max(xs)))
    return out


def test_the_charts_lie_inside_the_type_area(official):
    # a reader found the figures' value labels and axis ticks up to 7 mm right of the 版心 (and 1 mm left of it):
    # the charts were allowed 165 mm of a 156 mm type area
    placed = [(k, box) for k, page in enumerate(official.pages, 1) if _size(page)[0] < _size(page)[1]
              for box in _placed_forms(page)]
    assert len(placed) > 10  # the figures are there
    outside = [(k, round(a / MM, 1), round(b / MM, 1)) for k, (a, b) in placed
               if a < 28 * MM - 0.5 or b > (28 + 156) * MM + 0.5]
    assert not outside, outside


def test_the_notes_close_the_body_before_the_date(official):
    # nothing of the body follows the date (GB/T 9704-2012): the notes (说明) come before the closing, the annex
    # list, the signature and the date, and the annex and the record after them
    text = re.sub(r"\s+", "", "".join(page.extract_text() for page in official.pages))
    words = ["三、项目分布", "说明", "自助法", "请认真组织实施。", "附件：1.智能化改造项目基本情况表2.智能化改造项目成效指标表",
             "某市经济和信息化委员会", "2026年12月3日", "附件1智能化改造项目基本情况表", "附件2智能化改造项目成效指标表",
             "抄送："]
    at = [text.find(words[0])]
    for w in words[1:]:
        at.append(text.find(w, at[-1] + 1))
        assert at[-1] > at[-2], (w, list(zip(words, at)))
    assert text.rfind("自助法") < at[6]
    # the annex list, the signature and the date on one page, after a line of the body: no page holds them alone
    page = next(re.sub(r"\s+", "", p.extract_text()) for p in official.pages if "附件：" in p.extract_text())
    assert re.search("。附件：1.智能化改造项目基本情况表2.智能化改造项目成效指标表某市经济和信息化委员会2026年12月3日",
                     page), page


def test_the_requests_and_the_closing_line_before_the_annex_list(official):
    # a native reader: the closing request read as part of 四、有关说明, and no 特此通报。: the request is 五、有关要求
    # (its heading two characters in, in 黑体 like the others), and 特此通报。 a paragraph of its own, two characters
    # in, the body's last line before the annex list
    runs = [(x, y, t.strip()) for page in official.pages if _size(page)[0] < _size(page)[1]
            for x, y, t in _runs(page)]
    texts = [t for *_, t in runs]
    heading = texts.index("五、有关要求")
    assert texts[heading + 1] == "请认真组织实施。" and texts[heading + 2] == "特此通报。", texts[heading:]
    assert texts.index("四、有关说明") < heading
    x, _y, _t = runs[heading + 2]
    assert x == pytest.approx(28 * MM + 2 * 16, abs=1)  # two characters in
    assert texts[heading + 3] == "附件："


def _signature(reader, signer: str, date: str = "2026年12月3日") -> tuple[tuple, tuple]:
    """(y, start, end) of the signature's line and of the date's, in points, from the page that has both."""
    for page in reader.pages:
        at = {t.strip(): y for _x, y, t in _runs(page)}
        if signer in at and date in at:
            lines = {round(y, 1): (y, a, b) for y, a, b, _s in _lines(page)}
            return lines[round(at[signer], 1)], lines[round(at[date], 1)]
    raise AssertionError("no page with the signature and the date")


def test_the_signature_block_is_laid_out_for_a_seal(official, store, tmp_path):
    # GB/T 9704-2012 7.3.5.1 (加盖印章的公文), the default: the 成文日期 four characters in from the type area's
    # right edge (右空四字), the 发文机关署名 centred over it, room above them for the seal (two blank lines after
    # the annex list); it was laid out as the unsealed form (7.3.5.2), which the letterhead keeps as sealed: false
    right = (28 + 156) * MM
    (sy, s0, s1), (dy, d0, d1) = _signature(official, OFFICIAL["signature"])
    assert d1 == pytest.approx(right - 4 * 16, abs=2), (right - d1) / 16
    assert (s0 + s1) / 2 == pytest.approx((d0 + d1) / 2, abs=1)  # the name centred on the date
    assert dy - sy == pytest.approx(28.95, abs=0.5)  # the date on the next line
    annexes = max(y for page in official.pages for _x, y, t in _runs(page) if t.strip() == "2.智能化改造项目成效指标表")
    assert sy - annexes == pytest.approx(3 * 28.95, abs=1)  # two blank lines between: the seal's room
    s = programme_statistics(store, n_boot=50)
    # without a seal (7.3.5.2): one blank line, the name two characters in from the right, the date's first
    # character two characters right of the name's
    pdf = render_bulletin(store, tmp_path / "unsealed", lang="zh", stats=s, letterhead={**OFFICIAL, "sealed": False},
                          formats=("pdf",), date="2026-12-03")["pdf"]
    (sy, s0, s1), (dy, d0, d1) = _signature(pypdf.PdfReader(pdf), OFFICIAL["signature"])
    assert s1 == pytest.approx(right - 2 * 16, abs=2) and d0 == pytest.approx(s0 + 2 * 16, abs=1)
    # a name much longer than the date (19 characters): the date stays four characters in (右空四字, always; the
    # whole block moved left, the date ending 6.3 characters in), the name on two lines broken after the body it
    # belongs to, each centred on the date and inside the type area
    long = "西部（重庆）科学城管理委员会经济发展局"
    pdf = render_bulletin(store, tmp_path / "long", lang="zh", stats=s, letterhead={**OFFICIAL, "signature": long},
                          formats=("pdf",), date="2026-12-03")["pdf"]
    reader = pypdf.PdfReader(pdf)
    (_y1, a0, a1), (dy, d0, d1) = _signature(reader, "西部（重庆）科学城管理委员会")
    (y2, b0, b1), _date = _signature(reader, "经济发展局")
    assert d1 == pytest.approx(right - 4 * 16, abs=2), (right - d1) / 16
    for x0, x1 in ((a0, a1), (b0, b1)):
        assert (x0 + x1) / 2 == pytest.approx((d0 + d1) / 2, abs=1)
        assert x0 >= 28 * MM and x1 <= right + 0.5
    assert dy - y2 == pytest.approx(28.95, abs=0.5) and y2 - _y1 == pytest.approx(28.95, abs=0.5)


def test_a_reference_keeps_its_number_on_its_line(official, store):
    # the notice's PDF broke "见表" / "1。" over two lines: in print a word joiner (U+2060) binds 表, 图 and 附件 to
    # their numbers in the running text; the PDF's text has no trace of it
    s = programme_statistics(store, n_boot=50)
    html, md = bulletin_html(s, "zh", date="2026-12-03", for_print=True)
    assert "见表\u20601。" in html and "详见附件\u20601" in html and "\u2060" not in md
    assert "\u2060" not in bulletin_html(s, "zh", date="2026-12-03")[0]  # the screen's HTML as it was
    text = "".join(page.extract_text() for page in official.pages)
    assert "见表1。" in re.sub(r"\s+", "", text) and "\u2060" not in text


def test_table_labels_are_not_broken_inside_a_word(official, store, tmp_path):
    # a district's name in a table cell on one line: 九龙坡区, not 九龙坡 / 区 (the body's district table and the
    # annex), and the body tables' headers whole
    rows = []
    for page in official.pages:
        for _x, _y, t in _runs(page):
            if "九龙坡" in t and not re.search("[、，。；]", t):  # a table's row (the running text wraps anywhere)
                assert "九龙坡区" in t, t
                rows.append(t)
    assert any(re.match(r"九龙坡区 1 20\.0% 3000\b", t) for t in rows), rows  # 表2, by district
    assert any("Gamma 九龙坡区 3000 " in t for t in rows), rows  # the annex (whole 万元)
    text = "".join(page.extract_text() for page in official.pages)
    # every district a 区: the column is 区, as the text says N个区 (区县 where one is not)
    assert "\n区 项目数 占比 总投资（万元）" in text and "区县 项目数" not in text
    # Table 1's two header rows: the sets of projects, then the columns (经核验项目 compare over one set)
    assert "指标 全部申报项目 经核验项目（同口径）" in text
    assert "项目数 平均值 项目数 申报平均值 核验平均值 90%置信区间 核验中位数" in text
    # the English annex's narrow columns: a district and a status on one line too
    s = programme_statistics(store, n_boot=50)
    en = pypdf.PdfReader(render_bulletin(store, tmp_path, lang="en", stats=s, formats=("pdf",))["pdf"])
    annex = [t for page in en.pages if _size(page)[0] > _size(page)[1] for _x, _y, t in _runs(page)]
    assert any("Gamma Jiulongpo District 30.0 (not stated)" in t for t in annex), annex


def test_the_title_breaks_by_meaning(official):
    # GB/T 9704-2012 7.3.1: a title of several lines breaks where the meaning allows, the lines even: the default
    # title of 25 characters broke after its 20th ("……实施成" / "效的通报"); it breaks after the programme's name
    lines = [(x, y, t.strip()) for x, y, t in _runs(official.pages[0]) if y < 160 * MM]
    title = [line for line in lines if line[2] in ("关于西部（重庆）科学城", "智能化改造项目实施成效的通报")]
    assert [t for *_, t in title] == ["关于西部（重庆）科学城", "智能化改造项目实施成效的通报"], lines
    (x1, y1, _t1), (x2, y2, _t2) = title
    assert y1 < y2 and x1 > x2  # two lines, each centred: the shorter one starts further in


def test_annex_pages_number_where_the_portrait_pages_do(store, tmp_path):
    # GB/T 9704-2012 10.1 (横排表格): on a landscape table page the page number is where the portrait pages have
    # it, the table head on the binding side of an odd page and on the outer side of an even one - the sheet's left
    # edge both times. Turned a quarter left onto the portrait sheet, the landscape page's point (x, y) is the
    # sheet's (y, page width - x): there the number stands upright (it runs down the landscape page), below the
    # type area, right on odd and left on even pages, as on the portrait pages; the table keeps the type area.
    s = programme_statistics(store, n_boot=50)
    html, _md = bulletin_html(s, "zh", date="2026-12-03", for_print=True)
    at = html.index('<section id="annex-1"')
    rows = re.search(r"<tbody>(.*?)</tbody>", html[at:], flags=re.S).group(1)
    html = html[:at] + html[at:].replace("</tbody>", rows * 12 + "</tbody>", 1)  # an annex of several pages
    r = pypdf.PdfReader(html_to_pdf(html, tmp_path / "annex.pdf"))
    portrait: dict[int, tuple[float, float]] = {}
    turned = []
    for k, page in enumerate(r.pages, 1):
        w, h = _size(page)
        runs = _runs(page, angle=True)
        number = [(x, y, a) for x, y, t, a in runs if re.fullmatch(rf"—\s*{k}\s*—\s*", t)]
        assert len(number) == 1, (k, [t for _x, _y, t, _a in runs][-5:])
        x, y, a = number[0]
        if w < h:
            assert a == 0
            portrait.setdefault(k % 2, (x, y))
            continue
        assert a == 90, k  # runs down the landscape page: upright on the turned sheet
        turned.append((k, (y, w - x)))
        table = [(x, y) for x, y, t, _a in runs if not re.fullmatch(r"—\s*\d+\s*—\s*", t)]
        assert min(x for x, _ in table) >= 35 * MM - 1, k  # the turned type area: left 35 mm (the sheet's foot)
        assert min(y for _, y in table) >= 28 * MM - 1, k  # top 28 mm (the binding side)
        assert max(y for _, y in table) <= (28 + 156) * MM + 1, k
    # where the number starts, on pages whose number has as many digits as the portrait pages' (a right-aligned
    # "— 11 —" starts a digit before "— 9 —"): odd and even annex pages
    turned = [(k, place) for k, place in turned if k < 10]
    assert len(r.pages) < 16 and {k % 2 for k, _ in turned} == {0, 1}, turned
    for k, place in turned:
        assert place == pytest.approx(portrait[k % 2], abs=1 * MM), (k, place, portrait)


def test_simulated_programme_is_marked_on_every_page(tmp_path):
    from zhizao.demo import PROGRAMME_ORDER
    from zhizao.simulate import simulate_programme, write_programme

    paths = write_programme(simulate_programme(n_projects=3, n_enterprises=2, seed=5, months_before=1,
                                               months_after=1, machines_per_project=1), tmp_path / "sim")
    with zhizao.connect(tmp_path / "s.duckdb") as ws:
        for t in PROGRAMME_ORDER:
            ws.ingest(t, paths[t])
        s = programme_statistics(ws, n_boot=50)
        assert s["totals"]["n_simulated_projects"] == 3
        out = render_bulletin(ws, tmp_path / "b", lang="zh", stats=s, formats=("html", "md", "pdf"))
        en = render_bulletin(ws, tmp_path / "b", lang="en", stats=s, formats=("html",))
    assert 'id="simulated"' in out["html"].read_text("utf-8") and "模拟数据" in out["md"].read_text("utf-8")
    assert "SIMULATED" in en["html"].read_text("utf-8")
    for k, page in enumerate(pypdf.PdfReader(out["pdf"]).pages, 1):
        assert "模拟数据" in page.extract_text(), k


def test_report_pdf_has_contents_and_page_numbers(make_ws, tmp_path):
    ws = make_ws(TABLES)
    out = render_report(ws, tmp_path / "report.pdf", lang="zh")
    r = pypdf.PdfReader(out)
    pages = [p.extract_text() for p in r.pages]
    n = len(pages)
    assert n >= 2 and _size(r.pages[0]) == pytest.approx(A4, abs=1)
    for k, text in enumerate(pages, 1):
        assert f"{k} / {n}" in text
    m = re.search(r"数据质量[^\n]*?[ .]+(\d+)\s*$", pages[0], flags=re.M)
    assert m, pages[0]
    assert "数据质量" in pages[int(m.group(1)) - 1]
    assert all(_fonts(r).values())


def test_cli_writes_pdf(tmp_path):
    from zhizao.cli.main import app

    w = build_store(tmp_path / "c" / "c.duckdb")
    w.close()
    db = w.path
    run = CliRunner().invoke
    r = run(app, ["bulletin", "--db", str(db), "--format", "pdf", "-o", str(tmp_path / "b"), "--n-boot", "50"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "b" / "bulletin.zh.pdf").stat().st_size > 10_000
    r = run(app, ["bulletin", "--db", str(db), "--format", "docx", "-o", str(tmp_path / "b")])
    assert r.exit_code == 2 and "docx" in r.output
    r = run(app, ["report", "--db", str(db), "--format", "pdf", "-o", str(tmp_path / "r.pdf")])
    assert r.exit_code == 0, r.output
    assert pypdf.PdfReader(tmp_path / "r.pdf").pages[0].extract_text().startswith("制造")


def test_every_text_is_black_but_the_issuers_mark(official):
    # GB/T 9704-2012 5.2.4: the text is black; only the issuer's mark (and the red line) is red - not the grey
    # of the screen's captions and table notes. A table's note starts with 注：, at the left.
    black = {(0.0,), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)}
    seen = []
    for page in official.pages:
        for colour, text in _coloured(page):
            seen.append(text)
            if "某市经济和信息化委员会文件" in text:
                assert colour[0] > 0.5 and colour[1:] == (0.0, 0.0), colour  # red
            else:
                assert colour in black, (colour, text)
    assert any(t.startswith("注：正值表示改善") for t in seen), seen
    assert any(t.startswith("注：申报值") for t in seen), seen
    runs = [(x, t) for page in official.pages for x, _y, t in _runs(page) if t.startswith("注：正值表示改善")]
    assert runs and runs[0][0] == pytest.approx(28 * MM, abs=1)  # at the type area's left edge, no indent


def test_body_lines_fill_the_type_area(official):
    # GB/T 9704-2012 5.2.3: 每行排28个字，并撑满版心 - a full line of a paragraph (one the paragraph goes on after)
    # ends at the type area's right edge (28 + 156 mm), half-width figures (59.8%, 2026年) or not
    full = []
    for page in official.pages:
        if _size(page)[0] > _size(page)[1]:
            break  # the annex
        lines = [line for line in _lines(page) if line[3] == pytest.approx(16, abs=0.1)]
        for (y1, _a1, end, _s1), (y2, start, _b2, _s2) in itertools.pairwise(lines):
            if start == pytest.approx(28 * MM, abs=0.5) and y2 - y1 == pytest.approx(28.95, abs=0.5):
                full.append(end)
    assert len(full) >= 5, full
    for end in full:
        assert end == pytest.approx((28 + 156) * MM, abs=1 * MM), end / MM


def _red_rules(page) -> list[tuple[float, float]]:
    """(y from the top of the rule's top edge, width) of every red filled rectangle (a red border), in points."""
    return [(top, width) for top, width, fill in _filled_rules(page)
            if len(fill) == 3 and fill[0] > 0.5 and fill[1:] == (0, 0)]


def _filled_rules(page) -> list[tuple[float, float, tuple]]:
    """(y from the top of the rectangle's top edge, width, fill colour) of every filled rectangle (a border is
    drawn as one), in points."""
    height = float(page.mediabox.height)
    state: dict = {"fill": (0.0,), "saved": []}
    out = []

    def before(op, args, cm, _tm):
        if op == b"q":
            state["saved"].append(state["fill"])
        elif op == b"Q":
            state["fill"] = state["saved"].pop() if state["saved"] else (0.0,)
        elif op in (b"rg", b"sc", b"scn"):
            state["fill"] = tuple(round(float(a), 3) for a in args if isinstance(a, (int, float)))
        elif op == b"re":
            _x, y, w, h = (float(a) for a in args)
            top = min(height - (cm[3] * y + cm[5]), height - (cm[3] * (y + h) + cm[5]))
            out.append((top, abs(w * cm[0]), state["fill"]))
    page.extract_text(visitor_operand_before=before)
    return out


def test_the_records_rules_are_black(official):
    # GB/T 9704-2012 7.4.1 and 5.2.4: the record's (版记) rules are black like its text, not the screen's dark grey
    # (a grey rule prints screened)
    last = official.pages[-1]
    rules = [(top, fill) for top, width, fill in _filled_rules(last) if width > 150 * MM]
    assert len(rules) >= 3, rules  # thick, thin, thick
    assert all(fill in {(0.0,), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)} for _top, fill in rules), rules


def test_the_number_and_the_title_keep_two_blank_lines(official):
    # GB/T 9704-2012 7.2.5: the document number two blank lines below the issuer's mark; 7.3.1: the title two
    # blank lines below the red line. A line is the body's pitch (28.95 pt: 225 mm / 22 lines); a line's glyphs
    # stand about its font size above its baseline.
    line = 28.95
    page = official.pages[0]
    runs = {t.strip(): (x, y) for x, y, t in _runs(page)}
    _x, issuer = runs["某市经济和信息化委员会文件"]
    _x, number = runs["某经信发〔2026〕7号"]
    _x, title = next(v for t, v in runs.items() if t.startswith("关于"))
    assert 2 * line <= (number - 16) - issuer <= 3 * line, ((number - issuer) / line)
    rules = [top for top, width in _red_rules(page) if width > 150 * MM]  # the border: its clip and its fill
    assert rules and max(rules) - min(rules) < 2, rules
    rule = min(rules)
    # 7.2.4: the red line 4 mm below the number's characters (their em box ends 0.12 em below the baseline)
    assert rule - (number + 0.12 * 16) == pytest.approx(4 * MM, abs=1 * MM), ((rule - number) / MM)
    assert 2 * line <= (title - 22) - rule <= 3 * line, ((title - rule) / line)


def _heights(page) -> list[tuple[float, float, str]]:
    """(font size in points as printed, measured upright, y from the top, text) of every text run: the size its
    font is set in times the length of the run's vertical axis on the page (a text compressed horizontally, 长体,
    keeps its height)."""
    out = []
    height = float(page.mediabox.height)

    def visit(text, cm, tm, _fd, size):
        if text.strip():
            up = math.hypot(tm[2] * cm[0] + tm[3] * cm[2], tm[2] * cm[1] + tm[3] * cm[3])
            out.append((round(size * up, 2), _origin(cm, tm, height)[1], text.strip()))
    page.extract_text(visitor_text=visit)
    return out


@pytest.mark.parametrize("header", ["某市经济和信息化委员会文件", "西部（重庆）科学城管理委员会经济发展局",
                                    "某市经信委"])
def test_the_issuers_mark_is_the_largest_text_within_the_type_area(store, tmp_path, header):
    # GB/T 9704-2012 7.2.3: the issuer's mark is the page's most prominent text - red, 小标宋, centred, larger than
    # the title (it was 20 pt under a 22 pt title) - and a long name is compressed horizontally (长体) to the type
    # area's width (156 mm), on one line, not wrapped
    s = programme_statistics(store, n_boot=50)
    pdf = render_bulletin(store, tmp_path, lang="zh", stats=s, letterhead={**OFFICIAL, "header": header},
                          formats=("pdf",), date="2026-12-03")["pdf"]
    page = pypdf.PdfReader(pdf).pages[0]
    sizes = _heights(page)
    mark = [(size, y) for size, y, t in sizes if t == header]
    assert len(mark) == 1, sizes  # one line, the name whole
    (size, y), = mark
    others = [x for x, _y, t in sizes if t != header]
    assert size >= 26 and size > max(others) + 3, (size, sorted(others)[-3:])
    line = next(x for x in _lines(page) if abs(x[0] - y) < 0.5)
    left, right = line[1], line[2]
    assert left >= 28 * MM - 1 and right <= (28 + 156) * MM + 1, (left / MM, right / MM)  # in the type area
    assert (left + right) / 2 == pytest.approx((28 + 156 / 2) * MM, abs=1)  # centred
    if len(header) > 12:  # compressed to the type area's width, not wrapped nor shrunk below 26 pt
        assert right - left == pytest.approx(156 * MM, abs=2 * MM), (right - left) / MM
    else:
        assert size == 36


def test_a_long_printing_office_stays_on_one_line_with_the_date(store, tmp_path):
    # GB/T 9704-2012 7.4.3: the printing office and the printing date on one line, the office's name never
    # broken: a 22-character office at 4号 wrapped as "……办" / "公室"; its name is tightened just enough (at most
    # -10 %), and beyond that the line's font shrinks just enough
    from zhizao.portfolio.bulletin import record_line_style

    office = "西部（重庆）科学城管理委员会经济发展局办公室"
    assert record_line_style("某市经济和信息化委员会办公室", "2026年12月3日印发") == (None, None)
    line, name = record_line_style(office, "2026年12月3日印发")
    assert line is None and name is not None
    spacing = float(re.search(r"letter-spacing: (-[\d.]+)em", name).group(1))
    assert -0.1 <= spacing < -0.08  # (22 + 8.5 + 3 - 156 mm / 14 pt) / 22 characters: -0.087 em
    line, name = record_line_style(office, "2026年12月13日印发")
    assert line == "font-size: 13.9pt" and name == "letter-spacing: -0.1em"
    s = programme_statistics(store, n_boot=50)
    for day in ("2026-12-03", "2026-12-13"):
        pdf = render_bulletin(store, tmp_path / day, lang="zh", stats=s, letterhead={**OFFICIAL, "printed_by": office},
                              formats=("pdf",), date=day)["pdf"]
        page = pypdf.PdfReader(pdf).pages[-1]
        runs = [(x, y, t.strip()) for x, y, t in _runs(page)]
        printed = [r for r in runs if office in r[2]]
        assert len(printed) == 1 and printed[0][2].endswith("日印发"), runs  # office and date: one line, one run
        assert not any(t in ("公室", "办公室") or t.endswith(office[:-1]) for *_, t in runs if t != printed[0][2])
        office_at, date_at = [(x, y) for x, y in _shows(page) if abs(y - printed[0][1]) < 5][:2]
        assert office_at[1] == pytest.approx(date_at[1], abs=0.1)  # one baseline
        assert office_at[0] == pytest.approx(28 * MM + 14, abs=1.5)  # about one character in
        sizes = [size for y, _a, _b, size in _lines(page) if abs(y - printed[0][1]) < 1]
        assert sizes and min(sizes) >= 13.85, sizes  # 4号, or as little below as needed


def test_the_annex_label_and_title_on_its_first_page(official):
    # GB/T 9704-2012 7.3.7: 附件 and its number flush left (顶格) in 3号 on the type area's first line; the annex's
    # title centred on the type area in 2号 on its third line, one blank line below - for each annex, on a page of
    # its own. The landscape type area: 35 mm from the left, 28 mm from the top, 225 mm wide
    # (test_annex_pages_number_where_the_portrait_pages_do).
    line = 28.95
    landscape = [p for p in official.pages if _size(p)[0] > _size(p)[1]]
    firsts = {}
    for page in landscape:
        at = {t.strip(): y for _x, y, t in _runs(page)}
        for label, name in (("附件1", "智能化改造项目基本情况表"), ("附件2", "智能化改造项目成效指标表")):
            if label in at:
                firsts[label] = page, at[label], at[name]
    assert set(firsts) == {"附件1", "附件2"}, firsts
    assert firsts["附件1"][0] is not firsts["附件2"][0]  # each annex starts a page
    for page, label_y, title_y in firsts.values():
        label = next(x for x in _lines(page) if abs(x[0] - label_y) < 0.5)
        title = next(x for x in _lines(page) if abs(x[0] - title_y) < 0.5)
        top = 28 * MM
        assert label[1] == pytest.approx(35 * MM, abs=0.5)  # flush left
        assert label[3] == pytest.approx(16, abs=0.1) and top < label[0] <= top + line
        assert title[3] == pytest.approx(22, abs=0.1)
        assert (title[1] + title[2]) / 2 == pytest.approx((35 + 225 / 2) * MM, abs=1 * MM)  # centred
        assert top + 2 * line < title[0] <= top + 3 * line + 1, (title[0] - top) / line  # the third line


def test_the_annex_list_and_the_annex_note(official):
    # GB/T 9704-2012 7.3.4: 附件：1.名称, nothing between the colon and the number; several annexes numbered, the
    # second on a line of its own, its number under the first one's; the annex's note (注：) at the type area's
    # left and on one line (no stub such as 检查）。 centred on a second line); its amounts in whole 万元
    runs = [(x, y, t.strip()) for page in official.pages for x, y, t in _runs(page)]
    lead = next((x, y) for x, y, t in runs if t == "附件：")
    one = next((x, y) for x, y, t in runs if t == "1.智能化改造项目基本情况表")
    two = next((x, y) for x, y, t in runs if t == "2.智能化改造项目成效指标表")
    assert lead[0] == pytest.approx(28 * MM + 2 * 16, abs=1)  # two characters in (7.3.4)
    assert one[1] == pytest.approx(lead[1], abs=0.5) and one[0] == pytest.approx(lead[0] + 3 * 16, abs=1.5)
    assert two[0] == pytest.approx(one[0], abs=0.5) and two[1] == pytest.approx(one[1] + 28.95, abs=0.5)
    landscape = [p for p in official.pages if _size(p)[0] > _size(p)[1]]
    table = " ".join(t for page in landscape for _x, _y, t in _runs(page))
    assert "合计 10500" in table and not re.search(r"\d\.0\b(?!%)", table.replace("%", "% ")), table
    page = next(p for p in landscape if "注：申报值" in p.extract_text())
    note = [(x, y, t.strip()) for x, y, t in _runs(page) if y > 0]
    at = next(k for k, (*_, t) in enumerate(note) if t.startswith("注：申报值"))
    assert note[at][0] == pytest.approx(35 * MM, abs=0.5)
    assert note[at][2].endswith("“△”表示已测算但未通过核验检查。"), note[at:]  # the whole note on its line


def _sizes(page) -> list[tuple[float, str]]:
    """(font size in points as printed, text) of every text run: the size its font is set in (Tf) times the scale
    of the text and the transformation matrices, whatever their rotation (the turned page numbers too)."""
    out = []

    def visit(text, cm, tm, _fd, size):
        if text.strip():
            scale = math.sqrt(abs((tm[0] * tm[3] - tm[1] * tm[2]) * (cm[0] * cm[3] - cm[1] * cm[2])))
            out.append((round(size * scale, 2), text.strip()))
    page.extract_text(visitor_text=visit)
    return out


def test_table_titles_are_centred_above_their_tables(official):
    # a Chinese document centres a table's title (表题) above the table, as it does a figure's below it: each
    # title's run stands as far from the type area's left edge (28 mm) as its end from the right edge (184 mm)
    seen = 0
    for page in official.pages:
        if _size(page)[0] > _size(page)[1]:
            continue  # the annexes: their titles are the pages' headings
        sizes = dict((t, s) for s, t in _sizes(page))
        for x, _y, t in _runs(page):
            t = t.strip()
            if re.match(r"表\d", t):
                # full-width characters are one em wide, digits and Latin letters half
                width = sizes[t] * sum(1.0 if ord(ch) > 0x2E7F else 0.5 for ch in t)
                assert x - 28 * MM == pytest.approx(184 * MM - (x + width), abs=2 * MM), t
                seen += 1
    assert seen >= 3


def test_every_text_of_the_annexes_is_at_least_9_pt(official, store, tmp_path):
    # a reader found the one annex table (17 columns) at 6.6 pt: unreadable. Split in 附件1 and 附件2, every text
    # of the annexes' pages prints at 9 pt at least - the tables in 5号 (10.5 pt), their note, 附件1/附件2 (16 pt),
    # the titles (22 pt), the page numbers (14 pt) - in Chinese and in English
    s = programme_statistics(store, n_boot=50)
    en = pypdf.PdfReader(render_bulletin(store, tmp_path, lang="en", stats=s, formats=("pdf",))["pdf"])
    for reader in (official, en):
        sizes = [x for page in reader.pages if _size(page)[0] > _size(page)[1] for x in _sizes(page)]
        assert len(sizes) > 20, sizes
        small = [(size, text) for size, text in sizes if size < 9]
        assert not small, small
        table = [size for size, text in sizes if re.match(r"\d+ — (Alpha|Beta|Gamma) ", text)]  # 附件1's rows
        assert table and set(table) == {10.5}, table


def test_the_pdfs_annexes_show_every_project_and_every_value(official, store):
    # nothing of the one annex table is lost in the two: every project's row (序号, name, enterprise, district,
    # whole 万元, status, type) in 附件1 and every indicator's declared and verified value, in order, in the row of
    # the same 序号 in 附件2
    from zhizao.i18n import NULL, Formatter
    from zhizao.portfolio import vocabulary as vocab
    from zhizao.portfolio.registry import PROGRAMME_INDICATORS

    s = programme_statistics(store, n_boot=50)
    f = Formatter("zh")
    values = {(r["project_id"], r["indicator"]): r for r in s["project_values"].to_dict("records")}
    # without spaces: a long type wraps in its cell (数字化车间和智能工厂 / 信息系统集成)
    pages = [re.sub(r"\s+", "", p.extract_text()) for p in official.pages if _size(p)[0] > _size(p)[1]]
    first = next(k for k, text in enumerate(pages) if "附件2" in text)
    one, two = "".join(pages[:first]), "".join(pages[first:])
    for k, p in enumerate(s["projects"].to_dict("records"), 1):
        row = [str(k), NULL, p["enterprise"], vocab.label("district", p["district"], "zh"),
               f.wan(p["investment"]), vocab.label("status", p["status"], "zh"), vocab.label("type", p["type"], "zh")]
        assert "".join(row) in one, (row, one)
        row = [str(k), NULL]
        for i in PROGRAMME_INDICATORS:
            r = values[(p["project_id"], i)]
            row += [f.pct(r["declared"]), f.pct(r["improvement"]) if r["status"] == "verified" else
                    INDICATIVE_MARK if r["status"] == "indicative" else NULL]
        assert "".join(row) in two, (row, two)
    for i in PROGRAMME_INDICATORS:
        assert vocab.label("gain", i, "zh") in two, i


def test_the_justification_patch_is_installed_only_on_the_weasyprint_it_was_tested_with(monkeypatch, caplog):
    """On another WeasyPrint release the patch of its layout internals is not installed (Chinese lines then end
    short of the type area instead of the PDF failing); on the pinned one it is, once."""
    from zhizao.report import pdf

    calls = []
    monkeypatch.setattr(pdf, "_inter_character_justification", lambda: calls.append(1))
    with caplog.at_level("WARNING", logger="zhizao.report.pdf"):
        pdf._install_justification("71.0")
    assert calls == [] and "not justified" in caplog.text
    pdf._install_justification(pdf.JUSTIFICATION_TESTED + "0")
    assert calls == [1]

    def moved():
        raise AttributeError("module 'weasyprint.layout.inline' has no attribute 'justify_line'")
    monkeypatch.setattr(pdf, "_inter_character_justification", moved)
    pdf._install_justification(pdf.JUSTIFICATION_TESTED + "0")  # a warning, no failure


def test_the_annexes_heads_and_names_are_not_broken_inside_a_word(store, tmp_path):
    # a sixth reading: 附件2's heads broke "产品不良率降 / 低" and "申报 / 值", 附件1 left one character alone on a line
    # ("有限公 / 司", "上云项 / 目", "智能工 / 厂"). Each indicator's head is its name over its direction, the
    # columns' 申报值 and 核验值 whole; a project's and an enterprise's name of a real programme's length whole on
    # its line, the status and the type broken at a meaning boundary
    s = programme_statistics(store, n_boot=50)
    prj = s["projects"].copy()
    prj["name"] = ["白市驿2机加工车间工业互联网平台上云项目", "蔡家配料车间数字化车间系统集成项目",
                   "恒通冲压车间智能制造新模式应用项目", "瑞丰SMT车间数字化车间系统集成项目",
                   "西彭冲压车间数字化装备升级项目"][:len(prj)]
    prj["enterprise"] = "重庆大学城汽车零部件有限公司"
    prj["type"], prj["status"] = "system_integration", "completed"
    pdf = render_bulletin(store, tmp_path, lang="zh", stats={**s, "projects": prj}, letterhead=OFFICIAL,
                          formats=("pdf",), date="2026-12-03")["pdf"]
    annex = [page for page in pypdf.PdfReader(pdf).pages if _size(page)[0] > _size(page)[1]]
    first = {k: [t.strip() for _x, _y, t in _runs(page)] for k, page in enumerate(annex)}
    one, two = (next(k for k, texts in first.items() if texts and texts[0] == f"附件{n}") for n in (1, 2))
    # 附件2's heads: the lines above its first row
    heads = list(itertools.takewhile(lambda t: not t.startswith("1 "), first[two][2:]))
    words = " ".join(heads).split()
    for name, direction in (("生产效率", "提升"), ("产品不良品率", "降低"), ("运营成本", "降低"),
                            ("单位产品能耗", "降低"), ("产品研制周期", "缩短")):
        assert name in words and direction in words, heads
    assert words.count("申报值") == 5 and words.count("核验值") == 5, heads
    assert not {"申报", "核验", "值", "降", "低", "短"} & set(words), heads
    # 附件1: every name and the enterprise's on one line; no line of its cells a single character
    rows = [t for k in range(one, two) for t in first[k]]
    for name in prj["name"]:
        assert any(name in t for t in rows), (name, rows)
    assert sum("重庆大学城汽车零部件有限公司" in t for t in rows) == len(prj), rows
    assert all(len(re.sub(r"\s+", "", t)) > 1 for t in rows), rows
    # the type at its meaning boundary: 数字化车间和智能工厂 / 信息系统集成
    assert any(t.endswith("数字化车间和智能工厂") for t in rows) and "信息系统集成" in rows, rows
