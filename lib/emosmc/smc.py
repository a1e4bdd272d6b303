r"""Feynman-Kac (SMC) steering of a diffusion sampler.

A population of N particles follows the model's reverse diffusion. Every ``resample_interval`` steps each
particle is scored by a reward ``r`` (for emotion editing: the log-probability of the target emotion), weighted
by a potential (:mod:`emosmc.potentials`), and the population is resampled in proportion to its weights
(:mod:`emosmc.resampling`). The sampler works with any diffusers scheduler, any epsilon (or v / sample)
prediction model and any reward, on tensors of any shape: the same code runs the 2-D toy of
:mod:`emosmc.toy.mixture2d` and the latent face editor.

One step of :class:`SMCSampler` (``next(sampler)``): predict (one model call), then every
``resample_interval`` steps weight and maybe resample, then move (the scheduler's ancestral step); after the
last move, the final weighting on the clean output.

Where the reward is computed: ``reward_on="xt"`` scores the noisy state itself (what the report does: it
decodes the noisy latent); ``reward_on="x0"`` scores the scheduler's prediction of the clean sample from the
same model evaluation (``pred_original_sample``, Singhal et al.), which costs no extra model call.

Resampling happens at every evaluation step, or -- when ``ess_threshold`` is set -- only when
``ESS < ess_threshold * N``; weights are carried forward otherwise. ``ess_threshold=0`` evaluates the reward
and weights the particles but never resamples. A resampling step whose weights are exactly uniform is skipped
(it could only shuffle the particles), which is why ``guidance_scale=0`` reproduces the unguided sampler
exactly for the same generator.

Guided proposals (``gradient_scale > 0``, :mod:`emosmc.guided_proposal`): each move is nudged up the
reward's gradient at the clean-sample prediction, and (with ``proposal_correction``, the default) the weights
correct for the nudge, so the population still targets ``p_model exp(lambda r)``.

Keeping the source outside a region (``region=``, img2img only): after every move each particle is blended with
the source noised to the new timestep, outside the region's soft mask and, with ``lowpass``, in its block means
inside it (:func:`emosmc.regions.blend`: blended latent diffusion, ILVR). ``generator``: one for the batch, or a
list of one per row (as diffusers accepts), so that a row's result does not depend on the rest of its batch.

Degenerate weights: a NaN reward raises :class:`ValueError`; a row in which every particle has zero weight
(e.g. all classifier probabilities are exactly 0 with ``reward_transform="log"``) falls back to uniform
weights with a :class:`RuntimeWarning`.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator, List, Optional, Sequence

import torch
from diffusers.utils.torch_utils import randn_tensor

from .diffusion import img2img_timesteps, predict_x0  # noqa: F401  (part of the engine's API)
from .guided_proposal import check_guidable, guided_step, reward_and_grad
from .potentials import POTENTIALS, LineageRewards, Potential, finite as _finite  # noqa: F401
from .regions import blend, check_region
from .resampling import RESAMPLING_SCHEMES, LogWeights, gather_rows as _gather, resample
from .smc_config import REWARD_ON, SMCConfig  # noqa: F401  (part of the engine's API)
from .smc_result import SMCResult, SMCState, StepTrace

__all__ = ["SMCConfig", "SMCSampler", "SMCState", "SMCResult", "StepTrace", "POTENTIALS", "Potential", "smc_sample"]


# model(x: (M, *shape), t: scalar tensor) -> model output (M, *shape)
ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# reward(x: (B, N, *shape), t: scalar tensor) -> (B, N)
RewardFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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
        generator=None,
        device=None,
        dtype=None,
        region: Optional[torch.Tensor] = None,
    ):
        self.scheduler, self.model, self.reward = scheduler, model, reward
        self.config = config = config or SMCConfig()
        self.generator = generator
        N = config.num_particles
        if isinstance(generator, (list, tuple)):
            B = init_latents.shape[0] if init_latents is not None else batch_size
            if len(generator) != B:
                raise ValueError(f"{len(generator)} generators for a batch of {B} rows: give one per row, or one")
        if init_latents is not None:
            if init_latents.dim() < 2:
                raise ValueError(f"init_latents must be (B, *shape), got {tuple(init_latents.shape)}")
            self.B, self.shape = init_latents.shape[0], tuple(init_latents.shape[1:])
            device, dtype = init_latents.device, init_latents.dtype
            self.timesteps = img2img_timesteps(scheduler, config.num_inference_steps, config.noise_strength)
            self.source = init_latents.repeat_interleave(N, dim=0)
            self.init_noise = noise = self._randn(self.source.shape, device, dtype)
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
            self.source = self.init_noise = None
            self.x = self._randn((self.B * N, *self.shape), device, dtype) * scheduler.init_noise_sigma
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
            check_guidable(scheduler)
        self.region = None if region is None else check_region(region, self.source, self.B, self.shape, N, self.x)
        if region is None and config.lowpass:
            raise ValueError("lowpass keeps the source's colours inside a region: give region= too")

    # -- helpers ---------------------------------------------------------------
    @property
    def _row_generators(self) -> bool:
        return isinstance(self.generator, (list, tuple))

    def _randn(self, shape, device, dtype) -> torch.Tensor:
        """Standard normal noise ``(B*N, ...)``: from the one generator, or row by row from each row's own."""
        if not self._row_generators:
            return randn_tensor(tuple(shape), generator=self.generator, device=device, dtype=dtype)
        per = (shape[0] // len(self.generator), *shape[1:])
        return torch.cat([randn_tensor(per, generator=g, device=device, dtype=dtype) for g in self.generator])

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

    def _ess(self) -> torch.Tensor:
        return LogWeights(self.logw).ess.float().cpu()

    # -- the steps of one iteration, in order ------------------------------------
    def _predict(self, t):
        """One model call: the model's output and the clean-sample prediction ``x0``."""
        out = self.model(self.x, t)
        self.num_model_evals += self.x.shape[0]
        return out, predict_x0(self.scheduler, out, self.x, t)

    def _reward_gradient(self, x0: torch.Tensor, t):
        """Guided proposals only: the reward at ``x0`` and its gradient; ``(None, None)`` otherwise."""
        if self.config.gradient_scale == 0:
            return None, None
        r, grad = reward_and_grad(self._reward, x0, t)
        self.num_reward_grads += x0.shape[0]
        return r, grad

    def _is_weighting_step(self, k: int) -> bool:
        """Every ``resample_interval`` steps but the first, when anything weights the particles."""
        cfg = self.config
        weighted = cfg.guidance_scale != 0 or (cfg.gradient_scale > 0 and cfg.proposal_correction)
        return k > 0 and k % cfg.resample_interval == 0 and weighted

    def _weight(self, x0: torch.Tensor, r_x0: Optional[torch.Tensor], t) -> Optional[torch.Tensor]:
        """Multiply the weights by the potential of the rewards (on ``x_t`` or on ``x0``, per ``reward_on``);
        returns the rewards, ``None`` when ``guidance_scale = 0`` (only a guided proposal's correction weighs)."""
        cfg = self.config
        if cfg.guidance_scale == 0:
            return None
        if cfg.reward_on == "x0":
            r = r_x0 if r_x0 is not None else self._reward(x0, t)
        else:
            r = self._reward(self.x, t)
        self._reweight(r, final=False)
        return self.rewards.float().cpu()

    def _maybe_resample(self, now: bool, *tensors: Optional[torch.Tensor]):
        """At a weighting step (``now``), resample the rows whose weights call for it; returns ``(tensors,
        ancestors, which rows)``: the particles' own ``(B*N, *shape)`` tensors (``None`` passes through)
        gathered along, the ancestors ``None`` when no row resampled."""
        if not now:
            return tensors, None, None
        cfg, N = self.config, self.config.num_particles
        lw = LogWeights(self.logw)
        do = ~lw.is_uniform
        if cfg.ess_threshold is not None:
            do &= lw.ess < cfg.ess_threshold * N
        if not do.any():
            return tensors, None, None
        if self._row_generators:  # only the rows that resample draw: a row's stream does not depend on the others
            keep = torch.arange(N, device=lw.W.device)[None]
            A = torch.cat([resample(cfg.resampling, lw.W[b:b + 1], generator=g).to(keep.device) if do[b] else keep
                           for b, g in enumerate(self.generator)])
        else:
            A = resample(cfg.resampling, lw.W, generator=self.generator)
        A = A.to(self.device)
        A = torch.where(do[:, None], A, torch.arange(N, device=self.device))
        def along(v):
            return None if v is None else _gather(self._view(v), A).reshape(v.shape)
        self.x, tensors = along(self.x), tuple(along(v) for v in tensors)
        if self.source is not None:
            self.source = _gather(self._view(self.source), A).reshape(self.source.shape)
            self.init_noise = _gather(self._view(self.init_noise), A).reshape(self.init_noise.shape)
        self.cum_logG, self.rewards, self.past = _gather(self.cum_logG, A), _gather(self.rewards, A), self.past.gather(A)
        self.logw = torch.where(do[:, None], torch.zeros_like(self.logw), _gather(self.logw, A))
        return tensors, A.cpu(), do.cpu()

    def _move(self, out: torch.Tensor, x0: torch.Tensor, grad: Optional[torch.Tensor], t) -> None:
        """One reverse step of the model for every particle -- or of the guided proposal, with its
        weight correction -- pulled towards the source by ``leash``."""
        if grad is None and not self._row_generators:
            self.x = self.scheduler.step(out, t, self.x, generator=self.generator).prev_sample
        elif grad is None:  # row by row, each with its own generator (DDPM-family steps keep no state)
            N = self.config.num_particles
            self.x = torch.cat([self.scheduler.step(o, t, x, generator=g).prev_sample
                                for o, x, g in zip(out.split(N), self.x.split(N), self.generator)])
        else:
            noise = self._randn(self.x.shape, self.x.device, self.x.dtype)
            self.x, log_p_over_q = guided_step(self.scheduler, self.x, x0, grad, t, self.config.gradient_scale,
                                               noise=noise)
            if self.config.proposal_correction and log_p_over_q is not None:
                self.logw = self.logw + log_p_over_q.view(self.B, -1)
        if self.config.leash > 0 and self.source is not None:
            self.x = (1 - self.config.leash) * self.x + self.config.leash * self.source
        if self.region is not None:
            self._keep_source()

    def _keep_source(self) -> None:
        """Outside the region, the source noised to the timestep just reached (with each particle's own
        starting noise; the clean source after the last move); inside it, with ``lowpass``, the same's block
        means (:func:`emosmc.regions.blend`)."""
        k1 = self.k + 1
        if k1 < len(self.timesteps):
            known = self.scheduler.add_noise(self.source, self.init_noise,
                                             self.timesteps[k1:k1 + 1].repeat(self.source.shape[0]))
        else:
            known = self.source
        self.x = blend(self.x, known, self.region, self.config.lowpass)

    def _final_weighting(self) -> torch.Tensor:
        """After the last move: weight the clean output by its reward (the corrected potentials' last factor)."""
        self._reweight(self._reward(self.x, self.timesteps[-1] * 0), final=True)
        return self.rewards.float().cpu()

    # -- the iteration ---------------------------------------------------------
    def __iter__(self):
        return self

    def __next__(self) -> SMCState:
        """One step: predict, weight and maybe resample (every ``resample_interval`` steps), move; after the
        last move, the final weighting on the clean output."""
        if self.k >= len(self.timesteps):
            raise StopIteration
        k, t = self.k, self.timesteps[self.k]
        out, x0 = self._predict(t)
        r_x0, grad = self._reward_gradient(x0, t)
        weighting = self._is_weighting_step(k)
        rewards = self._weight(x0, r_x0, t) if weighting else None
        ess = self._ess()  # of the weights before resampling
        (out, x0, grad), ancestors, resampled = self._maybe_resample(weighting, out, x0, grad)
        self._move(out, x0, grad, t)
        self.k += 1
        done = self.k == len(self.timesteps)
        if done:
            rewards, ess = self._final_weighting(), self._ess()
        self.trace.append(StepTrace(k, int(t), ess, rewards, ancestors, resampled))
        return SMCState(k, int(t), self._view(self.x), self._view(x0), self.logw, self.trace[-1], done)

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


def smc_sample(scheduler, model: ModelFn, reward: RewardFn, config: Optional[SMCConfig] = None,
               progress: bool = False, **kwargs) -> SMCResult:
    """Run :class:`SMCSampler` to the end. ``kwargs`` go to its constructor."""
    return SMCSampler(scheduler, model, reward, config, **kwargs).run(progress=progress)
