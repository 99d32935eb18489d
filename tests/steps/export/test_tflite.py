"""Pure parts of the TFLite export: the I/O checker, the label map, calibration sampling."""
from __future__ import annotations

import numpy as np

from camtune.steps.export import to_tflite as tflite


def _io(in_dtype="uint8", scale=1.0, zero=0, out_shapes=None, out_dtype="float32"):
    out_shapes = out_shapes or [[1, 25, 4], [1, 25], [1, 25], [1]]
    return {"inputs": [{"name": "in", "dtype": in_dtype, "shape": [1, 320, 320, 3],
                        "quantization": [scale, zero]}],
            "outputs": [{"name": f"o{i}", "dtype": out_dtype, "shape": s, "quantization": [0.0, 0]}
                        for i, s in enumerate(out_shapes)]}


def test_frigate_io_checker():
    assert tflite.check_frigate_io(_io(), 320, 25) == []
    # count first (what a plain conversion produced) is refused
    bad = tflite.check_frigate_io(_io(out_shapes=[[1], [1, 25, 4], [1, 25], [1, 25]]), 320, 25)
    assert bad and "in that order" in bad[0]
    # uint8 outputs (Model Garden's int8_full) are refused
    assert tflite.check_frigate_io(_io(out_dtype="uint8"), 320, 25)
    # a uint8 input that is not raw pixels is refused
    assert "scale 1" in tflite.check_frigate_io(_io(scale=0.98), 320, 25)[0]
    assert tflite.check_frigate_io(_io(in_dtype="float32"), 320, 25)
    assert tflite.check_frigate_io(_io(in_dtype="float32"), 320, 25, int8=False) == []


def test_representative_frames_are_letterboxed_and_pin_the_input_range():
    imgs = [np.full((90, 160, 3), 128, np.uint8) for _ in range(2)]
    frames = list(tflite.representative_frames(imgs, 64))
    assert [f.shape for f in frames] == [(1, 64, 64, 3)] * 2 and frames[0].dtype == np.float32
    assert frames[0].min() == 0 and frames[0].max() == 255  # the pinned pixels
    assert frames[1].min() > 0 and frames[1].max() < 255
    assert np.all(frames[1][0, :36] == 128)  # 160x90 -> 64x36, then mean-colour padding below
    assert np.all(frames[1][0, 36:] == np.array([124, 116, 104]))


def test_calibration_paths_draw_from_every_pool(tmp_path):
    import pandas as pd

    from camtune.core.dataset import Dataset

    def ds(name, n):
        images = pd.DataFrame({"id": range(1, n + 1), "file_name": [f"images/{i}.jpg" for i in range(n)]})
        return Dataset(tmp_path / name, images, pd.DataFrame(), pd.DataFrame())

    a, b = ds("user", 10), ds("replay", 3)
    paths = tflite.calibration_paths([(a, range(1, 11)), (b, [1, 2, 3])], 8)
    assert len(paths) == 8 and len(set(paths)) == 8
    assert sum(p.parent.parent.name == "replay" for p in paths) == 3  # the small pool, all of it
    assert paths == tflite.calibration_paths([(a, range(1, 11)), (b, [1, 2, 3])], 8)  # reproducible


def test_calibration_inputs_are_frigate_regions():
    img = np.zeros((720, 1280, 3), np.uint8)
    img[300:400, 600:640] = 200                      # the object
    crops = list(tflite.region_crops([(img, [(600, 300, 640, 400)]), (img, [])], 320))
    # object region + one motion-like region for the first image, one motion region for the second
    assert len(crops) == 3 and all(c.shape == (320, 320, 3) and c.dtype == np.uint8 for c in crops)
    # the 320 region around the object is not scaled: the object keeps its 40x100 pixels
    assert (crops[0] == 200).all(axis=2).sum() == 40 * 100
