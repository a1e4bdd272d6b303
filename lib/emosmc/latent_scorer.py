"""A latent emotion scorer: reads a (noisy or predicted-clean) latent and its timestep and predicts
the pixel classifier's probabilities, so steering needs no VAE decode per particle and step.

    scorer = LatentEmotionScorer(sample_size=16)
    distill_latent_scorer(scorer, latents, vae, classifier, unet, scheduler, steps=3000)
    pipe(images, "happy", scorer="latent")   # see EmotionEditPipeline and emosmc.edit_config

Distillation: a cached clean latent is noised to a random timestep, the UNet predicts the clean
latent ``x0_hat`` from it (what ``reward_on="x0"`` scores), the teacher -- the pixel classifier on
the decoded ``x0_hat`` -- gives soft labels, and the scorer learns them (KL divergence) from
``(x0_hat, t)``. Saved and loaded diffusers-style (``save_pretrained`` / ``from_pretrained``).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from tqdm.auto import tqdm

from .labels import EMOTIONS, target_indices
from .training import optimizer_step

__all__ = ["LatentEmotionScorer", "LatentEmotionReward", "distill_latent_scorer", "agreement"]


def _timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([a.sin(), a.cos()], -1)


class _Block(torch.nn.Module):
    def __init__(self, cin: int, cout: int, tdim: int, down: bool):
        super().__init__()
        self.conv1, self.conv2 = torch.nn.Conv2d(cin, cout, 3, padding=1), torch.nn.Conv2d(cout, cout, 3, padding=1)
        self.n1, self.n2 = torch.nn.GroupNorm(8, cout), torch.nn.GroupNorm(8, cout)
        self.t = torch.nn.Linear(tdim, cout)
        self.skip = torch.nn.Conv2d(cin, cout, 1) if cin != cout else torch.nn.Identity()
        self.down = down

    def forward(self, x, temb):
        h = F.silu(self.n1(self.conv1(x))) + self.t(temb)[:, :, None, None]
        h = F.silu(self.n2(self.conv2(h))) + self.skip(x)
        return F.avg_pool2d(h, 2) if self.down else h


class LatentEmotionScorer(ModelMixin, ConfigMixin):
    """A small time-conditioned CNN: ``(B, C, h, w)`` scaled latents and ``(B,)`` timesteps ->
    ``(B, 7)`` logits in the canonical order :data:`emosmc.labels.EMOTIONS`."""

    @register_to_config
    def __init__(self, in_channels: int = 4, sample_size: int = 16, block_channels: Sequence[int] = (32, 64, 128),
                 time_embed_dim: int = 64, labels: Sequence[str] = EMOTIONS):
        super().__init__()
        self.time = torch.nn.Sequential(torch.nn.Linear(time_embed_dim, time_embed_dim), torch.nn.SiLU(),
                                        torch.nn.Linear(time_embed_dim, time_embed_dim))
        chans = [in_channels, *block_channels]
        self.blocks = torch.nn.ModuleList(_Block(a, b, time_embed_dim, down=i < len(block_channels) - 1)
                                          for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])))
        side = sample_size // 2 ** (len(block_channels) - 1)
        self.head = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.1),
                                        torch.nn.Linear(block_channels[-1] * side * side, len(labels)))

    def forward(self, latents: torch.Tensor, timesteps) -> torch.Tensor:
        t = torch.as_tensor(timesteps, device=latents.device).reshape(-1).expand(len(latents))
        temb = self.time(_timestep_embedding(t, self.config.time_embed_dim))
        h = latents
        for b in self.blocks:
            h = b(h, temb)
        return self.head(h)  # position-aware: where a feature sits (mouth, brows) matters

    def log_probs(self, latents: torch.Tensor, timesteps) -> torch.Tensor:
        return self(latents, timesteps).float().log_softmax(-1)


class LatentEmotionReward:
    """``r = log p(target)`` from a :class:`LatentEmotionScorer` on ``(B, N, C, h, w)`` latents: no
    decode. The SMC sampler passes the timestep (0 for the final, clean particles)."""

    def __init__(self, scorer: LatentEmotionScorer, targets, chunk_size: int = 512):
        self.scorer, self.chunk_size = scorer, chunk_size
        self.targets = target_indices(targets)
        self.num_decodes = 0  # the same counter as PixelEmotionReward: this reward never decodes

    def __call__(self, x: torch.Tensor, t=None) -> torch.Tensor:
        """Differentiable in ``x`` when ``x`` requires grad (guided proposals); no graph otherwise."""
        B, N = x.shape[:2]
        if len(self.targets) != B:
            raise ValueError(f"{len(self.targets)} target(s) for a batch of {B} source(s)")
        flat = x.reshape(B * N, *x.shape[2:])
        tt = torch.zeros((), dtype=torch.long) if t is None else torch.as_tensor(t).reshape(())
        with torch.set_grad_enabled(x.requires_grad and torch.is_grad_enabled()):
            lp = torch.cat([self.scorer.log_probs(c, tt) for c in flat.split(self.chunk_size)]).view(B, N, -1)
        idx = self.targets.to(lp.device).view(B, 1, 1).expand(B, N, 1)
        return lp.gather(2, idx).squeeze(2)


def _teacher_batch(z0, t, vae, classifier, unet, scheduler, generator, chunk_size=None):
    from .diffusion import decode_latents, predict_x0

    dev = next(unet.parameters()).device
    noise = torch.randn(z0.shape, generator=generator).to(dev)
    z0 = z0.to(dev)
    zt = scheduler.add_noise(z0, noise, t.to(dev))
    x0 = predict_x0(scheduler, unet(zt, t.to(dev)).sample, zt, t)
    return x0, classifier(decode_latents(vae, x0, chunk_size))


def distill_latent_scorer(scorer: LatentEmotionScorer, latents: torch.Tensor, vae, classifier, unet, scheduler,
                          steps: int = 3000, batch_size: int = 64, lr: float = 2e-3, max_timestep: int = 900,
                          clean_fraction: float = 0.25, seed: int = 0, progress: bool = True, log=None,
                          checkpoint: Optional[Union[str, Path]] = None, checkpoint_every: int = 200):
    """Train ``scorer`` to match the pixel ``classifier`` on decoded x0 predictions of noised
    cached ``latents``. A ``clean_fraction`` of each batch uses t = 0 (the final, clean particles).
    The teacher decodes in chunks that fit the device (:mod:`emosmc.memory`).

    ``checkpoint``: a file the run saves to every ``checkpoint_every`` steps (scorer, optimiser,
    schedule and random state) and continues from when it exists, so an interrupted run resumes
    where it stopped and ends as an uninterrupted one would."""
    g = torch.Generator().manual_seed(seed)
    dev = next(unet.parameters()).device
    scorer.to(dev).train()
    opt = torch.optim.AdamW(scorer.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    start = 0
    run = {"batch_size": batch_size, "lr": lr, "max_timestep": max_timestep, "clean_fraction": clean_fraction,
           "seed": seed, "latents": len(latents), "scorer": dict(scorer.config)}
    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)  # RNG states stay CPU tensors
        if state["steps"] != steps:
            raise ValueError(f"{checkpoint} is from a {state['steps']}-step run, not {steps}; delete it or use another path")
        other = {k: (v, run[k]) for k, v in state.get("run", {}).items() if run.get(k) != v}
        if other:
            raise ValueError(f"{checkpoint} is from another run ({', '.join(f'{k}: {a} there, {b} here' for k, (a, b) in other.items())}); "
                             "delete it or use another path")
        scorer.load_state_dict(state["scorer"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["schedule"])
        g.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])  # dropout draws from the global generator
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        start = state["step"]
    from .memory import decode_batch_size

    chunk = decode_batch_size(dev, int(vae.config.sample_size), next(vae.parameters()).dtype)  # once per run
    bar = tqdm(range(start, steps), desc="latent scorer", disable=not progress, initial=start, total=steps)
    for step in bar:
        idx = torch.randint(0, len(latents), (batch_size,), generator=g)
        t = torch.randint(0, max_timestep + 1, (batch_size,), generator=g)
        t[torch.rand(batch_size, generator=g) < clean_fraction] = 0
        with torch.no_grad():
            x0, teacher = _teacher_batch(latents[idx].float(), t, vae, classifier, unet, scheduler, g, chunk)
        loss = F.kl_div(scorer.log_probs(x0, t.to(dev)), teacher.clamp_min(1e-8), reduction="batchmean")
        optimizer_step(loss, opt, sched, bar, step, log, "latent_scorer/kl", name="kl")
        if checkpoint is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == steps):
            tmp = Path(str(checkpoint) + ".tmp")
            torch.save({"scorer": scorer.state_dict(), "optimizer": opt.state_dict(), "schedule": sched.state_dict(),
                        "generator": g.get_state(), "torch_rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                        "step": step + 1, "steps": steps, "run": run}, tmp)
            os.replace(tmp, checkpoint)
    return scorer.eval()


@torch.no_grad()
def agreement(scorer: LatentEmotionScorer, latents: torch.Tensor, vae, classifier, unet, scheduler,
              timesteps: Sequence[int] = (0, 100, 300, 500, 700), targets: Optional[torch.Tensor] = None,
              seed: int = 1, batch_size: int = 128) -> list:
    """Per timestep, on held-out latents: Pearson correlation of the scorer's and the teacher's
    probability of ``targets`` (default: every class, flattened) and top-1 agreement."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for t in timesteps:
        ps, pt = [], []
        for z in latents.split(batch_size):
            tt = torch.full((len(z),), int(t), dtype=torch.long)
            x0, teacher = _teacher_batch(z.float(), tt, vae, classifier, unet, scheduler, g)
            ps.append(scorer.log_probs(x0, tt.to(x0.device)).exp().cpu())
            pt.append(teacher.cpu())
        ps, pt = torch.cat(ps), torch.cat(pt)
        if targets is not None:
            a, b = ps[torch.arange(len(ps)), targets], pt[torch.arange(len(pt)), targets]
        else:
            a, b = ps.flatten(), pt.flatten()
        corr = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
        out.append({"timestep": int(t), "target_prob_correlation": round(corr, 4),
                    "top1_agreement": round(float((ps.argmax(-1) == pt.argmax(-1)).float().mean()), 4)})
    return out
