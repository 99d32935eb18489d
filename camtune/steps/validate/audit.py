"""Every object labeled? A reference model (a Frigate-contract TFLite file, e.g. the user's last
published model) is run over the verified images; a confident detection that no annotation of
the same label overlaps is a possibly unlabeled object, reported with its image id and box.

Without a reference model this check is SKIPPED (never "passed"): nothing was audited.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from camtune.core.config import AuditParams
from camtune.model.detections import predictions, unlabeled
from camtune.steps.validate.findings import Finding


def run_audit(root: str | Path, images: pd.DataFrame, anns: pd.DataFrame, model_path: str | Path,
              label_names: Sequence[str], a: AuditParams, detector=None) -> tuple[list[Finding], dict]:
    """Audit `images` (already filtered to verified, decodable ones). `detector` defaults to the
    Frigate-contract runner `camtune.model.tflite.TFLiteDetector` (Frigate's Interpreter loop)."""
    root = Path(root)
    if detector is None:
        from camtune.model.tflite import TFLiteDetector

        detector = TFLiteDetector(model_path, label_names=list(label_names))
    severity = "error" if a.policy == "fail" else "warning"
    by_image = dict(tuple(anns.groupby("image_id"))) if len(anns) else {}
    empty = anns.iloc[0:0]
    findings, detections = [], 0
    for r, pred in predictions(root, images, detector):
        detections += int((np.asarray(pred["scores"]) > a.score_threshold).sum())
        for label, score, box, best in unlabeled(pred, by_image.get(r.id, empty), r.width, r.height,
                                                 label_names, a):
            ymin, xmin, ymax, xmax = box
            px = [xmin * r.width, ymin * r.height, (xmax - xmin) * r.width, (ymax - ymin) * r.height]
            findings.append(Finding(
                severity, "UNLABELED_OBJECT",
                f"the reference model sees a {label} (score {score:.2f}) at bbox "
                f"[{', '.join(f'{v:.0f}' for v in px)}] that no {label} annotation covers "
                f"(best IoU {best:.2f} < {a.iou_threshold:g}); label it or confirm it is not one",
                image_id=r.id, file=r.file_name,
                # the box in whole pixels, as the message gives it (the report draws it)
                data={"label": str(label), "score": round(float(score), 4),
                      "bbox": [int(round(float(v))) for v in px], "best_iou": round(float(best), 4),
                      "iou_threshold": float(a.iou_threshold)}))
    return findings, {"images_audited": int(len(images)), "detections_above_threshold": detections,
                      "model": str(model_path)}
