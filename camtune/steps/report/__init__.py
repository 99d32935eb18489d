"""report: the run as one HTML page (artifacts/report/: index.html, img/, charts/): the verdict, the
user's cameras base vs tuned vs the incumbent, per-label AP and PR curves with Frigate thresholds,
the dataset's findings, lineage. Reads whatever exists of the other steps' outputs (so after a
failed validate it still explains why). `camtune report` runs it (flow.py).

Front door: `build(...)` (page.py).
"""
from camtune.steps.report.page import build, page_weight, summary_markdown, verdict_of, verdict_sentence

__all__ = ["build", "page_weight", "summary_markdown", "verdict_of", "verdict_sentence"]
