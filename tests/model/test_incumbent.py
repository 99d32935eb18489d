"""The incumbent (the model the user runs now): a file in Frigate's contract with its label map
(labels matched by name), or the user's current model in the registry with its lineage; bad input
is one clear error naming the file, in evaluate and already in validate (before any training).

The TFLite files are real: the pipeline's own export (the session's `export_run`) stands for a
previous camtune model and, with Frigate's stock 90-entry COCO label map, for the stock model."""
from __future__ import annotations

import pytest

from camtune.core import config
from camtune.steps import validate as validation
from camtune.core.config import RegistryParams
from camtune.core.errors import StepFailed
from camtune.model.incumbent import check_frigate_tflite, resolve
from camtune.contracts.registry import RegistryError, open_registry
from tests.support.incumbent import COCO90, publish_incumbent, write_coco_labelmap

OURS = ["person", "face", "car", "license_plate", "amazon", "ups", "fedex", "package", "dog", "cat", "deer"]


def _params(tmp_path, **over):
    return config.load(config.ROOT / "params.yaml", {
        "user.id": "u1", "publish.registry": {"kind": "local", "root": str(tmp_path / "registry")}, **over})


def _file(model, labelmap):
    return {"evaluate.incumbent.source": "file", "evaluate.incumbent.model": str(model),
            "evaluate.incumbent.labelmap": str(labelmap)}


def test_stock_stand_in_labels_matched_by_name(export_run, tmp_path):
    lm = write_coco_labelmap(tmp_path / "labelmap.txt")
    inc = resolve(_params(tmp_path, **_file(export_run.out / "model.tflite", lm)), tmp_path / "work")
    assert inc.name == f"file:{export_run.out / 'model.tflite'}" and inc.size == 320
    assert list(inc.labels) == COCO90
    assert inc.compared_labels(OURS) == ["person", "car", "dog", "cat"]
    left = inc.left_out(OURS)
    assert left["not_in_incumbent"] == ["face", "license_plate", "amazon", "ups", "fedex", "package", "deer"]
    assert "bicycle" in left["not_ours"] and "person" not in left["not_ours"] and len(left["not_ours"]) == 86
    assert validation.check_incumbent(_params(tmp_path, **_file(export_run.out / "model.tflite", lm))) == []


@pytest.mark.parametrize("case", ["missing model", "not tflite", "not frigate", "bad labelmap", "no labelmap"])
def test_bad_incumbent_is_one_clear_error_naming_the_file(case, export_run, tiny_tflite, tmp_path):
    model, lm = export_run.out / "model.tflite", write_coco_labelmap(tmp_path / "labelmap.txt")
    if case == "missing model":
        model, message = tmp_path / "nope.tflite", "evaluate.incumbent.model not found"
    elif case == "not tflite":
        model = tmp_path / "cpu_model.tflite"
        model.write_bytes(b"<html>404</html>")
        message = "not a TFLite model"
    elif case == "not frigate":   # a real TFLite, one output
        model, message = tiny_tflite, "not a TFLite model in Frigate's contract: it needs four float32 outputs"
    elif case == "bad labelmap":
        lm.write_text("0 person\n0 car\n")
        message = "index 0 appears twice"
    else:
        lm, message = tmp_path / "missing-labelmap.txt", "label map not found"
    named = lm if "labelmap" in case else model
    params = _params(tmp_path, **_file(model, lm))
    with pytest.raises(StepFailed, match=message) as err:
        resolve(params, tmp_path / "work")
    assert str(named) in str(err.value)
    findings = validation.check_incumbent(params)
    assert [f.rule for f in findings] == ["INCUMBENT_UNUSABLE"]
    assert str(named) in findings[0].message and findings[0].severity == "error"


def test_file_source_needs_both_paths():
    with pytest.raises(config.ConfigError, match="needs evaluate.incumbent.model and .labelmap"):
        config.load(config.ROOT / "params.yaml", {"evaluate.incumbent.source": "file",
                                                   "evaluate.incumbent.model": "m.tflite"})


def test_registry_incumbent_is_the_users_current_model_with_its_lineage(export_run, tmp_path):
    params = _params(tmp_path)
    reg = open_registry(RegistryParams(kind="local", root=str(tmp_path / "registry")))
    assert resolve(params, tmp_path / "w0") is None          # a first model: nothing to compare with
    assert resolve(_params(tmp_path, **{"evaluate.incumbent.source": "none"}), tmp_path / "w0") is None
    model = export_run.out / "model.tflite"
    publish_incumbent(reg, "u1", "m1", model, OURS, [3, 4, 5], tmp=tmp_path / "stage")
    # a newer model that was not promoted (worse than m1) is recorded but is not what the user runs
    publish_incumbent(reg, "u1", "m2", model, OURS, [3, 4, 5, 6], promoted=False, tmp=tmp_path / "stage")
    assert reg.latest_model("u1")["model_id"] == "m2" and reg.current_model("u1")["model_id"] == "m1"
    inc = resolve(params, tmp_path / "w1")
    assert inc.name == "registry:m1" and inc.source == "registry" and list(inc.labels) == OURS
    assert inc.lineage_ids == {3, 4, 5} and inc.tflite.read_bytes() == model.read_bytes()
    assert check_frigate_tflite(inc.tflite) == 320

    # the index names a file that is gone: a clear error naming it, also in validate
    gone = tmp_path / "registry/users/u1/m1/model.tflite"
    gone.unlink()
    with pytest.raises(RegistryError, match="m1/model.tflite: not found"):
        resolve(params, tmp_path / "w2")
    findings = validation.check_incumbent(params)
    assert [f.rule for f in findings] == ["INCUMBENT_UNUSABLE"] and "m1/model.tflite" in findings[0].message
