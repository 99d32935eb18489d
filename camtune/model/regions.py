"""What Frigate shows the detector: square regions of a frame, never the whole frame.

Written from Frigate's documented behaviour (0.17/0.18; see docs/ARCHITECTURE.md, "The Frigate
contract"). Frigate is GPL-3: this is our own code for the same rules, not a copy of its code.

- A region around a box (or the bounding box of a cluster of boxes) is a square of side
  `long edge x multiplier` (1.35 for tracked-object clusters, 2 for the single-object helper),
  rounded DOWN to a multiple of 4 and never smaller than the minimum region (320 for models of 320
  and more, the model's own size, rounded up to a multiple of 4, for smaller ones). It is centred on
  the box centre, then shifted to lie inside the frame; when the frame is smaller than the region
  the region starts at 0 and what lies past the frame is black.
- The region is resized to the model input with OpenCV's bilinear resize (INTER_LINEAR) and fed as
  uint8 RGB NHWC.
- The cpu/edgetpu detector keeps at most 20 detections per region and stops at the first score
  below 0.4.
- Detections are mapped back to frame pixels (clamped to the frame), filtered per label
  (`min_score`, area, ratio), then merged across regions per label: OpenCV's NMSBoxes with a score
  threshold of 0.5 and IoU 0.4 (0.6 for car), where a detection within 5 px of a region edge that
  is not a frame edge enters with confidence 0.6 ("clipped", so an unclipped view of the object
  from another region wins); then a smaller detection mostly inside a larger one of the same label
  (90 % of its area; car 80 %, face 50 %) is dropped.

Boxes are (x0, y0, x1, y1) frame pixels; regions are (x0, y0, x1, y1) with x1 - x0 == y1 - y0.
Frame shapes are (height, width) like numpy's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

TRACKED_MULTIPLIER = 1.35   # regions around clusters of tracked-object boxes
SNAPSHOT_MULTIPLIER = 2.0   # the one-object helper (snapshots)
MIN_REGION_LARGE_MODELS = 320
DETECTOR_FLOOR = 0.4        # the cpu/edgetpu detector stops at the first score below this
DETECTOR_MAX = 20           # and keeps at most this many per region
NMS_SCORE_THRESHOLD = 0.5   # the cross-region merge drops (unclipped) detections at or below this
CLIPPED_CONFIDENCE = 0.6    # a clipped detection enters the merge with this confidence
CLIPPED_MARGIN = 5          # px from a region edge that is not a frame edge
NMS_IOU = {"car": 0.6}
NMS_IOU_DEFAULT = 0.4
CONSOLIDATION = {"car": 0.8, "face": 0.5}
CONSOLIDATION_DEFAULT = 0.9

Box = tuple[float, float, float, float]
Region = tuple[int, int, int, int]


def min_region_size(model_size: int) -> int:
    """320 for a model of 320 px or more (a larger model may still see small regions upscaled);
    a smaller model's own size, rounded up to a multiple of 4."""
    if model_size >= MIN_REGION_LARGE_MODELS:
        return MIN_REGION_LARGE_MODELS
    return int(math.ceil(model_size / 4) * 4)


def calculate_region(frame_shape: Sequence[int], box: Box, min_size: int,
                     multiplier: float = TRACKED_MULTIPLIER) -> Region:
    """The square region around `box` (see the module doc)."""
    height, width = int(frame_shape[0]), int(frame_shape[1])
    x0, y0, x1, y1 = box
    side = int(max(x1 - x0, y1 - y0) * multiplier) // 4 * 4
    side = max(side, int(min_size))
    left = int(x0 + (x1 - x0) / 2 - side / 2)
    top = int(y0 + (y1 - y0) / 2 - side / 2)
    # shift inside the frame; a frame narrower than the region pins it at 0 (the rest is black)
    left = max(0, min(left, width - side)) if left > 0 else 0
    top = max(0, min(top, height - side)) if top > 0 else 0
    return left, top, left + side, top + side


def box_area(b: Sequence[float]) -> float:
    # Frigate counts pixels inclusively (+1), which keeps degenerate boxes from dividing by zero
    return (b[2] - b[0] + 1) * (b[3] - b[1] + 1)


