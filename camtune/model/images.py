"""An image file -> the uint8 RGB array every model and check works on (one loader for all steps)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from camtune.errors import StepFailed


def load_rgb(path: str | Path) -> np.ndarray:
    """uint8 [H,W,3] RGB of an image file (any mode PIL reads); StepFailed naming the file when it
    is missing or cannot be decoded."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise StepFailed(f"{path}: image file not found") from None
    except OSError as exc:  # PIL.UnidentifiedImageError, truncated files
        raise StepFailed(f"{path}: cannot read image: {exc}") from None
