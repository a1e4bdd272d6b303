"""Procedural "toy faces": an identity plus one of seven expressions, drawn with PIL.

The world in which the whole pipeline runs on a laptop CPU. A face is an
:class:`Identity` (skin, hair colour and style, background, face shape and size,
eye size and spacing, a small pose jitter) rendered with one of the seven
expression labels of the real classifier (:data:`EMOTIONS`), expressed through
mouth curvature and openness, brow angle and height and eye openness. The same
identity can be rendered with every expression: the ground truth of a
counterfactual.

Faces are drawn at 4x the output size and downsampled with a Lanczos filter
for clean edges. Everything is deterministic given a seed.
"""
from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable, List, Tuple

import numpy as np
from PIL import Image, ImageDraw

from ..labels import EMOTIONS

__all__ = [
    "TRAIN_SEED",
    "GEOMETRY",
    "SKIN_TONES",
    "HAIR_COLOURS",
    "HELDOUT_SEED",
    "Identity",
    "sample_identity",
    "render",
    "write_dataset",
    "face_regions",
    "add_bad_files",
]


# Identity seeds: the toy models train on TRAIN_SEED's faces; every evaluation uses others
# (HELDOUT_SEED for the notebooks, galleries and tests; the benchmarks name their own).
TRAIN_SEED, HELDOUT_SEED = 0, 10_000

HAIR_STYLES = ("short", "long", "bob", "spiky", "bald")
# The ranges :func:`sample_identity` draws the geometry from (uniform, in this order); the face fit of
# :mod:`emosmc.toy.face_fit` searches the same ranges.
GEOMETRY = {"face_width": (0.27, 0.34), "face_height": (0.34, 0.40), "eye_size": (0.85, 1.2),
            "eye_spacing": (0.85, 1.15), "dx": (-0.03, 0.03), "dy": (-0.02, 0.03), "tilt": (-6.0, 6.0)}


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
    dx: float  # pose jitter (fraction of the image)
    dy: float
    tilt: float  # degrees

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
            else:
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


# expression -> (mouth curve, mouth open, mouth width, brow tilt, brow raise, eye open, extra)
# curve > 0 smiles, brow tilt > 0 lowers the inner ends (angry), < 0 raises them (sad / fear).
_EXPRESSIONS = {
    "neutral": dict(curve=0.0, open=0.0, width=1.0, brow_tilt=0.0, brow_raise=0.0, eye_open=1.0),
    "happy": dict(curve=1.25, open=0.6, width=1.3, brow_tilt=0.0, brow_raise=0.15, eye_open=0.75),
    "sad": dict(curve=-0.9, open=0.0, width=0.95, brow_tilt=-1.0, brow_raise=0.1, eye_open=0.7),
    "angry": dict(curve=-0.35, open=0.0, width=0.9, brow_tilt=1.2, brow_raise=-0.35, eye_open=0.6),
    "surprise": dict(curve=0.0, open=1.0, width=0.55, brow_tilt=0.0, brow_raise=0.9, eye_open=1.45, round=True),
    "fear": dict(curve=-0.4, open=0.45, width=1.3, brow_tilt=-1.1, brow_raise=0.55, eye_open=1.4, teeth=True),
    "disgust": dict(curve=-0.5, open=0.15, width=1.0, brow_tilt=0.8, brow_raise=-0.25, eye_open=0.55, asym=True),
}


def _rot(points, center, deg):
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    cx, cy = center
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in points]


