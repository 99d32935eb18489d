"""The validate flow under a real Prefect server, its CLI, and `dvc repro validate` in a throwaway
git copy of the repository (runs, then skips; fails with named findings on a broken dataset)."""
from __future__ import annotations

import json
import math
import shutil
import sys

import pytest
from tests.support.repo import copy_repo, dvc_env, git_commit_all, run
import yaml

from camtune.core.config import ROOT
from camtune.core.errors import StepFailed
from tests.steps.validate.builders import make_dataset, save, tree_hash

from camtune.runners import step_runner as _cli
from camtune.steps.validate.flow import validate_flow


def _overrides(root, registry):
    return {"data.user_dataset": str(root), "user.id": "u_test", "publish.registry.root": str(registry),
            "validate.warn_min_per_camera": 2}


def _artifact(key):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return arts


def test_flow_writes_the_report_and_posts_markdown(prefect_server, tmp_path):
    root = tmp_path / "ds"
    make_dataset(root)
    out = tmp_path / "artifacts" / "validate"
    result = validate_flow(params_path=str(ROOT / "params.yaml"),
                              overrides=_overrides(root, tmp_path / "registry"), out_dir=str(out))
    assert result["passed"] is True
    # a folder named by out_dir (not the stage's own) carries camtune's owner file (docs/hardening.md)
    assert sorted(p.name for p in out.iterdir()) == [".camtune-output.json", "gx_results.json", "report.json",
                                                     "report.md"]
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and report["findings"] == []
    assert report["counts"]["images"] == 12 and report["counts"]["new_verified_images"] == 12
    assert report["checks"]["audit"]["status"] == "skipped"
    gx = json.loads((out / "gx_results.json").read_text())
    assert gx["annotations"]["success"] is True and gx["annotations"]["results"]
    assert "# Dataset validation: PASSED" in (out / "report.md").read_text()
    arts = _artifact("validation-report")
    assert arts and arts[-1].type == "markdown" and "Dataset validation" in arts[-1].data


def test_failed_validation_raises_but_still_writes_the_report(prefect_server, tmp_path):
    root = tmp_path / "ds"
    coco = make_dataset(root)
    coco["annotations"][0]["bbox"][0] = math.nan
    coco["annotations"][1]["image_id"] = 404
    save(root, coco)
    before = tree_hash(root)
    out = tmp_path / "out"
    with pytest.raises(StepFailed) as err:
        validate_flow(params_path=str(ROOT / "params.yaml"),
                         overrides=_overrides(root, tmp_path / "registry"), out_dir=str(out))
    msg = str(err.value)
    assert "BOX_NAN [image 1, annotation 11]" in msg and "DANGLING_IMAGE_ID" in msg
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] is False
    assert {(f["rule"], f["image_id"], f["annotation_id"]) for f in report["findings"]} >= {
        ("BOX_NAN", 1, 11), ("DANGLING_IMAGE_ID", 404, 12)}
    assert set(report["findings"][0]) >= {"severity", "rule", "image_id", "annotation_id", "message"}
    assert tree_hash(root) == before


def test_cli_exits_non_zero_and_prints_the_first_findings(prefect_server, tmp_path, capsys):
    root = tmp_path / "ds"
    make_dataset(root, n_images=12, n_verified=9)
    argv = ["--params", str(ROOT / "params.yaml")] + [
        a for k, v in _overrides(root, tmp_path / "registry").items() for a in ("--set", f"{k}={v}")]
    rc = _cli.run(lambda **kw: validate_flow(out_dir=str(tmp_path / "out"), **kw), argv)
    assert rc == 1
    err = capsys.readouterr().err
    assert "failed validation" in err and "TOO_FEW_NEW" in err and "9 new verified images" in err


# ------------------------------------------------------------------------------ dvc repro validate

