"""A base that starts from a pretrained checkpoint (train_base.init_checkpoint): a tiny base
trained with 3 labels initialises a base with 5 labels - backbone (and decoder) restored, head new
and listed as re-initialised, backbone frozen for the first steps; a mismatched backbone refused.
Tiny on purpose: 64 px, 16 filters, 2 steps of batch 2."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from camtune.core import config
from camtune.core.dataset import load_dataset
from camtune.core.errors import StepFailed
from tests.support.training_data import make_dataset

from tests.support.repo import ROOT  # noqa: E402
TINY = {"training.input_size": 64, "training.fpn_filters": 16, "training.head_convs": 1,
        "training.log_every": 2, "labels.attribute_parents": {},
        "train_base.steps": 2, "train_base.batch_size": 2, "train_base.warmup_steps": 0,
        "train_base.checkpoint_every": 2, "train_base.learning_rate": 0.05}
THREE = ["person", "car", "dog"]
FIVE = ["person", "car", "dog", "cat", "deer"]


def tiny(labels, **extra):
    return config.load(ROOT / "params.yaml", {**TINY, "labels.names": labels, **extra})


def _train(p, tmp: Path, name: str, ds, **kw):
    from camtune.training import experiment, records, train

    rs = records.write_records([records.Part(ds)], tmp / f"{name}-rec", label_names=p.labels.names)
    exp = experiment.build_experiment_config(p, stage="base", model_dir=str(tmp / name), train_files=rs.files)
    return train.run(exp, tmp / name, label_names=p.labels.names, progress=None,
                     freeze_backbone_steps=experiment.freeze_backbone_steps(p, "base"), **kw)


def _weights(model_dir, trainable_only=False):
    """{module: [(name, value)]} of a trained model_dir's newest checkpoint."""
    from official.core import task_factory

    from camtune.model.checkpoint import latest_checkpoint, read_experiment, restore_model

    exp = read_experiment(model_dir)
    model = task_factory.get_task(exp.task).build_model()
    restore_model(model, latest_checkpoint(model_dir))
    return {k: [(v.name, v.numpy()) for v in (layer.trainable_variables if trainable_only else layer.variables)]
            for k, layer in model.checkpoint_items.items()}


@pytest.fixture(scope="module")
def base3(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("init")
    ds = load_dataset(make_dataset(tmp / "data", 6, size=(96, 64), unverified=0))
    _train(tiny(THREE), tmp, "base3", ds)
    return tmp, ds


def test_experiment_takes_the_init_params():
    from camtune.training.experiment import build_experiment_config

    p = tiny(FIVE, **{"train_base.init_checkpoint": "pre/ckpt-9", "train_base.init_modules": "backbone"})
    exp = build_experiment_config(p, stage="base", model_dir="m", train_files=["a"])
    assert exp.task.init_checkpoint == "pre/ckpt-9" and list(exp.task.init_checkpoint_modules) == ["backbone"]
    assert not exp.task.freeze_backbone
    plain = build_experiment_config(tiny(FIVE), stage="base", model_dir="m", train_files=["a"])
    assert plain.task.init_checkpoint == "" and plain.task.init_checkpoint_modules == "all"
    # the fine-tune's own init_checkpoint wins over the base handed to it (no base at hand)
    ft = tiny(FIVE, **{"finetune.init_checkpoint": "pre", "finetune.init_modules": "backbone_decoder"})
    exp = build_experiment_config(ft, stage="finetune", model_dir="m", train_files=["a"], init_checkpoint="base")
    assert exp.task.init_checkpoint == "pre" and list(exp.task.init_checkpoint_modules) == ["backbone", "decoder"]


def test_base_with_other_labels_starts_from_a_checkpoint(base3):
    tmp, ds = base3
    before = {}

    def capture(trainer):
        before.update({k: [v.numpy() for v in layer.variables]
                       for k, layer in trainer.model.checkpoint_items.items()})

    p = tiny(FIVE, **{"train_base.init_checkpoint": str(tmp / "base3"),
                      "train_base.init_modules": "backbone_decoder",
                      "train_base.freeze_backbone_steps": 2})
    r = _train(p, tmp, "base5", ds, on_start=capture)
    old = _weights(tmp / "base3")
    # backbone and decoder start exactly as the 3-label checkpoint left them
    for module in ("backbone", "decoder"):
        assert len(before[module]) == len(old[module]) > 10
        for (name, want), got in zip(old[module], before[module]):
            np.testing.assert_array_equal(got, want, err_msg=name)
    # the head is new: the classifier has 5+1 classes now, the rest was re-initialised
    new_shapes = [v.shape for v in before["head"]]
    assert new_shapes != [v.shape for _, v in old["head"]]
    # (randomly initialised kernels: batch-norm gammas/betas start at constants either way)
    kernels = [(n, w, g) for (n, w), g in zip(old["head"], before["head"])
               if "kernel" in n and w.shape == g.shape]
    assert kernels and all(not np.array_equal(w, g) for _, w, g in kernels), [n for n, _, _ in kernels]
    # the training log lists both
    assert r.init["modules"] == ["backbone", "decoder"]
    assert set(r.init["restored"]) == {"backbone", "decoder"} and set(r.init["reinitialised"]) == {"head"}
    assert r.init["counts"]["restored"]["backbone"] == len(old["backbone"])
    assert r.init["checkpoint_labels"] == THREE and r.init["labels"] == FIVE
    assert (tmp / "base5" / "init.json").is_file()
    # 2 steps, both frozen: the backbone's trainable weights did not move, the head did
    after = _weights(tmp / "base5", trainable_only=True)
    old_trainable = _weights(tmp / "base3", trainable_only=True)
    assert len(after["backbone"]) == len(old_trainable["backbone"]) > 10
    for (name, want), (_, got) in zip(old_trainable["backbone"], after["backbone"]):
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert any(not np.array_equal(a, b) for a, (_, b) in zip(before["head"], after["head"]))


def test_mismatched_backbone_is_refused_naming_both(base3, tmp_path):
    tmp, ds = base3
    p = tiny(FIVE, **{"training.backbone": "MobileDetCPU", "train_base.init_checkpoint": str(tmp / "base3")})
    with pytest.raises(StepFailed, match=r"backbone is mobiledet/MobileDetEdgeTPU, the configured backbone "
                                         r"is mobiledet/MobileDetCPU"):
        _train(p, tmp_path, "cpu", ds)
    # a bare checkpoint (no Model Garden params.yaml beside it): the restore refuses, both named
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in (tmp / "base3").glob("ckpt-2*"):
        shutil.copy(f, bare / f.name)
    p = tiny(FIVE, **{"training.backbone": "MobileDetCPU", "train_base.init_checkpoint": str(bare / "ckpt-2")})
    with pytest.raises(StepFailed, match=r"bare/ckpt-2: cannot restore.*backbone mobiledet/MobileDetCPU.*"
                                         r"checkpoint's backbone: unknown"):
        _train(p, tmp_path, "cpu2", ds)
    # restoring "all" (head included) from a checkpoint of another label set
    p = tiny(FIVE, **{"train_base.init_checkpoint": str(tmp / "base3"), "train_base.init_modules": "all"})
    with pytest.raises(StepFailed, match=r"trained on labels \['person', 'car', 'dog'\].*backbone_decoder"):
        _train(p, tmp_path, "all", ds)
    with pytest.raises(StepFailed, match=r"nowhere: base model folder not found"):
        _train(tiny(FIVE, **{"train_base.init_checkpoint": str(tmp_path / "nowhere")}), tmp_path, "x", ds)
