"""The orchestration layer: prefect.yaml, deployments, per-user locking, the parent flow."""
import os
import subprocess
import sys

import pytest

from camtune.core.config import ROOT


def test_prefect_yaml_validates_against_prefects_model():
    import yaml
    from prefect.cli.deploy._models import PrefectYamlModel

    model = PrefectYamlModel.model_validate(yaml.safe_load((ROOT / "prefect.yaml").read_text()))
    names = {d.name for d in model.deployments}
    assert names == {"nightly-scan", "train-model", "nightly-frigate-import"}


def _prefect(*args, env):
    return subprocess.run([sys.executable, "-m", "prefect", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_deployments_register_with_their_schedules(prefect_server):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    out = _prefect("work-pool", "create", "camtune-process", "--type", "process", env=env)
    assert out.returncode == 0 or "already exists" in out.stdout + out.stderr, out.stdout + out.stderr
    out = _prefect("--no-prompt", "deploy", "--all", env=env)
    assert out.returncode == 0, out.stdout + out.stderr

    with get_client(sync_client=True) as client:
        scan = client.read_deployment_by_name("scan_users/nightly-scan")
        train = client.read_deployment_by_name("train_model/train-model")
    assert scan.work_pool_name == "camtune-process"
    crons = {(s.schedule.cron, s.schedule.timezone) for s in scan.schedules}
    assert crons == {("0 2 * * *", "UTC")}
    assert {s.schedule.cron for s in train.schedules} == {"30 3 * * 0"}
    assert scan.parameters["deployment"] == "train_model/train-model"
    with get_client(sync_client=True) as client:
        frigate = client.read_deployment_by_name("ingest_frigate/nightly-frigate-import")
    assert [(s.schedule.cron, s.active) for s in frigate.schedules] == [("0 1 * * *", False)]


def test_user_lock_skips_a_second_run_for_the_same_user(prefect_server):
    from contextlib import ExitStack

    from camtune.core.config import PipelineParams
    from camtune.runners.pipeline import _user_lock

    p = PipelineParams(on_busy="skip")
    with ExitStack() as first:
        assert _user_lock(first, "u_lock", p)
        with ExitStack() as second:
            assert not _user_lock(second, "u_lock", p)      # same user: busy
        with ExitStack() as other:
            assert _user_lock(other, "u_other_lock", p)     # another user: free
    with ExitStack() as again:
        assert _user_lock(again, "u_lock", p)               # released after the first run


def _pool(tmp_path, verified_per_user):
    import json

    images, next_id = [], 1
    for user, (n_verified, n_unverified) in verified_per_user.items():
        for k in range(n_verified + n_unverified):
            images.append({
                "id": next_id, "file_name": f"images/{next_id}.jpg", "width": 64, "height": 64,
                "user_id": user, "camera": "cam", "captured_at": "2026-01-01T00:00:00+00:00",
                "verified": k < n_verified,
                "verified_at": "2026-01-02T00:00:00+00:00" if k < n_verified else None,
            })
            next_id += 1
    pool = tmp_path / "pool"
    pool.mkdir()
    (pool / "annotations.json").write_text(json.dumps(
        {"images": images, "annotations": [], "categories": [{"id": 1, "name": "person"}]}))
    return pool


def test_scan_starts_exactly_the_users_at_or_above_the_threshold(prefect_server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    from camtune.runners.pipeline import scan_users, train_model

    train_model.to_deployment(name="scan-test-train").apply()
    pool = _pool(tmp_path, {"u_a": (12, 0), "u_b": (9, 3), "u_c": (10, 1), "u_d": (0, 20)})
    due = scan_users(
        params_path=str(ROOT / "params.yaml"),
        overrides={"data.global_pool": str(pool), "publish.registry.root": str(tmp_path / "registry"),
                   "validate.min_new_verified": 10},
        deployment="train_model/scan-test-train", wait=False,
    )
    assert due == ["u_a", "u_c"]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(
            name=DeploymentFilterName(any_=["scan-test-train"])))
    assert sorted(r.parameters["user_id"] for r in runs) == ["u_a", "u_c"]
