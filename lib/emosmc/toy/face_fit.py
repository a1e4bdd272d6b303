"""Is an image a toy face? Fit the toy world's renderer to it (analysis by synthesis).

MTCNN, trained on photographs, passes only about 60% of clean toy renders, so it cannot say whether a
UNet sample is a toy face. The toy world can: :func:`fit_face` searches for the identity and expression
whose :func:`~emosmc.toy.faces.render` is nearest to the image, and the image is a face when the world
explains it as well as it explains the VAE's reconstructions of real toy faces.

The search. A render is linear in the identity's three colours (every pixel of the 4x super-sampled
drawing has one fill, and the Lanczos downsampling is linear), so for a given geometry, hair style and
expression the best background, hair and skin colours are a least-squares fit, from two renders (all
three colours black, then red / green / blue). Over the geometry (:data:`~emosmc.toy.faces.GEOMETRY`,
the ranges identities are drawn from), the hair style and the expression: random starts per hair style
with a neutral face, a random local search from the best few, every expression at three intensities, a
coordinate pattern search, the expressions again and a finer pattern search. About 400 renders, 1-2 s
per image on one CPU thread; deterministic given ``seed``.

The verdict (:attr:`FaceFit.is_face`): the mean absolute difference between the image and its fit is
at most :data:`RESIDUAL_MAX` over the whole image and :data:`REGION_MAX` inside the brow, eye and mouth
region, and the fitted skin colour is within :data:`SKIN_MAX` of the skin tones identities are mixed
from (a green or black blob with eyes is not a toy face). The thresholds were set on VAE
reconstructions of 64 faces of seed 20 000, which no model saw; ``benchmarks/toy_face_fit.py`` checks
the rule on the benchmark's own faces and on images that are not faces. Its limit: it tests that an
image is drawn like a toy face, not that its features are right -- a face turned upside down keeps a
face's colours and outline and can pass. The fitted identity also lets
:func:`emosmc.ground_truth.true_expression` judge a sample's expression, less surely than the true
identity: on reconstructions it says "unclear" on about a fifth and is right on 0.94-1.00 of the rest.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Sequence

import numpy as np
import torch

from ..labels import EMOTIONS
from .faces import _SKINS, GEOMETRY, HAIR_STYLES, Identity, face_regions, render

__all__ = ["FaceFit", "fit_face", "fit_faces", "skin_distance", "RESIDUAL_MAX", "REGION_MAX", "SKIN_MAX"]

# Calibrated on VAE reconstructions of 64 faces of seed 20 000 (no model saw them): the largest residual
# was 9.3, inside the expression region 16.4, and the largest skin distance 0.069; the thresholds add a
# margin. The skin bound also covers the renderer's own colour noise (0.03 per channel puts 99.9% of
# identities within 0.11 of the tones).
RESIDUAL_MAX = 10.0  # mean absolute difference, 0-255 scale
REGION_MAX = 17.0  # the same inside the expression region
SKIN_MAX = 0.12  # RGB distance in [0, 1] to the nearest mix of two skin tones
INTENSITIES = (0.75, 0.875, 1.0)
_BLACK = (0.0, 0.0, 0.0)


@dataclass
class FaceFit:
    """The nearest render found: ``identity`` (with fitted colours), ``expression``, ``intensity``;
    ``residual``, the mean absolute difference to the image (0-255), and ``region_residual``, the same
    inside the fit's brow, eye and mouth region (features in the wrong place: an upside-down face);
    ``skin_distance``, see :func:`skin_distance`."""

    identity: Identity
    expression: str
    intensity: float
    residual: float
    region_residual: float
    skin_distance: float

    @property
    def is_face(self) -> bool:
        return self.residual <= RESIDUAL_MAX and self.region_residual <= REGION_MAX and self.skin_distance <= SKIN_MAX

    def render(self, size: int = 64) -> np.ndarray:
        return render(self.identity, self.expression, size, self.intensity)


def skin_distance(rgb: Sequence[float]) -> float:
    """RGB distance (in ``[0, 1]``) from a colour to the nearest mix of two of the skin tones that
    identities are drawn from."""
    c = np.asarray(rgb, dtype=np.float64)
    best = np.inf
    for i in range(len(_SKINS)):
        for j in range(i, len(_SKINS)):
            a, v = _SKINS[i], _SKINS[j] - _SKINS[i]
            t = 0.0 if i == j else float(np.clip(np.dot(c - a, v) / np.dot(v, v), 0, 1))
            best = min(best, float(np.linalg.norm(c - a - t * v)))
    return best


class _Search:
    """Every candidate render of one image, scored by the least-squares colour fit."""

    def __init__(self, image: np.ndarray):
        self.y = image.astype(np.float64)
        self.size = image.shape[0]

    def score(self, geometry: Identity, expression: str, intensity: float):
        base = render(replace(geometry, skin=_BLACK, hair=_BLACK, background=_BLACK), expression, self.size,
                      intensity).astype(np.float64)
        rgb = render(replace(geometry, background=(1.0, 0, 0), hair=(0, 1.0, 0), skin=(0, 0, 1.0)), expression,
                     self.size, intensity).astype(np.float64)
        cover = ((rgb - base) / 255.0).reshape(-1, 3)  # coverage of background, hair, skin per pixel
        target = (self.y - base).reshape(-1, 3)
        colours = np.linalg.solve(cover.T @ cover + 1e-3 * np.eye(3), cover.T @ target).clip(0, 255)
        pred = (base.reshape(-1, 3) + cover @ colours).clip(0, 255)
        fitted = replace(geometry, background=tuple(colours[0] / 255), hair=tuple(colours[1] / 255),
                         skin=tuple(colours[2] / 255))
        return float(np.abs(pred - self.y.reshape(-1, 3)).mean()), fitted, expression, intensity

    def best_expression(self, cur):
        for e in EMOTIONS:
            for s in INTENSITIES:
                cand = self.score(cur[1], e, s)
                if cand[0] < cur[0]:
                    cur = cand
        return cur

    def pattern(self, cur, step: float, rounds: int):
        """Coordinate pattern search over the geometry; the step (a fraction of each range) halves every round."""
        for k in range(rounds):
            for name, (lo, hi) in GEOMETRY.items():
                for sign in (1, -1):
                    value = getattr(cur[1], name) + sign * step / 2**k * (hi - lo)
                    cand = self.score(replace(cur[1], **{name: value}), cur[2], cur[3])
                    if cand[0] < cur[0]:
                        cur = cand
                        break
        return cur


def fit_face(image, seed: int = 0, starts: int = 30, local_steps: int = 60, keep: int = 3) -> FaceFit:
    """Fit the toy renderer to one image: a ``(3, H, W)`` tensor in ``[-1, 1]`` or an ``(H, W, 3)`` uint8
    array. ``starts`` random geometries per hair style, then ``local_steps`` random local moves shared
    among the ``keep`` best (see the module's docstring for the rest)."""
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"fit_face takes one (3, H, W) image in [-1, 1]; got shape {tuple(image.shape)}")
        image = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] != image.shape[1]:
        raise ValueError(f"fit_face takes a square RGB image; got shape {image.shape}")
    rng = np.random.default_rng(seed)
    search = _Search(image)
    cands = []
    for style in HAIR_STYLES:
        for _ in range(starts):
            geometry = Identity(skin=_BLACK, hair=_BLACK, background=_BLACK, hair_style=style,
                                **{k: float(rng.uniform(lo, hi)) for k, (lo, hi) in GEOMETRY.items()})
            cands.append(search.score(geometry, "neutral", 1.0))
    cands.sort(key=lambda c: c[0])
    best = cands[0]
    moves = max(1, local_steps // keep)
    for cur in cands[:keep]:
        for i in range(moves):
            scale = 0.15 * (1 - i / moves) + 0.02
            moved = replace(cur[1], **{k: float(np.clip(getattr(cur[1], k) + rng.normal(0, scale * (hi - lo)),
                                                        lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)))
                                       for k, (lo, hi) in GEOMETRY.items()})
            cand = search.score(moved, cur[2], cur[3])
            if cand[0] < cur[0]:
                cur = cand
        if cur[0] < best[0]:
            best = cur
    best = search.best_expression(best)
    best = search.best_expression(search.pattern(best, 0.06, 4))
    residual, identity, expression, intensity = search.pattern(best, 0.02, 2)
    region = face_regions(identity, image.shape[0])["expression"]
    diff = np.abs(render(identity, expression, image.shape[0], intensity).astype(np.float64) - image)
    return FaceFit(identity, expression, intensity, residual, float(diff[region].mean()),
                   skin_distance(identity.skin))


def fit_faces(images: torch.Tensor, seed: int = 0, progress: bool = False, **kw) -> List[FaceFit]:
    """:func:`fit_face` for every image of a ``(B, 3, H, W)`` batch in ``[-1, 1]`` (1-2 s each)."""
    from tqdm.auto import tqdm

    return [fit_face(im, seed=seed, **kw) for im in tqdm(images, desc="face fit", disable=not progress)]
