"""What evaluate reads, checked before any prediction: the two evaluation sets (from their
manifests) and the model folders. (The incumbent, the model the user runs now, is resolved and
checked by `camtune.model.incumbent`, shared with validate.)"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from camtune.contracts.artifacts import Manifest, missing_hint
from camtune.core.dataset import Dataset
from camtune.core.errors import StepFailed
from camtune.metrics.predict import check_dataset_labels
from camtune.model.checkpoint import read_labels
from camtune.model.labelmap import check_labels


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
