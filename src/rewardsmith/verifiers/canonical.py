"""Exact canonical forms for simple answers, compared without sympy.

A *form* is a sum of terms ``q · √m · π^e · x^a y^b …`` with ``q`` rational, ``m`` a squarefree
integer and non-negative powers of one-letter variables: integers, fractions, decimals, nested
``\\frac``, surds (``\\frac{\\sqrt{2}}{2}``, ``\\sqrt2/2``, ``\\frac{2}{2\\sqrt2}``), multiples of π
and polynomials (``x^2+3x+2``, ``(x+1)(x+2)``). Such a sum is written one way only (the
``√m π^e x^k`` are linearly independent over ℚ), so two forms are equal exactly when their term
tables are. Sets (``\\{1, 2\\}``), tuples and intervals of forms are compared element-wise.

Intervals may have an infinite end (``(3, \\infty)``), the side at infinity always open, as in
sympy. A number with a unit word (``5\\text{ cm}``) is read as math-verify reads it: the number.
Anything else (functions, ``e``/``i``, text, different units, relations, percentages) gives ``None`` and
is left to math-verify. So do decimals in an unequal or irrational comparison, where
math-verify's float rounding could decide otherwise.
"""

from __future__ import annotations

import re
from fractions import Fraction

Key = tuple[int, int, tuple[tuple[str, int], ...]]  # (squarefree m, power of π, ((variable, power), ...))
Form = dict[Key, Fraction]

_MAX_TERMS = 64
_MAX_POWER = 64
_MAX_SQRT = 10**8  # trial division stays under ~10^4 steps
_MAX_BITS = 20_000  # bigger coefficients (towers of powers) are left to the tower code and math-verify
_MAX_DEPTH = 1000  # nested braces and continued fractions deeper than this are left to math-verify
_TOKEN = re.compile(r"\\[a-zA-Z]+|\d+(?:\.\d+)?|\.\d+|[a-zA-Z]|\\[{}]|[-+*/^(){}\[\],]|\S")
_SPACING = re.compile(r"\s+|\\[,;:! ]|\\left|\\right|\\!")
_CONSTANT_LETTERS = frozenset("eiEI")  # Euler's number and the imaginary unit for math-verify
_ONE: Key = (1, 0, ())
_INF: Key = (0, 0, (("\\infty", 1),))  # an interval's end at ±∞ (m = 0 is no squarefree factor: no clash)
_INFINITY = re.compile(r"([-+]?)\\infty")
_UNIT = re.compile(r"\\(?:text|mbox)\{([A-Za-z]+)\}$")  # after spacing is removed: 5\text{cm}
_UNIT_FRAC = "\\frac{1}{"


class _Unsupported(Exception):
    pass


def _squarefree(n: int) -> tuple[int, int]:
    """``n = k² · m`` with ``m`` squarefree: (k, m)."""
    if n > _MAX_SQRT:
        raise _Unsupported
    k, m, p = 1, n, 2
    while p * p <= m:
        while m % (p * p) == 0:
            m //= p * p
            k *= p
        p += 1
    return k, m


def _mul(a: Form, b: Form) -> Form:
    out: Form = {}
    for (ma, pa, va), qa in a.items():
        for (mb, pb, vb), qb in b.items():
            k, m = _squarefree(ma * mb)
            powers = dict(va)
            for name, n in vb:
                powers[name] = powers.get(name, 0) + n
            key = (m, pa + pb, tuple(sorted(powers.items())))
            out[key] = out.get(key, Fraction(0)) + qa * qb * k
    out = {k: q for k, q in out.items() if q}
    if len(out) > _MAX_TERMS or any(
        max(q.numerator.bit_length(), q.denominator.bit_length()) > _MAX_BITS for q in out.values()
    ):
        raise _Unsupported
    return out


def _add(a: Form, b: Form, sign: int = 1) -> Form:
    out = dict(a)
    for k, q in b.items():
        out[k] = out.get(k, Fraction(0)) + sign * q
    return {k: q for k, q in out.items() if q}


def _inverse(a: Form) -> Form:
    """1/a for a single term without variables; anything else is unsupported."""
    if len(a) != 1:
        raise _Unsupported
    (((m, p, v), q),) = a.items()
    if v:
        raise _Unsupported
    return {(m, -p, ()): 1 / (q * m)}


def _power(a: Form, n: int) -> Form:
    if not 0 <= n <= _MAX_POWER:
        raise _Unsupported
    out: Form = {_ONE: Fraction(1)}
    for _ in range(n):
        out = _mul(out, a)
    return out


