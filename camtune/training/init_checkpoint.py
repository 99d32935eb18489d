"""Starting a training stage from a checkpoint: checks before, a record after, a frozen start.

The restore itself is Model Garden's: `RetinaNetTask.initialize()` reads `task.init_checkpoint`
(a model_dir -> its newest checkpoint, or a checkpoint prefix) and restores
`task.init_checkpoint_modules` ("all", or a list of "backbone" / "decoder") with
`tf.train.Checkpoint(...).read(...).expect_partial().assert_existing_objects_matched()`;
whatever it does not restore keeps the initialisation `build_model()` gave it. So a head trained
for another label set is simply not restored (init_modules backbone / backbone_decoder) and starts
afresh. This module adds what Model Garden leaves to the caller:

  * `check`: before anything is built, the checkpoint exists, its model (read from the Model
    Garden `params.yaml` beside it) has the configured backbone (and decoder, and for "all" the
    head and label set), else a StepFailed naming both;
  * `describe`: after the restore, which variables came from the checkpoint and which were
    re-initialised (for the training log);
  * `freeze_first_steps`: the backbone frozen for the first N steps. Model Garden's
    `freeze_backbone` freezes for the whole run (trainable=False at build time); for a frozen
    start the backbone's gradients are multiplied by 0 until the optimizer's step count reaches N
    (with SGD + momentum starting from zero slots, the weights then do not move at all). Batch
    norm moving statistics still adapt during those steps, as in any training-mode forward pass.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from camtune.core.errors import StepFailed
from camtune.model.checkpoint import LABELS_FILE, PARAMS_FILE, read_labels

INIT_FILE = "init.json"   # beside the checkpoints: what the run started from (kept on resume)


@dataclass(frozen=True)
class Source:
    prefix: str                              # the checkpoint prefix that will be read
    model_dir: Path
    labels: list[str] | None = None          # labels.json beside it, if any
    backbone: str | None = None              # "mobiledet/MobileDetEdgeTPU", from params.yaml
    notes: list[str] = field(default_factory=list)


def _modules(exp) -> list[str]:
    m = exp.task.init_checkpoint_modules
    return ["backbone", "decoder", "head"] if m == "all" else list(m)


def backbone_name(model_cfg) -> str:
    """'mobiledet/MobileDetEdgeTPU' - the backbone type and its variant, as Model Garden names them."""
    bb = model_cfg.backbone
    sub = bb.get()
    variant = getattr(sub, "model_id", None)
    return f"{bb.type}/{variant}" if variant else str(bb.type)


def _decoder_name(model_cfg) -> str:
    d = model_cfg.decoder
    sub = d.get()
    if d.type == "fpn":
        return (f"fpn(num_filters={sub.num_filters}, separable={sub.use_separable_conv}, "
                f"levels={model_cfg.min_level}-{model_cfg.max_level})")
    return str(d.type)


def _head_name(model_cfg) -> str:
    h = model_cfg.head
    return f"retinanet_head(num_convs={h.num_convs}, num_filters={h.num_filters}, classes={model_cfg.num_classes})"


def _read_saved_model_cfg(model_dir: Path):
    """The checkpoint's own model config from the Model Garden params.yaml beside it, or None."""
    path = model_dir / PARAMS_FILE
    if not path.is_file():
        return None
    from official.core import exp_factory
    from official.modeling import hyperparams

    from camtune.training.experiment import BASE_EXPERIMENT

    try:
        exp = hyperparams.override_params_dict(exp_factory.get_exp_config(BASE_EXPERIMENT), str(path),
                                               is_strict=False)
    except Exception as exc:  # an experiment of another kind of model: report, do not guess
        raise StepFailed(f"{path}: cannot read the checkpoint's experiment config: "
                         f"{str(exc).splitlines()[0]}") from None
    return exp.task.model


