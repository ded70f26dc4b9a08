"""Message catalogues and locale formatting (Babel), shared by every front end.

The catalogues are the ``.po`` files under ``locale/<lang>/LC_MESSAGES/``: ``zhizao.po`` and, for parts of
zhizao that keep their messages apart, further files merged into it (``programme.po``: the register,
workflow, maturity and recognition rules); msgids are English. They are compiled in memory when first used
(``read_po`` -> ``write_mo`` -> :class:`babel.support.Translations`), so no compile step is needed.
Numbers and dates are formatted with :mod:`babel.numbers` and :mod:`babel.dates` for the report's locale.
Values are formatted for display only: the figures themselves are never rounded.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import math
import unicodedata
from functools import cache
from pathlib import Path

import pandas as pd
from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import (
    format_decimal,
    format_percent,
    get_decimal_symbol,
    get_group_symbol,
    get_minus_sign_symbol,
)
from babel.support import Translations

#: Report language -> Babel locale used for numbers and dates.
LANGUAGES = {"zh": "zh_CN", "en": "en"}
#: Report language -> d3 locale name used by vl-convert for chart axes.
D3_LOCALES = {"zh": "zh-CN", "en": "en-US"}
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "zhizao"
#: Shown for a null (undefined or unavailable) value.
NULL = "\u2014"


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is displayed."""
    return message


def check_lang(lang: str) -> str:
    """Return ``lang`` if it is a report language.

    Raises
    ------
    ValueError
        If ``lang`` is not one of :data:`LANGUAGES` (the message names the allowed values).
    """
    if lang not in LANGUAGES:
        allowed = ", ".join(f'"{k}"' for k in LANGUAGES)
        raise ValueError(f"unknown report language {lang!r}; allowed: {allowed}")
    return lang


@cache
def translations(lang: str) -> Translations:
    """The message catalogue of ``lang``, compiled in memory from its ``.po`` file.

    Parameters
    ----------
    lang : {'zh', 'en'}

    Returns
    -------
    babel.support.Translations

    Raises
    ------
    ValueError
        For an unknown language.
    FileNotFoundError
        If the catalogue file is missing.
    """
    check_lang(lang)
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    po = folder / f"{DOMAIN}.po"
    with po.open("rb") as f:
        catalog = read_po(f, locale=LANGUAGES[lang], domain=DOMAIN)
    for extra in catalogue_files(lang)[1:]:  # the other catalogues of the language (one per part of zhizao)
        with extra.open("rb") as f:
            for m in read_po(f, locale=LANGUAGES[lang], domain=DOMAIN):
                if m.id and m.id not in catalog:
                    catalog[m.id] = m
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def catalogue_files(lang: str) -> list[Path]:
    """The ``.po`` files of ``lang``: ``zhizao.po`` first, then the others of the folder by name (each part of
    zhizao may keep its messages in a file of its own; a msgid of ``zhizao.po`` wins)."""
    folder = LOCALE_DIR / check_lang(lang) / "LC_MESSAGES"
    main = folder / f"{DOMAIN}.po"
    return [main] + sorted(p for p in folder.glob("*.po") if p != main)


#: Separator of the items of a list inside a message, per language.
LIST_SEPARATORS = {"zh": "\u3001", "en": ", "}


def _param(value, lang: str):
    """One message parameter as text in ``lang``: messages rendered, lists joined, floats shortened."""
    from zhizao.messages import Message

    if isinstance(value, Message):
        return render_message(value, lang)
    if isinstance(value, (tuple, list)):
        return LIST_SEPARATORS[lang].join(str(_param(v, lang)) for v in value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def labelled(code: str, name: str, value, lang: str):
    """Parameter ``name`` of a message of kind ``code`` as a reader of ``lang`` sees it: by its label where the
    kind declares one (``define(labels=)``: a code or column name by its name; each item of a list), else the
    value itself."""
    from zhizao.messages import LABELS

    fn = LABELS.get(code, {}).get(name)
    if fn is None:
        return value
    return [fn(x, lang) for x in value] if isinstance(value, (tuple, list)) else fn(value, lang)


def render_message(message, lang: str = "en") -> str:
    """The text of a :class:`zhizao.messages.Message` in ``lang``: its template looked up in the catalogue
    (the English template itself where there is no translation), filled with its parameters.

    >>> from zhizao.messages import define
    >>> render_message(define("doc.n_rows", "%(n)s rows")(n=3), "en")
    '3 rows'
    """
    if message.code in ("fmt.day", "fmt.period"):  # a date or period: written out in the reader's language
        a = message.args
        try:
            f = Formatter(lang)
            return f.day(a["date"]) if message.code == "fmt.day" else f.period(a["start"], a["end"])
        except (KeyError, ValueError, TypeError):
            pass
    template = translations(lang).gettext(message.template) if message.template else ""
    params = {k: _param(labelled(message.code, k, v, lang), lang) for k, v in message.params}
    try:
        return template % params
    except (KeyError, ValueError, TypeError):  # a broken translation: fall back to the English text
        return message.template % params


def _as_date(value) -> dt.date:
    """The date of a date, a datetime (its own local date) or an ISO 8601 string (its own offset kept)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.date() if isinstance(value, dt.datetime) else value


def display_width(text: str) -> int:
    """The width of ``text`` in half-width cells: 2 for an East Asian wide or full-width character (汉字, the
    full-width marks ，。（）), 1 for any other (Unicode UAX #11). ``display_width("九龙坡区 2024") == 13``."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _isnull(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


_STEPS = {d: decimal.Decimal(1).scaleb(-d) for d in range(10)}
_HALF_EVEN = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation])


