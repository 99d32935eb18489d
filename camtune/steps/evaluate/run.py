"""The evaluate step as library functions (the flow in flow.py wraps `evaluate` thinly; scoring is
camtune.metrics.score).

`evaluate`: base vs tuned (and the user's last blessed model) on the global set and the user's
holdout -> the blessing gate, Frigate threshold advice, report; written atomically to `out_dir`.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

from camtune.contracts import artifacts
from camtune.core import atomic
from camtune.contracts.artifacts import Manifest
from camtune.contracts.verdict import Verdict
from camtune.core.config import Params
from camtune.core.dataset import Dataset, load_dataset
from camtune.core.errors import StepFailed
from camtune.metrics import bootstrap, frigate_path
from camtune.steps.evaluate import gate, incumbent as vs_incumbent, inputs, report, thresholds
from camtune.metrics.coco import detections_to_coco, evaluate_with_matches
from camtune.metrics.score import (FrigateRuns, ModelKind, Predict, frigate_here, predict_here, score_with_matches)

FRIGATE_RUNS = artifacts.FRIGATE_RUNS.name  # written into out_dir, which may differ from the stage folder
# evaluation set key -> the manifest it is read from
SETS = {"user": artifacts.HOLDOUT, "global": artifacts.GLOBAL_EVAL}


@dataclass(frozen=True)
class Evaluation:
    verdict: Verdict
    metrics: dict          # metrics.json
    results: dict          # {model: {set: metrics}} for "base", "tuned" (and "baseline")
    baseline: str          # "base" or "registry:<model_id>"
    markdown: str          # report.md
    notes: tuple[str, ...]
    # the gate's inputs, to re-judge without predicting again (e.g. another bootstrap seed):
    # {evidence key: {"tuned": per-image matches or tallies, "baseline": ...}}, the side compared
    # against, {evidence key: images/boxes/cameras}
    paired: dict = field(default_factory=dict, repr=False, compare=False)
    side: str = "base"
    set_info: dict = field(default_factory=dict, repr=False, compare=False)
    incumbent: dict = field(default_factory=dict, repr=False, compare=False)  # gate.json's "incumbent"
    # the incumbent comparison as a function of the gate params (its Frigate-path runs bound in);
    # None when nothing was compared, and then the section above is carried over as it is
    judge_incumbent: Callable[[object], dict] | None = field(default=None, repr=False, compare=False)

    def regate(self, gate_params) -> dict:
        """gate.json for other gate params (another seed, confidence, thresholds) on the same
        detections: only the bootstrap and the checks run again, those against the base and those
        against the incumbent alike."""
        section = self.judge_incumbent(gate_params) if self.judge_incumbent else self.incumbent
        return with_incumbent(gate.decide(self.results["tuned"], self.results[self.side], gate_params,
                                          self.baseline, _draw(self.paired, gate_params), self.set_info,
                                          extra_specs=_frigate_specs(self.paired, gate_params)), section)


def _draw(paired: dict, gate_params) -> dict:
    """The gate's evidence: each set's paired bootstrap draws, both sides on the same resamples."""
    return {key: bootstrap.paired_draws(sides, gate_params.resamples, gate_params.seed, key=key,
                                        workers=bootstrap.default_workers())
            for key, sides in paired.items()}


def _frigate_specs(paired: dict, gate_params) -> list:
    """The Frigate-path checks whose evidence sets were measured (none with frigate_path off)."""
    return [s for s in gate.frigate_specs(gate_params) if s.set in paired]


def resolve_incumbent(params: Params, workdir: Path, registry=None):
    """The incumbent `evaluate.incumbent` names, checked (`camtune.model.incumbent.resolve`)."""
    from camtune.model.incumbent import resolve

    return resolve(params, workdir, registry=registry)


def with_incumbent(verdict: dict, section: dict) -> dict:
    """gate.json with the incumbent comparison: its section, whether the model is promoted (made
    the user's current model when published) and why; a worse camera is named in the summary."""
    # the rule publish applies, here without publish.allow_inconclusive (publish decides that)
    promo = Verdict.from_dict({**verdict, "incumbent": section}).promotion(allow_inconclusive=False)
    out = {**verdict, "incumbent": section, "promote": promo["promoted"], "promotion": promo["reason"]}
    if section.get("verdict") in ("worse", "inconclusive"):
        out["summary"] = f"{verdict['summary']}. Against the incumbent {section.get('name')}: {section['summary']}"
    return out


def _check_holdout_user(params: Params) -> None:
    holdout = Manifest.read(artifacts.HOLDOUT)
    if holdout.get("user_id") not in (None, params.user.id):
        raise StepFailed(f"{artifacts.HOLDOUT}: holdout of user {holdout.get('user_id')!r}, "
                         f"but user.id is {params.user.id!r}")


def evaluate(params: Params, out_dir: str | Path = artifacts.EVALUATE_DIR, *,
             predict: Predict | None = None, frigate: FrigateRuns | None = None, registry=None,
             log: Callable[[str], None] | None = None) -> Evaluation:
    """Evaluate base vs tuned with COCO mAP, decide the blessing, advise Frigate thresholds; write
    metrics.json, gate.json, filters.yml, report.md, details.json, plots/ and detections/ into `out_dir`
    (atomically, whole folder). Reads the stage outputs at their artifacts paths (cwd-relative).
    `registry`: where the user's last blessed model is looked up (default: params.publish.registry)."""
    ev = params.evaluate
    names = list(params.labels.names)
    attrs = list(params.labels.attribute_parents)
    fp = ev.frigate_path
    predict = predict or predict_here(ev.batch_size)
    frigate = frigate or frigate_here(names, attrs, fp.motion_boxes)

    # every input checked before minutes of prediction
    _check_holdout_user(params)
    sets, notes = {}, []
    for key, path in SETS.items():
        sets[key], n = inputs.eval_set(path, names)
        notes += n
    models: dict[str, tuple[ModelKind, Path]] = {
        "base": ("checkpoint", artifacts.BASE_MODEL), "tuned": ("checkpoint", artifacts.TUNED_MODEL)}
    for _, model_dir in models.values():
        inputs.check_model_dir(model_dir, names)
    if registry is None and ev.incumbent.source == "registry":
        from camtune.contracts.registry import open_registry

        registry = open_registry(params.publish.registry)

    with tempfile.TemporaryDirectory(prefix="camtune-incumbent-") as tmp:
        # the model the user runs now: checked (and downloaded) before any prediction
        incumbent = resolve_incumbent(params, Path(tmp), registry=registry)

        results: dict[str, dict] = {}
        matches: dict[str, dict] = {}
        runs: dict[str, dict[str, list]] = {}
        coco_results: dict[str, list] = {}  # per-image detections of base and tuned, for the report
        for model, (kind, ref) in models.items():
            results[model], matches[model], runs[model] = {}, {}, {}
            for key, ds in sets.items():
                detections = predict(kind, Path(ref), ds)
                results[model][key], matches[model][key] = evaluate_with_matches(ds, detections, names)
                if model in ("base", "tuned"):
                    coco_results[f"{model}_{key}"] = detections_to_coco(ds, detections)
                if log:
                    log(f"{model} on {key}: mAP {results[model][key]['map']}, "
                        f"mAP@.5 {results[model][key]['map50']}")
                if fp.enabled:
                    runs[model][key] = frigate(kind, ref, ds)
        incumbent_runs: dict[str, list] = {}
        if incumbent is not None and fp.enabled:
            for key, ds in sets.items():
                incumbent_runs[key] = frigate("tflite", incumbent.tflite, ds, labels=list(incumbent.labels))
                if log:
                    log(f"incumbent {incumbent.name} on {key}: Frigate path run on {len(incumbent_runs[key])} images")

    # the gate: both sides on the same bootstrap resamples of each set's images (the base: the
    # forgetting guard; the incumbent is judged apart, below, and decides promotion)
    side = "base"
    paired = {key: {"tuned": matches["tuned"][key], "baseline": matches[side][key]} for key in sets}
    set_info = {key: {"images": len(ds.images), "boxes": results["tuned"][key]["boxes"],
                      "cameras": sorted(ds.images["camera"].dropna().astype(str).unique())
                      if "camera" in ds.images else []} for key, ds in sets.items()}
    t = ev.thresholds
    frigate_figures: dict[str, dict] = {}
    if fp.enabled:
        # advice from the tuned model's Frigate path; every model is then judged with those filters
        advice = thresholds.recommend_frigate(
            names, attrs, [("user holdout", runs["tuned"]["user"]), ("global eval", runs["tuned"]["global"])], t)
        min_scores = {a.label: a.min_score for a in advice}
        for model, sets_runs in runs.items():
            frigate_figures[model] = {
                key: {"advised": frigate_path.summarize(r, names, attrs, min_scores),
                      "fixed": frigate_path.summarize(r, names, attrs, fp.report_min_score)}
                for key, r in sets_runs.items()}
            for key, f in frigate_figures[model].items():
                if log:
                    log(f"{model} on {key}, Frigate path: recall {f['advised']['overall']['recall']} at the "
                        f"advised min_score, {f['fixed']['overall']['recall']} at {fp.report_min_score}; "
                        f"{f['advised']['overall']['false_per_100_regions']} false / 100 regions")
        # the Frigate-path checks on the same kind of paired bootstrap, over per-image tallies
        for key in sets:
            paired[f"frigate_{key}"] = {m: gate.frigate_tallies(frigate_figures[src][key]["advised"]["images"])
                                        for m, src in (("tuned", "tuned"), ("baseline", side))}
            set_info[f"frigate_{key}"] = set_info[key]
        header = [
            f"Frigate objects config for the tuned model of {params.user.id}, measured on the Frigate",
            "path (square regions around objects and motion, the detector's 0.4 floor, the cross-region",
            f"merge): min_score = lowest score with precision >= {t.min_score_precision}, threshold = lowest",
            f"score with precision >= {t.threshold_precision} (compared by Frigate with the median of a tracked",
            "object's last 10 scores; a steady object's median is about its per-frame score). From the user",
            f"holdout, else the global set, when a label has >= {t.min_boxes} boxes there; otherwise Frigate's",
            f"defaults ({t.fallback_min_score} / {t.fallback_threshold}). Never below 0.4. Attribute labels "
            f"get no threshold.",
        ]
    else:
        advice = thresholds.recommend(
            names, attrs,
            [("user holdout", results["tuned"]["user"]), ("global eval", results["tuned"]["global"])], t)
        header = [
            f"Frigate objects config for the tuned model of {params.user.id}, from its whole-frame COCO",
            f"precision/recall curves at IoU .5 (evaluate.frigate_path is off): min_score = lowest score",
            f"with precision >= {t.min_score_precision}, threshold = lowest with precision >= "
            f"{t.threshold_precision}; Frigate's defaults ({t.fallback_min_score} / {t.fallback_threshold}) "
            f"below {t.min_boxes} boxes.",
        ]
    verdict = gate.decide(results["tuned"], results[side], ev.gate, "base", _draw(paired, ev.gate),
                          set_info, extra_specs=_frigate_specs(paired, ev.gate))
    judge_incumbent = None
    if incumbent is None:
        section = vs_incumbent.no_incumbent(
            "evaluate.incumbent.source is none: not compared with the model the user runs"
            if ev.incumbent.source == "none" else
            f"this is {params.user.id}'s first model: there is no incumbent to compare with")
    elif not fp.enabled:
        section = vs_incumbent.no_incumbent(f"incumbent {incumbent.name} not compared: it is judged on the "
                                            f"Frigate path, and evaluate.frigate_path.enabled is false")
    else:
        judge_incumbent = partial(vs_incumbent.compare, incumbent, runs["tuned"], incumbent_runs, names, attrs,
                                  min_scores, fidelity_margin=params.export.max_frigate_recall_drop)
        section = judge_incumbent(ev.gate)
    verdict = with_incumbent(verdict, section)
    filters = thresholds.frigate_yaml(advice, header=header)
    md = report.markdown(results, verdict, advice, user_id=params.user.id, frigate_yaml=filters, notes=notes,
                         frigate=frigate_figures, incumbent=section)
    metrics = report.metrics_json(results, verdict, frigate_figures)

    out_dir = Path(out_dir)
    with atomic.output_dir(out_dir) as out:
        atomic.write_json(out / artifacts.METRICS.name, metrics)
        atomic.write_json(out / artifacts.GATE.name, verdict)
        atomic.write_text(out / artifacts.FILTERS.name, filters)
        atomic.write_text(out / artifacts.EVALUATION_REPORT.name, md)
        # everything else (per class, slices, curves) for export's fidelity check and debugging
        atomic.write_json(out / artifacts.EVALUATION_DETAILS.name, {
            "results": results, "advice": [a.as_dict() for a in advice], "notes": notes,
            "frigate_path": frigate_figures})
        # every region and detection, so the figures can be re-scored at other filters (empty when
        # evaluate.frigate_path is off: a declared DVC output is always written)
        atomic.write_json(out / FRIGATE_RUNS, {m: {k: [r.as_dict() for r in rs] for k, rs in v.items()}
                                               for m, v in {**runs, **({"incumbent": incumbent_runs}
                                                                        if incumbent_runs else {})}.items()})
        for name, records in report.plot_files(results).items():
            atomic.write_json(out / artifacts.PLOTS.name / name, records)
        for name, png in report.forest_plots(verdict).items():
            atomic.write_bytes(out / artifacts.GATE_PLOTS.name / name, png)
        # COCO results format (image_id, category_id = label index + 1, bbox xywh px, score)
        for name, dets in coco_results.items():
            atomic.write_json(out / artifacts.EVALUATION_DETECTIONS.name / f"{name}.json", dets, indent=None)
    return Evaluation(Verdict.from_dict(verdict, out_dir / artifacts.GATE.name), metrics, results,
                      "base", md, tuple(notes), paired, side, set_info, section, judge_incumbent)
