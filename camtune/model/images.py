"""An image file -> the uint8 RGB array every model and check works on (one loader for all steps).

Training does not use this loader: it puts the file's bytes into TFRecords and Model Garden
decodes them with `tf.io.decode_image(channels=3)`. So this loader must give TF's pixels, and
validation refuses what it cannot match (`unsupported_reason`). Measured against TF 2.20 and
Pillow 13 (tests/model/test_images.py compares both on every mode listed here):

- RGB, RGBA, L, LA, 1, P (with or without transparency): `convert("RGB")` equals TF exactly
  (both drop alpha without compositing); JPEG differs by a few levels (two libjpeg builds).
- I;16 (16-bit grayscale PNG): Pillow's `convert("RGB")` clips to white; TF keeps the high byte.
  We keep the high byte too.
- 16-bit RGB/RGBA PNGs: Pillow already opens them as 8-bit RGB/RGBA, equal to TF.
- CMYK JPEG and every other mode (I, F, YCbCr/LAB/HSV TIFFs...): refused; steps would disagree
  on the colour conversion, and no camera writes them.
- A phone's multi-frame JPEG (Pillow format "MPO") is a JPEG: every step decodes frame 0.
- EXIF orientation is ignored by TF and by this loader alike: the pixels agree, but an annotator
  that rotated the image drew boxes on other pixels (validation warns).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from camtune.errors import StepFailed

# Pillow mode -> how it becomes RGB the way tf.io.decode_image(channels=3) does it
_CONVERT_MODES = {"RGB", "RGBA", "L", "LA", "1", "P"}
_HIGH_BYTE_MODES = {"I;16", "I;16B", "I;16L"}
SUPPORTED_MODES = frozenset(_CONVERT_MODES | _HIGH_BYTE_MODES)

# Pillow calls a multi-frame JPEG "MPO"; it is a JPEG for every decoder we use
FORMAT_ALIASES = {"MPO": "JPEG"}

EXIF_ORIENTATION = 0x0112


def image_format(img) -> str | None:
    """The format name steps agree on (MPO -> JPEG)."""
    return FORMAT_ALIASES.get(img.format, img.format)


def unsupported_reason(img) -> str | None:
    """Why this opened PIL image would decode to different pixels in different steps, or None."""
    if img.mode in SUPPORTED_MODES:
        return None
    if img.mode == "CMYK":
        return ("CMYK colour: Pillow and TensorFlow convert CMYK to RGB differently; "
                "save the image as RGB")
    return (f"image mode {img.mode}: not decoded the same way by Pillow and TensorFlow "
            "(training); save it as 8-bit RGB")


def exif_orientation(img) -> int | None:
    """The EXIF orientation tag when it asks for a rotation or flip (not 1), else None."""
    try:
        value = img.getexif().get(EXIF_ORIENTATION)
    except Exception:  # a broken EXIF block: the pixels still decode, orientation unknown
        return None
    return int(value) if isinstance(value, int) and value != 1 else None


def to_rgb(img) -> np.ndarray:
    """uint8 [H,W,3] of an opened PIL image, pixel for pixel what TF decodes (see module doc)."""
    if img.mode in _HIGH_BYTE_MODES:
        gray = (np.asarray(img).astype(np.uint16) >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    reason = unsupported_reason(img)
    if reason:
        raise ValueError(reason)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_rgb(path: str | Path) -> np.ndarray:
    """uint8 [H,W,3] RGB of an image file; StepFailed naming the file when it is missing, cannot
    be decoded or has a mode steps would decode differently (validation refuses those first)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return to_rgb(im)
    except FileNotFoundError:
        raise StepFailed(f"{path}: image file not found") from None
    except (OSError, ValueError) as exc:  # PIL.UnidentifiedImageError, truncated files, modes
        raise StepFailed(f"{path}: cannot read image: {exc}") from None
