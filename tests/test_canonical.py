"""Exact canonical forms (``verifiers/canonical.py``): hand-checked equalities, the cases left to
math-verify, and a cross-check against math-verify itself on forms both decide."""

import pytest

from rewardsmith.verifiers.canonical import canonical, exact_verdict
from rewardsmith.verifiers.math import fast_verdict

EQUAL = [
    (r"\frac{\sqrt{2}}{2}", r"\sqrt{2}/2"),
    (r"\frac{\sqrt{3}}{4}", r"\frac{1}{4}\sqrt{3}"),
    (r"\frac{\sqrt{5}}{3}", r"\frac{5}{3\sqrt{5}}"),  # rationalised denominator
    (r"2\sqrt{2}", r"\sqrt{8}"),
    (r"6\pi", r"\pi \cdot 6"),
    (r"x^2+3x+2", r"(x+1)(x+2)"),
    (r"x^2+5x+4", r"4+5x+x^{2}"),
    (r"\{1,2\}", r"\{2, 1\}"),
    (r"[-3,4)", r"[-3, 4)"),
    (r"(1,2)", r"(1, 2)"),
    (r"[3,\infty]", r"[3,\infty)"),  # the side at infinity is open, as in sympy
    (r"(3,\infty)", r"\left(3, +\infty\right)"),
    (r"(-\infty,\infty)", r"(-\infty,+\infty)"),
    (r"(-\infty,\frac12]", r"[-\infty,0.5]"),
    (r"5\text{ cm}", "5"),  # a unit word is dropped, as math-verify drops it
    (r"44\text{ km}", r"\frac{88}{2}\,\text{km}"),
    ("2", r"\frac{1}{\frac{1}{2}}"),
    ("2", r"\frac{1}{" * 200 + "2" + "}" * 200),  # a 200-deep continued fraction, read without recursion
    (r"\frac12", "0.5"),
]
DIFFERENT = [
    (r"\frac{\sqrt{2}}{2}", r"\sqrt{2}"),
    (r"\frac{\sqrt{3}}{4}", r"\frac{4}{\sqrt{3}}"),
    (r"x^2+3x+2", r"x^2-3x+2"),
    (r"x^2+3x+2", "6"),  # a number is not a polynomial
    (r"x^2+1", r"y^2+1"),  # strict: variables must match
    (r"\{1,2\}", r"\{1\}"),
    (r"[1,5)", r"[1,5]"),
    (r"\{1,2\}", r"[1,2]"),
    (r"5\pi", r"\frac{\pi}{5}"),
    (r"(3,\infty)", r"[3,\infty)"),
    (r"[3,6)", r"(3,\infty)"),
    (r"(3,\infty)", r"(4,\infty)"),
    (r"(-\infty,3)", r"(-\infty,3]"),
    (r"(1,5)", r"[1,5)"),  # (1, 5) with 1 < 5 is the open interval for math-verify
    (r"44\text{ km}", r"45\text{ km}"),
    (r"44\text{ km}", "88"),
    ("2", r"\frac{1}{" * 201 + "2" + "}" * 201),
]
LEFT_TO_MATH_VERIFY = [
    (r"\frac{\sqrt{2}}{2}", "0.7071"),  # float rounding is math-verify's call
    (r"\{0.5, 1\}", r"\{0.5001, 1\}"),
    (r"(5,1)", r"[5,1)"),  # "(5, 1)": a tuple; "[5, 1)": empty
    (r"[3,3)", r"(3,3]"),  # both empty
    (r"[3,3]", r"\{3\}"),  # a point
    (r"(3,\infty)", r"\{3,\infty\}"),  # equal for math-verify
    (r"(\infty,3)", r"(3,\infty)"),
    (r"(2,3)", r"(2,3,\infty)"),
    (r"5\text{ cm}", r"5\text{ m}"),  # different units: math-verify's call
    (r"e^2", r"e \cdot e"),  # e and i are constants for math-verify
    (r"2i", r"i+i"),
    (r"\sin x", r"\sin(x)"),
    (r"x>1", r"(1,\infty)"),
    ("2", r"\frac{1}{0}"),
    (r"x^{1000}", r"x^{1000}+0"),  # powers past 64 are not expanded here
    (r"\sqrt[3]{8}", "2"),
    ("1", r"\{1\}"),
]


@pytest.mark.parametrize("gold,pred", EQUAL)
def test_equal_forms(gold, pred):
    assert exact_verdict(gold, pred) == 1.0 and exact_verdict(pred, gold) == 1.0


@pytest.mark.parametrize("gold,pred", DIFFERENT)
def test_different_forms(gold, pred):
    assert exact_verdict(gold, pred) == 0.0 and exact_verdict(pred, gold) == 0.0


@pytest.mark.parametrize("gold,pred", LEFT_TO_MATH_VERIFY)
def test_left_to_math_verify(gold, pred):
    assert exact_verdict(gold, pred) is None


def test_shapes_and_bad_input():
    assert canonical(r"\{1,2\}")[0] == "set" and canonical("[1,2)")[0] == "[)" and canonical("3")[0] == "value"
    for junk in ("", "(", r"\frac{1}", "x^", "1,,2", "}{", r"\{1,2", "2^{x}", r"\sqrt{-4}"):
        assert exact_verdict(junk, "1") is None


def test_hostile_sizes_are_refused():
    for text in (r"((10^{64})^{64})^{64}", r"(x+y+z+1)^{64}", r"\sqrt{99999999999999999}", "(1+x)^{65}"):
        assert canonical(text) is None  # bounded work: coefficient size, term count and power are capped


def test_fast_verdict_uses_exact_forms_only_in_strict_mode():
    assert fast_verdict(r"x^2+1", r"1+x^2") == (1.0, "equal exact forms")
    assert fast_verdict(r"x^2+1", r"1+x^2", strict=False) is None


@pytest.mark.parametrize("gold,pred", EQUAL[:-2] + DIFFERENT[:-1])
def test_agrees_with_math_verify(gold, pred):
    """Where both decide, the exact verdict is math-verify's (the 200-deep fractions are left out:
    math-verify cannot read them)."""
    from math_verify import parse, verify

    from rewardsmith.verifiers.math import as_latex

    assert float(verify(parse(as_latex(gold)), parse(as_latex(pred)), strict=True)) == exact_verdict(gold, pred)
