"""Procedural "toy faces": an identity plus one of seven expressions, drawn with PIL.

The world in which the whole pipeline runs on a laptop CPU. A face is an
:class:`Identity` (skin, hair colour and style, background, face shape and size,
eye size and spacing) rendered with one of the seven expression labels of the real
classifier (:data:`EMOTIONS`). The same identity can be rendered with every expression:
the ground truth of a counterfactual.

The world is drawn to be legible at the models' resolution (a 64x64 face, a 4x16x16
latent: one latent pixel is a 4x4 block). The face fills most of the frame and always
sits in the same place. Every expression is a large, distinct shape: an open smile with
teeth under crescent eyes (happy), a thick frown under raised inner brows (sad), bared
clenched teeth under a V of brows (angry), a round "O" under high brows and wide eyes
(surprise), a wide open grimace with wide eyes (fear), a one-sided sneer with nose
wrinkles and one lowered brow (disgust). Brows are 4.5 px bars, a mouth 14-30 px wide:
going from neutral to an expression changes about 470-670 pixels and 49-63 latent pixels
(``benchmarks/toy_footprint.py``; the first design changed 160-220 pixels, in 1-2 px
strokes, thinner than one latent pixel).

Faces are drawn at 4x the output size and downsampled with a Lanczos filter
for clean edges. Everything is deterministic given a seed.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Tuple

import numpy as np
from PIL import Image, ImageDraw

from ..labels import EMOTIONS

__all__ = [
    "TRAIN_SEED",
    "GEOMETRY",
    "SKIN_TONES",
    "HAIR_COLOURS",
    "HELDOUT_SEED",
    "TUNING_SEED",
    "BENCHMARK_SEED",
    "INTENSITY_RANGE",
    "Identity",
    "sample_identity",
    "render",
    "face_regions",
    "expression_parts",
]


# Identity seeds: the toy models train on TRAIN_SEED's faces; every evaluation uses others. HELDOUT_SEED:
# the notebooks, galleries and tests. TUNING_SEED: the faces the toy edit settings were chosen on.
# BENCHMARK_SEED: the quality benchmark's faces (benchmarks/toy_quality.py), on which no setting or model
# was ever chosen.
TRAIN_SEED, HELDOUT_SEED, TUNING_SEED, BENCHMARK_SEED = 0, 10_000, 10_001, 70_000
# The expression intensities the datasets draw from (uniform): near full, so that each class is one clear shape.
INTENSITY_RANGE = (0.85, 1.0)

HAIR_STYLES = ("short", "long", "bob", "spiky", "bald")
# The ranges :func:`sample_identity` draws the geometry from (uniform, in this order); the face fit of
# :mod:`emosmc.toy.face_fit` searches the same ranges. The face fills most of the frame and always sits in
# the same place: no pose jitter and no tilt (an Identity's dx, dy and tilt stay 0 unless set by hand).
GEOMETRY = {"face_width": (0.36, 0.42), "face_height": (0.40, 0.45), "eye_size": (0.9, 1.1),
            "eye_spacing": (0.92, 1.08)}


@dataclass(frozen=True)
class Identity:
    skin: Tuple[float, float, float]
    hair: Tuple[float, float, float]
    background: Tuple[float, float, float]
    hair_style: str
    face_width: float  # half-width of the face ellipse, as a fraction of the image
    face_height: float
    eye_size: float
    eye_spacing: float
    dx: float = 0.0  # pose offset (fraction of the image); 0 for every sampled identity
    dy: float = 0.0
    tilt: float = 0.0  # degrees; 0 for every sampled identity

    def to_row(self) -> dict:
        d = asdict(self)
        for k in ("skin", "hair", "background"):
            d.update({f"{k}_{c}": round(v, 4) for c, v in zip("rgb", d.pop(k))})
        return d

    @staticmethod
    def from_row(row: dict) -> "Identity":
        kw = {}
        for f in fields(Identity):
            if f.name in ("skin", "hair", "background"):
                kw[f.name] = tuple(float(row[f"{f.name}_{c}"]) for c in "rgb")
            elif f.name == "hair_style":
                kw[f.name] = row[f.name]
            elif f.name in row:
                kw[f.name] = float(row[f.name])
        return Identity(**kw)


# Palettes that identities mix two entries of (plus a little noise): skin tones and hair colours, RGB in [0, 1].
SKIN_TONES = np.array([[255, 224, 196], [241, 194, 160], [224, 172, 130], [198, 134, 90], [141, 85, 54], [95, 60, 40]]) / 255
HAIR_COLOURS = np.array([[20, 20, 20], [90, 55, 30], [160, 110, 60], [230, 200, 120], [170, 60, 30], [200, 200, 200]]) / 255


def sample_identity(rng: np.random.Generator | int) -> Identity:
    """A random identity. ``rng`` is a numpy Generator or a seed."""
    rng = np.random.default_rng(rng)

    def mix(palette):
        i, j = rng.integers(len(palette), size=2)
        t = rng.uniform()
        return tuple(float(v) for v in np.clip((1 - t) * palette[i] + t * palette[j] + rng.normal(0, 0.03, 3), 0, 1))

    bg = rng.uniform(0.15, 0.95, 3)
    return Identity(
        skin=mix(SKIN_TONES),
        hair=mix(HAIR_COLOURS),
        background=tuple(float(v) for v in bg),
        hair_style=str(rng.choice(HAIR_STYLES)),
        **{name: float(rng.uniform(lo, hi)) for name, (lo, hi) in GEOMETRY.items()},
    )


# expression -> its drawing parameters; ``intensity`` interpolates the numbers from neutral's.
# curve > 0 lifts the mouth corners (smile), < 0 drops them; open: how far the mouth opens; width: of the
# mouth; brow_tilt > 0 lowers the inner ends (angry), < 0 raises them (sad, fear); brow_raise lifts both;
# eye_open scales the eye's height; eye_smile pushes a lower lid up (happy's crescent eyes).
# Shapes: teeth (a white upper row), clench (bared, clenched teeth), round (an "O"), asym (a one-sided sneer).
_EXPRESSIONS = {
    "neutral": dict(curve=0.0, open=0.0, width=1.0, brow_tilt=0.0, brow_raise=0.0, eye_open=1.0, eye_smile=0.0),
    "happy": dict(curve=1.0, open=0.75, width=1.25, brow_tilt=0.0, brow_raise=0.35, eye_open=1.0, eye_smile=1.0,
                  teeth=True),
    "sad": dict(curve=-0.9, open=0.0, width=0.9, brow_tilt=-1.1, brow_raise=0.25, eye_open=0.6, eye_smile=0.0),
    "angry": dict(curve=-0.15, open=0.55, width=1.15, brow_tilt=1.3, brow_raise=-0.3, eye_open=0.55, eye_smile=0.0,
                  clench=True),
    "surprise": dict(curve=0.0, open=1.0, width=0.55, brow_tilt=0.0, brow_raise=1.3, eye_open=1.6, eye_smile=0.0,
                     round=True),
    "fear": dict(curve=-0.5, open=0.85, width=1.3, brow_tilt=-1.0, brow_raise=0.8, eye_open=1.5, eye_smile=0.0,
                 teeth=True),
    "disgust": dict(curve=-0.35, open=0.25, width=1.0, brow_tilt=1.0, brow_raise=-0.2, eye_open=0.5, eye_smile=0.0,
                    asym=True),
}
INK, MOUTH_DARK, TEETH, SCLERA, PUPIL = (35, 25, 25), (70, 20, 28), (245, 245, 240), (250, 250, 250), (30, 30, 60)


def _rot(points, center, deg):
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    cx, cy = center
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in points]


class _Canvas:
    """A supersampled drawing surface in face coordinates: the centre ``(cx, cy)``, the face's half-sizes
    ``(fw, fh)`` and the identity's tilt, which every shape is rotated by."""

    def __init__(self, identity: Identity, size: int, supersample: int):
        self.S = S = size * supersample
        self.img = Image.new("RGB", (S, S), tuple(int(255 * v) for v in identity.background))
        self.d = ImageDraw.Draw(self.img)
        self.cx, self.cy = S * (0.5 + identity.dx), S * (0.53 + identity.dy)
        self.fw, self.fh = S * identity.face_width, S * identity.face_height
        self.tilt = identity.tilt
        self.hair = tuple(int(255 * v) for v in identity.hair)
        self.skin = tuple(int(255 * v) for v in identity.skin)

    def poly(self, points, **kw):
        self.d.polygon(_rot(points, (self.cx, self.cy), self.tilt), **kw)

    def line(self, points, width, fill=INK):
        self.d.line(_rot(points, (self.cx, self.cy), self.tilt), fill=fill, width=int(width), joint="curve")
        r = width / 2  # round caps
        for x, y in _rot([points[0], points[-1]], (self.cx, self.cy), self.tilt):
            self.d.ellipse([x - r, y - r, x + r, y + r], fill=fill)

    def ellipse(self, x, y, rx, ry, **kw):
        pts = [(x + rx * math.cos(t), y + ry * math.sin(t)) for t in np.linspace(0, 2 * math.pi, 48)]
        self.poly(pts, **kw)


