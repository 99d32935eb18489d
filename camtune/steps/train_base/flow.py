"""train_base: the base detector from scratch on the base_train sample (Model Garden RetinaNet +
MobileDet), or pulled from the registry. `camtune train_base`."""
from __future__ import annotations

from prefect import flow, get_run_logger

from camtune.core import config
from camtune.steps.train_base import train_base
from camtune.training import summary as _training_report


@flow(name="train_base")
def train_base_flow(params_path: str = "params.yaml", overrides: dict | None = None) -> dict:
    """Train (or resume, or pull) the base model into artifacts/train_base/."""
    params = config.load(params_path, overrides)
    log = get_run_logger()
    out = train_base(params, progress=_training_report.progress_logger())
    _training_report.training_artifacts("train_base", "train-base", out)
    log.info("base model: %s (step %s)", out["checkpoint"], out.get("final_step"))
    return {k: v for k, v in out.items() if k != "progress"}

