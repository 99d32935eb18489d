"""export: the tuned checkpoint -> Frigate's int8 `model.tflite` (+ `model_edgetpu.tflite` when
edgetpu_compiler exists, `model.onnx` + `model.onnx.json` for the onnx/openvino detectors),
`labelmap.txt`, the Edge TPU compatibility report and `export.json`.
`camtune export`."""
from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from camtune.contracts import artifacts
from camtune.core import atomic, config
from camtune.steps.export import build

OUT_DIR = artifacts.EXPORT_DIR


@flow(name="export")
def export_flow(params_path: str = "params.yaml", overrides: dict | None = None) -> dict:
    """Export the tuned model for Frigate (cpu + Edge TPU) and check what it loses to int8."""
    log = get_run_logger()
    params = config.load(params_path, overrides)
    with atomic.output_dir(OUT_DIR) as out:
        meta = build.export(params, out)
    edgetpu = meta["edgetpu"]
    if edgetpu["status"] != "compiled":
        # loud on purpose: the user asked for a Coral model and did not get one
        log.warning("EDGE TPU MODEL NOT BUILT: %s", edgetpu["reason"])
    if meta["onnx"]["status"] not in ("built", "skipped"):
        log.warning("ONNX MODEL NOT SHIPPED (%s): %s", meta["onnx"]["status"], meta["onnx"]["reason"])
    c = meta["compatibility"]
    log.info("model.tflite written; Edge TPU static check: %s/%s ops map", c["mapped_ops"], c["total_ops"])
    create_markdown_artifact(key="export-summary", markdown=build.summary_markdown(meta),
                             description="Frigate export, Edge TPU compatibility, int8 fidelity")
    create_markdown_artifact(key="edgetpu-compatibility",
                             markdown=(OUT_DIR / "compatibility.md").read_text(),
                             description="Edge TPU compatibility report")
    return meta