def render(identity: Identity, expression: str, size: int = 64, intensity: float = 1.0,
           supersample: int = 4) -> np.ndarray:
    """Render one face as a ``(size, size, 3)`` uint8 array.

    ``intensity`` in ``[0, 1]`` interpolates the expression's parameters from neutral
    (0) to full (1); the datasets use 0.75-1.0 for variety.
    """
    if expression not in _EXPRESSIONS:
        raise ValueError(f"unknown expression {expression!r}; choose one of {list(EMOTIONS)}")
    S = size * supersample
    neutral = _EXPRESSIONS["neutral"]
    e = {k: (neutral[k] + (v - neutral[k]) * intensity if k in neutral else v)
         for k, v in _EXPRESSIONS[expression].items()}
    ident = identity
    img = Image.new("RGB", (S, S), tuple(int(255 * v) for v in ident.background))
    d = ImageDraw.Draw(img)
    cx, cy = S * (0.5 + ident.dx), S * (0.53 + ident.dy)
    fw, fh = S * ident.face_width, S * ident.face_height
    hair = tuple(int(255 * v) for v in ident.hair)
    skin = tuple(int(255 * v) for v in ident.skin)
    ink = (35, 25, 25)

    def poly(points, **kw):
        d.polygon(_rot(points, (cx, cy), ident.tilt), **kw)

    def line(points, width):
        d.line(_rot(points, (cx, cy), ident.tilt), fill=ink, width=int(width), joint="curve")

    def ellipse(x, y, rx, ry, **kw):
        pts = [(x + rx * math.cos(t), y + ry * math.sin(t)) for t in np.linspace(0, 2 * math.pi, 48)]
        poly(pts, **kw)

    # hair behind the face
    style = ident.hair_style
    if style == "long":
        poly([(cx - fw * 1.2, cy - fh * 0.4), (cx + fw * 1.2, cy - fh * 0.4), (cx + fw * 1.25, cy + fh * 1.1),
              (cx - fw * 1.25, cy + fh * 1.1)], fill=hair)
    if style in ("long", "bob", "short", "spiky"):
        ellipse(cx, cy - fh * 0.25, fw * 1.15, fh * 0.95, fill=hair)
    if style == "bob":
        poly([(cx - fw * 1.15, cy - fh * 0.3), (cx + fw * 1.15, cy - fh * 0.3), (cx + fw * 1.1, cy + fh * 0.45),
              (cx - fw * 1.1, cy + fh * 0.45)], fill=hair)
    # face and ears
    ellipse(cx - fw * 0.98, cy, fw * 0.16, fh * 0.2, fill=skin)
    ellipse(cx + fw * 0.98, cy, fw * 0.16, fh * 0.2, fill=skin)
    ellipse(cx, cy, fw, fh, fill=skin)
    # fringe
    if style in ("short", "bob", "long"):
        ellipse(cx, cy - fh * 0.88, fw * 0.95, fh * 0.3, fill=hair)
    elif style == "spiky":
        pts = []
        for i in range(9):
            x = cx - fw + 2 * fw * i / 8
            pts += [(x, cy - fh * 0.7), (x + fw / 8, cy - fh * 1.25)]
        pts += [(cx + fw, cy - fh * 0.7), (cx + fw, cy - fh * 0.95), (cx - fw, cy - fh * 0.95)]
        poly(pts, fill=hair)

    # eyes
    ex = fw * 0.42 * ident.eye_spacing
    ey = cy - fh * 0.12
    er = S * 0.045 * ident.eye_size
    open_ = e["eye_open"]
    for side in (-1, 1):
        squint = open_ * (0.85 if (e.get("asym") and side == 1) else 1.0)
        ellipse(cx + side * ex, ey, er * 1.25, er * max(squint, 0.15), fill=(250, 250, 250))
        ellipse(cx + side * ex, ey, er * 0.55, er * 0.55 * min(max(squint, 0.3), 1.0), fill=(30, 30, 60))
    # brows: inner end tilted down (angry) or up (sad/fear)
    by = ey - er * (1.5 + 0.4 * open_) - S * 0.035 * e["brow_raise"]
    bw = S * 0.07
    for side in (-1, 1):
        inner = (cx + side * (ex - bw * 0.9), by + S * 0.03 * e["brow_tilt"])
        outer = (cx + side * (ex + bw * 0.9), by - S * 0.01 * e["brow_tilt"])
        if e.get("asym") and side == 1:
            inner = (inner[0], inner[1] - S * 0.02)
        line([outer, inner], S * 0.022)
    # nose (and disgust's wrinkles)
    line([(cx, cy + fh * 0.02), (cx - S * 0.015, cy + fh * 0.25), (cx + S * 0.01, cy + fh * 0.27)], S * 0.012)
    if e.get("asym"):
        for k in (-1, 1):
            line([(cx + k * S * 0.035, cy + fh * 0.08), (cx + k * S * 0.05, cy + fh * 0.16)], S * 0.01)
    # mouth: a parabola for the centre line, opened into a dark polygon
    my = cy + fh * 0.55
    mw = S * 0.12 * e["width"]
    curve = S * 0.06 * e["curve"]
    opening = S * 0.07 * e["open"]
    xs = np.linspace(-1, 1, 25)
    lift = np.zeros_like(xs)
    if e.get("asym"):
        lift = S * 0.035 * np.clip(xs, 0, None) ** 2  # one corner pulled up
    center = [(cx + mw * x, my - curve * (x**2 - 0.3) - l) for x, l in zip(xs, lift)]
    if e.get("round"):
        ellipse(cx, my + opening * 0.1, mw, opening * 0.9 + S * 0.01, fill=(60, 20, 25))
    elif opening > S * 0.004:
        lower = [(x, y + opening * (1 - ((px - cx) / mw) ** 2)) for (x, y), px in zip(center, [p[0] for p in center])]
        poly(center + lower[::-1], fill=(60, 20, 25))
        if e.get("teeth") or expression == "happy":
            tooth_h = opening * (0.35 if expression == "happy" else 0.5)
            teeth = [(x, y + 1) for x, y in center[4:-4]]
            poly(teeth + [(x, y + tooth_h) for x, y in teeth[::-1]], fill=(245, 245, 240))
        line(center, S * 0.012)
    else:
        line(center, S * 0.018)
    # cheeks for happy
    if expression == "happy":
        for side in (-1, 1):
            ellipse(cx + side * fw * 0.55, cy + fh * 0.3, S * 0.035, S * 0.02, fill=tuple(min(255, int(v * 1.0 + 25)) if i == 0 else int(v * 0.9) for i, v in enumerate(skin)))
    return np.array(img.resize((size, size), Image.LANCZOS))


