"""Small training loops for the toy world's models: emotion classifiers and the VAE, and the toy UNet's
settings for the one UNet loop (:func:`emosmc.unet_training.train_unet`).

Each loop takes tensors already in memory (the toy world renders them; the celebahq profile reads the
latent cache), shows a progress bar, and logs to a ``log(dict, step)`` callable (:mod:`emosmc.tracking`:
:func:`~emosmc.tracking.wandb_logger` gives one that writes to Weights & Biases).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .tracking import LogFn, nolog

__all__ = ["train_classifier", "train_vae", "train_toy_unet", "latent_scaling_factor", "optimizer_step"]


def optimizer_step(loss, opt, sched, bar, step: int, log: Optional[LogFn], key: str, name: str = "loss") -> None:
    """One optimiser and schedule step on ``loss``; every 50 steps the progress bar shows it as ``name``
    and ``log`` records it under ``key``."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    if step % 50 == 0:
        bar.set_postfix({name: f"{loss.item():.4f}"})
        if log:
            log({key: loss.item()}, step)


def _batches(n: int, batch_size: int, steps: int, generator: torch.Generator):
    for _ in range(steps):
        yield torch.randint(0, n, (batch_size,), generator=generator)


def _cosine(step: int, steps: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def train_classifier(model, images: torch.Tensor, labels: torch.Tensor, steps: int = 2000, batch_size: int = 64,
                     lr: float = 1e-3, noise_aug: float = 0.15, seed: int = 0, progress: bool = True,
                     log: LogFn = nolog, mean: float = 0.5, std: float = 0.5):
    """Cross-entropy training of a ``transformers`` image classifier on ``images`` in ``[-1, 1]``
    (``labels`` are indices into the model's own ``id2label``). Half of each batch gets Gaussian
    pixel noise of a random scale up to ``noise_aug``, so the scorer stays sensible on decoded
    noisy latents."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _cosine(s, steps, steps // 20))
    model.train()
    bar = tqdm(_batches(len(images), batch_size, steps, g), total=steps, desc="classifier", disable=not progress)
    for step, idx in enumerate(bar):
        x = images[idx]
        sigma = torch.rand(len(x), 1, 1, 1, generator=g) * noise_aug * (torch.rand(len(x), 1, 1, 1, generator=g) < 0.5)
        x = (x + sigma * torch.randn(x.shape, generator=g)).clamp(-1, 1)
        x = ((x + 1) / 2 - mean) / std
        out = model(pixel_values=x).logits
        loss = F.cross_entropy(out, labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0:
            acc = (out.argmax(-1) == labels[idx]).float().mean().item()
            bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{acc:.2f}")
            log({"classifier/loss": loss.item(), "classifier/acc": acc}, step)
    return model.eval()


def train_vae(vae, images: torch.Tensor, steps: int = 2000, batch_size: int = 32, lr: float = 2e-3,
              kl_weight: float = 1e-6, seed: int = 0, progress: bool = True, log: LogFn = nolog,
              decoder_only: bool = False):
    """AutoencoderKL training: L1 + MSE reconstruction plus a small KL term. ``decoder_only``
    freezes the encoder, so the latents (and a UNet trained on them) stay valid."""
    g = torch.Generator().manual_seed(seed)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters()) if decoder_only else list(vae.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _cosine(s, steps, steps // 20))
    vae.train()
    bar = tqdm(_batches(len(images), batch_size, steps, g), total=steps, desc="vae", disable=not progress)
    for step, idx in enumerate(bar):
        x = images[idx]
        with torch.set_grad_enabled(not decoder_only):
            post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=g)).sample
        mse = F.mse_loss(rec, x)
        loss = F.l1_loss(rec, x) + mse + kl_weight * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0:
            psnr = 10 * math.log10(4.0 / max(mse.item(), 1e-12))
            bar.set_postfix(loss=f"{loss.item():.4f}", psnr=f"{psnr:.1f}")
            log({"vae/loss": loss.item(), "vae/psnr": psnr}, step)
    return vae.eval()


@torch.no_grad()
def latent_scaling_factor(vae, images: torch.Tensor, batch_size: int = 256, seed: int = 0) -> float:
    """``1 / std`` of the VAE's latents on ``images``: what ``vae.config.scaling_factor`` should be
    (0.18215 for the SD VAE), so the diffusion model sees unit-variance latents."""
    g = torch.Generator().manual_seed(seed)
    z = torch.cat([vae.encode(b).latent_dist.sample(generator=g) for b in images.split(batch_size)])
    return float(1.0 / z.std())


def train_toy_unet(unet, latents: torch.Tensor, scheduler, steps: int = 4000, batch_size: int = 64,
                   lr: float = 5e-4, ema_decay: float = 0.999, seed: int = 0, progress: bool = True,
                   log: Optional[LogFn] = None, ema_warmup: bool = True, decay_lr: bool = False):
    """The toy UNet's settings for :func:`emosmc.unet_training.train_unet` (epsilon-prediction MSE on cached,
    scaled latents; AdamW without weight decay, 200 warmup steps, gradient clip 1.0, EMA with warmup, fp32,
    nothing written to disk); returns ``(unet, ema_unet)``. ``ema_warmup=False`` keeps the full EMA decay from
    the start (when continuing a run); ``decay_lr`` anneals the learning rate with a cosine."""
    from .unet_training import UNetTrainingConfig, train_unet

    cfg = UNetTrainingConfig(max_steps=steps, batch_size=batch_size, learning_rate=lr, lr_warmup_steps=200,
                             lr_schedule="cosine" if decay_lr else "constant", weight_decay=0.0,
                             ema_decay=ema_decay, ema_warmup=ema_warmup, mixed_precision="no", seed=seed)
    run = train_unet(cfg, latents, unet, scheduler, progress=progress, log=log)
    return run.unet, run.ema
