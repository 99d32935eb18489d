"""One image drawn from its Shot: the camera's fixed background (sky, house, fence, trees,
lawn/driveway), the objects placed on it (nearer ones over farther ones), the lighting and weather
of its condition, and the demo user's infrared look.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from camtune.core.config import SampleDataParams
from camtune.steps.sample_data.plan import Camera, Shot, seeded_rng
from camtune.steps.sample_data.sprites import LOGOS, OBJECT_KINDS, REF_H, Sprite, draw_object, jitter, shade


@dataclass(frozen=True)
class Box:
    label: str
    x: int
    y: int
    w: int
    h: int


_SKIES = [((110, 160, 220), (190, 215, 240)), ((150, 180, 210), (215, 225, 235)), ((90, 140, 200), (170, 200, 230))]
_WALLS = [(220, 205, 180), (180, 90, 70), (200, 200, 195), (150, 170, 190), (235, 225, 200), (120, 100, 80)]
_ROOFS = [(80, 60, 55), (60, 65, 75), (140, 70, 50), (45, 45, 50)]
_GRASS = [(90, 140, 60), (110, 150, 70), (75, 120, 55)]


def background(seed: int, cam: Camera, width: int, height: int, snow: bool) -> tuple[Image.Image, int]:
    """The camera's fixed scene (see _background); a fresh copy, so callers may draw on it."""
    img, horizon = _background(seed, cam, width, height, snow)
    return img.copy(), horizon


@functools.lru_cache(maxsize=64)  # a camera's scene is drawn once per run, not once per shot
def _background(seed: int, cam: Camera, width: int, height: int, snow: bool) -> tuple[Image.Image, int]:
    """The camera's fixed scene (the same layout for every shot; snow covers ground and roofs).
    Returns the image and the horizon row (objects stand below it)."""
    rng = seeded_rng(seed, 5, cam.user_index, cam.index)
    W, H = width, height
    horizon = int(H * rng.uniform(0.3, 0.45))
    sky_top, sky_bottom = _SKIES[rng.integers(len(_SKIES))]
    t = np.linspace(0, 1, horizon, dtype=np.float32)[:, None, None]
    sky = (np.array(sky_top, np.float32) * (1 - t) + np.array(sky_bottom, np.float32) * t)
    arr = np.empty((H, W, 3), np.int16)
    arr[:horizon] = np.rint(sky).astype(np.int16)
    grass = jitter(rng, _GRASS[rng.integers(len(_GRASS))], 10)
    arr[horizon:] = (232, 236, 244) if snow else grass
    # fixed per-camera ground texture (lawn/gravel grain), the same every shot
    arr[horizon:] += rng.integers(-14, 15, (H - horizon, W, 1), dtype=np.int16)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    # hills / far tree line
    ridge = [(x, horizon - rng.uniform(5, 35) * H / REF_H) for x in np.linspace(0, W, 9)]
    pts = [(0, horizon), *ridge, (W, horizon)]
    d.polygon(pts, fill=(230, 235, 240) if snow else jitter(rng, (60, 100, 60), 15))
    # driveway / path: a perspective trapezoid of asphalt or concrete
    pave = jitter(rng, (95, 95, 100) if rng.random() < 0.5 else (165, 160, 150), 10)
    x0 = rng.uniform(0.05, 0.6) * W
    d.polygon([(x0, horizon), (x0 + W * 0.12, horizon), (x0 + W * rng.uniform(0.3, 0.5), H), (x0 - W * 0.15, H)],
              fill=shade(pave, 1.6) if snow else pave)
    # house
    hw = W * rng.uniform(0.3, 0.5)
    hx = rng.uniform(-0.1, 0.75) * W
    hb = horizon + H * 0.03
    ht = horizon - H * rng.uniform(0.18, 0.26)
    wall = jitter(rng, _WALLS[rng.integers(len(_WALLS))], 10)
    d.rectangle([hx, ht, hx + hw, hb], fill=wall)
    roof = (240, 242, 248) if snow else _ROOFS[rng.integers(len(_ROOFS))]
    d.polygon([(hx - W * 0.02, ht), (hx + hw / 2, max(2, ht - H * rng.uniform(0.08, 0.16))), (hx + hw + W * 0.02, ht)],
              fill=roof)
    n_win = int(rng.integers(2, 4))
    for i in range(n_win):
        wx = hx + hw * (i + 0.5) / (n_win + 0.5)
        d.rectangle([wx, ht + (hb - ht) * 0.2, wx + hw * 0.12, ht + (hb - ht) * 0.55], fill=(40, 55, 75),
                    outline=(240, 240, 240), width=2)
    dx = hx + hw * rng.uniform(0.55, 0.8)
    d.rectangle([dx, ht + (hb - ht) * 0.35, dx + hw * 0.1, hb], fill=jitter(rng, (90, 50, 30), 20))
    # fence with pickets along part of the horizon
    fx0, fx1 = sorted(rng.uniform(0, W, 2))
    fence = (215, 215, 210) if rng.random() < 0.5 else (120, 85, 55)
    ft = horizon - H * 0.06
    d.rectangle([fx0, ft + H * 0.015, fx1, ft + H * 0.025], fill=fence)
    for px in np.arange(fx0, fx1, max(4.0, W * 0.012)):
        d.rectangle([px, ft, px + max(2.0, W * 0.005), horizon + H * 0.01], fill=fence)
    # trees
    for _ in range(int(rng.integers(1, 4))):
        tx = rng.uniform(0, W)
        th = H * rng.uniform(0.2, 0.32)
        d.rectangle([tx - W * 0.008, horizon - th * 0.45, tx + W * 0.008, horizon + H * 0.02], fill=(90, 60, 35))
        leaf = jitter(rng, (40, 95, 45), 15)
        for _ in range(4):
            ox, oy, rr = rng.uniform(-0.05, 0.05) * W, rng.uniform(0.55, 0.85) * th, W * rng.uniform(0.03, 0.05)
            d.ellipse([tx + ox - rr, horizon - oy - rr, tx + ox + rr, horizon - oy + rr],
                      fill=(235, 238, 242) if snow and oy > 0.7 * th else leaf)
    return img, horizon

