"""Box geometry, in one place (like Model Garden's ops/box_ops.py): conversions, IoU and the one
greedy matcher that every scoring of detections against ground truth uses.

One convention: corners (x0, y0, x1, y1). COCO's (x, y, w, h) converts with `xywh_to_xyxy`. The
TF detection API's normalized (ymin, xmin, ymax, xmax) needs no conversion: IoU is the same when
both axes swap (the same products, in the same floating-point steps).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def xywh_to_xyxy(b: Sequence[float]) -> tuple[float, float, float, float]:
    x, y, w, h = b
    return x, y, x + w, y + h


def xyxy_to_xywh(b: Sequence[float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = b
    return x0, y0, x1 - x0, y1 - y0


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two boxes; 0 when the union is empty."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a [N,4] with every box in b [M,4]: [N,M], element for element what
    `iou` gives (the same operations in the same order)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)[:, None, :]
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)[None, :, :]
    ix = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iy = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ix * iy
    union = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) \
        - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def greedy_match(ious, scores: Sequence[float], threshold: float,
                 det_labels: Sequence | None = None, gt_labels: Sequence | None = None) -> dict[int, int]:
    """{detection index: ground-truth index} of the greedy matching (COCOeval's, at one IoU).

    Detections go by descending score (a stable sort: equal scores keep the caller's order, so a
    caller sets its own tie-break by the order it passes them in). Each takes the ground-truth box
    not taken by an earlier detection, of its label when labels are given, with the highest IoU
    >= `threshold`; on equal IoU the later ground-truth box wins. `ious` is [detections, ground
    truth]: `iou_matrix`'s array, or nested lists of `iou` values.
    """
    # a few boxes per image: plain floats loop faster than numpy calls
    rows = ious.tolist() if isinstance(ious, np.ndarray) else ious
    if len(rows) != len(scores) or (isinstance(ious, np.ndarray) and ious.ndim != 2):
        raise ValueError(f"ious must be [detections, ground truth]; got {np.shape(ious)} for {len(scores)} scores")
    by_label = det_labels is not None and gt_labels is not None
    taken: set[int] = set()
    matched: dict[int, int] = {}
    for di in sorted(range(len(scores)), key=lambda i: -scores[i]):
        best, best_iou = None, threshold
        for gi, v in enumerate(rows[di]):
            if gi in taken or (by_label and gt_labels[gi] != det_labels[di]):
                continue
            if v >= best_iou:
                best, best_iou = gi, v
        if best is not None:
            taken.add(best)
            matched[di] = best
    return matched


__all__ = ["greedy_match", "iou", "iou_matrix", "xywh_to_xyxy", "xyxy_to_xywh"]
