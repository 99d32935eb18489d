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

from camtune.dataset import Dataset, to_coco
from camtune.errors import StepFailed


@dataclass(frozen=True)
class RecordSet:
    files: list[str]
    images: int          # distinct images
    examples: int        # examples written (repeats included)
    boxes: int
    negatives: int
    per_class: dict[str, int]


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


def _examples(parts: Iterable[Part], label_names: list[str]):
    for part in parts:
        ds = part.dataset.verified()
        coco = to_coco(ds, label_names=label_names)
        anns: dict[int, list[dict]] = {}
        for a in coco["annotations"]:
            anns.setdefault(a["image_id"], []).append(a)
        for img in sorted(coco["images"], key=lambda r: r["id"]):
            iid = int(img["id"])
            n = 1 if part.repeats is None else int(part.repeats.get(iid, 1))
            path = ds.image_path(img["file_name"])
            try:
                encoded = path.read_bytes()
            except OSError as exc:
                raise StepFailed(f"{path}: image {iid} cannot be read: {exc}") from None
            a = anns.get(iid, [])
            yield iid, n, img, encoded, [x["bbox"] for x in a], [x["category_id"] for x in a]


def write_records(parts: Iterable[Part], out_dir: str | Path, *, label_names: list[str],
                  shards: int = 2, prefix: str = "train", seed: int = 0) -> RecordSet:
    """Write `<out_dir>/<prefix>-0000i-of-0000n.tfrecord`. Images are spread over shards by a
    hash of their id (stable); repeated images go to the same shard. StepFailed when empty."""
    import tensorflow as tf

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [str(out_dir / f"{prefix}-{i:05d}-of-{shards:05d}.tfrecord") for i in range(shards)]
    writers = [tf.io.TFRecordWriter(f) for f in files]
    per_class = {n: 0 for n in label_names}
    images = examples = boxes = negatives = 0
    seen: set[int] = set()
    try:
        for iid, n, img, encoded, bxs, cls in _examples(parts, label_names):
            try:
                ex = build_example(encoded, image_id=iid, width=int(img["width"]),
                                   height=int(img["height"]), boxes_xywh=bxs, classes=cls)
            except Exception as exc:  # undecodable image bytes
                raise StepFailed(f"image {iid} ({img['file_name']}): cannot be encoded: {exc}") from None
            shard = int(hashlib.sha1(f"{seed}:{iid}".encode()).hexdigest(), 16) % shards
            for _ in range(n):
                writers[shard].write(ex)
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
                     negatives=negatives, per_class=per_class)
