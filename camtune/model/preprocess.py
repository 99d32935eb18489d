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
