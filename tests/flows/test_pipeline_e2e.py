"""The parent flow end to end on the sample data, tiny step counts, real Prefect server, real DVC."""
import json
import subprocess

import pytest
import yaml
from repo_support import copy_repo, git_commit_all

from camtune.config import ROOT


@pytest.fixture
def repo_copy(tmp_path, monkeypatch):
    dest = copy_repo(tmp_path / "repo")
    git_commit_all(dest)
    monkeypatch.chdir(dest)
    return dest

def test_train_model_end_to_end_publishes_and_records(prefect_server, repo_copy):
    from prefect.client.orchestration import get_client

    from flows.pipeline import train_model

    overrides = yaml.safe_load((ROOT / "tests" / "quick_overrides.yaml").read_text())
    state = train_model(overrides=overrides, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    ran = {s["stage"]: s for s in result["stages"]}
    assert list(ran) == ["validate", "sample", "train_base", "finetune", "evaluate", "export", "publish"]
    assert all(s["returncode"] == 0 for s in ran.values())

    # the published entry, in the main checkout's registry (shared by every workspace)
    index = json.loads((repo_copy / "registry/users/u_demo/index.json").read_text())
    model_id = index["models"][-1]["model_id"]
    entry = repo_copy / "registry/users/u_demo" / model_id
    for name in ("model.tflite", "labelmap.txt", "metadata.json", "filters.yml", "report.md", "lineage.json"):
        assert (entry / name).is_file(), name
    assert result["receipt"]["model_id"] == model_id

    # the run is recorded in DVC: its dvc.lock is committed on the user's run branch
    lock = subprocess.run(["git", "show", "camtune-runs/u_demo:dvc.lock"], cwd=repo_copy,
                          capture_output=True, text=True, check=True).stdout
    assert "publish" in yaml.safe_load(lock)["stages"]

    # Prefect shows it: the summary artifact of the parent flow
    with get_client(sync_client=True) as client:
        art = client.read_latest_artifacts()
    assert any(a.key == "train-model-u-demo" for a in art)

    # a second run: DVC skips every stage, nothing new is published
    state = train_model(overrides=overrides, return_state=True)
    assert state.is_completed(), state.message
    assert not any(s["ran"] for s in state.result()["stages"])
    index2 = json.loads((repo_copy / "registry/users/u_demo/index.json").read_text())
    assert len(index2["models"]) == len(index["models"])


def test_train_model_stops_with_the_validation_findings(prefect_server, repo_copy):
    from flows.pipeline import train_model

    overrides = yaml.safe_load((ROOT / "tests" / "quick_overrides.yaml").read_text())
    overrides["validate.min_new_verified"] = 1000   # the sample user has far fewer new images
    state = train_model(user_id="u_demo", overrides=overrides, return_state=True)
    assert state.is_failed()
    assert "validation failed" in state.message
