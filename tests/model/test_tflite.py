"""TFLiteDetector: the Frigate-style runner with the shared detector interface."""
from __future__ import annotations

import numpy as np
import pytest

from camtune.core.errors import StepFailed
from camtune.model import tflite


def test_predict_on_any_size(export_run, sample_datasets):
    det = tflite.TFLiteDetector(export_run.out / "model.tflite", num_threads=2)
    assert (det.height, det.width) == (320, 320)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (360, 640, 3), dtype=np.uint8),
              rng.integers(0, 255, (200, 120, 3), dtype=np.uint8)]
    preds = det.predict(images)
    assert len(preds) == 2
    k = len(sample_datasets.params.labels.names)
    for p in preds:
        n = len(p["scores"])
        assert 0 < n <= 25 and p["boxes"].shape == (n, 4) and p["classes"].shape == (n,)
        assert np.all((p["boxes"] >= 0) & (p["boxes"] <= 1))
        assert p["classes"].min() >= 0 and p["classes"].max() < k
        assert np.all(np.diff(p["scores"]) <= 0)
    with pytest.raises(ValueError, match="uint8 RGB"):
        det.predict([np.zeros((10, 10, 3), np.float32)])


# ai_edge_litert's Delegate.__del__ trips over its own half-built object when the library is missing
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_edgetpu_without_libedgetpu_says_how_to_install(tmp_path):
    with pytest.raises(tflite.EdgeTPUUnavailable, match=r"libedgetpu.so.1[\s\S]*libedgetpu1-std"):
        tflite.TFLiteDetector(tmp_path / "model_edgetpu.tflite", edgetpu=True)


def test_label_names_come_from_the_labelmap_beside_the_model(export_run, tmp_path):
    det = tflite.TFLiteDetector(export_run.out / "model.tflite")
    assert det.label_names == list(export_run.params.labels.names)
    # a broken label map beside a model is an error naming it, not a silently unnamed model
    (tmp_path / "model.tflite").write_bytes((export_run.out / "model.tflite").read_bytes())
    (tmp_path / "labelmap.txt").write_text("0 person\n0 car\n")
    with pytest.raises(StepFailed, match=r"labelmap.txt: line 2: index 0 appears twice"):
        tflite.TFLiteDetector(tmp_path / "model.tflite")
