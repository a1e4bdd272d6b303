"""Emotion classifiers as differentiable-free scorers, with labels mapped by *name*.

The real classifier (``dima806/facial_emotions_image_detection``) lists its seven
labels in a non-alphabetical ``id2label`` order; the toy classifiers use yet
other orders. :class:`EmotionClassifier` always returns probabilities in the
canonical order :data:`emosmc.labels.EMOTIONS`, so index 3 is ``happy`` for
every model. Preprocessing (resize, mean/std of the model's own image processor)
is done in torch on the model's device.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import torch
import torch.nn.functional as F

from .diffusion import decode_latents
from .labels import EMOTIONS, target_indices

__all__ = ["EmotionClassifier", "PixelEmotionReward", "IdentityPenalty", "score_dataset", "score_noisy_latents"]


class EmotionClassifier(torch.nn.Module):
    """A ``transformers`` image classifier whose labels are the seven emotions.

    ``forward(images)`` takes ``(B, 3, H, W)`` images in ``[-1, 1]`` and returns
    ``(B, 7)`` probabilities in the canonical order :data:`EMOTIONS`.
    """

    def __init__(self, model, image_mean: Sequence[float], image_std: Sequence[float], size: Sequence[int]):
        super().__init__()
        self.model = model.eval()
        names = {int(i): str(n).strip().lower() for i, n in model.config.id2label.items()}
        missing = [e for e in EMOTIONS if e not in names.values()]
        if missing or len(names) != len(EMOTIONS):
            raise ValueError(
                f"classifier labels {sorted(names.values())} are not the seven emotions {list(EMOTIONS)}"
            )
        by_name = {n: i for i, n in names.items()}
        self.register_buffer("order", torch.tensor([by_name[e] for e in EMOTIONS]), persistent=False)
        self.register_buffer("mean", torch.tensor(image_mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(image_std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.size = tuple(int(s) for s in size)

    @classmethod
    def from_pretrained(cls, name_or_path: Union[str, Path], **kwargs) -> "EmotionClassifier":
        """Load a hub id or a ``save_pretrained`` folder holding the model and its image processor."""
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        try:
            model = AutoModelForImageClassification.from_pretrained(str(name_or_path), **kwargs)
            proc = AutoImageProcessor.from_pretrained(str(name_or_path))
        except OSError as err:
            raise FileNotFoundError(
                f"could not load the emotion classifier from {name_or_path!r}: {err}. "
                "On a machine with internet it downloads from the Hugging Face hub; offline, point to a "
                "folder made with save_pretrained."
            ) from err
        size = proc.size
        hw = (size["height"], size["width"]) if "height" in size else (size["shortest_edge"],) * 2
        return cls(model, proc.image_mean, proc.image_std, hw)

    def save_pretrained(self, path: Union[str, Path]) -> None:
        from transformers import ViTImageProcessor

        self.model.save_pretrained(str(path))
        ViTImageProcessor(size={"height": self.size[0], "width": self.size[1]},
                          image_mean=self.mean.flatten().tolist(), image_std=self.std.flatten().tolist()).save_pretrained(str(path))

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W) in [-1, 1], got {tuple(images.shape)}")
        x = (images.float().clamp(-1, 1) + 1) / 2
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", antialias=True, align_corners=False)
        return (x - self.mean) / self.std

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        p = next(self.model.parameters())
        out = self.model(pixel_values=self.preprocess(images).to(p.dtype)).logits.float()
        return out[:, self.order]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(images).softmax(-1)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` features of the last hidden layer (a ViT's class token, a CNN's spatial mean):
        what distribution-level scores such as KID compare."""
        p = next(self.model.parameters())
        h = self.model(pixel_values=self.preprocess(images).to(p.dtype), output_hidden_states=True).hidden_states[-1]
        return (h[:, 0] if h.dim() == 3 else h.flatten(2).mean(-1)).float()

    def log_probs(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(images).log_softmax(-1)


class PixelEmotionReward:
    """The report's reward: decode latents with the VAE, classify, ``r = log p(target)``.

    ``targets`` gives one emotion per batch row (names, or their index tensor). Called by the SMC sampler with
    ``(B, N, C, h, w)`` latents (already multiplied by the VAE scaling factor) and
    returns ``(B, N)``. Decoding happens in chunks of ``chunk_size`` particles.
    """

    def __init__(self, vae, classifier: EmotionClassifier, targets, chunk_size: int = 64):
        self.vae, self.classifier, self.chunk_size = vae, classifier, chunk_size
        self.targets = target_indices(targets)
        self.num_decodes = 0

    @torch.no_grad()
    def images(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode ``(M, C, h, w)`` scaled latents to images in ``[-1, 1]``."""
        self.num_decodes += latents.shape[0]
        return decode_latents(self.vae, latents, self.chunk_size)

    def __call__(self, x: torch.Tensor, t=None) -> torch.Tensor:
        """Differentiable in ``x`` when ``x`` requires grad (guided proposals: the gradient goes back through the
        classifier and the VAE decoder); no graph otherwise."""
        B, N = x.shape[:2]
        if len(self.targets) != B:
            raise ValueError(f"{len(self.targets)} target(s) for a batch of {B} source(s)")
        flat = x.reshape(B * N, *x.shape[2:])
        with torch.set_grad_enabled(x.requires_grad and torch.is_grad_enabled()):
            if x.requires_grad:
                self.num_decodes += len(flat)
                sf, p = self.vae.config.scaling_factor, next(self.vae.parameters())
                imgs = torch.cat([self.vae.decode((c / sf).to(p.dtype)).sample.clamp(-1, 1)
                                  for c in flat.split(self.chunk_size)])
            else:
                imgs = self.images(flat)
            lp = torch.cat([self.classifier.log_probs(c) for c in imgs.split(self.chunk_size)])
        lp = lp.view(B, N, -1)
        idx = self.targets.to(lp.device).view(B, 1, 1).expand(B, N, 1)
        return lp.gather(2, idx).squeeze(2)


@torch.no_grad()
def score_dataset(classifier: EmotionClassifier, dataset, batch_size: int = 64, num_workers: int = 0,
                  progress: bool = True) -> torch.Tensor:
    """``(M, 7)`` probabilities of every image of ``dataset`` (a dataset of ``(3, H, W)`` tensors in
    ``[-1, 1]``); images are read by a DataLoader, preprocessing runs in torch on the model's device."""
    from tqdm.auto import tqdm

    dev = next(classifier.parameters()).device
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                                         pin_memory=dev.type == "cuda")
    return torch.cat([classifier(b.to(dev, non_blocking=True)).cpu()
                      for b in tqdm(loader, desc="score", disable=not progress)])


@torch.no_grad()
def score_noisy_latents(vae, unet, scheduler, classifier: EmotionClassifier, latents: torch.Tensor,
                        labels: torch.Tensor, timesteps: Sequence[int], generator=None, batch_size: int = 64) -> dict:
    """How well the classifier reads an emotion from a *noisy* latent: for each timestep ``t``, noise
    the (scaled) ``latents`` to ``t`` and score (a) the decoded noisy latent -- what the report's
    Algorithm 1 scores -- and (b) the decoded x0 prediction of ``unet`` -- what reward-on-x0 scores.
    Returns per-timestep mean probability of ``labels`` and accuracy for both."""
    from .diffusion import predict_x0

    dev = next(unet.parameters()).device
    out = {"timesteps": list(timesteps), "xt_prob": [], "x0_prob": [], "xt_acc": [], "x0_acc": []}
    for t in timesteps:
        px, p0 = [], []
        for z0 in latents.split(batch_size):
            noise = torch.randn(z0.shape, generator=generator)
            tt = torch.full((len(z0),), int(t), dtype=torch.long)
            zt = scheduler.add_noise(z0, noise, tt).to(dev)
            x0 = predict_x0(scheduler, unet(zt, int(t)).sample, zt, int(t))
            px.append(classifier(decode_latents(vae, zt, batch_size)).cpu())
            p0.append(classifier(decode_latents(vae, x0, batch_size)).cpu())
        for key, p in (("xt", torch.cat(px)), ("x0", torch.cat(p0))):
            out[f"{key}_prob"].append(float(p[torch.arange(len(p)), labels].mean()))
            out[f"{key}_acc"].append(float((p.argmax(-1) == labels).float().mean()))
    return out


class IdentityPenalty:
    """A reward minus ``beta`` times how far each particle's colours are from the source's: ``r(x) - beta *
    mean((pool(x) - pool(source))^2)``, with ``pool`` the ``block x block`` means of the latent (its low
    frequencies: skin, hair, background colours). On ``(B, N, C, h, w)`` particles and ``(B, C, h, w)``
    sources; decode-free and differentiable (guided proposals). Any black-box score works in SMC: this makes
    the steering weigh identity beside the target."""

    def __init__(self, reward, source: torch.Tensor, beta: float, block: int = 4):
        self.reward, self.beta, self.block = reward, float(beta), block
        self.source = source
        self.num_decodes = 0

    def distance(self, x: torch.Tensor) -> torch.Tensor:
        B, N = x.shape[:2]
        pool = torch.nn.functional.avg_pool2d
        a = pool(x.reshape(B * N, *x.shape[2:]).float(), self.block, ceil_mode=True).reshape(B, N, -1)
        b = pool(self.source.to(x.device).float(), self.block, ceil_mode=True).reshape(B, 1, -1)
        return ((a - b) ** 2).mean(-1)

    def __call__(self, x: torch.Tensor, t=None) -> torch.Tensor:
        r = self.reward(x, t)
        self.num_decodes = getattr(self.reward, "num_decodes", 0)
        return r - self.beta * self.distance(x).to(r.dtype)
