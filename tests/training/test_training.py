"""camtune.training: Model Garden config from params, records in its keys, training + resume after
kill -9, fine-tune from the base weights, the detector, and the refusals. Tiny: 128 px, batch 2,
a handful of steps on a handful of generated images."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from camtune.core import config
from camtune.core.dataset import load_dataset
from camtune.core.errors import StepFailed
from tests.support.training_data import make_dataset

from tests.support.repo import ROOT  # noqa: E402
TINY = {"training.input_size": 128, "training.fpn_filters": 32, "training.head_convs": 1,
        "training.log_every": 2,
        "train_base.steps": 6, "train_base.batch_size": 2, "train_base.warmup_steps": 1,
        "train_base.checkpoint_every": 2,
        "finetune.steps": 2, "finetune.batch_size": 2,
        "finetune.warmup_steps": 0, "finetune.checkpoint_every": 2}


def tiny_params(**extra):
    return config.load(ROOT / "params.yaml", {**TINY, **extra})


# -- experiment config ----------------------------------------------------------------------

def test_experiment_follows_params():
    from camtune.training.experiment import build_experiment_config

    p = tiny_params()
    exp = build_experiment_config(p, stage="base", model_dir="m", train_files=["a.tfrecord"])
    m = exp.task.model
    assert m.backbone.type == "mobiledet" and m.backbone.mobiledet.model_id == "MobileDetEdgeTPU"
    assert m.decoder.type == "fpn" and m.decoder.fpn.use_separable_conv
    assert m.head.use_separable_conv
    assert (m.min_level, m.max_level) == (3, 5)
    assert m.input_size == [128, 128, 3]
    assert m.num_classes == len(p.labels.names) + 1
    assert exp.task.train_data.input_path == ["a.tfrecord"]
    assert exp.task.train_data.global_batch_size == 2
    assert exp.trainer.train_steps == 6 and exp.trainer.checkpoint_interval == 2
    assert exp.task.init_checkpoint == ""

    changed = build_experiment_config(
        tiny_params(**{"training.backbone": "MobileDetCPU", "training.input_size": 160,
                       "finetune.freeze_backbone": True,
                       "finetune.init_modules": "backbone_decoder",
                       "finetune.learning_rate": 0.005,
                       "training.augmentation.hflip": False,
                       "labels.names": ["person", "car"], "labels.attribute_parents": {}}),
        stage="finetune", model_dir="m", train_files=["b.tfrecord"], init_checkpoint="base/")
    cm = changed.task.model
    assert cm.backbone.mobiledet.model_id == "MobileDetCPU"
    assert cm.input_size == [160, 160, 3] and cm.num_classes == 3
    assert changed.task.freeze_backbone and changed.task.init_checkpoint == "base/"
    assert list(changed.task.init_checkpoint_modules) == ["backbone", "decoder"]
    assert changed.task.train_data.parser.aug_rand_hflip is False
    lr = changed.trainer.optimizer_config.learning_rate.cosine.initial_learning_rate
    assert lr == pytest.approx(0.005)
    assert changed.trainer.train_steps == 2

    recipe = build_experiment_config(
        tiny_params(**{"train_base.optimizer": "sgd", "training.loss.focal_gamma": 2.0,
                       "training.loss.focal_alpha": 0.5, "training.loss.box_weight": 20}),
        stage="base", model_dir="m", train_files=["a.tfrecord"])
    assert recipe.trainer.optimizer_config.optimizer.type == "sgd"
    assert recipe.trainer.optimizer_config.optimizer.sgd.momentum == 0.9
    assert exp.trainer.optimizer_config.optimizer.type == "adam"  # params.yaml's default
    losses = recipe.task.losses
    assert (losses.focal_loss_gamma, losses.focal_loss_alpha, losses.box_loss_weight) == (2.0, 0.5, 20)


# -- records --------------------------------------------------------------------------------

def test_records_decode_with_model_garden(tmp_path):
    import tensorflow as tf
    from official.vision.dataloaders import tf_example_decoder

    from camtune.training import records

    ds = load_dataset(make_dataset(tmp_path / "ds", 6, unverified=1, negatives=1))
    p = tiny_params()
    rs = records.write_records([records.Part(ds, repeats={3: 3})], tmp_path / "rec",
                               label_names=p.labels.names, shards=2)
    assert rs.images == 5 and rs.negatives == 1 and rs.examples == 7  # unverified out, id 3 x3
    dec = tf_example_decoder.TfExampleDecoder()
    seen = {}
    for raw in tf.data.TFRecordDataset(rs.files):
        # same data -> same bytes in every process (resume and DVC compare them)
        assert tf.train.Example.FromString(raw.numpy()).SerializeToString(deterministic=True) == raw.numpy()
        d = dec.decode(raw)
        seen.setdefault(int(d["source_id"].numpy()), []).append(d)
    assert sorted(seen) == [1, 2, 3, 4, 5] and len(seen[3]) == 3
    assert seen[1][0]["groundtruth_classes"].shape[0] == 0  # the negative
    anns = ds.annotations
    for iid, (d, *_) in seen.items():
        want = anns[anns.image_id == iid].sort_values("id")
        w, h = int(d["width"]), int(d["height"])
        # person -> 1, car -> 3 (labels.names order, 1-based)
        assert list(d["groundtruth_classes"].numpy()) == [p.labels.names.index(l) + 1 for l in want.label]
        got = d["groundtruth_boxes"].numpy()  # ymin xmin ymax xmax, normalized
        exp = np.stack([want.y / h, want.x / w, (want.y + want.h) / h, (want.x + want.w) / w], 1)
        np.testing.assert_allclose(got, exp.reshape(-1, 4), atol=1e-5)


def test_empty_training_set_is_refused(tmp_path):
    from camtune.training import records

    ds = load_dataset(make_dataset(tmp_path / "ds", 2, unverified=2))
    with pytest.raises(StepFailed, match="empty"):
        records.write_records([records.Part(ds)], tmp_path / "rec", label_names=["person"])


# -- training: kill -9, resume, fine-tune ------------------------------------------------------

KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path[:0] = [{root!r}, {tests!r}]
    from camtune.core import config
    from camtune.training import experiment, train
    p = config.load({params!r}, {tiny!r})
    exp = experiment.build_experiment_config(p, stage="base", model_dir={model!r}, train_files={files!r})
    def die(rec):
        print("progress", rec["step"], rec["loss"], flush=True)
        if rec["step"] >= 4:
            os.kill(os.getpid(), signal.SIGKILL)  # kill -9 in the middle of training
    train.run(exp, {model!r}, label_names=p.labels.names, progress=die)
""")


