"""The exact posterior over a few candidate clean latents given a noisy one: how much of the source's
expression the diffusion noise of an img2img edit leaves, for an ideal denoiser that knew the identity
(``benchmarks/toy_denoiser.py``; the figures are in docs/toy_world_experiments.md, "Where the source's
expression is lost")."""
import torch

__all__ = ["expression_posterior"]


def expression_posterior(noisy: torch.Tensor, candidates: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """``(B, K)``: the exact posterior over ``K`` candidate clean latents given noisy ones
    ``z_t = sqrt(alpha_bar) z0 + sqrt(1 - alpha_bar) eps`` (the DDPM forward process), with ``z0``
    a priori one of the candidates, each equally likely. ``noisy``: ``(B, ...)``; ``candidates``:
    ``(B, K, ...)`` (e.g. one identity's seven expressions, VAE-encoded) or ``(K, ...)`` shared by all.

    It tells how much of the source the noise of an img2img edit leaves. It is not a bound for a
    denoiser that must infer more from a richer prior, but measured it moves little: at the toy edit's
    first timestep 0.925 with the identity's seven latents as candidates, 0.912 with 8 candidate geometries
    (the true one among them) x 6 intensities of each expression (``benchmarks/toy_denoiser.py``)."""
    a = torch.as_tensor(alpha_bar, dtype=noisy.dtype)
    if not 0 < float(a) < 1:
        raise ValueError(f"alpha_bar must be in (0, 1), got {float(a)}")
    if candidates.dim() == noisy.dim():
        candidates = candidates.expand(len(noisy), *candidates.shape)
    if candidates.shape[0] != noisy.shape[0] or candidates.shape[2:] != noisy.shape[1:]:
        raise ValueError(f"candidates {tuple(candidates.shape)} do not match noisy latents {tuple(noisy.shape)}")
    sq = ((noisy[:, None] - a.sqrt() * candidates) ** 2).flatten(2).sum(-1)
    return (-sq / (2 * (1 - a))).softmax(1)
