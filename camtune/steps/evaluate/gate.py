"""The blessing gate (in the spirit of TFX's Evaluator, with confidence intervals): a tuned model is
blessed only when it is better on the user's cameras AND not worse on everybody else's, each at the
chosen confidence, so a fine-tune on a few dozen images cannot ship a model that overfit them, and
a lucky draw of 15 images cannot bless one either. Every threshold is a param (`evaluate.gate`).

Checks are data (`CheckSpec`: which set, which statistic, how compared, against what). Each is
judged on a paired bootstrap over the set's images (`bootstrap.paired_draws`: the tuned model and
the baseline on the same resamples):

- `passed`: the whole interval is on the right side of the threshold (strictly, for a gain);
- `failed`: the whole interval is on the wrong side: measurably worse;
- `inconclusive`: the interval straddles the threshold: the set is too small to tell;
- `uninformative`: the check cannot fail (a drop check against a baseline of about 0, a floor of
  0), the interval spans the whole possible range, or the figure is not measurable (no ground
  truth). It is no evidence either way and never counts as passed.

Verdict: `not_blessed` when any check failed (naming it); else `blessed` when every check that is
not uninformative passed and the required ones (the user gain, the global drop) are among them;
else `inconclusive`, with how many images would resolve it (the interval's width scales as
1/sqrt(images)).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from camtune.core.config import GateParams
from camtune.metrics import bootstrap

SET_TITLES = {"user": "the user holdout", "global": "the global evaluation set",
              "incumbent_user": "the user holdout (against the incumbent)",
              "incumbent_global": "the global evaluation set (against the incumbent)"}


@dataclass(frozen=True)
class CheckSpec:
    name: str
    set: str                 # evaluation set: "user" | "global"
    statistic: str           # a `Statistics` name: "map", "map50", "ap[<label>]", a tally ratio, ...
    kind: str                # "gain": tuned - baseline > threshold; "drop": tuned - baseline >= threshold;
    threshold: float         # "floor": tuned >= threshold; "keep": tuned - keep x baseline >= threshold (0)
    why: str
    required: bool = False   # blessing needs this one passed (not merely uninformative)
    keep: float = 1.0        # "keep": the share of the baseline's value the tuned model must keep

    @property
    def metric(self) -> str:
        return f"{self.set}.{self.statistic}"


@dataclass(frozen=True)
class Check:
    name: str
    metric: str
    kind: str
    threshold: float
    point: float | None              # delta (gain/drop) or tuned value (floor) on the whole set
    interval: list[float] | None     # [lo, hi] at the gate's confidence
    tuned: float | None
    baseline: float | None
    verdict: str                     # passed | failed | inconclusive | uninformative
    why: str
    required: bool = False
    resolve: dict | None = None      # inconclusive: images that would resolve it

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def specs(tuned: dict, baseline: dict, gate: GateParams) -> list[CheckSpec]:
    """Every check of the gate, in a stable order, from the metric tables (`evaluate_detections`
    output per set: {"user": {...}, "global": {...}}) of the tuned model and the baseline."""
    out = [
        CheckSpec("user_gain", "user", "map50", "gain", gate.min_gain,
                  f"tuned mAP@.5 on the user's holdout must beat the baseline by more than {gate.min_gain}",
                  required=True),
        CheckSpec("global_drop", "global", "map", "drop", -gate.max_global_drop,
                  f"tuned mAP@[.5:.95] on the global set may be at most {gate.max_global_drop} below the baseline",
                  required=True),
    ]
    # Per class on the global set: a gain on the user's cameras must not hide a regression on one
    # class elsewhere. Classes with too few boxes are not judged at all. Nor may a class lose most of
    # what it had: one the baseline knows only a little (AP 0.11) can lose all of it and still never
    # drop measurably more than an absolute 0.1 (a label shift did).
    keep = 1.0 - gate.max_class_loss
    drops, losses = [], []
    for label, b in baseline["global"].get("per_class", {}).items():
        if b.get("ap") is None or b.get("gt", 0) < gate.class_min_boxes:
            continue
        drops.append(CheckSpec(f"class_drop[{label}]", "global", f"ap[{label}]", "drop", -gate.max_class_drop,
                               f"AP of {label} on the global set may drop at most {gate.max_class_drop}"))
        if b["ap"] >= gate.class_loss_min_ap:
            losses.append(CheckSpec(f"class_loss[{label}]", "global", f"ap[{label}]", "keep", 0.0,
                                    f"AP of {label} on the global set must keep at least {keep:.0%} of the "
                                    f"baseline's (tuned - {keep:g} x baseline >= 0)", keep=keep))
    out += drops + losses
    out += [
        CheckSpec("user_floor", "user", "map50", "floor", gate.min_user_map50,
                  "absolute floor on the user's holdout mAP@.5"),
        CheckSpec("global_floor", "global", "map50", "floor", gate.min_global_map50,
                  "absolute floor on the global mAP@.5"),
    ]
    return out


def _finite(v) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def judge(spec: CheckSpec, evidence: dict, confidence: float, sets: dict | None = None,
          resolve_effect: float = 0.05, min_images: int = 1) -> Check:
    """One check on one set's paired draws ({"images", "points": {model: {stat}}, "draws": ...})."""
    pts, draws = evidence["points"], evidence["draws"]
    t, b = _finite(pts["tuned"].get(spec.statistic)), _finite(pts["baseline"].get(spec.statistic))
    base = dict(name=spec.name, metric=spec.metric, kind=spec.kind, threshold=round(spec.threshold, 6),
                tuned=t, baseline=b, required=spec.required)
    if t is None or (spec.kind != "floor" and b is None):
        return Check(**base, point=None, interval=None, verdict="uninformative",
                     why=f"{spec.why}; not measurable on {SET_TITLES.get(spec.set, spec.set)} (no ground truth)")
    if spec.kind == "floor":
        point, d, feasible = t, draws["tuned"][spec.statistic], (0.0, 1.0)
    else:
        w = spec.keep if spec.kind == "keep" else 1.0
        point = t - w * b
        d = draws["tuned"][spec.statistic] - w * draws["baseline"][spec.statistic]
        feasible = (-w * b, 1.0 - w * b)
    ci = bootstrap.interval(d, confidence)
    base.update(point=round(point, 6))
    if ci is None:
        return Check(**base, interval=None, verdict="uninformative",
                     why=f"{spec.why}; not measurable on most resamples (too little ground truth)")
    lo, hi = ci
    base.update(interval=[round(lo, 6), round(hi, 6)])
    thr, eps = spec.threshold, 1e-9
    if thr <= feasible[0] + eps:
        what = {"drop": f"the baseline is {b:.3f}, so it cannot drop more than the allowed {-thr:.3f}",
                "keep": f"the baseline is {b:.3f}, so there is nothing to lose",
                "gain": f"the baseline is {b:.3f}, so nothing can score measurably below it",
                "floor": f"the floor {thr:.3f} is the lowest possible value"}[spec.kind]
        return Check(**base, verdict="uninformative", why=f"{spec.why}; cannot fail: {what}")
    if lo <= feasible[0] + eps and hi >= feasible[1] - eps:
        return Check(**base, verdict="uninformative",
                     why=f"{spec.why}; the interval spans the whole possible range: no evidence either way")
    pct = f"{confidence:.0%}"
    n = evidence["images"]
    if n < min_images:
        # a 3-image set has 10 distinct resamples: its percentile interval can exclude anything
        title = SET_TITLES.get(spec.set, spec.set)
        advice = (f"{title} has {n} image{'s' if n != 1 else ''}; a bootstrap interval needs at least "
                  f"{min_images} (evaluate.gate.min_images)")
        return Check(**base, verdict="inconclusive", resolve={"images": min_images, "effect": None, "advice": advice},
                     why=f"{spec.why}; {advice}")
    if (lo > thr + eps) if spec.kind == "gain" else (lo >= thr - eps):
        return Check(**base, verdict="passed", why=f"{spec.why}; the whole {pct} interval clears {thr:+.3f}")
    if hi < thr - eps:
        return Check(**base, verdict="failed", why=f"{spec.why}; the whole {pct} interval is below {thr:+.3f}")
    res = _resolve(spec, evidence["images"], lo, hi, point, thr, (sets or {}).get(spec.set, {}), resolve_effect)
    return Check(**base, verdict="inconclusive", resolve=res,
                 why=f"{spec.why}; the {pct} interval straddles {thr:+.3f}: {res['advice']}")


