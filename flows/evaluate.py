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
from camtune.evaluation import inputs, report, thresholds
from camtune.evaluation.coco_eval import detections_to_coco, evaluate_detections
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

        results: dict[str, dict] = {}
        coco_results: dict[str, list] = {}  # per-image detections, for the report's pictures
        for model, (kind, ref) in models.items():
            results[model] = {}
            for key, ds in sets.items():
                ids = ds.images["id"].astype(int).tolist()
                futures = [predict_shard.submit(kind, str(ref), str(ds.root), part, ev.batch_size)
                           for part in shards(ids, ev.shards)]
                detections = {k: v for f in futures for k, v in f.result().items()}
                results[model][key] = coco_eval(ds, detections, names)
                if model in ("base", "tuned"):
                    coco_results[f"{model}_{key}"] = detections_to_coco(ds, detections)
                log.info("%s on %s: mAP %s, mAP@.5 %s", model, key, results[model][key]["map"],
                         results[model][key]["map50"])

    base_side = results["baseline" if "baseline" in results else "base"]
    verdict = gate_mod.decide(results["tuned"], base_side, ev.gate, baseline.name)
    advice = thresholds.recommend(
        names, list(params.labels.attribute_parents),
        [("user holdout", results["tuned"]["user"]), ("global eval", results["tuned"]["global"])],
        ev.thresholds)
    t = ev.thresholds
    filters = thresholds.frigate_yaml(advice, header=[
        f"Frigate objects config for the tuned model of {params.user.id}, from its precision/recall",
        f"curves at IoU .5: min_score = lowest score with precision >= {t.min_score_precision},",
        f"threshold = lowest score with precision >= {t.threshold_precision}. Curves from the user holdout,",
        f"else the global set, when a label has >= {t.min_boxes} boxes there; otherwise Frigate's",
        f"defaults ({t.fallback_min_score} / {t.fallback_threshold}). Attribute labels get no threshold "
        f"(Frigate ignores it for them).",
    ])
    md = report.markdown(results, verdict, advice, user_id=params.user.id, frigate_yaml=filters, notes=notes)
    metrics = report.metrics_json(results, verdict)

    with atomic.output_dir(OUT_DIR) as out:
        atomic.write_json(out / "metrics.json", metrics)
        atomic.write_json(out / "gate.json", verdict)
        atomic.write_text(out / "filters.yml", filters)
        atomic.write_text(out / "report.md", md)
        # everything else (per class, slices, curves) for export's fidelity check and debugging
        atomic.write_json(out / "details.json", {"results": results,
                                                 "advice": [a.as_dict() for a in advice], "notes": notes})
        for name, records in report.plot_files(results).items():
            atomic.write_json(out / "plots" / name, records)
        # COCO results format (image_id, category_id = label index + 1, bbox xywh px, score)
        for name, dets in coco_results.items():
            atomic.write_json(out / "detections" / f"{name}.json", dets, indent=None)

    create_markdown_artifact(key="evaluate-report", markdown=md,
                             description=f"evaluation of {params.user.id}'s tuned model")
    create_table_artifact(key="evaluate-per-class-ap", table=report.per_class_rows(results, "global"),
                          description="per-class AP on the global evaluation set (null: no ground truth)")
    log.info("gate: %s (baseline %s)%s", "BLESSED" if verdict["blessed"] else "NOT blessed", baseline.name,
             "" if verdict["blessed"] else f"; refused by {', '.join(verdict['failed'])}")
    return {"blessed": verdict["blessed"], "failed": verdict["failed"], "metrics": metrics}


if __name__ == "__main__":
    raise SystemExit(_cli.run(evaluate_model))
