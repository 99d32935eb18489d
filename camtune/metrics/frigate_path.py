"""Frigate-path evaluation: what the user's Frigate would detect with this model.

COCO mAP judges the model on whole frames letterboxed into its input and integrates over every
score, even those far below anything Frigate keeps. Here, for each image (`camtune.model.regions`):

- the regions Frigate would detect in: around every tracked (non-attribute) ground-truth object,
  clustered like Frigate clusters tracked boxes; for an image with no object, the regions a motion
  cluster of object-sized boxes would produce (seeded by the image id, so reproducible);
- the model run on each region like Frigate's cpu detector (uint8 RGB, bilinear resize, the 0.4
  floor, at most 20 per region), detections mapped back to the frame;
- per label `min_score`, then Frigate's cross-region merge (NMS + consolidation);
- each ground-truth box is found when a merged detection of its label overlaps it at IoU >= 0.5
  (greedy, highest score first, one detection per box); any other merged detection is false.

Raw per-region detections are kept per image, so any `min_score` can be scored without re-running
the model (labels are merged independently, so each label's min_score only affects that label).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from camtune.core import boxes
from camtune.core.dataset import Dataset
from camtune.model import regions as R

MATCH_IOU = 0.5
SCORE_BINS = [round(0.4 + 0.05 * i, 2) for i in range(13)]   # 0.40 .. 1.00
ADVICE_GRID = [round(0.4 + 0.01 * i, 2) for i in range(56)]   # candidate min_scores 0.40 .. 0.95


@dataclass
class ImageRun:
    image_id: int
    camera: str
    frame_shape: tuple[int, int]
    gt: list[tuple[str, tuple[float, float, float, float]]]   # (label, xyxy) every verified box
    regions: list[R.Region]
    raw: list[R.Detection] = field(default_factory=list)       # >= the 0.4 floor, before filters

    def as_dict(self) -> dict:
        return {"image_id": self.image_id, "camera": self.camera, "frame_shape": list(self.frame_shape),
                "gt": [[l, list(b)] for l, b in self.gt], "regions": [list(r) for r in self.regions],
                "raw": [[d.label, round(d.score, 4), list(d.box), list(d.region)] for d in self.raw]}

    @classmethod
    def from_dict(cls, d: dict) -> "ImageRun":
        return cls(int(d["image_id"]), d["camera"], tuple(d["frame_shape"]),
                   [(l, tuple(b)) for l, b in d["gt"]], [tuple(r) for r in d["regions"]],
                   [R.Detection(l, float(s), tuple(b), tuple(r)) for l, s, b, r in d["raw"]])


def set_regions(ds: Dataset, model_size: int, attribute_labels: Iterable[str],
                motion_boxes: int = 2) -> list[ImageRun]:
    """The regions of every image of `ds` (no model yet). Motion boxes on negative images are as big
    as the set's median tracked object (its long edge), so their regions are the ones such motion
    produces."""
    attrs = set(attribute_labels)
    min_size = R.min_region_size(model_size)
    anns = ds.annotations
    by_image: dict[int, list] = {}
    for a in anns.itertuples():
        x, y, w, h = float(a.x), float(a.y), float(a.w), float(a.h)
        by_image.setdefault(int(a.image_id), []).append((str(a.label), (x, y, x + w, y + h)))
    tracked = [max(b[2] - b[0], b[3] - b[1]) for v in by_image.values() for l, b in v if l not in attrs]
    side = float(np.median(tracked)) if tracked else min_size / 4
    runs = []
    for img in ds.images.sort_values("id").itertuples():
        iid, shape = int(img.id), (int(img.height), int(img.width))
        gt = by_image.get(iid, [])
        boxes = [b for l, b in gt if l not in attrs] or [b for _, b in gt]
        regs = (R.object_regions(shape, boxes, min_size) if boxes
                else R.motion_regions(shape, min_size, side, motion_boxes, seed=iid))
        cam = getattr(img, "camera", None)
        runs.append(ImageRun(iid, "unknown" if cam is None or cam != cam else str(cam), shape, gt, regs))
    return runs


def run_model(runs: list[ImageRun], ds: Dataset, run: R.RegionModel, model_size: int,
              label_names: Sequence[str]) -> list[ImageRun]:
    """Fill each ImageRun's raw detections by running the model on its regions."""
    from camtune.model.images import load_rgb

    files = {int(r.id): r.file_name for r in ds.images.itertuples()}
    out = []
    for r in runs:
        image = load_rgb(ds.image_path(files[r.image_id]))
        raw = R.detect_in_regions(image, r.regions, run, model_size, label_names)
        out.append(ImageRun(r.image_id, r.camera, r.frame_shape, r.gt, r.regions, raw))
    return out


def checkpoint_runner(detector) -> R.RegionModel:
    """A `camtune.model.checkpoint.Detector` as a region model: its NMSed output per region
    (sorted by score) stands in for the TFLite post-processing."""
    def run(batch: np.ndarray):
        res = detector.predict(batch)
        return [(p["boxes"], p["classes"], p["scores"], len(p["scores"])) for p in res]
    return run


def tflite_runner(detector) -> R.RegionModel:
    """A `TFLiteDetector` (Frigate's cpu detector: one region per invoke)."""
    def run(batch: np.ndarray):
        return [detector.detect_raw(t[None]) for t in batch]
    return run


