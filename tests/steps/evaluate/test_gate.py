"""The gate's three verdicts on constructed per-image figures, bootstrapped for real: per-image
values stand in for a model's contributions (a mean over drawn images, via RatioOfSums)."""
from __future__ import annotations

import numpy as np
import pytest

from camtune.core.config import GateParams
from camtune.metrics import bootstrap
from camtune.steps.evaluate.gate import decide

GATE = GateParams(min_gain=0.0, max_global_drop=0.02, max_class_drop=0.1, class_min_boxes=5,
                  min_user_map50=0.1, min_global_map50=0.1, resamples=400, seed=3)


def stats(per_image: dict[str, np.ndarray]) -> bootstrap.RatioOfSums:
    n = len(next(iter(per_image.values())))
    return bootstrap.RatioOfSums(np.arange(n), {k: (np.asarray(v, float), np.ones(n)) for k, v in per_image.items()})


def tables(models: dict) -> dict:
    """The metric tables `specs` reads (which classes exist, with how many boxes)."""
    return {"user": {"map50": 0.5}, "global": {"per_class": {
        "person": {"ap": float(models["global"]["ap[person]"].mean()), "gt": 40},
        "car": {"ap": float(models["global"]["ap[car]"].mean()), "gt": 30},
        "deer": {"ap": None, "gt": 0}}}}


