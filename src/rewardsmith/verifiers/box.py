"""``box``: GUI-G1's grounding reward, hit + IoU + box-size constraint.

GUI-G1 (Zhou et al., 2025, §4.2 and the official ``grpo_rec.py``), with predicted box
p = [x1, y1, x2, y2] and gold box g in pixels of a W×H image:

- hit = 1 when the centre of p lies in g (edges included), else 0;
- IoU reward = 0.25·IoU(p, g);
- box-size constraint = 0.125·HM(1 − |p_x1 − g_x1|/W, 1 − |p_y1 − g_y1|/H,
  1 − |p_x2 − g_x2|/W, 1 − |p_y2 − g_y2|/H), HM the harmonic mean (each term clipped to
  [0, 1]; HM = 0 when a term is 0, where the official code fails and gives 0).

R = hit_weight·hit + iou_weight·IoU + size_weight·HM (defaults 1, 0.25, 0.125: the official
reward functions, summed as TRL does). A :class:`Verdict` score must lie in [0, 1], so
``score = R / (hit_weight + iou_weight + size_weight)``; the raw terms are in ``detail``.
``base: {correct: 1.375, wrong: 0}`` in a spec gives back the raw R. ``correct`` is true
only for a box equal to the gold one. IoU is the continuous one (areas of real-valued
boxes); for integer boxes it equals the official pixel-inclusive count except when the
overlap is a single pixel wide. A predicted box with x2 < x1 or y2 < y1 scores 0.

The predicted box is the first four-number list (``[x1, y1, x2, y2]`` or ``(…)``) after a
``"bbox_2d"`` key, else the first such list, looked for inside ``<answer>…</answer>`` when
present, else in the whole completion. The gold box is ``meta.box`` (or ``meta.bbox``) or the
record's ``answer``; the image size is ``meta.width``/``meta.height`` or
``meta.image_size = [W, H]`` (needed only when ``size_weight > 0``).

    >>> from rewardsmith.verifiers.box import BoxVerifier
    >>> v = BoxVerifier()
    >>> verdict = v.check(v.job('[{"bbox_2d": [5, 5, 15, 15]}]', "[0, 0, 10, 10]", {"width": 100, "height": 100}))
    >>> verdict.detail
    'gui_g1_reward=1.15446 (hit 1, iou 0.142857, size 0.95)'
    >>> round(verdict.score, 6)  # 1.15446 / 1.375
    0.83961
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, model_validator

from ..registry import Options, register
from .base import BAD_REFERENCE, NO_ANSWER, OK, Job, Verdict, Verifier

_NUM = r"\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*"
_QUAD = re.compile(r"[\[(]" + ",".join([_NUM] * 4) + r"[\])]")
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)

Box = tuple[float, float, float, float]


def find_box(text: str) -> Box | None:
    """The first ``[x1, y1, x2, y2]`` after a ``bbox_2d`` key, else the first one at all."""
    key = text.find("bbox_2d")
    m = _QUAD.search(text, key) if key >= 0 else None
    m = m or _QUAD.search(text)
    return None if m is None else tuple(float(g) for g in m.groups())  # type: ignore[return-value]


def as_box(value: Any) -> Box | None:
    """A gold box given as a list of four numbers or as text."""
    if isinstance(value, str):
        return find_box(value)
    if isinstance(value, (list, tuple)) and len(value) == 4 and all(isinstance(v, (int, float)) for v in value):
        return tuple(float(v) for v in value)  # type: ignore[return-value]
    return None


def well_formed(box: Sequence[float]) -> bool:
    return box[2] >= box[0] and box[3] >= box[1]


def centre_hit(pred: Box, gold: Box) -> float:
    """1.0 when the centre of ``pred`` lies inside ``gold`` (edges included)."""
    cx, cy = (pred[0] + pred[2]) / 2, (pred[1] + pred[3]) / 2
    return 1.0 if gold[0] <= cx <= gold[2] and gold[1] <= cy <= gold[3] else 0.0


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two axis-aligned boxes (0 when the union is empty)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_size_constraint(pred: Box, gold: Box, width: float, height: float) -> float:
    """GUI-G1's harmonic mean of the four edge agreements 1 − |Δedge|/W (or H), each in [0, 1]."""
    scale = (width, height, width, height)
    terms = [min(1.0, max(0.0, 1.0 - abs(p - g) / s)) for p, g, s in zip(pred, gold, scale)]
    if min(terms) <= 0.0:
        return 0.0
    return len(terms) / sum(1.0 / t for t in terms)


