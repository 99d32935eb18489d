"""Datasets -> sharded TFRecords in Model Garden's own tf.Example keys.

The examples are built with `official.vision.data.tf_example_builder.TfExampleBuilder`, so the
stock `tf_example_decoder` and RetinaNet parser (augmentation, anchor labeler) read them as-is.
Only verified images go in; class ids are 1..K in `labels.names` order (`to_coco` remaps);
verified images without boxes are written too (negatives).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from camtune.core.dataset import Dataset, to_coco
from camtune.core.errors import StepFailed
from camtune.model.images import Limits, checked_bytes


@dataclass(frozen=True)
class RecordSet:
    files: list[str]
    images: int          # distinct images
    examples: int        # examples written (repeats included)
    boxes: int
    negatives: int
    per_class: dict[str, int]
    kinds: dict[str, int] | None = None   # examples per kind: object / background regions, whole frames


@dataclass(frozen=True)
class Part:
    """One source of examples: a dataset (already subset to the images wanted) and optional
    per-image repeat counts (upsampling)."""
    dataset: Dataset
    repeats: dict[int, int] | None = None


def build_example(encoded: bytes, *, image_id: int, width: int, height: int,
                  boxes_xywh: list[list[float]], classes: list[int]) -> bytes:
    """One serialized tf.Example: encoded image + normalized boxes, Model Garden keys."""
    from official.vision.data import tf_example_builder

    xmin, xmax, ymin, ymax = [], [], [], []
    for x, y, w, h in boxes_xywh:
        # clip: validation tolerates boxes sticking out by a pixel
        x0, y0 = max(0.0, x / width), max(0.0, y / height)
        x1, y1 = min(1.0, (x + w) / width), min(1.0, (y + h) / height)
        xmin.append(x0), xmax.append(x1), ymin.append(y0), ymax.append(y1)
    b = tf_example_builder.TfExampleBuilder()
    b.add_encoded_image_feature(encoded, image_source_id=str(image_id).encode())
    b.add_boxes_feature(xmins=xmin, xmaxs=xmax, ymins=ymin, ymaxs=ymax, labels=classes)
    # area/is_crowd keep the decoder from recomputing them; iscrowd=0 for every box of ours
    b.add_floats_feature("image/object/area",
                         [float(w * h) for _, _, w, h in boxes_xywh])
    b.add_ints_feature("image/object/is_crowd", [0] * len(classes))
    # deterministic: the feature map's order would otherwise vary per process, and the same data
    # must give the same bytes (resume compares the records; DVC hashes them)
    return b.example.SerializeToString(deterministic=True)


def _examples(parts: Iterable[Part], label_names: list[str], limits: Limits | None = None):
    for part in parts:
        ds = part.dataset.verified()
        coco = to_coco(ds, label_names=label_names)
        anns: dict[int, list[dict]] = {}
        for a in coco["annotations"]:
            anns.setdefault(a["image_id"], []).append(a)
        for img in sorted(coco["images"], key=lambda r: r["id"]):
            iid = int(img["id"])
            n = 1 if part.repeats is None else int(part.repeats.get(iid, 1))
            # the checked resolver and decoder limits every reader uses (the global pool is
            # never run through validate: these are its file checks)
            path = ds.image_path(img["file_name"])
            encoded = checked_bytes(path, limits, f"image {iid} ({path})")
            a = anns.get(iid, [])
            yield iid, n, img, encoded, [x["bbox"] for x in a], [x["category_id"] for x in a]


def _region_examples(iid: int, n: int, img: dict, encoded: bytes, bxs, cls, regions, input_size: int,
                     tracked_ids: set[int], seed: int):
    """(encoded JPEG, width, height, boxes xywh, classes) per region example of one image."""
    import cv2

    from camtune.training import region_examples as RE

    image = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise StepFailed(f"image {iid} ({img['file_name']}): cannot be decoded")
    image = image[..., ::-1]  # RGB, as Frigate converts its regions
    if image.shape[:2] != (int(img["height"]), int(img["width"])):
        raise StepFailed(f"image {iid} ({img['file_name']}): is {image.shape[1]}x{image.shape[0]} but "
                         f"annotations.json says {img['width']}x{img['height']}")
    xyxy = [(x, y, x + w, y + h) for x, y, w, h in bxs]
    for k in range(n):
        plan = RE.plan(image.shape[:2], xyxy, cls, [c in tracked_ids for c in cls], input_size=input_size,
                       per_object=regions.per_object, context_jitter=regions.context_jitter,
                       background_share=regions.background_share,
                       whole_frame_share=regions.whole_frame_share, min_visible=regions.min_visible,
                       rng=RE.seed_for(seed, iid, k))
        for ex in plan:
            if ex.region is None:
                yield ex.kind, encoded, int(img["width"]), int(img["height"]), bxs, cls
                continue
            pixels = RE.render(image, ex, input_size)
            ok, jpg = cv2.imencode(".jpg", pixels[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not ok:
                raise StepFailed(f"image {iid}: cannot encode a region as JPEG")
            yield (ex.kind, jpg.tobytes(), input_size, input_size,
                   [[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in ex.boxes], ex.classes)


def write_records(parts: Iterable[Part], out_dir: str | Path, *, label_names: list[str],
                  shards: int = 2, prefix: str = "train", seed: int = 0, regions=None,
                  input_size: int = 320, attribute_labels: Iterable[str] = (),
                  limits: Limits | None = None) -> RecordSet:
    """Write `<out_dir>/<prefix>-0000i-of-0000n.tfrecord`. Images are spread over shards by a
    hash of their id (stable); repeated images go to the same shard. StepFailed when empty.
    With `regions` (`training.regions`, enabled) each image becomes Frigate-style region examples
    (`camtune.training.region_examples`) instead of one whole-frame example."""
    import tensorflow as tf

    if regions is not None and not regions.enabled:
        regions = None
    attrs = set(attribute_labels)
    tracked_ids = {i + 1 for i, n in enumerate(label_names) if n not in attrs}
    kinds = {"object": 0, "background": 0, "frame": 0}

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [str(out_dir / f"{prefix}-{i:05d}-of-{shards:05d}.tfrecord") for i in range(shards)]
    writers = [tf.io.TFRecordWriter(f) for f in files]
    per_class = {n: 0 for n in label_names}
    images = examples = boxes = negatives = 0
    seen: set[int] = set()
    try:
        for iid, n, img, encoded, bxs, cls in _examples(parts, label_names, limits):
            shard = int(hashlib.sha1(f"{seed}:{iid}".encode()).hexdigest(), 16) % shards
            if regions is not None:
                n_written = 0
                for kind, data, w, h, rb, rc in _region_examples(iid, n, img, encoded, bxs, cls, regions,
                                                                 input_size, tracked_ids, seed):
                    writers[shard].write(build_example(data, image_id=iid, width=w, height=h,
                                                       boxes_xywh=rb, classes=rc))
                    kinds[kind] += 1
                    n_written += 1
                n = n_written
            else:
                try:
                    ex = build_example(encoded, image_id=iid, width=int(img["width"]),
                                       height=int(img["height"]), boxes_xywh=bxs, classes=cls)
                except Exception as exc:  # undecodable image bytes
                    raise StepFailed(f"image {iid} ({img['file_name']}): cannot be encoded: {exc}") from None
                for _ in range(n):
                    writers[shard].write(ex)
                kinds["frame"] += n
            if iid not in seen:
                seen.add(iid)
                images += 1
                boxes += len(bxs)
                negatives += not bxs
                for c in cls:
                    per_class[label_names[c - 1]] += 1
            examples += n
    finally:
        for w in writers:
            w.close()
    if examples == 0:
        raise StepFailed(f"{out_dir}: the training set is empty (no verified images)")
    return RecordSet(files=files, images=images, examples=examples, boxes=boxes,
                     negatives=negatives, per_class=per_class, kinds=kinds)
