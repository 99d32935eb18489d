"""train_base: the base detector from scratch on the base_train sample (Model Garden RetinaNet +
MobileDet), or pulled from the registry (`train_base.source: registry`). Reads
artifacts/sample/base_train.json and the global pool; writes artifacts/train_base/ (model/,
records/, train_log.json). The flow is `flow.py`; `camtune train_base` runs it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from camtune.contracts import artifacts
from camtune.contracts.artifacts import Manifest
from camtune.core import atomic
from camtune.core.config import Params
from camtune.core.errors import StepFailed
from camtune.model.checkpoint import latest_checkpoint, read_labels
from camtune.training import experiment, train
from camtune.training.stage_io import forget_results, manifest_part, write_records, write_train_log

__all__ = ["train_base", "pull_base"]


def train_base(params: Params, *, stage_dir: Path = artifacts.TRAIN_BASE_DIR, manifest: Path | None = None,
               progress=None) -> dict:
    stage_dir = Path(stage_dir)
    tb = params.train_base
    if tb.source == "registry":
        return pull_base(params, stage_dir)
    manifest = Path(manifest or artifacts.BASE_TRAIN)
    m = Manifest.read(manifest)
    forget_results(stage_dir)
    rs = write_records(stage_dir, [manifest_part(m)], params, "base")
    model_dir = stage_dir / "model"
    exp = experiment.build_experiment_config(params, stage="base", model_dir=str(model_dir),
                                             train_files=rs.files)
    result = train.run(exp, model_dir, label_names=params.labels.names, stage="base",
                       progress=progress,
                       freeze_backbone_steps=experiment.freeze_backbone_steps(params, "base"),
                       precise_bn_batches=params.training.precise_bn_batches)
    write_train_log(stage_dir, "base", result, rs, {"manifest": str(manifest)})
    return {"model_dir": str(model_dir), "checkpoint": result.checkpoint,
            "start_step": result.start_step, "final_step": result.final_step,
            "wall_s": result.wall_s, "images_per_s": result.images_per_s,
            "images": rs.images, "examples": rs.examples, "progress": result.progress}


def pull_base(params: Params, stage_dir: Path) -> dict:
    """`train_base.source: registry`: copy a published base model_dir instead of training."""
    base_id = params.train_base.registry_base_id
    if not base_id:
        raise StepFailed("train_base.source is 'registry' but train_base.registry_base_id is null")
    try:
        from camtune.contracts.registry import open_registry
    except ImportError as exc:
        raise StepFailed(f"train_base.source 'registry' needs camtune.contracts.registry, which is not "
                         f"available ({exc})") from None
    reg = open_registry(params.publish.registry)
    dest = stage_dir / "model"
    forget_results(stage_dir)
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
