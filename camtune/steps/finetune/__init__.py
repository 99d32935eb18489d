"""finetune: the user's verified images minus a hash-based holdout, plus the replay sample ->
Model Garden training initialised from the base checkpoint. Reads the user dataset,
artifacts/validate/report.json, artifacts/sample/replay.json and artifacts/train_base/model;
writes artifacts/finetune/ (model/, records/, holdout.json, trained_on.json, train_log.json). The
flow is `flow.py`; `camtune finetune` runs it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from camtune.contracts import artifacts
from camtune.contracts.artifacts import Manifest, read_json
from camtune.core import atomic
from camtune.core.config import Params
from camtune.core.dataset import Dataset, load_dataset
from camtune.core.errors import StepFailed
from camtune.training import experiment, records, train
from camtune.training.stage_io import forget_results, manifest_part, write_records, write_train_log

__all__ = ["finetune", "holdout_ids", "user_split", "check_validation"]


def holdout_ids(image_ids, user_id: str, fraction: float) -> list[int]:
    """Deterministic user holdout: an image is held out when the hash of (user, id) falls below
    `fraction` - stable as the user adds images (old holdout images stay held out)."""
    out = []
    for i in image_ids:
        h = int(hashlib.sha256(f"{user_id}:{int(i)}".encode()).hexdigest()[:15], 16) / 16**15
        if h < fraction:
            out.append(int(i))
    return sorted(out)


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
                       params.finetune.holdout_fraction)
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
    forget_results(stage_dir)
    rp = manifest_part(replay)
    # the user's own images that are also in the global pool come in through the user set (minus
    # the holdout); keeping them out of the replay keeps the holdout truly unseen
    rimg = rp.dataset.images
    replay_ids = sorted(int(i) for i in rimg.loc[rimg["user_id"] != params.user.id, "id"])
    rp = records.Part(rp.dataset.subset(replay_ids), rp.repeats)
    parts = [records.Part(user_ds.subset(train_ids)), rp]
    rs = write_records(stage_dir, parts, params, "finetune")
    model_dir = stage_dir / "model"
    exp = experiment.build_experiment_config(params, stage="finetune", model_dir=str(model_dir),
                                             train_files=rs.files, init_checkpoint=str(base_model))
    result = train.run(exp, model_dir, label_names=params.labels.names, stage="finetune",
                       progress=progress,
                       freeze_backbone_steps=experiment.freeze_backbone_steps(params, "finetune"),
                       precise_bn_batches=params.training.precise_bn_batches)
    atomic.write_json(stage_dir / "holdout.json", {
        "user_id": params.user.id, "source": params.data.user_dataset, "image_ids": hold,
        "count": len(hold), "fraction": params.finetune.holdout_fraction})
    atomic.write_json(stage_dir / "trained_on.json", {
        "user_id": params.user.id,
        "user": {"source": params.data.user_dataset, "image_ids": train_ids, "count": len(train_ids)},
        "replay": {"source": replay.source, "image_ids": replay_ids, "count": len(replay_ids)},
        "base_checkpoint": exp.task.init_checkpoint})
    write_train_log(stage_dir, "finetune", result, rs, {"base_checkpoint": exp.task.init_checkpoint,
                                             "validation": validation})
    return {"model_dir": str(model_dir), "checkpoint": result.checkpoint,
            "start_step": result.start_step, "final_step": result.final_step,
            "wall_s": result.wall_s, "images_per_s": result.images_per_s,
            "user_images": len(train_ids), "holdout": len(hold), "replay_images": len(replay_ids),
            "progress": result.progress}
