"""The export step end to end: tuned checkpoint -> Frigate's int8 TFLite, label map, Edge TPU
compatibility report, Edge TPU compile (when the compiler exists), quantization fidelity.

Inputs (the declared DVC deps): `artifacts/finetune/model` (Model Garden model_dir + labels.json),
`artifacts/finetune/holdout.json`, `artifacts/sample/{global_eval,replay}.json`, the user dataset
and the global pool. Everything is written into `out_dir` (the caller makes it atomic).
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from camtune.contracts import artifacts
from camtune.core import atomic
from camtune.contracts.artifacts import Manifest
from camtune.core.config import Params
from camtune.core.dataset import Dataset, file_sha256, load_dataset
from camtune.core.errors import StepFailed
from camtune.steps.export import compat, compiler, fidelity, to_tflite as tflite
from camtune.steps.export import to_onnx as onnx_export
from camtune.model.checkpoint import LABELS_FILE, read_labels
from camtune.model.images import Limits, load_rgb
from camtune.model.labelmap import LABELMAP_FILE, check_labels, labelmap_text

log = logging.getLogger(__name__)


def export(params: Params, out_dir: str | Path, *, model_dir: str | Path = artifacts.TUNED_MODEL,
           holdout: str | Path = artifacts.HOLDOUT, global_eval: str | Path = artifacts.GLOBAL_EVAL,
           replay: str | Path = artifacts.REPLAY) -> dict:
    out_dir, model_dir = Path(out_dir), Path(model_dir)
    names = list(params.labels.names)
    size, ex = params.training.input_size, params.export
    check_labels(read_labels(model_dir), names, model_dir / LABELS_FILE)
    targets = set(ex.targets)
    edgetpu_compiler = (compiler.resolve(required=ex.edgetpu.required, compiler_path=ex.edgetpu.compiler_path)
                        if "edgetpu" in targets else None)

    hold, glob, rep = (Manifest.read(p) for p in (holdout, global_eval, replay))
    hold_ds, glob_ds, rep_ds = hold.dataset(), glob.dataset(), rep.dataset()
    hold_ids, glob_ids, rep_ids = list(hold.image_ids), list(glob.image_ids), list(rep.image_ids)
    # calibrate on the user's verified images that are NOT the fidelity holdout, plus replay images
    user_ds = load_dataset(params.data.user_dataset).verified().of_user(params.user.id)
    user_ids = sorted(set(int(i) for i in user_ds.images["id"]) - set(hold_ids))
    calib = tflite.calibration_paths([(user_ds, user_ids), (rep_ds, rep_ids)], ex.representative_images)
    if not calib:
        raise StepFailed(f"no representative images: the user has no verified images outside the "
                         f"holdout in {params.data.user_dataset} and {replay} lists none")

    with tempfile.TemporaryDirectory(prefix="camtune-export-") as tmp:
        tmp = Path(tmp)
        saved = tflite.export_saved_model(model_dir, tmp / "saved_model", input_size=size,
                                          max_detections=ex.max_detections)

        boxes_of = _tracked_boxes([user_ds, rep_ds], params)

        limits = Limits.of(params.validate)

        def frames():
            # Frigate-style regions (objects and motion-like background), not letterboxed frames
            items = ((load_rgb(p, limits), boxes_of.get(str(p), [])) for p in calib)
            return tflite.representative_frames(tflite.region_crops(items, size), size)

        model_path = out_dir / "model.tflite"
        atomic.write_bytes(model_path, tflite.convert(saved, frames))
        float_path = tmp / "model_float.tflite"
        float_path.write_bytes(tflite.convert(saved, None))

        io = tflite.io_details(model_path)
        problems = tflite.check_frigate_io(io, size, ex.max_detections)
        if problems:
            raise StepFailed(f"{model_path} breaks the Frigate contract:\n  " + "\n  ".join(problems))
        atomic.write_text(out_dir / LABELMAP_FILE, labelmap_text(names))

        report = compat.check(model_path)
        compat_dict = report.to_dict()
        compat_dict["model"] = model_path.name

        if "edgetpu" in targets:
            edgetpu = compiler.compile_or_skip(model_path, tmp / "edgetpu", compiler=edgetpu_compiler,
                                               timeout_s=ex.edgetpu.timeout_s)
        else:
            edgetpu = {"status": "skipped", "reason": "not in export.targets"}
        if edgetpu["status"] == "compiled":
            shutil.copyfile(edgetpu["model"], out_dir / "model_edgetpu.tflite")
            shutil.copyfile(edgetpu["log"], out_dir / "model_edgetpu.log")
            edgetpu["model"], edgetpu["log"] = "model_edgetpu.tflite", "model_edgetpu.log"
            edgetpu["runtime"] = compiler.edgetpu_latency(out_dir / "model_edgetpu.tflite")
        else:
            edgetpu["runtime"] = {"status": "not_run", "reason": "no compiled Edge TPU model"}

        sets = {"user_holdout": hold_ds.subset(hold_ids), "global_eval": glob_ds.subset(glob_ids)}
        empty = [k for k, d in sets.items() if d.images.empty]
        sets = {k: d for k, d in sets.items() if not d.images.empty}
        fid = fidelity.compare(model_path, float_path, sets, names, ex.max_map_drop,
                               attribute_labels=list(params.labels.attribute_parents),
                               max_frigate_recall_drop=ex.max_frigate_recall_drop)
        fid["skipped_empty_sets"] = empty
        onnx_meta = _onnx_target(targets, model_dir, tmp / "onnx", out_dir, params, sets, fid)

    compat_dict["edgetpu_compiler"] = _compile_summary(edgetpu)
    atomic.write_json(out_dir / "compatibility.json", compat_dict)
    atomic.write_text(out_dir / "compatibility.md", compat.to_markdown(report) + "\n" + _edgetpu_md(edgetpu))
    meta = {
        "model": "model.tflite",
        "model_sha256": file_sha256(model_path),
        "source_model_dir": str(model_dir),
        "input_size": size,
        "max_detections": ex.max_detections,
        "labels": names,
        "io": io,
        "frigate_contract": "ok",
        "representative_images": len(calib),
        "representative_inputs": "Frigate-style regions around objects plus one motion-like region per image",
        "compatibility": {k: compat_dict[k] for k in ("total_ops", "mapped_ops", "cpu_ops",
                                                      "first_blocking", "fully_mapped_body")},
        "edgetpu": edgetpu,
        "onnx": onnx_meta,
        "targets": list(ex.targets),
        "fidelity": fid,
    }
    atomic.write_json(out_dir / "export.json", meta)
    return meta


def _onnx_target(targets: set, model_dir: Path, work: Path, out_dir: Path, params: Params,
                 sets: dict[str, Dataset], fid: dict) -> dict:
    """Build model.onnx (+ model.onnx.json) for Frigate's onnx and openvino detectors, check it on
    each runtime against the float model's Frigate-path recall, and ship it with the detectors that
    passed. Never raises for this target: what could not be built or was refused says why and the
    tflite/edgetpu outputs stand."""
    if "onnx" not in targets:
        return {"status": "skipped", "reason": "not in export.targets"}
    names, size = list(params.labels.names), params.training.input_size
    runtimes = {}
    for runtime, module in (("onnx", "onnxruntime"), ("openvino", "openvino")):
        try:
            __import__(module)
            runtimes[runtime] = None
        except ImportError:
            runtimes[runtime] = f"{module} is not installed (uv sync --extra detectors)"
    try:
        path = onnx_export.build(model_dir, work, input_size=size, label_names=names,
                                 supported=[r for r, why in runtimes.items() if why is None],
                                 model_type=params.export.onnx_model_type,
                                 max_detections=params.export.max_detections)
    except ImportError as exc:
        return {"status": "not_built", "reason": f"{exc.name or exc} is not installed: the ONNX export needs "
                                                 f"the detectors extra (uv sync --extra detectors)"}
    except Exception as exc:  # a conversion failure must not cost the user the TFLite model
        log.exception("ONNX export failed")
        return {"status": "not_built", "reason": f"conversion failed: {type(exc).__name__}: {exc}"}
    checks, supported = {}, []
    for runtime, why in runtimes.items():
        if why is not None:
            checks[runtime] = {"passed": False, "not_run": why}
            continue
        try:
            checks[runtime] = fidelity.check_target(
                "onnx", runtime, path, sets, fid, names, attribute_labels=list(params.labels.attribute_parents),
                max_frigate_recall_drop=params.export.max_frigate_recall_drop)
        except Exception as exc:  # the runtime could not load or run it: that detector is left out
            log.exception("ONNX model on %s failed", runtime)
            checks[runtime] = {"passed": False, "failures": [f"onnx on {runtime}: {type(exc).__name__}: {exc}"]}
        if checks[runtime]["passed"]:
            supported.append(runtime)
    meta = {"model": "model.onnx", "info": "model.onnx.json", "model_type": params.export.onnx_model_type,
            "opset": onnx_export.OPSET, "checks": checks, "supportedDetectors": supported}
    if not supported:
        failures = [f for c in checks.values() for f in c.get("failures", [])]
        if not failures:  # no runtime to check it with: never ship an unchecked model
            return {**meta, "status": "not_built", "model": None, "info": None,
                    "reason": "; ".join(f"{r}: {c['not_run']}" for r, c in checks.items())}
        log.warning("ONNX MODEL REFUSED:\n  %s", "\n  ".join(failures))
        return {**meta, "status": "refused", "reason": "; ".join(failures), "model": None, "info": None}
    info = onnx_export.frigate_info(size, names, supported, params.export.onnx_model_type)
    atomic.write_bytes(out_dir / "model.onnx", path.read_bytes())
    atomic.write_json(out_dir / "model.onnx.json", info)
    return {**meta, "status": "built", "model_sha256": file_sha256(out_dir / "model.onnx")}


def _tracked_boxes(datasets: list[Dataset], params: Params) -> dict[str, list]:
    """{image path: tracked (non-attribute) boxes xyxy} of the calibration datasets."""
    attrs = set(params.labels.attribute_parents)
    out: dict[str, list] = {}
    for ds in datasets:
        files = {int(r.id): str(ds.image_path(r.file_name)) for r in ds.images.itertuples()}
        for a in ds.annotations.itertuples():
            if a.label in attrs or int(a.image_id) not in files:
                continue
            out.setdefault(files[int(a.image_id)], []).append(
                (float(a.x), float(a.y), float(a.x + a.w), float(a.y + a.h)))
    return out


def _compile_summary(edgetpu: dict) -> dict:
    keys = ("status", "reason", "version", "subgraphs", "total_ops", "tpu_ops", "cpu_ops", "operators")
    return {k: edgetpu[k] for k in keys if k in edgetpu}


def _edgetpu_md(edgetpu: dict) -> str:
    if edgetpu["status"] != "compiled":
        return (f"## Edge TPU compile\n\n**SKIPPED - {edgetpu['reason']}.** The report above is the "
                f"static prediction only; nothing was compiled or run on an Edge TPU.\n\n"
                f"```\n{edgetpu.get('install', '')}\n```\n")
    rt = edgetpu["runtime"]
    ran = (f"ran on a Coral: median {rt['median_ms']:.1f} ms over {rt['runs']} runs"
           if rt["status"] == "ran" else f"not run on a Coral ({rt['reason']})")
    lines = ["## Edge TPU compile", "",
             f"`edgetpu_compiler` {edgetpu.get('version')}: {edgetpu.get('tpu_ops')} ops on the Edge TPU, "
             f"{edgetpu.get('cpu_ops')} on the CPU, {edgetpu.get('subgraphs')} Edge TPU subgraph(s); {ran}.",
             "", "| operator | count | status |", "| --- | --- | --- |"]
    lines += [f"| {o['op']} | {o['count']} | {o['status']} |" for o in edgetpu.get("operators", [])]
    return "\n".join(lines) + "\n"


def summary_markdown(meta: dict) -> str:
    c, e, f = meta["compatibility"], meta["edgetpu"], meta["fidelity"]
    fb = c["first_blocking"]
    lines = ["# Export", "",
             f"- `model.tflite`: uint8 [1,{meta['input_size']},{meta['input_size']},3] -> float32 boxes, "
             f"classes, scores, count (Frigate contract checked)",
             f"- Edge TPU (static): {c['mapped_ops']}/{c['total_ops']} ops map; first blocking: "
             + (f"#{fb['index']} {fb['op']} ({fb['reason']})" if fb else "none"),
             f"- Edge TPU compile: **{e['status']}**" + (f" - {e['reason']}" if e.get("reason") else ""),
             f"- Edge TPU runtime: {e['runtime']['status']}"]
    o = meta.get("onnx", {})
    if o.get("status") == "built":
        lines.append(f"- `model.onnx` ({o['model_type']}, opset {o['opset']}): checked on "
                     f"{', '.join(o['supportedDetectors'])} (Frigate detectors it is published for)")
    else:
        lines.append(f"- ONNX: **{o.get('status')}** - {o.get('reason')}")
    for runtime, c in o.get("checks", {}).items():
        for name, r in c.get("sets", {}).items():
            lines.append(f"- {name}, Frigate path at min_score {r['min_score']}: ONNX on {runtime} recall "
                         f"{fidelity.fmt(r['recall'])} vs float {fidelity.fmt(r['float_recall'])}, false / 100 "
                         f"regions {fidelity.fmt(r['false_per_100_regions'])}")
    for name, s in f["sets"].items():
        lines.append(f"- {name}: int8 mAP {fidelity.fmt(s['int8']['map'])} vs float "
                     f"{fidelity.fmt(s['float']['map'])} "
                     f"(drop {s['map_drop']:.4f}, limit {f['max_map_drop']})")
        if "frigate" in s:
            fr = s["frigate"]
            lines.append(f"- {name}, Frigate path at min_score {fr['min_score']}: int8 recall "
                         f"{fidelity.fmt(fr['int8_recall'])} vs float {fidelity.fmt(fr['float_recall'])}, "
                         f"false / 100 regions {fidelity.fmt(fr['int8_false_per_100_regions'])} vs "
                         f"{fidelity.fmt(fr['float_false_per_100_regions'])}")
    return "\n".join(lines) + "\n"
