"""Every-object-labeled audit with a real TFLite model, run through the export step's Frigate-style
runner. The test model is a tiny tf.function converted by TFLiteConverter: it "detects" the
bounding box of pure-red pixels as a person (score 0.9) and always adds a weak dog (score 0.2), and
returns Frigate's four tensors by position."""
from __future__ import annotations

import numpy as np
import pytest

from camtune.steps.validate import check_audit, check_files, prepare, validate
from camtune.core.config import AuditParams
from camtune.steps.validate.audit import unlabeled

from .builders import LABELS, cat_id, make_dataset, save, tree_hash

SIZE = 32


def build_red_detector(path):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, SIZE, SIZE, 3], tf.uint8)])
    def detect(image):
        px = tf.cast(image[0], tf.int32)
        red = tf.cast((px[..., 0] > 200) & (px[..., 1] < 60) & (px[..., 2] < 60), tf.float32)  # [H,W]
        rows, cols = tf.reduce_max(red, axis=1), tf.reduce_max(red, axis=0)
        idx = tf.range(SIZE, dtype=tf.float32)
        big = tf.constant(float(SIZE))
        ymin = tf.reduce_min(idx * rows + big * (1 - rows))
        ymax = tf.reduce_max((idx + 1) * rows)
        xmin = tf.reduce_min(idx * cols + big * (1 - cols))
        xmax = tf.reduce_max((idx + 1) * cols)
        found = tf.reduce_max(red)
        box = tf.stack([ymin, xmin, ymax, xmax]) / SIZE * found
        boxes = tf.reshape(tf.concat([box, [0.0, 0.0, 0.25, 0.25]], 0), [1, 2, 4])
        classes = tf.constant([[0.0, float(LABELS.index("dog"))]])
        scores = tf.reshape(tf.stack([0.9 * found, 0.2]), [1, 2])
        count = tf.constant([2.0])
        return boxes, classes, scores, count

    conv = tf.lite.TFLiteConverter.from_concrete_functions([detect.get_concrete_function()], detect)
    path.write_bytes(conv.convert())
    return path


@pytest.fixture(scope="module")
def red_model(tmp_path_factory):
    return build_red_detector(tmp_path_factory.mktemp("model") / "red.tflite")


def paint_red(root, file_name, box):
    """Draw a pure red rectangle [x, y, w, h] into the image (PNG, so the colour survives)."""
    from PIL import Image

    path = root / file_name
    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB")).copy()
    x, y, w, h = box
    arr[y:y + h, x:x + w] = (255, 0, 0)
    Image.fromarray(arr).save(path, "PNG")


@pytest.fixture
def red_dataset(tmp_path):
    """Image 1 has a red 'person' at [16, 8, 32, 32] (model pixels 8..24 at 32x32 after letterbox)."""
    root = tmp_path / "ds"
    coco = make_dataset(root)
    paint_red(root, "images/0001.jpg", (16, 8, 32, 32))  # PNG content under a .jpg name is fine
    _, anns = coco["images"], coco["annotations"]
    anns[:] = [a for a in anns if a["image_id"] != 1]
    anns.append({"id": 1000, "image_id": 1, "category_id": cat_id("person"), "bbox": [16, 8, 32, 32]})
    save(root, coco)
    return root, coco


def test_unlabeled_matches_by_label_and_iou():
    import pandas as pd

    rules = AuditParams(score_threshold=0.5, iou_threshold=0.5)
    det = {"boxes": np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]), "classes": np.array([0, 0]),
           "scores": np.array([0.9, 0.4])}
    person = pd.DataFrame({"x": [0.0], "y": [0.0], "w": [50.0], "h": [50.0], "label": ["person"]})
    assert unlabeled(det, person, 100, 100, LABELS, rules) == []
    [(label, score, _, best)] = unlabeled(det, person.assign(label="dog"), 100, 100, LABELS, rules)
    assert (label, best) == ("person", 0.0) and score == pytest.approx(0.9)
    assert len(unlabeled(det, person.iloc[0:0], 100, 100, LABELS, rules)) == 1


def test_labeled_object_passes_the_audit(red_dataset, red_model, params_for):
    root, _ = red_dataset
    before = tree_hash(root)
    report = validate(params_for(root, **{"validate.reference_model": str(red_model)}))
    audit = report.checks["audit"]
    assert audit.status == "passed", [f.line() for f in report.findings]
    assert audit.details["images_audited"] == 12 and audit.details["detections_above_threshold"] == 1
    assert tree_hash(root) == before


@pytest.mark.parametrize("policy,severity", [("warn", "warning"), ("fail", "error")])
def test_unlabeled_object_is_reported_by_policy(red_dataset, red_model, params_for, policy, severity):
    root, coco = red_dataset
    coco["annotations"] = [a for a in coco["annotations"] if a["id"] != 1000]
    save(root, coco)
    report = validate(params_for(root, **{"validate.reference_model": str(red_model),
                                          "validate.audit.policy": policy}))
    [f] = [f for f in report.findings if f.rule == "UNLABELED_OBJECT"]
    assert (f.severity, f.image_id) == (severity, 1)
    assert "person" in f.message and "[16, 8, 32, 32]" in f.message
    # the same figures as data, which report.json carries (the report draws the box from them)
    assert f.data["label"] == "person" and f.data["bbox"] == [16, 8, 32, 32]
    assert 0 < f.data["score"] <= 1 and f.data["best_iou"] < f.data["iou_threshold"]
    assert [d["data"] for d in report.to_dict()["findings"] if d["rule"] == "UNLABELED_OBJECT"] == [f.data]
    assert report.passed is (policy == "warn")


def test_no_reference_model_is_skipped_never_passed(red_dataset, params_for):
    root, _ = red_dataset
    ctx = prepare(params_for(root))
    result = check_audit(ctx, check_files(ctx))
    assert result.status == "skipped" and "NOT audited" in result.skipped


def test_unusable_reference_model_is_an_error(red_dataset, params_for, tmp_path):
    root, _ = red_dataset
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    for model in (bad, tmp_path / "missing.tflite"):
        ctx = prepare(params_for(root, **{"validate.reference_model": str(model)}))
        result = check_audit(ctx, check_files(ctx))
        assert [f.rule for f in result.findings] == ["AUDIT_MODEL_UNUSABLE"], result.findings
