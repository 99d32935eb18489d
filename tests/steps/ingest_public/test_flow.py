"""The ingest_public DVC stage (ingest_public/dvc.yaml): runs from params alone, and the root
pipeline picks it up only when data.global_pool points at its output - then a change of mapping
re-runs it and what reads the pool, not the rest."""
from __future__ import annotations

import json
import sys

import yaml

from tests.support.repo import copy_repo, dvc_env, git_commit_all, run
from tests.steps.ingest_public.test_ingest_public import make_source


def test_dvc_stage_runs_from_params_and_feeds_the_pool(prefect_server, tmp_path):
    repo = copy_repo(tmp_path / "repo")
    src, imgs = make_source(repo / "downloads")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["ingest_public"].update(
        annotations="downloads/instances.json", images="downloads/train", name="tiny",
        map={"person": "person", "car": "car", "truck": "car"}, tracked=["person", "car", "truck", "motorcycle"])
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dvc_env(repo)
    git_commit_all(repo)

    # not wired into the root pipeline while data.global_pool points elsewhere
    dag = run([sys.executable, "-m", "dvc", "dag", "--dot", "sample"], repo, env)
    assert dag.returncode == 0 and "ingest_public" not in dag.stdout, dag.stdout + dag.stderr

    stage = "ingest_public/dvc.yaml:ingest_public"
    first = run([sys.executable, "-m", "dvc", "repro", stage], repo, env)
    assert first.returncode == 0, first.stdout + first.stderr
    ann = json.loads((repo / "data/public/tiny/annotations.json").read_text())
    assert {i["user_id"] for i in ann["images"]} == {"public.tiny"} and 10 in {i["id"] for i in ann["images"]}
    status = run([sys.executable, "-m", "dvc", "status", stage], repo, env)
    assert "up to date" in status.stdout, status.stdout

    # pointing the pool at it: sample now depends on the import
    params["data"]["global_pool"] = "data/public/tiny"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dag = run([sys.executable, "-m", "dvc", "dag", "--dot", "sample"], repo, env)
    assert f'"{stage}" -> "sample"' in dag.stdout, dag.stdout
    assert "up to date" in run([sys.executable, "-m", "dvc", "status", stage], repo, env).stdout
    # a new mapping changes the import (and through its output, sample and what follows)
    params["ingest_public"]["map"] = {"person": "person", "car": "car"}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = run([sys.executable, "-m", "dvc", "status", stage], repo, env)
    assert "modified:           ingest_public" in status.stdout, status.stdout
    again = run([sys.executable, "-m", "dvc", "repro", stage], repo, env)
    assert again.returncode == 0, again.stdout + again.stderr
    ann = json.loads((repo / "data/public/tiny/annotations.json").read_text())
    assert 10 not in {i["id"] for i in ann["images"]}   # the unmapped truck's image is dropped now