SEEDED_SCRIPT = textwrap.dedent("""
    import hashlib, sys
    sys.path[:0] = [{root!r}, {tests!r}]
    import numpy as np, tensorflow as tf
    from camtune.core import config
    from camtune.training import experiment, train
    p = config.load({params!r}, {{**{tiny!r}, "training.seed": {seed!r}, "train_base.batch_size": 4,
                                 "train_base.steps": 8, "training.precise_bn_batches": 2}})
    exp = experiment.build_experiment_config(p, stage="base", model_dir={model!r}, train_files={files!r})
    r = train.run(exp, {model!r}, label_names=p.labels.names, progress=None)
    ckpt = tf.train.load_checkpoint(r.checkpoint)
    h = hashlib.sha1()
    for name in sorted(ckpt.get_variable_to_shape_map()):
        h.update(name.encode() + np.asarray(ckpt.get_tensor(name)).tobytes())
    print("digest", h.hexdigest())
""")


def test_seeded_training_is_reproducible(tmp_path):
    """training.seed: two runs of the same params and records give bit-identical checkpoints
    (weights, optimizer slots, precise-BN statistics); another seed gives another model."""
    from camtune.training import records

    p = tiny_params()
    ds = load_dataset(make_dataset(tmp_path / "ds", 8))
    rs = records.write_records([records.Part(ds)], tmp_path / "rec", label_names=p.labels.names)
    procs = []
    for i, seed in enumerate([3, 3, 4]):
        script = SEEDED_SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"), params=str(ROOT / "params.yaml"),
                                      tiny=TINY, seed=seed, model=str(tmp_path / f"m{i}"), files=rs.files)
        procs.append(subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}))
    digests = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        digests.append([ln.split()[1] for ln in out.splitlines() if ln.startswith("digest")][0])
    assert digests[0] == digests[1]
    assert digests[2] != digests[0]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A base model trained 6 steps - after a kill -9 at step 4 and a resume."""
    from camtune.training import experiment, records, train

    tmp = tmp_path_factory.mktemp("base")
    p = tiny_params()
    ds = load_dataset(make_dataset(tmp / "ds", 8))
    rs = records.write_records([records.Part(ds)], tmp / "rec", label_names=p.labels.names)
    model = tmp / "model"
    script = KILL_SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"), params=str(ROOT / "params.yaml"),
                                tiny=TINY, model=str(model), files=rs.files)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == -9, proc.stderr[-3000:]
    killed_at = [ln for ln in proc.stdout.splitlines() if ln.startswith("progress")]
    assert killed_at[-1].split()[1] == "4"

    exp = experiment.build_experiment_config(p, stage="base", model_dir=str(model), train_files=rs.files)
    result = train.run(exp, model, label_names=p.labels.names, progress=None)
    return {"dir": model, "result": result, "params": p, "ds": ds, "tmp": tmp, "files": rs.files}


def test_training_resumes_after_kill(base):
    r = base["result"]
    # the kill came after step 4's report but before its checkpoint: ckpt-2 was the last one
    assert r.start_step == 2 and r.final_step == 6 and not r.restarted
    assert Path(r.checkpoint).name == "ckpt-6"
    steps = [rec["step"] for rec in r.progress]
    assert steps == [4, 6]
    assert all(np.isfinite(rec["loss"]) and rec["loss"] > 0 for rec in r.progress)
    # progress from both runs is on disk; TensorBoard events too
    from camtune.training.train import read_progress
    assert [rec["step"] for rec in read_progress(base["dir"])] == [2, 4, 4, 6]
    assert list((base["dir"] / "train").glob("events.out.tfevents.*"))
    assert json.loads((base["dir"] / "labels.json").read_text())["names"] == base["params"].labels.names


def test_changed_experiment_starts_over(base, tmp_path):
    from camtune.training import experiment, train

    model = tmp_path / "model"
    shutil.copytree(base["dir"], model)
    labels = base["params"].labels.names
    same = experiment.build_experiment_config(base["params"], stage="base", model_dir=str(model),
                                              train_files=base["files"])
    assert train.prepare_model_dir(model, train.fingerprint(same, base["files"], labels)) == (True, False)
    assert list(model.glob("ckpt-6.index"))
    other = experiment.build_experiment_config(tiny_params(**{"train_base.steps": 2}), stage="base",
                                               model_dir=str(model), train_files=base["files"])
    resume, restarted = train.prepare_model_dir(model, train.fingerprint(other, base["files"], labels))
    assert (resume, restarted) == (False, True) and not list(model.iterdir())  # old run cleared


def test_precise_bn_recomputes_only_the_statistics_once(base, tmp_path):
    """A finished run asked for precise BN recomputes the BN statistics of its last checkpoint,
    saves them under the same step, and a second run does not redo it."""
    from camtune.training import experiment, train

    model = tmp_path / "model"
    shutil.copytree(base["dir"], model)
    before = [(v.name, v.numpy()) for v in _restored_base(model).weights]
    exp = experiment.build_experiment_config(base["params"], stage="base", model_dir=str(model),
                                             train_files=base["files"])
    r = train.run(exp, model, label_names=base["params"].labels.names, progress=None,
                  precise_bn_batches=2)
    assert r.final_step == 6 and r.precise_bn["step"] == 6 and r.precise_bn["batches"] == 2
    assert Path(r.checkpoint).name == "ckpt-6"
    after = [v.numpy() for v in _restored_base(model).weights]  # the same build order, other names
    assert len(before) == len(after) > 100
    changed = [n for (n, a), b in zip(before, after) if not np.array_equal(a, b)]
    assert changed and all("moving_" in n for n in changed), changed[:5]
    # the recompute is recorded; the same request again is a no-op (the checkpoint is not rewritten)
    stamp = (model / "ckpt-6.index").stat().st_mtime_ns
    again = train.run(exp, model, label_names=base["params"].labels.names, progress=None,
                      precise_bn_batches=2)
    assert again.precise_bn == r.precise_bn and (model / "ckpt-6.index").stat().st_mtime_ns == stamp


def test_finetune_starts_from_base_weights(base, tmp_path):
    from camtune.training import experiment, records, train

    p = base["params"]
    ds = load_dataset(make_dataset(tmp_path / "user", 4, start_id=500, seed=3, unverified=0))
    rs = records.write_records([records.Part(ds)], tmp_path / "rec", label_names=p.labels.names)
    exp = experiment.build_experiment_config(p, stage="finetune", model_dir=str(tmp_path / "ft"),
                                             train_files=rs.files, init_checkpoint=str(base["dir"]))
    captured = {}

    def before_first_step(trainer):  # the model as the trainer will take step 1 with
        captured["step"] = int(trainer.global_step.numpy())
        captured["weights"] = [v.numpy() for v in trainer.model.weights]

    r = train.run(exp, tmp_path / "ft", label_names=p.labels.names, progress=None, on_start=before_first_step)
    assert captured["step"] == 0 and r.final_step == 2
    # every weight of the model before step 1 equals the base checkpoint's value of that weight
    base_w = [(v.name, v.numpy()) for v in _restored_base(base["dir"]).weights]
    assert len(base_w) == len(captured["weights"]) > 100
    for (name, want), got in zip(base_w, captured["weights"]):
        np.testing.assert_array_equal(got, want, err_msg=name)
    # ...and the fine-tune then moved them
    tuned = [v.numpy() for v in _restored_base(tmp_path / "ft").weights]
    assert any(not np.array_equal(a, b) for (_, a), b in zip(base_w, tuned))


def _restored_base(model_dir):
    from official.core import task_factory

    from camtune.model.checkpoint import latest_checkpoint, read_experiment, restore_model

    exp = read_experiment(model_dir)
    model = task_factory.get_task(exp.task).build_model()
    restore_model(model, latest_checkpoint(model_dir))
    return model


def test_finetune_refuses_other_label_set(base, tmp_path):
    from camtune.training import experiment, train

    p = tiny_params(**{"labels.names": ["person", "car"], "labels.attribute_parents": {}})
    exp = experiment.build_experiment_config(p, stage="finetune", model_dir=str(tmp_path / "ft"),
                                             train_files=base["files"], init_checkpoint=str(base["dir"]))
    with pytest.raises(StepFailed, match=r"labels\.json.*trained on labels"):
        train.run(exp, tmp_path / "ft", label_names=p.labels.names, progress=None)


def test_corrupt_or_missing_checkpoint(base, tmp_path):
    from camtune.model.checkpoint import load_detector

    bad = tmp_path / "bad"
    shutil.copytree(base["dir"], bad)
    for f in bad.glob("ckpt-*.data-*"):
        f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(StepFailed, match="ckpt-6"):
        load_detector(bad)
    for f in bad.glob("ckpt-*"):
        f.unlink()
    with pytest.raises(StepFailed, match="no checkpoint"):
        load_detector(bad)
    with pytest.raises(StepFailed, match="not found"):
        load_detector(tmp_path / "nowhere")


def test_detector_predicts_in_the_contract_format(base):
    from camtune.model.checkpoint import load_detector

    det = load_detector(base["dir"])
    assert det.label_names == base["params"].labels.names
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (96, 160, 3), dtype=np.uint8) for _ in range(2)]
    imgs.append(rng.integers(0, 255, (200, 120, 3), dtype=np.uint8))
    out = det.predict(imgs)
    assert len(out) == 3
    for o in out:
        m = len(o["scores"])
        assert o["boxes"].shape == (m, 4) and o["classes"].shape == (m,)
        assert np.all((o["boxes"] >= 0) & (o["boxes"] <= 1))
        assert np.all((o["classes"] >= 0) & (o["classes"] < len(det.label_names)))
        assert np.all(np.diff(o["scores"]) <= 1e-6)
    assert len(det.predict(np.stack(imgs[:2]))) == 2