def render(identity: Identity, expression: str, size: int = 64, intensity: float = 1.0,
           supersample: int = 4) -> np.ndarray:
    """Render one face as a ``(size, size, 3)`` uint8 array.

    ``intensity`` in ``[0, 1]`` interpolates the expression's parameters from neutral
    (0) to full (1); the datasets draw it from :data:`INTENSITY_RANGE`. Every expression feature is bold at 64 px: a
    mouth 14-30 px wide, brows 4.5 px thick and 13 px long, eyes 10 px wide (a latent pixel is 4 px).
    """
    if expression not in _EXPRESSIONS:
        raise ValueError(f"unknown expression {expression!r}; choose one of {list(EMOTIONS)}")
    neutral = _EXPRESSIONS["neutral"]
    e = {k: (neutral[k] + (v - neutral[k]) * intensity if k in neutral else v)
         for k, v in _EXPRESSIONS[expression].items()}
    c = _Canvas(identity, size, supersample)
    _draw_head(c, identity.hair_style)
    ey, ex, ry0 = _draw_eyes(c, identity, e)
    _draw_brows(c, e, ex, ey, ry0)
    _draw_nose(c, e)
    _draw_mouth(c, e, intensity)
    return np.array(c.img.resize((size, size), Image.LANCZOS))


