"""ONNXDetector's Frigate conventions on their own: input by the model's JSON, yolo-generic parsing
(Frigate's floor, NMS, 20 rows best first), and bad input. Tiny ONNX graphs made here run on both
runtimes; the real exported model is checked in tests/steps/export/test_onnx.py."""
from __future__ import annotations

import json

import numpy as np
import pytest

from camtune.model import onnx as O


def _output(boxes_scores: list[tuple[tuple[float, float, float, float], dict[int, float]]], k: int = 3,
            anchors: int = 50) -> np.ndarray:
    """(1, 4 + k, anchors): the given (cx, cy, w, h) and class scores, the other anchors at 0.01."""
    out = np.full((1, 4 + k, anchors), 0.01, np.float32)
    out[0, :4] = 10.0
    for i, (box, scores) in enumerate(boxes_scores):
        out[0, :4, i] = box
        for c, s in scores.items():
            out[0, 4 + c, i] = s
    return out


def test_yolo_generic_rows_floor_nms_order_and_normalisation():
    out = _output([((100, 100, 40, 80), {0: 0.9}),       # an object
                   ((102, 101, 40, 80), {0: 0.85}),      # the same object again: NMS drops it
                   ((250, 60, 20, 20), {2: 0.6, 1: 0.5}),  # another, class 2 (the argmax)
                   ((30, 30, 10, 10), {1: 0.39})])        # under Frigate's 0.4 floor
    rows = O.yolo_generic_rows(out, 320, 320)
    assert rows.shape == (20, 6) and rows.dtype == np.float32
    assert rows[:2, 0].tolist() == [0, 2]
    assert rows[:2, 1].tolist() == pytest.approx([0.9, 0.6])
    # ymin, xmin, ymax, xmax normalised by the input size
    assert rows[0, 2:].tolist() == pytest.approx([60 / 320, 80 / 320, 140 / 320, 120 / 320])
    assert np.all(rows[2:] == 0)
    # the transposed layout (anchors, 4 + classes) reads the same
    assert np.array_equal(O.yolo_generic_rows(np.transpose(out, (0, 2, 1)), 320, 320), rows)


def test_yolo_generic_rows_sorted_and_capped_at_20():
    rng = np.random.default_rng(0)
    boxes = [((float(x), float(y), 8, 8), {0: float(s)})
             for x, y, s in zip(rng.integers(10, 300, 60), rng.integers(10, 300, 60), rng.uniform(0.45, 0.99, 60))]
    rows = O.yolo_generic_rows(_output(boxes, anchors=100), 320, 320)
    n = int((rows[:, 1] > 0).sum())
    assert 0 < n <= 20 and np.all(rows[:n, 1] > 0.4) and np.all(rows[n:] == 0)
    assert np.all(np.diff(rows[:n, 1]) <= 0)               # best first, as Frigate reads them


def test_yolo_generic_nms_reads_corners_as_width_and_height_like_frigate():
    """Two 10 px boxes 5 px apart do not overlap, yet Frigate keeps one: it hands OpenCV's NMSBoxes
    corner boxes, which it reads as (x, y, width, height). The reason the export defaults to yolonas."""
    out = _output([((105, 105, 10, 10), {0: 0.9}), ((120, 105, 10, 10), {0: 0.8})])
    rows = O.yolo_generic_rows(out, 320, 320)
    assert (rows[:, 1] > 0).sum() == 1


def test_yolonas_rows_in_model_order_to_a_negative_class():
    pred = np.array([[0, 10, 20, 110, 220, 0.9, 3], [0, 0, 0, 32, 64, 0.5, 0], [0, 1, 1, 2, 2, 0.8, -1],
                     [0, 5, 5, 9, 9, 0.7, 1]], np.float32)
    rows = O.yolonas_rows(pred, 320, 320)
    assert rows[:2] == pytest.approx(np.array([[3, 0.9, 20 / 320, 10 / 320, 220 / 320, 110 / 320],
                                               [0, 0.5, 0, 0, 0.2, 0.1]], np.float32))
    assert np.all(rows[2:] == 0)                       # stopped at class -1 (GPU padding)
    many = np.tile(np.array([[0, 1, 1, 5, 5, 0.6, 2]], np.float32), (30, 1))
    assert (O.yolonas_rows(many, 320, 320)[:, 1] > 0).sum() == 20
    with pytest.raises(ValueError, match=r"\[rows, 7\]"):
        O.yolonas_rows(pred[None], 320, 320)           # [1, rows, 7] would break Frigate's unpacking


