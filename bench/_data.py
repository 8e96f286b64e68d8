"""A synthetic GRPO batch of math rollouts for verifier benchmarks (deterministic by seed).

Each prompt has a reference answer of one *kind* (integer, fraction, decimal, polynomial, set,
interval, surd, length with a unit, multiple of pi) and two pools of final answers written the
way models write them: forms equivalent to the reference (``\\frac{3}{4}`` / ``0.75`` /
``3/4``; ``x^2+1`` / ``1+x^2``; ``\\frac{\\sqrt{2}}{2}`` / ``\\sqrt{2}/2``; ``5\\text{ cm}`` / ``5``)
and wrong ones. A group of rollouts shares 2-4 distinct final answers, as real GRPO groups do,
each boxed at the end of a chain of thought of a few hundred characters; a few rollouts carry
no boxed answer (cut off, or a plain-text answer). A small share of completions carries
pathological LaTeX — 200-deep nested fractions and towers of exponents — either as a
prediction or as the group's reference.

Every rollout comes with the label it was built with (``expected``: True when the final answer
was drawn from the equivalent pool, False from the wrong pool or when there is no boxed
answer), so a benchmark can say which of two verifiers is right when they disagree.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

NESTED_FRACTION_DEPTH = 200
NO_ANSWER_RATE = 0.04  # share of ordinary rollouts without a boxed final answer


@dataclass(frozen=True)
class Problem:
    kind: str
    question: str
    reference: str
    equivalent: tuple[str, ...]  # final answers equal to the reference
    wrong: tuple[str, ...]


@dataclass(frozen=True)
class Rollout:
    """One completion and how it was built."""

    prompt_id: str
    kind: str
    question: str
    completion: str
    reference: str
    answer: str | None  # the final answer written in the completion (None: none given)
    boxed: bool
    expected: bool  # correct by construction
    pathological: bool


# --------------------------------------------------------------------------- answer kinds
def _integer(rng: random.Random) -> Problem:
    n = rng.choice([rng.randint(2, 99), rng.randint(100, 999), rng.randint(1000, 50000), -rng.randint(1, 60)])
    eq = [str(n), f"{n}.0", f"{n}.00"]
    if n >= 1000:
        eq.append(f"{n:,}".replace(",", "{,}"))  # MATH's LaTeX thousands separator: 12{,}345
    return Problem(
        "integer",
        f"How many lattice points satisfy condition #{abs(n) % 97}?",
        str(n),
        tuple(eq),
        (str(n + 1), str(n - 1), str(2 * n), str(-n)),
    )


def _fraction(rng: random.Random) -> Problem:
    b = rng.randint(2, 16)
    a = rng.choice([k for k in range(1, 3 * b) if Fraction(k, b).denominator == b])
    ref = rf"\frac{{{a}}}{{{b}}}"
    eq = [ref, rf"\dfrac{{{a}}}{{{b}}}", f"{a}/{b}", rf"\frac{{{2 * a}}}{{{2 * b}}}"]
    if b == 2 ** (b.bit_length() - 1) or b in (5, 10):  # a terminating decimal
        eq.append(str(float(Fraction(a, b))))
    wrong = (rf"\frac{{{b}}}{{{a}}}", rf"\frac{{{a + 1}}}{{{b}}}", f"{float(Fraction(a + 1, b)):.3f}", str(a * b))
    return Problem(
        "fraction",
        f"A bag holds {b} marbles; {a} of each {b} drawn are red. What fraction is red?",
        ref,
        tuple(eq),
        wrong,
    )


def _decimal(rng: random.Random) -> Problem:
    tenths = rng.choice([k for k in range(3, 200) if k % 10])
    value = Fraction(tenths, 10)
    ref = f"{tenths / 10:g}"
    eq = (
        ref,
        f"{tenths / 10:.2f}",
        rf"\frac{{{value.numerator}}}{{{value.denominator}}}",
        f"{value.numerator}/{value.denominator}",
    )
    wrong = (f"{(tenths + 1) / 10:g}", f"{tenths / 100:g}", str(tenths))
    return Problem(
        "decimal", f"A rope of {tenths} dm is cut into 10 equal parts. How long is each in dm?", ref, eq, wrong
    )


def _polynomial(rng: random.Random) -> Problem:
    c = rng.randint(1, 12)
    b = rng.randint(2, 9)
    ref = f"x^2+{b}x+{c}"
    eq = (ref, f"{c}+{b}x+x^2", f"x^{{2}}+{b}x+{c}", f"x^2 + {b} x + {c}", f"{b}x+x^2+{c}")
    wrong = (f"x^2-{b}x+{c}", f"x^2+{b}x+{c + 1}", f"2x^2+{b}x+{c}", f"x^2+{c}")
    return Problem("polynomial", f"Expand (x+{b})x + {c}.", ref, eq, wrong)


def _set(rng: random.Random) -> Problem:
    a, b = sorted(rng.sample(range(-9, 15), 2))
    ref = rf"\{{{a},{b}\}}"
    eq = (ref, rf"\{{{b},{a}\}}", rf"\{{{a}, {b}\}}", rf"\left\{{{b}, {a}\right\}}")
    wrong = (rf"\{{{a}\}}", rf"\{{{a},{b + 1}\}}", rf"\{{{a - 1},{b - 1}\}}")
    return Problem("set", f"Find all roots of (t-({a}))(t-({b}))=0.", ref, eq, wrong)


def _interval(rng: random.Random) -> Problem:
    a = rng.randint(-10, 5)
    b = a + rng.randint(1, 10)
    ref = f"[{a},{b})"
    eq = (ref, f"[{a}, {b})", rf"\left[{a},{b}\right)")
    wrong = (f"({a},{b})", f"[{a},{b}]", f"[{a},{b + 1})", rf"({a},\infty)")
    return Problem("interval", f"Solve {a} <= y < {b}; give the interval.", ref, eq, wrong)


def _surd(rng: random.Random) -> Problem:
    n = rng.choice([2, 3, 5, 6, 7])
    k = rng.choice([2, 3, 4])
    ref = rf"\frac{{\sqrt{{{n}}}}}{{{k}}}"
    eq = (
        ref,
        rf"\sqrt{{{n}}}/{k}",
        rf"\frac{{\sqrt{n}}}{{{k}}}",
        rf"\frac{{1}}{{{k}}}\sqrt{{{n}}}",
        rf"\frac{{{n}}}{{{k}\sqrt{{{n}}}}}",
    )
    wrong = (rf"\sqrt{{{n}}}", rf"\frac{{\sqrt{{{n + 1}}}}}{{{k}}}", rf"\frac{{{k}}}{{\sqrt{{{n}}}}}")
    return Problem("surd", f"Simplify sqrt({n})/{k} into lowest terms.", ref, eq, wrong)


def _length_with_unit(rng: random.Random) -> Problem:
    v = rng.randint(2, 90)
    unit = rng.choice(["cm", "m", "km"])
    ref = rf"{v}\text{{ {unit}}}"
    eq = (ref, str(v), rf"{v} \text{{{unit}}}", rf"{v}\,\text{{{unit}}}", rf"{v}\mbox{{ {unit}}}")
    wrong = (rf"{v + 1}\text{{ {unit}}}", str(2 * v), rf"{v * 2}\text{{ {unit}}}")
    return Problem("unit", f"A side measures {v} {unit}. How long is the opposite side of the square?", ref, eq, wrong)


def _pi_multiple(rng: random.Random) -> Problem:
    k = rng.randint(2, 12)
    ref = rf"{k}\pi"
    eq = (ref, rf"{k} \pi", rf"\pi \cdot {k}", rf"{k}\cdot\pi")
    wrong = (rf"{k + 1}\pi", rf"\frac{{\pi}}{{{k}}}", str(k))
    return Problem("pi", f"What is the circumference of a circle of radius {k}/2?", ref, eq, wrong)


KINDS: dict[str, tuple[float, Callable[[random.Random], Problem]]] = {
    "integer": (0.30, _integer),
    "fraction": (0.14, _fraction),
    "decimal": (0.08, _decimal),
    "polynomial": (0.10, _polynomial),
    "set": (0.08, _set),
    "interval": (0.08, _interval),
    "surd": (0.08, _surd),
    "unit": (0.07, _length_with_unit),
    "pi": (0.07, _pi_multiple),
}


# --------------------------------------------------------------------------- pathological LaTeX
def nested_fraction(depth: int = NESTED_FRACTION_DEPTH) -> str:
    r"""``\frac{1}{\frac{1}{...{2}}}`` ``depth`` deep: equals 2 for even depth, 1/2 for odd."""
    return r"\frac{1}{" * depth + "2" + "}" * depth


PATHOLOGICAL_PREDICTIONS = (
    nested_fraction(),
    r"9^{9^{9^{9^{9}}}}",
    r"10^{10^{100}}",
    r"9^{9^{9^{9^{9^{9^{9}}}}}}",
    r"\sqrt[\sqrt[9]{9}]{9}^{9^{9^{9}}}",
)


def _pathological_reference(rng: random.Random) -> Problem:
    """A group whose reference itself is pathological, with exact and wrong answers."""
    which = rng.randrange(3)
    if which == 0:
        ref = nested_fraction()
        return Problem(
            "patho_ref", "Evaluate the continued fraction.", ref, ("2", "2.0", ref), (r"\frac{1}{2}", "1", "0")
        )
    if which == 1:
        ref = r"10^{10^{100}}"
        return Problem(
            "patho_ref",
            "How many googolplexes make a googolplex?",
            ref,
            (ref, r"10^{ 10^{100} }"),
            (r"10^{100}", r"10^{10^{101}}", "1"),
        )
    ref = r"9^{9^{9^{9^{9}}}}"
    return Problem(
        "patho_ref",
        "Write the fifth power tower of 9.",
        ref,
        (ref, r"9^{ 9^{9^{9^{9}}} }"),
        (r"9^{9^{9^{9}}}", r"9^{45}"),
    )


# --------------------------------------------------------------------------- chains of thought
_STEPS = (
    "First, note that ${a} + {b} = {s}$.",
    "Multiplying both sides by {a} gives ${a}y = {p}$.",
    r"Let me double-check the arithmetic: ${a} \times {b} = {p}$.",
    r"We can rewrite the expression as $\frac{{{a}}}{{{b}}}$ and simplify.",
    "Wait, that does not look right. Let me reconsider the second step.",
    "So the condition holds for every admissible value in the domain.",
    "Substituting back into the original equation, both sides agree.",
    "Hmm, we should also check the boundary case separately.",
    "The two cases together cover all possibilities, so we can combine them.",
    "Subtracting, ${s} - {b} = {a}$, which matches the earlier result.",
)
_FINALS = (
    r"Therefore, the final answer is $\boxed{{{x}}}$.",
    "**Final Answer**\n\\boxed{{{x}}}",
    r"The answer is \boxed{{{x}}}.",
    r"So we get $\boxed{{{x}}}$",
)
_UNBOXED = ("So the answer is {x}.", "Answer: {x}")


def chain_of_thought(rng: random.Random, question: str, min_chars: int = 200) -> str:
    parts = [f"<think>\nWe need to answer: {question}"]
    while sum(len(p) for p in parts) < min_chars or rng.random() < 0.5:
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        parts.append(rng.choice(_STEPS).format(a=a, b=b, s=a + b, p=a * b))
    return " ".join(parts) + "\n</think>\n"


def _rollout(rng: random.Random, pid: str, p: Problem, answer: str, expected: bool, pathological: bool) -> Rollout:
    cot = chain_of_thought(rng, p.question, rng.randint(150, 600))
    if pathological or rng.random() >= NO_ANSWER_RATE:
        return Rollout(
            pid,
            p.kind,
            p.question,
            cot + rng.choice(_FINALS).format(x=answer),
            p.reference,
            answer,
            True,
            expected,
            pathological,
        )
    if rng.random() < 0.4:  # cut off by the generation limit
        return Rollout(
            pid, p.kind, p.question, cot[: rng.randint(60, len(cot))], p.reference, None, False, False, pathological
        )
    return Rollout(
        pid,
        p.kind,
        p.question,
        cot + rng.choice(_UNBOXED).format(x=answer),
        p.reference,
        answer,
        False,
        expected,
        pathological,
    )


def _group(rng: random.Random, pid: str, p: Problem, rollouts: int, patho_ref: bool) -> list[Rollout]:
    n_distinct = rng.randint(2, 4)
    n_right = rng.randint(0, min(2, n_distinct))  # some groups are all wrong, some all right
    right = list(p.equivalent[1:])
    rng.shuffle(right)
    if rng.random() < 0.6:  # most groups mostly write the reference's own form
        right.insert(0, p.equivalent[0])
    answers = [(a, True) for a in right[:n_right]]
    answers += [(a, False) for a in rng.sample(p.wrong, min(n_distinct - len(answers), len(p.wrong)))]
    weights = [rng.gammavariate(1.0, 1.0) for _ in answers]
    return [_rollout(rng, pid, p, *rng.choices(answers, weights)[0], pathological=patho_ref) for _ in range(rollouts)]


def make_batch(prompts: int = 256, rollouts: int = 16, pathological_rate: float = 0.01, seed: int = 0) -> list[Rollout]:
    """``prompts`` groups of ``rollouts`` completions, grouped and in order, as a trainer sends them.

    ``pathological_rate`` is the share of completions carrying pathological LaTeX: about 40% of
    them come as whole groups with a pathological reference, the rest as single predictions
    scattered over ordinary groups.
    """
    if prompts < 1 or rollouts < 1:
        raise ValueError("prompts and rollouts must be >= 1")
    if not 0.0 <= pathological_rate <= 1.0:
        raise ValueError(f"pathological_rate must be in [0, 1], got {pathological_rate}")
    rng = random.Random(seed)
    n_patho = round(pathological_rate * prompts * rollouts)
    patho_groups = set(rng.sample(range(prompts), min(prompts, int(0.4 * n_patho) // rollouts)))
    names, weights = zip(*((k, w) for k, (w, _) in KINDS.items()))
    batch: list[Rollout] = []
    for g in range(prompts):
        pid = f"q{g:05d}"
        if g in patho_groups:
            batch += _group(rng, pid, _pathological_reference(rng), rollouts, patho_ref=True)
        else:
            batch += _group(rng, pid, KINDS[rng.choices(names, weights)[0]][1](rng), rollouts, patho_ref=False)
    ordinary = [i for i, r in enumerate(batch) if not r.pathological]
    for i in rng.sample(ordinary, min(len(ordinary), n_patho - len(patho_groups) * rollouts)):
        r = batch[i]
        answer = rng.choice(PATHOLOGICAL_PREDICTIONS)
        completion = chain_of_thought(rng, r.question, rng.randint(150, 600)) + rf"The answer is \boxed{{{answer}}}."
        expected = answer == nested_fraction() and r.reference == "2"  # the 200-deep fraction equals 2
        batch[i] = Rollout(r.prompt_id, r.kind, r.question, completion, r.reference, answer, True, expected, True)
    return batch


def to_records(batch: list[Rollout]) -> list[dict]:
    """The rollouts as rewardsmith records (the schema in docs/architecture.md)."""
    return [
        {
            "prompt_id": r.prompt_id,
            "prompt": r.question,
            "completion": r.completion,
            "answer": r.reference,
            "data_source": "math",
        }
        for r in batch
    ]
