"""Where an emotion edit may change a face: the expression region, found by a detector run on the image.

    detector = profile.load("region_detector")       # toy: a small CNN bundled like the other models
    region = detector(images)                         # (B, 1, H, W) soft mask in [0, 1]; 1: may change
    latent_region = to_latent_mask(region, 16)        # the same at the latent resolution

A counterfactual changes the expression and nothing else, so an edit keeps the source outside the brows,
eyes and mouth (:class:`emosmc.smc.SMCSampler`'s ``region``, :class:`emosmc.edit_config.EditConfig`'s
``region`` setting). The mask always comes from the image itself -- a user's photo has no identity record:

* photographs: facenet-pytorch's MTCNN (its weights ship in the wheel) gives five landmarks per face (eyes,
  nose, mouth corners); :func:`landmark_region` builds the brows-and-eyes and the mouth regions from them,
  with soft edges (:class:`MTCNNRegionDetector`);
* the toy world: MTCNN finds only about half of its clean renders, so the project trains a small
  fully-convolutional detector on renders, whose renderer knows every part's position
  (:class:`RegionDetector`, :func:`train_region_detector`; bundled in ``assets/toy/region_detector``).

Both return the two parts' union as a ``(B, 1, H, W)`` mask with feathered edges (:func:`feather`), so that
blending never shows a seam.
"""
from __future__ import annotations

import math
import warnings
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

__all__ = ["RegionDetector", "MTCNNRegionDetector", "landmark_region", "feather", "to_latent_mask", "blend", "check_region",
           "train_region_detector", "covers"]


def feather(mask: torch.Tensor, grow: float, soften: float) -> torch.Tensor:
    """``(B, 1, H, W)`` masks in [0, 1], grown by ``grow`` pixels (max filter) and blurred with a Gaussian of
    sigma ``soften`` pixels; the mask itself stays 1."""
    m = mask.float()
    r = int(round(grow))
    if r > 0:
        m = F.max_pool2d(m, 2 * r + 1, 1, r)
    if soften > 0:
        k = max(1, int(math.ceil(3 * soften)))
        g = torch.exp(-torch.arange(-k, k + 1, dtype=torch.float32) ** 2 / (2 * soften**2))
        g = (g / g.sum()).to(m)
        m = F.conv2d(F.pad(m, (k, k, 0, 0), mode="replicate"), g.view(1, 1, 1, -1))
        m = F.conv2d(F.pad(m, (0, 0, k, k), mode="replicate"), g.view(1, 1, -1, 1))
    return torch.maximum(m, mask.float()).clamp(0, 1)


def blend(x: torch.Tensor, known: torch.Tensor, region: torch.Tensor, lowpass: int = 0) -> torch.Tensor:
    """``region * x + (1 - region) * known`` (blended diffusion: outside the soft region, what is known); with
    ``lowpass = k`` also, inside it, ``x``'s ``k x k`` block means replaced by ``known``'s (ILVR: the details may
    change, the colours may not). :class:`emosmc.smc.SMCSampler` calls it after every move."""
    x = region * x + (1 - region) * known
    if lowpass:
        def low(v):
            return F.interpolate(F.avg_pool2d(v, lowpass, ceil_mode=True), size=v.shape[-2:], mode="nearest")
        x = x + region * (low(known) - low(x))
    return x


def check_region(region, source, B: int, shape, N: int, like: torch.Tensor) -> torch.Tensor:
    """The sampler's ``region``, checked (img2img, ``(B, 1 or C, *spatial)``, values in [0, 1]) and repeated for
    the ``N`` particles of each row."""
    if source is None:
        raise ValueError("region needs init_latents (img2img): it keeps the source outside the region")
    region = torch.as_tensor(region, device=like.device, dtype=like.dtype)
    if (region.dim() != len(shape) + 1 or region.shape[0] != B or region.shape[2:] != tuple(shape[1:])
            or region.shape[1] not in (1, shape[0])):
        raise ValueError(f"region must be (B, 1 or C, *spatial) = ({B}, 1, {', '.join(map(str, shape[1:]))}), got "
                         f"{tuple(region.shape)}")
    if torch.isnan(region).any() or region.min() < 0 or region.max() > 1:
        raise ValueError("region must hold values in [0, 1] (1: the edit may change that pixel)")
    return region.repeat_interleave(N, dim=0)


