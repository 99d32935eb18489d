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

import contextlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from camtune.core.errors import StepFailed

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


# ------------------------------------------------------------------ the one checked decoder

@dataclass(frozen=True)
class Limits:
    """What any step decodes: the pixel count (read from the header, before any pixel is
    inflated), the file size, the formats. Defaults are params.yaml's `validate` defaults; steps
    that hold params pass `Limits.of(params.validate)`."""
    max_pixels: int = 40_000_000
    max_bytes: int = 64 * 2**20
    formats: tuple[str, ...] = ("JPEG", "PNG")

    @classmethod
    def of(cls, v) -> "Limits":
        """From a `ValidateParams` (max_pixels, max_image_bytes, allowed_formats)."""
        return cls(int(v.max_pixels), int(v.max_image_bytes), tuple(v.allowed_formats))


class ImageRefused(StepFailed):
    """An image a step will not decode; `code` is validate's rule name for the same problem."""

    def __init__(self, message: str, code: str = "FILE_UNDECODABLE"):
        super().__init__(message)
        self.code = code

    def __reduce__(self):  # pickled across task-runner processes with its code
        return (type(self), (str(self), self.code))


def header_problem(img, limits: Limits, formats: tuple[str, ...] | None = None) -> tuple[str, str] | None:
    """(rule, reason) when an opened (header-only) image breaks the limits, else None."""
    w, h = img.size
    if w * h > limits.max_pixels:
        return "PIXEL_BOMB", (f"{w}x{h} = {w * h} pixels exceeds validate.max_pixels={limits.max_pixels}; "
                              "not decoded")
    allowed = formats if formats is not None else limits.formats
    if image_format(img) not in allowed:
        return "FORMAT_NOT_ALLOWED", f"format {img.format} is not one of {list(allowed)}"
    return None


def _read_capped(path: Path, max_bytes: int) -> bytes:
    """A regular file's bytes, refused above `max_bytes` (stat before open: a FIFO would block)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ImageRefused(f"{path}: not a regular file", "FILE_NOT_REGULAR")
    if st.st_size > max_bytes:
        raise ImageRefused(f"{path}: {st.st_size} bytes exceeds the image file limit "
                           f"validate.max_image_bytes={max_bytes}", "FILE_TOO_LARGE")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew since the stat
        raise ImageRefused(f"{path}: larger than validate.max_image_bytes={max_bytes}", "FILE_TOO_LARGE")
    return data


@contextlib.contextmanager
def open_checked(src: bytes | str | Path, limits: Limits | None = None, what: str | None = None,
                 formats: tuple[str, ...] | None = None) -> Iterator:
    """A PIL image of `src` (a file or its bytes) whose header passed the limits; its pixels are
    not decoded yet. ImageRefused naming `what` (default: the path) otherwise."""
    from PIL import Image, UnidentifiedImageError

    limits = limits or Limits()
    what = what or (str(src) if not isinstance(src, (bytes, bytearray)) else "image")
    if isinstance(src, (bytes, bytearray)):
        if len(src) > limits.max_bytes:
            raise ImageRefused(f"{what}: {len(src)} bytes exceeds the image file limit "
                               f"validate.max_image_bytes={limits.max_bytes}", "FILE_TOO_LARGE")
        data = bytes(src)
    else:
        try:
            data = _read_capped(Path(src), limits.max_bytes)
        except FileNotFoundError:
            raise ImageRefused(f"{what}: image file not found", "FILE_MISSING") from None
        except OSError as exc:
            raise ImageRefused(f"{what}: cannot read: {exc.strerror or exc}", "FILE_UNREADABLE") from None
    try:
        with warnings.catch_warnings():
            # PIL warns (raises at 2x its own limit) while reading the header; our limit decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageRefused(f"{what}: {exc}; not decoded", "PIXEL_BOMB") from None
    except UnidentifiedImageError:
        raise ImageRefused(f"{what}: not an image file PIL can identify", "FILE_UNDECODABLE") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRefused(f"{what}: cannot be decoded: {exc}", "FILE_UNDECODABLE") from None
    with img:
        problem = header_problem(img, limits, formats)
        if problem:
            raise ImageRefused(f"{what}: {problem[1]}", problem[0])
        yield img


def decode_rgb(src: bytes | str | Path, limits: Limits | None = None, what: str | None = None,
               formats: tuple[str, ...] | None = None) -> np.ndarray:
    """uint8 [H,W,3] RGB through `open_checked`: the pixel and size limits hold before any pixel
    is decoded; truncated/corrupt data and modes steps would decode differently are refused."""
    from PIL import Image

    with open_checked(src, limits, what, formats) as img:
        what = what or ("image" if isinstance(src, (bytes, bytearray)) else str(src))
        reason = unsupported_reason(img)
        if reason:
            raise ImageRefused(f"{what}: {reason}", "MODE_UNSUPPORTED")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img.load()  # the real decode: a truncated or corrupt file fails here
            return to_rgb(img)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageRefused(f"{what}: cannot be decoded: {exc}", "FILE_UNDECODABLE") from None


def checked_bytes(path: str | Path, limits: Limits | None = None, what: str | None = None) -> bytes:
    """A file's bytes for a step that hands them to another decoder (training's TFRecords, which
    TensorFlow decodes): the same size, pixel, format and mode checks as `decode_rgb`, from the
    header, without decoding the pixels here."""
    limits = limits or Limits()
    what = what or str(path)
    try:
        data = _read_capped(Path(path), limits.max_bytes)
    except FileNotFoundError:
        raise ImageRefused(f"{what}: image file not found", "FILE_MISSING") from None
    except OSError as exc:
        raise ImageRefused(f"{what}: cannot read: {exc.strerror or exc}", "FILE_UNREADABLE") from None
    with open_checked(data, limits, what) as img:
        reason = unsupported_reason(img)
        if reason:
            raise ImageRefused(f"{what}: {reason}", "MODE_UNSUPPORTED")
    return data


def load_rgb(path: str | Path, limits: Limits | None = None) -> np.ndarray:
    """uint8 [H,W,3] RGB of an image file (`decode_rgb` of the file); StepFailed (ImageRefused)
    naming the file when it is missing, too large, cannot be decoded or has a mode steps would
    decode differently (validation refuses those first)."""
    return decode_rgb(path, limits, str(path))
