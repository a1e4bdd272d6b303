r"""Potentials: how a particle's rewards become its weight, and the registry of them.

Potentials (``lambda`` is ``guidance_scale``; ``r_k`` the reward of a particle at
the k-th evaluation, ``r_K`` at the end of sampling on the clean output)

* ``paper`` -- Algorithm 1 of Paing & Rochas (2025): ``G_k = exp(lambda r_k)``,
  i.e. ``w = p(target)^gamma`` at every resampling step, and again at the end.
  It targets no fixed distribution: every resampling multiplies the surviving
  lineages by ``p^gamma`` once more, so the population over-concentrates on what
  the classifier likes (how much depends on gamma, the steps and where the reward
  is read; notebook 00 measures it against the exact target).
* ``immediate`` -- ``G_k = exp(lambda r_k)`` (Singhal et al. 2025).
* ``difference`` -- ``G_k = exp(lambda (r_k - r_{k-1}))`` with ``r_0 = 0``:
  the product telescopes to ``exp(lambda r_K)``.
* ``max`` -- ``G_k = exp(lambda max_{j<=k} r_j)``.
* ``sum`` -- ``G_k = exp(lambda sum_{j<=k} r_j)``.

For every potential except ``paper`` the last weighting is the *correction*
``G_K = exp(lambda r_K) / prod_{k<K} G_k`` (the product taken along the particle's
ancestral line), so the product of all potentials along any path is exactly
``exp(lambda r_K)``, and the weighted final particles estimate, consistently as N grows,

.. math:: \pi(x) \propto p_\text{model}(x)\, \exp(\lambda\, r(x)).

With ``r = log p(target | x)`` that is ``p_model(x) p(target | x)^lambda``.

What the tests check (``tests/test_smc.py``, the analytic 2-D target of :mod:`emosmc.toy.mixture2d`): without
resampling, the final log-weight of every corrected potential equals ``lambda r_K`` exactly; with
``difference`` on x0 predictions, N = 2000 and adaptive resampling, the weighted population's mode
masses match the exact tilted target, and on a Gaussian with a linear reward (lambda = 1.5, N = 2000) its
weighted mean does too while ``immediate``, ``max`` and ``sum`` overshoot it five- to tenfold with a final
ESS of a few particles. That the corrected potentials target ``pi`` holds as N grows;
at a finite N and a large ``lambda`` the ``immediate``, ``max`` and ``sum`` potentials pile weight on a
few lineages during the run, the final correction then has huge variance, and the population can be
far from ``pi`` (notebook 00 shows ``sum`` losing a mode like ``paper`` does).

A potential added to :data:`POTENTIALS` is a choice of :class:`emosmc.smc.SMCConfig`, the CLI and the
explorer without other edits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .resampling import gather_rows

__all__ = ["Potential", "POTENTIALS", "LineageRewards", "finite"]


@dataclass
class LineageRewards:
    """What a potential may know of a particle's past, along its ancestral line: the previous
    reward, the running max and the running sum (each ``(B, N)``)."""

    prev: torch.Tensor
    max: torch.Tensor
    sum: torch.Tensor

    def update(self, r: torch.Tensor) -> "LineageRewards":
        return LineageRewards(r, torch.maximum(self.max, r), self.sum + r)

    def gather(self, ancestors: torch.Tensor) -> "LineageRewards":
        return LineageRewards(*(gather_rows(v, ancestors) for v in (self.prev, self.max, self.sum)))


@dataclass(frozen=True)
class Potential:
    """A potential ``G_k``: ``log_G(lam, r, past) -> (B, N)`` log-potential of the rewards ``r`` at an
    intermediate evaluation. ``corrected``: the last weighting divides out every earlier potential,
    so the weighted final particles target ``p_model exp(lam r)`` (every potential here but ``paper``)."""

    log_G: Callable[[float, torch.Tensor, "LineageRewards"], torch.Tensor]
    corrected: bool = True
    doc: str = ""


POTENTIALS = {
    "paper": Potential(lambda lam, r, past: lam * r, corrected=False, doc="Algorithm 1: p^gamma at every step"),
    "immediate": Potential(lambda lam, r, past: lam * r, doc="exp(lam r_k)"),
    "difference": Potential(lambda lam, r, past: lam * (r - finite(past.prev)), doc="exp(lam (r_k - r_{k-1}))"),
    "max": Potential(lambda lam, r, past: lam * torch.maximum(past.max, r), doc="exp(lam max_j r_j)"),
    "sum": Potential(lambda lam, r, past: lam * (finite(past.sum) + r), doc="exp(lam sum_j r_j)"),
}

def finite(x: torch.Tensor) -> torch.Tensor:
    """History of a particle the reward had ruled out (-inf) counts as 0 for later potentials."""
    return torch.where(torch.isneginf(x), torch.zeros_like(x), x)