def world(n_user=40, n_global=60, user_gain=0.1, person_drop=0.0, user_noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    bu = rng.uniform(0.3, 0.7, n_user)
    bg = rng.uniform(0.3, 0.7, n_global)
    base = {"user": {"map50": bu}, "global": {"map": bg, "map50": bg + 0.1, "ap[person]": bg,
                                              "ap[car]": np.zeros(n_global)}}
    tuned = {"user": {"map50": bu + user_gain + rng.normal(0, user_noise, n_user)},
             "global": {"map": bg.copy(), "map50": bg + 0.1, "ap[person]": bg - person_drop,
                        "ap[car]": np.zeros(n_global)}}
    return tuned, base


def run(tuned, base, gate=GATE):
    evidence = {s: bootstrap.paired_draws({"tuned": stats(tuned[s]), "baseline": stats(base[s])},
                                          gate.resamples, gate.seed, key=s) for s in ("user", "global")}
    sets = {"user": {"boxes": 22, "cameras": ["front_door"]}, "global": {"boxes": 300}}
    return decide(tables(tuned), tables(base), gate, "base", evidence, sets)


def checks(g):
    return {c["name"]: c for c in g["checks"]}


def test_better_on_user_and_unchanged_elsewhere_is_blessed():
    g = run(*world())
    assert g["verdict"] == "blessed" and g["blessed"] and g["failed"] == []
    assert g["deciding"] == ["user_gain", "global_drop"]
    c = checks(g)
    # deer has no ground truth: not judged; car's baseline AP is 0: no class_loss to judge
    assert [*c] == ["user_gain", "global_drop", "class_drop[person]", "class_drop[car]", "class_loss[person]",
                    "user_floor", "global_floor"]
    assert c["class_loss[person]"]["verdict"] == "passed"
    gain = c["user_gain"]
    assert gain["verdict"] == "passed" and gain["interval"][0] > 0 and gain["point"] == pytest.approx(0.1, abs=0.03)
    assert set(gain) >= {"point", "interval", "threshold", "verdict", "why"}
    # a drop check against a baseline AP of 0 cannot fail: uninformative, never "passed"
    assert c["class_drop[car]"]["verdict"] == "uninformative" and not c["class_drop[car]"]["passed"]
    assert "cannot fail: the baseline is 0.000" in c["class_drop[car]"]["why"] and g["uninformative"] == ["class_drop[car]"]


def test_measurably_worse_on_one_class_is_not_blessed_and_named():
    g = run(*world(person_drop=0.3))
    assert g["verdict"] == "not_blessed" and not g["blessed"]
    assert g["failed"] == g["deciding"] == ["class_drop[person]", "class_loss[person]"]
    c = checks(g)["class_drop[person]"]
    assert c["interval"][1] < c["threshold"] == -0.1 and "class_drop[person]" in g["summary"]


def test_a_class_the_baseline_knows_a_little_and_the_tuned_model_forgets_fails_on_its_loss():
    # baseline person AP ~0.11, tuned 0 (a label shift): an absolute drop of 0.11 cannot clear the
    # 0.1 tolerance measurably, but losing all of it is measurable
    tuned, base = world()
    few = np.zeros_like(base["global"]["ap[person]"])
    few[::9] = 1.0                     # found on 7 of 60 images: AP ~0.12, a wide interval
    base["global"]["ap[person]"] = few
    tuned["global"]["ap[person]"] = np.zeros_like(few)
    g = run(tuned, base)
    c = checks(g)
    assert c["class_drop[person]"]["verdict"] != "failed"
    loss = c["class_loss[person]"]
    assert loss["verdict"] == "failed" and loss["interval"][1] < 0 and "keep at least 50%" in loss["why"]
    assert g["verdict"] == "not_blessed" and g["failed"] == ["class_loss[person]"]


def test_class_loss_is_not_judged_below_its_minimum_baseline_ap():
    tuned, base = world()
    base["global"]["ap[person]"] = np.full_like(base["global"]["ap[person]"], 0.04)
    tuned["global"]["ap[person]"] = np.zeros_like(base["global"]["ap[person]"])
    assert "class_loss[person]" not in checks(run(tuned, base))


def test_small_noisy_user_set_is_inconclusive_and_says_what_would_resolve_it():
    g = run(*world(n_user=12, user_gain=0.03, user_noise=0.3, seed=1))
    assert g["verdict"] == "inconclusive" and not g["blessed"] and g["failed"] == []
    c = checks(g)["user_gain"]
    lo, hi = c["interval"]
    assert lo <= 0 < hi and c["verdict"] == "inconclusive" and g["deciding"][0] == "user_gain"
    need = c["resolve"]["images"]
    assert need > 12
    # the advice scales the interval's half-width to the difference to resolve: n * (h / effect)^2
    effect = max(abs(c["point"]), GATE.resolve_effect)
    assert need == pytest.approx(12 * ((hi - lo) / 2 / effect) ** 2, rel=0.01, abs=1)
    assert "user holdout has 12 images with 22 boxes" in g["advice"][0] and "front_door" in g["advice"][0]


def test_a_set_below_min_images_is_inconclusive_even_when_its_interval_looks_clear():
    # 3 holdout images, the tuned model worse on each: the interval excludes 0, but 3 images have
    # only 10 distinct resamples (a planted 3-image holdout was refused this way)
    g = run(*world(n_user=3, user_gain=-0.05, user_noise=0.0))
    c = checks(g)["user_gain"]
    assert c["interval"][1] < 0 and c["verdict"] == "inconclusive"
    assert c["resolve"]["images"] == GATE.min_images == 10 and "needs at least 10" in c["why"]
    assert g["verdict"] == "inconclusive" and g["failed"] == []


def test_identical_models_are_never_refused_and_never_blessed():
    tuned, base = world(user_gain=0.0, user_noise=0.0)
    g = run(tuned, base)
    assert g["verdict"] == "inconclusive"
    assert checks(g)["user_gain"]["interval"] == [0.0, 0.0]
    assert "agree on every resample" in checks(g)["user_gain"]["why"]


def test_a_verdict_resting_only_on_uninformative_checks_is_inconclusive():
    tuned, base = world()
    # no ground truth on the user's holdout: nothing there is measurable
    tuned["user"]["map50"] = np.full(40, np.nan)
    base["user"]["map50"] = np.full(40, np.nan)
    g = run(tuned, base)
    c = checks(g)
    assert c["user_gain"]["verdict"] == c["user_floor"]["verdict"] == "uninformative"
    assert g["verdict"] == "inconclusive" and "user_gain" in g["deciding"]


def test_same_seed_same_verdict_and_intervals():
    a, b = run(*world(n_user=8, user_noise=0.2)), run(*world(n_user=8, user_noise=0.2))
    assert a == b
    other = run(*world(n_user=8, user_noise=0.2), gate=GATE.model_copy(update={"seed": 4}))
    assert checks(other)["user_gain"]["interval"] != checks(a)["user_gain"]["interval"]


def test_ratio_of_sums_checks_plug_in_as_extra_specs():
    """A Frigate-path-like recall (hits / objects per image) judged like any other check."""
    from camtune.steps.evaluate.gate import CheckSpec

    tuned, base = world()
    objects = np.full(60, 3.0)
    ids = np.arange(60)
    hits_b = np.full(60, 2.0)
    hits_t = np.where(np.arange(60) % 2 == 0, 0.0, 1.0)   # the tuned model misses most objects
    evidence = {s: bootstrap.paired_draws({"tuned": stats(tuned[s]), "baseline": stats(base[s])},
                                          GATE.resamples, GATE.seed, key=s) for s in ("user", "global")}
    evidence["frigate"] = bootstrap.paired_draws(
        {"tuned": bootstrap.RatioOfSums(ids, {"recall": (hits_t, objects)}),
         "baseline": bootstrap.RatioOfSums(ids, {"recall": (hits_b, objects)})}, GATE.resamples, GATE.seed, "frigate")
    spec = CheckSpec("frigate_recall", "frigate", "recall", "drop", -0.05, "Frigate-path recall may drop at most 0.05")
    g = decide(tables(tuned), tables(base), GATE, "base", evidence, extra_specs=[spec])
    assert g["verdict"] == "not_blessed" and g["failed"] == ["frigate_recall"]
    c = checks(g)["frigate_recall"]
    assert c["point"] == pytest.approx(1 / 6 - 2 / 3) and c["interval"][1] < -0.05
