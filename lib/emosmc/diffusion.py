"""Diffusion helpers shared by the engine, the pipeline, training, scorers, benchmarks and tests:
the clean-sample prediction, img2img's timesteps, the one unguided sampling loop, and the VAE's
encode/decode with its scaling factor."""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["predict_x0", "img2img_timesteps", "denoise", "encode_images", "decode_latents"]


def predict_x0(scheduler, model_output: torch.Tensor, x: torch.Tensor, t) -> torch.Tensor:
    """The clean-sample prediction of a DDPM-family scheduler (its ``pred_original_sample``); ``t`` is
    one timestep or one per batch row."""
    t = torch.as_tensor(t, device=x.device).long()
    a = scheduler.alphas_cumprod.to(device=x.device, dtype=x.dtype)[t]
    if a.dim():
        a = a.view(-1, *([1] * (x.dim() - 1)))
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return (x - (1 - a).sqrt() * model_output) / a.sqrt()
    if kind == "v_prediction":
        return a.sqrt() * x - (1 - a).sqrt() * model_output
    if kind == "sample":
        return model_output
    raise ValueError(f"unsupported prediction_type {kind!r}")


def img2img_timesteps(scheduler, num_inference_steps: int, noise_strength: float) -> torch.Tensor:
    """The reverse timesteps that remain after noising to ``noise_strength`` (diffusers' img2img rule:
    ``int(num_inference_steps * noise_strength)`` steps, e.g. 57 for 250 steps at 0.23)."""
    scheduler.set_timesteps(num_inference_steps)
    n = min(int(num_inference_steps * noise_strength), num_inference_steps)
    if n < 1:
        raise ValueError(
            f"noise_strength={noise_strength} with {num_inference_steps} steps leaves no reverse step"
        )
    return scheduler.timesteps[num_inference_steps - n :]


def denoise(unet, scheduler, latents: torch.Tensor, num_inference_steps: int = 50, strength: float = 1.0,
            generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Unguided ancestral sampling: from pure noise (``strength=1``, ``latents`` only gives the shape)
    or img2img from ``latents`` noised to ``strength``."""
    dev = next(unet.parameters()).device
    if strength >= 1.0:
        scheduler.set_timesteps(num_inference_steps)
        ts = scheduler.timesteps
        z = torch.randn(latents.shape, generator=generator).to(dev)
    else:
        ts = img2img_timesteps(scheduler, num_inference_steps, strength)
        noise = torch.randn(latents.shape, generator=generator).to(dev)
        z = scheduler.add_noise(latents.to(dev), noise, ts[:1].repeat(len(latents)))
    for t in ts:
        eps = unet(z, t.to(dev)).sample
        z = scheduler.step(eps, t, z, generator=generator).prev_sample
    return z


@torch.no_grad()
def encode_images(vae, images: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Images in ``[-1, 1]`` -> scaled latents (the posterior mean; a posterior sample with ``generator``)."""
    p = next(vae.parameters())
    dist = vae.encode(images.to(p.device, p.dtype)).latent_dist
    z = dist.mean if generator is None else dist.sample(generator=generator)
    return z * vae.config.scaling_factor


@torch.no_grad()
def decode_latents(vae, latents: torch.Tensor, chunk_size: Optional[int] = None) -> torch.Tensor:
    """Scaled latents -> images in ``[-1, 1]``, ``chunk_size`` at a time (default: what half the free
    memory holds, :func:`emosmc.memory.decode_batch_size`)."""
    from .memory import decode_batch_size

    p = next(vae.parameters())
    chunk_size = chunk_size or decode_batch_size(p.device, int(vae.config.sample_size), p.dtype)
    sf = vae.config.scaling_factor
    return torch.cat([vae.decode((z / sf).to(p.device, p.dtype)).sample for z in latents.split(chunk_size)]).clamp(-1, 1)