def face_regions(identity: Identity, size: int = 64) -> dict:
    """Boolean masks ``(size, size)``: ``"expression"`` covers brows, eyes and mouth (what an
    emotion edit may change); ``"identity"`` is everything else (skin, hair, background)."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    cx, cy = size * (0.5 + identity.dx), size * (0.53 + identity.dy)
    fw, fh = size * identity.face_width, size * identity.face_height
    u, v = (xx - cx) / fw, (yy - cy) / fh
    eyes_brows = (np.abs(u) < 0.95) & (v > -0.62) & (v < 0.05)
    mouth = (np.abs(u) < 0.75) & (v > 0.28) & (v < 0.85)
    expr = eyes_brows | mouth
    return {"expression": expr, "identity": ~expr}


def write_dataset(root: str | Path, n_identities: int, seed: int = 0, size: int = 64,
                  expressions: Iterable[str] = EMOTIONS, intensity_range=(0.75, 1.0)) -> Path:
    """Render ``n_identities`` x ``len(expressions)`` faces into ``root/images/*.png`` and a
    ``root/labels.csv`` with the file name, identity id, expression, intensity and every identity
    attribute. Returns the CSV path. Loadable with :func:`emosmc.data.ImageFolderDataset`."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows: List[dict] = []
    for i in range(n_identities):
        ident = sample_identity(rng)
        for expr in expressions:
            s = float(rng.uniform(*intensity_range))
            name = f"id{i:05d}_{expr}.png"
            Image.fromarray(render(ident, expr, size, s)).save(root / "images" / name)
            rows.append({"file": f"images/{name}", "identity": i, "expression": expr, "intensity": round(s, 3),
                         **ident.to_row()})
    path = root / "labels.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def add_bad_files(folder: str | Path) -> List[str]:
    """Drop the usual troublemakers of a scraped image folder into ``folder`` (made from its first
    face): a truncated PNG, a text file named ``.jpg``, a 10x10 image, and grayscale, RGBA and CMYK
    copies. Loaders must list the first three as skipped and convert the others."""
    folder = Path(folder)
    first = sorted(folder.glob("*.png"))[0]
    face = Image.open(first).convert("RGB")
    (folder / "zz_truncated.png").write_bytes(first.read_bytes()[:200])
    (folder / "zz_notes.jpg").write_text("this is not an image")
    face.crop((0, 0, 10, 10)).save(folder / "zz_tiny.png")
    face.convert("L").save(folder / "zz_gray.png")
    face.convert("RGBA").save(folder / "zz_rgba.png")
    face.convert("CMYK").save(folder / "zz_cmyk.jpg")
    return ["zz_truncated.png", "zz_notes.jpg", "zz_tiny.png", "zz_gray.png", "zz_rgba.png", "zz_cmyk.jpg"]
