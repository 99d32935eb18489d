"""What evaluate's stage-level tests share: the stage's inputs laid out in a temporary workspace."""
from __future__ import annotations

import json

import pytest

from camtune.contracts import artifacts
from camtune.core import atomic, config
from camtune.core.dataset import load_dataset


@pytest.fixture
def stage_workspace(tmp_path, sample_datasets, monkeypatch):
    """-> make(n_global, **overrides) -> (params, holdout ids): the sample datasets' first `n_global`
    global images of other users and 12 verified holdout images of the user, label files for both
    models, everything evaluate reads, in tmp_path as the working directory."""
    monkeypatch.chdir(tmp_path)

    def make(n_global: int, **overrides):
        params = config.load(config.ROOT / "params.yaml", {
            "data.user_dataset": str(sample_datasets.user), "data.global_pool": str(sample_datasets.global_pool),
            "publish.registry.root": str(tmp_path / "registry"), "evaluate.gate.resamples": 200, **overrides})
        for d in (artifacts.BASE_MODEL, artifacts.TUNED_MODEL):
            d.mkdir(parents=True)
            (d / "labels.json").write_text(json.dumps({"names": list(params.labels.names)}))
        pool, user = load_dataset(sample_datasets.global_pool), load_dataset(sample_datasets.user)
        others = pool.images[pool.images["user_id"] != params.user.id]
        atomic.write_json(artifacts.GLOBAL_EVAL, {"name": "global_eval", "source": str(sample_datasets.global_pool),
                                                  "image_ids": sorted(int(i) for i in others["id"][:n_global])})
        mine = user.of_user(params.user.id).verified()
        holdout = sorted(int(i) for i in mine.images["id"][:12])
        atomic.write_json(artifacts.HOLDOUT, {"user_id": params.user.id, "source": str(sample_datasets.user),
                                              "image_ids": holdout})
        return params, holdout
    return make
