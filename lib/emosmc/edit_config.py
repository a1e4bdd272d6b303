"""``EditConfig``: every setting of one edit, in one object.

    from emosmc.profiles import get_profile
    config = get_profile("toy").edit                 # the profile's preset
    config = config.replace(num_particles=8)        # a new config; an unknown name is an error
    out = pipe(images, "happy", config)

It holds the :class:`~emosmc.smc.SMCConfig` that steers the sampler (its fields are readable on the
config itself: ``config.num_particles``) and the two settings of the pipeline around it: ``scorer`` (what
reads the particles) and ``final_check`` (how many particles the latent scorer's edit decodes at the
end). Every default is declared once: the steering settings' in ``SMCConfig`` (the report's), these two
here; a profile's preset names only what differs (:mod:`emosmc.profiles`). The CLI, the benchmarks and
the explorer build their options from :meth:`EditConfig.names`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace as _replace
from typing import List

from .smc import SMCConfig

__all__ = ["EditConfig", "SCORERS", "REGIONS"]

# pixel: decode every particle at every step and run the classifier (the report's Algorithm 1);
# latent: the distilled latent scorer reads the latents (no decode while steering)
SCORERS = ("pixel", "latent")
# none: the whole image may change (the report); expression: only the brows, eyes and mouth that the profile's
# region detector finds on the source image (emosmc.regions); the rest stays the source's
REGIONS = ("none", "expression")
# the pipeline's own settings, after SMCConfig's
_OWN = ("scorer", "final_check", "region", "paste_back", "min_change", "identity_weight")
# SMCConfig's fields that an edit does not set: the pipeline's rewards are log-probabilities already
_ENGINE_ONLY = ("reward_transform",)


@dataclass(frozen=True)
class EditConfig:
    """The settings of one edit: ``smc`` (the sampler's), ``scorer``, ``final_check`` and what keeps the person.

    ``scorer="latent"`` steers with the latent scorer and then decodes the ``final_check`` particles it
    likes best per source; the pixel classifier picks among them (0: decode only its best).
    ``region="expression"``: the profile's region detector finds the brows, eyes and mouth on each source and
    the sampler keeps the source outside them (:mod:`emosmc.regions`; ``smc.lowpass`` keeps its colours inside
    too); ``paste_back`` then puts the source's own pixels back outside the feathered region after decoding, and
    ``min_change`` (``a``) inside it too where the edit changed a pixel's largest channel by less than ``a`` on the
    ``[-1, 1]`` scale, blending up to the edit's own pixel at ``3a`` (as ACE keeps what its difference mask leaves
    out): the skin the expression did not redraw stays the source's.
    ``identity_weight`` (beta) subtracts beta times the mean squared difference between the 4x4 block means of
    each particle's clean prediction and of the source latent from the reward: SMC weighs identity too."""

    smc: SMCConfig = field(default_factory=SMCConfig)
    scorer: str = "pixel"
    final_check: int = 4
    region: str = "none"  # "expression": steer only inside the detected expression region (REGIONS)
    paste_back: bool = False  # with a region: the source's own pixels outside the region's feathered mask
    min_change: float = 0.0  # with paste_back: inside the region too, pixels the edit changed by less than this
    identity_weight: float = 0.0  # beta: reward log p(target) - beta * (colour distance of x0 to the source)

    def __post_init__(self):
        if not isinstance(self.smc, SMCConfig):
            raise TypeError(f"smc must be an SMCConfig, got {type(self.smc).__name__}")
        if self.scorer not in SCORERS:
            raise ValueError(f"unknown scorer {self.scorer!r}; choose one of {list(SCORERS)}")
        if int(self.final_check) != self.final_check or self.final_check < 0:
            raise ValueError(f"final_check must be an integer >= 0, got {self.final_check}")
        if self.region not in REGIONS:
            raise ValueError(f"unknown region {self.region!r}; choose one of {list(REGIONS)}")
        if self.paste_back and self.region == "none":
            raise ValueError("paste_back needs a region (region='expression'): it keeps the source outside it")
        if self.smc.lowpass and self.region == "none":
            raise ValueError("lowpass keeps the source's colours inside a region: set region='expression'")
        if not 0.0 <= self.min_change < 1.0:
            raise ValueError(f"min_change must be in [0, 1) (a change on the [-1, 1] scale; 0: off), got {self.min_change}")
        if self.min_change and not self.paste_back:
            raise ValueError("min_change keeps the source's pixels the edit barely changed: it needs paste_back=True")
        if not (self.identity_weight >= 0 and self.identity_weight < float("inf")):
            raise ValueError(f"identity_weight must be finite and >= 0, got {self.identity_weight}")
        if self.identity_weight and self.smc.reward_on != "x0":
            raise ValueError("identity_weight compares the clean prediction with the source: it needs reward_on='x0'")
        if self.smc.reward_transform is not None:
            raise ValueError("an edit's rewards are log-probabilities: reward_transform must stay None")

    @staticmethod
    def names() -> List[str]:
        """Every setting an edit takes, in order: the steering settings (SMCConfig's fields), then
        ``scorer`` and ``final_check``."""
        return [f.name for f in fields(SMCConfig) if f.name not in _ENGINE_ONLY] + list(_OWN)

    def replace(self, **overrides) -> "EditConfig":
        """A new config with ``overrides`` (any of :meth:`names`) changed; each is validated, and an
        unknown name is an error that lists the valid ones. ``region="none"`` also turns off ``paste_back``,
        ``min_change`` and ``lowpass`` (which need a region) unless they are given too."""
        names = self.names()
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise ValueError(f"unknown edit setting(s) {unknown}; the settings are {names}")
        own = {k: overrides.pop(k) for k in _OWN if k in overrides}
        # switching the region (or the paste-back) off switches off what needs it, unless given too
        if own.get("region") == "none":
            own.setdefault("paste_back", False)
            overrides.setdefault("lowpass", 0)
        if own.get("paste_back") is False:
            own.setdefault("min_change", 0.0)
        return _replace(self, smc=_replace(self.smc, **overrides) if overrides else self.smc, **own)

    def to_dict(self) -> dict:
        """Every setting by name (:meth:`names`): for JSON records and tables."""
        return {k: getattr(self, k) for k in self.names()}

    def __getattr__(self, name: str):
        # the steering settings read through: config.num_particles is config.smc.num_particles
        smc = self.__dict__.get("smc")
        if smc is not None and not name.startswith("_") and name in smc.__dataclass_fields__:
            return getattr(smc, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