class _Parser:
    def __init__(self, text: str):
        self.tokens = _TOKEN.findall(text)
        self.i = 0
        self.depth = 0
        self.decimal = False

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise _Unsupported
        self.i += 1
        return tok

    def sum(self) -> Form:
        sign = -1 if self.peek() == "-" else 1
        if self.peek() in ("-", "+"):
            self.take()
        out = {k: sign * q for k, q in self.product().items()}
        while self.peek() in ("+", "-"):
            sign = 1 if self.take() == "+" else -1
            out = _add(out, self.product(), sign)
        return out

    def product(self) -> Form:
        out = self.power()
        while True:
            tok = self.peek()
            if tok in ("*", "\\cdot", "\\times"):
                self.take()
                out = _mul(out, self.power())
            elif tok == "/":
                self.take()
                out = _mul(out, _inverse(self.power()))
            elif tok is not None and (
                tok in ("(", "{", "\\pi", "\\sqrt", "\\frac", "\\dfrac", "\\tfrac") or (len(tok) == 1 and tok.isalpha())
            ):
                out = _mul(out, self.power())  # implicit product: 2x, 3\pi, \frac{1}{4}\sqrt{5}, (x+1)(x+2)
            else:
                return out

    def power(self) -> Form:
        base = self.atom()
        if self.peek() != "^":
            return base
        self.take()
        exponent = self.group() if self.peek() == "{" else self.atom()
        if len(exponent) != 1 or _ONE not in exponent or exponent[_ONE].denominator != 1:
            raise _Unsupported
        return _power(base, int(exponent[_ONE]))

    def group(self) -> Form:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise _Unsupported
        self.take("{")
        out = self.sum()
        self.take("}")
        self.depth -= 1
        return out

    def argument(self) -> Form:
        """A ``\\frac``/``\\sqrt`` argument: a braced group or one digit/letter (``\\frac12``)."""
        if self.peek() == "{":
            return self.group()
        tok = self.take()
        if tok.isdigit():  # \frac12 reads the digits one at a time
            self.tokens[self.i : self.i] = [tok[1:]] if len(tok) > 1 else []
            return {_ONE: Fraction(int(tok[0]))}
        if len(tok) == 1 and tok.isalpha() and tok not in _CONSTANT_LETTERS:
            return {(1, 0, ((tok, 1),)): Fraction(1)}
        raise _Unsupported

    def atom(self) -> Form:
        tok = self.take()
        if tok[0].isdigit() or tok[0] == ".":
            self.decimal |= "." in tok
            return {_ONE: Fraction(tok)} if Fraction(tok) else {}
        if tok == "(":
            self.depth += 1
            out = self.sum()
            self.take(")")
            self.depth -= 1
            return out
        if tok == "{":
            self.i -= 1
            return self.group()
        if tok in ("\\frac", "\\dfrac", "\\tfrac"):
            num = self.argument()
            return _mul(num, _inverse(self.argument()))
        if tok == "\\sqrt":
            if self.peek() == "[":
                raise _Unsupported
            inner = self.argument()
            if set(inner) - {_ONE} or inner.get(_ONE, Fraction(0)) < 0:
                raise _Unsupported
            value = inner.get(_ONE, Fraction(0))
            k_num, m_num = _squarefree(value.numerator * value.denominator)
            return {(m_num, 0, ()): Fraction(k_num, value.denominator)} if value else {}
        if tok == "\\pi":
            return {(1, 1, ()): Fraction(1)}
        if len(tok) == 1 and tok.isalpha() and tok not in _CONSTANT_LETTERS:
            return {(1, 0, ((tok, 1),)): Fraction(1)}
        raise _Unsupported


