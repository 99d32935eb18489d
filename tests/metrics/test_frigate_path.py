"""Frigate-path evaluation end to end on real image files, with a detector that finds bright
rectangles in each region (score = brightness / 255, class from the colour channel): the crop,
resize, mapping back, floor, merge and matching are all exercised for real."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from camtune.core.dataset import load_dataset
from camtune.metrics import frigate_path as F

LABELS = ["person", "face", "car"]


def blob_runner(batch):
    """Bright blobs of one channel -> detections: red = person, green = car (normalized yxyx)."""
    out = []
    for img in batch:
        dets = []
        s = img.shape[0]
        for ch, cls in ((0, 0), (1, 2)):
            mask = ((img[..., ch] > 60) & (img[..., 2] < 30)).astype(np.uint8)
            n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            for x, y, w, h, area in stats[1:]:
                if area < 10:
                    continue
                score = float(img[y + h // 2, x + w // 2, ch]) / 255
                dets.append((score, cls, [y / s, x / s, (y + h) / s, (x + w) / s]))
        dets.sort(key=lambda d: -d[0])
        out.append((np.array([d[2] for d in dets], np.float32).reshape(-1, 4),
                    np.array([d[1] for d in dets], np.float32), np.array([d[0] for d in dets], np.float32),
                    len(dets)))
    return out


def write_ds(root: Path, scenes: dict[int, list[tuple[str, list[int], int]]], size=(720, 1280),
             camera="front") -> Path:
    """scenes {image_id: [(label, [x, y, w, h], brightness)]}; boxes listed with brightness None are
    ground truth only (not drawn); brightness without label '-' draws a distractor."""
    (root / "images").mkdir(parents=True)
    cats = [{"id": i + 1, "name": n, "attribute_of": ["person"] if n == "face" else []}
            for i, n in enumerate(LABELS)]
    images, anns = [], []
    for iid, items in scenes.items():
        img = np.zeros((*size, 3), np.uint8)
        for label, (x, y, w, h), v in items:
            if v is not None:
                ch = 1 if label in ("car", "-car") else 0
                img[y:y + h, x:x + w, ch] = v
            if not label.startswith("-"):
                anns.append({"id": len(anns) + 1, "image_id": iid, "category_id": LABELS.index(label) + 1,
                             "bbox": [x, y, w, h]})
        cv2.imwrite(str(root / "images" / f"{iid}.png"), img[..., ::-1])
        images.append({"id": iid, "file_name": f"images/{iid}.png", "width": size[1], "height": size[0],
                       "user_id": "u", "camera": camera, "verified": True,
                       "captured_at": "2026-01-01T00:00:00Z", "verified_at": "2026-01-02T00:00:00Z"})
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                       "categories": cats}))
    return root


def evaluate(root, min_score=0.5):
    ds = load_dataset(root)
    runs = F.set_regions(ds, 320, ["face"])
    runs = F.run_model(runs, ds, blob_runner, 320, LABELS)
    return runs, F.summarize(runs, LABELS, ["face"], min_score)


def test_found_objects_missed_objects_and_false_detections(tmp_path):
    root = write_ds(tmp_path / "ds", {
        1: [("person", [100, 300, 40, 100], 230),        # found at 0.9
            ("car", [900, 500, 200, 120], 200)],         # found at 0.78
        2: [("person", [600, 200, 40, 100], 115),        # 0.45: above the 0.4 floor, not the merge's 0.5
            ("-person", [700, 200, 30, 30], 220)],       # a bright non-object in the same region: false
        3: [],                                           # a negative: motion regions only
    })
    runs, s = evaluate(root)
    assert [len(r.regions) for r in runs[:2]] == [2, 1] and len(runs[2].regions) >= 1
    o = s["overall"]
    assert (o["objects"], o["hits"], o["false"]) == (3, 2, 1)
    assert o["recall"] == pytest.approx(2 / 3, abs=1e-3)
    assert o["regions"] == sum(len(r.regions) for r in runs)
    assert o["false_per_100_regions"] == pytest.approx(100 / o["regions"], abs=1e-3)
    assert s["per_label"]["car"]["recall"] == 1.0 and s["per_label"]["person"]["recall"] == 0.5
    assert s["per_camera"]["front"]["objects"] == 3
    assert [i["hits"] for i in s["images"]] == [2, 0, 0]
    assert [i["false_detections"] for i in s["images"]] == [0, 1, 0]
    # TP/FP score distributions at the floor: the 0.45 person is neither (the merge drops it)
    assert sum(s["scores"]["person"]["true"]) == 1 and sum(s["scores"]["person"]["false"]) == 1


def test_min_score_per_label_and_the_curve(tmp_path):
    root = write_ds(tmp_path / "ds", {1: [("person", [100, 300, 40, 100], 230), ("car", [900, 500, 200, 120], 200)]})
    runs, _ = evaluate(root)
    s = F.summarize(runs, LABELS, ["face"], {"person": 0.95, "car": 0.5})
    assert s["per_label"]["person"]["hits"] == 0 and s["per_label"]["car"]["hits"] == 1
    curve = F.label_curve(runs, "car")
    hits = {c["score"]: c["hits"] for c in curve}
    assert hits[0.7] == 1 and hits[0.8] == 0


def test_object_in_a_small_frame_is_seen_through_black_padding(tmp_path):
    root = write_ds(tmp_path / "ds", {1: [("person", [150, 80, 30, 60], 230)]}, size=(200, 300))
    runs, s = evaluate(root)
    assert runs[0].regions == [(0, 0, 320, 320)]
    assert s["overall"]["recall"] == 1.0


def test_runs_round_trip_through_json(tmp_path):
    root = write_ds(tmp_path / "ds", {1: [("person", [100, 300, 40, 100], 230)], 2: []})
    runs, s = evaluate(root)
    back = [F.ImageRun.from_dict(json.loads(json.dumps(r.as_dict()))) for r in runs]
    assert F.summarize(back, LABELS, ["face"], 0.5)["overall"] == s["overall"]


def test_advice_from_the_frigate_path_never_below_the_floor(tmp_path):
    from camtune.core.config import ThresholdParams
    from camtune.steps.evaluate.thresholds import recommend_frigate

    root = write_ds(tmp_path / "ds", {
        1: [("person", [100, 300, 40, 100], 230),      # a hit at 0.90
            ("-person", [200, 300, 30, 30], 180)],     # a false detection at 0.71
    })
    runs, _ = evaluate(root)
    p = ThresholdParams(min_boxes=1, min_score_precision=0.5, threshold_precision=0.8,
                        min_score_range=(0.3, 0.9))
    advice = {a.label: a for a in recommend_frigate(LABELS, ["face"], [("user holdout", runs)], p)}
    person = advice["person"]
    assert person.source == "user holdout"
    assert person.min_score == 0.4            # precision 0.5 from the floor up; 0.3 is not allowed
    assert person.threshold == 0.71          # the false detection (180/255 = 0.706) drops out there
    assert advice["car"].source == "fallback" and advice["face"].threshold is None
