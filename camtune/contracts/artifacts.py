"""What the stages hand each other: the output paths and the sample manifests (the gate's
decision, gate.json, is read by camtune.contracts.verdict).

`dvc.yaml` declares every stage's deps and outs; the paths below are the same strings, relative to
the repository (or a per-user workspace) root, and `tests/contracts/test_artifacts.py` checks that they agree.
The contracts are described in docs/ARCHITECTURE.md ("Stage contracts").
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from camtune.core import atomic
from camtune.core.errors import StepFailed

if TYPE_CHECKING:
    from camtune.core.dataset import Dataset

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
EVALUATION_DETECTIONS = EVALUATE_DIR / "detections"  # {base,tuned}_{user,global}.json, COCO results
GATE_PLOTS = EVALUATE_DIR / "gate_plots"   # forest plots of the gate's checks (PNG)
FRIGATE_RUNS = EVALUATE_DIR / "frigate_runs.json"  # every region and detection >= 0.4 of the Frigate path

EXPORT_DIR = ARTIFACTS / "export"

PUBLISH_DIR = ARTIFACTS / "publish"
RECEIPT = PUBLISH_DIR / "receipt.json"

REPORT_DIR = ARTIFACTS / "report"  # index.html + img/ + charts/

STEP_FILE = "step.json"  # a step's own figures, beside its outputs (see step_file)
# the pipeline's stages in order; each is `camtune <stage>` in dvc.yaml, whose flow is
# camtune.steps.<stage>.flow (one name per step: stage = package = flow = params section = command)
STAGES = ("sample_data", "validate", "sample", "train_base", "finetune", "evaluate", "export", "publish", "report")


def command(stage: str) -> str:
    """The stage's dvc.yaml `cmd`."""
    return f"camtune {stage}"


def flow_module(stage: str) -> str:
    return f"camtune.steps.{stage}.flow"


# set by the orchestrator for one `dvc repro`; a step copies it into its step file, so figures of
# an earlier run (a stage DVC skipped this time) are never counted as this run's
RUN_ENV = "CAMTUNE_RUN_ID"

# stage -> what it writes (dvc.yaml `outs`), and what it reads of the others (dvc.yaml `deps`,
# besides the datasets and code)
OUTS: dict[str, tuple[Path, ...]] = {
    "validate": (VALIDATE_DIR,),
    "sample": (SAMPLE_DIR,),
    "train_base": (TRAIN_BASE_DIR,),
    "finetune": (FINETUNE_DIR,),
    "evaluate": (GATE, FILTERS, EVALUATION_REPORT, EVALUATION_DETAILS, EVALUATION_DETECTIONS, PLOTS, GATE_PLOTS,
                 FRIGATE_RUNS, METRICS),
    "export": (EXPORT_DIR,),
    "publish": (RECEIPT,),
    "report": (REPORT_DIR,),
}
READS: dict[str, tuple[Path, ...]] = {
    "validate": (),
    "sample": (),
    "train_base": (BASE_TRAIN,),
    "finetune": (VALIDATION_REPORT, REPLAY, BASE_MODEL),
    "evaluate": (GLOBAL_EVAL, BASE_MODEL, TUNED_MODEL, HOLDOUT),
    "export": (GLOBAL_EVAL, REPLAY, TUNED_MODEL, HOLDOUT),
    "publish": (EXPORT_DIR, GATE, METRICS, FILTERS, EVALUATION_REPORT, TRAINED_ON, BASE_MODEL, BASE_TRAIN),
    "report": (VALIDATION_REPORT, GLOBAL_EVAL, HOLDOUT, BASE_MODEL, GATE, EVALUATION_DETAILS, FILTERS,
               EVALUATION_DETECTIONS, EXPORT_DIR),
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
    from camtune.core.dataset import DatasetError, read_json as read

    path = Path(path)
    if not path.is_file():
        raise StepFailed(f"{path}: not found{missing_hint(path)}")
    try:
        return read(path)
    except DatasetError as exc:  # not JSON: a step's refusal like any other
        raise StepFailed(str(exc)) from None


def step_file(stage: str, root: str | Path = ".") -> Path:
    """Where a step writes its own figures for the orchestrator: `artifacts/<stage>.step.json`,
    beside its outputs but not one of them (DVC hashes stay those of the outputs alone)."""
    return Path(root) / ARTIFACTS / f"{stage}.step.json"


def write_step(stage: str, figures: dict, root: str | Path = ".") -> Path:
    """The step's own figures (e.g. `compute_s`), tagged with the orchestrator's run id if any."""
    return atomic.write_json(step_file(stage, root), {"stage": stage, "run": os.environ.get(RUN_ENV),
                                                      **figures})


def read_step(stage: str, root: str | Path = ".", run: str | None = None) -> dict | None:
    """The figures the stage's step wrote, None when absent, unreadable or of another run."""
    try:
        step = json.loads(step_file(stage, root).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(step, dict) or (run is not None and step.get("run") != run):
        return None
    return step


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
        from camtune.core.dataset import load_dataset

        ds = load_dataset(self.source)
        unknown = sorted(set(self.image_ids) - set(ds.images["id"].astype(int)))
        if unknown:
            raise StepFailed(f"{self.path}: image ids {unknown[:10]} are not in {ds.annotations_path}")
        return ds

    def subset(self) -> "Dataset":
        """The listed images (and their boxes) of the source dataset, checked as `dataset()`."""
        return self.dataset().subset(list(self.image_ids))
