"""Evaluation measures for any profile: classifier accuracy, PSNR, KID and the report's realism (MTCNN face
probability). What only the toy world can measure (ground truth, identity kept) is in
:mod:`emosmc.ground_truth`."""
from __future__ import annotations

import functools
from typing import Optional

import numpy as np
import torch

__all__ = ["psnr", "accuracy", "target_accuracy", "kid", "Realism", "no_face_warnings", "face_detector"]


@functools.lru_cache(maxsize=None)
def face_detector(device: str = "cpu"):
    """The one MTCNN face detector per device (facenet-pytorch), built on first use: the realism
    measure, the no-face warning and the judges' crops share it."""
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=False, device=device)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in ``[-1, 1]`` (peak-to-peak 2)."""
    mse = ((a.float() - b.float()) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return 10 * torch.log10(4.0 / mse)


@torch.no_grad()
def accuracy(classifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy of an :class:`EmotionClassifier` (canonical label indices)."""
    pred = torch.cat([classifier(b).argmax(-1).cpu() for b in images.split(batch_size)])
    return float((pred == labels.cpu()).float().mean())


def target_accuracy(probs: torch.Tensor, targets: torch.Tensor) -> float:
    """The report's metric: mean classifier probability of the target emotion."""
    return float(probs[torch.arange(len(targets)), targets].mean())


def kid(a: torch.Tensor, b: torch.Tensor) -> float:
    """Kernel Inception Distance between feature sets ``(n, D)`` and ``(m, D)``: the unbiased squared
    MMD with the cubic polynomial kernel ``(x . y / D + 1)^3`` (Binkowski et al. 2018). 0 in expectation
    when both come from one distribution; it can be slightly negative."""
    a, b = a.double(), b.double()
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(a)} and {len(b)}")
    d = a.shape[1]
    k = lambda x, y: (x @ y.T / d + 1) ** 3  # noqa: E731
    kaa, kbb, kab = k(a, a), k(b, b), k(a, b)
    n, m = len(a), len(b)
    return float((kaa.sum() - kaa.diag().sum()) / (n * (n - 1)) + (kbb.sum() - kbb.diag().sum()) / (m * (m - 1))
                 - 2 * kab.mean())


class Realism:
    """The report's realism: MTCNN's face probability (facenet-pytorch), 0 when no face is found.

    Images are ``(B, 3, H, W)`` in ``[-1, 1]``; small ones are upsampled to ``min_size`` first
    (MTCNN looks for faces of at least 20 pixels)."""

    def __init__(self, device=None, min_size: int = 160):
        self.mtcnn = face_detector(str(device or "cpu"))
        self.min_size = min_size

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        from PIL import Image

        from .data import to_uint8

        pils = []
        for a in to_uint8(images.float().cpu()):
            im = Image.fromarray(a)
            if min(im.size) < self.min_size:
                im = im.resize((self.min_size, self.min_size), Image.BILINEAR)
            pils.append(im)
        _, probs = self.mtcnn.detect(pils)
        out = []
        for p in probs:  # numpy 2: arrays of dtype object, None where no face
            v = np.asarray(p if p is not None else [np.nan], dtype=float).ravel()
            out.append(0.0 if v.size == 0 or np.isnan(v[0]) else float(v[0]))
        return torch.tensor(out)


def no_face_warnings(images: torch.Tensor, names, realism: Optional["Realism"] = None, threshold: float = 0.5):
    """Warn (and return the messages) for images in which MTCNN finds no face."""
    import warnings

    p = (realism or Realism())(images)
    msgs = [f"{n}: no face detected (MTCNN p={float(v):.2f}); the models expect a centred face photo, "
            "so the edit may be meaningless" for n, v in zip(names, p) if v < threshold]
    for msg in msgs:
        warnings.warn(msg, UserWarning, stacklevel=2)
    return msgs