def _inside(outer: Sequence[float], inner: Sequence[float]) -> bool:
    return inner[0] >= outer[0] and inner[1] >= outer[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def _cluster_boundary(box: Box, min_size: int) -> tuple[int, int, int, int]:
    """How far from a box another box may lie and still share its region: the region a box could
    have if it filled 10 % of it, minus half the box (+10 %) on each axis."""
    w, h = box[2] - box[0], box[3] - box[1]
    reach = max(min_size, int(math.sqrt(abs(w * h) / 0.1)))
    cx, cy = box[0] + w / 2, box[1] + h / 2
    dx, dy = int(reach - w / 2 * 1.1), int(reach - h / 2 * 1.1)
    return int(cx - dx), int(cy - dy), int(cx + dx), int(cy + dy)


def cluster_region(frame_shape: Sequence[int], min_size: int, cluster: Sequence[int],
                   boxes: Sequence[Box], multiplier: float = TRACKED_MULTIPLIER) -> Region:
    """The region around the bounding box of the boxes `cluster` indexes."""
    pts = np.asarray([boxes[i] for i in cluster], dtype=np.float64)
    hull = (pts[:, 0].min(), pts[:, 1].min(), pts[:, 2].max(), pts[:, 3].max())
    return calculate_region(frame_shape, hull, min_size, multiplier)


def cluster_boxes(frame_shape: Sequence[int], min_size: int, boxes: Sequence[Box]) -> list[list[int]]:
    """Group nearby boxes (indexes into `boxes`) into clusters that share one region. Greedy in box
    order: a box joins the current cluster when it lies inside the cluster seed's reach and, if the
    joint region would be bigger than the minimum, every box keeps >= 5 % of the region's area (so
    a far-apart pair does not shrink each other to a few pixels). Sorted, so deterministic."""
    clusters: list[list[int]] = []
    used: set[int] = set()
    for i, seed in enumerate(boxes):
        if i in used:
            continue
        cluster = [i]
        used.add(i)
        reach = _cluster_boundary(seed, min_size)
        for j, other in enumerate(boxes):
            if j in used or not _inside(reach, other):
                continue
            candidate = cluster + [j]
            region = cluster_region(frame_shape, min_size, candidate, boxes)
            if region[2] - region[0] > min_size and any(
                    box_area(boxes[k]) / box_area(region) < 0.05 for k in candidate):
                continue
            cluster.append(j)
            used.add(j)
        clusters.append(sorted(cluster))
    return sorted(clusters)


def object_regions(frame_shape: Sequence[int], boxes: Sequence[Box], min_size: int) -> list[Region]:
    """The regions Frigate detects in around tracked objects at these boxes: one per cluster."""
    return [cluster_region(frame_shape, min_size, c, boxes) for c in cluster_boxes(frame_shape, min_size, boxes)]


def crop_region(image: np.ndarray, region: Region, out_size: int) -> np.ndarray:
    """uint8 RGB [out_size, out_size, 3]: the region of `image` (black past the frame), resized with
    OpenCV's bilinear resize like Frigate's create_tensor_input."""
    import cv2

    x0, y0, x1, y1 = (int(v) for v in region)
    side = x1 - x0
    if side <= 0 or y1 - y0 != side:
        raise ValueError(f"region {region} is not a non-empty square")
    h, w = image.shape[:2]
    crop = np.zeros((side, side, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    if side != out_size:
        crop = cv2.resize(crop, (out_size, out_size), interpolation=cv2.INTER_LINEAR)
    return crop


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: tuple[int, int, int, int]   # frame pixels, clamped to the frame
    region: Region

    @property
    def area(self) -> int:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])


def detector_output(boxes: np.ndarray, classes: np.ndarray, scores: np.ndarray, count: int,
                    label_names: Sequence[str]) -> list[tuple[str, float, np.ndarray]]:
    """What the cpu/edgetpu detector hands on from one region's raw model outputs: in output order,
    at most 20, stopping at the first score below 0.4; (label, score, normalized ymin,xmin,ymax,xmax).
    Class ids outside the label map are skipped (Frigate logs and skips them)."""
    out = []
    n = max(0, min(int(count), len(scores)))
    for i in range(n):
        if i == DETECTOR_MAX or scores[i] < DETECTOR_FLOOR:
            break
        c = int(classes[i])
        if 0 <= c < len(label_names):
            out.append((label_names[c], float(scores[i]), np.asarray(boxes[i], dtype=np.float64)))
    return out


def to_frame(label: str, score: float, box_yxyx: Sequence[float], region: Region,
             frame_shape: Sequence[int]) -> Detection | None:
    """A region detection (normalized ymin,xmin,ymax,xmax) -> frame pixels (int, clamped to the
    frame); None for a detection that starts outside the frame (in the black padding)."""
    height, width = int(frame_shape[0]), int(frame_shape[1])
    side = region[2] - region[0]
    ymin, xmin, ymax, xmax = (float(v) for v in box_yxyx)
    x0 = int(max(0, xmin * side + region[0]))
    y0 = int(max(0, ymin * side + region[1]))
    x1 = int(min(width - 1, xmax * side + region[0]))
    y1 = int(min(height - 1, ymax * side + region[1]))
    if x0 >= width - 1 or y0 >= height - 1:
        return None
    return Detection(label, score, (x0, y0, x1, y1), tuple(int(v) for v in region))


def is_clipped(det: Detection, frame_shape: Sequence[int]) -> bool:
    """Within 5 px of a region edge that is not (within 5 px of) a frame edge: the object probably
    continues outside the region."""
    height, width = int(frame_shape[0]), int(frame_shape[1])
    b, r = det.box, det.region
    return ((r[0] > CLIPPED_MARGIN and b[0] - r[0] <= CLIPPED_MARGIN)
            or (r[1] > CLIPPED_MARGIN and b[1] - r[1] <= CLIPPED_MARGIN)
            or (width - r[2] > CLIPPED_MARGIN and r[2] - b[2] <= CLIPPED_MARGIN)
            or (height - r[3] > CLIPPED_MARGIN and r[3] - b[3] <= CLIPPED_MARGIN))


def passes_filters(det: Detection, min_score: float, min_area: float = 0, max_area: float = math.inf) -> bool:
    """Frigate's per-label object filters on one detection (before the merge)."""
    return det.score >= min_score and min_area <= det.area <= max_area


def merge(detections: Sequence[Detection], frame_shape: Sequence[int]) -> list[Detection]:
    """Frigate's cross-region merge (see the module doc): NMS per label, then consolidation."""
    import cv2

    kept: list[Detection] = []
    by_label: dict[str, list[Detection]] = {}
    for d in detections:
        by_label.setdefault(d.label, []).append(d)
    for label, group in by_label.items():
        rects = [[d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]] for d in group]
        conf = [CLIPPED_CONFIDENCE if is_clipped(d, frame_shape) else d.score for d in group]
        idx = cv2.dnn.NMSBoxes(rects, conf, NMS_SCORE_THRESHOLD, NMS_IOU.get(label, NMS_IOU_DEFAULT))
        kept += [group[int(i)] for i in np.asarray(idx).reshape(-1)]
    out: list[Detection] = []
    by_label = {}
    for d in kept:
        by_label.setdefault(d.label, []).append(d)
    for label, group in by_label.items():
        if len(group) == 1:
            out += group
            continue
        limit = CONSOLIDATION.get(label, CONSOLIDATION_DEFAULT)
        group = sorted(group, key=lambda d: d.area)
        for i, small in enumerate(group):
            a = box_area(small.box)
            swallowed = False
            for big in group[i + 1:]:
                if a / box_area(big.box) < 0.05:
                    continue  # a small car far behind a big one is not part of it
                inter = _intersection(small.box, big.box)
                if inter is not None and box_area(inter) / a > limit:
                    swallowed = True
                    break
            if not swallowed:
                out.append(small)
    return out