def grouped(x: float, digits: int, scale: int = 0) -> str | None:
    """``x`` times ``10**scale`` with ``digits`` decimals and "," between thousands, "-" before a negative value
    (-0 included), rounded half to even from the shortest decimal form of ``x``: what Babel writes for the pattern
    ``#,##0.0...`` (``#,##0.0...%`` with ``scale=2``) in a locale with the symbols "." "," "-" "%", five times
    faster (a dashboard page formats hundreds of numbers). None when ``x`` is not finite, too large for 40 digits
    or ``digits`` is above 9 (Babel then).

    Examples
    --------
    >>> grouped(1234567.25, 1), grouped(-0.04, 0), grouped(0.7479, 1, scale=2), grouped(2.675, 2)
    ('1,234,567.2', '-0', '74.8', '2.68')
    """
    if digits not in _STEPS or not math.isfinite(x):
        return None
    d = decimal.Decimal(repr(x))  # (Babel reads a float by its shortest repr, as str() writes it)
    try:
        r = abs(d.scaleb(scale) if scale else d).quantize(_STEPS[digits], context=_HALF_EVEN)
    except decimal.InvalidOperation:
        return None
    return ("-" if d.is_signed() else "") + format(r, ",f")


class Formatter:
    """Locale-aware display formatting of one report language.

    Parameters
    ----------
    lang : {'zh', 'en'}
    """

    def __init__(self, lang: str):
        self.lang = check_lang(lang)
        self.locale = Locale.parse(LANGUAGES[lang])
        symbols = (get_decimal_symbol(self.locale), get_group_symbol(self.locale),
                   get_minus_sign_symbol(self.locale), self.locale.number_symbols["latn"]["percentSign"])
        self._grouped = symbols == (".", ",", "-", "%")  # (zh and en: :func:`grouped` writes what Babel does)

    def pct(self, v, digits: int = 1) -> str:
        """A fraction as a percentage with ``digits`` decimals (0.7479 -> "74.8%"); null -> "—"."""
        if _isnull(v):
            return NULL
        text = self._number(float(v), digits, percent=True)
        if text.startswith("-") and not any(c in "123456789" for c in text):  # never "-0.0%" (-0.0005, 1 digit)
            text = text[1:]
        return text

    def num(self, v, digits: int = 0) -> str:
        """A number with grouping and ``digits`` decimals; null -> "—"."""
        if _isnull(v):
            return NULL
        return self._number(float(v), digits)

    def _number(self, x: float, digits: int, percent: bool = False) -> str:
        """``x`` in the pattern ``#,##0.0...`` (``...%``): :func:`grouped` where it writes Babel's text, else
        Babel."""
        fast = grouped(x, digits, scale=2 if percent else 0) if self._grouped else None
        if fast is not None:
            return fast + "%" if percent else fast
        pattern = "#,##0" + ("." + "0" * digits if digits else "") + ("%" if percent else "")
        return (format_percent if percent else format_decimal)(x, pattern, locale=self.locale)

    def sig(self, v) -> str:
        """A number with 3 significant figures at least, up to 4 decimals (for small ratios); null -> "—"."""
        if _isnull(v):
            return NULL
        a = abs(float(v))
        digits = 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 1 else 3 if a >= 0.1 else 4
        return self.num(v, digits)

    def hours(self, seconds, digits: int = 1) -> str:
        """Seconds shown as hours with ``digits`` decimals; null -> "—"."""
        if _isnull(seconds):
            return NULL
        return self.num(float(seconds) / 3600.0, digits)

    def date(self, value) -> str:
        """A date (or an ISO 8601 string; its own offset is kept) in the locale's medium format."""
        if _isnull(value):
            return NULL
        return format_date(_as_date(value), "medium", locale=self.locale)

    def date_range(self, first: dt.date, last: dt.date) -> str:
        """An inclusive range of local dates: "2024年5月6日至2024年5月20日", "6 May 2024 to 20 May 2024"."""
        return self.to(self.day(first), self.day(last))

    def day(self, value) -> str:
        """A date written out: "2024年1月1日" (GB/T 9704: Arabic numerals, no leading zero), "1 January 2024".

        A datetime (or ISO 8601 string) gives its own local date; null -> "—"."""
        if _isnull(value):
            return NULL
        value = _as_date(value)
        if self.lang == "zh":
            return f"{value.year}年{value.month}月{value.day}日"
        return format_date(value, "d MMMM y", locale=self.locale)

    def month(self, value) -> str:
        """A month written out: "2024年1月", "January 2024" (a date or an ISO 8601 string; its own offset is
        kept); null -> "—"."""
        if _isnull(value):
            return NULL
        value = _as_date(value)
        if self.lang == "zh":
            return f"{value.year}年{value.month}月"
        return format_date(value, "MMMM y", locale=self.locale)

    def period(self, start, end, end_exclusive: bool = True, tz: str | None = None) -> str:
        """A period of local dates shown inclusive: ``[2024-01-01, 2024-07-01)`` ->
        "2024年1月1日至2024年6月30日" ("1 January 2024 to 30 June 2024").

        Parameters
        ----------
        start, end : date, datetime, pandas.Timestamp or ISO 8601 str
            The bounds; time stamps are read in ``tz`` (their own offset when ``tz`` is None).
        end_exclusive : bool, default True
            ``end`` is the first instant after the period (the stored convention): the last day shown is
            the local date of the last instant before it.
        """
        def local(v):
            if _isnull(v):
                return None
            t = pd.Timestamp(v)
            if tz and t.tzinfo is not None:
                t = t.tz_convert(tz)
            return t
        a, b = local(start), local(end)
        if a is None or b is None:
            return self.to(NULL if a is None else self.day(a.to_pydatetime()),
                           NULL if b is None else self.day(b.to_pydatetime()))
        if end_exclusive:
            b = b - pd.Timedelta(microseconds=1)
        return self.to(self.day(a.to_pydatetime()), self.day(b.to_pydatetime()))

    def to(self, a: str, b: str) -> str:
        """Two values as a range: "40.7%至55.1%", "40.7% to 55.1%"."""
        return f"{a}至{b}" if self.lang == "zh" else f"{a} to {b}"

    def pct_range(self, lo, hi, digits: int = 1) -> str:
        """A range of fractions as percentages ("40.7%至55.1%"); null -> "—"."""
        if _isnull(lo) or _isnull(hi):
            return NULL
        return self.to(self.pct(lo, digits), self.pct(hi, digits))

    def count(self, v) -> str:
        """A count in running text: no grouping in Chinese ("4000"), grouped in English ("4,000")."""
        if _isnull(v):
            return NULL
        return str(int(v)) if self.lang == "zh" else self.num(v)

    def wan(self, yuan, digits: int = 0, fixed: bool = False) -> str:
        """An amount in CNY shown in 万元 (10,000 CNY) in Chinese (no grouping: 12460000 -> "1246") and in
        millions of CNY in English ("12.5"); ``digits`` decimals at most (trailing zeros dropped), or exactly
        (``fixed``: a table column, "15.0" beside "6.6").

        >>> Formatter("en").wan(15_000_000, 1), Formatter("en").wan(15_000_000, 1, fixed=True)
        ('15', '15.0')
        >>> Formatter("zh").wan(12_460_000, 1), Formatter("zh").wan(12_460_000, 1, fixed=True)
        ('1246', '1246.0')
        >>> Formatter("zh").wan(-1, 1), Formatter("zh").wan(-1, 1, fixed=True), Formatter("en").wan(-1, 1, True)
        ('0', '0.0', '0.0')
        """
        if _isnull(yuan):
            return NULL
        x = float(yuan) / (1e4 if self.lang == "zh" else 1e6)
        d = digits if self.lang == "zh" else max(digits, 1)
        text = f"{x:.{d}f}" if self.lang == "zh" else format_decimal(
            x, "#,##0." + ("0" if fixed else "#") * d, locale=self.locale)
        if "." in text and self.lang == "zh" and not fixed:
            text = text.rstrip("0").rstrip(".")
        if text.startswith("-") and not text.strip("-0.,"):  # a tiny negative amount is no deficit: 0, 0.0
            text = text[1:]
        return text or "0"

    def datetime(self, value: dt.datetime) -> str:
        """A time stamp in the locale's long format (with its time zone)."""
        return format_datetime(value, "long", tzinfo=value.tzinfo, locale=self.locale)
