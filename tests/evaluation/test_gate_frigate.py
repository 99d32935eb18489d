"""The gate's Frigate-path checks: each one, pushed over its threshold alone, flips the verdict."""
from __future__ import annotations

import copy

import pytest

from camtune.config import GateParams
from camtune.evaluation.gate import decide
from tests.evaluation.test_gate import BASE, HEALTHY

GATE = GateParams(min_gain=0.02, max_global_drop=0.02, max_class_drop=0.1, class_min_boxes=5,
                  min_user_map50=0.3, min_global_map50=0.3, frigate_max_recall_drop=0.05,
                  frigate_max_false_increase=2.0, min_user_frigate_recall=0.5)


def fp(user_recall, global_recall, user_false=1.0, global_false=1.0):
    return {"user": {"overall": {"recall": user_recall, "false_per_100_regions": user_false}},
            "global": {"overall": {"recall": global_recall, "false_per_100_regions": global_false}}}


FP_BASE = fp(0.6, 0.6)
FP_GOOD = fp(0.7, 0.58, 2.0, 3.0)


def test_frigate_checks_are_judged_and_listed():
    g = decide(HEALTHY, BASE, GATE, "base", frigate_tuned=FP_GOOD, frigate_baseline=FP_BASE)
    assert g["blessed"], g["failed"]
    names = [c["name"] for c in g["checks"]][-5:]
    assert names == ["frigate_user_recall", "frigate_user_false", "frigate_global_recall",
                     "frigate_global_false", "frigate_user_floor"]
    floor = g["checks"][-1]
    assert floor["metric"] == "user.frigate.recall" and floor["threshold"] == 0.5 and floor["observed"] == 0.7


@pytest.mark.parametrize("tuned, failed", [
    (fp(0.54, 0.6), ["frigate_user_recall"]),                 # 0.54 < 0.6 - 0.05
    (fp(0.7, 0.54), ["frigate_global_recall"]),
    (fp(0.7, 0.6, user_false=3.5), ["frigate_user_false"]),   # 3.5 > 1 + 2
    (fp(0.7, 0.6, global_false=3.5), ["frigate_global_false"]),
    (fp(None, 0.6), ["frigate_user_recall", "frigate_user_floor"]),   # not measurable: fails
])
def test_each_frigate_check_flips_the_verdict(tuned, failed):
    g = decide(HEALTHY, BASE, GATE, "base", frigate_tuned=tuned, frigate_baseline=FP_BASE)
    assert not g["blessed"] and g["failed"] == failed


def test_absolute_floor_refuses_a_model_frigate_sees_detect_nothing_even_against_a_weak_baseline():
    weak = fp(0.0, 0.0, 0.0, 0.0)
    g = decide(HEALTHY, BASE, GATE, "base", frigate_tuned=fp(0.02, 0.01, 0.0, 0.0), frigate_baseline=weak)
    assert g["failed"] == ["frigate_user_floor"]


def test_without_frigate_summaries_only_coco_checks():
    g = decide(HEALTHY, BASE, GATE, "base")
    assert not any(c["name"].startswith("frigate") for c in g["checks"])
