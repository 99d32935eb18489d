"""One decoder truth (issue 18): the RGB loader every Pillow-based step uses gives the pixels
training gets from `tf.io.decode_image(channels=3)`, for every mode validation accepts; the modes
it cannot match are refused by validation with the reason."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from camtune.model import images
from camtune.core.config import ValidateParams
from camtune.steps.validate.files import check_file

rng = np.random.default_rng(0)
BASE = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
ALPHA = rng.integers(0, 256, (24, 32, 1), dtype=np.uint8)
RULES = ValidateParams(allowed_formats=["JPEG", "PNG"], max_pixels=10_000_000)


def _enc(im, fmt, **kw) -> bytes:
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def _png16(arr: np.ndarray, color_type: int) -> bytes:
    """A 16-bit PNG by hand (Pillow cannot write 16-bit RGB)."""
    h, w = arr.shape[:2]
    rows = arr.reshape(h, -1).astype(">u2")
    raw = b"".join(b"\0" + rows[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _palette_with_transparency() -> bytes:
    p = Image.fromarray(BASE).convert("P")
    return _enc(p, "PNG", transparency=0)


def _mpo() -> bytes:
    b = io.BytesIO()
    Image.fromarray(BASE).save(b, "MPO", save_all=True, append_images=[Image.fromarray(BASE[:8, :8])])
    return b.getvalue()


rgb = Image.fromarray(BASE)
# name -> (encoded bytes, lossy?) for every mode validation accepts
ACCEPTED = {
    "RGB png": (_enc(rgb, "PNG"), False),
    "RGBA png": (_enc(Image.fromarray(np.dstack([BASE, ALPHA]), "RGBA"), "PNG"), False),
    "L png": (_enc(rgb.convert("L"), "PNG"), False),
    "LA png": (_enc(Image.fromarray(np.dstack([BASE[..., :1], ALPHA])[..., :2], "LA"), "PNG"), False),
    "1 png": (_enc(rgb.convert("1"), "PNG"), False),
    "P png": (_enc(rgb.convert("P"), "PNG"), False),
    "P png + transparency": (_palette_with_transparency(), False),
    "I;16 png (16-bit gray)": (_png16(rng.integers(0, 65536, (24, 32)), 0), False),
    "16-bit RGB png": (_png16(rng.integers(0, 65536, (24, 32, 3)), 2), False),
    "16-bit RGBA png": (_png16(rng.integers(0, 65536, (24, 32, 4)), 6), False),
    "16-bit gray+alpha png": (_png16(rng.integers(0, 65536, (24, 32, 2)), 4), False),
    "RGB jpeg": (_enc(rgb, "JPEG", quality=90), True),
    "L jpeg": (_enc(rgb.convert("L"), "JPEG"), True),
    "MPO (phone multi-frame jpeg)": (_mpo(), True),
}
REFUSED = {
    "CMYK jpeg": _enc(rgb.convert("CMYK"), "JPEG"),
}


def _tf_rgb(data: bytes) -> np.ndarray:
    import tensorflow as tf

    return tf.io.decode_image(data, channels=3, expand_animations=False).numpy()


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_loader_gives_the_pixels_training_decodes(tmp_path, name):
    data, lossy = ACCEPTED[name]
    path = tmp_path / ("x.jpg" if lossy else "x.png")
    path.write_bytes(data)
    ours, tf_pixels = images.load_rgb(path), _tf_rgb(data)
    assert ours.dtype == np.uint8 and ours.shape == tf_pixels.shape
    diff = np.abs(ours.astype(int) - tf_pixels.astype(int)).max()
    # JPEG: two libjpeg builds round the IDCT differently (measured <= 5 levels); PNG: exact
    assert diff <= (8 if lossy else 0), f"{name}: max difference {diff}"
    w, h = Image.open(path).size
    c = check_file(tmp_path, 1, path.name, w, h, None, RULES)
    assert c.decoded and [f.rule for f in c.findings] == [], [f.line() for f in c.findings]


def test_sixteen_bit_gray_is_not_white():
    # what evaluate/export saw through Pillow's convert("RGB"): an all-white frame
    data = _png16(np.full((4, 4), 0x4000), 0)
    assert (images.to_rgb(Image.open(io.BytesIO(data))) == 0x40).all()


@pytest.mark.parametrize("name", list(REFUSED))
def test_modes_steps_would_decode_differently_are_refused_with_a_reason(tmp_path, name):
    (tmp_path / "x.jpg").write_bytes(REFUSED[name])
    c = check_file(tmp_path, 3, "x.jpg", 32, 24, None, RULES)
    [f] = [f for f in c.findings if f.rule == "MODE_UNSUPPORTED"]
    assert f.image_id == 3 and "CMYK" in f.message and "save the image as RGB" in f.message
    with pytest.raises(Exception, match="CMYK"):
        images.load_rgb(tmp_path / "x.jpg")


def test_exif_orientation_training_ignores_is_a_warning_naming_the_image(tmp_path):
    exif = Image.Exif()
    exif[images.EXIF_ORIENTATION] = 6  # rotate 90 degrees: a phone held upright
    Image.fromarray(BASE).save(tmp_path / "r.jpg", exif=exif)
    c = check_file(tmp_path, 42, "r.jpg", 32, 24, None, RULES)
    [f] = c.findings
    assert (f.rule, f.severity, f.image_id) == ("EXIF_ORIENTATION", "warning", 42) and "orientation 6" in f.message
    # and both decoders really ignore it: same stored pixels
    assert np.abs(images.load_rgb(tmp_path / "r.jpg").astype(int)
                  - _tf_rgb((tmp_path / "r.jpg").read_bytes()).astype(int)).max() <= 8
