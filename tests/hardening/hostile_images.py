"""Small hostile image files, made in memory: a PNG whose header claims a huge frame, a truncated
PNG, a file that is not an image."""
from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def png_bytes(width: int = 32, height: int = 18, colour=(10, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, "PNG")
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A valid-looking PNG of 1x1 pixel data whose IHDR says width x height (a decompression bomb's
    header: PIL reads the size without inflating anything)."""
    data = bytearray(png_bytes(1, 1))
    ihdr = 8 + 8  # signature, then length + type of the first chunk
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12:ihdr + 13])) & 0xFFFFFFFF
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def truncated_png(width: int = 64, height: int = 48) -> bytes:
    import numpy as np

    arr = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)  # incompressible
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()[: len(buf.getvalue()) // 2]
