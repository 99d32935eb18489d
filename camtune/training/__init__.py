"""Training with TF Model Garden: the RetinaNet experiment built from params.yaml (`experiment`),
TFRecords in Model Garden's own keys (`records`), its task + trainer (`train`), and the trained
detector for the other steps (`detector`)."""
