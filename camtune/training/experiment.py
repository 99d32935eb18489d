"""params.yaml -> Model Garden's RetinaNet ExperimentConfig.

We start from Model Garden's registered `retinanet_mobile_coco` experiment (its mobile recipe: SGD
with momentum, separable-conv head, swish, l2 decay) and override only what params.yaml decides:
the MobileDet backbone, an FPN decoder with separable convolutions on levels 3-5, the input size,
one class per label plus background, the data, the schedule and the augmentation. Everything else
(parser, anchor labeler, losses, detection generator) stays Model Garden's.
"""
from __future__ import annotations

import math
from typing import Literal

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import optimization
from official.vision.configs import backbones, decoders
from official.vision.configs import retinanet as rn_cfg

from camtune.core.config import Params
from camtune.model.checkpoint import BASE_EXPERIMENT

MIN_LEVEL, MAX_LEVEL = 3, 5
Stage = Literal["base", "finetune"]
# params' init_modules -> Model Garden's task.init_checkpoint_modules
INIT_MODULES = {"all": "all", "backbone": ["backbone"], "backbone_decoder": ["backbone", "decoder"]}


def _schedule(lr: float, steps: int, warmup: int, kind: str,
              optimizer: str = "sgd") -> optimization.OptimizationConfig:
    if kind == "cosine":
        learning_rate = {"type": "cosine",
                         "cosine": {"initial_learning_rate": lr, "decay_steps": steps, "alpha": 0.0}}
    elif kind == "stepwise":
        # the classic detection recipe: /10 at 2/3 and again at 8/9 of training
        b1, b2 = max(1, steps * 2 // 3), max(2, steps * 8 // 9)
        if b2 <= b1:
            b2 = b1 + 1
        learning_rate = {"type": "stepwise",
                         "stepwise": {"boundaries": [b1, b2], "values": [lr, lr / 10, lr / 100]}}
    else:  # constant
        learning_rate = {"type": "constant", "constant": {"learning_rate": lr}}
    # clipping keeps from-scratch training with a small batch from blowing up in the first steps
    opt = {
        "optimizer": ({"type": "sgd", "sgd": {"momentum": 0.9, "global_clipnorm": 10.0}}
                      if optimizer == "sgd" else
                      {"type": "adam", "adam": {"global_clipnorm": 10.0}}),
        "learning_rate": learning_rate,
    }
    if warmup > 0:
        opt["warmup"] = {"type": "linear",
                         "linear": {"warmup_steps": warmup, "warmup_learning_rate": lr / 20}}
    return optimization.OptimizationConfig(opt)


def num_classes(params: Params) -> int:
    """Model class ids: 0 = background, k = labels.names[k-1]."""
    return len(params.labels.names) + 1


def build_experiment_config(
    params: Params,
    *,
    stage: Stage,
    model_dir: str,
    train_files: list[str],
    init_checkpoint: str | None = None,
) -> cfg.ExperimentConfig:
    """The full Model Garden experiment for one training stage (`base` or `finetune`).

    `model_dir` is not part of the config (train_lib takes it separately) but is accepted here so
    callers pass everything a stage needs in one place; `init_checkpoint` (a checkpoint file or a
    model_dir) initialises the model before step 1 (fine-tune from the base);
    `train_base.init_checkpoint` / `finetune.init_checkpoint` in params takes precedence over it.
    """
    if stage not in ("base", "finetune"):
        raise ValueError(f"stage must be 'base' or 'finetune', got {stage!r}")
    t = params.training
    sp = params.train_base if stage == "base" else params.finetune
    size = t.input_size

    exp = exp_factory.get_exp_config(BASE_EXPERIMENT)
    exp.runtime.distribution_strategy = {"default": "one_device", "mirrored": "mirrored",
                                         "multi_worker_mirrored": "multi_worker_mirrored"}[t.strategy]
    exp.runtime.mixed_precision_dtype = "float32"
    exp.runtime.num_gpus = 0  # filled in by train.py from the visible devices

    task = exp.task
    task.annotation_file = None
    task.use_coco_metrics = False  # evaluation is our own evaluate step
    model = task.model
    model.num_classes = num_classes(params)
    model.input_size = [size, size, 3]
    model.min_level, model.max_level = MIN_LEVEL, MAX_LEVEL
    model.backbone = backbones.Backbone(type="mobiledet",
                                        mobiledet=backbones.MobileDet(model_id=t.backbone))
    model.decoder = decoders.Decoder(
        type="fpn", fpn=decoders.FPN(num_filters=t.fpn_filters, use_separable_conv=True))
    model.head = rn_cfg.RetinaNetHead(num_convs=t.head_convs, num_filters=t.fpn_filters,
                                      use_separable_conv=True)
    model.anchor = rn_cfg.Anchor(num_scales=3, aspect_ratios=[0.5, 1.0, 2.0], anchor_size=4.0)
    model.norm_activation.use_sync_bn = t.strategy != "default"
    model.norm_activation.activation = "relu6"  # quantises well (int8 / Edge TPU export)
    model.detection_generator.max_num_detections = 100
    # class-aware combined NMS over the top 1000 boxes: 15x faster on a CPU than Model Garden's
    # per-class "v2" loop over 5000 (evaluation and the report run the float model on every image);
    # the int8 TFLite export uses TFLite's own post-processing op regardless
    model.detection_generator.nms_version = "batched"
    model.detection_generator.pre_nms_top_k = 1000
    task.losses.focal_loss_alpha = t.loss.focal_alpha
    task.losses.focal_loss_gamma = t.loss.focal_gamma
    task.losses.box_loss_weight = t.loss.box_weight

    data = task.train_data
    data.input_path = list(train_files)
    data.is_training = True
    data.global_batch_size = sp.batch_size
    data.dtype = "float32"  # bfloat16 is slow on CPUs
    data.shuffle_buffer_size = 1000
    # seeded shuffling and augmentation (train.run seeds the weight init and serialises the input pipeline)
    data.seed = None if t.seed is None else t.seed + (0 if stage == "base" else 1)
    data.deterministic = t.seed is not None
    data.parser.aug_rand_hflip = t.augmentation.hflip
    data.parser.aug_scale_min = t.augmentation.scale_min
    data.parser.aug_scale_max = t.augmentation.scale_max
    data.parser.max_num_instances = 100
    task.validation_data = rn_cfg.DataConfig(is_training=False, global_batch_size=1, dtype="float32")

    # where the weights start: the argument (the fine-tune's base) unless params name a checkpoint
    # (a pretrained base at home; a fine-tune with no base at hand); Model Garden's own
    # task.initialize() then restores `init_checkpoint_modules` and leaves the rest as built
    task.init_checkpoint = sp.init_checkpoint or init_checkpoint or ""
    task.init_checkpoint_modules = INIT_MODULES[sp.init_modules] if task.init_checkpoint else "all"
    task.freeze_backbone = stage == "finetune" and params.finetune.freeze_backbone

    tr = exp.trainer
    tr.train_steps = sp.steps
    tr.checkpoint_interval = min(sp.checkpoint_every, sp.steps)
    tr.summary_interval = min(t.log_every, sp.steps)
    # orbit reports (and checkpoints) at loop boundaries: a loop must divide both intervals
    tr.steps_per_loop = math.gcd(tr.checkpoint_interval, tr.summary_interval)
    tr.summary_interval = tr.steps_per_loop * max(1, tr.summary_interval // tr.steps_per_loop)
    tr.max_to_keep = 3
    tr.validation_steps = 0
    tr.validation_interval = sp.steps + 1  # no eval while training
    tr.best_checkpoint_export_subdir = ""
    tr.optimizer_config = _schedule(sp.learning_rate, sp.steps, min(sp.warmup_steps, sp.steps - 1),
                                    sp.lr_schedule, sp.optimizer)
    exp.validate()
    return exp


def freeze_backbone_steps(params: Params, stage: Stage) -> int:
    """Steps the backbone stays frozen at the start (not a Model Garden setting: train.run does it)."""
    return (params.train_base if stage == "base" else params.finetune).freeze_backbone_steps
