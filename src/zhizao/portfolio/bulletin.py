"""The programme bulletin (通报): an official notice of the projects' results, with its annex and charts.

``render_bulletin`` writes ``bulletin.<lang>.html`` (self-contained: inline CSS, charts as inline SVG, no script,
nothing loaded from the network), ``bulletin.<lang>.md`` and, with ``formats=("pdf",)``, ``bulletin.<lang>.pdf``
(A4, page numbers, table of contents, fonts embedded; :mod:`zhizao.report.pdf`), in Simplified Chinese or
English. It computes nothing itself: every figure comes from
:func:`zhizao.portfolio.stats.programme_statistics`.

The notice follows the parts of a Chinese official document (GB/T 9704-2012): an optional header (版头) and
document number (文号) of the issuing office, the title, the addressees (主送), the opening (发文缘由, ending
现将有关情况通报如下：), the body (scope, results, how the projects are spread, the notes on method, 有关说明, and
the letterhead's requests, 有关要求, as its last parts), 特此通报。, the list of annexes, the signature and the
document date (成文日期: the date only, Beijing time), laid out for a seal unless the letterhead says otherwise.
Declared and verified results are stated in one sentence ("据N个项目申报……；其中M个项目经数据核验，……"), their
intervals and the same projects' declared means in Table 1. Running text carries no ids and no codes; two
annexes, keyed by the same No. (序号), list every project: 附件1 its name, enterprise, district, investment,
status and type, 附件2 every indicator declared and verified (one table of all was too wide to print at a readable
size).

An office adapts the notice without touching code: a *letterhead* file (YAML; see
``templates/letterhead.example.yaml``) gives its header, document number, addressees, the programme's name,
opening and closing paragraphs, signature and date, per language, whether the notice is sealed and whether 附件1
shows the register's project codes; a template folder may replace ``bulletin.html.j2`` (and
``bulletin.css``) altogether. Every text comes from the message catalogues (docs/glossary.md is the terminology).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
import pandas as pd
import yaml
from markupsafe import Markup

from zhizao.errors import InputError
from zhizao.i18n import N_, NULL, Formatter, check_lang, display_width, translations
from zhizao.messages import define
from zhizao.portfolio import vocabulary as vocab
from zhizao.portfolio.registry import PROGRAMME_INDICATORS
from zhizao.portfolio.stats import programme_statistics
from zhizao.report import charts

TEMPLATES = Path(__file__).parent / "templates"
#: The zone of the document date (成文日期).
DOCUMENT_TZ = "Asia/Shanghai"
#: Fields of a letterhead file (each a text, or a mapping ``{zh: ..., en: ...}``).
LETTERHEAD_FIELDS = ("header", "number", "title", "addressee", "programme", "opening", "closing", "signature",
                     "date", "sealed", "cc", "printed_by", "printed_on", "annex_project_code")

BAD_LETTERHEAD = define("bulletin.bad_letterhead", "cannot read the letterhead file %(path)s: %(error)s")
BAD_TEMPLATE = define("bulletin.bad_template",
                      "the notice template in %(path)s cannot be rendered: %(error)s (the notice gives the template "
                      "doc with the fields %(fields)s; see the shipped bulletin.html.j2)")
UNKNOWN_LETTERHEAD_FIELD = define("bulletin.unknown_letterhead_field",
                                  "unknown field %(field)s in the letterhead file %(path)s; allowed: %(allowed)s")

#: 附件2's mark of a value computed from data whose checks did not all pass (indicative: not a verified value).
INDICATIVE_MARK = "△"

# Labels kept for the dashboard and the command line (the vocabulary module holds them).
INDICATOR_LABELS = vocab.INDICATORS
TYPE_LABELS = vocab.PROJECT_TYPES
DESIGNATION_LABELS = vocab.DESIGNATIONS
LEVEL_LABELS = vocab.LEVELS
BASIS_LABELS = vocab.BASES
WEIGHT_LABELS = {"output": N_("by output"), "investment": N_("by investment")}
#: Counted designations in running text (singular, plural).
DESIGNATION_COUNTS = {
    "demonstration_project": (N_("%(n)s demonstration project"), N_("%(n)s demonstration projects")),
    "digital_workshop": (N_("%(n)s digital workshop"), N_("%(n)s digital workshops")),
    "smart_factory": (N_("%(n)s smart factory"), N_("%(n)s smart factories")),
}
LEVEL_ADJECTIVES = {"district": N_("district"), "municipal": N_("municipal"), "provincial": N_("provincial"),
                    "national": N_("national")}

#: Indicator -> (verb phrase when the mean improvement is >= 0, when it is < 0); %(v)s is the magnitude.
PHRASES = {
    "production_efficiency": (N_("production efficiency rose by %(v)s on average"),
                              N_("production efficiency fell by %(v)s on average")),
    "defect_rate": (N_("the product defect rate fell by %(v)s on average"),
                    N_("the product defect rate rose by %(v)s on average")),
    "operating_cost": (N_("operating cost fell by %(v)s on average"),
                       N_("operating cost rose by %(v)s on average")),
    "unit_energy": (N_("unit product energy consumption fell by %(v)s on average"),
                    N_("unit product energy consumption rose by %(v)s on average")),
    "development_cycle": (N_("the product development cycle was shortened by %(v)s on average"),
                          N_("the product development cycle was lengthened by %(v)s on average")),
}
#: Section numbers of the body (一、二、…) per language.
ORDINALS = {"zh": "一二三四五六七八九十", "en": None}


#: Characters in one line of the Chinese title in print: 2号 (22 pt) in the 156 mm type area (GB/T 9704-2012).
TITLE_LINE = 20
#: Where a Chinese title may break by meaning (GB/T 9704-2012 7.3.1: 回行时要做到词意完整、排列对称、长短适宜、间距
#: 恰当): before and after 关于, before the closing "的" + kind of document and any other 的, after a pause mark, after
#: a noun that closes a phrase of these notices (项目, 车间, 企业, 年度, ...).
_TITLE_BREAKS = (re.compile(r"(?=关于)|(?<=关于)"), re.compile(r"(?=的)"), re.compile(r"(?<=[、，；：])"),
                 re.compile(r"(?<=项目|车间|工厂|企业|单位|名单|情况|工作|成效|年度)"))


def _width(text: str) -> float:
    """The width of ``text`` in full-width characters (a Latin letter or digit is half of one)."""
    return display_width(text) / 2


def title_lines(title: str, lang: str = "zh", names=(), limit: float = TITLE_LINE) -> list[str]:
    """The title's lines: a Chinese title longer than a line breaks by meaning, in lines as even as it allows.

    A title with line breaks of its own keeps them. Otherwise the title breaks only where the meaning allows
    (:data:`_TITLE_BREAKS`, and before or after one of ``names``, e.g. the programme's name), into the fewest
    lines of at most ``limit`` characters and, among those, the evenest (a trapezoid or a diamond, not a long line
    and a stub); only a title that cannot break there breaks between other characters (never inside brackets, a
    number or a Latin word). An English title is one line (the browser wraps it between words).
    """
    if "\n" in title:
        return [x.strip() for x in title.splitlines() if x.strip()]
    if lang != "zh" or _width(title) <= limit:
        return [title]
    natural = {m.start() for rx in _TITLE_BREAKS for m in rx.finditer(title)}
    for name in names:
        for m in re.finditer(re.escape(name), title):
            natural |= {m.start(), m.end()}
    depth, inside = 0, set()
    for i, c in enumerate(title):
        depth += (c in "（(《“") - (c in "）)》”")
        if depth > 0:  # inside brackets
            inside.add(i + 1)
        if (i and re.match(r"[0-9A-Za-z.%]{2}", title[i - 1:i + 1])) or c in "、，；：。！？）》”":
            inside.add(i)  # inside a number or a Latin word, or a closing mark that no line starts with
    n = len(title)
    # best[i]: (lines, breaks not by meaning, squared slack of the lines) of title[:i] with a break at i
    best: dict[int, tuple[tuple[int, int, float], list[int]]] = {0: ((0, 0, 0.0), [])}
    for i in range(1, n + 1):
        if i < n and (i in inside or i == n - 1):  # nor a last line of one character
            continue
        for j, ((lines, forced, slack), cuts) in list(best.items()):
            w = _width(title[j:i])
            if j >= i or w > limit:
                continue
            cost = (lines + 1, forced + (0 < i < n and i not in natural), slack + (limit - w) ** 2)
            if i not in best or cost < best[i][0]:
                best[i] = (cost, cuts + [i])
    if n not in best:
        return [title]
    cuts = [0, *best[n][1]]
    return [title[a:b] for a, b in itertools.pairwise(cuts)]


#: The record's (版记) last line in print: 4号 (14 pt) in the 156 mm type area, the printing office one character
#: in from the left, the date one character in from the right, a character at least between them (bulletin.css).
RECORD_FONT_PT = 14.0
RECORD_LINE_PT = 156 / 25.4 * 72
#: The most an office's name is tightened (letter-spacing, in em) before the line's font shrinks instead.
RECORD_MIN_SPACING = -0.1


def record_line_style(office: str, date: str, font_pt: float = RECORD_FONT_PT,
                      line_pt: float = RECORD_LINE_PT) -> tuple[str | None, str | None]:
    """(style of the printing line, style of the office's name) that keep the printing office and the printing
    date on one line of the record (GB/T 9704-2012 7.4.3), the office's name never broken.

    The line holds the office, the date, a character before, after and between them; widths are counted in
    characters (a full-width character 1 em, a half-width one 0.5 em; the body's slightly negative letter-spacing,
    which the line inherits, leaves room for the fonts' slightly wider figures). Where it does not fit at 4号 the
    office's name is tightened just enough (letter-spacing, at most :data:`RECORD_MIN_SPACING`); where even that
    is not enough, the line's font size is reduced just enough (an office had better use a short form of its
    name, 规范化简称; see letterhead.example.yaml). (None, None) when the line fits as it is.
    """
    n = len(office)
    need = _width(office) + _width(date) + 3  # ems: the texts, a character each side and between
    room = line_pt / font_pt
    if need <= room or not n:
        return None, None
    spacing = (room - need) / n
    if spacing >= RECORD_MIN_SPACING:
        return None, f"letter-spacing: {spacing - 0.0005:.3f}em"
    # not enough: the office at the tightest spacing, the line's font as large as still fits
    size = int(line_pt / (need + RECORD_MIN_SPACING * n) * 10) / 10
    return f"font-size: {size}pt", f"letter-spacing: {RECORD_MIN_SPACING}em"


#: The issuer's mark (发文机关标志, GB/T 9704-2012 7.2.3) in print: the page's largest text, from 36 pt for a name of
#: up to 12 characters, a point less for each further character, to 26 pt at the least; a name wider than the type
#: area at its size is compressed horizontally (长体) to the type area's width (156 mm), never wrapped.
ISSUER_MAX_PT = 36.0
ISSUER_MIN_PT = 26.0
ISSUER_FULL_SIZE_CHARS = 12
#: The width the mark may take: the type area's, less a hair so that rounding never wraps it.
ISSUER_LINE_PT = 156 / 25.4 * 72 - 2


def issuer_style(name: str, line_pt: float = ISSUER_LINE_PT) -> tuple[str, str | None]:
    """(style of the issuer's mark, style of its name) in print: its size (:data:`ISSUER_MAX_PT` down to
    :data:`ISSUER_MIN_PT` by length) and, where the name at that size is wider than ``line_pt``, a horizontal
    compression (``transform: scaleX``) to that width, on one line, centred: the name's box is as wide as the
    name (one em a full-width character, half one a half-width one) and its margins take back what the
    compression saves, so that the line centres the compressed name. (…, None): no compression needed."""
    n = _width(name)
    size = max(ISSUER_MIN_PT, min(ISSUER_MAX_PT, ISSUER_MAX_PT - (n - ISSUER_FULL_SIZE_CHARS)))
    size = round(size * 2) / 2
    natural = n * size
    outer = f"font-size: {size:g}pt"
    if natural <= line_pt or not n:
        return outer, None
    scale = line_pt / natural
    margin = (natural - line_pt) / 2
    return outer, (f"width: {natural:.2f}pt; margin: 0 -{margin:.2f}pt; transform: scaleX({scale:.4f}); "
                   "transform-origin: 50% 50%")


#: The sealed form's signature block (GB/T 9704-2012 7.3.5.1, 加盖印章的公文): the 成文日期 four characters in
#: from the right (右空四字), the 发文机关署名 centred over it (以成文日期为准居中编排).
SEALED_DATE_INDENT = 4
#: Characters in one line of the type area at 3号 (GB/T 9704-2012 5.2.4).
LINE_CHARS = 28
#: Where an office's name breaks by meaning: after the body it belongs to (委员会, 管委会, 人民政府, 局, 办公室, ...),
#: the strongest boundary; else after a closing bracket or a department's or an office's kind (厅, 委, 部, 处,
#: 中心, ...).
_NAME_BREAKS = tuple(re.compile("|".join(f"(?<={re.escape(w)})" for w in words)) for words in (
    ("委员会", "管委会", "人民政府", "政府", "局", "办公室", "办公厅"),
    ("）", ")", "厅", "委", "部", "处", "科", "中心", "院", "所", "会", "办")))


def sealed_signature_lines(signature: str | None, date: str, indent: float = SEALED_DATE_INDENT,
                           line: float = LINE_CHARS) -> list[str]:
    """The 发文机关署名's lines in the sealed form: one where, centred on a date ``indent`` characters in from the
    right, it stays inside the type area; else two, each centred on the date (the date stays four characters in,
    右空四字), broken where the meaning allows (:data:`_NAME_BREAKS`: the first kind of boundary where one fits,
    then the second), the most balanced break whose lines both fit; a name with no such break breaks in the
    middle. Widths in characters (a half-width character half of one); [] without a name."""
    if not signature:
        return []
    room = 2 * min(indent + _width(date) / 2, line - indent - _width(date) / 2)  # a line centred on the date

    def fits(text: str) -> bool:
        return _width(text) <= room

    if fits(signature):
        return [signature]
    n = len(signature)
    for rx in _NAME_BREAKS:
        cuts = sorted({m.start() for m in rx.finditer(signature) if 0 < m.start() < n},
                      key=lambda i: (abs(_width(signature[:i]) - _width(signature[i:])), i))
        for i in cuts:
            if fits(signature[:i]) and fits(signature[i:]):
                return [signature[:i], signature[i:]]
    middle = (n + 1) // 2
    return [signature[:middle], signature[middle:]]


def load_letterhead(path) -> dict:
    """Read a letterhead file: ``{field: text or {zh: text, en: text}}`` (see :data:`LETTERHEAD_FIELDS`).

    Raises
    ------
    zhizao.errors.InputError
        If the file cannot be read, is not a mapping, or names an unknown field.
    """
    if path is None:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(BAD_LETTERHEAD, path=str(path),
                         error=str(e).splitlines()[0] if str(e) else type(e).__name__) from e
    if not isinstance(data, dict):
        raise InputError(BAD_LETTERHEAD, path=str(path), error="not a mapping of fields")
    bad = sorted(set(data) - set(LETTERHEAD_FIELDS))
    if bad:
        raise InputError(UNKNOWN_LETTERHEAD_FIELD, field=bad[0], path=str(path), allowed=list(LETTERHEAD_FIELDS))
    _check_letterhead(data, str(path))
    return data


def _check_letterhead(data: dict, path: str) -> None:
    """The fields of a letterhead that are not texts have their own type: ``annex_project_code`` and ``sealed``
    a yes or no."""
    for name, default in (("annex_project_code", False), ("sealed", True)):
        if not isinstance(data.get(name, default), bool):
            raise InputError(BAD_LETTERHEAD, path=path, error=f"{name} is true or false")


def _field(letterhead: dict, name: str, lang: str):
    v = letterhead.get(name)
    if isinstance(v, dict):
        v = v.get(lang)
    if v is None:
        return None
    if isinstance(v, (dt.date, dt.datetime)):
        return v
    v = str(v).strip()
    return v or None


def document_date(value=None) -> dt.date:
    """The document date: ``value`` (a date or ISO text) or today in Beijing time."""
    if value is None:
        return dt.datetime.now(ZoneInfo(DOCUMENT_TZ)).date()
    if isinstance(value, dt.datetime):
        return value.astimezone(ZoneInfo(DOCUMENT_TZ)).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InputError(BAD_LETTERHEAD, path="date", error=f"not a date: {value!r}") from None


def _p(text: str, cls: str | None = None) -> dict:
    return {"type": "p", "text": text, "cls": cls}


def _h3(text: str) -> dict:
    return {"type": "h3", "text": text}


#: The class of a table cell holding a short label (a district, a status, an indicator, a year): kept on one line
#: (bulletin.css), never broken inside a word such as 九龙坡区. (A code such as P0001 is one word already.)
LABEL = "label"


def _cell(text, num: bool = False, cls: str | None = None, span: int | None = None, parts=None) -> dict:
    """A table cell; ``parts``: its text as pieces ``(text, whole)``, a whole piece never broken inside (print:
    a line breaks between pieces or inside a piece that is not whole)."""
    return {"text": str(text), "num": num, "cls": cls, "span": span, "parts": parts}


#: A Chinese label of the annex broken where its meaning allows, its pieces each whole (附件1's status and type
#: columns take two short lines, so that the project's and the enterprise's names have the room): 已建成 / 投产,
#: 数字化车间和智能工厂 / 信息系统集成, 工业互联网平台 / 与企业上云.
_LABEL_PIECES = re.compile(r"(?<=已建成)(?=投产)|(?<=智能工厂)(?=信息系统)|(?<=平台)(?=与企业)|(?<=智能制造)(?=新模式)")
#: The word that ends a Chinese enterprise's or project's name, kept whole at the end of its line (有限公司, not
#: 有限公 / 司; 上云项目, not 上云项 / 目).
_NAME_TAIL = re.compile(r"(股份有限公司|有限责任公司|有限公司|集团公司|公司|..项目|..工程)$")


def _pieces(text: str, lang: str, kind: str) -> list[tuple[str, bool]] | None:
    """A Chinese annex cell's text as pieces (:func:`_cell`): a label (``kind`` "label") in whole pieces broken
    by meaning; a name (``kind`` "name") free to break but for its last word, in either language (an English
    notice lists the register's Chinese names as they are). None: as it is (an English label, or nothing to keep
    whole)."""
    if not text:
        return None
    if kind == "label":
        return [(x, True) for x in _LABEL_PIECES.split(text)] if lang == "zh" else None
    m = _NAME_TAIL.search(text)
    if not m or m.start() == 0:
        return None
    return [(text[:m.start()], False), (m.group(0), True)]


def _table(head: list, rows: list[list[dict]], caption: str | None = None, foot: str | None = None,
           cls: str | None = None, head2: list | None = None, total: list | None = None) -> dict:
    head = [h if isinstance(h, dict) else _cell(h) for h in head]
    return {"type": "table", "head": head, "head2": head2, "rows": rows, "caption": caption, "foot": foot,
            "cls": cls, "total": total}


#: The minus sign of a negative number in the notice's text and tables (U+2212), not the hyphen-minus.
MINUS = "\u2212"


class _NoticeFormatter(Formatter):
    """The notice's formatting: a negative percentage with the minus sign (−12.5%, :data:`MINUS`), as a typeset
    document writes it; a hyphen is shorter and may break a line after it."""

    def pct(self, v, digits: int = 1) -> str:
        return super().pct(v, digits).replace("-", MINUS)


class _Bulletin:
    """The notice's content in one language, from one statistics dict."""

    def __init__(self, stats: dict, lang: str, letterhead: dict | None = None, date=None, chart_titles: bool = True):
        self.s = stats
        #: charts carry their title (on a page); off in the notice, whose captions name them
        self.chart_titles = chart_titles
        self.lang = lang
        self.tr = translations(lang)
        self._ = self.tr.gettext
        self.n_ = self.tr.ngettext
        self.f = _NoticeFormatter(lang)
        self.lh = letterhead or {}
        _check_letterhead(self.lh, "letterhead")
        self.date = document_date(_field(self.lh, "date", lang))
        t = stats["totals"]
        self.simulated = bool(t.get("n_simulated_projects"))

    # -- small helpers
    def ind(self, key: str) -> str:
        return vocab.label("indicator", key, self.lang)

    def gain(self, key: str) -> str:
        return vocab.label("gain", key, self.lang)

    def conf(self) -> str:
        return self.f.pct(self.s["confidence"], 0)

    def sep(self) -> str:
        return "" if self.lang == "zh" else " "

    def money(self, yuan) -> str:
        """An amount in running text: 1246万元 / 26.18亿元; CNY 12.5 million / CNY 2.62 billion."""
        _ = self._
        if yuan is None or pd.isna(yuan):
            return NULL
        if self.lang == "zh":
            if yuan >= 1e8:
                return _("%(v)s hundred million CNY") % {"v": f"{yuan / 1e8:.2f}".rstrip("0").rstrip(".")}
            return _("%(v)s ten thousand CNY") % {"v": self.f.wan(yuan, 1)}
        if yuan >= 1e9:
            return _("CNY %(v)s billion") % {"v": f"{yuan / 1e9:,.2f}"}
        return _("CNY %(v)s million") % {"v": self.f.wan(yuan, 1)}

    def listing(self, items: list[str]) -> str:
        if not items:
            return ""
        if self.lang == "zh":
            return "、".join(items)
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

    def programme(self) -> str | None:
        return _field(self.lh, "programme", self.lang)

    def title(self, title: str | None = None) -> str:
        _ = self._
        if title:
            return title
        t = _field(self.lh, "title", self.lang)
        if t:
            return t
        prog = self.programme()
        if prog:
            return _("Notice on the results of the intelligent transformation projects of %(programme)s") % {
                "programme": prog}
        return _("Notice on the results of the intelligent transformation projects")

    # -- the body
    def period_text(self) -> str | None:
        """The projects' start dates as an inclusive period (the filter's bounds where given): in months where
        every start is a month's first day (a register that records the month a project starts: "2021年3月至
        2023年2月", not "2021年3月1日至2023年2月1日", which reads as if the days were known), else in days."""
        prj = self.s["projects"]
        fl = self.s["filters"]
        if not len(prj):
            return None
        tz = prj["tz"].iloc[0] if isinstance(prj["tz"].iloc[0], str) else DOCUMENT_TZ
        starts = pd.to_datetime(prj["start"], utc=True).dt.tz_convert(tz)
        first = pd.Timestamp(fl["start"]) if fl.get("start") else starts.min()
        last = pd.Timestamp(fl["end"]) - pd.Timedelta(1, "ns") if fl.get("end") else starts.max()
        ends_month = fl.get("end") is None or pd.Timestamp(fl["end"]).day == 1  # a bound after a whole month
        if first.day == 1 and ends_month and all(t.day == 1 for t in starts.dropna()):
            return self.f.to(self.f.month(first), self.f.month(last))
        if fl.get("end"):
            return self.f.period(first, pd.Timestamp(fl["end"]), end_exclusive=True)
        return self.f.period(first, starts.max(), end_exclusive=False)

    def district(self, code) -> str:
        """A district's name in the notice's language (the district vocabulary), not its stored code; an unknown
        one as stored."""
        if code is None or (not isinstance(code, str) and pd.isna(code)) or code == "":
            return self._("(not stated)")
        from zhizao.portfolio.vocabularies import vocabulary

        return vocabulary("district").label(code, self.lang)

    def districts(self) -> list[str]:
        d = self.s["by_district"]
        return [self.district(k) for k in d["district"] if isinstance(k, str)]

    def issuer(self) -> str | None:
        """The issuing office's name for running text: the signature (发文机关署名), else the header (发文机关标志)
        without its closing 文件; None without either."""
        name = _field(self.lh, "signature", self.lang)
        if not name:
            header = _field(self.lh, "header", self.lang)
            name = re.sub(r"文件$", "", header) if header else None
        return name or None

    def opening(self) -> list[str]:
        """The opening (发文缘由, then 现将有关情况通报如下：): the letterhead's paragraphs, else one made from the
        notice's data: why, who, from what data up to when (the last day of data the stored results used: the
        date qualifies the data, 企业截至……的生产运行数据, not the projects, whose count is the register's as of the
        document date in 一、总体情况) and how many projects. A notice (通报) states its reason after the addressees
        and before its first section."""
        _ = self._
        own = _field(self.lh, "opening", self.lang)
        if own:
            return [x.strip() for x in own.split("\n\n") if x.strip()]
        t = self.s["totals"]
        if not t["n_projects"]:
            return []
        prog = self.programme()
        purpose = (_("To take full stock of the outcomes of the intelligent transformation projects of "
                     "%(programme)s") % {"programme": prog} if prog else
                   _("To take full stock of the outcomes of the intelligent transformation projects"))
        until = (self.s.get("basis") or {}).get("data_until")
        values = {"purpose": purpose, "n": self.f.count(t["n_projects"]),
                  "until": _(" up to %(date)s") % {"date": self.f.day(until)} if until else ""}
        # the office by its name in Chinese (依据……进行了统计和核验 with its subject); an English notice says it in
        # the passive, which reads better than an office's long name as a subject
        issuer = self.issuer() if self.lang == "zh" else None
        if issuer:
            text = _("%(purpose)s, %(issuer)s has compiled and verified the results of %(n)s projects from their "
                     "applications and the enterprises' production data%(until)s.") % {**values, "issuer": issuer}
        else:
            text = self.n_("%(purpose)s, the results of %(n)s project have been compiled and verified from its "
                           "application and the enterprise's production data%(until)s.",
                           "%(purpose)s, the results of %(n)s projects have been compiled and verified from their "
                           "applications and the enterprises' production data%(until)s.", t["n_projects"]) % values
        return [text + self.sep() + _("The results are set out below:")]

    def scope_paragraph(self) -> str:
        _ = self._
        t = self.s["totals"]
        n = t["n_projects"]
        prog = self.programme()
        parts = {"date": self.f.day(self.date), "n": self.f.count(n), "e": self.f.count(t["n_enterprises"]),
                 "programme": prog or ""}
        if self.lang == "zh":
            text = _("As of %(date)s, %(programme)s had supported %(n)s intelligent transformation projects in "
                     "total (cumulative), in %(e)s enterprises") % parts
        else:
            text = (_("As of %(date)s, %(programme)s had supported %(n)s intelligent transformation projects in "
                      "total (cumulative), in %(e)s enterprises") if prog else
                    _("As of %(date)s, %(n)s intelligent transformation projects had been supported in total "
                      "(cumulative), in %(e)s enterprises")) % parts
            if n == 1:
                text = text.replace(" projects ", " project ").replace(" enterprises", " enterprise"
                                                                        if t["n_enterprises"] == 1 else " enterprises")
        if t.get("investment") is not None:
            if t["n_investment"] == n:
                text += _(", with a total investment of %(money)s") % {"money": self.money(t["investment"])}
            else:
                text += _(", with a total investment of %(money)s (%(k)s projects stating an investment)") % {
                    "money": self.money(t["investment"]), "k": self.f.count(t["n_investment"])}
        ds = self.districts()
        if len(ds) == 1:
            text += _("; all projects are in %(district)s") % {"district": ds[0]}
        elif ds:
            # 区县 (districts and counties) unless every one is a 区: then N个区
            key = _("; the projects are in %(k)s urban districts: %(districts)s") if self.lang == "zh" and all(
                d.endswith("区") for d in ds) else _("; the projects are in %(k)s districts: %(districts)s")
            text += key % {"k": self.f.count(len(ds)), "districts": self.listing(ds)}
        period = self.period_text()
        if period:
            text += _("; their start dates run from %(period)s") % {"period": period}
        # where the reader finds each project: the annexes' numbers as the annex list gives them (附件1、附件2)
        return _("%(text)s.") % {"text": text} + self.sep() + _(
            "Annex %(projects)s lists every project; Annex %(results)s gives each project's declared and verified "
            "value for every indicator.") % {"projects": 1, "results": 2}

    def designation_paragraph(self) -> str | None:
        _ = self._
        dl = self.s["by_designation_level"]
        d = self.s["by_designation"]
        if not len(d):
            return None
        parts = []
        rank = {lv: k for k, lv in enumerate(("national", "provincial", "municipal", "district"))}
        for r in d.to_dict("records"):
            g = dl[dl["designation"] == r["designation"]]
            levels = sorted(g.to_dict("records"), key=lambda x: (rank.get(x["level"], 9), str(x["level"])))
            one, many = DESIGNATION_COUNTS.get(r["designation"], ("", ""))
            what = vocab.label("designation", r["designation"], self.lang)  # a ladder tier: its name, not code
            text = (self.n_(one, many, r["n"]) if r["designation"] in DESIGNATION_COUNTS else
                    _("%(n)s %(what)s")) % {"n": self.f.count(r["n"]), "what": what}
            if len(levels) == 1 and isinstance(levels[0]["level"], str):
                text += _(" (all %(level)s)") % {"level": self.level_adj(levels[0]["level"])}
            elif levels:
                text += _(" (%(what)s)") % {"what": ("、" if self.lang == "zh" else ", ").join(
                    _("%(n)s %(level)s") % {"level": self.level_adj(x["level"]), "n": self.f.count(x["n"])}
                    for x in levels)}
            parts.append(text)
        return _("Designated so far (cumulative): %(list)s.") % {"list": self.listing(parts)}

    def level_adj(self, code) -> str:
        """A level as an adjective: 市级 / municipal."""
        if isinstance(code, str) and code in LEVEL_ADJECTIVES:
            return self._(LEVEL_ADJECTIVES[code])
        return self.level(code)

    def level(self, code) -> str:
        return vocab.label("level", code, self.lang)

    def clause(self, ind: str, a: dict, n_all: int) -> str:
        """One indicator's mean, in words: "生产效率平均提升59.8%", with its number of projects where it is not the
        sentence's. Its confidence interval and what the same projects declared are Table 1's columns: a reader
        found five bracketed groups too dense, and two declared means of one indicator in one sentence read as a
        contradiction."""
        _ = self._
        mean = a["mean"]
        up = mean >= 0 or round(abs(mean) * 100, 1) == 0
        text = _(PHRASES[ind][0 if up else 1]) % {"v": self.f.pct(abs(mean))}
        if a["n"] != n_all:
            text += _(" (%(what)s)") % {
                "what": self.n_("%(n)s project", "%(n)s projects", a["n"]) % {"n": self.f.count(a["n"])}}
        return text

    def results_paragraph(self) -> str:
        """One sentence: the declared averages, then those verified from data."""
        _ = self._
        t = self.s["totals"]
        av = self.s["averages"]
        ver = {r["indicator"]: r for r in av[av["basis"] == "verified"].to_dict("records") if r["n"]}
        dec = {r["indicator"]: r for r in av[av["basis"] == "declared"].to_dict("records") if r["n"]}
        nd, nv = t.get("n_declared_projects", 0), t["n_verified_projects"]
        def join(items: list[str]) -> str:
            return "，".join(items) if self.lang == "zh" else self.listing(items)
        d_text = join([self.clause(i, dec[i], nd) for i in PROGRAMME_INDICATORS if i in dec])
        v_text = join([self.clause(i, ver[i], nv) for i in PROGRAMME_INDICATORS if i in ver])
        # the intervals and the same projects' declared means: Table 1's columns, not the running text's
        table = self.sep() + _("Table %(n)s gives each verified mean's confidence interval and what the same "
                               "projects declared.") % {"n": 1}
        pv = self.s["project_values"]
        subset = set(pv.loc[pv["status"] == "verified", "project_id"]) <= set(pv.loc[pv["declared"].notna(),
                                                                                     "project_id"])
        if d_text and v_text:
            if subset and nv == nd:
                key = _("According to the declarations of %(nd)s projects, %(declared)s; each of these %(nv)s "
                        "projects has results verified from data: %(verified)s.")
            elif subset:
                key = _("According to the declarations of %(nd)s projects, %(declared)s; %(nv)s of these projects "
                        "have results verified from data: %(verified)s.")
            else:
                key = _("According to the declarations of %(nd)s projects, %(declared)s; %(nv)s projects were "
                        "verified from data: %(verified)s.")
            return key % {"nd": self.f.count(nd), "declared": d_text, "nv": self.f.count(nv),
                          "verified": v_text} + table
        if d_text:
            return _("According to the declarations of %(nd)s projects, %(declared)s; no result has been verified "
                     "from data yet.") % {"nd": self.f.count(nd), "declared": d_text}
        if v_text:
            return _("No project has declared results; %(nv)s projects were verified from data: %(verified)s.") % {
                "nv": self.f.count(nv), "verified": v_text} + table
        return _("No project has a declared or verified result yet.")

    def averages_table(self) -> dict:
        """Table 1: per indicator the declared mean of all declaring projects, and beside the verified mean the
        declared mean of the same (verified) projects, so that the two compare over one set of projects."""
        _ = self._
        av = self.s["averages"]
        rows = []
        for ind in PROGRAMME_INDICATORS:
            g = {r["basis"]: r for r in av[av["indicator"] == ind].to_dict("records")}
            d, v = g.get("declared", {}), g.get("verified", {})
            same = v.get("paired_declared_mean") if v.get("paired_n") else None
            rows.append([_cell(self.gain(ind), cls=LABEL), _cell(self.f.count(d.get("n", 0)), True),
                         _cell(self.f.pct(d.get("mean")), True), _cell(self.f.count(v.get("n", 0)), True),
                         _cell(self.f.pct(same), True), _cell(self.f.pct(v.get("mean")), True),
                         _cell(self.f.pct_range(v.get("ci_low"), v.get("ci_high")), True),
                         _cell(self.f.pct(v.get("median")), True)])
        # two header rows: the set of projects over each group of columns (all declaring projects; the verified
        # ones, whose declared and verified means compare), each column's name under it - short enough that no
        # header breaks inside a word in the type area
        head = [_cell(_("Indicator"), cls=LABEL), _cell(_("All declaring projects"), cls="group", span=2),
                _cell(_("Verified projects (same projects)"), cls="group", span=5)]
        head2 = [_cell(_("Averages: projects"), True), _cell(_("Averages: mean"), True),
                 _cell(_("Averages: projects"), True), _cell(_("Averages: declared mean"), True),
                 _cell(_("Averages: verified mean"), True),
                 _cell(_("%(conf)s confidence interval") % {"conf": self.conf()}, True),
                 _cell(_("Averages: verified median"), True)]
        return _table(head, rows, head2=head2,
                      caption=_("Table %(n)s. Average improvement per indicator") % {"n": 1},
                      foot=_("Note: %(text)s") % {"text": _(
                          "Positive values are improvements (a rise in efficiency, a reduction of the others); "
                          "negative values are deteriorations. The verified projects' declared mean is the mean of "
                          "what they declared (those of them that declared the indicator).")})

    def averages_paired(self) -> bool:
        """Whether Figure 1 compares verified means with the same projects' declared means (some indicator is
        verified); else it shows the declared means alone."""
        av = self.s["averages"]
        return bool(((av["basis"] == "verified") & (av["n"] > 0)).any())

    def averages_chart(self) -> str | None:
        """Figure 1: per verified indicator the declared mean of the verified projects (the same projects) beside
        their verified mean; without any verified indicator, the declared means of all declaring projects."""
        _ = self._
        if not bulletin_chart_exists(self.s, "indicators"):
            return None
        av = self.s["averages"]
        av = av[av["n"] > 0]
        if self.averages_paired():
            declared = _("Declared (same projects)")
            verified = vocab.label("basis", "verified", self.lang)
            rows = []
            for r in av[av["basis"] == "verified"].to_dict("records"):
                if r.get("paired_n") and pd.notna(r.get("paired_declared_mean")):
                    rows.append((r["indicator"], declared, float(r["paired_declared_mean"])))
                rows.append((r["indicator"], verified, float(r["mean"])))
            basis_order = [declared, verified]
            title = _("Declared and verified average improvement per indicator, same projects")
        else:
            rows = [(r["indicator"], vocab.label("basis", r["basis"], self.lang), float(r["mean"]))
                    for r in av.to_dict("records")]
            basis_order = [vocab.label("basis", b, self.lang) for b in ("declared", "verified")]
            title = _("Declared and verified average improvement per indicator")
        df = pd.DataFrame({"indicator": [self.gain(i) for i, _b, _m in rows], "basis": [b for _i, b, _m in rows],
                           "mean": [m for _i, _b, m in rows], "text": [self.f.pct(m) for _i, _b, m in rows]})
        order = [self.gain(i) for i in PROGRAMME_INDICATORS]
        return charts.to_svg(charts.paired_bars(
            df, self.chart_title(title), _("Average improvement"), basis_order, order), self.lang)

    def chart_title(self, title: str) -> str | None:
        return title if self.chart_titles else None

    def urban_districts(self) -> bool:
        """Whether every district of the notice is a 区 (a Chinese notice then says 区, not 区县: "分布在……5个区"
        in the text, the tables' and the figure's 区 too)."""
        ds = self.districts()
        return self.lang == "zh" and bool(ds) and len(ds) == len(self.s["by_district"]) and all(
            d.endswith("区") for d in ds)

    def district_word(self, text: str) -> str:
        """``text`` with 区县 said as 区 where every district is one (:meth:`urban_districts`)."""
        return text.replace("区县", "区") if self.urban_districts() else text

    def year(self, k) -> str:
        """A start year as a label: 2024年 in Chinese, 2024 in English."""
        if k is None or (not isinstance(k, str) and pd.isna(k)):
            return self._("(not stated)")
        text = str(int(k)) if isinstance(k, float) and float(k).is_integer() else str(k)
        return f"{text}年" if self.lang == "zh" and text.isdigit() else text

    def count_rows(self, df: pd.DataFrame, key: str, kind: str | None) -> list[list[dict]]:
        total = int(df["n_projects"].sum()) if len(df) else 0
        rows = []
        for r in df.to_dict("records"):
            k = r[key]
            text = self.district(k) if key == "district" else vocab.label(kind, k, self.lang) if kind else \
                self.year(k) if key == "year" else (
                self._("(not stated)") if k is None or (not isinstance(k, str) and pd.isna(k)) else str(k))
            # a district or a year is a short label, kept on one line; an industry or a type may wrap
            rows.append([_cell(text, cls=LABEL if key in ("district", "year") else None),
                         _cell(self.f.count(r["n_projects"]), True),
                         _cell(self.f.pct(r["n_projects"] / total if total else None), True),
                         _cell(self.f.wan(r.get("investment")), True)])
        return rows

    def count_table(self, df, key, head, kind, number) -> dict:
        _ = self._
        if not len(df):
            return _p(_("No projects."), "nodata")
        inv = self.s["totals"].get("investment")
        total = [_cell(_("Total")), _cell(self.f.count(df["n_projects"].sum()), True), _cell(self.f.pct(1.0), True),
                 _cell(self.f.wan(inv), True)]
        rows = self.count_rows(df, key, kind)
        # the shares and amounts as shown, each rounded: where they do not add up to the total shown, a note says
        # why (a reader added them up)
        def shown(text: str) -> float:
            try:
                return float(text.replace(",", "").replace("%", "").replace(MINUS, "-"))
            except ValueError:
                return 0.0

        off = any(abs(sum(shown(r[c]["text"]) for r in rows) - shown(total[c]["text"])) > 1e-6 for c in (2, 3))
        return _table([_cell(head), _cell(_("Number of projects"), True), _cell(_("Share"), True),
                       _cell(self.money_head(), True)], rows,
                      caption=_("Table %(n)s. Projects by %(what)s") % {"n": number, "what": head.lower()
                                                                        if self.lang == "en" else head},
                      total=total, foot=_("Note: %(text)s") % {
                          "text": _("Because of rounding, the parts may not add up to the total.")} if off else None)

    def amount_format(self) -> str:
        return ".0f" if self.lang == "zh" else ",.1f"

    def money_head(self) -> str:
        return self._("Investment (10,000 CNY)") if self.lang == "zh" else self._("Investment (CNY million)")

    def district_chart(self) -> str | None:
        if not bulletin_chart_exists(self.s, "district"):
            return None
        df = _ranked(self.s["by_district"], "district")
        _ = self._
        data = pd.DataFrame({"label": [self.district(k) for k in df["district"]],
                             "projects": df["n_projects"].astype(int),
                             "investment": [(x or 0) / (1e4 if self.lang == "zh" else 1e6)
                                            for x in df["investment"]]})
        return charts.to_svg(charts.count_and_amount(
            data, self.chart_title(_("Projects and investment by district")), _("Number of projects"),
            self.money_head(), self.amount_format()), self.lang)

    def year_chart(self) -> str | None:
        if not bulletin_chart_exists(self.s, "year"):
            return None
        df = self.s["by_year"]
        _ = self._
        data = pd.DataFrame({"label": [self.year(k) for k in df["year"]],
                             "projects": df["n_projects"].astype(int),
                             "investment": [(x or 0) / (1e4 if self.lang == "zh" else 1e6)
                                            for x in df["investment"]]})
        return charts.to_svg(charts.count_and_amount(
            data, self.chart_title(_("Projects and investment by start year")), _("Number of projects"),
            self.money_head(), self.amount_format()), self.lang)

    def spread_paragraph(self) -> str | None:
        _ = self._
        d = self.s["by_district"]
        i = self.s["by_industry"]
        if not len(d):
            return None
        parts = []
        if len(d) > 1:
            top = d.sort_values("n_projects", ascending=False, kind="stable").iloc[0]
            parts.append(_("By district, %(district)s has the most projects (%(n)s)") % {
                "district": self.district(top["district"]),
                "n": self.f.count(top["n_projects"])})
        if len(i) > 1:
            ti = i.sort_values("n_projects", ascending=False, kind="stable").iloc[0]
            parts.append(_("by industry, %(industry)s leads with %(n)s projects") % {
                "industry": vocab.label("industry", ti["industry"], self.lang), "n": self.f.count(ti["n_projects"])})
        if not parts:
            return None
        text = ("；" if self.lang == "zh" else "; ").join(parts)
        return _("%(text)s.") % {"text": text[0].upper() + text[1:] if self.lang == "en" else text}

    def sections(self) -> list[dict]:
        """The body's sections (computed once): the notes on method, then the letterhead's requests (closing) as a
        section of their own where it gives any."""
        if getattr(self, "_sections", None) is None:
            out = self._build_sections()
            out.append(self.notes_section(len(out)))
            requests = self.requests_section(len(out))
            if requests:
                out.append(requests)
            self._sections = out
        return self._sections

    def requests_section(self, k: int) -> dict | None:
        """The letterhead's closing paragraphs as the body's last numbered section, "五、有关要求" ("5. Requests"):
        a reader found them read as part of "四、有关说明". None without a closing."""
        closing = _field(self.lh, "closing", self.lang)
        paragraphs = [x.strip() for x in closing.split("\n\n") if x.strip()] if closing else []
        if not paragraphs:
            return None
        numbers = ORDINALS[self.lang]
        return {"id": "requests", "title": self._("Requests"),
                "number": (numbers[k] + "、") if numbers else f"{k + 1}. ", "blocks": [_p(x) for x in paragraphs]}

    def closing_formula(self) -> list[str]:
        """The body's last line, after its sections: 特此通报。 (a paragraph of its own, two characters in); an
        English notice has none."""
        return [self._("This notice is hereby issued.")] if self.lang == "zh" else []

    def notes_section(self, k: int) -> dict:
        """The notes on method (说明) as the body's last numbered section (GB/T 9704-2012 7.3.3: 一、（一）1.（1）):
        "四、有关说明" with items "（一）……", "4. Notes on method" with items "(1) ..."; the closing paragraph, the
        annex list and the signature follow it."""
        numbers = ORDINALS[self.lang]
        items = [(f"（{numbers[j]}）" if numbers else f"({j + 1}) ") + text for j, text in enumerate(self.notes())]
        return {"id": "notes", "title": self._("Notes on method"), "number": (numbers[k] + "、") if numbers
                else f"{k + 1}. ", "blocks": [_p(text, "note") for text in items]}

    def _build_sections(self) -> list[dict]:
        _ = self._
        s = self.s
        numbers = ORDINALS[self.lang]
        if not s["totals"]["n_projects"]:
            return [{"id": "general", "title": _("General situation"), "number": numbers[0] + "、" if numbers
                     else "1. ", "blocks": [_p(_("No intelligent transformation project in the selection."))]}]
        general = [_p(self.scope_paragraph())]
        dp = self.designation_paragraph()
        if dp:
            general.append(_p(dp))
        results = [_p(self.results_paragraph()), self.averages_table()]
        svg = self.averages_chart()
        if svg:
            caption = _("Figure %(n)s. Declared and verified average improvement per indicator, same projects "
                        "(positive = better)") if self.averages_paired() else _(
                "Figure %(n)s. Declared and verified average improvement per indicator (positive = better)")
            results.append({"type": "figure", "svg": Markup(svg), "caption": caption % {"n": 1}})
        spread = []
        sp = self.spread_paragraph()
        if sp:
            spread.append(_p(sp))
        svg = self.district_chart()
        if svg:
            spread.append({"type": "figure", "svg": Markup(svg),
                           "caption": self.district_word(_("Figure %(n)s. Projects and investment by district")) % {
                               "n": 2}})
        spread.append(self.count_table(_ranked(s["by_district"], "district"), "district",
                                       self.district_word(_("District")), None, 2))
        spread.append(self.count_table(_ranked(s["by_industry"], "industry"), "industry", _("Industry"), "industry",
                                       3))
        svg = self.year_chart()
        if svg:
            spread.append({"type": "figure", "svg": Markup(svg),
                           "caption": _("Figure %(n)s. Projects and investment by start year") % {"n": 3}})
        spread.append(self.count_table(s["by_year"], "year", _("Start year"), None, 4))
        spread.append(self.count_table(s["by_type"], "type", _("Project type"), "type", 5))
        out = [{"id": "general", "title": _("General situation"), "blocks": general},
               {"id": "results", "title": _("Results of the transformation"), "blocks": results},
               {"id": "spread", "title": _("Projects by district, industry and year"), "blocks": spread}]
        for k, sec in enumerate(out):
            sec["number"] = (numbers[k] + "、") if numbers else f"{k + 1}. "
        return out

    def notes(self) -> list[str]:
        """The notes on method (说明): the body's last part, before the annex list and the signature."""
        _ = self._
        s = self.s
        candidates = [
            _("Declared values are the improvements the enterprises stated in their applications; they have not "
              "been checked against data."),
            self.method_note(),
            self.indicative_note(),
            _("Averages are unweighted means of the project values. The confidence interval (%(conf)s) is obtained "
              "by resampling the projects %(n)s times (bootstrap); it shows how much the average depends on which "
              "projects are included.") % {"conf": self.conf(), "n": self.f.count(s.get("n_boot", 2000))},
            _("Positive values are improvements and negative values deteriorations, for every indicator. A unit "
              "designated at several levels counts once in the totals."),
            _("Percentages are rounded to one decimal for display; every average can be recomputed from the values "
              "of the projects in Annex 2."),
        ]
        notes = [n for n in candidates if n]
        if self.simulated:
            n_sim, n_all = s["totals"]["n_simulated_projects"], s["totals"]["n_projects"]
            # "simulated", not where from (项目模拟器 read as software in an office's notice)
            key = _("This notice is made from SIMULATED data (all %(total)s projects are simulated); it describes "
                    "no real enterprise or project.") if n_sim == n_all else \
                _("This notice is made from SIMULATED data (%(n)s of %(total)s projects are simulated); it "
                  "describes no real enterprise or project.")
            notes.insert(0, key % {"n": self.f.count(n_sim), "total": self.f.count(n_all)})
        return notes

    def indicative_note(self) -> str | None:
        """Why fewer projects enter some verified averages: per indicator, the projects whose value was computed
        but failed a check (indicative, marked in 附件2); None where there is none. A reader could not tell why
        operating cost had 69 verified projects of 117 from the body, only from the annex's note."""
        pv = self.s.get("project_values")
        if pv is None or pv.empty:
            return None
        counts = pv.loc[pv["status"] == "indicative"].groupby("indicator").size()
        items = [self.n_("%(n)s project for %(indicator)s", "%(n)s projects for %(indicator)s", int(counts[i])) % {
            "n": self.f.count(int(counts[i])), "indicator": self.ind(i) if self.lang == "zh" else self.ind(i).lower()}
            for i in PROGRAMME_INDICATORS if i in counts]
        if not items:
            return None
        return self._("The values of %(items)s were computed but did not pass a verification check (marked "
                      "%(mark)s in Annex %(annex)s); they are not in the verified averages.") % {
            "items": self.listing(items), "mark": INDICATIVE_MARK, "annex": 2}

    def method_note(self) -> str:
        """How the verified values were computed, as the stored results did it (:mod:`zhizao.portfolio.basis`):
        the windows' months, the conditions the energy and cost baselines were adjusted for, deflated or not."""
        _ = self._
        b = self.s.get("basis") or {}
        # no "this platform" (本平台): the notice's issuer is an office
        text = _("Verified values are computed from the shop-floor data each enterprise connected: the baseline "
                 "period is the whole months before the project start and the reporting period the whole months "
                 "after commissioning, at most 12 months each and as far as there are production data")
        if b.get("baseline_months") and b.get("reporting_months"):
            text += _("; in this notice the baseline periods are %(baseline)s and the reporting periods "
                      "%(reporting)s") % {"baseline": self.months(b["baseline_months"]),
                                          "reporting": self.months(b["reporting_months"])}
        clauses = []
        kinds = {"output": _("good output"), "run_hours": _("equipment run hours"),
                 "scheduled_hours": _("scheduled working hours"), "weather": _("weather"),
                 "day_type": _("day of the week and hour"), "other": _("other recorded conditions")}
        drivers = b.get("drivers") or {}
        if drivers.get("unit_energy"):
            clauses.append(_("unit energy consumption is compared with the baseline adjusted for the reporting "
                             "period's %(drivers)s") % {"drivers": self.listing([kinds[k] for k in drivers[
                                 "unit_energy"]])})
        if drivers.get("operating_cost"):
            yes, no = b.get("cost_deflated", 0), b.get("cost_not_deflated", 0)
            prices = (_("at baseline prices (deflated by a price index)") if yes and not no else
                      _("not deflated (no price index)") if no and not yes else
                      _("deflated to baseline prices for %(n)s of %(total)s projects") % {
                          "n": self.f.count(yes), "total": self.f.count(yes + no)})
            clauses.append(_("operating cost with the baseline adjusted for the reporting period's %(drivers)s, "
                             "%(prices)s") % {"drivers": self.listing([kinds[k] for k in drivers[
                                 "operating_cost"]]), "prices": prices})
        clauses.append(_("efficiency is good output per production hour; the defect rate reduction is relative "
                         "(1.0% to 0.6% is a reduction of 40%); the development cycle is the mean number of days "
                         "from design start to the release of the finalised product"))
        sep = "；" if self.lang == "zh" else "; "
        return _("%(text)s.") % {"text": text + ("。" if self.lang == "zh" else ". ")
                                 + self.capital(sep.join(clauses))}

    def months(self, span) -> str:
        """A number of months or a range of them: 6个月, 3至12个月; 6 months, 3 to 12 months."""
        lo, hi = span
        _ = self._
        if lo == hi:
            return _("%(n)s months") % {"n": self.f.count(lo)}
        return _("%(low)s to %(high)s months") % {"low": self.f.count(lo), "high": self.f.count(hi)}

    def capital(self, text: str) -> str:
        """A sentence's first letter upper case (English; Chinese has none)."""
        return text[:1].upper() + text[1:] if self.lang == "en" else text

    # -- the annexes
    def annex_titles(self) -> list[str]:
        """The annexes' titles, in their order: the projects (附件1), their results per indicator (附件2)."""
        _ = self._
        return [_("Intelligent transformation projects: general information"),
                _("Intelligent transformation projects: declared and verified results")]

    def annex_money(self, yuan) -> str:
        """An investment in the annex: whole 万元 as in the body's tables (658, not 658.0); CNY million with one
        decimal, every row alike."""
        return self.f.wan(yuan) if self.lang == "zh" else self.f.wan(yuan, 1, fixed=True)

    def annexes(self) -> list[dict]:
        """The annexes (GB/T 9704-2012 7.3.7), each ``{id, label, title, table}``: every project's general
        information (附件1) and every indicator's declared and verified value (附件2), keyed by the same 序号.

        One table of all would need 17 columns: on a landscape A4 page at 6.6 pt, too small to read; split in two,
        each is set in 5号 (10.5 pt, bulletin.css), the size of the tables of official documents."""
        _ = self._
        projects = self.s["projects"].to_dict("records")  # both annexes list them, in this order
        tables = [self.projects_annex(projects), self.indicators_annex(projects)]
        return [{"id": f"annex-{k}", "label": _("Annex %(n)s") % {"n": k}, "title": title, "table": table}
                for k, (title, table) in enumerate(zip(self.annex_titles(), tables, strict=True), 1)]

    def projects_annex(self, projects: list[dict]) -> dict:
        """附件1: every project's No., code (where the letterhead asks for it), name, enterprise, district,
        investment, status and type, with the total investment."""
        _ = self._
        # the register's project code (P0001) is an internal code: shown only where the letterhead asks for it
        code = self.lh.get("annex_project_code", False) is True
        rows = []
        for k, p in enumerate(projects, 1):
            ent = p["enterprise"] if isinstance(p["enterprise"], str) else p["enterprise_id"]
            name = p["name"] if isinstance(p["name"], str) else NULL
            status, kind = vocab.label("status", p["status"], self.lang), vocab.label("type", p.get("type"), self.lang)
            rows.append([_cell(self.f.count(k), True)] + ([_cell(p["project_id"])] if code else []) + [
                _cell(name, parts=_pieces(name, self.lang, "name")),
                _cell(ent, parts=_pieces(ent, self.lang, "name")),
                _cell(self.district(p["district"]) if isinstance(p["district"], str) else NULL, cls=LABEL),
                _cell(self.annex_money(p["investment"]), True),
                # a Chinese status at its meaning boundary (已建成 / 投产), an English one on one line
                _cell(status, cls="status" if self.lang == "zh" else LABEL, parts=_pieces(status, self.lang, "label")),
                _cell(kind, cls="type", parts=_pieces(kind, self.lang, "label"))])
        t = self.s["totals"]
        total = [_cell(_("Total"), span=5 if code else 4), _cell(self.annex_money(t.get("investment")), True),
                 _cell(""), _cell("")]
        # every head on one line (序号, 企业名称, not 序 / 号, 企业名 / 称), the investment's unit on a line of its own
        money = self.money_head().replace("（", "\n（").replace(" (", "\n(")
        # each head's class names its column: the Chinese print sets the columns' widths (bulletin.css)
        head = [_cell(_("No."), True, cls=f"{LABEL} no")] + (
            [_cell(_("Project code"), cls=f"{LABEL} code")] if code else []) + [
                _cell(_("Project name"), cls=f"{LABEL} name"), _cell(_("Enterprise name"), cls=f"{LABEL} enterprise"),
                _cell(self.district_word(_("District")), cls=f"{LABEL} district"),
                _cell(money, True, cls=f"{LABEL} money"),
                _cell(_("Status"), cls=f"{LABEL} status"), _cell(_("Project type"), cls=f"{LABEL} type")]
        return _table(head, rows, total=total, cls="annex projects coded" if code else "annex projects")

    def indicator_head(self, key: str) -> str:
        """An indicator's head in 附件2: its name, then its direction on a line of its own (产品不良品率\n降低); in
        English the label as it is."""
        gain, name = self.gain(key), self.ind(key)
        if self.lang == "zh" and gain.startswith(name) and len(gain) > len(name):
            return f"{name}\n{gain[len(name):]}"
        return gain

    def indicators_annex(self, projects: list[dict]) -> dict:
        """附件2: every project's No. and name (as in 附件1) and, per indicator, the improvement declared and the
        one verified."""
        _ = self._
        values = {(r["project_id"], r["indicator"]): r for r in self.s["project_values"].to_dict("records")}
        rows = []
        for k, p in enumerate(projects, 1):
            name = p["name"] if isinstance(p["name"], str) else NULL
            row = [_cell(self.f.count(k), True), _cell(name, parts=_pieces(name, self.lang, "name"))]
            for i in PROGRAMME_INDICATORS:
                r = values.get((p["project_id"], i)) or {}
                row.append(_cell(self.f.pct(r.get("declared")), True))
                # a verified value; a triangle where a value was computed but a check failed (indicative), a dash
                # where nothing was (not declared, no data): a district must know which it has to act on
                status = r.get("status")
                row.append(_cell(self.f.pct(r.get("improvement")) if status == "verified" else
                                 INDICATIVE_MARK if status == "indicative" else NULL, True, cls="verified"))
            rows.append(row)
        # each indicator's head in two lines, its name and its direction (产品不良品率 / 降低), neither broken; the
        # columns' 申报值 and 核验值 whole (bulletin.css): no head broken inside a word
        head = [_cell(_("No."), True, cls=LABEL), _cell(_("Project name"), cls="name")] + \
            [_cell(self.indicator_head(i), cls="group", span=2) for i in PROGRAMME_INDICATORS]
        head2 = [_cell(_("Declared value"), True), _cell(_("Verified value"), True)] * len(PROGRAMME_INDICATORS)
        return _table(head, rows, head2=head2, cls="annex indicators",
                      foot=_("Note: %(text)s") % {"text": _(
                          "the declared value is the improvement stated by the enterprise, the verified value the "
                          "improvement computed from data (positive = better); a dash: not declared, or no data to "
                          "verify; a triangle: computed, but a check failed.")})

    # -- the whole document
    def document(self, title: str | None = None) -> dict:
        _ = self._
        lh = self.lh
        title = self.title(title)
        header, signature = _field(lh, "header", self.lang), _field(lh, "signature", self.lang)
        date = self.f.day(self.date)
        # the signature block for a seal (GB/T 9704-2012 7.3.5.1) unless the letterhead says sealed: false
        # (7.3.5.2, 不加盖印章的公文)
        sealed = lh.get("sealed", True) is not False
        doc = {
            "lang": self.lang, "html_lang": "zh-CN" if self.lang == "zh" else "en",
            "simulated": self.simulated,
            "simulated_banner": _("SIMULATED DATA: this notice is made from simulated data and describes no real "
                                  "enterprise or project."),
            "header": header, "number": _field(lh, "number", self.lang),
            # the issuer's mark the page's largest text, on one line of the type area (a Chinese notice in print)
            "header_style": issuer_style(header) if header and self.lang == "zh" else (None, None),
            "title": title.replace("\n", ""),
            "title_lines": title_lines(title, self.lang, [p for p in [self.programme()] if p]),
            "addressee": _field(lh, "addressee", self.lang),
            "opening": self.opening(),
            "sections": self.sections(),
            # the letterhead's closing is the section 有关要求 (in sections); the closing line is 特此通报。
            "closing": self.closing_formula(),
            "annex_list": self.annex_titles(),
            "signature": signature, "date": date, "sealed": sealed,
            # in print, a name too long to centre on the date in the type area on two lines, each centred on it
            "signature_lines": sealed_signature_lines(signature, date) if sealed and self.lang == "zh"
            else [signature] if signature else [],
            # GB/T 9704-2012 7.3.4, 7.3.7: several annexes are numbered (附件：1.名称 / 附件1), one is not
            "notes": self.notes(), "annexes": self.annexes(),
            "cc": _field(lh, "cc", self.lang),
            # 版记: the printing office and date (GB/T 9704-2012, 7.4.3); the date defaults to the document's
            "printed_by": _field(lh, "printed_by", self.lang),
            "printed_on": self.f.day(document_date(_field(lh, "printed_on", self.lang) or self.date)),
        }
        # the printing office and date on one line, the office's name whole (a Chinese notice in print)
        doc["printed_style"], doc["printed_by_style"] = record_line_style(
            doc["printed_by"], _("Printed on %(date)s") % {"date": doc["printed_on"]}) \
            if doc["printed_by"] and self.lang == "zh" else (None, None)
        return doc

    # -- markdown
    def markdown(self, doc: dict) -> str:
        _ = self._

        def esc(x) -> str:  # a head of two lines (总投资 / （万元）) on one
            return str(x).replace("|", "\\|").replace("\n（", "（").replace("\n", " ")

        def table(b) -> list[str]:
            head = b["head"]
            if b.get("head2"):
                # one header row: group names repeated over their sub-columns
                flat = []
                sub = iter(b["head2"])
                for h in head:
                    if h.get("span") and h.get("cls") == "group":
                        for _k in range(h["span"]):
                            # a Chinese head of two lines (产品不良品率 / 降低) on one, without a space
                            flat.append(_cell(f"{h['text'].replace(chr(10), '')}：{next(sub)['text']}"
                                              if self.lang == "zh"
                                              else f"{h['text']}: {next(sub)['text']}", True))
                    else:
                        flat.append(h)
                head = flat
            out = ["| " + " | ".join(esc(c["text"]) for c in head) + " |",
                   "|" + "|".join("---:" if c.get("num") else "---" for c in head) + "|"]
            for r in b["rows"]:
                out.append("| " + " | ".join(esc(c["text"]) for c in r) + " |")
            if b.get("total"):
                cells = []
                for c in b["total"]:
                    cells += [esc(c["text"])] + [""] * ((c.get("span") or 1) - 1)
                out.append("| " + " | ".join(cells) + " |")
            return out + ([""] + [b["foot"]] if b.get("foot") else []) + [""]

        lines = []
        if doc["simulated"]:
            lines += [f"> **{doc['simulated_banner']}**", ""]
        if doc["header"]:
            lines += [f"**{doc['header']}**", ""]
        if doc["number"]:
            lines += [doc["number"], ""]
        lines += [f"# {doc['title']}", ""]
        if doc["addressee"]:
            lines += [doc["addressee"] + ("：" if self.lang == "zh" else ":"), ""]
        for text in doc["opening"]:
            lines += [text, ""]
        for sec in doc["sections"]:
            lines += [f"## {sec['number']}{sec['title']}", ""]
            for b in sec["blocks"]:
                if b["type"] == "p":
                    lines += [b["text"], ""]
                elif b["type"] == "h3":
                    lines += [f"### {b['text']}", ""]
                elif b["type"] == "table":
                    if b.get("caption"):
                        lines += [f"**{b['caption']}**", ""]
                    lines += table(b)
                elif b["type"] == "figure" and b.get("caption"):
                    lines += [f"*{b['caption']}*", ""]
        # the notes on method are the body's last section (in doc["sections"]); the closing, the annex list and the
        # signature follow them (nothing of the body follows the date)
        lines += [*doc["closing"], ""] if doc["closing"] else []
        # 附件：1.名称, each further annex on a line of its own under the first (a hard break), no punctuation
        # after a name (GB/T 9704-2012 7.3.4)
        annexes = doc["annex_list"][0] if len(doc["annex_list"]) == 1 else \
            ("  \n" + ("　　　" if self.lang == "zh" else "")).join(
                f"{k}.{a}" if self.lang == "zh" else f"{k}. {a}" for k, a in enumerate(doc["annex_list"], 1))
        lines += [_("Annex: %(list)s") % {"list": annexes}, ""]
        if doc["signature"]:
            lines += [doc["signature"], ""]
        lines += [doc["date"], ""]
        for a in doc["annexes"]:
            lines += [f"## {a['label']}　{a['title']}" if self.lang == "zh" else f"## {a['label']}: {a['title']}", ""]
            lines += table(a["table"])
        if doc["cc"]:  # the record (版记) closes the document, after its annex (GB/T 9704-2012, 7.4)
            lines += ["", _("Copied to: %(cc)s") % {"cc": doc["cc"]}]
        if doc["printed_by"]:
            lines += ["", f"{doc['printed_by']}　　{_('Printed on %(date)s') % {'date': doc['printed_on']}}"]
        return "\n".join(lines).rstrip() + "\n"


#: No break between a table's, figure's or annex's word and its number in print (表1, 图2, 附件1).
WORD_JOINER = "\u2060"
_REFERENCE = re.compile(r"(?<=[表图件])(?=\d)")


def _env(template_dir=None) -> jinja2.Environment:
    loaders = [jinja2.FileSystemLoader(str(template_dir))] if template_dir else []
    loaders.append(jinja2.FileSystemLoader(str(TEMPLATES)))
    return jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=True,
                              extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True,
                              undefined=jinja2.StrictUndefined)


#: The notice's charts, by name: projects and investment by district and by start year, declared against
#: verified average improvement per indicator.
CHART_NAMES = ("district", "year", "indicators")


def _ranked(df: pd.DataFrame, key: str) -> pd.DataFrame:
    """Counts by ``key`` with the most projects first (ties in the given order), a group without a value
    ("not stated") last: how a notice lists districts and industries."""
    if not len(df):
        return df
    unknown = df[key].isna().to_numpy()
    return pd.concat([df[~unknown].sort_values("n_projects", ascending=False, kind="stable"), df[unknown]])


def bulletin_charts(stats: dict, lang: str = "zh", names=CHART_NAMES) -> dict[str, str | None]:
    """The notice's charts ``names`` (of :data:`CHART_NAMES`) as SVG text (None where there is nothing to
    draw), for pages that show them too: ``district`` and ``year`` (projects and investment), ``indicators``
    (declared against verified average improvement)."""
    check_lang(lang)
    b = _Bulletin(stats, lang)
    draw = {"district": b.district_chart, "year": b.year_chart, "indicators": b.averages_chart}
    return {name: draw[name]() for name in names}


def bulletin_chart_exists(stats: dict, name: str) -> bool:
    """Whether :func:`bulletin_charts` draws chart ``name`` for ``stats`` (the charts' own test, without drawing
    one): none for a selection without projects."""
    if name == "indicators":
        return bool((stats["averages"]["n"] > 0).any()) if len(stats["averages"]) else False
    return bool(len(stats["by_district" if name == "district" else "by_year"]))


def bulletin_html(stats: dict, lang: str = "zh", title: str | None = None, letterhead: dict | None = None,
                  template_dir=None, date=None, for_print: bool = False,
                  blank_before_record: bool = False) -> tuple[str, str]:
    """The notice as (HTML, Markdown) text (see :func:`render_bulletin`); with ``blank_before_record`` (in print),
    a blank page before the record (版记), both without a page number (GB/T 9704-2012 7.5)."""
    check_lang(lang)
    from zhizao import __version__

    lh = dict(letterhead or {})
    if date is not None:
        lh["date"] = date
    b = _Bulletin(stats, lang, lh, chart_titles=False)  # its captions name the charts
    doc = b.document(title)
    doc["blank_before_record"] = bool(blank_before_record and for_print and (doc["cc"] or doc["printed_by"]))
    env = _env(template_dir)
    env.install_gettext_translations(b.tr, newstyle=True)  # type: ignore[attr-defined]  # added by the jinja2.ext.i18n extension
    try:
        css = env.get_template("bulletin.css").render()
        html = env.get_template("bulletin.html.j2").render(doc=doc, css=Markup(css), version=__version__,
                                                          for_print=for_print)
    except jinja2.TemplateError as e:
        if template_dir is None:  # the shipped templates: a bug of ours, not the office's input
            raise
        # an office's own template (copied from an earlier version, or edited): name it and what it may use
        raise InputError(BAD_TEMPLATE, path=str(template_dir), error=str(e), fields=sorted(doc)) from None
    if for_print:  # charts at their own size on paper (a fluid height leaves blank space in WeasyPrint)
        html = html.replace(charts.FLUID, "")
        # a reference to a table, figure or annex kept on one line (表1, not 表 / 1 with "1。" alone on the next):
        # a word joiner (U+2060, no width, not extracted as text) between the word and its number, in paragraphs
        html = re.sub(r"(<p\b[^>]*>)([^<]*)(</p>)",
                      lambda m: m[1] + _REFERENCE.sub(WORD_JOINER, m[2]) + m[3], html)
    return html, b.markdown(doc)


def render_bulletin(ws, out_dir, lang: str = "zh", title: str | None = None, stats: dict | None = None,
                    letterhead=None, template_dir=None, date=None, formats=("html", "md"),
                    **statistics_filters) -> dict[str, Path]:
    """Write the programme notice (通报) as HTML, Markdown and, if asked, PDF.

    Parameters
    ----------
    ws : zhizao.Workspace
    out_dir : str or path-like
        Folder (created if missing); ``bulletin.<lang>.<format>`` files are overwritten.
    lang : {'zh', 'en'}, default 'zh'
    title : str, optional
        The notice's title (default: the letterhead's, else "关于……智能化改造项目实施成效的通报").
    stats : dict, optional
        A result of :func:`~zhizao.portfolio.stats.programme_statistics` (else computed here with
        ``statistics_filters``).
    letterhead : dict or path-like, optional
        The office's header, document number, addressees, programme name, opening, closing, signature, date,
        seal (``sealed``) and the annex's code column (``annex_project_code``)
        (:func:`load_letterhead`).
    template_dir : path-like, optional
        A folder whose ``bulletin.html.j2`` / ``bulletin.css`` replace the built-in ones.
    date : date or str, optional
        The document date (default: the letterhead's, else today in Beijing time).
    formats : iterable of {'html', 'md', 'pdf'}, default ('html', 'md')
    **statistics_filters
        park, district, start, end, confidence, n_boot, seed: passed to ``programme_statistics``.

    Returns
    -------
    dict
        Format -> Path of each file written.

    Raises
    ------
    ValueError
        For an unknown ``lang``.
    zhizao.errors.InputError
        For an unreadable letterhead or an unknown format.
    """
    check_lang(lang)
    formats = tuple(formats)
    bad = [f for f in formats if f not in ("html", "md", "pdf")]
    if bad:
        from zhizao.report.pdf import UNKNOWN_FORMAT

        raise InputError(UNKNOWN_FORMAT, format=bad[0], allowed=["html", "md", "pdf"])
    lh = letterhead if isinstance(letterhead, dict) else load_letterhead(letterhead)
    s = stats if stats is not None else programme_statistics(ws, **statistics_filters)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html, md = bulletin_html(s, lang, title, lh, template_dir, date)
    paths: dict[str, Path] = {}
    if "html" in formats:
        paths["html"] = out / f"bulletin.{lang}.html"
        paths["html"].write_text(html, encoding="utf-8")
    if "md" in formats:
        paths["md"] = out / f"bulletin.{lang}.md"
        paths["md"].write_text(md, encoding="utf-8")
    if "pdf" in formats:
        from zhizao.report.pdf import html_to_pdf

        printed, _md = bulletin_html(s, lang, title, lh, template_dir, date, for_print=True)

        def record_on_an_even_page(pages: int) -> str | None:
            # the record (版记) on the last side of a sheet printed on both sides, an even page (GB/T 9704-2012
            # 7.4, 7.5): where the body and the annexes end on an even page, a blank page before it
            if lang != "zh" or not pages % 2 or not (_field(lh, "cc", lang) or _field(lh, "printed_by", lang)):
                return None
            return bulletin_html(s, lang, title, lh, template_dir, date, for_print=True, blank_before_record=True)[0]

        paths["pdf"] = html_to_pdf(printed, out / f"bulletin.{lang}.pdf", relayout=record_on_an_even_page)
    return paths
