"""Rounds of hard examples: teach the toy world's guidance what steering actually feeds it.

Steering optimises against its reward, so it drifts to latents the reward over-rates: a grey
smudge where a smile should be, scored "happy, p = 1.00". In the toy world the truth of every
edit is known (:func:`emosmc.ground_truth.true_expression`), so those failures can be labelled
and trained on:

1. :func:`mine` runs the pipeline on fresh identities (never the benchmark's, the tuning or the
   tests' faces) towards every other expression and keeps *all* final particles with their verdict;
2. :func:`finetune_latent_scorer` trains the latent scorer on x0 predictions of clean training
   latents with their **true** labels (not the pixel classifier's soft labels) mixed with the
   mined particles, noised again to random timesteps; :func:`finetune_classifier` does the same
   for a pixel classifier on the decoded particles (the toy assets use it for the judge).

A mined particle whose verdict is clear is a cross-entropy example of its true expression; one
the rule calls unclear (e.g. happy eyes over no mouth) teaches only "this is not the target":
the loss is ``-log(1 - p(target))``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .ground_truth import true_expression
from .diffusion import predict_x0
from .labels import EMOTIONS
from .training import optimizer_step
from .toy.faces import Identity

__all__ = ["HardExamples", "mine", "finetune_latent_scorer", "finetune_classifier", "hard_loss"]


@dataclass
class HardExamples:
    latents: torch.Tensor  # (M, C, h, w) scaled latents of final particles
    images: torch.Tensor  # (M, 3, H, W) their decodings in [-1, 1]
    labels: torch.Tensor  # (M,) true expression (canonical index) or -1 when unclear
    targets: torch.Tensor  # (M,) the expression steering aimed at

    def __len__(self):
        return len(self.labels)

    def cat(self, other: "HardExamples") -> "HardExamples":
        return HardExamples(*(torch.cat([a, b]) for a, b in zip(
            (self.latents, self.images, self.labels, self.targets),
            (other.latents, other.images, other.labels, other.targets))))

    def summary(self) -> dict:
        hit = self.labels == self.targets
        return {"particles": len(self), "true_flip": round(float(hit.float().mean()), 3),
                "unclear": round(float((self.labels < 0).float().mean()), 3)}


@torch.no_grad()
def mine(pipe, images: torch.Tensor, labels: torch.Tensor, identities: Sequence[Identity], settings: dict,
         generator: torch.Generator, batch: int = 12, progress: bool = True) -> HardExamples:
    """Edit each face towards every expression it does not show; return every final particle,
    decoded, with its true expression."""
    rows = [(i, t) for i in range(len(images)) for t in range(len(EMOTIONS)) if t != int(labels[i])]
    out = None
    for k in tqdm(range(0, len(rows), batch), desc="mining", disable=not progress):
        part = rows[k:k + batch]
        x = images[[i for i, _ in part]]
        tg = [EMOTIONS[t] for _, t in part]
        res = pipe(x, tg, generator=generator, progress=False, **settings)
        B, N = res.latents.shape[:2]
        lat = res.latents.reshape(B * N, *res.latents.shape[2:])
        imgs = pipe.decode(lat).cpu()
        ids = [identities[i] for i, _ in part for _ in range(N)]
        gt = true_expression(imgs, ids)
        tgt = torch.tensor([t for _, t in part]).repeat_interleave(N)
        h = HardExamples(lat.cpu(), imgs, gt.labels, tgt)
        out = h if out is None else out.cat(h)
    return out


def hard_loss(log_probs: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on examples with a clear label; ``-log(1 - p(target))`` on unclear ones."""
    clear = labels >= 0
    loss = log_probs.new_zeros(())
    if clear.any():
        loss = loss + F.nll_loss(log_probs[clear], labels[clear], reduction="sum")
    if (~clear).any():
        p_t = log_probs[~clear].gather(1, targets[~clear, None]).exp().squeeze(1)
        loss = loss - torch.log1p(-p_t.clamp(max=1 - 1e-6)).sum()
    return loss / len(labels)


