"""The parent flow end to end on the sample data, tiny step counts, real Prefect server, real DVC."""
import json
import os
import subprocess
import sys

import pytest
import yaml
from tests.support.repo import copy_repo, git_commit_all

from camtune.core.config import ROOT


@pytest.fixture
def repo_copy(tmp_path, monkeypatch):
    dest = copy_repo(tmp_path / "repo")
    git_commit_all(dest)
    monkeypatch.chdir(dest)
    return dest


def _prefect(*args, cwd, **env):
    return subprocess.run([sys.executable, "-m", "prefect", *args], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=900)


def test_train_model_end_to_end_publishes_and_records(prefect_server, repo_copy):
    """First run: as a deployment run picked up by a real process worker (what the schedule does);
    second run: the flow called directly, where DVC must skip every stage."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from camtune.runners.pipeline import train_model

    overrides = yaml.safe_load((ROOT / "tests" / "support" / "quick_overrides.yaml").read_text())
    out = _prefect("work-pool", "create", "camtune-process", "--type", "process", cwd=repo_copy)
    assert out.returncode == 0 or "already exists" in out.stdout + out.stderr, out.stdout + out.stderr
    out = _prefect("--no-prompt", "deploy", "--name", "train-model", cwd=repo_copy)
    assert out.returncode == 0, out.stdout + out.stderr
    run = run_deployment("train_model/train-model", parameters={"user_id": "u_demo", "overrides": overrides},
                         timeout=0)
    out = _prefect("worker", "start", "--pool", "camtune-process", "--run-once", cwd=repo_copy,
                   CAMTUNE_CHECKOUT=str(repo_copy))  # the deployment's pull step: this worker's checkout
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state.is_completed() and state.name == "Completed", \
        f"{state.name}: {state.message}\n{out.stdout[-3000:]}{out.stderr[-3000:]}"

    # the published entry, in the main checkout's registry (shared by every workspace)
    index = json.loads((repo_copy / "registry/users/u_demo/index.json").read_text())
    model_id = index["models"][-1]["model_id"]
    # each publish writes under its own upload id, which the index entry names
    entry = repo_copy / "registry/users/u_demo" / model_id / index["models"][-1]["upload_id"]
    for name in ("model.tflite", "labelmap.txt", "metadata.json", "filters.yml", "report.md", "lineage.json"):
        assert (entry / name).is_file(), name
    receipt = json.loads((repo_copy / "workspaces/u_demo/artifacts/publish/receipt.json").read_text())
    assert receipt["model_id"] == model_id
    assert (repo_copy / "workspaces/u_demo/artifacts/report/index.html").is_file()

    # the run is recorded in DVC: its dvc.lock, every stage in it, is committed on the user's run branch
    lock = subprocess.run(["git", "show", "camtune-runs/u_demo:dvc.lock"], cwd=repo_copy,
                          capture_output=True, text=True, check=True).stdout
    assert {"validate", "sample", "train_base", "finetune", "evaluate", "export", "publish", "report"} <= set(
        yaml.safe_load(lock)["stages"])

    # Prefect shows it: the summary artifact of the parent flow
    with get_client(sync_client=True) as client:
        art = client.read_latest_artifacts()
    assert any(a.key == "train-model-u-demo" for a in art)

    # a second run: DVC skips every stage, nothing new is published
    state = train_model(overrides=overrides, return_state=True)
    assert state.is_completed(), state.message
    stages = state.result()["stages"]
    assert [s["stage"] for s in stages] == ["validate", "sample", "train_base", "finetune", "evaluate",
                                            "export", "publish", "report"]
    assert all(s["returncode"] == 0 and not s["ran"] for s in stages)
    index2 = json.loads((repo_copy / "registry/users/u_demo/index.json").read_text())
    assert len(index2["models"]) == len(index["models"])


def test_train_model_stops_with_the_validation_findings(prefect_server, repo_copy):
    from camtune.runners.pipeline import train_model

    overrides = yaml.safe_load((ROOT / "tests" / "support" / "quick_overrides.yaml").read_text())
    overrides["validate.min_new_verified"] = 1000   # the sample user has far fewer new images
    state = train_model(user_id="u_demo", overrides=overrides, return_state=True)
    assert state.is_failed()
    assert "validation failed" in state.message
