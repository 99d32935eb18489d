"""Scoring, in one place below the steps: COCO metrics (coco), the Frigate path's recall and false
detections (frigate_path), the paired bootstrap (bootstrap), a model over a dataset (predict,
score). Evaluate's gate and export's int8 fidelity check both score through here."""
