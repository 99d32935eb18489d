"""The two training stages as plain functions (the flows in flows/ are thin wrappers).

train_base: base_train manifest -> records -> Model Garden training from scratch (or a base pulled
from the registry). finetune: user's verified images minus a hash-based holdout + the replay
manifest -> records -> Model Garden training initialised from the base checkpoint.

Both stage folders are DVC `persist: true` outputs: `model/` is trained in place so a re-run after
a crash resumes (train.run clears it when the experiment or the data changed); every other file is
rewritten atomically at the end of the run.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from camtune import artifacts, atomic
from camtune.artifacts import Manifest, read_json
from camtune.config import Params
from camtune.dataset import Dataset, load_dataset
from camtune.errors import StepFailed
from camtune.model.checkpoint import latest_checkpoint, read_labels
from camtune.model.images import Limits
from camtune.training import experiment, records, train

def manifest_part(m: Manifest) -> records.Part:
    """A manifest's images with their optional per-image `repeats`, checked against its source."""
    return records.Part(m.subset(), m.repeats)


def holdout_ids(image_ids, user_id: str, fraction: float) -> list[int]:
    """Deterministic user holdout: an image is held out when the hash of (user, id) falls below
    `fraction` - stable as the user adds images (old holdout images stay held out)."""
    out = []
    for i in image_ids:
        h = int(hashlib.sha256(f"{user_id}:{int(i)}".encode()).hexdigest()[:15], 16) / 16**15
        if h < fraction:
            out.append(int(i))
    return sorted(out)


def _forget_results(stage_dir: Path, names=("train_log.json", "holdout.json", "trained_on.json")):
    """The summary files are written when training ends; until then none from an older run may
    sit next to a model that is being retrained (persist: true keeps the folder between runs)."""
    for n in names:
        (stage_dir / n).unlink(missing_ok=True)


def _records_dir(stage_dir: Path, parts, params: Params, prefix: str) -> records.RecordSet:
    """Rewrite the stage's records atomically (same data -> same bytes, so resume still matches)."""
    dest = stage_dir / "records"
    with atomic.output_dir(dest) as tmp:
        rs = records.write_records(parts, tmp, label_names=params.labels.names,
                                   shards=params.training.shards, prefix=prefix,
                                   regions=params.training.regions, input_size=params.training.input_size,
                                   attribute_labels=list(params.labels.attribute_parents),
                                   limits=Limits.of(params.validation))
    files = [str(dest / Path(f).name) for f in rs.files]
    return records.RecordSet(files, rs.images, rs.examples, rs.boxes, rs.negatives, rs.per_class, rs.kinds)


def _log(stage_dir: Path, stage: str, result: train.TrainResult, rs: records.RecordSet, extra: dict):
    progress = train.read_progress(result.model_dir)
    atomic.write_json(stage_dir / "train_log.json", {
        "stage": stage, "model_dir": str(result.model_dir), "checkpoint": result.checkpoint,
        "start_step": result.start_step, "final_step": result.final_step,
        "restarted": result.restarted, "wall_s": round(result.wall_s, 2),
        "images_per_s": round(result.images_per_s, 3),
        "records": {"files": rs.files, "images": rs.images, "examples": rs.examples,
                    "boxes": rs.boxes, "negatives": rs.negatives, "per_class": rs.per_class,
                    "kinds": rs.kinds},
        "progress": progress, "init": result.init, "precise_bn": result.precise_bn, **extra})


def train_base(params: Params, *, stage_dir: Path = artifacts.TRAIN_BASE_DIR, manifest: Path | None = None,
               progress=None) -> dict:
    stage_dir = Path(stage_dir)
    tb = params.training.base
    if tb.source == "registry":
        return pull_base(params, stage_dir)
    manifest = Path(manifest or artifacts.BASE_TRAIN)
    m = Manifest.read(manifest)
    _forget_results(stage_dir)
    rs = _records_dir(stage_dir, [manifest_part(m)], params, "base")
    model_dir = stage_dir / "model"
    exp = experiment.build_experiment_config(params, stage="base", model_dir=str(model_dir),
                                             train_files=rs.files)
    result = train.run(exp, model_dir, label_names=params.labels.names, stage="base",
                       progress=progress,
                       freeze_backbone_steps=experiment.freeze_backbone_steps(params, "base"),
                       precise_bn_batches=params.training.precise_bn_batches)
    _log(stage_dir, "base", result, rs, {"manifest": str(manifest)})
    return {"model_dir": str(model_dir), "checkpoint": result.checkpoint,
            "start_step": result.start_step, "final_step": result.final_step,
            "wall_s": result.wall_s, "images_per_s": result.images_per_s,
            "images": rs.images, "examples": rs.examples, "progress": result.progress}


