"""Score each exploit next to an honest answer inside GRPO groups, over group compositions.

Every exploit gets an *honest twin*: the same task answered correctly, its reasoning padded
to at least the exploit's length in the spec's unit, so length shapers cannot decide the
comparison in the exploit's favour; and a *wrong twin*, the twin with the wrong answer. All
three share a group (same ``prompt_id``) with five more honest rollouts whose mix is swept:
``mixed`` (correct, wrong and unanswered at several lengths), ``mostly_correct`` and
``mostly_wrong``. With m the twin's margin over the wrong twin, an exploit is *found* when, in
some composition, it scores at least ``twin − TIE·m`` (it ties or beats the honest answer); an
honest variant (``false_negative``) when it scores below that. Stateful shapers are scored after
one batch of history. A user's trajectories (records with ``messages``) are probed with trajectory
exploits (tool-call spam, repeated turns, an answer without the tools: :mod:`.trajectories`).
Built-in tasks keep honest answers within half the spec's longest
realistic rollout. The length shaping is also checked on its own for a wrong answer that can tie
or beat a correct one (:func:`rewardsmith.shaping.dominance.wrong_beats_correct`).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..batch import Batch
from ..pipeline import Pipeline, RewardWarning, load_spec
from ..records import completion_text
from ..shaping.dominance import max_length, option_headroom, wrong_beats_correct
from ..spec import Spec, parse_spec
from ..state import State
from ..verifiers.base import OK
from .exploits import (
    NOT_PROBED,
    Exploit,
    Reading,
    Task,
    builtin_tasks,
    generate,
    honest_completion,
    perturb,
    task_from_rollout,
)
from .trajectories import (
    SCORING_ERRORS,
    honest_trajectories,
    trajectory_exploits,
    unsure_twin,
)
from .trajectories import reproduction as trajectory_reproduction

COMPOSITIONS = ("mixed", "mostly_correct", "mostly_wrong")
_DATA_GROUPS = 8  # user rollout groups mutated (the first ones with a correct rollout)
_EPS = 1e-9
TIE = 0.1  # an exploit within 10% of the correct-vs-wrong margin of its honest twin ties it


@dataclass(frozen=True)
class Finding:
    """One exploit as scored: ``found`` when it ties or beats the honest answer (see the module doc)."""

    exploit: str
    cls: str
    reward: float
    honest_reward: float
    reproduction: str
    found: bool
    setting: str = ""  # the group composition (or length pair) of the reported rewards

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` row; an unknown reward (a refused honest answer's task) is null."""
        return {
            "exploit": self.exploit,
            "class": self.cls,
            "reward": None if math.isnan(self.reward) else self.reward,
            "honest_reward": None if math.isnan(self.honest_reward) else self.honest_reward,
            "reproduction": self.reproduction,
            "found": self.found,
            "setting": self.setting,
        }


@dataclass
class ProbeReport:
    findings: list[Finding] = field(default_factory=list)  # every exploit tried
    notes: list[str] = field(default_factory=list)  # what could not be probed, and why
    sweeps: list[str] = field(default_factory=list)  # how far each shaper coefficient is from a wrong answer winning
    seconds: float = 0.0

    @property
    def found(self) -> list[Finding]:
        return [f for f in self.findings if f.found]

    def classes_found(self) -> set[str]:
        return {f.cls for f in self.found}

    def classes_tried(self) -> set[str]:
        return {f.cls for f in self.findings}


class _Measure:
    """Lengths as the pipeline will count them; token counts are estimated (4 characters a token)
    and written into the records when the spec counts tokens without a tokenizer."""

    def __init__(self, pipe: Pipeline):
        self.unit = pipe.spec.length_unit
        self.tokenizer = pipe.tokenizer
        self.write_tokens = self.unit == "tokens" and self.tokenizer is None

    def __call__(self, text: str) -> int:
        if self.unit == "chars":
            return len(text)
        if self.unit == "words":
            return len(text.split())
        if self.tokenizer is not None:
            return len(self.tokenizer(text))
        return math.ceil(len(text) / 4)


def _record(
    task: Task, reading: Reading, pid: str, completion: str, measure: _Measure, truncated: bool = False
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "prompt_id": pid,
        "prompt": task.prompt,
        "completion": completion,
        "answer": None if reading.family == "code" else task.reference,
    }
    if task.meta:
        rec["meta"] = task.meta
    if reading.data_source is not None:
        rec["data_source"] = reading.data_source
    rec.update(task.record)
    if truncated:
        rec["truncated"] = True
    if measure.write_tokens:
        rec["num_tokens"] = measure(completion)
    return rec


