"""The blessing gate (in the spirit of TFX's Evaluator): a tuned model is blessed only when it is
better on the user's cameras AND not worse on everybody else's, so a fine-tune on a few dozen
images cannot ship a model that overfit them. Every threshold is a param (`evaluate.gate`).

Inputs are metric tables as `coco_eval.evaluate_detections` returns them, one per evaluation set:
`{"user": {...}, "global": {...}}` for the tuned model and for the baseline (the user's last
blessed model when there is one, else the base model).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from camtune.config import GateParams


@dataclass(frozen=True)
class Check:
    name: str
    metric: str
    threshold: float | None
    observed: float | None
    passed: bool
    why: str

    def as_dict(self) -> dict:
        return asdict(self)


def _at_least(name: str, metric: str, observed: float | None, threshold: float | None, why: str) -> Check:
    # A value that cannot be measured (no ground truth) cannot prove anything: it fails.
    if observed is None or threshold is None:
        missing = "observed" if observed is None else "baseline"
        return Check(name, metric, threshold, observed, False, f"{why} ({missing} value not measurable)")
    threshold = round(float(threshold), 6)
    return Check(name, metric, threshold, float(observed), float(observed) >= threshold - 1e-9, why)


def checks(tuned: dict, baseline: dict, gate: GateParams) -> list[Check]:
    """Every check of the gate, in a stable order; the verdict is all(passed)."""
    tu, tg = tuned["user"], tuned["global"]
    bu, bg = baseline["user"], baseline["global"]
    out = [
        _at_least("user_gain", "user.map50", tu.get("map50"),
                  None if bu.get("map50") is None else bu["map50"] + gate.min_gain,
                  f"tuned mAP@.5 on the user's holdout must be >= baseline + {gate.min_gain}"),
        _at_least("global_drop", "global.map", tg.get("map"),
                  None if bg.get("map") is None else bg["map"] - gate.max_global_drop,
                  f"tuned mAP@[.5:.95] on the global set may be at most {gate.max_global_drop} below baseline"),
    ]
    # Per class on the global set: a gain on the user's cameras must not hide a regression on one
    # class elsewhere. Classes with too few boxes have a noisy AP and are not judged.
    base_pc, tuned_pc = bg.get("per_class", {}), tg.get("per_class", {})
    for label, b in base_pc.items():
        t = tuned_pc.get(label, {})
        if b.get("ap") is None or b.get("gt", 0) < gate.class_min_boxes:
            continue
        out.append(_at_least(f"class_drop[{label}]", f"global.per_class.{label}.ap", t.get("ap"),
                             b["ap"] - gate.max_class_drop,
                             f"AP of {label} on the global set may drop at most {gate.max_class_drop}"))
    out += [
        _at_least("user_floor", "user.map50", tu.get("map50"), gate.min_user_map50,
                  "absolute floor on the user's holdout mAP@.5"),
        _at_least("global_floor", "global.map50", tg.get("map50"), gate.min_global_map50,
                  "absolute floor on the global mAP@.5"),
    ]
    return out


def _at_most(name: str, metric: str, observed: float | None, threshold: float | None, why: str) -> Check:
    if observed is None or threshold is None:
        missing = "observed" if observed is None else "baseline"
        return Check(name, metric, threshold, observed, False, f"{why} ({missing} value not measurable)")
    threshold = round(float(threshold), 6)
    return Check(name, metric, threshold, float(observed), float(observed) <= threshold + 1e-9, why)


def frigate_checks(tuned: dict, baseline: dict, gate: GateParams) -> list[Check]:
    """The Frigate-path checks. `tuned`/`baseline` = {"user": s, "global": s}, s the
    `frigate_path.summarize` result at the advised min_score (same filters on both sides)."""
    out = []
    for key, title in (("user", "the user's holdout"), ("global", "the global set")):
        t, b = tuned[key]["overall"], baseline[key]["overall"]
        out.append(_at_least(
            f"frigate_{key}_recall", f"{key}.frigate.recall", t.get("recall"),
            None if b.get("recall") is None else b["recall"] - gate.frigate_max_recall_drop,
            f"Frigate-path recall at the advised min_score on {title} may be at most "
            f"{gate.frigate_max_recall_drop} below baseline"))
        out.append(_at_most(
            f"frigate_{key}_false", f"{key}.frigate.false_per_100_regions", t.get("false_per_100_regions"),
            None if b.get("false_per_100_regions") is None
            else b["false_per_100_regions"] + gate.frigate_max_false_increase,
            f"false detections per 100 regions on {title} may be at most "
            f"{gate.frigate_max_false_increase} above baseline"))
    out.append(_at_least("frigate_user_floor", "user.frigate.recall", tuned["user"]["overall"].get("recall"),
                         gate.min_user_frigate_recall,
                         "absolute floor on Frigate-path recall on the user's holdout (a model Frigate "
                         "would see detect nothing is never blessed)"))
    return out


def decide(tuned: dict, baseline: dict, gate: GateParams, baseline_name: str, *,
           frigate_tuned: dict | None = None, frigate_baseline: dict | None = None) -> dict:
    """gate.json: {"blessed", "baseline", "failed": [names], "checks": [{name, metric, threshold,
    observed, passed, why}]}. Not blessed is a normal outcome; publish refuses it. With Frigate-path
    summaries, their checks are judged too."""
    cs = checks(tuned, baseline, gate)
    if frigate_tuned is not None and frigate_baseline is not None:
        cs += frigate_checks(frigate_tuned, frigate_baseline, gate)
    failed = [c.name for c in cs if not c.passed]
    return {"blessed": not failed, "baseline": baseline_name, "failed": failed,
            "checks": [c.as_dict() for c in cs]}
