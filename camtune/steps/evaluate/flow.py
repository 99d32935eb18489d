"""evaluate: base vs tuned on the global set and the user's holdout, the blessing gate, the tuned
model against the incumbent (the model the user runs now: docs/incumbent.md), Frigate threshold
advice, report. `camtune evaluate`.

The step is `camtune.steps.evaluate.evaluate`; this flow fans the predictions out as Prefect tasks
(`evaluate.shards` per model and set, on the task runner `pipeline.task_runner` picks)."""
from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from camtune.contracts import artifacts
from camtune.core import config
from camtune.steps import evaluate as evaluation
from camtune.metrics import score
from camtune.metrics.predict import shards
from camtune.steps.evaluate.report import per_class_rows

OUT_DIR = artifacts.EVALUATE_DIR


@task(name="predict-shard", cache_policy=NO_CACHE)
def predict_shard(kind: str, model: str, source: str, image_ids: list[int], batch_size: int) -> dict:
    """Detections of one model on one shard of images: {image_id: {boxes, classes, scores}}."""
    return score.predict_images(kind, model, source, image_ids, batch_size)


@task(name="frigate-path-shard", cache_policy=NO_CACHE)
def frigate_shard(kind: str, model: str, source: str, image_ids: list[int], label_names: list[str],
                  attribute_labels: list[str], motion_boxes: int) -> list[dict]:
    """Frigate-path runs of one model on one shard: its regions and what the detector hands on."""
    return score.frigate_images(kind, model, source, image_ids, label_names, attribute_labels,
                                     motion_boxes)


def _frigate_fanned_out(n_shards: int, label_names: list[str], attribute_labels: list[str], motion_boxes: int):
    from camtune.metrics.frigate_path import ImageRun

    def run(kind, model: Path, ds, labels: list[str] | None = None) -> list:
        # `labels`: the model's own label map (an incumbent's, e.g. Frigate's 90 COCO labels)
        ids = ds.images["id"].astype(int).tolist()
        parts = shards(ids, n_shards)
        futures = [frigate_shard.submit(kind, str(model), str(ds.root), part, list(labels or label_names),
                                        attribute_labels, motion_boxes) for part in parts]
        out = []
        for part, f in zip(parts, futures):
            out += [ImageRun.from_dict(d) for d in f.result()]
            _progress("Frigate path", model, ds, len(out), len(ids))
        return out
    return run


def _fanned_out(n_shards: int, batch_size: int):
    def predict(kind, model: Path, ds) -> dict:
        ids = ds.images["id"].astype(int).tolist()
        futures = [predict_shard.submit(kind, str(model), str(ds.root), part, batch_size)
                   for part in shards(ids, n_shards)]
        out = {}
        for f in futures:
            out.update(f.result())
            _progress("COCO", model, ds, len(out), len(ids))
        return out
    return predict


def _progress(what: str, model, ds, done: int, total: int) -> None:
    """A line per finished shard, so a person can follow a long evaluation (Prefect run log and stderr)."""
    get_run_logger().info("evaluate: %s, %s on %s: %d/%d images", what, "/".join(Path(model).parts[-2:]),
                          Path(ds.root).name,
                          done, total)


@flow(name="evaluate")
def evaluate_flow(params_path: str = "params.yaml", overrides: dict | None = None) -> dict:
    """Evaluate base vs tuned with COCO mAP, decide the blessing, advise Frigate thresholds."""
    log = get_run_logger()
    params = config.load(params_path, overrides)
    ev = params.evaluate
    frigate = _frigate_fanned_out(ev.shards, list(params.labels.names), list(params.labels.attribute_parents),
                                  ev.frigate_path.motion_boxes)
    result = evaluation.evaluate(params, OUT_DIR, predict=_fanned_out(ev.shards, ev.batch_size),
                                 frigate=frigate, log=log.info)
    create_markdown_artifact(key="evaluate-report", markdown=result.markdown,
                             description=f"evaluation of {params.user.id}'s tuned model")
    create_table_artifact(key="evaluate-per-class-ap", table=per_class_rows(result.results, "global"),
                          description="per-class AP on the global evaluation set (null: no ground truth)")
    log.info("gate: %s (baseline %s)", result.verdict.headline(), result.baseline)
    inc = result.incumbent
    log.info("incumbent %s: %s — %s", inc.get("name") or "(none)", inc.get("verdict"), inc.get("summary"))
    return {"verdict": result.verdict.verdict, "blessed": result.verdict.blessed,
            "promote": result.verdict.promote, "incumbent": inc.get("verdict"),
            "failed": list(result.verdict.failed), "metrics": result.metrics}

