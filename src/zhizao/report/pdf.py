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


def html_to_pdf(html: str, path, extra_css: str | None = None) -> Path:
    """Write ``html`` (a self-contained page) as a PDF file.

    Parameters
    ----------
    html : str
        The page; nothing is fetched (no base URL; a resource that is not inline is left out).
    path : path-like
        Output file (parent folders are created).
    extra_css : str, optional
        Style sheet added after the page's own (e.g. :data:`PRINT_CSS`).

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
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)

    def no_fetch(url, *args, **kwargs):
        raise ValueError(f"zhizao pages load nothing: {url}")

    stylesheets = [weasyprint.CSS(string=extra_css)] if extra_css else None
    doc = weasyprint.HTML(string=html, url_fetcher=no_fetch, base_url=None)
    doc.write_pdf(out, stylesheets=stylesheets)
    return out


def check_format(fmt: str, allowed) -> str:
    """``fmt`` if it is one of ``allowed``; else an :class:`InputError`."""
    if fmt not in allowed:
        raise InputError(UNKNOWN_FORMAT, format=fmt, allowed=list(allowed))
    return fmt


__all__ = ["PRINT_CSS", "UNKNOWN_FORMAT", "check_format", "html_to_pdf"]
