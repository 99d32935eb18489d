"""The frame a model is fed. Today: the letterbox Model Garden applies at inference (also how the
export calibrates and how `TFLiteDetector` runs a whole image). Frigate's region crop lives here too."""
from __future__ import annotations

import numpy as np

# Model Garden pads after normalizing, with 0, which is the mean pixel in uint8 terms
# (official.vision.ops.preprocess_ops.MEAN_RGB); padding with it keeps letterboxed inputs identical.
MEAN_RGB_UINT8 = (124, 116, 104)


def letterbox(image: np.ndarray, height: int, width: int) -> tuple[np.ndarray, float, float]:
    """Resize keeping the aspect ratio and pad bottom/right, as Model Garden's resize_and_crop_image
    does at inference (a square Frigate region is a plain resize). Returns the uint8 model-size frame
    and the fraction of it the image covers (y, x), to map boxes back to the original image."""
    import cv2

    h, w = image.shape[:2]
    scale = min(height / h, width / w)
    nh, nw = max(1, min(height, round(h * scale))), max(1, min(width, round(w * scale)))
    frame = np.empty((height, width, 3), np.uint8)
    frame[...] = MEAN_RGB_UINT8
    frame[:nh, :nw] = image if (nh, nw) == (h, w) else cv2.resize(image, (nw, nh),
                                                                   interpolation=cv2.INTER_LINEAR)
    return frame, nh / height, nw / width


def predict_letterboxed(images, height: int, width: int, detect) -> list[dict]:
    """A whole-image `predict` for a detector that runs one model-size frame at a time:
    `detect(frame[1,H,W,3]) -> (boxes, classes, scores)` of that frame (normalised ymin,xmin,ymax,xmax).
    Each image is letterboxed, and its boxes are mapped back to the ORIGINAL image's normalised
    coordinates. Shared by the TFLite and ONNX detectors so both read whole images one way."""
    results = []
    for image in images:
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"predict expects uint8 RGB [H,W,3] images, got {image.dtype} {image.shape}")
        frame, fy, fx = letterbox(image, height, width)
        boxes, classes, scores = detect(frame[None])
        b = np.asarray(boxes, np.float32) / np.array([fy, fx, fy, fx], np.float32)
        results.append({"boxes": np.clip(b.reshape(-1, 4), 0.0, 1.0), "classes": np.asarray(classes).astype(np.int64),
                        "scores": np.asarray(scores).astype(np.float32)})
    return results
