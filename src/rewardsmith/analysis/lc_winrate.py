"""Length-controlled win rate (Dubois et al., 2024, "Length-Controlled AlpacaEval").

A logistic GLM without intercept predicts the judge's preference for the model's output over
the baseline's on instruction i:

    logit P(model wins) = θ + φ·tanh(Δlen_i / std(Δlen)) + ψ·difficulty_i

(θ = θ_model − θ_base, ψ = ψ_model − ψ_base, Δlen = len(model output) − len(base output) in
characters, std with ddof 1). The fit is AlpacaEval 0.6.6's ``fit_LogisticRegressionCV`` re-implemented
(checked to rounding against its released code on tests/data/lcwr_annotations.jsonl): soft preferences become
two rows each, label 1 with weight w·p and label 0 with weight w·(1 − p) (a tie is p = 0.5); L1-penalised
liblinear without intercept (random_state 123; columns length, difficulty, model in that order; the
gamed-baseline rows before the model's); C ∈ logspace(−4, 4, 10) chosen by 5-fold GroupKFold with **one
group per annotation row**, on the held-out mean over rows of w·cross-entropy(p, q) (lowest summed over folds,
the first C on ties), then refitted on everything. The length-controlled win rate is the GLM's prediction with
the length term set to zero: LC = 100·mean_i sigmoid(θ + ψ·difficulty_i).

**When the number means nothing.** If the verdicts are (quasi-)separated (a judge that always picks the
longer output: the length term alone predicts every verdict) the maximum-likelihood fit does not exist and
AlpacaEval's penalised fit returns whatever C makes of it (anything from about 10 to 80); if the model is
always much longer than the base, tanh(Δlen/sd) ≈ 1 duplicates the model indicator and θ and φ cannot be told
apart; liblinear may also stop before converging. Each case is reported in ``problems`` and ``lc_win_rate`` is
None (``glm_lc_win_rate`` keeps AlpacaEval's number). Otherwise a percentile bootstrap interval (resampling the
annotation rows of each block, seeded, C fixed at the full-data choice) comes with every LC win rate.

**Instruction difficulty.** AlpacaEval takes difficulty_i from a GLM fitted once on every model
of its leaderboard (a per-instruction effect) and downloads it. Here it is estimated the same
way from the judgement file itself: for model m, a logistic GLM with one effect per *other*
model and one per instruction, L2-penalised (C = ``difficulty_c``), is fitted on the other
models' judgements against the same baseline, and difficulty_i is the instruction's effect
(0 for instructions no other model was judged on). Leaving m out keeps its own labels out of
its feature. With a single model the term is dropped (difficulty 0) unless the file gives a
``difficulty`` per judgement, which always takes precedence.

**Baseline regularisation.** Rows marked ``gamed_baseline`` compare the baseline with a
length-manipulated copy of itself (AlpacaEval uses a verbose and a concise variant); they enter
the fit with the model indicator 0 and weight ``baseline_weight``/(number of variants)
(AlpacaEval: 0.2), which pins φ when the model is always longer or always shorter.

Judgement JSONL schema, one object per line:
``instruction_id`` (str|int), ``output_model`` and ``output_base`` (texts), and exactly one of
``preference`` (P(model output preferred) in [0, 1], 0.5 = tie), ``preference_12``
(AlpacaEval's encoding: 1 = base preferred, 2 = model preferred, 1.5 or 0 = tie, values between
are probabilities) or ``winner`` ("model" | "base" | "tie"); optional ``model`` (name, default
"model"; one baseline per file), ``difficulty`` (float) and ``gamed_baseline`` (bool, with
``model`` naming the variant).

    >>> js = [Judgement("q1", "m", 1.0, 120, 100), Judgement("q2", "m", 0.5, 90, 100)]
    >>> raw_win_rate(js)["win_rate"]
    75.0
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..records import RecordError, completion_text
from .files import located_jsonl

C_GRID = tuple(float(c) for c in np.logspace(-4, 4, 10))
C_WITHOUT_CV = 100.0  # AlpacaEval's C when cross-validation is off
RANDOM_STATE = 123  # AlpacaEval's liblinear seed
N_BOOT = 200
TERMS = ("length (φ)", "difficulty (ψ)", "model (θ)")  # the design's columns
BASELINE_WEIGHT = 0.2  # AlpacaEval's regularize_to_baseline_lambda


@dataclass(frozen=True)
class Judgement:
    """One pairwise judgement: ``preference`` = P(the model's output is preferred)."""

    instruction_id: str
    model: str
    preference: float
    len_model: int
    len_base: int
    difficulty: float | None = None
    gamed_baseline: bool = False


def parse_judgement(obj: Any) -> Judgement:
    """Validate one JSON object of the judgement schema (module docstring)."""
    if not isinstance(obj, dict):
        raise RecordError(f"a judgement must be a JSON object, got {type(obj).__name__}")
    for key in ("instruction_id", "output_model", "output_base"):
        if obj.get(key) is None:
            raise RecordError(f"missing required field {key!r}")
    given = [k for k in ("preference", "preference_12", "winner") if obj.get(k) is not None]
    if len(given) != 1:
        raise RecordError(f"give exactly one of 'preference', 'preference_12', 'winner'; got {given or 'none'}")
    value = obj[given[0]]
    if given[0] == "winner":
        table = {"model": 1.0, "base": 0.0, "tie": 0.5}
        if value not in table:
            raise RecordError(f"'winner' must be one of model, base, tie; got {value!r}")
        pref = table[value]
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise RecordError(f"{given[0]!r} must be a number, got {value!r}")
        if given[0] == "preference_12":
            if value == 0:
                value = 1.5
            if not 1.0 <= value <= 2.0:
                raise RecordError(f"'preference_12' must be in [1, 2] (or 0 for a tie), got {value}")
            pref = float(value) - 1.0
        else:
            if not 0.0 <= value <= 1.0:
                raise RecordError(f"'preference' must be in [0, 1], got {value}")
            pref = float(value)
    difficulty = obj.get("difficulty")
    if difficulty is not None and (
        isinstance(difficulty, bool) or not isinstance(difficulty, (int, float)) or not math.isfinite(difficulty)
    ):
        raise RecordError(f"'difficulty' must be a finite number, got {difficulty!r}")
    return Judgement(
        str(obj["instruction_id"]),
        str(obj.get("model") or "model"),
        pref,
        len(completion_text(obj["output_model"])),
        len(completion_text(obj["output_base"])),
        None if difficulty is None else float(difficulty),
        bool(obj.get("gamed_baseline") or False),
    )


def read_judgements(source: str | Path | Iterable[dict[str, Any]]) -> list[Judgement]:
    """Judgements from a JSONL path or an iterable of dicts; errors say which line or item."""
    located = (
        located_jsonl(source)
        if isinstance(source, (str, Path))
        else [(f"judgement {i}", obj) for i, obj in enumerate(source)]
    )
    out = []
    for where, obj in located:
        try:
            out.append(parse_judgement(obj))
        except RecordError as exc:
            raise RecordError(f"{where}: {exc}") from None
    return out


def raw_win_rate(judgements: Sequence[Judgement]) -> dict[str, Any]:
    """100·mean preference, its standard error, and win/tie/loss counts."""
    p = np.array([j.preference for j in judgements], dtype=np.float64)
    n = len(p)
    return {
        "n": n,
        "win_rate": float(100.0 * p.mean()) if n else None,
        "standard_error": float(100.0 * p.std(ddof=1) / math.sqrt(n)) if n > 1 else None,
        "wins": int((p > 0.5).sum()),
        "ties": int((p == 0.5).sum()),
        "losses": int((p < 0.5).sum()),
    }


def _logistic(penalty: str, c: float):
    """AlpacaEval's solver settings (``fit_LogisticRegressionCV``: liblinear, no intercept, random_state 123)."""
    from sklearn.linear_model import LogisticRegression

    l1_ratio = 1.0 if penalty == "l1" else 0.0
    if LogisticRegression().get_params().get("penalty") == "deprecated":  # scikit-learn >= 1.8
        return LogisticRegression(
            C=c, l1_ratio=l1_ratio, solver="liblinear", fit_intercept=False, random_state=RANDOM_STATE
        )
    return LogisticRegression(C=c, penalty=penalty, solver="liblinear", fit_intercept=False, random_state=RANDOM_STATE)


def _soft_rows(x: np.ndarray, p: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every row twice, as AlpacaEval: label 1 with weight w·p, then label 0 with weight w·(1 − p)."""
    return (
        np.vstack([x, x]),
        np.concatenate([np.ones(len(p)), np.zeros(len(p))]),
        np.concatenate([w * p, w * (1.0 - p)]),
    )


def _fit_soft(x: np.ndarray, p: np.ndarray, w: np.ndarray, penalty: str, c: float) -> tuple[np.ndarray, bool]:
    """Coefficients of a soft-label logistic fit and whether the solver reported non-convergence."""
    from sklearn.exceptions import ConvergenceWarning

    xx, yy, ww = _soft_rows(x, p, w)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        coef = _logistic(penalty, c).fit(xx, yy, sample_weight=ww).coef_[0]
    return coef, any(issubclass(wn.category, ConvergenceWarning) for wn in caught)


def _held_out_loss(coef: np.ndarray, x: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    """AlpacaEval's CV score (``logloss_continuous``), negated: the mean over rows of w·cross-entropy(p, q),
    q clipped to [1e-15, 1 − 1e-15] (a mean over rows, not divided by the weights' sum)."""
    q = np.clip(_sigmoid(x @ coef), 1e-15, 1 - 1e-15)
    return float(-np.mean(w * (p * np.log(q) + (1.0 - p) * np.log(1.0 - q))))


def _choose_c(x: np.ndarray, p: np.ndarray, w: np.ndarray, n_splits: int, grid: Sequence[float]) -> float:
    """C of AlpacaEval's ``LogisticRegressionCV``: scikit-learn's GroupKFold with one group per annotation
    row (both soft copies of a row share its group), lowest summed held-out loss, the first C on ties."""
    from sklearn.model_selection import GroupKFold

    if n_splits < 2 or len(p) < n_splits:
        return C_WITHOUT_CV
    losses = np.zeros(len(grid))
    for train, test in GroupKFold(n_splits=n_splits).split(x, p, np.arange(len(p))):
        for k, c in enumerate(grid):
            losses[k] += _held_out_loss(_fit_soft(x[train], p[train], w[train], "l1", c)[0], x[test], p[test], w[test])
    return float(grid[int(np.argmin(losses))])


def separating_direction(x: np.ndarray, p: np.ndarray) -> np.ndarray | None:
    """A direction β ≠ 0 with x_i·β ≥ 0 wherever the judge ever prefers the model (p > 0), ≤ 0 wherever it
    ever prefers the base (p < 1), strict somewhere: the data are (quasi-)separated, so the logistic MLE
    does not exist and the penalised fit is set by C alone (Albert & Anderson, 1984). None when there is
    none. Found by the linear programme of Konis (2007): maximise Σ s_i·x_i·β over β ∈ [−1, 1]^k."""
    from scipy.optimize import linprog

    rows = np.vstack([x[p > 0], -x[p < 1]])
    if len(rows) == 0:
        return None
    res = linprog(
        -rows.sum(axis=0), A_ub=-rows, b_ub=np.zeros(len(rows)), bounds=[(-1, 1)] * x.shape[1], method="highs"
    )
    if res.status != 0 or -res.fun <= 1e-7 * len(rows):
        return None
    return np.where((np.abs(res.x) > 1e-9) & np.any(x != 0, axis=0), res.x, 0.0)  # an all-zero column is no direction


def collinear_terms(x: np.ndarray, tol: float = 1e-4) -> np.ndarray | None:
    """Weights of a near-linear dependence between the (non-zero, unit-scaled) columns of ``x``, or None: e.g. a
    model always far longer than the base makes tanh(Δlen/sd) ≈ 1, the model indicator's twin, and the L1 fit
    then splits the effect between θ and φ arbitrarily. Smallest/largest singular value below ``tol``."""
    norms = np.linalg.norm(x, axis=0)
    used = np.flatnonzero(norms > 0)
    if len(used) < 2:
        return None
    _, s, vt = np.linalg.svd(x[:, used] / norms[used], full_matrices=False)
    if s[-1] >= tol * s[0]:
        return None
    out = np.zeros(x.shape[1])
    out[used] = np.where(np.abs(vt[-1]) > 0.1, vt[-1], 0.0)
    return out


def is_extreme_change(raw: float, lc: float, abs_diff: float = 10.0, rel_diff: float = 4.0) -> bool:
    """AlpacaEval's ``get_is_extreme_changes`` warning rule: LC below min(raw − raw/4, raw − 10) or above
    max(raw + (100 − raw)/4, raw + 10)."""
    return lc < min(raw - raw / rel_diff, raw - abs_diff) or lc > max(raw + (100 - raw) / rel_diff, raw + abs_diff)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def _std_tanh_delta(js: Sequence[Judgement]) -> np.ndarray:
    delta = np.array([j.len_model - j.len_base for j in js], dtype=np.float64)
    sd = delta.std(ddof=1) if len(delta) > 1 else 0.0
    return np.tanh(delta / sd) if sd > 0 else np.zeros(len(delta))


def estimate_difficulty(
    judgements: Sequence[Judgement], exclude_model: str | None = None, c: float = 1.0
) -> dict[str, float]:
    """Per-instruction effect of an L2 logistic GLM with one effect per model and one per
    instruction, fitted on every non-gamed judgement of models other than ``exclude_model``.
    Empty when no such judgement exists (see the module docstring)."""
    js = [j for j in judgements if not j.gamed_baseline and j.model != exclude_model]
    if not js:
        return {}
    models = sorted({j.model for j in js})
    instructions = sorted({j.instruction_id for j in js})
    mi, ii = {m: k for k, m in enumerate(models)}, {s: k for k, s in enumerate(instructions)}
    x = np.zeros((len(js), len(models) + len(instructions)))
    for r, j in enumerate(js):
        x[r, mi[j.model]] = 1.0
        x[r, len(models) + ii[j.instruction_id]] = 1.0
    coef, _ = _fit_soft(x, np.array([j.preference for j in js]), np.ones(len(js)), "l2", c)
    return {s: float(coef[len(models) + k]) for s, k in ii.items()}


def length_controlled_win_rate(
    judgements: Sequence[Judgement],
    model: str | None = None,
    n_splits: int = 5,
    baseline_weight: float = BASELINE_WEIGHT,
    difficulty_c: float = 1.0,
    c_grid: Sequence[float] = C_GRID,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> dict[str, Any]:
    """Raw and length-controlled win rate of ``model`` (the only non-gamed model if None), with a percentile
    bootstrap interval and the fit's diagnostics (module docstring). ``lc_win_rate`` is None when the GLM is
    not identified; ``glm_lc_win_rate`` then still holds what AlpacaEval would print."""
    names = sorted({j.model for j in judgements if not j.gamed_baseline})
    if model is None:
        if len(names) != 1:
            raise ValueError(f"the judgements cover {len(names)} models ({', '.join(names)}); name one")
        model = names[0]
    own = [j for j in judgements if j.model == model and not j.gamed_baseline]
    if not own:
        raise ValueError(f"no judgements for model {model!r}; models: {', '.join(names)}")
    gamed = [j for j in judgements if j.gamed_baseline]
    result = raw_win_rate(own)
    result["model"] = model
    result["mean_length_model_chars"] = float(np.mean([j.len_model for j in own]))
    result["mean_length_base_chars"] = float(np.mean([j.len_base for j in own]))

    if all(j.difficulty is not None for j in own + gamed):
        difficulty_of: dict[str, float] = {}
        result["difficulty"] = "given in the file"
    else:
        difficulty_of = estimate_difficulty(judgements, exclude_model=model, c=difficulty_c)
        result["difficulty"] = (
            "estimated from the other models' judgements"
            if difficulty_of
            else "none (single model, no 'difficulty' given): term dropped"
        )

    # AlpacaEval's row order: the gamed-baseline rows first (by variant), then the model's own rows
    variants = sorted({j.model for j in gamed})
    blocks = [([j for j in gamed if j.model == v], 0.0, baseline_weight / len(variants)) for v in variants] + [
        (own, 1.0, 1.0)
    ]

    def design(rows: Sequence[Judgement], indicator: float) -> np.ndarray:
        d = np.array([difficulty_of.get(j.instruction_id, 0.0) if j.difficulty is None else j.difficulty for j in rows])
        return np.column_stack([_std_tanh_delta(rows), d, np.full(len(rows), indicator)])  # AlpacaEval's column order

    def data(chosen: Sequence[Sequence[Judgement]]) -> tuple[np.ndarray, ...]:
        x = np.vstack([design(rows, ind) for rows, (_, ind, _) in zip(chosen, blocks)])
        p = np.concatenate([[j.preference for j in rows] for rows in chosen])
        w = np.concatenate([np.full(len(rows), wt) for rows, (_, _, wt) in zip(chosen, blocks)])
        return x, p, w

    def lc_of(coef: np.ndarray, rows: Sequence[Judgement]) -> float:
        return 100.0 * float(_sigmoid(coef[2] + coef[1] * design(rows, 1.0)[:, 1]).mean())

    x, p, w = data([rows for rows, _, _ in blocks])
    if np.all(p == p[0]) and p[0] in (0.0, 1.0):
        result.update(
            lc_win_rate=None,
            glm_lc_win_rate=None,
            theta=None,
            phi=None,
            psi=None,
            C=None,
            gamed_baseline_rows=len(gamed),
            identified=False,
            problems=[
                "every judgement has the same outcome: the GLM cannot be fitted "
                "(complete separation) and the LC win rate is not identified"
            ],
        )
        return result
    c = _choose_c(x, p, w, n_splits, c_grid)
    coef, failed_to_converge = _fit_soft(x, p, w, "l1", c)
    phi, psi, theta = (float(v) for v in coef)
    glm_lc = lc_of(coef, own)
    problems = []
    direction = separating_direction(x, p)
    if direction is not None:
        terms = [name for name, v in zip(TERMS, direction) if v]
        problems.append(
            f"(quasi-)separation: the verdicts are perfectly predicted along {' + '.join(terms)}, so the GLM's "
            "maximum-likelihood fit does not exist and its coefficients are set by the penalty C alone; "
            "the LC win rate is not identified"
        )
    dependence = collinear_terms(x)
    if dependence is not None:
        terms = [name for name, v in zip(TERMS, dependence) if v]
        problems.append(
            f"collinearity: the {' and '.join(terms)} terms are (nearly) linearly dependent in the data "
            "(e.g. the model is always much longer than the base), so the fit cannot tell them apart; "
            "the LC win rate is not identified (gamed-baseline rows can pin the length term)"
        )
    if failed_to_converge:
        problems.append("the GLM fit did not converge (liblinear hit its iteration limit)")
    result.update(
        lc_win_rate=None if problems else glm_lc,
        glm_lc_win_rate=glm_lc,
        theta=theta,
        phi=phi,
        psi=psi,
        C=c,
        gamed_baseline_rows=len(gamed),
        identified=not problems,
        problems=problems,
    )
    if not problems and is_extreme_change(result["win_rate"], glm_lc):
        result["note"] = "LC differs from the raw win rate beyond AlpacaEval's warning thresholds: check the fit"
    if n_boot and not problems:
        rng = np.random.default_rng(seed)
        lcs = []
        for _ in range(n_boot):
            chosen = [[rows[k] for k in rng.integers(0, len(rows), len(rows))] for rows, _, _ in blocks]
            xb, pb, wb = data(chosen)
            same = np.all(pb == pb[0]) and pb[0] in (0.0, 1.0)  # a tiny resample with one outcome: its limit
            lcs.append(100.0 * pb[0] if same else lc_of(_fit_soft(xb, pb, wb, "l1", c)[0], chosen[-1]))
        low, high = np.percentile(lcs, [2.5, 97.5])
        result["lc_interval_95"] = [float(low), float(high)]
        result["bootstrap"] = {
            "n_boot": n_boot,
            "seed": seed,
            "resampled": "annotation rows, each block (model, gamed variants) separately",
            "C": "fixed at the full-data choice",
        }
    return result


def length_controlled_win_rates(judgements: Sequence[Judgement], **kwargs: Any) -> dict[str, dict[str, Any]]:
    """:func:`length_controlled_win_rate` for every (non-gamed) model in the judgements."""
    names = sorted({j.model for j in judgements if not j.gamed_baseline})
    return {m: length_controlled_win_rate(judgements, model=m, **kwargs) for m in names}
