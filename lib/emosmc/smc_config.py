"""``SMCConfig``: every setting of one steering run, declared once with its check (:mod:`emosmc.smc` runs it)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from .potentials import POTENTIALS
from .resampling import RESAMPLING_SCHEMES

__all__ = ["SMCConfig", "REWARD_ON"]

REWARD_ON = ("xt", "x0")


@dataclass
class SMCConfig:
    """Settings of one steering run. Defaults are the report's (N = 20, 250 steps, strength 0.23, gamma 5)."""

    num_particles: int = 20
    num_inference_steps: int = 250
    noise_strength: float = 0.23
    guidance_scale: float = 5.0
    potential: str = "paper"
    reward_on: str = "xt"
    resample_interval: int = 1
    ess_threshold: Optional[float] = None
    resampling: str = "multinomial"
    leash: float = 0.0
    reward_transform: Optional[str] = None  # None: reward is already r; "log": reward returns probabilities
    gradient_scale: float = 0.0  # > 0: each move nudges the x0 prediction up the reward's gradient (guided proposal)
    proposal_correction: bool = True  # with gradient_scale > 0: weight each move by model/proposal density
    lowpass: int = 0  # > 0 (with a region): inside it, keep the noised source's lowpass x lowpass block means

    def __post_init__(self):
        if self.potential not in POTENTIALS:
            raise ValueError(f"unknown potential {self.potential!r}; choose one of {list(POTENTIALS)}")
        if self.reward_on not in REWARD_ON:
            raise ValueError(f"reward_on must be one of {list(REWARD_ON)}, got {self.reward_on!r}")
        if self.resampling not in RESAMPLING_SCHEMES:
            raise ValueError(
                f"unknown resampling scheme {self.resampling!r}; choose one of {sorted(RESAMPLING_SCHEMES)}"
            )
        if self.num_particles < 1:
            raise ValueError(f"num_particles must be >= 1, got {self.num_particles}")
        if self.num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {self.num_inference_steps}")
        if not 0.0 < self.noise_strength <= 1.0:
            raise ValueError(f"noise_strength must be in (0, 1], got {self.noise_strength}")
        if self.resample_interval < 1:
            raise ValueError(f"resample_interval must be >= 1, got {self.resample_interval}")
        if self.ess_threshold is not None and not 0.0 <= self.ess_threshold <= 1.0:
            raise ValueError(f"ess_threshold must be in [0, 1] (0: never resample) or None, got {self.ess_threshold}")
        if not 0.0 <= self.leash < 1.0:
            raise ValueError(f"leash must be in [0, 1), got {self.leash}")
        if self.reward_transform not in (None, "log"):
            raise ValueError(f"reward_transform must be None or 'log', got {self.reward_transform!r}")
        if not math.isfinite(self.guidance_scale):
            raise ValueError(f"guidance_scale must be finite, got {self.guidance_scale}")
        if not (math.isfinite(self.gradient_scale) and self.gradient_scale >= 0):
            raise ValueError(f"gradient_scale must be finite and >= 0, got {self.gradient_scale}")
        if int(self.lowpass) != self.lowpass or self.lowpass < 0:
            raise ValueError(f"lowpass must be an integer >= 0 (0: off), got {self.lowpass}")