def to_latent_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    """A pixel mask ``(B, 1, H, W)`` at the latent resolution ``size``: each latent pixel gets the largest
    value of the pixels it covers (a latent pixel that touches the region may change)."""
    if mask.shape[-1] == size:
        return mask.float()
    if mask.shape[-1] % size == 0:
        return F.max_pool2d(mask.float(), mask.shape[-1] // size)
    return F.adaptive_max_pool2d(mask.float(), size)


# -- the toy world's detector -------------------------------------------------------------------------------


class RegionDetector(ModelMixin, ConfigMixin):
    """A small fully-convolutional net: images ``(B, 3, H, W)`` in [-1, 1] -> logits of the two expression
    parts (brows-and-eyes, mouth) ``(B, 2, H/4, W/4)``. :meth:`__call__` on images gives the feathered soft
    mask of their union at the image's resolution."""

    @register_to_config
    def __init__(self, channels: Sequence[int] = (16, 32, 32), grow: float = 2.0, soften: float = 1.5):
        super().__init__()
        c1, c2, c3 = channels
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, c1, 3, padding=1), torch.nn.SiLU(),
            torch.nn.Conv2d(c1, c2, 4, stride=2, padding=1), torch.nn.SiLU(),
            torch.nn.Conv2d(c2, c3, 4, stride=2, padding=1), torch.nn.SiLU(),
            torch.nn.Conv2d(c3, c3, 3, padding=2, dilation=2), torch.nn.SiLU(),
            torch.nn.Conv2d(c3, c3, 3, padding=4, dilation=4), torch.nn.SiLU(),
            torch.nn.Conv2d(c3, 2, 3, padding=1),
        )

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    @torch.no_grad()
    def parts(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 2, H, W)`` probabilities of the two parts at the image's resolution."""
        p = self.logits(images.to(self.device, self.dtype)).float().sigmoid()
        return F.interpolate(p, size=images.shape[-2:], mode="bilinear", align_corners=False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:  # noqa: D401 -- the detector's call
        """``(B, 1, H, W)``: where the edit may change, the parts' union thresholded at 0.5 and feathered."""
        hard = (self.parts(images).amax(1, keepdim=True) > 0.5).float()
        return feather(hard, self.config.grow, self.config.soften)


def train_region_detector(detector: RegionDetector, images: torch.Tensor, targets: torch.Tensor, steps: int = 1500,
                          batch_size: int = 64, lr: float = 2e-3, seed: int = 0, progress: bool = True,
                          log=None, shift: int = 2) -> dict:
    """Fit ``detector`` to ``(images, targets)`` (binary cross-entropy on the soft block targets, which are at a
    quarter of the images' resolution), with shifts of up to ``shift`` blocks, mirroring, noise and colour
    jitter, so that it finds the face's parts rather than a place or a palette. Returns ``{"steps",
    "final_loss"}``."""
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(detector.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    detector.train()
    loss_avg = None
    for step in tqdm(range(steps), desc="region detector", disable=not progress):
        idx = torch.randint(0, len(images), (batch_size,), generator=g)
        x, y = images[idx].float(), targets[idx]
        # shifted and mirrored, image and target alike, so that it must find the face rather than learn where
        # faces usually are (a shift of one target block is 4 pixels)
        dy, dx = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=g))
        x, y = torch.roll(x, (4 * dy, 4 * dx), (-2, -1)), torch.roll(y, (dy, dx), (-2, -1))
        if torch.rand((), generator=g) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        gain = 1 + 0.2 * (torch.rand(batch_size, 3, 1, 1, generator=g) - 0.5)
        x = (x * gain + 0.05 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
        loss = F.binary_cross_entropy_with_logits(detector.logits(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        lv = loss.item()
        loss_avg = lv if loss_avg is None else 0.98 * loss_avg + 0.02 * lv
        if log is not None and step % 50 == 0:
            log({"region_detector/loss": lv}, step)
    detector.eval()
    return {"steps": steps, "final_loss": round(loss_avg, 4)}


# -- photographs: MTCNN's landmarks ---------------------------------------------------------------------------


def landmark_region(landmarks: np.ndarray, size: int, grow: float = 0.0, soften: Optional[float] = None) -> torch.Tensor:
    """``(1, size, size)`` soft mask of the brows-and-eyes and mouth regions of one face from MTCNN's five
    landmarks ``(5, 2)`` in pixels (left eye, right eye, nose, left and right mouth corner).

    With ``d`` the distance between the eyes: an ellipse around the eyes ``1.0 d`` wider than them and
    reaching ``0.75 d`` above them (the brows) and ``0.35 d`` below; an ellipse around the mouth corners
    ``0.7 d`` wider and ``0.45 d`` tall either side of their midpoint; edges feathered by ``0.08 d``."""
    lm = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    le, re, _, lm_, rm = lm
    d = max(float(np.linalg.norm(re - le)), 1.0)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    ang = math.atan2(re[1] - le[1], re[0] - le[0])
    ca, sa = math.cos(ang), math.sin(ang)

    def ellipse(cx, cy, rx, ry):
        u = (xx - cx) * ca + (yy - cy) * sa
        v = -(xx - cx) * sa + (yy - cy) * ca
        return (u / rx) ** 2 + (v / ry) ** 2 <= 1

    ec = (le + re) / 2
    eyes = ellipse(ec[0] - 0.2 * d * sa, ec[1] - 0.2 * d * ca, d / 2 + 0.5 * d, 0.55 * d)
    mc = (lm_ + rm) / 2
    w = max(float(np.linalg.norm(rm - lm_)), 0.5 * d)
    mouth = ellipse(mc[0], mc[1], w / 2 + 0.35 * d, 0.45 * d)
    m = torch.from_numpy(eyes | mouth).float()[None, None]
    return feather(m, grow, 0.08 * d if soften is None else soften)[0]


class MTCNNRegionDetector:
    """The expression region of photographs from facenet-pytorch's MTCNN landmarks (:func:`landmark_region`).
    Where MTCNN finds no face, the whole image may change (the edit is then not region-aware) and a
    :class:`RuntimeWarning` names the image."""

    def __init__(self, device: str = "cpu"):
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(keep_all=False, device=device)
        self.found: list = []  # per image of the last call: whether a face was found

    def landmarks(self, images: torch.Tensor):
        """Per image the ``(5, 2)`` landmarks of the most likely face (``None`` where none is found)."""
        from .data import to_uint8

        arr = to_uint8(images.detach().cpu())
        out = []
        for a in arr:
            _, probs, lms = self.mtcnn.detect(a, landmarks=True)
            out.append(None if lms is None or probs is None or probs[0] is None else np.asarray(lms[0], dtype=float))
        return out

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        size = images.shape[-1]
        masks, self.found = [], []
        for i, lm in enumerate(self.landmarks(images)):
            self.found.append(lm is not None)
            if lm is None:
                warnings.warn(f"MTCNN found no face in image {i}: it is edited without a region", RuntimeWarning,
                              stacklevel=2)
                masks.append(torch.ones(1, size, size))
            else:
                masks.append(landmark_region(lm, size))
        return torch.stack(masks)


def covers(mask: torch.Tensor, points: np.ndarray, at_least: float = 0.99) -> bool:
    """Whether a ``(1, H, W)`` mask is at least ``at_least`` at every ``(x, y)`` pixel point."""
    H, W = mask.shape[-2:]
    for x, y in np.asarray(points).reshape(-1, 2):
        xi, yi = min(max(int(x), 0), W - 1), min(max(int(y), 0), H - 1)
        if float(mask[..., yi, xi].reshape(-1)[0]) < at_least:
            return False
    return True
