"""Static charts of the report: Vega-Lite specs built with altair, rendered to inline SVG by vl-convert.

Rendering happens locally (``vl_convert.vegalite_to_svg``), with the data inline and no external URL
allowed, so the report needs neither JavaScript nor a network connection. The functions take tidy frames that
the report has already chosen and labelled; they plot values, they compute no KPI.

vl-convert holds the interpreter lock while it draws (0.1-0.7 s a chart; measured: another thread of the
process runs at 16 % of its speed meanwhile). A server, whose other requests would stall, draws in a worker
process instead (:func:`draw_in_worker`); reports and the command line draw in their own process.
"""

from __future__ import annotations

import atexit
import itertools
import json
import re
import subprocess
import sys
import threading

import altair as alt
import pandas as pd
import vl_convert as vlc

from zhizao.i18n import D3_LOCALES

WIDTH = 640  #: plot width [px]
HEIGHT = 220  #: plot height [px]
FONT = ('"Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "Helvetica Neue", '
        'Arial, sans-serif')
#: The style that lets an inline chart shrink with the page (removed for print).
FLUID = 'style="max-width:100%;height:auto" '
COLORS = {"total": "#4c78a8", "loss": "#e45756", "other": "#bab0ac", "line": "#f58518"}
_ids = itertools.count(1)
#: Label format of a time axis per period of its points (d3 time format; the axis' scale is UTC, so a point's
#: ``date``, its local date or time written without offset, is labelled as written). Explicit, so no locale's
#: default multi-format ("周六 05", "03 上午") appears: the same digits in every language. (Vega-Lite drops a
#: format given with ``formatType="utc"``; the UTC scale alone makes it a UTC format.)
TIME_FORMATS = {"hour": "%m-%d %H:%M", "shift": "%m-%d %H:%M", "day": "%Y-%m-%d", "week": "%Y-%m-%d",
                "month": "%Y-%m", "all": "%Y-%m-%d"}
#: Smallest step between two ticks of a time axis per period [ms]: no tick between two periods' starts.
TIME_STEPS = {"hour": 3_600_000, "shift": 3_600_000, "day": 86_400_000, "week": 7 * 86_400_000,
              "month": 28 * 86_400_000, "all": 86_400_000}


def time_axis(period: str = "day") -> alt.Axis:
    """The x axis of a time series of ``period`` points: labels in :data:`TIME_FORMATS`, ticks at least one
    period apart (:data:`TIME_STEPS`).

    Raises
    ------
    ValueError
        For a period without a format.
    """
    if period not in TIME_FORMATS:
        raise ValueError(f"no time format for period {period!r}; one of {', '.join(TIME_FORMATS)}")
    return alt.Axis(labelAngle=0, tickCount=8, format=TIME_FORMATS[period],
                    tickMinStep=TIME_STEPS[period])


