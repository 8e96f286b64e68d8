"""Length-controlled win rate (Dubois et al., 2024, "Length-Controlled AlpacaEval").

A logistic GLM without intercept predicts the judge's preference for the model's output over
the baseline's on instruction i:

    logit P(model wins) = θ + φ·tanh(Δlen_i / std(Δlen)) + ψ·difficulty_i

(θ = θ_model − θ_base, ψ = ψ_model − ψ_base, Δlen = len(model output) − len(base output) in
characters, std with ddof 1). It is fitted with an L1 penalty (liblinear), the strength C chosen
by 5-fold cross-validation grouped by instruction over C ∈ logspace(−4, 4, 10) (scikit-learn's
default grid) on the weighted log loss, then refitted on everything. Soft preferences are
handled as in AlpacaEval: each judgement becomes two rows, label 1 with weight p and label 0
with weight 1 − p (a tie is p = 0.5). The length-controlled win rate is the GLM's prediction
with the length term set to zero: LC = 100·mean_i sigmoid(θ + ψ·difficulty_i).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..records import RecordError, completion_text
from .files import located_jsonl

C_GRID = tuple(float(c) for c in np.logspace(-4, 4, 10))
C_WITHOUT_CV = 100.0  # AlpacaEval's C when cross-validation is off
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
    if difficulty is not None and (isinstance(difficulty, bool) or not isinstance(difficulty, (int, float)) or not math.isfinite(difficulty)):
        raise RecordError(f"'difficulty' must be a finite number, got {difficulty!r}")
    return Judgement(str(obj["instruction_id"]), str(obj.get("model") or "model"), pref, len(completion_text(obj["output_model"])),
                     len(completion_text(obj["output_base"])), None if difficulty is None else float(difficulty), bool(obj.get("gamed_baseline") or False))


def read_judgements(source: str | Path | Iterable[dict[str, Any]]) -> list[Judgement]:
    """Judgements from a JSONL path or an iterable of dicts; errors say which line or item."""
    located = located_jsonl(source) if isinstance(source, (str, Path)) else [(f"judgement {i}", obj) for i, obj in enumerate(source)]
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
    from sklearn.linear_model import LogisticRegression

    l1_ratio = 1.0 if penalty == "l1" else 0.0
    if LogisticRegression().get_params().get("penalty") == "deprecated":  # scikit-learn >= 1.8
        return LogisticRegression(C=c, l1_ratio=l1_ratio, solver="liblinear", fit_intercept=False, random_state=0, max_iter=1000)
    return LogisticRegression(C=c, penalty=penalty, solver="liblinear", fit_intercept=False, random_state=0, max_iter=1000)


def _soft_rows(x: np.ndarray, p: np.ndarray, w: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each row twice: label 1 with weight w·p, label 0 with weight w·(1 − p); zero weights dropped."""
    xx = np.vstack([x, x])
    yy = np.concatenate([np.ones(len(p)), np.zeros(len(p))])
    ww = np.concatenate([w * p, w * (1.0 - p)])
    gg = np.concatenate([groups, groups])
    keep = ww > 0
    return xx[keep], yy[keep], ww[keep], gg[keep]


def _fit_soft(x: np.ndarray, p: np.ndarray, w: np.ndarray, penalty: str, c: float) -> np.ndarray | None:
    """Coefficients of a soft-label logistic fit; None when only one outcome occurs."""
    xx, yy, ww, _ = _soft_rows(x, p, w, np.zeros(len(p)))
    if len(np.unique(yy)) < 2:
        return None
    return _logistic(penalty, c).fit(xx, yy, sample_weight=ww).coef_[0]


