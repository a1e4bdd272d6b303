r"""Guided proposals (``SMCConfig.gradient_scale > 0``): the DDPM move nudged up the reward's gradient.

Each move shifts the DDPM transition's mean up the reward's gradient at the clean-sample prediction,
``delta = gradient_scale * sigma_t^2 * grad r(x0_hat)``, and draws ``x' = mean + delta + sigma_t * eps``. With
``proposal_correction`` (the default) every move multiplies the particle's weight by model transition /
proposal transition, ``log p - log q = -|delta|^2 / (2 sigma^2) - eps . delta / sigma``, so the weighted
population targets the same ``p_model exp(lambda r)`` as without the nudge (tested on the analytic 2-D
target); the nudge only puts the particles where the weights will want them. Without the correction it is
plain gradient (classifier) guidance, a biased sampler. It needs a DDPM scheduler with
``variance_type="fixed_small"`` and no clipping, and a reward that autograd can differentiate (the latent
scorer; one backward pass of the reward per particle and step, no UNet backward). The last step
(``sigma = 0``) is never nudged.

:class:`emosmc.smc.SMCSampler` calls these functions; they hold no state of their own.
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
from diffusers.utils.torch_utils import randn_tensor

__all__ = ["check_guidable", "reward_and_grad", "ddpm_transition", "guided_step"]


def check_guidable(scheduler) -> None:
    """Guided proposals write the DDPM transition out themselves: refuse schedulers it would not match."""
    c = scheduler.config
    problems = []
    if not hasattr(scheduler, "previous_timestep") or "variance_type" not in c:
        problems.append(f"{type(scheduler).__name__} is not a DDPM scheduler")
    else:
        if c.variance_type not in ("fixed_small", None):
            problems.append(f"variance_type={c.variance_type!r} (need 'fixed_small')")
        if c.get("clip_sample") or c.get("thresholding"):
            problems.append("clip_sample/thresholding is on (need both off)")
    if problems:
        raise ValueError("gradient_scale > 0 (guided proposals) needs a DDPMScheduler with variance_type='fixed_small' "
                         "and no clipping; " + "; ".join(problems))


def reward_and_grad(reward: Callable, x0: torch.Tensor, t) -> Tuple[torch.Tensor, torch.Tensor]:
    """``reward(x0, t)`` at the clean-sample predictions and its gradient with respect to them (non-finite
    entries of the gradient set to 0; rewards of -inf left out of it)."""
    with torch.enable_grad():
        z = x0.detach().requires_grad_(True)
        r = reward(z, t)
        if not r.requires_grad:
            raise ValueError("gradient_scale > 0 needs a reward autograd can differentiate; this one returned "
                             "a tensor without a graph (computed under torch.no_grad?)")
        (g,) = torch.autograd.grad(r[torch.isfinite(r)].sum(), z)
    return r.detach(), torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)


def ddpm_transition(scheduler, t) -> Tuple[float, float, float]:
    """``(c0, ct, sigma)`` of the DDPM step from ``t``: mean ``c0 x0 + ct x``, noise ``sigma``."""
    ac = scheduler.alphas_cumprod.to(torch.float64)
    prev = int(scheduler.previous_timestep(t))
    a_t, a_prev = ac[int(t)], (ac[prev] if prev >= 0 else torch.tensor(1.0, dtype=torch.float64))
    beta = 1 - a_t / a_prev
    c0, ct = a_prev.sqrt() * beta / (1 - a_t), (a_t / a_prev).sqrt() * (1 - a_prev) / (1 - a_t)
    sigma = ((1 - a_prev) / (1 - a_t) * beta).clamp(min=1e-20).sqrt() if int(t) > 0 else torch.tensor(0.0)
    return float(c0), float(ct), float(sigma)


def guided_step(scheduler, x: torch.Tensor, x0: torch.Tensor, grad: torch.Tensor, t, gradient_scale: float,
                generator: Optional[torch.Generator] = None,
                noise: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """One nudged DDPM step of the particles ``x`` ``(M, *shape)``: ``(x', log p/q)``, the second the
    per-particle log density ratio model / proposal ``(M,)`` (float64), ``None`` at the last step (no noise,
    no nudge). The step's standard normal ``noise`` is drawn from ``generator`` unless given."""
    c0, ct, sigma = ddpm_transition(scheduler, t)
    if noise is None:
        noise = randn_tensor(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    delta = gradient_scale * sigma**2 * grad.to(x.dtype)  # sigma = 0 at the last step
    x_next = c0 * x0 + ct * x + delta + sigma * noise
    if sigma == 0:
        return x_next, None
    d, e = delta.flatten(1).double(), noise.flatten(1).double()
    return x_next, -(d * d).sum(1) / (2 * sigma**2) - (e * d).sum(1) / sigma
