"""Synthetic security-camera scenes: the embedded sample data every other step trains and tests on.

Each user owns a few cameras; each camera has its own fixed background (sky, house, fence, trees,
lawn/driveway) and sees people, cars (some delivery vans with a courier logo), packages, dogs, cats
and deer under day / dusk / night / snow. Objects are drawn as RGBA sprites whose alpha channel
gives the tight box; attribute labels (`face`, `license_plate`, logos) are drawn on their own layer
inside the parent sprite, so their boxes are tight and always inside the parent's.

Everything is a pure function of `SampleDataParams`, the label set and the user id: every image has
its own numpy Generator seeded from (seed, user, camera, index), so the same params give the same
pixels, and the same pixels + quality give the same JPEG bytes (asserted in tests).
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from camtune.core import atomic
from camtune.core.config import LabelParams, Params, SampleDataParams
from camtune.core.dataset import ANNOTATIONS_FILE
from camtune.core.errors import StepFailed

GENERATOR = "camtune.steps.sample_data.synth"
CONDITIONS = ("day", "dusk", "night", "snow")
# Per-camera condition cycle (rotated per camera): mostly day, every camera sees all four quickly.
_CONDITION_CYCLE = ("day", "night", "dusk", "day", "snow", "day", "night", "dusk")
CAMERA_NAMES = ("front_door", "driveway", "backyard", "side_gate", "garage", "porch")
_OTHER_USERS = ("u_alba", "u_bodhi", "u_cleo", "u_dev", "u_emre", "u_freya", "u_gus", "u_hana")
OBJECT_KINDS = ("person", "car", "package", "dog", "cat", "deer")
LOGOS = ("amazon", "ups", "fedex")
# Lead object of the n-th non-negative image of a group, so even a tiny dataset holds every label.
_LEADS = (("person", None), ("car", "amazon"), ("package", None), ("dog", None),
          ("car", "ups"), ("cat", None), ("deer", None), ("car", "fedex"))
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
_REF_H = 360  # object sizes below are in pixels of a 360-pixel-high frame, scaled to `height`


# ----------------------------------------------------------------------------- planning

@dataclass(frozen=True)
class Camera:
    user_id: str
    name: str
    user_index: int  # < len(sample_data.users): a demo user; stable when global_users changes
    index: int


@dataclass(frozen=True)
class Shot:
    """One planned image: who, where, when, and what it should show."""
    id: int
    camera: Camera
    k: int  # index of the shot within its camera
    condition: str
    captured_at: datetime
    verified: bool
    verified_at: datetime | None
    negative: bool
    lead: tuple[str, str | None] | None  # (kind, logo) drawn first; None for a negative


@dataclass(frozen=True)
class Box:
    label: str
    x: int
    y: int
    w: int
    h: int


def _rng(seed: int, *keys: int) -> np.random.Generator:
    # One independent stream per purpose/camera/image: an image never depends on how many
    # others were drawn before it (so the user's pooled images are the same in both datasets).
    return np.random.default_rng(np.random.SeedSequence([seed % 2**64, *keys]))


def other_user_ids(n: int, exclude) -> list[str]:
    exclude = {exclude} if isinstance(exclude, str) else set(exclude)
    names = [u for u in _OTHER_USERS if u not in exclude]
    i = 0
    while len(names) < n:
        i += 1
        if (cand := f"u_{i:03d}") not in exclude:
            names.append(cand)
    return names[:n]


def cameras_of(sd: SampleDataParams, user_id: str, user_index: int) -> list[Camera]:
    order = _rng(sd.seed, 1, user_index).permutation(len(CAMERA_NAMES))
    names = [CAMERA_NAMES[i] for i in order]
    names += [f"camera_{i}" for i in range(len(names), sd.cameras_per_user)]
    return [Camera(user_id, names[j], user_index, j) for j in range(sd.cameras_per_user)]


def _count(n: int, fraction: float) -> int:
    # at least one when the fraction asks for any, so tiny datasets still exercise the case
    return 0 if fraction <= 0 or n < 2 else min(n - 1, max(1, round(n * fraction)))


def _plan_group(sd: SampleDataParams, cams: list[Camera], n: int, group: int, first_id: int,
                names: set[str]) -> list[Shot]:
    """n shots spread round-robin over `cams`, ids in capture order from first_id."""
    drafts = []
    for i in range(n):
        cam = cams[i % len(cams)]
        k = i // len(cams)
        rng = _rng(sd.seed, 2, cam.user_index, cam.index, k)
        cond = _CONDITION_CYCLE[(k + 3 * cam.index + cam.user_index) % len(_CONDITION_CYCLE)]
        day = int(rng.integers(0, 56)) if cond == "snow" else int(rng.integers(0, 330))
        hour = {"day": rng.uniform(9, 16), "dusk": rng.uniform(17, 19), "snow": rng.uniform(9, 15),
                "night": rng.uniform(21, 28)}[cond]
        t = _EPOCH + timedelta(days=day, seconds=int(hour * 3600) + int(rng.integers(0, 60)))
        drafts.append((t, cam.user_index, cam.index, k, cam, cond, float(rng.uniform(0.5, 72))))
    drafts.sort(key=lambda d: d[:4])

    pick = _rng(sd.seed, 3, group)
    unverified = set(pick.permutation(n)[: _count(n, sd.unverified_fraction)].tolist())
    verified_idx = [i for i in range(n) if i not in unverified]
    negatives = set(pick.permutation(verified_idx)[: _count(len(verified_idx), sd.negative_fraction)]
                    .tolist()) if verified_idx else set()
    leads = [(kind, logo if logo in names else None) for kind, logo in _LEADS if kind in names]
    shots, n_lead = [], 0
    for i, (t, _, _, k, cam, cond, delay_h) in enumerate(drafts):
        verified = i not in unverified
        negative = i in negatives or not leads
        lead = None if negative else leads[n_lead % len(leads)]
        n_lead += lead is not None
        shots.append(Shot(first_id + i, cam, k, cond, t, verified,
                          t + timedelta(hours=delay_h) if verified else None, negative, lead))
    return shots


def plan(sd: SampleDataParams, users: list[str], names: list[str]) -> tuple[dict[str, list[Shot]], list[Shot]]:
    """({demo user: their shots}, the other households' shots). Demo user i's ids are
    i*user_images+1 .. (i+1)*user_images in capture order; the first user_images_in_pool of them are
    the ones already in the global pool. Nothing depends on who requests a model."""
    drawable = set(names)
    per_user = {uid: _plan_group(sd, cameras_of(sd, uid, i), sd.user_images, i, i * sd.user_images + 1, drawable)
                for i, uid in enumerate(users)}
    others = [c for ui, uid in enumerate(other_user_ids(sd.global_users, users), start=len(users))
              for c in cameras_of(sd, uid, ui)]
    n_others = sd.global_images - sd.user_images_in_pool * len(users)
    first = len(users) * sd.user_images + 1
    # group len(users): with one demo user this is group 1, as before demo users were a list
    other_shots = _plan_group(sd, others, n_others, len(users), first, drawable) if n_others else []
    return per_user, other_shots


# ----------------------------------------------------------------------------- drawing helpers

def _jitter(rng: np.random.Generator, rgb, amount: int = 14) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _shade(rgb, f: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * f, 0, 255)) for c in rgb)


def _layer(w: int, h: int) -> Image.Image:
    return Image.new("RGBA", (max(1, int(w)), max(1, int(h))), (0, 0, 0, 0))


def _font(px: float) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(6, int(px)))


@dataclass
class Sprite:
    """An object on a transparent canvas; parts are (label, x0, y0, x1, y1) in canvas pixels."""
    label: str
    image: Image.Image
    parts: list[tuple[str, int, int, int, int]] = field(default_factory=list)

    def add_part(self, label: str, layer: Image.Image) -> None:
        bbox = layer.getchannel("A").getbbox()
        self.image.alpha_composite(layer)
        if bbox:
            self.parts.append((label, *bbox))

    def mirrored(self) -> "Sprite":
        w = self.image.width
        return Sprite(self.label, ImageOps.mirror(self.image),
                      [(lb, w - x1, y0, w - x0, y1) for lb, x0, y0, x1, y1 in self.parts])


# ----------------------------------------------------------------------------- objects

_SKIN = [(241, 194, 160), (224, 172, 125), (198, 134, 92), (141, 85, 54), (92, 58, 38)]
_HAIR = [(30, 24, 20), (70, 45, 25), (150, 110, 60), (200, 170, 110), (120, 120, 120)]
_SHIRT = [(200, 40, 40), (40, 80, 190), (30, 140, 70), (240, 200, 40), (230, 230, 230),
          (140, 60, 160), (250, 120, 30), (40, 40, 40)]
_TROUSERS = [(35, 45, 80), (50, 50, 55), (90, 70, 50), (20, 20, 25), (110, 120, 140)]


def person(rng: np.random.Generator, h: int, face: bool) -> Sprite:
    """Upright figure: skin head with hair cap, coloured shirt with arms, dark trousers, shoes.
    The face (eyes, brows, mouth on a skin oval) is its own part inside the head."""
    w = int(h * 0.56)
    sp = Sprite("person", _layer(w, h))
    d = ImageDraw.Draw(sp.image)
    cx = w / 2
    hd = h * 0.2  # head diameter
    skin, hair = _jitter(rng, _SKIN[rng.integers(len(_SKIN))], 8), _jitter(rng, _HAIR[rng.integers(len(_HAIR))])
    shirt = _jitter(rng, _SHIRT[rng.integers(len(_SHIRT))], 20)
    trousers = _jitter(rng, _TROUSERS[rng.integers(len(_TROUSERS))])
    torso_w, top = h * 0.34, hd * 1.08
    # legs first (torso overlaps their tops), slightly apart
    lw = torso_w * 0.42
    for lx in (cx - torso_w / 2 + 1, cx + torso_w / 2 - lw - 1):
        d.rectangle([lx, h * 0.55, lx + lw, h * 0.95], fill=trousers)
        d.rounded_rectangle([lx - 2, h * 0.93, lx + lw + 2, h - 1], radius=2, fill=(25, 20, 18))
    # arms hang beside the torso, hands at the ends
    aw = h * 0.08
    for side in (-1, 1):
        ax = cx + side * (torso_w / 2 + aw / 2)
        d.rounded_rectangle([ax - aw / 2, top + 2, ax + aw / 2, h * 0.52], radius=aw / 2, fill=_shade(shirt, 0.85))
        d.ellipse([ax - aw / 2, h * 0.5, ax + aw / 2, h * 0.5 + aw], fill=skin)
    d.rounded_rectangle([cx - torso_w / 2, top, cx + torso_w / 2, h * 0.58], radius=h * 0.04, fill=shirt)
    if rng.random() < 0.5:  # striped or zipped top: texture, not just a colour blob
        for yy in np.arange(top + 4, h * 0.56, max(3.0, h * 0.03)):
            d.line([cx - torso_w / 2 + 2, yy, cx + torso_w / 2 - 2, yy], fill=_shade(shirt, 0.6), width=1)
    else:
        d.line([cx, top + 2, cx, h * 0.57], fill=_shade(shirt, 0.5), width=max(1, int(h * 0.012)))
    d.rectangle([cx - hd * 0.15, hd * 0.85, cx + hd * 0.15, top + 2], fill=skin)  # neck
    # head: hair circle, the face oval sits in its lower part
    d.ellipse([cx - hd / 2, 0, cx + hd / 2, hd], fill=hair)
    if face:
        f = _layer(w, h)
        fd = ImageDraw.Draw(f)
        fx0, fy0, fx1, fy1 = cx - hd * 0.38, hd * 0.24, cx + hd * 0.38, hd
        fd.ellipse([fx0, fy0, fx1, fy1], fill=skin)
        er = max(1.5, hd * 0.07)
        for ex in (cx - hd * 0.17, cx + hd * 0.17):
            fd.ellipse([ex - er, hd * 0.5 - er, ex + er, hd * 0.5 + er], fill=(250, 250, 250))
            fd.ellipse([ex - er * 0.6, hd * 0.5 - er * 0.6, ex + er * 0.6, hd * 0.5 + er * 0.6], fill=(20, 20, 30))
            fd.line([ex - er * 1.3, hd * 0.38, ex + er * 1.3, hd * 0.38], fill=hair, width=max(1, int(er * 0.7)))
        fd.line([cx - hd * 0.03, hd * 0.55, cx - hd * 0.06, hd * 0.7], fill=_shade(skin, 0.7), width=1)
        fd.arc([cx - hd * 0.16, hd * 0.62, cx + hd * 0.16, hd * 0.86], 20, 160, fill=(150, 40, 40),
               width=max(1, int(hd * 0.06)))
        sp.add_part("face", f)
    return sp


_CAR_COLOURS = [(190, 30, 35), (30, 60, 150), (200, 200, 205), (25, 25, 28), (240, 240, 240),
                (40, 110, 60), (120, 125, 135), (210, 160, 30)]
_VAN_COLOURS = {"amazon": (45, 70, 105), "ups": (75, 45, 25), "fedex": (245, 245, 245)}


def _plate_text(rng: np.random.Generator) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return "".join(letters[i] for i in rng.integers(0, len(letters), 3)) + " " + \
        "".join(str(i) for i in rng.integers(0, 10, 3))


def _logo(kind: str, w: float, rng: np.random.Generator) -> Image.Image:
    """A courier logo on its own transparent canvas; each has its own shape, colours and text."""
    if kind == "amazon":  # dark navy plate, white lowercase word, orange smile arrow
        lw, lh = w, w * 0.5
        im = _layer(lw, lh)
        d = ImageDraw.Draw(im)
        d.rounded_rectangle([0, 0, lw - 1, lh - 1], radius=lh * 0.15, fill=(22, 30, 40))
        d.text((lw / 2, lh * 0.38), "amazon", font=_font(lh * 0.42), fill=(255, 255, 255), anchor="mm")
        d.arc([lw * 0.15, lh * 0.2, lw * 0.85, lh * 0.88], 25, 155, fill=(255, 153, 0), width=max(2, int(lh * 0.12)))
        d.polygon([(lw * 0.8, lh * 0.62), (lw * 0.9, lh * 0.6), (lw * 0.84, lh * 0.74)], fill=(255, 153, 0))
    elif kind == "ups":  # brown shield with a gold rim and gold letters; taller than wide
        lw, lh = w * 0.7, w * 0.8
        im = _layer(lw, lh)
        d = ImageDraw.Draw(im)
        shield = [(0, 0), (lw - 1, 0), (lw - 1, lh * 0.55), (lw / 2, lh - 1), (0, lh * 0.55)]
        d.polygon(shield, fill=(255, 181, 0))
        m = max(2, lw * 0.08)
        d.polygon([(m, m), (lw - 1 - m, m), (lw - 1 - m, lh * 0.53), (lw / 2, lh - 1 - m * 1.4),
                   (m, lh * 0.53)], fill=(60, 30, 15))
        d.text((lw / 2, lh * 0.4), "ups", font=_font(lh * 0.4), fill=(255, 181, 0), anchor="mm")
    else:  # fedex: white plate, bold purple "Fed" + orange "Ex", wide
        lw, lh = w * 1.1, w * 0.42
        im = _layer(lw, lh)
        d = ImageDraw.Draw(im)
        d.rectangle([0, 0, lw - 1, lh - 1], fill=(255, 255, 255), outline=(200, 200, 200))
        d.rectangle([lw * 0.06, lh * 0.18, lw * 0.52, lh * 0.82], fill=(77, 20, 140))
        d.rectangle([lw * 0.54, lh * 0.18, lw * 0.94, lh * 0.82], fill=(255, 102, 0))
        fnt = _font(lh * 0.55)
        d.text((lw * 0.29, lh * 0.5), "Fed", font=fnt, fill=(255, 255, 255), anchor="mm")
        d.text((lw * 0.74, lh * 0.5), "Ex", font=fnt, fill=(255, 255, 255), anchor="mm")
    return im


def car(rng: np.random.Generator, w: int, plate: bool, logo: str | None, plate_min: float,
        flip: bool = False) -> Sprite:
    """Side view facing right (left with flip). A sedan (cabin with two blue-grey windows) or, with a logo, a
    box van in the courier's colour. Wheels are black with grey hubs. The license plate (white,
    dark rim, dark glyphs) sits on the rear bumper; the logo on the side panel, each its own part."""
    van = logo is not None
    h = int(w * (0.62 if van else 0.48))
    sp = Sprite("car", _layer(w, h))
    d = ImageDraw.Draw(sp.image)
    body = _jitter(rng, _VAN_COLOURS[logo] if van else _CAR_COLOURS[rng.integers(len(_CAR_COLOURS))], 12)
    glass = _jitter(rng, (120, 160, 195), 15)
    r = w * 0.105
    sill = h - r * 0.9
    if van:
        d.rounded_rectangle([0, 0, w * 0.8, sill], radius=w * 0.03, fill=body)
        d.polygon([(w * 0.78, h * 0.08), (w * 0.9, h * 0.08), (w - 1, h * 0.42), (w - 1, sill), (w * 0.78, sill)],
                  fill=body)
        d.polygon([(w * 0.82, h * 0.13), (w * 0.89, h * 0.13), (w * 0.96, h * 0.4), (w * 0.82, h * 0.4)], fill=glass)
        d.line([w * 0.79, h * 0.1, w * 0.79, sill], fill=_shade(body, 0.6), width=2)
    else:
        d.polygon([(w * 0.22, h * 0.42), (w * 0.32, 0), (w * 0.66, 0), (w * 0.8, h * 0.42)], fill=body)
        d.polygon([(w * 0.27, h * 0.4), (w * 0.35, h * 0.07), (w * 0.49, h * 0.07), (w * 0.49, h * 0.4)], fill=glass)
        d.polygon([(w * 0.52, h * 0.4), (w * 0.52, h * 0.07), (w * 0.64, h * 0.07), (w * 0.75, h * 0.4)], fill=glass)
        d.rounded_rectangle([0, h * 0.38, w - 1, sill], radius=h * 0.1, fill=body)
        d.line([w * 0.5, h * 0.42, w * 0.5, sill - 3], fill=_shade(body, 0.55), width=2)  # door seam
    d.rectangle([w - w * 0.05, h * 0.5, w - 1, h * 0.58], fill=(255, 240, 170))  # headlight
    d.rectangle([0, h * 0.45, w * 0.03, h * 0.56], fill=(210, 20, 20))  # tail light
    d.line([w * 0.02, sill - 2, w * 0.98, sill - 2], fill=_shade(body, 0.45), width=2)
    for wx in (w * 0.2, w * 0.8):
        d.ellipse([wx - r, h - 2 * r, wx + r, h - 1], fill=(18, 18, 18))
        d.ellipse([wx - r * 0.45, h - r * 1.45, wx + r * 0.45, h - r * 0.55], fill=(150, 150, 155))
    if flip:  # mirror the body only: plate and logo text must stay readable
        sp.image = ImageOps.mirror(sp.image)
    if plate:
        pw = max(plate_min * 2.2, w * 0.2)
        ph = max(plate_min, pw * 0.4)
        x0, y1 = w * 0.36, sill - 4
        x0 = w - x0 - pw if flip else x0
        pl = _layer(w, h)
        pd = ImageDraw.Draw(pl)
        pd.rectangle([x0, y1 - ph, x0 + pw, y1], fill=(245, 245, 240), outline=(30, 30, 30),
                     width=max(1, int(ph * 0.08)))
        pd.text((x0 + pw / 2, y1 - ph / 2), _plate_text(rng), font=_font(ph * 0.62), fill=(20, 20, 60), anchor="mm")
        sp.add_part("license_plate", pl)
    if van:
        li = _logo(logo, max(plate_min * 2.6, w * 0.26), rng)
        ly = (sill - li.height) * 0.35
        lx = w * 0.2 + (w * 0.5 - li.width) * rng.uniform(0.2, 0.8)
        lx = w - lx - li.width if flip else lx
        lg = _layer(w, h)
        lg.alpha_composite(li, (int(lx), int(max(2, ly))))
        sp.add_part(logo, lg)
    return sp


def package(rng: np.random.Generator, w: int) -> Sprite:
    """Cardboard box in 3D: tan front, lighter top, darker side, a tape strip and a white label."""
    h = int(w * rng.uniform(0.75, 1.0))
    sp = Sprite("package", _layer(w, h))
    d = ImageDraw.Draw(sp.image)
    tan = _jitter(rng, (190, 140, 85), 12)
    dep = w * 0.22  # the visible depth of the top/side faces
    fw, fy = w - dep, dep * 0.6
    d.polygon([(0, fy), (dep, 0), (w - 1, 0), (fw, fy)], fill=_shade(tan, 1.2))  # top
    d.polygon([(fw, fy), (w - 1, 0), (w - 1, h - 1 - fy), (fw, h - 1)], fill=_shade(tan, 0.72))  # side
    d.rectangle([0, fy, fw, h - 1], fill=tan)  # front
    tape = _shade(tan, 1.35)
    d.rectangle([fw * 0.42, fy, fw * 0.58, h * 0.45], fill=tape)
    d.polygon([(fw * 0.42 + dep * 0.5, fy * 0.5), (fw * 0.58 + dep * 0.5, fy * 0.5),
               (fw * 0.58, fy), (fw * 0.42, fy)], fill=tape)
    d.rectangle([fw * 0.12, h * 0.55, fw * 0.5, h * 0.85], fill=(250, 250, 250))  # shipping label
    for yy in np.linspace(h * 0.6, h * 0.8, 4):
        d.line([fw * 0.16, yy, fw * 0.44, yy], fill=(40, 40, 40), width=1)
    d.line([0, fy, fw, fy], fill=_shade(tan, 0.5), width=1)
    return sp


_DOG_COLOURS = [(200, 150, 60), (110, 70, 40), (35, 32, 30), (230, 225, 215), (160, 110, 70)]


def dog(rng: np.random.Generator, w: int) -> Sprite:
    """Standing dog, facing right: stocky body, four short legs, raised tail, floppy dark ear,
    long snout with a black nose and a red collar."""
    h = int(w * 0.72)
    sp = Sprite("dog", _layer(w, h))
    d = ImageDraw.Draw(sp.image)
    fur = _jitter(rng, _DOG_COLOURS[rng.integers(len(_DOG_COLOURS))], 12)
    dark = _shade(fur, 0.55) if sum(fur) > 200 else (90, 70, 50)
    by0, by1 = h * 0.3, h * 0.68
    lw = w * 0.08
    for lx in (w * 0.14, w * 0.26, w * 0.56, w * 0.67):
        d.rectangle([lx, h * 0.55, lx + lw, h - 4], fill=fur)
        d.ellipse([lx - 1, h - 7, lx + lw + 2, h - 1], fill=dark)
    d.line([(w * 0.12, h * 0.4), (w * 0.04, h * 0.22), (0, h * 0.05)], fill=fur, width=max(3, int(w * 0.05)))
    d.ellipse([w * 0.08, by0, w * 0.78, by1], fill=fur)
    if rng.random() < 0.4:  # patches
        for _ in range(3):
            px, py = w * rng.uniform(0.2, 0.6), h * rng.uniform(0.35, 0.55)
            d.ellipse([px, py, px + w * 0.1, py + h * 0.08], fill=dark)
    d.polygon([(w * 0.62, h * 0.4), (w * 0.7, h * 0.12), (w * 0.84, h * 0.12), (w * 0.8, h * 0.5)], fill=fur)  # neck
    d.ellipse([w * 0.66, 0, w * 0.9, h * 0.3], fill=fur)  # head
    d.rounded_rectangle([w * 0.8, h * 0.1, w - 1, h * 0.24], radius=h * 0.05, fill=fur)  # snout
    d.ellipse([w - w * 0.05, h * 0.1, w - 1, h * 0.16], fill=(10, 10, 10))  # nose
    d.ellipse([w * 0.76, h * 0.07, w * 0.79, h * 0.11], fill=(10, 10, 10))  # eye
    d.ellipse([w * 0.66, h * 0.03, w * 0.74, h * 0.26], fill=dark)  # floppy ear
    d.line([w * 0.7, h * 0.3, w * 0.82, h * 0.33], fill=(200, 30, 30), width=max(2, int(h * 0.04)))  # collar
    return sp


_CAT_COLOURS = [(230, 140, 50), (130, 130, 135), (30, 30, 32), (235, 230, 220), (150, 110, 80)]


def cat(rng: np.random.Generator, h: int) -> Sprite:
    """Sitting cat, seen from the front: pear-shaped body, round head with two pointed ears,
    big yellow-green eyes, tabby stripes, a long tail curling along the ground."""
    w = int(h * 0.75)
    sp = Sprite("cat", _layer(w, h))
    d = ImageDraw.Draw(sp.image)
    fur = _jitter(rng, _CAT_COLOURS[rng.integers(len(_CAT_COLOURS))], 10)
    stripe = _shade(fur, 0.55) if sum(fur) > 150 else (70, 70, 75)
    cx = w * 0.42
    d.arc([w * 0.3, h * 0.62, w - 1, h - 1], 0, 200, fill=fur, width=max(3, int(h * 0.07)))  # tail
    d.ellipse([cx - w * 0.3, h * 0.38, cx + w * 0.3, h - 1], fill=fur)  # body
    for yy in np.linspace(h * 0.5, h * 0.88, 4):  # tabby stripes
        d.arc([cx - w * 0.3, yy - h * 0.06, cx + w * 0.3, yy + h * 0.06], 200, 340, fill=stripe,
              width=max(1, int(h * 0.025)))
    hr = w * 0.24
    hy = h * 0.27
    for s in (-1, 1):  # ears
        d.polygon([(cx + s * hr * 0.95, hy - hr * 0.2), (cx + s * hr * 0.75, 0), (cx + s * hr * 0.15, hy - hr * 0.8)],
                  fill=fur)
    d.ellipse([cx - hr, hy - hr, cx + hr, hy + hr], fill=fur)
    er = max(1.5, hr * 0.22)
    for s in (-1, 1):
        ex = cx + s * hr * 0.42
        d.ellipse([ex - er, hy - er, ex + er, hy + er], fill=(190, 210, 60))
        d.line([ex, hy - er * 0.8, ex, hy + er * 0.8], fill=(10, 10, 10), width=max(1, int(er * 0.4)))
    d.polygon([(cx - hr * 0.1, hy + hr * 0.3), (cx + hr * 0.1, hy + hr * 0.3), (cx, hy + hr * 0.45)],
              fill=(230, 120, 140))  # nose
    for s in (-1, 1):  # whiskers
        d.line([cx + s * hr * 0.2, hy + hr * 0.45, cx + s * hr * 1.0, hy + hr * 0.35], fill=(240, 240, 240), width=1)
    return sp


def deer(rng: np.random.Generator, h: int) -> Sprite:
    """Deer, facing right: tan coat, white belly and tail, long thin legs with dark hooves,
    long upright neck, big ears, and (for bucks) pale branching antlers."""
    w = int(h * 0.85)
    sp = Sprite("deer", _layer(w, h))
    d = ImageDraw.Draw(sp.image)
    coat = _jitter(rng, (165, 115, 65), 14)
    antlers = rng.random() < 0.5
    top = h * 0.16 if antlers else 0.0  # antlers occupy the top of the canvas
    lw = max(2, int(w * 0.035))
    for lx in (w * 0.1, w * 0.2, w * 0.55, w * 0.64):
        d.line([lx, h * 0.55, lx, h - 4], fill=_shade(coat, 0.85), width=lw)
        d.rectangle([lx - lw / 2, h - 5, lx + lw / 2, h - 1], fill=(30, 25, 20))
    d.ellipse([w * 0.02, h * 0.38, w * 0.72, h * 0.66], fill=coat)
    d.chord([w * 0.12, h * 0.5, w * 0.62, h * 0.68], 0, 180, fill=(235, 230, 220))  # belly
    d.ellipse([0, h * 0.38, w * 0.07, h * 0.5], fill=(250, 250, 250))  # white tail
    d.polygon([(w * 0.56, h * 0.48), (w * 0.66, top + h * 0.12), (w * 0.78, top + h * 0.14), (w * 0.72, h * 0.52)],
              fill=coat)  # neck
    d.ellipse([w * 0.66, top + h * 0.04, w * 0.84, top + h * 0.2], fill=coat)  # head
    d.polygon([(w * 0.8, top + h * 0.08), (w - 1, top + h * 0.15), (w - 1, top + h * 0.19), (w * 0.8, top + h * 0.19)],
              fill=coat)  # muzzle
    d.ellipse([w - w * 0.04, top + h * 0.14, w - 1, top + h * 0.19], fill=(20, 20, 20))
    d.ellipse([w * 0.6, top, w * 0.7, top + h * 0.08], fill=_shade(coat, 1.1))  # ear
    d.ellipse([w * 0.76, top + h * 0.08, w * 0.79, top + h * 0.11], fill=(10, 10, 10))  # eye
    if antlers:
        bone = (225, 215, 190)
        base = (w * 0.74, top + h * 0.05)
        for s in (-1, 1):
            tip = (base[0] + s * w * 0.1, 0)
            d.line([base, tip], fill=bone, width=max(2, lw - 1))
            for t in (0.35, 0.7):
                p = (base[0] + (tip[0] - base[0]) * t, base[1] + (tip[1] - base[1]) * t)
                d.line([p, (p[0] - s * w * 0.05, p[1] - h * 0.05)], fill=bone, width=max(1, lw - 2))
    return sp


# ----------------------------------------------------------------------------- scenes

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
    rng = _rng(seed, 5, cam.user_index, cam.index)
    W, H = width, height
    horizon = int(H * rng.uniform(0.3, 0.45))
    sky_top, sky_bottom = _SKIES[rng.integers(len(_SKIES))]
    t = np.linspace(0, 1, horizon, dtype=np.float32)[:, None, None]
    sky = (np.array(sky_top, np.float32) * (1 - t) + np.array(sky_bottom, np.float32) * t)
    arr = np.empty((H, W, 3), np.int16)
    arr[:horizon] = np.rint(sky).astype(np.int16)
    grass = _jitter(rng, _GRASS[rng.integers(len(_GRASS))], 10)
    arr[horizon:] = (232, 236, 244) if snow else grass
    # fixed per-camera ground texture (lawn/gravel grain), the same every shot
    arr[horizon:] += rng.integers(-14, 15, (H - horizon, W, 1), dtype=np.int16)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    # hills / far tree line
    ridge = [(x, horizon - rng.uniform(5, 35) * H / _REF_H) for x in np.linspace(0, W, 9)]
    pts = [(0, horizon), *ridge, (W, horizon)]
    d.polygon(pts, fill=(230, 235, 240) if snow else _jitter(rng, (60, 100, 60), 15))
    # driveway / path: a perspective trapezoid of asphalt or concrete
    pave = _jitter(rng, (95, 95, 100) if rng.random() < 0.5 else (165, 160, 150), 10)
    x0 = rng.uniform(0.05, 0.6) * W
    d.polygon([(x0, horizon), (x0 + W * 0.12, horizon), (x0 + W * rng.uniform(0.3, 0.5), H), (x0 - W * 0.15, H)],
              fill=_shade(pave, 1.6) if snow else pave)
    # house
    hw = W * rng.uniform(0.3, 0.5)
    hx = rng.uniform(-0.1, 0.75) * W
    hb = horizon + H * 0.03
    ht = horizon - H * rng.uniform(0.18, 0.26)
    wall = _jitter(rng, _WALLS[rng.integers(len(_WALLS))], 10)
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
    d.rectangle([dx, ht + (hb - ht) * 0.35, dx + hw * 0.1, hb], fill=_jitter(rng, (90, 50, 30), 20))
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
        leaf = _jitter(rng, (40, 95, 45), 15)
        for _ in range(4):
            ox, oy, rr = rng.uniform(-0.05, 0.05) * W, rng.uniform(0.55, 0.85) * th, W * rng.uniform(0.03, 0.05)
            d.ellipse([tx + ox - rr, horizon - oy - rr, tx + ox + rr, horizon - oy + rr],
                      fill=(235, 238, 242) if snow and oy > 0.7 * th else leaf)
    return img, horizon


def _draw_object(rng: np.random.Generator, kind: str, logo: str | None, u: float, names: set[str]) -> Sprite:
    """One object sized in pixels of a 360-high frame (u scales to the real height). Minimum sizes
    keep attributes >= ~18 px at 640x360."""
    if kind == "person":
        return person(rng, int(rng.uniform(120, 230) * u), face="face" in names and rng.random() < 0.85)
    if kind == "car":
        return car(rng, int(rng.uniform(170, 290) * u), plate="license_plate" in names and rng.random() < 0.8,
                   logo=logo, plate_min=18 * u, flip=rng.random() < 0.5)
    if kind == "package":
        sp = package(rng, int(rng.uniform(50, 95) * u))
    elif kind == "dog":
        sp = dog(rng, int(rng.uniform(95, 165) * u))
    elif kind == "cat":
        sp = cat(rng, int(rng.uniform(60, 105) * u))
    else:
        sp = deer(rng, int(rng.uniform(120, 200) * u))
    return sp.mirrored() if rng.random() < 0.5 else sp


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
    rng = _rng(sd.seed, 4, shot.camera.user_index, shot.camera.index, shot.k)
    W, H = sd.width, sd.height
    u = H / _REF_H * sd.object_scale
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
        sp = _draw_object(rng, kind, logo, u, labelled)
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


def encode_jpeg(img: Image.Image, quality: int) -> bytes:
    # fixed settings, no EXIF/timestamps: same pixels + quality -> same bytes
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, subsampling=2, optimize=False)  # 4:2:0 like cameras
    return buf.getvalue()


# ----------------------------------------------------------------------------- datasets

@dataclass(frozen=True)
class Synthetic:
    """Both datasets in memory: one record/annotation list/file per image id."""
    records: dict[int, dict]
    annotations: dict[int, list[dict]]
    files: dict[int, bytes]
    categories: list[dict]
    user_ids: list[int]   # every demo user's images (their datasets)
    pool_ids: list[int]   # the global pool: other users' images + each demo user's earliest ones
    info: dict
    by_user: dict[str, list[int]]  # demo user -> their images (their dataset)


def categories(labels: LabelParams) -> list[dict]:
    return [{"id": i + 1, "name": n, "supercategory": "attribute" if n in labels.attribute_parents else "object",
             "attribute_of": list(labels.attribute_parents.get(n, []))} for i, n in enumerate(labels.names)]


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def build(params: Params) -> Synthetic:
    """Plan and draw every image of both datasets."""
    sd, names = params.sample_data, params.labels.names
    per_user, other_shots = plan(sd, sd.users, names)
    user_shots = [s for shots in per_user.values() for s in shots]
    cats = categories(params.labels)
    cat_id = {c["name"]: c["id"] for c in cats}
    records, anns, files = {}, {}, {}
    next_ann = 1
    for shot in [*user_shots, *other_shots]:
        img, boxes = render(shot, sd, names)
        data = encode_jpeg(img, sd.jpeg_quality)
        files[shot.id] = data
        records[shot.id] = {
            "id": shot.id, "file_name": f"images/{shot.id:06d}.jpg", "width": sd.width, "height": sd.height,
            "user_id": shot.camera.user_id, "camera": shot.camera.name, "captured_at": _iso(shot.captured_at),
            "verified": shot.verified, "verified_at": _iso(shot.verified_at), "condition": shot.condition,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        anns[shot.id] = []
        for b in boxes:
            anns[shot.id].append({"id": next_ann, "image_id": shot.id, "category_id": cat_id[b.label],
                                  "bbox": [b.x, b.y, b.w, b.h], "area": b.w * b.h, "iscrowd": 0})
            next_ann += 1
    by_user = {uid: [s.id for s in shots] for uid, shots in per_user.items()}
    user_ids = [i for ids in by_user.values() for i in ids]
    pool_ids = [i for ids in by_user.values() for i in ids[: sd.user_images_in_pool]] + [s.id for s in other_shots]
    info = {"description": "camtune synthetic security-camera sample data", "generator": GENERATOR,
            "seed": sd.seed, "version": "1"}
    return Synthetic(records, anns, files, cats, user_ids, pool_ids, info, by_user)


def coco(syn: Synthetic, image_ids: list[int], name: str) -> dict:
    return {
        "info": {**syn.info, "dataset": name},
        "images": [syn.records[i] for i in image_ids],
        "annotations": [a for i in image_ids for a in syn.annotations[i]],
        "categories": syn.categories,
    }


def _check_replaceable(folder: Path) -> None:
    """Never overwrite a real dataset: only an absent folder or one this module wrote."""
    if not folder.exists():
        return
    ann = folder / ANNOTATIONS_FILE
    marker = None
    if ann.is_file():
        try:
            marker = (json.loads(ann.read_text()).get("info") or {}).get("generator")
        except (ValueError, AttributeError):
            marker = None
    if marker != GENERATOR and (not folder.is_dir() or any(folder.iterdir())):
        raise StepFailed(f"{folder}: exists and was not generated by {GENERATOR}; refusing to overwrite it "
                         "(point sample_data.global_pool / sample_data.users_dir at an empty or generated folder)")


def write_dataset(folder: str | Path, syn: Synthetic, image_ids: list[int], name: str) -> Path:
    """annotations.json + images/ written atomically (the old folder stays until the new one is whole)."""
    folder = Path(folder)
    _check_replaceable(folder)
    with atomic.output_dir(folder) as tmp:
        (tmp / "images").mkdir()
        for i in image_ids:
            (tmp / syn.records[i]["file_name"]).write_bytes(syn.files[i])
        (tmp / ANNOTATIONS_FILE).write_text(json.dumps(coco(syn, image_ids, name), indent=1, sort_keys=True) + "\n")
    return folder


def generate(params: Params, global_dir: str | Path | None = None, users_dir: str | Path | None = None) -> dict:
    """Draw the shared world and write the pool and one dataset per demo user (default: the folders
    params.sample_data names: <users_dir>/<user_id>). Returns summary()."""
    sd = params.sample_data
    global_dir = Path(global_dir or sd.global_pool)
    users_dir = Path(users_dir or sd.users_dir)
    if global_dir.resolve() == users_dir.resolve() or users_dir.resolve() in global_dir.resolve().parents \
            or global_dir.resolve() in users_dir.resolve().parents:
        raise StepFailed(f"sample_data.global_pool ({global_dir}) and sample_data.users_dir ({users_dir}) overlap")
    user_dirs = {uid: users_dir / uid for uid in sd.users}
    for folder in (global_dir, *user_dirs.values()):
        _check_replaceable(folder)
    if users_dir.is_dir():  # only demo users' folders live here: never remove anything else
        for child in users_dir.iterdir():
            if child.name not in user_dirs:
                _check_replaceable(child)
    syn = build(params)
    write_dataset(global_dir, syn, syn.pool_ids, "global_pool")
    for uid, folder in user_dirs.items():
        write_dataset(folder, syn, syn.by_user[uid], f"user {uid}")
    # a demo user dropped from sample_data.users leaves a generated folder behind: remove it, so the
    # stage's output is exactly the current users (each was checked to be ours above)
    for child in sorted(users_dir.iterdir()):
        if child.name not in user_dirs:
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    return summary(syn, ", ".join(sd.users), {"global_pool": str(global_dir), "users": str(users_dir)})


def summary(syn: Synthetic, user_id: str, paths: dict | None = None) -> dict:
    """Counts per dataset: images, verified/unverified/negatives, labels, users, cameras, conditions."""
    names = {c["id"]: c["name"] for c in syn.categories}
    out: dict = {"user_id": user_id, "paths": paths or {}, "datasets": {}}
    for name, ids in (("global_pool", syn.pool_ids), ("user", syn.user_ids)):
        recs = [syn.records[i] for i in ids]
        labels = Counter(names[a["category_id"]] for i in ids for a in syn.annotations[i])
        out["datasets"][name] = {
            "images": len(ids),
            "verified": sum(r["verified"] for r in recs),
            "unverified": sum(not r["verified"] for r in recs),
            "negatives": sum(r["verified"] and not syn.annotations[r["id"]] for r in recs),
            "boxes": sum(labels.values()),
            "labels": {n: labels.get(n, 0) for n in names.values()},
            "users": dict(sorted(Counter(r["user_id"] for r in recs).items())),
            "cameras": dict(sorted(Counter(f'{r["user_id"]}/{r["camera"]}' for r in recs).items())),
            "conditions": {c: sum(r["condition"] == c for r in recs) for c in CONDITIONS},
        }
    out["user_images_in_pool"] = len(set(syn.user_ids) & set(syn.pool_ids))
    return out


def summary_markdown(s: dict) -> str:
    g, u = s["datasets"]["global_pool"], s["datasets"]["user"]
    lines = [f"# Synthetic sample data (user `{s['user_id']}`)", "",
             f"{s['user_images_in_pool']} of the user's images are also in the global pool.", "",
             "| | global pool | user |", "| --- | ---: | ---: |"]
    for key in ("images", "verified", "unverified", "negatives", "boxes"):
        lines.append(f"| {key} | {g[key]} | {u[key]} |")
    for section in ("labels", "conditions", "users", "cameras"):
        lines += ["", f"## {section}", "", "| | global pool | user |", "| --- | ---: | ---: |"]
        for key in sorted(set(g[section]) | set(u[section]), key=lambda k: (k not in g[section], k)):
            lines.append(f"| {key} | {g[section].get(key, 0)} | {u[section].get(key, 0)} |")
    return "\n".join(lines) + "\n"


__all__ = ["Box", "Camera", "Shot", "Sprite", "Synthetic", "background", "build", "car", "cat", "categories",
           "coco", "deer", "dog", "encode_jpeg", "generate", "package", "person", "plan", "render", "summary",
           "summary_markdown", "write_dataset"]
