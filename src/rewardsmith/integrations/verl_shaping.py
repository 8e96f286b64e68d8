"""Group-aware, stateful and step-scheduled shaping in verl 0.9: the spec's shaping runs in the advantage step.

verl 0.9 verifies one rollout at a time (its reward loop streams each finished rollout to a
reward worker) but computes advantages once per training step, on the driver, over the whole
batch with every group together. A spec is split along that line:

- the reward function (``compute_score`` with ``REWARDSMITH_VERL_ADVANTAGE=1``) verifies one
  rollout — :meth:`Pipeline.verify`: the verdict and the format score, no shaping, no state —
  and returns a *verification code* as its ``score`` (:func:`verification_rows`);
- the advantage estimator ``rewardsmith_spec`` (``algorithm.adv_estimator=rewardsmith_spec``,
  :class:`SpecAdvantage`) decodes the codes, takes each rollout's length from
  ``response_mask`` (response tokens) and its group from ``uid`` (or the dataset index the code
  carries), runs the spec's remaining stages with :meth:`Pipeline.score_verified` — correctness,
  format, shaping, gate, the spec's ``advantage`` — exactly as ``rewardsmith score`` does on the
  same rollouts, and returns that advantage over every response token (verl's layout, returns
  equal to advantages). The state is saved to the spec's ``state`` path after each successful
  step, atomically; a step that fails leaves it as it was.

Why a code: verl 0.9.1 hands a registered estimator only ``token_level_rewards``,
``response_mask``, the ``uid`` array and the ``algorithm`` config
(``verl.trainer.ppo.ray_trainer.compute_advantage``; the v1 trainer reads no reward extra info
at that step), so what the estimator needs must travel in the reward, which verl stores as
float32 on the last response token. A code is an integer in [2**23, 2**24), exact in float32:
``2**23 + (key · n_format + format) · 9 + verdict``, where ``verdict`` is 0..4 for a verdict
score of 0, 1/4, 1/2, 3/4, 1, 5 no answer, 6 no verifier, 7 unknown (timeout, error, bad
reference), 8 unknown model judgement; ``format`` is 0..4 for a format score of 0, 1/4, 1/2,
3/4, 1 (``n_format`` = 5 with a format check, else 1); ``key`` is the rollout's dataset index
(``extra_info["index"]``) for specs with stateful shapers, which remember prompts across steps
while verl's ``uid`` changes every step, else 0. Other verdict or format scores are refused
with a message, never rounded. verl's ``score``/``reward`` metrics therefore show codes; the
reward function's ``acc``, ``correct_known``, ... extra values are the ones to read.

The training step is the state's own counter (one estimator call per training step): verl 0.9.1
passes an estimator neither ``meta_info`` nor the global step.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from rewardsmith.batch import Batch
from rewardsmith.pipeline import Pipeline, Scores, Verified, load_spec
from rewardsmith.shaping.base import ShapingContext
from rewardsmith.types import ERROR, JUDGE_FAILED, NO_ANSWER, OK, TIMEOUT

ADVANTAGE_ENV = "REWARDSMITH_VERL_ADVANTAGE"  # "1": compute_score returns verification codes
ESTIMATOR = "rewardsmith_spec"
CONFIG_KEY = "rewardsmith_spec"  # algorithm.rewardsmith_spec: the spec path for the estimator

CODE_BASE = 2**23
CODE_END = 2**24  # float32 holds every integer below it exactly
GRID = (0.0, 0.25, 0.5, 0.75, 1.0)  # verdict and format scores a code carries
NO_ANSWER_CODE, NO_VERIFIER_CODE, UNKNOWN_CODE, JUDGE_FAILED_CODE = 5, 6, 7, 8
N_VERDICT = 9


class RolloutTextUnavailable(ValueError):
    """A shaper read something verl's advantage step does not have (the completion text, the meta, ...)."""


class _Unavailable(Sequence):
    """A batch column the advantage step does not have: its length is known, reading it raises."""

    def __init__(self, what: str, n: int):
        self.what, self.n = what, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        raise RolloutTextUnavailable(
            f"verl's advantage step has only each rollout's verification, length and group, not its {self.what}"
        )

    def __iter__(self) -> Iterator[Any]:
        for i in range(self.n):
            yield self[i]


