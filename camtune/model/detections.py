"""Detections against annotations, shared by validate's every-object-labeled audit and the ingest
suggestions: the one model loop over a dataset's images (`predictions`), and which
confident detections no annotation of their label covers (`unlabeled`)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from camtune.core.boxes import iou_matrix
from camtune.core.dataset import UnsafePath, safe_image_path
from camtune.model.images import ImageRefused, Limits, load_rgb


def predictions(root: Path, images: pd.DataFrame, detector, limits: Limits | None = None,
                skipped: list[dict] | None = None):
    """(image row, detection) for each image row (id, file_name, width, height, ...), in order;
    each file through the checked path resolver and the checked decoder. A file they refuse
    raises, or, given a `skipped` list, is recorded there ({image_id, file, reason}) and passed."""
    root = Path(root)
    for r in images.itertuples(index=False):
        try:
            image = load_rgb(safe_image_path(root, r.file_name), limits)
        except (ImageRefused, UnsafePath) as exc:
            if skipped is None:
                raise
            skipped.append({"image_id": int(r.id), "file": str(r.file_name), "reason": str(exc)})
            continue
        yield r, detector.predict([image])[0]


def unlabeled(detection: dict, annotations: pd.DataFrame, width: float, height: float,
              label_names: Sequence[str], a) -> list[tuple[str, float, np.ndarray, float]]:
    """(label, score, box ymin,xmin,ymax,xmax normalized, best IoU) of each confident detection
    that matches no annotation of its label in this image. Frigate label index i = label_names[i];
    `a` has score_threshold and iou_threshold (params' `validate.audit`, or ingest's suggest rules)."""
    scores = np.asarray(detection["scores"], dtype=np.float64)
    keep = scores > a.score_threshold
    if not keep.any():
        return []
    boxes = np.asarray(detection["boxes"], dtype=np.float64).reshape(-1, 4)[keep]
    classes = np.asarray(detection["classes"], dtype=np.int64)[keep]
    scores = scores[keep]
    names = np.array([label_names[c] if 0 <= c < len(label_names) else f"class {c}"
                      for c in classes], dtype=object)
    ann = annotations[["x", "y", "w", "h", "label"]].dropna(subset=["x", "y", "w", "h"])
    gt = np.stack([ann["y"] / height, ann["x"] / width,
                   (ann["y"] + ann["h"]) / height, (ann["x"] + ann["w"]) / width], axis=1) \
        if len(ann) else np.zeros((0, 4))
    iou = iou_matrix(boxes, gt.astype(np.float64))
    same = names[:, None] == ann["label"].to_numpy(dtype=object)[None, :]
    best = np.where(same, iou, 0.0).max(axis=1) if len(ann) else np.zeros(len(boxes))
    miss = best < a.iou_threshold
    return [(names[i], float(scores[i]), boxes[i], float(best[i])) for i in np.flatnonzero(miss)]
