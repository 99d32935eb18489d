"""Shared by the two training flows: progress to the Prefect run log, a summary artifact."""
from __future__ import annotations

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from camtune.training.train import format_progress


def progress_logger():
    log = get_run_logger()

    def _emit(rec: dict) -> None:
        log.info("%s: %s", rec["stage"], format_progress(rec))
    return _emit


def training_artifacts(stage: str, key: str, out: dict) -> None:
    """The run's loss table and summary as Prefect artifacts (`key`-loss, `key`)."""
    rows = [{"step": r["step"], "loss": round(r["loss"], 4), "cls_loss": round(r.get("cls_loss", 0), 4),
             "box_loss": round(r.get("box_loss", 0), 5), "learning_rate": round(r.get("learning_rate", 0), 6),
             "images_per_s": round(r["images_per_s"], 2)} for r in out.get("progress", [])]
    if rows:
        create_table_artifact(key=f"{key}-loss", table=rows, description=f"{stage} training loss by step")
    lines = [f"# {stage}", "", "| | |", "|---|---|"]
    for k in ("source", "base_id", "model_dir", "checkpoint", "start_step", "final_step", "images",
              "examples", "user_images", "holdout", "replay_images"):
        if k in out:
            lines.append(f"| {k} | {out[k]} |")
    if "wall_s" in out:
        lines.append(f"| wall time | {out['wall_s']:.1f} s |")
        lines.append(f"| images/s | {out['images_per_s']:.2f} |")
    create_markdown_artifact(key=key, markdown="\n".join(lines), description=f"{stage} summary")
