"""The gate's Frigate-path checks (extra specs on per-image tallies, same paired bootstrap): each
one, pushed clearly over its threshold alone, fails; the absolute floor refuses a model Frigate
would see detect nothing even against an equally weak baseline."""
from __future__ import annotations

import numpy as np

from camtune.core.config import GateParams
from camtune.metrics import bootstrap
from camtune.steps.evaluate.gate import decide, frigate_specs, frigate_tallies
from tests.steps.evaluate.test_gate import stats, tables, world

GATE = GateParams(min_gain=0.0, max_global_drop=0.02, max_class_drop=0.1, class_min_boxes=5,
                  min_user_map50=0.1, min_global_map50=0.1, resamples=400, seed=3,
                  frigate_max_recall_drop=0.05, frigate_max_false_increase=5.0, min_user_frigate_recall=0.5)


def images(n, hit_rate, false_rate, seed):
    """Per-image tallies: 2 objects and 2 regions per image."""
    rng = np.random.default_rng(seed)
    return [{"image_id": i, "camera": "c", "objects": 2, "hits": int(rng.binomial(2, hit_rate)), "regions": 2,
             "false_detections": int(rng.binomial(2, false_rate))} for i in range(n)]


def run(frigate_tuned: dict, frigate_base: dict):
    tuned, base = world()
    evidence = {s: bootstrap.paired_draws({"tuned": stats(tuned[s]), "baseline": stats(base[s])},
                                          GATE.resamples, GATE.seed, key=s) for s in ("user", "global")}
    for s in ("user", "global"):
        evidence[f"frigate_{s}"] = bootstrap.paired_draws(
            {"tuned": frigate_tallies(frigate_tuned[s]), "baseline": frigate_tallies(frigate_base[s])},
            GATE.resamples, GATE.seed, key=f"frigate_{s}")
    sets = {"user": {"boxes": 22}, "global": {"boxes": 300}, "frigate_user": {}, "frigate_global": {}}
    g = decide(tables(tuned), tables(base), GATE, "base", evidence, sets, extra_specs=frigate_specs(GATE))
    return g, {c["name"]: c for c in g["checks"]}


def sides(user_hit=0.8, global_hit=0.8, user_false=0.02, global_false=0.02, seed=0):
    return {"user": images(80, user_hit, user_false, seed), "global": images(120, global_hit, global_false, seed + 1)}


BASE = sides(seed=10)


def test_frigate_checks_are_listed_and_pass_for_an_equal_or_better_model():
    g, c = run(sides(0.85, 0.8, seed=20), BASE)
    names = [x["name"] for x in g["checks"]][-5:]
    assert names == ["frigate_user_recall", "frigate_user_false", "frigate_global_recall",
                     "frigate_global_false", "frigate_user_floor"]
    assert c["frigate_user_floor"]["verdict"] == "passed" and c["frigate_user_floor"]["metric"] == "frigate_user.recall"
    assert not any(x["verdict"] == "failed" for n, x in c.items() if n.startswith("frigate"))


def test_recall_drop_fails():
    g, c = run(sides(user_hit=0.4, seed=20), BASE)
    assert c["frigate_user_recall"]["verdict"] == "failed" and "frigate_user_recall" in g["failed"]


def test_more_false_detections_fail():
    g, c = run(sides(global_false=0.4, seed=20), BASE)
    assert c["frigate_global_false"]["verdict"] == "failed"


def test_floor_refuses_a_model_that_detects_nothing_even_against_a_weak_baseline():
    weak = sides(0.0, 0.0, seed=30)
    g, c = run(sides(0.02, 0.02, seed=31), weak)
    assert c["frigate_user_floor"]["verdict"] == "failed" and not g["blessed"]