def advantage_step_enabled() -> bool:
    """Whether this process's ``compute_score`` feeds the ``rewardsmith_spec`` advantage step."""
    return os.environ.get(ADVANTAGE_ENV, "").strip().lower() in ("1", "true", "yes")


# --------------------------------------------------------------------------- what the path can run
def _column_free_batch(prompt_ids: list[str], length: np.ndarray, truncated: np.ndarray) -> Batch:
    n = len(prompt_ids)
    text = {
        name: _Unavailable(what, n)
        for name, what in (
            ("prompts", "prompt"),
            ("completions", "completion text"),
            ("answers", "reference answer"),
            ("metas", "record meta"),
            ("token_ids", "token ids"),
            ("turns", "messages"),
        )
    }
    return Batch(
        prompt_ids=prompt_ids,
        num_tokens=np.asarray(length, dtype=np.float64),
        truncated=np.asarray(truncated, dtype=bool),
        data_sources=[None] * n,
        steps=np.full(n, -1, dtype=np.int64),
        **text,  # type: ignore[arg-type]
    )


def _text_readers(pipeline: Pipeline) -> list[str]:
    """The spec's shapers that read a rollout's text or meta: each run once on a small synthetic
    batch (a scratch state, nothing saved) whose text columns raise when read. Its rows cover
    correct, wrong (one far longer than any target), unanswered and truncated rollouts."""
    length = np.array([10.0, 20.0, 15.0, 1e7, 30.0])
    batch = _column_free_batch(["a", "a", "b", "b", "b"], length, np.array([False, False, False, True, False]))
    correct = np.array([1.0, 0.0, 1.0, 0.0, 0.0])
    answered = np.array([True, True, True, True, False])
    bv = pipeline.base_values
    base = np.where(answered, np.where(correct == 1.0, bv.correct, bv.wrong), bv.no_answer)
    readers = []
    for key, shaper in pipeline.shapers:
        ctx = ShapingContext(
            batch, base.copy(), base, correct, length, "tokens", answered, np.ones(5, bool), 0, bv, {}
        )  # fmt: skip
        try:
            shaper.apply(ctx)
        except RolloutTextUnavailable:
            readers.append(key)
        except Exception:  # only text access is checked here; the real batch reports anything else
            pass
    return readers


def check_advantage_step(pipeline: Pipeline) -> None:
    """Raise ValueError naming what in the spec cannot run in verl's advantage step."""
    spec, problems = pipeline.spec, []
    if spec.advantage is None:
        problems.append("it names no advantage estimator (add e.g. `advantage: {name: grpo}`)")
    if spec.length_unit != "tokens":
        problems.append(f"length_unit is {spec.length_unit!r}: the step's lengths are response tokens")
    if pipeline.needs_signals:
        problems.append(f"shapers read model signals {sorted(pipeline.needs_signals)}")
    dense = [key for key, s in pipeline.shapers if s.dense_unit]
    if dense:
        problems.append(f"shapers {dense} give per-unit rewards, which a per-rollout advantage cannot carry")
    per_unit = [name for name, v in pipeline.verifiers.items() if v.dense_unit]
    if per_unit:
        problems.append(f"verifiers {per_unit} give per-unit rewards, which a per-rollout advantage cannot carry")
    scheduled = [name for name, v in pipeline.verifiers.items() if v.step_scheduled]
    if scheduled:
        problems.append(f"verifiers {scheduled} follow the step, which the reward workers do not see")
    readers = _text_readers(pipeline)
    if readers:
        problems.append(f"shapers {readers} read the completion text or meta, which the step does not have")
    if problems:
        raise ValueError("this spec cannot run in verl's advantage step (rewardsmith_spec): " + "; ".join(problems))


def _prompt_keyed(pipeline: Pipeline) -> bool:
    """Stateful shapers remember prompts across steps: codes then carry the dataset index."""
    return any(s.stateful for _, s in pipeline.shapers)


def _n_format(pipeline: Pipeline) -> int:
    return len(GRID) if pipeline.format is not None else 1


def max_prompt_key(pipeline: Pipeline) -> int:
    """The largest dataset index a code can carry for this spec."""
    return (CODE_END - CODE_BASE) // (_n_format(pipeline) * N_VERDICT) - 1


