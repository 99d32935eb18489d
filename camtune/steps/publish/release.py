"""Publish a blessed model into the registry, and install a published one into Frigate's model_cache.

`prepare` reads the stage outputs (export, evaluate, finetune, train_base), refuses an unblessed
model, checks the TFLite input against the Frigate contract and stages `metadata.json` and
`lineage.json`; `upload` writes the files, then the index entry (the commit point). The model id
is derived from the content (model files + user), so publishing the same model twice finds it in
the index and changes nothing.

The CPU and Edge TPU files are one registry entry, but Frigate wants one file per model id with
the detectors it runs on (`supportedDetectors` is checked against the configured detector), and an
Edge TPU-compiled model cannot run on the CPU detector. So the entry carries two Frigate variants:
`<model_id>` (model.tflite, ["cpu"]) and `<model_id>-edgetpu` (model_edgetpu.tflite, ["edgetpu"]);
the top level of metadata.json is the CPU variant and `variants` lists them. When export built the
ONNX model, a third variant `<model_id>-onnx` (model.onnx, `yolo-generic`, the detectors export
checked it with: onnx, openvino) carries its own Frigate fields (docs/detectors.md).
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from camtune.contracts import artifacts
from camtune.core import atomic
from camtune.contracts.artifacts import read_json
from camtune.contracts.verdict import Verdict
from camtune.core.config import Params, model_params
from camtune.core.dataset import file_sha256
from camtune.core.errors import StepFailed
from camtune.model.labelmap import read_labelmap
from camtune.contracts.registry import Registry, check_segment
# moved to camtune/contracts/provenance.py (the report names models the same way); kept importable from here
from camtune.contracts.provenance import (base_checkpoint_files, base_identity, content_model_id,  # noqa: F401
                                          dvc_hashes, git_revision)

# registry file name -> where it comes from (None = staged here)
SOURCES = {
    "model.tflite": ("export", True),
    "model_edgetpu.tflite": ("export", False),
    "model.onnx": ("export", False),
    "labelmap.txt": ("export", True),
    "filters.yml": ("evaluate", True),
    "report.md": ("evaluate", True),
}
# Frigate variant -> its file in the entry; Frigate detector type -> the variant it loads
VARIANT_FILES = {"cpu": "model.tflite", "edgetpu": "model_edgetpu.tflite", "onnx": "model.onnx"}
DETECTORS = {"cpu": "cpu", "edgetpu": "edgetpu", "onnx": "onnx", "openvino": "onnx"}
# the Frigate model-info fields a variant may set for itself (the ONNX model's type and input differ)
VARIANT_FIELDS = ("type", "width", "height", "inputShape", "pixelFormat", "inputDataType")
# the `detectors:` block per Frigate detector type (docs/detectors.md)
DETECTOR_CONFIG = {
    "cpu": "  cpu:\n    type: cpu",
    "edgetpu": "  coral:\n    type: edgetpu\n    device: usb",
    "onnx": "  onnx:\n    type: onnx",
    "openvino": "  ov:\n    type: openvino\n    device: CPU   # GPU for an Intel iGPU",
}
# upload order: payload first, metadata.json (which lists the others' sha256) last, then the index
UPLOAD_ORDER = ("model.tflite", "model_edgetpu.tflite", "model.onnx", "labelmap.txt", "filters.yml",
                "report.md", "lineage.json", "metadata.json")


def frigate_config(detector: str, frigate_id: str) -> str:
    """The lines of Frigate's config that load variant `frigate_id` on `detector`."""
    return f"detectors:\n{DETECTOR_CONFIG[detector]}\nmodel:\n  path: plus://{frigate_id}\n"


def detector_table(variants: dict) -> dict:
    """{Frigate detector: {"model_id", "file", "config"}} for every detector a variant supports."""
    out = {}
    for name, v in variants.items():
        for det in v["supportedDetectors"]:
            out[det] = {"model_id": v["id"], "file": v["file"], "config": frigate_config(det, v["id"])}
    return out


def onnx_variant(export_info: Path, model_id: str) -> dict:
    """The ONNX variant from export's `model.onnx.json` (its Frigate fields and checked detectors)."""
    if not export_info.is_file():
        raise StepFailed(f"{export_info}: missing beside model.onnx; the export stage writes both")
    info = read_json(export_info)
    missing = [k for k in (*VARIANT_FIELDS, "supportedDetectors") if k not in info]
    if missing:
        raise StepFailed(f"{export_info}: missing {', '.join(missing)}")
    unknown = sorted(set(info["supportedDetectors"]) - {"onnx", "openvino"})
    if unknown or not info["supportedDetectors"]:
        raise StepFailed(f"{export_info}: supportedDetectors {info['supportedDetectors']} must name onnx "
                         f"and/or openvino")
    return {"id": f"{model_id}-onnx", "file": "model.onnx", "supportedDetectors": list(info["supportedDetectors"]),
            "frigate": {k: info[k] for k in VARIANT_FIELDS}}


