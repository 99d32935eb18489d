"""A Model Garden model_dir as a detector: the trained model rebuilt from the folder alone.

`load_detector(model_dir)` reads the experiment config Model Garden saved there (`params.yaml`),
builds the model with the task's own `build_model()`, restores the newest checkpoint, and runs
inference through Model Garden's `DetectionModule` (the same resize/pad/normalise as its eval
parser and its SavedModel export, and the model's own detection generator with NMS).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from camtune.core.errors import StepFailed

from camtune.core import atomic

PARAMS_FILE = "params.yaml"   # written by Model Garden (train_utils.serialize_config)
LABELS_FILE = "labels.json"   # ours: {"names": [...]} model class k = names[k-1]
# the registered Model Garden experiment every camtune model starts from (training/experiment.py)
BASE_EXPERIMENT = "retinanet_mobile_coco"


def read_experiment(model_dir: str | Path):
    """The ExperimentConfig saved in `model_dir/params.yaml` (StepFailed when missing/corrupt)."""
    from official.core import exp_factory
    from official.modeling import hyperparams

    path = Path(model_dir) / PARAMS_FILE
    if not path.is_file():
        raise StepFailed(f"{path}: no Model Garden experiment config (params.yaml) - "
                         f"is {model_dir} a trained model folder?")
    try:
        exp = exp_factory.get_exp_config(BASE_EXPERIMENT)
        exp = hyperparams.override_params_dict(exp, str(path), is_strict=True)
    except Exception as exc:  # yaml errors, unknown keys
        raise StepFailed(f"{path}: cannot read the experiment config: {exc}") from None
    return exp


def write_labels(model_dir: str | Path, label_names) -> Path:
    """labels.json beside the checkpoints: the label set the model's classes 1..K stand for."""
    return atomic.write_json(Path(model_dir) / LABELS_FILE, {"names": list(label_names)})


def read_labels(model_dir: str | Path) -> list[str]:
    """The label names of a model_dir (its labels.json); StepFailed when missing or malformed."""
    path = Path(model_dir) / LABELS_FILE
    try:
        names = json.loads(path.read_text())["names"]
    except FileNotFoundError:
        raise StepFailed(f"{path}: missing - the label names of this model are unknown") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise StepFailed(f"{path}: not a labels file ({exc})") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise StepFailed(f"{path}: 'names' must be a list of strings")
    return names


def latest_checkpoint(model_dir: str | Path) -> str:
    """Path prefix of the newest checkpoint in `model_dir` (StepFailed when there is none)."""
    import tensorflow as tf

    ckpt = tf.train.latest_checkpoint(str(model_dir))
    if not ckpt:
        raise StepFailed(f"{model_dir}: no checkpoint (ckpt-*) found")
    if not tf.io.gfile.exists(ckpt + ".index"):
        raise StepFailed(f"{ckpt}: checkpoint named in {model_dir}/checkpoint is missing")
    return ckpt


def restore_model(model, ckpt_path: str) -> None:
    """Restore model weights from a trainer checkpoint (StepFailed when corrupt or mismatched)."""
    import tensorflow as tf

    # the trainer checkpoint holds backbone/decoder/head at its root (model.checkpoint_items)
    ckpt = tf.train.Checkpoint(**model.checkpoint_items)
    try:
        ckpt.read(ckpt_path).expect_partial().assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError, IndexError) as exc:  # IndexError: truncated
        raise StepFailed(f"{ckpt_path}: cannot restore the model from this checkpoint "
                         f"(corrupt or a different architecture): {str(exc).splitlines()[0]}") from None


@dataclass
class Detector:
    model_dir: Path
    label_names: list[str]
    checkpoint: str
    input_size: tuple[int, int]
    experiment: object = field(repr=False)
    model: object = field(repr=False)
    _serve: object = field(repr=False, default=None)

    def predict(self, images, *, batch_size: int = 8) -> list[dict]:
        """uint8 RGB images (an NHWC array, or a list of HWC arrays of any sizes) ->
        one dict per image: boxes [M,4] normalized ymin,xmin,ymax,xmax; classes [M] 0-based label
        index; scores [M], high to low."""
        import tensorflow as tf

        if isinstance(images, np.ndarray) and images.ndim == 4:
            items: Sequence[np.ndarray] = list(images)
        else:
            items = list(images)
        out: list[dict | None] = [None] * len(items)
        # group equal sizes so each call is one batch tensor
        by_shape: dict[tuple, list[int]] = {}
        for i, im in enumerate(items):
            im = np.asarray(im)
            if im.ndim != 3 or im.shape[2] != 3:
                raise ValueError(f"image {i}: expected HxWx3, got shape {im.shape}")
            by_shape.setdefault(im.shape, []).append(i)
        for idxs in by_shape.values():
            for s in range(0, len(idxs), batch_size):
                chunk = idxs[s:s + batch_size]
                batch = np.stack([np.asarray(items[i], dtype=np.uint8) for i in chunk])
                det = self._serve(tf.constant(batch))
                n = det["num_detections"].numpy()
                boxes = det["detection_boxes"].numpy()
                classes = det["detection_classes"].numpy()
                scores = det["detection_scores"].numpy()
                for j, i in enumerate(chunk):
                    m = int(n[j])
                    out[i] = {
                        "boxes": boxes[j, :m].astype(np.float32),
                        # model class k (1..K) -> label index k-1
                        "classes": (classes[j, :m].astype(np.int64) - 1),
                        "scores": scores[j, :m].astype(np.float32),
                    }
        return out  # type: ignore[return-value]


def load_detector(model_dir: str | Path, *, checkpoint: str | None = None) -> Detector:
    """Rebuild the model from `model_dir/params.yaml`, restore the newest (or the given) checkpoint."""
    import tensorflow as tf
    from official.core import task_factory
    from official.vision.serving import detection

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise StepFailed(f"{model_dir}: model folder not found")
    exp = read_experiment(model_dir)
    names = read_labels(model_dir)
    if exp.task.model.num_classes != len(names) + 1:
        raise StepFailed(f"{model_dir}: {LABELS_FILE} names {len(names)} labels but the model has "
                         f"{exp.task.model.num_classes - 1} classes")
    ckpt = checkpoint or latest_checkpoint(model_dir)
    task = task_factory.get_task(exp.task, logging_dir=str(model_dir))
    model = task.build_model()
    restore_model(model, ckpt)

    exp.task.export_config.output_normalized_coordinates = True
    size = list(exp.task.model.input_size[:2])
    module = detection.DetectionModule(exp, batch_size=None, input_image_size=size, model=model)
    serve = tf.function(module.serve, input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.uint8)], reduce_retracing=True)
    return Detector(model_dir=model_dir, label_names=names, checkpoint=ckpt,
                    input_size=(size[0], size[1]), experiment=exp, model=model, _serve=serve)