def _twin_words(reading: Reading, task: Task, answer: str, length: int, measure: _Measure, floor: int) -> int:
    """The fewest reasoning words (at least ``floor``) for which the honest answer is at least ``length`` long."""
    lo, hi = floor, max(floor, 8)
    while measure(honest_completion(reading, task, answer, hi)) < length:
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if measure(honest_completion(reading, task, answer, mid)) >= length:
            hi = mid
        else:
            lo = mid + 1
    return hi


def _group(
    reading: Reading, task: Task, exploit: Exploit, pid: str, composition: str, measure: _Measure
) -> list[dict[str, Any]]:
    """[exploit, honest twin, the twin answered wrong, five honest rollouts of the composition]."""
    base = len(task.reasoning)
    floor = min(8, base)
    twin_words = _twin_words(reading, task, task.reference, measure(exploit.completion), measure, floor)
    right = lambda n: _record(task, reading, pid, honest_completion(reading, task, task.reference, n), measure)  # noqa: E731
    wrong = lambda n: _record(task, reading, pid, honest_completion(reading, task, task.wrong, n), measure)  # noqa: E731
    lengths = (floor, base // 2 or 1, base, 2 * base, 3 * base)
    if composition == "mostly_correct":
        rest = [right(n) for n in lengths]
    elif composition == "mostly_wrong":
        rest = [wrong(n) for n in lengths]
    else:
        o, c = reading.delimiters
        unsure = f"{o}{' '.join(task.reasoning)}{c}\nI am not sure."
        rest = [
            right(floor),
            right(2 * base),
            wrong(base),
            wrong(3 * base),
            _record(task, reading, pid, unsure, measure),
        ]
    return [
        _record(task, reading, pid, exploit.completion, measure, exploit.truncated),
        right(twin_words),
        wrong(twin_words),
        *rest,
    ]


def _fit(reading: Reading, task: Task, measure: _Measure, longest: float) -> Task:
    """A built-in task with its reasoning cut so an honest answer is at most half the longest realistic
    rollout (a spec with a 48-token budget is probed with short answers, not over-budget ones)."""
    k = len(task.reasoning)
    while k > 2 and measure(honest_completion(reading, task, task.reference, k)) > longest / 2:
        k = max(2, k * 2 // 3)
    return replace(task, reasoning=task.reasoning[:k])


def _score(pipe: Pipeline, records: list[dict[str, Any]], stateful: bool) -> tuple[np.ndarray, np.ndarray]:
    pipe.state = State(spec_fingerprint=pipe.spec.fingerprint())
    if stateful:
        pipe.score(records, step=0)  # one batch of history first
    scores = pipe.score(records, step=1 if stateful else 0)
    return scores.total, scores.correct


def _reproduction(rec: dict[str, Any]) -> str:
    keep = {
        k: rec[k]
        for k in ("completion", "answer", "truncated", "num_tokens", "data_source", "meta")
        if rec.get(k) is not None
    }
    return json.dumps({"prompt_id": "probe", **keep}, ensure_ascii=False)


def _data_tasks(
    pipe: Pipeline, reading: Reading, key: str, records: Sequence[dict[str, Any]], report: ProbeReport
) -> list[Task]:
    """Tasks from the user's rollouts: in each group, the first rollout the spec scores correct."""
    mine = [
        r
        for r in records
        if r.get("messages") is None  # trajectories: _probe_trajectories
        and (not pipe.routed or (r.get("data_source") if r.get("data_source") in pipe.verifiers else "default") == key)
    ]
    if not mine:
        return []
    scores = pipe.score(mine)
    verifier = pipe.verifiers[key]
    by_group: dict[str, list[int]] = {}
    for i, rec in enumerate(mine):
        by_group.setdefault(str(rec["prompt_id"]), []).append(i)
    tasks: list[Task] = []
    for pid, rows in by_group.items():
        good = [i for i in rows if scores.correct[i] == 1.0 and scores.status[i] == OK]
        if not good:
            continue
        rec = mine[good[0]]
        completion = completion_text(rec["completion"])
        extracted = verifier.extract(completion)
        if extracted is None:
            continue
        bad = [verifier.extract(mine[i]["completion"]) for i in rows if scores.correct[i] == 0.0]
        wrong = next((b for b in bad if b and b != extracted), None) or perturb(extracted, reading.letters)
        task = task_from_rollout(reading, rec, completion, extracted, wrong)
        if task is None:
            report.notes.append(
                f"rollout group {pid!r}: the extracted answer {extracted!r} is not in the visible text; not mutated"
            )
            continue
        tasks.append(task)
        if len(tasks) >= _DATA_GROUPS:
            break
    if not tasks:
        report.notes.append(
            f"--data: no rollout the spec scores correct{f' for data_source {key!r}' if pipe.routed else ''}; "
            "only built-in tasks used"
        )
    return tasks


def _probe_verifier(
    pipe: Pipeline,
    key: str,
    data: Sequence[dict[str, Any]] | None,
    report: ProbeReport,
    measure: _Measure,
    stateful: bool,
) -> None:
    reading = Reading.from_pipeline(pipe, key)
    if reading.verifier in NOT_PROBED:
        report.notes.append(
            f"verifier {reading.verifier!r}{f' ({key})' if pipe.routed else ''}: no exploit generator yet "
            f"(not probed: {', '.join(NOT_PROBED)}); only the length shaping is checked"
        )
        return
    longest = max_length(pipe.shapers, measure.unit)
    tasks = [_fit(reading, t, measure, longest) for t in builtin_tasks(reading)]
    tasks += _data_tasks(pipe, reading, key, data, report) if data else []
    for t_index, task in enumerate(tasks):
        exploits = generate(reading, task)
        per: dict[str, list[tuple[float, float, float, bool, str]]] = {}
        for composition in COMPOSITIONS:
            records: list[dict[str, Any]] = []
            for e_index, exploit in enumerate(exploits):
                records += _group(reading, task, exploit, f"probe-{key}-{t_index}-{e_index}", composition, measure)
            total, correct = _score(pipe, records, stateful)
            size = len(records) // len(exploits)
            for e_index, exploit in enumerate(exploits):
                row = e_index * size
                ex, twin, wrong_twin = (float(x) for x in total[row : row + 3])
                per.setdefault(exploit.name, []).append(
                    (ex, twin, wrong_twin, bool(correct[row + 1] == 1.0), composition)
                )
        if not all(ok for results in per.values() for *_, ok, _ in results):
            rec = _record(
                task, reading, "probe", honest_completion(reading, task, task.reference, len(task.reasoning)), measure
            )
            report.findings.append(
                Finding(
                    f"{task.name}/honest_answer",
                    "false_negative",
                    float("nan"),
                    float("nan"),
                    _reproduction(rec),
                    True,
                    "the spec does not score the plain honest answer correct",
                )
            )
            report.notes.append(
                f"{task.name}: the honest answer is not scored correct, so its exploits cannot be compared"
            )
            continue
        for exploit in exploits:
            report.findings.append(_finding(pipe, key, reading, task, exploit, per[exploit.name], measure))


def _finding(
    pipe: Pipeline,
    key: str,
    reading: Reading,
    task: Task,
    exploit: Exploit,
    results: list[tuple[float, float, float, bool, str]],
    measure: _Measure,
) -> Finding:
    """The worst composition for this exploit, judged on the margin m between the honest twin and the
    same answer given wrong: an exploit is found when it scores at least twin − TIE·m (it ties or
    beats; TIE absorbs what shaping alone moves, e.g. a repetition penalty on its extra words), an
    honest variant when it scores below twin − TIE·m. Compositions where m ≤ 0 (the shaping alone
    decides; see length_gaming) do not count."""
    name = f"{key}:{task.name}/{exploit.name}" if pipe.routed else f"{task.name}/{exploit.name}"
    rec = _record(task, reading, "probe", exploit.completion, measure, exploit.truncated)
    telling = [
        (ex, twin, (ex - twin) / (twin - wrong), setting)
        for ex, twin, wrong, _, setting in results
        if twin > wrong + _EPS
    ]
    if not telling:
        ex, twin, *_ = results[0]
        return Finding(
            name,
            exploit.cls,
            ex,
            twin,
            _reproduction(rec),
            False,
            "not comparable: the honest answer does not beat a wrong one here",
        )
    if exploit.honest_variant:  # must not score materially below the plain honest answer
        ex, twin, rel, setting = min(telling, key=lambda r: r[2])
        return Finding(name, exploit.cls, ex, twin, _reproduction(rec), rel < -TIE, setting)
    ex, twin, rel, setting = max(telling, key=lambda r: r[2])
    return Finding(name, exploit.cls, ex, twin, _reproduction(rec), rel >= -TIE, setting)


def _probe_trajectories(pipe: Pipeline, data: Sequence[dict[str, Any]], report: ProbeReport, stateful: bool) -> None:
    """Trajectory exploits (:mod:`rewardsmith.probe.trajectories`) from the user's trajectories, each
    scored in a group with its honest trajectory, that trajectory unsure, and the rest of its group."""
    trajectories = [r for r in data if r.get("messages") is not None]
    if not trajectories:
        return
    total, correct = _score(pipe, trajectories, stateful)
    for g, (honest, rest) in enumerate(honest_trajectories(trajectories, total, correct, _DATA_GROUPS)):
        exploits = trajectory_exploits(honest)
        records: list[dict[str, Any]] = []
        for e_index, exploit in enumerate(exploits):
            group = [exploit.record, honest, unsure_twin(honest), *rest]
            records += [{**copy.deepcopy(r), "prompt_id": f"probe-trajectory-{g}-{e_index}"} for r in group]
        try:
            scored, _ = _score(pipe, records, stateful)
        except SCORING_ERRORS as exc:
            report.notes.append(f"trajectory group {honest['prompt_id']!r}: its exploits could not be scored: {exc}")
            continue
        size = len(records) // len(exploits)
        for e_index, exploit in enumerate(exploits):
            ex, twin, unsure = (float(x) for x in scored[e_index * size : e_index * size + 3])
            name = f"{honest['prompt_id']}/{exploit.name}"
            repro = trajectory_reproduction(exploit.record)
            if not twin > unsure + _EPS:
                setting = "not comparable: the honest trajectory does not beat an unsure one here"
                report.findings.append(Finding(name, exploit.cls, ex, twin, repro, False, setting))
                continue
            found = (ex - twin) / (twin - unsure) >= -TIE
            report.findings.append(Finding(name, exploit.cls, ex, twin, repro, found, "the user's group"))


def probe(
    spec: str | os.PathLike | dict[str, Any] | Spec, data: Sequence[dict[str, Any]] | None = None, workers: int = 2
) -> ProbeReport:
    """Build exploits from ``spec`` (and mutations of ``data``, the user's rollout records), score
    them inside GRPO groups beside honest answers, and check the length shaping on its own.

    The spec's ``state`` file is never read or written; ``workers`` verification processes are
    started once and shared by every batch.
    """
    t0 = time.perf_counter()
    parsed = parse_spec(spec)
    report = ProbeReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RewardWarning)  # the load-time warning is reported below as findings
        pipe = load_spec(parsed, state=None, workers=max(1, min(workers, parsed.workers or workers)))
    with pipe:
        measure = _Measure(pipe)
        stateful = any(getattr(s, "stateful", False) for _, s in pipe.shapers)
        if not pipe.verifiers:
            report.notes.append("the spec has no verifier: a label-free reward has no wrong answer to probe with")
        for key in pipe.verifiers:
            _probe_verifier(pipe, key, data, report, measure, stateful)
        if data:
            _probe_trajectories(pipe, data, report, stateful)
        longest = float(np.max(Batch.from_records(data).lengths(measure.unit, pipe.tokenizer)[0])) if data else None
        unit = measure.unit
        for d in wrong_beats_correct(pipe.base_values, pipe.shapers, unit, longest) if pipe.verifiers else []:
            what = f"{d.wrong_kind} at {d.wrong_length:g} {unit} vs correct at {d.correct_length:g} {unit}"
            repro = json.dumps(
                {
                    "group": d.composition,
                    "unit": unit,
                    "wrong": {"kind": d.wrong_kind, "length": d.wrong_length},
                    "correct": {"length": d.correct_length},
                    "history": d.history,
                }
            )
            report.findings.append(
                Finding(
                    what,
                    "length_gaming",
                    d.wrong_reward,
                    d.correct_reward,
                    repro,
                    True,
                    d.composition + (", after history" if d.history else ""),
                )
            )
        if pipe.verifiers:
            report.sweeps = option_headroom(pipe.base_values, pipe.shapers, unit, longest)
    report.seconds = time.perf_counter() - t0
    return report