def check(exp, label_names: list[str]) -> Source:
    """Resolve `exp.task.init_checkpoint` to a prefix and check it fits the configured model.
    StepFailed (exit 1) names the path, and both models when they differ."""
    import tensorflow as tf

    p = Path(exp.task.init_checkpoint)
    if p.is_dir():
        prefix = tf.train.latest_checkpoint(str(p))
        if not prefix:
            raise StepFailed(f"{p}: no checkpoint (ckpt-*) in this init_checkpoint folder")
        model_dir = p
    elif Path(f"{p}.index").is_file():
        prefix, model_dir = str(p), p.parent
    else:
        raise StepFailed(f"{p}: base model folder not found (an init checkpoint is a Model Garden "
                         f"model_dir or a checkpoint prefix with its .index; for a fine-tune from "
                         f"the base: train the base first, dvc repro train_base)")
    labels = None
    if (model_dir / LABELS_FILE).is_file():
        labels = read_labels(model_dir)
    modules = _modules(exp)
    mine = exp.task.model
    if "head" in modules and labels is not None and labels != list(label_names):
        raise StepFailed(
            f"{model_dir / LABELS_FILE}: the base model was trained on labels {labels}, but "
            f"labels.names is {list(label_names)}; retrain the base (dvc repro train_base), use the "
            f"base's label set, or restore only backbone_decoder (the head is then re-initialised)")
    saved = _read_saved_model_cfg(model_dir)
    notes = []
    if saved is None:
        notes.append(f"no {PARAMS_FILE} beside the checkpoint: its architecture is checked by the "
                     f"restore itself")
    else:
        pairs = [("backbone", backbone_name(saved), backbone_name(mine))]
        if "decoder" in modules:
            pairs.append(("decoder", _decoder_name(saved), _decoder_name(mine)))
        if "head" in modules:
            pairs.append(("head", _head_name(saved), _head_name(mine)))
        for what, theirs, ours in pairs:
            if theirs != ours:
                raise StepFailed(
                    f"{prefix}: the checkpoint's {what} is {theirs}, the configured {what} is {ours} "
                    f"(training.backbone / fpn_filters / head_convs / init_modules); "
                    f"use a checkpoint of the configured model or change the params")
    return Source(prefix=prefix, model_dir=model_dir, labels=labels,
                  backbone=backbone_name(saved) if saved is not None else None, notes=notes)


def restore_failed(exc: BaseException, exp, source: Source) -> StepFailed:
    """A restore that TF refused (shapes, missing objects) -> a message naming both models."""
    theirs = source.backbone or "unknown (no params.yaml beside it)"
    return StepFailed(f"{source.prefix}: cannot restore {exp.task.init_checkpoint_modules} from this "
                      f"checkpoint into the configured model (backbone {backbone_name(exp.task.model)}; "
                      f"the checkpoint's backbone: {theirs}): {str(exc).splitlines()[0]}")


def describe(model, exp, source: Source, label_names: list[str]) -> dict:
    """What the restore did: variables of the restored modules (all of them matched: Model Garden
    asserts it) and the re-initialised rest, by module."""
    modules = _modules(exp)
    restored, fresh = {}, {}
    for name, layer in model.checkpoint_items.items():
        (restored if name in modules else fresh)[name] = [v.name for v in layer.variables]
    return {"init_checkpoint": source.prefix, "modules": modules,
            "checkpoint_labels": source.labels, "labels": list(label_names),
            "checkpoint_backbone": source.backbone, "notes": source.notes,
            "restored": restored, "reinitialised": fresh,
            "counts": {"restored": {k: len(v) for k, v in restored.items()},
                       "reinitialised": {k: len(v) for k, v in fresh.items()}}}


def summary(info: dict) -> str:
    def part(d):
        return ", ".join(f"{k} {n}" for k, n in d.items()) or "none"
    return (f"init from {info['init_checkpoint']}: restored variables: {part(info['counts']['restored'])}; "
            f"re-initialised: {part(info['counts']['reinitialised'])}")


def write(model_dir: Path, info: dict) -> None:
    from camtune.core import atomic
    atomic.write_json(Path(model_dir) / INIT_FILE, info)


def read(model_dir: Path) -> dict | None:
    try:
        return json.loads((Path(model_dir) / INIT_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class _FrozenStart:
    """An optimizer stand-in for the task's train_step: backbone gradients x 0 until step N."""

    def __init__(self, optimizer, frozen_vars, steps: int):
        self._opt = optimizer
        self._frozen = {v.ref() for v in frozen_vars}
        self._steps = steps

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        import tensorflow as tf

        pairs = list(grads_and_vars)
        live = tf.cast(self._opt.iterations >= self._steps, tf.float32)
        pairs = [(g * tf.cast(live, g.dtype) if (g is not None and v.ref() in self._frozen) else g, v)
                 for g, v in pairs]
        return self._opt.apply_gradients(pairs, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._opt, name)


def freeze_first_steps(task, steps: int) -> None:
    """Make `task.train_step` keep the backbone's weights fixed for the first `steps` steps."""
    if steps <= 0:
        return
    inner = task.train_step

    def train_step(inputs, model, optimizer, metrics=None):
        return inner(inputs, model=model, optimizer=_FrozenStart(
            optimizer, model.backbone.trainable_variables, steps), metrics=metrics)

    task.train_step = train_step