def _intersection(a: Sequence[float], b: Sequence[float]):
    if a[2] < b[0] or a[0] > b[2] or a[1] > b[3] or a[3] < b[1]:
        return None
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


# one uint8 [N,S,S,3] batch of regions -> the model's raw (boxes, classes, scores, count) per region,
# like `TFLiteDetector.detect_raw` returns them for one region
RegionModel = Callable[[np.ndarray], list[tuple[np.ndarray, np.ndarray, np.ndarray, int]]]


def detect_in_regions(image: np.ndarray, regions: Sequence[Region], run: RegionModel, model_size: int,
                      label_names: Sequence[str]) -> list[Detection]:
    """Every detection the detector hands on from each region, in frame pixels (before filters and
    the merge)."""
    if not len(regions):
        return []
    frame_shape = image.shape[:2]
    batch = np.stack([crop_region(image, r, model_size) for r in regions])
    raw = run(batch)
    if len(raw) != len(regions):
        raise ValueError(f"the detector returned {len(raw)} results for {len(regions)} regions")
    out = []
    for region, outputs in zip(regions, raw):
        for label, score, b in detector_output(*outputs, label_names):
            d = to_frame(label, score, b, region, frame_shape)
            if d is not None:
                out.append(d)
    return out


def motion_regions(frame_shape: Sequence[int], min_size: int, box_side: float, count: int,
                   seed: int) -> list[Region]:
    """Regions a motion cluster of `count` boxes of about `box_side` px would give (trees, shadows,
    headlights): boxes at seeded random places, clustered and sized by the same rules."""
    rng = np.random.default_rng(seed)
    height, width = int(frame_shape[0]), int(frame_shape[1])
    boxes = []
    for _ in range(max(1, count)):
        w = float(np.clip(box_side * rng.uniform(0.6, 1.4), 4, width))
        h = float(np.clip(box_side * rng.uniform(0.6, 1.4), 4, height))
        x0, y0 = rng.uniform(0, max(1.0, width - w)), rng.uniform(0, max(1.0, height - h))
        boxes.append((x0, y0, x0 + w, y0 + h))
    return object_regions(frame_shape, boxes, min_size)