def _resolve(spec: CheckSpec, n: int, lo: float, hi: float, point: float, thr: float, info: dict,
             resolve_effect: float) -> dict:
    """Images that would make the interval clear the threshold, from this bootstrap's variance:
    the half-width shrinks as 1/sqrt(images), so it must shrink to the distance between the
    point estimate and the threshold (at least `resolve_effect`, a difference worth resolving)."""
    half = (hi - lo) / 2.0
    effect = max(abs(point - thr), resolve_effect)
    title = SET_TITLES.get(spec.set, spec.set)
    boxes = info.get("boxes")
    has = f"{title} has {n} images" + (f" with {boxes} boxes" if boxes is not None else "")
    if half <= 0:
        return {"images": None, "effect": effect,
                "advice": f"{has}; the two models agree on every resample (no difference to resolve)"}
    need = max(n + 1, math.ceil(n * (half / effect) ** 2))
    where = ""
    cams = info.get("cameras") or []
    if spec.set == "user" and cams:
        where = f" of camera{'s' if len(cams) > 1 else ''} {', '.join(cams)}"
    kind = "verified images" if spec.set == "user" else "images"
    return {"images": need, "effect": round(effect, 4),
            "advice": f"{has}; at this variance about {need} {kind}{where} would resolve a difference of "
                      f"{effect:.2f} from the threshold"}


