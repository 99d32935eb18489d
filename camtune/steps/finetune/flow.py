"""finetune: the user's model, initialised from the base checkpoint, trained on the user's verified
images (minus a stable holdout kept for evaluation) plus a replay of the global sample.
`camtune finetune`."""
from __future__ import annotations

from prefect import flow, get_run_logger

from camtune.core import config
from camtune.steps.finetune import finetune
from camtune.training import summary as _training_report


@flow(name="finetune")
def finetune_flow(params_path: str = "params.yaml", overrides: dict | None = None) -> dict:
    """Fine-tune the base model for params.user.id into artifacts/finetune/."""
    params = config.load(params_path, overrides)
    log = get_run_logger()
    out = finetune(params, progress=_training_report.progress_logger())
    _training_report.training_artifacts("finetune", "finetune", out)
    log.info("fine-tuned model: %s (%d user images, %d held out, %d replay)", out["checkpoint"],
             out["user_images"], out["holdout"], out["replay_images"])
    return {k: v for k, v in out.items() if k != "progress"}