def pull_base(params: Params, stage_dir: Path) -> dict:
    """`training.base.source: registry`: copy a published base model_dir instead of training."""
    base_id = params.training.base.registry_base_id
    if not base_id:
        raise StepFailed("training.base.source is 'registry' but training.base.registry_base_id is null")
    try:
        from camtune.registry import open_registry
    except ImportError as exc:
        raise StepFailed(f"training.base.source 'registry' needs camtune.registry, which is not "
                         f"available ({exc})") from None
    reg = open_registry(params.publish.registry)
    dest = stage_dir / "model"
    _forget_results(stage_dir)
    shutil.rmtree(stage_dir / "records", ignore_errors=True)  # no records of a base trained here
    reg.pull_base(base_id, dest)  # verified against metadata.json's sha256s, replaced atomically
    labels = read_labels(dest)
    if labels != list(params.labels.names):
        raise StepFailed(f"registry base {base_id}: labels {labels} differ from labels.names "
                         f"{list(params.labels.names)}")
    ckpt = latest_checkpoint(dest)
    atomic.write_json(stage_dir / "train_log.json", {"stage": "base", "source": "registry",
                                                     "base_id": base_id, "checkpoint": ckpt})
    return {"model_dir": str(dest), "checkpoint": ckpt, "source": "registry", "base_id": base_id}


def check_validation(report: Path = artifacts.VALIDATION_REPORT) -> str:
    """Refuse to fine-tune on a user dataset that failed validation."""
    if not report.exists():
        return "no validation report (validate stage not run)"
    rep = read_json(report)
    if rep.get("passed") is False:
        raise StepFailed(f"{report}: the user dataset failed validation; fix the findings listed "
                         f"there before fine-tuning")
    return "passed"


def user_split(params: Params, seen_by_base=()) -> tuple[Dataset, list[int], list[int]]:
    """-> (user dataset, train ids, holdout ids): verified images of the user only. Images the
    base model trained on (`seen_by_base`) are never held out: they would not be unseen."""
    ds = load_dataset(params.data.user_dataset)
    mine = ds.of_user(params.user.id).verified()
    ids = sorted(int(i) for i in mine.images["id"])
    if not ids:
        raise StepFailed(f"{params.data.user_dataset}: user {params.user.id} has no verified images")
    seen = {int(i) for i in seen_by_base}
    hold = holdout_ids([i for i in ids if i not in seen], params.user.id,
                       params.training.finetune.holdout_fraction)
    hs = set(hold)
    return mine, [i for i in ids if i not in hs], hold


def finetune(params: Params, *, stage_dir: Path = artifacts.FINETUNE_DIR, base_model: Path = artifacts.BASE_MODEL,
             replay_manifest: Path | None = None, progress=None) -> dict:
    stage_dir = Path(stage_dir)
    validation = check_validation()
    replay_manifest = Path(replay_manifest or artifacts.REPLAY)
    replay = Manifest.read(replay_manifest)
    user_ds, train_ids, hold = user_split(params, replay.get("user_images_in_base_train", []))
    if not train_ids:
        raise StepFailed(f"{params.data.user_dataset}: every verified image of user "
                         f"{params.user.id} fell into the holdout; nothing left to train on")
    _forget_results(stage_dir)
    rp = manifest_part(replay)
    # the user's own images that are also in the global pool come in through the user set (minus
    # the holdout); keeping them out of the replay keeps the holdout truly unseen
    rimg = rp.dataset.images
    replay_ids = sorted(int(i) for i in rimg.loc[rimg["user_id"] != params.user.id, "id"])
    rp = records.Part(rp.dataset.subset(replay_ids), rp.repeats)
    parts = [records.Part(user_ds.subset(train_ids)), rp]
    rs = _records_dir(stage_dir, parts, params, "finetune")
    model_dir = stage_dir / "model"
    exp = experiment.build_experiment_config(params, stage="finetune", model_dir=str(model_dir),
                                             train_files=rs.files, init_checkpoint=str(base_model))
    result = train.run(exp, model_dir, label_names=params.labels.names, stage="finetune",
                       progress=progress,
                       freeze_backbone_steps=experiment.freeze_backbone_steps(params, "finetune"),
                       precise_bn_batches=params.training.precise_bn_batches)
    atomic.write_json(stage_dir / "holdout.json", {
        "user_id": params.user.id, "source": params.data.user_dataset, "image_ids": hold,
        "count": len(hold), "fraction": params.training.finetune.holdout_fraction})
    atomic.write_json(stage_dir / "trained_on.json", {
        "user_id": params.user.id,
        "user": {"source": params.data.user_dataset, "image_ids": train_ids, "count": len(train_ids)},
        "replay": {"source": replay.source, "image_ids": replay_ids, "count": len(replay_ids)},
        "base_checkpoint": exp.task.init_checkpoint})
    _log(stage_dir, "finetune", result, rs, {"base_checkpoint": exp.task.init_checkpoint,
                                             "validation": validation})
    return {"model_dir": str(model_dir), "checkpoint": result.checkpoint,
            "start_step": result.start_step, "final_step": result.final_step,
            "wall_s": result.wall_s, "images_per_s": result.images_per_s,
            "user_images": len(train_ids), "holdout": len(hold), "replay_images": len(replay_ids),
            "progress": result.progress}


def clear(stage_dir: Path) -> None:
    shutil.rmtree(stage_dir, ignore_errors=True)
