"""The frame a model is fed, and the one RGB image loader."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from camtune.core.errors import StepFailed
from camtune.model.images import load_rgb
from camtune.model.preprocess import MEAN_RGB_UINT8, letterbox


def test_letterbox_keeps_aspect_and_pads_with_the_mean_pixel():
    img = np.zeros((360, 640, 3), np.uint8)
    frame, fy, fx = letterbox(img, 320, 320)
    assert frame.shape == (320, 320, 3) and frame.dtype == np.uint8
    assert (fy, fx) == (180 / 320, 1.0)
    assert np.all(frame[:180] == 0) and np.all(frame[180:] == MEAN_RGB_UINT8)


def test_load_rgb_converts_any_mode_and_names_bad_files(tmp_path):
    Image.new("L", (4, 3), 200).save(tmp_path / "grey.png")
    Image.new("RGBA", (4, 3), (1, 2, 3, 4)).save(tmp_path / "rgba.png")
    grey, rgba = load_rgb(tmp_path / "grey.png"), load_rgb(tmp_path / "rgba.png")
    assert grey.shape == rgba.shape == (3, 4, 3) and grey.dtype == rgba.dtype == np.uint8
    assert grey[0, 0].tolist() == [200, 200, 200] and rgba[0, 0].tolist() == [1, 2, 3]
    with pytest.raises(StepFailed, match=r"missing.jpg: image file not found"):
        load_rgb(tmp_path / "missing.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    with pytest.raises(StepFailed, match=r"junk.jpg: not an image file"):
        load_rgb(tmp_path / "junk.jpg")
