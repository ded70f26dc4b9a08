"""Numbers on pages and in reports (``zhizao.i18n.Formatter``): the fast path writes exactly what Babel writes."""

from __future__ import annotations

import math

import pytest
from babel.numbers import format_decimal, format_percent
from hypothesis import example, given, settings
from hypothesis import strategies as st

from zhizao.i18n import Formatter, grouped

VALUES = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64),
                   st.floats(-1e7, 1e7), st.floats(-2, 2),
                   st.integers(-10**12, 10**12).map(lambda i: i / 1000),  # ties of the shortest decimal form
                   st.integers(-10**9, 10**9).map(lambda i: i / 8))  # binary ties


def _babel(f: Formatter, x: float, digits: int, percent: bool) -> str | None:
    """What Babel writes for the pattern Formatter uses (None where Babel itself fails: too many digits)."""
    pattern = "#,##0" + ("." + "0" * digits if digits else "") + ("%" if percent else "")
    try:
        return (format_percent if percent else format_decimal)(x, pattern, locale=f.locale)
    except ArithmeticError:
        return None


@pytest.mark.parametrize("lang", ["zh", "en"])
@given(x=VALUES, digits=st.integers(0, 4))
@settings(max_examples=400, deadline=None)
@example(x=2.675, digits=2).via("a float just below its shortest form's tie: Babel rounds the shortest form")
@example(x=-0.04, digits=0).via("a negative rounded to 0 keeps its sign, as in Babel")
@example(x=0.125, digits=2).via("a tie, to even")
@example(x=-0.0, digits=1).via("negative zero")
@example(x=1e16, digits=0).via("grouping of large values")
@example(x=5e-324, digits=4).via("the smallest float")
def test_numbers_and_percentages_are_written_as_babel_writes_them(lang, x, digits):
    f = Formatter(lang)
    assert f._grouped  # (zh and en have the symbols the fast path writes)
    want = _babel(f, x, digits, False)
    if want is not None:  # (Babel fails beyond 28 digits; the fast path writes them, Babel's way)
        assert f.num(x, digits) == want
        assert grouped(x, digits) in (want, None)
    want = _babel(f, x, digits, True)
    if want is not None:
        fast = grouped(x, digits, scale=2)
        assert fast is None or fast + "%" == want
        if want.startswith("-") and not any(c in "123456789" for c in want):
            want = want[1:]  # (Formatter.pct never writes "-0.0%")
        assert f.pct(x, digits) == want


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_percentage_that_rounds_to_zero_has_no_sign(lang):
    """-0.0005 is -0.05 %, written with one decimal: "0.0%", not "-0.0%" (the old guard rounded the float, 0.05 ->
    0.1, where the text is rounded half to even from "0.05" -> 0.0; found by a reviewer)."""
    f = Formatter(lang)
    assert [f.pct(v, d) for v, d in ((-0.0005, 1), (-0.00005, 2), (-0.004, 0), (-0.0, 1))] == \
        ["0.0%", "0.00%", "0%", "0.0%"]
    assert f.pct(-0.0006, 1) == "-0.1%" and f.pct(-0.00051, 1) == "-0.1%"


def test_what_the_fast_path_leaves_to_babel():
    f = Formatter("zh")
    assert grouped(math.inf, 1) is None and f.num(math.inf) == format_decimal(math.inf, "#,##0", locale=f.locale)
    assert grouped(1e300, 0) is None and _babel(f, 1e300, 0, False) is None  # (more digits than 40; Babel: 28)
    assert f.num(1e27, 1) == "1,000,000,000,000,000,000,000,000,000.0"  # (Babel fails with 29 digits)
    assert grouped(1.5, 12) is None and f.num(1.5, 12) == "1.500000000000"
    assert f.num(None) == f.pct(float("nan")) == "—"
