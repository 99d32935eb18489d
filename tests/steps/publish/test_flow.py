"""`camtune publish` (flow publish_flow) and `--install-to` under a real Prefect server."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from camtune.core.config import ROOT
from camtune.runners import cli
from tests.support.s3 import make_publish_inputs


@pytest.fixture
def workspace(tmp_path, monkeypatch, tiny_tflite):
    """A repo-like folder: params.yaml + the upstream stages' artifacts; the flow runs in it."""
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    make_publish_inputs(tmp_path, tiny_tflite)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_publish_flow_writes_registry_and_receipt(prefect_server, workspace, capsys):
    argv = ["--set", "user.id=u_a"]
    assert cli.main(["publish", *argv]) == 0
    receipt = json.loads((workspace / "artifacts/publish/receipt.json").read_text())
    mid = receipt["model_id"]
    index = json.loads((workspace / "registry/users/u_a/index.json").read_text())
    assert [m["model_id"] for m in index["models"]] == [mid]
    for name, info in receipt["files"].items():
        assert info["uri"].startswith("file://") and re.search(rf"/registry/users/u_a/{mid}/[0-9a-f]{{16}}/{name}$", info["uri"])
        assert len(info["sha256"]) == 64
    assert receipt["base"]["base_id"].startswith("base-")
    assert (workspace / "registry/base" / receipt["base"]["base_id"] / "metadata.json").is_file()

    assert cli.main(["publish", *argv]) == 0  # idempotent
    assert "already published" in capsys.readouterr().out
    assert len(json.loads((workspace / "registry/users/u_a/index.json").read_text())["models"]) == 1

    cache = workspace / "config/model_cache"
    assert cli.main(["publish", *argv, "--install-to", str(cache)]) == 0
    assert sorted(p.name for p in cache.iterdir()) == sorted([mid, f"{mid}.json"])
    assert json.loads((cache / f"{mid}.json").read_text())["supportedDetectors"] == ["cpu"]
    assert cli.main(["publish", *argv, "--install-to", str(cache), "--model-id", mid, "--detector", "edgetpu"]) == 0
    assert (cache / f"{mid}-edgetpu").read_bytes() == (workspace / "artifacts/export/model_edgetpu.tflite").read_bytes()

    # another tenant sees nothing of u_a's
    assert cli.main(["publish", "--set", "user.id=u_b", "--install-to", str(cache)]) == 1
    assert "no published model" in capsys.readouterr().err
    assert cli.main(["publish", "--set", "user.id=u_b", "--install-to", str(cache), "--model-id", mid]) == 1


def test_publish_flow_refuses_unblessed(prefect_server, workspace, capsys):
    gate = workspace / "artifacts/evaluate/gate.json"
    g = json.loads(gate.read_text())
    g.update(verdict="not_blessed", blessed=False, failed=["user_gain"], deciding=["user_gain"])
    g["checks"][0].update(passed=False, verdict="failed", point=-0.1, interval=[-0.2, -0.05])
    gate.write_text(json.dumps(g))
    assert cli.main(["publish", "--set", "user.id=u_a"]) == 1
    err = capsys.readouterr().err
    assert "not blessed" in err and "user_gain" in err
    assert not (workspace / "registry").exists()
    assert not (workspace / "artifacts/publish").exists()


def test_cli_rejects_install_options_without_install_to(workspace):
    with pytest.raises(SystemExit) as exc:
        cli.main(["publish", "--model-id", "abc"])
    assert exc.value.code == 2


def test_publish_flow_to_s3_retries_the_upload_task(prefect_server, workspace, s3_server, s3_bucket):
    """botocore gets one attempt per request here, so the injected 503 fails the upload task;
    Prefect's task retry re-runs the (idempotent) upload and the publish completes."""
    from camtune.core.config import RegistryParams, S3Params
    from camtune.contracts.registry import open_registry
    from tests.support.s3 import FaultProxy

    with FaultProxy(s3_server, fail_first=1) as proxy:
        argv = ["--set", "user.id=u_a", "--set", "publish.registry.kind=s3",
                "--set", f"publish.registry.s3.bucket={s3_bucket}",
                "--set", f"publish.registry.s3.endpoint_url={proxy.url}",
                "--set", "publish.registry.s3.max_attempts=1"]
        assert cli.main(["publish", *argv]) == 0
        assert proxy.failed == 1
    receipt = json.loads((workspace / "artifacts/publish/receipt.json").read_text())
    assert receipt["index"] == f"s3://{s3_bucket}/camtune/users/u_a/index.json"
    reg = open_registry(RegistryParams(kind="s3", s3=S3Params(bucket=s3_bucket, endpoint_url=s3_server)))
    assert reg.latest_model("u_a")["model_id"] == receipt["model_id"]
    assert not (workspace / "registry").exists()  # nothing went to the local default