# --------------------------------------------------------------------------- reward function side
def _grid_index(value: float, what: str, row: int) -> int:
    for i, g in enumerate(GRID):
        if value == g:
            return i
    raise ValueError(
        f"rollout {row}: {what} {value!r} cannot travel through verl's float32 reward exactly; the advantage "
        f"step carries {what}s of 0, 1/4, 1/2, 3/4 and 1 (use compute_score_batch or TRL for other values)"
    )


def _verdict_code(verdict: float, status: str, row: int) -> int:
    if status == JUDGE_FAILED:
        return JUDGE_FAILED_CODE
    if status == NO_ANSWER:
        if verdict != 0.0:  # the pipeline pays it no_answer but reads its verdict as correctness
            raise ValueError(f"rollout {row}: a no-answer verdict must score 0, got {verdict!r}")
        return NO_ANSWER_CODE
    if math.isnan(verdict):
        return NO_VERIFIER_CODE if status == OK else UNKNOWN_CODE
    return _grid_index(float(verdict), "verdict score", row)


def _prompt_key(meta: dict[str, Any], pipeline: Pipeline, row: int) -> int:
    index, top = meta.get("index"), max_prompt_key(pipeline)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= top:
        stateful = [k for k, s in pipeline.shapers if s.stateful]
        raise ValueError(
            f"rollout {row}: shapers {stateful} remember each prompt across steps, so each rollout needs a stable "
            f"prompt id: extra_info['index'] as an integer in [0, {top}] (verl's data preprocessing writes it); "
            f"got {index!r}"
        )
    return index


