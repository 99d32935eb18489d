"""Evaluate base vs tuned models with pycocotools, decide the blessing, advise Frigate thresholds."""
