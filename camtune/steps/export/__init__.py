"""export: the tuned checkpoint -> Frigate's int8 TFLite (`to_tflite`), Edge TPU compatibility and
compile (`compat`, `compiler`), the ONNX model for Frigate's onnx/openvino detectors (`to_onnx`), and
the int8 fidelity check against the float model (`fidelity`, scored by camtune.metrics.score).
Reads artifacts/finetune/model, holdout.json, global_eval.json, replay.json and both datasets;
writes artifacts/export/. `camtune export` runs it (flow.py).

Front door: `export(params, out_dir)` (build.py).
"""
from camtune.steps.export.build import export, summary_markdown

__all__ = ["export", "summary_markdown"]
