"""Suggestions on the sample data with a tiny real TFLite model, run through validate's audit loop."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from camtune.core.config import SuggestIngestParams
from camtune.steps.ingest import load_coco, save_coco
from camtune.steps.ingest import suggest as sg

from .builders import verified_part

SIZE = 32
PERSON_BOX = [0.1, 0.1, 0.5, 0.3]   # ymin, xmin, ymax, xmax (normalized)
DOG_BOX = [0.5, 0.5, 0.9, 0.9]
CAR_BOX = [0.0, 0.6, 0.2, 0.8]


def build_fixed_detector(path, labels, size: int = SIZE):
    """A tiny Frigate-contract TFLite model: a person (0.9), a dog whose score follows the image's
    mean brightness, and a car at 0.2 (below the floor), every time."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.uint8)])
    def detect(image):
        mean = tf.reduce_mean(tf.cast(image, tf.float32)) / 255.0
        boxes = tf.constant([[PERSON_BOX, DOG_BOX, CAR_BOX]], tf.float32)
        classes = tf.constant([[labels.index("person"), labels.index("dog"), labels.index("car")]], tf.float32)
        scores = tf.reshape(tf.stack([0.9, 0.3 + 0.6 * mean, 0.2]), [1, 3])
        return boxes, classes, scores, tf.constant([3.0])

    conv = tf.lite.TFLiteConverter.from_concrete_functions([detect.get_concrete_function()], detect)
    path.write_bytes(conv.convert())
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from camtune.core import config

    labels = config.load(config.ROOT / "params.yaml").labels.names
    path = tmp_path_factory.mktemp("model") / "model.tflite"
    build_fixed_detector(path, labels)
    (path.parent / "labelmap.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(labels)))
    (path.parent / "filters.yml").write_text("objects:\n  filters:\n    person:\n      threshold: 0.85\n")
    return path


def test_suggest_on_sample_data(tmp_path, sample_datasets, tiny_model):
    from camtune.model.tflite import TFLiteDetector

    root = tmp_path / "user"
    shutil.copytree(sample_datasets.user, root)
    params = sample_datasets.params
    names, parents = list(params.labels.names), dict(params.labels.attribute_parents)
    coco = load_coco(root, names, parents)
    # more unverified images, and one Frigate box exactly where the model sees its person
    for img in coco["images"][:5]:
        img["verified"], img["verified_at"] = False, None
    target = coco["images"][0]
    W, H = target["width"], target["height"]
    detector = TFLiteDetector(tiny_model)
    from camtune.model.images import load_rgb
    pred = detector.predict([load_rgb(root / target["file_name"])])[0]  # letterboxed back to the frame
    ymin, xmin, ymax, xmax = (float(v) for v in pred["boxes"][0])
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] != target["id"]]
    coco["annotations"].append({"id": 99999, "image_id": target["id"], "category_id": 1,
                                "bbox": [xmin * W, ymin * H, (xmax - xmin) * W, (ymax - ymin) * H],
                                "area": 1.0, "iscrowd": 0, "origin": "frigate", "score": 0.62})
    (root / "annotations.json").write_text(json.dumps(coco))
    coco = load_coco(root, names, parents)

    rules = SuggestIngestParams(score_floor=0.4, merge_iou=0.5)
    thresholds = sg.read_thresholds(tiny_model.parent / "filters.yml")
    assert thresholds == {"person": 0.85}
    new, ranking, counts = sg.suggest(root, coco, detector, tuple(detector.label_names), rules, thresholds)
    unverified = {i["id"] for i in coco["images"] if not i["verified"]}
    assert counts["images"] == len(unverified) >= 5
    assert [e["image_id"] for e in ranking] and {e["image_id"] for e in ranking} == unverified
    assert all(a["priority"] >= b["priority"] for a, b in zip(ranking, ranking[1:]))
    model_anns = [a for a in new["annotations"] if a.get("origin") == "model"]
    assert {a["image_id"] for a in model_anns} <= unverified
    cats = {c["id"]: c["name"] for c in new["categories"]}
    on_target = [cats[a["category_id"]] for a in model_anns if a["image_id"] == target["id"]]
    assert on_target.count("person") == 0          # merged with Frigate's box: no duplicate
    assert "car" not in {cats[a["category_id"]] for a in model_anns}  # below the floor
    assert all(0.4 < a["score"] <= 1 for a in model_anns)
    top = next(e for e in ranking if e["image_id"] == target["id"])
    # the Frigate person is confirmed (no disagreement); its 0.62 is away from the 0.85 threshold
    assert top["disagreement"] == 0.0 and top["frigate_boxes"] == 1
    assert verified_part(new) == verified_part(coco)
    # rerun: the previous suggestions are replaced, not stacked
    save_coco(root, coco, new)
    again, ranking2, _ = sg.suggest(root, load_coco(root, names, parents), detector, tuple(detector.label_names), rules,
                                  thresholds)
    assert again == new and ranking2 == ranking
    md = sg.report_markdown(ranking, counts, "tiny")
    assert "| 1 |" in md


def test_margin_and_disagreement_measures():
    assert sg.margin([(0.7, "person")], {}, 0.7) == 1.0
    assert sg.margin([(1.0, "person")], {}, 0.7) == pytest.approx(0.0)
    assert sg.margin([(0.35, "person")], {}, 0.7) == pytest.approx(0.5)
    import pandas as pd

    frigate = pd.DataFrame([{"x": 10.0, "y": 10.0, "w": 30.0, "h": 40.0, "label": "car"}])
    names, rules = ("person", "car"), SuggestIngestParams()
    hit = {"boxes": np.array([[0.1, 0.1, 0.5, 0.4]]), "classes": np.array([1]), "scores": np.array([0.8])}
    wrong = dict(hit, classes=np.array([0]))
    assert sg.disagreement(frigate, hit, 100, 100, names, rules) == 0.0
    assert sg.disagreement(frigate, wrong, 100, 100, names, rules) == 1.0
    assert sg.disagreement(frigate, dict(hit, scores=np.array([0.1])), 100, 100, names, rules) == 1.0
