"""Training with TF Model Garden: the RetinaNet experiment built from params.yaml (`experiment`),
TFRecords in Model Garden's own keys (`records`), its task + trainer (`train`). The other steps load a
trained model with camtune.model.checkpoint (`load_detector`)."""
