"""What a steering run leaves: one :class:`StepTrace` per reverse step, the :class:`SMCState` yielded
after each step, and the final :class:`SMCResult` (particles, weights, rewards, ESS curve, genealogy)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import torch

from .resampling import LogWeights, gather_rows, resample

__all__ = ["StepTrace", "SMCState", "SMCResult"]


@dataclass
class StepTrace:
    """What happened at one reverse step (all tensors on the CPU, small)."""

    step: int
    timestep: int
    ess: torch.Tensor  # (B,) ESS of the weights after this step's reweighting (before resampling)
    rewards: Optional[torch.Tensor] = None  # (B, N) when the reward was evaluated at this step
    ancestors: Optional[torch.Tensor] = None  # (B, N) when any row resampled
    resampled: Optional[torch.Tensor] = None  # (B,) bool


@dataclass
class SMCState:
    """The population after a reverse step; yielded by iterating an :class:`SMCSampler`."""

    step: int
    timestep: int
    x: torch.Tensor  # (B, N, *shape) particles after the step
    x0_pred: torch.Tensor  # (B, N, *shape) prediction of the clean sample at this step
    log_weights: torch.Tensor  # (B, N)
    trace: StepTrace
    done: bool = False

    @property
    def weights(self) -> torch.Tensor:
        return LogWeights(self.log_weights).W


@dataclass
class SMCResult:
    """Final population of a steering run."""

    particles: torch.Tensor  # (B, N, *shape)
    log_weights: torch.Tensor  # (B, N) final log-weights (target-correct for all but `paper`)
    rewards: torch.Tensor  # (B, N) reward of the final particles
    best_index: torch.Tensor  # (B,) particle with the highest final reward
    trace: List[StepTrace] = field(default_factory=list)
    timesteps: Optional[torch.Tensor] = None
    num_model_evals: int = 0
    num_reward_evals: int = 0
    num_reward_grads: int = 0  # backward passes of the reward (guided proposals)

    @property
    def best(self) -> torch.Tensor:
        """``(B, *shape)``: the particle with the highest final reward in each row."""
        return self.particles[torch.arange(self.particles.shape[0]), self.best_index]

    @property
    def weights(self) -> torch.Tensor:
        return LogWeights(self.log_weights).W

    @property
    def ess(self) -> torch.Tensor:
        return LogWeights(self.log_weights).ess

    def ess_curve(self) -> torch.Tensor:
        """``(K, B)`` ESS after each step's reweighting."""
        return torch.stack([s.ess for s in self.trace])

    def genealogy(self) -> torch.Tensor:
        """``(K + 1, B, N)``: entry ``[k, b, n]`` is the index, at step k, of the ancestor of
        final particle n of row b (``[K]`` is the identity). Lines that merge have coalesced."""
        B, N = self.log_weights.shape
        line = torch.arange(N).expand(B, N).clone()
        lines = [line]
        for s in reversed(self.trace):
            if s.ancestors is not None:
                line = torch.gather(s.ancestors, 1, line)
            lines.append(line)
        return torch.stack(lines[::-1])

    def resampled_draws(self, generator: Optional[torch.Generator] = None, scheme: str = "multinomial"):
        """``(B, N, *shape)`` equally weighted draws from the final weighted population."""
        A = resample(scheme, self.weights, generator=generator).to(self.particles.device)
        return gather_rows(self.particles, A)