@dataclass
class Plan:
    """Everything one publish writes, staged on local disk."""

    user_id: str
    model_id: str
    files: dict[str, Path]                      # registry name -> local file
    metadata: dict
    lineage: dict
    base_id: str | None
    base_files: dict[str, Path] = field(default_factory=dict)
    base_metadata: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------
# reading the stage outputs


def tflite_input(path: Path) -> tuple[int, int, str]:
    """(width, height, inputDataType) of a TFLite model's single input, which must be NHWC RGB."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_path=str(path))
    except (ValueError, RuntimeError) as exc:
        raise StepFailed(f"{path}: not a loadable TFLite model: {exc}") from None
    inputs = interp.get_input_details()
    if len(inputs) != 1:
        raise StepFailed(f"{path}: Frigate feeds one input tensor, this model has {len(inputs)}")
    shape, dtype = list(inputs[0]["shape"]), inputs[0]["dtype"].__name__
    if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
        raise StepFailed(f"{path}: input shape {shape} is not [1, height, width, 3] (nhwc)")
    # Frigate's inputDataType "int" feeds uint8 pixels, "float" float32; nothing else
    data_type = {"uint8": "int", "float32": "float"}.get(dtype)
    if data_type is None:
        raise StepFailed(f"{path}: input dtype {dtype} is not one Frigate feeds (uint8 or float32)")
    return int(shape[2]), int(shape[1]), data_type


def attribute_map(attribute_parents: dict[str, list[str]]) -> dict[str, list[str]]:
    """{"face": ["person"]} -> {"person": ["face"]}: Frigate keys attributes by their parent."""
    out: dict[str, list[str]] = {}
    for child, parents in attribute_parents.items():
        for parent in parents:
            out.setdefault(parent, []).append(child)
    return {k: sorted(v) for k, v in sorted(out.items())}


def trained_user_image_ids(trained_on: dict, user_id: str, path: Path) -> list[int]:
    """The user's image ids from finetune's trained_on.json (`user.image_ids`; the replay images
    are other users' and do not count against this user's "new verified images")."""
    user = trained_on.get("user")
    if trained_on.get("user_id") not in (None, user_id):
        raise StepFailed(f"{path}: trained for user {trained_on.get('user_id')!r}, not {user_id!r}")
    if not isinstance(user, dict) or not isinstance(user.get("image_ids"), list):
        raise StepFailed(f"{path}: no 'user.image_ids'; cannot record which of {user_id}'s images "
                         f"were trained on")
    return sorted(int(i) for i in user["image_ids"])


# ------------------------------------------------------------------------------------------
# prepare + upload


def prepare(params: Params, staging: Path, *, export_dir: Path = artifacts.EXPORT_DIR,
            evaluate_dir: Path = artifacts.EVALUATE_DIR, finetune_dir: Path = artifacts.FINETUNE_DIR,
            train_base_dir: Path = artifacts.TRAIN_BASE_DIR, sample_dir: Path = artifacts.SAMPLE_DIR,
            trained_at: dt.datetime | None = None, lock_path: Path = Path("dvc.lock")) -> Plan:
    """Check the gate and the inputs, stage metadata.json and lineage.json in `staging`."""
    user_id = check_segment(params.user.id, "user id")
    checked = Verdict.read(evaluate_dir / artifacts.GATE.name).check_blessed(params.publish.allow_inconclusive)
    gate, verdict = checked.data, checked.verdict
    metrics = read_json(evaluate_dir / artifacts.METRICS.name)

    dirs = {"export": export_dir, "evaluate": evaluate_dir}
    files: dict[str, Path] = {}
    for name, (stage, required) in SOURCES.items():
        path = dirs[stage] / name
        if path.is_file():
            files[name] = path
        elif required:
            raise StepFailed(f"{path}: missing; the {stage} stage writes it")

    width, height, data_type = tflite_input(files["model.tflite"])
    # Frigate's labelMap: {"0": "person", ...}
    label_map = {str(i): name for i, name in enumerate(read_labelmap(files["labelmap.txt"]))}
    expected = params.labels.label_map
    if label_map != expected:
        raise StepFailed(f"{files['labelmap.txt']}: label map {label_map} differs from params.yaml "
                         f"labels.names {expected}")

    # the base: published alongside (write-once), named in the model's metadata and lineage
    base_id, base_files, base_meta = None, {}, {}
    base_model_dir = train_base_dir / "model"
    if base_model_dir.is_dir():
        base_files = base_checkpoint_files(base_model_dir, staging / "base")
        base_id, provenance = base_identity(base_model_dir, base_files)
        manifest = sample_dir / artifacts.BASE_TRAIN.name
        base_meta = {
            "trained_at": dt.datetime.fromtimestamp(base_model_dir.stat().st_mtime, dt.timezone.utc).isoformat(),
            "sample_manifest_sha256": file_sha256(manifest) if manifest.is_file() else None,
            "params": {"labels": params.labels.model_dump(),
                       "training": params.training.model_dump(exclude={"finetune"})},
            "metrics": metrics.get("base"),  # evaluate's figures for the base model
            **provenance,
        }

    model_id = content_model_id(user_id, files)
    trained_on_path = finetune_dir / artifacts.TRAINED_ON.name
    trained_on = read_json(trained_on_path)
    # finetune writes trained_on.json when training ends: that is the model's train date
    trained_at = trained_at or dt.datetime.fromtimestamp(trained_on_path.stat().st_mtime, dt.timezone.utc)
    name = params.publish.model_name or f"{user_id}-{trained_at:%Y-%m-%d}"
    lineage = {
        "user_id": user_id,
        "model_id": model_id,
        "image_ids": trained_user_image_ids(trained_on, user_id, trained_on_path),
        "trained_on": trained_on,
        "base_id": base_id,
        "dvc": dvc_hashes(params, lock_path),
        "git": git_revision(),
        "params": model_params(params),   # what shapes the model; no connection settings
    }
    files["lineage.json"] = atomic.write_json(staging / "lineage.json", lineage)

    frigate = {
        "name": name,
        "trainDate": trained_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "baseModel": base_id,
        "isBaseModel": False,
        "type": "ssd",
        "width": width,
        "height": height,
        "inputShape": "nhwc",
        "pixelFormat": "rgb",
        "inputDataType": data_type,
        "labelMap": label_map,
        # Frigate's attributes map (parent -> attribute labels), from labels.attribute_parents
        "attributes": attribute_map(params.labels.attribute_parents),
    }
    variants = {det: {"id": model_id if det == "cpu" else f"{model_id}-{det}", "file": fname,
                      "supportedDetectors": [det]}
                for det, fname in VARIANT_FILES.items() if fname in files and det != "onnx"}
    if "model.onnx" in files:
        variants["onnx"] = onnx_variant(export_dir / "model.onnx.json", model_id)
    metadata = {
        "id": model_id, "supportedDetectors": ["cpu"], **frigate,
        "user_id": user_id, "variants": variants,
        "metrics": metrics, "gate": gate, "verdict": verdict,
        "sha256": {n: file_sha256(p) for n, p in files.items()},
    }
    if verdict != "blessed":
        # the loud flag: whoever installs this model can see it was never blessed
        metadata["published_unblessed"] = {
            "verdict": verdict, "allowed_by": "publish.allow_inconclusive",
            "warning": f"NOT BLESSED: the gate was {verdict} ({gate.get('summary', '')}); published "
                       f"because the user accepted the risk"}
    metadata["promotion"] = checked.promotion(params.publish.allow_inconclusive)
    files["metadata.json"] = atomic.write_json(staging / "metadata.json", metadata)
    return Plan(user_id=user_id, model_id=model_id, files=files, metadata=metadata, lineage=lineage,
                base_id=base_id, base_files=base_files, base_metadata=base_meta)


def upload(plan: Plan, registry: Registry) -> dict:
    """Write the entry's files, then the index (commit point). Returns the receipt."""
    existing = {m["model_id"]: m for m in registry.models(plan.user_id)}.get(plan.model_id)
    base = None
    if plan.base_id and plan.base_files:
        meta, created = registry.publish_base(plan.base_id, plan.base_files, plan.base_metadata)
        base = {"base_id": plan.base_id, "created": created,
                "uri": registry.uri(f"base/{plan.base_id}/metadata.json")}
    if existing is not None:  # idempotent: the index already names this exact model
        entry, created = existing, False
    else:
        # this publish's own keys: a concurrent publish of the same id cannot overwrite them, and
        # the entry that wins the index names exactly the files it wrote
        upload_id = uuid.uuid4().hex[:16]
        written = {}
        for name in UPLOAD_ORDER:
            if name in plan.files:
                info = registry.put_model_file(plan.user_id, plan.model_id, name, plan.files[name], upload_id)
                written[name] = {"sha256": info["sha256"], "size": info["size"]}
        entry = {
            "model_id": plan.model_id,
            "upload_id": upload_id,
            "name": plan.metadata["name"],
            "published_at": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
            "trainDate": plan.metadata["trainDate"],
            "blessed": plan.metadata.get("verdict", "blessed") == "blessed",
            "verdict": plan.metadata.get("verdict", "blessed"),
            "base_id": plan.base_id,
            "detectors": sorted(detector_table(plan.metadata["variants"])),
            "files": written,
        }
        promo = plan.metadata.get("promotion") or {"promoted": True}
        entry["promoted"] = promo["promoted"]
        if not promo["promoted"]:
            entry["not_promoted_reason"] = promo["reason"]
        entry, created = registry.commit(plan.user_id, entry)
    files = {n: {**info, "uri": registry.store.uri(registry._entry_key(plan.user_id, entry, n))}
             for n, info in entry["files"].items()}
    return {"user_id": plan.user_id, "model_id": plan.model_id, "created": created,
            "index": registry.uri(f"users/{plan.user_id}/index.json"),
            "published_at": entry["published_at"], "files": files, "base": base,
            "promoted": entry.get("promoted", True), "not_promoted_reason": entry.get("not_promoted_reason"),
            # which file for which Frigate detector, and the config lines that load it
            "frigate": detector_table(plan.metadata["variants"])}


