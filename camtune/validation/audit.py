"""Every object labeled? A reference model (a Frigate-contract TFLite file, e.g. the user's last
published model) is run over the verified images; a confident detection that no annotation of
the same label overlaps is a possibly unlabeled object, reported with its image id and box.

Without a reference model this check is SKIPPED (never "passed"): nothing was audited.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from camtune.model.images import load_rgb
from camtune.validation.findings import Finding


@dataclass(frozen=True)
class AuditRules:
    label_names: tuple[str, ...]          # Frigate label index i -> label_names[i]
    score_threshold: float = 0.6
    iou_threshold: float = 0.3
    policy: str = "warn"                  # warn | fail


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a [N,4] with every box in b [M,4] (ymin, xmin, ymax, xmax)."""
    a, b = a[:, None, :], b[None, :, :]
    ih = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    iw = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = ih * iw
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def unlabeled(detection: dict, annotations: pd.DataFrame, width: float, height: float,
              rules: AuditRules) -> list[tuple[str, float, np.ndarray, float]]:
    """(label, score, box ymin,xmin,ymax,xmax normalized, best IoU) of each confident detection
    that matches no annotation of its label in this image."""
    scores = np.asarray(detection["scores"], dtype=np.float64)
    keep = scores > rules.score_threshold
    if not keep.any():
        return []
    boxes = np.asarray(detection["boxes"], dtype=np.float64).reshape(-1, 4)[keep]
    classes = np.asarray(detection["classes"], dtype=np.int64)[keep]
    scores = scores[keep]
    names = np.array([rules.label_names[c] if 0 <= c < len(rules.label_names) else f"class {c}"
                      for c in classes], dtype=object)
    ann = annotations[["x", "y", "w", "h", "label"]].dropna(subset=["x", "y", "w", "h"])
    gt = np.stack([ann["y"] / height, ann["x"] / width,
                   (ann["y"] + ann["h"]) / height, (ann["x"] + ann["w"]) / width], axis=1) \
        if len(ann) else np.zeros((0, 4))
    iou = iou_matrix(boxes, gt.astype(np.float64))
    same = names[:, None] == ann["label"].to_numpy(dtype=object)[None, :]
    best = np.where(same, iou, 0.0).max(axis=1) if len(ann) else np.zeros(len(boxes))
    miss = best < rules.iou_threshold
    return [(names[i], float(scores[i]), boxes[i], float(best[i])) for i in np.flatnonzero(miss)]


def run_audit(root: str | Path, images: pd.DataFrame, anns: pd.DataFrame, model_path: str | Path,
              rules: AuditRules, detector=None) -> tuple[list[Finding], dict]:
    """Audit `images` (already filtered to verified, decodable ones). `detector` defaults to the
    Frigate-contract runner `camtune.model.tflite.TFLiteDetector` (Frigate's Interpreter loop)."""
    root = Path(root)
    if detector is None:
        from camtune.model.tflite import TFLiteDetector

        detector = TFLiteDetector(model_path, label_names=list(rules.label_names))
    severity = "error" if rules.policy == "fail" else "warning"
    by_image = dict(tuple(anns.groupby("image_id"))) if len(anns) else {}
    empty = anns.iloc[0:0]
    findings, detections = [], 0
    for r in images.itertuples(index=False):
        pred = detector.predict([load_rgb(root / r.file_name)])[0]
        detections += int((np.asarray(pred["scores"]) > rules.score_threshold).sum())
        for label, score, box, best in unlabeled(pred, by_image.get(r.id, empty), r.width, r.height, rules):
            ymin, xmin, ymax, xmax = box
            px = [xmin * r.width, ymin * r.height, (xmax - xmin) * r.width, (ymax - ymin) * r.height]
            findings.append(Finding(
                severity, "UNLABELED_OBJECT",
                f"the reference model sees a {label} (score {score:.2f}) at bbox "
                f"[{', '.join(f'{v:.0f}' for v in px)}] that no {label} annotation covers "
                f"(best IoU {best:.2f} < {rules.iou_threshold:g}); label it or confirm it is not one",
                image_id=r.id, file=r.file_name))
    return findings, {"images_audited": int(len(images)), "detections_above_threshold": detections,
                      "model": str(model_path)}
