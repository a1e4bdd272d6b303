"""Evaluation measures: classifier accuracy, PSNR, flip rate and identity distance in the toy world."""
from __future__ import annotations

from typing import Sequence
import torch

from .toyfaces import Identity, face_regions

__all__ = ["psnr", "accuracy", "identity_distance", "target_accuracy"]


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


def identity_distance(a: torch.Tensor, b: torch.Tensor, identities: Sequence[Identity]) -> torch.Tensor:
    """Mean absolute pixel difference (0-255 scale) between ``a`` and ``b`` outside the expression
    region (brows, eyes, mouth) of each face: what an emotion edit should leave alone."""
    out = []
    for x, y, ident in zip(a, b, identities):
        m = torch.from_numpy(face_regions(ident, x.shape[-1])["identity"])
        d = (x.float() - y.float()).abs().mean(0) * 127.5
        out.append(d[m].mean())
    return torch.stack(out)
