"""Run an exported TFLite detector the way Frigate does.

Frigate's `cpu` detector (frigate/detectors/plugins/cpu_tfl.py + detector_utils.tflite_detect_raw)
builds `ai_edge_litert.interpreter.Interpreter(model_path=..., num_threads=...)`, feeds one uint8
NHWC frame of the model's size and reads the four outputs BY POSITION: boxes [1,N,4] (normalized
ymin,xmin,ymax,xmax), class ids [1,N], scores [1,N], count [1]. The `edgetpu` detector does the same
with `load_delegate("libedgetpu.so.1")`. `TFLiteDetector` does exactly that, so what passes here is
what Frigate sees, and offers the same `predict` interface as `camtune.model.checkpoint.Detector`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from camtune.core.errors import StepFailed
from camtune.model.labelmap import LABELMAP_FILE, read_labelmap
from camtune.model.preprocess import predict_letterboxed

EDGETPU_LIBRARY = "libedgetpu.so.1"

CORAL_RUNTIME_INSTALL = (
    "Install the Edge TPU runtime from Coral's apt repository:\n"
    "  echo 'deb https://packages.cloud.google.com/apt coral-edgetpu-stable main' | "
    "sudo tee /etc/apt/sources.list.d/coral-edgetpu.list\n"
    "  curl https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo apt-key add -\n"
    "  sudo apt-get update && sudo apt-get install libedgetpu1-std\n"
    "and `pip install camtune[coral]` (ai-edge-litert; never the unrelated PyPI `pycoral`)."
)


class EdgeTPUUnavailable(StepFailed):
    """libedgetpu.so.1 (or a Coral device) is not available on this machine."""


def load_edgetpu_delegate(options: dict | None = None):
    """`load_delegate('libedgetpu.so.1')` or EdgeTPUUnavailable with the install steps."""
    from ai_edge_litert.interpreter import load_delegate

    try:
        return load_delegate(EDGETPU_LIBRARY, options or {})
    except (ValueError, OSError) as exc:  # missing library, or no TPU attached
        raise EdgeTPUUnavailable(f"cannot load the Edge TPU delegate {EDGETPU_LIBRARY}: {exc}\n"
                                 f"{CORAL_RUNTIME_INSTALL}") from exc


class TFLiteDetector:
    """A TFLite SSD-style detector with Frigate's I/O contract."""

    def __init__(self, path: str | Path, num_threads: int = 2, edgetpu: bool = False,
                 label_names: list[str] | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        delegates = [load_edgetpu_delegate()] if edgetpu else None
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such TFLite model")
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads,
                                       experimental_delegates=delegates)
        self.interpreter.allocate_tensors()
        self.input_details = self.interpreter.get_input_details()
        self.output_details = self.interpreter.get_output_details()
        inp = self.input_details[0]
        # uint8 is the Frigate contract; float32 (raw 0..255 pixels) is the unquantized reference twin
        if len(self.input_details) != 1 or inp["dtype"] not in (np.uint8, np.float32) \
                or len(inp["shape"]) != 4:
            raise ValueError(f"{self.path}: expected one uint8 NHWC input, got "
                             f"{[(d['dtype'].__name__, d['shape'].tolist()) for d in self.input_details]}")
        if len(self.output_details) != 4:
            raise ValueError(f"{self.path}: expected 4 outputs (boxes, classes, scores, count), "
                             f"got {len(self.output_details)}")
        _, self.height, self.width, _ = (int(v) for v in inp["shape"])
        beside = self.path.parent / LABELMAP_FILE
        # the label map export writes beside the model, when there is one
        self.label_names = label_names if label_names is not None else (
            read_labelmap(beside) if beside.is_file() else None)

    def detect_raw(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """One uint8 [1,H,W,3] frame of the model's size -> (boxes, classes, scores, count), by position
        exactly like Frigate's tflite_detect_raw."""
        inp = self.input_details[0]
        self.interpreter.set_tensor(inp["index"], frame.astype(inp["dtype"], copy=False))
        self.interpreter.invoke()
        out = self.output_details
        boxes = self.interpreter.get_tensor(out[0]["index"])[0]
        classes = self.interpreter.get_tensor(out[1]["index"])[0]
        scores = self.interpreter.get_tensor(out[2]["index"])[0]
        count = int(self.interpreter.get_tensor(out[3]["index"])[0])
        return boxes, classes, scores, count

    def predict(self, images) -> list[dict]:
        """uint8 RGB images (an [B,H,W,3] array or a list of [H,W,3] of any size) -> per image
        {"boxes": [M,4] normalized ymin,xmin,ymax,xmax of the ORIGINAL image, "classes": [M] 0-based
        label index, "scores": [M]} sorted by score, high first."""
        def detect(frame):
            boxes, classes, scores, count = self.detect_raw(frame)
            n = max(0, min(count, len(scores)))
            return boxes[:n], classes[:n], scores[:n]
        return predict_letterboxed(images, self.height, self.width, detect)
