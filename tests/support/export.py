"""Export test support: an untrained (but complete) Model Garden model_dir built from the training
step's own experiment config, like `artifacts/finetune/model`, and the session's one export run.
Imported by tests/conftest.py so `export_run` is visible to every test folder (tests/steps/export uses it most)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest


def make_model_dir(root: str | Path, params) -> Path:
    """params.yaml (Model Garden's serialize_config) + ckpt-1 + labels.json, random weights.

    An untrained RetinaNet head starts at the focal-loss prior (scores ~0.01, under the
    post-processing threshold) and would emit no boxes at all; the classifier bias is zeroed so the
    contract tests see real detections (score 0.5) flow through every output.
    """
    import tensorflow as tf
    import tf_keras
    from official.core import train_utils
    from official.vision.modeling import factory

    from camtune.training.experiment import build_experiment_config

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    size = params.training.input_size
    exp = build_experiment_config(params, stage="finetune", model_dir=str(root), train_files=["unused"])
    model = factory.build_retinanet(tf_keras.layers.InputSpec(shape=[None, size, size, 3]), exp.task.model)
    model(tf.zeros([1, size, size, 3]), training=True)  # builds every layer
    bias = model.head._classifier.bias
    bias.assign(tf.zeros_like(bias))
    tf.train.Checkpoint(model=model).save(str(root / "ckpt"))
    train_utils.serialize_config(exp, str(root))
    (root / "labels.json").write_text(json.dumps({"names": list(params.labels.names)}))
    return root


def write_manifest(path: str | Path, source, image_ids, **extra) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = sorted(int(i) for i in image_ids)
    path.write_text(json.dumps({"source": str(source), "image_ids": ids, "count": len(ids), **extra}))
    return path


EXPORT_OVERRIDES = {"export.representative_images": 6}


@pytest.fixture(scope="session")
def export_run(prefect_server, sample_datasets, tmp_path_factory):
    """ONE real `export` flow run per session (Model Garden serving export, int8 + float
    conversion at 320x320, compatibility report, fidelity), in a scratch working directory laid out
    as the upstream stages leave it. The flow test asserts on it; the contract, runtime and
    compatibility tests read its model.tflite. Read-only for everyone."""
    from camtune.core import config
    from camtune.core.dataset import load_dataset
    from camtune.steps.export.flow import export_flow

    params = sample_datasets.params
    root = tmp_path_factory.mktemp("export_run")
    make_model_dir(root / "artifacts/finetune/model", params)
    user, glob = load_dataset(sample_datasets.user), load_dataset(sample_datasets.global_pool)
    uids = sorted(user.verified().images["id"].tolist())
    gids = sorted(glob.images["id"].tolist())
    write_manifest(root / "artifacts/finetune/holdout.json", sample_datasets.user, uids[:3],
                   user_id=params.user.id)
    write_manifest(root / "artifacts/sample/global_eval.json", sample_datasets.global_pool, gids[:3])
    write_manifest(root / "artifacts/sample/replay.json", sample_datasets.global_pool, gids[3:7])
    overrides = {"data.user_dataset": str(sample_datasets.user),
                 "data.global_pool": str(sample_datasets.global_pool), **EXPORT_OVERRIDES}
    cwd = os.getcwd()
    os.chdir(root)  # params paths are relative to the working directory (the repo root under dvc)
    try:
        meta = export_flow(params_path=str(config.ROOT / "params.yaml"), overrides=overrides)
    finally:
        os.chdir(cwd)
    return SimpleNamespace(root=root, out=root / "artifacts/export", meta=meta, params=params,
                           overrides=overrides)
