"""Training examples cut the way Frigate crops frames (`camtune.model.regions`).

For each verified image (`training.regions`):

- `per_object` regions per cluster of tracked objects: the cluster's 1.35x square with the jitter
  motion boxes give (side and centre moved by up to `context_jitter` of the side), shifted into the
  frame like Frigate shifts it;
- background regions, `background_share` per object region (and at least one on an image with no
  objects): minimum-size squares at random places, like motion regions over trees and shadows:
  empty, or with objects cut at the edge;
- the whole frame with probability `whole_frame_share` (Frigate sees large objects in regions as
  big as the frame).

Every region is cropped (black past the frame) and resized to the model input with OpenCV's
bilinear resize, like Frigate's; boxes are clipped to the region, and a box with less than
`min_visible` of its area inside is dropped (the model is not asked to find a sliver). Everything
is seeded by (seed, image id, repeat), so the same data and params give the same examples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from camtune.model import regions as R


@dataclass(frozen=True)
class RegionExample:
    region: R.Region | None          # None = the whole frame
    boxes: list[tuple[float, float, float, float]]   # xyxy pixels of the OUTPUT image
    classes: list[int]
    kind: str                        # "object" | "background" | "frame"


def _jittered(frame_shape, hull, min_size: int, jitter: float, rng) -> R.Region:
    x0, y0, x1, y1 = hull
    mult = R.TRACKED_MULTIPLIER * (1 + rng.uniform(-jitter, jitter))
    side = max(int(max(x1 - x0, y1 - y0) * mult) // 4 * 4, min_size)
    cx = (x0 + x1) / 2 + rng.uniform(-jitter, jitter) * side / 2
    cy = (y0 + y1) / 2 + rng.uniform(-jitter, jitter) * side / 2
    # like a motion box around a moving object: neither centred nor sized exactly
    return R.calculate_region(frame_shape, (cx - 1, cy - 1, cx + 1, cy + 1), side, 1.0)


def clip_boxes(region: R.Region, out_size: int, boxes: Sequence[Sequence[float]], classes: Sequence[int],
               min_visible: float) -> tuple[list, list]:
    """Boxes (xyxy frame pixels) -> boxes in the resized region's pixels, clipped; boxes with less
    than `min_visible` of their area inside the region (or inside the frame part of it) dropped."""
    rx0, ry0, rx1, ry1 = region
    scale = out_size / (rx1 - rx0)
    out_b, out_c = [], []
    for (x0, y0, x1, y1), c in zip(boxes, classes):
        area = max(0.0, x1 - x0) * max(0.0, y1 - y0)
        cx0, cy0, cx1, cy1 = max(x0, rx0), max(y0, ry0), min(x1, rx1), min(y1, ry1)
        inside = max(0.0, cx1 - cx0) * max(0.0, cy1 - cy0)
        if area <= 0 or inside / area < min_visible or cx1 - cx0 < 1 or cy1 - cy0 < 1:
            continue
        out_b.append(((cx0 - rx0) * scale, (cy0 - ry0) * scale, (cx1 - rx0) * scale, (cy1 - ry0) * scale))
        out_c.append(int(c))
    return out_b, out_c


def plan(frame_shape: Sequence[int], boxes: Sequence[Sequence[float]], classes: Sequence[int],
         tracked: Sequence[bool], *, input_size: int, per_object: int, context_jitter: float,
         background_share: float, whole_frame_share: float, min_visible: float,
         rng: np.random.Generator) -> list[RegionExample]:
    """The region examples of one image (geometry only)."""
    min_size = R.min_region_size(input_size)
    height, width = int(frame_shape[0]), int(frame_shape[1])
    out: list[RegionExample] = []
    tb = [tuple(b) for b, t in zip(boxes, tracked) if t] or [tuple(b) for b in boxes]
    n_object = 0
    for cluster in (R.cluster_boxes(frame_shape, min_size, tb) if tb else []):
        pts = np.asarray([tb[i] for i in cluster])
        hull = (pts[:, 0].min(), pts[:, 1].min(), pts[:, 2].max(), pts[:, 3].max())
        for _ in range(per_object):
            region = _jittered(frame_shape, hull, min_size, context_jitter, rng)
            b, c = clip_boxes(region, input_size, boxes, classes, min_visible)
            out.append(RegionExample(region, b, c, "object"))
            n_object += 1
    n_bg = int(np.floor(background_share * n_object + rng.uniform()))
    if not tb:
        n_bg = max(1, n_bg)
    for _ in range(n_bg):
        side = min_size if rng.uniform() < 0.7 else int(min_size * rng.uniform(1, 2)) // 4 * 4
        x = rng.uniform(0, max(1, width - side))
        y = rng.uniform(0, max(1, height - side))
        region = R.calculate_region(frame_shape, (x, y, x + side, y + side), side, 1.0)
        b, c = clip_boxes(region, input_size, boxes, classes, min_visible)
        out.append(RegionExample(region, b, c, "background"))
    if rng.uniform() < whole_frame_share:
        out.append(RegionExample(None, [tuple(map(float, b)) for b in boxes], list(classes), "frame"))
    return out


def render(image: np.ndarray, ex: RegionExample, input_size: int) -> np.ndarray:
    """The example's pixels: the region crop resized to the input (the whole frame as it is; the
    parser letterboxes it)."""
    return image if ex.region is None else R.crop_region(image, ex.region, input_size)


def seed_for(seed: int, image_id: int, repeat: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(image_id) & 0xFFFFFFFF, int(repeat)])


def stats(examples: Iterable[RegionExample]) -> dict:
    out = {"object": 0, "background": 0, "frame": 0}
    for e in examples:
        out[e.kind] += 1
    return out