def decide(tuned: dict, baseline: dict, gate: GateParams, baseline_name: str, evidence: dict,
           sets: dict | None = None, extra_specs: list[CheckSpec] = ()) -> dict:
    """gate.json. `evidence`: {set name: `bootstrap.paired_draws` output with models "tuned" and
    "baseline"}; `sets`: {set name: {"images", "boxes", "cameras"}} for the advice.

    More checks plug in as `extra_specs` (e.g. the Frigate path's recall and false-detection rate):
    a `CheckSpec` naming a set and a statistic, with that set's evidence drawn from any
    `bootstrap.Statistics` per model (`bootstrap.RatioOfSums` for per-image tallies such as
    hits / objects), e.g. `evidence["frigate_user"] = paired_draws({"tuned": RatioOfSums(ids,
    {"recall": (hits_t, objects)}), "baseline": RatioOfSums(ids, {"recall": (hits_b, objects)})}, ...)`
    and `CheckSpec("frigate_recall", "frigate_user", "recall", "drop", -0.05, "...")`.
    {"verdict", "blessed", "baseline", "confidence", "resamples", "seed", "summary", "deciding",
    "failed", "inconclusive", "uninformative", "advice", "checks": [{name, metric, kind, threshold,
    point, interval, tuned, baseline, verdict, why, required, resolve, passed}]}."""
    cs = [judge(s, evidence[s.set], gate.confidence, sets, gate.resolve_effect, gate.min_images)
          for s in [*specs(tuned, baseline, gate), *extra_specs]]
    by = {v: [c for c in cs if c.verdict == v] for v in ("passed", "failed", "inconclusive", "uninformative")}
    required_open = [c for c in cs if c.required and c.verdict in ("inconclusive", "uninformative")]
    if by["failed"]:
        verdict, deciding = "not_blessed", by["failed"]
        summary = "measurably worse: " + "; ".join(
            f"{c.name} {c.point:+.3f} [{c.interval[0]:+.3f}, {c.interval[1]:+.3f}] vs {c.threshold:+.3f}"
            for c in deciding)
    elif by["inconclusive"] or required_open:
        verdict = "inconclusive"
        deciding = [*required_open, *[c for c in by["inconclusive"] if c not in required_open]]
        summary = "the evaluation sets are too small to tell: " + "; ".join(
            f"{c.name} {c.verdict}" + (f" {c.point:+.3f} [{c.interval[0]:+.3f}, {c.interval[1]:+.3f}]"
                                       if c.interval else "") for c in deciding)
    else:
        verdict, deciding = "blessed", [c for c in cs if c.required]
        summary = "better on the user's holdout and within tolerance on the global set: " + "; ".join(
            f"{c.name} {c.point:+.3f} [{c.interval[0]:+.3f}, {c.interval[1]:+.3f}]" for c in deciding)
    advice = [c.resolve["advice"] for c in deciding if c.resolve] if verdict == "inconclusive" else []
    return {"verdict": verdict, "blessed": verdict == "blessed", "baseline": baseline_name,
            "confidence": gate.confidence, "resamples": gate.resamples, "seed": gate.seed,
            "summary": summary, "deciding": [c.name for c in deciding],
            "failed": [c.name for c in by["failed"]], "inconclusive": [c.name for c in by["inconclusive"]],
            "uninformative": [c.name for c in by["uninformative"]], "advice": advice,
            "checks": [c.as_dict() for c in cs]}


