"""DDIM at a fixed eta, for ``benchmarks/toy_quality.py --ddim-eta``: the samplers compared in
docs/toy_world_experiments.md ("Steering settings"), kept out of the library because only that benchmark uses it."""
from typing import Optional

from diffusers import DDIMScheduler

__all__ = ["FixedEtaDDIMScheduler", "ddim_at_eta"]


class FixedEtaDDIMScheduler(DDIMScheduler):
    """diffusers' ``DDIMScheduler`` whose ``step`` uses ``self.eta`` unless the call passes its own (the SMC
    engine and :func:`emosmc.diffusion.denoise` call ``step`` without one). Build it with :func:`ddim_at_eta`.
    The eta is not saved with the scheduler: a pipeline saved with it loads back with the profile's DDPM scheduler."""

    eta: float = 0.0

    def step(self, model_output, timestep, sample, eta: Optional[float] = None, **kwargs):
        return super().step(model_output, timestep, sample, eta=self.eta if eta is None else eta, **kwargs)


def ddim_at_eta(scheduler, eta: float) -> FixedEtaDDIMScheduler:
    """A DDIM scheduler with ``scheduler``'s training schedule, stepping at ``eta``: ``0`` is deterministic;
    ``1``, with a ``fixed_small`` DDPM schedule and "leading" timestep spacing (the toy's and the report's), is
    DDPM's ancestral step up to rounding, with the same noise draws (DDIM also draws one unused noise tensor at
    the last step, where DDPM draws none)."""
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta}")
    ddim = FixedEtaDDIMScheduler.from_config(scheduler.config)
    ddim.eta = float(eta)
    return ddim
