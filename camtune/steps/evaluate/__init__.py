"""evaluate: base vs tuned (and the incumbent, the model the user runs now) on the global set and
the user's holdout -> the blessing gate, the promotion decision, Frigate threshold advice, reports.

Front door: `evaluate(params, ...)` runs the whole step (the flow in flow.py wraps it). Scoring one
model on one set is camtune.metrics.score, shared with export's fidelity check.
"""
from camtune.steps.evaluate.run import Evaluation, evaluate

__all__ = ["Evaluation", "evaluate"]