def frigate_specs(gate: GateParams) -> list[CheckSpec]:
    """The Frigate-path checks, plugged into `decide` as `extra_specs`. Their evidence sets are
    "frigate_user" / "frigate_global": paired draws of per-image tallies at the advised min_score
    (`bootstrap.RatioOfSums`): "recall" = hits / objects; "false_free" = regions without a false
    detection / regions (a false detection per region counted at most once, so it stays in 0..1;
    `frigate_max_false_increase` per 100 regions is its allowed drop x 100)."""
    out = []
    for key, title in (("user", "the user's holdout"), ("global", "the global set")):
        out.append(CheckSpec(f"frigate_{key}_recall", f"frigate_{key}", "recall", "drop",
                             -gate.frigate_max_recall_drop,
                             f"Frigate-path recall at the advised min_score on {title} may be at most "
                             f"{gate.frigate_max_recall_drop} below baseline"))
        out.append(CheckSpec(f"frigate_{key}_false", f"frigate_{key}", "false_free", "drop",
                             -gate.frigate_max_false_increase / 100.0,
                             f"false detections per 100 regions on {title} may be at most "
                             f"{gate.frigate_max_false_increase} above baseline"))
    out.append(CheckSpec("frigate_user_floor", "frigate_user", "recall", "floor", gate.min_user_frigate_recall,
                         "absolute floor on Frigate-path recall on the user's holdout (a model Frigate would "
                         "see detect nothing is never blessed)", required=True))
    return out


def frigate_tallies(images: list[dict]):
    """`frigate_path.summarize(...)["images"]` -> a `bootstrap.RatioOfSums` over those images."""
    import numpy as np

    from camtune.metrics.bootstrap import RatioOfSums

    ids = np.asarray([int(i["image_id"]) for i in images])
    hits = np.asarray([i["hits"] for i in images], dtype="float64")
    objects = np.asarray([i["objects"] for i in images], dtype="float64")
    regions = np.asarray([i["regions"] for i in images], dtype="float64")
    false = np.minimum(np.asarray([i["false_detections"] for i in images], dtype="float64"), regions)
    uncapped = np.asarray([i["false_detections"] for i in images], dtype="float64")
    return RatioOfSums(ids, {"recall": (hits, objects), "false_free": (regions - false, regions),
                             "false_rate": (uncapped, regions)})  # false_rate: for display (x 100)


# ------------------------------------------------------------------ against the incumbent
#
# The incumbent is the model the user runs now (docs/incumbent.md). Its checks compare the tuned
# model with it on the Frigate path, on the same regions and the same paired bootstrap as above; in
# `Check` the incumbent is the "baseline" side. They do not bless or refuse the model: they decide
# whether it is promoted (made the user's current model) once blessed: the rule is
# camtune.contracts.verdict.Verdict.promotion, which publish applies too. The verdicts written are
# camtune.contracts.verdict's VERDICTS and INCUMBENT_VERDICTS.


