"""The Frigate contract (docs/ARCHITECTURE.md), checked on a real export at 320x320: load `model.tflite` with
ai_edge_litert exactly as Frigate's CPU detector does and read the outputs BY POSITION."""
from __future__ import annotations

import numpy as np


def _frigate_detect_raw(model_path, frame, num_threads=3):
    """frigate/detectors/plugins/cpu_tfl.py + detector_utils.tflite_init/tflite_detect_raw."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
    interpreter.allocate_tensors()
    input_details = interpreter.get_input_details()
    output_details = interpreter.get_output_details()
    interpreter.set_tensor(input_details[0]["index"], frame)
    interpreter.invoke()
    boxes = interpreter.tensor(output_details[0]["index"])()[0]
    class_ids = interpreter.tensor(output_details[1]["index"])()[0]
    scores = interpreter.tensor(output_details[2]["index"])()[0]
    count = int(interpreter.tensor(output_details[3]["index"])()[0])
    return input_details, output_details, boxes.copy(), class_ids.copy(), scores.copy(), count


def _frame(sample_datasets, size):
    """A Frigate-style square region of a real camera image, resized to the model input."""
    import cv2

    from camtune.core.dataset import load_dataset
    from camtune.model.images import load_rgb

    ds = load_dataset(sample_datasets.user)
    img = load_rgb(ds.image_path(ds.images["file_name"].iloc[0]))
    h = img.shape[0]
    region = img[:, :h]
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_LINEAR)[None]


def test_frigate_cpu_detector_contract(exported_model, sample_datasets):
    params = sample_datasets.params
    size, n = params.training.input_size, params.export.max_detections
    assert size == 320
    frame = _frame(sample_datasets, size)
    inp, out, boxes, class_ids, scores, count = _frigate_detect_raw(exported_model, frame)

    # input: one uint8 NHWC [1,320,320,3] taking raw pixels (scale 1, zero point 0)
    assert len(inp) == 1 and inp[0]["dtype"] == np.uint8
    assert list(inp[0]["shape"]) == [1, size, size, 3]
    assert inp[0]["quantization"] == (1.0, 0)
    # outputs by position: boxes, class ids, scores, count - all float32
    assert [d["dtype"] for d in out] == [np.float32] * 4
    assert [list(d["shape"]) for d in out] == [[1, n, 4], [1, n], [1, n], [1]]
    # count consistent with the rows
    assert 0 < count <= n
    b, c, s = boxes[:count], class_ids[:count], scores[:count]
    assert np.all((b >= 0.0) & (b <= 1.0)), "boxes must be normalized"
    assert np.all(b[:, 0] <= b[:, 2]) and np.all(b[:, 1] <= b[:, 3]), "ymin,xmin,ymax,xmax"
    assert np.all(np.diff(s) <= 0), "scores sorted high to low"
    assert np.all((s > 0) & (s <= 1))
    assert np.all(c == np.round(c)) and c.min() >= 0 and c.max() < len(params.labels.names), \
        "0-based label index (labelmap.txt line)"
    assert np.all(scores[count:] == 0)

    # what Frigate builds from it (detector_utils.tflite_detect_raw): 20 rows of
    # [class, score, ymin, xmin, ymax, xmax] for score >= 0.4
    detections = np.zeros((20, 6), np.float32)
    for i in range(count):
        if scores[i] < 0.4 or i == 20:
            break
        detections[i] = [class_ids[i], float(scores[i]), *boxes[i]]
    assert detections[0, 1] == scores[0]


def test_exported_io_passes_the_checker(exported_model, sample_datasets):
    from camtune.steps.export import to_tflite as tflite

    p = sample_datasets.params
    io = tflite.io_details(exported_model)
    assert tflite.check_frigate_io(io, p.training.input_size, p.export.max_detections) == []
    assert [d["name"] for d in io["outputs"]][0] == "camtune/boxes_clipped"
