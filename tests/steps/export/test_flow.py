"""camtune.steps.export.flow end to end on the synthetic sample data: a real Model Garden model_dir in
artifacts/finetune/model (untrained weights), the sample manifests, the real export
(`export_run`, tests/support/export.py), plus the refusals, which fail before any conversion."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


def test_export_flow_writes_frigate_model_and_reports(export_run):
    out_dir, params, meta = export_run.out, export_run.params, export_run.meta
    out = json.loads((out_dir / "export.json").read_text())
    assert out == json.loads(json.dumps(meta, default=str, sort_keys=True))
    # no compiler here: no Edge TPU twin, said loudly in the report and the metadata
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "compatibility.json", "compatibility.md", "export.json", "labelmap.txt", "model.onnx", "model.onnx.json",
        "model.tflite"]
    assert not list(out_dir.parent.glob(".export.*"))  # atomic: no temp folder left behind
    assert out["edgetpu"]["status"] == "skipped" and "NO Edge TPU model" in out["edgetpu"]["reason"]
    assert out["edgetpu"]["runtime"]["status"] == "not_run"
    assert "SKIPPED" in (out_dir / "compatibility.md").read_text()

    names = list(params.labels.names)
    assert (out_dir / "labelmap.txt").read_text().splitlines() == [f"{i} {n}" for i, n in enumerate(names)]
    io = out["io"]
    assert io["inputs"][0]["dtype"] == "uint8" and io["inputs"][0]["shape"] == [1, 320, 320, 3]
    assert [o["shape"] for o in io["outputs"]] == [[1, 25, 4], [1, 25], [1, 25], [1]]
    assert [o["dtype"] for o in io["outputs"]] == ["float32"] * 4
    assert out["representative_images"] == 6

    compat = json.loads((out_dir / "compatibility.json").read_text())
    assert compat["model"] == "model.tflite" and compat["mapped_ops"] > 0.9 * compat["total_ops"]
    assert compat["edgetpu_compiler"]["status"] == "skipped"

    fid = out["fidelity"]
    assert set(fid["sets"]) == {"user_holdout", "global_eval"} and fid["passed"] is True
    assert fid["sets"]["global_eval"]["int8"]["images"] == 3
    assert fid["sets"]["user_holdout"]["float"]["images"] == 3
    # the int8 model judged on the Frigate path too (regions, 0.4 floor, merge) against its float twin
    fr = fid["sets"]["user_holdout"]["frigate"]
    assert fr["min_score"] == 0.5 and fr["regions"] >= 3 and fr["recall_drop"] <= fid["max_frigate_recall_drop"]
    assert out["representative_inputs"].startswith("Frigate-style regions")

    # the ONNX target, checked on both of Frigate's runtimes on the same regions against the float model
    o = out["onnx"]
    assert o["status"] == "built" and o["model_type"] == "yolonas" and o["supportedDetectors"] == ["onnx", "openvino"]
    for runtime in ("onnx", "openvino"):
        c = o["checks"][runtime]
        assert c["passed"] and set(c["sets"]) == {"user_holdout", "global_eval"}
        r = c["sets"]["user_holdout"]
        assert r["float_recall"] == fr["float_recall"] and r["regions"] == fr["regions"]
        assert r["recall_drop"] <= fid["max_frigate_recall_drop"]
    assert out["targets"] == ["tflite", "edgetpu", "onnx"]


@pytest.fixture
def workdir(export_run, tmp_path, monkeypatch):
    """A fresh working directory with the same upstream artifacts as the session's export."""
    shutil.copytree(export_run.root / "artifacts/finetune", tmp_path / "artifacts/finetune")
    shutil.copytree(export_run.root / "artifacts/sample", tmp_path / "artifacts/sample")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_required_edgetpu_without_compiler_fails_before_exporting(export_run, workdir, monkeypatch, capsys):
    from camtune.core import config
    from camtune.runners import step_runner as _cli
    from camtune.steps.export.flow import export_flow

    monkeypatch.setenv("PATH", str(workdir / "nothing-here"))
    argv = ["--params", str(config.ROOT / "params.yaml"), "--set", "export.edgetpu.required=true"]
    argv += [a for k, v in export_run.overrides.items() for a in ("--set", f"{k}={v}")]
    assert _cli.run(export_flow, argv) == 1
    err = capsys.readouterr().err
    assert "export.edgetpu.required is true" in err and "apt-get install edgetpu-compiler" in err
    assert not (workdir / "artifacts/export").exists()


def test_labels_that_do_not_match_the_model_are_refused(export_run, workdir):
    from camtune.core import config
    from camtune.core.errors import StepFailed
    from camtune.steps.export import build

    (workdir / "artifacts/finetune/model/labels.json").write_text(json.dumps({"names": ["person"]}))
    params = config.load(config.ROOT / "params.yaml", export_run.overrides)
    with pytest.raises(StepFailed, match=r"labels.json: the model's label map \['person'\] differs"):
        build.export(params, workdir / "out")
    assert not (workdir / "out").exists()


def test_a_target_that_cannot_be_built_says_why_and_blocks_nothing(export_run, workdir):
    """The ONNX target alone, as export runs it after the TFLite: a broken model folder is
    'not_built' with the reason; a target left out of export.targets is 'skipped'."""
    from camtune.core import config
    from camtune.steps.export import build

    params = config.load(config.ROOT / "params.yaml", export_run.overrides)
    (workdir / "broken").mkdir()
    got = build._onnx_target({"tflite", "onnx"}, workdir / "broken", workdir / "work", workdir / "out",
                             params, {}, export_run.meta["fidelity"])
    assert got["status"] == "not_built" and "conversion failed" in got["reason"] and "broken" in got["reason"]
    assert not (workdir / "out").exists()
    got = build._onnx_target({"tflite"}, workdir / "broken", workdir / "work", workdir / "out", params, {}, {})
    assert got == {"status": "skipped", "reason": "not in export.targets"}
    with pytest.raises(config.ConfigError, match="export.targets must include tflite"):
        config.load(config.ROOT / "params.yaml", {"export.targets": ["onnx"]})