def test_yolo_generic_rows_nothing_over_the_floor_and_bad_shape():
    assert np.all(O.yolo_generic_rows(_output([]), 320, 320) == 0)
    with pytest.raises(ValueError, match="yolo-generic output"):
        O.yolo_generic_rows(np.zeros((2, 7, 5, 3), np.float32), 320, 320)


def _info(**over):
    info = {"width": 4, "height": 2, "inputShape": "nhwc", "pixelFormat": "rgb", "inputDataType": "int",
            "type": "yolo-generic", "labelMap": {"0": "person"}}
    return {**info, **over}


def test_frigate_input_layout_dtype_and_pixel_format():
    frame = np.arange(24, dtype=np.uint8).reshape(1, 2, 4, 3)
    x = O.frigate_input(frame, _info())
    assert x.dtype == np.uint8 and np.array_equal(x, frame)
    x = O.frigate_input(frame, _info(inputShape="nchw", inputDataType="float"))
    assert x.shape == (1, 3, 2, 4) and x.dtype == np.float32
    assert np.allclose(x, np.transpose(frame, (0, 3, 1, 2)) / 255)
    x = O.frigate_input(frame, _info(pixelFormat="bgr", inputDataType="float_denorm"))
    assert x.dtype == np.float32 and np.array_equal(x[..., 0], frame[..., 2].astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        O.frigate_input(frame.astype(np.float32), _info())
    with pytest.raises(ValueError, match="not the model's 2x4"):
        O.frigate_input(np.zeros((1, 4, 4, 3), np.uint8), _info())


def test_model_info_is_read_beside_the_model_and_checked(tmp_path):
    model = tmp_path / "abc-onnx"
    model.write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="abc-onnx.json"):
        O.read_model_info(model)
    (tmp_path / "abc-onnx.json").write_text("{not json")
    with pytest.raises(ValueError, match="abc-onnx.json: not JSON"):
        O.read_model_info(model)
    (tmp_path / "abc-onnx.json").write_text(json.dumps({"width": 4}))
    with pytest.raises(ValueError, match="missing height"):
        O.read_model_info(model)
    (tmp_path / "abc-onnx.json").write_text(json.dumps(_info(type="ssd")))
    with pytest.raises(ValueError, match="type 'ssd' is not one of yolonas, yolo-generic"):
        O.read_model_info(model)
    (tmp_path / "abc-onnx.json").write_text(json.dumps(_info()))
    assert O.read_model_info(model)["width"] == 4


def _tiny_model(path, outputs: int = 1):
    """A real ONNX graph, uint8 [1,2,4,3] -> `outputs` float outputs (Cast + ReduceMean)."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT)]
    outs = []
    for i in range(outputs):
        nodes.append(helper.make_node("ReduceMean", ["f"], [f"out{i}"], axes=[1, 2], keepdims=1))
        outs.append(helper.make_tensor_value_info(f"out{i}", TensorProto.FLOAT, [1, 1, 1, 3]))
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, 2, 4, 3])],
                              outs)
    # IR 8: what tf2onnx writes at opset 17; onnxruntime 1.22 (Frigate's) reads IR <= 10
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    path.with_name(path.name + ".json").write_text(json.dumps(_info()))
    return path


@pytest.mark.parametrize("runtime", O.RUNTIMES)
def test_detector_runs_a_model_on_both_runtimes_and_refuses_two_outputs(tmp_path, runtime):
    model = _tiny_model(tmp_path / "tiny")           # no extension, as in Frigate's model_cache
    det = O.ONNXDetector(model, runtime=runtime)
    assert (det.height, det.width, det.label_names) == (2, 4, ["person"])
    frame = np.arange(24, dtype=np.uint8).reshape(1, 2, 4, 3)
    assert det.run(O.frigate_input(frame, det.info)).reshape(-1).tolist() == pytest.approx(
        frame.reshape(-1, 3).mean(axis=0).tolist())
    with pytest.raises(ValueError, match="one input and one output, got 1 and 2"):
        O.ONNXDetector(_tiny_model(tmp_path / "two", outputs=2), runtime=runtime)
    with pytest.raises(FileNotFoundError, match="no such ONNX model"):
        O.ONNXDetector(tmp_path / "missing", runtime=runtime)
    with pytest.raises(ValueError, match="runtime 'tensorrt'"):
        O.ONNXDetector(model, runtime="tensorrt")
