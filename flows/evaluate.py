"""evaluate: base vs tuned (and the user's last blessed model) on the global set and the user's
holdout, the blessing gate, Frigate threshold advice, report. `python -m flows.evaluate`."""
from __future__ import annotations

import functools
import tempfile
import threading
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from camtune import atomic, config
from camtune.dataset import load_dataset
from camtune.errors import StepFailed
from camtune.evaluation import gate as gate_mod
from camtune.evaluation import frigate_path, inputs, report, thresholds
from camtune.evaluation.coco_eval import evaluate_detections
from camtune.evaluation.predict import predict_dataset, shards
from flows import _cli

OUT_DIR = Path("artifacts/evaluate")
SETS = {"user": inputs.HOLDOUT, "global": inputs.GLOBAL_EVAL}


def _version(path: str) -> tuple:
    """What identifies a model's content cheaply: its files' sizes and mtimes (a model retrained in
    the same folder in the same process must not be served from the cache)."""
    p = Path(path)
    files = sorted(p.iterdir()) if p.is_dir() else [p]
    return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.is_file())


@functools.lru_cache(maxsize=4)
def _detector(kind: str, path: str, version: tuple):
    """One detector per process and model version (a Dask worker loads its own); a lock serialises
    predict calls of threads sharing it (tf.function tracing is not meant to race)."""
    if kind == "tflite":
        from camtune.export.runtime import TFLiteDetector

        det = TFLiteDetector(path)
    else:
        from camtune.training.detector import load_detector

        det = load_detector(path)
    return det, threading.Lock()


@functools.lru_cache(maxsize=4)
def _dataset(source: str, version: tuple):
    return load_dataset(source)


@task(name="predict-shard", cache_policy=NO_CACHE)
def predict_shard(kind: str, model: str, source: str, image_ids: list[int], batch_size: int) -> dict:
    """Detections of one model on one shard of images: {image_id: {boxes, classes, scores}}."""
    det, lock = _detector(kind, model, _version(model))
    ds = _dataset(source, _version(str(Path(source) / "annotations.json"))).subset(image_ids)
    with lock:
        return predict_dataset(det, ds, batch_size=batch_size)


@task(name="frigate-path-shard", cache_policy=NO_CACHE)
def frigate_shard(kind: str, model: str, source: str, image_ids: list[int], label_names: list[str],
                  attribute_labels: list[str], motion_boxes: int) -> list[dict]:
    """Frigate-path runs of one model on one shard: regions, and the detections Frigate's cpu
    detector hands on from each (ImageRun dicts)."""
    det, lock = _detector(kind, model, _version(model))
    ds = _dataset(source, _version(str(Path(source) / "annotations.json"))).subset(image_ids)
    if kind == "tflite":
        size, run = det.height, frigate_path.tflite_runner(det)
    else:
        size, run = det.input_size[0], frigate_path.checkpoint_runner(det)
    runs = frigate_path.set_regions(ds, size, attribute_labels, motion_boxes)
    with lock:
        return [r.as_dict() for r in frigate_path.run_model(runs, ds, run, size, label_names)]


@task(name="coco-eval", cache_policy=NO_CACHE)
def coco_eval(ds, detections: dict, label_names: list[str]) -> dict:
    return evaluate_detections(ds, detections, label_names)


