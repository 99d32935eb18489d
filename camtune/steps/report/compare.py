"""Per image: which ground-truth boxes each model found, missed, and what it detected falsely, at
the score Frigate would use (the advised `min_score` per label); and which images show the
biggest difference between base and tuned.

The matching is the usual one (COCOeval's at a single IoU): detections by descending score, each
takes the unmatched ground-truth box of its label with the highest IoU >= `iou`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from camtune.core import boxes


@dataclass
class Outcome:
    """One model on one image. Lists hold indices into the image's gt / the kept detections."""
    detections: list[dict]                       # kept (score >= min_score), by descending score
    matched: dict[int, int] = field(default_factory=dict)   # detection index -> gt index
    false: list[int] = field(default_factory=list)          # detection indices
    missed: list[int] = field(default_factory=list)         # gt indices

    @property
    def found(self) -> int:
        return len(self.matched)

    @property
    def errors(self) -> int:
        return len(self.false) + len(self.missed)


def match(gt: Sequence[dict], dets: Iterable[dict], min_score: dict[str, float], iou_thr: float) -> Outcome:
    """`gt`: [{label, bbox}], `dets`: [{label, bbox, score}] (bbox xywh px)."""
    # equal scores: by label, then box, so the pairing never depends on the detections file's order
    kept = sorted((d for d in dets if d["score"] >= min_score.get(d["label"], 0.5)),
                  key=lambda d: (-d["score"], d["label"], tuple(d["bbox"])))
    # COCO's xywh as corners: for fractional boxes an IoU may differ in its last bit from the former
    # xywh formula (w*h areas); that could change a pairing only at an exact tie
    ious = boxes.iou_matrix([boxes.xywh_to_xyxy(d["bbox"]) for d in kept],
                            [boxes.xywh_to_xyxy(g["bbox"]) for g in gt])
    matched = boxes.greedy_match(ious, [d["score"] for d in kept], iou_thr,
                                 [d["label"] for d in kept], [g["label"] for g in gt])
    taken = set(matched.values())
    return Outcome(detections=kept, matched=matched, false=[di for di in range(len(kept)) if di not in matched],
                   missed=[gi for gi in range(len(gt)) if gi not in taken])


def difference(base: Outcome, tuned: Outcome) -> int:
    """How differently the two models did: ground-truth boxes one found and the other missed,
    plus the difference in false detections."""
    found_b, found_t = set(base.matched.values()), set(tuned.matched.values())
    return len(found_b ^ found_t) + abs(len(base.false) - len(tuned.false))


def pick(rows: Sequence[dict], n: int) -> list[dict]:
    """The n rows (each with "diff", "errors", "image_id") where the models differ most; ties by
    more errors (something worth looking at), then image id (deterministic)."""
    return sorted(rows, key=lambda r: (-r["diff"], -r["errors"], r["image_id"]))[:n]


def describe(o: Outcome, n_gt: int) -> str:
    parts = [f"found {o.found} of {n_gt}"]
    if o.missed:
        parts.append(f"missed {len(o.missed)}")
    parts.append(f"{len(o.false)} false detection{'s' if len(o.false) != 1 else ''}")
    return ", ".join(parts)
