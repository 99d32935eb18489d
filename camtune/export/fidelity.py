"""Quantization fidelity: the int8 model against its float twin, scored by the evaluate step's
own scorer (`camtune.evaluation.score_model`, pycocotools).

Both models come from the same SavedModel with the same `TFLite_Detection_PostProcess` and run
through the same Frigate-style runner, so the difference is the quantization alone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from camtune.dataset import Dataset
from camtune.errors import StepFailed


def fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def tflite_map(model_path: str | Path, ds: Dataset, label_names: Sequence[str]) -> dict:
    """mAP of a Frigate-contract TFLite model on a dataset: {map, map50, images, boxes}."""
    from camtune.evaluation import score_model

    m = score_model("tflite", model_path, ds, label_names, slices=False, curves=False)
    return {"map": m["map"], "map50": m["map50"], "images": m["images"], "boxes": m["boxes"]}


def compare(int8_model: str | Path, float_model: str | Path, sets: dict[str, Dataset],
            label_names: Sequence[str], max_map_drop: float) -> dict:
    """COCO mAP of both models on each evaluation set; StepFailed when the int8 model loses more
    than `max_map_drop` (mAP@[.5:.95], as a fraction) on any set, naming both numbers."""
    report: dict = {"metric": "COCO mAP@[.5:.95] (pycocotools)", "max_map_drop": max_map_drop,
                    "sets": {}}
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
    report["passed"] = not failures
    if failures:
        raise StepFailed("int8 quantization lost too much accuracy:\n  " + "\n  ".join(failures))
    return report