@flow(name="evaluate_model")
def evaluate_model(params_path: str = "params.yaml", overrides: dict | None = None) -> dict:
    """Evaluate base vs tuned with COCO mAP, decide the blessing, advise Frigate thresholds."""
    log = get_run_logger()
    params = config.load(params_path, overrides)
    ev = params.evaluate
    names = list(params.labels.names)

    # every input checked before minutes of prediction
    holdout = inputs.read_manifest(inputs.HOLDOUT)
    if holdout.get("user_id") not in (None, params.user.id):
        raise StepFailed(f"{inputs.HOLDOUT}: holdout of user {holdout['user_id']!r}, "
                                f"but user.id is {params.user.id!r}")
    sets, notes = {}, []
    for key, path in SETS.items():
        sets[key], n = inputs.eval_set(path, names)
        notes += n
    models = {"base": ("checkpoint", inputs.BASE_MODEL), "tuned": ("checkpoint", inputs.TUNED_MODEL)}
    for _, model_dir in models.values():
        inputs.check_model_dir(model_dir, names)

    from camtune.registry import open_registry

    with tempfile.TemporaryDirectory(prefix="camtune-baseline-") as tmp:
        baseline = inputs.resolve_baseline(open_registry(params.publish.registry), params.user.id, names,
                                           Path(tmp))
        if baseline.note:
            notes.append(baseline.note)
        if baseline.tflite is not None:
            models["baseline"] = ("tflite", baseline.tflite)

        attrs = list(params.labels.attribute_parents)
        fp = ev.frigate_path
        results: dict[str, dict] = {}
        runs: dict[str, dict[str, list]] = {}
        for model, (kind, ref) in models.items():
            results[model], runs[model] = {}, {}
            for key, ds in sets.items():
                ids = ds.images["id"].astype(int).tolist()
                futures = [predict_shard.submit(kind, str(ref), str(ds.root), part, ev.batch_size)
                           for part in shards(ids, ev.shards)]
                if fp.enabled:
                    ffutures = [frigate_shard.submit(kind, str(ref), str(ds.root), part, names, attrs,
                                                     fp.motion_boxes) for part in shards(ids, ev.shards)]
                detections = {k: v for f in futures for k, v in f.result().items()}
                results[model][key] = coco_eval(ds, detections, names)
                log.info("%s on %s: mAP %s, mAP@.5 %s", model, key, results[model][key]["map"],
                         results[model][key]["map50"])
                if fp.enabled:
                    runs[model][key] = [frigate_path.ImageRun.from_dict(d) for f in ffutures for d in f.result()]

    base_key = "baseline" if "baseline" in results else "base"
    t = ev.thresholds
    frigate: dict[str, dict] = {}
    if fp.enabled:
        # advice from the tuned model's Frigate path; every model is then judged with those filters
        advice = thresholds.recommend_frigate(
            names, attrs, [("user holdout", runs["tuned"]["user"]), ("global eval", runs["tuned"]["global"])], t)
        min_scores = {a.label: a.min_score for a in advice}
        for model, sets_runs in runs.items():
            frigate[model] = {key: {"advised": frigate_path.summarize(r, names, attrs, min_scores),
                                    "fixed": frigate_path.summarize(r, names, attrs, fp.report_min_score)}
                              for key, r in sets_runs.items()}
            for key, f in frigate[model].items():
                log.info("%s on %s, Frigate path: recall %s at the advised min_score, %s at %s; "
                         "%s false / 100 regions", model, key, f["advised"]["overall"]["recall"],
                         f["fixed"]["overall"]["recall"], fp.report_min_score,
                         f["advised"]["overall"]["false_per_100_regions"])
        verdict = gate_mod.decide(
            results["tuned"], results[base_key], ev.gate, baseline.name,
            frigate_tuned={k: v["advised"] for k, v in frigate["tuned"].items()},
            frigate_baseline={k: v["advised"] for k, v in frigate[base_key].items()})
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
        verdict = gate_mod.decide(results["tuned"], results[base_key], ev.gate, baseline.name)
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
    filters = thresholds.frigate_yaml(advice, header=header)
    md = report.markdown(results, verdict, advice, user_id=params.user.id, frigate_yaml=filters, notes=notes,
                         frigate=frigate)
    metrics = report.metrics_json(results, verdict, frigate)

    with atomic.output_dir(OUT_DIR) as out:
        atomic.write_json(out / "metrics.json", metrics)
        atomic.write_json(out / "gate.json", verdict)
        atomic.write_text(out / "filters.yml", filters)
        atomic.write_text(out / "report.md", md)
        # everything else (per class, slices, curves) for export's fidelity check and debugging
        atomic.write_json(out / "details.json", {"results": results,
                                                 "advice": [a.as_dict() for a in advice], "notes": notes,
                                                 "frigate_path": frigate})
        # every region and detection, so the figures can be re-scored at other filters (empty when
        # evaluate.frigate_path is off: a declared DVC output is always written)
        atomic.write_json(out / "frigate_runs.json", {m: {k: [r.as_dict() for r in rs] for k, rs in v.items()}
                                                      for m, v in runs.items()})
        for name, records in report.plot_files(results).items():
            atomic.write_json(out / "plots" / name, records)

    create_markdown_artifact(key="evaluate-report", markdown=md,
                             description=f"evaluation of {params.user.id}'s tuned model")
    create_table_artifact(key="evaluate-per-class-ap", table=report.per_class_rows(results, "global"),
                          description="per-class AP on the global evaluation set (null: no ground truth)")
    log.info("gate: %s (baseline %s)%s", "BLESSED" if verdict["blessed"] else "NOT blessed", baseline.name,
             "" if verdict["blessed"] else f"; refused by {', '.join(verdict['failed'])}")
    return {"blessed": verdict["blessed"], "failed": verdict["failed"], "metrics": metrics}


if __name__ == "__main__":
    raise SystemExit(_cli.run(evaluate_model))
