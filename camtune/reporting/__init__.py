"""The run as one HTML page (`artifacts/report/`): verdict, the user's cameras base vs tuned,
per-label AP and PR curves with Frigate thresholds, the dataset's findings, lineage."""
from camtune.reporting.page import build, page_weight, summary_markdown, verdict_of, verdict_sentence

__all__ = ["build", "page_weight", "summary_markdown", "verdict_of", "verdict_sentence"]