def incumbent_specs(gate: GateParams, fidelity_margin: float, key: str, title: str,
                    name: str | None = None) -> list[CheckSpec]:
    """Recall and false-detection checks of the tuned model against the incumbent on evidence set
    `key`. The tuned side is the float model and the incumbent is int8: export refuses an int8 model
    whose Frigate-path recall is more than `fidelity_margin` below its float twin, so the recall
    tolerance is reduced by that margin (the published int8 model then meets the tolerance)."""
    name = name or key
    recall_thr = -(gate.incumbent_max_recall_drop - fidelity_margin)
    return [
        CheckSpec(f"{name}_recall", key, "recall", "drop", recall_thr,
                  f"Frigate-path recall on {title} may be at most {gate.incumbent_max_recall_drop} below the "
                  f"incumbent's, less the int8 fidelity margin {fidelity_margin} (tuned - incumbent >= "
                  f"{recall_thr:+.3f})"),
        CheckSpec(f"{name}_false", key, "false_free", "drop", -gate.incumbent_max_false_increase / 100.0,
                  f"false detections per 100 regions on {title} may be at most "
                  f"{gate.incumbent_max_false_increase} above the incumbent's"),
    ]


def _fmt_check(c: Check) -> str:
    iv = f" [{c.interval[0]:+.3f}, {c.interval[1]:+.3f}]" if c.interval else ""
    return f"{c.name} {c.verdict}" + (f" {c.point:+.3f}{iv}" if c.point is not None else "")


def _not_worse(c: Check) -> bool:
    """Passed, or cannot fail: an incumbent at (about) zero cannot be beaten by more than the
    tolerance (e.g. Frigate's stock model on a label it never saw at night), so the tuned model is
    not worse than it, though nothing is learned about how much better."""
    return c.verdict == "passed" or (c.verdict == "uninformative" and c.kind == "drop" and c.baseline is not None
                                     and c.threshold <= -c.baseline + 1e-9)


def decide_incumbent(overall: list[Check], cameras: dict[str, list[Check]], gate: GateParams) -> dict:
    """The promotion verdict against the incumbent from its judged checks:
    `worse` when an overall check failed, or a camera's did and `incumbent_camera_blocks`;
    else `not_worse` when the user holdout's recall check passed (or cannot fail) and no overall check is open;
    else `inconclusive`. Worse cameras are named either way."""
    failed = [c for c in overall if c.verdict == "failed"]
    worse_cams = sorted(cam for cam, cs in cameras.items() if any(c.verdict == "failed" for c in cs))
    cam_failed = [c for cam in worse_cams for c in cameras[cam] if c.verdict == "failed"]
    open_ = [c for c in overall if c.verdict == "inconclusive"]
    user_recall = next((c for c in overall if c.name == "incumbent_user_recall"), None)
    cams_note = (f"; worse on camera{'s' if len(worse_cams) > 1 else ''} {', '.join(worse_cams)}: "
                 + "; ".join(_fmt_check(c) for c in cam_failed)) if worse_cams else ""
    if failed or (worse_cams and gate.incumbent_camera_blocks):
        verdict = "worse"
        why = "measurably worse than the incumbent"
        if failed:
            why += ": " + "; ".join(_fmt_check(c) for c in failed)
        why += cams_note
        if not failed:
            why += " (evaluate.gate.incumbent_camera_blocks)"
    elif open_ or user_recall is None or not _not_worse(user_recall):
        verdict = "inconclusive"
        why = ("too little evidence to tell it from the incumbent: "
               + "; ".join(_fmt_check(c) for c in (open_ or ([user_recall] if user_recall else overall))) + cams_note)
    else:
        verdict = "not_worse"
        why = ("not worse than the incumbent within tolerance: " + "; ".join(_fmt_check(c) for c in overall)
               + (cams_note + " (not blocking: evaluate.gate.incumbent_camera_blocks is false)" if cams_note else ""))
    advice = [c.resolve["advice"] for c in open_ if c.resolve] if verdict == "inconclusive" else []
    return {"verdict": verdict, "summary": why, "worse_cameras": worse_cams, "advice": advice,
            "failed": [c.name for c in failed + cam_failed], "inconclusive": [c.name for c in open_],
            "checks": [c.as_dict() for c in overall]}