def _split_top(text: str) -> list[str] | None:
    """``text`` split at top-level commas (None when brackets do not balance)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
            if depth < 0:
                return None
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return None if depth else parts + [text[start:]]


def _read(text: str, depth: int) -> tuple[Form, bool] | None:
    """``text`` read as ``depth`` nested ``\\frac{1}{…}`` around a core expression."""
    p = _Parser(text[depth * len(_UNIT_FRAC) : len(text) - depth])
    try:
        form = p.sum()
        if p.peek() is not None:
            return None
        for _ in range(depth):
            form = _inverse(form)
    except (_Unsupported, ZeroDivisionError, RecursionError, ValueError):
        return None
    return form, p.decimal


def scalar(text: str) -> tuple[Form, bool] | None:
    """(the canonical form, whether a decimal point was read) of one expression; None if not supported.
    Continued fractions ``\\frac{1}{\\frac{1}{…}}`` are peeled off first, not recursed into."""
    depth = 0
    while text.startswith(_UNIT_FRAC, depth * len(_UNIT_FRAC)) and depth < _MAX_DEPTH:
        depth += 1
    if depth and text.endswith("}" * depth):
        peeled = _read(text, depth)  # a core with unbalanced braces never reads: the peel was wrong
        if peeled is not None:
            return peeled
    return _read(text, 0)


def _infinite_interval(shape: str, parts: list[str]) -> tuple[str, tuple[Form, ...], bool] | None:
    """An interval with an infinite end (``(3,\\infty)``, ``(-\\infty,2]``): shape ``I`` + its brackets, the side
    at infinity always open (``[3,\\infty]`` is ``[3,\\infty)``, as in sympy); None when no end is infinite or
    an end is unsupported (``(\\infty,3)``: not an interval)."""
    if len(parts) != 2 or not any(_INFINITY.fullmatch(p) for p in parts):
        return None
    ends, decimal = [], False
    for side, part in zip((-1, 1), parts):
        m = _INFINITY.fullmatch(part)
        if m:
            if (m.group(1) == "-") != (side == -1):
                return None  # +inf on the left, -inf on the right
            ends.append({_INF: Fraction(side)})
            continue
        one = scalar(part)
        if one is None:
            return None
        ends.append(one[0])
        decimal |= one[1]
    left = "(" if _INF in ends[0] else shape[0]
    right = ")" if _INF in ends[1] else shape[1]
    return "I" + left + right, tuple(ends), decimal


def canonical(text: str) -> tuple[str, tuple[Form, ...], bool] | None:
    """(shape, element forms, decimal read): shape is ``value``, ``set``, a bracket pair such as ``[)``, or
    ``I`` and a bracket pair for an interval with an infinite end."""
    t = _SPACING.sub("", text.strip().strip("$"))
    if t.startswith("\\{") and t.endswith("\\}"):
        shape, inner = "set", t[2:-2]
    elif (
        len(t) >= 2
        and t[0] in "(["
        and t[-1] in ")]"
        and _split_top(t[1:-1]) not in (None,)
        and len(_split_top(t[1:-1]) or []) > 1
    ):
        shape, inner = t[0] + t[-1], t[1:-1]
    else:
        one = scalar(t)
        return None if one is None else ("value", (one[0],), one[1])
    parts = _split_top(inner)
    if parts is None:
        return None
    if shape != "set" and any(_INFINITY.fullmatch(p) for p in parts):
        return _infinite_interval(shape, parts)
    forms, decimal = [], False
    for part in parts:
        one = scalar(part)
        if one is None:
            return None
        forms.append(one[0])
        decimal |= one[1]
    return shape, tuple(forms), decimal


def _rational(forms: tuple[Form, ...]) -> bool:
    return all(set(f) <= {_ONE} or set(f) == {_INF} for f in forms)


def _ordered_ends(shape: str, forms: tuple[Form, ...]) -> bool | None:
    """For a bounded two-element bracket shape with rational ends: whether the left end is below the right
    (then it is a non-empty interval, ``(1,5)`` included, as math-verify reads it); None for anything else."""
    if shape in ("value", "set") or shape[0] == "I" or len(forms) != 2 or not _rational(forms):
        return None
    left, right = (f.get(_ONE, Fraction(0)) for f in forms)
    return left < right


def _split_unit(text: str) -> tuple[str, str | None]:
    """``text`` without a trailing unit word (``5\\text{ cm}`` → ``5``, ``cm``), spacing removed."""
    t = _SPACING.sub("", text.strip().strip("$"))
    m = _UNIT.search(t)
    return (t[: m.start()], m.group(1)) if m and m.start() else (t, None)


def exact_verdict(gold: str, pred: str) -> float | None:
    """1.0/0.0 when both are canonical forms of a kind compared exactly here; None: let math-verify decide.
    A number with a unit word is compared as math-verify compares it, by the number, when the other side
    has the same unit or none; different units are math-verify's call."""
    (g, gold_unit), (p, pred_unit) = _split_unit(gold), _split_unit(pred)
    a, b = canonical(g), canonical(p)
    if a is None or b is None:
        return None
    if gold_unit or pred_unit:
        if (gold_unit and pred_unit and gold_unit != pred_unit) or not (a[0] == b[0] == "value"):
            return None
        if not (_rational(a[1]) and _rational(b[1])):
            return None
    (sa, fa, da), (sb, fb, db) = a, b
    order_a, order_b = _ordered_ends(sa, fa), _ordered_ends(sb, fb)
    if False in (order_a, order_b):
        return None  # [3,3], [5,1): sympy reads a point or an empty set; (1,1): a tuple
    infinite = (sa[0] == "I") + (sb[0] == "I")
    if sa == "set" and sb == "set":
        same = {frozenset(f.items()) for f in fa} == {frozenset(f.items()) for f in fb}
    elif infinite == 2 or (order_a and order_b):
        same = sa == sb and fa == fb  # two non-empty intervals: equal exactly when their ends and brackets are
    elif infinite:
        if len(fa) != len(fb) or "set" in (sa, sb) or "value" in (sa, sb):
            return None  # math-verify reads (3,\infty) as equal to \{3,\infty\}
        same = False  # an unbounded interval is neither a bounded one nor a pair of numbers
    elif sa == sb or (sa != "value" and sb != "value" and "()" not in (sa, sb)):
        same = sa == sb and fa == fb  # tuples and intervals: same brackets, same elements in order
    else:
        return None  # a value against a set, or "(a, b)" (a tuple or an open interval) against another shape
    if (da or db) and not (same and _rational(fa) and _rational(fb)):
        return None  # float rounding is math-verify's call
    return 1.0 if same else 0.0
