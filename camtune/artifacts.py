"""What the stages hand each other: the output paths, the sample manifests and the gate verdict.

`dvc.yaml` declares every stage's deps and outs; the paths below are the same strings, relative to
the repository (or a per-user workspace) root, and `tests/test_artifacts.py` checks that they agree.
The contracts are described in docs/ARCHITECTURE.md ("Stage contracts").
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from camtune.errors import StepFailed

if TYPE_CHECKING:
    from camtune.dataset import Dataset

ARTIFACTS = Path("artifacts")

VALIDATE_DIR = ARTIFACTS / "validate"
VALIDATION_REPORT = VALIDATE_DIR / "report.json"

SAMPLE_DIR = ARTIFACTS / "sample"
BASE_TRAIN = SAMPLE_DIR / "base_train.json"
GLOBAL_EVAL = SAMPLE_DIR / "global_eval.json"
REPLAY = SAMPLE_DIR / "replay.json"

TRAIN_BASE_DIR = ARTIFACTS / "train_base"
BASE_MODEL = TRAIN_BASE_DIR / "model"

FINETUNE_DIR = ARTIFACTS / "finetune"
TUNED_MODEL = FINETUNE_DIR / "model"
HOLDOUT = FINETUNE_DIR / "holdout.json"
TRAINED_ON = FINETUNE_DIR / "trained_on.json"

EVALUATE_DIR = ARTIFACTS / "evaluate"
GATE = EVALUATE_DIR / "gate.json"
METRICS = EVALUATE_DIR / "metrics.json"
FILTERS = EVALUATE_DIR / "filters.yml"
EVALUATION_REPORT = EVALUATE_DIR / "report.md"
EVALUATION_DETAILS = EVALUATE_DIR / "details.json"
PLOTS = EVALUATE_DIR / "plots"

EXPORT_DIR = ARTIFACTS / "export"

PUBLISH_DIR = ARTIFACTS / "publish"
RECEIPT = PUBLISH_DIR / "receipt.json"

STEP_FILE = "step.json"  # a step's own figures, beside its outputs (see step_file)

# stage -> what it writes (dvc.yaml `outs`), and what it reads of the others (dvc.yaml `deps`,
# besides the datasets and code)
OUTS: dict[str, tuple[Path, ...]] = {
    "validate": (VALIDATE_DIR,),
    "sample": (SAMPLE_DIR,),
    "train_base": (TRAIN_BASE_DIR,),
    "finetune": (FINETUNE_DIR,),
    "evaluate": (GATE, FILTERS, EVALUATION_REPORT, EVALUATION_DETAILS, PLOTS, METRICS),
    "export": (EXPORT_DIR,),
    "publish": (RECEIPT,),
}
READS: dict[str, tuple[Path, ...]] = {
    "validate": (),
    "sample": (),
    "train_base": (BASE_TRAIN,),
    "finetune": (VALIDATION_REPORT, REPLAY, BASE_MODEL),
    "evaluate": (GLOBAL_EVAL, BASE_MODEL, TUNED_MODEL, HOLDOUT),
    "export": (GLOBAL_EVAL, REPLAY, TUNED_MODEL, HOLDOUT),
    "publish": (EXPORT_DIR, GATE, METRICS, FILTERS, EVALUATION_REPORT, TRAINED_ON, BASE_MODEL, BASE_TRAIN),
}


def producer(path: str | Path) -> str | None:
    """The stage whose output `path` is (or lies in), None for anything else."""
    path = Path(path)
    for stage, outs in OUTS.items():
        if any(path == o or o in path.parents for o in outs):
            return stage
    return None


def missing_hint(path: str | Path) -> str:
    """` (run `dvc repro <stage>`)` for a stage output, else nothing: what to do when it is absent."""
    stage = producer(path)
    return f" (run `dvc repro {stage}`)" if stage else ""


def read_json(path: str | Path):
    """A stage's JSON output; StepFailed naming the file (and the stage to run) when it is missing
    or not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StepFailed(f"{path}: not found{missing_hint(path)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StepFailed(f"{path}: not valid JSON: {exc}") from None


def step_file(stage: str, root: str | Path = ".") -> Path:
    """Where a step writes its own figures (`step.json`, e.g. its compute seconds) for the
    orchestrator: beside its outputs, in the stage's output folder (or its first output's folder)."""
    first = OUTS[stage][0]
    folder = first if first.suffix == "" else first.parent
    return Path(root) / folder / STEP_FILE


# ---------------------------------------------------------------- sample manifests


@dataclass(frozen=True)
class Manifest:
    """A set of images of one dataset: `{"source": <dataset folder>, "image_ids": [...], ...}`.

    Written by sample (base_train, global_eval, replay) and finetune (holdout); `repeats` (optional,
    `{image_id: n}` or a list aligned with image_ids) upsamples images in training. Every other key
    stays in `extra` as written.
    """

    path: Path
    source: str
    image_ids: tuple[int, ...]
    repeats: dict[int, int] | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def read(cls, path: str | Path) -> "Manifest":
        """StepFailed naming the file (and the stage to run) when missing, not JSON or malformed."""
        path = Path(path)
        m = read_json(path)
        if not isinstance(m, dict) or not isinstance(m.get("source"), str) \
                or not isinstance(m.get("image_ids"), list):
            raise StepFailed(f"{path}: expected {{'source': <dataset folder>, 'image_ids': [...]}}")
        try:
            ids = tuple(int(i) for i in m["image_ids"])
        except (TypeError, ValueError):
            raise StepFailed(f"{path}: 'image_ids' must be integers") from None
        rep = m.get("repeats")
        repeats = None
        try:
            if isinstance(rep, dict):
                repeats = {int(k): int(v) for k, v in rep.items()}
            elif isinstance(rep, list):
                if len(rep) != len(ids):
                    raise StepFailed(f"{path}: 'repeats' has {len(rep)} entries for {len(ids)} image_ids")
                repeats = {i: int(n) for i, n in zip(ids, rep)}
        except (TypeError, ValueError):
            raise StepFailed(f"{path}: 'repeats' must map image ids to integers") from None
        extra = {k: v for k, v in m.items() if k not in ("source", "image_ids", "repeats")}
        return cls(path, m["source"], ids, repeats, extra)

    def get(self, key: str, default=None):
        return self.extra.get(key, default)

    def dataset(self) -> "Dataset":
        """The source dataset, checked to hold every listed image (StepFailed naming the ids)."""
        from camtune.dataset import load_dataset

        ds = load_dataset(self.source)
        unknown = sorted(set(self.image_ids) - set(ds.images["id"].astype(int)))
        if unknown:
            raise StepFailed(f"{self.path}: image ids {unknown[:10]} are not in {ds.annotations_path}")
        return ds

    def subset(self) -> "Dataset":
        """The listed images (and their boxes) of the source dataset, checked as `dataset()`."""
        return self.dataset().subset(list(self.image_ids))


# ---------------------------------------------------------------- the gate verdict


@dataclass(frozen=True)
class Verdict:
    """evaluate's gate.json: `{"blessed", "baseline", "failed": [names], "checks": [{name, metric,
    threshold, observed, passed, why}]}` (camtune.evaluation.gate.decide writes it)."""

    blessed: bool
    baseline: str | None
    failed: tuple[str, ...]
    checks: tuple[dict, ...]
    path: Path | None = None
    data: dict = field(default_factory=dict, repr=False)  # gate.json as written

    @classmethod
    def from_dict(cls, gate: dict, path: Path | None = None) -> "Verdict":
        if not isinstance(gate, dict):
            raise StepFailed(f"{path or 'gate'}: expected a JSON object")
        checks = tuple(c for c in gate.get("checks", []) if isinstance(c, dict))
        failed = tuple(gate.get("failed") or (c.get("name") for c in checks if not c.get("passed")))
        return cls(gate.get("blessed") is True, gate.get("baseline"), failed, checks, path, dict(gate))

    @classmethod
    def read(cls, path: str | Path = GATE) -> "Verdict":
        return cls.from_dict(read_json(path), Path(path))

    @property
    def failed_checks(self) -> list[dict]:
        return [c for c in self.checks if not c.get("passed")]

    def summary(self) -> str:
        """One line: `BLESSED` or `NOT blessed (refused by user_gain, global_floor)`."""
        if self.blessed:
            return "BLESSED"
        return f"NOT blessed (refused by {', '.join(self.failed) or 'no listed check'})"

    def reasons(self) -> str:
        """The failed checks on one line: `name: observed X vs T; ...`."""
        return "; ".join(f"{c.get('name')}: observed {c.get('observed')} vs {c.get('threshold')}"
                         for c in self.failed_checks)

    def check_blessed(self) -> "Verdict":
        """Itself when blessed; otherwise StepFailed naming every failed check."""
        if self.blessed:
            return self
        lines = [f"  - {c.get('name')}: {c.get('why', '')} (observed {c.get('observed')}, "
                 f"threshold {c.get('threshold')})" for c in self.failed_checks]
        if not lines:
            lines = [f"  - {name}" for name in self.failed] or ["  - (gate.json lists no checks)"]
        raise StepFailed(f"{self.path or 'gate'}: the model is not blessed; refusing to publish. "
                         f"Failed checks:\n" + "\n".join(lines))