def _overlap(a: tuple, b: tuple) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / max(1, smaller)


def _apply_condition(rng: np.random.Generator, img: Image.Image, condition: str) -> Image.Image:
    """Lighting and weather on the whole frame: gain, tint, haze, sensor noise, snow flakes."""
    W, H = img.size
    if condition == "snow":
        d = ImageDraw.Draw(img)
        for x, y, r in zip(rng.uniform(0, W, 300), rng.uniform(0, H, 300), rng.uniform(0.6, 2.2, 300)):
            d.ellipse([x - r, y - r, x + r, y + r], fill=(250, 250, 252))
    gain, tint, noise, haze = {
        "day": (rng.uniform(0.92, 1.08), (1.0, 1.0, 1.0), 4, 0.0),
        "dusk": (rng.uniform(0.62, 0.75), (1.1, 0.85, 0.68), 6, 0.0),
        "night": (rng.uniform(0.42, 0.52), (0.8, 0.92, 1.2), 9, 0.0),
        "snow": (rng.uniform(0.98, 1.05), (0.95, 0.98, 1.05), 5, 0.15),
    }[condition]
    if condition == "night":  # IR-ish: colours wash out toward grey
        img = ImageEnhance.Color(img).enhance(0.6)
    # haze, gain and tint are affine per channel: one lookup table, applied in C
    v = np.arange(256, dtype=np.float64)
    lut = np.concatenate([np.clip((v * (1 - haze) + 225 * haze) * gain * t + 0.5, 0, 255) for t in tint])
    arr = np.asarray(img.point(lut.astype(np.uint8).tolist()), dtype=np.int16)
    # sensor grain: luminance noise, triangular (sum of two uniforms) - cheap and close to gaussian
    grain = rng.integers(-noise, noise + 1, (H, W, 1), dtype=np.int16)
    grain += rng.integers(-noise, noise + 1, (H, W, 1), dtype=np.int16)
    return Image.fromarray(np.clip(arr + grain, 0, 255).astype(np.uint8), "RGB")