def _draw_head(c: _Canvas, style: str) -> None:
    """Hair behind the face, the face and ears, then the fringe."""
    cx, cy, fw, fh, hair = c.cx, c.cy, c.fw, c.fh, c.hair
    if style == "long":
        c.poly([(cx - fw * 1.15, cy - fh * 0.4), (cx + fw * 1.15, cy - fh * 0.4), (cx + fw * 1.2, cy + fh * 1.2),
                (cx - fw * 1.2, cy + fh * 1.2)], fill=hair)
    if style in ("long", "bob", "short", "spiky"):
        c.ellipse(cx, cy - fh * 0.2, fw * 1.12, fh * 0.95, fill=hair)
    if style == "bob":
        c.poly([(cx - fw * 1.12, cy - fh * 0.3), (cx + fw * 1.12, cy - fh * 0.3), (cx + fw * 1.08, cy + fh * 0.5),
                (cx - fw * 1.08, cy + fh * 0.5)], fill=hair)
    c.ellipse(cx - fw * 0.98, cy, fw * 0.14, fh * 0.2, fill=c.skin)
    c.ellipse(cx + fw * 0.98, cy, fw * 0.14, fh * 0.2, fill=c.skin)
    c.ellipse(cx, cy, fw, fh, fill=c.skin)
    if style in ("short", "bob", "long"):
        c.ellipse(cx, cy - fh * 0.98, fw * 0.95, fh * 0.24, fill=hair)
    elif style == "spiky":
        pts = []
        for i in range(7):
            x = cx - fw * 0.9 + 1.8 * fw * i / 6
            pts += [(x, cy - fh * 0.78), (x + fw * 0.15, cy - fh * 1.2)]
        pts += [(cx + fw * 0.9, cy - fh * 0.78), (cx + fw * 0.9, cy - fh * 1.05), (cx - fw * 0.9, cy - fh * 1.05)]
        c.poly(pts, fill=hair)


def _draw_eyes(c: _Canvas, ident: Identity, e: dict):
    """A white eye with a dark outline and pupil; happy pushes a lower lid up into a crescent. Returns the
    eyes' height, half-spacing and neutral half-height, which the brows sit on."""
    S, cx = c.S, c.cx
    ex = c.fw * 0.42 * ident.eye_spacing
    ey = c.cy - c.fh * 0.05
    rx, ry0 = S * 0.075 * ident.eye_size, S * 0.05 * ident.eye_size
    for side in (-1, 1):
        ry = ry0 * e["eye_open"] * (0.75 if (e.get("asym") and side == 1) else 1.0)
        x = cx + side * ex
        c.ellipse(x, ey, rx + S * 0.01, ry + S * 0.01, fill=INK)
        c.ellipse(x, ey, rx, ry, fill=SCLERA)
        pr = S * 0.032 * ident.eye_size
        c.ellipse(x, ey, pr, min(pr, ry), fill=PUPIL)
        if e["eye_smile"] > 0.05:
            lid = e["eye_smile"]
            c.ellipse(x, ey + ry0 * (2.3 - 1.5 * lid), rx * 1.35, ry0 * 1.4, fill=c.skin)
    return ey, ex, ry0


