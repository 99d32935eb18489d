"""COCO metrics on hand-made cases whose AP is known from COCO's definition (101-point
interpolated precision), computed through pycocotools by evaluate_detections."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from camtune.core.dataset import Dataset, tables
from camtune.core.errors import StepFailed
from camtune.metrics.coco import detections_to_coco, evaluate_detections
from camtune.metrics.predict import shards

LABELS = ["person", "face", "car"]
W, H = 200, 100


def make_ds(boxes: dict[int, list[tuple[str, list[float]]]], cameras: dict[int, str] | None = None) -> Dataset:
    """images 200x100; boxes {image_id: [(label, [x, y, w, h])]}."""
    cats = [{"id": 10 + i, "name": n, "attribute_of": []} for i, n in enumerate(LABELS)]
    cid = {c["name"]: c["id"] for c in cats}
    images = [{"id": i, "file_name": f"images/{i}.jpg", "width": W, "height": H, "user_id": "u",
               "camera": (cameras or {}).get(i, "front"), "condition": "day", "verified": True}
              for i in boxes]
    anns, n = [], 0
    for iid, bs in boxes.items():
        for label, bbox in bs:
            n += 1
            anns.append({"id": n, "image_id": iid, "category_id": cid[label], "bbox": bbox})
    return Dataset(Path("."), *tables({"images": images, "annotations": anns, "categories": cats}))


def det(*items):
    """items: (label, [x, y, w, h] pixels, score) -> detector output (normalized yxyx, 0-based)."""
    boxes = [[y / H, x / W, (y + h) / H, (x + w) / W] for _, (x, y, w, h), _ in items]
    return {"boxes": np.array(boxes).reshape(-1, 4), "classes": [LABELS.index(l) for l, _, _ in items],
            "scores": [s for _, _, s in items]}


GT = {1: [("person", [20, 10, 40, 60]), ("face", [30, 12, 10, 10])], 2: [("person", [100, 20, 50, 70])]}


def test_detections_convert_to_coco_pixels():
    ds = make_ds(GT)
    res = detections_to_coco(ds, {1: det(("person", [20, 10, 40, 60], 0.9))})
    assert res == [{"image_id": 1, "category_id": 1, "bbox": pytest.approx([20, 10, 40, 60]), "score": 0.9}]


def test_perfect_detections_give_ap_one_and_absent_class_is_null():
    ds = make_ds(GT)
    dets = {1: det(("person", [20, 10, 40, 60], 0.9), ("face", [30, 12, 10, 10], 0.8)),
            2: det(("person", [100, 20, 50, 70], 0.7))}
    m = evaluate_detections(ds, dets, LABELS)
    assert m["map"] == pytest.approx(1.0) and m["map50"] == pytest.approx(1.0)
    assert m["per_class"]["face"]["ap"] == pytest.approx(1.0)  # attribute labels scored like any class
    assert m["per_class"]["car"] == {"ap": None, "ap50": None, "gt": 0}  # no GT: null, not 0
    assert "car" not in m["pr"]
    assert m["images"] == 2 and m["boxes"] == 3


def test_false_positive_above_true_positive_gives_known_ap():
    # person: FP (0.9) ranked above TP (0.8), second person missed. Precision [0, 1/2] at recall
    # [0, 1/2]; interpolated: 1/2 for the 51 recall points 0..0.5, 0 beyond: AP = 25.5/101.
    ds = make_ds({1: [("person", [20, 10, 40, 60])], 2: [("person", [100, 20, 50, 70])]})
    dets = {1: det(("person", [150, 60, 30, 30], 0.9), ("person", [20, 10, 40, 60], 0.8)), 2: det()}
    m = evaluate_detections(ds, dets, LABELS)
    assert m["per_class"]["person"]["ap50"] == pytest.approx(25.5 / 101)
    assert m["map50"] == pytest.approx(25.5 / 101)
    curve = m["pr"]["person"]
    assert curve["precision"][50] == pytest.approx(0.5) and curve["scores"][50] == pytest.approx(0.8)
    assert curve["precision"][51] == 0 and curve["scores"][51] == 0  # recall never reached


def test_no_detections_at_all_is_zero_ap_not_a_crash():
    ds = make_ds(GT)
    m = evaluate_detections(ds, {}, LABELS)
    assert m["map"] == 0 and m["per_class"]["person"]["ap"] == 0


def test_slices_rerun_cocoeval_per_camera():
    ds = make_ds(GT, cameras={1: "front", 2: "back"})
    dets = {1: det(("person", [20, 10, 40, 60], 0.9), ("face", [30, 12, 10, 10], 0.8))}  # image 2 missed
    m = evaluate_detections(ds, dets, LABELS)
    cams = m["slices"]["camera"]
    assert cams["front"]["map"] == pytest.approx(1.0) and cams["front"]["images"] == 1
    assert cams["back"]["map"] == 0
    assert m["slices"]["condition"]["day"]["images"] == 2


def test_empty_set_and_foreign_image_are_refused():
    ds = make_ds(GT)
    with pytest.raises(StepFailed, match="no images"):
        evaluate_detections(ds.subset([]), {}, LABELS)
    with pytest.raises(StepFailed, match="image id 99"):
        evaluate_detections(ds, {99: det()}, LABELS)




def test_shards_cover_ids_once():
    assert shards([5, 6, 7, 8, 9], 2) == [[5, 6, 7], [8, 9]]
    assert shards([1], 4) == [[1]]
    assert sum(shards(list(range(10)), 3), []) == list(range(10))
