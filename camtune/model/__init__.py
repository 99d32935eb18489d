"""What every step needs of a model, in one place (docs/ARCHITECTURE.md "Layers"):

- `checkpoint`: a Model Garden model_dir (experiment config, labels.json, checkpoints) -> `Detector`
- `tflite`: `TFLiteDetector`, an exported TFLite model run the way Frigate runs it
- `preprocess`: the frame a model is fed (letterbox)
- `labelmap`: Frigate's labelmap.txt (read, write) and the label-set check
- `images`: an image file -> uint8 RGB array
- `regions`: Frigate's square regions (geometry, crop + resize, the detector's floor, the merge)
- `detections`: the model loop over a dataset's images (box IoU: camtune.core.boxes), detections no annotation covers

Both detectors share one interface: `predict(images) -> [{"boxes", "classes", "scores"}]`.
Nothing here imports a step (camtune.steps.*).
"""
