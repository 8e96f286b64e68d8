"""Interval arithmetic for the lab's multi-seed study (95% by default).

- :func:`mean_interval`: mean over seeds with a Student-t interval, ``mean ± t(1 − α/2, n − 1)·s/√n``
  (``s`` the sample standard deviation); applied to per-seed paired differences by
  :func:`paired_difference`.
- :func:`wilson`: the Wilson score interval for a binomial proportion (Wilson, 1927), used for
  per-difficulty accuracy pooled over seeds and for accuracy per length bin:
  ``(p̂ + z²/2n ± z·√(p̂(1 − p̂)/n + z²/4n²)) / (1 + z²/n)``.
- :func:`newcombe_difference`: the difference of two independent proportions with Newcombe's
  hybrid score interval (Newcombe 1998, method 10), built from the two Wilson intervals.

    >>> round(wilson(8, 10).low, 4), round(wilson(8, 10).high, 4)
    (0.4902, 0.9433)

An :class:`Estimate` without an interval (one seed, no trials) has ``low = high = None`` and
says why in ``note``; :meth:`Estimate.sign` is +1 / −1 only when the interval excludes 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

LEVEL = 0.95
ONE_SEED = "one seed: no interval"
ZERO_VARIANCE = "zero variance across seeds"


@dataclass(frozen=True)
class Estimate:
    value: float | None  # None: nothing measured
    low: float | None = None
    high: float | None = None
    n: int = 0  # seeds (t-intervals) or trials (binomial intervals)
    note: str = ""

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def sign(self) -> int | None:
        """+1 if the interval lies above 0, −1 if below, 0 if it contains 0, None without one."""
        if not self.has_interval:
            return None
        return 1 if self.low > 0 else -1 if self.high < 0 else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Estimate:
        return cls(**{k: d.get(k) for k in ("value", "low", "high")}, n=d.get("n", 0), note=d.get("note", ""))


def _z(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


def t_quantile(df: int, level: float = LEVEL) -> float:
    """The two-sided Student-t critical value: t(0.975, 2) = 4.3027 for 95% and 3 seeds."""
    from scipy.stats import t

    if df < 1:
        raise ValueError(f"a t-interval needs df ≥ 1, got {df}")
    return float(t.ppf(0.5 + level / 2, df))


def mean_interval(values: Sequence[float], level: float = LEVEL, bounds: tuple[float, float] | None = None) -> Estimate:
    """Mean with a t-interval (df = n − 1). One value: no interval (``ONE_SEED``); all equal: the
    degenerate interval [mean, mean], noted ``ZERO_VARIANCE``; no values: ``value`` None. ``bounds``:
    the range the quantity lives in (a share: (0, 1)); the interval is cut to it and noted."""
    n = len(values)
    if n == 0:
        return Estimate(None, note="no values")
    mean = math.fsum(values) / n
    if n == 1:
        return Estimate(mean, n=1, note=ONE_SEED)
    if max(values) - min(values) <= 1e-12 * max(1.0, abs(mean)):  # equal up to rounding
        return Estimate(mean, mean, mean, n, ZERO_VARIANCE)
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = t_quantile(n - 1, level) * math.sqrt(var / n)
    low, high = mean - half, mean + half
    if bounds is not None and (low < bounds[0] or high > bounds[1]):
        return Estimate(mean, max(low, bounds[0]), min(high, bounds[1]), n, f"cut to [{bounds[0]:g}, {bounds[1]:g}]")
    return Estimate(mean, low, high, n)


def paired_difference(
    values: Mapping[Any, float],
    baseline: Mapping[Any, float],
    level: float = LEVEL,
    bounds: tuple[float, float] | None = None,
) -> Estimate:
    """Mean over the keys (seeds) present in both of ``values[s] − baseline[s]``, with a t-interval
    of those paired differences (cut to ``bounds``: a difference of two shares lies in (−1, 1))."""
    return mean_interval([values[s] - baseline[s] for s in values if s in baseline], level, bounds)


def wilson(successes: float, n: int, level: float = LEVEL) -> Estimate:
    """Wilson score interval for ``successes`` out of ``n``; stays inside [0, 1] (at 0/n the low
    end is exactly 0, at n/n the high end exactly 1). ``n`` = 0: no estimate."""
    if n <= 0:
        return Estimate(None, note="no trials")
    if not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n}")
    z = _z(level)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Estimate(p, low, high, n)


def newcombe_difference(s1: float, n1: int, s2: float, n2: int, level: float = LEVEL) -> Estimate:
    """p1 − p2 with Newcombe's hybrid score interval (1998, method 10): from the Wilson limits
    (l1, u1), (l2, u2): ``[d − √((p1 − l1)² + (u2 − p2)²), d + √((u1 − p1)² + (p2 − l2)²)]``."""
    a, b = wilson(s1, n1, level), wilson(s2, n2, level)
    if a.value is None or b.value is None:
        return Estimate(None, note="no trials")
    d = a.value - b.value
    low = d - math.sqrt((a.value - a.low) ** 2 + (b.high - b.value) ** 2)
    high = d + math.sqrt((a.high - a.value) ** 2 + (b.value - b.low) ** 2)
    return Estimate(d, low, high, n1 + n2)