def _config(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    # no ARIA descriptions: Vega writes them in English ("X-axis titled ..."); the caption describes the chart
    return chart.configure(font=FONT, background="white", aria=False).configure_title(anchor="start", fontSize=13) \
        .configure_axis(labelFontSize=11, titleFontSize=11) \
        .configure_legend(labelFontSize=11, titleFontSize=11, orient="bottom", labelLimit=420)


#: Longest wait for one chart from the worker process [s] (the largest charts take about 1 s).
WORKER_TIMEOUT = 60.0
#: The worker process: reads one JSON request a line (``spec``, ``locale``), writes one JSON answer a line
#: (``svg``, or ``error``). It imports vl-convert only.
_WORKER_CODE = """
import json, sys
import vl_convert as vlc
for line in sys.stdin:
    req = json.loads(line)
    try:
        out = {"svg": vlc.vegalite_to_svg(req["spec"], format_locale=req["locale"],
                                          time_format_locale=req["locale"], allowed_base_urls=[])}
    except Exception as e:
        out = {"error": f"{type(e).__name__}: {e}"}
    sys.stdout.write(json.dumps(out) + "\\n")
    sys.stdout.flush()
"""


class _Worker:
    """One process that draws charts, one at a time (callers queue on its lock, without the interpreter).

    Started with ``-P``, so a file in the server's working directory cannot stand in for a module it imports,
    and in a session of its own, so a Ctrl-C to the server does not kill a draw; its errors go to the server's
    stderr. A request is one line and its answer one line: a draw that fails in any way (the worker dies, its
    answer is cut, ``timeout`` passes) stops the worker, so no answer is left for the next caller."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.closed = False

    def draw(self, spec: dict, locale: str, timeout: float = WORKER_TIMEOUT) -> str:
        request = (json.dumps({"spec": spec, "locale": locale}) + "\n").encode()
        if not self.lock.acquire(timeout=timeout):
            raise TimeoutError(f"no chart drawn within {timeout:.0f} s: the chart worker is busy")
        try:
            for _attempt in (1, 2):
                if self.closed:
                    raise RuntimeError("the chart worker is stopped (the process is exiting)")
                if self.proc is None or self.proc.poll() is not None:
                    self.proc = subprocess.Popen([sys.executable, "-P", "-c", _WORKER_CODE], stdin=subprocess.PIPE,
                                                 stdout=subprocess.PIPE, start_new_session=True)
                proc = self.proc
                assert proc.stdin is not None and proc.stdout is not None
                expired = threading.Event()

                def expire(proc: subprocess.Popen = proc, expired: threading.Event = expired) -> None:
                    expired.set()
                    proc.kill()
                timer = threading.Timer(timeout, expire)
                timer.daemon = True
                timer.start()
                try:
                    proc.stdin.write(request)
                    proc.stdin.flush()
                    line = proc.stdout.readline()
                except OSError:
                    line = b""
                except BaseException:
                    self.stop()
                    raise
                finally:
                    timer.cancel()
                if line.endswith(b"\n") and not expired.is_set():
                    try:
                        answer = json.loads(line)
                    except ValueError:
                        self.stop()
                        raise RuntimeError("the chart worker answered with something else than JSON") from None
                    if "error" in answer:
                        raise ValueError(f"the chart could not be drawn: {answer['error']}")
                    return str(answer["svg"])
                self.stop()  # died (killed, out of memory), cut its answer short or took too long
                if expired.is_set():
                    raise TimeoutError(f"no chart drawn within {timeout:.0f} s: the chart worker was stopped")
            raise RuntimeError("the chart worker process stopped twice while drawing this chart")
        finally:
            self.lock.release()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def close(self, wait: float = 5.0) -> None:
        """Stop the worker for good (at exit): no new one is started, a draw under way gets its error."""
        self.closed = True
        if self.lock.acquire(timeout=wait):
            try:
                self.stop()
            finally:
                self.lock.release()
        elif self.proc is not None:
            self.proc.kill()


_worker: _Worker | None = None


def _draw(spec: dict, locale: str) -> str:
    """vl-convert's SVG of a Vega-Lite spec, the data inline, no URL allowed (in this process)."""
    # vl_convert types the locales as Literals of the names it knows; D3_LOCALES holds known names only
    return vlc.vegalite_to_svg(spec, format_locale=locale,  # type: ignore[arg-type]
                               time_format_locale=locale, allowed_base_urls=[])  # type: ignore[arg-type]


def draw_in_worker(on: bool = True) -> None:
    """Draw every chart of this process in one worker process (``on``), or here (off: the default). The worker
    starts on the first chart (a fresh interpreter with vl-convert: about 1 s) and again if it dies; off stops
    it. For servers: their other requests keep the interpreter while a chart is drawn."""
    global _worker
    if on and _worker is None:
        _worker = _Worker()
    elif not on and _worker is not None:
        w, _worker = _worker, None
        w.close()


def warm_worker() -> None:
    """Start the worker process and its drawing engine now (when :func:`draw_in_worker` is on), so the first
    page with a chart does not wait for them."""
    if _worker is not None:
        _worker.draw({"mark": "point", "data": {"values": [{}]}}, "en-US")


def _svg(spec: dict, locale: str) -> str:
    w = _worker
    return w.draw(spec, locale) if w is not None else _draw(spec, locale)


@atexit.register
def _stop_worker() -> None:
    if _worker is not None:
        _worker.close()


def to_svg(chart: alt.TopLevelMixin, lang: str) -> str:
    """Render ``chart`` to an SVG string for inline use in HTML.

    Parameters
    ----------
    chart : altair chart
    lang : {'zh', 'en'}
        Selects the d3 number and time locale of the axes.

    Returns
    -------
    str
        ``<svg ...>...</svg>`` without XML namespace declarations (an HTML parser sets them) and with
        element ids made unique per chart, so several charts can share one document.
    """
    svg = _svg(_config(chart).to_dict(validate=False), D3_LOCALES[lang])
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg, count=2)
    svg = re.sub(r'\s+aria-(?:label|roledescription)="[^"]*"', "", svg)  # Vega's, in English
    prefix = f"zz{next(_ids)}-"
    for i in set(re.findall(r'\bid="([^"]+)"', svg)):
        q = re.escape(i)
        svg = re.sub(rf'\bid="{q}"', f'id="{prefix}{i}"', svg)
        svg = re.sub(rf'url\(#{q}\)', f'url(#{prefix}{i})', svg)
        svg = re.sub(rf'href="#{q}"', f'href="#{prefix}{i}"', svg)
    return svg.replace("<svg ", '<svg role="img" ' + FLUID, 1)


