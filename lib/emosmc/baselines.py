"""The methods an edit can be made with, at one budget: ``N`` samples' worth of UNet evaluations.

    from emosmc.baselines import METHODS, method_settings
    out = pipe(images, "happy", method_settings("guided-smc", get_profile("toy").edit, budget=16))

Every method runs through the same :class:`~emosmc.pipeline.EmotionEditPipeline` call (same sources,
targets, seed, steps and strength), so at budget ``N`` each spends ``N x K`` UNet evaluations for
``K`` reverse steps, except ``unguided``, which is one img2img sample whatever the budget:

* ``unguided`` -- img2img (SDEdit) with no classifier: the control.
* ``best-of-n`` -- ``N`` independent img2img samples; the scorer (latent scorer, then the pixel
  classifier's final check) picks one. No weights, no resampling.
* ``smc-paper-latent`` / ``smc-paper-pixel`` -- the report's Algorithm 1 (potential ``paper``) with the
  latent scorer or the decode-and-classify reward.
* ``smc-difference-latent`` / ``smc-difference-pixel`` -- the same with the ``difference`` potential,
  whose weighted population targets ``p_model exp(lambda r)``.
* ``gradient-guidance`` -- every move nudged up the latent scorer's gradient (``gradient_scale``, no
  weights: a biased sampler), ``N`` such samples and the scorer picks one; at ``N = 1`` it is plain
  classifier guidance. One backward pass of the scorer per sample and step (no UNet backward).
* ``guided-smc`` -- the same nudged moves as proposals inside SMC with the ``difference`` potential,
  each move weighted by model / proposal transition, so the target stays ``p_model exp(lambda r)``
  (tested on the analytic 2-D target, ``tests/test_guided_proposal.py``).

The nudge is ``gradient_scale * sigma_t^2 * grad r(x0_hat)`` on the transition's mean; with
``gradient_scale = guidance_scale`` (the default here) it is a first-order stand-in for the locally optimal
proposal ``p(x' | x) exp(lambda r(x'))`` (it leaves out the factor ``1 / sqrt(alpha_bar)`` between a step
of ``x0_hat`` and a step of ``x``). Both guided methods read the reward on the x0 prediction, where the
gradient is taken.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

from .edit_config import EditConfig
from .evaluation import standard_error

__all__ = ["METHODS", "ADDONS", "method_settings", "method_configs", "Frontier"]

# method -> what it changes in the profile's edit settings (``budget`` fills num_particles)
METHODS: Dict[str, dict] = {
    "unguided": dict(guidance_scale=0.0, fixed_particles=1),
    "best-of-n": dict(potential="difference", ess_threshold=0.0, resample_interval=10**6, scorer="latent"),
    "smc-paper-latent": dict(potential="paper", scorer="latent"),
    "smc-difference-latent": dict(potential="difference", scorer="latent"),
    "smc-paper-pixel": dict(potential="paper", scorer="pixel"),
    "smc-difference-pixel": dict(potential="difference", scorer="pixel"),
    "gradient-guidance": dict(guidance_scale=0.0, gradient_from_guidance=True, proposal_correction=False,
                              reward_on="x0", scorer="latent"),
    "guided-smc": dict(potential="difference", gradient_from_guidance=True, reward_on="x0", scorer="latent"),
}


# what keeps the person, added to a method by name: "smc-paper-latent+region", "guided-smc+region+identity"
ADDONS: Dict[str, dict] = {
    # the detected region, its colours kept, the source pasted back around it and where the edit barely changed it
    "region": dict(region="expression", lowpass=4, paste_back=True, min_change=0.1),
    "identity": dict(identity_weight=20.0),  # the reward minus beta x the colour distance to the source
}
# a bare method keeps nothing of the person and nudges no move, whatever the preset does; its own settings follow
_KEEPS = dict(region="none", lowpass=0, paste_back=False, min_change=0.0, identity_weight=0.0, gradient_scale=0.0)


def method_settings(name: str, base: EditConfig, budget: int) -> EditConfig:
    """The :class:`~emosmc.edit_config.EditConfig` of ``name`` at ``budget`` particles, on top of ``base``
    (a profile's preset, ``profile.edit``). ``name`` is a method of :data:`METHODS`, optionally followed by
    ``+region`` and ``+identity`` (:data:`ADDONS`); without them the edit keeps nothing of the person beyond
    what the method itself does, whatever the preset keeps."""
    method, *addons = name.split("+")
    if method not in METHODS or any(a not in ADDONS for a in addons):
        raise ValueError(f"unknown method {name!r}; choose one of {list(METHODS)}, each optionally with "
                         + " ".join(f"+{a}" for a in ADDONS))
    if budget < 1:
        raise ValueError(f"budget must be >= 1 particle, got {budget}")
    m = dict(_KEEPS)
    for a in addons:
        m.update(ADDONS[a])
    m.update(METHODS[method])
    m["num_particles"] = m.pop("fixed_particles", budget)
    if m.pop("gradient_from_guidance", False):
        m["gradient_scale"] = float(base.guidance_scale)
    return base.replace(**m)


def method_configs(base: EditConfig, methods=tuple(METHODS), budgets=(4, 16)) -> list:
    """Configs for :func:`emosmc.ablation.run_ablation`: every method at every budget (``unguided`` once),
    each a dict of its settings labelled ``"method": "<name>@<budget>"`` and ``"swept": "method"``, so that
    ``summarise(rows, "method")`` tabulates them."""
    out = []
    for m in methods:
        for b in ((1,) if m.split("+")[0] == "unguided" else budgets):
            out.append({**method_settings(m, base, b).to_dict(), "method": f"{m}@{b}", "swept": "method"})
    return out


class Frontier:
    """The measured frontier: ``benchmarks/frontier.py``'s JSON, every method at every budget on held-out toy
    faces, judged by the ground truth. The notebooks read it here and type no number of their own.

        f = Frontier.load()               # the repository's benchmarks/results/frontier_toy.json
        f.rate("guided-smc", 16)          # (true flip, its standard error, n)
        f.difference("smc-paper-latent", "best-of-n", 16)   # (difference, its standard error)
    """

    def __init__(self, data: dict, path: Optional[Path] = None):
        self.data, self.path = data, path
        self.methods, self.settings = data["methods"], data["settings"]

    @classmethod
    def load(cls, path: Union[str, Path, None] = None) -> Optional["Frontier"]:
        """``path``, else the repository's ``benchmarks/results/frontier_toy.json``; ``None`` where emosmc runs
        without its repository (a wheel, e.g. on Kaggle). A repository without the file is an error."""
        from .places import repository

        if path is None:
            repo = repository()
            if repo is None:
                return None
            path = repo / "benchmarks" / "results" / "frontier_toy.json"
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: make it with `python benchmarks/frontier.py` (docs/frontier.md;"
                                    " hours on a CPU) or restore it from git")
        return cls(json.loads(path.read_text()), path)

    def rate(self, method: str, budget: int) -> Optional[Tuple[float, float, int]]:
        """(true flip rate, its standard error sqrt(p (1 - p) / n), n) of ``method`` at ``budget`` (``unguided``:
        its one sample whatever the budget), or ``None`` where it was not measured."""
        s = self.methods.get(method, {}).get("1" if method.split("+")[0] == "unguided" else str(budget))
        if not s or s.get("true_flip") is None:
            return None
        return s["true_flip"], standard_error(s["true_flip"], s["n"]), s["n"]

    def difference(self, a: str, b: str, budget: int) -> Optional[Tuple[float, float]]:
        """(rate of ``a`` - rate of ``b``, the standard error of the difference), or ``None``."""
        ra, rb = self.rate(a, budget), self.rate(b, budget)
        if ra is None or rb is None:
            return None
        return ra[0] - rb[0], math.sqrt(ra[1] ** 2 + rb[1] ** 2)