def image_size(meta: dict[str, Any]) -> tuple[float, float] | None:
    size = meta.get("image_size")
    w, h = (
        (size[0], size[1])
        if isinstance(size, (list, tuple)) and len(size) == 2
        else (meta.get("width"), meta.get("height"))
    )
    if isinstance(w, (int, float)) and isinstance(h, (int, float)) and w > 0 and h > 0:
        return float(w), float(h)
    return None


class BoxOptions(Options):
    hit_weight: float = Field(default=1.0, ge=0.0, description="weight of the centre-hit term (GUI-G1: 1)")
    iou_weight: float = Field(default=0.25, ge=0.0, description="weight of IoU (GUI-G1: 0.25)")
    size_weight: float = Field(
        default=0.125, ge=0.0, description="weight of the box-size constraint (GUI-G1: 0.125); needs the image size"
    )

    @model_validator(mode="after")
    def _some_weight(self) -> BoxOptions:
        if self.hit_weight + self.iou_weight + self.size_weight <= 0:
            raise ValueError("at least one of hit_weight, iou_weight, size_weight must be > 0")
        return self


@register(
    "verifier",
    "box",
    "GUI-G1 grounding reward: centre hit + 0.25·IoU + 0.125·box-size constraint, normalised to [0, 1].",
    "GUI-G1 (Zhou et al., 2025)",
)
class BoxVerifier(Verifier):
    Options = BoxOptions
    isolate = False  # one linear regex scan and arithmetic

    def extract(self, completion: str) -> str | None:
        inner = _ANSWER.findall(completion)
        box = find_box(inner[-1]) if inner else None
        box = box or find_box(completion)
        return None if box is None else "[" + ", ".join(f"{v:g}" for v in box) + "]"

    def job(self, completion: str, reference: str | None, meta: dict[str, Any]) -> Job | None:
        gold = meta.get("box", meta.get("bbox", reference))
        gold_box = as_box(gold)
        size = image_size(meta)
        payload = {
            "gold": None if gold_box is None else list(gold_box),
            "size": None if size is None else list(size),
            "given": gold is not None,
        }
        return Job(self.extract(completion) or "", None if gold is None else str(gold), payload)

    def check(self, job: Job) -> Verdict:
        o = self.options
        meta = job.meta or {}
        if meta.get("gold") is None:
            why = "gold box not readable" if meta.get("given") else "no gold box (meta.box or answer)"
            return Verdict(float("nan"), BAD_REFERENCE, f"{why}: {job.reference!r}"[:200])
        gold: Box = tuple(meta["gold"])  # type: ignore[assignment]
        if not well_formed(gold) or (gold[2] - gold[0]) * (gold[3] - gold[1]) <= 0:
            return Verdict(float("nan"), BAD_REFERENCE, f"gold box has no area: {list(gold)}")
        if o.size_weight > 0 and meta.get("size") is None:
            return Verdict(
                float("nan"),
                BAD_REFERENCE,
                "the box-size term needs meta.width/height or meta.image_size (or set size_weight: 0)",
            )
        pred = find_box(job.prediction)
        if pred is None:
            return Verdict(0.0, NO_ANSWER, "no [x1, y1, x2, y2] box found")
        if not well_formed(pred):
            return Verdict(0.0, OK, f"gui_g1_reward=0 (malformed box {list(pred)}: x2 < x1 or y2 < y1)")
        hit, iou = centre_hit(pred, gold), box_iou(pred, gold)
        size = box_size_constraint(pred, gold, *meta["size"]) if o.size_weight > 0 else 0.0
        reward = o.hit_weight * hit + o.iou_weight * iou + o.size_weight * size
        score = min(1.0, reward / (o.hit_weight + o.iou_weight + o.size_weight))
        if pred == gold:
            score = 1.0  # exact box: all terms at their maximum; no rounding below 1
        return Verdict(score, OK, f"gui_g1_reward={reward:.6g} (hit {hit:g}, iou {iou:.6g}, size {size:.6g})")
