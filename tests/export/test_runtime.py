"""TFLiteDetector: the Frigate-style runner with the shared detector interface."""
from __future__ import annotations

import numpy as np
import pytest

from camtune.export import runtime


def test_letterbox_keeps_aspect_and_pads_with_the_mean_pixel():
    img = np.zeros((360, 640, 3), np.uint8)
    frame, fy, fx = runtime.letterbox(img, 320, 320)
    assert frame.shape == (320, 320, 3) and frame.dtype == np.uint8
    assert (fy, fx) == (180 / 320, 1.0)
    assert np.all(frame[:180] == 0) and np.all(frame[180:] == runtime.MEAN_RGB_UINT8)


def test_predict_on_any_size(exported_model, sample_datasets):
    det = runtime.TFLiteDetector(exported_model, num_threads=2)
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
    with pytest.raises(runtime.EdgeTPUUnavailable, match=r"libedgetpu.so.1[\s\S]*libedgetpu1-std"):
        runtime.TFLiteDetector(tmp_path / "model_edgetpu.tflite", edgetpu=True)


def test_label_names_come_from_the_labelmap_beside_the_model(export_run):
    det = runtime.TFLiteDetector(export_run.out / "model.tflite")
    assert det.label_names == list(export_run.params.labels.names)


def test_read_labelmap_refuses_gaps(tmp_path):
    (tmp_path / "labelmap.txt").write_text("0 person\n2 car\n")
    with pytest.raises(ValueError, match="indexes must be"):
        runtime.read_labelmap(tmp_path / "labelmap.txt")