def waterfall(steps: pd.DataFrame, title: str, y_title: str, kind_title: str) -> alt.Chart:
    """A waterfall of the time model.

    Parameters
    ----------
    steps : pandas.DataFrame
        One row per bar, in display order: ``label`` (str), ``kind`` (legend text), ``color`` (a key of
        :data:`COLORS`, one per kind), ``start`` and ``end`` (the bar's ends [h]), ``top`` (the higher end,
        where the value label goes) and ``text`` (value label).
    title, y_title, kind_title : str
        Chart title, y axis title and legend title.
    """
    base = alt.Chart(steps, title=title)
    x = alt.X("label:N", sort=None, title=None, axis=alt.Axis(labelAngle=-35, labelLimit=160))
    kinds = list(dict.fromkeys(steps["kind"]))
    palette = [COLORS[k] for k in dict.fromkeys(steps["color"])]
    bars = base.mark_bar().encode(
        x=x, y=alt.Y("start:Q", title=y_title), y2="end:Q",
        color=alt.Color("kind:N", title=kind_title, scale=alt.Scale(domain=kinds, range=palette)))
    text = base.mark_text(dy=-6, fontSize=10).encode(x=x, y=alt.Y("top:Q", title=y_title), text="text:N")
    return (bars + text).properties(width=WIDTH, height=HEIGHT + 40)


