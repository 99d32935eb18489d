"""Publishing a model that is worse than the incumbent (the model the user runs now): it is recorded
in the registry with the reason, but not made the user's current model and not installed into
Frigate's model_cache; an inconclusive comparison is promoted only when the user accepts the risk.
The rule itself, for every verdict: tests/contracts/test_verdict.py."""
from __future__ import annotations

import json

import pytest

from camtune.core import config
from camtune.steps.publish import release as publishing
from camtune.core.config import RegistryParams
from camtune.core.errors import StepFailed
from camtune.contracts.registry import open_registry
from tests.support.s3 import make_publish_inputs


def _params(root, **extra):
    return config.load(config.ROOT / "params.yaml", {
        "user.id": "u_a", "publish.registry": {"kind": "local", "root": str(root)}, **extra})


def _publish(params, inputs, tmp):
    staging = tmp / f"staging-{len(list(tmp.glob('staging-*')))}"
    staging.mkdir()
    plan = publishing.prepare(params, staging, **inputs, lock_path=tmp / "no-dvc.lock")
    return publishing.upload(plan, open_registry(params.publish.registry, user_id=params.user.id))


def _incumbent(inputs, verdict: str, name="registry:m_old", summary="measurably worse than the incumbent: "
               "incumbent_user_recall failed -0.210 [-0.300, -0.120]; worse on camera garage"):
    path = inputs["evaluate_dir"] / "gate.json"
    gate = json.loads(path.read_text())
    gate["incumbent"] = {"verdict": verdict, "name": name, "summary": summary, "worse_cameras": ["garage"]}
    gate["promote"] = verdict in ("not_worse", "none")
    path.write_text(json.dumps(gate))


def test_worse_than_the_incumbent_is_recorded_but_not_current_nor_installed(tiny_tflite, tmp_path):
    root = tmp_path / "registry"
    first = _publish(_params(root), make_publish_inputs(tmp_path / "ws1", tiny_tflite), tmp_path)
    assert first["promoted"] is True

    worse = make_publish_inputs(tmp_path / "ws2", tiny_tflite, variant=b"v2", user_image_ids=range(1, 31))
    _incumbent(worse, "worse")
    receipt = _publish(_params(root), worse, tmp_path)
    reg = open_registry(RegistryParams(kind="local", root=str(root)))
    entry = reg.model("u_a", receipt["model_id"])
    assert receipt["created"] and receipt["promoted"] is False and entry["promoted"] is False
    assert "worse than the incumbent registry:m_old" in entry["not_promoted_reason"]
    assert "camera garage" in entry["not_promoted_reason"]
    meta = reg.read_json("u_a", receipt["model_id"], "metadata.json")
    assert meta["promotion"]["promoted"] is False and meta["promotion"]["incumbent_verdict"] == "worse"
    # the newest entry, but not what the user runs: not the incumbent, not installed
    assert reg.latest_model("u_a")["model_id"] == receipt["model_id"]
    assert reg.current_model("u_a")["model_id"] == first["model_id"]
    # its lineage still counts for "new verified images" (the same data would give the same model)
    assert reg.latest_lineage("u_a")["image_ids"] == list(range(1, 31))
    installed = publishing.install(reg, "u_a", tmp_path / "model_cache")
    assert installed["model_id"] == first["model_id"]
    with pytest.raises(StepFailed, match="was not promoted: worse than the incumbent"):
        publishing.install(reg, "u_a", tmp_path / "model_cache2", model_id=receipt["model_id"])
    assert not (tmp_path / "model_cache2").exists() or not any((tmp_path / "model_cache2").iterdir())


def test_inconclusive_against_the_incumbent_is_promoted_only_when_allowed(tiny_tflite, tmp_path):
    inputs = make_publish_inputs(tmp_path / "ws", tiny_tflite)
    _incumbent(inputs, "inconclusive", summary="too little evidence to tell it from the incumbent")
    receipt = _publish(_params(tmp_path / "r1"), inputs, tmp_path)
    assert receipt["promoted"] is False and "inconclusive against" in receipt["not_promoted_reason"]
    receipt = _publish(_params(tmp_path / "r2", **{"publish.allow_inconclusive": True}), inputs, tmp_path)
    assert receipt["promoted"] is True
