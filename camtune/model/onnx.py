"""Run an exported ONNX detector the way Frigate's `onnx` and `openvino` detectors do.

What Frigate does (0.17/0.18: frigate/detectors/detector_config.py, object_detection/base.py,
detectors/plugins/onnx.py and openvino.py, util/model.py), described, not copied:

- A `plus://<id>` model is `model_cache/<id>` plus `<id>.json`. From the JSON Frigate takes `width`,
  `height`, `inputShape` (nhwc/nchw), `pixelFormat`, `inputDataType` (`int`: the uint8 frame as it
  is; `float`: float32 scaled to 0..1; `float_denorm`: float32 0..255), `type` and `labelMap`, and
  refuses to start when the configured detector is not in `supportedDetectors`.
- The detector gets the region resized to width x height in the model's pixel format, NHWC uint8;
  the layout transpose and the dtype conversion above happen before the model runs.
- `onnx` runs the file with onnxruntime (CPU provider on a plain x86 box, or CUDA/ROCm/OpenVINO
  execution providers); `openvino` compiles the same file with `openvino.Core().compile_model` on
  the configured device and feeds it through a tensor of the input's own element type.
- `yolonas` (flat): the one output's rows `(batch, x_min, y_min, x_max, y_max, score, class)` in
  input pixels are read in order, at most 20, stopping at a negative class; each becomes `[class,
  score, ymin, xmin, ymax, xmax]` normalised by the input size. No sorting, no floor here: the
  caller stops at the first score under 0.4, so the rows must come best first.
- `yolo-generic` with one output: the output is squeezed, transposed to (anchors, 4 + classes) when
  it comes the other way round, anchors whose best class score is over 0.4 are kept, class = the
  argmax, the box `cx, cy, w, h` becomes corners, and OpenCV's `dnn.NMSBoxes` (score 0.4, IoU 0.4,
  one pass over all classes) picks the survivors, best score first. Frigate hands NMSBoxes the
  corner boxes although it reads its boxes as (x, y, width, height); we do the same, because that
  is what decides which boxes a user sees. The first 20 become rows `[class, score, ymin, xmin,
  ymax, xmax]` normalised by the input size, zero rows after.

`ONNXDetector` offers the interface of `camtune.model.tflite.TFLiteDetector` (`detect_raw` by
position, `predict` on whole images, `height`/`width`/`label_names`), so the evaluate step's
scorers run it unchanged.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from camtune.model.preprocess import predict_letterboxed

RUNTIMES = ("onnxruntime", "openvino")
# the Frigate detector each runtime stands for
DETECTOR_OF = {"onnxruntime": "onnx", "openvino": "openvino"}
SCORE_FLOOR = 0.4   # Frigate's yolo-generic post-processing: score threshold and NMS IoU
NMS_IOU = 0.4
ROWS = 20
INFO_KEYS = ("width", "height", "inputShape", "pixelFormat", "inputDataType", "type", "labelMap")
SUPPORTED_TYPES = ("yolonas", "yolo-generic")


def info_path(model_path: str | Path) -> Path:
    """Frigate reads `<model file>.json` beside the model (model_cache/<id> -> <id>.json)."""
    p = Path(model_path)
    return p.with_name(p.name + ".json")


def read_model_info(model_path: str | Path) -> dict:
    """The Frigate model info (JSON) beside a model file, checked for what the detector needs."""
    path = info_path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no Frigate model info beside {model_path}")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from exc
    missing = [k for k in INFO_KEYS if k not in info]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    checks = {"inputShape": ("nhwc", "nchw"), "pixelFormat": ("rgb", "bgr"),
              "inputDataType": ("int", "float", "float_denorm"), "type": SUPPORTED_TYPES}
    for key, allowed in checks.items():
        if info[key] not in allowed:
            raise ValueError(f"{path}: {key} {info[key]!r} is not one of {', '.join(allowed)}")
    return info


def frigate_input(frame: np.ndarray, info: dict) -> np.ndarray:
    """One uint8 RGB NHWC [1,H,W,3] region -> the tensor Frigate hands the model, per its JSON."""
    if frame.dtype != np.uint8 or frame.ndim != 4 or frame.shape[0] != 1 or frame.shape[-1] != 3:
        raise ValueError(f"expected one uint8 [1,H,W,3] frame, got {frame.dtype} {frame.shape}")
    if frame.shape[1:3] != (info["height"], info["width"]):
        raise ValueError(f"frame {frame.shape[1]}x{frame.shape[2]} is not the model's "
                         f"{info['height']}x{info['width']}")
    x = frame[..., ::-1] if info["pixelFormat"] == "bgr" else frame
    if info["inputShape"] == "nchw":
        x = np.transpose(x, (0, 3, 1, 2))
    if info["inputDataType"] == "float":
        return x.astype(np.float32) / 255
    if info["inputDataType"] == "float_denorm":
        return x.astype(np.float32)
    return np.ascontiguousarray(x)


def yolonas_rows(output: np.ndarray, width: int, height: int) -> np.ndarray:
    """Frigate's `yolonas` reading of the flat output -> [20, 6] rows, in the model's order."""
    pred = np.asarray(output, np.float32)
    if pred.ndim != 2 or pred.shape[1] != 7:   # Frigate unpacks each row of the first axis into 7
        raise ValueError(f"yolonas (flat) output must be [rows, 7], got {pred.shape}")
    rows = np.zeros((ROWS, 6), np.float32)
    for i, (_, x0, y0, x1, y1, score, cls) in enumerate(pred[:ROWS]):
        if cls < 0:
            break
        rows[i] = [cls, score, y0 / height, x0 / width, y1 / height, x1 / width]
    return rows


def yolo_generic_rows(output: np.ndarray, width: int, height: int) -> np.ndarray:
    """Frigate's `yolo-generic` post-processing of a single output -> [20, 6] rows
    [class, score, ymin, xmin, ymax, xmax] (normalised), best first, zero rows after."""
    import cv2

    pred = np.squeeze(np.asarray(output, np.float32))
    if pred.ndim != 2:
        raise ValueError(f"yolo-generic output must be (1, 4 + classes, anchors), got {np.shape(output)}")
    if pred.shape[0] < pred.shape[1]:   # (4 + classes, anchors) -> (anchors, 4 + classes)
        pred = pred.T
    scores = pred[:, 4:].max(axis=1)
    keep = scores > SCORE_FLOOR
    pred, scores = pred[keep], scores[keep]
    classes = pred[:, 4:].argmax(axis=1)
    cx, cy, w, h = pred[:, 0], pred[:, 1], pred[:, 2], pred[:, 3]
    corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    rows = np.zeros((ROWS, 6), np.float32)
    if not len(scores):
        return rows
    # as Frigate calls it: corner boxes where NMSBoxes expects (x, y, w, h)
    picked = np.asarray(cv2.dnn.NMSBoxes(corners.tolist(), scores.tolist(), SCORE_FLOOR, NMS_IOU),
                        dtype=np.int64).reshape(-1)[:ROWS]
    for i, j in enumerate(picked):
        x0, y0, x1, y1 = corners[j]
        rows[i] = [classes[j], scores[j], y0 / height, x0 / width, y1 / height, x1 / width]
    return rows


class ONNXDetector:
    """An exported ONNX model run as Frigate's `onnx` (onnxruntime, CPU provider) or `openvino`
    (OpenVINO, CPU device) detector, fed and parsed by its Frigate model info (`<file>.json`)."""

    def __init__(self, path: str | Path, runtime: str = "onnxruntime", num_threads: int = 2,
                 label_names: list[str] | None = None, info: dict | None = None):
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime {runtime!r}: one of {', '.join(RUNTIMES)}")
        self.path, self.runtime = Path(path), runtime
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such ONNX model")
        self.info = info if info is not None else read_model_info(self.path)
        self.height, self.width = int(self.info["height"]), int(self.info["width"])
        labels = self.info["labelMap"]
        self.label_names = label_names if label_names is not None else [labels[str(i)] for i in range(len(labels))]
        if runtime == "onnxruntime":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = num_threads, 1
            self._session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                 providers=["CPUExecutionProvider"])
            self._input = self._session.get_inputs()[0].name
            n_in, n_out = len(self._session.get_inputs()), len(self._session.get_outputs())
        else:
            import openvino as ov

            core = ov.Core()
            core.set_property("CPU", {"INFERENCE_NUM_THREADS": num_threads})
            # the same call Frigate makes: a file path (model_cache/<id> has no extension)
            self._compiled = core.compile_model(model=str(self.path), device_name="CPU")
            self._request = self._compiled.create_infer_request()
            port = self._compiled.inputs[0]
            self._tensor = ov.Tensor(port.get_element_type(), port.get_shape())
            n_in, n_out = len(self._compiled.inputs), len(self._compiled.outputs)
        if n_in != 1 or n_out != 1:
            raise ValueError(f"{self.path}: a {self.info['type']} model needs one input and one output, "
                             f"got {n_in} and {n_out}")

    def run(self, tensor: np.ndarray) -> np.ndarray:
        """The model's raw output for an input already in Frigate's layout and dtype."""
        if self.runtime == "onnxruntime":
            return self._session.run(None, {self._input: tensor})[0]
        np.copyto(self._tensor.data, tensor)   # Frigate's single-input path: a preallocated tensor
        self._request.infer(self._tensor)
        return self._request.get_output_tensor(0).data.copy()

    def detect_rows(self, frame: np.ndarray) -> np.ndarray:
        """One uint8 RGB [1,H,W,3] region -> Frigate's 20 rows [class, score, ymin, xmin, ymax, xmax]."""
        parse = yolonas_rows if self.info["type"] == "yolonas" else yolo_generic_rows
        return parse(self.run(frigate_input(frame, self.info)), self.width, self.height)

    def detect_raw(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """`TFLiteDetector.detect_raw`'s positional outputs (boxes, classes, scores, count) built from
        the 20 rows; the reader stops at the first score under 0.4 as Frigate does."""
        rows = self.detect_rows(frame)
        return rows[:, 2:6], rows[:, 0], rows[:, 1], ROWS

    def predict(self, images) -> list[dict]:
        """uint8 RGB images -> per image {"boxes" (normalised ymin,xmin,ymax,xmax of the original
        image), "classes", "scores"}: the rows Frigate reads (at most 20; the scorer applies the floor)."""
        def detect(frame):
            rows = self.detect_rows(frame)
            rows = rows[rows[:, 1] > 0]   # the zero rows after the last detection
            return rows[:, 2:6], rows[:, 0], rows[:, 1]
        return predict_letterboxed(images, self.height, self.width, detect)