def _weighted_log_loss(coef: np.ndarray, x: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    z = x @ coef
    log_q, log_1mq = -np.logaddexp(0.0, -z), -np.logaddexp(0.0, z)
    return float(-(w * (p * log_q + (1.0 - p) * log_1mq)).sum() / w.sum())


def _choose_c(x: np.ndarray, p: np.ndarray, w: np.ndarray, groups: np.ndarray, n_splits: int, grid: Sequence[float]) -> float:
    """C with the lowest held-out weighted log loss, folds grouped by instruction."""
    from sklearn.model_selection import GroupKFold

    splits = min(n_splits, len(np.unique(groups)))
    if splits < 2:
        return C_WITHOUT_CV
    losses = {c: [] for c in grid}
    for train, test in GroupKFold(n_splits=splits).split(x, p, groups):
        for c in grid:
            coef = _fit_soft(x[train], p[train], w[train], "l1", c)
            if coef is not None:
                losses[c].append(_weighted_log_loss(coef, x[test], p[test], w[test]))
    scored = {c: float(np.mean(v)) for c, v in losses.items() if v}
    return min(scored, key=lambda c: (scored[c], c)) if scored else C_WITHOUT_CV  # ties: the stronger penalty, as LogisticRegressionCV


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def _std_tanh_delta(js: Sequence[Judgement]) -> np.ndarray:
    delta = np.array([j.len_model - j.len_base for j in js], dtype=np.float64)
    sd = delta.std(ddof=1) if len(delta) > 1 else 0.0
    return np.tanh(delta / sd) if sd > 0 else np.zeros(len(delta))


def estimate_difficulty(judgements: Sequence[Judgement], exclude_model: str | None = None, c: float = 1.0) -> dict[str, float]:
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
    coef = _fit_soft(x, np.array([j.preference for j in js]), np.ones(len(js)), "l2", c)
    if coef is None:
        return {s: 0.0 for s in instructions}
    return {s: float(coef[len(models) + k]) for s, k in ii.items()}


def length_controlled_win_rate(judgements: Sequence[Judgement], model: str | None = None, n_splits: int = 5,
                               baseline_weight: float = BASELINE_WEIGHT, difficulty_c: float = 1.0,
                               c_grid: Sequence[float] = C_GRID) -> dict[str, Any]:
    """Raw and length-controlled win rate of ``model`` (the only non-gamed model if None)."""
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
        result["difficulty"] = "estimated from the other models' judgements" if difficulty_of else "none (single model, no 'difficulty' given): term dropped"

    def design(rows: Sequence[Judgement], indicator: float) -> np.ndarray:
        d = np.array([difficulty_of.get(j.instruction_id, 0.0) if j.difficulty is None else j.difficulty for j in rows])
        return np.column_stack([np.full(len(rows), indicator), _std_tanh_delta(rows), d])

    blocks_x, blocks_p, blocks_w, blocks_g = [design(own, 1.0)], [np.array([j.preference for j in own])], [np.ones(len(own))], [[j.instruction_id for j in own]]
    variants = sorted({j.model for j in gamed})
    for v in variants:
        rows = [j for j in gamed if j.model == v]
        blocks_x.append(design(rows, 0.0))
        blocks_p.append(np.array([j.preference for j in rows]))
        blocks_w.append(np.full(len(rows), baseline_weight / len(variants)))
        blocks_g.append([j.instruction_id for j in rows])
    x, p, w = np.vstack(blocks_x), np.concatenate(blocks_p), np.concatenate(blocks_w)
    groups = np.unique(np.concatenate(blocks_g), return_inverse=True)[1]

    c = _choose_c(x, p, w, groups, n_splits, c_grid)
    coef = _fit_soft(x, p, w, "l1", c)
    if coef is None:  # every judgement has the same outcome: nothing to separate length from quality
        result.update(lc_win_rate=result["win_rate"], theta=None, phi=None, psi=None, C=None,
                      note="every judgement has the same outcome; the GLM cannot be fitted and LC equals the raw win rate")
        return result
    theta, phi, psi = (float(v) for v in coef)
    x_own = design(own, 1.0)
    lc = 100.0 * float(_sigmoid(theta + psi * x_own[:, 2]).mean())
    result.update(lc_win_rate=lc, theta=theta, phi=phi, psi=psi, C=c, gamed_baseline_rows=len(gamed))
    return result


def length_controlled_win_rates(judgements: Sequence[Judgement], **kwargs: Any) -> dict[str, dict[str, Any]]:
    """:func:`length_controlled_win_rate` for every (non-gamed) model in the judgements."""
    names = sorted({j.model for j in judgements if not j.gamed_baseline})
    return {m: length_controlled_win_rate(judgements, model=m, **kwargs) for m in names}
