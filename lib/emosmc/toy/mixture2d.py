"""An analytic diffusion in 2-D: a Gaussian mixture whose noise-prediction is exact.

The data distribution is ``p0 = sum_j pi_j N(mu_j, s_j^2 I)``. Under the
variance-preserving forward process ``x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps`` the
noisy marginal is again a mixture, ``p_t = sum_j pi_j N(sqrt(a_t) mu_j, v_j I)``
with ``v_j = a_t s_j^2 + 1 - a_t``, so the ideal epsilon-prediction
``eps(x, t) = -sqrt(1 - a_t) grad log p_t(x)`` is known in closed form: no
network, no training, and the SMC sampler can be checked against the truth.

The reward is a logistic "class" score ``r(x) = log sigmoid(w . x + b)``
(the log-probability a linear classifier gives the class), so the tilted target
``p0(x) exp(lambda r(x)) = p0(x) sigmoid(w . x + b)^lambda`` can be sampled
exactly by rejection from ``p0`` (the acceptance probability ``sigmoid^lambda``
is at most one).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from diffusers import DDPMScheduler

__all__ = ["GaussianMixture2D", "LogisticReward", "default_mixture", "rare_mode_mixture", "make_scheduler"]


@dataclass
class GaussianMixture2D:
    means: torch.Tensor  # (J, 2)
    stds: torch.Tensor  # (J,)
    weights: torch.Tensor  # (J,), sums to one

    def __post_init__(self):
        self.means = torch.as_tensor(self.means, dtype=torch.float64)
        self.stds = torch.as_tensor(self.stds, dtype=torch.float64)
        self.weights = torch.as_tensor(self.weights, dtype=torch.float64)
        self.weights = self.weights / self.weights.sum()

    def sample(self, n: int, generator=None) -> torch.Tensor:
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        return self.means[comp] + self.stds[comp, None] * z

    def _noisy_params(self, a: torch.Tensor):
        return a.sqrt() * self.means, a * self.stds**2 + (1 - a)  # (J, 2), (J,)

    def log_prob(self, x: torch.Tensor, a: float | torch.Tensor = 1.0) -> torch.Tensor:
        """log p_t(x) at ``alphas_cumprod = a`` (``a = 1`` is the data distribution)."""
        return self._component_log_probs(x, a).logsumexp(-1)

    def _component_log_probs(self, x, a=1.0):
        a = torch.as_tensor(a, dtype=torch.float64)
        m, v = self._noisy_params(a)
        x = x.to(torch.float64)
        d2 = ((x * x).sum(-1, keepdim=True) - 2 * x @ m.T + (m * m).sum(-1)).clamp(min=0)  # (..., J) |x - m_j|^2
        return self.weights.log() - d2 / (2 * v) - torch.log(2 * torch.pi * v)

    def component_of(self, x: torch.Tensor) -> torch.Tensor:
        """Most probable mixture component of each point (its 'mode label')."""
        return self._component_log_probs(x).argmax(-1)

    def component_masses(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted share of the points in each component (by :meth:`component_of`): ``x`` is ``(..., N, 2)``,
        ``weights`` ``(..., N)`` normalised (equal weights when omitted); returns ``(..., J)``."""
        labels = self.component_of(x)
        if weights is None:
            weights = torch.full(labels.shape, 1.0 / labels.shape[-1], dtype=torch.float64)
        out = torch.zeros(*labels.shape[:-1], len(self.weights), dtype=torch.float64)
        return out.scatter_add_(-1, labels, weights.to(torch.float64))

    def epsilon(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Exact ``eps(x, t) = -sqrt(1 - a) grad log p_t(x)`` at ``alphas_cumprod = a``."""
        x64 = x.to(torch.float64)
        m, v = self._noisy_params(a)
        resp_v = torch.softmax(self._component_log_probs(x64, a), dim=-1) / v  # (..., J) responsibilities / v_j
        score = resp_v @ m - x64 * resp_v.sum(-1, keepdim=True)  # sum_j resp_j (m_j - x) / v_j
        return (-(1 - a).sqrt() * score).to(x.dtype)

    def as_model(self, scheduler):
        """``model(x, t) -> eps`` for :class:`emosmc.smc.SMCSampler`."""
        ac = scheduler.alphas_cumprod.to(torch.float64)
        return lambda x, t: self.epsilon(x, ac[int(t)])

    def tilted_sample(self, n: int, reward: "LogisticReward", lam: float, generator=None) -> torch.Tensor:
        """Exact draws from ``p0(x) sigmoid(w.x + b)^lam`` by rejection sampling."""
        out, have = [], 0
        while have < n:
            x = self.sample(4 * n, generator)
            accept = torch.rand(len(x), generator=generator, dtype=torch.float64).log() < lam * reward.log_prob(x)
            out.append(x[accept])
            have += int(accept.sum())
        return torch.cat(out)[:n]

    def tilted_component_masses(self, reward: "LogisticReward", lam: float, n: int = 400_000, generator=None):
        """Mass of each component (by :meth:`component_of`) under the tilted target, by importance
        weighting ``n`` exact draws from ``p0``."""
        x = self.sample(n, generator)
        w = torch.exp(lam * reward.log_prob(x))
        labels = self.component_of(x)
        masses = torch.zeros(len(self.weights), dtype=torch.float64).index_add_(0, labels, w)
        return masses / masses.sum()


@dataclass
class LogisticReward:
    """``r(x) = log sigmoid(w . x + b)``: the log-probability of 'the class' at x."""

    w: torch.Tensor = field(default_factory=lambda: torch.tensor([2.0, 0.0]))
    b: float = 0.0

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.as_tensor(self.w, dtype=torch.float64)
        return torch.nn.functional.logsigmoid(x.to(torch.float64) @ w + self.b)

    def __call__(self, x: torch.Tensor, t=None) -> torch.Tensor:
        """Reward for the sampler: ``x`` is ``(B, N, 2)``, returns ``(B, N)``."""
        return self.log_prob(x)


def default_mixture() -> GaussianMixture2D:
    """Three well-separated modes: left, right and top."""
    return GaussianMixture2D(
        means=torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]]),
        stds=torch.tensor([0.5, 0.5, 0.5]),
        weights=torch.tensor([0.4, 0.4, 0.2]),
    )


def rare_mode_mixture(rare: float = 0.02) -> GaussianMixture2D:
    """Two modes, left and right, where the right one (the class the reward favours) holds only ``rare``
    of the mass: end-only importance sampling from a few particles often has no particle there."""
    return GaussianMixture2D(
        means=torch.tensor([[-2.0, 0.0], [2.0, 0.0]]),
        stds=torch.tensor([0.5, 0.5]),
        weights=torch.tensor([1.0 - rare, rare]),
    )


def make_scheduler(**overrides) -> DDPMScheduler:
    """A DDPM scheduler for the 2-D toy. The linear schedule ends at ``alphas_cumprod ~ 4e-5``,
    so the pure-noise start matches the forward process' end."""
    cfg = dict(num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon", clip_sample=False)
    cfg.update(overrides)
    return DDPMScheduler(**cfg)