def write_receipt(receipt: dict, publish_dir: Path = artifacts.PUBLISH_DIR) -> Path:
    with atomic.output_dir(publish_dir) as tmp:
        atomic.write_json(tmp / artifacts.RECEIPT.name, receipt)
    return publish_dir / artifacts.RECEIPT.name


# ------------------------------------------------------------------------------------------
# install into Frigate's model_cache


def install(registry: Registry, user_id: str, dest_dir: str | Path, *, model_id: str | None = None,
            detector: str = "cpu") -> dict:
    """Write `DIR/<frigate_id>` (the model file of the variant `detector` loads, no extension) and
    `DIR/<frigate_id>.json` (Frigate's model info) for a published model (the newest when no id is
    given). The model file is checked against the sha256 in the index before it takes its final name."""
    if detector not in DETECTORS:
        raise StepFailed(f"detector {detector!r}: one of {', '.join(DETECTORS)}")
    if model_id is None:
        # the current model: a newer one that was not promoted (worse than it) is never installed
        latest = registry.current_model(user_id)
        if latest is None:
            raise StepFailed(f"user {user_id!r} has no published model in {registry.uri(f'users/{user_id}/index.json')}")
        model_id = latest["model_id"]
    elif registry.model(user_id, model_id).get("promoted", True) is False:
        raise StepFailed(f"model {model_id!r} of user {user_id!r} was not promoted: "
                         f"{registry.model(user_id, model_id).get('not_promoted_reason')}; it is not installed")
    metadata = registry.read_json(user_id, model_id, "metadata.json")
    variant = metadata.get("variants", {}).get(DETECTORS[detector])
    if variant is None or detector not in variant["supportedDetectors"]:
        has = sorted(detector_table(metadata.get("variants", {})))
        raise StepFailed(f"model {model_id!r} has no variant for the {detector} detector "
                         f"(has: {', '.join(has) or 'none'})")
    frigate_id = check_segment(variant["id"], "model id")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    model_path = registry.download_file(user_id, model_id, variant["file"], dest_dir / frigate_id)
    info = {k: metadata[k] for k in ("name", "trainDate", "baseModel", "isBaseModel", "type", "width",
                                     "height", "inputShape", "pixelFormat", "inputDataType", "labelMap",
                                     "attributes") if k in metadata}
    info.update(variant.get("frigate", {}))
    info = {"id": frigate_id, **info, "supportedDetectors": variant["supportedDetectors"],
            "sha256": file_sha256(model_path), "registryModelId": model_id}
    info_path = atomic.write_json(dest_dir / f"{frigate_id}.json", info)
    return {"model_id": model_id, "frigate_id": frigate_id, "model": str(model_path),
            "info": str(info_path), "sha256": info["sha256"], "frigate_path": f"plus://{frigate_id}",
            "config": frigate_config(detector, frigate_id)}
