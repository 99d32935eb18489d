"""report: the run as one HTML page, `artifacts/report/index.html` (+ img/, charts/), from what the
other stages left. `camtune report`.

The DVC `report` stage runs it after evaluate and export. A dataset that fails validation stops
`dvc repro` before this stage, so the page is then made by running `camtune report` by
hand (the validate step's error message says so): every input is optional and the page shows
what exists (validation findings with their images, and why nothing else ran).
"""
from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact

from camtune.core import atomic, config
from camtune.steps import report as reporting

OUT_DIR = Path("artifacts/report")


@flow(name="report")
def report_flow(params_path: str = "params.yaml", overrides: dict | None = None,
               out_dir: str = str(OUT_DIR)) -> dict:
    """Render the run report (verdict, your cameras, per label, your data, lineage)."""
    # a folder the user names (not the stage's own artifacts/report) is replaced only if camtune wrote it
    owner = None if Path(out_dir) == OUT_DIR else "report"
    if owner:
        atomic.check_ours(out_dir, owner)
    log = get_run_logger()
    params = config.load(params_path, overrides)
    t0 = time.perf_counter()
    with atomic.output_dir(out_dir, owner=owner) as tmp:
        summary = reporting.build(params, tmp)
    index = (Path(out_dir) / "index.html").resolve()
    weight = reporting.page_weight(Path(out_dir))
    summary.update(index=str(index), bytes=weight, seconds=round(time.perf_counter() - t0, 2))
    create_link_artifact(key="run-report", link=index.as_uri(), link_text=f"run report: {summary['verdict']}",
                         description=f"the run as one HTML page for {params.user.id}")
    create_markdown_artifact(key="run-report-summary", markdown=reporting.summary_markdown(summary, index, weight),
                             description="verdict of the run")
    log.info("report: %s — %s (%.2f MB, %.1f s)", index, summary["sentence"], weight / 1e6, summary["seconds"])
    return summary

