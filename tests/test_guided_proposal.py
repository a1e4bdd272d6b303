"""Guided proposals (``gradient_scale > 0``): the nudged move with its weight correction still targets
``p_model exp(lambda r)`` on the analytic 2-D mixture; without the correction it is biased."""
import pytest
import torch

from emosmc.guided_proposal import ddpm_transition
from emosmc.smc import SMCConfig, SMCSampler
from emosmc.toy.mixture2d import make_scheduler
from test_smc import MIX, REWARD, assert_matches_tilted_target, component_masses, run2d

EXACT = dict(num_particles=2000, num_inference_steps=100, ess_threshold=0.5, resampling="systematic")


def test_guided_transition_is_the_schedulers_step():
    """The guided move writes the DDPM step out itself: with no nudge it must be scheduler.step."""
    sch = make_scheduler()
    s = SMCSampler(sch, MIX.as_model(sch), REWARD, SMCConfig(num_particles=4, num_inference_steps=100,
                   noise_strength=1.0, gradient_scale=1.0), batch_size=1, shape=(2,))
    for t in (s.timesteps[0], s.timesteps[50], s.timesteps[-2]):
        c0, ct, sigma = ddpm_transition(sch, t)
        x, eps = torch.randn(4, 2), torch.randn(4, 2)
        ref = sch.step(eps, t, x, generator=torch.Generator().manual_seed(5)).prev_sample
        a = sch.alphas_cumprod[t]
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        mine = c0 * x0 + ct * x + sigma * torch.randn(4, 2, generator=torch.Generator().manual_seed(5))
        assert torch.allclose(ref, mine, atol=1e-4)


@pytest.mark.parametrize("gradient_scale", [1.0, 2.0])
def test_guided_proposal_smc_matches_exact_tilted_target(gradient_scale):
    lam = 2.0
    res = run2d(guidance_scale=lam, gradient_scale=gradient_scale, **EXACT)
    assert res.num_reward_grads == 2000 * 100
    unnudged = run2d(guidance_scale=lam, **EXACT)  # the same seed without the nudge: the nudge did move things
    assert (res.particles - unnudged.particles).abs().mean() > 0.1
    assert_matches_tilted_target(res, lam)


def test_the_correction_is_what_keeps_the_target():
    """lambda = 0: the target is the model itself (masses 0.4, 0.4, 0.2). The nudge alone (plain gradient
    guidance) drags most mass to the rewarded mode; the corrected guided proposal gives it back."""
    target = MIX.weights
    plain = run2d(guidance_scale=0.0, gradient_scale=1.0, proposal_correction=False, **{**EXACT, "num_particles": 8000})
    assert component_masses(plain)[1] > 0.8  # biased: the nudge decides (the model has 0.4 there)
    assert all(s.ancestors is None for s in plain.trace)  # no weights, nothing to resample
    fixed = run2d(guidance_scale=0.0, gradient_scale=1.0, **{**EXACT, "num_particles": 8000})  # the same nudge
    masses = component_masses(fixed)
    assert (masses - target).abs().max() < 0.03, (masses, target)


def test_guided_proposals_refuse_what_they_cannot_handle():
    with pytest.raises(ValueError, match="clip"):
        SMCSampler(
            make_scheduler(clip_sample=True), MIX.as_model(make_scheduler()), REWARD,
            SMCConfig(num_particles=4, num_inference_steps=10, noise_strength=1.0, gradient_scale=1.0),
            batch_size=1, shape=(2,))

    @torch.no_grad()
    def frozen(x, t):
        return REWARD(x)

    with pytest.raises(ValueError, match="differentiate"):
        run2d(gradient_scale=1.0, num_particles=4, reward=frozen)
    with pytest.raises(ValueError, match="gradient_scale"):
        SMCConfig(gradient_scale=-1.0)