def render(shot: Shot, sd: SampleDataParams, names: list[str]) -> tuple[Image.Image, list[Box]]:
    """Draw one shot: the camera's background, its objects (nearer ones over farther ones), the
    condition. Boxes are tight (from sprite alpha), inside the frame, objects before their parts."""
    rng = seeded_rng(sd.seed, 4, shot.camera.user_index, shot.camera.index, shot.k)
    W, H = sd.width, sd.height
    u = H / REF_H * sd.object_scale
    img, horizon = background(sd.seed, shot.camera, W, H, snow=shot.condition == "snow")
    labelled = set(names)
    drawable = [k for k in OBJECT_KINDS if k in labelled]
    wanted: list[tuple[str, str | None]] = []
    if not shot.negative and shot.lead is not None:
        wanted.append(shot.lead)
        for _ in range(int(rng.choice([0, 1, 1, 2, 2, 3]))):
            kind = drawable[rng.integers(len(drawable))]
            logo = None
            if kind == "car" and rng.random() < 0.4:
                options = [lg for lg in LOGOS if lg in labelled]
                logo = options[rng.integers(len(options))] if options else None
            wanted.append((kind, logo))
    placed: list[tuple[int, int, int, Sprite]] = []  # (bottom, x, y, sprite)
    for kind, logo in wanted:
        sp = draw_object(rng, kind, logo, u, labelled)
        sw, sh = sp.image.size
        if sw >= W or sh >= H:
            continue
        for _ in range(8):  # a few tries for a spot that hides at most a third of another object
            # bigger objects stand nearer the camera (lower in the frame)
            near = np.clip(rng.uniform(0.15, 1.0), 0, 1)
            bottom = int(np.clip(horizon + near * (H - horizon), sh + 1, H - 1))
            x = int(rng.integers(0, W - sw + 1))
            box = (x, bottom - sh, x + sw, bottom)
            if all(_overlap(box, (px, py, px + p.image.width, py + p.image.height)) < 0.33
                   for _, px, py, p in placed):
                placed.append((bottom, x, bottom - sh, sp))
                break
    boxes: list[Box] = []
    canvas = img.convert("RGBA")
    for _, x, y, sp in sorted(placed, key=lambda p: p[0]):
        canvas.alpha_composite(sp.image, (x, y))
    for _, x, y, sp in placed:  # annotation order: draw order is irrelevant to the labels
        bx0, by0, bx1, by1 = sp.image.getchannel("A").getbbox()
        boxes.append(Box(sp.label, x + bx0, y + by0, bx1 - bx0, by1 - by0))
        for label, px0, py0, px1, py1 in sp.parts:
            boxes.append(Box(label, x + px0, y + py0, px1 - px0, py1 - py0))
    img = _apply_condition(rng, canvas.convert("RGB"), shot.condition)
    if shot.camera.user_index < len(sd.users) and sd.user_look == "ir":
        img = _infrared(rng, img)
    return img, boxes


def _infrared(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    """The requesting user's cameras: monochrome infrared, as many doorbell and yard cameras run.
    The sensor sees mostly red / near-IR reflectance (foliage and skin bright, colours gone) under
    an IR illuminator's hotspot (bright centre, dark corners), with more grain. Only pixels change,
    so boxes stay tight; it is the domain shift a fine-tune on the user's own images exists for."""
    arr = np.asarray(img, dtype=np.float32)
    lum = 0.72 * arr[..., 0] + 0.23 * arr[..., 1] + 0.05 * arr[..., 2]
    H, W = lum.shape
    yy, xx = np.mgrid[0:H, 0:W]
    r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
    hotspot = 1.25 - 0.55 * np.clip(r2, 0, 1.6) / 1.6
    lum = 255.0 * (np.clip(lum * hotspot, 0, 255) / 255.0) ** 0.8  # IR images look washed-out bright
    lum += rng.normal(0, 7, (H, W))
    out = np.clip(lum, 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([out, out, out], axis=-1), "RGB")
