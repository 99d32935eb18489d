"""What both training steps (train_base, finetune) do around the trainer: manifests -> record
parts, the stage folder's records, summary files and train log.

Both stage folders are DVC `persist: true` outputs: `model/` is trained in place so a re-run after
a crash resumes (train.run clears it when the experiment or the data changed); every other file is
rewritten atomically at the end of the run.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from camtune.contracts.artifacts import Manifest
from camtune.core import atomic
from camtune.core.config import Params
from camtune.model.images import Limits
from camtune.training import records, train


def manifest_part(m: Manifest) -> records.Part:
    """A manifest's images with their optional per-image `repeats`, checked against its source."""
    return records.Part(m.subset(), m.repeats)


def forget_results(stage_dir: Path, names=("train_log.json", "holdout.json", "trained_on.json")):
    """The summary files are written when training ends; until then none from an older run may
    sit next to a model that is being retrained (persist: true keeps the folder between runs)."""
    for n in names:
        (stage_dir / n).unlink(missing_ok=True)


def write_records(stage_dir: Path, parts, params: Params, prefix: str) -> records.RecordSet:
    """Rewrite the stage's records atomically (same data -> same bytes, so resume still matches)."""
    dest = stage_dir / "records"
    with atomic.output_dir(dest) as tmp:
        rs = records.write_records(parts, tmp, label_names=params.labels.names,
                                   shards=params.training.shards, prefix=prefix,
                                   regions=params.training.regions, input_size=params.training.input_size,
                                   attribute_labels=list(params.labels.attribute_parents),
                                   limits=Limits.of(params.validate))
    files = [str(dest / Path(f).name) for f in rs.files]
    return records.RecordSet(files, rs.images, rs.examples, rs.boxes, rs.negatives, rs.per_class, rs.kinds)


def write_train_log(stage_dir: Path, stage: str, result: train.TrainResult, rs: records.RecordSet, extra: dict):
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


def clear(stage_dir: Path) -> None:
    shutil.rmtree(stage_dir, ignore_errors=True)
