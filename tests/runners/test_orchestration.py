import subprocess

import pandas as pd
import pytest

from camtune.runners import orchestration
from camtune.core.errors import StepFailed


def _images(rows):
    return pd.DataFrame(rows, columns=["id", "user_id", "verified"])


def test_new_verified_counts_excludes_lineage_and_unverified():
    images = _images([
        (1, "a", True), (2, "a", True), (3, "a", False), (4, "b", True), (5, "b", True), (6, "c", False),
    ])
    counts = orchestration.new_verified_counts(images, {"a": {1}, "b": set()})
    assert counts.to_dict() == {"a": 1, "b": 2}


@pytest.mark.parametrize("min_new, expected", [(1, ["a", "b"]), (2, ["b"]), (3, [])])
def test_due_users_threshold_is_inclusive(min_new, expected):
    counts = pd.Series({"a": 1, "b": 2})
    assert orchestration.due_users(counts, min_new) == expected


def test_due_users_never_returns_unsafe_ids():
    assert orchestration.due_users(pd.Series({"../x": 50, "ok": 50}), 10) == ["ok"]


def test_set_params_keeps_comments_and_sets_dotted_keys(tmp_path):
    (tmp_path / "params.yaml").write_text("user:\n  id: a  # the user\nx: 1\n")
    orchestration.set_params(tmp_path, {"user.id": "b", "new.key": 3})
    text = (tmp_path / "params.yaml").read_text()
    assert "id: b  # the user" in text and "key: 3" in text


def test_stage_error_prefers_the_steps_own_message():
    out = "Running stage 'validate':\n> camtune validate\nerror: data/x: 3 findings\n  BOX_NAN ann 7\nERROR: failed to reproduce 'validate'\n"
    res = orchestration.StageResult("validate", True, 1, out, 0.1)
    assert orchestration.stage_error(res) == "error: data/x: 3 findings\n  BOX_NAN ann 7"


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_workspace_is_a_worktree_per_user_with_shared_cache(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    subprocess.run(["python", "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "params.yaml").write_text("user:\n  id: a\n")
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "init")
    ws_a = orchestration.prepare_workspace(repo, "workspaces", "u_a")
    ws_b = orchestration.prepare_workspace(repo, "workspaces", "u_b")
    assert ws_a != ws_b and (ws_a / "params.yaml").exists()
    orchestration.set_params(ws_a, {"user.id": "u_a"})
    assert "u_a" not in (repo / "params.yaml").read_text()  # the main checkout is untouched
    assert str(repo / ".dvc" / "cache") in (ws_a / ".dvc" / "config.local").read_text()
    # a recorded run's dvc.lock comes back on the next prepare
    (ws_a / "dvc.lock").write_text("schema: '2.0'\nstages: {validate: {}}\n")
    sha = orchestration.record_run(ws_a, "u_a", "run 1")
    assert sha
    (ws_a / "dvc.lock").write_text("garbage")
    ws_a = orchestration.prepare_workspace(repo, "workspaces", "u_a")
    assert "validate" in (ws_a / "dvc.lock").read_text()
    with pytest.raises(StepFailed):
        orchestration.prepare_workspace(repo, "workspaces", "../evil")
