"""Is an image a toy face? Fit the toy world's renderer to it (analysis by synthesis).

MTCNN, trained on photographs, passes only about 60% of clean toy renders, so it cannot say whether a
UNet sample is a toy face. The toy world can: :func:`fit_face` searches for the identity and expression
whose :func:`~emosmc.toy.faces.render` is nearest to the image, and the image is a face when the world
explains it as well as it explains the VAE's reconstructions of real toy faces.

The search. A render is nearly linear in the identity's three colours (every pixel of the 4x
super-sampled drawing has one fill and the Lanczos downsampling is linear; only the clipping of its
ringing to 0-255 is not), so for a given geometry, hair style and
expression the best background, hair and skin colours are a least-squares fit, from two probe renders in
mid-grey colours (where the ringing is not clipped). Over the geometry
(:data:`~emosmc.toy.faces.GEOMETRY`, the ranges identities are drawn from, widened by a tenth), the hair
style and the expression: random starts per hair style with a neutral face; from the two best, every
expression at three intensities and coordinate sweeps over each geometry parameter (its whole range, then
finer); then every hair style and expression again and two fine sweeps. About 450 candidates (two
renders each), about 2 s per image on one CPU thread; deterministic given ``seed``. The residuals of the
verdict are measured on a true render of the final fit, not on the linear model.

The verdict (:attr:`FaceFit.is_face`): the mean absolute difference between the image and its fit is
at most :data:`RESIDUAL_MAX` over the whole image and :data:`REGION_MAX` inside the brow, eye and mouth
region, and the fitted skin colour is within :data:`SKIN_MAX` of the skin tones identities are mixed
from (a green or black blob with eyes is not a toy face). The thresholds were set on VAE
reconstructions of 64 faces of seed 20 000, which no model saw; ``benchmarks/toy_face_fit.py`` checks
the rule on the benchmark's own faces and on images that are not faces (reconstructions turned upside
down or cut into shuffled tiles). Its limit: it tests that an image is drawn like a toy face, not that
its expression is right. The fitted identity also lets :func:`emosmc.ground_truth.true_expression` judge
a sample's expression, less surely than the true identity (the benchmark prints how often it is clear and
right on reconstructions).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Sequence

import numpy as np
import torch

from ..data import to_uint8
from ..ground_truth import INTENSITIES
from ..labels import EMOTIONS
from .faces import GEOMETRY, HAIR_STYLES, SKIN_TONES, Identity, face_regions, render

__all__ = ["FaceFit", "fit_face", "fit_faces", "skin_distance", "RESIDUAL_MAX", "REGION_MAX", "SKIN_MAX"]

# Calibrated on VAE reconstructions of 64 faces of seed 20 000 (no model saw them): each threshold is the
# largest value there plus a tenth (``python benchmarks/toy_face_fit.py --calibrate``, kept in
# benchmarks/results/toy_face_fit_calibration.json). The skin bound is a tenth above what the renderer's own
# colour noise needs (0.03 per channel puts 99.9% of identities within 0.106 of the tones).
RESIDUAL_MAX = 7.6  # mean absolute difference, 0-255 scale
REGION_MAX = 9.2  # the same inside the expression region
SKIN_MAX = 0.12  # RGB distance in [0, 1] to the nearest mix of two skin tones
_BLACK = (0.0, 0.0, 0.0)
_GREY, _PROBE = 0.3, 0.7  # probe colours: every channel 0.3, then one channel per region raised to 0.7


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
    for i in range(len(SKIN_TONES)):
        for j in range(i, len(SKIN_TONES)):
            a, v = SKIN_TONES[i], SKIN_TONES[j] - SKIN_TONES[i]
            t = 0.0 if i == j else float(np.clip(np.dot(c - a, v) / np.dot(v, v), 0, 1))
            best = min(best, float(np.linalg.norm(c - a - t * v)))
    return best


class _Search:
    """Every candidate render of one image, scored by the least-squares colour fit."""

    def __init__(self, image: np.ndarray):
        self.y = image.astype(np.float64)
        self.size = image.shape[0]

    def score(self, geometry: Identity, expression: str, intensity: float):
        grey = (_GREY,) * 3
        base = render(replace(geometry, skin=grey, hair=grey, background=grey), expression, self.size,
                      intensity).astype(np.float64)
        hi, lo = _PROBE, _GREY
        probe = render(replace(geometry, background=(hi, lo, lo), hair=(lo, hi, lo), skin=(lo, lo, hi)), expression,
                       self.size, intensity).astype(np.float64)
        cover = ((probe - base) / (255.0 * (hi - lo))).reshape(-1, 3)  # coverage of background, hair, skin per pixel
        fixed = base.reshape(-1, 3) - cover.sum(1, keepdims=True) * 255.0 * lo  # what the fixed colours draw
        target = self.y.reshape(-1, 3) - fixed
        colours = np.linalg.solve(cover.T @ cover + 1e-3 * np.eye(3), cover.T @ target).clip(0, 255)
        pred = (fixed + cover @ colours).clip(0, 255)
        fitted = replace(geometry, background=tuple(colours[0] / 255), hair=tuple(colours[1] / 255),
                         skin=tuple(colours[2] / 255))
        return float(np.abs(pred - self.y.reshape(-1, 3)).mean()), fitted, expression, intensity

    def best_expression(self, cur):
        for e in EMOTIONS:
            for s in (1.0,) if e == "neutral" else INTENSITIES:  # neutral is the same at every intensity
                cand = self.score(cur[1], e, s)
                if cand[0] < cur[0]:
                    cur = cand
        return cur

    def sweep(self, cur, width: float, points: int):
        """One coordinate sweep over the geometry: each parameter in turn tries ``points`` values spread
        over ``width`` of its range around the current one (within the range widened by a tenth)."""
        for name, (lo, hi) in GEOMETRY.items():
            centre = getattr(cur[1], name)
            for u in np.linspace(-width / 2, width / 2, points):
                value = float(np.clip(centre + u * (hi - lo), lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)))
                cand = self.score(replace(cur[1], **{name: value}), cur[2], cur[3])
                if cand[0] < cur[0]:
                    cur = cand
        return cur

    def best_hair_style(self, cur):
        for style in HAIR_STYLES:
            cand = self.score(replace(cur[1], hair_style=style), cur[2], cur[3])
            if cand[0] < cur[0]:
                cur = cand
        return cur


def fit_face(image, seed: int = 0, starts: int = 30, keep: int = 2) -> FaceFit:
    """Fit the toy renderer to one image: a ``(3, H, W)`` tensor in ``[-1, 1]`` or an ``(H, W, 3)`` uint8
    array. ``starts`` random geometries per hair style with a neutral face; the ``keep`` best are refined
    (see the module's docstring) and the better kept."""
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"fit_face takes one (3, H, W) image in [-1, 1]; got shape {tuple(image.shape)}")
        image = to_uint8(image[None])[0]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.shape[0] != image.shape[1]:
        raise ValueError(f"fit_face takes a square uint8 (H, W, 3) image; got {image.dtype} {image.shape}")
    rng = np.random.default_rng(seed)
    search = _Search(image)
    cands = []
    for style in HAIR_STYLES:
        for _ in range(starts):
            geometry = Identity(skin=_BLACK, hair=_BLACK, background=_BLACK, hair_style=style,
                                **{k: float(rng.uniform(lo, hi)) for k, (lo, hi) in GEOMETRY.items()})
            cands.append(search.score(geometry, "neutral", 1.0))
    cands.sort(key=lambda c: c[0])
    best = None
    for cur in cands[:keep]:
        cur = search.best_expression(cur)
        cur = search.sweep(search.sweep(cur, 1.2, 7), 0.3, 5)
        if best is None or cur[0] < best[0]:
            best = cur
    best = search.best_expression(search.best_hair_style(best))
    _, identity, expression, intensity = search.sweep(search.sweep(best, 0.1, 5), 0.03, 3)
    region = face_regions(identity, image.shape[0])["expression"]
    diff = np.abs(render(identity, expression, image.shape[0], intensity).astype(np.float64) - image)
    return FaceFit(identity, expression, intensity, float(diff.mean()), float(diff[region].mean()),
                   skin_distance(identity.skin))


def fit_faces(images: torch.Tensor, seed: int = 0, progress: bool = False, **kw) -> List[FaceFit]:
    """:func:`fit_face` for every image of a ``(B, 3, H, W)`` batch in ``[-1, 1]`` (about 2 s each)."""
    from tqdm.auto import tqdm

    return [fit_face(im, seed=seed, **kw) for im in tqdm(images, desc="face fit", disable=not progress)]
