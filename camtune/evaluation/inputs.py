"""What evaluate reads, checked before any prediction: the two evaluation sets (from their
manifests), the model folders, and the baseline (the user's last blessed model, else the base)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from camtune.dataset import Dataset, load_dataset
from camtune.errors import StepFailed
from camtune.evaluation.predict import check_dataset_labels, check_labels

BASE_MODEL = Path("artifacts/train_base/model")
TUNED_MODEL = Path("artifacts/finetune/model")
HOLDOUT = Path("artifacts/finetune/holdout.json")
GLOBAL_EVAL = Path("artifacts/sample/global_eval.json")
PRODUCERS = {HOLDOUT: "finetune", GLOBAL_EVAL: "sample", BASE_MODEL: "train_base", TUNED_MODEL: "finetune"}


def read_manifest(path: Path) -> dict:
    hint = f" (run `dvc repro {PRODUCERS[path]}`)" if path in PRODUCERS else ""
    try:
        m = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise StepFailed(f"{path}: not found{hint}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StepFailed(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(m, dict) or not isinstance(m.get("source"), str) or not isinstance(m.get("image_ids"), list):
        raise StepFailed(f"{path}: expected {{'source': <dataset folder>, 'image_ids': [...]}}")
    return m


def eval_set(path: Path, label_names: Sequence[str]) -> tuple[Dataset, list[str]]:
    """The verified images a manifest names (unverified boxes are not ground truth), plus notes.
    StepFailed when the set is empty, names images its dataset lacks, or has unknown labels."""
    m = read_manifest(path)
    ids = [int(i) for i in m["image_ids"]]
    if not ids:
        raise StepFailed(f"{path}: the evaluation set is empty (no image_ids)")
    ds = load_dataset(m["source"])
    sub = ds.subset(ids)
    missing = sorted(set(ids) - set(sub.images["id"].astype(int)))
    if missing:
        raise StepFailed(f"{path}: image ids {missing[:10]} are not in {ds.annotations_path}")
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
    from camtune.training.detector import read_labels

    hint = f" (run `dvc repro {PRODUCERS[model_dir]}`)" if model_dir in PRODUCERS else ""
    if not Path(model_dir).is_dir():
        raise StepFailed(f"{model_dir}: model folder not found{hint}")
    check_labels(read_labels(model_dir), label_names, model_dir)


@dataclass(frozen=True)
class Baseline:
    name: str                 # "base" or "registry:<model_id>"
    tflite: Path | None       # the registry model's int8 TFLite, evaluated like the others
    note: str | None = None


def parse_labelmap(text: str) -> list[str]:
    """Frigate's labelmap.txt (`index label` lines, or bare labels) -> names in index order."""
    pairs = []
    for n, line in enumerate(l.strip() for l in text.splitlines()):
        if not line:
            continue
        idx, _, rest = line.partition(" ")
        pairs.append((int(idx), rest.strip()) if idx.isdigit() and rest.strip() else (n, line))
    return [name for _, name in sorted(pairs)]


def resolve_baseline(registry, user_id: str, label_names: Sequence[str], workdir: Path) -> Baseline:
    """The user's newest blessed model in the registry (its TFLite downloaded to `workdir` and
    evaluated on today's sets, so both sides of the gate see the same images), else the base.
    A registry model with another label set cannot be compared and falls back to the base."""
    entries = [e for e in registry.models(user_id) if e.get("blessed", True)]
    if not entries:
        return Baseline("base", None)
    entry = entries[-1]
    model_id = entry["model_id"]
    labels = parse_labelmap(registry.read_file(user_id, model_id, "labelmap.txt").decode())
    if labels != list(label_names):
        return Baseline("base", None, f"registry model {model_id} has labels {labels}, not labels.names: "
                                      f"compared against the base model instead")
    dest = registry.download_file(user_id, model_id, "model.tflite", Path(workdir) / f"{model_id}.tflite")
    return Baseline(f"registry:{model_id}", dest,
                    f"baseline {model_id} is the user's last published (int8) model, evaluated on these sets")
