r"""Feynman-Kac (SMC) steering of a diffusion sampler.

A population of N particles follows the model's reverse diffusion. Every
``resample_interval`` steps each particle is scored by a reward ``r`` (for
emotion editing: the log-probability of the target emotion), weighted by a
potential (:mod:`emosmc.potentials`), and the population is resampled in
proportion to its weights (:mod:`emosmc.resampling`). The sampler works with any
diffusers scheduler, any epsilon (or v / sample) prediction model and any reward,
on tensors of any shape: the same code runs the 2-D toy of :mod:`emosmc.toy.mixture2d`
and the latent face editor.

One step of :class:`SMCSampler` (``next(sampler)``): predict (one model call), then
every ``resample_interval`` steps reweight and maybe resample, then move (the
scheduler's ancestral step); after the last move, the final weighting on the clean
output.

Where the reward is computed: ``reward_on="xt"`` scores the noisy state itself
(what the report does: it decodes the noisy latent); ``reward_on="x0"`` scores
the scheduler's prediction of the clean sample from the same model evaluation
(``pred_original_sample``, Singhal et al.), which costs no extra model call.

Resampling happens at every evaluation step, or -- when ``ess_threshold`` is set
-- only when ``ESS < ess_threshold * N``; weights are carried forward otherwise.
``ess_threshold=0`` evaluates the reward and weights the particles but never resamples.
A resampling step whose weights are exactly uniform is skipped (it could only
shuffle the particles), which is why ``guidance_scale=0`` reproduces the
unguided sampler exactly for the same generator.

Guided proposals (``gradient_scale > 0``): each move shifts the DDPM transition's mean up the reward's
gradient at the clean-sample prediction, ``delta = gradient_scale * sigma_t^2 * grad r(x0_hat)``, and draws
``x' = mean + delta + sigma_t * eps``. With ``proposal_correction`` (the default) every move multiplies the
particle's weight by model transition / proposal transition,
``log p - log q = -|delta|^2 / (2 sigma^2) - eps . delta / sigma``, so the weighted population targets the
same ``p_model exp(lambda r)`` as without the nudge (tested on the analytic 2-D target); the nudge only puts
the particles where the weights will want them. Without the correction it is plain gradient (classifier)
guidance, a biased sampler. It needs a DDPM scheduler with ``variance_type="fixed_small"`` and no clipping,
and a reward that autograd can differentiate (the latent scorer; one backward pass of the reward per
particle and step, no UNet backward). The last step (``sigma = 0``) is never nudged.

Degenerate weights: a NaN reward raises :class:`ValueError`; a row in which every
particle has zero weight (e.g. all classifier probabilities are exactly 0 with
``reward_transform="log"``) falls back to uniform weights with a
:class:`RuntimeWarning`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence

import torch
from diffusers.utils.torch_utils import randn_tensor

from .diffusion import img2img_timesteps, predict_x0  # noqa: F401  (part of the engine's API)
from .potentials import POTENTIALS, LineageRewards, Potential, finite as _finite  # noqa: F401
from .resampling import RESAMPLING_SCHEMES, LogWeights, gather_rows as _gather, resample
from .smc_result import SMCResult, SMCState, StepTrace

__all__ = ["SMCConfig", "SMCSampler", "SMCState", "SMCResult", "StepTrace", "POTENTIALS", "Potential", "smc_sample"]

REWARD_ON = ("xt", "x0")


# model(x: (M, *shape), t: scalar tensor) -> model output (M, *shape)
ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# reward(x: (B, N, *shape), t: scalar tensor) -> (B, N)
RewardFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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


class SMCSampler(Iterator[SMCState]):
    """Step-by-step Feynman-Kac steering.

    Args:
        scheduler: a diffusers DDPM-family scheduler (``set_timesteps``, ``step``, ``add_noise``,
            ``alphas_cumprod``). It is reconfigured by ``set_timesteps``.
        model: ``model(x, t) -> output`` on a flat batch ``(B*N, *shape)``.
        reward: ``reward(x, t) -> (B, N)`` on ``(B, N, *shape)``: ``r`` itself, or probabilities when
            ``config.reward_transform == "log"``. Each row b may use its own target.
        config: the :class:`SMCConfig`.
        init_latents: ``(B, *shape)`` clean source samples for img2img; ``None`` starts from noise
            (then ``batch_size`` and ``shape`` are required and ``noise_strength`` must be 1).
        generator: a ``torch.Generator`` on the particles' device; every random draw uses it.

    Iterate it (``next(sampler)``) to watch one reverse step at a time, or call :meth:`run`.
    """

    def __init__(
        self,
        scheduler,
        model: ModelFn,
        reward: RewardFn,
        config: Optional[SMCConfig] = None,
        *,
        init_latents: Optional[torch.Tensor] = None,
        batch_size: Optional[int] = None,
        shape: Optional[Sequence[int]] = None,
        generator: Optional[torch.Generator] = None,
        device=None,
        dtype=None,
    ):
        self.scheduler, self.model, self.reward = scheduler, model, reward
        self.config = config = config or SMCConfig()
        self.generator = generator
        N = config.num_particles
        if init_latents is not None:
            if init_latents.dim() < 2:
                raise ValueError(f"init_latents must be (B, *shape), got {tuple(init_latents.shape)}")
            self.B, self.shape = init_latents.shape[0], tuple(init_latents.shape[1:])
            device, dtype = init_latents.device, init_latents.dtype
            self.timesteps = img2img_timesteps(scheduler, config.num_inference_steps, config.noise_strength)
            self.source = init_latents.repeat_interleave(N, dim=0)
            noise = randn_tensor(self.source.shape, generator=generator, device=device, dtype=dtype)
            t0 = self.timesteps[:1].repeat(self.source.shape[0])
            self.x = scheduler.add_noise(self.source, noise, t0)
        else:
            if batch_size is None or shape is None:
                raise ValueError("give init_latents (img2img) or batch_size and shape (from noise)")
            if config.noise_strength != 1.0:
                raise ValueError("sampling from noise needs noise_strength=1.0; pass init_latents for img2img")
            self.B, self.shape = batch_size, tuple(shape)
            dtype = dtype or torch.float32
            scheduler.set_timesteps(config.num_inference_steps)
            self.timesteps = scheduler.timesteps
            self.source = None
            self.x = randn_tensor(
                (self.B * N, *self.shape), generator=generator, device=device, dtype=dtype
            ) * scheduler.init_noise_sigma
        self.device = self.x.device
        self.timesteps = self.timesteps.to(self.device)
        B = self.B
        f64 = dict(device=self.device, dtype=torch.float64)
        self.logw = torch.zeros(B, N, **f64)
        self.cum_logG = torch.zeros(B, N, **f64)  # sum of log-potentials along each ancestral line
        self.past = LineageRewards(torch.zeros(B, N, **f64), torch.full((B, N), -math.inf, **f64),
                                   torch.zeros(B, N, **f64))
        self.rewards = torch.full((B, N), math.nan, **f64)
        self.trace: List[StepTrace] = []
        self.k = 0
        self.num_model_evals = 0
        self.num_reward_evals = 0
        self.num_reward_grads = 0
        if config.gradient_scale > 0:
            _check_guidable(scheduler)
        self._result: Optional[SMCResult] = None

    # -- helpers ---------------------------------------------------------------
    def _view(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(self.B, self.config.num_particles, *self.shape)

    def _reward(self, x: torch.Tensor, t) -> torch.Tensor:
        r = self.reward(self._view(x), t)
        self.num_reward_evals += x.shape[0]
        r = torch.as_tensor(r, device=self.device).to(torch.float64)
        if r.shape != (self.B, self.config.num_particles):
            raise ValueError(f"reward must return shape (B, N)={(self.B, self.config.num_particles)}, got {tuple(r.shape)}")
        if torch.isnan(r).any():
            raise ValueError(f"the reward returned NaN at step {self.k} for {int(torch.isnan(r).sum())} particle(s)")
        if self.config.reward_transform == "log":
            if (r < 0).any() or (r > 1).any():
                raise ValueError("reward_transform='log' expects probabilities in [0, 1]")
            r = torch.log(r)
        return r

    def _reward_and_grad(self, x0: torch.Tensor, t):
        """The reward at the clean-sample predictions and its gradient with respect to them."""
        with torch.enable_grad():
            z = x0.detach().requires_grad_(True)
            r = self._reward(z, t)
            if not r.requires_grad:
                raise ValueError("gradient_scale > 0 needs a reward autograd can differentiate; this one returned "
                                 "a tensor without a graph (computed under torch.no_grad?)")
            (g,) = torch.autograd.grad(r[torch.isfinite(r)].sum(), z)
        self.num_reward_grads += x0.shape[0]
        return r.detach(), torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)

    def _transition(self, t):
        """``(c0, ct, sigma)`` of the DDPM step from ``t``: mean ``c0 x0 + ct x``, noise ``sigma``."""
        sch = self.scheduler
        ac = sch.alphas_cumprod.to(torch.float64)
        prev = int(sch.previous_timestep(t))
        a_t, a_prev = ac[int(t)], (ac[prev] if prev >= 0 else torch.tensor(1.0, dtype=torch.float64))
        beta = 1 - a_t / a_prev
        c0, ct = a_prev.sqrt() * beta / (1 - a_t), (a_t / a_prev).sqrt() * (1 - a_prev) / (1 - a_t)
        sigma = ((1 - a_prev) / (1 - a_t) * beta).clamp(min=1e-20).sqrt() if int(t) > 0 else torch.tensor(0.0)
        return float(c0), float(ct), float(sigma)

    def _log_potential(self, r: torch.Tensor, final: bool) -> torch.Tensor:
        lam, pot = self.config.guidance_scale, POTENTIALS[self.config.potential]
        if lam == 0:
            return torch.zeros_like(r)
        if final and pot.corrected:
            logG = lam * r - _finite(self.cum_logG)
        else:
            logG = pot.log_G(lam, r, self.past)
        # a particle the reward rules out (r = -inf, e.g. probability 0) gets weight 0
        return torch.where(torch.isneginf(r), -math.inf, logG)

    def _reweight(self, r: torch.Tensor, final: bool) -> None:
        logG = self._log_potential(r, final)
        self.logw = self.logw + logG
        self.cum_logG = self.cum_logG + logG
        self.past = self.past.update(r)
        self.rewards = r

    def _resample(self, *tensors: Optional[torch.Tensor]):
        """Resample the rows whose weights call for it; returns ``(tensors, ancestors, which rows)``:
        the particles' own ``(B*N, *shape)`` tensors (``None`` passes through) gathered along, the
        ancestors ``None`` when no row resampled."""
        cfg, N = self.config, self.config.num_particles
        lw = LogWeights(self.logw)
        do = ~lw.is_uniform
        if cfg.ess_threshold is not None:
            do &= lw.ess < cfg.ess_threshold * N
        if not do.any():
            return tensors, None, None
        A = resample(cfg.resampling, lw.W, generator=self.generator).to(self.device)
        A = torch.where(do[:, None], A, torch.arange(N, device=self.device))
        def along(v):
            return None if v is None else _gather(self._view(v), A).reshape(v.shape)
        self.x, tensors = along(self.x), tuple(along(v) for v in tensors)
        if self.source is not None:
            self.source = _gather(self._view(self.source), A).reshape(self.source.shape)
        self.cum_logG, self.rewards, self.past = _gather(self.cum_logG, A), _gather(self.rewards, A), self.past.gather(A)
        self.logw = torch.where(do[:, None], torch.zeros_like(self.logw), _gather(self.logw, A))
        return tensors, A.cpu(), do.cpu()

    def _move(self, out: torch.Tensor, x0: torch.Tensor, grad: Optional[torch.Tensor], t) -> None:
        """One reverse step of the model for every particle -- or of the guided proposal, with its
        weight correction -- pulled towards the source by ``leash``."""
        if grad is None:
            self.x = self.scheduler.step(out, t, self.x, generator=self.generator).prev_sample
        else:
            c0, ct, sigma = self._transition(t)
            noise = randn_tensor(self.x.shape, generator=self.generator, device=self.device, dtype=self.x.dtype)
            delta = self.config.gradient_scale * sigma**2 * grad.to(self.x.dtype)  # sigma = 0 at the last step
            self.x = c0 * x0 + ct * self.x + delta + sigma * noise
            if self.config.proposal_correction and sigma > 0:
                d, e = delta.flatten(1).double(), noise.flatten(1).double()
                log_p_over_q = -(d * d).sum(1) / (2 * sigma**2) - (e * d).sum(1) / sigma
                self.logw = self.logw + log_p_over_q.view(self.B, -1)
        if self.config.leash > 0 and self.source is not None:
            self.x = (1 - self.config.leash) * self.x + self.config.leash * self.source

    # -- the iteration ---------------------------------------------------------
    def __iter__(self):
        return self

    def __next__(self) -> SMCState:
        """One step: predict, reweight and maybe resample (every ``resample_interval`` steps), move;
        after the last move, the final weighting on the clean output."""
        if self.k >= len(self.timesteps):
            raise StopIteration
        cfg, k, t = self.config, self.k, self.timesteps[self.k]
        out = self.model(self.x, t)
        self.num_model_evals += self.x.shape[0]
        x0 = predict_x0(self.scheduler, out, self.x, t)
        rewards = ancestors = resampled = grad = r_x0 = None
        guided = cfg.gradient_scale > 0
        if guided:
            r_x0, grad = self._reward_and_grad(x0, t)
        weighted = cfg.guidance_scale != 0 or (guided and cfg.proposal_correction)
        if k > 0 and k % cfg.resample_interval == 0 and weighted:
            if cfg.guidance_scale != 0:
                r = r_x0 if (r_x0 is not None and cfg.reward_on == "x0") else \
                    self._reward(self.x if cfg.reward_on == "xt" else x0, t)
                self._reweight(r, final=False)
                rewards = self.rewards.float().cpu()
            ess = LogWeights(self.logw).ess.float().cpu()
            (out, x0, grad), ancestors, resampled = self._resample(out, x0, grad)
        else:
            ess = LogWeights(self.logw).ess.float().cpu()
        self._move(out, x0, grad, t)
        self.k += 1
        done = self.k == len(self.timesteps)
        if done:
            self._reweight(self._reward(self.x, self.timesteps[-1] * 0), final=True)
            rewards, ess = self.rewards.float().cpu(), LogWeights(self.logw).ess.float().cpu()
        st = StepTrace(k, int(t), ess, rewards, ancestors, resampled)
        self.trace.append(st)
        return SMCState(k, int(t), self._view(self.x), self._view(x0), self.logw, st, done)

    def run(self, progress: bool = False) -> SMCResult:
        """Run all remaining steps and return the :class:`SMCResult`."""
        from tqdm.auto import tqdm

        steps = range(self.k, len(self.timesteps))
        for _ in tqdm(steps, desc="SMC", disable=not progress, leave=False):
            next(self)
        return self.result()

    def result(self) -> SMCResult:
        if self.k < len(self.timesteps):
            raise RuntimeError(f"the run is at step {self.k} of {len(self.timesteps)}; call run() first")
        return SMCResult(
            particles=self._view(self.x),
            log_weights=self.logw,
            rewards=self.rewards,
            best_index=self.rewards.argmax(dim=1),
            trace=self.trace,
            timesteps=self.timesteps.cpu(),
            num_model_evals=self.num_model_evals,
            num_reward_evals=self.num_reward_evals,
            num_reward_grads=self.num_reward_grads,
        )


def _check_guidable(scheduler) -> None:
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


def smc_sample(scheduler, model: ModelFn, reward: RewardFn, config: Optional[SMCConfig] = None,
               progress: bool = False, **kwargs) -> SMCResult:
    """Run :class:`SMCSampler` to the end. ``kwargs`` go to its constructor."""
    return SMCSampler(scheduler, model, reward, config, **kwargs).run(progress=progress)
