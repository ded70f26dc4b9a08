"""PDF of an HTML page of zhizao (the bulletin, the KPI report) with WeasyPrint.

Why WeasyPrint: it lays out paged media itself (CSS Paged Media: ``@page`` sizes and margin boxes, page counters
for page numbers, ``target-counter`` for a table of contents with page numbers, named pages for a landscape
annex, PDF bookmarks from the headings), embeds the fonts it uses as subsets (the CJK fonts included), runs in
process without a browser, and is maintained (CourtBouillon, releases several times a year). It needs Pango
(Debian: ``libpango-1.0-0``, ``libpangoft2-1.0-0``) and the CJK fonts (``fonts-noto-cjk``), both installed by
``.ci/run``. Chromium's print (through Playwright) would need a browser process per document, offers no
``target-counter`` (a table of contents with page numbers needs two passes) and only a header and footer
template for page numbers.

Our pages have no script and load nothing from the network: the charts are inline SVG, the CSS is inline.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from zhizao.errors import InputError, Unsupported
from zhizao.messages import define

UNKNOWN_FORMAT = define("output.unknown_format", "unknown format %(format)s; one of %(allowed)s")
NO_PDF_ENGINE = define("output.no_pdf_engine", "PDF output needs WeasyPrint and the Pango library: %(error)s")

#: Print rules added to a page made for the screen (the KPI report): A4, page numbers, contents with pages.
PRINT_CSS = """
@page { size: A4; margin: 18mm 15mm 18mm 15mm;
        @bottom-center { content: counter(page) " / " counter(pages); font-size: 9pt; color: #59636e; } }
html { font-size: 10.5pt; }
body { max-width: none !important; padding: 0 !important; }
nav { display: block !important; }
nav ol { columns: 1 !important; }
nav a { color: inherit; text-decoration: none; }
nav a::after { content: leader(". ") target-counter(attr(href), page); }
h2 { break-before: auto; break-after: avoid; }
h3, caption { break-after: avoid; }
figure { break-inside: avoid; }
figure svg { max-width: 100% !important; height: auto; }
table { break-inside: auto; font-size: 8.5pt; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
td, th { word-break: normal; }
footer { font-size: 8pt; }
.simulated { position: running(simulated); font-size: 8.5pt; padding: 1mm 2mm; margin: 0; }
@page { @top-center { content: element(simulated); width: 100%; } }
"""


#: Characters between which a justified line of Chinese text is stretched: CJK ideographs and full-width marks.
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")


def _inter_character_justification() -> None:
    """Make WeasyPrint justify a line of Chinese text between its Chinese characters.

    WeasyPrint (up to 70 at least) stretches a justified line only at its spaces; a Chinese line has none, so a
    line of "text-align: justify" with a few half-width characters (59.8%, 2026年) ends short of the type area
    instead of filling it (GB/T 9704-2012 5.2.3: 每行排28个字，并撑满版心). This wraps its ``justify_line``: a line
    without spaces that holds Chinese text gets the missing width as extra letter-spacing after its Chinese
    characters and full-width marks, not inside a number or a Latin word (59.8%, not 5 9 . 8 %); its text
    layouts keep that spacing when they are drawn (``Layout.set_text``). The last line of a paragraph is not
    justified, as before; lines with spaces (English) are left as they were. Installed once, on the first PDF.
    """
    from weasyprint.formatting_structure import boxes
    from weasyprint.layout import inline
    from weasyprint.text import line_break
    from weasyprint.text.ffi import TO_UNITS, ffi, pango

    original = inline.justify_line
    if getattr(original, "zhizao", False):
        return
    set_text = line_break.Layout.set_text

    def spaced_set_text(self, text, justify=False):
        set_text(self, text, justify)
        extra = getattr(self, "zhizao_cjk_spacing", 0.0)
        if not extra or not self.text:
            return
        base = self.style["letter_spacing"]
        base = 0 if base == "normal" else base
        attrs = pango.pango_layout_get_attributes(self.layout)
        if attrs == ffi.NULL:
            attrs = ffi.gc(pango.pango_attr_list_new(), pango.pango_attr_list_unref)
        at = 0
        for c in self.text:
            n = len(c.encode())
            if _CJK.match(c):
                attr = pango.pango_attr_letter_spacing_new(int((base + extra) * TO_UNITS))
                attr.start_index, attr.end_index = at, at + n
                pango.pango_attr_list_change(attrs, attr)
            at += n
        pango.pango_layout_set_attributes(self.layout, attrs)

    def texts(box) -> list:
        if isinstance(box, boxes.TextBox):
            return [box]
        if isinstance(box, (boxes.LineBox, boxes.InlineBox)):
            return [t for child in box.children if child.is_in_normal_flow() for t in texts(child)]
        return []

    def stretch(context, box, per_char: float, x_advance: float) -> float:
        if isinstance(box, boxes.TextBox):
            box.position_x += x_advance
            n = len(_CJK.findall(box.text))
            if n:
                layout = line_break.create_layout(box.text, box.style, context, max_width=None,
                                                  justification_spacing=0)
                layout.zhizao_cjk_spacing = per_char
                layout.set_text(box.text)
                layout.deactivate()
                box.pango_layout = layout
                box.width += per_char * n
                x_advance += per_char * n
        elif isinstance(box, (boxes.LineBox, boxes.InlineBox)):
            box.position_x += x_advance
            before = x_advance
            for child in box.children:
                if child.is_in_normal_flow():
                    x_advance = stretch(context, child, per_char, x_advance)
            box.width += x_advance - before
        else:
            box.translate(x_advance, 0)
        return x_advance

    def justify_line(context, line, extra_width):
        text = "".join(t.text for t in texts(line))
        # the last character's spacing falls after it, outside the line
        n = len(_CJK.findall(text)) - bool(_CJK.match(text[-1:]))
        if inline.count_expandable_spaces(line) or extra_width <= 0 or n < 1:
            return original(context, line, extra_width)
        stretch(context, line, extra_width / n, 0)

    justify_line.zhizao = True  # type: ignore[attr-defined]
    line_break.Layout.set_text = spaced_set_text
    inline.justify_line = justify_line


#: The WeasyPrint release whose layout internals :func:`_inter_character_justification` was written and tested
#: against (pinned in pyproject.toml).
JUSTIFICATION_TESTED = "70."


def _install_justification(version: str) -> None:
    """Install :func:`_inter_character_justification` on the WeasyPrint release it was tested with; on another
    one, or if its internals moved, leave WeasyPrint as it is (Chinese lines then end short of the type area
    rather than the PDF failing; tests/test_pdf.py's line-end test says so)."""
    if not version.startswith(JUSTIFICATION_TESTED):
        logging.getLogger(__name__).warning("WeasyPrint %s: Chinese lines are not justified between characters "
                                            "(written for %sx)", version, JUSTIFICATION_TESTED)
        return
    try:
        _inter_character_justification()
    except (ImportError, AttributeError) as e:
        logging.getLogger(__name__).warning("Chinese lines are not justified between characters: %s", e)


def html_to_pdf(html: str, path, extra_css: str | None = None, relayout=None) -> Path:
    """Write ``html`` (a self-contained page) as a PDF file.

    Parameters
    ----------
    html : str
        The page; nothing is fetched (no base URL; a resource that is not inline is left out).
    path : path-like
        Output file (parent folders are created).
    extra_css : str, optional
        Style sheet added after the page's own (e.g. :data:`PRINT_CSS`).
    relayout : callable, optional
        Called with the number of pages of the laid-out page; where it returns a page (HTML), that page is laid
        out and written instead (the notice's record on an even page: a blank page before it where it would fall
        on an odd one).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    zhizao.errors.Unsupported
        If WeasyPrint or its system libraries are missing.
    """
    try:
        import weasyprint
    except (ImportError, OSError) as e:  # OSError: Pango missing
        raise Unsupported(NO_PDF_ENGINE, error=str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    _install_justification(weasyprint.__version__)
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)

    def no_fetch(url, *args, **kwargs):
        raise ValueError(f"zhizao pages load nothing: {url}")

    stylesheets = [weasyprint.CSS(string=extra_css)] if extra_css else None
    doc = weasyprint.HTML(string=html, url_fetcher=no_fetch, base_url=None).render(stylesheets=stylesheets)
    again = relayout(len(doc.pages)) if relayout is not None else None
    if again is not None:
        doc = weasyprint.HTML(string=again, url_fetcher=no_fetch, base_url=None).render(stylesheets=stylesheets)
    doc.write_pdf(out)
    return out


def check_format(fmt: str, allowed) -> str:
    """``fmt`` if it is one of ``allowed``; else an :class:`InputError`."""
    if fmt not in allowed:
        raise InputError(UNKNOWN_FORMAT, format=fmt, allowed=list(allowed))
    return fmt


__all__ = ["PRINT_CSS", "UNKNOWN_FORMAT", "check_format", "html_to_pdf"]