def pareto(df: pd.DataFrame, title: str, y_title: str, cum_title: str) -> alt.LayerChart:
    """A Pareto chart: bars sorted as given and a cumulative-share line on a second axis.

    Parameters
    ----------
    df : pandas.DataFrame
        ``label`` (str), ``value`` (bar height, e.g. [h]), ``cum`` (cumulative share, fraction 0..1).
    title, y_title, cum_title : str
    """
    base = alt.Chart(df, title=title).encode(
        x=alt.X("label:N", sort=None, title=None, axis=alt.Axis(labelAngle=-35, labelLimit=240)))
    bars = base.mark_bar(color=COLORS["loss"]).encode(y=alt.Y("value:Q", title=y_title))
    line = base.mark_line(color=COLORS["total"], point=True).encode(
        y=alt.Y("cum:Q", title=cum_title, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%")))
    return alt.layer(bars, line).resolve_scale(y="independent").properties(width=WIDTH, height=HEIGHT)


def lines(df: pd.DataFrame, title: str, y_title: str, series_title: str, percent: bool = True,
          time_title: str | None = None, period: str = "day") -> alt.Chart:
    """Series of one value per period (hour, day, week, month) as lines with points.

    Parameters
    ----------
    df : pandas.DataFrame
        ``date`` (``YYYY-MM-DD``, the local date of the period), ``series`` (legend text), ``value``
        (fraction when ``percent``). A null value leaves a gap in the line.
    title, y_title, series_title : str
    percent : bool
        Format the y axis as percent.
    time_title : str, optional
        X axis title.
    period : str
        Period of the points: the time axis' label format (:func:`time_axis`). For hours, ``date`` is the local
        ``YYYY-MM-DDTHH:MM`` without offset.
    """
    point = alt.OverlayMarkDef(size=16) if df["date"].nunique() <= 60 else False
    return alt.Chart(df, title=title).mark_line(point=point, strokeWidth=1.5).encode(
        x=alt.X("date:T", title=time_title, scale=alt.Scale(type="utc"), axis=time_axis(period)),
        y=alt.Y("value:Q", title=y_title, axis=alt.Axis(format=".1~%" if percent else ",~r"),
                scale=alt.Scale(zero=False)),
        color=alt.Color("series:N", title=series_title, sort=None),
    ).properties(width=WIDTH, height=HEIGHT)


def bars(df: pd.DataFrame, title: str, y_title: str, time_title: str | None = None, period: str = "day"
         ) -> alt.Chart:
    """Totals per period (hour, day, week, month) as bars, each spanning its period.

    Parameters
    ----------
    df : pandas.DataFrame
        ``date`` and ``date_end`` (``YYYY-MM-DD``, local start and end of the period) and ``value``.
    period : str
        Period of the bars: the time axis' label format (:func:`time_axis`).
    """
    return alt.Chart(df, title=title).mark_bar(color=COLORS["total"], stroke="white", strokeWidth=0.5).encode(
        x=alt.X("date:T", title=time_title, scale=alt.Scale(type="utc"), axis=time_axis(period)),
        x2="date_end:T",
        y=alt.Y("value:Q", title=y_title), y2=alt.datum(0),
    ).properties(width=WIDTH, height=HEIGHT * 0.8)


def stack(*charts: alt.Chart | alt.LayerChart) -> alt.VConcatChart:
    """Charts one below the other, in one SVG."""
    return alt.vconcat(*charts, spacing=24)


def paired_bars(df: pd.DataFrame, title: str | None, x_title: str, basis_order: list[str], order: list[str]
                ) -> alt.Chart:
    """Horizontal bars of two bases (e.g. declared and verified) side by side per category, with value labels.

    Parameters
    ----------
    df : pandas.DataFrame
        ``indicator`` (category label), ``basis`` (one of ``basis_order``), ``mean`` (fraction), ``text`` (the
        value label).
    title : str or None
        None: no title (a document's caption names the chart).
    x_title : str
    basis_order : list of str
        The two bases, in legend order (the first is drawn grey, the second blue).
    order : list of str
        Category order (top to bottom).
    """
    y = alt.Y("indicator:N", sort=order, title=None, axis=alt.Axis(labelLimit=0, labelPadding=6))
    color = alt.Color("basis:N", title=None, sort=basis_order,
                      scale=alt.Scale(domain=basis_order, range=[COLORS["other"], COLORS["total"]]),
                      legend=alt.Legend(orient="top", labelLimit=0, symbolType="square"))
    base = alt.Chart(df, title=alt.Undefined if title is None else title).encode(
        y=y, yOffset=alt.YOffset("basis:N", sort=basis_order))
    bars = base.mark_bar(height=11).encode(
        x=alt.X("mean:Q", title=x_title, axis=alt.Axis(format=".0%", tickCount=6)), color=color)
    text = base.mark_text(align="left", dx=3, fontSize=10).encode(x="mean:Q", text="text:N")
    return (bars + text).properties(width=420, height=alt.Step(13))


def count_and_amount(df: pd.DataFrame, title: str | None, count_title: str, amount_title: str,
                     amount_format: str = ",.0f") -> alt.HConcatChart:
    """Two bar charts side by side over the same categories: a count and an amount (e.g. projects and
    investment by district).

    Parameters
    ----------
    df : pandas.DataFrame
        ``label`` (category, in display order), ``projects`` (count), ``investment`` (amount in display unit).
    title : str or None
        None: no title (a document's caption names the chart).
    count_title, amount_title : str
    amount_format : str
        d3 format of the amount labels (Chinese documents write amounts without grouping: ``".0f"``).
    """
    order = list(df["label"])
    y = alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=0, labelPadding=6))
    left = alt.Chart(df, title=count_title).encode(y=y)
    right = alt.Chart(df, title=amount_title).encode(y=alt.Y("label:N", sort=order, title=None,
                                                             axis=alt.Axis(labels=False, ticks=False, domain=False)))
    a = left.mark_bar(color=COLORS["total"]).encode(x=alt.X("projects:Q", title=None, axis=alt.Axis(tickMinStep=1)))
    at = left.mark_text(align="left", dx=3, fontSize=10).encode(x="projects:Q", text=alt.Text("projects:Q"))
    b = right.mark_bar(color=COLORS["line"]).encode(
        x=alt.X("investment:Q", title=None, axis=alt.Axis(format=amount_format.replace(".0f", "~s")
                                                          if amount_format == ",.0f" else "d")))
    bt = right.mark_text(align="left", dx=3, fontSize=10).encode(x="investment:Q",
                                                                 text=alt.Text("investment:Q", format=amount_format))
    return alt.hconcat((a + at).properties(width=250, height=alt.Step(20)),
                       (b + bt).properties(width=250, height=alt.Step(20)), spacing=30,
                       title=alt.Undefined if title is None else alt.TitleParams(title, anchor="start"))
