"""The blessing gate on constructed metric tables: a healthy table is blessed, and each check,
pushed over its threshold alone, flips the verdict and is the one named."""
from __future__ import annotations

import copy

import pytest

from camtune.config import GateParams
from camtune.evaluation.gate import decide

GATE = GateParams(min_gain=0.02, max_global_drop=0.02, max_class_drop=0.1, class_min_boxes=5,
                  min_user_map50=0.3, min_global_map50=0.3)


def table(user50: float, global_map: float, global50: float, person_ap: float, dog_ap: float | None = 0.4,
          dog_boxes: int = 20) -> dict:
    return {
        "user": {"map": user50 / 2, "map50": user50, "per_class": {}},
        "global": {"map": global_map, "map50": global50, "per_class": {
            "person": {"ap": person_ap, "ap50": 0.8, "gt": 50},
            "dog": {"ap": dog_ap, "ap50": None, "gt": dog_boxes},
            "deer": {"ap": None, "ap50": None, "gt": 0},
        }},
    }


BASE = table(user50=0.50, global_map=0.40, global50=0.60, person_ap=0.50)
HEALTHY = table(user50=0.60, global_map=0.39, global50=0.60, person_ap=0.45)


def test_healthy_tuned_model_is_blessed():
    g = decide(HEALTHY, BASE, GATE, "base")
    assert g["blessed"] and g["failed"] == [] and g["baseline"] == "base"
    names = [c["name"] for c in g["checks"]]
    assert names == ["user_gain", "global_drop", "class_drop[person]", "class_drop[dog]", "user_floor",
                     "global_floor"]  # deer has no ground truth: not judged
    gain = g["checks"][0]
    assert gain == {"name": "user_gain", "metric": "user.map50", "threshold": pytest.approx(0.52),
                    "observed": 0.6, "passed": True, "why": gain["why"]}


@pytest.mark.parametrize("edit, check", [
    (lambda t: t["user"].update(map50=0.51), "user_gain"),                    # gain below min_gain
    (lambda t: t["global"].update(map=0.37), "global_drop"),                  # global mAP fell 0.03
    (lambda t: t["global"]["per_class"]["person"].update(ap=0.39), "class_drop[person]"),
    (lambda t: t["global"]["per_class"]["dog"].update(ap=None), "class_drop[dog]"),  # not measurable
    (lambda t: t["global"].update(map50=0.29), "global_floor"),
])
def test_each_check_alone_flips_the_verdict(edit, check):
    tuned = copy.deepcopy(HEALTHY)
    edit(tuned)
    g = decide(tuned, BASE, GATE, "base")
    assert not g["blessed"] and g["failed"] == [check]


def test_user_floor_alone_flips_the_verdict():
    # a baseline this weak makes the gain check pass while the absolute floor refuses
    weak = copy.deepcopy(BASE)
    weak["user"]["map50"] = 0.1
    tuned = copy.deepcopy(HEALTHY)
    tuned["user"]["map50"] = 0.25
    g = decide(tuned, weak, GATE, "registry:m1")
    assert g["failed"] == ["user_floor"] and g["baseline"] == "registry:m1"


def test_classes_with_few_boxes_are_not_judged():
    base = table(0.5, 0.4, 0.6, 0.5, dog_ap=0.9, dog_boxes=4)
    tuned = table(0.6, 0.4, 0.6, 0.5, dog_ap=0.0, dog_boxes=4)
    g = decide(tuned, base, GATE, "base")
    assert g["blessed"] and "class_drop[dog]" not in [c["name"] for c in g["checks"]]


def test_unmeasurable_user_holdout_is_not_blessed():
    tuned = copy.deepcopy(HEALTHY)
    tuned["user"]["map50"] = None  # holdout without a single box
    g = decide(tuned, BASE, GATE, "base")
    assert not g["blessed"] and set(g["failed"]) == {"user_gain", "user_floor"}
