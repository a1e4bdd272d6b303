"""Small training loops: emotion classifiers, the VAE, and the latent UNet.

Each loop takes tensors already in memory (the toy world renders them; the
celebahq profile reads the latent cache), shows a progress bar, and logs to a
``log(dict, step)`` callable -- :func:`wandb_logger` gives one that writes to
Weights & Biases (offline when no API key is configured).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

__all__ = ["wandb_logger", "kaggle_secret", "train_classifier", "train_vae", "train_toy_unet", "latent_scaling_factor"]

LogFn = Callable[[dict, int], None]


def _nolog(d: dict, step: int) -> None:
    pass


def kaggle_secret(name: str) -> Optional[str]:
    """A secret from Kaggle's add-on (Add-ons > Secrets, attached to the notebook), else ``None``."""
    try:
        from kaggle_secrets import UserSecretsClient  # only exists inside Kaggle kernels
    except ImportError:
        return None
    try:
        return UserSecretsClient().get_secret(name)
    except Exception:  # not attached to this notebook, or no such secret
        return None


def wandb_logger(project: str = "emosmc", name: Optional[str] = None, config: Optional[dict] = None,
                 dir: Optional[str] = None, run_id: Optional[str] = None) -> LogFn:
    """A ``log(dict, step)`` that writes to W&B: online when a key is configured (``WANDB_API_KEY``,
    or the Kaggle secret of that name), else offline -- also when going online fails (a key but no
    internet), with a message. ``dir`` holds the run files; ``run_id`` continues an earlier run (a
    resumed training) instead of starting a new one."""
    import wandb

    if not os.environ.get("WANDB_API_KEY"):
        key = kaggle_secret("WANDB_API_KEY")
        if key:
            os.environ["WANDB_API_KEY"] = key
    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    extra = {"id": run_id, "resume": "allow"} if run_id else {}
    if dir:
        Path(dir).mkdir(parents=True, exist_ok=True)
    args = dict(project=project, name=name, config=config or {}, reinit="finish_previous", dir=dir, **extra)
    try:
        run = wandb.init(mode=mode, **args)
    except Exception as err:  # wandb raises its own errors (CommError, ...) when it cannot reach its server
        if mode != "online":
            raise
        print(f"W&B could not go online ({type(err).__name__}: {err}); logging offline into {dir or 'wandb/'} "
              "instead: upload it later with `wandb sync`, or turn the notebook's internet on")
        run = wandb.init(mode="offline", **args)

    def log(d: dict, step: int) -> None:
        run.log(d, step=step)

    log.run = run  # type: ignore[attr-defined]
    return log


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
                     log: LogFn = _nolog, mean: float = 0.5, std: float = 0.5):
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
              kl_weight: float = 1e-6, seed: int = 0, progress: bool = True, log: LogFn = _nolog,
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


def train_toy_unet(unet, latents: torch.Tensor, scheduler, steps: int = 4000, batch_size: int = 64, lr: float = 5e-4,
               ema_decay: float = 0.999, seed: int = 0, progress: bool = True, log: LogFn = _nolog,
               ema_warmup: bool = True, decay_lr: bool = False):
    """Epsilon-prediction MSE on cached (scaled) latents; returns ``(unet, ema_unet)``.
    ``ema_warmup=False`` keeps the full EMA decay from the start (when continuing a run);
    ``decay_lr`` anneals the learning rate with a cosine."""
    import copy

    g = torch.Generator().manual_seed(seed)
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    warm = lambda s: min(1.0, (s + 1) / 200)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, (lambda s: warm(s) * _cosine(s, steps, 0)) if decay_lr else warm)
    T = scheduler.config.num_train_timesteps
    unet.train()
    bar = tqdm(_batches(len(latents), batch_size, steps, g), total=steps, desc="unet", disable=not progress)
    for step, idx in enumerate(bar):
        z0 = latents[idx].float()
        noise = torch.randn(z0.shape, generator=g)
        t = torch.randint(0, T, (len(z0),), generator=g)
        zt = scheduler.add_noise(z0, noise, t)
        loss = F.mse_loss(unet(zt, t).sample, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        sched.step()
        d = min(ema_decay, (1 + step) / (10 + step)) if ema_warmup else ema_decay
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), unet.parameters()):
                pe.lerp_(p, 1 - d)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
            log({"unet/loss": loss.item(), "unet/lr": sched.get_last_lr()[0]}, step)
    return unet.eval(), ema
