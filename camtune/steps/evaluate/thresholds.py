"""Frigate threshold advice: `min_score` (the per-detection floor) and `threshold` (the median
score that makes a tracked object a true positive) per label.

A tuned model's scores are its own, so Frigate's defaults (0.5 / 0.7) may not fit it. For each
label we take the lowest score at which precision still reaches a target (`evaluate.thresholds`):
the most recall for the precision asked. Attribute labels (face, license_plate, logos) get only
`min_score`: Frigate ignores `threshold` for them.

`recommend_frigate` (what evaluate uses) reads precision off the Frigate path
(`camtune.metrics.frigate_path`: square regions, the detector's 0.4 floor, the cross-region
merge), never below 0.4. `threshold` and Frigate's median-of-the-last-10-scores rule: a tracked
object that stays in view gets a score on every frame, similar frame to frame, so the median of a
steady object is about its single-frame score; the advice reads `threshold` off the same
per-detection scores at a stricter precision target. A frame in which the object is missed adds a
score of 0, so an object found in fewer than 6 of its last 10 frames never confirms whatever the
threshold: per-frame recall at `min_score` is the upper bound of confirmed objects.
`recommend` (COCO PR curves on whole frames) is kept for comparison.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Sequence

from camtune.core.config import ThresholdParams


@dataclass(frozen=True)
class Advice:
    label: str
    attribute: bool
    min_score: float
    threshold: float | None  # None for attribute labels
    source: str              # "user holdout" | "global eval" | "fallback"
    boxes: int               # ground-truth boxes behind the curve used
    note: str

    def as_dict(self) -> dict:
        return asdict(self)


def score_at_precision(curve: dict, target: float) -> float | None:
    """Lowest score whose interpolated precision is >= target (COCOeval's curve: precision is
    non-increasing in recall, so this is the highest-recall point meeting the target). None when
    no point of the curve reaches the target."""
    best = None
    for p, s in zip(curve.get("precision", []), curve.get("scores", [])):
        if p >= target and s > 0:
            best = s if best is None else min(best, s)
    return best


def _clip(v: float, lo_hi: Sequence[float]) -> float:
    lo, hi = lo_hi
    return round(min(max(v, lo), hi), 2)


def _read_off(curve, lowest_at, params: ThresholdParams, min_range: Sequence[float], is_attr: bool,
              path: str = "") -> tuple[float, float | None, list[str]]:
    """(min_score, threshold, notes) read off one label's curve: `lowest_at(curve, target)` is the
    lowest score reaching a precision target; an unreached target takes the strictest allowed value.
    Attribute labels get no threshold (Frigate ignores it for them)."""
    notes = []
    ms = lowest_at(curve, params.min_score_precision)
    if ms is None:  # the model never gets that precise on this label: be as strict as allowed
        notes.append(f"{path}precision {params.min_score_precision} not reached")
        ms = min_range[1]
    min_score = _clip(ms, min_range)
    threshold = None
    if not is_attr:
        th = lowest_at(curve, params.threshold_precision)
        if th is None:
            notes.append(f"{path}precision {params.threshold_precision} not reached")
            th = params.threshold_range[1]
        # a tracked object's median score must not be allowed below the per-frame floor
        threshold = max(_clip(th, params.threshold_range), min_score)
    return min_score, threshold, notes


def _pick(label: str, sets: list[tuple[str, dict]], min_boxes: int) -> tuple[str, dict | None, int]:
    """The first evaluation set with enough boxes of the label (the user's own cameras first)."""
    best_boxes = 0
    for name, metrics in sets:
        boxes = int(metrics.get("per_class", {}).get(label, {}).get("gt", 0))
        best_boxes = max(best_boxes, boxes)
        curve = metrics.get("pr", {}).get(label)
        if boxes >= min_boxes and curve:
            return name, curve, boxes
    return "fallback", None, best_boxes


def recommend(label_names: Sequence[str], attribute_labels: Sequence[str], sets: list[tuple[str, dict]],
              params: ThresholdParams) -> list[Advice]:
    """One Advice per label. `sets` = [(name, evaluate_detections result of the tuned model)],
    most relevant first (the user's holdout, then the global set)."""
    out = []
    attrs = set(attribute_labels)
    for label in label_names:
        source, curve, boxes = _pick(label, sets, params.min_boxes)
        is_attr = label in attrs
        if curve is None:
            out.append(Advice(label, is_attr, params.fallback_min_score,
                              None if is_attr else params.fallback_threshold, source, boxes,
                              f"only {boxes} boxes (< {params.min_boxes}): Frigate defaults"))
            continue
        min_score, threshold, notes = _read_off(curve, score_at_precision, params, params.min_score_range, is_attr)
        notes.append(f"{boxes} boxes")
        out.append(Advice(label, is_attr, min_score, threshold, source, boxes, ", ".join(notes)))
    return out


def _lowest_at_precision(curve: list[dict], target: float) -> float | None:
    ok = [c["score"] for c in curve if c["precision"] is not None and c["precision"] >= target]
    return min(ok) if ok else None


def recommend_frigate(label_names: Sequence[str], attribute_labels: Sequence[str],
                      sets: list[tuple[str, list]], params: ThresholdParams) -> list[Advice]:
    """One Advice per label from Frigate-path runs of the tuned model (`sets` = [(name,
    [frigate_path.ImageRun])], the user's holdout first). Never below Frigate's 0.4 floor."""
    from camtune.metrics.frigate_path import label_curve
    from camtune.model.regions import DETECTOR_FLOOR

    floor = (max(DETECTOR_FLOOR, params.min_score_range[0]), params.min_score_range[1])
    out = []
    attrs = set(attribute_labels)
    for label in label_names:
        is_attr = label in attrs
        source, runs, boxes = "fallback", None, 0
        for name, rs in sets:
            n = sum(1 for r in rs for l, _ in r.gt if l == label)
            boxes = max(boxes, n)
            if n >= params.min_boxes:
                source, runs, boxes = name, rs, n
                break
        if runs is None:
            out.append(Advice(label, is_attr, max(DETECTOR_FLOOR, params.fallback_min_score),
                              None if is_attr else params.fallback_threshold, source, boxes,
                              f"only {boxes} boxes (< {params.min_boxes}): Frigate defaults"))
            continue
        curve = label_curve(runs, label)
        min_score, threshold, notes = _read_off(curve, _lowest_at_precision, params, floor, is_attr,
                                                path="Frigate-path ")
        at = next(c for c in curve if c["score"] >= min_score - 1e-9)
        if at["recall"] is not None:
            notes.append(f"recall {at['recall']:.2f} at min_score")
        notes.append(f"{boxes} boxes")
        out.append(Advice(label, is_attr, min_score, threshold, source, boxes, ", ".join(notes)))
    return out


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _key(name: str) -> str:
    return name if _PLAIN.fullmatch(name) else json.dumps(name)  # JSON strings are valid YAML


def frigate_yaml(advice: list[Advice], header: Sequence[str] = ()) -> str:
    """Frigate's `objects:` block, shaped like the Frigate+ docs' example: `track:` lists every
    label (attribute labels included, or Frigate never reports them), `filters:` per label."""
    lines = [f"# {h}" for h in header]
    lines += ["objects:", "  track:"]
    lines += [f"    - {_key(a.label)}" for a in advice]
    lines.append("  filters:")
    for a in advice:
        lines.append(f"    {_key(a.label)}:  # {a.source}: {a.note}")
        lines.append(f"      min_score: {a.min_score:.2f}")
        if a.threshold is not None:
            lines.append(f"      threshold: {a.threshold:.2f}")
    return "\n".join(lines) + "\n"