def _mixed_batch(labels: torch.Tensor, hard: HardExamples, batch_size: int, n_hard: int, g: torch.Generator, dev):
    """Indices ``i`` of clean examples and ``j`` of mined ones, with the batch's labels and targets
    (a clean example's target is its own label)."""
    i = torch.randint(0, len(labels), (batch_size - n_hard,), generator=g)
    j = torch.randint(0, len(hard), (n_hard,), generator=g)
    y = torch.cat([labels[i], hard.labels[j]]).to(dev)
    tgt = torch.cat([labels[i], hard.targets[j]]).to(dev)
    return i, j, y, tgt


def finetune_latent_scorer(scorer, unet, scheduler, latents: torch.Tensor, labels: torch.Tensor,
                           hard: HardExamples, steps: int = 600, batch_size: int = 64, lr: float = 5e-4,
                           max_timestep: int = 900, clean_fraction: float = 0.25, hard_fraction: float = 0.5,
                           seed: int = 0, progress: bool = True, log=None):
    """Train ``scorer`` on x0 predictions (what ``reward_on="x0"`` scores) of noised latents: a
    ``1 - hard_fraction`` share of each batch from clean training ``latents`` with their true
    ``labels``, the rest from the mined particles with their verdicts. A ``clean_fraction`` of
    each batch is scored at t = 0 (the final particles)."""
    g = torch.Generator().manual_seed(seed)
    dev = next(unet.parameters()).device
    scorer.to(dev).train()
    opt = torch.optim.AdamW(scorer.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    n_hard = int(batch_size * hard_fraction)
    bar = tqdm(range(steps), desc="latent scorer (hard examples)", disable=not progress)
    for step in bar:
        i, j, y, tgt = _mixed_batch(labels, hard, batch_size, n_hard, g, dev)
        z0 = torch.cat([latents[i].float(), hard.latents[j].float()]).to(dev)
        t = torch.randint(0, max_timestep + 1, (batch_size,), generator=g)
        t[torch.rand(batch_size, generator=g) < clean_fraction] = 0
        with torch.no_grad():
            noise = torch.randn(z0.shape, generator=g).to(dev)
            zt = scheduler.add_noise(z0, noise, t.to(dev))
            x0 = torch.where(t.view(-1, 1, 1, 1).to(dev) == 0, z0,
                             predict_x0(scheduler, unet(zt, t.to(dev)).sample, zt, t))
        loss = hard_loss(scorer.log_probs(x0, t.to(dev)), y, tgt)
        optimizer_step(loss, opt, sched, bar, step, log, "latent_scorer_hard/loss")
    return scorer.eval()


def finetune_classifier(classifier, images: torch.Tensor, labels: torch.Tensor, hard: HardExamples,
                        steps: int = 400, batch_size: int = 64, lr: float = 2e-4, hard_fraction: float = 0.5,
                        noise_aug: float = 0.1, seed: int = 0, progress: bool = True, log=None):
    """Fine-tune an :class:`emosmc.scorers.EmotionClassifier` on clean ``images`` (``[-1, 1]``,
    true ``labels``) mixed with the mined, decoded particles and their verdicts."""
    g = torch.Generator().manual_seed(seed)
    classifier.train()
    opt = torch.optim.AdamW(classifier.model.parameters(), lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    n_hard = int(batch_size * hard_fraction)
    bar = tqdm(range(steps), desc="classifier (hard examples)", disable=not progress)
    dev = next(classifier.model.parameters()).device
    for step in bar:
        i, j, y, tgt = _mixed_batch(labels, hard, batch_size, n_hard, g, dev)
        x = torch.cat([images[i], hard.images[j]])
        sigma = torch.rand(len(x), 1, 1, 1, generator=g) * noise_aug
        x = (x + sigma * torch.randn(x.shape, generator=g)).clamp(-1, 1).to(dev)
        optimizer_step(hard_loss(classifier.log_probs(x), y, tgt), opt, sched, bar, step, log, "classifier_hard/loss")
    return classifier.eval()
