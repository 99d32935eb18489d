"""COCO detection metrics with pycocotools: ground truth from a `Dataset`, detections from any
detector with the shared interface (`camtune.model.checkpoint` or `camtune.model.tflite`).

Every number comes out of `COCOeval` (never re-derived here): mAP@[.5:.95], mAP@.5, per-class AP,
the same per camera / per condition slice (COCOeval re-run on that image subset), and the
per-class precision/recall/score curves at IoU .5 that threshold advice is read from.
"""
from __future__ import annotations

import contextlib
import copy
import io
from typing import Iterable, Sequence

import numpy as np

from camtune.core.dataset import Dataset, to_coco
from camtune.core.errors import StepFailed

# COCOeval's default parameters: iouThrs .50:.05:.95 (index 0 = .5), areaRng "all" = index 0,
# maxDets [1, 10, 100] (last = 100, what mAP is reported at).
_IOU50, _AREA_ALL, _MAXDET = 0, 0, -1
SLICE_FIELDS = ("camera", "condition")


@contextlib.contextmanager
def _quiet():
    """pycocotools prints progress on stdout; a pipeline step's stdout is not the place."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _num(v) -> float | None:
    """COCOeval uses -1 for 'no ground truth for this'; report that as null, never as 0."""
    v = float(v)
    return None if v < 0 else v


def ground_truth(ds: Dataset, label_names: Sequence[str]):
    """The COCO ground-truth object; model class id k (1..K) = label_names[k-1]."""
    from pycocotools.coco import COCO

    coco = to_coco(ds, label_names=list(label_names))
    gt = COCO()
    gt.dataset = coco
    with _quiet():
        gt.createIndex()
    return gt


def detections_to_coco(ds: Dataset, detections: dict[int, dict]) -> list[dict]:
    """Detector output (normalized ymin,xmin,ymax,xmax; 0-based class) -> COCO results
    (xywh in pixels of the original image, category_id = class + 1)."""
    sizes = {int(r.id): (float(r.width), float(r.height)) for r in ds.images.itertuples()}
    out: list[dict] = []
    for image_id, det in detections.items():
        image_id = int(image_id)
        if image_id not in sizes:
            raise StepFailed(f"detections name image id {image_id}, which is not in the evaluation set "
                             f"({ds.annotations_path})")
        w, h = sizes[image_id]
        boxes = np.asarray(det["boxes"], dtype="float64").reshape(-1, 4)
        classes = np.asarray(det["classes"]).reshape(-1).astype(int)
        scores = np.asarray(det["scores"], dtype="float64").reshape(-1)
        if not (len(boxes) == len(classes) == len(scores)):
            raise StepFailed(f"image {image_id}: detector returned {len(boxes)} boxes, "
                             f"{len(classes)} classes, {len(scores)} scores")
        boxes = np.clip(boxes, 0.0, 1.0)
        for (y0, x0, y1, x1), c, s in zip(boxes, classes, scores):
            bw, bh = (x1 - x0) * w, (y1 - y0) * h
            if bw <= 0 or bh <= 0:
                continue  # degenerate (padding rows of a fixed-size output)
            out.append({"image_id": image_id, "category_id": int(c) + 1,
                        "bbox": [x0 * w, y0 * h, bw, bh], "score": float(s)})
    return out


def _results(gt, results: list[dict]):
    from pycocotools.coco import COCO

    if results:
        with _quiet():
            return gt.loadRes(copy.deepcopy(results))
    # loadRes cannot take an empty list (it peeks at results[0]); an empty result set is valid.
    dt = COCO()
    dt.dataset = {"images": list(gt.dataset["images"]), "categories": copy.deepcopy(gt.dataset["categories"]),
                  "annotations": []}
    with _quiet():
        dt.createIndex()
    return dt


def _run(gt, dt, image_ids: Iterable[int] | None = None):
    from pycocotools.cocoeval import COCOeval

    ev = COCOeval(gt, dt, iouType="bbox")
    if image_ids is not None:
        ev.params.imgIds = sorted(int(i) for i in image_ids)
    with _quiet():
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _summary(ev) -> dict:
    # stats[0] = AP@[.5:.95], stats[1] = AP@.5 (area all, 100 dets); -1 when no ground truth.
    return {"map": _num(ev.stats[0]), "map50": _num(ev.stats[1]), "images": len(ev.params.imgIds)}


def _per_class(ev, label_names: Sequence[str], gt) -> dict:
    prec = ev.eval["precision"]  # [T, R, K, A, M]
    out = {}
    for k, cat_id in enumerate(ev.params.catIds):
        name = label_names[cat_id - 1]
        p_all = prec[:, :, k, _AREA_ALL, _MAXDET]
        p50 = prec[_IOU50, :, k, _AREA_ALL, _MAXDET]
        out[name] = {
            "ap": _num(np.mean(p_all[p_all > -1])) if (p_all > -1).any() else None,
            "ap50": _num(np.mean(p50[p50 > -1])) if (p50 > -1).any() else None,
            "gt": len(gt.getAnnIds(imgIds=ev.params.imgIds, catIds=[cat_id], iscrowd=None)),
        }
    return out


def _pr_curves(ev, label_names: Sequence[str]) -> dict:
    """Precision and the score reaching it at each of COCOeval's 101 recall points (IoU .5).
    Recall points the detector never reaches have precision 0 and score 0 (as COCOeval says)."""
    prec, scores = ev.eval["precision"], ev.eval["scores"]
    rec_thrs = ev.params.recThrs
    out = {}
    for k, cat_id in enumerate(ev.params.catIds):
        p = prec[_IOU50, :, k, _AREA_ALL, _MAXDET]
        s = scores[_IOU50, :, k, _AREA_ALL, _MAXDET]
        if (p < 0).all():
            continue  # class absent from the ground truth
        out[label_names[cat_id - 1]] = {
            "recall": [round(float(r), 4) for r in rec_thrs],
            "precision": [float(v) for v in p],
            "scores": [float(v) for v in s],
        }
    return out


def _slices(gt, dt, ds: Dataset) -> dict:
    out: dict[str, dict] = {}
    for field in SLICE_FIELDS:
        values = ds.images[field].fillna("unknown").astype(str)
        groups = {}
        for value in sorted(values.unique()):
            ids = ds.images.loc[values == value, "id"].astype(int).tolist()
            groups[value] = _summary(_run(gt, dt, ids))
        out[field] = groups
    return out


def evaluate_detections(ds: Dataset, detections: dict[int, dict], label_names: Sequence[str], *,
                        slices: bool = True, curves: bool = True) -> dict:
    """COCO metrics of `detections` ({image_id: {"boxes", "classes", "scores"}}) against `ds`.

    Returns {"map", "map50", "images", "boxes", "per_class": {label: {"ap", "ap50", "gt"}},
    "slices": {"camera": {...}, "condition": {...}}, "pr": {label: {"recall", "precision", "scores"}}}.
    Labels absent from the ground truth have null AP. Images without detections count as
    images with no detections (every false negative counts).
    """
    return evaluate_with_matches(ds, detections, label_names, slices=slices, curves=curves)[0]


def evaluate_with_matches(ds: Dataset, detections: dict[int, dict], label_names: Sequence[str], *,
                          slices: bool = True, curves: bool = True):
    """(`evaluate_detections`' metrics, `bootstrap.CocoMatches` of the same COCOeval run): the
    per-image matches the gate's bootstrap re-accumulates on resamples of the images."""
    from camtune.metrics.bootstrap import CocoMatches

    if ds.images.empty:
        raise StepFailed(f"evaluation set from {ds.root} has no images")
    gt = ground_truth(ds, label_names)
    dt = _results(gt, detections_to_coco(ds, detections))
    ev = _run(gt, dt)
    out = _summary(ev)
    out["boxes"] = len(gt.dataset["annotations"])
    out["per_class"] = _per_class(ev, label_names, gt)
    if curves:
        out["pr"] = _pr_curves(ev, label_names)
    if slices:
        out["slices"] = _slices(gt, dt, ds)
    return out, CocoMatches.from_evaluated(ev, label_names)