def _draw_brows(c: _Canvas, e: dict, ex: float, ey: float, ry0: float) -> None:
    """Thick bars; inner ends down (angry) or up (sad, fear), both raised (surprise)."""
    S = c.S
    by = ey - ry0 - S * 0.075 - S * 0.06 * e["brow_raise"]
    bw = S * 0.1
    for side in (-1, 1):
        tilt = e["brow_tilt"] * (0.2 if (e.get("asym") and side == -1) else 1.0)
        inner = (c.cx + side * (ex - bw), by + S * 0.07 * tilt)
        outer = (c.cx + side * (ex + bw), by - S * 0.03 * tilt)
        c.line([outer, inner], S * 0.07)


def _draw_nose(c: _Canvas, e: dict) -> None:
    """The nose, and disgust's wrinkles beside it."""
    S, cx, cy, fh = c.S, c.cx, c.cy, c.fh
    c.line([(cx, cy + fh * 0.05), (cx - S * 0.02, cy + fh * 0.27), (cx + S * 0.015, cy + fh * 0.3)], S * 0.02)
    if e.get("asym"):
        for k in (1.0, 1.6):
            c.line([(cx + k * S * 0.04, cy + fh * 0.06), (cx + k * S * 0.06, cy + fh * 0.2)], S * 0.025)


def _draw_mouth(c: _Canvas, e: dict, intensity: float) -> None:
    """A parabola for the upper lip; opened into a dark shape, with teeth where the expression shows them."""
    S, cx = c.S, c.cx
    my = c.cy + c.fh * 0.52
    mw = S * 0.17 * e["width"]
    curve = S * 0.11 * e["curve"]
    opening = S * 0.16 * e["open"]
    xs = np.linspace(-1, 1, 33)
    lift = S * 0.1 * np.clip(xs, 0, None) ** 2 * (1.0 if e.get("asym") else 0.0) * intensity
    upper = [(cx + mw * x, my - curve * (x**2 - 0.3) - l) for x, l in zip(xs, lift)]
    lower = [(px, py + opening * (1 - x**2)) for (px, py), x in zip(upper, xs)]
    if e.get("round"):
        c.ellipse(cx, my + S * 0.04, mw, S * 0.08 * e["open"] + S * 0.02, fill=INK)
        c.ellipse(cx, my + S * 0.04, mw - S * 0.02, S * 0.08 * e["open"], fill=MOUTH_DARK)
    elif e.get("clench") and opening > S * 0.01:
        top = [(px, py - opening * 0.45 * (1 - x**2) ** 0.5) for (px, py), x in zip(upper, xs)]
        bot = [(px, py + opening * 0.55 * (1 - x**2) ** 0.5) for (px, py), x in zip(upper, xs)]
        c.poly(top + bot[::-1], fill=TEETH, outline=INK, width=int(S * 0.02))
        c.line(upper, S * 0.02)
        for x in (-0.6, -0.2, 0.2, 0.6):
            px = cx + mw * x
            py = my - curve * (x**2 - 0.3)
            c.line([(px, py - opening * 0.4), (px, py + opening * 0.5)], S * 0.012)
    elif opening > S * 0.01:
        c.poly(upper + lower[::-1], fill=MOUTH_DARK, outline=INK, width=int(S * 0.025))
        if e.get("teeth"):
            band = [(px, py + opening * 0.35 * (1 - x**2)) for (px, py), x in zip(upper, xs)]
            c.poly(upper[3:-3] + band[3:-3][::-1], fill=TEETH)
        c.line(upper, S * 0.025)
    else:
        c.line(upper, S * 0.05, fill=MOUTH_DARK)


def expression_parts(identity: Identity, size: int = 64) -> Tuple[np.ndarray, np.ndarray]:
    """Boolean ``(size, size)`` masks of the two parts of the expression region: the brows and eyes
    (with disgust's nose wrinkles), and the mouth. Every expression draws inside them."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    cx, cy = size * (0.5 + identity.dx), size * (0.53 + identity.dy)
    fw, fh = size * identity.face_width, size * identity.face_height
    u, v = (xx - cx) / fw, (yy - cy) / fh
    eyes_brows = (np.abs(u) < 0.9) & (v > -0.85) & (v < 0.22)
    mouth = (np.abs(u) < 0.8) & (v > 0.24) & (v < 0.98)
    return eyes_brows, mouth


def face_regions(identity: Identity, size: int = 64) -> dict:
    """Boolean masks ``(size, size)``: ``"expression"`` covers brows, eyes and mouth (what an
    emotion edit may change); ``"identity"`` is everything else (skin, hair, background)."""
    eyes_brows, mouth = expression_parts(identity, size)
    expr = eyes_brows | mouth
    return {"expression": expr, "identity": ~expr}
