"""What evaluate reads, checked before any prediction: the two evaluation sets (from their
manifests), the model folders, and the baseline (the user's last blessed model, else the base)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from camtune.artifacts import Manifest, missing_hint
from camtune.dataset import Dataset
from camtune.errors import StepFailed
from camtune.evaluation.predict import check_dataset_labels
from camtune.model.checkpoint import read_labels
from camtune.model.labelmap import LABELMAP_FILE, check_labels, parse_labelmap


def eval_set(path: Path, label_names: Sequence[str]) -> tuple[Dataset, list[str]]:
    """The verified images a manifest names (unverified boxes are not ground truth), plus notes.
    StepFailed when the set is empty, names images its dataset lacks, or has unknown labels."""
    m = Manifest.read(path)
    if not m.image_ids:
        raise StepFailed(f"{path}: the evaluation set is empty (no image_ids)")
    sub = m.subset()
    notes = []
    verified = sub.verified()
    if len(verified.images) < len(sub.images):
        notes.append(f"{path}: {len(sub.images) - len(verified.images)} unverified images left out")
    if verified.images.empty:
        raise StepFailed(f"{path}: the evaluation set has no verified images")
    check_dataset_labels(verified, label_names)
    return verified, notes


def check_model_dir(model_dir: Path, label_names: Sequence[str]) -> None:
    """Fail fast, before minutes of prediction, on a missing folder or a different label map."""
    if not Path(model_dir).is_dir():
        raise StepFailed(f"{model_dir}: model folder not found{missing_hint(model_dir)}")
    check_labels(read_labels(model_dir), label_names, model_dir)


@dataclass(frozen=True)
class Baseline:
    name: str                 # "base" or "registry:<model_id>"
    tflite: Path | None       # the registry model's int8 TFLite, evaluated like the others
    note: str | None = None


def resolve_baseline(registry, user_id: str, label_names: Sequence[str], workdir: Path) -> Baseline:
    """The user's newest blessed model in the registry (its TFLite downloaded to `workdir` and
    evaluated on today's sets, so both sides of the gate see the same images), else the base.
    A registry model with another label set cannot be compared and falls back to the base."""
    entries = [e for e in registry.models(user_id) if e.get("blessed", True)]
    if not entries:
        return Baseline("base", None)
    entry = entries[-1]
    model_id = entry["model_id"]
    labels = parse_labelmap(registry.read_file(user_id, model_id, LABELMAP_FILE).decode(),
                            f"registry model {model_id}/{LABELMAP_FILE}")
    if labels != list(label_names):
        return Baseline("base", None, f"registry model {model_id} has labels {labels}, not labels.names: "
                                      f"compared against the base model instead")
    dest = registry.download_file(user_id, model_id, "model.tflite", Path(workdir) / f"{model_id}.tflite")
    return Baseline(f"registry:{model_id}", dest,
                    f"baseline {model_id} is the user's last published (int8) model, evaluated on these sets")
