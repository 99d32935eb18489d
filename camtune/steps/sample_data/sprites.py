"""The six object painters (person, car, package, dog, cat, deer). Each draws an RGBA sprite whose
alpha channel gives the tight box; attribute labels (`face`, `license_plate`, the courier logos)
are drawn on their own layer inside the parent sprite, so their boxes are tight and always inside
the parent's.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

OBJECT_KINDS = ("person", "car", "package", "dog", "cat", "deer")
LOGOS = ("amazon", "ups", "fedex")
REF_H = 360  # object sizes below are in pixels of a 360-pixel-high frame, scaled to `height`


# ----------------------------------------------------------------------------- drawing helpers

def jitter(rng: np.random.Generator, rgb, amount: int = 14) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def shade(rgb, f: float) -> tuple[int, int, int]:
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
    skin, hair = jitter(rng, _SKIN[rng.integers(len(_SKIN))], 8), jitter(rng, _HAIR[rng.integers(len(_HAIR))])
    shirt = jitter(rng, _SHIRT[rng.integers(len(_SHIRT))], 20)
    trousers = jitter(rng, _TROUSERS[rng.integers(len(_TROUSERS))])
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
        d.rounded_rectangle([ax - aw / 2, top + 2, ax + aw / 2, h * 0.52], radius=aw / 2, fill=shade(shirt, 0.85))
        d.ellipse([ax - aw / 2, h * 0.5, ax + aw / 2, h * 0.5 + aw], fill=skin)
    d.rounded_rectangle([cx - torso_w / 2, top, cx + torso_w / 2, h * 0.58], radius=h * 0.04, fill=shirt)
    if rng.random() < 0.5:  # striped or zipped top: texture, not just a colour blob
        for yy in np.arange(top + 4, h * 0.56, max(3.0, h * 0.03)):
            d.line([cx - torso_w / 2 + 2, yy, cx + torso_w / 2 - 2, yy], fill=shade(shirt, 0.6), width=1)
    else:
        d.line([cx, top + 2, cx, h * 0.57], fill=shade(shirt, 0.5), width=max(1, int(h * 0.012)))
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
        fd.line([cx - hd * 0.03, hd * 0.55, cx - hd * 0.06, hd * 0.7], fill=shade(skin, 0.7), width=1)
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
    body = jitter(rng, _VAN_COLOURS[logo] if van else _CAR_COLOURS[rng.integers(len(_CAR_COLOURS))], 12)
    glass = jitter(rng, (120, 160, 195), 15)
    r = w * 0.105
    sill = h - r * 0.9
    if van:
        d.rounded_rectangle([0, 0, w * 0.8, sill], radius=w * 0.03, fill=body)
        d.polygon([(w * 0.78, h * 0.08), (w * 0.9, h * 0.08), (w - 1, h * 0.42), (w - 1, sill), (w * 0.78, sill)],
                  fill=body)
        d.polygon([(w * 0.82, h * 0.13), (w * 0.89, h * 0.13), (w * 0.96, h * 0.4), (w * 0.82, h * 0.4)], fill=glass)
        d.line([w * 0.79, h * 0.1, w * 0.79, sill], fill=shade(body, 0.6), width=2)
    else:
        d.polygon([(w * 0.22, h * 0.42), (w * 0.32, 0), (w * 0.66, 0), (w * 0.8, h * 0.42)], fill=body)
        d.polygon([(w * 0.27, h * 0.4), (w * 0.35, h * 0.07), (w * 0.49, h * 0.07), (w * 0.49, h * 0.4)], fill=glass)
        d.polygon([(w * 0.52, h * 0.4), (w * 0.52, h * 0.07), (w * 0.64, h * 0.07), (w * 0.75, h * 0.4)], fill=glass)
        d.rounded_rectangle([0, h * 0.38, w - 1, sill], radius=h * 0.1, fill=body)
        d.line([w * 0.5, h * 0.42, w * 0.5, sill - 3], fill=shade(body, 0.55), width=2)  # door seam
    d.rectangle([w - w * 0.05, h * 0.5, w - 1, h * 0.58], fill=(255, 240, 170))  # headlight
    d.rectangle([0, h * 0.45, w * 0.03, h * 0.56], fill=(210, 20, 20))  # tail light
    d.line([w * 0.02, sill - 2, w * 0.98, sill - 2], fill=shade(body, 0.45), width=2)
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
    tan = jitter(rng, (190, 140, 85), 12)
    dep = w * 0.22  # the visible depth of the top/side faces
    fw, fy = w - dep, dep * 0.6
    d.polygon([(0, fy), (dep, 0), (w - 1, 0), (fw, fy)], fill=shade(tan, 1.2))  # top
    d.polygon([(fw, fy), (w - 1, 0), (w - 1, h - 1 - fy), (fw, h - 1)], fill=shade(tan, 0.72))  # side
    d.rectangle([0, fy, fw, h - 1], fill=tan)  # front
    tape = shade(tan, 1.35)
    d.rectangle([fw * 0.42, fy, fw * 0.58, h * 0.45], fill=tape)
    d.polygon([(fw * 0.42 + dep * 0.5, fy * 0.5), (fw * 0.58 + dep * 0.5, fy * 0.5),
               (fw * 0.58, fy), (fw * 0.42, fy)], fill=tape)
    d.rectangle([fw * 0.12, h * 0.55, fw * 0.5, h * 0.85], fill=(250, 250, 250))  # shipping label
    for yy in np.linspace(h * 0.6, h * 0.8, 4):
        d.line([fw * 0.16, yy, fw * 0.44, yy], fill=(40, 40, 40), width=1)
    d.line([0, fy, fw, fy], fill=shade(tan, 0.5), width=1)
    return sp


_DOG_COLOURS = [(200, 150, 60), (110, 70, 40), (35, 32, 30), (230, 225, 215), (160, 110, 70)]


def dog(rng: np.random.Generator, w: int) -> Sprite:
    """Standing dog, facing right: stocky body, four short legs, raised tail, floppy dark ear,
    long snout with a black nose and a red collar."""
    h = int(w * 0.72)
    sp = Sprite("dog", _layer(w, h))
    d = ImageDraw.Draw(sp.image)
    fur = jitter(rng, _DOG_COLOURS[rng.integers(len(_DOG_COLOURS))], 12)
    dark = shade(fur, 0.55) if sum(fur) > 200 else (90, 70, 50)
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
    fur = jitter(rng, _CAT_COLOURS[rng.integers(len(_CAT_COLOURS))], 10)
    stripe = shade(fur, 0.55) if sum(fur) > 150 else (70, 70, 75)
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
    coat = jitter(rng, (165, 115, 65), 14)
    antlers = rng.random() < 0.5
    top = h * 0.16 if antlers else 0.0  # antlers occupy the top of the canvas
    lw = max(2, int(w * 0.035))
    for lx in (w * 0.1, w * 0.2, w * 0.55, w * 0.64):
        d.line([lx, h * 0.55, lx, h - 4], fill=shade(coat, 0.85), width=lw)
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
    d.ellipse([w * 0.6, top, w * 0.7, top + h * 0.08], fill=shade(coat, 1.1))  # ear
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

def draw_object(rng: np.random.Generator, kind: str, logo: str | None, u: float, names: set[str]) -> Sprite:
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
