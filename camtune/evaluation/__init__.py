"""Evaluate base vs tuned models with pycocotools, decide the blessing, advise Frigate thresholds.

The library entry points (the flow `flows/evaluate.py` and other steps call these, never the
modules inside): `evaluate(params, ...)` runs the whole step, `score_model(...)` scores one model
on one dataset with the same scorer.
"""
from camtune.evaluation.run import Evaluation, evaluate, predict_images, score_model

__all__ = ["Evaluation", "evaluate", "predict_images", "score_model"]
