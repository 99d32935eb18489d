"""Deployment parameters never reach an executable or a path outside the workspace (issue 28,
item 10): train_model's overrides and params_path are checked before anything runs."""
from __future__ import annotations

import pytest
import yaml

from camtune.core import config
from camtune.core.errors import StepFailed


@pytest.mark.parametrize("overrides, named", [
    ({"export.edgetpu.compiler_path": "/bin/sh"}, "export.edgetpu.compiler_path"),
    ({"export": {"edgetpu": {"compiler_path": "/tmp/x"}}}, "export.edgetpu.compiler_path"),
    ({"export.edgetpu": {"compiler_path": "evil"}}, "export.edgetpu.compiler_path"),
    ({"export": "anything"}, "export"),
    ({"ingest.frigate.url": "http://attacker:5000"}, "ingest.frigate.url"),
    ({"publish.registry.s3.endpoint_url": "http://attacker"}, "publish.registry.s3.endpoint_url"),
    ({"publish.registry.root": "/tmp/elsewhere"}, "publish.registry.root"),
    ({"pipeline.workspaces": "/"}, "pipeline.workspaces"),
    ({"data.global_pool": "/etc"}, "data.global_pool"),
    ({"data.user_dataset": "../other_user"}, "data.user_dataset"),
    ({"data": {"user_dataset": "/home/x"}}, "data.user_dataset"),
    ({"finetune.init_checkpoint": "/root/ckpt"}, "finetune.init_checkpoint"),
    ({"validate.reference_model": "~/m.tflite"}, "validate.reference_model"),
])
def test_refused_overrides_are_named(overrides, named):
    with pytest.raises(StepFailed, match=f"override '{named}'"):
        config.check_run_overrides(overrides)


def test_ordinary_overrides_pass():
    quick = yaml.safe_load((config.ROOT / "tests" / "support" / "quick_overrides.yaml").read_text())
    config.check_run_overrides(quick)
    config.check_run_overrides({"data.global_pool": "data/sample/global", "train_base.steps": 4,
                                "export.edgetpu.required": True, "user.id": "u_a"})
    config.check_run_overrides(None)


@pytest.mark.parametrize("path", ["/etc/camtune/params.yaml", "../params.yaml", "a/../../p.yaml", "C:\\\\p.yaml"])
def test_params_path_must_stay_in_the_repo(path):
    with pytest.raises(StepFailed, match="params_path"):
        config.check_run_overrides({}, path)


def test_train_model_refuses_before_any_work(tmp_path, monkeypatch):
    """The flow's own function refuses first: before it loads params or prepares a workspace."""
    from camtune.runners import orchestration
    from camtune.runners import pipeline

    monkeypatch.setattr(orchestration, "prepare_workspace",
                        lambda *a, **k: pytest.fail("a workspace was prepared"))
    with pytest.raises(StepFailed, match="override 'export.edgetpu.compiler_path'"):
        pipeline.train_model.fn(user_id="u_a", overrides={"export.edgetpu.compiler_path": "/bin/sh"})
    with pytest.raises(StepFailed, match="params_path"):
        pipeline.train_model.fn(user_id="u_a", params_path="/etc/params.yaml")
