"""Pictures for the report, drawn with Pillow: boxes on downscaled copies of the user's images,
saved as JPEG thumbnails. Pure functions of their inputs (same input -> same bytes).

Colour is never the only cue (WCAG 1.4.1): every box carries its label as text, ground truth is
dashed, detections are solid, and misses / false detections say so in words on the box.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from camtune.model.images import Limits, open_checked

# Okabe-Ito (colour-blind safe) first, then distinct extras with different lightness.
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
           "#FFFFFF", "#8C564B", "#7FFF00", "#9467BD", "#17BECF")
MISS = "#FF1744"
FALSE = "#FF1744"


def label_colour(label_names: Sequence[str], label: str) -> str:
    try:
        return PALETTE[list(label_names).index(label) % len(PALETTE)]
    except ValueError:
        return "#BBBBBB"


@dataclass(frozen=True)
class Box:
    """One box in original-image pixels (x, y, w, h) and how to draw it."""
    label: str
    bbox: tuple[float, float, float, float]
    style: str              # "gt" | "miss" | "hit" | "false" | "bad" | "context" | "suggest"
    text: str = ""


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default()


def _dashed_rect(d: ImageDraw.ImageDraw, xy, colour: str, width: int, dash: int, gap: int) -> None:
    x0, y0, x1, y1 = xy
    for (ax, ay, bx, by) in ((x0, y0, x1, y0), (x1, y0, x1, y1), (x1, y1, x0, y1), (x0, y1, x0, y0)):
        length = max(abs(bx - ax), abs(by - ay))
        if length <= 0:
            continue
        pos = 0.0
        while pos < length:
            end = min(pos + dash, length)
            fx, fy = ax + (bx - ax) * pos / length, ay + (by - ay) * pos / length
            tx, ty = ax + (bx - ax) * end / length, ay + (by - ay) * end / length
            d.line([(fx, fy), (tx, ty)], fill=colour, width=width)
            pos = end + gap


def _tag(d: ImageDraw.ImageDraw, x: float, y: float, text: str, colour: str, font, W: int, H: int,
         above: bool = True) -> None:
    """A filled label tag with dark text (light colours) or white text (dark ones)."""
    if not text:
        return
    l, t, r, b = d.textbbox((0, 0), text, font=font)
    tw, th = r - l + 6, b - t + 4
    ty = y - th if above and y - th >= 0 else y
    tx = min(max(0, x), max(0, W - tw))
    ty = min(max(0, ty), max(0, H - th))
    d.rectangle([tx, ty, tx + tw, ty + th], fill=colour)
    rgb = Image.new("RGB", (1, 1), colour).getpixel((0, 0))
    dark = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140
    d.text((tx + 3 - l, ty + 2 - t), text, fill="#000000" if dark else "#FFFFFF", font=font)


def _clipped(bbox, scale: float, W: int, H: int, pad: float = 8.0):
    """The box in thumbnail pixels, clipped to the picture plus `pad`: dashes are drawn along the
    clipped sides, so a box of width 1e300 costs what one as wide as the image does. None for a
    box that is not four finite numbers (the findings name it)."""
    try:
        x, y, w, h = (float(v) * scale for v in bbox)
    except (TypeError, ValueError, OverflowError):
        return None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return None
    x1, y1 = x + max(w, 1.0), y + max(h, 1.0)
    if not (math.isfinite(x1) and math.isfinite(y1)):
        return None

    def cx(v):
        return min(max(v, -pad), W + pad)

    def cy(v):
        return min(max(v, -pad), H + pad)
    return cx(x), cy(y), cx(x1), cy(y1)


def draw_boxes(img: Image.Image, boxes: Sequence[Box], label_names: Sequence[str], scale: float) -> Image.Image:
    """Draw `boxes` (original pixels) on `img` (already scaled by `scale`)."""
    img = img.convert("RGB")
    d = ImageDraw.Draw(img)
    W, H = img.size
    font = _font(max(10, int(round(W / 40))))
    order = {"context": 0, "gt": 1, "hit": 2, "suggest": 2, "false": 3, "miss": 4, "bad": 5}
    for b in sorted(boxes, key=lambda b: order.get(b.style, 9)):
        xy = _clipped(b.bbox, scale, W, H)
        if xy is None:
            continue
        colour = label_colour(label_names, b.label)
        if b.style == "gt":
            _dashed_rect(d, xy, colour, 2, 6, 4)
        elif b.style == "context":
            _dashed_rect(d, xy, colour, 2, 6, 4)
            _tag(d, xy[0], xy[3], b.text or b.label, colour, font, W, H, above=False)
        elif b.style == "miss":
            _dashed_rect(d, xy, MISS, 4, 6, 4)
            _tag(d, xy[0], xy[3], b.text or f"MISSED {b.label}", MISS, font, W, H, above=False)
        elif b.style == "hit":
            d.rectangle(xy, outline=colour, width=3)
            _tag(d, xy[0], xy[1], b.text or b.label, colour, font, W, H)
        elif b.style == "false":
            d.rectangle(xy, outline=colour, width=3)
            _tag(d, xy[0], xy[1], b.text or f"FALSE {b.label}", FALSE, font, W, H)
        elif b.style == "bad":
            d.rectangle(xy, outline=MISS, width=4)
            _tag(d, xy[0], xy[1], b.text or b.label, MISS, font, W, H)
        elif b.style == "suggest":
            _dashed_rect(d, xy, "#FF00FF", 3, 2, 3)  # dotted magenta: a suggestion, not a box
            _tag(d, xy[0], xy[1], b.text or f"unlabeled {b.label}?", "#FF00FF", font, W, H)
    return img


def open_scaled(path: str | Path, width: int, limits: Limits | None = None) -> tuple[Image.Image, float]:
    """The image downscaled to `width` (never upscaled) and the scale applied; read through the
    shared checked decoder (validate's pixel and file size limits, checked before decoding)."""
    with open_checked(path, limits) as im:
        im = im.convert("RGB")
        scale = min(1.0, width / im.width)
        if scale < 1.0:
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                           Image.Resampling.LANCZOS)
        return im.copy(), scale


def side_by_side(panels: Sequence[tuple[str, Image.Image]], gap: int = 6) -> Image.Image:
    """Panels next to each other, each under a caption bar (e.g. "base" / "tuned")."""
    font = _font(14)
    bar = 22
    w = sum(p.width for _, p in panels) + gap * (len(panels) - 1)
    h = max(p.height for _, p in panels) + bar
    out = Image.new("RGB", (w, h), "#202020")
    d = ImageDraw.Draw(out)
    x = 0
    for caption, p in panels:
        d.text((x + 6, 4), caption, fill="#FFFFFF", font=font)
        out.paste(p, (x, bar))
        x += p.width + gap
    return out


def jpeg_bytes(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    # optimize (Huffman tables) is deterministic; no EXIF, no timestamps
    img.save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()