def test_dvc_repro_validate_runs_then_skips_then_fails_on_a_broken_dataset(prefect_server, tmp_path):
    repo = tmp_path / "repo"
    copy_repo(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["sample_data"].update(global_images=16, user_images=14, user_images_in_pool=4)
    params["validate"]["warn_min_per_camera"] = 5
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dvc_env(repo)
    git_commit_all(repo)

    first = run([sys.executable, "-m", "dvc", "repro", "validate"], repo, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Running stage 'validate'" in first.stdout
    report = json.loads((repo / "artifacts/validate/report.json").read_text())
    assert report["passed"] is True and report["dataset"] == "data/sample/users/u_demo"
    assert report["counts"]["images"] == 14

    second = run([sys.executable, "-m", "dvc", "repro", "validate"], repo, env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Running stage" not in second.stdout
    assert "Stage 'validate' didn't change, skipping" in second.stdout

    # a broken copy of the user dataset: named findings on stderr, non-zero exit
    shutil.copytree(repo / "data/sample/users/u_demo", repo / "data/broken")
    coco = json.loads((repo / "data/broken/annotations.json").read_text())
    coco["annotations"][0]["bbox"][2] = -4
    coco["images"][1]["file_name"] = "../../params.yaml"
    (repo / "data/broken/annotations.json").write_text(json.dumps(coco))
    params["data"]["user_dataset"] = "data/broken"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    broken = run([sys.executable, "-m", "dvc", "repro", "validate"], repo, env)
    assert broken.returncode != 0
    assert "Running stage 'sample_data'" not in broken.stdout  # only the param it reads changed
    assert "BOX_NONPOSITIVE" in broken.stderr and "FILE_TRAVERSAL" in broken.stderr, broken.stderr
    assert f"annotation {coco['annotations'][0]['id']}" in broken.stderr


@pytest.mark.parametrize("runner", ["threads", "dask"])
def test_file_checks_fan_out_on_the_configured_task_runner(prefect_server, tmp_path, runner):
    from camtune.runners.task_runners import with_task_runner

    root = tmp_path / "ds"
    coco = make_dataset(root)
    (root / coco["images"][3]["file_name"]).write_bytes(b"not an image")
    overrides = {**_overrides(root, tmp_path / "registry"), "pipeline.task_runner": runner,
                 "validate.file_shards": 3}
    flow_fn = with_task_runner(validate_flow, str(ROOT / "params.yaml"), overrides)
    assert type(flow_fn.task_runner).__name__ == {"threads": "ThreadPoolTaskRunner",
                                                  "dask": "DaskTaskRunner"}[runner]
    with pytest.raises(StepFailed) as err:
        flow_fn(params_path=str(ROOT / "params.yaml"), overrides=overrides, out_dir=str(tmp_path / "out"))
    assert "FILE_UNDECODABLE" in str(err.value)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["counts"]["images"] == 12
    assert [f["image_id"] for f in report["findings"] if f["rule"] == "FILE_UNDECODABLE"] == [coco["images"][3]["id"]]


@pytest.mark.parametrize("broken", ["check_tables", "assemble"])
def test_a_bug_in_validate_still_writes_the_report_and_exits_1(prefect_server, tmp_path, capsys, monkeypatch,
                                                              broken):
    # issue 18: the top-level guard turns anything unexpected into INTERNAL, one line, report written
    from camtune.steps import validate as validation

    def boom(*a, **kw):
        raise ZeroDivisionError("a bug\nspanning lines")

    monkeypatch.setattr(validation, broken, boom)
    root = tmp_path / "ds"
    make_dataset(root)
    argv = ["--params", str(ROOT / "params.yaml")] + [
        a for k, v in _overrides(root, tmp_path / "registry").items() for a in ("--set", f"{k}={v}")]
    rc = _cli.run(lambda **kw: validate_flow(out_dir=str(tmp_path / "out"), **kw), argv)
    assert rc == 1
    err = capsys.readouterr().err
    [line] = [ln for ln in err.splitlines() if "INTERNAL" in ln]
    assert "ZeroDivisionError: a bug spanning lines" in line and "Traceback" not in err
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert report["passed"] is False and [f["rule"] for f in report["findings"]] == ["INTERNAL"]
    assert "Traceback" in report["findings"][0]["detail"]