def _merged(run: ImageRun, min_score: Mapping[str, float] | float) -> list[R.Detection]:
    ms = (lambda l: min_score) if isinstance(min_score, (int, float)) else (lambda l: min_score.get(l, 0.5))
    kept = [d for d in run.raw if R.passes_filters(d, ms(d.label))]
    return R.merge(kept, run.frame_shape)


def match(run: ImageRun, detections: Sequence[R.Detection]) -> tuple[list[bool], list[bool]]:
    """(hit per ground-truth box, true per detection): greedy by score, same label, IoU >= 0.5."""
    hit = [False] * len(run.gt)
    tp = [False] * len(detections)
    if not detections or not run.gt:  # nothing to pair (label_curve asks this often): no arrays
        return hit, tp
    # pairwise `iou` (the values `iou_matrix` gives), only where the labels agree (the matcher skips
    # the rest): label_curve matches a few boxes thousands of times, and numpy's per-call cost or
    # every pair's IoU doubled its time. Equal scores keep the merge's order.
    ious = [[boxes.iou(d.box, b) if label == d.label else 0.0 for label, b in run.gt] for d in detections]
    matched = boxes.greedy_match(ious, [d.score for d in detections], MATCH_IOU,
                                 [d.label for d in detections], [label for label, _ in run.gt])
    for di, gi in matched.items():
        hit[gi] = tp[di] = True
    return hit, tp


def _empty() -> dict:
    return {"objects": 0, "hits": 0, "false": 0, "regions": 0, "images": 0}


def _finish(t: dict) -> dict:
    t["recall"] = round(t["hits"] / t["objects"], 4) if t["objects"] else None
    t["false_per_100_regions"] = round(100 * t["false"] / t["regions"], 3) if t["regions"] else None
    return t


def summarize(runs: Sequence[ImageRun], label_names: Sequence[str], attribute_labels: Iterable[str],
              min_score: Mapping[str, float] | float) -> dict:
    """Frigate-path figures at the given `min_score` (per label or one value):
    {"min_score", "overall": tracked labels, "attributes", "per_label", "per_camera",
     "images": [{image_id, camera, objects, hits, regions, false_detections}] (tracked labels; for
     paired resampling over images), "scores": TP/FP score histograms at the 0.4 floor}."""
    attrs = set(attribute_labels)
    overall, attributes = _empty(), _empty()
    per_label = {l: _empty() for l in label_names}
    per_camera: dict[str, dict] = {}
    images = []
    for run in runs:
        dets = _merged(run, min_score)
        hit, tp = match(run, dets)
        cam = per_camera.setdefault(run.camera, _empty())
        objs = hits = false = 0
        for (label, _), h in zip(run.gt, hit):
            per_label.setdefault(label, _empty())
            per_label[label]["objects"] += 1
            per_label[label]["hits"] += h
            if label in attrs:
                attributes["objects"] += 1
                attributes["hits"] += h
            else:
                objs += 1
                hits += h
        for d, t in zip(dets, tp):
            if not t:
                per_label.setdefault(d.label, _empty())["false"] += 1
                if d.label in attrs:
                    attributes["false"] += 1
                else:
                    false += 1
        n_reg = len(run.regions)
        for t in (overall, cam):
            t["objects"] += objs
            t["hits"] += hits
            t["false"] += false
            t["regions"] += n_reg
            t["images"] += 1
        attributes["regions"] += n_reg
        for t in per_label.values():
            t["regions"] += n_reg
        images.append({"image_id": run.image_id, "camera": run.camera, "objects": objs, "hits": hits,
                       "regions": n_reg, "false_detections": false})
    return {"min_score": min_score if isinstance(min_score, (int, float)) else dict(min_score),
            "overall": _finish(overall), "attributes": _finish(attributes),
            "per_label": {l: _finish(t) for l, t in per_label.items()},
            "per_camera": {c: _finish(t) for c, t in sorted(per_camera.items())},
            "images": images, "scores": score_histograms(runs)}


def score_histograms(runs: Sequence[ImageRun]) -> dict:
    """Scores of true and false merged detections at Frigate's floor, per label, in 0.05 bins."""
    out: dict[str, dict] = {}
    for run in runs:
        dets = _merged(run, R.DETECTOR_FLOOR)
        _, tp = match(run, dets)
        for d, t in zip(dets, tp):
            h = out.setdefault(d.label, {"bins": SCORE_BINS, "true": [0] * (len(SCORE_BINS) - 1),
                                         "false": [0] * (len(SCORE_BINS) - 1)})
            b = min(len(SCORE_BINS) - 2, int((d.score - 0.4) / 0.05 + 1e-9))
            h["true" if t else "false"][max(0, b)] += 1
    return out


def label_curve(runs: Sequence[ImageRun], label: str, grid: Sequence[float] = ADVICE_GRID) -> list[dict]:
    """Per candidate min_score: {score, objects, hits, false, precision, recall} of one label."""
    out = []
    for s in grid:
        objects = hits = tps = false = 0
        for run in runs:
            if not any(l == label for l, _ in run.gt) and not any(d.label == label for d in run.raw):
                continue
            dets = [d for d in _merged(run, {label: s}) if d.label == label]
            hit, tp = match(run, dets)
            objects += sum(1 for l, _ in run.gt if l == label)
            hits += sum(h for (l, _), h in zip(run.gt, hit) if l == label)
            tps += sum(tp)
            false += len(tp) - sum(tp)
        out.append({"score": s, "objects": objects, "hits": hits, "false": false,
                    "precision": tps / (tps + false) if tps + false else None,
                    "recall": hits / objects if objects else None})
    return out