def verification_rows(pipeline: Pipeline, records: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    """Verify ``records`` (no shaping, no state) and return verl's per-rollout dicts: ``score`` the
    verification code, then ``acc``, ``correct_known``, ``timeout``, ``error``, ``judge_failed``
    (and ``format`` with a format check), the same keys for every rollout."""
    v = pipeline.verify(records)
    keyed, n_format = _prompt_keyed(pipeline), _n_format(pipeline)
    rows = []
    for i in range(len(v.batch)):
        verdict, status = float(v.verdict[i]), v.status[i]
        key = _prompt_key(v.batch.metas[i], pipeline, i) if keyed else 0
        fmt = 0 if v.format is None else _grid_index(float(v.format[i]), "format score", i)
        code = CODE_BASE + (key * n_format + fmt) * N_VERDICT + _verdict_code(verdict, status, i)
        row = {
            "score": float(code),
            "acc": float(verdict >= 1.0),
            "correct_known": float(not math.isnan(verdict)),
            "timeout": float(status == TIMEOUT),
            "error": float(status == ERROR),
            "judge_failed": float(status == JUDGE_FAILED),
        }
        if v.format is not None:
            row["format"] = float(v.format[i])
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- advantage step
def decode(
    pipeline: Pipeline, codes: np.ndarray, length: np.ndarray, truncated: np.ndarray, groups: Sequence[Any]
) -> Verified:
    """The :class:`Verified` rows behind verification codes (``groups``: verl's uid per row, used as
    the prompt id unless the codes carry a dataset index)."""
    codes = np.asarray(codes, dtype=np.float64)
    bad = np.flatnonzero((codes != np.round(codes)) | (codes < CODE_BASE) | (codes >= CODE_END))
    if len(bad):
        raise ValueError(
            f"row {int(bad[0])}'s reward {codes[bad[0]]!r} is not a rewardsmith verification code "
            f"({len(bad)} of {len(codes)} rows): {ESTIMATOR} needs the reward function compute_score with "
            f"{ADVANTAGE_ENV}=1, no reward model or KL in the reward, and one reward per rollout"
        )
    n_format = _n_format(pipeline)
    c = codes.astype(np.int64) - CODE_BASE
    v_code, rest = c % N_VERDICT, c // N_VERDICT
    f_code, key = rest % n_format, rest // n_format
    if (f_code >= len(GRID)).any():
        raise ValueError("verification codes do not match this spec's format check: was it changed mid-run?")
    grid = np.array(GRID)
    verdict = np.where(v_code < len(GRID), grid[np.minimum(v_code, len(GRID) - 1)], np.nan)
    verdict = np.where(v_code == NO_ANSWER_CODE, 0.0, verdict)
    status_of = {NO_ANSWER_CODE: NO_ANSWER, UNKNOWN_CODE: ERROR, JUDGE_FAILED_CODE: JUDGE_FAILED}
    status = [status_of.get(int(x), OK) for x in v_code]
    prompt_ids = [str(k) for k in key] if _prompt_keyed(pipeline) else [str(g) for g in groups]
    n = len(codes)
    return Verified(
        _column_free_batch(prompt_ids, length, truncated),
        np.asarray(length, dtype=np.float64),
        "tokens",
        verdict,
        status,
        [""] * n,
        None if pipeline.format is None else grid[f_code],
    )


def _config_value(config: Any, key: str) -> Any:
    if config is None:
        return None
    if hasattr(config, "get"):
        return config.get(key)
    return getattr(config, key, None)


class SpecAdvantage:
    """verl advantage estimator running a spec's shaping and advantage over the whole batch.

    The spec: ``spec`` if given (a path, dict or :class:`Pipeline`), else the ``algorithm`` config
    key ``rewardsmith_spec`` (``+algorithm.rewardsmith_spec=/abs/spec.yaml``), else
    ``$REWARDSMITH_SPEC``. ``last_scores`` holds the last step's :class:`Scores` (rewards,
    components, advantages) for inspection."""

    __name__ = ESTIMATOR

    def __init__(self, spec: Any = None):
        self.spec = spec
        self._pipelines: dict[str, Pipeline] = {}
        self.last_scores: Scores | None = None

    def pipeline(self, config: Any = None) -> Pipeline:
        if isinstance(self.spec, Pipeline):
            source: Any = self.spec
            cache_key = f"pipeline:{id(self.spec)}"
        else:
            source = self.spec or _config_value(config, CONFIG_KEY) or os.environ.get("REWARDSMITH_SPEC")
            if not source:
                raise RuntimeError(
                    f"{ESTIMATOR}: no spec; set +algorithm.{CONFIG_KEY}=/abs/spec.yaml or REWARDSMITH_SPEC"
                )
            cache_key = repr(source)
        if cache_key not in self._pipelines:
            pipe = source if isinstance(source, Pipeline) else load_spec(source)
            check_advantage_step(pipe)
            self._pipelines[cache_key] = pipe
        return self._pipelines[cache_key]

    def __call__(
        self, token_level_rewards: Any, response_mask: Any, index: Any = None, config: Any = None, **kwargs: Any
    ) -> tuple[Any, Any]:
        import torch

        if _config_value(config, "use_kl_in_reward"):
            raise ValueError(f"{ESTIMATOR}: set algorithm.use_kl_in_reward=false (the KL penalty would hide the codes)")
        if index is None:
            raise ValueError(f"{ESTIMATOR} needs verl's uid (the group of each rollout); it got none")
        pipe = self.pipeline(config)
        reward = token_level_rewards.detach().sum(dim=-1).cpu().double().numpy()
        length = response_mask.detach().sum(dim=-1).cpu().double().numpy()
        real = ~((length == 0) & (reward == 0))  # verl's padding rows: no response token, no reward
        rows = np.flatnonzero(real)
        truncated = length >= response_mask.shape[-1]  # ran to verl's max response length
        verified = decode(pipe, reward[rows], length[rows], truncated[rows], [index[i] for i in rows])
        with pipe.restored_on_error():
            scores = pipe.score_verified(verified, save=False)
            adv = np.zeros(len(reward))
            adv[rows] = scores.advantages  # type: ignore[index]
            out = torch.as_tensor(adv, dtype=token_level_rewards.dtype, device=token_level_rewards.device)
            out = out.unsqueeze(-1) * response_mask.to(token_level_rewards.dtype)
            pipe.save_state()  # only after the whole step succeeded
        self.last_scores = scores
        return out, out


def register_spec_advantage(name: str = ESTIMATOR, spec: Any = None) -> str:
    """Register :class:`SpecAdvantage` in verl's registry as ``name`` (idempotent); returns ``name``."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, register_adv_est

    if name not in ADV_ESTIMATOR_REGISTRY:
        register_adv_est(name)(SpecAdvantage(spec))
    return name
