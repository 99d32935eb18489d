"""Threshold advice from PR curves, and the Frigate YAML it is written as."""
from __future__ import annotations

import yaml

from camtune.core.config import ThresholdParams
from camtune.steps.evaluate.thresholds import frigate_yaml, recommend, score_at_precision

P = ThresholdParams(min_score_precision=0.5, threshold_precision=0.8, min_boxes=10,
                    min_score_range=(0.3, 0.9), threshold_range=(0.5, 0.95),
                    fallback_min_score=0.5, fallback_threshold=0.7)

# interpolated precision falls as recall grows while the score needed falls too
CURVE = {"recall": [0.0, 0.25, 0.5, 0.75, 1.0], "precision": [1.0, 0.9, 0.8, 0.6, 0.4],
         "scores": [0.97, 0.92, 0.85, 0.7, 0.4]}


def metrics(boxes: dict[str, int], curves: dict[str, dict]) -> dict:
    return {"per_class": {k: {"gt": v} for k, v in boxes.items()}, "pr": curves}


def test_score_at_precision_takes_the_highest_recall_meeting_the_target():
    assert score_at_precision(CURVE, 0.8) == 0.85
    assert score_at_precision(CURVE, 0.5) == 0.7
    assert score_at_precision(CURVE, 0.99) == 0.97
    assert score_at_precision({"precision": [0.3, 0.0], "scores": [0.9, 0.0]}, 0.5) is None
    # unreached recall points (precision 0, score 0) never count, even for a target of 0
    assert score_at_precision({"precision": [0.6, 0.0], "scores": [0.8, 0.0]}, 0.0) == 0.8


def test_recommend_user_first_then_global_then_fallback_and_attributes_get_no_threshold():
    user = metrics({"person": 12, "face": 3, "dog": 2}, {"person": CURVE, "face": CURVE, "dog": CURVE})
    glob = metrics({"person": 80, "face": 40, "dog": 5}, {
        "person": CURVE, "dog": CURVE,
        "face": {"recall": [0, 1], "precision": [0.55, 0.55], "scores": [0.95, 0.2]}})
    adv = {a.label: a for a in recommend(["person", "face", "dog"], ["face"],
                                         [("user holdout", user), ("global eval", glob)], P)}
    assert (adv["person"].source, adv["person"].min_score, adv["person"].threshold) == ("user holdout", 0.7, 0.85)
    assert adv["face"].source == "global eval" and adv["face"].threshold is None
    assert adv["face"].min_score == 0.3  # 0.2 clipped up to the range's floor
    assert (adv["dog"].source, adv["dog"].min_score, adv["dog"].threshold) == ("fallback", 0.5, 0.7)
    assert "5 boxes" in adv["dog"].note


def test_unreached_target_is_as_strict_as_allowed_and_threshold_not_below_min_score():
    poor = {"recall": [0, 0.5], "precision": [0.6, 0.6], "scores": [0.99, 0.95]}
    adv = recommend(["car"], [], [("global eval", metrics({"car": 30}, {"car": poor}))], P)[0]
    assert adv.min_score == 0.9  # 0.95 clipped to the range's top
    assert adv.threshold == 0.95  # precision 0.8 never reached
    assert "0.8 not reached" in adv.note


def test_frigate_yaml_has_the_seed_shape():
    user = metrics({"person": 20, "license_plate": 20}, {"person": CURVE, "license_plate": CURVE})
    adv = recommend(["person", "license_plate", "deer"], ["license_plate"], [("user holdout", user)], P)
    text = frigate_yaml(adv, header=["recommended for u1"])
    assert text.startswith("# recommended for u1\n")
    assert "# fallback: only 0 boxes" in text  # the fallback says so in the YAML
    doc = yaml.safe_load(text)
    assert doc == {"objects": {
        "track": ["person", "license_plate", "deer"],
        "filters": {"person": {"min_score": 0.7, "threshold": 0.85},
                    "license_plate": {"min_score": 0.7},
                    "deer": {"min_score": 0.5, "threshold": 0.7}}}}
