"""Quantization fidelity: the int8 model against its float twin, scored by the evaluate step's
own scorer (`camtune.metrics.score.score_model`, pycocotools).

Both models come from the same SavedModel with the same `TFLite_Detection_PostProcess` and run
through the same Frigate-style runner, so the difference is the quantization alone.
`check_target` holds another target (the ONNX model, per runtime) to the float model's
Frigate-path recall on the same regions.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from camtune.core.dataset import Dataset
from camtune.core.errors import StepFailed


def fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def tflite_map(model_path: str | Path, ds: Dataset, label_names: Sequence[str]) -> dict:
    """mAP of a Frigate-contract TFLite model on a dataset: {map, map50, images, boxes}."""
    from camtune.metrics.score import score_model

    m = score_model("tflite", model_path, ds, label_names, slices=False, curves=False)
    return {"map": m["map"], "map50": m["map50"], "images": m["images"], "boxes": m["boxes"]}


def frigate_recall(model_path: str | Path, ds: Dataset, label_names: Sequence[str],
                   attribute_labels: Sequence[str], min_score: float = 0.5, kind: str = "tflite") -> dict:
    """A model (`kind` as `camtune.metrics.score.score_frigate_path` takes it) through Frigate's path:
    regions around the set's objects and motion-like regions on negatives, the detector's floor,
    the merge."""
    from camtune.metrics.score import score_frigate_path

    return score_frigate_path(kind, model_path, ds, label_names, attribute_labels, min_score)["overall"]


def compare(int8_model: str | Path, float_model: str | Path, sets: dict[str, Dataset],
            label_names: Sequence[str], max_map_drop: float, *, attribute_labels: Sequence[str] = (),
            max_frigate_recall_drop: float | None = None, frigate_min_score: float = 0.5) -> dict:
    """COCO mAP of both models on each evaluation set, and (with `max_frigate_recall_drop`) their
    Frigate-path recall at `frigate_min_score`; StepFailed when the int8 model loses more than
    `max_map_drop` (mAP@[.5:.95], as a fraction) or `max_frigate_recall_drop` on any set, naming
    both numbers."""
    report: dict = {"metric": "COCO mAP@[.5:.95] (pycocotools)", "max_map_drop": max_map_drop,
                    "max_frigate_recall_drop": max_frigate_recall_drop, "sets": {}}
    failures = []
    for name, ds in sets.items():
        q = tflite_map(int8_model, ds, label_names)
        f = tflite_map(float_model, ds, label_names)
        # COCOeval reports null when the set has no ground truth: nothing to lose there
        drop = (f["map"] or 0.0) - (q["map"] or 0.0)
        report["sets"][name] = {"int8": q, "float": f, "map_drop": drop}
        if drop > max_map_drop:
            failures.append(f"{name}: int8 mAP {fmt(q['map'])} vs float {fmt(f['map'])} "
                            f"(drop {drop:.4f} > export.max_map_drop {max_map_drop})")
        if max_frigate_recall_drop is not None:
            fq = frigate_recall(int8_model, ds, label_names, attribute_labels, frigate_min_score)
            ff = frigate_recall(float_model, ds, label_names, attribute_labels, frigate_min_score)
            fdrop = (ff["recall"] or 0.0) - (fq["recall"] or 0.0)
            report["sets"][name]["frigate"] = {
                "min_score": frigate_min_score, "int8_recall": fq["recall"], "float_recall": ff["recall"],
                "recall_drop": fdrop, "objects": fq["objects"], "regions": fq["regions"],
                "int8_false_per_100_regions": fq["false_per_100_regions"],
                "float_false_per_100_regions": ff["false_per_100_regions"]}
            if fdrop > max_frigate_recall_drop:
                failures.append(f"{name}: int8 Frigate-path recall {fmt(fq['recall'])} vs float "
                                f"{fmt(ff['recall'])} at min_score {frigate_min_score} (drop {fdrop:.4f} > "
                                f"export.max_frigate_recall_drop {max_frigate_recall_drop})")
    report["passed"] = not failures
    if failures:
        raise StepFailed("int8 quantization lost too much accuracy:\n  " + "\n  ".join(failures))
    return report


def check_target(target: str, kind: str, model_path: str | Path, sets: dict[str, Dataset], reference: dict,
                 label_names: Sequence[str], *, attribute_labels: Sequence[str], max_frigate_recall_drop: float) -> dict:
    """Another export target (`kind`: "onnx" or "openvino", the runtime Frigate's detector uses) on
    the same Frigate-path regions as the float reference in `reference` (`compare`'s report).
    Returns {"passed", "sets": {name: figures}, "failures": [...]}; the caller decides what a
    failure refuses (a target, not the whole export)."""
    out: dict = {"target": target, "runtime": kind, "sets": {}, "failures": []}
    for name, ds in sets.items():
        ref = reference["sets"][name]["frigate"]
        got = frigate_recall(model_path, ds, label_names, attribute_labels, ref["min_score"], kind=kind)
        drop = (ref["float_recall"] or 0.0) - (got["recall"] or 0.0)
        out["sets"][name] = {"min_score": ref["min_score"], "recall": got["recall"],
                             "float_recall": ref["float_recall"], "int8_recall": ref["int8_recall"],
                             "recall_drop": drop, "objects": got["objects"], "regions": got["regions"],
                             "false_per_100_regions": got["false_per_100_regions"],
                             "float_false_per_100_regions": ref["float_false_per_100_regions"]}
        if drop > max_frigate_recall_drop:
            out["failures"].append(f"{target} on {kind}, {name}: Frigate-path recall {fmt(got['recall'])} vs "
                                   f"float {fmt(ref['float_recall'])} at min_score {ref['min_score']} (drop "
                                   f"{drop:.4f} > export.max_frigate_recall_drop {max_frigate_recall_drop})")
    out["passed"] = not out["failures"]
    return out
