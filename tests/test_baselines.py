"""The methods of the frontier: what each sets, at what cost."""
import pytest

from emosmc.baselines import METHODS, method_settings
from emosmc.profiles import get_profile

BASE = get_profile("toy").edit


def test_every_method_spends_the_budget_except_the_control():
    for m in METHODS:
        s = method_settings(m, BASE, 16)
        assert s.num_particles == (1 if m == "unguided" else 16), m
        assert s.num_inference_steps == BASE.num_inference_steps and s.noise_strength == BASE.noise_strength


def test_what_each_method_is():
    best = method_settings("best-of-n", BASE, 8)
    assert best.ess_threshold == 0.0 and best.resample_interval > BASE.num_inference_steps  # never resamples
    gg, gs = method_settings("gradient-guidance", BASE, 8), method_settings("guided-smc", BASE, 8)
    assert gg.guidance_scale == 0 and gg.proposal_correction is False and gg.gradient_scale == BASE.guidance_scale
    assert gs.gradient_scale == gs.guidance_scale == BASE.guidance_scale and gs.proposal_correction
    assert gs.potential == "difference" and gs.final_check == BASE.final_check
    assert method_settings("smc-paper-pixel", BASE, 8).scorer == "pixel"


def test_bad_method_or_budget_is_named():
    with pytest.raises(ValueError, match="best-of-n"):
        method_settings("best_of_n", BASE, 4)
    with pytest.raises(ValueError, match="budget"):
        method_settings("guided-smc", BASE, 0)


def test_guided_methods_run_in_the_pipeline_with_the_latent_scorers_gradient():
    """The bundled toy pipeline: the nudge reads the latent scorer's gradient (one backward pass per
    particle and step) and changes the samples; the same seed without it gives best-of-N's."""
    import torch

    from emosmc.pipeline import EmotionEditPipeline
    from emosmc.toy.assets import toy_faces
    from emosmc.data import images_to_tensor

    pipe = EmotionEditPipeline.from_profile("toy")
    imgs, *_ = toy_faces(1, seed=4242)
    x = images_to_tensor(imgs[:1])
    base = BASE.replace(num_inference_steps=20)
    runs = {m: pipe(x, "surprise", method_settings(m, base, 3), generator=torch.Generator().manual_seed(0),
                    progress=False) for m in ("best-of-n", "gradient-guidance", "guided-smc")}
    K = runs["best-of-n"].nfe["unet"] // 3
    assert runs["guided-smc"].smc.num_reward_grads == runs["gradient-guidance"].smc.num_reward_grads == 3 * K
    assert runs["best-of-n"].smc.num_reward_grads == 0
    assert not torch.equal(runs["gradient-guidance"].latents, runs["best-of-n"].latents)
    # plain gradient guidance carries no weights; the guided proposal weights its moves even with no reward
    # weighting at all (guidance_scale 0: only the model/proposal correction is left)
    assert all(float(s.ess[0]) == 3 for s in runs["gradient-guidance"].smc.trace)
    corrected = pipe(x, "surprise", method_settings("guided-smc", base, 3).replace(guidance_scale=0.0, gradient_scale=5.0),
                     generator=torch.Generator().manual_seed(0), progress=False)
    assert min(float(s.ess[0]) for s in corrected.smc.trace) < 3


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    import torch

    from emosmc.metrics import kid

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g)
    same = kid(a, b)
    shifted = [kid(a, b + s) for s in (0.25, 0.5, 1.0)]
    assert abs(same) < 0.05 < shifted[0] < shifted[1] < shifted[2]  # measured: -0.008; 0.19, 1.0, 7.7
    with pytest.raises(ValueError, match="2 samples"):
        kid(a[:1], b)


def test_the_frontier_is_read_with_standard_errors_and_missing_points_are_none(tmp_path):
    import json
    import math

    import pytest

    from emosmc.baselines import Frontier

    data = {"settings": {"guidance_scale": 20.0}, "methods": {
        "unguided": {"1": {"true_flip": 0.1, "n": 100}},
        "best-of-n": {"16": {"true_flip": 0.2, "n": 100}},
        "guided-smc": {"16": {"true_flip": 0.9, "n": 100}, "4": {"true_flip": None, "n": 0}}}}
    (tmp_path / "f.json").write_text(json.dumps(data))
    f = Frontier.load(tmp_path / "f.json")
    assert f.rate("guided-smc", 16) == (0.9, pytest.approx(0.03), 100)
    assert f.rate("unguided", 16) == f.rate("unguided", 1)  # one sample whatever the budget
    assert f.rate("guided-smc", 4) is None and f.rate("guided-smc", 8) is None and f.rate("nope", 16) is None
    d, se = f.difference("guided-smc", "best-of-n", 16)
    assert d == pytest.approx(0.7) and se == pytest.approx(math.sqrt(0.03 ** 2 + 0.04 ** 2))
    with pytest.raises(FileNotFoundError, match="benchmarks/frontier.py"):
        Frontier.load(tmp_path / "missing.json")
    repo = Frontier.load()  # the repository's own, read as the notebooks read it
    assert repo is not None and repo.rate("unguided", 1)[2] >= 84
