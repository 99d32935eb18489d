"""train_base_flow then finetune_flow (a fine-tune needs its base), as Prefect flows on a real test server, on tiny data."""
from __future__ import annotations

import json

import numpy as np
import pytest

from camtune.core.errors import StepFailed
from tests.support.training_data import make_dataset

from tests.support.repo import ROOT
TINY = {"training.input_size": 128, "training.fpn_filters": 32, "training.head_convs": 1,
        "training.log_every": 2, "training.shards": 1,
        "train_base.steps": 2, "train_base.batch_size": 2, "train_base.warmup_steps": 0,
        "train_base.checkpoint_every": 2,
        "finetune.steps": 2, "finetune.batch_size": 2,
        "finetune.warmup_steps": 0, "finetune.checkpoint_every": 2,
        "finetune.holdout_fraction": 0.3}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    glob = make_dataset(tmp_path / "data/global", 8, user="u_other", seed=1)
    user = make_dataset(tmp_path / "data/user", 10, user="u_me", start_id=1000, seed=2)
    sample = tmp_path / "artifacts/sample"
    sample.mkdir(parents=True)
    ids = list(range(1, 9))
    (sample / "base_train.json").write_text(json.dumps(
        {"name": "base_train", "source": str(glob), "user_id": "u_me", "image_ids": ids,
         "count": len(ids), "repeats": {"2": 2}}))
    (sample / "replay.json").write_text(json.dumps(
        {"name": "replay", "source": str(glob), "user_id": "u_me", "image_ids": [1, 2, 3],
         "count": 3, "user_images_in_base_train": [1000, 1001, 1002]}))
    overrides = {**TINY, "user.id": "u_me", "data.user_dataset": str(user),
                 "data.global_pool": str(glob)}
    return tmp_path, overrides


def test_train_base_then_finetune(prefect_server, workdir):
    from camtune.steps.finetune.flow import finetune_flow
    from camtune.steps.train_base.flow import train_base_flow

    tmp, overrides = workdir
    params = str(ROOT / "params.yaml")
    out = train_base_flow(params_path=params, overrides=overrides)
    base = tmp / "artifacts/train_base"
    assert out["final_step"] == 2 and (base / "model/ckpt-2.index").exists()
    assert (base / "model/params.yaml").exists() and list((base / "model/train").iterdir())
    log = json.loads((base / "train_log.json").read_text())
    rec = log["records"]
    # training.regions is on by default: each image becomes Frigate-style region examples
    # (per_object jittered regions per object cluster, background regions, sometimes the frame)
    assert rec["examples"] == sum(rec["kinds"].values())
    assert rec["kinds"]["object"] >= 2 * (rec["images"] - rec["negatives"]) + 2  # image 2 repeated
    assert log["progress"] and all(np.isfinite(r["loss"]) for r in log["progress"])

    out = finetune_flow(params_path=params, overrides=overrides)
    ft = tmp / "artifacts/finetune"
    assert (ft / "model/ckpt-2.index").exists()
    hold = json.loads((ft / "holdout.json").read_text())
    trained = json.loads((ft / "trained_on.json").read_text())
    verified = list(range(1000, 1009))  # the last generated image is unverified
    assert hold["user_id"] == "u_me" and hold["image_ids"]
    assert not set(hold["image_ids"]) & {1000, 1001, 1002}  # the base saw those
    assert not set(hold["image_ids"]) & set(trained["user"]["image_ids"])
    assert sorted(hold["image_ids"] + trained["user"]["image_ids"]) == verified
    assert trained["replay"]["image_ids"] == [1, 2, 3]
    assert out["user_images"] == len(trained["user"]["image_ids"])
    assert "train_base/model/ckpt-2" in trained["base_checkpoint"]


def test_holdout_is_stable_and_proportional():
    from camtune.steps.finetune import holdout_ids

    ids = list(range(1, 2001))
    h = holdout_ids(ids, "u1", 0.25)
    assert 0.2 < len(h) / len(ids) < 0.3
    assert holdout_ids(ids[:1000], "u1", 0.25) == [i for i in h if i <= 1000]  # adding images keeps it
    assert holdout_ids(ids, "u2", 0.25) != h
    assert holdout_ids(ids, "u1", 0.0) == []


def test_refusals_name_what_is_missing(workdir):
    from camtune.core import config
    from camtune.steps.finetune import finetune
    from camtune.steps.train_base import train_base

    tmp, overrides = workdir
    p = config.load(ROOT / "params.yaml", {**overrides, "train_base.source": "registry"})
    with pytest.raises(StepFailed, match="registry_base_id is null"):
        train_base(p)
    (tmp / "artifacts/sample/base_train.json").unlink()
    with pytest.raises(StepFailed, match=r"base_train.json: not found \(run `dvc repro sample`\)"):
        train_base(config.load(ROOT / "params.yaml", overrides))
    with pytest.raises(StepFailed, match="train_base/model: base model folder not found"):
        finetune(config.load(ROOT / "params.yaml", overrides))
